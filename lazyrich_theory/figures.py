"""The paper's polynomial-regression figures, by name (docs/gallery.md).

    python -m lazyrich_theory.figures NAME [--out DIR] [--steps T] [--set key=value ...]

Each figure uses the paper's configuration (../shared/reference/paper_notes.md §4) unless
overridden, writes its PNG(s) and the data behind them into DIR, and overlays theory where the
package has it.  Implemented: fig1, fig3a, fig3b, fig3e, fig4, fig12, goldilocks
(``all`` runs them in turn); not yet: fig5, interpolation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .problem import Problem, ProblemError
from .storage import atomic_write_json

__all__ = ["FIGURES", "make_figure"]


@dataclass(frozen=True)
class Figure:
    name: str
    description: str
    problem: dict[str, Any]
    steps: int
    run: Callable[..., dict]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- fig1
def _fig1(problem: Problem, steps: int, out: str, network_steps: int | None = None,
          method: str = "gd", **_) -> dict:
    """Figure 1: the network (exact reduced GD), the linearised model, the K0 line and the
    paper's NTK alignment; the actual numpy network overlaid over its first steps."""
    from validation import simulate

    from .lazy import solve_with_theory

    data = problem.data()
    tr = solve_with_theory(problem, steps, method=method, data=data)
    tr.save(os.path.join(out, "reduced"), data=data, plot=False)
    n_net = min(steps, 2000) if network_steps is None else min(steps, network_steps)
    net = simulate(problem, n_net, data=data)
    net.save(os.path.join(out, "network"), plot=False)
    fig = tr.plot()
    ax = fig.axes[0]
    x = np.where(net.t > 0, net.t, 0.5)
    ax.plot(x[::3], net.train_loss[::3], "o", ms=2.5, mfc="none", color="tab:blue",
            label=f"numpy network train (first {n_net} steps)")
    ax.plot(x[::3], net.test_loss[::3], "o", ms=2.5, mfc="none", color="tab:orange",
            label="numpy network test")
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(os.path.join(out, "fig1.png"), dpi=130)
    _plt().close(fig)
    return {"summary": tr.info["summary"], "network_steps": n_net,
            "max_rel_dev_network_vs_reduced": _max_dev(tr, net)}


def _max_dev(a, b) -> float:
    common, ia, ib = np.intersect1d(a.t, b.t, return_indices=True)
    dev = 0.0
    for col in ("train_loss", "test_loss"):
        x, y = a[col][ia], b[col][ib]
        dev = max(dev, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300))))
    return dev


# ----------------------------------------------------------------------------- fig4
def _fig4(problem: Problem, steps: int, out: str, **_) -> dict:
    """Figure 4: N = 2 network, loss decomposition; reduced GD with the full numpy network."""
    from validation import simulate

    from .reduced import solve

    data = problem.data()
    tr = solve(problem, steps, data=data)
    net = simulate(problem, steps, data=data)
    tr.save(os.path.join(out, "reduced"), data=data, plot=False)
    net.save(os.path.join(out, "network"), plot=False)
    fig = tr.plot()
    ax = fig.axes[0]
    x = np.where(net.t > 0, net.t, 0.5)
    ax.plot(x[::4], net.test_loss[::4], "o", ms=2.5, mfc="none", color="k",
            label="numpy network test")
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(os.path.join(out, "fig4.png"), dpi=130)
    _plt().close(fig)
    return {"max_rel_dev_network_vs_reduced": _max_dev(tr, net),
            "final_test_loss": float(tr.test_loss[-1]), "max_test_loss": float(tr.test_loss.max())}


# ----------------------------------------------------------------------------- fig12
def _fig12(problem: Problem, steps: int, out: str, **_) -> dict:
    """Figure 12: trained readouts (numpy network, validation/) next to the exact reduced
    dynamics with fixed readouts -- trained readouts do not close on (wbar, M), so the
    network is the only route; the reduced curve shows what the readouts change."""
    from validation import simulate

    from .reduced import solve

    data = problem.data()
    net = simulate(problem, steps, data=data, train_readouts=True)
    fixed = solve(problem, steps, data=data)
    net.save(os.path.join(out, "network_trained_readouts"), plot=False)
    fixed.save(os.path.join(out, "reduced_fixed_readouts"), plot=False)
    fig = net.plot()
    ax = fig.axes[0]
    x = np.where(fixed.t > 0, fixed.t, 0.5)
    ax.plot(x, fixed.test_loss, "-", color="0.5", lw=1.0, label="fixed readouts (reduced) test")
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(os.path.join(out, "fig12.png"), dpi=130)
    _plt().close(fig)
    return {"final_test_trained_readouts": float(net.test_loss[-1]),
            "final_test_fixed_readouts": float(fixed.test_loss[-1])}


