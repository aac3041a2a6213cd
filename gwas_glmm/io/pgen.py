"""PLINK 2 filesets (.pgen/.pvar/.psam): hard calls and dosages, read through pgenlib, plink2's own
Python reader, into the package's one block orientation (:mod:`.plink`): (samples, variants)
float32, Fortran order, the count of ALLELE1 = ALT (the .pvar's ALT; ALLELE0 its REF).

A .pgen stores dosages to 1/16384 where the variant has them (imputed genotypes) and hard calls
otherwise; pgenlib returns either as dosages in [0, 2] with -9 for a missing call.  Variants with
more than one ALT allele are listed but marked in ``multiallelic``, and the commands skip them
(counted in the log).  A .psam without an FID column (``#IID`` header) matches samples by IID.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_file, first_duplicate
from ..exceptions import InputError
from .chrom import normalise_chroms
from .dosage import DosageFileset
from .plink import SampleTable, VariantTable, check_unique_variant_ids, fileset_paths, read_fam

_TEXT_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError)


def pgen_paths(prefix: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(.pgen, .pvar, .psam) for a fileset prefix; a path ending in one of them also works."""
    return fileset_paths(prefix, (".pgen", ".pvar", ".psam"))


def _header_lines(path: Path) -> tuple[int, list[str] | None]:
    """(lines before the data, column names of the '#' header line or None without one); lines
    starting '##' (a .pvar's VCF-style meta lines) are skipped."""
    skipped = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("##"):
                skipped += 1
                continue
            if line.startswith("#"):
                return skipped + 1, line[1:].split()
            return skipped, None
    return skipped, None


def _read_table(path: Path, skip: int, names: list[str], what: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, names=names, skiprows=skip, dtype=str,
                            na_filter=False, engine="c", comment=None, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the {what} file has no rows") from None
    except _TEXT_ERRORS as exc:
        raise InputError(f"{path}: cannot parse as a {what} file ({exc})") from None
    if len(table) == 0:
        raise InputError(f"{path}: the {what} file has no rows")
    blank = (table == "").any(axis=1).to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0]) + 1 + skip
        raise InputError(f"{path}: line {row} has fewer than {len(names)} columns")
    return table


def read_psam(path: str | os.PathLike) -> tuple[SampleTable, bool]:
    """(samples, IID only): a .psam with a ``#FID``/``#IID`` header, or a .fam without one."""
    path = check_file(path, ".psam file")
    skip, names = _header_lines(path)
    if names is None:
        return read_fam(path), False
    if names[0] not in ("FID", "IID"):
        raise InputError(f"{path}: a .psam header starts with #FID or #IID, this one with #{names[0]}")
    if "IID" not in names:
        raise InputError(f"{path}: the .psam header has no IID column")
    table = _read_table(path, skip, names, ".psam")
    iid = table["IID"].to_numpy(dtype=object)
    iid_only = "FID" not in names
    fid = iid.copy() if iid_only else table["FID"].to_numpy(dtype=object)
    keys = list(iid) if iid_only else list(zip(fid, iid))
    dup = first_duplicate(keys)
    if dup is not None:
        a, b = dup
        raise InputError(f"{path}: sample IID={iid[b]} appears on lines {a + 1 + skip} and {b + 1 + skip}; "
                         "sample IDs must be unique (remove or rename one of them)")
    sex_text = table["SEX"].str.lower() if "SEX" in table else pd.Series(["0"] * len(table))
    sex = sex_text.map({"1": 1, "2": 2, "m": 1, "f": 2, "male": 1, "female": 2}).fillna(0).to_numpy(np.int8)
    parent = np.array(["0"] * len(table), dtype=object)
    return SampleTable(fid, iid, table["PAT"].to_numpy(dtype=object) if "PAT" in table else parent,
                       table["MAT"].to_numpy(dtype=object) if "MAT" in table else parent, sex), iid_only


def read_pvar(path: str | os.PathLike) -> tuple[VariantTable, np.ndarray]:
    """(variants, ALT alleles per variant) from a .pvar (``#CHROM`` header, VCF-like; '##' meta
    lines skipped) or a .bim-format file without a header.  ALLELE1 is ALT, ALLELE0 REF."""
    path = check_file(path, ".pvar file")
    if str(path).endswith((".zst", ".gz")):
        raise InputError(f"{path}: compressed .pvar files are not read; decompress it (plink2 --zst-decompress)")
    skip, names = _header_lines(path)
    if names is None:
        names = ["CHROM", "ID", "CM", "POS", "ALT", "REF"]
    missing = [c for c in ("CHROM", "POS", "ID", "REF", "ALT") if c not in names]
    if missing:
        raise InputError(f"{path}: the .pvar header lacks {', '.join(missing)} (found {' '.join(names)})")
    table = _read_table(path, skip, names, ".pvar")
    positions = pd.to_numeric(table["POS"], errors="coerce")
    if positions.isna().any():
        row = int(np.flatnonzero(positions.isna().to_numpy())[0])
        raise InputError(f"{path}: line {row + 1 + skip} has POS {table['POS'][row]!r}, which is not a number")
    ids = table["ID"].to_numpy(dtype=object)
    check_unique_variant_ids(path, ids)
    alt = table["ALT"].to_numpy(dtype=object)
    alt_count = table["ALT"].str.count(",").to_numpy(np.int64) + 1
    cm = pd.to_numeric(table["CM"], errors="coerce").fillna(0.0).to_numpy(np.float64) if "CM" in table \
        else np.zeros(len(table))
    variants = VariantTable(chrom=normalise_chroms(table["CHROM"].to_numpy(dtype=object)), id=ids, cm=cm,
                            pos=positions.to_numpy().astype(np.int64), allele1=alt,
                            allele0=table["REF"].to_numpy(dtype=object))
    return variants, alt_count


