"""Principal components by the streamed randomized method: against a dense eigendecomposition of
the same matrix (the oracle), against plink2 --pca (tests/data, scripts/make_reference/
plink2_pca.sh), with relatives projected, on dask, and from the command line."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from conftest import DATA

from gwas_glmm import PlinkFileset
from gwas_glmm.genotype import iter_blocks
from gwas_glmm.kinship._grm_numba import standardize_inplace
from gwas_glmm.kinship.pca import PcaConfig, randomized_pca, unrelated_samples

STRUCTURE_PCS = 2  # sim_pca: 3 populations


@pytest.fixture(scope="module")
def fileset():
    return PlinkFileset(DATA / "sim_pca")


def dense_oracle(fs, config: PcaConfig, rows=None):
    """(S X X^T S / M, X, s) built explicitly: X standardized over ``rows`` (default all)."""
    rows = np.arange(fs.n_samples) if rows is None else rows
    parts, missing = [], np.zeros(fs.n_samples)
    for block in iter_blocks(fs, samples=rows, filters=config.filters()):
        z = np.array(block.dosages, dtype=np.float64, order="F")
        missing += np.isnan(z).sum(axis=1) if len(rows) == fs.n_samples else 0
        standardize_inplace(z, block.stats.a1freq)
        parts.append(z)
    x = np.hstack(parts)
    m = x.shape[1]
    s = m / (m - missing[rows]) if config.missing == "gcta" else np.ones(len(rows))
    return (s[:, None] * x) @ (s[:, None] * x).T / m, x, s


@pytest.mark.parametrize("missing", ["gcta", "mean-impute"])
def test_structure_pcs_equal_the_dense_eigendecomposition(fileset, missing):
    config = PcaConfig(n_pcs=6, missing=missing)
    result = randomized_pca(fileset, config=config)
    a, _, _ = dense_oracle(fileset, config)
    values, vectors = np.linalg.eigh(a)
    values, vectors = values[::-1], vectors[:, ::-1]
    np.testing.assert_allclose(result.values[:STRUCTURE_PCS], values[:STRUCTURE_PCS], rtol=1e-8)
    for j in range(STRUCTURE_PCS):
        assert abs(vectors[:, j] @ result.vectors[:, j]) > 1 - 1e-8
    # the noise PCs: eigenvalues within 2% (the bulk has no gaps for them to converge on one by one)
    np.testing.assert_allclose(result.values, values[: config.n_pcs], rtol=0.02)
    assert np.allclose(np.linalg.norm(result.vectors, axis=0), 1.0)
    assert result.passes == config.iterations + 2 and result.in_pca.all()


def test_structure_pcs_match_plink2(fileset):
    """plink2 --pca 10 (exact) on the same markers; its GRM averages each pair over the variants
    called in both, which the gcta mode's per-sample scaling approximates."""
    result = randomized_pca(fileset, config=PcaConfig(n_pcs=10))
    theirs = np.loadtxt(DATA / "sim_pca.plink2.eigenvec", usecols=range(2, 12), skiprows=1)
    their_values = np.loadtxt(DATA / "sim_pca.plink2.eigenval")
    ids = np.loadtxt(DATA / "sim_pca.plink2.eigenvec", usecols=1, dtype=str, skiprows=1)
    assert list(ids) == list(result.iid)
    assert their_values[STRUCTURE_PCS - 1] > 4 * their_values[STRUCTURE_PCS]  # structure stands above the bulk
    for j in range(STRUCTURE_PCS):
        assert abs(np.corrcoef(theirs[:, j], result.vectors[:, j])[0, 1]) > 0.99
    np.testing.assert_allclose(result.values[:STRUCTURE_PCS], their_values[:STRUCTURE_PCS], rtol=0.01)
    np.testing.assert_allclose(result.values, their_values, rtol=0.03)


def test_relatives_are_projected_where_they_would_sit(fileset):
    config = PcaConfig(n_pcs=4, missing="mean-impute")
    rng = np.random.default_rng(3)
    mask = rng.random(fileset.n_samples) < 0.8
    result = randomized_pca(fileset, config=config, in_pca=mask)
    inside = np.flatnonzero(mask)
    a, x_in, _ = dense_oracle(fileset, config, rows=inside)
    values, vectors = np.linalg.eigh(a)
    u = vectors[:, ::-1][:, :STRUCTURE_PCS]
    assert np.all(np.abs(np.sum(u * result.vectors[inside, :STRUCTURE_PCS], axis=0)) > 1 - 1e-8)
    # the projection, by its formula from the dense matrices: x_r X_in^T u / (M lambda), with
    # every sample standardized by the frequencies of the PCA samples
    freqs = np.concatenate([b.stats.a1freq for b in iter_blocks(fileset, samples=inside, filters=config.filters())])
    kept = np.concatenate([b.variant_index for b in iter_blocks(fileset, samples=inside, filters=config.filters())])
    z = np.array(fileset.read(None, kept), dtype=np.float64, order="F")
    standardize_inplace(z, freqs)
    m = len(kept)
    expected = z[~mask] @ (x_in.T @ result.vectors[inside]) / (m * result.values)
    np.testing.assert_allclose(result.vectors[~mask], expected, rtol=1e-5, atol=5e-7)  # float32 products
    # a PCA sample projected by the same formula lands on its own value of a converged PC (noise
    # PCs are Ritz vectors of the Krylov space, not exact eigenvectors: they need not)
    k = STRUCTURE_PCS
    np.testing.assert_allclose(z[inside[:5]] @ (x_in.T @ result.vectors[inside, :k]) / (m * result.values[:k]),
                               result.vectors[inside[:5], :k], rtol=1e-5, atol=5e-7)
    assert not result.in_pca[~mask].any()


