"""General teacher targets (lazyrich_theory/targets.py, docs/targets.md).

(a) exact population loss vs Monte Carlo over fresh inputs (|exact - MC| < 4 standard errors,
    2e5 samples), conventions A and B, centered and not, at a random (wbar, M) and at the end of
    a short reduced solve;
(b) the sympy-derived Gaussian moments vs Gauss-Hermite quadrature and closed forms;
(c) reduced GD = the independent numpy network on non-paper labels (<= 1e-8 relative);
(d) the "paper" spec: data bit for bit as before, and the general machinery reproduces
    statistics.decomposition;
(e) bad specs raise one-line ProblemErrors;
(f) the Monte-Carlo fallback (user function) has an error bar and agrees with the exact loss.
"""

from __future__ import annotations

import math
import sys
import textwrap

import numpy as np
import pytest

from lazyrich_theory import CORE_COLUMNS, Problem, ProblemError, solve
from lazyrich_theory.spec import targets as T
from lazyrich_theory.theory.lazy import LinearizedModel
from lazyrich_theory.spec.data import data_target, labels
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.statistics import decomposition

N_MC = 200_000
Z_MAX = 4.0


def _second_moment_quadrature(tgt):
    """E[y^2] of a Hermite target by tensor Gauss-Hermite quadrature on the span of its
    directions (y depends on z only through Q^T z, Q an orthonormal basis of that span);
    exact for these polynomial degrees, and independent of the sympy table."""
    Q, _ = np.linalg.qr(tgt.U.T)
    r = Q.shape[1]
    x, w = np.polynomial.hermite_e.hermegauss(10)
    w = w / math.sqrt(2 * math.pi)
    grids = np.meshgrid(*([x] * r), indexing="ij")
    Wg = np.prod(np.meshgrid(*([w] * r), indexing="ij"), axis=0).ravel()
    Zs = np.stack([g.ravel() for g in grids], axis=1) @ Q.T
    y = tgt.labels_z(Zs)
    return float(Wg @ (y * y))


def _mc_loss(problem, data, wbar, M, wref, Mref, n=N_MC, seed=123):
    """Monte Carlo of E[(ftilde(x) - y(x))^2] over fresh stored-unit inputs, labels from
    problem.labels (the target's own evaluation, not its projection): (mean, standard error).
    Hermite targets (heavy-tailed y^2) use y^2 as a control variate: mean((f - y)^2 - y^2)
    plus E[y^2] by quadrature (:func:`_second_moment_quadrature`)."""
    tgt = data_target(problem, data)
    y2 = _second_moment_quadrature(tgt) if isinstance(tgt, T.HermiteTarget) else None
    rng = np.random.default_rng(seed)
    D = problem.D
    xs = 1.0 / math.sqrt(D) if problem.convention == "A" else 1.0
    vals = []
    for start in range(0, n, 20_000):
        X = rng.standard_normal((min(20_000, n - start), D)) * xs
        XA = X * problem.input_scale
        f = problem.alpha * XA @ (wbar - wref) + 0.5 * problem.alpha * problem.eps * np.einsum(
            "ij,ij->i", XA @ (M - Mref), XA)
        y = labels(problem, data, X)
        vals.append((f - y) ** 2 if y2 is None else f * f - 2.0 * f * y)
    e2 = np.concatenate(vals)
    return float(e2.mean() + (y2 or 0.0)), float(e2.std(ddof=1) / math.sqrt(e2.size))


def _random_state(system, rng, lam=0.7):
    """A (wbar, M) whose error has all components: (alpha eps/2)(M - Mref) = lam D C2 + S,
    alpha (wbar - wref) = 0.6 sqrt(D) c1 + g, S random symmetric, g ~ N(0, I)."""
    p, tgt = system.problem, system.target
    D = p.D
    wref, Mref = (system.wbar0, system.M0) if p.centered else (np.zeros(D), np.zeros((D, D)))
    G = rng.standard_normal((D, D))
    S = 0.5 * (G + G.T) * 0.5
    M = Mref + (lam * D * tgt.C2 + S) / (0.5 * p.alpha * p.eps)
    wbar = wref + (0.6 * math.sqrt(D) * tgt.c1 + rng.standard_normal(D)) / p.alpha
    return wbar, M, wref, Mref


