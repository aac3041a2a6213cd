"""Sparse relationship-matrix files, read and written: the formats fastGWA and SAIGE read.

* GCTA sparse (what ``gcta --make-bK-sparse`` writes and ``--fastGWA-mlm --grm-sparse`` reads):
  ``PREFIX.grm.sp``, one ``i j value`` line per kept entry of the lower triangle, diagonal
  included, ``i``/``j`` 0-based row numbers of ``PREFIX.grm.id`` (FID IID, no header).
* SAIGE (``createSparseGRM.R``; ``--sparseGRMFile`` / ``--sparseGRMSampleIDFile``): a Matrix
  Market coordinate file ``NAME.mtx`` (``real symmetric``, 1-based, lower triangle) and
  ``NAME.mtx.sampleIDs.txt``, one IID per line, no header.  SAIGE matches samples by IID alone,
  so a kinship read from it is aligned by IID (``meta["iid_only"]``).

Both read into a symmetric CSR matrix; entries listed twice (both triangles) must agree.  Values
are written with 9 significant digits, so float32 entries survive a round trip exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse

from .._atomic import atomic_open, atomic_path
from .._validation import check_file
from ..exceptions import InputError
from .kinship_formats import read_id_file, write_id_file

GCTA_SPARSE = ".grm.sp"
SAIGE_IDS = ".sampleIDs.txt"


def _lower_triplets(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low = scipy.sparse.tril(scipy.sparse.csr_matrix(matrix), format="coo")
    order = np.lexsort((low.col, low.row))
    return low.row[order], low.col[order], low.data[order]


def _symmetric(rows, cols, vals, n: int, path) -> scipy.sparse.csr_matrix:
    """The symmetric CSR matrix from entries given in either or both triangles."""
    lower = rows >= cols
    r = np.where(lower, rows, cols)
    c = np.where(lower, cols, rows)
    key = r.astype(np.int64) * n + c
    order = np.argsort(key, kind="stable")
    key, vals = key[order], np.asarray(vals, dtype=np.float64)[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    dup = ~first
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        if not np.all(vals[dup] == vals[np.flatnonzero(first)[np.cumsum(first)[dup] - 1]]):
            raise InputError(f"{path}: entry ({key[k] // n + 1}, {key[k] % n + 1}) is listed twice with different "
                             "values; a relationship matrix must be symmetric")
    key, vals = key[first], vals[first]
    r, c = key // n, key % n
    off = r != c
    out = scipy.sparse.csr_matrix((np.concatenate([vals, vals[off]]),
                                   (np.concatenate([r, c[off]]), np.concatenate([c, r[off]]))), shape=(n, n))
    out.sort_indices()
    return out


def _prefix(path, suffixes) -> str:
    name = str(path)
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


# --- GCTA ------------------------------------------------------------------------------------

def write_gcta_sparse(prefix, matrix, fid, iid) -> list[Path]:
    """``PREFIX.grm.sp`` (lower triangle, 0-based) and ``PREFIX.grm.id``."""
    prefix = _prefix(prefix, (GCTA_SPARSE, ".grm.id"))
    paths = [Path(prefix + GCTA_SPARSE), Path(prefix + ".grm.id")]
    r, c, v = _lower_triplets(matrix)
    table = pd.DataFrame({"i": r, "j": c, "v": v.astype(np.float32).astype(np.float64)})
    with atomic_path(paths[0]) as tmp:
        table.to_csv(tmp, sep="\t", header=False, index=False, float_format="%.9g")
    write_id_file(paths[1], fid, iid, header=False)
    return paths


def read_gcta_sparse(path) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """(symmetric CSR matrix, fid, iid) from ``PREFIX.grm.sp`` and ``PREFIX.grm.id``."""
    prefix = _prefix(path, (GCTA_SPARSE, ".grm.id"))
    sp = check_file(prefix + GCTA_SPARSE, "GCTA sparse GRM")
    id_path = check_file(prefix + ".grm.id", f"sample IDs of {sp}")
    fid, iid = read_id_file(id_path)
    n = len(iid)
    try:
        table = pd.read_csv(sp, sep=r"\s+", header=None, comment="#", dtype=str, na_filter=False).to_numpy()
    except pd.errors.EmptyDataError:
        raise InputError(f"{sp}: empty; a sparse GRM lists at least its diagonal") from None
    if table.shape[1] != 3:
        raise InputError(f"{sp}: expected 3 columns (i j value, 0-based rows of {id_path}), found {table.shape[1]}")
    idx = np.full((len(table), 2), -1, dtype=np.int64)
    for col in (0, 1):
        numbers = pd.to_numeric(table[:, col], errors="coerce")
        bad = np.flatnonzero(np.isnan(numbers) | (numbers != np.round(numbers)))
        if bad.size:
            raise InputError(f"{sp}, line {bad[0] + 1}: {table[bad[0], col]!r} is not a sample number")
        idx[:, col] = numbers.astype(np.int64)
    values = pd.to_numeric(table[:, 2], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(f"{sp}, line {bad[0] + 1}: {table[bad[0], 2]!r} is not a finite number")
    out = np.flatnonzero((idx < 0).any(axis=1) | (idx >= n).any(axis=1))
    if out.size:
        raise InputError(f"{sp}, line {out[0] + 1}: sample number {idx[out[0]].max()} outside 0..{n - 1} "
                         f"({id_path} lists {n} samples); the files do not belong together")
    return _symmetric(idx[:, 0], idx[:, 1], values, n, sp), fid, iid


# --- SAIGE -----------------------------------------------------------------------------------

def write_mtx(path, matrix, iid) -> list[Path]:
    """SAIGE's ``NAME.mtx`` (Matrix Market, real symmetric) and ``NAME.mtx.sampleIDs.txt``."""
    path = Path(path)
    ids = Path(str(path) + SAIGE_IDS)
    r, c, v = _lower_triplets(matrix)
    low = scipy.sparse.coo_matrix((v.astype(np.float32).astype(np.float64), (r, c)), shape=matrix.shape)
    with atomic_open(path, "wb") as fh:
        scipy.io.mmwrite(fh, low, symmetry="symmetric", precision=9)
    with atomic_open(ids, "w", encoding="utf-8") as fh:
        fh.writelines(f"{i}\n" for i in iid)
    return [path, ids]


