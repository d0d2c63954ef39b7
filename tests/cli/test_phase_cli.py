"""The ``lazyrich phase`` command: one-line errors, refusal of a changed sweep, resume after
kill -9 with identical results and no cell computed twice.

The sub-command is exercised through ``add_phase_parser`` on a tiny argparse built like
``lazyrich_theory.cli`` (and through ``lazyrich phase`` itself once cli.py registers it), and
end to end as ``python -m lazyrich_theory.cli phase`` in subprocesses.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lazyrich_theory.cli.app as cli
from lazyrich_theory.cli.parser import Parser
from lazyrich_theory.cli.phase import add_phase_parser, main, run_phase

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--D", "10", "--P", "30", "--N", "20", "--test-size", "100"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_module(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lazyrich_theory.cli", "phase", *map(str, args)],
                          env=_env(), capture_output=True, text=True, timeout=300, **kw)


def call(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _tiny_lazyrich() -> argparse.ArgumentParser:
    """The ``lazyrich`` parser with ``phase`` registered the way cli.py does it."""
    parser = Parser(prog="lazyrich")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    add_phase_parser(sub)
    return parser


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("vary", [
    "alpha=0.4:5.6", "alpha=0.4:5.6:x", "alpha=0:1:3", "bogus=1,2", "alpha=log:0:1:3",
    "P=10.5,20", "alpha=1:2:0", "eps", "alpha=1,1",
])
def test_bad_grid_one_line_exit_2(capsys, tmp_path, vary):
    rc, out, err = call(capsys, *SMALL, "--vary", vary, "--out", tmp_path / "x")
    assert rc == 2
    assert err.startswith("lazyrich: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_usage_errors(capsys, tmp_path):
    rc, _, err = call(capsys, *SMALL, "--out", tmp_path / "x")
    assert rc == 2 and "--vary" in err and err.count("\n") == 1
    rc, _, err = call(capsys, *SMALL, "--vary", "alpha=1,2", "--vary", "alpha=3", "--out", tmp_path)
    assert rc == 2 and "twice" in err
    rc, _, err = call(capsys, *SMALL, "--vary", "seed=0,1", "--seeds", "2", "--out", tmp_path)
    assert rc == 2 and "not both" in err
    rc, _, err = call(capsys, *SMALL, "--vary", "alpha=1,2", "--workers", "0", "--out", tmp_path)
    assert rc == 2 and err.count("\n") == 1


def test_subcommand_registration_and_refusal(capsys, tmp_path):
    parser = _tiny_lazyrich()
    out = tmp_path / "ph"
    argv = ["phase", *SMALL, "--vary", "alpha=0.5,1", "--vary", "eps=0.2,0.4", "--steps", "400",
            "--workers", "1", "--quiet", "--out", str(out)]
    args = parser.parse_args(argv)
    assert args.command == "phase"
    assert run_phase(args) == 0
    assert len((out / "phase.csv").read_text().splitlines()) == 5
    # the same sweep with other execution settings resumes ...
    capsys.readouterr()
    args = parser.parse_args(argv[:-5] + ["--workers", "2", "--out", str(out)])
    assert run_phase(args) == 0
    assert "4 of 4 cells already done" in capsys.readouterr().err      # progress: stderr
    # ... a changed one is refused: exit 2, one line
    rc, _, err = call(capsys, *SMALL, "--vary", "alpha=0.5,1", "--vary", "eps=0.2,0.4",
                      "--steps", "500", "--out", out)
    assert rc == 2 and "different sweep" in err and "steps" in err and err.count("\n") == 1


def test_offline_boundary_line(capsys, tmp_path):
    """The run says which theory drew the offline boundary, or why there is none, and a rerun
    with another theory says that it replaced the folder's boundary."""
    grid = ["--vary", "alpha=0.5,1", "--vary", "eps=0.4,1.6", "--steps", "300", "--workers",
            "1", "--no-plot"]
    rc, out, _ = call(capsys, *SMALL, *grid, "--out", tmp_path / "a")     # kappa = 3
    assert rc == 0
    line = [s for s in out.splitlines() if "offline-theory boundary" in s]
    assert line == [line[0]] and line[0].startswith("phase: no offline-theory boundary: ")
    assert "kappa" in line[0]
    rc, out, _ = call(capsys, *SMALL, *grid, "--offline-theory", "interpolant",
                      "--out", tmp_path / "b")
    assert rc == 0
    assert "phase: offline-theory boundary: N = inf (floor: mirror-descent interpolant)" in out
    rc, _, err = call(capsys, *SMALL, *grid, "--offline-theory", "interpolant",
                      "--out", tmp_path / "b")                   # the same theory: no word
    assert rc == 0 and "replaced" not in err
    rc, out, err = call(capsys, *SMALL, *grid, "--out", tmp_path / "b")   # another theory
    assert rc == 0 and "phase: no offline-theory boundary" in out
    assert "drawn by --offline-theory interpolant, was replaced by this run's (none)" in err


