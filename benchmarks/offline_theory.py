"""Validation of the offline theory (lazyrich_theory.theory.offline) against the exact reduced
solver: test half-loss time and long-time relative test loss, seed-averaged, at
D = 50, 100, 200, 400, kappa in {1.5, 2, 3, 5.5, 11, 22}, (alpha, eps) in {(1, 0.02), (2, 0.04)}
(N = inf, centered, convention A, eta0 = 1, gradient flow).  docs/offline_theory.md §11.

The exact runs are not recomputed here: they were cached by the two prototypes of issue 13
(``lr.solve(problem, T, method="flow")``), in two series:

* "raw" (scratch t13a, ``D{D}_k{kappa}_a{alpha}_e{eps}_s{seed}_T{T}_flow[_st].npz``): the
  problem's own teacher, so b2 = |beta|^2 / D varies with the seed; the theory is evaluated at
  each seed's b2 (a problem parameter, not a fit);
* "unit" (scratch t13b, ``o_flow_D{D}_k{kappa}_a{alpha}_e{eps}_s{seed}.npz``): beta rescaled to
  |beta|^2 = D (b2 = 1 exactly).

Steps (each reads the previous one's JSON next to this script):

    python benchmarks/offline_theory.py extract                      # exact metrics -> *_exact.json
    python benchmarks/offline_theory.py theory spectral|dmft         # theory metrics -> *_theory.json
    python benchmarks/offline_theory.py theory dmft raw              # the DMFT at the raw seeds' b2
    python benchmarks/offline_theory.py theory dmft-training         # the DMFT conditioned on each
                                                                     # raw seed's training set (xi law)
    python benchmarks/offline_theory.py table                        # markdown tables on stdout

Metrics: half time = first t at which the population loss is half its initial value
(log-linear interpolation); "final" = population loss / initial at the horizon t_h = 1000 D
steps (tau = 2 eta0 eps t / (alpha D) = 40 for both configurations).  A run that ends before
t_h gives no final value; a run that ends before halving gives no half time (unknown, not
"never"), unless it reaches t_h ("never").
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import sys
import time

import numpy as np

from lazyrich_theory.theory.timescales import first_time_below

HERE = os.path.dirname(os.path.abspath(__file__))
EXACT_JSON = os.path.join(HERE, "offline_theory_exact.json")
THEORY_JSON = os.path.join(HERE, "offline_theory_theory.json")
#: Where the exact runs are cached ("raw": the problem's teacher; the last folder holds the
#: D = 400, kappa = 1.5 and 2 runs added for this table, same format).
RAW_DIRS = ("/work/scratch/t13a/cache", "/tmp/t13c/cache")
UNIT_DIR = "/work/scratch/t13b/cache"
KAPPAS = (1.5, 2.0, 3.0, 5.5, 11.0, 22.0)
CONFIGS = ((1.0, 0.02), (2.0, 0.04))
DS = (50, 100, 200, 400)
HORIZON_PER_D = 1000.0           # t_h = 1000 D steps (tau = 40 at alpha / eps = 50)


def metrics(t, pop, D):
    """(half time or None/"never", final relative loss at t_h or None)."""
    t, pop = np.asarray(t, float), np.asarray(pop, float)
    th = HORIZON_PER_D * D
    h = first_time_below(t, pop, 0.5 * pop[0])
    if math.isfinite(h) and h <= th:
        half = h
    else:
        half = "never" if t[-1] >= th * (1 - 1e-9) else None
    final = None
    if t[-1] >= th * (1 - 1e-9):
        final = float(np.interp(math.log1p(th), np.log1p(t), pop) / pop[0])
    return half, final


def b2_of_seed(D, seed):
    """|beta|^2 / D of the problem's teacher (stream SeedSequence(seed).spawn(4)[2])."""
    import lazyrich_theory as lr

    beta = lr.Problem(D=D, P=D + 1, N="inf", seed=seed).data().beta
    return float(beta @ beta / D)


def _parse(name, pattern):
    m = re.match(pattern, os.path.basename(name))
    return None if m is None else m.groupdict()


