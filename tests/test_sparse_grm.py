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


def test_panels_fit_the_memory_budget():
    assert panel_rows(100_000, 1 << 30) == (1 << 30) // (12 * 100_000)
    assert panel_rows(50) == 50 and panel_rows(10_000_000) == 64


def test_cli_builds_only_the_sparse_grm_and_checks_its_options(small_cohort, tmp_path, capsys):
    from gwas_glmm import load_kinship
    from gwas_glmm.cli import main

    out = tmp_path / "sp.grm.h5"
    assert main(["grm", "--bfile", str(small_cohort.bfile), "--out", str(out), "--sparse-cutoff", "0.05"]) == 0
    log = (tmp_path / "sp.log").read_text()
    assert "related pairs kept" in log and "largest groups of related samples" in log and "no LOCO parts" in log
    kin = load_kinship(out, sparse=True)
    expected = sparse_grm(PlinkFileset(small_cohort.bfile), cutoff=0.05)[0]
    assert kin.is_sparse and abs(kin.matrix - expected).max() == 0 and kin.meta["sparse_cutoff"] == 0.05
    capsys.readouterr()
    assert main(["null", "--grm", str(out), "--pheno", str(small_cohort.pheno), "--pheno-name", "qt",
                 "--out", str(tmp_path / "n")]) == 1
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
