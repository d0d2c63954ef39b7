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
* predicted grokking delay: rich transition (population ODE) minus the lazy peak.

Measurements on any trajectory use log-linear interpolation between save times.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from lazyrich_theory.core.population import population, rich_transition_time
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem

__all__ = ["Timescales", "predict_timescales", "first_time_below", "population_half_time",
           "grokking_metrics"]


@dataclass(frozen=True)
class Timescales:
    """Predicted time scales in GD steps (docs/theory.md §8): lazy fit D/(4 eta0), lazy peak
    (linearised test-loss argmax), rich transition (closed form t* and the N = inf online ODE's
    half-loss time) and the predicted grokking delay; NaN where not available."""

    lazy_fit_time: float
    lazy_peak_time: float
    rich_time_estimate: float
    rich_time_population: float
    grokking_delay: float

    def to_dict(self) -> dict[str, float]:
        """``predicted_<field>`` -> value, None for non-finite values (JSON-able)."""
        return {f"predicted_{k}": (None if not math.isfinite(v) else float(v))
                for k, v in asdict(self).items()}


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


def population_half_time(problem: Problem, data: ProblemData | None = None,
                         horizon: float | None = None) -> float:
    """Time at which the N = inf population loss falls to half its initial value (the rich
    transition of the online ODE, with weight decay if any; inf if not within ``horizon``,
    default 10 t*)."""
    beta = (problem.data() if data is None else data).beta
    beta2 = float(beta @ beta)
    t_star = rich_transition_time(problem.alpha, problem.eps, problem.eta0, problem.D, beta2,
                                  problem.tau)
    steps = int(min(max(10 * t_star, 1000), 1e12)) if horizon is None else int(horizon)
    pi = problem.replace(N="inf", P=max(problem.P, 1), data_file=None,
                         noise=0.0, momentum=0.0, batch_size=None, online=False)
    d = ProblemData(X=np.zeros((1, problem.D)), y=np.zeros(1), X_test=np.zeros((1, problem.D)),
            y_test=np.zeros(1), beta=np.asarray(beta, dtype=float), W0=None, source="beta only")
    tr = population(pi, steps, data=d, method="scalar", rtol=1e-8, atol=1e-12)
    L = tr.population_loss
    return first_time_below(tr.t, L, 0.5 * L[0])


def predict_timescales(problem: Problem, data: ProblemData | None = None,
                       lazy_peak_time: float | None = None) -> Timescales:
    """All predicted times for ``problem`` (see module doc).  ``lazy_peak_time`` comes from the
    linearised model when the caller has it (it needs the training data); NaN otherwise.
    Non-paper targets: the rich-transition times and the delay are NaN (paper-only theory)."""
    data = problem.data() if data is None else data
    beta2 = float(data.beta @ data.beta)
    t_fit = problem.D / (4.0 * problem.eta0)
    if problem.target != "paper":
        # the rich-transition theory (population ODE, t*) is for the paper target only
        peak = math.nan if lazy_peak_time is None else float(lazy_peak_time)
        return Timescales(t_fit, peak, math.nan, math.nan, math.nan)
    t_est = rich_transition_time(problem.alpha, problem.eps, problem.eta0, problem.D, beta2,
                                 problem.tau)
    t_pop = population_half_time(problem, data)
    peak = math.nan if lazy_peak_time is None else float(lazy_peak_time)
    delay = t_pop - (peak if math.isfinite(peak) else t_fit)
    return Timescales(t_fit, peak, t_est, t_pop, delay)


def grokking_metrics(t: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray,
                     threshold: float = 0.1, relative: float = 0.1) -> dict[str, float]:
    """Grokking measurements of one trajectory.

    * ``paper_grokking_time``: the paper's Fig. 3(e) metric: first step with test loss under
      the absolute ``threshold`` minus first step with train loss under it; 0 when the test
      loss never gets there.
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