CASES = [
    ("quadratic:b=1,c=0.5", "A", True),
    ("quadratic:rank=3,b=0.5,c=-0.3", "B", False),
    ("hermite:k=3", "A", True),
    ("hermite:k=4", "B", False),
    ("hermite:k=5", "A", False),
    ("hermite:coef=0.3/1/0.5/0.4/0.2", "B", True),
    ("hermite:k=2,r=3", "A", False),
    ("hermite:coef=0/1/1;0/0/1/1;0.2/0/0/0/0.5,dirs=iid", "B", True),
    ("hermite:coef=0.5/0.8/1/0.3;0/0.4/0/0/0.2", "A", True),
]


def _problem(spec, conv, centered, **kw):
    base = dict(D=16, P=48, N=24, alpha=1.0, eps=0.3, eta0=1.0, seed=4, test_size=100,
                convention=conv, centered=centered, target=spec)
    return Problem(**{**base, **kw})


@pytest.mark.parametrize("spec,conv,centered", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_exact_population_loss_matches_monte_carlo_at_random_state(spec, conv, centered):
    p = _problem(spec, conv, centered)
    data = p.data()
    system = ReducedSystem.build(p, data)
    wbar, M, wref, Mref = _random_state(system, np.random.default_rng(11))
    exact = system.target.population_loss(wbar, M, wref, Mref, p.alpha, p.eps)
    mc, se = _mc_loss(p, data, wbar, M, wref, Mref)
    assert abs(exact - mc) < Z_MAX * se, (exact, mc, se)
    # se < 5% of the loss: an error above 4 se (<= 20% of the loss) fails here; smaller ones
    # are caught by the quadrature tests below (test_quadratic_error_split_vs_quadrature, ...)
    assert se < 0.05 * exact
    # the split adds up: population = variance + misalignment + linear_power + irreducible
    var, mis, lin = system.target.decomposition(wbar, M, wref, Mref, p.alpha, p.eps)
    assert min(var, mis, lin) >= 0.0 and lin > 0 and mis > 0
    np.testing.assert_allclose(var + mis + lin + system.target.irreducible_loss, exact,
                               rtol=1e-14)


@pytest.mark.parametrize("spec,conv,centered", [CASES[0], CASES[3], CASES[7]],
                         ids=["quadratic-A", "hermite4-B", "multi-B"])
def test_exact_population_loss_matches_monte_carlo_along_a_solve(spec, conv, centered):
    p = _problem(spec, conv, centered)
    data = p.data()
    tr = solve(p, 200, method="gd", data=data)
    assert tr.columns[:len(CORE_COLUMNS)] == tuple(CORE_COLUMNS)
    system = ReducedSystem.build(p, data)
    wbar, M = tr.final_state["wbar"], tr.final_state["M"]
    wref, Mref = ((system.wbar0, system.M0) if centered
                  else (np.zeros(p.D), np.zeros((p.D, p.D))))
    mc, se = _mc_loss(p, data, wbar, M, wref, Mref)
    assert abs(tr.population_loss[-1] - mc) < Z_MAX * se, (tr.population_loss[-1], mc, se)
    irr = system.target.irreducible_loss
    np.testing.assert_allclose(tr.variance + tr.misalignment + tr.linear_power + irr,
                               tr.population_loss, rtol=1e-13)
    # training moved the loss
    assert tr.train_loss[-1] < 0.5 * tr.train_loss[0]


def test_linearized_model_population_loss_general_target():
    """LinearizedModel's exact population loss vs Monte Carlo of its own predictions."""
    p = _problem("hermite:coef=0.2/1/0.7/0.5", "B", True, P=40)
    data = p.data()
    model = LinearizedModel.from_problem(p, data)
    t = np.array([0, 50, 400])
    pop = model.curves(t, "gd").population_loss
    rng = np.random.default_rng(5)
    XA = rng.standard_normal((N_MC, p.D)) / math.sqrt(p.D)       # convention-A units
    y = labels(p, data, XA / p.input_scale)
    pred = model.predict(t, XA, "gd")
    for k in range(t.size):
        e2 = (pred[k] - y) ** 2
        se = e2.std(ddof=1) / math.sqrt(N_MC)
        assert abs(pop[k] - e2.mean()) < Z_MAX * se, (k, pop[k], e2.mean(), se)
    # t = 0 (centered): ftilde = 0, loss = E[y^2] = 0.04 + 1 + 2 * 0.49 + 6 * 0.25
    np.testing.assert_allclose(pop[0], 0.04 + 1 + 0.98 + 1.5, rtol=1e-12)


# ----------------------------------------------------------------------------------- (b)
def _gh(n):
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / math.sqrt(2.0 * math.pi)


@pytest.mark.parametrize("rho", [-0.7, 0.0, 0.3, 0.95])
def test_hermite_gram_vs_quadrature_and_closed_form(rho):
    K = 6
    gram = T.hermite_gram(K)(rho)
    x, w = _gh(12)                                   # exact up to degree 23
    S, Zt = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    Tt = rho * S + math.sqrt(1 - rho**2) * Zt
    from numpy.polynomial.hermite_e import hermeval

    for j in range(K + 1):
        for k in range(K + 1):
            ej, ek = np.eye(K + 1)[j], np.eye(K + 1)[k]
            quad = float(np.sum(W * hermeval(S, ej) * hermeval(Tt, ek)))
            closed = math.factorial(k) * rho**k if j == k else 0.0
            assert abs(gram[j, k] - quad) <= 1e-10 * max(1.0, abs(quad)), (j, k)
            assert abs(gram[j, k] - closed) <= 1e-12 * max(1.0, abs(closed)), (j, k)


def test_hermite_polynomials_sympy_equal_numpy():
    import sympy

    h = sympy.Symbol("h")
    x = np.linspace(-3, 3, 7)
    from numpy.polynomial.hermite_e import hermeval

    for k in range(8):
        f = sympy.lambdify(h, sympy.hermite_prob(k, h), "numpy")
        np.testing.assert_allclose(np.broadcast_to(f(x), x.shape), hermeval(x, np.eye(8)[k]),
                                   rtol=1e-13, atol=1e-10)


def test_quadratic_error_split_vs_quadrature():
    """E[e]^2, |E[e z]|^2 and the rest, for e = a0 + a.z + z^T A z in d = 4, by tensor
    Gauss-Hermite quadrature (exact for degree 4), vs the sympy-derived invariant formula."""
    rng = np.random.default_rng(0)
    d = 4
    a0, a = rng.standard_normal(), rng.standard_normal(d)
    G = rng.standard_normal((d, d))
    A = 0.5 * (G + G.T)
    x, w = _gh(4)
    grids = np.meshgrid(*([x] * d), indexing="ij")
    Z = np.stack([g.ravel() for g in grids], axis=1)
    W = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0).ravel()
    e = a0 + Z @ a + np.einsum("ij,ij->i", Z @ A, Z)
    Ee = W @ e
    Eez = (W * e) @ Z
    Ee2 = W @ (e * e)
    var, lin, mis = T.quadratic_error_split(a0, np.trace(A), a @ a, np.sum(A * A))
    np.testing.assert_allclose([var, lin, mis], [Ee**2, Eez @ Eez, Ee2 - Ee**2 - Eez @ Eez],
                               rtol=1e-12)
    # and the closed forms it encodes
    np.testing.assert_allclose([var, lin, mis], [(a0 + np.trace(A))**2, a @ a, 2 * np.sum(A * A)],
                               rtol=1e-14)


