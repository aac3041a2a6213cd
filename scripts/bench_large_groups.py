#!/usr/bin/env python3
"""Benchmark: groups of relatives too large for dense blocks (issue #18), sparse Cholesky factors
against dense blocks on the same sparse GRM, in one run.

A sparse GRM at a low cutoff (default 0.025, half fastGWA's 0.05) on the biobank benchmark's
cohort (three populations, 30% of samples in families) joins each population's samples into one
group of thousands.  For each trait, ``gwas-glmm null`` and an exact ``gwas-glmm scan`` of one
chromosome run twice, each in a fresh process: as shipped (such groups get a sparse Cholesky
factor, kinship.sparse_chol) and with every group forced into a dense block (what the code did
before); the table gives both times, their ratio, peak RSS, and the largest difference between
the two results files (they are the same model, so it is rounding and the printed precision).
The covariates are age and sex only: the runs compare two computations of one model, and
without principal components the cohort's three populations inflate the scans' lambda (use
scripts/bench_biobank.py for calibration).

    python scripts/bench_large_groups.py                                  # N = 10,000, cutoff 0.025
    python scripts/bench_large_groups.py --workdir /tmp/bb10k --cutoff 0.03
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import finish, measure, simulate_once, warm_page_cache  # noqa: E402

# the CLI in a process whose groups all go to dense blocks (the path before sparse factors existed)
DENSE = ("import sys\nfrom gwas_glmm.kinship import components\ncomponents.SPARSE_MIN_SIZE = 10**12\n"
         "from gwas_glmm.cli import main\nsys.exit(main(sys.argv[1:]))\n")


def _column(path: Path, name: str) -> np.ndarray:
    with gzip.open(path, "rt") as fh:
        head = fh.readline().rstrip("\n").split("\t")
        k = head.index(name)
        return np.array([float(line.split("\t")[k]) for line in fh])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench_large_groups"))
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--n-variants", type=int, default=100_000)
    ap.add_argument("--cutoff", type=float, default=0.025)
    ap.add_argument("--chr", default="1", help="chromosome the scans test (default 1)")
    ap.add_argument("--phenos", nargs="+", default=["qt", "bt1"])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    from gwas_glmm import sizing
    from gwas_glmm._threads import thread_count

    threads = str(thread_count(args.threads))
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / f"cohort_{args.n_samples}_{args.n_variants}"
    simulate_once(prefix, args.n_samples, args.n_variants, n_populations=3, fst=0.01, family_fraction=0.3)
    warm_page_cache(Path(f"{prefix}.bed"))
    record = {"n_samples": args.n_samples, "cutoff": args.cutoff, "chr": args.chr, "threads": threads,
              "load_before": os.getloadavg(), "sgemm_gflops": sizing.MachineSpeed.measure().sgemm / 1e9, "stages": {}}
    cli = [sys.executable, "-m", "gwas_glmm"]
    grm = work / f"low{args.cutoff:g}.grm.h5"
    common = ["--threads", threads]
    if not grm.exists():
        record["stages"]["grm"] = measure([*cli, "grm", "--bfile", prefix, "--sparse-cutoff", args.cutoff,
                                           "--out", grm, "--maf", "0.01", "--geno", "0.05", *common])
    log = Path(str(grm).replace(".grm.h5", ".log"))
    groups = [line for line in log.read_text().splitlines() if "largest groups" in line] if log.exists() else []
    print(f"sparse GRM at cutoff {args.cutoff:g}: {groups[-1].split('INFO', 1)[-1].strip() if groups else grm}")
    covar = [f"{prefix}.covar"]
    for pheno in args.phenos:
        for path, runner in (("sparse", cli), ("dense", [sys.executable, "-c", DENSE])):
            out = work / f"{path}_{pheno}"
            record["stages"][f"null_{pheno}_{path}"] = measure(
                [*runner, "null", "--grm", grm, "--pheno", f"{prefix}.pheno", "--pheno-name", pheno, "--covar", *covar,
                 "--covar-name", "age", "sex", "--out", out, *common])
            record["stages"][f"scan_{pheno}_{path}"] = measure(
                [*runner, "scan", "--bfile", prefix, "--null", f"{out}.null.h5", "--chr", args.chr, "--mode", "exact",
                 "--out", work / f"scan_{path}_{pheno}", *common])
        files = {p: work / f"scan_{p}_{pheno}.{pheno}.tsv.gz" for p in ("sparse", "dense")}
        a, b = (_column(files[p], "LOG10P") for p in ("sparse", "dense"))
        record[f"log10p_max_rel_diff_{pheno}"] = float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))
    record["load_after"] = os.getloadavg()
    st = record["stages"]
    print(f"{'stage':<14}{'sparse factor s':>16}{'dense blocks s':>16}{'dense/sparse':>14}{'peak MB':>16}")
    for pheno in args.phenos:
        for step in ("null", "scan"):
            s, d = st[f"{step}_{pheno}_sparse"], st[f"{step}_{pheno}_dense"]
            print(f"{step + ' ' + pheno:<14}{s['seconds']:>16.1f}{d['seconds']:>16.1f}{d['seconds'] / s['seconds']:>13.1f}x"
                  f"{s['peak_rss_mb']:>8.0f} /{d['peak_rss_mb']:>6.0f}")
        print(f"  {pheno}: largest relative difference in LOG10P (floor 1e-3) {record[f'log10p_max_rel_diff_{pheno}']:.2g}")
    finish(work / "bench_large_groups.json", record, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
