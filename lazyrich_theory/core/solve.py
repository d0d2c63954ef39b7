"""``solve``: the one entry point of the reduced dynamics (exact GD, SGD, GD-accurate strides
or gradient flow)."""

from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np

from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.sample_space import choose_representation
from lazyrich_theory.core.stepping import LoopResult, run_flow, run_steps
from lazyrich_theory.core.stride import choose_method, gd_fast_refusal, run_stride
from lazyrich_theory.core.stride_solver import DEFAULT_TOL
from lazyrich_theory.core.trackers import check_tolerance
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.stats import SolverStats, StrideStats
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import (
    Problem,
    option_why_not,
    options_in_use,
    options_supporting,
)
from lazyrich_theory.spec.resources import check_resources
from lazyrich_theory.spec.schedule import save_times as make_save_times
from lazyrich_theory.spec.streams import sgd_batch_size, sgd_mode

__all__ = ["solve", "METHODS", "SUPPORTED_OPTIONS", "INTEGRATORS", "DEFAULT_TOLERANCES",
           "GD_FAST_TOL", "check_options", "check_tolerances", "estimate_method"]


#: The methods of :func:`solve`: "gd" (exact GD map), "flow" (gradient flow), "gd-fast"
#: (GD-accurate strides, docs/stride.md; exact GD where they do not apply) and "auto" (the
#: default: "gd-fast" where it is valid and gains, else "gd";
#: :func:`~lazyrich_theory.core.stride.choose_method`).
METHODS = ("gd", "flow", "gd-fast", "auto")

#: The solver's own options per method (the training options come from the option table).
_SOLVER_OPTIONS = {"gd": ("minibatch SGD", "online SGD", "stop"),
                   "flow": ("integrator", "rtol", "atol"),
                   "gd-fast": ("minibatch SGD", "online SGD", "stop", "rtol"),
                   "auto": ("minibatch SGD", "online SGD", "stop", "rtol")}

#: The option table's method each solve method reads: "gd-fast" and "auto" take every option
#: exact GD takes (what the strides cannot do, e.g. momentum or SGD, runs as exact GD).
_TABLE_METHOD = {"gd": "gd", "flow": "flow", "gd-fast": "gd", "auto": "gd"}


def _supported(method: str) -> frozenset[str]:
    """The options ``method`` supports, read from the option table now."""
    return frozenset({*options_supporting(_TABLE_METHOD[method]), *_SOLVER_OPTIONS[method]})


#: Which training and solver options each method supports, checked in one place
#: (:func:`check_options`).  The training options come from the methods their entry of
#: ``spec.problem.TRAINING_OPTIONS`` lists (an option whose entry lacks a method is refused
#: by it); targets, observers and save times are valid for every method and not listed;
#: ``integrator``, ``rtol`` and ``atol`` are validated for every method but only used by
#: the flow.
SUPPORTED_OPTIONS = {m: _supported(m) for m in METHODS}


#: Why a solver option is missing from a method (the end of the error message; a training
#: option's reason is in its entry, ``spec.problem.option_why_not``).
_UNSUPPORTED_WHY = {
    "minibatch SGD": "a sampled batch sequence has no gradient-flow limit in this solver",
    "online SGD": "a sampled batch sequence has no gradient-flow limit in this solver",
    "stop": "the adaptive integrators have no early stop; cut the trajectory instead",
}


#: Integrators for method="flow": "rkc" (Runge–Kutta–Chebyshev, default: built for the stiff
#: lazy phase) and "dopri5" (Dormand–Prince 5(4), the high-accuracy reference).
INTEGRATORS = ("rkc", "dopri5")


#: Default tolerances per integrator (rtol, atol).
DEFAULT_TOLERANCES = {"rkc": (1e-4, 1e-8), "dopri5": (1e-7, 1e-10)}

#: Default rtol of methods "gd-fast" and "auto": the strides' local tolerance (docs/stride.md).
GD_FAST_TOL = DEFAULT_TOL


