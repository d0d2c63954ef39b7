"""The D = 400 validation grid of the spread closure on the mean of many Monte Carlo draws
(issue 13's "done when"; docs/offline_theory.md §12.4, "The D = 400 grid on the Monte Carlo
mean").

The spread closure's D = 400 numbers (offline_dmft_a7.py run resolved; each seed's own teacher,
t_h = 1000 D, tau = 40) were all computed on the DMFT's Monte Carlo draw 0.  At kappa = 2 that
draw turned out 0.027 below the mean of 32 draws (offline_k2_rate.py offset), an offset shared
by every training seed because the theory sees a seed only through b2 (its sd over the seeds
is <= 0.011 in every cell).  This script measures the same offset in every other cell: draws
1-15 (and 16-31 at kappa <= 5.5, 32-95 at kappa = 1.5) on training seed 0, and at kappa = 1.5
the exact flow on 16 more training seeds (``seeds``); the error on the Monte Carlo mean is the
draw-0 error of the seed mean plus that offset (for the half time: times the ratio of the
draws' mean half time to draw 0's).

    python benchmarks/offline_mc400.py run a1   # (alpha, eps) = (1, 0.02), resumable (~40 min)
    python benchmarks/offline_mc400.py run a2   # (2, 0.04), another process may run it (~30 min)
    python benchmarks/offline_mc400.py critical a1  # the critical kappa on the draws'
    python benchmarks/offline_mc400.py critical a2  # mean; resumable (~40 min each)
    python benchmarks/offline_mc400.py critical_finite a1  # the same with the column at its
    python benchmarks/offline_mc400.py critical_finite a2  # finite speed, (12.2) (~25 min each)
    python benchmarks/offline_mc400.py offset   # the offsets at D = 100, 200 (~10 min)
    python benchmarks/offline_mc400.py k22      # kappa = 22's half time (~10 min)
    python benchmarks/offline_mc400.py seeds    # kappa = 1.5: seeds 16-31 (~15 min)
    python benchmarks/offline_mc400.py table    # -> offline_mc400.md

The critical kappa (where the relative loss at tau = 40 is 1/2) is measured on a kappa grid
here, as offline_critical_a7.py measures the exact flow's: the spread closure at b2 = 1,
Ns = 800, draws 0-15 at each kappa, the mean interpolated linearly in kappa where it crosses
1/2, with its standard error (the draws' sd there / sqrt(draws), over the slope); and the
exact flow on four more seeds (4-7) of offline_critical_a7.py's D = 400 grid.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from common import (geometric_times, half_crossing, load_results, markdown_head, run_resumable,
                    write_table)
import lazyrich_theory as lr
from lazyrich_theory.theory.offline import offline_theory
from offline_a7_grid import RESOLVED_OUT as GRID_RESOLVED, _resolved_one
from offline_dmft_a7 import CLOSURES, _one
from offline_final_400 import CELLS, OUT as EXACT, T_H, _key, _metrics, cell_problem
from offline_halftime_400 import CELLS as HALF_CELLS, OUT as HALF_EXACT, T_MAX as HALF_T_MAX
from offline_critical_a7 import KAPPAS as EXACT_KAPPAS, OUT as CRITICAL_THEORY, \
    OUT_EXACT as CRITICAL_EXACT, _exact, crossing
from offline_k2_rate import OFFSET_OUT as K2_OFFSET
from lazyrich_theory.theory.offline import OfflineInputs
from lazyrich_theory.theory.offline.dmft import DMFT_DMAX, dmft_tau_curves

HERE = Path(__file__).resolve().parent
#: (alpha, eps) series -> its results file ("cell key|draw" -> metrics; training seed 0)
OUTS = {"a1": (HERE / "offline_mc400_a1.json", (1.0, 0.02)),
        "a2": (HERE / "offline_mc400_a2.json", (2.0, 0.04))}
#: draws 1-15 of every cell first, then draws 16-31 of the cells at kappa <= MORE_UP_TO, then
#: draws 32-95 at kappa = 1.5 (one draw's sd there is 0.15)
DRAWS, MORE_DRAWS, MORE_UP_TO = range(1, 16), range(16, 32), 5.5
K15_DRAWS = range(32, 96)


def _jobs(series: str):
    alpha, eps = OUTS[series][1]
    cells = [c for c in CELLS if c[1:3] == (alpha, eps) and c[0] != 2.0]
    for draws, cut in ((DRAWS, math.inf), (MORE_DRAWS, MORE_UP_TO), (K15_DRAWS, 1.5)):
        for mc in draws:
            for kappa, a, e, _ in cells:
                if kappa <= cut:
                    yield (f"{_key(kappa, a, e, 0)}|{mc}",
                           lambda k=kappa, a=a, e=e, mc=mc: _one(k, a, e, 0, "resolved", mc))


#: the critical kappa: series -> results file; the theory's kappa grid and draws; the exact
#: flow's extra seeds (offline_critical_a7.py ran 0-3)
CRITICAL_OUTS = {k: HERE / f"offline_mc400_critical_{k}.json" for k in OUTS}
CRITICAL_KAPPAS, CRITICAL_DRAWS, EXACT_SEEDS = (3.0, 3.25, 3.5, 3.75), range(16), range(4, 8)


#: the same critical kappa with the column at its finite speed, (12.2), the default since
#: 2026-12-06 (the jobs above ran (12.1)); the same draws and kappa grid, theory only
CRITICAL_FINITE_OUTS = {k: HERE / f"offline_mc400_critical_finite_{k}.json" for k in OUTS}


def _theory_final(kappa: float, alpha: float, eps: float, mc: int,
                  column_speed: str = "instantaneous") -> dict:
    L = dmft_tau_curves(OfflineInputs(kappa, alpha, eps, 1.0, 1.0, 400), 40.0, Ns=800, seed=mc,
                        dmax=DMFT_DMAX, column_closure="spread",
                        column_speed=column_speed)["population_loss"]
    return {"final": float(L[-1] / L[0])}


def _critical_finite_jobs(series: str):
    a, e = OUTS[series][1]
    for mc in CRITICAL_DRAWS:
        for k in CRITICAL_KAPPAS:
            yield f"theory|{k}|{mc}", lambda k=k, mc=mc: _theory_final(k, a, e, mc, "finite")


def _critical_jobs(series: str):
    a, e = OUTS[series][1]
    theory = [(f"theory|{k}|{mc}", lambda k=k, mc=mc: _theory_final(k, a, e, mc))
              for mc in CRITICAL_DRAWS for k in CRITICAL_KAPPAS]
    exact = [(f"exact|{k}|{s}", lambda k=k, s=s: _exact(400, k, a, e, s))
             for s in EXACT_SEEDS for k in EXACT_KAPPAS[400]]
    yield from theory[:32] + exact + theory[32:]


#: is draw 0's offset the same at every D (a draw's seed fixes the same random numbers at every
#: D)?  Draws 1-7 on seed 0 at D = 100, 200 (draw 0: offline_a7_grid.py resolved)
OFFSET_OUT, OFFSET_DS, OFFSET_KAPPAS, OFFSET_DRAWS = (HERE / "offline_mc400_offset.json",
                                                      (100, 200), (1.5, 3.0), range(1, 8))


def _offset_jobs():
    for mc in OFFSET_DRAWS:
        for D in OFFSET_DS:
            for kappa in OFFSET_KAPPAS:
                yield (f"{D}|{kappa}|{mc}",
                       lambda D=D, k=kappa, mc=mc: _resolved_one(D, k, 1.0, 0.02, 0, mc))


#: kappa = 22, the grid's last column: the half time against offline_halftime_400.py's exact
#: runs (horizon T_MAX[22], tau = 6); draw 0 on every seed, draws 1-15 on seed 0
K22_OUT = HERE / "offline_mc400_k22.json"


def _k22_jobs():
    cells = [c for c in HALF_CELLS if c[0] == 22.0]
    for kappa, a, e, seeds in cells:
        for s in seeds:
            yield f"{kappa}|{a}|{e}|{s}|0", lambda a=a, e=e, s=s: _k22(a, e, s, 0)
    for mc in range(1, 16):
        for kappa, a, e, _ in cells:
            yield f"{kappa}|{a}|{e}|0|{mc}", lambda a=a, e=e, mc=mc: _k22(a, e, 0, mc)


def _k22(alpha: float, eps: float, seed: int, mc: int) -> dict:
    p = lr.Problem(D=400, P=8800, N=math.inf, alpha=alpha, eps=eps, seed=seed)
    T = HALF_T_MAX[22.0]
    st = geometric_times(T)
    return _metrics(offline_theory(p, T, method="dmft", save_times=st, seed=mc,
                                   column_closure="spread", column_speed="instantaneous"))


def _k22_lines() -> list[str]:
    """kappa = 22: the spread closure's half time against the exact flow's."""
    lines = markdown_head(
        "kappa = 22: the half time", "The spread closure's half time (horizon 60 000 steps, "
        "tau = 6) against offline_halftime_400.py's exact flow: error of the seed mean "
        "(± the seeds' standard error) on draw 0, one draw's relative sd (draws 0-15 on "
        "seed 0), and the error with the draws' mean half time in place of draw 0's.",
        ["alpha, eps", "seeds", "exact", "draw 0", "draws", "sd of one draw",
         "Monte Carlo mean"], level=2)
    done, exact = load_results(K22_OUT), load_results(HALF_EXACT)
    for kappa, a, e, seeds in (c for c in HALF_CELLS if c[0] == 22.0):
        base = f"{kappa}|{a}|{e}"
        if not all(f"{base}|{s}|0" in done for s in seeds):
            continue
        hx = [exact[f"{base}|{s}"]["exact_half"] for s in seeds]  # offline_halftime_400's keys
        draws = [done[f"{base}|0|{mc}"] for mc in range(16) if f"{base}|0|{mc}" in done]
        e0, sd, mean = _half_cells([done[f"{base}|{s}|0"]["half"] for s in seeds], hx, draws)
        lines.append(f"| {a:g}, {e:g} | {len(seeds)} | {np.mean(hx):.0f} | {e0} | "
                     f"{len(draws)} | {sd} | {mean} |")
    return lines


#: kappa = 1.5, (alpha, eps) = (1, 0.02): the exact flow and draw 0 of the spread closure on
#: training seeds 16-31 (offline_final_400.py and offline_dmft_a7.py ran 0-15)
SEEDS_OUT, SEEDS_CELL, MORE_SEEDS = HERE / "offline_mc400_seeds.json", (1.5, 1.0, 0.02), \
    range(16, 32)


def _seed_jobs():
    for s in MORE_SEEDS:
        yield _key(*SEEDS_CELL, s), lambda s=s: _seed_one(s)


def _seed_one(seed: int) -> dict:
    p, st = cell_problem(*SEEDS_CELL, seed)
    return {"exact": _metrics(lr.solve(p, T_H, method="flow", save_times=st)),
            "resolved": _one(*SEEDS_CELL, seed, "resolved", 0)}


def _draws(kappa: float, alpha: float, eps: float, draw0: dict) -> list[dict]:
    """Every Monte Carlo draw of the cell on training seed 0, draw 0 first."""
    if kappa == 2.0:
        done = load_results(K2_OFFSET)
        return [draw0] + [r for mc in range(1, 32) if (r := done.get(f"400|0|{mc}"))]
    series = next(s for s, (_, ae) in OUTS.items() if ae == (alpha, eps))
    done = load_results(OUTS[series][0])
    base = _key(kappa, alpha, eps, 0)
    return [draw0] + [r for mc in range(1, K15_DRAWS.stop) if (r := done.get(f"{base}|{mc}"))]


def _pm(x: float, se: float, pct: bool = False) -> str:
    return f"{100 * x:+.1f} ± {100 * se:.1f} %" if pct else f"{x:+.3f} ± {se:.3f}"


def _row(cell, exact: dict, spread: dict) -> str | None:
    kappa, a, e, seeds = cell
    keys = [_key(kappa, a, e, s) for s in seeds if _key(kappa, a, e, s) in spread]
    if 0 not in seeds or not keys:
        return None
    draws = _draws(kappa, a, e, spread[_key(kappa, a, e, 0)])
    if len(draws) < 2:
        return None
    ex = np.array([exact[k]["exact"]["final"] for k in keys])
    err = np.array([spread[k]["final"] for k in keys]) - ex
    se0 = float(np.std(err, ddof=1) / math.sqrt(len(err)))
    finals = np.array([d["final"] for d in draws])
    off, off_se = finals.mean() - finals[0], finals.std(ddof=1) / math.sqrt(len(finals))
    cells = [f"{kappa:g}", f"{a:g}, {e:g}", str(len(keys)), f"{ex.mean():.3f}",
             _pm(float(err.mean()), se0), str(len(draws)), _pm(float(off), float(off_se)),
             f"{finals.std(ddof=1):.3f}",
             _pm(float(err.mean() + off), math.hypot(se0, float(off_se)))]
    halves = _half_cells([spread[k]["half"] for k in keys],
                         [exact[k]["exact"]["half"] for k in keys], draws)
    return "| " + " | ".join(cells + halves) + " |"


def _half_cells(th: list, hx: list, draws: list[dict]) -> list[str]:
    """Half time (theory ``th`` and exact ``hx`` per seed, the draws on seed 0): draw 0's error
    of the seed mean (± its standard error over the seeds, the delta method for a ratio of
    paired means), one draw's relative sd, the error with the draws' mean half time on seed 0
    in place of draw 0's (± the two standard errors combined)."""
    th, hx = np.array(th, dtype=float), np.array(hx, dtype=float)
    halves = np.array([d["half"] for d in draws], dtype=float)
    if not (np.all(np.isfinite(th)) and np.all(np.isfinite(hx)) and np.all(np.isfinite(halves))):
        return ["—", "—", "—"]
    r = th.mean() / hx.mean()
    seeds_se = float(np.std(th - r * hx, ddof=1) / math.sqrt(len(th)) / hx.mean())
    ratio = halves.mean() / halves[0]
    rel_se = halves.std(ddof=1) / math.sqrt(len(halves)) / halves[0]
    return [_pm(float(r - 1), seeds_se, pct=True),
            f"{100 * halves.std(ddof=1) / halves.mean():.1f} %",
            _pm(float(r * ratio - 1), math.hypot(seeds_se * ratio, float(r * rel_se)), pct=True)]


