"""The ``init-rank`` and ``weight-norm`` figures (issue 17) at tiny size: files, numbers, and
the exact equivalences they draw."""
import csv
import json
import math

import numpy as np
import pytest

from lazyrich_theory.experiments.figures import FIGURES, make_figure
from lazyrich_theory.experiments.figures.init_structure import init_data, weight_norm
from lazyrich_theory.spec.inits import init_measures
from lazyrich_theory.spec.problem import Problem

TINY = dict(D=10, P=30, test_size=40)


@pytest.mark.parametrize("N", [math.inf, 12])
def test_init_rank_runs_and_reports_every_init(tmp_path, N):
    specs = "lowrank:1,lowrank:4,powerlaw:1,iid,aligned:1:1,aligned:4:0.5,lowrank:20"
    info = make_figure("init-rank", str(tmp_path), steps=200, N=N, specs=specs, n_tasks=2, **TINY)
    for f in ("init-rank.png", "figure.json", "init_rank.csv", "init_rank_test_curves.csv"):
        assert (tmp_path / f).stat().st_size > 0
    rows = info["result"]["inits"]
    assert [r["init"] for r in rows] == specs.split(",")[:-1]     # lowrank:20 > D is skipped
    by = {r["init"]: r for r in rows}
    assert by["lowrank:1"]["participation_ratio"] == pytest.approx(1.0)
    assert by["iid"]["participation_ratio"] > by["powerlaw:1"]["participation_ratio"] > 1
    for r in rows:
        assert 0 < r["tangent_kernel_alignment"] <= 1 and r["weight_change"] > 0
        assert r["online_weight_change"] > 0 and len(r["grokking_delay_tasks"]) == 2
    with open(tmp_path / "init_rank.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows)
    assert float(table[0]["weight_change"]) == pytest.approx(rows[0]["weight_change"])
    saved = json.loads((tmp_path / "figure.json").read_text())
    assert saved["options"]["n_tasks"] == 2


def test_init_data_draws_the_init_from_the_W0_stream():
    p = Problem(N=7, **TINY, seed=3)
    d = init_data(p, "aligned:2:0.5")
    assert init_measures(d.W0, d.beta, finite=True)["rank"] == 2
    assert np.array_equal(init_data(p, "iid").W0, p.data().W0)
    q = p.replace(N=math.inf)
    assert np.trace(init_data(q, "lowrank:3").M0) == pytest.approx(10)


def test_weight_norm_sweeps_equal_their_equivalent_runs(tmp_path):
    info = make_figure("weight-norm", str(tmp_path), steps=200, N=12, sigmas="0.5,1,2",
                       joint_sigmas="0.5,2", **TINY)
    assert (tmp_path / "weight-norm.png").stat().st_size > 10_000
    res = info["result"]
    assert len(res["sweep"]) == 3 and len(res["joint"]) == 2 and len(res["alpha_only"]) == 3
    assert res["max_deviation_from_equivalent"] < 1e-4          # adaptive flow: tolerance level
    assert [r["sigma2_alpha"] for r in res["joint"]] == [1.0, 1.0]
    # exact GD: the literal runs are their equivalents to round-off
    p = Problem(**{**FIGURES["weight-norm"].problem, **TINY, "N": 12})
    exact = weight_norm(p, 200, sigmas=(0.5, 2.0), joint_sigmas=(2.0,), method="gd")
    assert exact.result["max_deviation_from_equivalent"] < 1e-10
    # equal sigma^2 alpha_p is NOT equivalent (eps differs): the joint sweep's runs differ
    j = exact.result["joint"][0]
    one = [r for r in exact.result["alpha_only"] if r["sigma2_alpha"] == 4.0][0]
    assert j["sigma2_alpha"] == 1.0 and one["sigma2_alpha"] == 4.0
    lit = weight_norm(p, 200, sigmas=(1.0,), joint_sigmas=(0.5, 2.0), method="gd").result["joint"]
    assert abs(lit[0]["final_test"] - lit[1]["final_test"]) > 1e-3 * lit[1]["final_test"]
