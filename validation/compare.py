"""Compare two trajectories (e.g. the network against the reduced dynamics) save time by save time."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import Trajectory, load

__all__ = ["max_relative_deviation", "compare"]

_TINY = np.finfo(np.float64).tiny


def _as_trajectory(x) -> Trajectory:
    if isinstance(x, Trajectory):
        return x
    if isinstance(x, (str, os.PathLike)):
        return load(x)
    raise ProblemError(f"expected a Trajectory or a trajectory folder, got {type(x).__name__}")


def _relative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|, tiny), elementwise.

    Non-finite values: two identical non-finite values (both NaN, or the same infinity)
    count as 0; any other pair involving a non-finite value counts as inf.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), _TINY)
    finite = np.isfinite(a) & np.isfinite(b)
    same_nonfinite = (~finite) & ((np.isnan(a) & np.isnan(b)) | (a == b))
    rel = np.where(finite, rel, np.where(same_nonfinite, 0.0, np.inf))
    return rel


def max_relative_deviation(a, b, columns: Iterable[str] = ("train_loss", "test_loss",
                                                            "population_loss")) -> dict:
    """Largest relative deviation between two trajectories on their common save times.

    ``a`` and ``b`` are Trajectory objects or folders written by ``Trajectory.save``.
    Save times are matched exactly (float equality of ``t``).  Per column and time the
    deviation is |a - b| / max(|a|, |b|, tiny).  Returns
    ``{"max": float, "per_column": {col: float}, "n_times": int,
    "worst": {"column": str, "t": float}, "nonfinite": None or {"column", "t", "a", "b"}}``;
    ``nonfinite`` is the first pair in which only one side is finite or the two non-finite
    values differ (its deviation counts as inf).  Raises ProblemError (a ValueError) for no
    columns, a missing column or no common save time.
    """
    ta, tb = _as_trajectory(a), _as_trajectory(b)
    columns = tuple(columns)
    if not columns:
        raise ProblemError("no columns to compare")
    for name, tr in (("first", ta), ("second", tb)):
        missing = [c for c in columns if c not in tr.columns]
        if missing:
            raise ProblemError(f"the {name} trajectory lacks column(s): {', '.join(missing)}")
    common, ia, ib = np.intersect1d(np.asarray(ta.t, dtype=np.float64),
                                    np.asarray(tb.t, dtype=np.float64),
                                    assume_unique=False, return_indices=True)
    if common.size == 0:
        raise ProblemError("the two trajectories have no common save times")
    per_column: dict[str, float] = {}
    worst = {"column": columns[0], "t": float(common[0])}
    nonfinite = None
    best = -1.0
    for col in columns:
        va, vb = ta[col][ia], tb[col][ib]
        rel = _relative(va, vb)
        k = int(np.argmax(rel))
        per_column[col] = float(rel[k])
        if nonfinite is None and np.isinf(rel[k]):
            nonfinite = {"column": col, "t": float(common[k]), "a": float(va[k]),
                         "b": float(vb[k])}
        if rel[k] > best:
            best = float(rel[k])
            worst = {"column": col, "t": float(common[k])}
    return {"max": best, "per_column": per_column, "n_times": int(common.size), "worst": worst,
            "nonfinite": nonfinite}


#: Alias.
compare = max_relative_deviation
