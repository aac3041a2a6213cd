"""Groups of related samples in a sparse kinship, and the block-diagonal algebra they allow.

A sparse GRM keeps only close relatives, so once samples are grouped by connected component
(two samples in one group when a chain of kept pairs joins them) every matrix of the form
``diag(d) + tau K`` is block diagonal: singletons are 1 x 1, families small dense blocks.  Its
factorisation, inverse, log-determinant and eigendecomposition cost sum_b s_b^3 flops and
sum_b s_b^2 values instead of n^3 and n^2.

Blocks of the same size are stacked and factorised by one batched LAPACK call (numpy's
``linalg`` gufuncs), so 30,000 families of 2 to 10 cost a few dozen calls, not 30,000.  The
factors are kept as one sparse matrix ``W`` (CSR, block-diagonal, in the samples' own order) with
``Sigma^-1 = W^T W``: whitening a genotype block is one sparse product, O(nnz(W)) per variant.

A group of SPARSE_MIN_SIZE samples or more whose sparse Cholesky factor (after a fill-reducing
ordering) keeps at most a quarter of the dense triangle's entries, or whose dense block (about
4 s^2 x 8 bytes while factorised) would not fit the memory allowed, is factorised sparsely instead
(:mod:`.sparse_chol`): a low GRM cutoff or large connected pedigrees make such groups.  Only a
group whose sparse factor does not fit either is refused, with a message, before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
from scipy.sparse import csgraph

from ..exceptions import InputError

BLOCK_WORK_BYTES = 4 * 8  # bytes per entry of a component's block while it is factorised
SPARSE_WORK_BYTES = 4 * 8  # bytes per entry of a sparse factor (L, its selected inverse, row indices)
SPARSE_MIN_SIZE = 256  # groups at least this large are analysed for a sparse factor
SPARSE_FILL = 0.25  # ... and kept sparse when L has at most this share of the dense triangle's entries


@dataclass(frozen=True)
class Components:
    """Connected components of a symmetric sparse matrix's off-diagonal pattern."""

    labels: np.ndarray  # (n,) component of each sample
    sizes: np.ndarray  # (n_components,) samples in each

    @classmethod
    def of(cls, matrix: scipy.sparse.spmatrix) -> Components:
        _, labels = csgraph.connected_components(scipy.sparse.csr_matrix(matrix), directed=False)
        return cls(labels.astype(np.int64), np.bincount(labels).astype(np.int64))

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def largest(self) -> int:
        return int(self.sizes.max()) if len(self.sizes) else 0

    def summary(self, top: int = 5) -> str:
        singletons = int(np.count_nonzero(self.sizes == 1))
        biggest = ", ".join(str(s) for s in np.sort(self.sizes)[::-1][:top] if s > 1) or "none"
        return (f"{len(self.sizes)} groups of related samples: {singletons} samples with no relative, "
                f"{len(self.sizes) - singletons} groups of 2 or more (largest {biggest})")

    def groups(self, exclude=()) -> list[np.ndarray]:
        """The samples of the components of 2 or more (but those in ``exclude``), stacked by size:
        one (count, size) array of sample indices per size (each row one component, its samples
        ascending)."""
        order = np.argsort(self.labels, kind="stable")  # samples grouped by component, ascending inside
        starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        out = []
        dense = self.sizes > 1
        dense[np.asarray(list(exclude), dtype=np.int64)] = False
        for size in np.unique(self.sizes[dense]):
            comps = np.flatnonzero((self.sizes == size) & dense)
            out.append(order[starts[comps][:, None] + np.arange(size)])
        return out

    def members(self, component: int) -> np.ndarray:
        return np.flatnonzero(self.labels == component)

    def singletons(self) -> np.ndarray:
        return np.flatnonzero(self.sizes[self.labels] == 1)

    def check_memory(self, limit_bytes: float, source: str, size: int | None = None, nnz: int | None = None) -> None:
        """Refuse a group whose dense block (or, given ``nnz``, sparse factor) needs more than ``limit_bytes``."""
        size = self.largest if size is None else size
        need = BLOCK_WORK_BYTES * float(size) ** 2 if nnz is None else SPARSE_WORK_BYTES * float(nnz)
        if need > limit_bytes:
            what = "dense block" if nnz is None else f"sparse Cholesky factor (at least {nnz} entries)"
            raise InputError(
                f"{source}: a group of related samples has {size} samples, whose {what} "
                f"needs {need / 2**30:.1f} GiB, more than the {limit_bytes / 2**30:.1f} GiB allowed; rebuild the sparse "
                "GRM with a higher --sparse-cutoff (fewer distant pairs join families into one group), or allow more "
                "memory (--max-block-memory)")


