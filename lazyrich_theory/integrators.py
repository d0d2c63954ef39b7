"""Adaptive, error-controlled integrators for dy/dt = rhs(t, y) on arrays of any shape.

``dopri5`` is the Dormand–Prince 5(4) embedded Runge–Kutta pair (FSAL) with a PI step-size
controller and a mixed absolute/relative error norm (the scipy ``RK45`` norm).  It steps
exactly onto every requested save time, so no interpolation error enters the output.
The right-hand side is free to use BLAS; the stepping logic is cheap next to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["IntegrationError", "IntegratorStats", "dopri5"]


class IntegrationError(RuntimeError):
    """The integrator could not advance (non-finite state or step size underflow)."""


@dataclass
class IntegratorStats:
    n_rhs: int = 0
    n_accepted: int = 0
    n_rejected: int = 0


# Dormand–Prince 5(4) tableau.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4))


def dopri5(rhs: Callable[[float, np.ndarray], np.ndarray], y0: np.ndarray, t_save: np.ndarray,
           on_save: Callable[[int, float, np.ndarray], None], rtol: float = 1e-7,
           atol: float = 1e-10, h0: float | None = None, max_steps: int = 10_000_000,
           progress: Callable[[float], None] | None = None) -> IntegratorStats:
    """Integrate from t_save[0] through every t_save[k] (increasing), calling
    ``on_save(k, t, y)`` at each.  Returns the work statistics."""
    if rtol <= 0 or atol < 0:
        raise ValueError("rtol must be > 0 and atol >= 0")
    t_save = np.asarray(t_save, dtype=np.float64)
    if t_save.ndim != 1 or t_save.size == 0 or np.any(np.diff(t_save) <= 0):
        raise ValueError("save times must be a non-empty strictly increasing sequence")
    stats = IntegratorStats()
    t = float(t_save[0])
    y = np.array(y0, dtype=np.float64, copy=True)
    on_save(0, t, y)
    if t_save.size == 1:
        return stats
    k1 = rhs(t, y)
    stats.n_rhs += 1
    if h0 is None:
        # Hairer's starting-step heuristic (one extra evaluation).
        sc = atol + rtol * np.abs(y)
        d0 = math.sqrt(np.mean((y / sc) ** 2))
        d1 = math.sqrt(np.mean((k1 / sc) ** 2))
        h = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        y1 = y + h * k1
        k2 = rhs(t + h, y1)
        stats.n_rhs += 1
        d2 = math.sqrt(np.mean(((k2 - k1) / sc) ** 2)) / h
        dm = max(d1, d2)
        h1 = max(1e-6, h * 1e-3) if dm <= 1e-15 else (0.01 / dm) ** (1 / 5)
        h = min(100 * h, h1)
    else:
        h = float(h0)
    safety, min_fac, max_fac = 0.9, 0.2, 10.0
    beta_pi = 0.04  # PI control (Hairer & Wanner II, IV.2)
    err_old = 1e-4
    k_next = 1
    steps = 0
    stages = [None] * 7
    while k_next < t_save.size:
        target = float(t_save[k_next])
        h = min(h, target - t)
        hit = (target - t) - h <= 1e-12 * max(1.0, abs(target))
        if hit:
            h = target - t
        stages[0] = k1
        for s in range(1, 7):
            acc = y.copy()
            for j, a in enumerate(_A[s]):
                if a != 0.0:
                    acc += (h * a) * stages[j]
            if s == 6:
                y_new = acc  # the 7th stage is evaluated at the 5th-order solution (FSAL)
            stages[s] = rhs(t + _C[s] * h, acc)
        stats.n_rhs += 6
        err_vec = sum((h * e) * st for e, st in zip(_E, stages) if e != 0.0)
        scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
        err = math.sqrt(float(np.mean((err_vec / scale) ** 2)))
        if not np.isfinite(err) or not np.all(np.isfinite(stages[6])):
            err = np.inf
        steps += 1
        if steps > max_steps:
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
            fac = safety * err ** (-0.2 + 0.75 * beta_pi) * err_old**beta_pi if err > 0 else max_fac
            h = h * min(max_fac, max(min_fac, fac))
            err_old = max(err, 1e-4)
        else:
            stats.n_rejected += 1
            if not np.isfinite(err):
                h *= 0.1
            else:
                h *= max(min_fac, safety * err ** -0.2)
            if not np.all(np.isfinite(y)):
                raise IntegrationError(f"non-finite state at t={t:.6g}")
        if h < 1e-12 * max(1.0, abs(t)):
            raise IntegrationError(f"step size underflow at t={t:.6g} (h={h:.3g})")
    return stats
