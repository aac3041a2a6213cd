"""Non-Gaussian GLMMs by the Laplace approximation (a true ML fit: AIC/BIC compare across
families).  For given (theta, beta), penalized iteratively reweighted least squares (PIRLS)
finds the conditional mode u* of the spherical random effects; the Laplace deviance is

    -2 log L(theta, beta) ~= -2 sum_i log p(y_i | u*) + ||u*||^2 + log|A^T W A + I|

(W the observed information -d^2 log p / d eta^2 at u*: the exact Laplace approximation, as
glmmTMB; for canonical links it equals lme4's Fisher weights, lme4's nAGQ = 1 objective), minimised over (theta, beta) and, for
the negative binomial, log(theta_NB).  Cost per evaluation: a few PLS factorisations.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ConvergenceWarning
from ._pls import factorize, solve_pls
from .family import Family

BAD_DEVIANCE = 1e100  # what an objective returns where the inner iteration fails: the step is rejected


def conditional_deviance(family: Family, y, mu, weights, constant: float | None = None) -> float:
    """-2 log p(y | u); ``constant`` is the sum of the family's mu-free terms, if known."""
    if constant is None:
        constant = float(np.sum(family.loglik_constant(y, weights)))
    return -2.0 * (float(np.sum(family.loglik_kernel(y, mu, weights))) + constant)


def pirls(terms, theta, a, eta_fixed, y, weights, family: Family, u0, *, x=None, beta0=None,
          tol=1e-12, max_iter=100, constant: float | None = None):
    """Conditional mode of u at fixed beta (``eta_fixed = offset + X beta``), or with ``x`` and
    ``beta0`` the joint mode of (u, beta) (``eta_fixed`` is then the offset; lme4's nAGQ = 0).
    Returns (laplace deviance, u, beta or None, mu, factor, converged)."""
    u = np.array(u0, dtype=float)
    if constant is None:
        constant = float(np.sum(family.loglik_constant(y, weights)))
    joint = x is not None
    beta = np.array(beta0, dtype=float) if joint else None

    def penalized(u, beta):
        eta = eta_fixed + np.asarray(a @ u) + (x @ beta if joint else 0.0)
        mu = family.clip_mu(family.link.inverse(eta))
        return conditional_deviance(family, y, mu, weights, constant) + u @ u, eta, mu

    old, eta, mu = penalized(u, beta)
    converged = False
    for _ in range(max_iter):
        # Newton steps (observed information) converge quadratically to the mode; Fisher
        # scoring where the observed information is not positive (far from the mode).
        w_fisher, d = family.irls_weights(eta, mu, weights)
        w = family.observed_weights(y, eta, mu, weights)
        if not np.all(w > 0):
            w = w_fisher
        # working response for the Newton step: score / weight
        z = (eta - eta_fixed) + w_fisher * (y - mu) / (d * w)
        factor = factorize(terms, theta, a, w)
        if joint:
            sol = solve_pls(terms, theta, a, x, z, w, factor)
            target_u, target_b = sol.u, sol.beta
        else:
            target_u = factor.solve_lt(factor.solve_l(np.asarray(a.T @ (w * z))))
            target_b = None
        step, new = 1.0, np.inf
        while step > 1e-10:
            cand_u = u + step * (target_u - u)
            cand_b = beta + step * (target_b - beta) if joint else None
            new, eta_c, mu_c = penalized(cand_u, cand_b)
            if new <= old + 1e-12 * abs(old):
                break
            step /= 2
        if new > old + 1e-12 * abs(old):  # no decrease possible: at the mode to rounding
            converged = True
            break
        change = old - new
        u, beta, old, eta, mu = cand_u, cand_b, new, eta_c, mu_c
        if change < tol * (abs(new) + 1.0):
            converged = True
            break
    factor = factorize(terms, theta, a, family.observed_weights(y, eta, mu, weights))
    return old + factor.logdet, u, beta, mu, factor, converged


def glm_start(x, y, weights, offset, family: Family, max_iter: int = 50, names=None, what: str = "the response"):
    """Fixed-effects-only IRLS: starting values for beta.  For a binomial response whose fitted
    probabilities reach 0 or 1 (what separation does to IRLS), the separation check runs (a
    linear programme) and raises, naming the separating columns of ``names``."""
    mu = family.start_mu(y, weights)
    eta = family.link.link(mu)
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        w, d = family.irls_weights(eta, mu, weights)
        z = eta - offset + (y - mu) / d
        xtw = x.T * w
        new = np.linalg.solve(xtw @ x, xtw @ z)
        eta = x @ new + offset
        mu = family.clip_mu(family.link.inverse(eta))
        if np.max(np.abs(new - beta)) < 1e-10:
            beta = new
            break
        beta = new
    if family.name == "binomial" and np.min(np.minimum(mu, 1 - mu)) < 1e-7:
        from .._validation import check_separation

        check_separation(x, y, names if names is not None else [f"x{j}" for j in range(x.shape[1])], what)
    return beta


