"""Manhattan and QQ plots from a results file (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._atomic import atomic_path


def _figure_modules():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_results(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", usecols=["CHROM", "GENPOS", "ID", "LOG10P"], dtype={"CHROM": str})


def manhattan(results: pd.DataFrame, path, *, title: str = "", threshold: float = 5e-8) -> Path:
    plt = _figure_modules()
    df = results.copy()
    df["chrom_num"] = pd.to_numeric(df.CHROM.str.replace("chr", "", case=False), errors="coerce")
    df = df.sort_values(["chrom_num", "GENPOS"])
    offsets, ticks, labels, start = {}, [], [], 0
    for chrom, g in df.groupby("chrom_num", sort=True):
        offsets[chrom] = start - g.GENPOS.min()
        ticks.append(start + (g.GENPOS.max() - g.GENPOS.min()) / 2)
        labels.append(str(int(chrom)))
        start += g.GENPOS.max() - g.GENPOS.min() + 1
    x = df.GENPOS + df.chrom_num.map(offsets)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.scatter(x, df.LOG10P, c=np.where(df.chrom_num % 2 == 0, "tab:blue", "tab:gray"), s=3, rasterized=True)
    ax.axhline(-np.log10(threshold), color="tab:red", lw=0.8, ls="--")
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10 P")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def qq(results: pd.DataFrame, path, *, title: str = "") -> Path:
    from scipy import stats

    plt = _figure_modules()
    obs = np.sort(results.LOG10P.to_numpy())[::-1]
    n = len(obs)
    expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
    lam = np.median(stats.chi2.isf(10.0 ** -obs, 1)) / stats.chi2.ppf(0.5, 1)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(expected, obs, s=3, rasterized=True)
    top = max(expected.max(), obs.max()) * 1.02
    ax.plot([0, top], [0, top], color="tab:red", lw=0.8)
    ax.set_xlabel("expected -log10 P")
    ax.set_ylabel("observed -log10 P")
    ax.set_title(f"{title} lambda_GC = {lam:.3f}".strip(), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
