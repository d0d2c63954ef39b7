"""``solve_with_theory``: the exact solve plus the lazy-regime theory, as ``lazyrich solve``
writes it (kernel alignment, linearised curves, K0 baseline, time scales, grokking metrics),
and the offline (P = kappa D) theory's population loss where it applies (by default the
spectral closure at N = inf; on request the DMFT or, for a finite-rank init, the r-index DMFT:
``theory.offline``)."""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping

import numpy as np

from lazyrich_theory.core.kernels import kernel_observers
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.solve import solve
from lazyrich_theory.core.threads import blas_threads
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.streams import is_plain_gd
from lazyrich_theory.theory.lazy import LinearizedModel, lazy_summary_of
from lazyrich_theory.theory.offline import (
    KAPPA_SPECTRAL,
    check_closure_applies,
    check_dmft_steps,
    check_problem,
    offline_inputs,
    offline_summary,
    offline_theory,
)
from lazyrich_theory.theory.offline.dmft import check_column_closure, check_draws, check_ns
from lazyrich_theory.theory.offline.implicit_bias import (INTERPOLANT_ACCURACY,
                                                          entropic_interpolant,
                                                          interpolant_reason)
from lazyrich_theory.theory.offline.rindex import (check_rindex_ns, is_finite_rank,
                                                   rindex_inputs, rindex_plan)
from lazyrich_theory.theory.timescales import (
    grokking_summary,
    lazy_peak_reason,
    predict_timescales,
)

__all__ = ["solve_with_theory", "offline_overlay", "offline_reason", "OFFLINE_COLUMN",
           "OFFLINE_KEYS", "OFFLINE_OVERLAYS", "LIMIT_CHOICES", "LIMIT_KEY"]

#: What ``solve_with_theory(offline=...)`` (``lazyrich solve --offline-theory``) accepts:
#: "auto" the spectral closure where it is validated (seconds) and nothing elsewhere; "dmft"
#: and "rindex" (finite-rank inits) on request (~10-60 s); "none".
OFFLINE_OVERLAYS = ("auto", "spectral", "dmft", "rindex", "none")

#: What ``solve_with_theory(limit=...)`` (``lazyrich solve --limit-loss``) accepts.
LIMIT_CHOICES = ("interpolant", "none")
#: summary.json key of the interpolant's tau -> inf test loss / initial (on request).
LIMIT_KEY = "offline_predicted_limit_test_loss"
#: Written with it: the run's final population loss in the same (relative) units.
MEASURED_RELATIVE_KEY = "measured_final_relative_population_loss"

#: Its definition (summary.json, next to it).
LIMIT_DEFINITION = ("relative to the initial population loss: the mirror-descent interpolant's "
                    "tau -> inf population loss of this training set at N = inf whatever N is "
                    f"(where the flow ends; docs/offline_theory.md §15; {INTERPOLANT_ACCURACY})")

#: The column of the offline theory's population loss (spectral closure, N = inf).
OFFLINE_COLUMN = "offline_population_loss"
#: summary.json keys of the offline theory -> the key of ``offline_summary`` they copy.
OFFLINE_KEYS = {"offline_predicted_half_time": "predicted_half_time",
                "offline_predicted_final_test_loss": "predicted_final_test_loss",
                "offline_method": "method", "offline_regime": "regime"}


