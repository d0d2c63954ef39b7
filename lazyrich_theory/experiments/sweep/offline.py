"""The offline theory's boundary of a phase sweep (issue 13): the predicted time at which the
population loss falls under the sweep's threshold, on its alpha x eps grid, with no fitted
constant (:func:`~lazyrich_theory.theory.offline.phase_boundary_times`): the spectral closure
by default (seconds), the DMFT (``offline="dmft"``, one to two minutes per solve, ~10
solves per seed; its default column closure, spread where the node's linear column is fast),
which has the memorisation floor that decides whether a cell reaches the threshold,
or the mirror-descent interpolant (``offline="interpolant"``: its tau -> inf loss, one convex
solve per cell and seed, decides which cells reach the threshold; the time is the spectral
closure's).

Computed when the assembled result is built (not stored in the cells, not part of the sweep's
identity), from the base problem at N = inf (the theory is N = inf whatever the cells' N) and
each seed's own training set and teacher (b2 = 2 tau |beta|^2 / D).  Only for a sweep whose
axes are exactly alpha and eps (any seeds), whose base problem is in the theory's domain
(``offline_reason``; the default spectral boundary with kappa = P / D >= ``KAPPA_SPECTRAL``,
the DMFT and the interpolant at any kappa > 1, the interpolant in convention A), and with
``predict``; otherwise the variable is absent and :func:`offline_phase` says why
(docs/offline_theory.md §12.3 and §15.3 measure the boundaries against the exact one on the
Fig. 3(e) grid).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.experiments.sweep.axes import Axis
from lazyrich_theory.experiments.with_theory import offline_reason
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline import KAPPA_SPECTRAL, offline_inputs, phase_boundary_times
from lazyrich_theory.theory.offline.implicit_bias import interpolant_floors, interpolant_reason

__all__ = ["OFFLINE_VARIABLE", "OFFLINE_DESCRIPTION", "OFFLINE_CHOICES", "offline_phase"]

#: The PhaseResult variable (and phase.csv column) of the offline theory.
OFFLINE_VARIABLE = "offline_test_time"
#: Its definition (phase.json, phase.nc).
OFFLINE_DESCRIPTION = ("offline theory (N = inf, no fitted constant; "
                       "theory.offline.phase_boundary_times, its method in offline_theory): "
                       "first step at which the predicted "
                       "population loss is under the absolute threshold (inf if not within T; "
                       "interpolant: inf also where its tau -> inf loss, offline_theory.floors, "
                       "is not under it); computed from the base problem and each seed's "
                       "training set and teacher, at N = inf")
#: What ``offline`` can be: the theory that draws the boundary, or none.
OFFLINE_CHOICES = ("spectral", "dmft", "interpolant", "none")
#: How each method is described in ``info["theory"]`` (and the plot's legend).
_THEORY = {"spectral": "N = inf (spectral closure)",
           "dmft": "N = inf (DMFT, alpha-eps collapse)",
           "interpolant": "N = inf (floor: mirror-descent interpolant)"}


def _reason(base: Problem, axes: Sequence[Axis], predict: bool, method: str) -> str | None:
    """Why the sweep gets no offline boundary (one line), None when it does."""
    if method == "none":
        return "not computed: offline='none' (--offline-theory none)"
    if not predict:
        return "not computed: the sweep's predictions are off (predict=False, --no-predict)"
    grid = [a.name for a in axes if a.name != "seed"]
    if sorted(grid) != ["alpha", "eps"]:
        return (f"the sweep's axes are {' x '.join(grid) or 'seed only'}: the offline boundary "
                "is computed on an alpha x eps grid only")
    # the spectral boundary (the default) where it is validated; an explicit DMFT or
    # interpolant at any kappa > 1 in the theory's domain (the interpolant: convention A too)
    why = interpolant_reason(base) if method == "interpolant" else offline_reason(base, method)
    if why is not None:
        return why
    kappa = base.P / base.D
    if method == "spectral" and kappa < KAPPA_SPECTRAL:
        return (f"kappa = P/D = {kappa:.3g} < {KAPPA_SPECTRAL:g}: the spectral boundary "
                "is validated for kappa >= 5 only; --offline-theory interpolant (a convex "
                "solve per cell, seconds) or dmft (minutes) draws one at any kappa > 1")
    for a in axes:
        if a.name in ("alpha", "eps") and not all(float(v) > 0 for v in a.values):
            return f"{a.name} values must all be > 0 for the offline theory"
    return None


def offline_phase(base: Problem, axes: Sequence[Axis], config: Mapping[str, Any],
                  method: str = "spectral", log: Callable[[str], None] | None = None
                  ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The offline theory's predicted threshold time for every cell of a sweep.

    Parameters
    ----------
    base : Problem
        The sweep's base problem (its N is replaced by inf).
    axes : sequence of Axis
        The sweep's axes, ``seed`` last.
    config : mapping
        The sweep's configuration (``steps``, ``threshold``, ``predict``).
    method : {"spectral", "dmft", "interpolant", "none"}
        The theory (``phase_boundary_times``), or none.  ``interpolant``: a cell reaches the
        threshold iff the mirror-descent interpolant's tau -> inf loss (its interpolation
        floor, :func:`~lazyrich_theory.theory.offline.implicit_bias.interpolant_floors`, one
        solve per cell and seed) is under it, at the spectral closure's time (which has no
        floor and is early, docs §15.3); inf elsewhere.
    log : callable, optional
        Receives one line before a DMFT boundary (it takes minutes) and one per DMFT node.

    Returns
    -------
    values : np.ndarray or None
        Shape of the sweep's grid (seed included): the predicted first step with the
        population loss under ``threshold`` (inf: not within ``steps``); None when not
        computed.
    info : dict
        JSON-ready: ``method`` (the method or None), ``reason`` (None or one line),
        ``definition``, and when computed ``theory``, ``threshold``, ``kappa`` and ``b2``
        (one per seed, in the seed axis' order); for ``interpolant`` also ``floors`` (the
        absolute floors, [seed][alpha][eps]).
    """
    info: dict[str, Any] = {"method": None, "reason": None, "definition": OFFLINE_DESCRIPTION}
    why = _reason(base, axes, bool(config.get("predict", True)), method)
    if why is None:
        if method == "dmft" and log is not None:
            log("phase: offline theory (DMFT) boundary: about 10 DMFT solves per seed, "
                "one to two minutes each")
        if method == "interpolant" and log is not None:
            log("phase: offline theory (interpolant) floors: one convex solve per cell and "
                "seed, 0.1-1 s at D = 100, 3-12 s at D = 400")
        try:
            values, b2, kappa, floors, nodes = _times(base, axes, int(config["steps"]),
                                                      float(config["threshold"]), method, log)
        except ProblemError as exc:
            why = str(exc)
        except DivergenceError as exc:      # the cells are kept: the boundary is left out
            why = f"the {method} boundary could not be drawn: {exc}"
    if why is not None:
        info["reason"] = why
        return None, info
    info.update(method=method, theory=_THEORY[method],
                threshold=float(config["threshold"]), kappa=kappa, b2=b2)
    if nodes:
        info["dmft_nodes"] = nodes
        info["dmft_nodes_definition"] = ("per seed, each DMFT node solved: alpha eps, its "
                                         "alpha / eps and the column closure that ran there "
                                         "(docs/offline_theory.md §12.3)")
    if floors:
        info["floors"] = floors
        info["floors_definition"] = ("the mirror-descent interpolant's absolute tau -> inf "
                                     "population loss per cell, [seed][alpha][eps]; a cell "
                                     "reaches the threshold iff it is under it (docs §15)")
    return values, info


