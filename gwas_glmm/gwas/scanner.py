"""The score-test scan: blocks of variants in parallel (dask, threads), several phenotypes per
pass over the genotypes, every finished block checkpointed so a killed scan resumes.

A block is decoded once from the .bed bytes, mean-imputed over the analysis samples, tested for
every phenotype (``score.score_test``) and its rows formatted and compressed (``rows``), all in
its worker (``block.compute_block``).  Finished blocks go to ``OUT.ckpt/`` as ``.npz`` (no
pickle); when all are done each phenotype's file is the blocks' gzip members in variant order
(zero timestamps, so a resumed scan's file is byte-identical to an uninterrupted one's), under a
temporary name, renamed when complete; then the checkpoints are removed.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np

from .._atomic import atomic_path, exclusive
from .._progress import get_logger, progress
from .._threads import blas_threads, one_numba_thread
from ..exceptions import AlignmentError, InputError
from ..genotype.blocks import bounded_block_size
from ..genotype.stats import VariantFilter
from ..io.chrom import chrom_sort_key
from ..io.plink import GenotypeFileset, share_fileset
from ..io.tables import results_to_parquet
from .block import BlockTask, compute_block
from .null import NullModel
from .rows import gzip_member, header
from .score import apply_fast_rank, choose_fast_rank, exact_variance, variance_ratio

log = get_logger("scan")
EXACT_MAX_N = 5000  # above this many samples the default mode is fast


@dataclass(frozen=True)
class ScanConfig:
    mode: str = "auto"  # exact | fast | auto
    block_size: int = 1024
    min_mac: float = 1.0
    min_maf: float = 0.0
    max_missing: float = 1.0
    min_info: float = 0.0  # dosage files: REGENIE's --minINFO
    spa: bool = True
    n_calibration: int = 100  # random variants (MAC >= 20) for the fast mode's variance ratio
    seed: int = 1
    threads: int = 2
    loco: bool = True  # use the null models' LOCO parts where they have them
    parquet: bool = False  # also write OUT.<phenotype>.parquet
    x_male_coding: str = "0/2"  # chromosome X: males 0/2 (REGENIE's default) or 0/1 (genotype.xchr)


def _blocks_by_chromosome(variants: np.ndarray, chrom: np.ndarray, size: int) -> list[np.ndarray]:
    """Blocks of at most ``size`` consecutive variants, never spanning two chromosomes (so each
    block has one LOCO null model)."""
    blocks = []
    if not len(variants):
        return blocks
    labels = chrom[variants]
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    for run in np.split(variants, cuts):
        blocks += [run[s:s + size] for s in range(0, len(run), size)]
    return blocks


def calibration_genotypes(fileset: GenotypeFileset, samples: np.ndarray, variants: np.ndarray, n_calibration: int = 100,
                          seed: int = 1) -> np.ndarray:
    """Mean-imputed dosages of up to ``n_calibration`` random variants with MAC >= 20 among
    ``variants`` (seeded: a resumed scan, or the null step, picks the same ones)."""
    if fileset.multiallelic is not None:
        variants = variants[~fileset.multiallelic[variants]]
    if not len(variants):
        return np.empty((len(samples), 0))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(variants, size=min(len(variants), 20 * n_calibration), replace=False))
    g, stats, _ = fileset.read_imputed(samples, pick)
    return np.asarray(g[:, np.flatnonzero(stats.mac >= 20)[:n_calibration]], dtype=np.float64, order="F")


def sample_positions(fileset: GenotypeFileset, fid, iid) -> np.ndarray:
    """Each null-model sample's position in the fileset, by FID and IID (IID alone where the
    fileset's sample file has no FID column)."""
    if fileset.iid_only:
        seen: dict[str, str] = {}
        for f, i in zip(fid, iid):
            if seen.setdefault(str(i), str(f)) != str(f):
                raise AlignmentError(f"{fileset.sample_path} has no FID column, so samples are matched by IID, but the "
                                     f"null model has IID {i} in families {seen[str(i)]} and {f}; give the genotype "
                                     "file's samples FIDs (a .psam with #FID, or --sample for a .bgen)")
        lookup = {i: k for k, i in enumerate(fileset.samples.iid)}
        pos = np.array([lookup.get(str(i), -1) for i in iid], dtype=np.int64)
    else:
        lookup = {(f, i): k for k, (f, i) in enumerate(zip(fileset.samples.fid, fileset.samples.iid))}
        pos = np.array([lookup.get((str(f), str(i)), -1) for f, i in zip(fid, iid)], dtype=np.int64)
    if np.any(pos < 0):
        k = int(np.flatnonzero(pos < 0)[0])
        raise AlignmentError(f"{int((pos < 0).sum())} samples of the null model are not in {fileset.sample_path}, "
                             f"first {fid[k]} {iid[k]}; scan the fileset the GRM was built from")
    return pos


