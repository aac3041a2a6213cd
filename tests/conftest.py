"""Shared fixtures: small simulated cohorts (seeded) and the committed reference fileset."""

from __future__ import annotations

from pathlib import Path

import pytest

from gwas_glmm.simulate import SimulationConfig, simulate_cohort

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory):
    """300 samples x 1200 variants, 3 populations, families, missing calls."""
    prefix = tmp_path_factory.mktemp("cohort") / "small"
    return simulate_cohort(prefix, SimulationConfig(n_samples=300, n_variants=1200, seed=7),
                           show_progress=False)


@pytest.fixture(scope="session")
def one_population_cohort(tmp_path_factory):
    """One population, mostly families: for relatedness checks against a dense GRM."""
    prefix = tmp_path_factory.mktemp("related") / "related"
    cfg = SimulationConfig(n_samples=600, n_variants=6000, n_populations=1, family_fraction=0.8,
                           missing_rate=0.0, seed=11)
    return simulate_cohort(prefix, cfg, show_progress=False)


@pytest.fixture(scope="session")
def reference_fileset() -> Path:
    """tests/data/sim_small.{bed,bim,fam}: made by scripts/make_reference/plink2_freq.sh."""
    return DATA / "sim_small"
