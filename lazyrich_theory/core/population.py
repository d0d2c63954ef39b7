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

  (Delta = p I + q betahat betahat^T: tr Delta = pD + q, tr Delta^2 = p^2 D + 2pq + q^2 in
  the Wick formula ``statistics.wick_terms``).
* ``full``: the factor flow dF/dt = -(eta0/alpha)(eps G F + g c^T) with the population g, G,
  for any N (finite N starts from the sampled W0).

Weight decay lambda adds -eta0 lambda F to dF/dt, i.e. -2 eta0 lambda M to dM/dt: the scalar
system gains -2 eta0 lambda (1 + a) and -2 eta0 lambda b (wbar stays 0).  Label noise has
zero mean and is independent of x, so the population gradient ignores it.  Which problem
options each method supports is one table, ``SUPPORTED_OPTIONS``.

Names: ``beta2`` = |beta|^2 (not divided by D), ``weight_decay`` = lambda.  Both right-hand
sides are compiled with Numba (``cache=True``); the 2-scalar solver steps with the
Dormand–Prince tableau and step-size control of ``integrators``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from numba import njit, prange

from lazyrich_theory.core.dopri5 import (
    DOPRI5_A,
    DOPRI5_E,
    dopri5,
    dopri5_reject_factor,
    dopri5_step_factor,
)
from lazyrich_theory.core.integrators import (
    MAX_RHS,
    min_evaluations,
    power_spectral_radius,
)
from lazyrich_theory.core.population_structured import is_structured, population_structured
from lazyrich_theory.core.reduced import initial_factor
from lazyrich_theory.core.solve import check_tolerances
from lazyrich_theory.core.statistics import decomposition, diagnostics, reference, wick_terms
from lazyrich_theory.errors import DivergenceError, IntegrationError, ProblemError
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import (
    Problem,
    option_why_not,
    options_in_use,
    options_supporting,
)
from lazyrich_theory.spec.schedule import save_times as make_save_times

__all__ = ["population", "population_grid", "PopulationGrid", "scalar_rhs", "solve_scalar",
           "scalar_loss", "rich_transition_time", "check_options", "SUPPORTED_OPTIONS",
           "POP_METHODS"]

POP_METHODS = ("auto", "scalar", "full")


def _supported(method: str) -> frozenset[str]:
    """The options population ``method`` supports, read from the option table now."""
    return frozenset({*options_supporting("population"), *(["finite_width"] * (method == "full"))})


#: The problem options each population method supports (any other is refused in one line):
#: the training options whose ``spec.problem.TRAINING_OPTIONS`` entry lists "population", so
#: a new option is refused until its entry says the ODE implements it; N < inf for "full".
SUPPORTED_OPTIONS = {m: _supported(m) for m in ("scalar", "full")}

#: Why a non-training option is not supported (a training option's: its table entry).
_UNSUPPORTED_WHY = {
    "target": "the population ODE is for the paper target only",
    "finite_width": "the 2-scalar ODE needs N = inf; use method='full'",
}


def _options_in_use(problem: Problem) -> dict[str, str]:
    """option name -> how it is set: the target, the user's training options, N."""
    used = {"target": f"target={problem.target!r}"} if problem.target != "paper" else {}
    used.update({name: f"{name}={v:g}" for name, v in options_in_use(problem).items()})
    if problem.finite_width:
        used["finite_width"] = f"N={problem.N}"
    return used


def check_options(problem: Problem, method: str = "auto", *, ignore: Iterable[str] = ()) -> str:
    """The population method to run for ``problem``, after checking its options.

    Parameters
    ----------
    problem : Problem
        The problem.
    method : {"auto", "scalar", "full"}
        "auto" is "scalar" at N = inf and "full" at finite N.
    ignore : iterable of str
        Options not to check (``population_grid`` ignores N: it is the N = inf ODE).

    Returns
    -------
    str
        "scalar" or "full".

    Raises
    ------
    ProblemError
        One line naming every option of ``problem`` that ``method`` does not support
        (``SUPPORTED_OPTIONS``), or an unknown method.
    """
    if method not in POP_METHODS:
        raise ProblemError(f"population method must be one of {', '.join(POP_METHODS)}, "
                           f"got {method!r}")
    if method == "auto":
        method = "full" if problem.finite_width else "scalar"
    bad = [f"{how} ({_UNSUPPORTED_WHY.get(name) or option_why_not(name, 'population')})"
           for name, how in _options_in_use(problem).items()
           if name not in _supported(method) and name not in set(ignore)]
    if bad:
        raise ProblemError(f"population method {method!r} does not support " + "; ".join(bad))
    return method


