"""The offline theory's Fig. 3(e) boundary against the exact solver (issue 13;
docs/offline_theory.md §12.3).

Grid: the paper's Fig. 3(e) (D = 100, P = 550, eta0 = 20, centered, convention A, seed 0),
alpha in linspace(0.4, 5.6, n), eps in linspace(0.02, 0.28, n), horizon 110 000 steps,
threshold 0.1 on the loss.  Exact: gradient flow at N = inf (the theory's width; at N = 500 the
reached cells are the same, docs §12.3) -- the first step with the population loss under 0.1,
the same on the paper's 1000-point test set, and the long-time population loss.  Theory:
``phase_boundary_times`` with the spectral closure, with the DMFT and with the DMFT under the
column closures A7 and spread (no fitted constant).

    python benchmarks/offline_fig3e.py run [n]      # exact cells + both theories -> JSON
    python benchmarks/offline_fig3e.py table [n]    # markdown summary of the JSON

Cost (2 shared cores): n = 8: exact ~4 min, spectral seconds, DMFT ~3 min
(each DMFT row); n = 14: ~3x.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from lazyrich_theory.theory.offline import (interpolant_floors, offline_inputs,
                                            phase_boundary_times)
from lazyrich_theory.theory.timescales import first_time_below

HERE = Path(__file__).resolve().parent
METHODS = ("spectral", "dmft", "dmft-a7", "dmft-spread", "dmft-resolved", "dmft-finite",
           "interpolant")
#: ``phase_boundary_times`` method and DMFT options of each DMFT-based row ("dmft-a7": the
#: opt-in least-squares column closure A7; "dmft-spread": the spread closure with its column
#: instantaneous, (12.1), and its memorisation at first order, "dmft-resolved" the same with
#: its bulk memorisation resolved; "dmft-finite": the spread closure as it runs by default,
#: its column at its finite speed, (12.2), and its bulk memorisation resolved; docs §12.4).
INST = {"column_closure": "spread", "column_speed": "instantaneous"}
DMFT_ROWS = {"dmft": {"column_closure": "dmft"}, "dmft-a7": {"column_closure": "least_squares"},
             "dmft-spread": {**INST, "spread_response": "first_order"},
             "dmft-resolved": {**INST, "spread_response": "resolved"},
             "dmft-finite": {"column_closure": "spread"}}
STEPS, THRESHOLD, D, P, ETA0 = 110_000, 0.1, 100, 550, 20.0


def _axes(n):
    return np.linspace(0.4, 5.6, n), np.linspace(0.02, 0.28, n)


def _problem(alpha, eps):
    return lr.Problem(D=D, P=P, N=math.inf, alpha=float(alpha), eps=float(eps), eta0=ETA0,
                      centered=True, convention="A", seed=0, test_size=1000)


def exact_cells(n, path):
    """Exact flow of every cell (resumable: cells already in ``path`` are kept)."""
    done = json.loads(path.read_text()) if path.exists() else {}
    al, ep = _axes(n)
    save = np.unique(np.geomspace(1, STEPS, 800).astype(int))
    for i, a in enumerate(al):
        for j, e in enumerate(ep):
            key = f"{i},{j}"
            if key in done:
                continue
            d = lr.solve(_problem(a, e), STEPS, method="flow",
                         save_times=save).to_pandas().reset_index()
            t, pop, test = d["t"].values, d["population_loss"].values, d["test_loss"].values
            done[key] = {"alpha": float(a), "eps": float(e),
                         "threshold_time": first_time_below(t, pop, THRESHOLD),
                         "test_set_threshold_time": first_time_below(t, test, THRESHOLD),
                         "half_time": first_time_below(t, pop, 0.5 * pop[0]),
                         "final_population_loss": float(pop[-1])}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(done, indent=1))
            os.replace(tmp, path)
            print(key, done[key], flush=True)
    return done


def interpolant_cells(n, spectral):
    """The mirror-descent interpolant's floor per cell (docs §15); a cell reaches the threshold
    iff its floor is under it, at the spectral closure's time (as ``--offline-theory
    interpolant``)."""
    al, ep = _axes(n)
    t0 = time.perf_counter()
    floors = interpolant_floors(_problem(1.0, 0.02), al, ep,
                                log=lambda s: print(s, flush=True))
    times = np.where(floors < THRESHOLD, np.array(spectral["threshold_time"]), math.inf)
    return {"seconds": time.perf_counter() - t0, "nodes": [], "floors": floors.tolist(),
            "threshold_time": times.tolist()}


def theory_cells(n, row):
    al, ep = _axes(n)
    b2 = offline_inputs(_problem(1.0, 0.02)).b2
    method = "dmft" if row in DMFT_ROWS else row
    t0 = time.perf_counter()
    out = phase_boundary_times(P / D, b2, D, ETA0, al, ep, STEPS, threshold=THRESHOLD,
                               method=method, dmft_options=DMFT_ROWS.get(row),
                               log=lambda s: print(s, flush=True))
    secs = time.perf_counter() - t0
    res = {"seconds": secs, "b2": b2, "nodes": out["nodes"].tolist(),
           "threshold_time": out["threshold_time"].tolist(),
           "relative_time": out["relative_time"].tolist()}
    if method == "dmft":
        res.update(ratios=out["ratios"].tolist(), tau_cap=out["tau_cap"])
    return res


def run(n):
    path = HERE / f"offline_fig3e_{n}.json"
    exact_path = HERE / f"offline_fig3e_{n}_exact.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    res["exact"] = exact_cells(n, exact_path)
    for method in ("spectral", *DMFT_ROWS):
        if method not in res:
            res[method] = theory_cells(n, method)
            print(method, f"{res[method]['seconds']:.1f} s", flush=True)
            path.write_text(json.dumps(res, indent=1, default=float))
    if "interpolant" not in res:
        res["interpolant"] = interpolant_cells(n, res["spectral"])
    path.write_text(json.dumps(res, indent=1, default=float))


def _grid(res, n, key):
    g = np.full((n, n), math.inf)
    for k, v in res["exact"].items():
        i, j = map(int, k.split(","))
        g[i, j] = v[key]
    return g


def _edge(reached):
    """Per alpha row: how many eps cells (from the smallest) reach the threshold."""
    return reached.sum(axis=1)


def summary(n):
    res = json.loads((HERE / f"offline_fig3e_{n}.json").read_text())
    ex = _grid(res, n, "threshold_time")
    ts = _grid(res, n, "test_set_threshold_time")
    fin = _grid(res, n, "final_population_loss")
    both_exact = np.isfinite(ex) & np.isfinite(ts)
    lines = [f"Fig. 3(e) grid {n} x {n} (D = {D}, P = {P}, eta0 = {ETA0:g}, T = {STEPS}, "
             f"threshold {THRESHOLD}); exact: gradient flow at N = inf", "",
             f"exact cells reaching the threshold: population {int(np.isfinite(ex).sum())}, "
             f"1000-point test set {int(np.isfinite(ts).sum())}; test-set / population "
             f"threshold time median {np.median(ts[both_exact] / ex[both_exact]):.3f}",
             "", "| theory | cost | cells reached (exact) | misclassified | rows with the edge "
             "within 1 cell | max edge offset | time ratio theory/exact (median, range) |",
             "|---|---|---|---|---|---|---|"]
    for method in METHODS:
        if method not in res:
            continue
        th = np.array(res[method]["threshold_time"])
        both = np.isfinite(th) & np.isfinite(ex)
        ratio = th[both] / ex[both]
        off = _edge(np.isfinite(th)) - _edge(np.isfinite(ex))
        lines.append(
            f"| {method} | {res[method]['seconds']:.1f} s, {len(res[method]['nodes'])} nodes | "
            f"{int(np.isfinite(th).sum())} ({int(np.isfinite(ex).sum())}) | "
            f"{int((np.isfinite(th) != np.isfinite(ex)).sum())} of {n * n} | "
            f"{int((np.abs(off) <= 1).sum())} of {n} | {int(np.abs(off).max())} | "
            f"{np.median(ratio):.2f} ({ratio.min():.2f}-{ratio.max():.2f}) |")
    lines.append("")
    lines.append("Edge per alpha row (cells reaching the threshold, from the smallest eps): exact "
                 + str(_edge(np.isfinite(ex)).tolist()) + "; " + "; ".join(
                     f"{m} {_edge(np.isfinite(np.array(res[m]['threshold_time']))).tolist()}"
                     for m in METHODS if m in res))
    if "interpolant" in res:
        err = np.array(res["interpolant"]["floors"]) - fin
        lines.append("")
        lines.append("Interpolant floor - exact long-time population loss (absolute, every cell): "
                     f"mean {err.mean():+.4f}, median {np.median(err):+.4f}, max |.| "
                     f"{np.abs(err).max():.4f}; relative to exact where it exceeds 0.05: median "
                     f"{np.median(err[fin > 0.05] / fin[fin > 0.05]):+.3f}")
    lines.append("")
    al, ep = _axes(n)
    ae = np.outer(al, ep)
    order = np.argsort(ae.ravel())
    lines.append("Exact long-time population loss against alpha eps (every 8th cell): "
                 + ", ".join(f"{ae.ravel()[k]:.3f}: {fin.ravel()[k]:.3f}"
                             for k in order[:: max(1, order.size // 8)]))
    return "\n".join(lines)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "table"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    if cmd == "run":
        run(size)
    print(summary(size))
