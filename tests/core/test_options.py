"""Training options of issue #6 (docs/theory.md §9): label noise, weight decay, momentum.

Each option is exact in the reduced dynamics: ``solve(method="gd")`` must equal the plain
numpy network (``validation.simulate``, which shares no numerics with it) to <= 1e-8 relative
on train and test loss over >= 1000 steps, for N < D and N > D + 1, centered or not.
Measured deviations are ~1e-14.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lazyrich_theory import Problem, ProblemError, solve
from lazyrich_theory.cli.app import main
from lazyrich_theory.core.population import population
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.stepping import run_steps
from lazyrich_theory.spec.schedule import save_times as make_save_times
from lazyrich_validation import max_relative_deviation, simulate

LOSS_RTOL = 1e-8
STEPS = 1200
OPTIONS = {
    "noise": dict(noise=0.3),
    "decay": dict(weight_decay=0.02),
    "momentum": dict(momentum=0.6),
    "noise+decay": dict(noise=0.3, weight_decay=0.02),
    "all": dict(noise=0.2, weight_decay=0.01, momentum=0.5),
}


def _problem(N, centered, **kw):
    # D = 12: N = 5 < D (the network's own factor) and N = 30 > D + 1 (QR factor)
    return Problem(D=12, P=40, N=N, alpha=1.0, eps=0.5, eta0=0.3, seed=1, test_size=60,
                   centered=centered, **kw)


@pytest.mark.parametrize("centered", [True, False], ids=["centered", "uncentered"])
@pytest.mark.parametrize("N", [5, 30], ids=["N<D", "N>D+1"])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_reduced_equals_network(name, N, centered):
    p = _problem(N, centered, **OPTIONS[name])
    red = solve(p, STEPS, method="gd")
    net = simulate(p, STEPS)
    res = max_relative_deviation(red, net, columns=("train_loss", "test_loss"))
    assert res["n_times"] == len(red.t) and red.t[-1] == STEPS
    assert res["max"] <= LOSS_RTOL, res
    # the final statistics too
    W = net.final_state["W"]
    np.testing.assert_allclose(red.final_state["M"], W.T @ W / N, rtol=0,
                               atol=1e-10 * np.abs(red.final_state["M"]).max())


@pytest.mark.parametrize("name", ["decay", "momentum", "noise"])
def test_options_change_the_trajectory(name):
    """Non-vacuous: every option moves the losses well beyond round-off."""
    base = solve(_problem(5, True), STEPS, method="gd")
    opt = solve(_problem(5, True, **OPTIONS[name]), STEPS, method="gd")
    rel = np.abs(opt.train_loss[-1] - base.train_loss[-1]) / base.train_loss[-1]
    assert rel > 1e-2


def test_weight_decay_convention_is_one_shrink_per_step():
    """One step is W <- (1 - eta0 lambda) W - eta dL/dW (eta = eta0 N / alpha^2) in the network,
    and F <- (1 - eta0 lambda) F - (eta0/alpha)(eps G F + g c^T) in the reduced solver."""
    from lazyrich_validation.network import loss_and_grad

    lam, eta0, alpha = 0.05, 0.2, 1.5
    p = Problem(D=6, P=10, N=4, alpha=alpha, eps=0.3, eta0=eta0, seed=0, test_size=10,
                weight_decay=lam, centered=False)
    d = p.data()
    _, gW, _ = loss_and_grad(p, d.W0, d.X, d.y)
    want = (1 - eta0 * lam) * d.W0 - (eta0 * 4 / alpha**2) * gW
    np.testing.assert_allclose(simulate(p, 1).final_state["W"], want, rtol=1e-13, atol=1e-15)
    F = solve(p, 1, method="gd").final_state["F"]           # N <= D + 1: F = W^T / sqrt(N)
    np.testing.assert_allclose(F, want.T / 2.0, rtol=1e-12, atol=1e-15)


def test_momentum_zero_is_plain_gd_bit_for_bit():
    p = _problem(30, True, weight_decay=0.01)
    sys_ = ReducedSystem.build(p)
    times = make_save_times(300)
    rows_plain, F_plain, _, _ = run_steps(sys_, times)
    rows_hb, F_hb, _, _ = run_steps(sys_, times, heavy_ball=True)
    assert rows_plain.shape == (times.size, sys_.width())
    np.testing.assert_array_equal(rows_plain, rows_hb)
    np.testing.assert_array_equal(F_plain, F_hb)
    # and the Problem default momentum=0 is the same run
    a = solve(_problem(5, False), 300, method="gd")
    b = solve(_problem(5, False, momentum=0.0), 300, method="gd")
    np.testing.assert_array_equal(a.train_loss, b.train_loss)


def test_weight_decay_flow_is_the_small_step_limit_of_gd():
    """dF/dt gets -eta0 lambda F: the flow (dopri5) tracks GD at small eta0."""
    p = Problem(D=10, P=30, N=4, alpha=1.0, eps=0.5, eta0=0.02, seed=2, test_size=40,
                weight_decay=0.5)
    gd = solve(p, 2000, method="gd")
    fl = solve(p, 2000, method="flow", integrator="dopri5")
    np.testing.assert_allclose(fl.train_loss, gd.train_loss, rtol=2e-2)
    nodecay = solve(p.replace(weight_decay=0.0), 2000, method="flow", integrator="dopri5")
    assert abs(nodecay.train_loss[-1] - fl.train_loss[-1]) > 0.1 * fl.train_loss[-1]


def test_noise_zero_data_is_bit_identical_to_four_streams():
    """spawn(5)[:4] are the children of spawn(4): the noise=0 data are unchanged."""
    for seed in (0, 7, 123456789):
        a = np.random.SeedSequence(seed).spawn(4)
        b = np.random.SeedSequence(seed).spawn(5)[:4]
        for x, y in zip(a, b):
            np.testing.assert_array_equal(np.random.default_rng(x).standard_normal(20),
                                          np.random.default_rng(y).standard_normal(20))
    p = Problem(D=8, P=20, N=3, seed=5, test_size=30)
    d = p.data()
    # the pre-option sampler, inlined
    rx, rt, rb, rw = (np.random.default_rng(s) for s in np.random.SeedSequence(5).spawn(4))
    X = rx.standard_normal((20, 8)) * (1.0 / math.sqrt(8))
    Xt = rt.standard_normal((30, 8)) * (1.0 / math.sqrt(8))
    beta = rb.standard_normal(8)
    W0 = rw.standard_normal((3, 8))
    for got, want in ((d.X, X), (d.X_test, Xt), (d.beta, beta), (d.W0, W0),
                      (d.y, 0.5 * (X @ beta) ** 2), (d.y_test, 0.5 * (Xt @ beta) ** 2)):
        np.testing.assert_array_equal(got, want)
    # noise only touches the training labels, from the fifth stream
    n = p.replace(noise=0.4).data()
    for name in ("X", "X_test", "beta", "W0", "y_test"):
        np.testing.assert_array_equal(getattr(n, name), getattr(d, name))
    xi = np.random.default_rng(np.random.SeedSequence(5).spawn(5)[4]).standard_normal(20)
    np.testing.assert_array_equal(n.y, d.y + 0.4 * xi)


@pytest.mark.parametrize("field,value", [
    ("noise", -0.1), ("noise", math.nan), ("noise", "x"), ("noise", True),
    ("weight_decay", -1e-3), ("weight_decay", math.inf),
    ("momentum", 1.0), ("momentum", -0.1), ("momentum", 1.5),
])
def test_bad_values_raise_one_line(field, value):
    with pytest.raises(ProblemError) as exc:
        Problem(D=5, P=5, N=2, **{field: value})
    assert "\n" not in str(exc.value) and field in str(exc.value)


def test_serialisation_and_repr():
    p = Problem(D=5, P=5, N=2, noise=0.1, weight_decay=0.2, momentum=0.3)
    d = p.to_dict()
    assert (d["noise"], d["weight_decay"], d["momentum"]) == (0.1, 0.2, 0.3)
    assert Problem.from_json(p.to_json()) == p
    assert "noise=0.1" in repr(p) and "weight_decay=0.2" in repr(p) and "momentum=0.3" in repr(p)
    # defaults are omitted, so older problem.json files load and compare unchanged
    q = Problem(D=5, P=5, N=2)
    assert not {"noise", "weight_decay", "momentum"} & set(q.to_dict())
    old = json.loads(q.to_json())
    assert Problem.from_dict(old) == q and q.momentum == 0.0


def test_flow_with_momentum_and_population_with_options_raise():
    with pytest.raises(ProblemError, match="momentum"):
        solve(_problem(5, True, momentum=0.5), 10, method="flow")
    for kw in OPTIONS.values():     # the online flow has noise and decay, not momentum
        if kw.get("momentum"):
            with pytest.raises(ProblemError, match="momentum"):
                population(_problem(5, True, **kw), 10)
        else:
            assert np.isfinite(population(_problem(5, True, **kw), 10).population_loss).all()


def test_simulate_rejects_trained_readouts_with_decay_or_momentum():
    with pytest.raises(ProblemError):
        simulate(_problem(5, True, momentum=0.5), 10, train_readouts=True)


SMALL = ["--D", "12", "--P", "40", "--N", "5", "--eps", "0.5", "--eta0", "0.3",
         "--test-size", "60", "--steps", "1000", "--quiet", "--no-plot"]


def test_cli_flags_solve_and_simulate_agree(tmp_path, capsys):
    opts = ["--noise", "0.2", "--weight-decay", "0.01", "--momentum", "0.5"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["solve", *SMALL, *opts, "--no-theory", "--out", str(a)]) == 0
    assert main(["simulate", *SMALL, *opts, "--out", str(b)]) == 0
    pj = json.loads((a / "problem.json").read_text())
    assert (pj["noise"], pj["weight_decay"], pj["momentum"]) == (0.2, 0.01, 0.5)
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    dev = float(out.split("max relative deviation:")[1].split()[0])
    assert dev <= LOSS_RTOL


@pytest.mark.parametrize("cmd,bad", [
    ("solve", ["--noise", "-1"]),
    ("solve", ["--weight-decay", "-0.1"]),
    ("solve", ["--momentum", "1"]),
    ("solve", ["--momentum", "abc"]),
    ("simulate", ["--noise", "nan"]),
    ("solve", ["--momentum", "0.5", "--method", "flow"]),
    ("population", ["--momentum", "0.5"]),
])
def test_cli_bad_values_exit_2(tmp_path, capsys, cmd, bad):
    out = tmp_path / "o"
    assert main([cmd, *SMALL, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() and "\n" not in err.strip()
    assert not (out / "trajectory.csv").exists()


# ------------------------------------------------ weight decay, PyTorch/optax reading (issue 15)
TORCH_RTOL = 1e-12


def _torch_problem(N, centered, **kw):
    # alpha != 1, so that the conversion lambda = lambda_t N / alpha^2 is not the identity
    return Problem(D=12, P=40, N=N, alpha=1.5, eps=0.5, eta0=0.3, seed=1, test_size=60,
                   centered=centered, **kw)


@pytest.mark.parametrize("centered", [True, False], ids=["centered", "uncentered"])
@pytest.mark.parametrize("N", [5, 30], ids=["N<D", "N>D+1"])
@pytest.mark.parametrize("extra", [{}, dict(momentum=0.5, noise=0.2)], ids=["decay", "all"])
def test_both_weight_decay_readings_equal_the_network(N, centered, extra):
    """--weight-decay (ours, W <- (1 - eta0 lambda) W - eta grad) and --weight-decay-torch
    (PyTorch/optax, W <- W - eta (grad + lambda_t W), implemented literally by the network)
    each equal the numpy network to 1e-12 relative; the torch reading is ours at
    lambda = lambda_t N / alpha^2 (the same reduced run, bit for bit)."""
    lam_t = 0.03 / N
    ours = _torch_problem(N, centered, weight_decay=lam_t * N / 1.5**2, **extra)
    torch = _torch_problem(N, centered, weight_decay_torch=lam_t, **extra)
    assert torch.weight_decay == ours.weight_decay
    for p in (ours, torch):
        red, net = solve(p, STEPS, method="gd"), simulate(p, STEPS)
        res = max_relative_deviation(red, net, columns=("train_loss", "test_loss"))
        assert res["n_times"] == len(red.t) and res["max"] <= TORCH_RTOL, (p, res)
    a, b = solve(ours, STEPS, method="gd"), solve(torch, STEPS, method="gd")
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    np.testing.assert_array_equal(a.test_loss, b.test_loss)


def test_weight_decay_torch_is_converted_once():
    """weight_decay_torch lambda_t (PyTorch/optax: W <- W - eta (grad + lambda_t W)) sets
    weight_decay = lambda_t N / alpha^2; problem.json keeps the user's field; replace converts
    again at the new N / alpha; giving both, or N = inf, is refused in one line."""
    from lazyrich_theory.spec.problem import options_in_use, weight_decay_from_torch

    p = Problem(D=5, P=5, N=40, alpha=2.0, eta0=0.5, weight_decay_torch=1e-3)
    assert p.weight_decay == weight_decay_from_torch(1e-3, 40, 2.0) == 1e-3 * 40 / 4
    assert p.eta0 * p.weight_decay == pytest.approx(p.eta * 1e-3, rel=1e-15)
    d = p.to_dict()
    assert d["weight_decay_torch"] == 1e-3 and "weight_decay" not in d
    assert Problem.from_json(p.to_json()) == p and p.has_options
    assert options_in_use(p) == {"weight_decay_torch": 1e-3}
    assert p.replace(alpha=1.0).weight_decay == 1e-3 * 40
    assert p.replace(N=10).weight_decay == 1e-3 * 10 / 4
    assert p.replace(weight_decay_torch=0.0).weight_decay == 0.0     # off, not left behind
    q = p.canonical()
    assert (q.weight_decay, q.weight_decay_torch) == (p.weight_decay, 0.0)
    assert "weight_decay_torch" not in q.to_dict()
    for bad in (dict(weight_decay=0.1), dict(N="inf")):
        with pytest.raises(ProblemError) as exc:
            Problem(**{**dict(D=5, P=5, N=40, weight_decay_torch=1e-3), **bad})
        assert "\n" not in str(exc.value) and "weight_decay_torch" in str(exc.value)
    with pytest.raises(ProblemError, match="not both"):
        p.replace(weight_decay=0.1)
    with pytest.raises(ProblemError, match="weight_decay_torch must be >= 0"):
        Problem(weight_decay_torch=-1.0)
    # a problem.json written before the field existed loads and compares unchanged
    old = Problem(D=5, P=5, N=2, weight_decay=0.2)
    assert "weight_decay_torch" not in old.to_dict()
    assert Problem.from_dict(json.loads(old.to_json())) == old


def test_weight_decay_torch_convention_is_the_gradient_of_the_l2_penalty():
    """One step is W <- W - eta (dL/dW + lambda_t W) with the raw step eta = eta0 N / alpha^2,
    in the network (written literally) and in the reduced solver (through the one conversion)."""
    from lazyrich_validation.network import loss_and_grad

    lam_t, eta0, alpha, N = 0.01, 0.2, 1.5, 4
    p = Problem(D=6, P=10, N=N, alpha=alpha, eps=0.3, eta0=eta0, seed=0, test_size=10,
                weight_decay_torch=lam_t, centered=False)
    d = p.data()
    _, gW, _ = loss_and_grad(p, d.W0, d.X, d.y)
    eta = eta0 * N / alpha**2
    want = d.W0 - eta * (gW + lam_t * d.W0)
    np.testing.assert_allclose(simulate(p, 1).final_state["W"], want, rtol=1e-13, atol=1e-15)
    F = solve(p, 1, method="gd").final_state["F"]           # N <= D + 1: F = W^T / sqrt(N)
    np.testing.assert_allclose(F, want.T / 2.0, rtol=1e-12, atol=1e-15)


def test_reading_weight_decay_the_optax_way_is_a_different_run():
    """The outside check's mistake: --weight-decay lambda is not PyTorch's weight_decay=lambda
    (that is --weight-decay-torch lambda); at N = 30, alpha = 1.5 they differ well beyond
    round-off."""
    ours = solve(_torch_problem(30, True, weight_decay=0.01), STEPS, method="gd")
    torch = solve(_torch_problem(30, True, weight_decay_torch=0.01), STEPS, method="gd")
    assert abs(torch.test_loss[-1] - ours.test_loss[-1]) > 0.1 * ours.test_loss[-1]


def test_weight_decay_torch_population_and_flow_use_the_converted_rate():
    """The flow and the population ODE (finite N) see the converted weight decay."""
    p = _torch_problem(5, True, weight_decay_torch=0.004)
    q = p.canonical()
    assert q.weight_decay_torch == 0.0 and q.weight_decay == p.weight_decay
    for run in (lambda x: solve(x, 200, method="flow"), lambda x: population(x, 200)):
        np.testing.assert_array_equal(run(p).population_loss, run(q).population_loss)


# ---------------------------------------- the option table drives every method check (issue 12)
def test_supported_options_come_from_the_table():
    from lazyrich_theory.core import population as pop
    from lazyrich_theory.core import solve as sol
    from lazyrich_theory.spec.problem import TRAINING_OPTIONS

    for name, opt in TRAINING_OPTIONS.items():
        assert (name in sol.SUPPORTED_OPTIONS["gd"]) == ("gd" in opt.methods)
        assert (name in sol.SUPPORTED_OPTIONS["flow"]) == ("flow" in opt.methods)
        assert (name in pop.SUPPORTED_OPTIONS["full"]) == ("population" in opt.methods)


@pytest.mark.parametrize("method", ["flow", "population", "sgd"])
def test_an_option_its_entry_does_not_list_is_refused_by_construction(monkeypatch, method):
    """The population check used to list options by name, so a new option was silently
    ignored there; now every check reads the table: an entry without a method is refused by
    it in one line (here weight_decay's entry, stripped of the method)."""
    import dataclasses

    from lazyrich_theory.spec import problem as spec

    entry = spec.TRAINING_OPTIONS["weight_decay"]
    monkeypatch.setitem(spec.TRAINING_OPTIONS, "weight_decay",
                        dataclasses.replace(entry, methods=entry.methods - {method}))
    p = _problem(5, True, weight_decay=0.01)
    with pytest.raises(ProblemError) as exc:
        if method == "flow":
            solve(p, 10, method="flow")
        elif method == "population":
            population(p, 10)
        else:
            solve(p.replace(batch_size=10), 10, method="gd")
    msg = str(exc.value)
    assert "weight_decay" in msg and "\n" not in msg, msg
    assert solve(p, 10, method="gd").t[-1] == 10        # exact GD still implements it


def test_simulate_refuses_an_option_it_does_not_implement(monkeypatch):
    from lazyrich_validation import network

    monkeypatch.setattr(network, "IMPLEMENTED_OPTIONS", ("noise", "momentum"))
    with pytest.raises(ProblemError, match="does not implement weight_decay"):
        simulate(_problem(5, True, weight_decay=0.01), 10)


def test_cli_weight_decay_torch(tmp_path, capsys):
    """--weight-decay-torch through solve and simulate (compare <= 1e-12); problem.json keeps
    the user's field; both flags, or N = inf, exit 2 in one line."""
    opts = ["--alpha", "1.5", "--weight-decay-torch", "0.004"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["solve", *SMALL, *opts, "--no-theory", "--out", str(a)]) == 0
    assert main(["simulate", *SMALL, *opts, "--out", str(b)]) == 0
    pj = json.loads((a / "problem.json").read_text())
    assert pj["weight_decay_torch"] == 0.004 and "weight_decay" not in pj
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    dev = float(capsys.readouterr().out.split("max relative deviation:")[1].split()[0])
    assert dev <= TORCH_RTOL
    for bad in (["--weight-decay", "0.01"], ["--N", "inf"]):
        out = tmp_path / "bad"
        assert main(["solve", *SMALL, *opts, *bad, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "weight_decay_torch" in err and "\n" not in err
        assert not (out / "trajectory.csv").exists()
