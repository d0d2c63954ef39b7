"""Is the DMFT's tail exponent wrong in its quadratic part, or only with the linear column?
(issue 13; docs/offline_theory.md §11.7, §12.4).

At kappa = 5.5 the exact flow's bulk trace excess t falls like tau^(-2 qbar) with qbar ~ 0.21
over tau = 40-80 (D = 400-800), the DMFT's with qbar ~ 0.14 at every D from 800 to 3200
(offline_tail_certificate.md). §12.4 found that the DMFT's *long-time loss* error comes with
the linear column (its quadratic part converges with D). This benchmark asks the same of the
tail: the quadratic-only model f = (alpha eps / 2) x^T (M - I) x, whose exact counterpart is
the flow at alpha / eps = 0.01 (the linear column too slow to fit anything; its power is
recorded to show it), against the DMFT without its column (``linear_column=False``), at the
tail's alpha eps = 0.02 and kappa = 5.5. The with-column exponents (alpha / eps = 50, the
issue's (1, 0.02)) are those of offline_tail_certificate.py's table.

``ratio`` sweeps alpha / eps (SWEEP_RATIOS) at the same alpha eps, with the DMFT as
``offline_theory`` runs it (its linear column on), with A7, and without the null-space split
A6' (``null_space_split=False``, a diagnostic): does the DMFT's column change the tail where
the exact column is too slow to act, and which part of it does? ``k3``: the same four at
kappa = 3, alpha / eps = 50, where the column's memorisation is a large part of the loss.
``premise``: the split's premise X^T r = 0, measured on the exact flow at each alpha / eps.

Time on the DMFT clock tau = 2 eta0 eps t / (alpha D); eta0 = (alpha / eps) D / 200, so one
unit of tau is 100 GD steps (the flow does not depend on eta0 otherwise). The DMFT at each
seed's b2 with the Gaussian xi law, as in the exponent table.

    python benchmarks/offline_tail_channels.py run 100 200 400 800  # resumable, one JSON
    python benchmarks/offline_tail_channels.py dmft 1600 3200        # the DMFT alone
    python benchmarks/offline_tail_channels.py ratio 100 200 400     # -> ..._ratio.json
    python benchmarks/offline_tail_channels.py spread 100 200 400 800  # (12.1) -> ..._ratio.json
    python benchmarks/offline_tail_channels.py k3 100 200 400        # -> ..._k3.json
    python benchmarks/offline_tail_channels.py k15 100 200           # kappa = 1.5 -> ..._k15.json
    python benchmarks/offline_tail_channels.py k2 100 200            # kappa = 2 -> ..._k2.json
    python benchmarks/offline_tail_channels.py k2 800 --seeds 2 3    # exact and spread only
    python benchmarks/offline_tail_channels.py k15 800 --seeds 0 1 2 3  # the same, kappa = 1.5
    python benchmarks/offline_tail_channels.py premise 100 200       # -> ..._premise.json
    python benchmarks/offline_tail_channels.py table                 # -> offline_tail_channels.md

Cost (one core): the exact flow 2 s (D = 100), 9 s (200), 2 min (400), 18 min (800); the
DMFT 15-50 s per run at any D.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, run_resumable, seed_runs, write_table
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.theory.offline import offline_inputs, offline_theory
from offline_delay import _summary
from offline_tail_certificate import _exponent, _exponent_rows, _load
from offline_tail_spike import _section, tail_columns

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_tail_channels.json"
KAPPA, AE, RATIO = 5.5, 0.02, 0.01
TAUS = (10, 20, 40, 80)
#: seeds of ``run`` (the exact flow at D = 800: 12-18 min each) and of the sweeps
SEEDS = (0, 1, 2, 3)
SWEEP_SEEDS = (0, 1)


#: method -> offline_theory options (None: the exact flow); "dmft" is the quadratic-only DMFT
METHODS = {"exact": None, "dmft": {"linear_column": False, "column_closure": "dmft"},
           "dmft_column": {"column_closure": "dmft"},
           "dmft_a7": {"column_closure": "least_squares"},
           "dmft_nosplit": {"null_space_split": False, "column_closure": "dmft"},
           "dmft_spread": {"column_closure": "spread", "column_speed": "instantaneous",
                           "spread_response": "first_order"},
           "dmft_resolved": {"column_closure": "spread", "column_speed": "instantaneous",
                             "spread_response": "resolved"}}
#: the ``ratio`` sweep: alpha / eps from the frozen column to a fast one (50: the issue's
#: (1, 0.02)), at alpha eps = AE, and the methods it runs
SWEEP_RATIOS = (0.01, 0.1, 1.0, 50.0)
SWEEP_METHODS = ("exact", "dmft_column", "dmft_a7", "dmft_nosplit")
SWEEP_OUT = HERE / "offline_tail_channels_ratio.json"


def _problem(D: int, seed: int, ratio: float = RATIO, kappa: float = KAPPA) -> lr.Problem:
    return lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=math.sqrt(AE * ratio),
                      eps=math.sqrt(AE / ratio), eta0=ratio * D / 200.0, seed=seed)


def _one(D: int, seed: int, method: str, ratio: float = RATIO, kappa: float = KAPPA) -> dict:
    """pop, delta, tbar at TAUS (offline_tail_spike.tail_columns), the grokking summary of
    offline_delay.py (the 0.1 times and the delay; None where not reached by tau = 80), and
    the linear column's power relative to the initial loss (lin; the first runs of the
    quadratic-only DMFT and of the sweep's dmft_column and dmft_a7 predate it)."""
    p = _problem(D, seed, ratio, kappa)
    b2 = offline_inputs(p).b2
    tail = [100 * tau for tau in TAUS]
    st = np.unique(np.concatenate([[0], np.geomspace(1, tail[-1], 400).astype(int), tail]))
    if METHODS[method] is None:
        tr = lr.solve(p, tail[-1], method="flow", save_times=st)
    else:
        tr = offline_theory(p, tail[-1], method="dmft", save_times=st, **METHODS[method])
    k = np.searchsorted(tr.t, tail)
    return {"b2": b2, **tail_columns(tr, tail, b2, AE, D), "summary": _summary(tr),
            "lin": list(tr.linear_power[k] / tr.population_loss[0])}


