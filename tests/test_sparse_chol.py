"""Groups of relatives too large for dense blocks: the sparse Cholesky factor (kinship.sparse_chol)
against explicit dense matrices, and a null model and exact scan on a kinship whose families are
chained into one group of 600, against the dense path given the same matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from gwas_glmm.exceptions import InputError
from gwas_glmm.gwas import score_test
from gwas_glmm.gwas.null import fit_null
from gwas_glmm.gwas.store import load_nulls, null_header, save_nulls
from gwas_glmm.kinship import Kinship
from gwas_glmm.kinship.components import BlockKinship
from gwas_glmm.kinship.sparse_chol import SparseCholesky


def _chained_families(n_fam: int, rng) -> scipy.sparse.csr_matrix:
    """Nuclear families of 4 (two parents, two children: kinship 0.5 parent-child and sibs) with a
    child of each family a first cousin (0.125) of the next family's first child: one group of
    4 n_fam samples, whose graph is a chain of small cliques (the factor stays sparse)."""
    n = 4 * n_fam
    k = scipy.sparse.lil_matrix((n, n))
    for f in range(n_fam):
        p1, p2, c1, c2 = 4 * f + np.arange(4)
        for a, b, v in ((p1, c1, 0.5), (p1, c2, 0.5), (p2, c1, 0.5), (p2, c2, 0.5), (c1, c2, 0.5)):
            k[a, b] = k[b, a] = v + rng.normal(0, 0.02)
        if f + 1 < n_fam:
            k[c2, 4 * (f + 1) + 2] = k[4 * (f + 1) + 2, c2] = 0.125
    k.setdiag(1.0 + rng.normal(0, 0.02, n))
    return scipy.sparse.csr_matrix(k)


def _dense_selected(factor: SparseCholesky, z: np.ndarray) -> np.ndarray:
    cols = np.repeat(np.arange(factor.size), np.diff(factor.lp))
    out = np.zeros((factor.size, factor.size))
    out[factor.li, cols] = z
    return out


def test_factor_solves_and_selected_inverse_equal_dense():
    rng = np.random.default_rng(3)
    k = _chained_families(60, rng)
    s = k.shape[0]
    extra = rng.integers(0, s, (2, 30))  # a few long-range links: fill-in beyond the chain
    k = k + scipy.sparse.csr_matrix((np.full(30, 0.06), (extra[0], extra[1])), shape=(s, s))
    k = scipy.sparse.csr_matrix(k + k.T) / 2
    analysis = SparseCholesky.analyse(k, np.arange(s))
    assert analysis.nnz < 0.1 * s * (s + 1) / 2
    for cap in (10, analysis.nnz - 1):  # over the cap: a count (here K's lower triangle, then L's), nothing allocated
        assert SparseCholesky.analyse(k, np.arange(s), max_nnz=cap) in ((k.nnz + s) // 2, analysis.nnz)
    assert SparseCholesky.analyse(k, np.arange(s), max_nnz=analysis.nnz - 1) == analysis.nnz
    rcm = SparseCholesky.analyse(k, np.arange(s), minimum_degree=False)
    np.testing.assert_allclose(rcm.factor(np.ones(s), 0.5).logdet, analysis.factor(np.ones(s), 0.5).logdet, rtol=1e-12)
    d, tau = rng.uniform(0.5, 2.0, s), 0.8
    f = analysis.factor(d, tau)
    sigma = np.diag(d) + tau * k.toarray()
    inv = np.linalg.inv(sigma)
    assert f.logdet == pytest.approx(np.linalg.slogdet(sigma)[1], rel=1e-12)
    m = rng.standard_normal((s, 3))
    out = np.zeros_like(m)
    f.solve_into(m, out)
    np.testing.assert_allclose(out, inv @ m, atol=1e-10)
    white = np.zeros_like(m)
    f.whiten_into(m, white)
    np.testing.assert_allclose(np.sum(white**2, axis=0), np.einsum("ij,ij->j", m, inv @ m), rtol=1e-10)
    sumsq = np.zeros(3)
    f.sumsq_whitened(m.astype(np.float32), sumsq)
    m32 = m.astype(np.float32).astype(float)
    np.testing.assert_allclose(sumsq, np.einsum("ij,ij->j", m32, inv @ m32), rtol=1e-10)
    z = f.selected_inverse()
    p = f.members
    lower = _dense_selected(f, z)
    on_pattern = lower != 0
    np.testing.assert_allclose(lower[on_pattern], inv[np.ix_(p, p)][on_pattern], atol=1e-12)
    np.testing.assert_allclose(f.inverse_diagonal(z), np.diag(inv)[p], rtol=1e-12)
    assert f.trace_kinship(z) == pytest.approx(np.trace(inv @ k.toarray()), rel=1e-12)
    with pytest.raises(InputError, match="not positive definite"):
        analysis.factor(np.full(s, -5.0), 0.1)


@pytest.fixture(scope="module")
def chained():
    rng = np.random.default_rng(11)
    k = _chained_families(150, rng)  # one group of 600: above SPARSE_MIN_SIZE, factor far below 1/4 full
    n = k.shape[0]
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    kin = Kinship.from_array(k, iid=ids, fid=ids, meta={"source": "chained families"})
    vals, vecs = np.linalg.eigh(k.toarray())
    u = vecs @ (np.sqrt(np.clip(vals, 0, None)) * rng.standard_normal(n))
    x = np.column_stack([np.ones(n), rng.standard_normal(n)])
    eta = 0.3 * x[:, 1] + u
    traits = {"gaussian": eta + rng.standard_normal(n),
              "binomial": (rng.random(n) < 1 / (1 + np.exp(-(eta - 0.5)))).astype(float)}
    g = rng.binomial(2, rng.uniform(0.05, 0.5, 40), (n, 40)).astype(float)
    return kin, x, traits, g, ids


@pytest.mark.parametrize("family", ["gaussian", "binomial"])
def test_one_large_group_by_sparse_cholesky_equals_the_dense_path(chained, family, tmp_path):
    kin, x, traits, g, ids = chained
    assert BlockKinship.of(kin.matrix).large and not BlockKinship.of(kin.matrix).groups  # chosen by default
    y = traits[family]
    sparse = fit_null(y, x, kin, family, sparse=True, tol=1e-8)
    dense = fit_null(y, x, kin, family, tol=1e-8)
    assert len(sparse.chol_parts) == 1 and "sparse Cholesky" in sparse.status["method"]
    assert sparse.tau > 0.1
    for key in ("tau", "phi"):
        assert getattr(sparse, key) == pytest.approx(getattr(dense, key), rel=1e-6), key
    np.testing.assert_allclose(sparse.beta, dense.beta, rtol=1e-6)
    path = tmp_path / "n.null.h5"
    save_nulls(path, {"t": sparse}, fid=ids, iid=ids)
    assert null_header(path).sparse and null_header(path).whitener_nnz >= sparse.chol_parts[0].nnz
    loaded = load_nulls(path)[0]["t"]
    res = {name: score_test(m, g, mode="exact") for name, m in (("dense", dense), ("sparse", sparse),
                                                                  ("loaded", loaded))}
    np.testing.assert_allclose(res["sparse"].log10p, res["dense"].log10p, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(res["loaded"].log10p, res["sparse"].log10p)


def test_dry_run_sizes_the_sparse_factor_the_fit_will_use(chained, tmp_path, capsys):
    """`null --dry-run` on a sparse GRM makes the fit's own choice (symbolic analysis only) and
    names the groups it will factorise sparsely."""
    from gwas_glmm.cli import main
    from gwas_glmm.kinship.store import save_kinship

    kin, x, traits, _, ids = chained
    grm = tmp_path / "chain.grm.h5"
    save_kinship(grm, kin)
    pheno = tmp_path / "t.pheno"
    pheno.write_text("FID\tIID\tqt\n" + "".join(f"{i}\t{i}\t{v:.6f}\n" for i, v in zip(ids, traits["gaussian"])))
    assert main(["null", "--grm", str(grm), "--pheno", str(pheno), "--out", str(tmp_path / "n"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "1 group(s) of 600 samples by sparse Cholesky" in err and "gaussian AI-REML" in err
    assert not (tmp_path / "n.null.h5").exists()


def test_a_group_whose_sparse_factor_does_not_fit_is_refused(chained):
    kin = chained[0]
    with pytest.raises(InputError, match=r"group of related samples has 600 samples, whose sparse Cholesky factor"
                                         r".*--max-block-memory"):
        BlockKinship.of(kin.matrix, limit_bytes=20_000, source="grm.h5")
