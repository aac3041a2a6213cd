"""Cell fate with a lineage covariance and a spatial covariance in one model, and the variance
each explains.

A marker of cell fate is measured in cells of a growing tissue.  Cells share ancestry (a
lineage tree: the covariance of two cells is the length of their shared branch) and
neighbourhood (an exponential covariance of their distance).  Both enter as known
covariances, ``(1 | lineage) + (1 | space)``, fitted together by REML; the variance shares say
how much of the marker's variation follows ancestry and how much follows position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import output_dir, save_table

import gwas_glmm as gg


def lineage_covariance(generations: int) -> np.ndarray:
    """Binary tree: covariance = generations shared / total generations."""
    n = 2**generations
    cells = np.arange(n)
    shared = np.zeros((n, n))
    for g in range(1, generations + 1):
        shared += (cells[:, None] >> (generations - g)) == (cells[None, :] >> (generations - g))
    return shared / generations


def simulate(seed: int = 55):
    rng = np.random.default_rng(seed)
    k_lin = lineage_covariance(7)  # 128 cells
    n = k_lin.shape[0]
    xy = np.cumsum(rng.normal(0, 0.1, (n, 2)), axis=0) + rng.normal(0, 0.3, (n, 2))  # sisters stay near
    dist = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    k_sp = np.exp(-dist / 0.3)
    marker = (np.linalg.cholesky(k_lin + 1e-9 * np.eye(n)) @ rng.normal(0, 1.0, n)
              + np.linalg.cholesky(k_sp + 1e-9 * np.eye(n)) @ rng.normal(0, 0.7, n) + rng.normal(0, 0.5, n))
    ids = [f"c{i}" for i in range(n)]
    df = pd.DataFrame({"cell": ids, "marker": marker, "x": xy[:, 0], "y": xy[:, 1]})
    return df, pd.DataFrame(k_lin, index=ids, columns=ids), pd.DataFrame(k_sp, index=ids, columns=ids)


def main() -> None:
    out = output_dir("applications_out/cell_fate")
    df, k_lin, k_sp = simulate()
    df["lineage"] = df["space"] = df.cell
    fit = gg.glmm("marker ~ 1 + (1 | lineage) + (1 | space)", df, covariance={"lineage": k_lin, "space": k_sp})
    shares = fit.variance_shares()
    truth = {"lineage": 1.0, "space": 0.49, "Residual": 0.25}
    rows = [{"component": k, "variance": (fit.sigma**2 if k == "Residual" else
                                          next(c.covariance[0, 0] for c in fit.components if c.group == k)),
             "share": v, "true_variance": truth[k]} for k, v in shares.items()]
    save_table(pd.DataFrame(rows), out / "variance_shares.tsv")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    sc = axes[0].scatter(df.x, df.y, c=df.marker, cmap="viridis", s=15)
    fig.colorbar(sc, ax=axes[0], label="marker")
    axes[0].set_title("cells in space")
    axes[1].bar(list(shares), list(shares.values()))
    axes[1].set_ylabel("share of variance")
    fig.tight_layout()
    fig.savefig(out / "variance_shares.png", dpi=120)
    print(f"figure: {out / 'variance_shares.png'}")


if __name__ == "__main__":
    main()
