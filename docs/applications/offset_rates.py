"""Infection rates with an exposure offset, next to the mistake of entering exposure as a covariate.

Wards differ in patient-days at risk.  The rate model is log E[y] = log(days) + X beta + b_ward:
``offset(log(days))`` fixes the coefficient of log-exposure at 1, so exp(beta) are rate ratios.
Entering log(days) (or days) as a covariate instead estimates a slope for it and changes what
the other coefficients mean; here exposure is also correlated with the treatment, so the
covariate version gives a biased rate ratio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import output_dir, save_table

import gwas_glmm as gg


def simulate(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    wards = 60
    ward = np.repeat(np.arange(wards), 12)
    protocol = rng.integers(0, 2, ward.size)  # new infection-control protocol
    days = rng.gamma(2.0, 50.0, ward.size) * (1 + 1.5 * protocol)  # protocol wards stay longer
    b = rng.normal(0, 0.4, wards)
    rate = np.exp(np.log(0.01) + np.log(0.7) * protocol + b[ward])  # true rate ratio 0.7
    return pd.DataFrame({"infections": rng.poisson(rate * days), "days": days, "protocol": protocol, "ward": ward})


def main() -> None:
    out = output_dir("applications_out/offset_rates")
    df = simulate()
    right = gg.glmm("infections ~ protocol + offset(log(days)) + (1 | ward)", df, family="poisson")
    wrong = gg.glmm("infections ~ protocol + days + (1 | ward)", df, family="poisson")
    rows = []
    for label, fit in (("offset(log(days))", right), ("days as a covariate", wrong)):
        k = fit.coef_names.index("protocol")
        lo, hi = np.exp(fit.confint()[k])
        rows.append({"model": label, "rate_ratio": np.exp(fit.beta[k]), "ci_low": lo, "ci_high": hi,
                     "AIC": fit.aic, "true_rate_ratio": 0.7})
    save_table(pd.DataFrame(rows), out / "rate_ratios.tsv")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.5))
    for i, r in enumerate(rows):
        ax.errorbar(r["rate_ratio"], i, xerr=[[r["rate_ratio"] - r["ci_low"]], [r["ci_high"] - r["rate_ratio"]]], fmt="o")
    ax.axvline(0.7, color="grey", ls="--", label="truth")
    ax.set_yticks(range(len(rows)), [r["model"] for r in rows])
    ax.set_xlabel("rate ratio of the protocol (95% CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rate_ratios.png", dpi=120)
    print(f"figure: {out / 'rate_ratios.png'}")


if __name__ == "__main__":
    main()
