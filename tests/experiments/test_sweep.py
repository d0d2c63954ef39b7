"""Phase sweeps (lazyrich_theory.sweep): grid specs, metrics, storage, resume, executors.

Tiny problems (D = 10) so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from lazyrich_theory import Problem, ProblemError, solve
from lazyrich_theory.experiments.sweep import (
    METRICS,
    RESULT_METRICS,
    cell_metrics,
    load_phase,
    parse_axis,
    parse_vary,
    run_cell,
    sweep,
)
from lazyrich_theory.experiments.sweep.cells import _predictions, store_cell
from lazyrich_theory.experiments.sweep.executors import cell_task
from lazyrich_theory.spec import targets
from lazyrich_theory.spec.schedule import save_times
from lazyrich_theory.theory.timescales import grokking_metrics, predict_timescales

BASE = Problem(D=10, P=30, N=20, alpha=1.0, eps=0.3, eta0=1.0, seed=0, test_size=100)
STEPS = 600
VARY = {"alpha": "0.5:2:2", "eps": "0.1,0.4"}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "US":
        return a.shape == b.shape and bool(np.all(a == b))
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def assert_same_results(r1, r2):
    assert r1.dims == r2.dims
    for d in r1.dims:
        assert list(r1.coords[d]) == list(r2.coords[d])
    for name in RESULT_METRICS + ("status", "cell_id"):
        assert _same(r1[name], r2[name]), name


# ------------------------------------------------------------------------------ axis specs
def test_parse_linear_log_list():
    a = parse_axis("alpha", "0.4:5.6:14")
    assert a.spacing == "linear" and len(a) == 14
    assert a.values[0] == pytest.approx(0.4) and a.values[-1] == pytest.approx(5.6)
    assert np.allclose(np.diff(a.values), 0.4)
    b = parse_axis("alpha", "log:0.1:10:9")
    assert b.spacing == "log" and np.allclose(np.log10(b.values), np.linspace(-1, 1, 9))
    c = parse_axis("P", "100,200,400")
    assert c.values == (100, 200, 400) and all(isinstance(v, int) for v in c.values)
    n = parse_axis("N", "2,inf")
    assert n.values == (2, math.inf)
    assert parse_axis("convention", "a,B").values == ("A", "B")
    assert parse_axis("centered", "true,false").values == (True, False)
    assert parse_axis("D", "log:10:1000:3").values == (10, 100, 1000)
    assert parse_axis("eps", [0.1, 0.2]).values == (0.1, 0.2)
    assert parse_axis("d", "5,6").name == "D"
    axes = parse_vary(["alpha=1,2", "eps=0.1:0.2:2"])
    assert [x.name for x in axes] == ["alpha", "eps"]


@pytest.mark.parametrize("item, needle", [
    ("alpha=0.4:5.6", "START:STOP:COUNT"),
    ("alpha=a:b:3", "must be numbers"),
    ("alpha=1:2:0", "COUNT must be a positive integer"),
    ("alpha=1:2:x", "COUNT must be a positive integer"),
    ("alpha=log:-1:1:3", "log spacing needs"),
    ("foo=1,2", "unknown parameter 'foo'"),
    ("D=1.5,2", "integers"),
    ("alpha=1,,2", "empty value"),
    ("alpha=1,1", "repeated values"),
    ("alpha", "NAME=START:STOP:COUNT"),
    ("convention=A,C", "convention must be A or B"),
    ("eps=0:1:nan", "COUNT"),
])
def test_bad_specs_one_line(item, needle):
    with pytest.raises(ProblemError) as e:
        parse_vary([item])
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_bad_cells_and_options():
    with pytest.raises(ProblemError, match=r"cell alpha=0.*alpha must be > 0"):
        sweep(BASE, {"alpha": "0:1:3"}, STEPS, progress=False)
    with pytest.raises(ProblemError, match="given twice"):
        parse_vary(["alpha=1,2", "alpha=3"])
    with pytest.raises(ProblemError, match="not both"):
        sweep(BASE, {"seed": "0,1"}, STEPS, seeds=2, progress=False)
    with pytest.raises(ProblemError, match="method"):
        sweep(BASE, VARY, STEPS, method="sgd", progress=False)


# ------------------------------------------------------------------------------ metrics
def test_cell_metrics_paper_definition():
    t = np.array([0, 1, 10, 100, 1000], float)
    train = np.array([1.0, 0.5, 0.05, 0.01, 0.001])
    test = np.array([1.0, 1.1, 0.9, 0.05, 0.01])
    m = cell_metrics(t, train, test, threshold=0.1)
    ref = grokking_metrics(t, train, test, threshold=0.1)
    assert m["paper_grokking_time"] == pytest.approx(ref["test_time"] - ref["train_time"])
    assert m["paper_grokking_time"] > 0
    assert m["peak_test_over_initial"] == pytest.approx(1.1)
    assert m["stop_time"] == 1000 and m["converged"] == 0
    # never generalises: 0 (paper), test time inf
    m = cell_metrics(t, train, np.full(5, 0.7), threshold=0.1)
    assert m["paper_grokking_time"] == 0 and math.isinf(m["test_time"])
    # test before train: clipped at 0 like the paper's max(0, .)
    m = cell_metrics(t, test, train, threshold=0.1)
    assert m["paper_grokking_time"] == 0
    # convergence: cut at the first save time with both losses under tol
    m = cell_metrics(t, train, test, threshold=0.1, tol=0.06, steps=1000)
    assert m["stop_time"] == 100 and m["converged"] == 1
    assert m["final_test_loss"] == pytest.approx(0.05)
    assert set(METRICS) >= set(m)


def test_run_cell_matches_solve():
    spec = dict(problem=BASE.to_dict(), steps=STEPS, method="gd", integrator="rkc", rtol=None,
                atol=None, threshold=0.1, relative=0.1, tol=None, predict=True)
    rec = run_cell(spec)
    tr = solve(BASE, STEPS, method="gd")
    ref = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
    for k in ("train_time", "test_time", "final_train_loss", "final_test_loss",
              "peak_test_over_initial"):
        assert rec["metrics"][k] == pytest.approx(ref[k], rel=1e-12), k
    assert rec["status"] == "ok"
    assert math.isfinite(rec["metrics"]["predicted_rich_time_population"])
    # gd with early stopping stops computing at convergence
    rec2 = run_cell({**spec, "tol": 1e-2})
    assert rec2["metrics"]["stop_time"] <= STEPS
    if rec2["metrics"]["converged"]:
        assert rec2["metrics"]["final_train_loss"] < 1e-2


def test_gd_cell_stops_like_a_cut_full_run():
    """The GD cell stops in the core loop (solve(stop=tol)); its metrics equal those of the
    full run cut at convergence, and stop computing there."""
    p = BASE.replace(alpha=0.5, eps=0.4)
    tol = 7e-2
    spec = dict(problem=p.to_dict(), steps=20_000, method="gd", integrator="rkc", rtol=None,
                atol=None, threshold=0.1, relative=0.1, tol=tol, predict=False)
    rec = run_cell(spec)
    full = solve(p, 20_000, method="gd")
    ref = cell_metrics(full.t, full.train_loss, full.test_loss, 0.1, 0.1, tol, 20_000)
    assert rec["metrics"]["converged"] == 1 and rec["metrics"]["stop_time"] < 20_000
    for k, v in ref.items():
        assert rec["metrics"][k] == v or (math.isnan(v) and math.isnan(rec["metrics"][k])), k
    stopped = solve(p, 20_000, method="gd", stop=tol)
    assert stopped.t[-1] == rec["metrics"]["stop_time"] < full.t[-1]


def test_gd_fast_cell_is_the_gd_fast_solve_and_close_to_exact_gd():
    """method "gd-fast" in a sweep cell runs solve(method="gd-fast") (stopped the same way);
    its time metrics agree with exact GD's to the strides' tolerance (save-grid interpolation
    of losses within ~1e-7)."""
    p = BASE.replace(alpha=0.5, eps=0.4)
    spec = dict(problem=p.to_dict(), steps=20_000, method="gd-fast", integrator="rkc",
                rtol=None, atol=None, threshold=0.1, relative=0.1, tol=None, predict=False)
    rec = run_cell(spec)
    fast = solve(p, 20_000, method="gd-fast")
    assert fast.method == "gd-fast"
    ref = cell_metrics(fast.t, fast.train_loss, fast.test_loss, 0.1, 0.1, None, 20_000)
    for k, v in ref.items():
        assert rec["metrics"][k] == v or (math.isnan(v) and math.isnan(rec["metrics"][k])), k
    gd = solve(p, 20_000, method="gd")
    exact = cell_metrics(gd.t, gd.train_loss, gd.test_loss, 0.1, 0.1, None, 20_000)
    for k in ("train_time", "test_time", "relative_grokking_time"):
        assert rec["metrics"][k] == pytest.approx(exact[k], rel=1e-4, nan_ok=True), k


@pytest.mark.parametrize("P, peak", [(30, True), (12, False), (200, False)])
def test_lazy_peak_only_where_there_is_one(P, peak):
    """predicted_lazy_peak_time is the linearised test loss's interior maximum; a curve that
    only falls (P = 200) or rises monotonically to its t -> inf limit (P = 12) has none (NaN;
    it used to be the argmax at t = 0 or at the end of the grid, a meaningless time), and the
    predicted delay then counts from the lazy fit time (predict_timescales)."""
    p = BASE.replace(P=P, centered=True)
    pred = _predictions(p, 100_000, "flow", 0.1, save_times(100_000).astype(float))
    t_peak = pred["predicted_lazy_peak_time"]
    if peak:
        assert 0 < t_peak < 100_000
    else:
        assert math.isnan(t_peak)
    ts = predict_timescales(p, lazy_peak_time=t_peak, lazy_peak_reason=None if peak else "-")
    assert pred["predicted_grokking_delay"] == pytest.approx(ts.grokking_delay, nan_ok=True)


def test_sweep_over_training_options_equals_direct_solves():
    """Weight decay, momentum, noise and batch size are sweepable; each cell is the same run
    as a direct solve, and the lazy-theory prediction is left out where it does not apply."""
    res = sweep(BASE, {"weight-decay": "0,0.01", "batch_size": "10,30"}, STEPS, method="gd",
                workers=1, progress=False, plot=False, tol=None)
    assert res.dims[:2] == ("weight_decay", "batch_size")
    for i, lam in enumerate(res.coords["weight_decay"]):
        for j, B in enumerate(res.coords["batch_size"]):
            tr = solve(BASE.replace(weight_decay=lam, batch_size=B), STEPS, method="gd")
            ref = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
            got = res["final_test_loss"][i, j, 0]
            assert got == pytest.approx(ref["final_test_loss"], rel=1e-12)
            plain = lam == 0 and B >= BASE.P
            assert math.isnan(res["predicted_lazy_peak_time"][i, j, 0]) != plain
    assert res["final_test_loss"][0, 0, 0] != res["final_test_loss"][0, 1, 0]   # SGD differs
    assert parse_axis("sigma", "0,0.1").name == "noise"
    assert parse_axis("mu", "0,0.5").values == (0.0, 0.5)
    with pytest.raises(ProblemError, match="need --method gd"):
        sweep(BASE, {"momentum": "0,0.5"}, STEPS, method="flow", workers=1, progress=False)
    with pytest.raises(ProblemError, match="takes integers"):
        parse_axis("batch_size", "2.5,4")


def test_diverging_cell_is_recorded_not_fatal(tmp_path):
    res = sweep(BASE, {"eta0": "1,400"}, 300, method="gd", workers=1, progress=False,
                out=tmp_path / "d", plot=False)
    assert list(res["status"].ravel()) == ["ok", "diverged"]
    assert np.isnan(res["paper_grokking_time"][1, 0])
    assert math.isfinite(res["predicted_rich_time_population"][1, 0])


# ------------------------------------------------------------------------------ storage
def test_sweep_storage_layout_and_resume(tmp_path):
    out = tmp_path / "ph"
    res = sweep(BASE, VARY, STEPS, seeds=2, workers=1, out=out, progress=False)
    assert res.dims == ("alpha", "eps", "seed") and res.shape == (2, 2, 2)
    assert res.stats["n_computed"] == 8 and res.stats["n_resumed"] == 0
    for f in ("sweep.json", "phase.csv", "phase_mean.csv", "phase.npz", "phase.json",
              "phase.nc", "phase.png", "computed.log"):
        assert (out / f).is_file(), f
    assert not (out / "sweep.lock").exists()        # released at the end
    assert len(list((out / "cells").glob("*.json"))) == 8
    # tidy CSV: one row per cell
    lines = (out / "phase.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["alpha", "eps", "seed", "cell_id", "status"]
    # kappa = P/D = 3: no offline-theory column (tests/experiments/test_offline_overlay.py)
    assert header[5:] == list(RESULT_METRICS)
    assert "offline_test_time" not in res and "kappa = P/D = 3" in res.offline["reason"]
    assert len(lines) == 1 + 8
    assert len((out / "phase_mean.csv").read_text().splitlines()) == 1 + 4
    # labeled dataset: npz + sidecar
    side = json.loads((out / "phase.json").read_text())
    assert side["dims"] == ["alpha", "eps", "seed"] and side["shape"] == [2, 2, 2]
    with np.load(out / "phase.npz") as z:
        assert z["paper_grokking_time"].shape == (2, 2, 2)
        assert list(z["coord_seed"]) == [0, 1]
    back = load_phase(out)
    assert_same_results(res, back)
    assert np.allclose(res.mean("test_time"), np.mean(res["test_time"], axis=2))
    assert res.std("test_time").shape == (2, 2)
    # resume: nothing recomputed, identical results, workers not part of the identity
    csv1 = (out / "phase.csv").read_bytes()
    res2 = sweep(BASE, VARY, STEPS, seeds=2, workers=2, out=out, progress=False)
    assert res2.stats["n_computed"] == 0 and res2.stats["n_resumed"] == 8
    assert (out / "phase.csv").read_bytes() == csv1
    assert len((out / "computed.log").read_text().split("\n")) - 1 == 8
    # a different configuration is refused
    with pytest.raises(ProblemError, match=r"different sweep \(differs in: steps\)"):
        sweep(BASE, VARY, STEPS + 1, seeds=2, out=out, progress=False)
    with pytest.raises(ProblemError, match="differs in: axes"):
        sweep(BASE, {"alpha": "0.5:2:3", "eps": "0.1,0.4"}, STEPS, seeds=2, out=out,
              progress=False)


def test_partial_resume_computes_only_the_rest(tmp_path):
    out = tmp_path / "p"
    full = sweep(BASE, VARY, STEPS, workers=1, out=out, progress=False, plot=False)
    cells = sorted((out / "cells").glob("*.json"))
    for c in cells[:2]:
        c.unlink()
    (out / "phase.csv").unlink()
    again = sweep(BASE, VARY, STEPS, workers=1, out=out, progress=False, plot=False)
    assert again.stats["n_computed"] == 2 and again.stats["n_resumed"] == 2
    assert_same_results(full, again)


def test_one_d_sweep_plots_curves(tmp_path):
    res = sweep(BASE, {"alpha": "log:0.5:2:3"}, STEPS, seeds=2, workers=1, progress=False,
                out=tmp_path / "c")
    assert (tmp_path / "c" / "phase.png").stat().st_size > 10_000
    assert res.mean("paper_grokking_time").shape == (3,)


# ------------------------------------------------------------------------------ executors
def _crash_once(marker, spec):
    """A cell function whose worker dies (os._exit) the first time it meets cell alpha=2,
    eps=0.4 (the marker file remembers it)."""
    marker = Path(marker)
    p = spec["problem"]
    if p["alpha"] == 2.0 and p["eps"] == 0.4 and not marker.exists():
        marker.write_text("crashed")
        os._exit(3)
    return run_cell(spec)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref"
    return sweep(BASE, VARY, STEPS, seeds=2, workers=1, out=out, progress=False, plot=False)


def test_process_pool_equals_serial(reference, tmp_path):
    res = sweep(BASE, VARY, STEPS, seeds=2, workers=2, out=tmp_path / "pool", progress=False,
                plot=False)
    assert_same_results(reference, res)


def test_dead_worker_is_retried(reference, tmp_path):
    marker = tmp_path / "marker"
    out = tmp_path / "crash"
    res = sweep(BASE, VARY, STEPS, seeds=2, workers=2, out=out, progress=False, plot=False,
                cell_fn=functools.partial(_crash_once, str(marker)))
    assert marker.read_text() == "crashed"           # a worker did die
    assert res.stats["n_failed"] == 0
    assert_same_results(reference, res)
    ids = (out / "computed.log").read_text().split()[::2]
    assert len(ids) == len(set(ids)) == 8            # each cell stored exactly once


def _die_after_storing(out, spec):
    """A cell function whose worker stores cell alpha=2, eps=0.4, seed 0 and dies (os._exit)
    before logging it in computed.log: the window a pool break can hit."""
    if spec["problem"]["alpha"] == 2.0 and spec["problem"]["eps"] == 0.4 \
            and spec["problem"]["seed"] == 0:
        store_cell(out, cell_task(run_cell, spec, out=None), log=False)
        os._exit(3)
    return run_cell(spec)


def test_a_cell_stored_by_a_dying_worker_is_logged_once(reference, tmp_path):
    """The cell is not redone (it was stored), and computed.log still names every cell once:
    the line its worker did not write is written when the stored cell is collected."""
    out = tmp_path / "die"
    res = sweep(BASE, VARY, STEPS, seeds=2, workers=2, out=out, progress=False, plot=False,
                cell_fn=functools.partial(_die_after_storing, str(out)))
    assert res.stats["n_failed"] == 0
    assert_same_results(reference, res)
    ids = (out / "computed.log").read_text().split()[::2]
    assert len(ids) == len(set(ids)) == 8            # each cell logged exactly once


def test_concurrent_futures_executor(reference, tmp_path):
    with cf.ThreadPoolExecutor(2) as ex:
        res = sweep(BASE, VARY, STEPS, seeds=2, executor=ex, out=tmp_path / "th",
                    progress=False, plot=False)
    assert_same_results(reference, res)


def _registered_teacher(Z):
    """A target registered from Python (module-level, so worker processes can load it)."""
    return Z[:, 0] * Z[:, 1] + 0.5 * Z[:, 2]


def test_registered_target_reaches_pool_workers(tmp_path):
    """Issue 12 §4: process-pool workers start with an empty target registry; the sweep ships
    the registered functions its cells use, so workers=2 gives the cells of workers=1."""
    spec = targets.register("sweep_test_teacher", _registered_teacher)
    base = BASE.replace(target=f"{spec},samples=2000")
    serial = sweep(base, {"alpha": "0.5,2"}, STEPS, workers=1, progress=False, plot=False)
    assert list(serial["status"].ravel()) == ["ok", "ok"]
    pool = sweep(base, {"alpha": "0.5,2"}, STEPS, workers=2, out=tmp_path / "pool",
                 progress=False, plot=False)
    assert pool.stats["n_failed"] == 0, pool.stats["failures"]
    assert_same_results(serial, pool)


def test_unpicklable_registered_target_is_refused_before_any_cell(tmp_path):
    spec = targets.register("sweep_test_lambda", lambda Z: Z[:, 0] ** 2)
    out = tmp_path / "lam"
    with pytest.raises(ProblemError) as e:
        sweep(BASE.replace(target=f"{spec},samples=2000"), {"alpha": "0.5,2"}, STEPS,
              workers=2, out=out, progress=False, plot=False)
    msg = str(e.value)
    assert "sweep_test_lambda" in msg and "workers=1" in msg and "\n" not in msg
    assert not list(out.glob("cells/*.json"))


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    yield cluster
    cluster.close()


def test_dask_local_cluster_equals_pool(reference, dask_cluster, tmp_path):
    out = tmp_path / "dask"
    res = sweep(BASE, VARY, STEPS, seeds=2, scheduler=dask_cluster.scheduler_address,
                out=out, progress=False, plot=False)
    assert_same_results(reference, res)
    assert len(list((out / "cells").glob("*.json"))) == 8
    # resuming the same sweep through Dask computes nothing
    res2 = sweep(BASE, VARY, STEPS, seeds=2, scheduler=dask_cluster.scheduler_address,
                 out=out, progress=False, plot=False)
    assert res2.stats["n_computed"] == 0


def test_dask_dead_worker_is_retried(reference, dask_cluster, tmp_path):
    import cloudpickle
    from distributed import Client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers can't import tests
    marker = tmp_path / "marker"
    with Client(dask_cluster) as client:
        res = sweep(BASE, VARY, STEPS, seeds=2, executor=client, out=tmp_path / "dk",
                    progress=False, plot=False,
                    cell_fn=functools.partial(_crash_once, str(marker)))
    assert marker.read_text() == "crashed"
    assert res.stats["n_failed"] == 0
    assert_same_results(reference, res)
