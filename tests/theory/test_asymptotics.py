"""Proportional asymptotics of the initial-NTK model (lazyrich_theory.asymptotics).

Exact finite-D numbers are computed here with plain numpy (kernel solve / eigendecomposition and
the exact Wick population loss) and compared with the leading-order theory and the finite-D
deterministic equivalent.  Test losses are normalised by b2^2 = (|beta|^2/D)^2 (exact: the
losses are homogeneous of degree 2 in |beta|^2 given its direction, and the direction does not
matter by rotation invariance); train losses use the unbiased control variate
train - (mean(y^2) - 3/4 b2^2) * train_theory / (3/4), which removes the O(P^-1/2) fluctuation
of the sample mean of y^2 (E[y^2 | beta] = 3/4 b2^2 exactly).
"""

import math

import numpy as np
import pytest

from lazyrich_theory.theory import asymptotics as A

KAPPA, EPS, ETA0 = 5.5, 0.02, 1.0          # the paper's Fig 1 aspect ratio P/D = 550/100


def _mean_exact_k0(D, n_seeds, kappa=KAPPA, eps=EPS, ridge=0.0, base=0):
    te, tr = [], []
    for s in range(n_seeds):
        X, beta = A.sample_data(D, kappa, seed=base + 1000 * D + s)
        r = A.k0_regression_exact(X, beta, eps, ridge=ridge)
        te.append(r["test_loss_normalised"])
        tr.append(r["train_loss_normalised"])
    te, tr = np.array(te), np.array(tr)
    return te.mean(), te.std(ddof=1) / math.sqrt(n_seeds), tr.mean()


# ------------------------------------------------------------------------------------------
# (a) ridgeless K0 regression: convergence of exact finite-D numbers to the theory
# ------------------------------------------------------------------------------------------

def test_k0_regression_converges_to_leading_order():
    lead = A.k0_regression_asymptotic(KAPPA, EPS)["test_loss"]
    # eps -> 0 closed form b2^2 (2 kappa^2 + 1) / (4 kappa (kappa - 1)) = 0.62121...
    assert lead == pytest.approx((2 * KAPPA**2 + 1) / (4 * KAPPA * (KAPPA - 1)), rel=1e-3)
    errs_lead, errs_de = [], []
    for D, ns in [(50, 48), (100, 24), (200, 12), (400, 6)]:
        mean, se, train = _mean_exact_k0(D, ns)
        assert train < 1e-12                       # ridgeless: interpolates
        de = A.k0_regression_asymptotic(KAPPA, EPS, D=D)["test_loss"]
        errs_lead.append(abs(mean - lead))
        errs_de.append(abs(mean - de))
        # the finite-D deterministic equivalent is within sampling error (+ O(D^-2)) at every D
        assert abs(mean - de) < 0.012 + 3 * se, (D, mean, de, se)
    # leading order: error decreases with D, roughly like 6/D (measured: 0.12, 0.06, 0.03, 0.015)
    assert all(a > b for a, b in zip(errs_lead, errs_lead[1:])), errs_lead
    assert errs_lead[-1] < 0.03, errs_lead
    # and the first correction beats it at every D
    assert all(d < l for d, l in zip(errs_de, errs_lead)), (errs_de, errs_lead)


def test_k0_regression_ridge_matches_exact():
    ridge = 0.1
    lead = A.k0_regression_asymptotic(KAPPA, EPS, ridge=ridge)
    de = A.k0_regression_asymptotic(KAPPA, EPS, ridge=ridge, D=200)
    mean, se, train = _mean_exact_k0(200, 8, ridge=ridge, base=7)
    assert mean == pytest.approx(de["test_loss"], abs=0.02 + 3 * se)
    assert mean == pytest.approx(lead["test_loss"], abs=0.03 + 3 * se)
    # train loss of ridge regression: (lambda / (kappa r))^2 * test
    assert train == pytest.approx(lead["train_loss"], abs=0.05)
    assert de["train_loss"] == pytest.approx(lead["train_loss"], abs=0.01)


def test_expansion_coefficient_closed_form():
    """eps -> 0, ridgeless: E0 = (2k^2+1)/(4k(k-1)), E1 = -(4k^4+2k^3+2k^2-2k-3)/(4k^3)."""
    for k in (2.0, 5.5):
        ex = A.k0_regression_expansion(k, 1e-4)
        assert ex["E0"] == pytest.approx((2 * k**2 + 1) / (4 * k * (k - 1)), rel=1e-6)
        E1 = -(4 * k**4 + 2 * k**3 + 2 * k**2 - 2 * k - 3) / (4 * k**3)
        assert ex["E1"] == pytest.approx(E1, rel=2e-3)
    # b2 scaling: everything is proportional to b2^2
    a = A.k0_regression_asymptotic(3.0, 0.3, b2=1.7, D=80)["test_loss"]
    b = A.k0_regression_asymptotic(3.0, 0.3, b2=1.0, D=80)["test_loss"]
    assert a == pytest.approx(1.7**2 * b, rel=1e-12)


