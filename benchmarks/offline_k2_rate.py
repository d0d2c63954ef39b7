"""kappa = 2: how the spread closure's long-time error changes with D, on enough seeds to tell
(issue 13's "errors shrinking from D = 100 to D = 400"; docs/offline_theory.md §12.4).

The quantity is that of offline_a7_grid.py: the relative population loss at t_h = 1000 D
(tau = 40), (alpha, eps) = (1, 0.02), N = inf, each seed's own teacher and training set, the
spread closure (its default, resolved response; Monte Carlo seed 0) at the seed's b2, minus the
exact flow.  Its seed-to-seed scatter is mostly the exact flow's (the theory sees a seed only
through b2), so the standard error needs many seeds.  The runs already made are read, not
rerun: D = 50-200 seeds 0-7 (offline_a7_grid.json, offline_a7_grid_resolved.json), D = 400
seeds 0-15 (offline_final_400.json, offline_dmft_resolved.json), D = 800 seeds 0-15 (the
tau = 40 point of offline_tail_channels_k2.json, the same flow on the tau clock:
``python benchmarks/offline_tail_channels.py k2 800 --seeds ...``).  This script adds seeds:

    python benchmarks/offline_k2_rate.py run       # resumable -> offline_k2_rate.json (~1.5 h)
    python benchmarks/offline_k2_rate.py ablation  # the anomalous term's part (~30 min)
    python benchmarks/offline_k2_rate.py training  # conditioned on the training set's xi
    python benchmarks/offline_k2_rate.py draws     # Monte Carlo draws 1, 2 at D = 400
    python benchmarks/offline_k2_rate.py offset    # draws 1-7 on seed 0 at each D, 8-31 at 400
    python benchmarks/offline_k2_rate.py ns        # eight draws at Ns = 1600, 3200 (D = 400)
    python benchmarks/offline_k2_rate.py table     # -> offline_k2_rate.md
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from lazyrich_theory.theory.offline import offline_theory
from common import (geometric_times, load_results, markdown_head, run_or_table, run_resumable,
                    write_table)
from offline_a7_grid import OUT as GRID, RESOLVED_OUT as GRID_RESOLVED, _resolved_one
from offline_dmft_a7 import CLOSURES as D400_CLOSURES, MC_OUT
from offline_final_400 import OUT as D400_EXACT, _key as d400_key, _metrics
from offline_tail_channels import K2_OUT as D800, TAUS

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_k2_rate.json"
KAPPA, ALPHA, EPS = 2.0, 1.0, 0.02
D400_MC = MC_OUT["resolved"]
#: D -> the seeds this script adds (cheapest first)
EXTRA = {100: range(8, 32), 200: range(8, 32), 400: range(16, 32)}


def _one(D: int, seed: int) -> dict:
    p = lr.Problem(D=D, P=int(round(KAPPA * D)), N=math.inf, alpha=ALPHA, eps=EPS, seed=seed)
    t_h = 1000 * D
    st = geometric_times(t_h)
    return {"exact": _metrics(lr.solve(p, t_h, method="flow", save_times=st)),
            "spread": _resolved_one(D, KAPPA, ALPHA, EPS, seed)}


#: the finite-D ablation: the spread closure without the anomalous Onsager term (docs §8.4)
ABLATION_OUT = HERE / "offline_k2_rate_ablation.json"
ABLATION_DS, ABLATION_SEEDS = (200, 400, 800), range(4)


def _ablation_one(D: int, seed: int) -> dict:
    return {"no_anomalous": _spread(D, seed, anomalous_term=False)}


#: the spread closure conditioned on each training set's xi (xi_law="training", docs §8.7)
TRAINING_OUT = HERE / "offline_k2_rate_training.json"
TRAINING_SEEDS = {100: range(32), 400: range(16), 200: range(22), 800: range(8)}


def _training_one(D: int, seed: int) -> dict:
    return {"training": _spread(D, seed, xi_law="training")}


def _spread(D: int, data_seed: int, **options) -> dict:
    """The spread closure's metrics at (D, the training seed) with extra ``options`` of
    offline_theory (``seed``: the DMFT's Monte Carlo seed)."""
    p = lr.Problem(D=D, P=int(round(KAPPA * D)), N=math.inf, alpha=ALPHA, eps=EPS,
                   seed=data_seed)
    t_h = 1000 * D
    st = geometric_times(t_h)
    return _metrics(offline_theory(p, t_h, method="dmft", save_times=st,
                                   column_closure="spread", column_speed="instantaneous",
                                   **options))


#: Monte Carlo draws 1 and 2 of the spread closure at D = 400 on the seeds added here (seeds
#: 0-15: offline_dmft_a7.py mc resolved); draw 0 is the run's own
DRAWS_OUT = HERE / "offline_k2_rate_draws.json"
DRAWS_SEEDS, MC_SEEDS = range(16, 32), (1, 2)


#: the Monte Carlo offset: the theory hardly depends on the training seed (sd over seeds
#: <= 0.004), so one draw's error is shared by every seed at a D; eight draws (0-7) on seed 0
#: measure how far draw 0 lies from the Monte Carlo mean at each D
OFFSET_OUT = HERE / "offline_k2_rate_offset.json"
OFFSET_DS, OFFSET_DRAWS = (100, 200, 400, 800), range(1, 8)
#: more draws, 8-31, at every D
OFFSET_MORE = range(8, 32)


#: the draws' scatter against the number of Monte Carlo samples (D = 400, seed 0)
NS_OUT = HERE / "offline_k2_rate_ns.json"
NS_VALUES, NS_DRAWS = (1600, 3200), range(8)


def _jobs():
    for D, seeds in EXTRA.items():
        for s in seeds:
            yield f"{D}|{s}", (lambda D=D, s=s: _one(D, s))


def _pairs() -> dict[int, dict[int, tuple[float, float]]]:
    """D -> seed -> (exact, spread) relative loss at tau = 40, from every source."""
    out: dict[int, dict[int, tuple[float, float]]] = {}
    grid, res = load_results(GRID), load_results(GRID_RESOLVED)
    for D in (50, 100, 200):
        for s in range(8):
            k = f"{D}|{KAPPA}|{ALPHA}|{EPS}|{s}"
            if k in grid and k in res and res[k]["final"] is not None:
                out.setdefault(D, {})[s] = (grid[k]["exact"]["final"], res[k]["final"])
    exact400, res400 = load_results(D400_EXACT), load_results(D400_CLOSURES["resolved"][1])
    for s in range(16):
        k = d400_key(KAPPA, ALPHA, EPS, s)
        if k in exact400 and k in res400:
            out.setdefault(400, {})[s] = (exact400[k]["exact"]["final"], res400[k]["final"])
    k2, i40 = load_results(D800), TAUS.index(40)
    for s in range(64):
        ex, sp = k2.get(f"800|{s}|exact"), k2.get(f"800|{s}|dmft_resolved")
        if ex and sp:
            out.setdefault(800, {})[s] = (ex["pop"][i40], sp["pop"][i40])
    for key, r in load_results(OUT).items():
        D, s = (int(x) for x in key.split("|"))
        if r["spread"]["final"] is not None:
            out.setdefault(D, {})[s] = (r["exact"]["final"], r["spread"]["final"])
    return out


def _rate(Ds: np.ndarray, err: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    """Weighted least squares of log|err| = log c - p log D (weights from the standard errors,
    d log|err| = se / |err|): (p, its standard error, chi^2 per degree of freedom)."""
    y, w = np.log(np.abs(err)), (np.abs(err) / se) ** 2
    A = np.stack([np.ones_like(Ds), -np.log(Ds)], axis=1)
    cov = np.linalg.inv(A.T @ (w[:, None] * A))
    coef = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - A @ coef) ** 2)) / max(len(Ds) - 2, 1)
    return float(coef[1]), float(math.sqrt(cov[1, 1])), chi2


