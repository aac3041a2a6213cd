"""numba kernels: PLINK 1 .bed bytes (and .pgen dosages) straight to mean-imputed float32 dosages, counting the calls on
the way (what bed-reader's decode, a NaN scan and an imputation pass did in three).

A .bed row holds one variant, four samples per byte, the first sample in the two lowest bits.
Codes: 0 = homozygous ALLELE1 (dosage 2), 1 = missing, 2 = heterozygous (1), 3 = homozygous
ALLELE0 (0).  A row is expanded byte by byte through a 256 x 4 table (no per-sample shifts), then
the analysis samples are gathered from it; a missing call is -1 until the variant's mean is known.
The caller owns the output buffers (a fresh 40 MB array per block costs more in page faults than
the decoding itself).
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

from .._accelerate import jit


@lru_cache(maxsize=1)
def byte_table() -> np.ndarray:
    """(256, 4) float32: the four dosages a .bed byte holds, -1 for a missing call (read-only)."""
    codes = (np.arange(256)[:, None] >> (2 * np.arange(4))[None, :]) & 3
    table = np.array([2.0, -1.0, 1.0, 0.0], dtype=np.float32)[codes]
    table.flags.writeable = False
    return table


@jit(fastmath=True)
def _impute(col, acc, n_missing, missing_row, with_missing):
    """Replace the missing calls of ``col`` (negative values) by the mean of the others (float32;
    0 when all are missing), marking them in ``missing_row`` when ``with_missing``."""
    n = col.shape[0]
    mean = np.float32(acc / (n - n_missing)) if n_missing < n else np.float32(0.0)
    for i in range(n):
        v = col[i]
        if with_missing:
            missing_row[i] = v < 0
        col[i] = mean if v < 0 else v


@jit(parallel=True, fastmath=True)
def decode_impute(raw, samples, table, out, missing):
    """Decode (variants, bytes) .bed rows ``raw`` into ``out`` (variants, samples) float32: row j the
    dosages of variant j at the .fam positions ``samples`` (or the first ``out.shape[1]`` samples
    in order when ``samples`` is empty), each missing call replaced by the variant's mean over the
    called samples (0 where all are missing).  ``missing`` (variants, samples) bool receives the
    missing-call mask unless it has no columns.  Returns (calls per variant int64, ALLELE1 sums
    float64)."""
    m, n_bytes = raw.shape
    n = out.shape[1]
    gather = samples.shape[0] > 0
    with_missing = missing.shape[1] > 0
    n_obs = np.empty(m, dtype=np.int64)
    total = np.empty(m, dtype=np.float64)
    for j in numba.prange(m):
        row = raw[j]
        col = out[j]
        full = np.empty(4 * n_bytes, dtype=np.float32)
        for b in range(n_bytes):
            code = row[b]
            for t in range(4):
                full[4 * b + t] = table[code, t]
        if gather:
            for i in range(n):
                col[i] = full[samples[i]]
        else:
            for i in range(n):
                col[i] = full[i]
        acc = np.float32(0.0)  # exact: float32 sums of small integers, below 2^24 per lane
        n_missing = 0
        for i in range(n):
            v = col[i]
            acc += max(v, np.float32(0.0))
            n_missing += v < 0
        n_obs[j] = n - n_missing
        total[j] = acc
        if n_missing:
            _impute(col, acc, n_missing, missing[j], with_missing)
    return n_obs, total


@jit(parallel=True, fastmath=True)
def impute_dosages(rows, samples, out, missing):
    """The dosage counterpart of :func:`decode_impute`: ``rows`` (variants, file samples) float32
    dosages with -9 (any negative value) for a missing call, as pgenlib reads them, gathered at
    ``samples`` (or the first ``out.shape[1]`` in order when empty) into ``out`` (variants,
    samples) with each missing call replaced by the variant's mean over the calls (float32, as
    :func:`decode_impute`).  Returns (calls int64, ALLELE1 sums float64, sums of squares float64)."""
    m = rows.shape[0]
    n = out.shape[1]
    gather = samples.shape[0] > 0
    with_missing = missing.shape[1] > 0
    n_obs = np.empty(m, dtype=np.int64)
    total = np.empty(m, dtype=np.float64)
    squares = np.empty(m, dtype=np.float64)
    for j in numba.prange(m):
        row = rows[j]
        col = out[j]
        if gather:
            for i in range(n):
                col[i] = row[samples[i]]
        else:
            for i in range(n):
                col[i] = row[i]
        acc = 0.0
        sq = 0.0
        n_missing = 0
        for i in range(n):
            v = col[i]
            if v < 0:
                n_missing += 1
            else:
                acc += v
                sq += v * v
        n_obs[j] = n - n_missing
        total[j] = acc
        squares[j] = sq
        if n_missing:
            _impute(col, acc, n_missing, missing[j], with_missing)
    return n_obs, total, squares


@jit(parallel=True, fastmath=True)
def gathered_sums(rows, samples, n):
    """Per row of ``rows`` (variants, file samples) float32, the sum over ``samples`` (or the
    first ``n`` in order when empty), in float64: the BGEN reader's per-sample genotype variances
    summed over the analysis samples (IMPUTE's info)."""
    m = rows.shape[0]
    gather = samples.shape[0] > 0
    out = np.empty(m, dtype=np.float64)
    for j in numba.prange(m):
        row = rows[j]
        acc = 0.0
        if gather:
            for i in range(n):
                acc += row[samples[i]]
        else:
            for i in range(n):
                acc += row[i]
        out[j] = acc
    return out


@jit(parallel=True)
def decode_standardized(raw_t, slots, values, out, missing_words):
    """Sample-major standardized genotypes for the sparse GRM's tiles.

    ``raw_t`` (bytes, variants) uint8: .bed rows restricted to a range of bytes, transposed so that
    one byte column (four samples) is contiguous across variants; ``slots`` (samples,) int64: each
    tile sample's 2-bit slot in that range (sample position - 4 x first byte); ``values``
    (variants, 4): the standardized value of each code (missing: 0); ``out`` (samples, variants)
    C order, filled; ``missing_words`` (samples, ceil(variants / 64)) uint64, zeroed by the caller
    (no columns: not wanted): bit j set where the call at variant j is missing.  Returns each
    sample's missing calls (int64)."""
    n = out.shape[0]
    m = out.shape[1]
    with_missing = missing_words.shape[1] > 0
    counts = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        byte = raw_t[slots[i] >> 2]
        shift = 2 * (slots[i] & 3)
        row = out[i]
        k = 0
        for j in range(m):
            code = (byte[j] >> shift) & 3
            row[j] = values[j, code]
            if code == 1:
                k += 1
                if with_missing:
                    missing_words[i, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
        counts[i] = k
    return counts
