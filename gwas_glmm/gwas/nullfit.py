"""Fit the null model of several phenotypes against one kinship, each on its own, the kinship's
eigendecomposition shared: the ``gwas-glmm null`` stage."""

from __future__ import annotations

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
                    exposure: str | None = None, bfile=None):
    """(phenotype -> NullModel, phenotype -> status dict, fid, iid, covariate names).

    ``offset``/``exposure``: a column of the covariate file taken out of the covariates and used
    as a known term on the link scale (``exposure``: its log, e.g. follow-up time for counts).

    ``loco_from``: a kinship file with LOCO parts; each fitted model then also gets, per
    chromosome, its residual with that chromosome left out of the GRM (:mod:`gwas.loco`), and
    with ``bfile`` (the genotypes) the fast scan's variance ratio per chromosome.

    Samples: those in the kinship, the phenotype and the covariate files with every requested
    phenotype and covariate observed (one sample set, so the kinship is aligned and, if it must
    be, decomposed once for all phenotypes).  A phenotype whose fit fails is reported and skipped.
    """
    aligned = align_samples(kinship_samples(kin.fid, kin.iid), pheno, covar)
    complete = ~np.isnan(aligned.y).any(axis=1)
    if not complete.all():
        log.info("%d samples miss some of the phenotypes and are dropped so all share one sample set",
                 int((~complete).sum()))
    idx = np.flatnonzero(complete)
    fid, iid = aligned.fid[idx], aligned.iid[idx]
    covar_names, xcov = list(aligned.covar_names), aligned.x
    off = None
    for column, take_log in ((offset, False), (exposure, True)):
        if column is None:
            continue
        if off is not None:
            raise InputError("give --offset or --exposure, not both")
        if column not in covar_names:
            raise InputError(f"--{'exposure' if take_log else 'offset'} {column}: no such numeric column in the "
                             f"covariate file (have: {', '.join(covar_names)})")
        j = covar_names.index(column)
        off = xcov[idx, j].astype(float)
        if take_log:
            bad = np.flatnonzero(~(off > 0))
            if bad.size:
                raise InputError(f"--exposure {column}: must be positive, {off[bad[0]]:g} for sample {fid[bad[0]]} "
                                 f"{iid[bad[0]]}")
            off = np.log(off)
        keep = [k for k in range(len(covar_names)) if k != j]
        xcov, covar_names = xcov[:, keep], [covar_names[k] for k in keep]
    x = np.column_stack([np.ones(len(idx)), xcov[idx]])
    kin = kin.align(fid, iid)
    if kin.eigen is None and family == "gaussian":
        log.info("decomposing the kinship once for the %d analysis samples", len(idx))
        kin = kin.decompose()
    nulls, statuses = {}, {}
    for k, name in enumerate(aligned.pheno_names):
        y = aligned.y[idx, k]
        try:
            model = fit_null(y, x, kin, family, iid=iid, offset=off)
        except (GwasGlmmError, np.linalg.LinAlgError, ValueError) as exc:
            statuses[name] = {"fitted": False, "error": " ".join(str(exc).split())}
            log.error("phenotype %s: null model failed: %s", name, statuses[name]["error"])
            continue
        nulls[name] = model
        statuses[name] = {"fitted": True, **model.status, "tau": model.tau, "phi": model.phi, "h2": model.h2}
        log.info("phenotype %s (%s, n=%d): %s, converged %s, tau %.4g, phi %.4g, latent h2 %.3f%s", name, family,
                 len(y), model.status.get("method"), model.status.get("converged"), model.tau, model.phi, model.h2,
                 "; " + "; ".join(model.status["warnings"]) if model.status.get("warnings") else "")
    if loco_from is not None and nulls:
        add_loco(nulls, loco_from, fid, iid, bfile=bfile)
    return nulls, statuses, fid, iid, ["(Intercept)"] + covar_names


def add_loco(nulls: dict, path, fid, iid, *, bfile=None) -> None:
    """Give every null model with a genetic variance its LOCO parts, one chromosome at a time
    (one LOCO matrix in memory; one n^3/3 Cholesky per chromosome and phenotype).  With
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
        from ..io.plink import PlinkFileset
        from .scanner import calibration_genotypes, sample_positions

        fileset = PlinkFileset(bfile)
        samples = sample_positions(fileset, fid, iid)
        chrom_of = np.asarray(fileset.variants.chrom).astype(str)
    with progress(total=len(chroms), desc="LOCO", unit="chromosome") as bar:
        for chrom in chroms:
            k_loco = load_kinship(path, loco=chrom, with_eigen=False).align(fid, iid).matrix
            calibration = None
            if fileset is not None:
                calibration = calibration_genotypes(fileset, samples, np.flatnonzero(chrom_of == chrom))
            for model in todo.values():
                model.loco[chrom], _ = loco_part(model, k_loco, chrom, calibration)
            bar.update(1)
    log.info("LOCO residuals for %d chromosome(s) and %d phenotype(s)", len(chroms), len(todo))