def test_hermite_projection_vs_quadrature():
    """c0, c1, C2 of a multi-index Hermite target vs quadrature projections in d = 3."""
    U = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, -0.8]])
    coef = np.array([[0.1, 0.5, 1.0, 0.7, 0.3], [0.0, -0.4, 0.2, 0.0, 1.0], [0.3, 0.0, 0.6, 0.5, 0.0]])
    tgt = T.HermiteTarget(U, coef)
    x, w = _gh(8)
    grids = np.meshgrid(x, x, x, indexing="ij")
    Z = np.stack([g.ravel() for g in grids], axis=1)
    W = np.prod(np.meshgrid(w, w, w, indexing="ij"), axis=0).ravel()
    y = tgt.labels_z(Z)
    np.testing.assert_allclose(tgt.c0, W @ y, rtol=1e-12)
    np.testing.assert_allclose(tgt.c1, (W * y) @ Z, rtol=1e-12, atol=1e-14)
    C2 = 0.5 * (((W * y)[:, None] * Z).T @ Z - (W @ y) * np.eye(3))
    np.testing.assert_allclose(tgt.C2, C2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tgt.second_moment(), W @ (y * y), rtol=1e-12)
    assert tgt.irreducible_loss > 0.1


# ----------------------------------------------------------------------------------- (c)
@pytest.mark.parametrize("spec,conv,centered", [
    ("quadratic:b=1,c=0.5", "A", True),
    ("quadratic:rank=2,b=0.7", "B", False),
    ("hermite:coef=0.2/1/1/0.5", "A", False),
    ("hermite:coef=0/1/1/0.4;0/0.5/1/0/0.2,dirs=iid", "B", True),
])
def test_reduced_gd_equals_network_on_general_targets(spec, conv, centered):
    from lazyrich_validation import max_relative_deviation, simulate

    p = Problem(D=12, P=40, N=40, alpha=1.0, eps=0.2, eta0=1.0, seed=3, test_size=200,
                convention=conv, centered=centered, target=spec)
    data = p.data()
    red = solve(p, 2000, method="gd", data=data)
    net = simulate(p, 2000, data=data)
    res = max_relative_deviation(red, net, columns=("train_loss", "test_loss"))
    assert res["n_times"] == len(red.t) > 50
    assert res["max"] <= 1e-8, res
    assert red.train_loss[-1] < 0.3 * red.train_loss[0]
    for key in ("wbar", "M"):
        x, y = red.final_state[key], net.final_state[key]
        assert np.max(np.abs(x - y)) <= 1e-10 * np.max(np.abs(y)), key


