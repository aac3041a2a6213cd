"""numba kernels: the Cholesky factor of M = A^T W A + I for several grouping terms, ordered
so that the term with the most coefficients comes first (see ``_sparse_pls``):

    M = [[D, B], [B^T, C]]  ->  L = [[L_D, 0], [E^T, L_S]],  E = L_D^-1 B,  S = C - E^T E = L_S L_S^T

D is block diagonal (one p1 x p1 block per level of the first term), B holds only the (level,
rest column) pairs that occur in the data (its pattern, fixed per model, is ``lev_ptr`` /
``lev_cols``; ``pos`` maps each observation's rest slots into it) and S is dense over the other
terms' columns.  Also the entries of M^-1 on the pattern of M (the sparse inverse subset: G_11's
diagonal blocks, G_1r on E's pattern, G_rr = S^-1), which the Laplace gradient needs, and the
PIRLS and its gradient for the canonical count / binary families of ``_pirls_numba``.

Array layout, per observation i: ``vals[i]`` (r = sum of the terms' p) holds row i of A = Z Lambda
in slots, the first term's p1 slots first; ``cols[i]`` each slot's column of M.
"""

from __future__ import annotations

import math

import numpy as np

from .._accelerate import jit
from ._pirls_numba import STEP_TOL, _derivatives, _digamma, _loglik_kernel, _score_and_weight


