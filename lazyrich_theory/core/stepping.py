"""The stepping loops of the reduced dynamics: exact GD (with heavy-ball momentum), minibatch
and online SGD, and the adaptive gradient flow; divergence detection and progress bars.

All loops return the rows of ``ReducedSystem.record`` at the save times and the final factor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich_theory.core.integrators import dopri5, rkc2
from lazyrich_theory.core.reduced import ReducedSystem, _residual
from lazyrich_theory.core.statistics import predict
from lazyrich_theory.errors import DivergenceError, IntegrationError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.streams import (
    iter_batch_indices,
    iter_online_samples,
    sgd_batch_size,
    sgd_mode,
)

__all__ = ["BLOWUP_FACTOR", "run_gd", "run_sgd", "run_flow"]


#: A loss above this multiple of its initial value counts as a blow-up.
BLOWUP_FACTOR = 1e8


def _divergence(system: ReducedSystem, step: float, what: str, F_healthy: np.ndarray) -> DivergenceError:
    """The error for a blow-up at ``step``; the bound is the smaller of the Gauss-Newton bounds
    at initialisation and at the last healthy state (loss at most twice its initial value)."""
    p = system.problem
    bound = system.eta0_bound(system.F0)
    if F_healthy is not system.F0 and np.all(np.isfinite(F_healthy)):
        try:
            bound = min(bound, system.eta0_bound(F_healthy))
        except np.linalg.LinAlgError:
            pass
    mode = sgd_mode(p)
    if mode is None:
        msg = (f"dynamics diverged at step {step:g} ({what}); eta0={p.eta0:g} but GD is stable "
               f"only for eta0 < {bound:.4g} (Gauss-Newton bound P/lambda_max(Ktilde))")
    else:
        msg = (f"dynamics diverged at step {step:g} ({what}); eta0={p.eta0:g}: {mode} SGD with "
               f"batch size {sgd_batch_size(p)} needs eta0 below the full-batch GD bound "
               f"{bound:.4g} (P/lambda_max(Ktilde)) and, for small batches, well below it")
    return DivergenceError(msg, step, bound)


def _progress_bar(total: float, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="step", unit_scale=True, leave=False,
                disable=None, mininterval=0.5)


def _step(F: np.ndarray, Fv: np.ndarray | None, V: np.ndarray, mu: float):
    """One update with increment V: F + V, or heavy ball F_v <- mu F_v + V, F <- F + F_v."""
    if Fv is None:
        return F + V, None
    Fv = mu * Fv + V
    return F + Fv, Fv


def run_sgd(system: ReducedSystem, times: np.ndarray, progress: bool,
             data: ProblemData | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact minibatch / online SGD on the factor; returns (rows at save times, final F).

    Step t takes its batch (X_b, y_b, f0_b) of B points (minibatch: rows of the training set;
    online: fresh samples) and applies, with r = ftilde(X_b) - y_b,
        Delta(F) = -(2 eta0 / (alpha B)) X_b^T [r * (eps X_b F + c^T)] - eta0 lambda F,
        F <- F + Delta(F)   or, with momentum mu,   F_v <- mu F_v + Delta(F), F <- F + F_v.
    Saved train_loss: the full training loss (minibatch) or the loss of the state at t on
    step t's fresh batch (online).  Blow-up is checked every step on the batch loss.
    """
    p = system.problem
    mode = sgd_mode(p)
    B = sgd_batch_size(p)
    mu = p.momentum
    z = system.z
    if mode == "minibatch":
        it_idx = iter_batch_indices(p)

        def next_batch():
            idx = next(it_idx)
            return system.X[idx], system.y[idx], system.f0[idx]
    else:
        it_xy = iter_online_samples(p, p.data() if data is None else data)
        s = p.input_scale
        zeros = np.zeros(B)

        def next_batch():
            Xr, yb = next(it_xy)
            Xb = Xr * s if s != 1.0 else Xr
            f0b = predict(Xb @ system.F0, z, p.alpha, p.eps) if p.centered else zeros
            return Xb, yb, f0b
    F = system.F0.copy()
    Fv = np.zeros_like(F) if mu > 0.0 else None
    steps = int(times[-1])
    rows = np.empty((times.size, system.width()))
    k = 0
    bar = _progress_bar(steps, progress, mode)
    loss0 = full0 = None
    F_healthy = F
    for t in range(steps + 1):
        Xb, yb, f0b = next_batch()
        XF = Xb @ F
        r = _residual(XF, z, p.alpha, p.eps, f0b, yb)
        loss = float(r @ r) / B
        if loss0 is None:
            loss0 = loss
        if not math.isfinite(loss) or loss > BLOWUP_FACTOR * loss0 + 1e-300:
            what = "non-finite loss" if not math.isfinite(loss) else f"batch loss {loss:.3g}"
            raise _divergence(system, t, what, F_healthy)
        if loss <= 2.0 * loss0:
            F_healthy = F
        if t == times[k]:
            row = system.record(F, train_loss=loss if mode == "online" else None)
            if full0 is None:
                full0 = row[0]
            if not math.isfinite(row[0]) or row[0] > BLOWUP_FACTOR * full0 + 1e-300:
                raise _divergence(system, t, f"train loss {row[0]:.3g}", F_healthy)
            rows[k] = row
            k += 1
        if t == steps:
            break
        F, Fv = _step(F, Fv, system.increment(F, XF, r, Xb), mu)
        if bar is not None and (t & 255) == 0:
            bar.update(min(256, steps - bar.n))
    if bar is not None:
        bar.close()
    return rows, F