# ----------------------------------------------------------------------------- fig3a
FIG3A_ALPHAS = tuple(2.0**k for k in range(-5, 5))   # 2^-5 ... 16 (the paper omits 32)


def _fig3a(problem: Problem, steps: int, out: str, alphas=FIG3A_ALPHAS, method: str = "flow",
           **_) -> dict:
    """Figure 3(a): train and test loss, each normalised by its initial value, for a sweep of
    alpha (convention B); the online ODE's transition time marked for each alpha."""
    return _sweep_curves(problem, steps, out, "alpha", alphas, method, "fig3a",
                         "Fig. 3(a): α sweep", log2_labels=True)


FIG3B_EPS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _fig3b(problem: Problem, steps: int, out: str, epss=FIG3B_EPS, method: str = "flow",
           **_) -> dict:
    """Figure 3(b): the same for a sweep of eps (values from the students' version; the
    paper's eps-sweep code is missing, paper_notes §4.4)."""
    return _sweep_curves(problem, steps, out, "eps", epss, method, "fig3b",
                         "Fig. 3(b): ε sweep", log2_labels=True)


GOLDILOCKS_P = (50, 120, 500)


def _goldilocks(problem: Problem, steps: int, out: str, Ps=GOLDILOCKS_P, method: str = "gd",
                **_) -> dict:
    """Goldilocks appendix: a sweep of the number of training points P (grokking needs P
    neither too small nor too large)."""
    return _sweep_curves(problem, steps, out, "P", Ps, method, "goldilocks",
                         "Goldilocks: P sweep", log2_labels=False, normalise=False)


