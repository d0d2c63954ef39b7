"""What the offline theory predicts in a few numbers: the half-loss time, the long-time loss,
the grokking delay and the critical kappa (summary.json of ``lazyrich asymptotic``).

Definitions (docs/offline_theory.md §10):

* ``predicted_half_time``: first t at which the theory's population loss is half its initial
  value (None if not within the horizon);
* ``predicted_final_test_loss``: the population loss at the horizon / its initial value;
* ``predicted_grokking_delay``: the theory's ``relative_grokking_time`` (the package's measured
  definition, ``theory.timescales.grokking_metrics``): t_test - t_train with each threshold 0.1
  x that curve's initial value; None with a reason below :data:`KAPPA_DELAY` for the iid-init
  methods (with the DMFT's resolved spread closure at D >= :data:`SPREAD_DELAY_D`: below
  :data:`SPREAD_DELAY_KAPPA`), where it is not a prediction of it (docs §11.5, §12.4), whose value
  is then ``predicted_grokking_delay_estimate`` (always the theory's own difference);
* ``critical_kappa``: "bbp" -- the BBP threshold of the plateau matrix (below it no signal
  direction separates at the end of the lazy fit: the lower end of the crossover); "dmft" --
  where the DMFT's relative long-time loss at the horizon crosses 1/2 (what the exact solver's
  "stops generalising" means in docs/offline_theory.md); "rindex" -- the same crossing for a
  finite-rank init, from the r-index DMFT (docs §13.5).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.spec.fields import is_int
from lazyrich_theory.theory.offline.dmft import (DMFT_DMAX, check_column_closure,
                                                 check_column_speed, check_spread_applies,
                                                 check_spread_response, dmft_tau_curves,
                                                 resolve_column_closure, resolve_column_speed)
from lazyrich_theory.theory.offline.inputs import OfflineInputs
from lazyrich_theory.theory.offline.plateau import plateau_losses, plateau_reason, plateau_spectrum
from lazyrich_theory.theory.offline.regime import outside_regime, regime_note
from lazyrich_theory.theory.offline.rindex import (RINDEX_MAX_POINTS, RIndexInputs,
                                                   rindex_tau_curves)
from lazyrich_theory.theory.timescales import first_time_below, grokking_summary

__all__ = ["CriticalKappa", "critical_kappa", "half_crossing", "offline_summary",
           "CRITICAL_METHODS", "KAPPA_DELAY", "SPREAD_DELAY_KAPPA", "SPREAD_DELAY_D",
           "SPREAD_DELAY_RATIO",
           "DMFT_CRITICAL_TAU", "RINDEX_CRITICAL_TAU"]

#: How :func:`critical_kappa` can define the threshold.
CRITICAL_METHODS = ("bbp", "dmft", "rindex")
#: Default horizon (in tau = 2 eta0 eps t / (alpha D)) of the DMFT critical kappa: 40, i.e.
#: t = 1000 D steps at alpha / eps = 50 (the validation's horizon).
DMFT_CRITICAL_TAU = 40.0
#: Default horizon of the r-index critical kappa (a finite-rank init's loss is near its
#: minimum by then at kappa >= 2.5, docs §13.5; it rises again slowly below).
RINDEX_CRITICAL_TAU = 30.0


@dataclass(frozen=True)
class CriticalKappa:
    """A critical kappa and what it means.

    Attributes
    ----------
    value : float
        NaN when there is no crossing in the searched range, or (interpolant) when a Newton
        iteration does not converge; ``reason`` says which.
    method : str
        "bbp", "dmft", "rindex" (:func:`critical_kappa`) or "interpolant"
        (:func:`~lazyrich_theory.theory.offline.implicit_bias.interpolant_critical_kappa`).
    definition : str
        One line.
    reason : str or None
        Why ``value`` is NaN.
    """

    value: float
    method: str
    definition: str
    reason: str | None = None


def half_crossing(xs: Any, loss: Any, name: str = "x") -> tuple[float | None, str | None]:
    """(the first x at which ``loss`` falls to 1/2 along the increasing grid ``xs``, linear
    interpolation between the bracketing points, None) or (None, why not: already below at
    the first point, or never below; ``name`` names x in that line)."""
    loss = np.asarray(loss, dtype=float)
    if loss.size == 0:
        return None, f"no {name} grid"
    below = np.flatnonzero(loss <= 0.5)
    if below.size == 0:
        return None, f"the loss is above 1/2 up to {name} = {xs[-1]:g}"
    i = int(below[0])
    if i == 0:
        return None, f"the loss is below 1/2 already at {name} = {xs[0]:g}"
    x0, x1, l0, l1 = xs[i - 1], xs[i], loss[i - 1], loss[i]
    return float(x0 + (l0 - 0.5) * (x1 - x0) / (l0 - l1)), None


def check_kappa_range(kappa_range: tuple[float, float]) -> tuple[float, float]:
    """(low, high) of a critical-kappa search interval; ProblemError unless 1 < low < high."""
    lo, hi = kappa_range
    if not 1.0 < lo < hi:
        raise ProblemError(f"kappa_range must satisfy 1 < low < high, got {kappa_range!r}")
    return lo, hi


def _bisect(f, lo: float, hi: float, tol: float) -> float:
    """The crossing of a predicate f (False at lo, True at hi) to within ``tol`` in kappa."""
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if f(mid):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _bbp(b2: float, D: int, lo: float, hi: float, tol: float) -> CriticalKappa:
    definition = ("BBP threshold of the plateau matrix (finite-P cut at P = kappa D): below it "
                  "no signal eigenvalue separates after the lazy fit; the lower end of the "
                  "crossover to interpolation without generalisation")

    def above(k: float) -> bool:
        return plateau_spectrum(k, b2, D).has_outlier

    if above(lo) or not above(hi):
        return CriticalKappa(math.nan, "bbp", definition,
                             f"no BBP transition for kappa in [{lo:g}, {hi:g}]")
    return CriticalKappa(_bisect(above, lo, hi, tol), "bbp", definition)


def _dmft(inp: OfflineInputs, tau_h: float, lo: float, hi: float, tol: float, Ns: int,
          seed: int, column_closure: str, spread_response: str, runs: int,
          column_speed: str | None = None) -> CriticalKappa:
    form = "(12.2)" if resolve_column_speed(column_speed) == "finite" else "(12.1)"
    closure = {"dmft": " (its linear column as derived)",
               "least_squares": " (column closure A7, least squares)",
               "spread": f" (column closure spread, {form}"
                         + {"first_order": ", first-order memorisation)",
                            "full": ", bulk and spike memorisation resolved)"}.get(
                             spread_response, ", bulk memorisation resolved)"),
               "auto": f" (column closure spread, {form}, where the linear column is fast "
                       "enough, else as derived)"}.get(column_closure, "")
    definition = (f"kappa at which the DMFT's{closure} population loss at tau = {tau_h:g} (t = "
                  f"{tau_h * inp.alpha * inp.D / (2 * inp.eta0 * inp.eps):.6g} steps"
                  + (f", mean of {runs} Monte Carlo draws" if runs > 1 else "")
                  + ") is half its initial value; below it training interpolates without "
                  "generalising")

    if column_closure == "spread":       # the search's smallest kappa has the slowest column
        check_spread_applies(lo, inp.alpha, inp.eps,
                             f"at the critical-kappa search's lower end (kappa = {lo:g}; "
                             "the interpolant's critical kappa has no such limit)",
                             column_speed)

    def generalises(k: float) -> bool:
        rel = []
        for s in range(seed, seed + runs):      # the same draws at every kappa
            try:
                L = dmft_tau_curves(OfflineInputs(k, inp.alpha, inp.eps, inp.eta0, inp.b2,
                                                  inp.D),
                                    tau_h, Ns=Ns, seed=s, dmax=DMFT_DMAX,
                                    column_closure=column_closure,
                                    spread_response=spread_response,
                                    column_speed=column_speed)["population_loss"]
            except DivergenceError as err:      # name where in the search it happened
                raise DivergenceError(f"the critical-kappa search at kappa = {k:.4g} "
                                      f"(Monte Carlo seed {s}): {err}", err.step) from None
            rel.append(L[-1] / L[0])
        return bool(sum(rel) / runs <= 0.5)

    if generalises(lo) or not generalises(hi):
        return CriticalKappa(math.nan, "dmft", definition,
                             f"the DMFT's loss at tau = {tau_h:g} does not cross 1/2 for kappa "
                             f"in [{lo:g}, {hi:g}]")
    value = _bisect(generalises, lo, hi, tol)
    if column_closure == "auto":            # which closure ran where the search ended
        ran = resolve_column_closure("auto", value, inp.alpha, inp.eps,
                                     column_speed=column_speed)
        definition += (f"; at the crossing the closure that ran is "
                       f"{'spread' if ran == 'spread' else 'the column as derived'}")
    return CriticalKappa(value, "dmft", definition)


def _rindex(inp: RIndexInputs, tau_h: float, lo: float, hi: float, tol: float, Ns: int,
            seed: int, runs: int) -> CriticalKappa:
    steps = max(1, round(tau_h / inp.gd_step))
    definition = (f"kappa at which the r-index DMFT's population loss at tau = {tau_h:g} (t = "
                  f"{steps} steps) is half its initial value, init rank {inp.R}, overlap "
                  f"{inp.overlap:.3g}, mean of {runs} Monte Carlo run(s) at Ns = {Ns}; below it "
                  "training interpolates without generalising (at this horizon)")
    # one grid for every kappa, fine enough for the stiffest column (at lo): with the same
    # Monte Carlo draws the loss is then a smooth function of kappa, as Brent's method needs
    rate = inp.alpha / inp.eps * (1.0 + lo ** -0.5) ** 2
    stride = max(1, math.floor(1.4 / (inp.gd_step * rate)))  # GD steps per DMFT step
    max_points = max(RINDEX_MAX_POINTS, math.ceil(steps / stride) + 1)

    @functools.cache
    def excess(k: float) -> float:
        rel = []
        for s in range(seed, seed + runs):      # the same draws at every kappa
            L = rindex_tau_curves(dataclasses.replace(inp, kappa=k), steps, Ns=Ns, seed=s,
                                  max_points=max_points)["population_loss"]
            rel.append(L[-1] / L[0])
        return float(sum(rel) / runs - 0.5)

    if not excess(lo) > 0.0 > excess(hi):
        return CriticalKappa(math.nan, "rindex", definition,
                             f"the r-index DMFT's loss at tau = {tau_h:g} does not cross 1/2 "
                             f"for kappa in [{lo:g}, {hi:g}]")
    return CriticalKappa(float(brentq(excess, lo, hi, xtol=tol)), "rindex", definition)


def critical_kappa(inp: OfflineInputs, method: str = "bbp", *, tau_h: float | None = None,
                   kappa_range: tuple[float, float] = (1.2, 12.0), tol: float = 0.05,
                   Ns: int = 400, seed: int = 0, runs: int = 1,
                   column_closure: str = "auto",
                   spread_response: str = "resolved",
                   column_speed: str | None = None) -> CriticalKappa:
    """The critical sample ratio kappa_c for the inputs ``inp`` (its kappa is ignored).

    Parameters
    ----------
    inp : OfflineInputs
        alpha, eps, eta0, b2 and D (``offline_inputs(problem)``).
    method : {"bbp", "dmft", "rindex"}
        "bbp": the plateau matrix's BBP threshold (depends on b2 and D only; ~0.1 s).
        "dmft": bisection on the DMFT's long-time loss (~6 DMFT runs: minutes at Ns = 400).
        "bbp" and "dmft" are for the iid init (M0 = I); "rindex" is for a finite-rank init
        (``inp`` from ``rindex_inputs``): Brent's method on the r-index DMFT's loss at
        ``tau_h`` (~5-7 runs with the same Monte Carlo draws: minutes).
    tau_h : float, optional
        DMFT horizon in tau (default :data:`DMFT_CRITICAL_TAU`, rindex
        :data:`RINDEX_CRITICAL_TAU`).
    kappa_range : (float, float)
        Search interval (bbp default; the dmft and rindex searches use [1.5, 8] inside it).
    tol : float
        Tolerance in kappa (dmft: at least 0.1; rindex: at least 0.01).
    Ns, seed : int
        DMFT Monte Carlo samples and seed.
    runs : int
        rindex and dmft: the loss is averaged over ``runs`` Monte Carlo runs (seeds ``seed``,
        ``seed + 1``, ...; ``offline_theory``'s ``draws``) at every kappa.  One run's kappa_c
        moves by ~+-0.1 at Ns = 400 (rindex; the population dynamics' finite-Ns noise, which
        falls slowly with Ns: averaging runs is the cheaper cure; docs §13.5).
    column_closure : {"auto", "dmft", "least_squares", "spread"}
        The DMFT's linear column (``dmft_tau_curves``; docs/offline_theory.md §9, §12.4):
        "auto" (default) the spread closure at each kappa of the search where the column is
        fast, else as derived; or the column as derived, closure A7 or spread throughout
        (these with ``method="dmft"`` only).
    spread_response : {"resolved", "first_order", "full"}
        The spread closure's memorisation response (``dmft_tau_curves``; the diagnostics
        "first_order" and "full" only with ``column_closure="spread"``).
    column_speed : {None, "finite", "instantaneous"}
        The spread closure's linear column (``dmft_tau_curves``): at its finite speed, (12.2)
        (None, the default), or instantaneous, (12.1); only with ``column_closure="spread"``.

    Returns
    -------
    CriticalKappa
    """
    lo, hi = check_kappa_range(kappa_range)
    if method not in CRITICAL_METHODS:
        raise ProblemError(f"critical kappa method must be one of "
                           f"{', '.join(CRITICAL_METHODS)}, got {method!r}")
    finite_rank = isinstance(inp, RIndexInputs)
    if finite_rank and method != "rindex":
        raise ProblemError(f"critical kappa method {method!r} is for the iid init (M0 = I); "
                           "for a finite-rank init use 'rindex'")
    if method == "rindex" and not finite_rank:
        raise ProblemError("critical kappa method 'rindex' is for a finite-rank init (inputs "
                           "from rindex_inputs); for the iid init use 'bbp' or 'dmft'")
    check_column_closure(column_closure)
    if column_closure != "auto" and method != "dmft":
        raise ProblemError(f"column_closure={column_closure!r} is a closure of the DMFT; "
                           f"the critical kappa method {method!r} has no linear-column closure")
    check_spread_response(spread_response, column_closure)
    check_column_speed(column_speed, column_closure)
    if not is_int(runs) or runs < 1:
        raise ProblemError(f"runs must be an integer >= 1, got {runs!r}")
    if method == "rindex":
        return _rindex(inp, RINDEX_CRITICAL_TAU if tau_h is None else tau_h, max(lo, 1.5),
                       min(hi, 8.0), max(tol, 0.01), Ns, seed, runs)
    if method == "bbp":
        return _bbp(inp.b2, inp.D, lo, hi, tol)
    return _dmft(inp, DMFT_CRITICAL_TAU if tau_h is None else tau_h, max(lo, 1.5),
                 min(hi, 8.0), max(tol, 0.1), Ns, seed, column_closure, spread_response,
                 int(runs), column_speed)


#: Below this kappa the spectral closure's and the DMFT's grokking delays are not predictions
#: (docs §11.5, seed means at D = 50-400): the spectral closure's is short by 22-46 % at kappa =
#: 11 and 48-86 % at kappa = 5.5, the DMFT's (as derived or with A7) long by 8-43 % at kappa =
#: 11 and 1-272 % or never at kappa = 5.5; at kappa = 22 they are -3..-25 % and +10..+34 %.
KAPPA_DELAY = 20.0
#: The DMFT's spread closure (its default, resolved response) predicts the delay from this
#: kappa and this D on (docs §12.4, seed means on §11.5's grid at alpha / eps = 50: -7..+13 % at
#: kappa = 5.5-22 and D = 200-800 with the column at its finite speed, -7..+12 % with the
#: instantaneous column; +11..+109 % at D = 50-100).
SPREAD_DELAY_KAPPA, SPREAD_DELAY_D = 5.5, 200
#: ... and within this range of alpha / eps, where it was measured (at alpha eps = 0.02 and
#: 0.08; benchmarks/offline_delay_ratio.md: alpha / eps = 12.5, 50, 200 at D = 200)
SPREAD_DELAY_RATIO = (12.5, 200.0)


def _delay_reason(info: dict[str, Any]) -> str | None:
    """Why the theory's grokking delay is not a prediction for this run (None: it is)."""
    method, kappa = info.get("offline_method"), float(info.get("kappa", math.nan))
    D = float(info.get("D", math.nan))
    resolved = (info.get("column_closure") == "spread"
                and info.get("spread_response") == "resolved")
    ratio = float(info.get("alpha", math.nan)) / float(info.get("eps", math.nan))
    lo, hi = SPREAD_DELAY_RATIO
    measured = lo <= ratio <= hi
    if resolved and kappa >= SPREAD_DELAY_KAPPA and D >= SPREAD_DELAY_D and measured:
        return None
    if method not in ("spectral", "dmft") or kappa >= KAPPA_DELAY:
        return None
    if resolved:
        fails = ([f"kappa = {kappa:.3g} < {SPREAD_DELAY_KAPPA:g} (not measured there)"]
                 if kappa < SPREAD_DELAY_KAPPA else [])
        fails += ([f"D = {D:g} < {SPREAD_DELAY_D} (+11..+109 % at D = 50-100)"]
                  if D < SPREAD_DELAY_D else [])
        fails += ([] if measured else
                  [f"alpha / eps = {ratio:.3g} outside {lo:g}-{hi:g} (not measured there)"])
        return (f"not predicted at {'; '.join(fails)}: the spread closure's delay is within "
                f"-7..+13 % of the exact flow's at kappa >= {SPREAD_DELAY_KAPPA:g}, D >= "
                f"{SPREAD_DELAY_D} and alpha / eps = {lo:g}-{hi:g} (docs/offline_theory.md "
                "§12.4); its value is predicted_grokking_delay_estimate")
    side = ("the spectral closure's delay is 22-86 % short at kappa = 5.5-11 (a lower "
            "estimate" if method == "spectral" else "the DMFT's delay is 8-272 % long or "
            "never reached at kappa = 5.5-11 (an upper estimate")
    if info.get("column_closure") == "spread":
        side = (f"with its {info.get('spread_response')} response the spread closure's delay "
                "was measured at kappa = 5.5 only (§12.4")
    return (f"not predicted at kappa = {kappa:.3g} < {KAPPA_DELAY:g}: {side}, "
            "docs/offline_theory.md §11.5); its value is predicted_grokking_delay_estimate")


