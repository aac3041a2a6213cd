"""numba kernel: per-variant call counts and ALLELE1 sums in one pass over a block (the scan's
decoder counts and imputes on its own: ``_decode_numba``)."""

from __future__ import annotations

import numba
import numpy as np

from .._accelerate import jit


@jit
def _column_counts(dosages, j):
    """(calls, ALLELE1 sum, sum of squares) of column ``j``: NaN is a missing call."""
    count = 0
    acc = 0.0
    squares = 0.0
    for i in range(dosages.shape[0]):
        v = dosages[i, j]
        if v == v:  # not NaN
            count += 1
            acc += v
            squares += v * v
    return count, acc, squares


@jit(parallel=True)
def count_alleles(dosages):
    """For a (samples, variants) block: (calls per variant int64, ALLELE1 sum per variant float64,
    sum of squared dosages float64: imputation quality, for dosage files)."""
    m = dosages.shape[1]
    n_obs = np.zeros(m, dtype=np.int64)
    total = np.zeros(m, dtype=np.float64)
    squares = np.zeros(m, dtype=np.float64)
    for j in numba.prange(m):
        n_obs[j], total[j], squares[j] = _column_counts(dosages, j)
    return n_obs, total, squares
