"""Time-scale predictions and measurements (docs/theory.md §8).

Predictions, all in GD steps:

* lazy fitting rate: in convention-A units the linear block of the initial kernel has
  eigenvalues ~ P/D (X^T X ~ (P/D) I), so its residual modes decay like exp(-2 eta0 t / D) and
  the loss like exp(-4 eta0 t / D):  t_fit = D / (4 eta0).
* lazy peak: the time at which the linearised model's test loss is largest (the end of the
  lazy over-fit; closed form, no time stepping, see :mod:`lazyrich_theory.lazy`).
* rich transition, closed form: t* = (alpha D^2 / (12 tau eta0 eps |beta|^2)) ln(2 tau |beta|^2 /
  (alpha eps))  (docs/theory.md §5).
* rich transition, population ODE: the time at which the N = inf online loss falls to half its
  initial value.
* predicted grokking delay: rich transition (population ODE) minus the lazy peak (minus the lazy
  fit time when there is no lazy peak).

Measurements on any trajectory use log-linear interpolation between save times.

A prediction that does not apply is NaN in :class:`Timescales` (None in JSON), never a
negative or placeholder number, and ``Timescales.reasons`` says why: the rich-transition
theory is for the paper's target only; a linearised test loss that rises monotonically to its
t -> inf limit has no lazy peak (:func:`lazy_peak_reason`); a rich transition predicted before
the end of the lazy phase gives no delay.  :func:`grokking_summary` does the same for the
measurements ("never reached the threshold" is ``None`` plus a reason and a ``status``, not 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from lazyrich_theory.core.population import population, rich_transition_time
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem

__all__ = ["Timescales", "predict_timescales", "first_time_below", "half_time",
           "population_half_time", "online_tail",
           "grokking_metrics", "grokking_summary", "lazy_peak_reason", "MEASURED_STATUS"]

#: the four values of ``grokking_summary(...)["status"]`` (``measured_status`` in summary.json)
MEASURED_STATUS = ("generalised", "never generalised", "never fitted",
                   "generalised without fitting")
#: relative margin by which a lazy peak must exceed the linearised model's t -> inf test loss
PEAK_RTOL = 1e-6


@dataclass(frozen=True)
class Timescales:
    """Predicted time scales in GD steps (docs/theory.md §8): lazy fit D/(4 eta0), lazy peak
    (linearised test-loss argmax), rich transition (closed form t* and the N = inf online ODE's
    half-loss time) and the predicted grokking delay.

    NaN where a prediction does not apply or is not available; ``reasons`` maps each such
    field name to a one-line reason (and holds no other names)."""

    lazy_fit_time: float
    lazy_peak_time: float
    rich_time_estimate: float
    rich_time_population: float
    grokking_delay: float
    reasons: Mapping[str, str] = field(default_factory=dict, compare=False)

    def _values(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)
                if f.name != "reasons"}

    def to_dict(self) -> dict[str, float | None]:
        """``predicted_<field>`` -> value, None for non-finite values (JSON-able)."""
        return {f"predicted_{k}": (None if not math.isfinite(v) else v)
                for k, v in self._values().items()}

    def reasons_dict(self) -> dict[str, str]:
        """``predicted_<field>`` -> reason, for every field that is None in :meth:`to_dict`."""
        out = {}
        for k, v in self._values().items():
            if not math.isfinite(v):
                out[f"predicted_{k}"] = self.reasons.get(k, "not available")
        return out


def first_time_below(t: np.ndarray, loss: np.ndarray, threshold: float,
                     after: float = 0.0) -> float:
    """First time (>= ``after``) at which ``loss`` drops to ``threshold``, interpolating
    log(loss) linearly in log(1 + t) between save times; inf when it never does."""
    t = np.asarray(t, dtype=float)
    loss = np.asarray(loss, dtype=float)
    idx = np.flatnonzero((loss <= threshold) & (t >= after))
    if idx.size == 0:
        return math.inf
    k = int(idx[0])
    if k == 0 or t[k - 1] < after or loss[k - 1] <= 0 or loss[k] <= 0:
        return float(t[k])
    x0, x1 = math.log1p(t[k - 1]), math.log1p(t[k])
    y0, y1 = math.log(loss[k - 1]), math.log(loss[k])
    if y1 == y0:
        return float(t[k])
    x = x0 + (math.log(threshold) - y0) * (x1 - x0) / (y1 - y0)
    return float(math.expm1(x))


def half_time(t: np.ndarray, loss: np.ndarray) -> float | None:
    """:func:`first_time_below` half the initial ``loss``, None when it never gets there (the
    JSON-friendly form the figures and benchmarks record)."""
    loss = np.asarray(loss, dtype=float)
    h = first_time_below(t, loss, 0.5 * loss[0])
    return h if math.isfinite(h) else None


def _population_horizon(t_star: float) -> int:
    """Default horizon of :func:`population_half_time`: 10 t*, at least 1000, at most 1e12."""
    return int(min(max(10 * t_star, 1000), 1e12))


def population_half_time(problem: Problem, data: ProblemData | None = None,
                         horizon: float | None = None) -> float:
    """Time at which the N = inf population loss falls to half its initial value (the rich
    transition of the online ODE, with weight decay if any; inf if not within ``horizon``,
    default 10 t*)."""
    beta = (problem.data() if data is None else data).beta
    beta2 = float(beta @ beta)
    t_star = rich_transition_time(problem.alpha, problem.eps, problem.eta0, problem.D, beta2,
                                  problem.tau)
    steps = _population_horizon(t_star) if horizon is None else int(horizon)
    # canonical(): options in their width-free reading (weight_decay_torch -> weight_decay)
    pi = problem.canonical().replace(N="inf", P=max(problem.P, 1), data_file=None,
                         noise=0.0, momentum=0.0, batch_size=None, online=False)
    d = ProblemData(X=np.zeros((1, problem.D)), y=np.zeros(1), X_test=np.zeros((1, problem.D)),
            y_test=np.zeros(1), beta=np.asarray(beta, dtype=float), W0=None, source="beta only")
    tr = population(pi, steps, data=d, method="scalar", rtol=1e-8, atol=1e-12)
    L = tr.population_loss
    return first_time_below(tr.t, L, 0.5 * L[0])


def online_tail(tau, alpha: float, eps: float, b2: float, tau1: float,
                delta1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The N = inf online flow after its rich transition, in closed form (docs/offline_theory.md
    §11.6): the late-time solution through the point (tau1, delta1).

    tau is the DMFT clock (tau = 2 eta0 eps t / (alpha D)), delta = 1 - (alpha eps / 2)(M_bb -
    1) / (tau_c |beta|^2) the spike's deficit along betahat and t = alpha eps a (D - 1) / (b2 D)
    the bulk's trace excess (M = (1 + a) I + b betahat betahat^T).  Valid once the spike has
    grown (the O(1/D) terms that start the transition are dropped) and has locked to the
    bulk's trace (t = 3 delta): then ln(1 + A / delta) with A = alpha eps / (3 b2) grows at the
    rate 2 alpha eps / 3:

        delta(tau) = A / (exp(ln(1 + A / delta1) + (2 alpha eps / 3)(tau - tau1)) - 1),

    a power law delta ~ 1 / (2 b2 tau) while delta >> A, then an exponential.  The population
    loss relative to its initial value is 2 delta^2 (leading order in 1/D and alpha eps / b2).

    Returns
    -------
    (delta, t, relative_loss)
        Arrays of the shape of ``tau``.
    """
    A = alpha * eps / (3.0 * b2)
    x = np.log1p(A / delta1) + (2.0 * alpha * eps / 3.0) * (np.asarray(tau, float) - tau1)
    delta = A / np.expm1(x)
    return delta, 3.0 * delta, 2.0 * delta ** 2


