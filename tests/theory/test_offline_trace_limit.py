"""The D -> inf minimum-trace interpolant (the m -> 0 limit of the interpolant; docs
/offline_theory.md §15.7).

* The recovery threshold 4 (3 without the column) is the statistical dimension of the descent
  cone per D (+ 1): its Monte-Carlo value at D = 50-400, fitted as a + b D^(-1/3), extrapolates
  to 3 (measured a = 3.00, b = -3.0); a D^(-1/2) fit would not (a = 2.80).
* The three-scalar program's minimiser is the minimum of a brute-force grid over (h, c, t)
  (no feasible grid point has a lower trace; the returned point is feasible), with and
  without the column, in the forgetting regime (kappa <= 2) and near the threshold.
* The loss vanishes continuously at the threshold, the spike is fully forgotten (h = -1) at
  kappa <= 2, and bad input is refused in one line.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.offline.trace_limit import (_minimise, descent_dimension,
                                                        finite_d_threshold, recovery_threshold,
                                                        trace_limit, trace_limit_critical_kappa)


def test_threshold_is_the_descent_cone_dimension_as_d_grows():
    Ds = np.array([50, 100, 200, 400])
    per_d = np.array([descent_dimension(D, samples=60, seed=1) / D for D in Ds])
    assert np.all(np.diff(per_d) > 0) and per_d[-1] < 3.0
    a, b = np.polyfit(Ds ** (-1.0 / 3.0), per_d, 1)[::-1]
    assert a == pytest.approx(recovery_threshold(column=False), abs=0.06)
    assert finite_d_threshold(100, samples=60, seed=2) == pytest.approx(per_d[1] + 1, abs=0.02)


def _raw(k_eff, h, c, t):
    """(trace change, constraint slack) of the program (g optimal with the column)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(c > 0, c * c / (1.0 + h), 0.0)
    T = h + t + q
    A = T * T + 2 * (h * h + 2 * c * c + q * q)
    return T, 4 * (c + t) ** 2 - k_eff * A


@pytest.mark.parametrize("kappa, column", [(1.5, True), (2.0, True), (2.5, True), (3.0, True),
                                           (3.5, True), (3.9, True), (2.0, False)])
def test_minimiser_beats_a_brute_force_grid(kappa, column):
    s = trace_limit(kappa, column=column)
    k_eff = kappa - 1 if column else kappa
    T, slack = _raw(k_eff, s.spike_change, s.cross, s.bulk_trace)
    assert T == pytest.approx(s.trace_change, abs=1e-12) and slack > -1e-9
    h, c, t = np.meshgrid(np.linspace(-1.0, 0.2, 241), np.linspace(0, 0.4, 161),
                          np.linspace(0, 1.5, 301), indexing="ij")
    Tg, sg = _raw(k_eff, h, c, t)
    grid_best = Tg[sg >= 0].min()
    assert s.trace_change <= grid_best + 1e-12
    assert s.trace_change > grid_best - 0.01             # and the grid gets close to it
    assert grid_best < 0 or s.trace_change > -1e-3       # a descent the grid can resolve


def test_loss_vanishes_at_the_threshold_and_memorises_below_two():
    assert _minimise(3.05) == (0.0, 0.0, 0.0, 0.0)       # above the threshold: no descent
    near = [trace_limit(k).loss for k in (3.5, 3.9, 3.99)]
    assert near[0] > near[1] > near[2] > 0 and near[2] < 1e-3
    assert trace_limit(1.8).spike_change == pytest.approx(-1.0, abs=1e-6)
    assert trace_limit(3.0).spike_change > -0.6
    kc = trace_limit_critical_kappa()
    assert trace_limit(kc).loss == pytest.approx(0.5, abs=1e-6) and 2.5 < kc < 3.0


def test_bad_input_is_refused():
    with pytest.raises(ProblemError, match="kappa must be > 1"):
        trace_limit(1.0)
    with pytest.raises(ProblemError, match="kappa must be > 0"):
        trace_limit(float("nan"), column=False)
    with pytest.raises(ProblemError, match="D >= 2"):
        descent_dimension(1)
