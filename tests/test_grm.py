"""The streamed GRM against a dense oracle, plink2, and itself under LOCO, subsets and block sizes."""

from __future__ import annotations

import numpy as np
import pytest
from bed_reader import open_bed
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import dense_grm

from gwas_glmm import InputError, PlinkFileset
from gwas_glmm.io.kinship_formats import read_gcta, read_rel
from gwas_glmm.kinship import GrmConfig, compute_grm, thin_variants
from gwas_glmm.kinship.store import KinshipWriter, load_kinship, loco_names, read_provenance


@pytest.fixture(scope="module")
def small(small_cohort):
    fs = PlinkFileset(small_cohort.bfile)
    x = open_bed(f"{small_cohort.bfile}.bed").read(dtype="float64")
    return fs, x


@pytest.mark.parametrize("missing", ["gcta", "mean-impute"])
@pytest.mark.parametrize("double", [False, True])
def test_equals_dense_oracle(small, missing, double):
    fs, x = small
    samples = np.arange(0, fs.n_samples, 3)[::-1]  # a subset, in reverse order
    expected, m = dense_grm(x[samples], missing=missing, min_maf=0.01, max_missing=0.05)
    kin, part = compute_grm(fs, samples=samples, config=GrmConfig(missing=missing, double=double, block_size=97))
    assert part.n_variants == m
    assert kin.matrix.dtype == (np.float64 if double else np.float32)
    np.testing.assert_allclose(kin.matrix, expected, **TOL[double])
    assert list(kin.iid) == list(fs.samples.iid[samples])


# float32 products carry about 1e-6 relative rounding (the inputs are rounded to float32 and a
# BLAS kernel sums up to a block of them in float32); float64 is exact to rounding.
TOL = {False: dict(atol=1e-6, rtol=2e-6), True: dict(atol=1e-10, rtol=0)}


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(block=st.integers(1, 700), missing=st.sampled_from(["gcta", "mean-impute"]), start=st.integers(0, 600),
       double=st.booleans())
def test_block_size_does_not_matter(small, block, missing, start, double):
    fs, x = small
    samples = np.arange(1, 80)
    variants = np.arange(start, start + 500)
    expected, _ = dense_grm(x[np.ix_(samples, variants)], missing=missing, min_maf=0.01, max_missing=0.05)
    kin, _ = compute_grm(fs, samples=samples, variants=variants,
                         config=GrmConfig(missing=missing, block_size=block, double=double))
    np.testing.assert_allclose(kin.matrix, expected, **TOL[double])


@pytest.mark.parametrize("missing", ["gcta", "mean-impute"])
def test_loco_equals_grm_without_the_chromosome(small, tmp_path, missing):
    fs, _ = small
    config = GrmConfig(missing=missing, loco=True, block_size=128)
    path = tmp_path / "grm.h5"
    with KinshipWriter(path) as w:
        kin, total = compute_grm(fs, config=config, on_part=w.write_part)
        w.write(kin, total, fs.variants.take(total.variant_index))
    names = loco_names(path)
    assert sorted(names, key=int) == [str(c) for c in range(1, 23)]
    chrom = fs.variants.chrom.astype(str)
    for c in ("1", "7", "22"):
        direct, _ = compute_grm(fs, variants=np.flatnonzero(chrom != c), config=GrmConfig(missing=missing))
        loco = load_kinship(path, loco=c)
        np.testing.assert_allclose(loco.matrix, direct.matrix, atol=1e-6, rtol=0)
    full = load_kinship(path)
    np.testing.assert_array_equal(full.matrix, kin.matrix)
    assert full.meta["missing"] == missing and full.meta["n_variants"] == total.n_variants


def test_agrees_with_plink2_make_rel(reference_fileset):
    """plink2 --make-rel (bin4, all samples) and --make-grm-bin (a --keep subset): same definition
    (pairwise missing normalisation, same diagonal), MAF >= 0.01, missing <= 0.05."""
    fs = PlinkFileset(reference_fileset)
    kin, _ = compute_grm(fs)
    rel, fid, iid = read_rel(DATA / "sim_small.plink2.rel.bin")
    assert list(iid) == list(fs.samples.iid)
    assert np.abs(kin.matrix - rel).max() < 1e-6

    keep = np.flatnonzero(np.isin(fs.samples.iid, np.loadtxt(DATA / "sim_small.keep", dtype=str)[:, 1]))
    kin_keep, part = compute_grm(fs, samples=keep, config=GrmConfig(double=True))
    grm, counts, _, iid_keep = read_gcta(DATA / "sim_small.keep.plink2")
    assert list(iid_keep) == list(fs.samples.iid[keep])
    assert np.abs(kin_keep.matrix - grm).max() < 1e-6
    from gwas_glmm.kinship.grm import pair_counts

    n = pair_counts(part.n_variants, part.sample_missing, part.pair_missing)
    np.testing.assert_array_equal(n, counts)


def test_rank_deficient_when_fewer_variants_than_samples(small):
    fs, _ = small
    kin, part = compute_grm(fs, variants=np.arange(40), config=GrmConfig(missing="mean-impute"))
    kin = kin.decompose()
    assert kin.eigen.rank <= part.n_variants < fs.n_samples
    np.testing.assert_allclose(kin.eigen.reconstruct(), kin.matrix, atol=1e-5)


def test_no_variant_passes(small):
    fs, _ = small
    with pytest.raises(InputError, match="no variant passes the GRM filters"):
        compute_grm(fs, variants=np.arange(5), config=GrmConfig(min_maf=0.5))


def test_thinning_is_seeded(small):
    index = np.arange(1000)
    a = thin_variants(index, count=100, seed=3)
    assert len(a) == 100 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, thin_variants(index, count=100, seed=3))
    b = thin_variants(index, fraction=0.25, seed=3)
    assert 180 < len(b) < 320
    with pytest.raises(InputError):
        thin_variants(index, fraction=1.5)


def test_provenance_and_store(small, tmp_path):
    fs, _ = small
    from gwas_glmm.provenance import provenance

    kin, total = compute_grm(fs)
    path = tmp_path / "g.h5"
    with KinshipWriter(path) as w:
        w.write(kin.decompose(), total, fs.variants.take(total.variant_index),
                provenance("grm", inputs={"bed": fs.bed_path}, parameters={"maf": 0.01}))
    prov = read_provenance(path)
    assert prov["step"] == "grm" and prov["parameters"]["maf"] == 0.01 and prov["inputs"]["bed"]["bytes"] > 0
    back = load_kinship(path)
    assert back.eigen is not None and back.eigen.rank == kin.decompose().eigen.rank
    assert not list(tmp_path.glob(".tmp-*"))