__all__ = ["ConvergenceWarning", "conditional_deviance", "glm_start", "pirls"]


def agq_deviance(term, theta, eta_fixed, y, weights, family: Family, u_mode, factor, n_nodes: int) -> float:
    """Adaptive Gauss-Hermite quadrature for one scalar grouping term: each group's integral
    over its random effect, centred at the conditional mode with the Laplace scale
    (1 / sqrt of the curvature), with ``n_nodes`` nodes.  n_nodes = 1 is the Laplace deviance.
    Cost: n_nodes evaluations of the conditional log-likelihood."""
    nodes, wts = np.polynomial.hermite.hermgauss(n_nodes)
    scale = 1.0 / np.asarray(factor.l).reshape(-1)  # per level: the Laplace SD of u
    v = term.x[:, 0] * term.factor(theta)[0, 0]
    n_levels = len(term.levels)
    logs = np.empty((n_nodes, n_levels))
    for k, (z, w) in enumerate(zip(nodes, wts)):
        u = u_mode + np.sqrt(2.0) * scale * z
        mu = family.clip_mu(family.link.inverse(eta_fixed + v * u[term.codes]))
        ll = np.bincount(term.codes, family.loglik(y, mu, weights), minlength=n_levels)
        logs[k] = ll - 0.5 * u * u + z * z + np.log(w)
    top = logs.max(axis=0)
    log_int = top + np.log(np.exp(logs - top).sum(axis=0)) + np.log(scale) - 0.5 * np.log(np.pi)
    return -2.0 * float(log_int.sum())


FAST_CODES = {("poisson", "log"): 0, ("binomial", "logit"): 1, ("negbin", "log"): 2}


def fast_path_code(terms, family: Family) -> int | None:
    """The numba PIRLS applies to one scalar grouping term and a canonical count/binary model."""
    from .terms import GroupTerm

    if len(terms.terms) != 1 or not isinstance(terms.terms[0], GroupTerm) or terms.terms[0].p != 1:
        return None
    return FAST_CODES.get((family.name, family.link.name))


def pirls_fast(code: int, term, theta, eta_fixed, y, weights, family: Family, u0, constant: float,
               tol=1e-12, max_iter=100, x=None):
    """The Laplace deviance and mode from the fused kernel (same value as :func:`pirls`).  With
    ``x`` (the fixed-effects design) also the deviance's gradient with respect to (theta, beta,
    log NB theta), two more passes over the data: returns (deviance, u, converged, gradient)."""
    import numba

    from ._pirls_numba import laplace_gradient, pirls_scalar

    z = term.x[:, 0]
    v = z * float(theta[0])
    nb = float(getattr(family, "theta", 1.0))
    eta_fixed = np.ascontiguousarray(eta_fixed, dtype=np.float64)
    pen, u, logdet, ok = pirls_scalar(code, eta_fixed, v, term.codes, len(term.levels), y, weights, nb,
                                      np.asarray(u0, dtype=np.float64), tol, max_iter, numba.get_num_threads())
    if x is None:
        return pen - 2.0 * constant + logdet, u, ok
    grad = laplace_gradient(code, eta_fixed, np.ascontiguousarray(z, dtype=np.float64), float(theta[0]), term.codes,
                            len(term.levels), u, y, weights, nb, np.ascontiguousarray(x, dtype=np.float64),
                            numba.get_num_threads())
    return pen - 2.0 * constant + logdet, u, ok, grad


