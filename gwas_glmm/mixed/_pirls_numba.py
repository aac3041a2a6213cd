"""numba kernel: PIRLS and the Laplace deviance for one scalar random intercept (block size 1),
fused into two passes over the data per Newton step, for the canonical count and binary models.

family codes: 0 Poisson-log, 1 binomial-logit (y a proportion, w the trials), 2 NB2-log.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._accelerate import jit


@jit
def _loglik_kernel(code, y, eta, w, theta):
    if code == 0:
        return w * (y * eta - math.exp(eta))
    if code == 1:
        # y*eta - log(1 + e^eta), stably
        if eta > 0:
            return w * (y * eta - eta - math.log1p(math.exp(-eta)))
        return w * (y * eta - math.log1p(math.exp(eta)))
    mu = math.exp(eta)
    return w * (math.lgamma(y + theta) - math.lgamma(theta) + theta * math.log(theta / (theta + mu))
                + (y * math.log(mu / (theta + mu)) if y > 0 else 0.0))


@jit
def _score_and_weight(code, y, eta, w, theta):
    """(d loglik / d eta, -d^2 loglik / d eta^2) of one observation."""
    if code == 0:
        mu = math.exp(eta)
        return w * (y - mu), w * mu
    if code == 1:
        mu = 1.0 / (1.0 + math.exp(-eta))
        return w * (y - mu), w * mu * (1.0 - mu)
    mu = math.exp(eta)
    den = theta + mu
    return w * (y - (y + theta) * mu / den), w * (y + theta) * theta * mu / (den * den)


@jit(parallel=True)
def _penalized(code, eta_fixed, v, codes, u, y, w, theta):
    total = 0.0
    for i in numba.prange(len(y)):
        total += _loglik_kernel(code, y[i], eta_fixed[i] + v[i] * u[codes[i]], w[i], theta)
    return -2.0 * total + np.dot(u, u)


@jit(parallel=True)
def _accumulate(code, eta_fixed, v, codes, u, y, w, theta, n_levels, with_score, chunks):
    """Per-level sums of w v^2 (curvature) and score * v, in parallel over ``chunks`` slices of the
    data (one per thread; each has its own accumulator, summed at the end)."""
    n = len(y)
    g_parts = np.zeros((chunks, n_levels))
    s_parts = np.zeros((chunks, n_levels))
    step = (n + chunks - 1) // chunks
    for t in numba.prange(chunks):
        for i in range(t * step, min(n, (t + 1) * step)):
            c = codes[i]
            sc, wt = _score_and_weight(code, y[i], eta_fixed[i] + v[i] * u[c], w[i], theta)
            g_parts[t, c] += wt * v[i] * v[i]
            if with_score:
                s_parts[t, c] += sc * v[i]
    g = np.zeros(n_levels)
    s = np.zeros(n_levels)
    for t in range(chunks):
        g += g_parts[t]
        s += s_parts[t]
    return g, s


@jit
def pirls_scalar(code, eta_fixed, v, codes, n_levels, y, w, theta, u0, tol, max_iter, chunks):
    """Returns (penalized deviance without constants, u at the mode, log|M|, converged)."""
    u = u0.copy()
    old = _penalized(code, eta_fixed, v, codes, u, y, w, theta)
    converged = False
    for _ in range(max_iter):
        g, s = _accumulate(code, eta_fixed, v, codes, u, y, w, theta, n_levels, True, chunks)
        step = np.empty(n_levels)
        for c in range(n_levels):
            step[c] = (s[c] - u[c]) / (1.0 + g[c])
        factor = 1.0
        new = old
        cand = u.copy()
        while factor > 1e-10:
            for c in range(n_levels):
                cand[c] = u[c] + factor * step[c]
            new = _penalized(code, eta_fixed, v, codes, cand, y, w, theta)
            if new <= old + 1e-12 * abs(old):
                break
            factor *= 0.5
        if new > old + 1e-12 * abs(old):
            converged = True
            break
        change = old - new
        u[:] = cand
        old = new
        if change < tol * (abs(new) + 1.0):
            converged = True
            break
    g, s = _accumulate(code, eta_fixed, v, codes, u, y, w, theta, n_levels, False, chunks)
    logdet = 0.0
    for c in range(n_levels):
        logdet += math.log(1.0 + g[c])
    return old, u, logdet, converged
