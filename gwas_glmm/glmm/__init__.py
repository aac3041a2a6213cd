"""The generic GLMM core: families and links, random-effect terms (grouping factors with
correlated slopes, observation-level effects, known covariance matrices), REML/ML for Gaussian
models and the Laplace approximation for the others, one result dataclass."""

from .family import Family, get_family
from .model import fit_glmm
from .results import GlmmResult, VarianceComponent
from .terms import GroupTerm, KnownCovTerm, encode, olre

__all__ = ["Family", "GlmmResult", "GroupTerm", "KnownCovTerm", "VarianceComponent", "encode", "fit_glmm",
           "get_family", "olre"]
