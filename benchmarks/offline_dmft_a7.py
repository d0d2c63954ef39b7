"""Closure A7 of the DMFT's linear column (``column_closure="least_squares"``,
docs/offline_theory.md §12.4) at D = 400: the loss at the horizon and the half time against
the exact flow and the DMFT as derived, on the runs of benchmarks/offline_final_400.json (each
seed's own teacher, (alpha, eps) = (1, 0.02) and (2, 0.04), t_h = 1000 D, tau = 40).

    python benchmarks/offline_dmft_a7.py run     # resumable, ~3 min
    python benchmarks/offline_dmft_a7.py table   # -> offline_dmft_a7.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, run_or_table, write_table
from lazyrich_theory.theory.offline import offline_theory
from offline_final_400 import CELLS, D, OUT as EXACT, T_H, _key, _metrics

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_dmft_a7.json"


def _one(kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p = lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=alpha, eps=eps, seed=seed)
    st = np.unique(np.concatenate([[0], np.geomspace(1, T_H, 300).astype(int)]))
    return _metrics(offline_theory(p, T_H, method="dmft", save_times=st,
                                   column_closure="least_squares"))


def _jobs():
    for kappa, a, e, seeds in CELLS:
        for s in seeds:
            yield _key(kappa, a, e, s), (lambda k=kappa, a=a, e=e, s=s: _one(k, a, e, s))


def _err(xs: list[float]) -> str:
    return f"{np.mean(xs):+.3f} ± {np.std(xs):.3f}"


def _half_err(th: list, ex: list) -> str:
    pairs = [(a, b) for a, b in zip(th, ex) if a is not None and b is not None]
    if not pairs:
        return "—"
    return f"{100 * (np.mean([a for a, _ in pairs]) / np.mean([b for _, b in pairs]) - 1):+.1f} %"


def table() -> None:
    done, exact = json.loads(OUT.read_text()), json.loads(EXACT.read_text())
    lines = markdown_head(
        "DMFT closure A7 (least-squares column) at D = 400 (docs/offline_theory.md §12.4)",
        "Relative population loss at tau = 40: error = theory - exact, mean ± sd over the "
        "seeds; half time: error of the seed mean (seeds where both halve). DMFT: as derived "
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


if __name__ == "__main__":
    run_or_table(OUT, _jobs, table)
