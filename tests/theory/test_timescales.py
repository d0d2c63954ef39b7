"""Time-scale predictions and grokking metrics."""
import math

import numpy as np
import pytest

from lazyrich_theory import Problem
from lazyrich_theory.theory.timescales import (
    first_time_below,
    grokking_metrics,
    grokking_summary,
    half_time,
    lazy_peak_reason,
    population_half_time,
    predict_timescales,
)


def test_first_time_below_interpolates_exponential_decay():
    t = np.array([0.0, 9.0, 99.0, 999.0])
    loss = np.exp(-np.log1p(t))            # = 1/(1+t): log-linear in log(1+t)
    assert math.isclose(first_time_below(t, loss, 1 / 50), 49.0, rel_tol=1e-12)
    assert first_time_below(t, loss, 1e-9) == math.inf
    assert first_time_below(t, loss, 2.0) == 0.0
    assert first_time_below(t, loss, 0.5, after=50) == 99.0


def test_half_time_is_the_half_crossing_or_none():
    t = np.array([0.0, 9.0, 99.0, 999.0])
    loss = 3.0 / (1.0 + t)                 # half of 3 at t = 1, between the first two saves
    assert math.isclose(half_time(t, loss), 1.0, rel_tol=1e-12)
    assert half_time(t, np.array([1.0, 0.9, 0.8, 0.7])) is None


def test_grokking_metrics_paper_definition():
    t = np.array([0, 10, 100, 1000, 10000], dtype=float)
    train = np.array([1.0, 0.5, 0.05, 0.01, 0.001])
    test = np.array([1.0, 1.2, 0.9, 0.05, 0.01])
    m = grokking_metrics(t, train, test, threshold=0.1)
    assert 10 < m["train_time"] < 100 and 100 < m["test_time"] < 1000
    assert math.isclose(m["paper_grokking_time"], m["test_time"] - m["train_time"])
    assert math.isclose(m["peak_test_over_initial"], 1.2)
    never = grokking_metrics(t, train, np.ones(5), threshold=0.1)
    assert never["paper_grokking_time"] == 0.0 and never["test_train_time_ratio"] == math.inf


def test_population_half_time_tracks_the_closed_form_across_alpha_and_eps():
    """The closed form t* = alpha D^2/(12 tau eta0 eps |beta|^2) ln(2 tau |beta|^2/(alpha eps))
    is a leading-exponential estimate: within a factor 2.5 of the ODE's half-loss time, and
    it must order the times the same way (larger alpha, smaller eps -> later)."""
    ratios, times = [], []
    for alpha, eps in [(0.5, 0.05), (1.0, 0.05), (2.0, 0.05), (1.0, 0.02), (1.0, 0.2)]:
        p = Problem(D=50, P=10, N="inf", alpha=alpha, eps=eps, eta0=1.0, seed=0, test_size=5)
        ts = predict_timescales(p)
        times.append(ts.rich_time_population)
        ratios.append(ts.rich_time_population / ts.rich_time_estimate)
    assert all(0.4 < r < 2.5 for r in ratios), ratios
    assert times[0] < times[1] < times[2]
    assert times[3] > times[1] > times[4]


def test_population_half_time_is_where_the_online_loss_halves():
    from lazyrich_theory import population

    p = Problem(D=20, P=10, N="inf", alpha=1.0, eps=0.1, eta0=1.0, seed=1, test_size=5)
    th = population_half_time(p)
    tr = population(p, int(3 * th))
    L = np.interp(th, tr.t, tr.population_loss)
    assert abs(L / tr.population_loss[0] - 0.5) < 0.02


def test_timescales_reasons_for_every_nan():
    from lazyrich_theory.theory.timescales import Timescales

    ts = Timescales(1.0, math.nan, 2.0, math.inf, math.nan, {"lazy_peak_time": "none"})
    assert ts.to_dict() == {"predicted_lazy_fit_time": 1.0, "predicted_lazy_peak_time": None,
                            "predicted_rich_time_estimate": 2.0,
                            "predicted_rich_time_population": None,
                            "predicted_grokking_delay": None}
    assert ts.reasons_dict() == {"predicted_lazy_peak_time": "none",
                                 "predicted_rich_time_population": "not available",
                                 "predicted_grokking_delay": "not available"}


