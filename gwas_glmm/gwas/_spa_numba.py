"""numba kernels of the saddlepoint approximations (:mod:`gwas.score`): the saddlepoint searches,
each Newton step one compiled pass over the samples in cache-sized chunks (the linear predictor,
the probabilities, the gradient and the Hessian's upper triangle together), where numpy made a
pass and a temporary for each; for rare variants the double SPA's search on a Taylor model of
the non-carriers (:func:`double_saddlepoint`).  They return the saddlepoint's quantities; the
tail formula stays in Python.  docs/methods.md gives the method and its cost."""

from __future__ import annotations

import math

import numpy as np

from .._accelerate import jit

# reassociation (SIMD sums) and contraction, but no approximate functions or no-inf/no-NaN
# assumptions: the exponentials below reach 0 and the tails are taken far out
_FLAGS = {"nsz", "arcp", "contract", "reassoc"}

OK, SINGULAR, NO_ROOT = 0, 1, 2
# The Taylor model's log det K'' with its first-order correction (_exact_check) is used where the
# correction's bound is below this: what the correction left was then 1% to 3% of the bound
# (3e-6 in log det, 1e-6 in -log10 P; tests/test_spa.py); above it, one exact pass
LOGDET_BOUND = 1e-4
CHUNK = 1024  # samples a pass takes at a time (13 columns of them: 104 KiB)


@jit(fastmath=_FLAGS)
def _softplus(a):
    return max(a, 0.0) + math.log1p(math.exp(-abs(a)))


@jit(fastmath=_FLAGS)
def _logistic(a, e):
    """1 / (1 + e^-a) from ``e`` = e^-|a| (the passes share e with log(1 + e^a)), without overflow."""
    return 1.0 / (1.0 + e) if a >= 0.0 else e / (1.0 + e)


@jit(fastmath=_FLAGS)
def _expit(a):
    return _logistic(a, math.exp(-abs(a)))


@jit(fastmath=_FLAGS)
def _evaluate(g, x, eta0, k0, theta, target, level, f, h, lin, pr, wt):
    """phi = theta' target - K(theta) with K(a, b) = sum_i [softplus(eta0_i + a g_i + x_i' b) - k0_i];
    from ``level`` 1 also F = grad K - target into ``f``, at 2 the upper triangle of K'' into
    ``h``.  Column by column over the Fortran-order ``x`` (each a vectorised loop; a fused pass
    per sample, accumulating the triangle row by row, took 6x as long), in chunks of CHUNK
    samples (the columns' chunks stay in cache for the triangle's p^2 / 2 products: at n =
    100,000 whole columns streamed from memory for each made the pass 3x as long)."""
    n, p = x.shape
    d = p + 1
    a = theta[0]
    phi = 0.0
    for j in range(d):
        phi += theta[j] * target[j]
        if level >= 1:
            f[j] = -target[j]
        if level >= 2:
            for k in range(j, d):
                h[j, k] = 0.0
    xt = x.T  # (p, n) C order: its rows' chunks are contiguous 1-d views
    for start in range(0, n, CHUNK):
        # contiguous views of the chunk, indexed from 0: numba then vectorises the loops (indexing
        # from ``start`` made the pass 2.5x as long, as did 2-d views, whose layout it cannot know)
        m = min(CHUNK, n - start)
        gs, es, ks = g[start:start + m], eta0[start:start + m], k0[start:start + m]
        ls, ps, ws = lin[:m], pr[:m], wt[:m]
        for i in range(m):
            ls[i] = es[i] + a * gs[i]
        for j in range(p):
            b = theta[j + 1]
            xj = xt[j, start:start + m]
            for i in range(m):
                ls[i] += b * xj[i]
        ksum = 0.0
        if level == 0:
            for i in range(m):
                ksum += max(ls[i], 0.0) + math.log1p(math.exp(-abs(ls[i]))) - ks[i]
            phi -= ksum
            continue
        for i in range(m):  # one exponential a sample for log(1 + e^l) and the probability
            e = math.exp(-abs(ls[i]))
            ksum += max(ls[i], 0.0) + math.log1p(e) - ks[i]
            ps[i] = _logistic(ls[i], e)
            ws[i] = ps[i] * (1.0 - ps[i])
        phi -= ksum
        s0 = s1 = 0.0
        for i in range(m):
            s0 += gs[i] * ps[i]
            s1 += gs[i] * gs[i] * ws[i]
        f[0] += s0
        if level >= 2:
            h[0, 0] += s1
        for j in range(p):
            xj = xt[j, start:start + m]
            s0 = s1 = 0.0
            for i in range(m):
                s0 += xj[i] * ps[i]
                s1 += xj[i] * gs[i] * ws[i]
            f[j + 1] += s0
            if level < 2:
                continue
            h[0, j + 1] += s1
            for i in range(m):  # w x_j once (into the linear predictor's place, no longer needed):
                ls[i] = xj[i] * ws[i]  # the triangle's products then load two numbers, not three
            for k in range(j, p - 1, 2):  # two columns a loop: each w x_j loaded once for both
                xk, xl = xt[k, start:start + m], xt[k + 1, start:start + m]
                s0 = s1 = 0.0
                for i in range(m):
                    s0 += ls[i] * xk[i]
                    s1 += ls[i] * xl[i]
                h[j + 1, k + 1] += s0
                h[j + 1, k + 2] += s1
            if (p - j) % 2 == 1:
                xk = xt[p - 1, start:start + m]
                s0 = 0.0
                for i in range(m):
                    s0 += ls[i] * xk[i]
                h[j + 1, p] += s0
    return phi


