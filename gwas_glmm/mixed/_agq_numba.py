"""numba kernel: the adaptive Gauss-Hermite deviance of one scalar grouping term and its
gradient, for the families of ``_pirls_numba`` (0 Poisson-log, 1 binomial-logit, 2 NB2-log).

Per group c, with v_i = theta z_i, the mode u_c (from ``pirls_scalar``), G_c = sum W_i v_i^2 and
the Laplace scale sigma_c = (1 + G_c)^-1/2, the nodes u_ck = u_c + sqrt(2) sigma_c x_k give

    L_ck = sum_i l_i(eta_fixed_i + v_i u_ck) - u_ck^2 / 2 + x_k^2 + log w_k
    log I_c = logsumexp_k L_ck + log sigma_c - log(pi) / 2,     D = -2 sum_c log I_c.

The gradient follows every dependence: the nodes' own (d L_ck / d psi at fixed u_ck), and the
centre and scale's (d u_c / d psi from the mode condition, as in the Laplace gradient; d sigma_c
/ d psi = -sigma_c^3 (d G_c / d psi) / 2), so it is the exact derivative of the value computed,
whatever the number of nodes.
"""

from __future__ import annotations

import math

import numpy as np

from .._accelerate import jit
from ._pirls_numba import _derivatives, _digamma, _loglik_kernel


@jit
def agq_deviance(code, eta_fixed, z, theta, codes, n_levels, u, y, w, nb, x, nodes, node_weights, with_grad):
    """(D without the family's mu-free constants, except NB2's lgamma terms, which depend on
    its theta; gradient in (theta, beta, log NB theta))."""
    n, p = x.shape
    nk = len(nodes)
    npar = p + 2
    psi = _digamma(nb)
    root2 = math.sqrt(2.0)
    g = np.zeros(n_levels)
    num = np.zeros((n_levels, npar))  # numerators of du_c / dpsi
    for i in range(n):
        c = codes[i]
        v = theta * z[i]
        s, wt, wp, dl, ds, dw = _derivatives(code, y[i], eta_fixed[i] + v * u[c], w[i], nb, psi, False)
        g[c] += wt * v * v
        num[c, 0] += s * z[i] - wt * v * z[i] * u[c]
        for j in range(p):
            num[c, 1 + j] -= wt * v * x[i, j]
        num[c, p + 1] += ds * v
    du = np.empty((n_levels, npar))
    sigma = np.empty(n_levels)
    for c in range(n_levels):
        sigma[c] = 1.0 / math.sqrt(1.0 + g[c])
        for k in range(npar):
            du[c, k] = num[c, k] / (1.0 + g[c])
    dsig = np.zeros((n_levels, npar))
    if with_grad:
        dg = np.zeros((n_levels, npar))
        for i in range(n):
            c = codes[i]
            v = theta * z[i]
            s, wt, wp, dl, ds, dw = _derivatives(code, y[i], eta_fixed[i] + v * u[c], w[i], nb, psi, False)
            vv = v * v
            dg[c, 0] += wp * vv * (z[i] * u[c] + v * du[c, 0]) + 2.0 * wt * v * z[i]
            for j in range(p):
                dg[c, 1 + j] += wp * vv * (x[i, j] + v * du[c, 1 + j])
            dg[c, p + 1] += wp * vv * v * du[c, p + 1] + dw * vv
        for c in range(n_levels):
            f = -0.5 * sigma[c] ** 3
            for k in range(npar):
                dsig[c, k] = f * dg[c, k]
    big = np.zeros((n_levels, nk))  # L_ck
    su = np.zeros((n_levels, nk))  # sum_i s_ik v_i
    for i in range(n):
        c = codes[i]
        v = theta * z[i]
        for k in range(nk):
            uk = u[c] + root2 * sigma[c] * nodes[k]
            eta = eta_fixed[i] + v * uk
            big[c, k] += _loglik_kernel(code, y[i], eta, w[i], nb)
            if with_grad:
                su[c, k] += _derivatives(code, y[i], eta, w[i], nb, psi, False)[0] * v
    dev = 0.0
    weight = np.empty((n_levels, nk))  # the nodes' shares of each group's integral
    for c in range(n_levels):
        top = -np.inf
        for k in range(nk):
            uk = u[c] + root2 * sigma[c] * nodes[k]
            big[c, k] += -0.5 * uk * uk + nodes[k] * nodes[k] + math.log(node_weights[k])
            top = max(top, big[c, k])
        total = 0.0
        for k in range(nk):
            weight[c, k] = math.exp(big[c, k] - top)
            total += weight[c, k]
        for k in range(nk):
            weight[c, k] /= total
        dev -= 2.0 * (top + math.log(total) + math.log(sigma[c]) - 0.5 * math.log(math.pi))
    if code == 2:
        for i in range(n):
            dev -= 2.0 * w[i] * (math.lgamma(y[i] + nb) - math.lgamma(nb))
    grad = np.zeros(npar)
    if not with_grad:
        return dev, grad
    for i in range(n):  # the nodes' own dependence, at fixed u_ck
        c = codes[i]
        v = theta * z[i]
        for k in range(nk):
            uk = u[c] + root2 * sigma[c] * nodes[k]
            s, wt, wp, dl, ds, dw = _derivatives(code, y[i], eta_fixed[i] + v * uk, w[i], nb, psi, code == 2)
            pk = weight[c, k]
            grad[0] += pk * s * z[i] * uk
            for j in range(p):
                grad[1 + j] += pk * s * x[i, j]
            grad[p + 1] += pk * dl
    for c in range(n_levels):  # through the centre and the scale
        e1 = 0.0
        e2 = 0.0
        for k in range(nk):
            uk = u[c] + root2 * sigma[c] * nodes[k]
            e = su[c, k] - uk
            e1 += weight[c, k] * e
            e2 += weight[c, k] * e * root2 * nodes[k]
        for k in range(npar):
            grad[k] += e1 * du[c, k] + (e2 + 1.0 / sigma[c]) * dsig[c, k]
    for k in range(npar):
        grad[k] *= -2.0
    return dev, grad
