"""Brute-force references: dense, explicit, slow, obviously right."""

from __future__ import annotations

import numpy as np


def dense_grm(x: np.ndarray, *, missing: str = "gcta", min_maf: float = 0.0, max_missing: float = 1.0):
    """GCTA standardized GRM of a (samples, variants) dosage matrix with NaN missing, by its
    definition: per pair, the mean over usable variants of the product of standardized values."""
    x = np.asarray(x, dtype=np.float64)
    n, m = x.shape
    called = ~np.isnan(x)
    n_called = called.sum(axis=0)
    count = np.nansum(x, axis=0)
    p = count / (2 * n_called)
    maf = np.minimum(count, 2 * n_called - count) / (2 * n_called)  # plink2: from allele counts
    use = (maf >= min_maf) & ((n - n_called) / n <= max_missing)
    x, called, p = x[:, use], called[:, use], p[use]
    poly = (p > 0) & (p < 1)
    z = np.zeros_like(x)
    z[:, poly] = (x[:, poly] - 2 * p[poly]) / np.sqrt(2 * p[poly] * (1 - p[poly]))
    z[~called] = 0.0
    out = np.empty((n, n))
    for j in range(n):
        for k in range(j, n):
            both = called[j] & called[k] if missing == "gcta" else np.ones(x.shape[1], bool)
            out[j, k] = out[k, j] = np.dot(z[j, both], z[k, both]) / both.sum()
    return out, int(use.sum())
