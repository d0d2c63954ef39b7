"""Population (online, P -> infinity) gradient flow (docs/theory.md §5).

With population averages over x ~ N(0, I/D) the gradient statistics are

    g = 2 v / D,      G = 2 [(tr Delta) I + 2 Delta] / D^2,

with v = alpha (wbar - wbar_ref), Delta = (alpha eps/2)(M - M_ref) - tau beta beta^T.

* ``scalar``: at N = inf (wbar0 = 0, M0 = I) the state stays M = (1 + a) I + b betahat betahat^T,
  wbar = 0.  With p = (alpha eps/2)(a + s) (s = 0 centered, 1 uncentered),
  q = (alpha eps/2) b - tau |beta|^2, gamma1 = 2(pD + q + 2p)/D^2, gamma2 = 4q/D^2:

      da/dt = -(eta0 eps/alpha) 2 gamma1 (1 + a)
      db/dt = -(eta0 eps/alpha) 2 [gamma1 b + gamma2 (1 + a + b)]
      loss  = [(pD + q)^2 + 2 (p^2 D + 2pq + q^2)] / D^2

* ``full``: the factor flow dF/dt = -(eta0/alpha)(eps G F + g c^T) with the population g, G,
  for any N (finite N starts from the sampled W0).

Weight decay lambda adds -eta0 lambda F to dF/dt, i.e. -2 eta0 lambda M to dM/dt: the scalar
system gains -2 eta0 lambda (1 + a) and -2 eta0 lambda b (wbar stays 0).  Label noise has
zero mean and is independent of x, so the population gradient ignores it.

Both right-hand sides are compiled with Numba (``cache=True``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from numba import njit, prange

from lazyrich_theory.errors import IntegrationError
from lazyrich_theory.core.integrators import dopri5
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.errors import DivergenceError
from lazyrich_theory.core.reduced import initial_factor
from lazyrich_theory.spec.schedule import save_times as make_save_times
from lazyrich_theory.core.statistics import decomposition, diagnostics
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory

__all__ = ["population", "population_grid", "PopulationGrid", "scalar_rhs", "solve_scalar",
           "scalar_loss", "rich_transition_time"]

POP_METHODS = ("auto", "scalar", "full")


# ----------------------------------------------------------------------------- 2-scalar ODE
@njit(cache=True)
def scalar_rhs(a, b, alpha, eps, eta0, tau, beta2, D, s, lam):
    """(da/dt, db/dt) of the N = inf population flow; beta2 = |beta|^2, s = 0 or 1,
    lam = weight decay (dM/dt gains -2 eta0 lam M: -2 eta0 lam (1 + a) and -2 eta0 lam b)."""
    p = 0.5 * alpha * eps * (a + s)
    q = 0.5 * alpha * eps * b - tau * beta2
    g1 = 2.0 * (p * D + q + 2.0 * p) / (D * D)
    g2 = 4.0 * q / (D * D)
    k = -(eta0 * eps / alpha) * 2.0
    d = 2.0 * eta0 * lam
    return k * g1 * (1.0 + a) - d * (1.0 + a), k * (g1 * b + g2 * (1.0 + a + b)) - d * b


@njit(cache=True)
def scalar_loss(a, b, alpha, eps, tau, beta2, D, s):
    """(variance, misalignment) of the population loss at state (a, b)."""
    p = 0.5 * alpha * eps * (a + s)
    q = 0.5 * alpha * eps * b - tau * beta2
    tr = p * D + q
    return tr * tr / (D * D), 2.0 * (p * p * D + 2.0 * p * q + q * q) / (D * D)


@njit(cache=True)
def solve_scalar(alpha, eps, eta0, tau, beta2, D, s, lam, t_save, rtol, atol):
    """Dormand–Prince 5(4) on (a, b) from (0, 0), stepping onto every t_save.
    Returns (a, b, n_rhs); a[k] = nan marks a failure from index k on."""
    n = t_save.size
    A = np.full(n, np.nan)
    B = np.full(n, np.nan)
    A[0] = 0.0
    B[0] = 0.0
    a, b, t = 0.0, 0.0, t_save[0]
    ka, kb = scalar_rhs(a, b, alpha, eps, eta0, tau, beta2, D, s, lam)
    nrhs = 1
    h = 1.0
    err_old = 1e-4
    k = 1
    sa = np.empty(7)
    sb = np.empty(7)
    c2, c3, c4, c5 = 0.2, 0.3, 0.8, 8.0 / 9.0
    while k < n:
        target = t_save[k]
        if h > target - t:
            h = target - t
        hit = (target - t) - h <= 1e-12 * max(1.0, abs(target))
        if hit:
            h = target - t
        sa[0], sb[0] = ka, kb
        sa[1], sb[1] = scalar_rhs(a + h * 0.2 * sa[0], b + h * 0.2 * sb[0], alpha, eps, eta0, tau, beta2, D, s, lam)
        sa[2], sb[2] = scalar_rhs(a + h * (3 / 40 * sa[0] + 9 / 40 * sa[1]),
                                  b + h * (3 / 40 * sb[0] + 9 / 40 * sb[1]), alpha, eps, eta0, tau, beta2, D, s, lam)
        sa[3], sb[3] = scalar_rhs(a + h * (44 / 45 * sa[0] - 56 / 15 * sa[1] + 32 / 9 * sa[2]),
                                  b + h * (44 / 45 * sb[0] - 56 / 15 * sb[1] + 32 / 9 * sb[2]),
                                  alpha, eps, eta0, tau, beta2, D, s, lam)
        sa[4], sb[4] = scalar_rhs(
            a + h * (19372 / 6561 * sa[0] - 25360 / 2187 * sa[1] + 64448 / 6561 * sa[2] - 212 / 729 * sa[3]),
            b + h * (19372 / 6561 * sb[0] - 25360 / 2187 * sb[1] + 64448 / 6561 * sb[2] - 212 / 729 * sb[3]),
            alpha, eps, eta0, tau, beta2, D, s, lam)
        sa[5], sb[5] = scalar_rhs(
            a + h * (9017 / 3168 * sa[0] - 355 / 33 * sa[1] + 46732 / 5247 * sa[2] + 49 / 176 * sa[3]
                     - 5103 / 18656 * sa[4]),
            b + h * (9017 / 3168 * sb[0] - 355 / 33 * sb[1] + 46732 / 5247 * sb[2] + 49 / 176 * sb[3]
                     - 5103 / 18656 * sb[4]),
            alpha, eps, eta0, tau, beta2, D, s, lam)
        an = a + h * (35 / 384 * sa[0] + 500 / 1113 * sa[2] + 125 / 192 * sa[3] - 2187 / 6784 * sa[4]
                      + 11 / 84 * sa[5])
        bn = b + h * (35 / 384 * sb[0] + 500 / 1113 * sb[2] + 125 / 192 * sb[3] - 2187 / 6784 * sb[4]
                      + 11 / 84 * sb[5])
        sa[6], sb[6] = scalar_rhs(an, bn, alpha, eps, eta0, tau, beta2, D, s, lam)
        nrhs += 6
        e1, e3, e4, e5, e6, e7 = (71 / 57600, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
        ea = h * (e1 * sa[0] + e3 * sa[2] + e4 * sa[3] + e5 * sa[4] + e6 * sa[5] + e7 * sa[6])
        eb = h * (e1 * sb[0] + e3 * sb[2] + e4 * sb[3] + e5 * sb[4] + e6 * sb[5] + e7 * sb[6])
        sca = atol + rtol * max(abs(a), abs(an))
        scb = atol + rtol * max(abs(b), abs(bn))
        err = math.sqrt(0.5 * ((ea / sca) ** 2 + (eb / scb) ** 2))
        if not (err == err) or math.isinf(err):
            h *= 0.1
        elif err <= 1.0:
            t = target if hit else t + h
            a, b = an, bn
            ka, kb = sa[6], sb[6]
            if hit:
                A[k] = a
                B[k] = b
                k += 1
            fac = 0.9 * err ** (-0.17) * err_old ** 0.04 if err > 0 else 10.0
            h *= min(10.0, max(0.2, fac))
            err_old = max(err, 1e-4)
        else:
            h *= max(0.2, 0.9 * err ** -0.2)
        if h < 1e-12 * max(1.0, abs(t)):
            break
    return A, B, nrhs


def rich_transition_time(alpha: float, eps: float, eta0: float, D: int, beta2: float,
                         tau: float = 0.5) -> float:
    """Closed-form estimate of the rich-transition time of the N = inf population flow,
    t* = (alpha D^2 / (12 tau eta0 eps |beta|^2)) ln(2 tau |beta|^2 / (alpha eps)).
    Early on q = -tau |beta|^2, so db/dt = 4 kappa (3 b + 2) with
    kappa = tau eta0 eps |beta|^2 / (alpha D^2): b grows at rate 12 kappa until it reaches
    b* = 2 tau |beta|^2 / (alpha eps) (docs/theory.md §5; ../shared/THEORY.md §5 quotes the
    rate as 8 kappa, which drops the gamma_1 b term).  An order-of-magnitude estimate."""
    bstar = 2.0 * tau * beta2 / (alpha * eps)
    return alpha * D**2 / (12.0 * tau * eta0 * eps * beta2) * math.log(max(bstar, math.e))


@njit(cache=True, parallel=True)
def _scalar_grid(alphas, epss, eta0s, tau, beta2, D, s, lam, t_save, rtol, atol):
    """solve_scalar for every cell (alphas[i], epss[i], eta0s[i]) in parallel threads; returns
    the population loss (n_cells, n_times) and the RHS evaluation count per cell."""
    n = alphas.size
    L = np.empty((n, t_save.size))
    nrhs = np.empty(n, dtype=np.int64)
    for i in prange(n):
        A, B, m = solve_scalar(alphas[i], epss[i], eta0s[i], tau, beta2, D, s, lam, t_save, rtol,
                               atol)
        nrhs[i] = m
        for k in range(t_save.size):
            var, mis = scalar_loss(A[k], B[k], alphas[i], epss[i], tau, beta2, D, s)
            L[i, k] = var + mis
    return L, nrhs


@dataclass(frozen=True)
class PopulationGrid:
    """Population losses of the N = inf online flow on a grid of (alpha, eps[, eta0]).

    ``loss[i, j, k]`` is the population loss at alpha[i], eps[j], time t[k]."""

    alpha: np.ndarray
    eps: np.ndarray
    t: np.ndarray
    loss: np.ndarray
    n_rhs: int
    wall_time: float


def _check_no_options(problem: Problem) -> None:
    """The population ODE is the online flow of the paper's teacher with optional weight decay;
    label noise leaves the population gradient unchanged (E[xi x] = 0) and only adds sigma^2
    to the train loss; heavy-ball momentum has no flow here (docs/theory.md §9)."""
    if problem.target != "paper":
        raise ProblemError(f"the population ODE supports only the paper target, not {problem.target!r}")
    if problem.momentum != 0.0:
        raise ProblemError("the population ODE does not support momentum; use solve or simulate")


def population_grid(problem: Problem, steps: int, alpha: Iterable[float], eps: Iterable[float],
                    save_times: Iterable[int] | None = None, rtol: float = 1e-8,
                    atol: float = 1e-12, beta2: float | None = None) -> PopulationGrid:
    """The 2-scalar population ODE (N = inf) for every pair in alpha x eps, compiled and run
    in parallel threads (Numba ``prange``).  Other parameters (D, eta0, tau, centering) come
    from ``problem``; |beta|^2 from ``beta2`` or the problem's sampled teacher."""
    _check_no_options(problem)
    al = np.asarray(list(alpha), dtype=np.float64)
    ep = np.asarray(list(eps), dtype=np.float64)
    if al.ndim != 1 or ep.ndim != 1 or al.size == 0 or ep.size == 0:
        raise ProblemError("alpha and eps must be non-empty 1-D sequences")
    if np.any(~np.isfinite(al)) or np.any(al <= 0) or np.any(~np.isfinite(ep)):
        raise ProblemError("alpha must be finite and > 0, eps finite")
    times = make_save_times(steps, extra=save_times).astype(np.float64)
    if beta2 is None:
        beta = problem.data().beta
        beta2 = float(beta @ beta)
    A, E = np.meshgrid(al, ep, indexing="ij")
    t0 = time.perf_counter()
    L, nrhs = _scalar_grid(A.ravel(), E.ravel(), np.full(A.size, problem.eta0), problem.tau,
                           float(beta2), float(problem.D), 0.0 if problem.centered else 1.0,
                           problem.weight_decay, times, rtol, atol)
    wall = time.perf_counter() - t0
    bad = ~np.isfinite(L)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise DivergenceError(f"population ODE failed at alpha={A.ravel()[i]:g}, "
                              f"eps={E.ravel()[i]:g}, t={times[k]:g}", times[k])
    return PopulationGrid(al, ep, times, L.reshape(al.size, ep.size, times.size),
                          int(nrhs.sum()), wall)


