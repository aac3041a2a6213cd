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


def check_parquet() -> None:
    """Raise, saying how to install it, unless pyarrow is there: a scan checks this first, not
    after hours of work."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        from ..exceptions import InputError

        raise InputError("--parquet needs pyarrow: pip install 'gwas_glmm[parquet]' (or drop --parquet)")


def results_to_parquet(tsv_path: str | os.PathLike, path: str | os.PathLike) -> None:
    """A results file as Parquet (pyarrow): the same columns, typed (P as float64, which is 0
    where it underflows; LOG10P stays exact)."""
    check_parquet()
    text = {c: str for c in ("CHROM", "ID", "ALLELE0", "ALLELE1", "TEST")}
    frame = pd.read_csv(tsv_path, sep="\t", dtype=text, na_values="NA", keep_default_na=False)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
