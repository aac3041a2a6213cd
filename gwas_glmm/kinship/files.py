"""Read or write a kinship in any supported format, chosen by the file name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..exceptions import InputError
from ..io.kinship_formats import kinship_format, read_gcta, read_gemma, read_rel, write_gcta, write_rel
from ..io.sparse_kinship_formats import read_gcta_sparse, read_mtx, write_gcta_sparse, write_mtx
from .kinship import Kinship
from .store import load_kinship, save_kinship


def read_kinship(path: str | os.PathLike, *, loco: str | None = None, sparse: bool = False,
                 check_psd: bool = True, ids=None) -> Kinship:
    """A :class:`Kinship` from gwas-glmm HDF5, GCTA (.grm.bin/.grm.gz + .grm.id), GCTA sparse
    (.grm.sp + .grm.id), SAIGE sparse (.mtx + .mtx.sampleIDs.txt, or ``ids``), plink2
    (.rel/.rel.gz/.rel.bin + .rel.id) or GEMMA (.cXX.txt/.sXX.txt, with ``ids``: the .fam it was
    computed from).  Foreign matrices are validated (symmetric, finite; dense ones PSD)."""
    fmt = kinship_format(path)
    if fmt == "h5":
        return load_kinship(path, loco=loco, sparse=sparse)
    if loco is not None:
        raise InputError(f"{path}: LOCO matrices are only stored in gwas-glmm .h5 kinship files")
    if fmt in ("gcta-sparse", "mtx"):
        matrix, fid, iid = read_gcta_sparse(path) if fmt == "gcta-sparse" else read_mtx(path, ids)
        meta = {"source": str(path), "source_format": fmt, "definition": f"imported from {Path(path).name}",
                "iid_only": fmt == "mtx"}  # SAIGE's ID file has no FID
        return Kinship.from_array(matrix, iid=iid, fid=fid, source=str(path), meta=meta)
    if sparse:
        raise InputError(f"{path}: a dense matrix; a sparse GRM is read from .h5, .grm.sp or .mtx")
    counts = None
    if fmt == "gcta":
        matrix, counts, fid, iid = read_gcta(path)
    elif fmt == "gemma":
        matrix, fid, iid = read_gemma(path, ids)
    else:
        matrix, fid, iid = read_rel(path)
    meta = {"source": str(path), "source_format": fmt, "definition": f"imported from {Path(path).name}"}
    kin = Kinship.from_array(matrix, iid=iid, fid=fid, source=str(path), check_psd=check_psd, meta=meta)
    if counts is not None:
        kin.meta["has_counts"] = True
    return kin


def write_kinship(path: str | os.PathLike, kinship: Kinship, *, counts=None) -> list[Path]:
    """Write ``kinship`` to ``path``: .h5 (with eigen if known), GCTA (PREFIX.grm.bin or
    PREFIX.grm.gz), plink2 (PREFIX.rel, .rel.gz, .rel.bin), or for a sparse kinship also GCTA
    sparse (PREFIX.grm.sp) and SAIGE's Matrix Market (NAME.mtx)."""
    name = str(path)
    if name.endswith((".h5", ".hdf5")):
        return [save_kinship(path, kinship)]
    if name.endswith((".grm.sp", ".mtx")):
        if not kinship.is_sparse:
            raise InputError(f"{path}: a sparse format, but {kinship!r} is dense; build a sparse GRM "
                             "(grm --sparse-cutoff) or choose a dense format (.grm.bin, .rel)")
        if name.endswith(".mtx"):
            return write_mtx(name, kinship.matrix, kinship.iid)
        return write_gcta_sparse(name, kinship.matrix, kinship.fid, kinship.iid)
    matrix = kinship.matrix.toarray() if kinship.is_sparse else np.asarray(kinship.matrix)
    if name.endswith(".grm.bin"):
        return write_gcta(name[: -len(".grm.bin")], matrix, kinship.fid, kinship.iid, counts)
    if name.endswith(".grm.gz"):
        return write_gcta(name[: -len(".grm.gz")], matrix, kinship.fid, kinship.iid, counts, text=True)
    if name.endswith(".rel.bin"):
        return write_rel(name[: -len(".rel.bin")], matrix, kinship.fid, kinship.iid, binary=True,
                         single=matrix.dtype == np.float32)
    if name.endswith(".rel.gz"):
        return write_rel(name[: -len(".rel.gz")], matrix, kinship.fid, kinship.iid, gz=True)
    if name.endswith(".rel"):
        return write_rel(name[: -len(".rel")], matrix, kinship.fid, kinship.iid)
    raise InputError(f"{path}: choose an output ending in .h5, .grm.bin, .grm.gz, .grm.sp, .mtx, .rel, .rel.gz "
                     "or .rel.bin")
