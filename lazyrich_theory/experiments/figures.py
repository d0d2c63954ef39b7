"""The paper's polynomial-regression figures, by name (docs/gallery.md).

    python -m lazyrich_theory.figures NAME [--out DIR] [--steps T] [--set key=value ...]

Each figure uses the paper's configuration (../shared/reference/paper_notes.md §4) unless
overridden, writes its PNG(s) and the data behind them into DIR, and overlays theory where the
package has it.  Implemented: fig1, fig3a, fig3b, fig3e, fig4, fig5, fig12, goldilocks,
interpolation (``all`` runs them in turn).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lazyrich_theory.plotting import mpl

from lazyrich_theory.plotting.trajectory import options_suffix
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.storage import atomic_write_json

__all__ = ["FIGURES", "make_figure", "eigenvector_labels", "interpolated_init"]


@dataclass(frozen=True)
class Figure:
    name: str
    description: str
    problem: dict[str, Any]
    steps: int
    run: Callable[..., dict]
    paper: bool = True          # False: a "beyond the paper" figure, not part of ``all``


# ----------------------------------------------------------------------------- fig1
def _fig1(problem: Problem, steps: int, out: str, network_steps: int | None = None,
          method: str = "gd", **_) -> dict:
    """Figure 1: the network (exact reduced GD), the linearised model, the K0 line and the
    paper's NTK alignment; the actual numpy network overlaid over its first steps."""
    from lazyrich_validation import simulate

    from lazyrich_theory.experiments.with_theory import solve_with_theory

    data = problem.data()
    tr = solve_with_theory(problem, steps, method=method, data=data)
    tr.save(os.path.join(out, "reduced"), data=data, plot=False, overwrite=True)
    n_net = min(steps, 2000) if network_steps is None else min(steps, network_steps)
    net = simulate(problem, n_net, data=data)
    net.save(os.path.join(out, "network"), plot=False, overwrite=True)
    fig = tr.plot()
    ax = fig.axes[0]
    x = np.where(net.t > 0, net.t, 0.5)
    ax.plot(x[::3], net.train_loss[::3], "o", ms=2.5, mfc="none", color="tab:blue",
            label=f"numpy network train (first {n_net} steps)")
    ax.plot(x[::3], net.test_loss[::3], "o", ms=2.5, mfc="none", color="tab:orange",
            label="numpy network test")
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(os.path.join(out, "fig1.png"), dpi=130)
    mpl.close(fig)
    return {"summary": tr.info["summary"], "network_steps": n_net,
            "max_rel_dev_network_vs_reduced": _max_dev(tr, net)}


def _max_dev(a, b, floor: float = 1e-300) -> float:
    """Max relative deviation of the train/test losses at common times; losses below
    ``floor`` (round-off level) are compared in absolute terms against ``floor``."""
    common, ia, ib = np.intersect1d(a.t, b.t, return_indices=True)
    dev = 0.0
    for col in ("train_loss", "test_loss"):
        x, y = a[col][ia], b[col][ib]
        dev = max(dev, float(np.max(np.abs(x - y) / np.maximum(np.abs(y), floor))))
    return dev


# ----------------------------------------------------------------------------- fig4
def _fig4(problem: Problem, steps: int, out: str, **_) -> dict:
    """Figure 4: N = 2 network, loss decomposition; reduced GD with the full numpy network."""
    from lazyrich_validation import simulate

    from lazyrich_theory.core.solve import solve

    data = problem.data()
    tr = solve(problem, steps, data=data)
    net = simulate(problem, steps, data=data)
    tr.save(os.path.join(out, "reduced"), data=data, plot=False, overwrite=True)
    net.save(os.path.join(out, "network"), plot=False, overwrite=True)
    fig = tr.plot()
    ax = fig.axes[0]
    x = np.where(net.t > 0, net.t, 0.5)
    ax.plot(x[::4], net.test_loss[::4], "o", ms=2.5, mfc="none", color="k",
            label="numpy network test")
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(os.path.join(out, "fig4.png"), dpi=130)
    mpl.close(fig)
    return {"max_rel_dev_network_vs_reduced": _max_dev(tr, net),
            "final_test_loss": float(tr.test_loss[-1]), "max_test_loss": float(tr.test_loss.max())}


