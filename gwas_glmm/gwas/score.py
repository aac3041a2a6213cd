"""Score tests of variants against a fitted null model, in blocks.

* exact: V = G^T P G through Sigma^-1 (eigenbasis or Cholesky): one (n x n) x (n x m) matrix
  product per block, n^2 m flops, equal to a dense computation;
* fast: O(n k) per variant.  Gaussian nulls: the GRM's top k eigen-directions exactly (k from 20
  to 200, the fewest that keep the fast test close to the exact one on the calibration
  variants) and the rest through a variance ratio; PQL nulls: V ~ r * G~^T W G~ / phi with G~ the genotypes adjusted
  for the covariates in the W metric (SAIGE's variance ratio), r calibrated on random variants;
* binary traits: the saddlepoint approximation (SPA) of the score's distribution where |z| > 2,
  given the null model's sufficient statistics X^T y (a double saddlepoint approximation) from
  MAC 20 up, the marginal SPA below.

Effect size and SE from the score: BETA = U / V, SE = 1 / sqrt(V) (the one-step estimate).
LOG10P is computed on the log scale, so it stays exact where P underflows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy import special, stats

from .null import FAST_RANK, NullModel

LN10 = np.log(10.0)
SPA_Z = 2.0
# The SPA given X^T y treats the conditional distribution as continuous: below this minor allele
# count (a handful of carriers, a lattice with few points) it is the marginal SPA, which is close
# to exact there (with one carrier the conditional approximation gave P < 1e-4 where the true
# P is about mu of that carrier; scripts/calibration.py).
SPA_CONDITIONAL_MIN_MAC = 20
# The double SPA's saddlepoint search on the carriers alone (the rest through a Taylor polynomial,
# _spa_numba.double_saddlepoint) where at most this fraction of the samples have g != 0 (the
# break-even: at n = 10,000 and 13 covariates 3.0 against 3.3 ms a variant at 28% carriers, even at
# 36%, 4.4 against 3.3 ms at 51%)
TAYLOR_MAX_CARRIERS = 0.3
_NONE = np.zeros(0, dtype=np.int64)
FAST_RANKS = (20, 50, 100, 200)  # candidate eigen-directions for the fast mode, fewest first
FAST_TOLERANCE = 0.02  # predicted q99 |delta log10 P| (fast vs exact) a candidate must meet


@dataclass
class ScoreResult:
    score: np.ndarray
    var: np.ndarray
    log10p: np.ndarray
    spa: np.ndarray  # bool: the p-value comes from the saddlepoint approximation

    @property
    def chisq(self) -> np.ndarray:
        return self.score**2 / self.var

    @property
    def z(self) -> np.ndarray:
        return self.score / np.sqrt(self.var)

    @property
    def p(self) -> np.ndarray:
        return 10.0 ** (-self.log10p)

    @property
    def beta(self) -> np.ndarray:
        return self.score / self.var

    @property
    def se(self) -> np.ndarray:
        return 1.0 / np.sqrt(self.var)


def _log_sf(x):
    """log P(Z > x) for a standard normal Z, exact far out (scipy.stats.norm.logsf without its
    argument handling, which took 0.2 ms a call: as long as a saddlepoint search)."""
    return special.log_ndtr(-np.asarray(x, dtype=float))


def _normal_log10p(z: np.ndarray) -> np.ndarray:
    """-log10 of the two-sided normal p-value, exact in the far tail."""
    return -(np.log(2.0) + _log_sf(np.abs(z))) / LN10


def exact_variance(null: NullModel, g: np.ndarray) -> np.ndarray:
    """G^T P G per column, batched: |L^-1 G|^2 - (G^T Sigma^-1 X)(X^T Sigma^-1 X)^-1(...)^T.
    With tau at the boundary (a Cholesky null: Sigma = phi W^-1, diagonal) the same value costs
    O(n p) per variant: (G^T W G - B^T (X^T W X)^-1 B) / phi, B = X^T W G."""
    if null.eig_vectors is None and null.tau <= 0:
        xw = null.x * null.w[:, None]
        b = xw.T @ g
        gwg = np.einsum("ij,i,ij->j", g, null.w, g)
        return (gwg - np.einsum("ij,ij->j", b, np.linalg.solve(null.x.T @ xw, b))) / null.phi
    if null.is_sparse:
        return sparse_exact_parts(null, g)[0]
    wg = null.whiten(g)
    gsg = np.einsum("ij,ij->j", wg, wg)
    gsx = g.T @ null.sigma_inv_x
    return gsg - np.einsum("ij,jk,ik->i", gsx, null.xsx_inv, gsx)


def sparse_exact_parts(null: NullModel, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G' P G, G' P y~) for a null on a sparse GRM, in two passes over the block as it is (float32
    from the scan, Fortran order; sums in float64): one numba pass for the products with P y~ and
    Sigma^-1 X and the singletons' sum of w_i g_i^2 (W is diagonal there), one over the related
    samples' rows of W (O(nnz) a variant).  No float64 copy of the block, no n x m temporary."""
    from ._score_numba import project, whitened_sumsq

    cache = null.__dict__.get("_sparse_cache")
    if cache is None:  # built whole, then published in one assignment: blocks run on several threads
        w = null.whitener.tocsr()
        counts = np.diff(w.indptr)
        diag = w.diagonal()
        related = (counts > 1) | (np.diff(w.T.tocsr().indptr) > 1)  # a row or column with an off-diagonal entry
        rows = w[np.flatnonzero(related)]
        cache = {"columns": np.ascontiguousarray(np.vstack([null.py, null.sigma_inv_x.T])),
                 "weights": np.where(related, 0.0, diag**2),
                 "csr": (rows.indptr.astype(np.int64), rows.indices.astype(np.int64), rows.data.astype(np.float64))}
        null.__dict__["_sparse_cache"] = cache
    g = np.asfortranarray(g)
    dots, wsq = project(g, cache["columns"], cache["weights"])
    wsq = wsq + whitened_sumsq(g, *cache["csr"])
    for part in null.chol_parts:  # groups too large for dense blocks: W's rows are empty there
        part.sumsq_whitened(g, wsq)
    gsx = dots[1:].T
    return wsq - np.einsum("ij,jk,ik->i", gsx, null.xsx_inv, gsx), dots[0]