def table() -> None:
    pairs = _pairs()
    lines = markdown_head(
        "kappa = 2: the spread closure's long-time error against D",
        "Relative population loss at tau = 40 ((alpha, eps) = (1, 0.02)): the exact flow's "
        "seed mean, and the error spread closure - exact (resolved response, Monte Carlo "
        "seed 0) as its mean over the seeds, the sample sd (ddof = 1) and the standard error "
        "sd / sqrt(n); and the error times sqrt(D / 400) (constant if "
        "the error falls like D^(-1/2)).",
        ["D", "seeds", "exact", "error", "sd", "standard error", "error x sqrt(D/400)"])
    rows = []
    for D in sorted(pairs):
        v = np.array(list(pairs[D].values()))
        err = v[:, 1] - v[:, 0]
        sd = float(np.std(err, ddof=1))
        se = sd / math.sqrt(len(err))
        rows.append((D, float(np.mean(err)), se))
        lines.append(f"| {D} | {len(err)} | {np.mean(v[:, 0]):.3f} | {np.mean(err):+.3f} | "
                     f"{sd:.3f} | {se:.3f} | {np.mean(err) * math.sqrt(D / 400):+.3f} |")
    fit = [(D, e, s) for D, e, s in rows if D >= 200]
    if len(fit) >= 3:
        p, dp, chi2 = _rate(*(np.array(c, dtype=float) for c in zip(*fit)))
        lines += ["", f"Rate over D = {', '.join(str(D) for D, _, _ in fit)} (weighted fit of "
                  f"|error| = c D^(-p)): p = {p:.2f} ± {dp:.2f}, chi^2 per degree of freedom "
                  f"{chi2:.2f}."]
    write_table(HERE / "offline_k2_rate.md", lines + _offset_lines(pairs) + _ns_lines(pairs)
                + _draws_lines(pairs)
                + _ablation_lines(pairs) + _training_lines(pairs))


