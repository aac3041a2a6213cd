"""Phenotypes with a known truth, built from the simulated genotypes as they are streamed.

Genetic value of each trait: a polygenic background (``n_polygenic`` random variants with
normal effects on standardized genotypes) plus ``n_large`` variants of large effect (ancestral
MAF >= 0.05), each explaining ``large_fraction`` of the genetic variance.  Standardization uses
the realized sample mean and standard deviation of each variant with missing calls set to the
mean, so the per-allele effects in the truth file reproduce the genetic value exactly:
``g_i = sum_j BETA_j * (x_ij - 2 * A1FREQ_j)``, missing calls contributing 0.

Traits (``y = covariate effects + g + e`` on the scale given):

* quantitative ``qt``: var(g) = h2, var(e) = 1 - h2;
* binary ``bt1``, ``bt2``, ...: liability threshold model with the same h2 on the liability
  scale; the top ``prevalence`` fraction of liabilities are cases, so prevalence is exact;
* count ``count``: Poisson with log rate ``log(base_rate) + log(followup) + 0.3 * covariate
  effects + g``, var(g) = ``count_genetic_variance``; ``followup`` is the exposure (offset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .genotypes import MISSING_INT8


@dataclass
class TraitModel:
    """Causal variants of one trait and the accumulated genetic value (filled while streaming)."""

    name: str
    kind: str  # quantitative | binary | count
    genetic_variance: float
    prevalence: float | None
    polygenic: np.ndarray  # variant positions
    polygenic_effect: np.ndarray  # effect per SD of genotype, before scaling
    large: np.ndarray
    large_effect: np.ndarray  # +-sqrt(variance share) per SD of genotype
    g_polygenic: np.ndarray | None = None
    g_large: np.ndarray | None = None
    beta_polygenic: np.ndarray | None = None  # per allele, unscaled until finish()
    beta_large: np.ndarray | None = None
    a1freq_polygenic: np.ndarray | None = None
    a1freq_large: np.ndarray | None = None


def draw_trait_models(
    names_kinds: list[tuple[str, str, float, float | None]],
    ancestral_freq: np.ndarray,
    n_polygenic: int,
    n_large: int,
    large_fraction: float,
    n_samples: int,
    rng: np.random.Generator,
) -> list[TraitModel]:
    """Causal variants and standardized effects for each (name, kind, genetic variance, prevalence)."""
    m = len(ancestral_freq)
    maf = np.minimum(ancestral_freq, 1 - ancestral_freq)
    eligible = np.flatnonzero(maf >= 0.05)
    models = []
    for name, kind, vg, prevalence in names_kinds:
        n_large_t = min(n_large, len(eligible))
        large = np.sort(rng.choice(eligible, size=n_large_t, replace=False))
        rest = np.setdiff1d(np.arange(m), large)
        poly = np.sort(rng.choice(rest, size=min(n_polygenic, len(rest)), replace=False))
        sign = rng.choice([-1.0, 1.0], size=n_large_t)
        model = TraitModel(
            name, kind, vg, prevalence, poly, rng.standard_normal(len(poly)), large,
            sign * np.sqrt(large_fraction * vg),
        )
        model.g_polygenic = np.zeros(n_samples)
        model.g_large = np.zeros(n_samples)
        model.beta_polygenic = np.zeros(len(poly))
        model.beta_large = np.zeros(n_large_t)
        model.a1freq_polygenic = np.zeros(len(poly))
        model.a1freq_large = np.zeros(n_large_t)
        models.append(model)
    return models


def _centered(geno: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-imputed, centered dosages of ``columns``; their sample A1 frequency and SD."""
    x = geno[:, columns].astype(np.float64)
    x[geno[:, columns] == MISSING_INT8] = np.nan
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(x, axis=0) if x.shape[0] else np.zeros(x.shape[1])
    mean = np.nan_to_num(mean)
    xc = np.nan_to_num(x - mean)
    return xc, mean / 2.0, xc.std(axis=0)


def accumulate(models: list[TraitModel], start: int, geno: np.ndarray) -> None:
    """Add the contribution of variants ``start .. start + geno.shape[1]`` to every trait."""
    stop = start + geno.shape[1]
    for t in models:
        for which in ("polygenic", "large"):
            pos = getattr(t, which)
            sel = np.flatnonzero((pos >= start) & (pos < stop))
            if not sel.size:
                continue
            xc, freq, sd = _centered(geno, pos[sel] - start)
            with np.errstate(divide="ignore"):
                beta = np.where(sd > 0, getattr(t, f"{which}_effect")[sel] / sd, 0.0)
            getattr(t, f"beta_{which}")[sel] = beta
            getattr(t, f"a1freq_{which}")[sel] = freq
            getattr(t, f"g_{which}")[:] += xc @ beta


def finish(models: list[TraitModel], large_fraction: float) -> None:
    """Scale the polygenic part to its variance share; the large effects are exact already."""
    for t in models:
        target = t.genetic_variance * (1.0 - large_fraction * len(t.large))
        v = t.g_polygenic.var()
        scale = np.sqrt(target / v) if v > 0 else 0.0
        t.g_polygenic *= scale
        t.beta_polygenic *= scale


def genetic_value(t: TraitModel) -> np.ndarray:
    return t.g_polygenic + t.g_large


def make_phenotype(
    t: TraitModel, covariate_effect: np.ndarray, followup: np.ndarray, base_rate: float,
    h2: float, rng: np.random.Generator,
) -> np.ndarray:
    """Observed values of one trait for every sampled individual (no missing values yet)."""
    g = genetic_value(t)
    n = len(g)
    if t.kind == "count":
        eta = np.log(base_rate) + np.log(followup) + 0.3 * covariate_effect + g
        return rng.poisson(np.exp(eta)).astype(np.float64)
    e = rng.standard_normal(n) * np.sqrt(1.0 - h2)
    liability = covariate_effect + g + e
    if t.kind == "quantitative":
        return liability
    n_cases = max(1, int(round(t.prevalence * n)))
    cases = np.argsort(-liability, kind="stable")[:n_cases]
    y = np.zeros(n)
    y[cases] = 1.0
    return y
