"""The eigendecomposition of a kinship matrix, computed once and reused by every later fit.

``K = U diag(s) U^T`` with ``s`` ascending (LAPACK's order).  Eigenvalues whose magnitude is
below ``tol`` (rank tolerance) are set to 0; negative eigenvalues down to ``-psd_tol * s_max``
are clipped to 0 and reported (default 1% of the largest; a GRM with pairwise missing-call normalisation is not exactly
PSD); anything more negative is an error, because the matrix is not a covariance.

Cost: one LAPACK ``syevd`` (divide and conquer), about 9 n^3 flops and 3 n^2 values of memory
(the matrix, the eigenvectors, the workspace); 10,000 samples take about a minute on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..exceptions import InputError

DEFAULT_PSD_TOL = 1e-2


@dataclass(frozen=True)
class Eigen:
    """``K = vectors @ diag(values) @ vectors.T``; values ascending, clipped to >= 0."""

    values: np.ndarray  # (n,)
    vectors: np.ndarray  # (n, n), column k belongs to values[k]
    rank: int  # eigenvalues > tol
    n_clipped: int  # negative eigenvalues set to 0 (beyond the rank tolerance)
    min_raw: float  # most negative eigenvalue before clipping (0 if none)
    tol: float  # rank tolerance used

    @property
    def n(self) -> int:
        return len(self.values)

    def positive(self) -> np.ndarray:
        """Mask of the eigenvalues above the rank tolerance (the range of K)."""
        return self.values > 0

    def report(self) -> str:
        text = f"rank {self.rank} of {self.n}; eigenvalues {self.values[0]:.3g}..{self.values[-1]:.4g}"
        if self.n_clipped:
            text += f"; {self.n_clipped} negative eigenvalues clipped to 0 (most negative {self.min_raw:.3g})"
        return text

    def reconstruct(self) -> np.ndarray:
        return (self.vectors * self.values) @ self.vectors.T

    def permute(self, order: np.ndarray) -> Eigen:
        """The decomposition of ``K[order][:, order]`` (same eigenvalues, rows reordered)."""
        return Eigen(self.values, self.vectors[order], self.rank, self.n_clipped, self.min_raw, self.tol)


def eigendecompose(matrix: np.ndarray, *, source: str = "kinship matrix",
                   psd_tol: float = DEFAULT_PSD_TOL, dtype=np.float64) -> Eigen:
    """Decompose a symmetric matrix once (LAPACK syevd), clip and report as described above."""
    source_dtype = np.asarray(matrix).dtype
    eps = np.finfo(source_dtype if source_dtype in (np.float32, np.float64) else np.float64).eps
    a = np.asarray(matrix, dtype=dtype)
    n = a.shape[0]
    if n == 0:
        raise InputError(f"{source}: the matrix is empty")
    from .._blas import eigh_in_pieces
    from .._threads import blas_threads, dense_plan

    plan = dense_plan(n)
    if plan.pieces > 1 and a.dtype == np.float64:  # other work holds the CPUs: see eigh_in_pieces
        values, vectors = eigh_in_pieces(a, plan.pieces, overwrite=a is not matrix)
    else:
        with blas_threads(plan.blas):
            values, vectors = scipy.linalg.eigh(a, driver="evd", check_finite=False, overwrite_a=a is not matrix)
    top = float(max(abs(values[0]), abs(values[-1])))
    tol = top * n * eps  # the input's precision: a float32 GRM is exact only to ~1e-7
    raw_min = float(values[0])
    if raw_min < -psd_tol * max(top, 1e-300):
        raise InputError(
            f"{source} is not positive semi-definite: most negative eigenvalue {raw_min:.4g} "
            f"(largest {values[-1]:.4g}, tolerance {-psd_tol * top:.3g}); check that it is a "
            "covariance matrix, or regularise it (add a small multiple of the identity); a GRM "
            "averaged pairwise over called variants (--missing gcta) from few variants can be "
            "indefinite: rebuild it with --missing mean-impute, which is PSD by construction"
        )
    negative = values < -tol
    n_clipped = int(negative.sum())
    values = np.where(values > tol, values, 0.0).astype(values.dtype)
    return Eigen(values, vectors, int((values > 0).sum()), n_clipped, min(raw_min, 0.0), float(tol))


EXACT_TOP_MAX_N = 4000  # up to this size the top eigenpairs come from LAPACK (a few seconds)


def top_eigen(matrix: np.ndarray, k: int, *, iterations: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(values ascending, vectors (n, k)): the ``k`` largest eigenpairs of a symmetric matrix.

    Up to ``EXACT_TOP_MAX_N`` rows LAPACK's ``syevr`` for that index range; above, randomized
    subspace iteration (Halko, Martinsson & Tropp 2011, algorithm 4.4 with 2k columns and
    ``iterations`` power steps) and a Rayleigh-Ritz step: 2 n^2 (2k) flops per step as matrix
    products, about 4 s for k = 200 at n = 10,000 on 2 cores, against a minute for the full
    decomposition.  The Ritz pairs are the best approximations in the subspace found; the fast
    scan, which uses them, calibrates what they miss through its variance ratio.
    """
    n = matrix.shape[0]
    k = min(k, n)
    if n <= EXACT_TOP_MAX_N:
        return scipy.linalg.eigh(matrix, subset_by_index=[n - k, n - 1], check_finite=False)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(matrix @ rng.standard_normal((n, min(2 * k, n))))
    for _ in range(iterations):
        q, _ = np.linalg.qr(matrix @ q)
    values, small = np.linalg.eigh(q.T @ matrix @ q)
    return values[-k:], q @ small[:, -k:]
