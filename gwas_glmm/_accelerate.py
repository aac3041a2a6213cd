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

