"""A sweep's size, checked before anything is planned, written or computed.

A sweep is refused, with one line stating the number of cells and the estimate, when it would
not fit this machine: the work of its cells (each estimated like one run by
:func:`lazyrich_theory.spec.resources.estimate`, plus a fixed cost per cell for planning,
storing and assembling it) exceeds a day on the workers that run it, or the memory of the
grid's bookkeeping plus the cells running at once exceeds what is available.  ``allow_large``
(``--i-know``) lets it through.

Two stages: :func:`check_grid_size` counts the cells from the ``--vary`` specs without
building them (``alpha=1:2:100000000`` is refused at once, before a hundred million values
exist) and estimates each as the base problem; :func:`check_cells` sums the estimates of the
planned cells' own problems (the swept D, P, N, ... enter).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lazyrich_theory.core.solve import estimate_method
from lazyrich_theory.experiments.sweep.axes import Axis
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.resources import (
    ALLOW_LARGE_HINT,
    MAX_SECONDS,
    MEMORY_FRACTION,
    Estimate,
    ResourceError,
    available_memory,
    estimate,
    format_bytes,
    format_seconds,
)

__all__ = ["PLAN_BYTES", "CELL_OVERHEAD", "count_cells", "check_grid_size", "check_cells"]

#: Memory per cell of the grid's bookkeeping (its spec with the problem and id, its record,
#: its entries of the result), in bytes.
PLAN_BYTES = 4_000
#: Fixed cost per cell (planning and hashing its id, storing and verifying its file,
#: assembling the result), in seconds.
CELL_OVERHEAD = 2e-3


def _spec_count(name: str, spec: Any) -> int | None:
    """The number of values of one axis from its spec, without building them (None: the spec
    is malformed; the axis parser reports it)."""
    if isinstance(spec, Axis):
        return len(spec)
    if isinstance(spec, str):
        text = spec.strip()
        parts = text.split(":")
        if len(parts) > 1 and name.strip().lower() != "init":   # init specs are lists
            if parts[0].strip().lower() == "log":
                parts = parts[1:]
            try:
                count = int(parts[2]) if len(parts) == 3 else 0
            except ValueError:
                return None
            return count if count >= 1 else None
        return text.count(",") + 1
    try:
        return int(np.asarray(spec, dtype=object).size)
    except Exception:  # noqa: BLE001 - not a sequence: the axis parser reports it
        return None


def count_cells(vary: Mapping[str, Any] | Sequence[Axis] | Iterable[str] | None,
                seeds: int | Sequence[int] | None = None) -> int | None:
    """The number of cells of a sweep, from its axes' specs (nothing is built).

    Parameters
    ----------
    vary : mapping, sequence of Axis, or sequence of str
        As ``sweep``'s ``vary`` ({name: spec or values}, or axes), or the command line's
        ``NAME=SPEC`` items.
    seeds : int or sequence of int, optional
        As ``sweep``'s ``seeds``.

    Returns
    -------
    int or None
        The product of the axes' lengths; None when a spec is malformed (the axis parser
        reports it).
    """
    if vary is None:
        items: list[tuple[str, Any]] = []
    elif isinstance(vary, Mapping):
        items = list(vary.items())
    else:
        items = []
        for item in vary:
            if isinstance(item, Axis):
                items.append((item.name, item))
            elif isinstance(item, str) and "=" in item:
                items.append(tuple(item.split("=", 1)))    # type: ignore[arg-type]
            else:
                return None
    total = 1
    for name, spec in items:
        count = _spec_count(str(name), spec)
        if count is None:
            return None
        total *= count
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        total *= max(int(seeds), 1)
    elif seeds is not None:
        total *= max(_spec_count("seed", seeds) or 1, 1)
    return total


def _refuse(what: str, work: float, flops: float, memory: float, running: int | None,
            allow_large: bool) -> Estimate:
    """The grid's estimate (``what``: its cells, ``work``: seconds on one worker), refused
    with a ResourceError (one line) if it exceeds the machine unless ``allow_large``."""
    on = (f"on {running} worker{'s' if running != 1 else ''}" if running is not None
          else "on 1 worker (the scheduler's workers are not known yet)")
    wall = work / (running or 1)
    total = Estimate(int(min(memory, 1e30)), flops, wall, what)
    if allow_large:
        return total
    cost = (f"~{format_bytes(memory)} of memory and about {format_seconds(wall)} of work "
            f"{on} (estimate")
    avail = available_memory()
    if avail is not None and memory > MEMORY_FRACTION * avail:
        raise ResourceError(f"sweep too large for this machine: {what}: {cost}; "
                            f"{format_bytes(avail)} of memory available); use fewer cells or "
                            f"{ALLOW_LARGE_HINT}", total)
    if wall > MAX_SECONDS:
        raise ResourceError(f"sweep too long: {what}: {cost}; limit "
                            f"{format_seconds(MAX_SECONDS)} of work); use fewer cells or "
                            f"{ALLOW_LARGE_HINT}", total)
    return total


def check_grid_size(base: Problem, vary: Any, seeds: Any, steps: int, method: str,
                    integrator: str, predict: bool, running: int | None,
                    allow_large: bool = False) -> Estimate | None:
    """Refuse a grid too large for this machine before any of its values is built.

    Parameters
    ----------
    base : Problem
        Each cell is estimated as this problem.
    vary, seeds
        As :func:`count_cells`.
    steps, method, integrator, predict
        The sweep's settings (``predict``: the theory's predictions in each cell).
    running : int or None
        How many cells run at once (None: unknown, counted as 1).
    allow_large : bool
        Return the estimate without refusing (``--i-know``).

    Returns
    -------
    Estimate or None
        The grid's estimate (None when a spec is malformed: the axis parser reports it).

    Raises
    ------
    ResourceError
        One line with the number of cells and the estimate.
    """
    n_cells = count_cells(vary, seeds)
    if n_cells is None:
        return None
    cell = estimate(base, steps, estimate_method(base, steps, method), integrator=integrator,
                    theory=predict)
    seconds = cell.seconds + CELL_OVERHEAD
    memory = n_cells * PLAN_BYTES + cell.memory * min(running or 1, n_cells)
    what = f"{n_cells} cells x ~{format_seconds(seconds)} each ({cell.what})"
    return _refuse(what, n_cells * seconds, n_cells * cell.flops, memory, running,
                   allow_large)


def check_cells(cells: Sequence[Mapping[str, Any]], method: str, integrator: str,
                predict: bool, running: int | None, local: bool = True,
                allow_large: bool = False) -> Estimate:
    """Refuse planned cells whose total work or memory exceeds this machine.

    Parameters
    ----------
    cells : sequence of dict
        The cells' specs (``plan_cells``): each one's problem and steps are estimated.
    method, integrator, predict
        The sweep's settings.
    running : int or None
        How many cells run at once (None: unknown, counted as 1).
    local : bool
        The cells run on this machine (their memory counts against it); False for a Dask
        cluster.
    allow_large : bool
        Return the estimate without refusing.

    Returns
    -------
    Estimate
        The grid's estimate; what it names is its largest cell.

    Raises
    ------
    ResourceError
        One line with the number of cells and the estimate.
    """
    ests = []
    for spec in cells:
        problem = Problem.from_dict(spec["problem"])
        ests.append(estimate(problem, spec["steps"],
                             estimate_method(problem, spec["steps"], method),
                             integrator=integrator, theory=predict))
    if not ests:
        return Estimate(0, 0.0, 0.0, "no cells")
    n_cells = len(ests)
    work = float(math.fsum(e.seconds for e in ests)) + n_cells * CELL_OVERHEAD
    largest = max(ests, key=lambda e: (e.seconds, e.memory))
    at_once = min(running or 1, n_cells)
    memory = n_cells * PLAN_BYTES + (max(e.memory for e in ests) * at_once if local else 0)
    what = (f"{n_cells} cells x ~{format_seconds(work / n_cells)} each (the largest: "
            f"{largest.what})")
    return _refuse(what, work, float(math.fsum(e.flops for e in ests)), memory, running,
                   allow_large)
