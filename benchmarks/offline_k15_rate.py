"""kappa = 1.5: the spread closure's long-time error against D, on the mean of its Monte Carlo
draws (issue 13's "errors shrinking from D = 100 to D = 400"; docs/offline_theory.md §12.4,
"kappa = 1.5 against D").

The quantity is that of offline_mc400.py: the relative population loss at t_h = 1000 D
(tau = 40), (alpha, eps) = (1, 0.02), N = inf, each seed's own teacher and training set; the
spread closure (its default, resolved response) minus the exact flow.  At kappa = 1.5 one
Monte Carlo draw of the theory scatters by a sd of 0.14 and the exact flow over training sets
by 0.14-0.29 (D = 400-100), so both need many samples.  The theory sees a training seed only through b2 (its sd
over 32 seeds at D = 400 is 0.0002), so the error is taken unpaired: the seed mean of the
theory's draw 0 where it ran, plus the offset of the draws' mean from draw 0 on training seed
0, minus the seed mean of the exact flow over every seed; the standard errors combined.

Runs already made are read, not rerun: D = 100, 200 seeds 0-7 and draws 1-7
(offline_a7_grid.py, offline_mc400.py offset), D = 400 seeds 0-31 and draws 1-95
(offline_final_400.py, offline_dmft_a7.py, offline_mc400.py run a1 and seeds).  This script adds
(D = 400 then has 192 exact seeds and 192 draws)

    python benchmarks/offline_k15_rate.py exact   # exact flows: D = 400 seeds 32-63, then
                                                  # D = 100, 200 seeds 8-63 (~25 min)
    python benchmarks/offline_k15_rate.py draws 100  # draws 8-31 on seed 0, then 32-63
    python benchmarks/offline_k15_rate.py draws 200  # (~30 min each; two processes may run)
    python benchmarks/offline_k15_rate.py more400  # D = 400: exact seeds 64-191 and draws
                                                   # 96-191, interleaved (~20 + 24 s a pair)
    python benchmarks/offline_k15_rate.py moreD   # exact seeds 64-255 at D = 100, 200, then
                                                  # 16-63 at D = 800 (~15 min + ~2 h)
    python benchmarks/offline_k15_rate.py table   # -> offline_k15_rate.md
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from common import load_results, markdown_head, run_resumable, write_table
from offline_a7_grid import OUT as GRID, RESOLVED_OUT as GRID_RESOLVED, _resolved_one
from offline_critical_a7 import _exact
from offline_dmft_a7 import CLOSURES
from offline_final_400 import OUT as D400_EXACT
from offline_mc400 import OFFSET_OUT, SEEDS_OUT, _draws

HERE = Path(__file__).resolve().parent
KAPPA, ALPHA, EPS = 1.5, 1.0, 0.02
EXACT_OUT = HERE / "offline_k15_rate_exact.json"
#: D -> the exact flows' seeds this script adds (D = 400 first: the grid's own D)
EXACT_SEEDS = {400: range(32, 64), 100: range(8, 64), 200: range(8, 64)}
#: D = 800 (``exact800 even|odd``, two processes): the exact flow on training seeds 0-15 and the
#: theory's draws 0-7 on seed 0 (whose values differ from D = 400's by a sd of 0.007-0.017 per
#: draw at D = 100-200, so the D = 400 offset carries over)
EXACT800_OUT = {half: HERE / f"offline_k15_rate_exact800_{half}.json" for half in ("even", "odd")}
SEEDS800, DRAWS800 = range(16), range(8)


def _exact800_jobs(half: str):
    first = 0 if half == "even" else 1
    for mc in DRAWS800[first::2]:
        yield f"draw|{mc}", lambda mc=mc: _resolved_one(800, KAPPA, ALPHA, EPS, 0, mc)
    for s in SEEDS800[first::2]:
        yield f"800|{s}", lambda s=s: _exact(800, KAPPA, ALPHA, EPS, s)


#: the Monte Carlo draws on seed 0 this script adds at D = 100, 200 (a file each: two processes
#: may run them), in two rounds
DRAW_ROUNDS, DRAW_DS = (range(8, 32), range(32, 64)), (100, 200)
DRAWS_OUT = {D: HERE / f"offline_k15_rate_draws_{D}.json" for D in DRAW_DS}
#: ``more400``: D = 400's exact seeds and Monte Carlo draws (on seed 0) beyond the first 64 / 96,
#: one of each in turn, so that a run stopped at any point leaves the two samples balanced
MORE400_OUT = HERE / "offline_k15_rate_more400.json"
MORE400_EXACT, MORE400_DRAWS = range(64, 192), range(96, 192)
#: ``moreD``: exact seeds added at D = 100 and 200 (cheap: ~1 and ~3 s a seed), then at D = 800
#: (~155 s a seed), so that the exact means against D are as sharp as D = 400's
MORED_OUT = HERE / "offline_k15_rate_moreD.json"
MORED_SEEDS = {100: range(64, 256), 200: range(64, 256), 800: range(16, 64)}


def _exact_jobs():
    for D, seeds in EXACT_SEEDS.items():
        for s in seeds:
            yield f"{D}|{s}", lambda D=D, s=s: _exact(D, KAPPA, ALPHA, EPS, s)


def _more400_jobs():
    exact = [(f"exact|{s}", lambda s=s: _exact(400, KAPPA, ALPHA, EPS, s)) for s in MORE400_EXACT]
    draws = [(f"draw|{mc}", lambda mc=mc: _resolved_one(400, KAPPA, ALPHA, EPS, 0, mc))
             for mc in MORE400_DRAWS]
    for i in range(max(len(exact), len(draws))):
        yield from exact[i:i + 1] + draws[i:i + 1]


def _mored_jobs():
    for D, seeds in MORED_SEEDS.items():
        for s in seeds:
            yield f"{D}|{s}", lambda D=D, s=s: _exact(D, KAPPA, ALPHA, EPS, s)


def _mored(D: int) -> list[float]:
    """The exact flow's losses that ``moreD`` added at D (none at D = 400)."""
    added = load_results(MORED_OUT)
    return [added[k]["final"] for s in MORED_SEEDS.get(D, ()) if (k := f"{D}|{s}") in added]


