"""The spread closure (12.1) of the fast column (``column_closure="spread"``,
docs/offline_theory.md §12.4; ``dmft_spread``).

* The row recursion solves ell^(-1) = kappa E[(1 + ell - K_nu)^(-1)] for lower-triangular
  operators: checked against dense inversions to rounding.
* Equal memorisation for every sample gives the null-space split, ell = (1 - K) / (kappa - 1).
* Spread scalar strengths put ell between no split and split (Jensen), at the root of the
  static equation.
* With no memorisation (alpha eps -> 0, the target a fixed -b2 xi^2 / 2) the closure is
  ridgeless least squares on noise: train loss (1 - 1/kappa) E[rho^2], the column's population
  power E[rho^2] / (kappa - 1).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

import lazyrich_theory as lr

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.offline import OfflineInputs, dmft_tau_curves, offline_theory
from lazyrich_theory.theory.offline.dmft import column_lag, xi_strata
from lazyrich_theory.theory.offline.dmft_spread import ell_diagonal, spread_operators

KAPPA = 5.5


def test_row_recursion_solves_the_operator_equation(members):
    rng = np.random.default_rng(1)
    KV = members(rng, 40, 25)
    ell, gbar = spread_operators(KV, KAPPA)
    eye = np.eye(25)
    dense = np.mean([np.linalg.inv(eye + ell - K) for K in KV], axis=0)
    np.testing.assert_allclose(gbar, dense, atol=1e-14)
    np.testing.assert_allclose(ell @ (KAPPA * dense), eye, atol=1e-13)
    assert np.all(np.triu(ell, 1) == 0.0)


def test_equal_memorisation_is_the_split(members):
    rng = np.random.default_rng(2)
    K = members(rng, 1, 20)[0]
    ell, _ = spread_operators(np.repeat(K[None], 3, axis=0), KAPPA)
    np.testing.assert_allclose(ell, (np.eye(20) - K) / (KAPPA - 1.0), atol=1e-14)


@pytest.mark.parametrize("kbar", [-0.5, -5.0])
def test_spread_strengths_lie_between_no_split_and_split(kbar):
    k = kbar * np.random.default_rng(3).standard_normal(2000) ** 2
    ell = ell_diagonal(k, KAPPA)
    root = brentq(lambda v: KAPPA * v * np.mean(1.0 / (1.0 + v - k)) - 1.0, 1e-12, 1e3)
    assert ell == pytest.approx(root, rel=1e-12)
    assert 1.0 / (KAPPA - 1.0) < ell < (1.0 - k.mean()) / (KAPPA - 1.0)


def test_without_memorisation_it_is_least_squares_on_noise():
    ae, ratio = 1e-8, 50.0                                # a fast column, no memorisation
    inp = OfflineInputs(kappa=KAPPA, alpha=np.sqrt(ae * ratio), eps=np.sqrt(ae / ratio),
                        eta0=1.0, b2=1.0, D=100)
    c = dmft_tau_curves(inp, 1.0, Ns=800, column_closure="spread")
    e_rho2 = 0.25 * np.mean(xi_strata(800) ** 4)          # rho = -xi^2 / 2
    late = c["tau"] > 0.5
    train = c["train_loss"][late] / e_rho2
    lin = c["linear_power"][late] / e_rho2
    # population-dynamics noise at Ns = 800: a few per cent (measured within 2.1 % on three
    # Monte Carlo seeds)
    np.testing.assert_allclose(train, 1.0 - 1.0 / KAPPA, rtol=0.03)
    np.testing.assert_allclose(lin, 1.0 / (KAPPA - 1.0), rtol=0.05)
    assert c["linear_power"][0] == 0.0                  # the column starts at zero


def test_a_slow_column_is_refused():
    inp = OfflineInputs(kappa=KAPPA, alpha=0.2, eps=0.1, eta0=1.0, b2=1.0, D=100)
    assert column_lag(KAPPA, 0.2, 0.1) == pytest.approx(0.1 * KAPPA / (0.2 * (KAPPA**0.5 - 1) ** 2))
    with pytest.raises(ProblemError, match="slowest relaxation time here is 1.52"):
        dmft_tau_curves(inp, 1.0, Ns=40, column_closure="spread",
                        column_speed="instantaneous")
    slower = OfflineInputs(kappa=KAPPA, alpha=0.05, eps=0.4, eta0=1.0, b2=1.0, D=100)
    with pytest.raises(ProblemError, match="at its finite speed"):
        dmft_tau_curves(slower, 1.0, Ns=40, column_closure="spread", column_speed="finite")


def test_no_root_is_nan_not_a_number():
    assert np.isnan(ell_diagonal(np.array([1.5]), KAPPA))      # 1 + l - k crosses zero
    assert np.isnan(ell_diagonal(np.array([np.nan, -1.0]), KAPPA))
    assert ell_diagonal(np.array([-4e13, 0.0]), KAPPA) == pytest.approx(2.0 / (KAPPA - 2.0))


@pytest.mark.parametrize("ablation", [{"linear_column": False}, {"null_space_split": False}])
def test_spread_needs_the_column_and_replaces_the_split(ablation):
    inp = OfflineInputs(kappa=KAPPA, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=100)
    with pytest.raises(ProblemError, match="replaces the null-space split"):
        dmft_tau_curves(inp, 1.0, Ns=40, column_closure="spread", **ablation)


def test_first_order_response_is_a_spread_diagnostic():
    inp = OfflineInputs(kappa=KAPPA, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=100)
    with pytest.raises(ProblemError, match="needs column_closure='spread', got 'dmft'"):
        dmft_tau_curves(inp, 1.0, Ns=40, column_closure="dmft", spread_response="first_order")
    with pytest.raises(ProblemError, match="spread_response must be one of"):
        dmft_tau_curves(inp, 1.0, Ns=40, column_closure="spread", spread_response="bulk")
    # the resolvent's correction is second order in the Onsager terms: early on, where the
    # residual has barely been memorised, the two responses agree closely
    a, b = (dmft_tau_curves(inp, 0.5, Ns=100, column_closure="spread", spread_response=r)
            for r in ("first_order", "resolved"))
    assert np.max(np.abs(a["population_loss"] - b["population_loss"])) < 1e-3
    assert np.max(np.abs(a["population_loss"] - b["population_loss"])) > 0.0
    # the default is the resolved response; the other closures ignore it
    c = dmft_tau_curves(inp, 0.5, Ns=100, column_closure="spread")
    np.testing.assert_array_equal(c["population_loss"], b["population_loss"])
    d = dmft_tau_curves(inp, 0.5, Ns=100, column_closure="dmft", spread_response="resolved")
    e = dmft_tau_curves(inp, 0.5, Ns=100, column_closure="dmft")
    np.testing.assert_array_equal(d["population_loss"], e["population_loss"])
    # the default closure ("auto") is spread here, where the column is fast
    f = dmft_tau_curves(inp, 0.5, Ns=100)
    np.testing.assert_array_equal(f["population_loss"], c["population_loss"])


def test_the_summary_records_the_response():
    import lazyrich_theory as lr
    from lazyrich_theory.theory.offline import offline_summary, offline_theory

    p = lr.Problem(D=30, P=90, N=float("inf"), alpha=1.0, eps=0.02, seed=0)
    plain, first = (offline_summary(offline_theory(p, 3000, method="dmft", Ns=40,
                                                   column_closure="spread", **kw))
                    for kw in ({}, {"spread_response": "first_order"}))
    assert plain["spread_response"] == "resolved" and first["spread_response"] == "first_order"
    assert "first order" in first["regime"] and "first order" not in plain["regime"]
    dmft = offline_summary(offline_theory(p, 3000, method="dmft", Ns=40, column_closure="dmft"))
    assert "spread_response" not in dmft


def test_unknown_closure_is_refused():
    inp = OfflineInputs(kappa=KAPPA, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=100)
    with pytest.raises(ProblemError, match="column_closure must be one of"):
        dmft_tau_curves(inp, 1.0, Ns=40, column_closure="spreads")


def test_critical_kappa_takes_the_spread_response():
    """critical_kappa(..., spread_response=) is checked before the search runs, and its
    definition names the first-order response (the resolved one is the default)."""
    from lazyrich_theory.theory.offline import critical_kappa

    inp = OfflineInputs(kappa=KAPPA, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=40)
    for bad, why in (({"spread_response": "first_order"}, "needs column_closure='spread'"),
                     ({"column_closure": "spread", "spread_response": "bulk"},
                      "spread_response must be one of")):
        with pytest.raises(ProblemError, match=why):
            critical_kappa(inp, "dmft", **bad)
    first, default = (critical_kappa(inp, "dmft", Ns=40, tau_h=2.0, kappa_range=(4.0, 6.0),
                                     column_closure="spread", **kw)
                      for kw in ({"spread_response": "first_order"}, {}))
    assert "first-order memorisation" in first.definition
    assert "first-order" not in default.definition
    assert "bulk memorisation resolved" in default.definition


def test_spike_resolvent_rows_invert_the_onsager_loop():
    """spike_resolvent_rows builds (1 + A)^(-1) row by row, A(n, s) = W_s R_m(n, s) r(s) /
    kappa (the current point with Wc): checked against a dense inverse."""
    from lazyrich_theory.theory.offline.dmft_spread import spike_resolvent_rows

    rng = np.random.default_rng(3)
    Ns, T, kappa = 3, 7, 2.5
    Rm = np.tril(rng.normal(size=(T, T)))
    R, W = rng.normal(size=(Ns, T)), rng.uniform(0.1, 0.3, T)
    Wc = rng.uniform(0.05, 0.15, T)
    LS = np.zeros((Ns, T * (T + 1) // 2))
    LS[:, 0] = 1.0
    for n in range(1, T):
        spike_resolvent_rows(n, Rm[n], R, LS, W, Wc[n], kappa, -0.5)
    for i in range(Ns):
        A = np.zeros((T, T))
        for n in range(1, T):
            A[n, :n] = W[:n] * Rm[n, :n] * R[i, :n] / kappa
            A[n, n] = max(Wc[n] * R[i, n] / kappa, -0.5)
        L = np.linalg.inv(np.eye(T) + A)
        packed = np.concatenate([L[n, :n + 1] for n in range(T)])
        np.testing.assert_allclose(LS[i], packed, rtol=1e-12, atol=1e-14)


def test_full_response_resolves_the_spike_too():
    """spread_response="full" (the spike's memorisation resolved as well, a diagnostic) moves
    the curve, a little (docs §12.4: < 0.01 in the loss at tau = 40 at D = 400)."""
    inp = OfflineInputs(kappa=3.0, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=100)
    a, b = (dmft_tau_curves(inp, 3.0, Ns=100, column_closure="spread", spread_response=r)
            for r in ("resolved", "full"))
    diff = np.abs(a["population_loss"] - b["population_loss"])
    assert 0.0 < diff.max() < 0.05 * a["population_loss"][0]


@pytest.mark.parametrize("info, predicted", [
    ({"kappa": 5.5, "D": 200, "column_closure": "spread", "spread_response": "resolved"}, True),
    ({"kappa": 11.0, "D": 800, "column_closure": "spread", "spread_response": "resolved"}, True),
    ({"kappa": 5.5, "D": 100, "column_closure": "spread", "spread_response": "resolved"}, False),
    ({"kappa": 3.0, "D": 400, "column_closure": "spread", "spread_response": "resolved"}, False),
    ({"kappa": 5.5, "D": 400, "column_closure": "spread", "spread_response": "first_order"},
     False),
    ({"kappa": 11.0, "D": 400, "column_closure": "least_squares"}, False),
    ({"kappa": 22.0, "D": 100, "column_closure": "spread", "spread_response": "resolved"}, True),
])
def test_the_spread_closure_predicts_the_delay_where_measured(info, predicted):
    """The delay is a prediction of the resolved spread closure from kappa = 5.5 and D = 200
    on at alpha / eps = 50 (measured within -7..+13 % there, docs §12.4), of every DMFT from
    kappa = 20 on."""
    from lazyrich_theory.theory.offline.summary import _delay_reason

    why = _delay_reason({"offline_method": "dmft", "alpha": 1.0, "eps": 0.02, **info})
    assert (why is None) == predicted
    if not predicted:        # it names the condition that fails
        failing = (f"D = {info['D']:g} < 200" if info["kappa"] >= 5.5 and info["D"] < 200 else
                   f"kappa = {info['kappa']:.3g}")
        assert failing in why and "estimate" in why, why


def test_auto_is_spread_where_it_applies():
    """column_closure="auto" (the default) is the spread closure where the linear column is
    fast and the default channels run, else the column as derived; other closures are
    themselves; an unknown one is refused in one line."""
    from lazyrich_theory.theory.offline.dmft import (SPREAD_MAX_LAG, SPREAD_MAX_LAG_FINITE,
                                                     resolve_column_closure)

    assert column_lag(1.5, 1.0, 0.02) < SPREAD_MAX_LAG < column_lag(1.3, 1.0, 0.02)
    assert column_lag(1.3, 1.0, 0.02) < SPREAD_MAX_LAG_FINITE < column_lag(1.2, 1.0, 0.02)
    assert resolve_column_closure("auto", 1.5, 1.0, 0.02) == "spread"
    # the default column speed is finite: spread takes a slower column than instantaneous
    assert resolve_column_closure("auto", 1.3, 1.0, 0.02) == "spread"
    assert resolve_column_closure("auto", 1.3, 1.0, 0.02, column_speed="instantaneous") == "dmft"
    assert resolve_column_closure("auto", 1.2, 1.0, 0.02) == "dmft"
    assert resolve_column_closure("auto", 1.5, 1.0, 0.02, channels=False) == "dmft"
    for closure in ("dmft", "least_squares", "spread"):
        assert resolve_column_closure(closure, 1.3, 1.0, 0.02) == closure
    with pytest.raises(ProblemError, match="column_closure must be one of auto, dmft"):
        resolve_column_closure("Auto", 3.0, 1.0, 0.02)


def test_offline_theory_records_the_closure_that_ran():
    """offline_theory's default closure is recorded as the one that ran; where the column is
    slow it is the DMFT as derived, with the reason in info, summary.json and the regime note,
    and the curve equals the one asked for explicitly."""
    import lazyrich_theory as lr
    from lazyrich_theory.theory.offline import offline_summary, offline_theory

    slow = lr.Problem(D=30, P=90, N=float("inf"), alpha=0.2, eps=0.1, seed=0)
    auto, asked = (offline_theory(slow, 300, method="dmft", Ns=40, **kw)
                   for kw in ({}, {"column_closure": "dmft"}))
    assert auto.info["column_closure"] == asked.info["column_closure"] == "dmft"
    np.testing.assert_array_equal(auto.population_loss, asked.population_loss)
    assert "2.8 > 2.5 in tau" in auto.info["column_closure_reason"]
    assert asked.info["column_closure_reason"] == auto.info["column_closure_reason"]
    assert (auto.info["requested_column_closure"], asked.info["requested_column_closure"]) == (
        "auto", "dmft")
    s, s_asked = offline_summary(auto), offline_summary(asked)
    assert s["column_closure_reason"] == auto.info["column_closure_reason"]
    assert "auto's choice here" in s["regime"] and "auto's choice" not in s_asked["regime"]
    for note in (s["regime"], s_asked["regime"]):     # no error was measured at a slow column
        assert note.startswith("Outside the measured regime: the linear column is slow here")
    fast = offline_theory(slow.replace(alpha=1.0, eps=0.02), 3000, method="dmft", Ns=40)
    assert fast.info["column_closure"] == "spread" and "column_closure_reason" not in fast.info
    fast_asked = offline_theory(slow.replace(alpha=1.0, eps=0.02), 3000, method="dmft", Ns=40,
                                column_closure="dmft")
    assert "column_closure_reason" not in fast_asked.info       # spread would run here
    assert "Outside" not in offline_summary(fast_asked)["regime"]
    with pytest.raises(ProblemError, match="spectral closure .* has none"):
        offline_theory(slow.replace(P=200), 300, method="spectral", column_closure="dmft")


def test_a_divergence_in_the_critical_search_names_its_kappa():
    """A DMFT blow-up inside critical_kappa's search says at which kappa (here the spread
    closure with its instantaneous column, whose population field lags a step, at kappa = 1.5
    with far too few samples; the default, (12.2) with the joint field, holds there)."""
    from lazyrich_theory.errors import DivergenceError
    from lazyrich_theory.theory.offline import critical_kappa

    inp = OfflineInputs(kappa=5.0, alpha=1.0, eps=0.02, eta0=1.0, b2=1.142, D=30)
    with pytest.raises(DivergenceError, match=r"critical-kappa search at kappa = 1\.5 "
                                              r"\(Monte Carlo seed 0\): the DMFT's causal"):
        critical_kappa(inp, "dmft", Ns=40, seed=0, column_closure="spread",
                       column_speed="instantaneous")


def test_critical_kappa_names_its_closure():
    """The DMFT's critical kappa says which closure ran: as derived when asked for, and for
    the default auto which closure ran where the search ended."""
    from lazyrich_theory.theory.offline import critical_kappa

    inp = OfflineInputs(kappa=5.0, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=50)
    derived = critical_kappa(inp, "dmft", Ns=120, column_closure="dmft", tau_h=10.0)
    assert "(its linear column as derived)" in derived.definition
    auto = critical_kappa(inp, "dmft", Ns=120, tau_h=10.0)
    assert auto.definition.endswith("at the crossing the closure that ran is spread")


def test_the_spread_closure_sees_alpha_and_eps_only_through_alpha_eps():
    """At fixed alpha eps the spread closure's curve on the DMFT clock with an instantaneous
    column, (12.1), does not depend on alpha / eps: the column's relaxation time
    eps kappa / (alpha (sqrt(kappa) - 1)^2) is the only place alpha / eps enters (docs §12.4,
    "kappa = 1.5: the column's lag", where the exact flow does depend on it).  The column as
    derived keeps that time, and so does the finite-speed column, (12.2): their curves
    differ."""
    finals = {}
    for closure, speed in (("spread", "instantaneous"), ("dmft", None), ("spread", "finite")):
        for a, e in ((1.0, 0.02), (2.0, 0.01)):
            p = lr.Problem(D=30, P=45, N="inf", alpha=a, eps=e, seed=0)
            steps = int(round(20 * a / e)) * 30 // 4            # tau = 10 at both
            kw = {} if speed is None else {"column_speed": speed}
            th = offline_theory(p, steps, method="dmft", Ns=40, column_closure=closure, **kw)
            finals[closure, speed, a] = th.population_loss[-1] / th.population_loss[0]
    inst = "instantaneous"
    assert finals["spread", inst, 1.0] == pytest.approx(finals["spread", inst, 2.0], rel=1e-12,
                                                        abs=0)
    assert abs(finals["dmft", None, 1.0] - finals["dmft", None, 2.0]) > 1e-3
    # the finite-speed column lags more at alpha / eps = 50: a lower loss at kappa = 1.5
    assert finals["spread", "finite", 1.0] < finals["spread", "finite", 2.0] - 2e-4
