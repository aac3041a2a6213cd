"""Conditional (empirical-Bayes) variances of the random effects: Cov(b | y) ~ Lambda M^-1 Lambda^T
with M = A^T W A + I at the mode (times sigma^2 for Gaussian models), diagonal blocks only."""

from __future__ import annotations

import numpy as np

from ._pls import BlockFactor
from .terms import GroupTerm, TermSet

MAX_DENSE = 6000  # beyond this many random-effect coefficients the dense inverse is skipped


def conditional_cov(terms: TermSet, theta, factor, scale: float = 1.0) -> dict:
    """Term key -> (L, p, p) conditional covariance of each level's modes (lme4's ``condVar``,
    its ``postVar`` array with the level first); empty when q exceeds ``MAX_DENSE``.  A known
    covariance term gives its levels' variances only (L, 1, 1)."""
    out = {}
    if isinstance(factor, BlockFactor):
        term = terms.terms[0]
        linv = np.linalg.inv(factor.l) if factor.p > 1 else 1.0 / factor.l
        cov_u = np.swapaxes(linv, 1, 2) @ linv
        t = term.factor(theta)
        out[terms.keys[0]] = scale * (t @ cov_u @ t.T)
        return out
    from ._sparse_pls import SparseFactor

    if isinstance(factor, SparseFactor):  # the diagonal blocks of M^-1 from its sparse inverse subset
        for key, term, s, cov_u in zip(terms.keys, terms.terms, terms.theta_slices, factor.block_covariances()):
            t = term.factor(theta[s])
            out[key] = scale * (t @ cov_u @ t.T)
        return out
    if terms.q > MAX_DENSE:
        return out
    linv = factor.solve_l(np.eye(terms.q))
    start = 0
    for key, term, s in zip(terms.keys, terms.terms, terms.theta_slices):
        block = linv[:, start:start + term.q]
        if isinstance(term, GroupTerm):
            t = term.factor(theta[s])
            cols = block.reshape(terms.q, len(term.levels), term.p)  # (q, L, p)
            cov_u = np.einsum("qlp,qlr->lpr", cols, cols)
            out[key] = scale * (t @ cov_u @ t.T)
        else:
            proj = block @ term.chol.T * float(theta[s][0])  # (q, L)
            out[key] = scale * np.sum(proj * proj, axis=0)[:, None, None]
        start += term.q
    return out


def conditional_sd(cov: dict) -> dict:
    """Term key -> (L, p) conditional standard deviations, from :func:`conditional_cov`."""
    return {key: np.sqrt(np.diagonal(c, axis1=1, axis2=2)) for key, c in cov.items()}


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
