"""Chromosome X outside the pseudo-autosomal regions: males carry one copy.

plink stores a male's X call as homozygous (0 or 2) in a .bed.  The scan tests X with

* males coded 0/2 (REGENIE's default: a male's one copy counts as two, as under full dosage
  compensation), or 0/1 with ``male_coding="0/1"`` (no compensation);
* a heterozygous male call treated as missing (a genotyping error: plink2's ``--set-hh-missing``);
* the calls of samples of unknown sex treated as missing;
* every missing call mean-imputed from the coded calls of the variant, as on the autosomes.

Allele frequency and MAC count one allele per male and two per female (plink2 ``--freq`` on X).
The pseudo-autosomal regions (``XY``, plink's 25) are autosomal and never come here.
Cost: one pass over the block's male rows, O(n m), only for the X blocks.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from .stats import VariantStats

MALE_CODINGS = {"0/2": 1.0, "0/1": 0.5}


def male_factor(coding: str) -> float:
    if coding not in MALE_CODINGS:
        raise InputError(f"--x-male-coding must be 0/2 or 0/1, got {coding!r}")
    return MALE_CODINGS[coding]


def recode_x(g: np.ndarray, missing: np.ndarray, sex: np.ndarray, factor: float):
    """Recode a mean-imputed block ``g`` (samples, variants; changed in place) of X calls as the
    module docstring says, given its missing-call mask and ``sex`` per sample (1 male, 2 female,
    0 unknown).  Returns (g, its :class:`VariantStats`, the new missing mask, the value each
    missing call now holds)."""
    male, unknown = sex == 1, sex == 0
    called = ~missing
    dropped = (male[:, None] & called & (g == 1)) | (unknown[:, None] & called)
    missing = missing | dropped
    called = ~missing
    g_male = g[male]
    alleles_male = np.where(called[male], g_male / 2.0, 0.0).sum(axis=0)  # one copy: 0/2 -> 0/1
    g[male] = g_male * np.float32(factor)
    coded = np.where(called, g, 0.0)
    n_obs = called.sum(axis=0).astype(np.int64)
    fill = (coded.sum(axis=0, dtype=np.float64) / np.maximum(n_obs, 1)).astype(np.float32)
    g[:] = np.where(missing, fill[None, :], g)
    female_calls = (called & (sex == 2)[:, None]).sum(axis=0)
    alleles_female = np.where(called & (sex == 2)[:, None], g, 0.0).sum(axis=0, dtype=np.float64)
    male_calls = called[male].sum(axis=0)
    stats = VariantStats(n_obs, alleles_female + alleles_male, len(sex),
                         (2.0 * female_calls + male_calls).astype(np.float64))
    return g, stats, missing, fill.astype(np.float64)
