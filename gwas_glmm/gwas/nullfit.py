"""Fit the null model of several phenotypes against one kinship, each on its own, the kinship's
eigendecomposition shared: the ``gwas-glmm null`` stage."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._progress import get_logger
from ..exceptions import GwasGlmmError, InputError
from ..io.pheno import align_samples
from ..io.plink import SampleTable
from ..kinship import Kinship
from .null import fit_null

log = get_logger("null")


def kinship_samples(fid, iid) -> SampleTable:
    """The kinship's samples as a .fam-like table (the order alignment keeps)."""
    n = len(iid)
    zeros = np.array(["0"] * n, dtype=object)
    return SampleTable(np.asarray(fid, dtype=object), np.asarray(iid, dtype=object), zeros, zeros.copy(),
                       np.zeros(n, dtype=np.int64))


def fit_null_models(kin: Kinship, pheno, covar, family: str, *, names=None, loco_from=None, offset: str | None = None,
                    exposure: str | None = None, bfile=None, sparse: bool = False, block_memory: float | None = None):
    """(phenotype -> NullModel, phenotype -> status dict, fid, iid, covariate names).

    ``offset``/``exposure``: a column of the covariate file taken out of the covariates and used
    as a known term on the link scale (``exposure``: its log, e.g. follow-up time for counts).

    ``loco_from``: a kinship file with LOCO parts; each fitted model then also gets, per
    chromosome, its residual with that chromosome left out of the GRM (:mod:`gwas.loco`), and
    with ``bfile`` (the genotypes) the fast scan's variance ratio per chromosome.

    Samples: the file's samples (``fid``, ``iid``) are those in the kinship, the phenotype and the
    covariate files with every covariate and at least one phenotype observed; each phenotype is
    fitted on those where it is observed (its model's ``index``), so a sample missing one trait
    still counts for the others.  Gaussian phenotypes observed in all the kinship's samples reuse
    its stored eigendecomposition; a subset is decomposed once for every Gaussian phenotype
    observed on exactly it (9 n^3 flops, shared by those phenotypes: Cholesky AI-REML costs n^3 per
    iteration and phenotype).  A phenotype whose fit fails is reported and skipped.

    ``sparse``: ``kin`` is a sparse GRM fitted by blocks of related samples (:mod:`gwas.sparse_null`;
    ``block_memory`` bounds a block's bytes); every phenotyped sample must be in it.
    """
    if sparse:
        check_covered(kin, pheno, covar)
    aligned = align_samples(kinship_samples(kin.fid, kin.iid), pheno, covar)
    fid, iid = aligned.fid, aligned.iid
    covar_names, xcov = list(aligned.covar_names), aligned.x
    off = _offset_column(covar_names, xcov, fid, iid, offset, exposure)
    if off is not None:
        keep = [k for k, c in enumerate(covar_names) if c not in (offset, exposure)]
        xcov, covar_names = xcov[:, keep], [covar_names[k] for k in keep]
    x = np.column_stack([np.ones(len(iid)), xcov])
    kin = kin.align(fid, iid)
    observed = ~np.isnan(aligned.y)
    plans = _gaussian_plans(kin, observed, aligned.pheno_names) if family == "gaussian" and not sparse else {}
    nulls, statuses = {}, {}
    for k, name in enumerate(aligned.pheno_names):
        index = None if observed[:, k].all() else np.flatnonzero(observed[:, k])
        rows = slice(None) if index is None else index
        x_k, names_k = _drop_constant(x[rows], covar_names, name)
        log.info("phenotype %s (%d of %d): fitting the %s null model on %d samples", name, k + 1,
                 len(aligned.pheno_names), family, len(x_k))
        try:
            sub = plans[name] if name in plans else kin if index is None else kin.align(fid[index], iid[index])
            model = fit_null(aligned.y[rows, k], x_k, sub, family, iid=iid[rows],
                             offset=None if off is None else off[rows], coef_names=names_k, sparse=sparse,
                             block_memory=block_memory)
        except (GwasGlmmError, np.linalg.LinAlgError, ValueError) as exc:
            statuses[name] = {"fitted": False, "error": " ".join(str(exc).split())}
            log.error("phenotype %s: null model failed: %s", name, statuses[name]["error"])
            continue
        model.index = index
        nulls[name] = model
        statuses[name] = {"fitted": True, **model.status, "n": model.n, "tau": model.tau, "phi": model.phi,
                          "h2": model.h2}
        log.info("phenotype %s (%s, n=%d): %s, converged %s, tau %.4g, phi %.4g, latent h2 %.3f%s", name, family,
                 model.n, model.status.get("method"), model.status.get("converged"), model.tau, model.phi, model.h2,
                 "; " + "; ".join(model.status["warnings"]) if model.status.get("warnings") else "")
    if loco_from is not None and nulls:
        add_loco(nulls, loco_from, fid, iid, bfile=bfile)
    return nulls, statuses, fid, iid, ["(Intercept)"] + covar_names