def table() -> None:
    exact, spread = load_results(EXACT), load_results(CLOSURES["resolved"][1])
    lines = markdown_head(
        "The spread closure at D = 400 on the mean of the Monte Carlo draws",
        "Relative population loss at tau = 40 (theory - exact) and half time (error of the "
        "seed mean), the spread closure with its resolved response (the default). 'draw 0': "
        "the error of offline_dmft_a7.md (mean ± standard error over the seeds). 'offset': "
        "the mean of the draws on training seed 0 minus draw 0 (± its standard error, "
        "sd / sqrt(draws)); 'MC mean': draw 0's error plus the offset, the two standard "
        "errors combined. Half time on the MC mean: draw 0's seed-mean error with draw 0's "
        "half time replaced by the draws' mean (a ratio measured on seed 0), ± the seeds' and "
        "the draws' standard errors combined. kappa = 2: the "
        "draws of offline_k2_rate.py offset. kappa = 1.5: training seeds 0-31 (16-31: this "
        "script's seeds) and draws 0-95.",
        ["kappa", "alpha, eps", "seeds", "exact", "draw 0: error", "draws", "offset",
         "sd of one draw", "MC mean: error", "half time, draw 0", "sd of one draw's half time",
         "half time, MC mean"])
    for key, r in load_results(SEEDS_OUT).items():
        exact[key], spread[key] = {"exact": r["exact"]}, r["resolved"]
    cells = [(*c[:3], range(c[3].start, MORE_SEEDS.stop)) if c[:3] == SEEDS_CELL else c
             for c in CELLS]
    lines += [r for cell in cells if (r := _row(cell, exact, spread))]
    write_table(HERE / "offline_mc400.md",
                lines + [""] + _k22_lines() + [""] + _offset_lines(spread) + [""]
                + _critical_lines())


