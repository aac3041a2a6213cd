"""numba kernel of the score tests: the products of a genotype block with a few vectors, summed in
float64 whatever the block's type, in one pass over the block (no (n, m) temporaries)."""

from __future__ import annotations

import numba
import numpy as np

from .._accelerate import jit

GROUP = 4  # variants per pass over the vectors


@jit(fastmath=True)
def _group(g, vectors, weights, j0, dots, wsq):
    """Variants j0 .. j0 + 3 at once: each vector is read once for four columns (the vectors, q n
    doubles, do not fit in L1; the columns' float32 values do), in four independent sums."""
    n = g.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    for i in range(n):
        w = weights[i]
        a0, a1 = np.float64(g[i, j0]), np.float64(g[i, j0 + 1])
        a2, a3 = np.float64(g[i, j0 + 2]), np.float64(g[i, j0 + 3])
        s0 += w * a0 * a0
        s1 += w * a1 * a1
        s2 += w * a2 * a2
        s3 += w * a3 * a3
    wsq[j0], wsq[j0 + 1], wsq[j0 + 2], wsq[j0 + 3] = s0, s1, s2, s3
    for r in range(vectors.shape[0]):
        s0 = s1 = s2 = s3 = 0.0
        for i in range(n):
            v = vectors[r, i]
            s0 += v * np.float64(g[i, j0])
            s1 += v * np.float64(g[i, j0 + 1])
            s2 += v * np.float64(g[i, j0 + 2])
            s3 += v * np.float64(g[i, j0 + 3])
        dots[r, j0], dots[r, j0 + 1], dots[r, j0 + 2], dots[r, j0 + 3] = s0, s1, s2, s3


@jit(fastmath=True)
def _single(g, vectors, weights, j, dots, wsq):
    n = g.shape[0]
    sq = 0.0
    for i in range(n):
        v = np.float64(g[i, j])
        sq += weights[i] * v * v
    wsq[j] = sq
    for r in range(vectors.shape[0]):
        acc = 0.0
        for i in range(n):
            acc += vectors[r, i] * np.float64(g[i, j])
        dots[r, j] = acc


@jit(parallel=True, fastmath=True)
def project(g, vectors, weights):
    """For a (samples, variants) block ``g`` (float32 or float64, Fortran order, no NaN) and (q, n)
    C-order ``vectors``: (vectors @ g as (q, m), sum_i weights_i g_i^2 per variant), accumulated in
    float64, four variants per pass over the vectors.  fastmath lets the compiler reorder these
    sums into SIMD lanes (the inputs hold no NaN: the block is imputed)."""
    m = g.shape[1]
    q = vectors.shape[0]
    dots = np.empty((q, m), dtype=np.float64)
    wsq = np.empty(m, dtype=np.float64)
    full = m // GROUP
    for b in numba.prange(full):
        _group(g, vectors, weights, GROUP * b, dots, wsq)
    for j in range(GROUP * full, m):
        _single(g, vectors, weights, j, dots, wsq)
    return dots, wsq


@jit(parallel=True, fastmath=True)
def whitened_sumsq(g, indptr, indices, data):
    """|W g_j|^2 per variant j of a (samples, variants) block (float32 or float64, Fortran order),
    for the rows of a sparse W given as CSR arrays whose column indices are sample positions in
    ``g``, accumulated in float64: the related samples' part of an exact score variance on a
    sparse GRM (block-diagonal W, a few entries per row), variants in parallel."""
    m = g.shape[1]
    rows = indptr.shape[0] - 1
    out = np.empty(m, dtype=np.float64)
    for j in numba.prange(m):
        total = 0.0
        for r in range(rows):
            acc = 0.0
            for k in range(indptr[r], indptr[r + 1]):
                acc += data[k] * np.float64(g[indices[k], j])
            total += acc * acc
        out[j] = total
    return out