@jit(fastmath=_FLAGS)
def cumulant_tensors(x, mu):
    """The Taylor coefficients at b = 0 of F(b) = sum_i [softplus(eta0_i + x_i' b) - softplus(eta0_i)]
    beyond the first (X' mu): X' W X and the third and fourth cumulant tensors
    sum_i k_r(mu_i) x_i (x) ... (x) x_i, k3 = w (1 - 2 mu), k4 = w (1 - 6 w), w = mu (1 - mu).
    One pass over the samples per distinct index combination (p = 13: 1,820), then symmetrised."""
    n, p = x.shape
    w = mu * (1.0 - mu)
    c3 = w * (1.0 - 2.0 * mu)
    c4 = w * (1.0 - 6.0 * w)
    t2 = np.zeros((p, p))
    t3 = np.zeros((p, p, p))
    t4 = np.zeros((p, p, p, p))
    jk = np.empty(n)
    jkl = np.empty(n)
    for j in range(p):
        for k in range(j, p):
            s2 = 0.0
            for i in range(n):
                jk[i] = x[i, j] * x[i, k]
                s2 += w[i] * jk[i]
            t2[j, k] = t2[k, j] = s2
            for r in range(k, p):
                s3 = 0.0
                for i in range(n):
                    jkl[i] = jk[i] * x[i, r]
                    s3 += c3[i] * jkl[i]
                t3[j, k, r] = s3
                for m in range(r, p):
                    s4 = 0.0
                    for i in range(n):
                        s4 += c4[i] * jkl[i] * x[i, m]
                    t4[j, k, r, m] = s4
    idx = np.empty(4, np.int64)
    for j in range(p):
        for k in range(p):
            for r in range(p):
                idx[0], idx[1], idx[2] = j, k, r
                idx[:3].sort()
                t3[j, k, r] = t3[idx[0], idx[1], idx[2]]
                for m in range(p):
                    idx[0], idx[1], idx[2], idx[3] = j, k, r, m
                    idx.sort()
                    t4[j, k, r, m] = t4[idx[0], idx[1], idx[2], idx[3]]
    return t2, t3, t4


