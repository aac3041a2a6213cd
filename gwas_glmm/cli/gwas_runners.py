"""Runners of the association commands: null, scan, merge, report, plot (and their --dry-run)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .._progress import get_logger
from .._threads import thread_count
from ..exceptions import InputError
from ..provenance import provenance
from .common import genotype_source, null_path, run_parameters, selection

log = get_logger("cli")


def print_estimate(estimate) -> None:
    for line in estimate.lines():
        log.info("%s", line)


def _grm_ids(args: argparse.Namespace) -> str | None:
    """Where a GEMMA kinship's sample IDs come from: --grm-ids, else the --bfile's .fam."""
    if args.grm_ids:
        return args.grm_ids
    return f"{args.bfile[:-4] if args.bfile.endswith(('.bed', '.bim', '.fam')) else args.bfile}.fam" \
        if args.bfile else None


def _dry_run_null(args: argparse.Namespace, pheno, covar, kin_ids) -> None:
    from .. import sizing
    from ..gwas.nullfit import kinship_samples
    from ..io.pheno import align_samples
    from ..kinship.store import loco_names

    fid, iid, eigen_stored, h5 = kin_ids
    aligned = align_samples(kinship_samples(fid, iid), pheno, covar)
    n = int((~np.isnan(aligned.y).any(axis=1)).sum())
    from ..gwas.nullfit import loco_workers

    parts = len(loco_names(args.grm)) if args.loco and h5 else 0
    est = sizing.estimate_null(n, aligned.x.shape[1] + 1, len(aligned.pheno_names), family=args.family,
                               eigen_stored=eigen_stored, matrix_n=len(iid), speed=sizing.MachineSpeed.measure(),
                               base=sizing.process_rss(), loco_parts=parts,
                               loco_at_once=loco_workers(n, parts - 1) if parts > 1 else 1)
    print_estimate(est)


def _dry_run_null_sparse(args: argparse.Namespace, pheno, covar, kin) -> None:
    import scipy.sparse

    from .. import sizing
    from ..gwas.nullfit import kinship_samples
    from ..gwas.sparse_null import default_block_limit
    from ..io.pheno import align_samples
    from ..kinship.components import Components, sparse_groups

    aligned = align_samples(kinship_samples(kin.fid, kin.iid), pheno, covar)
    keep = ~np.isnan(aligned.y).all(axis=1)
    sub = kin.align(aligned.fid[keep], aligned.iid[keep])
    matrix = scipy.sparse.csr_matrix(sub.matrix, dtype=np.float64)
    comps = Components.of(matrix)
    limit = default_block_limit() if args.max_block_memory is None else args.max_block_memory * 2**30
    large, sparse_ids = sparse_groups(matrix, comps, limit, str(args.grm))  # the fit's own choice, symbolic only
    sizes = comps.sizes.copy()
    sizes[sparse_ids] = 1
    print_estimate(sizing.estimate_null_sparse(sub.n, aligned.x.shape[1] + 1, len(aligned.pheno_names),
                                               family=args.family, sizes=sizes[sizes > 1], nnz=matrix.nnz,
                                               speed=sizing.MachineSpeed.measure(), base=sizing.process_rss(),
                                               factor_counts=[np.diff(a.lp) for a in large]))


def run_null(args: argparse.Namespace) -> None:
    from ..gwas.nullfit import fit_null_models
    from ..gwas.store import save_nulls
    from ..io.kinship_formats import kinship_format
    from ..io.pheno import read_covariates, read_phenotypes
    from ..kinship.files import read_kinship
    from ..kinship.store import grm_chromosomes, kinship_header

    started = time.perf_counter()
    out = null_path(args.out)
    h5 = kinship_format(args.grm) == "h5"
    pheno = read_phenotypes(args.pheno, args.pheno_name)
    args.family = args.family or pheno.infer_family()
    pheno = pheno.for_family(args.family)
    extra = args.offset or args.exposure
    if extra and not args.covar:
        raise InputError(f"--{'offset' if args.offset else 'exposure'} {extra} names a column of the covariate "
                         "file: give --covar")
    names = args.covar_name + [extra] if args.covar_name and extra and extra not in args.covar_name \
        else args.covar_name
    covar = read_covariates(args.covar, names) if args.covar else None
    sparse = _sparse_null(args, h5)
    if args.max_block_memory is not None and not sparse:
        raise InputError("--max-block-memory bounds the sparse path's blocks of relatives; this fit is dense "
                         "(give --sparse with a sparse GRM, or drop --max-block-memory)")
    if args.dry_run and sparse:
        return _dry_run_null_sparse(args, pheno, covar, read_kinship(args.grm, ids=_grm_ids(args), sparse=h5))
    if args.dry_run:
        if h5:
            return _dry_run_null(args, pheno, covar, (*kinship_header(args.grm), True))
        kin = read_kinship(args.grm, ids=_grm_ids(args))
        return _dry_run_null(args, pheno, covar, (kin.fid, kin.iid, False, False))
    kin = read_kinship(args.grm, ids=_grm_ids(args), sparse=sparse and h5)
    if sparse:
        log.info("kinship %s: sparse GRM of %d samples, %d pairs kept", args.grm, kin.n,
                 (kin.matrix.nnz - kin.n) // 2)
    else:
        log.info("kinship %s: %d samples, eigendecomposition %s", args.grm, kin.n,
                 "stored (reused)" if kin.eigen is not None else "not stored")
    loco = args.loco and h5 and not sparse
    if args.loco and sparse:
        log.info("sparse GRM: no LOCO (close relatives only; as fastGWA-GLMM and SAIGE's sparse mode)")
    elif args.loco and not h5:
        log.info("%s is an imported kinship without LOCO parts: the scan will use it whole (a GRM from "
                 "gwas-glmm grm has them)", args.grm)
    nulls, statuses, fid, iid, covar_names = fit_null_models(kin, pheno, covar, args.family,
                                                             loco_from=args.grm if loco else None,
                                                             offset=args.offset, exposure=args.exposure,
                                                             bfile=_calibration_bfile(args) if loco else None,
                                                             sparse=sparse, block_memory=None if args.max_block_memory
                                                             is None else args.max_block_memory * 2**30)
    if not nulls:
        failed = "; ".join(f"phenotype {name}: {st['error']}" for name, st in statuses.items())
        raise InputError(f"no phenotype could be fitted: {failed}")
    save_nulls(out, nulls, fid=fid, iid=iid, grm=str(Path(args.grm).resolve()), covar_names=covar_names,
               grm_chromosomes=grm_chromosomes(args.grm) if h5 else None,
               provenance={**provenance(step="null", inputs={"grm": args.grm, "pheno": args.pheno},
                                        parameters=run_parameters(args), started=started), "status": statuses})
    log.info("null models of %d phenotype(s) on %d samples written to %s (%.1f s)", len(nulls), len(iid), out,
             time.perf_counter() - started)


def _sparse_null(args: argparse.Namespace, h5: bool) -> bool:
    """Whether to fit on the sparse GRM (--sparse, or a file that holds only one), logged."""
    from ..io.kinship_formats import kinship_format
    from ..kinship.store import stored_matrices

    if h5:
        dense, sparse = stored_matrices(args.grm)
    else:
        sparse = kinship_format(args.grm) in ("gcta-sparse", "mtx")
        dense = not sparse
    if args.sparse is None:
        chosen = sparse and not dense
        why = "the file holds only a sparse GRM" if chosen else "the file holds a dense kinship"
    else:
        chosen, why = args.sparse, "--sparse" if args.sparse else "--no-sparse"
    if chosen and not sparse:
        raise InputError(f"--sparse: {args.grm} holds no sparse GRM; build one with grm --sparse-cutoff 0.05")
    log.info("null model path: %s (%s)", "sparse GRM, by blocks of related samples" if chosen else "dense", why)
    return chosen


def _calibration_bfile(args: argparse.Namespace) -> str | None:
    """--bfile/--pgen, or the .bed/.pgen the GRM was built from (its provenance) while it is still there."""
    from ..kinship.store import read_provenance

    given = genotype_source(args)
    if given:
        return given
    inputs = read_provenance(args.grm).get("inputs", {})
    for kind in ("bed", "pgen"):
        recorded = inputs.get(kind, "")
        path = str(recorded.get("path", "") if isinstance(recorded, dict) else recorded)
        if path.endswith(f".{kind}") and Path(path).exists():
            log.info("fast-mode LOCO calibration on random variants of %s (the GRM's genotypes)", path)
            return path[:-4] if kind == "bed" else path
    return None


def parse_chunk(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--chunk must look like K/N (e.g. 3/10), got {text!r}") from None
    if not 1 <= k <= n:
        raise InputError(f"--chunk {text}: K must lie between 1 and N")
    return k, n


def chunk_of(variants: np.ndarray, chunk: tuple[int, int] | None) -> np.ndarray:
    """The K-th of N contiguous, near-equal ranges (np.array_split's, so every variant is in one)."""
    if chunk is None:
        return variants
    k, n = chunk
    return np.array_split(variants, n)[k - 1]


def run_scan(args: argparse.Namespace) -> None:
    from ..gwas.cluster import scan_client
    from ..gwas.scanner import Scan, ScanConfig, auto_mode
    from ..gwas.store import load_nulls, null_header

    started = time.perf_counter()
    if args.parquet:
        from ..io.tables import check_parquet

        check_parquet()
    fileset, variants, samples = selection(args)
    variants = _skip_haploid(args, fileset, variants)
    chunk = parse_chunk(args.chunk)
    variants = chunk_of(variants, chunk)
    if chunk is not None:
        log.info("--chunk %d/%d: %d variants", *chunk, len(variants))
    config = ScanConfig(mode=args.mode, block_size=args.block_size, min_mac=max(args.mac, 1.0), min_maf=args.maf,
                        max_missing=args.geno, min_info=args.min_info, spa=not args.no_spa,
                        threads=thread_count(args.threads), loco=not args.no_loco,
                        parquet=args.parquet, x_male_coding=args.x_male_coding)
    if args.dry_run:
        from .. import sizing

        head = null_header(args.null)
        mode = args.mode if args.mode != "auto" else auto_mode(head.n, head.sparse)
        threads = args.cluster_cores if args.cluster else config.threads
        estimate = sizing.estimate_scan(head.n, len(variants), list(head.families.values()), mode=mode,
                                        block=config.block_size, threads=threads, p=head.p,
                                        speed=sizing.MachineSpeed.measure(), base=sizing.process_rss(),
                                        loco_parts=0 if args.no_loco else head.loco_parts,
                                        calibrated=head.calibrated and not args.no_loco,
                                        sparse_nnz=head.whitener_nnz if head.sparse and mode == "exact" else None,
                                        genotype_format=fileset.format)
        print_estimate(estimate)
        if args.cluster:
            from ..gwas.cluster import job_script

            log.info("on --cluster %s with %d jobs of %d cores: ~%.1f h of wall time (the blocks spread over the "
                     "jobs), each job ~%.1f GiB (--cluster-memory %s)", args.cluster, args.cluster_jobs,
                     args.cluster_cores, estimate.seconds / args.cluster_jobs / 3600, estimate.memory / 2**30,
                     args.cluster_memory)

            log.info("the job script each of the %d workers would run:\n%s", args.cluster_jobs,
                     job_script(args.cluster, cluster_resources(args)))
        return
    if samples is not None:
        log.info("--keep ignored by scan: the samples are those of the null model")
    head = null_header(args.null)  # checks the file first
    bed = fileset.genotype_path.stat()
    key = f"{fileset.genotype_path}:{bed.st_size}:{bed.st_mtime_ns}:{Path(args.null).stat().st_mtime_ns}"
    sex = None
    if args.sex:
        from ..io.pheno import read_sex

        sex = read_sex(args.sex, fileset.samples)
        key += f":{args.sex}:{Path(args.sex).stat().st_mtime_ns}"
    fast = (args.mode if args.mode != "auto" else auto_mode(head.n, head.sparse)) == "fast"
    # a fast scan of a null file whose LOCO ratios are all calibrated reads its top directions only,
    # unless a chromosome scanned has no LOCO part (then it calibrates, with the full models)
    light = fast and head.calibrated and not args.no_loco
    for fast_only in ((True, False) if light else (False,)):
        nulls, fid, iid, attrs = load_nulls(args.null, fast_only=fast_only)
        scan = Scan(fileset, nulls, fid, iid, variants, args.out, config, inputs_key=key,
                    kinship_path=str(attrs.get("grm", "")) or None, grm_chromosomes=attrs.get("grm_chromosomes"),
                    sex=sex)
        if not (fast_only and scan.needs_calibration):
            break
    log.info("scanning %d variants in %d blocks for %d phenotype(s) on %d samples (%s mode)", len(variants),
             len(scan.blocks), len(nulls), scan.n, scan.mode)
    with scan_client(scheduler=args.scheduler, cluster=args.cluster,
                     resources=cluster_resources(args)) as client:
        paths = scan.run(client=client)
    elapsed = time.perf_counter() - started
    log.info("scan finished in %.1f s (%.0f variants/s)", elapsed, len(variants) / max(elapsed, 1e-9))
    for name, path in paths.items():
        log.info("  %s: %s", name, path)


def _skip_haploid(args: argparse.Namespace, fileset, variants: np.ndarray) -> np.ndarray:
    """Y and MT are left out of a scan unless --chr names them (then tested as coded), as users
    of plink2 and REGENIE expect; said in the log."""
    from ..io.chrom import parse_chrom_list

    asked = set(parse_chrom_list(args.chr)) if args.chr else set()
    chrom = fileset.variants.chrom[variants].astype(str)
    skip = np.isin(chrom, [c for c in ("Y", "MT") if c not in asked])
    if skip.any():
        log.info("chromosomes %s: %d variants not tested (haploid; name them in --chr to test them as coded)",
                 ", ".join(sorted(set(chrom[skip]))), int(skip.sum()))
        variants = variants[~skip]
        if not len(variants):
            raise InputError(f"{fileset.variant_path}: only Y and MT variants are selected; name them in --chr to test them")
    return variants


def cluster_resources(args: argparse.Namespace):
    from ..gwas.cluster import ClusterResources

    return ClusterResources(jobs=args.cluster_jobs, cores=args.cluster_cores, memory=args.cluster_memory,
               walltime=args.cluster_walltime, queue=args.cluster_queue, account=args.cluster_account,
               wait=args.cluster_wait)


def run_merge(args: argparse.Namespace) -> None:
    from ..gwas.report import merge_results
    from ..gwas.scanner import lambda_text

    summary = merge_results(args.results, args.out)
    log.info("%d files, %d variants merged into %s; %s", summary.n_files, summary.n_variants, summary.path,
             lambda_text(summary.lambda_gc))


def run_report(args: argparse.Namespace) -> None:
    from ..gwas.report import write_report

    paths = write_report(args.results, args.out, top=args.top)
    log.info("report: %s", ", ".join(str(p) for p in paths))


def run_plot(args: argparse.Namespace) -> None:
    from ..plot import manhattan, plot_lambda, qq, read_results

    results = read_results(args.results)
    title = Path(args.results).name
    m = manhattan(results, f"{args.out}.manhattan.png", title=title)
    q = qq(results, f"{args.out}.qq.png", title=title)
    tested = int(np.isfinite(results.LOG10P.to_numpy(dtype=float)).sum())
    log.info("plots: %s, %s; lambda_GC %.3f over the %d of %d variants with a test", m, q, plot_lambda(results),
             tested, len(results))


GWAS_RUNNERS = {"null": run_null, "scan": run_scan, "merge": run_merge, "report": run_report, "plot": run_plot}
