"""Integrators: RKC2 and Dormand–Prince against exact solutions and scipy's reference solvers,
and the reduced flow's spectral-radius bound against the Jacobian."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lazyrich_theory import Problem, solve
from lazyrich_theory.errors import IntegrationError
from lazyrich_theory.core.dopri5 import (
    DOPRI5_A,
    DOPRI5_B4,
    DOPRI5_B5,
    DOPRI5_C,
    DOPRI5_E,
    dopri5,
)
from lazyrich_theory.core.integrators import (
    power_spectral_radius,
    rkc2,
    rkc_coefficients,
    rkc_stability_bound,
)
from lazyrich_theory.core.population import scalar_rhs, solve_scalar
from lazyrich_theory.core.reduced import ReducedSystem


def _collect(integrator, rhs, y0, ts, **kw):
    out = {}
    stats = integrator(rhs, y0, ts, lambda k, t, y: out.__setitem__(k, np.array(y)), **kw)
    return np.array([out[k] for k in range(len(ts))]), stats


def _stability_polynomial(s, z):
    """R_s(z) of RKC2 from its stage recursion applied to y' = lambda y, h lambda = z."""
    c = rkc_coefficients(s)
    Y0 = 1.0
    Ym2, Ym1 = Y0, Y0 + c[1, 2] * z * Y0
    for j in range(2, s + 1):
        mu, nu, mt, gt = c[j, :4]
        Ym2, Ym1 = Ym1, (1 - mu - nu) * Y0 + mu * Ym1 + nu * Ym2 + mt * z * Ym1 + gt * z * Y0
    return Ym1


@pytest.mark.parametrize("s", [2, 3, 7, 20, 60])
def test_rkc_stability_interval_and_order(s):
    beta = rkc_stability_bound(s)
    assert 0.6 * s**2 < beta < 0.67 * s**2 or s < 5
    z = -np.linspace(0, beta, 2001)
    R = np.array([_stability_polynomial(s, zz) for zz in z])
    assert np.all(np.abs(R) <= 1 + 1e-10)
    # second order: R(z) = 1 + z + z^2/2 + O(z^3)
    for zz in (1e-2, 1e-3):
        assert abs(_stability_polynomial(s, zz) - (1 + zz + zz**2 / 2)) < 5 * abs(zz) ** 3 * s**4
    # stage times: c_s = 1, increasing
    c = rkc_coefficients(s)[1:, 4]
    assert abs(c[-1] - 1) < 1e-12 and np.all(np.diff(c) > 0)


def test_rkc_on_stiff_linear_system_converges_with_tolerance():
    lam = np.logspace(-3, 3, 40)
    ts = np.array([0.0, 0.3, 1.0, 5.0, 20.0])
    exact = np.exp(-np.outer(ts, lam))
    errs = []
    for rtol in (1e-3, 1e-5, 1e-7):
        y, st = _collect(rkc2, lambda t, y: -lam * y, np.ones(40), ts, rtol=rtol, atol=1e-12)
        errs.append(np.max(np.abs(y - exact)))
        # cost grows like sqrt(h rho): far fewer evaluations than an explicit RK would need
        assert st.max_stages > 2
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-6, errs


def test_rkc_matches_radau_on_nonautonomous_nonlinear_problem():
    lam = np.logspace(-2, 2.5, 30)

    def f(t, y):
        return -lam * y - 0.5 * y[0] ** 2 + 0.3 * np.sin(t)

    ts = np.array([0.0, 0.5, 2.0, 7.0, 10.0])
    ref = solve_ivp(f, (0, 10), np.ones(30), method="Radau", rtol=1e-12, atol=1e-14, t_eval=ts).y.T
    y, st = _collect(rkc2, f, np.ones(30), ts, rtol=1e-7, atol=1e-10)
    assert np.max(np.abs(y - ref)) < 2e-6
    y2, _ = _collect(rkc2, f, np.ones(30), ts, rtol=1e-4, atol=1e-8)
    assert np.max(np.abs(y - ref)) < np.max(np.abs(y2 - ref))


def test_power_method_estimates_spectral_radius():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    lam = np.linspace(0.1, 50.0, 20)
    A = -(Q * lam) @ Q.T
    y = rng.standard_normal(20)
    rho, _, n = power_spectral_radius(lambda t, v: A @ v, 0.0, y, A @ y, max_iter=500, tol=1e-8)
    assert 50.0 <= rho <= 1.2 * 50.0 * 1.001 and n > 1