def _offset_lines(spread: dict) -> list[str]:
    """Draw 0's offset from the mean of draws 0-7 on seed 0 at D = 100, 200 and 400."""
    lines = markdown_head(
        "Draw 0's offset against D", "The mean of Monte Carlo draws 0-7 minus draw 0, loss at "
        "tau = 40 on training seed 0, (alpha, eps) = (1, 0.02), ± its standard error; D = 400: "
        "the same eight draws of the first table.",
        ["kappa"] + [f"D = {D}" for D in (*OFFSET_DS, 400)], level=2)
    done, grid = load_results(OFFSET_OUT), load_results(GRID_RESOLVED)
    for kappa in OFFSET_KAPPAS:
        cells = []
        for D in (*OFFSET_DS, 400):
            if D == 400:
                vals = [d["final"] for d in _draws(kappa, 1.0, 0.02,
                                                   spread[_key(kappa, 1.0, 0.02, 0)])[:8]]
            else:
                vals = [grid[f"{D}|{kappa}|1.0|0.02|0"]["final"]] + [
                    done[k]["final"] for mc in OFFSET_DRAWS if (k := f"{D}|{kappa}|{mc}") in done]
            cells.append(_pm(float(np.mean(vals) - vals[0]),
                             float(np.std(vals, ddof=1) / math.sqrt(len(vals))))
                         + f" ({len(vals)})" if len(vals) > 1 else "—")
        lines.append(f"| {kappa:g} | " + " | ".join(cells) + " |")
    return lines


