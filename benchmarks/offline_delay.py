"""The grokking delay and the two 0.1 times against the exact flow (issue 13 asks the theory
for "the rich-transition (test half-loss) time and the grokking delay"; docs/offline_theory.md
§11.5).

Per run (each seed's own teacher and training set, the "raw" series of §11; N = inf, centered,
convention A, eta0 = 1, horizon 1000 D steps = tau 40 on the DMFT clock): the exact flow, the
spectral closure, the DMFT as derived and the DMFT with the column closure A7
(``column_closure="least_squares"``), each summarised by
:func:`lazyrich_theory.theory.timescales.grokking_summary` -- the definitions of
``summary.json``: train_time and test_time are the first t at which the train / population loss
is below 0.1 (absolute: the paper's threshold, ``paper_grokking_time`` is their difference),
relative_grokking_time (``predicted_grokking_delay``) the difference of the same two times at
0.1 x each curve's initial value, test_half_time the half-loss time; None where not reached
within the horizon.

    python benchmarks/offline_delay.py run D [D ...]   # resumable; one JSON file per D
    python benchmarks/offline_delay.py long [400 800]  # kappa = 5.5, horizon 2000 D
    python benchmarks/offline_delay.py spread [D ...]   # + the spread closure on stored runs
    python benchmarks/offline_delay.py spread_finite [D ...]  # + the same, the column at its
                                                              # finite speed, (12.2)
    python benchmarks/offline_delay.py table            # -> offline_delay.md
    python benchmarks/offline_delay.py docs             # -> offline_delay_docs.md (§11.5's layout)
    python benchmarks/offline_delay.py tail [D ...]     # the late tail -> offline_delay_tail.md

Cost (one core): D = 50-100 ~10 s per run, D = 200 ~1-2 min, D = 400 ~7 min (the exact flow).
"""

from __future__ import annotations

import json
from itertools import product
import sys
import time
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import markdown_head, run_resumable, write_table
from lazyrich_theory.theory.offline import offline_inputs, offline_theory
from lazyrich_theory.theory.timescales import grokking_summary
from offline_tail_spike import tail_columns

HERE = Path(__file__).resolve().parent
KEYS = ("train_time", "test_time", "relative_grokking_time", "test_half_time",
        "final_train_loss", "final_test_loss")
#: theory name -> offline_theory options
THEORIES = {"spectral": {"method": "spectral"},
            "dmft": {"method": "dmft", "column_closure": "dmft"},
            "dmft_a7": {"method": "dmft", "column_closure": "least_squares"}}
#: (kappa, alpha, eps) per D, and the seeds
CELLS = {D: [(k, a, e) for k in (22.0, 11.0, 5.5) for a, e in ((1.0, 0.02), (2.0, 0.04))]
         for D in (50, 100, 200)}
CELLS[400] = [(k, a, e) for k in (22.0, 11.0) for a, e in ((1.0, 0.02), (2.0, 0.04))]
SEEDS = {50: range(4), 100: range(4), 200: range(4), 400: range(4), 800: range(4)}
#: kappa = 5.5 at D = 400 and 800: the exact delay passes 1000 D steps in most runs, so these
#: cells run to LONG_HORIZON D steps (tau = 80)
LONG_CELLS = {400: [(5.5, 1.0, 0.02), (5.5, 2.0, 0.04)], 800: [(5.5, 1.0, 0.02)]}
LONG_HORIZON = 2000


LABELS = {"test_half_time": "population loss at 1/2 its initial value",
          "train_time": "train loss below 0.1 (absolute)",
          "test_time": "population loss below 0.1 (absolute)",
          "paper_grokking_time": "test_time - train_time (the paper's Fig. 3(e) amount of "
                                 "grokking)",
          "relative_grokking_time": "the grokking delay of summary.json (each loss at 0.1 x "
                                    "its initial value)"}


def _path(D: int) -> Path:
    return HERE / f"offline_delay_D{D}.json"


