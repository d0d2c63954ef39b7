"""Adaptive, error-controlled integrators for dy/dt = rhs(t, y) on arrays of any shape
(docs/solvers.md: why RKC for the flow, and Dormand–Prince as its accuracy reference): their
shared evaluation budget, work counters and start-up here, with ``rkc2``; ``dopri5`` (the
Dormand–Prince 5(4) pair, its tableau and step control) in :mod:`lazyrich_theory.core.dopri5`.

``rkc2``: second-order Runge–Kutta–Chebyshev (Sommeijer, Shampine & Verwer 1998, damping 2/13),
explicit with a stability interval ~0.65 s^2 for s stages, so a stiff dissipative flow (our lazy
phase) costs O(sqrt(h rho)) evaluations per step instead of O(h rho); output at save times by
cubic Hermite interpolation.  ``rhs`` may use BLAS; Numba fuses the RKC stage combinations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit

from lazyrich_theory.errors import IntegrationError, ProblemError

__all__ = ["IntegrationError", "IntegratorStats", "rkc2", "rkc_coefficients",
           "rkc_stability_bound", "power_spectral_radius", "start_integration",
           "BudgetExceeded", "MAX_RHS", "DOPRI5_STABILITY", "min_evaluations"]

#: Default budget of right-hand-side evaluations of ``dopri5`` and ``rkc2``: an integration
#: that needs more (a flow too stiff for the method, or one running away) stops with
#: :class:`BudgetExceeded` instead of running for hours without output.
MAX_RHS = 2_000_000
#: Real stability boundary of DOPRI5: a step is stable for h rho <= 3.3 (rho the spectral
#: radius of the Jacobian), so a stiff flow needs at least t rho / 3.3 steps.
DOPRI5_STABILITY = 3.3
#: The budget projection starts once this fraction of the budget is used (before, a step size
#: still limited by accuracy in a transient would project far too many evaluations), and runs
#: every _PROJECT_EVERY accepted steps.
_PROJECT_AFTER, _PROJECT_EVERY = 0.05, 50


class BudgetExceeded(IntegrationError):
    """An adaptive integration used, or would need, more evaluations than its budget."""


def min_evaluations(rho: float, span: float, integrator: str, max_stages: int = 400) -> float:
    """The fewest right-hand-side evaluations an explicit integrator needs to cover ``span``
    at Jacobian spectral radius ``rho`` when stability limits its step.

    Parameters
    ----------
    rho : float
        Spectral radius of the Jacobian (per unit time).
    span : float
        Length of the time interval.
    integrator : {"dopri5", "rkc"}
        DOPRI5 (6 evaluations per step, h rho <= 3.3) or RKC2 (s stages cover
        h rho <= beta(s) ~ 0.65 s^2, at most ``max_stages``).
    max_stages : int
        RKC's largest stage count.

    Returns
    -------
    float
        A lower bound when the flow stays as stiff as at the point where ``rho`` was taken.
    """
    x = max(0.0, rho * span)
    if integrator == "dopri5":
        return 6.0 * x / DOPRI5_STABILITY
    beta = rkc_stability_bound(max_stages)
    if x <= beta:
        return 1.0 + math.sqrt(1.0 + 1.54 * x)
    return x / beta * (max_stages + 1)


class _Budget:
    """The evaluation budget of one integration: a hard limit, and an early stop once the
    step size has stopped growing and the evaluations still needed at that size exceed it."""

    def __init__(self, name: str, max_rhs: int, t_end: float):
        self.name, self.max_rhs, self.t_end = name, int(max_rhs), t_end
        self.mark: tuple[float, int, int] | None = None     # (h, n_rhs, n_accepted)

    def check(self, stats: IntegratorStats, t: float, h: float) -> None:
        """After each step (at time t, next step h): the budget, used or projected, and
        IntegrationError if h has underflowed."""
        if stats.n_rhs > self.max_rhs:
            raise BudgetExceeded(f"{self.name} used its budget of {self.max_rhs:.3g} "
                                 f"right-hand-side evaluations and reached only t={t:.6g} of "
                                 f"{self.t_end:.6g} (the flow is stiff or runs away)")
        self._project(stats, t, h)
        if h < 1e-12 * max(1.0, abs(t)):
            raise IntegrationError(f"step size underflow at t={t:.6g} (h={h:.3g})")

    def _project(self, stats: IntegratorStats, t: float, h: float) -> None:
        """The early stop: every _PROJECT_EVERY accepted steps, the evaluations still needed."""
        n = stats.n_accepted
        if stats.n_rhs < _PROJECT_AFTER * self.max_rhs or n % _PROJECT_EVERY or h <= 0:
            return
        if self.mark is not None and h <= 1.5 * self.mark[0] and n > self.mark[2]:
            per_step = (stats.n_rhs - self.mark[1]) / (n - self.mark[2])
            need = stats.n_rhs + (self.t_end - t) / h * per_step
            if need > self.max_rhs:
                raise BudgetExceeded(
                    f"{self.name} would need ~{need:.2g} right-hand-side evaluations to reach "
                    f"t={self.t_end:.6g} at its current step size h={h:.3g} (t={t:.6g}), "
                    f"beyond its budget of {self.max_rhs:.3g}: the flow is stiff")
        self.mark = (h, stats.n_rhs, n)


@dataclass
class IntegratorStats:
    """Work counters of an adaptive integration: right-hand-side evaluations, accepted and
    rejected steps, and (RKC) spectral-radius estimates and the largest stage count."""

    n_rhs: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    n_rho: int = 0          # spectral-radius estimates (rkc2)
    max_stages: int = 0     # largest number of stages used (rkc2)


def start_integration(name: str, t_save, rtol: float, atol: float, max_rhs: int):
    """(save times as a float array, work counters, budget, start time) of an integration
    (``rkc2``, ``dopri5``); ProblemError (a ValueError) for bad tolerances or save times."""
    if rtol <= 0 or atol < 0:
        raise ProblemError("rtol must be > 0 and atol >= 0")
    t_save = np.asarray(t_save, dtype=np.float64)
    if t_save.ndim != 1 or t_save.size == 0 or np.any(np.diff(t_save) <= 0):
        raise ProblemError("save times must be a non-empty strictly increasing sequence")
    return t_save, IntegratorStats(), _Budget(name, max_rhs, float(t_save[-1])), float(t_save[0])


# ------------------------------------------------------------------------------------ RKC2
RKC_DAMPING = 2.0 / 13.0


def rkc_coefficients(s: int, damping: float = RKC_DAMPING) -> np.ndarray:
    """Coefficients of the s-stage second-order RKC method (Sommeijer et al. 1998, eq. 2.4).

    With w0 = 1 + damping/s^2, w1 = T_s'(w0)/T_s''(w0), b_j = T_j''(w0)/T_j'(w0)^2 (j >= 2,
    b_0 = b_1 = b_2), a_j = 1 - b_j T_j(w0), the stages are

        Y_1 = Y_0 + mt_1 h F(Y_0),
        Y_j = (1 - mu_j - nu_j) Y_0 + mu_j Y_{j-1} + nu_j Y_{j-2} + mt_j h F(Y_{j-1})
              + gt_j h F(Y_0),
        mu_j = 2 w0 b_j / b_{j-1},  nu_j = -b_j / b_{j-2},  mt_j = 2 w1 b_j / b_{j-1},
        gt_j = -a_{j-1} mt_j,

    and y_{n+1} = Y_s; stage j sits at time t + c_j h, c_j = w1 T_j''(w0)/T_j'(w0),
    c_1 = c_2 / T_2'(w0).  Returns rows (mu, nu, mt, gt, c) for j = 1..s (row 0 unused).
    The real stability interval is [-beta(s), 0] with beta(s) = (w0 + 1) T_s''(w0)/T_s'(w0)
    ~ 0.653 s^2.
    """
    if s < 2:
        raise ProblemError("RKC needs at least 2 stages")
    w0 = 1.0 + damping / s**2
    T = np.zeros(s + 1)
    dT = np.zeros(s + 1)
    ddT = np.zeros(s + 1)
    T[0], T[1], dT[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        T[j] = 2 * w0 * T[j - 1] - T[j - 2]
        dT[j] = 2 * T[j - 1] + 2 * w0 * dT[j - 1] - dT[j - 2]
        ddT[j] = 4 * dT[j - 1] + 2 * w0 * ddT[j - 1] - ddT[j - 2]
    w1 = dT[s] / ddT[s]
    b = np.empty(s + 1)
    b[2:] = ddT[2:] / dT[2:] ** 2
    b[0] = b[1] = b[2]
    a = 1.0 - b * T
    coef = np.zeros((s + 1, 5))
    coef[1, 2] = b[1] * w1
    coef[2:, 4] = w1 * ddT[2:] / dT[2:]      # stage times c_j (c_s = 1)
    coef[1, 4] = coef[2, 4] / dT[2]
    for j in range(2, s + 1):
        coef[j, 0] = 2 * w0 * b[j] / b[j - 1]
        coef[j, 1] = -b[j] / b[j - 2]
        coef[j, 2] = 2 * w1 * b[j] / b[j - 1]
        coef[j, 3] = -a[j - 1] * coef[j, 2]
    return coef


def rkc_stability_bound(s: int, damping: float = RKC_DAMPING) -> float:
    """beta(s): the s-stage RKC2 method is stable for h rho <= beta(s)."""
    w0 = 1.0 + damping / s**2
    T_prev, T = 1.0, w0
    d_prev, d = 0.0, 1.0
    dd_prev, dd = 0.0, 0.0
    for _ in range(2, s + 1):
        T_prev, T, d_prev, d, dd_prev, dd = (
            T, 2 * w0 * T - T_prev,
            d, 2 * T + 2 * w0 * d - d_prev,
            dd, 4 * d + 2 * w0 * dd - dd_prev)
    return (w0 + 1.0) * dd / d


@njit(cache=True, fastmath=False)
def _stage(out, Y0, Y1, Y2, FY1, F0, c0, c1, c2, c3, c4):
    """out = c0 Y0 + c1 Y1 + c2 Y2 + c3 FY1 + c4 F0 (flat arrays), fused in one pass."""
    for i in range(out.size):
        out[i] = c0 * Y0[i] + c1 * Y1[i] + c2 * Y2[i] + c3 * FY1[i] + c4 * F0[i]


@njit(cache=True)
def _rkc_error(y, y_new, f0, f1, h, rtol, atol):
    """RMS norm of Est = [12 (y - y_new) + 6 h (f0 + f1)] / 15 scaled by atol + rtol max|y|."""
    acc = 0.0
    for i in range(y.size):
        est = (12.0 * (y[i] - y_new[i]) + 6.0 * h * (f0[i] + f1[i])) / 15.0
        sc = atol + rtol * max(abs(y[i]), abs(y_new[i]))
        acc += (est / sc) ** 2
    return math.sqrt(acc / y.size)


@njit(cache=True)
def _hermite(out, y0, y1, f0, f1, h, theta):
    """Cubic Hermite interpolant at t0 + theta h from values and slopes at both ends."""
    h00 = (1 + 2 * theta) * (1 - theta) ** 2
    h10 = theta * (1 - theta) ** 2
    h01 = theta * theta * (3 - 2 * theta)
    h11 = theta * theta * (theta - 1)
    for i in range(out.size):
        out[i] = h00 * y0[i] + h10 * h * f0[i] + h01 * y1[i] + h11 * h * f1[i]


def power_spectral_radius(rhs: Callable[[float, np.ndarray], np.ndarray], t: float,
                          y: np.ndarray, fy: np.ndarray, v: np.ndarray | None = None,
                          max_iter: int = 50, tol: float = 0.01) -> tuple[float, np.ndarray, int]:
    """Nonlinear power method for the spectral radius of the Jacobian at y (as in RKC):
    rho ~ |f(y + dz) - f(y)| / |dz|, iterating z <- f(y + dz) - f(y).  Returns
    (rho, eigenvector estimate, evaluations)."""
    ynorm = float(np.linalg.norm(y))
    if v is None or not np.any(v):
        v = fy.copy() if np.any(fy) else np.ones_like(y)
    vnorm = float(np.linalg.norm(v))
    small = math.sqrt(np.finfo(float).eps)
    dz = small * max(ynorm, 1.0)
    v = y + v * (dz / vnorm)
    rho, n = 0.0, 0
    for _ in range(max_iter):
        fv = rhs(t, v)
        n += 1
        diff = fv - fy
        dn = float(np.linalg.norm(diff))
        rho_old, rho = rho, dn / dz
        if dn == 0.0:
            diff = np.random.default_rng(n).standard_normal(y.shape)
            dn = float(np.linalg.norm(diff))
        v = y + diff * (dz / dn)
        if n >= 2 and abs(rho - rho_old) <= tol * max(rho, 1e-300):
            break
    return 1.2 * rho, v - y, n


def _rkc_first_step(fy: np.ndarray, y: np.ndarray, rho: float, t: float, t_end: float,
                    rtol: float, atol: float) -> float:
    """Starting step of rkc2: 0.1 / |f|_scaled, at most 1/rho, at least 1e-8 of the span."""
    sc = atol + rtol * np.abs(y)
    d1 = math.sqrt(float(np.mean((fy / sc) ** 2)))
    h = 0.1 / d1 if d1 > 0 else 1.0
    if rho > 0:
        h = min(h, 1.0 / rho)
    return max(h, 1e-8 * max(1.0, t_end - t))


def _rkc_plan(h: float, t: float, t_end: float, rho: float, max_stages: int) -> tuple[float, int]:
    """Step size (landing exactly on t_end; within beta(max_stages) / rho) and stage count
    s = 1 + floor(sqrt(1 + 1.54 h rho))."""
    h = min(h, t_end - t)
    if t_end - t - h <= 1e-12 * max(1.0, abs(t_end)):
        h = t_end - t
    s = 1 + int(math.sqrt(1.0 + 1.54 * h * rho))
    if s > max_stages:
        s = max_stages
        h = min(h, rkc_stability_bound(s) / rho)
    return h, s


def _rkc_stages(f, t: float, h: float, y: np.ndarray, fy: np.ndarray, coef: np.ndarray,
                s: int, bufs: list) -> np.ndarray:
    """Y_s of one s-stage RKC2 step from y (fy = F(t, y)); ``bufs`` are three work arrays."""
    Yjm2, Yjm1, Yj = bufs
    Yjm2[:] = y
    Yjm1[:] = y + (coef[1, 2] * h) * fy
    for j in range(2, s + 1):
        mu, nu, mt, gt = coef[j, :4]
        FY = f(t + coef[j - 1, 4] * h, Yjm1)
        _stage(Yj, y, Yjm1, Yjm2, FY, fy, 1.0 - mu - nu, mu, nu, mt * h, gt * h)
        Yjm2, Yjm1, Yj = Yjm1, Yj, Yjm2
    return Yjm1.copy()


def _rkc_output(on_save, t_save: np.ndarray, k_next: int, t: float, t_new: float, h: float,
                y: np.ndarray, y_new: np.ndarray, fy: np.ndarray, f_new: np.ndarray,
                buf: np.ndarray, shape: tuple) -> int:
    """Call on_save at every save time in (t, t_new] (cubic Hermite in between); returns the
    index of the next save time."""
    while k_next < t_save.size and t_save[k_next] <= t_new:
        tk = float(t_save[k_next])
        if tk == t_new:
            on_save(k_next, tk, y_new.reshape(shape))
        else:
            _hermite(buf, y, y_new, fy, f_new, h, (tk - t) / h)
            on_save(k_next, tk, buf.reshape(shape).copy())
        k_next += 1
    return k_next


def _rkc_factor(err: float, last_rejected: bool) -> float:
    """Step-size factor after an RKC2 step with scaled error ``err`` (accepted if <= 1):
    0.8 err^(-1/3) clipped to [0.1, 10], at most 1 right after a rejection, 0.1 if not finite."""
    if err <= 1.0:
        fac = 10.0 if err == 0 else min(10.0, max(0.1, 0.8 * err ** (-1.0 / 3.0)))
        return min(fac, 1.0) if last_rejected else fac
    return 0.1 if not math.isfinite(err) else max(0.1, 0.8 * err ** (-1.0 / 3.0))


class _FlatRhs:
    """``rhs`` on flat arrays for rkc2, counting evaluations, and the spectral-radius estimate
    (``spectral_radius`` on the shaped state, else the power method, warm-started)."""

    def __init__(self, rhs, shape: tuple, stats: IntegratorStats, spectral_radius):
        self.rhs, self.shape, self.stats, self.spectral_radius = rhs, shape, stats, spectral_radius
        self.vec = None

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.stats.n_rhs += 1
        out = np.asarray(self.rhs(t, y.reshape(self.shape)), dtype=np.float64)
        return np.ascontiguousarray(out).ravel()

    def rho(self, t: float, y: np.ndarray, fy: np.ndarray) -> float:
        self.stats.n_rho += 1
        if self.spectral_radius is not None:
            return float(self.spectral_radius(t, y.reshape(self.shape)))
        r, self.vec, _ = power_spectral_radius(self, t, y, fy, self.vec)
        return r


def rkc2(rhs: Callable[[float, np.ndarray], np.ndarray], y0: np.ndarray, t_save: np.ndarray,
         on_save: Callable[[int, float, np.ndarray], None], rtol: float = 1e-4,
         atol: float = 1e-8, spectral_radius: Callable[[float, np.ndarray], float] | None = None,
         rho_every: int = 10, max_stages: int = 400, h0: float | None = None,
         max_steps: int = 10_000_000,
         progress: Callable[[float], None] | None = None,
         max_rhs: int = MAX_RHS) -> IntegratorStats:
    """Adaptive RKC2 (docs/solvers.md) from t_save[0] through every t_save[k].

    s = 1 + floor(sqrt(1 + 1.54 h rho)) stages, so h rho <= beta(s); output between steps by
    cubic Hermite interpolation (third order, above the method's own second order).  The
    parameters shared with :func:`~lazyrich_theory.core.dopri5.dopri5` mean the same; the others are below.

    Parameters
    ----------
    spectral_radius : callable, optional
        ``spectral_radius(t, y)``, an upper estimate of the Jacobian's spectral radius,
        re-estimated every ``rho_every`` accepted steps and after a rejection (default: the
        nonlinear power method :func:`power_spectral_radius` on ``rhs``).
    rho_every, max_stages : int
        See ``spectral_radius``; the largest stage count.

    Returns
    -------
    IntegratorStats
        The work counters.
    """
    t_save, stats, budget, t = start_integration("rkc", t_save, rtol, atol, max_rhs)
    t_end = float(t_save[-1])
    shape = np.shape(y0)
    y = np.array(y0, dtype=np.float64, copy=True).ravel()
    on_save(0, t, y.reshape(shape))
    if t_save.size == 1:
        return stats
    f = _FlatRhs(rhs, shape, stats, spectral_radius)
    fy = f(t, y)
    rho = f.rho(t, y, fy)
    h = _rkc_first_step(fy, y, rho, t, t_end, rtol, atol) if h0 is None else float(h0)
    coef_cache: dict[int, np.ndarray] = {}
    bufs = [np.empty_like(y) for _ in range(3)]
    buf = np.empty_like(y)
    k_next, since_rho, last_rejected = 1, 0, False
    while t < t_end:
        if since_rho >= rho_every:
            rho, since_rho = f.rho(t, y, fy), 0
        h, s = _rkc_plan(h, t, t_end, rho, max_stages)
        stats.max_stages = max(stats.max_stages, s)
        if s not in coef_cache:
            coef_cache[s] = rkc_coefficients(s)
        y_new = _rkc_stages(f, t, h, y, fy, coef_cache[s], s, bufs)
        f_new = f(t + h, y_new)
        if stats.n_accepted + stats.n_rejected >= max_steps:
            raise IntegrationError(f"more than {max_steps} steps before t={t_end}")
        finite = np.all(np.isfinite(f_new)) and np.all(np.isfinite(y_new))
        err = _rkc_error(y, y_new, fy, f_new, h, rtol, atol) if finite else math.inf
        h_factor = _rkc_factor(err, last_rejected)
        last_rejected = not err <= 1.0
        if last_rejected:
            stats.n_rejected += 1
            rho, since_rho = f.rho(t, y, fy), 0
        else:
            t_new = t + h if t + h < t_end else t_end
            k_next = _rkc_output(on_save, t_save, k_next, t, t_new, h, y, y_new, fy, f_new,
                                 buf, shape)
            if progress is not None:
                progress(t_new - t)
            t, y, fy = t_new, y_new, f_new
            stats.n_accepted += 1
            since_rho += 1
        h *= h_factor
        budget.check(stats, t, h)
    return stats
