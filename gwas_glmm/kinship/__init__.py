"""Kinship: the streamed GRM, LOCO parts, one stored eigendecomposition, any known covariance."""

from .eigen import Eigen, eigendecompose
from .grm import GrmConfig, GrmPart, compute_grm, thin_variants
from .kinship import Kinship, pedigree_kinship, sparsify

__all__ = ["Eigen", "GrmConfig", "GrmPart", "Kinship", "compute_grm", "eigendecompose",
           "pedigree_kinship", "sparsify", "thin_variants"]
