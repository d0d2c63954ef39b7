"""Closed forms vs Monte Carlo: the population loss decomposition and the Wick identities."""
import math

import numpy as np
import pytest

from lazyrich_theory import Problem
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.statistics import decomposition, diagnostics, wick_terms


@pytest.mark.parametrize("centered", [True, False])
@pytest.mark.parametrize("convention", ["A", "B"])
def test_population_loss_matches_monte_carlo(centered, convention):
    rng = np.random.default_rng(0)
    p = Problem(D=15, P=20, N=7, alpha=1.3, eps=0.4, seed=5, test_size=10, centered=centered,
                convention=convention)
    sysm = ReducedSystem.build(p)
    # move the state somewhere generic (a random affine map of the neurons)
    F = sysm.F0 + 0.3 * rng.standard_normal(sysm.F0.shape)
    wbar, M = F @ sysm.z, F @ F.T
    ref = (sysm.wbar0, sysm.M0) if centered else (np.zeros(15), np.zeros((15, 15)))
    terms = decomposition(wbar, M, *ref, sysm.beta, p.alpha, p.eps, p.tau)
    n = 400_000
    x = rng.standard_normal((n, 15)) / math.sqrt(15)
    f = p.alpha * (x @ wbar) + 0.5 * p.alpha * p.eps * np.einsum("ij,jk,ik->i", x, M, x)
    f0 = p.alpha * (x @ sysm.wbar0) + 0.5 * p.alpha * p.eps * np.einsum("ij,jk,ik->i", x, sysm.M0, x)
    y = p.tau * (x @ sysm.beta) ** 2
    e2 = (f - (f0 if centered else 0.0) - y) ** 2
    mc, se = e2.mean(), e2.std() / math.sqrt(n)
    assert abs(sum(terms) - mc) < 4 * se, (sum(terms), mc, se)
    assert min(terms) >= 0


def test_wick_identities_monte_carlo():
    rng = np.random.default_rng(1)
    D, n = 6, 1_000_000
    A = rng.standard_normal((D, D)); A = A + A.T
    x = rng.standard_normal((n, D)) / math.sqrt(D)
    q = np.einsum("ij,jk,ik->i", x, A, x)
    assert q.mean() == pytest.approx(np.trace(A) / D, abs=4 * q.std() / math.sqrt(n))
    m2 = (np.trace(A) ** 2 + 2 * np.trace(A @ A)) / D**2
    assert (q**2).mean() == pytest.approx(m2, rel=0.01)
    third = np.einsum("i,ij,ik->jk", q, x, x) / n
    np.testing.assert_allclose(third, (np.trace(A) * np.eye(D) + 2 * A) / D**2, atol=0.01 * np.abs(m2))


def test_uncentered_terms_equal_paper_t1_t2_t3():
    """The paper's code: t1 = (tr A/(2D))^2, t2 = ½||A||_F^2/D^2, t3 = alpha^2|wbar|^2/D with
    A = alpha eps M - beta beta^T (convention A)."""
    rng = np.random.default_rng(2)
    D, alpha, eps = 9, 0.7, 0.3
    W = rng.standard_normal((4, D))
    wbar, M, beta = W.mean(0), W.T @ W / 4, rng.standard_normal(D)
    var, mis, lin = decomposition(wbar, M, np.zeros(D), np.zeros((D, D)), beta, alpha, eps, 0.5)
    A = alpha * eps * M - np.outer(beta, beta)
    assert var == pytest.approx((np.trace(A) / (2 * D)) ** 2, rel=1e-12)
    assert mis == pytest.approx(0.5 * np.sum(A**2) / D**2, rel=1e-12)
    assert lin == pytest.approx(alpha**2 * wbar @ wbar / D, rel=1e-12)


def test_diagnostics_relative_to_init():
    rng = np.random.default_rng(3)
    D = 5
    M0 = np.eye(D); M = M0 + 2.0 * np.outer(np.ones(D), np.ones(D)) / D
    beta = np.ones(D) * 3.0
    al, tr, fro, nw = diagnostics(np.ones(D), M, np.zeros(D), M0, beta)
    assert al == pytest.approx(2.0) and tr == pytest.approx(2.0 / D)
    assert fro == pytest.approx(2.0) and nw == pytest.approx(math.sqrt(D))


def test_wick_terms_is_the_one_formula_behind_decomposition():
    """decomposition = wick_terms(|v|^2, tr Delta, tr Delta^2, D), bit for bit, and wick_terms
    works elementwise on arrays (as the linearised model uses it)."""
    rng = np.random.default_rng(4)
    D, alpha, eps, tau = 7, 1.3, 0.4, 0.5
    wbar, beta = rng.standard_normal(D), rng.standard_normal(D)
    M = rng.standard_normal((D, D)); M = M @ M.T
    v = alpha * wbar
    Delta = 0.5 * alpha * eps * M - tau * np.outer(beta, beta)
    ref = wick_terms(float(v @ v), np.trace(Delta), float(np.sum(Delta * Delta)), D)
    assert decomposition(wbar, M, np.zeros(D), np.zeros((D, D)), beta, alpha, eps, tau) == ref
    arr = wick_terms(np.array([1.0, 2.0]), np.array([3.0, -1.0]), np.array([5.0, 0.5]), 4)
    np.testing.assert_allclose(arr, [[9 / 16, 1 / 16], [10 / 16, 1 / 16], [1 / 4, 2 / 4]])