# ----------------------------------------------------------------------------- 2-scalar ODE
@njit(cache=True)
def scalar_rhs(a, b, alpha, eps, eta0, tau, beta2, D, s, weight_decay):
    """(da/dt, db/dt) of the N = inf population flow; beta2 = |beta|^2, s = 0 (centered) or 1,
    weight_decay = lambda (dM/dt gains -2 eta0 lambda M: -2 eta0 lambda (1 + a) and
    -2 eta0 lambda b)."""
    p = 0.5 * alpha * eps * (a + s)
    q = 0.5 * alpha * eps * b - tau * beta2
    g1 = 2.0 * (p * D + q + 2.0 * p) / (D * D)
    g2 = 4.0 * q / (D * D)
    k = -(eta0 * eps / alpha) * 2.0
    d = 2.0 * eta0 * weight_decay
    return k * g1 * (1.0 + a) - d * (1.0 + a), k * (g1 * b + g2 * (1.0 + a + b)) - d * b


@njit(cache=True)
def scalar_loss(a, b, alpha, eps, tau, beta2, D, s):
    """(variance, misalignment) of the population loss at state (a, b) (wbar = 0, so the
    linear power is 0): Delta = p I + q betahat betahat^T in ``wick_terms``."""
    p = 0.5 * alpha * eps * (a + s)
    q = 0.5 * alpha * eps * b - tau * beta2
    variance, misalignment, _ = wick_terms(0.0, p * D + q, p * p * D + 2.0 * p * q + q * q, D)
    return variance, misalignment


@njit(cache=True)
def _rhs(a, b, par):
    """scalar_rhs with the parameters packed as par = (alpha, eps, eta0, tau, beta2, D, s, wd)."""
    return scalar_rhs(a, b, par[0], par[1], par[2], par[3], par[4], par[5], par[6], par[7])


@njit(cache=True, inline="always")
def _dot(c, x):
    """sum_j c[j] x[j] over the non-zero entries of a 7-entry tableau row, left to right
    (the rows are compile-time constants, so the zero tests fold away)."""
    acc = 0.0
    if c[0] != 0.0:
        acc += c[0] * x[0]
    if c[1] != 0.0:
        acc += c[1] * x[1]
    if c[2] != 0.0:
        acc += c[2] * x[2]
    if c[3] != 0.0:
        acc += c[3] * x[3]
    if c[4] != 0.0:
        acc += c[4] * x[4]
    if c[5] != 0.0:
        acc += c[5] * x[5]
    if c[6] != 0.0:
        acc += c[6] * x[6]
    return acc


@njit(cache=True)
def _scalar_step(a, b, h, par, sa, sb):
    """One Dormand–Prince 5(4) step of the 2-scalar system from (a, b); sa[0], sb[0] hold the
    slopes at (a, b) (FSAL), and sa[6], sb[6] those at the result.  Returns (a_new, b_new,
    err), err the RMS of the embedded error estimate scaled by atol + rtol max|.| (par[8:])."""
    A = DOPRI5_A
    sa[1], sb[1] = _rhs(a + h * _dot(A[1], sa), b + h * _dot(A[1], sb), par)
    sa[2], sb[2] = _rhs(a + h * _dot(A[2], sa), b + h * _dot(A[2], sb), par)
    sa[3], sb[3] = _rhs(a + h * _dot(A[3], sa), b + h * _dot(A[3], sb), par)
    sa[4], sb[4] = _rhs(a + h * _dot(A[4], sa), b + h * _dot(A[4], sb), par)
    sa[5], sb[5] = _rhs(a + h * _dot(A[5], sa), b + h * _dot(A[5], sb), par)
    an, bn = a + h * _dot(A[6], sa), b + h * _dot(A[6], sb)   # row 6: the 5th-order solution
    sa[6], sb[6] = _rhs(an, bn, par)
    rtol, atol = par[8], par[9]
    sca = atol + rtol * max(abs(a), abs(an))
    scb = atol + rtol * max(abs(b), abs(bn))
    ea, eb = h * _dot(DOPRI5_E, sa), h * _dot(DOPRI5_E, sb)
    return an, bn, math.sqrt(0.5 * ((ea / sca) ** 2 + (eb / scb) ** 2))


#: Step budget of the compiled 2-scalar solver (~1 s per 1.5e6 steps): a flow too stiff for it
#: (t rho / 3.3 steps, rho proportional to eta0) is refused up front (``_check_stiffness``).
SCALAR_MAX_STEPS = 10_000_000


