"""Predictions and marginal standardization.

``predict``: linear predictor or mean, with the conditional modes of the random effects
(``include_re=True``), at zero random effects, or (``type="marginal"``) averaged over the
random-effect distribution, which is what a population-average prediction is for a
non-identity link: E[mu(eta + b)], b ~ N(0, Var(z^T b)), by Gauss-Hermite quadrature.

``standardize``: the population-average outcome if everyone had ``variable = treated`` versus
everyone ``variable = control``: predictions for every row of the data under each setting,
with the random effects integrated out, averaged over the rows.  Risk difference and risk
ratio with delta-method confidence intervals over the fixed effects and variance parameters
(their joint covariance from the Laplace Hessian; fixed effects only for Gaussian fits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..exceptions import InputError
from .conditional import marginal_variance
from .results import GlmmResult

N_NODES = 32


def _mean_over_re(family, eta, var):
    nodes, weights = np.polynomial.hermite.hermgauss(N_NODES)
    sd = np.sqrt(np.maximum(var, 0.0))
    mu = family.link.inverse(eta[:, None] + np.sqrt(2.0) * sd[:, None] * nodes[None, :])
    return mu @ weights / np.sqrt(np.pi)


def _design(fit: GlmmResult, data: pd.DataFrame | None):
    frame = fit.extra.get("frame")
    if data is None:
        return fit.extra["x"], fit.extra["offset"]
    if frame is None:
        raise InputError("predictions for new data need a model fitted from a formula (gwas_glmm.glmm)")
    from .formula import _values

    x = np.asarray(frame.fixed_spec.get_model_matrix(data), dtype=float)
    offset = np.zeros(len(data))
    for expr in frame.offsets:
        offset += _values(data, expr, "an offset")
    return x, offset


def predict(fit: GlmmResult, data: pd.DataFrame | None = None, *, type: str = "response",
            include_re: bool = True) -> np.ndarray:
    """Predictions for the fitted rows (``data=None``) or new rows (formula fits).

    ``type``: "link", "response", or "marginal" (response averaged over the random effects).
    With new data, random effects of levels seen in the fit are used; unseen levels get 0.
    """
    fam = fit.extra["family_object"]
    x, offset = _design(fit, data)
    eta = x @ fit.beta + offset
    if type == "marginal":
        if data is not None:
            raise InputError("marginal predictions are computed for the fitted rows (use standardize for scenarios)")
        return _mean_over_re(fam, eta, marginal_variance(fit.extra["terms"], fit.theta, _scale(fit)))
    if include_re:
        eta = eta + _re_contribution(fit, data)
    if type == "link":
        return eta
    if type != "response":
        raise InputError(f"type must be 'link', 'response' or 'marginal', got {type!r}")
    return fam.link.inverse(eta)


def _scale(fit: GlmmResult) -> float:
    return fit.sigma**2 if fit.sigma is not None else 1.0


def _re_contribution(fit: GlmmResult, data) -> np.ndarray:
    terms = fit.extra["terms"]
    if data is None:
        return np.asarray(terms.design(fit.theta) @ fit.u)
    out = np.zeros(len(data))
    for key, term in zip(terms.keys, terms.terms):
        if term.p != 1 or list(term.coef_names) != ["(Intercept)"]:
            raise InputError("predictions with random slopes for new data are not supported yet")
        levels, effects = fit.random_effects[key]
        lookup = {str(v): k for k, v in enumerate(levels)}
        cols = term.name.split(":")
        keys = data[cols].astype(str).agg(":".join, axis=1) if len(cols) > 1 else data[cols[0]].astype(str)
        idx = np.array([lookup.get(k, -1) for k in keys])
        out += np.where(idx >= 0, effects[np.maximum(idx, 0), 0], 0.0)  # unseen levels: 0
    return out


@dataclass
class MarginalEffect:
    variable: str
    treated: object
    control: object
    mean_treated: float
    mean_control: float
    risk_difference: float
    rd_ci: tuple[float, float]
    risk_ratio: float
    rr_ci: tuple[float, float]
    se_rd: float
    se_log_rr: float
    level: float

    def __str__(self) -> str:
        pct = int(round(100 * self.level))
        return (f"{self.variable}: {self.treated!r} vs {self.control!r}: mean {self.mean_treated:.4g} vs "
                f"{self.mean_control:.4g}; risk difference {self.risk_difference:.4g} "
                f"({pct}% CI {self.rd_ci[0]:.4g} to {self.rd_ci[1]:.4g}); risk ratio {self.risk_ratio:.4g} "
                f"({pct}% CI {self.rr_ci[0]:.4g} to {self.rr_ci[1]:.4g})")


def standardize(fit: GlmmResult, variable: str, treated, control, *, level: float = 0.95) -> MarginalEffect:
    """Marginal (population-average) effect of setting ``variable`` to ``treated`` vs ``control``
    for every row of the fitted data (formula fits)."""
    frame = fit.extra.get("frame")
    if frame is None:
        raise InputError("standardize needs a model fitted from a formula (gwas_glmm.glmm)")
    if variable not in frame.data.columns:
        raise InputError(f"{variable!r} is not a column of the fitted data")
    fam = fit.extra["family_object"]
    terms = fit.extra["terms"]
    designs = []
    for value in (treated, control):
        scenario = frame.data.copy()
        scenario[variable] = pd.Series([value] * len(scenario), index=scenario.index).astype(frame.data[variable].dtype)
        designs.append(_design(fit, scenario))
    beta_only = fit.sigma is not None or "cov_params" not in fit.extra  # PQL: the variances taken as known
    nt = len(fit.theta)
    p = len(fit.beta)

    def means(theta, beta):
        var = marginal_variance(terms, theta, _scale(fit))
        return np.array([_mean_over_re(fam, x @ beta + off, var).mean() for x, off in designs])

    m1, m0 = means(fit.theta, fit.beta)
    if beta_only:
        params, cov = fit.beta, fit.cov_beta

        def f(par):
            return means(fit.theta, par)
    else:
        params = np.concatenate([fit.theta, fit.beta])
        cov = fit.extra["cov_params"][: nt + p, : nt + p]

        def f(par):
            return means(par[:nt], par[nt:])
    h = 1e-5 * np.maximum(np.abs(params), 1.0)
    grad = np.empty((2, len(params)))
    for k in range(len(params)):
        e = np.zeros(len(params))
        e[k] = h[k]
        up, down = f(params + e), f(params - e)
        grad[:, k] = (up - down) / (2 * h[k])
    g_rd = grad[0] - grad[1]
    g_lrr = grad[0] / m1 - grad[1] / m0
    se_rd = float(np.sqrt(g_rd @ cov @ g_rd))
    se_lrr = float(np.sqrt(g_lrr @ cov @ g_lrr))
    q = special.ndtri(0.5 + level / 2)
    rd, rr = m1 - m0, m1 / m0
    return MarginalEffect(variable, treated, control, float(m1), float(m0), float(rd),
                          (float(rd - q * se_rd), float(rd + q * se_rd)), float(rr),
                          (float(rr * np.exp(-q * se_lrr)), float(rr * np.exp(q * se_lrr))), se_rd, se_lrr, level)
