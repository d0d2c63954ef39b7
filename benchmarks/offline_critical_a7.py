"""The DMFT's critical kappa, as derived and under the opt-in column closures A7 and spread
(12.1) (its memorisation to first order and resolved), against the exact flow's (issue 13;
docs/offline_theory.md §9, §12.4).

The critical kappa here is the horizon one: the kappa at which the relative population loss
at t = 1000 D GD steps (tau = 2 eta0 eps t / (alpha D) = 40 for both (alpha, eps) below,
eta0 = 1) is 1/2.

* exact: gradient flow at N = inf (centered, convention A, the problem's own teacher) on a
  kappa grid, seeds 0-3; the seed-mean loss interpolated linearly in kappa where it crosses
  1/2 (grid spacing 0.25), with its standard error from the seeds' spread;
* theory: ``critical_kappa(inp, "dmft", column_closure=...)`` at b2 = 1 (the D -> inf teacher
  strength; the seeds' b2 scatter around it by ~sqrt(2 / D)), Ns = 400, two Monte Carlo
  seeds (the bisection's tolerance is 0.1; one seed's value moves by ~0.1-0.2 with Ns).

    python benchmarks/offline_critical_a7.py exact   # resumable -> offline_critical_a7_exact.json
    python benchmarks/offline_critical_a7.py theory  # resumable -> offline_critical_a7.json
    python benchmarks/offline_critical_a7.py table   # -> offline_critical_a7.md

(``exact`` and ``theory`` write different files and can run at the same time.)

Cost (2 shared cores): exact ~1 s (D = 50) to ~45 s (D = 400) per flow, 160 flows (40 at
D = 400); theory ~20-50 s per bisection, 32 bisections: ~45 min in all.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import half_crossing, markdown_head, run_resumable, write_table
from lazyrich_theory.theory.offline import OfflineInputs, critical_kappa

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_critical_a7.json"
OUT_EXACT = HERE / "offline_critical_a7_exact.json"
DS = (50, 100, 200, 400)
AE = ((1.0, 0.02), (2.0, 0.04))
SEEDS = (0, 1, 2, 3)
MC_SEEDS = (0, 1)
#: The exact flow's kappa grid (D = 400: where the smaller D put the crossing).
KAPPAS = {50: (2.5, 2.75, 3.0, 3.25), 100: (2.5, 2.75, 3.0, 3.25, 3.5),
          200: (2.75, 3.0, 3.25, 3.5, 3.75, 4.0), 400: (3.0, 3.25, 3.5, 3.75, 4.0)}
CLOSURES = ("dmft", "least_squares", "spread", "resolved")
#: their column heads
NAMES = {"dmft": "DMFT", "least_squares": "A7", "spread": "spread (first order)",
         "resolved": "spread (resolved)"}
#: ``critical_kappa`` options of each ("resolved": the spread closure as it runs by default,
#: its bulk memorisation resolved through each sample's resolvent; "spread": first order)
OPTIONS = {"dmft": {"column_closure": "dmft"}, "least_squares": {"column_closure":
                                                                  "least_squares"},
           "spread": {"column_closure": "spread", "column_speed": "instantaneous",
                      "spread_response": "first_order"},
           "resolved": {"column_closure": "spread", "column_speed": "instantaneous",
                        "spread_response": "resolved"}}


def _exact(D: int, kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p = lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=alpha, eps=eps, seed=seed)
    T = 1000 * D
    pop = np.asarray(lr.solve(p, T, method="flow", save_times=[0, T]).population_loss)
    return {"final": float(pop[-1] / pop[0])}


def _theory(D: int, alpha: float, eps: float, closure: str, mc: int) -> dict:
    inp = OfflineInputs(kappa=5.0, alpha=alpha, eps=eps, eta0=1.0, b2=1.0, D=D)
    return {"kappa_c": critical_kappa(inp, "dmft", Ns=400, seed=mc, **OPTIONS[closure]).value}


def _theory_jobs():
    for D in DS:
        for a, e in AE:
            for c in CLOSURES:
                for mc in MC_SEEDS:
                    yield (f"theory|{D}|{a}|{e}|{c}|{mc}",
                           lambda D=D, a=a, e=e, c=c, mc=mc: _theory(D, a, e, c, mc))


def _exact_jobs():
    for D in DS:
        for a, e in AE:
            for k in KAPPAS[D]:
                for s in SEEDS:
                    yield (f"exact|{D}|{a}|{e}|{k}|{s}",
                           lambda D=D, k=k, a=a, e=e, s=s: _exact(D, k, a, e, s))


def exact_crossing(done: dict, D: int, a: float, e: float) -> tuple[float, float, str]:
    """(kappa where the seed-mean loss crosses 1/2, its standard error, a note) on seeds
    SEEDS of the grid KAPPAS[D] (:func:`crossing`); NaN where the grid does not bracket the
    crossing."""
    ks, rows = [], []
    for k in KAPPAS[D]:
        vals = [done[f"exact|{D}|{a}|{e}|{k}|{s}"]["final"] for s in SEEDS
                if f"exact|{D}|{a}|{e}|{k}|{s}" in done]
        if len(vals) == len(SEEDS):
            ks.append(k)
            rows.append(vals)
    kc, se = crossing(ks, rows)
    return kc, se, "" if math.isfinite(kc) else ("not bracketed" if ks else "not run")


def crossing(ks: list[float], rows: list[list[float]]) -> tuple[float, float]:
    """(kappa where the mean of each row of samples (one row per kappa of the increasing grid
    ``ks``) crosses 1/2 (``common.half_crossing``), its standard error): the standard error of
    the mean at the crossing (the samples' sd there, interpolated, / sqrt(samples)) over the
    slope of the mean in kappa; NaNs where the grid does not bracket the crossing."""
    mean = [float(np.mean(r)) for r in rows]
    kc = half_crossing(ks, mean)
    if not math.isfinite(kc):
        return math.nan, math.nan
    i = int(np.searchsorted(ks, kc))                  # the bracket is (i - 1, i)
    slope = (mean[i - 1] - mean[i]) / (ks[i] - ks[i - 1])
    se = [float(np.std(r, ddof=1)) / math.sqrt(len(r)) for r in rows]
    return kc, float(np.interp(kc, ks, se)) / slope


def table() -> None:
    done = {**json.loads(OUT_EXACT.read_text()), **json.loads(OUT.read_text())}
    lines = markdown_head(
        "Critical kappa at tau = 40: exact flow, DMFT, DMFT + A7, DMFT + spread (first order "
        "and resolved)",
        "kappa at which the relative population loss at t = 1000 D is 1/2. Exact: seed mean "
        f"over seeds {SEEDS[0]}-{SEEDS[-1]}, linear interpolation on the kappa grid, +- its "
        "standard error (the seed mean's error in the loss over the slope in kappa). Theory: "
        "critical_kappa(..., 'dmft') at b2 = 1, Ns = 400, Monte Carlo seeds "
        f"{', '.join(map(str, MC_SEEDS))} (mean; both values in brackets).",
        ["D", "alpha, eps", "exact"] + [h for c in CLOSURES
                                        for h in (NAMES[c], f"{NAMES[c]} - exact")])
    for D in DS:
        for a, e in AE:
            ex, sd, note = exact_crossing(done, D, a, e)
            cells = []
            for c in CLOSURES:
                vals = [done.get(f"theory|{D}|{a}|{e}|{c}|{mc}", {}).get("kappa_c")
                        for mc in MC_SEEDS]
                vals = [v for v in vals if v is not None]
                if not vals:
                    cells += ["—", "—"]
                    continue
                m = float(np.mean(vals))
                cells += [f"{m:.2f} ({' / '.join(f'{v:.2f}' for v in vals)})",
                          f"{m - ex:+.2f}" if math.isfinite(ex) else "—"]
            lines.append(f"| {D} | {a:g}, {e:g} | "
                         + (f"{ex:.2f} ± {sd:.2f}" if math.isfinite(ex) else note)
                         + " | " + " | ".join(cells) + " |")
    write_table(HERE / "offline_critical_a7.md", lines)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "table"
    if cmd == "exact":
        run_resumable(OUT_EXACT, _exact_jobs())
    elif cmd == "theory":
        run_resumable(OUT, _theory_jobs())
    elif cmd != "table":
        raise SystemExit(f"unknown command {cmd!r}: exact, theory or table")
    table()
