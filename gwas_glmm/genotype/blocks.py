"""Streamed genotype blocks with their .bim rows and statistics, filtered as they are read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .._progress import progress
from .._validation import check_index, check_positive_int
from ..io.plink import GenotypeFileset, VariantTable
from .stats import VariantFilter, VariantStats, compute_stats

DEFAULT_BLOCK_SIZE = 2048
BLOCK_BYTES = 256 << 20  # one float32 block at most, for the biobank paths (sparse GRM, PCA)


def bounded_block_size(n_samples: int, requested: int = DEFAULT_BLOCK_SIZE, budget: int = BLOCK_BYTES) -> int:
    """``requested`` variants per block, fewer where a float32 block of ``n_samples`` would pass
    ``budget`` bytes (at 100,000 samples 2,048 variants are 820 MB, and a streaming pass holds
    about three blocks: the one read ahead, the one in use and its standardized copy)."""
    return int(max(64, min(requested, budget // max(4 * n_samples, 1))))


@dataclass(frozen=True)
class GenotypeBlock:
    """Consecutive selected variants that passed the filters.

    ``dosages`` is (n_samples, n_variants) float32, Fortran order, ALLELE1 counts, NaN missing.
    """

    dosages: np.ndarray
    variant_index: np.ndarray  # positions in the .bim, int64
    variants: VariantTable
    stats: VariantStats
    n_read: int  # variants read for this block, before filtering

    def __len__(self) -> int:
        return len(self.variant_index)


def iter_blocks(
    fileset: GenotypeFileset,
    *,
    samples=None,
    variants=None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    filters: VariantFilter | None = None,
    prefetch: bool = True,
    show_progress: bool = False,
) -> Iterator[GenotypeBlock]:
    """Stream ``variants`` (positions in the .bim, default all) of ``samples`` (positions in the
    .fam, any order, default all) in blocks of at most ``block_size`` variants.

    Peak memory is about two blocks (``2 * 4 * n_samples * block_size`` bytes), whatever the
    size of the .bed.  Statistics are computed over the selected samples.
    """
    block_size = check_positive_int("block_size", block_size)
    variant_index = check_index("variants", variants, fileset.n_variants)
    sample_arg = None if samples is None else check_index("samples", samples, fileset.n_samples)
    filters = filters or VariantFilter()
    bar = progress(total=len(variant_index), desc="genotypes", unit="var", enabled=show_progress)
    with bar:
        for positions, dosages in fileset.iter_reads(variant_index, block_size, sample_arg, prefetch=prefetch):
            stats = compute_stats(dosages, info=fileset.dosages)
            n_read = len(positions)
            if not filters.is_trivial:
                keep = filters.mask(stats)
                if not keep.all():
                    dosages = np.asfortranarray(dosages[:, keep])
                    positions, stats = positions[keep], stats.take(keep)
            bar.update(n_read)
            yield GenotypeBlock(dosages, positions, fileset.variants.take(positions), stats, n_read)


def variant_stats(
    fileset: GenotypeFileset,
    *,
    samples=None,
    variants=None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    filters: VariantFilter | None = None,
    show_progress: bool = False,
) -> tuple[np.ndarray, VariantStats]:
    """One pass over the .bed: (.bim positions of the passing variants, their statistics)."""
    positions, parts = [], []
    n_samples = fileset.n_samples if samples is None else len(check_index("samples", samples, fileset.n_samples))
    for block in iter_blocks(
        fileset, samples=samples, variants=variants, block_size=block_size, filters=filters,
        show_progress=show_progress,
    ):
        positions.append(block.variant_index)
        parts.append(block.stats)
    index = np.concatenate(positions) if positions else np.zeros(0, np.int64)
    return index, VariantStats.concat(parts, n_samples)
