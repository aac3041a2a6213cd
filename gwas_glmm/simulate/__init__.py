"""Simulated cohorts with a known truth: pedigree, genotypes, phenotypes (see submodules)."""

from .cohort import SimulatedCohort, SimulationConfig, TraitSummary, simulate_cohort
from .pedigree import EXPECTED_RELATEDNESS

__all__ = ["EXPECTED_RELATEDNESS", "SimulatedCohort", "SimulationConfig", "TraitSummary", "simulate_cohort"]
