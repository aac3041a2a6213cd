"""The array front end: ``fit_glmm(y, X, terms, family)``; the formula front end builds these."""

from __future__ import annotations

import warnings

import numpy as np

from .._threads import fit_threads
from .._validation import check_full_rank
from ..exceptions import ConvergenceWarning, InputError
from .conditional import conditional_cov, conditional_sd
from .family import Family, get_family
from .laplace import (
    BAD_DEVIANCE,
    FAST_CODES,
    agq_deviance,
    agq_fast,
    fast_path_code,
    glm_start,
    known_cov_path,
    pirls,
    pirls_fast,
    pirls_known,
    sparse_path,
)
from .lmm import BlockLmm, EigenLmm, lmm_deviance, optimize_theta
from .results import GlmmResult, VarianceComponent
from .terms import GroupTerm, KnownCovTerm, TermSet


def _check_arrays(y, x, weights, offset, coef_names):
    y = np.asarray(y, dtype=float).ravel()
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n = len(y)
    if x.shape[0] != n:
        raise InputError(f"X has {x.shape[0]} rows but y has {n}")
    for name, arr in (("y", y), ("X", x)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} holds NaN or infinite values; drop or impute those rows first")
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float).ravel()
    offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float).ravel()
    if weights.shape != (n,) or offset.shape != (n,):
        raise InputError("weights and offset need one value per observation")
    if not np.all(np.isfinite(offset)):
        raise InputError("the offset holds NaN or infinite values (log of a zero exposure?)")
    if np.any(weights <= 0) or not np.all(np.isfinite(weights)):
        raise InputError("prior weights must be positive and finite")
    names = list(coef_names) if coef_names is not None else [f"x{k}" for k in range(x.shape[1])]
    check_full_rank(x, names)
    return y, x, weights, offset, names


def _components(terms: TermSet, theta, scale: float) -> list[VarianceComponent]:
    return [VarianceComponent(key, list(t.coef_names), t.covariance(theta[s], scale))
            for key, t, s in zip(terms.keys, terms.terms, terms.theta_slices)]


def _ranef(terms: TermSet, theta, u) -> dict:
    """Conditional modes b = Lambda u per term: name -> (levels, (L, p) array)."""
    return {key: (t.levels, t.effects(theta[s], ut))
            for key, t, s, ut in zip(terms.keys, terms.terms, terms.theta_slices, terms.split_u(u))}


def fit_glmm(y, x, terms: list, family: str | Family = "gaussian", link: str | None = None, *,
             weights=None, offset=None, method: str | None = None, coef_names=None,
             n_agq: int = 1) -> GlmmResult:
    """Fit a GLMM from arrays: response ``y`` (binomial: proportion with ``weights`` = trials),
    fixed-effects design ``x``, random-effect ``terms`` (GroupTerm, KnownCovTerm, olre).

    ``method``: "REML" (default) or "ML" for Gaussian identity models; "Laplace" (default) or
    "AGQ" (adaptive Gauss-Hermite with ``n_agq`` nodes; one scalar grouping term only) otherwise.
    """
    fam = get_family(family, link)
    y, x, weights, offset, names = _check_arrays(y, x, weights, offset, coef_names)
    fam.check_y(y, weights, "response")
    termset = TermSet(terms, len(y))
    olres = [t.name for t in termset.terms if isinstance(t, GroupTerm) and len(t.levels) == len(y) and t.p == 1]
    if fam.has_theta and olres:
        msg = (f"the negative binomial dispersion and the observation-level random effect {olres[0]!r} both "
               "model overdispersion: the model is barely identified; keep one of them")
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    if not termset.terms:
        raise InputError("a mixed model needs at least one random-effect term")
    # threads for this fit's size (gwas_glmm._threads.fit_threads): the largest known covariance
    # is the only dense matrix a fit factorises
    dense = max((len(t.levels) for t in termset.terms if isinstance(t, KnownCovTerm)), default=0)
    gaussian = fam.name == "gaussian" and fam.link.name == "identity"  # no parallel numba loops
    with fit_threads(len(y), dense, x.shape[1], numba_loops=not gaussian):
        return _fit(y, x, termset, fam, weights, offset, names, method, n_agq)


