"""Beyond the paper: the offline theory of issue 13 against the exact solver (``kappa``: test
loss vs time for kappa = P/D from below to far above the threshold; docs/offline_theory.md)
and its tau -> inf phase diagram (``floor-map``: where the flow ends over kappa and
m = alpha eps / b2, docs/offline_theory.md §15.5).

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.offline.plot_kappa` and
:func:`lazyrich_theory.plotting.offline.plot_floor_map`.
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import numpy as np

from lazyrich_theory.core.solve import solve
from lazyrich_theory.core.threads import map_on_free_cores
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.figures.common import FigureData, as_list
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.resources import check_resources
from lazyrich_theory.spec.schedule import save_times
from lazyrich_theory.theory.offline import (
    check_closure_applies,
    check_dmft_steps,
    offline_inputs,
    offline_method,
    offline_theory,
)
from lazyrich_theory.theory.offline.curves import KAPPA_SPECTRAL, OFFLINE_METHODS
from lazyrich_theory.theory.offline.dmft import check_draws, check_ns
from lazyrich_theory.theory.offline.inputs import input_fields
from lazyrich_theory.theory.offline.implicit_bias import (INTERPOLANT_D_DEFAULT,
                                                          entropic_interpolant,
                                                          interpolant_limit,
                                                          interpolant_reason)
from lazyrich_theory.theory.offline.rindex import check_rindex_ns, is_finite_rank
from lazyrich_theory.theory.offline.summary import half_crossing
from lazyrich_theory.theory.timescales import half_time

__all__ = ["KAPPA_VALUES", "FLOOR_KAPPAS", "FLOOR_MS", "kappa", "floor_map"]

#: Default sample ratios of the ``kappa`` figure: below the crossover (the network
#: interpolates without generalising), in it, and far above it.
KAPPA_VALUES = (1.5, 3.0, 5.5, 11.0, 22.0)


#: Default kappa = P/D grid of the ``floor-map`` figure.
FLOOR_KAPPAS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
#: Default m = alpha eps / b2 grid of the ``floor-map`` figure (11 points, 0.003 to 1, geometric).
FLOOR_MS = (0.003, 0.00536, 0.00959, 0.0171, 0.0306, 0.0548, 0.0979, 0.175, 0.313, 0.559, 1.0)

#: What ``floor_map``'s numbers are.
FLOOR_DEFINITION = ("tau -> inf population loss / initial of the mirror-descent interpolant "
                    "(docs/offline_theory.md §15), N = inf, mean over the training sets of "
                    "seeds seed .. seed + seeds - 1, each at alpha eps = m b2 with its own b2 "
                    "and the problem's alpha / eps")
#: What ``floor_map``'s critical kappa is.
CRITICAL_DEFINITION = ("per m, the kappa at which the seed-mean loss falls to 1/2 (linear "
                       "interpolation on the kappa grid)")


def _at_kappa(problem: Problem, k: float) -> Problem:
    return problem.replace(P=max(int(round(k * problem.D)), problem.D + 1))


def _closure(p: Problem, method: str, column_closure: str, steps: int,
             draws: int = 1) -> dict[str, Any]:
    """The theory's DMFT options at the problem ``p``: a non-default column closure and the
    Monte Carlo draws apply where the DMFT runs (not the spectral closure, not rindex); the
    closure is checked there (``check_closure_applies``: the spread closure needs a fast
    column at that kappa), and so is the DMFT's horizon (``check_dmft_steps``)."""
    if is_finite_rank(p):
        return {}
    inp = offline_inputs(p)
    if offline_method(inp, method) != "dmft":
        return {}
    check_dmft_steps(inp, steps)
    options: dict[str, Any] = {"draws": draws} if draws != 1 else {}
    if column_closure == "auto":
        return options
    check_closure_applies(p, column_closure)
    return {"column_closure": column_closure, **options}