class SparsePirls:
    """The Laplace deviance (and its gradient) of several grouping terms for a canonical
    count/binary family: the numba PIRLS on the sparse factor of ``_sparse_pls``, whose pattern
    is analysed once per model.  The mode is carried between evaluations in ``state["u_int"]``
    (the factor's column order) and published in the model's order as ``state["u"]``."""

    def __init__(self, pattern, code: int, y, weights, family: Family, constant: float):
        self.pattern, self.code, self.family, self.constant = pattern, code, family, constant
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)

    def deviance(self, theta, eta_fixed, state, x=None, tol=1e-12, max_iter=100):
        """The deviance, or with ``x`` (deviance, gradient in (theta, beta, log NB theta));
        BAD_DEVIANCE where the step reaches weights that overflow."""
        from . import _sparse_numba as k

        pt = self.pattern
        state["evals"] = state.get("evals", 0) + 1
        nb = float(getattr(self.family, "theta", 1.0))
        vals = pt.values(theta)
        eta_fixed = np.ascontiguousarray(eta_fixed, dtype=np.float64)
        u0 = state.get("u_int")
        u0 = np.zeros(pt.q) if u0 is None else u0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pen, u, logdet, _, ok = k.pirls(self.code, eta_fixed, vals, *pt.structure(), self.y, self.weights, nb,
                                            u0, tol, max_iter)
            dev = pen - 2.0 * self.constant + logdet
            if not (ok and np.isfinite(dev)):
                return BAD_DEVIANCE if x is None else (BAD_DEVIANCE, np.zeros(pt.terms.n_theta + x.shape[1] + 1))
            state["u_int"], state["u"] = u, pt.to_model(u)
            if x is None:
                return dev
            grad = k.laplace_gradient(self.code, eta_fixed, vals, *pt.structure(), self.y, self.weights, nb, u,
                                      pt.xr, pt.theta_slot, pt.theta_xcol, np.ascontiguousarray(x, dtype=np.float64))
        if not np.all(np.isfinite(grad)):
            return BAD_DEVIANCE, np.zeros(len(grad))
        return dev, grad


def sparse_path(terms, family: Family, y, weights, constant: float) -> SparsePirls | None:
    """The sparse numba PIRLS applies to grouping terms only, beyond one scalar term (which has
    its own fused kernel), for the families of FAST_CODES."""
    from ._sparse_pls import pattern_for

    code = FAST_CODES.get((family.name, family.link.name))
    if code is None:
        return None
    pattern = pattern_for(terms)
    return None if pattern is None else SparsePirls(pattern, code, y, weights, family, constant)


def agq_fast(code: int, term, theta, eta_fixed, y, weights, family: Family, u0, constant: float, n_nodes: int,
             x, tol=1e-12, max_iter=100):
    """The AGQ deviance of :func:`agq_deviance` and its exact gradient in (theta, beta, log NB
    theta) for the families of FAST_CODES: the mode from the fused PIRLS kernel, the quadrature
    in ``_agq_numba``.  Returns (deviance, u, gradient)."""
    from ._agq_numba import agq_deviance as kernel

    eta_fixed = np.ascontiguousarray(eta_fixed, dtype=np.float64)
    _, u, _ = pirls_fast(code, term, theta, eta_fixed, y, weights, family, u0, constant, tol=tol, max_iter=max_iter)
    nodes, node_weights = np.polynomial.hermite.hermgauss(n_nodes)
    dev, grad = kernel(code, eta_fixed, np.ascontiguousarray(term.x[:, 0], dtype=np.float64), float(theta[0]),
                       term.codes, len(term.levels), u, y, weights, float(getattr(family, "theta", 1.0)),
                       np.ascontiguousarray(x, dtype=np.float64), nodes, node_weights, True)
    return dev - 2.0 * constant, u, grad


def known_cov_path(terms, family: Family) -> bool:
    """A single known-covariance term: the Laplace fit runs in observation space (below)."""
    from .terms import KnownCovTerm

    return len(terms.terms) == 1 and isinstance(terms.terms[0], KnownCovTerm)


