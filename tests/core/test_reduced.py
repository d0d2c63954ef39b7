"""The reduced solver against independent computations (the network tests live in
test_reduced_vs_network.py)."""
import dataclasses
import json
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lazyrich_theory import Problem
from lazyrich_theory.core.reduced import ReducedSystem, initial_factor
from lazyrich_theory.core.richness import RICHNESS_COLUMNS
from lazyrich_theory.core.solve import METHODS, SUPPORTED_OPTIONS, solve
from lazyrich_theory.core.stepping import Batches, step_loop
from lazyrich_theory.core.trackers import Divergence, EarlyStop, Recorder, Tracker
from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.results.stats import SolverStats
from lazyrich_theory.results.trajectory import load
from lazyrich_theory.spec.schedule import save_times as make_save_times


@pytest.mark.parametrize("N", [1, 3, 13, 14, 50, math.inf])
def test_initial_factor_reproduces_statistics(N):
    D = 12
    rng = np.random.default_rng(0)
    W0 = None if math.isinf(N) else rng.standard_normal((N, D))
    F, c, z = initial_factor(W0, D)
    wbar0 = np.zeros(D) if W0 is None else W0.mean(0)
    M0 = np.eye(D) if W0 is None else W0.T @ W0 / N
    np.testing.assert_allclose(F @ z, wbar0, atol=1e-13)
    np.testing.assert_allclose(F @ F.T, M0, atol=1e-13)
    assert F.shape[1] == (D + 1 if W0 is None else min(N, D + 1))
    # the affine map w -> A w + b on every neuron equals F -> A F + b c^T
    A = np.eye(D) + 0.1 * rng.standard_normal((D, D)); b = rng.standard_normal(D)
    F2 = A @ F + np.outer(b, c)
    if W0 is not None:
        W2 = W0 @ A.T + b
        np.testing.assert_allclose(F2 @ z, W2.mean(0), atol=1e-12)
        np.testing.assert_allclose(F2 @ F2.T, W2.T @ W2 / N, atol=1e-11)
    else:
        np.testing.assert_allclose(F2 @ F2.T, A @ A.T + np.outer(b, b), atol=1e-12)
        np.testing.assert_allclose(F2 @ z, b, atol=1e-13)


def _wbar_M_map(problem, steps):
    """docs/theory.md §2.3 (the map (2.4)) written directly on (wbar, M), independent of the
    factor code."""
    d = problem.data()
    s = problem.input_scale
    X, Xt, y, yt = d.X * s, d.X_test * s, d.y, d.y_test
    a, e, k = problem.alpha, problem.eps, problem.eta0
    if d.W0 is None:
        wbar, M = np.zeros(problem.D), np.eye(problem.D)
    else:
        wbar, M = d.W0.mean(0), d.W0.T @ d.W0 / d.W0.shape[0]
    f = lambda Z, w, M: a * Z @ w + 0.5 * a * e * np.einsum("ij,jk,ik->i", Z, M, Z)
    f0, f0t = (f(X, wbar, M), f(Xt, wbar, M)) if problem.centered else (0.0, 0.0)
    out = []
    for t in range(steps + 1):
        r = f(X, wbar, M) - f0 - y
        rt = f(Xt, wbar, M) - f0t - yt
        out.append((r @ r / r.size, rt @ rt / rt.size))
        g = 2 / X.shape[0] * X.T @ r
        G = 2 / X.shape[0] * X.T @ (r[:, None] * X)
        A = np.eye(problem.D) - k * e / a * G
        b = -k / a * g
        Aw = A @ wbar
        M = A @ M @ A.T + np.outer(Aw, b) + np.outer(b, Aw) + np.outer(b, b)
        wbar = Aw + b
    return np.array(out)


@pytest.mark.parametrize("N", [30, math.inf])
@pytest.mark.parametrize("centered", [True, False])
def test_gd_equals_direct_wbar_M_recursion_for_full_rank(N, centered):
    p = Problem(D=10, P=35, N=N, alpha=1.0, eps=0.3, eta0=2.0, seed=4, test_size=50,
                centered=centered)
    steps = 400
    ref = _wbar_M_map(p, steps)
    tr = solve(p, steps, method="gd", save_times=range(0, steps + 1))
    np.testing.assert_allclose(tr.train_loss, ref[:, 0], rtol=1e-9)
    np.testing.assert_allclose(tr.test_loss, ref[:, 1], rtol=1e-9)