def sparse_groups(matrix: scipy.sparse.csr_matrix, comps: Components, limit_bytes: float, source: str
                  ) -> tuple[list, list[int]]:
    """(symbolic SparseCholesky factors, their component numbers) of the groups to factorise
    sparsely: SPARSE_MIN_SIZE samples or more and a factor of at most SPARSE_FILL of the dense
    triangle, or a dense block over ``limit_bytes``; a group that fits neither way refused (so is a
    dense block over the limit).  A group whose dense block does not fit is ordered by reverse
    Cuthill-McKee alone (SuperLU's minimum degree factorises a copy to order it).  The dry run
    sizes the null from the same choice."""
    from .sparse_chol import SparseCholesky

    large, sparse_ids = [], []
    for c in np.flatnonzero(comps.sizes >= SPARSE_MIN_SIZE):
        size = int(comps.sizes[c])
        dense_fits = BLOCK_WORK_BYTES * float(size) ** 2 <= limit_bytes
        cap = SPARSE_FILL * size * (size + 1) / 2 if dense_fits else limit_bytes / SPARSE_WORK_BYTES
        analysis = SparseCholesky.analyse(matrix, comps.members(c), max_nnz=cap, minimum_degree=dense_fits)
        if isinstance(analysis, int):  # the factor fills in too much: dense if it fits, else refused
            if not dense_fits:
                comps.check_memory(limit_bytes, source, size, analysis)
            continue
        large.append(analysis)
        sparse_ids.append(int(c))
    sizes = comps.sizes.copy()
    sizes[sparse_ids] = 1
    comps.check_memory(limit_bytes, source, int(sizes.max()) if len(sizes) else 0)
    return large, sparse_ids


def _stacks(matrix: scipy.sparse.csr_matrix, groups: list[np.ndarray], n: int) -> list[np.ndarray]:
    """The dense (count, size, size) blocks of ``matrix`` for each stack of :meth:`Components.groups`."""
    coo = matrix.tocoo()
    where = np.full((n, 2), -1, dtype=np.int64)  # sample -> (stack, position of its component in it)
    local = np.zeros(n, dtype=np.int64)  # sample -> its place inside its component
    for k, members in enumerate(groups):
        where[members.ravel(), 0] = k
        where[members.ravel(), 1] = np.repeat(np.arange(len(members)), members.shape[1])
        local[members.ravel()] = np.tile(np.arange(members.shape[1]), len(members))
    stacks = [np.zeros((len(m), m.shape[1], m.shape[1])) for m in groups]
    inside = where[coo.row, 0] >= 0  # entries of singletons' diagonals are not in any stack
    rows, cols, vals = coo.row[inside], coo.col[inside], coo.data[inside]
    for k in range(len(groups)):
        take = where[rows, 0] == k
        np.add.at(stacks[k], (where[rows[take], 1], local[rows[take]], local[cols[take]]), vals[take])
    return stacks


