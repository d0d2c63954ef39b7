"""``lazyrich asymptotic``: the CLI contract of issue 13 (files, columns, summary keys, nulls
with reasons, one-line refusals).  Read back with csv / json only."""

from __future__ import annotations

import csv
import json

import pytest

from lazyrich_theory.cli.app import main

CONTRACT_KEYS = ("predicted_half_time", "predicted_final_test_loss", "critical_kappa",
                 "predicted_grokking_delay")


def _run(tmp_path, *args, name="run"):
    out = tmp_path / name
    code = main(["asymptotic", *args, "--out", str(out), "--quiet", "--no-plot"])
    return code, out


def _read(out):
    with open(out / "trajectory.csv") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / "summary.json").read_text())


def _summary_line(out: str) -> str:
    """The summary line of a run's stdout (the only one naming the method that ran)."""
    (line,) = [x for x in out.splitlines() if x.startswith("asymptotic: offline-")]
    return line


def _nulls_have_reasons(s):
    assert {k for k, v in s.items() if v is None} == set(s["reasons"])


def test_contract_files_columns_and_keys(tmp_path):
    code, out = _run(tmp_path, "--D", "40", "--P", "440", "--alpha", "1", "--eps", "0.05",
                     "--steps", "20000", "--save-times", "777")
    assert code == 0
    for name in ("trajectory.csv", "summary.json", "problem.json", "run.json"):
        assert (out / name).is_file(), name
    rows, s = _read(out)
    for col in ("t", "train_loss", "test_loss", "population_loss"):
        assert col in rows[0]
    assert "777" in {r["t"].split(".")[0] for r in rows}
    assert all(r["test_loss"] == r["population_loss"] for r in rows)
    for key in CONTRACT_KEYS:
        assert key in s
    _nulls_have_reasons(s)
    pop = [float(r["population_loss"]) for r in rows]
    t = [float(r["t"]) for r in rows]
    half = s["predicted_half_time"]
    assert half is not None and 0 < half < t[-1]
    # the first t at which the population loss is half its initial value
    first = next(i for i, v in enumerate(pop) if v <= 0.5 * pop[0])
    assert t[first - 1] <= half <= t[first]
    assert abs(s["predicted_final_test_loss"] - pop[-1] / pop[0]) < 1e-9
    assert s["method"] == "spectral" and 1.5 < s["critical_kappa"] < 4.0
    assert s["critical_kappa_method"] == "interpolant"         # the default up to D = 200


def test_default_critical_kappa_by_size_and_domain(tmp_path, monkeypatch):
    """No --critical-kappa: the interpolant's up to INTERPOLANT_CRITICAL_D_DEFAULT (seconds),
    the BBP threshold above it and outside the interpolant's domain (convention B); run.json
    records what was computed."""
    import lazyrich_theory.cli.asymptotic as cli

    args = ("--D", "20", "--P", "120", "--alpha", "1", "--eps", "0.05", "--steps", "200",
            "--limit-loss", "none")
    for cap, extra, method in ((20, (), "interpolant"), (19, (), "bbp"),
                               (100, ("--convention", "B"), "bbp")):
        monkeypatch.setattr(cli, "INTERPOLANT_CRITICAL_D_DEFAULT", cap)
        code, out = _run(tmp_path, *args, *extra, name=f"{cap}{method}{len(extra)}")
        _, s = _read(out)
        assert code == 0 and s["critical_kappa_method"] == method
        assert 1.5 < s["critical_kappa"] < 8.0
        assert json.loads((out / "run.json").read_text())["config"]["critical_kappa"] == method
        # the fallback says why in the summary; the interpolant's run has no note
        note = s.get("critical_kappa_note")
        assert (note is None) == (method == "interpolant")
        if note is not None:
            assert ("D = 20 > 19" in note) == (cap == 19) and ("convention" in note) == bool(extra)


