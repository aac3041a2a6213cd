"""The genomic relationship matrix, streamed from a .bed and accumulated with BLAS.

Definition (GCTA's standardized GRM, also plink2 --make-rel's):

    A_jk = 1 / N_jk * sum_i (x_ij - 2 p_i)(x_ik - 2 p_i) / (2 p_i (1 - p_i))

over the selected variants i, with p_i the ALLELE1 frequency among the selected samples.
``missing="gcta"`` (default): a missing call contributes 0 and N_jk counts the variants called
in both j and k (plink2 --make-rel, GCTA --make-grm).  ``missing="mean-impute"``: a missing call
is replaced by 2p (so it also contributes 0) and N_jk = M for every pair.  The diagonal uses the
same formula (plink2's convention; GCTA's --make-grm uses a different, unbiased diagonal).

Cost per variant block of width b: the numba standardization (n b, in place), the missing-pair
count (sum of squared missing calls per variant), and one BLAS symmetric rank-b update, n^2 b
flops.  Total n^2 M flops; memory one n x n accumulator (two with LOCO, plus an int32 n x n
shared-missing count in "gcta" mode), plus two genotype blocks.  With ``loco``, the partial sums
of each chromosome are handed to ``on_part`` as it completes (the CLI writes them to HDF5), so
the GRM without any chromosome needs no second pass over the genotypes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

from .._progress import get_logger, progress
from .._validation import check_index, check_positive_int
from ..exceptions import InputError
from ..genotype import VariantFilter, iter_blocks
from ..io.plink import PlinkFileset
from .kinship import Kinship

log = get_logger("grm")
MISSING_MODES = ("gcta", "mean-impute")
DEFINITION = ("GCTA standardized GRM: mean over variants of (x_j-2p)(x_k-2p)/(2p(1-p)), "
              "ALLELE1 counted, diagonal by the same formula")


@dataclass(frozen=True)
class GrmConfig:
    """How the GRM is built.  Defaults: MAF >= 0.01, missing rate <= 0.05, GCTA missing mode."""

    missing: str = "gcta"
    min_maf: float = 0.01
    min_mac: float = 0.0
    max_missing: float = 0.05
    double: bool = False  # accumulate in float64 instead of float32
    block_size: int = 2048
    loco: bool = False

    def __post_init__(self):
        if self.missing not in MISSING_MODES:
            raise InputError(f"missing mode must be one of {', '.join(MISSING_MODES)}, got {self.missing!r}")
        check_positive_int("block_size", self.block_size)

    @property
    def dtype(self):
        return np.float64 if self.double else np.float32

    def filters(self) -> VariantFilter:
        return VariantFilter(min_maf=self.min_maf, min_mac=self.min_mac, max_missing=self.max_missing)


@dataclass
class GrmPart:
    """Unnormalised sums over a set of variants (upper triangles while accumulating, then symmetric)."""

    total: np.ndarray  # (n, n) sum of z z^T, Fortran order
    n_variants: int
    sample_missing: np.ndarray | None  # (n,) int64 missing calls per sample ("gcta" mode)
    pair_missing: np.ndarray | None  # (n, n) int32 calls missing in both (upper triangle), Fortran order
    variant_index: np.ndarray  # .bim positions used

    @classmethod
    def empty(cls, n: int, dtype, gcta: bool) -> GrmPart:
        return cls(np.zeros((n, n), dtype=dtype, order="F"), 0,
                   np.zeros(n, np.int64) if gcta else None,
                   np.zeros((n, n), np.int32, order="F") if gcta else None, np.zeros(0, np.int64))

    def add_counts(self, other: GrmPart) -> None:
        """Add ``other``'s variant and missing-call counts (not its sums)."""
        self.n_variants += other.n_variants
        if self.sample_missing is not None:
            self.sample_missing += other.sample_missing
            self.pair_missing += other.pair_missing
        self.variant_index = np.concatenate([self.variant_index, other.variant_index])


def symmetrize_upper(a: np.ndarray) -> np.ndarray:
    """Copy the upper triangle onto the lower one, in place."""
    from ._grm_numba import symmetrize_upper as kernel

    kernel(a)
    return a


