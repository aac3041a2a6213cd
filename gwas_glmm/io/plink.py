"""PLINK 1 binary filesets (.bed/.bim/.fam): metadata, format checks and streamed reads.

Orientation (the one convention of the whole package): a genotype block is a
``(n_samples, n_variants)`` float32 array in Fortran order, so each variant's column is
contiguous, holding the count of ALLELE1 per sample (0, 1 or 2) and NaN where the call is
missing.  ALLELE1 is the .bim's fifth column, which plink2 treats as ALT when it reads a .bim
(``--freq`` reports ALT_FREQS for it); ALLELE0 is the sixth column (plink2's provisional REF).
:meth:`PlinkFileset.read` is the only place where .bed bytes become such blocks.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_file, check_index, first_duplicate
from ..exceptions import InputError
from .chrom import normalise_chroms, parse_chrom_list

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
_TEXT_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError)


@dataclass(frozen=True)
class SampleTable:
    """The samples of a .fam file, in file order."""

    fid: np.ndarray
    iid: np.ndarray
    father: np.ndarray
    mother: np.ndarray
    sex: np.ndarray  # 1 male, 2 female, 0 unknown

    def __len__(self) -> int:
        return len(self.iid)

    def take(self, index: np.ndarray) -> SampleTable:
        return SampleTable(*(a[index] for a in (self.fid, self.iid, self.father, self.mother, self.sex)))


@dataclass(frozen=True)
class VariantTable:
    """The variants of a .bim file (or a subset), in file order unless taken otherwise."""

    chrom: np.ndarray
    id: np.ndarray
    cm: np.ndarray
    pos: np.ndarray
    allele1: np.ndarray  # counted allele (bim column 5, plink2 ALT)
    allele0: np.ndarray  # other allele (bim column 6, plink2 REF)

    def __len__(self) -> int:
        return len(self.id)

    def take(self, index) -> VariantTable:
        return VariantTable(
            *(a[index] for a in (self.chrom, self.id, self.cm, self.pos, self.allele1, self.allele0))
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"CHROM": self.chrom, "GENPOS": self.pos, "ID": self.id,
             "ALLELE0": self.allele0, "ALLELE1": self.allele1}
        )


def fileset_paths(prefix: str | os.PathLike, extensions: tuple[str, ...]) -> tuple[Path, ...]:
    """A fileset's files for its prefix; a path ending in one of ``extensions`` also works."""
    prefix = str(prefix)
    for ext in extensions:
        if prefix.endswith(ext):
            prefix = prefix[: -len(ext)]
            break
    return tuple(Path(prefix + ext) for ext in extensions)


