"""Lazy-regime closed forms against independent computations: the network's Jacobian (via
validation/), GD on an explicitly linearised numpy network, and direct linear algebra."""
import math

import numpy as np
import pytest

from lazyrich_theory import Problem, solve
from lazyrich_theory.linearized import (LinearizedModel, centered_kernel_alignment,
                                        kernel_drift, kernel_regression, lazy_summary, ntk,
                                        paper_kernel_alignment, target_power_topk)
from lazyrich_theory.reduced import ReducedSystem
from validation import network_ntk


@pytest.mark.parametrize("convention", ["A", "B"])
@pytest.mark.parametrize("N", [3, 12])
def test_ntk_from_statistics_equals_network_jacobian(convention, N):
    p = Problem(D=8, P=15, N=N, alpha=1.3, eps=0.4, eta0=0.5, seed=2, test_size=7,
                convention=convention)
    data = p.data()
    tr = solve(p, 200, data=data)
    # the network's weights after 200 steps: any W with the same (wbar, M) gives the same
    # NTK; run the network itself to get one
    from validation.network import simulate
    net = simulate(p, 200, data=data)
    W = net.final_state["W"]
    system = ReducedSystem.build(p, data)
    F = tr.final_state["F"]
    s = p.input_scale
    K_red = ntk(system, F, data.X * s, data.X_test * s, width_free=False)
    K_net = network_ntk(p, W, data.X, data.X_test)
    np.testing.assert_allclose(K_red, K_net, rtol=1e-10, atol=1e-13 * np.abs(K_net).max())
    # and it moved: the kernel at t = 200 differs from the initial one
    K0 = ntk(system, system.F0, data.X * s, data.X_test * s, width_free=False)
    assert kernel_drift(K_red, K0) > 1e-3


def _linearised_network_gd(p, data, steps, times):
    """GD on f_lin(x; W) = f(x; W0) + J(x; W0).(W - W0), in plain numpy (convention A)."""
    X, y, Xt, yt = data.X, data.y, data.X_test, data.y_test
    W0 = data.W0
    N = W0.shape[0]
    a, e = p.alpha, p.eps

    def f(W, Z):
        H = Z @ W.T
        return (a / N) * np.sum(H + 0.5 * e * H * H, axis=1)

    def jac(Z):  # (n, N, D): d f / d w_i = (alpha/N)(1 + eps w_i.x) x
        H = Z @ W0.T
        return (a / N) * (1 + e * H)[:, :, None] * Z[:, None, :]

    J, Jt = jac(X), jac(Xt)
    f0, f0t = f(W0, X), f(W0, Xt)
    b, bt = (np.zeros_like(f0), np.zeros_like(f0t)) if p.centered else (f0, f0t)
    eta = p.eta0 * N / a**2
    W = W0.copy()
    out = {}
    for t in range(steps + 1):
        d = W - W0
        flin = b + np.einsum("pnd,nd->p", J, d)
        if t in times:
            flt = bt + np.einsum("pnd,nd->p", Jt, d)
            out[t] = (np.mean((flin - y) ** 2), np.mean((flt - yt) ** 2))
        r = flin - y
        W = W - eta * (2.0 / len(y)) * np.einsum("p,pnd->nd", r, J)
    return out


@pytest.mark.parametrize("centered", [True, False])
def test_linearised_closed_form_equals_gd_of_linearised_network(centered):
    p = Problem(D=8, P=20, N=5, alpha=1.0, eps=0.5, eta0=0.8, seed=4, test_size=9,
                centered=centered)
    data = p.data()
    times = [0, 1, 7, 50, 300, 1500]
    ref = _linearised_network_gd(p, data, max(times), set(times))
    model = LinearizedModel.build(p, data)
    train, test = model.curves(np.array(times, dtype=float), "gd")
    for k, t in enumerate(times):
        assert math.isclose(train[k], ref[t][0], rel_tol=1e-9), (t, train[k], ref[t][0])
        assert math.isclose(test[k], ref[t][1], rel_tol=1e-9), (t, test[k], ref[t][1])


def test_linearised_flow_is_the_small_step_limit_and_converges_to_kernel_regression():
    p = Problem(D=10, P=25, N="inf", alpha=1.0, eps=0.3, eta0=0.5, seed=1, test_size=30)
    model = LinearizedModel.build(p)
    t = np.array([10.0, 100.0, 1000.0])
    gd_tr, gd_te = model.curves(t, "gd")
    half = LinearizedModel.build(p.replace(eta0=0.25))
    h_tr, h_te = half.curves(2 * t, "gd")
    fl_tr, fl_te = model.curves(t, "flow")
    # GD at eta0/2 for 2t steps is closer to the flow than GD at eta0 for t steps
    assert np.all(np.abs(h_te - fl_te) < np.abs(gd_te - fl_te))
    lim_tr, lim_te = model.limit()
    tr_inf, te_inf = model.curves(np.array([1e13]), "flow")
    assert math.isclose(te_inf[0], lim_te, rel_tol=1e-8)
    assert tr_inf[0] < 1e-12 and lim_tr < 1e-12        # P < number of features: interpolates


def test_kernel_regression_matches_direct_solve_with_ridge():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 30))
    K = A @ A.T
    Kt = rng.standard_normal((5, 30)) @ A.T
    y, yt = rng.standard_normal(12), rng.standard_normal(5)
    lam = 0.7
    c = np.linalg.solve(K + lam * np.eye(12), y)
    tr, te = kernel_regression(K, Kt, y, yt, ridge=lam)
    assert math.isclose(tr, np.mean((K @ c - y) ** 2), rel_tol=1e-10)
    assert math.isclose(te, np.mean((Kt @ c - yt) ** 2), rel_tol=1e-10)


def test_alignment_definitions():
    rng = np.random.default_rng(3)
    y = rng.standard_normal(40)
    yc = y - y.mean()
    # the target kernel itself is perfectly aligned under the standard definition
    assert math.isclose(centered_kernel_alignment(np.outer(y, y), y), 1.0, rel_tol=1e-12)
    A = rng.standard_normal((40, 60))
    K = A @ A.T + 5.0          # a constant offset: HKH removes it, one-sided centering does not
    H = np.eye(40) - 1.0 / 40
    Kc2 = H @ K @ H
    expect = float(yc @ K @ yc) / (np.linalg.norm(Kc2) * float(yc @ yc))
    assert math.isclose(centered_kernel_alignment(K, y), expect, rel_tol=1e-12)
    Kc1 = K - K.mean(axis=0)
    expect1 = float(yc @ Kc1 @ yc) / (np.linalg.norm(Kc1) * float(yc @ yc))
    assert math.isclose(paper_kernel_alignment(K, y), expect1, rel_tol=1e-12)
    assert not math.isclose(paper_kernel_alignment(K, y), centered_kernel_alignment(K, y))
    assert math.isclose(target_power_topk(K, y, 40), 1.0, rel_tol=1e-12)
    assert 0 < target_power_topk(K, y, 3) < 1


def test_fig1_linearised_peak_and_k0_baseline():
    """The paper's Fig. 1 setup: the linearised model's test loss peaks near the network's
    lazy plateau; the K0 baseline sits below the initial test loss."""
    from lazyrich_theory import preset

    s = lazy_summary(preset("fig1"))
    assert 0.5 < s["kernel_regression_test_loss"] < 0.7
    assert s["kernel_regression_train_loss"] < 1e-10
    assert 200 < s["linearized_peak_time"] < 2000
    assert s["linearized_peak_test_loss"] > 0.8
