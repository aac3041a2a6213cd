"""Phenotype and covariate files (PLINK style) and the alignment of samples across inputs.

Accepted layout, as plink2 and REGENIE read it: whitespace- or tab-separated; a header line
``FID IID name...`` (``#FID`` also accepted), or ``IID name...`` to match on IID alone, or no
header (plink1 style: FID, IID, then values named PHENO1.. / COVAR1..).  Missing values: empty
cells (tab-separated files), ``NA``, ``nan``, ``.`` and ``-9``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .._progress import get_logger
from .._validation import check_file, first_duplicate
from ..exceptions import AlignmentError, InputError
from .chrom import list_items
from .plink import SampleTable, read_columns, read_fam

MISSING_CODES = frozenset({"", "na", "nan", ".", "-9"})
MAX_CATEGORY_LEVELS = 100

log = get_logger("io")


@dataclass(frozen=True)
class _RawTable:
    path: Path
    fid: np.ndarray | None
    iid: np.ndarray
    cells: pd.DataFrame  # value columns as str
    first_line: int  # file line number of the first data row

    def line_of(self, row: int) -> int:
        return self.first_line + row

    def sample_of(self, row: int) -> str:
        return f"{self.fid[row]} {self.iid[row]}" if self.fid is not None else str(self.iid[row])

    def select(self, names: Sequence[str] | None, flag: str) -> list[str]:
        available = list(self.cells.columns)
        if names is None:
            if not available:
                raise InputError(f"{self.path}: no value columns after the sample IDs")
            return available
        return expand_names(names, available, flag, self.path)


def expand_names(names: Sequence[str], available: Sequence[str], flag: str, path) -> list[str]:
    """plink2's column-list syntax: names separated by spaces or commas, and ranges ``PC1-PC10``
    (every column from PC1 to PC10 in the file's order); a name that is itself a column is taken
    as it is, dashes and all."""
    available = list(available)
    position = {name: k for k, name in enumerate(available)}
    out: list[str] = []
    missing: list[str] = []
    for piece in list_items(names):
        if piece in position:
            out.append(piece)
            continue
        ends = piece.split("-")
        spans = [("-".join(ends[:k]), "-".join(ends[k:])) for k in range(1, len(ends))]
        span = next(((a, b) for a, b in spans if a in position and b in position), None)
        if span is None:
            missing.append(piece)
            continue
        a, b = position[span[0]], position[span[1]]
        if a > b:
            raise InputError(f"{path}: {flag} {piece}: {span[0]} comes after {span[1]} in the file")
        out.extend(available[a : b + 1])
    if missing:
        raise InputError(f"{path}: no column named {', '.join(map(repr, missing))} ({flag}); columns are: {' '.join(available)}")
    return list(dict.fromkeys(out))


def _header_tokens(line: str, sep: str, default_prefix: str) -> tuple[list[str], bool]:
    """(column names, whether ``line`` is a header) for a file's first non-comment line."""
    tokens = line.rstrip("\r\n").split("\t") if sep == "\t" else line.split()
    first = tokens[0].lstrip("#").upper()
    if first == "FID" and len(tokens) > 1 and tokens[1].upper() == "IID":
        return ["FID", "IID", *tokens[2:]], True
    if first == "IID":
        return ["IID", *tokens[1:]], True
    return ["FID", "IID"] + [f"{default_prefix}{k + 1}" for k in range(len(tokens) - 2)], False  # plink1 layout


def _read_table(path: str | os.PathLike, what: str, default_prefix: str) -> _RawTable:
    """Whitespace-separated as plink2 reads it (any mix of tabs and spaces); where that leaves a
    row short or long and the header has tabs, tab-separated with empty cells as missing values.
    A UTF-8 byte-order mark is ignored."""
    path = check_file(path, f"{what} file")
    if path.suffix == ".fam" and what == "phenotype":
        return _fam_table(path)
    line, n_skip = None, 0
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for text in fh:
            n_skip += 1
            if not text.startswith("##") and text.strip():
                line = text
                break
    if line is None:
        raise InputError(f"{path}: the {what} file is empty")
    try:
        return _parse_table(path, what, line, n_skip, r"\s+", default_prefix)
    except InputError:
        if "\t" not in line:
            raise
    return _parse_table(path, what, line, n_skip, "\t", default_prefix)


def _fam_table(path: Path) -> _RawTable:
    """A .fam's phenotype columns (the sixth and any after it, as in GEMMA's example data) as
    PHENO1, PHENO2, ...: GEMMA's ``-n 1`` is ``--pheno-name PHENO1``."""
    fam = read_fam(path)  # checks the IDs
    cells = read_columns(path, 6, ".fam", more=True).iloc[:, 5:]
    cells.columns = [f"PHENO{k + 1}" for k in range(cells.shape[1])]
    return _RawTable(path, fam.fid, fam.iid, cells.reset_index(drop=True), 1)


def _parse_table(path: Path, what: str, line: str, n_skip: int, sep: str, default_prefix: str) -> _RawTable:
    header_tokens, is_header = _header_tokens(line, sep, default_prefix)
    if not is_header:
        n_skip -= 1
    dup = first_duplicate(header_tokens)
    if dup is not None:
        raise InputError(f"{path}: column name {header_tokens[dup[1]]!r} appears twice in the header")
    try:
        cells = pd.read_csv(
            path, sep=sep, header=None, skiprows=n_skip, dtype=str, na_filter=False, engine="c",
            skip_blank_lines=True, comment=None, index_col=False, encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        cells = pd.DataFrame(columns=header_tokens, dtype=str)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot parse the {what} file ({' '.join(str(exc).split())}); every row needs one value "
            "per header column"
        ) from None
    if cells.shape[1] > len(header_tokens):
        row = int(np.flatnonzero(cells.iloc[:, len(header_tokens):].notna().any(axis=1).to_numpy())[0])
        raise InputError(
            f"{path}: line {n_skip + row + 1} has more values than the {len(header_tokens)} header columns"
        )
    cells.columns = header_tokens[: cells.shape[1]]
    cells = cells.reindex(columns=header_tokens)
    short = cells.isna()
    if sep != "\t":  # whitespace-separated: an empty cell can only be a missing field
        short |= cells == ""
    short = short.any(axis=1).to_numpy()
    if short.any():
        row = int(np.flatnonzero(short)[0])
        raise InputError(
            f"{path}: line {n_skip + row + 1} has fewer values than the {len(header_tokens)} header columns"
        )
    if len(cells) == 0:
        raise InputError(f"{path}: the {what} file has a header but no samples")
    has_fid = header_tokens[0] == "FID"
    fid = cells.pop("FID").to_numpy(dtype=object) if has_fid else None
    iid = cells.pop("IID").to_numpy(dtype=object)
    keys = list(zip(fid, iid)) if has_fid else list(iid)
    dup = first_duplicate(keys)
    if dup is not None:
        a, b = dup
        sample = f"FID {fid[b]} IID {iid[b]}" if has_fid else f"IID {iid[b]}"
        raise InputError(
            f"{path}: sample {sample} appears on lines {n_skip + a + 1} and {n_skip + b + 1}; "
            "each sample may appear once"
        )
    return _RawTable(path, fid, iid, cells, n_skip + 1)


def _parse_numeric(raw: _RawTable, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for missing codes, mask of cells that are neither missing nor numbers)."""
    text = raw.cells[name].str.strip()
    missing = text.str.lower().isin(MISSING_CODES).to_numpy()
    values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad = (np.isnan(values) & ~missing) | np.isinf(values)
    values[values == -9] = np.nan
    return values, bad


@dataclass(frozen=True)
class PhenotypeTable:
    """Phenotypes as read from one file: values (samples x traits, NaN missing), in file order.

    A trait whose values are 0 and 1 is case/control (0 control, 1 case); one whose values are 1
    and 2, with or without 0, is plink's case/control coding (1 control, 2 case, 0 and -9
    missing), as plink2 reads a phenotype.  ``values`` holds those recoded to 0/1 (controls 0,
    cases 1); ``raw`` the numbers as written (-9 and the other missing codes NaN), which a count
    family (:meth:`for_family`) uses.
    """

    path: Path
    fid: np.ndarray | None
    iid: np.ndarray
    names: list[str]
    values: np.ndarray
    binary: np.ndarray  # bool per trait
    coding: list[str | None]  # '0/1', '1/2' or None (quantitative)
    raw: np.ndarray | None = None

    def infer_family(self) -> str:
        """binomial if every trait is case/control, gaussian if none is; both is an error."""
        binary = [n for n, b in zip(self.names, self.binary) if b]
        other = [n for n, b in zip(self.names, self.binary) if not b]
        if binary and other:
            raise InputError(
                f"{self.path}: phenotype(s) {', '.join(binary)} are case/control and {', '.join(other)} are not; "
                "fit them in separate runs (--pheno-name), or give --family for all of them")
        family = "binomial" if binary else "gaussian"
        log.info("--family not given: %s, as the phenotype(s) %s %s", family, ", ".join(self.names),
                 "are case/control (0/1, or plink's 1/2)" if binary else "are not case/control")
        return family

    def for_family(self, family: str) -> PhenotypeTable:
        """The values a ``family`` fit uses: case/control traits recoded to 0/1 for binomial (a
        trait that is not case/control is an error naming its values) and gaussian; the numbers as
        written for the count families."""
        if family == "binomial":
            for k, name in enumerate(self.names):
                if not self.binary[k]:
                    raw = self.values[:, k] if self.raw is None else self.raw[:, k]
                    found = np.unique(raw[~np.isnan(raw)])
                    shown = ", ".join(f"{v:g}" for v in found[:6]) + (", ..." if len(found) > 6 else "")
                    raise InputError(
                        f"{self.path}: phenotype {name} is not case/control (values {shown}); --family binomial "
                        "reads 0/1 (0 control, 1 case) or plink's 1/2 (1 control, 2 case, 0 and -9 missing)")
            return self
        for k, name in enumerate(self.names):
            if self.binary[k] and family == "gaussian":
                log.info("phenotype %s is case/control, fitted as gaussian (a linear mixed model) as --family asks",
                         name)
        if family in ("gaussian",) or self.raw is None:
            return self
        return replace(self, values=self.raw, binary=np.zeros(len(self.names), dtype=bool),
                       coding=[None] * len(self.names))


def read_phenotypes(path: str | os.PathLike, names: Sequence[str] | None = None) -> PhenotypeTable:
    """Read the named phenotype columns (default: all) and detect case/control traits."""
    raw = _read_table(path, "phenotype", "PHENO")
    names = raw.select(names, "--pheno-name")
    columns, numbers, binary, coding = [], [], [], []
    for name in names:
        values, bad = _parse_numeric(raw, name)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{raw.path}: phenotype {name} of sample {raw.sample_of(row)} (line "
                f"{raw.line_of(row)}) is {raw.cells[name].iloc[row]!r}, not a number; use NA for "
                "a missing value"
            )
        numbers.append(values.copy())
        observed = set(np.unique(values[~np.isnan(values)]).tolist())
        code = None
        if observed == {0.0, 1.0}:
            code = "0/1"
        elif {1.0, 2.0} <= observed <= {0.0, 1.0, 2.0}:
            code = "1/2"
            zeros = int(np.sum(values == 0))
            if zeros:
                log.info("phenotype %s: plink case/control coding (1 control, 2 case); %d value(s) 0 read as "
                         "missing", name, zeros)
            values = np.where(values == 0, np.nan, values - 1.0)
        columns.append(values)
        binary.append(code is not None)
        coding.append(code)
    return PhenotypeTable(raw.path, raw.fid, raw.iid, names, np.column_stack(columns), np.array(binary), coding,
                          np.column_stack(numbers))


@dataclass(frozen=True)
class CovariateTable:
    """Covariates as read from one file, categorical columns already expanded.

    A column with any non-numeric value (or one named in ``categorical``) becomes indicator
    columns ``name=level`` for every level but the first in sorted order (the reference), as
    plink2 does.
    """

    path: Path
    fid: np.ndarray | None
    iid: np.ndarray
    names: list[str]
    values: np.ndarray
    categories: dict[str, list[str]] = field(default_factory=dict)  # column -> levels, reference first


def read_covariates(
    path: str | os.PathLike | Sequence[str | os.PathLike], names: Sequence[str] | None = None,
    categorical: Sequence[str] = ()
) -> CovariateTable:
    """One covariate file, or several joined on the sample IDs (e.g. the usual covariates and a
    plink2 .eigenvec of PCs): each ``--covar-name`` item is looked up in the files in turn (a range
    such as PC1-PC10 within one file); a sample absent from a file has those covariates missing."""
    if isinstance(path, (str, os.PathLike)):
        return _covariates_of(_read_table(path, "covariate", "COVAR"), names, categorical)
    raws = [_read_table(p, "covariate", "COVAR") for p in path]
    if len(raws) == 1:
        return _covariates_of(raws[0], names, categorical)
    wanted: list[list[str] | None] = [None] * len(raws)
    if names is not None:
        wanted = [[] for _ in raws]
        for piece in list_items(names):
            for k, raw in enumerate(raws):
                try:
                    expand_names([piece], raw.cells.columns, "--covar-name", raw.path)
                except InputError:
                    continue
                wanted[k].append(piece)
                break
            else:
                columns = " ".join(c for raw in raws for c in raw.cells.columns)
                raise InputError(f"--covar-name {piece}: no such column in {', '.join(str(r.path) for r in raws)}; "
                                 f"columns are: {columns}")
    tables = [_covariates_of(raw, chosen, [c for c in categorical if c in raw.cells.columns])
              for raw, chosen in zip(raws, wanted) if chosen is None or chosen]
    return _join_covariates(tables)


def _join_covariates(tables: list[CovariateTable]) -> CovariateTable:
    """The first table's samples, with every table's columns (NaN where a file lacks the sample)."""
    seen: dict[str, Path] = {}
    for t in tables:
        for name in t.names:
            if name in seen:
                raise InputError(f"covariate {name!r} is in both {seen[name]} and {t.path}; rename one, or choose "
                                 "columns with --covar-name")
            seen[name] = t.path
    by_iid = any(t.fid is None for t in tables)

    def keys(t):
        return list(map(str, t.iid)) if by_iid else list(zip(map(str, t.fid), map(str, t.iid)))

    first = tables[0]
    base = keys(first)
    columns = [first.values]
    for t in tables[1:]:
        row = {k: j for j, k in enumerate(keys(t))}
        take = np.array([row.get(k, -1) for k in base], dtype=np.int64)
        values = np.full((len(base), len(t.names)), np.nan)
        values[take >= 0] = t.values[take[take >= 0]]
        columns.append(values)
    categories = {k: v for t in tables for k, v in t.categories.items()}
    return CovariateTable(first.path, first.fid, first.iid, [n for t in tables for n in t.names],
                          np.column_stack(columns), categories)


def _covariates_of(raw: _RawTable, names: Sequence[str] | None, categorical: Sequence[str]) -> CovariateTable:
    names = raw.select(names, "--covar-name")
    unknown = [c for c in categorical if c not in names]
    if unknown:
        raise InputError(f"{raw.path}: categorical covariate(s) {', '.join(unknown)} are not among the covariates chosen")
    out_names, columns, categories = [], [], {}
    for name in names:
        values, bad = _parse_numeric(raw, name)
        if not bad.any() and name not in categorical:
            out_names.append(name)
            columns.append(values)
            continue
        text = raw.cells[name].str.strip()
        missing = text.str.lower().isin(MISSING_CODES).to_numpy()
        levels = sorted(set(text[~missing]))
        if len(levels) > MAX_CATEGORY_LEVELS:
            raise InputError(
                f"{raw.path}: covariate {name!r} has {len(levels)} distinct non-numeric values (e.g. "
                f"{levels[0]!r}); is it an ID column? choose covariates with --covar-name"
            )
        categories[name] = levels
        for level in levels[1:]:
            indicator = (text == level).to_numpy(dtype=np.float64)
            indicator[missing] = np.nan
            out_names.append(f"{name}={level}")
            columns.append(indicator)
        log.info("covariate %r is categorical: %d levels, reference %r", name, len(levels), levels[0] if levels else None)
    values = np.column_stack(columns) if columns else np.zeros((len(raw.iid), 0))
    return CovariateTable(raw.path, raw.fid, raw.iid, out_names, values, categories)


@dataclass(frozen=True)
class AlignmentReport:
    """How many .fam samples were kept, and how many were dropped for each reason (in order)."""

    n_fam: int
    n_kept: int
    dropped: tuple[tuple[str, int], ...]

    def lines(self) -> list[str]:
        out = [f"{self.n_kept} of {self.n_fam} samples kept"]
        out += [f"  {count} dropped: {reason}" for reason, count in self.dropped if count]
        return out


@dataclass(frozen=True)
class AlignedSamples:
    """Samples present in every input, in .fam order, with their phenotypes and covariates."""

    fam_index: np.ndarray  # positions in the .fam, increasing
    fid: np.ndarray
    iid: np.ndarray
    pheno_names: list[str]
    y: np.ndarray  # (n, P) float64, NaN where a trait is missing
    binary: np.ndarray
    covar_names: list[str]
    x: np.ndarray  # (n, C) float64, complete; no intercept column
    report: AlignmentReport

    @property
    def n(self) -> int:
        return len(self.fam_index)


def _lookup(fam: SampleTable, fid, iid, source: str) -> np.ndarray:
    """Row in the table for every .fam sample (-1 where absent); IID-only tables match on IID."""
    if fid is None:
        dup = first_duplicate(list(fam.iid))
        if dup is not None:
            raise AlignmentError(
                f"{source} identifies samples by IID alone, but IID {fam.iid[dup[1]]!r} occurs twice in "
                "the .fam; add an FID column"
            )
        index = pd.Index(iid)
        return index.get_indexer(fam.iid)
    index = pd.MultiIndex.from_arrays([fid, iid])
    return index.get_indexer(pd.MultiIndex.from_arrays([fam.fid, fam.iid]))


def _show_ids(fid, iid, k: int = 3) -> str:
    ids = [f"{f} {i}" for f, i in zip(fid[:k], iid[:k])] if fid is not None else list(iid[:k])
    return ", ".join(ids)


def align_samples(
    fam: SampleTable,
    pheno: PhenotypeTable,
    covar: CovariateTable | None = None,
    other_ids: Mapping[str, tuple[np.ndarray | None, np.ndarray]] | None = None,
    *,
    logger: logging.Logger | None = None,
) -> AlignedSamples:
    """Keep the samples found in .fam, phenotypes, covariates and every ``other_ids`` set (e.g.
    a kinship's IDs), that have at least one phenotype and every covariate; .fam order."""
    logger = logger or log
    keep = np.ones(len(fam), dtype=bool)
    dropped = []

    def drop(mask: np.ndarray, reason: str) -> None:
        dropped.append((reason, int(np.count_nonzero(keep & mask))))
        keep[mask] = False

    prow = _lookup(fam, pheno.fid, pheno.iid, str(pheno.path))
    if not (prow >= 0).any():
        raise AlignmentError(
            f"no sample of the .fam is in {pheno.path}: .fam starts {_show_ids(fam.fid, fam.iid)}, the "
            f"phenotype file starts {_show_ids(pheno.fid, pheno.iid)}; check that FID and IID match"
        )
    drop(prow < 0, f"not in phenotype file {pheno.path}")
    y = np.full((len(fam), len(pheno.names)), np.nan)
    y[prow >= 0] = pheno.values[prow[prow >= 0]]
    for k, name in enumerate(pheno.names):
        if np.isnan(y[:, k]).all():
            raise InputError(f"{pheno.path}: phenotype {name!r} is missing in every sample of the .fam (missing codes: "
                             "NA, nan, ., -9, empty); check the column, or drop it from --pheno-name")
    drop(np.isnan(y).all(axis=1), "every phenotype missing")
    x = np.zeros((len(fam), 0))
    covar_names: list[str] = []
    if covar is not None:
        crow = _lookup(fam, covar.fid, covar.iid, str(covar.path))
        if not (crow >= 0).any():
            raise AlignmentError(
                f"no sample of the .fam is in {covar.path}: .fam starts {_show_ids(fam.fid, fam.iid)}, "
                f"the covariate file starts {_show_ids(covar.fid, covar.iid)}; check that FID and IID match"
            )
        drop(crow < 0, f"not in covariate file {covar.path}")
        x = np.full((len(fam), len(covar.names)), np.nan)
        x[crow >= 0] = covar.values[crow[crow >= 0]]
        drop(np.isnan(x).any(axis=1), "a covariate missing")
        covar_names = list(covar.names)
    for name, (ofid, oiid) in (other_ids or {}).items():
        orow = _lookup(fam, ofid, oiid, name)
        drop(orow < 0, f"not in {name}")
    if not keep.any():
        raise AlignmentError(
            "no sample is left after alignment: " + "; ".join(f"{c} {r}" for r, c in dropped if c)
        )
    index = np.flatnonzero(keep).astype(np.int64)
    y, x = y[index], x[index]
    for k, name in enumerate(pheno.names):
        observed = y[:, k][~np.isnan(y[:, k])]
        if observed.size == 0:
            raise InputError(f"{pheno.path}: phenotype {name!r} is missing in every sample kept; drop it from --pheno-name")
        if np.all(observed == observed[0]):
            raise InputError(
                f"{pheno.path}: phenotype {name!r} has the single value {observed[0]:g} in all "
                f"{observed.size} samples kept; nothing to test (drop it from --pheno-name)"
            )
    if x.shape[1]:
        constant = np.all(x == x[:1], axis=0)
        for name in np.asarray(covar_names)[constant]:
            logger.warning("covariate %r is constant in the samples kept; dropped", name)
        x = x[:, ~constant]
        covar_names = [n for n, c in zip(covar_names, constant) if not c]
    report = AlignmentReport(len(fam), len(index), tuple(dropped))
    for line in report.lines():
        logger.info(line)
    for name, is_binary, code in zip(pheno.names, pheno.binary, pheno.coding):
        if is_binary:
            col = y[:, pheno.names.index(name)]
            logger.info("phenotype %r is binary (coded %s): %d cases, %d controls", name, code,
                        int(np.nansum(col)), int(np.sum(col == 0)))
    return AlignedSamples(
        index, fam.fid[index], fam.iid[index], list(pheno.names), y, np.asarray(pheno.binary),
        covar_names, x, report,
    )


def read_sample_list(path: str | os.PathLike, fam: SampleTable) -> np.ndarray:
    """Positions in ``fam`` of the samples listed in ``path`` (``FID IID`` or ``IID`` per line,
    as plink2 --keep reads it), in .fam order.  Listed samples absent from the .fam are ignored."""
    raw = _read_table(path, "sample list", "COL")
    rows = _lookup(fam, raw.fid, raw.iid, str(path))
    index = np.flatnonzero(rows >= 0).astype(np.int64)
    if not index.size:
        raise AlignmentError(
            f"{path}: none of its samples is in the .fam (.fam starts {_show_ids(fam.fid, fam.iid)}, "
            f"the list starts {_show_ids(raw.fid, raw.iid)})"
        )
    return index


_SEX_CODES = {"1": 1, "M": 1, "MALE": 1, "2": 2, "F": 2, "FEMALE": 2, "0": 0, "NA": 0, "-9": 0, ".": 0, "": 0}


def read_sex(path: str | os.PathLike, fam: SampleTable) -> np.ndarray:
    """Sex of every .fam sample (1 male, 2 female, 0 unknown or not listed) from a file with the
    phenotype file's layout: a column named ``sex`` (any case), else the first value column, coded
    as plink codes it (1/2, or M/F; 0, -9 and NA unknown)."""
    raw = _read_table(path, "sex", "SEX")
    column = next((c for c in raw.cells.columns if c.lower() == "sex"), raw.cells.columns[0])
    text = raw.cells[column].str.strip().str.upper()
    bad = ~text.isin(list(_SEX_CODES))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{raw.path}: sex of sample {raw.sample_of(row)} (line {raw.line_of(row)}) is "
                         f"{raw.cells[column].iloc[row]!r}; use 1 or M (male), 2 or F (female), 0 or NA (unknown)")
    codes = text.map(_SEX_CODES).to_numpy(dtype=np.int8)
    rows = _lookup(fam, raw.fid, raw.iid, str(raw.path))
    out = np.zeros(len(fam), dtype=np.int8)
    out[rows >= 0] = codes[rows[rows >= 0]]
    log.info("--sex %s (column %s): %d males, %d females, %d unknown among the .fam's samples", raw.path, column,
             int(np.sum(out == 1)), int(np.sum(out == 2)), int(np.sum(out == 0)))
    return out
