"""Oracles that cannot pass by accident: dense multivariate-normal likelihoods, brute-force
Laplace approximations, explicit dense covariances, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from gwas_glmm import AlignmentError, InputError, Kinship
from gwas_glmm.mixed import GroupTerm, KnownCovTerm, fit_glmm, get_family, olre
from gwas_glmm.mixed.laplace import agq_deviance, pirls, pirls_known
from gwas_glmm.mixed.terms import TermSet


def _grouped(seed=0, n_groups=12, per=6):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per)
    t = rng.normal(size=g.size)
    x = np.column_stack([np.ones(g.size), t])
    b0, b1 = rng.normal(0, 1.0, n_groups), rng.normal(0, 0.5, n_groups)
    return rng, g, t, x, b0[g] + b1[g] * t


def _draw(rng, family, mu):
    """Responses with means ``mu`` (binomial: proportions of 1-7 trials; NB2 with theta 2.5) and
    their prior weights."""
    weights = np.ones(mu.size)
    if family == "binomial":
        weights = rng.integers(1, 8, mu.size).astype(float)
        return rng.binomial(weights.astype(int), mu) / weights, weights
    if family == "poisson":
        return rng.poisson(mu).astype(float), weights
    return rng.negative_binomial(2.5, 2.5 / (2.5 + mu)).astype(float), weights


def _kinship(n, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3 * n))
    return z @ z.T / z.shape[1]


def test_lmm_loglik_equals_dense_mvn():
    rng, g, t, x, re = _grouped()
    y = 1 + 0.5 * t + re + rng.normal(0, 0.7, g.size)
    term = GroupTerm("g", g, np.arange(12), x, ["(Intercept)", "t"])
    for method in ("ML", "REML"):
        fit = fit_glmm(y, x, [term], method=method)
        sigma = fit.components[0].covariance  # (2, 2)
        z = np.zeros((g.size, 24))
        z[np.arange(g.size), 2 * g] = 1
        z[np.arange(g.size), 2 * g + 1] = t
        v = z @ np.kron(np.eye(12), sigma) @ z.T + fit.sigma**2 * np.eye(g.size)
        ll = stats.multivariate_normal(x @ fit.beta, v).logpdf(y)
        if method == "REML":
            vinv_x = np.linalg.solve(v, x)
            ll += 0.5 * x.shape[1] * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(x.T @ vinv_x)[1]
        assert fit.loglik == pytest.approx(ll, abs=1e-8)
        # beta is the GLS estimate under V, and its covariance (X' V^-1 X)^-1
        vinv_x = np.linalg.solve(v, x)
        np.testing.assert_allclose(fit.beta, np.linalg.solve(x.T @ vinv_x, vinv_x.T @ y), rtol=1e-8)
        np.testing.assert_allclose(fit.cov_beta, np.linalg.inv(x.T @ vinv_x), rtol=1e-6)


def test_known_covariance_lmm_equals_explicit_dense_model():
    n = 60
    k = _kinship(n)
    rng = np.random.default_rng(3)
    ids = [f"s{i}" for i in range(n)]
    y = 2.0 + np.linalg.cholesky(k + 1e-9 * np.eye(n)) @ rng.normal(0, 1.2, n) + rng.normal(0, 0.8, n)
    x = np.ones((n, 1))
    kin = Kinship.from_array(k, iid=ids)
    fit = fit_glmm(y, x, [KnownCovTerm.from_kinship("id", ids, kin)], method="REML")

    def neg_reml(log_var):  # the same model written with V = s_g K + s_e I, dense
        v = np.exp(log_var[0]) * k + np.exp(log_var[1]) * np.eye(n)
        vinv_x = np.linalg.solve(v, x)
        beta = np.linalg.solve(x.T @ vinv_x, vinv_x.T @ y)
        r = y - x @ beta
        return 0.5 * (np.linalg.slogdet(v)[1] + np.linalg.slogdet(x.T @ vinv_x)[1] + r @ np.linalg.solve(v, r)
                      + (n - 1) * np.log(2 * np.pi))

    best = optimize.minimize(neg_reml, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    assert fit.loglik == pytest.approx(-best.fun, abs=1e-6)
    assert fit.components[0].covariance[0, 0] == pytest.approx(np.exp(best.x[0]), rel=1e-4)
    assert fit.sigma**2 == pytest.approx(np.exp(best.x[1]), rel=1e-4)
    shares = fit.variance_shares()
    assert sum(shares.values()) == pytest.approx(1.0)


def _brute_laplace(family, y, eta_fixed, g, sd, weights):
    """-2 log of the Laplace approximation, group by group, with scalar optimisation and a
    numerical second derivative: nothing shared with PIRLS."""
    total = 0.0
    for level in np.unique(g):
        rows = g == level

        def h(u, rows=rows):
            mu = family.clip_mu(family.link.inverse(eta_fixed[rows] + sd * u))
            return -np.sum(family.loglik(y[rows], mu, weights[rows])) + 0.5 * u * u

        u = optimize.minimize_scalar(h, bracket=(-1, 1), options={"xtol": 1e-12}).x
        e = 1e-4
        curv = (h(u + e) - 2 * h(u) + h(u - e)) / e**2
        total += 2 * h(u) + np.log(curv)
    return total


@pytest.mark.parametrize("family", ["binomial", "poisson", "negbin"])
def test_laplace_equals_brute_force(family):
    rng, g, t, x, re = _grouped(seed=5)
    fam = get_family(family)
    if family == "negbin":
        fam.theta = 2.5
    eta = -0.3 + 0.4 * t + 0.8 * re
    y, weights = _draw(rng, family, fam.link.inverse(eta))
    term = GroupTerm("g", g, np.arange(12), np.ones((g.size, 1)), ["(Intercept)"])
    terms = TermSet([term], g.size)
    theta, beta = np.array([0.9]), np.array([-0.2, 0.3])
    ours = pirls(terms, theta, terms.design(theta), x @ beta, y, weights, fam, np.zeros(terms.q))[0]
    brute = _brute_laplace(fam, y, x @ beta, g, 0.9, weights)
    assert ours == pytest.approx(brute, abs=1e-5)


@pytest.mark.parametrize("family", ["binomial", "poisson", "negbin"])
def test_fast_laplace_gradient_equals_finite_differences(family):
    """The fused kernel's analytic gradient of the Laplace deviance in (theta, beta, log NB
    theta) against central differences of the deviance itself; a non-constant slope column
    exercises the scale's chain rule, counts above 32 the NB digamma branch."""
    from gwas_glmm.mixed.laplace import FAST_CODES, pirls_fast

    rng, g, t, x, re = _grouped(seed=11, n_groups=30, per=8)
    fam = get_family(family)
    eta = (2.5 if family == "negbin" else -0.3) + 0.4 * t + 0.8 * re
    y, weights = _draw(rng, family, fam.link.inverse(eta))
    if family == "negbin":
        assert y.max() > 40
    term = GroupTerm("g", g, np.arange(30), (1.0 + 0.3 * t)[:, None], ["(Intercept)"])
    code = FAST_CODES[(fam.name, fam.link.name)]
    offset = rng.normal(0, 0.2, g.size)

    def deviance(params, grad=False):
        fam.theta = float(np.exp(params[3]))
        out = pirls_fast(code, term, params[:1], offset + x @ params[1:3], y, weights, fam, np.zeros(30), 0.0,
                         tol=1e-15, max_iter=200, x=x if grad else None)
        return out[3] if grad else out[0]

    params = np.array([0.7, -0.1, 0.35, np.log(2.0)])
    h = 1e-5
    numeric = [(deviance(params + h * e) - deviance(params - h * e)) / (2 * h) for e in np.eye(4)]
    analytic = deviance(params, grad=True)
    if family != "negbin":
        assert analytic[3] == 0.0
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("n_nodes", [3, 25])
@pytest.mark.parametrize("family", ["binomial", "poisson", "negbin"])
def test_agq_kernel_value_and_gradient(family, n_nodes):
    """The AGQ kernel's deviance equals the NumPy quadrature (:func:`agq_deviance`) and its
    gradient (through the nodes, the centre and the scale) equals central differences of it;
    few nodes make the centre's and scale's terms matter."""
    from gwas_glmm.mixed.laplace import FAST_CODES, agq_fast

    rng, g, t, x, re = _grouped(seed=3, n_groups=25, per=6)
    fam = get_family(family)
    y, weights = _draw(rng, family, fam.link.inverse(0.3 + 0.4 * t + 0.8 * re))
    term = GroupTerm("g", g, np.arange(25), np.ones((g.size, 1)), ["(Intercept)"])
    terms = TermSet([term], g.size)
    code = FAST_CODES[(fam.name, fam.link.name)]
    constant = float(np.sum(fam.loglik_constant(y, weights)))

    def deviance(params):
        fam.theta = float(np.exp(params[3]))
        return agq_fast(code, term, params[:1], x @ params[1:3], y, weights, fam, np.zeros(25), constant, n_nodes, x,
                        tol=1e-15, max_iter=200)

    params = np.array([0.9, 0.2, 0.3, np.log(2.0)])
    value, u, grad = deviance(params)
    theta = params[:1]
    fam.theta = 2.0
    _, u_ref, _, _, factor, _ = pirls(terms, theta, terms.design(theta), x @ params[1:3], y, weights, fam,
                                      np.zeros(25), constant=constant)
    assert value == pytest.approx(agq_deviance(term, theta, x @ params[1:3], y, weights, fam, u_ref, factor,
                                               n_nodes), abs=1e-8)
    h = 1e-5
    numeric = [(deviance(params + h * e)[0] - deviance(params - h * e)[0]) / (2 * h) for e in np.eye(4)]
    k = 4 if family == "negbin" else 3
    assert grad[:k] == pytest.approx(numeric[:k], rel=1e-5, abs=1e-5)
    assert np.abs(grad[:k]).max() > 1.0


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_adaptive_quadrature_equals_numerical_integration(family):
    """AGQ with 30 nodes against scipy's adaptive integration of each group's likelihood; the
    Laplace approximation (1 node) differs from both, by O(1/group size)."""
    rng = np.random.default_rng(9)
    g = np.repeat(np.arange(6), 8)
    b = rng.normal(0, 0.8, 6)
    fam = get_family(family)
    eta0 = np.full(g.size, 0.2)
    mu = fam.link.inverse(eta0 + b[g])
    y = rng.poisson(mu).astype(float) if family == "poisson" else (rng.random(g.size) < mu).astype(float)
    weights = np.ones(g.size)
    term = GroupTerm("g", g, np.arange(6), np.ones((g.size, 1)), ["(Intercept)"])
    terms = TermSet([term], g.size)
    theta = np.array([0.8])
    lap, u, _, _, factor, _ = pirls(terms, theta, terms.design(theta), eta0, y, weights, fam, np.zeros(6))
    agq = agq_deviance(term, theta, eta0, y, weights, fam, u, factor, 30)
    exact = 0.0
    for level in range(6):
        rows = g == level

        def f(v, rows=rows):
            m = fam.link.inverse(0.2 + 0.8 * v)
            return np.exp(np.sum(fam.loglik(y[rows], np.full(rows.sum(), m), weights[rows]))) * stats.norm.pdf(v)

        val, _ = integrate.quad(f, -12, 12, limit=400, epsabs=0, epsrel=1e-13)
        exact += -2 * np.log(val)
    assert agq == pytest.approx(exact, abs=1e-7)
    assert lap == pytest.approx(agq_deviance(term, theta, eta0, y, weights, fam, u, factor, 1), abs=1e-9)
    assert abs(lap - exact) > 1e-4  # the oracle can tell Laplace from the integral


