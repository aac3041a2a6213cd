"""The biobank pipeline end to end (issue #18): sparse GRM, 10 PCs, null models on the sparse GRM
(a quantitative trait; binary traits at 10% and 1% prevalence) and an exact scan of every variant,
each stage's wall time and peak RSS; in the same run plink2 --glm (linear and logistic, the same
PCs and covariates, no relatedness) and, where installed, BOLT-LMM --lmmInfOnly with a time limit
(a run that does not finish is reported as a lower bound).

    python scripts/bench_biobank.py --n-samples 100000 --n-variants 20000 --workdir /scratch/bb

``--dense``: also the dense path (dense GRM with LOCO, its null models and scans) on the same
files, for the calibration of both models side by side (N up to about 20,000).

Calibration from the same files: the simulator has no LD, so every variant but a trait's causal
ones is null; lambda_GC at the median and the 1% / 0.1% quantiles and the type-I error at 1e-4
(scripts/calibration.py's summary) for ours and plink2.  Writes WORKDIR/bench_biobank.json.
``--grm FILE --pcs FILE``: reuse a sparse GRM and PCs built earlier (e.g. by
bench_biobank_grm.py, whose timings then come from its JSON).

``--model 500000x10000000 --jobs 50``: instead, the sizing model that ``--dry-run`` uses, for a
cohort of that size on a cluster of that many jobs (4 cores each), with the groups of relatives
of ``--grm`` (a measured sparse GRM) repeated to the model's N:

    python scripts/bench_biobank.py --model 500000x10000000 --jobs 50 --grm /scratch/bb/bb.grm.h5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import finish, measure, simulate_once, warm_page_cache  # noqa: E402
from calibration import summarize  # noqa: E402

from gwas_glmm.gwas.scanner import genomic_control  # noqa: E402


def _cli() -> list[str]:
    return [sys.executable, "-m", "gwas_glmm"]


def _covariates(prefix: Path, pcs: Path, out: Path) -> None:
    """age, sex and the PCs in one file (plink2 --covar takes one)."""
    cov = pd.read_csv(f"{prefix}.covar", sep="\t")[["#FID", "IID", "age", "sex"]]
    pc = pd.read_csv(pcs, sep="\t").rename(columns={"FID": "#FID"})
    cov.merge(pc, on=["#FID", "IID"]).to_csv(out, sep="\t", index=False)


def _ours(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", usecols=["ID", "A1FREQ", "LOG10P"])


def _plink2(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t")
    table = table[table.TEST == "ADD"]
    return pd.DataFrame({"ID": table.ID, "LOG10P": -np.log10(table.P.clip(lower=1e-300))})


def _calibration(table: pd.DataFrame, causal: set, a1freq: pd.Series | None = None) -> dict:
    is_causal = table.ID.isin(causal).to_numpy()
    out = summarize(table.LOG10P.to_numpy(float), is_causal)
    from scipy import stats

    null = table.LOG10P.to_numpy(float)[~is_causal]
    out["lambda"] = genomic_control(stats.chi2.isf(10.0 ** -null, 1))
    return out


def model(size: str, jobs: int, grm: Path, markers: int = 50_000, cores: int = 4) -> None:
    """The stages' --dry-run estimates at ``size`` (NxM) on ``jobs`` jobs of ``cores`` cores."""
    from gwas_glmm import load_kinship, sizing
    from gwas_glmm.kinship.components import Components

    n, m = (int(v) for v in size.lower().split("x"))
    speed = sizing.MachineSpeed.measure()
    kin = load_kinship(grm, sparse=True)
    sizes = Components.of(kin.matrix).sizes
    scale = n / kin.n
    groups = np.repeat(sizes[sizes > 1], int(np.ceil(scale)))[: int(len(sizes[sizes > 1]) * scale)]
    nnz = int(kin.matrix.nnz * scale)
    w_nnz = n + float(np.sum(groups.astype(float) ** 2))
    from gwas_glmm.kinship.sparse_grm import panel_rows

    est = {
        "sparse GRM": sizing.estimate_sparse_grm(n, markers, block=2048, panel=panel_rows(n, markers), speed=speed,
                                                 threads=cores, base=0),
        "PCA": sizing.estimate_pca(n, markers, n_pcs=10, width=20, iterations=4, block=2048, speed=speed,
                                   threads=cores, base=0),
        "null qt": sizing.estimate_null_sparse(n, 13, 1, family="gaussian", sizes=groups, nnz=nnz, speed=speed,
                                               base=0),
        "null bt": sizing.estimate_null_sparse(n, 13, 1, family="binomial", sizes=groups, nnz=nnz, speed=speed,
                                               base=0),
        "scan qt": sizing.estimate_scan(n, m, ["gaussian"], mode="exact", block=2048, threads=cores, p=13,
                                        speed=speed, base=0, sparse_nnz=w_nnz),
        "scan bt": sizing.estimate_scan(n, m, ["binomial"], mode="exact", block=2048, threads=cores, p=13,
                                        speed=speed, base=0, sparse_nnz=w_nnz),
    }
    spread = {"sparse GRM", "scan qt", "scan bt"}  # panels / variant blocks over the jobs; PCA and null on one
    print(f"model N = {n}, M = {m} ({markers} markers for the GRM and PCs), {len(groups)} groups of relatives "
          f"(from {grm}, x{scale:.1f}); {jobs} jobs of {cores} cores; sgemm {speed.sgemm / 1e9:.0f} GFLOP/s")
    print("| stage | memory per job | wall time |")
    print("|---|---:|---:|")
    for name, e in est.items():
        wall = e.seconds / (jobs if name in spread else 1)
        print(f"| {name} | {e.memory / 2**30:.1f} GiB | {sizing._duration(wall)} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=100_000)
    ap.add_argument("--n-variants", type=int, default=20_000)
    ap.add_argument("--workdir", type=Path, default=Path("bench_biobank"))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--grm", type=Path, help="reuse this sparse GRM (.h5)")
    ap.add_argument("--pcs", type=Path, help="reuse these PCs (.eigenvec)")
    ap.add_argument("--bolt-limit", type=float, default=3600.0, help="seconds BOLT-LMM may run")
    ap.add_argument("--peer-limit", type=float, default=None, help="seconds each plink2 run may take")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--peers", nargs="+", default=["linear", "logistic", "bolt"], choices=["linear", "logistic", "bolt"],
                    help="which peer runs to make (plink2 --glm linear/logistic, BOLT-LMM)")
    ap.add_argument("--grm-markers", type=int, help="build the sparse GRM and PCs on this many markers (--thin-count)")
    ap.add_argument("--n-populations", type=int, default=3)
    ap.add_argument("--dense", action="store_true",
                    help="also run the dense path (dense GRM with LOCO, its null models and scans) on the same "
                         "files, for its calibration beside the sparse path's (N up to about 20,000)")
    ap.add_argument("--binary", nargs="+", default=["bt1", "bt2"], choices=["bt1", "bt2"],
                    help="the binary traits to fit and scan (bt1: 10%% prevalence, bt2: 1%%)")
    ap.add_argument("--model", metavar="NxM", help="print the sizing model's estimates at this size and stop")
    ap.add_argument("--jobs", type=int, default=50, help="--model: cluster jobs (4 cores each)")
    args = ap.parse_args(argv)
    if args.model:
        return model(args.model, args.jobs, args.grm or args.workdir / "bb.grm.h5")

    from gwas_glmm import sizing
    from gwas_glmm._threads import thread_count

    threads = str(thread_count(args.threads))
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / f"cohort_{args.n_samples}_{args.n_variants}"
    simulate_once(prefix, args.n_samples, args.n_variants, n_populations=args.n_populations, fst=0.01,
                  family_fraction=0.3)
    warm_page_cache(Path(f"{prefix}.bed"))
    record = {"n_samples": args.n_samples, "n_variants": args.n_variants, "threads": threads,
              "load_before": os.getloadavg(), "sgemm_gflops": sizing.MachineSpeed.measure().sgemm / 1e9, "stages": {}}
    stages = record["stages"]

    def run(name, cmd, limit=None):
        """Measure ``cmd``; with ``limit`` (seconds, peers only) a run that does not finish is a lower bound."""
        try:
            result = measure(["timeout", str(int(limit)), *cmd] if limit else cmd)
        except RuntimeError as exc:
            if limit and "(124)" in str(exc):
                stages[name] = {"seconds_at_least": limit, "finished": False}
                print(f"{name:24s} did not finish in {limit:.0f} s", flush=True)
                return
            raise
        stages[name] = {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"]}
        print(f"{name:24s} {result['seconds']:9.1f} s  peak {result['peak_rss_mb']:8.0f} MB", flush=True)

    filters = ["--maf", "0.01", "--geno", "0.05"] + (["--thin-count", args.grm_markers, "--seed", "1"]
                                                       if args.grm_markers else [])
    grm = args.grm or work / "bb.grm.h5"
    if args.grm is None:
        run("sparse_grm", [*_cli(), "grm", "--bfile", prefix, "--sparse-cutoff", "0.05", "--out", grm,
                           "--threads", threads, *filters])
    pcs = args.pcs or work / "bb.eigenvec"
    if args.pcs is None:
        run("pca", [*_cli(), "pca", "--bfile", prefix, "--n-pcs", "10", "--out", work / "bb", "--threads", threads,
                    *filters])
    covar = work / "bb.covar"  # one file for plink2 and BOLT; ours reads the two files as they are
    _covariates(prefix, pcs, covar)
    common = ["--grm", grm, "--pheno", f"{prefix}.pheno", "--covar", f"{prefix}.covar", pcs, "--covar-name", "age",
              "sex", "PC1-PC10", "--threads", threads]
    run("null_qt", [*_cli(), "null", *common, "--pheno-name", "qt", "--out", work / "null_qt"])
    binary = list(dict.fromkeys(args.binary))
    run("null_bt", [*_cli(), "null", *common, "--pheno-name", *binary, "--out", work / "null_bt"])
    run("scan_qt", [*_cli(), "scan", "--bfile", prefix, "--null", work / "null_qt.null.h5", "--out", work / "scan",
                    "--threads", threads])
    run("scan_bt", [*_cli(), "scan", "--bfile", prefix, "--null", work / "null_bt.null.h5", "--out", work / "scan",
                    "--threads", threads])
    ours_total = sum(s["seconds"] for s in stages.values())
    if args.dense:  # what the sparse model gives up: the dense path (LOCO, all pairs) on the same files
        dense = work / "dense.grm.h5"
        run("dense_grm", [*_cli(), "grm", "--bfile", prefix, "--out", dense, "--eigen", "--threads", threads,
                          *filters])
        dense_common = ["--grm", dense, *common[2:]]
        run("dense_null_qt", [*_cli(), "null", *dense_common, "--pheno-name", "qt", "--out", work / "dnull_qt"])
        run("dense_null_bt", [*_cli(), "null", *dense_common, "--pheno-name", *binary, "--out",
                              work / "dnull_bt"])
        for trait_set in ("qt", "bt"):
            run(f"dense_scan_{trait_set}", [*_cli(), "scan", "--bfile", prefix, "--null",
                                            work / f"dnull_{trait_set}.null.h5", "--out", work / "dscan",
                                            "--threads", threads])
    plink2 = shutil.which("plink2")
    if plink2 and not args.skip_peers:
        base = [plink2, "--bfile", prefix, "--pheno", f"{prefix}.pheno", "--covar", covar, "--covar-variance-standardize",
                "--threads", threads]
        if "linear" in args.peers:
            run("plink2_glm_linear", [*base, "--pheno-name", "qt", "--glm", "hide-covar", "--out", work / "p2"],
                args.peer_limit)
        if "logistic" in args.peers:
            run("plink2_glm_logistic", [*base, "--pheno-name", ",".join(binary), "--1", "--glm", "hide-covar",
                                        "firth-fallback", "--out", work / "p2"], args.peer_limit)
    bolt = shutil.which("bolt")
    if bolt and not args.skip_peers and "bolt" in args.peers:
        for name, source in (("bolt.pheno", f"{prefix}.pheno"), ("bolt.covar", covar)):  # BOLT wants "FID IID"
            pd.read_csv(source, sep="\t").rename(columns={"#FID": "FID"}).to_csv(work / name, sep="\t", index=False,
                                                                               na_rep="NA")
        cmd = [bolt, "--bfile", str(prefix), "--phenoFile", str(work / "bolt.pheno"), "--phenoCol", "qt",
               "--covarFile", str(work / "bolt.covar"), "--qCovarCol", "age", "--qCovarCol", "sex",
               "--qCovarCol", "PC{1:10}",
               "--lmmInfOnly", "--numThreads", threads, "--statsFile", str(work / "bolt.stats"),
               "--LDscoresUseChip"]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.bolt_limit)
            stages["bolt_lmm_inf"] = {"seconds": time.perf_counter() - t0, "returncode": done.returncode,
                                      "tail": done.stdout[-500:] + done.stderr[-500:]}
        except subprocess.TimeoutExpired:
            stages["bolt_lmm_inf"] = {"seconds_at_least": args.bolt_limit, "finished": False}
        print(f"bolt_lmm_inf {stages['bolt_lmm_inf']}", flush=True)
    record["load_after"] = os.getloadavg()
    record["ours_pipeline_seconds"] = ours_total
    if args.grm is not None or args.pcs is not None:
        record["reused"] = {"grm": str(args.grm), "pcs": str(args.pcs)}  # their timings: the run that built them
    record["ours_peak_rss_mb"] = max(s.get("peak_rss_mb", 0) for name, s in stages.items() if "plink2" not in name
                                     and "bolt" not in name and not name.startswith("dense"))
    n_var = args.n_variants
    record["per_variant_us"] = {"ours_scan_qt": stages["scan_qt"]["seconds"] / n_var * 1e6,
                                f"ours_scan_bt ({len(binary)} traits)": stages["scan_bt"]["seconds"] / n_var * 1e6}
    if "seconds" in stages.get("plink2_glm_linear", {}):
        record["per_variant_us"]["plink2_glm_linear"] = stages["plink2_glm_linear"]["seconds"] / n_var * 1e6
        record["scan_qt/plink2_linear"] = stages["scan_qt"]["seconds"] / stages["plink2_glm_linear"]["seconds"]
    if "seconds" in stages.get("plink2_glm_logistic", {}):
        logistic = stages["plink2_glm_logistic"]["seconds"]
        record["per_variant_us"][f"plink2_glm_logistic ({len(binary)} traits)"] = logistic / n_var * 1e6
        record["scan_bt/plink2_logistic"] = stages["scan_bt"]["seconds"] / stages["plink2_glm_logistic"]["seconds"]

    truth = pd.read_csv(f"{prefix}.truth.tsv", sep="\t")
    calib = record["calibration"] = {}
    for trait in ("qt", *binary):
        causal = set(truth.ID[truth.TRAIT == trait])
        calib[f"ours_{trait}"] = _calibration(_ours(work / f"scan.{trait}.tsv.gz"), causal)
        if (work / f"dscan.{trait}.tsv.gz").exists() and args.dense:
            calib[f"dense_{trait}"] = _calibration(_ours(work / f"dscan.{trait}.tsv.gz"), causal)
        p2 = work / (f"p2.{trait}.glm.linear" if trait == "qt" else f"p2.{trait}.glm.logistic.hybrid")
        peer = stages.get("plink2_glm_linear" if trait == "qt" else "plink2_glm_logistic")
        # only a file this run wrote; one stopped at --peer-limit holds the variants it had written
        # (possibly none: plink2 writes in batches), so say so in the key
        if peer is not None and p2.exists() and p2.stat().st_size > 0:
            partial = "_partial" if peer.get("finished") is False else ""
            calib[f"plink2_{trait}{partial}"] = _calibration(_plink2(p2), causal)
        elif peer is not None:
            calib[f"plink2_{trait}_none_written"] = None
    for name, c in calib.items():
        if c is None:
            print(f"{name:14s} (no variants written before the limit)")
            continue
        lam = c["lambda"]
        print(f"{name:14s} lambda median {lam['median']:.4f}  q0.01 {lam['q0.01']:.4f}  q0.001 {lam['q0.001']:.4f}  "
              f"type-I at 1e-4 x{c['type1_0.0001_over_alpha']:.2f} ({c['type1_0.0001_hits']} hits)  "
              f"power 5e-8 {c['power_5e-8']:.3f}")
    print(f"ours, whole pipeline: {ours_total:.1f} s, peak {record['ours_peak_rss_mb']:.0f} MB; per variant (us) "
          f"{json.dumps({k: round(v, 1) for k, v in record['per_variant_us'].items()})}")
    finish(work / "bench_biobank.json", record, threads)


if __name__ == "__main__":
    main()