def _load() -> dict[int, dict]:
    """D -> the runs stored for it, for every D that has a result file (the LONG_CELLS' runs
    under the same keys: each (kappa, alpha, eps) is in one of the two files)."""
    out = {D: json.loads(_path(D).read_text()) for D in sorted(CELLS) if _path(D).exists()}
    for D in LONG_CELLS:
        if _long_path(D).exists():
            out.setdefault(D, {}).update(json.loads(_long_path(D).read_text()))
    for D, runs in out.items():            # the ADDED theories, into the runs they belong to
        for (tag, _), long in product(ADDED.values(), (False, True)):
            if _added_path(D, long, tag).exists():
                for key, added in json.loads(_added_path(D, long, tag).read_text()).items():
                    if key in runs:
                        runs[key].update({k: v for k, v in added.items() if k != "wall_time"})
    return out


def _cells(D: int) -> list[tuple[float, float, float]]:
    return CELLS.get(D, []) + LONG_CELLS.get(D, [])


def _horizon(D: int, kappa: float, alpha: float, eps: float) -> str:
    """'' for the standard horizon 1000 D, else a note for the table."""
    return f" (horizon {LONG_HORIZON} D)" if (kappa, alpha, eps) in LONG_CELLS.get(D, []) else ""


def _summary(traj) -> dict:
    g = grokking_summary(traj.t, traj.train_loss, traj.population_loss)
    return {k: g["values"][k] for k in KEYS}


def _problem(D: int, kappa: float, alpha: float, eps: float, seed: int) -> lr.Problem:
    return lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=alpha, eps=eps, seed=seed)


def _tail_steps(D: int, T: int) -> list[int]:
    return [25 * D * tau for tau in TAIL_TAUS if 25 * D * tau <= T]


def _save_steps(D: int, T: int, with_tail: bool) -> np.ndarray:
    """A run's save times: 400 geometric steps to T, plus the tail's (``with_tail``)."""
    tail = _tail_steps(D, T) if with_tail else []
    return np.unique(np.concatenate([[0], np.geomspace(1, T, 400).astype(int), tail]))


def _one(D: int, kappa: float, alpha: float, eps: float, seed: int,
         horizon: int = 1000, with_tail: bool = False) -> dict:
    """One run's summaries; ``with_tail``: also the exact tail at TAIL_TAUS within the horizon
    (for offline_tail_certificate; its steps are then added to the save times)."""
    p = _problem(D, kappa, alpha, eps, seed)
    T = horizon * D
    tail = _tail_steps(D, T) if with_tail else []
    st = _save_steps(D, T, with_tail)
    t0 = time.perf_counter()
    ex = lr.solve(p, T, method="flow", save_times=st)
    out = {"exact": _summary(ex)}
    out["exact_wall"] = time.perf_counter() - t0
    if with_tail:
        out["exact_tail"] = {"taus": TAIL_TAUS[:len(tail)], **tail_columns(
            ex, tail, offline_inputs(p).b2, alpha * eps, D)}
    for name, opts in THEORIES.items():
        t0 = time.perf_counter()
        out[name] = _summary(offline_theory(p, T, save_times=st, **opts))
        out[f"{name}_wall"] = time.perf_counter() - t0
    out["b2"] = offline_inputs(p).b2
    return out


def _jobs(D: int):
    for kappa, a, e in CELLS[D]:
        for s in SEEDS[D]:
            yield (f"{kappa}|{a}|{e}|{s}",
                   lambda k=kappa, a=a, e=e, s=s: _one(D, k, a, e, s))


def run(dims: list[int]) -> None:
    for D in dims:
        run_resumable(_path(D), _jobs(D))


#: Theories added to the stored runs afterwards (each its own files, tagged; same keys, same
#: save times): the DMFT with the spread closure (12.1), its bulk memorisation resolved, and
#: the same with the column at its finite speed, (12.2) (docs §12.4).
ADDED = {"dmft_spread": ("spread", {"method": "dmft", "column_closure": "spread",
                                    "spread_response": "resolved",
                                    "column_speed": "instantaneous"}),
         "dmft_spread_finite": ("spread_finite", {"method": "dmft", "column_closure": "spread",
                                                  "column_speed": "finite"})}


