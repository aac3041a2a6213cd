#!/usr/bin/env python3
"""Benchmark: every stage idle, then beside a background load this script starts, bounds in time
and stops itself; the ratio loaded / idle per stage, measured in one run (issue #16).

Stages, each a fresh process (the user's commands), at each --n-samples:

* ``grm``: ``gwas-glmm grm`` (GCTA GRM with 22 LOCO parts);
* ``eigen``: ``gwas-glmm eigen`` (one n x n eigendecomposition);
* ``null_qt`` / ``null_bt``: ``gwas-glmm null``, Gaussian and binomial, LOCO on (a Cholesky
  factorisation per chromosome; the binomial PQL/AI-REML fit one per iteration);
* ``scan`` / ``scan_bt``: ``gwas-glmm scan`` of the Gaussian and the binary trait (exact below
  8,000 samples, fast above; the binary one with its saddlepoint approximations);
* ``sparse_grm`` / ``pca``: the biobank path's sparse GRM of close relatives (by tiles, cutoff
  0.05) and 10 principal components;

and the GLMM fits of docs/benchmarks.md, timed inside their process (the second, warm fit):
``glmm_cbpp`` (``cbind(incidence, size - incidence) ~ period + (1 | herd)``), ``glmm_grouse``
(grouseticks, three random intercepts) and ``glmm_poisson`` (n = 100,000, 5,000 groups, offset).

Loads (``--loads``): ``busy``: one busy Python process per allowed CPU (a fair share of the CPU
would make every step 2x slower on 2 cores); ``gwas``: another gwas-glmm process (a GRM, over
and over).  A load never outlives ``--load-seconds`` (its processes end themselves) nor the step.

``--baseline DIR`` also runs every stage with the package from DIR (e.g. a ``git worktree`` of
an older commit) on the same files, idle and loaded, so the table says what changed.

    python scripts/bench_contention.py                          # N = 3,000 and 10,000
    python scripts/bench_contention.py --n-samples 3000 --baseline ../before
    python scripts/bench_contention.py --n-samples 3000 --repeats 3           # medians of 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import measure, simulate_once, warm_page_cache, write_json  # noqa: E402

BURN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    sum(range(10000))\n"

FIT = r"""
import json, sys, time
import numpy as np, pandas as pd
import gwas_glmm as gg
from gwas_glmm.datasets import load
which = sys.argv[1]
if which == "cbpp":
    d = load("cbpp")
    formula, family = "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"
elif which == "grouse":
    d = load("grouseticks")
    formula, family = "TICKS ~ C(YEAR) + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", "poisson"
else:
    rng = np.random.default_rng(1)
    n, g = 100_000, 5_000
    grp = rng.integers(0, g, n); x = rng.normal(size=n); expo = rng.uniform(0.5, 2, n)
    y = rng.poisson(expo * np.exp(0.2 + 0.3 * x + rng.normal(0, 0.5, g)[grp]))
    d = pd.DataFrame(dict(y=y, x=x, g=grp.astype(str), lexp=np.log(expo)))
    formula, family = "y ~ x + offset(lexp) + (1 | g)", "poisson"
times = []
for _ in range(3):
    t0 = time.perf_counter()
    fit = gg.glmm(formula, data=d, family=family)
    times.append(time.perf_counter() - t0)
