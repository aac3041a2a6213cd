"""One block of the scan: decode it from the .bed bytes, counting and mean-imputing (float32), filter
it, test it for every phenotype of the null file and format its results rows (gzip members); the
arrays of its checkpoint.  Runs on a dask worker thread or process: everything it needs besides
the null models is in its ``BlockTask``."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..genotype.stats import VariantFilter
from ..io.plink import worker_fileset
from .null import NullModel
from .rows import block_rows, gzip_member
from .score import score_test


@dataclass(frozen=True)
class BlockTask:
    """One block of variants to test: everything a worker needs besides the null models."""

    bfile: str
    samples: np.ndarray  # positions of the analysis samples in the .fam
    index: np.ndarray  # positions of the block's variants in the .bim
    mode: str
    filters: VariantFilter
    min_mac: float
    spa: bool
    ratios: dict
    num_threads: int | None = None
    sex: np.ndarray | None = None  # chromosome X: 1 male, 2 female, 0 unknown per analysis sample (genotype.xchr)
    male_factor: float = 1.0  # X: 1.0 codes males 0/2, 0.5 codes them 0/1


FAST_CHUNK = 128  # variants decoded and tested together in the fast mode (5 MB at n = 10,000)
_BUFFERS = threading.local()


def _buffer(size: int, slot: int = 0) -> np.ndarray:
    """This thread's float32 buffer number ``slot``, grown as needed: a block is decoded (slot 0),
    compacted (slot 1) and cut to a phenotype's samples (slot 2) into them rather than into fresh
    arrays (whose first touch of every page cost more than the decoding).  Nothing of a block
    outlives its ``compute_block`` call, so the next block may overwrite them."""
    arrays = _BUFFERS.__dict__.setdefault("arrays", {})
    buf = arrays.get(slot)
    if buf is None or buf.size < size:
        buf = arrays[slot] = np.empty(size, dtype=np.float32)
    return buf


def compute_block(task: BlockTask, nulls: dict[str, NullModel]) -> dict[str, np.ndarray]:
    """Read, filter, impute and test one block for every phenotype; the arrays of its checkpoint,
    with each phenotype's rows formatted and compressed (``NAME.gz``).

    The fast mode takes the block FAST_CHUNK variants at a time, so that a piece stays in cache
    between its passes (decode, products, top directions): a whole block (80 MB at n = 10,000)
    went through memory once per pass.  The exact mode takes it whole: each piece reads Sigma^-1's
    factor (n^2 doubles) once."""
    size = FAST_CHUNK if task.mode == "fast" else max(len(task.index), 1)
    pieces = [_test_piece(task, nulls, task.index[s:s + size]) for s in range(0, len(task.index), size)]
    arrays = {key: np.concatenate([p[key] for p in pieces]) for key in pieces[0]} if pieces else {}
    variants = worker_fileset(task.bfile, task.num_threads).variants
    for name, null in nulls.items():  # the block's rows, as text and compressed, here in parallel
        text = block_rows(variants, arrays, name, null.family == "binomial") if arrays else ""
        arrays[f"{name}.gz"] = np.frombuffer(gzip_member(text), dtype=np.uint8)
    return arrays


def _test_piece(task: BlockTask, nulls: dict[str, NullModel], index: np.ndarray) -> dict[str, np.ndarray]:
    """Decode (counting and mean-imputing: float32, Fortran order), filter and test the variants
    ``index`` for every phenotype; the fast mode works on the float32 block, the exact mode in
    float64."""
    need_missing = task.sex is not None or any(m.index is not None or m.family == "binomial" for m in nulls.values())
    buffer = _buffer(len(task.samples) * len(index))
    g, stats, missing = worker_fileset(task.bfile, task.num_threads).read_imputed(task.samples, index, out=buffer,
                                                                          missing=need_missing)
    info = stats.info  # of the file's dosages (before chromosome X's recoding), None for hard calls
    fill = None
    if task.sex is not None:
        from ..genotype.xchr import recode_x

        g, stats, missing, fill = recode_x(g, missing, task.sex, task.male_factor)
    keep = task.filters.mask(stats) & (stats.mac >= max(task.min_mac, 1e-9))
    if not keep.all():
        kept = np.flatnonzero(keep)
        rows = _buffer(g.shape[0] * len(kept), 1)[:g.shape[0] * len(kept)].reshape(len(kept), g.shape[0])
        g = np.take(g.T, kept, axis=0, out=rows).T  # whole variants, as contiguous rows of g.T
        missing = None if missing is None else missing[:, keep]
    # the value each missing call was given (float32, as the kernel wrote it), to take them out of sums
    mean = fill[keep] if fill is not None else \
        (stats.allele1_count[keep] / np.maximum(stats.n_obs[keep], 1)).astype(np.float32).astype(np.float64)
    arrays = {"index": index[keep], "a1freq": stats.a1freq[keep], "n": stats.n_obs[keep], "mac": stats.mac[keep]}
    if info is not None:
        arrays["info"] = info[keep]
    for name, null in nulls.items():
        own = null.rows(g, None if null.index is None or g.dtype != np.float32 else _rows_buffer(g, null.index))
        own_missing = None if missing is None else null.rows(missing)
        res = score_test(null, own, mode=task.mode, ratio=task.ratios.get(name), spa=task.spa)
        arrays[f"{name}.score"], arrays[f"{name}.var"] = res.score, res.var
        arrays[f"{name}.log10p"], arrays[f"{name}.spa"] = res.log10p, res.spa
        counts = None  # (calls, ALLELE1 sum) over this phenotype's samples
        if null.index is not None:  # a phenotype on a subset: its own counts (the filters used the file's samples)
            counts = n_obs, total = _group_counts(own, own_missing, mean)
            arrays[f"{name}.n"], arrays[f"{name}.a1freq"] = n_obs, total / np.maximum(2 * n_obs, 1)
            arrays[f"{name}.mac"] = mac = np.minimum(total, 2 * n_obs - total)
            low = mac < max(task.min_mac, 1e-9)  # e.g. monomorphic among this phenotype's samples: not tested
            for key in ("score", "var", "log10p"):
                arrays[f"{name}.{key}"] = np.where(low, np.nan, arrays[f"{name}.{key}"])
        if null.family == "binomial":
            groups = _case_control_counts(own, own_missing, mean, null.y > 0.5, counts)
            for label, (n_obs, total) in groups.items():
                arrays[f"{name}.n_{label}"] = n_obs
                arrays[f"{name}.freq_{label}"] = total / np.maximum(2 * n_obs, 1)
    return arrays


def _rows_buffer(g: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Slot 2 as a (variants, samples) C-order array: ``NullModel.rows`` gathers a phenotype's rows
    of the Fortran-order block ``g`` into it (its transpose is then Fortran order, as g)."""
    size = len(index) * g.shape[1]
    return _buffer(size, 2)[:size].reshape(g.shape[1], len(index))


def _case_control_counts(g: np.ndarray, missing: np.ndarray, mean: np.ndarray, cases: np.ndarray,
                         counts: tuple | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`_group_counts` of the cases and of the controls: the smaller group's rows gathered
    (column by column, the block's order), the larger's as the whole minus them.  Each group
    copied by a boolean row mask cost a pass over most of the block and a copy of it: at
    n = 100,000 that was more time than the tests.  ``counts``: the whole's, if known."""
    n_obs, total = counts if counts is not None else _group_counts(g, missing, mean)
    few = cases if 2 * np.count_nonzero(cases) <= len(cases) else ~cases
    rows = np.flatnonzero(few)
    part_n, part_total = _group_counts(np.take(g.T, rows, axis=1).T, missing[rows], mean)
    rest = (n_obs - part_n, total - part_total)
    part = (part_n, part_total)
    return {"cases": part, "controls": rest} if few is cases else {"cases": rest, "controls": part}


def _group_counts(g: np.ndarray, missing: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calls, ALLELE1 sum over the called samples) per variant of a mean-imputed block's rows."""
    n_missing = np.count_nonzero(missing, axis=0)
    return g.shape[0] - n_missing, g.sum(axis=0, dtype=np.float64) - n_missing * mean