def _draw_jobs(D: int):
    for draws in DRAW_ROUNDS:
        for mc in draws:
            yield f"{D}|{mc}", lambda mc=mc: _resolved_one(D, KAPPA, ALPHA, EPS, 0, mc)


def _samples(D: int) -> tuple[list[float], list[float], list[float]]:
    """(the exact flow's loss per training seed, the theory's draw 0 per training seed where it
    ran, the theory's draws on training seed 0, draw 0 first) at D."""
    more = load_results(EXACT_OUT)
    if D == 400:
        base, seeds = load_results(D400_EXACT), load_results(SEEDS_OUT)
        resolved = load_results(CLOSURES["resolved"][1])
        exact = [base[f"{KAPPA}|{s}"]["exact"]["final"] for s in range(16)]
        exact += [seeds[k]["exact"]["final"] for s in range(16, 32)
                  if (k := f"{KAPPA}|{s}") in seeds]
        theory = [resolved[f"{KAPPA}|{s}"]["final"] for s in range(16)]
        theory += [seeds[k]["resolved"]["final"] for s in range(16, 32)
                   if (k := f"{KAPPA}|{s}") in seeds]
        draws = [d["final"] for d in _draws(KAPPA, ALPHA, EPS, resolved[f"{KAPPA}|0"])]
        added = load_results(MORE400_OUT)
        exact += [added[k]["final"] for s in MORE400_EXACT if (k := f"exact|{s}") in added]
        draws += [added[k]["final"] for mc in MORE400_DRAWS if (k := f"draw|{mc}") in added]
    else:
        grid, res = load_results(GRID), load_results(GRID_RESOLVED)
        keys = [f"{D}|{KAPPA}|{ALPHA}|{EPS}|{s}" for s in range(8)]
        exact = [grid[k]["exact"]["final"] for k in keys]
        theory = [res[k]["final"] for k in keys]
        offset, added = load_results(OFFSET_OUT), load_results(DRAWS_OUT[D])
        draws = [theory[0]] + [offset[k]["final"] for mc in range(1, 8)
                               if (k := f"{D}|{KAPPA}|{mc}") in offset]
        draws += [added[k]["final"] for r in DRAW_ROUNDS for mc in r
                  if (k := f"{D}|{mc}") in added]
    exact += [more[k]["final"] for s in EXACT_SEEDS[D] if (k := f"{D}|{s}") in more]
    return exact + _mored(D), theory, draws