# ----------------------------------------------------------------------------------- (d)
@pytest.mark.parametrize("conv,noise", [("A", 0.0), ("B", 0.3)])
def test_paper_spec_reproduces_old_data_bit_for_bit(conv, noise):
    p = Problem(D=10, P=30, N=7, seed=9, test_size=20, convention=conv, noise=noise)
    assert p.target == "paper" and "target" not in p.to_dict()
    d = p.data()
    rx, rt, rb, rw = (np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(4))
    xs = 1 / math.sqrt(10) if conv == "A" else 1.0
    X = rx.standard_normal((30, 10)) * xs
    Xt = rt.standard_normal((20, 10)) * xs
    beta = rb.standard_normal(10)
    W0 = rw.standard_normal((7, 10))
    tau = 0.5 if conv == "A" else 1.0
    s = 1.0 if conv == "A" else 1 / math.sqrt(10)
    y = tau * ((X * s) @ beta) ** 2
    if noise:
        y = y + noise * np.random.default_rng(np.random.SeedSequence(9).spawn(5)[4]).standard_normal(30)
    for name, ref in dict(X=X, X_test=Xt, beta=beta, W0=W0, y=y,
                          y_test=tau * ((Xt * s) @ beta) ** 2).items():
        assert np.array_equal(getattr(d, name), ref), name
    assert d.target is None and ReducedSystem.build(p, d).target is None
    # other targets keep X, X_test, beta, W0 (and the label noise) of the same seed
    q = p.replace(target="hermite:k=3")
    dq = q.data()
    for name in ("X", "X_test", "beta", "W0"):
        assert np.array_equal(getattr(dq, name), getattr(d, name)), name
    clean = dq.target.labels(q, dq.X)
    from lazyrich_theory.spec.data import label_noise

    np.testing.assert_array_equal(label_noise(q), label_noise(p))
    np.testing.assert_array_equal(dq.y, clean + label_noise(q) if noise else clean)
    np.testing.assert_array_equal(dq.y_test, dq.target.labels(q, dq.X_test))
    np.testing.assert_array_equal(labels(q, dq, dq.X), clean)