def _fit(y, x, termset: TermSet, fam: Family, weights, offset, names, method, n_agq) -> GlmmResult:
    if fam.name == "gaussian" and fam.link.name == "identity":
        method = (method or "REML").upper()
        if method not in ("REML", "ML"):
            raise InputError(f"Gaussian models are fitted by REML or ML, not {method}")
        only = termset.terms[0]
        if (len(termset.terms) == 1 and isinstance(only, KnownCovTerm) and only.eigen is not None
                and only.one_per_level and np.all(weights == 1)):
            result = _fit_lmm_eigen(y - offset, x, only, method == "REML", names)
        else:
            result = _fit_lmm(y - offset, x, termset, weights, method == "REML", names)
        result.extra["offset"] = offset
        return result
    method = (method or ("AGQ" if n_agq > 1 else "Laplace")).lower()
    if method not in ("laplace", "agq"):
        raise InputError(f"method {method!r} is not available for the {fam.name} family (use Laplace or AGQ)")
    if method == "agq":
        only = termset.terms[0]
        if len(termset.terms) != 1 or not isinstance(only, GroupTerm) or only.p != 1:
            raise InputError("adaptive quadrature needs exactly one scalar grouping term, e.g. (1 | group); "
                             "use the Laplace method for other models")
        if n_agq < 1:
            raise InputError(f"the number of quadrature nodes must be at least 1, got {n_agq}")
    return _fit_laplace(y, x, termset, fam, weights, offset, names, n_agq if method == "agq" else 1)


def _fit_lmm(y, x, terms: TermSet, w, reml: bool, names) -> GlmmResult:
    merged = terms.merged()  # (x || g): one uncorrelated term, block diagonal
    fit_terms = TermSet([merged], terms.n) if merged is not None else terms
    if BlockLmm.applies(fit_terms):  # one grouping term, a small model: deviance and gradient in numpy
        block = BlockLmm(fit_terms.terms[0], x, y, w)
        res = optimize_gradient(lambda th: block(th, reml), terms.start(), terms.lower(), gtol=1e-6)
    else:
        from ._sparse_pls import pattern_for

        pattern = pattern_for(fit_terms)
        if pattern is not None:  # grouping terms: the deviance and its analytic gradient in one kernel
            xc, yc, wc = (np.ascontiguousarray(a, dtype=np.float64) for a in (x, y, w))
            res = optimize_gradient(lambda th: pattern.lmm_deviance(th, xc, yc, wc, reml), terms.start(),
                                    terms.lower(), gtol=1e-6)
        else:
            res = optimize_theta(lambda th: lmm_deviance(th, terms, x, y, w, reml)[0], terms.start(), terms.lower())
    theta = np.maximum(res.x, terms.lower())
    dev, sol = lmm_deviance(theta, fit_terms, x, y, w, reml)
    n, p = x.shape
    sigma2 = sol.pwrss / (n - p if reml else n)
    rinv = np.linalg.inv(sol.rx)
    cov = sigma2 * rinv @ rinv.T
    u = sol.u if merged is None else terms.from_merged(sol.u)
    result = GlmmResult(
        family="gaussian", link="identity", method="REML" if reml else "ML", coef_names=names, beta=sol.beta,
        cov_beta=cov, theta=theta, components=_components(terms, theta, sigma2), loglik=-dev / 2,
        n_params=p + terms.n_theta + 1, n_obs=n, sigma=float(np.sqrt(sigma2)), u=u,
        n_evaluations=int(res.nfev), converged=bool(res.success) or res.status == 0)
    result.random_effects = _ranef(terms, theta, u)
    cond = conditional_cov(fit_terms, theta, sol.factor, sigma2)
    if merged is not None:  # each term's own diagonal entry of the merged term's blocks
        both = cond[fit_terms.keys[0]]
        cond = {key: both[:, k:k + 1, k:k + 1] for k, key in enumerate(terms.keys)}
    result.conditional_cov = cond
    result.conditional_se = conditional_sd(result.conditional_cov)
    result.extra.update(terms=terms, x=x, offset=np.zeros(n), family_object=get_family("gaussian"))
    _boundary_warnings(result, terms, theta)
    return result


