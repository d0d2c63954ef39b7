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
from pathlib import Path

from common import markdown_head, nearest, run_or_table, write_table
from lazyrich_theory.theory.offline import offline_inputs
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves
from offline_dmft_channels import _problem as channel_problem, column_series

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_column_ratio.json"
TAUS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 40.0)
RUNS = [(kappa, D) for kappa in (2.0, 3.0, 5.5) for D in (100, 200, 400)]
ALPHA, EPS = 1.0, 0.02


def _problem(kappa: float, D: int):
    """The channel split's problem (offline_dmft_channels._problem) at alpha / eps = 50."""
    return channel_problem(D, 0, ALPHA / EPS, kappa=kappa, ae=ALPHA * EPS)


def _exact(kappa: float, D: int) -> dict:
    return column_series(_problem(kappa, D), TAUS)


def _dmft(kappa: float, D: int) -> dict:
    c = dmft_tau_curves(offline_inputs(_problem(kappa, D)), TAUS[-1],
                        column_closure="dmft")
    L0 = float(c["population_loss"][0])
    at = nearest(c["tau"], TAUS)
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
