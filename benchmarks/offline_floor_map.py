"""Where the flow ends, over (kappa, m = alpha eps / b2): the tau -> inf phase diagram of the
free-column interpolant (issue 13; docs/offline_theory.md §15.5).

The interpolant's floor depends on (alpha, eps) only through m = alpha eps / b2 as alpha / eps
-> inf (§15.5).  ``run`` maps its relative tau -> inf population loss at D = 100 over kappa x m
(alpha / eps = 1e4, 4 training sets per cell, each at its own b2); ``exact`` checks the map
against the exact gradient flow (alpha / eps = 50, tau = 640) on both sides of the predicted
critical kappa at three m; ``plot`` draws the map with its 1/2 and 0.1 contours and the exact
runs.

    python benchmarks/offline_floor_map.py run     # resumable, ~5 min
    python benchmarks/offline_floor_map.py exact   # resumable, ~1 min per exact run
    python benchmarks/offline_floor_map.py plot    # -> docs/gallery/floor_map.png + .md table
    python benchmarks/offline_floor_map.py dscale  # critical kappa against D at three m
                                                   # (resumable; D = 400 ~10 min per m)
    python benchmarks/offline_floor_map.py smallm  # m = 1e-4 (the trace-minimisation limit,
                                                   # docs §15.6), D = 50-400 (~15 min)
    python benchmarks/offline_floor_map.py smallm-large  # the same at D = 800 (resumable)
    python benchmarks/offline_floor_map.py above   # kappa = 5, 9: the loss against D
    python benchmarks/offline_floor_map.py spike   # the spike fraction and bulk trace against D
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import half_crossing, markdown_head, run_resumable
from lazyrich_theory.theory.offline.implicit_bias import entropic_interpolant
from lazyrich_theory.theory.offline.inputs import input_fields

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_floor_map.json"
EXACT_OUT = HERE / "offline_floor_map_exact.json"
D = 100
SEEDS = range(4)
KAPPAS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
MS = tuple(float(f"{m:.3g}") for m in np.geomspace(0.003, 1.0, 11))
#: alpha / eps of the map (the free-column limit to < 1e-4) and of the exact checks (the paper's)
RATIO_MAP, RATIO_EXACT = 1e4, 50.0
#: exact checks: four columns of the map (m on its grid), the kappas around the crossing
EXACT_MS = (0.003, 0.0548, 0.313, 1.0)
EXACT_KAPPAS = (2.0, 2.5, 3.0, 3.5, 4.0, 5.0)
TAU = 640.0


def _problem(kappa: float, m: float, seed: int, ratio: float, D: int = D):
    """The fig1 problem at (D, kappa, seed) with alpha eps = m b2 (this seed's b2) and
    alpha / eps = ratio."""
    p = lr.preset("fig1").replace(N=math.inf, D=D, P=int(round(kappa * D)), seed=seed)
    ae = m * input_fields(p)["b2"]                     # b2 = 2 tau |beta|^2 / D, this seed's
    return p.replace(alpha=math.sqrt(ae * ratio), eps=math.sqrt(ae / ratio))


def _limit_loss(kappa: float, m: float, seed: int, D_: int) -> dict:
    """One interpolant of the free-column limit (alpha / eps = RATIO_MAP) at (kappa, m, seed, D):
    {"loss": its relative tau -> inf population loss, "spike_fraction", "bulk_trace",
    "linear_power": the LongTimeState's}."""
    st = entropic_interpolant(_problem(kappa, m, seed, RATIO_MAP, D_))
    return {"loss": st.population_loss, "spike_fraction": st.spike_fraction,
            "bulk_trace": st.bulk_trace, "linear_power": st.linear_power}


def _jobs():
    for kappa in KAPPAS:
        for m in MS:
            for seed in SEEDS:
                yield f"{kappa}|{m}|{seed}", (lambda kappa=kappa, m=m, seed=seed:
                                              _limit_loss(kappa, m, seed, D))


def _exact_jobs():
    for m in EXACT_MS:
        for kappa in EXACT_KAPPAS:
            for seed in SEEDS:
                p = _problem(kappa, m, seed, RATIO_EXACT)
                yield f"{kappa}|{m}|{seed}", (lambda p=p: _exact(p))


def _exact(p) -> dict:
    steps = int(TAU * p.alpha * p.D / (2.0 * p.eps))
    tr = lr.solve(p, steps, method="flow", save_times=[0, steps])
    return {"loss": float(tr.population_loss[-1] / tr.population_loss[0]),
            "train": float(tr.train_loss[-1] / tr.train_loss[0]),
            "interpolant_same_ratio": entropic_interpolant(p).population_loss}


def _mean(done: dict, kappa: float, m: float, field: str = "loss") -> float:
    v = [done[k][field] for s in SEEDS if (k := f"{kappa}|{m}|{s}") in done]
    return float(np.mean(v)) if len(v) == len(SEEDS) else math.nan


def critical_kappas(done: dict) -> list[float]:
    """Per m, the kappa at which the seed-mean loss crosses 1/2 (linear interpolation on the
    kappa grid; NaN where it does not cross)."""
    return [half_crossing(KAPPAS, [_mean(done, k, m) for k in KAPPAS]) for m in MS]


def table(done: dict, exact: dict) -> None:
    lines = markdown_head(
        "The interpolant's tau -> inf relative population loss over kappa x m (D = 100)",
        f"m = alpha eps / b2, alpha / eps = {RATIO_MAP:g} (the free-column limit), mean of "
        f"{len(SEEDS)} training sets; last row: the critical kappa (the mean crossing 1/2).",
        ["kappa"] + [f"m = {m:g}" for m in MS])
    for kappa in KAPPAS:
        lines.append(f"| {kappa:g} | " + " | ".join(f"{_mean(done, kappa, m):.3f}" for m in MS)
                     + " |")
    lines.append("| critical kappa | " + " | ".join(f"{k:.2f}" for k in critical_kappas(done))
                 + " |")
    lines += ["", f"Exact flow (alpha / eps = {RATIO_EXACT:g}, tau = {TAU:g}) against the "
              "interpolant at the same (alpha, eps) and the map's limit (seed means over "
              f"{len(SEEDS)} training sets; error = interpolant - exact):", "",
              "| m | kappa | exact | interpolant | error | limit (map) |", "|---|---|---|---|---|---|"]
    for m in EXACT_MS:
        ex = [_mean(exact, k, m) for k in EXACT_KAPPAS]
        ib = [_mean(exact, k, m, "interpolant_same_ratio") for k in EXACT_KAPPAS]
        for kappa, e, i in zip(EXACT_KAPPAS, ex, ib):
            lines.append(f"| {m:g} | {kappa:g} | {e:.3f} | {i:.3f} | {i - e:+.3f} | "
                         f"{_mean(done, kappa, m):.3f} |")
        lines.append(f"| {m:g} | critical | {half_crossing(EXACT_KAPPAS, ex):.2f} | "
                     f"{half_crossing(EXACT_KAPPAS, ib):.2f} | | |")
    (HERE / "offline_floor_map.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(done: dict, exact: dict) -> None:
    """Left: the seed-mean map (log colour), its 1/2 and 0.1 contours, where the exact runs
    are and their 1/2 crossings.  Right: four columns of the map against kappa, interpolant
    (lines) and exact flow (markers)."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    Z = np.array([[_mean(done, k, m) for m in MS] for k in KAPPAS])
    fig = Figure(figsize=(12.0, 4.8), constrained_layout=True)
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.25, 1])
    mesh = ax.pcolormesh(MS, KAPPAS, np.clip(Z, 1e-4, None), shading="nearest",
                         norm=LogNorm(1e-4, 2.0), cmap="viridis")
    cs = ax.contour(MS, KAPPAS, Z, levels=[0.1, 0.5], colors=["w", "k"], linewidths=1.6)
    ax.clabel(cs, fmt={0.1: "0.1", 0.5: "½"}, fontsize=8)
    colors = ("tab:red", "tab:orange", "tab:pink", "w")
    for m, color in zip(EXACT_MS, colors):
        ex = [_mean(exact, k, m) for k in EXACT_KAPPAS]
        ax.plot([m] * len(ex), EXACT_KAPPAS, "o", mfc="none", mec=color, ms=6)
        ax.plot([m], [half_crossing(EXACT_KAPPAS, ex)], "_", color=color, ms=18, mew=2.5)
        lim = [_mean(done, k, m) for k in KAPPAS]
        ax2.plot(KAPPAS, lim, "-", color=color if color != "w" else "k", lw=1.4,
                 label=f"m = {m:g}: interpolant")
        ax2.plot(EXACT_KAPPAS, ex, "o", mfc="none", color=color if color != "w" else "k")
    ax2.plot([], [], "o", mfc="none", color="0.3",
             label=f"exact flow, τ = {TAU:g}, α/ε = {RATIO_EXACT:g}")
    ax2.axhline(0.5, color="0.5", ls=":", lw=1)
    ax2.set_yscale("log")
    ax2.set_ylim(1e-3, 3)
    ax2.set_xlabel("κ = P / D")
    ax2.set_ylabel("τ → ∞ test loss / initial (mean of 4 training sets)")
    ax2.legend(fontsize=7, loc="lower left")
    ax2.grid(True, alpha=0.3)
    ax2.set_title("Columns of the map against the exact flow", fontsize=10)
    ax.set_xscale("log")
    ax.set_xlabel("m = αε / b₂")
    ax.set_ylabel("κ = P / D")
    fig.colorbar(mesh, ax=ax, label="τ → ∞ test loss / initial (interpolant)")
    ax.set_title(f"Where the flow ends, D = {D} (black ½: critical κ; bars: exact ½ crossings)",
                 fontsize=10)
    out = HERE.parent / "docs" / "gallery" / "floor_map.png"
    fig.savefig(out, dpi=130)
    print(f"-> {out}")


#: the critical kappa against D: these m (of the map's grid) and D
DSCALE_MS = (0.003, 0.0548, 0.313)
DSCALE_DS = (50, 100, 200, 400)
DSCALE_OUT = HERE / "offline_floor_map_dscale.json"


def _critical(m: float, D_: int) -> dict:
    """Brent (to 0.01) on kappa for the seed-mean limit loss = 1/2 at (m, D)."""
    from scipy.optimize import brentq

    def excess(kappa: float) -> float:
        return float(np.mean([_limit_loss(kappa, m, s, D_)["loss"] for s in SEEDS])) - 0.5

    return {"critical_kappa": brentq(excess, 2.0, 6.0, xtol=0.01)}


def dscale() -> None:
    jobs = ((f"{m}|{D_}", (lambda m=m, D_=D_: _critical(m, D_)))
            for D_ in DSCALE_DS for m in DSCALE_MS)
    done = run_resumable(DSCALE_OUT, jobs)
    lines = ["| m | " + " | ".join(f"D = {D_}" for D_ in DSCALE_DS) + " |",
             "|---|" + "---|" * len(DSCALE_DS)]
    for m in DSCALE_MS:
        lines.append(f"| {m:g} | " + " | ".join(
            f"{done[k]['critical_kappa']:.2f}" if (k := f"{m}|{D_}") in done else "—"
            for D_ in DSCALE_DS) + " |")
    print("\n".join(lines))


#: m -> 0 (docs §15.6): this m, and per D the kappas
SMALLM, SMALLM_KAPPAS = 1e-4, {50: (3.0, 3.5, 3.75, 4.0, 4.5), 100: (3.0, 3.5, 3.75, 4.0, 4.5),
                               200: (3.0, 3.5, 4.0, 4.5), 400: (3.5, 4.0, 4.5)}


def smallm() -> None:
    """The seed-mean limit loss at m = 1e-4 against kappa, per D (one line per D)."""
    for D_, kappas in SMALLM_KAPPAS.items():
        row = [f"{k:g}: {np.mean([_limit_loss(k, SMALLM, s, D_)['loss'] for s in SEEDS]):.4f}"
               for k in kappas]
        print(f"D = {D_}, m = {SMALLM:g}: " + ", ".join(row), flush=True)


#: m -> 0 beyond D = 400: per seed, resumable (one D = 800 interpolant takes ~1 min at
#: kappa = 4; kappa = 4.5 was stopped after > 10 min on one seed)
SMALLM_LARGE = {800: (4.0,)}
SMALLM_OUT = HERE / "offline_floor_map_smallm.json"


def smallm_large() -> None:
    """``smallm`` at D = 800, one resumable job per (D, kappa, seed); prints the seed means."""
    jobs = ((f"{D_}|{k}|{s}", (lambda k=k, s=s, D_=D_: _limit_loss(k, SMALLM, s, D_)))
            for D_, kappas in SMALLM_LARGE.items() for k in kappas for s in SEEDS)
    done = run_resumable(SMALLM_OUT, jobs)
    for D_, kappas in SMALLM_LARGE.items():
        row = [f"{k:g}: {np.mean([done[f'{D_}|{k}|{s}']['loss'] for s in SEEDS]):.4f}"
               for k in kappas if all(f"{D_}|{k}|{s}" in done for s in SEEDS)]
        print(f"D = {D_}, m = {SMALLM:g}: " + ", ".join(row), flush=True)


#: above the trace-minimisation threshold 4 (docs §15.7): the loss at fixed kappa against D,
#: per m -- kappa = 5 (between 4 and the spike threshold 8) and 9 (above 8)
ABOVE = {5.0: (0.0548, 0.313), 9.0: (0.313,)}
ABOVE_DS = (50, 100, 200, 400, 800)
#: one cell further (~2.5 min per training set)
ABOVE_LARGE = {(5.0, 0.313): (1600,)}
ABOVE_OUT = HERE / "offline_floor_map_above.json"


def above() -> None:
    """Seed-mean limit loss at fixed kappa against D (resumable, one job per cell)."""
    cells = [(k, m, D_) for D_ in ABOVE_DS for k, ms in ABOVE.items() for m in ms]
    cells += [(k, m, D_) for (k, m), Ds in ABOVE_LARGE.items() for D_ in Ds]
    jobs = ((f"{k}|{m}|{D_}|{s}", (lambda k=k, m=m, D_=D_, s=s: _limit_loss(k, m, s, D_)))
            for k, m, D_ in cells for s in SEEDS)
    done = run_resumable(ABOVE_OUT, jobs)
    Ds_all = ABOVE_DS + tuple(sorted({D_ for Ds in ABOVE_LARGE.values() for D_ in Ds}))
    print("| kappa | m | " + " | ".join(f"D = {D_}" for D_ in Ds_all) + " |")
    for k, ms in ABOVE.items():
        for m in ms:
            print(f"| {k:g} | {m:g} | " + _mean_se_cells(done, k, m, Ds_all, "loss", 4) + " |")


def _mean_se_cells(done: dict, kappa: float, m: float, Ds, field: str, digits: int) -> str:
    """' | '-joined seed mean +- standard error of ``field`` per D ('—' until every seed is
    done)."""
    out = []
    for D_ in Ds:
        c = [done[key][field] for s in SEEDS if (key := f"{kappa}|{m}|{D_}|{s}") in done]
        out.append(f"{np.mean(c):.{digits}f} ± {np.std(c, ddof=1) / np.sqrt(len(c)):.{digits}f}"
                   if len(c) == len(SEEDS) else "—")
    return " | ".join(out)


#: where the trace goes as D grows at fixed m (docs §15.7): the spike's share of the teacher
#: and the bulk's mean shift, per cell
SPIKE = ((3.0, 0.02), (5.0, 0.313), (9.0, 0.313))
SPIKE_DS = (50, 100, 200, 400)
SPIKE_OUT = HERE / "offline_floor_map_spike.json"


def spike() -> None:
    """Seed means of the loss, the spike fraction and the bulk trace at fixed (kappa, m)
    against D (resumable, one job per cell and training set)."""
    jobs = ((f"{k}|{m}|{D_}|{s}", (lambda k=k, m=m, D_=D_, s=s: _limit_loss(k, m, s, D_)))
            for D_ in SPIKE_DS for k, m in SPIKE for s in SEEDS)
    done = run_resumable(SPIKE_OUT, jobs)
    print("| kappa | m | quantity | " + " | ".join(f"D = {D_}" for D_ in SPIKE_DS) + " |")
    for k, m in SPIKE:
        for field in ("loss", "spike_fraction", "bulk_trace", "linear_power"):
            digits = 1 if field == "bulk_trace" and k == 3.0 else (2 if field == "bulk_trace"
                                                                   else 3)
            print(f"| {k:g} | {m:g} | {field} | "
                  + _mean_se_cells(done, k, m, SPIKE_DS, field, digits) + " |")


if __name__ == "__main__":
    import sys
    arg = sys.argv[1] if len(sys.argv) > 1 else "run"
    # the table always reads the exact runs done so far (none yet: those columns are NaN)
    exact_done = json.loads(EXACT_OUT.read_text()) if EXACT_OUT.exists() else {}
    if arg == "run":
        table(run_resumable(OUT, _jobs()), exact_done)
    elif arg == "exact":
        run_resumable(EXACT_OUT, _exact_jobs())
    elif arg == "smallm":
        smallm()
    elif arg == "smallm-large":
        smallm_large()
    elif arg == "above":
        above()
    elif arg == "dscale":
        dscale()
    elif arg == "spike":
        spike()
    elif arg == "plot":
        d = json.loads(OUT.read_text())
        table(d, exact_done)
        plot(d, exact_done)
    else:
        raise SystemExit(f"unknown command {arg!r}: run, exact, plot, dscale, smallm, "
                         "smallm-large, above or spike")
