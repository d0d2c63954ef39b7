"""The spread closure with the linear column at its finite speed, (12.2) of
docs/offline_theory.md §12.4 (``column_speed="finite"``; ``dmft_spread``).

* The row recursion solves ell (kappa Gbar + Lam) = 1, Lam = (1 / a) d/dtau as a backward
  difference, with u(0) = 0: checked against dense inversions to rounding.
* Without memorisation (K = 0) the closure's filter (1 + ell)^(-1) is the exact DMFT of
  least squares with a moving target (the psi filter of the Marchenko-Pastur law, §8.5), an
  independent formula: they agree to first order in the grid step, while the instantaneous
  column misses the lag by ~0.09.
* The option is checked in one place and recorded ("finite" is the default).
"""

from __future__ import annotations

import numpy as np
import pytest

import lazyrich_theory as lr

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.theory.offline import (OfflineInputs, dmft_tau_curves, offline_summary,
                                           offline_theory)
from lazyrich_theory.theory.offline.dmft import _losses, column_lag, linear_channel
from lazyrich_theory.theory.offline.dmft_kernels import K_NAMES, V1_NAMES
from lazyrich_theory.theory.offline.dmft_spread import relaxation_terms, spread_operators

KAPPA, ALPHA, EPS = 1.5, 1.0, 0.02          # the column's slowest relaxation time 0.59


def test_row_recursion_solves_the_finite_speed_equation(members):
    rng = np.random.default_rng(4)
    T = 25
    tau = np.cumsum(np.r_[0.0, rng.uniform(0.01, 0.1, T - 1)])      # a non-uniform grid
    KV = members(rng, 40, T)
    lam = relaxation_terms(tau, EPS * KAPPA / ALPHA)
    ell, gbar = spread_operators(KV, KAPPA, lam)
    eye = np.eye(T)
    dense = np.mean([np.linalg.inv(eye + ell - K) for K in KV], axis=0)
    np.testing.assert_allclose(gbar, dense, atol=1e-14)
    Lam = np.diag(lam[1:]) - np.diag(lam[2:], -1)   # backward difference on tau_1 ...
    lhs = ell[1:, 1:] @ (KAPPA * dense[1:, 1:] + Lam)
    np.testing.assert_allclose(lhs, eye[1:, 1:], atol=1e-12)
    assert np.all(ell[0] == 0.0) and np.all(ell[:, 0] == 0.0)      # u(0) = 0
    assert np.all(np.triu(ell, 1) == 0.0)


def _filter_error(tau, speed):
    """Max |(1 + ell)^(-1) f - A f| over tau >= 1 for a smooth target f, A the exact linear
    column's psi filter."""
    T = tau.size
    lam = relaxation_terms(tau, EPS * KAPPA / ALPHA if speed == "finite" else 0.0)
    ell, _ = spread_operators(np.zeros((2, T, T)), KAPPA, lam)
    f = 1.0 + np.sin(2.0 * tau) + 0.5 * tau
    r = np.linalg.solve(np.eye(T) + ell, f)
    ps, Wpsi, _ = linear_channel(KAPPA, ALPHA, EPS, tau)
    exact = ps * f[0] + np.array([Wpsi[n, :n] @ np.diff(f)[:n] for n in range(T)])
    return np.abs(r - exact)[tau >= 1.0].max()


def test_without_memorisation_the_finite_speed_column_is_the_exact_linear_filter():
    coarse = _filter_error(np.linspace(0.0, 6.0, 301), "finite")
    fine = _filter_error(np.linspace(0.0, 6.0, 601), "finite")
    assert fine < 1e-3                                          # measured 6.5e-4
    assert 1.7 < coarse / fine < 2.3                            # first order in the step
    assert _filter_error(np.linspace(0.0, 6.0, 301), "instantaneous") > 0.05   # the lag


def _inp(ratio, D=40):
    ae = ALPHA * EPS
    return OfflineInputs(kappa=KAPPA, alpha=np.sqrt(ae * ratio), eps=np.sqrt(ae / ratio),
                         eta0=1.0, b2=1.0, D=D)


