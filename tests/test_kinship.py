"""Custom kinship matrices: validation, alignment, formats, eigendecomposition reuse, sparse, pedigree."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from gwas_glmm import AlignmentError, InputError, Kinship, PlinkFileset, read_fam
from gwas_glmm.io.kinship_formats import read_gcta, read_rel, write_gcta, write_rel
from gwas_glmm.kinship import compute_grm, eigendecompose, pedigree_kinship
from gwas_glmm.kinship.files import read_kinship, write_kinship
from gwas_glmm.kinship.store import add_eigen, load_kinship, save_kinship


def _psd(n=12, rank=None, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, rank or n))
    return a @ a.T / a.shape[1]


def _ids(n):
    return [f"s{i}" for i in range(n)]


def test_validation_errors():
    k = _psd()
    with pytest.raises(InputError, match="must be square"):
        Kinship.from_array(k[:, :5])
    bad = k.copy()
    bad[2, 3] += 0.1
    with pytest.raises(InputError, match=r"not symmetric .* at \((3, 4|4, 3)\)"):
        Kinship.from_array(bad)
    bad = k.copy()
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match=r"entry \(2, 2\) is nan"):
        Kinship.from_array(bad)
    with pytest.raises(InputError, match="not positive semi-definite: most negative eigenvalue -1"):
        Kinship.from_array(np.diag([1.0, 2.0, -1.0]))
    with pytest.raises(InputError, match="appears twice"):
        Kinship.from_array(np.eye(3), iid=["a", "b", "a"])
    with pytest.raises(InputError, match="2 sample IDs given for a 3 x 3 matrix"):
        Kinship.from_array(np.eye(3), iid=["a", "b"])
    with pytest.raises(InputError, match="numeric"):
        Kinship.from_array(np.array([["a", "b"], ["b", "a"]]))


def test_tiny_negative_eigenvalues_are_clipped_and_reported():
    k = _psd(10, rank=4)
    k -= 1e-9 * np.eye(10)  # rounding-size negatives
    eig = Kinship.from_array(k).eigen
    assert eig.rank == 4 and eig.n_clipped == 6 and eig.min_raw < 0
    assert "6 negative eigenvalues clipped" in eig.report()
    assert np.all(eig.values >= 0)


def test_align_subset_and_permutation():
    k = _psd(6)
    kin = Kinship.from_array(k, iid=_ids(6))
    order = [5, 0, 3, 1, 2, 4]
    perm = kin.align(np.array(_ids(6), dtype=object)[order], np.array(_ids(6), dtype=object)[order])
    np.testing.assert_array_equal(perm.matrix, k[np.ix_(order, order)])
    assert perm.eigen is not None  # a permutation keeps the decomposition
    np.testing.assert_allclose(perm.eigen.reconstruct(), perm.matrix, atol=1e-12)
    sub = kin.align(["s4", "s2"], ["s4", "s2"])
    np.testing.assert_array_equal(sub.matrix, k[np.ix_([4, 2], [4, 2])])
    assert sub.eigen is None
    with pytest.raises(AlignmentError, match="1 of 2 samples have no row .* first x9 x9"):
        kin.align(["s1", "x9"], ["s1", "x9"])


@pytest.mark.parametrize("name", ["k.grm.bin", "k.grm.gz", "k.rel", "k.rel.gz", "k.rel.bin", "k.h5"])
def test_round_trip_is_exact(tmp_path, name):
    k = _psd(7).astype(np.float32)
    kin = Kinship.from_array(k, iid=_ids(7), fid=[f"f{i}" for i in range(7)])
    write_kinship(tmp_path / name, kin, counts=100)
    back = read_kinship(tmp_path / name)
    assert back.matrix.dtype in (np.float32, np.float64)
    np.testing.assert_array_equal(back.matrix.astype(np.float32), k)  # float32 survives 9 digits
    assert list(back.iid) == _ids(7) and list(back.fid) == [f"f{i}" for i in range(7)]


def test_plink2_shapes_and_gcta_counts(tmp_path):
    k = _psd(5)
    write_rel(tmp_path / "t", k, _ids(5), _ids(5), shape="triangle")
    np.testing.assert_allclose(read_rel(tmp_path / "t.rel")[0], k, rtol=1e-8)
    write_rel(tmp_path / "b", k, _ids(5), _ids(5), binary=True, shape="triangle")
    np.testing.assert_array_equal(read_rel(tmp_path / "b.rel.bin")[0], k)
    np.savetxt(tmp_path / "s0.rel", np.tril(k), fmt="%.17g")  # plink2's square0 shape
    (tmp_path / "s0.rel.id").write_text("".join(f"s{i}\n" for i in range(5)))  # IID-only id file
    m, fid, iid = read_rel(tmp_path / "s0.rel")
    np.testing.assert_allclose(m, k, rtol=1e-15)
    assert list(fid) == list(iid) == _ids(5)
    counts = np.full((5, 5), 90.0)
    write_gcta(tmp_path / "g", k, _ids(5), _ids(5), counts)
    _, n, _, _ = read_gcta(tmp_path / "g")
    np.testing.assert_array_equal(n, counts)


def test_bad_files(tmp_path):
    k = _psd(4)
    write_rel(tmp_path / "a", k, _ids(4), _ids(4))
    (tmp_path / "a.rel.id").write_text("#FID\tIID\nx\tx\ny\ty\n")
    with pytest.raises(InputError, match="holds a 4 x 4 matrix but .* lists 2 samples"):
        read_rel(tmp_path / "a.rel")
    write_gcta(tmp_path / "g", k, _ids(4), _ids(4))
    (tmp_path / "g.grm.id").write_text("a a\nb b\nc c\n")
    with pytest.raises(InputError, match="do not belong together"):
        read_gcta(tmp_path / "g")
    with gzip.open(tmp_path / "z.rel.gz", "wt") as fh:
        fh.write("1 0.5\n0.5 x\n")
    (tmp_path / "z.rel.id").write_text("a\nb\n")
    with pytest.raises(InputError, match="line 2: non-numeric"):
        read_rel(tmp_path / "z.rel.gz")
    (tmp_path / "n.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="not an HDF5 file"):
        read_kinship(tmp_path / "n.h5")
    with pytest.raises(InputError, match="cannot tell the kinship format"):
        read_kinship(tmp_path / "n.txt")


def test_eigen_stored_once_and_reused(tmp_path, monkeypatch):
    kin = Kinship.from_array(_psd(8), iid=_ids(8), check_psd=False)
    path = save_kinship(tmp_path / "k.h5", kin)
    assert load_kinship(path).eigen is None
    first = add_eigen(path)[0]
    import gwas_glmm.kinship.eigen as eigen_module

    def forbidden(*a, **k):
        raise AssertionError("decomposed twice")

    monkeypatch.setattr(eigen_module, "eigendecompose", forbidden)
    again = add_eigen(path)[0]  # already complete: read, not recomputed
    np.testing.assert_array_equal(again.values, first.values)
    loaded = load_kinship(path)
    np.testing.assert_array_equal(loaded.eigen.vectors, first.vectors)


def test_incomplete_eigen_is_ignored(tmp_path):
    import h5py

    path = save_kinship(tmp_path / "k.h5", Kinship.from_array(_psd(5), check_psd=False))
    with h5py.File(path, "r+") as h5:  # what a run killed mid-write leaves
        g = h5.create_group("eigen")
        g.create_dataset("values", data=np.zeros(5))
    assert load_kinship(path).eigen is None
    assert add_eigen(path)[0].rank == 5


def test_rank_and_reconstruction():
    k = _psd(20, rank=5)
    e = eigendecompose(k)
    assert e.rank == 5
    np.testing.assert_allclose(e.reconstruct(), k, atol=1e-12)
    assert np.all(np.diff(e.values) >= 0)


def test_sparse_cutoff(tmp_path, small_cohort):
    fs = PlinkFileset(small_cohort.bfile)
    kin, _ = compute_grm(fs)
    sp = kin.to_sparse(0.05)
    dense = sp.matrix.toarray()
    off = ~np.eye(kin.n, dtype=bool)
    assert np.all((dense[off] == 0) | (dense[off] >= 0.05))
    np.testing.assert_array_equal(np.diag(dense), np.diag(kin.matrix))
    kept = off & (kin.matrix >= 0.05)
    np.testing.assert_array_equal(dense[kept], kin.matrix[kept])
    path = save_kinship(tmp_path / "s.h5", sp)
    back = load_kinship(path, sparse=True)
    assert back.is_sparse and back.meta["sparse_cutoff"] == 0.05
    np.testing.assert_array_equal(back.matrix.toarray(), dense)


def _fam(rows):
    from gwas_glmm.io.plink import SampleTable

    cols = list(zip(*rows))
    return SampleTable(*(np.array(c, dtype=object) for c in cols[:4]), np.zeros(len(rows), np.int64))


def test_pedigree_kinship_known_values():
    # two founders couples; their children marry (first cousins' parents are sibs); a consanguineous child
    rows = [("F", "gp1", "0", "0"), ("F", "gp2", "0", "0"), ("F", "a", "gp1", "gp2"), ("F", "b", "gp1", "gp2"),
            ("F", "sa", "0", "0"), ("F", "sb", "0", "0"), ("F", "c1", "a", "sa"), ("F", "c2", "b", "sb"),
            ("F", "inbred", "c1", "c2"), ("F", "half", "a", "sb")]
    kin = pedigree_kinship(_fam(rows))
    i = {r[1]: k for k, r in enumerate(rows)}
    a = kin.matrix
    assert a[i["a"], i["b"]] == 0.5  # full sibs
    assert a[i["gp1"], i["a"]] == 0.5  # parent-offspring
    assert a[i["a"], i["c2"]] == 0.25  # avuncular
    assert a[i["c1"], i["c2"]] == 0.125  # first cousins
    assert a[i["c1"], i["half"]] == 0.25  # half sibs (share a)
    assert a[i["inbred"], i["inbred"]] == 1.0625  # 1 + F, F = kinship of first cousins = 1/16
    assert a[i["gp1"], i["gp2"]] == 0.0


def test_pedigree_kinship_on_simulated_families(small_cohort):
    fam = read_fam(f"{small_cohort.bfile}.fam")
    kin = pedigree_kinship(fam)
    index = {(f, i): k for k, (f, i) in enumerate(zip(fam.fid, fam.iid))}
    n_checked = 0
    for k in range(len(fam.iid)):
        for parent in (fam.father[k], fam.mother[k]):
            if parent != "0":
                assert kin.matrix[k, index[(fam.fid[k], parent)]] == 0.5
                n_checked += 1
    assert n_checked > 50
    np.testing.assert_array_equal(np.diag(kin.matrix), 1.0)  # no inbreeding in the simulator
    with pytest.raises(InputError, match="cycle"):
        pedigree_kinship(_fam([("F", "x", "y", "0"), ("F", "y", "x", "0")]))


def test_cli_grm_eigen_convert(tmp_path, reference_fileset):
    from gwas_glmm.cli import main

    out = tmp_path / "grm.h5"
    assert main(["grm", "--bfile", str(reference_fileset), "--out", str(out), "--thin-count", "600",
                 "--eigen", "--sparse-cutoff", "0.1", "--dense", "--threads", "1"]) == 0
    kin = load_kinship(out)
    assert kin.eigen is not None and kin.meta["n_variants"] <= 600
    assert (tmp_path / "grm.log").exists()
    assert main(["eigen", "--grm", str(out), "--loco"]) == 0
    assert load_kinship(out, loco="3").eigen is not None
    assert main(["convert-kinship", "--kinship", str(out), "--out", str(tmp_path / "x.grm.bin")]) == 0
    np.testing.assert_array_equal(read_kinship(tmp_path / "x.grm.bin").matrix, kin.matrix)
    assert main(["convert-kinship", "--pedigree", "--kinship", f"{reference_fileset}.fam",
                 "--out", str(tmp_path / "ped.h5")]) == 0


def test_cli_bad_kinship_is_one_line(tmp_path, capsys):
    from gwas_glmm.cli import main

    k = np.eye(3)
    k[0, 1] = 0.3
    write_rel(tmp_path / "asym", k, ["a", "b", "c"], ["a", "b", "c"])
    assert main(["convert-kinship", "--kinship", str(tmp_path / "asym.rel"), "--out", str(tmp_path / "o.h5")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gwas-glmm convert-kinship: error:") and "not symmetric" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o.h5").exists()