def solve_with_theory(problem: Problem, steps: int, method: str = "auto",
                      data: ProblemData | None = None, offline: str = "auto",
                      limit: str = "none", column_closure: str = "auto",
                      dmft_draws: int = 1, dmft_log: Callable[[str], None] | None = None,
                      dmft_options: Mapping[str, Any] | None = None,
                      **solve_kw) -> Trajectory:
    """``core.solve.solve`` plus the lazy-regime theory, as ``lazyrich solve`` writes it:

    * column ``kernel_alignment``: the paper's alignment of the current NTK on the test set
      (``kernels.kernel_alignment``), evaluated at every save time;
    * columns ``linearized_train_loss``/``linearized_test_loss``: the model linearised at
      initialisation, in closed form, with the method that ran (GD — "gd" or
      "gd-fast" — when the linearised GD is stable, else flow);
    * column ``offline_population_loss``: the offline (P = kappa D) theory's population loss
      at N = inf whatever N is (:func:`offline_overlay`): by default the spectral closure
      when the problem is in its domain and kappa = P / D >= ``KAPPA_SPECTRAL``; on request
      (``offline``) the DMFT, or the r-index DMFT of a finite-rank init;
    * ``info["summary"]``: the K0 baseline, the linearised lazy peak, predicted time scales
      (``timescales.predict_timescales``), the offline theory's ``offline_predicted_half_time``
      and ``offline_predicted_final_test_loss`` (``theory.offline.offline_summary``'s
      definitions) and measured grokking metrics (``timescales.grokking_summary``,
      ``measured_status``).  A value that does not apply
      (no lazy peak, no predicted delay, a threshold never reached, a non-paper target) is
      None, never a negative or placeholder number, and ``summary["reasons"]`` maps each
      None key to a one-line reason (docs/user_guide.md, "summary.json").

    Training options: label noise enters through the training labels, so every column is
    exact for it.  The linearised model and the population ODE have no weight decay,
    momentum or minibatches; with any of them, the linearised columns are left out and
    ``summary`` says that its predicted times are those of plain GD (``theory_note``).  The
    offline theory has none of these options (label noise included): with any of them its
    column is left out and its keys are null.

    Parameters
    ----------
    problem : Problem
        What to train.
    steps : int
        GD steps.
    method : str
        "auto" (default), "gd", "gd-fast" or "flow", as in ``solve``.
    data : ProblemData, optional
        The problem's data (default: ``problem.data()``).
    offline : {"auto", "spectral", "dmft", "rindex", "none"}
        The offline theory's curve (:data:`OFFLINE_OVERLAYS`).  An explicit theory that does
        not apply to ``problem`` is refused (ProblemError) before anything is solved; "auto"
        leaves the column out, with its reason.
    limit : {"none", "interpolant"}
        ``"interpolant"``: summary key ``offline_predicted_limit_test_loss``, the
        mirror-descent interpolant's tau -> inf population loss / initial of this training set
        at N = inf (:func:`~lazyrich_theory.theory.offline.entropic_interpolant`, docs
        offline_theory.md §15; 0.1-1 s at D = 100, 3-12 s at D = 400), drawn as a level line;
        refused (ProblemError) before the solve where the interpolant does not apply.  With
        "none" (the default) the key is absent.
    column_closure : {"auto", "dmft", "least_squares", "spread"}
        The DMFT's linear column with ``offline="dmft"``: "auto" (default) the spread closure
        where the column is fast, else as derived; or as derived, closure A7 or spread
        (docs/offline_theory.md §12.4); summary key ``offline_column_closure`` says which ran.
        Other than "auto" refused (ProblemError) with any other ``offline``.
    dmft_draws : int
        With ``offline="dmft"``: the DMFT averaged over this many Monte Carlo draws
        (``offline_theory``'s ``draws``); above 1 it adds the column
        ``offline_population_loss_mc_se`` (the standard error of that mean) and the summary
        keys ``offline_predicted_final_test_loss_mc_se`` and ``offline_dmft_draws``.  Refused
        (ProblemError) above 1 with any other ``offline``.
    dmft_log : callable, optional
        With several draws: receives one progress line per Monte Carlo draw done (``lazyrich
        solve`` prints them); nothing is printed otherwise.
    dmft_options : mapping, optional
        With ``offline="dmft"`` or ``"rindex"``: ``Ns`` (Monte Carlo samples) and ``seed``
        (of the draws), as ``offline_theory`` takes them (``lazyrich solve --ns
        --dmft-seed``); refused (ProblemError) with any other ``offline``.
    **solve_kw
        Further ``solve`` options (save_times, integrator, rtol, atol, progress, observers,
        stop).

    Returns
    -------
    Trajectory
        The solve's trajectory with the extra columns and ``info["summary"]``.
    """
    _check_theory_options(problem, steps, offline, limit, column_closure, dmft_draws)
    dmft_options = _check_dmft_options(offline, dmft_options)
    data = problem.data() if data is None else data
    observers = dict(solve_kw.pop("observers", None) or {})
    for name, fn in kernel_observers(("kernel_alignment",)).items():
        observers.setdefault(name, fn)
    # BLAS threads by the size of the dynamics' products for the solve and the system (its
    # factorisations included); the linearised model chooses its own (core.threads)
    with blas_threads(_rhs_flops(problem)):
        traj = solve(problem, steps, method=method, data=data, observers=observers, **solve_kw)
        system = ReducedSystem.build(problem, data)

    plain = is_plain_gd(problem)
    # one linearised model (one eigendecomposition, one QR of the test kernel) for the
    # linearised columns and the lazy summary
    model = LinearizedModel.from_system(system, population=False)
    if plain:
        lin_method = "gd" if traj.method in ("gd", "gd-fast") and model.stable else "flow"
        lin = model.curves(traj.t, lin_method, test=True, population=False)
        traj = traj.with_columns(linearized_train_loss=lin.train_loss,
                                 linearized_test_loss=lin.test_loss)
    summary: dict[str, Any] = dict(lazy_summary_of(model))
    reasons: dict[str, str] = {}
    off_columns, off_summary, off_reasons = _overlay(problem, traj.t, data, offline,
                                                     column_closure, dmft_draws, dmft_log,
                                                     dmft_options)
    if off_columns is not None:
        traj = traj.with_columns(**off_columns)
    note = _theory_note(problem, plain)
    if note is not None:
        summary["theory_note"] = note
    _predicted(summary, reasons, problem, data)
    summary.update(off_summary)
    reasons.update(off_reasons)
    if limit == "interpolant":          # on request only: absent otherwise (not a null)
        _add_limit(summary, problem, data, traj)
    elif summary.get("offline_regime"):  # the note points to a key this run did not ask for
        summary["offline_regime"] = summary["offline_regime"].replace(
            f"{LIMIT_KEY} (the interpolant",
            f"{LIMIT_KEY} (the interpolant, which --limit-loss interpolant adds")
    _measured(summary, reasons, traj)
    return traj.with_info(summary=_nulls_with_reasons(summary, reasons))


