"""LOCO: each chromosome's variants are tested against the null model with that chromosome
left out of the GRM.  The exact LOCO scan equals a dense computation with the explicit
Sigma_-c^-1 (to 1e-8), the stored parts round-trip through the null file, and the CLI uses them
by default and not with --no-loco."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from gwas_glmm import PlinkFileset, load_kinship, read_covariates, read_phenotypes
from gwas_glmm.cli import main
from gwas_glmm.gwas import score_test
from gwas_glmm.gwas.nullfit import fit_null_models
from gwas_glmm.gwas.scanner import Scan, ScanConfig, sample_positions
from gwas_glmm.gwas.store import load_nulls, save_nulls


@pytest.fixture(scope="module")
def grm(small_cohort, tmp_path_factory):
    path = tmp_path_factory.mktemp("loco") / "g.grm.h5"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(path), "--eigen", "--missing",
                 "mean-impute"]) == 0
    return path


def _dense_score(null, k_loco, g):
    sigma = null.tau * k_loco.astype(float) + np.diag(null.phi / null.w)
    si = np.linalg.inv(sigma)
    x = null.x
    p = si - si @ x @ np.linalg.inv(x.T @ si @ x) @ x.T @ si
    return g.T @ p @ null.working_response, np.einsum("ij,ik,kj->j", g, p, g)


@pytest.mark.parametrize(("trait", "family"), [("qt", "gaussian"), ("bt1", "binomial"), ("count", "poisson")])
def test_exact_loco_scan_equals_dense_oracle(small_cohort, grm, trait, family, tmp_path):
    prefix = small_cohort.prefix
    kin = load_kinship(grm)
    nulls, _, fid, iid, _ = fit_null_models(kin, read_phenotypes(f"{prefix}.pheno", [trait]),
                                            read_covariates(f"{prefix}.covar", ["age", "sex"]), family, loco_from=grm)
    null = nulls[trait]
    assert null.tau > 0 and len(null.loco) == 22
    path = save_nulls(tmp_path / "n.h5", nulls, fid=fid, iid=iid, grm=str(grm))
    loaded = load_nulls(path)[0][trait]
    np.testing.assert_array_equal(loaded.loco["7"].py, null.loco["7"].py)
    fs = PlinkFileset(small_cohort.bfile)
    scan = Scan(fs, {trait: loaded}, fid, iid, np.arange(fs.n_variants), str(tmp_path / "s"),
                ScanConfig(mode="exact"), kinship_path=grm)
    rows = sample_positions(fs, fid, iid)
    for chrom in ("3", "7"):
        idx = np.flatnonzero(fs.variants.chrom.astype(str) == chrom)
        g = fs.read(rows, idx).astype(float)
        g = np.where(np.isnan(g), np.nanmean(g, axis=0), g)
        g = g[:, g.std(axis=0) > 0]
        k_loco = load_kinship(grm, loco=chrom, with_eigen=False).align(fid, iid).matrix
        u, v = _dense_score(loaded, k_loco, g)
        res = score_test(scan.nulls_for(chrom)[0][trait], g, mode="exact", spa=False)
        np.testing.assert_allclose(res.score, u, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(res.var, v, rtol=1e-8)
        full = score_test(null, g, mode="exact", spa=False)
        assert np.max(np.abs(full.score - u)) > 1e-6  # LOCO changes the test: the oracle can tell them apart


def test_cli_uses_loco_by_default_and_not_with_no_loco(small_cohort, grm, tmp_path):
    prefix = str(small_cohort.prefix)
    base = ["null", "--grm", str(grm), "--pheno", f"{prefix}.pheno", "--pheno-name", "qt", "--covar",
            f"{prefix}.covar", "--covar-name", "age", "sex"]
    assert main(base + ["--out", str(tmp_path / "loco")]) == 0
    assert main(base + ["--out", str(tmp_path / "full"), "--no-loco"]) == 0
    with h5py.File(tmp_path / "loco.null.h5") as h5:
        assert sorted(h5["pheno/qt/loco"].keys(), key=int) == [str(c) for c in range(1, 23)]
    with h5py.File(tmp_path / "full.null.h5") as h5:
        assert "loco" not in h5["pheno/qt"]
    results = {}
    for name, null, extra in (("a", "loco", []), ("b", "loco", ["--no-loco"]), ("c", "full", []),
                              ("d", "loco", ["--mode", "fast"])):
        assert main(["scan", "--bfile", prefix, "--null", str(tmp_path / f"{null}.null.h5"), "--out",
                     str(tmp_path / name), *extra]) == 0
        results[name] = pd.read_csv(tmp_path / f"{name}.qt.tsv.gz", sep="\t")
    assert "LOCO" in (tmp_path / "a.log").read_text()
    ratios = [p.ratio for p in load_nulls(tmp_path / "loco.null.h5")[0]["qt"].loco.values()]
    assert all(r is not None and 0.2 < r < 5 for r in ratios)  # calibrated by null on the GRM's .bed
    pd.testing.assert_frame_equal(results["b"], results["c"])
    assert not np.allclose(results["a"].CHISQ, results["c"].CHISQ)
    delta = np.abs(results["a"].LOG10P - results["d"].LOG10P)  # 300 samples: loose; test_scan checks 0.05 at 1,500
    assert np.quantile(delta, 0.9) < 0.1, delta.max()


def test_poisson_null_with_exposure_offset(small_cohort, grm, tmp_path):
    """--exposure COL: log(COL) enters as an offset (taken out of the covariates); the PQL fit
    equals one with the offset given directly, and the status carries tau's SE."""
    from gwas_glmm.gwas.null import fit_null

    prefix = str(small_cohort.prefix)
    assert main(["null", "--grm", str(grm), "--pheno", f"{prefix}.pheno", "--pheno-name", "count", "--covar",
                 f"{prefix}.covar", "--covar-name", "age", "sex", "--exposure", "followup", "--family", "poisson",
                 "--out", str(tmp_path / "c")]) == 0
    nulls, fid, iid, _ = load_nulls(tmp_path / "c.null.h5")
    null = nulls["count"]
    assert null.x.shape[1] == 3 and null.offset is not None
    covar = read_covariates(f"{prefix}.covar", ["age", "sex", "followup"])
    rows = {(f, i): k for k, (f, i) in enumerate(zip(covar.fid, covar.iid))}
    pick = [rows[(f, i)] for f, i in zip(fid, iid)]
    np.testing.assert_allclose(null.offset, np.log(covar.values[pick, 2]))
    direct = fit_null(null.y, null.x, load_kinship(grm), "poisson", iid=iid, offset=np.log(covar.values[pick, 2]))
    np.testing.assert_allclose(direct.py, null.py, rtol=1e-10)
    assert np.isfinite(direct.status["tau_se"]) and direct.status["tau_se"] > 0
    assert main(["null", "--grm", str(grm), "--pheno", f"{prefix}.pheno", "--pheno-name", "count", "--covar",
                 f"{prefix}.covar", "--exposure", "nope", "--family", "poisson", "--out", str(tmp_path / "bad")]) == 1