def _added_path(D: int, long: bool, tag: str = "spread") -> Path:
    return HERE / f"offline_delay_{tag}{'_long' if long else ''}_D{D}.json"


def run_added(dims: list[int], name: str = "dmft_spread") -> None:
    """The ADDED theory ``name`` on every stored run of each D (the standard and the long
    cells), at the stored run's horizon and save times."""
    for D in dims:
        for long, cells, horizon in ((False, CELLS.get(D, []), 1000),
                                     (True, LONG_CELLS.get(D, []), LONG_HORIZON)):
            if cells:
                run_resumable(_added_path(D, long, ADDED[name][0]), (
                    (f"{k}|{a}|{e}|{s}", lambda k=k, a=a, e=e, s=s, h=horizon, w=long:
                     _added_one(D, k, a, e, s, h, w, name))
                    for k, a, e in cells for s in SEEDS[D]))


def _added_one(D: int, kappa: float, alpha: float, eps: float, seed: int, horizon: int,
               with_tail: bool, name: str) -> dict:
    p = _problem(D, kappa, alpha, eps, seed)
    T = horizon * D
    t0 = time.perf_counter()
    out = {name: _summary(offline_theory(p, T, save_times=_save_steps(D, T, with_tail),
                                         **ADDED[name][1]))}
    out[f"{name}_wall"] = time.perf_counter() - t0
    return out


def _long_path(D: int) -> Path:
    return HERE / f"offline_delay_long_D{D}.json"


def run_long(dims: list[int]) -> None:
    """The LONG_CELLS at horizon LONG_HORIZON D, with the exact tail, seeds 0-1 of every cell
    before seeds 2-3 (the stored D = 400 runs predate the tail and lack it)."""
    for D in dims:
        run_resumable(_long_path(D), (
            (f"{k}|{a}|{e}|{s}", lambda k=k, a=a, e=e, s=s: _one(
                D, k, a, e, s, horizon=LONG_HORIZON, with_tail=True))
            for pair in ((0, 1), (2, 3)) for k, a, e in LONG_CELLS[D] for s in pair))


def _value(run: dict, key: str) -> float | None:
    """``run[key]``; "paper_grokking_time" is test_time - train_time (None if either is)."""
    if key != "paper_grokking_time":
        return run[key]
    if run["test_time"] is None or run["train_time"] is None:
        return None
    return run["test_time"] - run["train_time"]


def _mean_error(rows: list[dict], name: str, key: str) -> tuple[float, float, int, int]:
    """Seed-mean exact value, relative error of the theory's seed mean, number of runs where
    both exist, number of runs where the exact value exists."""
    ex = [_value(r["exact"], key) for r in rows]
    pairs = [(x, y) for x, r in zip(ex, rows) if x is not None
             and (y := _value(r[name], key)) is not None]
    n_ex = sum(x is not None for x in ex)
    if not pairs:
        return float("nan"), float("nan"), 0, n_ex
    x, y = np.array(pairs).T
    return x.mean(), y.mean() / x.mean() - 1, len(pairs), n_ex


def _cell(rows: list[dict], key: str) -> str:
    mean, _, _, n_ex = _mean_error(rows, "spectral", key)
    parts = [f"{mean:.0f} ({n_ex}/{len(rows)})" if n_ex else f"never (0/{len(rows)})"]
    for name in (*THEORIES, *ADDED):
        if not all(name in r for r in rows):
            parts.append("not run")
            continue
        _, err, n, _ = _mean_error(rows, name, key)
        never = sum(_value(r[name], key) is None for r in rows)
        parts.append(f"{err:+.0%} ({n})" if n else "—")
        if never:
            parts[-1] += f", never in {never}"
    return " | ".join(parts)