def run(dims: list[int], methods=("exact", "dmft")) -> None:
    run_resumable(OUT, ((f"{D}|{s}|{m}", lambda D=D, s=s, m=m: _one(D, s, m))
                        for D in dims for m in methods for s in SEEDS))


def run_ratio(dims: list[int]) -> None:
    """The column's speed: the SWEEP_METHODS at SWEEP_RATIOS."""
    run_resumable(SWEEP_OUT, ((f"{ratio}|{D}|{s}|{m}", lambda D=D, s=s, m=m, ratio=ratio:
                               _one(D, s, m, ratio))
                              for D in dims for ratio in SWEEP_RATIOS
                              for m in SWEEP_METHODS for s in SWEEP_SEEDS))


#: the DMFT's column variants at the fast column, with the spread closure (12.1) of §12.4
FAST_METHODS = ("dmft_spread", "dmft_column", "dmft_nosplit", "dmft_a7", "dmft_resolved")


def run_spread(dims: list[int], ratio: float = 50.0) -> None:
    """FAST_METHODS at alpha / eps = 50 on all SEEDS, into the sweep's file (the runs it
    already has are kept)."""
    run_resumable(SWEEP_OUT, ((f"{ratio}|{D}|{s}|{m}", lambda D=D, s=s, m=m:
                               _one(D, s, m, ratio))
                              for D in dims for s in SEEDS for m in FAST_METHODS))


