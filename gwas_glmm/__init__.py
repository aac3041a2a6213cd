"""gwas_glmm: mixed-model association studies at genomic scale, on one generic GLMM core.

Stages: PLINK genotypes streamed in blocks (:mod:`gwas_glmm.io.plink`,
:mod:`gwas_glmm.genotype`), phenotypes and covariates aligned by sample ID
(:mod:`gwas_glmm.io.pheno`), kinship matrices: the streamed GRM, LOCO parts, one stored
eigendecomposition, imported or custom matrices (:mod:`gwas_glmm.kinship`), and simulated cohorts with a known truth
(:mod:`gwas_glmm.simulate`).
"""

__version__ = "0.1.0.dev0"

from .exceptions import AlignmentError, ConvergenceWarning, GwasGlmmError, InputError
from .genotype import GenotypeBlock, VariantFilter, VariantStats, iter_blocks, variant_stats
from .gwas import NullModel, fit_null, score_test
from .gwas.nullfit import fit_null_models
from .gwas.scanner import Scan, ScanConfig
from .gwas.store import load_nulls, save_nulls
from .io import (
    AlignedSamples,
    CovariateTable,
    PhenotypeTable,
    PlinkFileset,
    align_samples,
    read_bim,
    read_covariates,
    read_fam,
    read_phenotypes,
    select_variants,
)
from .kinship import Eigen, GrmConfig, Kinship, compute_grm, eigendecompose, pedigree_kinship
from .kinship.files import read_kinship, write_kinship
from .kinship.store import add_eigen, load_kinship, save_kinship
from .mixed import GlmmResult, GroupTerm, KnownCovTerm, fit_glmm, olre
from .mixed.formula import glmm  # the formula front end: gwas_glmm.glmm("y ~ x + (1 | g)", data=df)
from .simulate import SimulatedCohort, SimulationConfig, simulate_cohort

__all__ = [
    "AlignedSamples", "AlignmentError", "ConvergenceWarning", "CovariateTable", "Eigen",
    "GenotypeBlock", "GlmmResult", "NullModel", "Scan", "ScanConfig", "fit_null", "fit_null_models",
    "load_nulls", "save_nulls", "score_test", "GrmConfig", "GroupTerm", "GwasGlmmError", "InputError",
    "Kinship", "KnownCovTerm", "PhenotypeTable", "PlinkFileset", "SimulatedCohort",
    "SimulationConfig", "VariantFilter", "VariantStats", "__version__", "add_eigen",
    "align_samples", "compute_grm", "eigendecompose", "fit_glmm", "glmm", "iter_blocks",
    "load_kinship", "olre", "pedigree_kinship", "read_bim", "read_covariates", "read_fam",
    "read_kinship", "read_phenotypes", "save_kinship", "select_variants", "simulate_cohort",
    "variant_stats", "write_kinship",
]
