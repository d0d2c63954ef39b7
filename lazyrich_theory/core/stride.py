"""GD-accurate strides (method "gd-fast"): discrete GD in strides of many steps, with GD's own
stiff linear part applied exactly and the slow remainder interpolated (docs/stride.md).

GD, F_{t+1} = F_t + Delta(F_t), is for any symmetric reference operator A, L = I + A and
N(F) = Delta(F) - A F exactly the discrete variation of constants

    F_{n+k} = L^k F_n + sum_{j<k} L^(k-1-j) N(F_{n+j}).

A is the Gauss–Newton part of the Jacobian at a reference state (:mod:`lazyrich_theory.core.
stride_ops`): its modes are multiplied by GD's own factors mu_i^k = (1 - c theta_i - omega)^k,
including the oscillating ones (mu_i < 0) that no gradient flow reproduces.  Only N — the
curvature (feature learning) and the drift of the kernel since the reference — is replaced by
its Lagrange interpolant through the stride nodes: an exponential Adams–Bashforth predictor of
order q (default 5) and an Adams–Moulton corrector of order q + 1.  Their difference, as a
function error on the training set and in population norm relative to the current losses,
controls the stride length; strides land on the save times.  Near the stability bound
(mu_min < -1/2) the same formulas run on the two-step map GD^2 (multipliers mu^2 >= 0), where
GD's period-2 component is smooth.

Where the interpolation cannot pay, it falls back to exact GD blocks in the run (``gd_fallback
_steps``): the first steps, a kernel at or beyond the stability bound (edge of stability,
catapults, divergence, which is then reported at its exact step), curvature-dominated phases
(strides below ``k_min`` or fewer than ``min_efficiency`` GD steps per right-hand side).
Momentum and SGD have no linear part of this form and short runs gain nothing: for those the
whole run is exact GD (:func:`gd_fast_refusal`, used by ``solve``).

This module holds the method's rule (:func:`choose_method`) and its runner with the shared
trackers (:func:`run_stride`); the solver is :class:`~lazyrich_theory.core.stride_solver.
StrideSolver`, its building blocks are in :mod:`lazyrich_theory.core.stride_ops`.
"""

from __future__ import annotations

import numpy as np

from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.stepping import LoopResult
from lazyrich_theory.core.stride_solver import DEFAULT_TOL, StrideOptions, StrideSolver
from lazyrich_theory.core.threads import blas_threads_for
from lazyrich_theory.core.trackers import Divergence, EarlyStop, Progress, Recorder, stable_eta0
from lazyrich_theory.results.stats import StrideStats
from lazyrich_theory.spec.problem import (
    Problem,
    option_why_not,
    options_in_use,
    options_supporting,
)
from lazyrich_theory.spec.streams import sgd_mode

__all__ = ["MIN_STEPS", "EDGE_FRACTION", "gd_fast_refusal", "edge_refusal", "choose_method",
           "stride_stats", "run_stride"]

#: Runs shorter than this many steps are exact GD: the method's fixed cost (warm-up, first
#: kernel, ~10^3 right-hand sides on Figure 1) is no gain there.
MIN_STEPS = 3000

#: ``method="auto"`` runs exact GD when eta0 is at least this fraction of GD's stable bound at
#: initialisation (edge of stability: the strides would fall back to exact GD anyway).
EDGE_FRACTION = 0.99


def gd_fast_refusal(problem: Problem, steps: int, min_steps: int = MIN_STEPS) -> str | None:
    """Why the stride method does not apply to ``problem`` for ``steps`` steps (None: it does).

    It needs full-batch GD whose map F -> F + Delta(F) does not depend on the step: the
    training options the gradient flow supports (``spec.problem.options_supporting("flow")``:
    label noise, weight decay); any other option in use (momentum, and by construction any
    new one until its entry lists "flow") and SGD run exact GD, as do runs shorter than
    ``min_steps``.

    Parameters
    ----------
    problem : Problem
        Its training options and SGD mode are checked.
    steps : int
        The horizon.
    min_steps : int
        Shorter runs are exact GD (:data:`MIN_STEPS`).

    Returns
    -------
    str or None
        One line naming the reason (the whole run is then exact GD).
    """
    other = [n for n in options_in_use(problem) if n not in options_supporting("flow")]
    if other:
        return (f"{other[0]}: the stride method needs a step-independent GD map "
                f"({option_why_not(other[0], 'flow')}); ran exact GD")
    mode = sgd_mode(problem)
    if mode is not None:
        return f"{mode} SGD: a sampled batch sequence has no stride form; ran exact GD"
    if steps < min_steps:
        return f"{steps} steps < {min_steps}: exact GD is as cheap; ran exact GD"
    return None