@jit(fastmath=_FLAGS)
def _evaluate_taylor(gc, xc, eta0c, t1, t2, t3, t4, theta, target, level, f, h, m4, v3, work):
    """:func:`_evaluate` with the samples split: F(b) of all of them (the non-carriers' terms
    depend on b alone) by its Taylor polynomial to the fourth order, and the carriers' (``gc``
    the genotypes that are not 0, ``xc`` their rows of X, Fortran order) corrections
    softplus(s_i + a g_i) - softplus(s_i), s_i = eta0_i + x_i' b, exactly, column by column as
    :func:`_evaluate`: O(p^4 + carriers p^2).  ``work``: (4, carriers)."""
    p = t1.shape[0]
    d = p + 1
    a = theta[0]
    for j in range(p):
        for k in range(j, p):
            s3 = 0.0
            s4 = 0.0
            for r in range(p):
                br = theta[r + 1]
                s3 += t3[j, k, r] * br
                inner = 0.0
                for m in range(p):
                    inner += t4[j, k, r, m] * theta[m + 1]
                s4 += inner * br
            v3[j, k] = v3[k, j] = s3
            m4[j, k] = m4[k, j] = s4
    total = 0.0
    for j in range(p):
        bj = theta[j + 1]
        t2b = v3b = m4b = 0.0
        for k in range(p):
            bk = theta[k + 1]
            t2b += t2[j, k] * bk
            v3b += v3[j, k] * bk
            m4b += m4[j, k] * bk
        total += bj * (t1[j] + 0.5 * t2b + v3b / 6.0 + m4b / 24.0)
        f[j + 1] = t1[j] + t2b + 0.5 * v3b + m4b / 6.0
    nc = gc.shape[0]
    s, pl, wl, dw = work[0], work[1], work[2], work[3]
    for i in range(nc):
        s[i] = eta0c[i]
    for j in range(p):
        b = theta[j + 1]
        for i in range(nc):
            s[i] += b * xc[i, j]
    for i in range(nc):
        lin = s[i] + a * gc[i]
        el = math.exp(-abs(lin))
        es = math.exp(-abs(s[i]))
        total += max(lin, 0.0) + math.log1p(el) - max(s[i], 0.0) - math.log1p(es)
        pl[i] = _logistic(lin, el)
        ps = _logistic(s[i], es)
        wl[i] = pl[i] * (1.0 - pl[i])
        dw[i] = wl[i] - ps * (1.0 - ps)
        s[i] = pl[i] - ps
    phi = -total
    for j in range(d):
        phi += theta[j] * target[j]
    if level == 0:
        return phi
    s0 = s1 = 0.0
    for i in range(nc):
        s0 += gc[i] * pl[i]
        s1 += gc[i] * gc[i] * wl[i]
    f[0] = s0
    if level >= 2:
        h[0, 0] = s1
    for j in range(p):
        s0 = s1 = 0.0
        for i in range(nc):
            s0 += xc[i, j] * s[i]
            s1 += xc[i, j] * gc[i] * wl[i]
        f[j + 1] += s0
        if level < 2:
            continue
        h[0, j + 1] = s1
        for k in range(j, p):
            s0 = 0.0
            for i in range(nc):
                s0 += xc[i, j] * xc[i, k] * dw[i]
            h[j + 1, k + 1] = t2[j, k] + v3[j, k] + 0.5 * m4[j, k] + s0
    for j in range(d):
        f[j] -= target[j]
    return phi


@jit(fastmath=_FLAGS)
def _eval(taylor, exact, approx, theta, target, level, f, h):
    if taylor:
        return _evaluate_taylor(approx[0], approx[1], approx[2], approx[3], approx[4], approx[5], approx[6],
                                theta, target, level, f, h, approx[7], approx[8], approx[9])
    return _evaluate(exact[0], exact[1], exact[2], exact[3], theta, target, level, f, h, exact[4], exact[5],
                     exact[6])