@pytest.mark.parametrize("family,link", [("binomial", "logit"), ("poisson", "log"), ("binomial", "probit")])
def test_known_covariance_laplace_gradient_equals_finite_differences(family, link):
    """The observation-space path's gradient in (theta, beta) against central differences of its
    deviance; repeated levels (two observations per ID) and a non-canonical link included."""
    from gwas_glmm.mixed.laplace import pirls_known

    n_ids = 30
    kin = Kinship.from_array(_kinship(n_ids, seed=6), iid=[str(i) for i in range(n_ids)])
    rng = np.random.default_rng(8)
    ids = [str(i) for i in np.concatenate([np.arange(n_ids), rng.integers(0, n_ids, 20)])]
    n = len(ids)
    term = KnownCovTerm.from_kinship("id", ids, kin)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    fam = get_family(family, link)
    eta = 0.2 + 0.5 * x[:, 1] + rng.normal(0, 0.7, n)
    y = rng.poisson(np.exp(eta)).astype(float) if family == "poisson" else (rng.random(n) < 1 / (1 + np.exp(-eta))) * 1.0

    def deviance(params, grad=False):
        out = pirls_known(term, params[:1], x @ params[1:], y, np.ones(n), fam, None, 0.0, tol=1e-15, max_iter=200,
                          x=x if grad else None)
        return out[4] if grad else out[0]

    params = np.array([0.8, -0.3, 0.4])
    h = 1e-5
    numeric = [(deviance(params + h * e) - deviance(params - h * e)) / (2 * h) for e in np.eye(3)]
    assert deviance(params, grad=True) == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_known_covariance_glmm_laplace_equals_dense_brute_force():
    n = 25
    k = _kinship(n, seed=4)
    kin = Kinship.from_array(k, iid=[str(i) for i in range(n)])
    rng = np.random.default_rng(2)
    y = (rng.random(n) < 0.4).astype(float)
    fam = get_family("binomial")
    term = KnownCovTerm.from_kinship("id", [str(i) for i in range(n)], kin)
    terms = TermSet([term], n)
    theta = np.array([0.8])
    ours = pirls(terms, theta, terms.design(theta), np.full(n, -0.4), y, np.ones(n), fam, np.zeros(terms.q))[0]
    # dense: b ~ N(0, 0.64 K), integrate over b by Laplace with an explicit inverse
    cov = 0.64 * k
    cinv = np.linalg.inv(cov)

    def h(b):
        return -np.sum(stats.bernoulli.logpmf(y, 1 / (1 + np.exp(-(-0.4 + b))))) + 0.5 * b @ cinv @ b

    b = optimize.minimize(h, np.zeros(n), method="BFGS", options={"gtol": 1e-12}).x
    p = 1 / (1 + np.exp(-(-0.4 + b)))
    hess = np.diag(p * (1 - p)) + cinv
    brute = 2 * h(b) + np.linalg.slogdet(hess)[1] + np.linalg.slogdet(cov)[1]
    assert ours == pytest.approx(brute, abs=1e-6)
    # the observation-space Newton path the fits use equals both
    constant = float(np.sum(fam.loglik_constant(y, np.ones(n))))
    known = pirls_known(term, theta, np.full(n, -0.4), y, np.ones(n), fam, None, constant)
    assert known[0] == pytest.approx(brute, abs=1e-6)
    np.testing.assert_allclose(terms.design(theta) @ known[2], b, atol=1e-6)


