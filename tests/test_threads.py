"""Thread counts from what the process may use (affinity mask, cgroup quota, scheduler
variables; --threads wins), logged by every command; the kernels' thread choices; LOCO
chromosomes in parallel giving the serial results; dask workers running each block's kernels on
one thread."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.linalg
from threadpoolctl import threadpool_info

from gwas_glmm import _threads, load_kinship, read_covariates, read_phenotypes
from gwas_glmm._blas import cholesky_in_pieces, eigh_in_pieces, inverse_diagonal
from gwas_glmm.cli import main
from gwas_glmm.gwas import nullfit


@pytest.fixture(autouse=True)
def restore_threads():
    """Every test leaves the process's thread settings as the suite found them."""
    before = numba.get_num_threads()
    _threads._LAST_PROBE.clear()
    yield
    _threads._LAST_PROBE.clear()
    _threads.configure(None)
    numba.set_num_threads(before)


def _cgroup(tmp_path, v2=None, quota=None, period=100000):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if quota is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    return tmp_path


def test_the_affinity_mask_bounds_the_count(tmp_path):
    found = _threads.detect({}, affinity=3, cgroup_root=tmp_path, machine=64)
    assert (found.count, found.source) == (3, "affinity mask")
    assert "3 threads (affinity mask; 64 CPUs on the machine)" == found.describe()


@pytest.mark.parametrize(("v2", "quota", "expected"), [("200000 100000", None, 2), ("150000 100000", None, 2),
                                                       ("max 100000", None, None), (None, 250000, 3),
                                                       (None, -1, None), (None, None, None)])
def test_cgroup_quota_v1_and_v2(tmp_path, v2, quota, expected):
    assert _threads.cgroup_cpus(_cgroup(tmp_path, v2, quota)) == expected
    found = _threads.detect({}, affinity=8, cgroup_root=tmp_path, machine=8)
    assert found.count == (expected or 8)
    assert found.source == ("cgroup CPU quota" if expected else "affinity mask")