def _se(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / math.sqrt(len(x)))


def _carried_error(D: int, exact, theory, draws) -> tuple[float, float]:
    """The error ± its standard error with the draws' mean carried to that of D = 400's draws
    by the same draws' shift (as D = 800's)."""
    at400 = np.array(_samples(400)[2])
    shift = draws - at400[:len(draws)]
    err = theory.mean() + at400.mean() + shift.mean() - draws[0] - exact.mean()
    se = math.sqrt(_se(exact) ** 2 + _se(theory) ** 2 + _se(at400) ** 2 + _se(shift) ** 2)
    return float(err), se


def _carried(D: int, exact, theory, draws) -> str:
    """:func:`_carried_error` as a table entry, "—" at D = 400 itself."""
    if D == 400:
        return "—"
    return "{:+.3f} ± {:.3f}".format(*_carried_error(D, exact, theory, draws))


def instantaneous_error(D: int) -> tuple[float, float]:
    """The spread closure's (instantaneous column) error ± its standard error at D (100, 200,
    400, 800) on the Monte Carlo mean carried to D = 400's draws: the bold last column of
    offline_k15_rate.md."""
    if D == 800:
        exact, draws = _d800()
        at400 = np.array(_samples(400)[2])
        shift = draws - at400[:len(draws)]
        se = math.sqrt(_se(at400) ** 2 + _se(shift) ** 2 + _se(exact) ** 2)
        return float(at400.mean() + shift.mean() - exact.mean()), se
    exact, theory, draws = (np.array(v, dtype=float) for v in _samples(D))
    if D == 400:
        return (float(theory.mean() + draws.mean() - draws[0] - exact.mean()),
                math.sqrt(_se(exact) ** 2 + _se(theory) ** 2 + _se(draws) ** 2))
    return _carried_error(D, exact, theory, draws)


def _d800() -> tuple[np.ndarray, np.ndarray]:
    """D = 800: the exact flow's losses (seeds 0-15 and moreD's) and the theory's draws on
    seed 0."""
    done = {**load_results(EXACT800_OUT["even"]), **load_results(EXACT800_OUT["odd"])}
    exact = np.array([done[k]["final"] for s in SEEDS800 if (k := f"800|{s}") in done]
                     + _mored(800))
    draws = np.array([done[k]["final"] for mc in DRAWS800 if (k := f"draw|{mc}") in done])
    return exact, draws


def _row(D: int) -> str:
    exact, theory, draws = (np.array(v, dtype=float) for v in _samples(D))
    offset = draws.mean() - draws[0]
    err = theory.mean() + offset - exact.mean()
    se = math.sqrt(_se(exact) ** 2 + _se(theory) ** 2 + _se(draws) ** 2)
    return (f"| {D} | {len(exact)} | {exact.mean():.3f} ± {_se(exact):.3f} | "
            f"{np.std(exact, ddof=1):.3f} | {len(theory)} | {theory.mean():.3f} | "
            f"{np.std(theory, ddof=1):.4f} | {len(draws)} | {offset:+.3f} ± {_se(draws):.3f} | "
            f"{np.std(draws, ddof=1):.3f} | {draws.mean():.3f} | **{err:+.3f} ± {se:.3f}** | "
            f"{_carried(D, exact, theory, draws)} |")


