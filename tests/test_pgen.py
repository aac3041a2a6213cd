"""PLINK 2 filesets (.pgen/.pvar/.psam) through pgenlib: hard calls read exactly as the same
calls in a .bed (so every command's output is the same apart from INFO), dosages tested against
a dense oracle, INFO as MaCH's Rsq, and one clear line for each bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA
from scipy import stats as sstats

from gwas_glmm import PlinkFileset, load_kinship
from gwas_glmm.cli import main
from gwas_glmm.exceptions import InputError
from gwas_glmm.gwas import score_test
from gwas_glmm.gwas.store import load_nulls
from gwas_glmm.io.pgen import PgenFileset, read_psam, read_pvar, write_pgen
from gwas_glmm.simulate.dosages import imputed_dosages, write_imputed


def _hardcall_pgen(bfile: str, out) -> str:
    fs = PlinkFileset(bfile)
    write_pgen(out, fs.samples, fs.variants, [fs.read().T], dosages=False)
    return str(out)


@pytest.fixture(scope="module")
def both(small_cohort, tmp_path_factory):
    """The small cohort's calls as .bed and as .pgen (hard calls), and its dosage .pgen."""
    folder = tmp_path_factory.mktemp("pgen")
    hard = _hardcall_pgen(small_cohort.bfile, folder / "hard")
    return small_cohort, hard


def test_hard_calls_read_as_the_bed_reads_them(both):
    cohort, hard = both
    bed, pgen = PlinkFileset(cohort.bfile), PgenFileset(hard)
    assert pgen.dosages and not bed.dosages and not pgen.iid_only
    assert list(pgen.samples.iid) == list(bed.samples.iid) and list(pgen.samples.sex) == list(bed.samples.sex)
    for field in ("chrom", "id", "pos", "allele1", "allele0"):
        assert list(getattr(pgen.variants, field)) == list(getattr(bed.variants, field))
    np.testing.assert_array_equal(pgen.read(), bed.read())  # NaN where missing, in both
    samples = np.random.default_rng(1).permutation(bed.n_samples)[:200]
    variants = np.arange(50, 700)
    d1, s1, m1 = bed.read_imputed(samples, variants, missing=True)
    d2, s2, m2 = pgen.read_imputed(samples, variants, missing=True)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1.n_obs, s2.n_obs)
    np.testing.assert_array_equal(s1.allele1_count, s2.allele1_count)
    assert s1.info is None and np.nanmedian(s2.info) == pytest.approx(1.0, abs=0.1)  # calls near HWE


def test_a_pgen_written_by_plink2_reads_as_the_bed(tmp_path):
    """tests/data/bgen/tiny_p2hard: the fixture .bed's calls through plink2 --make-pgen
    (scripts/make_reference/bgen_fixtures.sh), its .pvar/.psam as plink2 writes them: the same
    samples, variants (REF = the .bim's A2) and calls, and the same frequencies."""
    for path in (DATA / "bgen").glob("tiny*"):
        shutil.copy(path, tmp_path / path.name)
    bed, pgen = PlinkFileset(tmp_path / "tiny"), PgenFileset(tmp_path / "tiny_p2hard")
    assert list(pgen.samples.fid) == list(bed.samples.fid) and list(pgen.samples.iid) == list(bed.samples.iid)
    for field in ("chrom", "id", "pos", "allele1", "allele0"):
        assert list(getattr(pgen.variants, field)) == list(getattr(bed.variants, field))
    np.testing.assert_array_equal(pgen.read(), bed.read())
    for flag, source in (("--bfile", "tiny"), ("--pgen", "tiny_p2hard")):
        assert main(["freq", flag, str(tmp_path / source), "--out", str(tmp_path / f"f_{flag[2:]}")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "f_bfile.freq.tsv", sep="\t"),
                                  _strip_info(tmp_path / "f_pgen.freq.tsv"))


def _strip_info(path):
    frame = pd.read_csv(path, sep="\t")
    return frame.drop(columns=["INFO"]) if "INFO" in frame else frame


