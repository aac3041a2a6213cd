"""Penalized least squares, the kernel of every fit: the Cholesky factor of
``M = A^T W A + I`` (A = Z Lambda(theta)) and the joint solve for (u, beta).

Two factor layouts: dense (any terms; q^3 / 3 flops) and block diagonal (a single grouping
term: one p x p block per level, O(L p^3)), which is what keeps a random intercept over
thousands of groups linear in the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .terms import TermSet


class DenseFactor:
    def __init__(self, a, w):
        if sp.issparse(a):
            prod = (a.T.tocsr() @ (sp.diags(w) @ a)).tocoo()
            prod.sum_duplicates()
            m = np.zeros(prod.shape)
            m[prod.row, prod.col] = prod.data
        else:
            m = a.T @ (w[:, None] * a)
        m[np.diag_indices_from(m)] += 1.0
        self.l = sla.cholesky(m, lower=True, check_finite=False)

    @property
    def logdet(self) -> float:
        return 2.0 * float(np.log(np.diag(self.l)).sum())

    def solve_l(self, b):
        return sla.solve_triangular(self.l, b, lower=True, check_finite=False)

    def solve_lt(self, b):
        return sla.solve_triangular(self.l, b, lower=True, trans="T", check_finite=False)


class BlockFactor:
    """M = blockdiag(G_l + I) for one grouping term with p coefficients per level."""

    def __init__(self, term, theta, w):
        v = term.x @ term.factor(theta)  # (n, p) rows of A without the level placement
        n_levels, p = len(term.levels), term.p
        g = np.empty((n_levels, p, p))
        for i in range(p):
            for j in range(i, p):
                g[:, i, j] = g[:, j, i] = np.bincount(term.codes, w * v[:, i] * v[:, j], minlength=n_levels)
        g[:, np.arange(p), np.arange(p)] += 1.0
        self.p, self.n_levels = p, n_levels
        self.l = np.linalg.cholesky(g) if p > 1 else np.sqrt(g)

    @property
    def logdet(self) -> float:
        return 2.0 * float(np.log(np.diagonal(self.l, axis1=1, axis2=2)).sum())

    def _blocks(self, b):
        b = np.asarray(b, dtype=float)
        vec = b.ndim == 1
        return b.reshape(self.n_levels, self.p, -1), vec, b.shape

    def solve_l(self, b):
        bb, vec, shape = self._blocks(b)
        if self.p == 1:
            out = bb / self.l
        else:
            out = np.linalg.solve(self.l, bb)
        return out.reshape(shape)

    def solve_lt(self, b):
        bb, vec, shape = self._blocks(b)
        if self.p == 1:
            out = bb / self.l
        else:
            out = np.linalg.solve(np.swapaxes(self.l, 1, 2), bb)
        return out.reshape(shape)


def factorize(terms: TermSet, theta, a, w):
    """Block diagonal for one grouping term; the sparse factor (``_sparse_pls``) for several
    grouping terms; dense where a known covariance makes A dense."""
    if terms.block_diagonal:
        return BlockFactor(terms.terms[0], theta, w)
    from ._sparse_pls import pattern_for

    pattern = pattern_for(terms)
    if pattern is not None:
        return pattern.factor(pattern.values(theta), w)
    return DenseFactor(a, w)


@dataclass
class PlsSolution:
    beta: np.ndarray
    u: np.ndarray
    rx: np.ndarray  # Cholesky factor (upper) of the Schur complement for beta
    factor: object
    pwrss: float  # penalized weighted residual sum of squares
    fitted: np.ndarray  # X beta + A u (without offset)

    @property
    def logdet_rx(self) -> float:
        return 2.0 * float(np.log(np.abs(np.diag(self.rx))).sum()) if self.rx.size else 0.0


def solve_pls(terms: TermSet, theta, a, x, y, w, factor=None) -> PlsSolution:
    """argmin over (u, beta) of ||W^(1/2)(y - X beta - A u)||^2 + ||u||^2."""
    factor = factor or factorize(terms, theta, a, w)
    wx = w[:, None] * x
    wy = w * y
    at_wx = np.asarray(a.T @ wx)
    at_wy = np.asarray(a.T @ wy)
    rzx = factor.solve_l(at_wx)  # (q, p)
    cu = factor.solve_l(at_wy)  # (q,)
    xtwx = x.T @ wx - rzx.T @ rzx
    p = x.shape[1]
    if p:
        rx = sla.cholesky(xtwx, lower=False, check_finite=False)
        rhs = x.T @ wy - rzx.T @ cu
        beta = sla.cho_solve((rx, False), rhs, check_finite=False)
    else:
        rx, beta = np.zeros((0, 0)), np.zeros(0)
    u = factor.solve_lt(cu - rzx @ beta)
    fitted = x @ beta + np.asarray(a @ u)
    resid = y - fitted
    pwrss = float(np.sum(w * resid * resid) + u @ u)
    return PlsSolution(beta, u, rx, factor, pwrss, fitted)