def lazy_peak_reason(peak_time: float | None, peak_test_loss: float | None,
                     limit_test_loss: float | None, horizon: float = 1e9,
                     rtol: float = PEAK_RTOL) -> str | None:
    """Why the linearised model's test-loss argmax is not a lazy peak, or None when it is one.

    A lazy peak is an interior maximum: the linearised test loss rises above its initial value
    and then falls towards its t -> inf limit, the K0-regression test loss.  When the curve
    only falls (argmax at t = 0, ``peak_time`` NaN or None), or rises monotonically to its limit
    (the maximum is within ``rtol`` of ``limit_test_loss``, or at the end of the grid,
    ``horizon``), the argmax is where the curve stops changing in floating point -- a
    meaningless time (e.g. 5e7 or 1e9 steps for N < D).

    Parameters
    ----------
    peak_time, peak_test_loss : float or None
        The argmax of the linearised test loss and the loss there (``lazy_summary``).
    limit_test_loss : float or None
        The t -> inf limit (``kernel_regression_test_loss``); None when unknown.
    horizon : float
        The last time of the grid the argmax was taken on.
    rtol : float
        Relative margin by which a peak must exceed the limit.

    Returns
    -------
    str or None
        A one-line reason, or None when the argmax is a lazy peak.
    """
    if peak_time is None or not math.isfinite(peak_time):
        return ("the linearised test loss never rises above its initial value: "
                "no lazy over-fit peak")
    limit = None if limit_test_loss is None else float(limit_test_loss)
    if (limit is not None and math.isfinite(limit) and peak_test_loss is not None
            and float(peak_test_loss) <= limit * (1.0 + rtol)) or peak_time >= horizon:
        lim = "" if limit is None else f" ({limit:.4g})"
        return ("the linearised test loss rises monotonically to its t -> inf limit, the "
                f"K0-regression test loss{lim}: no interior lazy peak")
    return None