def pair_counts(n_variants, sample_missing, pair_missing, rows=slice(None)) -> np.ndarray:
    """N_jk = M - c_j - c_k + S_jk for the rows asked (S symmetric), as float64."""
    if sample_missing is None:
        return np.float64(n_variants)
    c = sample_missing.astype(np.float64)
    s = pair_missing[rows].astype(np.float64)
    return n_variants - c[rows, None] - c[None, :] + s


def normalize(part: GrmPart, dtype) -> np.ndarray:
    """A = sum / N from the upper triangles of the part's sums and counts (both triangles out)."""
    from ._grm_numba import normalize_upper

    n = part.total.shape[0]
    out = np.empty((n, n), dtype=dtype, order="F")
    gcta = part.sample_missing is not None
    c = part.sample_missing if gcta else np.zeros(n, np.int64)
    s = part.pair_missing if gcta else np.zeros((0, 0), np.int32)
    if normalize_upper(part.total, part.n_variants, c, s, out):
        j, k = np.argwhere(np.isnan(out))[0]
        raise InputError(f"samples {j + 1} and {k + 1} share no called variant; "
                         "drop samples with very high missingness (plink2 --mind)")
    return out


class _Accumulator:
    """Sums z z^T over streamed blocks with BLAS syrk (upper triangle).

    Single precision: syrk accumulates into a float32 buffer that is flushed into a float64
    total every ``FLUSH_CALLS`` updates or ``FLUSH_VARIANTS`` variants, so the rounding error
    stays that of a float32 sum over a few thousand variants whatever M is (the result agrees
    with a float64 computation to about 1e-7).  With LOCO, each flush also adds the buffer to
    the current chromosome's part.
    """

    FLUSH_CALLS = 64
    FLUSH_VARIANTS = 32768

    def __init__(self, n: int, config: GrmConfig):
        self.n, self.config = n, config
        self.double = config.double
        self.gcta = config.missing == "gcta"
        self.total = GrmPart.empty(n, np.float64, self.gcta)
        self.buffer = self.total.total if self.double else np.zeros((n, n), np.float32, order="F")
        self.part = GrmPart.empty(n, config.dtype, self.gcta) if config.loco else None
        self.calls = self.pending = 0
        self.syrk = blas.dsyrk if self.double else blas.ssyrk
        self.used: list[np.ndarray] = []  # .bim positions of the current part's blocks

    def _take_used(self) -> np.ndarray:
        used, self.used = self.used, []
        return np.concatenate(used) if used else np.zeros(0, np.int64)

    def add_block(self, block) -> None:
        from ._grm_numba import count_missing_pairs, standardize_inplace

        z = block.dosages
        if self.gcta and block.stats.n_obs.min() < z.shape[0]:
            target = self.part if self.part is not None else self.total
            count_missing_pairs(z, target.sample_missing, target.pair_missing)
        if self.double:
            z = np.asfortranarray(z, dtype=np.float64)
        standardize_inplace(z, block.stats.a1freq)
        beta = 0.0 if (self.calls == 0 and not self.double) else 1.0
        if self.double and self.part is not None:
            self.syrk(1.0, z, beta=1.0, c=self.part.total, trans=0, lower=0, overwrite_c=1)
        else:
            self.syrk(1.0, z, beta=beta, c=self.buffer, trans=0, lower=0, overwrite_c=1)
        self.calls += 1
        self.pending += len(block)
        target = self.part if self.part is not None else self.total
        target.n_variants += len(block)
        self.used.append(block.variant_index)
        if self.calls >= self.FLUSH_CALLS or self.pending >= self.FLUSH_VARIANTS:
            self.flush()

    def flush(self) -> None:
        if self.double or self.calls == 0:
            self.calls = self.pending = 0
            return
        from ._grm_numba import add_upper

        add_upper(self.total.total, self.buffer)
        if self.part is not None:
            add_upper(self.part.total, self.buffer)
        self.calls = self.pending = 0

    def end_part(self) -> GrmPart:
        """Close the current chromosome: its part (symmetrized) goes to the caller, the counts and
        (in double precision) the sums to the total."""
        self.flush()
        part = self.part
        part.variant_index = self._take_used()
        symmetrize_upper(part.total)
        if part.pair_missing is not None:
            symmetrize_upper(part.pair_missing)
        if self.double:
            from ._grm_numba import add_upper

            add_upper(self.total.total, part.total)
        counts_only = GrmPart(part.total[:0, :0], part.n_variants, part.sample_missing, part.pair_missing,
                              part.variant_index)
        self.total.add_counts(counts_only)
        self.part = GrmPart.empty(self.n, self.config.dtype, self.gcta)
        return part

    def finish(self) -> GrmPart:
        """The total (upper triangles; LOCO parts came in symmetric, which does no harm)."""
        self.flush()
        if self.part is None:
            self.total.variant_index = self._take_used()
        return self.total