def test_deterministic_equivalent_tends_to_leading_order():
    for kappa, eps, ridge in [(5.5, 0.02, 0.0), (2.0, 0.3, 0.0), (0.5, 0.1, 0.0), (3.0, 0.1, 0.2)]:
        lead = A.k0_regression_asymptotic(kappa, eps, ridge=ridge)
        big = A.k0_regression_asymptotic(kappa, eps, ridge=ridge, D=1e7)
        assert big["test_loss"] == pytest.approx(lead["test_loss"], abs=1e-5)
        assert big["train_loss"] == pytest.approx(lead["train_loss"], abs=1e-5)


def test_leading_components_add_up():
    r = A.k0_regression_asymptotic(KAPPA, EPS)
    assert r["constant"] + r["noise"] + r["linear"] == pytest.approx(r["test_loss"])
    assert r["noise"] == pytest.approx(0.5)          # Var[y] = b2^2 / 2


# ------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------

def test_mp_stieltjes_matches_eigenvalues():
    rng = np.random.default_rng(0)
    D, P = 300, 900
    X = rng.standard_normal((P, D)) / math.sqrt(D)
    ev = np.linalg.eigvalsh(X @ X.T)
    for z in (-0.5, 3.0 + 1.0j, 12.0 + 0.5j):
        emp = np.mean(1.0 / (ev - z))
        assert A.mp_stieltjes(z, P / D) == pytest.approx(emp, abs=5e-3)


def test_resolvent_deterministic_equivalents_gaussian():
    """One- and two-resolvent deterministic equivalents used by order="de", checked against
    Gaussian features with a three-group covariance (group-isotropic theta)."""
    rng = np.random.default_rng(0)
    sig = np.array([1.0, 0.3, 0.05])
    mult = np.array([100, 50, 400])
    th = np.array([1.0, 2.0, 5.0])                       # per-coordinate squared weights
    P, n = 250, int(mult.sum())
    s_full = np.repeat(sig, mult)
    idx = np.cumsum(np.r_[0, mult])
    z1, z2 = 0.3 + 0.2j, 0.05 - 0.03j
    a1, a2 = A._solve_a(np.array([z1, z2]), sig, mult.astype(float), float(P))
    T1, T2 = 1 / (a1 * sig - z1), 1 / (a2 * sig - z2)
    one_de = np.sum(th * mult * sig * T1)
    two_de = np.sum(th * mult * sig * T1 * T2) / (1 - a1 * a2 / P * np.sum(mult * sig**2 * T1 * T2))
    one, two = [], []
    for _ in range(8):
        Z = rng.standard_normal((P, n)) * np.sqrt(s_full)
        Sh = Z.T @ Z / P
        R1 = np.linalg.inv(Sh - z1 * np.eye(n))
        R2 = np.linalg.inv(Sh - z2 * np.eye(n))
        d2 = np.einsum("ij,j,ji->i", R1, s_full, R2)
        d1 = np.diag(R1) * s_full
        one.append(sum(th[g] * d1[idx[g]:idx[g + 1]].sum() for g in range(3)))
        two.append(sum(th[g] * d2[idx[g]:idx[g + 1]].sum() for g in range(3)))
    assert np.mean(one) == pytest.approx(one_de, rel=0.01)
    assert np.mean(two) == pytest.approx(two_de, rel=0.01)


def test_exact_population_loss_matches_monte_carlo():
    rng = np.random.default_rng(1)
    X, beta = A.sample_data(20, 3.0, seed=3)
    eps = 0.5
    r = A.k0_regression_exact(X, beta, eps, ridge=0.3)
    G = X @ X.T
    y = 0.5 * (X @ beta) ** 2
    a = np.linalg.solve(G * (1 + eps**2 * G) + 0.3 * np.eye(len(y)), y)
    Xt = rng.standard_normal((400_000, 20)) / math.sqrt(20)
    S = Xt @ X.T
    mc = np.mean(((S * (1 + eps**2 * S)) @ a - 0.5 * (Xt @ beta) ** 2) ** 2)
    assert r["test_loss"] == pytest.approx(mc, rel=0.02)


def test_exact_curves_limit_is_kernel_regression():
    X, beta = A.sample_data(40, KAPPA, seed=5)
    r = A.linearized_curves_exact(X, beta, EPS, ETA0, [0, 1e13])
    k0 = A.k0_regression_exact(X, beta, EPS)
    assert r["test_loss"][0] == pytest.approx(0.75 * r["b2"] ** 2, rel=0.3)     # E y^2 at t = 0
    assert r["train_loss"][0] == pytest.approx(np.mean((0.5 * (X @ beta) ** 2) ** 2))
    assert r["test_loss"][1] == pytest.approx(k0["test_loss"], rel=1e-6)
    assert r["train_loss"][1] < 1e-12


