#!/usr/bin/env python3
"""Benchmark (issue #19): the fast-mode scan of the same variants as .bed hard calls, as .pgen
dosages and as an 8-bit BGEN 1.2 of those dosages (written by plink2, REF first), and plink2 --glm
(no random effect) on the same .pgen and .bgen, in one run.

The cohort is simulated with ``--dosages`` (``simulate/dosages.py``: the .bed holds the true
calls, the .pgen imputed-like dosages of the same variants, a fifth of them typed).  One GRM
(on --grm-variants evenly spaced variants of the .bed, no LOCO) and one Gaussian null serve every
scan.  Each tool runs in its own process (wall time, peak RSS); the ratios are from this one run.
Opening a BGEN without a .bgi reads its variant headers once: timed on its own first (freq of chr22).

    python scripts/bench_dosage_scan.py                                  # N = 10,000, M = 100,000
    python scripts/bench_dosage_scan.py --n-variants 1000000 --workdir bench_out/dosage1m
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import measure, warm_page_cache, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--n-variants", type=int, default=100_000)
    ap.add_argument("--grm-variants", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default="bench_out/dosage")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    pre = work / "cohort"
    gg = [sys.executable, "-m", "gwas_glmm"]
    threads = ["--threads", str(args.threads)]
    if not Path(f"{pre}.pgen").exists():
        r = measure([*gg, "simulate", "--out", pre, "--n-samples", args.n_samples, "--n-variants", args.n_variants,
                     "--seed", "1", "--dosages", *threads])
        print(f"simulated {args.n_samples} x {args.n_variants} with dosages in {r['seconds']:.0f} s")
    plink2 = shutil.which("plink2")
    bgen = Path(f"{pre}8.bgen")
    if plink2 and not bgen.exists():
        subprocess.run([plink2, "--pfile", pre, "--export", "bgen-1.2", "bits=8", "ref-first", "--threads",
                        str(args.threads), "--out", f"{pre}8"], check=True, capture_output=True)
    sizes = {ext: os.path.getsize(f"{pre}.{ext}") for ext in ("bed", "pgen")}
    if bgen.exists():
        sizes["bgen"] = bgen.stat().st_size
    if not Path(f"{work}/g.grm.h5").exists():
        measure([*gg, "grm", "--bfile", pre, "--out", work / "g", "--no-loco", "--thin-count", args.grm_variants,
                 "--eigen", *threads])
    null = work / "qt.null.h5"
    if not null.exists():
        measure([*gg, "null", "--grm", work / "g.grm.h5", "--pheno", f"{pre}.pheno", "--pheno-name", "qt",
                 "--covar", f"{pre}.covar", "--covar-name", "age", "sex", "--out", null, *threads])
    load_before = os.getloadavg()[0]
    times: dict[str, dict] = {}
    formats = [("bed", ["--bfile", pre], Path(f"{pre}.bed")), ("pgen", ["--pgen", pre], Path(f"{pre}.pgen"))]
    if bgen.exists():
        formats.append(("bgen", ["--bgen", bgen, "--sample", f"{pre}8.sample"], bgen))
        r = measure([*gg, "freq", "--bgen", bgen, "--sample", f"{pre}8.sample", "--chr", "22", "--out", work / "open"])
        times["bgen open + chr22 freq"] = r
        print(f"BGEN opened (variant headers read once) and freq of chr22: {r['seconds']:.1f} s", flush=True)
    for label, flags, path in formats:
        warm_page_cache(path)
        for stale in work.glob(f"s_{label}*"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        r = measure([*gg, "scan", *flags, "--null", null, "--out", work / f"s_{label}", "--mode", "fast",
                     *threads])
        times[f"scan {label}"] = r
        print(f"scan --mode fast {label:<5} {r['seconds']:8.1f} s  peak {r['peak_rss_mb']:.0f} MB  "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    if plink2:
        glm = ["--pheno", f"{pre}.pheno", "--pheno-name", "qt", "--covar", f"{pre}.covar", "--covar-name", "age,sex",
               "--glm", "hide-covar", "--threads", args.threads]
        inputs = [("pgen", ["--pfile", pre])]
        if bgen.exists():
            inputs.append(("bgen", ["--bgen", bgen, "ref-first", "--sample", f"{pre}8.sample"]))
        for label, flags in inputs:
            r = measure([plink2, *flags, *glm, "--out", work / f"plink2_{label}"])
            times[f"plink2 --glm {label}"] = r
            print(f"plink2 --glm on the .{label} {r['seconds']:8.1f} s  peak {r['peak_rss_mb']:.0f} MB", flush=True)
    else:
        print("plink2 not found (apt-get install plink2): no peer row")
    version = subprocess.run([plink2, "--version"], capture_output=True, text=True).stdout.strip() if plink2 else ""
    print(f"\nN = {args.n_samples:,}, M = {args.n_variants:,}; "
          + ", ".join(f".{k} {v / 1e9:.2f} GB" for k, v in sizes.items())
          + f"; load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}")
    bed = times["scan bed"]["seconds"]
    for label in ("pgen", "bgen"):
        if f"scan {label}" not in times:
            continue
        ours = times[f"scan {label}"]["seconds"]
        line = f"{label} scan / bed scan: {ours / bed:.2f}"
        if f"plink2 --glm {label}" in times:
            line += f"; / plink2 --glm on the same .{label} ({version}): {ours / times[f'plink2 --glm {label}']['seconds']:.2f}"
        print(line)
    write_json(work / "dosage_scan.json", {"n_samples": args.n_samples, "n_variants": args.n_variants,
                                           "sizes": sizes, "times": times, "plink2": version,
                                           "load_before": load_before, "load_after": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
