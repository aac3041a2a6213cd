"""Checks shared by every public entry point; each raises InputError with a message a user can act on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .exceptions import InputError


def check_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise if it is not an existing regular file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found: {path} (check the path and the prefix given)")
    if not path.is_file():
        raise InputError(f"{what} is not a regular file: {path}")
    return path


def check_fraction(name: str, value: float, *, low: float = 0.0, high: float = 1.0) -> float:
    value = float(value)
    if not (low <= value <= high) or np.isnan(value):
        raise InputError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def check_positive_int(name: str, value: int, *, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def first_duplicate(keys: Sequence) -> tuple[int, int] | None:
    """Positions (first, second) of the first repeated key, or None if all are unique."""
    seen: dict = {}
    for pos, key in enumerate(keys):
        if key in seen:
            return seen[key], pos
        seen[key] = pos
    return None


def check_index(name: str, index, size: int) -> np.ndarray:
    """An int64 index array into range(size), from None (everything), a bool mask or integers."""
    if index is None:
        return np.arange(size, dtype=np.int64)
    index = np.asarray(index)
    if index.dtype == bool:
        if index.shape != (size,):
            raise InputError(f"{name}: boolean mask has length {index.size}, expected {size}")
        return np.flatnonzero(index).astype(np.int64)
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise InputError(f"{name}: expected a 1-D array of integer positions")
    index = index.astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= size):
        raise InputError(f"{name}: positions must lie in [0, {size}), got {index.min()}..{index.max()}")
    return index


def check_full_rank(x: np.ndarray, names: Sequence[str], what: str = "the fixed effects") -> None:
    """Raise, naming the columns involved, if the columns of ``x`` are linearly dependent (e.g.
    age in years and in months, or indicator columns that add up to the intercept): their effects
    cannot be told apart.  The dependency is read off the right singular vector of the smallest
    singular value."""
    if not x.shape[1]:
        return
    _, s, vt = np.linalg.svd(np.asarray(x, dtype=float), full_matrices=False)
    tol = s.max(initial=0.0) * max(x.shape) * np.finfo(float).eps
    if s.size and s[-1] > tol:
        return
    v = np.abs(vt[-1])
    involved = [str(n) for n, c in zip(names, v) if c > 1e-6 * v.max()]
    raise InputError(f"{what}: the columns {', '.join(involved)} are collinear (one is a combination of the others), "
                     "so their effects cannot be told apart; drop one of them")


def check_separation(x: np.ndarray, y: np.ndarray, names: Sequence[str], what: str = "the response") -> None:
    """Raise if the columns of ``x`` separate a binomial response ``y`` (proportions: 0 and 1 are
    all-failure and all-success rows): some direction b != 0 with x_i^T b >= 0 wherever y_i = 1,
    <= 0 wherever y_i = 0 and = 0 elsewhere, and > 0 somewhere, makes the likelihood grow without
    bound along b, so the fixed effects have no finite maximum-likelihood estimate (complete or
    quasi-complete separation).  Konis's linear programme (2007): maximise sum_i s_i x_i^T b
    under those constraints with |b_j| <= 1, columns scaled to unit maximum; a positive optimum
    is a separating direction, and the message names its columns."""
    from scipy.optimize import linprog

    scale = np.maximum(np.abs(x).max(axis=0), 1e-300)
    xs = x / scale
    one, zero = y >= 1 - 1e-12, y <= 1e-12
    edge = one | zero
    signed = np.where(one, 1.0, -1.0)[edge, None] * xs[edge]
    middle = xs[~edge]
    res = linprog(-signed.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(signed)),
                  A_eq=middle if len(middle) else None, b_eq=np.zeros(len(middle)) if len(middle) else None,
                  bounds=[(-1.0, 1.0)] * x.shape[1], method="highs")
    if res.status != 0 or -res.fun <= 1e-7 * max(len(y), 1):
        return
    direction = np.abs(res.x) > 1e-6
    columns = ", ".join(str(n) for n, d in zip(names, direction) if d)
    raise InputError(
        f"{what} is perfectly predicted by the fixed effects {columns} (separation: a combination of them is "
        ">= 0 for every case and <= 0 for every control), so their maximum-likelihood estimates are infinite; "
        "drop or merge those covariates (e.g. a category with only cases or only controls) or the rows they predict"
    )