def grm_memory_bytes(n: int, config: GrmConfig) -> int:
    """Peak memory of :func:`compute_grm`: float64 total + float32 buffer (one float64 in double
    precision) + the output, a LOCO part, int32 pair counts ("gcta", twice with LOCO), two blocks."""
    item = np.dtype(config.dtype).itemsize
    matrices = 8 + (0 if config.double else 4) + item + (item if config.loco else 0)
    if config.missing == "gcta":
        matrices += 4 * (2 if config.loco else 1)
    return n * n * matrices + 2 * 4 * n * config.block_size + 300 * 2**20


def thin_variants(index: np.ndarray, *, count: int | None = None, fraction: float | None = None,
                  seed: int = 1) -> np.ndarray:
    """A random subset of ``index`` (kept in .bim order): ``count`` of them, or each with
    probability ``fraction`` (plink2 --thin-count / --thin)."""
    rng = np.random.default_rng(seed)
    if count is not None:
        if count < 1:
            raise InputError(f"--thin-count must be at least 1, got {count}")
        if count < len(index):
            index = np.sort(rng.choice(index, size=count, replace=False))
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise InputError(f"--thin must lie in (0, 1], got {fraction}")
        index = index[rng.random(len(index)) < fraction]
    return index


def compute_grm(
    fileset: PlinkFileset,
    *,
    samples=None,
    variants=None,
    config: GrmConfig = GrmConfig(),
    on_part: Callable[[str, GrmPart], None] | None = None,
    show_progress: bool = False,
) -> tuple[Kinship, GrmPart]:
    """Build the GRM of ``samples`` (.fam positions, default all) from ``variants`` (.bim
    positions, default all) passing ``config``'s filters.

    Returns the :class:`Kinship` and the summed :class:`GrmPart` (counts for storage).  With
    ``config.loco``, variants are streamed chromosome by chromosome and each chromosome's part
    is passed to ``on_part(chrom, part)`` before it is added to the total.
    """
    sample_index = None if samples is None else check_index("samples", samples, fileset.n_samples)
    variant_index = check_index("variants", variants, fileset.n_variants)
    n = fileset.n_samples if sample_index is None else len(sample_index)
    if n < 2:
        raise InputError(f"{fileset.genotype_path}: a GRM needs at least 2 samples, got {n}")
    chrom = fileset.variants.chrom[variant_index].astype(str)
    if config.loco:
        groups = [(c, variant_index[chrom == c]) for c in dict.fromkeys(chrom)]
    else:
        groups = [("all", variant_index)]
    bar = progress(total=len(variant_index), desc="GRM", unit="var", enabled=show_progress)
    acc = _Accumulator(n, config)
    with bar:
        for name, index in groups:
            for block in iter_blocks(fileset, samples=sample_index, variants=index,
                                     block_size=config.block_size, filters=config.filters()):
                bar.update(block.n_read)
                if len(block):
                    acc.add_block(block)
            if config.loco:
                part = acc.end_part()
                if on_part is not None:
                    on_part(name, part)
                del part
    total = acc.finish()
    if total.n_variants == 0:
        raise InputError(f"{fileset.genotype_path}: no variant passes the GRM filters (MAF >= {config.min_maf}, "
                         f"missing rate <= {config.max_missing}); relax --maf/--geno or check the input")
    matrix = normalize(total, config.dtype)
    if total.pair_missing is not None:  # stored symmetric, so rows can be read for LOCO
        symmetrize_upper(total.pair_missing)
    fam = fileset.samples if sample_index is None else fileset.samples.take(sample_index)
    meta = {"definition": DEFINITION, "missing": config.missing, "n_variants": int(total.n_variants),
            "min_maf": config.min_maf, "max_missing": config.max_missing, "min_mac": config.min_mac,
            "precision": "double" if config.double else "single", "source": str(fileset.source)}
    log.info("GRM of %d samples from %d variants (%s missing mode)", n, total.n_variants, config.missing)
    return Kinship(matrix, fam.fid.astype(object), fam.iid.astype(object), None, meta), total
