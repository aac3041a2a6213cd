"""A Cholesky factorisation and a triangular solve that release the GIL.

``scipy.linalg.solve_triangular`` holds the GIL through LAPACK's trtrs, so two scan workers
solving at once took turns: each 1,024-variant block of the exact scan at n = 1,983 took 183 ms
instead of 92 on one core each.  Here BLAS's dtrsm is called through ctypes (which releases the
GIL) at the address scipy exports for Cython (``scipy.linalg.cython_blas``, found with numba's
public ``get_cython_function_address``), so workers solve in parallel.  The factorisation
(LAPACK's dpotrf, same route) works in the matrix's own memory and leaves a column-major
factor: numpy's ``cholesky`` (which releases the GIL) returns a row-major copy, which made
scipy's ``cho_solve`` with it 12x slower (2.0 s against 0.16 s at n = 9,892).
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np

_INT, _DOUBLE = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double)
_CHAR, _PTR = ctypes.c_char_p, ctypes.c_void_p
# each routine's Fortran arguments (all by reference), and where scipy exports it
_SIGNATURES = {
    "dtrsm": ("blas", (_CHAR, _CHAR, _CHAR, _CHAR, _INT, _INT, _DOUBLE, _PTR, _INT, _PTR, _INT)),
    "dsyrk": ("blas", (_CHAR, _CHAR, _INT, _INT, _DOUBLE, _PTR, _INT, _DOUBLE, _PTR, _INT)),
    "dgemm": ("blas", (_CHAR, _CHAR, _INT, _INT, _INT, _DOUBLE, _PTR, _INT, _PTR, _INT, _DOUBLE, _PTR, _INT)),
    "dpotrf": ("lapack", (_CHAR, _INT, _PTR, _INT, _INT)),
    "dormtr": ("lapack", (_CHAR, _CHAR, _CHAR, _INT, _INT, _PTR, _INT, _PTR, _PTR, _INT, _PTR, _INT, _INT)),
}


@cache
def _function(name: str):
    """BLAS/LAPACK routine ``name`` at the address scipy exports for Cython, callable via ctypes."""
    from numba.extending import get_cython_function_address

    library, args = _SIGNATURES[name]
    return ctypes.CFUNCTYPE(None, *args)(get_cython_function_address(f"scipy.linalg.cython_{library}", name))


def cholesky_lower(a: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of the symmetric positive-definite float64 matrix ``a``,
    computed in ``a``'s memory (which it overwrites) and returned as a Fortran-ordered view of it
    with the upper triangle zeroed; ``numpy.linalg.LinAlgError`` if ``a`` is not positive
    definite."""
    n = a.shape[0]
    if a.dtype != np.float64 or a.shape != (n, n) or not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise ValueError("cholesky_lower needs a square, contiguous float64 matrix")
    f = a if a.flags.f_contiguous else a.T  # symmetric: its transpose is the same matrix
    size, info = ctypes.c_int(n), ctypes.c_int(0)
    _function("dpotrf")(b"L", ctypes.byref(size), f.ctypes.data, ctypes.byref(size), ctypes.byref(info))
    if info.value:
        raise np.linalg.LinAlgError(f"the matrix is not positive definite (LAPACK dpotrf info {info.value})")
    _clear_upper(f)  # the upper triangle still holds the matrix
    return f


