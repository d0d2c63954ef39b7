"""The ``lazyrich`` command-line contract, tested from outside.

    lazyrich solve      [model options] [--method gd|flow] [--steps T] [--save-times ...] --out DIR
    lazyrich simulate   [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich population [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich compare DIR_A DIR_B
    model options: --D --P --N (integer or inf) --alpha --eps --eta0 --seed --test-size
                   --convention A|B --centered|--uncentered --preset fig1|fig4 --data FILE.npz

Most cases call ``lazyrich_theory.cli.app(argv)`` in-process (fast); the ones where the
process boundary matters (exit codes, what reaches stderr, no traceback, the console script)
run ``python -m lazyrich_theory.cli`` or the ``lazyrich`` script in a subprocess.  Files
written by the CLI are read back with csv/json/numpy only, never with the package's readers.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lazyrich_theory.cli.app import main

from cli_helpers import call  # tests/cli/cli_helpers.py

REPO = Path(__file__).resolve().parents[2]

# A small problem: N < D so simulate is cheap, 300 steps.
SMALL = ["--D", "12", "--P", "40", "--N", "5", "--eps", "0.3", "--test-size", "100",
         "--steps", "300"]
REQUIRED_COLUMNS = ("t", "train_loss", "test_loss", "population_loss", "variance",
                    "misalignment", "linear_power")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEV_RE = re.compile(r"max relative deviation:\s*(\S+)")


# ------------------------------------------------------------------------------ helpers
def _env(pythonpath: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    if pythonpath:  # the checkout's own packages, whatever state the venv's install is in
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_module(args, cwd) -> subprocess.CompletedProcess:
    """``python -m lazyrich_theory.cli ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "lazyrich_theory.cli", *map(str, args)],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return header, np.array([[float(x) for x in r] for r in body])


def column(path: Path, name: str) -> np.ndarray:
    header, data = read_csv(path)
    return data[:, header.index(name)]


def read_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].strip(), err
    return lines[0]


def deviation(stdout: str) -> float:
    m = DEV_RE.search(stdout)
    assert m, stdout
    return float(m.group(1))


