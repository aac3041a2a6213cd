#!/usr/bin/env python3
"""Benchmark: the streamed GRM against the machine's SGEMM peak, plink2 --make-rel and gemma -gk 1,
and the eigendecomposition against numpy's own eigh on the same matrix.

All in one run, same files, each tool in its own process (wall time and peak RSS):

* peak: best of 3 float32 GEMMs of 4096 x 4096 (2 n^3 flops each), this process, all cores;
* ours: ``gwas-glmm grm --no-loco`` and ``gwas-glmm grm`` (LOCO parts written) with default
  filters (MAF >= 0.01, missing <= 0.05); useful flops n^2 M (the syrk), so the achieved rate
  is n^2 M / wall time, compared with the peak;
* plink2 --make-rel square bin4 with the same filters and frequencies from all samples;
* gemma -gk 1 (its centered GRM; a copy of the .fam with phenotype 1 so gemma keeps everyone);
* eigen: ``eigendecompose`` (float64, the stored one) and numpy.linalg.eigh on the same matrix.

    python scripts/bench_grm.py                      # N=10,000, M=100,000
    python scripts/bench_grm.py --n-samples 2000 --n-variants 20000 --skip-eigen
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import measure, simulate_once, warm_page_cache, write_json  # noqa: E402


def sgemm_peak(n: int = 4096, repeats: int = 3) -> float:
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.random((n, n), dtype=np.float32))
    sgemm(1.0, a, a)  # warm up threads
    best = min(_timed(lambda: sgemm(1.0, a, a)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def eigen_times(grm_path: Path) -> dict:
    from gwas_glmm import load_kinship
    from gwas_glmm.kinship import eigendecompose

    k = load_kinship(grm_path, with_eigen=False).matrix.astype(np.float64)
    t_numpy = _timed(lambda: np.linalg.eigh(k))
    t_ours = _timed(lambda: eigendecompose(k))
    return {"numpy_eigh_seconds": t_numpy, "ours_seconds": t_ours, "ratio_ours_over_numpy": t_ours / t_numpy,
            "n": k.shape[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--n-variants", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--workdir", default="bench_out/grm")
    ap.add_argument("--cohort-dir", default="bench_out/io", help="reuse bench_io's cohort if it is there")
    ap.add_argument("--skip-eigen", action="store_true")
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args()

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = Path(args.cohort_dir) / f"cohort_{args.n_samples}x{args.n_variants}"
    simulate_once(prefix, args.n_samples, args.n_variants)
    warm_page_cache(Path(f"{prefix}.bed"))
    n, t = args.n_samples, str(args.threads)

    peak = sgemm_peak()
    print(f"SGEMM peak (4096^3, {args.threads} threads): {peak:.1f} GFLOP/s")
    results = {}
    gg = shutil.which("gwas-glmm") or "gwas-glmm"
    common = ["--bfile", prefix, "--threads", t, "--maf", "0.01", "--geno", "0.05"]
    results["ours_no_loco"] = measure([gg, "grm", *common, "--no-loco", "--out", workdir / "ours_noloco.h5"])
    results["ours_loco"] = measure([gg, "grm", *common, "--out", workdir / "ours_loco.h5"])
    from gwas_glmm import load_kinship

    kin = load_kinship(workdir / "ours_noloco.h5", with_eigen=False)
    m_used = int(kin.meta["n_variants"])
    for key in ("ours_no_loco", "ours_loco"):
        r = results[key]
        r["gflops"] = n * n * m_used / r["seconds"] / 1e9
        r["fraction_of_sgemm_peak"] = r["gflops"] / peak

    if not args.skip_peers and shutil.which("plink2"):
        results["plink2_make_rel"] = measure(
            ["plink2", "--bfile", prefix, "--nonfounders", "--maf", "0.01", "--geno", "0.05", "--threads", t,
             "--make-rel", "square", "bin4", "--out", workdir / "plink2"])
        rel = np.fromfile(workdir / "plink2.rel.bin", dtype=np.float32).reshape(n, n)
        results["plink2_make_rel"]["max_abs_diff_vs_ours"] = float(np.abs(rel - kin.matrix).max())
    if not args.skip_peers and shutil.which("gemma"):
        gprefix = workdir / "gemma_input"
        for ext in ("bed", "bim"):
            target = Path(f"{gprefix}.{ext}")
            if not target.exists():
                target.symlink_to(Path(f"{prefix}.{ext}").resolve())
        with open(f"{prefix}.fam") as src, open(f"{gprefix}.fam", "w") as dst:
            for line in src:
                dst.write(" ".join(line.split()[:5] + ["1"]) + "\n")
        results["gemma_gk1"] = measure(["gemma", "-bfile", gprefix, "-gk", "1", "-o", "gemma",
                                        "-outdir", workdir / "gemma_out"],
                                       env={**os.environ, "OPENBLAS_NUM_THREADS": t})

    print(f"\nN = {n}, M = {args.n_variants} ({m_used} pass MAF >= 0.01 and missing <= 0.05)\n")
    print(f"{'contender':<18}{'seconds':>9}{'peak RSS MiB':>14}{'GFLOP/s':>10}{'of peak':>9}")
    for key, r in results.items():
        extra = f"{r['gflops']:>10.1f}{r['fraction_of_sgemm_peak']:>9.0%}" if "gflops" in r else ""
        print(f"{key:<18}{r['seconds']:>9.1f}{r['peak_rss_mb']:>14.0f}{extra}")
    ratios = {}
    for peer in ("plink2_make_rel", "gemma_gk1"):
        if peer in results:
            ratios[f"{peer}_seconds_over_ours_no_loco"] = results[peer]["seconds"] / results["ours_no_loco"]["seconds"]
            ratios[f"{peer}_seconds_over_ours_loco"] = results[peer]["seconds"] / results["ours_loco"]["seconds"]
    if "plink2_make_rel" in results:
        print(f"\nmax |ours - plink2| = {results['plink2_make_rel']['max_abs_diff_vs_ours']:.2e}")
    if not args.skip_eigen:
        results["eigen"] = eigen_times(workdir / "ours_noloco.h5")
        e = results["eigen"]
        print(f"\neigendecomposition n={e['n']}: ours {e['ours_seconds']:.1f} s, numpy eigh {e['numpy_eigh_seconds']:.1f} s "
              f"(ratio {e['ratio_ours_over_numpy']:.2f})")
    print()
    for k, v in ratios.items():
        print(f"{k:<45}{v:8.2f}")
    frac = results["ours_no_loco"]["fraction_of_sgemm_peak"]
    print(f"\ntarget >= 70% of SGEMM peak: {'met' if frac >= 0.7 else 'NOT met'} ({frac:.0%})")
    write_json(workdir / "bench_grm.json", {"args": vars(args), "sgemm_peak_gflops": peak, "m_used": m_used,
                                            "results": results, "ratios": ratios})


if __name__ == "__main__":
    main()