# ----------------------------------------------------------------------------- fig12
def _fig12(problem: Problem, steps: int, out: str, **_) -> dict:
    """Figure 12: trained readouts (numpy network, validation/) next to the exact reduced
    dynamics with fixed readouts -- trained readouts do not close on (wbar, M), so the
    network is the only route; the reduced curve shows what the readouts change."""
    from lazyrich_validation import simulate

    from lazyrich_theory.core.solve import solve

    data = problem.data()
    net = simulate(problem, steps, data=data, train_readouts=True)
    fixed = solve(problem, steps, data=data)
    net.save(os.path.join(out, "network_trained_readouts"), plot=False, overwrite=True)
    fixed.save(os.path.join(out, "reduced_fixed_readouts"), plot=False, overwrite=True)
    fig = net.plot()
    ax = fig.axes[0]
    x = np.where(fixed.t > 0, fixed.t, 0.5)
    ax.plot(x, fixed.test_loss, "-", color="0.5", lw=1.0, label="fixed readouts (reduced) test")
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(os.path.join(out, "fig12.png"), dpi=130)
    mpl.close(fig)
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
    from lazyrich_theory.core.solve import solve
    from lazyrich_theory.storage import atomic_write_csv
    from lazyrich_theory.theory.timescales import grokking_metrics, predict_timescales

    same_data = param not in ("P", "D", "N", "seed", "test_size")
    data = problem.data() if same_data else None
    plt = mpl
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
                 f"{'centered' if problem.centered else 'uncentered'}, {method}"
                 + options_suffix(problem))
    fig.savefig(os.path.join(out, f"{name}.png"), dpi=130)
    mpl.close(fig)
    atomic_write_csv(os.path.join(out, f"{name}_curves.csv"), ("t",) + tuple(cols),
                     [header] + list(cols.values()))
    return {"cells": rows}


def _loss_panel(ax, network: bool, title: str, lin_style: str, lin_kw: dict) -> None:
    """Legend entries (linearised model, numpy network) and log axes of a loss-curve panel."""
    ax.plot([], [], lin_style, label="linearised model (test)", **lin_kw)
    if network:
        ax.plot([], [], "o", ms=2.2, mfc="none", color="0.4", label="numpy network (test)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD steps t")
    ax.set_ylabel("MSE (dashed train, solid test)")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)


# ----------------------------------------------------------------------------- beyond the paper
SGD_VARIANTS = (("full-batch GD", {}), ("minibatch B = 10", {"batch_size": 10}),
                ("minibatch B = 3", {"batch_size": 3}), ("minibatch B = 1", {"batch_size": 1}),
                ("online SGD, B = P", {"online": True}))
OPTION_VARIANTS = (("plain GD", {}), ("weight decay λ = 1e-3", {"weight_decay": 1e-3}),
                   ("momentum μ = 0.9", {"momentum": 0.9}), ("label noise σ = 0.1", {"noise": 0.1}),
                   ("label noise σ = 0.3", {"noise": 0.3}))


def _sgd(problem: Problem, steps: int, out: str, **_) -> dict:
    """Beyond the paper (docs/sgd.md): full-batch GD vs minibatch and online SGD on the same
    data and initialisation; online SGD has no grokking delay."""
    return _variant_curves(problem, steps, out, SGD_VARIANTS, "sgd",
                           "Full batch vs minibatch vs online SGD")


def _options(problem: Problem, steps: int, out: str, **_) -> dict:
    """Beyond the paper (docs/theory.md §9): weight decay, momentum and label noise change the
    grokking delay (same data and initialisation)."""
    return _variant_curves(problem, steps, out, OPTION_VARIANTS, "options",
                           "Weight decay, momentum, label noise")


