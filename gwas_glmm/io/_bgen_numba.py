"""numba kernel: one BGEN layout-2 probability block (decompressed) to the expected count of the
second allele per sample, for biallelic variants (the BGEN 1.2/1.3 specification, "Genotype data
block (Layout 2)").

The block holds N (uint32), the allele count K (uint16), the least and greatest ploidy (uint8
each), one byte per sample (bit 7: missing; bits 0-5: ploidy), a phased flag, the bits per
probability B, then the probabilities, B bits each, packed least significant bit first, each
the stored integer over 2^B - 1, the last probability of each distribution left out (it is one
minus the others).  Per sample, biallelic:

* unphased, ploidy 2: P(AA), P(AB) stored; dosage of B = P(AB) + 2 P(BB) = 2 - 2 P(AA) - P(AB);
* unphased, ploidy 1: P(A) stored; 2 (1 - P(A)) (a haploid call counts 0 or 2, as in a .bed);
* phased: P(haplotype = A) per haplotype; the sum of 1 - P over the haplotypes (times 2 when
  haploid).

With ``spread`` (float32, n_samples; empty to skip) each sample's genotype variance given its
probabilities is written too, E[g^2] - E[g]^2, for IMPUTE's info measure
(:attr:`gwas_glmm.genotype.stats.VariantStats.info`): unphased diploid P(AB) + 4 P(BB) - dosage^2,
phased the two haplotypes' q (1 - q), haploid 4 q (1 - q) (q = P(B)); 0 for a missing sample.

Missing samples still occupy their probabilities (zeros) and get -9.  Returns 0, or a code for
what this kernel does not decode (then the caller falls back to the ``bgen`` package): 1 not two
alleles, 2 a ploidy above 2 or a sample count that does not match, 3 a truncated block.
"""

from __future__ import annotations

import numpy as np

from .._accelerate import jit
from ..genotype._decode_numba import _impute


@jit
def _bits(data, position, width):
    """The ``width``-bit integer at bit ``position`` of ``data`` (least significant bit first)."""
    value = np.uint64(0)
    got = 0
    byte = position >> 3
    shift = position & 7
    while got < width:
        take = min(8 - shift, width - got)
        part = (np.uint64(data[byte]) >> np.uint64(shift)) & np.uint64((1 << take) - 1)
        value |= part << np.uint64(got)
        got += take
        byte += 1
        shift = 0
    return value


@jit
def _genotype(data, base, size, top, scale, k):
    """(dosage, spread) of file sample ``k`` of an unphased diploid block of ``size``-byte
    probabilities: (P(AB) + 2 P(BB)) / top and (P(AB) + 4 P(BB)) / top - dosage^2 (at least 0),
    with P(BB) = top - P(AA) - P(AB) (at least 0), in 32-bit integers and float32."""
    at = base + 2 * size * k
    if size == 1:
        p_aa, p_ab = np.int32(data[at]), np.int32(data[at + 1])
    else:
        p_aa = np.int32(data[at]) | (np.int32(data[at + 1]) << 8)
        p_ab = np.int32(data[at + 2]) | (np.int32(data[at + 3]) << 8)
    p_bb = max(top - p_aa - p_ab, np.int32(0))
    dosage = np.float32(p_ab + np.int32(2) * p_bb) * scale
    return dosage, max(np.float32(p_ab + np.int32(4) * p_bb) * scale - dosage * dosage, np.float32(0.0))


@jit
def _diploid_bytes(data, n, size, top, out, spread):
    """Unphased, every sample diploid, 8 or 16 bits (``size`` bytes) a probability, ``top`` =
    2^bits - 1: one loop, in 32-bit integers and float32 (7.5 us a variant at N = 10,000 for 8
    bits called from Python, 11.5 with the spread; int64 and float64 were slower).
    The count P(AB) + 2 P(BB), P(BB) = top - P(AA) - P(AB) (at least 0), is exact; times
    float32(1 / top) it is within one float32 step of the quotient, and exactly 0, 1 or 2 for
    stored hard calls.  The spread, in the same pass: (P(AB) + 4 P(BB)) / top - dosage^2."""
    base = 10 + n
    if data.shape[0] < base + 2 * size * n:
        return 3
    scale = np.float32(1.0 / top)
    ceiling = np.int32(top)
    with_spread = spread.shape[0] > 0
    for i in range(n):
        dosage, variance = _genotype(data, base, size, ceiling, scale, i)
        out[i] = dosage
        if with_spread:
            spread[i] = variance
    for i in range(n):
        if data[8 + i] & 128:
            out[i] = np.float32(-9.0)
            if with_spread:
                spread[i] = np.float32(0.0)
    return 0


