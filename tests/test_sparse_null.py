"""The null GLMM and exact score tests on a sparse GRM, by blocks of related samples, against the
dense path given the same sparse matrix (tau, phi, beta, -log10 P to 1e-6 relative) for all four
families; the block algebra against explicit dense matrices; bad input as one line."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from bed_reader import open_bed

from gwas_glmm import PlinkFileset, read_covariates, read_phenotypes
from gwas_glmm.cli import main
from gwas_glmm.exceptions import InputError
from gwas_glmm.gwas import score_test
from gwas_glmm.gwas.nullfit import fit_null_models
from gwas_glmm.gwas.store import load_nulls, null_header, save_nulls
from gwas_glmm.kinship import Kinship, components
from gwas_glmm.kinship.components import BlockKinship, Components
from gwas_glmm.kinship.sparse_grm import sparse_grm


@pytest.fixture(scope="module")
def sparse_kin(one_population_cohort):
    fs = PlinkFileset(one_population_cohort.bfile)
    matrix = sparse_grm(fs, cutoff=0.05)[0]
    return Kinship.from_array(matrix, iid=fs.samples.iid, fid=fs.samples.fid, meta={"source": "test sparse GRM"})


@pytest.fixture(scope="module")
def traits(sparse_kin, one_population_cohort, tmp_path_factory):
    """Phenotypes with a family effect drawn from the sparse GRM itself (latent variance 1), so
    that every family's tau is well away from 0: qt, bt (about 30% cases), count."""
    rng = np.random.default_rng(17)
    values, vectors = BlockKinship.of(sparse_kin.matrix).eigen()
    n = sparse_kin.n
    g = vectors @ (np.sqrt(values) * rng.standard_normal(n))
    age = read_covariates(one_population_cohort.covar, ["age"]).values[:, 0]
    eta = 0.02 * (age - age.mean()) + g
    cols = {"qt": eta + rng.standard_normal(n), "bt": (rng.random(n) < 1 / (1 + np.exp(-(eta - 1.0)))).astype(int),
            "count": rng.poisson(np.exp(0.5 + 0.5 * eta))}
    path = tmp_path_factory.mktemp("sparse_traits") / "traits.pheno"
    lines = ["FID\tIID\tqt\tbt\tcount"] + [f"{f}\t{i}\t{cols['qt'][k]:.6f}\t{cols['bt'][k]}\t{cols['count'][k]}"
                                            for k, (f, i) in enumerate(zip(sparse_kin.fid, sparse_kin.iid))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def dosages(one_population_cohort):
    g = open_bed(f"{one_population_cohort.bfile}.bed").read(index=np.s_[:, :300], dtype="float64")
    mean = np.nanmean(g, axis=0)
    return np.where(np.isnan(g), mean, g)


def _blocky(rng, n=80, psd=True):
    k = np.eye(n)
    perm = rng.permutation(n)
    for lo, hi in ((0, 3), (3, 9), (9, 11), (11, 16), (16, 18), (30, 37)):
        idx = perm[lo:hi]
        a = rng.standard_normal((hi - lo, 3))
        k[np.ix_(idx, idx)] += 0.3 * a @ a.T
    if not psd:
        idx = perm[40:42]
        k[np.ix_(idx, idx)] = [[1.0, 1.5], [1.5, 1.0]]
    return k


def test_block_algebra_equals_the_dense_matrices():
    rng = np.random.default_rng(5)
    k = _blocky(rng)
    blocks = BlockKinship.of(scipy.sparse.csr_matrix(k))
    assert sorted(blocks.components.sizes[blocks.components.sizes > 1]) == [2, 2, 3, 5, 6, 7]
    assert "largest 7, 6, 5, 3, 2" in blocks.components.summary()
    values, vectors = blocks.eigen()
    np.testing.assert_allclose((vectors @ scipy.sparse.diags(values) @ vectors.T).toarray(), k, atol=1e-12)
    d, tau = rng.uniform(0.5, 2.0, len(k)), 0.7
    sigma = np.diag(d) + tau * k
    factor = blocks.factor(d, tau)
    np.testing.assert_allclose(factor.inverse().toarray(), np.linalg.inv(sigma), atol=1e-12)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(sigma)[1], rel=1e-12)
    g = rng.standard_normal((len(k), 5))
    np.testing.assert_allclose(factor.solve(g), np.linalg.solve(sigma, g), atol=1e-12)
    np.testing.assert_allclose(np.sum(factor.whiten(g) ** 2, axis=0), np.einsum("ij,ij->j", g, np.linalg.solve(sigma, g)))
    for c in (blocks.matrix, scipy.sparse.csr_matrix(k)):  # the kinship's own blocks, and any sparse matrix
        assert factor.trace_inv(c) == pytest.approx(np.trace(np.linalg.solve(sigma, k)), rel=1e-12)
    with pytest.raises(InputError, match="not positive semi-definite"):
        BlockKinship.of(scipy.sparse.csr_matrix(_blocky(rng, psd=False))).eigen()
    with pytest.raises(InputError, match="group of related samples has 7 samples.*--max-block-memory"):
        Components.of(scipy.sparse.csr_matrix(k)).check_memory(1000, "grm.h5")