def read_mtx(path, id_path=None) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """(symmetric CSR matrix, fid = iid, iid) from a Matrix Market file and its sample-ID file
    (default ``NAME.mtx.sampleIDs.txt``: one IID per line)."""
    path = check_file(path, "Matrix Market sparse GRM")
    id_path = check_file(id_path or str(path) + SAIGE_IDS, f"sample IDs of {path} (SAIGE's --sparseGRMSampleIDFile)")
    _, iid = read_id_file(id_path)  # one column: FID = IID
    try:
        coo = scipy.io.mmread(str(path))
    except (ValueError, OSError, IndexError) as exc:
        raise InputError(f"{path}: not a Matrix Market file ({' '.join(str(exc).split())})") from None
    if not scipy.sparse.issparse(coo):
        coo = scipy.sparse.coo_matrix(coo)
    coo = coo.tocoo()
    if coo.shape[0] != coo.shape[1]:
        raise InputError(f"{path}: a {coo.shape[0]} x {coo.shape[1]} matrix; a relationship matrix is square")
    if coo.shape[0] != len(iid):
        raise InputError(f"{path}: a {coo.shape[0]} x {coo.shape[0]} matrix but {id_path} lists {len(iid)} samples; "
                         "the files do not belong together")
    if not np.all(np.isfinite(coo.data)):
        raise InputError(f"{path}: the matrix holds NaN or infinite values")
    return _symmetric(coo.row, coo.col, coo.data, len(iid), path), iid.copy(), iid
