"""Sweeps verify what they resume (issue 16 §3): the data file's contents are part of the
sweep's identity, every cell file is checked against its id and checksum, a corrupt
sweep.json is refused with the way to recover the finished cells, one sweep per folder at a
time (a lock), and the workers of a killed sweep exit.

Tiny problems (D = 10), in-process (workers=1) except where processes are the point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from lazyrich_theory import Problem, ProblemError
from lazyrich_theory.experiments.sweep import RESULT_METRICS, SweepWarning, sweep
from lazyrich_theory.experiments.sweep import folder as folder_mod
from lazyrich_theory.experiments.sweep.cells import record_checksum
from lazyrich_theory.experiments.sweep.folder import (
    LOCK_FILE,
    FolderLock,
    process_alive,
)

REPO = Path(__file__).resolve().parents[2]
BASE = Problem(D=10, P=30, N=20, alpha=1.0, eps=0.3, eta0=1.0, seed=0, test_size=100)
STEPS = 300
VARY = {"alpha": "0.5,2", "eps": "0.1,0.4"}


def run(out, base=BASE, **kw):
    """The sweep on ``out``, in-process; returns (result, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SweepWarning)
        res = sweep(base, VARY, STEPS, workers=1, out=out, progress=False, plot=False, **kw)
    return res, [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]


def same(r1, r2) -> bool:
    for name in RESULT_METRICS:
        a, b = np.asarray(r1[name]), np.asarray(r2[name])
        if not np.array_equal(a, b, equal_nan=True):
            return False
    return bool(np.all(r1["status"] == r2["status"]))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref"
    res, warned = run(out)
    assert not warned
    return res, out


def _copy(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return dst


def _cells(out: Path) -> list[Path]:
    return sorted(p for p in (out / "cells").glob("*.json") if not p.name.startswith("."))


# ------------------------------------------------------------------------------ data file
def test_data_file_contents_are_part_of_the_identity(tmp_path):
    data = tmp_path / "data.npz"
    BASE.data().save(data)
    base = BASE.replace(data_file=str(data))
    out = tmp_path / "d"
    first, _ = run(out, base)
    config = json.loads((out / "sweep.json").read_text())
    assert len(config["data_sha256"]) == 64
    # other contents under the same name: refused, nothing mixed
    BASE.replace(seed=7).data().save(data)
    with pytest.raises(ProblemError) as e:
        run(out, base)
    msg = str(e.value)
    assert "data file" in msg and "SHA-256" in msg and "another --out" in msg and "\n" not in msg
    # the same contents again: resumes, nothing computed
    BASE.data().save(data)
    again, warned = run(out, base)
    assert again.stats["n_computed"] == 0 and not warned and same(first, again)


def test_cell_computed_from_other_data_is_recomputed(tmp_path):
    """A cell file that names other data contents (e.g. left by a sweep of the old data and
    recovered into a new sweep.json) is not reused."""
    data = tmp_path / "data.npz"
    BASE.data().save(data)
    base = BASE.replace(data_file=str(data))
    out = tmp_path / "d"
    first, _ = run(out, base)
    cell = _cells(out)[0]
    rec = json.loads(cell.read_text())
    assert rec["data_sha256"] == json.loads((out / "sweep.json").read_text())["data_sha256"]
    rec["data_sha256"] = "0" * 64
    rec["checksum"] = record_checksum(rec)   # a consistent file, but of other data
    cell.write_text(json.dumps(rec))
    again, warned = run(out, base)
    assert again.stats["n_computed"] == 1 and same(first, again)
    assert len(warned) == 1 and "other contents of the data file" in warned[0]


# ------------------------------------------------------------------------------ cell files
def test_foreign_cell_file_is_recomputed(reference, tmp_path):
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "f")
    a, b = _cells(out)[:2]
    b.write_text(a.read_text())              # another cell's JSON under b's name
    (out / "phase.csv").unlink()
    res, warned = run(out)
    assert res.stats["n_computed"] == 1 and res.stats["n_resumed"] == 3
    assert len(warned) == 1 and f"cells/{b.stem}.json holds cell" in warned[0]
    assert "\n" not in warned[0] and "recomputing" in warned[0]
    assert same(ref, res)
    assert (out / "phase.csv").read_bytes() == (ref_out / "phase.csv").read_bytes()
    assert (out / "cells" / (b.name + ".rejected")).is_file()
    assert json.loads(b.read_text())["id"] == b.stem


