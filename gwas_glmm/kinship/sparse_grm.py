"""A sparse GRM of close relatives, built panel by panel without an n x n matrix (fastGWA's and
SAIGE's sparse GRM; issue #17, first part).

The entries are the dense GRM's (:mod:`gwas_glmm.kinship.grm`: GCTA's standardized GRM over the
variants passing the filters, frequencies over all the selected samples, ``gcta`` or
``mean-impute`` missing modes).  Only the diagonal and the off-diagonal entries at or above the
cutoff are kept.

One pass over the genotypes first gives the variants that pass the filters and their
frequencies (so too few markers is an error before any product).  Then samples are split into
panels of b samples; panel I is the lower-triangle rows A[I, :I_end], tile by tile: its
samples' standardized genotypes Z_I (b x M, all M markers at once, decoded by numba straight
from the .bed bytes of those samples) against each earlier tile Z_J (decoded in turn), one
GEMM Z_I Z_J^T per tile (SYRK for the diagonal tile), thresholded and dropped before the next.
A tile's product has the whole marker count as its inner dimension, so the BLAS runs near its
peak; the old layout (every panel's rows against all samples, one 256 MB variant block at a
time) spent more time adding b x n partial sums than multiplying.  In ``gcta`` mode an entry
is divided by the variants called in both samples, M - miss_i - miss_j + shared_ij; the
candidates are the pairs whose upper bound S / (M - miss_i - miss_j) reaches the cutoff, and
only for them are the shared missing calls counted (popcount of the tiles' bit-packed masks).

Cost: n^2 M flops in all (the lower triangle, each product 2 b^2 M), one decode of M b
genotypes per tile ((n / b)^2 / 2 tiles), n M / 4 bytes of the .bed read once per panel row
(its bytes of each tile only), memory two tiles (2 b M x 4 bytes, b chosen to fit 1 GiB), one
b x b product and the kept entries (12 bytes each).  Panels are independent tasks (threads,
dask) and are checkpointed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from .._atomic import atomic_open, atomic_path
from .._progress import get_logger, progress
from .._validation import check_index, check_positive_int
from ..exceptions import InputError
from ..genotype.blocks import bounded_block_size, variant_stats
from ..io.plink import PlinkFileset, worker_fileset
from .grm import DEFINITION, GrmConfig

log = get_logger("grm")
MAX_PANEL = 4096


@dataclass(frozen=True)
class SparseSummary:
    """What the log says about a sparse GRM."""

    n: int
    pairs: int  # off-diagonal pairs kept (each once)
    cutoff: float
    groups: tuple[int, ...]  # sizes of the largest groups of related samples, largest first
    singletons: int  # samples with no relative at or above the cutoff
    n_variants: int

    def lines(self) -> list[str]:
        largest = ", ".join(map(str, self.groups[:5])) or "none"
        out = [f"sparse GRM (entries >= {self.cutoff:g}) of {self.n} samples from {self.n_variants} variants: "
               f"{self.pairs} related pairs kept",
               f"  largest groups of related samples: {largest}; {self.singletons} samples with no relative"]
        noise = noise_pairs(self.n, self.n_variants, self.cutoff)
        if noise >= 1:
            out.append(f"  WARNING: about {noise:.3g} unrelated pairs pass {self.cutoff:g} by sampling noise alone with "
                       f"{self.n_variants} markers (an entry's sd is 1/sqrt(M) = {1 / np.sqrt(self.n_variants):.4f}); "
                       "they join unrelated samples into large groups, whose factors fill in (random links "
                       f"leave little sparsity to keep): use at least {markers_needed(self.n, self.cutoff)} markers, "
                       "or a higher cutoff")
        return out


def noise_pairs(n: int, n_variants: int, cutoff: float) -> float:
    """Expected unrelated pairs at or above ``cutoff`` by sampling noise alone: an unrelated pair's
    entry is about N(0, 1/M), and there are n (n - 1) / 2 pairs."""
    from scipy import stats

    return n * (n - 1) / 2 * float(stats.norm.sf(cutoff * np.sqrt(max(n_variants, 1))))


def markers_needed(n: int, cutoff: float) -> int:
    """The markers that make :func:`noise_pairs` below 1 (N = 100,000 at 0.05: about 15,600)."""
    from scipy import stats

    pairs = max(n * (n - 1) / 2, 1.0)
    return int(np.ceil((stats.norm.isf(1.0 / pairs) / cutoff) ** 2))


def check_cutoff(cutoff: float, flag: str = "--sparse-cutoff") -> float:
    if not (0.0 < float(cutoff) < 1.0):
        raise InputError(f"{flag} must lie strictly between 0 and 1 (fastGWA uses 0.05), got {cutoff:g}")
    return float(cutoff)


def check_markers(n_variants: int, cutoff: float, source) -> None:
    """An unrelated pair's entry has sd about 1/sqrt(M): with fewer than (1.5 / cutoff)^2 markers
    (900 at 0.05) noise alone passes the cutoff for a large share of the n^2 / 2 pairs, and the
    "sparse" GRM would be nearly dense.  One line, before anything is written."""
    needed = int(np.ceil((1.5 / cutoff) ** 2))
    if n_variants < needed:
        raise InputError(f"{source}: {n_variants} variants pass the GRM filters; a sparse GRM at cutoff {cutoff:g} "
                         f"needs at least {needed} (an unrelated pair's entry has sd 1/sqrt(M) = "
                         f"{1 / np.sqrt(n_variants):.3f}); use more markers or a higher --sparse-cutoff")


def panel_rows(n: int, n_variants: int, itemsize: int = 4, memory_bytes: int = 1 << 30) -> int:
    """Samples per panel (and per tile): two tiles of b x ``n_variants`` genotypes (``itemsize``
    bytes each) within ``memory_bytes`` (default 1 GiB), at most 4,096 (a larger GEMM is no
    faster) and at least 64."""
    return int(min(n, MAX_PANEL, max(64, memory_bytes // max(2 * itemsize * n_variants, 1))))


def summarize(matrix: scipy.sparse.csr_matrix, cutoff: float, n_variants: int) -> SparseSummary:
    from .components import Components

    sizes = Components.of(matrix).sizes
    off = scipy.sparse.triu(matrix, k=1)
    groups = tuple(int(s) for s in np.sort(sizes[sizes > 1])[::-1])
    return SparseSummary(matrix.shape[0], int(off.nnz), cutoff, groups, int(np.sum(sizes == 1)), n_variants)


def sparse_grm(fileset: PlinkFileset, *, cutoff: float, samples=None, variants=None,
               config: GrmConfig | None = None, panel: int | None = None, client=None,
               checkpoint: str | os.PathLike | None = None,
               show_progress: bool = False) -> tuple[scipy.sparse.csr_matrix, SparseSummary, dict]:
    """(the symmetric CSR matrix, its summary, metadata) of ``samples`` (.fam positions, default
    all) from ``variants`` (.bim positions) passing ``config``'s filters; ``panel``: samples per
    row panel (default :func:`panel_rows`).

    Panels are independent tasks: run here one after another (each product uses every BLAS
    thread), or on the workers of ``client`` (a dask.distributed Client).  With ``checkpoint`` (a
    folder), each finished panel is saved there and a rerun with the same inputs computes only
    the missing ones; the caller removes the folder once the result is written."""
    cutoff = check_cutoff(cutoff)
    config = config or GrmConfig()
    sample_index = None if samples is None else check_index("samples", samples, fileset.n_samples)  # None: all
    variant_index = check_index("variants", variants, fileset.n_variants)
    n = fileset.n_samples if sample_index is None else len(sample_index)
    if n < 2:
        raise InputError(f"{fileset.genotype_path}: a GRM needs at least 2 samples, got {n}")
    positions, stats = variant_stats(fileset, samples=sample_index, variants=variant_index,  # frequencies over all
                                     block_size=bounded_block_size(n, config.block_size), filters=config.filters())
    if len(positions) == 0:
        raise InputError(f"{fileset.genotype_path}: no variant passes the GRM filters (MAF >= {config.min_maf}, "
                         f"missing rate <= {config.max_missing}); relax --maf/--geno or check the input")
    check_markers(len(positions), cutoff, fileset.genotype_path)
    freq = np.asarray(stats.a1freq, dtype=np.float64)
    b = check_positive_int("panel", panel) if panel is not None else panel_rows(n, len(positions),
                                                                                  np.dtype(config.dtype).itemsize)
    panels = [(start, min(n, start + b)) for start in range(0, n, b)]
    store = _Checkpoint(checkpoint, fileset, sample_index, variant_index, config, cutoff, b) if checkpoint else None
    results: dict[int, dict] = store.load(len(panels)) if store else {}
    if results:
        log.info("resuming: %d of %d panels already done (%s)", len(results), len(panels), store.folder)
    todo = [k for k in range(len(panels)) if k not in results]
    # counted in tiles (panel k holds k + 1 of them), so that the rate and the ETA hold as panels grow
    bar = progress(total=len(panels) * (len(panels) + 1) // 2, initial=sum(k + 1 for k in results),
                   desc="sparse GRM", unit="tile", enabled=show_progress)

    def done(k: int, part: dict) -> None:
        results[k] = part
        if store:
            store.save(k, part)
        bar.update(k + 1)

    with bar, _drop_if_empty(store):
        if client is None:
            for k in todo:
                done(k, panel_entries(fileset, sample_index, positions, freq, config, *panels[k], b, cutoff))
        else:
            from distributed import as_completed

            from ..gwas.cluster import on_worker

            source = str(fileset.source)
            futures = {client.submit(on_worker, panel_entries, source, sample_index, positions, freq, config,
                                     *panels[k], b, cutoff, pure=False): k for k in todo}
            for future in as_completed(futures):
                done(futures[future], future.result())
    parts = [results[k] for k in range(len(panels))]
    n_variants = len(positions)
    r, c, v = (np.concatenate([p[name] for p in parts]) for name in ("rows", "cols", "vals"))
    off = r != c
    matrix = scipy.sparse.csr_matrix((np.concatenate([v, v[off]]), (np.concatenate([r, c[off]]),
                                      np.concatenate([c, r[off]]))), shape=(n, n))
    matrix.sort_indices()
    summary = summarize(matrix, cutoff, n_variants)
    meta = {"definition": DEFINITION, "missing": config.missing, "n_variants": n_variants,
            "min_maf": config.min_maf, "max_missing": config.max_missing, "min_mac": config.min_mac,
            "sparse_cutoff": cutoff, "panels": len(panels), "source": str(fileset.source)}
    for line in summary.lines():
        log.info(line)
    return matrix, summary, meta


def panel_entries(source, sample_index: np.ndarray | None, positions: np.ndarray, freq: np.ndarray,
                  config: GrmConfig, start: int, stop: int, tile: int, cutoff: float) -> dict[str, np.ndarray]:
    """One panel (rows start..stop of the lower triangle), a pure function run in this process or
    on a dask worker (``source``: the fileset, or its prefix): its diagonal and entries >= cutoff
    as arrays rows, cols, vals (sample positions).  ``positions``: the .bim positions of the
    variants that passed the filters, ``freq`` their ALLELE1 frequencies over all samples;
    ``tile``: samples per tile of the columns before the panel."""
    fileset = worker_fileset(source)
    everyone = np.arange(fileset.n_samples, dtype=np.int64) if sample_index is None else sample_index
    gcta = config.missing == "gcta"
    m = len(positions)

    # one buffer for every earlier tile and one for their products: a fresh array of hundreds of
    # MB costs its page faults each time
    buffer = np.empty(min(tile, start) * m, dtype=config.dtype) if start else None
    products = np.empty((stop - start, min(tile, start)), dtype=config.dtype) if start else None

    def read(lo: int, hi: int, into=None):
        return fileset.read_standardized(everyone[lo:hi], positions, freq, dtype=config.dtype, missing=gcta,
                                         buffer=into)

    z_i, miss_i, words_i = read(start, stop)
    rows, cols, vals = _tile_entries(_lower_product(z_i), miss_i, miss_i, words_i, words_i, m, cutoff, gcta, start,
                                     diagonal=True)
    parts = [(rows, cols + start, vals)]
    for lo in range(0, start, tile):
        hi = min(start, lo + tile)
        z_j, miss_j, words_j = read(lo, hi, buffer)
        product = np.matmul(z_i, z_j.T, out=products[:, :hi - lo])
        rows, cols, vals = _tile_entries(product, miss_i, miss_j, words_i, words_j, m, cutoff, gcta, start)
        parts.append((rows, cols + lo, vals))
    rows, cols, vals = (np.concatenate(x) for x in zip(*parts))
    return {"rows": (rows + start).astype(np.int64), "cols": cols.astype(np.int64),
            "vals": vals.astype(config.dtype), "n_variants": np.int64(m)}


def _lower_product(z: np.ndarray) -> np.ndarray:
    """The lower triangle of Z Z^T by SYRK (half a GEMM's flops; the upper triangle is left 0)."""
    from scipy.linalg import blas

    syrk = blas.dsyrk if z.dtype == np.float64 else blas.ssyrk
    return syrk(1.0, z.T, trans=1, lower=1)  # z.T is Fortran order: no copy


def _tile_entries(product: np.ndarray, miss_i: np.ndarray, miss_j: np.ndarray, words_i, words_j, m: int,
                  cutoff: float, gcta: bool, row0: int, diagonal: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of one tile's entries at or above ``cutoff`` (tile positions), from
    its product Z_I Z_J^T; a diagonal tile (I = J, lower triangle filled) also gives its whole
    diagonal.  In ``gcta`` mode each entry is divided by the calls both samples have.  ``row0``:
    the sample position of the tile's first row, for messages."""
    from ._grm_numba import shared_missing

    rows, cols = [], []
    for lo in range(0, product.shape[0], 256):  # candidates row chunk by row chunk: no second b x b matrix
        hi = min(product.shape[0], lo + 256)
        low = m - miss_i[lo:hi, None] - miss_j[None, :] if gcta else float(m)
        r, c = np.nonzero(product[lo:hi] >= cutoff * low)
        if diagonal:
            r, c = r[c < lo + r], c[c < lo + r]
        rows.append(r + lo)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = np.full(r.size, float(m))
    if gcta:
        shared = np.zeros(r.size, np.int64)
        shared_missing(words_i, words_j, r.astype(np.int64), c.astype(np.int64), shared)
        counts += shared - miss_i[r] - miss_j[c]
    if diagonal:
        local = np.arange(product.shape[0])
        counts = np.concatenate([counts, m - miss_i if gcta else np.full(local.size, float(m))])
        r, c = np.concatenate([r, local]), np.concatenate([c, local])
    if (counts <= 0).any():
        j = int(r[np.argmax(counts <= 0)])
        raise InputError(f"sample {row0 + j + 1} shares no called variant with another; "
                         "drop samples with very high missingness (plink2 --mind)")
    values = product[r, c] / counts
    keep = (values >= cutoff) | (r == c) if diagonal else values >= cutoff
    return r[keep], c[keep], values[keep]


@contextlib.contextmanager
def _drop_if_empty(store):
    """A run stopped by bad input before any panel finished leaves no checkpoint folder behind."""
    try:
        yield
    except InputError:
        if store is not None and not any(store.folder.glob("panel_*.npz")):
            shutil.rmtree(store.folder, ignore_errors=True)
        raise


class _Checkpoint:
    """Finished panels as PANEL.npz files in a folder, with a key of everything they depend on
    (the .bed's size and time, samples, variants, options): a rerun with other inputs refuses the
    folder instead of mixing panels."""  # samples None: all of them

    def __init__(self, folder, fileset, sample_index, variant_index, config, cutoff, panel):
        self.folder = Path(folder)
        stat = fileset.genotype_path.stat()
        digest = hashlib.sha256()
        for part in (json.dumps([str(fileset.genotype_path.resolve()), stat.st_size, stat.st_mtime_ns, repr(config),
                                 cutoff, panel]).encode(),
                     b"all" if sample_index is None else sample_index.tobytes(), variant_index.tobytes()):
            digest.update(part)
        self.key = digest.hexdigest()[:16]

    def load(self, n_panels: int) -> dict[int, dict]:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text()).get("key") != self.key:
            raise InputError(f"{self.folder} holds panels of a different sparse GRM (other inputs or options); "
                             "remove it or choose another --out")
        with atomic_open(manifest) as fh:
            json.dump({"key": self.key, "panels": n_panels}, fh)
        found = {}
        for k in range(n_panels):
            path = self.folder / f"panel_{k:06d}.npz"
            if path.exists():
                with np.load(path, allow_pickle=False) as data:
                    found[k] = {name: data[name] for name in data.files}
        return found

    def save(self, k: int, part: dict) -> None:
        with atomic_path(self.folder / f"panel_{k:06d}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **part)
