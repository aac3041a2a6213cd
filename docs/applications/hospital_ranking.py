"""Hospitals ranked by raw mortality rates versus empirical-Bayes shrunken rates.

Small hospitals have extreme raw rates by chance (0 of 12, or 4 of 15).  A random-intercept
binomial GLMM shrinks each hospital's log-odds towards the overall mean by an amount set by
its size and the between-hospital variance: the conditional modes (empirical Bayes) and their
conditional SDs.  Ranking by them, the top and bottom places stop being the small hospitals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import output_dir, save_table
from scipy import special

import gwas_glmm as gg


def simulate(seed: int = 13) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 80
    size = rng.integers(8, 400, n)
    true_logit = -2.5 + rng.normal(0, 0.35, n)
    deaths = rng.binomial(size, special.expit(true_logit))
    return pd.DataFrame({"hospital": [f"H{i:02d}" for i in range(n)], "deaths": deaths, "patients": size,
                         "true_rate": special.expit(true_logit)})


def main() -> None:
    out = output_dir("applications_out/hospital_ranking")
    df = simulate()
    fit = gg.glmm("cbind(deaths, patients - deaths) ~ 1 + (1 | hospital)", df, family="binomial")
    levels, modes = fit.random_effects["hospital"]
    sd = fit.conditional_se["hospital"][:, 0]
    eb = pd.DataFrame({"hospital": levels.astype(str), "eb_logit": fit.beta[0] + modes[:, 0], "eb_sd_logit": sd})
    df = df.merge(eb, on="hospital")
    df["raw_rate"] = df.deaths / df.patients
    df["eb_rate"] = special.expit(df.eb_logit)
    df["raw_rank"] = df.raw_rate.rank(method="min").astype(int)
    df["eb_rank"] = df.eb_rate.rank(method="min").astype(int)
    err_raw = np.abs(df.raw_rate - df.true_rate).mean()
    err_eb = np.abs(df.eb_rate - df.true_rate).mean()
    print(f"mean |estimate - true rate|: raw {err_raw:.4f}, empirical Bayes {err_eb:.4f}")
    save_table(df.sort_values("eb_rank")[["hospital", "patients", "deaths", "raw_rate", "eb_rate", "eb_sd_logit", "raw_rank",
                                          "eb_rank"]], out / "ranking.tsv")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(df.raw_rate, df.eb_rate, s=8 + df.patients / 10, alpha=0.6)
    lim = [0, max(df.raw_rate.max(), df.eb_rate.max()) * 1.05]
    ax.plot(lim, lim, color="grey", lw=0.8)
    ax.axhline(special.expit(fit.beta[0]), color="tab:red", lw=0.8, ls="--", label="overall")
    ax.set_xlabel("raw rate")
    ax.set_ylabel("empirical-Bayes rate (point size: patients)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "shrinkage.png", dpi=120)
    print(f"figure: {out / 'shrinkage.png'}")


if __name__ == "__main__":
    main()
