"""The result of a GLMM fit: one dataclass whatever the family or the method."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from scipy import special


def r_spelling(name: str) -> str:
    """R's name for a coefficient: ``period[T.2]`` -> ``period2`` (treatment contrasts)."""
    return re.sub(r"\[T\.([^\]]*)\]", r"\1", name)


@dataclass
class VarianceComponent:
    group: str
    names: list[str]  # coefficient names of the term
    covariance: np.ndarray  # (p, p)

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self) -> np.ndarray:
        sd = self.sd
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.covariance / np.outer(sd, sd)


@dataclass
class GlmmResult:
    family: str
    link: str
    method: str  # "REML", "ML", "Laplace", "AGQ(k)", "PQL"
    coef_names: list[str]
    beta: np.ndarray
    cov_beta: np.ndarray
    theta: np.ndarray  # relative covariance parameters (lme4's theta)
    components: list[VarianceComponent]
    loglik: float  # REML criterion / -2 for REML fits, as lme4
    n_params: int
    n_obs: int
    sigma: float | None = None  # residual SD (Gaussian)
    dispersion: float | None = None  # negative binomial theta
    u: np.ndarray = field(default_factory=lambda: np.zeros(0))
    random_effects: dict = field(default_factory=dict)  # term name -> (levels, (L, p) modes)
    conditional_se: dict = field(default_factory=dict)  # term name -> (L, p) conditional SDs
    conditional_cov: dict = field(default_factory=dict)  # term name -> (L, p, p) conditional covariances
    converged: bool = True
    warnings: list[str] = field(default_factory=list)
    n_evaluations: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov_beta))

    @property
    def z(self) -> np.ndarray:
        return self.beta / self.se

    @property
    def p_values(self) -> np.ndarray:
        return 2 * special.ndtr(-np.abs(self.z))

    def confint(self, level: float = 0.95) -> np.ndarray:
        q = special.ndtri(0.5 + level / 2)
        return np.column_stack([self.beta - q * self.se, self.beta + q * self.se])

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.n_obs) * self.n_params

    @property
    def deviance(self) -> float:
        return -2 * self.loglik

    @property
    def df_resid(self) -> int:
        return self.n_obs - self.n_params

    def coef(self, name: str) -> float:
        """One fixed effect by name: ours (``period[T.2]``) or R's spelling (``period2``)."""
        return float(self.beta[self._coef_index(name)])

    def _coef_index(self, name: str) -> int:
        if name in self.coef_names:
            return self.coef_names.index(name)
        r_names = [r_spelling(c) for c in self.coef_names]
        if name in r_names:
            return r_names.index(name)
        raise KeyError(f"no coefficient {name!r}; the model has {', '.join(self.coef_names)}")

    @property
    def fixef(self):
        """The fixed effects as a pandas Series indexed by coefficient name (lme4's ``fixef``)."""
        import pandas as pd

        return pd.Series(self.beta, index=pd.Index(self.coef_names), name="Estimate")

    params = fixef  # statsmodels' name for the same thing

    @property
    def vcov(self):
        """The fixed effects' covariance matrix as a DataFrame (lme4's ``vcov``)."""
        import pandas as pd

        return pd.DataFrame(self.cov_beta, index=self.coef_names, columns=self.coef_names)

    @property
    def cov_theta(self):
        """Covariance of the estimated covariance parameters (lme4's theta, the relative Cholesky
        factors of each term, then the negative binomial's log theta) from the observed
        information of the Laplace/AGQ likelihood, as a DataFrame; None for fits without it
        (REML/ML fits of Gaussian models profile sigma out; PQL gives ``extra["tau_se"]``)."""
        import pandas as pd

        cov = self.extra.get("cov_params")
        if cov is None:
            return None
        nt = len(self.theta)
        keep = list(range(nt)) + list(range(nt + len(self.beta), cov.shape[0]))
        names = self.theta_names + (["log(theta_nb)"] if cov.shape[0] > nt + len(self.beta) else [])
        return pd.DataFrame(cov[np.ix_(keep, keep)], index=names, columns=names)

    @property
    def theta_names(self) -> list[str]:
        """lme4's names of the theta entries (``getME(fit, "theta")``): ``group.name`` on the
        diagonal of a term's relative Cholesky factor, ``group.row.column`` below it."""
        terms = self.extra.get("terms")
        if terms is None:
            return [f"theta{k}" for k in range(len(self.theta))]
        names = []
        for key, term in zip(terms.keys, terms.terms):
            rows, cols = term._tri() if hasattr(term, "_tri") else ([0], [0])
            for r, c in zip(rows, cols):
                names.append(f"{key}.{term.coef_names[r]}" if r == c
                             else f"{key}.{term.coef_names[r]}.{term.coef_names[c]}")
        return names

    def ranef(self, condVar: bool = False) -> dict:  # noqa: N803 (lme4's spelling)
        """The conditional modes per term (lme4's ``ranef``): term key -> DataFrame with the
        levels as index (in the factor's order) and one column per coefficient.  With
        ``condVar=True`` each frame's ``attrs["postVar"]`` holds the (L, p, p) conditional
        covariances and ``attrs["condsd"]`` a frame of the conditional SDs."""
        import pandas as pd

        out = {}
        for key, (levels, modes) in self.random_effects.items():
            comp = next((c for c in self.components if c.group == key), None)
            columns = comp.names if comp is not None and len(comp.names) == modes.shape[1] else \
                [f"b{j}" for j in range(modes.shape[1])]
            frame = pd.DataFrame(modes, index=pd.Index(levels, name=key), columns=columns)
            if condVar:
                if key not in self.conditional_cov:
                    raise ValueError(f"no conditional covariances for {key!r} in this fit: PQL fits have none, nor "
                                     "models with more random-effect coefficients than the dense inverse allows "
                                     "(mixed.conditional.MAX_DENSE)")
                frame.attrs["postVar"] = self.conditional_cov[key]
                frame.attrs["condsd"] = pd.DataFrame(self.conditional_se[key], index=frame.index, columns=columns)
            out[key] = frame
        return out

    def predict(self, data=None, **options):
        """Predictions (:func:`gwas_glmm.mixed.marginal.predict`: ``type``, ``include_re``)."""
        from .marginal import predict

        return predict(self, data, **options)

    def standardize(self, variable: str, treated, control, **options):
        """Marginal standardization (:func:`gwas_glmm.mixed.marginal.standardize`)."""
        from .marginal import standardize

        return standardize(self, variable, treated, control, **options)

    def variance_shares(self) -> dict[str, float]:
        """Share of the (latent-scale) random-effect plus residual variance explained by each
        term's intercept variance; residual: sigma^2 (Gaussian) or nothing (GLMMs)."""
        parts = {c.group: float(c.covariance[0, 0]) for c in self.components}
        if self.sigma is not None:
            parts["Residual"] = self.sigma**2
        total = sum(parts.values())
        return {k: v / total for k, v in parts.items()} if total > 0 else parts

    def summary(self) -> str:
        """lme4's layout: a linear mixed model (Gaussian, identity link) headed as one, with its
        REML criterion for REML fits; columns as wide as the longest name; p-values below
        2e-16 (under the rounding of a double) printed as ``<2e-16``."""
        linear = self.family == "gaussian" and self.link == "identity"
        if linear:
            how = "REML" if self.method == "REML" else "maximum likelihood" if self.method == "ML" else self.method
            lines = [f"Linear mixed model fit by {how}"]
        else:
            lines = [f"Generalized linear mixed model fit by {self.method} [{self.family}({self.link})]"]
        if linear and self.method == "REML":
            lines.append(f"REML criterion at convergence: {self.deviance:.1f}")
        else:
            lines += ["     AIC      BIC   logLik deviance df.resid",
                      f"{self.aic:8.1f} {self.bic:8.1f} {self.loglik:8.1f} {self.deviance:8.1f} {self.df_resid:8d}"]
        gw = max([len("Groups"), len("Residual")] + [len(c.group) for c in self.components]) + 1
        nw = max([len("Name")] + [len(n) for c in self.components for n in c.names]) + 1
        lines += ["", "Random effects:", f" {'Groups':<{gw}}{'Name':<{nw}}{'Variance':>12}{'Std.Dev.':>11}  Corr"]
        for comp in self.components:
            corr = comp.correlation
            for k, name in enumerate(comp.names):
                c = " ".join(f"{corr[k, j]:5.2f}" for j in range(k)) if k else ""
                group = comp.group if k == 0 else ""
                lines.append(f" {group:<{gw}}{name:<{nw}}{comp.covariance[k, k]:12.4g}{comp.sd[k]:11.4g}  {c}".rstrip())
        if self.sigma is not None:
            lines.append(f" {'Residual':<{gw}}{'':<{nw}}{self.sigma**2:12.4g}{self.sigma:11.4g}")
        if self.dispersion is not None:
            lines.append(f" negative binomial dispersion (theta): {self.dispersion:.4g}")
        cw = max([len(n) for n in self.coef_names] + [10]) + 1
        lines += [f"Number of obs: {self.n_obs}", "", "Fixed effects:",
                  f" {'':<{cw}}{'Estimate':>11}{'Std. Error':>12}{'z value':>9}{'Pr(>|z|)':>11}"]
        for k, name in enumerate(self.coef_names):
            p = self.p_values[k]
            shown = "<2e-16" if p < 2e-16 else f"{p:.3g}"
            lines.append(f" {name:<{cw}}{self.beta[k]:11.5g}{self.se[k]:12.4g}{self.z[k]:9.3f}{shown:>11}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
