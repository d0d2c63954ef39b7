"""Minibatch and online SGD (issue #6 item 3, docs/sgd.md).

Both are exact in the reduced dynamics (each step is one shared affine map of the neurons):
``solve`` must equal the plain numpy network (``validation.simulate``, which re-implements the
documented batch / sample rules itself) to <= 1e-8 relative, and online SGD must approach the
population ODE as eta0 / B -> 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazyrich_theory import DivergenceError, Problem, ProblemError, population, solve
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.stepping import Batches
from lazyrich_theory.spec.streams import (
    batch_indices,
    iter_batch_indices,
    online_samples,
    sgd_batch_size,
    sgd_mode,
)
from lazyrich_theory.core.statistics import predict
from lazyrich_validation import NetworkDivergence, max_relative_deviation, simulate

LOSS_RTOL = 1e-8
STEPS = 1200
COLUMNS = ("train_loss", "test_loss", "population_loss")
OPTIONS = {
    "plain": {},
    "decay+momentum+noise": dict(weight_decay=0.02, momentum=0.5, noise=0.2),
}


def _problem(N, centered, **kw):
    # D = 12: N = 5 < D (the network's own factor) and N = 30 > D + 1 (QR factor)
    base = dict(D=12, P=40, N=N, alpha=1.0, eps=0.5, eta0=0.3, seed=1, test_size=60,
                centered=centered)
    return Problem(**{**base, **kw})


@pytest.mark.parametrize("opts", list(OPTIONS))
@pytest.mark.parametrize("centered", [True, False], ids=["centered", "uncentered"])
@pytest.mark.parametrize("N", [5, 30], ids=["N<D", "N>D+1"])
@pytest.mark.parametrize("sgd", [dict(batch_size=8), dict(batch_size=7),
                                 dict(online=True), dict(online=True, batch_size=5)],
                         ids=["minibatch8", "minibatch7", "online-B=P", "online-B=5"])
def test_reduced_equals_network(sgd, N, centered, opts):
    p = _problem(N, centered, **sgd, **OPTIONS[opts])
    red = solve(p, STEPS, method="gd")
    net = simulate(p, STEPS)
    res = max_relative_deviation(red, net, columns=COLUMNS)
    assert res["n_times"] == len(red.t) and red.t[-1] == STEPS
    assert res["max"] <= LOSS_RTOL, res
    assert red.info["sgd"] == sgd_mode(p) == net.info["sgd"]
    W = net.final_state["W"]
    np.testing.assert_allclose(red.final_state["M"], W.T @ W / N, rtol=0,
                               atol=1e-10 * np.abs(red.final_state["M"]).max())


@pytest.mark.parametrize("sgd", [dict(batch_size=6), dict(online=True, batch_size=9)])
def test_reduced_equals_network_convention_B(sgd):
    p = _problem(5, True, convention="B", eta0=0.2, **sgd)
    res = max_relative_deviation(solve(p, 800, method="gd"), simulate(p, 800), columns=COLUMNS)
    assert res["max"] <= LOSS_RTOL, res


def test_minibatch_rule_is_the_documented_one():
    """Epoch e: perm_e = rng.permutation(P), rng on SeedSequence(seed).spawn(7)[5]; the epoch's
    P // B consecutive slices of B indices, leftovers skipped."""
    p = _problem(5, True, batch_size=7)          # P = 40: 5 batches per epoch, 5 leftovers
    idx = batch_indices(p, 23)
    rng = np.random.default_rng(np.random.SeedSequence(1).spawn(7)[5])
    want = []
    for _ in range(5):
        perm = rng.permutation(40)
        want.extend(perm[j * 7:(j + 1) * 7] for j in range(5))
    np.testing.assert_array_equal(idx, np.array(want[:23]))
    assert idx.shape == (23, 7)
    for e in range(4):                           # no point repeats within an epoch
        assert len(set(idx[5 * e:5 * e + 5].ravel())) == 35
    # the network's own implementation of the rule gives the same run as the explicit sequence
    a = simulate(p, 300)
    b = simulate(p, 300, batches=batch_indices(p, 300))
    for col in COLUMNS:
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))


