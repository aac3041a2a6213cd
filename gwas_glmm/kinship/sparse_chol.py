"""A sparse Cholesky factor for a group of relatives too large for a dense block.

A sparse GRM at a low cutoff, or a cohort of large connected pedigrees, can join thousands of
samples into one group.  Its dense block costs s^3/3 flops to factorise and s^2/2 values to keep,
and whitening a variant through it s^2 flops; the group's own pattern is sparse, though, and a
Cholesky factor of the permuted block, L L' = P (diag(d) + tau K) P', keeps the sparsity the
ordering allows.  Everything the null fit and the exact scan need follows from L:

* log det Sigma_b = 2 sum log L_jj;
* Sigma_b^-1 m by two triangular solves, and |L^-1 P g|^2 = g' Sigma_b^-1 g for a variant, both
  O(nnz(L)) per column;
* tr(Sigma_b^-1 K_b) and diag(Sigma_b^-1) from the selected inverse (Sigma^-1 on L's pattern,
  which contains K's), O(sum_j |L_j|^2) flops, no dense s x s matrix.

The ordering and the symbolic factor are found once per group (the pattern of diag(d) + tau K is
K's whatever d and tau); each PQL iteration refactorises numerically.  Of SuperLU's minimum degree
on K + K' and reverse Cuthill-McKee, the one with fewer entries in L is kept.  Kernels in
:mod:`._cholesky_numba`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.sparse import csgraph

from ..exceptions import InputError


def _orderings(block: scipy.sparse.csr_matrix, minimum_degree: bool) -> list[np.ndarray]:
    """Candidate fill-reducing orderings (new position -> old index) of a symmetric block; SuperLU's
    minimum degree only with ``minimum_degree`` (it factorises a copy to find the ordering: memory
    and time up to a dense block's, so not for a group whose dense block does not fit)."""
    out = [csgraph.reverse_cuthill_mckee(block, symmetric_mode=True).astype(np.int64)]
    if not minimum_degree:
        return out
    pattern = scipy.sparse.csc_matrix((np.ones(block.nnz), block.indices, block.indptr), shape=block.shape)
    pattern = pattern + scipy.sparse.identity(block.shape[0], format="csc") * (block.shape[0] + 1.0)
    try:  # SuperLU's minimum degree on A'+A: its column permutation, from a diagonally dominant copy
        lu = scipy.sparse.linalg.splu(pattern, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                      options={"SymmetricMode": True})
        out.append(np.argsort(lu.perm_c).astype(np.int64))
    except RuntimeError:  # pragma: no cover - SuperLU failing on an SPD copy: RCM alone
        pass
    return out


def _upper(block: scipy.sparse.csr_matrix, order: np.ndarray) -> scipy.sparse.csc_matrix:
    permuted = block[order][:, order]
    upper = scipy.sparse.triu(permuted, format="csc")
    upper.sort_indices()
    return upper


@dataclass
class SparseCholesky:
    """The symbolic factor of one group's block (``members``: its samples' positions in the
    kinship, in the factor's order), and, after :meth:`factor`, the numeric one."""

    members: np.ndarray
    cp: np.ndarray  # upper triangle of the permuted K block, CSC
    ci: np.ndarray
    kx: np.ndarray
    diag: np.ndarray  # position of each diagonal entry in (cp, ci)
    parent: np.ndarray
    lp: np.ndarray
    li: np.ndarray
    kmap: np.ndarray  # position in L of each entry of (cp, ci)
    lx: np.ndarray | None = None

    @classmethod
    def analyse(cls, matrix: scipy.sparse.csr_matrix, members: np.ndarray, *, max_nnz: float = float("inf"),
                minimum_degree: bool = True) -> SparseCholesky | int:
        """The group ``members`` (positions in ``matrix``) of the symmetric sparse kinship ``matrix``;
        or, when its factor would have more than ``max_nnz`` entries, that count, or a lower bound
        of it (nothing allocated).  ``minimum_degree``: also try SuperLU's ordering."""
        from ._cholesky_numba import column_counts, etree, symbolic

        block = scipy.sparse.csr_matrix(matrix[members][:, members])
        block = block + scipy.sparse.diags(np.zeros(len(members)), format="csr")  # diagonal in the pattern
        at_least = (block.nnz + len(members)) // 2  # L holds K's lower triangle at least
        if at_least > max_nnz:
            return int(at_least)
        best = None
        for order in _orderings(block, minimum_degree):
            upper = _upper(block, order)
            cp, ci = upper.indptr.astype(np.int64), upper.indices.astype(np.int64)
            parent = etree(cp, ci, len(order))
            counts = column_counts(cp, ci, parent)
            if best is None or counts.sum() < best[0].sum():
                best = (counts, parent, upper, order)
        counts, parent, upper, order = best
        if counts.sum() > max_nnz:
            return int(counts.sum())
        cp, ci = upper.indptr.astype(np.int64), upper.indices.astype(np.int64)
        lp, li = symbolic(cp, ci, parent, counts)
        s = len(order)
        cols = np.repeat(np.arange(s), np.diff(cp))
        # entry (ci, col) of the upper triangle is L[col, ci]; L's entries in storage order have
        # ascending keys column * s + row, so one search places them all
        keys = np.repeat(np.arange(s, dtype=np.int64), np.diff(lp)) * s + li
        kmap = np.searchsorted(keys, ci * s + cols)
        diag = np.flatnonzero(ci == cols)
        return cls(np.asarray(members, dtype=np.int64)[order], cp, ci, upper.data.astype(np.float64), diag,
                   parent, lp, li, kmap)

    @classmethod
    def stored(cls, members, lp, li, lx) -> SparseCholesky:
        """A numeric factor read back from a file: enough to whiten and solve, not to refactorise."""
        empty = np.empty(0, dtype=np.int64)
        return cls(np.asarray(members, dtype=np.int64), empty, empty, np.empty(0), empty, empty,
                   np.asarray(lp, dtype=np.int64), np.asarray(li, dtype=np.int64), empty, np.asarray(lx, dtype=float))

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def nnz(self) -> int:
        return int(self.lp[-1])

    def factor(self, d: np.ndarray, tau: float) -> SparseCholesky:
        """The numeric factor of diag(d[members]) + tau K_b (``d`` over all samples)."""
        from ._cholesky_numba import numeric

        values = tau * self.kx
        values[self.diag] += d[self.members]
        lx = np.empty(self.nnz)
        bad = numeric(self.cp, self.ci, values, self.parent, self.lp, self.li, lx)
        if bad >= 0:
            raise InputError("the working covariance of a group of related samples is not positive definite; "
                             "check that the sparse GRM is a covariance matrix")
        return dataclasses.replace(self, lx=lx)

    @property
    def logdet(self) -> float:
        return 2.0 * float(np.sum(np.log(self.lx[self.lp[:-1]])))

    def whiten_into(self, m: np.ndarray, out: np.ndarray) -> None:
        """out[members] = L^-1 m[members] (rows in the factor's order)."""
        from ._cholesky_numba import lower_solve

        b = np.array(m[self.members].reshape(self.size, -1), dtype=np.float64)
        lower_solve(self.lp, self.li, self.lx, b)
        out[self.members] = b.reshape(out[self.members].shape)

    def solve_into(self, m: np.ndarray, out: np.ndarray) -> None:
        """out[members] = Sigma_b^-1 m[members]."""
        from ._cholesky_numba import lower_solve, upper_solve

        b = np.array(m[self.members].reshape(self.size, -1), dtype=np.float64)
        lower_solve(self.lp, self.li, self.lx, b)
        upper_solve(self.lp, self.li, self.lx, b)
        out[self.members] = b.reshape(out[self.members].shape)

    def selected_inverse(self) -> np.ndarray:
        """Sigma_b^-1 on L's pattern (aligned with ``li``)."""
        from ._cholesky_numba import selected_inverse

        return selected_inverse(self.lp, self.li, self.lx)

    def inverse_diagonal(self, z: np.ndarray) -> np.ndarray:
        return z[self.lp[:-1]]

    def trace_kinship(self, z: np.ndarray) -> float:
        """tr(Sigma_b^-1 K_b) from the selected inverse ``z``: the upper triangle's entries once,
        the off-diagonal ones twice."""
        products = z[self.kmap] * self.kx
        return 2.0 * float(np.sum(products)) - float(np.sum(products[self.diag]))

    def sumsq_whitened(self, g: np.ndarray, out: np.ndarray) -> None:
        """out[c] += g[members, c]' Sigma_b^-1 g[members, c] for each column of a genotype block."""
        from ._cholesky_numba import whitened_sumsq

        whitened_sumsq(g, self.members, self.lp, self.li, self.lx, out)