def test_rank_preserved_when_N_below_D(narrow_problem):
    tr = solve(narrow_problem, 3000, method="gd")
    M = tr.final_state["M"]
    ev = np.linalg.eigvalsh(M)
    assert np.all(np.abs(ev[:-2]) < 1e-12 * ev[-1])  # rank(M) <= N = 2 exactly
    assert tr.train_loss[-1] < 0.1 * tr.train_loss[0]


def test_flow_matches_scipy_reference(small_problem):
    p = small_problem
    steps = 3000
    tr = solve(p, steps, method="flow", integrator="dopri5", rtol=1e-10, atol=1e-12)
    system = ReducedSystem.build(p)
    shape = system.F0.shape
    sol = solve_ivp(lambda t, y: system.rhs(t, y.reshape(shape)).ravel(), (0, steps),
                    system.F0.ravel(), method="DOP853", t_eval=tr.t, rtol=1e-11, atol=1e-13)
    ref = np.array([system.record(sol.y[:, k].reshape(shape))[0] for k in range(len(tr.t))])
    np.testing.assert_allclose(tr.train_loss, ref, rtol=1e-7)
    assert tr.info["n_rhs"] > 0


def test_flow_tolerance_controls_error(small_problem):
    exact = solve(small_problem, 2000, method="flow", integrator="dopri5", rtol=1e-11, atol=1e-13).test_loss
    errs = []
    for rtol in (1e-4, 1e-7):
        tr = solve(small_problem, 2000, method="flow", integrator="dopri5", rtol=rtol, atol=rtol * 1e-3)
        errs.append(np.max(np.abs(tr.test_loss - exact) / exact))
    assert errs[1] < errs[0] and errs[1] < 1e-5


def test_gd_approaches_flow_at_first_order(small_problem):
    """GD is forward Euler of the flow with step 1 (in GD steps): at fixed tau = eta0 t the
    GD-flow gap must halve when eta0 halves."""
    gaps = []
    for eta0, steps in ((1.0, 400), (0.5, 800), (0.25, 1600)):
        p = small_problem.replace(eta0=eta0)
        gd = solve(p, steps, method="gd")
        fl = solve(p, steps, method="flow", integrator="dopri5", rtol=1e-11, atol=1e-13)
        gaps.append(np.max(np.abs(gd.train_loss - fl.train_loss)))
    r1, r2 = gaps[0] / gaps[1], gaps[1] / gaps[2]
    assert 1.7 < r1 < 2.3 and 1.8 < r2 < 2.2, gaps


def test_divergence_is_reported_with_step_and_bound(small_problem):
    system = ReducedSystem.build(small_problem)
    bound = system.eta0_bound(system.F0)
    with pytest.raises(DivergenceError) as exc:
        solve(small_problem.replace(eta0=3 * bound), 5000, method="gd")
    msg = str(exc.value)
    assert "step" in msg and "eta0 <" in msg and "\n" not in msg
    assert exc.value.eta0_bound == pytest.approx(bound, rel=0.5)
    # just below the bound GD is stable
    tr = solve(small_problem.replace(eta0=0.5 * bound), 300, method="gd")
    assert np.all(np.isfinite(tr.train_loss)) and tr.train_loss[-1] < tr.train_loss[0]


def test_convention_B_is_A_with_doubled_target():
    pa = Problem(D=10, P=30, N=4, eps=0.3, seed=8, test_size=40)
    pb = pa.replace(convention="B")
    ta, tb = solve(pa, 200, method="gd"), solve(pb, 200, method="gd")
    da, db = pa.data(), pb.data()
    np.testing.assert_allclose(db.X / math.sqrt(10), da.X, rtol=1e-12)
    np.testing.assert_allclose(db.y, 2 * da.y, rtol=1e-12)
    assert not np.allclose(ta.train_loss, tb.train_loss)


# ------------------------------------------------------------------ loop, trackers, results
def _alignment(system, F):
    return float(np.sum(F * F))


