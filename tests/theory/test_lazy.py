"""The closed-form linearised model and kernel regression (lazyrich_theory.lazy) against an
explicitly linearised numpy network trained by GD in this file, its weight-space gradient flow
(matrix exponential), least squares in weight space, direct solves and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

from lazyrich_theory import Problem, preset
from lazyrich_theory.core.kernels import ntk_tilde_infinite
from lazyrich_theory.theory.lazy import (
    LinearizedModel,
    k0_baseline,
    kernel_regression,
    linearized_curves,
)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.statistics import population_loss


# ------------------------------------------------------------------ an explicit linearised net
class LinNet:
    """f_lin(x; W) = f(x; W0) + grad_W f(x; W0) . (W - W0), in the network's own units."""

    def __init__(self, p: Problem, d, Ws=None):
        self.p, self.d = p, d
        self.Winit = d.W0                   # reference of the centered model
        self.W0 = d.W0 if Ws is None else Ws  # linearisation point
        self.N = d.W0.shape[0]
        self.cs = 1.0 if p.convention == "A" else 1.0 / math.sqrt(p.D)

    def f(self, W, X):
        h = self.cs * X @ W.T
        return self.p.alpha / self.N * np.sum(h + 0.5 * self.p.eps * h * h, axis=1)

    def jac(self, X):
        """J[m, (i, k)] = (alpha/N) (1 + eps h_i(x_m)) c x_mk."""
        h = self.cs * X @ self.W0.T
        g = self.p.alpha / self.N * (1.0 + self.p.eps * h)
        return (g[:, :, None] * (self.cs * X)[:, None, :]).reshape(X.shape[0], -1)

    def setup(self):
        p, d = self.p, self.d
        self.J, self.Jt = self.jac(d.X), self.jac(d.X_test)
        f0, f0t = self.f(self.W0, d.X), self.f(self.W0, d.X_test)
        # ftilde_lin = J theta + g0, theta = vec(W - Ws); g0 = f(Ws) - f(W0) (centered) or f(Ws)
        if p.centered:
            f0 = f0 - self.f(self.Winit, d.X)
            f0t = f0t - self.f(self.Winit, d.X_test)
        self.g0, self.g0t = f0, f0t
        self.eta = p.eta0 * self.N / p.alpha**2
        return self

    def gd(self, times):
        P = self.p.P
        theta = np.zeros(self.J.shape[1])
        out, T = {}, set(int(t) for t in times)
        for t in range(int(max(times)) + 1):
            if t in T:
                out[t] = theta.copy()
            r = self.J @ theta + self.g0 - self.d.y
            theta = theta - self.eta * (2.0 / P) * (self.J.T @ r)
        return [out[int(t)] for t in times]

    def flow(self, times):
        """Exact weight-space gradient flow d theta/dt = -eta (2/P) J^T (J theta + g0 - y)."""
        P, n = self.p.P, self.J.shape[1]
        A = np.zeros((n + 1, n + 1))
        A[:n, :n] = -self.eta * 2.0 / P * self.J.T @ self.J
        A[:n, n] = -self.eta * 2.0 / P * self.J.T @ (self.g0 - self.d.y)
        e = np.zeros(n + 1)
        e[n] = 1.0
        return [(expm(A * t) @ e)[:n] for t in times]

    def losses(self, theta):
        d = self.d
        tr = np.mean((self.J @ theta + self.g0 - d.y) ** 2)
        te = np.mean((self.Jt @ theta + self.g0t - d.y_test) ** 2)
        return tr, te

    def population(self, theta):
        """Exact population loss of the linearised net through its (wbar, M) statistics:
        f_lin - f0 = alpha dwbar.u + (alpha eps/2) u^T dM u, dM = (W0^T dW + dW^T W0)/N."""
        p = self.p
        dW = theta.reshape(self.W0.shape)
        ws, Ms = self.W0.mean(0), self.W0.T @ self.W0 / self.N
        wbar = ws + dW.mean(0)
        M = Ms + (self.W0.T @ dW + dW.T @ self.W0) / self.N
        wbar0, M0 = self.Winit.mean(0), self.Winit.T @ self.Winit / self.N
        ref = (wbar0, M0) if p.centered else (np.zeros(p.D), np.zeros((p.D, p.D)))
        return population_loss(wbar, M, *ref, self.d.beta, p.alpha, p.eps, p.tau)


