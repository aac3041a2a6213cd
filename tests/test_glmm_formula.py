"""The lme4-style formula front end gives the same fits as the array front end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DATA

import gwas_glmm as gg
from gwas_glmm import InputError
from gwas_glmm.datasets import load as load_dataset
from gwas_glmm.mixed.formula import _parse_rhs, model_frame


def test_parse_bars_offsets_and_nesting():
    fixed, bars, offsets = _parse_rhs("x + C(z) + (1 + x | g) + (1 || a/b) + offset(log(T))")
    assert fixed == "x + C(z)"
    assert bars == [("1 + x", "g", True), ("1", "a", False), ("1", "a:b", False)]
    assert offsets == ["log(T)"]


def test_cbpp_formula_equals_arrays():
    d = load_dataset("cbpp")
    d["period"] = d.period.astype(str)
    fit = gg.glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=d, family="binomial")
    assert fit.coef_names == ["(Intercept)", "period[T.2]", "period[T.3]", "period[T.4]"]
    ref = pd.read_csv(DATA / "r" / "cbpp_tmb.tsv", sep="\t")
    np.testing.assert_allclose(fit.beta, ref.estimate[:4], rtol=1e-3)
    assert "herd" in fit.summary()


def test_offset_and_missing_rows_are_dropped():
    o = load_dataset("owls")
    o.loc[[3, 10], "ArrivalTime"] = np.nan  # a column the formula does not use: rows kept
    o.loc[[5], "BroodSize"] = np.nan  # used by the offset: row dropped
    frame = model_frame("SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) + (1 | Nest)", o)
    assert frame.n_dropped == 1 and len(frame.y) == len(o) - 1
    np.testing.assert_allclose(frame.offset, np.log(o.BroodSize.dropna().to_numpy()))


def test_known_covariance_by_name():
    rng = np.random.default_rng(0)
    n = 40
    z = rng.normal(size=(n, 80))
    k = z @ z.T / 80
    ids = [f"p{i}" for i in range(n)]
    df = pd.DataFrame({"id": np.repeat(ids, 2), "x": rng.normal(size=2 * n)})
    b = np.linalg.cholesky(k) @ rng.normal(size=n)
    df["y"] = 0.5 * df.x + np.repeat(b, 2) + rng.normal(size=2 * n)
    cov = pd.DataFrame(k, index=ids, columns=ids)
    fit = gg.glmm("y ~ x + (1 | id)", data=df, covariance={"id": cov})
    kin = gg.Kinship.from_array(k, iid=ids)
    direct = gg.fit_glmm(df.y, np.column_stack([np.ones(2 * n), df.x]),
                         [gg.KnownCovTerm.from_kinship("id", df.id, kin)])
    np.testing.assert_allclose(fit.beta, direct.beta, rtol=1e-8)
    assert fit.loglik == pytest.approx(direct.loglik, abs=1e-8)


def test_formula_errors_are_one_line():
    s = load_dataset("sleepstudy")
    with pytest.raises(InputError, match="names 'Dayz' .* not a column of the data; columns are: Reaction, Days"):
        gg.glmm("Reaction ~ Dayz + (1 | Subject)", s)
    with pytest.raises(InputError, match="grouping factor 'Subjekt'"):
        gg.glmm("Reaction ~ Days + (1 | Subjekt)", s)
    with pytest.raises(InputError, match="no random-effect term"):
        gg.glmm("Reaction ~ Days", s)
    with pytest.raises(InputError, match="no '~'"):
        gg.glmm("Reaction", s)
    with pytest.raises(InputError, match="unknown family"):
        gg.glmm("Reaction ~ Days + (1 | Subject)", s, family="gama")
    with pytest.raises(InputError, match="covariance given for id"):
        gg.glmm("Reaction ~ Days + (1 | Subject)", s, covariance={"id": gg.Kinship.from_array(np.eye(2))})