def test_data_file_critical_kappa(tmp_path, capsys):
    """--data FILE: the default critical kappa is the BBP threshold (the interpolant's needs
    training sets of other sizes and seeds), with the note; asking for it is refused in one
    line, nothing written."""
    import numpy as np

    import lazyrich_theory as lr

    d = lr.Problem(D=20, P=120, N="inf", alpha=1.0, eps=0.05).data()
    path = tmp_path / "data.npz"
    np.savez(path, X=d.X, y=d.y, X_test=d.X_test, y_test=d.y_test, beta=d.beta)
    args = ("--D", "20", "--P", "120", "--alpha", "1", "--eps", "0.05", "--steps", "200",
            "--data", str(path), "--limit-loss", "none")
    code, out = _run(tmp_path, *args)
    _, s = _read(out)
    assert code == 0 and s["critical_kappa_method"] == "bbp"
    assert "data file" in s["critical_kappa_note"]
    capsys.readouterr()
    code, out = _run(tmp_path, *args, "--critical-kappa", "interpolant", name="bad")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "data file" in err and not out.exists()


def test_nulls_when_never(tmp_path):
    """A horizon too short for the rich transition: no half time, no delay (reasons)."""
    code, out = _run(tmp_path, "--D", "30", "--P", "330", "--alpha", "1", "--eps", "0.02",
                     "--steps", "300", "--critical-kappa", "none")
    assert code == 0
    _, s = _read(out)
    _nulls_have_reasons(s)
    assert s["predicted_half_time"] is None and "half" in s["reasons"]["predicted_half_time"]
    assert s["predicted_grokking_delay"] is None
    assert s["critical_kappa"] is None
    assert "--critical-kappa none" in s["reasons"]["critical_kappa"]
    assert s["predicted_final_test_loss"] > 0.9


def test_refusals_exit_2_one_line(tmp_path, capsys):
    for args, words in ((("--N", "500"), "N = inf"), (("--uncentered",), "centered"),
                        (("--noise", "0.1"), "noise"), (("--P", "30"), "kappa")):
        code, out = _run(tmp_path, "--D", "40", "--P", "200", *args, "--steps", "100",
                         name=f"r{len(words)}")
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and words in err, (args, err)
        assert not out.exists()


def test_xi_law_training(tmp_path, capsys):
    """--xi-law training runs the DMFT on the training set's own xi (recorded in run.json
    and the summary's method); with --method spectral it is refused in one line (exit 2)."""
    code, out = _run(tmp_path, "--D", "30", "--P", "165", "--alpha", "8", "--eps", "0.02",
                     "--steps", "600", "--critical-kappa", "none", "--xi-law", "training",
                     "--ns", "40")
    assert code == 0
    _, s = _read(out)
    assert s["method"] == "dmft"
    assert json.loads((out / "run.json").read_text())["config"]["xi_law"] == "training"
    code, out = _run(tmp_path, "--D", "30", "--P", "165", "--method", "spectral",
                     "--xi-law", "training", "--steps", "100", name="bad")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "needs method='dmft'" in err
    assert not out.exists()


def test_column_closure_least_squares(tmp_path, capsys):
    """--column-closure least_squares runs the DMFT under closure A7 (recorded in run.json and
    summary.json, a different curve from the DMFT as derived, its own regime note); where no
    DMFT column runs (the spectral closure, a finite-rank init) it is refused in one line."""
    base = ("--D", "30", "--P", "90", "--alpha", "1", "--eps", "0.02", "--steps", "30000",
            "--critical-kappa", "none", "--limit-loss", "none", "--ns", "40")
    code, plain = _run(tmp_path, *base, name="plain")
    assert code == 0
    code, out = _run(tmp_path, *base, "--column-closure", "least_squares")
    assert code == 0
    (_, s0), (_, s) = _read(plain), _read(out)
    assert s["method"] == "dmft" and s["column_closure"] == "least_squares"
    assert s0["column_closure"] == "spread" and "A7" in s["regime"] and "A7" not in s0["regime"]
    assert json.loads((out / "run.json").read_text())["config"]["column_closure"] == (
        "least_squares")
    assert s["predicted_final_test_loss"] != s0["predicted_final_test_loss"]
    _nulls_have_reasons(s)
    for args, words in ((("--P", "200"), "add --method dmft"),
                        (("--P", "90", "--method", "spectral"), "use --method dmft"),
                        (("--P", "90", "--init", "lowrank:1"), "r-index DMFT")):
        code, bad = _run(tmp_path, "--D", "30", *args, "--column-closure", "least_squares",
                         "--steps", "100", name=f"bad{len(words)}")
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and words in err, (args, err)
        assert not bad.exists()