@jit
def factorize(vals, w, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr):
    """(d, e, ls, logdet): D's Cholesky blocks (L1, p1, p1), E on its pattern (nk, p1), S's
    lower Cholesky factor (qr, qr), log|M|.  Returns logdet = nan if M is not positive definite
    to working precision (the caller rejects the step)."""
    n, r = vals.shape
    q1 = n_levels * p1
    d = np.zeros((n_levels, p1, p1))
    e = np.zeros((len(lev_cols), p1))
    s = np.zeros((qr, qr))
    for i in range(n):
        lv = (cols[i, 0] // p1) if p1 > 0 else 0
        wi = w[i]
        for a in range(p1):
            va = wi * vals[i, a]
            for b in range(a + 1):
                d[lv, a, b] += va * vals[i, b]
            for t in range(r - p1):
                e[pos[i, t], a] += va * vals[i, p1 + t]
        for t in range(p1, r):
            ct = cols[i, t] - q1
            vt = wi * vals[i, t]
            for t2 in range(p1, r):
                s[ct, cols[i, t2] - q1] += vt * vals[i, t2]
    logdet = 0.0
    for lv in range(n_levels):
        dl = d[lv]
        for a in range(p1):
            dl[a, a] += 1.0
        for j in range(p1):
            acc = dl[j, j]
            for k in range(j):
                acc -= dl[j, k] * dl[j, k]
            if not acc > 0.0:
                return d, e, s, np.nan
            djj = math.sqrt(acc)
            dl[j, j] = djj
            logdet += 2.0 * math.log(djj)
            for i2 in range(j + 1, p1):
                acc = dl[i2, j]
                for k in range(j):
                    acc -= dl[i2, k] * dl[j, k]
                dl[i2, j] = acc / djj
        for k in range(lev_ptr[lv], lev_ptr[lv + 1]):
            for a in range(p1):
                acc = e[k, a]
                for b in range(a):
                    acc -= dl[a, b] * e[k, b]
                e[k, a] = acc / dl[a, a]
        for k1 in range(lev_ptr[lv], lev_ptr[lv + 1]):
            c1 = lev_cols[k1]
            for k2 in range(lev_ptr[lv], lev_ptr[lv + 1]):
                acc = 0.0
                for a in range(p1):
                    acc += e[k1, a] * e[k2, a]
                s[c1, lev_cols[k2]] -= acc
    for c in range(qr):
        s[c, c] += 1.0
    return d, e, s, logdet + cholesky_lower(s)


@jit
def cholesky_lower(s):
    """In place: s's lower triangle becomes its Cholesky factor, the upper is zeroed; returns
    log|s| (nan if s is not positive definite).  Right-looking, each column's update restricted
    to its nonzero rows: for a nested term beside the first (grouseticks' broods within
    locations) S stays sparse and the cost is the sum of the squared column counts, not
    qr^3 / 3; dense S costs qr^3 / 3 as before."""
    m = s.shape[0]
    logdet = 0.0
    idx = np.empty(m, dtype=np.int64)
    col = np.empty(m)
    for j in range(m):
        djj = s[j, j]
        if not djj > 0.0:
            return np.nan
        ljj = math.sqrt(djj)
        s[j, j] = ljj
        logdet += 2.0 * math.log(ljj)
        cnt = 0
        for i in range(j + 1, m):
            if s[i, j] != 0.0:
                s[i, j] /= ljj
                idx[cnt] = i
                col[cnt] = s[i, j]
                cnt += 1
        for a in range(cnt):
            i = idx[a]
            lij = col[a]
            for b in range(a + 1):
                s[i, idx[b]] -= lij * col[b]
    for i in range(m):
        for j in range(i + 1, m):
            s[i, j] = 0.0
    return logdet


@jit
def cholesky_inverse(lo):
    """(L L^T)^-1 from the lower factor by Takahashi's recurrence, last column first:
    G_ij = -(1 / L_jj) sum_(k > j, L_kj != 0) L_kj G_ki (i > j),
    G_jj = 1 / L_jj^2 - (1 / L_jj) sum_(k > j) L_kj G_kj; cost m nnz(L)."""
    m = lo.shape[0]
    g = np.zeros((m, m))
    idx = np.empty(m, dtype=np.int64)
    col = np.empty(m)
    for j in range(m - 1, -1, -1):
        cnt = 0
        for k in range(j + 1, m):
            if lo[k, j] != 0.0:
                idx[cnt] = k
                col[cnt] = lo[k, j]
                cnt += 1
        ljj = lo[j, j]
        # row j of G beyond the diagonal: sum over a of L_kj G[k, j+1:] (rows of the symmetric
        # G kept whole, so each term is a contiguous axpy)
        for a in range(cnt):
            k = idx[a]
            f = col[a]
            for i in range(j + 1, m):
                g[j, i] += f * g[k, i]
        for i in range(j + 1, m):
            g[j, i] = -g[j, i] / ljj
            g[i, j] = g[j, i]
        acc = 0.0
        for a in range(cnt):
            acc += col[a] * g[idx[a], j]
        g[j, j] = 1.0 / (ljj * ljj) - acc / ljj
    return g


@jit
def _cho_solve(lo, b):
    """(L L^T)^-1 b for a lower factor L and b (m, k)."""
    m, k = b.shape
    x = b.copy()
    for c in range(k):
        for i in range(m):
            acc = x[i, c]
            for j in range(i):
                acc -= lo[i, j] * x[j, c]
            x[i, c] = acc / lo[i, i]
        for i in range(m - 1, -1, -1):
            acc = x[i, c]
            for j in range(i + 1, m):
                acc -= lo[j, i] * x[j, c]
            x[i, c] = acc / lo[i, i]
    return x


@jit
def _tn(a, b):
    """a^T b by loops (a (m, k), b (m, l))."""
    m, k = a.shape
    out = np.zeros((k, b.shape[1]))
    for i in range(m):
        for j in range(k):
            aij = a[i, j]
            for c in range(b.shape[1]):
                out[j, c] += aij * b[i, c]
    return out


@jit
def solve_l(d, e, ls, p1, n_levels, lev_ptr, lev_cols, b):
    """L^-1 b for b (q, m) in M's internal column order (a new array)."""
    q1 = n_levels * p1
    y = b.copy()
    m = y.shape[1]
    qr = ls.shape[0]
    for lv in range(n_levels):
        o = lv * p1
        for a in range(p1):
            for j in range(m):
                acc = y[o + a, j]
                for c in range(a):
                    acc -= d[lv, a, c] * y[o + c, j]
                y[o + a, j] = acc / d[lv, a, a]
        for k in range(lev_ptr[lv], lev_ptr[lv + 1]):
            row = q1 + lev_cols[k]
            for a in range(p1):
                f = e[k, a]
                for j in range(m):
                    y[row, j] -= f * y[o + a, j]
    for i in range(qr):
        for j in range(m):
            acc = y[q1 + i, j]
            for c in range(i):
                acc -= ls[i, c] * y[q1 + c, j]
            y[q1 + i, j] = acc / ls[i, i]
    return y


@jit
def solve_lt(d, e, ls, p1, n_levels, lev_ptr, lev_cols, b):
    """L^-T b for b (q, m) (a new array)."""
    q1 = n_levels * p1
    x = b.copy()
    m = x.shape[1]
    qr = ls.shape[0]
    for i in range(qr - 1, -1, -1):
        for j in range(m):
            acc = x[q1 + i, j]
            for c in range(i + 1, qr):
                acc -= ls[c, i] * x[q1 + c, j]
            x[q1 + i, j] = acc / ls[i, i]
    for lv in range(n_levels):
        o = lv * p1
        for k in range(lev_ptr[lv], lev_ptr[lv + 1]):
            row = q1 + lev_cols[k]
            for a in range(p1):
                f = e[k, a]
                for j in range(m):
                    x[o + a, j] -= f * x[row, j]
        for a in range(p1 - 1, -1, -1):
            for j in range(m):
                acc = x[o + a, j]
                for c in range(a + 1, p1):
                    acc -= d[lv, c, a] * x[o + c, j]
                x[o + a, j] = acc / d[lv, a, a]
    return x


@jit
def at_times(vals, cols, q, v):
    """A^T V for V (n, m): column sums through each observation's slots."""
    n, r = vals.shape
    m = v.shape[1]
    out = np.zeros((q, m))
    for i in range(n):
        for t in range(r):
            c = cols[i, t]
            a = vals[i, t]
            for j in range(m):
                out[c, j] += a * v[i, j]
    return out


@jit
def a_times(vals, cols, u):
    """A u for u (q,)."""
    n, r = vals.shape
    out = np.zeros(n)
    for i in range(n):
        acc = 0.0
        for t in range(r):
            acc += vals[i, t] * u[cols[i, t]]
        out[i] = acc
    return out


@jit
def inverse_subset(d, e, ls, p1, n_levels, lev_ptr, lev_cols):
    """Entries of G = M^-1 on M's pattern: (G_11 blocks (L1, p1, p1), G_1r on E's pattern
    (nk, p1), G_rr = S^-1 (qr, qr)).  Cost: qr nnz(L_S) for S^-1, then sum over levels of p1 k_l^2."""
    grr = cholesky_inverse(ls)
    g11 = np.zeros((n_levels, p1, p1))
    g1r = np.zeros((len(lev_cols), p1))
    for lv in range(n_levels):
        k0, k1 = lev_ptr[lv], lev_ptr[lv + 1]
        kl = k1 - k0
        # F^T H (p1, kl) with F = E_l (kl, p1), H = S^-1 on this level's rest columns
        fh = np.zeros((p1, kl))
        for a in range(p1):
            for j in range(kl):
                acc = 0.0
                cj = lev_cols[k0 + j]
                for i in range(kl):
                    acc += e[k0 + i, a] * grr[lev_cols[k0 + i], cj]
                fh[a, j] = acc
        inner = np.eye(p1)  # I + F^T H F
        for a in range(p1):
            for b in range(p1):
                acc = 0.0
                for j in range(kl):
                    acc += fh[a, j] * e[k0 + j, b]
                inner[a, b] += acc
        # G_1r block = -L_l^-T F^T H, G_11 block = L_l^-T inner L_l^-1: back substitutions
        for j in range(kl):
            for a in range(p1 - 1, -1, -1):
                acc = -fh[a, j]
                for c in range(a + 1, p1):
                    acc -= d[lv, c, a] * g1r[k0 + j, c]
                g1r[k0 + j, a] = acc / d[lv, a, a]
        tmp = np.zeros((p1, p1))  # L_l^-T inner
        for b in range(p1):
            for a in range(p1 - 1, -1, -1):
                acc = inner[a, b]
                for c in range(a + 1, p1):
                    acc -= d[lv, c, a] * tmp[c, b]
                tmp[a, b] = acc / d[lv, a, a]
        for a in range(p1):  # (L_l^-T (tmp^T))^T = tmp L_l^-1
            for b in range(p1 - 1, -1, -1):
                acc = tmp[a, b]
                for c in range(b + 1, p1):
                    acc -= g11[lv, a, c] * d[lv, c, b]
                g11[lv, a, b] = acc / d[lv, b, b]
    return g11, g1r, grr


@jit
def g_times_rows(vals, cols, pos, p1, g11, g1r, grr):
    """(G a_i) at observation i's own slots, (n, r): what h_i = a_i^T G a_i and the traces
    tr(G A_k^T W A) need."""
    n, r = vals.shape
    q1 = g11.shape[0] * p1
    out = np.zeros((n, r))
    for i in range(n):
        lv = (cols[i, 0] // p1) if p1 > 0 else 0
        for s in range(r):
            acc = 0.0
            for t in range(r):
                v = vals[i, t]
                if s < p1 and t < p1:
                    acc += g11[lv, s, t] * v
                elif s < p1:
                    acc += g1r[pos[i, t - p1], s] * v
                elif t < p1:
                    acc += g1r[pos[i, s - p1], t] * v
                else:
                    acc += grr[cols[i, s] - q1, cols[i, t] - q1] * v
            out[i, s] = acc
    return out


@jit
def _penalized(code, eta_fixed, vals, cols, u, y, w, nb):
    total = 0.0
    n, r = vals.shape
    for i in range(n):
        eta = eta_fixed[i]
        for t in range(r):
            eta += vals[i, t] * u[cols[i, t]]
        total += _loglik_kernel(code, y[i], eta, w[i], nb)
    return -2.0 * total + np.dot(u, u)


@jit
def pirls(code, eta_fixed, vals, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr, y, w, nb, u0, tol, max_iter):
    """Conditional mode of u (Newton steps with the observed information, halved until the
    penalized deviance falls), as ``laplace.pirls``.  Returns (penalized deviance without the
    family's constants, u, log|M| at the mode, converged, ok)."""
    n, r = vals.shape
    q = len(u0)
    u = u0.copy()
    old = _penalized(code, eta_fixed, vals, cols, u, y, w, nb)
    converged = False
    wt = np.empty(n)
    sc = np.empty((n, 1))
    for _ in range(max_iter):
        eta = eta_fixed + a_times(vals, cols, u)
        for i in range(n):
            s_i, w_i = _score_and_weight(code, y[i], eta[i], w[i], nb)
            sc[i, 0] = s_i
            wt[i] = w_i
        d, e, ls, logdet = factorize(vals, wt, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr)
        if not math.isfinite(logdet):
            return np.inf, u, np.inf, False, False
        rhs = at_times(vals, cols, q, sc)
        for c in range(q):
            rhs[c, 0] -= u[c]
        step = solve_lt(d, e, ls, p1, n_levels, lev_ptr, lev_cols,
                        solve_l(d, e, ls, p1, n_levels, lev_ptr, lev_cols, rhs))[:, 0]
        factor = 1.0
        new = old
        cand = u.copy()
        while factor > 1e-10:
            for c in range(q):
                cand[c] = u[c] + factor * step[c]
            new = _penalized(code, eta_fixed, vals, cols, cand, y, w, nb)
            if new <= old + 1e-12 * abs(old):
                break
            factor *= 0.5
        if new > old + 1e-12 * abs(old):
            converged = True
            break
        change = old - new
        largest = factor * np.max(np.abs(step)) if q > 0 else 0.0
        u[:] = cand
        old = new
        if change < tol * (abs(new) + 1.0) and largest < STEP_TOL:
            converged = True
            break
    eta = eta_fixed + a_times(vals, cols, u)
    for i in range(n):
        wt[i] = _score_and_weight(code, y[i], eta[i], w[i], nb)[1]
    d, e, ls, logdet = factorize(vals, wt, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr)
    if code == 2:
        for i in range(n):
            old -= 2.0 * w[i] * (math.lgamma(y[i] + nb) - math.lgamma(nb))
    return old, u, logdet, converged, math.isfinite(logdet)


@jit
def laplace_gradient(code, eta_fixed, vals, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr, y, w, nb, u,
                     xr, theta_slot, theta_xcol, x):
    """Gradient of the Laplace deviance D = -2 sum l_i + ||u||^2 + log|M| at the mode u with respect
    to (theta, beta, log NB theta).  theta entry k multiplies ``xr[:, theta_xcol[k]]`` (the term's
    covariate) into slot ``theta_slot[k]``: dA/dtheta_k has one entry per row.

    * the penalized part by the envelope theorem (its u-derivative is 0 at the mode);
    * log|M|: tr(G dM), dM = A_k^T W A + A^T W A_k + A^T diag(dW) A, with G = M^-1 on M's pattern
      (:func:`inverse_subset`), h_i = a_i^T G a_i, and dW = W' d eta including the mode's own
      movement du = M^-1 rhs, folded into one solve z = M^-1 A^T (h W') (the adjoint).
    """
    n, r = vals.shape
    q = len(u)
    p = x.shape[1]
    nt = len(theta_slot)
    psi = _digamma(nb)
    eta = eta_fixed + a_times(vals, cols, u)
    s = np.empty(n)
    wt = np.empty(n)
    wp = np.empty(n)
    dl = np.empty(n)
    ds = np.empty(n)
    dw = np.empty(n)
    for i in range(n):
        s[i], wt[i], wp[i], dl[i], ds[i], dw[i] = _derivatives(code, y[i], eta[i], w[i], nb, psi, code == 2)
    d, e, ls, logdet = factorize(vals, wt, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr)
    g11, g1r, grr = inverse_subset(d, e, ls, p1, n_levels, lev_ptr, lev_cols)
    ga = g_times_rows(vals, cols, pos, p1, g11, g1r, grr)
    hw = np.empty((n, 1))
    h = np.empty(n)
    for i in range(n):
        acc = 0.0
        for t in range(r):
            acc += vals[i, t] * ga[i, t]
        h[i] = acc
        hw[i, 0] = acc * wp[i]
    z = solve_lt(d, e, ls, p1, n_levels, lev_ptr, lev_cols,
                 solve_l(d, e, ls, p1, n_levels, lev_ptr, lev_cols, at_times(vals, cols, q, hw)))[:, 0]
    az = a_times(vals, cols, z)
    grad = np.zeros(nt + p + 1)
    for i in range(n):
        for k in range(nt):
            slot = theta_slot[k]
            xv = xr[i, theta_xcol[k]]
            aku = xv * u[cols[i, slot]]  # (A_k u)_i
            akz = xv * z[cols[i, slot]]
            grad[k] += (-2.0 * s[i] * aku + 2.0 * wt[i] * xv * ga[i, slot] + h[i] * wp[i] * aku
                        + s[i] * akz - az[i] * wt[i] * aku)
        for j in range(p):
            grad[nt + j] += (-2.0 * s[i] + h[i] * wp[i] - az[i] * wt[i]) * x[i, j]
        grad[nt + p] += -2.0 * dl[i] + h[i] * dw[i] + az[i] * ds[i]
    return grad


@jit
def lmm_deviance(vals, w, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr, x, y, reml, xr, theta_slot, theta_xcol):
    """The profiled deviance of a linear mixed model (``lmm.lmm_deviance``'s value) and its
    gradient in theta:

    * log|M|: 2 sum_i w_i a_ki^T G a_i (G = M^-1 on M's pattern, as in :func:`laplace_gradient`);
    * the penalized residual sum of squares r2 by the envelope theorem (it is a minimum over
      beta and u): -2 sum_i w_i res_i (A_k u)_i, times (n or n - p) / r2;
    * REML's log|X^T V^-1 X| (Q = X^T W X - RZX^T RZX): -2 tr(Q^-1 Xr^T W A_k P) with
      P = M^-1 A^T W X and Xr = X - A P.

    Returns (deviance, gradient); deviance nan where M is not positive definite."""
    n, r = vals.shape
    p = x.shape[1]
    q = n_levels * p1 + qr
    nt = len(theta_slot)
    grad = np.zeros(nt)
    d, e, ls, logdet = factorize(vals, w, cols, pos, p1, n_levels, lev_ptr, lev_cols, qr)
    if not math.isfinite(logdet):
        return np.nan, grad
    wxy = np.empty((n, p + 1))
    for i in range(n):
        for j in range(p):
            wxy[i, j] = w[i] * x[i, j]
        wxy[i, p] = w[i] * y[i]
    rz = solve_l(d, e, ls, p1, n_levels, lev_ptr, lev_cols, at_times(vals, cols, q, wxy))
    # Q = X^T W X - RZX^T RZX (p, p) and its right-hand side, from one product
    qfull = _tn(x, wxy) - _tn(rz[:, :p], rz)  # (p, p + 1)
    rq = np.ascontiguousarray(qfull[:, :p])
    logdet_q = cholesky_lower(rq)
    if not math.isfinite(logdet_q):
        return np.nan, grad
    beta = _cho_solve(rq, np.ascontiguousarray(qfull[:, p:]))[:, 0].copy()
    cu = np.empty((q, 1))
    for c in range(q):
        acc = rz[c, p]
        for j in range(p):
            acc -= rz[c, j] * beta[j]
        cu[c, 0] = acc
    u = solve_lt(d, e, ls, p1, n_levels, lev_ptr, lev_cols, cu)[:, 0].copy()
    res = y - a_times(vals, cols, u)
    for i in range(n):
        for j in range(p):
            res[i] -= x[i, j] * beta[j]
    r2 = 0.0
    logw = 0.0
    for i in range(n):
        r2 += w[i] * res[i] * res[i]
        logw += math.log(w[i])
    r2 += np.dot(u, u)
    denom = n - p if reml else n
    dev = logdet + denom * (1.0 + math.log(2.0 * math.pi * r2 / denom)) - logw
    if reml:
        dev += logdet_q
    g11, g1r, grr = inverse_subset(d, e, ls, p1, n_levels, lev_ptr, lev_cols)
    ga = g_times_rows(vals, cols, pos, p1, g11, g1r, grr)
    if reml and p > 0:
        pm = solve_lt(d, e, ls, p1, n_levels, lev_ptr, lev_cols, np.ascontiguousarray(rz[:, :p]))  # M^-1 A^T W X
        xres = x.copy()  # Xr = X - A P
        for i in range(n):
            for t in range(r):
                a = vals[i, t]
                c = cols[i, t]
                for j in range(p):
                    xres[i, j] -= a * pm[c, j]
        xq = _cho_solve(rq, np.ascontiguousarray(xres.T)).T.copy()  # row i: (Q^-1 Xr_i)^T
    else:
        pm = np.zeros((q, 0))
        xq = np.zeros((n, 0))
    for i in range(n):
        for k in range(nt):
            slot = theta_slot[k]
            xv = xr[i, theta_xcol[k]]
            c = cols[i, slot]
            g = 2.0 * w[i] * xv * ga[i, slot] - denom / r2 * 2.0 * w[i] * res[i] * xv * u[c]
            if reml:
                acc = 0.0
                for j in range(p):
                    acc += xq[i, j] * pm[c, j]
                g -= 2.0 * w[i] * xv * acc
            grad[k] += g
    return dev, grad
