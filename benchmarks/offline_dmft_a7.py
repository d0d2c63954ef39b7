"""Closure A7 of the DMFT's linear column (``column_closure="least_squares"``,
docs/offline_theory.md §12.4) at D = 400: the loss at the horizon and the half time against
the exact flow and the DMFT as derived, on the runs of benchmarks/offline_final_400.json (each
seed's own teacher, (alpha, eps) = (1, 0.02) and (2, 0.04), t_h = 1000 D, tau = 40).

    python benchmarks/offline_dmft_a7.py run     # resumable, ~3 min
    python benchmarks/offline_dmft_a7.py table   # -> offline_dmft_a7.md
    python benchmarks/offline_dmft_a7.py smalld  # D = 50-200: the runs of offline_theory.py (raw
                                                 # series, (1, 0.02)) -> offline_dmft_a7_smalld.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from common import markdown_head, run_or_table, run_resumable, write_table
from lazyrich_theory.theory.offline import offline_theory
from offline_final_400 import CELLS, OUT as EXACT, T_H, _key, _metrics, cell_jobs, cell_problem

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_dmft_a7.json"


def _one(kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p, st = cell_problem(kappa, alpha, eps, seed)
    return _metrics(offline_theory(p, T_H, method="dmft", save_times=st,
                                   column_closure="least_squares"))


def _jobs():
    return cell_jobs(_one)


def _err(xs: list[float]) -> str:
    return f"{np.mean(xs):+.3f} ± {np.std(xs):.3f} ({len(xs)})" if xs else "—"


def _half_err(th: list, ex: list) -> str:
    pairs = [(a, b) for a, b in zip(th, ex) if a is not None and b is not None]
    if not pairs:
        return "—"
    return f"{100 * (np.mean([a for a, _ in pairs]) / np.mean([b for _, b in pairs]) - 1):+.1f} %"


def table() -> None:
    done, exact = json.loads(OUT.read_text()), json.loads(EXACT.read_text())
    lines = markdown_head(
        "DMFT closure A7 (least-squares column) at D = 400 (docs/offline_theory.md §12.4)",
        "Relative population loss at tau = 40: error = theory - exact, mean ± sd (number of "
        "seeds); half time: error of the seed mean (seeds where both halve). DMFT: as derived "
        "(benchmarks/offline_final_400.json); A7: column_closure='least_squares'.",
        ["kappa", "alpha, eps", "seeds", "exact", "DMFT error", "A7 error", "half time DMFT",
         "half time A7"])
    for kappa, a, e, seeds in CELLS:
        keys = [_key(kappa, a, e, s) for s in seeds if _key(kappa, a, e, s) in done]
        if not keys:
            continue
        ex = [exact[k]["exact"]["final"] for k in keys]
        dm = [exact[k]["dmft"]["final"] - x for k, x in zip(keys, ex)]
        a7 = [done[k]["final"] - x for k, x in zip(keys, ex)]
        hx = [exact[k]["exact"]["half"] for k in keys]
        lines.append(f"| {kappa:g} | {a:g}, {e:g} | {len(keys)} | {np.mean(ex):.3f} | "
                     f"{_err(dm)} | {_err(a7)} | "
                     f"{_half_err([exact[k]['dmft']['half'] for k in keys], hx)} | "
                     f"{_half_err([done[k]['half'] for k in keys], hx)} |")
    write_table(HERE / "offline_dmft_a7.md", lines)


SMALL_OUT = HERE / "offline_dmft_a7_smalld.json"
SMALL_DS, SMALL_KAPPAS = (50, 100, 200), (1.5, 2.0, 3.0, 5.5, 11.0)


def smalld() -> None:
    """A7 against the exact runs and the DMFT as derived of benchmarks/offline_theory.py at
    D = 50-200 (raw series, (alpha, eps) = (1, 0.02), the loss at t_h = 1000 D)."""
    from lazyrich_theory.theory.offline import OfflineInputs, offline_curves
    from offline_theory import EXACT_JSON, HORIZON_PER_D, THEORY_JSON, metrics
    from offline_theory import _key as theory_key

    exact = [r for r in json.loads(Path(EXACT_JSON).read_text())
             if r["series"] == "raw" and (r["alpha"], r["eps"]) == (1.0, 0.02)
             and r["D"] in SMALL_DS and r["kappa"] in SMALL_KAPPAS]
    plain = json.loads(Path(THEORY_JSON).read_text())

    def jobs():
        for r in exact:
            def job(r=r):
                inp = OfflineInputs(kappa=r["kappa"], alpha=1.0, eps=0.02, eta0=1.0, b2=r["b2"],
                                    D=r["D"])
                t = np.concatenate([[0.0], np.geomspace(1.0, HORIZON_PER_D * r["D"], 400)])
                c = offline_curves(inp, t, "dmft", column_closure="least_squares")
                return {"final": metrics(t, c["population_loss"], r["D"])[1]}
            yield f"{r['D']}|{r['kappa']:g}|{r['seed']}", job
    done = run_resumable(SMALL_OUT, jobs())
    lines = markdown_head(
        "DMFT closure A7 at D = 50-200 (docs/offline_theory.md §12.4)",
        "Relative population loss at t_h = 1000 D (tau = 40), raw series, (alpha, eps) = "
        "(1, 0.02): error = theory - exact, mean ± sd (number of seeds). DMFT: as derived "
        "(benchmarks/offline_theory_theory.json); A7: column_closure='least_squares'.",
        ["D", "kappa", "seeds", "exact", "DMFT error", "A7 error"])
    for d in SMALL_DS:
        for kappa in SMALL_KAPPAS:
            rows = [r for r in exact if r["D"] == d and r["kappa"] == kappa
                    and r["final"] is not None
                    and f"{d}|{kappa:g}|{r['seed']}" in done]
            if not rows:
                continue
            ex = [r["final"] for r in rows]
            dm = [plain[k]["final"] - r["final"] for r in rows
                  if (k := theory_key("dmft", d, kappa, 1.0, 0.02, r["b2"])) in plain
                  and plain[k]["final"] is not None]
            a7 = [done[f"{d}|{kappa:g}|{r['seed']}"]["final"] - r["final"] for r in rows]
            lines.append(f"| {d} | {kappa:g} | {len(rows)} | {np.mean(ex):.3f} | {_err(dm)} | "
                         f"{_err(a7)} |")
    write_table(HERE / "offline_dmft_a7_smalld.md", lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["smalld"]:
        smalld()
    else:
        run_or_table(OUT, _jobs, table)
