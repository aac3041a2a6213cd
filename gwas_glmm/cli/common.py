"""Pieces the runners share: the sample and variant selection flags, the files each command
reads and writes (so that no output overwrites an input)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .._progress import get_logger
from .._threads import thread_count
from .._validation import check_fraction, check_positive_int
from ..exceptions import InputError
from ..io.pgen import pgen_paths
from ..io.pheno import read_sample_list
from ..io.plink import GenotypeFileset, open_genotypes, plink_paths, read_id_list, select_variants

log = get_logger("cli")


def genotype_source(args: argparse.Namespace) -> str | None:
    """The fileset named by --bfile (its prefix), --pgen (PREFIX.pgen) or --bgen (FILE.bgen, with
    ::FILE.sample after it when --sample is given), as
    :func:`gwas_glmm.io.plink.open_genotypes` opens it; None when neither is given."""
    if getattr(args, "sample", None) and not getattr(args, "bgen", None):
        raise InputError("--sample goes with --bgen (a .bgen's Oxford sample file)")
    if getattr(args, "pgen", None):
        return str(pgen_paths(args.pgen)[0])
    if getattr(args, "bgen", None):
        return f"{args.bgen}::{args.sample}" if args.sample else args.bgen
    return getattr(args, "bfile", None)


def keep_samples(fileset: GenotypeFileset, path: str | None):
    if path is None:
        return None
    index = read_sample_list(path, fileset.samples)
    log.info("--keep: %d of %d samples kept", len(index), fileset.n_samples)
    return index


def run_parameters(args: argparse.Namespace) -> dict:
    """The command's options for the output's provenance (not the parser's own bookkeeping)."""
    return {k: v for k, v in vars(args).items() if k not in ("runner", "command", "verbose")}


def selection(args: argparse.Namespace):
    """(fileset, variant positions, sample positions or None) from the shared selection flags."""
    fileset = open_genotypes(genotype_source(args), num_threads=thread_count(args.threads))
    log.info("%s", fileset)
    if fileset.iid_only:
        log.info("%s has no FID column: samples are matched by IID alone", fileset.sample_path)
    if getattr(args, "min_info", 0) > 0 and not fileset.dosages:
        raise InputError(f"--minINFO needs dosages (--pgen, --bgen); {fileset.genotype_path} holds hard calls, whose INFO "
                         "is not defined: drop --minINFO")
    variants = select_variants(
        fileset.variants, chrom=args.chr,
        include=read_id_list(args.extract) if args.extract else None,
        exclude=read_id_list(args.exclude) if args.exclude else None,
    )
    if len(variants) == 0:
        given = [f"--chr {' '.join(args.chr)}" if args.chr else "", f"--extract {args.extract}" if args.extract else "",
                 f"--exclude {args.exclude}" if args.exclude else ""]
        chroms = ", ".join(dict.fromkeys(fileset.variants.chrom.astype(str)))
        raise InputError(f"{fileset.variant_path}: no variant is left after {' '.join(g for g in given if g)} "
                         f"(its chromosomes: {chroms}); check the selection")
    if fileset.multiallelic is not None:
        skipped = fileset.multiallelic[variants]
        if skipped.any():
            log.info("%d multi-allelic variants skipped (split them with plink2 --make-pgen --max-alleles 2 or "
                     "bcftools norm -m-)", int(skipped.sum()))
            variants = variants[~skipped]
            if len(variants) == 0:
                raise InputError(f"{fileset.variant_path}: every selected variant is multi-allelic; split them "
                                 "(bcftools norm -m-) to test them")
    return fileset, variants, keep_samples(fileset, args.keep)


def grm_path(out: str) -> Path:
    return Path(out if out.endswith((".h5", ".hdf5")) else f"{out}.grm.h5")


def sparse_export_paths(out: str, formats) -> list[Path]:
    """The files ``grm --sparse-format`` writes beside the .h5: GCTA's and SAIGE's sparse GRM."""
    h5 = str(grm_path(out))
    stem = h5[: -len(".grm.h5")] if h5.endswith(".grm.h5") else h5.rsplit(".", 1)[0]
    paths = {"gcta": [Path(stem + ".grm.sp"), Path(stem + ".grm.id")],
             "saige": [Path(stem + ".sparseGRM.mtx"), Path(stem + ".sparseGRM.mtx.sampleIDs.txt")]}
    return [p for f in formats for p in paths[f]]


def null_path(out: str) -> Path:
    return Path(out if out.endswith((".h5", ".hdf5")) else f"{out}.null.h5")


_KINSHIP_SUFFIXES = (".tsv.gz", ".null.h5", ".grm.h5", ".h5", ".hdf5", ".grm.bin", ".grm.gz", ".grm.sp",
                     ".sparseGRM.mtx", ".mtx", ".rel.bin", ".rel.gz", ".rel")


def log_path(args: argparse.Namespace) -> Path | None:
    if args.runner == "demo":
        return Path(args.out) / "demo.log"
    if args.runner == "report":
        return Path(f"{args.out}.report.log")
    out = args.grm if args.runner == "eigen" else args.out
    for suffix in _KINSHIP_SUFFIXES:
        if out.endswith(suffix):
            return Path(out[: -len(suffix)] + ".log")
    return Path(f"{out}.log")


_INPUT_FLAGS = ("grm", "null", "pheno", "covar", "keep", "extract", "exclude", "kinship", "results", "grm_ids",
                "sparse_grm")


def _inputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    found = []
    for flag in _INPUT_FLAGS:
        value = getattr(args, flag, None)
        for item in (value if isinstance(value, list) else [value] if value else []):
            found.append((f"--{flag.replace('_', '-')}", Path(item)))
    if getattr(args, "bfile", None):
        found += [("--bfile", p) for p in plink_paths(args.bfile)]
    if getattr(args, "pgen", None):
        found += [("--pgen", p) for p in pgen_paths(args.pgen)]
    for flag in ("bgen", "sample"):
        if getattr(args, flag, None):
            found.append((f"--{flag}", Path(getattr(args, flag))))
    for flag, path in list(found):  # a foreign kinship's companions (.grm.id, .grm.N.bin, .rel.id)
        name = str(path)
        for suffix, extra in ((".grm.bin", (".grm.id", ".grm.N.bin")), (".grm.gz", (".grm.id",)),
                              (".grm.sp", (".grm.id",)), (".mtx", (".mtx.sampleIDs.txt",)),
                              (".rel.bin", (".rel.id",)), (".rel.gz", (".rel.id",)), (".rel", (".rel.id",))):
            if name.endswith(suffix):
                found += [(flag, Path(name[: -len(suffix)] + e)) for e in extra]
                break
    return found


def _outputs(args: argparse.Namespace) -> list[Path]:
    out = getattr(args, "out", None)
    files = {"grm": lambda: [grm_path(out), *sparse_export_paths(out, getattr(args, "sparse_format", []))],
             "null": lambda: [null_path(out)], "merge": lambda: [Path(out)],
             "freq": lambda: [Path(f"{out}.freq.tsv")],
             "pca": lambda: [Path(f"{out}.eigenvec"), Path(f"{out}.eigenval")],
             "plot": lambda: [Path(f"{out}.manhattan.png"), Path(f"{out}.qq.png")],
             "report": lambda: [Path(f"{out}.{s}") for s in ("manhattan.png", "qq.png", "report.md")],
             "convert-kinship": lambda: [Path(out), *(p for _, p in _inputs(argparse.Namespace(kinship=out)))],
             }.get(args.runner, lambda: [])()
    log = log_path(args) if args.runner != "eigen" else None
    return files + ([log] if log is not None else [])


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse a command whose output (or log) would overwrite one of its inputs, e.g.
    ``null --grm X.h5 --out X.h5``: hours of work lost with exit code 0."""
    inputs = _inputs(args)
    for out in _outputs(args):
        for flag, path in inputs:
            if _same(out, path):
                raise InputError(f"--out {args.out} would overwrite {path}, the input given with {flag}; "
                                 "choose another --out")


_AT_LEAST_ONE = ("threads", "block_size", "top", "cluster_jobs", "cluster_cores", "thin_count", "n_pcs")
_NOT_NEGATIVE = ("seed", "mac", "psd_tol", "iterations")
_FRACTIONS = {"maf": 0.5, "geno": 1.0, "thin": 1.0}


def check_values(args: argparse.Namespace) -> None:
    """The numeric flags every command shares, checked before any work: one line naming the flag."""
    for name in _AT_LEAST_ONE:
        value = getattr(args, name, None)
        if value is not None:
            check_positive_int(f"--{name.replace('_', '-')}", value)
    for name in _NOT_NEGATIVE:
        value = getattr(args, name, None)
        if value is not None and not value >= 0:
            raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    for name, high in _FRACTIONS.items():
        value = getattr(args, name, None)
        if value is not None:
            check_fraction(f"--{name}", value, high=high)
