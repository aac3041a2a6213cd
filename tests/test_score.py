"""Score tests against a brute-force dense oracle, the saddlepoint approximation against exact
enumeration, and the fast mode against the exact mode."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from scipy import special, stats

from gwas_glmm import Kinship
from gwas_glmm.gwas import fit_null, score_test, variance_ratio
from gwas_glmm.gwas.score import spa_log10p
from gwas_glmm.mixed import get_family


def _cohort(n=150, seed=0):
    rng = np.random.default_rng(seed)
    fam = np.repeat(np.arange(n // 5), 5)
    k = 0.5 * (fam[:, None] == fam[None, :]) + 0.5 * np.eye(n)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    g = np.linalg.cholesky(k) @ rng.normal(size=n)
    geno = rng.binomial(2, rng.uniform(0.05, 0.5, 40), size=(n, 40)).astype(float)
    return rng, k, x, g, geno


def _response(rng, family, eta):
    if family == "gaussian":
        return eta + rng.normal(size=eta.size)
    if family == "binomial":
        return (rng.random(eta.size) < special.expit(eta)).astype(float)
    if family == "negbin":
        mu = np.exp(eta)
        return rng.negative_binomial(3.0, 3.0 / (3.0 + mu)).astype(float)
    return rng.poisson(np.exp(eta)).astype(float)


@pytest.mark.parametrize("family", ["gaussian", "binomial", "poisson", "negbin"])
def test_exact_mode_equals_dense_oracle(family):
    rng, k, x, g, geno = _cohort(n=250, seed=1)
    eta = x @ [-0.5 if family != "gaussian" else 1.0, 0.3, 0.2] + 1.5 * g
    y = _response(rng, family, eta)
    ids = [f"s{i}" for i in range(len(y))]
    null = fit_null(y, x, Kinship.from_array(k, iid=ids), family)
    res = score_test(null, geno, spa=False)
    if family == "negbin":
        assert 0.2 < null.dispersion < 6  # theta = 3 plus the genetic overdispersion a GLM sees
    u, v = _dense_oracle(null, family, y, x, null.tau * k, geno)
    np.testing.assert_allclose(res.score, u, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.var, v, rtol=1e-8)
    np.testing.assert_allclose(res.log10p, -np.log10(stats.chi2.sf(u**2 / v, 1)), rtol=1e-8)
    assert null.status["converged"]


def _dense_oracle(null, family, y, x, genetic, geno):
    """(U, V) from the null's fitted means with an explicit inverse of Sigma = phi W^-1 + genetic."""
    fam = get_family(family)
    if family == "negbin":
        fam.theta = null.dispersion
    mu = null.mu
    eta_hat = fam.link.link(mu)
    w, d = fam.irls_weights(eta_hat, mu, np.ones(len(y)))
    if family == "gaussian":
        w = np.ones(len(y))
    y_work = eta_hat + (y - mu) / d
    sinv = np.linalg.inv(np.diag(null.phi / w) + genetic)
    p = sinv - sinv @ x @ np.linalg.inv(x.T @ sinv @ x) @ x.T @ sinv
    return geno.T @ p @ y_work, np.einsum("ij,ik,kj->j", geno, p, geno)