def test_known_covariance_path_with_repeated_levels_equals_general_pirls():
    """Several observations per level (Sigma = theta^2 K[codes][:, codes] is singular): the
    observation-space path still equals the general PLS one."""
    n_levels, reps = 15, 3
    k = _kinship(n_levels, seed=6)
    kin = Kinship.from_array(k, iid=[str(i) for i in range(n_levels)])
    ids = [str(i % n_levels) for i in range(n_levels * reps)]
    n = len(ids)
    rng = np.random.default_rng(3)
    y = rng.poisson(1.5, n).astype(float)
    fam = get_family("poisson")
    term = KnownCovTerm.from_kinship("id", ids, kin)
    terms = TermSet([term], n)
    theta, eta = np.array([0.6]), rng.normal(0.2, 0.3, n)
    general = pirls(terms, theta, terms.design(theta), eta, y, np.ones(n), fam, np.zeros(terms.q))
    known = pirls_known(term, theta, eta, y, np.ones(n), fam, None, float(np.sum(fam.loglik_constant(y, np.ones(n)))))
    assert known[0] == pytest.approx(general[0], abs=1e-8)
    np.testing.assert_allclose(known[2], general[1], atol=1e-6)


def test_bad_input():
    _, g, t, x, _ = _grouped()
    y = np.random.default_rng(0).normal(size=g.size)
    term = GroupTerm("g", g, np.arange(12), np.ones((g.size, 1)), ["(Intercept)"])
    with pytest.raises(InputError, match="unknown family 'gamma'; choose one of gaussian, binomial"):
        fit_glmm(y, x, [term], family="gamma")
    with pytest.raises(InputError, match="link 'probit' is not available for the poisson family"):
        fit_glmm(np.abs(y), x, [term], family="poisson", link="probit")
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="X holds NaN"):
        fit_glmm(y, bad, [term])
    with pytest.raises(InputError, match="single level"):
        GroupTerm("one", np.zeros(g.size, int), np.array(["a"]), np.ones((g.size, 1)), ["(Intercept)"])
    kin = Kinship.from_array(np.eye(3), iid=["a", "b", "c"])
    with pytest.raises(AlignmentError, match="1 values of 'id' have no row .* first 'zz'"):
        KnownCovTerm.from_kinship("id", ["a", "zz", "b"], kin)
    with pytest.raises(InputError, match="binomial response must be 0/1"):
        fit_glmm(y, x, [term], family="binomial")
    with pytest.raises(InputError, match="x1, x2 are collinear"):
        fit_glmm(y, np.column_stack([x, x[:, 1]]), [term])