def run_gd(system: ReducedSystem, times: np.ndarray, progress: bool,
            heavy_ball: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact discrete GD; returns (rows at save times, final F).

    ``heavy_ball`` (default: momentum > 0) also propagates the velocity factor F_v (starting
    at 0): F_v <- mu F_v + Delta(F), F <- F + F_v.  With mu = 0 this is plain GD bit for bit.
    """
    mu = system.problem.momentum
    if heavy_ball is None:
        heavy_ball = mu > 0.0
    F = system.F0.copy()
    Fv = np.zeros_like(F) if heavy_ball else None
    steps = int(times[-1])
    rows = np.empty((times.size, system.width()))
    k = 0
    bar = _progress_bar(steps, progress, "gd")
    loss0 = None
    F_healthy = F
    for t in range(steps + 1):
        XF, r = system.residuals(F)
        loss = float(r @ r) / r.size
        if loss0 is None:
            loss0 = loss
        if not math.isfinite(loss) or loss > BLOWUP_FACTOR * loss0 + 1e-300:
            what = "non-finite loss" if not math.isfinite(loss) else f"train loss {loss:.3g}"
            raise _divergence(system, t, what, F_healthy)
        if loss <= 2.0 * loss0:
            F_healthy = F
        if t == times[k]:
            rows[k] = system.record(F, train_loss=loss)
            k += 1
        if t == steps:
            break
        F, Fv = _step(F, Fv, system.increment(F, XF, r), mu)
        if bar is not None and (t & 255) == 0:
            bar.update(min(256, steps - bar.n))
    if bar is not None:
        bar.close()
    return rows, F


def run_flow(system: ReducedSystem, times: np.ndarray, integrator: str, rtol: float,
              atol: float, progress: bool) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Adaptive gradient flow (``integrator`` "rkc" or "dopri5"); returns (rows at save
    times, final F, integrator work counters)."""
    rows = np.empty((times.size, system.width()))
    state: dict[str, Any] = {"F": system.F0, "loss0": None}  # F: last healthy saved state

    def on_save(k: int, t: float, F: np.ndarray) -> None:
        row = system.record(F)
        if state["loss0"] is None:
            state["loss0"] = row[0]
        if not all(math.isfinite(v) for v in row) or row[0] > BLOWUP_FACTOR * state["loss0"] + 1e-300:
            raise _divergence(system, t, "non-finite or exploding loss", state["F"])
        rows[k] = row
        state["final"] = F
        if row[0] <= 2.0 * state["loss0"]:
            state["F"] = F

    bar = _progress_bar(float(times[-1]), progress, "flow")
    try:
        update = None if bar is None else bar.update
        if integrator == "rkc":
            stats = rkc2(system.rhs, system.F0, times.astype(np.float64), on_save, rtol=rtol,
                         atol=atol, spectral_radius=lambda t, F: system.spectral_radius(F),
                         progress=update)
        else:
            stats = dopri5(system.rhs, system.F0, times.astype(np.float64), on_save, rtol=rtol,
                           atol=atol, progress=update)
    except IntegrationError as exc:
        raise DivergenceError(f"gradient flow failed: {exc}", float("nan")) from None
    finally:
        if bar is not None:
            bar.close()
    return rows, state["final"], {"n_rhs": stats.n_rhs, "n_accepted": stats.n_accepted,
                                  "n_rejected": stats.n_rejected, "n_rho": stats.n_rho,
                                  "max_stages": stats.max_stages}