def _offset_lines(pairs: dict) -> list[str]:
    """The error with draw 0's Monte Carlo offset removed (eight draws on seed 0), its
    standard error (the exact flow's over the seeds and the draws' combined), and the fits."""
    done, lines = _section(
        OFFSET_OUT, "With the Monte Carlo offset removed",
        "Draw 0's offset from the mean of the draws on training seed 0 (the theory's spread "
        "over training seeds is <= 0.004, so the offset is shared by every seed at a D), with "
        "its standard error (sd / sqrt(draws)), and one draw's sd; the error of the first "
        "table plus that offset, with the two standard errors combined.",
        ["D", "draws", "offset", "its standard error", "sd of one draw", "error",
         "standard error"])
    rows = []
    for D in OFFSET_DS:
        runs = [done.get(f"{D}|0|{mc}") for mc in OFFSET_DRAWS]
        if D not in pairs or 0 not in pairs[D] or not all(runs):
            continue
        runs += [r for mc in OFFSET_MORE if (r := done.get(f"{D}|0|{mc}"))]
        vals = np.array([pairs[D][0][1]] + [r["final"] for r in runs])
        off, mc_se = float(vals.mean() - vals[0]), float(vals.std(ddof=1) / math.sqrt(len(vals)))
        v = np.array(list(pairs[D].values()))
        err = v[:, 1] - v[:, 0]
        se = math.hypot(float(np.std(err, ddof=1)) / math.sqrt(len(err)), mc_se)
        rows.append((D, float(np.mean(err)) + off, se))
        lines.append(f"| {D} | {len(vals)} | {off:+.3f} | {mc_se:.3f} | "
                     f"{float(vals.std(ddof=1)):.3f} | {rows[-1][1]:+.3f} | {se:.3f} |")
    for lo in (100, 200):
        fit = [r for r in rows if r[0] >= lo]
        if len(fit) >= 3:
            Ds, e, se = (np.array(c, dtype=float) for c in zip(*fit))
            p, dp, chi2 = _rate(Ds, e, se)
            w = se ** -2
            mean = float(np.sum(w * e) / np.sum(w))
            flat = float(np.sum(w * (e - mean) ** 2)) / (len(e) - 1)
            lines += ["", f"D >= {lo}: |error| = c D^(-p) gives p = {p:.2f} ± {dp:.2f} "
                      f"(chi^2 per degree of freedom {chi2:.2f}); a constant error "
                      f"({mean:+.3f}) gives chi^2 per degree of freedom {flat:.2f}."]
    return lines


