"""The spread closure's population field at the current grid point: one step behind (the
"lagged" field, with which every (12.1) table of docs/offline_theory.md §12.4 was made) or
solved jointly with the samples' residuals ("joint", the default of (12.2)), docs §12.4
"The noise at the current point".

    python benchmarks/offline_joint.py k15      # kappa = 1.5, alpha / eps = 50: (12.1) joint
                                                # on draws 0-15 at D = 400, 200, 0-7 at
                                                # 100, 800
    python benchmarks/offline_joint.py kappas   # D = 400, draws 0-7: (12.1) joint at
                                                # kappa = 2, 3, 5.5; both fields at 11, 22
    python benchmarks/offline_joint.py grid     # kappa = 1.5, draw 0: both fields, both
                                                # columns at D = 400 (alpha / eps = 50), (12.1)
                                                # at D = 40 (800), on the grid and on the grid
                                                # with every step halved
    python benchmarks/offline_joint.py table    # -> offline_joint.md

The lagged (12.1) values at kappa <= 5.5 are offline_k15_speed's ("instantaneous", the same
runs); the relative population loss at tau = 40, training seed 0, alpha eps = 0.02.  The
paired shift joint - lagged added to (12.1)'s error on the Monte Carlo mean
(offline_k15_rate.md) is the error of (12.1) with the joint field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import load_results, markdown_head, run_named_or_table, write_table
from offline_k15_speed import OUT as SPEED, _one, _pm, error_row, paired_finals
from lazyrich_theory.theory.offline import dmft

HERE = Path(__file__).resolve().parent
OUT = {name: HERE / f"offline_joint_{name}.json" for name in ("k15", "kappas", "grid")}
K15_DRAWS = {400: range(16), 200: range(16), 100: range(8), 800: range(8)}
KAPPAS, KAPPA_DRAWS, NEW_KAPPAS = (2.0, 3.0, 5.5), range(8), (11.0, 22.0)


_GRID, _POINTS = dmft.make_grid, dmft.DMFT_MAX_POINTS


def _halved(tau_max: float, dmax: float = dmft.DMFT_DMAX) -> np.ndarray:
    """The DMFT's grid with every step halved (a convergence check)."""
    t = _GRID(tau_max, dmax)
    return np.sort(np.r_[t, 0.5 * (t[1:] + t[:-1])])


def _grid_run(speed: str, field: str, grid: str, D: int = 400, ratio: float = 50.0) -> dict:
    """Draw 0 at D on the DMFT's grid or on it halved (475 points at tau = 40, past the
    package's limit of 400 -- lifted here -- and ~4 GB)."""
    if grid == "halved":
        dmft.make_grid, dmft.DMFT_MAX_POINTS = _halved, 2 * _POINTS
    try:
        return _one(D, 1.5, ratio, 0, speed, noise_current=field)
    finally:
        dmft.make_grid, dmft.DMFT_MAX_POINTS = _GRID, _POINTS


def _jobs(name: str):
    if name == "k15":
        for D, draws in K15_DRAWS.items():
            for mc in draws:
                yield f"{D}|{mc}|joint", lambda D=D, mc=mc: _one(D, 1.5, 50.0, mc,
                                                                "instantaneous",
                                                                noise_current="joint")
    elif name == "kappas":
        for kappa in KAPPAS + NEW_KAPPAS:
            fields = ("joint", "lagged") if kappa in NEW_KAPPAS else ("joint",)
            for mc in KAPPA_DRAWS:
                for f in fields:
                    yield (f"{kappa:g}|{mc}|{f}",
                           lambda k=kappa, mc=mc, f=f: _one(400, k, 50.0, mc, "instantaneous",
                                                            noise_current=f))
    else:
        for grid in ("grid", "halved"):
            for speed in ("instantaneous", "finite"):
                for f in ("lagged", "joint"):
                    yield (f"{grid}|{speed}|{f}",
                           lambda g=grid, s=speed, f=f: _grid_run(s, f, g))
        for grid in ("grid", "halved"):         # a small problem: D = 40, alpha / eps = 800
            for f in ("lagged", "joint"):
                yield (f"{grid}|instantaneous|{f}|D40",
                       lambda g=grid, f=f: _grid_run("instantaneous", f, g, 40, 800.0))


def _k15_rows() -> list[str]:
    done, speed, rows = load_results(OUT["k15"]), load_results(SPEED["shift"]), []
    for D in sorted(K15_DRAWS):
        pr = paired_finals(speed, lambda mc, D=D: f"{D}|{mc}|instantaneous",     # lagged
                           done, lambda mc, D=D: f"{D}|{mc}|joint", K15_DRAWS[D])
        if len(pr) >= 2:
            rows.append(error_row(D, pr))
    return rows


def _kappa_rows() -> list[str]:
    done, speed, rows = load_results(OUT["kappas"]), load_results(SPEED["kappas"]), []
    for kappa in KAPPAS + NEW_KAPPAS:
        new = kappa in NEW_KAPPAS           # lagged here, else offline_k15_speed's (12.1)
        lagged = "lagged" if new else "instantaneous"
        pr = paired_finals(done if new else speed, lambda mc, k=kappa: f"{k:g}|{mc}|{lagged}",
                           done, lambda mc, k=kappa: f"{k:g}|{mc}|joint", KAPPA_DRAWS)
        if len(pr) < 2:
            continue
        shift, se = _pm(pr[:, 1] - pr[:, 0])
        rows.append(f"| {kappa:g} | {len(pr)} | {pr[:, 0].mean():.4f} | {pr[:, 1].mean():.4f} "
                    f"| {shift:+.4f} ± {se:.4f} |")
    return rows


def _grid_rows() -> list[str]:
    done, rows = load_results(OUT["grid"]), []
    for tail, where in (("", "400, alpha / eps = 50"), ("|D40", "40, alpha / eps = 800")):
        for speed in ("instantaneous", "finite"):
            for f in ("lagged", "joint"):
                a = done.get(f"grid|{speed}|{f}{tail}")
                b = done.get(f"halved|{speed}|{f}{tail}")
                if not (a and b) or a["final"] is None or b["final"] is None:
                    continue
                col = "(12.1)" if speed == "instantaneous" else "(12.2)"
                rows.append(f"| {where} | {col} | {f} | {a['final']:.4f} | "
                            f"{b['final']:.4f} | {b['final'] - a['final']:+.4f} |")
    return rows


def table() -> None:
    lines = markdown_head(
        "The spread closure's population field at the current point: lagged or joint",
        "Relative population loss at tau = 40, alpha / eps = 50, alpha eps = 0.02, training "
        "seed 0, the DMFT's Monte Carlo draws (Ns = 800); the instantaneous column (12.1). "
        "Shift: joint - lagged, paired on the draws, ± its standard error; error: (12.1)'s "
        "(lagged) on the Monte Carlo mean (offline_k15_rate.md) plus the shift.",
        ["D", "draws", "lagged: mean", "joint: mean", "shift", "lagged: error",
         "joint: error"])
    lines += _k15_rows()
    lines += ["", "Other kappa at D = 400:", "",
              "| kappa | draws | lagged | joint | shift |", "|---|---|---|---|---|"]
    lines += _kappa_rows()
    lines += ["", "The grid: kappa = 1.5, draw 0, on the DMFT's grid and on it with every step "
              "halved:", "",
              "| D | column | field | grid | halved | halved - grid |",
              "|---|---|---|---|---|---|"]
    lines += _grid_rows()
    write_table(HERE / "offline_joint.md", lines)


if __name__ == "__main__":
    run_named_or_table(OUT, _jobs, table)