def _delay(traj: Trajectory, g: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """predicted_grokking_delay (None where :func:`_delay_reason` gives a reason) and the
    theory's own value, predicted_grokking_delay_estimate; reasons for each None."""
    est = g["values"]["relative_grokking_time"]
    if est is None:
        reasons["predicted_grokking_delay_estimate"] = g["reasons"]["relative_grokking_time"]
    why = _delay_reason(traj.info)
    if why is not None:
        reasons["predicted_grokking_delay"] = why
        return {"predicted_grokking_delay": None, "predicted_grokking_delay_estimate": est}
    if est is None:
        reasons["predicted_grokking_delay"] = g["reasons"]["relative_grokking_time"]
    return {"predicted_grokking_delay": est, "predicted_grokking_delay_estimate": est}


#: summary keys of the lazy plateau (``plateau_losses``), relative to the initial loss.
PLATEAU_KEYS = ("predicted_plateau_train_loss", "predicted_plateau_test_loss",
                "predicted_plateau_gap")


def _plateau(info: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """The plateau keys (closed form, iid init, where the run has a plateau:
    ``plateau_reason``), None with a reason elsewhere."""
    kappa, D, b2 = (info.get(k) for k in ("kappa", "D", "b2"))
    alpha, eps = info.get("alpha"), info.get("eps")
    if info.get("offline_method") == "rindex":
        why = "the plateau's closed form is for the iid init (M0 = I)"
    elif None in (kappa, D, b2, alpha, eps):
        why = "not available"
    else:
        why = plateau_reason(kappa, int(D), alpha, eps, b2)
    if why is not None:
        reasons.update(dict.fromkeys(PLATEAU_KEYS, why))
        return dict.fromkeys(PLATEAU_KEYS)
    pl = plateau_losses(kappa, int(D))
    return dict(zip(PLATEAU_KEYS, (pl.train, pl.test, pl.gap)))


def _mc_error(traj: Trajectory, reasons: dict[str, str]) -> dict[str, Any]:
    """The Monte Carlo standard error of predicted_final_test_loss where the DMFT averaged
    several draws, and the number of draws (the DMFT only)."""
    draws, se = traj.info.get("dmft_draws"), traj.extra.get("population_loss_mc_se")
    value = None if se is None else float(se[-1] / traj.population_loss[0])
    method = traj.info.get("offline_method")
    if value is None:
        reasons["predicted_final_test_loss_mc_se"] = (
            "one Monte Carlo draw of the DMFT: average several (--dmft-draws) for its error"
            if draws is not None else "the spectral closure has no Monte Carlo draws"
            if method == "spectral" else f"draws (Monte Carlo draws averaged) is an option of "
            f"the iid init's DMFT, not of the {method} theory")
    return {"predicted_final_test_loss_mc_se": value,
            **({} if draws is None else {"dmft_draws": draws}),
            "predicted_final_test_loss_mc_se_definition": "the standard error (sd / sqrt(draws)) "
            "of predicted_final_test_loss, the mean over the DMFT's Monte Carlo draws: the "
            "theory's own sampling error, not its error against the network"}


def offline_summary(traj: Trajectory, critical: CriticalKappa | None = None) -> dict[str, Any]:
    """summary.json of an offline-theory trajectory.

    Parameters
    ----------
    traj : Trajectory
        From :func:`~lazyrich_theory.theory.offline.curves.offline_theory`.
    critical : CriticalKappa, optional
        From :func:`critical_kappa` (None: ``critical_kappa`` is null with a reason).

    Returns
    -------
    dict
        predicted_half_time, predicted_final_test_loss, critical_kappa,
        predicted_grokking_delay, the lazy plateau's :data:`PLATEAU_KEYS` (relative to the
        initial loss, :func:`~lazyrich_theory.theory.offline.plateau.plateau_losses`; each a
        float or None), their definitions and a ``reasons``
        map for every None, the method, inputs and a regime note.  A DMFT run adds
        ``column_closure`` (the closure that ran), ``column_closure_reason`` (why it is not
        spread, where spread cannot run), ``spread_response`` (spread only), ``dmft_draws`` and
        with several draws ``predicted_final_test_loss_mc_se``.
    """
    t, pop, train = traj.t, traj.population_loss, traj.train_loss
    horizon = f"within {t[-1]:.6g} steps"
    reasons: dict[str, str] = {}
    half = first_time_below(t, pop, 0.5 * pop[0])
    if not math.isfinite(half):
        reasons["predicted_half_time"] = f"the population loss never falls to half {horizon}"
    delay = _delay(traj, grokking_summary(t, train, pop), reasons)
    ck = None if critical is None or not math.isfinite(critical.value) else critical.value
    if ck is None:
        reasons["critical_kappa"] = ("not computed" if critical is None else
                                     critical.reason or "not finite")
    info = traj.info
    train_half = first_time_below(t, train, 0.5 * train[0])
    if not math.isfinite(train_half):
        reasons["predicted_train_half_time"] = f"the train loss never falls to half {horizon}"
    out: dict[str, Any] = {
        "predicted_half_time": half if math.isfinite(half) else None,
        "predicted_final_test_loss": float(pop[-1] / pop[0]),
        "critical_kappa": ck,
        **delay,
        "critical_kappa_method": None if critical is None else critical.method,
        "critical_kappa_definition": None if critical is None else critical.definition,
        "predicted_grokking_delay_definition": "t_test - t_train, each at 0.1 x its initial "
                                               "value (relative_grokking_time of the theory); "
                                               f"null below kappa = {KAPPA_DELAY:g} for the "
                                               "spectral closure and the DMFT (with the "
                                               "resolved spread closure at D >= "
                                               f"{SPREAD_DELAY_D} and alpha / eps = "
                                               f"{SPREAD_DELAY_RATIO[0]:g}-"
                                               f"{SPREAD_DELAY_RATIO[1]:g}: below kappa = "
                                               f"{SPREAD_DELAY_KAPPA:g}), where the theory's "
                                               "difference is not a prediction of it "
                                               "(predicted_grokking_delay_estimate)",
        "predicted_half_time_definition": "the first t (GD steps) at which the theory's "
                                          "population loss is half its initial value",
        "predicted_final_test_loss_definition": "the theory's population loss at the horizon "
                                                "(the last time) / its initial value",
        "predicted_train_half_time": train_half if math.isfinite(train_half) else None,
        "predicted_final_train_loss": float(train[-1] / train[0]),
        "horizon": float(t[-1]),
        **({"horizon_tau": info["horizon_tau"]} if "horizon_tau" in info else {}),
        "method": info.get("offline_method"),
        "kappa": info.get("kappa"), "b2": info.get("b2"), "D": info.get("D"),
        "alpha_eps": info.get("alpha_eps"),
        "inputs_definition": "the theory's inputs: kappa = P / D; b2 = 2 tau |beta|^2 / D, the "
                             "teacher's strength (tau = 1/2 in convention A); alpha_eps = alpha "
                             "eps (an init scale sigma multiplies each); D; horizon = the last "
                             "time, in GD steps (horizon_tau: on the DMFT clock, tau = 2 eta0 "
                             "eps t / (alpha D))",
        "regime": regime_note(traj) + (
            f"; this run averaged {info['dmft_draws']} Monte Carlo draws (their standard "
            "error: predicted_final_test_loss_mc_se)" if info.get("dmft_draws", 1) > 1 else ""),
    }
    out.update(_mc_error(traj, reasons))
    if "column_closure" in info:          # the DMFT's that ran: spread, dmft (as derived), A7
        out["column_closure"] = info["column_closure"]
    if "column_closure_reason" in info:   # not the spread closure: why it cannot run here
        out["column_closure_reason"] = info["column_closure_reason"]
    if "spread_response" in info:         # the spread closure's memorisation response
        out["spread_response"] = info["spread_response"]
    if "column_speed" in info:            # ... and its column: instantaneous or finite speed
        out["column_speed"] = info["column_speed"]
    outside = outside_regime(traj)
    if outside is not None:               # where the errors quoted were not measured
        out["outside_measured_regime"] = outside
    out.update(_plateau(info, reasons))
    out["predicted_plateau_definition"] = (
        "train / test (population) loss relative to the initial loss on the lazy plateau, "
        "where the linear column has fitted the labels by least squares on X and the "
        "quadratic part has not moved: 1 - D/P and 1 + D/(P - D - 1), expected over "
        "training sets; gap = test - train; null where the linear fit does not complete "
        "before the rich transition (docs §7.1)")
    for k, v in out.items():          # every null has its reason
        if v is None:
            reasons.setdefault(k, reasons.get("critical_kappa", "not available")
                               if k.startswith("critical_kappa") else "not available")
    out["reasons"] = dict(sorted(reasons.items()))
    return out
