"""The linear column's population power over its mean square output on the training samples,
in time: the inequality behind closure A7 (issue 13; docs/offline_theory.md §12.4).

For a least-squares fit of a target with no preferred direction in X the ratio is
kappa / (kappa - 1); gradient flow from zero on a fixed target stays below it (the derivation
in the docs).  Measured here in the exact flow (N = inf, centered, convention A, seed 0,
(alpha, eps) = (1, 0.02), eta0 = 50 D / 200 so that one unit of tau is 100 GD steps) and in
the DMFT as derived (Gaussian xi, b2 = the seed's), at tau = 0.01 ... 40.

    python benchmarks/offline_column_ratio.py run     # resumable -> offline_column_ratio.json
    python benchmarks/offline_column_ratio.py table   # -> offline_column_ratio.md

Cost (2 shared cores): seconds per exact flow at D <= 200, ~1 min at D = 400; ~5 s per DMFT.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, run_or_table, write_table
from lazyrich_theory.theory.offline import offline_inputs
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_column_ratio.json"
TAUS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 40.0)
RUNS = [(kappa, D) for kappa in (2.0, 3.0, 5.5) for D in (100, 200, 400)]
ALPHA, EPS = 1.0, 0.02


def _problem(kappa: float, D: int):
    ratio = ALPHA / EPS
    return lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=ALPHA, eps=EPS,
                      eta0=ratio * D / 200.0, centered=True, convention="A", seed=0,
                      test_size=100)


def _exact(kappa: float, D: int) -> dict:
    p = _problem(kappa, D)

    def train(system, F):          # E_mu[(alpha x_mu . (u - u0))^2], the column on the samples
        u = F @ system.z - system.wbar0
        return float(np.mean((ALPHA * (system.X @ u)) ** 2))

    steps = [int(round(100 * tau)) for tau in TAUS]
    d = (lr.solve(p, steps[-1], method="flow", save_times=[0, *steps],
                  observers={"col_train": train}).to_pandas().reset_index().set_index("t"))
    L0 = float(d["population_loss"].iloc[0])
    return {"train": [float(d.loc[t, "col_train"]) / L0 for t in steps],
            "power": [float(d.loc[t, "linear_power"]) / L0 for t in steps]}


def _dmft(kappa: float, D: int) -> dict:
    c = dmft_tau_curves(offline_inputs(_problem(kappa, D)), TAUS[-1])
    L0 = float(c["population_loss"][0])
    at = [int(np.argmin(np.abs(c["tau"] - tau))) for tau in TAUS]
    return {"train": [float(c["column_train_power"][n]) / L0 for n in at],
            "power": [float(c["linear_power"][n]) / L0 for n in at]}


def _jobs():
    for kappa, D in RUNS:
        yield f"{kappa}|{D}|exact", (lambda k=kappa, D=D: _exact(k, D))
        yield f"{kappa}|{D}|dmft", (lambda k=kappa, D=D: _dmft(k, D))


def table() -> None:
    done = json.loads(OUT.read_text())
    lines = markdown_head(
        "The column's population power / its mean square output on the training samples",
        f"(alpha, eps) = ({ALPHA:g}, {EPS:g}), seed 0; each cell: exact / DMFT as derived; "
        "kappa / (kappa - 1) is the least-squares value, the bound of closure A7.",
        ["kappa", "D", "kappa / (kappa - 1)"] + [f"tau = {t:g}" for t in TAUS])
    for kappa, D in RUNS:
        e, d = done.get(f"{kappa}|{D}|exact"), done.get(f"{kappa}|{D}|dmft")
        if e is None or d is None:
            continue
        cells = [f"{pe / te:.2f} / {pd / td:.2f}" for pe, te, pd, td in
                 zip(e["power"], e["train"], d["power"], d["train"])]
        lines.append(f"| {kappa:g} | {D} | {kappa / (kappa - 1):.3f} | " + " | ".join(cells)
                     + " |")
    write_table(HERE / "offline_column_ratio.md", lines)


if __name__ == "__main__":
    run_or_table(OUT, _jobs, table)
