"""The ``gwas-glmm`` argument parser (kept apart from the runners so docs and tests can use it).

Flag names follow plink2 where plink2 has one (--bfile, --pheno, --pheno-name, --covar,
--covar-name, --out, --threads, --maf, --mac, --geno, --chr, --extract, --exclude, --keep).
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..simulate import SimulationConfig


def _add_common(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--out", required=True, metavar="PREFIX", help=out_help)
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for reading and kernels (default: all cores)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")


def _add_variant_filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("variant selection")
    g.add_argument("--chr", nargs="+", metavar="CHR", help="keep these chromosomes (1 or chr1)")
    g.add_argument("--extract", metavar="FILE", help="keep the variant IDs listed in FILE")
    g.add_argument("--exclude", metavar="FILE", help="drop the variant IDs listed in FILE")
    g.add_argument("--maf", type=float, default=0.0, help="minimum minor allele frequency")
    g.add_argument("--mac", type=float, default=0.0, help="minimum minor allele count")
    g.add_argument("--geno", type=float, default=1.0, metavar="RATE",
                   help="maximum missing-call rate per variant")
    g.add_argument("--keep", metavar="FILE", help="keep the samples (FID IID) listed in FILE")
    g.add_argument("--block-size", type=int, default=2048, metavar="M",
                   help="variants per streamed block (memory ~ 8 x samples x M bytes)")


def _add_simulation(p: argparse.ArgumentParser) -> None:
    d = SimulationConfig()
    g = p.add_argument_group("cohort")
    g.add_argument("--n-samples", type=int, default=d.n_samples, metavar="N")
    g.add_argument("--n-variants", type=int, default=d.n_variants, metavar="M")
    g.add_argument("--n-populations", type=int, default=d.n_populations, metavar="K")
    g.add_argument("--fst", type=float, default=d.fst, help="drift of each population (Balding-Nichols F)")
    g.add_argument("--family-fraction", type=float, default=d.family_fraction,
                   help="share of samples in families (the rest are unrelated)")
    g.add_argument("--missing-rate", type=float, default=d.missing_rate, help="mean missing-call rate")
    g.add_argument("--min-maf", type=float, default=d.min_maf, help="smallest ancestral MAF")
    g.add_argument("--seed", type=int, default=d.seed)
    t = p.add_argument_group("phenotypes")
    t.add_argument("--h2", type=float, default=d.h2, help="heritability (quantitative; liability for binary)")
    t.add_argument("--prevalence", type=float, nargs="+", default=list(d.prevalences),
                   help="one binary trait per prevalence")
    t.add_argument("--n-polygenic", type=int, default=d.n_polygenic, help="background causal variants per trait")
    t.add_argument("--n-large", type=int, default=d.n_large, help="large-effect variants per trait")
    t.add_argument("--large-fraction", type=float, default=d.large_fraction,
                   help="share of genetic variance explained by each large-effect variant")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gwas-glmm",
        description="Mixed-model association studies: PLINK genotypes in, calibrated score tests out.",
    )
    parser.add_argument("--version", action="version", version=f"gwas-glmm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser("simulate", help="simulate a related, structured cohort with known truth",
                         description="Write PREFIX.bed/.bim/.fam, .pheno, .covar, .truth.tsv, "
                         ".pairs.tsv and .sim.json for a simulated cohort.")
    _add_common(sim, "output prefix; its folder is created")
    _add_simulation(sim)
    sim.set_defaults(runner="simulate")

    freq = sub.add_parser("freq", help="per-variant allele frequency, MAC and missing rate",
                          description="One pass over the .bed; writes PREFIX.freq.tsv "
                          "(A1FREQ = frequency of ALLELE1, the .bim's 5th column = plink2's ALT).")
    freq.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK 1 fileset prefix")
    _add_common(freq, "output prefix")
    _add_variant_filters(freq)
    freq.set_defaults(runner="freq")

    demo = sub.add_parser("demo", help="run the pipeline on a built-in simulated cohort",
                          description="Simulate a related cohort under OUT/ and run every stage "
                          "available in this version on it, printing where each result is.")
    demo.add_argument("--out", default="gwas_glmm_demo", metavar="DIR", help="output folder")
    demo.add_argument("--n-samples", type=int, default=2000, metavar="N")
    demo.add_argument("--n-variants", type=int, default=20000, metavar="M")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--threads", type=int, default=None, metavar="N")
    demo.add_argument("-v", "--verbose", action="store_true")
    demo.set_defaults(runner="demo")
    return parser
