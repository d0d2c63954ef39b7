"""``solve_with_theory``: the exact solve plus the lazy-regime theory, as ``lazyrich solve``
writes it (kernel alignment, linearised curves, K0 baseline, time scales, grokking metrics)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich_theory.core.kernels import kernel_observers
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.solve import solve
from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.streams import is_plain_gd
from lazyrich_theory.theory.lazy import LinearizedModel, lazy_summary
from lazyrich_theory.theory.timescales import grokking_metrics, predict_timescales

__all__ = ["solve_with_theory"]


def solve_with_theory(problem: Problem, steps: int, method: str = "gd",
                      data: ProblemData | None = None, **solve_kw) -> Trajectory:
    """``core.solve.solve`` plus the lazy-regime theory, as ``lazyrich solve`` writes it:

    * column ``kernel_alignment``: the paper's alignment of the current NTK on the test set
      (``kernels.kernel_alignment``), evaluated at every save time;
    * columns ``linearized_train_loss``/``linearized_test_loss``: the model linearised at
      initialisation, in closed form, with the same method (GD when stable, else flow);
    * ``info["summary"]``: the K0 baseline, the linearised lazy peak, predicted time scales
      (``timescales.predict_timescales``) and measured grokking metrics.

    Training options: label noise enters through the training labels, so every column is
    exact for it.  The linearised model and the population ODE have no weight decay,
    momentum or minibatches; with any of them, the linearised columns are left out and ``summary`` says that
    its predicted times are those of plain GD (``theory_note``).

    Parameters
    ----------
    problem : Problem
        What to train.
    steps : int
        GD steps.
    method : str
        "gd" or "flow", as in ``solve``.
    data : ProblemData, optional
        The problem's data (default: ``problem.data()``).
    **solve_kw
        Further ``solve`` options (save_times, integrator, rtol, atol, progress, observers,
        stop).

    Returns
    -------
    Trajectory
        The solve's trajectory with the extra columns and ``info["summary"]``.
    """

    data = problem.data() if data is None else data
    observers = dict(solve_kw.pop("observers", None) or {})
    for name, fn in kernel_observers(("kernel_alignment",)).items():
        observers.setdefault(name, fn)
    traj = solve(problem, steps, method=method, data=data, observers=observers, **solve_kw)
    system = ReducedSystem.build(problem, data)

    plain = is_plain_gd(problem)
    if plain:
        model = LinearizedModel.from_system(system, population=False)
        lin_method = "gd" if method == "gd" and model.stable else "flow"
        lin = model.curves(traj.t, lin_method, test=True, population=False)
        traj = traj.with_columns(linearized_train_loss=lin.train_loss,
                                 linearized_test_loss=lin.test_loss)
    summary: dict[str, Any] = dict(lazy_summary(problem, data, system))
    if not plain:
        summary["theory_note"] = ("weight_decay/momentum/minibatch/online: the K0 baseline, "
                                  "lazy times and t* are those of full-batch plain GD "
                                  "(rich_time_population includes weight decay, not "
                                  "momentum); no linearised columns")
    ts = predict_timescales(problem, data, summary["linearized_peak_time"])
    summary.update(ts.to_dict())
    summary.update({f"measured_{k}": v for k, v in
                    grokking_metrics(traj.t, traj.train_loss, traj.test_loss).items()})
    summary["initial_test_loss"] = float(traj.test_loss[0])
    summary["max_test_loss"] = float(np.max(traj.test_loss))
    return traj.with_info(summary={k: (None if isinstance(v, float) and not math.isfinite(v)
                                       else v) for k, v in summary.items()})
