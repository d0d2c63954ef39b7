"""Appendix (cell 20): initialisations interpolating from random weights to the exact
zero-loss solution.

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.figures.plot_interpolation`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from lazyrich_validation import simulate

from lazyrich_theory.core.kernels import kernel_observers
from lazyrich_theory.core.solve import solve
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.figures.common import (
    FigureData,
    as_list,
    curves_table,
    linearized,
    max_rel_dev,
)
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.timescales import first_time_below, grokking_metrics

if TYPE_CHECKING:  # pragma: no cover
    from lazyrich_theory.theory.lazy import LinearizedModel

__all__ = ["INTERP_S", "interpolated_init", "interpolation"]

#: Default interpolation parameters s (0 = random W0, 1 = the exact zero-loss solution).
INTERP_S = (0.0, 0.05, 0.2, 0.5, 0.75, 0.95)


def interpolated_init(problem: Problem, data, s: float) -> np.ndarray:
    """W0(s) = (1 - s) W_rand + s W_sol (docs/gallery.md, "Interpolation"): W_sol has rows
    +w* (first half) and -w* (second half), w* = beta sqrt(2 tau / (alpha eps)), so that at
    s = 1 wbar = 0 and (alpha eps / 2) M = tau beta beta^T: the uncentered network equals the
    teacher exactly.
    The paper's code (N = 2, alpha = 1, convention A, tau = 1/2) writes w* = beta / sqrt(eps)."""
    if not problem.finite_width or problem.N % 2:
        raise ProblemError(f"interpolation needs an even finite width N, got N={problem.N}")
    if problem.eps <= 0:
        raise ProblemError(f"interpolation needs eps > 0 (the solution is beta/sqrt(alpha eps)), "
                           f"got eps={problem.eps:g}")
    w = data.beta * math.sqrt(2.0 * problem.tau / (problem.alpha * problem.eps))
    h = problem.N // 2
    Wsol = np.vstack([np.tile(w, (h, 1)), np.tile(-w, (h, 1))])
    return (1.0 - s) * data.W0 + s * Wsol


def _check(problem: Problem, svals: Any) -> tuple[float, ...]:
    """The s values, after checking that the problem has an exact zero-loss solution W_sol."""
    if problem.centered:
        raise ProblemError("interpolation needs the uncentered loss (centered=false): "
                           "W0(1) is the zero-loss solution only for the uncentered network")
    if getattr(problem, "target", "paper") != "paper":
        raise ProblemError("interpolation needs the paper's teacher (target='paper')")
    bad = f"svals must be distinct numbers in [0, 1], got {svals!r}"
    try:
        vals = tuple(float(s) for s in as_list(svals))
    except (TypeError, ValueError):
        raise ProblemError(bad) from None
    if not vals or any(not (0.0 <= s <= 1.0) for s in vals) or len(set(vals)) != len(vals):
        raise ProblemError(bad)
    return vals


def _row(s: float, tr, lin, model: "LinearizedModel") -> dict[str, Any]:
    """The numbers of one initialisation W0(s)."""
    m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
    return {"s": s, "initial_train_loss": float(tr.train_loss[0]),
            "initial_test_loss": float(tr.test_loss[0]),
            "final_train_loss": float(tr.train_loss[-1]),
            "final_test_loss": float(tr.test_loss[-1]),
            "max_test_loss": float(np.max(tr.test_loss)),
            "train_tenth_time": first_time_below(tr.t, tr.train_loss, 0.1 * tr.train_loss[0]),
            "test_tenth_time": first_time_below(tr.t, tr.test_loss, 0.1 * tr.test_loss[0]),
            "relative_grokking_time": m["relative_grokking_time"],
            "linearized_final_test_loss": float(lin.test_loss[-1]),
            "kernel_regression_test_loss": float(model.kernel_regression(0.0).test_mse),
            "initial_alignment_test": float(tr["kernel_alignment"][0]),
            "final_alignment_test": float(tr["kernel_alignment"][-1]),
            "final_decomposition": {"variance": float(tr.variance[-1]),
                                    "misalignment": float(tr.misalignment[-1]),
                                    "linear_power": float(tr.linear_power[-1])}}


def interpolation(problem: Problem, steps: int, svals=INTERP_S, method: str = "gd",
                  network: bool = True) -> FigureData:
    """Initialisations interpolating from random W0 (s = 0) towards the exact zero-loss
    solution (s = 1): exact reduced GD with W0(s) given through ProblemData, the numpy
    network, the linearised model at each W0(s), and the paper's NTK alignment on the test
    and training sets.

    Parameters
    ----------
    problem : Problem
        Uncentered, the paper's teacher, even finite N, eps > 0.
    steps : int
    svals : sequence of float (or a comma-separated string)
        Distinct values of s in [0, 1].
    method : str
    network : bool
        Run the numpy network for each s.

    Returns
    -------
    FigureData
        ``interpolation_curves.csv``.
    """
    svals = _check(problem, svals)
    base = problem.data()
    obs = kernel_observers(("kernel_alignment", "kernel_alignment_train"))
    runs, rows, cols, t_axis = [], [], {}, None
    for s in svals:
        d = ProblemData(base.X, base.y, base.X_test, base.y_test, base.beta,
                        interpolated_init(problem, base, s), source=f"interpolation s={s:g}")
        tr = solve(problem, steps, method=method, data=d, observers=obs)
        model, lin = linearized(problem, d, tr.t, method)
        row = _row(s, tr, lin, model)
        net = simulate(problem, steps, data=d) if network else None
        if net is not None:
            # s = 1 sits at zero loss (round-off, ~1e-31): compare above 1e-20 only
            row["max_rel_dev_network_vs_reduced"] = max_rel_dev(tr, net, floor=1e-20)
        rows.append(row)
        runs.append({"s": s, "t": tr.t, "train": tr.train_loss, "test": tr.test_loss,
                     "lin_test": lin.test_loss, "alignment_test": tr["kernel_alignment"],
                     "alignment_train": tr["kernel_alignment_train"], "network": net})
        for name, v in (("train", tr.train_loss), ("test", tr.test_loss),
                        ("population", tr.population_loss), ("lin_test", lin.test_loss),
                        ("alignment_test", tr["kernel_alignment"]),
                        ("alignment_train", tr["kernel_alignment_train"])):
            cols[f"{name}_s{s:g}"] = v
        t_axis = tr.t
    return FigureData(
        result={"cells": rows},
        plot={"runs": runs, "problem": problem, "method": method, "network": network},
        tables={"interpolation_curves.csv": curves_table(t_axis, cols)})
