"""GCTA and plink2 relationship-matrix files, read and written.

* GCTA binary: ``PREFIX.grm.bin`` (float32 lower triangle with diagonal, row by row),
  ``PREFIX.grm.N.bin`` (float32 pair counts, same layout), ``PREFIX.grm.id`` (FID IID, no header).
* GCTA text: ``PREFIX.grm.gz`` (``i j N value`` per pair, 1-based, i >= j) with ``PREFIX.grm.id``.
* GEMMA: ``PREFIX.cXX.txt`` / ``PREFIX.sXX.txt`` (square text matrix, no IDs: the rows follow
  the .fam it was computed from, given separately).
* plink2: ``PREFIX.rel`` (text; square, square0 or triangle shape), ``PREFIX.rel.gz``,
  ``PREFIX.rel.bin`` (float64, or float32 from ``bin4``; square or triangle), with
  ``PREFIX.rel.id`` (``#FID IID`` header, or plink 1.9's headerless FID IID).

Text is written with 9 significant digits, so float32 values survive a round trip exactly.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_open, atomic_path
from .._validation import check_file
from ..exceptions import InputError


def _tril(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(n)


def _from_tril(values: np.ndarray, n: int, dtype) -> np.ndarray:
    out = np.zeros((n, n), dtype=dtype)
    i, j = _tril(n)
    out[i, j] = values
    out[j, i] = values
    return out


def _n_from_tril(count: int, path) -> int:
    n = int((np.sqrt(8 * count + 1) - 1) / 2)
    if n * (n + 1) // 2 != count:
        raise InputError(f"{path}: {count} values do not form a lower triangle of any size")
    return n


def read_id_file(path) -> tuple[np.ndarray, np.ndarray]:
    """FID and IID columns of a .grm.id / .rel.id file (a '#' header line is skipped; a file
    with a single IID column gives FID = IID)."""
    path = check_file(path, "ID file")
    fids, iids = [], []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) == 1:
                fids.append(fields[0])
                iids.append(fields[0])
            else:
                fids.append(fields[0])
                iids.append(fields[1])
    if not iids:
        raise InputError(f"{path}: no sample IDs")
    return np.asarray(fids, dtype=object), np.asarray(iids, dtype=object)


def write_id_file(path, fid, iid, *, header: bool) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        if header:
            fh.write("#FID\tIID\n")
        for f, i in zip(fid, iid):
            fh.write(f"{f}\t{i}\n")


def _check_count(n_ids: int, n: int, path, id_path) -> None:
    if n_ids != n:
        raise InputError(f"{path}: holds a {n} x {n} matrix but {id_path} lists {n_ids} samples; "
                         "the two files must come from the same run")


# --- GCTA ------------------------------------------------------------------------------------

def write_gcta(prefix, matrix: np.ndarray, fid, iid, counts=None, *, text: bool = False) -> list[Path]:
    """Write GCTA's binary (default) or gz text GRM; ``counts`` (scalar or n x n) fills N."""
    prefix = str(prefix)
    n = matrix.shape[0]
    i, j = _tril(n)
    values = np.asarray(matrix)[i, j].astype(np.float32)
    n_values = np.broadcast_to(np.asarray(counts if counts is not None else 0, dtype=np.float64), (n, n))[i, j]
    paths = [Path(prefix + ".grm.id")]
    write_id_file(paths[0], fid, iid, header=False)
    if text:
        paths.append(Path(prefix + ".grm.gz"))
        with atomic_path(paths[1]) as tmp, gzip.open(tmp, "wt", encoding="ascii") as fh:
            for a, b, c, v in zip(i + 1, j + 1, n_values, values):
                fh.write(f"{a}\t{b}\t{c:.9g}\t{v:.9g}\n")
    else:
        paths += [Path(prefix + ".grm.bin"), Path(prefix + ".grm.N.bin")]
        with atomic_open(paths[1], "wb") as fh:
            fh.write(values.tobytes())
        with atomic_open(paths[2], "wb") as fh:
            fh.write(n_values.astype(np.float32).tobytes())
    return paths