def test_edited_metric_is_recomputed(reference, tmp_path):
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "e")
    cell = _cells(out)[2]
    rec = json.loads(cell.read_text())
    rec["metrics"]["test_time"] = 1.0        # a hand-edited metric, checksum left as it was
    cell.write_text(json.dumps(rec, indent=2))
    res, warned = run(out)
    assert res.stats["n_computed"] == 1
    assert len(warned) == 1 and "checksum" in warned[0]
    assert (out / "phase.csv").read_bytes() == (ref_out / "phase.csv").read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "no checksum", "other problem"])
def test_damaged_cell_files_are_recomputed(reference, tmp_path, damage):
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "x")
    cell = _cells(out)[1]
    rec = json.loads(cell.read_text())
    if damage == "truncated":
        cell.write_text(cell.read_text()[:50])
    elif damage == "no checksum":
        del rec["checksum"]
        cell.write_text(json.dumps(rec))
    else:
        rec["problem"]["eta0"] = 2.0
        cell.write_text(json.dumps(rec))
    res, warned = run(out)
    assert res.stats["n_computed"] == 1 and len(warned) == 1 and same(ref, res)


def test_folder_without_checksums_still_resumes(reference, tmp_path):
    """A folder written before cells had checksums (no 'integrity' in sweep.json, cell files
    without 'checksum') resumes with nothing computed."""
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "legacy")
    config = json.loads((out / "sweep.json").read_text())
    del config["integrity"]
    (out / "sweep.json").write_text(json.dumps(config))
    for cell in _cells(out):
        rec = json.loads(cell.read_text())
        del rec["checksum"]
        cell.write_text(json.dumps(rec))
    res, warned = run(out)
    assert res.stats["n_computed"] == 0 and not warned and same(ref, res)
    # ... but a foreign cell there is still caught (by its id)
    a, b = _cells(out)[:2]
    b.write_text(a.read_text())
    res, warned = run(out)
    assert res.stats["n_computed"] == 1 and len(warned) == 1 and same(ref, res)


# ------------------------------------------------------------------------------ sweep.json
@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_broken_sweep_json_is_refused_then_recovered(reference, tmp_path, damage):
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "s")
    good = (out / "sweep.json").read_text()
    if damage == "corrupt":
        (out / "sweep.json").write_text(good[: len(good) // 2])
    else:
        (out / "sweep.json").unlink()
    with pytest.raises(ProblemError) as e:
        run(out)
    msg = str(e.value)
    assert "\n" not in msg and "--recover" in msg and "recover=True" in msg
    assert "4 finished cell(s)" in msg
    assert ("is corrupt" if damage == "corrupt" else "no sweep.json") in msg
    res, warned = run(out, recover=True)
    assert res.stats["n_computed"] == 0 and same(ref, res)
    assert len(warned) == 1 and "recovering" in warned[0]
    assert json.loads((out / "sweep.json").read_text()) == json.loads(good)
    res, warned = run(out)                   # an ordinary resume from now on
    assert res.stats["n_computed"] == 0 and not warned


def test_recover_keeps_only_the_cells_of_this_sweep(reference, tmp_path):
    """Recovering with another sweep's command reuses nothing that is not its own."""
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "r")
    (out / "sweep.json").write_text("{")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)
        res = sweep(BASE, VARY, STEPS + 1, workers=1, out=out, progress=False, plot=False,
                    recover=True)
    assert res.stats["n_computed"] == 4      # other steps: other cell ids, nothing reused


def test_recover_does_not_override_a_different_sweep(reference, tmp_path):
    ref, ref_out = reference
    out = _copy(ref_out, tmp_path / "o")
    with pytest.raises(ProblemError, match=r"different sweep \(differs in: steps\)"):
        sweep(BASE, VARY, STEPS + 1, workers=1, out=out, progress=False, plot=False,
              recover=True)


# ------------------------------------------------------------------------------ lock
def test_folder_in_use_is_refused_and_lock_released(tmp_path):
    out = tmp_path / "l"
    out.mkdir()
    with FolderLock(str(out)):
        holder = json.loads((out / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(ProblemError) as e:
            run(out)
        msg = str(e.value)
        assert "in use by another sweep" in msg and f"pid {os.getpid()}" in msg
        assert "\n" not in msg
    assert not (out / LOCK_FILE).exists()
    res, _ = run(out)                         # released: the sweep runs
    assert res.stats["n_computed"] == 4 and not (out / LOCK_FILE).exists()


def test_stale_lock_file_is_taken_over(tmp_path):
    """A lock file left by a killed sweep (its pid gone) does not block the folder."""
    out = tmp_path / "stale"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                             "since": "2020-01-01T00:00:00"}))
    res, _ = run(out)
    assert res.stats["n_computed"] == 4


