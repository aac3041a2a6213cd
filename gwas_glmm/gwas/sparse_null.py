"""The null GLMM on a sparse GRM of close relatives (fastGWA-GLMM's and SAIGE's sparse mode),
exact and O(N): Sigma = phi W^-1 + tau K_sparse is block diagonal by groups of related samples
(:mod:`gwas_glmm.kinship.components`).

* Gaussian traits: exact REML in K's eigenbasis, which is block diagonal too: each block is
  decomposed once (sum_b 9 s_b^3 flops) and every REML evaluation costs O(N p^2) after one
  O(nnz(U) p) rotation, exactly the dense eigenbasis path with a sparse U.
* Binomial, Poisson, negative binomial: PQL with AI-REML as on the dense path, Sigma factorised
  block by block each iteration and tr(P K) computed exactly from the blocks of Sigma^-1
  (O(sum_b s_b^3) per iteration instead of n^3).

The fitted model keeps Sigma^-1 as W^T W with W sparse block diagonal (``NullModel.whitener``),
so an exact score variance G^T P G costs O(nnz(W) + N p) per variant.  Memory: O(nnz(K) +
nnz(W) + N p).  Groups too large for dense blocks (kinship.sparse_chol) keep a sparse Cholesky
factor instead; Gaussian traits with such a group are fitted by AI-REML through the factors
(the same REML optimum) instead of the eigenbasis.

Principal components and other covariates enter X; there is no LOCO (close relatives share
few segments with a tested variant's chromosome; fastGWA and SAIGE's sparse mode do the same).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.sparse

from .._progress import get_logger
from ..kinship.components import BlockKinship
from ..mixed.lmm import EigenLmm
from ..mixed.pql import fit_pql
from .null import NullModel

log = get_logger("null")


def default_block_limit() -> float:
    """Bytes a group of relatives may use while factorised: half this machine's memory."""
    from ..sizing import total_memory

    total = total_memory()
    return 0.5 * total if total else float("inf")


def fit_null_sparse(y, x, matrix, family: str, *, iid, tol: float = 1e-6, offset=None, coef_names=None,
                    limit_bytes: float | None = None, source: str = "sparse GRM") -> NullModel:
    """Fit the null model with the sparse kinship ``matrix`` (rows in the order of ``y``)."""
    blocks = BlockKinship.of(matrix, limit_bytes=default_block_limit() if limit_bytes is None else limit_bytes,
                             source=source)
    summary = blocks.components.summary()
    log.info("%s: %s", source, summary)
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if blocks.large:
        log.info("%s: %d group(s) of %s samples factorised by sparse Cholesky (%s entries)", source,
                 len(blocks.large), ", ".join(str(f.size) for f in blocks.large),
                 ", ".join(str(f.nnz) for f in blocks.large))
    if family == "gaussian" and not blocks.large:
        model = _gaussian(y if offset is None else y - offset, x, blocks, source)
    else:
        model = _pql(y, x, blocks, family, tol=tol, offset=offset, coef_names=coef_names)
    model.iid = np.asarray(iid, dtype=object)
    model.status.update(groups=summary, largest_group=blocks.components.largest)
    return model


def _gaussian(y, x, blocks: BlockKinship, source: str) -> NullModel:
    values, vectors = blocks.eigen(source=source)
    lmm = EigenLmm(y, x, SimpleNamespace(values=values, vectors=vectors), np.arange(len(y)))
    log_delta, (_, beta, s_g, _) = lmm.fit(reml=True)
    delta = float(np.exp(log_delta))
    inv_d = 1.0 / (s_g * (values + delta))
    whitener = (scipy.sparse.diags(np.sqrt(inv_d)) @ vectors.T).tocsr()
    si_x = vectors @ (inv_d[:, None] * lmm.xt)
    xsx_inv = np.linalg.inv(x.T @ si_x)
    si_y = vectors @ (inv_d * lmm.yt)
    py = si_y - si_x @ (xsx_inv @ (x.T @ si_y))
    phi = s_g * delta
    n = len(y)
    # EigenLmm searches log(delta) in [-10, 10]: at the upper end tau is 0 for practical purposes
    boundary = bool(log_delta >= 10 - 1e-6)
    warnings = ["variance of 'grm' estimated at the boundary (0): the test is the linear model's"] if boundary else []
    return NullModel("gaussian", None, x, py, np.ones(n), y - phi * py, y, beta, float(s_g), float(phi),
                     si_x, xsx_inv, whitener=whitener,
                     status={"method": "REML (eigenbasis of the sparse GRM's blocks)",
                             "converged": bool(-10 + 1e-6 < log_delta) and not boundary, "boundary": boundary,
                             "log_delta": float(log_delta), "warnings": warnings})


def _pql(y, x, blocks: BlockKinship, family: str, *, tol, offset, coef_names) -> NullModel:
    fit = fit_pql(y, x, [("grm", blocks.matrix)], family=family, tol=tol, offset=offset, coef_names=coef_names,
                  covariance=lambda w, phi, tau: blocks.factor(phi / w, tau[0]))
    wm = fit.extra["working"]
    tau = float(wm.tau[0])
    method = "REML (AI-REML, sparse GRM by blocks" if family == "gaussian" else "PQL/AI-REML (sparse GRM, by blocks"
    method += "; sparse Cholesky for the largest groups)" if blocks.large else ")"
    status = {"method": method, "converged": fit.converged,
              "iterations": fit.n_evaluations, "tau_se": float(fit.extra["tau_se"][0]), "boundary": bool(tau <= 0),
              "warnings": fit.warnings}
    return NullModel(family, None, x, wm.py, wm.w, wm.mu, y, fit.beta, tau, float(wm.phi), wm.sigma_inv_x,
                     wm.xt_sigma_inv_x_inv, whitener=wm.sigma.whitener, chol_parts=wm.sigma.large, status=status,
                     dispersion=fit.dispersion,
                     y_work=wm.y_work, offset=offset)
