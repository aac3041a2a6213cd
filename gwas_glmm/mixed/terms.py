"""Random-effect terms.  Every term contributes columns to ``A(theta) = Z Lambda(theta)``, the
random-effects design already multiplied by its relative covariance factor, so that the
random effects are ``b = Lambda(theta) u`` with spherical ``u`` (lme4's formulation).

* :class:`GroupTerm`: ``(x1 + x2 | g)``: for each level of a grouping factor, p coefficients with
  a p x p covariance ``T T^T`` (T lower triangular, its entries are theta); ``correlated=False``
  keeps T diagonal.  A random intercept is p = 1; an observation-level random effect (OLRE) is a
  random intercept whose factor has one level per observation.
* :class:`KnownCovTerm`: ``(1 | id)`` with ``Cov(b) = sigma^2 K`` for a known matrix K over the
  levels (kinship, lineage, spatial): Lambda = theta * C with K = C C^T (C from K's stored
  eigendecomposition, so K is never decomposed again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..exceptions import AlignmentError, InputError


def encode(values, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted levels of a grouping factor; NaN is an error."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise InputError(f"grouping factor {name!r} has missing values; drop those rows first")
    if arr.dtype.kind in "OUS":
        arr = np.array([str(v) for v in arr], dtype=object)
    codes, levels = pd.factorize(arr, sort=True)  # hashing, O(n): np.unique would sort all n values
    return codes.astype(np.int64), np.asarray(levels)


@lru_cache(maxsize=64)
def _theta_entries(p: int, correlated: bool) -> tuple[np.ndarray, np.ndarray]:
    if correlated:
        r, c = np.tril_indices(p)
        order = np.lexsort((r, c))
        r, c = r[order], c[order]
    else:
        r, c = np.arange(p), np.arange(p)
    r.flags.writeable = c.flags.writeable = False  # shared by every term of this shape
    return r, c


@dataclass
class GroupTerm:
    name: str  # grouping factor
    codes: np.ndarray  # (n,) level of each observation
    levels: np.ndarray
    x: np.ndarray  # (n, p) random-effect covariates (a column of ones for an intercept)
    coef_names: list[str]
    correlated: bool = True

    def __post_init__(self):
        self.x = np.asarray(self.x, dtype=float).reshape(len(self.codes), -1)
        if len(self.levels) < 2:
            raise InputError(f"grouping factor {self.name!r} has a single level; a random effect needs at least 2")

    @property
    def p(self) -> int:
        return self.x.shape[1]

    @property
    def q(self) -> int:
        return len(self.levels) * self.p

    def _tri(self):
        """(row, col) of each theta entry in T: lme4's order, the lower triangle column by column."""
        return _theta_entries(self.p, self.correlated)

    @property
    def n_theta(self) -> int:
        return len(self._tri()[0])

    def theta_lower(self) -> np.ndarray:
        r, c = self._tri()
        return np.where(r == c, 0.0, -np.inf)

    def theta_start(self) -> np.ndarray:
        r, c = self._tri()
        return np.where(r == c, 1.0, 0.0)

    def factor(self, theta) -> np.ndarray:
        t = np.zeros((self.p, self.p))
        r, c = self._tri()
        t[r, c] = np.asarray(theta)
        return t

    def design(self, theta) -> sp.csr_matrix:
        """Z Lambda: row i has the p values x_i^T T in the columns of its level."""
        t = self.factor(theta)
        n, p = self.x.shape
        vals = self.x @ t
        cols = self.codes[:, None] * p + np.arange(p)[None, :]
        return sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, n * p + 1, p)), shape=(n, self.q))

    def covariance(self, theta, scale: float = 1.0) -> np.ndarray:
        t = self.factor(theta)
        return scale * t @ t.T

    def effects(self, theta, u) -> np.ndarray:
        """b per level: (L, p)."""
        return np.asarray(u).reshape(len(self.levels), self.p) @ self.factor(theta).T

    def labels(self) -> list[str]:
        return [f"{self.name}:{c}" for c in self.coef_names]


