"""The sparse GRM built panel by panel (never n x n) against the dense GRM: every kept entry
equals the dense one to float32 precision, nothing at or above the cutoff is missing, the
summary counts related groups; a cutoff outside (0, 1) is one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from gwas_glmm import PlinkFileset
from gwas_glmm.exceptions import InputError
from gwas_glmm.kinship import GrmConfig, compute_grm
from gwas_glmm.kinship.sparse_grm import panel_rows, sparse_grm, summarize


@pytest.mark.parametrize(("missing", "panel", "double"), [("gcta", 64, False), ("mean-impute", 100, False),
                                                           ("gcta", None, False), ("gcta", 64, True)])
def test_kept_entries_equal_the_dense_grm_and_none_above_the_cutoff_is_missed(small_cohort, missing, panel, double):
    fs = PlinkFileset(small_cohort.bfile)
    config = GrmConfig(missing=missing, double=double)
    rtol = 1e-10 if double else 1e-5  # --double: float64 products and entries, as the dense path
    dense = compute_grm(fs, config=config)[0].matrix.astype(np.float64)
    cutoff = 0.05
    matrix, summary, meta = sparse_grm(fs, cutoff=cutoff, config=config, panel=panel)
    assert isinstance(matrix, scipy.sparse.csr_matrix) and matrix.shape == dense.shape
    assert (matrix != matrix.T).nnz == 0
    r, c = matrix.nonzero()
    np.testing.assert_allclose(np.asarray(matrix[r, c]).ravel(), dense[r, c], rtol=rtol, atol=rtol / 10)
    np.testing.assert_allclose(matrix.diagonal(), np.diag(dense), rtol=rtol)
    off = r != c
    assert dense[r[off], c[off]].min() >= cutoff - 1e-6  # nothing kept below the cutoff
    above = np.argwhere(np.triu(dense, 1) >= cutoff + 1e-6)
    assert len(above) > 20  # the cohort's families: the check has pairs to find
    kept = set(zip(r.tolist(), c.tolist()))
    assert all((j, k) in kept for j, k in above.tolist())
    assert summary.pairs == off.sum() // 2 and meta["n_variants"] > 0
    assert summary.singletons + sum(summary.groups) == dense.shape[0]


def test_a_subset_of_samples_in_any_order_gives_the_dense_grm_of_that_subset(small_cohort):
    fs = PlinkFileset(small_cohort.bfile)
    samples = np.random.default_rng(3).permutation(fs.n_samples)[:170]
    dense = compute_grm(fs, samples=samples)[0].matrix.astype(np.float64)
    matrix = sparse_grm(fs, cutoff=0.05, samples=samples, panel=40)[0]
    r, c = matrix.nonzero()
    np.testing.assert_allclose(np.asarray(matrix[r, c]).ravel(), dense[r, c], rtol=1e-5, atol=1e-6)
    above = np.argwhere(np.tril(dense, -1) >= 0.05 + 1e-6)
    assert len(above) > 5 and all(matrix[j, k] != 0 for j, k in above.tolist())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardized_tiles_from_the_bed_bytes_equal_the_generic_reader(small_cohort, dtype):
    """The .bed's numba decoder of a tile (samples in any order, variants in chunks) against the
    generic path through read() and the dense GRM's standardization."""
    from gwas_glmm.io.plink import GenotypeFileset
    from gwas_glmm.kinship._grm_numba import standardize_inplace

    fs = PlinkFileset(small_cohort.bfile)
    rng = np.random.default_rng(5)
    samples = rng.permutation(fs.n_samples)[:123]
    variants = np.sort(rng.choice(fs.n_variants, 700, replace=False))
    x = fs.read(samples, variants)
    freq = np.nanmean(x, axis=0) / 2
    freq[:3] = [0.0, 1.0, 0.0]  # monomorphic: all zeros
    z, counts, words = fs.read_standardized(samples, variants, freq, dtype=dtype, missing=True)
    zg, counts_g, words_g = GenotypeFileset.read_standardized(fs, samples, variants, freq, dtype=dtype, missing=True)
    expected = np.array(x, dtype=dtype, order="F")
    standardize_inplace(expected, freq)
    nan = np.isnan(x)
    assert nan.sum() > 100 and z.flags.c_contiguous and z.dtype == dtype
    np.testing.assert_allclose(z, expected, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    np.testing.assert_allclose(zg, expected, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    assert (z[:, :3] == 0).all()
    np.testing.assert_array_equal(counts, nan.sum(axis=1))
    np.testing.assert_array_equal(counts_g, counts)
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :len(variants)].astype(bool)
    np.testing.assert_array_equal(bits, nan)
    np.testing.assert_array_equal(words_g, words)


def test_the_summary_counts_groups_of_relatives():
    a = np.eye(6)
    a[0, 1] = a[1, 0] = a[1, 2] = a[2, 1] = 0.25  # 0-1-2 one group through 1
    a[3, 4] = a[4, 3] = 0.5
    s = summarize(scipy.sparse.csr_matrix(a), 0.05, 10)
    assert (s.pairs, s.groups, s.singletons) == (3, (3, 2), 1)
    assert "3 related pairs kept" in s.lines()[0] and "3, 2" in s.lines()[1]


@pytest.mark.parametrize("cutoff", [0.0, 1.0, -0.1, 1.5])
def test_a_cutoff_outside_zero_one_is_one_error(small_cohort, cutoff):
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        sparse_grm(PlinkFileset(small_cohort.bfile), cutoff=cutoff)


def test_noise_pairs_and_the_markers_that_avoid_them():
    from scipy import stats

    from gwas_glmm.kinship.sparse_grm import markers_needed, noise_pairs

    # N = 100,000 at 0.05: one spurious pair expected at about 15,600 markers, none to speak of at 20,000
    assert 15_000 < markers_needed(100_000, 0.05) < 16_500 and noise_pairs(100_000, 20_000, 0.05) < 0.01
    m = markers_needed(5_000, 0.05)
    assert noise_pairs(5_000, m, 0.05) <= 1.0 < noise_pairs(5_000, m - 200, 0.05)
    assert noise_pairs(300, 1200, 0.05) == pytest.approx(300 * 299 / 2 * stats.norm.sf(0.05 * np.sqrt(1200)))


def test_panels_fit_the_memory_budget():
    # two float32 tiles of b x M within 1 GiB: 4,096 at most, fewer with more markers, 64 at least
    assert panel_rows(100_000, 20_000) == 4096 and panel_rows(50, 20_000) == 50
    assert panel_rows(100_000, 200_000) == (1 << 30) // (8 * 200_000)
    assert panel_rows(100_000, 200_000, itemsize=8) == (1 << 30) // (16 * 200_000)
    assert panel_rows(100_000, 10_000_000) == 64


def test_cli_builds_only_the_sparse_grm_and_checks_its_options(small_cohort, tmp_path, capsys):
    from gwas_glmm import load_kinship
    from gwas_glmm.cli import main

    out = tmp_path / "sp.grm.h5"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(out), "--sparse-cutoff", "0.05"]) == 0
    log = (tmp_path / "sp.log").read_text()
    assert "related pairs kept" in log and "largest groups of related samples" in log and "no LOCO parts" in log
    # 1,200 markers at 0.05: an unrelated pair's entry has sd 0.03, so noise alone passes the cutoff often
    assert "unrelated pairs pass 0.05 by sampling noise alone" in log and "use at least 6667 markers" in log
    kin = load_kinship(out, sparse=True)
    expected = sparse_grm(PlinkFileset(small_cohort.bfile), cutoff=0.05)[0]
    assert kin.is_sparse and abs(kin.matrix - expected).max() == 0 and kin.meta["sparse_cutoff"] == 0.05
    capsys.readouterr()
    assert main(["null", "--grm", str(out), "--pheno", str(small_cohort.pheno), "--pheno-name", "qt",
                 "--out", str(tmp_path / "n"), "--no-sparse"]) == 1
    assert "holds only a sparse GRM" in capsys.readouterr().err.strip().splitlines()[-1]
    for bad, message in ((["--sparse-cutoff", "1.5"], "strictly between 0 and 1"),
                         (["--sparse-cutoff", "0.05", "--eigen"], "--eigen needs the dense GRM"),
                         (["--dense"], "--dense goes with --sparse-cutoff")):
        target = tmp_path / "bad.grm.h5"
        assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(target), *bad]) == 1
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
        assert not target.exists()
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(tmp_path / "d.grm.h5"), "--sparse-cutoff",
                 "0.05", "--dry-run"]) == 0
    assert "panel(s)" in capsys.readouterr().err


