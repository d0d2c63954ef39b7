"""Figures 1, 4 and 12: single runs of the exact reduced dynamics next to the numpy network.

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.figures.plot_network_check` and
:func:`~lazyrich_theory.plotting.figures.plot_trained_readouts`.
"""

from __future__ import annotations

from lazyrich_validation import simulate

from lazyrich_theory.core.solve import solve
from lazyrich_theory.experiments.figures.common import FigureData, max_rel_dev
from lazyrich_theory.experiments.with_theory import solve_with_theory
from lazyrich_theory.spec.problem import Problem

__all__ = ["fig1", "fig4", "fig12"]


def fig1(problem: Problem, steps: int, network_steps: int | None = None,
         method: str = "gd") -> FigureData:
    """Figure 1: the network (exact reduced GD), the linearised model, the K0 line and the
    paper's NTK alignment; the actual numpy network over its first steps.

    Parameters
    ----------
    problem : Problem
    steps : int
    network_steps : int, optional
        Horizon of the numpy network (default min(steps, 2000)).
    method : str
        Of the reduced solver ("gd" or "flow").

    Returns
    -------
    FigureData
        Folders ``reduced`` (with data.npz) and ``network``.
    """
    data = problem.data()
    tr = solve_with_theory(problem, steps, method=method, data=data)
    n_net = min(steps, 2000) if network_steps is None else min(steps, network_steps)
    net = simulate(problem, n_net, data=data)
    return FigureData(
        result={"summary": tr.info["summary"], "network_steps": n_net,
                "max_rel_dev_network_vs_reduced": max_rel_dev(tr, net)},
        plot={"reduced": tr, "network": net, "network_steps": n_net},
        runs={"reduced": (tr, data), "network": (net, None)})


def fig4(problem: Problem, steps: int) -> FigureData:
    """Figure 4: N = 2 network, loss decomposition; reduced GD with the full numpy network.

    Parameters
    ----------
    problem : Problem
    steps : int

    Returns
    -------
    FigureData
        Folders ``reduced`` (with data.npz) and ``network``.
    """
    data = problem.data()
    tr = solve(problem, steps, method="gd", data=data)   # exact: the overlay shows the match
    net = simulate(problem, steps, data=data)
    return FigureData(
        result={"max_rel_dev_network_vs_reduced": max_rel_dev(tr, net),
                "final_test_loss": float(tr.test_loss[-1]),
                "max_test_loss": float(tr.test_loss.max())},
        plot={"reduced": tr, "network": net},
        runs={"reduced": (tr, data), "network": (net, None)})


def fig12(problem: Problem, steps: int) -> FigureData:
    """Figure 12: trained readouts (numpy network) next to the exact reduced dynamics with
    fixed readouts -- trained readouts do not close on (wbar, M), so the network is the only
    route; the reduced curve shows what the readouts change.

    Parameters
    ----------
    problem : Problem
    steps : int

    Returns
    -------
    FigureData
        Folders ``network_trained_readouts`` and ``reduced_fixed_readouts``.
    """
    data = problem.data()
    net = simulate(problem, steps, data=data, train_readouts=True)
    fixed = solve(problem, steps, data=data)
    return FigureData(
        result={"final_test_trained_readouts": float(net.test_loss[-1]),
                "final_test_fixed_readouts": float(fixed.test_loss[-1])},
        plot={"network": net, "fixed": fixed},
        runs={"network_trained_readouts": (net, None), "reduced_fixed_readouts": (fixed, None)})
