"""Richness measures and structured inits (issue 17): the reduced dynamics equals the numpy
network (<= 1e-8 relative) for every init family and every measure, at N < D, N > D and N = inf
(against the "+-" network with exact mean 0 and second moment Sigma), with the package's factor
and the rank-revealing one; the sigma collapse is exact.

The runs stop well before a centered low-rank init leaves its plateau by round-off
(docs/init_structure.md §3.5): there the network and the exact-rank reduced dynamics part ways
by design.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lazyrich_theory import CORE_COLUMNS, Problem, solve
from lazyrich_theory.core import richness
from lazyrich_theory.core.reduced import ReducedSystem, initial_factor
from lazyrich_theory.core.richness import (
    RICHNESS_COLUMNS,
    RepresentationAlignment,
    network_frame,
    representation_gram_gaussian,
    tangent_kernel_alignment,
)
from lazyrich_theory.core.stepping import run_steps
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.inits import make_init
from lazyrich_theory.spec.schedule import save_times
from lazyrich_validation import max_relative_deviation, simulate
from lazyrich_validation.richness import (
    network_ntk,
    plus_minus_weights,
    representation_alignment,
    tangent_kernel,
)

D, P, T, STEPS = 20, 80, 60, 1000
COLUMNS = CORE_COLUMNS + RICHNESS_COLUMNS
RTOL = 1e-8


@dataclasses.dataclass(frozen=True, eq=False)
class DataM0(ProblemData):
    """ProblemData with an N = inf init covariance (what the wiring patch adds as a field)."""

    M0: np.ndarray | None = None


@pytest.fixture(scope="module")
def base():
    p = Problem(D=D, P=P, N=math.inf, alpha=1.0, eps=0.5, eta0=1.0, test_size=T, seed=11)
    return p, p.data()


def _data(d, W0=None, M0=None):
    return DataM0(d.X, d.y, d.X_test, d.y_test, d.beta, W0, M0=M0)


def _W0(d, N, spec, scale=1.0):
    rng = np.random.default_rng(np.random.SeedSequence(11).spawn(4)[3])
    return make_init(rng, D, N, d.beta, spec, scale)


def _worst(a, b, columns=COLUMNS):
    """Max relative deviation over ``columns``; entries near zero (a column's |value| below
    1e-12 of its max) are compared in absolute terms."""
    worst = 0.0
    for c in columns:
        x, y = np.asarray(a[c]), np.asarray(b[c])
        scale = max(np.max(np.abs(x)), np.max(np.abs(y)), 1e-300)
        den = np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-12 * scale)
        worst = max(worst, float(np.max(np.abs(x - y) / den)))
    return worst


class _Rows(dict):
    """Columns of ``run_steps`` rows, by name."""


def _reduced_rows(problem, data, **build_kw):
    system = ReducedSystem.build(problem, data, **build_kw)
    run = run_steps(system, save_times(STEPS))
    return _Rows(zip([*CORE_COLUMNS, *system.observers], run.rows.T)), system, run


# ------------------------------------------------------------------------ finite N
@pytest.mark.parametrize("N", [5, 60])
@pytest.mark.parametrize("spec,centered", [("iid", True), ("iid", False), ("lowrank:3", True),
                                           ("aligned:2:0.7", True), ("powerlaw:1", True)])
def test_reduced_equals_network_for_every_init_and_measure(base, N, spec, centered):
    p0, d0 = base
    p = p0.replace(N=N, centered=centered)
    d = _data(d0, W0=_W0(d0, N, spec))
    net = simulate(p, STEPS, data=d)
    red = solve(p, STEPS, method="gd", data=d)
    assert set(RICHNESS_COLUMNS) <= set(red.columns) and set(RICHNESS_COLUMNS) <= set(net.columns)
    assert _worst(red, net) < RTOL
    for exact_rank in (False, True):          # the package's factor and the exact-rank one
        rows, _, _ = _reduced_rows(p, d, rank_revealing=exact_rank)
        assert _worst(rows, net) < RTOL
    assert net["weight_change"][0] == 0.0 and net["tangent_kernel_alignment"][0] == pytest.approx(1.0)
    assert net["weight_change"][-1] > 0.3                        # the runs do leave the init


def test_rank_revealing_factor_is_exact_rank_and_rebuilds_W(base):
    """lowrank:3 at N = 60 > D + 1: r = rank [W0 1] = 4 columns, and W(t) = sqrt(N) Q F(t)^T."""
    p0, d0 = base
    p = p0.replace(N=60)
    W0 = _W0(d0, 60, "lowrank:3")
    d = _data(d0, W0=W0)
    _, system, run = _reduced_rows(p, d, rank_revealing=True)
    assert system.F0.shape[1] == 4
    Q = network_frame(W0, system.F0, system.c)
    np.testing.assert_allclose(Q.T @ Q, np.eye(4), atol=1e-12)
    W = simulate(p, STEPS, data=d).final_state["W"]
    assert np.linalg.norm(math.sqrt(60) * Q @ run.F.T - W) < 1e-10 * np.linalg.norm(W)
    # the package's factor keeps D + 1 columns; build detects the low rank by itself, and an
    # iid W0 keeps the package's factor bit for bit
    F0, c, z = initial_factor(W0, D)
    assert F0.shape[1] == D + 1
    assert np.array_equal(ReducedSystem.build(p, d).F0, system.F0)
    W1 = _W0(d0, 60, "iid")
    assert np.array_equal(ReducedSystem.build(p, _data(d0, W0=W1)).F0, initial_factor(W1, D)[0])
    assert ReducedSystem.build(p, d, rank_revealing=False).F0.shape[1] == D + 1


@pytest.mark.parametrize("N", [5, 60])
def test_representation_alignment_finite_width(base, N):
    p0, d0 = base
    p = p0.replace(N=N)
    W0 = _W0(d0, N, "aligned:2:0.7")
    d = _data(d0, W0=W0)
    times = [0, 10, 100, 500]
    obs = {"representation_alignment": RepresentationAlignment(W0)}
    red = solve(p, 500, method="gd", data=d, save_times=times, observers=obs)
    net = simulate(p, 500, data=d, save_times=times)
    W_final = net.final_state["W"]
    ra_net = representation_alignment(p, W_final, W0, d.X)
    assert abs(red["representation_alignment"][-1] - ra_net) < 1e-10 * ra_net
    with pytest.raises(Exception, match="needs W0"):
        solve(p, 5, method="gd", data=d, observers={"representation_alignment": RepresentationAlignment()})


# ------------------------------------------------------------------------ N = inf
@pytest.mark.parametrize("spec", ["iid", "lowrank:3", "aligned:2:0.7", "powerlaw:1"])
@pytest.mark.parametrize("centered", [True, False])
def test_infinite_width_equals_the_plus_minus_network(base, spec, centered):
    p0, d0 = base
    p = p0.replace(centered=centered)
    Sigma = make_init(np.random.default_rng(7), D, math.inf, d0.beta, spec)
    red = solve(p, STEPS, method="gd", data=_data(d0, M0=Sigma))
    Wpm = plus_minus_weights(Sigma)
    assert np.allclose(Wpm.mean(0), 0, atol=1e-14)
    np.testing.assert_allclose(Wpm.T @ Wpm / Wpm.shape[0], Sigma, atol=1e-12)
    net = simulate(p.replace(N=Wpm.shape[0]), STEPS, data=_data(d0, W0=Wpm))
    assert _worst(red, net) < RTOL


def test_infinite_width_default_is_the_identity_factor(base):
    p0, d0 = base
    a = ReducedSystem.build(p0, d0)
    b = ReducedSystem.build(p0, _data(d0, M0=np.eye(D)))
    assert a.F0.shape == (D, D + 1) and np.array_equal(a.M0, b.M0)


def test_gaussian_representation_gram_is_exact():
    """(2.4) = the Gaussian expectation, by 2-D Gauss–Hermite quadrature (exact for degree 4)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 6)) / math.sqrt(6)
    A = rng.standard_normal((6, 6))
    wbar = 0.3 * rng.standard_normal(6)
    M = A @ A.T / 6 + np.outer(wbar, wbar)
    eps = 0.7
    R = representation_gram_gaussian(X, wbar, M, eps)
    x, w = np.polynomial.hermite_e.hermegauss(5)
    w = w / w.sum()
    for a, b in [(0, 1), (2, 2), (1, 3)]:
        m = np.array([X[a] @ wbar, X[b] @ wbar])
        C = np.array([[X[a] @ M @ X[a], X[a] @ M @ X[b]], [X[b] @ M @ X[a], X[b] @ M @ X[b]]])
        lam, V = np.linalg.eigh(C - np.outer(m, m))
        L = V * np.sqrt(np.clip(lam, 0, None))
        h = m[None, None, :] + np.einsum("ij,abj->abi", L, np.stack(np.meshgrid(x, x, indexing="ij"), -1))
        ph = h + 0.5 * eps * h * h
        quad = float(np.sum(w[:, None] * w[None, :] * ph[..., 0] * ph[..., 1]))
        assert abs(quad - R[a, b]) < 1e-12 * abs(R[a, b])


