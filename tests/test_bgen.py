"""BGEN through the bgen package: the fixtures of tests/data/bgen (scripts/make_reference/bgen_fixtures.sh,
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
from gwas_glmm.io.bgen import BgenFileset, read_oxford_sample
from gwas_glmm.io.pgen import PgenFileset


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A copy of the fixtures (nothing is written beside the originals)."""
    folder = tmp_path_factory.mktemp("bgen")
    for path in (DATA / "bgen").iterdir():
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("name", ["tiny_hard8", "tiny_v11"])
def test_hard_call_bgen_reads_as_the_bed(files, name):
    bed = PlinkFileset(files / "tiny")
    bgen = BgenFileset(files / f"{name}.bgen", sample=files / f"{name}.sample")
    assert bgen.dosages and bgen.multiallelic is None
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


def test_kernel_decodes_as_the_bgen_package(files, monkeypatch):
    """The numba layout-2 decoder against the package's own dosages on 16-bit imputed dosages."""
    bgen = BgenFileset(files / "tiny_dos16.bgen", sample=files / "tiny_dos16.sample")
    fast = bgen.read().copy()
    fast_spread = bgen._spread_buffer(bgen.n_variants).copy()
    package = np.empty((bgen.n_variants, bgen.n_samples), np.float32)
    package_spread = np.empty_like(package)
    for k in range(bgen.n_variants):
        bgen._package_row(k, package[k], package_spread[k])
    package[package < 0] = np.nan
    np.testing.assert_allclose(fast, package.T, rtol=0, atol=2e-6)
    np.testing.assert_allclose(fast_spread, package_spread, rtol=0, atol=1e-5)
    assert fast_spread.max() > 0.1  # real probabilities, not calls
    # runs cut at any size (one block a read at the smallest) and variants out of order read the same
    import gwas_glmm.io.bgen as bgen_module

    some = np.array([5, 6, 7, 40, 3, 399, 398])
    for limit in (1, 3000, bgen_module.READ_BYTES):
        monkeypatch.setattr(bgen_module, "READ_BYTES", limit)
        np.testing.assert_array_equal(bgen.read(variants=some), fast[:, some])


@pytest.mark.parametrize("name", ["tiny_dos16", "tiny_hard8"])
def test_one_pass_decoding_equals_decoding_then_gathering(files, name):
    """read_imputed decodes the usual blocks straight into the gathered rows (``decode_gathered``);
    against the reader's file-order rows gathered, counted and imputed afterwards (the .pgen's
    path), with the spreads summed over the same samples: every sample, a subset (the others'
    sums taken off), and a subset with a sample twice (decoded through a row)."""
    import dataclasses

    from gwas_glmm.genotype._decode_numba import gathered_sums
    from gwas_glmm.io.dosage import DosageFileset

    sample = files / (name + ".sample") if (files / (name + ".sample")).exists() else None
    bgen = BgenFileset(files / f"{name}.bgen", sample=sample)
    variants = np.arange(bgen.n_variants)
    for samples in (np.arange(bgen.n_samples), np.arange(3, bgen.n_samples, 2), np.array([4, 9, 9, 1])):
        n = len(samples)
        found = {}
        for how in ("one pass", "two passes"):
            dosages, mask = np.empty((len(variants), n), np.float32), np.zeros((len(variants), n), bool)
            if how == "one pass":
                stats = bgen._decode_imputed(variants, samples, dosages, mask)
            else:
                stats = DosageFileset._decode_imputed(bgen, variants, samples, dosages, mask)
                stats = dataclasses.replace(stats, spread=gathered_sums(bgen._spread_buffer(len(variants)), samples, n))
            found[how] = dosages, mask, stats
        (d1, m1, s1), (d2, m2, s2) = found["one pass"], found["two passes"]
        np.testing.assert_array_equal(d1, d2)
        np.testing.assert_array_equal(m1, m2)
        assert m1.any()
        np.testing.assert_array_equal(s1.n_obs, s2.n_obs)
        for key in ("allele1_count", "squares", "spread"):
            np.testing.assert_allclose(getattr(s1, key), getattr(s2, key), rtol=1e-12, atol=1e-9)