# ------------------------------------------------------------------------------ outputs
def test_solve_writes_csv_json_png_and_data_npz(tmp_path):
    """Subprocess, default options (plot on): the documented files and their contents."""
    out = tmp_path / "run"
    res = run_module(["solve", *SMALL, "--quiet", "--out", out], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr

    header, data = read_csv(out / "trajectory.csv")
    assert set(REQUIRED_COLUMNS) <= set(header) and header[0] == "t"
    assert data.shape[0] > 10 and np.all(np.isfinite(data))
    t = data[:, 0]
    assert t[0] == 0 and t[-1] == 300 and np.all(np.diff(t) > 0) and np.all(t == np.round(t))

    prob = read_json(out / "problem.json")
    assert (prob["D"], prob["P"], prob["N"], prob["eps"], prob["test_size"]) == (12, 40, 5, 0.3, 100)
    # defaults of the model options
    assert (prob["alpha"], prob["eta0"], prob["seed"], prob["convention"], prob["centered"]) == (
        1.0, 1.0, 0, "A", True)

    pngs = list(out.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == PNG_MAGIC
    assert pngs[0].stat().st_size > 5000

    arrays = read_npz(out / "data.npz")
    assert {"X", "y", "X_test", "y_test", "beta", "W0"} <= set(arrays)
    shapes = {k: arrays[k].shape for k in ("X", "y", "X_test", "y_test", "beta", "W0")}
    assert shapes == {"X": (40, 12), "y": (40,), "X_test": (100, 12), "y_test": (100,),
                      "beta": (12,), "W0": (5, 12)}
    # the arrays are what their names say: convention A teacher y = (beta . x)^2 / 2
    np.testing.assert_allclose(arrays["y"], 0.5 * (arrays["X"] @ arrays["beta"]) ** 2, rtol=1e-12)
    np.testing.assert_allclose(arrays["y_test"], 0.5 * (arrays["X_test"] @ arrays["beta"]) ** 2,
                               rtol=1e-12)
    # ... and the train loss at t = 0 of the centered model is mean(y^2)
    assert column(out / "trajectory.csv", "train_loss")[0] == pytest.approx(
        np.mean(arrays["y"] ** 2), rel=1e-12)


def test_save_times_are_added_to_the_default_grid(tmp_path, capsys):
    base, more = tmp_path / "base", tmp_path / "more"
    assert call(capsys, "solve", *SMALL, "--quiet", "--no-plot", "--out", base)[0] == 0
    new = [123, 177, 299]  # not on the default grid (checked below)
    extra = [*new, 300, 0]  # 0 and the horizon are on it already
    rc, _, err = call(capsys, "solve", *SMALL, "--quiet", "--no-plot",
                      "--save-times", ",".join(map(str, extra)), "--out", more)
    assert rc == 0, err
    t0 = column(base / "trajectory.csv", "t")
    t1 = column(more / "trajectory.csv", "t")
    assert 0 in t0 and 300 in t0 and len(t0) > 30          # the default log grid
    assert set(t1) == set(t0) | set(extra)                  # plus exactly those times
    assert np.all(np.diff(t1) > 0)                          # sorted, no duplicates
    assert not np.isin(new, t0).any()                       # they really were added
    # values at the common times are unaffected by the extra save points
    common = np.isin(t1, t0)
    for name in ("train_loss", "test_loss", "population_loss"):
        np.testing.assert_array_equal(column(more / "trajectory.csv", name)[common],
                                      column(base / "trajectory.csv", name))


@pytest.mark.parametrize("command", ["simulate", "population"])
def test_other_commands_honour_save_times(tmp_path, capsys, command):
    out = tmp_path / command
    rc, _, err = call(capsys, command, *SMALL, "--quiet", "--no-plot", "--save-times", "11,222",
                      "--out", out)
    assert rc == 0, err
    t = column(out / "trajectory.csv", "t")
    assert 11 in t and 222 in t and t[0] == 0 and t[-1] == 300


def test_solve_flow_method(tmp_path, capsys):
    gd, flow = tmp_path / "gd", tmp_path / "flow"
    assert call(capsys, "solve", *SMALL, "--quiet", "--no-plot", "--out", gd)[0] == 0
    rc, _, err = call(capsys, "solve", *SMALL, "--quiet", "--no-plot", "--method", "flow",
                      "--out", flow)
    assert rc == 0, err
    np.testing.assert_array_equal(column(flow / "trajectory.csv", "t"),
                                  column(gd / "trajectory.csv", "t"))
    a, b = (column(d / "trajectory.csv", "test_loss") for d in (gd, flow))
    assert np.max(np.abs(a - b) / a) < 0.05      # flow = GD up to O(eta0)
    assert np.max(np.abs(a - b) / a) > 1e-6      # ... but it is not the GD map


# ------------------------------------------------------------------------------ presets
FIG1 = dict(convention="A", D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=1.0, centered=True)
FIG4 = dict(convention="A", D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5, centered=False)


@pytest.mark.parametrize("name,expected,horizon", [("fig1", FIG1, 100_000),
                                                   ("fig4", FIG4, 50_000)])
def test_presets(tmp_path, capsys, name, expected, horizon):
    out = tmp_path / name
    rc, _, err = call(capsys, "solve", "--preset", name, "--steps", 3, "--quiet", "--no-plot",
                      "--out", out)
    assert rc == 0, err
    prob = read_json(out / "problem.json")
    assert {k: prob[k] for k in expected} == expected
    assert column(out / "trajectory.csv", "t")[-1] == 3  # --steps overrides the preset's
    # the preset's default horizon, read off without running it: a save time just past it is
    # rejected (exit 2, before any work) and the message names the horizon
    rc, _, err = call(capsys, "solve", "--preset", name, "--save-times", horizon + 1,
                      "--quiet", "--out", tmp_path / "never")
    assert rc == 2
    assert str(horizon) in assert_one_line_error(err)
    assert not (tmp_path / "never").exists()


def test_a_preset_on_another_clock_says_its_horizon_covers_another_tau(tmp_path, capsys):
    """fig1's 100 000 steps are tau = 40 at its D = 100, alpha = 1, eps = 0.02, eta0 = 1: at
    D = 60 (or eps = 0.04) the run ends with one note giving the --steps that keep tau (and
    the --P that keeps kappa); none with --steps, at the preset's own clock, or with --quiet."""
    base = ["asymptotic", "--preset", "fig1", "--method", "spectral", "--critical-kappa",
            "none", "--limit-loss", "none", "--no-plot"]
    for extra, out, expect in ((["--D", 60], "a", ["--steps 60000", "--P 330", "tau = 66.7"]),
                               (["--eps", 0.04], "b", ["--steps 50000", "tau = 80"])):
        rc, _, err = call(capsys, *base, *extra, "--out", tmp_path / out)
        assert rc == 0, err
        note = [line for line in err.splitlines() if "note:" in line]
        assert len(note) == 1 and all(e in note[0] for e in expect), err
        assert ("--P" in note[0]) == (out == "a"), note       # eps leaves kappa alone
        assert read_json(tmp_path / out / "run.json")["config"]["steps"] == 100_000
    for extra, out in ((["--D", 60, "--steps", 500], "c"), ([], "d"),
                       (["--D", 60, "--quiet"], "e"),
                       (["--D", 60, "--eps", 0.012], "f")):      # the same tau: no note
        rc, _, err = call(capsys, *base, *extra, "--out", tmp_path / out)
        assert rc == 0 and "note:" not in err, err


def test_the_preset_note_never_comes_before_an_error(tmp_path, capsys):
    """The note is printed once a run has succeeded: bad input found late still gives one
    line."""
    rc, _, err = call(capsys, "asymptotic", "--preset", "fig1", "--D", 60, "--method",
                      "rindex", "--out", tmp_path / "o")
    assert rc == 2 and "note:" not in err
    assert_one_line_error(err)


def test_preset_options_can_be_overridden(tmp_path, capsys):
    out = tmp_path / "o"
    rc, _, err = call(capsys, "solve", "--preset", "fig4", "--eta0", "0.25", "--N", "3",
                      "--steps", 2, "--quiet", "--no-plot", "--out", out)
    assert rc == 0, err
    prob = read_json(out / "problem.json")
    assert prob["eta0"] == 0.25 and prob["N"] == 3
    assert {k: prob[k] for k in ("D", "P", "eps", "centered")} == {
        "D": 40, "P": 120, "eps": 0.25, "centered": False}


# ------------------------------------------------------------------------------ bad input
def _write_garbage(tmp_path: Path) -> Path:
    p = tmp_path / "garbage.npz"
    p.write_text("not an npz file\n")
    return p


BAD_INPUT = {
    "negative D": ["solve", "--D", "-5"],
    "zero D": ["solve", "--D", "0"],
    "N not a number": ["solve", "--N", "abc"],
    "N fractional": ["solve", "--N", "2.5"],
    "N zero": ["solve", "--N", "0"],
    "convention C": ["solve", "--convention", "C"],
    "unknown preset": ["solve", "--preset", "fig9"],
    "missing data file": ["solve", "--data", "{tmp}/missing.npz"],
    "unreadable data file": ["solve", "--data", "{garbage}"],
    "save-times not a number": ["solve", "--save-times", "1,x"],
    "save-times fractional": ["solve", "--save-times", "2.5"],
    "save-times negative": ["solve", "--save-times", "-3"],
    "save-times empty": ["solve", "--save-times", ","],
    "save-times past horizon": ["solve", "--save-times", "301"],
    "negative eta0": ["solve", "--eta0", "-1"],
    "nan eta0": ["solve", "--eta0", "nan"],
    "zero alpha": ["solve", "--alpha", "0"],
    "negative steps": ["solve", "--steps", "-1"],
    "unknown method": ["solve", "--method", "euler"],
    "centered and uncentered": ["solve", "--centered", "--uncentered"],
    "unknown option": ["solve", "--width", "3"],
    "simulate N inf": ["simulate", "--N", "inf"],
    "simulate N not a number": ["simulate", "--N", "abc"],
    "population convention C": ["population", "--convention", "C"],
    "population missing data": ["population", "--data", "{tmp}/missing.npz"],
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case):
    cmd, *opts = BAD_INPUT[case]
    garbage = _write_garbage(tmp_path)
    opts = [o.format(tmp=tmp_path, garbage=garbage) for o in opts]
    out = tmp_path / "out"
    # model options given later override SMALL's (argparse: last one wins)
    rc, stdout, err = call(capsys, cmd, *SMALL, "--quiet", *opts, "--out", out)
    assert rc == 2, (stdout, err)
    assert_one_line_error(err)
    assert stdout == ""
    assert not out.exists()


@pytest.mark.parametrize("opts", [["--N", "abc"], ["--convention", "C"],
                                  ["--save-times", "5,oops"]],
                         ids=["N-abc", "convention-C", "save-times"])
def test_bad_input_in_a_real_process(tmp_path, opts):
    res = run_module(["solve", *SMALL, *opts, "--out", tmp_path / "out"], cwd=tmp_path)
    assert res.returncode == 2
    line = assert_one_line_error(res.stderr)
    assert line.startswith("lazyrich")
    assert not (tmp_path / "out").exists()


def test_missing_out_and_bad_compare_exit_2(tmp_path, capsys):
    rc, _, err = call(capsys, "solve", *SMALL)
    assert rc == 2 and "--out" in assert_one_line_error(err)
    rc, _, err = call(capsys, "compare", tmp_path / "nope_a", tmp_path / "nope_b")
    assert rc == 2
    assert_one_line_error(err)


def test_data_file_shape_conflicts_exit_2(tmp_path, capsys):
    d = tmp_path / "d"
    assert call(capsys, "solve", *SMALL, "--quiet", "--no-plot", "--out", d)[0] == 0
    data = d / "data.npz"
    for opts in (["--D", "13"], ["--N", "6"]):
        rc, _, err = call(capsys, "solve", "--data", data, *opts, "--steps", 5, "--quiet",
                          "--out", tmp_path / "x")
        assert rc == 2, opts
        assert_one_line_error(err)
    # a file without W0 cannot describe a finite width
    inf = tmp_path / "inf"
    assert call(capsys, "solve", *SMALL, "--N", "inf", "--quiet", "--no-plot", "--out", inf)[0] == 0
    rc, _, err = call(capsys, "solve", "--data", inf / "data.npz", "--N", "5", "--steps", 5,
                      "--quiet", "--out", tmp_path / "y")
    assert rc == 2
    assert_one_line_error(err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ------------------------------------------------------------------------------ divergence
def test_divergence_exit_1_one_line_naming_step_and_bound(tmp_path):
    out = tmp_path / "div"
    res = run_module(["solve", *SMALL, "--eta0", "1e4", "--out", out], cwd=tmp_path)
    assert res.returncode == 1, (res.stdout, res.stderr)
    line = assert_one_line_error(res.stderr)
    m = re.search(r"step (\d+)", line)
    assert m and 0 <= int(m.group(1)) <= 300, line
    bound = re.search(r"eta0 < ([0-9.eE+-]+)", line)
    assert bound and 0 < float(bound.group(1)) < 1e4, line
    assert not (out / "trajectory.csv").exists()
    # and a step size below the named bound runs
    res = run_module(["solve", *SMALL, "--eta0", 0.5 * float(bound.group(1)), "--no-plot",
                      "--quiet", "--out", out], cwd=tmp_path)
    assert res.returncode == 0, res.stderr


def test_simulate_divergence_names_step_and_bound(tmp_path, capsys):
    rc, _, err = call(capsys, "simulate", *SMALL, "--eta0", "1e4", "--quiet",
                      "--out", tmp_path / "div")
    assert rc == 1
    line = assert_one_line_error(err)
    assert re.search(r"step \d+", line)
    assert re.search(r"eta0 < [0-9]", line), line


def test_simulate_divergence_one_line_on_stderr_without_quiet(tmp_path):
    res = run_module(["simulate", *SMALL, "--eta0", "1e4", "--no-plot", "--out", tmp_path / "d"],
                     cwd=tmp_path)
    assert res.returncode == 1
    assert_one_line_error(res.stderr)


# ------------------------------------------------------------------------------ compare
def test_compare_solve_against_simulate_and_against_another_problem(tmp_path, capsys):
    red, net, other = tmp_path / "red", tmp_path / "net", tmp_path / "other"
    for cmd, d, extra in (("solve", red, []), ("simulate", net, []), ("solve", other, ["--seed", "1"])):
        rc, _, err = call(capsys, cmd, *SMALL, *extra, "--quiet", "--no-plot", "--out", d)
        assert rc == 0, err
    res = run_module(["compare", red, net], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert 0 <= deviation(res.stdout) < 1e-8
    rc, out, _ = call(capsys, "compare", red, other)
    assert rc == 0
    assert deviation(out) > 1e-2
    rc, out, _ = call(capsys, "compare", net, net)
    assert rc == 0 and deviation(out) == 0.0


# ------------------------------------------------------------------------------ --out safety
def test_out_dir_is_not_overwritten_by_a_different_run(tmp_path, capsys):
    out = tmp_path / "o"
    opts = [*SMALL, "--quiet", "--no-plot", "--out", out]
    assert call(capsys, "solve", *opts)[0] == 0
    before = snapshot(out)
    assert "trajectory.csv" in before

    for different, named in ((["--seed", "1"], "seed 0 -> 1"), (["--eps", "0.31"], "eps "),
                             (["--steps", "299"], "steps "), (["--save-times", "17"], "save"),
                             (["--method", "flow"], "method ")):
        rc, _, err = call(capsys, "solve", *opts, *different)
        assert rc == 2, different
        line = assert_one_line_error(err)
        assert "--overwrite" in line and f"differs in {named}" in line, line
        assert snapshot(out) == before, different  # old files intact, nothing added
    # another command into the same folder is a different run, too
    rc, _, err = call(capsys, "simulate", *opts)
    assert rc == 2 and snapshot(out) == before

    # the same configuration again is allowed (and reproduces the results)
    assert call(capsys, "solve", *opts)[0] == 0
    assert (out / "trajectory.csv").read_bytes() == before["trajectory.csv"]

    # --overwrite replaces the results
    rc, _, err = call(capsys, "solve", *opts, "--seed", "1", "--overwrite")
    assert rc == 0, err
    assert read_json(out / "problem.json")["seed"] == 1
    assert (out / "trajectory.csv").read_bytes() != before["trajectory.csv"]


# ------------------------------------------------------------------------------ --data
MODEL = ["--alpha", "0.7", "--eps", "0.3", "--eta0", "0.8", "--convention", "B", "--uncentered"]


@pytest.mark.parametrize("N", ["5", "inf"])
def test_data_round_trip_gives_identical_trajectory(tmp_path, capsys, N):
    first, second = tmp_path / "first", tmp_path / "second"
    rc, _, err = call(capsys, "solve", "--D", 12, "--P", 40, "--N", N, "--test-size", 100,
                      "--seed", 4, *MODEL, "--steps", 300, "--quiet", "--no-plot", "--out", first)
    assert rc == 0, err
    arrays = read_npz(first / "data.npz")
    assert ("W0" in arrays) == (N != "inf")
    # convention B teacher: y = (beta . x / sqrt(D))^2, x ~ N(0, I)
    np.testing.assert_allclose(arrays["y"], (arrays["X"] @ arrays["beta"] / math.sqrt(12)) ** 2,
                               rtol=1e-12)

    # shapes (D, P, N, test size) come from the file; the other model options are repeated
    rc, _, err = call(capsys, "solve", "--data", first / "data.npz", *MODEL, "--steps", 300,
                      "--quiet", "--no-plot", "--out", second)
    assert rc == 0, err
    assert (second / "trajectory.csv").read_bytes() == (first / "trajectory.csv").read_bytes()
    again = read_npz(second / "data.npz")
    assert set(again) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(again[k], arrays[k])
    p1, p2 = read_json(first / "problem.json"), read_json(second / "problem.json")
    for k in ("D", "P", "N", "test_size", "alpha", "eps", "eta0", "convention", "centered"):
        assert p1[k] == p2[k], k


def test_data_file_replaces_sampled_arrays(tmp_path, capsys):
    """A hand-made data file (label noise, a different teacher) is used as given."""
    rng = np.random.default_rng(0)
    D, P, T, N = 8, 30, 50, 3
    X, Xt = rng.standard_normal((P, D)) / math.sqrt(D), rng.standard_normal((T, D)) / math.sqrt(D)
    beta = rng.standard_normal(D)
    y = 0.5 * (X @ beta) ** 2 + 0.1 * rng.standard_normal(P)
    yt = 0.5 * (Xt @ beta) ** 2
    W0 = rng.standard_normal((N, D))
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, y=y, X_test=Xt, y_test=yt, beta=beta, W0=W0)
    out = tmp_path / "o"
    rc, _, err = call(capsys, "simulate", "--data", path, "--eps", "0.3", "--steps", 50,
                      "--quiet", "--no-plot", "--out", out)
    assert rc == 0, err
    prob = read_json(out / "problem.json")
    assert (prob["D"], prob["P"], prob["N"], prob["test_size"]) == (D, P, N, T)
    assert column(out / "trajectory.csv", "train_loss")[0] == pytest.approx(np.mean(y**2), rel=1e-12)
    saved = read_npz(out / "data.npz")
    np.testing.assert_array_equal(saved["y"], y)
    np.testing.assert_array_equal(saved["W0"], W0)


# ------------------------------------------------------------------------------ population, N = inf
def test_population_and_N_inf(tmp_path, capsys):
    dirs = {}
    for cmd, N in (("solve", "inf"), ("population", "inf"), ("population", "5")):
        d = dirs[cmd, N] = tmp_path / f"{cmd}-{N}"
        rc, _, err = call(capsys, cmd, *SMALL, "--N", N, "--quiet", "--out", d)
        assert rc == 0, (cmd, N, err)
        assert {"trajectory.csv", "problem.json", "data.npz"} <= {p.name for p in d.iterdir()}
        png = list(d.glob("*.png"))
        assert len(png) == 1 and png[0].read_bytes()[:8] == PNG_MAGIC
        header, data = read_csv(d / "trajectory.csv")
        assert set(REQUIRED_COLUMNS) <= set(header)
        assert np.all(np.isfinite(data))
        assert data[0, 0] == 0 and data[-1, 0] == 300
        assert read_json(d / "problem.json")["N"] == ("inf" if N == "inf" else 5)
        assert ("W0" in read_npz(d / "data.npz")) == (N != "inf")
    # population writes the same core columns as solve (solve adds the lazy-theory columns),
    # on the same time grid
    h_solve, d_solve = read_csv(dirs["solve", "inf"] / "trajectory.csv")
    h_pop, d_pop = read_csv(dirs["population", "inf"] / "trajectory.csv")
    assert h_pop == h_solve[:len(h_pop)]
    assert h_solve[len(h_pop):] == ["weight_change", "tangent_kernel_alignment",
                                    "kernel_alignment", "linearized_train_loss",
                                    "linearized_test_loss"]
    np.testing.assert_array_equal(d_pop[:, 0], d_solve[:, 0])
    # online: no train/test gap, and the loss decreases from the same initial value
    pop = dict(zip(h_pop, d_pop.T))
    np.testing.assert_allclose(pop["train_loss"], pop["population_loss"], rtol=1e-12)
    np.testing.assert_allclose(pop["test_loss"], pop["population_loss"], rtol=1e-12)
    sol = dict(zip(h_solve, d_solve.T))
    assert pop["population_loss"][0] == pytest.approx(sol["population_loss"][0], rel=1e-10)
    assert pop["population_loss"][-1] < pop["population_loss"][0]


# ------------------------------------------------------------------------------ console script
def _console_script() -> Path:
    exe = Path(sys.executable).with_name("lazyrich")
    if not exe.is_file():
        pytest.skip(f"no lazyrich console script next to {sys.executable}")
    return exe


def test_console_script_runs_from_any_folder(tmp_path):
    exe = _console_script()
    out = tmp_path / "o"
    res = subprocess.run([str(exe), "solve", *SMALL, "--quiet", "--no-plot", "--out", str(out)],
                         cwd=tmp_path, env=_env(pythonpath=False), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "trajectory.csv").is_file()
    res = subprocess.run([str(exe), "solve", "--N", "abc", "--out", str(tmp_path / "x")],
                         cwd=tmp_path, env=_env(pythonpath=False), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2
    assert_one_line_error(res.stderr)


def test_console_script_simulate_finds_the_validation_package(tmp_path):
    """`lazyrich simulate` imports the validation network, installed as ``lazyrich_validation``
    (folder validation/); it must import from outside the checkout."""
    exe = _console_script()
    probe = subprocess.run([sys.executable, "-c",
                            "import lazyrich_validation as v; print(getattr(v, '__file__', None))"],
                           cwd=tmp_path, env=_env(pythonpath=False), capture_output=True,
                           text=True, timeout=300)
    if probe.returncode != 0 or probe.stdout.strip() in ("", "None"):
        pytest.skip("stale install: `lazyrich_validation` is not importable as a regular package from "
                    "outside the checkout; re-run `pip install -e .` in this environment")
    out = tmp_path / "o"
    res = subprocess.run([str(exe), "simulate", *SMALL, "--quiet", "--no-plot", "--out", str(out)],
                         cwd=tmp_path, env=_env(pythonpath=False), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "trajectory.csv").is_file()


def test_solve_writes_lazy_theory_summary_and_columns(tmp_path):
    """Issue contract: summary.json keys and the three lazy-theory columns."""
    out = tmp_path / "run"
    rc = main(["solve", "--D", "12", "--P", "30", "--N", "20", "--eps", "0.3", "--steps", "500",
               "--out", str(out), "--quiet", "--no-plot"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("kernel_regression_test_loss", "kernel_regression_train_loss",
                "predicted_rich_time_estimate", "predicted_rich_time_population",
                "predicted_lazy_fit_time", "predicted_grokking_delay"):
        assert key in summary, key
    assert summary["kernel_regression_test_loss"] > 0
    header = (out / "trajectory.csv").read_text().splitlines()[0].split(",")
    for col in ("linearized_train_loss", "linearized_test_loss", "kernel_alignment"):
        assert col in header
    # --no-theory: core columns only, no summary
    out2 = tmp_path / "bare"
    assert main(["solve", "--D", "12", "--P", "30", "--N", "20", "--steps", "50", "--no-theory",
                 "--out", str(out2), "--quiet", "--no-plot"]) == 0
    assert not (out2 / "summary.json").exists()
    assert "kernel_alignment" not in (out2 / "trajectory.csv").read_text().splitlines()[0].split(",")


def test_trajectory_save_refuses_a_different_problem_and_overwrite_leaves_no_stale_files(tmp_path):
    import lazyrich_theory as lr
    from lazyrich_theory.errors import ProblemError

    p = lr.Problem(D=8, P=12, N=3, seed=0, test_size=10)
    a = lr.solve(p, 20)
    a = a.with_info(summary={"x": 1.0})
    a.save(tmp_path, data=p.data(), plot=False)
    assert (tmp_path / "summary.json").exists() and (tmp_path / "data.npz").exists()
    a.save(tmp_path, plot=False)                  # the same problem again: fine, data kept
    assert (tmp_path / "data.npz").exists()
    b = lr.solve(p.replace(seed=1), 20)
    with pytest.raises(ProblemError, match="different problem"):
        b.save(tmp_path, plot=False)
    assert json.loads((tmp_path / "problem.json").read_text())["seed"] == 0   # untouched
    b.save(tmp_path, plot=False, overwrite=True)
    assert json.loads((tmp_path / "problem.json").read_text())["seed"] == 1
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "data.npz").exists()
