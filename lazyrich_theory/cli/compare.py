"""``lazyrich compare DIR_A DIR_B [--columns ...]``: the maximum relative deviation between two
result folders, on their common save times (e.g. ``solve`` against ``simulate``)."""

from __future__ import annotations

import argparse
import os

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import Trajectory, load

__all__ = ["add_compare_parser", "run_compare"]


def add_compare_parser(subparsers) -> None:
    """Register ``compare`` on the ``lazyrich`` subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``add_subparsers`` returned on the ``lazyrich`` parser.
    """
    s = subparsers.add_parser("compare", help="max relative deviation between two result folders")
    s.add_argument("dir_a")
    s.add_argument("dir_b")
    s.add_argument("--columns", type=str, default="train_loss,test_loss,population_loss",
                   help="comma-separated columns to compare")


def _load(dirs: tuple[str, str], cols: tuple[str, ...]) -> list[Trajectory]:
    """Both folders' trajectories; ProblemError if one is missing or lacks a column."""
    trajs = []
    for d in dirs:
        if not os.path.isfile(os.path.join(d, "trajectory.csv")):
            raise ProblemError(f"{d} holds no trajectory.csv")
        trajs.append(load(d))
    for c in cols:
        for tr, d in zip(trajs, dirs):
            if c != "t" and c not in tr.columns:
                raise ProblemError(f"column {c!r} is not in {d}/trajectory.csv")
    return trajs


def run_compare(args: argparse.Namespace) -> int:
    """Print the deviation between ``args.dir_a`` and ``args.dir_b`` (one line per column).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the parser :func:`add_compare_parser` registered.

    Returns
    -------
    int
        The exit code (0); a missing folder or column raises
        :class:`~lazyrich_theory.errors.ProblemError`.
    """
    # the independent network's comparison is loaded only for this command
    from lazyrich_validation.compare import max_relative_deviation

    cols = tuple(c.strip() for c in args.columns.split(",") if c.strip())
    trajs = _load((args.dir_a, args.dir_b), cols)
    if any(tr.problem.target != "paper" for tr in trajs) and "population_loss" in cols:
        nan_in = [np.isnan(np.asarray(tr["population_loss"], float)).all() for tr in trajs]
        if any(nan_in):     # the network's population loss is defined for the paper teacher only
            cols = tuple(c for c in cols if c != "population_loss")
            print("note: population_loss skipped (not computed by the network for target "
                  f"{trajs[nan_in.index(True)].problem.target!r})")
    res = max_relative_deviation(trajs[0], trajs[1], columns=cols)
    print(f"max relative deviation: {res['max']:.6e}")
    for c, v in res["per_column"].items():
        print(f"  {c}: {v:.6e}")
    print(f"  ({res['n_times']} common save times; worst at t={res['worst']['t']:g} "
          f"in {res['worst']['column']})")
    return 0