def _check_dmft_options(offline: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``dmft_options`` of :func:`solve_with_theory` checked before anything is solved: only
    ``Ns`` and ``seed``, and only where a DMFT draws the curve (ProblemError, one line)."""
    options = dict(options or {})
    unknown = sorted(set(options) - {"Ns", "seed"})
    if unknown:
        raise ProblemError(f"dmft_options takes Ns and seed, not {', '.join(unknown)}")
    if options and offline not in ("dmft", "rindex"):
        raise ProblemError(f"dmft_options ({', '.join(options)}) are the DMFT's Monte Carlo "
                           f"options: they need offline='dmft' or 'rindex', got {offline!r}")
    if "Ns" in options:
        (check_ns if offline == "dmft" else check_rindex_ns)(options["Ns"])
    seed = options.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ProblemError(f"dmft_options' seed must be an integer >= 0, got {seed!r}")
    return options


def _check_theory_options(problem: Problem, steps: int, offline: str, limit: str,
                          column_closure: str, dmft_draws: int) -> None:
    """ProblemError (one line) for an ``offline``, ``limit``, ``column_closure`` or
    ``dmft_draws`` of :func:`solve_with_theory` that is unknown or does not apply, before
    anything is solved."""
    if offline not in OFFLINE_OVERLAYS:
        raise ProblemError(f"offline must be one of {', '.join(OFFLINE_OVERLAYS)}, "
                           f"got {offline!r}")
    if offline in ("spectral", "dmft", "rindex"):
        why = offline_reason(problem, offline, steps)
        if why is not None:
            raise ProblemError(f"the offline theory {offline!r} does not apply: {why}")
    check_column_closure(column_closure)
    if column_closure != "auto" and offline != "dmft":
        raise ProblemError(f"column_closure={column_closure!r} is a closure of the DMFT's "
                           f"linear column: it needs offline='dmft', got {offline!r}")
    check_closure_applies(problem, column_closure)    # e.g. spread at a slow column
    check_draws(dmft_draws, "dmft_draws")
    if dmft_draws != 1 and offline != "dmft":
        raise ProblemError(f"dmft_draws={dmft_draws!r} averages the DMFT's Monte Carlo draws: "
                           f"it needs offline='dmft', got {offline!r}")
    if limit not in LIMIT_CHOICES:
        raise ProblemError(f"limit must be one of {', '.join(LIMIT_CHOICES)}, got {limit!r}")
    limit_why = interpolant_reason(problem) if limit == "interpolant" else None
    if limit_why is not None:
        raise ProblemError(f"limit='interpolant': {limit_why}")


def _add_limit(summary: dict[str, Any], problem: Problem, data: ProblemData,
               traj: Trajectory) -> None:
    """The interpolant's tau -> inf loss / initial (N = inf) and, in the same units next to
    it, the run's own final population loss / initial, each with its definition."""
    summary[LIMIT_KEY] = entropic_interpolant(problem.replace(N=math.inf), data).population_loss
    summary[LIMIT_KEY + "_definition"] = LIMIT_DEFINITION
    summary[MEASURED_RELATIVE_KEY] = float(traj.population_loss[-1] / traj.population_loss[0])
    summary[MEASURED_RELATIVE_KEY + "_definition"] = (
        "this run's population loss at its last step / at t = 0 (the units of "
        f"{LIMIT_KEY}; measured_final_test_loss is absolute, on the test set)")


def _theory_note(problem: Problem, plain: bool) -> str | None:
    """The caveat of the summary's predictions (None: none applies)."""
    notes = []
    if not plain:
        notes.append("weight_decay/momentum/minibatch/online: the K0 baseline, lazy times and "
                     "t* are those of full-batch plain GD (rich_time_population includes "
                     "weight decay, not momentum); no linearised columns")
    if problem.finite_width and problem.N < problem.D and problem.target == "paper":
        notes.append(f"N = {problem.N} < D = {problem.D}: predicted_rich_time_* are the N = inf "
                     "estimates (M0 = I); the rank-N initial M0 delays the rich transition "
                     "(the online flow at this width, lr.population(problem, method='full'), "
                     "is the closer prediction)")
    return "; ".join(notes) if notes else None


#: what solve's predicted_grokking_delay is (lazyrich asymptotic's key of the same name is the
#: offline theory's, another quantity)
GROKKING_DELAY_DEFINITION = (
    "the online (P -> inf) theory's delay: predicted_rich_time_population minus the lazy time "
    "named by predicted_grokking_delay_from; not the offline (P = kappa D) delay that lazyrich "
    "asymptotic's predicted_grokking_delay gives (t_test - t_train at 0.1 x initial, null "
    "below kappa = 20), which is longer at finite kappa")


def _predicted(summary: dict[str, Any], reasons: dict[str, str], problem: Problem,
               data: ProblemData) -> None:
    """Add the lazy peak's applicability and the predicted time scales to ``summary``."""
    why = lazy_peak_reason(summary["linearized_peak_time"], summary["linearized_peak_test_loss"],
                           summary["kernel_regression_test_loss"])
    if why is not None:
        summary["linearized_peak_time"] = math.nan
        summary["linearized_peak_test_loss"] = math.nan
        reasons["linearized_peak_time"] = reasons["linearized_peak_test_loss"] = why
    ts = predict_timescales(problem, data, summary["linearized_peak_time"], why)
    summary.update(ts.to_dict())
    reasons.update(ts.reasons_dict())
    summary["predicted_grokking_delay_from"] = (
        None if not math.isfinite(ts.grokking_delay)
        else "predicted_lazy_peak_time" if math.isfinite(ts.lazy_peak_time)
        else "predicted_lazy_fit_time")
    if summary["predicted_grokking_delay_from"] is None:
        reasons["predicted_grokking_delay_from"] = reasons["predicted_grokking_delay"]
    summary["predicted_grokking_delay_definition"] = GROKKING_DELAY_DEFINITION


def offline_reason(problem: Problem, method: str = "auto", steps: int | None = None
                   ) -> str | None:
    """Why ``lazyrich solve`` draws no offline-theory curve for ``problem`` (None: it does).

    "auto": the domain of :func:`~lazyrich_theory.theory.offline.check_problem` at N = inf
    (plain full-batch training, centered, the paper's teacher, i.i.d. init, P > D, any
    convention) and kappa = P / D >= ``KAPPA_SPECTRAL``, where the spectral closure (~1 s)
    is validated; "spectral", "dmft" (asked for explicitly): that domain at any kappa;
    "rindex": ``rindex_inputs``'s (a finite-rank init) and, given ``steps``, a horizon its
    default grid can resolve.

    Parameters
    ----------
    problem : Problem
    method : {"auto", "spectral", "dmft", "rindex"}
    steps : int, optional
        The horizon (rindex: checked against the stiff linear column and the memory limit).

    Returns
    -------
    str or None
        One line.
    """
    wide = problem.replace(N=math.inf)
    try:
        if method == "rindex":
            inp = rindex_inputs(wide)
            if steps is not None:
                rindex_plan(inp, steps)
            return None
        check_problem(wide)
        if method == "dmft" and steps is not None:
            check_dmft_steps(offline_inputs(wide), steps)
    except ProblemError as exc:
        if method == "auto" and is_finite_rank(problem):
            return (f"init={problem.init!r} is of finite rank: its offline theory is the "
                    "r-index DMFT, ~10-40 s per curve, not run by default (lazyrich solve "
                    "--offline-theory rindex; Python: offline='rindex')")
        return str(exc)
    kappa = problem.P / problem.D
    if method == "auto" and kappa < KAPPA_SPECTRAL:
        return (f"kappa = P/D = {kappa:.3g} < {KAPPA_SPECTRAL:g}: the spectral closure is "
                "validated for kappa >= 5 only, and the DMFT that covers smaller kappa takes "
                "~10-45 s per curve, too slow to run by default (lazyrich solve "
                "--offline-theory dmft or lazyrich asymptotic --method dmft computes it)")
    return None


def offline_overlay(problem: Problem, t: np.ndarray, data: ProblemData | None = None,
                    method: str = "auto", column_closure: str = "auto", draws: int = 1
                    ) -> tuple[np.ndarray | None, dict[str, Any], dict[str, str]]:
    """The offline theory's population loss at the save times ``t`` and its summary keys.

    ``offline_theory(problem.replace(N=inf), method=...)`` (the N = inf theory whatever
    ``problem.N`` is; |beta|^2 from ``data``'s teacher; "auto" is the spectral closure),
    evaluated at exactly the times ``t``; the summary keys are :data:`OFFLINE_KEYS` with
    ``offline_summary``'s definitions (``offline_method``: which theory drew the curve),
    and for the DMFT ``offline_column_closure`` (which closure of its linear column ran).

    Parameters
    ----------
    problem : Problem
    t : np.ndarray
        The exact trajectory's save times (t[0] = 0, increasing integers).
    data : ProblemData, optional
        The problem's data (default ``problem.data()``).
    method : {"auto", "spectral", "dmft", "rindex", "none"}
        Which theory (:data:`OFFLINE_OVERLAYS`).
    column_closure : {"auto", "dmft", "least_squares", "spread"}
        The DMFT's column closure (``method="dmft"`` only; ``offline_theory``'s option).
    draws : int
        The DMFT's Monte Carlo draws to average (``method="dmft"`` only; ``offline_theory``'s
        option); above 1 the summary adds ``offline_predicted_final_test_loss_mc_se`` and
        ``offline_dmft_draws`` (:func:`solve_with_theory` also writes the standard error's
        column, ``offline_population_loss_mc_se``).

    Returns
    -------
    column : np.ndarray or None
        The population loss at ``t``; None outside the theory's domain (:func:`offline_reason`).
    summary : dict
        :data:`OFFLINE_KEYS` (None where they do not apply).
    reasons : dict
        A one-line reason for every None of ``summary``.
    """
    columns, summary, reasons = _overlay(problem, t, data, method, column_closure, draws)
    return (None if columns is None else columns[OFFLINE_COLUMN]), summary, reasons


def _overlay(problem: Problem, t: np.ndarray, data: ProblemData | None, method: str,
             column_closure: str, draws: int, log: Callable[[str], None] | None = None,
             dmft_options: Mapping[str, Any] | None = None
             ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any], dict[str, str]]:
    """:func:`offline_overlay` with every column it has at ``t``: the population loss and,
    for a mean of several DMFT draws, its standard error (OFFLINE_COLUMN + "_mc_se"); ``log``
    gets a line per draw done."""
    t = np.asarray(t)
    why = ("not requested (offline='none')" if method == "none" else
           offline_reason(problem, method, int(t[-1])))
    if why is not None:
        return None, dict.fromkeys(OFFLINE_KEYS), dict.fromkeys(OFFLINE_KEYS, why)
    options = {"column_closure": column_closure} if column_closure != "auto" else {}
    options.update({"draws": draws, "log": log} if draws != 1 else {})
    options.update(dmft_options or {})                   # Ns, seed (checked by the caller)
    off = offline_theory(problem.replace(N=math.inf), int(t[-1]),
                         method="spectral" if method == "auto" else method, save_times=t,
                         data=data, **options)
    pick = np.searchsorted(off.t, t)         # off.t holds every t (save_times=t)
    s = offline_summary(off)
    summary = {key: s[src] for key, src in OFFLINE_KEYS.items()}
    # the regime note names asymptotic's keys; solve writes them with the offline_ prefix
    summary["offline_regime"] = re.sub(r"\bpredicted_", "offline_predicted_",
                                       summary["offline_regime"])
    for key in ("column_closure", "column_closure_reason", "outside_measured_regime",
                "horizon_tau"):
        if key in s:                   # the DMFT's closure; where the errors were not measured
            summary[f"offline_{key}"] = s[key]
    reasons = {key: s["reasons"][src] for key, src in OFFLINE_KEYS.items() if s[src] is None}
    columns = {OFFLINE_COLUMN: np.asarray(off.population_loss, dtype=float)[pick]}
    se = off.extra.get("population_loss_mc_se")
    if se is not None:                        # a mean of several draws
        columns[OFFLINE_COLUMN + "_mc_se"] = np.asarray(se, dtype=float)[pick]
        summary["offline_predicted_final_test_loss_mc_se"] = s["predicted_final_test_loss_mc_se"]
        summary["offline_dmft_draws"] = s["dmft_draws"]
    return columns, summary, reasons


def _measured(summary: dict[str, Any], reasons: dict[str, str], traj: Trajectory) -> None:
    """Add the measured grokking metrics of ``traj`` to ``summary``."""
    measured = grokking_summary(traj.t, traj.train_loss, traj.test_loss)
    summary.update({f"measured_{k}": v for k, v in measured["values"].items()})
    reasons.update({f"measured_{k}": v for k, v in measured["reasons"].items()})
    summary["measured_status"] = measured["status"]
    summary["initial_test_loss"] = float(traj.test_loss[0])
    summary["max_test_loss"] = float(np.max(traj.test_loss))


def _nulls_with_reasons(summary: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """Non-finite values -> None, each None with a reason in ``out["reasons"]``."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        if v is None:
            reasons.setdefault(k, "not finite")
        out[k] = v
    out["reasons"] = {k: reasons[k] for k in sorted(reasons) if out.get(k, 0) is None}
    return out


def _rhs_flops(problem: Problem) -> float:
    """4 P D r: one right-hand side / GD step (r = min(N, D + 1))."""
    r = problem.D + 1 if not problem.finite_width else min(int(problem.N), problem.D + 1)
    return 4.0 * problem.P * problem.D * r

