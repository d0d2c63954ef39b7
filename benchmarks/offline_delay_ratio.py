"""The spread closure's grokking delay away from alpha / eps = 50 (docs/offline_theory.md §12.4,
"The delay at other alpha / eps").

Every delay measurement of offline_delay.py is at alpha / eps = 50 ((1, 0.02) and (2, 0.04)),
where the linear column is fastest; the spread closure takes the column as instantaneous, and
its slowest relaxation time eps kappa / (alpha (sqrt(kappa) - 1)^2) grows as alpha / eps falls.
Here alpha eps = 0.02 is held at that of (1, 0.02) and alpha / eps is moved to 12.5
((0.5, 0.04): a column 4x slower) and 200 ((2, 0.01): 4x faster), at D = 200 (the smallest D
where summary.json calls the delay predicted), kappa = 5.5 and 11, on offline_delay.py's
definitions (N = inf, each seed's own teacher and training set, the delay
relative_grokking_time: t_test - t_train, each loss at 0.1 x its initial value) and at the same
DMFT horizon tau = 40: tau = 2 eta0 eps t / (alpha D), so T = 20 (alpha / eps) D steps (250 D at
alpha / eps = 12.5, 4000 D at 200; offline_delay.py's 1000 D at 50).

    python benchmarks/offline_delay_ratio.py run     # resumable; seeds 0-1 of every cell,
                                                    # then 2-3 (~1-8 min per run, one core)
    python benchmarks/offline_delay_ratio.py table   # -> offline_delay_ratio.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from common import load_results, markdown_head, run_resumable, write_table
from offline_delay import _problem, _save_steps, _summary, _load, _mean_error
import lazyrich_theory as lr
from lazyrich_theory.theory.offline import offline_theory
from lazyrich_theory.theory.offline.dmft import column_lag

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_delay_ratio.json"
D = 200
#: (kappa, alpha, eps): alpha eps = 0.02, alpha / eps = 12.5 and 200
CELLS = [(k, a, e) for a, e in ((0.5, 0.04), (2.0, 0.01)) for k in (5.5, 11.0)]
SEED_ROUNDS = ((0, 1), (2, 3))
KEYS = ("relative_grokking_time", "test_half_time")


def _one(kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p = _problem(D, kappa, alpha, eps, seed)
    T = int(round(20 * alpha / eps)) * D          # tau = 40 on the DMFT clock
    st = _save_steps(D, T, False)
    t0 = time.perf_counter()
    out = {"exact": _summary(lr.solve(p, T, method="flow", save_times=st))}
    out["exact_wall"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out["dmft_spread"] = _summary(offline_theory(p, T, save_times=st, method="dmft",
                                                 column_closure="spread",
                                                 column_speed="instantaneous"))
    out["dmft_spread_wall"] = time.perf_counter() - t0
    return out


def _jobs():
    for seeds in SEED_ROUNDS:
        for k, a, e in CELLS:
            for s in seeds:
                yield f"{k}|{a}|{e}|{s}", lambda k=k, a=a, e=e, s=s: _one(k, a, e, s)


def _row(kappa: float, alpha: float, eps: float, rows: list[dict]) -> str:
    cells = []
    for key in KEYS:
        mean, err, n, n_ex = _mean_error(rows, "dmft_spread", key)
        never = sum(r["dmft_spread"][key] is None for r in rows)
        cells.append(f"{mean:.0f} ({n_ex}/{len(rows)})" if n_ex else f"never (0/{len(rows)})")
        cells.append((f"{err:+.0%} ({n})" if n else "—")
                     + (f", never in {never}" if never else ""))
    return (f"| {kappa:g} | {alpha:g}, {eps:g} | {alpha / eps:g} | "
            f"{column_lag(kappa, alpha, eps):.2f} | " + " | ".join(cells) + " |")


def table() -> None:
    done = load_results(OUT)
    stored = _load().get(D, {})
    lines = markdown_head(
        "The spread closure's grokking delay at other alpha / eps (D = 200)",
        "Seed means over the runs stored (exact: GD steps, runs that reach it / runs; spread: "
        "error of its seed mean over the runs where both reach it, their number). alpha eps = "
        "0.02 throughout; the alpha / eps = 50 rows are offline_delay.py's (1, 0.02) runs. "
        "Column lag: eps kappa / (alpha (sqrt(kappa) - 1)^2), the linear column's slowest "
        "relaxation time in tau, which the spread closure takes as 0.",
        ["kappa", "alpha, eps", "alpha / eps", "column lag", "delay: exact", "delay: spread",
         "half time: exact", "half time: spread"])
    for k in (5.5, 11.0):
        base = [stored[key] for s in range(4) if (key := f"{k}|1.0|0.02|{s}") in stored
                and "dmft_spread" in stored[key]]
        if base:
            lines.append(_row(k, 1.0, 0.02, base))
        for kk, a, e in CELLS:
            rows = [done[key] for s in range(4) if (key := f"{kk}|{a}|{e}|{s}") in done]
            if kk == k and rows:
                lines.append(_row(kk, a, e, rows))
    write_table(HERE / "offline_delay_ratio.md", lines)


def main(args: list[str]) -> None:
    if args == ["run"]:
        run_resumable(OUT, _jobs())
    elif args == ["table"]:
        table()
    else:
        sys.exit("usage: offline_delay_ratio.py run | table")


if __name__ == "__main__":
    main(sys.argv[1:])
