"""Where the linear column drags the spike: the spike's drive d mu / d tau = -E[xi r h] on the
training samples, split into the quadratic part's residual rho and the column's output
s = r - rho, in the exact flow and in the DMFT, with and without the column (issue 13;
docs/offline_theory.md §12.4, "where the drag acts").

The Fig. 3(e) cell of benchmarks/offline_dmft_channels.py (alpha eps = 0.32, kappa = 5.5;
alpha / eps = 4.1 with the column, 0.01 without; one unit of tau is 100 GD steps), seed 0, at
D = 100, 200, 400, 800; the DMFT conditioned on the training set (``xi_law="training"``, §8.7),
as derived (closure A7 leaves the spike unchanged, §12.4).  Exact: mu = |F^T betahat| / sqrt(D),
h_mu = (F^T betahat / |F^T betahat|) . (F^T x_mu) (the spike field), xi_mu = sqrt(D) betahat . x_mu;
d mu / d tau = -E[xi r h] holds exactly.  DMFT: ``spike_drive`` and ``spike_drive_column``
of ``dmft_tau_curves``.

    python benchmarks/offline_dmft_drive.py run     # -> offline_dmft_drive.json (resumable,
                                                    #    ~25 min; the exact flows ~1 min each at
                                                    #    D = 400, ~7 min at D = 800)
    python benchmarks/offline_dmft_drive.py table   # -> offline_dmft_drive.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, nearest, run_or_table, write_table
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.theory.offline import offline_inputs, training_xi
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves
from offline_dmft_channels import AE, RATIOS, TAU_MAX, _problem

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_dmft_drive.json"
TAUS = (0.5, 1.0, 2.0, 3.0, 6.0, 10.0, 20.0, 40.0)
DS = (100, 200, 400, 800)


def _exact(p) -> dict:
    """Spike mu^2 D and the drive's rho and s parts at TAUS."""
    system = ReducedSystem.build(p, p.data())
    bh = system.beta / np.linalg.norm(system.beta)
    xi = np.sqrt(p.D) * system.X @ bh
    rows: list[tuple[float, float, float]] = []

    def record(s, F):
        XF, r = s.residuals(F)
        col = p.alpha * (s.X @ (F @ s.z - s.wbar0))
        m = F.T @ bh
        h = XF @ (m / np.linalg.norm(m))
        rows.append((float(m @ m), -float(np.mean(xi * (r - col) * h)),
                     -float(np.mean(xi * col * h))))
        return 0.0

    steps = [int(round(100 * tau)) for tau in TAUS]
    tr = lr.solve(p, steps[-1], method="flow", save_times=steps, observers={"drive": record})
    at = [list(tr.t).index(s) for s in steps]       # one observer call per save time
    return {"spike": [rows[i][0] for i in at], "rho": [rows[i][1] for i in at],
            "s": [rows[i][2] for i in at]}


def _dmft(p, linear_column: bool) -> dict:
    c = dmft_tau_curves(offline_inputs(p), TAU_MAX, xi_train=training_xi(p),
                        linear_column=linear_column, column_closure="dmft")
    at = nearest(c["tau"], TAUS)
    drive, col = c["spike_drive"], c["spike_drive_column"]
    return {"spike": [float(c["spike_amplitude2"][n]) * p.D for n in at],
            "rho": [float(drive[n] - col[n]) for n in at], "s": [float(col[n]) for n in at]}


def _jobs():
    for D in DS:
        for model, ratio in RATIOS.items():
            p = _problem(D, 0, ratio)
            yield f"{model},{D},exact", (lambda p=p: _exact(p))
            yield f"{model},{D},dmft", (lambda p=p, m=model: _dmft(p, m == "linear"))


def _rate(run: dict, D: int) -> np.ndarray:
    """The spike's growth rate per unit of unlearned signal, (d mu / d tau) / mu divided by
    1 - S / S_inf (S = betahat M betahat, S_inf = D b2 / (alpha eps) its saturation value;
    b2 of seed 0's teacher)."""
    S = np.array(run["spike"])
    s_inf = D * offline_inputs(_problem(D, 0, RATIOS["linear"])).b2 / AE
    drive = np.array(run["rho"]) + np.array(run["s"])
    return drive / np.sqrt(S / D) / (1.0 - S / s_inf)


def table() -> None:
    done = json.loads(OUT.read_text())
    head = ["D", "", *(f"τ = {t:g}" for t in TAUS)]
    lines = markdown_head(
        "The spike's drive with the linear column, exact flow vs DMFT (docs/offline_theory.md "
        "§12.4)",
        "Fig. 3(e) cell (alpha eps = 0.32, kappa = 5.5, alpha/eps = 4.1; without the column "
        "0.01), seed 0, the DMFT conditioned on the training set. Rows: the spike "
        "betahat M betahat with / without the column; the column's part of the drive "
        "-E[xi s h] and the quadratic part's -E[xi rho h] (with the column); their ratio, "
        "the share of the quadratic part's drive the column cancels; the spike's growth rate "
        "(d mu / d tau) / mu per unit of unlearned signal 1 - S / S_inf, with and without the "
        "column.", head)
    for D in DS:
        for kind in ("exact", "dmft"):
            lin, quad = done.get(f"linear,{D},{kind}"), done.get(f"quadratic,{D},{kind}")
            if lin is None or quad is None:
                continue
            ratio = np.array(lin["spike"]) / np.array(quad["spike"])
            share = -np.array(lin["s"]) / np.array(lin["rho"])
            rows = {"spike ratio": ratio, "-E[xi s h]": lin["s"], "-E[xi rho h]": lin["rho"],
                    "cancelled share": share, "rate, with the column": _rate(lin, D),
                    "rate, without": _rate(quad, D)}
            for name, vals in rows.items():
                fmt = ("{:+.4f}" if name.startswith("-E") else
                       "{:.4f}" if name.startswith("rate") else "{:.3f}")
                lines.append(f"| {D} | {kind}: {name} | "
                             + " | ".join(fmt.format(v) for v in vals) + " |")
    write_table(HERE / "offline_dmft_drive.md", lines)


if __name__ == "__main__":
    run_or_table(OUT, _jobs, table)