def _ns_lines(pairs: dict) -> list[str]:
    """D = 400, seed 0: the draws' mean and scatter at Ns = 800 (the default) and more."""
    done, lines = _section(
        NS_OUT, "D = 400: the draws against Ns",
        "The spread closure's loss at tau = 40 on training seed 0 over Monte Carlo draws 0-7 "
        "at each Ns: their mean minus the exact loss, the sample sd of one draw, and the "
        "standard error of the mean.",
        ["Ns", "draws", "error of the mean", "sd of one draw", "standard error"])
    off = load_results(OFFSET_OUT)
    if 400 not in pairs or 0 not in pairs[400]:
        return lines
    exact = pairs[400][0][0]
    rows = {800: [pairs[400][0][1]] + [off[f"400|0|{mc}"]["final"] for mc in range(1, 8)
                                        if f"400|0|{mc}" in off]}
    for ns in NS_VALUES:
        rows[ns] = [done[f"400|0|{mc}|{ns}"]["final"] for mc in NS_DRAWS
                    if f"400|0|{mc}|{ns}" in done]
    for ns, vals in rows.items():
        if len(vals) >= 2:
            sd = float(np.std(vals, ddof=1))
            lines.append(f"| {ns} | {len(vals)} | {np.mean(vals) - exact:+.3f} | {sd:.3f} | "
                         f"{sd / math.sqrt(len(vals)):.3f} |")
    return lines


def _draws_lines(pairs: dict) -> list[str]:
    """D = 400: the error of the mean over Monte Carlo draws 0-2 (``--dmft-draws 3``)."""
    done = {**{f"400|{s}|{mc}": v for s in range(16) for mc in MC_SEEDS
               if (v := load_results(D400_MC).get(f"{d400_key(KAPPA, ALPHA, EPS, s)}|{mc}"))},
            **load_results(DRAWS_OUT)}
    seeds = [s for s in sorted(pairs.get(400, {}))
             if all(f"400|{s}|{mc}" in done for mc in MC_SEEDS)]
    _, lines = _section(DRAWS_OUT, "D = 400: the mean of three Monte Carlo draws",
                        "The spread closure's error at tau = 40 on the seeds where draws 0, 1 "
                        "and 2 ran: draw 0 alone and the mean of the three (what --dmft-draws 3 "
                        "gives); mean over the seeds, sample sd, standard error.",
                        ["seeds", "draw 0: error", "sd", "standard error", "three draws: error",
                         "sd", "standard error"])
    if len(seeds) < 2:
        return lines
    exact = np.array([pairs[400][s][0] for s in seeds])
    one = np.array([pairs[400][s][1] for s in seeds])
    three = (one + sum(np.array([done[f"400|{s}|{mc}"]["final"] for s in seeds])
                       for mc in MC_SEEDS)) / 3
    cells = [_mean_sd_se(e) for e in (one - exact, three - exact)]
    lines.append(f"| {len(seeds)} | {' | '.join(cells)} |")
    return lines


def _mean_sd_se(x: np.ndarray) -> str:
    """Table cells: the mean, the sample sd and the standard error of ``x``."""
    sd = float(np.std(x, ddof=1))
    return f"{np.mean(x):+.3f} | {sd:.3f} | {sd / math.sqrt(len(x)):.3f}"


def _section(path: Path, title: str, intro: str, columns: list[str]) -> tuple[dict, list[str]]:
    """(the runs of ``path``, the first lines of its table under a level-2 heading)."""
    return load_results(path), [""] + markdown_head(title, intro, columns, level=2)