def _rel(a, b):
    """Largest relative deviation, entrywise."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _relmax(a, b):
    """Largest deviation relative to the largest reference entry (for arrays with zeros)."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


CASES = [dict(convention="A", centered=True, eta0=1.0),
         dict(convention="A", centered=False, eta0=1.0),
         dict(convention="B", centered=True, eta0=1.0),
         dict(convention="B", centered=False, eta0=1.0)]


@pytest.mark.parametrize("kw", CASES)
def test_closed_form_gd_equals_linearised_network_gd(kw):
    p = Problem(D=8, P=20, N=5, alpha=1.2, eps=0.6, seed=7, test_size=30, **kw)
    d = p.data()
    model = LinearizedModel.from_problem(p, d)
    # a step at which the top mode has c lambda = 1.6 > 1 (the signed-power branch), still stable
    eta0 = 0.8 * p.P / model.eigenvalues[0]
    p2 = p.replace(eta0=eta0)
    net = LinNet(p2, d).setup()
    model = LinearizedModel.from_problem(p2, d)
    assert 1.0 < model.max_step_factor < 2.0 and model.stable
    times = np.array([0, 1, 2, 3, 10, 57, 300, 2000])
    thetas = net.gd(times)
    ref = np.array([net.losses(th) for th in thetas])
    ref_pop = np.array([net.population(th) for th in thetas])
    cur = model.curves(times, "gd")
    assert _rel(cur.train_loss, ref[:, 0]) < 1e-10
    assert _rel(cur.test_loss, ref[:, 1]) < 1e-10
    assert _rel(cur.population_loss, ref_pop) < 1e-10
    # predictions on the test set and on fresh inputs, and train residuals
    pred_ref = np.array([net.Jt @ th + net.g0t for th in thetas])
    assert _relmax(model.predict(times), pred_ref) < 1e-10
    s = p.input_scale
    Xn = np.random.default_rng(0).standard_normal((7, p.D)) * (1 / math.sqrt(p.D) if s == 1 else 1)
    fn = net.f(d.W0, Xn) * (0 if p.centered else 1)
    pred_new = np.array([net.jac(Xn) @ th + fn for th in thetas])
    assert _relmax(model.predict(times, Xn * s), pred_new) < 1e-10
    res_ref = np.array([net.J @ th + net.g0 - d.y for th in thetas])
    np.testing.assert_allclose(model.train_residuals(times), res_ref,
                               atol=1e-10 * np.abs(d.y).max())


@pytest.mark.parametrize("centered", [True, False])
def test_closed_form_flow_equals_weight_space_flow(centered):
    p = Problem(D=8, P=20, N=5, alpha=0.9, eps=0.5, eta0=2.0, seed=8, test_size=25,
                centered=centered)
    d = p.data()
    net = LinNet(p, d).setup()
    model = LinearizedModel.from_problem(p, d)
    times = np.array([0.0, 0.37, 5.5, 80.0, 1234.5])
    thetas = net.flow(times)
    ref = np.array([net.losses(th) for th in thetas])
    cur = model.curves(times, "flow")
    assert _rel(cur.train_loss, ref[:, 0]) < 1e-10
    assert _rel(cur.test_loss, ref[:, 1]) < 1e-10
    assert _rel(cur.population_loss, [net.population(th) for th in thetas]) < 1e-10
    with pytest.raises(ProblemError):
        model.curves([1.5], "gd")                # GD times are step counts
    with pytest.raises(ProblemError):
        model.curves([-1.0], "flow")