# ------------------------------------------------------------------------ kernels
def test_network_ntk_as_neuron_sum_equals_the_explicit_jacobian(base):
    p0, d0 = base
    for conv in ("A", "B"):
        p = p0.replace(N=7, convention=conv)
        W = _W0(d0, 7, "powerlaw:1")
        a = np.random.default_rng(0).standard_normal(7)
        K1, K2 = tangent_kernel(p, W, d0.X, a), network_ntk(p, W, d0.X, a=a)
        assert np.max(np.abs(K1 - K2)) < 1e-13 * np.max(np.abs(K2))


def test_blocked_alignment_equals_the_cached_one(base, monkeypatch):
    p0, d0 = base
    system = ReducedSystem.build(p0.replace(N=9), _data(d0, W0=_W0(d0, 9, "iid")))
    F = system.F0 + 0.1 * np.random.default_rng(1).standard_normal(system.F0.shape)
    cached = richness.TangentKernelAlignment()(system, F)
    monkeypatch.setattr(richness, "_CACHE_P", 10)
    monkeypatch.setattr(richness, "_BLOCK", 7)
    blocked = richness.TangentKernelAlignment()(system, F)
    plain = tangent_kernel_alignment(system.X, F, system.F0, system.z, p0.eps)
    assert abs(cached - blocked) < 1e-14 and abs(cached - plain) < 1e-14 and cached < 1.0