def _critical_lines() -> list[str]:
    """The critical kappa at D = 400: the exact flow on seeds 0-7, the spread closure on the
    mean of its draws, each draw's own, and offline_critical_a7.py's bisection on draws 0, 1."""
    lines = markdown_head(
        "D = 400: the critical kappa on the mean of the draws", "kappa where the relative "
        "loss at tau = 40 crosses 1/2, interpolated linearly on a kappa grid, ± its standard "
        "error (the sd of the samples at the crossing / sqrt(samples), over the slope in "
        "kappa). Exact: the flow on training seeds 0-7 (0-3: offline_critical_a7.py). Theory: "
        "the spread closure (resolved) at b2 = 1, Ns = 800, on the mean of its Monte Carlo "
        "draws; 'one draw': the sd over the draws of each draw's own crossing (those the grid "
        "brackets); 'bisection': "
        "offline_critical_a7.md's value (Ns = 400, mean of draws 0 and 1, tolerance 0.1). "
        "The columns up to there ran the column at its instantaneous limit, (12.1); the last "
        "four the default, the column at its finite speed (12.2), on the same draws and grid "
        "(critical_finite), and the shift of the crossing from (12.1)'s on the same draws "
        "(± the sd of the draws' paired shifts of their own crossings / sqrt(draws)).",
        ["alpha, eps", "seeds", "exact", "draws", "theory", "theory - exact",
         "one draw: sd", "bisection (draws 0, 1)", "(12.2): draws", "(12.2): theory",
         "(12.2) - exact", "(12.2) - (12.1), paired"], level=2)
    old_exact, old_theory = load_results(CRITICAL_EXACT), load_results(CRITICAL_THEORY)
    for series, (_, (a, e)) in OUTS.items():
        done = load_results(CRITICAL_OUTS[series])
        done.update({f"exact|{k}|{s}": v for k in EXACT_KAPPAS[400] for s in range(4)
                     if (v := old_exact.get(f"exact|400|{a}|{e}|{k}|{s}"))})
        ex = _samples(done, "exact", EXACT_KAPPAS[400], range(8))
        th = _samples(done, "theory", CRITICAL_KAPPAS, CRITICAL_DRAWS)
        if not ex or not th:
            continue
        kc_ex, se_ex = crossing(*ex)
        kc_th, se_th = crossing(*th)
        own = [k for j in range(len(th[1][0]))
               if math.isfinite(k := half_crossing(th[0], [r[j] for r in th[1]]))]
        old = [old_theory[f"theory|400|{a}|{e}|resolved|{mc}"]["kappa_c"] for mc in (0, 1)]
        lines.append(f"| {a:g}, {e:g} | {len(ex[1][0])} | {kc_ex:.2f} ± {se_ex:.2f} | "
                     f"{len(th[1][0])} | {kc_th:.2f} ± {se_th:.2f} | {kc_th - kc_ex:+.2f} ± "
                     f"{math.hypot(se_ex, se_th):.2f} | "
                     f"{f'{np.std(own, ddof=1):.2f}' if len(own) > 1 else '—'} | "
                     f"{np.mean(old):.2f} |" + _finite_cells(series, th, kc_ex, se_ex))
    return lines