def test_predicted_delay_is_never_negative():
    """A lazy peak after the rich transition (e.g. the meaningless 1e9 of a monotone
    linearised curve) gives no delay, with a reason; a missing peak falls back to the lazy
    fit time; a missing peak keeps the caller's reason."""
    p = Problem(D=20, P=10, N="inf", alpha=1.0, eps=0.1, eta0=1.0, seed=1, test_size=5)
    late = predict_timescales(p, lazy_peak_time=1e9)
    assert math.isnan(late.grokking_delay)
    assert "do not separate" in late.reasons["grokking_delay"]
    none = predict_timescales(p, lazy_peak_reason="because")
    assert none.grokking_delay == pytest.approx(none.rich_time_population - none.lazy_fit_time)
    assert none.reasons == {"lazy_peak_time": "because"}
    early = predict_timescales(p, lazy_peak_time=10.0)
    assert early.grokking_delay == pytest.approx(early.rich_time_population - 10.0)
    assert early.reasons == {}


def test_lazy_peak_reason():
    assert lazy_peak_reason(656.0, 0.872, 0.564) is None
    assert "never rises" in lazy_peak_reason(math.nan, 1.0, 0.5)
    assert "never rises" in lazy_peak_reason(None, None, 0.5)
    assert "monotonically" in lazy_peak_reason(5e7, 3.9575783994779, 3.9575783994821)
    assert "monotonically" in lazy_peak_reason(1e9, 2.0, None)
    assert lazy_peak_reason(1e3, 2.0, None) is None


def test_grokking_summary_never_is_not_zero():
    """'Never reached the threshold' is None + reason + status, never 0 (which would read as
    instant grokking); grokking_metrics keeps its phase-diagram convention (0)."""
    t = np.array([0, 10, 100, 1000, 10000], dtype=float)
    train = np.array([1.0, 0.5, 0.05, 0.01, 0.001])
    test = np.array([1.0, 1.2, 0.9, 0.05, 0.01])
    ok = grokking_summary(t, train, test)
    assert ok["status"] == "generalised" and ok["reasons"] == {}
    assert ok["values"]["paper_grokking_time"] == pytest.approx(
        ok["values"]["test_time"] - ok["values"]["train_time"])

    never = grokking_summary(t, train, np.ones(5))
    assert never["status"] == "never generalised"
    v, r = never["values"], never["reasons"]
    for k in ("test_time", "paper_grokking_time", "relative_grokking_time",
              "test_train_time_ratio", "test_half_time"):
        assert v[k] is None and k in r
    assert set(r) == {k for k, x in v.items() if x is None}
    assert r["paper_grokking_time"] == ("never generalised: the test loss never reached 0.1 "
                                        "within 10000 steps")
    assert v["train_time"] > 0 and v["final_test_loss"] == 1.0

    assert grokking_summary(t, np.ones(5), np.ones(5))["status"] == "never fitted"
    noisy = grokking_summary(t, np.full(5, 0.3), test)      # e.g. label noise
    assert noisy["status"] == "generalised without fitting"
    assert noisy["values"]["paper_grokking_time"] is None
    assert "train loss never reached" in noisy["reasons"]["paper_grokking_time"]
    low = grokking_summary(t, np.full(5, 0.01), test)       # train starts below threshold
    assert low["values"]["train_time"] == 0.0
    assert low["values"]["test_train_time_ratio"] is None
    assert "train_time = 0" in low["reasons"]["test_train_time_ratio"]


def test_online_tail_closed_form_matches_the_population_ode():
    """docs/offline_theory.md §11.6: after the transition the spike's deficit locks to the bulk's
    trace excess (t = 3 delta) and follows ``online_tail``; the loss is 2 delta^2."""
    from lazyrich_theory import population
    from lazyrich_theory.theory.timescales import online_tail

    D, alpha, eps = 400, 1.0, 0.02
    p = Problem(D=D, P=10, N="inf", alpha=alpha, eps=eps, eta0=1.0, seed=3, test_size=5)
    b2 = 2 * p.tau * float(p.data().beta @ p.data().beta) / D
    taus = np.array([40.0, 80.0, 160.0])
    steps = (taus * alpha * D / (2 * eps)).astype(int)
    tr = population(p, int(steps[-1]), save_times=steps)
    k = np.searchsorted(tr.t, steps)
    assert np.array_equal(tr.t[k], steps)
    along = tr.alignment[k]                               # a + b
    delta = 1 - alpha * eps * along / (b2 * D)
    t = alpha * eps * (D * tr.trace_dM[k] - along) / (b2 * D)   # the bulk's trace excess
    assert np.all(np.abs(t / delta - 3) < 0.05)
    pred, pred_t, pred_loss = online_tail(taus, alpha, eps, b2, taus[0], delta[0])
    np.testing.assert_allclose(pred, delta, rtol=0.02)
    np.testing.assert_allclose(pred_t, 3 * pred)
    np.testing.assert_allclose(tr.population_loss[k] / tr.population_loss[0], 2 * delta ** 2,
                               rtol=0.03)
    assert delta[-1] < delta[0] / 5                       # the tail really was followed