def check_covered(kin: Kinship, pheno, covar) -> None:
    """A sparse GRM lists every sample it was built from (its diagonal): a phenotyped sample (with
    every covariate) that it lacks was not in that fileset, and fitting without it would silently
    drop it.  One line naming the first such sample."""
    by_iid = kin.meta.get("iid_only") or pheno.fid is None or (covar is not None and covar.fid is None)

    def keys(fid, iid):
        return [str(i) if by_iid else (str(f), str(i)) for f, i in zip(iid if fid is None else fid, iid)]

    observed = ~np.isnan(pheno.values).all(axis=1)
    if covar is not None:
        complete = {k for k, ok in zip(keys(covar.fid, covar.iid), ~np.isnan(covar.values).any(axis=1)) if ok}
        observed &= np.array([k in complete for k in keys(pheno.fid, pheno.iid)], dtype=bool)
    have = set(keys(kin.fid, kin.iid))
    wanted = keys(pheno.fid, pheno.iid)
    absent = [k for k in np.flatnonzero(observed) if wanted[k] not in have]
    if absent:
        k = absent[0]
        first = wanted[k] if by_iid else " ".join(wanted[k])
        raise InputError(f"{kin.meta.get('source', 'the sparse GRM')}: {len(absent)} of {int(observed.sum())} phenotyped "
                         f"samples in {pheno.path} are not in the sparse GRM, first {first} (row {k + 1}); build "
                         "the sparse GRM from the fileset that holds them, or remove them from the phenotype file")


def _offset_column(covar_names, xcov, fid, iid, offset, exposure) -> np.ndarray | None:
    """The --offset column, or the log of the --exposure column, of the covariates (None: neither)."""
    if offset is not None and exposure is not None:
        raise InputError("give --offset or --exposure, not both")
    column, take_log = (offset, False) if offset is not None else (exposure, True)
    if column is None:
        return None
    if column not in covar_names:
        raise InputError(f"--{'exposure' if take_log else 'offset'} {column}: no such numeric column in the "
                         f"covariate file (have: {', '.join(covar_names)})")
    off = xcov[:, covar_names.index(column)].astype(float)
    if take_log:
        bad = np.flatnonzero(~(off > 0))
        if bad.size:
            raise InputError(f"--exposure {column}: must be positive, {off[bad[0]]:g} for sample {fid[bad[0]]} "
                             f"{iid[bad[0]]}")
        off = np.log(off)
    return off


def _drop_constant(x: np.ndarray, covar_names: list[str], name: str) -> tuple[np.ndarray, list[str]]:
    """(X, its column names) with the covariates constant among one phenotype's samples (e.g. sex
    for a trait measured in one sex) dropped for that phenotype, with a note: they would make X
    singular."""
    names = ["(Intercept)", *covar_names]
    constant = [j for j in range(1, x.shape[1]) if np.all(x[:, j] == x[0, j])]
    if constant:
        log.info("phenotype %s: covariate(s) %s constant among its samples, dropped for it", name,
                 ", ".join(covar_names[j - 1] for j in constant))
        x = np.delete(x, constant, axis=1)
        names = [n for j, n in enumerate(names) if j not in constant]
    return x, names


def _gaussian_plans(kin: Kinship, observed: np.ndarray, names) -> dict[str, Kinship]:
    """phenotype -> the kinship, aligned to its samples and decomposed: the stored decomposition
    when they are all the kinship's samples, else one decomposition per distinct sample subset."""
    groups: dict[bytes, list[int]] = {}
    for k in range(len(names)):
        groups.setdefault(np.packbits(observed[:, k]).tobytes(), []).append(k)
    plans = {}
    for members in groups.values():
        obs = observed[:, members[0]]
        if obs.all() and kin.eigen is not None:
            plans.update({names[k]: kin for k in members})
            continue
        log.info("decomposing the kinship once for the %d samples of phenotype(s) %s", int(obs.sum()),
                 ", ".join(names[k] for k in members))
        sub = (kin if obs.all() else kin.align(kin.fid[obs], kin.iid[obs])).decompose()
        plans.update({names[k]: sub for k in members})
    return plans


