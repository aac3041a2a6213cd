"""numba kernels: per-variant call counts and ALLELE1 sums in one pass over a block, and mean
imputation (a float64 copy, or in place in the block's own float32)."""

from __future__ import annotations

import numba
import numpy as np

from .._accelerate import jit


@jit
def _column_counts(dosages, j):
    """(calls, ALLELE1 sum) of column ``j``: NaN is a missing call."""
    count = 0
    acc = 0.0
    for i in range(dosages.shape[0]):
        v = dosages[i, j]
        if v == v:  # not NaN
            count += 1
            acc += v
    return count, acc


@jit(parallel=True)
def count_alleles(dosages):
    """For a (samples, variants) block: (calls per variant int64, ALLELE1 sum per variant float64)."""
    m = dosages.shape[1]
    n_obs = np.zeros(m, dtype=np.int64)
    total = np.zeros(m, dtype=np.float64)
    for j in numba.prange(m):
        n_obs[j], total[j] = _column_counts(dosages, j)
    return n_obs, total


@jit(parallel=True)
def mean_impute(dosages):
    """float64 copy of a (samples, variants) block with each missing call replaced by its
    variant's mean over the called samples (0 where every call is missing), Fortran order."""
    n, m = dosages.shape
    out = np.empty((m, n), dtype=np.float64).T  # Fortran order: columns contiguous
    for j in numba.prange(m):
        count, total = _column_counts(dosages, j)
        mean = total / count if count > 0 else 0.0
        for i in range(n):
            v = dosages[i, j]
            out[i, j] = v if v == v else mean
    return out


@jit(parallel=True)
def impute_in_place(dosages):
    """Replace each missing call of a (samples, variants) float32 block by its variant's mean over
    the called samples (0 where all are missing), in place; (calls per variant, ALLELE1 sums) as
    :func:`count_alleles`, from the same single pass."""
    n, m = dosages.shape
    n_obs = np.zeros(m, dtype=np.int64)
    total = np.zeros(m, dtype=np.float64)
    for j in numba.prange(m):
        count, acc = _column_counts(dosages, j)
        n_obs[j] = count
        total[j] = acc
        if count < n:
            mean = np.float32(acc / count) if count > 0 else np.float32(0.0)
            for i in range(n):
                if dosages[i, j] != dosages[i, j]:
                    dosages[i, j] = mean
    return n_obs, total
