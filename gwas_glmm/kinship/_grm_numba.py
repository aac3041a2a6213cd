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


@jit(parallel=True)
def count_missing_pairs(dosages, sample_missing, pair_missing):
    """Add each sample's missing calls to ``sample_missing`` and, for every pair b <= a of
    samples both missing at a variant, 1 to ``pair_missing[b, a]`` (upper triangle; Fortran
    order, so the column of sample a is contiguous).

    Work is sum over variants of (missing calls)^2 / 2, done sample by sample (in parallel) so
    that each sample's writes stay in one column of the matrix, in cache.
    """
    n, m = dosages.shape
    per_variant = np.zeros(m + 1, dtype=np.int64)
    for j in numba.prange(m):
        k = 0
        for i in range(n):
            if dosages[i, j] != dosages[i, j]:
                k += 1
        per_variant[j + 1] = k
    vptr = np.cumsum(per_variant)
    rows = np.empty(vptr[m], dtype=np.int32)
    for j in numba.prange(m):
        k = vptr[j]
        for i in range(n):
            if dosages[i, j] != dosages[i, j]:
                rows[k] = i
                k += 1
    per_sample = np.zeros(n + 1, dtype=np.int64)
    for t in range(vptr[m]):
        per_sample[rows[t] + 1] += 1
    sptr = np.cumsum(per_sample)
    fill = sptr[:n].copy()
    variants = np.empty(vptr[m], dtype=np.int32)
    for j in range(m):
        for t in range(vptr[j], vptr[j + 1]):
            a = rows[t]
            variants[fill[a]] = j
            fill[a] += 1
    for a in numba.prange(n):
        sample_missing[a] += sptr[a + 1] - sptr[a]
        for t in range(sptr[a], sptr[a + 1]):
            j = variants[t]
            for u in range(vptr[j], vptr[j + 1]):
                b = rows[u]
                if b > a:
                    break
                pair_missing[b, a] += 1


@jit(parallel=True)
def add_upper(dst, src):
    """dst[i, j] += src[i, j] for i <= j (Fortran-order arrays: columns are contiguous)."""
    n = dst.shape[0]
    for j in numba.prange(n):
        for i in range(j + 1):
            dst[i, j] += src[i, j]


@jit(parallel=True)
def symmetrize_upper(a):
    """Copy the upper triangle onto the lower one, in place."""
    n = a.shape[0]
    for j in numba.prange(n):
        for i in range(j):
            a[j, i] = a[i, j]


@jit(parallel=True)
def normalize_upper(total, n_variants, sample_missing, pair_missing, out):
    """out = total / N on both triangles, from the upper triangles of ``total`` and
    ``pair_missing`` (N_ij = M - c_i - c_j + S_ij; N = M when ``pair_missing`` is empty).
    Returns the number of pairs with N <= 0 (left as NaN)."""
    n = total.shape[0]
    gcta = pair_missing.shape[0] == n
    bad = np.zeros(n, dtype=np.int64)
    for j in numba.prange(n):
        for i in range(j + 1):
            count = float(n_variants)
            if gcta:
                count = count - sample_missing[i] - sample_missing[j] + pair_missing[i, j]
            if count > 0:
                v = total[i, j] / count
            else:
                v = np.nan
                bad[j] += 1
            out[i, j] = v
            out[j, i] = v
    return bad.sum()


@jit(parallel=True)
def loco_rows(matrix, part_sum, pm_all, pm_c, c_all, c_c, m_all, m_c, row0, gcta, out):
    """Rows of the GRM without one chromosome, (A N_all - S_c) / (N_all - N_c), with the pair
    counts N = M - c_j - c_k + pair_missing_jk built on the fly (``gcta``; else N = M); ``row0``:
    the first row's index.  Returns True if some pair has no variant left."""
    rows, n = matrix.shape
    empty = False
    for r in numba.prange(rows):
        j = row0 + r
        for k in range(n):
            if gcta:
                n_all = m_all - c_all[j] - c_all[k] + np.float64(pm_all[r, k])
                n_c = m_c - c_c[j] - c_c[k] + np.float64(pm_c[r, k])
            else:
                n_all = np.float64(m_all)
                n_c = np.float64(m_c)
            rest = n_all - n_c
            if rest <= 0:
                empty = True
            out[r, k] = (np.float64(matrix[r, k]) * n_all - np.float64(part_sum[r, k])) / rest
    return empty


_M1, _M2, _M4, _H01 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333),
                       np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101))


@jit(parallel=True)
def shared_missing(words_a, words_b, rows, cols, out):
    """out[k] = calls missing in both sample rows[k] of ``words_a`` and sample cols[k] of
    ``words_b``: a popcount of the AND of their missing masks (one row per sample, one bit per
    variant, packed in uint64), for the candidate pairs of a sparse GRM tile only."""
    width = words_a.shape[1]
    for k in numba.prange(rows.size):
        a, b = rows[k], cols[k]
        total = 0
        for w in range(width):
            x = words_a[a, w] & words_b[b, w]
            x = x - ((x >> np.uint64(1)) & _M1)
            x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
            x = (x + (x >> np.uint64(4))) & _M4
            total += (x * _H01) >> np.uint64(56)
        out[k] = total
