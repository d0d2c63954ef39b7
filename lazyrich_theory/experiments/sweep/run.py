"""``sweep()``: validate the options, check the grid's size against this machine, plan the
cells, check the output folder is writable and the scheduler reachable, check the folder's
configuration and resume from it, execute the missing ones, assemble the :class:`PhaseResult`.

Every refusal (bad option, too large a grid, unwritable folder, malformed or unreachable
scheduler) happens before the folder is created or written."""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.sweep.axes import Axis, sweep_axes
from lazyrich_theory.experiments.sweep.cells import (
    FORMAT,
    RESULT_METRICS,
    SweepWarning,
    file_sha256,
    plan_cells,
    run_cell,
)
from lazyrich_theory.experiments.sweep.executors import (
    Runner,
    connect_scheduler,
    execute,
    executor_workers,
    is_dask_client,
)
from lazyrich_theory.experiments.sweep.folder import (
    INTEGRITY,
    FolderLock,
    check_out,
    open_folder,
)
from lazyrich_theory.experiments.sweep.guard import check_cells, check_grid_size
from lazyrich_theory.experiments.sweep.offline import (
    OFFLINE_CHOICES,
    OFFLINE_VARIABLE,
    offline_phase,
)
from lazyrich_theory.experiments.sweep.result import PhaseResult
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.resources import check_writable
from lazyrich_theory.storage import decode_float, jsonable

__all__ = ["sweep", "sweep_config"]


def sweep_config(base: Problem, axes: Sequence[Axis], steps: int, method: str, integrator: str,
                 rtol: float | None, atol: float | None, threshold: float, relative: float,
                 tol: float | None, predict: bool) -> dict[str, Any]:
    """The sweep's identity (what sweep.json holds); execution settings are not part of it.

    It includes the SHA-256 of the data file's contents (``data_sha256``) when the base
    problem has one, and the version of the cells' integrity scheme (``integrity``).
    """
    config = {"format": FORMAT, "integrity": INTEGRITY, "base_problem": base.to_dict(),
              "axes": [a.to_dict() for a in axes], "steps": int(steps),
              "method": method, "integrator": integrator if method == "flow" else None,
              "rtol": rtol, "atol": atol, "threshold": threshold, "relative": relative,
              "tol": tol, "predict": bool(predict)}
    if base.data_file is not None:
        config["data_sha256"] = data_digest(base.data_file)
    return jsonable(config)


def data_digest(path: str) -> str:
    """SHA-256 of the data file's contents (ProblemError, one line, if it cannot be read)."""
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ProblemError(f"cannot read the data file {path}: {exc.strerror or exc}") from None