def test_dopri5_matches_scipy_dop853():
    def f(t, y):
        return np.array([y[1], -y[0] + 0.1 * np.cos(t) * y[0] ** 3])

    ts = np.linspace(0, 10, 11)
    ref = solve_ivp(f, (0, 10), [1.0, 0.0], method="DOP853", rtol=1e-13, atol=1e-14, t_eval=ts).y.T
    y, _ = _collect(dopri5, f, np.array([1.0, 0.0]), ts, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(y - ref)) < 1e-8


def test_integrators_reject_bad_save_times():
    for integ in (dopri5, rkc2):
        with pytest.raises(ValueError):
            integ(lambda t, y: -y, np.ones(2), np.array([0.0, 2.0, 1.0]), lambda *a: None)


def test_rkc_reports_blow_up():
    with pytest.raises(IntegrationError):
        rkc2(lambda t, y: y**2, np.ones(1), np.array([0.0, 5.0]), lambda *a: None)


@pytest.fixture
def lazy_problem():
    # lazy-to-rich problem with a stiff lazy phase: fast linear kernel modes, slow features
    return Problem(D=16, P=60, N=40, alpha=1.0, eps=0.2, eta0=1.0, seed=3, test_size=50)


def test_reduced_spectral_radius_bounds_the_jacobian(lazy_problem):
    system = ReducedSystem.build(lazy_problem)
    F = system.F0
    n = F.size
    J = np.empty((n, n))
    f0 = system.rhs(0, F).ravel()
    h = 1e-6
    for i in range(n):
        dF = np.zeros(n)
        dF[i] = h
        J[:, i] = (system.rhs(0, F + dF.reshape(F.shape)).ravel() - f0) / h
    rho_true = np.max(np.abs(np.linalg.eigvals(J)))
    rho_est = system.spectral_radius(F)
    assert rho_true <= rho_est * (1 + 1e-4)
    assert rho_est < 1.5 * rho_true   # and not wildly pessimistic


def test_rkc_flow_agrees_with_dopri5_reference_and_gd(lazy_problem):
    steps = 4000
    ref = solve(lazy_problem, steps, method="flow", integrator="dopri5", rtol=1e-10, atol=1e-13)
    rkc = solve(lazy_problem, steps, method="flow", integrator="rkc")
    tight = solve(lazy_problem, steps, method="flow", integrator="rkc", rtol=1e-7, atol=1e-11)
    gd = solve(lazy_problem, steps, method="gd")
    m = ref.t >= 1
    err = lambda tr: np.max(np.abs(tr.test_loss[m] / ref.test_loss[m] - 1))
    # the rich transition happened inside the horizon
    assert ref.test_loss[-1] < 0.3 * ref.test_loss.max()
    assert err(rkc) < 2e-3
    assert err(tight) < 1e-5 < err(rkc)
    assert rkc.info["n_rhs"] < ref.info["n_rhs"]
    # flow vs exact GD: an O(eta0) difference, well under a percent at eta0 = 1 here
    assert np.max(np.abs(gd.test_loss[m] / ref.test_loss[m] - 1)) < 0.05


def test_dopri5_tableau_is_consistent_and_shared_with_the_scalar_population_ode():
    """One Dormand–Prince tableau: row sums = nodes, 5th- and 4th-order weights sum to 1 and
    satisfy the order conditions; the Numba 2-scalar solver of the population ODE reads the
    same constants and agrees with dopri5 on the same right-hand side."""
    A, b5, b4, c = (np.array(x) for x in (DOPRI5_A, DOPRI5_B5, DOPRI5_B4, DOPRI5_C))
    np.testing.assert_allclose(A.sum(1), c, atol=1e-15)
    for b, order in ((b5, 5), (b4, 4)):
        assert b.sum() == pytest.approx(1.0, abs=1e-15)
        for k in range(1, order):                          # bushy-tree conditions b.c^k = 1/(k+1)
            assert b @ c**k == pytest.approx(1.0 / (k + 1), abs=1e-14)
    np.testing.assert_array_equal(DOPRI5_E, b5 - b4)
    args = (1.1, 0.2, 1.0, 0.5, 9.0, 12.0, 0.0, 1e-3)
    ts = np.array([0.0, 50.0, 400.0, 2000.0])
    a, b, _ = solve_scalar(*args, ts, 1e-11, 1e-14)
    ref, _ = _collect(dopri5, lambda t, y: np.array(scalar_rhs(y[0], y[1], *args)),
                      np.zeros(2), ts, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(np.c_[a, b], ref, rtol=1e-8, atol=1e-12)
