"""Null models of several phenotypes in one call, each on the samples where it is observed: a
sample missing one trait still counts for the others, the stored eigendecomposition is reused by
the phenotypes observed in every sample and each distinct subset is decomposed once, and the scan
tests each phenotype on its own samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gwas_glmm import GrmConfig, PlinkFileset, compute_grm, read_covariates, read_phenotypes
from gwas_glmm.gwas import fit_null
from gwas_glmm.gwas.nullfit import fit_null_models
from gwas_glmm.gwas.scanner import Scan, ScanConfig
from gwas_glmm.gwas.store import load_nulls, save_nulls
from gwas_glmm.kinship import eigen as eigen_module


@pytest.fixture(scope="module")
def cohort(small_cohort, tmp_path_factory):
    """The small cohort's GRM (decomposed) and a phenotype file where ``full`` is observed in
    every sample, ``gap`` misses 30 of them and ``a``, ``b``, ``c`` share another 20 missing."""
    fs = PlinkFileset(small_cohort.bfile)
    kin, _ = compute_grm(fs, config=GrmConfig(missing="mean-impute"))
    kin = kin.decompose()
    rng = np.random.default_rng(0)
    qt = read_phenotypes(f"{small_cohort.prefix}.pheno", ["qt"])
    base = np.where(np.isnan(qt.values[:, 0]), 0.0, qt.values[:, 0])
    n = len(base)
    table = pd.DataFrame({"#FID": qt.fid, "IID": qt.iid, "full": base + rng.normal(0, 0.3, n)})
    table["gap"] = np.where(np.arange(n) % 10 == 3, np.nan, base + rng.normal(0, 0.5, n))
    shared = np.arange(n) % 15 == 7
    for name in ("a", "b", "c"):
        table[name] = np.where(shared, np.nan, base + rng.normal(0, 1.0, n))
    path = tmp_path_factory.mktemp("pheno") / "multi.pheno"
    table.to_csv(path, sep="\t", index=False, na_rep="NA")
    covar = read_covariates(f"{small_cohort.prefix}.covar", ["age", "sex"])
    return fs, kin, path, covar


def test_each_phenotype_keeps_its_own_samples(cohort, monkeypatch):
    fs, kin, path, covar = cohort
    calls = []
    original = kin.decompose.__func__

    def counting(self, **kw):
        calls.append(self.n if self.eigen is None else 0)
        return original(self, **kw)

    monkeypatch.setattr(type(kin), "decompose", counting)
    nulls, statuses, fid, iid, _ = fit_null_models(kin, read_phenotypes(path), covar, "gaussian")
    n = len(iid)
    assert nulls["full"].index is None and nulls["full"].n == n  # not cut down by the other traits' gaps
    assert nulls["full"].eig_vectors is not None  # the stored eigendecomposition, reused
    assert nulls["gap"].n == n - 30 and nulls["gap"].eig_vectors is not None
    assert {nulls[k].n for k in "abc"} == {n - 20} and nulls["a"].eig_vectors is nulls["b"].eig_vectors
    assert sorted(c for c in calls if c) == [n - 30, n - 20]  # once per distinct subset, none for "full"
    # the same as fitting the phenotype alone on its samples
    alone, _, _, iid_gap, _ = fit_null_models(kin, read_phenotypes(path, ["gap"]), covar, "gaussian")
    assert list(iid_gap) == list(nulls["gap"].iid)
    np.testing.assert_allclose(nulls["gap"].py, alone["gap"].py, rtol=1e-10, atol=1e-12)
    assert statuses["gap"]["n"] == n - 30


def test_saved_and_scanned_per_phenotype(cohort, tmp_path):
    fs, kin, path, covar = cohort
    nulls, _, fid, iid, names = fit_null_models(kin, read_phenotypes(path), covar, "gaussian")
    save_nulls(tmp_path / "n.h5", nulls, fid=fid, iid=iid, covar_names=names)
    loaded, fid2, iid2, _ = load_nulls(tmp_path / "n.h5")
    for name, m in nulls.items():
        got = loaded[name]
        np.testing.assert_array_equal(got.py, m.py)
        assert (got.index is None) == (m.index is None)
        if m.index is not None:
            np.testing.assert_array_equal(got.index, m.index)
        if m.eig_vectors is not None:
            np.testing.assert_array_equal(got.eig_vectors, m.eig_vectors)
    assert loaded["a"].eig_vectors is loaded["c"].eig_vectors  # each set read once
    assert loaded["gap"].eig_vectors.shape[0] == nulls["gap"].n
    both = Scan(fs, loaded, fid2, iid2, np.arange(fs.n_variants), str(tmp_path / "both"),
                ScanConfig(mode="exact", block_size=256)).run(show_progress=False)
    alone, _, fid1, iid1, _ = fit_null_models(kin, read_phenotypes(path, ["gap"]), covar, "gaussian")
    one = Scan(fs, alone, fid1, iid1, np.arange(fs.n_variants), str(tmp_path / "one"),
               ScanConfig(mode="exact", block_size=256)).run(show_progress=False)
    a, b = pd.read_csv(both["gap"], sep="\t"), pd.read_csv(one["gap"], sep="\t")
    common = a.ID.isin(b.ID).to_numpy()
    a = a[common].reset_index(drop=True)
    b = b.set_index("ID").loc[a.ID].reset_index()
    for column in ("N", "A1FREQ", "MAC"):  # counted on the phenotype's own samples
        np.testing.assert_array_equal(a[column], b[column])
    # the same test; mean imputation over all the file's samples moves the statistic a little
    np.testing.assert_allclose(a.LOG10P, b.LOG10P, rtol=0.02, atol=0.01)


def test_fast_mode_of_a_gaussian_null_by_cholesky(cohort, tmp_path):
    """Fast against exact for a Gaussian null fitted by Cholesky AI-REML (the Python API's
    ``eigen=False``, and several known covariances), whose fast mode uses the kinship's top
    eigenpairs (tests/test_scan.py does the same on a larger cohort, with them from LAPACK and from
    subspace iteration)."""
    fs, kin, path, covar = cohort
    nulls, _, fid, iid, _ = fit_null_models(kin, read_phenotypes(path, ["full"]), covar, "gaussian")
    m = nulls["full"]
    dense = fit_null(m.y, m.x, kin, "gaussian", iid=m.iid, eigen=False)
    assert dense.chol is not None and dense.fast_vectors is not None
    out = {}
    for mode in ("exact", "fast"):
        res = Scan(fs, {"full": dense}, fid, iid, np.arange(fs.n_variants), str(tmp_path / mode),
                   ScanConfig(mode=mode, n_calibration=60)).run(show_progress=False)
        out[mode] = pd.read_csv(res["full"], sep="\t")
    diff = np.abs(out["fast"].LOG10P - out["exact"].LOG10P)
    assert np.nanquantile(diff, 0.99) < 0.05


def test_top_eigenpairs_by_subspace_iteration(monkeypatch):
    """The randomized path (used above 4,000 samples) against LAPACK on a GRM-like spectrum: the
    separated directions (structure) exact, the rest Ritz values, which never exceed the true
    eigenvalues (Cauchy interlacing); the fast scan calibrates what they miss."""
    rng = np.random.default_rng(2)
    g = rng.standard_normal((800, 3000))
    g[:, :60] += rng.standard_normal((800, 3)) @ rng.standard_normal((3, 60)) * 2  # three large directions
    k = g @ g.T / g.shape[1]
    exact_values, exact_vectors = eigen_module.top_eigen(k, 20)
    monkeypatch.setattr(eigen_module, "EXACT_TOP_MAX_N", 0)
    values, vectors = eigen_module.top_eigen(k, 20)
    np.testing.assert_allclose(values[-3:], exact_values[-3:], rtol=1e-8)
    assert np.all(values <= exact_values * (1 + 1e-10))
    overlap = np.abs(np.sum(vectors[:, -3:] * exact_vectors[:, -3:], axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-8)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(20), atol=1e-10)


@pytest.mark.filterwarnings("ignore::gwas_glmm.exceptions.ConvergenceWarning")  # half the samples: tau may hit 0
def test_a_covariate_constant_within_one_phenotype_is_dropped_for_it(cohort, tmp_path):
    fs, kin, path, covar = cohort
    pheno = pd.read_csv(path, sep="\t")
    sex = dict(zip(covar.iid, covar.values[:, list(covar.names).index("sex")]))
    pheno["gap"] = np.where([sex.get(i) == 1 for i in pheno.IID], pheno["gap"], np.nan)
    pheno.to_csv(tmp_path / "one_sex.pheno", sep="\t", index=False, na_rep="NA")
    nulls, _, _, _, _ = fit_null_models(kin, read_phenotypes(tmp_path / "one_sex.pheno", ["full", "gap"]), covar,
                                        "gaussian")
    assert nulls["gap"].x.shape[1] == nulls["full"].x.shape[1] - 1
