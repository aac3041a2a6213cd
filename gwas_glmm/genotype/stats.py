"""Per-variant summaries (allele frequency, missingness, minor allele count) and the filters on them.

Counts refer to ALLELE1, the .bim's fifth column (plink2's ALT), so ``a1freq`` equals plink2
``--freq`` ALT_FREQS computed over the same samples (plink2 needs ``--nonfounders`` to count
every sample, as we do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_fraction
from ..exceptions import InputError


@dataclass(frozen=True)
class VariantStats:
    """Call counts and ALLELE1 counts for a set of variants over ``n_samples`` samples.

    ``allele_number``: alleles called per variant where it is not two per call (chromosome X,
    where a male carries one: :mod:`gwas_glmm.genotype.xchr`); None for diploid calls.
    ``squares``: the sum of squared dosages over the calls, for files with dosages (imputed
    genotypes: .pgen), giving :attr:`info`; None for hard calls (.bed)."""

    n_obs: np.ndarray  # samples with a call, int64
    allele1_count: np.ndarray  # ALLELE1 copies among the calls, float64
    n_samples: int
    allele_number: np.ndarray | None = None
    squares: np.ndarray | None = None
    spread: np.ndarray | None = None

    @property
    def info(self) -> np.ndarray | None:
        """Imputation quality as REGENIE reports it for the format.  With ``spread`` (BGEN: the sum
        over the calls of each sample's genotype variance given its probabilities) IMPUTE's
        info, 1 - spread / (2 N p (1 - p)); otherwise (.pgen, which stores dosages only) MaCH's
        Rsq (plink2 ``--freq cols=+machr2``), the variance of the dosages over the calls divided
        by 2p(1-p).  p is the ALLELE1 frequency over the N calls.  Both are 1 for certain calls
        and near 0 for a variant imputed with no information.  NaN where p is 0 or 1; None
        without dosages."""
        if self.squares is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.allele1_count / self.n_obs
            expected = mean * (1 - mean / 2)
            if self.spread is not None:
                value = 1.0 - self.spread / (self.n_obs * expected)
            else:
                value = np.maximum(self.squares / self.n_obs - mean**2, 0.0) / expected
            return np.where((self.n_obs > 0) & (expected > 0), value, np.nan)

    @property
    def alleles(self) -> np.ndarray:
        """Alleles called per variant: 2 per call, or ``allele_number``."""
        return 2.0 * self.n_obs if self.allele_number is None else self.allele_number

    @property
    def a1freq(self) -> np.ndarray:
        """ALLELE1 frequency; NaN where every call is missing."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n_obs > 0, self.allele1_count / self.alleles, np.nan)

    @property
    def maf(self) -> np.ndarray:
        """Minor allele frequency, MAC / (alleles called) (no 1 - p rounding at filter thresholds)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n_obs > 0, self.mac / self.alleles, np.nan)

    @property
    def mac(self) -> np.ndarray:
        """Minor allele count: min(ALLELE1 count, ALLELE0 count) among called samples."""
        return np.minimum(self.allele1_count, self.alleles - self.allele1_count)

    @property
    def missing_rate(self) -> np.ndarray:
        """Share of missing calls, (samples - calls) / samples (exact at thresholds like 15/300)."""
        return (self.n_samples - self.n_obs) / float(self.n_samples) if self.n_samples else np.ones(len(self))

    def __len__(self) -> int:
        return len(self.n_obs)

    def take(self, index) -> VariantStats:
        return VariantStats(self.n_obs[index], self.allele1_count[index], self.n_samples,
                            None if self.allele_number is None else self.allele_number[index],
                            None if self.squares is None else self.squares[index],
                            None if self.spread is None else self.spread[index])

    @classmethod
    def concat(cls, parts: list[VariantStats], n_samples: int) -> VariantStats:
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0), n_samples)
        numbers = None if all(p.allele_number is None for p in parts) else np.concatenate([p.alleles for p in parts])
        squares = None if any(p.squares is None for p in parts) else np.concatenate([p.squares for p in parts])
        spread = None if any(p.spread is None for p in parts) else np.concatenate([p.spread for p in parts])
        return cls(
            np.concatenate([p.n_obs for p in parts]),
            np.concatenate([p.allele1_count for p in parts]),
            n_samples,
            numbers,
            squares,
            spread,
        )


def compute_stats(dosages: np.ndarray, *, info: bool = False) -> VariantStats:
    """One pass over a (samples, variants) float32 block (``info``: keep the squares, for
    :attr:`VariantStats.info`)."""
    from ._stats_numba import count_alleles

    n_obs, total, squares = count_alleles(dosages)
    return VariantStats(n_obs, total, dosages.shape[0], squares=squares if info else None)


@dataclass(frozen=True)
class VariantFilter:
    """Thresholds on genotype-derived statistics, as plink2's --maf/--mac/--geno.

    A variant passes when MAF >= ``min_maf``, MAC >= ``min_mac``, missing rate <=
    ``max_missing`` and, for dosage files, INFO >= ``min_info`` (REGENIE's --minINFO).  Variants
    with every call missing never pass a MAF or MAC threshold > 0.
    """

    min_maf: float = 0.0
    min_mac: float = 0.0
    max_missing: float = 1.0
    min_info: float = 0.0

    def __post_init__(self):
        check_fraction("min_maf", self.min_maf, high=0.5)
        check_fraction("max_missing", self.max_missing)
        check_fraction("min_info", self.min_info)
        if not self.min_mac >= 0:
            raise InputError(f"min_mac must be >= 0, got {self.min_mac}")

    @property
    def is_trivial(self) -> bool:
        return self.min_maf == 0 and self.min_mac == 0 and self.max_missing >= 1 and self.min_info == 0

    def mask(self, stats: VariantStats) -> np.ndarray:
        keep = stats.missing_rate <= self.max_missing
        if self.min_maf > 0:
            keep &= np.nan_to_num(stats.maf, nan=-1.0) >= self.min_maf
        if self.min_mac > 0:
            keep &= stats.mac >= self.min_mac
        if self.min_info > 0 and stats.squares is not None:
            keep &= np.nan_to_num(stats.info, nan=-1.0) >= self.min_info
        return keep


def freq_table(variants, stats: VariantStats):
    """Per-variant frequency report (columns as REGENIE/SAIGE users know them).

    A1FREQ is plink2 ``--freq`` ALT_FREQS for ALLELE1; N counts samples with a call (plink2's
    OBS_CT is 2N); MISS is the missing-call rate and MAC the minor allele count.
    """
    frame = variants.to_frame()
    frame["A1FREQ"] = stats.a1freq
    if stats.squares is not None:
        frame["INFO"] = stats.info
    frame["MAC"] = stats.mac
    frame["MISS"] = stats.missing_rate
    frame["N"] = stats.n_obs
    return frame