def _one(problem: Problem, steps: int, k: float, method: str,
         spectral_everywhere: bool, Ns: int, closure: dict[str, str]) -> dict[str, Any]:
    """The exact flow and the theory curve(s) at kappa = k."""
    p = _at_kappa(problem, k)
    finite_rank = is_finite_rank(p)    # its theory is the DMFT of the discrete GD itself
    t0 = time.perf_counter()
    exact = solve(p, steps, method="gd" if finite_rank else "flow")
    t1 = time.perf_counter()
    theory = offline_theory(p, steps, method=method, Ns=Ns, **closure)
    t2 = time.perf_counter()
    se = theory.extra.get("population_loss_mc_se")      # a mean of several DMFT draws
    spectral = None
    if (spectral_everywhere and not finite_rank
            and theory.info["offline_method"] != "spectral"):
        spectral = offline_theory(p, steps, method="spectral").population_loss
    limit, limit_why = interpolant_limit(p)
    pop = exact.population_loss
    th = theory.population_loss
    return {"kappa": p.P / p.D, "P": p.P, "t": exact.t, "exact_test": pop, "limit": limit,
            "limit_reason": limit_why,
            "exact_train": exact.train_loss, "theory_test": th,
            "theory_train": theory.train_loss, "spectral_test": spectral, "theory_test_se": se,
            "dmft_draws": theory.info.get("dmft_draws"),
            "theory_final_mc_se": None if se is None else float(se[-1] / th[0]),
            "method": theory.info["offline_method"], "exact_method": exact.method,
            "column_closure": theory.info.get("column_closure"),
            "column_closure_reason": theory.info.get("column_closure_reason"),
            "exact_half_time": half_time(exact.t, pop), "theory_half_time": half_time(theory.t, th),
            "exact_final": float(pop[-1] / pop[0]), "theory_final": float(th[-1] / th[0]),
            "exact_wall_time": t1 - t0, "theory_wall_time": t2 - t1}


def _kappa_options(base: Problem, method: Any, spectral_everywhere: Any, Ns: Any,
                   column_closure: str, dmft_draws: Any = 1) -> None:
    """The kappa figure's options, each refused in one line (ProblemError) if it cannot run."""
    finite_rank = is_finite_rank(base)
    allowed = ("auto", "rindex") if finite_rank else tuple(m for m in OFFLINE_METHODS
                                                           if m != "rindex")
    if method not in allowed:
        raise ProblemError(f"method must be one of {', '.join(allowed)} for init="
                           f"{base.init!r}, got {method!r}")
    if not isinstance(spectral_everywhere, (bool, np.bool_)):
        raise ProblemError(f"spectral_everywhere must be true or false, got "
                           f"{spectral_everywhere!r}")
    (check_rindex_ns if finite_rank else check_ns)(Ns)
    check_closure_applies(base, column_closure)
    if column_closure != "auto" and method == "spectral":
        raise ProblemError(f"column_closure={column_closure!r} is a closure of the DMFT's "
                           "linear column; method='spectral' has none (use method='dmft' or "
                           "'auto')")
    check_draws(dmft_draws, "dmft_draws")
    if dmft_draws != 1 and (finite_rank or method == "spectral"):
        raise ProblemError(f"dmft_draws={dmft_draws} averages the iid init's DMFT over Monte "
                           f"Carlo draws; method={method!r} with init={base.init!r} runs none")


def _kappa_plan(problem: Problem, steps: int, kappas: Any, method: Any,
                spectral_everywhere: Any, Ns: Any, column_closure: str,
                dmft_draws: Any = 1) -> tuple[Problem, list[float], list[dict[str, Any]]]:
    """(the N = inf problem, the kappas, each kappa's closure option): every refusal of
    :func:`kappa`, before anything runs (the largest kappa's exact flow is checked against
    the machine, as ``solve`` would, since ``lazyrich figure`` takes no ``--i-know``)."""
    ks = _numbers(kappas, "kappas", 1.0)
    base = problem.replace(N="inf")
    save_times(steps)
    _kappa_options(base, method, spectral_everywhere, Ns, column_closure, dmft_draws)
    largest = _at_kappa(base, max(ks))
    check_resources(largest, steps, "gd" if is_finite_rank(largest) else "flow",
                    hint="lower the kappas or D")
    closures = [_closure(_at_kappa(base, k), method, column_closure, steps, int(dmft_draws))
                for k in ks]
    if dmft_draws != 1 and not any("draws" in c for c in closures):
        raise ProblemError(f"dmft_draws={dmft_draws} averages the DMFT's Monte Carlo draws, but "
                           f"method={method!r} runs the DMFT at none of these kappas (auto: "
                           f"below kappa = {KAPPA_SPECTRAL:g})")
    return base, ks, closures


def check_kappa(problem: Problem, steps: int, kappas: Any = KAPPA_VALUES,
                method: str = "auto", spectral_everywhere: bool = True, Ns: int = 800,
                column_closure: str = "auto", dmft_draws: int = 1, **_: Any) -> None:
    """The refusals of :func:`kappa` for these arguments (ProblemError), without computing
    anything (``lazyrich figure`` runs it before any figure's estimate or run)."""
    _kappa_plan(problem, steps, kappas, method, spectral_everywhere, Ns, column_closure,
                dmft_draws)