@pytest.mark.parametrize("centered", [True, False])
def test_long_time_limit_is_ridgeless_kernel_regression(centered):
    p = Problem(D=8, P=20, N=5, alpha=1.0, eps=0.6, eta0=1.0, seed=9, test_size=25,
                centered=centered)
    d = p.data()
    sys = ReducedSystem.build(p, d)
    model = LinearizedModel.from_system(sys)
    net = LinNet(p, d).setup()
    lim = model.limit()
    # full-rank kernel (P = 20 < N D = 40): plain solve, as the paper does
    K = net.J @ net.J.T * p.N / p.alpha**2                 # Ktilde from the Jacobian
    Kx = net.Jt @ net.J.T * p.N / p.alpha**2
    coef = np.linalg.solve(K, d.y - net.g0)
    pred = net.g0t + Kx @ coef
    assert lim.rank == p.P
    assert _rel(lim.test_pred, pred) < 1e-10
    assert lim.test_mse == pytest.approx(np.mean((pred - d.y_test) ** 2), rel=1e-10)
    assert lim.train_mse < 1e-20
    # the curves converge to it, for GD and for flow
    for method in ("gd", "flow"):
        cur = model.curves([10**9], method)
        assert cur.test_loss[0] == pytest.approx(lim.test_mse, rel=1e-9)
        assert cur.population_loss[0] == pytest.approx(lim.population_mse, rel=1e-9)
    # k0_baseline is this limit; kernel_regression from matrices too
    base = k0_baseline(sys)
    assert base.test_mse == pytest.approx(lim.test_mse, rel=1e-13)
    kr = kernel_regression(K, d.y, Kx, d.y_test, g0=net.g0, g0_test=net.g0t)
    assert kr.test_mse == pytest.approx(lim.test_mse, rel=1e-10)
    # ridge: (K + lambda I)^{-1}, lambda in Ktilde units
    lam = 0.05
    coef = np.linalg.solve(K + lam * np.eye(p.P), d.y - net.g0)
    pr = model.kernel_regression(lam)
    assert _rel(pr.test_pred, net.g0t + Kx @ coef) < 1e-10
    assert pr.train_mse == pytest.approx(np.mean((net.g0 + K @ coef - d.y) ** 2), rel=1e-10)
    th = net.J.T @ coef * p.N / p.alpha**2                  # weights of the ridge predictor
    assert pr.population_mse == pytest.approx(net.population(th), rel=1e-10)
    with pytest.raises(ProblemError):
        model.kernel_regression(-1.0)


def test_singular_kernel_limit_is_min_norm_least_squares():
    # N D = 6 < P = 20: K has rank 6; ridgeless regression = min-norm least squares in W,
    # which GD from W0 converges to.
    p = Problem(D=3, P=20, N=2, alpha=1.0, eps=0.8, eta0=1.0, seed=10, test_size=15,
                centered=False)
    d = p.data()
    net = LinNet(p, d).setup()
    model = LinearizedModel.from_problem(p, d)
    assert model.rank == 6
    theta = np.linalg.lstsq(net.J, d.y - net.g0, rcond=None)[0]
    lim = model.limit()
    assert _rel(lim.test_pred, net.Jt @ theta + net.g0t) < 1e-9
    tr_ref, te_ref = net.losses(theta)
    assert lim.train_mse == pytest.approx(tr_ref, rel=1e-9) and tr_ref > 1e-3
    assert lim.population_mse == pytest.approx(net.population(theta), rel=1e-9)
    th = net.gd([20000])[0]
    cur = model.curves([20000])
    assert cur.train_loss[0] == pytest.approx(net.losses(th)[0], rel=1e-10)
    assert cur.test_loss[0] == pytest.approx(te_ref, rel=1e-8)


def test_infinite_width_baseline_and_population_monte_carlo():
    p = Problem(D=10, P=30, N=math.inf, alpha=1.0, eps=0.3, eta0=1.0, seed=2, test_size=50)
    sys = ReducedSystem.build(p)
    K = ntk_tilde_infinite(sys.X, p.eps)                     # (x.x')[1 + eps^2 x.x']
    Kx = ntk_tilde_infinite(sys.X_test, p.eps, sys.X)
    coef = np.linalg.solve(K, sys.y)
    base = k0_baseline(p)
    assert base.test_mse == pytest.approx(np.mean((Kx @ coef - sys.y_test) ** 2), rel=1e-10)
    # exact population loss vs Monte Carlo over fresh Gaussian inputs, at t = 300 and t = inf
    model = LinearizedModel.from_system(sys)
    rng = np.random.default_rng(11)
    n = 200_000
    Xn = rng.standard_normal((n, p.D)) / math.sqrt(p.D)
    yn = p.tau * (Xn @ sys.beta) ** 2
    for t, exact in ((300, model.curves([300]).population_loss[0]),
                     (None, base.population_mse)):
        if t is None:
            f = ntk_tilde_infinite(Xn, p.eps, sys.X) @ coef
        else:
            f = model.predict([t], Xn)[0]
        e2 = (f - yn) ** 2
        assert abs(e2.mean() - exact) < 5 * e2.std() / math.sqrt(n)