def test_bgen_info_is_impute_info_from_the_probabilities(files):
    """REGENIE's INFO for BGEN input is IMPUTE's info, 1 - sum_i Var(g_i) / (2 N p (1 - p)) over
    the analysis samples with a call, Var(g_i) = P(AB) + 4 P(BB) - E[g_i]^2: here against that
    formula on the ``bgen`` package's probabilities for a subset of samples; the .pgen (dosages
    only) keeps MaCH's Rsq, which differs."""
    from bgen import BgenReader

    bgen = BgenFileset(files / "tiny_dos16.bgen", sample=files / "tiny_dos16.sample")
    samples = np.arange(3, bgen.n_samples, 2)
    _, stats, _ = bgen.read_imputed(samples, np.arange(bgen.n_variants))
    reader = BgenReader(str(files / "tiny_dos16.bgen"), delay_parsing=True)
    expected = []
    for k in range(bgen.n_variants):
        prob = reader[k].probabilities[samples].astype(np.float64)
        prob = prob[~np.isnan(prob).any(axis=1)]
        mean = prob[:, 1] + 2 * prob[:, 2]
        variance = prob[:, 1] + 4 * prob[:, 2] - mean**2
        theta = mean.mean() / 2
        expected.append(1 - variance.sum() / (2 * len(prob) * theta * (1 - theta)) if 0 < theta < 1 else np.nan)
    np.testing.assert_allclose(stats.info, expected, rtol=0, atol=2e-4)
    assert np.nanmin(stats.info) < 0.9  # imputed, not hard calls
    _, pgen_stats, _ = PgenFileset(files / "tiny").read_imputed(samples, np.arange(bgen.n_variants))
    assert not np.allclose(stats.info, pgen_stats.info, equal_nan=True)  # MaCH's Rsq for the .pgen


def test_dosage_bgen_reads_the_pgen_dosages_to_16_bits(files):
    pgen = PgenFileset(files / "tiny")
    bgen = BgenFileset(files / "tiny_dos16.bgen", sample=files / "tiny_dos16.sample")
    a, b = pgen.read(), bgen.read()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, atol=3 / 65535)  # two 16-bit probabilities, against 1/16384 steps
    assert np.nanmax(np.abs(a - np.rint(a))) > 0.1  # real dosages, not calls


