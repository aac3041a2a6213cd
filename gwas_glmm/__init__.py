"""gwas_glmm: mixed-model association studies at genomic scale, on one generic GLMM core.

Stages: PLINK genotypes streamed in blocks (:mod:`gwas_glmm.io.plink`,
:mod:`gwas_glmm.genotype`), phenotypes and covariates aligned by sample ID
(:mod:`gwas_glmm.io.pheno`), kinship matrices: the streamed GRM, LOCO parts, one stored
eigendecomposition, imported or custom matrices (:mod:`gwas_glmm.kinship`), and simulated cohorts with a known truth
(:mod:`gwas_glmm.simulate`).
"""

__version__ = "0.1.0.dev0"

# The names below load on first use (lazy_loader, PEP 562): ``gwas-glmm --help`` and the small
# subcommands of a workflow do not import scipy.stats, pandas and dask (1.4 s) before they need
# them.  EAGER_IMPORT=1 in the environment imports everything at once (the tests check every name).
import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["cli", "genotype", "gwas", "io", "kinship", "mixed", "simulate"],
    submod_attrs={
        "exceptions": ["AlignmentError", "ConvergenceWarning", "GwasGlmmError", "InputError"],
        "genotype": ["GenotypeBlock", "VariantFilter", "VariantStats", "iter_blocks", "variant_stats"],
        "gwas": ["NullModel", "fit_null", "score_test"],
        "gwas.nullfit": ["fit_null_models"],
        "gwas.scanner": ["Scan", "ScanConfig"],
        "gwas.store": ["load_nulls", "save_nulls"],
        "io": ["AlignedSamples", "CovariateTable", "PhenotypeTable", "PlinkFileset", "align_samples", "read_bim",
               "read_covariates", "read_fam", "read_phenotypes", "select_variants"],
        "kinship": ["Eigen", "GrmConfig", "Kinship", "compute_grm", "eigendecompose", "pedigree_kinship"],
        "kinship.files": ["read_kinship", "write_kinship"],
        "kinship.store": ["add_eigen", "load_kinship", "save_kinship"],
        "mixed": ["GlmmResult", "GroupTerm", "KnownCovTerm", "fit_glmm", "olre"],
        "mixed.formula": ["glmm"],  # the formula front end: gwas_glmm.glmm("y ~ x + (1 | g)", data=df)
        "mixed.marginal": ["predict", "standardize"],  # also as fit.predict(...) and fit.standardize(...)
        "simulate": ["SimulatedCohort", "SimulationConfig", "simulate_cohort"],
    },
)
__all__ = [*__all__, "__version__"]