class PgenFileset(DosageFileset):
    """An opened, checked PLINK 2 fileset.  Each thread reads through a pgenlib reader of its own
    (a reader holds buffers and a file position)."""

    format = "pgen"

    def __init__(self, prefix: str | os.PathLike, *, num_threads: int | None = None):
        self.genotype_path, self.variant_path, self.sample_path = pgen_paths(prefix)
        check_file(self.genotype_path, ".pgen file")
        self.samples, self.iid_only = read_psam(self.sample_path)
        self.variants, alt_count = read_pvar(self.variant_path)
        multi = alt_count > 1
        self.multiallelic = multi if multi.any() else None
        self._offsets = None
        if self.multiallelic is not None:  # pgenlib needs each variant's allele count to find the records
            self._offsets = np.concatenate([[0], np.cumsum(alt_count + 1)]).astype(np.uintp)
        self.num_threads = num_threads
        self._local = threading.local()
        self._reader()  # checks the counts now, naming the files

    @property
    def source(self) -> str:
        return str(self.genotype_path)

    def __repr__(self) -> str:
        return f"PgenFileset({str(self.genotype_path)!r}: {self.n_samples} samples, {self.n_variants} variants)"

    def _reader(self):
        reader = getattr(self._local, "reader", None)
        if reader is None:
            import pgenlib

            try:
                reader = pgenlib.PgenReader(str(self.genotype_path).encode(), raw_sample_ct=self.n_samples,
                                            variant_ct=self.n_variants, allele_idx_offsets=self._offsets)
            except RuntimeError as exc:
                reason = exc.args[0] if exc.args else exc
                reason = (reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)).strip()
                raise InputError(
                    f"{self.genotype_path}: not readable with {self.variant_path} ({self.n_variants} variants) and "
                    f"{self.sample_path} ({self.n_samples} samples): {reason}; check that the three files "
                    "belong together (plink2 --make-pgen writes them)") from None
            self._local.reader = reader
        return reader

    def _rows(self, variants: np.ndarray) -> np.ndarray:
        rows = self._row_buffer(len(variants))
        if len(variants):
            self._reader().read_dosages_list(np.ascontiguousarray(variants, dtype=np.uint32), rows)
        return rows


def write_pgen(prefix: str | os.PathLike, samples: SampleTable, variants: VariantTable, blocks, *,
               dosages: bool = True) -> tuple[Path, Path, Path]:
    """Write PREFIX.pgen/.pvar/.psam through pgenlib's writer.  ``blocks``: an iterable of
    (variants, samples) arrays in variant order, ALLELE1 (ALT) dosages in [0, 2] with NaN for a
    missing call; ``dosages``: keep them to 1/16384 (else hard calls, rounded).  ALLELE0 is
    written as REF (provisional, as plink2 treats a .bed's A2: ``nonref_flags``).  Each file is
    written under a temporary name and renamed when complete."""
    import pgenlib

    from .._atomic import atomic_path

    pgen, pvar, psam = pgen_paths(prefix)
    with atomic_path(psam) as tmp:
        frame = pd.DataFrame({"#FID": samples.fid, "IID": samples.iid, "PAT": samples.father,
                              "MAT": samples.mother, "SEX": np.where(samples.sex > 0, samples.sex, "NA")})
        frame.to_csv(tmp, sep="\t", index=False)
    with atomic_path(pvar) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("#CHROM\tPOS\tID\tREF\tALT\tCM\n")
            for row in zip(variants.chrom, variants.pos, variants.id, variants.allele0, variants.allele1, variants.cm):
                fh.write("\t".join(map(str, row)) + "\n")
    with atomic_path(pgen) as tmp:
        writer = pgenlib.PgenWriter(str(tmp).encode(), len(samples), variant_ct=len(variants), nonref_flags=True,
                                    dosage_present=dosages)
        for block in blocks:
            block = np.asarray(block, dtype=np.float64)
            if dosages:
                writer.append_dosages_batch(np.ascontiguousarray(np.where(np.isnan(block), -9.0, block)))
            else:
                calls = np.where(np.isnan(block), -9, np.rint(block)).astype(np.int8)
                writer.append_biallelic_batch(np.ascontiguousarray(calls))
        writer.close()  # pgenlib checks that as many variants were written as listed
    return pgen, pvar, psam
