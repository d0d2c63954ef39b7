"""Method "gd-fast" (core/stride*.py, docs/stride.md): GD-accurate strides.

The strides reproduce exact GD (``method="gd"``, itself equal to the network to round-off) to
<= 1e-6 relative on the train, test and population losses — measured 1e-9 .. 1e-7 — on small
problems: near the stability bound, with weight decay and label noise, N < D, N > D, N = inf,
convention B, a non-paper target; what they cannot do (momentum, SGD, short runs) is exact GD,
bit for bit; ``method="auto"`` (the default) picks between them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lazyrich_theory import DivergenceError, Problem, ProblemError, load, solve
from lazyrich_theory.core.kernels import stable_eta0_bound
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.stride import MIN_STEPS, choose_method, run_stride
from lazyrich_theory.core.stride_ops import StrideNode, power_moments
from lazyrich_theory.core.stride_solver import StrideOptions, StrideSolver
from lazyrich_theory.results.stats import SolverStats, StrideStats
from lazyrich_theory.spec.schedule import save_times

LOSSES = ("train_loss", "test_loss", "population_loss")
#: the accuracy asked of gd-fast against exact GD (relative, losses above the floor below)
RTOL = 1e-6
#: losses below this fraction of their initial value are compared absolutely (the strides
#: resolve round-off-level losses absolutely, stride_solver.ROUNDOFF)
FLOOR = 1e-9
STEPS = 6000

BASE = dict(D=20, P=110, N=50, alpha=1.0, eps=0.02, eta0=1.0, seed=0, test_size=300)


def _bound(p: Problem) -> float:
    rs = ReducedSystem.build(p)
    return stable_eta0_bound(rs.X, rs.F0, rs.z, p.eps)


def _deviation(a, b) -> float:
    """Largest relative deviation of a from b over the losses at t >= 10 (floored)."""
    worst = 0.0
    m = b.t >= 10
    for col in LOSSES:
        x, y = np.asarray(a[col])[m], np.asarray(b[col])[m]
        scale = np.maximum(np.abs(y), FLOOR * abs(float(b[col][0])))
        worst = max(worst, float(np.max(np.abs(x - y) / scale)))
    return worst


def _at_bound(frac: float, **kw) -> Problem:
    p = Problem(**{**BASE, **kw})
    return p.replace(eta0=frac * _bound(p))


CASES = {
    "N>D": lambda: Problem(**BASE),
    "0.9 bound": lambda: _at_bound(0.9),
    "0.98 bound": lambda: _at_bound(0.98),
    "0.995 bound, two-step": lambda: _at_bound(0.995),
    "weight decay": lambda: Problem(**{**BASE, "weight_decay": 1e-3}),
    "label noise": lambda: Problem(**{**BASE, "noise": 0.3}),
    "N<D": lambda: Problem(**{**BASE, "N": 5, "eps": 0.1}),
    "N=inf": lambda: Problem(**{**BASE, "D": 10, "P": 55, "N": math.inf}),
    "convention B": lambda: Problem(**{**BASE, "convention": "B"}),
    "uncentered N=2": lambda: Problem(D=20, P=60, N=2, alpha=1.0, eps=0.25, eta0=0.5,
                                      centered=False, seed=1, test_size=200),
    "rich eps=0.25": lambda: Problem(**{**BASE, "eps": 0.25}),
    "target hermite": lambda: Problem(**{**BASE, "target": "hermite:coef=0.5/0/0.5/0.2"}),
    "D=40": lambda: Problem(D=40, P=220, N=200, alpha=1.0, eps=0.05, eta0=1.0, seed=2,
                            test_size=300),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gd_fast_matches_exact_gd(case):
    p = CASES[case]()
    gd = solve(p, STEPS, method="gd")
    fast = solve(p, STEPS, method="gd-fast")
    assert fast.method == "gd-fast" and np.array_equal(fast.t, gd.t)
    err = _deviation(fast, gd)
    st = fast.stats.stride
    assert err <= RTOL, (case, err, st)
    assert st.n_rhs < 0.8 * STEPS, st                # and it saves work
    # the final state too
    np.testing.assert_allclose(fast.final_state["M"], gd.final_state["M"], rtol=0,
                               atol=1e-6 * np.abs(gd.final_state["M"]).max())


def test_two_step_mode_runs_near_the_bound():
    fast = solve(_at_bound(0.9), STEPS, method="gd-fast")
    assert fast.stats.stride.two_step_from is not None   # mu_min < -1/2: GD^2 strides
    slow = solve(Problem(**BASE), STEPS, method="gd-fast")
    assert slow.stats.stride.two_step_from is None


def test_long_figure1_like_run_at_reduced_size():
    """Figure 1's setup at D = 40 (P = 5.5 D, N = 5 D, eps scaled up so the rich transition
    falls inside the run): lazy fit, plateau, rich transition over 40 000 steps."""
    p = Problem(D=40, P=220, N=200, alpha=1.0, eps=0.05, eta0=1.0, seed=0, test_size=500)
    steps = 40_000
    gd = solve(p, steps, method="gd")
    fast = solve(p, steps)                             # auto -> gd-fast
    assert fast.method == "gd-fast"
    assert _deviation(fast, gd) <= RTOL
    assert gd.test_loss[-1] < 0.5 * gd.test_loss.max()   # it did learn the features
    assert fast.stats.stride.n_rhs < 0.1 * steps


def test_fallbacks_are_exact_gd_bit_for_bit():
    cases = {"momentum": (Problem(**{**BASE, "momentum": 0.5}), STEPS),
             "minibatch SGD": (Problem(**{**BASE, "batch_size": 20}), 3500),
             "online SGD": (Problem(**{**BASE, "online": True, "batch_size": 20}), 3500),
             "steps <": (Problem(**BASE), MIN_STEPS - 1)}
    for name, (p, steps) in cases.items():
        gd = solve(p, steps, method="gd")
        for method in ("gd-fast", "auto"):
            tr = solve(p, steps, method=method)
            assert tr.method == "gd", (name, method)
            assert tr.info["method_requested"] == method
            assert name in tr.info["method_reason"], tr.info["method_reason"]
            assert "stride" not in tr.info
            for col in ("t",) + gd.columns:
                np.testing.assert_array_equal(tr[col], gd[col])
            np.testing.assert_array_equal(tr.final_state["F"], gd.final_state["F"])


def test_auto_chooses():
    p = Problem(**BASE)
    system = ReducedSystem.build(p)
    assert choose_method(system, STEPS, "auto")[0] == "gd-fast"
    assert choose_method(system, MIN_STEPS - 1, "auto")[0] == "gd"
    assert choose_method(system, STEPS, "gd") == ("gd", None)
    assert choose_method(system, STEPS, "flow") == ("flow", None)
    edge = ReducedSystem.build(_at_bound(0.995))
    method, why = choose_method(edge, STEPS, "auto")
    assert method == "gd" and "edge of stability" in why
    assert choose_method(edge, STEPS, "gd-fast")[0] == "gd-fast"   # asked for: runs strides
    tr = solve(p, STEPS)                                            # the default is auto
    assert tr.method == "gd-fast" and tr.info["method_requested"] == "auto"
    assert solve(p, 100).method == "gd"


def test_stats_are_typed_and_survive_save_and_load(tmp_path):
    tr = solve(Problem(**BASE), 4000, method="gd-fast", rtol=1e-6)
    st = tr.stats
    assert isinstance(st.stride, StrideStats) and st.stride.tol == 1e-6
    assert set(tr.info["stride"]) >= {"n_rhs", "n_strides", "n_refresh", "gd_fallback_steps",
                                      "tol"}
    assert st.stride.n_strides > 0 and st.stride.gd_fallback_steps >= 64 and st.n_rhs is None
    assert SolverStats.from_info(st.to_info()) == st
    tr.save(tmp_path, plot=False)
    back = load(tmp_path)
    assert back.method == "gd-fast" and back.stats == st
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.stride.n_rhs = 0


def test_looser_tolerance_costs_less_and_stays_within_it():
    p = Problem(**BASE)
    gd = solve(p, STEPS, method="gd")
    tight = solve(p, STEPS, method="gd-fast")
    loose = solve(p, STEPS, method="gd-fast", rtol=1e-5)
    assert loose.stats.stride.n_rhs < tight.stats.stride.n_rhs
    assert _deviation(loose, gd) <= 1e-4


def test_early_stop_matches_exact_gd():
    p = Problem(D=6, P=80, N=30, alpha=1.0, eps=1.0, eta0=0.5, seed=1, test_size=60)
    gd = solve(p, 8000, method="gd", stop=1e-3)
    fast = solve(p, 8000, method="gd-fast", stop=1e-3)
    assert gd.info["stopped_at"] is not None and fast.method == "gd-fast"
    assert fast.info["stopped_at"] == gd.info["stopped_at"]
    assert len(fast.t) == len(gd.t) and _deviation(fast, gd) <= RTOL


def test_divergence_is_reported_at_the_exact_step_with_the_bound():
    p = _at_bound(2.0)
    with pytest.raises(DivergenceError) as gd:
        solve(p, STEPS, method="gd")
    with pytest.raises(DivergenceError) as fast:
        solve(p, STEPS, method="gd-fast")
    assert fast.value.step == gd.value.step
    assert "eta0 <" in str(fast.value) and fast.value.eta0_bound == gd.value.eta0_bound


def test_bad_options_are_refused():
    p = Problem(**BASE)
    with pytest.raises(ProblemError, match="rtol"):
        solve(p, STEPS, method="gd-fast", rtol=0.0)
    with pytest.raises(ProblemError, match="momentum"):
        solve(p.replace(momentum=0.5), STEPS, method="flow")
    with pytest.raises(ProblemError, match="full-batch GD"):
        StrideSolver(ReducedSystem.build(p.replace(momentum=0.5)))


def test_power_moments_match_brute_force():
    mu = np.array([1.0, 0.99, 0.5, 0.0, -0.5, -0.9, -0.999, 1 - 1e-9])
    for k in (1, 2, 3, 7, 64, 1000, 4097):
        T, pk = power_moments(mu, k, 6)
        j = np.arange(k, dtype=float)
        ref = np.array([[np.sum(m_ ** (k - 1 - j) * j ** m) for m_ in mu] for m in range(6)])
        assert np.max(np.abs(T - ref) / np.maximum(1.0, np.abs(ref))) < 1e-12, k
        np.testing.assert_allclose(pk, mu ** k, rtol=1e-12, atol=0)


@pytest.mark.parametrize("m", [1, 2], ids=["one-step", "two-step"])
def test_stride_formula_is_exact_for_affine_maps(m):
    """x <- x + A x + b(t), A the reference operator and b a polynomial of degree < q in t:
    one stride of any length reproduces the iteration (oscillating modes included)."""
    p = Problem(D=12, P=60, N=30, alpha=1.0, eps=0.25, eta0=1.0, weight_decay=1e-3, seed=4)
    p = p.replace(eta0=0.8 * _bound(p))
    system = ReducedSystem.build(p)
    sol = StrideSolver(system, options=StrideOptions(order=3, basis="full"))
    rng = np.random.default_rng(1)
    x0 = system.F0 + 0.05 * rng.standard_normal(system.F0.shape)
    sol.m, sol.Y = m, system.X @ x0
    sol._refresh()
    b = sol.basis
    assert np.min(b.mu) < 0                      # beyond half the bound: GD flips these modes

    def A(v):
        w = b.U @ (b.U.T @ b.phi(system.X @ v))
        return -b.c * (system.X.T @ (w[:, None] * b.B)) - b.omega * v

    b0, b1, b2 = (0.01 * rng.standard_normal(x0.shape) for _ in range(3))
    xs = [x0]
    for t in range(800):
        xs.append(xs[-1] + A(xs[-1]) + b0 + b1 * (t / 100) + b2 * (t / 100) ** 2)
    n = 20 * m
    nodes = []
    for t in (n, n - 10 * m, n - 20 * m):
        x, g = xs[t], xs[t + m] - xs[t]
        nodes.append(StrideNode(t, x, g, system.X @ x, system.X @ g))
    sol.n, sol.x = n, xs[n]
    for k in (10 * m, 37 * m, 150 * m):
        T, pk = power_moments(np.append(b.mu ** m, b.mu0 ** m), k // m, 4)
        an = b.coords(system.X @ xs[n])
        out = nodes[0].x + sol._combine(nodes, nodes[0], k, an, T, pk)
        err = np.abs(out - xs[n + k]).max() / np.abs(xs[n + k] - xs[n]).max()
        assert err < 1e-10, (k, err)


def test_run_stride_records_what_solve_records():
    p = Problem(**BASE)
    system = ReducedSystem.build(p)
    times = save_times(STEPS)
    run, st = run_stride(system, times)
    tr = solve(p, STEPS, method="gd-fast")
    np.testing.assert_array_equal(run.rows[:, 0], tr.train_loss)
    assert st.n_strides == tr.stats.stride.n_strides
