"""Response families and link functions of the GLMM core.

A :class:`Family` knows its variance function, its full log-likelihood (constants included,
so log-likelihoods and AIC match R's ``logLik`` and compare across families) and its unit
deviance; a :class:`Link` maps the mean to the linear predictor.  ``get_family`` is the only
factory; an unknown name lists the valid ones.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import special

from ..exceptions import InputError

_EPS = np.finfo(np.float64).eps


def _normal_pdf(x):
    """The standard normal density (scipy.stats, which costs 0.3 s to import, is not needed here)."""
    return np.exp(-0.5 * np.square(x)) / np.sqrt(2 * np.pi)


class Link:
    name = "link"

    def link(self, mu):
        raise NotImplementedError

    def inverse(self, eta):
        raise NotImplementedError

    def mu_eta(self, eta):
        """d mu / d eta."""
        raise NotImplementedError

    def mu_eta2(self, eta):
        """d^2 mu / d eta^2."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class IdentityLink(Link):
    name = "identity"

    def link(self, mu):
        return np.asarray(mu, dtype=float)

    def inverse(self, eta):
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta):
        return np.ones_like(eta, dtype=float)

    def mu_eta2(self, eta):
        return np.zeros_like(eta, dtype=float)


class LogLink(Link):
    name = "log"

    def link(self, mu):
        return np.log(mu)

    def inverse(self, eta):
        return np.exp(np.minimum(eta, 700.0))

    def mu_eta(self, eta):
        return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)

    def mu_eta2(self, eta):
        return self.mu_eta(eta)


class LogitLink(Link):
    name = "logit"

    def link(self, mu):
        return special.logit(mu)

    def inverse(self, eta):
        return special.expit(eta)

    def mu_eta(self, eta):
        mu = special.expit(eta)
        return np.maximum(mu * (1 - mu), _EPS)

    def mu_eta2(self, eta):
        mu = special.expit(eta)
        return mu * (1 - mu) * (1 - 2 * mu)


class ProbitLink(Link):
    name = "probit"

    def link(self, mu):
        return special.ndtri(mu)

    def inverse(self, eta):
        return np.clip(special.ndtr(eta), _EPS, 1 - _EPS)

    def mu_eta(self, eta):
        return np.maximum(_normal_pdf(eta), _EPS)

    def mu_eta2(self, eta):
        return -eta * _normal_pdf(eta)


class CloglogLink(Link):
    name = "cloglog"

    def link(self, mu):
        return np.log(-np.log1p(-mu))

    def inverse(self, eta):
        return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1 - _EPS)

    def mu_eta(self, eta):
        eta = np.minimum(eta, 700.0)
        return np.maximum(np.exp(eta - np.exp(eta)), _EPS)

    def mu_eta2(self, eta):
        eta = np.minimum(eta, 700.0)
        return np.exp(eta - np.exp(eta)) * (1 - np.exp(eta))


LINKS = {c.name: c for c in (IdentityLink, LogLink, LogitLink, ProbitLink, CloglogLink)}


class Family:
    """Base class: ``weights`` are prior weights (binomial: the number of trials)."""

    name = "family"
    allowed_links = ()
    has_scale = False  # a residual variance estimated separately (Gaussian)
    has_theta = False  # a dispersion parameter estimated with the model (negative binomial)

    def __init__(self, link: Link):
        self.link = link

    def variance(self, mu):
        raise NotImplementedError

    def loglik(self, y, mu, weights, scale: float = 1.0) -> np.ndarray:
        """Per-observation log-likelihood, constants included."""
        return self.loglik_kernel(y, mu, weights) + self.loglik_constant(y, weights)

    def loglik_kernel(self, y, mu, weights) -> np.ndarray:
        """The part of the log-likelihood that depends on mu (and the dispersion)."""
        raise NotImplementedError

    def loglik_constant(self, y, weights) -> np.ndarray:
        return np.zeros_like(np.asarray(y, dtype=float))

    def unit_deviance(self, y, mu) -> np.ndarray:
        raise NotImplementedError

    def clip_mu(self, mu):
        return mu

    def start_mu(self, y, weights):
        return y

    def check_y(self, y, weights, source: str) -> None:
        if not np.all(np.isfinite(y)):
            raise InputError(f"{source}: the response has missing or infinite values")

    def irls_weights(self, eta, mu, weights, scale: float = 1.0):
        """Fisher (expected-information) weights and d mu / d eta."""
        d = self.link.mu_eta(eta)
        return weights * d * d / np.maximum(self.variance(mu), 1e-300) / scale, d

    @property
    def canonical(self) -> bool:
        return (self.name, self.link.name) in {("binomial", "logit"), ("poisson", "log"), ("gaussian", "identity")}

    def observed_weights(self, y, eta, mu, weights):
        """-d^2 log p(y | eta) / d eta^2: the Laplace approximation's curvature.  Equal to the
        Fisher weights for canonical links; otherwise Fisher - (y - mu) d/deta(mu'/V)."""
        w, d = self.irls_weights(eta, mu, weights)
        if self.canonical:
            return w
        v = np.maximum(self.variance(mu), 1e-300)
        dg = self.link.mu_eta2(eta) / v - d * d * self.variance_deriv(mu) / (v * v)  # d/deta (mu'/V)
        return w - weights * (y - mu) * dg

    def variance_deriv(self, mu):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}({self.link.name})"


class Gaussian(Family):
    name = "gaussian"
    allowed_links = ("identity", "log")
    has_scale = True

    def variance(self, mu):
        return np.ones_like(mu)

    def variance_deriv(self, mu):
        return np.zeros_like(mu)

    def loglik(self, y, mu, weights, scale=1.0):
        var = scale / weights
        return -0.5 * ((y - mu) ** 2 / var + np.log(2 * np.pi * var))

    def unit_deviance(self, y, mu):
        return (y - mu) ** 2