#: kappa = 3 (the issue's (1, 0.02): alpha / eps = 50): the loss at tau = 40 with and without
#: the split, where the column's memorisation is a large part of the loss
K3_OUT = HERE / "offline_tail_channels_k3.json"
K3_METHODS = SWEEP_METHODS + ("dmft_spread", "dmft_resolved")
#: the same at kappa = 1.5, where the spread closure fails (docs §12.4)
K15_OUT = HERE / "offline_tail_channels_k15.json"
#: and at kappa = 2, where the resolved spread closure is 0.05 low at D = 400 (docs §12.4)
K2_OUT = HERE / "offline_tail_channels_k2.json"
SMALL_KAPPA_OUT = {3.0: K3_OUT, 2.0: K2_OUT, 1.5: K15_OUT}


def run_k3(dims: list[int], kappa: float = 3.0, seeds=SWEEP_SEEDS,
           methods=K3_METHODS) -> None:
    run_resumable(SMALL_KAPPA_OUT[kappa], ((f"{D}|{s}|{m}", lambda D=D, s=s, m=m:
                                            _one(D, s, m, 50.0, kappa))
                                           for D in dims for m in methods for s in seeds))


#: kappa = 2 on more seeds: the exact flow and the spread closure (resolved and first order)
K2_SEEDS, K2_METHODS = tuple(range(16)), ("exact", "dmft_resolved", "dmft_spread")


def _k2_lines(kappa: float = 2.0) -> list[str]:
    """kappa = 2 or 1.5: the spread closure's loss error at tau = 40 on every seed of K2_SEEDS
    run."""
    path = SMALL_KAPPA_OUT[kappa]
    done = json.loads(path.read_text()) if path.exists() else {}
    lines = [""] + markdown_head(
        f"kappa = {kappa:g}, alpha / eps = 50: the spread closure against the exact flow",
        "Relative population loss at tau = 40: the exact flow's seed mean, and the error of "
        "the DMFT's seed mean (resolved: the spread closure's default; first order: "
        "spread_response='first_order') over the seeds where all three ran "
        f"(`offline_tail_channels.py k{str(kappa).replace('.', '').rstrip('0')} D --seeds "
        "...`).",
        ["D", "seeds", "exact", "resolved", "first order"], level=2)
    i40 = TAUS.index(40)
    for D in sorted({int(k.split("|")[0]) for k in done}):
        runs = {m: seed_runs(done, K2_SEEDS, lambda s: f"{D}|{s}|{m}") for m in K2_METHODS}
        every = [i for i in range(len(K2_SEEDS)) if all(v[i] for v in runs.values())]
        if not every:
            continue
        mean = {m: np.mean([v[i]["pop"][i40] for i in every]) for m, v in runs.items()}
        lines.append(f"| {D} | {', '.join(str(K2_SEEDS[i]) for i in every)} | "
                     f"{mean['exact']:.3f} | {mean['dmft_resolved'] - mean['exact']:+.3f} | "
                     f"{mean['dmft_spread'] - mean['exact']:+.3f} |")
    return lines


def _k3_lines() -> list[str]:
    done, lines = _section(
        K3_OUT.stem, "kappa = 3, alpha / eps = 50: the split and the column's memorisation",
        "Seed means (seeds 0-1) of the population loss and of the linear power at tau = 40 "
        "(over the initial loss): exact / DMFT / with A7 / without the split / with the spread "
        "closure (12.1) at first order / the same with its bulk memorisation resolved (the "
        "closure's default) ('—': not run).",
        ["D", "population loss (tau = 40)", "linear power (tau = 40)"])
    for D in sorted({int(k.split("|")[0]) for k in done or ()}):
        runs = {m: seed_runs(done, SWEEP_SEEDS, lambda s: f"{D}|{s}|{m}", present=True)
                for m in K3_METHODS}
        if len(runs["exact"]) < len(SWEEP_SEEDS):
            continue
        lines.append(f"| {D} | " + " | ".join(
            " / ".join(f"{np.mean([r[key][2] for r in v]):.3f}"
                       if len(v) == len(SWEEP_SEEDS) else "—" for v in runs.values())
            for key in ("pop", "lin")) + " |")
    return lines


