"""Figures 3(a), 3(b), Goldilocks (curves for a sweep of one parameter) and 3(e) (the phase
diagram over alpha and eps).

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.figures.plot_sweep_curves` and
:func:`lazyrich_theory.plotting.phase.plot_phase`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich_theory.core.solve import solve
from lazyrich_theory.experiments.figures.common import FigureData, as_list, curves_table
from lazyrich_theory.experiments.sweep import sweep
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline.implicit_bias import interpolant_limit
from lazyrich_theory.theory.timescales import grokking_metrics, predict_timescales

__all__ = ["FIG3A_ALPHAS", "FIG3B_EPS", "GOLDILOCKS_P", "fig3a", "fig3b", "goldilocks", "fig3e",
           "sweep_curves"]

#: Default alphas of Figure 3(a).
FIG3A_ALPHAS = tuple(2.0**k for k in range(-5, 5))   # 2^-5 ... 16 (the paper omits 32)
#: Default eps values of Figure 3(b) (from the students' version of the code).
FIG3B_EPS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Default numbers of training points P of the Goldilocks figure.
GOLDILOCKS_P = (50, 120, 500)

#: Problem fields whose change draws new data (the other sweeps share one data set).
_NEW_DATA = ("P", "D", "N", "seed", "test_size")


def fig3a(problem: Problem, steps: int, alphas=FIG3A_ALPHAS, method: str = "flow") -> FigureData:
    """Figure 3(a): train and test loss, each normalised by its initial value, for a sweep of
    alpha (convention B); the online ODE's transition time for each alpha.

    Parameters
    ----------
    problem : Problem
    steps : int
    alphas : sequence of float (or a comma-separated string)
    method : str

    Returns
    -------
    FigureData
        ``fig3a_curves.csv``.
    """
    return sweep_curves(problem, steps, "alpha", alphas, method, "fig3a")


def fig3b(problem: Problem, steps: int, epss=FIG3B_EPS, method: str = "flow") -> FigureData:
    """Figure 3(b): the same for a sweep of eps (values from the students' version; the
    paper's eps-sweep code is missing).

    Parameters
    ----------
    problem : Problem
    steps : int
    epss : sequence of float (or a comma-separated string)
    method : str

    Returns
    -------
    FigureData
        ``fig3b_curves.csv``.
    """
    return sweep_curves(problem, steps, "eps", epss, method, "fig3b")


def goldilocks(problem: Problem, steps: int, Ps=GOLDILOCKS_P, method: str = "gd") -> FigureData:
    """Goldilocks appendix: a sweep of the number of training points P (grokking needs P
    neither too small nor too large); losses not normalised.  Each P also gets the theory of
    where its flow ends: the mirror-descent interpolant's tau -> inf population loss of that
    training set at N = inf (docs/offline_theory.md §15), ``predicted_limit_test_loss`` in
    ``result["cells"]`` (relative to the initial population loss; None with
    ``predicted_limit_test_loss_reason`` where it does not apply, e.g. P <= D), drawn as an
    open diamond at the horizon (times the curve's initial test loss).

    Parameters
    ----------
    problem : Problem
    steps : int
    Ps : sequence of int (or a comma-separated string)
    method : str

    Returns
    -------
    FigureData
        ``goldilocks_curves.csv``.
    """
    return sweep_curves(problem, steps, "P", Ps, method, "goldilocks", normalise=False,
                        limit=True)


def _values(problem: Problem, param: str, values: Any) -> list:
    """The swept values; strings (from ``--set``) converted to the field's type."""
    kind = type(getattr(problem, param))
    return [kind(float(v)) if isinstance(v, str) else v for v in as_list(values)]


def sweep_curves(problem: Problem, steps: int, param: str, values: Any, method: str,
                 name: str, normalise: bool = True, limit: bool = False) -> FigureData:
    """Train and test curves for a sweep of one problem parameter, with the online ODE's
    transition time and the grokking metrics of each value.

    Parameters
    ----------
    problem : Problem
        The base problem.
    steps : int
    param : str
        The swept Problem field.
    values : sequence
    method : str
    name : str
        The figure's name (``{name}_curves.csv``).
    normalise : bool
        Divide each loss curve by its initial value.
    limit : bool
        Add the interpolant's tau -> inf loss of each value (:func:`goldilocks`).

    Returns
    -------
    FigureData
        ``result["cells"]``: one row per value; ``plot``: the curves.
    """
    same_data = param not in _NEW_DATA
    data = problem.data() if same_data else None
    rows, runs, cols, t_axis = [], [], {}, None
    for value in _values(problem, param, values):
        p = problem.replace(**{param: type(getattr(problem, param))(value)})
        d = data if same_data else p.data()
        tr = solve(p, steps, method=method, data=d)
        ts = predict_timescales(p, d)
        m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
        rows.append({param: value, **{k: m[k] for k in ("test_half_time", "final_test_loss",
                                                        "peak_test_over_initial")},
                     "predicted_rich_time_population": ts.rich_time_population})
        train = tr.train_loss / (tr.train_loss[0] if normalise else 1.0)
        test = tr.test_loss / (tr.test_loss[0] if normalise else 1.0)
        runs.append({"value": value, "t": tr.t, "train": train, "test": test,
                     "rich_time": ts.rich_time_population})
        if limit:
            rel, why = interpolant_limit(p.replace(N=math.inf), d)
            rows[-1]["predicted_limit_test_loss"] = rel
            if why is not None:
                rows[-1]["predicted_limit_test_loss_reason"] = why
            runs[-1]["limit"] = None if rel is None else rel * float(test[0])
        cols[f"train_{param}_{value:g}"] = train
        cols[f"test_{param}_{value:g}"] = test
        t_axis = tr.t
    return FigureData(
        result={"cells": rows},
        plot={"runs": runs, "param": param, "problem": problem, "method": method,
              "steps": steps, "normalise": normalise},
        tables={f"{name}_curves.csv": curves_table(t_axis, cols)})


def fig3e(problem: Problem, steps: int, n_alpha: int = 14, n_eps: int = 14,
          workers: int | None = None, *, out: str) -> FigureData:
    """Figure 3(e): the grokking phase diagram over alpha = 0.4..5.6 and eps = 0.02..0.28.

    The sweep is resumable: it keeps its cells in (and writes its own files to) ``out``.

    Parameters
    ----------
    problem : Problem
    steps : int
    n_alpha, n_eps : int
        Grid size.
    workers : int, optional
        Worker processes of the sweep.
    out : str
        The sweep's folder.

    Returns
    -------
    FigureData
        ``plot["res"]``: the :class:`~lazyrich_theory.experiments.sweep.PhaseResult`.
    """
    alphas = np.linspace(0.4, 5.6, n_alpha)
    epss = np.linspace(0.02, 0.28, n_eps)
    res = sweep(problem, {"alpha": alphas, "eps": epss}, steps, out=out, workers=workers,
                progress=False)
    return FigureData(result={"cells": int(alphas.size * epss.size), "stats": res.stats},
                      plot={"res": res})