def read_gcta(prefix) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """(matrix float32, counts float32 or None, fid, iid) from a GCTA binary or gz GRM."""
    prefix = str(prefix)
    for suffix in (".grm.bin", ".grm.gz", ".grm.id", ".grm"):
        if prefix.endswith(suffix):
            prefix = prefix[: -len(suffix)]
    id_path = Path(prefix + ".grm.id")
    fid, iid = read_id_file(id_path)
    n = len(iid)
    binary = Path(prefix + ".grm.bin")
    if binary.exists():
        raw = np.fromfile(binary, dtype=np.float32)
        if raw.size != n * (n + 1) // 2:
            raise InputError(f"{binary}: {raw.size} values, but {id_path} lists {n} samples "
                             f"(expected {n * (n + 1) // 2}); the files do not belong together")
        matrix = _from_tril(raw, n, np.float32)
        counts = None
        n_path = Path(prefix + ".grm.N.bin")
        if n_path.exists():
            craw = np.fromfile(n_path, dtype=np.float32)
            if craw.size == raw.size:
                counts = _from_tril(craw, n, np.float32)
        return matrix, counts, fid, iid
    text = check_file(prefix + ".grm.gz", "GCTA GRM (.grm.bin or .grm.gz)")
    try:
        table = np.loadtxt(text, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{text}: not a GCTA text GRM ({exc})") from None
    if table.shape[1] != 4:
        raise InputError(f"{text}: expected 4 columns (i j N value), found {table.shape[1]}")
    a, b = table[:, 0].astype(np.int64) - 1, table[:, 1].astype(np.int64) - 1
    if a.min() < 0 or max(a.max(), b.max()) >= n:
        raise InputError(f"{text}: sample numbers outside 1..{n} (the count in {id_path})")
    matrix = np.zeros((n, n), np.float32)
    counts = np.zeros((n, n), np.float32)
    matrix[a, b] = matrix[b, a] = table[:, 3]
    counts[a, b] = counts[b, a] = table[:, 2]
    return matrix, counts, fid, iid


# --- plink2 ----------------------------------------------------------------------------------

def write_rel(prefix, matrix: np.ndarray, fid, iid, *, binary: bool = False, single: bool = False,
              gz: bool = False, shape: str = "square") -> list[Path]:
    """Write a plink2-style .rel (text, or .rel.gz) or .rel.bin (float64, or float32 with
    ``single``) in ``shape`` 'square' or 'triangle', plus .rel.id."""
    if shape not in ("square", "triangle"):
        raise InputError(f"rel shape must be square or triangle, got {shape!r}")
    prefix = str(prefix)
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    id_path = Path(prefix + ".rel.id")
    write_id_file(id_path, fid, iid, header=True)
    if binary:
        path = Path(prefix + ".rel.bin")
        data = matrix if shape == "square" else matrix[_tril(n)]
        with atomic_open(path, "wb") as fh:
            fh.write(np.ascontiguousarray(data, dtype=np.float32 if single else np.float64).tobytes())
        return [path, id_path]
    path = Path(prefix + (".rel.gz" if gz else ".rel"))
    with atomic_path(path) as tmp, (gzip.open(tmp, "wt", encoding="ascii") if gz
                                    else open(tmp, "w", encoding="ascii")) as fh:
        for r in range(n):
            row = matrix[r] if shape == "square" else matrix[r, : r + 1]
            fh.write("\t".join(f"{v:.9g}" for v in row) + "\n")
    return [path, id_path]


def read_rel(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix, fid, iid) from a plink2 .rel / .rel.gz / .rel.bin (shape and precision detected)."""
    path = check_file(path, "plink2 relationship matrix")
    name = str(path)
    base = name
    for suffix in (".rel.bin", ".rel.gz", ".rel"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            break
    id_path = Path(base + ".rel.id")
    fid, iid = read_id_file(id_path)
    n = len(iid)
    if name.endswith(".bin"):
        size = path.stat().st_size
        layouts = {n * n * 8: ("square", np.float64), n * n * 4: ("square", np.float32),
                   n * (n + 1) // 2 * 8: ("triangle", np.float64), n * (n + 1) // 2 * 4: ("triangle", np.float32)}
        if size not in layouts:
            raise InputError(f"{path}: {size} bytes fit no square or triangle matrix of the {n} samples "
                             f"in {id_path}; the files do not belong together")
        shape, dtype = layouts[size]
        raw = np.fromfile(path, dtype=dtype)
        if shape == "square":
            return raw.reshape(n, n), fid, iid
        return _from_tril(raw, n, dtype), fid, iid
    opener = gzip.open if name.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="ascii") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                rows.append(np.array(line.split(), dtype=np.float64))
            except ValueError:
                raise InputError(f"{path}, line {lineno}: non-numeric value in the matrix") from None
    _check_count(n, len(rows), path, id_path)
    lengths = np.array([len(r) for r in rows])
    if np.all(lengths == n):
        matrix = np.vstack(rows)
        if np.allclose(np.triu(matrix, 1), 0) and not np.allclose(np.tril(matrix, -1), 0):
            matrix = matrix + np.tril(matrix, -1).T  # square0: upper triangle written as zeros
        return matrix, fid, iid
    if np.array_equal(lengths, np.arange(1, n + 1)):
        return _from_tril(np.concatenate(rows), n, np.float64), fid, iid
    bad = int(np.flatnonzero((lengths != n) & (lengths != np.arange(1, n + 1)))[0])
    raise InputError(f"{path}, line {bad + 1}: {lengths[bad]} values; expected {n} (square) or "
                     f"{bad + 1} (triangle)")


def read_gemma(path, id_path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix, fid, iid) from GEMMA's ``-gk`` output (``PREFIX.cXX.txt`` / ``.sXX.txt``: the
    square matrix as text, rows in the order of the .fam it was computed from), with the IDs from
    ``id_path`` (that .fam, or an FID IID file)."""
    path = check_file(path, "GEMMA kinship")
    if id_path is None:
        raise InputError(f"{path}: a GEMMA kinship has no sample IDs; give the .fam it was computed from "
                         "(--grm-ids FILE.fam, or --bfile)")
    fid, iid = read_id_file(id_path)
    try:
        matrix = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{path}: not a GEMMA kinship matrix ({' '.join(str(exc).split())})") from None
    if matrix.shape != (len(iid), len(iid)):
        raise InputError(f"{path}: a {matrix.shape[0]} x {matrix.shape[1]} matrix, but {id_path} lists {len(iid)} "
                         "samples; give the .fam the kinship was computed from")
    return matrix, fid, iid


def kinship_format(path: str | os.PathLike) -> str:
    """'h5', 'gcta', 'gcta-sparse', 'mtx', 'rel' or 'gemma' from a file name (a GCTA prefix
    without extension counts as gcta; GEMMA's kinship is PREFIX.cXX.txt or PREFIX.sXX.txt)."""
    name = str(path)
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if name.endswith(".grm.sp"):
        return "gcta-sparse"
    if name.endswith(".mtx"):
        return "mtx"
    if name.endswith((".cXX.txt", ".sXX.txt")):
        return "gemma"
    if name.endswith((".rel", ".rel.gz", ".rel.bin")):
        return "rel"
    if name.endswith((".grm.bin", ".grm.gz", ".grm.id", ".grm")) or Path(name + ".grm.id").exists():
        return "gcta"
    raise InputError(f"{path}: cannot tell the kinship format; use .h5 (gwas-glmm), "
                     "PREFIX.grm.bin/.grm.gz (GCTA), PREFIX.grm.sp (GCTA sparse), .mtx (SAIGE sparse), "
                     ".rel/.rel.gz/.rel.bin (plink2) or .cXX.txt/.sXX.txt (GEMMA)")
