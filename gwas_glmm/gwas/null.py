"""The GWAS null model: the GLMM without the tested variant, fitted once, holding exactly what a
score test needs.

For a variant's genotypes G (covariate-free alternative), the score and its variance are

    U = G^T P y~,    V = G^T P G,    P = Sigma^-1 - Sigma^-1 X (X^T Sigma^-1 X)^-1 X^T Sigma^-1

with Sigma the working covariance at the null fit (phi W^-1 + tau K) and y~ the working
response (GMMAT's formulation; P y~ = (y - mu) / phi for canonical links).  Sigma^-1 is applied
through K's stored eigendecomposition when W is constant (Gaussian: Sigma = U diag(d) U^T,
d = s_g (s + delta)), otherwise through a Cholesky factor of Sigma (PQL fits).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from .._blas import solve_lower
from ..exceptions import InputError
from ..kinship import Kinship
from ..mixed import KnownCovTerm, fit_glmm
from ..mixed.pql import fit_pql


@dataclass
class NullModel:
    """Everything the scan needs, and nothing else."""

    family: str
    iid: np.ndarray
    x: np.ndarray  # (n, p) covariates incl. intercept
    py: np.ndarray  # P y~ (the score residual)
    w: np.ndarray  # working weights at the null (1 for Gaussian)
    mu: np.ndarray  # fitted means (with random effects)
    y: np.ndarray
    beta: np.ndarray
    tau: float  # genetic variance (latent scale)
    phi: float  # residual/dispersion (1 for binomial/Poisson)
    sigma_inv_x: np.ndarray  # Sigma^-1 X
    xsx_inv: np.ndarray  # (X^T Sigma^-1 X)^-1
    # Sigma^-1 through either the eigenbasis (vectors, 1/d) or a lower Cholesky factor of Sigma
    eig_vectors: np.ndarray | None = None
    eig_inv_d: np.ndarray | None = None
    chol: np.ndarray | None = None
    status: dict = field(default_factory=dict)
    dispersion: float | None = None  # negative binomial theta
    y_work: np.ndarray | None = None  # PQL working response y~ (Gaussian: y itself)
    offset: np.ndarray | None = None  # on the link scale (None: 0)
    loco: dict = field(default_factory=dict)  # chromosome -> loco.LocoPart
    index: np.ndarray | None = None  # positions of its samples among the file's (None: all of them)
    # Gaussian nulls fitted by Cholesky: the kinship's top FAST_RANK eigenpairs for the fast mode,
    # as 1/d = 1/(tau s + phi) and (k, n) vectors, and 1/d at the mean of the other eigenvalues
    fast_vectors: np.ndarray | None = None
    fast_inv_d: np.ndarray | None = None
    fast_rest: float | None = None
    # eigen-directions the fast mode keeps exactly (chosen on the calibration variants by
    # score.choose_fast_rank; None: not chosen yet)
    fast_rank: int | None = None
    # a null on a sparse GRM (gwas.sparse_null): Sigma^-1 = W^T W with W this sparse block-diagonal matrix
    whitener: object | None = None
    # ... and its groups too large for dense blocks: kinship.sparse_chol.SparseCholesky factors (their
    # rows of W are empty)
    chol_parts: list = field(default_factory=list)

    @property
    def is_sparse(self) -> bool:
        return self.whitener is not None

    def rows(self, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The rows of ``a`` (one per sample of the null file) that belong to this model's samples.
        A Fortran-order block (the scan's genotypes, variants in columns) stays one, gathered
        column by column, into ``out`` if given (C order, variants x samples: a buffer the caller
        reuses, whose pages are touched already).  ``a[index]`` walks such a block row by row
        across the columns; with the copy back to Fortran order it took 2.1 s for 1,024 variants
        at n = 100,000, against 0.3 s gathered into a new array and 0.07 s into a reused one."""
        if self.index is None:
            return a
        if a.ndim == 2 and a.flags.f_contiguous and not a.flags.c_contiguous:
            return np.take(a.T, self.index, axis=1, out=out, mode="clip" if out is not None else "raise").T
        return a[self.index]

    def square(self, k: np.ndarray) -> np.ndarray:
        """This model's samples' block of an (n_file, n_file) matrix."""
        return k if self.index is None else k[np.ix_(self.index, self.index)]

    @property
    def working_response(self) -> np.ndarray:
        return self.y if self.y_work is None else self.y_work

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def h2(self) -> float:
        """Latent-scale heritability tau / (tau + phi) (phi = pi^2/3 for logit, 1 otherwise)."""
        resid = np.pi**2 / 3 if self.family == "binomial" else self.phi
        return self.tau / (self.tau + resid) if self.tau + resid > 0 else 0.0

    def top_vectors(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(the last k eigenvectors as a contiguous (k, n) array, their 1/d), cached: the fast
        mode multiplies every block by them, and a strided column slice of the n x n vectors
        would be copied each time."""
        if self.eig_vectors is None:
            return self.fast_vectors[-k:], self.fast_inv_d[-k:]
        cache = self.__dict__.setdefault("_top_cache", {})
        found = cache.get(k)
        if found is None:  # one assignment of a complete tuple: safe when blocks run on threads
            found = cache[k] = (np.ascontiguousarray(self.eig_vectors[:, -k:].T), self.eig_inv_d[-k:].copy())
        return found

    def sigma_inv(self, g: np.ndarray) -> np.ndarray:
        """Sigma^-1 @ g for an (n, m) block."""
        if self.whitener is not None:
            out = np.asarray(self.whitener.T @ (self.whitener @ g))
            for part in self.chol_parts:
                part.solve_into(g, out)
            return out
        if self.eig_vectors is not None:
            return self.eig_vectors @ (self.eig_inv_d[:, None] * (self.eig_vectors.T @ g))
        return sla.cho_solve((self.chol, True), g, check_finite=False)

    def whiten(self, g: np.ndarray) -> np.ndarray:
        """L^-1 g with Sigma = L L^T, so that g^T Sigma^-1 g = |L^-1 g|^2 (one matrix product)."""
        if self.whitener is not None:
            out = np.asarray(self.whitener @ g)
            for part in self.chol_parts:
                part.whiten_into(g, out)
            return out
        if self.eig_vectors is not None:
            return np.sqrt(self.eig_inv_d)[:, None] * (self.eig_vectors.T @ g)
        return solve_lower(self.chol, g)  # releases the GIL: scan workers solve in parallel


def fit_null(y, x, kinship: Kinship | dict[str, Kinship], family: str = "gaussian", *, iid=None,
             tol: float = 1e-6, offset=None, eigen: bool = True, coef_names=None, sparse: bool = False,
             block_memory: float | None = None) -> NullModel:
    """Fit the null GLMM with the kinship as a known-covariance random effect.  ``y``/``x`` rows
    follow ``iid`` (default: the kinship's order); the kinship is aligned to them.  ``offset``:
    a known term on the link scale (e.g. log exposure for counts).  ``coef_names``: the columns'
    names (the user's covariates), for messages about collinearity and separation.

    Gaussian traits: exact REML in the kinship's eigenbasis (decomposed here if the kinship has no
    decomposition for these samples), or with ``eigen=False`` REML by AI-REML with two Cholesky
    factorisations per iteration and the diagonal of Sigma^-1 for the traces (n^3 flops in all:
    5 to 10 iterations cost about one 9 n^3 decomposition, which is then reused by every
    phenotype, so this route is for when no decomposition is wanted).

    Several known covariances (``kinship`` a dict name -> Kinship, e.g. a GRM and a household or
    spatial matrix): Sigma = phi W^-1 + sum_j tau_j K_j, fitted by PQL/AI-REML (AI-REML for
    Gaussian traits) and applied through its Cholesky factor; ``tau`` is the first one's, all of
    them are in ``status["tau_all"]``, and the fast mode of a Gaussian trait uses the top
    eigenpairs of sum_j tau_j K_j.  LOCO applies to a single GRM only.

    ``sparse``: a sparse kinship (e.g. a sparse GRM of close relatives) fitted by blocks of related
    samples, O(N) (:mod:`gwas.sparse_null`; ``block_memory``: the bytes its largest block may use).
    Without it a sparse kinship is made dense: the same model, the reference the tests compare to."""
    named = isinstance(kinship, dict)
    kinships = kinship if named else {"grm": kinship}
    if not kinships:
        raise InputError("fit_null: give at least one known covariance")
    y = np.asarray(y, dtype=float)
    offset = None if offset is None or not np.any(offset) else np.asarray(offset, dtype=float)
    x = np.asarray(x, dtype=float)
    n = len(y)
    iid = np.asarray(next(iter(kinships.values())).iid if iid is None else iid, dtype=object)
    if len(iid) != n or x.shape[0] != n:
        raise InputError(f"the phenotype has {n} samples, covariates {x.shape[0]}, IDs {len(iid)}")
    aligned = {name: kin.align(_fids_for(kin, iid), iid, source=f"known covariance {name!r}" if named else None)
               for name, kin in kinships.items()}
    if sparse:
        if len(aligned) != 1 or not next(iter(aligned.values())).is_sparse:
            raise InputError("the sparse null model takes exactly one sparse kinship (a sparse GRM)")
        from .sparse_null import fit_null_sparse

        [kin] = aligned.values()
        return fit_null_sparse(y, x, kin.matrix, family, iid=iid, tol=tol, offset=offset, coef_names=coef_names,
                               limit_bytes=block_memory, source=kin.meta.get("source", "sparse GRM"))
    if family == "gaussian" and eigen and len(aligned) == 1:
        [(name, kin)] = aligned.items()
        kin = kin.decompose()
        if offset is not None:  # identity link: the offset shifts the response
            y = y - offset
        fit = fit_glmm(y, x, [KnownCovTerm.from_kinship(name, iid, kin)], method="REML", coef_names=coef_names)
        if not fit.extra.get("eigen_path"):
            raise InputError("internal: the Gaussian null did not take the eigenbasis path")
        delta = fit.extra["delta"]
        s_g = fit.components[0].covariance[0, 0]
        d = s_g * (kin.eigen.values + delta)
        vecs = kin.eigen.vectors
        inv_d = 1.0 / d
        si_x = vecs @ (inv_d[:, None] * (vecs.T @ x))
        xsx_inv = np.linalg.inv(x.T @ si_x)
        si_y = vecs @ (inv_d * (vecs.T @ y))
        py = si_y - si_x @ (xsx_inv @ (x.T @ si_y))
        mu = y - fit.sigma**2 * py
        return NullModel("gaussian", iid, x, py, np.ones(n), mu, y, fit.beta, float(s_g), float(fit.sigma**2),
                         si_x, xsx_inv, eig_vectors=vecs, eig_inv_d=inv_d,
                         status={"method": "REML (eigenbasis)", "converged": fit.converged, "warnings": fit.warnings})
    mats = [(name, kin.matrix.toarray() if kin.is_sparse else np.asarray(kin.matrix, dtype=float))
            for name, kin in aligned.items()]
    return _fit_null_pql(y, x, mats, family, iid=iid, tol=tol, offset=offset, coef_names=coef_names)


def _fit_null_pql(y, x, mats: list, family: str, *, iid, tol: float, offset, coef_names=None) -> NullModel:
    """PQL/AI-REML (AI-REML for Gaussian traits) with Sigma = phi W^-1 + sum_j tau_j K_j applied
    through the fit's own Cholesky factor."""
    fit = fit_pql(y, x, mats, family=family, tol=tol, offset=offset, coef_names=coef_names)
    wm = fit.extra["working"]
    taus = [float(t) for t in wm.tau]
    fast = _fast_directions(sum(t * m for t, (_, m) in zip(taus, mats)), float(wm.phi)) if family == "gaussian" else {}
    status = {"method": "REML (AI-REML, Cholesky)" if family == "gaussian" else "PQL/AI-REML",
              "converged": fit.converged, "iterations": fit.n_evaluations,
              "tau_se": float(fit.extra["tau_se"][0]), "boundary": bool(taus[0] <= 0), "warnings": fit.warnings}
    if len(mats) > 1:
        status.update(components=[name for name, _ in mats], tau_all=taus)
    chol = np.tril(wm.sigma.chol[0])  # the fit's own factor of Sigma, upper triangle cleared for storage
    return NullModel(family, iid, x, wm.py, wm.w, wm.mu, y, fit.beta, taus[0], float(wm.phi), wm.sigma_inv_x,
                     wm.xt_sigma_inv_x_inv, chol=chol, status=status, dispersion=fit.dispersion, y_work=wm.y_work,
                     offset=offset, **fast)


FAST_RANK = 200  # eigen-directions the fast mode of Gaussian nulls may keep exactly (at most)


def _fast_directions(genetic: np.ndarray, phi: float) -> dict:
    """The fast mode's top directions for a Gaussian null without a full eigendecomposition:
    the top ``FAST_RANK`` eigenpairs of the random effects' covariance sum_j tau_j K_j
    (:func:`~gwas_glmm.kinship.eigen.top_eigen`), as 1/d with d = s + phi, and 1/d at the mean of
    the other eigenvalues, from the trace (a constant the variance ratio rescales anyway)."""
    from ..kinship.eigen import top_eigen

    k = min(FAST_RANK, len(genetic) - 1)
    values, vectors = top_eigen(genetic, k)
    rest = (np.trace(genetic) - values.sum()) / max(len(genetic) - k, 1)
    return {"fast_vectors": np.ascontiguousarray(vectors.T), "fast_inv_d": 1.0 / (values + phi),
            "fast_rest": float(1.0 / (max(rest, 0.0) + phi))}


def _fids_for(kinship: Kinship, iid) -> np.ndarray:
    lookup = {str(i): f for f, i in zip(kinship.fid, kinship.iid)}
    return np.array([lookup.get(str(i), "?") for i in iid], dtype=object)