def _variant_curves(problem: Problem, steps: int, out: str, variants, name: str,
                    title: str) -> dict:
    """Train (dashed) and test (solid) loss for variants of one problem (exact GD map each),
    with the paper's grokking delay in the legend."""
    from lazyrich_theory.core.solve import solve
    from lazyrich_theory.storage import atomic_write_csv
    from lazyrich_theory.theory.timescales import grokking_metrics

    plt = mpl
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
    cmap = plt.get_cmap("plasma")
    rows, cols, header = [], {}, None
    for i, (label, changes) in enumerate(variants):
        p = problem.replace(**changes)
        tr = solve(p, steps, method="gd")
        m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
        color = cmap(0.85 * i / max(1, len(variants) - 1))
        x = np.where(tr.t > 0, tr.t, 0.5)
        delay = m["paper_grokking_time"]
        reached = math.isfinite(m["test_time"])
        tag = f"delay {delay:.0f}" if reached else "test never < 0.1"
        a1.plot(x, tr.train_loss, "--", color=color, lw=1.3, label=label)
        a2.plot(x, tr.test_loss, "-", color=color, lw=1.6, label=f"{label}: {tag}")
        rows.append({"variant": label, **changes, "paper_grokking_time": delay,
                     "train_time": m["train_time"], "test_time": m["test_time"],
                     "final_train_loss": m["final_train_loss"],
                     "final_test_loss": m["final_test_loss"]})
        key = label.replace(" ", "_").replace(",", "")
        cols[f"train_{key}"] = tr.train_loss
        cols[f"test_{key}"] = tr.test_loss
        header = tr.t
    for ax, which in ((a1, "train loss (online: current batch)"), (a2, "test loss")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-8)     # below: round-off floors of runs that fit exactly
        ax.axhline(0.1, color="0.5", lw=0.7, ls=":")
        ax.set_xlabel("GD steps t")
        ax.set_ylabel(which)
        ax.grid(True, alpha=0.3)
    a1.set_title("train (dotted: threshold 0.1; axis cut at 1e-8)")
    a2.set_title("test; legend: the paper's grokking delay")
    a2.legend(fontsize=7.5, loc="lower left")
    fig.suptitle(f"{title}; D={problem.D}, P={problem.P}, N={problem.N}, α={problem.alpha:g}, "
                 f"ε={problem.eps:g}, η0={problem.eta0:g}, conv. {problem.convention}, "
                 f"{'centered' if problem.centered else 'uncentered'}, seed {problem.seed}"
                 + options_suffix(problem))
    fig.savefig(os.path.join(out, f"{name}.png"), dpi=130)
    mpl.close(fig)
    atomic_write_csv(os.path.join(out, f"{name}_curves.csv"), ("t",) + tuple(cols),
                     [header] + list(cols.values()))
    return {"variants": rows}


# ----------------------------------------------------------------------------- fig3e
def _fig3e(problem: Problem, steps: int, out: str, n_alpha: int = 14, n_eps: int = 14,
           workers: int | None = None, **_) -> dict:
    """Figure 3(e): the grokking phase diagram over alpha = 0.4..5.6 and eps = 0.02..0.28."""
    from lazyrich_theory.experiments.sweep import sweep

    alphas = np.linspace(0.4, 5.6, n_alpha)
    epss = np.linspace(0.02, 0.28, n_eps)
    res = sweep(problem, {"alpha": alphas, "eps": epss}, steps, out=os.path.join(out, "phase"),
                workers=workers, progress=False)
    import shutil

    shutil.copyfile(os.path.join(out, "phase", "phase.png"), os.path.join(out, "fig3e.png"))
    return {"cells": int(alphas.size * epss.size), "stats": res.stats}


# ----------------------------------------------------------------------------- fig5
FIG5_KS = (1, 5, 70, 75, 100, 150)


def eigenvector_labels(problem: Problem, data=None):
    """The labels of the paper's Figure 5 (paper_notes §4.8): the eigenvectors of the initial
    NTK on all P + test_size points, after subtracting its scalar global mean.

    The kernel is the width-free Ktilde0 (kernels.ntk_tilde at W0; the true NTK is
    alpha^2/N times it, which changes neither the eigenvectors nor their order) on the stacked
    inputs [X; X_test] in convention-A units.  Returns (lam, V, Kc): eigenvalues in
    descending order, unit-norm eigenvectors as columns (label k = V[:, k - 1]; its first P
    entries are the training labels, the rest the test labels) and the centered kernel."""
    from lazyrich_theory.core.kernels import ntk_tilde
    from lazyrich_theory.core.reduced import initial_factor

    data = problem.data() if data is None else data
    s = problem.input_scale
    Xall = np.vstack([data.X, data.X_test]) * s
    F0, _, z = initial_factor(data.W0, problem.D)
    K = ntk_tilde(Xall, F0, z, problem.eps)
    Kc = K - K.mean()
    lam, V = np.linalg.eigh(0.5 * (Kc + Kc.T))
    return lam[::-1].copy(), np.ascontiguousarray(V[:, ::-1]), Kc


