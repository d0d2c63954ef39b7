"""The issue-13 long-time target at D = 400: the relative population loss at the horizon
t_h = 1000 D steps (tau = 40) of the exact flow against the DMFT (what ``lazyrich asymptotic``
runs at kappa < 5), the spectral closure (kappa >= 5) and, for reference, the interpolant's
tau -> inf loss; each seed's own teacher and training set ("raw" series of
docs/offline_theory.md §11), (alpha, eps) = (1, 0.02) and (2, 0.04), N = inf, centered,
convention A, eta0 = 1.  The §11 tables from benchmarks/offline_theory.py have this column for
D = 50-200 only; this script adds D = 400.

    python benchmarks/offline_final_400.py run     # resumable; ~5-10 min per exact run
    python benchmarks/offline_final_400.py table   # -> offline_final_400.md
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import geometric_times, markdown_head, run_or_table, write_table
from lazyrich_theory.theory.offline import (entropic_interpolant, offline_inputs,
                                            offline_theory)
from lazyrich_theory.theory.timescales import half_time

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_final_400.json"
D = 400
T_H = 1000 * D
#: (kappa, alpha, eps, seeds), cheapest first per (alpha, eps); tau = 40 at t_h for both
CELLS = ((1.5, 1.0, 0.02, range(16)), (2.0, 1.0, 0.02, range(16)), (3.0, 1.0, 0.02, range(8)),
         (5.5, 1.0, 0.02, range(4)), (11.0, 1.0, 0.02, range(4)),
         (3.0, 2.0, 0.04, range(8)), (5.5, 2.0, 0.04, range(4)), (11.0, 2.0, 0.04, range(2)))
METHODS = ("dmft", "spectral")


def _metrics(traj) -> dict:
    pop = np.asarray(traj.population_loss, float)
    return {"final": float(pop[-1] / pop[0]), "half": half_time(traj.t, pop),
            "t_end": float(traj.t[-1])}


def _key(kappa: float, alpha: float, eps: float, seed: int) -> str:
    """The JSON key of one run ((1, 0.02): the first series' "kappa|seed")."""
    base = f"{kappa}|{seed}"
    return base if (alpha, eps) == (1.0, 0.02) else f"{base}|{alpha:g}|{eps:g}"


def cell_problem(kappa: float, alpha: float, eps: float, seed: int):
    """(the problem of one run, its save times)."""
    p = lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=alpha, eps=eps, seed=seed)
    return p, geometric_times(T_H)


def cell_jobs(one):
    """(key, job) for every run of CELLS, the job ``one(kappa, alpha, eps, seed)``."""
    for kappa, a, e, seeds in CELLS:
        for s in seeds:
            yield _key(kappa, a, e, s), (lambda k=kappa, a=a, e=e, s=s: one(k, a, e, s))


def _one(kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p, st = cell_problem(kappa, alpha, eps, seed)
    out: dict = {"b2": offline_inputs(p).b2}
    t0 = time.perf_counter()
    out["exact"] = _metrics(lr.solve(p, T_H, method="flow", save_times=st))
    out["exact_wall"] = time.perf_counter() - t0
    for method in METHODS:
        t0 = time.perf_counter()
        as_derived = {"column_closure": "dmft"} if method == "dmft" else {}
        out[method] = _metrics(offline_theory(p, T_H, method=method, save_times=st,
                                              **as_derived))
        out[f"{method}_wall"] = time.perf_counter() - t0
    out["interpolant"] = float(entropic_interpolant(p).population_loss)
    return out


def _jobs():
    return cell_jobs(_one)


def _mean_sd(xs: list[float]) -> str:
    return f"{np.mean(xs):.3f} ± {np.std(xs):.3f}" if xs else "—"


def table() -> None:
    done = json.loads(OUT.read_text())
    lines = markdown_head(
        "Loss at the horizon at D = 400: exact flow vs the DMFT and the spectral closure "
        "(docs/offline_theory.md §11.2)",
        "Relative population loss at t_h = 1000 D = 400 000 steps (tau = 40), seed mean ± sd "
        "over the seeds done; error = theory − exact, mean over seeds (± sd of the per-seed "
        "errors). Each seed's own teacher (raw series). Last column: the interpolant's "
        "tau -> inf loss (a different quantity: where the flow ends).",
        ["kappa", "alpha, eps", "seeds", "exact", "DMFT", "error", "spectral", "error",
         "interpolant"])
    for kappa, a, e, seeds in CELLS:
        rows = [done[k] for k in (_key(kappa, a, e, s) for s in seeds) if k in done]
        if not rows:
            continue
        ex = [r["exact"]["final"] for r in rows]
        cells = [str(len(rows)), _mean_sd(ex)]
        for method in METHODS:
            th = [r[method]["final"] for r in rows]
            err = [a - b for a, b in zip(th, ex)]
            cells += [_mean_sd(th), f"{np.mean(err):+.3f} ± {np.std(err):.3f}"]
        cells.append(_mean_sd([r["interpolant"] for r in rows]))
        lines.append(f"| {kappa:g} | {a:g}, {e:g} | " + " | ".join(cells) + " |")
    write_table(HERE / "offline_final_400.md", lines)


if __name__ == "__main__":
    run_or_table(OUT, _jobs, table)