def test_separation_is_one_clear_error():
    """Complete separation (t > 0 exactly the cases) and quasi-complete separation (a category
    with controls only) have no finite ML estimate: one line naming the columns, from the Laplace
    fit and from PQL alike; a strong but finite effect (fitted probabilities near 0 and 1, which
    is what makes the check run) fits."""
    from gwas_glmm.mixed.pql import fit_pql

    rng, g, t, x, _ = _grouped(seed=3, n_groups=20, per=10)
    term = GroupTerm("g", g, np.arange(20), np.ones((g.size, 1)), ["(Intercept)"])
    names = ["(Intercept)", "t"]
    with pytest.raises(InputError, match=r"perfectly predicted by the fixed effects .*t \(separation"):
        fit_glmm((t > 0) * 1.0, x, [term], family="binomial", coef_names=names)
    category = (rng.random(g.size) < 0.2) * 1.0
    y = np.where(category > 0, 0.0, (rng.random(g.size) < 0.5) * 1.0)
    xc = np.column_stack([x, category])
    with pytest.raises(InputError, match=r"fixed effects .*category"):
        fit_glmm(y, xc, [term], family="binomial", coef_names=[*names, "category"])
    with pytest.raises(InputError, match=r"fixed effects .*category"):
        fit_pql(y, xc, [("k", _kinship(g.size))], coef_names=[*names, "category"])
    strong = (rng.random(g.size) < 1 / (1 + np.exp(-12 * t))) * 1.0
    assert np.isfinite(fit_glmm(strong, x, [term], family="binomial", coef_names=names).beta).all()


