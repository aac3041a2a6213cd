"""Predictions, empirical-Bayes modes and their SEs, and marginal standardization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import gwas_glmm as gg
from gwas_glmm.datasets import load as load_dataset
from gwas_glmm.mixed.marginal import predict, standardize


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    n, groups = 1500, 40
    g = rng.integers(0, groups, n)
    treat = rng.integers(0, 2, n)
    age = rng.normal(size=n)
    b = rng.normal(0, 1.0, groups)
    p = special.expit(-1 + 0.8 * treat + 0.3 * age + b[g])
    df = pd.DataFrame({"y": (rng.random(n) < p).astype(int), "treat": treat, "age": age, "g": g})
    return df, gg.glmm("y ~ treat + age + (1 | g)", df, family="binomial")


def test_standardized_means_equal_direct_integration(binary):
    df, fit = binary
    eff = standardize(fit, "treat", 1, 0)
    sd = fit.components[0].sd[0]
    b0, b1, b2 = fit.beta

    for t, m in ((1, eff.mean_treated), (0, eff.mean_control)):
        eta = b0 + b1 * t + b2 * df.age.to_numpy()
        rows, _ = integrate.quad_vec(lambda z, eta=eta: special.expit(eta + sd * z) * stats.norm.pdf(z), -12, 12,
                                     epsabs=1e-13)
        assert m == pytest.approx(rows.mean(), abs=1e-9)
    assert eff.risk_difference == pytest.approx(eff.mean_treated - eff.mean_control)
    assert eff.rd_ci[0] < eff.risk_difference < eff.rd_ci[1]
    assert eff.rr_ci[0] < eff.risk_ratio < eff.rr_ci[1]
    # the population-average effect is attenuated relative to the conditional one
    conditional_rd = np.mean(special.expit(b0 + b1 + b2 * df.age) - special.expit(b0 + b2 * df.age))
    assert abs(eff.risk_difference) < abs(conditional_rd)


def test_identity_link_marginal_effect_is_the_coefficient():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(20), 10)
    x = rng.integers(0, 2, g.size)
    df = pd.DataFrame({"y": 1 + 2 * x + rng.normal(size=20)[g] + rng.normal(size=g.size), "x": x, "g": g})
    fit = gg.glmm("y ~ x + (1 | g)", df)
    eff = standardize(fit, "x", 1, 0)
    assert eff.risk_difference == pytest.approx(fit.beta[1], rel=1e-9)
    assert eff.se_rd == pytest.approx(fit.se[1], rel=1e-5)


def test_predictions_and_conditional_modes(binary):
    df, fit = binary
    eta = predict(fit, type="link")
    modes = fit.random_effects["g"][1][:, 0]
    levels = fit.random_effects["g"][0]
    lookup = {str(v): k for k, v in enumerate(levels)}
    idx = np.array([lookup[str(v)] for v in df.g])
    np.testing.assert_allclose(eta, fit.extra["x"] @ fit.beta + modes[idx], atol=1e-12)
    np.testing.assert_allclose(predict(fit, df.head(20)), special.expit(eta[:20]), atol=1e-12)
    unseen = df.head(3).assign(g=-99)
    np.testing.assert_allclose(predict(fit, unseen, type="link"), (fit.extra["x"] @ fit.beta)[:3], atol=1e-12)
    se = fit.conditional_se["g"][:, 0]
    assert np.all(se > 0) and np.all(se < fit.components[0].sd[0])  # shrinkage: posterior SD < prior SD
    marginal = predict(fit, type="marginal")
    assert np.all((marginal > 0) & (marginal < 1))


def test_lmm_conditional_sd_equals_dense_posterior():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(8), 5)
    df = pd.DataFrame({"y": rng.normal(size=8)[g] + rng.normal(size=g.size), "g": g})
    fit = gg.glmm("y ~ 1 + (1 | g)", df)
    s2b, s2 = fit.components[0].covariance[0, 0], fit.sigma**2
    z = np.eye(8)[g]
    post_cov = np.linalg.inv(z.T @ z / s2 + np.eye(8) / s2b)
    np.testing.assert_allclose(fit.conditional_se["g"][:, 0], np.sqrt(np.diag(post_cov)), rtol=1e-6)
    post_mean = post_cov @ z.T @ (df.y.to_numpy() - fit.beta[0]) / s2
    np.testing.assert_allclose(fit.random_effects["g"][1][:, 0], post_mean, rtol=1e-6)


def test_condvar_of_correlated_slopes_equals_dense_posterior():
    """lme4's ``ranef(fit, condVar = TRUE)`` for ``(Days | Subject)``: each level's 2 x 2
    conditional covariance, against the dense posterior (Z' Z / sigma^2 + G^-1)^-1 at the fitted
    parameters (conditional on beta, as lme4's)."""
    d = load_dataset("sleepstudy")
    fit = gg.glmm("Reaction ~ Days + (Days | Subject)", d)
    levels, _ = fit.random_effects["Subject"]
    row = {str(v): k for k, v in enumerate(levels)}
    codes = np.array([row[str(s)] for s in d.Subject])
    n_lev = len(levels)
    z = np.zeros((len(d), 2 * n_lev))
    z[np.arange(len(d)), 2 * codes] = 1.0
    z[np.arange(len(d)), 2 * codes + 1] = d.Days.to_numpy()
    g = np.kron(np.eye(n_lev), fit.components[0].covariance)
    post = np.linalg.inv(z.T @ z / fit.sigma**2 + np.linalg.inv(g))
    blocks = np.array([post[2 * k:2 * k + 2, 2 * k:2 * k + 2] for k in range(n_lev)])
    np.testing.assert_allclose(fit.conditional_cov["Subject"], blocks, rtol=1e-6)
    np.testing.assert_allclose(fit.conditional_se["Subject"], np.sqrt(blocks[:, [0, 1], [0, 1]]), rtol=1e-6)


def test_known_covariance_lmm_has_conditional_sds():
    """The eigenbasis path of a Gaussian model with one known covariance gives the conditional
    SDs too (it once left them empty): against s_g K - s_g K V^-1 s_g K, V = s_g K + sigma^2 I."""
    from gwas_glmm import Kinship
    from gwas_glmm.mixed import KnownCovTerm, fit_glmm

    rng = np.random.default_rng(8)
    n = 60
    z = rng.standard_normal((n, 30))
    k = z @ z.T / 30
    ids = [f"s{i}" for i in range(n)]
    kin = Kinship.from_array(k, iid=ids).decompose()
    y = np.linalg.cholesky(k + 1e-9 * np.eye(n)) @ rng.standard_normal(n) + rng.standard_normal(n)
    fit = fit_glmm(y, np.ones((n, 1)), [KnownCovTerm.from_kinship("grm", ids, kin)])
    assert fit.extra.get("eigen_path")
    s_g, s2 = fit.components[0].covariance[0, 0], fit.sigma**2
    v = s_g * k + s2 * np.eye(n)
    post = s_g * k - s_g * k @ np.linalg.solve(v, s_g * k)
    np.testing.assert_allclose(fit.conditional_se["grm"][:, 0], np.sqrt(np.diag(post)), rtol=1e-6)
