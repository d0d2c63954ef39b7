"""The lazy plateau's closed form (``plateau_losses``, docs/offline_theory.md §7.1).

* Against Monte Carlo of the least-squares fit it describes: over 300 training sets (D = 30,
  kappa = 3, the package's own data, so y depends on X through the teacher's column) the mean
  residual and linear power of the fit are within 3 standard errors of 1 - D/P and
  D / (P - D - 1) (relative to the initial loss; measured 0.641 ± 0.014 vs 0.667 and
  0.510 ± 0.012 vs 0.508).
* Against the exact flow: the seed-mean population loss at the lazy peak (D = 30, 16 seeds)
  is within 3 standard errors of the closed form at kappa = 3 (measured 1.452 ± 0.047 vs
  1.508) and the closed form of kappa = 5.5 (1.224) is far from the kappa = 3 runs.
* Where the linear fit is too slow to finish before the rich transition (alpha / eps = 1) there
  is no plateau: ``plateau_reason`` says so and the exact peak is far below the closed form.
* The summary keys of ``offline_summary``: the closed form where the run has a plateau, null
  with a reason elsewhere (kappa = 1.5 at alpha / eps = 50: 8 e-folds) and for a finite-rank
  init.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lazyrich_theory as lr
from lazyrich_theory.theory.offline import (
    offline_summary,
    offline_theory,
    plateau_losses,
    plateau_reason,
)


def _problem(seed, kappa=3.0, D=30, alpha=1.0, eps=0.02):
    return lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=alpha, eps=eps,
                      seed=seed, test_size=10)


def _peak(p):
    """The exact flow's largest population loss / initial (the lazy peak) up to tau = 3."""
    T = int(3.0 * p.alpha * p.D / (2 * p.eps))
    st = np.unique(np.concatenate([[0], np.geomspace(1, T, 150).astype(int)]))
    tr = lr.solve(p, T, method="flow", save_times=st)
    return float(tr.population_loss.max() / tr.population_loss[0])


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
    m, se = _mean_se([_peak(_problem(seed)) for seed in range(16)])
    assert plateau_reason(3.0, 30, 1.0, 0.02, 1.0) is None
    assert abs(m - plateau_losses(3.0, 30).test) < 3 * se, (m, se)
    assert abs(m - plateau_losses(5.5, 30).test) > 3 * se


def test_no_plateau_when_the_linear_fit_is_slow():
    """alpha / eps = 1 at kappa = 5.5: the rich transition comes before the linear fit (1.1
    e-folds); the exact peak stays near the initial loss (measured at D = 100: 1.013 ± 0.005
    against the closed form's 1.223), and plateau_reason says so."""
    why = plateau_reason(5.5, 30, 0.1414, 0.1414, 1.0)
    assert why is not None and "e-folds" in why
    m, se = _mean_se([_peak(_problem(seed, 5.5, alpha=0.1414, eps=0.1414)) for seed in range(8)])
    assert plateau_losses(5.5, 30).test - m > 0.1, m


def test_summary_keys_and_their_nulls():
    s = offline_summary(offline_theory(_problem(0, kappa=3.0), 200, method="spectral"))
    cf = plateau_losses(3.0, 30)
    assert (s["predicted_plateau_train_loss"], s["predicted_plateau_test_loss"],
            s["predicted_plateau_gap"]) == (cf.train, cf.test, cf.gap)
    assert "least squares" in s["predicted_plateau_definition"]
    low = offline_summary(offline_theory(_problem(0, kappa=1.5), 200, method="spectral"))
    assert low["predicted_plateau_gap"] is None
    assert "no plateau" in low["reasons"]["predicted_plateau_gap"]
    with pytest.raises(ValueError, match="P > D"):
        plateau_losses(1.0, 30)
    with pytest.raises(ValueError, match="integer D"):
        plateau_losses(3.0, 30.5)
