"""Plots of trajectories (matplotlib object API; PNG files)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from lazyrich_theory.plotting import mpl

if TYPE_CHECKING:  # pragma: no cover
    from lazyrich_theory.results.trajectory import Trajectory

__all__ = ["plot_trajectory"]


def _title(traj: "Trajectory") -> str:
    p = traj.problem
    N = "∞" if not p.finite_width else str(p.N)
    title = (f"{traj.method}: D={p.D}, P={p.P}, N={N}, α={p.alpha:g}, ε={p.eps:g}, η0={p.eta0:g}, "
             f"conv. {p.convention}, {'centered' if p.centered else 'uncentered'}, seed {p.seed}")
    return title + options_suffix(p)


def options_suffix(p) -> str:
    """'' for the paper's plain GD, else a new line naming the training options and target."""
    extra = [f"{k}={getattr(p, k):g}" for k in ("noise", "weight_decay", "momentum") if getattr(p, k)]
    if p.batch_size is not None:
        extra.append(f"batch_size={p.batch_size}")
    if p.online:
        extra.append("online")
    if p.target != "paper":
        extra.append(f"target {p.target}")
    return "\n" + ", ".join(extra) if extra else ""


def _positive_line(ax, x, y, ls, color, lw, label) -> bool:
    """Plot the positive finite part of y (log axes); False when there is none."""
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0)
    if not ok.any():
        return False
    ax.plot(x, np.where(ok, y, np.nan), ls, color=color, lw=lw, label=label)
    return True


def plot_trajectory(traj: "Trajectory", path: str | os.PathLike | None = None, dpi: int = 130):
    """Left: train/test/population loss vs log time.  Right: the population-loss decomposition.

    Time t = 0 is drawn at t = 1/2 on the log axis (marked), so the initial loss is visible.
    Returns the matplotlib Figure (closed after saving when ``path`` is given).
    """
    plt = mpl
    t = np.asarray(traj.t, dtype=float)
    x = np.where(t > 0, t, 0.5)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.6), constrained_layout=True)
    online = traj.method == "population"
    if not online:
        ax1.plot(x, traj.train_loss, "--", color="tab:blue", lw=1.8, label="train loss")
        ax1.plot(x, traj.test_loss, "-", color="tab:orange", lw=2.0, label="test loss (test set)")
    pop_label = "population loss" + (" (online)" if online else " (exact)")
    if traj.problem.target != "paper" and "population_loss_stderr" in traj.extra:
        pop_label = "population loss (Monte Carlo)"
    _positive_line(ax1, x, traj.population_loss, ":", "0.25", 1.6, pop_label)
    for name, style in (("linearized_train_loss", ("--", "k")), ("linearized_test_loss", ("-", "k"))):
        if name in traj.extra:
            ax1.plot(x, traj.extra[name], style[0], color=style[1], lw=1.0,
                     label=name.replace("_", " ").replace("linearized", "linearised"))
    if not online:
        ax1.axhline(traj.test_loss[0], color="tab:orange", lw=0.6, alpha=0.5,
                    label="initial test loss")
    summary = traj.info.get("summary") or {}
    k0 = summary.get("kernel_regression_test_loss")
    if k0:
        ax1.axhline(k0, color="tab:red", lw=1.2, ls="-.", label=f"K0 regression ({k0:.3f})")
    if "kernel_alignment" in traj.extra:
        ax3 = ax1.twinx()
        ax3.plot(x, traj.extra["kernel_alignment"], "-", color="tab:purple", lw=1.2, alpha=0.8)
        ax3.set_ylabel("NTK alignment (paper's, test set)", color="tab:purple")
        ax3.tick_params(axis="y", colors="tab:purple")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("GD steps t  (t = 0 drawn at 1/2)")
    ax1.set_ylabel("mean squared error")
    ax1.set_title("losses")
    ax1.grid(True, which="major", alpha=0.3)
    ax1.legend(fontsize=8, loc="lower left")

    paper = traj.problem.target == "paper"
    labels = (("variance (tr Δ)²/D²", "misalignment 2 tr Δ²/D²", "linear power |v|²/D") if paper
              else ("degree-0 error power", "degree-2 error power", "degree-1 error power"))
    drawn = _positive_line(ax2, x, traj.population_loss, "-", "darkorange", 2.0,
                           "population test loss")
    for name, color, label in zip(("variance", "misalignment", "linear_power"),
                                  ("tab:red", "tab:green", "k"), labels):
        drawn |= _positive_line(ax2, x, traj[name], "--", color, 1.4, label)
    irr = (traj.info.get("target") or {}).get("irreducible_loss")
    if irr:
        ax2.axhline(irr, color="0.4", lw=1.0, ls=":", label=f"irreducible (degree ≥ 3) {irr:.3g}")
        drawn = True
    ax2.set_xscale("log")
    if drawn:
        ax2.set_yscale("log")
    else:
        ax2.text(0.5, 0.5, "not available for this run\n(e.g. the network with a non-paper target)",
                 ha="center", va="center", transform=ax2.transAxes, color="0.4")
    ax2.set_xlabel("GD steps t")
    ax2.set_title("population-loss decomposition")
    ax2.grid(True, which="major", alpha=0.3)
    if drawn:
        ax2.legend(fontsize=8, loc="lower left")
    fig.suptitle(_title(traj), fontsize=10)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
        mpl.close(fig)
    return fig