@njit(cache=True)
def solve_scalar(alpha, eps, eta0, tau, beta2, D, s, weight_decay, t_save, rtol, atol,
                 max_steps=SCALAR_MAX_STEPS):
    """Dormand–Prince 5(4) on (a, b) from (0, 0), stepping onto every t_save, in at most
    ``max_steps`` steps.  Returns (a, b, n_rhs); a[k] = nan marks a failure from index k on."""
    n = t_save.size
    A = np.full(n, np.nan)
    B = np.full(n, np.nan)
    A[0], B[0] = 0.0, 0.0
    par = (alpha, eps, eta0, tau, beta2, D, s, weight_decay, rtol, atol)
    a, b, t = 0.0, 0.0, t_save[0]
    sa, sb = np.empty(7), np.empty(7)
    sa[0], sb[0] = _rhs(a, b, par)
    nrhs, h, err_old, k = 1, 1.0, 1e-4, 1
    while k < n:
        target = t_save[k]
        if h > target - t:
            h = target - t
        hit = (target - t) - h <= 1e-12 * max(1.0, abs(target))
        if hit:
            h = target - t
        an, bn, err = _scalar_step(a, b, h, par, sa, sb)
        nrhs += 6
        if err <= 1.0:
            t = target if hit else t + h
            a, b = an, bn
            sa[0], sb[0] = sa[6], sb[6]
            if hit:
                A[k], B[k] = a, b
                k += 1
            h *= dopri5_step_factor(err, err_old)
            err_old = max(err, 1e-4)
        else:                               # also when err is nan or inf
            h *= dopri5_reject_factor(err)
        if h < 1e-12 * max(1.0, abs(t)) or nrhs > 6 * max_steps:
            break
    return A, B, nrhs


def rich_transition_time(alpha: float, eps: float, eta0: float, D: int, beta2: float,
                         tau: float = 0.5) -> float:
    """Closed-form estimate of the rich-transition time of the N = inf population flow,
    t* = (alpha D^2 / (12 tau eta0 eps |beta|^2)) ln(2 tau |beta|^2 / (alpha eps)).

    Early on q = -tau |beta|^2, so db/dt = 4 r (3 b + 2) with the rate unit
    r = tau eta0 eps |beta|^2 / (alpha D^2): b grows at rate 12 r until it reaches
    b* = 2 tau |beta|^2 / (alpha eps) (docs/theory.md §5; an earlier note quoted the rate as
    8 r, which drops the gamma_1 b term).  An order-of-magnitude estimate; ``beta2`` = |beta|^2.
    """
    bstar = 2.0 * tau * beta2 / (alpha * eps)
    return alpha * D**2 / (12.0 * tau * eta0 * eps * beta2) * math.log(max(bstar, math.e))


@njit(cache=True, parallel=True)
def _scalar_grid(alphas, epss, eta0s, tau, beta2, D, s, weight_decay, t_save, rtol, atol):
    """solve_scalar for every cell (alphas[i], epss[i], eta0s[i]) in parallel threads; returns
    the population loss (n_cells, n_times) and the RHS evaluation count per cell."""
    n = alphas.size
    L = np.empty((n, t_save.size))
    nrhs = np.empty(n, dtype=np.int64)
    for i in prange(n):
        A, B, m = solve_scalar(alphas[i], epss[i], eta0s[i], tau, beta2, D, s, weight_decay,
                               t_save, rtol, atol)
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


def population_grid(problem: Problem, steps: int, alpha: Iterable[float], eps: Iterable[float],
                    *, save_times: Iterable[int] | None = None, rtol: float = 1e-8,
                    atol: float = 1e-12, beta2: float | None = None) -> PopulationGrid:
    """The 2-scalar population ODE (N = inf) for every pair in alpha x eps, compiled and run
    in parallel threads (Numba ``prange``).

    Parameters
    ----------
    problem : Problem
        D, eta0, tau, centering and weight decay come from here (its N is ignored).
    steps : int
        Last time, in GD steps.
    alpha, eps : iterable of float
        The grid axes.
    save_times : iterable of int, optional
        Extra save times added to the default log-spaced grid.
    rtol, atol : float
        Tolerances of the Dormand–Prince solver.
    beta2 : float, optional
        |beta|^2; default the problem's sampled teacher.

    Returns
    -------
    PopulationGrid
    """
    check_options(problem, "scalar", ignore=("finite_width",))
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
def full_rhs(F, c, z, beta, wref, Mref, alpha, eps, eta0, tau, weight_decay):
    """dF/dt = -(eta0/alpha)(eps G F + g c^T) - eta0 lambda F, population g = 2v/D,
    G = 2[(tr Delta) I + 2 Delta]/D^2 (lambda = weight_decay)."""
    D = F.shape[0]
    v = alpha * (F @ z - wref)
    FtF = F.T @ F
    # Delta F = (alpha eps/2)(F F^T F - Mref F) - tau beta (beta^T F)
    DF = (0.5 * alpha * eps) * (F @ FtF - Mref @ F) - tau * np.outer(beta, beta @ F)
    trD = 0.5 * alpha * eps * (np.trace(FtF) - np.trace(Mref)) - tau * (beta @ beta)
    GF = (2.0 / (D * D)) * (trD * F + 2.0 * DF)
    g = (2.0 / D) * v
    return (-eta0 / alpha) * (eps * GF + np.outer(g, c)) - (eta0 * weight_decay) * F


