"""BGEN files (1.1, 1.2, 1.3; 1 to 32 bits; zlib or zstd; phased or not) through cbgen, the
limix project's reader (package bgen-limix), into the package's block orientation (:mod:`.plink`).

ALLELE0 is a variant's first allele and ALLELE1 its second (REGENIE's convention; plink2 writes
REF first with ``--export bgen-1.2 ref-first``), and a sample's dosage of ALLELE1 is its expected
count: P(AB) + 2 P(BB) unphased, the two haplotypes' probabilities of B summed when phased, and
twice P(B) for a haploid call.  Variants with other than two alleles are listed but marked in
``multiallelic`` (the commands skip and count them).  Variant IDs are the rsid field, else the
SNP ID, else CHR:POS.

Variant positions in the file come from cbgen's metafile, made by one pass over the variants'
headers (genotype blocks are skipped) and kept beside the .bgen as FILE.bgen.metafile, or under
``$GWAS_GLMM_CACHE`` (default ~/.cache/gwas_glmm) where that folder cannot be written; it is
remade when the .bgen is newer.  Sample IDs come from ``--sample`` (Oxford .sample: ID_1 = FID,
ID_2 = IID) or, without it, from the file's own ID block, matched by IID alone.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from .._progress import get_logger
from .._validation import check_file, first_duplicate
from ..exceptions import InputError
from .chrom import normalise_chroms
from .dosage import DosageFileset
from .plink import SampleTable, VariantTable, check_unique_variant_ids

log = get_logger("io")

SOURCE_SEPARATOR = "::"  # "FILE.bgen::FILE.sample": what a worker is sent to open the same fileset
BATCH_BYTES = 64 << 20  # probabilities decoded per cbgen call


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


def _metafile(bgen_path: Path) -> Path:
    """The cbgen metafile of ``bgen_path``, made (one pass over the variant headers) if missing or
    older than the file."""
    import cbgen

    stat = bgen_path.stat()
    beside = Path(f"{bgen_path}.metafile")
    key = hashlib.sha1(f"{bgen_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = Path(os.environ.get("GWAS_GLMM_CACHE", Path.home() / ".cache" / "gwas_glmm")) / f"{key}.metafile"
    for path in (beside, cached):
        if path.exists() and path.stat().st_mtime_ns >= stat.st_mtime_ns:
            return path
    log.info("indexing %s: one pass over its variant headers (kept for later runs)", bgen_path)
    for path in (beside, cached):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
        except OSError:
            continue
        os.close(fd)
        os.unlink(tmp)  # cbgen writes the file itself
        try:
            with cbgen.BgenFile(str(bgen_path)) as bgen:
                bgen.create_metafile(tmp)
            os.replace(tmp, path)
            return path
        except (OSError, RuntimeError):
            Path(tmp).unlink(missing_ok=True)
    raise InputError(f"{bgen_path}: cannot write its index beside it nor under {cached.parent}; set GWAS_GLMM_CACHE "
                     "to a writable folder")


def _text(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def _read_variants(metafile: Path) -> tuple[VariantTable, np.ndarray, np.ndarray]:
    """(variants, genotype-block offsets uint64, allele counts) from the metafile."""
    import cbgen

    parts = []
    with cbgen.bgen_metafile(str(metafile)) as mf:
        for k in range(mf.npartitions):
            v = mf.read_partition(k).variants
            parts.append((_text(v.chromosome), _text(v.id), _text(v.rsid), np.asarray(v.position, np.int64),
                          _text(v.allele_ids), np.asarray(v.nalleles, np.int64), np.asarray(v.offset, np.uint64)))
    chrom, snpid, rsid, pos, alleles, nalleles, offsets = (np.concatenate([p[j] for p in parts]) for j in range(7))
    ids = np.where(rsid != "", rsid, np.where(snpid != "", snpid, _text(f"{c}:{p}" for c, p in zip(chrom, pos))))
    split = [a.split(",") + ["."] for a in alleles]
    allele0 = np.array([s[0] for s in split], dtype=object)
    allele1 = np.array([s[1] for s in split], dtype=object)
    variants = VariantTable(chrom=normalise_chroms(chrom), id=ids, cm=np.zeros(len(ids)), pos=pos,
                            allele1=allele1, allele0=allele0)
    return variants, offsets, nalleles


class BgenFileset(DosageFileset):
    """An opened, checked .bgen (with its .sample when given)."""

    def __init__(self, path: str | os.PathLike, *, sample: str | os.PathLike | None = None,
                 num_threads: int | None = None):
        import cbgen

        self.genotype_path = self.variant_path = check_file(path, ".bgen file")
        self.num_threads = num_threads
        try:
            with cbgen.BgenFile(str(self.genotype_path)) as bgen:
                n_file, embedded = bgen.nsamples, bgen.contain_samples
                ids = _text(bgen.read_samples()) if embedded and sample is None else None
        except RuntimeError as exc:
            raise InputError(f"{self.genotype_path}: not a readable BGEN file ({str(exc).strip()})") from None
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
        self.variants, self._offsets, nalleles = _read_variants(_metafile(self.genotype_path))
        check_unique_variant_ids(self.genotype_path, self.variants.id)
        multi = nalleles != 2
        self.multiallelic = multi if multi.any() else None
        self._local = threading.local()

    @property
    def source(self) -> str:
        given = self.sample_path != self.genotype_path
        return f"{self.genotype_path}{SOURCE_SEPARATOR}{self.sample_path}" if given else str(self.genotype_path)

    def __repr__(self) -> str:
        return f"BgenFileset({str(self.genotype_path)!r}: {self.n_samples} samples, {self.n_variants} variants)"

    def _reader(self):
        reader = getattr(self._local, "reader", None)
        if reader is None:
            import cbgen

            reader = self._local.reader = cbgen.BgenFile(str(self.genotype_path))
        return reader

    def _rows(self, variants: np.ndarray) -> np.ndarray:
        rows = self._row_buffer(len(variants))
        step = max(1, BATCH_BYTES // (4 * 4 * max(self.n_samples, 1)))
        for start in range(0, len(variants), step):
            offsets = self._offsets[variants[start:start + step]]
            batch = self._reader().read_genotypes_batch(offsets.tolist(), max_ncomb=4, precision=32)
            rows[start:start + len(offsets)] = expected_dosage(batch.probability, batch.phased, batch.ploidy,
                                                               batch.missing)
        return rows


def expected_dosage(prob: np.ndarray, phased: np.ndarray, ploidy: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """(variants, samples) expected count of the second allele from biallelic probabilities
    (variants, samples, width): unphased diploid P(AB) + 2 P(BB), phased diploid the two
    haplotypes' P(B), haploid 2 P(B) (chromosome X's 0/2 coding); -9 where missing."""
    p1 = prob[:, :, 1]
    unphased = np.where(ploidy == 1, 2 * p1, p1 + 2 * prob[:, :, 2])
    if phased.any():
        haplotypes = np.where(ploidy == 1, 2 * p1, p1 + prob[:, :, min(3, prob.shape[2] - 1)])
        unphased = np.where(phased[:, None], haplotypes, unphased)
    return np.where(missing | np.isnan(unphased), np.float32(-9), unphased).astype(np.float32, copy=False)


def open_bgen(source: str, *, num_threads: int | None = None) -> BgenFileset:
    """The fileset named by a source string: FILE.bgen, or FILE.bgen::FILE.sample."""
    path, _, sample = str(source).partition(SOURCE_SEPARATOR)
    return BgenFileset(path, sample=sample or None, num_threads=num_threads)
