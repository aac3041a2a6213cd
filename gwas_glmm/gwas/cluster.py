"""Where the scan's blocks run: this process's threads (default), an existing dask.distributed
scheduler (``--scheduler ADDRESS`` or a scheduler file), or a cluster started through
dask-jobqueue on SLURM, PBS or SGE (``--cluster``).  No scheduling of our own: dask does it.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._progress import get_logger
from ..exceptions import InputError

log = get_logger("cluster")
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster"}


@dataclass(frozen=True)
class ClusterResources:
    """One batch job per dask worker; each worker runs ``cores`` threads."""

    jobs: int = 4
    cores: int = 4
    memory: str = "16GB"
    walltime: str = "04:00:00"
    queue: str | None = None
    account: str | None = None
    local_directory: str | None = None  # node-local scratch, e.g. $TMPDIR
    wait: float = 1800.0  # seconds to wait for the first worker's job to start


def _jobqueue(kind: str):
    if kind not in JOBQUEUE:
        raise InputError(f"--cluster must be one of {', '.join(JOBQUEUE)}, got {kind!r}")
    try:
        import dask_jobqueue
    except ImportError:
        raise InputError("--cluster needs dask-jobqueue: pip install 'gwas_glmm[cluster]' "
                         "(or start a scheduler yourself and pass --scheduler)") from None
    return dask_jobqueue


# each of a worker's threads runs one block with its kernels on one thread: the job's
# libraries must not start a thread per core of the node first
_ONE_THREAD_KERNELS = [f"export {name}=1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                        "NUMBA_NUM_THREADS")]


def _options(kind: str, resources: ClusterResources) -> dict:
    opts = {"cores": resources.cores, "processes": 1, "memory": resources.memory, "walltime": resources.walltime,
            "queue": resources.queue, "local_directory": resources.local_directory, "job_name": "gwas-glmm-scan",
            "job_script_prologue": _ONE_THREAD_KERNELS}
    if resources.account:
        opts["account" if kind != "sge" else "project"] = resources.account
    return {k: v for k, v in opts.items() if v is not None}


def jobqueue_cluster(kind: str, resources: ClusterResources):
    """An (unscaled) dask-jobqueue cluster: starts the scheduler in this process, submits nothing.
    The batch system's submit command (sbatch, qsub) must be on the PATH: without it
    dask-jobqueue logs a traceback in the background and the scan would wait for ever."""
    cls = getattr(_jobqueue(kind), JOBQUEUE[kind])
    submit = getattr(cls.job_cls, "submit_command", None) or {"slurm": "sbatch"}.get(kind, "qsub")
    if shutil.which(submit) is None:
        raise InputError(f"--cluster {kind}: {submit} is not on the PATH of this machine; run on a login node of "
                         "the cluster, or start dask workers yourself and pass --scheduler")
    return cls(**_options(kind, resources))


def job_script(kind: str, resources: ClusterResources) -> str:
    """The batch script each worker job would run, without starting anything (for --dry-run)."""
    module = getattr(_jobqueue(kind), kind)
    job = getattr(module, JOBQUEUE[kind].replace("Cluster", "Job"))
    return job(scheduler="tcp://SCHEDULER:8786", name="gwas-glmm-worker", **_options(kind, resources)).job_script()


@contextlib.contextmanager
def scan_client(*, scheduler: str | None = None, cluster: str | None = None,
                resources: ClusterResources | None = None) -> Iterator[object | None]:
    """A ``distributed.Client`` for the scan, or None to run on local threads."""
    if scheduler and cluster:
        raise InputError("give either --scheduler or --cluster, not both")
    if not scheduler and not cluster:
        yield None
        return
    from distributed import Client

    if scheduler:
        try:
            if Path(scheduler).suffix == ".json" or Path(scheduler).is_file():
                client = Client(scheduler_file=scheduler)  # timeout: distributed.comm.timeouts.connect
            else:
                client = Client(scheduler)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({exc}); is the scheduler running?") from None
        with client:
            log.info("dask scheduler %s: %d workers", scheduler, len(client.scheduler_info()["workers"]))
            yield client
        return
    resources = resources or ClusterResources()
    with jobqueue_cluster(cluster, resources) as jq:
        jq.scale(jobs=resources.jobs)
        with Client(jq) as client:
            log.info("%s cluster: %d jobs of %d cores and %s requested; dashboard %s", cluster, resources.jobs,
                     resources.cores, resources.memory, client.dashboard_link)
            try:
                client.wait_for_workers(1, timeout=resources.wait)
            except TimeoutError:
                raise InputError(f"--cluster {cluster}: no worker started within {resources.wait:g} s; check the jobs "
                                 "(squeue / qstat) and their logs, or raise --cluster-wait") from None
            yield client


def on_worker(function, *args):
    """Run one task on a dask worker.  A worker running several tasks at once (its ``nthreads``:
    ``--cluster-cores``, or ``dask worker --nthreads``) runs each task's kernels (numba, BLAS) on
    one thread, as the local scan does, instead of every task starting a thread per core."""
    from distributed import get_worker

    try:
        threads = get_worker().state.nthreads
    except (ValueError, AttributeError):  # not on a worker
        threads = 1
    if threads > 1:
        from .._threads import one_numba_thread

        _blas_one_thread()
        one_numba_thread()  # per thread: every worker thread sets its own
    return function(*args)


@functools.cache
def _blas_one_thread() -> None:
    from .._threads import set_library_threads

    set_library_threads(1)  # the worker process's BLAS, for good: all its threads run blocks