def _sweep_curves(problem: Problem, steps: int, out: str, param: str, values, method: str,
                  name: str, title: str, log2_labels: bool = True,
                  normalise: bool = True) -> dict:
    """Train (dashed) and test (solid) curves for a sweep of one problem parameter, with the
    online ODE's transition time (dotted) for each value."""
    alphas = values
    from .reduced import solve
    from .storage import atomic_write_csv
    from .timescales import grokking_metrics, predict_timescales

    same_data = param not in ("P", "D", "N", "seed", "test_size")
    data = problem.data() if same_data else None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    rows, header, cols = [], None, {}
    sym = {"alpha": "α", "eps": "ε"}.get(param, param)
    for i, al in enumerate(alphas):
        p = problem.replace(**{param: type(getattr(problem, param))(al)})
        d = data if same_data else p.data()
        tr = solve(p, steps, method=method, data=d)
        color = cmap(i / max(1, len(alphas) - 1))
        x = np.where(tr.t > 0, tr.t, 0.5)
        lab = f"{sym} = 2^{int(round(math.log2(al)))}" if log2_labels else f"{sym} = {al:g}"
        n_tr = tr.train_loss[0] if normalise else 1.0
        n_te = tr.test_loss[0] if normalise else 1.0
        a1.plot(x, tr.train_loss / n_tr, "--", color=color, lw=1.2)
        a2.plot(x, tr.test_loss / n_te, "-", color=color, lw=1.5, label=lab)
        ts = predict_timescales(p, d)
        if math.isfinite(ts.rich_time_population) and ts.rich_time_population < steps:
            a2.axvline(ts.rich_time_population, color=color, lw=0.6, ls=":")
        m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
        rows.append({param: al, **{k2: m[k2] for k2 in ("test_half_time", "final_test_loss",
                                                          "peak_test_over_initial")},
                     "predicted_rich_time_population": ts.rich_time_population})
        cols[f"train_{param}_{al:g}"] = tr.train_loss / n_tr
        cols[f"test_{param}_{al:g}"] = tr.test_loss / n_te
        header = tr.t
    for ax, which in ((a1, "train"), (a2, "test")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("GD steps t")
        ax.set_ylabel(f"{which} loss" + (" / initial" if normalise else ""))
        ax.grid(True, alpha=0.3)
    a2.legend(fontsize=7, ncol=2)
    a2.set_title("test (dotted: online-ODE transition time)")
    a1.set_title("train")
    fig.suptitle(f"{title}; D={problem.D}, P={problem.P}, N={problem.N}, α={problem.alpha:g}, "
                 f"ε={problem.eps:g}, η0={problem.eta0:g}, conv. {problem.convention}, "
                 f"{'centered' if problem.centered else 'uncentered'}, {method}")
    fig.savefig(os.path.join(out, f"{name}.png"), dpi=130)
    plt.close(fig)
    atomic_write_csv(os.path.join(out, f"{name}_curves.csv"), ("t",) + tuple(cols),
                     [header] + list(cols.values()))
    return {"cells": rows}


# ----------------------------------------------------------------------------- fig3e
def _fig3e(problem: Problem, steps: int, out: str, n_alpha: int = 14, n_eps: int = 14,
           workers: int | None = None, **_) -> dict:
    """Figure 3(e): the grokking phase diagram over alpha = 0.4..5.6 and eps = 0.02..0.28."""
    from .sweep import sweep

    alphas = np.linspace(0.4, 5.6, n_alpha)
    epss = np.linspace(0.02, 0.28, n_eps)
    res = sweep(problem, {"alpha": alphas, "eps": epss}, steps, out=os.path.join(out, "phase"),
                workers=workers, progress=False)
    import shutil

    shutil.copyfile(os.path.join(out, "phase", "phase.png"), os.path.join(out, "fig3e.png"))
    return {"cells": int(alphas.size * epss.size), "stats": res.stats}


FIGURES: dict[str, Figure] = {
    "fig1": Figure("fig1", "grokking on polynomial regression: network, linearised model, K0, "
                   "alignment", dict(D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=1.0,
                                     convention="A", centered=True), 100_000, _fig1),
    "fig3a": Figure("fig3a", "sweep over alpha (normalised losses)",
                    dict(D=100, P=450, N=500, alpha=1.0, eps=0.25, eta0=0.5, convention="B",
                         centered=True), 60_000, _fig3a),
    "fig3b": Figure("fig3b", "sweep over eps (normalised losses; values not authoritative)",
                    dict(D=100, P=450, N=500, alpha=1.0, eps=0.25, eta0=0.5, convention="B",
                         centered=False), 60_000, _fig3b),
    "fig3e": Figure("fig3e", "phase diagram of the amount of grokking over (alpha, eps)",
                    dict(D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=20.0, convention="A",
                         centered=True), 110_000, _fig3e),
    "fig4": Figure("fig4", "N = 2 network: loss decomposition through the rich transition",
                   dict(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5, convention="A",
                        centered=False), 50_000, _fig4),
    "fig12": Figure("fig12", "trained readouts: the numpy network (no exact reduction exists)",
                    dict(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.1, convention="A",
                         centered=False), 100_000, _fig12),
    "goldilocks": Figure("goldilocks", "sweep over the number of training points P",
                         dict(D=40, P=120, N=100, alpha=1.0, eps=0.5, eta0=0.5,
                              convention="A", centered=True), 50_000, _goldilocks),
}


def make_figure(name: str, out: str, steps: int | None = None, seed: int = 0,
                **overrides: Any) -> dict:
    """Run figure ``name`` into folder ``out``; problem fields in ``overrides`` replace the
    paper's configuration, other keywords go to the figure (e.g. n_alpha, network_steps).
    Writes ``figure.json`` (configuration, wall time, numbers) next to the PNG."""
    if name not in FIGURES:
        raise ProblemError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)} or all")
    fig = FIGURES[name]
    fields = set(Problem.__dataclass_fields__)
    prob_kw = {**fig.problem, "seed": seed, **{k: v for k, v in overrides.items() if k in fields}}
    extra = {k: v for k, v in overrides.items() if k not in fields}
    problem = Problem(**prob_kw)
    steps = fig.steps if steps is None else int(steps)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    result = fig.run(problem, steps, out, **extra)
    info = {"figure": name, "description": fig.description, "problem": problem.to_dict(),
            "steps": steps, "options": extra, "wall_time": time.perf_counter() - t0,
            "result": result}
    atomic_write_json(os.path.join(out, "figure.json"), _jsonable(info))
    return info


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    return o


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="lazyrich figure",
                                 description="make one of the paper's figures (or all)")
    ap.add_argument("name", help=f"one of {', '.join(FIGURES)}, or all")
    ap.add_argument("--out", default="figures", help="output folder (a subfolder per figure)")
    ap.add_argument("--steps", type=int, default=None, help="override the horizon")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a problem field or figure option (repeatable)")
    args = ap.parse_args(argv)
    try:
        overrides = {}
        for item in args.set:
            if "=" not in item:
                raise ProblemError(f"--set expects KEY=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            overrides[k.strip()] = _value(v.strip())
        names = list(FIGURES) if args.name == "all" else [args.name]
        for name in names:
            info = make_figure(name, os.path.join(args.out, name), args.steps, args.seed,
                               **overrides)
            print(f"{name}: {info['wall_time']:.1f} s -> {os.path.join(args.out, name)}")
    except ProblemError as exc:
        print(f"lazyrich figure: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