def test_uncentered_baseline_predicts_around_f0():
    p = preset("fig4", D=12, P=30, test_size=40, seed=3)           # uncentered, N = 2
    sys = ReducedSystem.build(p)
    d = p.data()
    f0 = LinNet(p, d).f(d.W0, d.X)
    f0t = LinNet(p, d).f(d.W0, d.X_test)
    K = LinNet(p, d).jac(d.X) @ LinNet(p, d).jac(d.X).T
    Kx = LinNet(p, d).jac(d.X_test) @ LinNet(p, d).jac(d.X).T
    pred = f0t + Kx @ np.linalg.lstsq(K, d.y - f0, rcond=None)[0]
    base = k0_baseline(sys)
    assert _rel(base.test_pred, pred) < 1e-8
    # differs from regressing y itself (what a centered baseline would do)
    assert abs(base.test_mse - np.mean((Kx @ np.linalg.lstsq(K, d.y, rcond=None)[0]
                                        - d.y_test) ** 2)) > 1e-3


def test_fig1_baseline_and_curves_are_consistent():
    """(Speed is measured in benchmarks/, never asserted here.)"""
    p = preset("fig1")
    sys = ReducedSystem.build(p)
    model = LinearizedModel.from_system(sys)
    times = np.unique(np.round(np.logspace(0, 5, 3000)))
    cur = model.curves(times)
    lim = model.limit()
    # the paper's own recipe: solve K c = y, test MSE of K(Xt, X) c
    from lazyrich_theory.core.kernels import state_ntk
    c = np.linalg.solve(state_ntk(sys), sys.y)
    ref = np.mean((state_ntk(sys, which="test_train") @ c - sys.y_test) ** 2)
    assert lim.test_mse == pytest.approx(ref, rel=1e-9)
    assert 0.3 < lim.test_mse < 1.0                      # no generalisation from K0
    assert model.max_step_factor < 0.1                   # GD ~ flow in Fig 1
    assert np.all(np.diff(cur.train_loss) <= 1e-15)      # monotone for stable GD
    # a convenience wrapper gives the same curves
    cur2 = linearized_curves(sys, times[:5])
    np.testing.assert_allclose(cur2.test_loss, cur.test_loss[:5], rtol=1e-12)
    assert set(cur.columns()) == {"lin_train_loss", "lin_test_loss", "lin_population_loss"}


@pytest.mark.parametrize("centered", [True, False])
def test_linearisation_around_a_later_state(centered):
    # linearise at the state reached after 200 GD steps: reduced-solver factor F vs the
    # numpy network's W (validation.simulate), then train the linearised net from there
    from lazyrich_theory import solve
    from lazyrich_validation import simulate

    p = Problem(D=8, P=20, N=5, alpha=1.0, eps=0.6, eta0=1.0, seed=12, test_size=25,
                centered=centered)
    d = p.data()
    F = solve(p, 200, method="gd", data=d).final_state["F"]
    Ws = simulate(p, 200, data=d).final_state["W"]
    model = LinearizedModel.from_system(ReducedSystem.build(p, d), F=F)
    net = LinNet(p, d, Ws=Ws).setup()
    times = np.array([0, 1, 40, 700])
    thetas = net.gd(times)
    ref = np.array([net.losses(th) for th in thetas])
    cur = model.curves(times)
    assert _rel(cur.train_loss, ref[:, 0]) < 1e-9
    assert _rel(cur.test_loss, ref[:, 1]) < 1e-9
    assert _rel(cur.population_loss, [net.population(th) for th in thetas]) < 1e-9


def test_network_approaches_linearised_model_as_alpha_grows():
    # the centered network at large alpha is lazy: its curves deviate from the closed-form
    # linearised ones by O(1/alpha)
    from lazyrich_theory import solve

    times = [0, 10, 100, 1000, 4000]
    dev = []
    for alpha in (100.0, 1000.0):
        p = Problem(D=10, P=40, N=30, alpha=alpha, eps=0.5, eta0=1.0, seed=3, test_size=50)
        tr = solve(p, times[-1], method="gd", save_times=times)
        idx = [int(np.flatnonzero(tr.t == t)[0]) for t in times]
        cur = LinearizedModel.from_problem(p).curves(times)
        dev.append(max(_rel(tr.test_loss[idx], cur.test_loss),
                       _rel(tr.population_loss[idx], cur.population_loss)))
    assert dev[1] < 0.01
    assert 7.0 < dev[0] / dev[1] < 14.0
