"""One-stage meta-analysis of arm-level binary counts, zero-event arms included.

Each trial reports events / patients in a control and a treatment arm; several arms have no
events.  The two-stage approach computes a log odds ratio per trial, which needs a 0.5
continuity correction for zero cells (and drops double-zero trials), then pools them.  The
one-stage binomial GLMM models the counts directly: a fixed treatment effect, a random trial
intercept and a random treatment effect per trial (independent, ``||``), and uses every arm
as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import output_dir, save_table
from scipy import special

import gwas_glmm as gg


def simulate(seed: int = 34) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    trials = 25
    base = rng.normal(-3.2, 0.8, trials)  # rare events
    effect = rng.normal(np.log(0.6), 0.2, trials)
    rows = []
    for t in range(trials):
        for arm in (0, 1):
            n = int(rng.integers(30, 300))
            rows.append({"trial": t, "treat": arm, "n": n,
                         "events": int(rng.binomial(n, special.expit(base[t] + arm * effect[t])))})
    return pd.DataFrame(rows)


def two_stage(df: pd.DataFrame) -> tuple[float, float]:
    """Inverse-variance fixed-effect pooling of per-trial log ORs with a 0.5 correction."""
    logs, weights = [], []
    for _, g in df.groupby("trial"):
        c, t = g[g.treat == 0].iloc[0], g[g.treat == 1].iloc[0]
        if c.events == 0 and t.events == 0:
            continue  # double-zero trials carry no information here
        a, b, cc, d = t.events, t.n - t.events, c.events, c.n - c.events
        if min(a, b, cc, d) == 0:
            a, b, cc, d = a + 0.5, b + 0.5, cc + 0.5, d + 0.5
        logs.append(np.log(a * d / (b * cc)))
        weights.append(1 / (1 / a + 1 / b + 1 / cc + 1 / d))
    logs, weights = np.array(logs), np.array(weights)
    est = np.sum(weights * logs) / weights.sum()
    return est, 1 / np.sqrt(weights.sum())


def main() -> None:
    out = output_dir("applications_out/meta_analysis")
    df = simulate()
    n_zero = int((df.events == 0).sum())
    print(f"{n_zero} of {len(df)} arms have no events")
    fit = gg.glmm("cbind(events, n - events) ~ treat + (1 + treat || trial)", df, family="binomial")
    k = fit.coef_names.index("treat")
    # (1 + treat || trial) is lme4's (1 | trial) + (0 + treat | trial): the second term, trial.1
    heterogeneity = next(c.sd[0] for c in fit.components if c.names == ["treat"])
    est2, se2 = two_stage(df)
    rows = [{"method": "one-stage binomial GLMM", "odds_ratio": np.exp(fit.beta[k]),
             "ci_low": np.exp(fit.confint()[k][0]), "ci_high": np.exp(fit.confint()[k][1]),
             "heterogeneity_sd": heterogeneity},
            {"method": "two-stage, 0.5 correction", "odds_ratio": np.exp(est2), "ci_low": np.exp(est2 - 1.96 * se2),
             "ci_high": np.exp(est2 + 1.96 * se2), "heterogeneity_sd": np.nan},
            {"method": "truth (mean)", "odds_ratio": 0.6, "ci_low": np.nan, "ci_high": np.nan, "heterogeneity_sd": 0.2}]
    save_table(pd.DataFrame(rows), out / "pooled.tsv")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.5))
    for i, r in enumerate(rows[:2]):
        ax.errorbar(r["odds_ratio"], i, xerr=[[r["odds_ratio"] - r["ci_low"]], [r["ci_high"] - r["odds_ratio"]]],
                    fmt="o")
    ax.axvline(0.6, color="grey", ls="--")
    ax.set_yticks([0, 1], [r["method"] for r in rows[:2]])
    ax.set_xscale("log")
    ax.set_xlabel("pooled odds ratio (95% CI)")
    fig.tight_layout()
    fig.savefig(out / "pooled.png", dpi=120)
    print(f"figure: {out / 'pooled.png'}")


if __name__ == "__main__":
    main()