def adjusted_genotypes(null: NullModel, g: np.ndarray) -> np.ndarray:
    """G~ = G - X (X^T W X)^-1 X^T W G."""
    xw = null.x * null.w[:, None]
    return g - null.x @ np.linalg.solve(null.x.T @ xw, xw.T @ g)


def _fast_parts(null: NullModel, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base, unit, score) with the fast variance = base + ratio * unit and the score G' P y~.

    One pass of a numba kernel over the block gives, in float64 whatever the block's type, its
    products with the few vectors the covariate correction needs (and P y~) and the (weighted)
    squared norms; Gaussian nulls add one matrix product of the cached top k eigenvectors with the
    block in the block's own precision (float32 from the scan: genotypes are small integers, and
    these directions' share of the variance is a sum of squares, with no cancellation).

    Gaussian: G~ = G - X C, C = (X' Sigma^-1 X)^-1 X' Sigma^-1 G (exact covariate correction);
    base = sum over the top k directions of (v' G~)^2 / d, unit = mean(1/d of the rest) *
    (|G~|^2 - sum (v' G~)^2).  PQL: base = 0, unit = G~' W G~ / phi, G~ adjusted in the W metric.
    """
    from ._score_numba import project

    cache = null.__dict__.get("_fast_cache")
    if cache is None:  # built whole, then published in one assignment: blocks run on several threads
        cache = _fast_cache(null)
        null.__dict__["_fast_cache"] = cache
    g = np.asfortranarray(g)
    dots, wsq = project(g, cache["columns"], cache["weights"])
    p, score = null.x.shape[1], dots[0]
    if "k" in cache:
        sg, xg = dots[1:1 + p], dots[1 + p:]
        v = cache["v32"] if g.dtype == np.float32 else cache["v64"]
        vg = (g.T @ v).T if cache["few"] else v @ g
        c = null.xsx_inv @ sg
        proj = vg - cache["vx"] @ c
        norm2 = wsq - 2 * np.einsum("ij,ij->j", xg, c) + np.einsum("ij,ij->j", c, cache["xtx"] @ c)
        top = np.einsum("ij,ij->j", proj, proj)
        return np.einsum("ij,i,ij->j", proj, cache["inv_d"], proj), cache["rest"] * (norm2 - top), score
    b = dots[1:]  # X' W G
    return np.zeros(g.shape[1]), (wsq - np.einsum("ij,ij->j", b, cache["xwx_inv"] @ b)) / null.phi, score


def _fast_rank(null: NullModel) -> int:
    """The eigen-directions the fast mode keeps: the null's chosen rank, else FAST_RANK, at most
    what it has."""
    available = null.n - 1 if null.eig_vectors is not None else len(null.fast_inv_d)
    return max(1, min(null.fast_rank or FAST_RANK, available))


def _fast_cache(null: NullModel) -> dict:
    if null.eig_vectors is not None or null.fast_vectors is not None:
        full = null.eig_vectors is not None
        k = _fast_rank(null)
        vectors, inv_d = null.top_vectors(k)
        rest = float(np.mean(null.eig_inv_d[:-k])) if full else null.fast_rest
        # few directions: the product as (m, n) @ (n, k), which BLAS runs faster with k this small
        # (k = 20, m = 128 variants, n = 10,000: 6.1 against 8.6 us per variant; k = 200: slower)
        few = k < 64
        oriented = (lambda a: np.asfortranarray(a.T)) if few else np.ascontiguousarray
        return {"k": k, "columns": np.ascontiguousarray(np.vstack([null.py, null.sigma_inv_x.T, null.x.T])),
                "weights": np.ones(null.n), "few": few, "v64": oriented(vectors),
                "v32": oriented(vectors.astype(np.float32)),
                "vx": vectors @ null.x, "xtx": null.x.T @ null.x, "inv_d": inv_d, "rest": rest}
    xw = null.x * null.w[:, None]
    return {"columns": np.ascontiguousarray(np.vstack([null.py, xw.T])), "weights": np.asarray(null.w, float),
            "xwx_inv": np.linalg.inv(null.x.T @ xw)}


def fast_variance(null: NullModel, g: np.ndarray, ratio: float) -> np.ndarray:
    """Approximate G^T P G in O(n) per variant.

    Gaussian nulls: the top k eigen-directions of the GRM (population structure, large families;
    k = the null's ``fast_rank``, see :func:`choose_fast_rank`) exactly, the remaining directions through their mean 1/d times the
    calibrated ratio, the covariate correction exactly.  PQL nulls: SAIGE's ratio times the GLM
    variance G~^T W G~ / phi.
    """
    base, unit, _ = _fast_parts(null, g)
    return base + ratio * unit


def apply_fast_rank(null: NullModel, k: int | None, predicted: float) -> None:
    """Give the null the fast-mode rank :func:`choose_fast_rank` returned (nothing for None), its
    prediction in the status, and drop a fast-mode cache built with another rank."""
    if k is not None:
        null.fast_rank = k
        null.status = {**null.status, "fast_rank_q99": round(predicted, 4)}
        null.__dict__.pop("_fast_cache", None)


def variance_ratio(null: NullModel, g: np.ndarray, *, exact: np.ndarray | None = None) -> tuple[float, float]:
    """(ratio, coefficient of variation) calibrating :func:`fast_variance` on the given variants:
    for PQL nulls exact / GLM variance; for Gaussian nulls the ratio that makes the approximated
    part (outside the top eigen-directions) exact on average.  ``exact``: the variances to match
    (default: the exact variances under ``null`` itself; LOCO passes those under Sigma_c)."""
    exact = exact_variance(null, g) if exact is None else exact
    base, unit, _ = _fast_parts(null, g)
    r = (exact - base) / unit
    return float(np.mean(r)), float(np.std(r) / np.mean(r))


def choose_fast_rank(null: NullModel, g: np.ndarray, exact: np.ndarray) -> tuple[int | None, float]:
    """(the fewest eigen-directions among FAST_RANKS whose fast variances keep the predicted 99th
    percentile of |delta log10 P| against the exact test within FAST_TOLERANCE, that prediction)
    on calibration variants ``g`` with exact variances ``exact``; (None, nan) for nulls without
    eigen-directions (PQL: SAIGE's plain ratio).

    The prediction pairs each calibration variant's relative variance error (after the ratio) with
    the quantiles of a null 1-df chi-square, the statistics a scan mostly sees.  The directions are
    what the ratio cannot absorb: variance along population structure and large families.  A
    variant's cost in the fast scan is about k multiply-adds per sample (one SGEMM), so k = 20
    instead of 200 makes the fast scan several times faster; at N = 10,000 (scripts/bench_scan.py)
    k = 20 predicted q99 0.017 and gave 0.017 (MAC >= 20), k = 200 0.012 and 0.013."""
    import dataclasses

    if null.eig_vectors is None and null.fast_vectors is None:
        return None, float("nan")
    chi = stats.chi2.isf((np.arange(200) + 0.5) / 200, 1)
    null_log10p = -stats.chi2.logsf(chi, 1) / LN10
    best = (None, np.inf)
    for k in sorted({min(k, _fast_rank(null)) for k in FAST_RANKS}):
        base, unit, _ = _fast_parts(dataclasses.replace(null, fast_rank=k), g)
        ratio = np.mean((exact - base) / unit)
        stretch = exact / (base + ratio * unit)  # chi-square multiplier of each variant
        shifted = -stats.chi2.logsf(np.outer(chi, stretch), 1) / LN10
        predicted = float(np.quantile(np.abs(shifted - null_log10p[:, None]), 0.99))
        if predicted < best[1]:
            best = (k, predicted)
        if predicted <= FAST_TOLERANCE:
            return k, predicted
    return best


def score_test(null: NullModel, g: np.ndarray, *, mode: str = "exact", ratio: float | None = None,
               spa: bool = True) -> ScoreResult:
    """Score tests of the columns of ``g`` (n, m), mean-imputed dosages without NaN (float64, or
    float32 as the scan reads them: the exact mode computes in float64 either way)."""
    if mode == "exact" and null.is_sparse and null.tau > 0:
        var, score = sparse_exact_parts(null, g)
    elif mode == "exact":
        g = np.asarray(g, dtype=float)
        score = g.T @ null.py
        var = exact_variance(null, g)
    elif mode == "fast":
        if ratio is None:
            raise ValueError("the fast mode needs the variance ratio")
        base, unit, score = _fast_parts(null, g)
        var = base + ratio * unit
    else:
        raise ValueError(f"mode must be exact or fast, got {mode!r}")
    var = np.maximum(var, 1e-300)
    z = score / np.sqrt(var)
    log10p = _normal_log10p(z)
    use_spa = np.zeros(len(score), dtype=bool)
    if spa and null.family == "binomial":
        use_spa = np.abs(z) > SPA_Z
        if use_spa.any():
            raw = np.asfortranarray(g[:, use_spa], dtype=float)  # each variant contiguous
            total = raw.sum(axis=0)
            mac = np.minimum(total, 2 * raw.shape[0] - total)
            gt = np.asfortranarray(adjusted_genotypes(null, raw))  # strided columns cost 8% of a tail at n = 100,000
            ctx = _spa_context(null)
            log10p[use_spa] = [spa_log10p(gt[:, k], null.mu, z_k, null.x if mac[k] >= SPA_CONDITIONAL_MIN_MAC else None,
                                          ctx, raw=raw[:, k]) for k, z_k in enumerate(z[use_spa])]
    return ScoreResult(score, var, log10p, use_spa)


@dataclass(frozen=True)
class SpaContext:
    """What the conditional SPA needs of the null, the same for every variant: computed once per
    null model rather than once per tail (each of these is a pass over the samples)."""

    mu: np.ndarray
    x: np.ndarray
    eta0: np.ndarray  # logit mu
    k_at_0: np.ndarray  # log(1 + exp(eta0)) per sample
    x_mu: np.ndarray  # X^T mu: the conditioning point
    denom: float  # log det K''_bb(0, 0) = log det X^T W X
    cases: float | None  # sum mu, the number of cases X^T y fixes when X has a constant column
    tensors: tuple  # X^T W X and the third and fourth cumulant tensors (_spa_numba.cumulant_tensors)
    taylor: tuple  # per sample: w, its Taylor coefficients k3 and k4, and the leverage x_i' (X^T W X)^-1 x_i

    @classmethod
    def of(cls, mu: np.ndarray, x: np.ndarray) -> SpaContext:
        from ._spa_numba import cumulant_tensors

        x = np.asfortranarray(x, dtype=float)
        eta0 = special.logit(mu)
        constant = bool(np.any(np.all(x == x[:1], axis=0) & (x[0] != 0))) if len(x) else False
        tensors = cumulant_tensors(x, np.ascontiguousarray(mu, dtype=float))
        w0 = mu * (1 - mu)
        try:  # one factor of X^T W X for its log det and the leverages
            chol = np.linalg.cholesky(tensors[0])
            logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
            half = scipy.linalg.solve_triangular(chol, x.T, lower=True)
            leverage = np.einsum("ij,ij->j", half, half)
        except np.linalg.LinAlgError:  # X^T W X singular: no Taylor model (its logdet check fails)
            logdet = float(np.linalg.slogdet(tensors[0])[1])
            leverage = np.full(len(mu), np.inf)
        taylor = (w0, w0 * (1 - 2 * mu), w0 * (1 - 6 * w0), leverage)
        return cls(mu, x, eta0, _softplus(eta0), x.T @ mu, logdet, float(np.sum(mu)) if constant else None, tensors,
                   taylor)

    def largest_score(self, g: np.ndarray, carriers: np.ndarray | None = None) -> float:
        """An upper bound of S = g^T (y - mu) given X^T y: with a constant column the number of
        cases is fixed at sum mu, so S is at most the sum of that many largest g (the last one
        fractionally) minus g^T mu; without one, the marginal bound.  ``carriers``: the positions
        of g's nonzero values, when few (the largest values are then found among them)."""
        if self.cases is None or self.cases >= len(g) - 1:
            return float(np.sum(np.maximum(g * (1 - self.mu), -g * self.mu)))
        k = int(self.cases)
        if carriers is None:
            part = np.partition(g, len(g) - k - 1)
            top, kth = part[len(g) - k:].sum(), part[len(g) - k - 1]
        else:  # the k + 1 largest: the positive values, then the zeros, then the negative ones
            values = -np.sort(-g[carriers])
            zeros = np.zeros(len(g) - len(carriers) + int(np.sum(values == 0)))
            ranked = np.concatenate([values[values > 0][:k + 1], zeros[:k + 1], values[values < 0][:k + 1]])[:k + 1]
            top, kth = ranked[:k].sum(), ranked[k]
        return float(top + (self.cases - k) * kth - g @ self.mu)


def _spa_context(null: NullModel) -> SpaContext:
    """The null's SpaContext, built once (not once per block) and published in one assignment."""
    ctx = null.__dict__.get("_spa_context")
    if ctx is None:
        ctx = null.__dict__["_spa_context"] = SpaContext.of(null.mu, null.x)
    return ctx


def spa_log10p(g: np.ndarray, mu: np.ndarray, z: float, x: np.ndarray | None = None,
               context: SpaContext | None = None, raw: np.ndarray | None = None) -> float:
    """Two-sided saddlepoint p-value (-log10) for S = g^T (y - mu), y_i ~ Bernoulli(mu_i), at the
    observed standardized score ``z`` (rescaled to S's own variance, as SAIGE does).

    With the covariates ``x`` (which must satisfy X^T (y - mu) = 0, as the null fit's means do),
    the distribution is that of S given X^T y, by Skovgaard's double saddlepoint approximation:
    a scan holds the phenotype fixed and varies the genotypes, so the number of cases (and the
    other sufficient statistics) do not vary across its tests.  The marginal approximation lets
    them vary, which widens the tails: with 50 cases in 5,000 it put 0.6x-0.8x of the nominal
    type-I error below 1e-3 even for unrelated samples (scripts/calibration.py; docs/gwas.md).
    ``context``: :meth:`SpaContext.of` (mu, x), when many variants share them.  ``raw``: the
    genotypes before their adjustment for X (g = raw - X gamma), for the double SPA: given X^T y,
    g^T y and raw^T y differ by a constant, and the saddlepoint's phi, a and det K'' do not change
    with the coordinates (a unit triangular map of (a, b)), so it runs on raw, whose non-carriers
    are 0 (:func:`_double_spa_log_tail`)."""
    g = np.asarray(g, dtype=float)
    var0 = float(np.dot(g * context.taylor[0], g)) if context is not None else float(np.sum(g * g * mu * (1 - mu)))
    if var0 <= 0:
        return 0.0
    q = abs(z) * np.sqrt(var0)
    if x is not None:
        ctx = context if context is not None else SpaContext.of(mu, x)
        h = g if raw is None else np.asarray(raw, dtype=float)
        if raw is not None and ctx.cases is not None and np.count_nonzero(h == 2.0) > np.count_nonzero(h == 0.0):
            # counted by the other allele, 2 - raw has fewer carriers, so more of the samples go
            # into the Taylor model.  With a constant column in X, 2 - raw = c - raw is -raw plus
            # a constant (no change given X^T y, as above): the two tails trade places and their
            # sum, the p-value, is the same
            h, g = 2.0 - h, -g
        logs = [_double_spa_log_tail(h, ctx, q, var0, g), _double_spa_log_tail(-h, ctx, q, var0, -g)]
    else:
        lmu = context.eta0 if context is not None else None
        logs = [_spa_log_tail(g, mu, q, var0, lmu), _spa_log_tail(-g, mu, q, var0, lmu)]
    top = max(logs)
    return float(-(top + np.log(np.exp(logs[0] - top) + np.exp(logs[1] - top))) / LN10)


def _double_spa_log_tail(g, ctx: SpaContext, q, var0, adjusted=None):
    """log P(S >= q | X^T y) by Skovgaard's double saddlepoint approximation (Butler 2007, sec. 4.2).

    K(a, b) = sum log(1 - mu_i + mu_i exp(a g_i + b^T x_i)) is the joint cumulant generating function
    of (g^T y, X^T y); the conditioning point is X^T y = X^T mu, where the saddlepoint of the
    denominator is b = 0 and K = 0.  The joint saddlepoint (a, b) solves F = grad K - (g^T mu + q,
    X^T mu) = 0, i.e. maximises the concave phi = (a, b)^T target - K, by Newton steps from (0, 0)
    (where the probabilities are mu: no pass).  Far from the root the step length is chosen by
    Armijo's rule on phi (globally convergent; backtracking on |F|^2 there took 5 to 12 halvings a
    step for far tails and ran into the iteration limit, about 30 ms a tail); once the Newton
    decrement is below 1e-6, where phi's rise is below rounding, on |F|^2.  A step below 1e-8 ends
    it (the next error is that squared; w is stationary at the saddlepoint).  Then
    w = sgn(a) sqrt(2 phi) and u = a sqrt(det K''(a, b) / det K''_bb(0, 0)).  A point beyond the
    support (checked first through the fixed number of cases, see :meth:`SpaContext.largest_score`)
    has probability 0; where Newton finds no root, the marginal tail.
    The tail is taken in Barndorff-Nielsen's form 1 - Phi(w + log(u/w)/w), as the marginal one,
    so it stays positive and exact on the log scale far out.  ``g`` may be the genotypes before
    their adjustment for X (see :func:`spa_log10p`); the marginal fallback then takes the
    ``adjusted`` ones (it depends on the coordinates)."""
    adjusted = g if adjusted is None else adjusted
    from ._spa_numba import OK, double_saddlepoint

    g = np.ascontiguousarray(g, dtype=float)
    carriers = np.flatnonzero(g) if np.count_nonzero(g) <= len(g) * TAYLOR_MAX_CARRIERS else None
    if q >= ctx.largest_score(g, carriers) * (1 - 1e-12):
        # beyond the conditional support (short tails: a rare variant's side that needs more of
        # the fixed cases among its carriers than they hold): Newton would run off to infinity
        return -745.0
    target = np.concatenate([[g @ ctx.mu + q], ctx.x_mu])
    status, a, phi, logdet, residual = double_saddlepoint(
        g, ctx.x, ctx.mu, ctx.eta0, ctx.k_at_0, target, _NONE if carriers is None else carriers, ctx.x_mu,
        *ctx.tensors, *ctx.taylor)
    w2 = 2.0 * phi
    if status != OK or residual > 1e-6 * max(1.0, np.abs(target).max()) or a <= 0 or w2 <= 0:
        return _spa_log_tail(adjusted, ctx.mu, q, var0, ctx.eta0)  # no root (beyond the support) or none found
    w = np.sqrt(w2)
    u = a * np.exp(0.5 * (logdet - ctx.denom))
    return float(_log_sf(w + np.log(u / w) / w))  # Barndorff-Nielsen's form: exact on the log scale


def _softplus(a: np.ndarray) -> np.ndarray:
    """log(1 + e^a), stably, in numpy's vectorised exp and log1p (np.logaddexp(0, a) takes about
    4x as long: the SPA evaluates this over every sample several times a tail)."""
    return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))


def _spa_log_tail(g, mu, q, var0=None, lmu=None):
    """log P(S >= q) by Lugannani-Rice (Barndorff-Nielsen form).  The saddlepoint K'(t) = q by
    Newton steps from the normal approximation's t = q / K''(0) (``var0``, if the caller has it),
    kept inside a bracket (K' increases; doubling or bisection where a step leaves it).  A Newton
    step below 1e-9 relative ends it: the next error is that squared, and w is stationary at the
    saddlepoint.  About four evaluations of K' and K''; Brent's method needed twenty to forty.
    ``lmu``: logit mu, if the caller has it."""
    top = float(np.sum(np.maximum(g * (1 - mu), -g * mu)))  # the largest value S can take
    if q >= top * (1 - 1e-12):
        return -745.0  # beyond the support
    from ._spa_numba import marginal_saddlepoint

    k2_0 = float(np.sum(g * g * mu * (1 - mu))) if var0 is None else var0
    lmu = special.logit(mu) if lmu is None else lmu
    t, k0, k2 = marginal_saddlepoint(np.ascontiguousarray(g, dtype=float), mu, lmu, float(q), k2_0)
    w = np.sign(t) * np.sqrt(max(2 * (t * q - k0), 0.0))
    v = t * np.sqrt(k2)
    if w == 0 or v <= 0:
        return float(_log_sf(q / np.sqrt(np.sum(g * g * mu * (1 - mu)))))
    return float(_log_sf(w + np.log(v / w) / w))
