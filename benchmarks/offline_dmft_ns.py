"""Is the DMFT's long-time excess at kappa = 5.5, D = 400 a Monte Carlo effect?  The DMFT's
relative population loss at tau = 40 against its number of samples Ns (400 ... 3200) and its
Monte Carlo seed, for two training-set seeds of (alpha, eps) = (1, 0.02) (each seed's own
teacher b2; the exact values are those of benchmarks/offline_final_400.json).
docs/offline_theory.md §8.6.

The same question for the spread closure (resolved, its default) at kappa <= 2, where its
Monte Carlo draws scatter most (docs/offline_theory.md §12.4): Ns = 1600 and 3200 on training
seeds 0-1 of benchmarks/offline_final_400.py's grid, Monte Carlo seeds 0-2 (Ns = 800 is in
offline_dmft_resolved.json and offline_dmft_resolved_mc.json).

    python benchmarks/offline_dmft_ns.py      # -> offline_dmft_ns.json (~5 min, 2 cores)
    python benchmarks/offline_dmft_ns.py spread        # resumable, ~1 h on one core
    python benchmarks/offline_dmft_ns.py spread-table  # -> offline_dmft_ns_spread.md
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, run_resumable, write_table
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves
from lazyrich_theory.theory.offline.inputs import offline_inputs

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_dmft_ns.json"
KAPPA, D, TAU = 5.5, 400, 40.0
NS = (400, 800, 1600, 3200)
SPREAD_OUT = HERE / "offline_dmft_ns_spread.json"
#: (kappa, training seeds) at (alpha, eps) = (1, 0.02); Ns beyond the default 800; MC seeds
SPREAD_KAPPAS, SPREAD_SEEDS = (1.5, 2.0), (0, 1)
SPREAD_NS, SPREAD_MC = (1600, 3200), (0, 1, 2)


def main() -> None:
    res: dict[str, float] = {}
    for seed in range(2):
        p = lr.Problem(D=D, P=int(round(KAPPA * D)), N="inf", alpha=1.0, eps=0.02, seed=seed)
        inp = offline_inputs(p)
        for ns in NS:
            for mc in range(2):
                t0 = time.perf_counter()
                L = dmft_tau_curves(inp, TAU, Ns=ns, seed=mc,
                                    column_closure="dmft")["population_loss"]
                res[f"{seed}|{ns}|{mc}"] = float(L[-1] / L[0])
                print(f"seed {seed}, Ns {ns}, Monte Carlo seed {mc}: "
                      f"{res[f'{seed}|{ns}|{mc}']:.4f} ({time.perf_counter() - t0:.1f} s)",
                      flush=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, OUT)


def _spread_one(kappa: float, seed: int, ns: int, mc: int) -> dict:
    """One run of the grid's cell (kappa, 1, 0.02, seed) as offline_dmft_a7.py's, at Ns."""
    from offline_final_400 import T_H, _metrics, cell_problem
    from lazyrich_theory.theory.offline import offline_theory
    p, st = cell_problem(kappa, 1.0, 0.02, seed)
    return _metrics(offline_theory(p, T_H, method="dmft", save_times=st, seed=mc, Ns=ns,
                                   column_closure="spread", column_speed="instantaneous"))


def spread_runs() -> None:
    run_resumable(SPREAD_OUT, ((f"{k}|{s}|{ns}|{mc}",
                                lambda k=k, s=s, ns=ns, mc=mc: _spread_one(k, s, ns, mc))
                               for ns in SPREAD_NS for k in SPREAD_KAPPAS
                               for s in SPREAD_SEEDS for mc in SPREAD_MC))


def spread_table() -> None:
    from offline_final_400 import OUT as EXACT, _key
    exact = json.loads(EXACT.read_text())
    ns800 = json.loads((HERE / "offline_dmft_resolved.json").read_text())
    ns800_mc = json.loads((HERE / "offline_dmft_resolved_mc.json").read_text())
    done = json.loads(SPREAD_OUT.read_text()) if SPREAD_OUT.exists() else {}

    def final(kappa, s, ns, mc):
        key = _key(kappa, 1.0, 0.02, s)
        if ns == 800:
            run = ns800.get(key) if mc == 0 else ns800_mc.get(f"{key}|{mc}")
        else:
            run = done.get(f"{kappa}|{s}|{ns}|{mc}")
        return None if run is None else run["final"] - exact[key]["exact"]["final"]

    lines = markdown_head(
        "The spread closure's loss error at kappa <= 2, D = 400, against Ns",
        "Relative population loss at tau = 40, theory - exact (spread closure, resolved "
        "response; (alpha, eps) = (1, 0.02); each training seed's own teacher). Per Monte "
        "Carlo seed: the mean over training seeds " + ", ".join(map(str, SPREAD_SEEDS)) +
        "; last columns: mean and sd over the Monte Carlo seeds (docs/offline_theory.md "
        "§12.4).",
        ["kappa", "Ns"] + [f"MC seed {m}" for m in SPREAD_MC] + ["mean", "sd over MC"])
    for kappa in SPREAD_KAPPAS:
        for ns in (800, *SPREAD_NS):
            per_mc = []
            for mc in SPREAD_MC:
                errs = [final(kappa, s, ns, mc) for s in SPREAD_SEEDS]
                per_mc.append(None if None in errs else float(np.mean(errs)))
            got = [e for e in per_mc if e is not None]
            cells = ["—" if e is None else f"{e:+.3f}" for e in per_mc]
            cells += [f"{np.mean(got):+.3f}", f"{np.std(got):.3f}"] if got else ["—", "—"]
            lines.append(f"| {kappa:g} | {ns} | " + " | ".join(cells) + " |")
    write_table(HERE / "offline_dmft_ns_spread.md", lines)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "main"
    {"main": main, "spread": spread_runs, "spread-table": spread_table}[cmd]()
