"""BGEN through cbgen: the fixtures of tests/data/bgen (scripts/make_reference/bgen_fixtures.sh,
plink2 --export bgen with REF first) read exactly as the .bed's calls and the .pgen's dosages
they were written from; scans equal the .bed's apart from INFO; samples from --sample or the
file's ID block; one clear line for each bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import DATA

from gwas_glmm import PlinkFileset
from gwas_glmm.cli import main
from gwas_glmm.exceptions import InputError
from gwas_glmm.io.bgen import BgenFileset, expected_dosage, read_oxford_sample
from gwas_glmm.io.pgen import PgenFileset


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A copy of the fixtures (the reader writes its index, FILE.bgen.metafile, beside a .bgen)."""
    folder = tmp_path_factory.mktemp("bgen")
    for path in (DATA / "bgen").iterdir():
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("name", ["tiny_hard8", "tiny_v11"])
def test_hard_call_bgen_reads_as_the_bed(files, name):
    bed = PlinkFileset(files / "tiny")
    bgen = BgenFileset(files / f"{name}.bgen", sample=files / f"{name}.sample")
    assert (files / f"{name}.bgen.metafile").exists() and bgen.dosages and bgen.multiallelic is None
    assert list(bgen.samples.fid) == list(bed.samples.fid) and list(bgen.samples.iid) == list(bed.samples.iid)
    for field in ("chrom", "id", "pos", "allele1", "allele0"):
        assert list(getattr(bgen.variants, field)) == list(getattr(bed.variants, field))
    np.testing.assert_array_equal(bgen.read(), bed.read())
    samples = np.random.default_rng(2).permutation(bed.n_samples)[:90]
    d1, s1, m1 = bed.read_imputed(samples, np.arange(30, 390), missing=True)
    d2, s2, m2 = bgen.read_imputed(samples, np.arange(30, 390), missing=True)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1.allele1_count, s2.allele1_count)


def test_dosage_bgen_reads_the_pgen_dosages_to_16_bits(files):
    pgen = PgenFileset(files / "tiny")
    bgen = BgenFileset(files / "tiny_dos16.bgen", sample=files / "tiny_dos16.sample")
    a, b = pgen.read(), bgen.read()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, atol=3 / 65535)  # two 16-bit probabilities, against 1/16384 steps
    assert np.nanmax(np.abs(a - np.rint(a))) > 0.1  # real dosages, not calls


def test_expected_dosage_by_ploidy_and_phase():
    nan = np.nan
    prob = np.array([[[0.1, 0.3, 0.6, nan], [0.2, 0.8, nan, nan], [nan, nan, nan, nan]],
                     [[0.3, 0.7, 0.6, 0.4], [0.5, 0.5, nan, nan], [1.0, 0.0, 0.0, 1.0]]])
    phased = np.array([False, True])
    ploidy = np.array([[2, 1, 2], [2, 1, 2]])
    missing = np.array([[False, False, True], [False, False, False]])
    d = expected_dosage(prob, phased, ploidy, missing)
    np.testing.assert_allclose(d, [[0.3 + 1.2, 1.6, -9], [0.7 + 0.4, 1.0, 1.0]], rtol=1e-6)