def test_online_rule_is_the_documented_one():
    """Step t: X_t = standard_normal((B, D)) / sqrt(D), then noise * standard_normal(B), one
    generator on SeedSequence(seed).spawn(7)[6]; labels from the teacher."""
    p = _problem(5, True, online=True, batch_size=4, noise=0.3)
    X, y = online_samples(p, 3)
    d = p.data()
    rng = np.random.default_rng(np.random.SeedSequence(1).spawn(7)[6])
    for t in range(3):
        Xt = rng.standard_normal((4, 12)) * (1.0 / math.sqrt(12))
        yt = 0.5 * (Xt @ d.beta) ** 2 + 0.3 * rng.standard_normal(4)
        np.testing.assert_array_equal(X[t], Xt)
        np.testing.assert_allclose(y[t], yt, rtol=1e-14)
    assert sgd_batch_size(p.replace(batch_size=None)) == p.P     # default B = P
    a = simulate(p, 200)
    b = simulate(p, 200, samples=online_samples(p, 201))
    for col in COLUMNS:
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))


def test_batch_size_at_least_P_is_plain_gd_bit_for_bit():
    p = _problem(30, True, weight_decay=0.01, momentum=0.3)
    gd = solve(p, 400, method="gd")
    for B in (40, 41, 1000):
        q = p.replace(batch_size=B)
        assert sgd_mode(q) is None
        sb = solve(q, 400, method="gd")
        for col in COLUMNS:
            np.testing.assert_array_equal(getattr(sb, col), getattr(gd, col))
        np.testing.assert_array_equal(sb.final_state["F"], gd.final_state["F"])
    # the flow accepts a full batch
    assert solve(p.replace(batch_size=40, momentum=0.0), 50, method="flow").t[-1] == 50


def test_minibatch_train_loss_is_the_full_loss_and_sgd_changes_the_run():
    p = _problem(5, True, batch_size=8)
    tr = solve(p, STEPS, method="gd")
    sys_ = ReducedSystem.build(p)
    _, r = sys_.residuals(tr.final_state["F"])
    assert tr.train_loss[-1] == pytest.approx(float(r @ r) / r.size, rel=1e-12)
    gd = solve(p.replace(batch_size=None), STEPS, method="gd")
    assert abs(tr.test_loss[-1] - gd.test_loss[-1]) > 1e-2 * gd.test_loss[-1]


def test_online_train_loss_is_the_current_batch_loss():
    p = _problem(30, True, online=True, batch_size=6)
    steps = 500
    tr = solve(p, steps, method="gd")
    X, y = online_samples(p, steps + 1)
    sys_ = ReducedSystem.build(p)
    F, z = tr.final_state["F"], tr.final_state["z"]
    Xb = X[steps]
    f = predict(Xb @ F, z, p.alpha, p.eps) - predict(Xb @ sys_.F0, z, p.alpha, p.eps)
    assert tr.train_loss[-1] == pytest.approx(float(np.mean((f - y[steps]) ** 2)), rel=1e-10)


@pytest.mark.parametrize("sgd", [dict(batch_size=8), dict(online=True)])
def test_flow_raises_one_line(sgd):
    with pytest.raises(ProblemError) as exc:
        solve(_problem(5, True, **sgd), 10, method="flow")
    assert "\n" not in str(exc.value) and "SGD" in str(exc.value)


def test_batch_indices_needs_a_minibatch_problem():
    for kw in (dict(), dict(batch_size=40), dict(online=True, batch_size=4)):
        with pytest.raises(ProblemError):
            batch_indices(_problem(5, True, **kw), 3)
    it = iter_batch_indices(_problem(5, True, batch_size=40 - 1))   # one batch per epoch
    assert len(next(it)) == 39


@pytest.mark.parametrize("sgd", [dict(batch_size=8), dict(online=True, batch_size=8)])
def test_divergence_is_detected(sgd):
    p = _problem(5, True, eta0=40.0, **sgd)
    with pytest.raises(DivergenceError) as exc:
        solve(p, 2000, method="gd")
    assert "diverged at step" in str(exc.value)
    with pytest.raises(NetworkDivergence):
        simulate(p, 2000)