def test_lock_by_pid_without_flock(tmp_path, monkeypatch):
    """Where the file system has no flock, the lock is judged by its pid and host."""
    monkeypatch.setattr(folder_mod, "fcntl", None)
    out = tmp_path / "nf"
    out.mkdir()
    host = folder_mod.socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": host, "since": "x"}))
    with FolderLock(str(out)):               # stale: taken over
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    (out / LOCK_FILE).write_text(json.dumps({"pid": os.getppid(), "host": host, "since": "x"}))
    with pytest.raises(ProblemError, match="in use by another sweep"):
        FolderLock(str(out)).acquire()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "x"}))
    with pytest.raises(ProblemError, match="if no sweep is running there, delete"):
        FolderLock(str(out)).acquire()


SLOW_CELLS = '''
import os, sys, time
from pathlib import Path

def slow_cell(spec):
    """Writes this worker's pid, then computes nothing for a long time."""
    Path(os.environ["PIDDIR"], str(os.getpid())).touch()
    time.sleep(float(os.environ.get("CELL_SECONDS", "60")))
    return {"status": "ok", "error": None, "metrics": {}, "wall_time": 0.0}
'''

MAIN = '''
import sys
sys.path.insert(0, {here!r})
from slow_cells import slow_cell
from lazyrich_theory import Problem
from lazyrich_theory.experiments.sweep import sweep

if __name__ == "__main__":
    base = Problem(D=10, P=30, N=20, test_size=100)
    sweep(base, {{"alpha": "0.5,1,2,3"}}, 100, workers=2, out=sys.argv[1], progress=False,
          plot=False, cell_fn=slow_cell)
'''


def _start_slow_sweep(tmp_path: Path, out: Path, seconds: float = 60.0):
    """A sweep in another process whose two pool workers sleep in their cells; returns the
    process and the workers' pids once both have started."""
    (tmp_path / "slow_cells.py").write_text(SLOW_CELLS)
    main = tmp_path / "slow_main.py"
    main.write_text(MAIN.format(here=str(tmp_path)))
    piddir = tmp_path / "pids"
    piddir.mkdir(exist_ok=True)
    env = dict(os.environ, PIDDIR=str(piddir), CELL_SECONDS=str(seconds),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, str(main), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(piddir.iterdir())) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers = [int(p.name) for p in piddir.iterdir()]
    assert len(workers) == 2, "the sweep's workers did not start"
    return proc, workers


def test_concurrent_sweep_on_one_folder_is_refused(tmp_path):
    """Two processes, one folder: the second is refused with one line, and computes nothing."""
    out = tmp_path / "busy"
    proc, workers = _start_slow_sweep(tmp_path, out)
    try:
        with pytest.raises(ProblemError) as e:
            run(out)
        msg = str(e.value)
        assert f"in use by another sweep (pid {proc.pid}" in msg and "\n" not in msg
        assert not list((out / "cells").glob("*.json"))
    finally:
        proc.kill()
        proc.wait()
    deadline = time.time() + 10
    while any(process_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.05)


def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    """kill -9 of the main process, left unreaped (a zombie): its pool workers, children of the
    forkserver, are gone within a few seconds and write nothing more."""
    out = tmp_path / "orphans"
    proc, workers = _start_slow_sweep(tmp_path, out, seconds=5.0)
    assert all(process_alive(p) for p in workers)
    os.kill(proc.pid, signal.SIGKILL)        # not waited for: the parent stays a zombie
    t0 = time.time()
    while any(process_alive(p) for p in workers) and time.time() - t0 < 20:
        time.sleep(0.05)
    gone_after = time.time() - t0
    try:
        assert not any(process_alive(p) for p in workers), "workers outlived their sweep"
        assert gone_after < 3.0, gone_after
        time.sleep(6.0)                       # past the cells' end: nothing was written
        assert not list((out / "cells").glob("*.json"))
    finally:
        proc.wait()
        for p in workers:
            if process_alive(p):
                os.kill(p, signal.SIGKILL)


def test_lazyrich_phase_refuses_a_busy_folder(tmp_path):
    """The CLI: one line on stderr, exit 2, while another process holds the folder."""
    out = tmp_path / "cli"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from lazyrich_theory.experiments.sweep.folder import FolderLock
            lock = FolderLock({str(out)!r}).acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = subprocess.run([sys.executable, "-m", "lazyrich_theory.cli", "phase", "--D", "10",
                            "--P", "30", "--N", "20", "--vary", "alpha=0.5,1", "--steps", "100",
                            "--workers", "1", "--quiet", "--out", str(out)],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg"))
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "in use by another sweep" in r.stderr
        assert f"pid {holder.pid}" in r.stderr and "Traceback" not in r.stderr
    finally:
        holder.kill()
        holder.wait()