def test_the_lag_moves_the_loss_less_as_the_column_gets_faster():
    final = {}
    for ratio in (50.0, 800.0):
        for speed in ("instantaneous", "finite"):
            c = dmft_tau_curves(_inp(ratio), 8.0, Ns=200, column_closure="spread",
                                column_speed=speed, noise_current="joint")
            final[ratio, speed] = c["population_loss"][-1]
    # both with the field at the current point solved jointly: the lagged field's own
    # first-order error (~0.02-0.04 here) would otherwise mix with the lag's effect
    shift = {r: final[r, "finite"] - final[r, "instantaneous"] for r in (50.0, 800.0)}
    # the instantaneous closure does not see alpha / eps at fixed alpha eps (tested in
    # test_offline_dmft_spread); the finite-speed one moves less where the lag is 16x shorter
    assert final[50.0, "instantaneous"] == pytest.approx(final[800.0, "instantaneous"],
                                                         rel=1e-12)
    assert abs(shift[800.0]) < 0.25 * abs(shift[50.0])


def test_finite_speed_runs_where_the_instantaneous_column_is_refused():
    slow = _inp(12.5)                                  # slowest relaxation time 2.38
    assert 1.0 < column_lag(KAPPA, slow.alpha, slow.eps) < 4.0
    with pytest.raises(ProblemError, match="as instantaneous"):
        dmft_tau_curves(slow, 1.0, Ns=40, column_closure="spread",
                        column_speed="instantaneous")
    c = dmft_tau_curves(slow, 1.0, Ns=40, column_closure="spread", column_speed="finite")
    assert np.all(np.isfinite(c["population_loss"]))
    slower = _inp(5.0)                                 # 5.95: refused even at finite speed
    with pytest.raises(ProblemError, match="at its finite speed"):
        dmft_tau_curves(slower, 1.0, Ns=40, column_closure="spread", column_speed="finite")


@pytest.mark.parametrize("options, match", [
    ({"column_speed": "slow"}, "column_speed must be one of"),
    ({"column_speed": "finite", "column_closure": "dmft"}, "needs column_closure='spread'"),
])
def test_bad_column_speed_is_refused_in_one_line(options, match):
    with pytest.raises(ProblemError, match=match) as err:
        dmft_tau_curves(_inp(50.0), 1.0, Ns=40, **options)
    assert "\n" not in str(err.value)


def test_offline_theory_records_the_column_speed():
    p = lr.Problem(D=40, P=60, N="inf", alpha=ALPHA, eps=EPS, seed=0)
    tr = offline_theory(p, 2000, method="dmft", Ns=40, column_closure="spread")
    assert tr.info["column_speed"] == "finite" and tr.info["column_closure"] == "spread"
    summary = offline_summary(tr)                                          # the default
    assert summary["column_speed"] == "finite" and "(12.2) (the default" in summary["regime"]
    tr = offline_theory(p, 2000, method="dmft", Ns=40, column_closure="spread",
                        column_speed="instantaneous")
    assert tr.info["column_speed"] == "instantaneous"
    summary = offline_summary(tr)
    assert summary["column_speed"] == "instantaneous" and "(12.1)" in summary["regime"]
    slow = lr.Problem(D=40, P=60, N="inf", alpha=0.5, eps=0.04, seed=0)
    with pytest.raises(ProblemError, match="as instantaneous"):
        offline_theory(slow, 2000, method="dmft", Ns=40, column_closure="spread",
                       column_speed="instantaneous")
    tr = offline_theory(slow, 2000, method="dmft", Ns=40, column_closure="spread",
                        column_speed="finite")
    assert tr.info["column_speed"] == "finite"
    summary = offline_summary(tr)                     # lag 2.38 > 1: said where it is read
    assert "linear column is slow here" in summary["regime"]
    assert "lag 2.38" in summary["outside_measured_regime"]
    tr = offline_theory(slow, 2000, method="dmft", Ns=40)       # auto: spread up to lag 2.5
    assert tr.info["column_closure"] == "spread" and tr.info["column_speed"] == "finite"
    tr = offline_theory(slow.replace(alpha=0.25, eps=0.08), 2000, method="dmft", Ns=40)
    assert tr.info["column_closure"] == "dmft" and "column_speed" not in tr.info   # lag 9.5


def test_a_late_blow_up_is_reported_at_its_own_time():
    """The spread closure's column power is summed row by row: a NaN at the last time does
    not reach the earlier rows (an einsum over the whole operator made 0 * NaN of them and
    reported a blow-up at the first step)."""
    T = 12
    tau = np.linspace(0.0, 1.1, T)
    K, V1 = np.zeros((len(K_NAMES), T, T)), np.zeros((len(V1_NAMES), T))
    k = {name: i for i, name in enumerate(K_NAMES)}
    K[k["L"]], K[k["Crr"]] = 0.5 * np.eye(T), np.eye(T)
    K[k["Crr"]][T - 1, T - 1] = np.nan
    with pytest.raises(DivergenceError, match="unstable at tau = 1.1 "):
        _losses(_inp(50.0), tau, K, V1, spread=True)
