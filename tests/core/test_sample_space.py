"""The sample-space representation of exact full-batch GD (core.sample_space, issue 14 goal 4).

F_t = s_t F_0 + X^T A_t with A in R^{P x r}: the same GD map as the factor representation,
so every recorded column, the final state and a divergence message agree with it to
round-off; ``run_steps`` picks it automatically when P <= D.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazyrich_theory import Problem, solve
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.sample_space import (
    REPRESENTATION_ENV,
    RowSpaceFactor,
    choose_representation,
    step_flops,
)
from lazyrich_theory.core.stepping import Batches, run_steps, step_loop
from lazyrich_theory.core.trackers import Recorder, Tracker
from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.spec.schedule import save_times as make_save_times
from lazyrich_validation import max_relative_deviation, simulate

STEPS = 300
#: |sample - factor| per column, relative to the column's largest |value| (a loss that
#: decays to the round-off floor, ~1e-14 after interpolation at P < D, has no relative digits)
COLUMN_RTOL = 1e-12

OPTIONS = {
    "plain": {},
    "noise": dict(noise=0.3),
    "decay": dict(weight_decay=0.02),
    "momentum": dict(momentum=0.6),
    "all": dict(noise=0.2, weight_decay=0.01, momentum=0.5),
}


def _problem(N, centered=True, convention="A", **kw):
    # D = 24 > P = 10: N = 5 < D + 1 (the network's own factor), N = 40 > D + 1 (QR), inf
    return Problem(D=24, P=10, N=N, alpha=1.0, eps=0.5, eta0=0.5, seed=4, test_size=50,
                   centered=centered, convention=convention, **kw)


def _both(p, steps=STEPS, **kw):
    system = ReducedSystem.build(p)
    times = make_save_times(steps)
    return (system, run_steps(system, times, representation="factor", **kw),
            run_steps(system, times, representation="sample", **kw))


def _assert_same_run(a, b):
    assert a.rows.shape == b.rows.shape and a.stopped_at == b.stopped_at
    scale = np.max(np.abs(a.rows), axis=0)
    dev = np.max(np.abs(a.rows - b.rows), axis=0) / np.where(scale > 0, scale, 1.0)
    assert np.all(dev <= COLUMN_RTOL), dev
    np.testing.assert_allclose(b.F, a.F, rtol=0, atol=COLUMN_RTOL * np.abs(a.F).max())


@pytest.mark.parametrize("N", [5, 40, math.inf], ids=["N<D+1", "N>D+1", "N=inf"])
@pytest.mark.parametrize("centered", [True, False], ids=["centered", "uncentered"])
@pytest.mark.parametrize("convention", ["A", "B"])
def test_sample_equals_factor(N, centered, convention):
    _, a, b = _both(_problem(N, centered, convention))
    _assert_same_run(a, b)


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("N", [5, math.inf], ids=["N<D+1", "N=inf"])
def test_sample_equals_factor_with_options(name, N):
    """Weight decay (F_t = s_t F_0 + X^T A_t with s_t = (1 - eta0 lambda)^t), momentum (the
    velocity factor is of the same form) and label noise, each to round-off."""
    _, a, b = _both(_problem(N, centered=N != 5, **OPTIONS[name]))
    _assert_same_run(a, b)


def test_sample_equals_factor_with_early_stop_and_observers():
    """Observers get the factor F at the save times; an early stop ends both runs at the
    same save time."""
    seen = []

    def obs(system, F):
        assert isinstance(F, np.ndarray) and F.shape == system.F0.shape
        seen.append(1)
        return float(np.sum(F * F))

    p = _problem(math.inf)
    system = ReducedSystem.build(p, observers={"sumsq": obs})
    times = make_save_times(2000)
    ref = solve(p, 2000, method="gd", stop=0.466)
    a, b = (run_steps(system, times, stop=0.466, representation=rep)
            for rep in ("factor", "sample"))
    assert a.stopped_at is not None and a.stopped_at < 2000
    assert ref.stats.stopped_at == a.stopped_at
    _assert_same_run(a, b)
    assert len(seen) == 2 * len(a.rows)


def test_trackers_get_a_lazy_factor_per_step():
    """Per-step hooks get a RowSpaceFactor, which becomes F under numpy.asarray (cached)."""
    class Keep(Tracker):
        per_step = True

        def __init__(self):
            self.states = []

        def step(self, t, F, loss):
            self.states.append(F)

    p = _problem(math.inf, weight_decay=0.05)
    system = ReducedSystem.build(p)
    times = make_save_times(20)
    keep, rec = Keep(), Recorder(times.size, system.width())
    F = step_loop(system, times, Batches(system), [keep, rec], representation="sample")
    assert all(isinstance(s, RowSpaceFactor) for s in keep.states)
    last = keep.states[-1]
    assert np.asarray(last) is F and last.s == pytest.approx((1 - p.eta0 * 0.05) ** 20)
    np.testing.assert_allclose(last.XF, system.X @ F, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(np.asarray(keep.states[0]), system.F0)


def test_automatic_choice(monkeypatch):
    monkeypatch.delenv(REPRESENTATION_ENV, raising=False)
    for P, D, want in [(10, 100, "sample"), (100, 100, "sample"), (150, 100, "factor"),
                       (250, 100, "factor")]:
        system = ReducedSystem.build(Problem(D=D, P=P, N=math.inf, test_size=5))
        assert choose_representation(system) == want, (P, D)
        assert choose_representation(system, "factor") == "factor"
        assert choose_representation(system, "sample") == "sample"
    assert step_flops(10, 100, 101, "sample") * 20 == step_flops(10, 100, 101, "factor")
    # SGD: the factor always; forcing sample space is refused
    sgd = ReducedSystem.build(Problem(D=100, P=10, N=math.inf, test_size=5, batch_size=5))
    assert choose_representation(sgd) == "factor"
    with pytest.raises(ProblemError, match="full-batch GD only"):
        choose_representation(sgd, "sample")
    # the environment forces one (for benchmarks); a bad name is refused
    small = ReducedSystem.build(Problem(D=100, P=10, N=math.inf, test_size=5))
    monkeypatch.setenv(REPRESENTATION_ENV, "factor")
    assert choose_representation(small) == "factor"
    assert choose_representation(small, "sample") == "sample"
    monkeypatch.setenv(REPRESENTATION_ENV, "diagonal")
    with pytest.raises(ProblemError, match="representation must be one of"):
        choose_representation(small)


@pytest.mark.parametrize("N", [5, math.inf], ids=["N<D+1", "N=inf"])
@pytest.mark.parametrize("alpha, factor", [(1.0, 2.0), (1e6, 1.02)], ids=["rich", "lazy-late"])
def test_divergence_reports_the_same_step(N, alpha, factor):
    """The same step and the same message (its bound is evaluated at the last healthy state,
    which the sample representation forms only then).  Rich: a blow-up in a few steps;
    lazy at 1.02 x the stable bound: after ~250 steps."""
    p = _problem(N).replace(alpha=alpha)
    system = ReducedSystem.build(p)
    q = p.replace(eta0=factor * system.eta0_bound(system.F0))
    errs = []
    for rep in ("factor", "sample"):
        with pytest.raises(DivergenceError) as info:
            run_steps(ReducedSystem.build(q), make_save_times(3000), representation=rep)
        errs.append(info.value)
    assert errs[0].step == errs[1].step and errs[0].step > (100 if alpha > 1 else 1)
    assert str(errs[0]) == str(errs[1])


@pytest.mark.parametrize("N", [5, 40], ids=["N<D+1", "N>D+1"])
@pytest.mark.parametrize("name", ["plain", "all"])
def test_solve_gd_at_P_below_D_equals_the_network(N, name, monkeypatch):
    """solve(method="gd") runs sample space at P < D (automatically) and equals the numpy
    network (lazyrich_validation.simulate) to 1e-10 relative on train and test loss."""
    monkeypatch.delenv(REPRESENTATION_ENV, raising=False)
    p = _problem(N, **OPTIONS[name]).replace(eta0=0.2)
    assert choose_representation(ReducedSystem.build(p)) == "sample"
    red, net = solve(p, STEPS, method="gd"), simulate(p, STEPS)
    assert red.info["representation"] == "sample"           # recorded in run.json
    res = max_relative_deviation(red, net, columns=("train_loss", "test_loss"))
    assert res["n_times"] == len(red.t) and res["max"] <= 1e-10, res
    W = net.final_state["W"]
    np.testing.assert_allclose(red.final_state["M"], W.T @ W / N, rtol=0,
                               atol=1e-10 * np.abs(red.final_state["M"]).max())


def test_stats_field_round_trips():
    from lazyrich_theory.results.stats import SolverStats

    stats = SolverStats(steps=5, rank=3, representation="sample")
    info = stats.to_info()
    assert list(info)[:3] == ["steps", "rank", "representation"]
    assert SolverStats.from_info(info) == stats
    assert "representation" not in SolverStats(steps=5).to_info()


def test_an_option_sample_space_does_not_implement_runs_the_factor(monkeypatch):
    """A training option outside SAMPLE_OPTIONS (e.g. a new table entry) is never silently
    ignored: auto picks the factor (ReducedSystem.increment), forcing sample is refused."""
    from lazyrich_theory.core import sample_space
    from lazyrich_theory.errors import ProblemError
    from lazyrich_theory.spec.problem import TRAINING_OPTIONS

    assert sample_space.SAMPLE_OPTIONS <= set(TRAINING_OPTIONS)
    monkeypatch.delenv(REPRESENTATION_ENV, raising=False)
    s = ReducedSystem.build(_problem(5))
    assert choose_representation(s) == "sample"
    monkeypatch.setattr(sample_space, "options_in_use", lambda p: {"new_option": 1.0})
    assert choose_representation(s) == "factor"
    with pytest.raises(ProblemError, match="new_option"):
        choose_representation(s, "sample")
