"""What each ``gwas-glmm`` subcommand does, given parsed arguments."""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .._progress import get_logger
from .._threads import thread_count
from ..exceptions import InputError
from ..genotype import VariantFilter, variant_stats
from ..genotype.stats import freq_table
from ..io.plink import PlinkFileset, read_fam
from ..io.tables import write_tsv
from ..kinship import GrmConfig, compute_grm, pedigree_kinship, sparsify, thin_variants
from ..kinship.files import read_kinship, write_kinship
from ..kinship.grm import grm_memory_bytes
from ..kinship.sparse_grm import check_cutoff
from ..kinship.store import KinshipWriter, add_eigen, grm_chromosomes
from ..provenance import provenance
from ..simulate import SimulationConfig, simulate_cohort
from .common import grm_path, run_parameters, selection, sparse_export_paths
from .gwas_runners import GWAS_RUNNERS

log = get_logger("cli")
SPARSE_SUGGESTED_N = 50_000  # above this a dense n x n GRM (20 GB in float64) is rarely what anyone wants


def run_simulate(args: argparse.Namespace) -> None:
    cfg = SimulationConfig(
        n_samples=args.n_samples, n_variants=args.n_variants, n_populations=args.n_populations,
        fst=args.fst, family_fraction=args.family_fraction, missing_rate=args.missing_rate,
        min_maf=args.min_maf, h2=args.h2, prevalences=tuple(args.prevalence),
        n_polygenic=args.n_polygenic, n_large=args.n_large, large_fraction=args.large_fraction,
        seed=args.seed, n_x_variants=args.n_x_variants,
    )
    cohort = simulate_cohort(args.out, cfg)
    for line in cohort.summary_lines():
        log.info(line)
    if args.dosages:
        from ..simulate.dosages import write_imputed

        for path in write_imputed(args.out, seed=args.seed):
            log.info("  %s", path)
    log.info("  %s.log", args.out)


def run_freq(args: argparse.Namespace) -> None:
    fileset, variants, samples = selection(args)
    filters = VariantFilter(min_maf=args.maf, min_mac=args.mac, max_missing=args.geno, min_info=args.min_info)
    t0 = time.perf_counter()
    index, stats = variant_stats(fileset, samples=samples, variants=variants, block_size=args.block_size,
                                 filters=filters, show_progress=True)
    elapsed = time.perf_counter() - t0
    out = Path(f"{args.out}.freq.tsv")
    write_tsv(out, freq_table(fileset.variants.take(index), stats))
    log.info("%d of %d variants pass the filters (%.1f s); written to %s",
             len(index), len(variants), elapsed, out)


