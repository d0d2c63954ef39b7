"""Dormand–Prince 5(4) (FSAL) for dy/dt = rhs(t, y) on arrays of any shape: PI step control,
the scipy ``RK45`` error norm, steps exactly onto every save time (no interpolation error in the
output).  The accuracy reference of the flow and the integrator of the population ODEs; the
tableau is the one copy (the Numba 2-scalar population ODE reads it too).  The evaluation
budget and work counters are shared with ``rkc2`` (:mod:`lazyrich_theory.core.integrators`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numba import njit

from lazyrich_theory.core.integrators import MAX_RHS, IntegratorStats, start_integration
from lazyrich_theory.errors import IntegrationError

__all__ = ["dopri5", "DOPRI5_C", "DOPRI5_A", "DOPRI5_B5", "DOPRI5_B4", "DOPRI5_E",
           "dopri5_step_factor", "dopri5_reject_factor"]

# Dormand–Prince 5(4) tableau, the one copy (the Numba 2-scalar population ODE reads it too:
# module-level tuples are compile-time constants there).  Row s of DOPRI5_A holds a_{s,0..6}
# (zero-padded); row 6 is the 5th-order solution (FSAL: its stage is the next step's first).
DOPRI5_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
DOPRI5_A = (
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (1 / 5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (3 / 40, 9 / 40, 0.0, 0.0, 0.0, 0.0, 0.0),
    (44 / 45, -56 / 15, 32 / 9, 0.0, 0.0, 0.0, 0.0),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0.0, 0.0, 0.0),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0.0, 0.0),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
)
DOPRI5_B5 = DOPRI5_A[6]
DOPRI5_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
#: Error weights b5 - b4 of the embedded pair.
DOPRI5_E = tuple(b5 - b4 for b5, b4 in zip(DOPRI5_B5, DOPRI5_B4))
#: Step-size control of both DOPRI5 drivers: safety factor, factor bounds, PI exponent
#: (Hairer & Wanner II, IV.2): h <- h * clip(SAFETY err^(-1/5 + 3/4 BETA) err_old^BETA).
DOPRI5_SAFETY, DOPRI5_MIN_FAC, DOPRI5_MAX_FAC, DOPRI5_BETA = 0.9, 0.2, 10.0, 0.04


def _dopri5_first_step(rhs, t: float, y: np.ndarray, k1: np.ndarray, rtol: float,
                       atol: float) -> float:
    """Hairer's starting-step heuristic (one extra evaluation of ``rhs``)."""
    sc = atol + rtol * np.abs(y)
    d0 = math.sqrt(np.mean((y / sc) ** 2))
    d1 = math.sqrt(np.mean((k1 / sc) ** 2))
    h = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    y1 = y + h * k1
    k2 = rhs(t + h, y1)
    d2 = math.sqrt(np.mean(((k2 - k1) / sc) ** 2)) / h
    dm = max(d1, d2)
    h1 = max(1e-6, h * 1e-3) if dm <= 1e-15 else (0.01 / dm) ** (1 / 5)
    return min(100 * h, h1)


def _dopri5_step(rhs, t: float, y: np.ndarray, k1: np.ndarray, h: float, stages: list):
    """One Dormand–Prince step: fills ``stages`` and returns (y_new, error vector)."""
    stages[0] = k1
    for s in range(1, 7):
        acc = y.copy()
        for j, a in enumerate(DOPRI5_A[s]):
            if a != 0.0:
                acc += (h * a) * stages[j]
        if s == 6:
            y_new = acc  # the 7th stage is evaluated at the 5th-order solution (FSAL)
        stages[s] = rhs(t + DOPRI5_C[s] * h, acc)
    err_vec = sum((h * e) * st for e, st in zip(DOPRI5_E, stages) if e != 0.0)
    return y_new, err_vec


