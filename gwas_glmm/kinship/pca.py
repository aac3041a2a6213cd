"""Principal components of the standardized genotypes by a randomized block Krylov method that
streams the .bed (issue #17, part 3): a few passes, memory O(n x PCs), never n x n or n x M.

Let X be the n x M matrix of GCTA-standardized genotypes ((x - 2p) / sqrt(2p(1-p)), missing 0,
p from the samples the PCs are computed on) and A = X X^T / M the GRM with mean imputation
(plink2 --pca's matrix).  With l = k + oversampling columns:

1. pass 1: Y_0 = A G for a seeded Gaussian G (n x l), also fixing the variants that pass the
   filters and their frequencies;
2. passes 2..q+1: Y_i = A orth(Y_{i-1});
3. Q = orth([Y_0 .. Y_q]) (n x l(q+1), the block Krylov space), and one more pass for the
   Rayleigh-Ritz matrix Q^T A Q = (X^T Q)^T (X^T Q) / M; its top k eigenpairs give the PCs
   U = Q W and the eigenvalues of A;
4. optionally, one pass projecting samples left out of the PCA (relatives):
   u_r = x_r X_u^T U / (M lambda), which is where a left-out sample would sit if it had been in.

Each pass costs 4 n M l flops (two products per block) and reads the .bed once; a pass is a sum
over variant chunks, so chunks are independent tasks (threads, or dask.distributed).  The
eigenvectors returned have unit norm over the PCA samples (plink2's .eigenvec convention) and
the eigenvalues are those of A (plink2's .eigenval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph

from .._atomic import atomic_open
from .._progress import get_logger, progress
from .._validation import check_index, check_positive_int
from ..exceptions import InputError
from ..genotype import iter_blocks
from ..genotype.blocks import bounded_block_size
from ..genotype.stats import VariantFilter
from ..io.plink import PlinkFileset, worker_fileset

log = get_logger("pca")
CHUNK_VARIANTS = 8192  # variants per task: a pass is the sum of one partial result per chunk


@dataclass(frozen=True)
class PcaConfig:
    """How the PCs are computed.  Defaults: MAF >= 0.01, missing rate <= 0.05 (as the GRM)."""

    n_pcs: int = 10
    iterations: int = 4  # Krylov blocks after the first (passes = iterations + 2)
    oversample: int = 10  # extra columns: l = n_pcs + oversample
    seed: int = 1
    min_maf: float = 0.01
    max_missing: float = 0.05
    min_mac: float = 0.0
    block_size: int = 2048
    chunk_variants: int = CHUNK_VARIANTS
    missing: str = "gcta"  # or "mean-impute": see _scale

    def __post_init__(self):
        if self.missing not in ("gcta", "mean-impute"):
            raise InputError(f"missing mode must be gcta or mean-impute, got {self.missing!r}")
        check_positive_int("n_pcs", self.n_pcs)
        check_positive_int("iterations", self.iterations, minimum=0)
        check_positive_int("oversample", self.oversample, minimum=0)
        check_positive_int("seed", self.seed, minimum=0)
        check_positive_int("chunk_variants", self.chunk_variants)

    @property
    def width(self) -> int:
        return self.n_pcs + self.oversample

    def filters(self) -> VariantFilter:
        return VariantFilter(min_maf=self.min_maf, min_mac=self.min_mac, max_missing=self.max_missing)


@dataclass(frozen=True)
class PcaResult:
    """PCs of ``fid``/``iid`` (rows), eigenvalues of the GRM, and which rows were in the PCA."""

    fid: np.ndarray
    iid: np.ndarray
    vectors: np.ndarray  # (n, k): unit norm over the rows in the PCA; projected rows likewise scaled
    values: np.ndarray  # (k,) eigenvalues of X X^T / M, largest first
    in_pca: np.ndarray  # (n,) bool: False for samples projected onto the PCs
    n_variants: int
    passes: int

    def write(self, prefix) -> list:
        """plink2's layout: PREFIX.eigenvec (``#FID IID PC1 ..``, tab-separated; read directly by
        --covar) and PREFIX.eigenval (one eigenvalue per line)."""
        from pathlib import Path

        vec, val = Path(f"{prefix}.eigenvec"), Path(f"{prefix}.eigenval")
        k = self.values.size
        with atomic_open(vec) as fh:
            fh.write("#FID\tIID\t" + "\t".join(f"PC{j + 1}" for j in range(k)) + "\n")
            for f, i, row in zip(self.fid, self.iid, self.vectors):
                fh.write(f"{f}\t{i}\t" + "\t".join(f"{v:.8g}" for v in row) + "\n")
        with atomic_open(val) as fh:
            fh.writelines(f"{v:.8g}\n" for v in self.values)
        return [vec, val]


def unrelated_samples(matrix: scipy.sparse.spmatrix, cutoff: float) -> np.ndarray:
    """A bool mask of samples with no pair at or above ``cutoff`` left among them, removing
    greedily, within each group of relatives, the sample with the most relatives (ties: the
    later row), as plink2 --king-cutoff does.  Keeps every sample with no relative."""
    off = scipy.sparse.triu(scipy.sparse.csr_matrix(matrix), k=1, format="coo")
    related = off.data >= cutoff
    n = matrix.shape[0]
    graph = scipy.sparse.coo_matrix((np.ones(related.sum()), (off.row[related], off.col[related])), shape=(n, n))
    graph = (graph + graph.T).tocsr()
    keep = np.ones(n, dtype=bool)
    degree = np.diff(graph.indptr).astype(np.int64)
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    for group in np.flatnonzero(np.bincount(labels) > 1):
        members = np.flatnonzero(labels == group)
        while True:
            alive = members[keep[members]]
            deg = degree[alive]
            if deg.max() == 0:
                break
            drop = alive[len(deg) - 1 - int(np.argmax(deg[::-1]))]
            keep[drop] = False
            neighbours = graph.indices[graph.indptr[drop]:graph.indptr[drop + 1]]
            degree[neighbours] -= 1
            degree[drop] = 0
    return keep


GRAM_COLUMNS = 256  # variants cast to float64 at a time in the last pass


def _chunk_task(source, samples, positions, freqs, operand, kind: str, block_size: int, filters, n_in: int):
    """One variant chunk's share of a pass (a pure function: it runs in a thread or on a dask
    worker).  ``kind``: 'first' -> (Z Z^T G, kept positions, their frequencies); 'product' ->
    Z Z^T Q; 'gram' -> (Z^T Q)^T (Z^T Q); 'project' -> Z_out Z_in^T U.  Z: the chunk's
    standardized genotypes of ``samples`` (the first ``n_in`` rows are the PCA samples)."""
    fileset = worker_fileset(source)
    width = operand.shape[1]
    out = (np.zeros((width, width)) if kind == "gram"
           else np.zeros((len(samples) - n_in if kind == "project" else len(samples), width)))
    kept, kept_freq = [], []
    missing = np.zeros(len(samples), np.int64)  # calls missing per sample ('first' and 'project')
    for z, block_missing, index, freq in _standardized_blocks(fileset, samples, positions, freqs, kind, block_size,
                                                              filters):
        missing += block_missing
        if kind == "first":
            kept.append(index)
            kept_freq.append(freq)
        if kind == "project":
            out += (z[n_in:] @ (z[:n_in].T @ operand)).astype(np.float64)
            continue
        if kind == "gram":  # in float64 for the Rayleigh-Ritz values, through BLAS (z float32 @ float64 is not)
            h = np.vstack([z[:, c:c + GRAM_COLUMNS].astype(np.float64).T @ operand
                           for c in range(0, z.shape[1], GRAM_COLUMNS)])
            out += h.T @ h
        else:
            out += (z @ (z.T @ operand)).astype(np.float64)
    if kind == "first":
        return out, (np.concatenate(kept) if kept else np.zeros(0, np.int64)), (
            np.concatenate(kept_freq) if kept_freq else np.zeros(0)), missing
    return (out, missing[n_in:]) if kind == "project" else out


def _standardized_blocks(fileset, samples, positions, freqs, kind: str, block_size: int, filters):
    """(Z, missing calls per sample, variant positions, frequencies) for each block of a chunk, Z
    (samples, variants) float32 standardized with missing calls 0.  The first pass filters the
    variants and takes their frequencies from the block it reads; the later ones know both, so
    each block is decoded straight from the file into Z (``read_standardized``), all into one
    buffer."""
    from ._grm_numba import standardize_inplace

    step = bounded_block_size(len(samples), block_size)
    if kind != "first":
        buffer = np.empty(len(samples) * min(step, len(positions)), np.float32)  # one for every block
        for lo in range(0, len(positions), step):
            index = positions[lo:lo + step]
            z, missing, _ = fileset.read_standardized(samples, index, freqs[lo:lo + step], buffer=buffer)
            yield z, missing, index, freqs[lo:lo + step]
        return
    for block in iter_blocks(fileset, samples=samples, variants=positions, block_size=step, filters=filters,
                             prefetch=False):
        if not len(block):
            continue
        z = block.dosages
        missing = np.isnan(z).sum(axis=1)
        standardize_inplace(z, block.stats.a1freq)  # the block is ours: read for this task alone
        yield z, missing, block.variant_index, block.stats.a1freq


class _Passes:
    """Runs a pass as a sum over variant chunks, in chunk order (the same sum however they run):
    here, one chunk after another (the products use every BLAS thread), or on dask workers."""

    def __init__(self, fileset: PlinkFileset, samples: np.ndarray, config: PcaConfig, client=None,
                 show_progress: bool = False):
        self.fileset, self.samples, self.config, self.client = fileset, samples, config, client
        self.show_progress = show_progress
        self.count = 0

    def run(self, chunks, freqs, operand, kind: str, n_in: int, desc: str):
        self.count += 1
        operand = operand.astype(np.float32 if kind != "gram" else np.float64)
        args = [(c, None if freqs is None else freqs[k]) for k, c in enumerate(chunks)]
        filters = self.config.filters()
        if self.client is None:
            parts = []
            with progress(total=len(chunks), desc=desc, unit="chunk", enabled=self.show_progress) as bar:
                for c, f in args:
                    parts.append(_chunk_task(self.fileset, self.samples, c, f, operand, kind,
                                             self.config.block_size, filters, n_in))
                    bar.update(1)
        else:
            from ..gwas.cluster import on_worker

            source = str(self.fileset.source)
            [shared] = self.client.scatter([operand], broadcast=True, hash=False)
            futures = [self.client.submit(on_worker, _chunk_task, source, self.samples, c, f, shared, kind,
                                          self.config.block_size, filters, n_in, pure=False) for c, f in args]
            parts = self.client.gather(futures)
        if kind == "first":
            return sum(p[0] for p in parts), [p[1] for p in parts], [p[2] for p in parts], sum(p[3] for p in parts)
        if kind == "project":
            return sum(p[0] for p in parts), sum(p[1] for p in parts)
        return sum(parts)


def _scale(missing: np.ndarray, m: int, mode: str) -> np.ndarray:
    """Per-sample row scale s: A = S X X^T S / M.  'gcta' (as the GRM and plink2 --pca): s_i =
    M / (variants called in i), so that an entry is about the average over the variants called in
    both (pair counts taken as independent); 'mean-impute': s = 1, every pair over M."""
    if mode == "mean-impute":
        return np.ones(len(missing))
    called = m - missing
    if called.min() <= 0:
        raise InputError(f"sample {int(np.argmin(called)) + 1} of the PCA has no called variant; "
                         "drop samples with very high missingness (plink2 --mind)")
    return m / called


def _orth(y: np.ndarray) -> np.ndarray:
    q, _ = scipy.linalg.qr(y, mode="economic", check_finite=False)
    return q


def randomized_pca(fileset: PlinkFileset, *, config: PcaConfig | None = None, samples=None, variants=None,
                   in_pca=None, client=None, show_progress: bool = False) -> PcaResult:
    """Top PCs of ``samples`` (.fam positions, default all) from ``variants`` (.bim positions)
    passing ``config``'s filters.  ``in_pca``: a bool mask over ``samples`` of those the PCs are
    computed on (e.g. :func:`unrelated_samples`); the others are projected.  ``client``: a
    dask.distributed Client to run each pass's chunks on."""
    config = config or PcaConfig()
    sample_index = np.arange(fileset.n_samples) if samples is None else check_index("samples", samples,
                                                                                       fileset.n_samples)
    variant_index = check_index("variants", variants, fileset.n_variants)
    n = len(sample_index)
    mask = np.ones(n, dtype=bool) if in_pca is None else np.asarray(in_pca, dtype=bool)
    if mask.shape != (n,):
        raise InputError(f"in_pca must be a mask over the {n} samples, got shape {mask.shape}")
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    n_in, k, width = len(inside), config.n_pcs, config.width
    if n_in <= width:
        raise InputError(f"{n_in} samples for the PCA: need more than n_pcs + oversample = {width}; "
                         "ask for fewer PCs (--n-pcs)")
    chunks = [variant_index[s:s + config.chunk_variants] for s in range(0, len(variant_index), config.chunk_variants)]
    passes = _Passes(fileset, sample_index[inside], config, client, show_progress)
    rng = np.random.default_rng(config.seed)
    y, chunks, freqs, missing = passes.run(chunks, None, rng.standard_normal((n_in, width)), "first", n_in,
                                           "PCA pass 1")
    keep = [c.size > 0 for c in chunks]
    chunks = [c for c, ok in zip(chunks, keep) if ok]
    freqs = [f for f, ok in zip(freqs, keep) if ok]
    m = int(sum(c.size for c in chunks))
    if m <= width:
        raise InputError(f"{fileset.genotype_path}: {m} variants pass the PCA filters (MAF >= {config.min_maf}, missing "
                         f"rate <= {config.max_missing}); {config.n_pcs} PCs need more than {width}")
    scale = _scale(missing, m, config.missing)
    blocks = [scale[:, None] * y]  # = A (S^-1 G): a Krylov start as random as G
    for i in range(config.iterations):
        q = _orth(blocks[-1])
        blocks.append(scale[:, None] * passes.run(chunks, freqs, scale[:, None] * q, "product", n_in,
                                                  f"PCA pass {i + 2}"))
    basis = _orth(np.hstack(blocks))
    gram = passes.run(chunks, freqs, scale[:, None] * basis, "gram", n_in, f"PCA pass {passes.count + 1}") / m
    values, w = scipy.linalg.eigh((gram + gram.T) / 2)
    order = np.argsort(values)[::-1][:k]
    values, vectors = values[order], basis @ w[:, order]
    vectors *= np.where(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(k)] < 0, -1.0, 1.0)  # fixed signs
    out = np.zeros((n, k))
    out[inside] = vectors
    if outside.size:
        passes.samples = np.concatenate([sample_index[inside], sample_index[outside]])
        projected, missing_out = passes.run(chunks, freqs, scale[:, None] * vectors, "project", n_in,
                                            "PCA projection")
        out[outside] = _scale(missing_out, m, config.missing)[:, None] * projected / (m * values)
    fam = fileset.samples.take(sample_index)
    log.info("PCA of %d samples (%d projected) on %d variants: %d passes over the .bed; top eigenvalues %s",
             n_in, outside.size, m, passes.count, ", ".join(f"{v:.4g}" for v in values[:5]))
    return PcaResult(fam.fid.astype(object), fam.iid.astype(object), out, values, mask, m, passes.count)