def test_a_loco_covariance_that_is_not_positive_definite_is_one_clear_error():
    """The LOCO factorisation (dpotrf through ctypes) turns a failed factorisation into an
    InputError saying what to do, also when a scan's build thread meets it."""
    from types import SimpleNamespace

    from gwas_glmm.exceptions import InputError
    from gwas_glmm.gwas.loco import loco_sigma_chol
    from gwas_glmm.gwas.scanner import _ChromosomeNulls

    null = SimpleNamespace(tau=1.0, phi=0.1, w=np.ones(3))
    bad = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # eigenvalue -1: Sigma_c has -0.9
    with pytest.raises(InputError, match="not positive definite.*--no-loco"):
        loco_sigma_chol(null, bad)
    with _ChromosomeNulls(lambda chrom: loco_sigma_chol(null, bad), ["1", "1"], threads=2, single=False) as nulls_of:
        with pytest.raises(InputError, match="not positive definite"):
            nulls_of("1")


def test_loco_finds_its_parts_whatever_each_file_calls_the_chromosomes(small_cohort, grm, tmp_path, capsys):
    """A GRM whose LOCO parts are named chr1..chr22 (an older file, or another tool's spelling) and
    a scan .bim naming them 01..22: the scan still tests each chromosome against its own LOCO null
    (same results as with matching names), and a chromosome without a LOCO part is one line, exit 1,
    not a silent full-GRM test."""
    import shutil

    prefix = str(small_cohort.prefix)
    renamed = tmp_path / "chr.grm.h5"
    shutil.copy(grm, renamed)
    with h5py.File(renamed, "r+") as h5:
        for name in list(h5["loco"]):
            h5["loco"].move(name, f"chr{name}")
    for ext in (".bed", ".fam"):
        shutil.copy(f"{small_cohort.bfile}{ext}", tmp_path / f"zero{ext}")
    bim = pd.read_csv(f"{small_cohort.bfile}.bim", sep="\t", header=None, dtype=str)
    bim[0] = bim[0].str.zfill(2)
    bim.to_csv(tmp_path / "zero.bim", sep="\t", header=False, index=False)
    base = ["--pheno", f"{prefix}.pheno", "--pheno-name", "qt", "--covar", f"{prefix}.covar", "--covar-name", "age"]
    assert main(["null", "--grm", str(grm), *base, "--out", str(tmp_path / "a")]) == 0
    assert main(["null", "--grm", str(renamed), *base, "--out", str(tmp_path / "b")]) == 0
    assert sorted(load_nulls(tmp_path / "b.null.h5")[0]["qt"].loco, key=int) == [str(c) for c in range(1, 23)]
    assert main(["scan", "--bfile", prefix, "--null", str(tmp_path / "a.null.h5"), "--out", str(tmp_path / "a")]) == 0
    assert main(["scan", "--bfile", str(tmp_path / "zero"), "--null", str(tmp_path / "b.null.h5"),
                 "--out", str(tmp_path / "b")]) == 0
    a, b = (pd.read_csv(tmp_path / f"{x}.qt.tsv.gz", sep="\t") for x in "ab")
    np.testing.assert_allclose(a.CHISQ, b.CHISQ, rtol=1e-6)
    with h5py.File(tmp_path / "b.null.h5", "r+") as h5:
        del h5["pheno/qt/loco/7"]
    capsys.readouterr()
    assert main(["scan", "--bfile", prefix, "--null", str(tmp_path / "b.null.h5"), "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "chromosome 7" in err[-1] and "--no-loco" in err[-1] and "Traceback" not in "\n".join(err)
    assert not list(tmp_path.glob("c.*.tsv.gz"))
    assert main(["scan", "--bfile", prefix, "--null", str(tmp_path / "b.null.h5"), "--out", str(tmp_path / "c"),
                 "--chr", "1-6,8", "9"]) == 0
