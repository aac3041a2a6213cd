"""numba kernel: PIRLS and the Laplace deviance for one scalar random intercept (block size 1),
fused into two passes over the data per Newton step, for the canonical count and binary models.

family codes: 0 Poisson-log, 1 binomial-logit (y a proportion, w the trials), 2 NB2-log.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._accelerate import jit

STEP_TOL = 1e-10  # the mode's last Newton step (u is on the standard-normal scale)


@jit
def _loglik_kernel(code, y, eta, w, theta):
    if code == 0:
        return w * (y * eta - math.exp(eta))
    if code == 1:
        # y*eta - log(1 + e^eta), stably
        if eta > 0:
            return w * (y * eta - eta - math.log1p(math.exp(-eta)))
        return w * (y * eta - math.log1p(math.exp(eta)))
    # NB2 without lgamma(y + theta) - lgamma(theta), which is free of eta: added once per mode
    # theta log(theta / (theta + mu)) + y log(mu / (theta + mu)), with one logarithm
    return w * (theta * math.log(theta) + y * eta - (theta + y) * math.log(theta + math.exp(eta)))


@jit
def _score_and_weight(code, y, eta, w, theta):
    """(d loglik / d eta, -d^2 loglik / d eta^2) of one observation: the first two of
    :func:`_derivatives` (the compiler drops the rest)."""
    d = _derivatives(code, y, eta, w, theta, 0.0, False)
    return d[0], d[1]


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
        largest = factor * np.max(np.abs(step))  # the step just taken
        u[:] = cand
        old = new
        # the deviance has settled and so has the mode: the gradient's envelope-theorem terms
        # assume it exact, and at n = 1,000,000 a mode settled by the deviance alone left them
        # 0.3 off (L-BFGS then chased that noise: 50 evaluations instead of about 25)
        if change < tol * (abs(new) + 1.0) and largest < STEP_TOL:
            converged = True
            break
    g, s = _accumulate(code, eta_fixed, v, codes, u, y, w, theta, n_levels, False, chunks)
    logdet = 0.0
    for c in range(n_levels):
        logdet += math.log(1.0 + g[c])
    if code == 2:
        for i in range(len(y)):
            old -= 2.0 * w[i] * (math.lgamma(y[i] + theta) - math.lgamma(theta))
    return old, u, logdet, converged


@jit
def _digamma(x):
    """psi(x) for x > 0: recurrence up to x >= 6, then the asymptotic series (error < 1e-13)."""
    r = 0.0
    while x < 6.0:
        r -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    return r + math.log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))))


@jit
def _digamma_shift(y, theta, psi_theta):
    """psi(y + theta) - psi(theta): a sum of y terms for small integer counts."""
    if y < 32.0 and y == math.floor(y):
        total = 0.0
        for j in range(int(y)):
            total += 1.0 / (theta + j)
        return total
    return _digamma(y + theta) - psi_theta


@jit
def _derivatives(code, y, eta, w, theta, psi_theta, with_dl):
    """One observation's score s = dl/deta, weight W = -d2l/deta2, dW/deta, and for NB2 the
    derivatives of l (if ``with_dl``; ``psi_theta`` = digamma(theta)), s and W with respect to
    log theta (0 for the other families)."""
    if code == 0:
        mu = math.exp(eta)
        return w * (y - mu), w * mu, w * mu, 0.0, 0.0, 0.0
    if code == 1:
        mu = 1.0 / (1.0 + math.exp(-eta))
        wt = w * mu * (1.0 - mu)
        return w * (y - mu), wt, wt * (1.0 - 2.0 * mu), 0.0, 0.0, 0.0
    mu = math.exp(eta)
    k = theta
    den = k + mu
    s = w * k * (y - mu) / den
    wt = w * (y + k) * k * mu / (den * den)
    wp = wt * (k - mu) / den
    dl = w * (_digamma_shift(y, k, psi_theta) + math.log(k / den) + (mu - y) / den) * k if with_dl else 0.0
    ds = w * mu * (y - mu) / (den * den) * k
    dw = w * mu * (2.0 * k * mu + y * mu - k * y) / (den * den * den) * k
    return s, wt, wp, dl, ds, dw


@jit(parallel=True)
def laplace_gradient(code, eta_fixed, z, scale, codes, n_levels, u, y, w, theta, x, chunks):
    """Gradient of the Laplace deviance D = -2 sum l_i(eta_i) + ||u||^2 + sum_c log(1 + G_c) at the
    mode u (eta_i = eta_fixed_i + scale z_i u_c(i), G_c = sum_(i in c) W_i (scale z_i)^2) with respect
    to (scale, beta (the columns of x), log theta).  The penalized part by the envelope theorem (its
    u-derivative is 0 at the mode); log(1 + G_c) through W's dependence on eta, including the
    mode's own movement du_c = (dF_c / dpsi) / (1 + G_c), F_c = sum s_i v_i - u_c.  Two passes,
    each in parallel over ``chunks`` slices of the data."""
    n, p = x.shape
    step = (n + chunks - 1) // chunks
    psi_theta = _digamma(theta)
    # per level: G, then -sum W v x / (1 + G) (du/dbeta), then du/dscale, du/dlog theta
    parts = np.zeros((chunks, n_levels, p + 3))
    for t in numba.prange(chunks):
        acc = parts[t]
        for i in range(t * step, min(n, (t + 1) * step)):
            c = codes[i]
            v = scale * z[i]
            s, wt, wp, dl, ds, dw = _derivatives(code, y[i], eta_fixed[i] + v * u[c], w[i], theta, psi_theta, False)
            acc[c, 0] += wt * v * v
            for j in range(p):
                acc[c, 1 + j] += wt * v * x[i, j]
            acc[c, p + 1] += s * z[i] - wt * z[i] * u[c] * v
            acc[c, p + 2] += ds * v
    lv = parts.sum(axis=0)
    for c in range(n_levels):
        d = 1.0 + lv[c, 0]
        for j in range(1, p + 3):
            lv[c, j] /= d
    grads = np.zeros((chunks, p + 2))
    for t in numba.prange(chunks):
        grad = grads[t]
        for i in range(t * step, min(n, (t + 1) * step)):
            c = codes[i]
            v = scale * z[i]
            s, wt, wp, dl, ds, dw = _derivatives(code, y[i], eta_fixed[i] + v * u[c], w[i], theta, psi_theta, True)
            r = v * v / (1.0 + lv[c, 0])
            grad[0] += -2.0 * s * z[i] * u[c] + wp * (z[i] * u[c] + v * lv[c, p + 1]) * r + 2.0 * wt * v * z[i] / (1.0 + lv[c, 0])
            for j in range(p):
                grad[1 + j] += -2.0 * s * x[i, j] + wp * (x[i, j] - v * lv[c, 1 + j]) * r
            grad[p + 1] += -2.0 * dl + (dw + wp * v * lv[c, p + 2]) * r
    return grads.sum(axis=0)
