"""The null-model HDF5 file: one group per phenotype, the kinship's eigenvectors stored once.

    /                        attrs: format="gwas_glmm.null", format_version=1, grm, provenance
    /samples/fid, iid        the file's samples: every sample with at least one phenotype
    /eigen/vectors[_<k>]     eigenvectors of the kinship (Gaussian phenotypes fitted in its eigenbasis;
                             one set per distinct sample set, named by the phenotype's "eigen" attribute)
    /pheno/<name>            attrs: family, tau, phi, h2, status (JSON), covar_names (JSON), eigen
        x, y, mu, w, py, beta, sigma_inv_x, xsx_inv, and eig_inv_d (eigenbasis) or chol and y_work
        (Cholesky: PQL, or Gaussian REML on a sample subset; the latter also fast_vectors,
        fast_inv_d and attr fast_rest: the kinship's top eigenpairs), offset (if any), index (if the
        phenotype is observed in only some of the file's samples: their positions; every vector of
        the group follows that order)
        or whitener/data, indices, indptr (a sparse-GRM null: CSR of W with Sigma^-1 = W^T W,
        block diagonal by groups of related samples) and chol_parts/<k>/members, lp, li, lx (groups
        too large for dense blocks: their rows of W are empty; a sparse Cholesky factor L of their
        block in the order of ``members``, CSC, Sigma_b^-1 = P' L'^-1 L^-1 P)
/pheno/<name>/loco/<chrom>/py, sigma_inv_x, xsx_inv, mu   the same with chromosome <chrom> left
                         out of the GRM (gwas/loco.py), for testing that chromosome's variants

Written under a temporary name and renamed when complete; reading executes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse

from .._atomic import atomic_path
from .._validation import check_file
from ..exceptions import InputError
from ..io.chrom import chrom_name
from .loco import FIELDS as LOCO_FIELDS
from .loco import LocoPart
from .null import FAST_RANK, NullModel

FORMAT = "gwas_glmm.null"
_STR = h5py.string_dtype()
_VECTORS = ("x", "y", "mu", "w", "py", "beta", "sigma_inv_x", "xsx_inv")


def save_nulls(path, nulls: dict[str, NullModel], *, fid, iid, grm: str = "", provenance: dict | None = None,
               covar_names: list[str] | None = None, grm_chromosomes: list[str] | None = None) -> Path:
    """``grm_chromosomes``: those of the variants the GRM was built from, so that a LOCO scan can
    tell a chromosome outside the GRM (nothing to leave out) from one whose LOCO part is missing."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs.update(format=FORMAT, format_version=1, grm=str(grm),
                        provenance=json.dumps(provenance or {}, default=str, sort_keys=True))
        if grm_chromosomes is not None:
            h5.attrs["grm_chromosomes"] = json.dumps([str(c) for c in grm_chromosomes])
        s = h5.create_group("samples")
        s.create_dataset("fid", data=np.asarray([str(v) for v in fid], dtype=object), dtype=_STR)
        s.create_dataset("iid", data=np.asarray([str(v) for v in iid], dtype=object), dtype=_STR)
        eigen_sets: dict[int, str] = {}  # id of a vectors array -> its dataset name: each set stored once
        for m in nulls.values():
            if m.eig_vectors is not None and id(m.eig_vectors) not in eigen_sets:
                key = "vectors" if not eigen_sets else f"vectors_{len(eigen_sets)}"
                h5.create_dataset(f"eigen/{key}", data=m.eig_vectors)
                eigen_sets[id(m.eig_vectors)] = key
        group = h5.create_group("pheno")
        for name, m in nulls.items():
            g = group.create_group(name)
            if m.eig_vectors is not None:
                g.attrs["eigen"] = eigen_sets[id(m.eig_vectors)]
            if m.index is not None:
                g.create_dataset("index", data=np.asarray(m.index, dtype=np.int64))
            g.attrs.update(family=m.family, tau=m.tau, phi=m.phi, h2=m.h2,
                           dispersion=m.dispersion if m.dispersion is not None else float("nan"),
                           status=json.dumps(m.status, default=str), covar_names=json.dumps(covar_names or []))
            for key in _VECTORS:
                g.create_dataset(key, data=getattr(m, key))
            if m.eig_vectors is not None:
                g.create_dataset("eig_inv_d", data=m.eig_inv_d)
            elif m.whitener is not None:
                w = m.whitener.tocsr()
                for key in ("data", "indices", "indptr"):
                    g.create_dataset(f"whitener/{key}", data=getattr(w, key))
                for k, part in enumerate(m.chol_parts):
                    for key in ("members", "lp", "li", "lx"):
                        g.create_dataset(f"chol_parts/{k}/{key}", data=getattr(part, key))
            else:
                g.create_dataset("chol", data=m.chol)
            if m.fast_vectors is not None:
                g.create_dataset("fast_vectors", data=m.fast_vectors)
                g.create_dataset("fast_inv_d", data=m.fast_inv_d)
                g.attrs["fast_rest"] = m.fast_rest
            if m.fast_rank is not None:
                g.attrs["fast_rank"] = m.fast_rank
            for key in ("y_work", "offset"):
                if getattr(m, key) is not None:
                    g.create_dataset(key, data=getattr(m, key))
            for chrom, part in m.loco.items():
                lg = g.create_group(f"loco/{chrom}")
                for key in LOCO_FIELDS:
                    lg.create_dataset(key, data=getattr(part, key))
                if part.ratio is not None:
                    lg.attrs["ratio"] = part.ratio
    return path


def _open(path) -> h5py.File:
    path = check_file(path, "null-model file")
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise InputError(f"{path}: not an HDF5 file; give the file written by gwas-glmm null") from None
    if h5.attrs.get("format") != FORMAT:
        h5.close()
        raise InputError(f"{path}: not a gwas_glmm null-model file (written by gwas-glmm null)")
    return h5


