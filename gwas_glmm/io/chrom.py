"""Chromosome names: the one place where every file's chromosome labels become one spelling.

plink's numeric codes and the usual spellings map to plink2's default output names
(``--output-chr MT``): ``1``..``22``, ``X`` (23), ``Y`` (24), ``XY`` (25, the pseudo-autosomal
region), ``MT`` (26); a ``chr`` prefix (any case) and leading zeros are dropped, ``M`` and
``chrM`` are ``MT``, ``PAR1``/``PAR2`` are ``XY``.  Any other name (a contig, another species'
chromosome beyond 22) keeps its spelling without the ``chr`` prefix.  Every reader of a .bim,
a kinship file's LOCO parts, a null file's LOCO parts and ``--chr`` goes through
:func:`normalise_chroms`, so that ``chr1``, ``1`` and ``01`` name the same chromosome and LOCO
finds its parts whatever spelling each file used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from ..exceptions import InputError

AUTOSOMES = tuple(str(k) for k in range(1, 23))
NON_AUTOSOMAL = ("X", "Y", "MT")  # XY (the pseudo-autosomal region) is treated as autosomal
_CODES = {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT", "PAR1": "XY", "PAR2": "XY"}


def chrom_name(name) -> str:
    """The one spelling of one chromosome name (see the module docstring)."""
    text = str(name).strip()
    if text[:3].lower() == "chr":
        text = text[3:]
    if text.isdigit():
        text = str(int(text))
    upper = text.upper()
    if upper in ("X", "Y", "XY", "MT", "M", "PAR1", "PAR2"):
        text = upper
    return _CODES.get(text, text)


def normalise_chroms(values) -> np.ndarray:
    """:func:`chrom_name` of every value, as an object array (each distinct name converted once)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return np.asarray([chrom_name(u) for u in uniques], dtype=object)[codes]


def is_autosomal(names) -> np.ndarray:
    """Whether each (normalised) name is an autosome for the GRM and the scan: anything but X, Y
    and MT (so XY, and the chromosomes of other species, count as autosomal)."""
    return ~np.isin(np.asarray(names, dtype=object).astype(str), NON_AUTOSOMAL)


def list_items(items: Iterable[str]) -> Iterator[str]:
    """plink2's list syntax for an option's values (--chr, --pheno-name, --covar-name): the
    items given separately or separated by commas, blanks dropped."""
    for item in items:
        for piece in str(item).split(","):
            piece = piece.strip()
            if piece:
                yield piece


def parse_chrom_list(items: Iterable[str]) -> list[str]:
    """plink2's --chr syntax: names separated by spaces or commas, and ranges such as ``1-4``
    or ``chr20-22`` (numeric ends, or X/Y/XY/MT by their codes 23-26)."""
    out: list[str] = []
    for piece in list_items(items):
        ends = piece.split("-")
        if len(ends) == 2 and all(ends):
            a, b = (_number(chrom_name(e), piece) for e in ends)
            if a > b:
                raise InputError(f"--chr {piece}: the range runs backwards")
            out.extend(chrom_name(k) for k in range(a, b + 1))
        else:
            out.append(chrom_name(piece))
    return list(dict.fromkeys(out))


_NUMBERS = {"X": 23, "Y": 24, "XY": 25, "MT": 26}


def chrom_sort_key(name) -> tuple:
    """Genome order: 1..22, X, Y, XY, MT (plink's 23..26), then any other name alphabetically."""
    code = chrom_name(name)
    number = int(code) if code.isdigit() else _NUMBERS.get(code)
    return (0, number, "") if number is not None else (1, 0, code)


def _number(name: str, piece: str) -> int:
    if name.isdigit():
        return int(name)
    if name in _NUMBERS:
        return _NUMBERS[name]
    raise InputError(f"--chr {piece}: a range needs chromosome numbers (or X, Y, XY, MT) at both ends")
