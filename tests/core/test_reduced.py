"""The reduced solver against independent computations (the network tests live in
test_reduced_vs_network.py)."""
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lazyrich_theory import Problem
from lazyrich_theory.errors import DivergenceError
from lazyrich_theory.core.reduced import ReducedSystem, initial_factor
from lazyrich_theory.core.solve import solve


@pytest.mark.parametrize("N", [1, 3, 13, 14, 50, math.inf])
def test_initial_factor_reproduces_statistics(N):
    D = 12
    rng = np.random.default_rng(0)
    W0 = None if math.isinf(N) else rng.standard_normal((N, D))
    F, c, z = initial_factor(W0, D)
    wbar0 = np.zeros(D) if W0 is None else W0.mean(0)
    M0 = np.eye(D) if W0 is None else W0.T @ W0 / N
    np.testing.assert_allclose(F @ z, wbar0, atol=1e-13)
    np.testing.assert_allclose(F @ F.T, M0, atol=1e-13)
    assert F.shape[1] == (D + 1 if W0 is None else min(N, D + 1))
    # the affine map w -> A w + b on every neuron equals F -> A F + b c^T
    A = np.eye(D) + 0.1 * rng.standard_normal((D, D)); b = rng.standard_normal(D)
    F2 = A @ F + np.outer(b, c)
    if W0 is not None:
        W2 = W0 @ A.T + b
        np.testing.assert_allclose(F2 @ z, W2.mean(0), atol=1e-12)
        np.testing.assert_allclose(F2 @ F2.T, W2.T @ W2 / N, atol=1e-11)
    else:
        np.testing.assert_allclose(F2 @ F2.T, A @ A.T + np.outer(b, b), atol=1e-12)
        np.testing.assert_allclose(F2 @ z, b, atol=1e-13)


def _wbar_M_map(problem, steps):
    """THEORY.md §2 written directly on (wbar, M), independent of the factor code."""
    d = problem.data()
    s = problem.input_scale
    X, Xt, y, yt = d.X * s, d.X_test * s, d.y, d.y_test
    a, e, k = problem.alpha, problem.eps, problem.eta0
    if d.W0 is None:
        wbar, M = np.zeros(problem.D), np.eye(problem.D)
    else:
        wbar, M = d.W0.mean(0), d.W0.T @ d.W0 / d.W0.shape[0]
    f = lambda Z, w, M: a * Z @ w + 0.5 * a * e * np.einsum("ij,jk,ik->i", Z, M, Z)
    f0, f0t = (f(X, wbar, M), f(Xt, wbar, M)) if problem.centered else (0.0, 0.0)
    out = []
    for t in range(steps + 1):
        r = f(X, wbar, M) - f0 - y
        rt = f(Xt, wbar, M) - f0t - yt
        out.append((r @ r / r.size, rt @ rt / rt.size))
        g = 2 / X.shape[0] * X.T @ r
        G = 2 / X.shape[0] * X.T @ (r[:, None] * X)
        A = np.eye(problem.D) - k * e / a * G
        b = -k / a * g
        Aw = A @ wbar
        M = A @ M @ A.T + np.outer(Aw, b) + np.outer(b, Aw) + np.outer(b, b)
        wbar = Aw + b
    return np.array(out)


@pytest.mark.parametrize("N", [30, math.inf])
@pytest.mark.parametrize("centered", [True, False])
def test_gd_equals_direct_wbar_M_recursion_for_full_rank(N, centered):
    p = Problem(D=10, P=35, N=N, alpha=1.0, eps=0.3, eta0=2.0, seed=4, test_size=50,
                centered=centered)
    steps = 400
    ref = _wbar_M_map(p, steps)
    tr = solve(p, steps, save_times=range(0, steps + 1))
    np.testing.assert_allclose(tr.train_loss, ref[:, 0], rtol=1e-9)
    np.testing.assert_allclose(tr.test_loss, ref[:, 1], rtol=1e-9)


def test_rank_preserved_when_N_below_D(narrow_problem):
    tr = solve(narrow_problem, 3000)
    M = tr.final_state["M"]
    ev = np.linalg.eigvalsh(M)
    assert np.all(np.abs(ev[:-2]) < 1e-12 * ev[-1])  # rank(M) <= N = 2 exactly
    assert tr.train_loss[-1] < 0.1 * tr.train_loss[0]


def test_flow_matches_scipy_reference(small_problem):
    p = small_problem
    steps = 3000
    tr = solve(p, steps, method="flow", integrator="dopri5", rtol=1e-10, atol=1e-12)
    system = ReducedSystem.build(p)
    shape = system.F0.shape
    sol = solve_ivp(lambda t, y: system.rhs(t, y.reshape(shape)).ravel(), (0, steps),
                    system.F0.ravel(), method="DOP853", t_eval=tr.t, rtol=1e-11, atol=1e-13)
    ref = np.array([system.record(sol.y[:, k].reshape(shape))[0] for k in range(len(tr.t))])
    np.testing.assert_allclose(tr.train_loss, ref, rtol=1e-7)
    assert tr.info["n_rhs"] > 0


def test_flow_tolerance_controls_error(small_problem):
    exact = solve(small_problem, 2000, method="flow", integrator="dopri5", rtol=1e-11, atol=1e-13).test_loss
    errs = []
    for rtol in (1e-4, 1e-7):
        tr = solve(small_problem, 2000, method="flow", integrator="dopri5", rtol=rtol, atol=rtol * 1e-3)
        errs.append(np.max(np.abs(tr.test_loss - exact) / exact))
    assert errs[1] < errs[0] and errs[1] < 1e-5


def test_gd_approaches_flow_at_first_order(small_problem):
    """GD is forward Euler of the flow with step 1 (in GD steps): at fixed tau = eta0 t the
    GD-flow gap must halve when eta0 halves."""
    gaps = []
    for eta0, steps in ((1.0, 400), (0.5, 800), (0.25, 1600)):
        p = small_problem.replace(eta0=eta0)
        gd = solve(p, steps)
        fl = solve(p, steps, method="flow", integrator="dopri5", rtol=1e-11, atol=1e-13)
        gaps.append(np.max(np.abs(gd.train_loss - fl.train_loss)))
    r1, r2 = gaps[0] / gaps[1], gaps[1] / gaps[2]
    assert 1.7 < r1 < 2.3 and 1.8 < r2 < 2.2, gaps


def test_divergence_is_reported_with_step_and_bound(small_problem):
    system = ReducedSystem.build(small_problem)
    bound = system.eta0_bound(system.F0)
    with pytest.raises(DivergenceError) as exc:
        solve(small_problem.replace(eta0=3 * bound), 5000)
    msg = str(exc.value)
    assert "step" in msg and "eta0 <" in msg and "\n" not in msg
    assert exc.value.eta0_bound == pytest.approx(bound, rel=0.5)
    # just below the bound GD is stable
    tr = solve(small_problem.replace(eta0=0.5 * bound), 300)
    assert np.all(np.isfinite(tr.train_loss)) and tr.train_loss[-1] < tr.train_loss[0]


def test_convention_B_is_A_with_doubled_target():
    pa = Problem(D=10, P=30, N=4, eps=0.3, seed=8, test_size=40)
    pb = pa.replace(convention="B")
    ta, tb = solve(pa, 200), solve(pb, 200)
    da, db = pa.data(), pb.data()
    np.testing.assert_allclose(db.X / math.sqrt(10), da.X, rtol=1e-12)
    np.testing.assert_allclose(db.y, 2 * da.y, rtol=1e-12)
    assert not np.allclose(ta.train_loss, tb.train_loss)
