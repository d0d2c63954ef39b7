"""Phase diagrams: sweeps over any problem parameters, resumable, local or distributed.

    from lazyrich_theory import Problem
    from lazyrich_theory.sweep import sweep

    base = Problem(D=100, P=550, N=500, eta0=20.0)
    res = sweep(base, {"alpha": "0.4:5.6:14", "eps": "0.02:0.28:14"}, steps=110_000,
                out="out/fig3e")
    res.mean("paper_grokking_time")          # (14, 14) array, mean over seeds

A sweep is the Cartesian product of its axes (one per varied parameter, in the order given,
then ``seed`` last).  Each point of the product is a *cell*: one run of the reduced dynamics
(:func:`lazyrich_theory.reduced.solve`) from which :data:`METRICS` are measured.

Axis specifications (strings, or any sequence of values):

    "0.4:5.6:14"        14 values, linearly spaced from 0.4 to 5.6 (ends included)
    "log:0.1:10:9"      9 values, log-spaced from 0.1 to 10
    "100,200,400"       an explicit list (N also takes "inf"; convention A,B; centered true,false)

Storage (``out=DIR``), nothing is ever lost:

    DIR/sweep.json       the sweep's configuration; a different one in the same DIR is refused
    DIR/cells/<id>.json  one file per finished cell, written atomically by whoever computed it;
                         <id> hashes everything that determines the cell's result
    DIR/computed.log     one line "<id> <pid>" appended each time a cell is computed
    DIR/phase.csv        one tidy row per cell: swept parameters, seed, cell id, status, metrics
    DIR/phase_mean.csv   one row per grid point: mean and standard deviation over seeds
    DIR/phase.npz        the labeled N-D dataset (see :meth:`PhaseResult.save`), with the
    DIR/phase.json       JSON sidecar naming its dims, coords and variables
    DIR/phase.png        heat map (2-D sweeps) or curves (1-D sweeps)

Running the same sweep again on the same DIR computes only the missing cells.

Execution: a local process pool (default, ``workers`` processes; a worker that dies mid-cell
is detected and its cells are resubmitted), any ``concurrent.futures.Executor``
(``executor=``), or a Dask distributed scheduler (``scheduler="tcp://host:8786"`` or a
``distributed.Client``; tasks are submitted with ``retries=``).  Every cell runs BLAS
single-threaded, so results are bit-for-bit the same whichever executor computed them.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from lazyrich_theory.errors import SweepError
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.storage import (
    decode_float,
    jsonable,
    atomic_write_json,
    atomic_write_npz,
    atomic_write_text,
)

__all__ = [
    "Axis", "PhaseResult", "SweepError", "METRICS", "SWEEPABLE", "parse_axis", "parse_vary",
    "sweep", "run_cell", "cell_metrics", "load_phase", "cell_id", "RESULT_METRICS",
    "predicted_grokking", "sweep_config",
]

#: Format version of sweep.json / cell files (part of every cell id).
FORMAT = 1

#: Problem fields a sweep may vary.
SWEEPABLE = ("alpha", "eps", "D", "P", "N", "eta0", "seed", "test_size", "convention", "centered",
             "noise", "weight_decay", "momentum", "batch_size")
_INT_FIELDS = ("D", "P", "seed", "test_size", "batch_size")
_ALIASES = {"d": "D", "p": "P", "n": "N", "test-size": "test_size", "epsilon": "eps",
            "eta": "eta0", "weight-decay": "weight_decay", "lambda": "weight_decay",
            "sigma": "noise", "mu": "momentum", "batch-size": "batch_size", "b": "batch_size"}

#: Every per-cell quantity, with its definition (also written to phase.json and docs).
METRICS: dict[str, str] = {
    "paper_grokking_time": "the paper's Fig. 3(e) 'amount of grokking': max(0, t_test - t_train), "
                           "t_x the first step at which loss x is under the absolute threshold "
                           "(default 0.1); 0 when the test loss never gets there",
    "train_time": "first step at which the train loss is under the absolute threshold "
                  "(log-linear interpolation between save times; inf if never)",
    "test_time": "first step at which the test loss is under the absolute threshold (inf if never)",
    "relative_grokking_time": "t_test - t_train with each threshold = relative (default 0.1) x "
                              "that curve's initial value; signed; 0 when the test loss never "
                              "gets there",
    "test_train_time_ratio": "t_test / t_train at the absolute threshold (inf if the test loss "
                             "never gets there)",
    "peak_test_over_initial": "max over t of the test loss / initial test loss (> 1: the lazy "
                              "phase over-fits before it generalises)",
    "test_half_time": "first step at which the test loss is half its initial value",
    "final_train_loss": "train loss at stop_time",
    "final_test_loss": "test loss at stop_time",
    "initial_test_loss": "test loss at t = 0",
    "stop_time": "first save time at which train and test loss are both under tol (the cell "
                 "has converged), else the horizon T",
    "converged": "1 if the cell stopped by convergence before T, else 0",
    "predicted_lazy_fit_time": "theory: D / (4 eta0), the lazy (kernel) fitting time of the "
                               "linear modes",
    "predicted_lazy_train_time": "theory: first step at which the linearised (initial-kernel, "
                                 "N = inf) model's train loss is under the threshold",
    "predicted_lazy_peak_time": "theory: step at which the linearised model's test loss peaks",
    "predicted_rich_time_estimate": "theory: closed-form rich-transition time t* (docs/theory.md §5)",
    "predicted_rich_time_population": "theory: time at which the N = inf population ODE's loss "
                                      "is half its initial value",
    "predicted_grokking_delay": "theory: predicted_rich_time_population - "
                                "predicted_lazy_peak_time (predict_timescales)",
    "predicted_time_ratio": "theory: predicted_rich_time_population / "
                            "predicted_lazy_train_time: < 1 when the N = inf rich transition "
                            "comes before the lazy (kernel) model has fit the training set",
    "predicted_grokking": "theory's boundary: 1 where predicted_time_ratio < 1 and the rich "
                          "transition comes before T, else 0 (uncentered: rich time < T)",
    "wall_time": "seconds spent computing the cell (not part of phase.csv / phase.npz)",
}
#: Metrics written to phase.csv and phase.npz (wall time varies from run to run).
RESULT_METRICS = tuple(k for k in METRICS if k != "wall_time")

STATUSES = ("ok", "diverged", "failed", "missing")



# ---------------------------------------------------------------------------------- axes
@dataclass(frozen=True)
class Axis:
    """One swept parameter: its name, its values (in order) and how they were specified."""

    name: str
    values: tuple
    spacing: str = "list"      # "linear", "log" or "list"
    spec: str = ""

    def __len__(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        """The axis as a JSON-able dict (name, values, spacing)."""
        return {"name": self.name, "values": [_json_value(v) for v in self.values],
                "spacing": self.spacing}


def _canonical_name(name: str) -> str:
    n = name.strip()
    n = _ALIASES.get(n.lower(), n) if n not in SWEEPABLE else n
    if n not in SWEEPABLE:
        raise ProblemError(f"--vary: unknown parameter {name.strip()!r} "
                           f"(choose from {', '.join(SWEEPABLE)})")
    return n


def _convert(name: str, raw: Any, where: str) -> Any:
    """One value of parameter ``name``, converted to the Problem field's type."""
    if name == "convention":
        v = str(raw).strip().upper()
        if v not in ("A", "B"):
            raise ProblemError(f"{where}: convention must be A or B, got {raw!r}")
        return v
    if name == "centered":
        if isinstance(raw, (bool, np.bool_)):
            return bool(raw)
        v = str(raw).strip().lower()
        if v in ("true", "1", "yes", "centered"):
            return True
        if v in ("false", "0", "no", "uncentered"):
            return False
        raise ProblemError(f"{where}: centered must be true or false, got {raw!r}")
    if name == "N" and str(raw).strip().lower() in ("inf", "infinity", "+inf", "∞"):
        return math.inf
    try:
        x = float(raw)
    except (TypeError, ValueError):
        raise ProblemError(f"{where}: {raw!r} is not a number") from None
    if not math.isfinite(x):
        raise ProblemError(f"{where}: {raw!r} is not finite")
    if name in _INT_FIELDS or name == "N":
        if abs(x - round(x)) > 1e-9 * max(1.0, abs(x)):
            raise ProblemError(f"{where}: {name} takes integers, got {raw!r}")
        return int(round(x))
    return x