def _assemble(n: int, groups: list[np.ndarray], blocks: list[np.ndarray], singles: np.ndarray,
              single_values: np.ndarray, *, transpose: bool = False) -> scipy.sparse.csr_matrix:
    """The block-diagonal sparse matrix with ``blocks[k][c]`` at rows and columns ``groups[k][c]``
    (``transpose``: each block transposed) and ``single_values`` on the singletons' diagonal."""
    rows = [singles]
    cols = [singles]
    data = [np.asarray(single_values, dtype=float)]
    for members, b in zip(groups, blocks):
        r = np.broadcast_to(members[:, :, None], b.shape)
        c = np.broadcast_to(members[:, None, :], b.shape)
        if transpose:
            r, c = c, r
        keep = b != 0
        rows.append(r[keep])
        cols.append(c[keep])
        data.append(b[keep])
    return scipy.sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(n, n))


@dataclass
class BlockKinship:
    """A sparse kinship split into its components: the dense blocks, stacked by size."""

    matrix: scipy.sparse.csr_matrix
    components: Components
    groups: list[np.ndarray]
    stacks: list[np.ndarray]
    singles: np.ndarray
    single_diag: np.ndarray
    large: list = field(default_factory=list)  # SparseCholesky analyses of the groups factorised sparsely

    @classmethod
    def of(cls, matrix, *, limit_bytes: float = float("inf"), source: str = "sparse GRM") -> BlockKinship:
        matrix = scipy.sparse.csr_matrix(matrix, dtype=np.float64)
        comps = Components.of(matrix)
        large, sparse_ids = sparse_groups(matrix, comps, limit_bytes, source)
        groups = comps.groups(exclude=sparse_ids)
        singles = comps.singletons()
        return cls(matrix, comps, groups, _stacks(matrix, groups, comps.n), singles,
                   matrix.diagonal()[singles], large)

    @property
    def n(self) -> int:
        return self.components.n

    def eigen(self, *, psd_tol: float = 1e-2, source: str = "sparse GRM") -> tuple[np.ndarray, scipy.sparse.csr_matrix]:
        """(values, vectors): K = U diag(values) U^T with U block diagonal and sparse (one batched
        ``syevd`` per block size); eigenvalues below the rank tolerance clipped to 0, a block with
        an eigenvalue below -psd_tol times its largest refused, as for a dense kinship."""
        if self.large:
            raise ValueError("internal: eigen() of a kinship with groups factorised sparsely")
        values = np.empty(self.n)
        values[self.singles] = self.single_diag
        vec_blocks = []
        for members, stack in zip(self.groups, self.stacks):
            s, u = np.linalg.eigh(stack)
            top = np.abs(s).max(axis=1, keepdims=True)
            bad = np.flatnonzero((s < -psd_tol * top).any(axis=1))
            if bad.size:
                k = bad[0]
                raise InputError(f"{source} is not positive semi-definite: the block of samples {list(members[k][:5])} "
                                 f"(positions in the file) has eigenvalue {s[k].min():.4g} (largest {top[k, 0]:.4g}); "
                                 "rebuild it, or regularise it (add a small multiple of the identity)")
            s = np.where(s > top * members.shape[1] * np.finfo(float).eps, s, 0.0)
            values[members.ravel()] = s.ravel()
            vec_blocks.append(u)
        if np.any(self.single_diag < 0):
            k = self.singles[np.argmin(self.single_diag)]
            raise InputError(f"{source}: sample at position {k} has a negative diagonal {self.matrix[k, k]:.4g}")
        # column j of U belongs to values[j]: a block's eigenvector columns go to its samples' positions
        return values, _assemble(self.n, self.groups, vec_blocks, self.singles, np.ones(len(self.singles)))

    def factor(self, d: np.ndarray, tau: float) -> BlockFactor:
        """Sigma = diag(d) + tau K, factorised block by block."""
        return BlockFactor.of(self, np.asarray(d, dtype=float), float(tau))


def _is_diagonal(c) -> bool:
    if not scipy.sparse.issparse(c):
        return False
    coo = scipy.sparse.coo_matrix(c)
    return bool(np.all(coo.row == coo.col))


