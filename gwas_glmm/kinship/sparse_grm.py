"""A sparse GRM of close relatives, built panel by panel without an n x n matrix (fastGWA's and
SAIGE's sparse GRM; issue #17, first part).

The entries are the dense GRM's (:mod:`gwas_glmm.kinship.grm`: GCTA's standardized GRM over the
variants passing the filters, frequencies over all the selected samples, ``gcta`` or
``mean-impute`` missing modes).  Only the diagonal and the off-diagonal entries at or above the
cutoff are kept.

Samples are split into row panels of ``b`` samples.  Panel I holds the lower-triangle rows
A[I, :I_end] (b x (I_end) float64 sums, plus a float32 count of shared missing calls in
``gcta`` mode), filled in one pass over the genotypes: for each variant block (all samples,
standardized once, exactly as the dense path does), ``Z_I Z_{:I_end}^T``.  Then the panel is
divided by the pair counts, thresholded and dropped.

Cost: n^2 M flops in all (half the dense path's n^2 M symmetric update counted as a full
product: the same order), n M / 4 bytes of the .bed read once per panel, memory 12 b n bytes
for a panel plus two genotype blocks (8 n w bytes) plus the kept entries (12 bytes each).
Panels are independent: the unit that threads, dask tasks and a resumable run will schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from .._progress import get_logger, progress
from .._validation import check_index, check_positive_int
from ..exceptions import InputError
from ..genotype import iter_blocks
from ..io.plink import PlinkFileset
from .grm import DEFINITION, GrmConfig

log = get_logger("grm")


@dataclass(frozen=True)
class SparseSummary:
    """What the log says about a sparse GRM."""

    n: int
    pairs: int  # off-diagonal pairs kept (each once)
    cutoff: float
    groups: tuple[int, ...]  # sizes of the largest groups of related samples, largest first
    singletons: int  # samples with no relative at or above the cutoff
    n_variants: int

    def lines(self) -> list[str]:
        largest = ", ".join(map(str, self.groups[:5])) or "none"
        return [f"sparse GRM (entries >= {self.cutoff:g}) of {self.n} samples from {self.n_variants} variants: "
                f"{self.pairs} related pairs kept",
                f"  largest groups of related samples: {largest}; {self.singletons} samples with no relative"]


def check_cutoff(cutoff: float, flag: str = "--sparse-cutoff") -> float:
    if not (0.0 < float(cutoff) < 1.0):
        raise InputError(f"{flag} must lie strictly between 0 and 1 (fastGWA uses 0.05), got {cutoff:g}")
    return float(cutoff)


def panel_rows(n: int, memory_bytes: int = 1 << 30) -> int:
    """Samples per panel: 12 b n bytes within ``memory_bytes`` (default 1 GiB), at least 64."""
    return int(min(n, max(64, memory_bytes // max(12 * n, 1))))


def summarize(matrix: scipy.sparse.csr_matrix, cutoff: float, n_variants: int) -> SparseSummary:
    off = scipy.sparse.triu(matrix, k=1)
    _, labels = scipy.sparse.csgraph.connected_components(off, directed=False)
    sizes = np.bincount(labels)
    groups = tuple(int(s) for s in np.sort(sizes[sizes > 1])[::-1])
    return SparseSummary(matrix.shape[0], int(off.nnz), cutoff, groups, int(np.sum(sizes == 1)), n_variants)


def sparse_grm(fileset: PlinkFileset, *, cutoff: float, samples=None, variants=None,
               config: GrmConfig | None = None, panel: int | None = None,
               show_progress: bool = False) -> tuple[scipy.sparse.csr_matrix, SparseSummary, dict]:
    """(the symmetric CSR matrix, its summary, metadata) of ``samples`` (.fam positions, default
    all) from ``variants`` (.bim positions) passing ``config``'s filters; ``panel``: samples per
    row panel (default :func:`panel_rows`)."""
    cutoff = check_cutoff(cutoff)
    config = config or GrmConfig()
    sample_index = None if samples is None else check_index("samples", samples, fileset.n_samples)
    variant_index = check_index("variants", variants, fileset.n_variants)
    n = fileset.n_samples if sample_index is None else len(sample_index)
    if n < 2:
        raise InputError(f"{fileset.bed_path}: a GRM needs at least 2 samples, got {n}")
    b = check_positive_int("panel", panel) if panel is not None else panel_rows(n)
    starts = list(range(0, n, b))
    rows, cols, vals = [], [], []
    n_variants = 0
    bar = progress(total=len(starts) * len(variant_index), desc="sparse GRM", unit="var", enabled=show_progress)
    with bar:
        for start in starts:
            stop = min(n, start + b)
            sums = np.zeros((stop - start, stop), np.float64)
            shared = np.zeros((stop - start, stop), np.float32) if config.missing == "gcta" else None
            missing = np.zeros(stop, np.float64)
            n_variants = 0
            for block in iter_blocks(fileset, samples=sample_index, variants=variant_index,
                                     block_size=config.block_size, filters=config.filters()):
                bar.update(block.n_read)
                if not len(block):
                    continue
                z = _standardized(block, stop, config.dtype)
                if shared is not None:
                    m = np.isnan(block.dosages[:stop]).astype(np.float32)
                    if m.any():
                        shared += m[start:stop] @ m.T
                        missing += m.sum(axis=1)
                sums += (z[start:stop] @ z.T).astype(np.float64)
                n_variants += len(block)
            if n_variants == 0:
                raise InputError(f"{fileset.bed_path}: no variant passes the GRM filters (MAF >= {config.min_maf}, "
                                 f"missing rate <= {config.max_missing}); relax --maf/--geno or check the input")
            counts = np.float64(n_variants) if shared is None else (
                n_variants - missing[start:stop, None] - missing[None, :] + shared)
            with np.errstate(invalid="ignore", divide="ignore"):
                a = sums / counts
            local = np.arange(stop - start)
            lower = np.arange(stop)[None, :] < (start + local)[:, None]
            keep = lower & (a >= cutoff)
            keep[local, start + local] = True  # the whole diagonal
            if np.isnan(a[keep]).any():
                j, k = np.argwhere(keep & np.isnan(a))[0]
                raise InputError(f"samples {start + j + 1} and {k + 1} share no called variant; "
                                 "drop samples with very high missingness (plink2 --mind)")
            r, c = np.nonzero(keep)
            rows.append(r + start)
            cols.append(c)
            vals.append(a[r, c].astype(config.dtype))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    off = r != c
    matrix = scipy.sparse.csr_matrix((np.concatenate([v, v[off]]), (np.concatenate([r, c[off]]),
                                      np.concatenate([c, r[off]]))), shape=(n, n))
    matrix.sort_indices()
    summary = summarize(matrix, cutoff, n_variants)
    meta = {"definition": DEFINITION, "missing": config.missing, "n_variants": int(n_variants),
            "min_maf": config.min_maf, "max_missing": config.max_missing, "min_mac": config.min_mac,
            "sparse_cutoff": cutoff, "panels": len(starts), "source": str(fileset.bed_path.with_suffix(""))}
    for line in summary.lines():
        log.info(line)
    return matrix, summary, meta


def _standardized(block, stop: int, dtype) -> np.ndarray:
    """The block's first ``stop`` samples standardized as the dense path does (in ``dtype``: float32,
    or float64 with ``GrmConfig(double=True)``; missing 0)."""
    from ._grm_numba import standardize_inplace

    z = np.array(block.dosages[:stop], dtype=dtype, order="F")  # a copy: the block is not ours
    standardize_inplace(z, block.stats.a1freq)
    return z
