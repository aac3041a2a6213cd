"""One object for every known covariance between samples: a GRM built here, a matrix from GCTA
or plink2, a pedigree kinship, or any user matrix (lineage, spatial) with its sample IDs.

Whatever its source, a :class:`Kinship` has passed the same checks: square, finite, symmetric,
positive semi-definite within tolerance, unique IDs.  The PSD check is the eigendecomposition,
which is kept, so validation never costs a second decomposition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse

from .._validation import first_duplicate
from ..exceptions import AlignmentError, InputError
from .eigen import DEFAULT_PSD_TOL, Eigen, eigendecompose

SYMMETRY_TOL = 1e-6


def _ids(values, n: int, what: str, source: str) -> np.ndarray:
    if values is None:
        return np.array([str(i) for i in range(n)], dtype=object)
    arr = np.asarray([str(v) for v in values], dtype=object)
    if arr.shape != (n,):
        raise InputError(f"{source}: {len(arr)} {what} given for a {n} x {n} matrix")
    return arr


@dataclass(frozen=True)
class Kinship:
    """A known sample covariance (up to a variance factor) with its sample IDs.

    ``matrix`` is a dense (n, n) array or a scipy.sparse matrix; ``eigen`` is its
    eigendecomposition when known.  ``meta`` holds the definition and provenance.
    """

    matrix: np.ndarray | scipy.sparse.spmatrix
    fid: np.ndarray
    iid: np.ndarray
    eigen: Eigen | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    @property
    def is_sparse(self) -> bool:
        return scipy.sparse.issparse(self.matrix)

    def __repr__(self) -> str:
        kind = "sparse" if self.is_sparse else "dense"
        return f"Kinship({self.n} samples, {kind}, {self.meta.get('definition', 'user matrix')!r})"

    @classmethod
    def from_array(cls, matrix, iid=None, fid=None, *, source: str = "kinship matrix",
                   check_psd: bool = True, psd_tol: float = DEFAULT_PSD_TOL, meta: dict | None = None) -> Kinship:
        """Validate a user matrix.  ``iid`` (and ``fid``, default equal to ``iid``) name its rows.

        >>> import numpy as np
        >>> Kinship.from_array(np.eye(3), iid=["a", "b", "c"]).n
        3
        """
        if scipy.sparse.issparse(matrix):
            mat = scipy.sparse.csr_matrix(matrix, dtype=np.float64)
        else:
            mat = np.asarray(matrix)
            if mat.dtype.kind not in "fiub":
                raise InputError(f"{source}: values must be numeric, got dtype {mat.dtype}")
            if mat.dtype not in (np.float32, np.float64):
                mat = mat.astype(np.float64)
        if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
            raise InputError(f"{source}: a kinship matrix must be square, got shape {mat.shape}")
        n = mat.shape[0]
        iid = _ids(iid, n, "sample IDs", source)
        fid = iid.copy() if fid is None else _ids(fid, n, "family IDs", source)
        check_matrix(mat, source)
        dup = first_duplicate(list(zip(fid, iid)))
        if dup is not None:
            raise InputError(f"{source}: sample {fid[dup[1]]} {iid[dup[1]]} appears twice "
                             f"(rows {dup[0] + 1} and {dup[1] + 1}); IDs must be unique")
        eigen = None
        if check_psd and not scipy.sparse.issparse(mat):
            eigen = eigendecompose(mat, source=source, psd_tol=psd_tol)
        return cls(mat, fid, iid, eigen, dict(meta or {}))

    def decompose(self, *, psd_tol: float = DEFAULT_PSD_TOL) -> Kinship:
        """The same kinship with its eigendecomposition (computed here only if not yet known)."""
        if self.eigen is not None:
            return self
        dense = self.matrix.toarray() if self.is_sparse else self.matrix
        return replace(self, eigen=eigendecompose(dense, source=self.meta.get("source", "kinship"), psd_tol=psd_tol))

    def align(self, fid, iid, *, source: str | None = None) -> Kinship:
        """Rows and columns for exactly these samples, in this order (a subset or permutation).

        A permutation keeps the eigendecomposition (rows reordered); a proper subset drops it,
        since the eigenvectors of a submatrix must be computed anew.  With ``meta["iid_only"]``
        (a file that names samples by IID alone) rows are matched on ``iid``.
        """
        source = source or self.meta.get("source", "kinship matrix")
        if self.meta.get("iid_only"):  # e.g. SAIGE's sample-ID file: matched on IID alone
            lookup = {i: k for k, i in enumerate(self.iid)}
            order = np.array([lookup.get(str(i), -1) for i in iid], dtype=np.int64)
        else:
            lookup = {(f, i): k for k, (f, i) in enumerate(zip(self.fid, self.iid))}
            order = np.array([lookup.get((str(f), str(i)), -1) for f, i in zip(fid, iid)], dtype=np.int64)
        missing = np.flatnonzero(order < 0)
        if missing.size:
            k = missing[0]
            raise AlignmentError(
                f"{source}: {missing.size} of {len(order)} samples have no row in the kinship matrix, "
                f"first {fid[k]} {iid[k]}; build the kinship on the same samples or drop them (--keep)"
            )
        if len(order) == self.n and np.array_equal(order, np.arange(self.n)):
            return self
        mat = (self.matrix[order][:, order] if self.is_sparse  # CSR has no np.ix_ indexing
               else self.matrix[np.ix_(order, order)])  # one pass (two fancy indexings took 2 s at n = 10,000)
        eigen = self.eigen.permute(order) if self.eigen is not None and len(order) == self.n else None
        return replace(self, matrix=mat, fid=self.fid[order], iid=self.iid[order], eigen=eigen)

    def to_sparse(self, cutoff: float = 0.05) -> Kinship:
        """Off-diagonal entries below ``cutoff`` set to 0 (fastGWA's sparse GRM); diagonal kept."""
        return replace(self, matrix=sparsify(self.matrix, cutoff), eigen=None,
                       meta={**self.meta, "sparse_cutoff": cutoff})


def check_matrix(mat, source: str) -> None:
    """Finite and symmetric (relative tolerance 1e-6), else one line saying where."""
    data = mat.data if scipy.sparse.issparse(mat) else mat
    if not np.all(np.isfinite(data)):
        if scipy.sparse.issparse(mat):
            raise InputError(f"{source}: the matrix holds NaN or infinite values")
        i, j = np.argwhere(~np.isfinite(mat))[0]
        raise InputError(f"{source}: entry ({i + 1}, {j + 1}) is {mat[i, j]}; the matrix must be finite")
    scale = max(float(np.abs(data).max()) if data.size else 0.0, 1e-300)
    if scipy.sparse.issparse(mat):
        diff = abs(mat - mat.T)
        worst = float(diff.max()) if diff.nnz else 0.0
        pos = None
    else:
        diff = np.abs(mat - mat.T)
        pos = np.unravel_index(int(np.argmax(diff)), diff.shape)
        worst = float(diff[pos])
    if worst > SYMMETRY_TOL * scale:
        where = f" at ({pos[0] + 1}, {pos[1] + 1})" if pos is not None else ""
        raise InputError(f"{source}: the matrix is not symmetric (largest |K - K^T| = {worst:.3g}{where}); "
                         "a kinship matrix must equal its transpose")


def sparsify(matrix, cutoff: float) -> scipy.sparse.csr_matrix:
    """CSR copy keeping the diagonal and the off-diagonal entries >= cutoff, built in row chunks."""
    n = matrix.shape[0]
    parts = []
    step = max(1, 2**24 // max(n, 1))
    for start in range(0, n, step):
        rows = np.asarray(matrix[start:start + step] if not scipy.sparse.issparse(matrix)
                          else matrix[start:start + step].toarray())
        keep = rows >= cutoff
        keep[np.arange(rows.shape[0]), np.arange(start, start + rows.shape[0])] = True
        parts.append(scipy.sparse.csr_matrix(np.where(keep, rows, 0.0)))
    out = scipy.sparse.vstack(parts, format="csr")
    out.eliminate_zeros()
    return out


def pedigree_kinship(fam, *, source: str = ".fam") -> Kinship:
    """Twice the kinship coefficient from the pedigree in a .fam (PAT/MAT columns), i.e. the
    expected GRM: 1 (+ inbreeding) on the diagonal, 0.5 parent-offspring and full sibs, ...

    Parents absent from the .fam are treated as unrelated founders.  Cost O(n^2).
    """
    key = {(f, i): k for k, (f, i) in enumerate(zip(fam.fid, fam.iid))}
    n = len(fam.iid)
    parents = np.full((n, 2), -1, dtype=np.int64)
    for k in range(n):
        for c, col in enumerate((fam.father, fam.mother)):
            if col[k] not in ("0", "", "."):
                parents[k, c] = key.get((fam.fid[k], col[k]), -1)
    order, state = [], np.zeros(n, dtype=np.int8)  # parents before children; detect cycles
    for start in range(n):
        stack = [start]
        while stack:
            k = stack[-1]
            if state[k] == 2:
                stack.pop()
                continue
            state[k] = 1
            pending = [p for p in parents[k] if p >= 0 and state[p] != 2]
            if any(state[p] == 1 for p in pending):
                raise InputError(f"{source}: the pedigree has a cycle through {fam.fid[k]} {fam.iid[k]}")
            if pending:
                stack.extend(pending)
            else:
                state[k] = 2
                order.append(k)
                stack.pop()
    a = np.zeros((n, n))
    done: list[int] = []
    for k in order:
        f, m = parents[k]
        if done:
            idx = np.array(done)
            row = np.zeros(len(idx))
            if f >= 0:
                row += 0.5 * a[f, idx]
            if m >= 0:
                row += 0.5 * a[m, idx]
            a[k, idx] = row
            a[idx, k] = row
        a[k, k] = 1.0 + (0.5 * a[f, m] if f >= 0 and m >= 0 else 0.0)
        done.append(k)
    return Kinship.from_array(a, iid=fam.iid, fid=fam.fid, source=f"pedigree kinship from {source}",
                              meta={"definition": "pedigree: twice the kinship coefficient", "source": source})