def test_default_column_closure_is_spread_where_it_applies(tmp_path, capsys):
    """The default --column-closure auto runs the spread closure where the linear column is
    fast and the column as derived where it is slow, saying why in summary.json, the regime
    note and the summary line; neither is recorded as asked for in run.json.  An explicit
    --column-closure dmft is a request: recorded, and refused where no DMFT column runs."""
    base = ("--D", "30", "--P", "90", "--steps", "1000", "--critical-kappa", "none",
            "--limit-loss", "none", "--ns", "40")
    code, fast = _run(tmp_path, "--alpha", "1", "--eps", "0.02", *base, name="fast")
    assert code == 0
    _, s = _read(fast)
    assert s["column_closure"] == "spread" and "column_closure_reason" not in s
    assert "column_closure" not in json.loads((fast / "run.json").read_text())["config"]
    slow = tmp_path / "slow"
    assert main(["asymptotic", "--alpha", "0.2", "--eps", "0.1", *base, "--out", str(slow),
                 "--no-plot"]) == 0
    out = capsys.readouterr().out
    line = _summary_line(out)
    _, s = _read(slow)
    assert s["column_closure"] == "dmft"
    assert "slowest relaxation time" in s["column_closure_reason"]
    assert "auto's choice here" in s["regime"] and "column closure as derived" in line
    assert "do not remove (the spread closure, which removes most of it, does not apply " \
        "here)" in line                                                 # not: use spread
    # the line after it, and summary.json, say what lies outside the measured regime
    outside = "asymptotic: outside the measured regime: D = 30 < 50"
    assert outside in out and s["outside_measured_regime"] in out
    assert "the linear column is slow here" in s["outside_measured_regime"]
    assert "the horizon is tau = 33.3" in s["outside_measured_regime"]     # 1000 steps
    code, asked = _run(tmp_path, "--alpha", "1", "--eps", "0.02", *base, "--column-closure",
                       "dmft", name="asked")
    assert code == 0
    _, s = _read(asked)
    assert s["column_closure"] == "dmft" and "column_closure_reason" not in s
    assert json.loads((asked / "run.json").read_text())["config"]["column_closure"] == "dmft"
    capsys.readouterr()
    code, bad = _run(tmp_path, "--D", "30", "--P", "200", "--column-closure", "dmft",
                     "--steps", "100", name="spectral")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "add --method dmft" in err
    assert not bad.exists()