def test_lazyrich_phase_when_registered(tmp_path):
    sub = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    if not sub or "phase" not in sub[0].choices:
        pytest.skip("cli.py does not register 'phase' yet")
    rc = cli.main(["phase", *SMALL, "--vary", "eps=0.2,0.4", "--steps", "300", "--workers", "1",
                   "--quiet", "--out", str(tmp_path / "r")])
    assert rc == 0 and (tmp_path / "r" / "phase.png").is_file()


# ------------------------------------------------------------------------------ kill -9
KILL_ARGS = [*SMALL, "--eta0", "1", "--vary", "alpha=0.5:2:5", "--vary", "eps=0.1,0.2,0.3,0.4",
             "--method", "gd", "--steps", "10000", "--tol", "0", "--no-plot", "--workers", "2"]


def test_kill_9_then_resume_identical_no_cell_twice(tmp_path):
    ref = tmp_path / "ref"
    r = run_module([*KILL_ARGS, "--quiet", "--out", ref])
    assert r.returncode == 0, r.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "lazyrich_theory.cli", "phase", *KILL_ARGS,
                             "--quiet", "--out", str(out)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = out / "cells"

    def complete() -> int:
        # complete cells only: a worker killed mid-write leaves a ".tmp-…-<id>.json" that the
        # resume removes (pathlib's glob matches dot-files, so exclude them explicitly)
        return len([f for f in cells.glob("*.json") if not f.name.startswith(".tmp-")])

    deadline = time.time() + 120
    while time.time() < deadline:
        if cells.is_dir() and complete() >= 4:      # a half-written cell does not count
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the workers die with their parent
    n_before = complete()
    assert 4 <= n_before < 20, n_before
    assert not (out / "phase.csv").exists()
    r = run_module([*KILL_ARGS, "--out", out])
    assert r.returncode == 0, r.stderr
    assert f"{n_before} of 20 cells already done, computing {20 - n_before}" in r.stderr
    assert (out / "phase.csv").read_bytes() == (ref / "phase.csv").read_bytes()
    import numpy as np

    with np.load(out / "phase.npz") as a, np.load(ref / "phase.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k
    ids = (out / "computed.log").read_text().split()[::2]
    assert len(ids) == 20 and len(set(ids)) == 20      # every cell computed exactly once
    assert not list(cells.glob(".tmp-*"))               # no half-written cell is left behind


def test_refused_config_in_subprocess(tmp_path):
    out = tmp_path / "o"
    args = [*SMALL, "--vary", "eps=0.2,0.4", "--steps", "300", "--workers", "1", "--quiet"]
    assert run_module([*args, "--out", out]).returncode == 0
    r = run_module([*args, "--eta0", "2", "--out", out])
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "different sweep (differs in: base_problem)" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------------------ verified resume
def test_corrupt_sweep_json_recover_and_cell_warnings(capsys, tmp_path):
    """A corrupt sweep.json: exit 2 with one line naming --recover; --recover keeps every
    finished cell; a foreign cell file is recomputed with one warning line."""
    out = tmp_path / "r"
    args = [*SMALL, "--vary", "alpha=0.5,1", "--vary", "eps=0.2,0.4", "--steps", "300",
            "--workers", "1", "--no-plot", "--out", out]
    rc, _, err = call(capsys, *args, "--quiet")
    assert rc == 0 and err == ""
    csv = (out / "phase.csv").read_bytes()
    (out / "sweep.json").write_text('{"format": 1, "axes": [')
    rc, _, err = call(capsys, *args)
    assert rc == 2 and err.count("\n") == 1 and "is corrupt" in err and "--recover" in err
    rc, stdout, err = call(capsys, *args, "--recover")
    assert rc == 0, err
    # the warning, then the progress line of the resumed sweep (both on stderr)
    assert err.startswith("lazyrich: warning: recovering") and err.count("\n") == 2
    assert "4 of 4 cells already done" in err.splitlines()[1] and "resuming" not in stdout
    assert (out / "phase.csv").read_bytes() == csv
    cells = sorted((out / "cells").glob("*.json"))
    cells[0].write_text(cells[1].read_text())
    rc, stdout, err = call(capsys, *args, "--quiet")
    assert rc == 0 and err.count("\n") == 1
    assert err.startswith(f"lazyrich: warning: cells/{cells[0].stem}.json holds cell")
    assert (out / "phase.csv").read_bytes() == csv