def _fit_lmm_eigen(y, x, term: KnownCovTerm, reml: bool, names) -> GlmmResult:
    """The eigenbasis fast path: one known covariance, one observation per level."""
    order = term.codes
    model = EigenLmm(y, x, term.eigen, order)
    log_delta, (dev, beta, s_g, xtdx) = model.fit(reml)
    n, p = x.shape
    delta = float(np.exp(log_delta))
    sigma2 = s_g * delta
    theta = np.array([np.sqrt(1.0 / delta)])  # lme4 scale: s_g = theta^2 sigma^2
    cov = s_g * np.linalg.inv(xtdx)
    terms = TermSet([term], n)
    result = GlmmResult(
        family="gaussian", link="identity", method="REML" if reml else "ML", coef_names=names, beta=beta,
        cov_beta=cov, theta=theta, components=_components(terms, theta, sigma2), loglik=-dev / 2,
        n_params=p + 2, n_obs=n, sigma=float(np.sqrt(sigma2)), n_evaluations=0)
    # conditional modes of g, one per level (K's row order): s_g K V^-1 r, in the eigenbasis
    r_t = model.yt - model.xt @ beta
    g_rows = term.eigen.vectors @ (model.s / (model.s + delta) * r_t)
    result.random_effects = {terms.keys[0]: (term.levels, g_rows[:, None])}
    # Cov(g | y, beta) = s_g U diag(s delta / (s + delta)) U^T (lme4's condVar); its diagonal, O(n^2)
    cond_var = (term.eigen.vectors ** 2) @ (s_g * model.s * delta / (model.s + delta))
    result.conditional_cov = {terms.keys[0]: cond_var[:, None, None]}
    result.conditional_se = conditional_sd(result.conditional_cov)
    result.extra.update(terms=terms, x=x, family_object=get_family("gaussian"), eigen_path=True, delta=delta)
    # spherical u with g = theta * U_+ sqrt(S_+) u (U orthonormal): u = S_+^-1/2 U_+^T g / theta, O(n^2)
    k = term.first_positive
    result.u = (term.eigen.vectors[:, k:].T @ g_rows) / np.sqrt(model.s[k:]) / theta[0]
    _boundary_warnings(result, terms, theta)
    return result


def _boundary_warnings(result, terms, theta):
    for t, s in zip(terms.terms, terms.theta_slices):
        if isinstance(t, GroupTerm):
            diag = np.diag(t.factor(theta[s]))
        else:
            diag = theta[s]
        if np.any(np.abs(diag) < 1e-6):
            msg = f"singular fit: a variance of {t.name!r} is estimated at the boundary (0)"
            result.warnings.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)


