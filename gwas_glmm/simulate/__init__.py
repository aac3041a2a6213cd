"""Simulated cohorts with a known truth: pedigree, genotypes, phenotypes (see submodules).
Names load on first use (as the package's), so the parser reads :class:`SimulationConfig`'s
defaults without importing the simulator."""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "cohort": ["SimulatedCohort", "TraitSummary", "simulate_cohort"],
        "config": ["SimulationConfig"],
        "pedigree": ["EXPECTED_RELATEDNESS"],
    },
)