def kappa(problem: Problem, steps: int, kappas: Any = KAPPA_VALUES, method: str = "auto",
          spectral_everywhere: bool = True, Ns: int = 800,
          column_closure: str = "auto", dmft_draws: int = 1) -> FigureData:
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
    column_closure : {"auto", "dmft", "least_squares", "spread"}
        The DMFT's linear column where the DMFT runs: "auto" (default) the spread closure at
        each kappa whose column is fast, else as derived; or as derived, closure A7 or spread
        at every kappa (docs/offline_theory.md §12.4); other than "auto" refused for a
        finite-rank init (its DMFT is exact).
    dmft_draws : int
        Where the DMFT runs, the mean of this many Monte Carlo draws (one draw's loss at
        tau = 40 scatters by a sd of up to 0.15 at kappa <= 5.5); above 1 each such kappa gets
        a band of +-2 standard errors, the CSV column ``theory_test_se_k<kappa>`` and
        ``theory_final_mc_se`` in the result.

    Returns
    -------
    FigureData
        ``kappa_curves.csv`` (t and, per kappa, the exact and theory curves) and the half
        times and final losses in ``result``; ``limit``: the tau -> inf loss / initial of the
        mirror-descent interpolant of each kappa's training set (docs/offline_theory.md §15;
        iid init up to D = 400), drawn in the along-kappa panel, or None with
        ``limit_reason`` saying why.
    """
    base, ks, closures = _kappa_plan(problem, steps, kappas, method, spectral_everywhere, Ns,
                                     column_closure, dmft_draws)
    runs = [_one(base, steps, k, method, bool(spectral_everywhere), int(Ns), closure)
            for k, closure in zip(ks, closures)]
    t = runs[0]["t"]
    cols: dict[str, np.ndarray] = {}
    for r in runs:
        tag = f"k{r['kappa']:g}"
        cols[f"exact_test_{tag}"] = r["exact_test"]
        cols[f"exact_train_{tag}"] = r["exact_train"]
        cols[f"theory_test_{tag}"] = r["theory_test"]
        if r["theory_test_se"] is not None:
            cols[f"theory_test_se_{tag}"] = r["theory_test_se"]
        if r["spectral_test"] is not None:
            cols[f"spectral_test_{tag}"] = r["spectral_test"]
    keys = ("kappa", "P", "method", "column_closure", "column_closure_reason", "dmft_draws",
            "exact_method",
            "exact_half_time", "theory_half_time", "exact_final", "theory_final",
            "theory_final_mc_se", "limit", "limit_reason", "exact_wall_time", "theory_wall_time")
    result = {"runs": [{k: r[k] for k in keys} for r in runs],
              "spectral_from_kappa": KAPPA_SPECTRAL}
    return FigureData(result=result, plot={"runs": runs, "problem": base},
                      tables={"kappa_curves.csv": (("t",) + tuple(cols),
                                                   [t] + list(cols.values()))})


def _numbers(values: Any, name: str, low: float) -> list[float]:
    """The values of a list option in their order, each finite and > ``low`` (one-line
    ProblemError otherwise)."""
    try:
        vs = [float(v) for v in as_list(values) if not isinstance(v, bool)]
    except (TypeError, ValueError):
        vs = []
    if not vs or len(vs) != len(as_list(values)) or any(
            not (v > low and math.isfinite(v)) for v in vs):
        raise ProblemError(f"{name} must be finite numbers > {low:g}, got {values!r}")
    return vs


def _positive(values: Any, name: str, low: float) -> list[float]:
    """The sorted values of a grid option, each finite and > ``low``."""
    return sorted(_numbers(values, name, low))


def _map_problem(base: Problem, kappa: float, seed: int) -> Problem:
    P = max(int(round(kappa * base.D)), base.D + 1)
    p = base.replace(P=P, seed=seed)
    why = interpolant_reason(p)
    if why is not None:
        raise ProblemError(f"floor-map at kappa = {kappa:g}: {why}")
    return p


def _map_loss(p: Problem, data, scales: tuple[float, float]) -> float:
    """The interpolant's relative tau -> inf loss of ``p`` at (alpha, eps) = ``scales``."""
    return entropic_interpolant(p.replace(alpha=scales[0], eps=scales[1]), data).population_loss


