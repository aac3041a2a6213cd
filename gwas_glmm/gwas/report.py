"""After the scan: join scattered results files into one, and summarise a results file
(variants tested, genomic-control lambda, top variants, plots) for a workflow's report."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._atomic import atomic_path
from .._validation import check_file
from ..exceptions import InputError
from ..io.chrom import chrom_sort_key
from ..plot import require_columns
from .scanner import COMMON_MAF, genomic_control


@dataclass
class MergeSummary:
    path: Path
    n_files: int
    n_variants: int
    lambda_gc: dict


def _read_body(path: Path) -> tuple[str, bytes]:
    check_file(path, "results file")
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError):
        raise InputError(f"{path}: not a complete gzip results file; rerun the scan that writes it") from None
    header, _, body = data.partition(b"\n")
    return header.decode(), body


def merge_results(paths, out) -> MergeSummary:
    """Concatenate results files (same columns) in genome order, each once, into ``out``."""
    paths = [Path(p) for p in paths]
    if len(set(paths)) != len(paths):
        raise InputError("gwas-glmm merge: a results file is given twice")
    parts = []
    for path in paths:
        header, body = _read_body(path)
        if parts and header != parts[0][1]:
            raise InputError(f"{path}: its columns differ from {parts[0][0]}'s; merge results of one phenotype")
        first = body.split(b"\n", 1)[0].decode().split("\t")
        key = (chrom_sort_key(first[0]), int(first[1])) if body else ((2, 0, ""), 0)
        parts.append((path, header, body, key))
    parts.sort(key=lambda p: p[3])
    chisq, freq, n = [], [], 0
    names = parts[0][1].split("\t")
    require_columns(parts[0][0], names, ["CHISQ"])
    cols = [names.index(c) for c in ("CHISQ", "A1FREQ") if c in names]  # A1FREQ: the lambda among MAF >= 1%
    with atomic_path(out) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=4) as gz:
        gz.write((parts[0][1] + "\n").encode())
        for _, _, body, _ in parts:
            if not body:
                continue
            gz.write(body)
            table = pd.read_csv(io.BytesIO(body), sep="\t", header=None, usecols=cols, na_values="NA")
            chisq.append(table[cols[0]].to_numpy(dtype=float))
            freq.append(table[cols[-1]].to_numpy(dtype=float))
            n += len(table)
    values = np.concatenate(chisq) if chisq else np.array([])
    a1freq = (np.concatenate(freq) if freq else np.zeros(0)) if len(cols) == 2 else None
    return MergeSummary(Path(out), len(paths), n, genomic_control(values, a1freq))


def write_report(results_path, prefix, *, top: int = 20) -> list[Path]:
    """PREFIX.manhattan.png, PREFIX.qq.png and PREFIX.report.md for one results file."""
    from ..plot import manhattan, qq, read_results

    table = read_results(results_path, needed=("CHROM", "GENPOS", "CHISQ", "LOG10P"), everything=True)
    name = Path(results_path).name
    plots = [manhattan(table, f"{prefix}.manhattan.png", title=name), qq(table, f"{prefix}.qq.png", title=name)]
    lam = genomic_control(table["CHISQ"].to_numpy(dtype=float),
                          table["A1FREQ"].to_numpy(dtype=float) if "A1FREQ" in table else None)
    best = table.sort_values("LOG10P", ascending=False).head(top)
    cols = [c for c in ("CHROM", "GENPOS", "ID", "ALLELE1", "A1FREQ", "BETA", "SE", "P", "TEST") if c in best]
    lines = [f"# {name}", "",
             f"- variants tested: {len(table):,}",
             f"- variants at P < 5e-8: {int((table.LOG10P > -np.log10(5e-8)).sum()):,}",
             f"- genomic-control lambda: {lam['median']:.4f} (median), {lam['q0.01']:.4f} (0.01 quantile), "
             f"{lam['q0.001']:.4f} (0.001 quantile)" + (
                 f"; {lam['common']:.4f} (median, the {lam['n_common']:,} variants with MAF >= {COMMON_MAF:g}: "
                 "rare variants' discrete tests move the overall median)" if "common" in lam else ""),
             "", f"![Manhattan plot]({plots[0].name})", "", f"![QQ plot]({plots[1].name})", "",
             f"## Top {len(best)} variants", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in best[cols].itertuples(index=False)]
    report = Path(f"{prefix}.report.md")
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return [*plots, report]
