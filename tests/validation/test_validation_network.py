"""Tests of the independent finite-network check (validation/).

Every reference quantity here is recomputed in the test itself, in the network's own terms
(forward passes through W), never with validation's or lazyrich_theory's helpers.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.schedule import save_times
from lazyrich_validation import compare, max_relative_deviation, network_ntk, simulate
from lazyrich_validation.network import NetworkDivergence, loss_and_grad


# ------------------------------------------------------------------ independent references
def _f(p: Problem, W, X, a=None):
    """f(x) = (alpha/N) sum_i a_i phi(h_i), h = W x (A) or W x / sqrt(D) (B)."""
    N = W.shape[0]
    a = np.ones(N) if a is None else a
    h = X @ W.T
    if p.convention == "B":
        h = h / np.sqrt(p.D)
    return p.alpha / N * ((h + p.eps / 2 * h**2) @ a)


def _target(p: Problem, X, beta):
    if p.convention == "A":
        return 0.5 * (X @ beta) ** 2
    return (X @ beta / np.sqrt(p.D)) ** 2


def _ftilde(p: Problem, W, a, W0, X):
    f = _f(p, W, X, a)
    return f - _f(p, W0, X) if p.centered else f


def _fresh_inputs(p: Problem, n, rng):
    X = rng.standard_normal((n, p.D))
    return X / np.sqrt(p.D) if p.convention == "A" else X


SMALL = dict(D=12, P=40, N=5, test_size=200, seed=3)


# ------------------------------------------------------------------ (1) population loss
@pytest.mark.parametrize("convention", ["A", "B"])
@pytest.mark.parametrize("centered", [True, False])
@pytest.mark.parametrize("train_readouts", [False, True])
def test_population_loss_matches_monte_carlo(convention, centered, train_readouts):
    p = Problem(**SMALL, alpha=0.8, eps=0.6, eta0=0.5, convention=convention,
                centered=centered)
    data = p.data()
    tr = simulate(p, 150, data=data, train_readouts=train_readouts)
    W, a = tr.final_state["W"], tr.final_state["a"]
    if train_readouts:
        assert not np.allclose(a, 1.0)
    rng = np.random.default_rng(12345)
    X = _fresh_inputs(p, 200_000, rng)
    e2 = (_ftilde(p, W, a, data.W0, X) - _target(p, X, data.beta)) ** 2
    mc, se = e2.mean(), e2.std(ddof=1) / math.sqrt(e2.size)
    pop = tr.population_loss[-1]
    assert abs(pop - mc) < 4 * se, (pop, mc, se)
    # the state moved far enough that a wrong population formula would be detected
    assert abs(tr.population_loss[0] - pop) > 10 * se
    # the decomposition columns add up
    np.testing.assert_allclose(tr.variance + tr.misalignment + tr.linear_power,
                               tr.population_loss, rtol=1e-12)
    # statistics of the final state, recomputed directly
    N = W.shape[0]
    np.testing.assert_allclose(tr.final_state["wbar"], W.T @ a / N, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tr.final_state["M"], (W.T * a) @ W / N, rtol=1e-12,
                               atol=1e-14)


def test_population_loss_at_init_is_target_power_when_centered():
    """Centered: ftilde = 0 at t = 0, so the population loss is E[y^2] = 3 tau^2 |beta|^4 / D^2."""
    for conv, tau in (("A", 0.5), ("B", 1.0)):
        p = Problem(**SMALL, eps=0.3, convention=conv, centered=True)
        data = p.data()
        tr = simulate(p, 0, data=data)
        b2 = data.beta @ data.beta
        assert tr.population_loss[0] == pytest.approx(3 * tau**2 * b2**2 / p.D**2, rel=1e-12)
        assert tr.linear_power[0] == 0.0 and tr.frob_dM[0] == 0.0


# ------------------------------------------------------------------ (2) gradient
@pytest.mark.parametrize("convention", ["A", "B"])
@pytest.mark.parametrize("centered", [True, False])
def test_gradient_matches_finite_differences(convention, centered):
    p = Problem(**SMALL, alpha=1.3, eps=0.4, convention=convention, centered=centered)
    data = p.data()
    rng = np.random.default_rng(7)
    W = data.W0 + 0.3 * rng.standard_normal(data.W0.shape)  # away from init: r != -y
    a = 1.0 + 0.2 * rng.standard_normal(p.N)
    f0 = _f(p, data.W0, data.X) if centered else None

    def loss(Wx, ax):
        f = _f(p, Wx, data.X, ax)
        r = (f - f0 if centered else f) - data.y
        return np.mean(r**2)

    L, gW, ga = loss_and_grad(p, W, data.X, data.y, a=a, f0=f0, train_readouts=True)
    assert L == pytest.approx(loss(W, a), rel=1e-13)
    h = 1e-5
    fdW = np.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += h
        Wm[idx] -= h
        fdW[idx] = (loss(Wp, a) - loss(Wm, a)) / (2 * h)
    fda = np.zeros_like(a)
    for i in range(p.N):
        ap, am = a.copy(), a.copy()
        ap[i] += h
        am[i] -= h
        fda[i] = (loss(W, ap) - loss(W, am)) / (2 * h)
    assert np.linalg.norm(gW - fdW) / np.linalg.norm(fdW) < 1e-6
    assert np.linalg.norm(ga - fda) / np.linalg.norm(fda) < 1e-6
    # without train_readouts the W-gradient is the same and no a-gradient is returned
    _, gW2, ga2 = loss_and_grad(p, W, data.X, data.y, a=a, f0=f0)
    assert ga2 is None
    np.testing.assert_array_equal(gW2, gW)


# ------------------------------------------------------------------ (3) losses and GD steps
@pytest.mark.parametrize("convention", ["A", "B"])
@pytest.mark.parametrize("centered", [True, False])
def test_train_loss_at_init_and_descent(convention, centered):
    p = Problem(**SMALL, alpha=1.0, eps=0.5, eta0=0.05, convention=convention,
                centered=centered)
    data = p.data()
    tr = simulate(p, 200, data=data)
    ft = _ftilde(p, data.W0, np.ones(p.N), data.W0, data.X)
    assert tr.t[0] == 0.0
    assert tr.train_loss[0] == pytest.approx(np.mean((ft - data.y) ** 2), rel=1e-12)
    ftt = _ftilde(p, data.W0, np.ones(p.N), data.W0, data.X_test)
    assert tr.test_loss[0] == pytest.approx(np.mean((ftt - data.y_test) ** 2), rel=1e-12)
    if centered:
        assert tr.train_loss[0] == pytest.approx(np.mean(data.y**2), rel=1e-12)
    # small steps: GD decreases the loss monotonically
    assert np.all(np.diff(tr.train_loss) <= 1e-12 * tr.train_loss[0])
    assert tr.train_loss[-1] < 0.9 * tr.train_loss[0]
    # the value at t = 1 is that of the weights after one explicit GD update
    f0 = _f(p, data.W0, data.X) if centered else None
    _, gW, _ = loss_and_grad(p, data.W0, data.X, data.y, f0=f0)
    W1 = data.W0 - p.eta0 * p.N / p.alpha**2 * gW
    ft1 = _ftilde(p, W1, np.ones(p.N), data.W0, data.X)
    assert tr.at(1.0)["train_loss"] == pytest.approx(np.mean((ft1 - data.y) ** 2), rel=1e-10)


def test_save_times_and_metadata():
    p = Problem(**SMALL, eps=0.3)
    tr = simulate(p, 50, save_times=[7, 33])
    np.testing.assert_array_equal(tr.t, save_times(50, extra=[7, 33]).astype(float))
    assert tr.t.dtype == np.float64 and 7.0 in tr.t and 33.0 in tr.t
    assert tr.method == "network"
    assert tr.info["steps"] == 50 and tr.info["train_readouts"] is False
    assert tr.info["wall_time"] > 0 and tr.info["time_per_step"] > 0
    np.testing.assert_array_equal(simulate(p, 50).t, save_times(50).astype(float))
    with pytest.raises(ProblemError, match="finite width"):
        simulate(p.replace(N=math.inf), 10)


# ------------------------------------------------------------------ (4) NTK
@pytest.mark.parametrize("convention", ["A", "B"])
def test_network_ntk_matches_formula(convention):
    p = Problem(**SMALL, alpha=1.7, eps=0.3, convention=convention)
    data = p.data()
    rng = np.random.default_rng(1)
    W = data.W0 + 0.5 * rng.standard_normal(data.W0.shape)
    X, X2 = data.X[:15], data.X_test[:9]
    s = 1.0 if convention == "A" else 1.0 / np.sqrt(p.D)  # own units -> h = w . (s x)
    U, U2 = s * X, s * X2
    d1, d2 = 1 + p.eps * (U @ W.T), 1 + p.eps * (U2 @ W.T)  # phi'(h_i(x)), (n, N)
    expected = p.alpha**2 / p.N**2 * (d1 @ d2.T) * (U @ U2.T)
    K = network_ntk(p, W, X, X2)
    assert K.shape == (15, 9)
    np.testing.assert_allclose(K, expected, rtol=1e-12, atol=1e-15)
    # symmetric Gram matrix when X2 is omitted
    K11 = network_ntk(p, W, X)
    np.testing.assert_allclose(K11, p.alpha**2 / p.N**2 * (d1 @ d1.T) * (U @ U.T),
                               rtol=1e-12, atol=1e-15)
    assert np.linalg.eigvalsh(0.5 * (K11 + K11.T)).min() > -1e-12
    # readouts enter squared
    a = rng.standard_normal(p.N)
    Ka = network_ntk(p, W, X, X2, a=a)
    np.testing.assert_allclose(Ka, p.alpha**2 / p.N**2 * ((d1 * a**2) @ d2.T) * (U @ U2.T),
                               rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ (5) divergence
def test_divergence_names_the_step():
    p = Problem(**SMALL, eps=0.5, eta0=1e4)
    with pytest.raises(NetworkDivergence, match=r"step \d+") as exc:
        simulate(p, 100)
    step = int(re.search(r"step (\d+)", str(exc.value)).group(1))
    assert 1 <= step <= 100
    assert isinstance(exc.value, ValueError)
    # a stable step size does not raise
    simulate(p.replace(eta0=0.05), 100)


def test_divergence_threshold_is_1e8_times_initial_loss():
    """With a moderately unstable step the loss grows through 1e8 x L(0) while still finite:
    the named step must be the first one past that threshold, found by explicit GD here."""
    p = Problem(**SMALL, eps=0.5, eta0=10.0)
    data = p.data()
    f0 = _f(p, data.W0, data.X)
    W, losses = data.W0.copy(), []
    with np.errstate(all="ignore"):
        for _ in range(30):
            L, gW, _ = loss_and_grad(p, W, data.X, data.y, f0=f0)
            losses.append(L)
            W = W - p.eta0 * p.N / p.alpha**2 * gW
    losses = np.array(losses)
    bad = ~np.isfinite(losses) | (losses > 1e8 * losses[0])
    first = int(np.argmax(bad))
    assert bad.any() and np.isfinite(losses[first])  # threshold reached before overflow
    with pytest.raises(NetworkDivergence, match=rf"step {first}\b"):
        simulate(p, 30, data=data)


# ------------------------------------------------------------------ (6) comparison
def test_max_relative_deviation(tmp_path):
    p = Problem(**SMALL, eps=0.5, eta0=0.3)
    a = simulate(p, 100)
    b = simulate(p, 100)
    res = max_relative_deviation(a, b)
    assert res["max"] == 0.0 and res["n_times"] == len(a.t)
    assert set(res["per_column"]) == {"train_loss", "test_loss", "population_loss"}
    assert compare is max_relative_deviation
    c = simulate(p.replace(eta0=0.31), 100)
    res2 = max_relative_deviation(a, c)
    assert res2["max"] > 1e-4
    # the reported worst entry is the actual maximum, recomputed directly
    col, t = res2["worst"]["column"], res2["worst"]["t"]
    va, vc = a.at(t)[col], c.at(t)[col]
    assert res2["max"] == pytest.approx(abs(va - vc) / max(abs(va), abs(vc)), rel=1e-12)
    # only common save times are compared
    d = simulate(p, 30)
    res3 = max_relative_deviation(a, d)
    assert res3["n_times"] == len(np.intersect1d(a.t, d.t)) < len(d.t)
    assert res3["max"] == 0.0
    # folders work too
    a.save(tmp_path / "a", plot=False)
    c.save(tmp_path / "c", plot=False)
    res4 = max_relative_deviation(str(tmp_path / "a"), tmp_path / "c")
    assert res4["max"] == pytest.approx(res2["max"], rel=1e-12)
    with pytest.raises(ValueError, match="no common"):
        max_relative_deviation(a, dataclasses.replace(a, t=a.t + 0.5))


# ------------------------------------------------------------------ (7) trained readouts
def test_train_readouts_changes_trajectory_and_descends():
    p = Problem(**SMALL, eps=0.5, eta0=0.05, centered=False)
    fixed = simulate(p, 200)
    trained = simulate(p, 200, train_readouts=True)
    assert trained.info["train_readouts"] is True
    np.testing.assert_allclose(fixed.final_state["a"], 1.0)
    assert np.max(np.abs(trained.final_state["a"] - 1.0)) > 1e-3
    # same start, different path
    assert trained.train_loss[0] == fixed.train_loss[0]
    assert max_relative_deviation(fixed, trained)["max"] > 1e-3
    assert np.all(np.diff(trained.train_loss) <= 1e-12 * trained.train_loss[0])
    assert trained.train_loss[-1] < 0.9 * trained.train_loss[0]
