"""lme4-style formulas: ``glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=df,
family="binomial")``.

Fixed effects, factors (pandas categoricals and strings; ``C(x)`` for numbers) and interactions
are built by formulaic; this module adds what lme4 has and formulaic does not:

* random-effect terms ``(expr | group)`` (correlated coefficients) and ``(expr || group)``
  (independent: one term a column, as lme4 expands it, named ``group``, ``group.1``, ...),
  ``group`` a column, ``g1:g2`` (interaction) or ``g1/g2`` (nested: both
  ``g1`` and ``g1:g2``);
* ``(1 | id)`` whose covariance is a known matrix: ``covariance={"id": K}`` with K a
  :class:`~gwas_glmm.kinship.Kinship` or a pandas DataFrame indexed by the IDs;
* ``offset(expr)`` terms, and ``cbind(successes, failures)`` responses for binomial counts;
* ``log``, ``exp``, ``sqrt`` usable inside expressions.

Rows with a missing value in any variable the formula uses are dropped (and counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._progress import get_logger
from ..exceptions import InputError
from ..kinship import Kinship
from .family import get_family
from .model import _ranef, fit_glmm
from .results import GlmmResult, VarianceComponent
from .terms import GroupTerm, KnownCovTerm, encode

log = get_logger("glmm")
CONTEXT = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "np": np}


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _parse_rhs(rhs: str):
    """(fixed-effects formula, [(expr, group, correlated)], [offset exprs])."""
    fixed, bars, offsets = [], [], []
    for term in _split_top(rhs, "+"):
        if not term:
            continue
        inner = term[1:-1].strip() if term.startswith("(") and term.endswith(")") else None
        if inner is not None and "|" in inner:
            double = "||" in inner
            expr, group = (s.strip() for s in inner.split("||" if double else "|", 1))
            for g in _expand_nesting(group):
                bars.append((expr, g, not double))
        elif re.fullmatch(r"offset\((.*)\)", term):
            offsets.append(term[len("offset("):-1])
        else:
            fixed.append(term)
    return " + ".join(fixed) if fixed else "1", bars, offsets


def _expand_nesting(group: str) -> list[str]:
    parts = [p.strip() for p in group.split("/")]
    return [":".join(parts[: k + 1]) for k in range(len(parts))]


def _columns(data: pd.DataFrame, formula: str, what: str) -> pd.DataFrame:
    import formulaic

    try:
        mm = formulaic.model_matrix(formula, data, context=CONTEXT, na_action="ignore")
    except Exception as exc:  # formulaic's errors name the factor that failed
        message = str(exc).split("\n")[0]
        missing = re.search(r"`([^`]+)` is not present", message)
        if missing:
            raise InputError(f"the formula names {missing.group(1)!r} ({what}), which is not a column of the data; "
                             f"columns are: {', '.join(map(str, data.columns))}") from None
        raise InputError(f"cannot evaluate {what} {formula!r}: {message}") from None
    return mm


def _values(data: pd.DataFrame, expr: str, what: str) -> np.ndarray:
    """One numeric column from an arithmetic expression (``size - incidence``, ``log(T)``); a
    numeric column named as it is, without formulaic's parse (a third of a small model's frame)."""
    column = data[expr] if expr in data.columns else None
    if isinstance(column, pd.Series) and column.dtype.kind in "biuf":  # (two columns of that name: a frame)
        return column.to_numpy(dtype=float)
    values = _columns(data, f"0 + I({expr})", what).to_numpy()
    if values.shape[1] != 1:
        raise InputError(f"{what} {expr!r} must be numeric (one column), got {values.shape[1]} columns")
    return values[:, 0].astype(float)


def _group_codes(data: pd.DataFrame, group: str):
    cols = [c.strip() for c in group.split(":")]
    for c in cols:
        if c not in data.columns:
            raise InputError(f"the formula names grouping factor {c!r}, which is not a column of the data; "
                             f"columns are: {', '.join(map(str, data.columns))}")
    parts = [_natural_codes(data[c], c) for c in cols]
    if len(parts) == 1:
        return parts[0]
    combos, codes = np.unique(np.column_stack([p[0] for p in parts]), axis=0, return_inverse=True)
    levels = np.array([":".join(str(parts[j][1][k]) for j, k in enumerate(combo)) for combo in combos], dtype=object)
    return codes.ravel().astype(np.int64), levels


def _natural_codes(column: pd.Series, name: str):
    """(codes, levels) of one grouping column with its levels in their natural order, as R's
    factor(): a categorical's own order, numbers numerically (Subject 308 < 1000, not as
    strings), anything else as sorted strings."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.cat.remove_unused_categories()
        return column.cat.codes.to_numpy().astype(np.int64), np.asarray(column.cat.categories, dtype=object)
    values = column.to_numpy()
    return encode(values if values.dtype.kind in "biuf" else values.astype(str), name)