def auto_mode(n: int, sparse: bool) -> str:
    """--mode auto: exact where it is cheap (a sparse-GRM null, or up to EXACT_MAX_N samples)."""
    return "exact" if sparse or n <= EXACT_MAX_N else "fast"


class Scan:
    """One scan of ``fileset`` against ``nulls`` (phenotype -> NullModel; ``fid``/``iid`` the null
    file's samples, each model testing those its ``index`` picks, all of them if None)."""

    def __init__(self, fileset: GenotypeFileset, nulls: dict[str, NullModel], fid, iid, variants: np.ndarray,
                 out: str, config: ScanConfig, *, inputs_key: str = "", kinship_path=None,
                 grm_chromosomes: list[str] | None = None, sex: np.ndarray | None = None):
        self.fileset, self.nulls, self.config = fileset, nulls, config
        self.samples = sample_positions(fileset, fid, iid)
        self.variants = np.asarray(variants, dtype=np.int64)
        self.out = str(out)
        self.n = len(self.samples)
        mode = config.mode
        if mode == "auto":
            sparse = all(m.is_sparse for m in nulls.values())
            mode = auto_mode(self.n, sparse)
            log.info("variance mode: %s (auto: %s)", mode, "exact on a sparse-GRM null, O(N + nnz) per variant"
                     if sparse else f"exact up to {EXACT_MAX_N} samples, here {self.n}")
        if mode not in ("exact", "fast"):
            raise InputError(f"--mode must be exact, fast or auto, got {config.mode!r}")
        self.mode = mode
        self.filters = VariantFilter(min_maf=config.min_maf, min_mac=config.min_mac, max_missing=config.max_missing,
                                     min_info=config.min_info)
        self.blocks = _blocks_by_chromosome(self.variants, np.asarray(fileset.variants.chrom).astype(str),
                                            bounded_block_size(self.n, config.block_size))
        self.chrom = [str(fileset.variants.chrom[b[0]]) for b in self.blocks]
        self.kinship_path = kinship_path
        self.fid, self.iid = np.asarray(fid, dtype=object), np.asarray(iid, dtype=object)
        self.sex = self._x_sex(sex) if "X" in self.chrom else None
        self.loco = config.loco and any(m.loco for m in nulls.values())
        if self.loco:
            self._check_loco_parts(grm_chromosomes)
            log.info("LOCO: each chromosome's variants are tested against the null model without that chromosome")
        self.ckpt = Path(f"{self.out}.ckpt")
        self.key = hashlib.sha256(json.dumps({"checkpoint": 2, "inputs": inputs_key, "mode": mode, "config": repr(config),
                                              "variants": int(len(self.variants)), "n": self.n,
                                              "phenotypes": sorted(nulls)}).encode()).hexdigest()[:16]
        self.ratios = {}

    def _x_sex(self, sex: np.ndarray | None) -> np.ndarray:
        """Sex (1 male, 2 female, 0 unknown) of the analysis samples, for chromosome X: ``sex``
        (per .fam sample, e.g. from --sex) or the .fam's own column."""
        from ..genotype.xchr import male_factor

        male_factor(self.config.x_male_coding)
        own = np.asarray(self.fileset.samples.sex if sex is None else sex)[self.samples].astype(np.int8)
        males, females = int(np.sum(own == 1)), int(np.sum(own == 2))
        if males + females == 0:
            raise InputError(f"chromosome X is scanned but no sample has a sex in {self.fileset.sample_path} (column 5); "
                             "set it (plink2 --update-sex), give --sex FILE, or leave X out (--chr 1-22)")
        unknown = len(own) - males - females
        log.info("chromosome X: %d males (coded %s, heterozygous calls missing), %d females%s", males,
                 self.config.x_male_coding, females,
                 f", {unknown} of unknown sex (their X calls missing)" if unknown else "")
        return own

    def _check_loco_parts(self, grm_chromosomes: list[str] | None) -> None:
        """Every chromosome scanned has its LOCO part in every model that has LOCO parts, unless it
        is outside the GRM (``grm_chromosomes``; e.g. X with a GRM of autosomes): then there is
        nothing to leave out and the full-GRM null is its LOCO null.  Never a silent fallback."""
        for chrom in dict.fromkeys(self.chrom):
            lacking = [name for name, m in self.nulls.items() if m.loco and chrom not in m.loco]
            if not lacking:
                continue
            if grm_chromosomes is not None and chrom not in grm_chromosomes:
                log.info("chromosome %s is not in the GRM: its variants are tested against the full-GRM null "
                         "(nothing to leave out)", chrom)
                continue
            have = sorted(next(m for m in self.nulls.values() if m.loco).loco, key=chrom_sort_key)
            raise InputError(f"chromosome {chrom} of {self.fileset.variant_path} has no LOCO part in the null model of "
                             f"{lacking[0]} (parts: {', '.join(have)}); build the GRM with these chromosomes "
                             "and refit the null, or scan with --no-loco")

    # -- calibration -----------------------------------------------------------------------
    def _calibration_set(self, variants: np.ndarray) -> np.ndarray:
        return calibration_genotypes(self.fileset, self.samples, variants, self.config.n_calibration,
                                     self.config.seed)

    @property
    def needs_calibration(self) -> bool:
        """Whether the fast mode must calibrate here (with exact variances, so with the full null
        models): not when every model has a calibrated LOCO part for every chromosome scanned."""
        return self.mode == "fast" and not (self.loco and all(
            getattr(m.loco.get(c), "ratio", None) is not None for m in self.nulls.values() for c in set(self.chrom)))

    def calibrate(self) -> None:
        """The fast mode's genome-wide variance ratios (and ranks, where the null has none); not
        needed, and skipped, when every null model carries a calibrated LOCO part for every
        chromosome scanned (the null step did it)."""
        if not self.needs_calibration:
            return
        from ..io.chrom import is_autosomal

        autosomal = self.variants[is_autosomal(self.fileset.variants.chrom[self.variants])]
        self._calibration = self._calibration_set(autosomal if len(autosomal) else self.variants)
        if self._calibration.shape[1] < 10:
            raise InputError("fewer than 10 variants with MAC >= 20 to calibrate the fast mode; use --mode exact")
        for name, null in self.nulls.items():
            own = null.rows(self._calibration)
            exact = exact_variance(null, own)
            if null.fast_rank is None:  # else chosen by the null step (its LOCO ratios use it)
                apply_fast_rank(null, *choose_fast_rank(null, own, exact))
                if null.fast_rank is not None:
                    log.info("phenotype %s: the fast mode keeps %d eigen-directions exactly (predicted q99 |delta "
                             "log10 P| vs exact %.3f)", name, null.fast_rank, null.status["fast_rank_q99"])
            ratio, cv = variance_ratio(null, own, exact=exact)
            self.ratios[name] = ratio
            log.info("phenotype %s: variance ratio %.4f from %d random variants (CV %.3f)", name, ratio,
                     self._calibration.shape[1], cv)

    # -- blocks -----------------------------------------------------------------------------
    def _block_path(self, k: int) -> Path:
        return self.ckpt / f"block_{k:06d}.npz"

    def _task(self, k: int, ratios: dict) -> BlockTask:
        from ..genotype.xchr import male_factor

        x = self.chrom[k] == "X"
        return BlockTask(self.fileset.source, self.samples, self.blocks[k], self.mode, self.filters,
                         self.config.min_mac, self.config.spa, dict(ratios), self.fileset.num_threads,
                         self.sex if x else None, male_factor(self.config.x_male_coding) if x else 1.0)

    def _save_block(self, k: int, arrays: dict[str, np.ndarray]) -> None:
        """Checkpoints are written by the process that drives the scan (by its worker threads
        with the threaded scheduler), under a temporary name."""
        with atomic_path(self._block_path(k)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def run(self, *, show_progress: bool = True, client=None) -> dict[str, Path]:
        """Scan every block not yet checkpointed, then write the results.  ``client``: a
        ``distributed.Client``; the null models are sent to its workers once and the blocks are
        scheduled on them by variant range; without it, dask threads in this process.  One run
        at a time per output prefix (a lock on OUT.ckpt.lock)."""
        with exclusive(f"{self.out}.ckpt.lock", f"a scan with --out {self.out}"):
            return self._run(show_progress, client)

    def _run(self, show_progress: bool, client) -> dict[str, Path]:
        self.ckpt.mkdir(parents=True, exist_ok=True)
        manifest = self.ckpt / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text()).get("key") != self.key:
            raise InputError(f"{self.ckpt} holds checkpoints of a different scan (other inputs or options); "
                             "remove it or choose another --out")
        manifest.write_text(json.dumps({"key": self.key, "blocks": len(self.blocks)}))
        todo = [k for k in range(len(self.blocks)) if not self._block_path(k).exists()]
        if len(todo) < len(self.blocks):
            log.info("resuming: %d of %d blocks already done", len(self.blocks) - len(todo), len(self.blocks))
        self.calibrate()
        bar = progress(total=len(self.blocks), initial=len(self.blocks) - len(todo), desc="scan", unit="block",
                       enabled=show_progress)
        with bar:
            if client is None:  # one graph: no thread waits at a chromosome's end
                self._run_threads(todo, bar)
            else:
                for chrom, group in itertools.groupby(todo, key=lambda k: self.chrom[k]):
                    self._run_distributed(list(group), bar, client, *self.nulls_for(chrom))
        paths = self._write_results()
        shutil.rmtree(self.ckpt)
        return paths

    def nulls_for(self, chrom: str) -> tuple[dict[str, NullModel], dict[str, float]]:
        """(null models, fast-mode variance ratios) for testing variants on ``chrom``: the LOCO
        versions where the models have one.  Sigma_c is factorised here from the GRM file's LOCO
        part (n^3/3 flops per phenotype): the exact mode applies it, the fast mode calibrates its
        ratio against it on the calibration variants."""
        if not self.loco:
            return self.nulls, self.ratios
        from .loco import loco_sigma_chol, with_loco

        nulls, ratios, k_loco, g = {}, dict(self.ratios), None, None
        stored = self.mode == "fast" and all(
            getattr(m.loco.get(chrom), "ratio", None) is not None for m in self.nulls.values() if chrom in m.loco)
        if stored:  # calibrated by gwas-glmm null against Sigma_c: nothing to factorise here
            for name, null in self.nulls.items():
                part = null.loco.get(chrom)
                nulls[name] = null if part is None else with_loco(null, part)
                if part is not None:
                    ratios[name] = part.ratio
            return nulls, ratios
        if self.mode == "fast":  # calibrate on this chromosome's own variants: LOCO changes their variance most
            g = self._calibration_set(np.concatenate([b for b, c in zip(self.blocks, self.chrom) if c == chrom]))
            if g.shape[1] < 10:
                g = self._calibration
        for name, null in self.nulls.items():
            part = null.loco.get(chrom)
            if part is None:
                nulls[name] = null
                continue
            if k_loco is None:
                k_loco = self._loco_matrix(chrom)
            exact = with_loco(null, part, loco_sigma_chol(null, null.square(k_loco)))
            if self.mode == "exact":
                nulls[name] = exact
            else:
                nulls[name] = with_loco(null, part)
                own = null.rows(g)
                ratios[name], cv = variance_ratio(nulls[name], own, exact=exact_variance(exact, own))
                log.debug("phenotype %s, chromosome %s: LOCO variance ratio %.4f (CV %.3f)", name, chrom, ratios[name],
                          cv)
        return nulls, ratios

    def _loco_matrix(self, chrom: str) -> np.ndarray:
        from ..kinship.store import load_kinship

        path = self.kinship_path
        if path is None or not Path(path).exists():
            raise InputError(f"the exact LOCO scan needs the GRM file the null model was fitted with ({path}); "
                             "give it back, or use --mode fast, or --no-loco")
        return load_kinship(path, loco=chrom, with_eigen=False).align(self.fid, self.iid).matrix

    def _run_threads(self, todo: list[int], bar) -> None:
        """Every block of ``todo`` as one dask graph on the threaded scheduler, each block tested
        against its chromosome's null models (``_ChromosomeNulls``).  Each
        worker thread writes its block's checkpoint as soon as it is done (no batch waits for its
        slowest block, and the driving thread does not serialise the writes).  With several workers
        each runs its kernels (numba, BLAS) on one thread.  The tasks are
        named in block order, so that dask runs them in a fixed order (the last-named first), one
        chromosome after another (its order for unnamed tasks is arbitrary)."""

        threads = self.config.threads
        share_fileset(self.fileset)  # the workers read through the driver's open fileset, not a second one
        # every kernel releases the GIL (numba's, BLAS's, zlib's): with several workers, one
        # thread each, so t workers use t cores rather than t times the kernels' own thread counts
        # (a 2-worker fast scan oversubscribed spent 50 us per variant, not 33 at N = 10,000; the
        # exact scan at n = 1,983 on two 1-thread workers 14.4 s against 21.8 s one block at a time)
        single = threads > 1

        def one(k):
            if single:
                one_numba_thread()
            nulls, ratios = nulls_of(self.chrom[k])
            self._save_block(k, compute_block(self._task(k, ratios), nulls))
            nulls_of(self.chrom[k], done=True)
            bar.update(1)

        tasks = [dask.delayed(one, pure=False)(k, dask_key_name=f"scan-block-{self.key}-{k:07d}") for k in todo]
        nulls_of = _ChromosomeNulls(self.nulls_for, [self.chrom[k] for k in todo], threads, single)
        with blas_threads(1) if single else contextlib.nullcontext(), nulls_of:
            dask.compute(*tasks, scheduler="threads", num_workers=threads)

    def _run_distributed(self, todo: list[int], bar, client, nulls, ratios) -> None:
        from distributed import as_completed

        from .cluster import on_worker

        # one future for the whole dict (a scattered dict would be keyed by phenotype name), sent to
        # every worker once per chromosome group, not once per block
        [nulls] = client.scatter([nulls], broadcast=True, hash=False)
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        window = 2 * workers  # blocks in flight: bounded, so results never pile up in memory
        pending = iter(todo)
        futures = {}

        def submit(k):
            future = client.submit(on_worker, compute_block, self._task(k, ratios), nulls, key=f"scan-block-{self.key}-{k}",
                                   pure=False)
            futures[future] = k
            return future

        running = as_completed([submit(k) for k in itertools.islice(pending, window)])
        for future in running:
            k = futures.pop(future)
            self._save_block(k, future.result())
            future.release()
            bar.update(1)
            nxt = next(pending, None)
            if nxt is not None:
                running.add(submit(nxt))

    # -- results ----------------------------------------------------------------------------
    def _write_results(self) -> dict[str, Path]:
        """Each phenotype's file: the header's gzip member, then every block's (formatted and
        compressed by its worker), in variant order; lambda_GC from the blocks' scores."""
        paths = {}
        for name, null in self.nulls.items():
            path = Path(f"{self.out}.{name}.tsv.gz")
            chisq, freq = [], []
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                fh.write(gzip_member(header(null.family == "binomial", self.fileset.dosages)))
                for k in range(len(self.blocks)):
                    with np.load(self._block_path(k), allow_pickle=False) as npz:
                        fh.write(npz[f"{name}.gz"].tobytes())
                        chisq.append(npz[f"{name}.score"] ** 2 / npz[f"{name}.var"])
                        # a phenotype on a subset of the samples has its own frequencies
                        freq.append(npz[f"{name}.a1freq"] if f"{name}.a1freq" in npz.files else npz["a1freq"])
            paths[name] = path
            if self.config.parquet:
                results_to_parquet(path, Path(f"{self.out}.{name}.parquet"))
            chisq = np.concatenate(chisq) if chisq else np.zeros(0)
            lam = genomic_control(chisq, np.concatenate(freq) if freq else np.zeros(0))
            log.info("phenotype %s: %d variants tested; %s; written to %s", name, len(chisq), lambda_text(lam), path)
        return paths