@pytest.mark.parametrize("conv,centered", [("A", True), ("B", False)])
def test_general_machinery_reproduces_paper_decomposition(conv, centered):
    """PaperTarget and the equivalent Hermite target |beta|^2/(2D) (1 + He_2(betahat.z))
    (convention A; doubled in B) give statistics.decomposition's three terms."""
    p = _problem("paper", conv, centered)
    data = p.data()
    system = ReducedSystem.build(p, data)
    beta = data.beta
    pt = T.PaperTarget(beta, p.tau)
    c = p.tau * (beta @ beta) / p.D
    ht = T.HermiteTarget(beta[None, :], np.array([[c, 0.0, c]]))
    system.target = pt
    wbar, M, wref, Mref = _random_state(system, np.random.default_rng(2))
    ref = decomposition(wbar, M, wref, Mref, beta, p.alpha, p.eps, p.tau)
    for tgt in (pt, ht):
        np.testing.assert_allclose(tgt.decomposition(wbar, M, wref, Mref, p.alpha, p.eps), ref,
                                   rtol=1e-11)
        assert tgt.irreducible_loss == 0.0
    X = data.X
    np.testing.assert_allclose(ht.labels(p, X), data.y, rtol=1e-12)


def test_spec_round_trips_through_problem_json(tmp_path):
    for spec in ("quadratic:B=0.5,rank=2,b=1,c=0.1,seed=3", "hermite:coef=0/1/1;0/0/0/1,dirs=iid",
                 "hermite:k=4,r=2"):
        p = Problem(D=8, P=10, N=5, target=spec)
        q = Problem.from_json(p.to_json())
        assert q == p and q.target == spec
        assert np.array_equal(q.data().y, p.data().y)
    # a saved run's data file reloads with the same teacher
    p = Problem(D=8, P=10, N=5, target="hermite:k=3", noise=0.1)
    d = p.data()
    d.save(tmp_path / "d.npz")
    q = p.replace(data_file=str(tmp_path / "d.npz"))
    dq = q.data()
    assert np.array_equal(dq.y, d.y)
    np.testing.assert_array_equal(dq.target.U, d.target.U)


def test_target_seed_key_and_quadratic_file(tmp_path):
    p1 = Problem(D=8, P=10, N=5, seed=1, target="hermite:k=3,seed=5")
    p2 = Problem(D=8, P=10, N=5, seed=2, target="hermite:k=3,seed=5")
    np.testing.assert_array_equal(p1.data().target.U, p2.data().target.U)
    p3 = Problem(D=8, P=10, N=5, seed=2, target="hermite:k=3")
    assert not np.allclose(p3.data().target.U, p2.data().target.U)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((8, 8))
    B, b = G + G.T, rng.standard_normal(8)
    np.savez(tmp_path / "q.npz", B=B, b=b, c=np.array(0.25))
    p = Problem(D=8, P=10, N=5, convention="B", target=f"quadratic:file={tmp_path / 'q.npz'}")
    d = p.data()
    XA = d.X / math.sqrt(8)
    np.testing.assert_allclose(d.y, np.einsum("ij,jk,ik->i", XA, B, XA) + XA @ b + 0.25,
                               rtol=1e-13)
    U = rng.standard_normal((2, 8))
    np.savez(tmp_path / "h.npz", U=U, coef=np.array([[0, 1, 0, 1.0], [0, 0, 1, 0]]))
    dh = Problem(D=8, P=10, N=5, target=f"hermite:file={tmp_path / 'h.npz'}").data()
    np.testing.assert_allclose(dh.target.U, U / np.linalg.norm(U, axis=1, keepdims=True))


# ----------------------------------------------------------------------------------- (e)
BAD_PARSE = ["nope", "paper:x=1", "quadratic:B=abc", "quadratic:foo=1", "quadratic:B",
             "quadratic:B=1,B=2", "quadratic:rank=1.5", "quadratic:c=inf", "hermite",
             "hermite:k=-1", "hermite:k=2,coef=1", "hermite:coef=1//2", "hermite:coef=;1",
             "hermite:dirs=weird,k=2", "hermite:k=2,r=0", "hermite:coef=1/2,r=2", "func:",
             "func:not a name", "func:a:b:c", "func:mod:fn,samples=10", "hermite:k=2\nx"]
BAD_BUILD = ["func:no_such_module_xyz:f", "func:unregistered_teacher_xyz",
             "func:math:no_such_function", "quadratic:file=/nonexistent/q.npz",
             "hermite:k=3,r=20"]