def test_scan_of_the_bgen_equals_the_bed_scan_apart_from_info(files, tmp_path):
    pre = str(files / "tiny")
    assert main(["grm", "--bfile", pre, "--out", str(tmp_path / "g"), "--no-loco"]) == 0
    assert main(["null", "--grm", str(tmp_path / "g.grm.h5"), "--pheno", f"{pre}.pheno", "--pheno-name", "qt",
                 "--covar", f"{pre}.covar", "--covar-name", "age", "sex", "--out", str(tmp_path / "n")]) == 0
    base = ["scan", "--null", str(tmp_path / "n.null.h5"), "--block-size", "64"]
    assert main(base + ["--bfile", pre, "--out", str(tmp_path / "bed")]) == 0
    assert main(base + ["--bgen", str(files / "tiny_hard8.bgen"), "--sample", str(files / "tiny_hard8.sample"),
                        "--out", str(tmp_path / "bgen")]) == 0
    bed = pd.read_csv(tmp_path / "bed.qt.tsv.gz", sep="\t")
    bgen = pd.read_csv(tmp_path / "bgen.qt.tsv.gz", sep="\t")
    assert list(bgen.columns[5:7]) == ["A1FREQ", "INFO"]
    pd.testing.assert_frame_equal(bed, bgen.drop(columns=["INFO"]))
    # dosages: the BGEN's 16-bit copy of the .pgen scans as the .pgen to the dosages' precision
    assert main(base + ["--pgen", pre, "--out", str(tmp_path / "pgen")]) == 0
    assert main(base + ["--bgen", str(files / "tiny_dos16.bgen"), "--sample", str(files / "tiny_dos16.sample"),
                        "--out", str(tmp_path / "dos"), "--minINFO", "0.1"]) == 0
    pgen = pd.read_csv(tmp_path / "pgen.qt.tsv.gz", sep="\t").set_index("ID")
    dos = pd.read_csv(tmp_path / "dos.qt.tsv.gz", sep="\t").set_index("ID")
    assert 0 < len(dos) < len(pgen) and (dos.INFO >= 0.1).all()
    both = pgen.loc[dos.index]
    np.testing.assert_allclose(dos.A1FREQ, both.A1FREQ, atol=1e-4)
    np.testing.assert_allclose(dos.LOG10P, both.LOG10P, rtol=1e-2, atol=1e-3)


def test_ids_from_the_bgen_itself_match_by_iid(files, tmp_path):
    """plink2 stores FID_IID in the file's ID block: without --sample those are the IIDs, which the
    null model's samples do not have: one line that names --sample."""
    fs = BgenFileset(files / "tiny_hard8.bgen")
    assert fs.iid_only and fs.samples.iid[0] == f"{PlinkFileset(files / 'tiny').samples.fid[0]}_" \
                                              f"{PlinkFileset(files / 'tiny').samples.iid[0]}"
    pre = str(files / "tiny")
    assert main(["grm", "--bfile", pre, "--out", str(tmp_path / "g"), "--no-loco"]) == 0
    assert main(["null", "--grm", str(tmp_path / "g.grm.h5"), "--pheno", f"{pre}.pheno", "--pheno-name", "qt",
                 "--out", str(tmp_path / "n")]) == 0
    assert main(["scan", "--bgen", str(files / "tiny_hard8.bgen"), "--null", str(tmp_path / "n.null.h5"),
                 "--out", str(tmp_path / "s")]) == 1
    assert "samples of the null model are not in" in (tmp_path / "s.log").read_text()
    assert not (tmp_path / "s.qt.tsv.gz").exists()


def test_bad_bgen_inputs_are_one_line(files, tmp_path):
    with pytest.raises(InputError, match="holds no sample IDs; give its Oxford .sample file"):
        BgenFileset(files / "tiny_v11.bgen")  # BGEN 1.1 has no ID block
    lines = (files / "tiny_hard8.sample").read_text().splitlines()
    (tmp_path / "short.sample").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="lists 119 samples but .* holds 120"):
        BgenFileset(files / "tiny_hard8.bgen", sample=tmp_path / "short.sample")
    (tmp_path / "dup.sample").write_text("\n".join(lines[:3] + [lines[2]] + lines[4:]) + "\n")
    with pytest.raises(InputError, match="appears on lines 3 and 4"):
        read_oxford_sample(tmp_path / "dup.sample")
    (tmp_path / "bad.sample").write_text("FID IID\n0 0\na b\n")
    with pytest.raises(InputError, match="starts with the header 'ID_1 ID_2 missing'"):
        read_oxford_sample(tmp_path / "bad.sample")
    (tmp_path / "junk.bgen").write_bytes(b"not a bgen file at all" * 10)
    assert main(["freq", "--bgen", str(tmp_path / "junk.bgen"), "--sample", str(files / "tiny_hard8.sample"),
                 "--out", str(tmp_path / "f")]) == 1
    assert main(["freq", "--bfile", str(files / "tiny"), "--sample", str(files / "tiny_hard8.sample"),
                 "--out", str(tmp_path / "f")]) == 1
    assert not (tmp_path / "f.freq.tsv").exists()
