"""``offline_theory``: the offline (finite data, P = kappa D) theory's curves as a Trajectory
with the same core columns as ``solve``, so that theory and exact curves overlay.

For the paper's iid init (M0 = I), two methods (docs/offline_theory.md):

* ``"spectral"`` -- the two-timescale closure (``spectral``): lazy fit + deterministic-
  equivalent spectrum of the plateau matrix + frozen bulk basis and a 2-D spike.  About a
  second per curve.  Validated for kappa >~ 5: the test half-loss time within ~1-11 % of the
  exact flow (D = 100-400); it has no memorisation channel, so below kappa ~ 5 its late
  curve is far too optimistic (long-time loss ~0 where the network interpolates without
  generalising).
* ``"dmft"`` -- the dynamical mean-field theory (``dmft``): per-sample single-site processes,
  spike / bulk / linear channels, Monte Carlo over samples on a two-time grid; ~10-45 s per
  curve.  Its default column closure ("auto") is spread wherever the linear column is fast,
  else the column as derived (``info["column_closure"]`` says which ran).  It has the
  memorisation channel: long-time loss and critical kappa (errors in docs/offline_theory.md:
  with spread within ~0.012 at kappa = 2-11, D = 400, on the mean of draws; as derived
  +0.14..+0.36 too high at kappa <= 3).
* ``"auto"`` -- spectral for kappa >= :data:`KAPPA_SPECTRAL`, dmft below.

For a finite-rank init (``lowrank:R``, ``aligned:R:C``, R <= 4) ``"auto"`` and ``"rindex"``
run the r-index DMFT (``rindex``, docs §13): exact as D -> inf, no closure.

Columns the theory does not provide are NaN.  test_loss is the population loss (no finite
test set in the theory).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Iterable

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.schedule import save_times as make_save_times
from lazyrich_theory.theory.offline.dmft import (DMFT_NS, SPREAD_RESPONSES,
                                                check_column_closure,
                                                check_dmft_horizon, check_draws,
                                                check_spread_applies, column_lag,
                                                default_channels, dmft_columns,
                                                resolve_column_closure, spread_blocker)
from lazyrich_theory.theory.offline.dmft_options import joint_current, resolve_column_speed
from lazyrich_theory.theory.offline.inputs import OfflineInputs, offline_inputs, training_xi
from lazyrich_theory.theory.offline.rindex import (RINDEX_NS, is_finite_rank, rindex_columns,
                                                   rindex_inputs)
from lazyrich_theory.theory.offline.spectral import (
    SpectralClosure,
    build_closure,
    lazy_transient,
    rich_clock_curves,
)

__all__ = ["offline_theory", "offline_curves", "offline_method", "check_closure_applies",
           "check_dmft_steps",
           "spectral_closure",
           "OFFLINE_METHODS", "KAPPA_SPECTRAL", "XI_LAWS"]

#: The methods of :func:`offline_theory`.
OFFLINE_METHODS = ("auto", "spectral", "dmft", "rindex")
#: Laws of xi over the training samples (``offline_theory(xi_law=)``).
XI_LAWS = ("gaussian", "training")
#: ``method="auto"`` uses the spectral closure from this kappa up (its validated regime;
#: below it memorisation, which only the DMFT has, changes the curves).
KAPPA_SPECTRAL = 5.0


@functools.lru_cache(maxsize=32)
def spectral_closure(kappa: float, b2: float, D: int) -> SpectralClosure:
    """:func:`~lazyrich_theory.theory.offline.spectral.build_closure`, cached: the plateau
    depends on (kappa, b2, D) only, not on alpha, eps or eta0."""
    return build_closure(kappa, b2, D)


def _spectral(inp: OfflineInputs, t: np.ndarray) -> dict[str, np.ndarray]:
    """The spectral closure's columns at times ``t`` (t[0] = 0) with the lazy transient."""
    cl = spectral_closure(inp.kappa, inp.b2, inp.D)
    s = inp.rich_clock(t)
    c = rich_clock_curves(cl, inp.alpha_eps, s)
    d_train, d_lin = lazy_transient(inp.kappa, cl.ey2, inp.eta0, inp.D, t)
    pop = c["population_loss"] + d_lin
    out = {"train_loss": c["train_loss"] + d_train, "population_loss": pop,
           "linear_power": c["linear_power"] + d_lin, "variance": c["variance"],
           "misalignment": c["misalignment"], "alignment": c["alignment"],
           "trace_dM": c["trace_dM"], "frob_dM": c["frob_dM"],
           "spike_strength": c["spike_strength"], "spike_overlap": c["spike_overlap"]}
    out["norm_dwbar"] = np.sqrt(np.maximum(inp.D * out["linear_power"], 0.0)) / inp.alpha
    # t = 0: the exact initial state (the composite's quadrature is exact only to ~1e-6)
    out["population_loss"][0] = 0.75 * inp.b2**2
    out["linear_power"][0] = out["norm_dwbar"][0] = 0.0
    out["train_loss"][0] = cl.ey2
    return out


