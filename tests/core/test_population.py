"""Population (online) ODE: 2-scalar reduction vs D-dimensional flow, and vs the reduced
finite-P solver at very large P."""

import inspect

import numpy as np
import pytest

from lazyrich_theory import Problem, ProblemError
from lazyrich_theory.core.population import (
    SUPPORTED_OPTIONS,
    check_options,
    population,
    population_grid,
    rich_transition_time,
)
from lazyrich_theory.core.solve import solve


@pytest.mark.parametrize("centered", [True, False])
@pytest.mark.parametrize("convention", ["A", "B"])
def test_scalar_reduction_equals_full_flow(centered, convention):
    p = Problem(D=16, P=10, N="inf", alpha=1.2, eps=0.15, eta0=1.0, seed=1, test_size=5,
                centered=centered, convention=convention)
    a = population(p, 3000, method="scalar", rtol=1e-11, atol=1e-14)
    b = population(p, 3000, method="full", rtol=1e-11, atol=1e-14)
    for col in ("population_loss", "variance", "misalignment", "alignment", "trace_dM", "frob_dM"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-7, atol=1e-9 * np.max(np.abs(b[col])),
                                   err_msg=col)
    # the flow actually learns the teacher direction (the rich transition happened)
    assert a.population_loss[-1] < 1e-2 * a.population_loss[0]
    assert a.alignment[-1] > 10


def test_population_ode_matches_reduced_solver_at_large_P():
    """At P >> D^2 the finite-data gradient approaches the population one, so the reduced
    flow's population loss must approach the online ODE, with a gap of order sqrt(D^2/P).
    The gap of one sample fluctuates (the transition is sharp and its timing moves with the
    sample), so we average over five seeds: 16x more data must cut the gap by more than 2.5x
    (sqrt(16) = 4 expected; measured 0.086 -> 0.015) and leave it under 3% of the initial
    loss."""
    mean = {}
    for P in (1_000, 16_000):
        errs = []
        for seed in range(5):
            p = Problem(D=8, P=P, N="inf", alpha=1.0, eps=0.3, eta0=1.0, seed=seed, test_size=20)
            pop = population(p, 100, method="scalar", rtol=1e-10, atol=1e-13)
            tr = solve(p, 100, method="flow", integrator="dopri5", rtol=1e-8, atol=1e-11)
            errs.append(np.max(np.abs(tr.population_loss - pop.population_loss))
                        / pop.population_loss[0])
        mean[P] = float(np.mean(errs))
    assert mean[16_000] < 0.03, mean
    assert mean[16_000] < mean[1_000] / 2.5, mean


def test_finite_N_population_flow_runs_and_centering_matters():
    p = Problem(D=10, P=10, N=3, alpha=1.0, eps=0.3, eta0=1.0, seed=0, test_size=5)
    a = population(p, 500)
    assert a.info["population_method"] == "full"
    np.testing.assert_allclose(a.train_loss, a.population_loss)
    b = population(p.replace(centered=False), 500)
    assert not np.allclose(a.population_loss, b.population_loss)
    with pytest.raises(ProblemError):
        population(p, 10, method="scalar")


def test_transition_time_estimate_is_the_right_order():
    p = Problem(D=30, P=10, N="inf", alpha=1.0, eps=0.1, eta0=1.0, seed=0, test_size=5)
    tr = population(p, 20_000)
    L = tr.population_loss
    # time at which the population loss has halved
    half = 0.5 * L[0]
    t_half = tr.t[np.argmax(L < half)]
    beta2 = float(p.data().beta @ p.data().beta)
    t_star = rich_transition_time(p.alpha, p.eps, p.eta0, p.D, beta2, p.tau)
    assert 0.3 < t_half / t_star < 3.0, (t_half, t_star)


