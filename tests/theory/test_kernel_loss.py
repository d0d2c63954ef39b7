"""The exact population loss of a kernel expansion (lazyrich_theory.theory.kernel_loss) is the
Wick formula of core.statistics at the expansion's own statistics; the linearised model built
from arrays (initial_infinite_width) equals the one built from a Problem."""

import numpy as np
import pytest

from lazyrich_theory import Problem
from lazyrich_theory.core.kernels import ntk_tilde_infinite
from lazyrich_theory.core.statistics import population_loss
from lazyrich_theory.theory.asymptotics import linearized_curves_exact, sample_data
from lazyrich_theory.theory.kernel_loss import KernelExpansionLoss
from lazyrich_theory.theory.lazy import LinearizedModel


def test_initial_expansion_loss_is_the_statistics_population_loss():
    """sum_mu a_mu Ktilde0(x, x_mu) = v.x + x^T M x with v = X^T a, M = eps^2 X^T diag(a) X:
    its loss against tau (beta.x)^2 is statistics.population_loss(v, M, 0, 0, beta, alpha=1,
    eps=2, tau) (alpha eps / 2 = 1)."""
    rng = np.random.default_rng(0)
    X, beta = sample_data(9, 2.0, seed=1)
    eps, tau = 0.7, 0.5
    loss = KernelExpansionLoss.initial_infinite_width(X, beta, eps, tau)
    A = rng.standard_normal((3, X.shape[0]))
    D = X.shape[1]
    for a in A:
        v, M = X.T @ a, eps**2 * (X.T * a) @ X
        ref = population_loss(v, M, np.zeros(D), np.zeros((D, D)), beta, 1.0, 2.0, tau)
        assert loss(a) == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(loss(A), [loss(a) for a in A], rtol=1e-14)
    # coordinates a = V u give the same numbers
    V = np.linalg.qr(rng.standard_normal((X.shape[0], X.shape[0])))[0]
    np.testing.assert_allclose(loss.value(loss.project(V), A @ V), loss(A), rtol=1e-11)


@pytest.mark.parametrize("convention", ["A", "B"])
def test_linearized_model_from_arrays_equals_from_problem(convention):
    p = Problem(D=10, P=30, N="inf", alpha=0.8, eps=0.4, eta0=1.5, seed=2, test_size=5,
                convention=convention)
    d = p.data()
    X = d.X * p.input_scale
    t = np.array([0, 1, 7, 60, 500, 10**6])
    ref = LinearizedModel.from_problem(p, d).curves(t, "gd", test=False)
    mine = LinearizedModel.initial_infinite_width(X, d.beta, p.eps, p.eta0, p.tau)
    lam = np.linalg.eigvalsh(ntk_tilde_infinite(X, p.eps))[::-1]
    np.testing.assert_allclose(mine.eigenvalues, lam, rtol=1e-10, atol=1e-14)
    cur = mine.curves(t, "gd", test=False)
    np.testing.assert_allclose(cur.train_loss, ref.train_loss, rtol=1e-10)
    np.testing.assert_allclose(cur.population_loss, ref.population_loss, rtol=1e-10)
    if convention == "A":       # tau = 1/2: the asymptotics' exact reference is this model
        ex = linearized_curves_exact(X, d.beta, p.eps, p.eta0, t)
        np.testing.assert_allclose(ex["test_loss"], ref.population_loss, rtol=1e-10)
        np.testing.assert_allclose(ex["train_loss"], ref.train_loss, rtol=1e-10)


def test_fractional_gd_times_only_when_asked():
    X, beta = sample_data(8, 3.0, seed=3)
    m = LinearizedModel.initial_infinite_width(X, beta, 0.3, 1.0)
    with pytest.raises(ValueError):
        m.curves([1.5], "gd")
    a = m.curves([1.0, 1.5, 2.0], "gd", whole_steps=False).train_loss
    assert a[0] > a[1] > a[2]
