"""How many CPUs this process may use, and the one place that sets the kernels' thread counts.

``os.cpu_count()`` is the whole machine: under SLURM a job may own 4 of a node's 64 cores, and a
container or ``taskset`` may allow 2.  Each source below is an upper bound on what the process
may use; the smallest wins, and the log names it.  In order of trust:

1. the CPU affinity mask (``os.sched_getaffinity``: taskset, SLURM's task/affinity and
   cgroup cpusets, containers' ``--cpuset-cpus``);
2. the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``: Docker's
   and Kubernetes' ``--cpus``), rounded up;
3. the batch scheduler's and the user's variables: ``SLURM_CPUS_PER_TASK``,
   ``SLURM_CPUS_ON_NODE``, ``PBS_NUM_PPN``, ``NCPUS`` (PBS Pro), ``NSLOTS`` (SGE),
   ``LSB_DJOB_NUMPROC`` (LSF), ``OMP_NUM_THREADS``.

``--threads N`` overrides all of them.  :func:`configure` applies the count to numba's parallel
loops and to every BLAS/OpenMP library loaded (numpy's and scipy's OpenBLAS are two libraries).

:func:`free_cpus` samples how busy the allowed CPUs are (Linux ``/proc/stat``, 50 ms): dense
factorisations whose threads synchronise often (an eigendecomposition's tridiagonal reduction
is n BLAS-2 calls, each ending at a barrier) run on one thread when other work already holds
the CPUs, as OpenMP's ``OMP_DYNAMIC`` does from the load average.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SCHEDULER_VARIABLES = ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "PBS_NUM_PPN", "NCPUS", "NSLOTS",
                       "LSB_DJOB_NUMPROC", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class CpuAllowance:
    """The thread count chosen (``count``), what bounded it (``source``), and every bound seen."""

    count: int
    source: str
    bounds: tuple[tuple[str, int], ...] = ()
    machine: int = 1

    def describe(self) -> str:
        others = [f"{name} {value}" for name, value in self.bounds if name != self.source]
        seen = f"; also {', '.join(others)}" if others else ""
        return f"{self.count} thread{'s' if self.count != 1 else ''} ({self.source}; {self.machine} CPUs on the machine{seen})"


def affinity_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):  # not Linux
        return None


def cgroup_cpus(root: str | Path = "/sys/fs/cgroup") -> int | None:
    """The cgroup's CPU quota in CPUs (rounded up), or None without one."""
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # v2: "max 100000" or "200000 100000"
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    for base in (root / "cpu", root / "cpu,cpuacct", root):
        try:
            quota = int((base / "cpu.cfs_quota_us").read_text())
            period = int((base / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
    return None


def scheduler_cpus(environ: Mapping[str, str]) -> list[tuple[str, int]]:
    """(variable, CPUs) for each scheduler or OpenMP variable set to a positive count.  SLURM's
    per-node counts may read ``4(x2)`` or ``4,8``; OpenMP's a nested list ``4,2``: the first
    number counts."""
    found = []
    for name in SCHEDULER_VARIABLES:
        text = environ.get(name, "").strip()
        digits = ""
        for ch in text:
            if not ch.isdigit():
                break
            digits += ch
        if digits and int(digits) > 0:
            found.append((name, int(digits)))
    return found


def detect(environ: Mapping[str, str] | None = None, *, affinity: int | None | str = "probe",
           cgroup_root: str | Path = "/sys/fs/cgroup", machine: int | None = None) -> CpuAllowance:
    """The CPUs this process may use (arguments other than ``environ`` are for tests)."""
    environ = os.environ if environ is None else environ
    machine = machine or os.cpu_count() or 1
    bounds = []
    mask = affinity_cpus() if affinity == "probe" else affinity
    if mask:
        bounds.append(("affinity mask", int(mask)))
    quota = cgroup_cpus(cgroup_root)
    if quota:
        bounds.append(("cgroup CPU quota", quota))
    bounds.extend(scheduler_cpus(environ))
    if not bounds:
        return CpuAllowance(machine, "all CPUs of the machine", (), machine)
    count = min(value for _, value in bounds)
    source = next(name for name, value in bounds if value == count)  # the most trusted of the smallest
    return CpuAllowance(count, source if " " in source else f"{source}={count}", tuple(bounds), machine)


_CHOSEN: CpuAllowance | None = None


def allowance() -> CpuAllowance:
    """The count chosen by :func:`configure` in this process, else the detected one."""
    return _CHOSEN or detect()


def thread_count(requested: int | None = None) -> int:
    return requested or allowance().count


def configure(threads: int | None = None, environ: Mapping[str, str] | None = None) -> CpuAllowance:
    """Choose the thread count (``threads``, else :func:`detect`) and apply it: numba's parallel
    loops (this thread's setting) and every BLAS/OpenMP library, numpy's and scipy's both
    (scipy.linalg is loaded first so that its OpenBLAS is among them)."""
    global _CHOSEN
    import numba
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS, so that the limit reaches it)

    if threads is not None:
        found = detect(environ)
        chosen = CpuAllowance(threads, "--threads", found.bounds, found.machine)
    else:
        chosen = detect(environ)
    numba.set_num_threads(max(1, min(chosen.count, numba.config.NUMBA_NUM_THREADS)))
    set_library_threads(chosen.count)
    _CHOSEN = chosen
    return chosen


def set_library_threads(count: int) -> None:
    """Every loaded BLAS and OpenMP library on ``count`` threads from now on.  OpenBLAS 0.3.31
    ignores a count set from another thread once one thread has set it (measured): call this
    (and enter :func:`blas_threads`) from the thread that drives the work."""
    from threadpoolctl import ThreadpoolController

    for library in ThreadpoolController().lib_controllers:
        library.set_num_threads(count)


def _cpu_times(cpus: set[int] | None) -> tuple[float, float] | None:
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = idle = 0.0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [float(v) for v in fields[:8]]
        idle_part = values[3] + values[4]  # idle + iowait
        idle += idle_part
        busy += sum(values) - idle_part
    return busy, idle


def free_cpus(interval: float = 0.05) -> float:
    """How many of the allowed CPUs were idle over the last ``interval`` seconds (Linux; elsewhere
    the allowance itself).  Called between this process's heavy steps, it sees other work."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cpus = None
    first = _cpu_times(cpus)
    if first is None:
        return float(allowance().count)
    time.sleep(interval)
    second = _cpu_times(cpus)
    busy, idle = second[0] - first[0], second[1] - first[1]
    if busy + idle <= 0:
        return float(allowance().count)
    total = len(cpus) if cpus else (os.cpu_count() or 1)
    return min(float(allowance().count), total * idle / (busy + idle))


DENSE_THREADS_FROM = 1000
PARALLEL_KERNELS_FROM = 200_000


@dataclass(frozen=True)
class DensePlan:
    """How a dense factorisation of an n x n matrix runs: on ``blas`` BLAS threads, or, when
    ``pieces`` > 1, as that many independent one-thread pieces where the routine can be split."""

    blas: int
    pieces: int = 1


_LAST_PROBE: list[float] = []  # [when (monotonic seconds), free CPUs then]


def dense_plan(n: int, max_age: float = 0.0) -> DensePlan:
    """One thread when n < 1,000 (on 2 cores a 500 x 500 eigendecomposition took 0.026 s on one
    thread and 0.047 s on two); all allowed threads when at least 1.5 of the allowed CPUs are idle;
    otherwise (another process holds them, and each of our threads would wait at every barrier
    for a core it does not get) one BLAS thread, and the allowed count of independent pieces.
    ``max_age``: reuse a probe made less than that many seconds ago (a loop of factorisations
    that each take less than the probe's 50 ms would otherwise spend most of its time probing)."""
    count = allowance().count
    if count == 1 or n < DENSE_THREADS_FROM:
        return DensePlan(1)
    if _LAST_PROBE and time.monotonic() - _LAST_PROBE[0] < max_age:
        free = _LAST_PROBE[1]
    else:
        free = free_cpus()
        _LAST_PROBE[:] = [time.monotonic(), free]
    return DensePlan(count) if free >= 1.5 else DensePlan(1, count)


def dense_threads(n: int) -> int:
    """BLAS threads for a dense factorisation that cannot be split (:func:`dense_plan`)."""
    return dense_plan(n).blas


# OpenBLAS runs a matrix-vector product on one thread below m n = 9,216 (2,304 times its
# GEMM_MULTITHREAD_THRESHOLD of 4): a fit whose products are all that small never wakes a worker
SERIAL_BLAS_BELOW = 9216


@contextlib.contextmanager
def fit_threads(n_obs: int, dense: int = 0, width: int = 1, numba_loops: bool = True):
    """Threads for one model fit on the calling thread: BLAS on :func:`dense_threads` of the
    largest dense matrix factorised (``dense``; 0: none, so one thread: the fit's small products
    would only wake workers that then spin on the cores the kernels need), and numba's parallel
    loops on one thread below 200,000 observations (a Poisson GLMM with 5% as many groups took
    0.29 s at n = 100,000 on one thread and 0.27-0.28 s on two; under load the parallel loops'
    barriers cost a time slice each).  Process-wide for BLAS: not for fits run concurrently.
    A fit without dense matrices whose design (``n_obs`` x ``width``) is below
    SERIAL_BLAS_BELOW leaves BLAS alone: its products run serially anyway, and threadpoolctl's
    first scan of the loaded libraries (15 ms) would be most of a sleepstudy-sized fit.
    ``numba_loops=False``: the fit runs no parallel numba loop, so numba's thread layer (started
    by the first call that asks for its thread count, 5 ms) is left alone."""
    import numba

    before = numba.get_num_threads() if numba_loops else None
    if numba_loops and n_obs < PARALLEL_KERNELS_FROM:
        numba.set_num_threads(1)
    try:
        if not dense and n_obs * max(width, 1) < SERIAL_BLAS_BELOW:
            yield
        else:
            with blas_threads(dense_threads(dense) if dense else 1):
                yield
    finally:
        if before is not None:
            numba.set_num_threads(before)


def one_numba_thread() -> None:
    """numba's parallel loops on one thread for the calling thread (a per-thread setting: each
    worker of a pool calls it, e.g. as the pool's initializer)."""
    import numba

    numba.set_num_threads(1)


@contextlib.contextmanager
def blas_threads(count: int):
    """BLAS and OpenMP libraries limited to ``count`` threads while the block runs (process-wide:
    for the main thread's steps, not inside a pool of workers)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count):
        yield


def kernel_threads() -> dict:
    """The calling thread's numba thread count and each loaded BLAS library's (for logs and tests)."""
    import numba
    from threadpoolctl import threadpool_info

    return {"numba": numba.get_num_threads(),
            "blas": sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})}