@pytest.mark.parametrize("family", ["gaussian", "binomial"])
def test_several_known_covariances_equal_a_dense_oracle(family):
    """A GRM and a spatial covariance in one null model (Python API): the exact scores equal the
    dense computation with Sigma = phi W^-1 + tau_1 K + tau_2 S."""
    rng, k, x, g, geno = _cohort(n=250, seed=6)
    n = len(k)
    pos = rng.uniform(0, 10, (n, 2))
    space = np.exp(-np.linalg.norm(pos[:, None] - pos[None], axis=2) / 2)
    eta = x @ [-0.3 if family != "gaussian" else 1.0, 0.3, 0.2] + 1.2 * g + np.linalg.cholesky(space) @ rng.normal(
        size=n)
    y = _response(rng, family, eta)
    ids = [f"s{i}" for i in range(n)]
    null = fit_null(y, x, {"grm": Kinship.from_array(k, iid=ids), "space": Kinship.from_array(space, iid=ids)},
                    family)
    assert null.status["components"] == ["grm", "space"] and null.tau == null.status["tau_all"][0]
    tau_g, tau_s = null.status["tau_all"]
    assert tau_s > 0.1  # the spatial effect is found, not absorbed
    res = score_test(null, geno, spa=False)
    u, v = _dense_oracle(null, family, y, x, tau_g * k + tau_s * space, geno)
    np.testing.assert_allclose(res.score, u, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.var, v, rtol=1e-8)
    if family == "gaussian":  # the fast mode uses the top eigenpairs of tau_1 K + tau_2 S
        ratio, _ = variance_ratio(null, geno[:, :20])
        fast = score_test(null, geno, mode="fast", ratio=ratio, spa=False)
        assert np.max(np.abs(fast.log10p - res.log10p)) < 0.05


def test_log10p_is_exact_where_p_underflows():
    from gwas_glmm.gwas.score import _normal_log10p

    # p = 2 Phi(-40) ~ 2 phi(40) / 40 (1 - 1/40^2) = 10^-349.13, below the smallest double
    log_pdf = -800.0 - 0.5 * np.log(2 * np.pi)
    expected = -(np.log(2 / 40 * (1 - 1 / 1600 + 3 / 40**4)) + log_pdf) / np.log(10)
    assert _normal_log10p(np.array([40.0]))[0] == pytest.approx(expected, abs=1e-6)
    assert _normal_log10p(np.array([1.959963985]))[0] == pytest.approx(-np.log10(0.05), rel=1e-8)


def test_spa_against_exact_enumeration():
    """S = g^T (y - mu) for 18 Bernoulli draws: the exact tail by enumerating all 2^18 outcomes
    (continuous g, so that S is not on a coarse lattice, which no continuous approximation fits)."""
    rng = np.random.default_rng(3)
    n = 18
    mu = rng.uniform(0.02, 0.2, n)  # rare outcome: the normal approximation is poor
    g = rng.normal(size=n)
    outcomes = np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)
    probs = np.prod(np.where(outcomes == 1, mu, 1 - mu), axis=1)
    s = (outcomes - mu) @ g
    sd = np.sqrt(np.sum(g * g * mu * (1 - mu)))
    for q in np.quantile(np.abs(s), [0.9, 0.99]):
        q = float(q) * 1.0001
        exact = probs[np.abs(s) >= q - 1e-12].sum()
        spa = 10 ** -spa_log10p(g, mu, q / sd)
        normal = 2 * stats.norm.sf(q / sd)
        assert abs(np.log(spa / exact)) < abs(np.log(normal / exact))  # SPA beats the normal approximation
        assert spa == pytest.approx(exact, rel=0.35)


def test_conditional_spa_against_exact_enumeration():
    """Given the number of cases (intercept-only covariates), S = sum of g~ over the cases is the
    sum over a uniformly random subset of that size: the exact tail by enumerating all 10,626
    subsets of 4 cases among 24.  The double saddlepoint approximation (conditional on X^T y) is
    close to it; the marginal SPA, which lets the number of cases vary, has heavier tails."""
    rng = np.random.default_rng(5)
    n, cases = 24, 4
    g = rng.normal(size=n)
    g -= g.mean()
    mu = np.full(n, cases / n)
    x = np.ones((n, 1))
    s = np.array([g[list(c)].sum() for c in itertools.combinations(range(n), cases)])
    sd = np.sqrt(np.sum(g * g * mu * (1 - mu)))
    for q in np.quantile(np.abs(s), [0.95, 0.995]):
        q = float(q) * 1.0001
        exact = np.mean(np.abs(s) >= q - 1e-12)
        conditional = 10 ** -spa_log10p(g, mu, q / sd, x)
        marginal = 10 ** -spa_log10p(g, mu, q / sd)
        assert abs(np.log(conditional / exact)) < abs(np.log(marginal / exact))
        assert conditional == pytest.approx(exact, rel=0.1)


