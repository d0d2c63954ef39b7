"""kappa = 1.5: the exact flow's loss at tau = 40 against the linear column's relaxation time
(docs/offline_theory.md §12.4, "kappa = 1.5: the column's lag").

The spread closure takes the linear column as instantaneous; at kappa = 1.5 and alpha / eps =
50 its slowest relaxation time eps kappa / (alpha (sqrt(kappa) - 1)^2) is 0.59 in tau, close to
the closure's limit of 1.  At alpha eps = 0.02 held fixed the closure does not depend on alpha /
eps at all (its curve on the DMFT clock is the same), while the column's lag scales as eps /
alpha.  So the exact flow at several alpha / eps, on the same training seeds (paired), shows
how much of the closure's error at kappa = 1.5 is the lag it neglects: the exact relative
population loss at tau = 40 (T = 20 (alpha / eps) D steps), N = inf, each seed's own teacher
and training set.

    python benchmarks/offline_k15_lag.py run 200   # 32 seeds x 4 alpha / eps (~10 s a seed)
    python benchmarks/offline_k15_lag.py run 400   # 24 seeds x 4 (~1 min a seed, one core)
    python benchmarks/offline_k15_lag.py run 800   # 8 seeds x alpha / eps = 50, 200 only
    python benchmarks/offline_k15_lag.py table     # -> offline_k15_lag.md
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from common import load_results, markdown_head, run_resumable, write_table
import lazyrich_theory as lr
from lazyrich_theory.theory.offline.dmft import column_lag

HERE = Path(__file__).resolve().parent
KAPPA, ALPHA_EPS = 1.5, 0.02
#: alpha / eps per D (the reference 50 first), and the seeds
RATIOS = {200: (50.0, 12.5, 200.0, 800.0), 400: (50.0, 12.5, 200.0, 800.0), 800: (50.0, 200.0)}
SEEDS = {200: range(32), 400: range(24), 800: range(8)}


def _path(D: int) -> Path:
    return HERE / f"offline_k15_lag_D{D}.json"


#: (alpha, eps) at each alpha / eps, alpha eps = ALPHA_EPS
PAIRS = {50.0: (1.0, 0.02), 12.5: (0.5, 0.04), 200.0: (2.0, 0.01), 800.0: (4.0, 0.005)}


def _alpha_eps(ratio: float) -> tuple[float, float]:
    return PAIRS[ratio]


def _one(D: int, ratio: float, seed: int) -> dict:
    alpha, eps = _alpha_eps(ratio)
    p = lr.Problem(D=D, P=int(round(KAPPA * D)), N="inf", alpha=alpha, eps=eps, seed=seed)
    tr = lr.solve(p, int(round(20 * ratio)) * D, method="flow")
    return {"final": float(tr.population_loss[-1] / tr.population_loss[0])}


def run(D: int) -> None:
    run_resumable(_path(D), ((f"{r:g}|{s}", lambda r=r, s=s: _one(D, r, s))
                             for s in SEEDS[D] for r in RATIOS[D]))


def paired(D: int, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact losses at ``ratio`` (alpha / eps) and their differences from alpha / eps =
    50 on the same seeds, over the seeds where both ran at D."""
    done = load_results(_path(D))
    pairs = [(done[k]["final"], done[k50]["final"]) for s in SEEDS[D]
             if (k := f"{ratio:g}|{s}") in done and (k50 := f"50|{s}") in done]
    x, x50 = np.array(pairs).reshape(-1, 2).T
    return x, x - x50


def _rows(D: int) -> list[str]:
    rows = []
    for r in RATIOS[D]:
        x, d = paired(D, r)
        if len(d) < 2:
            continue
        rows.append(f"| {D} | {r:g} | {column_lag(KAPPA, *_alpha_eps(r)):.3f} | {len(d)} | "
                    f"{x.mean():.3f} | {d.mean():+.4f} ± {d.std(ddof=1) / math.sqrt(len(d)):.4f} |")
    return rows


def lag_line(D: int) -> tuple[int, np.ndarray, np.ndarray] | None:
    """The paired seeds' loss against the lag, a line through every alpha / eps (least
    squares on the per-seed differences from alpha / eps = 50): (seeds, (slope, its value at
    lag 0 minus that at 50, the loss of an instantaneous column), their standard errors from
    the seeds' scatter (jackknife)); None with fewer than 3 seeds."""
    done = load_results(_path(D))
    seeds = [s for s in SEEDS[D] if all(f"{r:g}|{s}" in done for r in RATIOS[D])]
    if len(seeds) < 3:
        return None
    lags = np.array([column_lag(KAPPA, *_alpha_eps(r)) for r in RATIOS[D]])
    diff = np.array([[done[f"{r:g}|{s}"]["final"] - done[f"50|{s}"]["final"]
                      for r in RATIOS[D]] for s in seeds])

    def fit(rows: np.ndarray) -> tuple[float, float]:
        slope = float(np.polyfit(lags, rows.mean(0), 1)[0])
        return slope, -slope * lags[0]          # the line's lag-0 value minus lag(50)'s
    est = fit(diff)
    jack = np.array([fit(np.delete(diff, i, 0)) for i in range(len(seeds))])
    se = np.sqrt((len(seeds) - 1) * ((jack - jack.mean(0)) ** 2).mean(0))
    return len(seeds), np.array(est), se


def _slope(D: int) -> str | None:
    """:func:`lag_line` as a sentence."""
    line = lag_line(D)
    if line is None:
        return None
    n, est, se = line
    return (f"D = {D} ({n} seeds): slope {est[0]:+.4f} ± {se[0]:.4f} per unit lag; "
            f"an instantaneous column (lag 0) minus alpha / eps = 50: {est[1]:+.4f} ± "
            f"{se[1]:.4f}")


def table() -> None:
    lines = markdown_head(
        "kappa = 1.5: the exact loss at tau = 40 against the linear column's lag",
        "alpha eps = 0.02, N = inf, relative population loss at tau = 40 (20 (alpha / eps) D "
        "steps), the same training seeds at every alpha / eps. Lag: eps kappa / (alpha "
        "(sqrt(kappa) - 1)^2), the column's slowest relaxation time in tau, which the spread "
        "closure takes as 0 (its curve does not depend on alpha / eps at fixed alpha eps). "
        "Difference: paired, from alpha / eps = 50, ± its standard error over seeds.",
        ["D", "alpha / eps", "lag", "seeds", "exact: mean", "minus alpha / eps = 50"])
    for D in RATIOS:
        lines += _rows(D)
    lines += ["", "Straight line in the lag through the paired differences:", ""]
    lines += [f"- {s}" for D in RATIOS if (s := _slope(D))]
    write_table(HERE / "offline_k15_lag.md", lines)


def main(args: list[str]) -> None:
    if args[:1] == ["run"] and len(args) == 2 and args[1] in ("200", "400", "800"):
        run(int(args[1]))
    elif args == ["table"]:
        table()
    else:
        sys.exit("usage: offline_k15_lag.py run 200|400|800 | table")


if __name__ == "__main__":
    main(sys.argv[1:])
