"""numba kernel: the variant headers of a BGEN file (the specification's "Variant identifying
data"), walked from the first variant to the last over windows of the file's bytes, genotype
blocks skipped by their stored lengths: where each text field lies, the position, the allele count and
the genotype block's byte range, for every variant at once (the ``bgen`` package's iterator made
a Python object per variant: 12-14 s for 1,000,000 variants).

Layout 2: Lid (uint16) and the variant ID, Lrsid and the rsid, Lchr and the chromosome, the
position (uint32), K (uint16), K alleles (uint32 length and text each), then the genotype block:
C (uint32) and C bytes.  Layout 1 starts with the sample count (uint32), has no K (two alleles),
and its block is C and C bytes when compressed, 6 N bytes when not.
"""

from __future__ import annotations

import numpy as np

from .._accelerate import jit

# columns of the table the walk fills, one row per variant
VARID, RSID, CHROM = 0, 2, 4  # (offset, length) pairs of the text fields
POS, NALLELES, ALLELE0, ALLELE1, BLOCK = 6, 7, 8, 10, 12  # ALLELE0/1: (offset, length); BLOCK: (start, end)
COLUMNS = 14


@jit
def _u16(buf, at):
    return np.int64(buf[at]) | (np.int64(buf[at + 1]) << 8)


@jit
def _u32(buf, at):
    return (np.int64(buf[at]) | (np.int64(buf[at + 1]) << 8) | (np.int64(buf[at + 2]) << 16)
            | (np.int64(buf[at + 3]) << 24))


@jit
def walk(buf, base, first, layout, compressed, n_samples, out):
    """Fill rows of ``out`` (n_variants, COLUMNS) from the variant at byte ``first`` of the file,
    ``buf`` holding its bytes from ``base`` on (a window of it: uint8).  Byte positions in ``out``
    are the file's; a genotype block's range starts at its C field (what the layout-2 decoder
    reads) and may end beyond the window.  Returns (rows filled, where the next variant starts):
    it stops at the first variant whose header the window does not hold to its C field."""
    end = base + buf.shape[0]
    at = first
    for k in range(out.shape[0]):
        start = at
        if layout == 1:
            at += 4  # the sample count
        for field in (VARID, RSID, CHROM):
            if at + 2 > end:
                return k, start
            length = _u16(buf, at - base)
            out[k, field], out[k, field + 1] = at + 2, length
            at += 2 + length
        if at + 4 > end:
            return k, start
        out[k, POS] = _u32(buf, at - base)
        at += 4
        count = 2
        if layout == 2:
            if at + 2 > end:
                return k, start
            count = _u16(buf, at - base)
            at += 2
        out[k, NALLELES] = count
        out[k, ALLELE0] = out[k, ALLELE0 + 1] = out[k, ALLELE1] = out[k, ALLELE1 + 1] = 0
        for a in range(count):
            if at + 4 > end:
                return k, start
            length = _u32(buf, at - base)
            if a < 2:
                out[k, ALLELE0 + 2 * a], out[k, ALLELE0 + 2 * a + 1] = at + 4, length
            at += 4 + length
        if at > end or (not (layout == 1 and not compressed) and at + 4 > end):
            return k, start
        out[k, BLOCK] = at
        at += 6 * n_samples if layout == 1 and not compressed else 4 + _u32(buf, at - base)
        out[k, BLOCK + 1] = at
    return out.shape[0], at


@jit
def gather(buf, offsets, lengths, out):
    """Row k of ``out`` (n, width) uint8, zeroed: the ``lengths[k]`` bytes of ``buf`` at ``offsets[k]``
    (positions in ``buf``; at most ``width``: the caller reads longer fields itself)."""
    width = out.shape[1]
    for k in range(out.shape[0]):
        start = offsets[k]
        length = min(lengths[k], width)
        for c in range(length):
            out[k, c] = buf[start + c]
