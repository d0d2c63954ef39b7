"""Bad input, everywhere: every subcommand and the Python API refuse it with one line that names
the cause, before anything is computed or written.

* The table :data:`CLI_CASES` (``lazyrich`` argv -> a keyword the message must contain) runs
  in-process through ``lazyrich_theory.cli.app.main``: exit code 2, exactly one line on stderr,
  no traceback, nothing on stdout, the output folder not created.  A few cases run again in a
  real process (:data:`SUBPROCESS_CASES`) to prove the process boundary shows no traceback.
* The table :data:`API_CASES` calls the Python API: a ``ProblemError`` with a one-line message
  containing the keyword.
* The size guard refuses oversized problems instantly with the estimate (and ``--i-know`` /
  ``allow_large`` lets them through the guard); an unwritable output is refused before any
  computation.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import lazyrich_theory as lr
from lazyrich_theory.cli import solve as cli_solve
from lazyrich_theory.cli.app import main
from lazyrich_theory.core.population import population
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec import resources
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem, preset
from lazyrich_theory.spec.resources import check_resources, check_writable, estimate
from lazyrich_theory.spec.schedule import parse_times, save_times
from lazyrich_validation.compare import max_relative_deviation

from cli_helpers import call, one_line  # tests/cli/cli_helpers.py

REPO = Path(__file__).resolve().parents[2]

# A small problem (N < D, 300 steps), as in test_cli.py; later options override its values.
SMALL = ["--D", "12", "--P", "40", "--N", "5", "--eps", "0.3", "--test-size", "100",
         "--steps", "300"]
#: Options of a problem that takes minutes (Figure 1's setup, 100 000 exact GD steps).
SLOW = ["--preset", "fig1"]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Bad and good files the cases refer to by name ({name} in the argv)."""
    root = tmp_path_factory.mktemp("files")
    f: dict[str, Path] = {"tmp": root}
    (root / "text.npz").write_text("X,y\n1,2\n")
    np.save(root / "single.npy", np.zeros((3, 2)))
    os.replace(root / "single.npy", root / "single.npz")
    (root / "empty.npz").write_bytes(b"")
    (root / "adir").mkdir()
    np.savez(root / "partial.npz", X=np.zeros((40, 12)), y=np.zeros(40))
    bad = ProblemData.sample(Problem(D=12, P=40, N=5, test_size=100))
    np.savez(root / "nan.npz", X=np.full((40, 12), np.nan), y=bad.y, X_test=bad.X_test,
             y_test=bad.y_test, beta=bad.beta, W0=bad.W0)
    (root / "afile").write_text("a regular file\n")
    # two result folders: a good run, and damaged copies of it
    good = root / "good"
    assert main(["solve", *SMALL, "--quiet", "--no-plot", "--no-theory", "--out", str(good)]) == 0
    f["good"] = good
    for name, text in _damaged_csvs(good / "trajectory.csv").items():
        d = root / name
        shutil.copytree(good, d)
        os.remove(d / "manifest.json")        # hand-edited folders, as users make them
        (d / "trajectory.csv").write_text(text)
    (root / "nocsv").mkdir()
    d = root / "badjson"
    shutil.copytree(good, d)
    os.remove(d / "manifest.json")
    (d / "problem.json").write_text("{not json")
    for k, v in {"text": "text.npz", "npy": "single.npz", "empty": "empty.npz",
                 "partial": "partial.npz", "nanfile": "nan.npz", "afile": "afile",
                 "adir": "adir"}.items():
        f[k] = root / v
    return f


