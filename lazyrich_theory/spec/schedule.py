"""Save-time schedules: log-spaced integer times in GD steps."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from lazyrich_theory.errors import ProblemError

__all__ = ["save_times", "parse_times", "MAX_STEPS"]

#: Largest horizon: save times are stored as float64, exact for integers up to 2**53.
MAX_STEPS = 2**53


def save_times(steps: int, extra: Iterable[float] | None = None, per_decade: int = 40) -> np.ndarray:
    """Sorted unique integer save times: 0, ``per_decade`` log-spaced points per decade up to
    ``steps``, ``steps`` itself, and exactly the times in ``extra`` (each in [0, steps])."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ProblemError(f"steps must be a non-negative integer, got {steps!r}")
    steps = int(steps)
    if steps > MAX_STEPS:
        raise ProblemError(f"steps={steps} exceeds 2**53 = {MAX_STEPS}, beyond which float64 "
                           f"save times are not exact integers")
    if per_decade < 1:
        raise ProblemError(f"per_decade must be >= 1, got {per_decade}")
    grid = [0, steps]
    if steps >= 1:
        decades = np.log10(steps)
        n = max(2, int(np.ceil(decades * per_decade)) + 1)
        grid.extend(np.unique(np.round(np.logspace(0.0, decades, n))).astype(np.int64).tolist())
    extra_list = [] if extra is None else np.asarray(extra, dtype=object).ravel().tolist()
    for t in extra_list:
        try:
            tf = float(t)
        except (TypeError, ValueError):
            raise ProblemError(f"save time {t!r} is not a number") from None
        if not math.isfinite(tf):
            raise ProblemError(f"save time {t!r} is not finite")
        if not tf.is_integer():
            raise ProblemError(f"save time {t!r} is not an integer number of steps")
        if tf < 0 or tf > steps:
            raise ProblemError(f"save time {int(tf)} is outside [0, {steps}]")
        grid.append(int(tf))
    return np.unique(np.asarray(grid, dtype=np.int64))


def parse_times(text: str) -> list[int]:
    """Parse '10,100,1000' into [10, 100, 1000].

    Parameters
    ----------
    text : str
        Comma-separated non-negative integers (``1e3`` allowed); no empty items.

    Returns
    -------
    list of int
        ProblemError (one line) for an empty text or item, or a value that is not a
        non-negative integer.
    """
    if not text.strip():
        raise ProblemError("--save-times: no times given (use comma-separated integers, "
                           "e.g. 10,100,1000)")
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ProblemError(f"--save-times: empty item in {text!r} (use comma-separated "
                               "integers, e.g. 10,100,1000)")
        try:
            v = float(part)
        except ValueError:
            raise ProblemError(f"--save-times: {part!r} is not a number") from None
        if not math.isfinite(v) or not v.is_integer() or v < 0:
            raise ProblemError(f"--save-times: {part!r} is not a non-negative integer")
        out.append(int(v))
    return out