def _as_kinship(name: str, value) -> Kinship:
    if isinstance(value, Kinship):
        return value
    if isinstance(value, pd.DataFrame):
        return Kinship.from_array(value.to_numpy(), iid=[str(i) for i in value.index], source=f"covariance of {name!r}")
    raise InputError(f"covariance for {name!r} must be a Kinship or a DataFrame indexed by the IDs")


@dataclass
class ModelFrame:
    y: np.ndarray
    x: np.ndarray
    coef_names: list[str]
    weights: np.ndarray
    offset: np.ndarray
    terms: list
    n_dropped: int
    fixed_spec: object  # formulaic ModelSpec, to rebuild X for new data
    offsets: list[str]
    data: pd.DataFrame


def model_frame(formula: str, data: pd.DataFrame, *, covariance: dict | None = None) -> ModelFrame:
    if "~" not in formula:
        raise InputError(f"formula {formula!r} has no '~' (write it as response ~ terms)")
    lhs, rhs = (s.strip() for s in formula.split("~", 1))
    fixed, bars, offsets = _parse_rhs(rhs)
    covariance = dict(covariance or {})
    used = set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", formula)) & set(map(str, data.columns))
    complete = data[list(used)].notna().all(axis=1) if used else pd.Series(True, index=data.index)
    n_dropped = int((~complete).sum())
    if n_dropped:
        log.info("%d of %d rows have missing values in the model's variables and are dropped", n_dropped, len(data))
    data = data.loc[complete].reset_index(drop=True)
    if data.empty:
        raise InputError("no rows left once rows with missing values are dropped")
    cb = re.fullmatch(r"cbind\((.*)\)", lhs)
    if cb:
        succ, fail = _split_top(cb.group(1), ",")
        s = _values(data, succ, "the response")
        f = _values(data, fail, "the response")
        trials = s + f
        if np.any(trials <= 0):
            raise InputError("cbind(successes, failures): some rows have no trials")
        y, weights = s / trials, trials
    else:
        y = _values(data, lhs, "the response")
        weights = np.ones(len(y))
    mm = _columns(data, fixed, "the fixed effects")
    designs = {fixed: mm}  # y ~ x + (x | g): one design for both
    x = mm.to_numpy().astype(float)
    names = ["(Intercept)" if c == "Intercept" else c for c in mm.columns]
    offset = np.zeros(len(y))
    for expr in offsets:
        offset += _values(data, expr, "an offset")
    terms = []
    for expr, group, correlated in bars:
        if group in covariance:
            if expr.replace(" ", "") not in ("1", "1+0"):
                raise InputError(f"a known covariance applies to a random intercept: write (1 | {group})")
            kin = _as_kinship(group, covariance[group])
            terms.append(KnownCovTerm.from_kinship(group, data[group].astype(str).to_numpy(), kin))
            continue
        codes, levels = _group_codes(data, group)
        rm = designs.get(expr)
        if rm is None:
            rm = designs[expr] = _columns(data, expr, f"the random effects of {group!r}")
        xr = rm.to_numpy().astype(float)
        rnames = ["(Intercept)" if c == "Intercept" else c for c in rm.columns]
        if correlated:
            terms.append(GroupTerm(group, codes, levels, xr, rnames))
        else:  # lme4 expands (x || g) into (1 | g) + (0 + x | g): one term a column, named g, g.1, ...
            terms.extend(GroupTerm(group, codes, levels, xr[:, [k]], [name]) for k, name in enumerate(rnames))
    unknown = set(covariance) - {g for _, g, _ in bars}
    if unknown:
        raise InputError(f"covariance given for {', '.join(sorted(unknown))}, which no (1 | ...) term uses")
    if not terms:
        raise InputError("the formula has no random-effect term such as (1 | group)")
    return ModelFrame(y, x, names, weights, offset, terms, n_dropped, mm.model_spec, offsets, data)


