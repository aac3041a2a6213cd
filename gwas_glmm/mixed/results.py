"""The result of a GLMM fit: one dataclass whatever the family or the method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special


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
        return float(self.beta[self.coef_names.index(name)])

    def variance_shares(self) -> dict[str, float]:
        """Share of the (latent-scale) random-effect plus residual variance explained by each
        term's intercept variance; residual: sigma^2 (Gaussian) or nothing (GLMMs)."""
        parts = {c.group: float(c.covariance[0, 0]) for c in self.components}
        if self.sigma is not None:
            parts["Residual"] = self.sigma**2
        total = sum(parts.values())
        return {k: v / total for k, v in parts.items()} if total > 0 else parts

    def summary(self) -> str:
        lines = [f"Generalized linear mixed model fit by {self.method} [{self.family}({self.link})]",
                 "     AIC      BIC   logLik deviance df.resid",
                 f"{self.aic:8.1f} {self.bic:8.1f} {self.loglik:8.1f} {self.deviance:8.1f} {self.df_resid:8d}",
                 "", "Random effects:", f" {'Groups':<12}{'Name':<16}{'Variance':>12}{'Std.Dev.':>11}  Corr"]
        for comp in self.components:
            corr = comp.correlation
            for k, name in enumerate(comp.names):
                c = " ".join(f"{corr[k, j]:5.2f}" for j in range(k)) if k else ""
                group = comp.group if k == 0 else ""
                lines.append(f" {group:<12}{name:<16}{comp.covariance[k, k]:12.4g}{comp.sd[k]:11.4g}  {c}")
        if self.sigma is not None:
            lines.append(f" {'Residual':<12}{'':<16}{self.sigma**2:12.4g}{self.sigma:11.4g}")
        if self.dispersion is not None:
            lines.append(f" negative binomial dispersion (theta): {self.dispersion:.4g}")
        lines += [f"Number of obs: {self.n_obs}", "", "Fixed effects:",
                  f" {'':<24}{'Estimate':>11}{'Std. Error':>12}{'z value':>9}{'Pr(>|z|)':>11}"]
        for k, name in enumerate(self.coef_names):
            lines.append(f" {name:<24}{self.beta[k]:11.5g}{self.se[k]:12.4g}{self.z[k]:9.3f}{self.p_values[k]:11.3g}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
