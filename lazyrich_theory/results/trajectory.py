"""The result of a run: a typed, saveable, plottable trajectory.

A :class:`Trajectory` holds, at each save time ``t`` (in GD steps), the losses, the
population test-loss decomposition and the statistics a theorist tracks.  ``save(dir)``
writes ``trajectory.csv``, ``problem.json``, ``run.json``, ``trajectory.png`` and (if known)
the final state ``state.npz``; :func:`load` reads a folder back.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.stats import SolverStats
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.storage import (
    atomic_write_csv,
    atomic_write_json,
    atomic_write_npz,
    folder_transaction,
    jsonable,
    read_csv,
    recover_folder,
    verify_folder,
)

__all__ = ["Trajectory", "CORE_COLUMNS", "load", "from_xarray"]

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
    """Save-time series of one run.  Every column is a float64 array aligned with ``t``.

    Frozen: ``info`` is a read-only mapping (use :meth:`with_info` for a changed copy).  In a
    notebook the object shows a one-screen summary; :meth:`to_pandas` / :meth:`to_xarray` give
    labelled tables, :meth:`at` the values at any time, :meth:`plot` a figure.
    """

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
    extra: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    info: Mapping[str, Any] = field(default_factory=dict, repr=False)
    final_state: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.t)
        for name in CORE_COLUMNS + tuple(self.extra):
            a = self[name]
            if len(a) != n:
                raise ValueError(f"column {name} has {len(a)} rows, t has {n}")
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        p = self.problem
        last = {c: float(self[c][-1]) for c in ("train_loss", "test_loss", "population_loss")}
        return (f"Trajectory(method={self.method!r}, D={p.D}, P={p.P}, N={p.N}, "
                f"alpha={p.alpha:g}, eps={p.eps:g}, eta0={p.eta0:g}, {len(self.t)} save times "
                f"t={self.t[0]:g}..{self.t[-1]:g}, final train/test/population loss "
                f"{last['train_loss']:.4g}/{last['test_loss']:.4g}/{last['population_loss']:.4g}, "
                f"columns={list(self.columns)})")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(c)}</td><td>{self[c][0]:.4g}</td><td>{self[c][-1]:.4g}</td></tr>"
            for c in self.columns)
        head = html.escape(repr(self).split(", columns=")[0] + ")")
        return (f"<div><p><code>{head}</code></p><table><tr><th>column</th>"
                f"<th>t = {self.t[0]:g}</th><th>t = {self.t[-1]:g}</th></tr>{rows}</table></div>")

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

    def at(self, t: float, exact: bool = False) -> dict[str, float]:
        """All columns at time ``t``.

        Parameters
        ----------
        t : float
            A time in GD steps within the saved range.
        exact : bool
            If True, ``t`` must be a save time (``KeyError`` otherwise).  If False (default),
            a save time gives its stored row and any other time a linear interpolation in
            ``log(1 + t)`` between the two neighbouring save times (the save grid is
            log-spaced).

        Returns
        -------
        dict
            ``{"t": t, column: value, ...}``.
        """
        t = float(t)
        idx = np.flatnonzero(self.t == t)
        if idx.size:
            i = int(idx[0])
            return {name: float(self[name][i]) for name in ("t",) + self.columns}
        if exact:
            raise KeyError(f"t={t:g} is not a save time (use exact=False to interpolate)")
        if not self.t[0] <= t <= self.t[-1]:
            raise ProblemError(f"t={t:g} is outside the saved range "
                               f"[{self.t[0]:g}, {self.t[-1]:g}]")
        x, grid = np.log1p(t), np.log1p(self.t)
        return {"t": t, **{name: float(np.interp(x, grid, self[name])) for name in self.columns}}

    # ------------------------------------------------------------------ labelled data
    def to_pandas(self):
        """The columns as a ``pandas.DataFrame`` indexed by ``t``; ``df.attrs`` holds the
        problem's fields and the method."""
        import pandas as pd   # imported on use: pandas adds ~0.3 s to the package's import

        df = pd.DataFrame({c: self[c] for c in self.columns},
                          index=pd.Index(self.t, name="t"))
        df.attrs.update(problem=self.problem.to_dict(), method=self.method)
        return df

    def to_xarray(self):
        """The columns as an ``xarray.Dataset`` on the coordinate ``t``, with the problem's
        fields, the method and the run info as attributes (NetCDF-safe:
        ``ds.to_netcdf(path)``; :func:`from_xarray` reads it back)."""
        import xarray as xr   # imported on use (start-up time)

        attrs = {"method": self.method, "problem": self.problem.to_json(),
                 "info": json.dumps(jsonable(dict(self.info)), sort_keys=True)}
        for k, v in self.problem.to_dict().items():
            if isinstance(v, bool):
                attrs[f"problem_{k}"] = int(v)
            elif isinstance(v, (int, float, str)):
                attrs[f"problem_{k}"] = v
        return xr.Dataset({c: ("t", np.asarray(self[c])) for c in self.columns},
                          coords={"t": ("t", np.asarray(self.t))}, attrs=attrs)

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
        return dataclasses.replace(self, info={**dict(self.info), **info})

    @property
    def stats(self) -> SolverStats:
        """The solver statistics in ``info`` (steps, wall time, integrator work, ...), typed."""
        return SolverStats.from_info(self.info)

    # ------------------------------------------------------------------ storage
    def save(self, folder: str | os.PathLike, data=None, plot: bool = True,
             overwrite: bool = False) -> None:
        """Write the trajectory to ``folder``, all files or none (a folder transaction).

        Files: trajectory.csv, problem.json, run.json, state.npz (final state, if known),
        summary.json (if ``info["summary"]``), data.npz (if ``data`` is given, else kept from
        an earlier save of the same problem), trajectory.png (if ``plot``) and manifest.json
        (each file's SHA-256, written last; :func:`load` checks it).  The files are written
        into a temporary sibling folder that then replaces ``folder`` by renames, so a kill at
        any instant leaves the old complete folder or the new complete one, never a mix.
        A folder that holds results of a *different* problem is refused (ProblemError) unless
        ``overwrite``.
        """
        folder = os.fspath(folder)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ProblemError(f"{folder} exists and is not a folder")
        if not overwrite and os.path.isfile(os.path.join(folder, "trajectory.csv")):
            if not self._same_problem(folder):
                raise ProblemError(f"{folder} already holds results of a different problem; "
                                   "use another folder or overwrite=True")
        keep = () if overwrite else ("data.npz",)
        with folder_transaction(folder, keep=keep) as tmp:
            self._write_files(tmp, data, plot)

    def _same_problem(self, folder: str) -> bool:
        try:
            with open(os.path.join(folder, "problem.json")) as f:
                return json.load(f) == json.loads(json.dumps(self.problem.to_dict()))
        except (OSError, ValueError):
            return False

    def _write_files(self, folder: str, data, plot: bool) -> None:
        if data is not None:
            data.save(os.path.join(folder, "data.npz"))
        if self.final_state is not None:
            atomic_write_npz(os.path.join(folder, "state.npz"), self.final_state)
        atomic_write_json(os.path.join(folder, "problem.json"), self.problem.to_dict())
        atomic_write_json(os.path.join(folder, "run.json"),
                          {"method": self.method, **jsonable(dict(self.info))})
        if "summary" in self.info:
            atomic_write_json(os.path.join(folder, "summary.json"), self.info["summary"])
        header = ("t",) + self.columns
        atomic_write_csv(os.path.join(folder, "trajectory.csv"), header,
                         [self[h] for h in header])
        if plot:
            self.plot(os.path.join(folder, "trajectory.png"))

    def plot(self, path: str | os.PathLike | None = None, ax: Any = None, **kw):
        """Two panels: log-time train/test/population loss, and the loss decomposition.

        Parameters
        ----------
        path : path-like, optional
            Also save the figure there (PNG).
        ax : matplotlib Axes or a pair of them, optional
            Draw into the caller's axes (one Axes: the loss panel only).  The matplotlib
            backend and pyplot's state are never touched.
        **kw
            Passed to :func:`lazyrich_theory.plotting.trajectory.plot_trajectory`
            (``dpi``, ``overlay``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        # imported on use: matplotlib costs ~0.5 s and many runs never plot
        from lazyrich_theory.plotting.trajectory import plot_trajectory

        return plot_trajectory(self, path, ax=ax, **kw)


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ProblemError(f"cannot read {what} {path}: {exc}") from None


def load(folder: str | os.PathLike) -> Trajectory:
    """Read a trajectory folder written by :meth:`Trajectory.save` (or the CLI).

    Raises ``ProblemError`` (one line) for a folder that is not a complete run: no
    trajectory.csv, an unreadable problem.json or run.json, a CSV without rows or without a
    core column, or files that disagree with the folder's manifest.
    """
    folder = os.fspath(folder)
    recover_folder(folder)           # a save killed mid-swap: put the complete version in place
    csv_path = os.path.join(folder, "trajectory.csv")
    if not os.path.isfile(csv_path):
        raise ProblemError(f"no trajectory.csv in {folder}")
    verify_folder(folder)
    try:
        cols = read_csv(csv_path)
    except (OSError, ValueError) as exc:
        raise ProblemError(f"cannot read {csv_path}: {exc}") from None
    problem = Problem.from_dict(_read_json(os.path.join(folder, "problem.json"), "problem file"))
    info: dict[str, Any] = {}
    run_path = os.path.join(folder, "run.json")
    if os.path.isfile(run_path):
        info = _read_json(run_path, "run file")
        if not isinstance(info, dict):
            raise ProblemError(f"run file {run_path} does not hold a JSON object")
    method = str(info.pop("method", "unknown"))
    missing = [c for c in ("t",) + CORE_COLUMNS if c not in cols]
    if missing:
        raise ProblemError(f"{csv_path} lacks column(s): {', '.join(missing)}")
    if len(cols["t"]) == 0:
        raise ProblemError(f"{csv_path} has a header but no rows")
    extra = {k: v for k, v in cols.items() if k != "t" and k not in CORE_COLUMNS}
    state = None
    state_path = os.path.join(folder, "state.npz")
    if os.path.isfile(state_path):
        with np.load(state_path) as f:
            state = {k: f[k] for k in f.files}
    return Trajectory(problem=problem, method=method, t=cols["t"],
                      **{c: cols[c] for c in CORE_COLUMNS}, extra=extra, info=info,
                      final_state=state)


def from_xarray(ds) -> Trajectory:
    """The :class:`Trajectory` of a Dataset made by :meth:`Trajectory.to_xarray` (e.g. read
    back with ``xarray.open_dataset``)."""
    try:
        problem = Problem.from_dict(json.loads(ds.attrs["problem"]))
        info = json.loads(ds.attrs.get("info", "{}"))
    except (KeyError, ValueError) as exc:
        raise ProblemError(f"not a lazyrich trajectory dataset: {exc}") from None
    cols = {name: np.asarray(ds[name].values, dtype=np.float64) for name in ds.data_vars}
    missing = [c for c in CORE_COLUMNS if c not in cols]
    if missing:
        raise ProblemError(f"dataset lacks column(s): {', '.join(missing)}")
    extra = {k: v for k, v in cols.items() if k not in CORE_COLUMNS}
    return Trajectory(problem=problem, method=str(ds.attrs.get("method", "unknown")),
                      t=np.asarray(ds["t"].values, dtype=np.float64),
                      **{c: cols[c] for c in CORE_COLUMNS}, extra=extra, info=info)
