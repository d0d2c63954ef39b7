"""Structured inits through the Problem, the data, the solvers and the command line (issue 17's
contract).  Needs the wiring (``Problem.init`` / ``init_scale``, ``ProblemData.M0``, the CLI
flags); skipped until it is applied."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lazyrich_theory import Problem, solve
from lazyrich_theory.core.population import population
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.inits import make_init

pytestmark = pytest.mark.skipif("init" not in Problem.__dataclass_fields__,
                                reason="the issue-17 wiring patch is not applied")

SMALL = dict(D=12, P=40, test_size=50, eps=0.5, seed=2)
CLI = ["--D", "12", "--P", "40", "--test-size", "50", "--eps", "0.5", "--steps", "300"]


def test_fields_default_validation_and_json():
    p = Problem(**SMALL)
    assert p.init == "iid" and p.init_scale == 1.0
    assert "init" not in p.to_dict() and "init_scale" not in p.to_dict()   # old files unchanged
    q = Problem(**SMALL, N=7, init=" LowRank:3 ", init_scale=2)
    assert q.init == "lowrank:3" and q.init_scale == 2.0
    assert Problem.from_json(q.to_json()) == q
    for bad, what in ((dict(init="lowrank:8"), "min"), (dict(init="gaussian"), "family"),
                      (dict(init_scale=0), "init_scale"), (dict(init="aligned:2:2"), "C")):
        with pytest.raises(ProblemError, match=what) as exc:
            Problem(**SMALL, N=7, **bad)
        assert "\n" not in str(exc.value)


def test_iid_data_are_unchanged_and_families_come_from_the_W0_stream():
    p = Problem(**SMALL, N=7)
    rng = np.random.default_rng(np.random.SeedSequence(2).spawn(4)[3])
    assert np.array_equal(p.data().W0, rng.standard_normal((7, 12)))
    q = p.replace(init="powerlaw:1", init_scale=0.5)
    rng = np.random.default_rng(np.random.SeedSequence(2).spawn(4)[3])
    d = q.data()
    assert np.array_equal(d.W0, make_init(rng, 12, 7, d.beta, "powerlaw:1", 0.5))
    assert np.trace(d.W0.T @ d.W0 / 7) == pytest.approx(0.25 * 12)
    assert Problem(**SMALL, N=math.inf).data().M0 is None
    assert Problem(**SMALL, N=math.inf, init_scale=2.0).data().M0 is not None


def test_infinite_width_M0_round_trips_through_data_npz(tmp_path):
    p = Problem(**SMALL, N=math.inf, init="aligned:2:0.5")
    d = p.data()
    path = tmp_path / "data.npz"
    d.save(path)
    assert "M0" in np.load(path).files and "W0" not in np.load(path).files
    q = p.replace(data_file=str(path))
    np.testing.assert_array_equal(q.data().M0, d.M0)
    a, b = solve(p, 300, method="gd"), solve(q, 300, method="gd")
    np.testing.assert_array_equal(a.test_loss, b.test_loss)
    assert a.info["init"]["init"] == "aligned:2:0.5" and a.info["init"]["rank"] == 2
    with pytest.raises(ProblemError, match="N = inf"):
        ProblemData(d.X, d.y, d.X_test, d.y_test, d.beta, np.ones((3, 12)), M0=d.M0).check(
            p.replace(N=3))


def test_init_scale_is_the_alpha_eps_rescaling():
    for N in (7, math.inf):
        a = solve(Problem(**SMALL, N=N, init="lowrank:2", init_scale=3.0), 300, method="gd")
        b = solve(Problem(**{**SMALL, "eps": 1.5}, N=N, alpha=3.0, init="lowrank:2"), 300, method="gd")
        for c in ("train_loss", "test_loss", "weight_change", "tangent_kernel_alignment"):
            np.testing.assert_allclose(a[c], b[c], rtol=1e-10, atol=1e-300)


def test_finite_width_low_rank_uses_the_exact_rank_factor_and_matches_the_network():
    from lazyrich_validation import max_relative_deviation, simulate

    p = Problem(**SMALL, N=30, init="lowrank:3")
    red, net = solve(p, 300, method="gd"), simulate(p, 300)
    assert red.info["rank"] == 4 and red.info["init"]["factor_rank"] == 4
    cols = ("train_loss", "test_loss", "population_loss", "weight_change",
            "tangent_kernel_alignment")
    assert max_relative_deviation(red, net, cols)["max"] < 1e-8
    assert net.info["init"]["init"] == "lowrank:3"


def test_population_runs_the_structured_flow():
    p = Problem(**SMALL, N=math.inf, init="lowrank:3")
    tr = population(p, 500)
    assert tr.info["population_method"] == "structured" and tr.info["state_size"] == 7
    assert population(Problem(**SMALL, N=math.inf), 500).info["population_method"] == "scalar"


def test_cli_solve_simulate_population_figure_phase(tmp_path, capsys):
    from lazyrich_theory.cli.app import main

    out = tmp_path / "solve"
    assert main(["solve", *CLI, "--N", "inf", "--init", "lowrank:3", "--no-plot", "--quiet",
                 "--out", str(out)]) == 0
    assert json.loads((out / "problem.json").read_text())["init"] == "lowrank:3"
    run = json.loads((out / "run.json").read_text())
    assert run["init"]["rank"] == 3 and run["init"]["participation_ratio"] == pytest.approx(3)
    header = (out / "trajectory.csv").read_text().splitlines()[0].split(",")
    assert "weight_change" in header and "tangent_kernel_alignment" in header
    assert "M0" in np.load(out / "data.npz").files
    for cmd in ("solve", "simulate"):
        assert main([cmd, *CLI, "--N", "7", "--init", "aligned:2:0.5", "--init-scale", "0.5",
                     "--no-plot", "--quiet", "--out", str(tmp_path / f"{cmd}7")]) == 0
    assert json.loads((tmp_path / "simulate7" / "problem.json").read_text())["init_scale"] == 0.5
    assert main(["population", *CLI, "--N", "inf", "--init", "powerlaw:1", "--no-plot",
                 "--quiet", "--out", str(tmp_path / "pop")]) == 0
    assert json.loads((tmp_path / "pop" / "run.json").read_text())["population_method"] == "structured"
    assert main(["solve", *CLI, "--init", "lowrank:0", "--out", str(tmp_path / "bad")]) == 2
    assert main(["phase", "--D", "8", "--P", "24", "--N", "inf", "--test-size", "30",
                 "--steps", "100", "--vary", "init=lowrank:1,aligned:1:1,iid",
                 "--vary", "init_scale=0.5,1", "--workers", "1", "--out",
                 str(tmp_path / "phase")]) == 0
    sweep = json.loads((tmp_path / "phase" / "sweep.json").read_text())
    assert ["lowrank:1", "aligned:1:1", "iid"] in [a["values"] for a in sweep["axes"]]


def test_figure_set_init(tmp_path):
    from lazyrich_theory.experiments.figures import make_figure

    info = make_figure("fig4", str(tmp_path), steps=200, D=12, P=40, test_size=50,
                       init="lowrank:1", init_scale=2)
    assert info["problem"]["init"] == "lowrank:1" and info["problem"]["init_scale"] == 2.0
