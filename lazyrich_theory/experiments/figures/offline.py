"""Beyond the paper: the offline theory of issue 13 against the exact solver (``kappa``: test
loss vs time for kappa = P/D from below to far above the threshold; docs/offline_theory.md).

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.offline.plot_kappa`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from lazyrich_theory.core.solve import solve
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.figures.common import FigureData, as_list
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.schedule import save_times
from lazyrich_theory.theory.offline import offline_theory
from lazyrich_theory.theory.offline.curves import KAPPA_SPECTRAL
from lazyrich_theory.theory.offline.implicit_bias import (INTERPOLANT_D_DEFAULT,
                                                          entropic_interpolant,
                                                          interpolant_reason)
from lazyrich_theory.theory.offline.rindex import is_finite_rank
from lazyrich_theory.theory.timescales import first_time_below

__all__ = ["KAPPA_VALUES", "kappa"]

#: Default sample ratios of the ``kappa`` figure: below the crossover (the network
#: interpolates without generalising), in it, and far above it.
KAPPA_VALUES = (1.5, 3.0, 5.5, 11.0, 22.0)


def _half(t: np.ndarray, loss: np.ndarray) -> float | None:
    h = first_time_below(t, loss, 0.5 * loss[0])
    return float(h) if math.isfinite(h) else None


def _one(problem: Problem, steps: int, k: float, method: str,
         spectral_everywhere: bool, Ns: int) -> dict[str, Any]:
    """The exact flow and the theory curve(s) at kappa = k."""
    p = problem.replace(P=max(int(round(k * problem.D)), problem.D + 1))
    finite_rank = is_finite_rank(p)    # its theory is the DMFT of the discrete GD itself
    t0 = time.perf_counter()
    exact = solve(p, steps, method="gd" if finite_rank else "flow")
    t1 = time.perf_counter()
    theory = offline_theory(p, steps, method=method, Ns=Ns)
    t2 = time.perf_counter()
    spectral = None
    if (spectral_everywhere and not finite_rank
            and theory.info["offline_method"] != "spectral"):
        spectral = offline_theory(p, steps, method="spectral").population_loss
    limit = (entropic_interpolant(p).population_loss
             if interpolant_reason(p) is None and p.D <= INTERPOLANT_D_DEFAULT else None)
    pop = exact.population_loss
    th = theory.population_loss
    return {"kappa": p.P / p.D, "P": p.P, "t": exact.t, "exact_test": pop, "limit": limit,
            "exact_train": exact.train_loss, "theory_test": th,
            "theory_train": theory.train_loss, "spectral_test": spectral,
            "method": theory.info["offline_method"], "exact_method": exact.method,
            "exact_half_time": _half(exact.t, pop), "theory_half_time": _half(theory.t, th),
            "exact_final": float(pop[-1] / pop[0]), "theory_final": float(th[-1] / th[0]),
            "exact_wall_time": t1 - t0, "theory_wall_time": t2 - t1}


def kappa(problem: Problem, steps: int, kappas: Any = KAPPA_VALUES, method: str = "auto",
          spectral_everywhere: bool = True, Ns: int = 800) -> FigureData:
    """Test (population) loss vs time for several kappa = P/D: the exact gradient flow
    (N = inf) and the offline theory, unfitted.

    Parameters
    ----------
    problem : Problem
        D, alpha, eps, eta0, the init and the seed (N is set to inf, P by kappa).  A
        finite-rank init (``aligned:R:C``, ``lowrank:R``) is compared with its r-index DMFT
        and the exact discrete GD (the DMFT is that of the GD itself); the iid init with the
        exact gradient flow.
    steps : int
    kappas : sequence of float or comma-separated str
    method : {"auto", "spectral", "dmft", "rindex"}
        The theory's method (auto: spectral for kappa >= 5, DMFT below; rindex for a
        finite-rank init).
    spectral_everywhere : bool
        Also draw the spectral closure where ``method`` chose the DMFT (dotted): it shows
        what a theory without memorisation predicts there.
    Ns : int
        DMFT Monte Carlo samples.

    Returns
    -------
    FigureData
        ``kappa_curves.csv`` (t and, per kappa, the exact and theory curves) and the half
        times and final losses in ``result``; ``limit``: the tau -> inf loss / initial of the
        mirror-descent interpolant of each kappa's training set (docs/offline_theory.md §15;
        iid init up to D = 400, else None), drawn in the along-kappa panel.
    """
    ks = [float(k) for k in as_list(kappas)]
    if not ks or any(not k > 1 for k in ks):
        raise ProblemError(f"kappas must be numbers > 1, got {kappas!r}")
    base = problem.replace(N="inf")
    save_times(steps)                          # validates before anything runs
    runs = [_one(base, steps, k, method, bool(spectral_everywhere), int(Ns)) for k in ks]
    t = runs[0]["t"]
    cols: dict[str, np.ndarray] = {}
    for r in runs:
        tag = f"k{r['kappa']:g}"
        cols[f"exact_test_{tag}"] = r["exact_test"]
        cols[f"exact_train_{tag}"] = r["exact_train"]
        cols[f"theory_test_{tag}"] = r["theory_test"]
        if r["spectral_test"] is not None:
            cols[f"spectral_test_{tag}"] = r["spectral_test"]
    keys = ("kappa", "P", "method", "exact_method", "exact_half_time", "theory_half_time",
            "exact_final", "theory_final", "limit", "exact_wall_time", "theory_wall_time")
    result = {"runs": [{k: r[k] for k in keys} for r in runs],
              "spectral_from_kappa": KAPPA_SPECTRAL}
    return FigureData(result=result, plot={"runs": runs, "problem": base},
                      tables={"kappa_curves.csv": (("t",) + tuple(cols),
                                                   [t] + list(cols.values()))})