# ----------------------------------------------------------------------------- full flow
@njit(cache=True)
def full_rhs(F, c, z, beta, wref, Mref, alpha, eps, eta0, tau, lam):
    """dF/dt = -(eta0/alpha)(eps G F + g c^T) - eta0 lam F, population g = 2v/D,
    G = 2[(tr Delta) I + 2 Delta]/D^2 (lam: weight decay)."""
    D = F.shape[0]
    v = alpha * (F @ z - wref)
    FtF = F.T @ F
    # Delta F = (alpha eps/2)(F F^T F - Mref F) - tau beta (beta^T F)
    DF = (0.5 * alpha * eps) * (F @ FtF - Mref @ F) - tau * np.outer(beta, beta @ F)
    trD = 0.5 * alpha * eps * (np.trace(FtF) - np.trace(Mref)) - tau * (beta @ beta)
    GF = (2.0 / (D * D)) * (trD * F + 2.0 * DF)
    g = (2.0 / D) * v
    return (-eta0 / alpha) * (eps * GF + np.outer(g, c)) - (eta0 * lam) * F


def population(problem: Problem, steps: int, save_times: Iterable[int] | None = None,
               data: ProblemData | None = None, method: str = "auto", rtol: float = 1e-9,
               atol: float = 1e-12, progress: bool = False) -> Trajectory:
    """Online (P -> inf) gradient flow of ``problem`` up to ``steps`` (time in GD steps).

    method "scalar" (N = inf only): the 2-scalar system; "full": the factor flow in D
    dimensions (any N); "auto": scalar when N = inf, else full.  beta (and W0 for finite N)
    come from ``data`` (default: the problem's own).  There is no train/test gap online:
    the train_loss and test_loss columns equal the population loss.  Weight decay is
    included (-eta0 lambda F); label noise does not change the population gradient, only the
    expected train loss on fresh noisy labels (train_loss = population loss + sigma^2);
    momentum and non-paper targets: ProblemError.
    """
    _check_no_options(problem)
    if method not in POP_METHODS:
        raise ProblemError(f"population method must be one of {', '.join(POP_METHODS)}, got {method!r}")
    if method == "auto":
        method = "full" if problem.finite_width else "scalar"
    if method == "scalar" and problem.finite_width:
        raise ProblemError("the 2-scalar population ODE needs N = inf; use method='full'")
    times = make_save_times(steps, extra=save_times).astype(np.float64)
    data = problem.data() if data is None else data
    beta = np.asarray(data.beta, dtype=np.float64)
    if beta.shape != (problem.D,):
        raise ProblemError(f"beta has shape {beta.shape}, expected ({problem.D},)")
    p, D = problem, problem.D
    t0 = time.perf_counter()
    rows = np.empty((times.size, len(CORE_COLUMNS)))
    info: dict[str, Any] = {"steps": int(steps), "population_method": method}
    final_state = None
    if method == "scalar":
        s = 0.0 if p.centered else 1.0
        beta2 = float(beta @ beta)
        A, B, nrhs = solve_scalar(p.alpha, p.eps, p.eta0, p.tau, beta2, float(D), s,
                                  p.weight_decay, times, rtol, atol)
        bad = np.flatnonzero(~np.isfinite(A) | ~np.isfinite(B))
        if bad.size:
            raise DivergenceError(f"population ODE failed at t={times[bad[0]]:g}", times[bad[0]])
        for k in range(times.size):
            var, mis = scalar_loss(A[k], B[k], p.alpha, p.eps, p.tau, beta2, float(D), s)
            a, b = A[k], B[k]
            rows[k] = [var + mis, var + mis, var + mis, var, mis, 0.0, a + b, (a * D + b) / D,
                       math.sqrt(max(a * a * D + 2 * a * b + b * b, 0.0)), 0.0]
        info["n_rhs"] = int(nrhs)
        final_state = {"a": np.array(A[-1]), "b": np.array(B[-1])}
    else:
        F0, c, z = initial_factor(data.W0 if p.finite_width else None, D)
        wbar0, M0 = F0 @ z, F0 @ F0.T
        wref, Mref = (wbar0, M0) if p.centered else (np.zeros(D), np.zeros((D, D)))

        def rhs(t, F):
            return full_rhs(F, c, z, beta, wref, Mref, p.alpha, p.eps, p.eta0, p.tau,
                            p.weight_decay)

        def on_save(k, t, F):
            wbar, M = F @ z, F @ F.T
            var, mis, lin = decomposition(wbar, M, wref, Mref, beta, p.alpha, p.eps, p.tau)
            L = var + mis + lin
            if not math.isfinite(L):
                raise DivergenceError(f"population flow diverged at t={t:g}", t)
            rows[k] = [L, L, L, var, mis, lin, *diagnostics(wbar, M, wbar0, M0, beta)]
            final.update(F=F, wbar=wbar, M=M)

        final: dict[str, np.ndarray] = {}
        try:
            stats = dopri5(rhs, F0, times, on_save, rtol=rtol, atol=atol)
        except IntegrationError as exc:
            raise DivergenceError(f"population flow failed: {exc}", float("nan")) from None
        info.update(n_rhs=stats.n_rhs, n_accepted=stats.n_accepted, n_rejected=stats.n_rejected)
        final_state = final
    info["wall_time"] = time.perf_counter() - t0
    info["predicted_transition_time"] = rich_transition_time(p.alpha, p.eps, p.eta0, D,
                                                             float(beta @ beta), p.tau)
    cols = {name: rows[:, j].copy() for j, name in enumerate(CORE_COLUMNS)}
    # online, every label is fresh: the expected train loss on noisy labels is the population
    # loss plus sigma^2 (the gradient, and so the flow, does not see the noise)
    cols["train_loss"] = cols["train_loss"] + p.noise ** 2
    return Trajectory(problem=problem, method="population", t=times, **cols, info=info,
                      final_state=final_state)