def test_gcta_and_saige_sparse_files_round_trip_and_align(small_cohort, tmp_path, capsys):
    from gwas_glmm import read_kinship
    from gwas_glmm.cli import main

    out = tmp_path / "sp"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(out), "--sparse-cutoff", "0.05",
                 "--sparse-format", "gcta", "saige"]) == 0
    fs = PlinkFileset(small_cohort.bfile)
    expected = sparse_grm(fs, cutoff=0.05)[0]
    lines = (tmp_path / "sp.grm.sp").read_text().splitlines()
    i, j = np.array([ln.split()[:2] for ln in lines], dtype=int).T
    assert np.all(i >= j) and len(lines) == (expected.nnz + fs.n_samples) // 2  # lower triangle, 0-based
    assert (tmp_path / "sp.sparseGRM.mtx").read_text().startswith("%%MatrixMarket matrix coordinate real symmetric")
    assert (tmp_path / "sp.sparseGRM.mtx.sampleIDs.txt").read_text().split() == list(fs.samples.iid)
    for name in ("sp.grm.sp", "sp.sparseGRM.mtx"):
        kin = read_kinship(tmp_path / name)
        assert kin.is_sparse and (kin.matrix.astype(np.float32) != expected).nnz == 0, name
        back = kin.align(fs.samples.fid[::-1], fs.samples.iid[::-1])  # a permutation: rows follow the IDs
        assert back.matrix[0, 0] == kin.matrix[-1, -1] and list(back.iid) == list(fs.samples.iid[::-1])
    assert read_kinship(tmp_path / "sp.sparseGRM.mtx").meta["iid_only"]  # SAIGE's file has IIDs alone
    assert main(["convert-kinship", "--kinship", str(tmp_path / "sp.sparseGRM.mtx"),
                 "--out", str(tmp_path / "again.grm.sp")]) == 0
    assert read_kinship(tmp_path / "again.grm.sp").matrix.nnz == expected.nnz
    capsys.readouterr()
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(tmp_path / "x"),
                 "--sparse-format", "gcta"]) == 1
    assert "--sparse-format goes with --sparse-cutoff" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.grm.sp", "0\t0\t1\n5\t0\t0.5\n", "sample number 5 outside 0..2"),
    ("b.grm.sp", "0\t0\t1\n1\tx\t0.5\n", "line 2: 'x' is not a sample number"),
    ("c.grm.sp", "0\t0\t1\n1\t0\tNaN\n", "line 2: 'NaN' is not a finite number"),
    ("d.grm.sp", "0\t0\t1\n1\t0\t0.5\n0\t1\t0.4\n", "listed twice with different values"),
    ("e.grm.sp", "0 0 1 7\n", "expected 3 columns"),
])
def test_bad_gcta_sparse_files_are_one_line(tmp_path, name, content, message):
    from gwas_glmm import read_kinship

    (tmp_path / name).write_text(content)
    (tmp_path / name.replace(".grm.sp", ".grm.id")).write_text("f a\nf b\nf c\n")
    with pytest.raises(InputError, match=message):
        read_kinship(tmp_path / name)


