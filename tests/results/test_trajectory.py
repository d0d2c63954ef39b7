"""Trajectory: notebook API (repr, at, pandas, xarray, plot into axes), read-only info, and
output folders as transactions (issue 15 §3, issue 16 §1)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import matplotlib
import numpy as np
import pytest

import lazyrich_theory as lr
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import from_xarray
from lazyrich_theory.storage import MANIFEST, folder_transaction, recover_folder


@pytest.fixture(scope="module")
def run():
    p = lr.Problem(D=8, P=16, N=3, seed=0, test_size=20)
    return p, lr.solve(p, 200, method="gd")


def test_repr_is_one_line_without_arrays(run):
    _, tr = run
    text = repr(tr)
    assert "\n" not in text and "array" not in text and len(text) < 600
    assert "final train/test/population loss" in text
    assert "<table>" in tr._repr_html_()


def test_info_is_read_only_and_with_info_copies(run):
    _, tr = run
    with pytest.raises(TypeError):
        tr.info["x"] = 1
    tr2 = tr.with_info(summary={"a": 1.0})
    assert "summary" in tr2.info and "summary" not in tr.info


def test_at_interpolates_in_log_time_and_exact_mode(run):
    _, tr = run
    k = 5
    row = tr.at(tr.t[k])
    assert row["train_loss"] == tr.train_loss[k]
    t_mid = float(np.sqrt((1 + tr.t[k]) * (1 + tr.t[k + 1])) - 1)   # midpoint in log(1 + t)
    if t_mid in tr.t:
        pytest.skip("grid point")
    mid = tr.at(t_mid)
    assert mid["test_loss"] == pytest.approx(0.5 * (tr.test_loss[k] + tr.test_loss[k + 1]))
    with pytest.raises(KeyError):
        tr.at(t_mid, exact=True)
    with pytest.raises(ProblemError):
        tr.at(tr.t[-1] + 1)


def test_to_pandas_and_xarray_round_trip_through_netcdf(run, tmp_path):
    p, tr = run
    df = tr.to_pandas()
    assert df.index.name == "t" and list(df.columns) == list(tr.columns)
    assert df.attrs["problem"] == p.to_dict()
    ds = tr.to_xarray()
    assert ds.attrs["problem_D"] == p.D and ds.attrs["method"] == "gd"
    path = tmp_path / "tr.nc"
    ds.to_netcdf(path)
    import xarray as xr

    with xr.open_dataset(path) as back:
        tr2 = from_xarray(back.load())
    assert tr2.problem == p
    np.testing.assert_array_equal(tr2.t, tr.t)
    for c in tr.columns:
        np.testing.assert_array_equal(tr2[c], tr[c])
    assert tr2.info["steps"] == tr.info["steps"]


def test_plot_into_user_axes_keeps_backend(run):
    from matplotlib.figure import Figure

    _, tr = run
    backend = matplotlib.get_backend()
    fig = Figure()
    ax = fig.subplots()
    out = tr.plot(ax=ax)
    assert out is fig and ax.lines
    assert matplotlib.get_backend() == backend


def test_save_writes_manifest_and_load_refuses_edited_files(run, tmp_path):
    p, tr = run
    tr.save(tmp_path / "r", data=p.data(), plot=False)
    listed = json.loads((tmp_path / "r" / MANIFEST).read_text())["files"]
    assert {"trajectory.csv", "problem.json", "run.json", "data.npz"} <= set(listed)
    lr.load(tmp_path / "r")
    csv = tmp_path / "r" / "trajectory.csv"
    csv.write_text(csv.read_text().replace("\n1,", "\n1.5,", 1))
    with pytest.raises(ProblemError, match="manifest"):
        lr.load(tmp_path / "r")


@pytest.mark.parametrize("content, match", [
    ("t,train_loss\n", "lacks column"),
    (None, "no rows"),
])
def test_load_refuses_incomplete_csv(run, tmp_path, content, match):
    _, tr = run
    tr.save(tmp_path / "r", plot=False)
    os.remove(tmp_path / "r" / MANIFEST)     # a hand-made folder: no manifest
    csv = tmp_path / "r" / "trajectory.csv"
    if content is None:
        content = csv.read_text().splitlines()[0] + "\n"
    csv.write_text(content)
    with pytest.raises(ProblemError, match=match):
        lr.load(tmp_path / "r")


@pytest.mark.parametrize("name", ["problem.json", "run.json"])
def test_load_refuses_bad_json_with_one_line(run, tmp_path, name):
    _, tr = run
    tr.save(tmp_path / "r", plot=False)
    os.remove(tmp_path / "r" / MANIFEST)
    (tmp_path / "r" / name).write_text("{not json")
    with pytest.raises(ProblemError) as exc:
        lr.load(tmp_path / "r")
    assert "\n" not in str(exc.value)


def test_failed_save_leaves_old_folder_untouched(run, tmp_path):
    _, tr = run
    folder = tmp_path / "r"
    tr.save(folder, plot=False)
    before = {f: (folder / f).read_bytes() for f in os.listdir(folder)}
    with pytest.raises(RuntimeError):
        with folder_transaction(folder) as tmp:
            (open(os.path.join(tmp, "trajectory.csv"), "w")).write("half")
            raise RuntimeError("killed")
    assert {f: (folder / f).read_bytes() for f in os.listdir(folder)} == before
    assert [e for e in os.listdir(tmp_path) if e.startswith(".r.")] == []


def test_recover_completes_a_swap_interrupted_between_the_renames(run, tmp_path):
    _, tr = run
    folder = tmp_path / "r"
    tr.save(folder, plot=False)
    # state after "folder -> .r.old-PID-x" and before "tmp -> folder", writer dead (pid 1
    # is alive but not ours; use a pid that cannot exist)
    dead = 2**22 + 12345
    os.rename(folder, tmp_path / f".r.old-{dead}-x")
    recover_folder(folder)
    assert lr.load(folder).problem == tr.problem
    assert [e for e in os.listdir(tmp_path) if e.startswith(".r.")] == []


WRITER = r"""
import sys, lazyrich_theory as lr
out = sys.argv[1]
runs = []
for seed in (0, 1):
    p = lr.Problem(D=20, P=40, N=30, seed=seed, test_size=400)
    runs.append((p, lr.solve(p, 300), p.data()))
print("ready", flush=True)
k = 0
while True:
    p, tr, data = runs[k % 2]
    tr.save(out, data=data, plot=k % 3 == 0, overwrite=True)
    k += 1
"""


@pytest.mark.slow
def test_kill_during_overwrite_never_leaves_a_mixed_folder(tmp_path):
    """Issue 16: kill -9 a process that overwrites one folder with two different runs, 20
    times at random instants; every time, load gives one complete run (data included)."""
    refs = {}
    for seed in (0, 1):
        p = lr.Problem(D=20, P=40, N=30, seed=seed, test_size=400)
        refs[seed] = (lr.solve(p, 300, method="gd"), p.data())
    rng = random.Random(7)
    out = tmp_path / "run"
    saved = False
    for trial in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        recover_folder(out)
        if not saved and not out.exists():
            continue                                   # killed before the first save finished
        saved = True
        tr = lr.load(out)
        ref, data = refs[tr.problem.seed]
        np.testing.assert_array_equal(tr.train_loss, ref.train_loss)
        with np.load(out / "data.npz") as f:
            np.testing.assert_array_equal(f["X"], data.X)
            np.testing.assert_array_equal(f["W0"], data.W0)
        assert json.loads((out / "problem.json").read_text())["seed"] == tr.problem.seed
