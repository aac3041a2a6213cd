#!/usr/bin/env python3
"""Calibration of the score tests on a simulated related cohort (not run in CI).

Simulates N samples (default 5,000; families and 3 populations) x M variants with R independent
replicates of a binary trait at 10% and of one at 1% prevalence (traits bt1, bt3, ... and bt2,
bt4, ...; each replicate has its own causal variants), builds the GRM, fits every null model in
one call (PQL, LOCO) and scans every variant for all of them in one pass (exact mode up to 5,000
samples, SPA on).  On the null variants (all but the trait's simulated causal ones; the simulator
has no LD) it reports, pooled over the replicates of each prevalence, lambda_GC at the median
and the empirical type-I error at alpha = 1e-3 and 1e-4 (target 0.7x-1.3x of alpha) with a 95%
Poisson interval (one replicate of 200,000 variants expects only 20 hits at 1e-4: its ratio
alone has a standard error of 0.22), by minor allele frequency too, and the power on the causal
variants at 5e-8.  In the same run, ``plink2 --glm`` logistic without kinship on the first
replicate, to show what the mixed model fixes.

    python scripts/calibration.py                        # N=5,000, M=200,000, R=4 (about 25 minutes)
    python scripts/calibration.py --reuse                # scan again with the same GRM and nulls (14 minutes)
    python scripts/calibration.py --summarize-only       # only the tables, from the last run's files
    python scripts/calibration.py --n-samples 2000 --n-variants 20000 --replicates 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import simulate_once, write_json  # noqa: E402

from gwas_glmm.gwas.scanner import genomic_control  # noqa: E402  the lambdas the scan logs


def summarize(log10p: np.ndarray, causal: np.ndarray, maf: np.ndarray | None = None) -> dict:
    from scipy import stats

    ok = ~causal & np.isfinite(log10p)
    null = log10p[ok]
    # what gwas-glmm scan logs, with MAF >= 1% too: rare variants' discrete tests move the median
    lam = genomic_control(stats.chi2.isf(10.0 ** -null, 1), None if maf is None else maf[ok])
    out = {"n_null": int(null.size), "lambda_median": lam["median"]}
    if maf is not None:
        out["lambda_median_maf0.01"] = lam["common"]
    for alpha in (1e-3, 1e-4):
        hits = int(np.sum(null > -np.log10(alpha)))
        rate = hits / max(null.size, 1)
        out[f"type1_{alpha:g}"] = rate
        out[f"type1_{alpha:g}_over_alpha"] = rate / alpha
        out[f"type1_{alpha:g}_hits"] = hits
        # exact 95% Poisson interval of the hit count, as a ratio to the expected count
        lo = stats.chi2.ppf(0.025, 2 * hits) / 2 if hits else 0.0
        hi = stats.chi2.ppf(0.975, 2 * hits + 2) / 2
        out[f"type1_{alpha:g}_over_alpha_ci"] = [lo / (alpha * null.size), hi / (alpha * null.size)]
    for label, alpha in (("5e-8", 5e-8), ("1e-4", 1e-4)):  # 1,000 small effects a trait: power at 1e-4 too
        out[f"power_{label}"] = float(np.mean(log10p[causal] > -np.log10(alpha))) if causal.any() else float("nan")
    out["n_causal"] = int(causal.sum())
    return out


def by_maf(log10p: np.ndarray, maf: np.ndarray, causal: np.ndarray) -> dict:
    """Type-I error ratios and lambda_GC by minor allele frequency (rare variants with few cases
    are discrete: their median chi-square is not the continuous one's)."""
    from scipy import stats

    out = {}
    for lo, hi in ((0.0, 0.01), (0.01, 0.05), (0.05, 0.5001)):
        m = (maf >= lo) & (maf < hi) & ~causal
        null = log10p[m & np.isfinite(log10p)]
        lam = genomic_control(stats.chi2.isf(10.0 ** -null, 1))["median"]
        out[f"maf_{lo:g}-{min(hi, 0.5):g}"] = {f"{a:g}": float(np.mean(null > -np.log10(a)) / a) for a in (1e-3, 1e-4)} \
            | {"n": int(null.size), "lambda": lam}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=5000)
    ap.add_argument("--n-variants", type=int, default=200000)
    ap.add_argument("--replicates", type=int, default=4, help="independent traits per prevalence")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loco", action=argparse.BooleanOptionalAction, default=True,
                    help="leave-one-chromosome-out null models (the default of gwas-glmm)")
    ap.add_argument("--workdir", default="bench_out/calibration")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the GRM, null models and plink2 results of an earlier run; scan again")
    ap.add_argument("--summarize-only", action="store_true",
                    help="only summarise the results files of an earlier run (no scan)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    prevalences = (0.1, 0.01)
    prefix = work / f"cohort_{args.n_samples}x{args.n_variants}" if args.replicates == 1 else \
        work / f"cohort_{args.n_samples}x{args.n_variants}_r{args.replicates}"
    traits = [f"bt{k + 1}" for k in range(len(prevalences) * args.replicates)]
    if args.summarize_only and not Path(f"{prefix}.ours.{traits[-1]}.tsv.gz").exists():
        sys.exit(f"calibration.py: no results of an earlier run under {work} ({prefix.name}.ours.*); "
                 "run it without --summarize-only first")
    simulate_once(prefix, args.n_samples, args.n_variants, prevalences=prevalences * args.replicates)
    gg = shutil.which("gwas-glmm") or "gwas-glmm"
    t0 = time.perf_counter()
    reuse = (args.reuse or args.summarize_only) and Path(f"{prefix}.bt.null.h5").exists()
    if not reuse:
        subprocess.run([gg, "grm", "--bfile", prefix, "--out", f"{prefix}.grm.h5",
                        "--loco" if args.loco else "--no-loco", "--threads", str(args.threads)],
                       check=True, capture_output=True)
        subprocess.run([gg, "null", "--grm", f"{prefix}.grm.h5", "--pheno", f"{prefix}.pheno", "--pheno-name",
                        *traits, "--covar", f"{prefix}.covar", "--covar-name", "age", "sex", "pop", "--family",
                        "binomial", "--out", f"{prefix}.bt.null.h5"], check=True, capture_output=True)
    if not args.summarize_only:
        subprocess.run([gg, "scan", "--bfile", prefix, "--null", f"{prefix}.bt.null.h5", "--out", f"{prefix}.ours",
                        "--threads", str(args.threads)], check=True, capture_output=True)
    ours_seconds = time.perf_counter() - t0
    if args.summarize_only:  # the time of the run that wrote the results
        earlier = work / "calibration.json"
        ours_seconds = json.loads(earlier.read_text()).get("ours_pipeline_seconds", np.nan) if earlier.exists() else np.nan
    truth = pd.read_csv(f"{prefix}.truth.tsv", sep="\t")
    results = {"args": vars(args), "ours_pipeline_seconds": ours_seconds, "phenotypes": len(traits),
               "reused_grm_and_null": reuse}
    pooled = {prev: ([], [], []) for prev in prevalences}
    for k, trait in enumerate(traits):
        res = pd.read_csv(f"{prefix}.ours.{trait}.tsv.gz", sep="\t")
        causal = res.ID.isin(truth.loc[truth.TRAIT == trait, "ID"]).to_numpy()
        maf = np.minimum(res.A1FREQ, 1 - res.A1FREQ).to_numpy()
        results[f"ours_{trait}"] = summarize(res.LOG10P.to_numpy(), causal, maf)
        parts = pooled[prevalences[k % len(prevalences)]]
        parts[0].append(res.LOG10P.to_numpy())
        parts[1].append(causal)
        parts[2].append(maf)
    for prev, (log10p, causal, maf) in pooled.items():
        log10p, causal, maf = np.concatenate(log10p), np.concatenate(causal), np.concatenate(maf)
        results[f"ours_pooled_{prev:g}"] = summarize(log10p, causal, maf) | {"by_maf": by_maf(log10p, maf, causal)}
    if shutil.which("plink2"):
        for trait in traits[:len(prevalences)]:
            t1 = time.perf_counter()
            if not ((args.reuse or args.summarize_only)
                    and list(Path(work).glob(f"{prefix.name}.plink2.{trait}.glm.logistic*"))):
                subprocess.run(["plink2", "--bfile", prefix, "--pheno", f"{prefix}.pheno", "--pheno-name", trait,
                                "--1", "--covar", f"{prefix}.covar", "--covar-name", "age", "sex", "pop", "--glm",
                                "hide-covar", "--threads", str(args.threads), "--out", f"{prefix}.plink2"],
                               check=True, capture_output=True)
            out = next(Path(work).glob(f"{prefix.name}.plink2.{trait}.glm.logistic*"))
            p2 = pd.read_csv(out, sep="\t")
            p2 = p2[p2.TEST == "ADD"].dropna(subset=["P"])
            causal2 = p2.ID.isin(truth.loc[truth.TRAIT == trait, "ID"]).to_numpy()
            results[f"plink2_{trait}"] = summarize(-np.log10(p2.P.to_numpy()), causal2)
            results[f"plink2_{trait}"]["seconds"] = time.perf_counter() - t1
    print(f"N = {args.n_samples}, M = {args.n_variants}, {args.replicates} replicate(s) per prevalence, LOCO "
          f"{'on' if args.loco else 'off'}; our pipeline (GRM, {len(traits)} nulls, one scan) {ours_seconds:.1f} s\n")
    print(f"{'':<18}{'lambda':>8}{'MAF>=1%':>8}{'T1E 1e-3':>10}{'x alpha':>8}{'T1E 1e-4':>10}{'x alpha':>8}"
          f"{'95% CI':>14}{'power 5e-8':>11}{'1e-4':>7}")
    for key, r in results.items():
        if isinstance(r, dict) and "lambda_median" in r:
            lo, hi = r["type1_0.0001_over_alpha_ci"]
            print(f"{key:<18}{r['lambda_median']:>8.3f}{r.get('lambda_median_maf0.01', np.nan):>8.3f}"
                  f"{r['type1_0.001']:>10.2e}{r['type1_0.001_over_alpha']:>8.2f}"
                  f"{r['type1_0.0001']:>10.2e}{r['type1_0.0001_over_alpha']:>8.2f}{f'{lo:.2f}-{hi:.2f}':>14}"
                  f"{r['power_5e-8']:>11.3f}{r['power_1e-4']:>7.3f}")
    for prev in prevalences:
        for band, r in results[f"ours_pooled_{prev:g}"]["by_maf"].items():
            print(f"prevalence {prev:g}, {band}: {r['n']} tests, lambda {r['lambda']:.3f}, T1E x alpha "
                  f"{r['0.001']:.2f} (1e-3), {r['0.0001']:.2f} (1e-4)")
    write_json(work / "calibration.json", results)


if __name__ == "__main__":
    main()
