"""Writing result tables: tab-separated, gzip when the name ends in .gz, always atomically."""

from __future__ import annotations

import os

import pandas as pd

from .._atomic import atomic_path


def write_tsv(path: str | os.PathLike, frame: pd.DataFrame, float_format: str = "%.6g") -> None:
    """Write ``frame`` as TSV (NA for missing) under a temporary name, then rename it to ``path``."""
    compression = "gzip" if str(path).endswith(".gz") else None
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format=float_format,
                     compression=compression)
