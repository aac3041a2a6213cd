"""Reading inputs: PLINK filesets, phenotype and covariate files, sample alignment."""

from .pheno import (
    AlignedSamples,
    AlignmentReport,
    CovariateTable,
    PhenotypeTable,
    align_samples,
    read_covariates,
    read_phenotypes,
    read_sample_list,
)
from .plink import PlinkFileset, SampleTable, VariantTable, read_bim, read_fam, read_id_list, select_variants

__all__ = [
    "AlignedSamples", "AlignmentReport", "CovariateTable", "PhenotypeTable", "PlinkFileset",
    "SampleTable", "VariantTable", "align_samples", "read_bim", "read_covariates", "read_fam",
    "read_id_list", "read_phenotypes", "read_sample_list", "select_variants",
]