def _as_list(v) -> list:
    """A figure option given as a sequence, a scalar or a comma-separated string (--set)."""
    if isinstance(v, str):
        return [p.strip() for p in v.split(",") if p.strip()]
    if isinstance(v, (list, tuple, np.ndarray)):
        return list(v)
    return [v]


def _check_ks(ks, n: int, what: str) -> tuple[int, ...]:
    try:
        vals = [float(k) for k in _as_list(ks)]
    except (TypeError, ValueError):
        raise ProblemError(f"{what} must be integers in 1..{n}, got {ks!r}") from None
    if not vals or any(not v.is_integer() or v < 1 or v > n for v in vals):
        raise ProblemError(f"{what} must be integers in 1..{n} (P + test_size), got {ks!r}")
    out = tuple(int(v) for v in vals)
    if len(set(out)) != len(out):
        raise ProblemError(f"{what} must not repeat a value, got {ks!r}")
    return out


def _fig5(problem: Problem, steps: int, out: str, ks=FIG5_KS, k_scan_step: int = 8,
          method: str = "gd", network: bool = True, **_) -> dict:
    """Figure 5: labels = eigenvectors of the initial NTK (Gaussian inputs); train/test loss
    for several eigen-indices k.  Exact reduced GD (any labels keep it exact), the numpy
    network overlaid, and the lazy theory: the linearised model in closed form and its
    t -> inf limit (ridgeless kernel regression with K0), over a scan of k."""
    from lazyrich_validation import simulate

    from lazyrich_theory.core.kernels import paper_kernel_alignment, target_power_fraction
    from lazyrich_theory.theory.lazy import LinearizedModel
    from lazyrich_theory.spec.data import ProblemData
    from lazyrich_theory.core.reduced import ReducedSystem
    from lazyrich_theory.core.solve import solve
    from lazyrich_theory.storage import atomic_write_csv, atomic_write_npz

    if isinstance(k_scan_step, bool) or not isinstance(k_scan_step, (int, np.integer)) \
            or k_scan_step < 0:
        raise ProblemError(f"k_scan_step must be a non-negative integer, got {k_scan_step!r}")
    P, T = problem.P, problem.test_size
    ks = _check_ks(ks, P + T, "ks")
    if network and not problem.finite_width:
        network = False
    base = problem.data()
    lam, V, Kc = eigenvector_labels(problem, base)
    label_residual = max(float(np.max(np.abs(Kc @ V[:, k - 1] - lam[k - 1] * V[:, k - 1])))
                         for k in ks) / max(abs(float(lam[0])), 1e-300)
    zero_beta = np.zeros(problem.D)   # no teacher: the labels are given

    def run(k: int, full: bool):
        y = V[:, k - 1]
        d = ProblemData(base.X, y[:P].copy(), base.X_test, y[P:].copy(), zero_beta, base.W0,
                        source=f"eigenvector {k}")
        tr = solve(problem, steps, method=method, data=d)
        system = ReducedSystem.build(problem, d)
        model = LinearizedModel.from_system(system, population=False)
        lin_method = "gd" if method == "gd" and model.stable else "flow"
        lin = model.curves(tr.t, lin_method, population=False)
        Ktr = model.V @ (model.lam[:, None] * model.V.T)
        row = {"k": k, "eigenvalue": float(lam[k - 1]),
               "train_label_power": float(y[:P] @ y[:P]),
               "paper_alignment_K0_train": paper_kernel_alignment(Ktr, y[:P]),
               "top10_power_K0_train": float(target_power_fraction(
                   None, y[:P], min(10, P), eig=(model.lam, model.V))),
               "initial_test_loss": float(tr.test_loss[0]),
               "final_train_loss": float(tr.train_loss[-1]),
               "final_test_loss": float(tr.test_loss[-1]),
               "linearized_final_test_loss": float(lin.test_loss[-1]),
               "kernel_regression_test_loss": float(model.kernel_regression(0.0).test_mse),
               "max_rel_dev_test_network_vs_linearized": float(np.max(
                   np.abs(tr.test_loss - lin.test_loss) / np.maximum(lin.test_loss, 1e-300)))}
        net = None
        if full and network:
            net = simulate(problem, steps, data=d)
            row["max_rel_dev_network_vs_reduced"] = _max_dev(tr, net)
        return tr, lin, net, row

    plt = mpl
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12.5, 4.6), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    cols, rows, t_axis = {}, [], None
    for i, k in enumerate(ks):
        tr, lin, net, row = run(k, True)
        rows.append(row)
        color = cmap(i / max(1, len(ks) - 1))
        x = np.where(tr.t > 0, tr.t, 0.5)
        a1.plot(x, tr.train_loss, "--", color=color, lw=1.1)
        a1.plot(x, tr.test_loss, "-", color=color, lw=1.6, label=f"k = {k}")
        a1.plot(x, lin.test_loss, ":", color="k", lw=0.8)
        if net is not None:
            xn = np.where(net.t > 0, net.t, 0.5)
            a1.plot(xn[::6], net.test_loss[::6], "o", ms=2.2, mfc="none", color=color)
        cols[f"train_k{k}"], cols[f"test_k{k}"] = tr.train_loss, tr.test_loss
        cols[f"lin_train_k{k}"], cols[f"lin_test_k{k}"] = lin.train_loss, lin.test_loss
        t_axis = tr.t
    _loss_panel(a1, network, "labels = k-th eigenvector of the initial NTK", "k:", dict(lw=0.8))

    scan_ks = sorted(set(range(1, P + T + 1, k_scan_step)) | set(ks)) if k_scan_step else list(ks)
    done = {r["k"]: r for r in rows}
    scan = [done[k] if k in done else run(k, False)[3] for k in scan_ks]
    kk = np.array(scan_ks, dtype=float)
    a2.plot(kk, [r["final_test_loss"] for r in scan], "o", color="tab:orange", ms=4,
            label=f"network test at t={steps}")
    a2.plot(kk, [r["linearized_final_test_loss"] for r in scan], "k.", ms=3,
            label=f"linearised model test at t={steps}")
    a2.plot(kk, [r["kernel_regression_test_loss"] for r in scan], "-", color="tab:red", lw=1,
            label="K0 kernel regression (t → ∞)")
    a2.plot(kk, [r["initial_test_loss"] for r in scan], "-", color="0.6", lw=0.8,
            label="test loss at t = 0")
    a2.set_yscale("log")
    a2.set_xlabel("eigen-index k (descending eigenvalue)")
    a2.set_ylabel("test MSE")
    a2.grid(True, alpha=0.3)
    a3 = a2.twinx()
    a3.plot(np.arange(1, lam.size + 1), lam, "-", color="tab:purple", lw=0.8)
    a3.set_ylabel("eigenvalue of centered K̃0 (purple)", color="tab:purple")
    a2.legend(fontsize=7, loc="upper left")
    a2.set_title("final test loss vs k, network and lazy theory")
    fig.suptitle(f"Fig. 5: eigenvector labels; D={problem.D}, P={P} (+{T} test), N={problem.N}, "
                 f"α={problem.alpha:g}, ε={problem.eps:g}, η0={problem.eta0:g}, conv. "
                 f"{problem.convention}, {'centered' if problem.centered else 'uncentered'}, "
                 f"{method}, seed {problem.seed}" + options_suffix(problem))
    fig.savefig(os.path.join(out, "fig5.png"), dpi=130)
    mpl.close(fig)
    atomic_write_csv(os.path.join(out, "fig5_curves.csv"), ("t",) + tuple(cols),
                     [t_axis] + list(cols.values()))
    keys = list(scan[0])
    atomic_write_csv(os.path.join(out, "fig5_scan.csv"), keys,
                     [np.array([r.get(c, np.nan) for r in scan], dtype=float) for c in keys])
    arrays = {"eigenvalues": lam, "labels": V[:, [k - 1 for k in ks]], "ks": np.array(ks),
              "X": base.X, "X_test": base.X_test}
    if base.W0 is not None:
        arrays["W0"] = base.W0
    atomic_write_npz(os.path.join(out, "fig5_labels.npz"), arrays)
    return {"ks": list(ks), "label_eigen_residual": label_residual, "cells": rows,
            "scan_ks": scan_ks}


