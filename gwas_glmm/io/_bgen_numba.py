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
        at = base + 2 * size * i
        if size == 1:
            p_aa, p_ab = np.int32(data[at]), np.int32(data[at + 1])
        else:
            p_aa = np.int32(data[at]) | (np.int32(data[at + 1]) << 8)
            p_ab = np.int32(data[at + 2]) | (np.int32(data[at + 3]) << 8)
        p_bb = max(ceiling - p_aa - p_ab, np.int32(0))
        dosage = np.float32(p_ab + np.int32(2) * p_bb) * scale
        out[i] = dosage
        if with_spread:
            spread[i] = max(np.float32(p_ab + np.int32(4) * p_bb) * scale - dosage * dosage, np.float32(0.0))
    for i in range(n):
        if data[8 + i] & 128:
            out[i] = np.float32(-9.0)
            if with_spread:
                spread[i] = np.float32(0.0)
    return 0


@jit
def decode_layout2(data, n_samples, out, spread):
    """Fill ``out`` (float32, n_samples) from one decompressed layout-2 block ``data`` (uint8), and
    ``spread`` unless it is empty."""
    if data.shape[0] < 10:
        return 3
    n = np.int64(data[0]) | (np.int64(data[1]) << 8) | (np.int64(data[2]) << 16) | (np.int64(data[3]) << 24)
    alleles = np.int64(data[4]) | (np.int64(data[5]) << 8)
    if alleles != 2:
        return 1
    if n != n_samples or data[7] > 2:
        return 2
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

