"""The kinship HDF5 file: one matrix, its samples, counts, LOCO parts, eigendecompositions.

Layout (``format = "gwas_glmm.kinship"``, ``format_version = 1``)::

    /                attrs: format, format_version, definition, missing, n_variants,
                            provenance (JSON), and the GRM parameters
    /samples/fid, /samples/iid          (n,) UTF-8 strings, row order of every matrix
    /matrix                             (n, n) float32 or float64, symmetric
    /counts/sample_missing              (n,) int64   ("gcta" missing mode only)
    /counts/pair_missing                (n, n) calls missing in both samples (uint8/16 or int32, LZF)
    /variants/id, /variants/chrom       the variants the GRM was built from
    /loco/<chrom>/sum                   (n, n) unnormalised sum of that chromosome's terms
    /loco/<chrom>/sample_missing, pair_missing, attrs n_variants
    /eigen/values, /eigen/vectors       attrs rank, n_clipped, min_raw, tol, complete
    /loco/<chrom>/eigen/...             optional, the LOCO matrices' decompositions
    /sparse/data, indices, indptr       CSR of the sparse GRM, attrs cutoff

With N_jk = M - c_j - c_k + S_jk the pair counts, the GRM without chromosome c is
(A * N - sum_c) / (N - N_c), computed in row chunks straight from the file.
A new file is written under a temporary name and renamed when complete; an eigendecomposition
added later to an existing file is marked complete only after its last byte is written.
Reading never executes anything from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse

from .._atomic import atomic_path
from .._validation import check_file
from ..exceptions import InputError
from ..io.chrom import chrom_name, normalise_chroms
from .eigen import Eigen
from .grm import GrmPart
from .kinship import Kinship

FORMAT = "gwas_glmm.kinship"
FORMAT_VERSION = 1
_STR = h5py.string_dtype()
_ROWS = 2**22  # values per row chunk when computing from the file


def _write_strings(group, name, values) -> None:
    group.create_dataset(name, data=np.asarray([str(v) for v in values], dtype=object), dtype=_STR)


def _symmetric_c(a: np.ndarray) -> np.ndarray:
    """A C-ordered view of a symmetric matrix without copying (a Fortran array's transpose)."""
    return a.T if (a.flags.f_contiguous and not a.flags.c_contiguous) else a


def _write_counts(group, sample_missing, pair_missing) -> None:
    """Missing-call counts; the pair matrix in the smallest unsigned type that holds it, LZF."""
    if sample_missing is None:
        return
    group.create_dataset("sample_missing", data=sample_missing)
    n = len(sample_missing)
    top = int(sample_missing.max()) if n else 0  # S_jk <= min(c_j, c_k)
    dtype = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int32
    ds = group.create_dataset("pair_missing", shape=(n, n), dtype=dtype, compression="lzf", shuffle=True,
                              chunks=(max(1, min(n, _ROWS // max(n, 1) // 4)), n))
    step = ds.chunks[0] * 8
    for start in range(0, n, step):  # symmetric, so rows of the Fortran array are its columns
        ds[start:start + step] = pair_missing[:, start:start + step].T.astype(dtype)


def write_eigen(group: h5py.Group, eigen: Eigen) -> None:
    if "eigen" in group:
        del group["eigen"]
    g = group.create_group("eigen")
    g.create_dataset("values", data=eigen.values)
    g.create_dataset("vectors", data=eigen.vectors)
    g.attrs.update(rank=eigen.rank, n_clipped=eigen.n_clipped, min_raw=eigen.min_raw, tol=eigen.tol)
    g.file.flush()
    g.attrs["complete"] = True


def read_eigen(group: h5py.Group) -> Eigen | None:
    g = group.get("eigen")
    if g is None or not g.attrs.get("complete", False):
        return None
    a = g.attrs
    return Eigen(g["values"][...], g["vectors"][...], int(a["rank"]), int(a["n_clipped"]),
                 float(a["min_raw"]), float(a["tol"]))


class KinshipWriter:
    """Write a new kinship file: ``with KinshipWriter(path) as w: w.write_part(...); w.write(...)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)

    def __enter__(self) -> KinshipWriter:
        tmp = self._ctx.__enter__()
        self.h5 = h5py.File(tmp, "w")
        self.h5.attrs.update(format=FORMAT, format_version=FORMAT_VERSION)
        return self

    def __exit__(self, *exc) -> bool:
        self.h5.close()
        return self._ctx.__exit__(*exc)

    def write_part(self, chrom: str, part: GrmPart) -> None:
        g = self.h5.require_group("loco").create_group(str(chrom))
        g.create_dataset("sum", data=_symmetric_c(part.total))
        g.attrs["n_variants"] = part.n_variants
        _write_counts(g, part.sample_missing, part.pair_missing)

    def write(self, kinship: Kinship, part: GrmPart | None = None, variants=None,
              provenance: dict | None = None) -> None:
        h5 = self.h5
        for key, value in kinship.meta.items():
            if key in ("format", "format_version"):  # this file's own, not the source's
                continue
            if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
                h5.attrs[key] = value
        if provenance is not None:
            h5.attrs["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
        s = h5.create_group("samples")
        _write_strings(s, "fid", kinship.fid)
        _write_strings(s, "iid", kinship.iid)
        if kinship.is_sparse:
            self.write_sparse(kinship.matrix, kinship.meta.get("sparse_cutoff", 0.0))
        else:
            h5.create_dataset("matrix", data=_symmetric_c(kinship.matrix))
        if part is not None:
            c = h5.create_group("counts")
            c.attrs["n_variants"] = part.n_variants
            _write_counts(c, part.sample_missing, part.pair_missing)
        if variants is not None:
            v = h5.create_group("variants")
            _write_strings(v, "id", variants.id)
            _write_strings(v, "chrom", variants.chrom)
        if kinship.eigen is not None:
            write_eigen(h5, kinship.eigen)

    def write_sparse(self, matrix, cutoff: float) -> None:
        csr = scipy.sparse.csr_matrix(matrix)
        g = self.h5.create_group("sparse")
        for name in ("data", "indices", "indptr"):
            g.create_dataset(name, data=getattr(csr, name), compression="gzip", compression_opts=1)
        g.attrs.update(cutoff=cutoff, n=csr.shape[0])


def save_kinship(path, kinship: Kinship, **kwargs) -> Path:
    """Write ``kinship`` (with its eigendecomposition if known) as a new kinship file."""
    with KinshipWriter(path) as w:
        w.write(kinship, **kwargs)
    return Path(path)


def _open(path) -> h5py.File:
    path = check_file(path, "kinship file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc}); give a kinship file written by gwas-glmm grm") from None
    # files imported by convert-kinship before 0.1 stored the source's format ("rel", "gcta") there
    imported = h5.attrs.get("format") in ("rel", "gcta") and "matrix" in h5 and "samples" in h5
    if h5.attrs.get("format") != FORMAT and not imported:
        h5.close()
        raise InputError(f"{path}: not a gwas_glmm kinship file (no format={FORMAT} attribute)")
    return h5


def kinship_header(path) -> tuple[np.ndarray, np.ndarray, bool]:
    """(fid, iid, whether a complete eigendecomposition is stored), without reading the matrix."""
    with _open(path) as h5:
        fid = h5["samples/fid"].asstr()[...].astype(object)
        iid = h5["samples/iid"].asstr()[...].astype(object)
        return fid, iid, bool("eigen" in h5 and h5["eigen"].attrs.get("complete", False))


def stored_matrices(path) -> tuple[bool, bool]:
    """(whether the file holds a dense matrix, whether it holds a sparse GRM)."""
    with _open(path) as h5:
        return "matrix" in h5, "sparse" in h5


def loco_names(path) -> list[str]:
    """The chromosomes with a LOCO part, in one spelling (:mod:`gwas_glmm.io.chrom`), whatever
    spelling the .bim the GRM was built from used."""
    with _open(path) as h5:
        return [chrom_name(k) for k in h5["loco"]] if "loco" in h5 else []


def grm_chromosomes(path) -> list[str] | None:
    """The chromosomes of the variants the GRM was built from (one spelling), or None where the
    file does not list its variants (an imported kinship)."""
    with _open(path) as h5:
        if "variants/chrom" not in h5:
            return None
        return list(dict.fromkeys(normalise_chroms(h5["variants/chrom"].asstr()[...])))


def _loco_key(h5: h5py.File, chrom: str, path) -> str:
    """The name of ``chrom``'s LOCO group, matched in one spelling."""
    keys = {chrom_name(k): k for k in h5["loco"]} if "loco" in h5 else {}
    if chrom_name(chrom) not in keys:
        raise InputError(f"{path}: no LOCO part for chromosome {chrom} (have: {', '.join(keys) or 'none'}); "
                         "rebuild the GRM with --loco")
    return keys[chrom_name(chrom)]


def _loco_matrix(h5: h5py.File, chrom: str, path) -> np.ndarray:
    from ._grm_numba import loco_rows

    g, counts, matrix = h5["loco"][_loco_key(h5, chrom, path)], h5["counts"], h5["matrix"]
    n = matrix.shape[0]
    m_all, m_c = int(counts.attrs["n_variants"]), int(g.attrs["n_variants"])
    gcta = "sample_missing" in counts
    c_all = counts["sample_missing"][...] if gcta else None
    c_c = g["sample_missing"][...] if gcta else None
    out = np.empty((n, n), dtype=matrix.dtype)
    step = max(1, _ROWS // n)
    dummy_pm, dummy_c = np.zeros((0, 0), np.uint16), np.zeros(0, np.int64)
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        pm_all = counts["pair_missing"][rows] if gcta else dummy_pm
        pm_c = g["pair_missing"][rows] if gcta else dummy_pm
        if loco_rows(matrix[rows], g["sum"][rows], pm_all, pm_c, c_all if gcta else dummy_c,
                     c_c if gcta else dummy_c, m_all, m_c, start, gcta, out[rows]):
            raise InputError(f"{path}: no variant is left once chromosome {chrom} is removed")
    return out


def load_kinship(path, *, loco: str | None = None, with_eigen: bool = True, sparse: bool = False) -> Kinship:
    """Read a kinship file; ``loco="7"`` gives the GRM without chromosome 7; ``sparse`` the
    sparse GRM.  The stored eigendecomposition (of the matrix asked for) comes along if present."""
    with _open(path) as h5:
        meta = {k: (v.item() if hasattr(v, "item") else v) for k, v in h5.attrs.items()
                if k not in ("format", "format_version", "provenance")}
        meta["source"] = str(path)
        fid = h5["samples/fid"].asstr()[...].astype(object)
        iid = h5["samples/iid"].asstr()[...].astype(object)
        eigen = None
        if sparse:
            if "sparse" not in h5:
                raise InputError(f"{path}: no sparse GRM stored; rebuild with --sparse-cutoff")
            g = h5["sparse"]
            n = int(g.attrs["n"])
            matrix = scipy.sparse.csr_matrix((g["data"][...], g["indices"][...], g["indptr"][...]), shape=(n, n))
            meta["sparse_cutoff"] = float(g.attrs["cutoff"])
        elif loco is not None:
            matrix = _loco_matrix(h5, str(loco), path)
            meta["loco"] = str(loco)
            if with_eigen:
                eigen = read_eigen(h5["loco"][_loco_key(h5, str(loco), path)])
        else:
            if "matrix" not in h5:
                if "sparse" in h5:
                    raise InputError(f"{path} holds only a sparse GRM (grm --sparse-cutoff); this step needs the dense "
                                     "GRM: run grm without --sparse-cutoff, or with --dense")
                raise InputError(f"{path}: holds no dense matrix")
            matrix = h5["matrix"][...]
            if with_eigen:
                eigen = read_eigen(h5)
    return Kinship(matrix, fid, iid, eigen, meta)


def read_provenance(path) -> dict:
    with _open(path) as h5:
        return json.loads(h5.attrs.get("provenance", "{}"))


def add_eigen(path, *, loco: bool = False, psd_tol: float | None = None, log=None) -> list[Eigen]:
    """Decompose the stored matrix (and with ``loco`` each LOCO matrix) once, storing the result
    in the same file.  Decompositions already complete are kept, not recomputed."""
    from .eigen import DEFAULT_PSD_TOL, eigendecompose

    tol = DEFAULT_PSD_TOL if psd_tol is None else psd_tol
    done = []
    targets = [None] + (loco_names(path) if loco else [])
    for chrom in targets:
        with _open(path) as h5:
            group_name = "/" if chrom is None else f"loco/{_loco_key(h5, chrom, path)}"
            existing = read_eigen(h5[group_name])
        if existing is not None:
            done.append(existing)
            continue
        kin = load_kinship(path, loco=chrom, with_eigen=False)
        what = f"{path}" + ("" if chrom is None else f" without chromosome {chrom}")
        eigen = eigendecompose(kin.matrix, source=what, psd_tol=tol)
        if log is not None:
            log.info("eigendecomposition of %s: %s", what, eigen.report())
        with h5py.File(path, "r+") as h5:
            write_eigen(h5[group_name], eigen)
        done.append(eigen)
    return done
