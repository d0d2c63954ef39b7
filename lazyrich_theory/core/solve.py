"""``solve``: the one entry point of the reduced dynamics (exact GD, SGD or gradient flow)."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import numpy as np

from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.stepping import run_flow, run_gd, run_sgd
from lazyrich_theory.core.threads import blas_threads_for
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.schedule import save_times as make_save_times
from lazyrich_theory.spec.streams import sgd_batch_size, sgd_mode

__all__ = ["solve", "METHODS", "INTEGRATORS", "DEFAULT_TOLERANCES"]


METHODS = ("gd", "flow")


#: Integrators for method="flow": "rkc" (Runge–Kutta–Chebyshev, default: built for the stiff
#: lazy phase) and "dopri5" (Dormand–Prince 5(4), the high-accuracy reference).
INTEGRATORS = ("rkc", "dopri5")


#: Default tolerances per integrator (rtol, atol).
DEFAULT_TOLERANCES = {"rkc": (1e-4, 1e-8), "dopri5": (1e-7, 1e-10)}


def solve(problem: Problem, steps: int, method: str = "gd",
          save_times: Iterable[int] | np.ndarray | None = None, data: ProblemData | None = None,
          integrator: str = "rkc", rtol: float | None = None, atol: float | None = None,
          progress: bool = False,
          observers: dict[str, Callable[["ReducedSystem", np.ndarray], float]] | None = None
          ) -> Trajectory:
    """Solve the reduced dynamics of ``problem`` up to ``steps`` GD steps.

    method "gd":   the exact discrete GD map (equal to training the network, any N).
    method "flow": the gradient flow dF/dt = -(eta0/alpha)(eps G F + g c^T), time in GD
                   steps, by an adaptive ``integrator``: "rkc" (Runge–Kutta–Chebyshev,
                   default rtol 1e-4) or "dopri5" (Dormand–Prince 5(4), default rtol 1e-7).
    The problem's training options apply (docs/theory.md §9): ``noise`` via its labels,
    ``weight_decay`` lambda adds -eta0 lambda F to the GD increment and to dF/dt, and
    ``momentum`` mu (method "gd" only) runs the heavy-ball map on the stacked factor [F; F_v].
    ``batch_size`` B < P runs minibatch SGD and ``online`` online SGD (method "gd" only; exact
    for the seeded sample sequence, docs/sgd.md); their train_loss column is the full training
    loss (minibatch) or the loss on the current fresh batch (online).
    Save times are the default log-spaced grid up to ``steps`` plus exactly ``save_times``.
    ``observers`` adds columns: name -> fn(system, F), evaluated on the state at each save time.
    """
    if method not in METHODS:
        raise ProblemError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "flow" and problem.momentum > 0:
        raise ProblemError("momentum needs method 'gd' (heavy ball has no gradient-flow limit here)")
    mode = sgd_mode(problem)
    if method == "flow" and mode is not None:
        raise ProblemError(f"{mode} SGD needs method 'gd' (a sampled batch sequence has no "
                           "gradient-flow limit in this solver)")
    if integrator not in INTEGRATORS:
        raise ProblemError(f"integrator must be one of {', '.join(INTEGRATORS)}, got {integrator!r}")
    d_rtol, d_atol = DEFAULT_TOLERANCES[integrator]
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)
    if not (rtol > 0 and atol >= 0):
        raise ProblemError(f"need rtol > 0 and atol >= 0, got rtol={rtol:g}, atol={atol:g}")
    times = make_save_times(steps, extra=save_times)
    t0 = time.perf_counter()
    if mode == "online" and data is None:
        data = problem.data()      # online SGD also needs beta (the teacher) for fresh labels
    system = ReducedSystem.build(problem, data)
    for name, fn in (observers or {}).items():
        if name in CORE_COLUMNS or name == "t":
            raise ProblemError(f"observer name {name!r} clashes with a core column")
        system.observers[name] = fn
    info: dict[str, Any] = {"steps": int(steps), "rank": int(system.F0.shape[1])}
    if system.target is not None:
        info["target"] = system.target.info()
    if method == "gd" and mode is not None:
        rows, F = run_sgd(system, times, progress, data)
        info.update(sgd=mode, batch_size=sgd_batch_size(problem))
    elif method == "gd":
        rows, F = run_gd(system, times, progress)
    else:
        with blas_threads_for(system):
            rows, F, stats = run_flow(system, times, integrator, rtol, atol, progress)
        info.update(stats, integrator=integrator, rtol=rtol, atol=atol)
    info["wall_time"] = time.perf_counter() - t0
    cols = {name: rows[:, j].copy() for j, name in enumerate(CORE_COLUMNS)}
    extra = {name: rows[:, len(CORE_COLUMNS) + j].copy()
             for j, name in enumerate(system.observers)}
    return Trajectory(problem=problem, method=method, t=times.astype(np.float64), **cols, extra=extra,
                      info=info, final_state={"F": F, "c": system.c, "z": system.z,
                                              "wbar": F @ system.z, "M": F @ F.T})