@jit(fastmath=_FLAGS)
def _exact_check(g, x, eta0, k0, theta, target, f, lin, w0, c3, c4, leverage):
    """The exact phi and F = grad K - target (into ``f``) at ``theta`` (O(n p), no K''), and how far
    the Taylor model's log det K'' is from the exact one there: to first order the sum over the
    samples of (w_i - w~_i) x_i' K''_bb^-1 x_i, with w_i the weight at eta0_i + x_i' b, w~_i its
    Taylor polynomial and K''_bb taken at b = 0 (``leverage``).  Returns (phi, that sum, the sum
    of its terms' absolute values: a bound of what the correction leaves)."""
    n, p = x.shape
    d = p + 1
    a = theta[0]
    for i in range(n):
        lin[i] = 0.0
    for j in range(p):
        b = theta[j + 1]
        for i in range(n):
            lin[i] += b * x[i, j]
    ksum = 0.0
    shift = 0.0
    bound = 0.0
    for j in range(d):
        f[j] = 0.0
    for i in range(n):
        u = lin[i]
        s = eta0[i] + u
        e = math.exp(-abs(s))
        pr = _logistic(s, e)
        delta = (pr * (1.0 - pr) - (w0[i] + u * (c3[i] + 0.5 * u * c4[i]))) * leverage[i]
        shift += delta
        bound += abs(delta)
        if g[i] != 0.0:
            s += a * g[i]
            e = math.exp(-abs(s))
            pr = _logistic(s, e)
        ksum += max(s, 0.0) + math.log1p(e) - k0[i]
        f[0] += g[i] * pr
        lin[i] = pr
    for j in range(p):
        acc = 0.0
        for i in range(n):
            acc += x[i, j] * lin[i]
        f[j + 1] = acc
    phi = -ksum
    for j in range(d):
        phi += theta[j] * target[j]
        f[j] -= target[j]
    return phi, shift, bound


@jit(fastmath=_FLAGS)
def _cholesky_solve(h, f, chol, step):
    """step = H^-1 f through the Cholesky factor of the upper triangle ``h``; returns log det H,
    or NaN where H is not positive definite (numerically)."""
    d = h.shape[0]
    for j in range(d):
        s = h[j, j]
        for k in range(j):
            s -= chol[j, k] * chol[j, k]
        if not s > 0.0:
            return np.nan
        chol[j, j] = math.sqrt(s)
        for i in range(j + 1, d):
            s = h[j, i]
            for k in range(j):
                s -= chol[i, k] * chol[j, k]
            chol[i, j] = s / chol[j, j]
    logdet = 0.0
    for i in range(d):
        s = f[i]
        for k in range(i):
            s -= chol[i, k] * step[k]
        step[i] = s / chol[i, i]
        logdet += 2.0 * math.log(chol[i, i])
    for i in range(d - 1, -1, -1):
        s = step[i]
        for k in range(i + 1, d):
            s -= chol[k, i] * step[k]
        step[i] = s / chol[i, i]
    return logdet


@jit(fastmath=_FLAGS)
def _at_zero(g, x, w0, t2, mu, target, f, h):
    """F and K'' at (a, b) = 0, where the probabilities are mu: K''_bb = X'WX is the null's, so
    O(n p) rather than a pass's O(n p^2) (phi is 0 there)."""
    n, p = x.shape
    s0 = s1 = 0.0
    for i in range(n):
        s0 += g[i] * mu[i]
        s1 += g[i] * g[i] * w0[i]
    f[0] = s0 - target[0]
    h[0, 0] = s1
    for j in range(p):
        s1 = 0.0
        for i in range(n):
            s1 += x[i, j] * g[i] * w0[i]
        h[0, j + 1] = s1
        f[j + 1] = 0.0  # X'mu is the conditioning point
        for k in range(j, p):
            h[j + 1, k + 1] = t2[j, k]


