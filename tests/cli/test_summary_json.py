"""summary.json as `lazyrich solve` writes it: a value that does not apply is null with a
reason in ``reasons``, never a negative or placeholder number; "never generalised" is
``measured_status``, not a grokking time of 0 (issue 15 §6).  Read back with json only."""

from __future__ import annotations

import json
import re

import pytest

import lazyrich_theory as lr
from lazyrich_theory.cli.app import main

OFFLINE_KEYS = ("offline_predicted_half_time", "offline_predicted_final_test_loss")

STATUSES = ("generalised", "never generalised", "never fitted", "generalised without fitting")


def _summary(tmp_path, *args):
    out = tmp_path / "run"
    assert main(["solve", *args, "--out", str(out), "--quiet", "--no-plot"]) == 0
    return json.loads((out / "summary.json").read_text())


def _check(s):
    nulls = {k for k, v in s.items() if v is None}
    assert set(s["reasons"]) == nulls
    for k, v in s.items():
        if k.startswith(("predicted_", "linearized_")) and isinstance(v, float):
            assert v >= 0, (k, v)
    assert s["measured_status"] in STATUSES


def test_issue_case_n_below_d(tmp_path):
    """D=50, P=200, N=5 used to write predicted_grokking_delay = -1e9 (-5e7 in the issue),
    linearized_peak_time = 1e9 and measured_paper_grokking_time = 0.0 next to
    measured_test_time = null."""
    s = _summary(tmp_path, "--D", "50", "--P", "200", "--N", "5", "--method", "flow",
                 "--steps", "10000")
    _check(s)
    assert s["linearized_peak_time"] is None and s["predicted_lazy_peak_time"] is None
    assert "monotonically" in s["reasons"]["linearized_peak_time"]
    assert s["predicted_grokking_delay"] > 0
    assert s["predicted_grokking_delay_from"] == "predicted_lazy_fit_time"
    assert s["measured_test_time"] is None
    assert s["measured_paper_grokking_time"] is None
    assert s["measured_status"] == "never generalised"
    assert s["reasons"]["measured_paper_grokking_time"] == (
        "never generalised: the test loss never reached 0.1 within 10000 steps")
    for key in ("kernel_regression_test_loss", "kernel_regression_train_loss",
                "predicted_rich_time_estimate", "predicted_rich_time_population",
                "predicted_lazy_fit_time", "initial_test_loss", "max_test_loss"):
        assert isinstance(s[key], float), key
    # kappa = P/D = 4: below the spectral closure's regime, the DMFT is not run by default
    for key in OFFLINE_KEYS:
        assert s[key] is None and "kappa = P/D = 4 < 5" in s["reasons"][key]


def test_non_paper_target_nulls_the_rich_time_predictions(tmp_path):
    s = _summary(tmp_path, "--D", "12", "--P", "30", "--N", "20", "--eps", "0.3",
                 "--steps", "100", "--target", "hermite:coef=0.5/0/0.5/0.2")
    _check(s)
    for k in ("predicted_rich_time_estimate", "predicted_rich_time_population",
              "predicted_grokking_delay"):
        assert s[k] is None and "paper's teacher" in s["reasons"][k]
    for k in OFFLINE_KEYS:
        assert s[k] is None and "paper's teacher" in s["reasons"][k]


