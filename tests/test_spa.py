"""The double saddlepoint search's shortcuts (gwas/_spa_numba.py) against the plain search and an
independent root finder: the raw-genotype coordinates, the Taylor model on the carriers, the
corrected log det, the cumulant tensors and the sparse support bound."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from gwas_glmm.gwas import score as S
from gwas_glmm.gwas._spa_numba import OK, cumulant_tensors, double_saddlepoint


def _setting(n=3000, seed=3, intercept=-3.5):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n), rng.normal(size=n)])
    mu = special.expit(intercept + 0.4 * x[:, 1] + 0.3 * x[:, 2])
    return rng, x, mu, S.SpaContext.of(mu, x)


def _adjust(x, mu, g):
    w = mu * (1 - mu)
    return g - x @ np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * g))


def _kernel(ctx, g, q, carriers):
    g = np.ascontiguousarray(g, dtype=float)
    target = np.concatenate([[g @ ctx.mu + q], ctx.x_mu])
    return double_saddlepoint(g, ctx.x, ctx.mu, ctx.eta0, ctx.k_at_0, target, carriers, ctx.x_mu, *ctx.tensors,
                              *ctx.taylor)


def _scipy_tail(ctx, x, g, q):
    """log P(S >= q | X'y) by the same formula, the saddlepoint by scipy's hybrid root finder."""
    z_mat = np.column_stack([g, x])
    target = np.concatenate([[g @ ctx.mu + q], x.T @ ctx.mu])

    def equations(th):
        return z_mat.T @ special.expit(ctx.eta0 + z_mat @ th) - target

    def jacobian(th):
        p = special.expit(ctx.eta0 + z_mat @ th)
        return z_mat.T @ ((p * (1 - p))[:, None] * z_mat)

    th = optimize.root(equations, np.zeros(z_mat.shape[1]), jac=jacobian, method="hybr", tol=1e-13).x
    assert np.max(np.abs(equations(th))) < 1e-8 * np.abs(target).max()
    k = np.sum(np.logaddexp(0, ctx.eta0 + z_mat @ th) - ctx.k_at_0)
    wq = np.sqrt(2 * (th @ target - k))
    u = th[0] * np.exp(0.5 * (np.linalg.slogdet(jacobian(th))[1] - ctx.denom))
    return stats.norm.logsf(wq + np.log(u / wq) / wq)


def test_cumulant_tensors_against_einsum():
    rng, x, mu, _ = _setting(n=400)
    w = mu * (1 - mu)
    t2, t3, t4 = cumulant_tensors(np.asfortranarray(x), mu)
    np.testing.assert_allclose(t2, np.einsum("i,ij,ik->jk", w, x, x), rtol=1e-12)
    np.testing.assert_allclose(t3, np.einsum("i,ij,ik,il->jkl", w * (1 - 2 * mu), x, x, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t4, np.einsum("i,ij,ik,il,im->jklm", w * (1 - 6 * w), x, x, x, x), rtol=1e-12,
                               atol=1e-12)


def test_the_saddlepoint_does_not_depend_on_the_genotypes_adjustment():
    """Given X'y, g'y and (g - X gamma)'y differ by a constant: the plain search on the raw and
    on the adjusted genotypes finds the same a, phi and log det K''."""
    rng, x, mu, ctx = _setting()
    none = np.zeros(0, dtype=np.int64)
    for _ in range(10):
        raw = rng.binomial(2, 0.2, len(mu)).astype(float)
        adjusted = _adjust(x, mu, raw)
        q = (2.0 + 3.0 * rng.random()) * np.sqrt(np.sum(adjusted**2 * mu * (1 - mu)))
        one, other = _kernel(ctx, raw, q, none), _kernel(ctx, adjusted, q, none)
        assert one[0] == other[0] == OK
        np.testing.assert_allclose(one[1:4], other[1:4], rtol=1e-9)


@pytest.mark.parametrize("maf", [0.003, 0.02, 0.08])
def test_taylor_model_on_the_carriers_matches_an_independent_root(maf):
    """Rare variants' tails through the Taylor model (taken: the kernel reports the accepted
    model's residual as 0) against scipy's root of the exact equations, to 1e-6 relative, over
    2 < z < 8; the raw genotypes' search without the model agrees as closely."""
    rng, x, mu, ctx = _setting()
    taken = 0
    for _ in range(8):
        raw = rng.binomial(2, maf, len(mu)).astype(float)
        adjusted = _adjust(x, mu, raw)
        var0 = float(np.sum(adjusted**2 * mu * (1 - mu)))
        q = (2.0 + 6.0 * rng.random()) * np.sqrt(var0)
        if q >= ctx.largest_score(raw, np.flatnonzero(raw)):
            continue
        expected = _scipy_tail(ctx, x, raw, q)
        status, *_, residual = _kernel(ctx, raw, q, np.flatnonzero(raw))
        assert status == OK
        taken += residual == 0.0
        assert S._double_spa_log_tail(raw, ctx, q, var0) == pytest.approx(expected, rel=1e-6)
        plain = _kernel(ctx, raw, q, np.zeros(0, dtype=np.int64))
        model = _kernel(ctx, raw, q, np.flatnonzero(raw))
        assert model[2] == pytest.approx(plain[2], rel=1e-9)  # phi
        assert model[3] == pytest.approx(plain[3], abs=1e-5)  # log det
    assert taken >= 6


def test_sparse_support_bound_equals_the_dense_one():
    rng, x, mu, ctx = _setting()
    for maf in (0.001, 0.01, 0.05):
        raw = rng.binomial(2, maf, len(mu)).astype(float)
        for g in (raw, -raw, raw - 1.0):
            assert ctx.largest_score(g, np.flatnonzero(g)) == pytest.approx(ctx.largest_score(g), rel=1e-12)


def test_spa_p_values_unchanged_by_the_shortcuts():
    """spa_log10p with the raw genotypes (the scan's call: Taylor model where they are sparse)
    against the plain search on the adjusted ones, rare and common variants, both tails inside
    the support (2 < z < 4 at MAF 0.05 and 0.3)."""
    rng, x, mu, ctx = _setting(intercept=-2.5)
    for maf in (0.05, 0.3):
        for _ in range(5):
            raw = rng.binomial(2, maf, len(mu)).astype(float)
            adjusted = _adjust(x, mu, raw)
            z = 2.0 + 2.0 * rng.random()
            fast = S.spa_log10p(adjusted, mu, z, x, ctx, raw=raw)
            assert fast == pytest.approx(S.spa_log10p(adjusted, mu, z, x, ctx), rel=1e-6)


def test_major_allele_coding_gives_the_same_p_value(monkeypatch):
    """A variant counted by its major allele (most samples carry it) is tested as 2 - raw, whose
    carriers are few enough for the Taylor model: the same p-value as the minor allele's count and
    as the plain search on the adjusted genotypes; without a constant column in X (where the two
    codings differ by more than a constant) it is not recoded."""
    rng, x, mu, ctx = _setting(intercept=-2.5)
    calls = []
    real = S._double_spa_log_tail
    monkeypatch.setattr(S, "_double_spa_log_tail", lambda h, *a: calls.append(np.count_nonzero(h)) or real(h, *a))
    for maf in (0.05, 0.1, 0.15):
        raw = rng.binomial(2, maf, len(mu)).astype(float)
        major = 2.0 - raw
        z = 2.0 + 2.0 * rng.random()
        calls.clear()
        by_major = S.spa_log10p(_adjust(x, mu, major), mu, z, x, ctx, raw=major)
        assert max(calls) == np.count_nonzero(raw) < 0.3 * len(mu)  # recoded: the Taylor model's carriers
        by_minor = S.spa_log10p(_adjust(x, mu, raw), mu, z, x, ctx, raw=raw)
        plain = S.spa_log10p(_adjust(x, mu, raw), mu, z, x, ctx)
        assert by_major == pytest.approx(by_minor, rel=1e-9)
        assert by_major == pytest.approx(plain, rel=1e-6)
    no_constant = x[:, 1:]
    ctx2 = S.SpaContext.of(mu, no_constant)
    calls.clear()
    S.spa_log10p(_adjust(no_constant, mu, major), mu, 2.5, no_constant, ctx2, raw=major)
    assert max(calls) == np.count_nonzero(major)