def predict_timescales(problem: Problem, data: ProblemData | None = None,
                       lazy_peak_time: float | None = None,
                       lazy_peak_reason: str | None = None) -> Timescales:
    """All predicted times for ``problem`` (see module doc), with a reason for each NaN.

    ``lazy_peak_time`` comes from the linearised model when the caller has it (it needs the
    training data); pass NaN or None with ``lazy_peak_reason`` when the model has no lazy
    peak (:func:`lazy_peak_reason`).  Non-paper targets: the rich-transition times and the
    delay are NaN (paper-only theory).  The delay is ``rich_time_population`` minus the lazy
    peak (minus ``lazy_fit_time`` when there is no peak); NaN, not negative, when the rich
    transition is predicted before that time (the time scales do not separate).

    Parameters
    ----------
    problem : Problem
        The problem.
    data : ProblemData, optional
        Its data (default ``problem.data()``).
    lazy_peak_time : float, optional
        The linearised model's lazy peak.
    lazy_peak_reason : str, optional
        Why there is none (used when ``lazy_peak_time`` is None or NaN).

    Returns
    -------
    Timescales
        The predictions; ``reasons`` for the NaN ones.
    """
    data = problem.data() if data is None else data
    beta2 = float(data.beta @ data.beta)
    t_fit = problem.D / (4.0 * problem.eta0)
    reasons: dict[str, str] = {}
    peak = math.nan if lazy_peak_time is None else float(lazy_peak_time)
    if not math.isfinite(peak):
        peak = math.nan
        reasons["lazy_peak_time"] = lazy_peak_reason or (
            "not computed: the lazy peak needs the linearised model (pass lazy_peak_time)")
    if problem.target != "paper":
        # the rich-transition theory (population ODE, t*) is for the paper target only
        why = (f"target {problem.target!r}: the rich-transition theory (t*, the population "
               "ODE) is for the paper's teacher tau (beta.x)^2 only")
        reasons.update(rich_time_estimate=why, rich_time_population=why, grokking_delay=why)
        return Timescales(t_fit, peak, math.nan, math.nan, math.nan, reasons)
    t_est = rich_transition_time(problem.alpha, problem.eps, problem.eta0, problem.D, beta2,
                                 problem.tau)
    t_pop = population_half_time(problem, data)
    delay = math.nan
    if not math.isfinite(t_pop):
        t_pop = math.nan
        reasons["rich_time_population"] = (
            "the N = inf online loss does not fall to half its initial value within "
            f"{_population_horizon(t_est)} steps (10 t*)")
        reasons["grokking_delay"] = "no predicted rich transition (rich_time_population)"
    else:
        ref, name = (peak, "lazy peak") if math.isfinite(peak) else (t_fit, "lazy fit time")
        if t_pop > ref:
            delay = t_pop - ref
        else:
            reasons["grokking_delay"] = (
                f"the rich transition ({t_pop:.4g}) is predicted before the {name} "
                f"({ref:.4g}): lazy and rich time scales do not separate, no delay predicted")
    return Timescales(t_fit, peak, t_est, t_pop, delay, reasons)


