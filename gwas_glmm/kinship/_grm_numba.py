"""numba kernels for the GRM: standardize a genotype block in place, count shared missing calls."""

from __future__ import annotations

import numba
import numpy as np

from .._accelerate import jit


@jit(parallel=True)
def standardize_inplace(dosages, freq):
    """Turn a (samples, variants) ALLELE1 dosage block into (x - 2p) / sqrt(2p(1-p)), in place
    (computed in float64, stored in the block's dtype).

    Missing calls (NaN) become 0, which is also their value after mean imputation.  Variants
    with p in {0, 1} (monomorphic among the samples) become all zeros.
    """
    n, m = dosages.shape
    for j in numba.prange(m):
        p = freq[j]
        var = 2.0 * p * (1.0 - p)
        if var > 0.0:
            mean = 2.0 * p
            scale = 1.0 / np.sqrt(var)
            for i in range(n):
                v = dosages[i, j]
                dosages[i, j] = (v - mean) * scale if v == v else 0.0
        else:
            for i in range(n):
                dosages[i, j] = 0.0


@jit
def count_missing_pairs(dosages, sample_missing, pair_missing):
    """Add each sample's missing calls to ``sample_missing`` and, for every pair (a <= b) of
    samples both missing at a variant, 1 to ``pair_missing[a, b]`` (upper triangle).

    Cost: sum over variants of (missing calls)^2 / 2, small next to the GRM's n^2 per variant
    at the usual missing rates (a few percent).
    """
    n, m = dosages.shape
    rows = np.empty(n, dtype=np.int64)
    for j in range(m):
        k = 0
        for i in range(n):
            if dosages[i, j] != dosages[i, j]:
                rows[k] = i
                k += 1
        for u in range(k):
            a = rows[u]
            sample_missing[a] += 1
            for v in range(u, k):
                pair_missing[a, rows[v]] += 1