def _choose(method: str, inp: OfflineInputs) -> str:
    if method not in OFFLINE_METHODS:
        raise ProblemError(f"offline method must be one of {', '.join(OFFLINE_METHODS)}, "
                           f"got {method!r}")
    if method == "rindex":
        raise ProblemError("method 'rindex' is for finite-rank inits (lowrank:R, aligned:R:C)")
    if method == "auto":
        return "spectral" if inp.kappa >= KAPPA_SPECTRAL else "dmft"
    return method


def offline_method(inp: OfflineInputs, method: str = "auto", xi_law: str = "gaussian",
                   column_closure: str = "auto") -> str:
    """The method :func:`offline_theory` runs for the iid init ("spectral" or "dmft"):
    ``method``, or for "auto" the spectral closure at kappa >= KAPPA_SPECTRAL and the DMFT
    below it or with ``xi_law="training"``.  A column closure asked for (``column_closure``
    other than "auto", :data:`~lazyrich_theory.theory.offline.dmft.COLUMN_CLOSURES`) is
    refused with the spectral closure, which has no linear column (ProblemError)."""
    chosen = "dmft" if (xi_law == "training" and method == "auto") else _choose(method, inp)
    if chosen == "spectral" and column_closure != "auto":
        why = (f"method 'auto' runs it at kappa = {inp.kappa:.3g} >= {KAPPA_SPECTRAL:g}"
               if method == "auto" else "asked for")
        raise ProblemError(f"column_closure={column_closure!r} is a closure of the DMFT's "
                           f"linear column; the spectral closure ({why}) has none: use "
                           "method='dmft'")
    return chosen


def check_closure_applies(problem: Problem, column_closure: str,
                          column_speed: str | None = None) -> None:
    """Refuse (one line, ProblemError) an unknown column closure, one asked for (not "auto")
    for a finite-rank init (its r-index DMFT treats the column exactly, docs §13, so it has
    no closure to choose), and the spread closure asked for where the linear column is slow
    (:func:`~lazyrich_theory.theory.offline.dmft.check_spread_applies`, at the scaled alpha
    and eps the DMFT runs with and ``column_speed``; "auto" then runs the DMFT as derived).
    The spectral closure's refusal needs the method and is :func:`offline_method`'s."""
    check_column_closure(column_closure)
    if column_closure != "auto" and is_finite_rank(problem):
        raise ProblemError(f"the column closure {column_closure} is a closure of the iid init's "
                           f"DMFT; init={problem.init!r} runs the r-index DMFT, which is exact "
                           "(no closure)")
    if column_closure == "spread":
        check_spread_applies(problem.P / problem.D, *problem.scaled_alpha_eps,
                             column_speed=column_speed)


def check_dmft_steps(inp: OfflineInputs, steps: int) -> None:
    """Refuse (one line, ProblemError) a horizon of ``steps`` GD steps that the DMFT's grid
    cannot reach (:func:`~lazyrich_theory.theory.offline.dmft.check_dmft_horizon`), naming
    the longest one in steps; nothing is computed."""
    per_tau = 1.0 / float(inp.dmft_clock(np.array([1.0]))[0])
    check_dmft_horizon(steps / per_tau, steps_per_tau=per_tau)


def _check_draws(draws: Any, chosen: str) -> None:
    """Refuse (one line) a bad number of Monte Carlo draws, or several for a method that has
    no Monte Carlo (the spectral closure)."""
    check_draws(draws)
    if draws != 1 and chosen != "dmft":
        raise ProblemError(f"draws={draws} averages the DMFT's Monte Carlo draws; the "
                           f"{chosen} closure has none (use method='dmft')")


