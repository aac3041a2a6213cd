"""Imputed-like dosages for a simulated cohort: PREFIX.pgen/.pvar/.psam beside its .bed, which
keeps the true calls.

Each variant draws an imputation quality r from Uniform(0.3, 1) (a fifth of them r = 1: typed
variants, hard calls); a called genotype g becomes the dosage

    d = clip(r g + (1 - r) 2p + e, 0, 2),   e ~ Normal(0, (0.3 (1 - r))^2),

p the variant's ALLELE1 frequency among the calls: the dosage shrinks towards its mean as the
information falls, so INFO (MaCH Rsq) is about r^2, and the noise keeps it from being an affine
map of g (under which a score test could not tell dosages from calls).  Missing calls stay missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.pgen import write_pgen
from ..io.plink import PlinkFileset

TYPED_FRACTION = 0.2
MIN_QUALITY = 0.3


def imputed_dosages(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(variants, samples) dosages from (variants, samples) calls with NaN missing."""
    m = g.shape[0]
    quality = np.where(rng.random(m) < TYPED_FRACTION, 1.0, rng.uniform(MIN_QUALITY, 1.0, m))[:, None]
    mean = np.nan_to_num(np.nanmean(g, axis=1, keepdims=True))
    noise = rng.normal(0.0, 1.0, g.shape) * 0.3 * (1.0 - quality)
    return np.clip(quality * g + (1.0 - quality) * mean + noise, 0.0, 2.0)


def write_imputed(prefix: str | os.PathLike, *, seed: int = 1, block: int = 4096) -> tuple[Path, Path, Path]:
    """PREFIX.pgen/.pvar/.psam with :func:`imputed_dosages` of PREFIX.bed's calls."""
    fileset = PlinkFileset(prefix)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1D05]))

    def blocks():
        for start in range(0, fileset.n_variants, block):
            g = fileset.read(variants=np.s_[start:min(start + block, fileset.n_variants)]).T
            yield imputed_dosages(np.asarray(g, dtype=np.float64), rng)

    return write_pgen(prefix, fileset.samples, fileset.variants, blocks(), dosages=True)
