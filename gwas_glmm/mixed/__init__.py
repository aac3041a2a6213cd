"""The generic GLMM core: families and links, random-effect terms (grouping factors with
correlated slopes, observation-level effects, known covariance matrices), REML/ML for Gaussian
models and the Laplace approximation for the others, one result dataclass."""

from .family import Family, get_family
from .model import fit_glmm
from .pql import WorkingModel, fit_pql
from .results import GlmmResult, VarianceComponent
from .terms import GroupTerm, KnownCovTerm, encode, olre

__all__ = ["Family", "GlmmResult", "GroupTerm", "KnownCovTerm", "VarianceComponent", "WorkingModel", "encode",
           "fit_glmm", "fit_pql", "get_family", "olre"]
