"""Beyond the paper: variants of the Figure 4 setup (``sgd``: full batch vs minibatch vs online
SGD; ``options``: weight decay, momentum, label noise), same data and initialisation.

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.figures.plot_variants`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from lazyrich_theory.core.solve import solve
from lazyrich_theory.experiments.figures.common import FigureData, curves_table
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.timescales import grokking_metrics

__all__ = ["SGD_VARIANTS", "OPTION_VARIANTS", "sgd", "options", "variant_curves"]

#: (label, Problem fields) of each curve of the ``sgd`` figure.
SGD_VARIANTS = (("full-batch GD", {}), ("minibatch B = 10", {"batch_size": 10}),
                ("minibatch B = 3", {"batch_size": 3}), ("minibatch B = 1", {"batch_size": 1}),
                ("online SGD, B = P", {"online": True}))
#: (label, Problem fields) of each curve of the ``options`` figure.
OPTION_VARIANTS = (("plain GD", {}), ("weight decay λ = 1e-3", {"weight_decay": 1e-3}),
                   ("momentum μ = 0.9", {"momentum": 0.9}), ("label noise σ = 0.1", {"noise": 0.1}),
                   ("label noise σ = 0.3", {"noise": 0.3}))


def sgd(problem: Problem, steps: int) -> FigureData:
    """Full-batch GD vs minibatch and online SGD on the same data and initialisation
    (docs/sgd.md); online SGD has no grokking delay.

    Parameters
    ----------
    problem : Problem
    steps : int

    Returns
    -------
    FigureData
        ``sgd_curves.csv``.
    """
    return variant_curves(problem, steps, SGD_VARIANTS, "sgd")


def options(problem: Problem, steps: int) -> FigureData:
    """Weight decay, momentum and label noise change the grokking delay (docs/theory.md §9).

    Parameters
    ----------
    problem : Problem
    steps : int

    Returns
    -------
    FigureData
        ``options_curves.csv``.
    """
    return variant_curves(problem, steps, OPTION_VARIANTS, "options")


def _examples_per_step(p: Problem) -> int:
    if p.online:
        return p.batch_size or p.P
    return min(p.batch_size or p.P, p.P)


def variant_curves(problem: Problem, steps: int, variants: Sequence[tuple[str, dict[str, Any]]],
                   name: str) -> FigureData:
    """Train and test loss of variants of one problem (exact GD map each) and the paper's
    grokking metrics.

    Parameters
    ----------
    problem : Problem
        The base problem.
    steps : int
    variants : sequence of (label, {Problem field: value})
    name : str
        The figure's name (``{name}_curves.csv``).

    Returns
    -------
    FigureData
        ``result["variants"]``: one row per variant; ``plot``: the curves.
    """
    rows, runs, cols, t_axis = [], [], {}, None
    for label, changes in variants:
        p = problem.replace(**changes)
        tr = solve(p, steps, method="gd")
        m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
        rows.append({"variant": label, **changes, "paper_grokking_time": m["paper_grokking_time"],
                     "train_time": m["train_time"], "test_time": m["test_time"],
                     "final_train_loss": m["final_train_loss"],
                     "final_test_loss": m["final_test_loss"]})
        runs.append({"label": label, "t": tr.t, "train": tr.train_loss, "test": tr.test_loss,
                     "delay": m["paper_grokking_time"], "reached": math.isfinite(m["test_time"]),
                     "online": p.online, "batch": _examples_per_step(p)})
        key = label.replace(" ", "_").replace(",", "")
        cols[f"train_{key}"] = tr.train_loss
        cols[f"test_{key}"] = tr.test_loss
        t_axis = tr.t
    return FigureData(result={"variants": rows}, plot={"runs": runs, "problem": problem},
                      tables={f"{name}_curves.csv": curves_table(t_axis, cols)})