def test_olre_and_boundary_warning():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(10), 5)
    y = rng.poisson(3.0, g.size).astype(float)  # no overdispersion, no group effect
    x = np.ones((g.size, 1))
    from gwas_glmm import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="singular fit"):
        fit = fit_glmm(y, x, [GroupTerm("g", g, np.arange(10), x, ["(Intercept)"]), olre(g.size)], family="poisson")
    assert fit.warnings


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("rank", [None, 20])
def test_eigenbasis_path_equals_general_path(method, rank):
    """One known covariance, one observation per level: the eigenbasis fit (used) equals the
    general PLS fit of the same model, also for a rank-deficient K."""
    from gwas_glmm.mixed.model import _fit_lmm
    from gwas_glmm.mixed.terms import TermSet

    n = 50
    rng = np.random.default_rng(7)
    if rank:
        z = rng.normal(size=(n, rank))
        k = z @ z.T / rank
    else:  # families of 5: relatedness 0.5 within, 1 on the diagonal
        fam = np.repeat(np.arange(10), 5)
        k = 0.5 * (fam[:, None] == fam[None, :]) + 0.5 * np.eye(n)
    ids = [f"s{i}" for i in range(n)]
    order = rng.permutation(n)  # observations in another order than K's rows
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    vec, val = np.linalg.svd(k)[0], np.linalg.svd(k)[1]
    y = x @ [1.0, 0.5] + 1.5 * vec @ (np.sqrt(val) * rng.normal(size=n)) + 0.7 * rng.normal(size=n)
    kin = Kinship.from_array(k, iid=ids)
    term = KnownCovTerm.from_kinship("id", np.array(ids)[order], kin)
    fast = fit_glmm(y[order], x[order], [term], method=method)
    assert fast.extra.get("eigen_path")
    slow = _fit_lmm(y[order], x[order], TermSet([term], n), np.ones(n), method == "REML", fast.coef_names)
    assert fast.loglik == pytest.approx(slow.loglik, abs=1e-6)
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=1e-5)
    np.testing.assert_allclose(fast.se, slow.se, rtol=1e-4)
    assert fast.components[0].covariance[0, 0] == pytest.approx(slow.components[0].covariance[0, 0], rel=1e-4)
    assert fast.sigma == pytest.approx(slow.sigma, rel=1e-4)
    np.testing.assert_allclose(fast.random_effects["id"][1], slow.random_effects["id"][1], atol=1e-4)
    # the spherical u reproduces the BLUP through A(theta) = theta C
    np.testing.assert_allclose(term.design(fast.theta) @ fast.u, fast.random_effects["id"][1][term.codes, 0], atol=1e-8)