print(json.dumps({"first": times[0], "warm": min(times[1:]), "loglik": fit.loglik}))
"""


class Load:
    """A background load, started and stopped by the benchmark; bounded in time either way."""

    def __init__(self, kind: str, cpus: int, seconds: float, prefix: Path, work: Path, python: str):
        self.kind, self.cpus, self.seconds, self.prefix, self.work = kind, cpus, seconds, prefix, work
        self.python = python
        self.procs: list[subprocess.Popen] = []
        self.stop_event = threading.Event()
        self.thread = None

    def __enter__(self):
        if self.kind == "busy":
            self.procs = [subprocess.Popen([sys.executable, "-c", BURN, str(self.seconds)]) for _ in range(self.cpus)]
        elif self.kind == "gwas":
            self.thread = threading.Thread(target=self._gwas_loop, daemon=True)
            self.thread.start()
        time.sleep(1.0)  # let the load take the CPUs
        return self

    def _gwas_loop(self):
        end = time.time() + self.seconds
        out = self.work / "load"
        out.mkdir(exist_ok=True)
        while not self.stop_event.is_set() and time.time() < end:
            proc = subprocess.Popen([self.python, "-m", "gwas_glmm", "grm", "--bfile", str(self.prefix),
                                     "--out", str(out / "g"), "--no-loco"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            self.procs = [proc]
            while proc.poll() is None and not self.stop_event.is_set() and time.time() < end:
                time.sleep(0.2)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def __exit__(self, *exc):
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def pipeline(prefix: Path, work: Path, tag: str, n: int) -> list[tuple[str, list[str]]]:
    g = work / f"g_{tag}"
    return [
        ("grm", ["grm", "--bfile", str(prefix), "--out", str(g)]),
        ("eigen", ["eigen", "--grm", f"{g}.grm.h5"]),
        ("null_qt", ["null", "--grm", f"{g}.grm.h5", "--pheno", f"{prefix}.pheno", "--pheno-name", "qt",
                     "--covar", f"{prefix}.covar", "--covar-name", "age,sex", "--family", "gaussian",
                     "--out", str(work / f"q_{tag}")]),
        ("null_bt", ["null", "--grm", f"{g}.grm.h5", "--pheno", f"{prefix}.pheno", "--pheno-name", "bt1",
                     "--covar", f"{prefix}.covar", "--covar-name", "age,sex", "--family", "binomial",
                     "--out", str(work / f"b_{tag}")]),
        ("scan", ["scan", "--bfile", str(prefix), "--null", str(work / f"q_{tag}.null.h5"), "--out",
                  str(work / f"s_{tag}"), "--mode", "exact" if n < 8000 else "fast"]),
        # the binary trait's scan: its saddlepoint kernels run inside the scan's worker threads
        ("scan_bt", ["scan", "--bfile", str(prefix), "--null", str(work / f"b_{tag}.null.h5"), "--out",
                     str(work / f"s_{tag}_bt"), "--mode", "exact" if n < 8000 else "fast"]),
        # the biobank path's two stages (issue #17): the sparse GRM by tiles and the PCs
        ("sparse_grm", ["grm", "--bfile", str(prefix), "--sparse-cutoff", "0.05", "--out", str(work / f"sp_{tag}")]),
        ("pca", ["pca", "--bfile", str(prefix), "--n-pcs", "10", "--out", str(work / f"pc_{tag}")]),
    ]


STEPS = ("grm", "eigen", "null_qt", "null_bt", "scan", "scan_bt", "sparse_grm", "pca")


def run_condition(python: str, env: dict, prefix: Path, work: Path, tag: str, n: int, fits: bool,
                  steps=STEPS) -> dict:
    times = {}
    for name, args in pipeline(prefix, work, tag, n):
        if name not in steps:
            continue
        for stale in work.glob(f"s_{tag}*"):  # a scan would resume from an earlier run's checkpoints
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        times[name] = measure([python, "-m", "gwas_glmm", *args], env=env)["seconds"]
        print(f"  {tag:>14} {name:<12} {times[name]:8.2f} s  (load average {os.getloadavg()[0]:.1f})", flush=True)
    for done in work.glob(f"*_{tag}*.h5"):  # a GRM with LOCO parts is 23 n^2 x 4 bytes: 9 GB at n = 10,000
        done.unlink()
    if fits:
        for which in ("cbpp", "grouse", "poisson"):
            result = measure([python, "-c", FIT, which], env=env)
            times[f"glmm_{which}"] = json.loads(result["stdout"].strip().splitlines()[-1])["warm"]
            print(f"  {tag:>14} glmm_{which:<7} {times[f'glmm_{which}']:8.3f} s (warm fit)", flush=True)
    return times


def warm_up(python: str, env: dict, work: Path) -> None:
    """Each version's compiled kernels into its numba cache first, on a small cohort (untimed)."""
    prefix = work / "warm"
    simulate_once(prefix, 300, 2000)
    for _, args in pipeline(prefix, work, "warm", 300):
        measure([python, "-m", "gwas_glmm", *args], env=env)
    for which in ("cbpp", "poisson"):
        measure([python, "-c", FIT, which], env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-samples", type=int, nargs="+", default=[3000, 10000])
    ap.add_argument("--n-variants", type=int, default=20_000)
    ap.add_argument("--loads", nargs="+", default=["busy", "gwas"], choices=["busy", "gwas"])
    ap.add_argument("--load-seconds", type=float, default=3600, help="no load runs longer than this")
    ap.add_argument("--baseline", default=None, help="a checkout of an earlier version, run on the same files")
    ap.add_argument("--no-fits", action="store_true", help="skip the GLMM fits")
    ap.add_argument("--steps", nargs="+", default=None, choices=STEPS,
                    help="only these stages (scan needs null_qt, scan_bt null_bt, the null stages grm and eigen)")
    ap.add_argument("--repeats", type=int, default=1, help="run every condition this many times; the table "
                    "gives each step's median (single runs here vary by about 15%%)")
    ap.add_argument("--workdir", default="bench_out/contention")
    args = ap.parse_args()
    from gwas_glmm._threads import detect

    steps = tuple(args.steps or STEPS)
    cpus = detect()
    print(f"CPUs: {cpus.describe()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    versions = {"now": os.environ.copy()}
    if args.baseline:
        env = os.environ.copy()
        env["PYTHONPATH"] = str(Path(args.baseline).resolve())
        versions["baseline"] = env
    record = {"cpus": cpus.describe(), "results": {}}
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    for env in versions.values():
        warm_up(sys.executable, env, Path(args.workdir))
    for n in args.n_samples:
        work = Path(args.workdir) / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        prefix = work / f"cohort_{n}x{args.n_variants}"
        simulate_once(prefix, n, args.n_variants)
        warm_page_cache(Path(f"{prefix}.bed"))
        runs: dict[tuple[str, str], list[dict]] = {}
        fits = not args.no_fits and n == args.n_samples[0]  # the fits do not depend on N
        for _repeat in range(args.repeats):  # conditions alternate, so a drift in the machine's load hits all
            for version, env in versions.items():
                runs.setdefault((version, "idle"), []).append(
                    run_condition(sys.executable, env, prefix, work, f"{version}-idle", n, fits, steps))
                for kind in args.loads:
                    with Load(kind, cpus.count, args.load_seconds, prefix, work, sys.executable):
                        runs.setdefault((version, kind), []).append(
                            run_condition(sys.executable, env, prefix, work, f"{version}-{kind}", n, fits, steps))
        rows = {key: {step: float(np.median([r[step] for r in times])) for step in times[0]}
                for key, times in runs.items()}
        record["results"][str(n)] = {f"{v}/{c}": t for (v, c), t in rows.items()}
        record["runs"] = {**record.get("runs", {}), str(n): {f"{v}/{c}": t for (v, c), t in runs.items()}}
        write_json(Path(args.workdir) / "contention.json", record)
        print(f"\nN = {n:,}, {args.n_variants:,} variants; {cpus.describe()}; median of {args.repeats} run(s)")
        header = "| step |" + "".join(f" {v} {c} |" for v, c in rows) + "".join(
            f" {v} {c}/idle |" for v, c in rows if c != "idle")
        print(header)
        print("|---|" + "---:|" * (header.count("|") - 2))
        for step in rows[("now", "idle")]:
            cells = [f"{rows[key][step]:.3g} s" for key in rows]
            ratios = [f"{rows[(v, c)][step] / rows[(v, 'idle')][step]:.2f}" for v, c in rows if c != "idle"]
            print(f"| {step} | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
