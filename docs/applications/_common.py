"""Shared helpers of the worked applications: output folder, tables, figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def output_dir(default: str) -> Path:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=default, help="folder for the table and the figure")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_table(df, path: Path) -> None:
    df.to_csv(path, sep="\t", index=False, float_format="%.4g")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"table: {path}")