def _times(base: Problem, axes: Sequence[Axis], steps: int, threshold: float, method: str,
           log: Callable[[str], None] | None
           ) -> tuple[np.ndarray, list[float], float, list, list]:
    """phase_boundary_times per seed, laid out like the sweep's grid; (values, b2s, kappa,
    floors: the interpolant's per seed, [] for the other methods; nodes: the DMFT's per seed,
    [] for the other methods)."""
    by_name = {a.name: a for a in axes}
    scale = base.init_scale                     # the theory reads alpha and eps times it
    alpha_axis = [float(v) for v in by_name["alpha"].values]
    eps_axis = [float(v) for v in by_name["eps"].values]
    alpha, eps = [v * scale for v in alpha_axis], [v * scale for v in eps_axis]
    seeds = by_name["seed"].values
    out = np.empty((len(alpha), len(eps), len(seeds)))
    b2s: list[float] = []
    floors: list = []
    nodes: list = []
    kappa = math.nan
    time_method = "spectral" if method == "interpolant" else method
    for k, seed in enumerate(seeds):
        problem = base.replace(N=math.inf, seed=int(seed))
        inp = offline_inputs(problem)
        kappa = inp.kappa
        b2s.append(inp.b2)
        grid = phase_boundary_times(inp.kappa, inp.b2, inp.D, inp.eta0, alpha, eps, steps,
                                    threshold=threshold, method=time_method, log=log)
        out[:, :, k] = grid["threshold_time"]
        if method == "dmft":
            nodes.append([{"alpha_eps": float(a), "alpha_over_eps": float(f"{r:.12g}"),
                           "column_closure": c} for a, r, c in
                          zip(grid["nodes"], grid["ratios"], grid["column_closures"])])
        if method == "interpolant":
            fl = interpolant_floors(problem, alpha_axis, eps_axis, log=log)  # scales them
            out[:, :, k] = np.where(fl < threshold, out[:, :, k], math.inf)
            floors.append(fl.tolist())
    order = [("alpha", "eps", "seed").index(a.name) for a in axes]
    return np.transpose(out, order), b2s, kappa, floors, nodes