_SPEC_HELP = ("expected NAME=START:STOP:COUNT (linear), NAME=log:START:STOP:COUNT (log) "
              "or NAME=V1,V2,... (list)")


def parse_axis(name: str, spec: Any) -> Axis:
    """An :class:`Axis` from a spec string (see the module doc) or a sequence of values."""
    name = _canonical_name(name)
    where = f"--vary {name}"
    if not isinstance(spec, str):
        vals = np.asarray(spec, dtype=object).ravel().tolist()
        if not vals:
            raise ProblemError(f"{where}: no values")
        values = [_convert(name, v, where) for v in vals]
        spacing, text = "list", ",".join(str(_json_value(v)) for v in values)
    else:
        text = spec.strip()
        where = f"--vary {name}={text}"
        if not text:
            raise ProblemError(f"{where}: {_SPEC_HELP}")
        parts = text.split(":")
        if len(parts) == 1:
            items = [s.strip() for s in text.split(",")]
            if any(not s for s in items):
                raise ProblemError(f"{where}: empty value in list; {_SPEC_HELP}")
            values = [_convert(name, s, where) for s in items]
            spacing = "list"
        else:
            log = parts[0].strip().lower() == "log"
            if log:
                parts = parts[1:]
            if len(parts) != 3:
                raise ProblemError(f"{where}: {_SPEC_HELP}")
            if name in ("convention", "centered"):
                raise ProblemError(f"{where}: {name} takes a list, e.g. {name}="
                                   f"{'A,B' if name == 'convention' else 'true,false'}")
            try:
                a, b = float(parts[0]), float(parts[1])
            except ValueError:
                raise ProblemError(f"{where}: START and STOP must be numbers") from None
            try:
                n = int(parts[2])
            except ValueError:
                raise ProblemError(f"{where}: COUNT must be a positive integer, "
                                   f"got {parts[2]!r}") from None
            if n < 1:
                raise ProblemError(f"{where}: COUNT must be a positive integer, got {n}")
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ProblemError(f"{where}: START and STOP must be finite")
            if n == 1 and a != b:
                raise ProblemError(f"{where}: COUNT 1 needs START == STOP")
            if log:
                if a <= 0 or b <= 0:
                    raise ProblemError(f"{where}: log spacing needs START > 0 and STOP > 0")
                raw = np.geomspace(a, b, n)
                if name in _INT_FIELDS or name == "N":
                    raw = np.round(raw)
                spacing = "log"
            else:
                raw = np.linspace(a, b, n)
                spacing = "linear"
            values = [_convert(name, float(v), where) for v in raw]
    if len(set(map(_json_key, values))) != len(values):
        raise ProblemError(f"{where}: repeated values {values}")
    return Axis(name, tuple(values), spacing, text)


def parse_vary(items: Iterable[str]) -> list[Axis]:
    """Axes from CLI items 'NAME=SPEC' (in order); each parameter at most once."""
    axes: list[Axis] = []
    for item in items:
        if "=" not in item:
            raise ProblemError(f"--vary {item}: {_SPEC_HELP}")
        name, spec = item.split("=", 1)
        ax = parse_axis(name, spec)
        if any(a.name == ax.name for a in axes):
            raise ProblemError(f"--vary {ax.name} is given twice")
        axes.append(ax)
    return axes