def test_observers_are_a_field_kept_by_replace(small_problem):
    system = ReducedSystem.build(small_problem, observers={"sq": _alignment})
    assert "observers" in {f.name for f in dataclasses.fields(system)}
    assert "_observers" not in system.__dict__
    copy = dataclasses.replace(system)
    # the richness columns (issue 17) come first, then the caller's observers
    assert list(copy.observers) == [*RICHNESS_COLUMNS, "sq"]
    assert copy.observers["sq"] is _alignment and copy.width() == system.width()
    np.testing.assert_array_equal(copy.record(copy.F0), system.record(system.F0))
    assert tuple(ReducedSystem.build(small_problem).observers) == RICHNESS_COLUMNS
    with pytest.raises(ProblemError, match="clashes"):
        ReducedSystem.build(small_problem, observers={"test_loss": _alignment})


def test_early_stop_is_the_full_run_cut_at_the_first_converged_save(small_problem):
    """The sweeps' rule: stop at the first save time where train and test loss are both
    below tol; the trajectory is the full one cut there, bit for bit."""
    p = Problem(D=6, P=80, N=30, alpha=1.0, eps=1.0, eta0=0.5, seed=1, test_size=60)
    full = solve(p, 3000, method="gd")
    for tol in (1e-2, 1e-3):
        hit = np.flatnonzero((full.train_loss < tol) & (full.test_loss < tol))
        k = int(hit[0]) + 1
        cut = solve(p, 3000, method="gd", stop=tol)
        assert len(cut.t) == k and 0 < k < len(full.t)
        for col in ("t",) + full.columns:
            np.testing.assert_array_equal(cut[col], full[col][:k])
        assert cut.info["stopped_at"] == cut.t[-1] and cut.info["stop_tol"] == tol
        assert cut.stats.stopped_at == int(cut.t[-1])
        # the final state is the state at the stop
        again = solve(p, int(cut.t[-1]), method="gd")
        np.testing.assert_array_equal(cut.final_state["F"], again.final_state["F"])
    never = solve(p, 3000, method="gd", stop=0.0)     # losses are never < 0
    np.testing.assert_array_equal(never.test_loss, full.test_loss)
    assert "stopped_at" not in never.info and never.info["stop_tol"] == 0.0
    assert "stop_tol" not in full.info


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "x", True])
def test_early_stop_rejects_bad_tolerances(small_problem, bad):
    with pytest.raises(ProblemError) as exc:
        solve(small_problem, 10, method="gd", stop=bad)
    assert "\n" not in str(exc.value)


def test_options_table_is_what_solve_checks(small_problem):
    assert set(SUPPORTED_OPTIONS) == set(METHODS)
    with pytest.raises(ProblemError, match="stop needs method 'gd'"):
        solve(small_problem, 10, method="flow", stop=1e-3)
    with pytest.raises(ProblemError, match="momentum needs method 'gd'"):
        solve(small_problem.replace(momentum=0.5), 10, method="flow")
    with pytest.raises(ProblemError, match="minibatch SGD needs method 'gd'"):
        solve(small_problem.replace(batch_size=4), 10, method="flow")
    with pytest.raises(ProblemError, match="method must be"):
        solve(small_problem, 10, method="euler")
    # integrator / tolerances are validated for every method (gd ignores them)
    with pytest.raises(ProblemError, match="integrator"):
        solve(small_problem, 10, method="gd", integrator="rk4")
    assert solve(small_problem, 10, method="gd", integrator="dopri5", rtol=1e-3).t[-1] == 10


class _Counter(Tracker):
    per_step = True

    def __init__(self):
        self.steps, self.saves, self.closed = [], [], False

    def step(self, t, F, loss):
        self.steps.append(t)

    def save(self, k, t, F, row):
        self.saves.append((k, t))
        return False

    def close(self):
        self.closed = True