def test_init_info_reports_the_init(base):
    p0, d0 = base
    info = ReducedSystem.build(p0.replace(N=60), _data(d0, W0=_W0(d0, 60, "lowrank:3")),
                               rank_revealing=True).init_info()
    assert info["init"] == "iid"          # the Problem field arrives with the wiring patch
    assert info["rank"] == 3 and info["factor_rank"] == 4
    assert info["participation_ratio"] <= 3 + 1e-12
    Sigma = make_init(np.random.default_rng(7), D, math.inf, d0.beta, "aligned:2:1")
    info = ReducedSystem.build(p0, _data(d0, M0=Sigma)).init_info()
    assert info["task_overlap_rel"] == pytest.approx(D / 2) and info["factor_rank"] == 3


# ------------------------------------------------------------------------ sigma collapse
def test_init_scale_collapse_is_exact(base):
    """(sigma, alpha, eps, eta0) == (1, sigma alpha, sigma eps, eta0), every column; the
    paper's joint sweep (readouts x sigma, alpha_p = 1/sigma^2, eta_p = eta0 N / sigma^2) ==
    (1, 1, sigma eps, eta0 / sigma^4); equal sigma^2 alpha at equal eps is not equivalent."""
    p0, d0 = base
    p = p0.replace(N=30)
    W0 = _W0(d0, 30, "iid")
    run = lambda W, **kw: solve(p.replace(**kw), 600, method="gd", data=_data(d0, W0=W))  # noqa: E731
    for sigma in (0.5, 3.0):
        a = run(sigma * W0, alpha=1.0, eps=0.5)
        b = run(W0, alpha=sigma, eps=0.5 * sigma)
        assert _worst(a, b, ("train_loss", "test_loss", "population_loss") + RICHNESS_COLUMNS) < 1e-11
    for sigma in (math.sqrt(2.0), 3.0):
        joint = run(sigma * W0, alpha=1.0 / sigma, eps=0.5, eta0=1.0 / sigma ** 4)
        equiv = run(W0, alpha=1.0, eps=0.5 * sigma, eta0=1.0 / sigma ** 4)
        assert _worst(joint, equiv, ("train_loss", "test_loss") + RICHNESS_COLUMNS) < 1e-11
        naive = run(sigma * W0, alpha=1.0 / sigma, eps=0.5)
        ref = run(W0, alpha=1.0, eps=0.5)
        assert max_relative_deviation(naive, ref, ("test_loss",))["max"] > 1e-2