@jit(fastmath=_FLAGS)
def _newton(taylor, exact, approx, theta, target, f, h, chol, step):
    """Maximise the concave phi from 0 (``theta``, updated in place; ``f`` and ``h`` given there)
    by Newton steps, Armijo's rule on phi far from the root (Newton decrement above 1e-6),
    backtracking on |F|^2 near it, ended by a step below 1e-8 relative (the last one predicted).
    Returns (status, phi) with ``f`` and ``h`` at ``theta`` (or one step before it)."""
    d = theta.shape[0]
    new = np.zeros(d)
    f_new = np.zeros(d)
    h_new = np.zeros((d, d))
    phi = 0.0
    for _ in range(100):
        if math.isnan(_cholesky_solve(h, f, chol, step)):
            return SINGULAR, phi
        decrement = 0.0
        for j in range(d):
            decrement += f[j] * step[j]
        largest, size = 1.0, 0.0
        for j in range(d):
            largest = max(largest, abs(theta[j]))
            size = max(size, abs(step[j]))
        if size <= 1e-8 * largest and decrement < 1e-6:
            # converged: the last step is predicted rather than taken (a pass saved): phi rises by
            # half the decrement, and K'' changes over it by about 1e-8 relative
            for j in range(d):
                theta[j] -= step[j]
            return OK, phi + 0.5 * decrement
        t = 1.0
        moved = False
        if decrement > 1e-6:  # far from the root: Armijo on phi, the full step's pass complete
            level = 2  # (the full step is mostly taken: then no second pass)
            while t > 1e-10:
                for j in range(d):
                    new[j] = theta[j] - t * step[j]
                phi_new = _eval(taylor, exact, approx, new, target, level, f_new, h_new)
                if phi_new >= phi + 1e-4 * t * decrement:
                    moved = True
                    break
                t /= 2.0
                level = 0
            if moved and level == 0:
                phi_new = _eval(taylor, exact, approx, new, target, 2, f_new, h_new)
        else:  # near it phi's rise is below rounding: backtrack on |F|^2
            merit = 0.0
            for j in range(d):
                merit += f[j] * f[j]
            while t > 1e-8:
                for j in range(d):
                    new[j] = theta[j] - t * step[j]
                phi_new = _eval(taylor, exact, approx, new, target, 2, f_new, h_new)
                size = 0.0
                for j in range(d):
                    size += f_new[j] * f_new[j]
                if size <= (1.0 - 1e-4 * t) * merit:
                    moved = True
                    break
                t /= 2.0
        if not moved:  # no progress: converged to rounding, or no root (checked by the caller)
            return OK, phi
        theta[:] = new
        f[:] = f_new
        h[:, :] = h_new
        phi = phi_new
        largest, size = 1.0, 0.0
        for j in range(d):
            largest = max(largest, abs(theta[j]))
            size = max(size, abs(t * step[j]))
        if size <= 1e-8 * largest:
            return OK, phi
    return NO_ROOT, phi


