#!/usr/bin/env python3
"""Benchmark: streaming genotypes from .bed against bed-reader's whole-file read and plink2 --freq.

Each contender runs in its own process so its peak resident memory is its own; the .bed is
read once beforehand so every contender starts from the page cache.  Prints throughput
(genotypes per second), wall time, peak RSS and the ratios; writes the figures as JSON.

    python scripts/bench_io.py                       # N=10,000 x M=100,000 (about 250 MB .bed)
    python scripts/bench_io.py --n-samples 2000 --n-variants 20000   # quick
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from bed_reader import open_bed
from gwas_glmm import PlinkFileset, iter_blocks
from gwas_glmm.genotype import compute_stats
compute_stats(np.zeros((4, 4), np.float32, order="F"))  # load the compiled kernel before timing
mode, prefix, block = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode != "bed_reader_full":
    fs = PlinkFileset(prefix)  # .bim/.fam parsing is not timed (bed-reader's read skips it too)
    n, m = fs.n_samples, fs.n_variants
t0 = time.perf_counter()
checksum = 0.0
if mode == "bed_reader_full":
    with open_bed(prefix + ".bed") as bed:
        x = bed.read(dtype="float32")
    n, m = x.shape
elif mode == "stream_stats":
    for b in iter_blocks(fs, block_size=block):
        checksum += float(b.stats.allele1_count.sum())
elif mode == "stream_raw":
    for _, x in fs.iter_reads(np.arange(m), block):
        checksum += float(x.shape[1])
elapsed = time.perf_counter() - t0
print(json.dumps({"mode": mode, "seconds": elapsed, "n": n, "m": m,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(mode: str, prefix: Path, block: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(prefix), str(block)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_plink2(prefix: Path, threads: int, workdir: Path) -> dict | None:
    """plink2 --freq, timed and measured from a fresh wrapper process (its only child is plink2)."""
    exe = shutil.which("plink2")
    if exe is None:
        return None
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t0 = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(json.dumps({'mode': 'plink2_freq', 'seconds': time.perf_counter() - t0,\n"
        "  'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
    )
    cmd = [exe, "--bfile", str(prefix), "--freq", "--nonfounders", "--threads", str(threads),
           "--out", str(workdir / "plink2")]
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--n-variants", type=int, default=100_000)
    ap.add_argument("--block-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2, help="plink2 threads (bed-reader uses all cores)")
    ap.add_argument("--workdir", default="bench_out/io")
    args = ap.parse_args()

    workdir = Path(args.workdir)
    prefix = workdir / f"cohort_{args.n_samples}x{args.n_variants}"
    if not Path(f"{prefix}.bed").exists():
        from gwas_glmm import SimulationConfig, simulate_cohort

        t0 = time.perf_counter()
        simulate_cohort(prefix, SimulationConfig(n_samples=args.n_samples, n_variants=args.n_variants, seed=1))
        print(f"simulated {args.n_samples} x {args.n_variants} in {time.perf_counter() - t0:.1f} s")
    bed_bytes = Path(f"{prefix}.bed").stat().st_size
    with open(f"{prefix}.bed", "rb") as fh:  # warm the page cache for every contender
        while fh.read(1 << 24):
            pass

    results = [run_child(mode, prefix, args.block_size) for mode in ("bed_reader_full", "stream_raw", "stream_stats")]
    plink2 = run_plink2(prefix, args.threads, workdir)
    if plink2:
        results.append(plink2)
    genotypes = args.n_samples * args.n_variants
    block_mb = 4 * args.n_samples * args.block_size / 2**20
    print(f"\n.bed {bed_bytes / 2**20:.0f} MiB, {genotypes:.3g} genotypes, block {args.block_size} variants "
          f"= {block_mb:.0f} MiB float32, whole matrix {4 * genotypes / 2**20:.0f} MiB float32\n")
    print(f"{'contender':<18}{'seconds':>9}{'genotypes/s':>14}{'peak RSS MiB':>14}")
    for r in results:
        r["genotypes_per_s"] = genotypes / r["seconds"]
        print(f"{r['mode']:<18}{r['seconds']:>9.2f}{r['genotypes_per_s']:>14.3g}{r['peak_rss_mb']:>14.0f}")
    by = {r["mode"]: r for r in results}
    ratios = {
        "stream_stats_vs_full_read_throughput": by["stream_stats"]["genotypes_per_s"] / by["bed_reader_full"]["genotypes_per_s"],
        "stream_raw_vs_full_read_throughput": by["stream_raw"]["genotypes_per_s"] / by["bed_reader_full"]["genotypes_per_s"],
        "stream_stats_vs_full_read_peak_rss": by["stream_stats"]["peak_rss_mb"] / by["bed_reader_full"]["peak_rss_mb"],
    }
    if "plink2_freq" in by:
        ratios["plink2_freq_seconds_over_stream_stats"] = by["plink2_freq"]["seconds"] / by["stream_stats"]["seconds"]
    print()
    for k, v in ratios.items():
        print(f"{k:<45}{v:8.2f}")
    target = ratios["stream_stats_vs_full_read_throughput"] >= 0.8
    print(f"\ntarget: streaming with statistics >= 80% of the whole-file read throughput: {'met' if target else 'NOT met'}")
    (workdir / "bench_io.json").write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