def test_conditional_spa_is_zero_beyond_the_conditional_support():
    """A rare variant with 4 cases in 40: 3 carriers (g~ about -1 after centring on the short side)
    and 37 non-carriers.  Given the number of cases, S on that side is at most what moving every
    case onto non-carriers gives (enumerated below); a q beyond it has conditional probability 0,
    while the marginal SPA, which lets the number of cases grow, still gives it mass.  The two-sided
    p-value is then the main tail alone."""
    n, cases = 40, 4
    raw = np.zeros(n)
    raw[:3] = 1.0
    g = raw - raw.mean()
    mu = np.full(n, cases / n)
    x = np.ones((n, 1))
    s = np.array([-g[list(c)].sum() for c in itertools.combinations(range(n), cases)])  # the short side, -g
    from gwas_glmm.gwas.score import SpaContext, _double_spa_log_tail, _spa_log_tail

    ctx = SpaContext.of(mu, x)
    assert ctx.largest_score(-g) == pytest.approx(s.max(), abs=1e-12)  # g sums to 0: S = the cases' sum
    sd = np.sqrt(np.sum(g * g * mu * (1 - mu)))
    q = 1.05 * s.max()
    assert _double_spa_log_tail(-g, ctx, q, sd * sd) == -745.0
    assert _spa_log_tail(-g, mu, q, sd * sd) > -745.0  # the marginal tail, which the old fallback added
    log_main = _double_spa_log_tail(g, ctx, q, sd * sd)
    assert spa_log10p(g, mu, q / sd, x) == pytest.approx(-log_main / np.log(10), rel=1e-12)


def test_conditional_spa_solves_its_saddlepoint_equations():
    """The double SPA against the same formula with the saddlepoint found independently (scipy's
    hybrid root finder on grad K(a, b) = (g^T mu + q, X^T mu)), for common variants with covariates
    at 2 < |z| < 5, where the root is well inside the support: the SPA must converge there rather
    than fall back to the marginal approximation (an objective-based line search stalled at
    rounding level and did so for 3 of these 80 tails)."""
    from scipy import optimize, special

    from gwas_glmm.gwas.score import SpaContext, _double_spa_log_tail

    rng = np.random.default_rng(1)
    n = 2000
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    mu = special.expit(-2.2 + 0.3 * x[:, 1] + 0.2 * x[:, 2])
    w = mu * (1 - mu)
    ctx = SpaContext.of(mu, x)
    for _ in range(40):
        g = rng.binomial(2, 0.3, n).astype(float)
        g -= x @ np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * g))
        var0 = float(np.sum(g * g * w))
        q = (2.0 + 3.0 * rng.random()) * np.sqrt(var0)
        for tail in (g, -g):
            z_mat = np.column_stack([tail, x])
            target = np.concatenate([[tail @ mu + q], x.T @ mu])

            def equations(th, z_mat=z_mat, target=target):
                return z_mat.T @ special.expit(ctx.eta0 + z_mat @ th) - target

            def jacobian(th, z_mat=z_mat):
                p = special.expit(ctx.eta0 + z_mat @ th)
                return z_mat.T @ ((p * (1 - p))[:, None] * z_mat)

            th = optimize.root(equations, np.zeros(4), jac=jacobian, method="hybr", tol=1e-12).x
            assert np.max(np.abs(equations(th))) < 1e-9 * np.abs(target).max()
            a_all = ctx.eta0 + z_mat @ th
            k = np.sum(np.logaddexp(0, a_all) - ctx.k_at_0)
            wq = np.sqrt(2 * (th @ target - k))
            u = th[0] * np.exp(0.5 * (np.linalg.slogdet(jacobian(th))[1] - ctx.denom))
            expected = stats.norm.logsf(wq + np.log(u / wq) / wq)
            # the search ends on a step below 1e-8 relative that it predicts rather than takes, so
            # its log det K'' is from one such step before the root: about 1e-8 off
            assert _double_spa_log_tail(tail, ctx, q, var0) == pytest.approx(expected, rel=1e-8)


