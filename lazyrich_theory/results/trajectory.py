"""The result of a run: a typed, saveable, plottable trajectory.

A :class:`Trajectory` holds, at each save time ``t`` (in GD steps), the losses, the
population test-loss decomposition and the statistics a theorist tracks.  ``save(dir)``
writes ``trajectory.csv``, ``problem.json``, ``run.json``, ``trajectory.png`` and (if known)
the final state ``state.npz``; :func:`load` reads a folder back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.stats import SolverStats
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.storage import (
    jsonable,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_npz,
    read_csv,
)

__all__ = ["Trajectory", "CORE_COLUMNS", "load"]

#: Columns every trajectory carries, in CSV order (after ``t``).
CORE_COLUMNS = (
    "train_loss",       # (1/P) sum_mu (ftilde(x_mu) - y_mu)^2
    "test_loss",        # same on the finite test set
    "population_loss",  # E_x[(ftilde - y)^2], exact (= variance + misalignment + linear_power)
    "variance",         # (tr Delta)^2 / D^2
    "misalignment",     # 2 tr(Delta^2) / D^2
    "linear_power",     # |v|^2 / D
    "alignment",        # betahat^T (M - M0) betahat
    "trace_dM",         # tr(M - M0) / D
    "frob_dM",          # ||M - M0||_F
    "norm_dwbar",       # ||wbar - wbar0||
)


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Save-time series of one run.  Every column is a float64 array aligned with ``t``."""

    problem: Problem
    method: str
    t: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    population_loss: np.ndarray
    variance: np.ndarray
    misalignment: np.ndarray
    linear_power: np.ndarray
    alignment: np.ndarray
    trace_dM: np.ndarray
    frob_dM: np.ndarray
    norm_dwbar: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    final_state: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.t)
        for name in CORE_COLUMNS + tuple(self.extra):
            a = self[name]
            if len(a) != n:
                raise ValueError(f"column {name} has {len(a)} rows, t has {n}")

    # ------------------------------------------------------------------ access
    @property
    def columns(self) -> tuple[str, ...]:
        """All column names after ``t``, in CSV order."""
        return CORE_COLUMNS + tuple(self.extra)

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "t":
            return self.t
        if name in CORE_COLUMNS:
            return getattr(self, name)
        if name in self.extra:
            return self.extra[name]
        raise KeyError(name)

    def at(self, t: float) -> dict[str, float]:
        """All columns at save time ``t`` (must be one of the save times)."""
        idx = np.flatnonzero(self.t == t)
        if idx.size == 0:
            raise KeyError(f"t={t} is not a save time")
        i = int(idx[0])
        return {name: float(self[name][i]) for name in ("t",) + self.columns}

    def with_columns(self, **cols: np.ndarray) -> "Trajectory":
        """A copy with extra columns added (or replaced)."""
        extra = dict(self.extra)
        extra.update({k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})
        return dataclasses.replace(self, extra=extra)

    def with_info(self, **info: Any) -> "Trajectory":
        """A copy whose ``info`` has these keys added (or replaced); this one is unchanged.

        Parameters
        ----------
        **info
            Keys and JSON-able values, e.g. ``summary={...}`` (written to summary.json).

        Returns
        -------
        Trajectory
            The same columns and state (shared, not copied) with the new ``info``.
        """
        return dataclasses.replace(self, info={**self.info, **info})

    @property
    def stats(self) -> SolverStats:
        """The solver statistics in ``info`` (steps, wall time, integrator work, ...), typed."""
        return SolverStats.from_info(self.info)

    # ------------------------------------------------------------------ storage
    def save(self, folder: str | os.PathLike, data=None, plot: bool = True,
             overwrite: bool = False) -> None:
        """Write the trajectory to ``folder`` (created if needed); each file atomically.

        Files: trajectory.csv, problem.json, run.json, state.npz (final state, if known),
        summary.json (if ``info["summary"]``), data.npz (if ``data`` is given) and
        trajectory.png (if ``plot``).  A folder that already holds results of a *different*
        problem is refused (ProblemError) unless ``overwrite``; with ``overwrite`` the optional
        files this save does not write (summary.json, state.npz, data.npz, trajectory.png)
        are removed, so the folder never mixes two runs.
        """
        folder = os.fspath(folder)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ProblemError(f"{folder} exists and is not a folder")
        old = os.path.join(folder, "problem.json")
        if not overwrite and os.path.isfile(os.path.join(folder, "trajectory.csv")):
            try:
                with open(old) as f:
                    same = json.load(f) == json.loads(json.dumps(self.problem.to_dict()))
            except (OSError, ValueError):
                same = False
            if not same:
                raise ProblemError(f"{folder} already holds results of a different problem; "
                                   "use another folder or overwrite=True")
        os.makedirs(folder, exist_ok=True)
        if overwrite:
            keep = {"summary.json": "summary" in self.info, "state.npz": self.final_state is not None,
                    "data.npz": data is not None, "trajectory.png": plot}
            for name, written in keep.items():
                path = os.path.join(folder, name)
                if not written and os.path.isfile(path):
                    os.remove(path)
        if data is not None:
            data.save(os.path.join(folder, "data.npz"))
        if self.final_state is not None:
            atomic_write_npz(os.path.join(folder, "state.npz"), self.final_state)
        atomic_write_json(os.path.join(folder, "problem.json"), self.problem.to_dict())
        atomic_write_json(os.path.join(folder, "run.json"),
                          {"method": self.method, **jsonable(self.info)})
        if "summary" in self.info:
            atomic_write_json(os.path.join(folder, "summary.json"), jsonable(self.info["summary"]))
        header = ("t",) + self.columns
        atomic_write_csv(os.path.join(folder, "trajectory.csv"), header,
                         [self[h] for h in header])
        if plot:
            from lazyrich_theory.plotting.trajectory import plot_trajectory

            plot_trajectory(self, os.path.join(folder, "trajectory.png"))

    def plot(self, path: str | os.PathLike | None = None, **kw):
        """Two panels: log-time train/test/population loss, and the loss decomposition."""
        from lazyrich_theory.plotting.trajectory import plot_trajectory

        return plot_trajectory(self, path, **kw)


def load(folder: str | os.PathLike) -> Trajectory:
    """Read a trajectory folder written by :meth:`Trajectory.save` (or the CLI)."""
    folder = os.fspath(folder)
    csv_path = os.path.join(folder, "trajectory.csv")
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"no trajectory.csv in {folder}")
    cols = read_csv(csv_path)
    with open(os.path.join(folder, "problem.json")) as f:
        problem = Problem.from_dict(json.load(f))
    info: dict[str, Any] = {}
    run_path = os.path.join(folder, "run.json")
    if os.path.isfile(run_path):
        with open(run_path) as f:
            info = json.load(f)
    method = str(info.pop("method", "unknown"))
    missing = [c for c in ("t",) + CORE_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"{csv_path} lacks column(s): {', '.join(missing)}")
    extra = {k: v for k, v in cols.items() if k != "t" and k not in CORE_COLUMNS}
    state = None
    state_path = os.path.join(folder, "state.npz")
    if os.path.isfile(state_path):
        with np.load(state_path) as f:
            state = {k: f[k] for k in f.files}
    return Trajectory(problem=problem, method=method, t=cols["t"],
                      **{c: cols[c] for c in CORE_COLUMNS}, extra=extra, info=info,
                      final_state=state)