def offline_curves(inp: OfflineInputs, t: np.ndarray, method: str = "spectral",
                   **dmft_options: Any) -> dict[str, np.ndarray]:
    """The theory's columns at times ``t`` (GD steps, t[0] = 0, increasing) for given inputs.

    Parameters
    ----------
    inp : OfflineInputs
    t : np.ndarray
    method : {"spectral", "dmft"}
    **dmft_options
        Passed to :func:`~lazyrich_theory.theory.offline.dmft.dmft_curves` (Ns, seed, dmax).

    Returns
    -------
    dict
        train_loss, population_loss, variance, misalignment, linear_power, alignment,
        trace_dM, frob_dM, norm_dwbar (NaN where not provided) and method-specific extras.
    """
    t = np.asarray(t, dtype=float)
    if t[0] != 0.0 or np.any(np.diff(t) <= 0):
        raise ProblemError("offline theory times must start at 0 and increase")
    if method == "spectral":
        return _spectral(inp, t)
    if method == "dmft":
        return dmft_columns(inp, t, **dmft_options)
    raise ProblemError(f"offline method must be 'spectral' or 'dmft', got {method!r}")


def offline_theory(problem: Problem, steps: int, *, method: str = "auto",
                   save_times: Iterable[int] | np.ndarray | None = None,
                   data: ProblemData | None = None, b2: float | None = None,
                   xi_law: str = "gaussian", **dmft_options: Any) -> Trajectory:
    """The offline theory's prediction for ``problem`` up to ``steps`` (GD steps), as a
    :class:`~lazyrich_theory.results.trajectory.Trajectory` with the core columns of
    ``solve`` (test_loss = population_loss; columns the theory lacks are NaN).

    An approximation (docs/offline_theory.md: derivation, regime of validity, measured
    errors); D enters explicitly (a finite-D prediction, not a D -> inf limit).  Gradient
    flow on the GD time axis.

    Parameters
    ----------
    problem : Problem
        N = inf, centered, paper teacher, no training options, P > D
        (:func:`~lazyrich_theory.theory.offline.inputs.check_problem` says why not).
    steps : int
        Horizon in GD steps.
    method : {"auto", "spectral", "dmft", "rindex"}
        See the module docstring; "auto" is spectral for kappa >= KAPPA_SPECTRAL, and the
        r-index DMFT for a finite-rank init (``lowrank:R``, ``aligned:R:C``; "rindex" is
        accepted only there).
    save_times : iterable of int, optional
        Extra save times added to the default log-spaced grid (as in ``solve``).
    data : ProblemData, optional
        Where |beta|^2 comes from (default the problem's own teacher).
    b2 : float, optional
        Override |beta|^2 / D (convention-A units).
    xi_law : {"gaussian", "training"}
        The law of the teacher projection xi over the training samples: Gaussian (the
        theory's D -> inf law) or the empirical law of this problem's training set (DMFT
        only, and "auto" then means the DMFT: a prediction conditioned on the training set;
        docs/offline_theory.md §8.7).
    **dmft_options
        Ns, seed, dmax, column_closure (``"auto"``, the default: ``"spread"``, docs §12.4,
        wherever the linear column is fast, else ``"dmft"``, the column as derived; or one of
        ``"dmft"``, ``"least_squares"`` (closure A7) and ``"spread"``; ``info`` records the
        closure that ran, and for "auto" without spread why) and draws (Monte Carlo draws to
        average, seeds ``seed``, ``seed + 1``, ...; the standard error of the mean loss in the
        extra columns ``population_loss_mc_se``, ``train_loss_mc_se``) for the DMFT; Ns, seed,
        max_points for the r-index DMFT (anything else is refused).

    Returns
    -------
    Trajectory
        method ``"offline-spectral"`` or ``"offline-dmft"``; ``info`` holds the inputs, the
        method, the plateau outlier (spectral) and the wall time.
    """
    asked = dmft_options.get("column_closure", "auto")
    check_closure_applies(problem, asked, dmft_options.get("column_speed"))
    finite_rank = is_finite_rank(problem)
    if finite_rank:
        if method not in ("auto", "rindex"):
            raise ProblemError(f"init={problem.init!r} is of finite rank: the offline theory "
                               f"for it is method='rindex' (or 'auto'), not {method!r}")
        inp, chosen = rindex_inputs(problem, data, b2), "rindex"
        dmft_options = {k: v for k, v in dmft_options.items() if k != "column_closure"}
        unknown = sorted(set(dmft_options) - {"Ns", "seed", "max_points"})
        if unknown:
            raise ProblemError(f"the r-index DMFT takes the options Ns, seed, max_points, "
                               f"not {', '.join(unknown)}")
    else:
        inp = offline_inputs(problem, data, b2)
    if xi_law not in XI_LAWS:
        raise ProblemError(f"xi_law must be one of {', '.join(XI_LAWS)}, got {xi_law!r}")
    if not finite_rank:
        chosen = offline_method(inp, method, xi_law, asked)
        if chosen == "dmft":       # the closure that runs, recorded in info
            ran = resolve_column_closure(asked, inp.kappa, inp.alpha, inp.eps,
                                         default_channels(dmft_options),
                                         dmft_options.get("column_speed"))
            dmft_options = {**dmft_options, "column_closure": ran}
        _check_draws(dmft_options.get("draws", 1), chosen)
    if xi_law == "training":
        if chosen not in ("dmft", "rindex"):
            raise ProblemError("xi_law='training' (conditioned on the training set) needs "
                               "method='dmft'")
        dmft_options = {**dmft_options, "xi_train": training_xi(problem, data)}
    times = make_save_times(steps, extra=save_times).astype(np.float64)
    if times[0] != 0.0:
        raise ProblemError("the offline theory needs t = 0 among the save times")
    t0 = time.perf_counter()
    if finite_rank:
        cols = rindex_columns(inp, times, **dmft_options)
    else:
        cols = offline_curves(inp, times, chosen, **dmft_options)
    info: dict[str, Any] = {"steps": int(steps), "offline_method": chosen,
                            "requested_method": method, "kappa": inp.kappa, "b2": inp.b2,
                            "D": inp.D, "alpha_eps": inp.alpha_eps, "alpha": inp.alpha,
                            "eps": inp.eps, "xi_law": xi_law,
                            "horizon_tau": float(inp.dmft_clock(np.float64(times[-1]))),
                            "wall_time": time.perf_counter() - t0}
    if finite_rank:
        info.update(rank=inp.R, initial_overlap=inp.overlap, stride=int(cols.pop("stride")))
    if chosen in ("dmft", "rindex"):      # its Monte Carlo samples
        info["Ns"] = int(dmft_options.get("Ns", DMFT_NS if chosen == "dmft" else RINDEX_NS))
    if chosen == "dmft":
        info["dmft_draws"] = int(dmft_options.get("draws", 1))
        info["column_closure"] = dmft_options["column_closure"]
        info["requested_column_closure"] = asked
        info["column_lag"] = column_lag(inp.kappa, inp.alpha, inp.eps)   # in tau
        why = spread_blocker(inp.kappa, inp.alpha, inp.eps, default_channels(dmft_options),
                             dmft_options.get("column_speed"))
        if info["column_closure"] != "spread" and why is not None:   # what auto would not run
            info["column_closure_reason"] = why
        if info["column_closure"] == "spread":
            info["spread_response"] = dmft_options.get("spread_response", SPREAD_RESPONSES[0])
            info["column_speed"] = resolve_column_speed(dmft_options.get("column_speed"))
            info["noise_current"] = ("joint" if joint_current(
                info["column_speed"], dmft_options.get("noise_current")) else "lagged")
    if chosen == "spectral":
        cl = spectral_closure(inp.kappa, inp.b2, inp.D)
        info.update(plateau_outlier_overlap=cl.omega0,
                    plateau_outlier=None if math.isnan(cl.lam1) else cl.lam1)
    core = {c: np.asarray(cols.get(c, np.full(times.size, np.nan)), dtype=float)
            for c in CORE_COLUMNS if c != "test_loss"}
    core["test_loss"] = core["population_loss"].copy()
    extra = {k: np.asarray(v, dtype=float) for k, v in cols.items() if k not in CORE_COLUMNS}
    return Trajectory(problem=problem, method=f"offline-{chosen}", t=times, **core,
                      extra=extra, info=info)
