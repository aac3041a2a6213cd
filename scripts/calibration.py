#!/usr/bin/env python3
"""Calibration of the score tests on a simulated related cohort (not run in CI).

Simulates N samples (default 5,000; families and 3 populations) x M variants, builds the GRM,
fits the null models of the binary traits at 10% and 1% prevalence (PQL) and scans every
variant (exact mode up to 5,000 samples, SPA on).  On the null variants (all but the simulated
causal ones; the simulator has no LD) it reports lambda_GC at the median and the empirical type-I
error at alpha = 1e-3 and 1e-4 (target 0.7x-1.3x of alpha), and the power on the causal
variants at 5e-8.  In the same run, ``plink2 --glm`` logistic without kinship on the same files,
to show what the mixed model fixes.

    python scripts/calibration.py                        # N=5,000, M=200,000 (about 15 minutes)
    python scripts/calibration.py --n-samples 2000 --n-variants 20000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import simulate_once, write_json  # noqa: E402


def summarize(log10p: np.ndarray, causal: np.ndarray) -> dict:
    from scipy import stats

    null = log10p[~causal]
    chisq = stats.chi2.isf(10.0 ** -null, 1)
    out = {"n_null": int(null.size), "lambda_median": float(np.median(chisq) / stats.chi2.ppf(0.5, 1))}
    for alpha in (1e-3, 1e-4):
        rate = float(np.mean(null > -np.log10(alpha)))
        out[f"type1_{alpha:g}"] = rate
        out[f"type1_{alpha:g}_over_alpha"] = rate / alpha
    out["power_5e-8"] = float(np.mean(log10p[causal] > -np.log10(5e-8))) if causal.any() else float("nan")
    out["n_causal"] = int(causal.sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=5000)
    ap.add_argument("--n-variants", type=int, default=200000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loco", action=argparse.BooleanOptionalAction, default=True,
                    help="leave-one-chromosome-out null models (the default of gwas-glmm)")
    ap.add_argument("--workdir", default="bench_out/calibration")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / f"cohort_{args.n_samples}x{args.n_variants}"
    simulate_once(prefix, args.n_samples, args.n_variants)
    gg = shutil.which("gwas-glmm") or "gwas-glmm"
    t0 = time.perf_counter()
    subprocess.run([gg, "grm", "--bfile", prefix, "--out", f"{prefix}.grm.h5", "--loco" if args.loco else "--no-loco",
                    "--threads", str(args.threads)], check=True, capture_output=True)
    subprocess.run([gg, "null", "--grm", f"{prefix}.grm.h5", "--pheno", f"{prefix}.pheno", "--pheno-name", "bt1",
                    "bt2", "--covar", f"{prefix}.covar", "--covar-name", "age", "sex", "pop", "--family", "binomial",
                    "--out", f"{prefix}.bt.null.h5"], check=True, capture_output=True)
    subprocess.run([gg, "scan", "--bfile", prefix, "--null", f"{prefix}.bt.null.h5", "--out", f"{prefix}.ours",
                    "--threads", str(args.threads)], check=True, capture_output=True)
    ours_seconds = time.perf_counter() - t0
    truth = pd.read_csv(f"{prefix}.truth.tsv", sep="\t")
    results = {"args": vars(args), "ours_pipeline_seconds": ours_seconds}
    for trait in ("bt1", "bt2"):
        res = pd.read_csv(f"{prefix}.ours.{trait}.tsv.gz", sep="\t")
        causal = res.ID.isin(truth.loc[truth.TRAIT == trait, "ID"]).to_numpy()
        results[f"ours_{trait}"] = summarize(res.LOG10P.to_numpy(), causal)
        if shutil.which("plink2"):
            t1 = time.perf_counter()
            subprocess.run(["plink2", "--bfile", prefix, "--pheno", f"{prefix}.pheno", "--pheno-name", trait, "--1",
                            "--covar", f"{prefix}.covar", "--covar-name", "age", "sex", "pop", "--glm", "hide-covar",
                            "--threads", str(args.threads), "--out", f"{prefix}.plink2"], check=True, capture_output=True)
            out = next(Path(work).glob(f"{prefix.name}.plink2.{trait}.glm.logistic*"))
            p2 = pd.read_csv(out, sep="\t")
            p2 = p2[p2.TEST == "ADD"].dropna(subset=["P"])
            causal2 = p2.ID.isin(truth.loc[truth.TRAIT == trait, "ID"]).to_numpy()
            results[f"plink2_{trait}"] = summarize(-np.log10(p2.P.to_numpy()), causal2)
            results[f"plink2_{trait}"]["seconds"] = time.perf_counter() - t1
    print(f"N = {args.n_samples}, M = {args.n_variants}, LOCO {'on' if args.loco else 'off'}; our pipeline (GRM, "
          f"null, scan) {ours_seconds:.1f} s\n")
    print(f"{'':<14}{'lambda':>8}{'T1E 1e-3':>10}{'x alpha':>8}{'T1E 1e-4':>10}{'x alpha':>8}{'power':>7}")
    for key, r in results.items():
        if isinstance(r, dict) and "lambda_median" in r:
            print(f"{key:<14}{r['lambda_median']:>8.3f}{r['type1_0.001']:>10.2e}{r['type1_0.001_over_alpha']:>8.2f}"
                  f"{r['type1_0.0001']:>10.2e}{r['type1_0.0001_over_alpha']:>8.2f}{r['power_5e-8']:>7.2f}")
    write_json(work / "calibration.json", results)


if __name__ == "__main__":
    main()