def test_fast_mode_tracks_exact_mode():
    rng, k, x, g, geno = _cohort(n=300, seed=4)
    y = _response(rng, "binomial", -1 + 1.5 * g)
    ids = [f"s{i}" for i in range(len(y))]
    null = fit_null(y, x, Kinship.from_array(k, iid=ids), "binomial")
    ratio, cv = variance_ratio(null, geno[:, :20])
    exact = score_test(null, geno, spa=False)
    fast = score_test(null, geno, mode="fast", ratio=ratio, spa=False)
    assert np.max(np.abs(fast.log10p - exact.log10p)) < 0.1
    assert cv < 0.1


def test_gaussian_reml_by_cholesky_equals_the_eigenbasis_fit():
    """Without a stored decomposition (a phenotype on a sample subset) the Gaussian null is fitted
    by AI-REML with a Cholesky factor per iteration: same REML optimum, same exact scores."""
    rng, k, x, g, geno = _cohort(n=250, seed=5)
    y = x @ [1.0, 0.3, 0.2] + 1.2 * g + rng.normal(size=250)
    kin = Kinship.from_array(k, iid=[f"s{i}" for i in range(250)])
    eig = fit_null(y, x, kin, "gaussian")
    dense = fit_null(y, x, kin, "gaussian", eigen=False)
    assert eig.eig_vectors is not None and dense.chol is not None
    assert dense.status["method"].startswith("REML (AI-REML")
    np.testing.assert_allclose([dense.tau, dense.phi], [eig.tau, eig.phi], rtol=1e-4)
    a, b = score_test(eig, geno), score_test(dense, geno)
    np.testing.assert_allclose(b.log10p, a.log10p, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::gwas_glmm.exceptions.ConvergenceWarning")
def test_exact_variance_at_the_boundary_is_the_glm_variance():
    """tau = 0 (a trait without relatedness signal): Sigma = W^-1 is diagonal and the exact mode
    takes the O(n p) route; it equals the Cholesky computation and the dense oracle."""
    from gwas_glmm.gwas.score import exact_variance

    rng, k, x, g, geno = _cohort(n=250, seed=0)
    y = (rng.random(250) < 0.3).astype(float)
    null = fit_null(y, x, Kinship.from_array(k, iid=[f"s{i}" for i in range(250)]), "binomial")
    assert null.tau == 0 and null.status["boundary"]
    fast_route = exact_variance(null, geno)
    wg = null.whiten(geno)
    gsx = geno.T @ null.sigma_inv_x
    by_cholesky = np.einsum("ij,ij->j", wg, wg) - np.einsum("ij,jk,ik->i", gsx, null.xsx_inv, gsx)
    np.testing.assert_allclose(fast_route, by_cholesky, rtol=1e-10)
    np.testing.assert_allclose(fast_route, _dense_oracle(null, "binomial", y, x, 0 * k, geno)[1], rtol=1e-8)


def test_fast_rank_prediction_is_honest_and_the_fewest_directions_meeting_it_are_chosen(monkeypatch):
    """choose_fast_rank predicts, from 100 calibration variants, the 99th percentile of |delta log10
    P| between the fast and the exact test; on 1,900 other null variants the realised percentile
    agrees within a factor of two for every candidate rank, and the rank chosen is the fewest
    whose prediction meets the tolerance."""
    from gwas_glmm.gwas import score as score_module

    rng = np.random.default_rng(11)
    n, m = 600, 2000
    pop = np.repeat([0.0, 1.0], n // 2)  # two populations: structure the ratio alone cannot absorb
    freq = np.clip(rng.uniform(0.1, 0.5, m)[None, :] + 0.15 * (pop[:, None] - 0.5) * rng.normal(size=m), 0.05, 0.95)
    geno = rng.binomial(2, freq).astype(float)
    z = (geno - geno.mean(0)) / geno.std(0)
    k = z @ z.T / m
    fam = np.repeat(np.arange(n // 4), 4)
    k = 0.7 * k + 0.3 * (0.5 * (fam[:, None] == fam[None, :]) + 0.5 * np.eye(n))
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = np.linalg.cholesky(k + 1e-8 * np.eye(n)) @ rng.normal(size=n) + rng.normal(size=n)
    null = fit_null(y, x, Kinship.from_array(k, iid=[f"s{i}" for i in range(n)]), "gaussian")
    assert null.eig_vectors is not None and null.tau > 0
    fresh = rng.binomial(2, freq[:, :m]).astype(float)  # new null variants, same frequencies
    cal, test = fresh[:, :100], fresh[:, 100:]
    exact_cal = score_module.exact_variance(null, cal)
    exact = score_test(null, test, spa=False)
    predictions = {}
    for k_dir in score_module.FAST_RANKS:
        monkeypatch.setattr(score_module, "FAST_RANKS", (k_dir,))
        _, predictions[k_dir] = score_module.choose_fast_rank(null, cal, exact_cal)
        trial = dataclasses.replace(null, fast_rank=k_dir)
        ratio, _ = variance_ratio(trial, cal, exact=exact_cal)
        fast = score_test(trial, test, mode="fast", ratio=ratio, spa=False)
        actual = float(np.quantile(np.abs(fast.log10p - exact.log10p), 0.99))
        print(f"k = {k_dir}: predicted q99 {predictions[k_dir]:.4f}, realised {actual:.4f}")
        assert predictions[k_dir] / 2 - 0.002 < actual < 2 * predictions[k_dir] + 0.002, (k_dir, predictions, actual)
    monkeypatch.undo()
    assert predictions[20] > predictions[200]  # the structure is there to find
    middle = sorted(predictions.values())[1]
    monkeypatch.setattr(score_module, "FAST_TOLERANCE", middle)
    chosen, predicted = score_module.choose_fast_rank(null, cal, exact_cal)
    assert predicted <= middle
    assert all(predictions[k_dir] > middle for k_dir in score_module.FAST_RANKS if k_dir < chosen)


@pytest.mark.parametrize("order", ["C", "F"])
def test_solve_lower_matches_scipy(order):
    """The GIL-releasing triangular solve of the exact scan (BLAS dtrsm through ctypes) against
    scipy's, for factors in either memory order and float32 or strided right-hand sides; the
    factor's upper triangle is never read and the right-hand side is left as it was."""
    from scipy import linalg

    from gwas_glmm._blas import solve_lower

    rng = np.random.default_rng(3)
    a = rng.normal(size=(60, 60))
    chol = np.linalg.cholesky(a @ a.T + 60 * np.eye(60))
    garbage = np.array(chol, order=order)
    garbage[np.triu_indices(60, 1)] = np.nan
    b = rng.integers(0, 3, size=(60, 90)).astype(np.float32)[:, ::3]
    before = b.copy()
    got = solve_lower(garbage, b)
    np.testing.assert_allclose(got, linalg.solve_triangular(chol, b.astype(float), lower=True), rtol=1e-12, atol=1e-12)
    assert got.flags.f_contiguous and np.array_equal(b, before)
    with pytest.raises(ValueError):
        solve_lower(chol, b[:50])


@pytest.mark.parametrize("order", ["C", "F"])
def test_cholesky_lower_matches_numpy(order):
    """The GIL-releasing factorisation of the LOCO covariances (LAPACK dpotrf through ctypes), in
    the matrix's own memory: numpy's factor, upper triangle zero, column-major; a matrix that is
    not positive definite raises numpy's LinAlgError."""
    from gwas_glmm._blas import cholesky_lower

    rng = np.random.default_rng(4)
    a = rng.normal(size=(700, 700))  # more than one 512-column block of the upper triangle to clear
    sym = a @ a.T + 700 * np.eye(700)
    got = cholesky_lower(np.array(sym, order=order))
    np.testing.assert_allclose(got, np.linalg.cholesky(sym), rtol=1e-10, atol=1e-10)
    assert got.flags.f_contiguous and not np.triu(got, 1).any()
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_lower(-np.eye(3))
