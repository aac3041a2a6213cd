"""Conditional (empirical-Bayes) variances of the random effects: Cov(b | y) ~ Lambda M^-1 Lambda^T
with M = A^T W A + I at the mode (times sigma^2 for Gaussian models), diagonal blocks only."""

from __future__ import annotations

import numpy as np

from ._pls import BlockFactor
from .terms import GroupTerm, TermSet

MAX_DENSE = 6000  # beyond this many random-effect coefficients the dense inverse is skipped


def conditional_sd(terms: TermSet, theta, factor, scale: float = 1.0) -> dict:
    """Term name -> (L, p) conditional standard deviations of b (empty if too large)."""
    out = {}
    if isinstance(factor, BlockFactor):
        term = terms.terms[0]
        linv = np.linalg.inv(factor.l) if factor.p > 1 else 1.0 / factor.l
        cov_u = np.swapaxes(linv, 1, 2) @ linv
        t = term.factor(theta)
        cov_b = t @ cov_u @ t.T
        out[term.name] = np.sqrt(scale * np.diagonal(cov_b, axis1=1, axis2=2))
        return out
    if terms.q > MAX_DENSE:
        return out
    linv = factor.solve_l(np.eye(terms.q))
    start = 0
    for term, s in zip(terms.terms, terms.theta_slices):
        block = linv[:, start:start + term.q]
        if isinstance(term, GroupTerm):
            t = term.factor(theta[s])
            cols = block.reshape(terms.q, len(term.levels), term.p)  # (q, L, p)
            cov_u = np.einsum("qlp,qlr->lpr", cols, cols)
            cov_b = t @ cov_u @ t.T
            out[term.name] = np.sqrt(scale * np.diagonal(cov_b, axis1=1, axis2=2))
        else:
            proj = block @ term.chol.T * float(theta[s][0])  # (q, L)
            out[term.name] = np.sqrt(scale * np.sum(proj * proj, axis=0))[:, None]
        start += term.q
    return out


def marginal_variance(terms: TermSet, theta, scale: float = 1.0) -> np.ndarray:
    """Var(z_i^T b) per observation under the random-effect distribution (for integrating the
    random effects out of a prediction)."""
    v = np.zeros(terms.n)
    for term, s in zip(terms.terms, terms.theta_slices):
        if isinstance(term, GroupTerm):
            rows = term.x @ term.factor(theta[s])
            v += np.sum(rows * rows, axis=1)
        else:
            c = term.chol[term.codes]
            v += float(theta[s][0]) ** 2 * np.sum(c * c, axis=1)
    return scale * v