def grokking_metrics(t: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray,
                     threshold: float = 0.1, relative: float = 0.1) -> dict[str, float]:
    """Grokking measurements of one trajectory.

    * ``paper_grokking_time``: the paper's Fig. 3(e) metric: first step with test loss under
      the absolute ``threshold`` minus first step with train loss under it; 0 when the test
      loss never gets there (the phase diagram's convention; :func:`grokking_summary` reports
      None and a reason instead).
    * ``relative_grokking_time``: the same with threshold ``relative`` x each curve's initial
      value.
    * ``test_train_time_ratio``: t_test / t_train at the absolute threshold (inf if never).
    * ``peak_test_over_initial``: max test loss / initial test loss (> 1: a lazy over-fit).
    * ``test_half_time``: first time the test loss is at half its initial value.
    """
    t = np.asarray(t, dtype=float)
    tr_t = first_time_below(t, train_loss, threshold)
    te_t = first_time_below(t, test_loss, threshold)
    paper = 0.0 if not math.isfinite(te_t) else te_t - tr_t
    tr_r = first_time_below(t, train_loss, relative * train_loss[0])
    te_r = first_time_below(t, test_loss, relative * test_loss[0])
    rel = 0.0 if not math.isfinite(te_r) else te_r - tr_r
    ratio = te_t / tr_t if math.isfinite(te_t) and tr_t > 0 else math.inf
    return {
        "train_time": tr_t, "test_time": te_t, "paper_grokking_time": paper,
        "relative_grokking_time": rel, "test_train_time_ratio": ratio,
        "peak_test_over_initial": float(np.max(test_loss) / test_loss[0]),
        "test_half_time": first_time_below(t, test_loss, 0.5 * test_loss[0]),
        "final_train_loss": float(train_loss[-1]), "final_test_loss": float(test_loss[-1]),
    }


def grokking_summary(t: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray,
                     threshold: float = 0.1, relative: float = 0.1) -> dict[str, Any]:
    """:func:`grokking_metrics` for a report: None (not 0, inf or -inf) where a measurement
    does not exist, a reason for each None, and the run's status.

    "Never" means "not within the trajectory" (its last save time).  A negative
    ``paper_grokking_time`` is a measurement: the test loss reached the threshold first.

    Parameters
    ----------
    t, train_loss, test_loss : array
        The trajectory's save times and losses.
    threshold, relative : float
        As in :func:`grokking_metrics`.

    Returns
    -------
    dict
        ``values``: the keys of :func:`grokking_metrics`, each a float or None; ``reasons``:
        key -> reason for every None; ``status``: one of :data:`MEASURED_STATUS` --
        "generalised" (train and test loss reached ``threshold``), "never generalised" (train
        did, test did not), "never fitted" (neither did), "generalised without fitting"
        (test did, train did not, e.g. with label noise).
    """
    t = np.asarray(t, dtype=float)
    train_loss = np.asarray(train_loss, dtype=float)
    test_loss = np.asarray(test_loss, dtype=float)
    m = grokking_metrics(t, train_loss, test_loss, threshold=threshold, relative=relative)
    horizon = f"within {t[-1]:.6g} steps"
    reasons: dict[str, str] = {}
    train_ok, test_ok = math.isfinite(m["train_time"]), math.isfinite(m["test_time"])
    if not train_ok:
        reasons["train_time"] = f"the train loss never reached {threshold:g} {horizon}"
    if not test_ok:
        reasons["test_time"] = f"the test loss never reached {threshold:g} {horizon}"
    if not test_ok:
        reasons["paper_grokking_time"] = f"never generalised: {reasons['test_time']}"
    elif not train_ok:
        reasons["paper_grokking_time"] = reasons["train_time"]
    tr_r = first_time_below(t, train_loss, relative * train_loss[0])
    te_r = first_time_below(t, test_loss, relative * test_loss[0])
    if not math.isfinite(te_r):
        reasons["relative_grokking_time"] = (f"the test loss never fell to {relative:g} x its "
                                             f"initial value {horizon}")
    elif not math.isfinite(tr_r):
        reasons["relative_grokking_time"] = (f"the train loss never fell to {relative:g} x its "
                                             f"initial value {horizon}")
    if not (train_ok and test_ok):
        reasons["test_train_time_ratio"] = reasons.get("test_time", reasons.get("train_time"))
    elif m["train_time"] <= 0:
        reasons["test_train_time_ratio"] = (f"the train loss starts at or below {threshold:g} "
                                            "(train_time = 0)")
    if not math.isfinite(m["test_half_time"]):
        reasons["test_half_time"] = f"the test loss never fell to half its initial value {horizon}"
    values: dict[str, float | None] = {}
    for k, v in m.items():
        v = float(v)
        if k in reasons or not math.isfinite(v):
            values[k] = None
            reasons.setdefault(k, "not finite (the losses are not finite)")
        else:
            values[k] = v
    status = ("generalised" if train_ok and test_ok else "never generalised" if train_ok
              else "generalised without fitting" if test_ok else "never fitted")
    return {"values": values, "reasons": reasons, "status": status}