def _fit_laplace(y, x, terms: TermSet, fam: Family, weights, offset, names, n_agq: int = 1) -> GlmmResult:
    n, p = x.shape
    nt = terms.n_theta
    beta0 = glm_start(x, y, weights, offset, fam, names=names)
    if fam.has_theta:
        mu0 = fam.link.inverse(x @ beta0 + offset)
        moment = np.sum((y - mu0) ** 2 - mu0) / max(np.sum(mu0**2), 1e-12)
        fam.theta = 1.0 / moment if moment > 0.01 else 100.0
    state = {"u": np.zeros(terms.q), "beta": beta0, "evals": 0}
    constant = float(np.sum(fam.loglik_constant(y, weights)))  # mu-free terms, once per fit

    def unpack(params):
        theta = params[:nt]
        beta = params[nt:nt + p]
        if fam.has_theta:
            fam.theta = float(np.exp(params[-1]))
        return theta, beta

    def run_pirls(theta, **kwargs):
        a = terms.design(theta)
        state["evals"] += 1
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = pirls(terms, theta, a, y=y, weights=weights, family=fam, u0=state["u"], constant=constant,
                            **kwargs)
        except (np.linalg.LinAlgError, ValueError):
            return None  # the optimizer stepped where the weights overflow: reject the step
        if not np.isfinite(out[0]):
            return None
        state["u"] = out[1]
        if out[2] is not None:
            state["beta"] = out[2]
        return out

    def stage1(params):  # theta (and NB log-theta) with beta at the joint mode: lme4's nAGQ = 0
        theta = params[:nt]
        if fam.has_theta:
            fam.theta = float(np.exp(params[-1]))
        out = run_pirls(theta, eta_fixed=offset, x=x, beta0=state["beta"])
        return BAD_DEVIANCE if out is None else out[0]

    code = fast_path_code(terms, fam) if n_agq == 1 else None
    known = n_agq == 1 and code is None and known_cov_path(terms, fam)
    # several grouping terms (or slopes) with a count/binary family: the numba PIRLS on the sparse
    # factor, with the analytic gradient (mixed/_sparse_numba.py)
    sparse = sparse_path(terms, fam, y, weights, constant) if n_agq == 1 and code is None and not known else None
    agq_code = FAST_CODES.get((fam.name, fam.link.name)) if n_agq > 1 else None  # one scalar term (checked)

    def objective(params):
        theta, beta = unpack(params)
        if known:  # one known covariance: Newton steps in observation space, n^3/3 per step
            state["evals"] += 1
            try:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    dev, a, u, _ = pirls_known(terms.terms[0], theta, offset + x @ beta, y, weights, fam,
                                               state.get("a"), constant)
            except (np.linalg.LinAlgError, ValueError):
                return BAD_DEVIANCE
            if not np.isfinite(dev):
                return BAD_DEVIANCE
            state["a"], state["u"] = a, u
            return dev
        if code is not None:
            state["evals"] += 1
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                dev, u, _ = pirls_fast(code, terms.terms[0], theta, offset + x @ beta, y, weights, fam, state["u"],
                                       constant)
            if not np.isfinite(dev):
                return BAD_DEVIANCE
            state["u"] = u
            return dev
        if sparse is not None:
            return sparse.deviance(theta, offset + x @ beta, state)
        if agq_code is not None:
            return objective_agq_grad(params)[0]
        out = run_pirls(theta, eta_fixed=offset + x @ beta)
        if out is None:
            return BAD_DEVIANCE
        if n_agq > 1:
            return agq_deviance(terms.terms[0], theta, offset + x @ beta, y, weights, fam, out[1], out[4], n_agq)
        return out[0]

    def objective_grad(params):  # the fused kernel: deviance and its analytic gradient
        theta, beta = unpack(params)
        state["evals"] += 1
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            dev, u, _, grad = pirls_fast(code, terms.terms[0], theta, offset + x @ beta, y, weights, fam, state["u"],
                                         constant, x=x)
        if not (np.isfinite(dev) and np.all(np.isfinite(grad))):
            return BAD_DEVIANCE, np.zeros(len(params))
        state["u"] = u
        return dev, grad[:len(params)]

    def objective_known_grad(params):  # one known covariance: deviance and analytic gradient
        theta, beta = unpack(params)
        state["evals"] += 1
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                dev, a, u, _, grad = pirls_known(terms.terms[0], theta, offset + x @ beta, y, weights, fam,
                                                 state.get("a"), constant, x=x)
        except (np.linalg.LinAlgError, ValueError):
            return BAD_DEVIANCE, np.zeros(len(params))
        if not (np.isfinite(dev) and np.all(np.isfinite(grad))):
            return BAD_DEVIANCE, np.zeros(len(params))
        state["a"], state["u"] = a, u
        return dev, grad

    def objective_agq_grad(params):  # AGQ: the quadrature and its exact gradient in one kernel
        theta, beta = unpack(params)
        state["evals"] += 1
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            dev, u, grad = agq_fast(agq_code, terms.terms[0], theta, offset + x @ beta, y, weights, fam, state["u"],
                                    constant, n_agq, x)
        if not (np.isfinite(dev) and np.all(np.isfinite(grad))):
            return BAD_DEVIANCE, np.zeros(len(params))
        state["u"] = u
        return dev, grad[:len(params)]

    def objective_sparse_grad(params):
        theta, beta = unpack(params)
        dev, grad = sparse.deviance(theta, offset + x @ beta, state, x=x)
        return dev, grad[:len(params)]

    # analytic gradients: the fused scalar-intercept kernel, one known covariance with a canonical
    # link (its observed weights are the Fisher weights, always positive), several grouping terms
    # on the sparse factor, and AGQ, all for the canonical count/binary families
    with_gradient = objective_grad if code is not None else None
    if known and fam.canonical and not fam.has_theta:
        with_gradient = objective_known_grad
    if sparse is not None:
        with_gradient = objective_sparse_grad
    if agq_code is not None:
        with_gradient = objective_agq_grad
    extra = [np.log(fam.theta)] if fam.has_theta else []
    if with_gradient is None:  # start the Laplace fit from lme4's nAGQ = 0 fit (beta at the joint mode)
        lower1 = np.concatenate([terms.lower(), [-np.inf] * len(extra)])
        res1 = optimize_theta(stage1, np.concatenate([terms.start(), extra]), lower1, method="COBYQA")
        stage1(res1.x)
        start = np.concatenate([res1.x[:nt], state["beta"], res1.x[nt:]])
    else:  # each evaluation is cheap: start from the GLM fit directly
        start = np.concatenate([terms.start(), beta0, extra])
    lower = np.concatenate([terms.lower(), np.full(p, -np.inf), [-np.inf] * len(extra)])
    if with_gradient is not None:  # quasi-Newton, and the Hessian from gradient differences
        # beta on the scale of its column's spread: L-BFGS's first step has unit length, which
        # for a covariate in raw units (grouseticks' HEIGHT, SD 50) moves eta by tens and
        # overflows the weights
        spread = np.where(np.ptp(x, axis=0) > 0, x.std(axis=0), 1.0)
        scale = np.concatenate([np.ones(nt), spread, np.ones(len(extra))])
        res = optimize_gradient(with_gradient, start, lower, n_obs=n, scale=scale)
        params = res.x.copy()
        params[:nt] = np.maximum(params[:nt], terms.lower())
        hess = gradient_hessian(lambda z: with_gradient(z)[1], params)
    else:
        res = optimize_theta(objective, start, lower, method="COBYQA")
        params = res.x.copy()
        params[:nt] = np.maximum(params[:nt], terms.lower())
        hess = numerical_hessian(objective, params)
    dev = objective(params)  # after the Hessian's probes, so the state is left at the optimum
    theta, beta = unpack(params)
    cov_all = 2.0 * np.linalg.pinv(hess)
    cov = cov_all[nt:nt + p, nt:nt + p]
    state_u = state["u"]
    final = run_pirls(theta, eta_fixed=offset + x @ beta)
    result = GlmmResult(
        family=fam.name, link=fam.link.name, method="Laplace" if n_agq == 1 else f"AGQ({n_agq})",
        coef_names=names, beta=beta, cov_beta=cov,
        theta=theta, components=_components(terms, theta, 1.0), loglik=-dev / 2,
        n_params=p + nt + (1 if fam.has_theta else 0), n_obs=n, u=state_u,
        dispersion=fam.theta if fam.has_theta else None, n_evaluations=state["evals"],
        converged=bool(res.success) or res.status == 0)
    result.random_effects = _ranef(terms, theta, state_u)
    result.conditional_cov = conditional_cov(terms, theta, final[4], 1.0) if final is not None else {}
    result.conditional_se = conditional_sd(result.conditional_cov)
    result.extra.update(hessian=hess, cov_params=cov_all, terms=terms, x=x, offset=offset, family_object=fam)
    _boundary_warnings(result, terms, theta)
    return result