def table() -> None:
    cols = ["D", "kappa", "alpha, eps", "exact (runs reached)", "spectral", "DMFT",
            "DMFT + A7", "DMFT + spread", "DMFT + spread, finite speed"]
    lines = markdown_head(
        "Grokking delay and the 0.1 times: theory against the exact flow "
        "(docs/offline_theory.md §11.5)",
        "Exact: seed mean in GD steps (runs that reach it / runs). Theories: error of the seed "
        "mean over the runs where both reach it (their number), and in how many runs the "
        "theory never reaches it within the horizon 1000 D (2000 D where marked).", cols)
    done = _load()
    sections = []
    for key, label in LABELS.items():
        sec = [f"\n## {key}: {label}\n", "| " + " | ".join(cols) + " |",
               "|" + "---|" * len(cols)]
        for D, runs in done.items():
            for kappa, a, e in _cells(D):
                rows = [runs[k] for s in SEEDS[D] if (k := f"{kappa}|{a}|{e}|{s}") in runs]
                if rows:
                    sec.append(f"| {D}{_horizon(D, kappa, a, e)} | {kappa:g} | {a:g}, {e:g} | "
                               f"{_cell(rows, key)} |")
        sections += sec
    write_table(HERE / "offline_delay.md", lines[:3] + sections)


def _pct(err: float) -> str:
    return f"{err * 100:+.0f} %".replace("-", "\u2212")


