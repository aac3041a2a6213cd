"""Predictions, empirical-Bayes modes and their SEs, and marginal standardization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import gwas_glmm as gg
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