#: the split's premise X^T r = 0: the share of the exact train residual's |r|^2 in span X
PREMISE_OUT = HERE / "offline_tail_channels_premise.json"
PREMISE_TAUS = (0.1, 1.0, 10.0, 40.0, 80.0)


def _premise_one(D: int, seed: int, ratio: float) -> dict:
    p = _problem(D, seed, ratio)
    basis = np.linalg.qr(ReducedSystem.build(p).X)[0]

    def share(system, F):
        r = system.residuals(F)[1]
        return float(np.sum((basis.T @ r) ** 2) / (r @ r))
    st = [int(round(100 * tau)) for tau in PREMISE_TAUS]
    tr = lr.solve(p, st[-1], method="flow", save_times=st, observers={"share": share})
    return {"share": list(tr["share"][np.searchsorted(tr.t, st)])}


def run_premise(dims: list[int]) -> None:
    run_resumable(PREMISE_OUT, ((f"{ratio}|{D}|{s}", lambda D=D, s=s, ratio=ratio:
                                 _premise_one(D, s, ratio))
                                for D in dims for ratio in SWEEP_RATIOS for s in SWEEP_SEEDS))


def _premise_lines() -> list[str]:
    done, lines = _section(
        PREMISE_OUT.stem, "The split's premise: the share of the exact train residual in span X",
        f"|P_X r|^2 / |r|^2 of the exact flow (seed means, seeds 0-1; a residual with no "
        f"preferred direction has 1 / kappa = {1 / KAPPA:.3f}) at tau = "
        + ", ".join(f"{t:g}" for t in PREMISE_TAUS) + ".", ["alpha / eps", "D", "share"])
    for ratio in SWEEP_RATIOS if done else ():
        for D in sorted({int(k.split("|")[1]) for k in done if k.startswith(f"{ratio}|")}):
            runs = [r["share"] for r in seed_runs(done, SWEEP_SEEDS,
                                                  lambda s: f"{ratio}|{D}|{s}", present=True)]
            lines.append(f"| {ratio:g} | {D} | "
                         + " / ".join(f"{v:.2g}" for v in np.mean(runs, axis=0)) + " |")
    return lines


def _with_column() -> dict[int, dict[str, float]]:
    """D -> method -> exponent over tau = 40-80 of the issue's (1, 0.02) at kappa = 5.5 (the
    linear column on), from offline_tail_certificate.py's exponent table."""
    return {D: {m: v[1] for m, v in row.items()}
            for (D, kappa), row in _exponent_rows(_load()).items() if kappa == KAPPA}


def _cell(runs: list[dict], fmt) -> str:
    return fmt(runs) if runs else "—"


