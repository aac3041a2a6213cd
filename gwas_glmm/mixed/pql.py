"""Penalized quasi-likelihood with average-information REML (AI-REML) for models whose random
effects are known covariance matrices: g = sum_k g_k, g_k ~ N(0, tau_k K_k) (GMMAT's and SAIGE's
null-model fit; a GRM, or a lineage plus a spatial covariance).

Each outer step linearizes the GLMM at the current mean: working response
y~ = eta - offset + (y - mu) / mu'(eta) and weights W = mu'^2 / V(mu); the working model is the
LMM y~ ~ N(X beta, Sigma), Sigma = phi W^-1 + sum_k tau_k K_k (phi = 1 except Gaussian), whose
variance components take one AI-REML (Fisher-scoring-like) step:

    score_k = (y~' P K_k P y~ - tr(P K_k)) / 2,   AI_kl = y~' P K_k P K_l P y~ / 2,
    P = Sigma^-1 - Sigma^-1 X (X' Sigma^-1 X)^-1 X' Sigma^-1,

then beta (GLS) and the BLUPs g_k = tau_k K_k P y~ update eta.  Dense, per step: a Cholesky
factorisation of Sigma before the AI step and one after it (n^3 / 3 flops each), and the traces
tr(Sigma^-1 K) from the diagonal of Sigma^-1 (n^3 / 3, :meth:`DenseSigma.component_traces`);
n^2 memory per matrix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse

from .._validation import check_full_rank
from ..exceptions import ConvergenceWarning, InputError
from .family import Family, get_family
from .laplace import glm_start
from .results import GlmmResult, VarianceComponent
from .terms import unique_names


@dataclass
class WorkingModel:
    """The converged working LMM: what a score test needs."""

    eta: np.ndarray
    mu: np.ndarray
    w: np.ndarray  # working weights
    y_work: np.ndarray
    sigma_inv_x: np.ndarray  # Sigma^-1 X
    xt_sigma_inv_x_inv: np.ndarray  # (X' Sigma^-1 X)^-1
    py: np.ndarray  # P y~
    tau: np.ndarray
    phi: float
    sigma: object  # Sigma's factor: DenseSigma (.chol: lower Cholesky factor) or a block factor


class DenseSigma:
    """Sigma = phi W^-1 + sum_k tau_k K_k by one dense Cholesky factorisation (n^3 / 3 flops), on
    the threads :func:`gwas_glmm._threads.dense_plan` chooses: all of them when the CPUs are
    free, else independent one-thread pieces (:func:`gwas_glmm._blas.cholesky_in_pieces`)."""

    def __init__(self, w, phi, tau, mats):
        from .._blas import cholesky_in_pieces, cholesky_lower
        from .._threads import blas_threads, dense_plan

        self.w, self.phi, self.tau, self.mats = np.asarray(w, dtype=float), float(phi), np.asarray(tau), mats
        sigma = np.diag(phi / self.w)
        for t, k in zip(tau, mats):
            sigma += t * k
        self.plan = dense_plan(len(sigma), max_age=10.0)  # a fit's steps: probe at most every 10 s
        if self.plan.pieces > 1:
            factor = cholesky_in_pieces(sigma, self.plan.pieces)
        else:
            with blas_threads(self.plan.blas):
                factor = cholesky_lower(sigma)
        self.chol = (factor, True)

    def solve(self, m):
        return sla.cho_solve(self.chol, m, check_finite=False)

    def component_traces(self) -> list[float]:
        """tr(Sigma^-1 W^-1) and tr(Sigma^-1 K_k) for each k, the traces each AI-REML step needs.
        From the diagonal of Sigma^-1 alone (n^3 / 3 flops, :func:`gwas_glmm._blas.inverse_diagonal`)
        tr(Sigma^-1 W^-1) = sum_i (Sigma^-1)_ii / w_i, and with one K, since Sigma^-1 Sigma = I,
        tau tr(Sigma^-1 K) = n - phi tr(Sigma^-1 W^-1).  That difference loses digits as tau -> 0
        (below 1e-6 phi), and several K need more than the diagonal: Sigma^-1 explicitly
        (2 n^3 / 3 flops), each trace an elementwise sum.  Through n solves instead (2 n^3
        flops for each matrix) the AI-REML step cost 2.7 n^3 in all; it is now n^3."""
        from .._blas import inverse_diagonal

        n = len(self.w)
        factor = self.chol[0]
        scale = float(np.max(self.mats[0].diagonal())) if len(self.mats) == 1 else 0.0
        if len(self.mats) == 1 and self.tau[0] * scale > 1e-6 * self.phi:
            residual = float(np.sum(inverse_diagonal(factor, max(self.plan.blas, self.plan.pieces)) / self.w))
            return [residual, (n - self.phi * residual) / float(self.tau[0])]
        inverse, info = sla.lapack.dpotri(factor, lower=1)
        if info:
            raise np.linalg.LinAlgError(f"LAPACK dpotri failed (info {info})")
        inverse = np.tril(inverse) + np.tril(inverse, -1).T
        return [float(np.sum(np.diag(inverse) / self.w))] + [float(np.sum(inverse * k)) for k in self.mats]


def _solve_working(y_work, x, w, phi, tau, mats, covariance=None):
    """(Sigma's factor, Sigma^-1 X, (X' Sigma^-1 X)^-1, beta, P y~).  ``covariance(w, phi, tau)``
    factorises Sigma (default :class:`DenseSigma` of ``mats``; the sparse path's factorises it by
    blocks of related samples)."""
    sigma = DenseSigma(w, phi, tau, mats) if covariance is None else covariance(w, phi, tau)
    si_x = sigma.solve(x)
    si_y = sigma.solve(y_work)
    xsx = x.T @ si_x
    xsx_inv = np.linalg.inv(xsx)
    beta = xsx_inv @ (si_x.T @ y_work)
    py = si_y - si_x @ beta
    return sigma, si_x, xsx_inv, beta, py


def _p_apply(sigma, si_x, xsx_inv, m):
    """P @ m for a matrix or vector m."""
    return sigma.solve(m) - si_x @ (xsx_inv @ (si_x.T @ m))


def _trace_p(sigma, si_x, xsx_inv, c, trace_inv=None) -> float:
    """tr(P C) = tr(Sigma^-1 C) - tr((X' Sigma^-1 X)^-1 X' Sigma^-1 C Sigma^-1 X); ``trace_inv``:
    tr(Sigma^-1 C) when already known."""
    first = sigma.trace_inv(c) if trace_inv is None else trace_inv
    return first - float(np.sum(xsx_inv * (si_x.T @ (c @ si_x))))


def _nb_theta(fam, y, mu, weights) -> float:
    """ML estimate of the NB2 dispersion given the means (1-D, on log theta)."""
    from scipy import optimize

    def negll(log_t):
        fam.theta = float(np.exp(log_t))
        return -float(np.sum(fam.loglik(y, mu, weights)))

    res = optimize.minimize_scalar(negll, bounds=(-8.0, 12.0), method="bounded", options={"xatol": 1e-10})
    return float(np.exp(res.x))


def fit_pql(y, x, kinships: list, family: str | Family = "binomial", link: str | None = None, **options
            ) -> GlmmResult:
    """Fit by PQL/AI-REML.  ``kinships``: list of (name, K) with K an (n, n) array in the order
    of the observations (align a :class:`~gwas_glmm.kinship.Kinship` first).  ``options``:
    weights, offset, coef_names, tol (1e-6), max_iter (100), covariance (a factory
    ``(w, phi, tau) -> factor`` with ``solve`` and ``trace_inv``; default :class:`DenseSigma`,
    which gives the traces by ``component_traces`` instead: two n x n Cholesky factorisations and
    the diagonal of Sigma^-1 per iteration, on the threads or pieces that
    :func:`gwas_glmm._threads.dense_plan` chooses)."""
    from .._threads import fit_threads

    with fit_threads(len(y), len(y)):
        return _fit_pql(y, x, kinships, family, link, **options)


def _fit_pql(y, x, kinships: list, family: str | Family, link: str | None, *, weights=None, offset=None,
             coef_names=None, tol: float = 1e-6, max_iter: int = 100, covariance=None) -> GlmmResult:
    fam = get_family(family, link)
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n, p = x.shape
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    fam.check_y(y, weights, "response")
    check_full_rank(x, list(coef_names or [f"x{k}" for k in range(p)]))
    names = unique_names([k[0] for k in kinships])
    mats = [k[1] if scipy.sparse.issparse(k[1]) else np.asarray(k[1], dtype=float) for k in kinships]
    for name, k in zip(names, mats):
        if k.shape != (n, n):
            raise InputError(f"known covariance {name!r} is {k.shape[0]} x {k.shape[1]}, the data have {n} rows")
    gaussian = fam.has_scale
    if fam.has_theta:
        # negative binomial: theta by ML in the NB GLM without random effects, then held fixed.
        # Re-estimating it from means that include the BLUPs does not work: with one observation per
        # level the random effect has an observation-level part that absorbs the overdispersion
        # and theta runs off to infinity (the NB + OLRE identifiability problem).
        fam.theta = 1.0
        for _ in range(20):
            mu0 = fam.link.inverse(x @ glm_start(x, y, weights, offset, fam) + offset)
            old = fam.theta
            fam.theta = _nb_theta(fam, y, mu0, weights)
            if abs(np.log(fam.theta / old)) < 1e-8:
                break
    beta = glm_start(x, y, weights, offset, fam, names=coef_names)
    eta = x @ beta + offset
    mu = fam.clip_mu(fam.link.inverse(eta))
    resid_var = float(np.var(y - mu)) if gaussian else 1.0
    phi = resid_var / 2 if gaussian else 1.0
    tau = np.full(len(mats), (resid_var / 2 if gaussian else 0.5) / len(mats))
    converged = False
    iterations = 0
    prev_step, damping = None, 1.0
    for _ in range(max_iter):
        iterations += 1
        w_fisher, d = fam.irls_weights(eta, mu, weights)
        w = w_fisher if not gaussian else weights
        y_work = eta - offset + (y - mu) / d
        sigma, si_x, xsx_inv, beta_w, py = _solve_working(y_work, x, w, phi, tau, mats, covariance)
        # AI-REML step over (phi if Gaussian, tau_1..tau_K)
        residual = (scipy.sparse.diags(1.0 / w) if any(scipy.sparse.issparse(k) for k in mats)
                    else np.diag(1.0 / w))
        comps = ([residual] if gaussian else []) + mats
        pk_py = [c @ py for c in comps]
        p_kpy = [_p_apply(sigma, si_x, xsx_inv, v) for v in pk_py]
        score = np.empty(len(comps))
        ai = np.empty((len(comps), len(comps)))
        traces = sigma.component_traces() if isinstance(sigma, DenseSigma) else None
        if traces is not None and not gaussian:
            traces = traces[1:]
        for a, c in enumerate(comps):
            score[a] = 0.5 * (py @ pk_py[a] - _trace_p(sigma, si_x, xsx_inv, c, None if traces is None else traces[a]))
            for b in range(a + 1):
                ai[a, b] = ai[b, a] = 0.5 * pk_py[a] @ p_kpy[b]
        current = np.concatenate([[phi], tau]) if gaussian else tau.copy()
        step = np.linalg.solve(ai, score)
        if prev_step is not None and np.any(np.sign(step) * np.sign(prev_step) < 0):
            damping = max(damping / 2, 1 / 64)  # the steps oscillate (weakly identified tau): damp them
        else:
            damping = min(1.0, damping * 1.5)
        prev_step = step.copy()
        step = damping * step
        new = current + step
        scale = 1.0
        while np.any(new < 0) and scale > 1e-6:  # step-halving keeps the variances non-negative
            scale /= 2
            new = current + scale * step
        new = np.maximum(new, 0.0)
        if gaussian:
            phi, tau_new = float(new[0]), new[1:]
        else:
            tau_new = new
        sigma, si_x, xsx_inv, beta_new, py = _solve_working(y_work, x, w, phi, tau_new, mats, covariance)
        g = sum(t * (k @ py) for t, k in zip(tau_new, mats))
        eta = x @ beta_new + g + offset
        mu = fam.clip_mu(fam.link.inverse(eta))
        change = max(np.max(np.abs(tau_new - tau) / (np.abs(tau_new) + np.abs(tau) + tol)),
                     np.max(np.abs(beta_new - beta) / (np.abs(beta_new) + np.abs(beta) + tol)))
        tau, beta = tau_new, beta_new
        if change < tol:
            converged = True
            break
    if not converged:
        warnings.warn(f"PQL did not converge in {max_iter} iterations", ConvergenceWarning, stacklevel=2)
    w_fisher, d = fam.irls_weights(eta, mu, weights)
    w = w_fisher if not gaussian else weights
    y_work = eta - offset + (y - mu) / d
    sigma, si_x, xsx_inv, beta, py = _solve_working(y_work, x, w, phi, tau, mats, covariance)
    working = WorkingModel(eta, mu, w, y_work, si_x, xsx_inv, py, tau, phi, sigma)
    components = [VarianceComponent(name, ["(Intercept)"], np.array([[t]])) for name, t in zip(names, tau)]
    result = GlmmResult(
        family=fam.name, link=fam.link.name, method="PQL", coef_names=list(coef_names or [f"x{k}" for k in range(p)]),
        beta=beta, cov_beta=xsx_inv * (1.0 if not gaussian else 1.0), theta=np.sqrt(tau), components=components,
        loglik=float("nan"), n_params=p + len(tau) + (1 if gaussian or fam.has_theta else 0), n_obs=n,
        sigma=float(np.sqrt(phi)) if gaussian else None, dispersion=fam.theta if fam.has_theta else None,
        converged=converged, n_evaluations=iterations)
    result.random_effects = {name: (np.arange(n), (t * (k @ py))[:, None]) for name, t, k in zip(names, tau, mats)}
    result.extra.update(working=working, family_object=fam, x=x, offset=offset)
    try:  # SEs of the variance components from the last average-information matrix
        se = np.sqrt(np.clip(np.diag(np.linalg.inv(ai)), 0.0, None))
        result.extra["tau_se"] = se[1:] if gaussian else se
    except (np.linalg.LinAlgError, NameError):
        result.extra["tau_se"] = np.full(len(tau), np.nan)
    for name, t in zip(names, tau):
        if t < 1e-8 * (1 + np.max(tau)):
            msg = f"variance of {name!r} estimated at the boundary (0)"
            result.warnings.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    return result
