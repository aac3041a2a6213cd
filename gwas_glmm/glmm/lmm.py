"""Gaussian linear mixed models by REML or ML: the deviance profiled over beta and sigma^2,
minimised over theta (lme4's formulation, Bates et al. 2015, J Stat Softw 67(1)).

    ML:    d(theta) = log|M| + n (1 + log(2 pi r2 / n))
    REML:  d(theta) = log|M| + log|R_X|^2 + (n - p)(1 + log(2 pi r2 / (n - p)))

with M = A^T W A + I, r2 the penalized weighted residual sum of squares and R_X the Cholesky
factor of beta's Schur complement.  Each evaluation costs one PLS solve (see ``_pls``).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from ._pls import solve_pls
from .terms import TermSet


def lmm_deviance(theta, terms: TermSet, x, y, w, reml: bool):
    a = terms.design(theta)
    sol = solve_pls(terms, theta, a, x, y, w)
    n, p = x.shape
    denom = n - p if reml else n
    dev = sol.factor.logdet + denom * (1 + np.log(2 * np.pi * sol.pwrss / denom)) - np.sum(np.log(w))
    if reml:
        dev += sol.logdet_rx
    return dev, sol


def optimize_theta(fun, start, lower, *, tol: float = 1e-10, polish: bool = True,
                   method: str = "L-BFGS-B") -> optimize.OptimizeResult:
    """Bounded quasi-Newton (finite-difference gradients), then optionally a Nelder-Mead polish
    from its end, keeping the better.  ``method="COBYQA"``: derivative-free trust region with
    quadratic models (the role bobyqa plays in lme4), for objectives computed by an inner
    iteration whose rounding makes finite-difference gradients noisy."""
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    if method == "COBYQA":
        scale = np.maximum(np.abs(start), 1.0)
        res = optimize.minimize(
            lambda z: fun(z * scale), np.asarray(start) / scale, method="COBYQA",
            bounds=optimize.Bounds(np.where(np.isfinite(lower), lower / scale, -np.inf), np.inf),
            options={"initial_tr_radius": 0.5, "final_tr_radius": 1e-9, "maxfev": 20000})
        res.x = res.x * scale
        return res
    best = optimize.minimize(fun, start, method="L-BFGS-B", bounds=bounds,
                             options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    if not polish:
        return best
    polish = optimize.minimize(fun, best.x, method="Nelder-Mead", bounds=bounds,
                               options={"xatol": 1e-9, "fatol": tol, "maxiter": 4000, "adaptive": True})
    if polish.fun < best.fun:
        polish.nfev += best.nfev
        return polish
    best.nfev += polish.nfev
    return best
