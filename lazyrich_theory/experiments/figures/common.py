"""What every figure's computation shares: the :class:`FigureData` it returns, and small helpers.

A compute function ``compute(problem, steps, **options) -> FigureData`` runs the solver (and
the numpy network, the theory) and returns numbers and arrays only: it never draws and never
writes.  The registry (:mod:`lazyrich_theory.experiments.figures.registry`) writes the data
files and ``figure.json`` and hands :attr:`FigureData.plot` to the figure's drawing function
in :mod:`lazyrich_theory.plotting.figures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.theory.lazy import LinearizedModel

if TYPE_CHECKING:  # pragma: no cover
    from lazyrich_theory.results.trajectory import Trajectory
    from lazyrich_theory.spec.data import ProblemData
    from lazyrich_theory.spec.problem import Problem

__all__ = ["FigureData", "curves_table", "max_rel_dev", "as_list", "sequence_of",
           "linearized"]

#: A CSV file's content: its header and one column per header entry.
Table = tuple[tuple[str, ...], list]


@dataclass(frozen=True)
class FigureData:
    """The result of a figure's computation.

    Attributes
    ----------
    result : dict
        The numbers quoted for the figure (``figure.json``'s ``result``).
    plot : dict
        Keyword arguments of the figure's drawing function.
    tables : dict
        CSV files to write: file name -> (header, columns).
    arrays : dict
        NPZ files to write: file name -> {array name: array}.
    runs : dict
        Trajectory folders to write: folder name -> (trajectory, data saved with it or None).
    """

    result: dict[str, Any]
    plot: dict[str, Any]
    tables: dict[str, Table] = field(default_factory=dict)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    runs: dict[str, tuple["Trajectory", "ProblemData | None"]] = field(default_factory=dict)


def curves_table(t: np.ndarray, columns: Mapping[str, np.ndarray]) -> Table:
    """A ``*_curves.csv`` table: the time column ``t``, then ``columns`` in order.

    Parameters
    ----------
    t : array
    columns : mapping of str to array

    Returns
    -------
    tuple
        (header, columns) for :func:`lazyrich_theory.storage.atomic_write_csv`.
    """
    return ("t",) + tuple(columns), [t] + list(columns.values())


def max_rel_dev(a: "Trajectory", b: "Trajectory", floor: float = 1e-300) -> float:
    """Max relative deviation of the train/test losses of ``a`` from ``b`` at common times.

    Parameters
    ----------
    a, b : Trajectory
    floor : float
        Losses below it (round-off level) are compared in absolute terms against ``floor``.

    Returns
    -------
    float
    """
    _, ia, ib = np.intersect1d(a.t, b.t, return_indices=True)
    dev = 0.0
    for col in ("train_loss", "test_loss"):
        x, y = a[col][ia], b[col][ib]
        dev = max(dev, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), floor))))
    return dev


def as_list(v: Any) -> list:
    """A figure option given as a sequence, a scalar or a comma-separated string (``--set``).

    Parameters
    ----------
    v : sequence, scalar or str

    Returns
    -------
    list
    """
    if isinstance(v, str):
        return [p.strip() for p in v.split(",") if p.strip()]
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return [v]


def sequence_of(runs: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``[r[key] for r in runs]`` as a float array (NaN where a run lacks the key)."""
    return np.array([r.get(key, np.nan) for r in runs], dtype=float)


def linearized(problem: "Problem", data: "ProblemData", t: np.ndarray, method: str):
    """The linearised (lazy) model of ``problem`` on ``data`` and its train/test curves at ``t``.

    Parameters
    ----------
    problem : Problem
    data : ProblemData
    t : array
        Save times of the run it is compared with.
    method : str
        The run's method: the model follows the GD map when the run does and the map is
        stable, else gradient flow.

    Returns
    -------
    (LinearizedModel, curves)
    """
    model = LinearizedModel.from_system(ReducedSystem.build(problem, data), population=False)
    lin = model.curves(t, "gd" if method == "gd" and model.stable else "flow", population=False)
    return model, lin