@dataclass(frozen=True)
class NullHeader:
    """What a null file holds, without its matrices."""

    n: int  # samples
    families: dict[str, str]  # phenotype -> family
    p: int  # covariates incl. intercept (the most of any phenotype)
    loco_parts: int
    calibrated: bool  # every LOCO part has its fast-mode ratio: a fast scan needs no full null
    sparse: bool = False  # every phenotype fitted on a sparse GRM (exact scans cost O(N + nnz) per variant)
    whitener_nnz: int = 0  # the most non-zeros of a sparse null's W (Sigma^-1 = W^T W)


def null_header(path) -> NullHeader:
    with _open(path) as h5:
        groups = list(h5["pheno"].values())
        parts = [lg for g in groups for lg in g.get("loco", {}).values()]
        return NullHeader(int(h5["samples/iid"].shape[0]), {name: str(g.attrs["family"]) for name, g in h5["pheno"].items()},
                          int(max((g["x"].shape[1] for g in groups), default=1)),
                          max((len(g["loco"]) for g in groups if "loco" in g), default=0),
                          bool(parts) and all("loco" in g for g in groups) and all("ratio" in lg.attrs for lg in parts),
                          bool(groups) and all("whitener" in g for g in groups),
                          max((int(g["whitener/data"].shape[0]) + sum(int(p["lx"].shape[0]) for p in
                                                                        g.get("chol_parts", {}).values())
                               for g in groups if "whitener" in g), default=0))


def _stored_fast_rank(attrs, group) -> int | None:
    """The stored fast-mode rank; files written before it was chosen used FAST_RANK for their LOCO
    variance ratios, so those keep it."""
    if "fast_rank" in attrs:
        return int(attrs["fast_rank"])
    has_ratios = any("ratio" in lg.attrs for lg in group.get("loco", {}).values())
    return FAST_RANK if has_ratios else None


def _whitener(group) -> scipy.sparse.csr_matrix | None:
    if "whitener" not in group:
        return None
    w, n = group["whitener"], group["py"].shape[0]
    return scipy.sparse.csr_matrix((w["data"][...], w["indices"][...], w["indptr"][...]), shape=(n, n))


def _chol_parts(group) -> list:
    from ..kinship.sparse_chol import SparseCholesky

    parts = group.get("chol_parts", {})
    return [SparseCholesky.stored(*(parts[k][key][...] for key in ("members", "lp", "li", "lx")))
            for k in sorted(parts, key=int)]


def load_nulls(path, *, fast_only: bool = False) -> tuple[dict[str, NullModel], np.ndarray, np.ndarray, dict]:
    """(phenotype -> NullModel, fid, iid, root attributes).

    ``fast_only``: only what a fast scan needs once its variance ratios are calibrated (stored by
    the null step for every LOCO part): an eigenbasis null's top ``fast_rank`` eigenvectors, as
    its fast-mode directions, instead of all n, and no Cholesky factor.  That reads O(n k)
    numbers instead of n^2 (0.8 GB at n = 10,000); such models cannot give exact variances."""
    with _open(path) as h5:
        fid = h5["samples/fid"].asstr()[...].astype(object)
        iid = h5["samples/iid"].asstr()[...].astype(object)
        vectors = {} if fast_only else {key: h5["eigen"][key][...] for key in h5.get("eigen", {})}  # each set once
        nulls = {}
        for name, g in h5["pheno"].items():
            fields = {key: g[key][...] for key in _VECTORS}
            a = g.attrs
            index = g["index"][...] if "index" in g else None
            eigen = {}
            if "eig_inv_d" in g:
                inv_d = g["eig_inv_d"][...]
                if fast_only:
                    k = max(1, min(_stored_fast_rank(a, g) or FAST_RANK, len(inv_d) - 1))
                    top = h5["eigen"][str(a.get("eigen", "vectors"))][:, -k:]
                    eigen = {"fast_vectors": np.ascontiguousarray(top.T), "fast_inv_d": inv_d[-k:],
                             "fast_rest": float(np.mean(inv_d[:-k]))}
                else:
                    eigen = {"eig_vectors": vectors[str(a.get("eigen", "vectors"))], "eig_inv_d": inv_d}
            elif "fast_vectors" in g:
                eigen = {"fast_vectors": g["fast_vectors"][...], "fast_inv_d": g["fast_inv_d"][...],
                         "fast_rest": float(a["fast_rest"])}
            nulls[name] = NullModel(
                family=str(a["family"]), iid=iid if index is None else iid[index], tau=float(a["tau"]),
                phi=float(a["phi"]), index=index, **eigen,
                chol=g["chol"][...] if "chol" in g and not fast_only else None, status=json.loads(a["status"]),
                whitener=_whitener(g), chol_parts=_chol_parts(g),
                y_work=g["y_work"][...] if "y_work" in g else None,
                offset=g["offset"][...] if "offset" in g else None,
                fast_rank=_stored_fast_rank(a, g),
                loco={chrom_name(c): LocoPart(chrom_name(c), **{k: lg[k][...] for k in LOCO_FIELDS},
                                              ratio=float(lg.attrs["ratio"]) if "ratio" in lg.attrs else None)
                      for c, lg in g.get("loco", {}).items()},
                dispersion=None if np.isnan(a.get("dispersion", np.nan)) else float(a["dispersion"]), **fields)
        attrs = {k: v for k, v in h5.attrs.items()}
    if "grm_chromosomes" in attrs:
        attrs["grm_chromosomes"] = [chrom_name(c) for c in json.loads(attrs["grm_chromosomes"])]
    return nulls, fid, iid, attrs