@pytest.mark.parametrize("chol", [False, True], ids=["dense-blocks", "sparse-cholesky"])
@pytest.mark.parametrize(("family", "column"), [("gaussian", "qt"), ("binomial", "bt"), ("poisson", "count"),
                                                ("negbin", "count")])
def test_sparse_null_and_exact_scores_equal_the_dense_path(one_population_cohort, sparse_kin, traits, dosages, family,
                                                           column, chol, monkeypatch):
    """``chol``: every group of 2 or more factorised by the sparse Cholesky path (kinship.sparse_chol),
    which by default takes only groups of 256 or more whose factor stays sparse."""
    if chol:
        monkeypatch.setattr(components, "SPARSE_MIN_SIZE", 2)
        monkeypatch.setattr(components, "SPARSE_FILL", 1.0)
    pheno = read_phenotypes(traits, [column]).for_family(family)
    covar = read_covariates(one_population_cohort.covar, ["age", "sex"])
    found = {}
    for sparse in (False, True):
        nulls, _, _, iid, _ = fit_null_models(sparse_kin, pheno, covar, family, sparse=sparse)
        found[sparse] = nulls[column]
    assert len(found[True].chol_parts) == (int(np.sum(Components.of(sparse_kin.matrix).sizes > 1)) if chol else 0)
    rows = np.searchsorted(sparse_kin.iid, iid) if np.all(sparse_kin.iid[:-1] < sparse_kin.iid[1:]) else \
        np.array([list(sparse_kin.iid).index(i) for i in iid])
    dense, sparse = found[False], found[True]
    assert sparse.is_sparse and not dense.is_sparse and "sparse GRM" in sparse.status["groups"] + sparse.status["method"]
    assert sparse.tau > 0.02  # away from the boundary (negbin: its dispersion, fitted first, takes the most)
    for key in ("tau", "phi"):
        assert getattr(sparse, key) == pytest.approx(getattr(dense, key), rel=1e-6), key
    np.testing.assert_allclose(sparse.beta, dense.beta, rtol=1e-6)
    g = sparse.rows(dosages[rows])
    keep = g.std(axis=0) > 0
    res = {k: score_test(m, g[:, keep], mode="exact") for k, m in found.items()}
    # 1e-6 relative; near P = 1 (-log10 P ~ 0.002) 1e-7 absolute: the two REML optimisations agree to ~1e-8
    np.testing.assert_allclose(res[True].log10p, res[False].log10p, rtol=1e-6, atol=1e-7)
    if family == "binomial":
        assert res[True].spa.any()  # the saddlepoint approximation took part, on both paths alike