def _check_stiffness(p: Problem, rho: float, span: float, budget: float, what: str) -> None:
    """ProblemError before integrating when DOPRI5 needs more than ``budget`` evaluations to
    cover ``span`` at spectral radius ``rho`` (proportional to eta0: the message names the
    eta0 that fits)."""
    need = min_evaluations(rho, span, "dopri5")
    if need > budget:
        raise ProblemError(f"{what} would need at least ~{need:.2g} right-hand-side evaluations "
                           f"to reach t={span:g}: it is stiff (spectral radius ~{rho:.3g} per GD "
                           f"step at initialisation, eta0={p.eta0:g}), beyond its budget of "
                           f"{budget:.3g}; use eta0 below ~{p.eta0 * budget / need:.2g}")


def _scalar_rho(p: Problem, beta2: float) -> float:
    """Spectral radius of the 2-scalar system's Jacobian at (0, 0), by finite differences."""
    args = (p.alpha, p.eps, p.eta0, p.tau, beta2, float(p.D), 0.0 if p.centered else 1.0,
            p.weight_decay)
    f0 = np.array(scalar_rhs(0.0, 0.0, *args))
    J = np.column_stack([(np.array(scalar_rhs(1e-6, 0.0, *args)) - f0) / 1e-6,
                         (np.array(scalar_rhs(0.0, 1e-6, *args)) - f0) / 1e-6])
    return float(np.max(np.abs(np.linalg.eigvals(J))))