def test_step_loop_calls_every_tracker_and_closes_them(small_problem):
    system = ReducedSystem.build(small_problem)
    times = make_save_times(300)
    counter, rec = _Counter(), Recorder(times.size, system.width())
    F = step_loop(system, times, Batches(system), [counter, rec])
    assert counter.steps == list(range(301)) and counter.closed
    assert counter.saves == list(enumerate(times))
    ref = solve(small_problem, 300, method="gd")
    np.testing.assert_array_equal(rec.rows[:, 0], ref.train_loss)
    np.testing.assert_array_equal(F, ref.final_state["F"])
    # a tracker stopping the run: the loop ends at that save, still recorded by all
    stop, rec2, counter2 = EarlyStop(1e300), Recorder(times.size, system.width()), _Counter()
    step_loop(system, times, Batches(system), [stop, rec2, counter2])
    assert rec2.rows.shape[0] == 1 and counter2.saves == [(0, 0)] and stop.stopped_at == 0
    # trackers are closed on an error too
    bad, counter3 = small_problem.replace(eta0=50.0), _Counter()
    sys_bad = ReducedSystem.build(bad)
    with pytest.raises(DivergenceError):
        step_loop(sys_bad, times, Batches(sys_bad), [Divergence(sys_bad), counter3])
    assert counter3.closed and counter3.steps[-1] < 300


def test_flow_divergence_tracker_checks_every_column(small_problem):
    system = ReducedSystem.build(small_problem)
    div = Divergence(system, flow=True)
    assert not div.per_step
    row = system.record(system.F0)
    div.save(0, 0.0, system.F0, row)
    bad = list(row)
    bad[-1] = math.nan                  # a diagnostic column, not the loss ...
    blown = np.full_like(system.F0, np.inf)   # ... on a state that has blown up
    with pytest.raises(DivergenceError, match="non-finite or exploding loss") as exc:
        div.save(1, 5.0, blown, bad)
    assert exc.value.step == 5.0 and exc.value.eta0_bound > 0
    bad_core = list(row)
    bad_core[3] = math.nan              # a core column (variance) on a finite state
    with pytest.raises(DivergenceError, match="non-finite or exploding loss"):
        div.save(1, 5.0, system.F0, bad_core)
    # the discrete loop's save check reads the train loss only
    Divergence(system).save(0, 0.0, system.F0, bad)


def test_flow_names_an_observer_that_returns_nan_on_a_finite_state(small_problem):
    """A user's observer dividing by zero is not a divergence of the flow: the error names
    the observer instead of blaming alpha and eps."""
    obs = {"ratio": lambda system, F: math.nan}
    with pytest.raises(ProblemError, match="observer 'ratio' returned nan at t=0"):
        solve(small_problem, 200, method="flow", observers=obs)
    system = ReducedSystem.build(small_problem, observers=obs)
    row = system.record(system.F0)
    with pytest.raises(ProblemError, match="observer 'ratio'"):
        Divergence(system, flow=True).save(0, 0.0, system.F0, row)


def test_progress_bar_does_not_change_the_run(small_problem):
    a = solve(small_problem, 600, method="gd")
    b = solve(small_problem, 600, method="gd", progress=True)
    for col in a.columns:
        np.testing.assert_array_equal(a[col], b[col])


def test_solver_stats_are_typed_and_info_keeps_the_run_json_keys(small_problem, tmp_path):
    gd = solve(small_problem, 50, method="gd")
    assert list(gd.info) == ["steps", "rank", "representation", "wall_time",
                             "init"]                                 # init: issue 17 contract
    assert gd.info["init"]["init"] == "iid" and gd.info["init"]["participation_ratio"] > 0
    assert gd.stats == SolverStats(steps=50, rank=13, representation="factor",
                                   wall_time=gd.info["wall_time"])
    fl = solve(small_problem, 50, method="flow")
    assert list(fl.info) == ["steps", "rank", "n_rhs", "n_accepted", "n_rejected", "n_rho",
                             "max_stages", "integrator", "rtol", "atol", "wall_time", "init"]
    st = fl.stats
    assert st.integrator == "rkc" and st.rtol == 1e-4 and st.n_rhs > 0 and st.sgd is None
    assert SolverStats.from_info(st.to_info()) == st
    fl.save(tmp_path, plot=False)
    run = json.loads((tmp_path / "run.json").read_text())
    assert set(run) == {"method"} | set(fl.info)
    assert load(tmp_path).stats == st
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.n_rhs = 0


def test_with_info_returns_a_new_trajectory(small_problem):
    tr = solve(small_problem, 20, method="gd")
    before = dict(tr.info)
    new = tr.with_info(summary={"x": 1.0}, steps=7)
    assert tr.info == before and "summary" not in tr.info
    assert new.info == {**before, "summary": {"x": 1.0}, "steps": 7}
    assert new.train_loss is tr.train_loss and new.problem == tr.problem
