"""The ``gwas-glmm`` argument parser (kept apart from the runners so docs and tests can use it).

Flag names follow plink2 where plink2 has one (--bfile, --pheno, --pheno-name, --covar,
--covar-name, --out, --threads, --maf, --mac, --geno, --chr, --extract, --exclude, --keep).
"""

from __future__ import annotations

import argparse

from .. import __version__
from ..simulate.config import SimulationConfig


def _add_common(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--out", required=True, metavar="PREFIX", help=out_help)
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for reading and kernels (default: the CPUs this job may use: affinity mask, "
                        "cgroup quota, SLURM_CPUS_PER_TASK and the like; logged)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")


def _add_genotypes(p: argparse.ArgumentParser, *, required: bool = True, help: str = "") -> None:
    """--bfile, --pgen or --bgen (with --sample): the genotype fileset (one of them when ``required``)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--bfile", metavar="PREFIX", help=f"PLINK 1 fileset prefix (.bed/.bim/.fam){help}")
    g.add_argument("--pgen", metavar="PREFIX", help="PLINK 2 fileset prefix (.pgen/.pvar/.psam): hard calls or "
                   f"dosages{help}")
    g.add_argument("--bgen", metavar="FILE.bgen", help="BGEN 1.1-1.3 file (imputed probabilities; ALLELE1 is each "
                   f"variant's second allele){help}")
    p.add_argument("--sample", metavar="FILE.sample", help="the --bgen's Oxford .sample file (ID_1 = FID, ID_2 = IID; "
                   "default: the IDs stored in the .bgen, matched by IID)")


def _add_variant_filters(p: argparse.ArgumentParser, *, maf: float = 0.0, geno: float = 1.0, info: bool = False) -> None:
    g = p.add_argument_group("variant selection")
    g.add_argument("--chr", nargs="+", metavar="CHR",
                   help="keep these chromosomes: 1 or chr1, X or 23, lists 1,2 and ranges 1-22 as plink2 reads them "
                   "(default: all, except that grm leaves X, Y, MT out and scan leaves Y, MT out)")
    g.add_argument("--extract", metavar="FILE", help="keep the variant IDs listed in FILE")
    g.add_argument("--exclude", metavar="FILE", help="drop the variant IDs listed in FILE")
    g.add_argument("--maf", type=float, default=maf, help=f"minimum minor allele frequency (default {maf})")
    g.add_argument("--mac", type=float, default=0.0, help="minimum minor allele count")
    g.add_argument("--geno", type=float, default=geno, metavar="RATE",
                   help=f"maximum missing-call rate per variant (default {geno})")
    if info:
        g.add_argument("--minINFO", dest="min_info", type=float, default=0.0, metavar="INFO",
                       help="minimum imputation INFO (.bgen: IMPUTE info; .pgen: MaCH Rsq), --pgen/--bgen only "
                            "(REGENIE's flag)")
    g.add_argument("--keep", metavar="FILE", help="keep the samples (FID IID) listed in FILE")
    g.add_argument("--block-size", type=int, default=2048, metavar="M",
                   help="variants per streamed block (memory ~ 8 x samples x M bytes)")


def _add_dask(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("distributed (dask)")
    d.add_argument("--scheduler", metavar="ADDRESS", help="run the blocks on this dask.distributed scheduler "
                   "(tcp://host:8786, or a scheduler JSON file)")
    d.add_argument("--cluster", choices=["slurm", "pbs", "sge"],
                   help="start dask workers as batch jobs through dask-jobqueue (pip install 'gwas_glmm[cluster]')")
    d.add_argument("--cluster-jobs", type=int, default=4, metavar="N", help="batch jobs, one dask worker each")
    d.add_argument("--cluster-cores", type=int, default=4, metavar="N", help="cores per job (worker threads)")
    d.add_argument("--cluster-memory", default="16GB", metavar="MEM",
                   help="memory per job; --dry-run prints what the scan needs")
    d.add_argument("--cluster-walltime", default="04:00:00", metavar="HH:MM:SS")
    d.add_argument("--cluster-queue", metavar="NAME", help="partition (SLURM) or queue (PBS/SGE)")
    d.add_argument("--cluster-account", metavar="NAME", help="account / project to charge")
    d.add_argument("--cluster-wait", type=float, default=1800, metavar="SECONDS",
                   help="give up (one line, exit 1) if no worker job has started within this time (default 1800)")


def _add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true",
                   help="print the memory, disk and time this run would need for these inputs, and stop")


def _add_simulation(p: argparse.ArgumentParser) -> None:
    d = SimulationConfig()
    g = p.add_argument_group("cohort")
    g.add_argument("--n-samples", type=int, default=d.n_samples, metavar="N")
    g.add_argument("--n-variants", type=int, default=d.n_variants, metavar="M", help="autosomal variants")
    g.add_argument("--n-x-variants", type=int, default=d.n_x_variants, metavar="M",
                   help="variants on chromosome X, after the autosomes (males hemizygous, coded 0/2 as plink stores "
                   "them; sex in the .fam)")
    g.add_argument("--n-populations", type=int, default=d.n_populations, metavar="K")
    g.add_argument("--fst", type=float, default=d.fst, help="drift of each population (Balding-Nichols F)")
    g.add_argument("--family-fraction", type=float, default=d.family_fraction,
                   help="share of samples in families (the rest are unrelated)")
    g.add_argument("--missing-rate", type=float, default=d.missing_rate, help="mean missing-call rate")
    g.add_argument("--min-maf", type=float, default=d.min_maf, help="smallest ancestral MAF")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--dosages", action="store_true", help="also write PREFIX.pgen/.pvar/.psam with imputed-like "
                   "dosages of the same variants (quality r ~ U(0.3, 1), a fifth typed; the .bed keeps the true calls)")
    t = p.add_argument_group("phenotypes")
    t.add_argument("--h2", type=float, default=d.h2, help="heritability (quantitative; liability for binary)")
    t.add_argument("--prevalence", type=float, nargs="+", default=list(d.prevalences),
                   help="one binary trait per prevalence")
    t.add_argument("--n-polygenic", type=int, default=d.n_polygenic, help="background causal variants per trait")
    t.add_argument("--n-large", type=int, default=d.n_large, help="large-effect variants per trait")
    t.add_argument("--large-fraction", type=float, default=d.large_fraction,
                   help="share of genetic variance explained by each large-effect variant")


def _add_kinship_commands(sub) -> None:
    grm = sub.add_parser(
        "grm", help="genomic relationship matrix (GCTA definition), streamed, with LOCO parts",
        description="Build the GCTA-standardized GRM from a .bed in one streamed pass and store it "
        "in HDF5 with sample IDs, counts, per-chromosome (LOCO) parts and provenance.")
    _add_genotypes(grm)
    _add_common(grm, "output file (FILE.h5, or PREFIX -> PREFIX.grm.h5); log to PREFIX.log")
    _add_variant_filters(grm, maf=0.01, geno=0.05)
    g = grm.add_argument_group("GRM")
    g.add_argument("--missing", choices=["gcta", "mean-impute"], default="gcta",
                   help="gcta: missing calls contribute 0 and each pair is averaged over the variants "
                   "called in both (plink2 --make-rel); mean-impute: missing = 2p, every pair over M")
    g.add_argument("--double", action="store_true", help="accumulate in float64 (default float32)")
    g.add_argument("--loco", action=argparse.BooleanOptionalAction, default=True,
                   help="keep per-chromosome parts for leave-one-chromosome-out GRMs (disk: one "
                   "n x n matrix per chromosome)")
    g.add_argument("--eigen", action="store_true", help="also store the eigendecomposition")
    g.add_argument("--sparse-cutoff", type=float, default=None, metavar="X",
                   help="a sparse GRM keeping the diagonal and the off-diagonal entries >= X (fastGWA: 0.05), "
                   "built by panels of samples without an n x n matrix; with --dense, stored beside the dense GRM")
    g.add_argument("--dense", action="store_true",
                   help="with --sparse-cutoff: also build the dense GRM (and its LOCO parts, --eigen)")
    g.add_argument("--sparse-format", nargs="+", choices=["gcta", "saige"], default=[], metavar="FORMAT",
                   help="with --sparse-cutoff: also write the sparse GRM as gcta (PREFIX.grm.sp + .grm.id, "
                   "fastGWA's --grm-sparse) and/or saige (PREFIX.sparseGRM.mtx + .mtx.sampleIDs.txt)")
    g.add_argument("--thin-count", type=int, default=None, metavar="N", help="use N random variants")
    g.add_argument("--thin", type=float, default=None, metavar="P", help="use each variant with probability P")
    g.add_argument("--seed", type=int, default=1, help="seed for --thin/--thin-count")
    _add_dask(grm)
    _add_dry_run(grm)
    grm.set_defaults(runner="grm")

    pca = sub.add_parser(
        "pca", help="principal components by a randomized method streaming the .bed (plink2 .eigenvec/.eigenval)",
        description="Top principal components of the standardized genotypes by a randomized block Krylov "
        "method: a few passes over the .bed, memory O(samples x PCs). With --sparse-grm, the PCs come from "
        "unrelated samples and their relatives are projected, as is usual. Writes plink2's PREFIX.eigenvec "
        "(read by --covar as it is) and PREFIX.eigenval.")
    _add_genotypes(pca)
    _add_common(pca, "output prefix: PREFIX.eigenvec, PREFIX.eigenval; log to PREFIX.log")
    _add_variant_filters(pca, maf=0.01, geno=0.05)
    g = pca.add_argument_group("PCA")
    g.add_argument("--n-pcs", type=int, default=10, metavar="K", help="principal components (default 10)")
    g.add_argument("--sparse-grm", metavar="FILE", help="compute the PCs on unrelated samples only, choosing them "
                   "from this sparse GRM (.h5 from grm --sparse-cutoff, .grm.sp or .mtx), and project the others")
    g.add_argument("--unrelated-cutoff", type=float, default=None, metavar="X",
                   help="with --sparse-grm: pairs with a GRM entry >= X are related (default: the file's cutoff, "
                   "or 0.05)")
    g.add_argument("--missing", choices=["gcta", "mean-impute"], default="gcta",
                   help="gcta (plink2 --pca): each sample's products scaled to its called variants; mean-impute: "
                   "missing calls at the mean, every pair over all variants")
    g.add_argument("--iterations", type=int, default=4, metavar="Q",
                   help="Krylov iterations: Q + 2 passes over the .bed (default 4)")
    g.add_argument("--thin-count", type=int, default=None, metavar="N", help="use N random variants")
    g.add_argument("--seed", type=int, default=1, help="seed of the random start and of --thin-count")
    _add_dask(pca)
    _add_dry_run(pca)
    pca.set_defaults(runner="pca")

    eig = sub.add_parser("eigen", help="store the eigendecomposition of a kinship file, once",
                         description="Decompose the matrix in a gwas-glmm kinship file (and with "
                         "--loco each LOCO matrix) and store the result in the same file.")
    eig.add_argument("--grm", required=True, metavar="FILE.h5")
    eig.add_argument("--loco", action="store_true", help="also decompose every LOCO matrix")
    eig.add_argument("--psd-tol", type=float, default=1e-2, metavar="T",
                     help="relative size of negative eigenvalues clipped to 0 before it is an error")
    eig.add_argument("--threads", type=int, default=None, metavar="N")
    eig.add_argument("-v", "--verbose", action="store_true")
    eig.set_defaults(runner="eigen")

    conv = sub.add_parser("convert-kinship", help="convert or import a kinship matrix (GCTA, plink2, HDF5)",
                          description="Read a kinship in any supported format, validate it (square, "
                          "symmetric, finite, PSD, unique IDs) and write it in the format given by --out's "
                          "name: .h5, .grm.bin, .grm.gz, .rel, .rel.gz, .rel.bin.")
    conv.add_argument("--kinship", required=True, metavar="FILE",
                      help=".h5, PREFIX.grm.bin / .grm.gz (GCTA), .rel / .rel.gz / .rel.bin (plink2), "
                      ".cXX.txt / .sXX.txt (GEMMA, with --grm-ids)")
    conv.add_argument("--grm-ids", metavar="FILE", help="a GEMMA kinship's sample IDs: the .fam it was computed from")
    conv.add_argument("--out", required=True, metavar="FILE")
    conv.add_argument("--pedigree", action="store_true",
                      help="--kinship is a .fam: build the pedigree kinship (twice the kinship coefficient)")
    conv.add_argument("--threads", type=int, default=None, metavar="N")
    conv.add_argument("-v", "--verbose", action="store_true")
    conv.set_defaults(runner="convert-kinship")


def _add_gwas_commands(sub) -> None:
    null = sub.add_parser("null", help="fit the null GLMM of one or more phenotypes against a GRM, once",
                          description="Fit the GLMM without variants (GRM as a known-covariance random effect; "
                          "Gaussian by REML in the GRM's stored eigenbasis, others by PQL/AI-REML) and save "
                          "everything the scan needs to FILE.h5.")
    null.add_argument("--grm", required=True, metavar="FILE",
                      help="kinship: FILE.h5 from gwas-glmm grm (LOCO parts, stored eigendecomposition), or imported "
                      "as it is: GCTA PREFIX.grm.bin/.grm.gz, plink2 .rel/.rel.gz/.rel.bin, GEMMA .cXX.txt/.sXX.txt")
    null.add_argument("--grm-ids", metavar="FILE", help="a GEMMA kinship's sample IDs: the .fam it was computed from "
                      "(default: --bfile's .fam)")
    null.add_argument("--pheno", required=True, metavar="FILE",
                      help="phenotype file (FID IID name...), or a .fam: its 6th and later columns as PHENO1, PHENO2, ...")
    null.add_argument("--pheno-name", nargs="+", metavar="NAME",
                      help="phenotype columns (default: all), as plink2 lists them: a,b or a b, ranges PC1-PC10")
    null.add_argument("--covar", nargs="+", metavar="FILE",
                      help="covariate file(s); several are joined on the sample IDs, e.g. cohort.covar PCS.eigenvec")
    null.add_argument("--covar-name", nargs="+", metavar="NAME",
                      help="covariate columns (default: all), as plink2 lists them: age,sex,PC1-PC10")
    null.add_argument("--family", choices=["gaussian", "binomial", "poisson", "negbin"], default=None,
                      help="default: binomial if the phenotypes are case/control (0/1, or plink's 1/2 with 0 and -9 "
                      "missing), gaussian if not (logged); negbin: NB2 with its dispersion estimated alongside (PQL)")
    off = null.add_mutually_exclusive_group()
    off.add_argument("--offset", metavar="COL", help="covariate-file column used as an offset on the link scale "
                     "(taken out of the covariates)")
    off.add_argument("--exposure", metavar="COL", help="covariate-file column whose log is the offset, e.g. "
                     "follow-up time for Poisson/negbin counts (taken out of the covariates)")
    _add_genotypes(null, required=False, help="; its random variants calibrate the fast LOCO scan per chromosome "
                   "(default: the fileset the GRM was built from, if it is still there)")
    null.add_argument("--loco", action=argparse.BooleanOptionalAction, default=True,
                      help="also compute each phenotype's residual with each chromosome left out of the GRM, from "
                      "the GRM file's LOCO parts (one n^3/3 factorisation per chromosome); the scan then tests each "
                      "chromosome against its own (default: on when the GRM has LOCO parts)")
    null.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=None,
                      help="fit on the sparse GRM by blocks of related samples, O(N) (fastGWA-GLMM/SAIGE sparse mode; "
                      "no LOCO, PCs as covariates); default: on when --grm holds only a sparse GRM (.h5 from grm "
                      "--sparse-cutoff, .grm.sp, .mtx)")
    null.add_argument("--max-block-memory", type=float, default=None, metavar="GIB",
                      help="sparse path: memory a group of related samples may take while factorised, as a dense "
                      "block or a sparse Cholesky factor (default: half this machine's)")
    _add_common(null, "output file (FILE.h5, or PREFIX -> PREFIX.null.h5)")
    _add_dry_run(null)
    null.set_defaults(runner="null")

    scan = sub.add_parser("scan", help="score-test every variant against a fitted null model",
                          description="Blocks of variants in parallel (dask: local threads, or a dask.distributed "
                          "cluster with --scheduler/--cluster), every phenotype of the null model in one pass; writes "
                          "OUT.<phenotype>.tsv.gz.  A killed scan resumes from "
                          "OUT.ckpt/ when run again with the same command.")
    _add_genotypes(scan, help="; the null model's samples are found in it by ID")
    scan.add_argument("--null", required=True, metavar="FILE.h5", help="null-model file from gwas-glmm null")
    scan.add_argument("--mode", choices=["auto", "exact", "fast"], default="auto",
                      help="exact: score variance through the GRM's eigenbasis (n^2 per variant); fast: variance "
                      "ratio from random variants (n per variant); auto: exact up to 5,000 samples")
    scan.add_argument("--no-spa", action="store_true", help="no saddlepoint approximation for binary traits")
    scan.add_argument("--parquet", action="store_true",
                      help="also write PREFIX.<phenotype>.parquet (pip install 'gwas_glmm[parquet]')")
    scan.add_argument("--no-loco", action="store_true",
                      help="test every variant against the full-GRM null model even where it has LOCO parts")
    x = scan.add_argument_group("chromosomes X, Y, MT")
    x.add_argument("--x-male-coding", choices=["0/2", "0/1"], default="0/2",
                   help="dosage of a male's one X copy: 0/2 (REGENIE's default) or 0/1; heterozygous male X calls are "
                   "missing; X variants need the samples' sex (the .fam's 5th column, or --sex)")
    x.add_argument("--sex", metavar="FILE", help="sex per sample for chromosome X: FID IID sex (1 or M male, 2 or F "
                   "female; a column named sex, else the first), instead of the .fam's column")
    scan.add_argument("--chunk", metavar="K/N", help="scan only the K-th of N equal, contiguous ranges of the "
                      "selected variants (1-based), e.g. to scatter a workflow; merge with gwas-glmm merge")
    _add_common(scan, "output prefix: PREFIX.<phenotype>.tsv.gz")
    _add_variant_filters(scan, info=True)
    _add_dask(scan)
    _add_dry_run(scan)
    scan.set_defaults(runner="scan")

    plot = sub.add_parser("plot", help="Manhattan and QQ plots (PNG) of a results file")
    plot.add_argument("--results", required=True, metavar="FILE.tsv.gz")
    _add_common(plot, "output prefix: PREFIX.manhattan.png, PREFIX.qq.png")
    plot.set_defaults(runner="plot")

    merge = sub.add_parser("merge", help="join the results files of a scattered scan into one",
                           description="Concatenate results files of one phenotype (e.g. one per chromosome or "
                           "--chunk), in genome order, into one file; logs the genomic-control lambda.")
    merge.add_argument("--results", required=True, nargs="+", metavar="FILE.tsv.gz")
    merge.add_argument("--out", required=True, metavar="FILE.tsv.gz", help="merged results file")
    merge.add_argument("-v", "--verbose", action="store_true")
    merge.add_argument("--threads", type=int, default=None, metavar="N", help=argparse.SUPPRESS)
    merge.set_defaults(runner="merge")

    report = sub.add_parser("report", help="summary report of a results file: lambda, top hits, plots",
                            description="Write PREFIX.manhattan.png, PREFIX.qq.png and PREFIX.report.md "
                            "(variants tested, genomic-control lambda, the top variants).")
    report.add_argument("--results", required=True, metavar="FILE.tsv.gz")
    report.add_argument("--top", type=int, default=20, metavar="K", help="top variants listed (default 20)")
    _add_common(report, "output prefix")
    report.set_defaults(runner="report")


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
    _add_genotypes(freq)
    _add_common(freq, "output prefix")
    _add_variant_filters(freq, info=True)
    freq.set_defaults(runner="freq")

    _add_kinship_commands(sub)

    _add_gwas_commands(sub)

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
