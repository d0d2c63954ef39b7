"""Closure A7 of the DMFT's linear column (``column_closure="least_squares"``) and the fast
column's spread closure (12.1) (``column_closure="spread"``), docs/offline_theory.md §12.4, at
D = 400: the loss at the horizon and the half time against the exact flow and the DMFT as
derived, on the runs of benchmarks/offline_final_400.json (each seed's own teacher,
(alpha, eps) = (1, 0.02) and (2, 0.04), t_h = 1000 D, tau = 40).

    python benchmarks/offline_dmft_a7.py run [a7|spread|resolved]  # resumable, ~3 / ~10 / ~20 min
    python benchmarks/offline_dmft_a7.py mc spread|resolved  # kappa <= 2, Monte Carlo seeds
                                                             # 1-2 (~10 min / ~20 min)
    python benchmarks/offline_dmft_a7.py table               # -> offline_dmft_a7.md
    python benchmarks/offline_dmft_a7.py smalld [a7|spread]  # D = 50-200: the runs of
        # offline_theory.py (raw series, (1, 0.02)) -> offline_dmft_a7_smalld.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from common import load_results, markdown_head, run_resumable, write_table
from lazyrich_theory.theory.offline import offline_theory
from offline_final_400 import CELLS, OUT as EXACT, T_H, _key, _metrics, cell_jobs, cell_problem

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_dmft_a7.json"
SMALL_OUT = HERE / "offline_dmft_a7_smalld.json"
#: closure -> (column_closure, D = 400 results, D = 50-200 results, more DMFT options);
#: "spread": the spread closure with its memorisation at first order (a diagnostic since the
#: resolved response became the closure's default); "resolved": the spread closure as it
#: runs by default, its bulk memorisation resolved; "full": the spike's resolved too (a
#: diagnostic)
CLOSURES = {"a7": ("least_squares", OUT, SMALL_OUT, {}),
            "spread": ("spread", HERE / "offline_dmft_spread.json",
                       HERE / "offline_dmft_spread_smalld.json",
                       {"spread_response": "first_order", "column_speed": "instantaneous"}),
            "resolved": ("spread", HERE / "offline_dmft_resolved.json",
                         HERE / "offline_dmft_resolved_smalld.json",
                         {"spread_response": "resolved", "column_speed": "instantaneous"}),
            "full": ("spread", HERE / "offline_dmft_full.json",
                     HERE / "offline_dmft_full_smalld.json",
                     {"spread_response": "full", "column_speed": "instantaneous"})}


#: the spread closure at kappa <= 2 with more Monte Carlo seeds of the DMFT (its population
#: dynamics scatters most there): closure -> file of "cell key|mc seed" -> results (seed 0 is
#: the ``run`` file of the closure)
MC_OUT = {"spread": HERE / "offline_dmft_spread_mc.json",
          "resolved": HERE / "offline_dmft_resolved_mc.json"}
MC_SEEDS, MC_KAPPAS = (1, 2), (1.5, 2.0)


def _one(kappa: float, alpha: float, eps: float, seed: int, closure: str = "a7",
         mc: int = 0) -> dict:
    p, st = cell_problem(kappa, alpha, eps, seed)
    return _metrics(offline_theory(p, T_H, method="dmft", save_times=st, seed=mc,
                                   column_closure=CLOSURES[closure][0], **CLOSURES[closure][3]))


def run_mc(closure: str) -> None:
    run_resumable(MC_OUT[closure], ((f"{_key(k, a, e, s)}|{mc}", lambda k=k, a=a, e=e, s=s,
                                     mc=mc: _one(k, a, e, s, closure=closure, mc=mc))
                           for k, a, e, seeds in CELLS if k in MC_KAPPAS
                           for s in seeds for mc in MC_SEEDS))


def _err(xs: list[float]) -> str:
    return f"{np.mean(xs):+.3f} ± {np.std(xs):.3f} ({len(xs)})" if xs else "—"


def _half_err(th: list, ex: list) -> str:
    pairs = [(a, b) for a, b in zip(th, ex) if a is not None and b is not None]
    if not pairs:
        return "—"
    return f"{100 * (np.mean([a for a, _ in pairs]) / np.mean([b for _, b in pairs]) - 1):+.1f} %"


def table() -> None:
    exact = json.loads(EXACT.read_text())
    runs = {"DMFT": {k: v["dmft"] for k, v in exact.items()}}
    runs.update({c: load_results(v[1]) for c, v in CLOSURES.items()})
    lines = markdown_head(
        "DMFT closures A7 (least-squares column), spread (12.1) and its resolved variant at "
        "D = 400 (docs/offline_theory.md §12.4)",
        "Relative population loss at tau = 40: error = theory - exact, mean ± sd (number of "
        "seeds); half time: error of the seed mean (seeds where both halve). DMFT: as derived "
        "(benchmarks/offline_final_400.json); a7: column_closure='least_squares'; spread: "
        "column_closure='spread', spread_response='first_order'; resolved: the same with "
        "spread_response='resolved', the closure's default; full: spread_response='full' (— : "
        "not run).",
        ["kappa", "alpha, eps", "seeds", "exact"] + [f"{m} error" for m in runs]
        + [f"half time {m}" for m in runs])
    for kappa, a, e, seeds in CELLS:
        keys = [_key(kappa, a, e, s) for s in seeds if _key(kappa, a, e, s) in runs["a7"]]
        if not keys:
            continue
        ex = [exact[k]["exact"]["final"] for k in keys]
        hx = [exact[k]["exact"]["half"] for k in keys]
        ok = {m: all(k in r for k in keys) for m, r in runs.items()}
        errs = [_err([r[k]["final"] - x for k, x in zip(keys, ex)]) if ok[m] else "—"
                for m, r in runs.items()]
        halves = [_half_err([r[k]["half"] for k in keys], hx) if ok[m] else "—"
                  for m, r in runs.items()]
        lines.append(f"| {kappa:g} | {a:g}, {e:g} | {len(keys)} | {np.mean(ex):.3f} | "
                     + " | ".join(errs + halves) + " |")
    for closure in MC_OUT:
        lines += _mc_lines(exact, runs[closure], closure)
    write_table(HERE / "offline_dmft_a7.md", lines)


def _mc_lines(exact: dict, spread: dict, closure: str) -> list[str]:
    """The spread closure (``closure``: "spread", first order, or "resolved") at kappa <= 2
    on Monte Carlo seeds 0 (``run``) and MC_SEEDS."""
    mc = load_results(MC_OUT[closure])
    if not mc:
        return []
    lines = [""] + markdown_head(
        f"The spread closure ({'first order' if closure == 'spread' else 'resolved'}) at "
        "kappa <= 2 over the DMFT's Monte Carlo seeds",
        "Loss error at tau = 40 (theory - exact), mean ± sd over the cell's seeds, for each "
        f"Monte Carlo seed of the DMFT (`offline_dmft_a7.py mc {closure}`; seed 0: the table "
        "above).",
        ["kappa", "alpha, eps", "seeds"] + [f"MC seed {m}" for m in (0,) + MC_SEEDS], level=2)
    for kappa, a, e, seeds in CELLS:
        keys = [_key(kappa, a, e, s) for s in seeds]
        if kappa not in MC_KAPPAS or not all(k in spread for k in keys):
            continue
        runs = [[spread[k] for k in keys]] + [[mc.get(f"{k}|{m}") for k in keys]
                                              for m in MC_SEEDS]
        ex = [exact[k]["exact"]["final"] for k in keys]
        lines.append(f"| {kappa:g} | {a:g}, {e:g} | {len(keys)} | " + " | ".join(
            _err([r["final"] - x for r, x in zip(rs, ex)]) if all(rs) else "—"
            for rs in runs) + " |")
    return lines


SMALL_DS, SMALL_KAPPAS = (50, 100, 200), (1.5, 2.0, 3.0, 5.5, 11.0)


def smalld(closure: str | None = None) -> None:
    """A7 and the spread closure against the exact runs and the DMFT as derived of
    benchmarks/offline_theory.py at D = 50-200 (raw series, (alpha, eps) = (1, 0.02), the loss
    at t_h = 1000 D): runs ``closure``'s missing cells (none: table only), then the table."""
    from lazyrich_theory.theory.offline import OfflineInputs, offline_curves
    from offline_theory import EXACT_JSON, HORIZON_PER_D, THEORY_JSON, metrics
    from offline_theory import _key as theory_key

    exact = [r for r in json.loads(Path(EXACT_JSON).read_text())
             if r["series"] == "raw" and (r["alpha"], r["eps"]) == (1.0, 0.02)
             and r["D"] in SMALL_DS and r["kappa"] in SMALL_KAPPAS]
    plain = json.loads(Path(THEORY_JSON).read_text())

    def jobs(spec):
        for r in exact:
            def job(r=r):
                inp = OfflineInputs(kappa=r["kappa"], alpha=1.0, eps=0.02, eta0=1.0, b2=r["b2"],
                                    D=r["D"])
                t = np.concatenate([[0.0], np.geomspace(1.0, HORIZON_PER_D * r["D"], 400)])
                c = offline_curves(inp, t, "dmft", column_closure=spec[0], **spec[3])
                return {"final": metrics(t, c["population_loss"], r["D"])[1]}
            yield f"{r['D']}|{r['kappa']:g}|{r['seed']}", job
    if closure is not None:
        run_resumable(CLOSURES[closure][2], jobs(CLOSURES[closure]))
    done = {c: load_results(v[2]) for c, v in CLOSURES.items()}
    lines = markdown_head(
        "DMFT closures A7 and spread at D = 50-200 (docs/offline_theory.md §12.4)",
        "Relative population loss at t_h = 1000 D (tau = 40), raw series, (alpha, eps) = "
        "(1, 0.02): error = theory - exact, mean ± sd (number of seeds). DMFT: as derived "
        "(benchmarks/offline_theory_theory.json); a7: column_closure='least_squares'; spread: "
        "column_closure='spread', spread_response='first_order'; resolved: the same with "
        "spread_response='resolved', the closure's default; full: spread_response='full' (— : "
        "not run).",
        ["D", "kappa", "seeds", "exact", "DMFT error"] + [f"{c} error" for c in CLOSURES])
    for d in SMALL_DS:
        for kappa in SMALL_KAPPAS:
            rows = [r for r in exact if r["D"] == d and r["kappa"] == kappa
                    and r["final"] is not None
                    and f"{d}|{kappa:g}|{r['seed']}" in done["a7"]]
            if not rows:
                continue
            ex = [r["final"] for r in rows]
            dm = [plain[k]["final"] - r["final"] for r in rows
                  if (k := theory_key("dmft", d, kappa, 1.0, 0.02, r["b2"])) in plain
                  and plain[k]["final"] is not None]
            cells = []
            for c in CLOSURES:
                keys = [f"{d}|{kappa:g}|{r['seed']}" for r in rows]
                cells.append(_err([done[c][k]["final"] - x for k, x in zip(keys, ex)])
                             if all(k in done[c] for k in keys) else "—")
            lines.append(f"| {d} | {kappa:g} | {len(rows)} | {np.mean(ex):.3f} | {_err(dm)} | "
                         + " | ".join(cells) + " |")
    write_table(HERE / "offline_dmft_a7_smalld.md", lines)


def main(args: list[str]) -> None:
    cmd = args[0] if args else "run"
    closure = args[1] if len(args) > 1 else None
    if closure is not None and closure not in CLOSURES:
        raise SystemExit(f"unknown closure {closure!r}: {' | '.join(CLOSURES)}")
    if cmd == "smalld":
        smalld(closure)
    elif cmd == "run":
        closure = closure or "a7"
        run_resumable(CLOSURES[closure][1], cell_jobs(lambda *a: _one(*a, closure=closure)))
    elif cmd == "mc":
        if closure not in MC_OUT:
            raise SystemExit(f"mc runs the spread closure: mc {' | '.join(MC_OUT)}")
        run_mc(closure)
    elif cmd == "table":
        table()
    else:
        raise SystemExit(f"unknown command {cmd!r}: run | smalld [closure] | mc spread|resolved "
                         "| table")


if __name__ == "__main__":
    main(sys.argv[1:])