def test_population_grid_equals_single_solves():
    from lazyrich_theory.core.population import population_grid

    p = Problem(D=30, P=10, N="inf", alpha=1.0, eps=0.1, eta0=1.0, seed=0, test_size=5)
    alphas, epss = [0.5, 1.0, 3.0], [0.05, 0.2]
    g = population_grid(p, 5000, alphas, epss, save_times=[1234])
    assert g.loss.shape == (3, 2, g.t.size) and 1234 in g.t
    for i, a in enumerate(alphas):
        for j, e in enumerate(epss):
            one = population(p.replace(alpha=a, eps=e), 5000, save_times=[1234], method="scalar",
                             rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(g.loss[i, j], one.population_loss, rtol=1e-12)
    with pytest.raises(ProblemError):
        population_grid(p, 100, [], [0.1])
    with pytest.raises(ProblemError):
        population_grid(p, 100, [-1.0], [0.1])


@pytest.mark.parametrize("centered", [True, False])
def test_weight_decay_scalar_reduction_equals_full_flow_and_changes_the_flow(centered):
    """With decay lambda the scalar system gains -2 eta0 lambda (1 + a), -2 eta0 lambda b;
    the D-dimensional factor flow gains -eta0 lambda F.  The two must agree."""
    p = Problem(D=16, P=10, N="inf", alpha=1.2, eps=0.15, eta0=1.0, seed=1, test_size=5,
                centered=centered, weight_decay=2e-4)
    a = population(p, 3000, method="scalar", rtol=1e-11, atol=1e-14)
    b = population(p, 3000, method="full", rtol=1e-11, atol=1e-14)
    for col in ("population_loss", "variance", "misalignment", "alignment", "trace_dM", "frob_dM"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-7, atol=1e-9 * np.max(np.abs(b[col])),
                                   err_msg=col)
    plain = population(p.replace(weight_decay=0.0), 3000, method="scalar")
    assert np.max(np.abs(a.population_loss - plain.population_loss)) > 1e-3 * plain.population_loss[0]
    # decay shrinks M: tr(M - M0)/D is below the decay-free value at the end
    assert a.trace_dM[-1] < plain.trace_dM[-1]


def test_population_ode_noise_only_shifts_the_train_loss_and_momentum_is_rejected():
    p = Problem(D=12, P=10, N="inf", alpha=1.0, eps=0.2, seed=0, test_size=5)
    a = population(p, 500, method="scalar")
    b = population(p.replace(noise=0.3), 500, method="scalar")
    np.testing.assert_array_equal(a.population_loss, b.population_loss)
    np.testing.assert_array_equal(a.test_loss, b.test_loss)
    np.testing.assert_allclose(b.train_loss, a.train_loss + 0.09, rtol=1e-15)
    with pytest.raises(ProblemError, match="momentum"):
        population(p.replace(momentum=0.5), 100)


def test_online_sgd_with_weight_decay_approaches_the_decayed_population_ode():
    """Online SGD with decay at small eta0 and a large batch tracks the population ODE with
    the same decay, much more closely than the decay-free ODE (seed mean of the max gap;
    measured 0.0096 against the decayed ODE, 0.12 against the decay-free one)."""
    T, eta0, B, lam = 22.6, 0.00625, 80, 0.02
    gap_same, gap_plain = [], []
    for seed in range(4):
        p = Problem(D=10, P=20, N="inf", alpha=1.0, eps=0.5, eta0=eta0, seed=seed,
                    test_size=50, online=True, batch_size=B, weight_decay=lam)
        steps = int(round(T / eta0))
        sg = solve(p, steps, method="gd")
        q = p.replace(online=False, batch_size=None)
        ode = population(q, steps, method="scalar")
        ode0 = population(q.replace(weight_decay=0.0), steps, method="scalar")
        L0 = ode.population_loss[0]
        gap_same.append(np.max(np.abs(sg.population_loss - ode.population_loss)) / L0)
        gap_plain.append(np.max(np.abs(sg.population_loss - ode0.population_loss)) / L0)
    same, plain = float(np.mean(gap_same)), float(np.mean(gap_plain))
    assert same < 0.02 and same < 0.3 * plain, (same, plain)


def test_options_are_checked_in_one_place_with_one_line_errors():
    """check_options names every unsupported option of a method in one line
    (SUPPORTED_OPTIONS); population and population_grid use it."""
    inf = Problem(D=6, P=5, N="inf", alpha=1.0, eps=0.2, seed=0, test_size=5)
    fin = inf.replace(N=3)
    assert check_options(inf) == "scalar" and check_options(fin) == "full"
    assert check_options(inf.replace(noise=0.1, weight_decay=0.01), "full") == "full"
    assert {"noise", "weight_decay"} <= SUPPORTED_OPTIONS["scalar"] & SUPPORTED_OPTIONS["full"]
    cases = [(fin.replace(momentum=0.5), "scalar", ("momentum", "N = inf")),
             (fin.replace(momentum=0.5), "auto", ("momentum",)),
             (inf, "euler", ("auto, scalar, full",))]
    for p, method, words in cases:
        with pytest.raises(ProblemError) as exc:
            population(p, 10, method=method)
        msg = str(exc.value)
        assert "\n" not in msg and all(w in msg for w in words), msg
    with pytest.raises(ProblemError, match="momentum"):
        population_grid(inf.replace(momentum=0.5), 10, [1.0], [0.1])
    population_grid(fin, 10, [1.0], [0.1])          # the grid is the N = inf ODE: N is ignored
    with pytest.raises(ProblemError, match="rtol"):
        population(inf, 10, rtol=0.0)


def test_population_signature_matches_solve():
    """population(problem, steps, *, method, save_times, data, ...): the same order as solve;
    everything after steps is keyword-only."""
    sig = inspect.signature(population).parameters
    names = list(sig)
    assert names[:5] == ["problem", "steps", "method", "save_times", "data"]
    assert all(sig[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names[2:])
    solve_names = list(inspect.signature(solve).parameters)
    assert [n for n in solve_names if n in names[2:5]] == names[2:5]
    p = Problem(D=6, P=5, N="inf", alpha=1.0, eps=0.2, seed=0, test_size=5)
    with pytest.raises(TypeError):
        population(p, 10, "scalar")