def extract(raw_dirs=RAW_DIRS, unit_dir=UNIT_DIR):
    """Read the caches into per-run records (the longest run per key)."""
    best = {}
    raw = r"D(?P<D>\d+)_k(?P<k>[\d.]+)_a(?P<a>[\d.]+)_e(?P<e>[\d.]+)_s(?P<s>\d+)_T(?P<T>\d+)_flow"
    files = [f for d in raw_dirs for f in glob.glob(os.path.join(d, "D*_flow*.npz"))]
    for f in files:
        g = _parse(f, raw)
        if g is None:
            continue
        key = ("raw", int(g["D"]), float(g["k"]), float(g["a"]), float(g["e"]), int(g["s"]))
        if key not in best or int(g["T"]) > best[key][1]:
            best[key] = (f, int(g["T"]))
    unit = r"o_flow_D(?P<D>\d+)_k(?P<k>[\d.]+)_a(?P<a>[\d.]+)_e(?P<e>[\d.]+)_s(?P<s>\d+)\.npz"
    for f in glob.glob(os.path.join(unit_dir, "o_flow_*.npz")):
        g = _parse(f, unit)
        if g is not None:
            key = ("unit", int(g["D"]), float(g["k"]), float(g["a"]), float(g["e"]), int(g["s"]))
            best[key] = (f, 0)
    records = []
    for key, (f, _) in sorted(best.items()):
        series, D, k, a, e, s = key
        z = np.load(f)
        half, final = metrics(z["t"], z["pop"], D)
        b2 = 1.0 if series == "unit" else b2_of_seed(D, s)
        records.append(dict(series=series, D=D, kappa=k, alpha=a, eps=e, seed=s, b2=b2,
                            t_end=float(z["t"][-1]), half=half, final=final,
                            file=os.path.basename(f)))
    with open(EXACT_JSON, "w") as fh:
        json.dump(records, fh, indent=1)
    print(f"{len(records)} exact runs -> {EXACT_JSON}")


def _key(method, D, kappa, alpha, eps, b2):
    return f"{method}|{D}|{kappa:g}|{alpha:g}|{eps:g}|{b2:.12g}"


def _load(path):
    if os.path.isfile(path):
        with open(path) as fh:
            return json.load(fh)
    return {}


def _theory_one(method, D, kappa, alpha, eps, b2, seed=None):
    from lazyrich_theory.theory.offline import OfflineInputs, offline_curves

    inp = OfflineInputs(kappa=kappa, alpha=alpha, eps=eps, eta0=1.0, b2=b2, D=D)
    t = np.concatenate([[0.0], np.geomspace(1.0, HORIZON_PER_D * D, 400)])
    options = {"column_closure": "dmft"} if method.startswith("dmft") else {}   # as derived
    if method == "dmft-training":       # the raw seed's own training set: its xi law
        import lazyrich_theory as lr
        from lazyrich_theory.theory.offline.inputs import training_xi

        problem = lr.Problem(D=D, P=int(round(kappa * D)), N="inf", seed=seed)
        options["xi_train"] = training_xi(problem)
        method = "dmft"
    t0 = time.perf_counter()
    c = offline_curves(inp, t, method, **options)
    half, final = metrics(t, c["population_loss"], D)
    return dict(half=half, final=final, wall=time.perf_counter() - t0)


def _wanted(method, r, raw):
    """Whether the record gets a theory run: spectral every record; dmft the unit series and
    D = 400 (with ``raw``: the raw series at 3 <= kappa <= 11 too); dmft-training the raw
    series at 3 <= kappa <= 11 (each seed's own training set)."""
    if method == "spectral":
        return True
    if method == "dmft-training":
        return r["series"] == "raw" and 3 <= r["kappa"] <= 11
    return r["series"] == "unit" or r["D"] == 400 or (raw and 3 <= r["kappa"] <= 11)


def theory(method, raw=False):
    """Theory metrics for the exact records' parameters (:func:`_wanted`), cached in
    THEORY_JSON (key: method, D, kappa, alpha, eps, b2 -- b2 is the raw seed's own)."""
    with open(EXACT_JSON) as fh:
        records = json.load(fh)
    done = _load(THEORY_JSON)
    todo = {}
    order = {400: 0, 100: 1, 200: 2, 50: 3}          # the largest D and D = 100 first
    for r in sorted(records, key=lambda r: (order.get(r["D"], 4), r["kappa"] != 5.5,
                                            -r["kappa"])):
        if not _wanted(method, r, raw):
            continue
        key = _key(method, r["D"], r["kappa"], r["alpha"], r["eps"], r["b2"])
        if key not in done and key not in todo:
            todo[key] = r["seed"]
    print(f"{method}: {len(todo)} theory runs to do", flush=True)
    for key, seed in todo.items():
        _, D, k, a, e, b2 = key.split("|")
        out = _theory_one(method, int(D), float(k), float(a), float(e), float(b2), seed)
        done = _load(THEORY_JSON)
        done[key] = out
        with open(THEORY_JSON + ".tmp", "w") as fh:
            json.dump(done, fh, indent=1)
        os.replace(THEORY_JSON + ".tmp", THEORY_JSON)
        print(key, out, flush=True)


def _mean_half(values):
    """Seed mean of half times: None if any is unknown, "never" if any never halves."""
    if any(v is None for v in values) or not values:
        return None
    if any(v == "never" for v in values):
        return "never"
    return float(np.mean(values))


def _cells(records, th, method, series):
    """(D, alpha, eps, kappa) -> aggregated exact and theory metrics."""
    groups = {}
    for r in records:
        if series != "all" and r["series"] != series:
            continue
        key = _key(method, r["D"], r["kappa"], r["alpha"], r["eps"], r["b2"])
        if key not in th:
            continue
        groups.setdefault((r["series"], r["D"], r["alpha"], r["eps"], r["kappa"]),
                          []).append((r, th[key]))
    return groups


