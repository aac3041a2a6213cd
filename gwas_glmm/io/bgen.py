"""BGEN files (1.1, 1.2, 1.3; 1 to 32 bits; zlib or zstd; phased or not) through the ``bgen``
package (a maintained reader with wheels), into the package's block orientation (:mod:`.plink`).
cbgen (bgen-limix) was measured first: its batch decode took 70 ns per genotype at N = 10,000
against 6.3 ns for ``bgen``'s dosages, and both hold the GIL while they decode.

ALLELE0 is a variant's first allele and ALLELE1 its second (REGENIE's convention; plink2 writes
REF first with ``--export bgen-1.2 ref-first``), and a sample's dosage of ALLELE1 is its expected
count: P(AB) + 2 P(BB) unphased, the two haplotypes' probabilities of B summed when phased, and
twice P(B) for a haploid call (chromosome X males: the 0/2 coding of a .bed).  Variants with
other than two alleles are listed but marked in ``multiallelic`` (the commands skip and count
them).  Variant IDs are the rsid field, else the SNP ID, else CHR:POS.

A bgenix ``.bgi`` index beside the file is used when present; without one, the variants' headers
are walked once when the file is opened by a compiled kernel over the file mapped in windows
(:mod:`._bgen_walk_numba`; genotype blocks skipped by their lengths; 16 bytes per variant kept):
1.3 s for 1,000,000 variants with the file in the page cache, against 6.4 s through the
package's iterator (a Python object per variant), whose reader remains the fallback where the
walk does not reach the last variant.
Sample IDs come from ``--sample`` (Oxford .sample: ID_1 = FID, ID_2 = IID) or, without it, from
the file's own ID block, matched by IID alone.

Decoding: the package holds the GIL while it decodes (62 us a variant at N = 10,000), which left
the scan 1.66x slower on a BGEN than on the .bed.  So layout-2 blocks with zlib (or no)
compression, what imputation servers and UK Biobank write, are read, inflated and decoded here
without the GIL (``pread``, libdeflate through the ``deflate`` package: 35 us a variant against
89 for Python's zlib, and a numba kernel: :mod:`._bgen_numba`, 11 us); layout 1, zstd and anything
the kernel does not take go through the package, behind a lock.

INFO is IMPUTE's info, as REGENIE reports it for BGEN input: the kernel also writes each sample's
genotype variance given its probabilities (``_spread_buffer``), summed over the analysis samples
(``VariantStats.spread``).  It costs about 4 us a variant at N = 10,000 (8 bits) and one more
pass over the rows: the fast scan of 200,000 variants took 22.5-22.9 s against 20.8 s without it
(same machine, same run; the .bed 12.0 s).  A GIL-free loop over whole runs of blocks (libdeflate
called from numba) was tried and measured no faster: inflation (37 us a variant) dominates.
The scan's reads (``read_imputed``) decode the usual block straight into the gathered rows with
their counts and spreads (``_decode_imputed``), with no (variants, file samples) buffers.
Inflation stays the floor: 44 us a variant with libdeflate, 49 with ISA-L, 66 with zlib-ng
(docs/benchmarks.md), about half of what the whole .bed scan spends on a variant.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_file, first_duplicate
from ..exceptions import InputError
from .chrom import normalise_chroms
from .dosage import DosageFileset
from .plink import SampleTable, VariantTable, check_unique_variant_ids

SOURCE_SEPARATOR = "::"  # "FILE.bgen::FILE.sample": what a worker is sent to open the same fileset
READ_BYTES = 4 << 20  # one pread per run of consecutive variants, up to this size


def read_oxford_sample(path: str | os.PathLike) -> SampleTable:
    """An Oxford .sample file: a header line (ID_1 ID_2 missing ...), a line of column types
    (0 0 0 ...), then one line per sample in the .bgen's order."""
    path = check_file(path, ".sample file")
    try:
        table = pd.read_csv(path, sep=r"\s+", header=0, skiprows=[1], dtype=str, na_filter=False, engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot parse as an Oxford .sample file ({exc})") from None
    names = [c.lower() for c in table.columns]
    if names[:2] != ["id_1", "id_2"]:
        raise InputError(f"{path}: an Oxford .sample file starts with the header 'ID_1 ID_2 missing', this one with "
                         f"{' '.join(table.columns[:3])!r}")
    fid, iid = table.iloc[:, 0].to_numpy(dtype=object), table.iloc[:, 1].to_numpy(dtype=object)
    dup = first_duplicate(list(zip(fid, iid)))
    if dup is not None:
        a, b = dup
        raise InputError(f"{path}: sample {fid[b]} {iid[b]} appears on lines {a + 3} and {b + 3}; sample IDs must "
                         "be unique")
    sex = np.zeros(len(table), np.int8)
    if "sex" in names:
        sex = table.iloc[:, names.index("sex")].map({"1": 1, "2": 2}).fillna(0).to_numpy(np.int8)
    zeros = np.array(["0"] * len(table), dtype=object)
    return SampleTable(fid, iid, zeros, zeros.copy(), sex)


def _text(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


WALK_WINDOW = 64 << 20  # bytes of the file mapped at a time by the header walk
TEXT_WIDTH = 64  # text fields up to this long are gathered as one byte matrix; longer ones one by one


def _texts(buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The text fields at ``offsets`` (``lengths`` bytes each) of ``buf`` as str objects: one
    compiled gather into an (n, width) byte matrix, read as fixed-width bytes and decoded as
    ASCII in one numpy conversion; fields longer than TEXT_WIDTH, or not ASCII, one by one."""
    out = np.empty(len(offsets), dtype=object)
    short = lengths <= TEXT_WIDTH
    width = int(lengths[short].max()) if short.any() else 0
    if width:
        from ._bgen_walk_numba import gather

        matrix = np.zeros((int(short.sum()), width), dtype=np.uint8)
        gather(buf, offsets[short], lengths[short], matrix)
        raw = matrix.view(f"S{width}").ravel()
        try:
            out[short] = raw.astype(f"U{width}")
        except UnicodeDecodeError:
            out[short] = [v.decode("utf-8", "replace") for v in raw]
    else:
        out[short] = ""
    for k in np.flatnonzero(~short):
        out[k] = bytes(buf[offsets[k]:offsets[k] + lengths[k]]).decode("utf-8", "replace")
    return out


def _walk_variants(path: Path, header) -> tuple[VariantTable, np.ndarray, np.ndarray] | None:
    """:func:`_read_variants` by a compiled walk over the file's bytes (``._bgen_walk_numba``),
    mapped WALK_WINDOW bytes at a time (a mapping of the whole file kept each page it touched
    resident: 10.8 GB of RSS for 1,000,000 variants); None where the walk cannot reach the last
    variant (a truncated or inconsistent file: the package's reader then names the problem)."""
    import mmap

    from . import _bgen_walk_numba as w

    table = np.zeros((header.nvariants, w.COLUMNS), dtype=np.int64)
    texts = []  # per window: the five text fields of the variants walked in it
    done, at, window = 0, header.offset + 4, WALK_WINDOW
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        while done < header.nvariants:
            base = at - at % mmap.ALLOCATIONGRANULARITY
            length = min(window, size - base)
            if length <= 0:
                return None
            view = mmap.mmap(fh.fileno(), length, offset=base, access=mmap.ACCESS_READ)
            try:
                walked, at, fields = _walk_window(view, base, at, header, table[done:])
            finally:
                view.close()
            if walked == 0:
                if base + length >= size:
                    return None  # the file ends inside a header
                window *= 2  # a header longer than the window
                continue
            texts.append(fields)
            done += walked
    if done == 0 or table[:, w.BLOCK + 1].max() > size:
        return None
    snpid, rsid, chrom, allele0, allele1 = (np.concatenate([t[j] for t in texts]) for j in range(5))
    count = table[:, w.NALLELES]
    allele0[count < 1] = "."
    allele1[count < 2] = "."
    pos = table[:, w.POS]
    ids = np.where(rsid != "", rsid, snpid)
    for k in np.flatnonzero(ids == ""):
        ids[k] = f"{chrom[k]}:{pos[k]}"
    variants = VariantTable(chrom=normalise_chroms(chrom), id=ids, cm=np.zeros(len(ids)), pos=pos,
                            allele1=allele1, allele0=allele0)
    return variants, count.copy(), np.ascontiguousarray(table[:, w.BLOCK:w.BLOCK + 2])


def _walk_window(view, base: int, at: int, header, rows: np.ndarray) -> tuple[int, int, list]:
    """Walk the variants whose headers lie in one mapped window; their text fields read from it.
    (The array over the mapping lives only in here, so the mapping can be closed after.)"""
    from . import _bgen_walk_numba as w

    buf = np.frombuffer(view, dtype=np.uint8)
    walked, at = w.walk(buf, base, at, header.layout, header.compression is not None, header.nsamples, rows)
    part = rows[:walked]
    return walked, at, [_texts(buf, part[:, c] - base, part[:, c + 1])
                        for c in (w.VARID, w.RSID, w.CHROM, w.ALLELE0, w.ALLELE1)]


def _read_variants(reader) -> tuple[VariantTable, np.ndarray, np.ndarray]:
    """(variants, allele counts, (start, end) byte range of each variant's genotype block) from
    the reader's variant headers (or its .bgi index)."""
    # every field from one pass over the records, in the order reader[k] reads them (the reader's
    # bulk lists may come from a .bgi, whose varids() it refuses)
    headers = [(v.varid, v.rsid, v.chrom, v.pos, v.alleles, v.fileoffset, v.next_variant_offset) for v in reader]
    snpid, rsid, chrom = (_text(h[j] for h in headers) for j in range(3))
    pos = np.array([h[3] for h in headers], dtype=np.int64)
    alleles = [h[4] for h in headers]
    # layout 2: varid, rsid, chrom (each a 2-byte length and text), pos (4), K (2), then each allele
    # (4-byte length and text); layout 1 starts with the sample count (4) and stores no K (only
    # layout 2 blocks are read through these ranges)
    extra = 4 - 2 if reader.header.layout == 1 else 2
    blocks = np.array([(start + extra + 2 + len(v.encode()) + 2 + len(r.encode()) + 2 + len(c.encode()) + 4
                        + sum(4 + len(a.encode()) for a in al), end)
                       for (v, _, _, _, al, start, end), r, c in zip(headers, rsid, chrom)],
                      dtype=np.int64).reshape(-1, 2)
    ids = np.where(rsid != "", rsid, np.where(snpid != "", snpid, _text(f"{c}:{p}" for c, p in zip(chrom, pos))))
    variants = VariantTable(chrom=normalise_chroms(chrom), id=ids, cm=np.zeros(len(ids)), pos=pos,
                            allele1=np.array([a[1] if len(a) > 1 else "." for a in alleles], dtype=object),
                            allele0=np.array([a[0] if a else "." for a in alleles], dtype=object))
    return variants, np.array([len(a) for a in alleles], dtype=np.int64), blocks


class BgenFileset(DosageFileset):
    """An opened, checked .bgen (with its .sample when given)."""

    format = "bgen"

    def __init__(self, path: str | os.PathLike, *, sample: str | os.PathLike | None = None,
                 num_threads: int | None = None):
        from bgen import BgenReader

        self.genotype_path = self.variant_path = check_file(path, ".bgen file")
        self.num_threads = num_threads
        try:
            reader = BgenReader(str(self.genotype_path), delay_parsing=True)
            header = reader.header
            n_file, embedded = header.nsamples, header.has_sample_ids
            ids = _text(reader.samples) if embedded and sample is None else None
            walked = None if Path(f"{self.genotype_path}.bgi").exists() else _walk_variants(self.genotype_path, header)
            self.variants, nalleles, self._blocks = walked if walked is not None else _read_variants(reader)
            self._fast = header.layout == 2 and header.compression in ("zlib", None)
        except (ValueError, OSError, RuntimeError, IndexError) as exc:
            raise InputError(f"{self.genotype_path}: not a readable BGEN file ({str(exc).strip() or type(exc).__name__})"
                             ) from None
        if sample is not None:
            self.sample_path = Path(sample)
            self.samples = read_oxford_sample(sample)
            if len(self.samples) != n_file:
                raise InputError(f"{sample} lists {len(self.samples)} samples but {self.genotype_path} holds {n_file}; "
                                 "give the .sample file written with this .bgen")
        elif ids is not None:
            self.sample_path, self.iid_only = self.genotype_path, True
            dup = first_duplicate(list(ids))
            if dup is not None:
                raise InputError(f"{self.genotype_path}: sample ID {ids[dup[1]]} appears twice in its ID block; give "
                                 "a .sample file with unique IDs (--sample)")
            zeros = np.array(["0"] * n_file, dtype=object)
            self.samples = SampleTable(ids.copy(), ids, zeros, zeros.copy(), np.zeros(n_file, np.int8))
        else:
            raise InputError(f"{self.genotype_path} holds no sample IDs; give its Oxford .sample file with --sample")
        check_unique_variant_ids(self.genotype_path, self.variants.id)
        multi = nalleles != 2
        self.multiallelic = multi if multi.any() else None
        reader.close()  # iterated to its end: the fallback reads open their own (``_package_row``)
        self._reader, self._lock, self._local = None, threading.Lock(), threading.local()
        self._compressed = header.compression is not None
        self._fd = os.open(self.genotype_path, os.O_RDONLY)

    def __del__(self):
        fd = self.__dict__.get("_fd")
        if fd is not None and os is not None:  # (at interpreter exit, modules may be gone)
            os.close(fd)

    @property
    def source(self) -> str:
        given = self.sample_path != self.genotype_path
        return f"{self.genotype_path}{SOURCE_SEPARATOR}{self.sample_path}" if given else str(self.genotype_path)

    def __repr__(self) -> str:
        return f"BgenFileset({str(self.genotype_path)!r}: {self.n_samples} samples, {self.n_variants} variants)"

    def _blocks_of(self, variants: np.ndarray):
        """(j, variant, inflated block) for each of ``variants`` (layout 2, zlib or none): runs of
        consecutive variants read with one ``pread`` each (up to READ_BYTES), each block inflated
        by libdeflate, which releases the GIL."""
        starts, ends = self._blocks[variants, 0].tolist(), self._blocks[variants, 1].tolist()
        ks = variants.tolist()
        at = 0
        while at < len(ks):
            stop = at + 1
            while stop < len(ks) and ks[stop] == ks[stop - 1] + 1 and ends[stop] - starts[at] <= READ_BYTES:
                stop += 1
            chunk = memoryview(os.pread(self._fd, ends[stop - 1] - starts[at], starts[at]))
            for j in range(at, stop):
                yield j, ks[j], self._inflate(chunk[starts[j] - starts[at]:ends[j] - starts[at]])
            at = stop

    def _rows(self, variants: np.ndarray) -> np.ndarray:
        """Layout 2 with zlib (or no) compression, the usual imputed files: each block decoded by a
        numba kernel (:mod:`._bgen_numba`), without the GIL, so the scan's workers decode at once;
        anything else through the ``bgen`` package, one thread at a time."""
        from ._bgen_numba import decode_layout2

        rows = self._row_buffer(len(variants))
        spread = self._spread_buffer(len(variants))
        if not self._fast:
            for j, k in enumerate(variants.tolist()):
                self._package_row(k, rows[j], spread[j])
            return rows
        for j, k, block in self._blocks_of(variants):
            if decode_layout2(block, self.n_samples, rows[j], spread[j]) != 0:
                self._package_row(k, rows[j], spread[j])
        return rows

    def _inflate(self, raw: memoryview) -> np.ndarray:
        """A layout-2 genotype block's probability data: C (bytes after it), then D (their size
        inflated) and C - 4 zlib bytes, or C raw bytes; empty where it does not add up (the
        package then reads the variant, and names what is wrong)."""
        if len(raw) < 8:
            return np.zeros(0, np.uint8)
        length = int.from_bytes(raw[:4], "little")
        if not self._compressed:
            return np.frombuffer(raw[4:4 + length], np.uint8)
        import deflate

        try:
            return np.frombuffer(deflate.zlib_decompress(raw[8:4 + length], int.from_bytes(raw[4:8], "little")),
                                 np.uint8)
        except deflate.DeflateError:
            return np.zeros(0, np.uint8)

    def _package_row(self, k: int, out: np.ndarray, spread: np.ndarray) -> None:
        with self._lock:
            if self._reader is None:
                from bgen import BgenReader

                self._reader = BgenReader(str(self.genotype_path), delay_parsing=True)
            record = self._reader[k]
            out[:] = record.alt_dosage  # the second allele's expected count; NaN where missing
            ploidy = record.ploidy  # decoded with the dosages (a few microseconds more)
            probabilities = record.probabilities if spread.size else None
            phased = record.is_phased
        if ploidy.min() < 2:  # haploid calls count 0 or 2 copies, as a .bed codes them
            out *= np.where(ploidy == 1, np.float32(2), np.float32(1))
        if probabilities is not None:
            spread[:] = np.nan_to_num(_genotype_variance(probabilities, ploidy, phased, out))
        out[np.isnan(out)] = -9.0

    def _spread_buffer(self, n_variants: int) -> np.ndarray:
        """This thread's buffer for the samples' genotype variances (IMPUTE's info), as the rows'."""
        return self._row_buffer(n_variants, "spread")

    def _decode_imputed(self, variants: np.ndarray, gather: np.ndarray, dosages: np.ndarray, mask: np.ndarray):
        """As the other dosage readers, with the samples' genotype variances summed over the
        analysis samples (``VariantStats.spread``): BGEN's INFO is IMPUTE's info, as REGENIE's.
        The usual file (layout 2, zlib, unphased diploid, 8 or 16 bits) is decoded straight into
        the gathered rows (:func:`._bgen_numba.decode_gathered`): one pass over each inflated block,
        against three over (variants, file samples) buffers of dosages and spreads: 85 against 95 us
        a variant read at N = 10,000, and 160 MB less peak memory in a two-thread scan; other
        blocks through a one-variant row."""
        from ..genotype._decode_numba import gathered_sums
        from ..genotype.stats import VariantStats
        from ._bgen_numba import decode_gathered, decode_layout2, gather_row

        if not self._fast:
            stats = super()._decode_imputed(variants, gather, dosages, mask)
            return dataclasses.replace(stats, spread=gathered_sums(self._spread_buffer(len(variants)), gather,
                                                                   dosages.shape[1]))
        sums = np.zeros((4, len(variants)))
        no_mask = np.zeros(0, dtype=bool)
        picked = np.bincount(gather, minlength=self.n_samples) if len(gather) else None
        excluded = np.empty(0, np.int64) if picked is None else np.flatnonzero(picked == 0)
        twice = picked is not None and picked.max() > 1  # a sample gathered twice: through a row
        row, spread = np.empty(self.n_samples, np.float32), np.empty(self.n_samples, np.float32)
        for j, k, block in self._blocks_of(variants):
            mask_row = mask[j] if mask.shape[1] else no_mask
            code = 5 if twice else \
                decode_gathered(block, self.n_samples, gather, excluded, row, dosages[j], mask_row, sums, j)
            if code == 0:
                continue
            if code not in (4, 5) or decode_layout2(block, self.n_samples, row, spread) != 0:
                self._package_row(k, row, spread)
            gather_row(row, spread, gather, dosages[j], mask_row, sums, j)
        return VariantStats(sums[0].astype(np.int64), sums[1], dosages.shape[1], squares=sums[2], spread=sums[3])


def _genotype_variance(probabilities: np.ndarray, ploidy: np.ndarray, phased: bool, dosage: np.ndarray) -> np.ndarray:
    """Each sample's E[g^2] - E[g]^2 from the ``bgen`` package's probabilities (the fallback of
    the numba kernel, which computes the same): unphased diploid P(AB) + 4 P(BB) - dosage^2,
    phased q1 (1 - q1) + q2 (1 - q2), haploid 4 q (1 - q), q a haplotype's P(B)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if phased:
        q = p[:, 1::2][:, :2]
        value = np.nansum(q * (1 - q), axis=1)
    else:
        value = p[:, 1] + 4 * np.nan_to_num(p[:, 2]) - np.asarray(dosage, dtype=np.float64) ** 2
    haploid = ploidy == 1
    if haploid.any():
        q = p[haploid, 1]
        value[haploid] = 4 * q * (1 - q)
    return np.maximum(value, 0.0)


def open_bgen(source: str, *, num_threads: int | None = None) -> BgenFileset:
    """The fileset named by a source string: FILE.bgen, or FILE.bgen::FILE.sample."""
    path, _, sample = str(source).partition(SOURCE_SEPARATOR)
    return BgenFileset(path, sample=sample or None, num_threads=num_threads)
