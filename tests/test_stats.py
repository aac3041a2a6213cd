"""Per-variant statistics: against numpy, against stored plink2 --freq output, and filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gwas_glmm import PlinkFileset, VariantFilter, select_variants, variant_stats
from gwas_glmm.genotype import compute_stats
from gwas_glmm.io import read_sample_list


def _plink2(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def test_compute_stats__matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(57, 40)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 3] = np.nan  # all missing
    x[:, 4] = 2.0  # monomorphic for ALLELE1
    x[:, 5] = 0.0  # monomorphic for ALLELE0
    s = compute_stats(np.asfortranarray(x))
    obs = (~np.isnan(x)).sum(axis=0)
    np.testing.assert_array_equal(s.n_obs, obs)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(s.a1freq, np.nansum(x, axis=0) / (2 * obs), rtol=1e-12)
    np.testing.assert_allclose(s.missing_rate, 1 - obs / 57)
    assert np.isnan(s.a1freq[3]) and s.a1freq[4] == 1.0 and s.a1freq[5] == 0.0
    assert s.mac[3] == 0 and s.mac[4] == 0 and s.mac[5] == 0
    assert s.missing_rate[3] == 1.0


def test_freq__equals_plink2(reference_fileset):
    """plink2 --freq (--nonfounders) on the same fileset: counts exact, ALT_FREQS to 1e-6."""
    fs = PlinkFileset(reference_fileset)
    index, stats = variant_stats(fs, block_size=128)
    acount = _plink2(f"{reference_fileset}.plink2.acount")
    afreq = _plink2(f"{reference_fileset}.plink2.afreq")
    np.testing.assert_array_equal(acount["ID"], fs.variants.id[index])
    np.testing.assert_array_equal(acount["ALT"], fs.variants.allele1[index])  # ALLELE1 is plink2's ALT
    np.testing.assert_array_equal(acount["OBS_CT"], 2 * stats.n_obs)
    np.testing.assert_array_equal(acount["ALT_CTS"], stats.allele1_count)
    assert np.max(np.abs(afreq["ALT_FREQS"] - stats.a1freq)) < 1e-6
    assert (stats.n_obs < fs.n_samples).any(), "reference should contain missing calls"


def test_freq_with_keep_and_chr__equals_plink2(reference_fileset):
    fs = PlinkFileset(reference_fileset)
    samples = read_sample_list(f"{reference_fileset}.keep", fs.samples)
    assert len(samples) == 100
    variants = select_variants(fs.variants, chrom=[str(c) for c in range(1, 6)])
    index, stats = variant_stats(fs, samples=samples, variants=variants, block_size=37)
    ref = _plink2(f"{reference_fileset}.keep.plink2.acount")
    np.testing.assert_array_equal(ref["ID"], fs.variants.id[index])
    np.testing.assert_array_equal(ref["OBS_CT"], 2 * stats.n_obs)
    np.testing.assert_array_equal(ref["ALT_CTS"], stats.allele1_count)


@pytest.mark.parametrize("block_size", [1, 13, 4096])
def test_filters(small_cohort, block_size):
    fs = PlinkFileset(small_cohort.bfile)
    _, everything = variant_stats(fs, block_size=block_size)
    f = VariantFilter(min_maf=0.05, min_mac=10, max_missing=0.03)
    index, stats = variant_stats(fs, block_size=block_size, filters=f)
    expected = np.flatnonzero(
        (np.nan_to_num(everything.maf, nan=-1) >= 0.05) & (everything.mac >= 10)
        & (everything.missing_rate <= 0.03)
    )
    np.testing.assert_array_equal(index, expected)
    assert 0 < len(index) < fs.n_variants
    assert stats.maf.min() >= 0.05 and stats.mac.min() >= 10 and stats.missing_rate.max() <= 0.03


def test_filter_rejects_bad_thresholds():
    from gwas_glmm import InputError

    with pytest.raises(InputError, match="min_maf"):
        VariantFilter(min_maf=0.7)
    with pytest.raises(InputError, match="max_missing"):
        VariantFilter(max_missing=1.5)

