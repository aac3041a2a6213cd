"""Quantitative-trait score tests against gemma -lmm 4 (p_score) on the same files and GRM
(reference made by scripts/make_reference/gemma_score.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bed_reader import open_bed
from conftest import DATA

from gwas_glmm import GrmConfig, PlinkFileset, compute_grm
from gwas_glmm.gwas import fit_null, score_test


def test_score_pvalues_agree_with_gemma(reference_fileset):
    ref = pd.read_csv(DATA / "gemma" / "lmm4.assoc.tsv", sep="\t")
    y = np.loadtxt(DATA / "gemma" / "pheno.txt")
    x = np.loadtxt(DATA / "gemma" / "covar.txt")
    fs = PlinkFileset(reference_fileset)
    kin, _ = compute_grm(fs, config=GrmConfig(missing="mean-impute", double=True))
    null = fit_null(y, x, kin, "gaussian")
    geno = open_bed(f"{reference_fileset}.bed").read(dtype="float64")
    index = {v: k for k, v in enumerate(fs.variants.id)}
    cols = np.array([index[r] for r in ref.rs])
    g = geno[:, cols]
    g = np.where(np.isnan(g), np.nanmean(g, axis=0), g)  # gemma mean-imputes missing calls
    res = score_test(null, g)
    ours, theirs = res.log10p, -np.log10(ref.p_score.to_numpy())
    assert np.corrcoef(ours, theirs)[0, 1] > 0.9999
    # gemma scales its score statistic by y'Py / n where we use the REML residual variance
    # (y'Py / (n - p)): chi-squares differ by up to n / (n - p) = 1.007 here
    assert np.max(np.abs(ours - theirs)) < 0.1
    # same allele orientation: our score-based effect has the sign of gemma's beta
    strong = np.abs(ref.beta / ref.se) > 1
    assert np.all(np.sign(res.beta[strong]) == np.sign(ref.beta[strong]))
