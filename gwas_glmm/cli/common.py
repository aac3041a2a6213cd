"""Pieces the runners share: the sample and variant selection flags."""

from __future__ import annotations

import argparse

from .._progress import get_logger
from ..io.pheno import read_sample_list
from ..io.plink import PlinkFileset, read_id_list, select_variants

log = get_logger("cli")


def keep_samples(fileset: PlinkFileset, path: str | None):
    if path is None:
        return None
    index = read_sample_list(path, fileset.samples)
    log.info("--keep: %d of %d samples kept", len(index), fileset.n_samples)
    return index


def selection(args: argparse.Namespace):
    """(fileset, variant positions, sample positions or None) from the shared selection flags."""
    fileset = PlinkFileset(args.bfile, num_threads=args.threads)
    log.info("%s", fileset)
    variants = select_variants(
        fileset.variants, chrom=args.chr,
        include=read_id_list(args.extract) if args.extract else None,
        exclude=read_id_list(args.exclude) if args.exclude else None,
    )
    return fileset, variants, keep_samples(fileset, args.keep)