@pytest.mark.parametrize("spec", BAD_PARSE)
def test_bad_specs_raise_one_line(spec):
    with pytest.raises(ProblemError) as exc:
        Problem(D=10, P=10, N=5, target=spec)
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 200 and "target" in msg


@pytest.mark.parametrize("spec", BAD_BUILD)
def test_bad_specs_at_build_raise_one_line(spec):
    p = Problem(D=10, P=10, N=5, target=spec)  # syntax fine
    with pytest.raises(ProblemError) as exc:
        p.data()
    msg = str(exc.value)
    assert "\n" not in msg and "target" in msg


def test_bad_user_function_outputs(tmp_path):
    T.register("bad_shape_teacher", lambda Z: Z[:, :2])
    T.register("nan_teacher", lambda Z: np.full(Z.shape[0], np.nan))
    for spec in ("func:bad_shape_teacher,samples=1000", "func:nan_teacher,samples=1000"):
        with pytest.raises(ProblemError) as exc:
            Problem(D=6, P=10, N=5, target=spec).data()
        assert "\n" not in str(exc.value)


def test_population_ode_rejects_general_targets():
    from lazyrich_theory import population
    from lazyrich_theory.theory.timescales import predict_timescales

    p = Problem(D=8, P=10, N="inf", target="hermite:k=3")
    with pytest.raises(ProblemError, match="paper target"):
        population(p, 10)
    ts = predict_timescales(p)
    assert math.isnan(ts.rich_time_population) and math.isnan(ts.rich_time_estimate)


