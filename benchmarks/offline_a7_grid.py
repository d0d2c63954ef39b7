"""The DMFT with and without closure A7, and the spread closure (its default, resolved
response), against the exact flow at D = 50 ... 400, eight seeds per cell up to D = 200
(issue 13's validation grid; docs/offline_theory.md §12.4).

Each seed's own teacher and training set (the "raw" series), N = inf, centered, convention A,
eta0 = 1, horizon t_h = 1000 D (tau = 40); the theory at each seed's b2.  Metrics: the
relative population loss at t_h and the half-loss time.  D = 50-200 are run here; D = 400
is read from benchmarks/offline_final_400.json (exact, DMFT), offline_dmft_a7.json (A7) and
offline_dmft_resolved.json (spread), the same definitions, with the seeds run there.

    python benchmarks/offline_a7_grid.py run       # resumable -> offline_a7_grid.json (~50 min)
    python benchmarks/offline_a7_grid.py resolved  # the spread closure on the same runs ->
                                                   # offline_a7_grid_resolved.json (~1 h)
    python benchmarks/offline_a7_grid.py table     # -> offline_a7_grid.md
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
import sys

from common import (geometric_times, load_results, markdown_head, run_or_table, run_resumable,
                    write_table)
from lazyrich_theory.errors import DivergenceError
from lazyrich_theory.theory.offline import offline_theory
from offline_final_400 import CELLS as D400_CELLS, OUT as D400_EXACT, _key as d400_key, _metrics
from offline_dmft_a7 import CLOSURES as D400_CLOSURES, OUT as D400_A7

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_a7_grid.json"
DS = (50, 100, 200)
#: (kappa, alpha, eps) of the grid, as at D = 400 (offline_final_400.CELLS)
CELLS = ((1.5, 1.0, 0.02), (2.0, 1.0, 0.02), (3.0, 1.0, 0.02), (5.5, 1.0, 0.02),
         (3.0, 2.0, 0.04), (5.5, 2.0, 0.04))
SEEDS = tuple(range(8))
#: the spread closure (resolved response, its default) on the grid's runs
RESOLVED_OUT = HERE / "offline_a7_grid_resolved.json"


def _one(D: int, kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p = lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=alpha, eps=eps, seed=seed)
    t_h = 1000 * D
    st = geometric_times(t_h)
    out = {"exact": _metrics(lr.solve(p, t_h, method="flow", save_times=st))}
    for name, closure in (("dmft", "dmft"), ("a7", "least_squares")):
        try:
            out[name] = _metrics(offline_theory(p, t_h, method="dmft", save_times=st,
                                                column_closure=closure))
        except DivergenceError as err:      # recorded, and counted in the table
            out[name] = {"final": None, "half": None, "error": str(err)}
    return out


def _resolved_one(D: int, kappa: float, alpha: float, eps: float, seed: int,
                  mc: int = 0) -> dict:
    """The spread closure (its default, resolved response) on training seed ``seed``, the
    DMFT's Monte Carlo draw ``mc``."""
    p = lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=alpha, eps=eps, seed=seed)
    t_h = 1000 * D
    st = geometric_times(t_h)
    try:
        return _metrics(offline_theory(p, t_h, method="dmft", save_times=st, seed=mc,
                                       column_closure="spread", column_speed="instantaneous"))
    except DivergenceError as err:      # recorded, and counted in the table
        return {"final": None, "half": None, "error": str(err)}


def _resolved_jobs():
    """kappa <= 3 first (where the closures differ most), then kappa = 5.5."""
    order = sorted(CELLS, key=lambda c: c[0] > 3)
    for kappa, a, e in order:
        for D in DS:
            for s in SEEDS:
                yield (f"{D}|{kappa}|{a}|{e}|{s}",
                       lambda D=D, k=kappa, a=a, e=e, s=s: _resolved_one(D, k, a, e, s))


