"""The lme4-style formula front end gives the same fits as the array front end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DATA

import gwas_glmm as gg
from gwas_glmm import InputError
from gwas_glmm.datasets import load as load_dataset
from gwas_glmm.mixed import GroupTerm, fit_glmm
from gwas_glmm.mixed.formula import _parse_rhs, model_frame
from gwas_glmm.mixed.terms import encode


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


def test_terms_sharing_a_grouping_factor_keep_both_modes():
    """Two terms on one grouping factor are two results, named as lme4 names them (``Subject``,
    ``Subject.1``): the intercepts' modes were once overwritten by the slopes'.  Reference: lme4,
    ``lmer(Reaction ~ Days + (Days || Subject), sleepstudy)`` (scripts/make_reference/r_glmm.R),
    the same model as the two terms written out, which ``(Days || Subject)`` expands to here as
    in lme4; the one-term form with a diagonal covariance (``GroupTerm(correlated=False)``) must
    give the same modes in its two columns."""
    d = load_dataset("sleepstudy")
    fit = gg.glmm("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", data=d)
    assert [c.group for c in fit.components] == ["Subject", "Subject.1"]
    assert set(fit.random_effects) == {"Subject", "Subject.1"} == set(fit.conditional_se)
    ref = pd.read_csv(DATA / "r" / "sleepstudy_uncorr_reml.tsv", sep="\t")
    sd = dict(zip(ref.name, ref.estimate))
    np.testing.assert_allclose([c.sd[0] for c in fit.components], [sd["Subject:(Intercept)"], sd["Subject.1:Days"]],
                               rtol=1e-3)
    np.testing.assert_allclose(fit.sigma, sd["Residual:NA"], rtol=1e-3)
    np.testing.assert_allclose(fit.beta, ref.estimate[:2], rtol=1e-4)
    levels, intercepts = fit.random_effects["Subject"]
    levels_1, slopes = fit.random_effects["Subject.1"]
    assert list(levels) == list(levels_1)
    assert not np.allclose(intercepts, slopes)
    expanded = gg.glmm("Reaction ~ Days + (Days || Subject)", data=d)
    assert [c.group for c in expanded.components] == ["Subject", "Subject.1"]
    assert expanded.loglik == pytest.approx(fit.loglik, abs=1e-8)
    codes, levels = encode(d.Subject, "Subject")
    one_term = fit_glmm(d.Reaction, np.column_stack([np.ones(len(d)), d.Days]),
                        [GroupTerm("Subject", codes, levels, np.column_stack([np.ones(len(d)), d.Days]),
                                   ["(Intercept)", "Days"], correlated=False)])
    both = np.column_stack([intercepts[:, 0], slopes[:, 0]])
    np.testing.assert_allclose(one_term.random_effects["Subject"][1], both, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.column_stack([fit.conditional_se["Subject"][:, 0], fit.conditional_se["Subject.1"][:, 0]]),
                               one_term.conditional_se["Subject"], rtol=1e-4)
    # the two terms' modes together give the model's random part, Z b = A(theta) u
    terms = fit.extra["terms"]
    row = {str(v): k for k, v in enumerate(levels)}
    codes = np.array([row[str(s)] for s in d.Subject])
    np.testing.assert_allclose(intercepts[codes, 0] + slopes[codes, 0] * d.Days.to_numpy(),
                               np.asarray(terms.design(fit.theta) @ fit.u).ravel(), atol=1e-8)
    assert fit.variance_shares().keys() == {"Subject", "Subject.1", "Residual"}


def test_unique_names_follow_make_unique():
    from gwas_glmm.mixed.terms import unique_names

    assert unique_names(["study", "study", "herd"]) == ["study", "study.1", "herd"]
    assert unique_names(["a", "a", "a.1", "a"]) == ["a", "a.2", "a.1", "a.3"]


def test_summary_reads_as_lme4s():
    """A linear mixed model is headed as one with its REML criterion (lme4 1.1: 1743.6 for
    ``Reaction ~ Days + (Days | Subject)``), p-values under 2e-16 print as ``<2e-16``, and the
    columns stay aligned for long names."""
    d = load_dataset("sleepstudy").rename(columns={"Days": "days_of_sleep_deprivation"})
    text = gg.glmm("Reaction ~ days_of_sleep_deprivation + (days_of_sleep_deprivation | Subject)", data=d).summary()
    lines = text.splitlines()
    assert lines[0] == "Linear mixed model fit by REML"
    assert lines[1] == "REML criterion at convergence: 1743.6"
    fixed = lines[lines.index("Fixed effects:") + 1:]
    assert fixed[1].startswith(" (Intercept) ") and fixed[1].endswith("<2e-16")
    assert fixed[2].startswith(" days_of_sleep_deprivation ")
    assert len({len(line) for line in fixed[:3]}) == 1  # header and rows end in the same column
    random = lines[lines.index("Random effects:") + 1:lines.index("Random effects:") + 5]
    assert random[2].split()[0] == "days_of_sleep_deprivation" and "0.07" in random[2]  # lme4: Corr 0.07
    ml = gg.glmm("Reaction ~ days_of_sleep_deprivation + (1 | Subject)", data=d, method="ML").summary()
    assert ml.splitlines()[0] == "Linear mixed model fit by maximum likelihood" and "AIC" in ml
    glmm_text = gg.glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=load_dataset("cbpp"),
                        family="binomial").summary()
    assert glmm_text.startswith("Generalized linear mixed model fit by Laplace [binomial(logit)]")


@pytest.fixture(scope="module")
def cbpp_named():
    d = load_dataset("cbpp")
    d["period"] = d.period.astype(str)
    return d, gg.glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=d, family="binomial")


def test_named_results_as_lme4_gives_them(cbpp_named):
    d, fit = cbpp_named
    fixef = fit.fixef
    assert list(fixef.index) == fit.coef_names and np.array_equal(fixef.to_numpy(), fit.beta)
    assert fit.params is not None and fit.params.equals(fixef)
    assert fit.coef("period2") == fit.coef("period[T.2]") == fixef["period[T.2]"]  # R's spelling and ours
    with pytest.raises(KeyError, match="period9"):
        fit.coef("period9")
    vcov = fit.vcov
    assert list(vcov.columns) == fit.coef_names and np.array_equal(vcov.to_numpy(), fit.cov_beta)
    ranef = fit.ranef(condVar=True)
    herd = ranef["herd"]
    assert herd.index.name == "herd" and list(herd.columns) == ["(Intercept)"]
    assert list(herd.index) == list(range(1, 16))  # numbers in numeric order
    assert herd.attrs["postVar"].shape == (15, 1, 1)
    np.testing.assert_allclose(herd.attrs["condsd"].to_numpy(), fit.conditional_se["herd"])
    cov_theta = fit.cov_theta
    assert list(cov_theta.index) == fit.theta_names == ["herd.(Intercept)"]
    assert cov_theta.iloc[0, 0] > 0


def test_levels_keep_their_natural_order():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(1, 13), 6)  # 1..12: as strings 10, 11, 12 would come before 2
    df = pd.DataFrame({"g": g, "y": rng.normal(size=12)[g - 1] + rng.normal(size=g.size)})
    fit = gg.glmm("y ~ 1 + (1 | g)", df)
    assert list(fit.ranef()["g"].index) == list(range(1, 13))
    df["c"] = pd.Categorical(df.g.map(lambda v: f"L{v}"), categories=[f"L{v}" for v in range(12, 0, -1)])
    fit_c = gg.glmm("y ~ 1 + (1 | c)", df)
    assert list(fit_c.ranef()["c"].index) == [f"L{v}" for v in range(12, 0, -1)]  # the categorical's order
    np.testing.assert_allclose(fit_c.ranef()["c"].to_numpy()[::-1], fit.ranef()["g"].to_numpy(), atol=1e-8)
    # predictions for new rows find their levels whatever the order
    np.testing.assert_allclose(fit.predict(df.head(8)), fit.predict()[:8], atol=1e-10)
    np.testing.assert_allclose(fit_c.predict(df.head(8)), fit.predict()[:8], atol=1e-6)


def test_lme4_argument_spellings(cbpp_named):
    d, fit = cbpp_named
    sleep = load_dataset("sleepstudy")
    ml = gg.glmm("Reaction ~ Days + (Days | Subject)", sleep, method="ML")
    assert gg.glmm("Reaction ~ Days + (Days | Subject)", sleep, REML=False).loglik == pytest.approx(ml.loglik, abs=1e-9)
    with pytest.raises(InputError, match="disagree"):
        gg.glmm("Reaction ~ Days + (Days | Subject)", sleep, REML=True, method="ML")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    agq = gg.glmm(formula, d, family="binomial", n_agq=5)
    assert gg.glmm(formula, d, family="binomial", nAGQ=5).loglik == pytest.approx(agq.loglik, abs=1e-9)
    with pytest.raises(InputError, match="nAGQ=0"):
        gg.glmm(formula, d, family="binomial", nAGQ=0)
    probit = gg.glmm(formula, d, family="binomial", link="probit")
    for spelling in ("binomial(link = 'probit')", 'binomial(link="probit")', "binomial('probit')"):
        np.testing.assert_allclose(gg.glmm(formula, d, family=spelling).beta, probit.beta, rtol=1e-9)
    with pytest.raises(InputError, match="disagree"):
        gg.glmm(formula, d, family="binomial(link = 'probit')", link="logit")


def test_prediction_and_standardization_from_the_package_and_the_fit(cbpp_named):
    from gwas_glmm.mixed import marginal

    d, fit = cbpp_named
    assert gg.predict is marginal.predict and gg.standardize is marginal.standardize
    np.testing.assert_allclose(fit.predict(type="marginal"), marginal.predict(fit, type="marginal"))
    via_fit = fit.standardize("period", "4", "1")
    assert via_fit.risk_difference == marginal.standardize(fit, "period", "4", "1").risk_difference


def test_pql_from_the_formula_is_the_working_models_reml_fixed_point(cbpp_named):
    """``method="PQL"``: at convergence tau maximises the REML likelihood of the working LMM
    y~ ~ N(X beta, W^-1 + tau Z Z'), beta is its GLS estimate and the herd modes are tau Z' P y~,
    all computed here by brute force with explicit inverses."""
    from scipy import optimize

    d, laplace = cbpp_named
    fit = gg.glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", d, family="binomial", method="PQL")
    assert fit.method == "PQL" and fit.converged
    wm = fit.extra["working"]
    x = fit.extra["x"]
    z = (d.herd.to_numpy()[:, None] == np.arange(1, 16)[None, :]).astype(float)
    k = z @ z.T

    def neg_reml(tau):
        v = np.diag(1 / wm.w) + tau * k
        vi = np.linalg.inv(v)
        xvx = x.T @ vi @ x
        p = vi - vi @ x @ np.linalg.solve(xvx, x.T @ vi)
        return 0.5 * (np.linalg.slogdet(v)[1] + np.linalg.slogdet(xvx)[1] + wm.y_work @ p @ wm.y_work)

    best = optimize.minimize_scalar(neg_reml, bounds=(1e-6, 10), method="bounded", options={"xatol": 1e-10})
    tau = fit.components[0].covariance[0, 0]
    assert tau == pytest.approx(best.x, rel=1e-4)
    vi = np.linalg.inv(np.diag(1 / wm.w) + tau * k)
    beta = np.linalg.solve(x.T @ vi @ x, x.T @ vi @ wm.y_work)
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-6)
    modes = tau * z.T @ vi @ (wm.y_work - x @ beta)
    np.testing.assert_allclose(fit.ranef()["herd"].to_numpy()[:, 0], modes, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fit.beta, laplace.beta, atol=0.1)  # PQL is near the Laplace fit, not equal
    with pytest.raises(ValueError, match="PQL fits have none"):
        fit.ranef(condVar=True)
    with pytest.raises(InputError, match="non-Gaussian"):
        gg.glmm("Reaction ~ Days + (1 | Subject)", load_dataset("sleepstudy"), method="PQL")
    with pytest.raises(InputError, match="split the term"):
        gg.glmm("cbind(incidence, size - incidence) ~ period + (period | herd)", d, family="binomial", method="PQL")
    # what that message asks for: || splits the term into one term a column, each PQL takes
    d["t"] = d.period.astype(float)
    split = gg.glmm("cbind(incidence, size - incidence) ~ t + (t || herd)", d, family="binomial", method="PQL")
    assert [c.group for c in split.components] == ["herd", "herd.1"]
