"""The GWAS stages: the null model fitted once, and score tests of variants against it."""

from .null import NullModel, fit_null
from .score import ScoreResult, score_test, variance_ratio

__all__ = ["NullModel", "ScoreResult", "fit_null", "score_test", "variance_ratio"]
