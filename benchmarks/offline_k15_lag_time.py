"""kappa = 1.5: when does the column's lag act?  The loss at alpha / eps = 200 minus that at 50
against tau, exact flow and the spread closure with the column at its finite speed, (12.2)
(docs/offline_theory.md §12.4, "The column at its finite speed": at D = 400 the closure
overstates the lag's effect at tau = 40 by about a half; this locates the overstatement in time).

alpha eps = 0.02, N = inf, D = 400, relative population loss at tau = 0.25 ... 40 (t = tau
(alpha / eps) D / 2 steps); exact: training seeds 0-5, paired; theory: training seed 0, Monte
Carlo draws 0-7, paired.

    python benchmarks/offline_k15_lag_time.py run     # ~6 min on one core
    python benchmarks/offline_k15_lag_time.py table   # -> offline_k15_lag_time.md
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from common import load_results, markdown_head, run_or_table, write_table
import lazyrich_theory as lr
from lazyrich_theory.theory.offline import offline_theory
from offline_k15_lag import PAIRS

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_k15_lag_time.json"
D, KAPPA, RATIOS = 400, 1.5, (50.0, 200.0)
TAUS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0)
SEEDS, DRAWS = range(6), range(8)


def _problem(ratio: float, seed: int) -> tuple[lr.Problem, np.ndarray]:
    alpha, eps = PAIRS[ratio]
    p = lr.Problem(D=D, P=int(round(KAPPA * D)), N=math.inf, alpha=alpha, eps=eps, seed=seed)
    return p, np.array([0] + [int(round(tau * ratio * D / 2)) for tau in TAUS])


def _relative(tr, st: np.ndarray) -> list[float]:
    """The population loss at the save times ``st`` (0 first) over its initial value."""
    t, L = np.asarray(tr.t, dtype=float), np.asarray(tr.population_loss, dtype=float)
    at = L[np.searchsorted(t, st)]
    if not np.allclose(t[np.searchsorted(t, st)], st):
        raise RuntimeError("the run did not save the asked times")
    return [float(x) for x in at[1:] / at[0]]


def _exact(ratio: float, seed: int) -> dict:
    p, st = _problem(ratio, seed)
    return {"loss": _relative(lr.solve(p, int(st[-1]), method="flow", save_times=st), st)}


def _theory(ratio: float, mc: int) -> dict:
    p, st = _problem(ratio, 0)
    tr = offline_theory(p, int(st[-1]), method="dmft", save_times=st, seed=mc,
                        column_closure="spread", column_speed="finite")
    return {"loss": _relative(tr, st)}


def _jobs():
    for s in SEEDS:
        for r in RATIOS:
            yield f"exact|{r:g}|{s}", lambda r=r, s=s: _exact(r, s)
    for mc in DRAWS:
        for r in RATIOS:
            yield f"theory|{r:g}|{mc}", lambda r=r, mc=mc: _theory(r, mc)


def _diff(done: dict, kind: str, indices) -> np.ndarray:
    """(pairs, taus): the loss at alpha / eps = 200 minus that at 50, per seed or draw."""
    rows = [np.subtract(done[f"{kind}|200|{i}"]["loss"], done[f"{kind}|50|{i}"]["loss"])
            for i in indices if f"{kind}|200|{i}" in done and f"{kind}|50|{i}" in done]
    return np.array(rows).reshape(-1, len(TAUS))


def table() -> None:
    done = load_results(OUT)
    ex, th = _diff(done, "exact", SEEDS), _diff(done, "theory", DRAWS)
    lines = markdown_head(
        "kappa = 1.5, D = 400: the lag's effect against tau",
        "Relative population loss at alpha / eps = 200 minus that at 50 (alpha eps = 0.02), "
        f"paired, ± its standard error: the exact flow on {len(ex)} training seeds, the spread "
        f"closure at the column's finite speed (12.2) on {len(th)} Monte Carlo draws "
        "(training seed 0).",
        ["tau", "exact", "(12.2)", "(12.2) - exact"])
    for j, tau in enumerate(TAUS):
        if len(ex) < 2 or len(th) < 2:
            break
        e, es = ex[:, j].mean(), ex[:, j].std(ddof=1) / math.sqrt(len(ex))
        t, ts = th[:, j].mean(), th[:, j].std(ddof=1) / math.sqrt(len(th))
        lines.append(f"| {tau:g} | {e:+.4f} ± {es:.4f} | {t:+.4f} ± {ts:.4f} | "
                     f"{t - e:+.4f} ± {math.hypot(es, ts):.4f} |")
    write_table(HERE / "offline_k15_lag_time.md", lines)


if __name__ == "__main__":
    run_or_table(OUT, _jobs, table)
