"""What each ``gwas-glmm`` subcommand does, given parsed arguments."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from .._progress import get_logger
from ..exceptions import InputError
from ..genotype import VariantFilter, variant_stats
from ..genotype.stats import freq_table
from ..io.pheno import read_sample_list
from ..io.plink import PlinkFileset, read_id_list, select_variants
from ..io.tables import write_tsv
from ..simulate import SimulationConfig, simulate_cohort

log = get_logger("cli")


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def run_simulate(args: argparse.Namespace) -> None:
    cfg = SimulationConfig(
        n_samples=args.n_samples, n_variants=args.n_variants, n_populations=args.n_populations,
        fst=args.fst, family_fraction=args.family_fraction, missing_rate=args.missing_rate,
        min_maf=args.min_maf, h2=args.h2, prevalences=tuple(args.prevalence),
        n_polygenic=args.n_polygenic, n_large=args.n_large, large_fraction=args.large_fraction,
        seed=args.seed,
    )
    cohort = simulate_cohort(args.out, cfg)
    for line in cohort.summary_lines():
        log.info(line)
    log.info("  %s.log", args.out)


def _keep_samples(fileset: PlinkFileset, path: str | None):
    if path is None:
        return None
    index = read_sample_list(path, fileset.samples)
    log.info("--keep: %d of %d samples kept", len(index), fileset.n_samples)
    return index


def run_freq(args: argparse.Namespace) -> None:
    fileset = PlinkFileset(args.bfile, num_threads=args.threads)
    log.info("%s", fileset)
    variants = select_variants(
        fileset.variants, chrom=args.chr,
        include=read_id_list(args.extract) if args.extract else None,
        exclude=read_id_list(args.exclude) if args.exclude else None,
    )
    samples = _keep_samples(fileset, args.keep)
    filters = VariantFilter(min_maf=args.maf, min_mac=args.mac, max_missing=args.geno)
    t0 = time.perf_counter()
    index, stats = variant_stats(fileset, samples=samples, variants=variants, block_size=args.block_size,
                                 filters=filters, show_progress=True)
    elapsed = time.perf_counter() - t0
    out = Path(f"{args.out}.freq.tsv")
    write_tsv(out, freq_table(fileset.variants.take(index), stats))
    log.info("%d of %d variants pass the filters (%.1f s); written to %s",
             len(index), len(variants), elapsed, out)


def run_demo(args: argparse.Namespace) -> None:
    out = Path(args.out)
    prefix = out / "cohort"
    cfg = SimulationConfig(n_samples=args.n_samples, n_variants=args.n_variants, seed=args.seed)
    t0 = time.perf_counter()
    cohort = simulate_cohort(prefix, cfg)
    fileset = PlinkFileset(prefix, num_threads=args.threads)
    index, stats = variant_stats(fileset, show_progress=True)
    write_tsv(f"{prefix}.freq.tsv", freq_table(fileset.variants.take(index), stats))
    maf = pd.Series(stats.maf)
    log.info("demo finished in %.1f s", time.perf_counter() - t0)
    for line in cohort.summary_lines():
        log.info(line)
    log.info("  %s.freq.tsv (allele frequencies: median MAF %.3f, %d variants with MAF < 1%%, "
             "mean missing rate %.4f)", prefix, maf.median(), int((maf < 0.01).sum()),
             float(stats.missing_rate.mean()))
    log.info("  %s (this log)", out / "demo.log")


RUNNERS = {"simulate": run_simulate, "freq": run_freq, "demo": run_demo}
