"""Kernels and alignment diagnostics (lazyrich_theory.kernels) against independent references:
finite-difference Jacobians of the numpy network, validation.network_ntk, dense-matrix
transcriptions of each alignment formula, and the network trained by validation.simulate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazyrich_theory import Problem, solve
from lazyrich_theory.core.kernels import (
    centered_kernel_alignment,
    kernel_alignment,
    kernel_diagnostics,
    kernel_drift,
    kernel_observers,
    ntk,
    ntk_scale,
    ntk_tilde,
    ntk_tilde_infinite,
    ntk_tilde_stats,
    paper_kernel_alignment,
    state_ntk,
    target_alignment,
    target_power_fraction,
)
from lazyrich_theory.core.reduced import ReducedSystem, initial_factor
from lazyrich_validation import network_ntk, simulate
from lazyrich_validation.network import forward


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _fd_ntk(p: Problem, W, X, X2):
    """NTK from a central-difference Jacobian of the network's forward pass (exact up to
    round-off: f is quadratic in W)."""
    h = 1e-3
    J1, J2 = [], []
    for idx in np.ndindex(*W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        J1.append((forward(p, W + E, X) - forward(p, W - E, X)) / (2 * h))
        J2.append((forward(p, W + E, X2) - forward(p, W - E, X2)) / (2 * h))
    return np.array(J1).T @ np.array(J2)


# ------------------------------------------------------------------ NTK formula
@pytest.mark.parametrize("convention", ["A", "B"])
@pytest.mark.parametrize("N", [5, 30])
def test_ntk_equals_network_jacobian(convention, N):
    p = Problem(D=8, P=20, N=N, alpha=1.3, eps=0.7, eta0=1.0, seed=1, test_size=15,
                convention=convention)
    d = p.data()
    rng = np.random.default_rng(5)
    W = d.W0 + 0.4 * rng.standard_normal(d.W0.shape) + 0.3   # a generic state, wbar != 0
    F, c, z = initial_factor(W, p.D)
    s = p.input_scale
    K = ntk(d.X * s, F, z, p.eps, p.alpha, N)
    Kx = ntk(d.X_test * s, F, z, p.eps, p.alpha, N, d.X * s)
    # validation's explicit-Jacobian NTK (stored units, w.r.t. W only)
    assert _rel(K, network_ntk(p, W, d.X)) < 1e-12
    assert _rel(Kx, network_ntk(p, W, d.X_test, d.X)) < 1e-12
    # finite differences of the forward pass
    assert _rel(Kx, _fd_ntk(p, W, d.X_test, d.X)) < 1e-9
    # width-free form: eta K = eta0 Ktilde
    eta = p.eta0 * N / p.alpha**2
    np.testing.assert_allclose(eta * K, p.eta0 * ntk_tilde(d.X * s, F, z, p.eps), rtol=1e-13)
    # (wbar, M) form
    wbar, M = W.mean(0), W.T @ W / N
    assert _rel(ntk_tilde_stats(d.X_test * s, wbar, M, p.eps, d.X * s),
                ntk_tilde(d.X_test * s, F, z, p.eps, d.X * s)) < 1e-13
    assert ntk_scale(p.alpha, N) == pytest.approx(p.alpha**2 / N)


@pytest.mark.parametrize("convention", ["A", "B"])
def test_state_ntk_at_init_matches_network(convention):
    p = Problem(D=8, P=20, N=30, alpha=0.7, eps=0.4, seed=2, test_size=12, convention=convention)
    d = p.data()
    sys = ReducedSystem.build(p, d)
    scale = p.alpha**2 / p.N
    assert _rel(scale * state_ntk(sys), network_ntk(p, d.W0, d.X)) < 1e-12
    assert _rel(scale * state_ntk(sys, which="test"), network_ntk(p, d.W0, d.X_test)) < 1e-12
    assert _rel(scale * state_ntk(sys, which="test_train"),
                network_ntk(p, d.W0, d.X_test, d.X)) < 1e-12
    np.testing.assert_allclose(state_ntk(sys, which="test_train", true=True),
                               network_ntk(p, d.W0, d.X_test, d.X), rtol=1e-12)
    with pytest.raises(ValueError):
        state_ntk(sys, which="nope")


def test_infinite_width_kernel():
    rng = np.random.default_rng(0)
    D, eps = 10, 0.3
    X = rng.standard_normal((25, D)) / math.sqrt(D)
    G = X @ X.T
    ref = G + eps**2 * G**2                      # (x.x') + eps^2 (x.x')^2
    np.testing.assert_allclose(ntk_tilde_infinite(X, eps), ref, rtol=1e-14)
    F0, c, z = initial_factor(None, D)
    np.testing.assert_allclose(ntk_tilde(X, F0, z, eps), ref, rtol=1e-14)
    sys = ReducedSystem.build(Problem(D=D, P=25, N=math.inf, eps=eps, seed=1, test_size=5))
    np.testing.assert_allclose(state_ntk(sys), ntk_tilde_infinite(sys.X, eps), rtol=1e-14)
    with pytest.raises(ValueError):
        ntk(X, F0, z, eps, 1.0, math.inf)
    with pytest.raises(ValueError):
        state_ntk(sys, true=True)


def test_ntk_large_N_converges_to_infinite_width_kernel():
    # K0(x, x') -> (alpha^2/N)[(x.x') + eps^2 (x.x')^2] (docs/theory.md §6.1): error O(N^-1/2)
    p = Problem(D=6, P=10, N=40000, eps=0.5, seed=4, test_size=5)
    sys = ReducedSystem.build(p)
    err = _rel(state_ntk(sys), ntk_tilde_infinite(sys.X, p.eps))
    assert err < 0.05


# ------------------------------------------------------------------ alignments
def _H(n):
    return np.eye(n) - np.ones((n, n)) / n


def _psd(n, rng, rank=None):
    A = rng.standard_normal((n, rank or n))
    return A @ A.T


def test_paper_alignment_is_one_sided_cka():
    rng = np.random.default_rng(1)
    n = 30
    K, y = _psd(n, rng) + 2.0, rng.standard_normal(n) + 1.5
    H = _H(n)
    yc = H @ y
    # literal reading of the authors' kalignment: K_c = K - K.mean(axis=0), one-sided
    Kc = H @ K
    ref = (yc @ Kc @ yc) / (np.linalg.norm(Kc) * (yc @ yc))
    assert paper_kernel_alignment(K, y) == pytest.approx(ref, rel=1e-13)
    # standard CKA with the target kernel, dense H K H
    KcKc = H @ K @ H
    Yc = H @ np.outer(y, y) @ H
    std = np.sum(KcKc * Yc) / (np.linalg.norm(KcKc) * np.linalg.norm(Yc))
    assert centered_kernel_alignment(K, np.outer(y, y)) == pytest.approx(std, rel=1e-13)
    assert target_alignment(K, y) == pytest.approx(std, rel=1e-12)
    # the one-sided normalisation is larger (||HK|| >= ||HKH||): paper value <= standard CKA
    assert paper_kernel_alignment(K, y) < target_alignment(K, y)
    # K = y y^T: standard CKA is 1, the paper's one-sided version only |y_c| / |y|
    yy = np.outer(y, y)
    assert target_alignment(yy, y) == pytest.approx(1.0, rel=1e-12)
    assert paper_kernel_alignment(yy, y) == pytest.approx(np.linalg.norm(yc) / np.linalg.norm(y),
                                                          rel=1e-12)
    # invariances of CKA: scale, additive constant
    K2 = _psd(n, rng)
    a = centered_kernel_alignment(K, K2)
    assert centered_kernel_alignment(3.0 * K + 7.0, K2) == pytest.approx(a, rel=1e-12)
    assert 0.0 <= a <= 1.0


def test_kernel_drift_and_target_power():
    rng = np.random.default_rng(2)
    n = 25
    K0 = _psd(n, rng)
    K = K0 + 0.1 * _psd(n, rng)
    assert kernel_drift(K, K0) == pytest.approx(np.linalg.norm(K - K0) / np.linalg.norm(K0))
    assert kernel_drift(K0, K0) == 0.0
    y = rng.standard_normal(n)
    lam, V = np.linalg.eigh(K)
    proj = (V[:, ::-1].T @ y) ** 2 / (y @ y)          # descending eigenvalues
    curve = target_power_fraction(K, y)
    np.testing.assert_allclose(curve, np.cumsum(proj), rtol=1e-12)
    assert curve[-1] == pytest.approx(1.0, rel=1e-12)
    assert target_power_fraction(K, y, 3) == pytest.approx(proj[:3].sum(), rel=1e-12)
    np.testing.assert_allclose(target_power_fraction(K, y, [1, 5], eig=(lam, V)),
                               np.cumsum(proj)[[0, 4]], rtol=1e-12)
    # a kernel dominated by y y^T puts the target in its top eigenvector
    assert target_power_fraction(100 * np.outer(y, y) + K0, y, 1) > 0.99
    with pytest.raises(ValueError):
        target_power_fraction(K, y, 0)


# ------------------------------------------------------------------ state level, vs network
@pytest.mark.parametrize("N", [3, 30])
def test_kernel_alignment_along_training_matches_network(N):
    p = Problem(D=10, P=30, N=N, alpha=1.0, eps=0.5, eta0=1.0, seed=6, test_size=40)
    d = p.data()
    steps = 300
    tr = solve(p, steps, method="gd", data=d, observers=kernel_observers(
        ["kernel_alignment", "kernel_alignment_train", "cka_target", "kernel_drift",
         "target_power_top5"], k=5))
    net = simulate(p, steps, data=d)
    W, W0 = net.final_state["W"], d.W0
    sys = ReducedSystem.build(p, d)
    F = tr.final_state["F"]
    Kt = network_ntk(p, W, d.X_test)            # true K at the final network state
    K, K0 = network_ntk(p, W, d.X), network_ntk(p, W0, d.X)
    ref = paper_kernel_alignment(Kt, d.y_test)
    assert kernel_alignment(sys, F) == pytest.approx(ref, rel=1e-9)
    assert tr["kernel_alignment"][-1] == pytest.approx(ref, rel=1e-9)
    assert tr["kernel_alignment_train"][-1] == pytest.approx(paper_kernel_alignment(K, d.y),
                                                             rel=1e-9)
    assert tr["cka_target"][-1] == pytest.approx(target_alignment(K, d.y), rel=1e-9)
    assert tr["kernel_drift"][-1] == pytest.approx(kernel_drift(K, K0), rel=1e-8)
    assert abs(tr["kernel_drift"][0]) < 1e-14  # K(0) from the factor F0 vs K0: round-off only
    assert tr["target_power_top5"][-1] == pytest.approx(target_power_fraction(K, d.y, 5),
                                                        rel=1e-8)
    # the alignment moves during training (feature learning), and all diagnostics agree
    assert abs(tr["kernel_alignment"][-1] - tr["kernel_alignment"][0]) > 1e-3
    diag = kernel_diagnostics(sys, F, k=5)
    assert diag["kernel_alignment"] == pytest.approx(ref, rel=1e-9)
    assert diag["cka_target_test"] == pytest.approx(target_alignment(Kt, d.y_test), rel=1e-9)
    assert diag["kernel_drift"] == pytest.approx(kernel_drift(K, K0), rel=1e-8)
    assert set(diag) == {"kernel_alignment", "kernel_alignment_train", "cka_target",
                         "cka_target_test", "kernel_drift", "target_power_top5"}
    with pytest.raises(ValueError):
        kernel_observers(["bogus"])
