"""Simulator properties: determinism, MAF spectrum, missingness, relatedness, heritability, prevalence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_glmm import InputError, PlinkFileset, SimulationConfig, simulate_cohort, variant_stats


def _files(prefix):
    return {p.name: p.read_bytes() for p in Path(prefix).parent.glob(Path(prefix).name + ".*")
            if not p.name.endswith(".log")}


def test_same_seed_same_files(tmp_path):
    cfg = SimulationConfig(n_samples=80, n_variants=700, seed=5)
    a = simulate_cohort(tmp_path / "a" / "c", cfg, show_progress=False)
    b = simulate_cohort(tmp_path / "b" / "c", cfg, show_progress=False)
    fa, fb = _files(a.prefix), _files(b.prefix)
    assert set(fa) == {"c.bed", "c.bim", "c.fam", "c.pheno", "c.covar", "c.truth.tsv", "c.pairs.tsv", "c.sim.json"}
    assert fa == fb
    c = simulate_cohort(tmp_path / "c" / "c", SimulationConfig(n_samples=80, n_variants=700, seed=6),
                        show_progress=False)
    assert _files(c.prefix)["c.bed"] != fa["c.bed"]


def test_layout_and_maf_spectrum(one_population_cohort):
    fs = PlinkFileset(one_population_cohort.bfile)
    assert set(fs.variants.chrom) == {str(c) for c in range(1, 23)}
    for c in set(fs.variants.chrom):
        pos = fs.variants.pos[fs.variants.chrom == c]
        assert np.all(np.diff(pos) > 0)
    _, stats = variant_stats(fs)
    maf = stats.maf
    rare = np.mean(maf < 0.05)
    assert 0.22 < rare < 0.40, rare  # 30% drawn below 0.05, sampling noise aside
    assert np.mean(maf < 0.01) > 0.03  # rare variants down to MAF 0.5% are present
    assert np.all(maf <= 0.5)
    assert len(fs.variants) == 6000 and fs.n_samples == 600


def test_missing_rate(small_cohort):
    _, stats = variant_stats(PlinkFileset(small_cohort.bfile))
    assert 0.016 < stats.missing_rate.mean() < 0.024  # target 0.02
    assert stats.missing_rate.max() < 0.5


def test_relatedness_matches_pedigree(one_population_cohort):
    """Brute-force dense GRM (GCTA definition) against the expected relatedness of each pair kind."""
    fs = PlinkFileset(one_population_cohort.bfile)
    x = fs.read().astype(np.float64)
    p = np.nanmean(x, axis=0) / 2
    keep = (p > 0.01) & (p < 0.99)
    z = (x[:, keep] - 2 * p[keep]) / np.sqrt(2 * p[keep] * (1 - p[keep]))
    grm = z @ z.T / keep.sum()
    pairs = pd.read_csv(f"{one_population_cohort.prefix}.pairs.tsv", sep="\t")
    pos = {iid: k for k, iid in enumerate(fs.samples.iid)}
    i = pairs["IID1"].map(pos).to_numpy()
    j = pairs["IID2"].map(pos).to_numpy()
    pairs["GRM"] = grm[i, j]
    by_kind = pairs.groupby("RELATION").agg(mean=("GRM", "mean"), expected=("EXPECTED_RELATEDNESS", "first"),
                                            n=("GRM", "size"))
    assert set(by_kind.index) == {"parent-offspring", "full-sibling", "avuncular", "first-cousin"}
    assert (by_kind["n"] >= 20).all()
    np.testing.assert_allclose(by_kind["mean"], by_kind["expected"], atol=0.03)
    related = np.zeros_like(grm, dtype=bool)
    related[i, j] = related[j, i] = True
    fam = fs.samples.fid
    same_family = fam[:, None] == fam[None, :]
    off = ~np.eye(len(grm), dtype=bool) & ~related & ~same_family
    assert abs(grm[off].mean()) < 0.01
    assert abs(np.diag(grm).mean() - 1) < 0.03


def test_heritability_and_truth_reproduce_the_phenotype(small_cohort):
    """Genetic values rebuilt from the .bed and truth.tsv explain the phenotype as simulated."""
    fs = PlinkFileset(small_cohort.bfile)
    truth = pd.read_csv(f"{small_cohort.prefix}.truth.tsv", sep="\t")
    record = json.loads(Path(f"{small_cohort.prefix}.sim.json").read_text())
    pheno = pd.read_csv(small_cohort.pheno, sep="\t", na_values="NA")
    covar = pd.read_csv(small_cohort.covar, sep="\t")
    x = fs.read()
    for trait in ("qt", "bt1"):
        g = _g(fs, truth, trait, x)
        summary = next(s for s in record["traits"] if s["name"] == trait)
        assert g.var() == pytest.approx(summary["realized_genetic_variance"], rel=1e-6)
        assert g.var() == pytest.approx(0.4, abs=0.05)
        assert len(truth[(truth.TRAIT == trait) & (truth.KIND == "large")]) == 5
    y = pheno["qt"].to_numpy()
    ok = ~np.isnan(y)
    g_qt = _g(fs, truth, "qt", x)[ok]
    pops = pd.get_dummies(covar["pop"]).to_numpy(float)[ok][:, 1:]
    design = np.column_stack([np.ones(ok.sum()), covar.age[ok], covar.sex[ok] == 2, pops, g_qt])
    coef, res, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    assert coef[-1] == pytest.approx(1.0, abs=0.25)
    assert coef[1] == pytest.approx(0.02, abs=0.01)  # age effect per year
    resid_var = res[0] / (ok.sum() - design.shape[1])
    assert resid_var == pytest.approx(0.6, abs=0.12)
    assert np.corrcoef(g_qt, y[ok])[0, 1] > 0.4


def _g(fs, truth, trait, x):
    t = truth[truth.TRAIT == trait]
    pos = pd.Series(np.arange(fs.n_variants), index=fs.variants.id)
    xc = np.nan_to_num(x[:, pos[t.ID].to_numpy()] - 2 * t.A1FREQ.to_numpy())
    return xc @ t.BETA.to_numpy()


def test_prevalence_and_counts(small_cohort):
    pheno = pd.read_csv(small_cohort.pheno, sep="\t", na_values="NA")
    covar = pd.read_csv(small_cohort.covar, sep="\t")
    assert pheno["bt1"].mean() == pytest.approx(0.10, abs=0.02)
    assert pheno["bt2"].mean() == pytest.approx(0.01, abs=0.01)
    assert set(pheno["bt1"].dropna().unique()) == {0, 1}
    counts = pheno["count"].dropna()
    assert (counts >= 0).all() and (counts == counts.round()).all()
    rate = pheno["count"] / covar["followup"]
    assert 0.5 < rate.median() < 3.0  # base rate 1 per unit exposure, times covariate and genetic effects
    assert np.corrcoef(covar["followup"][pheno["count"].notna()], counts)[0, 1] > 0.3
    assert pheno.isna().mean().max() < 0.05  # about 1% missing per trait


def test_bad_configuration():
    with pytest.raises(InputError, match="fst"):
        SimulationConfig(fst=0.9)
    with pytest.raises(InputError, match="n_samples"):
        SimulationConfig(n_samples=3)
    with pytest.raises(InputError, match="large"):
        SimulationConfig(n_large=30, large_fraction=0.05)
