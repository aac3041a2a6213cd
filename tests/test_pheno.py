"""Phenotype/covariate parsing edge cases and sample alignment."""

from __future__ import annotations

import numpy as np
import pytest

from gwas_glmm import AlignmentError, InputError, align_samples, read_covariates, read_phenotypes
from gwas_glmm.io import SampleTable


def fam(ids):
    fid = np.array([f for f, _ in ids], dtype=object)
    iid = np.array([i for _, i in ids], dtype=object)
    zeros = np.array(["0"] * len(ids), dtype=object)
    return SampleTable(fid, iid, zeros, zeros, np.zeros(len(ids), np.int8))


FAM = fam([("F1", "A"), ("F1", "B"), ("F2", "C"), ("F3", "D"), ("F4", "E")])


def write(tmp_path, text, name="p.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("header", ["FID IID", "#FID IID", "fid iid", "#FID\tIID"])
def test_header_forms(tmp_path, header):
    sep = "\t" if "\t" in header else " "
    text = header + f"{sep}y1{sep}y2\n" + "\n".join(
        sep.join(r) for r in [("F1", "A", "1.5", "3"), ("F1", "B", "2.5", "NA")]) + "\n"
    p = read_phenotypes(write(tmp_path, text), ["y1", "y2"])
    np.testing.assert_array_equal(p.iid, ["A", "B"])
    np.testing.assert_allclose(p.values, [[1.5, 3.0], [2.5, np.nan]])


def test_no_header_plink1_style(tmp_path):
    p = read_phenotypes(write(tmp_path, "F1 A 1.0 2\nF1 B 3.0 4\n"))
    assert p.names == ["PHENO1", "PHENO2"]
    np.testing.assert_array_equal(p.fid, ["F1", "F1"])


def test_iid_only_header_matches_on_iid(tmp_path):
    p = read_phenotypes(write(tmp_path, "#IID y\nC 1\nA 2\nE 3\n"))
    assert p.fid is None
    a = align_samples(FAM, p)
    np.testing.assert_array_equal(a.iid, ["A", "C", "E"])
    np.testing.assert_allclose(a.y[:, 0], [2, 1, 3])


@pytest.mark.parametrize("code", ["NA", "na", "nan", "NaN", ".", "-9", "-9.0"])
def test_missing_codes(tmp_path, code):
    p = read_phenotypes(write(tmp_path, f"FID IID y\nF1 A {code}\nF1 B 1.25\n"))
    assert np.isnan(p.values[0, 0]) and p.values[1, 0] == 1.25


def test_empty_cell_in_tab_file_is_missing(tmp_path):
    p = read_phenotypes(write(tmp_path, "FID\tIID\ty\tz\nF1\tA\t\t2\nF1\tB\t1\t\n"))
    np.testing.assert_allclose(p.values, [[np.nan, 2], [1, np.nan]])


def test_binary_detection(tmp_path):
    """As plink2 reads a phenotype: 0/1, or 1/2 with 0 and -9 missing, is case/control; the count
    families see the numbers as written."""
    text = "FID IID b01 b12 q c012 c0123\nF1 A 0 1 0.5 0 0\nF1 B 1 2 1 1 1\nF2 C NA 2 2 2 2\nF3 D 0 -9 3 1 3\n"
    p = read_phenotypes(write(tmp_path, text))
    assert p.binary.tolist() == [True, True, False, True, False]
    assert p.coding == ["0/1", "1/2", None, "1/2", None]
    np.testing.assert_allclose(p.values[:, 1], [0, 1, 1, np.nan])  # 1/2 recoded to 0/1
    np.testing.assert_allclose(p.values[:, 3], [np.nan, 0, 1, 0])  # plink: 0 is missing
    np.testing.assert_allclose(p.for_family("poisson").values[:, 3], [0, 1, 2, 1])
    with pytest.raises(InputError, match=r"phenotype q is not case/control \(values 0.5, 1, 2, 3\).*1/2"):
        p.for_family("binomial")
    with pytest.raises(InputError, match="b01, b12, c012 are case/control and q, c0123 are not"):
        p.infer_family()
    assert read_phenotypes(p.path, ["b01", "c012"]).infer_family() == "binomial"
    assert read_phenotypes(p.path, ["q", "c0123"]).infer_family() == "gaussian"


def test_byte_order_mark_and_mixed_tabs_and_spaces(tmp_path):
    """A header written by Excel (UTF-8 BOM) and rows separated by any mix of tabs and spaces, as
    plink2 accepts; a tab file with empty cells still reads them as missing."""
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffFID\tIID  y\tz\nF1 A\t1.5 \t2\nF1\t\tB 2.5  3\n".encode())
    p = read_phenotypes(path)
    assert p.names == ["y", "z"] and p.iid.tolist() == ["A", "B"]
    np.testing.assert_allclose(p.values, [[1.5, 2], [2.5, 3]])


def test_column_lists_in_plink2_syntax(tmp_path):
    text = "FID IID age sex PC1 PC2 PC3 PC4 x-y\nF1 A 30 1 .1 .2 .3 .4 5\nF1 B 40 2 .5 .6 .7 .8 6\n"
    path = write(tmp_path, text)
    assert read_covariates(path, ["age,sex,PC1-PC3"]).names == ["age", "sex", "PC1", "PC2", "PC3"]
    assert read_covariates(path, ["PC2-PC4", "age", "x-y"]).names == ["PC2", "PC3", "PC4", "age", "x-y"]
    with pytest.raises(InputError, match="PC3 comes after PC1"):
        read_covariates(path, ["PC3-PC1"])
    with pytest.raises(InputError, match="no column named 'PC1-PC9'"):
        read_covariates(path, ["PC1-PC9"])


def test_non_numeric_phenotype_names_file_sample_and_line(tmp_path):
    path = write(tmp_path, "FID IID y\nF1 A 1\nF1 B oops\n")
    with pytest.raises(InputError) as err:
        read_phenotypes(path)
    msg = str(err.value)
    assert str(path) in msg and "F1 B" in msg and "line 3" in msg and "'oops'" in msg


def test_unknown_column(tmp_path):
    with pytest.raises(InputError, match="no column named 'z'.*columns are: y"):
        read_phenotypes(write(tmp_path, "FID IID y\nF1 A 1\n"), ["z"])


def test_ragged_rows(tmp_path):
    with pytest.raises(InputError, match="p.txt"):
        read_phenotypes(write(tmp_path, "FID IID y\nF1 A 1 7\n"))
    with pytest.raises(InputError, match="line 3 has fewer values"):
        read_phenotypes(write(tmp_path, "FID IID y z\nF1 A 1 2\nF1 B 1\n"))


def test_duplicate_sample_in_file(tmp_path):
    with pytest.raises(InputError, match="appears on lines 2 and 4"):
        read_phenotypes(write(tmp_path, "FID IID y\nF1 A 1\nF1 B 2\nF1 A 3\n"))


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_phenotypes(write(tmp_path, "\n"))
    with pytest.raises(InputError, match="no samples"):
        read_phenotypes(write(tmp_path, "FID IID y\n"))


def test_categorical_covariates(tmp_path):
    text = "FID IID age site batch\nF1 A 30 north 1\nF1 B 40 south 2\nF2 C 50 east 3\nF3 D 60 NA 1\n"
    c = read_covariates(write(tmp_path, text), categorical=["batch"])
    assert c.names == ["age", "site=north", "site=south", "batch=2", "batch=3"]
    assert c.categories == {"site": ["east", "north", "south"], "batch": ["1", "2", "3"]}
    np.testing.assert_allclose(c.values[:, 1:3], [[1, 0], [0, 1], [0, 0], [np.nan, np.nan]])


def test_several_covariate_files_are_joined_on_the_sample_ids(tmp_path):
    base = write(tmp_path, "FID IID age site\nF1 A 30 north\nF1 B 40 south\nF2 C 50 north\n", "c.txt")
    pcs = write(tmp_path, "#FID\tIID\tPC1\tPC2\tPC3\nF2\tC\t0.3\t0.03\t3\nF1\tA\t0.1\t0.01\t1\n", "p.eigenvec")
    c = read_covariates([base, pcs], ["age,site", "PC1-PC2"])
    assert c.names == ["age", "site=south", "PC1", "PC2"] and list(c.iid) == ["A", "B", "C"]
    np.testing.assert_allclose(c.values, [[30, 0, 0.1, 0.01], [40, 1, np.nan, np.nan], [50, 0, 0.3, 0.03]])
    assert read_covariates([base, pcs]).names == ["age", "site=south", "PC1", "PC2", "PC3"]
    with pytest.raises(InputError, match="--covar-name PC9: no such column in .*columns are: age site PC1"):
        read_covariates([base, pcs], ["age", "PC9"])
    with pytest.raises(InputError, match="covariate 'age' is in both"):
        read_covariates([base, base])


def test_id_like_covariate_is_rejected(tmp_path):
    rows = "\n".join(f"F{k} I{k} id{k}" for k in range(150))
    with pytest.raises(InputError, match="150 distinct non-numeric values"):
        read_covariates(write(tmp_path, "FID IID tag\n" + rows + "\n"))


def test_alignment_keeps_fam_order_and_reports_drops(tmp_path, caplog):
    pheno = read_phenotypes(write(tmp_path, "FID IID y q\nF4 E 1 0\nF1 A 2 1\nF2 C NA NA\nF1 B 3 0\nX Z 1 1\n"))
    covar = read_covariates(write(tmp_path, "FID IID age\nF1 A 30\nF1 B NA\nF4 E 50\nF2 C 1\n", "c.txt"))
    a = align_samples(FAM, pheno, covar, other_ids={"kinship": (np.array(["F1", "F4"], dtype=object),
                                                                  np.array(["A", "E"], dtype=object))})
    np.testing.assert_array_equal(a.iid, ["A", "E"])
    np.testing.assert_array_equal(a.fam_index, [0, 4])
    np.testing.assert_allclose(a.y, [[2, 1], [1, 0]])
    np.testing.assert_allclose(a.x, [[30], [50]])
    assert a.binary.tolist() == [False, True]
    reasons = dict(a.report.dropped)
    assert reasons[f"not in phenotype file {pheno.path}"] == 1  # D
    assert reasons["every phenotype missing"] == 1  # C
    assert reasons["a covariate missing"] == 1  # B
    assert a.report.n_kept == 2 and a.report.n_fam == 5


def test_alignment_keeps_samples_with_some_phenotypes(tmp_path):
    pheno = read_phenotypes(write(tmp_path, "FID IID y z\nF1 A 1 NA\nF1 B NA 2\nF2 C 3 4\nF3 D 0 1\n"))
    a = align_samples(FAM, pheno)
    assert a.n == 4 and np.isnan(a.y).sum() == 2


def test_no_samples_in_common(tmp_path):
    pheno = read_phenotypes(write(tmp_path, "FID IID y\nA F1 1\nB F1 2\n"))
    with pytest.raises(AlignmentError) as err:
        align_samples(FAM, pheno)
    msg = str(err.value)
    assert "no sample of the .fam" in msg and "F1 A" in msg and "A F1" in msg


def test_constant_phenotype(tmp_path):
    pheno = read_phenotypes(write(tmp_path, "FID IID y\nF1 A 2\nF1 B 2\nF2 C 2\n"))
    with pytest.raises(InputError, match="single value 2 in all 3 samples"):
        align_samples(FAM, pheno)


def test_constant_covariate_is_dropped(tmp_path):
    pheno = read_phenotypes(write(tmp_path, "FID IID y\nF1 A 1\nF1 B 2\nF2 C 3\n"))
    covar = read_covariates(write(tmp_path, "FID IID k age\nF1 A 1 3\nF1 B 1 4\nF2 C 1 5\n", "c.txt"))
    a = align_samples(FAM, pheno, covar)
    assert a.covar_names == ["age"] and a.x.shape == (3, 1)