def _family_kinship(n, size=5):
    fam = np.repeat(np.arange(n // size), size)
    return 0.5 * (fam[:, None] == fam[None, :]) + 0.5 * np.eye(n)


def test_pql_gaussian_equals_reml_with_two_known_covariances():
    from gwas_glmm.mixed.pql import fit_pql

    n = 120
    rng = np.random.default_rng(11)
    k1 = _family_kinship(n)
    coords = rng.uniform(size=(n, 2))
    k2 = np.exp(-np.linalg.norm(coords[:, None] - coords[None], axis=2) / 0.3)  # spatial (exponential)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = (x @ [1.0, 0.5] + np.linalg.cholesky(k1) @ rng.normal(size=n)
         + 0.8 * np.linalg.cholesky(k2 + 1e-9 * np.eye(n)) @ rng.normal(size=n) + 0.6 * rng.normal(size=n))
    ids = [str(i) for i in range(n)]
    terms = [KnownCovTerm.from_kinship(nm, ids, Kinship.from_array(k, iid=ids)) for nm, k in (("lineage", k1), ("space", k2))]
    reml = fit_glmm(y, x, terms)
    pql = fit_pql(y, x, [("lineage", k1), ("space", k2)], family="gaussian", tol=1e-10)
    np.testing.assert_allclose(pql.beta, reml.beta, rtol=1e-5)
    np.testing.assert_allclose([c.covariance[0, 0] for c in pql.components],
                               [c.covariance[0, 0] for c in reml.components], rtol=1e-4)
    assert pql.sigma == pytest.approx(reml.sigma, rel=1e-5)
    np.testing.assert_allclose(pql.se, reml.se, rtol=1e-4)


def test_pql_binomial_fixed_point():
    """At convergence: the REML score of the working model is zero, beta is its GLS estimate,
    and the BLUP g solves g = tau K (y - mu) (the penalized-likelihood mode for the logit link)."""
    from gwas_glmm.mixed.pql import _p_apply, _solve_working, fit_pql

    n = 200
    rng = np.random.default_rng(12)
    k = _family_kinship(n)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    eta = -0.5 + 0.5 * x[:, 1] + np.linalg.cholesky(k) @ rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    fit = fit_pql(y, x, [("grm", k)], family="binomial", tol=1e-10)
    wm = fit.extra["working"]
    chol, si_x, xsx_inv, beta, py = _solve_working(wm.y_work, x, wm.w, 1.0, wm.tau, [k])
    np.testing.assert_allclose(beta, fit.beta, rtol=1e-8)
    score = 0.5 * (py @ k @ py - np.trace(_p_apply(chol, si_x, xsx_inv, k)))
    assert abs(score) < 1e-5
    g = fit.random_effects["grm"][1][:, 0]
    np.testing.assert_allclose(g, wm.tau[0] * k @ (y - wm.mu), atol=1e-6)


def test_ai_reml_score_equals_finite_difference_gradient():
    """The analytic REML score of the AI-REML step, (y'PKPy - tr(PK)) / 2, against central
    differences of the dense REML log-likelihood in (residual variance, tau)."""
    from gwas_glmm.mixed.pql import _p_apply, _solve_working

    n = 60
    rng = np.random.default_rng(13)
    k = _family_kinship(n)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = x @ [1.0, 0.3] + np.linalg.cholesky(k) @ rng.normal(size=n) + rng.normal(size=n)
    w = np.ones(n)

    def reml_loglik(phi, tau):
        v = phi * np.eye(n) + tau * k
        vinv_x = np.linalg.solve(v, x)
        beta = np.linalg.solve(x.T @ vinv_x, vinv_x.T @ y)
        r = y - x @ beta
        return -0.5 * (np.linalg.slogdet(v)[1] + np.linalg.slogdet(x.T @ vinv_x)[1] + r @ np.linalg.solve(v, r))

    phi, tau = 0.8, 0.6
    chol, si_x, xsx_inv, _, py = _solve_working(y, x, w, phi, np.array([tau]), [k])
    analytic = [0.5 * (py @ c @ py - np.trace(_p_apply(chol, si_x, xsx_inv, c))) for c in (np.eye(n), k)]
    h = 1e-5
    numeric = [(reml_loglik(phi + h, tau) - reml_loglik(phi - h, tau)) / (2 * h),
               (reml_loglik(phi, tau + h) - reml_loglik(phi, tau - h)) / (2 * h)]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


def test_negbin_with_olre_warns_not_identified():
    from gwas_glmm import ConvergenceWarning

    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(10), 6)
    y = rng.negative_binomial(2, 0.4, g.size).astype(float)
    x = np.ones((g.size, 1))
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_glmm(y, x, [GroupTerm("g", g, np.arange(10), x, ["(Intercept)"]), olre(g.size)], family="negbin")
    assert any(issubclass(w.category, ConvergenceWarning) and "barely identified" in str(w.message) for w in caught)
