"""numba kernel of the score tests: the products of a genotype block with a few vectors, summed in
float64 whatever the block's type, in one pass over the block (no (n, m) temporaries)."""

from __future__ import annotations

import numba
import numpy as np

from .._accelerate import jit


@jit(parallel=True, fastmath=True)
def project(g, vectors, weights):
    """For a (samples, variants) block ``g`` (float32 or float64, Fortran order, no NaN) and (q, n)
    C-order ``vectors``: (vectors @ g as (q, m), sum_i weights_i g_i^2 per variant), accumulated in
    float64.  A variant's column is read from cache for each vector; fastmath lets the compiler
    reorder these sums into SIMD lanes (the inputs hold no NaN: the block is imputed)."""
    n, m = g.shape
    q = vectors.shape[0]
    dots = np.empty((q, m), dtype=np.float64)
    wsq = np.empty(m, dtype=np.float64)
    for j in numba.prange(m):
        sq = 0.0
        for i in range(n):
            v = np.float64(g[i, j])
            sq += weights[i] * v * v
        wsq[j] = sq
        for r in range(q):
            acc = 0.0
            for i in range(n):
                acc += vectors[r, i] * np.float64(g[i, j])
            dots[r, j] = acc
    return dots, wsq
