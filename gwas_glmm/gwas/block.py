"""One block of the scan: read it (bed-reader), count and mean-impute it in place (float32), filter
it, and test it for every phenotype of the null file; the arrays of its checkpoint.  Runs on a dask
worker thread or process: everything it needs besides the null models is in its ``BlockTask``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..genotype.stats import VariantFilter, VariantStats
from ..io.plink import PlinkFileset
from .null import NullModel
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


_READ_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _fileset(bfile: str, num_threads: int | None) -> PlinkFileset:
    """The fileset opened once per process (a worker reads the .bed itself: nothing large is sent)."""
    return PlinkFileset(bfile, num_threads=num_threads)


def compute_block(task: BlockTask, nulls: dict[str, NullModel]) -> dict[str, np.ndarray]:
    """Read, filter, impute and test one block for every phenotype; the arrays of its checkpoint.

    The block stays float32 (Fortran order) throughout: one numba pass counts the calls and
    mean-imputes in place; the fast mode works on it directly, the exact mode in float64."""
    from ..genotype._stats_numba import impute_in_place

    with _READ_LOCK:  # one reader at a time per process; bed-reader decodes with its own threads
        g = _fileset(task.bfile, task.num_threads).read(task.samples, task.index)
    need_missing = any(m.index is not None or m.family == "binomial" for m in nulls.values())
    missing = np.isnan(g) if need_missing else None
    stats = VariantStats(*impute_in_place(g), g.shape[0])
    keep = task.filters.mask(stats) & (stats.mac >= max(task.min_mac, 1e-9))
    if not keep.all():
        g = g[:, keep]
        missing = None if missing is None else missing[:, keep]
    # the value each missing call was given (float32, as the kernel wrote it), to take them out of sums
    mean = (stats.allele1_count[keep] / np.maximum(stats.n_obs[keep], 1)).astype(np.float32).astype(np.float64)
    arrays = {"index": task.index[keep], "a1freq": stats.a1freq[keep], "n": stats.n_obs[keep], "mac": stats.mac[keep]}
    for name, null in nulls.items():
        own = g if null.index is None else np.asfortranarray(g[null.index])
        own_missing = None if missing is None else null.rows(missing)
        res = score_test(null, own, mode=task.mode, ratio=task.ratios.get(name), spa=task.spa)
        arrays[f"{name}.score"], arrays[f"{name}.var"] = res.score, res.var
        arrays[f"{name}.log10p"], arrays[f"{name}.spa"] = res.log10p, res.spa
        if null.index is not None:  # a phenotype on a subset: its own counts (the filters used the file's samples)
            n_obs, total = _group_counts(own, own_missing, mean)
            arrays[f"{name}.n"], arrays[f"{name}.a1freq"] = n_obs, total / np.maximum(2 * n_obs, 1)
            arrays[f"{name}.mac"] = mac = np.minimum(total, 2 * n_obs - total)
            low = mac < max(task.min_mac, 1e-9)  # e.g. monomorphic among this phenotype's samples: not tested
            for key in ("score", "var", "log10p"):
                arrays[f"{name}.{key}"] = np.where(low, np.nan, arrays[f"{name}.{key}"])
        if null.family == "binomial":
            cases = null.y > 0.5
            for label, mask in (("cases", cases), ("controls", ~cases)):
                n_obs, total = _group_counts(own[mask], own_missing[mask], mean)
                arrays[f"{name}.n_{label}"] = n_obs
                arrays[f"{name}.freq_{label}"] = total / np.maximum(2 * n_obs, 1)
    return arrays


def _group_counts(g: np.ndarray, missing: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calls, ALLELE1 sum over the called samples) per variant of a mean-imputed block's rows."""
    n_missing = np.count_nonzero(missing, axis=0)
    return g.shape[0] - n_missing, g.sum(axis=0, dtype=np.float64) - n_missing * mean
