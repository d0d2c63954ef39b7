"""Command-line hygiene (issue 15 §2/§7, issue 16 §5): ``--version``; help text on every
argument of every subcommand; a subcommand's help lists only options it takes; the summary
line's total wall time; periodic progress lines when stderr is not a terminal (and tqdm
imported only when a bar is shown); ``phase`` refusals (scheduler, relative threshold, grid
size, unwritable folder) that leave nothing behind.

No assertion here depends on how fast the machine is: the wall-time test adds a known sleep,
and the progress interval is set through ``LAZYRICH_PROGRESS_INTERVAL``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lazyrich_theory as lr
from lazyrich_theory.cli import app
from lazyrich_theory.cli import figure as cli_figure
from lazyrich_theory.cli import phase as cli_phase
from lazyrich_theory.cli import solve as cli_solve
from lazyrich_theory.cli.parser import problem_from_args
from lazyrich_theory.core import trackers
from lazyrich_theory.core.trackers import LineProgress, progress_bar
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.sweep import guard
from lazyrich_theory.experiments.sweep import run as sweep_run
from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.resources import ResourceError

from cli_helpers import call, one_line  # tests/cli/cli_helpers.py

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--D", "12", "--P", "40", "--N", "5", "--eps", "0.3", "--test-size", "100"]
#: A phase grid of two cheap cells (PHASE: run in-process).
GRID = ["phase", "--vary", "alpha=1,2", "--D", "10", "--P", "30", "--N", "20",
        "--test-size", "100", "--steps", "200", "--no-plot"]
PHASE = [*GRID, "--workers", "1"]


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, MPLBACKEND="Agg", **extra,
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


# ------------------------------------------------------------------------------ --version
def test_version_prints_the_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        app.main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    try:
        expected = importlib.metadata.version("lazyrich_theory")
    except importlib.metadata.PackageNotFoundError:
        expected = lr.__version__
    assert out == f"lazyrich {expected}\n"
    assert app.version() == expected


def test_version_in_a_real_process():
    res = subprocess.run([sys.executable, "-m", "lazyrich_theory.cli", "--version"],
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and re.fullmatch(r"lazyrich \S+\n", res.stdout), res
    assert res.stderr == ""


# ------------------------------------------------------------------------------ help text
def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser a user meets: lazyrich, each subcommand, figure's and phase's own."""
    top = app.build_parser()
    found = {"lazyrich": top}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update({f"lazyrich {n}": p for n, p in action.choices.items()})
    found["lazyrich figure (own parser)"] = cli_figure.build_parser(["fig1"], ["sgd"])
    found["python -m lazyrich_theory.cli.phase"] = cli_phase.build_parser()
    return found


def test_every_argument_of_every_subcommand_has_help_text():
    parsers = _parsers()
    assert {"lazyrich solve", "lazyrich simulate", "lazyrich population", "lazyrich compare",
            "lazyrich phase", "lazyrich figure"} <= set(parsers)
    missing = []
    for name, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}" for c in action._choices_actions
                            if not (c.help or "").strip()]
                continue
            if action.help == argparse.SUPPRESS or not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"arguments without help text: {missing}"


def test_every_help_text_formats_as_written():
    """argparse %-formats each help string: a bare "7 % at 5.5" reads "% a" as a conversion
    and prints the action's dict in its place, so every help must render without it."""
    bad = {}
    for name, parser in _parsers().items():
        text = parser.format_help()
        if "option_strings" in text or "%(" in text or "%%" in text:
            bad[name] = [line for line in text.splitlines() if "option_strings" in line
                         or "%(" in line or "%%" in line][:2]
    assert not bad, bad