def test_a_sparse_file_for_other_samples_is_one_line(small_cohort, tmp_path):
    from gwas_glmm import read_kinship
    from gwas_glmm.exceptions import AlignmentError

    (tmp_path / "o.grm.sp").write_text("0\t0\t1\n1\t1\t1\n")
    (tmp_path / "o.grm.id").write_text("F1\tnobody\nF2\tnone\n")
    fs = PlinkFileset(small_cohort.bfile)
    with pytest.raises(AlignmentError, match="have no row in the kinship matrix, first"):
        read_kinship(tmp_path / "o.grm.sp").align(fs.samples.fid, fs.samples.iid)
    (tmp_path / "m.mtx").write_text("%%MatrixMarket matrix coordinate real symmetric\n3 3 1\n1 1 1.0\n")
    (tmp_path / "m.mtx.sampleIDs.txt").write_text("a\nb\n")
    with pytest.raises(InputError, match="lists 2 samples; the files do not belong together"):
        read_kinship(tmp_path / "m.mtx")


def test_every_first_and_second_degree_pair_of_the_pedigree_is_found(one_population_cohort):
    """The simulator's pedigree (PREFIX.pairs.tsv) is the truth: every parent-offspring,
    full-sibling (first degree) and avuncular (second degree) pair is kept at fastGWA's cutoff
    0.05; first cousins (third degree, expected 0.125) are counted and nearly all found."""
    import pandas as pd

    fs = PlinkFileset(one_population_cohort.bfile)
    matrix = sparse_grm(fs, cutoff=0.05)[0]
    row = {iid: k for k, iid in enumerate(fs.samples.iid)}
    truth = pd.read_csv(f"{one_population_cohort.prefix}.pairs.tsv", sep="\t")
    found = np.array([matrix[row[a], row[b]] >= 0.05 for a, b in zip(truth.IID1, truth.IID2)])
    recall = pd.Series(found).groupby(truth.RELATION.to_numpy()).mean()
    assert set(recall.index) == {"parent-offspring", "full-sibling", "avuncular", "first-cousin"}
    assert recall[["parent-offspring", "full-sibling", "avuncular"]].min() == 1.0
    assert recall["first-cousin"] > 0.95
    degree = pd.Series(matrix[row[a], row[b]] for a, b in zip(truth.IID1, truth.IID2)).groupby(
        truth.RELATION.to_numpy()).mean()
    np.testing.assert_allclose(degree[["parent-offspring", "avuncular", "first-cousin"]], [0.5, 0.25, 0.125], atol=0.03)


