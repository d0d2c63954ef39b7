"""When in time does the offline theory's error arise? (issue 13; docs/offline_theory.md
§12.4.)  The relative population and train losses at tau = 0.05 ... 40 of the exact flow,
the spread closure (its default, resolved response), the DMFT as derived and the spectral
closure, on the validation grid's problems ((alpha, eps) = (1, 0.02), N = inf, each seed's
own teacher; tau = 2 eta0 eps t / (alpha D), one unit of tau = 25 D GD steps).

    python benchmarks/offline_time_profile.py run 200 2 0 1 2 3   # D, kappa, seeds; resumable
    python benchmarks/offline_time_profile.py table               # -> offline_time_profile.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, run_resumable, write_table
from lazyrich_theory.theory.offline import offline_theory

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_time_profile.json"
TAUS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0)
#: name -> offline_theory options (None: the exact flow)
METHODS = {"exact": None, "spread": {"method": "dmft", "column_closure": "spread",
                                     "column_speed": "instantaneous"},
           "dmft": {"method": "dmft", "column_closure": "dmft"}, "spectral": {"method": "spectral"}}


def _one(D: int, kappa: float, seed: int) -> dict:
    p = lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=1.0, eps=0.02, seed=seed)
    steps = np.array([int(t * 25 * D) for t in TAUS])
    st = np.concatenate([[0], steps])
    out = {}
    for name, opts in METHODS.items():
        tr = (lr.solve(p, int(steps[-1]), method="flow", save_times=st) if opts is None
              else offline_theory(p, int(steps[-1]), save_times=st, **opts))
        idx = np.searchsorted(tr.t, steps)
        out[name] = {"pop": list(tr.population_loss[idx] / tr.population_loss[0]),
                     "train": list(tr.train_loss[idx] / tr.train_loss[0])}
    return out


def run(D: int, kappa: float, seeds: list[int]) -> None:
    run_resumable(OUT, ((f"{D}|{kappa:g}|{s}", lambda s=s: _one(D, kappa, s)) for s in seeds))


def table() -> None:
    done = json.loads(OUT.read_text())
    lines = markdown_head(
        "The offline theory's error over time",
        "Seed means of the relative population loss (and of the train loss, for the exact "
        "flow and the spread closure) at each tau; for the theories, theory - exact of the "
        "seed means ((alpha, eps) = (1, 0.02); docs/offline_theory.md §12.4).",
        ["D", "kappa", "seeds", "series"] + [f"tau = {t:g}" for t in TAUS])
    cells = sorted({tuple(k.split("|")[:2]) for k in done}, key=lambda c: tuple(map(float, c)))
    for D, kappa in cells:
        runs = [v for k, v in done.items() if k.startswith(f"{D}|{kappa}|")]
        mean = {(m, q): np.mean([r[m][q] for r in runs], axis=0)
                for m in METHODS for q in ("pop", "train")}
        head = f"| {D} | {kappa} | {len(runs)} | "
        rows = [("exact population", mean["exact", "pop"]),
                ("exact train", mean["exact", "train"]),
                ("spread train", mean["spread", "train"])]
        rows += [(f"{m} − exact", mean[m, "pop"] - mean["exact", "pop"])
                 for m in METHODS if m != "exact"]
        for label, vals in rows:
            fmt = "{:+.3f}" if "−" in label else "{:.3f}"
            lines.append(head + label + " | " + " | ".join(fmt.format(v) for v in vals) + " |")
    write_table(HERE / "offline_time_profile.md", lines)


if __name__ == "__main__":
    args = sys.argv[1:] or ["table"]
    if args[0] == "run" and len(args) >= 4:
        run(int(args[1]), float(args[2]), [int(s) for s in args[3:]])
    elif args[0] == "table":
        table()
    else:
        sys.exit("usage: offline_time_profile.py run D KAPPA SEED [SEED ...] | table")
