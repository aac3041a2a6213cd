#!/usr/bin/env python3
"""Benchmark: the association scan against plink2 --glm (linear, no random effect) and gemma -lmm,
on the same files, one run.  Stages of our pipeline are timed separately (GRM, eigendecomposition,
null, fast scan, exact scan); every tool runs in its own process (wall time, peak RSS).

gemma's kinship is the one ``scripts/bench_grm.py`` had it compute (``-gk 1``) when present, else
ours exported to its text format; gemma tests ``--gemma-variants`` variants (a -snps list) and
its time per variant is reported, since a full gemma run at this size takes hours.

    python scripts/bench_scan.py                 # N=10,000, M=100,000 (bench_io's cohort)
    python scripts/bench_scan.py --n-variants 1000000 --grm-variants 100000 --exact-every 10 \
        --workdir bench_out/scan1m                # M=1,000,000: GRM on 100,000, exact on every 10th
    python scripts/bench_scan.py --n-samples 2000 --n-variants 20000 --gemma-variants 2000
    python scripts/bench_scan.py --n-samples 2000 --n-variants 200000 --gemma-variants 4000 \
        --marginal --workdir bench_out/scan2k_200k   # per-variant costs with fixed costs cancelled
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import measure, simulate_once, warm_page_cache, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--n-variants", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemma-variants", type=int, default=5000)
    ap.add_argument("--loco", action=argparse.BooleanOptionalAction, default=True,
                    help="GRM with LOCO parts, LOCO null and scans (gwas-glmm's default)")
    ap.add_argument("--grm-variants", type=int, default=0,
                    help="build the GRM on this many evenly spaced variants (grm --thin-count; 0: all)")
    ap.add_argument("--exact-every", type=int, default=1,
                    help="the exact scan tests every K-th variant (its rate is per variant tested)")
    ap.add_argument("--workdir", default="bench_out/scan")
    ap.add_argument("--cohort-dir", default="bench_out/io")
    ap.add_argument("--marginal", action="store_true",
                    help="also time the exact scan on a tenth of its variants and gemma on a quarter of its "
                         "own, and report each tool's cost per additional variant (fixed costs cancelled)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the stages a killed run of the same command recorded (WORKDIR/stages.json)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    prefix = Path(args.cohort_dir) / f"cohort_{args.n_samples}x{args.n_variants}"
    simulate_once(prefix, args.n_samples, args.n_variants)
    warm_page_cache(Path(f"{prefix}.bed"))
    gg = shutil.which("gwas-glmm") or "gwas-glmm"
    t = str(args.threads)
    # each stage's record is saved as soon as it is measured; --resume keeps those of a killed run
    stages = work / "stages.json"
    key = {k: v for k, v in vars(args).items() if k != "resume"}
    saved = json.loads(stages.read_text()) if args.resume and stages.exists() else {}
    r = saved.get("results", {}) if saved.get("args") == key else {}

    def stage(name, cmd, **kw):
        if name not in r:
            r[name] = measure(cmd, **kw)
            stages.write_text(json.dumps({"args": key, "results": r}, default=str))
        return r[name]

    thin = ["--thin-count", str(args.grm_variants)] if args.grm_variants else []
    stage("grm_eigen", [gg, "grm", "--bfile", prefix, "--out", work / "grm.h5", "--eigen",
                        "--loco" if args.loco else "--no-loco", "--threads", t, *thin])
    stage("null", [gg, "null", "--grm", work / "grm.h5", "--pheno", f"{prefix}.pheno", "--pheno-name", "qt",
                   "--covar", f"{prefix}.covar", "--covar-name", "age", "sex", "--out", work / "qt.null.h5"])
    subset = []
    if args.exact_every > 1:
        ids = [line.split()[1] for line in open(f"{prefix}.bim")][::args.exact_every]
        (work / "exact.ids").write_text("\n".join(ids) + "\n")
        subset = ["--extract", work / "exact.ids"]
    for mode in ("fast", "exact"):
        stage(f"scan_{mode}", [gg, "scan", "--bfile", prefix, "--null", work / "qt.null.h5", "--mode", mode,
                               "--threads", t, "--out", work / f"ours_{mode}", *(subset if mode == "exact" else [])])
    r["scan_exact"]["variants"] = -(-args.n_variants // args.exact_every)
    if args.marginal:  # the exact scan again on a tenth of those variants: its fixed costs cancel
        ids = [line.split()[1] for line in open(f"{prefix}.bim")][::args.exact_every * 10]
        (work / "exact_tenth.ids").write_text("\n".join(ids) + "\n")
        stage("scan_exact_tenth", [gg, "scan", "--bfile", prefix, "--null", work / "qt.null.h5", "--mode", "exact",
                                   "--threads", t, "--out", work / "ours_exact_tenth", "--extract",
                                   work / "exact_tenth.ids"])
        r["scan_exact_tenth"]["variants"] = len(ids)
    if shutil.which("plink2"):
        stage("plink2_glm", ["plink2", "--bfile", prefix, "--pheno", f"{prefix}.pheno", "--pheno-name", "qt",
                             "--covar", f"{prefix}.covar", "--covar-name", "age", "sex", "--glm", "hide-covar",
                             "--threads", t, "--out", work / "plink2"])
    # gemma's own kinship: bench_grm.py's for its cohort, else computed here (gemma -gk 1, not timed)
    gemma_kin = Path("bench_out/grm/gemma_out/gemma.cXX.txt")
    if (args.n_samples, args.n_variants) != (10_000, 100_000) or not gemma_kin.exists():
        gemma_kin = work / "gemma_kin" / "gemma.cXX.txt"
    if shutil.which("gemma") and (gemma_kin.exists() or args.n_samples * args.n_variants <= 10**9):
        gprefix = work / "gemma_input"
        for ext in ("bed", "bim"):
            target = Path(f"{gprefix}.{ext}")
            if not target.exists():
                target.symlink_to(Path(f"{prefix}.{ext}").resolve())
        pheno = {}
        for line in open(f"{prefix}.pheno"):
            f = line.split()
            if f[0].startswith("#"):
                qt_col = f.index("qt")
                continue
            pheno[(f[0], f[1])] = f[qt_col]
        with open(f"{prefix}.fam") as src, open(f"{gprefix}.fam", "w") as dst:
            for line in src:
                f = line.split()
                value = pheno.get((f[0], f[1]), "NA")
                dst.write(" ".join(f[:5] + [value if value != "NA" else "-9"]) + "\n")
        if not gemma_kin.exists():
            subprocess.run(["gemma", "-bfile", gprefix, "-gk", "1", "-o", "gemma", "-outdir", gemma_kin.parent],
                           check=True, capture_output=True)
        ids = [line.split()[1] for line in open(f"{prefix}.bim")]
        runs = [("gemma_lmm", args.gemma_variants)]
        if args.marginal:  # a quarter as many: gemma's own fixed costs (reading, its eigendecomposition) cancel
            runs.append(("gemma_lmm_quarter", max(1, args.gemma_variants // 4)))
        for name, count in runs:
            step = max(1, len(ids) // count)
            (work / f"{name}.snps").write_text("\n".join(ids[::step][:count]) + "\n")
            stage(name, ["gemma", "-bfile", gprefix, "-k", gemma_kin, "-lmm", "4", "-snps",
                         work / f"{name}.snps", "-o", name, "-outdir", work / "gemma_out"],
                  env={**os.environ, "OPENBLAS_NUM_THREADS": t})
            r[name]["variants"] = count
            log = (work / "gemma_out" / f"{name}.log.txt").read_text()
            r[name]["log_times_min"] = dict(re.findall(r"## (time elapsed on [^=]+?)\s*=\s*([0-9.]+)", log))
    m = args.n_variants
    print(f"\nN = {args.n_samples}, M = {m}, 2 threads, LOCO {'on' if args.loco else 'off'}\n")
    print(f"{'stage':<14}{'seconds':>10}{'variants/s':>12}{'peak RSS MiB':>14}")
    for key, v in r.items():
        nv = v.get("variants", m) if key.startswith(("scan", "plink2", "gemma")) else None
        rate = f"{nv / v['seconds']:>12.0f}" if nv else f"{'':>12}"
        print(f"{key:<14}{v['seconds']:>10.1f}{rate}{v['peak_rss_mb']:>14.0f}")
    ratios = {}
    if "plink2_glm" in r:
        ratios["plink2_seconds_over_fast_scan"] = r["plink2_glm"]["seconds"] / r["scan_fast"]["seconds"]
    if "gemma_lmm" in r:
        per_variant = r["gemma_lmm"]["seconds"] / r["gemma_lmm"]["variants"]
        ratios["gemma_seconds_per_variant"] = per_variant
        ratios["gemma_per_variant_over_exact_per_variant"] = per_variant / (r["scan_exact"]["seconds"] /
                                                                            r["scan_exact"]["variants"])
    if "scan_exact_tenth" in r and "gemma_lmm_quarter" in r:
        # steady-state cost of one more variant (the slope between two run sizes): what a scan of
        # millions of variants pays, with each tool's start-up and one-off factorisations cancelled
        def slope(big, small):
            return (r[big]["seconds"] - r[small]["seconds"]) / (r[big]["variants"] - r[small]["variants"])

        ratios["gemma_marginal_seconds_per_variant"] = slope("gemma_lmm", "gemma_lmm_quarter")
        ratios["exact_marginal_seconds_per_variant"] = slope("scan_exact", "scan_exact_tenth")
        ratios["gemma_marginal_over_exact_marginal"] = (ratios["gemma_marginal_seconds_per_variant"]
                                                        / ratios["exact_marginal_seconds_per_variant"])
    # fast against exact on the variants both tested (the issue's |delta log10 p| < 0.05 for 99%)
    import numpy as np
    import pandas as pd

    fast = pd.read_csv(work / "ours_fast.qt.tsv.gz", sep="\t", usecols=["ID", "LOG10P"]).set_index("ID")
    exact = pd.read_csv(work / "ours_exact.qt.tsv.gz", sep="\t", usecols=["ID", "LOG10P"]).set_index("ID")
    diff = np.abs(fast.LOG10P.reindex(exact.index) - exact.LOG10P).dropna()
    ratios["fast_vs_exact_q99_abs_delta_log10p"] = float(np.quantile(diff, 0.99))
    ratios["fast_vs_exact_max_abs_delta_log10p"] = float(diff.max())
    # the exact mode against the machine's own float64 peak: n^2 flops per variant (a triangular
    # solve with Sigma_c's factor) plus, with LOCO, one n^3/3 factorisation per chromosome
    from gwas_glmm.sizing import MachineSpeed

    n, peak = args.n_samples, MachineSpeed.measure(size=2048).dgemm
    m_exact = r["scan_exact"]["variants"]
    exact_flops = float(n) ** 2 * m_exact + (22 * n**3 / 3.0 if args.loco else 0.0)
    ratios["dgemm_peak_gflops"] = peak / 1e9
    ratios["exact_scan_gflops"] = exact_flops / r["scan_exact"]["seconds"] / 1e9
    ratios["exact_scan_fraction_of_peak"] = exact_flops / r["scan_exact"]["seconds"] / peak
    ratios["exact_ms_per_variant_at_peak"] = 1e3 * exact_flops / peak / m_exact
    if "gemma_lmm" in r:
        ratios["gemma_per_variant_over_exact_at_peak"] = ratios["gemma_seconds_per_variant"] * 1e3 / \
            ratios["exact_ms_per_variant_at_peak"]
    pipeline = r["grm_eigen"]["seconds"] + r["null"]["seconds"] + r["scan_fast"]["seconds"]
    ratios["pipeline_grm_eigen_null_fast_seconds"] = pipeline
    print()
    for k, v in ratios.items():
        print(f"{k:<45}{v:10.4g}")
    write_json(work / "bench_scan.json", {"args": vars(args), "results": r, "ratios": ratios})


if __name__ == "__main__":
    main()
