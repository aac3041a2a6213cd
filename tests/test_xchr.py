"""Chromosome X (and Y, MT): the GRM from the autosomes by default, X tested with males coded
0/2 (or 0/1) and heterozygous male calls missing, against a dense oracle with the explicit
Sigma^-1; Y and MT skipped unless asked for."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_glmm import PlinkFileset, load_kinship
from gwas_glmm.cli import main
from gwas_glmm.gwas.scanner import sample_positions
from gwas_glmm.gwas.store import load_nulls
from gwas_glmm.simulate import SimulationConfig, simulate_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """300 samples, 1,000 autosomal and 150 X variants; a few samples of unknown sex, one male
    heterozygous X call per variant, and the last 20 autosomal variants renamed Y and MT."""
    d = tmp_path_factory.mktemp("xchr")
    c = simulate_cohort(d / "c", SimulationConfig(n_samples=300, n_variants=1000, n_x_variants=150, seed=5),
                        show_progress=False)
    fam = pd.read_csv(f"{c.prefix}.fam", sep=r"\s+", header=None)
    males = np.flatnonzero(fam[4].to_numpy() == 1)[3:13]  # males of known sex (rows 0-4 lose theirs)
    fam.loc[:4, 4] = 0
    fam.to_csv(f"{c.prefix}.fam", sep=" ", header=False, index=False)
    bed = bytearray(Path(f"{c.prefix}.bed").read_bytes())
    width = (len(fam) + 3) // 4
    for j, male in zip(range(1000, 1150), np.resize(males, 150)):  # .bed code 0b10: heterozygous
        at = 3 + j * width + male // 4
        bed[at] = (bed[at] & ~(3 << 2 * (male % 4))) | (2 << 2 * (male % 4))
    Path(f"{c.prefix}.bed").write_bytes(bytes(bed))
    bim = pd.read_csv(f"{c.prefix}.bim", sep="\t", header=None, dtype=str)
    bim.loc[980:989, 0], bim.loc[990:999, 0] = "24", "chrM"
    bim.to_csv(f"{c.prefix}.bim", sep="\t", header=False, index=False)
    assert main(["grm", "--bfile", str(c.prefix), "--out", str(d / "g"), "--eigen", "--missing", "mean-impute"]) == 0
    assert main(["null", "--grm", str(d / "g.grm.h5"), "--pheno", str(c.pheno), "--pheno-name", "qt", "--covar",
                 str(c.covar), "--covar-name", "age,sex", "--out", str(d / "q")]) == 0
    return c, d


def test_grm_leaves_x_y_mt_out_unless_chosen(cohort):
    c, d = cohort
    text = (d / "g.log").read_text()
    assert "GRM from the autosomes: 170 variants on Y, MT, X left out" in text
    assert main(["grm", "--bfile", str(c.prefix), "--out", str(d / "gx"), "--chr", "1-22,X", "--no-loco"]) == 0
    assert "GRM from chromosomes" in (d / "gx.log").read_text()


def _oracle(null, k, g):
    sigma = null.tau * k + np.diag(null.phi / null.w)
    si = np.linalg.inv(sigma)
    x = null.x
    p = si - si @ x @ np.linalg.inv(x.T @ si @ x) @ x.T @ si
    with np.errstate(invalid="ignore", divide="ignore"):  # monomorphic variants: not in the results
        return (g.T @ p @ null.working_response) ** 2 / np.einsum("ij,ik,kj->j", g, p, g)


@pytest.mark.parametrize("coding", ["0/2", "0/1"])
def test_x_scan_equals_a_dense_oracle(cohort, coding, tmp_path):
    c, d = cohort
    out = tmp_path / "s"
    assert main(["scan", "--bfile", str(c.prefix), "--null", str(d / "q.null.h5"), "--out", str(out), "--mode",
                 "exact", "--x-male-coding", coding, "--no-spa"]) == 0
    log = (tmp_path / "s.log").read_text()
    assert "chromosomes MT, Y: 20 variants not tested" in log and "5 of unknown sex" in log
    assert "chromosome X is not in the GRM" in log
    res = pd.read_csv(f"{out}.qt.tsv.gz", sep="\t", dtype={"CHROM": str})
    assert not ({"Y", "MT"} & set(res.CHROM))
    x_rows = res[res.CHROM == "X"]
    assert len(x_rows) > 100

    null = load_nulls(d / "q.null.h5")[0]["qt"]
    fid, iid = load_nulls(d / "q.null.h5")[1:3]
    fs = PlinkFileset(c.prefix)
    rows = sample_positions(fs, fid, iid)
    idx = np.flatnonzero(fs.variants.chrom == "X")
    g = fs.read(rows, idx).astype(float)
    assert (g[fs.samples.sex[rows] == 1] == 1).any(axis=0).mean() > 0.5  # heterozygous male calls
    sex = fs.samples.sex[rows]
    male = sex == 1
    g[male] = np.where(g[male] == 1, np.nan, g[male])
    g[sex == 0] = np.nan
    with np.errstate(invalid="ignore"):
        fill = np.nanmean(np.where(male[:, None], g * (1.0 if coding == "0/2" else 0.5), g), axis=0)
    alleles = np.nansum(np.where(male[:, None], g / 2, g), axis=0)
    number = (~np.isnan(g) & male[:, None]).sum(0) + 2 * (~np.isnan(g) & (sex == 2)[:, None]).sum(0)
    g[male] *= 1.0 if coding == "0/2" else 0.5
    g = np.where(np.isnan(g), fill, g)
    k = load_kinship(d / "g.grm.h5").align(fid, iid).matrix.astype(float)
    chisq = pd.Series(_oracle(null, k, g), index=fs.variants.id[idx])
    a1freq = pd.Series(alleles / number, index=fs.variants.id[idx])
    np.testing.assert_allclose(x_rows.CHISQ, chisq[x_rows.ID].to_numpy(), rtol=2e-4)
    np.testing.assert_allclose(x_rows.A1FREQ, a1freq[x_rows.ID].to_numpy(), rtol=1e-5)


def test_sex_from_a_file_and_a_missing_sex_is_one_line(cohort, tmp_path, capsys):
    c, d = cohort
    fam = pd.read_csv(f"{c.prefix}.fam", sep=r"\s+", header=None)
    for ext in (".bed", ".bim"):
        shutil.copy(f"{c.prefix}{ext}", tmp_path / f"n{ext}")
    nosex = fam.copy()
    nosex[4] = 0
    nosex.to_csv(tmp_path / "n.fam", sep=" ", header=False, index=False)
    base = ["scan", "--bfile", str(tmp_path / "n"), "--null", str(d / "q.null.h5"), "--out", str(tmp_path / "s")]
    capsys.readouterr()
    assert main(base) == 1
    assert "no sample has a sex" in capsys.readouterr().err.strip().splitlines()[-1]
    sex = pd.DataFrame({"FID": fam[0], "IID": fam[1], "SEX": np.where(fam[4] == 1, "M", "F")})
    sex.to_csv(tmp_path / "sex.txt", sep="\t", index=False)
    assert main([*base, "--sex", str(tmp_path / "sex.txt"), "--chr", "X"]) == 0
    assert "--sex" in (tmp_path / "s.log").read_text() and "0 unknown" in (tmp_path / "s.log").read_text()


def test_pseudo_autosomal_variants_are_tested_as_autosomal(cohort, tmp_path):
    """Variants marked XY (plink's 25) are not recoded for males: the dense oracle with the raw
    dosages (missing calls mean-imputed) gives their statistics."""
    c, d = cohort
    for ext in (".bed", ".fam"):
        shutil.copy(f"{c.prefix}{ext}", tmp_path / f"p{ext}")
    bim = pd.read_csv(f"{c.prefix}.bim", sep="\t", header=None, dtype=str)
    bim.loc[1000:1029, 0] = "25"
    bim.to_csv(tmp_path / "p.bim", sep="\t", header=False, index=False)
    assert main(["scan", "--bfile", str(tmp_path / "p"), "--null", str(d / "q.null.h5"), "--out",
                 str(tmp_path / "s"), "--mode", "exact", "--no-spa", "--chr", "XY"]) == 0
    res = pd.read_csv(tmp_path / "s.qt.tsv.gz", sep="\t", dtype={"CHROM": str})
    assert set(res.CHROM) == {"XY"} and len(res) > 20
    null = load_nulls(d / "q.null.h5")[0]["qt"]
    fid, iid = load_nulls(d / "q.null.h5")[1:3]
    fs = PlinkFileset(tmp_path / "p")
    rows = sample_positions(fs, fid, iid)
    idx = np.flatnonzero(fs.variants.chrom == "XY")
    g = fs.read(rows, idx).astype(float)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(g, axis=0)
    a1freq = pd.Series(mean / 2, index=fs.variants.id[idx])
    g = np.where(np.isnan(g), mean, g)
    k = load_kinship(d / "g.grm.h5").align(fid, iid).matrix.astype(float)
    chisq = pd.Series(_oracle(null, k, g), index=fs.variants.id[idx])
    np.testing.assert_allclose(res.CHISQ, chisq[res.ID].to_numpy(), rtol=2e-4)
    np.testing.assert_allclose(res.A1FREQ, a1freq[res.ID].to_numpy(), rtol=1e-5)