def _training_lines(pairs: dict) -> list[str]:
    """The spread closure conditioned on the training set's xi against the Gaussian law."""
    done, lines = _section(
        TRAINING_OUT, "Conditioned on the training set's xi",
        "The spread closure's error against the exact flow at tau = 40 with xi drawn from "
        "each training set's empirical law (xi_law='training') and from N(0, 1) (the "
        "default), on the same seeds: mean, sample sd over the seeds, standard error.",
        ["D", "seeds", "training: error", "sd", "standard error", "gaussian: error", "sd",
         "standard error"])
    for D in sorted(TRAINING_SEEDS):
        seeds = [s for s in TRAINING_SEEDS[D] if f"{D}|{s}" in done and s in pairs.get(D, {})
                 and done[f"{D}|{s}"]["training"]["final"] is not None]
        if len(seeds) < 2:
            continue
        cells = []
        for theory in ([done[f"{D}|{s}"]["training"]["final"] for s in seeds],
                       [pairs[D][s][1] for s in seeds]):
            cells.append(_mean_sd_se(np.array(theory) - np.array([pairs[D][s][0]
                                                                   for s in seeds])))
        lines.append(f"| {D} | {len(seeds)} | {' | '.join(cells)} |")
    return lines


def _ablation_lines(pairs: dict) -> list[str]:
    """The anomalous Onsager term's share of the spread closure's loss at tau = 40."""
    done, lines = _section(
        ABLATION_OUT, "The anomalous Onsager term's part",
        "The spread closure's loss at tau = 40 with its anomalous Onsager term (xi^2 / D) R_x "
        "(docs §8.4) minus the same without it, on the training seeds listed, and the "
        "closure's error against the exact flow on the same seeds; both also times "
        "sqrt(D / 400).",
        ["D", "seeds", "with - without", "x sqrt(D/400)", "error (same seeds)",
         "x sqrt(D/400)"])
    for D in ABLATION_DS:
        seeds = [s for s in ABLATION_SEEDS if f"{D}|{s}" in done and s in pairs.get(D, {})]
        if not seeds:
            continue
        part = np.mean([pairs[D][s][1] - done[f"{D}|{s}"]["no_anomalous"]["final"]
                        for s in seeds])
        err = np.mean([pairs[D][s][1] - pairs[D][s][0] for s in seeds])
        f = math.sqrt(D / 400)
        lines.append(f"| {D} | {', '.join(map(str, seeds))} | {part:+.3f} | {part * f:+.3f} | "
                     f"{err:+.3f} | {err * f:+.3f} |")
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["ablation"]:
        run_resumable(ABLATION_OUT, ((f"{D}|{s}", lambda D=D, s=s: _ablation_one(D, s))
                                     for D in ABLATION_DS for s in ABLATION_SEEDS))
    elif sys.argv[1:2] == ["draws"]:
        run_resumable(DRAWS_OUT, ((f"400|{s}|{mc}", lambda s=s, mc=mc: _spread(400, s, seed=mc))
                                  for s in DRAWS_SEEDS for mc in MC_SEEDS))
    elif sys.argv[1:2] == ["offset"]:
        run_resumable(OFFSET_OUT, ((f"{D}|0|{mc}", lambda D=D, mc=mc: _spread(D, 0, seed=mc))
                                   for D, mcs in [*((D, OFFSET_DRAWS) for D in OFFSET_DS),
                                                  (400, OFFSET_MORE),
                                                  *((D, OFFSET_MORE) for D in OFFSET_DS)]
                                   for mc in mcs))
    elif sys.argv[1:2] == ["ns"]:
        run_resumable(NS_OUT, ((f"400|0|{mc}|{ns}", lambda mc=mc, ns=ns: _spread(400, 0, seed=mc,
                                                                                  Ns=ns))
                               for ns in NS_VALUES for mc in NS_DRAWS))
    elif sys.argv[1:2] == ["training"]:
        run_resumable(TRAINING_OUT, ((f"{D}|{s}", lambda D=D, s=s: _training_one(D, s))
                                     for D, seeds in TRAINING_SEEDS.items() for s in seeds))
    else:
        run_or_table(OUT, _jobs, table)