def _finite_cells(series: str, th: tuple, kc_ex: float, se_ex: float) -> str:
    """The last four cells of a critical-kappa row: (12.2)'s crossing on its draws' mean, its
    error, and its shift from (12.1)'s on the same draws."""
    fin = _samples(load_results(CRITICAL_FINITE_OUTS[series]), "theory", CRITICAL_KAPPAS,
                   CRITICAL_DRAWS)
    if not fin:
        return " — | — | — | — |"
    n = len(fin[1][0])
    kc, se = crossing(*fin)
    kc_12_1, _ = crossing(th[0], [r[:n] for r in th[1]])
    shifts = [half_crossing(fin[0], [r[j] for r in fin[1]])
              - half_crossing(th[0], [r[j] for r in th[1]]) for j in range(n)]
    shifts = [d for d in shifts if math.isfinite(d)]
    shift_se = np.std(shifts, ddof=1) / math.sqrt(len(shifts)) if len(shifts) > 1 else math.nan
    return (f" {n} | {kc:.2f} ± {se:.2f} | {kc - kc_ex:+.2f} ± {math.hypot(se_ex, se):.2f} | "
            f"{kc - kc_12_1:+.4f} ± {shift_se:.4f} |")


def _samples(done: dict, kind: str, ks, indices) -> tuple[list[float], list[list[float]]]:
    """(the kappas, the relative losses at each) of ``kind`` ("exact": seeds, "theory":
    draws), on the leading indices done at every kappa; empty if fewer than two."""
    n = 0
    while n < len(indices) and all(f"{kind}|{k}|{indices[n]}" in done for k in ks):
        n += 1
    if n < 2:
        return ()
    return list(ks), [[done[f"{kind}|{k}|{i}"]["final"] for i in indices[:n]] for k in ks]


def main(args: list[str]) -> None:
    if args[:1] == ["run"] and len(args) == 2 and args[1] in OUTS:
        run_resumable(OUTS[args[1]][0], _jobs(args[1]))
    elif args[:1] == ["critical"] and len(args) == 2 and args[1] in OUTS:
        run_resumable(CRITICAL_OUTS[args[1]], _critical_jobs(args[1]))
    elif args[:1] == ["critical_finite"] and len(args) == 2 and args[1] in OUTS:
        run_resumable(CRITICAL_FINITE_OUTS[args[1]], _critical_finite_jobs(args[1]))
    elif args == ["k22"]:
        run_resumable(K22_OUT, _k22_jobs())
    elif args == ["seeds"]:
        run_resumable(SEEDS_OUT, _seed_jobs())
    elif args == ["offset"]:
        run_resumable(OFFSET_OUT, _offset_jobs())
    elif args == ["table"]:
        table()
    else:
        sys.exit(f"usage: offline_mc400.py run|critical|critical_finite {'|'.join(OUTS)} | offset "
                 "| seeds | k22 | table")


if __name__ == "__main__":
    main(sys.argv[1:])
