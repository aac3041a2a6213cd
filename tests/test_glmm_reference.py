"""The GLMM core against R: lme4 (REML/ML, Laplace estimates and logLik) and glmmTMB (Laplace
with an exact Hessian: also the standard errors).  References made by
scripts/make_reference/r_glmm.R from the datasets shipped with lme4 and glmmTMB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DATA
from scipy import stats

from gwas_glmm.datasets import load as load_dataset
from gwas_glmm.mixed.model import fit_glmm
from gwas_glmm.mixed.terms import GroupTerm, encode

R = DATA / "r"


def ref(name):
    t = pd.read_csv(R / f"{name}.tsv", sep="\t")
    fixed = t[t.what == "fixed"]
    return {"beta": fixed.estimate.to_numpy(), "se": fixed.se.to_numpy(),
            "sd": dict(zip(t[t.what == "sd"].name, t[t.what == "sd"].estimate)),
            "cor": dict(zip(t[t.what == "cor"].name, t[t.what == "cor"].estimate)),
            "theta": t[t.what == "dispersion"].estimate.to_numpy(),
            "loglik": float(t[t.what == "loglik"].estimate.iloc[0]), "df": int(t[t.what == "df"].estimate.iloc[0])}


def intercept(d, col):
    codes, levels = encode(d[col], col)
    return GroupTerm(col, codes, levels, np.ones((len(d), 1)), ["(Intercept)"])


def check(fit, r, *, se=True, rel=1e-3, ll=1e-3):
    np.testing.assert_allclose(fit.beta, r["beta"], rtol=rel, atol=1e-6)
    if se:
        np.testing.assert_allclose(fit.se, r["se"], rtol=rel)
    sds = {f"{c.group}:{n}": sd for c in fit.components for n, sd in zip(c.names, c.sd)}
    for name, value in r["sd"].items():
        if name.startswith("Residual"):
            assert fit.sigma == pytest.approx(value, rel=rel)
        else:
            assert sds[name] == pytest.approx(value, rel=rel), name
    assert fit.loglik == pytest.approx(r["loglik"], abs=ll)
    assert fit.n_params == r["df"]


@pytest.fixture(scope="module")
def sleep():
    d = load_dataset("sleepstudy")
    return d, np.column_stack([np.ones(len(d)), d.Days])


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_sleepstudy_correlated_slopes(sleep, method):
    d, x = sleep
    codes, levels = encode(d.Subject, "Subject")
    term = GroupTerm("Subject", codes, levels, x, ["(Intercept)", "Days"])
    fit = fit_glmm(d.Reaction, x, [term], method=method)
    r = ref(f"sleepstudy_{method.lower()}")
    check(fit, r)
    corr = fit.components[0].correlation[1, 0]
    assert corr == pytest.approx(r["cor"]["Subject:(Intercept):Days"], rel=1e-3)


def test_sleepstudy_uncorrelated(sleep):
    d, x = sleep
    codes, levels = encode(d.Subject, "Subject")
    term = GroupTerm("Subject", codes, levels, x, ["(Intercept)", "Days"], correlated=False)
    fit = fit_glmm(d.Reaction, x, [term])
    r = ref("sleepstudy_uncorr_reml")
    np.testing.assert_allclose(fit.beta, r["beta"], rtol=1e-3)
    np.testing.assert_allclose(fit.se, r["se"], rtol=1e-3)
    np.testing.assert_allclose(fit.components[0].sd, [r["sd"]["Subject:(Intercept)"], r["sd"]["Subject.1:Days"]],
                               rtol=1e-3)
    assert fit.loglik == pytest.approx(r["loglik"], abs=1e-3)


@pytest.fixture(scope="module")
def cbpp_fit():
    d = load_dataset("cbpp")
    x = np.column_stack([np.ones(len(d))] + [(d.period == k).astype(float) for k in (2, 3, 4)])
    return fit_glmm(d.incidence / d["size"], x, [intercept(d, "herd")], family="binomial", weights=d["size"])


def test_cbpp_binomial_laplace(cbpp_fit):
    check(cbpp_fit, ref("cbpp_tmb"))  # glmmTMB: estimates, exact-Hessian SEs, logLik
    check(cbpp_fit, ref("cbpp_laplace"), se=False)  # lme4 glmer: estimates and logLik


def test_cbpp_adaptive_quadrature():
    d = load_dataset("cbpp")
    x = np.column_stack([np.ones(len(d))] + [(d.period == k).astype(float) for k in (2, 3, 4)])
    fit = fit_glmm(d.incidence / d["size"], x, [intercept(d, "herd")], family="binomial", weights=d["size"],
                   method="AGQ", n_agq=25)
    r = ref("cbpp_agq25")
    # lme4 reports the nAGQ > 1 log-likelihood relative to the saturated model
    saturated = stats.binom.logpmf(d.incidence, d["size"], d.incidence / d["size"]).sum()
    r["loglik"] += saturated
    check(fit, r)
    assert fit.method == "AGQ(25)"


def test_grouseticks_crossed_poisson():
    g = load_dataset("grouseticks")
    x = np.column_stack([np.ones(len(g)), g.YEAR == 96, g.YEAR == 97, g.HEIGHT - g.HEIGHT.mean()]).astype(float)
    fit = fit_glmm(g.TICKS, x, [intercept(g, c) for c in ("BROOD", "INDEX", "LOCATION")], family="poisson")
    check(fit, ref("grouseticks_tmb"))
    check(fit, ref("grouseticks_laplace"), se=False)


@pytest.fixture(scope="module")
def owls():
    o = load_dataset("owls")
    sat = (o.FoodTreatment == "Satiated").astype(float)
    male = (o.SexParent == "Male").astype(float)
    return o, np.column_stack([np.ones(len(o)), sat, male, sat * male])


@pytest.mark.parametrize("family,name", [("negbin", "owls_nb2"), ("poisson", "owls_poisson")])
def test_owls_counts_with_offset(owls, family, name):
    o, x = owls
    fit = fit_glmm(o.SiblingNegotiation, x, [intercept(o, "Nest")], family=family, offset=np.log(o.BroodSize))
    r = ref(name)
    check(fit, r)
    if family == "negbin":
        assert fit.dispersion == pytest.approx(r["theta"][0], rel=1e-3)