def test_a_killed_run_continues_from_its_finished_panels(small_cohort, tmp_path, monkeypatch):
    from gwas_glmm.kinship import sparse_grm as module

    fs = PlinkFileset(small_cohort.bfile)
    ckpt = tmp_path / "ckpt"
    calls = []
    real = module.panel_entries

    def dies_after_three(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed while the fourth panel is computed
        calls.append(args[5])
        return real(*args)

    monkeypatch.setattr(module, "panel_entries", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        sparse_grm(fs, cutoff=0.05, panel=50, checkpoint=ckpt)
    assert len(list(ckpt.glob("panel_*.npz"))) == 3  # what was finished is on disk
    calls.clear()
    monkeypatch.setattr(module, "panel_entries", lambda *args: calls.append(args[5]) or real(*args))
    resumed = sparse_grm(fs, cutoff=0.05, panel=50, checkpoint=ckpt)[0]
    assert calls == [150, 200, 250]  # only the missing panels
    assert (resumed != sparse_grm(fs, cutoff=0.05, panel=50)[0]).nnz == 0
    with pytest.raises(InputError, match="holds panels of a different sparse GRM"):
        sparse_grm(fs, cutoff=0.1, panel=50, checkpoint=ckpt)


def test_panels_on_dask_give_the_same_matrix(small_cohort):
    distributed = pytest.importorskip("distributed")
    fs = PlinkFileset(small_cohort.bfile)
    local = sparse_grm(fs, cutoff=0.05, panel=70)[0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        remote = sparse_grm(fs, cutoff=0.05, panel=70, client=client)[0]
    assert (remote != local).nnz == 0


def test_cli_resumes_and_cleans_up(small_cohort, tmp_path, capsys):
    from gwas_glmm.cli import main

    out = tmp_path / "r"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(out), "--sparse-cutoff", "0.05"]) == 0
    assert not (tmp_path / "r.grm.h5.ckpt").exists() and not (tmp_path / "r.grm.h5.ckpt.lock").exists()
    capsys.readouterr()
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(tmp_path / "d"), "--scheduler",
                 "tcp://nowhere:1"]) == 1
    assert "--scheduler/--cluster run the sparse GRM's panels" in capsys.readouterr().err


def test_a_dense_dry_run_at_biobank_size_points_to_the_sparse_path(tmp_path, capsys):
    from bed_reader import to_bed

    from gwas_glmm.cli import main

    n = 50_000  # the size above which the dense dry run suggests the sparse path
    genotypes = np.random.default_rng(1).integers(0, 3, size=(n, 4)).astype(np.int8)
    to_bed(tmp_path / "big.bed", genotypes, properties={"chromosome": ["1", "1", "2", "2"]})
    assert main(["grm", "--bfile", str(tmp_path / "big"), "--out", str(tmp_path / "g"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "grm (dry run)" in err and "the sparse path is the one that fits: grm --sparse-cutoff 0.05" in err
    assert not (tmp_path / "g.grm.h5").exists()


def test_too_few_markers_for_the_cutoff_is_one_line_and_writes_nothing(small_cohort, tmp_path, capsys):
    from gwas_glmm.cli import main

    out = tmp_path / "few"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(out), "--sparse-cutoff", "0.05",
                 "--thin-count", "300", "--sparse-format", "gcta"]) == 1
    assert "a sparse GRM at cutoff 0.05 needs at least 900" in capsys.readouterr().err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few.log"]  # no .h5, .grm.sp or checkpoint folder