@pytest.mark.parametrize("compression", ["zstd", "zlib", None])
def test_dosages_by_ploidy_and_phase_and_multiallelic_variants_skipped(tmp_path, compression, monkeypatch):
    """A BGEN 1.2 written by the bgen package: unphased diploid P(AB) + 2 P(BB), phased the two
    haplotypes' P(B), haploid 2 P(B); a three-allele variant listed, marked, skipped.  zlib and
    uncompressed blocks through the numba kernel, zstd through the package."""
    from bgen import BgenWriter

    nan = np.nan
    with BgenWriter(str(tmp_path / "t.bgen"), 4, samples=["a", "b", "c", "d"], compression=compression) as out:
        out.add_variant("v1", "rs1", "1", 10, ["A", "G"], np.array([[1, 0, 0], [0.2, 0.5, 0.3], [0, 0, 1],
                                                                      [nan, nan, nan]]), ploidy=2, bit_depth=16)
        out.add_variant("v2", "rs2", "1", 20, ["A", "G"], np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0.5, 0.5, 1, 0],
                                                                      [1, 0, 1, 0]]), ploidy=2, phased=True,
                        bit_depth=16)
        out.add_variant("v3", "rs3", "X", 30, ["A", "G", "T"], np.array([[1, 0, 0, 0, 0, 0]] * 4), ploidy=2)
        out.add_variant("v4", "rs4", "X", 40, ["A", "G"], np.array([[0, 1, nan], [1, 0, nan], [0, 0, 1],
                                                                      [0, 1, 0]]),
                        ploidy=np.array([1, 1, 2, 2], dtype=np.uint8), bit_depth=16)
    fs = BgenFileset(tmp_path / "t.bgen")
    by_package = []
    original = BgenFileset._package_row
    monkeypatch.setattr(BgenFileset, "_package_row",
                        lambda self, k, out, spread: by_package.append(k) or original(self, k, out, spread))
    assert list(fs.variants.id) == ["rs1", "rs2", "rs3", "rs4"] and list(fs.variants.allele1) == ["G", "G", "G", "G"]
    assert list(np.flatnonzero(fs.multiallelic)) == [2]
    d = fs.read(variants=np.array([0, 1, 3]))
    np.testing.assert_allclose(d[:, 0], [0, 1.1, 2, nan], atol=1e-4)
    assert d[0, 0] == 0 and d[2, 0] == 2 and d[1, 2] == 0 and d[0, 2] == 2  # stored calls: exact
    np.testing.assert_allclose(d[:, 1], [1, 2, 0.5, 0], atol=1e-4)
    np.testing.assert_allclose(d[:, 2], [2, 0, 2, 1], atol=1e-4)
    assert by_package == ([0, 1, 3] if compression == "zstd" else [])
    # each sample's genotype variance (IMPUTE's info), by the kernel or the package alike
    by_package.clear()
    fs.read_imputed(None, np.array([0, 1, 3]))
    np.testing.assert_allclose(fs._spread_buffer(3), [[0, 0.49, 0, 0], [0, 0, 0.25, 0], [0, 0, 0, 0]], atol=1e-4)
    assert main(["freq", "--bgen", str(tmp_path / "t.bgen"), "--out", str(tmp_path / "f")]) == 0
    assert list(pd.read_csv(tmp_path / "f.freq.tsv", sep="\t").ID) == ["rs1", "rs2", "rs4"]
    assert "1 multi-allelic variants skipped" in (tmp_path / "f.log").read_text()


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


def test_bgen_scan_on_a_cluster_and_in_chunks_equals_the_local_scan(files, tmp_path):
    """Workers reopen FILE.bgen::FILE.sample from the task's source string: a dask.distributed
    LocalCluster of two processes gives the local file byte for byte, and --chunk parts merge to it."""
    from distributed import LocalCluster

    pre = str(files / "tiny")
    assert main(["grm", "--bfile", pre, "--out", str(tmp_path / "g"), "--no-loco"]) == 0
    assert main(["null", "--grm", str(tmp_path / "g.grm.h5"), "--pheno", f"{pre}.pheno", "--pheno-name", "bt1",
                 "--out", str(tmp_path / "n")]) == 0
    base = ["scan", "--bgen", str(files / "tiny_dos16.bgen"), "--sample", str(files / "tiny_dos16.sample"),
            "--null", str(tmp_path / "n.null.h5"), "--block-size", "50"]
    assert main(base + ["--out", str(tmp_path / "here")]) == 0
    here = (tmp_path / "here.bt1.tsv.gz").read_bytes()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(tmp_path / "dask")) as cluster:
        assert main(base + ["--out", str(tmp_path / "there"), "--scheduler", cluster.scheduler_address]) == 0
    assert (tmp_path / "there.bt1.tsv.gz").read_bytes() == here
    for k in (1, 2):
        assert main(base + ["--out", str(tmp_path / f"c{k}"), "--chunk", f"{k}/2"]) == 0
    assert main(["merge", "--results", str(tmp_path / "c1.bt1.tsv.gz"), str(tmp_path / "c2.bt1.tsv.gz"),
                 "--out", str(tmp_path / "merged.tsv.gz")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "merged.tsv.gz", sep="\t"),
                                  pd.read_csv(tmp_path / "here.bt1.tsv.gz", sep="\t"))