def table() -> None:
    done = json.loads(OUT.read_text())
    col = _with_column()
    lines = markdown_head(
        "The tail exponent of the quadratic-only model: exact flow against the DMFT",
        f"kappa = {KAPPA}, alpha eps = {AE}, alpha / eps = {RATIO} (the exact flow's linear "
        "column too slow to fit: 'lin' is its largest power over the initial loss at "
        "tau = 80), the DMFT without its linear column. qbar_eff = -(1/2) d ln t / d ln tau "
        "of the seed-mean trace excess t over tau = 10-20 / 20-40 / 40-80; pop = the seed-mean "
        "population loss over its initial value at tau = 40 / 80; seeds 0-3. "
        "Last column: the same exponent over tau = 40-80 with the linear column on (alpha / "
        "eps = 50, the issue's (1, 0.02); offline_tail_certificate.md): exact / DMFT / DMFT "
        "with A7.",
        ["D", "exact qbar_eff", "DMFT qbar_eff", "exact pop", "DMFT pop", "exact t (tau = 80)",
         "DMFT t (tau = 80)", "lin (exact)", "with the column (40-80)"])

    def q(runs):
        t = np.mean([r["tbar"] for r in runs], axis=0)
        return " / ".join(f"{_exponent(t, TAUS, lo, hi):.3f}" for lo, hi in zip(TAUS, TAUS[1:]))

    def pop(runs):
        y = np.mean([r["pop"] for r in runs], axis=0)
        return f"{y[2]:.3f} / {y[3]:.3f}"

    def t80(runs):
        return f"{np.mean([r['tbar'][-1] for r in runs]):.3f}"

    for D in sorted({int(k.split("|")[0]) for k in done}):
        runs = {m: seed_runs(done, SEEDS, lambda s: f"{D}|{s}|{m}", present=True)
                for m in ("exact", "dmft")}
        c = col.get(D, {})
        with_col = " / ".join(f"{c[m]:.2f}" if c.get(m) is not None else "—"
                              for m in ("exact", "dmft", "dmft_a7"))
        lines.append("| " + " | ".join([
            str(D), _cell(runs["exact"], q), _cell(runs["dmft"], q), _cell(runs["exact"], pop),
            _cell(runs["dmft"], pop), _cell(runs["exact"], t80), _cell(runs["dmft"], t80),
            _cell(runs["exact"], lambda rs: f"{max(r['lin'][-1] for r in rs):.1e}"),
            with_col]) + " |")
    write_table(HERE / "offline_tail_channels.md", lines + _time_lines(done) + _ratio_lines()
                + _k3_lines() + _k2_lines() + _k2_lines(1.5) + _premise_lines())


def _seed_mean_cell(runs: dict[str, list[dict]], key: str) -> str:
    """'exact / A (err) / B (err)' of the seed means of a summary time in tau, over the runs
    where every method reached it; '—' where none did."""
    ok = [i for i in range(len(runs["exact"]))
          if all(r[i]["summary"][key] is not None for r in runs.values())]
    if not ok:
        return "—"
    mean = {m: np.mean([r[i]["summary"][key] / 100 for i in ok]) for m, r in runs.items()}
    return " / ".join(f"{v:.1f}" + ("" if m == "exact" else
                                    f" ({100 * (v / mean['exact'] - 1):+.0f} %)")
                      for m, v in mean.items()) + f" (n = {len(ok)})"


def _ratio_lines() -> list[str]:
    """The column's speed: exponent, losses, half time and delay against alpha / eps."""
    done, lines = _section(
        SWEEP_OUT.stem, "The column's speed: alpha / eps from 0.01 to 50 at alpha eps = 0.02",
        "Exact flow / the DMFT with its linear column (as `offline_theory` runs it) / with "
        "A7 / without the null-space split A6' (`null_space_split=False`). Seeds 0-1; "
        "qbar_eff over tau = 40-80 of the seed-mean t; pop and the linear power lin at "
        "tau = 80 over the initial loss ('—': not stored); half time and delay "
        "(relative_grokking_time) in tau, seed means over the runs where all reached it, the "
        "theories' errors in brackets. The column's rate is a = (alpha / eps) / kappa per "
        "unit tau.",
        ["alpha / eps", "D", "qbar_eff (40-80)", "pop (tau = 80)", "lin (tau = 80)",
         "half time", "delay"])

    def cells(runs, fmt):
        return " / ".join(fmt(v) if v else "—" for v in runs.values())

    def late(v):
        return f"{_exponent(np.mean([r['tbar'] for r in v], 0), TAUS, 40, 80):.3f}"

    for ratio in SWEEP_RATIOS if done else ():
        for D in sorted({int(k.split("|")[1]) for k in done if k.startswith(f"{ratio}|")}):
            runs = {m: seed_runs(done, SWEEP_SEEDS, lambda s: f"{ratio}|{D}|{s}|{m}",
                                 present=True) for m in SWEEP_METHODS}
            n = len(runs["exact"])
            if n == 0:              # the DMFT alone (``spread`` at D = 800): nothing to compare
                continue
            runs = {m: v if len(v) == n else [] for m, v in runs.items()}
            full = {m: v for m, v in runs.items() if v}
            lines.append("| " + " | ".join([
                f"{ratio:g}", str(D),
                cells(runs, late),
                cells(runs, lambda v: f"{np.mean([r['pop'][-1] for r in v]):.3f}"),
                cells(runs, lambda v: f"{np.mean([r['lin'][-1] for r in v]):.4f}"
                      if all("lin" in r for r in v) else "—"),
                _seed_mean_cell(full, "test_half_time"),
                _seed_mean_cell(full, "relative_grokking_time")]) + " |")
    return lines