def _fmt_half(h):
    return "—" if h is None else ("never" if h == "never" else f"{h:.0f}")


def _row(key, items):
    series, D, a, e, k = key
    with_half = [(r, t) for r, t in items if r["half"] is not None]
    he = _mean_half([r["half"] for r, _ in with_half])
    ht = _mean_half([t["half"] for _, t in with_half])
    err = (f"{100 * (ht / he - 1):+.1f}%" if isinstance(he, float) and isinstance(ht, float)
           else "")
    fin = [(r, t) for r, t in items if r["final"] is not None]
    fe = np.mean([r["final"] for r, _ in fin]) if fin else math.nan
    sd = np.std([r["final"] for r, _ in fin]) if len(fin) > 1 else math.nan
    ft = np.mean([t["final"] for _, t in fin]) if fin else math.nan
    fcell = "—" if not fin else f"{fe:.3f}" + ("" if math.isnan(sd) else f" ± {sd:.3f}")
    return (f"| {D} | {a:g}, {e:g} | {k:g} | {series} | {len(with_half)}/{len(fin)} | "
            f"{_fmt_half(he)} | {_fmt_half(ht)} | {err} | {fcell} | "
            f"{'—' if not fin else f'{ft:.3f}'} | {'' if not fin else f'{ft - fe:+.3f}'} |")


def table(method, series="all"):
    """Markdown table of theory vs exact for ``method``."""
    with open(EXACT_JSON) as fh:
        records = json.load(fh)
    th = _load(THEORY_JSON)
    groups = _cells(records, th, method, series)
    print(f"\n#### {method}\n")
    print("| D | α, ε | κ | exact series | seeds (half/final) | t½ exact | t½ theory | error | "
          "final exact | final theory | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(groups, key=lambda g: (g[1], g[2], g[4], g[0])):
        print(_row(key, groups[key]))
    walls = [v["wall"] for k, v in th.items() if k.startswith(method + "|")]
    if walls:
        print(f"\nwall time per {method} curve: median {np.median(walls):.2f} s "
              f"(max {np.max(walls):.2f} s, {len(walls)} runs)")


def _per_seed(records, th, method):
    """(D, kappa) -> list of (half error or None, final error or None) per raw seed."""
    out = {}
    for r in records:
        if r["series"] != "raw" or not 3 <= r["kappa"] <= 11:
            continue
        t = th.get(_key(method, r["D"], r["kappa"], r["alpha"], r["eps"], r["b2"]))
        if t is None:
            continue
        he, ht = r["half"], t["half"]
        herr = ht / he - 1 if isinstance(he, float) and isinstance(ht, float) else None
        ferr = (t["final"] - r["final"]) if r["final"] is not None and t["final"] is not None \
            else None
        out.setdefault((r["D"], r["kappa"]), {})[(r["alpha"], r["seed"])] = (herr, ferr, he, ht)
    return out


def _stats(items):
    """seed-mean error of the mean half time, mean |per-seed error|, spread; final errors."""
    h = [(he, ht) for _, _, he, ht in items if isinstance(he, float) and isinstance(ht, float)]
    f = [fe for _, fe, _, _ in items if fe is not None]
    hp = [e for e, _, _, _ in items if e is not None]
    if not h:
        half = "—"
    else:
        mean_err = np.mean([b for _, b in h]) / np.mean([a for a, _ in h]) - 1
        half = (f"{100 * mean_err:+.1f} % / {100 * np.mean(np.abs(hp)):.1f} % / "
                f"{100 * np.std(hp):.1f} %")
    fin = "—" if not f else f"{np.mean(f):+.3f} / {np.mean(np.abs(f)):.3f}"
    return half, fin, len(items)


def compare():
    """Markdown: the DMFT with xi ~ N(0, 1) vs conditioned on each seed's training set, on the
    same raw exact runs (pairs where both exist)."""
    with open(EXACT_JSON) as fh:
        records = json.load(fh)
    th = _load(THEORY_JSON)
    gauss, train = _per_seed(records, th, "dmft"), _per_seed(records, th, "dmft-training")
    print("| D | κ | runs | half time: Gaussian ξ (seed-mean / mean abs / spread) | "
          "conditioned | final: Gaussian (mean / mean abs) | conditioned |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(set(gauss) & set(train)):
        both = sorted(set(gauss[key]) & set(train[key]))
        g = _stats([gauss[key][k] for k in both])
        c = _stats([train[key][k] for k in both])
        print(f"| {key[0]} | {key[1]:g} | {len(both)} | {g[0]} | {c[0]} | {g[1]} | {c[1]} |")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "table"
    if cmd == "extract":
        extract()
    elif cmd == "theory":
        theory(sys.argv[2], raw="raw" in sys.argv[3:])
    elif cmd == "compare":
        compare()
    elif cmd == "table":
        for m in sys.argv[2:] or ("spectral", "dmft"):
            table(m)
    else:
        sys.exit(__doc__)