def run_demo(args: argparse.Namespace) -> None:
    """simulate -> freq -> GRM (LOCO parts) + eigendecomposition -> null (qt, bt1) -> scan -> plots."""
    from ..gwas.nullfit import fit_null_models
    from ..gwas.scanner import Scan, ScanConfig
    from ..gwas.store import save_nulls
    from ..io.pheno import read_covariates, read_phenotypes
    from ..plot import manhattan, qq, read_results

    out = Path(args.out)
    prefix = out / "cohort"
    cfg = SimulationConfig(n_samples=args.n_samples, n_variants=args.n_variants, seed=args.seed,
                           n_x_variants=args.n_variants // 40)
    t0 = time.perf_counter()
    cohort = simulate_cohort(prefix, cfg)
    fileset = PlinkFileset(prefix, num_threads=thread_count(args.threads))
    index, stats = variant_stats(fileset, show_progress=True)
    write_tsv(f"{prefix}.freq.tsv", freq_table(fileset.variants.take(index), stats))
    grm_path = Path(f"{prefix}.grm.h5")
    with KinshipWriter(grm_path) as writer:
        kinship, total = compute_grm(fileset, variants=autosomes_unless_chosen(None, fileset, np.arange(fileset.n_variants)),
                                     config=GrmConfig(loco=True), on_part=writer.write_part, show_progress=True)
        kinship = kinship.decompose()
        writer.write(kinship, total, fileset.variants.take(total.variant_index),
                     provenance(step="demo grm", inputs={"bed": fileset.genotype_path}, started=t0))
    covar = read_covariates(f"{prefix}.covar", ["age", "sex", "pop"])
    written = []
    for trait, family in (("qt", "gaussian"), ("bt1", "binomial")):
        nulls, statuses, fid, iid, covar_names = fit_null_models(kinship, read_phenotypes(f"{prefix}.pheno", [trait]),
                                                                 covar, family, loco_from=grm_path)
        chroms = grm_chromosomes(grm_path)
        null_path = save_nulls(f"{prefix}.{trait}.null.h5", nulls, fid=fid, iid=iid, grm=str(grm_path),
                               covar_names=covar_names, provenance={"status": statuses}, grm_chromosomes=chroms)
        scan = Scan(fileset, nulls, fid, iid, np.arange(fileset.n_variants), str(prefix),
                    ScanConfig(threads=thread_count(args.threads)), kinship_path=grm_path, grm_chromosomes=chroms)
        results = scan.run()[trait]
        table = read_results(results)
        plots = (manhattan(table, f"{prefix}.{trait}.manhattan.png", title=f"{trait} ({family})"),
                 qq(table, f"{prefix}.{trait}.qq.png", title=trait))
        truth = pd.read_csv(f"{prefix}.truth.tsv", sep="\t")
        causal = set(truth.loc[truth.iloc[:, 0] == trait, "ID"]) if "ID" in truth else set()
        hits = table[table.LOG10P > -np.log10(5e-8)]
        written.append((trait, null_path, results, plots, len(hits), len(set(hits.ID) & causal)))
    maf = pd.Series(stats.maf)
    log.info("demo finished in %.1f s", time.perf_counter() - t0)
    for line in cohort.summary_lines():
        log.info(line)
    log.info("  %s.freq.tsv (allele frequencies: median MAF %.3f, %d variants with MAF < 1%%, "
             "mean missing rate %.4f)", prefix, maf.median(), int((maf < 0.01).sum()),
             float(stats.missing_rate.mean()))
    log.info("  %s (GRM from %d variants with LOCO parts and its eigendecomposition: %s)",
             grm_path, total.n_variants, kinship.eigen.report())
    for trait, null_path, results, plots, n_hits, n_true in written:
        log.info("  %s (null model of %s)", null_path, trait)
        log.info("  %s (score tests; %d variants at P < 5e-8, %d of them simulated causal)", results, n_hits, n_true)
        log.info("  %s, %s", *plots)
    log.info("  %s (this log)", out / "demo.log")


def autosomes_unless_chosen(chosen, fileset, variants: np.ndarray) -> np.ndarray:
    """A GRM (and PCs) from the autosomes and XY by default, as plink2, GCTA and REGENIE users
    expect: X, Y and MT only where --chr names them.  Logged either way."""
    from ..io.chrom import is_autosomal

    chrom = fileset.variants.chrom[variants].astype(str)
    if chosen:
        log.info("GRM from chromosomes %s (--chr)", ", ".join(dict.fromkeys(chrom)))
        return variants
    auto = is_autosomal(chrom)
    if not auto.all():
        log.info("GRM from the autosomes: %d variants on %s left out (name them in --chr to include them)",
                 int((~auto).sum()), ", ".join(dict.fromkeys(chrom[~auto])))
    if not auto.any():
        raise InputError(f"{fileset.variant_path}: no autosomal variant; name the chromosomes for the GRM in --chr")
    return variants[auto]


def _markers(args: argparse.Namespace):
    """(fileset, variants, samples) for the GRM and the PCA: the selection, autosomes unless --chr
    names others, then --thin-count / --thin (plink2's), logged."""
    fileset, variants, samples = selection(args)
    variants = autosomes_unless_chosen(args.chr, fileset, variants)
    count, fraction = args.thin_count, getattr(args, "thin", None)
    if count is None and fraction is None:
        return fileset, variants, samples
    kept = thin_variants(variants, count=count, fraction=fraction, seed=args.seed)
    log.info("thinning: %d of %d variants kept (seed %d)", len(kept), len(variants), args.seed)
    return fileset, kept, samples


def run_grm(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    fileset, variants, samples = _markers(args)
    config = GrmConfig(missing=args.missing, min_maf=args.maf, min_mac=args.mac, max_missing=args.geno,
                       double=args.double, block_size=args.block_size, loco=args.loco)
    out = grm_path(args.out)
    n = fileset.n_samples if samples is None else len(samples)
    if args.sparse_cutoff is not None:
        check_cutoff(args.sparse_cutoff)
        if not args.dense:
            return _run_sparse_grm(args, fileset, samples, variants, config, out, started)
    elif args.dense or args.sparse_format:
        raise InputError(f"{'--dense' if args.dense else '--sparse-format'} goes with --sparse-cutoff "
                         "(the GRM is dense without it)")
    if args.scheduler or args.cluster:
        raise InputError("--scheduler/--cluster run the sparse GRM's panels (grm --sparse-cutoff without --dense); "
                         "the dense GRM is built in this process")
    if args.dry_run:
        from .. import sizing
        from .gwas_runners import print_estimate

        speed, threads = sizing.MachineSpeed.measure(), thread_count(args.threads)
        dense = sizing.estimate_grm(
            n, len(variants), block=config.block_size, double=config.double, loco=config.loco,
            gcta=config.missing == "gcta", eigen=args.eigen, speed=speed, threads=threads, base=sizing.process_rss())
        print_estimate(dense)
        if n >= SPARSE_SUGGESTED_N or dense.memory > sizing.total_memory() / 2:
            from ..kinship.sparse_grm import panel_rows

            sparse = sizing.estimate_sparse_grm(n, len(variants), block=config.block_size,
                                                panel=panel_rows(n, len(variants)), speed=speed, threads=threads,
                                                base=sizing.process_rss())
            log.info("for %d samples the sparse path is the one that fits: grm --sparse-cutoff 0.05 (fastGWA's) "
                     "needs ~%.1f GiB and ~%.1f h here, and gwas-glmm pca gives the PCs for --covar; see "
                     "docs/kinship.md, 'Sparse GRM'", n, sparse.memory / 2**30, sparse.seconds / 3600)
        return
    log.info("GRM of %d samples over %d candidate variants: %s missing mode, %s precision, LOCO %s; "
             "about %.0f MiB of RAM", n, len(variants), config.missing,
             "double" if config.double else "single", "on" if config.loco else "off", grm_memory_bytes(n, config) / 2**20)
    with KinshipWriter(out) as writer:
        kinship, total = compute_grm(fileset, samples=samples, variants=variants, config=config,
                                     on_part=writer.write_part if config.loco else None, show_progress=True)
        if args.eigen:
            kinship = kinship.decompose()
            log.info("eigendecomposition: %s", kinship.eigen.report())
        writer.write(kinship, total, fileset.variants.take(total.variant_index),
                     provenance(step="grm", inputs=fileset.input_paths(), parameters=run_parameters(args), started=started))
        if args.sparse_cutoff is not None:  # --dense: the sparse copy from the dense matrix
            sparse = sparsify(kinship.matrix, args.sparse_cutoff)
            writer.write_sparse(sparse, args.sparse_cutoff)
            log.info("sparse GRM (entries >= %g): %d non-zeros, %.3f%% of the matrix",
                     args.sparse_cutoff, sparse.nnz, 100 * sparse.nnz / n**2)
    if args.sparse_cutoff is not None:
        _export_sparse(args, replace(kinship, matrix=sparse, eigen=None))
    diag = np.diag(kinship.matrix)
    log.info("GRM written to %s (%.1f s): diagonal mean %.4f (sd %.4f), %d variants used",
             out, time.perf_counter() - started, diag.mean(), diag.std(), total.n_variants)


def _run_sparse_grm(args, fileset, samples, variants, config: GrmConfig, out: Path, started: float) -> None:
    """``grm --sparse-cutoff X`` without --dense: the sparse GRM by panels, never n x n."""
    from ..kinship import Kinship
    from ..kinship.sparse_grm import panel_rows, sparse_grm

    if args.eigen:
        raise InputError("--eigen needs the dense GRM: add --dense (or leave out --sparse-cutoff)")
    n = fileset.n_samples if samples is None else len(samples)
    itemsize = np.dtype(config.dtype).itemsize
    panel = panel_rows(n, len(variants), itemsize)  # from the candidate variants: the filters only make tiles smaller
    if args.dry_run:
        from .. import sizing
        from .gwas_runners import print_estimate

        threads = thread_count(args.threads)
        estimate = sizing.estimate_sparse_grm(n, len(variants), block=config.block_size, panel=panel,
                                              speed=sizing.MachineSpeed.measure(), threads=threads,
                                              base=sizing.process_rss(), itemsize=itemsize)
        print_estimate(estimate)
        if args.cluster:  # panels spread over the jobs; each job's cores as fast as this machine's
            cores = args.cluster_jobs * args.cluster_cores
            log.info("on --cluster %s with %d jobs of %d cores: ~%.1f h of wall time, each job ~%.1f GiB "
                     "(--cluster-memory %s)", args.cluster, args.cluster_jobs, args.cluster_cores,
                     estimate.seconds * threads / cores / 3600, estimate.memory / 2**30, args.cluster_memory)
        return
    if args.loco:
        log.info("the sparse GRM has no LOCO parts (fastGWA's sparse path tests against the full sparse GRM)")
    log.info("sparse GRM of %d samples over %d candidate variants: %s missing mode, panels and tiles of %d samples "
             "(two tiles %.0f MiB)", n, len(variants), config.missing, panel, 2 * itemsize * panel * len(variants) / 2**20)
    from .._atomic import exclusive
    from ..gwas.cluster import scan_client
    from .gwas_runners import cluster_resources

    checkpoint = Path(f"{out}.ckpt")  # finished panels: a killed run continues from them
    with exclusive(f"{checkpoint}.lock", f"a sparse GRM with --out {args.out}"), \
            scan_client(scheduler=args.scheduler, cluster=args.cluster, resources=cluster_resources(args)) as client:
        matrix, summary, meta = sparse_grm(fileset, cutoff=args.sparse_cutoff, samples=samples, variants=variants,
                                           config=config, panel=panel, client=client, checkpoint=checkpoint,
                                           show_progress=True)
    fam = fileset.samples if samples is None else fileset.samples.take(samples)
    kinship = Kinship(matrix, fam.fid.astype(object), fam.iid.astype(object), None, meta)
    with KinshipWriter(out) as writer:
        writer.write(kinship, provenance=provenance(step="grm", inputs=fileset.input_paths(),
                                                     parameters=run_parameters(args), started=started))
    _export_sparse(args, kinship)
    shutil.rmtree(checkpoint, ignore_errors=True)
    log.info("sparse GRM written to %s (%.1f s): %d related pairs, %d non-zeros", out, time.perf_counter() - started,
             summary.pairs, matrix.nnz)


def _export_sparse(args, kinship) -> None:
    """``--sparse-format``: the sparse GRM also in GCTA's and/or SAIGE's files."""
    paths = sparse_export_paths(args.out, args.sparse_format)
    for fmt, path in zip(args.sparse_format, paths[::2]):
        written = write_kinship(path, kinship)
        log.info("sparse GRM in %s format: %s", fmt, ", ".join(map(str, written)))


def run_pca(args: argparse.Namespace) -> None:
    from ..gwas.cluster import scan_client
    from ..kinship.pca import PcaConfig, randomized_pca, unrelated_samples
    from .gwas_runners import cluster_resources

    started = time.perf_counter()
    fileset, variants, samples = _markers(args)
    config = PcaConfig(n_pcs=args.n_pcs, iterations=args.iterations, seed=args.seed, min_maf=args.maf,
                       max_missing=args.geno, min_mac=args.mac, block_size=args.block_size, missing=args.missing)
    fam = fileset.samples if samples is None else fileset.samples.take(samples)
    in_pca = None
    if args.sparse_grm:
        kin = read_kinship(args.sparse_grm, sparse=str(args.sparse_grm).endswith((".h5", ".hdf5")))
        if not kin.is_sparse:
            raise InputError(f"--sparse-grm {args.sparse_grm}: a dense matrix; give a sparse GRM "
                             "(grm --sparse-cutoff, .grm.sp or .mtx)")
        kin = kin.align(fam.fid, fam.iid, source=f"--sparse-grm {args.sparse_grm}")
        cutoff = (check_cutoff(args.unrelated_cutoff, "--unrelated-cutoff") if args.unrelated_cutoff is not None
                  else kin.meta.get("sparse_cutoff", 0.05))
        in_pca = unrelated_samples(kin.matrix, cutoff)
        log.info("unrelated samples (no pair >= %g in %s): %d; %d relatives will be projected", cutoff,
                 args.sparse_grm, int(in_pca.sum()), int((~in_pca).sum()))
    elif args.unrelated_cutoff is not None:
        raise InputError("--unrelated-cutoff goes with --sparse-grm (the relatives are read from it)")
    if args.dry_run:
        from .. import sizing
        from .gwas_runners import print_estimate

        n_in = len(fam.iid) if in_pca is None else int(in_pca.sum())
        print_estimate(sizing.estimate_pca(n_in, len(variants), n_pcs=config.n_pcs, width=config.width,
                                           iterations=config.iterations, block=config.block_size,
                                           speed=sizing.MachineSpeed.measure(), threads=thread_count(args.threads),
                                           base=sizing.process_rss(), projected=len(fam.iid) - n_in))
        return
    with scan_client(scheduler=args.scheduler, cluster=args.cluster, resources=cluster_resources(args)) as client:
        result = randomized_pca(fileset, config=config, samples=samples, variants=variants, in_pca=in_pca,
                                client=client, show_progress=True)
    paths = result.write(args.out)
    log.info("PCA written to %s (%.1f s, %d passes over the .bed)", ", ".join(map(str, paths)),
             time.perf_counter() - started, result.passes)


def run_eigen(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    done = add_eigen(args.grm, loco=args.loco, psd_tol=args.psd_tol, log=log)
    log.info("%d eigendecomposition(s) stored in %s (%.1f s)", len(done), args.grm, time.perf_counter() - started)


def run_convert_kinship(args: argparse.Namespace) -> None:
    if args.pedigree:
        kinship = pedigree_kinship(read_fam(args.kinship), source=args.kinship)
    else:
        kinship = read_kinship(args.kinship, ids=args.grm_ids)
    log.info("%r read from %s", kinship, args.kinship)
    paths = write_kinship(args.out, kinship)
    log.info("written: %s", ", ".join(str(p) for p in paths))


RUNNERS = {
    "simulate": run_simulate, "freq": run_freq, "grm": run_grm, "eigen": run_eigen,
    "convert-kinship": run_convert_kinship, "demo": run_demo, "pca": run_pca, **GWAS_RUNNERS,
}