def test_curves_theory_consistency():
    t = np.r_[0.0, np.geomspace(1, 1e10, 30)]
    lead = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t, D=100)
    de = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t, D=100, order="de")
    for r in (lead, de):
        assert r["test_loss"][0] == pytest.approx(0.75, abs=1e-9)            # E[y^2]
        assert r["train_loss"][0] == pytest.approx(0.75, abs=1e-9)
        assert np.all(np.diff(r["train_loss"]) <= 1e-12)                     # GD decreases it
    # t -> inf: ridgeless regression, both orders
    assert lead["test_loss"][-1] == pytest.approx(
        A.k0_regression_asymptotic(KAPPA, EPS)["test_loss"], abs=1e-8)
    assert de["test_loss"][-1] == pytest.approx(
        A.k0_regression_asymptotic(KAPPA, EPS, D=100)["test_loss"], abs=1e-8)
    comps = lead["noise"] + lead["constant"] + lead["linear"]
    np.testing.assert_allclose(comps, lead["test_loss"], atol=1e-12)
    # the deterministic equivalent at huge D reproduces the leading order
    big = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t * 1e4, D=1e6, order="de")
    lead_big = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t * 1e4, D=1e6)
    np.testing.assert_allclose(big["test_loss"], lead_big["test_loss"], atol=2e-4)
    np.testing.assert_allclose(big["train_loss"], lead_big["train_loss"], atol=2e-4)
    # contour quadrature converged
    de2 = A._de_curves(KAPPA, EPS, ETA0, t, 100.0, 1.0, "gd", nodes_scale=2.0)
    np.testing.assert_allclose(de2["test_loss"], de["test_loss"], atol=1e-9)
    # flow vs gd: max c lambda ~ 0.04 here, so they nearly coincide
    fl = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t, D=100, method="flow")
    np.testing.assert_allclose(fl["test_loss"], lead["test_loss"], atol=2e-3)


# ------------------------------------------------------------------------------------------
# (b) learning curves: exact finite-D linearised dynamics vs theory
# ------------------------------------------------------------------------------------------

def _curve_errors(D, n_seeds, t):
    lead = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t, D=D)
    de = A.linearized_curves_asymptotic(KAPPA, EPS, ETA0, t, D=D, order="de")
    te, tr_l, tr_d = [], [], []
    for s in range(n_seeds):
        X, beta = A.sample_data(D, KAPPA, seed=77 + 1000 * D + s)
        r = A.linearized_curves_exact(X, beta, EPS, ETA0, t)
        b2 = r["b2"]
        dy = r["train_loss"][0] / b2**2 - 0.75
        te.append(r["test_loss"] / b2**2)
        tr_l.append(r["train_loss"] / b2**2 - dy * lead["train_loss"] / 0.75)
        tr_d.append(r["train_loss"] / b2**2 - dy * de["train_loss"] / 0.75)
    te, tr_l, tr_d = (np.mean(a, axis=0) for a in (te, tr_l, tr_d))
    return dict(test_lead=np.max(np.abs(te - lead["test_loss"])),
                test_de=np.max(np.abs(te - de["test_loss"])),
                train_lead=np.max(np.abs(tr_l - lead["train_loss"])),
                train_de=np.max(np.abs(tr_d - de["train_loss"])))


def test_learning_curves_converge():
    t = np.r_[0.0, np.geomspace(1, 1e9, 37)]
    e50 = _curve_errors(50, 24, t)
    e100 = _curve_errors(100, 8, t)
    e400 = _curve_errors(400, 2, t)
    # leading order: sup-error over the whole curve decreases with D (measured ~0.12, 0.06, 0.015)
    assert e50["test_lead"] > e100["test_lead"] > e400["test_lead"]
    assert e400["test_lead"] < 0.03
    assert e400["train_lead"] < 0.03
    # the deterministic equivalent is much better at small D (test: within sampling error)
    assert e50["test_de"] < 0.3 * e50["test_lead"]
    assert e100["test_de"] < 0.5 * e100["test_lead"]
    assert max(e50["test_de"], e100["test_de"], e400["test_de"]) < 0.02
    assert e50["train_de"] < e50["train_lead"]


def test_input_validation():
    with pytest.raises(ValueError):
        A.k0_regression_asymptotic(5.5, 0.0)
    with pytest.raises(ValueError):
        A.linearized_curves_asymptotic(5.5, 0.02, 1.0, [1.0], D=100, method="adam")
    with pytest.raises(ValueError):
        A.linearized_curves_asymptotic(5.5, 0.02, 1.0, [1.0], D=100, order="nlo")
    with pytest.raises(ValueError):
        A.linearized_curves_asymptotic(5.5, 0.02, 1.0, [-1.0], D=100)
    r = A.linearized_curves_asymptotic(5.5, 0.02, 1.0, 10.0, D=100)
    assert np.ndim(r["test_loss"]) == 0


def test_package_reexports_every_name():
    """theory.asymptotics is a package; every name of the former module is importable from it."""
    from lazyrich_theory.theory.asymptotics import (  # noqa: F401
        _de_curves,
        _solve_a,
        feature_groups,
        k0_regression_asymptotic,
        k0_regression_expansion,
        k0_regression_exact,
        linearized_curves_asymptotic,
        linearized_curves_exact,
        mp_stieltjes,
        sample_data,
    )
    assert set(A.__all__) <= set(dir(A))