# ----------------------------------------------------------------------------------- (f)
def test_monte_carlo_fallback_agrees_with_exact_hermite(tmp_path, monkeypatch):
    spec_exact = "hermite:coef=0.3/1/0.6/0.5/0.25;0/0.5/0.8/0/0,dirs=iid"
    p = _problem(spec_exact, "A", True)
    data = p.data()
    exact_t = data.target
    U, coef = exact_t.U, exact_t.coef

    # the same teacher as a user function, once registered, once as module:function
    def teacher(Z):
        from numpy.polynomial.hermite_e import hermeval

        H = Z @ U.T
        return sum(hermeval(H[:, j], coef[j]) for j in range(U.shape[0]))

    T.register("hermite_as_function", teacher)
    mod = tmp_path / "my_teacher_mod.py"
    np.savez(tmp_path / "uc.npz", U=U, coef=coef)
    mod.write_text(textwrap.dedent(f"""
        import numpy as np
        from numpy.polynomial.hermite_e import hermeval
        _f = np.load({str(tmp_path / 'uc.npz')!r})
        U, coef = _f["U"], _f["coef"]
        def teacher(Z):
            H = Z @ U.T
            return sum(hermeval(H[:, j], coef[j]) for j in range(U.shape[0]))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    system = ReducedSystem.build(p, data)
    wbar, M, wref, Mref = _random_state(system, np.random.default_rng(8))
    exact = exact_t.population_loss(wbar, M, wref, Mref, p.alpha, p.eps)
    for spec in ("func:hermite_as_function", "func:my_teacher_mod:teacher,samples=250000"):
        q = p.replace(target=spec)
        dq = q.data()
        ft = dq.target
        assert not ft.exact and isinstance(ft, T.FunctionTarget)
        np.testing.assert_allclose(dq.y, data.y, rtol=1e-13)   # same labels
        mc = ft.population_loss(wbar, M, wref, Mref, p.alpha, p.eps)
        se = ft.population_loss_stderr(wbar, M, wref, Mref, p.alpha, p.eps)
        assert 0 < se < 0.05 * exact
        assert abs(mc - exact) < Z_MAX * se, (mc, exact, se)
        assert abs(ft.irreducible_loss - exact_t.irreducible_loss) < Z_MAX * ft.irreducible_stderr
        info = ft.info()
        assert info["exact"] is False and info["irreducible_loss_stderr"] > 0
    # a solve with a user-function target: core columns unchanged, one extra stderr column
    q = p.replace(target="func:hermite_as_function,samples=20000")
    tr = solve(q, 50, method="gd")
    assert tr.columns[:len(CORE_COLUMNS)] == tuple(CORE_COLUMNS)
    assert "population_loss_stderr" in tr.columns and np.all(tr["population_loss_stderr"] > 0)
    assert sys.modules.get("my_teacher_mod") is not None


def test_function_target_projections_match_the_exact_ones():
    """The Monte-Carlo c0, c1, C2 of a user function equal the exact Hermite projections of the
    same teacher within their sampling error (each entry's sd is known in closed form only
    roughly, so use 5 / sqrt(n) times sqrt(E[y^2] * E[z^4]) as a generous per-entry bound)."""
    ex = _problem("hermite:coef=0.3/1/0.6/0.5;0/0.5/0.8/0,dirs=iid", "A", True).data().target
    U, coef = ex.U, ex.coef

    def teacher(Z):
        from numpy.polynomial.hermite_e import hermeval

        return sum(hermeval(Z @ U[j], coef[j]) for j in range(U.shape[0]))

    n = 200_000
    ft = T.FunctionTarget(teacher, U.shape[1], np.random.default_rng(5), samples=n)
    bound = 5.0 * math.sqrt(ft.y2 * 3.0 / n)
    assert abs(ft.c0 - ex.c0) < bound
    assert np.max(np.abs(ft.c1 - ex.c1)) < bound
    assert np.max(np.abs(ft.C2 - ex.C2)) < bound
    # a 20% error in the largest entry would be outside that bound
    assert 0.2 * max(abs(ex.c0), np.max(np.abs(ex.c1)), np.max(np.abs(ex.C2))) > 2 * bound
    # the trace of C2 (where the c0 I subtraction enters) is checked more sharply: its sd is
    # sqrt(Var[y (|z|^2 - D)]) / (2 sqrt(n)), about sqrt(E[y^2] (2D + 12)) / (2 sqrt(n)) here
    # (y depends on z through two directions only; 5 of these sds is a wide margin)
    D = U.shape[1]
    tr_bound = 5.0 * math.sqrt(ft.y2 * (2 * D + 12)) / (2.0 * math.sqrt(n))
    assert abs(np.trace(ft.C2) - np.trace(ex.C2)) < tr_bound
    assert 0.5 * 0.05 * abs(ex.c0) * D > tr_bound      # a 5% error in c0 I would show here


def test_function_target_irreducible_loss_is_unbiased_and_its_error_bar_calibrated():
    """He3 along one axis: irreducible = 3! = 6 exactly.  With D = 60 and n = 8000 the plug-in
    estimate S - |c_hat|^2 would be biased low by about (1 + D + D(D+1)/2) * 6 / n = 1.4; the
    fold U-statistic is unbiased, and its jackknife error bar matches the spread over seeds."""
    def he3(Z):
        return Z[:, 0] ** 3 - 3.0 * Z[:, 0]

    est, se, pop0 = [], [], []
    zero_w, zero_M = np.zeros(60), np.eye(60)
    for seed in range(24):
        t = T.FunctionTarget(he3, 60, np.random.default_rng(seed), samples=8000)
        est.append(t.irreducible_loss)
        se.append(t.irreducible_stderr)
        # ftilde = 0 (state = reference): the population loss is E[y^2] = 6, also unbiased
        pop0.append(t.population_loss(zero_w, zero_M, zero_w, zero_M, 1.0, 0.5))
    est = np.array(est)
    spread = float(np.std(est, ddof=1))
    assert abs(est.mean() - 6.0) < 4.0 * spread / math.sqrt(est.size), (est.mean(), spread)
    assert 0.6 < float(np.median(se)) / spread < 1.6, (np.median(se), spread)
    pop0 = np.array(pop0)
    assert abs(pop0.mean() - 6.0) < 4.0 * np.std(pop0, ddof=1) / math.sqrt(pop0.size), pop0.mean()


def test_data_made_for_another_teacher_are_refused():
    p = Problem(D=8, P=10, N=5, test_size=20)
    q = p.replace(target="hermite:k=3")
    with pytest.raises(ProblemError, match="carry the labels of target 'paper'"):
        solve(q, 5, method="gd", data=p.data())
    with pytest.raises(ProblemError, match="carry the labels of target 'hermite:k=3'"):
        solve(p, 5, method="gd", data=q.data())