def pirls_known(term, theta, eta_fixed, y, weights, family: Family, a0, constant: float, tol=1e-12, max_iter=100,
                x=None):
    """The Laplace deviance for one known-covariance term, f = b ~ N(0, Sigma), Sigma = theta^2 K_obs,
    by Newton steps in observation space (Rasmussen & Williams, Gaussian Processes for Machine
    Learning, algorithm 3.1): B = I + W^1/2 Sigma W^1/2 is factorised (n^3/3 flops), never
    A^T W A (2 n^3).  The value equals :func:`pirls`'s: ||u||^2 = a^T Sigma a with f = Sigma a, and
    log|A^T W A + I| = log|B| (Sylvester).  Returns (deviance, a, u, converged); u = theta C^T a
    in the term's own parameterisation.  With ``x`` (the fixed-effects design) also the gradient
    in (theta, beta) (:func:`_known_gradient`, n^3 more flops), as a fifth element."""
    import scipy.linalg as sla

    k_obs = term.obs_covariance
    sigma = float(theta[0]) ** 2 * k_obs
    a = np.zeros(len(y)) if a0 is None else np.array(a0, dtype=float)
    f = sigma @ a

    def b_factor(sw):
        """Lower Cholesky factor of B = I + W^1/2 Sigma W^1/2 (symmetric, so its .T is F order)."""
        bmat = sw[:, None] * sigma * sw[None, :]
        bmat[np.diag_indices_from(bmat)] += 1.0
        return sla.cholesky(bmat.T, lower=True, overwrite_a=True, check_finite=False)

    def penalized(a_c, f_c):
        mu_c = family.clip_mu(family.link.inverse(eta_fixed + f_c))
        return conditional_deviance(family, y, mu_c, weights, constant) + float(a_c @ f_c), mu_c

    old, mu = penalized(a, f)
    converged = False
    for _ in range(max_iter):
        eta = eta_fixed + f
        w_fisher, d = family.irls_weights(eta, mu, weights)
        w = family.observed_weights(y, eta, mu, weights)
        if not np.all(w > 0):
            w = w_fisher
        score = w_fisher * (y - mu) / d
        sw = np.sqrt(w)
        chol = (b_factor(sw), True)
        rhs = w * f + score
        target = rhs - sw * sla.cho_solve(chol, sw * (sigma @ rhs), check_finite=False)
        step, new = 1.0, np.inf
        while step > 1e-10:
            a_c = a + step * (target - a)
            f_c = sigma @ a_c
            new, mu_c = penalized(a_c, f_c)
            if new <= old + 1e-12 * abs(old):
                break
            step /= 2
        if new > old + 1e-12 * abs(old):
            converged = True
            break
        change = old - new
        a, f, old, mu = a_c, f_c, new, mu_c
        if change < tol * (abs(new) + 1.0):
            converged = True
            break
    eta = eta_fixed + f
    w = family.observed_weights(y, eta, mu, weights)
    if not np.all(w > 0):
        w = family.irls_weights(eta, mu, weights)[0]
    chol = b_factor(np.sqrt(w))
    logdet = 2.0 * float(np.log(np.diag(chol)).sum())
    u = float(theta[0]) * (term.chol[term.codes].T @ a)
    if x is None:
        return old + logdet, a, u, converged
    w_fisher, d = family.irls_weights(eta, mu, weights)
    grad = _known_gradient(float(theta[0]), sigma, chol, w, _weight_slope(family, y, eta, weights),
                           w_fisher * (y - mu) / d, a, f, x)
    return old + logdet, a, u, converged, grad


def _weight_slope(family: Family, y, eta, weights, h: float = 1e-5):
    """dW/deta per observation, W the observed information, by central differences of the
    family's own (clipped) weights: an O(n) elementwise derivative, accurate to ~h^2."""
    def weight(e):
        return family.observed_weights(y, e, family.clip_mu(family.link.inverse(e)), weights)

    return (weight(eta + h) - weight(eta - h)) / (2 * h)


def _known_gradient(scale, sigma, chol, w, w_slope, score, a, f, x):
    """Gradient of the Laplace deviance D = -2 sum l_i + a^T Sigma a + log|I + Sigma W| in
    (theta, beta) at the mode f = Sigma a (a = the score there), Sigma = theta^2 K:

    * the penalized part by the envelope theorem: -2 X^T s for beta and -(2/theta) a^T f for theta;
    * log|I + Sigma W|: directly (2/theta) sum W_i C_ii for theta, and through W,
      sum_i C_ii W'_i d eta_i, with C = (Sigma^-1 + W)^-1, d eta / d beta = (I + Sigma W)^-1 X and
      d eta / d theta = (2/theta) (I + Sigma W)^-1 f (the mode's own movement included).

    diag C = diag Sigma - column sums of V^2, V = L^-1 W^1/2 Sigma (B = L L^T): one triangular
    solve with n right-hand sides, n^3 flops."""
    import scipy.linalg as sla

    sw = np.sqrt(w)
    v = sla.solve_triangular(chol, sw[:, None] * sigma, lower=True, check_finite=False)
    diag_c = np.diag(sigma) - np.einsum("ij,ij->j", v, v)

    def solve_i_sigma_w(r):  # (I + Sigma W)^-1 r = r - Sigma W^1/2 B^-1 W^1/2 r, r a vector or columns
        s = sw[:, None] if r.ndim == 2 else sw
        return r - sigma @ (s * sla.cho_solve((chol, True), s * r, check_finite=False))

    slope = diag_c * w_slope
    grad_beta = -2.0 * x.T @ score + slope @ solve_i_sigma_w(x)
    if scale <= 0:
        return np.concatenate([[0.0], grad_beta])  # D is even in theta: flat at 0
    grad_theta = (-2.0 * float(a @ f) + 2.0 * float(w @ diag_c) + 2.0 * float(slope @ solve_i_sigma_w(f))) / scale
    return np.concatenate([[grad_theta], grad_beta])