def _json_value(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "inf" if math.isinf(v) and v > 0 else v
    return v


def _json_key(v: Any) -> str:
    return json.dumps(_json_value(v))


# ---------------------------------------------------------------------------------- cells
def cell_id(spec: Mapping[str, Any]) -> str:
    """Content hash (16 hex digits) of everything that determines a cell's result."""
    keys = ("problem", "steps", "method", "integrator", "rtol", "atol", "threshold",
            "relative", "tol", "predict")
    payload = {"format": FORMAT, **{k: spec[k] for k in keys}}
    text = json.dumps(jsonable(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_metrics(t: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray,
                 threshold: float = 0.1, relative: float = 0.1,
                 tol: float | None = None, steps: float | None = None) -> dict[str, float]:
    """The measured part of :data:`METRICS` for one trajectory (see their definitions).

    With ``tol`` the trajectory is cut at the first save time where train and test loss are
    both under ``tol`` (``stop_time``); the final losses are read there.
    """
    from lazyrich_theory.theory.timescales import grokking_metrics

    t = np.asarray(t, dtype=float)
    tr = np.asarray(train_loss, dtype=float)
    te = np.asarray(test_loss, dtype=float)
    stop = len(t)
    converged = False
    if tol is not None and tol > 0:
        hit = np.flatnonzero((tr < tol) & (te < tol))
        if hit.size:
            stop = int(hit[0]) + 1
            converged = bool(steps is None or t[hit[0]] < steps)
    t, tr, te = t[:stop], tr[:stop], te[:stop]
    m = grokking_metrics(t, tr, te, threshold=threshold, relative=relative)
    paper = m["paper_grokking_time"]
    m["paper_grokking_time"] = float(paper) if math.isfinite(paper) and paper > 0 else 0.0
    m["initial_test_loss"] = float(te[0])
    m["stop_time"] = float(t[-1])
    m["converged"] = 1.0 if converged else 0.0
    return {k: float(v) for k, v in m.items()}


def _gd_early_stop(problem: Problem, steps: int, tol: float | None):
    """Exact GD (as ``solve(method='gd')``) recording train/test loss at the save times and
    stopping at the first save time where both are under ``tol``."""
    from lazyrich_theory.core.stepping import BLOWUP_FACTOR
    from lazyrich_theory.errors import DivergenceError
    from lazyrich_theory.core.reduced import ReducedSystem
    from lazyrich_theory.spec.streams import sgd_mode
    from lazyrich_theory.core.solve import solve
    from lazyrich_theory.spec.schedule import save_times
    from lazyrich_theory.core.statistics import predict

    times = save_times(steps)
    if problem.momentum > 0 or sgd_mode(problem) is not None:
        # heavy ball / SGD: the full solver (it has no early stop), record cut at convergence
        traj = solve(problem, steps, method="gd", progress=False)
        tr, te = np.asarray(traj.train_loss), np.asarray(traj.test_loss)
        k = times.size
        if tol is not None and tol > 0:
            hit = np.nonzero((tr < tol) & (te < tol))[0]
            if hit.size:
                k = int(hit[0]) + 1
        return times[:k].astype(float), tr[:k], te[:k]
    system = ReducedSystem.build(problem)
    p = problem
    F = system.F0.copy()
    tr, te = np.empty(times.size), np.empty(times.size)
    k = 0
    loss0 = None
    for t in range(int(times[-1]) + 1):
        XF, r = system.residuals(F)
        loss = float(r @ r) / r.size
        if loss0 is None:
            loss0 = loss
        if not math.isfinite(loss) or loss > BLOWUP_FACTOR * loss0 + 1e-300:
            raise DivergenceError(f"dynamics diverged at step {t} (train loss {loss:.3g})", t)
        if t == times[k]:
            rt = predict(system.X_test @ F, system.z, p.alpha, p.eps) - system.f0_test - system.y_test
            tr[k], te[k] = loss, float(rt @ rt) / rt.size
            k += 1
            if tol is not None and tol > 0 and tr[k - 1] < tol and te[k - 1] < tol:
                break
            if k == times.size:
                break
        F = F + system.increment(F, XF, r)      # = velocity when weight_decay = 0
    return times[:k].astype(float), tr[:k], te[:k]


def _predictions(problem: Problem, steps: int, method: str, threshold: float,
                 times: np.ndarray) -> dict[str, float]:
    """The theory's predictions for one cell (predict_timescales + the linearised model)."""
    from lazyrich_theory.theory.asymptotics import linearized_curves_exact
    from lazyrich_theory.theory.timescales import first_time_below, predict_timescales

    data = problem.data()
    out: dict[str, float] = {"predicted_lazy_train_time": math.nan,
                             "predicted_lazy_peak_time": math.nan}
    peak = None
    from lazyrich_theory.spec.streams import is_plain_gd

    if problem.centered and problem.target == "paper" and is_plain_gd(problem):
        s = problem.input_scale
        beta_eff = np.asarray(data.beta, float) * math.sqrt(2.0 * problem.tau)
        lin = linearized_curves_exact(data.X * s, beta_eff, problem.eps, problem.eta0, times,
                                      method="gd" if method == "gd" else "flow")
        out["predicted_lazy_train_time"] = first_time_below(times, lin["train_loss"], threshold)
        peak = float(times[int(np.argmax(lin["test_loss"]))])
        out["predicted_lazy_peak_time"] = peak
    ts = predict_timescales(problem, data, lazy_peak_time=peak)
    out.update(predicted_lazy_fit_time=ts.lazy_fit_time,
               predicted_rich_time_estimate=ts.rich_time_estimate,
               predicted_rich_time_population=ts.rich_time_population,
               predicted_grokking_delay=ts.grokking_delay)
    lazy = out["predicted_lazy_train_time"]
    out["predicted_time_ratio"] = (out["predicted_rich_time_population"] / lazy
                                   if lazy > 0 else math.nan)
    out["predicted_grokking"] = predicted_grokking(out, steps)
    return {k: float(v) for k, v in out.items()}


def predicted_grokking(pred: Mapping[str, float], steps: float) -> float:
    """The theory's grokking indicator (see METRICS["predicted_grokking"])."""
    rich = float(pred["predicted_rich_time_population"])
    lazy = float(pred.get("predicted_lazy_train_time", math.nan))
    if math.isnan(rich):
        return math.nan
    limit = steps if math.isnan(lazy) else min(lazy, steps)
    return 1.0 if rich < limit else 0.0


def run_cell(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Compute one cell: solve the reduced dynamics, measure :data:`METRICS`.

    ``spec`` holds ``problem`` (a Problem dict), ``steps``, ``method`` ("flow" or "gd"),
    ``integrator``, ``rtol``, ``atol``, ``threshold``, ``relative``, ``tol`` and ``predict``.
    Returns the cell record (``status`` "ok" or "diverged", ``metrics``, ``error``).
    BLAS runs single-threaded, so the result does not depend on where it is computed.
    """
    from threadpoolctl import threadpool_limits

    from lazyrich_theory.errors import DivergenceError
    from lazyrich_theory.core.solve import solve
    from lazyrich_theory.spec.schedule import save_times

    t0 = time.perf_counter()
    problem = Problem.from_dict(dict(spec["problem"]))
    steps = int(spec["steps"])
    tol = spec.get("tol")
    status, error = "ok", None
    metrics: dict[str, float] = {k: math.nan for k in RESULT_METRICS}
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            if spec["method"] == "gd":
                t, tr, te = _gd_early_stop(problem, steps, tol)
            else:
                traj = solve(problem, steps, method="flow", integrator=spec["integrator"],
                             rtol=spec["rtol"], atol=spec["atol"])
                t, tr, te = traj.t, traj.train_loss, traj.test_loss
            metrics.update(cell_metrics(t, tr, te, spec["threshold"], spec["relative"], tol,
                                        steps))
        except DivergenceError as exc:
            status, error = "diverged", str(exc)
        if spec.get("predict", True):
            with np.errstate(all="ignore"):  # a diverging cell's linearised model diverges too
                metrics.update(_predictions(problem, steps, spec["method"],
                                            spec["threshold"], save_times(steps).astype(float)))
    return {"id": spec.get("id") or cell_id(spec), "status": status, "error": error,
            "problem": problem.to_dict(), "metrics": metrics,
            "wall_time": time.perf_counter() - t0, "pid": os.getpid()}


def _cell_path(out: str, cid: str) -> str:
    return os.path.join(out, "cells", f"{cid}.json")


def _store(out: str, record: Mapping[str, Any], log: bool = True) -> None:
    """Write a finished cell atomically, then note it in computed.log."""
    atomic_write_json(_cell_path(out, record["id"]), jsonable(dict(record)))
    if log:
        line = f"{record['id']} {record.get('pid', os.getpid())}\n".encode()
        fd = os.open(os.path.join(out, "computed.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                     0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _cell_task(cell_fn: Callable[[Mapping[str, Any]], dict], spec: Mapping[str, Any],
               out: str | None) -> dict[str, Any]:
    """What a worker runs: compute the cell and (if ``out``) store it before returning."""
    record = dict(cell_fn(spec))
    record["id"] = spec["id"]
    record.setdefault("pid", os.getpid())
    if out is not None:
        _store(out, record)
    return record


def _remove_stale_temporaries(folder: str) -> None:
    """Half-written temporary files of a killed run (never complete cells: those are renamed
    into place atomically).  One sweep per folder at a time."""
    for name in os.listdir(folder):
        if name.startswith(".tmp-"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _read_cell(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or "metrics" not in rec or "id" not in rec:
        return None
    return rec


# ---------------------------------------------------------------------------------- results
@dataclass
class PhaseResult:
    """Results of a sweep as a labeled N-D dataset.

    ``dims``: the swept parameters in order, then ``seed``; ``coords[dim]``: its values;
    ``data[name]``: an array of shape ``shape`` for every name in :data:`RESULT_METRICS`
    (float, NaN where a cell has none), plus ``status`` and ``cell_id`` (strings).
    """

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    data: dict[str, np.ndarray]
    config: dict[str, Any]
    out: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape, one entry per dimension (seed included)."""
        return tuple(len(self.coords[d]) for d in self.dims)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    def _seed_axis(self) -> int:
        return self.dims.index("seed")

    def mean(self, name: str) -> np.ndarray:
        """Mean over seeds (over the cells with a value), shape = shape without seed."""
        a = np.asarray(self.data[name], dtype=float)
        with np.errstate(invalid="ignore"):
            valid = ~np.isnan(a)
            n = valid.sum(axis=self._seed_axis())
            s = np.where(valid, a, 0.0).sum(axis=self._seed_axis())
            return np.where(n > 0, s / np.maximum(n, 1), np.nan)

    def std(self, name: str) -> np.ndarray:
        """Standard deviation over seeds (ddof = 0; 0 for a single seed)."""
        import warnings

        a = np.asarray(self.data[name], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanstd(a, axis=self._seed_axis())

    @property
    def grid_dims(self) -> tuple[str, ...]:
        """The swept dimensions other than seed."""
        return tuple(d for d in self.dims if d != "seed")

    @property
    def counts(self) -> dict[str, int]:
        """Number of cells per status (only statuses that occur)."""
        st = self.data["status"].ravel().tolist()
        return {s: st.count(s) for s in STATUSES if st.count(s)}

    # ------------------------------------------------------------------ storage
    def _rows(self):
        for idx in itertools.product(*(range(len(self.coords[d])) for d in self.dims)):
            yield idx

    def save(self, out: str | os.PathLike, plot: bool = True) -> None:
        """Write phase.csv, phase_mean.csv, phase.npz + phase.json and (if ``plot``) phase.png.

        phase.npz holds one array per variable (shape = the dims' lengths, in order) and one
        ``coord_<dim>`` array per dim; phase.json describes dims, coords and variables.
        """
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        # tidy CSV (one row per cell)
        header = list(self.dims) + ["cell_id", "status"] + list(RESULT_METRICS)
        rows = list(self._rows())
        cols: list[list] = [[] for _ in header]
        for idx in rows:
            for j, d in enumerate(self.dims):
                cols[j].append(_csv_value(self.coords[d][idx[j]]))
            cols[len(self.dims)].append(str(self.data["cell_id"][idx]))
            cols[len(self.dims) + 1].append(str(self.data["status"][idx]))
            for j, m in enumerate(RESULT_METRICS):
                cols[len(self.dims) + 2 + j].append(_csv_value(self.data[m][idx]))
        _write_csv(os.path.join(out, "phase.csv"), header, cols)
        # mean over seeds
        gd = self.grid_dims
        gshape = tuple(len(self.coords[d]) for d in gd)
        n_ok = (self.data["status"] == "ok").sum(axis=self._seed_axis())
        means = {m: self.mean(m) for m in RESULT_METRICS}
        stds = {m: self.std(m) for m in RESULT_METRICS}
        header = list(gd) + ["n_seeds", "n_ok"]
        for m in RESULT_METRICS:
            header += [f"{m}_mean", f"{m}_std"]
        cols = [[] for _ in header]
        for idx in itertools.product(*(range(n) for n in gshape)):
            row = [_csv_value(self.coords[d][idx[j]]) for j, d in enumerate(gd)]
            row += [str(len(self.coords["seed"])), str(int(n_ok[idx]))]
            for m in RESULT_METRICS:
                row += [_csv_value(means[m][idx]), _csv_value(stds[m][idx])]
            for j, v in enumerate(row):
                cols[j].append(v)
        _write_csv(os.path.join(out, "phase_mean.csv"), header, cols)
        # N-D dataset
        arrays = {f"coord_{d}": _coord_array(self.coords[d]) for d in self.dims}
        for m in RESULT_METRICS:
            arrays[m] = np.asarray(self.data[m], dtype=float)
        arrays["status"] = np.asarray(self.data["status"], dtype="<U8")
        arrays["cell_id"] = np.asarray(self.data["cell_id"], dtype="<U16")
        atomic_write_npz(os.path.join(out, "phase.npz"), arrays)
        sidecar = {
            "format": FORMAT,
            "description": "labeled N-D dataset of a lazyrich phase sweep; arrays in phase.npz",
            "dims": list(self.dims),
            "shape": list(self.shape),
            "coords": {d: {"array": f"coord_{d}",
                           "values": [_json_value(v) for v in self.coords[d]]}
                       for d in self.dims},
            "variables": {**{m: {"dims": list(self.dims), "dtype": "float64",
                                 "description": METRICS[m]} for m in RESULT_METRICS},
                          "status": {"dims": list(self.dims), "dtype": "str",
                                     "description": "ok | diverged | failed | missing"},
                          "cell_id": {"dims": list(self.dims), "dtype": "str",
                                      "description": "cells/<cell_id>.json holds the cell"}},
            "attrs": jsonable(self.config),
        }
        atomic_write_json(os.path.join(out, "phase.json"), sidecar)
        if plot:
            from lazyrich_theory.plotting.phase import plot_phase

            plot_phase(self, os.path.join(out, "phase.png"))

    def plot(self, path: str | os.PathLike | None = None, **kw):
        """Heat map of the phase diagram (plotting_phase.plot_phase); PNG if ``path``."""
        from lazyrich_theory.plotting.phase import plot_phase

        return plot_phase(self, path, **kw)


def _csv_value(v: Any) -> str:
    """One CSV field: true/false, strings as they are, integers exactly, floats with full
    precision (repr), non-finite floats as inf, -inf, nan."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def _write_csv(path: str, header: Sequence[str], columns: Sequence[Sequence[str]]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in zip(*columns):
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())


def _coord_array(values: np.ndarray) -> np.ndarray:
    vals = list(values)
    if all(isinstance(v, (bool, np.bool_)) for v in vals):
        return np.asarray(vals, dtype=bool)
    if all(isinstance(v, str) for v in vals):
        return np.asarray(vals, dtype="<U8")
    return np.asarray(vals, dtype=float)


def load_phase(out: str | os.PathLike) -> PhaseResult:
    """Read the dataset written by :meth:`PhaseResult.save` (phase.npz + phase.json)."""
    out = os.fspath(out)
    jpath, npath = os.path.join(out, "phase.json"), os.path.join(out, "phase.npz")
    if not (os.path.isfile(jpath) and os.path.isfile(npath)):
        raise FileNotFoundError(f"no phase.json / phase.npz in {out}")
    with open(jpath) as f:
        side = json.load(f)
    dims = tuple(side["dims"])
    with np.load(npath, allow_pickle=False) as z:
        coords = {d: _from_coord(z[f"coord_{d}"], d) for d in dims}
        data = {k: z[k] for k in z.files if not k.startswith("coord_")}
    return PhaseResult(dims, coords, data, side.get("attrs", {}), out)


def _from_coord(a: np.ndarray, dim: str) -> np.ndarray:
    if a.dtype.kind in "iu" or (dim in _INT_FIELDS and a.dtype.kind == "f"):
        return np.asarray([int(v) for v in a], dtype=object)
    return np.asarray(a.tolist(), dtype=object)


# ---------------------------------------------------------------------------------- execution
def _worker_init(main_pid: int) -> None:
    """Process-pool worker set-up: leave Ctrl-C to the parent, and die as soon as the sweep's
    main process does (kill -9 included), so that no orphan goes on computing cells.  The
    worker's parent is the forkserver, not the main process, so a watchdog thread polls it."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001 - best effort; the watchdog below is the rule
            pass

    def watchdog() -> None:
        while True:
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - alive, other user (pid reuse)
                pass
            time.sleep(0.05)

    threading.Thread(target=watchdog, name="lazyrich-watchdog", daemon=True).start()


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


class _Runner:
    """Collects finished cells, writes them, drives the progress bar."""

    def __init__(self, out: str | None, total: int, done: int, progress: bool,
                 retries: int):
        self.out = out
        self.records: dict[str, dict] = {}
        self.failed: dict[str, str] = {}
        self.computed = 0
        self.retries = retries
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="cell", desc="phase",
                            dynamic_ncols=True, disable=None, smoothing=0.1)

    def finish(self, record: dict, stored: bool) -> None:
        cid = record["id"]
        if self.out is not None and not stored and not os.path.isfile(_cell_path(self.out, cid)):
            _store(self.out, record)
        self.records[cid] = record
        self.computed += 1
        if self.bar is not None:
            self.bar.update(1)

    def fail(self, cid: str, message: str) -> None:
        self.failed[cid] = message
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_serial(specs, cell_fn, runner: _Runner) -> None:
    for spec in specs:
        attempts = 0
        while True:
            try:
                rec = _cell_task(cell_fn, spec, runner.out)
                runner.finish(rec, stored=runner.out is not None)
                break
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001
                attempts += 1
                if attempts > runner.retries:
                    runner.fail(spec["id"], f"{type(exc).__name__}: {exc}")
                    break


def _kill_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: kill its worker processes (a private attribute, best effort)."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            p.kill()
        except Exception:  # noqa: BLE001
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _run_pool(specs, cell_fn, runner: _Runner, workers: int) -> None:
    """A local process pool; a broken pool (a worker died) is replaced and the unfinished
    cells resubmitted.  After ``retries`` breaks, cells run one at a time so that a cell that
    kills its worker every time is identified and given up on after ``retries`` + 1 tries."""
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["lazyrich_theory.sweep"])
    pending = {s["id"]: s for s in specs}
    attempts = {cid: 0 for cid in pending}
    breaks = 0
    while pending:
        isolate = breaks > runner.retries
        n = 1 if isolate else min(workers, len(pending))
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init,
                                      initargs=(os.getpid(),))
        try:
            if isolate:
                for cid in list(pending):
                    fut = pool.submit(_cell_task, cell_fn, pending[cid], runner.out)
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        attempts[cid] += 1
                        if attempts[cid] > runner.retries:
                            runner.fail(cid, "the worker process died computing this cell")
                            del pending[cid]
                        raise
                    except Exception as exc:  # noqa: BLE001
                        attempts[cid] += 1
                        if attempts[cid] > runner.retries:
                            runner.fail(cid, f"{type(exc).__name__}: {exc}")
                            del pending[cid]
                        continue
                    runner.finish(rec, stored=runner.out is not None)
                    del pending[cid]
            else:
                futs = {pool.submit(_cell_task, cell_fn, s, runner.out): cid
                        for cid, s in pending.items()}
                while futs:
                    done, _ = cf.wait(list(futs), return_when=cf.FIRST_COMPLETED)
                    for fut in done:
                        cid = futs.pop(fut)
                        try:
                            rec = fut.result()
                        except BrokenProcessPool:
                            raise
                        except Exception as exc:  # noqa: BLE001
                            attempts[cid] += 1
                            if attempts[cid] > runner.retries:
                                runner.fail(cid, f"{type(exc).__name__}: {exc}")
                                del pending[cid]
                            else:
                                futs[pool.submit(_cell_task, cell_fn, pending[cid],
                                                 runner.out)] = cid
                            continue
                        runner.finish(rec, stored=runner.out is not None)
                        del pending[cid]
        except BrokenProcessPool:
            breaks += 1
            _kill_pool(pool)
            # cells a worker finished and stored before the pool broke are not redone
            if runner.out is not None:
                for cid in list(pending):
                    rec = _read_cell(_cell_path(runner.out, cid))
                    if rec is not None:
                        runner.finish(rec, stored=True)
                        del pending[cid]
            continue
        except BaseException:
            _kill_pool(pool)
            raise
        pool.shutdown(wait=True)


def _run_executor(specs, cell_fn, runner: _Runner, executor: cf.Executor, shared_fs: bool) -> None:
    """Any concurrent.futures-style executor (submit + futures)."""
    out = runner.out if shared_fs else None
    attempts = {s["id"]: 0 for s in specs}
    by_id = {s["id"]: s for s in specs}
    futs = {executor.submit(_cell_task, cell_fn, s, out): s["id"] for s in specs}
    while futs:
        done, _ = cf.wait(list(futs), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            cid = futs.pop(fut)
            try:
                rec = fut.result()
            except cf.BrokenExecutor as exc:
                for f in futs:
                    f.cancel()
                raise SweepError(f"the executor broke ({exc}); the cells done so far are "
                                 "saved: run the sweep again to resume") from None
            except Exception as exc:  # noqa: BLE001
                attempts[cid] += 1
                if attempts[cid] > runner.retries:
                    runner.fail(cid, f"{type(exc).__name__}: {exc}")
                else:
                    futs[executor.submit(_cell_task, cell_fn, by_id[cid], out)] = cid
                continue
            runner.finish(rec, stored=out is not None)


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _run_dask(specs, cell_fn, runner: _Runner, client, shared_fs: bool) -> None:
    """A Dask distributed client: one task per cell, ``retries`` on exceptions; the scheduler
    itself reschedules the task of a worker that dies (up to its allowed-failures)."""
    from distributed import as_completed

    import uuid

    out = runner.out if shared_fs else None
    token = uuid.uuid4().hex[:8]  # fresh keys: never a result cached from an earlier sweep
    futs, key2id = [], {}
    for s in specs:
        f = client.submit(_cell_task, cell_fn, s, out, key=f"lazyrich-cell-{s['id']}-{token}",
                          retries=runner.retries, pure=False)
        futs.append(f)
        key2id[f.key] = s["id"]
    try:
        for fut in as_completed(futs):
            cid = key2id[fut.key]
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - includes KilledWorker
                runner.fail(cid, f"{type(exc).__name__}: {exc}")
                continue
            runner.finish(rec, stored=out is not None)
    except BaseException:
        client.cancel(futs)
        raise


# ---------------------------------------------------------------------------------- sweep
def _axes_from(vary: Mapping[str, Any] | Sequence[Axis] | None) -> list[Axis]:
    if vary is None:
        return []
    if isinstance(vary, Mapping):
        axes = []
        for name, spec in vary.items():
            ax = spec if isinstance(spec, Axis) else parse_axis(name, spec)
            if any(a.name == ax.name for a in axes):
                raise ProblemError(f"--vary {ax.name} is given twice")
            axes.append(ax)
        return axes
    axes = list(vary)
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ProblemError("an axis is given twice")
    return axes


def sweep_config(base: Problem, axes: Sequence[Axis], steps: int, method: str, integrator: str,
                 rtol: float | None, atol: float | None, threshold: float, relative: float,
                 tol: float | None, predict: bool) -> dict[str, Any]:
    """The sweep's identity (what sweep.json holds); execution settings are not part of it."""
    return jsonable({"format": FORMAT, "base_problem": base.to_dict(),
                    "axes": [a.to_dict() for a in axes], "steps": int(steps),
                    "method": method, "integrator": integrator if method == "flow" else None,
                    "rtol": rtol, "atol": atol, "threshold": threshold, "relative": relative,
                    "tol": tol, "predict": bool(predict)})


def _check_config(out: str, config: dict[str, Any]) -> None:
    path = os.path.join(out, "sweep.json")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ProblemError(f"--out {out} exists and is not a folder")
    if not os.path.isfile(path):
        if os.path.isdir(os.path.join(out, "cells")) and os.listdir(os.path.join(out, "cells")):
            raise ProblemError(f"{out} holds cells but no sweep.json; use another --out")
        return
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        raise ProblemError(f"{path} is unreadable; use another --out") from None
    new = json.loads(json.dumps(config))
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ProblemError(f"{out} holds a different sweep (differs in: {', '.join(diff)}); "
                           "use another --out to keep both")


def sweep(base: Problem, vary: Mapping[str, Any] | Sequence[Axis] | None, steps: int, *,
          seeds: int | Sequence[int] | None = None, method: str = "flow",
          integrator: str = "rkc", rtol: float | None = None, atol: float | None = None,
          threshold: float = 0.1, relative: float = 0.1, tol: float | None = 1e-6,
          predict: bool = True, out: str | os.PathLike | None = None,
          executor: Any = None, workers: int | None = None, scheduler: Any = None,
          retries: int = 2, progress: bool = True, plot: bool = True,
          shared_fs: bool | None = None, log: Callable[[str], None] | None = None,
          cell_fn: Callable[[Mapping[str, Any]], dict] | None = None) -> PhaseResult:
    """Run (or resume) a phase sweep; see the module doc.

    base : the Problem every cell starts from.
    vary : {name: spec or values} (or a list of :class:`Axis`): the swept parameters, any of
        :data:`SWEEPABLE`; the product of all axes is computed.
    steps : horizon T in GD steps.
    seeds : K (seeds base.seed, ..., base.seed + K - 1) or an explicit list; a ``seed`` axis
        in ``vary`` does the same.  Means and spreads are taken over this axis.
    method : "flow" (gradient flow, RKC; default: fast) or "gd" (exact GD map).
    threshold, relative : the absolute and relative grokking thresholds (see :data:`METRICS`).
    tol : convergence tolerance: a cell stops at the first save time at which train and test
        loss are both under ``tol`` (gd stops computing there; the flow is integrated to T and
        its record cut there).  None or 0: run every cell to T.
    predict : also compute the theory's predictions (predict_timescales, linearised model).
    out : folder for the resumable storage (None: results only in memory).
    executor : a ``concurrent.futures.Executor`` or a ``distributed.Client`` to run cells on.
    workers : size of the local process pool (default: the number of CPUs; 1 = in-process).
    scheduler : a Dask scheduler address ("tcp://...") or a ``distributed.Client``.
    retries : how many times a cell whose computation raised, or whose worker died, is tried
        again before it is reported as failed (failed cells are not stored: a re-run tries
        them again).
    shared_fs : whether workers can write to ``out`` themselves (default: True for local
        pools and executors, False for Dask: the client writes each cell as it arrives).
    cell_fn : replaces :func:`run_cell` (for tests and extensions; must be picklable).
    """
    if method not in ("flow", "gd"):
        raise ProblemError(f"method must be 'flow' or 'gd', got {method!r}")
    if method == "flow" and integrator not in ("rkc", "dopri5"):
        raise ProblemError(f"integrator must be 'rkc' or 'dopri5', got {integrator!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ProblemError(f"steps must be a positive integer, got {steps!r}")
    for name, v in (("threshold", threshold), ("relative", relative)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ProblemError(f"{name} must be a number > 0, got {v!r}")
    if tol is not None and not (math.isfinite(tol) and tol >= 0):
        raise ProblemError(f"tol must be >= 0, got {tol!r}")
    if tol == 0:
        tol = None
    if not isinstance(retries, int) or retries < 0:
        raise ProblemError(f"retries must be a non-negative integer, got {retries!r}")
    if sum(x is not None for x in (executor, scheduler)) > 1:
        raise ProblemError("give at most one of executor and scheduler")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ProblemError(f"workers must be a positive integer, got {workers!r}")
    axes = _axes_from(vary)
    if seeds is not None:
        if any(a.name == "seed" for a in axes):
            raise ProblemError("give the seeds either with --seeds or with --vary seed=..., not both")
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ProblemError(f"--seeds must be a positive integer, got {seeds}")
            seed_axis = Axis("seed", tuple(base.seed + i for i in range(int(seeds))), "list",
                             f"{int(seeds)} seeds")
        else:
            seed_axis = parse_axis("seed", list(seeds))
        axes.append(seed_axis)
    elif not any(a.name == "seed" for a in axes):
        axes.append(Axis("seed", (base.seed,), "list", "base seed"))
    axes = [a for a in axes if a.name != "seed"] + [a for a in axes if a.name == "seed"]
    if base.data_file is not None:
        clash = [a.name for a in axes if a.name in ("D", "P", "N", "test_size", "seed")
                 and len(a) > 1]
        if clash:
            raise ProblemError(f"with a data file, {', '.join(clash)} cannot be varied "
                               "(they are fixed by the file)")
    dims = tuple(a.name for a in axes)
    shape = tuple(len(a) for a in axes)
    from lazyrich_theory.spec.streams import sgd_mode

    # every cell's Problem is built (validated) before anything runs
    cells: list[dict[str, Any]] = []
    for combo in itertools.product(*(a.values for a in axes)):
        changes = dict(zip(dims, combo))
        try:
            problem = base.replace(**changes)
        except ProblemError as exc:
            desc = ", ".join(f"{k}={_json_value(v)}" for k, v in changes.items())
            raise ProblemError(f"cell {desc}: {exc}") from None
        if method == "flow" and (problem.momentum > 0 or sgd_mode(problem) is not None):
            raise ProblemError("momentum, minibatch and online SGD need --method gd "
                               "(the flow has no such limit here)")
        spec = {"problem": problem.to_dict(), "steps": int(steps), "method": method,
                "integrator": integrator, "rtol": rtol, "atol": atol,
                "threshold": float(threshold), "relative": float(relative),
                "tol": None if tol is None else float(tol), "predict": bool(predict)}
        spec["id"] = cell_id(spec)
        cells.append(spec)
    config = sweep_config(base, axes, steps, method, integrator, rtol, atol, threshold,
                          relative, tol, predict)
    say = log if log is not None else (lambda s: None)
    out_s = None if out is None else os.fspath(out)
    done: dict[str, dict] = {}
    if out_s is not None:
        _check_config(out_s, config)
        os.makedirs(os.path.join(out_s, "cells"), exist_ok=True)
        _remove_stale_temporaries(os.path.join(out_s, "cells"))
        if not os.path.isfile(os.path.join(out_s, "sweep.json")):
            atomic_write_json(os.path.join(out_s, "sweep.json"), config)
        for spec in cells:
            rec = _read_cell(_cell_path(out_s, spec["id"]))
            if rec is not None:
                done[spec["id"]] = rec
    todo = [s for s in cells if s["id"] not in done]
    # identical cells (possible only through equal parameters) are computed once
    seen: set[str] = set()
    todo = [s for s in todo if not (s["id"] in seen or seen.add(s["id"]))]
    n_cells = len(cells)
    shape_s = " x ".join(f"{n} {d}" for d, n in zip(dims, shape))
    if done:
        say(f"phase: resuming {out_s}: {len(done)} of {n_cells} cells already done, "
            f"computing {len(todo)}")
    else:
        say(f"phase: {n_cells} cells ({shape_s})")
    fn = run_cell if cell_fn is None else cell_fn
    runner = _Runner(out_s, n_cells, n_cells - len(todo), progress and bool(todo), retries)
    t0 = time.perf_counter()
    client = None
    own_client = False
    try:
        if todo:
            if scheduler is not None or _is_dask_client(executor):
                client = executor if executor is not None else scheduler
                if isinstance(client, str):
                    try:
                        from distributed import Client
                    except ImportError:
                        raise ProblemError("--scheduler needs Dask: pip install "
                                           "'lazyrich_theory[dask]'") from None
                    try:
                        client = Client(client, timeout="20s")
                    except OSError as exc:
                        raise ProblemError(f"cannot reach Dask scheduler {scheduler}: {exc}") from None
                    own_client = True
                _run_dask(todo, fn, runner, client, bool(shared_fs))
            elif executor is not None:
                _run_executor(todo, fn, runner, executor, shared_fs is not False)
            else:
                n = _default_workers() if workers is None else workers
                if n == 1 or len(todo) == 1 and cell_fn is None:
                    _run_serial(todo, fn, runner)
                else:
                    _run_pool(todo, fn, runner, min(n, len(todo)))
    finally:
        runner.close()
        if own_client:
            client.close()
    wall = time.perf_counter() - t0
    done.update(runner.records)
    # assemble in grid order
    data: dict[str, np.ndarray] = {m: np.full(shape, np.nan) for m in RESULT_METRICS}
    data["status"] = np.full(shape, "missing", dtype="<U8")
    data["cell_id"] = np.empty(shape, dtype="<U16")
    for flat, spec in enumerate(cells):
        idx = np.unravel_index(flat, shape)
        data["cell_id"][idx] = spec["id"]
        rec = done.get(spec["id"])
        if rec is None:
            if spec["id"] in runner.failed:
                data["status"][idx] = "failed"
            continue
        data["status"][idx] = rec.get("status", "ok")
        for m in RESULT_METRICS:
            if m in rec["metrics"]:
                data[m][idx] = decode_float(rec["metrics"][m])
    coords = {a.name: np.asarray(list(a.values), dtype=object) for a in axes}
    stats = {"n_cells": n_cells, "n_resumed": n_cells - len(todo), "n_computed": runner.computed,
             "n_failed": len(runner.failed), "failures": dict(runner.failed), "wall_time": wall,
             "cell_wall_time": float(sum(float(r.get("wall_time", 0.0))
                                         for r in runner.records.values()))}
    res = PhaseResult(dims, coords, data, config, out_s, stats)
    if out_s is not None:
        res.save(out_s, plot=plot)
    return res