def test_sparse_null_file_round_trip_and_cli_pipeline(one_population_cohort, traits, tmp_path, capsys):
    c = one_population_cohort
    grm = tmp_path / "sp.grm.h5"
    assert main(["grm", "--bfile", str(c.bfile), "--out", str(grm), "--sparse-cutoff", "0.05",
                 "--sparse-format", "gcta"]) == 0
    common = ["--pheno", str(traits), "--pheno-name", "bt", "--covar", str(c.covar), "--covar-name", "age", "sex"]
    assert main(["null", "--grm", str(grm), *common, "--out", str(tmp_path / "s")]) == 0
    log = (tmp_path / "s.log").read_text()
    assert "null model path: sparse GRM, by blocks of related samples (the file holds only a sparse GRM)" in log
    assert "no LOCO" in log and "groups of related samples" in log
    # the same matrix from GCTA's sparse format, fitted densely
    assert main(["null", "--grm", str(tmp_path / "sp.grm.sp"), *common, "--no-sparse", "--out", str(tmp_path / "d")]) == 0
    head = null_header(tmp_path / "s.null.h5")
    assert head.sparse and not null_header(tmp_path / "d.null.h5").sparse
    nulls, fid, iid, _ = load_nulls(tmp_path / "s.null.h5")
    again = tmp_path / "again.null.h5"
    save_nulls(again, nulls, fid=fid, iid=iid)
    assert abs(load_nulls(again)[0]["bt"].whitener - nulls["bt"].whitener).max() == 0
    for name in ("s", "d"):
        assert main(["scan", "--bfile", str(c.bfile), "--null", str(tmp_path / f"{name}.null.h5"),
                     "--out", str(tmp_path / f"scan_{name}")]) == 0
    assert "(exact mode)" in (tmp_path / "scan_s.log").read_text()
    capsys.readouterr()
    assert main(["null", "--grm", str(grm), *common, "--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    assert main(["scan", "--bfile", str(c.bfile), "--null", str(tmp_path / "s.null.h5"), "--out", str(tmp_path / "dry"),
                 "--dry-run", "--cluster", "slurm", "--cluster-jobs", "50"]) == 0
    err = capsys.readouterr().err
    assert "null (dry run)" in err and "groups of related samples in dense blocks (largest" in err
    assert "exact mode on sparse-GRM null models" in err and "with 50 jobs of" in err
    assert not list(tmp_path.glob("dry*.h5"))
    import pandas as pd

    s = pd.read_csv(tmp_path / "scan_s.bt.tsv.gz", sep="\t")
    d = pd.read_csv(tmp_path / "scan_d.bt.tsv.gz", sep="\t")
    assert len(s) == len(d) > 1000
    np.testing.assert_allclose(s.LOG10P, d.LOG10P, rtol=1e-5, atol=1e-6)  # the files' 6 significant digits
    # the same scan on a dask.distributed cluster: the sparse null travels to the workers
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert main(["scan", "--bfile", str(c.bfile), "--null", str(tmp_path / "s.null.h5"), "--out",
                     str(tmp_path / "scan_dask"), "--scheduler", cluster.scheduler_address]) == 0
    assert (tmp_path / "scan_dask.bt.tsv.gz").read_bytes() == (tmp_path / "scan_s.bt.tsv.gz").read_bytes()