def test_every_command_gives_the_bed_results_apart_from_info(both, tmp_path):
    cohort, hard = both
    pre = str(cohort.prefix)
    for flag, source in (("--bfile", str(cohort.bfile)), ("--pgen", hard)):
        tag = flag[2:]
        assert main(["freq", flag, source, "--out", str(tmp_path / f"f_{tag}")]) == 0
        assert main(["grm", flag, source, "--out", str(tmp_path / f"g_{tag}"), "--no-loco"]) == 0
        assert main(["pca", flag, source, "--out", str(tmp_path / f"p_{tag}"), "--n-pcs", "3"]) == 0
        for name in ("qt", "bt1"):
            assert main(["null", "--grm", str(tmp_path / f"g_{tag}.grm.h5"), "--pheno", f"{pre}.pheno",
                         "--pheno-name", name, "--covar", f"{pre}.covar", "--covar-name", "age", "sex",
                         "--out", str(tmp_path / f"n_{tag}_{name}")]) == 0
            assert main(["scan", flag, source, "--null", str(tmp_path / f"n_{tag}_{name}.null.h5"),
                         "--out", str(tmp_path / f"s_{tag}"), "--block-size", "300"]) == 0
    f_bed, f_pgen = pd.read_csv(tmp_path / "f_bfile.freq.tsv", sep="\t"), pd.read_csv(tmp_path / "f_pgen.freq.tsv", sep="\t")
    assert "INFO" in f_pgen and "INFO" not in f_bed
    pd.testing.assert_frame_equal(f_bed, f_pgen.drop(columns=["INFO"]))
    assert (tmp_path / "p_bfile.eigenvec").read_bytes() == (tmp_path / "p_pgen.eigenvec").read_bytes()
    for name in ("qt", "bt1"):
        bed = (tmp_path / f"s_bfile.{name}.tsv.gz")
        pgen = (tmp_path / f"s_pgen.{name}.tsv.gz")
        header = gzip.open(pgen, "rt").readline().split("\t")
        assert header[5:8] == ["A1FREQ", "INFO", "N"]
        pd.testing.assert_frame_equal(_strip_info(bed), _strip_info(pgen))