def test_offline_theory_column_and_keys(tmp_path):
    """kappa = P/D = 6 >= 5, N finite: the spectral closure at N = inf is in trajectory.csv
    (offline_population_loss) and summary.json (its half time and relative final loss)."""
    s = _summary(tmp_path, "--D", "20", "--P", "120", "--N", "10", "--eps", "0.2",
                 "--steps", "3000", "--method", "gd")
    _check(s)
    assert s["offline_predicted_half_time"] > 0
    assert 0 < s["offline_predicted_final_test_loss"] < 1
    lines = (tmp_path / "run" / "trajectory.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[-1] == "offline_population_loss"
    first = dict(zip(header, lines[1].split(",")))
    assert float(first["offline_population_loss"]) > 0


def test_limit_loss_on_request(tmp_path, capsys):
    """--limit-loss interpolant: offline_predicted_limit_test_loss, a relative loss, and the run
    records it; refused in one line (exit 2, nothing written) where it does not apply."""
    args = ("--D", "20", "--P", "60", "--N", "inf", "--eps", "0.05", "--steps", "100")
    s = _summary(tmp_path, *args, "--limit-loss", "interpolant")
    _check(s)
    assert 0.05 < s["offline_predicted_limit_test_loss"] < 2
    assert "N = inf" in s["offline_predicted_limit_test_loss_definition"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["limit_loss"] == "interpolant"
    capsys.readouterr()
    out = tmp_path / "bad"
    code = main(["solve", *args, "--init", "lowrank:1", "--limit-loss", "interpolant",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--limit-loss interpolant: init='lowrank:1'" in err
    assert not out.exists()


def test_dmft_draws_column_key_and_run_record(tmp_path, capsys):
    """--offline-theory dmft --dmft-draws 2: trajectory.csv has the mean's standard error
    (offline_population_loss_mc_se), summary.json its value at the horizon and the number of
    draws, run.json records the option (a one-draw run into the same folder is refused)."""
    args = ("--D", "20", "--P", "60", "--N", "inf", "--steps", "2000", "--method", "gd",
            "--offline-theory", "dmft")
    s = _summary(tmp_path, *args, "--dmft-draws", "2")
    _check(s)
    assert s["offline_dmft_draws"] == 2
    assert 0 < s["offline_predicted_final_test_loss_mc_se"] < 0.2
    # the regime note names the keys solve writes (offline_ prefixed), not asymptotic's
    assert "offline_predicted_final_test_loss_mc_se" in s["offline_regime"]
    assert not re.search(r"\bpredicted_", s["offline_regime"]), s["offline_regime"]
    lines = (tmp_path / "run" / "trajectory.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[-2:] == ["offline_population_loss", "offline_population_loss_mc_se"]
    last = dict(zip(header, lines[-1].split(",")))
    assert float(last["offline_population_loss_mc_se"]) > 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["dmft_draws"] == 2
    code = main(["solve", *args, "--out", str(tmp_path / "run"), "--quiet", "--no-plot"])
    assert code == 2
    capsys.readouterr()
    # not quiet: a line before the theory's run, and its loss in the summary line
    assert main(["solve", *args, "--dmft-draws", "2", "--out", str(tmp_path / "loud"),
                 "--no-plot"]) == 0
    out, err = capsys.readouterr()
    assert ("then the theory's curve: 2 Monte Carlo draws of the DMFT with the spread "
            "closure") in err
    # D = 20: the offline theory's errors were not measured there (summary.json and a line)
    assert "offline theory outside the measured regime: D = 20 < 50" in out
    loud = json.loads((tmp_path / "loud" / "summary.json").read_text())
    assert loud["offline_horizon_tau"] == pytest.approx(2 * 0.02 * 2000 / 20)   # 2 eps t/(a D)
    assert loud["offline_outside_measured_regime"].startswith("D = 20 < 50")
    assert "solve: Monte Carlo draw 1 of 2 done, " in err          # a line per draw done
    assert s["offline_column_closure"] == "spread"      # the default here, named on the line
    assert (f"offline theory (dmft + spread) population loss "
            f"{s['offline_predicted_final_test_loss']:.3g} +- "
            f"{s['offline_predicted_final_test_loss_mc_se']:.2g} x initial (standard error "
            "over 2 Monte Carlo draws)") in out
    # the exact population loss in the theory's units beside it
    rows = (tmp_path / "loud" / "trajectory.csv").read_text().splitlines()
    cols = rows[0].split(",")
    pop = [float(r.split(",")[cols.index("population_loss")]) for r in (rows[1], rows[-1])]
    assert f"population {pop[1]:.4g} ({pop[1] / pop[0]:.3g} x initial); offline theory" in out


def test_solve_ns_and_dmft_seed(tmp_path, capsys):
    """solve --ns / --dmft-seed reach the DMFT's curve (another seed, another curve), are
    recorded in run.json (left out at their defaults), and are refused in one line where no
    DMFT draws the curve; solve_with_theory refuses the same through dmft_options."""
    from lazyrich_theory.errors import ProblemError
    from lazyrich_theory.experiments.with_theory import solve_with_theory

    args = ("--D", "20", "--P", "60", "--N", "inf", "--steps", "2000", "--method", "gd",
            "--offline-theory", "dmft", "--ns", "40", "--quiet", "--no-plot")
    finals = []
    for seed in ("0", "1"):
        out = tmp_path / f"s{seed}"
        assert main(["solve", *args, "--dmft-seed", seed, "--out", str(out)]) == 0
        finals.append(json.loads((out / "summary.json").read_text())[
            "offline_predicted_final_test_loss"])
        config = json.loads((out / "run.json").read_text())["config"]
        assert config["ns"] == 40 and config.get("dmft_seed", 0) == int(seed)
    assert finals[0] != finals[1]
    assert main(["solve", "--D", "20", "--P", "60", "--steps", "100", "--ns", "40",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--ns: the DMFT's Monte Carlo options" in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
    p = lr.Problem(D=20, P=60, N="inf", seed=0)
    with pytest.raises(ProblemError, match="need offline='dmft' or 'rindex'"):
        solve_with_theory(p, 100, dmft_options={"Ns": 40})
    with pytest.raises(ProblemError, match="takes Ns and seed, not draws"):
        solve_with_theory(p, 100, offline="dmft", dmft_options={"draws": 2})
