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


class EigenLmm:
    """REML/ML for y = X beta + g + e, g ~ N(0, s_g K), e ~ N(0, s_e I), in K's eigenbasis.

    With K = U diag(s) U^T, rotating by U^T makes V = s_g (diag(s) + delta I) diagonal
    (delta = s_e / s_g): each likelihood evaluation costs O(n p^2) after one O(n^2 (p + 1))
    rotation, and the decomposition of K is the stored one (never recomputed).

        REML: -2 l(delta) = (n - p)(1 + log(2 pi s_g)) + sum log d_i + log|X~^T D^-1 X~|
        ML:   -2 l(delta) = n (1 + log(2 pi s_g)) + sum log d_i

    with d_i = s_i + delta and s_g = r^T D^-1 r / (n - p) (REML) or / n (ML).
    """

    def __init__(self, y, x, eigen, order):
        # ``order`` is a permutation (observation i is K's row order[i]): put y and X in K's row
        # order rather than copying the n x n eigenvectors into observation order
        y_rows = np.empty(len(y))
        y_rows[order] = y
        x_rows = np.empty(x.shape)
        x_rows[order] = x
        self.s = np.asarray(eigen.values, dtype=float)
        self.yt = eigen.vectors.T @ y_rows
        self.xt = eigen.vectors.T @ x_rows
        self.n, self.p = x.shape

    def solve(self, log_delta: float, reml: bool):
        d = self.s + np.exp(log_delta)
        xd = self.xt / d[:, None]
        xtdx = self.xt.T @ xd
        beta = np.linalg.solve(xtdx, xd.T @ self.yt)
        r = self.yt - self.xt @ beta
        denom = self.n - self.p if reml else self.n
        s_g = float(r @ (r / d)) / denom
        dev = denom * (1 + np.log(2 * np.pi * s_g)) + np.sum(np.log(d))
        if reml:
            dev += np.linalg.slogdet(xtdx)[1]
        return dev, beta, s_g, xtdx

    def fit(self, reml: bool):
        """Minimise over log(delta) on a grid, then Brent around the best grid point."""
        grid = np.linspace(-10, 10, 41)
        devs = [self.solve(g, reml)[0] for g in grid]
        k = int(np.argmin(devs))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        res = optimize.minimize_scalar(lambda g: self.solve(g, reml)[0], bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-10})
        best = res.x if res.fun <= devs[k] else grid[k]
        return best, self.solve(best, reml)