def _time_lines(done: dict) -> list[str]:
    """Half time and delay (offline_delay.py's definitions) of the quadratic-only model."""
    keys = ("test_half_time", "relative_grokking_time")
    lines = [""] + markdown_head(
        "The quadratic-only model's half time and delay: exact flow against the DMFT",
        "Seed means in tau (= GD steps / 100) of the test half-loss time and the delay "
        "(relative_grokking_time: the 0.1 x initial times of the population and the train "
        "loss, their difference), exact / DMFT, and the error of the DMFT's seed mean; n = "
        "runs that reached it by tau = 80 (exact / DMFT).", ["D", "seeds"] + [
            f"{k}: exact / DMFT (error), n" for k in keys], level=2)
    for D in sorted({int(k.split("|")[0]) for k in done}):
        seeds = [s for s in SEEDS if all(f"{D}|{s}|{m}" in done for m in ("exact", "dmft"))]
        if not seeds:
            continue
        cells = []
        for key in keys:
            v = {m: [x / 100 for s in seeds
                     if (x := done[f"{D}|{s}|{m}"]["summary"][key]) is not None]
                 for m in ("exact", "dmft")}
            if v["exact"] and v["dmft"]:
                a, b = np.mean(v["exact"]), np.mean(v["dmft"])
                cells.append(f"{a:.1f} / {b:.1f} ({100 * (b / a - 1):+.0f} %), "
                             f"{len(v['exact'])} / {len(v['dmft'])}")
            else:
                cells.append(f"— ({len(v['exact'])} / {len(v['dmft'])} reached)")
        lines.append(f"| {D} | {len(seeds)} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "run"
    if cmd == "run":
        run([int(d) for d in sys.argv[2:]] or [100, 200, 400, 800])
    elif cmd in ("exact", "dmft"):
        if len(sys.argv) < 3:
            sys.exit(f"{cmd} needs the dimensions to run, e.g. {cmd} 1600 3200")
        run([int(d) for d in sys.argv[2:]], methods=(cmd,))
    elif cmd == "ratio":
        run_ratio([int(d) for d in sys.argv[2:]] or [100, 200, 400])
    elif cmd == "spread":
        run_spread([int(d) for d in sys.argv[2:]] or [100, 200, 400, 800])
    elif cmd == "k3":
        run_k3([int(d) for d in sys.argv[2:]] or [100, 200, 400])
    elif cmd in ("k2", "k15"):
        args = sys.argv[2:]
        seeds = SWEEP_SEEDS
        if "--seeds" in args:         # more seeds for the exact flow and the spread closure
            i = args.index("--seeds")
            seeds, args = tuple(int(s) for s in args[i + 1:]), args[:i]
        run_k3([int(d) for d in args] or [100, 200], 2.0 if cmd == "k2" else 1.5, seeds,
               K3_METHODS if seeds == SWEEP_SEEDS else K2_METHODS)
    elif cmd == "premise":
        run_premise([int(d) for d in sys.argv[2:]] or [100, 200])
    elif cmd == "table":
        table()
    else:
        sys.exit(f"unknown command {cmd!r}: run | exact | dmft | ratio | spread | k3 | k2 | k15 | "
                 "premise [D ...] | table")