class _ChromosomeNulls:
    """For one graph over every block: a chromosome -> its (null models, ratios), built
    (``build(chrom)``: the exact mode's factor of Sigma_c, n^3/3 flops; the fast mode's LOCO
    calibration unless the null file stores it) on threads of their own: the next chromosome's as
    soon as a chromosome's first block asks for its own, and one more whenever a worker would
    otherwise wait for a build (at n = 9,892 one takes 12.6 s on one core, longer than a
    chromosome's blocks when there are few), at most ``threads`` at once.  Each is dropped after
    its chromosome's last block, so at most about ``threads`` + 2 are held (the exact mode's n^2
    numbers each).  A context manager: leaving it cancels builds not yet started."""

    def __init__(self, build, chroms: list[str], threads: int, single: bool):
        self.build, self.remaining, self.threads = build, collections.Counter(chroms), threads
        self.order = list(dict.fromkeys(chroms))
        self.found, self.lock, self.begun, self.last, self.step = {}, threading.Lock(), set(), None, 1
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scan-nulls",
                                       initializer=one_numba_thread if single else None)

    def _submit(self, chrom: str):
        if chrom not in self.found and self.remaining[chrom]:
            self.found[chrom] = self.pool.submit(self.build, chrom)
        return self.found.get(chrom)

    def _ahead(self, far: bool) -> None:
        """Start the build of the chromosome after the last one begun (``far``: of the first
        one after it not yet started), in the direction the scan goes."""
        at = self.last + self.step
        while far and 0 <= at < len(self.order) and self.order[at] in self.found:
            at += self.step
        if 0 <= at < len(self.order):
            self._submit(self.order[at])

    def __call__(self, chrom: str, done: bool = False):
        with self.lock:
            if done:
                self.remaining[chrom] -= 1
                if not self.remaining[chrom]:
                    self.found.pop(chrom, None)
                return None
            future = self._submit(chrom)
            if chrom not in self.begun:  # the chromosome's first block
                self.begun.add(chrom)
                at = self.order.index(chrom)
                # the direction the scan goes (dask's threaded scheduler runs these tasks
                # last-named first): from the previous chromosome begun, or from where it began
                if self.last is None:
                    self.step = -1 if at == len(self.order) - 1 else 1
                else:
                    self.step = 1 if at > self.last else -1
                self.last = at
                self._ahead(far=False)
            if not future.done() and sum(not f.done() for f in self.found.values()) < self.threads:
                self._ahead(far=True)  # this worker would wait: another build uses its core
        return future.result()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.found.clear()