class Binomial(Family):
    """y is the proportion of successes and ``weights`` the trials (R's cbind(s, n - s))."""

    name = "binomial"
    allowed_links = ("logit", "probit", "cloglog")

    def variance(self, mu):
        return mu * (1 - mu)

    def variance_deriv(self, mu):
        return 1 - 2 * mu

    def clip_mu(self, mu):
        return np.clip(mu, 1e-12, 1 - 1e-12)

    def start_mu(self, y, weights):
        return (weights * y + 0.5) / (weights + 1)

    def check_y(self, y, weights, source):
        super().check_y(y, weights, source)
        if np.any((y < 0) | (y > 1)):
            raise InputError(f"{source}: a binomial response must be 0/1 or a proportion in [0, 1] "
                             "(use successes and trials, cbind(s, n - s))")

    def loglik_kernel(self, y, mu, weights):
        mu = self.clip_mu(mu)
        return weights * (special.xlogy(y, mu) + special.xlogy(1 - y, 1 - mu))

    def loglik_constant(self, y, weights):
        n, k = np.round(weights), np.round(y * weights)
        return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)

    def irls_weights(self, eta, mu, weights, scale: float = 1.0):
        if self.link.name == "logit":
            d = np.maximum(mu * (1 - mu), _EPS)
            return weights * d / scale, d
        return super().irls_weights(eta, mu, weights, scale)

    def unit_deviance(self, y, mu):
        mu = self.clip_mu(mu)
        return 2 * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))


class Poisson(Family):
    name = "poisson"
    allowed_links = ("log", "identity")

    def variance(self, mu):
        return mu

    def variance_deriv(self, mu):
        return np.ones_like(mu)

    def start_mu(self, y, weights):
        return y + 0.1

    def check_y(self, y, weights, source):
        Family.check_y(self, y, weights, source)
        if np.any(y < 0):
            raise InputError(f"{source}: counts must be non-negative")

    def loglik_kernel(self, y, mu, weights):
        return weights * (special.xlogy(y, np.maximum(mu, 1e-300)) - mu)

    def loglik_constant(self, y, weights):
        return -weights * special.gammaln(y + 1)

    def irls_weights(self, eta, mu, weights, scale: float = 1.0):
        if self.link.name == "log":
            d = np.maximum(mu, _EPS)
            return weights * d / scale, d
        return super().irls_weights(eta, mu, weights, scale)

    def unit_deviance(self, y, mu):
        return 2 * (special.xlogy(y, y / np.maximum(mu, 1e-300)) - (y - mu))


class NegativeBinomial(Family):
    """NB2: Var(y) = mu + mu^2 / theta; ``theta`` (R's size, glmmTMB's sigma) is estimated."""

    name = "negbin"
    allowed_links = ("log",)
    has_theta = True

    def __init__(self, link: Link, theta: float = 1.0):
        super().__init__(link)
        self.theta = theta

    def variance(self, mu):
        return mu + mu * mu / self.theta

    def variance_deriv(self, mu):
        return 1 + 2 * mu / self.theta

    def start_mu(self, y, weights):
        return y + 0.1

    def check_y(self, y, weights, source):
        Poisson.check_y(self, y, weights, source)

    def loglik_kernel(self, y, mu, weights):
        t = self.theta
        mu = np.maximum(mu, 1e-300)
        return weights * (special.gammaln(y + t) - special.gammaln(t)
                          + t * np.log(t / (t + mu)) + special.xlogy(y, mu / (t + mu)))

    def loglik_constant(self, y, weights):
        return -weights * special.gammaln(y + 1)

    def unit_deviance(self, y, mu):
        t = self.theta
        mu = np.maximum(mu, 1e-300)
        return 2 * (special.xlogy(y, y / mu) - (y + t) * np.log((y + t) / (mu + t)))


FAMILIES = {c.name: c for c in (Gaussian, Binomial, Poisson, NegativeBinomial)}
ALIASES = {"normal": "gaussian", "nbinom2": "negbin", "negative_binomial": "negbin", "nb": "negbin"}
DEFAULT_LINK = {"gaussian": "identity", "binomial": "logit", "poisson": "log", "negbin": "log"}


_R_FAMILY = re.compile(r"""\s*([A-Za-z_.0-9]+)\s*\(\s*(?:link\s*=\s*)?["']?([A-Za-z]*)["']?\s*\)\s*""")


def _r_call(family: str, link: str | None) -> tuple[str, str | None]:
    """R's spelling of a family, ``binomial(link = "probit")``, ``binomial("probit")`` or
    ``poisson()``, as (name, link); a plain name unchanged."""
    match = _R_FAMILY.fullmatch(family)
    if match is None:
        return family.strip(), link
    name, inner = match.group(1), match.group(2) or None
    if link is not None and inner is not None and link != inner:
        raise InputError(f"family {family!r} and link {link!r} disagree; give the link once")
    return name, link or inner


def get_family(family: str | Family, link: str | None = None) -> Family:
    """A family by name ('gaussian', 'binomial', 'poisson', 'negbin'; R's ``binomial(link =
    "probit")`` too), with an optional link."""
    if isinstance(family, Family):
        return family
    family, link = _r_call(str(family), link)
    name = ALIASES.get(family.lower(), family.lower())
    if name not in FAMILIES:
        raise InputError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    link = link or DEFAULT_LINK[name]
    cls = FAMILIES[name]
    if link not in cls.allowed_links:
        raise InputError(f"link {link!r} is not available for the {name} family; "
                         f"choose one of {', '.join(cls.allowed_links)}")
    return cls(LINKS[link]())