@dataclass
class BlockFactor:
    """Sigma = diag(d) + tau K = L L^T by blocks, kept as ``whitener`` W = L^-1 (sparse, lower
    triangular inside each block), so that Sigma^-1 = W^T W; ``inverses`` holds the same blocks
    stacked as in ``kin``, for traces without sparse products.  Groups factorised sparsely
    (``large``: numeric :class:`~.sparse_chol.SparseCholesky` factors) have empty rows in W and
    are whitened and solved through their factors."""

    whitener: scipy.sparse.csr_matrix
    logdet: float
    kin: BlockKinship
    inverses: list[np.ndarray]
    single_inv: np.ndarray  # 1 / Sigma_ii of the singletons
    large: list = field(default_factory=list)
    _selected: list | None = None  # the large factors' selected inverses, computed when first needed

    @classmethod
    def of(cls, kin: BlockKinship, d: np.ndarray, tau: float) -> BlockFactor:
        single = d[kin.singles] + tau * kin.single_diag
        if np.any(single <= 0):
            raise InputError("the working covariance is not positive definite (a sample's variance is <= 0)")
        inverses, logdet = [], float(np.sum(np.log(single)))
        for members, stack in zip(kin.groups, kin.stacks):
            sigma = tau * stack
            idx = np.arange(members.shape[1])
            sigma[:, idx, idx] += d[members]
            try:
                chol = np.linalg.cholesky(sigma)
            except np.linalg.LinAlgError:
                raise InputError("the working covariance of a group of related samples is not positive definite; "
                                 "check that the sparse GRM is a covariance matrix") from None
            logdet += 2.0 * float(np.sum(np.log(chol[:, idx, idx])))
            inverses.append(np.linalg.inv(chol))  # lower triangular; zeros above the diagonal dropped below
        large = [a.factor(d, tau) for a in kin.large]
        logdet += sum(f.logdet for f in large)
        whitener = _assemble(kin.n, kin.groups, inverses, kin.singles, 1.0 / np.sqrt(single))
        return cls(whitener, logdet, kin, inverses, 1.0 / single, large)

    def whiten(self, m: np.ndarray) -> np.ndarray:
        """W m, so that m^T Sigma^-1 m = |W m|^2."""
        out = np.asarray(self.whitener @ m)
        for f in self.large:
            f.whiten_into(m, out)
        return out

    def solve(self, m: np.ndarray) -> np.ndarray:
        """Sigma^-1 m."""
        out = np.asarray(self.whitener.T @ (self.whitener @ m))
        for f in self.large:
            f.solve_into(m, out)
        return out

    def inverse(self) -> scipy.sparse.csr_matrix:
        """Sigma^-1 as a sparse block-diagonal matrix (groups factorised sparsely: refused)."""
        if self.large:
            raise ValueError("internal: the whole inverse of a factor with sparse groups")
        return (self.whitener.T @ self.whitener).tocsr()

    def _selected_inverses(self) -> list[np.ndarray]:
        if self._selected is None:
            self._selected = [f.selected_inverse() for f in self.large]
        return self._selected

    def inverse_diagonal(self) -> np.ndarray:
        """diag(Sigma^-1): column sums of W's squares, and the large groups' selected inverses."""
        out = np.asarray(self.whitener.multiply(self.whitener).sum(axis=0)).ravel()
        for f, z in zip(self.large, self._selected_inverses()):
            out[f.members] = f.inverse_diagonal(z)
        return out

    def trace_inv(self, c) -> float:
        """tr(Sigma^-1 C) for a symmetric C: for the kinship itself block by block in dense
        arithmetic, tr(W_b K_b W_b^T) (2 s_b^3 flops a block), and from the selected inverse for
        groups factorised sparsely; for a diagonal C from diag(Sigma^-1); else through the sparse
        inverse."""
        if c is not self.kin.matrix:
            if _is_diagonal(c):
                return float(np.dot(self.inverse_diagonal(), c.diagonal()))
            return float(self.inverse().multiply(c).sum())
        total = float(np.sum(self.single_inv * self.kin.single_diag))
        for w, k in zip(self.inverses, self.kin.stacks):
            total += float(np.sum((w @ k) * w))
        for f, z in zip(self.large, self._selected_inverses()):
            total += f.trace_kinship(z)
        return total