@pytest.mark.parametrize(("env", "count", "source"), [
    ({"SLURM_CPUS_PER_TASK": "4"}, 4, "SLURM_CPUS_PER_TASK=4"),
    ({"SLURM_CPUS_ON_NODE": "6(x2)"}, 6, "SLURM_CPUS_ON_NODE=6"),
    ({"SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "16"}, 4, "SLURM_CPUS_PER_TASK=4"),
    ({"PBS_NUM_PPN": "5"}, 5, "PBS_NUM_PPN=5"),
    ({"NSLOTS": "7", "OMP_NUM_THREADS": "3,2"}, 3, "OMP_NUM_THREADS=3"),
    ({"LSB_DJOB_NUMPROC": "0", "NCPUS": "x"}, 16, "affinity mask"),  # not a positive count: ignored
    ({"SLURM_CPUS_PER_TASK": "32"}, 16, "affinity mask"),  # more than the mask allows: the mask wins
])
def test_scheduler_variables_bound_the_count(tmp_path, env, count, source):
    found = _threads.detect(env, affinity=16, cgroup_root=tmp_path, machine=64)
    assert (found.count, found.source) == (count, source)


def test_a_tie_is_credited_to_the_most_trusted_source_and_nothing_found_is_the_machine(tmp_path):
    found = _threads.detect({"SLURM_CPUS_PER_TASK": "4"}, affinity=4, cgroup_root=_cgroup(tmp_path, "400000 100000"))
    assert found.source == "affinity mask" and len(found.bounds) == 3
    assert "also cgroup CPU quota 4, SLURM_CPUS_PER_TASK 4" in found.describe()
    bare = _threads.detect({}, affinity=None, cgroup_root=tmp_path / "none", machine=12)
    assert (bare.count, bare.source) == (12, "all CPUs of the machine")


def test_configure_applies_the_count_and_threads_wins(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    chosen = _threads.configure(None)
    assert chosen.count == 1 and chosen.source == "SLURM_CPUS_PER_TASK=1"
    assert numba.get_num_threads() == 1
    assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
    assert _threads.thread_count() == 1 and _threads.thread_count(5) == 5
    forced = _threads.configure(2)
    assert forced.source == "--threads" and forced.count == 2
    assert all(lib["num_threads"] == 2 for lib in threadpool_info() if lib["user_api"] == "blas")


def test_every_command_logs_the_count_it_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert main(["simulate", "--n-samples", "50", "--n-variants", "100", "--out", str(tmp_path / "c")]) == 0
    assert "threads: 1 thread (SLURM_CPUS_PER_TASK=1;" in (tmp_path / "c.log").read_text()
    assert main(["freq", "--bfile", str(tmp_path / "c"), "--out", str(tmp_path / "f"), "--threads", "2"]) == 0
    assert "threads: 2 threads (--threads;" in (tmp_path / "f.log").read_text()


def test_dense_factorisations_use_one_thread_when_small_or_when_the_cpus_are_taken(monkeypatch):
    monkeypatch.setattr(_threads, "allowance", lambda: _threads.CpuAllowance(4, "test"))
    monkeypatch.setattr(_threads, "free_cpus", lambda interval=0.05: 3.5)
    assert _threads.dense_threads(500) == 1 and _threads.dense_threads(3000) == 4
    monkeypatch.setattr(_threads, "free_cpus", lambda interval=0.05: 0.4)  # two busy processes on our CPUs
    assert _threads.dense_threads(3000) == 1
    assert _threads.dense_plan(3000) == _threads.DensePlan(1, 4) and _threads.dense_plan(500) == _threads.DensePlan(1)


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_eigh_in_pieces_equals_lapack_syevd(pieces):
    rng = np.random.default_rng(pieces)
    z = rng.standard_normal((300, 120))
    a = z @ z.T / 120 + np.diag(rng.uniform(0, 0.1, 300))
    kept = a.copy()
    values, vectors = eigh_in_pieces(a, pieces)
    assert np.array_equal(a, kept)  # not overwritten unless asked
    expected = scipy.linalg.eigh(kept, eigvals_only=True)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12 * expected[-1])
    np.testing.assert_allclose((vectors * values) @ vectors.T, kept, atol=1e-12)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(300), atol=1e-12)
    with pytest.raises(ValueError):
        eigh_in_pieces(a.astype(np.float32), pieces)


def test_eigendecomposition_under_contention_gives_the_idle_result(monkeypatch):
    from gwas_glmm.kinship.eigen import eigendecompose

    rng = np.random.default_rng(5)
    z = rng.standard_normal((1200, 400))
    k = (z @ z.T / 400).astype(np.float32)
    monkeypatch.setattr(_threads, "allowance", lambda: _threads.CpuAllowance(2, "test"))
    monkeypatch.setattr(_threads, "free_cpus", lambda interval=0.05: 2.0)
    idle = eigendecompose(k)
    calls = []
    import gwas_glmm._blas as blas

    real = blas.eigh_in_pieces
    monkeypatch.setattr(blas, "eigh_in_pieces", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    monkeypatch.setattr(_threads, "free_cpus", lambda interval=0.05: 0.3)
    busy = eigendecompose(k)
    assert calls == [2]
    np.testing.assert_allclose(busy.values, idle.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(busy.reconstruct(), idle.reconstruct(), atol=1e-10)
    assert (busy.rank, busy.n_clipped) == (idle.rank, idle.n_clipped)


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_cholesky_in_pieces_equals_lapack(pieces):
    rng = np.random.default_rng(pieces)
    n = 700  # panels of 256 and a last one of 188
    z = rng.standard_normal((n, 300))
    a = z @ z.T / 300 + np.diag(rng.uniform(0.05, 0.5, n))
    expected = np.linalg.cholesky(a)
    for order in ("C", "F"):
        got = cholesky_in_pieces(np.array(a, order=order), pieces)
        assert got.flags.f_contiguous
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    bad = a.copy()
    bad[400, 400] = -1.0
    with pytest.raises(np.linalg.LinAlgError, match="info 401"):
        cholesky_in_pieces(bad, pieces)


@pytest.mark.parametrize("workers", [1, 2])
def test_inverse_diagonal_is_the_diagonal_of_the_inverse(workers):
    rng = np.random.default_rng(7)
    z = rng.standard_normal((600, 200))
    a = z @ z.T / 200 + np.eye(600)
    chol = np.asfortranarray(np.linalg.cholesky(a))
    np.testing.assert_allclose(inverse_diagonal(chol, workers), np.diag(np.linalg.inv(a)), rtol=1e-12)


@pytest.mark.parametrize("taus", [[0.7], [0.5, 0.2], [1e-9]])
def test_pql_traces_equal_the_brute_force_traces(taus):
    """The AI-REML step's traces from the diagonal of Sigma^-1 (one K) or from Sigma^-1 (several K,
    or tau near 0) equal tr(Sigma^-1 C) computed by explicit inversion."""
    from gwas_glmm.mixed.pql import DenseSigma

    rng = np.random.default_rng(11)
    n = 1100  # above the size at which the factorisation may run in pieces
    mats = []
    for _ in taus:
        z = rng.standard_normal((n, 150))
        mats.append(z @ z.T / 150)
    w = rng.uniform(0.05, 0.25, n)  # binomial working weights
    sigma = DenseSigma(w, 1.0, np.array(taus), mats)
    inverse = np.linalg.inv(np.diag(1.0 / w) + sum(t * k for t, k in zip(taus, mats)))
    expected = [np.sum(np.diag(inverse) / w)] + [np.sum(inverse * k) for k in mats]
    np.testing.assert_allclose(sigma.component_traces(), expected, rtol=1e-9)


def test_pql_fit_under_contention_gives_the_idle_result(monkeypatch):
    """When the probe finds the CPUs taken, every factorisation of the PQL fit runs in pieces, and
    the fit is the idle one to rounding."""
    import gwas_glmm._blas as blas
    from gwas_glmm.mixed.pql import fit_pql

    rng = np.random.default_rng(3)
    n = 1100
    z = rng.standard_normal((n, 200))
    k = z @ z.T / 200
    x = np.column_stack([np.ones(n), rng.standard_normal(n)])
    eta = -1 + 0.3 * x[:, 1] + z[:, :50] @ rng.standard_normal(50) * 0.1
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    monkeypatch.setattr(_threads, "allowance", lambda: _threads.CpuAllowance(2, "test"))
    monkeypatch.setattr(_threads, "free_cpus", lambda interval=0.05: 2.0)
    idle = fit_pql(y, x, [("grm", k)], "binomial")
    calls = []
    real = blas.cholesky_in_pieces
    monkeypatch.setattr(blas, "cholesky_in_pieces", lambda a, p: calls.append(p) or real(a, p))
    monkeypatch.setattr(_threads, "free_cpus", lambda interval=0.05: 0.3)
    _threads._LAST_PROBE.clear()
    busy = fit_pql(y, x, [("grm", k)], "binomial")
    assert calls and set(calls) == {2}
    assert busy.n_evaluations == idle.n_evaluations
    np.testing.assert_allclose(busy.beta, idle.beta, rtol=1e-10)
    np.testing.assert_allclose(busy.theta, idle.theta, rtol=1e-10)
    np.testing.assert_allclose(busy.extra["working"].py, idle.extra["working"].py, rtol=1e-8, atol=1e-12)


def test_free_cpus_is_a_share_of_the_allowed_cpus():
    free = _threads.free_cpus(0.02)
    assert 0.0 <= free <= _threads.allowance().count


def test_a_small_fit_runs_its_kernels_on_one_thread_and_restores_the_setting():
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    before = numba.get_num_threads()
    with _threads.fit_threads(1000, width=10):
        assert numba.get_num_threads() == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
    assert numba.get_num_threads() == before
    blas_before = sorted(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
    with _threads.fit_threads(1000, width=9):  # every product serial in BLAS anyway: left alone
        assert numba.get_num_threads() == 1
        assert sorted(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas") == blas_before
    with _threads.fit_threads(_threads.PARALLEL_KERNELS_FROM):
        assert numba.get_num_threads() == before


def test_loco_chromosomes_in_parallel_give_the_serial_parts(small_cohort, tmp_path, monkeypatch):
    path = tmp_path / "g.grm.h5"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(path), "--eigen", "--missing",
                 "mean-impute"]) == 0
    prefix = small_cohort.prefix
    original = nullfit.loco_workers
    for trait, family in (("qt", "gaussian"), ("bt1", "binomial")):
        runs = []
        for workers in (1, 3):
            monkeypatch.setattr(nullfit, "loco_workers", lambda n, chromosomes, w=workers: w)
            runs.append(nullfit.fit_null_models(load_kinship(path), read_phenotypes(f"{prefix}.pheno", [trait]),
                                                read_covariates(f"{prefix}.covar", ["age", "sex"]), family,
                                                loco_from=path, bfile=str(small_cohort.bfile))[0][trait])
        serial, parallel = runs
        assert list(serial.loco) == list(parallel.loco) and len(serial.loco) == 22  # the file's order
        assert serial.fast_rank == parallel.fast_rank
        for chrom in serial.loco:
            np.testing.assert_allclose(parallel.loco[chrom].py, serial.loco[chrom].py, rtol=1e-9, atol=1e-12)
            assert parallel.loco[chrom].ratio == pytest.approx(serial.loco[chrom].ratio, rel=1e-9)
    assert 1 <= original(3000, 21) <= _threads.thread_count()


def test_a_dask_worker_with_several_threads_runs_each_blocks_kernels_on_one_thread():
    """A worker process of its own (as `dask worker` or --cluster starts them), two threads."""
    from distributed import Client, LocalCluster

    from gwas_glmm.gwas import cluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as lc, \
            Client(lc) as client:
        assert client.submit(cluster.on_worker, _threads.kernel_threads, pure=False).result() == \
            {"numba": 1, "blas": [1]}
    assert "export OPENBLAS_NUM_THREADS=1" in cluster._ONE_THREAD_KERNELS
