"""The offline theory's boundary of a phase sweep (issue 13): the spectral closure's predicted
time at which the population loss falls under the sweep's threshold, on its alpha x eps grid,
with no fitted constant (:func:`~lazyrich_theory.theory.offline.phase_boundary_times`).

Computed once per sweep and seed when the assembled result is built (a few closure solves,
seconds; not per cell, not stored in the cells), from the base problem at N = inf (the theory
is N = inf whatever the cells' N) and each seed's own teacher (b2 = 2 tau |beta|^2 / D).  Only
for a sweep whose axes are exactly alpha and eps (any seeds), whose base problem is in the
theory's domain with kappa = P / D >= ``KAPPA_SPECTRAL``, and with ``predict``; otherwise
the variable is absent and :func:`offline_phase` says why (docs/offline_theory.md §12.3
measured that this boundary does not match the exact one: it is drawn beside it as it is).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.sweep.axes import Axis
from lazyrich_theory.experiments.with_theory import offline_reason
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline import offline_inputs, phase_boundary_times

__all__ = ["OFFLINE_VARIABLE", "OFFLINE_DESCRIPTION", "offline_phase"]

#: The PhaseResult variable (and phase.csv column) of the offline theory.
OFFLINE_VARIABLE = "offline_test_time"
#: Its definition (phase.json, phase.nc).
OFFLINE_DESCRIPTION = ("offline theory (spectral closure, N = inf, no fitted constant; "
                       "theory.offline.phase_boundary_times): first step at which the predicted "
                       "population loss is under the absolute threshold (inf if not within T); "
                       "computed once per sweep and seed from the base problem and the seed's "
                       "teacher, not per cell")


def _reason(base: Problem, axes: Sequence[Axis], predict: bool) -> str | None:
    """Why the sweep gets no offline boundary (one line), None when it does."""
    if not predict:
        return "not computed: the sweep's predictions are off (predict=False, --no-predict)"
    grid = [a.name for a in axes if a.name != "seed"]
    if sorted(grid) != ["alpha", "eps"]:
        return (f"the sweep's axes are {' x '.join(grid) or 'seed only'}: the offline boundary "
                "is computed on an alpha x eps grid only")
    why = offline_reason(base)
    if why is not None:
        return why
    for a in axes:
        if a.name in ("alpha", "eps") and not all(float(v) > 0 for v in a.values):
            return f"{a.name} values must all be > 0 for the offline theory"
    return None


def offline_phase(base: Problem, axes: Sequence[Axis],
                  config: Mapping[str, Any]) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The offline theory's predicted threshold time for every cell of a sweep.

    Parameters
    ----------
    base : Problem
        The sweep's base problem (its N is replaced by inf).
    axes : sequence of Axis
        The sweep's axes, ``seed`` last.
    config : mapping
        The sweep's configuration (``steps``, ``threshold``, ``predict``).

    Returns
    -------
    values : np.ndarray or None
        Shape of the sweep's grid (seed included): the predicted first step with the
        population loss under ``threshold`` (inf: not within ``steps``); None when not
        computed.
    info : dict
        JSON-ready: ``method`` ("spectral" or None), ``reason`` (None or one line),
        ``definition``, and when computed ``theory``, ``threshold``, ``kappa`` and ``b2``
        (one per seed, in the seed axis' order).
    """
    info: dict[str, Any] = {"method": None, "reason": None, "definition": OFFLINE_DESCRIPTION}
    why = _reason(base, axes, bool(config.get("predict", True)))
    if why is None:
        try:
            values, b2, kappa = _times(base, axes, int(config["steps"]),
                                       float(config["threshold"]))
        except ProblemError as exc:
            why = str(exc)
    if why is not None:
        info["reason"] = why
        return None, info
    info.update(method="spectral", theory="N = inf (spectral closure)",
                threshold=float(config["threshold"]), kappa=kappa, b2=b2)
    return values, info


def _times(base: Problem, axes: Sequence[Axis], steps: int,
           threshold: float) -> tuple[np.ndarray, list[float], float]:
    """phase_boundary_times per seed, laid out like the sweep's grid; (values, b2s, kappa)."""
    by_name = {a.name: a for a in axes}
    scale = base.init_scale                     # the theory reads alpha and eps times it
    alpha = [float(v) * scale for v in by_name["alpha"].values]
    eps = [float(v) * scale for v in by_name["eps"].values]
    seeds = by_name["seed"].values
    out = np.empty((len(alpha), len(eps), len(seeds)))
    b2s: list[float] = []
    kappa = math.nan
    for k, seed in enumerate(seeds):
        inp = offline_inputs(base.replace(N=math.inf, seed=int(seed)))
        kappa = inp.kappa
        b2s.append(inp.b2)
        out[:, :, k] = phase_boundary_times(inp.kappa, inp.b2, inp.D, inp.eta0, alpha, eps,
                                            steps, threshold=threshold)["threshold_time"]
    order = [("alpha", "eps", "seed").index(a.name) for a in axes]
    return np.transpose(out, order), b2s, kappa
