"""How much one training set's outcome scatters about the seed mean the offline theory predicts
(docs/user_guide.md §5.5, docs/offline_theory.md §12.1): the exact flow's sd over training
seeds of the relative population loss at tau = 40 and of the half time, against D and kappa.

No new runs: the exact flows of offline_a7_grid.py (D = 50-200, seeds 0-7), offline_final_400.py
(D = 400), at kappa = 2 offline_k2_rate.py run and at kappa = 1.5 offline_mc400.py seeds and
offline_k15_rate.py exact and exact800 (its runs saved the loss only).  (alpha, eps) = (1, 0.02) and (2, 0.04), N = inf, each seed's own
teacher and training set, t_h = 1000 D.

    python benchmarks/offline_seed_scatter.py      # -> offline_seed_scatter.md
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from common import load_results, markdown_head, write_table
from offline_a7_grid import OUT as GRID
from offline_final_400 import OUT as D400
from offline_k15_rate import EXACT800_OUT as K15_EXACT800, EXACT_OUT as K15_EXACT
from offline_k2_rate import OUT as K2
from offline_mc400 import SEEDS_OUT

HERE = Path(__file__).resolve().parent


def _runs() -> dict[tuple[float, float, int], list[dict]]:
    """(kappa, alpha, D) -> the exact runs' metrics ({"final", "half" where saved})."""
    runs: dict[tuple[float, float, int], list[dict]] = defaultdict(list)
    for key, r in load_results(GRID).items():
        D, kappa, alpha, _, _ = key.split("|")
        runs[(float(kappa), float(alpha), int(D))].append(r["exact"])
    for key, r in load_results(D400).items():
        parts = key.split("|")
        alpha = 1.0 if len(parts) == 2 else float(parts[2])
        runs[(float(parts[0]), alpha, 400)].append(r["exact"])
    runs[(1.5, 1.0, 400)] += [r["exact"] for r in load_results(SEEDS_OUT).values()]
    k15 = {**load_results(K15_EXACT), **load_results(K15_EXACT800["even"]),
           **load_results(K15_EXACT800["odd"])}
    for key, r in k15.items():
        if not key.startswith("draw|"):          # exact800's theory draws are not runs
            runs[(1.5, 1.0, int(key.split("|")[0]))].append({"final": r["final"]})
    for key, r in load_results(K2).items():
        runs[(2.0, 1.0, int(key.split("|")[0]))].append(r["exact"])
    return runs


def _cell(rs: list[dict]) -> tuple[str, str]:
    """(the loss's "mean, sd (seeds)", the half time's "relative sd (seeds that halved)")."""
    final = np.array([r["final"] for r in rs])
    halves = [r["half"] for r in rs if r.get("half") is not None]
    half = (f"{100 * np.std(halves, ddof=1) / np.mean(halves):.0f} % ({len(halves)})"
            if len(halves) > 1 else "—")
    return f"{final.mean():.3f}, {np.std(final, ddof=1):.3f} ({len(final)})", half


def main() -> None:
    runs = _runs()
    Ds = sorted({D for _, _, D in runs})
    lines = markdown_head(
        "One training set against the seed mean: the exact flow's scatter",
        "Relative population loss at tau = 40: 'mean, sd (seeds)' over training seeds; half "
        "time: sd / mean over the seeds that halved within the horizon (their number). The "
        "offline theory predicts the seed mean (it sees a training set only through b2); a "
        "single network's outcome lies about one sd from it.",
        ["kappa", "alpha, eps"] + [f"D = {D}: loss" for D in Ds]
        + [f"D = {D}: half time" for D in Ds])
    for kappa, alpha in sorted({(k, a) for k, a, _ in runs}):
        cells = [_cell(runs[(kappa, alpha, D)]) if runs.get((kappa, alpha, D)) else ("—", "—")
                 for D in Ds]
        lines.append(f"| {kappa:g} | {alpha:g}, {0.02 * alpha:g} | "
                     + " | ".join([c[0] for c in cells] + [c[1] for c in cells]) + " |")
    write_table(HERE / "offline_seed_scatter.md", lines)


if __name__ == "__main__":
    main()
