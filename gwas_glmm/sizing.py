"""Sizing before running (``--dry-run``): peak memory, disk and time of ``grm``, ``null`` and
``scan`` from the inputs' dimensions, by the cost model of each stage (docs/methods.md).

n samples, m variants, b variants per block, p covariates, t threads, k phenotypes:

* grm:  n^2 m flops (SYRK; float32 buffer flushed into a float64 total), n m / 4 bytes read;
  memory n^2 (8 + 4 + 8 [+ 4 + 4 + 4 with LOCO]) bytes, the eigendecomposition ~9 n^3 flops and
  3 n^2 doubles more; disk n^2 (8 + 4) [+ 22 n^2 4 with LOCO] [+ n^2 8 eigenvectors].
* null: Gaussian: two products with the eigenvectors per phenotype (4 n^2 p flops), memory the
  matrix and its eigenvectors; PQL: ~12 AI-REML iterations of two Cholesky factorisations and
  the diagonal of Sigma^-1 (n^3 flops in all), memory ~6 n^2 doubles; LOCO: one n^3 / 3 factorisation per
  chromosome and phenotype, one LOCO matrix in memory at a time.
* scan: exact: 2 n^2 m flops per phenotype; fast: 2 n m (200 + p) flops per phenotype
  (Gaussian) or 4 n m p (PQL); memory the null models (n^2 doubles for the shared eigenvectors,
  n^2 per PQL phenotype) plus t blocks in flight of n b (4 + 4 + 8 + 8) bytes; LOCO adds one
  n^3 / 3 factorisation per chromosome and phenotype, up to t of them at once (24 n^2 bytes
  each while built), and the exact mode holds up to t + 2 chromosomes' factors (8 n^2 bytes
  each per phenotype).

* on a sparse GRM (groups of relatives of sizes s_b, W with n + sum s_b^2 non-zeros): null,
  Gaussian 9 sum s_b^3 flops (batched eigendecompositions) and O(nnz(W) p) rotations, PQL ~12
  iterations of 2.7 sum s_b^3 and sparse products; scan, exact, 2 nnz(W) + 2 n (p + 1) flops a
  variant and phenotype, blocks capped at 256 MB.

Time is flops over this machine's measured GEMM rate (a 0.2 s probe) plus the .bed decoding
rate; memory adds the process's own size before any data is loaded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from ._threads import thread_count

DECODE_RATE = 2.5e8  # genotypes per second per core, .bed -> float32 with statistics (bench_io)
# a scan's extra core-seconds per sample and variant when the genotypes are dosages, from
# bench_dosage_scan.py at N = 10,000 x 200,000 (2 threads): .pgen 14.5 s and 8-bit zlib .bgen
# 21.0 s against the .bed's 12.5 s
DOSAGE_DECODE_SECONDS = {"bed": 0.0, "pgen": 2e-9, "bgen": 8.5e-9}
DISK_WRITE_RATE = 2.0e8  # bytes per second, sustained writeback (bench_grm's LOCO run)
N_CHROMOSOMES = 22
PQL_ITERATIONS = 12
STARTUP_SECONDS = 2.0  # interpreter, numpy/numba/dask imports, reading the headers
SCAN_GENOTYPE_SECONDS = 6e-8  # per genotype and phenotype on one core: statistics, imputation, SPA, output
SPA_FRACTION = 0.05  # binary traits: variants whose |z| > 2 get the saddlepoint approximation (4.6% under the null)
SPA_SAMPLE_SECONDS = 1.6e-7  # per sample for one such variant, both tails of the double SPA (compiled search, Taylor
#                              model below 30% carriers, the allele with fewer carriers): 14-19 ms a variant at
#                              N = 100,000 on one core (two 2,000-3,000-variant stretches of the biobank cohort,
#                              2026-12-08); the whole bt1 + bt2 scan there took 977 s (16.3 min), estimated 19 min
SPARSE_RATE = 2e8  # multiply-adds per second of a sparse (CSR) times dense product, one core (scipy)
# the exact scan on a sparse-GRM null (gwas.score.sparse_exact_parts), per core: its numba passes over W's rows,
# and the rest of a variant's work per genotype (filters, imputation, output); measured at N = 100,000 x 20,000
# (scripts/bench_biobank.py, idle: 18.9 s for the qt, estimated 17 s)
SCAN_SPARSE_RATE = 4e8
SCAN_SPARSE_GENOTYPE_SECONDS = 5e-9
SMALL_BLOCK_SECONDS = 2e-6  # per block of related samples and batched LAPACK call (numpy's gufunc loop)
GAUSSIAN_RESULT_BYTES = 72  # gzip TSV bytes per variant and phenotype (measured on simulated scans)
BINARY_RESULT_BYTES = 95


@dataclass(frozen=True)
class MachineSpeed:
    sgemm: float  # flop/s
    dgemm: float
    cores: int

    @classmethod
    def measure(cls, size: int = 1024) -> MachineSpeed:
        rates = []
        for dtype in (np.float32, np.float64):
            a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
            a @ a  # warm the BLAS threads
            t0, reps = time.perf_counter(), 0
            while time.perf_counter() - t0 < 0.1:
                a @ a
                reps += 1
            rates.append(2 * size**3 * reps / (time.perf_counter() - t0))
        return cls(rates[0], rates[1], thread_count())


KERNELS_BYTES = 160 * 2**20  # numba's compiled kernels and LLVM, loaded on first use (not by a dry run)


def process_rss() -> int:
    """This process's resident size now (bytes) plus the compiled kernels a real run loads: the
    base every estimate adds to."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") + KERNELS_BYTES
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 + KERNELS_BYTES