def check_options(problem: Problem, method: str, integrator: str = "rkc",
                  rtol: float | None = None, atol: float | None = None,
                  stop: float | None = None) -> tuple[float, float, float | None]:
    """Check ``method`` against the options in use (:data:`SUPPORTED_OPTIONS`).

    Parameters
    ----------
    problem : Problem
        Its training options (``spec.problem.options_in_use``) and SGD mode are checked.
    method, integrator, rtol, atol, stop
        As in :func:`solve`.

    Returns
    -------
    tuple
        (rtol, atol, stop) with the default tolerances filled in (the integrator's; for
        "gd-fast" and "auto" rtol is the strides' tolerance, :data:`GD_FAST_TOL`) and
        ``stop`` as a float (or None).  ProblemError (one line) for anything unsupported or
        invalid.
    """
    if method not in METHODS:
        raise ProblemError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    mode = sgd_mode(problem)
    used = [*options_in_use(problem), *([f"{mode} SGD"] if mode is not None else []),
            *(["stop"] if stop is not None else [])]
    for name in used:
        if name not in _supported(method):
            why = _UNSUPPORTED_WHY.get(name) or option_why_not(name, method)
            ok = [m for m in METHODS if name in _supported(m)]
            raise ProblemError(f"{name} needs method {' or '.join(map(repr, ok))} ({why})"
                               if ok else f"{name} is not supported by solve ({why})")
    bad = [name for name in options_in_use(problem) if name not in options_supporting("sgd")]
    if mode is not None and bad:
        raise ProblemError(f"{mode} SGD does not support {', '.join(bad)} "
                           f"({option_why_not(bad[0], 'sgd')})")
    if integrator not in INTEGRATORS:
        raise ProblemError(f"integrator must be one of {', '.join(INTEGRATORS)}, got {integrator!r}")
    if method != "flow":
        _check_decay(problem)
    d_rtol, d_atol = DEFAULT_TOLERANCES[integrator]
    if method in ("gd-fast", "auto"):
        d_rtol = GD_FAST_TOL
    rtol, atol = check_tolerances(d_rtol if rtol is None else rtol,
                                  d_atol if atol is None else atol)
    return rtol, atol, None if stop is None else check_tolerance(stop)


def _check_decay(problem: Problem) -> None:
    """GD multiplies W by (1 - eta0 lambda) every step (heavy ball: eigenvalues of the
    momentum map): beyond eta0 lambda = 2 (1 + mu) that alone diverges, whatever the data."""
    p = problem
    rate = p.eta0 * p.weight_decay
    if rate >= 2.0 * (1.0 + p.momentum):
        raise ProblemError(f"weight decay too strong for GD: eta0*weight_decay = {rate:g} >= "
                           f"2 (1 + momentum) = {2.0 * (1.0 + p.momentum):g}, so the decay "
                           f"factor 1 - eta0*weight_decay alone makes every step diverge; "
                           f"lower eta0 or weight_decay, or use method 'flow'")


def check_tolerances(rtol: float, atol: float) -> tuple[float, float]:
    """The integrator tolerances as floats, in their meaningful ranges.

    Parameters
    ----------
    rtol : float
        Relative tolerance, in [1e-14, 1) (below that float64 round-off dominates; 1 or more
        controls nothing).
    atol : float
        Absolute tolerance, in [0, 1).

    Returns
    -------
    (float, float)
        ``(rtol, atol)``; ProblemError (one line) for anything else.
    """
    out = []
    for name, v, low in (("rtol", rtol, 1e-14), ("atol", atol, 0.0)):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ProblemError(f"{name} must be a number, got {v!r}") from None
        if isinstance(v, bool) or not (low <= x < 1.0):
            raise ProblemError(f"{name} must be in [{low:g}, 1) (a relative error below "
                               f"float64 round-off, or of 100 % or more, is no tolerance), "
                               f"got {v!r}")
        out.append(x)
    return out[0], out[1]


def estimate_method(problem: Problem, steps: int, method: str) -> str:
    """The method of the resource estimate (``spec.resources.ESTIMATE_METHODS``) for a solve:
    "gd-fast" and "auto" count as "gd-fast" unless the whole run is exact GD (momentum, SGD,
    fewer than ``stride.MIN_STEPS`` steps: :func:`~lazyrich_theory.core.stride.
    gd_fast_refusal`)."""
    if method in ("gd-fast", "auto"):
        return "gd" if gd_fast_refusal(problem, steps) is not None else "gd-fast"
    return method