def sweep(base: Problem, vary: Mapping[str, Any] | Sequence[Axis] | None, steps: int, *,
          seeds: int | Sequence[int] | None = None, method: str = "flow",
          integrator: str = "rkc", rtol: float | None = None, atol: float | None = None,
          threshold: float = 0.1, relative: float = 0.1, tol: float | None = 1e-6,
          predict: bool = True, out: str | os.PathLike | None = None,
          executor: Any = None, workers: int | None = None, scheduler: Any = None,
          retries: int = 2, progress: bool = True, plot: bool = True,
          shared_fs: bool | None = None, log: Callable[[str], None] | None = None,
          cell_fn: Callable[[Mapping[str, Any]], dict] | None = None,
          recover: bool = False, allow_large: bool = False,
          offline: str = "spectral") -> PhaseResult:
    """Run (or resume) a phase sweep; see the module doc.

    base : the Problem every cell starts from.
    vary : {name: spec or values} (or a list of :class:`Axis`): the swept parameters, any of
        :data:`SWEEPABLE`; the product of all axes is computed.
    steps : horizon T in GD steps.
    seeds : K (seeds base.seed, ..., base.seed + K - 1) or an explicit list; a ``seed`` axis
        in ``vary`` does the same.  Means and spreads are taken over this axis.
    method : "flow" (gradient flow, RKC; default: fast), "gd" (exact GD map) or "gd-fast"
        (discrete GD in error-controlled strides, docs/stride.md; exact GD where they do not
        apply).
    threshold, relative : the absolute grokking threshold (> 0) and the relative one (a
        fraction in (0, 1) of each curve's initial loss; see :data:`METRICS`).
    tol : convergence tolerance: a cell stops at the first save time at which train and test
        loss are both under ``tol`` (gd stops computing there; the flow is integrated to T and
        its record cut there).  None or 0: run every cell to T.
    predict : also compute the theory's predictions (predict_timescales, linearised model).
    out : folder for the resumable storage (None: results only in memory).
    executor : a ``concurrent.futures.Executor`` or a ``distributed.Client`` to run cells on.
    workers : size of the local process pool (default: the number of CPUs; 1 = in-process).
    scheduler : a Dask scheduler address ("tcp://...") or a ``distributed.Client``; an address
        is connected to before the folder is touched (a malformed or unreachable one is
        refused with one line, nothing written).
    retries : how many times a cell whose computation raised, or whose worker died, is tried
        again before it is reported as failed (failed cells are not stored: a re-run tries
        them again).
    shared_fs : whether workers can write to ``out`` themselves (default: True for local
        pools and executors, False for Dask: the client writes each cell as it arrives).
    cell_fn : replaces :func:`run_cell` (for tests and extensions; must be picklable).
    recover : rewrite a corrupt or missing ``sweep.json`` of ``out`` from this sweep and reuse
        the stored cells that verify as its own (without it such a folder is refused with a
        one-line ProblemError that says so).
    allow_large : run a grid whose estimate exceeds this machine (``--i-know``): without it, a
        grid whose cells' estimated work (:func:`~lazyrich_theory.spec.resources.estimate`
        per cell, summed) exceeds a day on its workers, or whose memory exceeds what is
        available, is refused with a ResourceError (one line: the number of cells and the
        estimate) before anything is built (the cells are counted from the specs first).
    offline : the theory of the unfitted offline boundary (``offline_test_time``) of an
        alpha x eps sweep: "spectral" (default, seconds), "dmft" (has the memorisation floor;
        about ten DMFT solves per seed, one to two minutes each), "interpolant" (the floor of the
        mirror-descent interpolant decides which cells reach the threshold, the spectral
        closure gives the time; one convex solve per cell and seed) or "none"
        (:mod:`~lazyrich_theory.experiments.sweep.offline`; not part of the sweep's identity).

    The folder is locked for the whole run (``out/sweep.lock``; a second sweep on it is
    refused) and every stored cell is verified before it is resumed: a cell file that is not
    the cell its name says (another cell, another problem, other data, an edited metric) is
    set aside and computed again, with a :class:`SweepWarning` (one line).
    """
    tol = _validate(method, integrator, steps, threshold, relative, tol, retries, executor,
                    scheduler, workers)
    if offline not in OFFLINE_CHOICES:
        raise ProblemError(f"offline must be one of {', '.join(OFFLINE_CHOICES)}, "
                           f"got {offline!r}")
    settings = (steps, method, integrator, rtol, atol, threshold, relative, tol, predict)
    axes, cells, config = _plan(base, vary, seeds, settings, executor, scheduler, workers,
                                allow_large)
    out_s = None if out is None else os.fspath(out)
    if out_s is not None:
        check_writable(out_s, "--out", siblings=False)
    own = isinstance(scheduler, str)
    if own:     # connected before the folder is touched: a bad address leaves nothing behind
        scheduler = connect_scheduler(scheduler)
    try:
        run = functools.partial(_run, base, axes, cells, config, cell_fn=cell_fn,
                                retries=retries, progress=progress, log=log, offline=offline,
                                executor=executor,
                                scheduler=scheduler, workers=workers, shared_fs=shared_fs)
        if out_s is None:
            return run({}, None)
        check_out(out_s)
        with FolderLock(out_s):
            res = run(open_folder(out_s, config, cells, recover=recover, warn=_warn), out_s)
            res.save(out_s, plot=plot)
        return res
    finally:
        if own:
            scheduler.close()


def _plan(base: Problem, vary: Any, seeds: Any, settings: tuple, executor: Any,
          scheduler: Any, workers: int | None,
          allow_large: bool) -> tuple[list[Axis], list[dict[str, Any]], dict[str, Any]]:
    """The axes, the cells and the identity of a sweep whose size fits this machine: the grid
    is counted (and its estimate checked) from the specs before any value is built, then the
    planned cells' own estimates are summed (:mod:`~lazyrich_theory.experiments.sweep.guard`;
    ResourceError unless ``allow_large``)."""
    steps, method, integrator, *_, predict = settings
    running = executor_workers(executor, scheduler, workers)
    check_grid_size(base, vary, seeds, steps, method, integrator, predict, running,
                    allow_large)
    axes = sweep_axes(base, vary, seeds)
    cells = plan_cells(base, axes, *settings)
    config = sweep_config(base, axes, *settings)
    remote = scheduler is not None or is_dask_client(executor)
    check_cells(cells, method, integrator, predict, running, local=not remote,
                allow_large=allow_large)
    return axes, cells, config


def _warn(message: str) -> None:
    """A repaired problem of the folder (one line)."""
    warnings.warn(message, SweepWarning, stacklevel=2)


def _run(base: Problem, axes: Sequence[Axis], cells: Sequence[dict[str, Any]],
         config: dict[str, Any], done: dict[str, dict], out: str | None, *,
         cell_fn: Callable[[Mapping[str, Any]], dict] | None, retries: int, progress: bool,
         log: Callable[[str], None] | None, offline: str, **execution: Any) -> PhaseResult:
    """Compute the cells missing from ``done`` (``execution``: where, see :func:`execute`)
    and assemble the result."""
    todo = _missing(cells, done)
    _announce(log, out, axes, len(cells), len(done), len(todo))
    runner = Runner(out, len(cells), len(cells) - len(todo), progress and bool(todo), retries,
                    data_sha256=config.get("data_sha256"), warn=_warn)
    t0 = time.perf_counter()
    try:
        execute(todo, run_cell if cell_fn is None else cell_fn, runner,
                custom_cell_fn=cell_fn is not None, **execution)
    finally:
        runner.close()
    wall = time.perf_counter() - t0
    done.update(runner.records)
    return _assemble(base, axes, cells, done, runner, config, out, len(todo), wall,
                     (offline, log))