def edge_refusal(system: ReducedSystem, fraction: float = EDGE_FRACTION) -> str | None:
    """Why ``method="auto"`` runs exact GD on ``system`` beyond :func:`gd_fast_refusal`: eta0 at
    the edge of stability at initialisation, or c != z (no symmetric Gauss–Newton part).

    Returns
    -------
    str or None
        One line, or None when the stride method applies.
    """
    if not np.allclose(system.c, system.z, rtol=1e-12, atol=1e-14):
        return "the factor's c differs from z (no symmetric Gauss-Newton part); ran exact GD"
    p = system.problem
    limit = stable_eta0(system.eta0_bound(system.F0), p.weight_decay)
    if p.eta0 >= fraction * limit:
        return (f"eta0={p.eta0:g} is at the edge of stability (>= {fraction:g} x the stable "
                f"bound {limit:.4g} at initialisation); ran exact GD")
    return None


def choose_method(system: ReducedSystem, steps: int, method: str) -> tuple[str, str | None]:
    """The method that runs for the requested ``method`` and why (``solve``'s rule).

    "gd" and "flow" run as asked.  "gd-fast" runs the stride method unless
    :func:`gd_fast_refusal` says otherwise (then exact GD).  "auto" (the default) runs the
    stride method where it is valid and gains — full-batch GD without momentum, at least
    :data:`MIN_STEPS` steps, eta0 below :data:`EDGE_FRACTION` of GD's stable bound at
    initialisation (:func:`edge_refusal`) — and exact GD otherwise.

    Returns
    -------
    (str, str or None)
        "gd", "gd-fast" or "flow", and the reason (None for "gd" and "flow" as asked).
    """
    if method not in ("gd-fast", "auto"):
        return method, None
    why = gd_fast_refusal(system.problem, steps)
    if why is None and method == "auto":
        why = edge_refusal(system)
    if why is not None:
        return "gd", why
    return "gd-fast", ("auto: full-batch GD, steps >= {}, eta0 below the edge of stability"
                       .format(MIN_STEPS) if method == "auto" else None)


def stride_stats(counts: dict, tol: float) -> StrideStats:
    """The typed :class:`~lazyrich_theory.results.stats.StrideStats` of a run's counters."""
    return StrideStats(tol=float(tol), n_rhs=counts["products"] / 2.0,
                       n_strides=int(counts["strides"]), n_rejected=int(counts["rejected"]),
                       n_refresh=int(counts["refreshes"]),
                       gd_fallback_steps=int(counts["gd_steps"]),
                       basis_size=int(counts["basis_size"]),
                       two_step_from=counts["two_step_from"],
                       refresh_time=float(counts["refresh_time"]))


def run_stride(system: ReducedSystem, times: np.ndarray, tol: float = DEFAULT_TOL,
               progress: bool = False, stop: float | None = None,
               options: StrideOptions | None = None) -> tuple[LoopResult, StrideStats]:
    """The stride method with the standard trackers (recording, divergence, progress, early
    stop), BLAS limited as for the flow.

    Parameters
    ----------
    system : ReducedSystem
        Full-batch GD without momentum.
    times : numpy.ndarray
        Integer save times (first 0, last = steps).
    tol : float
        Local tolerance (:data:`DEFAULT_TOL`).
    progress : bool
        Show a progress bar (on a terminal).
    stop : float, optional
        Early-stop tolerance (:class:`~lazyrich_theory.core.trackers.EarlyStop`).
    options : StrideOptions, optional
        The method's settings.

    Returns
    -------
    (LoopResult, StrideStats)
        Rows at the save times reached, the final F, the early-stop time; and the work
        (:func:`stride_stats` of :meth:`StrideSolver.run`'s counters).  A blow-up raises ``DivergenceError`` naming
        the step (exact, since the solver falls back to exact GD before it) and the bound.
    """
    recorder = Recorder(times.size, system.width())
    divergence = Divergence(system)
    early = None if stop is None else EarlyStop(stop)
    trackers = [divergence, recorder] + ([] if early is None else [early])
    bar = Progress(int(times[-1]), progress, "gd-fast")

    def save(k: int, t: int, F: np.ndarray, loss: float) -> bool:
        row = system.record(F, train_loss=loss)
        return any([tr.save(k, t, F, row) for tr in trackers])

    solver = StrideSolver(system, tol, options)
    try:
        with blas_threads_for(system):
            counts = solver.run(times, save, divergence.step, bar.update)
    finally:
        for tr in (*trackers, bar):
            tr.close()
    return (LoopResult(recorder.rows, recorder.F, None if early is None else early.stopped_at),
            stride_stats(counts, tol))