def solve(problem: Problem, steps: int, method: str = "auto",
          save_times: Iterable[int] | np.ndarray | None = None, data: ProblemData | None = None,
          integrator: str = "rkc", rtol: float | None = None, atol: float | None = None,
          progress: bool = False,
          observers: dict[str, Callable[["ReducedSystem", np.ndarray], float]] | None = None,
          stop: float | None = None, allow_large: bool = False) -> Trajectory:
    """Solve the reduced dynamics of ``problem`` up to ``steps`` GD steps.

    method "gd":      the exact discrete GD map (equal to training the network, any N).
    method "gd-fast": discrete GD in strides of many steps (docs/stride.md): GD's stiff
                      linear part exactly, the slow rest interpolated, error-controlled to
                      ``rtol`` (default :data:`GD_FAST_TOL` = 1e-7; measured global errors of
                      the losses vs "gd" <= ~1e-7), exact GD blocks where strides cannot pay
                      (``info["stride"]``).  Momentum, SGD and runs shorter than
                      ``stride.MIN_STEPS`` (3000) steps run exact GD instead
                      (``info["method_reason"]``).
    method "auto":    (default) "gd-fast" where it is valid and gains, else "gd": also exact
                      GD at the edge of stability (eta0 >= 0.99 x the stable bound at
                      initialisation).  ``Trajectory.method`` says which ran.
    method "flow":    the gradient flow dF/dt = -(eta0/alpha)(eps G F + g c^T), time in GD
                      steps, by an adaptive ``integrator``: "rkc" (Runge–Kutta–Chebyshev,
                      default rtol 1e-4) or "dopri5" (Dormand–Prince 5(4), default rtol 1e-7).
    The problem's training options apply (docs/theory.md §9): ``noise`` via its labels,
    ``weight_decay`` lambda adds -eta0 lambda F to the GD increment and to dF/dt, and
    ``momentum`` mu (exact GD only) runs the heavy-ball map on the stacked factor [F; F_v].
    ``batch_size`` B < P runs minibatch SGD and ``online`` online SGD (exact GD only; exact
    for the seeded sample sequence, docs/sgd.md); their train_loss column is the full training
    loss (minibatch) or the loss on the current fresh batch (online).
    Save times are the default log-spaced grid up to ``steps`` plus exactly ``save_times``.
    ``observers`` adds columns: name -> fn(system, F), evaluated on the state at each save time.
    ``stop`` (not the flow): stop at the first save time at which train and test loss are
    both below ``stop``; the trajectory ends there (``info["stopped_at"]``).
    Which method supports which option: :data:`SUPPORTED_OPTIONS`.
    Before anything is computed, the run's memory and work are estimated
    (:func:`~lazyrich_theory.spec.resources.check_resources`): a run beyond this machine's
    available memory or a day of work raises ``ResourceError`` (a ProblemError) stating the
    estimate, unless ``allow_large``.  A flow too stiff for its integrator's evaluation budget
    is refused too (ProblemError naming the spectral radius).

    Returns
    -------
    Trajectory
        The columns at the save times, ``info`` (:class:`~lazyrich_theory.results.stats.
        SolverStats` as a dict; typed as ``Trajectory.stats``) and the final state.
    """
    rtol, atol, stop = check_options(problem, method, integrator, rtol, atol, stop)
    times = make_save_times(steps, extra=save_times)
    check_resources(problem, steps, estimate_method(problem, steps, method),
                    allow_large=allow_large, integrator=integrator)
    t0 = time.perf_counter()
    mode = sgd_mode(problem)
    if mode == "online" and data is None:
        data = problem.data()      # online SGD also needs beta (the teacher) for fresh labels
    system = ReducedSystem.build(problem, data, observers=observers)
    ran, why = choose_method(system, steps, method)
    stride = None
    if ran == "gd":
        run = run_steps(system, times, data, progress, stop)
    elif ran == "gd-fast":
        run, stride = run_stride(system, times, rtol, progress, stop)
    else:
        run = run_flow(system, times, integrator, rtol, atol, progress)
    stats = _stats(system, run, steps, integrator, rtol, atol, stop,
                   wall_time=time.perf_counter() - t0,
                   requested=method if method in ("gd-fast", "auto") else None,
                   why=why, stride=stride,
                   representation=choose_representation(system) if ran == "gd" else None)
    return _trajectory(system, ran, times[:len(run.rows)], run, stats)


def _stats(system: ReducedSystem, run: LoopResult, steps: int, integrator: str, rtol: float,
           atol: float, stop: float | None, wall_time: float, requested: str | None = None,
           why: str | None = None, stride: StrideStats | None = None,
           representation: str | None = None) -> SolverStats:
    """The run's :class:`SolverStats` (``requested``, ``why``: the method rule's request and
    reason; ``stride``: the work of a "gd-fast" run; ``representation``: the state of an exact
    GD run, "factor" or "sample", core.sample_space)."""
    kw: dict = {"steps": int(steps), "rank": int(system.F0.shape[1]), "wall_time": wall_time,
                "method_requested": requested, "method_reason": why, "stride": stride,
                "representation": representation}
    mode = sgd_mode(system.problem)
    if mode is not None:
        kw.update(sgd=mode, batch_size=sgd_batch_size(system.problem))
    if run.work is not None:
        w = run.work
        kw.update(n_rhs=w.n_rhs, n_accepted=w.n_accepted, n_rejected=w.n_rejected,
                  n_rho=w.n_rho, max_stages=w.max_stages, integrator=integrator, rtol=rtol,
                  atol=atol)
    if stop is not None:
        kw.update(stop_tol=stop, stopped_at=run.stopped_at)
    return SolverStats(**kw)


def _trajectory(system: ReducedSystem, method: str, times: np.ndarray, run: LoopResult,
                stats: SolverStats) -> Trajectory:
    rows, F = run.rows, run.F
    cols = {name: rows[:, j].copy() for j, name in enumerate(CORE_COLUMNS)}
    extra = {name: rows[:, len(CORE_COLUMNS) + j].copy()
             for j, name in enumerate(system.observers)}
    info = stats.to_info()
    if system.target is not None:
        info["target"] = system.target.info()
    info["init"] = system.init_info()
    return Trajectory(problem=system.problem, method=method, t=times.astype(np.float64), **cols,
                      extra=extra, info=info,
                      final_state={"F": F, "c": system.c, "z": system.z, "wbar": F @ system.z,
                                   "M": F @ F.T})
