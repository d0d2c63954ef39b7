"""Time-scale predictions and grokking metrics."""
import math

import numpy as np

from lazyrich_theory import Problem
from lazyrich_theory.theory.timescales import (
    first_time_below,
    grokking_metrics,
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