def _damaged_csvs(path: Path) -> dict[str, str]:
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    nan_row = lines[5].rstrip("\n").split(",")
    nan_row[header.index("test_loss")] = "nan"
    word_row = lines[5].rstrip("\n").split(",")
    word_row[2] = "abc"
    return {
        "garbage": "this is not a table\x00\n",
        "headeronly": lines[0],
        "truncated": "".join(lines[:12]) + lines[12][: len(lines[12]) // 2],
        "emptycsv": "",
        "word": "".join(lines[:5]) + ",".join(word_row) + "\n" + "".join(lines[6:]),
        "nancsv": "".join(lines[:5]) + ",".join(nan_row) + "\n" + "".join(lines[6:]),
    }


# ------------------------------------------------------------------------------ CLI table
#: id -> (argv, keyword).  "{name}" is a path from the ``files`` fixture, "{out}" a fresh
#: output folder.  solve/simulate/population get SMALL (then "--quiet --out {out}") unless
#: their argv already holds --out; later options override SMALL's.
CLI_CASES: dict[str, tuple[list[str], str]] = {
    # --- solve: the problem's fields
    "D negative": (["solve", "--D", "-5"], "--D"),
    "D zero": (["solve", "--D", "0"], "D must be"),
    "D not a number": (["solve", "--D", "abc"], "--D"),
    "P zero": (["solve", "--P", "0"], "P must be"),
    "N not a number": (["solve", "--N", "abc"], "N must be"),
    "N fractional": (["solve", "--N", "2.5"], "N must be"),
    "N zero": (["solve", "--N", "0"], "N must be"),
    "N negative": (["solve", "--N", "-3"], "N must be"),
    "N 1e400": (["solve", "--N", "1e400"], "N must be"),
    "alpha zero": (["solve", "--alpha", "0"], "alpha"),
    "alpha negative": (["solve", "--alpha", "-1"], "alpha"),
    "alpha nan": (["solve", "--alpha", "nan"], "--alpha"),
    "alpha inf": (["solve", "--alpha", "inf"], "--alpha"),
    "alpha 1e308": (["solve", "--alpha", "1e308"], "overflow at alpha"),
    "alpha 1e-300": (["solve", "--alpha", "1e-300"], "underflow at alpha"),
    "eps 1e300": (["solve", "--eps", "1e300"], "overflow at eps"),
    "eps nan": (["solve", "--eps", "nan"], "--eps"),
    "eps 1e50 first step": (["solve", "--eps", "1e50"], "first step"),
    "eta0 negative": (["solve", "--eta0", "-1"], "eta0"),
    "eta0 zero": (["solve", "--eta0", "0"], "eta0"),
    "eta0 1e300": (["solve", "--eta0", "1e300"], "overflow at eta0"),
    "eta0 1e-300": (["solve", "--eta0", "1e-300"], "underflow at eta0"),
    "eta0 word": (["solve", "--eta0", "fast"], "--eta0"),
    "seed negative": (["solve", "--seed", "-1"], "--seed"),
    "seed word": (["solve", "--seed", "x"], "--seed"),
    "test size zero": (["solve", "--test-size", "0"], "test_size must be"),
    "convention C": (["solve", "--convention", "C"], "convention"),
    "centered and uncentered": (["solve", "--centered", "--uncentered"], "not allowed with"),
    "noise negative": (["solve", "--noise", "-1"], "noise"),
    "noise 1e200": (["solve", "--noise", "1e200"], "overflow at noise"),
    "weight decay negative": (["solve", "--weight-decay", "-1"], "weight_decay"),
    "weight decay 1e6 with gd": (["solve", "--weight-decay", "1e6"], "weight decay too strong"),
    "momentum 1": (["solve", "--momentum", "1"], "momentum"),
    "momentum negative": (["solve", "--momentum", "-0.1"], "momentum"),
    "batch size zero": (["solve", "--batch-size", "0"], "batch_size must be"),
    "target rank beyond D": (["solve", "--D", "8", "--target", "quadratic:rank=100"], "rank=100"),
    "target unknown family": (["solve", "--target", "nope"], "unknown family"),
    "target empty": (["solve", "--target", ""], "target"),
    "target hermite too many dirs": (["solve", "--D", "10", "--target", "hermite:k=3,r=20"],
                                     "orthonormal"),
    "target missing file": (["solve", "--target", "quadratic:file={tmp}/none.npz"],
                            "file not found"),
    "unknown preset": (["solve", "--preset", "fig9"], "fig9"),
    # --- solve: the run
    "steps zero": (["solve", "--steps", "0"], "--steps"),
    "steps negative": (["solve", "--steps", "-1"], "--steps"),
    "steps fractional": (["solve", "--steps", "2.5"], "--steps"),
    "steps word": (["solve", "--steps", "many"], "--steps"),
    "steps 1e400": (["solve", "--steps", "1e400"], "--steps"),
    # exact GD step by step (gd-fast strides, the default, run 1e15 steps in seconds)
    "steps 1e15": (["solve", "--method", "gd", "--steps", "1e15"], "too long"),
    "save-times empty item": (["solve", "--save-times", "1,,2"], "empty item"),
    "save-times empty": (["solve", "--save-times="], "no times"),
    "save-times only comma": (["solve", "--save-times", ","], "save-times"),
    "save-times word": (["solve", "--save-times", "1,x"], "'x'"),
    "save-times fractional": (["solve", "--save-times", "2.5"], "2.5"),
    "save-times negative": (["solve", "--save-times", "-3"], "-3"),
    "save-times past horizon": (["solve", "--save-times", "301"], "outside"),
    "save-times inf": (["solve", "--save-times", "inf"], "inf"),
    "rtol with gd": (["solve", "--method", "gd", "--rtol", "5"], "--rtol applies to --method flow"),
    "atol with gd-fast": (["solve", "--method", "gd-fast", "--atol", "1e-9"],
                          "--atol applies to --method flow"),
    "rtol out of range (auto)": (["solve", "--rtol", "5"], "rtol must be in"),
    "atol with gd": (["solve", "--atol", "1e-3"], "--atol applies"),
    "integrator with gd": (["solve", "--integrator", "dopri5"], "--integrator applies"),
    "rtol 5": (["solve", "--method", "flow", "--rtol", "5"], "rtol must be in"),
    "rtol zero": (["solve", "--method", "flow", "--rtol", "0"], "--rtol"),
    "rtol negative": (["solve", "--method", "flow", "--rtol", "-1"], "--rtol"),
    "rtol 1e-20": (["solve", "--method", "flow", "--rtol", "1e-20"], "rtol must be in"),
    "atol negative": (["solve", "--method", "flow", "--atol", "-1"], "--atol"),
    "atol 2": (["solve", "--method", "flow", "--atol", "2"], "atol must be in"),
    "method unknown": (["solve", "--method", "euler"], "invalid choice"),
    "integrator unknown": (["solve", "--method", "flow", "--integrator", "euler"],
                           "invalid choice"),
    "flow with momentum": (["solve", "--method", "flow", "--momentum", "0.5"], "momentum"),
    "flow with minibatch": (["solve", "--method", "flow", "--batch-size", "10"], "minibatch"),
    "flow with online": (["solve", "--method", "flow", "--online"], "online"),
    "dopri5 too stiff": (["solve", "--method", "flow", "--integrator", "dopri5", "--eta0", "1e6"],
                         "stiff"),
    "rkc too stiff": (["solve", "--method", "flow", "--eta0", "1e9"], "stiff"),
    "unknown option": (["solve", "--width", "3"], "unrecognized"),
    # --- solve: sizes (refused by the estimate)
    "D 200000": (["solve", "--D", "200000"], "too large"),
    "P 1e8": (["solve", "--P", "100000000"], "too large"),
    "test size 1e9": (["solve", "--test-size", "1000000000"], "too large"),
    "D 20000 N inf": (["solve", "--D", "20000", "--N", "inf"], "too large"),
    # --- solve: data files
    "data missing": (["solve", "--data", "{tmp}/missing.npz"], "not found"),
    "data text file": (["solve", "--data", "{text}"], "not a .npz archive"),
    "data renamed npy": (["solve", "--data", "{npy}"], ".npy"),
    "data folder": (["solve", "--data", "{adir}"], "folder"),
    "data empty file": (["solve", "--data", "{empty}"], "empty"),
    "data lacks arrays": (["solve", "--data", "{partial}"], "lacks array"),
    "data with NaN": (["solve", "--data", "{nanfile}"], "NaN"),
    "data disagrees with D": (["solve", "--data", "{good}/data.npz", "--D", "13"], "disagrees"),
    # --- solve: output folder
    "out under a file": (["solve", *SMALL, "--quiet", "--out", "{afile}/sub"], "is a file"),
    "out is a file": (["solve", *SMALL, "--quiet", "--out", "{afile}"], "not a folder"),
    "out under /sys": (["solve", *SMALL, "--quiet", "--out", "/sys/lazyrich-out"],
                       "not writable"),
    "out under /proc": (["solve", *SMALL, "--quiet", "--out", "/proc/lazyrich-out"],
                        "not writable"),
    "out is the root": (["solve", *SMALL, "--quiet", "--out", "/"], "mount point"),
    "out missing": (["solve", *SMALL], "--out"),
    "out holds another run": (["solve", *SMALL, "--seed", "1", "--quiet", "--out", "{good}"],
                              "different run"),
    # --- simulate
    "simulate N inf": (["simulate", "--N", "inf"], "finite width"),
    "simulate N 1e9": (["simulate", "--N", "1000000000"], "too large"),
    "simulate weight decay": (["simulate", "--weight-decay", "5"], "weight decay too strong"),
    "simulate steps zero": (["simulate", "--steps", "0"], "--steps"),
    "simulate rtol": (["simulate", "--rtol", "1e-3"], "unrecognized"),
    "simulate alpha 1e308": (["simulate", "--alpha", "1e308"], "overflow at alpha"),
    "simulate data folder": (["simulate", "--data", "{adir}"], "folder"),
    # --- population
    "population rtol negative": (["population", "--rtol", "-1"], "--rtol"),
    "population rtol 5": (["population", "--rtol", "5"], "rtol must be in"),
    "population atol 5": (["population", "--atol", "5"], "atol must be in"),
    "population D 200000": (["population", "--D", "200000"], "too large"),
    "population momentum": (["population", "--momentum", "0.5"], "momentum"),
    "population target": (["population", "--target", "hermite:k=2"], "target"),
    "population scalar finite N": (["population", "--method", "scalar"], "N = inf"),
    "population method unknown": (["population", "--method", "bogus"], "invalid choice"),
    "population scalar too stiff": (["population", "--N", "inf", "--eta0", "1e12",
                                     "--steps", "100000"], "stiff"),
    "population full too stiff": (["population", "--eta0", "1e6", "--steps", "100000"],
                                  "stiff"),
    "population convention C": (["population", "--convention", "C"], "convention"),
    "population data text": (["population", "--data", "{text}"], "not a .npz archive"),
    # --- compare
    "compare missing folders": (["compare", "{tmp}/nope_a", "{tmp}/nope_b"], "no such folder"),
    "compare a file": (["compare", "{good}", "{afile}"], "not a folder"),
    "compare no csv": (["compare", "{good}", "{tmp}/nocsv"], "no trajectory.csv"),
    "compare garbage csv": (["compare", "{good}", "{tmp}/garbage"], "not a trajectory table"),
    "compare header-only csv": (["compare", "{good}", "{tmp}/headeronly"], "no rows"),
    "compare truncated csv": (["compare", "{good}", "{tmp}/truncated"], "truncated"),
    "compare empty csv": (["compare", "{good}", "{tmp}/emptycsv"], "empty"),
    "compare word in csv": (["compare", "{good}", "{tmp}/word"], "'abc' is not a number"),
    "compare NaN on one side": (["compare", "{good}", "{tmp}/nancsv"], "cannot compare"),
    "compare bad problem.json": (["compare", "{good}", "{tmp}/badjson"], "problem"),
    "compare columns empty": (["compare", "{good}", "{good}", "--columns", ""], "no column"),
    "compare columns commas": (["compare", "{good}", "{good}", "--columns", ",,"], "no column"),
    "compare columns empty item": (["compare", "{good}", "{good}", "--columns", "test_loss,"],
                                   "empty name"),
    "compare unknown column": (["compare", "{good}", "{good}", "--columns", "zzz"], "'zzz'"),
    "compare one folder": (["compare", "{good}"], "required"),
    # --- figure
    "figure unknown": (["figure", "nope", "--out", "{out}"], "unknown figure"),
    "figure set without value": (["figure", "fig4", "--out", "{out}", "--set", "D"],
                                 "KEY=VALUE"),
    "figure set bad value": (["figure", "fig4", "--out", "{out}", "--set", "D=-1"], "D must"),
    "figure set unknown key": (["figure", "fig4", "--out", "{out}", "--set", "zzz=1"], "zzz"),
    "figure steps zero": (["figure", "fig4", "--out", "{out}", "--steps", "0"], "--steps"),
    "figure steps word": (["figure", "fig4", "--out", "{out}", "--steps", "x"], "--steps"),
    "figure seed negative": (["figure", "fig4", "--out", "{out}", "--seed", "-1"], "--seed"),
    "figure out under a file": (["figure", "fig4", "--out", "{afile}/figs"], "is a file"),
    "figure out under /sys": (["figure", "fig4", "--out", "/sys/lazyrich-figs"], "not writable"),
    "figure too large": (["figure", "fig4", "--out", "{out}", "--set", "D=200000"], "too large"),
    "figure too long": (["figure", "fig4", "--out", "{out}", "--steps", "1e15"], "too long"),
    "figure unknown option": (["figure", "fig4", "--out", "{out}", "--bogus"], "unrecognized"),
    # a figure's own refusal comes before its estimate line (D = 400: an hour's estimate)
    "figure kappa closure with spectral": (["figure", "kappa", "--out", "{out}", "--set",
                                            "column_closure=spread", "--set", "method=spectral",
                                            "--set", "D=400"], "method='spectral' has none"),
    "figure kappa slow column": (["figure", "kappa", "--out", "{out}", "--set",
                                  "column_closure=spread", "--set", "kappas=1.2,3", "--set",
                                  "D=400"], "relaxation time"),
    "figure kappa method unknown": (["figure", "kappa", "--out", "{out}", "--set",
                                     "method=bogus", "--set", "D=400"], "method must be"),
    "figure kappa Ns odd": (["figure", "kappa", "--out", "{out}", "--set", "Ns=801", "--set",
                             "D=400"], "Ns must be"),
    "figure kappa kappas word": (["figure", "kappa", "--out", "{out}", "--set",
                                  "kappas=1.5,x"], "kappas must be"),
    "figure kappa kappas inf": (["figure", "kappa", "--out", "{out}", "--set", "kappas=inf"],
                                "kappas must be"),
    "figure kappa spectral_everywhere word": (["figure", "kappa", "--out", "{out}", "--set",
                                               "spectral_everywhere=maybe"], "true or false"),
    "figure kappa too large": (["figure", "kappa", "--out", "{out}", "--set", "D=20", "--set",
                                "kappas=1e6"], "lower the kappas"),
    "figure kappa dmft horizon too long": (["figure", "kappa", "--out", "{out}", "--set",
                                           "D=30", "--steps", "200000"], "steps here"),
    "solve dmft horizon too long": (["solve", "--D", "30", "--P", "60", "--N", "inf",
                                     "--steps", "200000", "--offline-theory", "dmft", "--out",
                                     "{out}"], "steps here"),
    "asymptotic dmft draws with spectral": (["asymptotic", "--D", "30", "--P", "200",
                                             "--dmft-draws", "2", "--out", "{out}"],
                                            "add --method dmft"),
    "figure floor-map ms negative": (["figure", "floor-map", "--out", "{out}", "--set", "D=400",
                                      "--steps", "100000", "--set", "ms=-1"], "ms must be"),
    "solve offline theory not for this init": (["solve", *SMALL, "--N", "inf",
                                                 "--offline-theory", "rindex", "--out",
                                                 "{out}"], "lowrank:R or aligned:R:C"),
    "solve offline theory without theory": (["solve", *SMALL, "--N", "inf", "--init",
                                             "aligned:1:0.5", "--offline-theory", "rindex",
                                             "--no-theory", "--out", "{out}"], "--no-theory"),
    "solve offline theory unknown": (["solve", *SMALL, "--offline-theory", "closure", "--out",
                                      "{out}"], "invalid choice"),
    "solve column closure without the dmft": (["solve", *SMALL, "--N", "inf",
                                               "--column-closure", "least_squares", "--out",
                                               "{out}"], "needs --offline-theory dmft"),
    "solve dmft draws without the dmft": (["solve", *SMALL, "--N", "inf", "--dmft-draws", "4",
                                           "--out", "{out}"], "needs --offline-theory dmft"),
    "solve dmft draws zero": (["solve", *SMALL, "--offline-theory", "dmft", "--dmft-draws",
                               "0", "--out", "{out}"], "--dmft-draws"),
    "solve column closure unknown": (["solve", *SMALL, "--offline-theory", "dmft",
                                      "--column-closure", "lsq", "--out", "{out}"],
                                     "invalid choice"),
    "asymptotic critical kappa not for this init": (["asymptotic", "--D", "30", "--P", "120",
                                                     "--init", "aligned:1:0.6",
                                                     "--critical-kappa", "dmft", "--out",
                                                     "{out}"], "is for the iid init"),
    # --- phase (argument parsing only)
    "phase steps zero": (["phase", "--vary", "alpha=1,2", "--steps", "0", "--out", "{out}"],
                         "--steps"),
    "phase seeds zero": (["phase", "--vary", "alpha=1,2", "--seeds", "0", "--out", "{out}"],
                         "--seeds"),
    "phase method unknown": (["phase", "--vary", "alpha=1,2", "--method", "euler",
                              "--out", "{out}"], "invalid choice"),
    "phase offline theory unknown": (["phase", "--vary", "alpha=1,2", "--offline-theory",
                                      "exact", "--out", "{out}"], "invalid choice"),
    "phase rtol negative": (["phase", "--vary", "alpha=1,2", "--rtol", "-1", "--out", "{out}"],
                            "--rtol"),
    "phase workers zero": (["phase", "--vary", "alpha=1,2", "--workers", "0", "--out", "{out}"],
                           "--workers"),
    "phase workers and scheduler": (["phase", "--vary", "alpha=1,2", "--workers", "2",
                                     "--scheduler", "tcp://x:1", "--out", "{out}"],
                                    "not allowed with"),
    "phase out missing": (["phase", "--vary", "alpha=1,2"], "--out"),
    "phase tol negative": (["phase", "--vary", "alpha=1,2", "--tol", "-1", "--out", "{out}"],
                           "--tol"),
    "phase no vary": (["phase", "--out", "{out}"], "--vary"),
    "phase relative 5": (["phase", "--vary", "alpha=1,2", "--relative", "5", "--out", "{out}"],
                         "(0, 1)"),
    "phase relative 1": (["phase", "--vary", "alpha=1,2", "--relative", "1", "--out", "{out}"],
                         "(0, 1)"),
    "phase scheduler not an address": (["phase", "--vary", "alpha=1,2", "--scheduler",
                                        "notanaddress", "--out", "{out}"], "scheduler"),
    "phase grid too large": (["phase", "--vary", "alpha=1:2:100000000", "--out", "{out}"],
                             "100000000 cells"),
    "phase out under a file": (["phase", "--vary", "alpha=1,2", "--out", "{afile}/ph"],
                               "is a file"),
    "population batch size": (["population", "--batch-size", "10"], "does not take --batch-size"),
    "population online": (["population", "--online"], "does not take --online"),
    # --- the top level
    "no command": ([], "a command is required"),
    "unknown command": (["bake"], "invalid choice"),
}

#: Commands that get the small problem and an output folder added.
_RUNS = ("solve", "simulate", "population")


def _argv(case: str, files: dict[str, Path], out: Path) -> list[str]:
    argv, _ = CLI_CASES[case]
    names = {k: str(v) for k, v in files.items()}
    argv = [a.format(out=out, **names) for a in argv]
    if argv and argv[0] in _RUNS and "--out" not in argv and case not in ("out missing",):
        argv = [argv[0], *SMALL, "--quiet", *argv[1:], "--out", str(out)]
    return argv


def test_the_table_is_large_and_covers_every_subcommand():
    commands = {argv[0] if argv else "" for argv, _ in CLI_CASES.values()}
    assert {"solve", "simulate", "population", "compare", "figure", "phase"} <= commands
    assert len(CLI_CASES) + len(API_CASES) >= 100


@pytest.mark.parametrize("case", list(CLI_CASES), ids=list(CLI_CASES))
def test_bad_cli_input_exits_2_with_one_line_naming_the_cause(case, files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(case, files, out)
    before = sorted(os.listdir(files["tmp"]))
    rc, stdout, err = call(capsys, argv)
    line = one_line(err)
    assert rc == 2, (argv, stdout, err)
    assert line.startswith(("lazyrich: error: ", "lazyrich figure: error: ")), line
    keyword = CLI_CASES[case][1]
    assert keyword.lower() in line.lower(), (keyword, line)
    assert not re.search(r"argument (\S+): \1 ", line), line    # the option named once
    assert stdout == ""
    assert not out.exists()
    assert sorted(os.listdir(files["tmp"])) == before       # nothing written beside the inputs


#: Cases run again in a fresh process: exit 2, one line, no traceback.
SUBPROCESS_CASES = ["eps 1e300", "D 200000", "steps 1e15", "out under /sys", "data renamed npy",
                    "compare garbage csv", "compare NaN on one side", "figure set unknown key",
                    "population scalar too stiff", "rtol with gd"]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(case, files, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, "-m", "lazyrich_theory.cli",
                          *_argv(case, files, tmp_path / "out")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    line = one_line(res.stderr)
    assert CLI_CASES[case][1].lower() in line.lower(), line


# ------------------------------------------------------------------------------ API table
def _small(**kw) -> Problem:
    return Problem(**{"D": 12, "P": 40, "N": 5, "eps": 0.3, "test_size": 100, **kw})


#: id -> (callable(files), keyword): each must raise ProblemError with a one-line message.
API_CASES = {
    "preset unknown field": (lambda f: preset("fig4", foo=1), "foo"),
    "preset unknown name": (lambda f: preset("nope"), "nope"),
    "replace unknown field": (lambda f: _small().replace(bar=2), "bar"),
    "from_dict unknown field": (lambda f: Problem.from_dict({"zz": 1}), "zz"),
    "from_json broken": (lambda f: Problem.from_json("{"), "not valid"),
    "Problem alpha 1e308": (lambda f: Problem(alpha=1e308), "overflow at alpha"),
    "Problem eps nan": (lambda f: Problem(eps=float("nan")), "eps"),
    "Problem rank beyond D": (lambda f: Problem(D=8, target="quadratic:rank=100"), "rank"),
    "Problem N 1e400": (lambda f: Problem(N="1e400"), "N must be"),
    "solve method unknown": (lambda f: lr.solve(_small(), 10, method="euler"), "method"),
    "solve rtol 5": (lambda f: lr.solve(_small(), 10, method="flow", rtol=5), "rtol"),
    "solve rtol word": (lambda f: lr.solve(_small(), 10, method="flow", rtol="x"), "rtol"),
    "solve integrator unknown": (lambda f: lr.solve(_small(), 10, integrator="euler"),
                                 "integrator"),
    "solve steps negative": (lambda f: lr.solve(_small(), -1), "steps"),
    "solve steps 2**60": (lambda f: lr.solve(_small(), 2**60), "2**53"),
    "solve save time fractional": (lambda f: lr.solve(_small(), 10, save_times=[1.5]),
                                   "integer"),
    "solve save time outside": (lambda f: lr.solve(_small(), 10, save_times=[11]), "outside"),
    "solve too large": (lambda f: lr.solve(preset("fig1", D=200000), 10), "too large"),
    "solve too long": (lambda f: lr.solve(preset("fig1"), 10**15, method="gd"), "too long"),
    "solve weight decay": (lambda f: lr.solve(_small(weight_decay=1e6), 10),
                           "weight decay too strong"),
    "solve flow momentum": (lambda f: lr.solve(_small(momentum=0.5), 10, method="flow"),
                            "momentum"),
    "solve stop negative": (lambda f: lr.solve(_small(), 10, stop=-1), "stop tolerance"),
    "solve dopri5 too stiff": (lambda f: lr.solve(_small(eta0=1e6), 300, method="flow",
                                                  integrator="dopri5"), "stiff"),
    "population method unknown": (lambda f: population(_small(), 10, method="bogus"),
                                  "population method"),
    "population rtol negative": (lambda f: population(_small(N="inf"), 10, rtol=-1), "rtol"),
    "population too stiff": (lambda f: population(_small(N="inf", eta0=1e12), 10**5), "stiff"),
    "data folder": (lambda f: ProblemData.load(f["adir"], _small()), "folder"),
    "data text": (lambda f: ProblemData.infer_shape(f["text"]), "not a .npz archive"),
    "data npy": (lambda f: ProblemData.load(f["npy"], _small()), ".npy"),
    "compare no columns": (lambda f: max_relative_deviation(f["good"], f["good"], columns=()),
                           "no columns"),
    "compare not a trajectory": (lambda f: max_relative_deviation(42, f["good"]),
                                 "expected a Trajectory"),
    "save_times negative": (lambda f: save_times(-1), "steps"),
    "parse_times empty item": (lambda f: parse_times("1,,2"), "empty item"),
    "check_writable /sys": (lambda f: check_writable("/sys/lazyrich-x"), "not writable"),
    "estimate method unknown": (lambda f: estimate(_small(), 10, "bogus"), "estimate method"),
    "load folder without csv": (lambda f: lr.load(f["tmp"] / "nocsv"), "no trajectory.csv"),
}


@pytest.mark.parametrize("case", list(API_CASES), ids=list(API_CASES))
def test_bad_api_input_raises_one_line_problem_error(case, files):
    fn, keyword = API_CASES[case]
    with pytest.raises(ProblemError) as exc:
        fn(files)
    msg = str(exc.value)
    assert "\n" not in msg and keyword.lower() in msg.lower(), msg


# ------------------------------------------------------------------------------ size guard
def test_size_guard_refuses_instantly_with_the_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli_solve, "_compute", _must_not_compute)
    for argv in (["solve", "--D", "200000"], ["solve", "--P", "100000000"],
                 ["solve", "--test-size", "1000000000"], ["simulate", "--N", "1000000000"],
                 ["population", "--D", "200000"],
                 ["solve", "--method", "gd", "--steps", "1e15"]):
        rc, _, err = call(capsys, [*argv, "--quiet", "--out", tmp_path / "o"])
        line = one_line(err)
        assert rc == 2 and ("too large" in line or "too long" in line), line
        assert "estimate" in line and "--i-know" in line, line   # the estimate, the way past it
        assert not (tmp_path / "o").exists()


def test_size_guard_compares_with_available_memory_and_i_know_lets_through(
        tmp_path, capsys, monkeypatch):
    small = ["solve", *SMALL, "--quiet", "--no-plot", "--no-theory"]
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)    # a 1 kB machine
    rc, _, err = call(capsys, [*small, "--out", tmp_path / "a"])
    assert rc == 2 and "1 kB available" in one_line(err)
    with pytest.raises(resources.ResourceError) as exc:
        lr.solve(_small(), 10)
    assert exc.value.estimate.memory > 1000
    assert lr.solve(_small(), 10, allow_large=True).t[-1] == 10
    rc, _, err = call(capsys, [*small, "--i-know", "--out", tmp_path / "b"])
    assert rc == 0, err
    monkeypatch.setattr(resources, "available_memory", lambda: None)    # unknown: no refusal
    assert check_resources(_small(), 10).memory > 0


def test_estimate_grows_with_every_size_and_long_runs_print_it(tmp_path, capsys, monkeypatch):
    base = estimate(_small(), 1000)
    for field, value in (("D", 120), ("P", 400), ("N", 50), ("test_size", 1000)):
        bigger = estimate(_small(**{field: value}), 1000)
        assert bigger.memory > base.memory and bigger.flops > base.flops, field
    assert estimate(_small(), 10_000).flops > base.flops
    assert estimate(_small(), 100_000, "flow").flops < estimate(_small(), 100_000).flops
    assert estimate(_small(), 1000, "simulate").memory > 0
    monkeypatch.setattr(cli_solve, "LONG_RUN_SECONDS", 0.0)
    rc, _, err = call(capsys, ["solve", *SMALL, "--no-plot", "--no-theory",
                               "--out", tmp_path / "r"])
    assert rc == 0 and "estimate" in err and "peak memory" in err, err


# ------------------------------------------------------------------------------ outputs
def _must_not_compute(*args, **kwargs):
    raise AssertionError("the computation started despite an unusable output")


@pytest.mark.parametrize("out", ["/sys/lazyrich-out", "{afile}/sub", "/proc/lazyrich-out"])
def test_unwritable_output_is_refused_before_any_computation(out, files, capsys, monkeypatch):
    """Refused before the computation starts (it must not be called)."""
    monkeypatch.setattr(cli_solve, "_compute", _must_not_compute)
    out = out.format(afile=files["afile"])
    rc, stdout, err = call(capsys, ["solve", *SLOW, "--quiet", "--out", out])
    assert rc == 2 and stdout == ""
    line = one_line(err)
    assert out in line and ("not writable" in line or "is a file" in line), line


def test_read_only_output_names_the_read_only_file_system(tmp_path, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(resources.tempfile, "mkstemp", read_only)
    monkeypatch.setattr(cli_solve, "_compute", _must_not_compute)
    rc, _, err = call(capsys, ["solve", *SLOW, "--quiet", "--out", tmp_path / "ro"])
    assert rc == 2 and "read-only file system" in one_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_folder_without_write_permission_is_refused(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        monkeypatch.setattr(cli_solve, "_compute", _must_not_compute)
        rc, _, err = call(capsys, ["solve", *SLOW, "--quiet", "--out", locked / "run"])
        assert rc == 2 and "permission denied" in one_line(err)
    finally:
        locked.chmod(0o755)


def test_the_writability_probe_leaves_nothing_behind(tmp_path):
    check_writable(tmp_path / "a" / "b")
    check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with tempfile.TemporaryDirectory() as d:
        check_writable(d)
        assert os.listdir(d) == []


# ------------------------------------------------------------------------------ messages
def test_divergence_names_the_real_cause(tmp_path, capsys):
    """eta0 beyond the bound quotes it; a run whose eta0 is within the bound never does."""
    rc, _, err = call(capsys, ["solve", *SMALL, "--eta0", "1e4", "--quiet", "--out",
                               tmp_path / "a"])
    line = one_line(err)
    assert rc == 1 and "too large" in line and "eta0 <" in line, line
    # a tiny alpha blows the first steps up although eta0 = 1 is within the kernel's bound
    rc, _, err = call(capsys, ["solve", *SMALL, "--alpha", "1e-80", "--quiet", "--out",
                               tmp_path / "b"])
    line = one_line(err)
    assert rc == 1 and "eta0 <" not in line and "alpha" in line, line


def test_compare_never_prints_inf_for_nan(files, capsys):
    rc, out, err = call(capsys, ["compare", files["good"], files["tmp"] / "nancsv"])
    assert rc == 2 and "inf" not in out and "nan" in one_line(err)
    rc, out, _ = call(capsys, ["compare", files["good"], files["good"]])
    assert rc == 0 and "max relative deviation: 0.000000e+00" in out


def test_saved_json_of_a_refused_run_is_untouched(files, capsys):
    """A refused run leaves an existing result folder byte for byte as it was."""
    good = files["good"]
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    rc, _, _ = call(capsys, ["solve", *SMALL, "--D", "200000", "--quiet", "--overwrite",
                             "--out", good])
    assert rc == 2
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before
    assert json.loads((good / "problem.json").read_text())["D"] == 12