COMMON_MAF = 0.01  # lambda_GC is also reported among variants at or above this minor allele frequency


def genomic_control(chisq: np.ndarray, a1freq: np.ndarray | None = None) -> dict[str, float]:
    """lambda_GC at the median and at the 1% and 0.1% upper quantiles of the 1-df chi-squares;
    with the ALLELE1 frequencies also ``common`` (the median's lambda among variants with
    MAF >= 1%) and ``n_common``.  A rare variant's test is discrete (a handful of carriers, and
    for a binary trait with few cases a handful among them), so its chi-square has no continuous
    median: with many rare variants the overall median moves away from 1 in either direction
    while the tails stay calibrated, which is what users of SAIGE report as a deflated lambda."""
    ok = np.isfinite(chisq)
    out = _lambdas(chisq[ok])
    if a1freq is not None:
        common = ok & (np.minimum(a1freq, 1 - a1freq) >= COMMON_MAF)
        out["common"] = _lambdas(chisq[common])["median"]
        out["n_common"] = int(common.sum())
    return out


def _lambdas(chisq: np.ndarray) -> dict[str, float]:
    from scipy import stats

    if not chisq.size:
        return {"median": float("nan"), "q0.01": float("nan"), "q0.001": float("nan")}
    out = {"median": float(np.median(chisq) / stats.chi2.ppf(0.5, 1))}
    for q in (0.01, 0.001):
        out[f"q{q}"] = float(np.quantile(chisq, 1 - q) / stats.chi2.ppf(1 - q, 1))
    return out


def lambda_text(lam: dict[str, float]) -> str:
    """The lambdas as one log phrase."""
    text = f"genomic control lambda {lam['median']:.4f} (median), {lam['q0.01']:.4f} (q 0.01), {lam['q0.001']:.4f} (q 0.001)"
    if "common" in lam:
        text += f"; {lam['common']:.4f} (median, the {lam['n_common']} variants with MAF >= {COMMON_MAF:g})"
    return text