def _validate(method: str, integrator: str, steps: Any, threshold: Any, relative: Any,
              tol: float | None, retries: Any, executor: Any, scheduler: Any,
              workers: Any) -> float | None:
    """Check the options of :func:`sweep` (ProblemError, one line); returns ``tol`` with 0
    meaning None."""
    if method not in ("flow", "gd", "gd-fast"):
        raise ProblemError(f"method must be 'flow', 'gd' or 'gd-fast', got {method!r}")
    if method == "flow" and integrator not in ("rkc", "dopri5"):
        raise ProblemError(f"integrator must be 'rkc' or 'dopri5', got {integrator!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ProblemError(f"steps must be a positive integer, got {steps!r}")
    for name, v in (("threshold", threshold), ("relative", relative)):
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ProblemError(f"{name} must be a number > 0, got {v!r}")
    if relative >= 1:
        raise ProblemError(f"relative (--relative) must be in (0, 1): the relative threshold is "
                           f"this fraction of each loss's initial value, got {relative!r}")
    if tol is not None and not (math.isfinite(tol) and tol >= 0):
        raise ProblemError(f"tol must be >= 0, got {tol!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ProblemError(f"retries must be a non-negative integer, got {retries!r}")
    if sum(x is not None for x in (executor, scheduler)) > 1:
        raise ProblemError("give at most one of executor and scheduler")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ProblemError(f"workers must be a positive integer, got {workers!r}")
    return None if tol == 0 else tol


def _missing(cells: Sequence[dict[str, Any]], done: Mapping[str, dict]) -> list[dict[str, Any]]:
    """The cells still to compute, each id once (equal parameters give equal cells)."""
    todo = [s for s in cells if s["id"] not in done]
    seen: set[str] = set()
    return [s for s in todo if not (s["id"] in seen or seen.add(s["id"]))]


def _announce(log: Callable[[str], None] | None, out: str | None, axes: Sequence[Axis],
              n_cells: int, n_done: int, n_todo: int) -> None:
    if log is None:
        return
    if n_done:
        log(f"phase: resuming {out}: {n_done} of {n_cells} cells already done, "
            f"computing {n_todo}")
    else:
        log(f"phase: {n_cells} cells ({' x '.join(f'{len(a)} {a.name}' for a in axes)})")


def _assemble(base: Problem, axes: Sequence[Axis], cells: Sequence[Mapping[str, Any]],
              records: Mapping[str, Mapping[str, Any]], runner: Runner,
              config: dict[str, Any], out: str | None, n_todo: int, wall: float,
              offline: tuple[str, Callable[[str], None] | None]) -> PhaseResult:
    """The PhaseResult of the cells' records, in grid order, with the offline theory's
    ``offline_test_time`` (once per sweep, :func:`offline_phase`; after the metrics) where it
    applies and ``offline`` saying how, or why not."""
    dims = tuple(a.name for a in axes)
    shape = tuple(len(a) for a in axes)
    data: dict[str, np.ndarray] = {m: np.full(shape, np.nan) for m in RESULT_METRICS}
    data["status"] = np.full(shape, "missing", dtype="<U8")
    data["cell_id"] = np.empty(shape, dtype="<U16")
    for flat, spec in enumerate(cells):
        idx = np.unravel_index(flat, shape)
        data["cell_id"][idx] = spec["id"]
        rec = records.get(spec["id"])
        if rec is None:
            if spec["id"] in runner.failed:
                data["status"][idx] = "failed"
            continue
        data["status"][idx] = rec.get("status", "ok")
        for m in RESULT_METRICS:
            if m in rec["metrics"]:
                data[m][idx] = decode_float(rec["metrics"][m])
    coords = {a.name: np.asarray(list(a.values), dtype=object) for a in axes}
    n_cells = len(cells)
    stats = {"n_cells": n_cells, "n_resumed": n_cells - n_todo, "n_computed": runner.computed,
             "n_failed": len(runner.failed), "failures": dict(runner.failed), "wall_time": wall,
             "cell_wall_time": float(sum(float(r.get("wall_time", 0.0))
                                         for r in runner.records.values()))}
    t0 = time.perf_counter()
    values, info = offline_phase(base, axes, config, *offline)
    stats["offline_wall_time"] = time.perf_counter() - t0
    if values is not None:
        data = {**{m: data[m] for m in RESULT_METRICS}, OFFLINE_VARIABLE: values,
                "status": data["status"], "cell_id": data["cell_id"]}
    return PhaseResult(dims, coords, data, config, out, stats, info)
