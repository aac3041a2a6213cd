"""Manhattan and QQ plots from a results file (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._atomic import atomic_path
from ._validation import check_file
from .exceptions import InputError
from .io.chrom import chrom_name, chrom_sort_key


def _figure_modules():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


RESULT_COLUMNS = ("CHROM", "GENPOS", "ID", "LOG10P")


def require_columns(path, names, needed) -> None:
    """One clear line when a results file lacks a column these steps read."""
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(f"{path}: no {', '.join(missing)} column; give a results file written by gwas-glmm scan")


def read_results(path, *, needed=RESULT_COLUMNS, everything: bool = False) -> pd.DataFrame:
    """A results file's columns for plots (``needed``, and CHISQ and A1FREQ where present), or
    all of them; anything that is not a results file is one line naming it."""
    path = check_file(path, "results file")
    try:
        names = list(pd.read_csv(path, sep="\t", nrows=0).columns)
        require_columns(path, names, needed)
        wanted = None if everything else [c for c in names if c in (*needed, "CHISQ", "A1FREQ")]
        return pd.read_csv(path, sep="\t", usecols=wanted, dtype={"CHROM": str, "ID": str}, na_values="NA",
                           keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a results file written by gwas-glmm scan ({' '.join(str(exc).split())[:200]})") \
            from None


def manhattan(results: pd.DataFrame, path, *, title: str = "", threshold: float = 5e-8) -> Path:
    """Chromosomes in genome order (1..22, X, Y, XY, MT, then others), each labelled by its name."""
    plt = _figure_modules()
    df = results[np.isfinite(results.LOG10P.to_numpy(dtype=float))].copy()
    names = df.CHROM.astype(str)
    order = {c: k for k, c in enumerate(sorted(names.unique(), key=chrom_sort_key))}
    df["chrom_num"] = names.map(order)
    df = df.sort_values(["chrom_num", "GENPOS"])
    offsets, ticks, labels, start = {}, [], [], 0
    for chrom, g in df.groupby("chrom_num", sort=True):
        offsets[chrom] = start - g.GENPOS.min()
        ticks.append(start + (g.GENPOS.max() - g.GENPOS.min()) / 2)
        labels.append(chrom_name(g.CHROM.iloc[0]))
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


def plot_lambda(results: pd.DataFrame) -> float:
    """lambda_GC (median) over the rows with a test: from CHISQ where the file has it, else from
    LOG10P; rows without a test (NA: too rare, monomorphic) do not count."""
    from scipy import stats

    from .gwas.scanner import genomic_control

    if "CHISQ" in results:
        chisq = results.CHISQ.to_numpy(dtype=float)
    else:
        chisq = stats.chi2.isf(10.0 ** -results.LOG10P.to_numpy(dtype=float), 1)
    return genomic_control(chisq)["median"]


def qq(results: pd.DataFrame, path, *, title: str = "") -> Path:
    plt = _figure_modules()
    obs = results.LOG10P.to_numpy(dtype=float)
    obs = np.sort(obs[np.isfinite(obs)])[::-1]
    n = len(obs)
    if n == 0:
        raise InputError("no variant with a test to plot (every LOG10P is NA)")
    expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
    lam = plot_lambda(results)
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