def total_memory() -> int:
    """This machine's RAM in bytes (0 where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


@dataclass
class Estimate:
    stage: str
    memory: float  # peak resident bytes
    disk: float  # bytes written
    seconds: float
    flops: float
    bytes_read: float
    detail: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.stage} (dry run): peak memory ~{_size(self.memory)}, disk ~{_size(self.disk)}, "
               f"time ~{_duration(self.seconds)} on this machine ({self.flops:.3g} flops, "
               f"{_size(self.bytes_read)} read)"]
        return out + [f"  {line}" for line in self.detail]


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _spa_seconds(n: int, m: int, binary: int, speed: MachineSpeed, threads: int) -> float:
    return binary * SPA_FRACTION * m * n * SPA_SAMPLE_SECONDS / min(threads, speed.cores)


def _decode_seconds(n: int, m: int, speed: MachineSpeed, threads: int) -> float:
    return n * m / (DECODE_RATE * min(threads, speed.cores))


def estimate_grm(n: int, m: int, *, block: int, double: bool, loco: bool, gcta: bool, eigen: bool,
                 speed: MachineSpeed, threads: int, base: int) -> Estimate:
    nn = float(n) * n
    accumulate = nn * (8 + (8 if double else 4 + 4) + (8 if double else 4) * loco + (4 + 4 * loco) * gcta)
    blocks = 2 * n * block * (4 + 8)
    flops = nn * m
    seconds = STARTUP_SECONDS + flops / (speed.dgemm if double else speed.sgemm) + _decode_seconds(n, m, speed, threads)
    memory = accumulate + blocks
    disk = nn * (8 + 4 * gcta) + (N_CHROMOSOMES * nn * 4 if loco else 0)
    detail = [f"{n} samples x {m} candidate variants: SYRK {flops:.3g} flops in "
              f"{'float64' if double else 'float32'}, accumulators {_size(accumulate)}"]
    if eigen:
        flops_e = 9.0 * n**3
        seconds += flops_e / speed.dgemm
        flops += flops_e
        memory = max(memory, nn * 8 * 4)  # kinship + LAPACK copy, vectors and workspace
        disk += nn * 8
        detail.append(f"eigendecomposition ~{flops_e:.3g} flops, {_size(nn * 8 * 4)}")
    seconds += disk / DISK_WRITE_RATE
    if loco:
        detail.append(f"LOCO parts: {N_CHROMOSOMES} x n^2 float32 = {_size(N_CHROMOSOMES * nn * 4)} of disk "
                      "(--no-loco to skip)")
    return Estimate("grm", base + memory, disk, seconds, flops, n * m / 4.0, detail)


def estimate_sparse_grm(n: int, m: int, *, block: int, panel: int, speed: MachineSpeed, threads: int,
                        base: int, relatives: float = 5.0, itemsize: int = 4) -> Estimate:
    """The sparse GRM by panels of tiles (``kinship.sparse_grm``): one statistics pass over the
    .bed, then n^2 M flops (the lower triangle, tile by tile, GEMMs with all M markers as their
    inner dimension) and (P + 1) / 2 decodes of the n x M genotypes over the P panels' tiles;
    memory two tiles (2 b M ``itemsize`` bytes), a b x b product, one genotype block for the
    statistics pass and the kept entries (12 bytes each; ``relatives`` per sample, a generous
    guess: UK Biobank has fewer than one pair of third degree or closer per sample; the run's
    log gives the real count)."""
    from .genotype.blocks import bounded_block_size

    block = bounded_block_size(n, block)
    panels = -(-n // max(panel, 1))
    flops = float(n) * n * m
    kept = 12.0 * n * (1.0 + relatives)
    tiles = 2.0 * panel * m * itemsize
    memory = max(tiles + 4.0 * panel * panel, 3 * n * block * 4) + 2 * kept
    decodes = 1.0 + (panels + 1) / 2.0  # the statistics pass, then each panel's tiles
    seconds = (STARTUP_SECONDS + flops / (speed.dgemm if itemsize == 8 else speed.sgemm)
               + decodes * _decode_seconds(n, m, speed, threads) + kept / DISK_WRITE_RATE)
    detail = [f"{n} samples x {m} candidate variants in {panels} panel(s) of {panel} samples: {flops:.3g} flops, "
              f"the .bed read {decodes:.3g} times (its tiles' bytes); two tiles {_size(tiles)}, "
              f"kept entries ~{_size(kept)} (assuming {relatives:g} relatives per sample)"]
    return Estimate("grm", base + memory, kept, seconds, flops, decodes * n * m / 4.0, detail)


def estimate_pca(n: int, m: int, *, n_pcs: int, width: int, iterations: int, block: int, speed: MachineSpeed,
                 threads: int, base: int, projected: int = 0) -> Estimate:
    """``kinship.pca``: iterations + 2 passes over the .bed (one more to project ``projected``
    samples), each 4 n M l flops (l = ``width`` columns); memory: the Krylov basis n l (q + 1)
    doubles, a few n x l operands and two genotype blocks."""
    from .genotype.blocks import bounded_block_size

    block = bounded_block_size(n + projected, block)
    passes = iterations + 2 + (1 if projected else 0)
    flops = 4.0 * n * m * width * (iterations + 2) + 2.0 * (n + projected) * m * n_pcs * (1 if projected else 0)
    memory = 8.0 * n * width * (iterations + 1) * 2 + 8.0 * (n + projected) * width * 3 + 3 * (n + projected) * block * 4
    seconds = STARTUP_SECONDS + flops / speed.sgemm + passes * _decode_seconds(n + projected, m, speed, threads)
    detail = [f"{n} samples in the PCA" + (f" ({projected} projected)" if projected else "") +
              f" x {m} candidate variants: {passes} passes over the .bed, {flops:.3g} flops; Krylov basis "
              f"{_size(8.0 * n * width * (iterations + 1))}"]
    return Estimate("pca", base + memory, 16.0 * (n + projected) * (n_pcs + 2), seconds, flops,
                    passes * (n + projected) * m / 4.0, detail)


def estimate_null(n: int, p: int, k: int, *, family: str, eigen_stored: bool, matrix_n: int,
                  speed: MachineSpeed, base: int, loco_parts: int = 0, loco_at_once: int = 1) -> Estimate:
    """``loco_at_once``: chromosomes factorised at once (``gwas.nullfit.loco_workers``)."""
    nn, big = float(n) * n, float(matrix_n) * matrix_n
    loaded = big * 8 * (2 if eigen_stored else 1)
    subset = n != matrix_n
    if family == "gaussian":
        decompose = subset or not eigen_stored
        flops = 4.0 * nn * p * k + (9.0 * n**3 if decompose else 0.0)
        memory = loaded + (nn * 8 * 2 if subset else 0) + (nn * 8 * 3 if decompose else 0)
        disk = nn * 8
        detail = [f"Gaussian REML in the eigenbasis, {k} phenotype(s); eigendecomposition "
                  + ("computed for the kept samples (once per distinct sample set)" if decompose else "reused")]
    else:
        flops = PQL_ITERATIONS * n**3 * k  # two n^3/3 factorisations and diag(Sigma^-1), n^3/3
        memory = loaded + nn * 8 * 6
        disk = nn * 8 * k
        detail = [f"{family} PQL/AI-REML, {k} phenotype(s): ~{PQL_ITERATIONS} iterations of an n^3 factorisation"]
    if loco_parts:
        flops_l = loco_parts * k * (n**3 / 3.0 + 2.0 * nn * p)
        flops += flops_l
        # per chromosome in flight: a LOCO matrix, its aligned copy and Sigma_c
        memory = max(memory, loaded + loco_at_once * nn * (4 + 8 + 8))
        loaded += loco_parts * big * 12
        detail.append(f"LOCO: {loco_parts} chromosome(s) x {k} phenotype(s), one n^3/3 factorisation each "
                      f"({flops_l:.3g} flops), {loco_at_once} at once; --no-loco to skip")
    seconds = STARTUP_SECONDS + flops / speed.dgemm + (loaded + disk) / DISK_WRITE_RATE
    return Estimate("null", base + memory, disk, seconds, flops, loaded, detail)


def estimate_null_sparse(n: int, p: int, k: int, *, family: str, sizes: np.ndarray, nnz: int, speed: MachineSpeed,
                         base: int, factor_counts=()) -> Estimate:
    """The null model on a sparse GRM (``gwas.sparse_null``), from its groups of related samples
    in dense blocks (``sizes``: those of 2 or more) and its non-zeros: Gaussian, one batched
    eigendecomposition per block size (9 s^3 flops a block) and O(nnz(U) p) rotations; PQL, per
    iteration a Cholesky, an inverse and a trace per block (s^3 / 3 + s^3 / 3 + 2 s^3) and sparse
    products with W.  Groups factorised sparsely (``factor_counts``: the column counts of each
    one's L, from the symbolic analysis the fit makes) cost sum_j c_j^2 multiply-adds per
    numeric factorisation and twice that for the selected inverse, every iteration (a Gaussian
    trait with one is fitted by AI-REML, iterating as PQL does).  Memory: the matrix, the blocks
    and their factors (4 s^2 doubles while factorised), the sparse factors (4 doubles a
    non-zero), W (12 bytes a non-zero) and a few n x p arrays."""
    sizes = np.asarray(sizes, dtype=float)
    cubes, squares = float(np.sum(sizes**3)), float(np.sum(sizes**2))
    w_nnz = n + squares
    factor_nnz = float(sum(c.sum() for c in factor_counts))
    factor_ops = 3.0 * float(sum(np.sum(np.asarray(c, dtype=float) ** 2) for c in factor_counts))
    if factor_counts:
        w_nnz += factor_nnz
    if family == "gaussian" and not factor_counts:
        flops = k * (9.0 * cubes + 4.0 * w_nnz * (p + 1))
        sparse_ops = k * w_nnz * (p + 4)
        block_calls = k * len(sizes)
        detail = [f"Gaussian REML in the blocks' eigenbasis, {k} phenotype(s)"]
    else:
        flops = k * PQL_ITERATIONS * (2.7 * cubes)
        sparse_ops = k * PQL_ITERATIONS * (w_nnz * (2 * p + 8) + factor_ops)
        block_calls = k * PQL_ITERATIONS * len(sizes) * 3
        method = "AI-REML" if family == "gaussian" else "PQL/AI-REML"
        detail = [f"{family} {method}, {k} phenotype(s): ~{PQL_ITERATIONS} iterations, each factorising every block"]
    if factor_counts:
        detail.append(f"{len(factor_counts)} group(s) of {', '.join(str(len(c)) for c in factor_counts)} samples by "
                      f"sparse Cholesky ({factor_nnz:.3g} entries; {factor_ops:.3g} multiply-adds an iteration)")
    largest = float(sizes.max()) if len(sizes) else 1.0
    memory = (12.0 * nnz * 3 + 8.0 * squares * 2 + 4 * 8.0 * largest**2 + 12.0 * w_nnz * 2 + 8.0 * n * p * 8
              + 4 * 8.0 * factor_nnz)
    disk = k * (12.0 * w_nnz + 8.0 * n * (2 * p + 6))
    seconds = (STARTUP_SECONDS + flops / (0.25 * speed.dgemm) + sparse_ops / SPARSE_RATE
               + block_calls * SMALL_BLOCK_SECONDS + disk / DISK_WRITE_RATE)
    singles = n - int(sizes.sum()) - sum(len(c) for c in factor_counts)
    detail.append(f"{len(sizes)} groups of related samples in dense blocks (largest {int(largest)}), {singles} samples "
                  f"with no relative; sum s^3 = {cubes:.3g}; W {_size(12.0 * w_nnz)}")
    return Estimate("null", base + memory, disk, seconds, flops, 12.0 * nnz, detail)


def estimate_scan(n: int, m: int, families: list[str], *, mode: str, block: int, threads: int, p: int,
                  speed: MachineSpeed, base: int, loco_parts: int = 0, calibrated: bool = False,
                  sparse_nnz: float | None = None, genotype_format: str = "bed") -> Estimate:
    """``calibrated``: the null file has every LOCO part's fast-mode ratio, so a fast scan reads
    only the top FAST_RANK eigenvectors at most (no n x n matrix) and factorises nothing.
    ``sparse_nnz``: the null models were fitted on a sparse GRM and Sigma^-1 = W^T W has this
    many non-zeros in W: the exact variance costs 2 nnz(W) + 4 n p flops a variant and phenotype.
    ``genotype_format``: bed, pgen or bgen (dosages cost more to decode: DOSAGE_DECODE_SECONDS)."""
    from .gwas.null import FAST_RANK

    if sparse_nnz is not None:
        estimate = _estimate_scan_sparse(n, m, families, block=block, threads=threads, p=p, speed=speed, base=base,
                                         w_nnz=sparse_nnz)
        return _with_dosages(estimate, n, m, genotype_format, min(threads, speed.cores))
    nn, k = float(n) * n, len(families)
    gaussian = sum(f == "gaussian" for f in families)
    light = mode == "fast" and calibrated
    nulls = (n * FAST_RANK * 8.0 * gaussian) if light else nn * 8 * ((1 if gaussian else 0) + (k - gaussian))
    # per running block: the float32 buffer it is decoded into, its kept copy, a phenotype's rows of
    # it (a phenotype on part of the samples) and (exact mode) the float64 dosages and one product
    inflight = threads * n * block * ((4 + 4 + 4 + 8 + 8) if mode == "exact" else (4 + 4 + 4))
    if mode == "exact":
        flops = 2.0 * nn * m * k
    else:
        flops = 2.0 * n * m * (gaussian * (FAST_RANK + p) + (k - gaussian) * 2 * p)  # the most directions
    loco_bytes, loco_memory = 0.0, 0.0
    if loco_parts and not light:
        flops += loco_parts * k * n**3 / 3.0
        # while blocks run: up to t chromosomes' Sigma_c built at once (the LOCO matrix, its aligned
        # copy, Sigma_c, its factor), and in the exact mode the factors of up to t + 2 chromosomes
        # (those being scanned and the next) held
        held = min(threads + 2, loco_parts) * k if mode == "exact" else 0
        loco_memory = nn * (min(threads, loco_parts) * (4 + 4 + 8 + 8) + held * 8)
        loco_bytes = loco_parts * nn * 12
    binary = sum(f == "binomial" for f in families)
    seconds = (STARTUP_SECONDS + flops / speed.dgemm + _decode_seconds(n, m, speed, threads)
               + SCAN_GENOTYPE_SECONDS * n * m * k / min(threads, speed.cores) + loco_bytes / DISK_WRITE_RATE
               + _spa_seconds(n, m, binary, speed, threads))
    disk = m * (GAUSSIAN_RESULT_BYTES * (k - binary) + BINARY_RESULT_BYTES * binary)
    detail = [f"{n} samples x {m} variants, {k} phenotype(s), {mode} mode: null models {_size(nulls)}, "
              f"{threads} blocks of {block} variants in flight {_size(inflight)}",
              f"checkpoints while running ~{_size(m * 8 * (4 + 4 * k))} (removed at the end)"]
    if loco_parts and light:
        detail.append(f"LOCO: {loco_parts} chromosome(s), variance ratios calibrated by the null step; the null "
                      "models' top eigenvectors only are read")
    elif loco_parts:
        detail.append(f"LOCO: {loco_parts} chromosome(s), Sigma_c factorised once per chromosome and phenotype, "
                      f"{_size(loco_memory)} for those built and held (--no-loco to skip)")
    memory = base + nulls + inflight + loco_memory
    estimate = Estimate("scan", memory, disk, seconds, flops, n * m / 4.0 + nulls + loco_bytes, detail)
    return _with_dosages(estimate, n, m, genotype_format, min(threads, speed.cores))


def _with_dosages(estimate: Estimate, n: int, m: int, genotype_format: str, cores: int) -> Estimate:
    extra = DOSAGE_DECODE_SECONDS.get(genotype_format, 0.0) * n * m / cores
    if not extra:
        return estimate
    return replace(estimate, seconds=estimate.seconds + extra,
                   detail=[*estimate.detail, f"{genotype_format} dosages: about {extra:.0f} s more decoding than a .bed"])


def _estimate_scan_sparse(n: int, m: int, families: list[str], *, block: int, threads: int, p: int,
                          speed: MachineSpeed, base: int, w_nnz: float) -> Estimate:
    from .genotype.blocks import bounded_block_size

    k = len(families)
    block = bounded_block_size(n, block)
    nulls = k * (12.0 * w_nnz + 8.0 * n * (2 * p + 6))
    # the decoded block, its filtered copy and a phenotype's rows of it: no float64 copy
    inflight = threads * n * block * (4 + 4 + 4)
    sparse_ops = float(m) * k * w_nnz
    flops = m * k * (2.0 * w_nnz + 4.0 * n * p)
    cores = min(threads, speed.cores)
    binary = sum(f == "binomial" for f in families)
    seconds = (STARTUP_SECONDS + sparse_ops / (SCAN_SPARSE_RATE * cores) + 4.0 * n * p * m * k / speed.dgemm
               + _decode_seconds(n, m, speed, threads) + SCAN_SPARSE_GENOTYPE_SECONDS * n * m * k / cores
               + _spa_seconds(n, m, binary, speed, threads))
    disk = m * (GAUSSIAN_RESULT_BYTES * (k - binary) + BINARY_RESULT_BYTES * binary)
    detail = [f"{n} samples x {m} variants, {k} phenotype(s), exact mode on sparse-GRM null models "
              f"(W {w_nnz:.3g} non-zeros): null models {_size(nulls)}, {threads} blocks of {block} variants in flight "
              f"{_size(inflight)}",
              f"checkpoints while running ~{_size(m * 8 * (4 + 4 * k))} (removed at the end)"]
    return Estimate("scan", base + nulls + inflight, disk, seconds, flops, n * m / 4.0 + nulls, detail)