def test_sparse_null_bad_input_is_one_line(one_population_cohort, small_cohort, tmp_path, capsys):
    c = one_population_cohort
    grm = tmp_path / "sp.grm.h5"
    assert main(["grm", "--bfile", str(c.bfile), "--out", str(grm), "--sparse-cutoff", "0.05"]) == 0
    capsys.readouterr()

    def fails(args, message):
        out = tmp_path / "bad"
        assert main([*args, "--out", str(out)]) == 1
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
        assert not list(tmp_path.glob("bad*.h5")) and not list(tmp_path.glob("bad*.tsv.gz"))

    # phenotyped samples that the sparse GRM lacks: those of another cohort
    pheno = tmp_path / "more.pheno"
    extra = "\n".join(f"X{k}\tX{k}_1\t{k % 3}.5" for k in range(4))
    pheno.write_text(c.pheno.read_text().split("\n", 1)[0].split("\t", 2)[0] + "\tIID\tqt\n"
                     + "\n".join("\t".join(line.split("\t")[:3]) for line in c.pheno.read_text().splitlines()[1:])
                     + "\n" + extra + "\n")
    fails(["null", "--grm", str(grm), "--pheno", str(pheno)], "phenotyped samples in")
    assert "are not in the sparse GRM, first X0 X0_1 (row 601)" in (tmp_path / "bad.log").read_text()
    # a family too large for the memory allowed
    fails(["null", "--grm", str(grm), "--pheno", str(c.pheno), "--pheno-name", "qt", "--max-block-memory", "1e-9"],
          "--max-block-memory")
    fails(["null", "--grm", str(small_cohort.bfile) + ".fam", "--pheno", str(c.pheno), "--sparse"], "kinship")
    # an option of the sparse path given to a dense fit is not silently ignored
    dense = tmp_path / "dense.grm.h5"
    assert main(["grm", "--bfile", str(c.bfile), "--out", str(dense), "--no-loco"]) == 0
    capsys.readouterr()
    fails(["null", "--grm", str(dense), "--pheno", str(c.pheno), "--pheno-name", "qt", "--max-block-memory", "4"],
          "--max-block-memory bounds the sparse path")
    # a sparse null scanned against a fileset with other samples
    assert main(["null", "--grm", str(grm), "--pheno", str(c.pheno), "--pheno-name", "qt", "--out",
                 str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    fails(["scan", "--bfile", str(small_cohort.bfile), "--null", str(tmp_path / "ok.null.h5")],
          "samples of the null model are not in")


def test_several_phenotypes_and_a_subset_on_the_sparse_path(one_population_cohort, sparse_kin, traits, tmp_path):
    """Two phenotypes in one call, one observed on a subset of the samples: each fitted on its own
    samples (its index), the sparse GRM restricted to them, as the dense path does."""
    text = traits.read_text().splitlines()
    lines = [text[0]] + [line if k % 5 else "\t".join(line.split("\t")[:2] + ["NA"] + line.split("\t")[3:])
                         for k, line in enumerate(text[1:])]
    path = tmp_path / "subset.pheno"
    path.write_text("\n".join(lines) + "\n")
    pheno = read_phenotypes(path, ["qt", "count"])
    covar = read_covariates(one_population_cohort.covar, ["age", "sex"])
    fits = {sparse: fit_null_models(sparse_kin, pheno, covar, "gaussian", sparse=sparse)[0] for sparse in (False, True)}
    assert fits[True]["qt"].index is not None and len(fits[True]["qt"].index) == 480
    assert fits[True]["count"].index is None
    for name in ("qt", "count"):
        assert fits[True][name].tau == pytest.approx(fits[False][name].tau, rel=1e-6)
        np.testing.assert_allclose(fits[True][name].beta, fits[False][name].beta, rtol=1e-6)


def test_sizing_of_the_sparse_path_has_no_n_squared_term():
    """At N = 500,000 the sparse null and the exact scan on it fit in a few GiB (the dense ones
    would need n^2 doubles: 1.8 TiB); the binary scan adds the saddlepoint approximation."""
    from gwas_glmm import sizing

    speed = sizing.MachineSpeed(sgemm=2e11, dgemm=1e11, cores=4)
    sizes = np.full(40_000, 5)
    n, w_nnz = 500_000, 500_000 + 40_000 * 25
    null = sizing.estimate_null_sparse(n, 13, 1, family="binomial", sizes=sizes, nnz=1_500_000, speed=speed, base=0)
    qt = sizing.estimate_scan(n, 1_000_000, ["gaussian"], mode="exact", block=1024, threads=4, p=13, speed=speed,
                              base=0, sparse_nnz=w_nnz)
    bt = sizing.estimate_scan(n, 1_000_000, ["binomial"], mode="exact", block=1024, threads=4, p=13, speed=speed,
                              base=0, sparse_nnz=w_nnz)
    assert null.memory < 2**30 and qt.memory < 4 * 2**30 and bt.seconds > qt.seconds
    assert "sparse-GRM null models" in qt.lines()[1]


def test_a_trait_without_family_effect_is_at_the_boundary_with_a_note(sparse_kin):
    from gwas_glmm.gwas.null import fit_null

    rng = np.random.default_rng(3)
    x = np.ones((sparse_kin.n, 1))
    found = [fit_null(rng.standard_normal(sparse_kin.n), x, sparse_kin, "gaussian", sparse=True) for _ in range(8)]
    at_zero = [m for m in found if m.status["boundary"]]
    assert at_zero, [m.tau for m in found]  # noise alone puts tau at 0 in some draws
    for m in at_zero:
        assert m.tau < 1e-3 * m.phi and not m.status["converged"] and "boundary" in m.status["warnings"][0]
    assert all(m.status["converged"] for m in found if not m.status["boundary"])