def solve_lower(chol: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L^-1 b for a lower-triangular float64 ``chol`` (either memory order; its upper triangle is
    not read) and an (n, m) ``b``: a new Fortran-ordered float64 array, ``b`` unchanged."""
    n = chol.shape[0]
    if chol.shape != (n, n) or b.ndim != 2 or b.shape[0] != n:
        raise ValueError(f"shapes {chol.shape} and {b.shape} do not fit a triangular solve")
    out = np.array(b, dtype=np.float64, order="F", copy=True)
    if n == 0 or out.shape[1] == 0:
        return out
    if chol.dtype == np.float64 and chol.flags.f_contiguous:
        a, uplo, trans = chol, b"L", b"N"
    else:  # a C-ordered lower factor is, read column-major, its transpose: upper
        a, uplo, trans = np.ascontiguousarray(chol, dtype=np.float64), b"U", b"T"
    rows, cols, one = ctypes.c_int(n), ctypes.c_int(out.shape[1]), ctypes.c_double(1.0)
    dtrsm = _function("dtrsm")
    dtrsm(b"L", uplo, trans, b"N", ctypes.byref(rows), ctypes.byref(cols), ctypes.byref(one),
          a.ctypes.data, ctypes.byref(rows), out.ctypes.data, ctypes.byref(rows))
    return out


def _apply_q(a: np.ndarray, tau: np.ndarray, z: np.ndarray, start: int, stop: int) -> None:
    """Columns ``start:stop`` of ``z`` (Fortran-ordered, n x n) overwritten by Q z, Q the
    orthogonal factor of dsytrd's lower reduction held in ``a`` (Fortran-ordered) and ``tau``:
    LAPACK's dormtr through ctypes, so calls on other threads run at once."""
    n, cols = a.shape[0], stop - start
    dormtr = _function("dormtr")
    rows, width, info = ctypes.c_int(n), ctypes.c_int(cols), ctypes.c_int(0)
    query, size = np.zeros(1), ctypes.c_int(-1)
    column = z[:, start:stop]
    args = (b"L", b"L", b"N", ctypes.byref(rows), ctypes.byref(width), a.ctypes.data, ctypes.byref(rows),
            tau.ctypes.data, column.ctypes.data, ctypes.byref(rows))
    dormtr(*args, query.ctypes.data, ctypes.byref(size), ctypes.byref(info))
    work = np.empty(max(1, int(query[0])))
    size = ctypes.c_int(work.size)
    dormtr(*args, work.ctypes.data, ctypes.byref(size), ctypes.byref(info))
    if info.value:
        raise RuntimeError(f"LAPACK dormtr failed (info {info.value})")


def eigh_in_pieces(a: np.ndarray, pieces: int, *, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric float64 matrix ``a``, for a
    machine whose CPUs other work holds.  LAPACK's syevd runs its three phases on a team of BLAS
    threads that meet at a barrier after every call; when the operating system has given one
    thread's core to someone else, each barrier waits a time slice (N = 3,000 beside two busy
    processes on 2 cores: 15.8 s on two threads against 2.2 s idle).  Here the tridiagonal
    reduction (dsytrd: half its flops are n matrix-vector products) and the tridiagonal
    divide-and-conquer (dstevd) run on one BLAS thread, and the back-transformation (dormtr,
    2 n^3 flops, 40% of the time on one thread at n = 3,000) is split by columns into ``pieces``
    independent calls on as many threads, one BLAS thread each, which never wait for each other.
    Same LAPACK routines as syevd, so the same results to rounding."""
    from concurrent.futures import ThreadPoolExecutor

    import scipy.linalg.lapack as lapack

    from ._threads import blas_threads

    n = a.shape[0]
    if a.dtype != np.float64 or a.shape != (n, n):
        raise ValueError("eigh_in_pieces needs a square float64 matrix")
    source = a.T if a.flags.c_contiguous else a  # symmetric: the transpose of a C-ordered matrix, read in place
    f = source if overwrite and source.flags.f_contiguous else np.array(source, order="F", copy=True)
    with blas_threads(1):
        lwork = int(lapack.dsytrd_lwork(n, lower=1)[0])
        reduced, diagonal, offdiagonal, tau, info = lapack.dsytrd(f, lower=1, lwork=lwork, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"LAPACK dsytrd failed (info {info})")
        values, vectors, info = lapack.dstevd(diagonal, offdiagonal, compute_v=1, overwrite_d=1, overwrite_e=1)
        if info:
            raise np.linalg.LinAlgError(f"LAPACK dstevd did not converge (info {info})")
        vectors = np.asfortranarray(vectors)
        bounds = np.linspace(0, n, max(1, min(pieces, n)) + 1).astype(int)
        with ThreadPoolExecutor(len(bounds) - 1) as pool:
            list(pool.map(lambda k: _apply_q(reduced, tau, vectors, bounds[k], bounds[k + 1]),
                          range(len(bounds) - 1)))
    return values, vectors


_BLOCK = 256  # panel and column-block width of the kernels below (dgemm runs near its peak from k = 256)


def _at(f: np.ndarray, row: int, col: int) -> int:
    """Address of element (row, col) of the Fortran-ordered float64 matrix ``f``."""
    return int(f.ctypes.data + 8 * (int(row) + int(col) * f.shape[0]))


def _balanced(m: int, pieces: int) -> list[int]:
    """Column bounds splitting the lower triangle of an m x m matrix into ``pieces`` parts of
    equal area (column c holds m - c entries)."""
    bounds = [round(m * (1.0 - np.sqrt(1.0 - t / pieces))) for t in range(pieces + 1)]
    return sorted(set(bounds))


def cholesky_in_pieces(a: np.ndarray, pieces: int) -> np.ndarray:
    """:func:`cholesky_lower` for a machine whose CPUs other work holds: a right-looking blocked
    Cholesky whose every step runs as ``pieces`` independent one-thread BLAS calls on as many
    threads (the panel's triangular solve split by rows, the trailing update by columns of equal
    work), so that no call waits at a barrier for a thread that has lost its core.  Threaded
    dpotrf meets its team at a barrier inside every block update: at n = 3,000 beside two busy
    processes on 2 cores two threads took 0.6-0.7 s against 0.31 s on one thread idle.  Here the
    threads meet twice per 256-column panel, between calls of tens of milliseconds.  Same
    operations as LAPACK's blocked dpotrf, so the same factor to rounding; ``a`` is overwritten."""
    from concurrent.futures import ThreadPoolExecutor

    from ._threads import blas_threads

    n = a.shape[0]
    if a.dtype != np.float64 or a.shape != (n, n) or not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise ValueError("cholesky_in_pieces needs a square, contiguous float64 matrix")
    f = a if a.flags.f_contiguous else a.T
    size = ctypes.c_int(n)
    one, minus = ctypes.c_double(1.0), ctypes.c_double(-1.0)
    potrf = _function("dpotrf")
    trsm = _function("dtrsm")
    syrk = _function("dsyrk")
    gemm = _function("dgemm")

    def panel_rows(k, b, r0, r1):  # rows r0:r1 of the panel below block k: A21 <- A21 L11^-T
        trsm(b"R", b"L", b"T", b"N", ctypes.byref(ctypes.c_int(r1 - r0)), ctypes.byref(ctypes.c_int(b)),
             ctypes.byref(one), _at(f, k, k), ctypes.byref(size), _at(f, r0, k), ctypes.byref(size))

    def update_columns(k, b, c0, c1):  # trailing columns c0:c1 (absolute), lower part: A22 -= A21 A21^T
        width, depth = ctypes.c_int(c1 - c0), ctypes.c_int(b)
        syrk(b"L", b"N", ctypes.byref(width), ctypes.byref(depth), ctypes.byref(minus), _at(f, c0, k),
             ctypes.byref(size), ctypes.byref(one), _at(f, c0, c0), ctypes.byref(size))
        if c1 < n:
            gemm(b"N", b"T", ctypes.byref(ctypes.c_int(n - c1)), ctypes.byref(width), ctypes.byref(depth),
                 ctypes.byref(minus), _at(f, c1, k), ctypes.byref(size), _at(f, c0, k), ctypes.byref(size),
                 ctypes.byref(one), _at(f, c1, c0), ctypes.byref(size))

    with blas_threads(1), ThreadPoolExecutor(max(1, pieces), thread_name_prefix="chol") as pool:
        for k in range(0, n, _BLOCK):
            b = min(_BLOCK, n - k)
            info = ctypes.c_int(0)
            potrf(b"L", ctypes.byref(ctypes.c_int(b)), _at(f, k, k), ctypes.byref(size), ctypes.byref(info))
            if info.value:
                raise np.linalg.LinAlgError("the matrix is not positive definite "
                                            f"(LAPACK dpotrf info {info.value + k})")
            start = k + b
            if start == n:
                break
            rows = np.linspace(start, n, min(pieces, n - start) + 1).astype(int)
            list(pool.map(panel_rows, [k] * (len(rows) - 1), [b] * (len(rows) - 1), rows[:-1], rows[1:]))
            cols = [start + c for c in _balanced(n - start, pieces)]
            list(pool.map(update_columns, [k] * (len(cols) - 1), [b] * (len(cols) - 1), cols[:-1], cols[1:]))
    _clear_upper(f)
    return f


def _clear_upper(f: np.ndarray) -> None:
    """Zero the strict upper triangle of the Fortran-ordered square ``f`` (by column blocks)."""
    n = f.shape[0]
    for start in range(0, n, 512):
        stop = min(n, start + 512)
        f[:start, start:stop] = 0.0
        f[start:stop, start:stop] = np.tril(f[start:stop, start:stop])


def inverse_diagonal(chol: np.ndarray, workers: int = 1) -> np.ndarray:
    """The diagonal of (L L^T)^-1 for the Fortran-ordered lower factor ``chol``: the squared column
    norms of L^-1, whose columns j:j+b solve L[j:, j:] X = I[j:, j:j+b] (n^3 / 3 flops in all,
    against 2 n^3 for Sigma^-1 C through n solves).  Column blocks are independent one-thread
    dtrsm calls on ``workers`` threads; memory n x 256 values per worker."""
    from concurrent.futures import ThreadPoolExecutor

    from ._threads import blas_threads

    n = chol.shape[0]
    if chol.dtype != np.float64 or chol.shape != (n, n) or not chol.flags.f_contiguous:
        raise ValueError("inverse_diagonal needs a square, Fortran-ordered float64 factor")
    out = np.empty(n)
    size, one = ctypes.c_int(n), ctypes.c_double(1.0)
    trsm = _function("dtrsm")

    def block(j):
        b, m = min(_BLOCK, n - j), n - j
        x = np.zeros((m, b), order="F")
        x[np.arange(b), np.arange(b)] = 1.0
        trsm(b"L", b"L", b"N", b"N", ctypes.byref(ctypes.c_int(m)), ctypes.byref(ctypes.c_int(b)),
             ctypes.byref(one), _at(chol, j, j), ctypes.byref(size), x.ctypes.data, ctypes.byref(ctypes.c_int(m)))
        out[j:j + b] = np.einsum("ij,ij->j", x, x)

    with blas_threads(1), ThreadPoolExecutor(max(1, workers), thread_name_prefix="invdiag") as pool:
        list(pool.map(block, range(0, n, _BLOCK)))  # largest blocks first: the pool stays balanced
    return out
