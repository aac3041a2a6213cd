"""The results table's text: a block's rows are formatted and gzip-compressed by the worker that
tested it (compression releases the GIL, so blocks compress in parallel), and the results file is
the header's gzip member followed by every block's member in variant order.  A gzip file of
several members is one valid gzip stream to gzip, zcat, Python, pandas, R and bgzip tools; with a
zero timestamp and no file name each member, and so the file, depends on the rows alone (a resumed
scan's file is byte-identical to an uninterrupted one's)."""

from __future__ import annotations

import math
import zlib

import numpy as np

from ..io.plink import VariantTable

COLUMNS = ["CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "N", "MAC", "BETA", "SE", "CHISQ", "P", "LOG10P",
           "TEST"]
BINARY_COLUMNS = ["A1FREQ_CASES", "A1FREQ_CONTROLS", "N_CASES", "N_CONTROLS"]
COMPRESS_LEVEL = 4


def format_p(log10p: float) -> str:
    """P as text from -log10 P, exact below the double range (e.g. 3.2e-412)."""
    if not math.isfinite(log10p):
        return "NA"
    exponent = math.floor(-log10p)
    mantissa = 10 ** (-log10p - exponent)
    if mantissa >= 9.9995:
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.4g}e{exponent:+03d}" if exponent < -4 else f"{10 ** -log10p:.4g}"


def gzip_member(text: str) -> bytes:
    """``text`` as one gzip member (deflate level COMPRESS_LEVEL, mtime 0, no file name)."""
    packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    return packer.compress(text.encode()) + packer.flush()


def header(binary: bool, info: bool = False) -> str:
    """The header line; ``info``: an INFO column after A1FREQ (dosage files, as REGENIE)."""
    columns = [*COLUMNS[:6], "INFO", *COLUMNS[6:]] if info else COLUMNS
    return "\t".join(columns + (BINARY_COLUMNS if binary else [])) + "\n"


def block_rows(variants: VariantTable, arrays: dict[str, np.ndarray], name: str, binary: bool) -> str:
    """The rows of phenotype ``name`` in one block's arrays (``index`` the variants' .bim positions).
    Formatting holds the GIL, so it works on Python lists with one f-string per row (numpy
    scalars' own formatting is twice as slow)."""
    idx, score, var = arrays["index"], arrays[f"{name}.score"], arrays[f"{name}.var"]
    freq, count, mac = (arrays.get(f"{name}.{c}", arrays[c]) for c in ("a1freq", "n", "mac"))
    log10p, spa = arrays[f"{name}.log10p"], arrays[f"{name}.spa"]
    lead = ["\t".join(map(str, row)) for row in zip(
        variants.chrom[idx].tolist(), variants.pos[idx].tolist(), variants.id[idx].tolist(),
        variants.allele0[idx].tolist(), variants.allele1[idx].tolist())]
    tested = np.isfinite(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta, se, chisq = score / var, 1 / np.sqrt(var), score**2 / var
    if "info" in arrays:  # dosage files: INFO after A1FREQ
        freq = [f"{f:.6g}\t{i:.4g}" if i == i else f"{f:.6g}\tNA" for f, i in zip(freq.tolist(), arrays["info"].tolist())]
    else:
        freq = [f"{f:.6g}" for f in freq.tolist()]
    counts = zip(freq, np.asarray(count, dtype=np.int64).tolist(), mac.tolist())
    stats = zip(beta.tolist(), se.tolist(), chisq.tolist(), log10p.tolist(), spa.tolist(), tested.tolist())
    tail = [""] * len(idx)
    if binary:
        tail = [f"\t{fa:.6g}\t{fo:.6g}\t{na}\t{no}" for fa, fo, na, no in zip(
            arrays[f"{name}.freq_cases"].tolist(), arrays[f"{name}.freq_controls"].tolist(),
            np.asarray(arrays[f"{name}.n_cases"], dtype=np.int64).tolist(),
            np.asarray(arrays[f"{name}.n_controls"], dtype=np.int64).tolist())]
    lines = []
    for head, (f, c, a), (b, e, q, lp, s, ok), end in zip(lead, counts, stats, tail):
        if ok:
            test = "SPA" if s else "SCORE"
            lines.append(f"{head}\t{f}\t{c}\t{a:.6g}\t{b:.6g}\t{e:.6g}\t{q:.6g}\t{format_p(lp)}\t{lp:.6g}\t"
                         f"{test}{end}\n")
        else:  # below --mac among this phenotype's own samples
            lines.append(f"{head}\t{f}\t{c}\t{a:.6g}\tNA\tNA\tNA\tNA\tNA\tNA{end}\n")
    return "".join(lines)
