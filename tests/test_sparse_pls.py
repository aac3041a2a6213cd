"""The sparse factor of M = A^T W A + I for several grouping terms (mixed/_sparse_pls.py and its
kernels) against dense linear algebra with explicit inverses, its PIRLS against the Python
PIRLS on the dense factor, its analytic gradients against central differences, and whole fits
through it against the same fits forced onto the dense factor."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from gwas_glmm.mixed import GroupTerm, _sparse_pls, fit_glmm, get_family, olre
from gwas_glmm.mixed import _sparse_numba as kern
from gwas_glmm.mixed.conditional import conditional_cov
from gwas_glmm.mixed.laplace import pirls
from gwas_glmm.mixed.lmm import BlockLmm, lmm_deviance
from gwas_glmm.mixed.terms import TermSet


def _layout(seed=0, n=300):
    rng = np.random.default_rng(seed)
    g1, g2, g3 = rng.integers(0, 40, n), rng.integers(0, 7, n), rng.integers(0, 5, n)
    t = rng.normal(size=n)
    slope = np.column_stack([np.ones(n), t])
    a = GroupTerm("a", g1, np.arange(40), slope, ["(Intercept)", "t"])
    b = GroupTerm("b", g2, np.arange(7), np.ones((n, 1)), ["(Intercept)"])
    c = GroupTerm("c", g3, np.arange(5), slope, ["(Intercept)", "t"])
    x = np.column_stack([np.ones(n), t, rng.normal(size=n)])
    return rng, n, (a, b, c), x


LAYOUTS = [(1, 0, 2), (0, 1), (2, 1), (0,), (1, 2)]  # first term (the largest) anywhere in the model


def _dense_m(terms, theta, w):
    a = terms.design(theta)
    return (a.T @ sp.diags(w) @ a).toarray() + np.eye(terms.q)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_factor_matches_dense(layout):
    rng, n, all_terms, _ = _layout()
    terms = TermSet([all_terms[k] for k in layout], n)
    theta = rng.uniform(0.3, 1.5, terms.n_theta)
    theta[1] = -0.4  # a correlation entry (or a second scale) away from 0
    w = rng.uniform(0.2, 2.0, n)
    pattern = _sparse_pls.Pattern(terms)
    factor = pattern.factor(pattern.values(theta), w)
    m = _dense_m(terms, theta, w)
    g = np.linalg.inv(m)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(m)[1], abs=1e-9)
    b = rng.normal(size=(terms.q, 3))
    np.testing.assert_allclose(factor.solve_lt(factor.solve_l(b)), g @ b, atol=1e-10)
    np.testing.assert_allclose(factor.solve_lt(factor.solve_l(b[:, 0])), g @ b[:, 0], atol=1e-10)
    # the sparse inverse subset: each level's diagonal block of M^-1
    start = 0
    for t, block in zip(terms.terms, factor.block_covariances()):
        idx = start + np.arange(t.q).reshape(len(t.levels), t.p)
        np.testing.assert_allclose(block, g[idx[:, :, None], idx[:, None, :]], atol=1e-12)
        start += t.q
    # (G a_i) at each observation's own slots, against the explicit product
    g11, g1r, grr = factor.inverse_subset
    vals = pattern.values(theta)
    ga = kern.g_times_rows(vals, pattern.cols, pattern.pos, pattern.p1, g11, g1r, grr)
    a_int = np.zeros((n, terms.q))
    np.add.at(a_int, (np.repeat(np.arange(n), pattern.r), pattern.cols.ravel()), vals.ravel())
    full = a_int @ g[np.ix_(pattern.perm, pattern.perm)]
    np.testing.assert_allclose(ga, np.take_along_axis(full, pattern.cols, axis=1), atol=1e-12)
    # and the conditional covariances of a fit use the same blocks
    cov = conditional_cov(terms, theta, factor, 2.0)
    for key, t, s in zip(terms.keys, terms.terms, terms.theta_slices):
        lam = t.factor(theta[s])
        idx = sum(tt.q for tt in terms.terms[:terms.terms.index(t)]) + np.arange(t.q).reshape(len(t.levels), t.p)
        np.testing.assert_allclose(cov[key], 2.0 * lam @ g[idx[:, :, None], idx[:, None, :]] @ lam.T, atol=1e-12)


def test_factor_refuses_indefinite_weights():
    rng, n, all_terms, _ = _layout()
    terms = TermSet([all_terms[1], all_terms[0]], n)
    pattern = _sparse_pls.Pattern(terms)
    with pytest.raises(np.linalg.LinAlgError):
        pattern.factor(pattern.values(terms.start()), np.full(n, -5.0))


FAMILIES = [(0, "poisson"), (1, "binomial"), (2, "negbin")]


def _response(rng, name, n):
    if name == "poisson":
        return rng.poisson(2, n).astype(float), np.ones(n)
    if name == "binomial":
        return rng.binomial(5, 0.4, n) / 5.0, np.full(n, 5.0)
    return rng.negative_binomial(3, 0.5, n).astype(float), np.ones(n)


@pytest.mark.parametrize("code,name", FAMILIES)
def test_laplace_deviance_and_gradient(code, name):
    rng, n, all_terms, x = _layout(seed=code + 1)
    terms = TermSet([all_terms[1], all_terms[0]], n)
    pattern = _sparse_pls.Pattern(terms)
    y, wts = _response(rng, name, n)
    fam = get_family(name)
    const = float(np.sum(fam.loglik_constant(y, wts)))
    nt, p = terms.n_theta, x.shape[1]

    def dev(params, full=False):
        theta, beta, nb = params[:nt], params[nt:nt + p], float(np.exp(params[-1]))
        vals = pattern.values(theta)
        pen, u, logdet, ok, fine = kern.pirls(code, x @ beta, vals, *pattern.structure(), y, wts, nb,
                                              np.zeros(terms.q), 1e-14, 100)
        assert ok and fine
        return (pen - 2 * const + logdet, u, vals, nb) if full else pen - 2 * const + logdet

    params = np.array([0.6, 0.9, 0.3, 0.7, 0.5, 0.2, -0.1, np.log(2.5)])
    value, u, vals, nb = dev(params, full=True)
    fam.theta = nb
    theta = params[:nt]
    ref = pirls(terms, theta, terms.design(theta), x @ params[nt:nt + p], y, wts, fam, np.zeros(terms.q),
                constant=const)
    assert value == pytest.approx(ref[0], abs=1e-8)
    np.testing.assert_allclose(pattern.to_model(u), ref[1], atol=1e-6)
    grad = kern.laplace_gradient(code, x @ params[nt:nt + p], vals, *pattern.structure(), y, wts, nb, u,
                                 pattern.xr, pattern.theta_slot, pattern.theta_xcol, x)
    h = 1e-5
    fd = np.array([(dev(params + h * e) - dev(params - h * e)) / (2 * h) for e in np.eye(len(params))])
    k = len(params) if name == "negbin" else len(params) - 1
    np.testing.assert_allclose(grad[:k], fd[:k], atol=2e-5 * max(1.0, np.abs(fd).max()))
    assert np.abs(grad[:k]).max() > 1.0  # away from the optimum: the check has something to check


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("layout", [(1, 0), (0,), (1, 2, 0)])
def test_lmm_deviance_and_gradient(reml, layout):
    rng, n, all_terms, x = _layout(seed=5)
    terms = TermSet([all_terms[k] for k in layout], n)
    pattern = _sparse_pls.Pattern(terms)
    y = x @ [1.0, 2.0, 0.5] + rng.normal(size=40)[all_terms[0].codes] + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    theta = rng.uniform(0.3, 1.2, terms.n_theta)
    value, grad = pattern.lmm_deviance(theta, x, y, w, reml)
    assert value == pytest.approx(lmm_deviance(theta, terms, x, y, w, reml)[0], abs=1e-9)
    h = 1e-6
    fd = np.array([(pattern.lmm_deviance(theta + h * e, x, y, w, reml)[0]
                    - pattern.lmm_deviance(theta - h * e, x, y, w, reml)[0]) / (2 * h) for e in np.eye(len(theta))])
    np.testing.assert_allclose(grad, fd, atol=1e-5 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("which, n_fixed", [(0, 3), (1, 3), (2, 0)])
def test_block_lmm_equals_kernel(reml, which, n_fixed):
    """One grouping term, small: the numpy deviance and gradient (lmm.BlockLmm) against the
    kernel's, the PLS solve's and central differences; a level without observations; no fixed
    effects."""
    rng, n, all_terms, x = _layout(seed=8)
    term = all_terms[which]
    keep = term.codes != 3  # level 3 unobserved
    term = GroupTerm(term.name, term.codes[keep], term.levels, term.x[keep], term.coef_names)
    n = int(keep.sum())
    x = x[keep][:, :n_fixed]
    terms = TermSet([term], n)
    y = x.sum(axis=1) + rng.normal(size=len(term.levels))[term.codes] + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    block = BlockLmm(term, x, y, w)
    pattern = _sparse_pls.Pattern(terms)
    for _ in range(3):
        theta = rng.uniform(0.3, 1.2, terms.n_theta)
        if terms.n_theta > 1:
            theta[1] = -0.5
        value, grad = block(theta, reml)
        kernel_value, kernel_grad = pattern.lmm_deviance(theta, x, y, w, reml)
        assert value == pytest.approx(kernel_value, abs=1e-9)
        assert value == pytest.approx(lmm_deviance(theta, terms, x, y, w, reml)[0], abs=1e-9)
        np.testing.assert_allclose(grad, kernel_grad, atol=1e-9 * max(1.0, np.abs(grad).max()))
        h = 1e-6
        fd = np.array([(block(theta + h * e, reml)[0] - block(theta - h * e, reml)[0]) / (2 * h)
                       for e in np.eye(len(theta))])
        np.testing.assert_allclose(grad, fd, atol=1e-5 * max(1.0, np.abs(fd).max()))
        assert np.abs(grad).max() > 0.1  # away from the optimum


def test_small_lmm_path_equals_kernel_path(monkeypatch):
    """The same fit through the numpy path and, with its size limit at 0, through the kernel."""
    rng, n, all_terms, x = _layout(seed=9)
    g = all_terms[0].codes
    y = x @ [1.0, 2.0, 0.5] + rng.normal(size=40)[g] * 0.8 + rng.normal(size=40)[g] * 0.5 * x[:, 1] + rng.normal(size=n)
    for method in ("REML", "ML"):
        fit = fit_glmm(y, x, [all_terms[0]], method=method)
        with monkeypatch.context() as m:
            m.setattr(BlockLmm, "MAX_SIZE", 0)
            kernel = fit_glmm(y, x, [all_terms[0]], method=method)
        assert fit.loglik == pytest.approx(kernel.loglik, abs=1e-8)
        np.testing.assert_allclose(fit.theta, kernel.theta, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(fit.beta, kernel.beta, rtol=1e-6)


def test_scalar_terms_on_one_factor_fit_as_one_block_term(monkeypatch):
    """(x || g) fitted as the one uncorrelated term it equals (numpy deviance, block factor)
    against the same model as two terms on the sparse factor: every output, in the terms' order."""
    rng, n, all_terms, x = _layout(seed=12)
    a = all_terms[0]
    terms = [GroupTerm("a", a.codes, a.levels, a.x[:, [0]], ["(Intercept)"]),
             GroupTerm("a", a.codes, a.levels, a.x[:, [1]], ["t"])]
    assert TermSet(terms, n).merged() is not None
    y = (x @ [1.0, 2.0, 0.5] + rng.normal(0, 0.8, 40)[a.codes] + rng.normal(0, 0.5, 40)[a.codes] * x[:, 1]
         + rng.normal(size=n))
    for method in ("REML", "ML"):
        fit = fit_glmm(y, x, terms, method=method)
        with monkeypatch.context() as m:
            m.setattr(TermSet, "merged", lambda self: None)
            apart = fit_glmm(y, x, terms, method=method)
        assert fit.loglik == pytest.approx(apart.loglik, abs=1e-8)
        np.testing.assert_allclose(fit.theta, apart.theta, rtol=1e-4)
        np.testing.assert_allclose(fit.beta, apart.beta, rtol=1e-6)
        np.testing.assert_allclose(fit.cov_beta, apart.cov_beta, rtol=1e-4)
        np.testing.assert_allclose(fit.u, apart.u, rtol=1e-4, atol=1e-6)
        assert list(fit.random_effects) == list(apart.random_effects) == ["a", "a.1"]
        for key in ("a", "a.1"):
            np.testing.assert_allclose(fit.random_effects[key][1], apart.random_effects[key][1], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(fit.conditional_cov[key], apart.conditional_cov[key], rtol=1e-4)
    # not merged: a slope on another factor, or a correlated term
    assert TermSet([terms[0], all_terms[1]], n).merged() is None
    assert TermSet([a], n).merged() is None


def _dense_fit(monkeypatch, *args, **kwargs):
    """The same fit with the sparse factor switched off (dense factor, derivative-free search)."""
    with monkeypatch.context() as m:
        m.setattr(_sparse_pls, "pattern_for", lambda terms: None)
        return fit_glmm(*args, **kwargs)


@pytest.mark.parametrize("family", ["poisson", "binomial", "negbin"])
def test_sparse_fit_equals_dense_fit(monkeypatch, family):
    rng = np.random.default_rng(11)
    n = 240
    g1, g2 = rng.integers(0, 30, n), rng.integers(0, 6, n)
    t = rng.normal(size=n)
    x = np.column_stack([np.ones(n), t])
    eta = 0.2 + 0.4 * t + rng.normal(0, 0.6, 30)[g1] + rng.normal(0, 0.4, 30)[g1] * t + rng.normal(0, 0.4, 6)[g2]
    mu = np.exp(eta) if family != "binomial" else 1 / (1 + np.exp(-eta))
    if family == "binomial":
        wts = rng.integers(1, 6, n).astype(float)
        y = rng.binomial(wts.astype(int), mu) / wts
    else:
        wts = np.ones(n)
        y = (rng.poisson(mu) if family == "poisson" else rng.negative_binomial(3.0, 3.0 / (3.0 + mu))).astype(float)
    terms = [GroupTerm("g1", g1, np.arange(30), x, ["(Intercept)", "t"]),
             GroupTerm("g2", g2, np.arange(6), np.ones((n, 1)), ["(Intercept)"])]
    fit = fit_glmm(y, x, terms, family=family, weights=wts)
    dense = _dense_fit(monkeypatch, y, x, terms, family=family, weights=wts)
    assert fit.loglik == pytest.approx(dense.loglik, abs=1e-5)
    assert fit.loglik >= dense.loglik - 1e-7  # the gradient search finds at least as good an optimum
    np.testing.assert_allclose(fit.beta, dense.beta, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(fit.se, dense.se, rtol=2e-3)
    for a, b in zip(fit.components, dense.components):
        np.testing.assert_allclose(a.sd, b.sd, rtol=2e-3, atol=1e-4)
    for key in fit.conditional_se:
        np.testing.assert_allclose(fit.conditional_se[key], dense.conditional_se[key], rtol=5e-3, atol=1e-4)
    assert fit.n_evaluations < dense.n_evaluations / 3


def test_sparse_lmm_equals_dense_lmm(monkeypatch):
    rng = np.random.default_rng(4)
    n = 200
    g1, g2 = rng.integers(0, 25, n), rng.integers(0, 8, n)
    t = rng.normal(size=n)
    x = np.column_stack([np.ones(n), t])
    y = (1 + 0.3 * t + rng.normal(0, 1, 25)[g1] + rng.normal(0, 0.5, 8)[g2] + rng.normal(0, 0.5, 8)[g2] * t
         + rng.normal(size=n))
    terms = [GroupTerm("g1", g1, np.arange(25), np.ones((n, 1)), ["(Intercept)"]),
             GroupTerm("g2", g2, np.arange(8), x, ["(Intercept)", "t"])]
    for method in ("REML", "ML"):
        fit = fit_glmm(y, x, terms, method=method)
        dense = _dense_fit(monkeypatch, y, x, terms, method=method)
        assert fit.loglik == pytest.approx(dense.loglik, abs=1e-6)
        np.testing.assert_allclose(fit.beta, dense.beta, rtol=1e-5)
        np.testing.assert_allclose(fit.components[0].sd, dense.components[0].sd, rtol=1e-3)


def test_olre_beside_a_grouping_term_is_sparse():
    """An observation-level effect is the largest term: eliminated first, leaving S as small as the
    grouping factor (27 columns here, never q = n + 27)."""
    rng = np.random.default_rng(2)
    n = 500
    g = rng.integers(0, 27, n)
    terms = TermSet([GroupTerm("g", g, np.arange(27), np.ones((n, 1)), ["(Intercept)"]), olre(n)], n)
    pattern = _sparse_pls.pattern_for(terms)
    assert pattern.first == 1 and pattern.qr == 27 and pattern.q == n + 27
    assert _sparse_pls.pattern_for(terms) is pattern  # analysed once per model