def _jobs():
    for D in DS:
        for kappa, a, e in CELLS:
            for s in SEEDS:
                yield (f"{D}|{kappa}|{a}|{e}|{s}",
                       lambda D=D, k=kappa, a=a, e=e, s=s: _one(D, k, a, e, s))


def _runs(D: int, kappa: float, a: float, e: float) -> list[dict]:
    """Per seed {"exact", "dmft", "a7"} metrics, and "resolved" where run (D = 400 from the
    D = 400 benchmarks)."""
    if D != 400:
        done = json.loads(OUT.read_text())
        res = load_results(RESOLVED_OUT)
        keys = [f"{D}|{kappa}|{a}|{e}|{s}" for s in SEEDS]
        return [{**done[k], **({"resolved": res[k]} if k in res else {})}
                for k in keys if k in done]
    exact, a7 = json.loads(D400_EXACT.read_text()), json.loads(D400_A7.read_text())
    res = load_results(D400_CLOSURES["resolved"][1])
    seeds = next(s for k, x, y, s in D400_CELLS if (k, x, y) == (kappa, a, e))
    keys = [d400_key(kappa, a, e, s) for s in seeds]
    return [{"exact": exact[k]["exact"], "dmft": exact[k]["dmft"], "a7": a7[k],
             **({"resolved": res[k]} if k in res else {})}
            for k in keys if k in exact and k in a7]


def _final_err(runs: list[dict], name: str) -> str:
    err = [r[name]["final"] - r["exact"]["final"] for r in runs if r[name]["final"] is not None]
    failed = len(runs) - len(err)
    text = f"{np.mean(err):+.3f} ± {np.std(err):.3f}" if err else "—"
    return text + (f" ({failed} diverged)" if failed else "")


def _half_err(runs: list[dict], name: str) -> str:
    """Error of the seed-mean half time, where every seed's exact and theory halve."""
    pairs = [(r[name]["half"], r["exact"]["half"]) for r in runs]
    if not pairs or any(a is None or b is None for a, b in pairs):   # also a diverged run
        return "—"
    return f"{np.mean([a for a, _ in pairs]) / np.mean([b for _, b in pairs]) - 1:+.1%}"


def _resolved(runs: list[dict]) -> str:
    """The spread closure's loss and half-time errors on the seeds it ran (their number in
    parentheses where it is not every seed of the cell)."""
    sub = [r for r in runs if "resolved" in r]
    if not sub:
        return "— | —"
    more = f" ({len(sub)} seeds)" if len(sub) < len(runs) else ""
    return f"{_final_err(sub, 'resolved')}{more} | {_half_err(sub, 'resolved')}"


def table() -> None:
    lines = markdown_head(
        "DMFT, DMFT + A7 and the spread closure against the exact flow, D = 50-400",
        "Relative population loss at t_h = 1000 D (tau = 40): exact seed mean, and the error "
        "theory - exact, mean ± sd over the seeds; half time: error of the seed mean (— where "
        "a seed does not halve by t_h). Each seed's own teacher; the theory at its b2. "
        "Spread: column_closure='spread' with its default (resolved) response.",
        ["kappa", "alpha, eps", "D", "seeds", "exact", "DMFT error", "A7 error",
         "half time DMFT", "half time A7", "spread error", "half time spread"])
    for kappa, a, e in CELLS:
        for D in (*DS, 400):
            runs = _runs(D, kappa, a, e)
            if not runs:
                continue
            ex = np.mean([r["exact"]["final"] for r in runs])
            lines.append(f"| {kappa:g} | {a:g}, {e:g} | {D} | {len(runs)} | {ex:.3f} | "
                         f"{_final_err(runs, 'dmft')} | {_final_err(runs, 'a7')} | "
                         f"{_half_err(runs, 'dmft')} | {_half_err(runs, 'a7')} | "
                         f"{_resolved(runs)} |")
    write_table(HERE / "offline_a7_grid.md", lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["resolved"]:
        run_resumable(RESOLVED_OUT, _resolved_jobs())
    else:
        run_or_table(OUT, _jobs, table)