def dopri5(rhs: Callable[[float, np.ndarray], np.ndarray], y0: np.ndarray, t_save: np.ndarray,
           on_save: Callable[[int, float, np.ndarray], None], rtol: float = 1e-7,
           atol: float = 1e-10, h0: float | None = None, max_steps: int = 10_000_000,
           progress: Callable[[float], None] | None = None,
           max_rhs: int = MAX_RHS) -> IntegratorStats:
    """Dormand–Prince 5(4) from t_save[0] through every t_save[k], stepping onto each.

    Parameters
    ----------
    rhs : callable
        ``rhs(t, y)``, the time derivative (an array of the shape of ``y0``).
    y0 : ndarray
        The state at t_save[0].
    t_save : array_like
        Strictly increasing save times.
    on_save : callable
        ``on_save(k, t, y)``, called at each save time t_save[k].
    rtol, atol, h0 : float
        Tolerances of the mixed error norm; the first step (default: Hairer's heuristic).
    max_steps, max_rhs : int
        Limits on the steps (IntegrationError) and on the evaluations of ``rhs``, used or
        projected at a step size that no longer grows (:class:`BudgetExceeded`).
    progress : callable, optional
        ``progress(dt)`` after each accepted step of length dt.

    Returns
    -------
    IntegratorStats
        The work counters.
    """
    t_save, stats, budget, t = start_integration("dopri5", t_save, rtol, atol, max_rhs)
    y = np.array(y0, dtype=np.float64, copy=True)
    on_save(0, t, y)
    if t_save.size == 1:
        return stats
    k1 = rhs(t, y)
    stats.n_rhs += 1
    if h0 is None:
        h = _dopri5_first_step(rhs, t, y, k1, rtol, atol)
        stats.n_rhs += 1
    else:
        h = float(h0)
    err_old, k_next, stages = 1e-4, 1, [None] * 7
    while k_next < t_save.size:
        target = float(t_save[k_next])
        h = min(h, target - t)
        hit = (target - t) - h <= 1e-12 * max(1.0, abs(target))
        if hit:
            h = target - t
        y_new, err_vec = _dopri5_step(rhs, t, y, k1, h, stages)
        stats.n_rhs += 6
        scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
        err = math.sqrt(float(np.mean((err_vec / scale) ** 2)))
        if not np.isfinite(err) or not np.all(np.isfinite(stages[6])):
            err = np.inf
        if stats.n_accepted + stats.n_rejected >= max_steps:
            raise IntegrationError(f"more than {max_steps} steps before t={target}")
        if err <= 1.0:
            t_old = t
            t = target if hit else t + h
            y = y_new
            k1 = stages[6]
            stats.n_accepted += 1
            if progress is not None:
                progress(t - t_old)
            if hit:
                on_save(k_next, t, y)
                k_next += 1
            h = h * dopri5_step_factor(err, err_old)
            err_old = max(err, 1e-4)
        else:
            stats.n_rejected += 1
            h *= dopri5_reject_factor(err)
            if not np.all(np.isfinite(y)):
                raise IntegrationError(f"non-finite state at t={t:.6g}")
        budget.check(stats, t, h)
    return stats


@njit(cache=True)
def dopri5_step_factor(err: float, err_old: float) -> float:
    """Step-size factor after an accepted DOPRI5 step with scaled error ``err`` (the previous
    accepted one ``err_old``): PI control, clipped to [DOPRI5_MIN_FAC, DOPRI5_MAX_FAC]."""
    if err > 0:
        fac = DOPRI5_SAFETY * err ** (-0.2 + 0.75 * DOPRI5_BETA) * err_old**DOPRI5_BETA
    else:
        fac = DOPRI5_MAX_FAC
    return min(DOPRI5_MAX_FAC, max(DOPRI5_MIN_FAC, fac))


@njit(cache=True)
def dopri5_reject_factor(err: float) -> float:
    """Step-size factor after a rejected DOPRI5 step (0.1 when the error is not finite)."""
    if not math.isfinite(err):
        return 0.1
    return max(DOPRI5_MIN_FAC, DOPRI5_SAFETY * err ** -0.2)