# ----------------------------------------------------------------------------- interpolation
INTERP_S = (0.0, 0.05, 0.2, 0.5, 0.75, 0.95)


def interpolated_init(problem: Problem, data, s: float) -> np.ndarray:
    """W0(s) = (1 - s) W_rand + s W_sol (paper_notes §4.10): W_sol has rows +w* (first half)
    and -w* (second half), w* = beta sqrt(2 tau / (alpha eps)), so that at s = 1 wbar = 0 and
    (alpha eps / 2) M = tau beta beta^T: the uncentered network equals the teacher exactly.
    The paper's code (N = 2, alpha = 1, convention A, tau = 1/2) writes w* = beta / sqrt(eps)."""
    if not problem.finite_width or problem.N % 2:
        raise ProblemError(f"interpolation needs an even finite width N, got N={problem.N}")
    if problem.eps <= 0:
        raise ProblemError(f"interpolation needs eps > 0 (the solution is beta/sqrt(alpha eps)), "
                           f"got eps={problem.eps:g}")
    w = data.beta * math.sqrt(2.0 * problem.tau / (problem.alpha * problem.eps))
    h = problem.N // 2
    Wsol = np.vstack([np.tile(w, (h, 1)), np.tile(-w, (h, 1))])
    return (1.0 - s) * data.W0 + s * Wsol