def test_online_sgd_small_step_limit_is_the_population_ode():
    """N = inf online SGD, time t in GD steps at the same eta0 as population() (both use
    dF/dt = -(eta0/alpha)(...) per step), over eta0 t = 22.6 (three half-times of the ODE).
    Gap = max_t |L_sgd(t) - L_ode(t)| / L(0), averaged over 8 seeds.  It scales like
    sqrt(eta0 / B) (SGD noise); measured 0.066, 0.029, 0.018 (B = 20) and 0.029, 0.018,
    0.0066 (B = 80) for eta0 = 0.1, 0.025, 0.00625."""
    T = 22.6
    gaps = {}
    for B in (20, 80):
        for eta0 in (0.1, 0.025, 0.00625):
            g = []
            for seed in range(8):
                p = Problem(D=10, P=20, N="inf", alpha=1.0, eps=0.5, eta0=eta0, seed=seed,
                            test_size=50, online=True, batch_size=B)
                steps = int(round(T / eta0))
                sg = solve(p, steps, method="gd")
                ode = population(p.replace(online=False, batch_size=None), steps, method="scalar")
                assert np.array_equal(sg.t, ode.t)
                L0 = ode.population_loss[0]
                assert sg.population_loss[0] == pytest.approx(L0, rel=1e-12)
                g.append(np.max(np.abs(sg.population_loss - ode.population_loss)) / L0)
            gaps[B, eta0] = float(np.mean(g))
    for B in (20, 80):
        assert gaps[B, 0.1] > 1.3 * gaps[B, 0.025] > 1.3 ** 2 * gaps[B, 0.00625], gaps
    for eta0 in (0.1, 0.025, 0.00625):
        assert gaps[80, eta0] < 0.75 * gaps[20, eta0], gaps
    assert gaps[80, 0.00625] < 0.01, gaps
    # not vacuous: the loss falls by > 5x over the window
    assert ode.population_loss[-1] < 0.2 * ode.population_loss[0]


@pytest.mark.parametrize("sgd", [dict(batch_size=8), dict(online=True, batch_size=5),
                                 dict(momentum=0.5)])
def test_early_stop_is_the_full_run_cut(sgd):
    """solve(stop=tol) for heavy ball and SGD: the full trajectory cut at the first save time
    with train and test loss both under tol, bit for bit (what the sweeps did post hoc)."""
    p = Problem(D=6, P=80, N=30, alpha=1.0, eps=1.0, eta0=0.3, seed=1, test_size=60, **sgd)
    full = solve(p, 4000, method="gd")
    tol = 1e-2
    hit = np.flatnonzero((full.train_loss < tol) & (full.test_loss < tol))
    assert hit.size and hit[0] + 1 < len(full.t)
    cut = solve(p, 4000, method="gd", stop=tol)
    assert len(cut.t) == hit[0] + 1 and cut.info["stopped_at"] == cut.t[-1]
    for col in ("t",) + full.columns:
        np.testing.assert_array_equal(cut[col], full[col][:len(cut.t)])
    assert cut.info.get("sgd") == full.info.get("sgd")


def test_batches_follow_the_documented_streams():
    """The loop's batch source: the training rows of ``batch_indices`` (minibatch), the
    ``online_samples`` in convention-A units with f0 of W0 (online), the training set (GD)."""
    p = _problem(5, True, batch_size=7)
    sys_ = ReducedSystem.build(p)
    b = Batches(sys_)
    assert (b.mode, b.size, b.loss_is_train) == ("minibatch", 7, False)
    for idx in batch_indices(p, 12):
        X, y, f0 = next(b)
        np.testing.assert_array_equal(X, sys_.X[idx])
        np.testing.assert_array_equal(y, sys_.y[idx])
        np.testing.assert_array_equal(f0, sys_.f0[idx])
    q = _problem(5, True, online=True, batch_size=4, convention="B")
    sys_q = ReducedSystem.build(q)
    b = Batches(sys_q, q.data())
    assert (b.mode, b.size, b.loss_is_train) == ("online", 4, True)
    Xs, ys = online_samples(q, 5)
    for Xr, yr in zip(Xs, ys):
        X, y, f0 = next(b)
        np.testing.assert_array_equal(X, Xr * q.input_scale)
        np.testing.assert_array_equal(y, yr)
        np.testing.assert_array_equal(f0, predict(X @ sys_q.F0, sys_q.z, q.alpha, q.eps))
    g = Batches(ReducedSystem.build(_problem(5, True, batch_size=40)))
    assert (g.mode, g.size, g.loss_is_train) == (None, 40, True)
