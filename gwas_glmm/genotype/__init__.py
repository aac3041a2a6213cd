"""Genotype blocks: streaming with per-variant statistics and filters."""

from .blocks import DEFAULT_BLOCK_SIZE, GenotypeBlock, iter_blocks, variant_stats
from .stats import VariantFilter, VariantStats, compute_stats

__all__ = [
    "DEFAULT_BLOCK_SIZE", "GenotypeBlock", "VariantFilter", "VariantStats", "compute_stats",
    "iter_blocks", "variant_stats",
]
