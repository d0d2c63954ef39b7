"""The lazy plateau's closed form (``plateau_losses``, docs/offline_theory.md §7.1).

* Against Monte Carlo of the least-squares fit it describes: over 300 training sets (D = 30,
  kappa = 3, the package's own data, so y depends on X through the teacher's column) the mean
  residual and linear power of the fit are within 3 standard errors of 1 - D/P and
  D / (P - D - 1) (relative to the initial loss; measured 0.641 ± 0.014 vs 0.667 and
  0.510 ± 0.012 vs 0.508).
* Against the exact flow: the seed-mean population loss at the lazy peak (D = 30, 16 seeds)
  is within 3 standard errors of the closed form at kappa = 3 (measured 1.452 ± 0.047 vs
  1.508) and the closed form of kappa = 5.5 (1.224) is far from the kappa = 3 runs.
* The summary keys of ``offline_summary``: the closed form at kappa >= 2, null with a reason
  below and for a finite-rank init.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lazyrich_theory as lr
from lazyrich_theory.theory.offline import (
    KAPPA_PLATEAU,
    offline_summary,
    offline_theory,
    plateau_losses,
)


def _problem(seed, kappa=3.0, D=30):
    return lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=1.0, eps=0.02,
                      seed=seed, test_size=10)


def _mean_se(v):
    v = np.asarray(v)
    return v.mean(), v.std(ddof=1) / math.sqrt(v.size)


def test_closed_form_is_the_least_squares_fit_in_expectation():
    D, P = 30, 90
    train, lin = [], []
    for seed in range(300):
        p = _problem(seed)
        d = p.data()
        X, y = np.asarray(d.X), np.asarray(d.y)
        L0 = 0.75 * (2 * p.tau * float(d.beta @ d.beta) / D) ** 2
        u = np.linalg.lstsq(X, y, rcond=None)[0]
        train.append(float(np.sum((y - X @ u) ** 2)) / P / L0)
        lin.append(float(u @ u) / D / L0)
    cf = plateau_losses(3.0, D)
    for values, want in ((train, cf.train), (lin, cf.test - 1.0)):
        m, se = _mean_se(values)
        assert abs(m - want) < 3 * se, (m, se, want)
    assert cf.gap == pytest.approx(cf.test - cf.train)
    assert cf.train == pytest.approx(1 - D / P) and cf.test == pytest.approx(1 + D / (P - D - 1))


def test_exact_lazy_peak_is_the_closed_form():
    peaks = []
    for seed in range(16):
        p = _problem(seed)
        T = int(3.0 * p.alpha * p.D / (2 * p.eps))
        st = np.unique(np.concatenate([[0], np.geomspace(1, T, 150).astype(int)]))
        tr = lr.solve(p, T, method="flow", save_times=st)
        peaks.append(float(tr.population_loss.max() / tr.population_loss[0]))
    m, se = _mean_se(peaks)
    assert abs(m - plateau_losses(3.0, 30).test) < 3 * se, (m, se)
    assert abs(m - plateau_losses(5.5, 30).test) > 3 * se


def test_summary_keys_and_their_nulls():
    s = offline_summary(offline_theory(_problem(0, kappa=3.0), 200, method="spectral"))
    cf = plateau_losses(3.0, 30)
    assert (s["predicted_plateau_train_loss"], s["predicted_plateau_test_loss"],
            s["predicted_plateau_gap"]) == (cf.train, cf.test, cf.gap)
    assert "least squares" in s["predicted_plateau_definition"]
    low = offline_summary(offline_theory(_problem(0, kappa=1.5), 200, method="spectral"))
    assert low["predicted_plateau_gap"] is None and KAPPA_PLATEAU == 2.0
    assert "no plateau" in low["reasons"]["predicted_plateau_gap"]
    with pytest.raises(ValueError, match="P > D"):
        plateau_losses(1.0, 30)
