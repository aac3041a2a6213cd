"""Helpers shared by the benchmark scripts: run a command in a fresh process and measure it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

_WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'seconds': time.perf_counter() - t0, 'returncode': p.returncode,\n"
    "  'stderr': p.stderr[-2000:], 'stdout': p.stdout[-2000:],\n"
    "  'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def measure(cmd: list[str], *, env: dict | None = None) -> dict:
    """Wall time and peak RSS of ``cmd``, measured from a wrapper whose only child it is."""
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *map(str, cmd)], check=True, capture_output=True,
                         text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise RuntimeError(f"{cmd[0]} failed ({result['returncode']}): {result['stderr'] or result['stdout']}")
    return result


def simulate_once(prefix: Path, n_samples: int, n_variants: int, **config) -> None:
    """The benchmark cohort (seed 1; ``config``: other SimulationConfig fields), simulated only if
    its .bed is not there yet."""
    if Path(f"{prefix}.bed").exists():
        return
    from gwas_glmm import SimulationConfig, simulate_cohort

    t0 = time.perf_counter()
    simulate_cohort(prefix, SimulationConfig(n_samples=n_samples, n_variants=n_variants, seed=1, **config))
    print(f"simulated {n_samples} x {n_variants} in {time.perf_counter() - t0:.1f} s")


def warm_page_cache(path: Path) -> int:
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            size += len(chunk)
    return size


def write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))


def finish(path: Path, record: dict, threads) -> None:
    """Print the machine's state during the run (load before and after, GEMM peak) and write the record."""
    print(f"load average before {record['load_before']}, after {record['load_after']}; sgemm peak "
          f"{record['sgemm_gflops']:.0f} GFLOP/s; {threads} threads")
    write_json(path, record)