@jit
def _check_header(data, n_samples):
    """The block's sample count, or minus the code of what the kernels do not decode: 1 not two
    alleles, 2 a ploidy above 2 or a sample count that does not match, 3 a truncated block."""
    if data.shape[0] < 10:
        return -3
    n = np.int64(data[0]) | (np.int64(data[1]) << 8) | (np.int64(data[2]) << 16) | (np.int64(data[3]) << 24)
    alleles = np.int64(data[4]) | (np.int64(data[5]) << 8)
    if alleles != 2:
        return -1
    if n != n_samples or data[7] > 2:
        return -2
    if data.shape[0] < 10 + n:
        return -3
    return n


@jit
def decode_layout2(data, n_samples, out, spread):
    """Fill ``out`` (float32, n_samples) from one decompressed layout-2 block ``data`` (uint8), and
    ``spread`` unless it is empty."""
    n = _check_header(data, n_samples)
    if n < 0:
        return -n
    phased = data[8 + n] != 0
    width = np.int64(data[9 + n])
    if width < 1 or width > 32:
        return 3
    top = (np.int64(1) << width) - 1
    if not phased and data[6] == 2 and data[7] == 2 and (width == 8 or width == 16):
        return _diploid_bytes(data, n, width // 8, top, out, spread)  # the usual file: whole bytes, no bit loop
    position = (10 + n) * 8
    total_bits = data.shape[0] * 8
    with_spread = spread.shape[0] > 0
    for i in range(n):
        code = data[8 + i]
        ploidy = np.int64(code & 63)
        stored = ploidy  # biallelic: one value per haplotype, or (ploidy + 1 combinations) - 1
        if position + stored * width > total_bits:
            return 3
        variance = 0.0
        if ploidy == 2 and not phased:  # P(AA), P(AB)
            p_aa, p_ab = np.int64(_bits(data, position, width)), np.int64(_bits(data, position + width, width))
            count = 2 * top - 2 * p_aa - p_ab
            second = (4 * max(top - p_aa - p_ab, 0) + p_ab) / top
            variance = second - (max(count, 0) / top) ** 2
        elif ploidy == 2:  # P(A) on each haplotype
            q1 = 1.0 - np.int64(_bits(data, position, width)) / top
            q2 = 1.0 - np.int64(_bits(data, position + width, width)) / top
            count = 2 * top - np.int64(_bits(data, position, width)) - np.int64(_bits(data, position + width, width))
            variance = q1 * (1.0 - q1) + q2 * (1.0 - q2)
        elif ploidy == 1:
            q = 1.0 - np.int64(_bits(data, position, width)) / top
            count = 2 * (top - np.int64(_bits(data, position, width)))
            variance = 4.0 * q * (1.0 - q)
        else:  # ploidy 0: no call
            count = -top
        dosage = max(count, 0) / top if count > -top else -9.0
        position += stored * width
        missing = code & 128 or dosage < 0
        out[i] = np.float32(-9.0) if missing else np.float32(min(dosage, 2.0))
        if with_spread:
            spread[i] = np.float32(0.0) if missing else np.float32(max(variance, 0.0))
    return 0



@jit
def _finish(out, mask_row, stats, j, acc, sq, spread_sum, n_missing):
    """A gathered row's statistics into ``stats[:, j]`` (calls, sum, sum of squares, summed
    spread), its missing calls (negative) replaced by the mean of the others (0 when none is
    called) and marked in ``mask_row`` when it has columns, by the dosage readers' own
    ``_impute``."""
    stats[0, j] = out.shape[0] - n_missing
    stats[1, j] = acc
    stats[2, j] = sq
    stats[3, j] = spread_sum
    if n_missing:  # the mask was zeroed by the caller: only a row with missing calls marks any
        _impute(out, acc, n_missing, mask_row, mask_row.shape[0] > 0)


# sums may be reordered (so the loops vectorise) but nothing contracted into fused multiply-adds:
# a hard call's spread, x - x^2 with x = 255 * float32(1 / 255), must round to 0 as when unfused
_REORDER = {"reassoc", "nsz", "nnan", "ninf"}


@jit(fastmath=_REORDER)
def _sample(data, base, size, top, scale, k, out, i, sums):
    """File sample ``k`` of an unphased diploid 8- or 16-bit block into ``out[i]`` (-9 if missing),
    added to ``sums`` (dosages, their squares, spreads, calls) branch-free: a missing sample's
    zero probabilities are weighted 0."""
    called = np.int32(data[8 + k] < 128)
    dosage, spread = _genotype(data, base, size, top, scale, k)
    weight = np.float32(called)
    out[i] = dosage if called else np.float32(-9.0)
    return (sums[0] + weight * dosage, sums[1] + weight * (dosage * dosage), sums[2] + weight * spread,
            sums[3] + called)


@jit(fastmath=_REORDER)
def decode_gathered(data, n_samples, gather, excluded, scratch, out, mask_row, stats, j):
    """One decompressed layout-2 block into ``out`` (float32, the analysis samples: file positions
    ``gather``, or the first ``out.shape[0]`` in order when empty), mean-imputed, with its
    statistics in ``stats[:, j]``, for the usual file (biallelic, unphased, every sample diploid,
    8 or 16 bits).  With no gather, one branch-free pass straight into ``out``; with one, a pass
    over every file sample into ``scratch`` (n_samples float32), a gathering copy, and the sums of
    the ``excluded`` samples (the file's others, none twice) taken off: a loop that picks the
    gathered samples' bytes does not vectorise (49 us a variant at N = 10,000, against 18).
    Returns 0, 4 for another layout (the caller decodes it with :func:`decode_layout2` and
    :func:`gather_row`), or :func:`decode_layout2`'s codes."""
    n = _check_header(data, n_samples)
    if n < 0:
        return -n
    width = np.int64(data[9 + n])
    if data[8 + n] != 0 or data[6] != 2 or data[7] != 2 or (width != 8 and width != 16):
        return 4
    size = width // 8
    base = 10 + n
    if data.shape[0] < base + 2 * size * n:
        return 3
    top = (np.int32(1) << np.int32(width)) - np.int32(1)
    scale = np.float32(1.0 / top)
    m = out.shape[0]
    gathering = gather.shape[0] > 0
    target = scratch if gathering else out
    sums = (0.0, 0.0, 0.0, 0)
    for i in range(n if gathering else m):
        sums = _sample(data, base, size, top, scale, i, target, i, sums)
    acc, sq, spread_sum, n_called = sums
    if gathering:
        for i in range(m):
            out[i] = scratch[gather[i]]
        off = (0.0, 0.0, 0.0, 0)
        for k in excluded:
            off = _sample(data, base, size, top, scale, k, scratch, k, off)
        acc, sq, spread_sum, n_called = acc - off[0], sq - off[1], spread_sum - off[2], n_called - off[3]
    _finish(out, mask_row, stats, j, acc, sq, spread_sum, m - n_called)
    return 0


@jit
def gather_row(row, spread, gather, out, mask_row, stats, j):
    """As :func:`decode_gathered`, from a row already decoded in file order (``row`` with -9 where
    missing, ``spread`` each sample's genotype variance)."""
    m = out.shape[0]
    gathering = gather.shape[0] > 0
    acc = 0.0
    sq = 0.0
    spread_sum = 0.0
    n_missing = 0
    for i in range(m):
        k = gather[i] if gathering else i
        v = row[k]
        out[i] = v
        if v < 0:
            n_missing += 1
        else:
            acc += v
            sq += v * v
            spread_sum += spread[k]
    _finish(out, mask_row, stats, j, acc, sq, spread_sum, n_missing)