def test_dry_run_counts_the_dosage_decoding(files, tmp_path):
    """scan --dry-run on a .bgen adds its measured decoding cost (sizing.DOSAGE_DECODE_SECONDS)."""
    from gwas_glmm import sizing

    speed = sizing.MachineSpeed(sgemm=1e11, dgemm=5e10, cores=2)
    kw = dict(mode="fast", block=1024, threads=2, p=3, speed=speed, base=0)
    bed = sizing.estimate_scan(100_000, 1_000_000, ["gaussian"], **kw)
    bgen = sizing.estimate_scan(100_000, 1_000_000, ["gaussian"], genotype_format="bgen", **kw)
    assert bgen.seconds - bed.seconds == pytest.approx(8.5e-9 * 1e11 / 2)
    assert "bgen dosages" in bgen.detail[-1] and bgen.memory == bed.memory
    pre = str(files / "tiny")
    assert main(["grm", "--bfile", pre, "--out", str(tmp_path / "g"), "--no-loco"]) == 0
    assert main(["null", "--grm", str(tmp_path / "g.grm.h5"), "--pheno", f"{pre}.pheno", "--pheno-name", "qt",
                 "--out", str(tmp_path / "n")]) == 0
    assert main(["scan", "--bgen", str(files / "tiny_hard8.bgen"), "--sample", str(files / "tiny_hard8.sample"),
                 "--null", str(tmp_path / "n.null.h5"), "--out", str(tmp_path / "s"), "--dry-run"]) == 0
    assert "bgen dosages: about" in (tmp_path / "s.log").read_text()


@pytest.mark.parametrize("window", [64 << 20, 4096])
def test_compiled_header_walk_equals_the_package_reader(files, tmp_path, window, monkeypatch):
    """The variants, allele counts and genotype-block ranges from the compiled walk over the
    file's bytes equal those from the bgen package's reader: layouts 1 and 2, zlib, zstd and no
    compression, a three-allele variant and empty ID fields; a truncated file is left to the
    package (the walk returns None).  With a 4 KiB window the walk crosses many windows, and
    grows one that a header does not fit in."""
    from bgen import BgenReader, BgenWriter

    from gwas_glmm.io import bgen as module
    from gwas_glmm.io.bgen import _read_variants, _walk_variants

    monkeypatch.setattr(module, "WALK_WINDOW", window)

    made = []
    for compression in ("zstd", "zlib", None):
        path = tmp_path / f"w_{compression}.bgen"
        with BgenWriter(str(path), 3, samples=["a", "b", "c"], compression=compression) as out:
            out.add_variant("v1", "rs1", "1", 10, ["A", "G"], np.array([[1, 0, 0]] * 3), ploidy=2)
            out.add_variant("", "", "2", 20, ["AT", "G", "TTT"], np.array([[1, 0, 0, 0, 0, 0]] * 3), ploidy=2)
            out.add_variant("v3", "", "X", 30, ["A" * 80, "G"], np.array([[0, 1, 0]] * 3), ploidy=2)
            out.add_variant("v4", "rs4", "X", 40, ["C" * 5000, "G"], np.array([[0, 1, 0]] * 3), ploidy=2)
        made.append(path)
    for path in [files / "tiny_hard8.bgen", files / "tiny_dos16.bgen", files / "tiny_v11.bgen", *made]:
        reader = BgenReader(str(path), delay_parsing=True)
        walked = _walk_variants(path, reader.header)
        expected = _read_variants(reader)
        assert walked is not None
        for field in ("chrom", "id", "pos", "allele1", "allele0"):
            assert list(getattr(walked[0], field)) == list(getattr(expected[0], field)), (path.name, field)
        np.testing.assert_array_equal(walked[1], expected[1])
        if reader.header.layout == 2:
            np.testing.assert_array_equal(walked[2], expected[2])
        reader.close()
    assert list(_walk_variants(made[1], BgenReader(str(made[1]), delay_parsing=True).header)[0].id) == [
        "rs1", "2:20", "v3", "rs4"]
    data = made[1].read_bytes()
    (tmp_path / "cut.bgen").write_bytes(data[:-5])
    assert _walk_variants(tmp_path / "cut.bgen", BgenReader(str(made[1]), delay_parsing=True).header) is None