def _row800() -> str | None:
    """D = 800: the exact flow on seeds 0-15; the theory's draws 0-7 on seed 0, carried to the
    mean of D = 400's draws (192) by the same draws' shift (a draw moves with D by a sd of
    <= 0.017 per draw at D = 100-400)."""
    exact, draws = _d800()
    if len(exact) < 2 or len(draws) < 2:
        return None
    at400 = np.array(_samples(400)[2])
    shift = draws - at400[:len(draws)]
    mean = float(at400.mean() + shift.mean())
    se = math.sqrt(_se(at400) ** 2 + _se(shift) ** 2)
    err_se = math.sqrt(se ** 2 + _se(exact) ** 2)
    return (f"| 800 | {len(exact)} | {exact.mean():.3f} ± {_se(exact):.3f} | "
            f"{np.std(exact, ddof=1):.3f} | 1 | {draws[0]:.3f} | — | {len(draws)} (+ "
            f"{len(at400)} at D = 400) | {mean - draws[0]:+.3f} ± {se:.3f} | "
            f"{np.std(draws, ddof=1):.3f} | {mean:.3f} | "
            f"**{mean - exact.mean():+.3f} ± {err_se:.3f}** | (the same) |")


def table() -> None:
    lines = markdown_head(
        "kappa = 1.5: the spread closure's error against D on the Monte Carlo mean",
        "Relative population loss at tau = 40, (alpha, eps) = (1, 0.02). Exact: the flow's "
        "mean over training seeds ± its standard error, and its sd over seeds. Theory: the "
        "spread closure (resolved response), draw 0 on the training seeds where it ran (its "
        "mean and sd over them: it sees a seed only through b2), and its Monte Carlo draws on "
        "seed 0 (offset: their mean minus draw 0 ± its standard error; their sd; their mean). "
        "Error: theory's draw-0 seed mean + offset - exact seed mean (unpaired), the three "
        "standard errors combined. D = 800: the exact flow on seeds 0-15 and the draws 0-7 on "
        "seed 0, whose mean is carried to that of D = 400's draws by the same draws' shift "
        "from D = 400 (± the two standard errors combined). Last column: the same carrying at "
        "D = 100 and 200 (their 64 draws' shift from the same draws at D = 400 added to the mean "
        "of D = 400's draws), so that every D has one Monte Carlo mean.",
        ["D", "exact: seeds", "exact: mean", "exact: sd", "theory: seeds", "draw 0: mean",
         "draw 0: sd over seeds", "draws", "offset", "one draw: sd", "draws' mean",
         "error on the Monte Carlo mean", "error, the draws' mean carried to D = 400's"])
    lines += [_row(D) for D in (100, 200, 400)] + [r for r in (_row800(),) if r]
    write_table(HERE / "offline_k15_rate.md", lines)


def main(args: list[str]) -> None:
    if args == ["exact"]:
        run_resumable(EXACT_OUT, _exact_jobs())
    elif args[:1] == ["exact800"] and args[1:] in (["even"], ["odd"]):
        run_resumable(EXACT800_OUT[args[1]], _exact800_jobs(args[1]))
    elif args[:1] == ["draws"] and args[1:] in (["100"], ["200"]):
        run_resumable(DRAWS_OUT[int(args[1])], _draw_jobs(int(args[1])))
    elif args == ["more400"]:
        run_resumable(MORE400_OUT, _more400_jobs())
    elif args == ["moreD"]:
        run_resumable(MORED_OUT, _mored_jobs())
    elif args == ["table"]:
        table()
    else:
        sys.exit("usage: offline_k15_rate.py exact | draws 100|200 | exact800 even|odd | more400 "
                 "| moreD | table")


if __name__ == "__main__":
    main(sys.argv[1:])
