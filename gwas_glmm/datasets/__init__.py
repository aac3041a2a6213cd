"""Small public datasets for examples and checks, as shipped with R's lme4 and glmmTMB
(exported by scripts/make_reference/r_glmm.R):

* ``cbpp``: contagious bovine pleuropneumonia, incidence out of herd size by period (lme4);
* ``sleepstudy``: reaction times over days of sleep deprivation, per subject (lme4);
* ``grouseticks``: tick counts on red grouse chicks by brood, location and year (lme4);
* ``owls``: begging calls of owl nestlings by nest, food treatment and sex of parent (glmmTMB).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

NAMES = ("cbpp", "sleepstudy", "grouseticks", "owls")


def load(name: str) -> pd.DataFrame:
    """One dataset as a DataFrame, e.g. ``load("cbpp")``."""
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; one of {', '.join(NAMES)}")
    return pd.read_csv(Path(__file__).with_name(f"{name}.csv"))
