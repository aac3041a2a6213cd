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
from .terms import GroupTerm, TermSet


def lmm_deviance(theta, terms: TermSet, x, y, w, reml: bool):
    a = terms.design(theta)
    sol = solve_pls(terms, theta, a, x, y, w)
    n, p = x.shape
    denom = n - p if reml else n
    dev = sol.factor.logdet + denom * (1 + np.log(2 * np.pi * sol.pwrss / denom)) - np.sum(np.log(w))
    if reml:
        dev += sol.logdet_rx
    return dev, sol


class BlockLmm:
    """The profiled deviance and its analytic gradient in theta for one grouping term, where
    M = A^T W A + I is block diagonal (one p x p block per level), in numpy: each evaluation is
    O(n p (p + k)) for k fixed effects, as a few dozen whole-array operations (per-level sums by
    ``np.add.reduceat`` over the observations sorted by level once, batched p x p Cholesky
    factors).  No compiled kernel is loaded, so the first fit in a process costs what the others
    do; the sparse kernel (``_sparse_numba.lmm_deviance``) takes several terms and large n.

    The formulas are the sparse kernel's (see its docstring): with G = M^-1 (per level),
    P = M^-1 A^T W X, Xr = X - A P and Q = X^T W X - RZX^T RZX, the derivative of entry k of
    theta, which puts x_i[r_k] in column c_k of row i of A, is sum_i x_i[r_k] h_i[c_k] with

        h_i = 2 w_i (G v_i - (denom / r2) res_i u_l - [REML] P_l Q^-1 Xr_i)   (v_i: row i of A)."""

    # the size (observations x coefficients per level) up to which this is used: at n = 180, p = 2
    # an evaluation costs 110 us here against the kernel's 44, but loading the kernel from numba's
    # cache costs about 35 ms once per process (its module, its code, numba's thread layer), which
    # a fit of 20-40 evaluations recovers only where the difference reaches about 1 ms, near
    # n p = 10,000 (n = 5,000, p = 2: 1.0 against 0.44 ms)
    MAX_SIZE = 10_000

    @classmethod
    def applies(cls, terms: TermSet) -> bool:
        return terms.block_diagonal and terms.n * terms.terms[0].p <= cls.MAX_SIZE

    def __init__(self, term: GroupTerm, x, y, w):
        order = np.argsort(term.codes, kind="stable")
        self.counts = np.bincount(term.codes, minlength=len(term.levels))
        self.present = self.counts > 0  # a level without observations keeps M's block I and u 0
        self.all_present = bool(self.present.all())
        self.starts = (np.cumsum(self.counts) - self.counts)[self.present]
        self.xz = term.x[order]
        self.x = x[order]
        self.y = y[order]
        self.w = w[order]
        self.vxy = np.empty((len(y), term.p + x.shape[1] + 1))  # [v, X, y] per row, v filled per theta
        self.vxy[:, term.p:-1] = self.x
        self.vxy[:, -1] = self.y
        self.xtwxy = self.x.T @ (self.w[:, None] * self.vxy[:, term.p:])
        self.logw = float(np.sum(np.log(w)))
        self.p = term.p
        self.rows, self.cols = term._tri()

    def _sum(self, a):
        """Per-level sums of the rows of ``a`` (observations sorted by level)."""
        if self.all_present:
            return np.add.reduceat(a, self.starts, axis=0)
        out = np.zeros((len(self.counts),) + a.shape[1:])
        out[self.present] = np.add.reduceat(a, self.starts, axis=0)
        return out

    def _expand(self, a):
        """Each level's row repeated for its observations."""
        return np.repeat(a, self.counts, axis=0)

    def __call__(self, theta, reml: bool):
        from .laplace import BAD_DEVIANCE

        n, k = self.x.shape
        p = self.p
        t = np.zeros((p, p))
        t[self.rows, self.cols] = theta
        v = self.vxy[:, :p]
        np.matmul(self.xz, t, out=v)  # row i of A without its level's placement
        wv = self.w[:, None] * v
        sums = self._sum(wv[:, :, None] * self.vxy[:, None, :])  # (L, p, p + k + 1): A^T W [A X y]
        m = sums[:, :, :p]
        m[:, np.arange(p), np.arange(p)] += 1.0
        try:
            lo = np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            return BAD_DEVIANCE, np.zeros(len(theta))
        logdet = 2.0 * float(np.sum(np.log(np.diagonal(lo, axis1=1, axis2=2))))
        g = np.linalg.inv(m)  # M^-1: its diagonal blocks are all of it
        atwxy = sums[:, :, p:]
        pm = g @ atwxy  # (L, p, k + 1): M^-1 A^T W [X y]
        lp = len(self.counts) * p
        qfull = self.xtwxy - atwxy[:, :, :k].reshape(lp, k).T @ pm.reshape(lp, k + 1)  # [Q, X^T V^-1 y]
        try:
            rq = np.linalg.cholesky(qfull[:, :k])
        except np.linalg.LinAlgError:
            return BAD_DEVIANCE, np.zeros(len(theta))
        logdet_q = 2.0 * float(np.sum(np.log(np.diag(rq))))
        qinv = np.linalg.inv(qfull[:, :k])
        beta = qinv @ qfull[:, k]
        u = pm[:, :, k] - pm[:, :, :k] @ beta  # (L, p)
        ui = self._expand(u)
        res = self.y - self.x @ beta - np.sum(v * ui, axis=1)
        r2 = float(self.w @ (res * res) + np.sum(u * u))
        denom = n - k if reml else n
        dev = logdet + denom * (1.0 + np.log(2.0 * np.pi * r2 / denom)) - self.logw
        h = (self._expand(g) @ v[:, :, None])[:, :, 0] - (denom / r2) * res[:, None] * ui
        if reml and k:
            pmi = self._expand(pm[:, :, :k])  # (n, p, k)
            xres = self.x - (v[:, None, :] @ pmi)[:, 0, :]
            h -= (pmi @ (xres @ qinv)[:, :, None])[:, :, 0]
            dev += logdet_q
        h *= 2.0 * self.w[:, None]
        return dev, (self.xz.T @ h)[self.rows, self.cols]


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
