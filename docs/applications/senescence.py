"""Senescence with age split into a between-individual and a within-individual part.

Repeated yearly measurements of breeding success: in the population, older animals seem to do
better, but only because poor breeders die young (selective disappearance).  Splitting age into
the individual's mean age (between) and the deviation from it (within) separates the two: the
within-individual slope is the ageing of an individual (here a decline), the between slope the
composition effect.  A model with age alone mixes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import output_dir, save_table

import gwas_glmm as gg


def simulate(seed: int = 21) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for ind in range(150):
        quality = rng.normal(0, 1.0)
        lifespan = int(np.clip(np.round(3 + 2.0 * quality + rng.normal(0, 1)), 1, 10))  # good animals live longer
        for age in range(1, lifespan + 1):
            rows.append({"id": ind, "age": age, "success": 5 + quality - 0.25 * age + rng.normal(0, 0.8)})
    df = pd.DataFrame(rows)
    df["age_mean"] = df.groupby("id").age.transform("mean")
    df["age_within"] = df.age - df.age_mean
    return df


def main() -> None:
    out = output_dir("applications_out/senescence")
    df = simulate()
    naive = gg.glmm("success ~ age + (1 | id)", df)
    split = gg.glmm("success ~ age_within + age_mean + (1 | id)", df)
    rows = [{"model": "age only", "term": "age", "estimate": naive.coef("age"),
             "se": naive.se[naive.coef_names.index("age")]}]
    for term in ("age_within", "age_mean"):
        rows.append({"model": "within/between", "term": term, "estimate": split.coef(term),
                     "se": split.se[split.coef_names.index(term)]})
    rows.append({"model": "truth", "term": "within-individual ageing", "estimate": -0.25, "se": np.nan})
    save_table(pd.DataFrame(rows), out / "age_effects.tsv")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for _, g in df.groupby("id"):
        ax.plot(g.age, g.success, color="grey", lw=0.4, alpha=0.5)
    grid = np.arange(1, 11)
    ax.plot(grid, naive.beta[0] + naive.coef("age") * grid, label="age only (population)", lw=2)
    ax.plot(grid, split.beta[0] + split.coef("age_mean") * 4 + split.coef("age_within") * (grid - 4),
            label="within-individual (mean age 4)", lw=2)
    ax.set_xlabel("age")
    ax.set_ylabel("breeding success")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "age_effects.png", dpi=120)
    print(f"figure: {out / 'age_effects.png'}")


if __name__ == "__main__":
    main()
