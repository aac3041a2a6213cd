"""Sparse penalized least squares for several grouping terms (crossed or nested, any slopes):
the symbolic analysis of M = A^T W A + I done once per model, then only numeric factorisations.

Ordering: the term with the most coefficients first (lme4 likewise sorts its terms by their
number of levels before CHOLMOD orders the columns).  Its block D of M is block diagonal (one
p1 x p1 block per level), so eliminating it first creates fill only among the other terms'
columns, in their Schur complement S = C - B^T D^-1 B, kept dense.  For an observation-level
effect or a large grouping factor beside smaller ones (grouseticks: 403 + 118 + 63 levels; Owls:
599 + 27) that is all the fill a sparse Cholesky would make, and the cost of one factorisation is
O(n r^2 + sum_l p1 k_l^2 + qr^3 / 3) (r random-effect coefficients per observation, k_l the other
terms' columns met by level l, qr the other terms' coefficients) instead of q^3 / 3 for the dense
factor.  Memory: 8 qr^2 bytes for S.

The pattern (which (level, column) pairs of B occur, and where each observation's slots land) is
found once, with numpy, when the model is set up (:class:`Pattern`); the kernels are in
``_sparse_numba``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .terms import GroupTerm, TermSet

MAX_REST = 6000  # beyond this many columns outside the first term (S dense: 288 MB) the dense factor is used


class Pattern:
    """The fixed structure of A and M for a set of grouping terms."""

    def __init__(self, terms: TermSet):
        ts = terms.terms
        if not ts or not all(isinstance(t, GroupTerm) for t in ts):
            raise TypeError("the sparse factor takes grouping terms only")
        self.terms = terms
        n = terms.n
        self.first = int(np.argmax([t.q for t in ts]))  # first on ties
        order = [self.first] + [k for k in range(len(ts)) if k != self.first]
        self.order = order
        b = ts[self.first]
        self.p1, self.n_levels = b.p, len(b.levels)
        q1 = b.q
        self.qr = terms.q - q1
        self.q = terms.q
        # slots: the first term's p1, then the others in model order
        self.slot_offset = {}
        off = 0
        for k in order:
            self.slot_offset[k] = off
            off += ts[k].p
        self.r = off
        model_offset = np.cumsum([0] + [t.q for t in ts])[:-1]
        cols = np.empty((n, self.r), dtype=np.int64)
        internal_start = {}
        start = 0
        for k in order:
            internal_start[k] = start
            start += ts[k].q
        perm = np.empty(terms.q, dtype=np.int64)  # internal column -> model column
        for k in order:
            t = ts[k]
            so = self.slot_offset[k]
            cols[:, so:so + t.p] = internal_start[k] + t.codes[:, None] * t.p + np.arange(t.p)[None, :]
            perm[internal_start[k]:internal_start[k] + t.q] = model_offset[k] + np.arange(t.q)
        self.cols = cols
        self.perm = perm
        self.xr = np.empty((n, self.r))
        for k in order:
            so = self.slot_offset[k]
            self.xr[:, so:so + ts[k].p] = ts[k].x
        # B's pattern: the (level, rest column) pairs that occur, sorted by level then column
        nrest = self.r - self.p1
        levels = b.codes
        if nrest and self.qr:
            rest = cols[:, self.p1:] - q1
            keys = (levels[:, None] * self.qr + rest).ravel()
            uniq, inverse = np.unique(keys, return_inverse=True)
            self.lev_cols = (uniq % self.qr).astype(np.int64)
            self.lev_ptr = np.searchsorted(uniq // self.qr, np.arange(self.n_levels + 1)).astype(np.int64)
            self.pos = inverse.reshape(n, nrest).astype(np.int64)
        else:
            self.lev_cols = np.zeros(0, dtype=np.int64)
            self.lev_ptr = np.zeros(self.n_levels + 1, dtype=np.int64)
            self.pos = np.zeros((n, 0), dtype=np.int64)
        # theta entry -> (slot, covariate column) of the single entry it puts in each row of A
        slots, xcols = [], []
        for k, t in enumerate(ts):
            rr, cc = t._tri()
            so = self.slot_offset[k]
            slots.extend(so + cc)
            xcols.extend(so + rr)
        self.theta_slot = np.asarray(slots, dtype=np.int64)
        self.theta_xcol = np.asarray(xcols, dtype=np.int64)

    def values(self, theta) -> np.ndarray:
        """Row i of A = Z Lambda(theta) in the slots, (n, r)."""
        ts = self.terms.terms
        vals = np.empty_like(self.xr)
        for k, (t, s) in enumerate(zip(ts, self.terms.theta_slices)):
            so = self.slot_offset[k]
            if t.p == 1:
                vals[:, so] = self.xr[:, so] * theta[s][0]
            else:
                vals[:, so:so + t.p] = self.xr[:, so:so + t.p] @ t.factor(theta[s])
        return vals

    def structure(self):
        """The arguments every kernel takes after the values and weights."""
        return self.cols, self.pos, self.p1, self.n_levels, self.lev_ptr, self.lev_cols, self.qr

    def lmm_deviance(self, theta, x, y, w, reml: bool):
        """(profiled deviance, gradient in theta) of the linear mixed model; the deviance is
        ``BAD_DEVIANCE`` (gradient 0) where M is not positive definite."""
        from ._sparse_numba import lmm_deviance
        from .laplace import BAD_DEVIANCE

        dev, grad = lmm_deviance(self.values(theta), w, *self.structure(), x, y, reml, self.xr, self.theta_slot,
                                 self.theta_xcol)
        if not np.isfinite(dev):
            return BAD_DEVIANCE, np.zeros(len(grad))
        return dev, grad

    def to_internal(self, b):
        return b[self.perm]

    def to_model(self, b):
        out = np.empty_like(b)
        out[self.perm] = b
        return out

    def factor(self, vals, w) -> SparseFactor:
        from . import _sparse_numba as k

        d, e, ls, logdet = k.factorize(vals, np.ascontiguousarray(w, dtype=np.float64), *self.structure())
        if not np.isfinite(logdet):
            raise np.linalg.LinAlgError("A^T W A + I is not positive definite to working precision")
        return SparseFactor(self, d, e, ls, logdet)


class SparseFactor:
    """The factor of M in the interface of ``_pls.DenseFactor``: ``solve_l`` takes b in the
    model's column order and returns L^-1 P b (P the internal ordering); ``solve_lt`` returns
    the model's order again, so ``solve_lt(solve_l(b)) = M^-1 b``."""

    def __init__(self, pattern: Pattern, d, e, ls, logdet):
        self.pattern, self.d, self.e, self.ls, self.logdet = pattern, d, e, ls, float(logdet)

    def _args(self):
        pt = self.pattern
        return self.d, self.e, self.ls, pt.p1, pt.n_levels, pt.lev_ptr, pt.lev_cols

    def solve_l(self, b):
        from ._sparse_numba import solve_l

        b = np.asarray(b, dtype=np.float64)
        vec = b.ndim == 1
        out = solve_l(*self._args(), np.ascontiguousarray(self.pattern.to_internal(b.reshape(len(b), -1))))
        return out[:, 0] if vec else out

    def solve_lt(self, b):
        from ._sparse_numba import solve_lt

        b = np.asarray(b, dtype=np.float64)
        vec = b.ndim == 1
        out = self.pattern.to_model(solve_lt(*self._args(), np.ascontiguousarray(b.reshape(len(b), -1))))
        return out[:, 0] if vec else out

    @cached_property
    def inverse_subset(self):
        from ._sparse_numba import inverse_subset

        return inverse_subset(*self._args())

    def block_covariances(self) -> list[np.ndarray]:
        """Per term (model order) the (L, p, p) diagonal blocks of M^-1: each level's own
        coefficients, from the sparse inverse subset (never the whole q x q inverse)."""
        pt = self.pattern
        g11, _, grr = self.inverse_subset
        out = [None] * len(pt.terms.terms)
        out[pt.first] = g11.copy()
        start = 0
        for k in pt.order[1:]:
            t = pt.terms.terms[k]
            idx = start + np.arange(t.q).reshape(len(t.levels), t.p)
            out[k] = grr[idx[:, :, None], idx[:, None, :]]
            start += t.q
        return out


def pattern_for(terms: TermSet) -> Pattern | None:
    """The model's pattern, made once and kept on the TermSet; None when the sparse factor does
    not apply (a known-covariance term, or too many columns outside the first term)."""
    cached = getattr(terms, "_sparse_pattern", False)
    if cached is not False:
        return cached
    pattern = None
    if terms.terms and all(isinstance(t, GroupTerm) for t in terms.terms):
        qs = [t.q for t in terms.terms]
        if terms.q - max(qs) <= MAX_REST:
            pattern = Pattern(terms)
    terms._sparse_pattern = pattern
    return pattern
