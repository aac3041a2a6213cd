"""Leave one chromosome out (LOCO): the null model's residual for testing variants on chromosome
c, with the GRM built without c, so that a variant's own chromosome does not enter the
random effect that the test adjusts for (the proximal contamination that deflates mixed-model
tests as N grows; BOLT-LMM, REGENIE and SAIGE do the same).

The variance components (tau, phi) and the working weights W are those of the full null fit;
for chromosome c the working covariance is Sigma_c = phi W^-1 + tau K_-c, and

    P_c y~,  Sigma_c^-1 X,  (X^T Sigma_c^-1 X)^-1,  mu_c = g^-1(y~ - phi W^-1 P_c y~)

are computed once, by one Cholesky factorisation of Sigma_c (n^3 / 3 flops), and stored (O(n p)
per chromosome).  The exact scan needs Sigma_c^-1 itself: it factorises Sigma_c again (from the
GRM file's LOCO part) when its first block of chromosome c starts, and drops the factor after
that chromosome's last block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from .._blas import cholesky_lower
from ..exceptions import InputError
from ..mixed import get_family
from .null import NullModel


@dataclass
class LocoPart:
    """What changes in the null model when chromosome ``chrom`` is left out of the GRM."""

    chrom: str
    py: np.ndarray
    sigma_inv_x: np.ndarray
    xsx_inv: np.ndarray
    mu: np.ndarray
    ratio: float | None = None  # the fast mode's variance ratio against Sigma_c, if calibrated here


FIELDS = ("py", "sigma_inv_x", "xsx_inv", "mu")


def loco_sigma_chol(null: NullModel, k_loco: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of Sigma_c = phi W^-1 + tau K_-c (K_-c aligned to the null's samples)."""
    sigma = null.tau * np.asarray(k_loco, dtype=float)
    sigma[np.diag_indices_from(sigma)] += null.phi / null.w
    try:  # releases the GIL (scipy's does not): scan workers build these while others test blocks
        return cholesky_lower(sigma)
    except np.linalg.LinAlgError:
        raise InputError("the LOCO working covariance is not positive definite; rebuild the GRM or use --no-loco") \
            from None


def loco_part(null: NullModel, k_loco: np.ndarray, chrom: str, calibration: np.ndarray | None = None
              ) -> tuple[LocoPart, np.ndarray]:
    """(the stored LOCO quantities for ``chrom``, the Cholesky factor of Sigma_c).  With
    ``calibration`` (dosages of the chromosome's random variants, at least 10) the fast mode's
    variance ratio is calibrated here against Sigma_c, so the fast scan never factorises it; if
    the null has no fast-mode rank yet it is chosen here (``score.choose_fast_rank``) against the
    exact variances under Sigma_c: against the full GRM each variant's own contribution to it
    would count as error the directions should fix."""
    if len(null.status.get("components", [])) > 1:
        raise InputError("LOCO applies to a null model with one GRM; this one has several known covariances "
                         f"({', '.join(null.status['components'])})")
    chol = loco_sigma_chol(null, k_loco)
    y_work = null.working_response
    si_x = sla.cho_solve((chol, True), null.x, check_finite=False)
    xsx_inv = np.linalg.inv(null.x.T @ si_x)
    si_y = sla.cho_solve((chol, True), y_work, check_finite=False)
    py = si_y - si_x @ (xsx_inv @ (null.x.T @ si_y))
    eta = y_work - null.phi * py / null.w
    mu = get_family(null.family).link.inverse(eta if null.offset is None else eta + null.offset)
    part = LocoPart(str(chrom), py, si_x, xsx_inv, mu)
    if calibration is not None and calibration.shape[1] >= 10:
        from .score import apply_fast_rank, choose_fast_rank, exact_variance, variance_ratio

        exact = exact_variance(with_loco(null, part, chol), calibration)
        if null.fast_rank is None:  # the first chromosome fixes the fast mode's rank, under LOCO
            apply_fast_rank(null, *choose_fast_rank(with_loco(null, part), calibration, exact))
        part.ratio = variance_ratio(with_loco(null, part), calibration, exact=exact)[0]
    return part, chol


def with_loco(null: NullModel, part: LocoPart, chol: np.ndarray | None = None) -> NullModel:
    """The null model for variants on ``part.chrom``.  With ``chol`` (exact mode) Sigma_c^-1 is
    applied through it; without, the full model's Sigma^-1 serves the fast mode's approximation."""
    changes = {key: getattr(part, key) for key in FIELDS}
    if chol is not None:
        changes.update(chol=chol, eig_vectors=None, eig_inv_d=None)
    view = dataclasses.replace(null, loco={}, **changes)
    if chol is None and "_top_cache" in null.__dict__:  # same eigenvectors: share their contiguous copy
        view.__dict__["_top_cache"] = null.__dict__["_top_cache"]
    return view