def test_refusals_print_nothing_before_their_line(tmp_path, capsys):
    """A finite-rank init with --method dmft and a spread closure at a slow column are refused
    with one line and nothing else: no progress line comes first (asymptotic and solve)."""
    out = tmp_path / "fr"
    assert main(["asymptotic", "--D", "30", "--P", "90", "--init", "lowrank:1", "--method",
                 "dmft", "--out", str(out), "--no-plot"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "\n" not in cap.err.strip() and "--method rindex" in cap.err
    assert main(["solve", "--D", "30", "--P", "90", "--N", "inf", "--alpha", "0.2",
                 "--eps", "0.1", "--method", "flow", "--offline-theory", "dmft",
                 "--column-closure", "spread", "--steps", "300", "--out",
                 str(tmp_path / "sp")]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "\n" not in cap.err.strip(), cap
    assert "slowest relaxation time" in cap.err and not (tmp_path / "sp").exists()


def test_progress_line_and_rerun_refusal_name_the_closure(tmp_path, capsys):
    """The progress line names the DMFT closure that will run and its cost: spread at a fast
    column, the column as derived where auto cannot run spread (saying so); a rerun into the
    same folder with an explicit closure is refused naming the default's value (auto); the
    finite-rank refusal of a closure names it as the command line does."""
    base = ("--D", "30", "--P", "90", "--steps", "1000", "--critical-kappa", "none",
            "--limit-loss", "none", "--ns", "40", "--no-plot")
    for name, ae, words in (("fast", ("1", "0.02"), "the DMFT with the spread closure, ~10-45 s"
                                                    " per draw at Ns = 800 (here 40: less)"),
                            ("slow", ("0.2", "0.1"), "the DMFT with its linear column as derived,"
                                                     " ~4-20 s per draw at Ns = 800 (here 40: "
                                                     "less) (the spread closure does not apply "
                                                     "here)")):
        out = tmp_path / name
        assert main(["asymptotic", "--alpha", ae[0], "--eps", ae[1], *base,
                     "--out", str(out)]) == 0
        first = capsys.readouterr().err.splitlines()[0]          # progress: stderr
        assert first.startswith(f"asymptotic: the theory's curve: {words}"), first
    assert main(["asymptotic", "--alpha", "1", "--eps", "0.02", *base, "--column-closure",
                 "dmft", "--out", str(tmp_path / "fast")]) == 2
    err = capsys.readouterr().err.strip()
    assert 'column_closure default (auto) -> "dmft"' in err and "\n" not in err, err
    assert main(["asymptotic", "--D", "30", "--P", "90", "--init", "lowrank:1",
                 "--column-closure", "dmft", "--out", str(tmp_path / "fr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "the column closure dmft is a closure of the iid init's DMFT" in err, err


def test_outside_measured_regime_only_where_it_is(tmp_path, capsys):
    """At D = 50 and the horizon tau = 40 (1000 D steps at alpha / eps = 50) nothing is flagged;
    the same problem to 800 D steps (tau = 32) flags the horizon, and only it."""
    base = ("--D", "50", "--P", "300", "--alpha", "1", "--eps", "0.02", "--critical-kappa",
            "none", "--limit-loss", "none", "--no-plot")
    assert main(["asymptotic", *base, "--steps", "50000", "--out", str(tmp_path / "in")]) == 0
    assert "outside the measured regime" not in capsys.readouterr().out
    _, s = _read(tmp_path / "in")
    assert s["horizon_tau"] == pytest.approx(40.0) and "outside_measured_regime" not in s
    assert main(["asymptotic", *base, "--steps", "40000", "--out", str(tmp_path / "out")]) == 0
    _, s = _read(tmp_path / "out")
    assert s["outside_measured_regime"] == (
        "the horizon is tau = 32 (the errors of the loss at the horizon were measured at tau "
        "= 40, "
        "here --steps 50000)")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "asymptotic: outside the measured regime: " + s["outside_measured_regime"])
    # the spectral closure below kappa = 5, and a DMFT with fewer samples than the default
    assert main(["asymptotic", *base, "--P", "150", "--method", "spectral", "--steps", "50000",
                 "--out", str(tmp_path / "k3")]) == 0
    _, s = _read(tmp_path / "k3")
    assert s["outside_measured_regime"].startswith("kappa = 3 < 5, below the spectral closure")
    assert main(["asymptotic", *base, "--P", "150", "--method", "dmft", "--ns", "40",
                 "--steps", "50000", "--out", str(tmp_path / "ns")]) == 0
    _, s = _read(tmp_path / "ns")
    assert s["outside_measured_regime"].startswith("Ns = 40 < 800 (one draw's scatter")


def test_column_closure_spread(tmp_path, capsys):
    """--column-closure spread runs the DMFT under the spread closure, (12.2) by default
    (recorded, its own regime note); a slow linear column is refused in one line (exit 2)."""
    base = ("--D", "30", "--P", "90", "--steps", "30000", "--critical-kappa", "none",
            "--limit-loss", "none", "--ns", "40", "--column-closure", "spread")
    code, out = _run(tmp_path, "--alpha", "1", "--eps", "0.02", *base)
    assert code == 0
    _, s = _read(out)
    assert s["method"] == "dmft" and s["column_closure"] == "spread"
    assert "spread closure, its linear column at its finite speed, (12.2)" in s["regime"]
    _nulls_have_reasons(s)
    code, bad = _run(tmp_path, "--alpha", "0.2", "--eps", "0.1", *base, name="slow")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "slowest relaxation time" in err
    assert not bad.exists()


def test_finite_rank_init_runs_the_rindex_dmft(tmp_path, capsys):
    """--init aligned:R:C / lowrank:R: the r-index DMFT (docs §13) writes the same contract,
    critical_kappa null with its reason; a rank beyond the limit is refused in one line."""
    code, out = _run(tmp_path, "--D", "30", "--P", "120", "--alpha", "1", "--eps", "0.25",
                     "--eta0", "3", "--init", "aligned:1:0.6", "--steps", "60", "--ns", "40")
    assert code == 0
    rows, s = _read(out)
    for key in CONTRACT_KEYS:
        assert key in s
    _nulls_have_reasons(s)
    assert s["method"] == "rindex" and s["critical_kappa"] is None
    assert "--critical-kappa rindex" in s["reasons"]["critical_kappa"]
    assert s["predicted_plateau_gap"] is None
    assert "iid init" in s["reasons"]["predicted_plateau_gap"]
    assert all(r["test_loss"] == r["population_loss"] for r in rows)
    assert float(rows[-1]["population_loss"]) < 0.5 * float(rows[0]["population_loss"])
    code, out = _run(tmp_path, "--D", "30", "--P", "120", "--init", "lowrank:6",
                     "--steps", "10", name="bad")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "rank R=6" in err
    assert not out.exists()


def test_finite_rank_critical_kappa(tmp_path, capsys):
    """--critical-kappa rindex: the r-index DMFT's crossing at the run's own horizon (tau = 3
    here; 4 Monte Carlo runs at --ns / 2), a number with its definition (the physics is
    checked in tests/theory/test_offline_rindex.py); the iid methods are refused for a
    finite-rank init and rindex for the iid init, in one line before anything is computed or
    written."""
    args = ("--D", "30", "--P", "120", "--alpha", "1", "--eps", "0.25", "--eta0", "3",
            "--steps", "60", "--ns", "40")
    code, out = _run(tmp_path, *args, "--init", "aligned:1:0.6", "--critical-kappa", "rindex")
    assert code == 0
    _, s = _read(out)
    assert s["critical_kappa_method"] == "rindex" and 1.5 < s["critical_kappa"] < 8.0
    assert "tau = 3 " in s["critical_kappa_definition"]       # the run's own horizon
    assert "mean of 4 Monte Carlo run(s) at Ns = 20" in s["critical_kappa_definition"]
    for init, method in (("aligned:1:0.6", "bbp"), ("aligned:1:0.6", "dmft"),
                         ("aligned:1:0.6", "interpolant"), ("iid", "rindex")):
        code, out = _run(tmp_path, *args, "--init", init, "--critical-kappa", method,
                         name=f"bad-{method}")
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and f"--critical-kappa {method} is for" in err
        assert not out.exists()


def test_interpolant_critical_kappa(tmp_path):
    """--critical-kappa interpolant (iid init): the interpolant's crossing averaged over 4
    training sets is the summary's critical_kappa, with its definition (the physics is checked
    in tests/theory/test_offline_implicit_bias.py)."""
    import lazyrich_theory as lr

    from lazyrich_theory.theory.offline.implicit_bias import interpolant_critical_kappa

    code, out = _run(tmp_path, "--D", "20", "--P", "120", "--alpha", "1", "--eps", "0.05",
                     "--steps", "2000", "--critical-kappa", "interpolant")
    assert code == 0
    _, s = _read(out)
    ref = interpolant_critical_kappa(lr.Problem(D=20, P=120, N="inf", alpha=1.0, eps=0.05))
    assert s["critical_kappa_method"] == "interpolant"
    assert s["critical_kappa"] == ref.value and 1.5 < ref.value < 8.0
    assert "4 training sets" in s["critical_kappa_definition"]


def test_interpolant_refusals_before_anything_runs(tmp_path, capsys):
    """Convention B: --critical-kappa interpolant is refused in one line naming the
    convention, nothing written; by default the limit loss is null with that reason."""
    args = ("--D", "20", "--P", "120", "--alpha", "1", "--eps", "0.05", "--steps", "200",
            "--convention", "B")
    capsys.readouterr()
    code, out = _run(tmp_path, *args, "--critical-kappa", "interpolant", name="bad")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--critical-kappa interpolant" in err
    assert "convention" in err and not out.exists()
    code, out = _run(tmp_path, *args, "--critical-kappa", "none")
    _, s = _read(out)
    assert code == 0 and s["predicted_limit_test_loss"] is None
    assert "convention" in s["reasons"]["predicted_limit_test_loss"]


def test_limit_test_loss(tmp_path, capsys):
    """predicted_limit_test_loss: the interpolant's tau -> inf loss of the run's own training
    set by default (iid init), null with a reason for a finite-rank init or --limit-loss none;
    --limit-loss interpolant for a finite-rank init is refused in one line, nothing written."""
    import lazyrich_theory as lr
    from lazyrich_theory.theory.offline.implicit_bias import entropic_interpolant

    args = ("--D", "20", "--P", "120", "--alpha", "1", "--eps", "0.05", "--steps", "2000",
            "--critical-kappa", "none")
    code, out = _run(tmp_path, *args)
    assert code == 0
    _, s = _read(out)
    ref = entropic_interpolant(lr.Problem(D=20, P=120, N="inf", alpha=1.0, eps=0.05))
    assert s["predicted_limit_test_loss"] == ref.population_loss
    assert "interpolant" in s["predicted_limit_test_loss_definition"]
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["limit_loss"] == "interpolant"     # what was computed, by default
    code, out = _run(tmp_path, *args, "--limit-loss", "none", name="none")
    _, s = _read(out)
    assert s["predicted_limit_test_loss"] is None
    assert "--limit-loss none" in s["reasons"]["predicted_limit_test_loss"]
    rank = ("--D", "30", "--P", "120", "--alpha", "1", "--eps", "0.25", "--eta0", "3",
            "--steps", "60", "--ns", "40", "--init", "aligned:1:0.6")
    code, out = _run(tmp_path, *rank, name="rank")
    _, s = _read(out)
    assert code == 0 and s["predicted_limit_test_loss"] is None
    assert "iid init" in s["reasons"]["predicted_limit_test_loss"]
    capsys.readouterr()
    code, out = _run(tmp_path, *rank, "--limit-loss", "interpolant", name="bad")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--limit-loss interpolant is for" in err
    assert not out.exists()


def test_limit_loss_that_does_not_converge_is_a_reason(tmp_path, monkeypatch):
    """An interpolant whose Newton iteration fails: the run still writes its curve, with
    predicted_limit_test_loss null and the solver's line as the reason (also when asked for)."""
    from lazyrich_theory.errors import IntegrationError
    from lazyrich_theory.theory.offline import implicit_bias

    def fail(*args, **kwargs):
        raise IntegrationError("the interpolant did not converge in 3 Newton steps")

    monkeypatch.setattr(implicit_bias, "entropic_interpolant", fail)
    args = ("--D", "20", "--P", "120", "--alpha", "1", "--eps", "0.05", "--steps", "2000",
            "--critical-kappa", "none", "--limit-loss", "interpolant")
    code, out = _run(tmp_path, *args)
    rows, s = _read(out)
    assert code == 0 and rows and s["predicted_limit_test_loss"] is None
    assert s["reasons"]["predicted_limit_test_loss"] == ("the interpolant did not converge in "
                                                         "3 Newton steps")


def test_odd_ns_refused(tmp_path, capsys):
    """An odd --ns (the DMFT's samples come in +- pairs) is refused in one line, exit 2, with
    nothing written -- not silently rounded up."""
    code, out = _run(tmp_path, "--D", "30", "--P", "165", "--ns", "401", "--steps", "10")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--ns must be even, got 401" in err
    assert not out.exists()


def test_dmft_draws(tmp_path, capsys):
    """--dmft-draws K averages K Monte Carlo draws of the DMFT: the standard error of the loss at
    the horizon in summary.json and the per-time standard errors in trajectory.csv (recorded in
    run.json); refused in one line where no DMFT runs."""
    base = ("--D", "30", "--P", "60", "--alpha", "1", "--eps", "0.02", "--steps", "2000",
            "--critical-kappa", "none", "--limit-loss", "none", "--ns", "40")
    code, out = _run(tmp_path, *base, "--dmft-draws", "2")
    assert code == 0
    rows, s = _read(out)
    assert s["dmft_draws"] == 2 and s["predicted_final_test_loss_mc_se"] > 0
    last = rows[-1]
    assert float(last["population_loss_mc_se"]) / float(rows[0]["population_loss"]) == (
        pytest.approx(s["predicted_final_test_loss_mc_se"]))
    assert json.loads((out / "run.json").read_text())["config"]["dmft_draws"] == 2
    _nulls_have_reasons(s)
    # one draw into the same folder is a different run, and the refusal says why
    capsys.readouterr()
    assert _run(tmp_path, *base)[0] == 2
    assert "differs in dmft_draws 2 -> default" in capsys.readouterr().err
    # not quiet, one draw at kappa = 2: the summary line says what the loss is worth: the
    # closure's bias as derived (draws do not remove it), one draw's own scatter with spread
    assert main(["asymptotic", *base, "--column-closure", "dmft", "--out",
                 str(tmp_path / "one"), "--no-plot"]) == 0
    line = _summary_line(capsys.readouterr().out)
    assert "x initial (the DMFT as derived is +0.03..+0.08 too high" in line, line
    assert "a bias that more draws do not remove: --column-closure spread)" in line, line
    assert "one Monte Carlo draw" not in line, line
    # several draws, not quiet: a progress line per draw done, the standard error and the
    # closure's bias in one parenthesis
    assert main(["asymptotic", *base, "--dmft-draws", "2", "--column-closure", "dmft",
                 "--out", str(tmp_path / "two"), "--no-plot"]) == 0
    cap = capsys.readouterr()
    assert any(x.startswith("asymptotic: Monte Carlo draw 1 of 2 done, ")
               for x in cap.err.splitlines()), cap.err                   # progress: stderr
    assert "x initial (standard error over 2 Monte Carlo draws; the DMFT as derived" in (
        _summary_line(cap.out))
    assert main(["asymptotic", *base, "--out", str(tmp_path / "one_spread"),
                 "--no-plot"]) == 0          # the default closure here: spread
    line = _summary_line(capsys.readouterr().out)
    assert "x initial (one Monte Carlo draw, its own error not measured" in line, line
    assert "bias" not in line, line
    # the spectral closure's loss at the horizon has no floor: the line and its regime say so
    assert main(["asymptotic", "--D", "30", "--P", "200", "--steps", "2000", "--critical-kappa",
                 "none", "--limit-loss", "none", "--out", str(tmp_path / "one_spectral"),
                 "--no-plot"]) == 0
    line = _summary_line(capsys.readouterr().out)
    assert line.startswith("asymptotic: offline-spectral"), line
    assert "x initial (no memorisation in the spectral closure: -0.03..-0.13 too low" in line
    regime = json.loads((tmp_path / "one_spectral" / "summary.json").read_text())["regime"]
    assert "its loss at the horizon has no floor" in regime, regime
    # a spectral curve with --critical-kappa dmft: the draws are the critical search's (as
    # derived: the spread closure's scheme is unstable at kappa = 1.5 with as few as 40 samples)
    code, spec = _run(tmp_path, "--D", "30", "--P", "200", "--steps", "2000", "--ns", "40",
                      "--critical-kappa", "dmft", "--limit-loss", "none", "--dmft-draws", "2",
                      "--column-closure", "dmft", name="spectral")
    _, s2 = _read(spec)
    assert code == 0 and s2["method"] == "spectral" and "dmft_draws" not in s2
    assert "mean of 2 Monte Carlo draws" in s2["critical_kappa_definition"]
    for args, words in ((("--P", "200"), "add --method dmft"),
                        (("--P", "60", "--init", "lowrank:1"), "r-index DMFT"),
                        (("--P", "60", "--dmft-draws", "0"), "must be >= 1")):
        code, bad = _run(tmp_path, "--D", "30", "--steps", "100", "--dmft-draws", "2", *args,
                         name=f"bad{len(words)}")
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and words in err, (args, err)
        assert not bad.exists()


def test_a_dmft_horizon_too_long_is_refused_first(tmp_path, capsys):
    """A horizon beyond the DMFT's grid is refused in one line before anything is computed
    (before the critical kappa's interpolant runs), naming the longest horizon in steps."""
    out = tmp_path / "long"
    code = main(["asymptotic", "--D", "30", "--P", "60", "--steps", "200000", "--out",
                 str(out), "--no-plot"])
    cap = capsys.readouterr()
    assert code == 2 and "\n" not in cap.err.strip() and "steps here" in cap.err
    assert "interpolant" not in cap.out and not out.exists()