def optimize_gradient(fun, start, lower, n_obs: int = 0, scale=None, gtol: float = 1e-4):
    """Bounded quasi-Newton (L-BFGS-B) on an objective returning (value, gradient).  The
    objective is a deviance (-2 log-likelihood, absolute scale): a gradient below 1e-4 leaves
    well under 1e-8 of log-likelihood on the table, and the inner iteration's rounding makes
    smaller targets a random walk of line searches.  Above 100,000 observations the target grows
    as n^1.5: the gradient's rounding grows with n (its sums, and a mode settled against a
    deviance that is O(n)), while what a gradient g leaves, g^2 / 2H, shrinks as H grows with n.
    At n = 1,000,000 (NB2, 50,000 groups) the gradient's noise was about 2e-3: with 1e-4 the
    search ended on its function-change test after 46-56 evaluations instead of 26 at 3.2e-3,
    with the same log-likelihood to 1e-9.

    ``scale``: the search runs over params * scale (the gradient divided by it), so that a unit
    step means the same for every parameter; the result is in the original units."""
    from scipy import optimize

    scale = np.ones(len(start)) if scale is None else np.asarray(scale, dtype=float)

    def scaled(z):
        value, grad = fun(z / scale)
        return value, grad / scale

    bounds = [(lo * sc if np.isfinite(lo) else None, None) for lo, sc in zip(lower, scale)]
    options = {"ftol": 1e-15, "gtol": gtol * max(1.0, n_obs / 1e5) ** 1.5, "maxiter": 1000}
    start = np.asarray(start, dtype=float)
    res = optimize.minimize(scaled, start * scale, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    # A variance parameter that ends on its bound 0 may sit on a saddle, not a minimum: the
    # deviance is even in a scalar term's theta and in the last diagonal entry of a
    # covariance factor, so its gradient there is exactly 0 and the search cannot leave.  Search
    # once more from that point with those entries back at their starting values and kept off 0
    # (bounded below by 1e-4, where the gradient is not 0); keep the better of the two.
    stuck = np.isfinite(lower) & (lower == 0) & (res.x <= 1e-10)
    if stuck.any():
        again = res.x.copy()
        again[stuck] = np.where(start[stuck] > 0, start[stuck], 1.0) * scale[stuck]
        off = [(1e-4 * scale[k], None) if stuck[k] else bounds[k] for k in range(len(bounds))]
        res2 = optimize.minimize(scaled, again, jac=True, method="L-BFGS-B", bounds=off, options=options)
        total = res.nfev + res2.nfev
        res = res2 if res2.fun < res.fun else res
        res.nfev = total
    res.x = res.x / scale
    return res


def gradient_hessian(grad, x0, rel: float = 1e-5):
    """Hessian by central differences of an analytic gradient (2k gradient calls), symmetrized."""
    x0 = np.asarray(x0, dtype=float)
    k = len(x0)
    h = rel * np.maximum(np.abs(x0), 1.0)
    hess = np.empty((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = h[i]
        hess[i] = (grad(x0 + step) - grad(x0 - step)) / (2 * h[i])
    return (hess + hess.T) / 2


def numerical_hessian(fun, x0, rel: float = 1e-4):
    """Central-difference Hessian with steps rel * max(|x|, 1)."""
    x0 = np.asarray(x0, dtype=float)
    k = len(x0)
    h = rel * np.maximum(np.abs(x0), 1.0)  # not smaller: the objective is exact only to ~1e-9
    f0 = fun(x0)
    hess = np.empty((k, k))

    def f(dx):
        return fun(x0 + dx)

    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        hess[i, i] = (f(ei) - 2 * f0 + f(-ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            hess[i, j] = hess[j, i] = (f(ei + ej) - f(ei - ej) - f(-ei + ej) + f(-ei - ej)) / (4 * h[i] * h[j])
    return hess