def test_the_unrelated_set_leaves_no_related_pair_and_keeps_the_unrelated():
    a = np.eye(7)
    for i, j, v in ((0, 1, 0.5), (1, 2, 0.5), (0, 2, 0.25), (3, 4, 0.1), (4, 5, 0.03)):
        a[i, j] = a[j, i] = v
    keep = unrelated_samples(scipy.sparse.csr_matrix(a), 0.05)
    # 0-1-2: dropping 1 leaves 0-2 (0.25), so two go; 3-4: one goes; 5 and 6 stay (0.03 < cutoff)
    assert keep.sum() == 4 and keep[5] and keep[6] and keep[3] != keep[4]
    kept = np.flatnonzero(keep)
    sub = a[np.ix_(kept, kept)]
    assert np.all(sub[~np.eye(len(kept), dtype=bool)] < 0.05)


def test_dask_passes_give_the_same_pcs(fileset):
    distributed = pytest.importorskip("distributed")
    config = PcaConfig(n_pcs=4, chunk_variants=700)
    local = randomized_pca(fileset, config=config)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        remote = randomized_pca(fileset, config=config, client=client)
    np.testing.assert_allclose(remote.vectors, local.vectors, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(remote.values, local.values, rtol=1e-12)


def test_cli_writes_plink2_layout_read_by_covar(tmp_path, capsys):
    from gwas_glmm.cli import main
    from gwas_glmm.io.pheno import read_covariates

    out = tmp_path / "pcs"
    assert main(["pca", "--bfile", str(DATA / "sim_pca"), "--n-pcs", "5", "--out", str(out)]) == 0
    header = (tmp_path / "pcs.eigenvec").read_text().splitlines()[0]
    assert header == "#FID\tIID\tPC1\tPC2\tPC3\tPC4\tPC5"
    assert len(np.loadtxt(tmp_path / "pcs.eigenval")) == 5
    table = read_covariates(tmp_path / "pcs.eigenvec")
    assert table.names == ["PC1", "PC2", "PC3", "PC4", "PC5"] and len(table.iid) == 600
    assert "passes over the .bed" in (tmp_path / "pcs.log").read_text()
    capsys.readouterr()
    for bad, message in ((["--n-pcs", "0"], "--n-pcs"), (["--n-pcs", "700"], "need more than"),
                         (["--unrelated-cutoff", "0.1"], "--unrelated-cutoff goes with --sparse-grm"),
                         (["--thin-count", "15"], "variants pass the PCA filters")):
        assert main(["pca", "--bfile", str(DATA / "sim_pca"), "--out", str(tmp_path / "bad"), *bad]) == 1
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
        assert not (tmp_path / "bad.eigenvec").exists()


def test_cli_pca_on_unrelated_samples_from_a_sparse_grm(tmp_path, capsys):
    from gwas_glmm.cli import main

    grm = tmp_path / "rel"
    assert main(["grm", "--bfile", str(DATA / "sim_pca"), "--sparse-cutoff", "0.2", "--out", str(grm),
                 "--sparse-format", "gcta"]) == 0
    assert main(["pca", "--bfile", str(DATA / "sim_pca"), "--n-pcs", "3", "--sparse-grm", str(tmp_path / "rel.grm.sp"),
                 "--out", str(tmp_path / "u")]) == 0
    log = (tmp_path / "u.log").read_text()
    assert "relatives will be projected" in log and "projected) on" in log
    pcs = np.loadtxt(tmp_path / "u.eigenvec", usecols=(2, 3, 4), skiprows=1)
    assert pcs.shape == (600, 3) and np.isfinite(pcs).all()
    (tmp_path / "other.grm.sp").write_text("0\t0\t1\n")
    (tmp_path / "other.grm.id").write_text("X\tnobody\n")
    capsys.readouterr()
    assert main(["pca", "--bfile", str(DATA / "sim_pca"), "--sparse-grm", str(tmp_path / "other.grm.sp"),
                 "--out", str(tmp_path / "bad")]) == 1
    assert "have no row in the kinship matrix" in capsys.readouterr().err.strip().splitlines()[-1]