@dataclass
class KnownCovTerm:
    name: str
    codes: np.ndarray  # (n,) row of K for each observation
    levels: np.ndarray  # IDs of K's rows
    eigen: object  # the Kinship's Eigen: values ascending, clipped at 0, all eigenvectors
    coef_names: list[str] = field(default_factory=lambda: ["(Intercept)"])

    p = 1
    correlated = False

    @classmethod
    def from_kinship(cls, name: str, ids, kinship) -> KnownCovTerm:
        """Observations' ``ids`` matched to a :class:`~gwas_glmm.kinship.Kinship`'s IIDs."""
        kin = kinship.decompose()
        lookup = {str(i): k for k, i in enumerate(kin.iid)}
        codes = np.array([lookup.get(str(i), -1) for i in ids], dtype=np.int64)
        if np.any(codes < 0):
            bad = [str(i) for i, c in zip(ids, codes) if c < 0]
            raise AlignmentError(f"{len(bad)} values of {name!r} have no row in the known covariance matrix, "
                                 f"first {bad[0]!r}; its IDs must cover every level")
        return cls(name, codes, np.asarray(kin.iid), kin.eigen)

    @property
    def first_positive(self) -> int:
        """Index of the first positive eigenvalue: values are ascending and clipped at 0, so the
        positive ones are the columns from here on."""
        return len(self.eigen.values) - int(np.count_nonzero(self.eigen.values > 0))

    @cached_property
    def chol(self) -> np.ndarray:
        """(L, r) with K = chol @ chol.T (U_+ sqrt(S_+)); built only by the paths that need it, so
        the eigenbasis LMM never allocates this second n x r matrix."""
        k = self.first_positive
        return self.eigen.vectors[:, k:] * np.sqrt(self.eigen.values[k:])

    @cached_property
    def obs_covariance(self) -> np.ndarray:
        """K between the observations (rows and columns of K picked by ``codes``): n x n, once."""
        c = self.chol[self.codes]
        return c @ c.T

    @property
    def one_per_level(self) -> bool:
        """Each level observed exactly once (the GWAS layout): the eigenbasis path applies."""
        return len(self.codes) == len(self.levels) and np.array_equal(np.sort(self.codes), np.arange(len(self.levels)))

    @property
    def q(self) -> int:
        return len(self.eigen.values) - self.first_positive

    n_theta = 1

    def theta_lower(self):
        return np.zeros(1)

    def theta_start(self):
        return np.ones(1)

    def design(self, theta) -> np.ndarray:
        return float(theta[0]) * self.chol[self.codes]

    def covariance(self, theta, scale: float = 1.0) -> np.ndarray:
        return np.array([[scale * float(theta[0]) ** 2]])

    def effects(self, theta, u) -> np.ndarray:
        return (float(theta[0]) * self.chol @ np.asarray(u))[:, None]

    def labels(self) -> list[str]:
        return [f"{self.name}:(Intercept)"]


def olre(n: int, name: str = "obs") -> GroupTerm:
    """An observation-level random effect: one level per observation."""
    return GroupTerm(name, np.arange(n), np.arange(n), np.ones((n, 1)), ["(Intercept)"])


def unique_names(names) -> list[str]:
    """Names made unique as lme4 (R's ``make.unique``) does for terms that share a grouping factor:
    ``(1 | study) + (0 + treatment | study)`` gives ``study`` and ``study.1``."""
    seen: dict[str, int] = {}
    taken = set(names)
    out = []
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        k = seen[name]
        while True:
            k += 1
            candidate = f"{name}.{k}"
            if candidate not in taken:
                break
        seen[name] = k
        taken.add(candidate)
        out.append(candidate)
    return out


class TermSet:
    """The terms of one model: theta layout, bounds, and A(theta) = [Z_1 Lambda_1, ...].
    ``keys``: each term's name in the results (its grouping factor, made unique by
    :func:`unique_names` when two terms share one)."""

    def __init__(self, terms: list, n: int):
        self.terms = list(terms)
        self.keys = unique_names([t.name for t in self.terms])
        for t in self.terms:
            if len(t.codes) != n:
                raise InputError(f"random-effect term {t.name!r} has {len(t.codes)} rows, the data {n}")
        sizes = [t.n_theta for t in self.terms]
        self.theta_slices = []
        start = 0
        for s in sizes:
            self.theta_slices.append(slice(start, start + s))
            start += s
        self.n_theta = start
        self.q = sum(t.q for t in self.terms)
        self.n = n

    @property
    def block_diagonal(self) -> bool:
        """One grouping term: A^T W A + I is block diagonal (one p x p block per level)."""
        return len(self.terms) == 1 and isinstance(self.terms[0], GroupTerm)

    def merged(self) -> GroupTerm | None:
        """Scalar terms on one grouping factor (``(x || g)``, or ``(1 | g) + (0 + x | g)``) as the
        one uncorrelated term they equal, its theta in the same order (so M is block diagonal, one
        p x p block per level); None for any other model.  Its coefficients are level-major:
        :meth:`from_merged` puts a vector of them back in the terms' order."""
        ts = self.terms
        if len(ts) < 2 or not all(isinstance(t, GroupTerm) and t.p == 1 for t in ts):
            return None
        first = ts[0]
        if not all(len(t.levels) == len(first.levels) and np.array_equal(t.codes, first.codes) for t in ts[1:]):
            return None
        return GroupTerm(first.name, first.codes, first.levels, np.hstack([t.x for t in ts]),
                         [c for t in ts for c in t.coef_names], correlated=False)

    def from_merged(self, u: np.ndarray) -> np.ndarray:
        """Spherical effects of :meth:`merged`'s term (level by level) in this set's order (term by term)."""
        return np.asarray(u).reshape(-1, len(self.terms)).T.ravel()

    def lower(self) -> np.ndarray:
        return np.concatenate([t.theta_lower() for t in self.terms]) if self.terms else np.zeros(0)

    def start(self) -> np.ndarray:
        return np.concatenate([t.theta_start() for t in self.terms]) if self.terms else np.zeros(0)

    def design(self, theta):
        blocks = [t.design(theta[s]) for t, s in zip(self.terms, self.theta_slices)]
        if all(sp.issparse(b) for b in blocks):
            return sp.hstack(blocks, format="csr")
        return np.hstack([b.toarray() if sp.issparse(b) else b for b in blocks])

    def split_u(self, u):
        out, start = [], 0
        for t in self.terms:
            out.append(u[start:start + t.q])
            start += t.q
        return out