def glmm(formula: str, data: pd.DataFrame, family: str = "gaussian", link: str | None = None, *,
         covariance: dict | None = None, weights=None, method: str | None = None, n_agq: int = 1,
         REML: bool | None = None, nAGQ: int | None = None) -> GlmmResult:  # noqa: N803 (lme4's spellings)
    """Fit a GLMM from an lme4-style formula and a DataFrame (see the module docstring).

    lme4's spellings are accepted where they mean the same: ``REML=False`` (``method="ML"``),
    ``nAGQ=k`` (``n_agq=k``), ``family="binomial(link = 'probit')"``.  ``method="PQL"``:
    penalized quasi-likelihood (GMMAT's and MASS::glmmPQL's approach) for non-Gaussian families,
    with random intercepts, single uncorrelated slopes and known covariances.

    >>> import pandas as pd, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"g": np.repeat(list("abcdefgh"), 10), "x": rng.normal(size=80)})
    >>> df["y"] = 1 + df.x + np.repeat(rng.normal(size=8), 10) + rng.normal(size=80)
    >>> fit = glmm("y ~ x + (1 | g)", df)
    >>> fit.coef_names
    ['(Intercept)', 'x']
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError("data must be a pandas DataFrame")
    method, n_agq = _lme4_arguments(method, n_agq, REML, nAGQ)
    frame = model_frame(formula, data, covariance=covariance)
    w = frame.weights if weights is None else frame.weights * np.asarray(weights, dtype=float)
    if method is not None and method.upper() == "PQL":
        fit = _fit_pql_frame(frame, family, link, w)
    else:
        fit = fit_glmm(frame.y, frame.x, frame.terms, family, link, weights=w, offset=frame.offset, method=method,
                       coef_names=frame.coef_names, n_agq=n_agq)
    fit.extra["frame"] = frame
    fit.extra["formula"] = formula
    return fit


def _lme4_arguments(method, n_agq, reml, n_agq_r) -> tuple[str | None, int]:
    """(method, n_agq) from ours and lme4's spellings, refusing a contradiction."""
    if reml is not None:
        wanted = "REML" if reml else "ML"
        if method is not None and method.upper() != wanted:
            raise InputError(f"REML={reml} and method={method!r} disagree; give one of them")
        method = wanted
    if n_agq_r is not None:
        if int(n_agq_r) == 0:
            raise InputError("nAGQ=0 (lme4's quick fit with the fixed effects inside the penalized least squares) is "
                             "not offered: the default nAGQ=1 (Laplace) starts from that fit and refines it")
        if n_agq != 1 and n_agq != int(n_agq_r):
            raise InputError(f"nAGQ={n_agq_r} and n_agq={n_agq} disagree; give one of them")
        n_agq = int(n_agq_r)
    return method, n_agq


PQL_MAX_N = 20_000  # the formula's PQL forms each term's n x n covariance


def _fit_pql_frame(frame: ModelFrame, family, link, weights) -> GlmmResult:
    """PQL/AI-REML with each random-effect term as a known n x n covariance: a random intercept
    (or a single slope x) on groups is K_ij = x_i x_j [g_i = g_j]; the modes per level follow
    from P y~ as b = tau A^T P y~ (A the term's design)."""
    from .pql import fit_pql
    from .terms import TermSet

    fam = get_family(family, link)
    if fam.name == "gaussian":
        raise InputError("PQL is for non-Gaussian families; a Gaussian model is fitted exactly by REML or ML")
    n = len(frame.y)
    if n > PQL_MAX_N:
        raise InputError(f"method='PQL' from a formula forms n x n covariances, and n = {n:,} is above "
                         f"{PQL_MAX_N:,}; use the Laplace method (the default)")
    terms = TermSet(frame.terms, n)
    mats = []
    for key, term in zip(terms.keys, terms.terms):
        if isinstance(term, GroupTerm):
            if term.p != 1:
                raise InputError(f"PQL takes random intercepts, single slopes and known covariances; split the term "
                                 f"of {term.name!r} with || (uncorrelated) or use the Laplace method")
            z = term.x[:, 0]
            mats.append((key, (term.codes[:, None] == term.codes[None, :]) * np.outer(z, z)))
        else:
            mats.append((key, term.obs_covariance()))
    fit = fit_pql(frame.y, frame.x, mats, fam, weights=weights, offset=frame.offset, coef_names=frame.coef_names)
    py = fit.extra["working"].py
    ones = np.ones(terms.n_theta)
    fit.u = np.concatenate([np.sqrt(t) * np.asarray(term.design(ones[s]).T @ py).ravel()
                            for t, term, s in zip(fit.extra["working"].tau, terms.terms, terms.theta_slices)])
    fit.components = [VarianceComponent(c.group, list(term.coef_names), c.covariance)
                      for c, term in zip(fit.components, terms.terms)]
    fit.random_effects = _ranef(terms, fit.theta, fit.u)
    fit.extra["terms"] = terms
    return fit