def _steps(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ")


def _docs_cell(rows: list[dict], key: str, names: tuple[str, ...]) -> str:
    """'exact seed mean: error / error' as in §11.5 ("never in n/4" where a theory does not
    reach the threshold within the horizon)."""
    mean, _, _, n_ex = _mean_error(rows, "spectral", key)
    if not n_ex:
        return f"never ({len(rows)}/{len(rows)})"
    parts = []
    for name in names:
        _, err, n, _ = _mean_error(rows, name, key)
        never = sum(_value(r[name], key) is None for r in rows)
        txt = _pct(err) if n else f"never ({never}/{len(rows)})"
        parts.append(txt + (f" (never in {never}/{len(rows)})" if never and n else ""))
    return f"{_steps(mean)}: " + " / ".join(parts)


def _times_cell(rows: list[dict]) -> str:
    """'train / test exact seed means: spectral error on each'."""
    cells = [_mean_error(rows, "spectral", k) for k in ("train_time", "test_time")]
    return (" / ".join(_steps(c[0]) for c in cells) + ": "
            + " / ".join(_pct(c[1]) for c in cells))


def docs_tables() -> None:
    """The two tables of docs/offline_theory.md §11.5, in its layout, from the result files."""
    done = _load()
    dims = list(done)
    head = ["| κ | (α, ε) | " + " | ".join(f"D = {D}" for D in dims) + " |",
            "|---|---|" + "---|" * len(dims)]
    cells = [(k, a, e) for k in (22.0, 11.0, 5.5) for a, e in ((1.0, 0.02), (2.0, 0.04))]
    out = {"delay: spectral / DMFT with A7": [], "train / test time (absolute 0.1), spectral": [],
           "delay: DMFT + spread / half time: DMFT + spread": []}
    for k, a, e in cells:
        row = {name: [] for name in out}
        for D in dims:
            rows = [done[D][key] for s in SEEDS[D] if (key := f"{k}|{a}|{e}|{s}") in done[D]]
            note = _horizon(D, k, a, e)
            row["delay: spectral / DMFT with A7"].append(
                _docs_cell(rows, "relative_grokking_time", ("spectral", "dmft_a7")) + note
                if rows else "—")
            row["delay: DMFT + spread / half time: DMFT + spread"].append(
                _docs_cell(rows, "relative_grokking_time", ("dmft_spread",)) + "; half "
                + _docs_cell(rows, "test_half_time", ("dmft_spread",)).split(": ")[-1] + note
                if rows and all("dmft_spread" in r for r in rows) else "—")
            row["train / test time (absolute 0.1), spectral"].append(
                _times_cell(rows) + note if rows else "—")
        for name, vals in row.items():
            out[name].append(f"| {k:g} | ({a:g}, {e:g}) | " + " | ".join(vals) + " |")
    lines = []
    for name, body in out.items():
        lines += [f"## {name}", ""] + head + body + [""]
    write_table(HERE / "offline_delay_docs.md", lines)


#: the late tail: exact flow and spectral closure out to tau = 160 (4000 D steps)
TAIL_TAUS = (10, 20, 40, 80, 160)
TAIL_KAPPAS = {50: (4.0, 5.5, 11.0, 22.0), 100: (4.0, 5.5, 11.0, 22.0), 200: (5.5, 11.0)}
TAIL_COLUMNS = ("population_loss", "train_loss", "misalignment", "linear_power")


def _tail_one(D: int, kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p = _problem(D, kappa, alpha, eps, seed)
    st = [0] + [25 * D * tau for tau in TAIL_TAUS]
    out = {}
    for name, solve in (("exact", lambda: lr.solve(p, st[-1], method="flow", save_times=st)),
                        ("spectral", lambda: offline_theory(p, st[-1], method="spectral",
                                                            save_times=st))):
        df = solve().to_pandas()
        out[name] = {c: [float(df[c].loc[t] / df[c].iloc[0]) if c.endswith("_loss") else
                         float(df[c].loc[t] / df["population_loss"].iloc[0])
                         for t in st[1:]] for c in TAIL_COLUMNS}
    return out


def tail(dims: list[int]) -> None:
    path = HERE / "offline_delay_tail.json"
    for D in dims:
        run_resumable(path, ((f"{D}|{k}|{a}|{e}|{s}",
                              lambda k=k, a=a, e=e, s=s: _tail_one(D, k, a, e, s))
                             for k in TAIL_KAPPAS[D] for a, e in ((1.0, 0.02),)
                             for s in (0, 1)))
    done = json.loads(path.read_text())
    lines = markdown_head(
        "The late tail: exact flow against the spectral closure (docs/offline_theory.md §11.5)",
        "Seed means (seeds 0, 1; (alpha, eps) = (1, 0.02)) of the population loss and of its "
        "misalignment part, relative to the initial population loss, at tau = t / (25 D); "
        "'slope' is d ln / d ln tau between tau = 40 and 160.",
        ["D", "kappa", "quantity"] + [f"tau = {tau}" for tau in TAIL_TAUS] + ["slope"])
    for D in sorted({int(k.split("|")[0]) for k in done}):
        for kappa in TAIL_KAPPAS[D]:
            runs = [v for k, v in done.items() if k.startswith(f"{D}|{kappa}|")]
            if not runs:
                continue
            for name in ("exact", "spectral"):
                for col in ("population_loss", "misalignment", "train_loss"):
                    y = np.mean([r[name][col] for r in runs], axis=0)
                    slope = np.log(y[-1] / y[-3]) / np.log(TAIL_TAUS[-1] / TAIL_TAUS[-3])
                    lines.append(f"| {D} | {kappa:g} | {name} {col} | "
                                 + " | ".join(f"{v:.3g}" for v in y) + f" | {slope:+.2f} |")
    write_table(HERE / "offline_delay_tail.md", lines)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "run"
    dims = [int(d) for d in sys.argv[2:]]
    if cmd == "table":
        table()
    elif cmd == "docs":
        docs_tables()
    elif cmd == "tail":
        tail(dims or sorted(TAIL_KAPPAS))
    elif cmd == "run":
        run(dims or [50, 100, 200])
    elif cmd == "long":
        run_long(dims or sorted(LONG_CELLS))
    elif cmd == "spread":
        run_added(dims or [50, 100, 200, 400, 800])
    elif cmd == "spread_finite":
        run_added(dims or [200, 400, 800], "dmft_spread_finite")
    else:
        raise SystemExit(f"unknown command {cmd!r}: run, long, spread, spread_finite, table, "
                         "docs or tail")
