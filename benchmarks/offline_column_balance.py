"""The linear column's energy balance, exact flow vs DMFT (issue 13; docs/offline_theory.md
§12.4, "the column's energy balance").

Gradient flow on the column u gives, per unit of tau (§8.1),

    E_train[r c (1 + eps s)] = -(eps / (2 alpha)) d P_u / d tau,

with c = alpha x . (u - u0) the column's output change on a training sample, s = x . u and
P_u = alpha^2 |u - u0|^2 / D its population power; dropping eps s next to 1 (A5', what the DMFT
solves) leaves E_train[r c] on the left.  This script checks the identity in the exact flow
(both forms) and measures it in the DMFT as derived and with closure A7 (``column_work`` of
``dmft_tau_curves``; P_u its ``linear_power``), at the Fig. 3(e) cell of
benchmarks/offline_dmft_channels.py (kappa = 5.5, alpha eps = 0.32, alpha / eps = 4.1) and at
kappa = 3, (alpha, eps) = (1, 0.02), seed 0, D = 100 and 400, the DMFT conditioned on the
training set.

    python benchmarks/offline_column_balance.py run     # -> offline_column_balance.json (~4 min)
    python benchmarks/offline_column_balance.py table   # -> offline_column_balance.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, nearest, run_or_table, write_table
from lazyrich_theory.theory.offline import offline_inputs, training_xi
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves
from offline_dmft_channels import _problem

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_column_balance.json"
TAUS = (0.3, 1.0, 3.0, 10.0, 20.0, 40.0)
#: (name, kappa, alpha eps, alpha / eps)
CELLS = (("fig3e", 5.5, 0.32, 4.1), ("k3", 3.0, 0.02, 50.0))
DS = (100, 400)
KINDS = ("exact", "dmft", "a7")


def _exact(p) -> dict:
    """Both sides of the identity at TAUS (the derivative by central differences of +-2 steps,
    tau = t / 100)."""
    vals: list[tuple[float, float, float]] = []

    def record(s, F):
        _, r = s.residuals(F)
        u = F @ s.z
        v = u - s.wbar0
        c = p.alpha * (s.X @ v)
        vals.append((float(np.mean(r * c)), float(np.mean(r * c * (1 + p.eps * (s.X @ u)))),
                     p.alpha**2 * float(v @ v) / p.D))
        return 0.0

    steps = sorted({int(round(100 * t)) + d for t in TAUS for d in (-2, 0, 2)})
    tr = lr.solve(p, steps[-1], method="flow", save_times=steps, observers={"w": record})
    at = {int(t): i for i, t in enumerate(tr.t)}
    out: dict = {"work": [], "work_full": [], "rhs": []}
    for tau in TAUS:
        n = int(round(100 * tau))
        dp = (vals[at[n + 2]][2] - vals[at[n - 2]][2]) / 0.04
        out["work"].append(vals[at[n]][0])
        out["work_full"].append(vals[at[n]][1])
        out["rhs"].append(-p.eps / (2 * p.alpha) * dp)
    return out


def _dmft(p, closure: str) -> dict:
    c = dmft_tau_curves(offline_inputs(p), 40.0, xi_train=training_xi(p),
                        column_closure=closure)
    dp = np.gradient(c["linear_power"], c["tau"])
    at = nearest(c["tau"], TAUS)
    return {"work": [float(c["column_work"][n]) for n in at],
            "rhs": [float(-p.eps / (2 * p.alpha) * dp[n]) for n in at]}


def _jobs():
    for name, kappa, ae, ratio in CELLS:
        for D in DS:
            p = _problem(D, 0, ratio, kappa=kappa, ae=ae)
            yield f"{name},{D},exact", (lambda p=p: _exact(p))
            yield f"{name},{D},dmft", (lambda p=p: _dmft(p, "dmft"))
            yield f"{name},{D},a7", (lambda p=p: _dmft(p, "least_squares"))


def table() -> None:
    done = json.loads(OUT.read_text())
    lines = markdown_head(
        "The linear column's energy balance: E[r c] against -(eps / 2 alpha) dP_u/dtau "
        "(docs/offline_theory.md §12.4)",
        "Seed 0, the DMFT conditioned on the training set. Each cell: left side / right side "
        "(the exact flow: E[r c] with eps s dropped, as the DMFT; 'exact, full': "
        "E[r c (1 + eps s)], for which the identity is exact).",
        ["cell", "D", "", *(f"τ = {t:g}" for t in TAUS)])
    for name, *_ in CELLS:
        for D in DS:
            for kind in KINDS:
                run = done.get(f"{name},{D},{kind}")
                if run is None:
                    continue
                rows = [(kind, run["work"])]
                if kind == "exact":
                    rows.append(("exact, full", run["work_full"]))
                for label, left in rows:
                    lines.append(f"| {name} | {D} | {label} | " + " | ".join(
                        f"{a:+.2e} / {b:+.2e}" for a, b in zip(left, run["rhs"])) + " |")
    write_table(HERE / "offline_column_balance.md", lines)


if __name__ == "__main__":
    run_or_table(OUT, _jobs, table)
