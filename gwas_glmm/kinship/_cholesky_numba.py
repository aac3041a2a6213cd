"""numba kernels of the sparse Cholesky factor of one large group of relatives (kinship.sparse_chol).

Up-looking Cholesky as in Davis, *Direct Methods for Sparse Linear Systems* (2006), ch. 4: the
elimination tree, the pattern of each row of L as a reach in that tree, a symbolic pass that
counts and places every entry once, then numeric passes that only fill values.  The matrix comes
as its upper triangle in CSC (column k holds rows i <= k, sorted), already permuted by the
fill-reducing ordering.  L is CSC, each column's diagonal first and rows ascending, so its pattern
is closed (i, k in column j, i > k  =>  (i, k) in L): the selected inverse (Takahashi's recurrence)
finds every entry it needs in L's own pattern.
"""

from __future__ import annotations

import numpy as np

from .._accelerate import jit


@jit
def etree(cp, ci, n):
    """Parent of each column in the elimination tree (-1 at a root)."""
    parent = np.full(n, -1, dtype=np.int64)
    ancestor = np.full(n, -1, dtype=np.int64)
    for k in range(n):
        for p in range(cp[k], cp[k + 1]):
            i = ci[p]
            while i != -1 and i < k:
                nxt = ancestor[i]
                ancestor[i] = k
                if nxt == -1:
                    parent[i] = k
                i = nxt
    return parent


@jit
def _reach(cp, ci, k, parent, stack, mark):
    """Columns j < k with L[k, j] != 0, written to stack[top:] in an order in which each column
    comes after those it depends on; returns top."""
    n = len(parent)
    top = n
    mark[k] = k
    for p in range(cp[k], cp[k + 1]):
        i = ci[p]
        if i >= k:
            continue
        length = 0
        while mark[i] != k:
            stack[length] = i
            length += 1
            mark[i] = k
            i = parent[i]
        while length > 0:
            length -= 1
            top -= 1
            stack[top] = stack[length]
    return top


@jit
def column_counts(cp, ci, parent):
    """Entries of each column of L, diagonal included."""
    n = len(parent)
    stack = np.empty(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    counts = np.ones(n, dtype=np.int64)
    for k in range(n):
        top = _reach(cp, ci, k, parent, stack, mark)
        for t in range(top, n):
            counts[stack[t]] += 1
    return counts


@jit
def symbolic(cp, ci, parent, counts):
    """(lp, li): L's column pointers and row indices (diagonal first, rows ascending)."""
    n = len(parent)
    stack = np.empty(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    lp = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        lp[j + 1] = lp[j] + counts[j]
    li = np.empty(lp[n], dtype=np.int64)
    nxt = lp[:-1].copy()
    for k in range(n):
        top = _reach(cp, ci, k, parent, stack, mark)
        for t in range(top, n):
            j = stack[t]
            li[nxt[j]] = k
            nxt[j] += 1
        li[nxt[k]] = k  # rows arrive in ascending k: column k's diagonal is its first entry
        nxt[k] += 1
    return lp, li


@jit
def numeric(cp, ci, cx, parent, lp, li, lx):
    """Fill lx with L's values for the upper-triangle values cx; returns -1, or the column whose
    pivot was not positive (the matrix is not positive definite)."""
    n = len(parent)
    stack = np.empty(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    x = np.zeros(n)
    nxt = lp[:-1].copy()
    for k in range(n):
        top = _reach(cp, ci, k, parent, stack, mark)
        for p in range(cp[k], cp[k + 1]):
            if ci[p] <= k:
                x[ci[p]] += cx[p]
        d = x[k]
        x[k] = 0.0
        for t in range(top, n):
            j = stack[t]
            lkj = x[j] / lx[lp[j]]
            x[j] = 0.0
            for p in range(lp[j] + 1, nxt[j]):
                x[li[p]] -= lx[p] * lkj
            d -= lkj * lkj
            lx[nxt[j]] = lkj
            nxt[j] += 1
        if not d > 0.0:
            return k
        lx[nxt[k]] = np.sqrt(d)
        nxt[k] += 1
    return -1


@jit
def selected_inverse(lp, li, lx):
    """Z = (L L')^-1 on L's pattern (zx aligned with lx), by Takahashi's recurrence from the last
    column back: Z[i, j] = -sum_k Z[i, k] L[k, j] / L[j, j] over the column's rows k > j."""
    n = len(lp) - 1
    zx = np.zeros(len(lx))
    acc = np.zeros(n)
    pos = np.full(n, -1, dtype=np.int64)
    for j in range(n - 1, -1, -1):
        start, stop = lp[j] + 1, lp[j + 1]
        for p in range(start, stop):
            pos[li[p]] = p
        for p in range(start, stop):  # Z[:, k] for each row k of column j: its stored part (rows >= k)
            k = li[p]
            lkj = lx[p]
            acc[k] += zx[lp[k]] * lkj
            for q in range(lp[k] + 1, lp[k + 1]):
                i = li[q]
                if pos[i] >= 0:
                    acc[i] += zx[q] * lkj  # Z[i, k] L[k, j], i > k
                    acc[k] += zx[q] * lx[pos[i]]  # Z[k, i] L[i, j], by symmetry
        inv = 1.0 / lx[lp[j]]
        diag = inv * inv
        for p in range(start, stop):
            i = li[p]
            zx[p] = -acc[i] * inv
            diag -= zx[p] * lx[p] * inv
            acc[i] = 0.0
            pos[i] = -1
        zx[lp[j]] = diag
    return zx


@jit
def lower_solve(lp, li, lx, b):
    """b <- L^-1 b, column by column (b: (n, m) float64)."""
    n, m = b.shape
    for c in range(m):
        for j in range(n):
            v = b[j, c] / lx[lp[j]]
            b[j, c] = v
            if v != 0.0:
                for p in range(lp[j] + 1, lp[j + 1]):
                    b[li[p], c] -= lx[p] * v


@jit
def upper_solve(lp, li, lx, b):
    """b <- L'^-1 b, column by column."""
    n, m = b.shape
    for c in range(m):
        for j in range(n - 1, -1, -1):
            s = b[j, c]
            for p in range(lp[j] + 1, lp[j + 1]):
                s -= lx[p] * b[li[p], c]
            b[j, c] = s / lx[lp[j]]


@jit(fastmath=True)
def whitened_sumsq(g, members, lp, li, lx, out):
    """out[c] += |L^-1 g[members, c]|^2 for each column of a genotype block (any float type, any
    layout), in float64, one column at a time through one work vector."""
    s = len(members)
    x = np.empty(s)
    for c in range(g.shape[1]):
        for r in range(s):
            x[r] = np.float64(g[members[r], c])
        total = 0.0
        for j in range(s):
            v = x[j] / lx[lp[j]]
            total += v * v
            if v != 0.0:
                for p in range(lp[j] + 1, lp[j + 1]):
                    x[li[p]] -= lx[p] * v
        out[c] += total
