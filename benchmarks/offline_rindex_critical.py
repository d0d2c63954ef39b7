"""The critical kappa of finite-rank inits: the r-index DMFT's prediction against the exact
flow at D = 100, 200, 400, 800 (issue 13; docs/offline_theory.md §13.5).

Setting of ``offline_rindex.py`` (``aligned:R:0.6``, alpha = 1, eps = 0.25, N = inf, centered,
every seed's teacher rescaled to b2 = 1, one GD step = 0.05 in tau).  The critical kappa at
horizon tau_h is the kappa at which the population loss at tau_h is half its initial value.

* theory: ``critical_kappa(inp, "rindex", tau_h=...)`` (Brent's method on the r-index DMFT, Ns =
  400), ``MC`` Monte Carlo seeds;
* exact: the seed-mean relative loss at tau_h on a kappa grid (spacing 0.125), its crossing of
  1/2 by linear interpolation between the two grid points that bracket it; the standard error
  from a bootstrap over seeds.

    python benchmarks/offline_rindex_critical.py exact    # resumable, ~1 h (D = 800 dominates)
    python benchmarks/offline_rindex_critical.py theory   # resumable, ~4-6 min per run
    python benchmarks/offline_rindex_critical.py table    # -> offline_rindex_critical.md
    python benchmarks/offline_rindex_critical.py horizon  # exact kappa_c vs tau_h (~10 min)
    python benchmarks/offline_rindex_critical.py plot     # -> docs/gallery/rindex-critical.png
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import half_crossing, run_resumable
from lazyrich_theory.theory.offline import critical_kappa, rindex_inputs
from offline_rindex import DTAU, _problem, _unit_teacher

HERE = Path(__file__).resolve().parent
EXACT_OUT = HERE / "offline_rindex_critical_exact.json"
THEORY_OUT = HERE / "offline_rindex_critical_theory.json"
RANKS = (1, 2)
TAUS_H = (15.0, 30.0)
GRID = (1.875, 2.0, 2.125, 2.25, 2.375, 2.5, 2.625)
SEEDS = {100: range(8), 200: range(8), 400: range(8), 800: range(4)}
#: Monte Carlo seeds of the theory per horizon (one run's kappa_c moves by ~+-0.07 at Ns = 400:
#: the population dynamics' own finite-Ns fluctuations, which shrink slowly with Ns -- the loss
#: spread at kappa = 2 is 0.055 at Ns = 400 and 0.035 at Ns = 1600 --, so seeds are averaged).
MC = {15.0: 8, 30.0: 4}
NS = 400


def _exact_jobs():
    steps = int(round(max(TAUS_H) / DTAU))
    at = np.array([0.0, *TAUS_H]) / DTAU

    def one(p):
        tr = lr.solve(p, steps, save_times=at.astype(int), data=_unit_teacher(p))
        pop = np.interp(at, tr.t, tr.population_loss)
        train = np.interp(at, tr.t, tr.train_loss)
        return {"pop": [float(x) for x in pop[1:] / pop[0]],
                "train": [float(x) for x in train[1:] / pop[0]]}

    for D, seeds in SEEDS.items():
        for R in RANKS:
            for kappa in GRID:
                for s in seeds:
                    yield f"{R}|{D}|{kappa}|{s}", (lambda R=R, D=D, k=kappa, s=s: one(
                        _problem(f"aligned:{R}:0.6", k, True, D, s)))


def _theory_jobs():
    for tau_h in TAUS_H:
        for R in RANKS:
            p = _problem(f"aligned:{R}:0.6", 3.0, True, 200, 0)
            inp = dataclasses.replace(rindex_inputs(p, _unit_teacher(p)), b2=1.0)
            for mc in range(MC[tau_h]):
                yield f"{R}|{tau_h}|{mc}", (lambda inp=inp, t=tau_h, mc=mc: {
                    "kappa_c": critical_kappa(inp, "rindex", tau_h=t, Ns=NS, seed=mc).value})


def exact():
    run_resumable(EXACT_OUT, _exact_jobs(), indent=None)


def theory():
    run_resumable(THEORY_OUT, _theory_jobs())


def _exact_kc(done: dict, R: int, D: int, j: int, boot: int = 400) -> tuple[float, float]:
    seeds = list(SEEDS[D])
    L = np.array([[done[f"{R}|{D}|{k}|{s}"]["pop"][j] for s in seeds] for k in GRID])
    kap = np.array(GRID)
    rng = np.random.default_rng(0)
    draws = [half_crossing(kap, L[:, rng.integers(0, len(seeds), len(seeds))].mean(1))
             for _ in range(boot)]
    return half_crossing(kap, L.mean(1)), float(np.nanstd(draws, ddof=1))


def table():
    ex, th = json.loads(EXACT_OUT.read_text()), json.loads(THEORY_OUT.read_text())
    lines = ["# Critical kappa of finite-rank inits: r-index DMFT vs exact flow "
             "(docs/offline_theory.md §13.5)", "",
             "aligned:R:0.6, alpha = 1, eps = 0.25, N = inf, b2 = 1, one GD step = 0.05 in tau. "
             "kappa_c(tau_h): the kappa at which the population loss at tau_h is half its "
             "initial value. Theory: mean ± sd/sqrt(n) of "
             + ", ".join(f"{n} (tau_h = {t:g})" for t, n in MC.items())
             + f" Monte Carlo seeds (Ns = {NS}); exact: crossing of the seed-mean loss on the grid {GRID} ± bootstrap "
             "standard error (seeds per D: "
             + ", ".join(f"{D}: {len(s)}" for D, s in SEEDS.items()) + ").", "",
             "| R | tau_h | theory | " + " | ".join(f"exact D = {D}" for D in SEEDS) + " |",
             "|" + "---|" * (3 + len(SEEDS))]
    for R in RANKS:
        for j, tau_h in enumerate(TAUS_H):
            v = np.array([th[f"{R}|{tau_h}|{mc}"]["kappa_c"] for mc in range(MC[tau_h])
                          if f"{R}|{tau_h}|{mc}" in th])
            cell = (f"{v.mean():.3f} ± {v.std(ddof=1) / math.sqrt(v.size):.3f}" if v.size > 1
                    else f"{v.mean():.3f}" if v.size else "—")
            exs = []
            for D in SEEDS:
                try:
                    kc, se = _exact_kc(ex, R, D, j)
                    exs.append(f"{kc:.3f} ± {se:.3f}")
                except KeyError:
                    exs.append("—")
            lines.append(f"| {R} | {tau_h:g} | {cell} | " + " | ".join(exs) + " |")
    (HERE / "offline_rindex_critical.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _theory_kc(th: dict, R: int, tau_h: float) -> tuple[float, float] | None:
    v = np.array([th[f"{R}|{tau_h}|{mc}"]["kappa_c"] for mc in range(MC[tau_h])
                  if f"{R}|{tau_h}|{mc}" in th])
    if v.size < 2:
        return None
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def plot():
    """docs/gallery/rindex-critical.png: the exact population loss at tau_h = 15 against kappa
    at D = 100-800 (rank 1, rank 2) with the theory's kappa_c, and kappa_c against D."""
    from lazyrich_theory.plotting.mpl import save, subplots

    ex, th = json.loads(EXACT_OUT.read_text()), json.loads(THEORY_OUT.read_text())
    fig, axes = subplots(1, 3, figsize=(14.0, 4.6), layout="constrained")
    shades = dict(zip(SEEDS, (0.3, 0.5, 0.7, 0.95)))
    for ax, R in zip(axes[:2], RANKS):
        for D in SEEDS:
            L = np.array([[ex[f"{R}|{D}|{k}|{s}"]["pop"][0] for s in SEEDS[D]] for k in GRID])
            se = L.std(1, ddof=1) / math.sqrt(L.shape[1])
            ax.errorbar(GRID, L.mean(1), se, marker="o", ms=4, lw=1.2, capsize=2,
                        color="tab:blue", alpha=shades[D], label=f"exact, D = {D}")
        kc = _theory_kc(th, R, TAUS_H[0])
        if kc is not None:
            ax.axvspan(kc[0] - kc[1], kc[0] + kc[1], color="k", alpha=0.15, lw=0)
            ax.axvline(kc[0], color="k", ls="--", lw=1.3, label="r-index DMFT κ_c (± se)")
        ax.axhline(0.5, color="0.5", ls=":", lw=0.8)
        ax.set_xlabel("κ = P/D")
        ax.set_ylabel(f"population loss at τ = {TAUS_H[0]:g} / initial")
        ax.set_title(f"aligned:{R}:0.6 (rank {R})", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    Ds = np.array(list(SEEDS))
    for R, color in zip(RANKS, ("tab:blue", "tab:red")):
        for j, (tau_h, mk) in enumerate(zip(TAUS_H, ("o", "s"))):
            pts = np.array([_exact_kc(ex, R, D, j) for D in SEEDS])
            ax.errorbar(Ds * (1.0 + 0.04 * j), pts[:, 0], pts[:, 1], marker=mk, ls="-",
                        color=color, ms=5, capsize=2, lw=1.0, mfc="white" if j else color,
                        label=f"exact, rank {R}, τ_h = {tau_h:g}")
            kc = _theory_kc(th, R, tau_h)
            if kc is not None:
                ax.axhspan(kc[0] - kc[1], kc[0] + kc[1], color=color, alpha=0.12, lw=0)
                ax.axhline(kc[0], color=color, ls="--" if j == 0 else ":", lw=1.2,
                           label=f"r-index DMFT (D → ∞), rank {R}, τ_h = {tau_h:g}")
    ax.set_xscale("log")
    ax.set_xticks(Ds, [str(D) for D in Ds])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("D")
    ax.set_ylabel("critical κ (loss at τ_h = ½ initial)")
    ax.set_title("critical κ against D", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Critical κ of finite-rank inits: the r-index DMFT (no fitted constant) against "
                 "the exact GD (α = 1, ε = 0.25, N = ∞, b₂ = 1)", fontsize=10)
    path = HERE.parent / "docs" / "gallery" / "rindex-critical.png"
    save(fig, path, dpi=130)
    print(path)


HORIZON_OUT = HERE / "offline_rindex_critical_horizon.json"
HORIZONS = (15.0, 30.0, 60.0, 120.0, 250.0, 500.0)
HORIZON_GRID = (*GRID, 2.75, 3.0)


def horizon():
    """The exact kappa_c against the horizon (rank 1, D = 200, 8 seeds, tau_h up to 500: the
    late rise of the population loss near the threshold, docs §13.5); resumable, ~10 min."""
    at = np.array([0.0, *HORIZONS]) / DTAU

    def one(p):
        tr = lr.solve(p, int(at[-1]), data=_unit_teacher(p))
        pop = np.interp(at, tr.t, tr.population_loss)
        train = np.interp(at, tr.t, tr.train_loss)
        return {"pop": [float(x) for x in pop[1:] / pop[0]],
                "train": [float(x) for x in train[1:] / pop[0]]}

    jobs = ((f"{k}|{s}", (lambda k=k, s=s: one(_problem("aligned:1:0.6", k, True, 200, s))))
            for k in HORIZON_GRID for s in range(8))
    done = run_resumable(HORIZON_OUT, jobs)
    L = np.array([[np.mean([done[f"{k}|{s}"]["pop"][j] for s in range(8)]) for j in
                   range(len(HORIZONS))] for k in HORIZON_GRID])
    print("| tau_h | " + " | ".join(f"{h:g}" for h in HORIZONS) + " |\n|" +
          "---|" * (1 + len(HORIZONS)))
    print("| exact kappa_c (D = 200, rank 1) | " + " | ".join(
        f"{half_crossing(np.array(HORIZON_GRID), L[:, j]):.3f}" for j in range(len(HORIZONS)))
        + " |")


if __name__ == "__main__":
    commands = {"exact": exact, "theory": theory, "table": table, "horizon": horizon,
                "plot": plot}
    commands[sys.argv[1] if len(sys.argv) > 1 else "table"]()