@pytest.fixture(scope="module")
def dosage_run(small_cohort, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dosage")
    pre = str(small_cohort.prefix)
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(f"{pre}{ext}", folder / f"d{ext}")
    write_imputed(folder / "d", seed=3)
    g = str(folder / "g")
    # PSD by construction and in float64: the null's Sigma is then the matrix itself (no eigenvalue clipped)
    assert main(["grm", "--bfile", str(folder / "d"), "--out", g, "--no-loco", "--missing", "mean-impute",
                 "--double"]) == 0
    for name in ("qt", "bt1"):
        assert main(["null", "--grm", f"{g}.grm.h5", "--pheno", f"{pre}.pheno", "--pheno-name", name,
                     "--covar", f"{pre}.covar", "--covar-name", "age", "sex", "--out", str(folder / f"n_{name}")]) == 0
        assert main(["scan", "--pgen", str(folder / "d"), "--null", str(folder / f"n_{name}.null.h5"), "--out",
                     str(folder / "s"), "--mode", "exact", "--no-spa"]) == 0
    return folder


def test_dosage_scan_equals_a_dense_oracle(dosage_run):
    """BETA, SE and -log10 P of every dosage variant from U = g' P y~, V = g' P g with an explicit
    Sigma^-1 (the null's own fitted weights), g the mean-imputed dosages."""
    folder = dosage_run
    pgen = PgenFileset(folder / "d")
    pos = {(f, i): k for k, (f, i) in enumerate(zip(pgen.samples.fid, pgen.samples.iid))}
    kin = load_kinship(folder / "g.grm.h5")
    at = {i: k for k, i in enumerate(kin.iid)}
    for name in ("qt", "bt1"):
        nulls, fid, iid, _ = load_nulls(folder / f"n_{name}.null.h5")
        null = nulls[name]
        rows = [pos[(f, i)] for f, i in zip(fid, iid)]
        order = [at[i] for i in iid]
        k = np.asarray(kin.matrix, dtype=np.float64)[np.ix_(order, order)]
        res = pd.read_csv(folder / f"s.{name}.tsv.gz", sep="\t")
        index = {v: k for k, v in enumerate(pgen.variants.id)}
        g = pgen.read(variants=np.array([index[v] for v in res.ID]))[rows].astype(np.float64)
        g = np.where(np.isnan(g), np.nanmean(g, axis=0).astype(np.float32).astype(np.float64), g)
        sinv = np.linalg.inv(np.diag(null.phi / null.w) + null.tau * k)
        x = null.x
        p = sinv - sinv @ x @ np.linalg.solve(x.T @ sinv @ x, x.T @ sinv)
        u = g.T @ p @ null.working_response
        v = np.einsum("ij,ik,kj->j", g, p, g)
        decoded, _, _ = pgen.read_imputed(np.array(rows), np.array([index[v] for v in res.ID]))
        direct = score_test(null, np.asarray(decoded, dtype=np.float64), spa=False)  # what a block computes
        np.testing.assert_allclose(direct.score, u, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(direct.var, v, rtol=1e-8)
        np.testing.assert_allclose(res.BETA, u / v, rtol=1e-5, atol=1e-7)  # the file: 6 significant digits
        np.testing.assert_allclose(res.SE, 1 / np.sqrt(v), rtol=1e-5)
        np.testing.assert_allclose(res.LOG10P, -np.log10(sstats.chi2.sf(u**2 / v, 1)), rtol=1e-5, atol=1e-6)
        info = res.INFO.to_numpy()
        assert 0.05 < np.median(info) < 1.0 and (info[np.isfinite(info)] <= 1.5).all()


def test_min_info_filters_dosages_and_is_refused_for_hard_calls(dosage_run, small_cohort, tmp_path):
    folder = dosage_run
    assert main(["freq", "--pgen", str(folder / "d"), "--out", str(tmp_path / "all")]) == 0
    assert main(["freq", "--pgen", str(folder / "d"), "--out", str(tmp_path / "good"), "--minINFO", "0.5"]) == 0
    every = pd.read_csv(tmp_path / "all.freq.tsv", sep="\t")
    good = pd.read_csv(tmp_path / "good.freq.tsv", sep="\t")
    assert list(good.ID) == list(every.ID[every.INFO >= 0.5]) and 0 < len(good) < len(every)
    assert main(["freq", "--bfile", str(small_cohort.bfile), "--out", str(tmp_path / "x"), "--minINFO", "0.5"]) == 1


def test_info_is_mach_rsq():
    rng = np.random.default_rng(0)
    p = 0.3
    g = rng.binomial(2, p, size=(1, 20000)).astype(float)
    d = imputed_dosages(g, rng)
    from gwas_glmm.genotype.stats import compute_stats

    stats = compute_stats(np.asfortranarray(d.T.astype(np.float32)), info=True)
    mean = d.mean()
    expected = d.var() / (mean * (1 - mean / 2))
    assert stats.info[0] == pytest.approx(expected, rel=1e-5)


def test_psam_without_fid_matches_by_iid(both, tmp_path):
    cohort, hard = both
    frame = pd.read_csv(f"{hard}.psam", sep="\t")
    frame.drop(columns=["#FID"]).rename(columns={"IID": "#IID"}).to_csv(tmp_path / "h.psam", sep="\t", index=False)
    shutil.copy(f"{hard}.pgen", tmp_path / "h.pgen")
    shutil.copy(f"{hard}.pvar", tmp_path / "h.pvar")
    samples, iid_only = read_psam(tmp_path / "h.psam")
    assert iid_only and list(samples.iid) == list(frame.IID)
    fs = PgenFileset(tmp_path / "h")
    from gwas_glmm.gwas.scanner import sample_positions

    pos = sample_positions(fs, ["other"] * 3, list(frame.IID[[5, 0, 9]]))
    assert list(pos) == [5, 0, 9]
    from gwas_glmm.exceptions import AlignmentError

    with pytest.raises(AlignmentError, match="matched by IID, but the null model has IID"):
        sample_positions(fs, ["F1", "F2"], [frame.IID[5], frame.IID[5]])  # two families' sample "5": one genotype


def test_multiallelic_variants_are_listed_and_skipped(both, tmp_path):
    """Variant 2 gets a second ALT allele (carried by a few samples): the reader finds the other
    records past it, and every command skips it with a count in the log."""
    import pgenlib

    cohort, hard = both
    fs = PlinkFileset(cohort.bfile)
    calls = fs.read().T  # (variants, samples), NaN missing
    codes = np.full((fs.n_variants, 2 * fs.n_samples), -9, np.int32)
    called = ~np.isnan(calls)
    codes[:, 0::2] = np.where(called, (calls >= 2), -9)
    codes[:, 1::2] = np.where(called, (calls >= 1), -9)
    codes[2, 1:20:2] = np.where(codes[2, 1:20:2] >= 0, 2, -9)  # a second ALT on ten haplotypes
    cts = np.full(fs.n_variants, 2, np.uint32)
    cts[2] = 3
    writer = pgenlib.PgenWriter(str(tmp_path / "m.pgen").encode(), fs.n_samples, variant_ct=fs.n_variants,
                                nonref_flags=True, allele_ct_limit=3)
    writer.append_alleles_batch(codes, allele_cts=cts)
    writer.close()
    lines = Path(f"{hard}.pvar").read_text().splitlines()
    fields = lines[3].split("\t")  # header, then variant 0 on line 1
    fields[4] = fields[4] + ",T"
    lines[3] = "\t".join(fields)
    (tmp_path / "m.pvar").write_text("\n".join(lines) + "\n")
    shutil.copy(f"{hard}.psam", tmp_path / "m.psam")
    variants, alts = read_pvar(tmp_path / "m.pvar")
    assert alts[2] == 2 and (np.delete(alts, 2) == 1).all()
    pgen = PgenFileset(tmp_path / "m")
    assert list(np.flatnonzero(pgen.multiallelic)) == [2]
    others = np.delete(np.arange(fs.n_variants), 2)
    np.testing.assert_array_equal(pgen.read(variants=others), fs.read(variants=others))
    assert main(["freq", "--pgen", str(tmp_path / "m"), "--out", str(tmp_path / "f")]) == 0
    freq = pd.read_csv(tmp_path / "f.freq.tsv", sep="\t")
    assert len(freq) == fs.n_variants - 1 and fs.variants.id[2] not in set(freq.ID)
    assert "1 multi-allelic variants skipped" in (tmp_path / "f.log").read_text()


@pytest.mark.parametrize("damage, message", [
    ("psam_short", "not readable with"),
    ("pvar_dup", "appears on rows"),
    ("no_pgen", ".pgen file not found"),
    ("psam_header", "a .psam header starts with"),
])
def test_bad_pgen_inputs_are_one_line(both, tmp_path, damage, message):
    cohort, hard = both
    for ext in (".pgen", ".pvar", ".psam"):
        shutil.copy(f"{hard}{ext}", tmp_path / f"b{ext}")
    if damage == "psam_short":
        lines = (tmp_path / "b.psam").read_text().splitlines()
        (tmp_path / "b.psam").write_text("\n".join(lines[:-1]) + "\n")
    elif damage == "pvar_dup":
        lines = (tmp_path / "b.pvar").read_text().splitlines()
        first = lines[1].split("\t")
        second = lines[2].split("\t")
        second[2] = first[2]
        lines[2] = "\t".join(second)
        (tmp_path / "b.pvar").write_text("\n".join(lines) + "\n")
    elif damage == "no_pgen":
        (tmp_path / "b.pgen").unlink()
    else:
        text = (tmp_path / "b.psam").read_text().replace("#FID", "#XID", 1)
        (tmp_path / "b.psam").write_text(text)
    with pytest.raises(InputError, match=message):
        PgenFileset(tmp_path / "b")
    assert main(["freq", "--pgen", str(tmp_path / "b"), "--out", str(tmp_path / "f")]) == 1
    assert not (tmp_path / "f.freq.tsv").exists()


def test_dosage_scan_resumes_chunks_and_runs_on_a_cluster_byte_identically(dosage_run, tmp_path, monkeypatch):
    """As with .bed: a killed scan resumed, the merged --chunk parts, and a dask.distributed
    LocalCluster of two processes give the uninterrupted local scan's file byte for byte."""
    from distributed import LocalCluster

    from gwas_glmm.gwas.scanner import Scan

    folder = dosage_run
    base = ["scan", "--pgen", str(folder / "d"), "--null", str(folder / "n_qt.null.h5"), "--block-size", "100"]
    assert main(base + ["--out", str(tmp_path / "whole")]) == 0
    whole = (tmp_path / "whole.qt.tsv.gz").read_bytes()
    calls = {"n": 0}
    original = Scan._save_block

    def dying(self, k, arrays):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt  # what a killed job looks like from inside
        return original(self, k, arrays)

    monkeypatch.setattr(Scan, "_save_block", dying)
    assert main(base + ["--out", str(tmp_path / "again")]) == 130  # interrupted, resumable (logged)
    assert not (tmp_path / "again.qt.tsv.gz").exists()
    monkeypatch.setattr(Scan, "_save_block", original)
    assert main(base + ["--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again.qt.tsv.gz").read_bytes() == whole
    for k in (1, 2, 3):
        assert main(base + ["--out", str(tmp_path / f"c{k}"), "--chunk", f"{k}/3"]) == 0
    parts = [str(tmp_path / f"c{k}.qt.tsv.gz") for k in (1, 2, 3)]
    assert main(["merge", "--results", *parts, "--out", str(tmp_path / "merged.tsv.gz")]) == 0
    merged = pd.read_csv(tmp_path / "merged.tsv.gz", sep="\t")
    pd.testing.assert_frame_equal(merged, pd.read_csv(tmp_path / "whole.qt.tsv.gz", sep="\t"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(tmp_path / "dask")) as cluster:
        assert main(base + ["--out", str(tmp_path / "there"), "--scheduler", cluster.scheduler_address]) == 0
    assert (tmp_path / "there.qt.tsv.gz").read_bytes() == whole


def test_dosage_scores_match_plink2_glm_without_a_random_effect():
    """plink2 --glm on the fixture's .pgen dosages (scripts/make_reference/plink2_dosage_glm.sh):
    with an identity kinship the null has no genetic effect (Sigma = sigma^2 I), so the score
    test's BETA is the regression coefficient itself (Frisch-Waugh) and its statistic T = (n - p)
    r^2 gives plink2's t^2 = (n - p - 1) r^2 / (1 - r^2).  Compared on the variants every analysed
    sample has a dosage for (plink2 drops a missing dosage, the scan imputes it), to plink2's 6
    printed digits; INFO against plink2's MACH_R2 on all of them."""
    from conftest import DATA

    from gwas_glmm import Kinship, read_covariates, read_phenotypes
    from gwas_glmm.gwas.nullfit import fit_null_models

    data = DATA / "bgen"
    pgen = PgenFileset(data / "tiny")
    kin = Kinship.from_array(np.eye(pgen.n_samples), iid=list(pgen.samples.iid), fid=list(pgen.samples.fid))
    pheno = read_phenotypes(data / "tiny.pheno", ["qt"])
    covar = read_covariates(data / "tiny.covar", ["age", "sex"])
    nulls, _, fid, iid, _ = fit_null_models(kin, pheno, covar, "gaussian")
    null = nulls["qt"]
    rows = [{(f, i): k for k, (f, i) in enumerate(zip(pgen.samples.fid, pgen.samples.iid))}[(f, i)]
            for f, i in zip(fid, iid)]
    g, stats, _ = pgen.read_imputed(np.array(rows), np.arange(pgen.n_variants))
    res = score_test(null, np.asarray(g, dtype=np.float64), spa=False)
    ref = pd.read_csv(data / "tiny.plink2.qt.glm.linear", sep="\t")
    assert list(ref.ID) == list(pgen.variants.id) and (ref.A1 == ref.ALT).all()
    n, p = len(rows), null.x.shape[1]
    complete = (ref.OBS_CT == n).to_numpy()
    assert complete.sum() >= 30
    np.testing.assert_allclose(res.beta[complete], ref.BETA[complete], rtol=2e-5, atol=1e-6)
    r2 = res.score**2 / res.var / (n - p)
    t2 = (n - p - 1) * r2 / (1 - r2)
    np.testing.assert_allclose(np.sqrt(t2[complete]), np.abs(ref.T_STAT[complete]), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(stats.info, ref.MACH_R2, rtol=5e-5, atol=1e-6)
    np.testing.assert_allclose(stats.a1freq, ref.A1_FREQ, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(stats.n_obs, ref.OBS_CT)