@jit(fastmath=_FLAGS)
def double_saddlepoint(g, x, mu, eta0, k0, target, carriers, t1, t2, t3, t4, w0, c3, c4, leverage):
    """The joint saddlepoint (a, b) of the double SPA: F = grad K - target = 0 (:func:`_newton`).
    ``x``: (n, p) Fortran order.  Returns (status, a, phi, log det K''(a, b), largest |F|).

    With ``carriers`` (the samples whose g is not 0; empty for none of this): first on the model
    of :func:`_evaluate_taylor`, O(p^4 + carriers p^2) an iteration rather than O(n p^2); then
    Newton steps on the exact phi with the model's K'' (:func:`_exact_check`, O(n p) each) until
    the exact Newton decrement is below 1e-7 phi, so phi is exact to about 1e-10 phi; the model's
    log det with its first-order correction where that is certain to 1e-4 (``w0``, ``c3``, ``c4``:
    the samples' weights and third and fourth cumulants at b = 0; ``leverage``:
    x_i' (X'WX)^-1 x_i), otherwise one exact pass for it; the largest |F| is then reported as 0
    (the decrement certifies the root).  Where the model finds no root, or the steps on the exact
    phi do not converge in three, the exact Newton from 0."""
    n, p = x.shape
    d = p + 1
    theta = np.zeros(d)
    f = np.zeros(d)
    h = np.zeros((d, d))
    chol = np.zeros((d, d))
    step = np.zeros(d)
    exact = (g, x, eta0, k0, np.empty(n), np.empty(n), np.empty(n))
    nc = carriers.shape[0]
    xc = np.empty((p, nc)).T  # Fortran order
    for j in range(p):
        for i in range(nc):
            xc[i, j] = x[carriers[i], j]
    approx = (g[carriers], xc, eta0[carriers], t1, t2, t3, t4, np.empty((p, p)), np.empty((p, p)), np.empty((4, nc)))
    f0 = np.zeros(d)
    h0 = np.zeros((d, d))
    _at_zero(g, x, w0, t2, mu, target, f0, h0)
    if nc > 0:
        f[:] = f0
        h[:, :] = h0
        status, phi = _newton(True, exact, approx, theta, target, f, h, chol, step)
        logdet = _cholesky_solve(h, f, chol, step) if status == OK else np.nan  # the Taylor model's K''
        for _ in range(3 if not math.isnan(logdet) else 0):  # Newton on the exact phi, the model's K''
            phi, shift, bound = _exact_check(g, x, eta0, k0, theta, target, f, exact[4], w0, c3, c4, leverage)
            _cholesky_solve(h, f, chol, step)
            decrement = 0.0
            for j in range(d):
                decrement += f[j] * step[j]
            if decrement <= 1e-7 * max(1.0, abs(phi)):
                # the last step is predicted rather than taken: phi rises by half the decrement, to
                # within the decrement times the model Hessian's relative error (1e-3 or less)
                if bound <= LOGDET_BOUND:
                    return OK, theta[0] - step[0], phi + 0.5 * decrement, logdet + shift, 0.0
                for j in range(d):
                    theta[j] -= step[j]
                phi = _evaluate(g, x, eta0, k0, theta, target, 2, f, h, exact[4], exact[5], exact[6])
                logdet = _cholesky_solve(h, f, chol, step)
                if math.isnan(logdet):
                    return SINGULAR, 0.0, 0.0, 0.0, 0.0
                return OK, theta[0], phi, logdet, 0.0
            for j in range(d):
                theta[j] -= step[j]
        theta[:] = 0.0
    f[:] = f0
    h[:, :] = h0
    status, phi = _newton(False, exact, approx, theta, target, f, h, chol, step)
    if status != OK:
        return status, 0.0, 0.0, 0.0, 0.0
    logdet = _cholesky_solve(h, f, chol, step)
    if math.isnan(logdet):
        return SINGULAR, 0.0, 0.0, 0.0, 0.0
    residual = 0.0
    for j in range(d):
        residual = max(residual, abs(f[j]))
    return OK, theta[0], phi, logdet, residual


@jit(fastmath=_FLAGS)
def _cgf(t, g, mu, lmu, with_k0):
    """K(t), K'(t), K''(t) of S = g' (y - mu), y_i ~ Bernoulli(mu_i), stably (K(t) 0 unless
    ``with_k0``)."""
    k0 = k1 = k2 = 0.0
    for i in range(g.shape[0]):
        a = g[i] * t + lmu[i]
        pr = _expit(a)
        k1 += g[i] * (pr - mu[i])
        k2 += g[i] * g[i] * pr * (1.0 - pr)
        if with_k0:
            k0 += math.log1p(-mu[i]) + _softplus(a) - t * g[i] * mu[i]
    return k0, k1, k2


@jit(fastmath=_FLAGS)
def marginal_saddlepoint(g, mu, lmu, q, k2_0):
    """The saddlepoint K'(t) = q of the marginal SPA by Newton steps from q / K''(0) inside a
    bracket (K' increases; doubling or bisection where a step leaves it), ended by a step below
    1e-9 relative.  Returns (t, K(t), K''(t))."""
    lo, hi = 0.0, np.inf
    t = q / k2_0 if k2_0 > 0 else 1.0
    for _ in range(200):
        _, k1, k2 = _cgf(t, g, mu, lmu, False)
        fv = k1 - q
        if fv > 0:
            hi = t
        else:
            lo = t
        new = t - fv / k2 if k2 > 0 else np.nan
        if abs(new - t) <= 1e-9 * max(1.0, abs(t)):  # converged (also where fv is 0 to rounding)
            t = new
            break
        if not (lo < new < hi):  # outside the bracket (or no curvature): double, or bisect
            new = 0.5 * (lo + hi) if hi < np.inf else 2.0 * max(t, 1e-3)
        if hi - lo <= 1e-12 * max(1.0, abs(t)):
            break
        t = new
    k0, _, k2 = _cgf(t, g, mu, lmu, True)
    return t, k0, k2
