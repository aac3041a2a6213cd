"""Biobank-scale relatedness and structure (issue #17): the sparse GRM and 10 PCs of a simulated
cohort with families and populations, against plink2's KING table and ``--pca approx`` on the
same files, in one run.

    python scripts/bench_biobank_grm.py --n-samples 100000 --n-variants 20000 --workdir /scratch/bb

Prints and writes (WORKDIR/bench_biobank_grm.json): wall time and peak memory of each command,
their ratios (ours / plink2, measured one after the other on the same machine), the machine's
load before and after, the related pairs each tool finds against the simulator's pedigree
(PREFIX.pairs.tsv) and against each other, and the agreement of the structure PCs.

Matched definitions: KING's kinship coefficient phi is half a GRM entry, so plink2's
``--king-table-filter 0.0442`` (third degree and closer) is compared with our GRM >= 0.0884;
our sparse GRM itself keeps entries >= 0.05 (fastGWA's cutoff).  PCA: MAF >= 0.01, missing
rate <= 0.05, frequencies from all samples (plink2 --nonfounders).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import finish, measure, simulate_once, warm_page_cache  # noqa: E402

KING_FILTER = 0.0442  # plink2's usual third-degree boundary (2^-4.5)


def _cli() -> list[str]:
    return [sys.executable, "-m", "gwas_glmm"]


def _king_pairs(path: Path) -> set[tuple[str, str]]:
    table = pd.read_csv(path, sep="\t", dtype={"IID1": str, "IID2": str})
    return {tuple(sorted(p)) for p in zip(table.IID1, table.IID2)}


def _sparse_pairs(prefix: Path, cutoff: float) -> tuple[set[tuple[str, str]], dict]:
    from gwas_glmm import read_kinship

    kin = read_kinship(f"{prefix}.grm.sp")
    low = kin.matrix.tocoo()
    keep = (low.row > low.col) & (low.data >= cutoff)
    iid = kin.iid
    pairs = {tuple(sorted((iid[a], iid[b]))) for a, b in zip(low.row[keep], low.col[keep])}
    values = {tuple(sorted((iid[a], iid[b]))): v for a, b, v in zip(low.row, low.col, low.data) if a > b}
    return pairs, values


def _recall(truth: pd.DataFrame, found: set) -> dict[str, str]:
    out = {}
    for kind, rows in truth.groupby("RELATION"):
        hits = sum(tuple(sorted(p)) in found for p in zip(rows.IID1, rows.IID2))
        out[kind] = f"{hits}/{len(rows)}"
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=100_000)
    ap.add_argument("--n-variants", type=int, default=20_000)
    ap.add_argument("--fst", type=float, default=0.01)
    ap.add_argument("--workdir", type=Path, default=Path("bench_biobank"))
    ap.add_argument("--threads", type=int, default=None, help="for both tools (default: the CPUs this job may use)")
    ap.add_argument("--skip-plink2", action="store_true")
    args = ap.parse_args(argv)

    from gwas_glmm import sizing
    from gwas_glmm._threads import thread_count

    threads = thread_count(args.threads)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / f"cohort_{args.n_samples}_{args.n_variants}"
    t0 = time.perf_counter()
    simulate_once(prefix, args.n_samples, args.n_variants, n_populations=3, fst=args.fst, family_fraction=0.3)
    simulated = time.perf_counter() - t0
    warm_page_cache(Path(f"{prefix}.bed"))
    speed = sizing.MachineSpeed.measure()
    record = {"n_samples": args.n_samples, "n_variants": args.n_variants, "threads": threads,
              "load_before": os.getloadavg(), "sgemm_gflops": speed.sgemm / 1e9, "simulate_seconds": simulated}
    filters = ["--maf", "0.01", "--geno", "0.05"]
    runs = {
        "ours_sparse_grm": [*_cli(), "grm", "--bfile", prefix, "--sparse-cutoff", "0.05", "--sparse-format", "gcta",
                            "--out", work / "ours", "--threads", threads, *filters],
        "ours_pca": [*_cli(), "pca", "--bfile", prefix, "--n-pcs", "10", "--out", work / "ours", "--threads", threads,
                     *filters],
    }
    plink2 = shutil.which("plink2")
    if plink2 and not args.skip_plink2:
        runs["plink2_king"] = [plink2, "--bfile", prefix, "--make-king-table", "--king-table-filter", KING_FILTER,
                               "--threads", threads, "--out", work / "king", *filters]
        runs["plink2_pca_approx"] = [plink2, "--bfile", prefix, "--nonfounders", "--pca", "approx", "10",
                                     "--threads", threads, "--out", work / "p2pca", *filters]
    for name, cmd in runs.items():
        result = measure(cmd)
        record[name] = {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}
        print(f"{name:18s} {result['seconds']:9.1f} s  peak {result['peak_rss_mb']:8.0f} MB", flush=True)
    record["load_after"] = os.getloadavg()
    for ours, theirs in (("ours_sparse_grm", "plink2_king"), ("ours_pca", "plink2_pca_approx")):
        if theirs in record:
            record[f"{ours}/{theirs}"] = record[ours]["seconds"] / record[theirs]["seconds"]
            print(f"time ratio {ours} / {theirs}: {record[f'{ours}/{theirs}']:.2f}")

    truth = pd.read_csv(f"{prefix}.pairs.tsv", sep="\t", dtype={"IID1": str, "IID2": str})
    kept, values = _sparse_pairs(work / "ours", 0.05)
    record["pairs_kept"] = len(kept)
    record["pedigree_recall_ours_0.05"] = _recall(truth, kept)
    print(f"pairs kept (GRM >= 0.05): {len(kept)}; pedigree pairs found: {record['pedigree_recall_ours_0.05']}")
    if "plink2_king" in record:
        king = _king_pairs(work / "king.kin0")
        matched = {p for p in kept if values[p] >= 2 * KING_FILTER}
        both, only_ours, only_king = matched & king, matched - king, king - matched
        record.update({"king_pairs": len(king), "ours_pairs_0.0884": len(matched), "both": len(both),
                       "only_ours": len(only_ours), "only_king": len(only_king),
                       "pedigree_recall_king": _recall(truth, king),
                       "pedigree_recall_ours_0.0884": _recall(truth, matched)})
        relation = {tuple(sorted(p)): r for p, r in zip(zip(truth.IID1, truth.IID2), truth.RELATION)}
        record["only_ours_relations"] = pd.Series([relation.get(p, "none") for p in only_ours]).value_counts().to_dict()
        record["only_king_relations"] = pd.Series([relation.get(p, "none") for p in only_king]).value_counts().to_dict()
        print(f"KING phi >= {KING_FILTER}: {len(king)} pairs; ours GRM >= {2 * KING_FILTER:.4f}: {len(matched)}; "
              f"both {len(both)}, only ours {len(only_ours)} {record['only_ours_relations']}, "
              f"only KING {len(only_king)} {record['only_king_relations']}")
        print(f"pedigree pairs found: KING {record['pedigree_recall_king']}, ours {record['pedigree_recall_ours_0.0884']}")
    if "plink2_pca_approx" in record:
        ours_vec = pd.read_csv(work / "ours.eigenvec", sep="\t")
        their_vec = pd.read_csv(work / "p2pca.eigenvec", sep="\t")
        ours_val, their_val = np.loadtxt(work / "ours.eigenval"), np.loadtxt(work / "p2pca.eigenval")
        k = 2  # 3 populations: 2 structure PCs
        record["pc_abs_correlation"] = [abs(float(np.corrcoef(ours_vec[f"PC{j}"], their_vec[f"PC{j}"])[0, 1]))
                                        for j in range(1, k + 1)]
        record["eigenvalue_ratio"] = (ours_val[:k] / their_val[:k]).tolist()
        print(f"structure PCs: |correlation| {record['pc_abs_correlation']}, eigenvalue ratio ours/plink2 "
              f"{record['eigenvalue_ratio']}")
    finish(work / "bench_biobank_grm.json", record, threads)


if __name__ == "__main__":
    main()
