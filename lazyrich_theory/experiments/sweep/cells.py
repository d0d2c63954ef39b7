"""Sweep cells: what one cell is (its spec and id), how it is computed and measured, and its
file ``DIR/cells/<id>.json``.

A cell is one point of the sweep's grid: one run of the reduced dynamics
(:func:`lazyrich_theory.core.solve.solve`; exact GD stops at convergence, ``stop=tol``) from which
:data:`METRICS` are measured.  Its id hashes everything that determines its result.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from lazyrich_theory.core.solve import solve
from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.experiments.sweep.axes import Axis
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.schedule import save_times
from lazyrich_theory.spec.streams import is_plain_gd, sgd_mode
from lazyrich_theory.storage import atomic_write_json, file_sha256, jsonable
from lazyrich_theory.theory.lazy import LinearizedModel
from lazyrich_theory.theory.timescales import (
    first_time_below,
    grokking_metrics,
    lazy_peak_reason,
    predict_timescales,
)

__all__ = ["FORMAT", "METRICS", "RESULT_METRICS", "STATUSES", "cell_id", "plan_cells",
           "cell_metrics", "predicted_grokking", "run_cell", "cell_path", "store_cell",
           "read_cell", "remove_stale_temporaries", "load_cell", "cell_problem",
           "record_checksum", "file_sha256", "SweepWarning", "log_computed", "logged_ids"]

#: Format version of sweep.json / cell files (part of every cell id).
FORMAT = 1

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

#: What a cell of a PhaseResult can be.
STATUSES = ("ok", "diverged", "failed", "missing")


# ---------------------------------------------------------------------------------- plan
def cell_id(spec: Mapping[str, Any]) -> str:
    """Content hash (16 hex digits) of everything that determines a cell's result."""
    keys = ("problem", "steps", "method", "integrator", "rtol", "atol", "threshold",
            "relative", "tol", "predict")
    payload = {"format": FORMAT, **{k: spec[k] for k in keys}}
    text = json.dumps(jsonable(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_cells(base: Problem, axes: Sequence[Axis], steps: int, method: str, integrator: str,
               rtol: float | None, atol: float | None, threshold: float, relative: float,
               tol: float | None, predict: bool) -> list[dict[str, Any]]:
    """The spec (with its ``id``) of every cell of the grid, in grid order (last axis fastest).

    Every cell's Problem is built, and so validated, before anything runs."""
    dims = tuple(a.name for a in axes)
    cells: list[dict[str, Any]] = []
    for combo in itertools.product(*(a.values for a in axes)):
        changes = dict(zip(dims, combo))
        try:
            problem = base.replace(**changes)
        except ProblemError as exc:
            desc = ", ".join(f"{k}={jsonable(v)}" for k, v in changes.items())
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
    return cells


# ---------------------------------------------------------------------------------- compute
def cell_metrics(t: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray,
                 threshold: float = 0.1, relative: float = 0.1,
                 tol: float | None = None, steps: float | None = None) -> dict[str, float]:
    """The measured part of :data:`METRICS` for one trajectory (see their definitions).

    With ``tol`` the trajectory is cut at the first save time where train and test loss are
    both under ``tol`` (``stop_time``); the final losses are read there.
    """
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


def _gd_run(problem: Problem, steps: int, tol: float | None, method: str = "gd",
            rtol: float | None = None):
    """Discrete GD (``solve(method="gd")`` or the strides of "gd-fast") stopped at the first
    save time where train and test loss are both under ``tol`` (None: run to the end)."""
    traj = solve(problem, steps, method=method, rtol=rtol if method == "gd-fast" else None,
                 stop=tol if tol is not None and tol > 0 else None)
    return traj.t, traj.train_loss, traj.test_loss


def _predictions(problem: Problem, steps: int, method: str, threshold: float,
                 times: np.ndarray) -> dict[str, float]:
    """The theory's predictions for one cell (predict_timescales + the linearised model)."""
    data = problem.data()
    out: dict[str, float] = {"predicted_lazy_train_time": math.nan,
                             "predicted_lazy_peak_time": math.nan}
    peak, why = None, None
    if problem.centered and problem.target == "paper" and is_plain_gd(problem):
        lazy_train, peak, why = _lazy_times(problem, data, method, threshold, times)
        out["predicted_lazy_train_time"] = lazy_train
        out["predicted_lazy_peak_time"] = peak
    ts = predict_timescales(problem, data, lazy_peak_time=peak, lazy_peak_reason=why)
    out.update(predicted_lazy_fit_time=ts.lazy_fit_time,
               predicted_rich_time_estimate=ts.rich_time_estimate,
               predicted_rich_time_population=ts.rich_time_population,
               predicted_grokking_delay=ts.grokking_delay)
    lazy = out["predicted_lazy_train_time"]
    out["predicted_time_ratio"] = (out["predicted_rich_time_population"] / lazy
                                   if lazy > 0 else math.nan)
    out["predicted_grokking"] = predicted_grokking(out, steps)
    return {k: float(v) for k, v in out.items()}


def _lazy_times(problem: Problem, data: Any, method: str, threshold: float,
                times: np.ndarray) -> tuple[float, float, str | None]:
    """(lazy train time, lazy peak time, why there is no peak) of the centered N = inf model
    linearised at initialisation, on the cell's save times.

    The peak is the argmax of its population test loss unless
    :func:`~lazyrich_theory.theory.timescales.lazy_peak_reason` says that argmax is no peak
    (the loss only falls, or rises monotonically to its t -> inf limit or to the end of the
    grid): then NaN, with the reason."""
    beta_eff = np.asarray(data.beta, float) * math.sqrt(2.0 * problem.tau)
    # y = tau (beta.x)^2 = 0.5 (beta_eff.x)^2: the model's teacher scale is 0.5
    model = LinearizedModel.initial_infinite_width(data.X * problem.input_scale, beta_eff,
                                                   problem.eps, problem.eta0, 0.5)
    cur = model.curves(times, "gd" if method in ("gd", "gd-fast") else "flow", test=False,
                       whole_steps=False)
    train, test = cur.train_loss, cur.population_loss
    k = int(np.argmax(test))
    peak = float(times[k]) if k > 0 else None
    why = lazy_peak_reason(peak, float(test[k]), model.limit().population_mse,
                           horizon=float(times[-1]))
    return (first_time_below(times, train, threshold),
            math.nan if why is not None else float(peak), why)


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

    ``spec`` holds ``problem`` (a Problem dict), ``steps``, ``method`` ("flow", "gd" or "gd-fast"),
    ``integrator``, ``rtol``, ``atol``, ``threshold``, ``relative``, ``tol`` and ``predict``.
    Returns the cell record (``status`` "ok" or "diverged", ``metrics``, ``error``).
    BLAS runs single-threaded, so the result does not depend on where it is computed.
    """
    t0 = time.perf_counter()
    problem = Problem.from_dict(dict(spec["problem"]))
    steps = int(spec["steps"])
    tol = spec.get("tol")
    status, error = "ok", None
    metrics: dict[str, float] = {k: math.nan for k in RESULT_METRICS}
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            if spec["method"] in ("gd", "gd-fast"):
                t, tr, te = _gd_run(problem, steps, tol, spec["method"], spec.get("rtol"))
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


# ---------------------------------------------------------------------------------- files
class SweepWarning(UserWarning):
    """A stored cell (or a sweep's folder) was found wrong and is being repaired."""


def cell_path(out: str, cid: str) -> str:
    """``out/cells/<cid>.json``: where the cell with id ``cid`` is stored."""
    return os.path.join(out, "cells", f"{cid}.json")


def record_checksum(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a cell record's payload: every field but ``checksum``, as canonical
    JSON (sorted keys, no spaces; floats round-trip exactly through JSON)."""
    body = {k: v for k, v in jsonable(dict(record)).items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def store_cell(out: str, record: Mapping[str, Any], log: bool = True) -> None:
    """Write a finished cell atomically, with the checksum of its payload, then note it in
    computed.log."""
    rec = jsonable(dict(record))
    rec["checksum"] = record_checksum(rec)
    atomic_write_json(cell_path(out, rec["id"]), rec)
    if log:
        log_computed(out, rec["id"], rec.get("pid", os.getpid()))


def log_computed(out: str, cid: str, pid: int) -> None:
    """Append the line "<id> <pid>" to computed.log (one O_APPEND write: workers share it)."""
    fd = os.open(os.path.join(out, "computed.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o666)
    try:
        os.write(fd, f"{cid} {pid}\n".encode())
    finally:
        os.close(fd)


def logged_ids(out: str) -> set[str]:
    """The cell ids computed.log names (empty if it does not exist)."""
    try:
        with open(os.path.join(out, "computed.log")) as f:
            return {line.split()[0] for line in f if line.strip()}
    except FileNotFoundError:
        return set()


def remove_stale_temporaries(folder: str) -> None:
    """Half-written temporary files of a killed run (never complete cells: those are renamed
    into place atomically).  Called under the folder's lock: one sweep per folder at a time."""
    for name in os.listdir(folder):
        if name.startswith(".tmp-"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def read_cell(path: str) -> dict[str, Any] | None:
    """The stored cell record at ``path``, or None if it is absent, unreadable or incomplete
    (no verification: see :func:`load_cell`)."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or "metrics" not in rec or "id" not in rec:
        return None
    return rec


def _canonical(obj: Any) -> str:
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))


def cell_problem(record: Mapping[str, Any], spec: Mapping[str, Any],
                 data_sha256: str | None = None, legacy: bool = False) -> str | None:
    """Why the stored ``record`` is not the cell ``spec``, or None when it is.

    The record must carry the spec's id and problem, the checksum of its payload (a record
    without one is accepted only from a ``legacy`` folder, written before cells had
    checksums), and, if it names the data file's SHA-256, ``data_sha256``.
    """
    if record.get("id") != spec["id"]:
        return f"holds cell {record.get('id')!r}, not {spec['id']}"
    if not isinstance(record.get("metrics"), dict):
        return "has no metrics"
    if "problem" in record and _canonical(record["problem"]) != _canonical(spec["problem"]):
        return "holds the result of another problem than its id names"
    if "checksum" not in record:
        if not legacy:
            return "has no checksum"
    elif record["checksum"] != record_checksum(record):
        return "does not match its checksum (edited or damaged)"
    stored = record.get("data_sha256")
    if data_sha256 is not None and stored is not None and stored != data_sha256:
        return "was computed from other contents of the data file"
    return None


def load_cell(out: str, spec: Mapping[str, Any], data_sha256: str | None = None,
              legacy: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """The verified record of cell ``spec`` stored in ``out``: ``(record, None)``; ``(None,
    None)`` when there is none; ``(None, message)`` when the file is there but is not this
    cell (:func:`cell_problem`): the file is then renamed ``<id>.json.rejected`` so that the
    cell is computed and stored again, and ``message`` (one line) says so."""
    path = cell_path(out, spec["id"])
    if not os.path.isfile(path):
        return None, None
    rec = read_cell(path)
    why = "is unreadable or incomplete" if rec is None else cell_problem(rec, spec,
                                                                         data_sha256, legacy)
    if why is None:
        return rec, None
    try:
        os.replace(path, path + ".rejected")
    except OSError:
        pass
    return None, (f"{os.path.join('cells', spec['id'] + '.json')} {why}; recomputing it "
                  "(the file is kept as .rejected)")