def _floor_plan(problem: Problem, kappas: Any, ms: Any,
                seeds: Any) -> tuple[Problem, list[float], list[float], int]:
    """(the N = inf problem, the kappas, the ms, the number of seeds): every refusal of
    :func:`floor_map`, before anything runs."""
    ks, mm = _positive(kappas, "kappas", 1.0), _positive(ms, "ms", 0.0)
    try:
        n_seeds = 0 if isinstance(seeds, bool) else int(str(seeds))
    except ValueError:
        n_seeds = 0
    if n_seeds < 1:
        raise ProblemError(f"seeds must be an integer >= 1, got {seeds!r}")
    base = problem.replace(N=math.inf)
    if base.D > INTERPOLANT_D_DEFAULT:
        raise ProblemError(f"floor-map: D = {base.D} > {INTERPOLANT_D_DEFAULT}: a convex solve's "
                           "cost grows like D^3; use a smaller D")
    for k in ks:
        _map_problem(base, k, base.seed)
    return base, ks, mm, n_seeds


def check_floor_map(problem: Problem, steps: int, kappas: Any = FLOOR_KAPPAS,
                    ms: Any = FLOOR_MS, seeds: Any = 4, **_: Any) -> None:
    """The refusals of :func:`floor_map` (ProblemError), without computing anything."""
    _floor_plan(problem, kappas, ms, seeds)


def floor_map(problem: Problem, steps: int, kappas: Any = FLOOR_KAPPAS, ms: Any = FLOOR_MS,
              seeds: int = 4) -> FigureData:
    """Where the flow ends, over kappa = P/D and m = alpha eps / b2: the interpolant's
    tau -> inf relative population loss (docs/offline_theory.md §15.5: as alpha / eps -> inf
    the floor depends on alpha and eps only through m), averaged over ``seeds`` training
    sets, and per m the critical kappa (the mean crossing 1/2).  Theory only, no training run
    (the exact flow agrees within 0.024 on seed means at D = 100,
    ``benchmarks/offline_floor_map.py``).

    Parameters
    ----------
    problem : Problem
        D, the seed, and alpha / eps (kept at every m; its alpha eps is replaced); N is set to
        inf, P by kappa.  The interpolant's domain (iid init, convention A, centered, plain
        full-batch training), D <= 400.
    steps : int
        Not used (the map is the tau -> inf state).
    kappas, ms : sequence of float or comma-separated str
        The grid (kappas > 1, ms > 0).
    seeds : int
        Training sets per cell.

    Returns
    -------
    FigureData
        ``floor_map.csv`` (one row per kappa, m, seed); ``result``: the grid, the seed-mean
        losses (``mean_loss[i][j]`` at kappas[i], ms[j]) and ``critical_kappa`` per m (None
        with ``critical_kappa_reasons`` where the grid does not bracket it).
    """
    base, ks, mm, n_seeds = _floor_plan(problem, kappas, ms, seeds)
    ratio, sigma2 = base.alpha / base.eps, base.init_scale ** 2
    cols: dict[str, list] = {c: [] for c in ("kappa", "m", "seed", "P", "alpha", "eps", "b2",
                                             "loss")}
    loss = np.empty((len(ks), len(mm), n_seeds))
    for s in range(n_seeds):
        for i, k in enumerate(ks):
            p = _map_problem(base, k, base.seed + s)
            data = p.data()
            b2 = input_fields(p, data)["b2"]       # the theory's b2 = 2 tau |beta|^2 / D
            # the run's (sigma alpha)(sigma eps) = m b2 at the problem's alpha / eps
            scales = [(math.sqrt(m * b2 / sigma2 * ratio), math.sqrt(m * b2 / sigma2 / ratio))
                      for m in mm]
            loss[i, :, s] = map_on_free_cores(partial(_map_loss, p, data), scales)
            for j, (m, (a, e)) in enumerate(zip(mm, scales)):
                for c, v in zip(cols, (k, m, p.seed, p.P, a, e, b2, loss[i, j, s])):
                    cols[c].append(v)
    mean = loss.mean(axis=2)
    crit = [half_crossing(ks, mean[:, j], "kappa") for j in range(len(mm))]
    result = {"kappas": ks, "ms": mm, "seeds": n_seeds, "alpha_over_eps": ratio,
              "mean_loss": mean.tolist(), "definition": FLOOR_DEFINITION,
              "critical_kappa": [c for c, _ in crit],
              "critical_kappa_definition": CRITICAL_DEFINITION,
              "critical_kappa_reasons": {f"{m:g}": why for m, (_, why) in zip(mm, crit) if why}}
    return FigureData(result=result,
                      plot={"kappas": ks, "ms": mm, "mean_loss": mean,
                            "critical": [c for c, _ in crit], "problem": base,
                            "seeds": n_seeds},
                      tables={"floor_map.csv": (tuple(cols), [np.asarray(v) for v in
                                                              cols.values()])})