def test_compare_and_figure_help_name_their_arguments_and_defaults(capsys):
    with pytest.raises(SystemExit):
        app.main(["compare", "--help"])
    text = capsys.readouterr().out
    assert "DIR_A" in text and "DIR_B" in text and "result folder" in text
    with pytest.raises(SystemExit):
        app.main(["figure", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: ./figures" in text and "seed of the data" in text


def test_the_default_figure_folder_is_ignored_by_git():
    res = subprocess.run(["git", "check-ignore", "-q", "figures/fig4/fig4.png"], cwd=REPO,
                         capture_output=True)
    if res.returncode == 128:
        pytest.skip("not a git checkout")
    assert res.returncode == 0, "./figures (lazyrich figure's default --out) is not ignored"
    # ... but only at the root: the package's own figures/ folder stays tracked
    res = subprocess.run(["git", "check-ignore", "-q",
                          "lazyrich_theory/experiments/figures/new_module.py"], cwd=REPO)
    assert res.returncode == 1


# ------------------------------------------------------------------------------ only what it takes
#: A non-default value of each model option (flags without a value: None).  A subcommand must
#: accept every option its help lists; a new option needs an entry here.
SAMPLES = {"--preset": "fig4", "--D": "12", "--P": "40", "--N": "5", "--alpha": "2",
           "--eps": "0.3", "--eta0": "0.5", "--seed": "3", "--test-size": "50",
           "--convention": "B", "--centered": None, "--uncentered": None, "--noise": "0.1",
           "--weight-decay": "1e-3", "--weight-decay-torch": "1e-3", "--momentum": "0.5",
           "--target": "quadratic", "--batch-size": "10", "--online": None,
           "--init": "lowrank:2", "--init-scale": "2"}
#: Options that need a file (checked by the bad-input table instead).
NEEDS_A_FILE = {"--data"}


def _model_flags(parser: argparse.ArgumentParser) -> list[str]:
    group = next(g for g in parser._action_groups if g.title == "model options")
    return [a.option_strings[0] for a in group._group_actions]


def test_population_help_lists_no_option_it_rejects(capsys):
    pop = _parsers()["lazyrich population"]
    listed = set(pop._option_string_actions)
    for flag in cli_solve.NOT_SUPPORTED["population"]:
        assert flag not in listed, flag
    with pytest.raises(SystemExit):
        app.main(["population", "--help"])
    text = capsys.readouterr().out
    options = text.split("Not taken by population")[0]   # the epilog names them, with why
    for flag in cli_solve.NOT_SUPPORTED["population"]:
        assert not re.search(rf"^\s+{re.escape(flag)}\b", options, re.M), flag
        assert flag in text                                # ... listed as not taken


@pytest.mark.parametrize("command", ["solve", "simulate", "population"])
def test_every_model_option_a_subcommand_lists_is_accepted(command, tmp_path):
    """Each listed option with a non-default value passes the command's checks (which run
    before anything is computed); solve and simulate take them all."""
    parser = _parsers()[f"lazyrich {command}"]
    flags = [f for f in _model_flags(parser) if f not in NEEDS_A_FILE]
    unknown = [f for f in flags if f not in SAMPLES]
    assert not unknown, f"add a sample value of {unknown} to SAMPLES"
    if command != "population":
        assert set(cli_solve.NOT_SUPPORTED.get(command, {})) == set()
    for flag in flags:
        value = [] if SAMPLES[flag] is None else [SAMPLES[flag]]
        argv = [command, *SMALL, flag, *value, "--out", str(tmp_path / "o")]
        args = app.build_parser().parse_args(argv)
        problem, steps = problem_from_args(args)
        cli_solve._check_method(args, problem, steps)  # raises ProblemError if refused


@pytest.mark.parametrize("flag,value", [("--momentum", "0.5"), ("--batch-size", "10"),
                                        ("--online", None), ("--target", "hermite:k=2")])
def test_population_refuses_an_option_it_does_not_take_saying_why(flag, value, tmp_path,
                                                                   capsys):
    argv = ["population", *SMALL, flag, *([] if value is None else [value]),
            "--out", tmp_path / "o"]
    rc, out, err = call(capsys, argv)
    line = one_line(err)
    assert rc == 2 and out == "" and not (tmp_path / "o").exists()
    assert line == (f"lazyrich: error: population does not take {flag} "
                    f"({cli_solve.NOT_SUPPORTED['population'][flag]})")


# ------------------------------------------------------------------------------ wall time
def test_summary_line_gives_the_total_wall_time_and_the_solver_s(tmp_path, capsys,
                                                                  monkeypatch):
    """The total counts from the start of main to the files written: a save made 0.3 s
    slower shows in the total, not in the solver's time."""
    save = Trajectory.save

    def slow_save(self, *args, **kwargs):
        time.sleep(0.3)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Trajectory, "save", slow_save)
    rc, out, _ = call(capsys, ["solve", *SMALL, "--steps", "300", "--no-plot", "--no-theory",
                               "--out", tmp_path / "a"])
    assert rc == 0
    m = re.search(r"^solve: gd, 300 steps in ([\d.]+) s \(solver ([\d.]+) s\); final train "
                  r"\S+, test \S+, population \S+ -> (.+)$", out, re.M)
    assert m, out
    total, solver = float(m.group(1)), float(m.group(2))
    assert total >= solver + 0.3 - 0.01
    assert m.group(3) == str(tmp_path / "a")


def test_quiet_prints_no_summary_and_no_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(trackers.PROGRESS_INTERVAL_ENV, "0.000001")
    rc, out, err = call(capsys, ["solve", *SMALL, "--steps", "3000", "--no-plot", "--no-theory",
                                 "--quiet", "--out", tmp_path / "a"])
    assert rc == 0 and out == "" and err == ""


# ------------------------------------------------------------------------------ progress
def test_progress_lines_on_stderr_when_it_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    """capsys' stderr is not a terminal: a run longer than the interval prints lines."""
    monkeypatch.setenv(trackers.PROGRESS_INTERVAL_ENV, "0.000001")
    rc, _, err = call(capsys, ["solve", *SMALL, "--steps", "3000", "--method", "gd",
                               "--no-plot", "--no-theory", "--out", tmp_path / "gd"])
    assert rc == 0
    lines = [ln for ln in err.splitlines() if ln.startswith("lazyrich: gd: ")]
    assert lines, err
    for ln in lines:
        assert re.fullmatch(r"lazyrich: gd: step \d+/3000 \(\d+%\), elapsed \S+ \S+, "
                            r"ETA (\S+ \S+|unknown)", ln), ln
    rc, _, err = call(capsys, ["solve", *SMALL, "--steps", "3000", "--method", "flow",
                               "--no-plot", "--no-theory", "--out", tmp_path / "flow"])
    assert rc == 0 and re.search(r"^lazyrich: flow: step \S+/3000 ", err, re.M), err
    rc, _, err = call(capsys, ["solve", *SMALL, "--steps", "3000", "--no-plot", "--no-theory",
                               "--out", tmp_path / "auto"])      # the default: gd-fast strides
    assert rc == 0 and re.search(r"^lazyrich: gd-fast: step \d+/3000 ", err, re.M), err


def test_phase_prints_cell_progress_lines_when_not_on_a_terminal(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setenv(trackers.PROGRESS_INTERVAL_ENV, "0.000001")
    rc, out, err = call(capsys, [*PHASE, "--out", tmp_path / "ph"])
    assert rc == 0, err
    assert re.search(r"^lazyrich: phase: cell [12]/2 \(\d+%\), elapsed ", err, re.M), err
    assert re.search(r"^phase: 2 cells \(2 ok\); computed 2, 0 already done; [\d.]+ s -> ",
                     out, re.M), out


def test_line_progress_interval_eta_and_environment(monkeypatch):
    stream = io.StringIO()
    bar = LineProgress(1000, "gd", stream=stream, interval=0.0)
    bar.update(0.5)                        # under a thousandth of the total: no ETA yet
    bar.update(499.5)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("ETA unknown") and "step 0.5/1000 (0%)" in lines[0]
    assert "step 500/1000 (50%)" in lines[1] and "ETA unknown" not in lines[1]
    quiet = io.StringIO()
    slow = LineProgress(10, "phase", unit="cell", initial=3, stream=quiet, interval=3600.0)
    slow.update(1)
    slow.close()
    assert quiet.getvalue() == "" and slow.n == 4      # no line before the interval
    monkeypatch.setenv(trackers.PROGRESS_INTERVAL_ENV, "2.5")
    assert trackers.progress_interval() == 2.5
    for bad in ("x", "0", "-1", "nan"):
        monkeypatch.setenv(trackers.PROGRESS_INTERVAL_ENV, bad)
        assert trackers.progress_interval() == trackers.PROGRESS_INTERVAL


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_bar(10, "gd"), LineProgress)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress_bar(10, "gd", leave=False)
    try:
        assert not isinstance(bar, LineProgress) and type(bar).__module__.startswith("tqdm")
    finally:
        bar.close()


def test_tqdm_is_imported_only_when_a_bar_is_shown():
    code = ("import sys, lazyrich_theory as lr, lazyrich_theory.cli.app\n"
            "p = lr.Problem(D=12, P=40, N=5, eps=0.3, test_size=100)\n"
            "lr.solve(p, 300, progress=True)\n"             # stderr is a pipe: lines, no bar
            "lr.sweep(p, {'alpha': '1,2'}, 100, workers=1, progress=True)\n"
            "assert not [m for m in sys.modules if m.startswith('tqdm')], 'tqdm imported'\n")
    res = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "TqdmWarning" not in res.stderr


# ------------------------------------------------------------------------------ phase refusals
def _refused(capsys, argv, out: Path) -> str:
    rc, stdout, err = call(capsys, [*argv, "--out", out])
    line = one_line(err)
    assert rc == 2 and stdout == "", (rc, stdout, err)
    assert line.startswith("lazyrich: error: "), line
    assert not out.exists(), sorted(out.rglob("*"))      # no sweep.json, no cells/
    return line


def test_phase_malformed_scheduler_is_one_line_and_leaves_nothing(tmp_path, capsys):
    pytest.importorskip("distributed")
    line = _refused(capsys, [*GRID, "--scheduler", "notanaddress"], tmp_path / "ph")
    assert "notanaddress" in line and "not a Dask scheduler address" in line


def test_phase_unreachable_scheduler_writes_no_sweep_json(tmp_path, capsys, monkeypatch):
    """The scheduler is connected to before the folder is touched (a refused connection
    takes the client's 20 s timeout: simulated here)."""
    def unreachable(address):
        raise ProblemError(f"cannot reach Dask scheduler {address}: connection refused")

    monkeypatch.setattr(sweep_run, "connect_scheduler", unreachable)
    existing = tmp_path / "existing"          # an existing empty folder stays empty
    existing.mkdir()
    rc, _, err = call(capsys, [*GRID, "--scheduler", "tcp://127.0.0.1:1",
                               "--out", existing])
    assert rc == 2 and "cannot reach" in one_line(err)
    assert list(existing.iterdir()) == []


@pytest.mark.parametrize("value", ["5", "1", "1.0"])
def test_phase_relative_threshold_must_be_a_fraction(value, tmp_path, capsys):
    line = _refused(capsys, [*PHASE, "--relative", value], tmp_path / "ph")
    assert "(0, 1)" in line and "relative" in line


def test_phase_grid_too_large_is_refused_before_it_is_built(tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the grid's values were built")

    monkeypatch.setattr(cli_phase, "parse_vary", never)
    line = _refused(capsys, ["phase", "--vary", "alpha=1:2:100000000", "--vary",
                             "eps=0.01,0.02"], tmp_path / "ph")
    assert "200000000 cells" in line and "estimate" in line and "--i-know" in line, line


def test_grid_estimate_uses_each_cells_own_problem_and_i_know_lets_through(monkeypatch):
    base = Problem(D=10, P=30, N=20, test_size=100)
    with pytest.raises(ResourceError) as exc:      # the swept D, not the base's, is estimated
        lr.sweep(base, {"D": "10,200000"}, 100, workers=1, progress=False)
    assert "2 cells" in str(exc.value) and "D=200000" in str(exc.value)
    with pytest.raises(ResourceError):             # counted from the spec, before planning
        lr.sweep(base, {"alpha": "1:2:100000000"}, 100, progress=False)
    monkeypatch.setattr(guard, "available_memory", lambda: 1000)     # a 1 kB machine
    with pytest.raises(ResourceError) as exc:
        lr.sweep(base, {"alpha": "1,2"}, 100, workers=1, progress=False)
    assert "1 kB of memory available" in str(exc.value)
    res = lr.sweep(base, {"alpha": "1,2"}, 100, workers=1, progress=False, allow_large=True)
    assert res.stats["n_computed"] == 2


def test_phase_i_know_lets_a_refused_grid_through(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(guard, "available_memory", lambda: 1000)
    line = _refused(capsys, PHASE, tmp_path / "a")
    assert "sweep too large" in line and "--i-know" in line
    rc, out, err = call(capsys, [*PHASE, "--i-know", "--out", tmp_path / "b"])
    assert rc == 0 and "2 ok" in out, err


def test_count_cells_reads_the_specs_without_building_them():
    assert guard.count_cells(["alpha=1:2:100000000", "eps=log:0.1:1:7"], 3) == 2_100_000_000
    assert guard.count_cells({"alpha": "1,2,3", "init": "lowrank:1,iid"}) == 6
    assert guard.count_cells({"N": [10, 20]}, [0, 1, 2]) == 6
    assert guard.count_cells(["alpha=1:2:x"]) is None          # the axis parser says why


@pytest.mark.parametrize("out", ["{afile}/ph", "/sys/lazyrich-phase"])
def test_phase_unwritable_output_is_refused_before_anything_runs(out, tmp_path, capsys,
                                                                 monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("a regular file\n")
    monkeypatch.setattr(sweep_run, "_run", lambda *a, **k: pytest.fail("cells ran"))
    line = _refused(capsys, PHASE, Path(out.format(afile=afile)))
    assert "is a file" in line or "not writable" in line
