"""The parameters of a simulated cohort, on their own so that the command line's parser can read
their defaults without importing the simulator."""

from __future__ import annotations

from dataclasses import dataclass

from .._validation import check_fraction, check_positive_int
from ..exceptions import InputError


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of :func:`simulate_cohort` (see the module docs of ``gwas_glmm.simulate``)."""

    n_samples: int = 2000
    n_variants: int = 20000
    n_populations: int = 3
    fst: float = 0.02
    family_fraction: float = 0.4
    missing_rate: float = 0.02
    min_maf: float = 0.005
    h2: float = 0.4
    prevalences: tuple[float, ...] = (0.1, 0.01)
    n_polygenic: int = 1000
    n_large: int = 5
    large_fraction: float = 0.05
    count_genetic_variance: float = 0.25
    count_base_rate: float = 1.0
    phenotype_missing: float = 0.01
    seed: int = 1
    n_x_variants: int = 0  # variants on chromosome X after the autosomes (males hemizygous, coded 0/2)

    def __post_init__(self):
        check_positive_int("n_samples", self.n_samples, minimum=10)
        check_positive_int("seed", self.seed, minimum=0)
        check_positive_int("n_variants", self.n_variants, minimum=1)
        check_positive_int("n_x_variants", self.n_x_variants, minimum=0)
        check_positive_int("n_populations", self.n_populations)
        check_positive_int("n_polygenic", self.n_polygenic, minimum=0)
        check_positive_int("n_large", self.n_large, minimum=0)
        check_fraction("fst", self.fst, high=0.5)
        check_fraction("family_fraction", self.family_fraction)
        check_fraction("missing_rate", self.missing_rate, high=0.5)
        check_fraction("min_maf", self.min_maf, low=1e-4, high=0.05)
        check_fraction("h2", self.h2, high=0.99)
        check_fraction("phenotype_missing", self.phenotype_missing, high=0.5)
        for k in self.prevalences:
            check_fraction("prevalence", k, low=1e-4, high=0.5)
        if self.n_large * self.large_fraction >= 1:
            raise InputError("n_large * large_fraction must be below 1 (the large effects' share of genetic variance)")
