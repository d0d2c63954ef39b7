"""``lazyrich compare DIR_A DIR_B [--columns ...]``: the maximum relative deviation between two
result folders, on their common save times (e.g. ``solve`` against ``simulate``)."""

from __future__ import annotations

import argparse
import csv
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
    s = subparsers.add_parser("compare", help="max relative deviation between two result folders",
                              description="The maximum relative deviation between two result "
                                          "folders on their common save times (e.g. solve "
                                          "against simulate).")
    s.add_argument("dir_a", metavar="DIR_A",
                   help="a result folder (holding trajectory.csv), e.g. of lazyrich solve")
    s.add_argument("dir_b", metavar="DIR_B",
                   help="the folder to compare it with, e.g. of lazyrich simulate")
    s.add_argument("--columns", type=str, default="train_loss,test_loss,population_loss",
                   help="comma-separated columns to compare (default "
                        "train_loss,test_loss,population_loss)")


def _check_csv(path: str) -> None:
    """ProblemError naming what is wrong with a trajectory CSV that is not a clean table of
    numbers under a header starting with ``t`` (empty, not a table, ragged, non-numeric)."""
    try:
        with open(path, newline="", errors="replace") as f:
            rows = list(csv.reader(f))
    except (OSError, csv.Error) as exc:
        raise ProblemError(f"cannot read {path}: {exc}") from None
    if not rows or not any(rows[0]):
        raise ProblemError(f"{path} is empty")
    header = rows[0]
    if header[0].strip() != "t":
        shown = ",".join(header)[:40]
        raise ProblemError(f"{path} is not a trajectory table: its header must start with "
                           f"column t, found {shown!r}")
    if len(rows) == 1:
        raise ProblemError(f"{path} has a header but no rows")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ProblemError(f"{path} line {i} has {len(row)} fields, the header "
                               f"{len(header)} (truncated or damaged file)")
        for name, cell in zip(header, row):
            try:
                float(cell)
            except ValueError:
                raise ProblemError(f"{path} line {i}, column {name}: {cell[:20]!r} is not a "
                                   "number") from None


def _load(dirs: tuple[str, str], cols: tuple[str, ...]) -> list[Trajectory]:
    """Both folders' trajectories; ProblemError if one is missing, damaged or lacks a column."""
    trajs = []
    for d in dirs:
        if not os.path.isdir(d):
            raise ProblemError(f"{d} is not a folder" if os.path.exists(d)
                               else f"no such folder: {d}")
        path = os.path.join(d, "trajectory.csv")
        if not os.path.isfile(path):
            raise ProblemError(f"{d} holds no trajectory.csv")
        _check_csv(path)
        trajs.append(load(d))
    for c in cols:
        for tr, d in zip(trajs, dirs):
            if c != "t" and c not in tr.columns:
                raise ProblemError(f"column {c!r} is not in {d}/trajectory.csv")
    return trajs


def _columns(text: str) -> tuple[str, ...]:
    """The ``--columns`` names; ProblemError for an empty list or item."""
    cols = tuple(c.strip() for c in text.split(","))
    if not any(cols):
        raise ProblemError("--columns: no column names given (e.g. train_loss,test_loss)")
    if not all(cols):
        raise ProblemError(f"--columns: empty name in {text!r}")
    return cols


def run_compare(args: argparse.Namespace) -> int:
    """Print the deviation between ``args.dir_a`` and ``args.dir_b`` (one line per column).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the parser :func:`add_compare_parser` registered.

    Returns
    -------
    int
        The exit code (0).  A missing or damaged folder or column, and a non-finite value on
        one side only (NaN against a number: the deviation is undefined), raise
        :class:`~lazyrich_theory.errors.ProblemError` (exit 2, nothing printed on stdout).
    """
    # the independent network's comparison is loaded only for this command
    from lazyrich_validation.compare import max_relative_deviation

    cols = _columns(args.columns)
    trajs = _load((args.dir_a, args.dir_b), cols)
    note = None
    if any(tr.problem.target != "paper" for tr in trajs) and "population_loss" in cols:
        nan_in = [np.isnan(np.asarray(tr["population_loss"], float)).all() for tr in trajs]
        if any(nan_in):     # the network's population loss is defined for the paper teacher only
            cols = tuple(c for c in cols if c != "population_loss")
            note = ("note: population_loss skipped (not computed by the network for target "
                    f"{trajs[nan_in.index(True)].problem.target!r})")
    if not cols:
        raise ProblemError("no column left to compare (population_loss is not computed by the "
                           "network for this target)")
    res = max_relative_deviation(trajs[0], trajs[1], columns=cols)
    bad = res.get("nonfinite")
    if bad is not None:
        raise ProblemError(f"cannot compare {bad['column']} at t={bad['t']:g}: {args.dir_a} has "
                           f"{bad['a']:.6g}, {args.dir_b} has {bad['b']:.6g} (a non-finite "
                           "value on one side: the relative deviation is undefined)")
    if note:
        print(note)
    print(f"max relative deviation: {res['max']:.6e}")
    for c, v in res["per_column"].items():
        print(f"  {c}: {v:.6e}")
    print(f"  ({res['n_times']} common save times; worst at t={res['worst']['t']:g} "
          f"in {res['worst']['column']})")
    return 0