def plink_paths(prefix: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(.bed, .bim, .fam) paths for a fileset prefix; a path ending in .bed/.bim/.fam also works."""
    return fileset_paths(prefix, (".bed", ".bim", ".fam"))


def read_columns(path: Path, n_columns: int, what: str, *, more: bool = False) -> pd.DataFrame:
    """The whitespace-separated columns of a .bim or .fam (``more``: at least ``n_columns``, as
    plink reads a .fam with extra phenotype columns)."""
    try:
        table = pd.read_csv(
            path, sep=r"\s+", header=None, dtype=str, na_filter=False, engine="c",
            comment=None, skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the {what} file is empty") from None
    except _TEXT_ERRORS as exc:
        raise InputError(f"{path}: cannot parse as a {what} file ({exc})") from None
    if table.shape[1] != n_columns and not (more and table.shape[1] > n_columns):
        raise InputError(
            f"{path}: a {what} file has {n_columns}{' or more' if more else ''} whitespace-separated columns, "
            f"this one has {table.shape[1]}"
        )
    blank = (table == "").any(axis=1).to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0]) + 1
        raise InputError(f"{path}: row {row} has fewer than {table.shape[1]} columns")
    return table


def read_fam(path: str | os.PathLike) -> SampleTable:
    """Read a .fam file; sample IDs (FID, IID) must be unique.  Columns after the sixth (more
    phenotypes, as in GEMMA's example data) are accepted, as plink does; ``--pheno FILE.fam``
    reads the phenotypes (:func:`gwas_glmm.io.pheno.read_phenotypes`)."""
    path = check_file(path, ".fam file")
    table = read_columns(path, 6, ".fam", more=True)
    fid = table[0].to_numpy(dtype=object)
    iid = table[1].to_numpy(dtype=object)
    dup = first_duplicate(list(zip(fid, iid)))
    if dup is not None:
        a, b = dup
        raise InputError(
            f"{path}: sample FID={fid[b]} IID={iid[b]} appears on rows {a + 1} and {b + 1}; "
            "sample IDs must be unique (remove or rename one of them)"
        )
    sex = pd.to_numeric(table[4], errors="coerce").fillna(0).to_numpy()
    sex = np.where(np.isin(sex, (1, 2)), sex, 0).astype(np.int8)
    return SampleTable(fid, iid, table[2].to_numpy(dtype=object), table[3].to_numpy(dtype=object), sex)


_BIM_TYPES = {0: object, 1: object, 2: np.float64, 3: np.int64, 4: object, 5: object}


def _read_bim_typed(path: Path) -> pd.DataFrame | None:
    """The common case in one typed parse (0.5 s for 1,000,000 lines, against 2 s as text then
    converted); None where anything is unusual, so the checked text path can name the row."""
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, dtype=_BIM_TYPES, na_filter=False, engine="c",
                            comment=None, skip_blank_lines=True)
    except (ValueError, *_TEXT_ERRORS):
        return None
    if table.shape[1] != 6 or len(table) == 0:
        return None
    for column in (0, 1, 4, 5):
        if (table[column] == "").any():
            return None
    return table


def read_bim(path: str | os.PathLike) -> VariantTable:
    """Read a .bim file; variant IDs must be unique (IDs written as '.' are exempt)."""
    path = check_file(path, ".bim file")
    table = _read_bim_typed(path)
    if table is None:  # something unusual: the checked text path, which names the bad row
        table = read_columns(path, 6, ".bim")
        for name, column in (("base-pair position", 3), ("centimorgan position", 2)):
            values = pd.to_numeric(table[column], errors="coerce")
            bad = values.isna().to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{path}: row {row + 1} has {name} {table[column][row]!r}, which is not a number"
                )
            table[column] = values
    ids = table[1].to_numpy(dtype=object)
    check_unique_variant_ids(path, ids)
    return VariantTable(
        chrom=normalise_chroms(table[0].to_numpy(dtype=object)), id=ids, cm=table[2].to_numpy(dtype=np.float64),
        pos=table[3].to_numpy().astype(np.int64), allele1=table[4].to_numpy(dtype=object),
        allele0=table[5].to_numpy(dtype=object),
    )


def check_unique_variant_ids(path: Path, ids: np.ndarray) -> None:
    """Variant IDs must be unique (IDs written as '.' are exempt); the error names both rows."""
    named = np.flatnonzero(ids != ".")
    if pd.Series(ids[named]).duplicated().any():  # hashed in C; the pair is looked up only if there is one
        a, b = (named[k] for k in first_duplicate(ids[named]))
        raise InputError(
            f"{path}: variant ID {ids[b]!r} appears on rows {a + 1} and {b + 1}; variant IDs must be "
            "unique (rename, e.g. plink2 --set-all-var-ids @:#:\\$r:\\$a, or drop with --rm-dup)"
        )


def check_bed(path: Path, n_samples: int, n_variants: int, bim: Path, fam: Path) -> None:
    """Check a .bed's magic bytes, its variant-major mode and its size against .bim/.fam counts."""
    with open(path, "rb") as fh:
        head = fh.read(3)
    if head[:2] != BED_MAGIC[:2]:
        raise InputError(
            f"{path}: not a PLINK 1 .bed file (first bytes {head.hex(' ') or 'none'}, expected "
            "6c 1b 01); convert it with plink2 --make-bed"
        )
    if len(head) < 3 or head[2] != 0x01:
        raise InputError(
            f"{path}: sample-major .bed files are not supported; rewrite it variant-major with "
            "plink2 --make-bed"
        )
    expected = 3 + n_variants * ((n_samples + 3) // 4)
    actual = path.stat().st_size
    if actual != expected:
        raise InputError(
            f"{path}: {actual} bytes, but {bim} lists {n_variants} variants and {fam} lists "
            f"{n_samples} samples, which need {expected} bytes; the .bed is truncated or the "
            ".bim/.fam do not belong to it"
        )


_OPEN_LOCK = threading.Lock()
_TILE_VARIANTS = 4096  # variants read at a time for a tile of standardized genotypes
_TILE_BYTES = 32 << 20  # .bed bytes decoded at a time into such a tile


def code_values(freq: np.ndarray) -> np.ndarray:
    """(variants, 4) float64: the standardized value (x - 2p) / sqrt(2p(1-p)) of each .bed code
    (0: two copies of ALLELE1, 1: missing, 2: one, 3: none) for ALLELE1 frequencies ``freq``;
    0 for a missing call and for every code of a monomorphic variant, as the dense GRM has it."""
    p = np.asarray(freq, dtype=np.float64)
    var = 2.0 * p * (1.0 - p)
    ok = var > 0
    scale = np.where(ok, 1.0 / np.sqrt(np.where(ok, var, 1.0)), 0.0)
    dosage = np.array([2.0, 0.0, 1.0, 0.0])
    values = (dosage[None, :] - 2.0 * p[:, None]) * scale[:, None]
    values[:, 1] = 0.0
    return np.where(ok[:, None], values, 0.0)


def _standardized_outputs(n: int, m: int, dtype, missing: bool, buffer: np.ndarray | None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :meth:`GenotypeFileset.read_standardized` fills: an (n, m) C-order ``dtype`` array (a
    view of the flat ``buffer`` if one is given), the missing-call words (n, ceil(m / 64)) uint64
    zeroed (no columns unless ``missing``) and the per-sample missing counts (int64, zeroed)."""
    if buffer is None:
        z = np.empty((n, m), dtype=dtype)
    elif buffer.dtype != np.dtype(dtype) or buffer.ndim != 1 or buffer.size < n * m:
        raise ValueError(f"buffer: need a flat {np.dtype(dtype)} array of at least {n * m} elements")
    else:
        z = buffer[:n * m].reshape(n, m)
    return z, np.zeros((n, -(-m // 64) if missing else 0), dtype=np.uint64), np.zeros(n, np.int64)


class GenotypeFileset:
    """What every genotype file offers the stages (PLINK 1 here, PLINK 2 in :mod:`.pgen`):
    ``samples``, ``variants``, :meth:`read` (NaN for a missing call), :meth:`read_imputed` (the
    scan's decoder), block iteration and dask arrays built on :meth:`read`; ``source``, the
    string a worker process opens the same file from (:func:`worker_fileset`);
    ``genotype_path``/``variant_path``/``sample_path`` for messages and provenance;
    ``multiallelic``, a mask of variants the analyses skip (None where there are none); and
    ``dosages``, whether the file holds dosages (results then carry INFO)."""

    samples: SampleTable
    variants: VariantTable
    genotype_path: Path
    variant_path: Path
    sample_path: Path
    num_threads: int | None = None
    multiallelic: np.ndarray | None = None
    dosages: bool = False
    format = "bed"  # bed, pgen or bgen
    iid_only: bool = False  # the sample file has no FID column: samples are matched by IID

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def n_variants(self) -> int:
        return len(self.variants)

    @property
    def source(self) -> str:
        raise NotImplementedError

    def input_paths(self) -> dict[str, Path]:
        """The fileset's three files by extension ({'bed': ..., 'bim': ..., 'fam': ...}), for provenance."""
        return {p.suffix[1:]: p for p in (self.genotype_path, self.variant_path, self.sample_path)}

    def read(self, samples=None, variants=None) -> np.ndarray:
        raise NotImplementedError

    def _decode_imputed(self, variants: np.ndarray, gather: np.ndarray, dosages: np.ndarray, mask: np.ndarray):
        """Fill ``dosages`` (variants, samples) with the variants' mean-imputed dosages at the file
        positions ``gather`` (empty: every sample in file order), ``mask`` with the missing calls
        unless it has no columns; return their VariantStats."""
        raise NotImplementedError

    def read_imputed(self, samples: np.ndarray | None, variants: np.ndarray, *, out: np.ndarray | None = None,
                     missing: bool = False):
        """(dosages, stats, missing mask) of ``variants`` (integer positions) at ``samples``
        (file positions, None for all), decoded in one numba pass: the dosages a (samples,
        variants) float32 Fortran array with each missing call mean-imputed, stats a
        :class:`~gwas_glmm.genotype.stats.VariantStats` of the calls before imputation, the mask a
        (samples, variants) bool array if ``missing`` else None.  ``out``: a float32 buffer of at
        least samples x variants elements to decode into (the dosages are then a view of it)."""
        variants = np.asarray(variants, dtype=np.int64)
        n = self.n_samples if samples is None else len(samples)
        gather = np.empty(0, np.int64) if samples is None else np.asarray(samples, dtype=np.int64)
        if n == self.n_samples and np.array_equal(gather, np.arange(n)):
            gather = np.empty(0, np.int64)  # every sample in file order: no gather
        size = len(variants) * n
        buf = np.empty(size, np.float32) if out is None else out.reshape(-1)[:size]
        dosages = buf.reshape(len(variants), n)
        mask = np.zeros((len(variants), n if missing else 0), dtype=bool)
        stats = self._decode_imputed(variants, gather, dosages, mask)
        return dosages.T, stats, (mask.T if missing else None)

    def read_standardized(self, samples: np.ndarray, variants: np.ndarray, freq: np.ndarray, *, dtype=np.float32,
                          missing: bool = False, buffer: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The sparse GRM's tiles and the PCA's blocks: ``variants`` (positions) at ``samples``
        (file positions) as a (samples, variants) C-order ``dtype`` array of (x - 2p) / sqrt(2p(1-p))
        with the ALLELE1 frequencies ``freq`` (0 where missing, and for a monomorphic variant), the
        missing calls per sample (int64), and with ``missing`` their mask packed one bit per variant
        in uint64 words (samples, ceil(variants / 64)), bit j of word j // 64 for variant j; else
        None.  ``buffer``: a flat ``dtype`` array of at least samples x variants elements that the
        result is a view of (a caller reading block after block passes the same one: a fresh
        array of hundreds of MB costs its page faults each time, 10x the decoding at N = 50,000).
        Generic: through :meth:`read`; a .bed decodes its bytes straight into the result."""
        samples = np.asarray(samples, dtype=np.int64)
        variants = np.asarray(variants, dtype=np.int64)
        z, words, counts = _standardized_outputs(len(samples), len(variants), dtype, missing, buffer)
        values = code_values(freq)
        for lo in range(0, len(variants), _TILE_VARIANTS):
            hi = min(len(variants), lo + _TILE_VARIANTS)
            x = self.read(samples, variants[lo:hi])
            nan = np.isnan(x)
            counts += nan.sum(axis=1)
            mean, scale = values[lo:hi, 3], values[lo:hi, 2] - values[lo:hi, 3]  # x = 0 and the step per allele
            z[:, lo:hi] = np.where(nan, 0.0, mean + scale * np.nan_to_num(x))
            if missing:
                bits = np.packbits(nan, axis=1, bitorder="little")
                padded = np.zeros((len(samples), -(-bits.shape[1] // 8) * 8), np.uint8)
                padded[:, :bits.shape[1]] = bits
                words[:, lo // 64:lo // 64 + padded.shape[1] // 8] = padded.view(np.uint64)
        return z, counts, (words if missing else None)

    def iter_reads(
        self, variant_index: np.ndarray, block_size: int, samples=None, *, prefetch: bool = True
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(variant positions, dosages)`` for consecutive blocks of ``variant_index``.

        Memory holds at most two blocks: with ``prefetch`` the next block is read in a
        background thread (the readers release the GIL) while the caller works on this one.
        """
        starts = range(0, len(variant_index), block_size)
        pieces = [_as_slice(variant_index[s : s + block_size]) for s in starts]
        if not prefetch or len(pieces) < 2:
            for s, piece in zip(starts, pieces):
                yield variant_index[s : s + block_size], self.read(samples, piece)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="genotype-prefetch") as pool:
            future = pool.submit(self.read, samples, pieces[0])
            for k, s in enumerate(starts):
                block = future.result()
                if k + 1 < len(pieces):
                    future = pool.submit(self.read, samples, pieces[k + 1])
                yield variant_index[s : s + block_size], block
                del block

    def to_dask(self, samples=None, variants=None, chunk_variants: int = 4096):
        """A lazy dask array (samples x variants, float32) reading the file chunk by chunk.

        All samples are in one chunk; variants are chunked by ``chunk_variants``.
        """
        import dask.array as da

        lazy = _LazyBed(
            self,
            check_index("samples", samples, self.n_samples),
            check_index("variants", variants, self.n_variants),
        )
        return da.from_array(
            lazy, chunks=(lazy.shape[0], chunk_variants), asarray=False, lock=False, fancy=False,
            meta=np.empty((0, 0), dtype=np.float32), name=f"genotypes-{self.genotype_path.name}-{id(lazy):x}",
        )


class PlinkFileset(GenotypeFileset):
    """An opened, checked PLINK 1 fileset.

    >>> fs = PlinkFileset("cohort")          # doctest: +SKIP
    >>> fs.read(variants=np.s_[0:100]).shape  # doctest: +SKIP
    (2000, 100)
    """

    def __init__(self, prefix: str | os.PathLike, *, num_threads: int | None = None):
        from bed_reader import open_bed

        self.bed_path, self.bim_path, self.fam_path = plink_paths(prefix)
        self.genotype_path, self.variant_path, self.sample_path = self.bed_path, self.bim_path, self.fam_path
        check_file(self.bed_path, ".bed file")
        self.samples = read_fam(self.fam_path)
        self.variants = read_bim(self.bim_path)
        check_bed(self.bed_path, len(self.samples), len(self.variants), self.bim_path, self.fam_path)
        self.num_threads = num_threads
        self._bed = open_bed(
            self.bed_path, iid_count=len(self.samples), sid_count=len(self.variants),
            num_threads=num_threads, skip_format_check=True,
        )

    @property
    def source(self) -> str:
        return str(self.bed_path)[:-4]

    def __repr__(self) -> str:
        return f"PlinkFileset({str(self.bed_path)[:-4]!r}: {self.n_samples} samples, {self.n_variants} variants)"

    def read(self, samples=None, variants=None) -> np.ndarray:
        """Dosages of ALLELE1 as a (samples, variants) float32 Fortran array, NaN where missing.

        ``samples``/``variants`` are anything bed-reader indexes with: None (all), a slice, an
        integer array (any order, repeats allowed) or a boolean mask.
        """
        return self._bed.read(
            index=(samples, variants), dtype=np.float32, order="F", num_threads=self.num_threads
        )

    def _decode_imputed(self, variants: np.ndarray, gather: np.ndarray, dosages: np.ndarray, mask: np.ndarray):
        """The .bed bytes of ``variants`` decoded, counted and mean-imputed in one numba pass."""
        from ..genotype._decode_numba import byte_table, decode_impute
        from ..genotype.stats import VariantStats

        n_obs, total = decode_impute(self._raw_rows(variants), gather, byte_table(), dosages, mask)
        return VariantStats(n_obs, total, dosages.shape[1])

    def __del__(self):
        fd = self.__dict__.get("_bed_fd")
        if fd is not None:
            os.close(fd)

    def _raw_rows(self, variants: np.ndarray) -> np.ndarray:
        """The .bed rows of ``variants`` as a (variants, bytes) uint8 array, one ``pread`` per run of
        consecutive variants (thread-safe, and unlike a memory map the file's pages do not count
        in the process's resident memory)."""
        width = (self.n_samples + 3) // 4
        raw = np.empty((len(variants), width), dtype=np.uint8)
        fd = self.__dict__.get("_bed_fd")
        if fd is None:
            with _OPEN_LOCK:  # blocks on several threads: one descriptor per fileset
                fd = self.__dict__.get("_bed_fd")
                if fd is None:
                    fd = self.__dict__["_bed_fd"] = os.open(self.bed_path, os.O_RDONLY)
        starts = np.flatnonzero(np.diff(variants, prepend=-2) != 1)
        for a, b in zip(starts, [*starts[1:], len(variants)]):
            want = (b - a) * width
            data = os.pread(fd, want, 3 + int(variants[a]) * width)
            if len(data) != want:
                raise InputError(f"{self.bed_path}: ended early reading variant {variants[a]}; is it truncated?")
            raw[a:b] = np.frombuffer(data, dtype=np.uint8).reshape(b - a, width)
        return raw

    def read_standardized(self, samples: np.ndarray, variants: np.ndarray, freq: np.ndarray, *, dtype=np.float32,
                          missing: bool = False, buffer: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """As :meth:`GenotypeFileset.read_standardized`, decoded by numba from the .bed bytes of the
        tile's samples only (a memory map, sliced to their byte range, in chunks of variants)."""
        from ..genotype._decode_numba import decode_standardized

        samples = np.asarray(samples, dtype=np.int64)
        variants = np.asarray(variants, dtype=np.int64)
        z, words, counts = _standardized_outputs(len(samples), len(variants), dtype, missing, buffer)
        if not len(samples) or not len(variants):
            return z, counts, (words if missing else None)
        values = code_values(freq).astype(dtype)
        first, last = int(samples.min()) // 4, int(samples.max()) // 4 + 1
        slots = samples - 4 * first
        width = (self.n_samples + 3) // 4
        step = max(64, (_TILE_BYTES // (last - first)) // 64 * 64)  # variants per chunk: whole words of bits
        bed = np.memmap(self.bed_path, dtype=np.uint8, mode="r", offset=3, shape=(self.n_variants, width))
        try:
            for lo in range(0, len(variants), step):
                hi = min(len(variants), lo + step)
                raw_t = np.ascontiguousarray(bed[variants[lo:hi], first:last].T)
                counts += decode_standardized(raw_t, slots, values[lo:hi], z[:, lo:hi],
                                              words[:, lo // 64:] if missing else words)
        finally:
            del bed
        return z, counts, (words if missing else None)


def _as_slice(index: np.ndarray):
    """A slice if ``index`` is a contiguous increasing run (cheaper for bed-reader), else itself."""
    if len(index) and index[-1] - index[0] == len(index) - 1 and np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


class _LazyBed:
    """Array-like view handed to ``dask.array.from_array``; reads only the requested piece."""

    def __init__(self, fileset: GenotypeFileset, samples: np.ndarray, variants: np.ndarray):
        self.fileset, self.samples, self.variants = fileset, samples, variants
        self.shape = (len(samples), len(variants))
        self.dtype = np.dtype(np.float32)
        self.ndim = 2

    def __getitem__(self, key):
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        sample_pos = self.samples[rows]
        sample_arg = None if len(sample_pos) == self.fileset.n_samples and np.array_equal(
            sample_pos, np.arange(self.fileset.n_samples)) else sample_pos
        return self.fileset.read(sample_arg, _as_slice(self.variants[cols]))


def select_variants(
    variants: VariantTable,
    *,
    chrom: Sequence[str] | None = None,
    index_range: tuple[int, int] | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> np.ndarray:
    """Positions (in .bim order) of the variants passing the metadata filters.

    ``chrom``: plink2's --chr list (names, comma lists, ranges), matched in one spelling
    (:mod:`gwas_glmm.io.chrom`: ``chr1``, ``1`` and ``01`` alike, ``X`` and ``23`` alike); ``index_range`` is a half-open range of
    .bim rows; ``include``/``exclude`` are variant ID lists.  Filters that need genotypes
    (MAF, MAC, missingness) are applied while streaming, by
    :class:`gwas_glmm.genotype.VariantFilter`.
    """
    keep = np.ones(len(variants), dtype=bool)
    if index_range is not None:
        start, stop = index_range
        if not (0 <= start <= stop <= len(variants)):
            raise InputError(f"variant range {start}..{stop} is outside 0..{len(variants)}")
        mask = np.zeros_like(keep)
        mask[start:stop] = True
        keep &= mask
    if chrom is not None:
        keep &= np.isin(variants.chrom.astype(str), parse_chrom_list(chrom))
    if include is not None:
        keep &= _member(variants.id, include)
    if exclude is not None:
        keep &= ~_member(variants.id, exclude)
    return np.flatnonzero(keep).astype(np.int64)


def _member(ids: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    """``ids[i] in wanted`` for each i, through a set: np.isin on object (string) arrays compares
    all pairs, 15 minutes for 1,000,000 .bim IDs against a 100,000-ID --extract list."""
    wanted = set(wanted)
    return np.fromiter((i in wanted for i in ids.tolist()), dtype=bool, count=len(ids))


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Variant IDs from a file with one ID per line (first whitespace-separated field)."""
    path = check_file(path, "variant ID list")
    with open(path, encoding="utf-8") as fh:
        return [line.split()[0] for line in fh if line.strip()]


def open_genotypes(source: str | os.PathLike, *, num_threads: int | None = None) -> GenotypeFileset:
    """The fileset named by ``source``: a path ending in .pgen (PLINK 2: :mod:`.pgen`), a .bgen
    (``FILE.bgen`` or ``FILE.bgen::FILE.sample``: :mod:`.bgen`), else a PLINK 1 prefix (a path
    ending in .bed/.bim/.fam also works)."""
    text = str(source)
    if text.endswith(".pgen"):
        from .pgen import PgenFileset

        return PgenFileset(source, num_threads=num_threads)
    if text.endswith(".bgen") or ".bgen::" in text:
        from .bgen import open_bgen

        return open_bgen(text, num_threads=num_threads)
    return PlinkFileset(source, num_threads=num_threads)


@lru_cache(maxsize=4)
def _opened(source: str, num_threads: int | None) -> GenotypeFileset:
    return open_genotypes(source, num_threads=num_threads)


_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # (source, threads) -> an open fileset
_OPENING = threading.Lock()


def share_fileset(fileset: GenotypeFileset) -> None:
    """Make ``fileset`` (already open) the one :func:`worker_fileset` returns for its source in
    this process, while it lives: a threaded scan's workers then read through the driver's
    fileset instead of opening the file again (a BGEN without a .bgi reads every variant header
    when opened: 10-14 s at 1,000,000 variants, once per worker thread before this)."""
    _SHARED[(str(fileset.source), fileset.num_threads)] = fileset


def worker_fileset(source: str | GenotypeFileset, num_threads: int | None = None) -> GenotypeFileset:
    """The fileset a task reads: ``source`` itself, or for its ``source`` string (what a dask
    task is sent: nothing large) the fileset shared by :func:`share_fileset`, else the one opened
    once per process (under a lock: threads asking at once open it once)."""
    if isinstance(source, GenotypeFileset):
        return source
    found = _SHARED.get((str(source), num_threads))
    if found is not None:
        return found
    with _OPENING:
        return _opened(str(source), num_threads)