def loco_workers(n: int, chromosomes: int) -> int:
    """Chromosomes factorised at once: the allowed threads, as many as the free memory holds
    (24 n^2 bytes each: the LOCO matrix, its float64 copy and Sigma_c's factor).  Each runs its
    Cholesky on one BLAS thread: at N = 3,000 on 2 idle cores one factorisation took 0.31 s on
    one thread and 0.23 s on two, so two chromosomes at once finish in 0.31 s against 0.46 s one
    after the other; and independent pieces do not wait on each other's cores when another
    process holds one (a 2-thread factorisation took 0.6-0.7 s beside two busy processes)."""
    from .._threads import thread_count

    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 0
    by_memory = int(0.5 * free // max(24 * n * n, 1)) if free else 1
    return max(1, min(thread_count(), chromosomes, by_memory))


def add_loco(nulls: dict, path, fid, iid, *, bfile=None) -> None:
    """Give every null model with a genetic variance its LOCO parts (one n^3/3 Cholesky per
    chromosome and phenotype; chromosomes on :func:`loco_workers` threads).  With
    ``bfile``, 100 random variants of each chromosome calibrate the fast mode against Sigma_c."""
    from .._progress import progress
    from ..kinship.store import load_kinship, loco_names
    from .loco import loco_part

    chroms = loco_names(path)
    if not chroms:
        log.info("%s has no LOCO parts: the scan will use the full GRM (rebuild it with --loco for LOCO)", path)
        return
    todo = {name: m for name, m in nulls.items() if m.tau > 0}
    for name in set(nulls) - set(todo):
        log.info("phenotype %s: tau = 0, so LOCO changes nothing", name)
    if not todo:
        return
    fileset = samples = chrom_of = None
    if bfile is not None:
        from ..io.plink import open_genotypes
        from .scanner import calibration_genotypes, sample_positions

        fileset = open_genotypes(bfile)
        samples = sample_positions(fileset, fid, iid)
        chrom_of = np.asarray(fileset.variants.chrom).astype(str)
    lock = threading.Lock()  # HDF5 and the .bed reader: one reader at a time

    def one(chrom):
        with lock:
            k_loco = load_kinship(path, loco=chrom, with_eigen=False).align(fid, iid).matrix
            calibration = None
            if fileset is not None:
                calibration = calibration_genotypes(fileset, samples, np.flatnonzero(chrom_of == chrom))
        parts = {name: loco_part(model, model.square(k_loco), chrom,
                                 None if calibration is None else model.rows(calibration))[0]
                 for name, model in todo.items()}
        bar.update(1)
        return parts

    with progress(total=len(chroms), desc="LOCO", unit="chromosome") as bar:
        # the first chromosome alone: it fixes the fast mode's rank that the others then use
        done = {chroms[0]: one(chroms[0])}
        workers = loco_workers(len(todo[next(iter(todo))].iid), len(chroms) - 1)
        if workers > 1:  # chromosomes on threads of their own, one BLAS thread each (see loco_workers)
            from .._threads import blas_threads, one_numba_thread

            with blas_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="loco",
                                                     initializer=one_numba_thread) as pool:
                done.update(zip(chroms[1:], pool.map(one, chroms[1:])))
        else:
            done.update((chrom, one(chrom)) for chrom in chroms[1:])
    for chrom in chroms:  # in the file's order whatever order they finished in: the same output bytes
        for name, model in todo.items():
            model.loco[chrom] = done[chrom][name]
    log.info("LOCO residuals for %d chromosome(s) and %d phenotype(s)", len(chroms), len(todo))
    for name, model in todo.items():
        if model.fast_rank is not None:
            log.info("phenotype %s: the fast mode will keep %d eigen-directions exactly (predicted q99 |delta "
                     "log10 P| vs exact %s)", name, model.fast_rank, model.status.get("fast_rank_q99"))
