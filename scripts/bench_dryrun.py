"""Are the --dry-run estimates right?  For two cohort sizes, run grm, null (Gaussian and
binomial) and scan with --dry-run, then for real, and print estimated / measured peak memory and
time.  Issue 6's target: memory estimates within 2x of the measured peak.

    python scripts/bench_dryrun.py [--sizes 2000x20000 5000x20000] [--out bench_out/dryrun]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import measure, simulate_once, write_json  # noqa: E402

UNITS = {"MiB": 2**20, "GiB": 2**30}
PATTERN = re.compile(r"peak memory ~([\d.]+) (MiB|GiB), disk ~([\d.]+) (MiB|GiB), time ~([\d.]+) (s|min|h)")


def dry_run(cmd: list[str]) -> dict:
    out = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, check=True)
    match = PATTERN.search(out.stderr + out.stdout)
    if match is None:
        raise RuntimeError(f"no estimate in the output of {' '.join(cmd)}:\n{out.stderr[-2000:]}")
    mem, mu, _, _, t, tu = match.groups()
    return {"memory_mb": float(mem) * UNITS[mu] / 2**20, "seconds": float(t) * {"s": 1, "min": 60, "h": 3600}[tu]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["2000x20000", "5000x20000"])
    ap.add_argument("--out", default="bench_out/dryrun")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        n, m = (int(v) for v in size.split("x"))
        prefix = out / f"cohort_{n}x{m}"
        simulate_once(prefix, n, m)
        p = str(prefix)
        steps = {
            "grm --eigen": ["gwas-glmm", "grm", "--bfile", p, "--out", f"{p}.grm.h5", "--eigen"],
            "null gaussian": ["gwas-glmm", "null", "--grm", f"{p}.grm.h5", "--pheno", f"{p}.pheno", "--pheno-name",
                              "qt", "--covar", f"{p}.covar", "--covar-name", "age", "sex", "--out", f"{p}.qt"],
            "null binomial": ["gwas-glmm", "null", "--grm", f"{p}.grm.h5", "--pheno", f"{p}.pheno", "--pheno-name",
                              "bt1", "--covar", f"{p}.covar", "--covar-name", "age", "sex", "--family", "binomial",
                              "--out", f"{p}.bt"],
            "scan exact (qt)": ["gwas-glmm", "scan", "--bfile", p, "--null", f"{p}.qt.null.h5", "--mode", "exact",
                                "--out", f"{p}.exact"],
            "scan fast (bt1)": ["gwas-glmm", "scan", "--bfile", p, "--null", f"{p}.bt.null.h5", "--mode", "fast",
                                "--out", f"{p}.fast"],
        }
        for name, cmd in steps.items():
            est = dry_run(cmd)
            real = measure(cmd)
            row = {"n": n, "m": m, "step": name, "est_memory_mb": est["memory_mb"], "peak_rss_mb": real["peak_rss_mb"],
                   "memory_ratio": est["memory_mb"] / real["peak_rss_mb"], "est_seconds": est["seconds"],
                   "seconds": real["seconds"]}
            rows.append(row)
            print(f"{n:>6} x {m:<7} {name:<18} memory est {row['est_memory_mb']:8.0f} MiB / measured "
                  f"{row['peak_rss_mb']:8.0f} MiB = {row['memory_ratio']:.2f}   time est {est['seconds']:6.0f} s / "
                  f"measured {real['seconds']:6.1f} s", flush=True)
    worst = max(rows, key=lambda r: max(r["memory_ratio"], 1 / r["memory_ratio"]))
    ok = all(0.5 <= r["memory_ratio"] <= 2 for r in rows)
    print(f"memory estimates within 2x of the measured peak: {'yes' if ok else 'NO'}; worst {worst['step']} at "
          f"{worst['n']} x {worst['m']}: ratio {worst['memory_ratio']:.2f}")
    write_json(out / "bench_dryrun.json", {"rows": rows, "within_2x": ok})


if __name__ == "__main__":
    main()