def _interpolation(problem: Problem, steps: int, out: str, svals=INTERP_S, method: str = "gd",
                   network: bool = True, **_) -> dict:
    """Appendix (cell 20): initialisations interpolating from random W0 (s = 0) towards the
    exact zero-loss solution (s = 1); exact reduced GD with W0(s) given through ProblemData,
    the numpy network overlaid, the linearised model at each W0(s), and the paper's NTK
    alignment on the test set."""
    from lazyrich_validation import simulate

    from lazyrich_theory.core.kernels import kernel_observers
    from lazyrich_theory.theory.lazy import LinearizedModel
    from lazyrich_theory.spec.data import ProblemData
    from lazyrich_theory.core.reduced import ReducedSystem
    from lazyrich_theory.core.solve import solve
    from lazyrich_theory.storage import atomic_write_csv
    from lazyrich_theory.theory.timescales import first_time_below, grokking_metrics

    if problem.centered:
        raise ProblemError("interpolation needs the uncentered loss (centered=false): "
                           "W0(1) is the zero-loss solution only for the uncentered network")
    if getattr(problem, "target", "paper") != "paper":
        raise ProblemError("interpolation needs the paper's teacher (target='paper')")
    try:
        svals_t = tuple(float(s) for s in _as_list(svals))
    except (TypeError, ValueError):
        raise ProblemError(f"svals must be distinct numbers in [0, 1], got {svals!r}") from None
    if (not svals_t or any(not (0.0 <= s <= 1.0) for s in svals_t)
            or len(set(svals_t)) != len(svals_t)):
        raise ProblemError(f"svals must be distinct numbers in [0, 1], got {svals!r}")
    svals = svals_t
    base = problem.data()
    obs = kernel_observers(("kernel_alignment", "kernel_alignment_train"))
    plt = mpl
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12.5, 4.6), constrained_layout=True)
    cmap = plt.get_cmap("plasma")
    cols, rows, t_axis = {}, [], None
    for i, s in enumerate(svals):
        W0 = interpolated_init(problem, base, s)
        d = ProblemData(base.X, base.y, base.X_test, base.y_test, base.beta, W0,
                        source=f"interpolation s={s:g}")
        tr = solve(problem, steps, method=method, data=d, observers=obs)
        model = LinearizedModel.from_system(ReducedSystem.build(problem, d), population=False)
        lin_method = "gd" if method == "gd" and model.stable else "flow"
        lin = model.curves(tr.t, lin_method, population=False)
        m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
        row = {"s": s, "initial_train_loss": float(tr.train_loss[0]),
               "initial_test_loss": float(tr.test_loss[0]),
               "final_train_loss": float(tr.train_loss[-1]),
               "final_test_loss": float(tr.test_loss[-1]),
               "max_test_loss": float(np.max(tr.test_loss)),
               "train_tenth_time": first_time_below(tr.t, tr.train_loss, 0.1 * tr.train_loss[0]),
               "test_tenth_time": first_time_below(tr.t, tr.test_loss, 0.1 * tr.test_loss[0]),
               "relative_grokking_time": m["relative_grokking_time"],
               "linearized_final_test_loss": float(lin.test_loss[-1]),
               "kernel_regression_test_loss": float(model.kernel_regression(0.0).test_mse),
               "initial_alignment_test": float(tr["kernel_alignment"][0]),
               "final_alignment_test": float(tr["kernel_alignment"][-1]),
               "final_decomposition": {"variance": float(tr.variance[-1]),
                                       "misalignment": float(tr.misalignment[-1]),
                                       "linear_power": float(tr.linear_power[-1])}}
        color = cmap(0.85 * i / max(1, len(svals) - 1))
        x = np.where(tr.t > 0, tr.t, 0.5)
        a1.plot(x, tr.train_loss, "--", color=color, lw=1.1)
        a1.plot(x, tr.test_loss, "-", color=color, lw=1.6, label=f"s = {s:g}")
        a1.plot(x, lin.test_loss, ":", color=color, lw=0.9)
        if network:
            net = simulate(problem, steps, data=d)
            # s = 1 sits at zero loss (round-off, ~1e-31): compare above 1e-20 only
            row["max_rel_dev_network_vs_reduced"] = _max_dev(tr, net, floor=1e-20)
            xn = np.where(net.t > 0, net.t, 0.5)
            a1.plot(xn[::6], net.test_loss[::6], "o", ms=2.2, mfc="none", color=color)
        a2.plot(x, tr["kernel_alignment"], "-", color=color, lw=1.5, label=f"s = {s:g}")
        a2.plot(x, tr["kernel_alignment_train"], "--", color=color, lw=1.0)
        rows.append(row)
        for name, v in (("train", tr.train_loss), ("test", tr.test_loss),
                        ("population", tr.population_loss), ("lin_test", lin.test_loss),
                        ("alignment_test", tr["kernel_alignment"]),
                        ("alignment_train", tr["kernel_alignment_train"])):
            cols[f"{name}_s{s:g}"] = v
        t_axis = tr.t
    _loss_panel(a1, network, "W0(s) = (1 − s) W_rand + s W_solution", ":",
                dict(color="0.3", lw=0.9))
    a2.set_xscale("log")
    a2.set_xlabel("GD steps t")
    a2.set_ylabel("paper's NTK alignment (solid test, dashed train)")
    a2.grid(True, alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle(f"Interpolation: D={problem.D}, P={problem.P}, N={problem.N}, "
                 f"α={problem.alpha:g}, ε={problem.eps:g}, η0={problem.eta0:g}, conv. "
                 f"{problem.convention}, uncentered, {method}, seed {problem.seed}"
                 + options_suffix(problem))
    fig.savefig(os.path.join(out, "interpolation.png"), dpi=130)
    mpl.close(fig)
    atomic_write_csv(os.path.join(out, "interpolation_curves.csv"), ("t",) + tuple(cols),
                     [t_axis] + list(cols.values()))
    return {"cells": rows}


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
    "fig5": Figure("fig5", "labels = eigenvectors of the initial NTK on Gaussian data",
                   dict(D=100, P=100, N=2, alpha=1.0, eps=0.25, eta0=0.5, convention="B",
                        centered=True, test_size=100), 25_000, _fig5),
    "interpolation": Figure("interpolation", "initialisations interpolating from random "
                            "weights to the zero-loss solution",
                            dict(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5,
                                 convention="A", centered=False), 20_000, _interpolation),
    "goldilocks": Figure("goldilocks", "sweep over the number of training points P",
                         dict(D=40, P=120, N=100, alpha=1.0, eps=0.5, eta0=0.5,
                              convention="A", centered=True), 50_000, _goldilocks),
    "sgd": Figure("sgd", "beyond the paper: full-batch GD vs minibatch and online SGD (Fig. 4 "
                  "setup)", dict(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5,
                                 convention="A", centered=False), 50_000, _sgd, paper=False),
    "options": Figure("options", "beyond the paper: weight decay, momentum, label noise "
                      "(Fig. 4 setup)", dict(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5,
                                             convention="A", centered=False), 50_000,
                      _options, paper=False),
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
    atomic_write_json(os.path.join(out, "figure.json"), info)
    return info


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
    paper = [k for k, f in FIGURES.items() if f.paper]
    beyond = [k for k, f in FIGURES.items() if not f.paper]
    ap = argparse.ArgumentParser(prog="lazyrich figure",
                                 description="make one of the paper's figures (or all of them)")
    ap.add_argument("name", help=f"a paper figure ({', '.join(paper)}), all (the paper's), or "
                                 f"beyond the paper: {', '.join(beyond)}")
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
        names = paper if args.name == "all" else [args.name]
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
