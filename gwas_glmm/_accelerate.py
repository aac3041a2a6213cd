"""The one place that decides how numba kernels are compiled.

Kernel modules (``_*_numba.py``) decorate with :func:`jit` and are imported lazily inside the
functions that use them, so ``import gwas_glmm`` compiles nothing.  Compiled kernels are cached
on disk unless ``GWAS_GLMM_NUMBA_CACHE=0``.
"""

from __future__ import annotations

import os

import numba


def _cache_enabled() -> bool:
    return os.environ.get("GWAS_GLMM_NUMBA_CACHE", "1").lower() not in ("0", "false", "no", "off")


def jit(*args, **kwargs):
    """``numba.njit`` with nopython, nogil and the project's cache policy."""
    kwargs.setdefault("nogil", True)
    kwargs.setdefault("cache", _cache_enabled())
    return numba.njit(*args, **kwargs)


def one_thread_per_worker():
    """For a pool of worker threads that each run kernels: numba's parallel loops and BLAS one
    thread each while the pool runs (a context manager), so t workers use t cores rather than t
    times the kernels' own thread counts.  numba's setting is per calling thread: call
    ``numba.set_num_threads(1)`` in each worker too.  Oversubscribed, a 2-worker fast scan
    spent 50 us per variant and block instead of 33 (N = 10,000)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)