def _scalar_flow(p: Problem, beta: np.ndarray, times: np.ndarray, rtol: float, atol: float,
                 rows: np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The 2-scalar ODE: fills ``rows`` (CORE_COLUMNS); returns (info, final_state)."""
    D, s = float(p.D), 0.0 if p.centered else 1.0
    beta2 = float(beta @ beta)
    _check_stiffness(p, _scalar_rho(p, beta2), float(times[-1] - times[0]),
                     6.0 * SCALAR_MAX_STEPS, "the 2-scalar population ODE")
    A, B, nrhs = solve_scalar(p.alpha, p.eps, p.eta0, p.tau, beta2, D, s, p.weight_decay,
                              times, rtol, atol)
    bad = np.flatnonzero(~np.isfinite(A) | ~np.isfinite(B))
    if bad.size:
        why = (f"its budget of {SCALAR_MAX_STEPS:.3g} steps ran out (stiff: lower eta0)"
               if nrhs > 6 * SCALAR_MAX_STEPS else
               f"step size underflow or overflow at alpha={p.alpha:g}, eps={p.eps:g}")
        raise DivergenceError(f"population ODE failed at t={times[bad[0]]:g}: {why}",
                              times[bad[0]])
    for k in range(times.size):
        var, mis = scalar_loss(A[k], B[k], p.alpha, p.eps, p.tau, beta2, D, s)
        a, b = A[k], B[k]
        rows[k] = [var + mis, var + mis, var + mis, var, mis, 0.0, a + b, (a * D + b) / D,
                   math.sqrt(max(a * a * D + 2 * a * b + b * b, 0.0)), 0.0]
    return {"n_rhs": int(nrhs)}, {"a": np.array(A[-1]), "b": np.array(B[-1])}


def _full_flow(p: Problem, data: ProblemData, beta: np.ndarray, times: np.ndarray, rtol: float,
               atol: float, rows: np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The D-dimensional factor flow: fills ``rows`` (CORE_COLUMNS); returns (info,
    final_state)."""
    D = p.D
    F0, c, z = initial_factor(data.W0 if p.finite_width else None, D)
    wbar0, M0 = F0 @ z, F0 @ F0.T
    wref, Mref = reference(p.centered, wbar0, M0)
    final: dict[str, np.ndarray] = {}

    def rhs(t, F):
        return full_rhs(F, c, z, beta, wref, Mref, p.alpha, p.eps, p.eta0, p.tau, p.weight_decay)

    def on_save(k, t, F):
        wbar, M = F @ z, F @ F.T
        var, mis, lin = decomposition(wbar, M, wref, Mref, beta, p.alpha, p.eps, p.tau)
        L = var + mis + lin
        if not math.isfinite(L):
            raise DivergenceError(f"population flow diverged at t={t:g}", t)
        rows[k] = [L, L, L, var, mis, lin, *diagnostics(wbar, M, wbar0, M0, beta)]
        final.update(F=F, wbar=wbar, M=M)

    _check_stiffness(p, power_spectral_radius(rhs, 0.0, F0, rhs(0.0, F0))[0],
                     float(times[-1] - times[0]), MAX_RHS, "the population flow")
    try:
        stats = dopri5(rhs, F0, times, on_save, rtol=rtol, atol=atol)
    except IntegrationError as exc:
        raise DivergenceError(f"population flow failed: {exc}", float("nan")) from None
    return {"n_rhs": stats.n_rhs, "n_accepted": stats.n_accepted,
            "n_rejected": stats.n_rejected}, final


def population(problem: Problem, steps: int, *, method: str = "auto",
               save_times: Iterable[int] | np.ndarray | None = None,
               data: ProblemData | None = None, rtol: float = 1e-9, atol: float = 1e-12,
               progress: bool = False) -> Trajectory:
    """Online (P -> inf) gradient flow of ``problem`` up to ``steps`` (time in GD steps).

    Same argument order as ``solve(problem, steps, *, method, save_times, data, ...)``.
    There is no train/test gap online: the test_loss column equals the population loss, and
    train_loss is the expected loss on fresh labels (population loss + sigma^2 with label
    noise, which does not change the population gradient).  Weight decay is included
    (-eta0 lambda F); momentum and non-paper targets raise ProblemError (``check_options``).

    Parameters
    ----------
    problem : Problem
        The problem (paper target; N = inf or finite).
    steps : int
        Last time, in GD steps.
    method : {"auto", "scalar", "full"}
        "scalar" (N = inf only): the 2-scalar system; "full": the factor flow in D
        dimensions (any N); "auto": scalar when N = inf, else full.
    save_times : iterable of int, optional
        Extra save times added to the default log-spaced grid.
    data : ProblemData, optional
        beta (and W0 for finite N); default the problem's own.
    rtol, atol : float
        Tolerances of the Dormand–Prince solver.
    progress : bool
        Accepted for the common signature with ``solve``; the population ODE reports none.

    Returns
    -------
    Trajectory
        method "population"; info holds population_method, n_rhs, wall_time and
        predicted_transition_time (``rich_transition_time``).
    """
    method = check_options(problem, method)
    rtol, atol = check_tolerances(rtol, atol)
    times = make_save_times(steps, extra=save_times).astype(np.float64)
    data = problem.data() if data is None else data
    if is_structured(problem, data):   # structured inits (issue 17, docs/init_structure.md §3)
        return population_structured(problem, steps, save_times=save_times, data=data, rtol=rtol,
                                     atol=atol)
    beta = np.asarray(data.beta, dtype=np.float64)
    if beta.shape != (problem.D,):
        raise ProblemError(f"beta has shape {beta.shape}, expected ({problem.D},)")
    p = problem
    t0 = time.perf_counter()
    rows = np.empty((times.size, len(CORE_COLUMNS)))
    info: dict[str, Any] = {"steps": int(steps), "population_method": method}
    if method == "scalar":
        stats, final_state = _scalar_flow(p, beta, times, rtol, atol, rows)
    else:
        stats, final_state = _full_flow(p, data, beta, times, rtol, atol, rows)
    info.update(stats)
    info["wall_time"] = time.perf_counter() - t0
    info["predicted_transition_time"] = rich_transition_time(p.alpha, p.eps, p.eta0, p.D,
                                                             float(beta @ beta), p.tau)
    cols = {name: rows[:, j].copy() for j, name in enumerate(CORE_COLUMNS)}
    # online, every label is fresh: the expected train loss on noisy labels is the population
    # loss plus sigma^2 (the gradient, and so the flow, does not see the noise)
    cols["train_loss"] = cols["train_loss"] + p.noise ** 2
    return Trajectory(problem=problem, method="population", t=times, **cols, info=info,
                      final_state=final_state)
