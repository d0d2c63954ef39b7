"""The paper's figures drawn from computed data (docs/gallery.md).

Each function takes the ``plot`` part of what a compute function of
``lazyrich_theory.experiments.figures`` returns (trajectories are read by duck typing: ``t``,
``train_loss``, ``test_loss``, ...) and returns a new :class:`matplotlib.figure.Figure`.
Nothing is computed, saved or shown here, and the backend is never touched.  Legends sit
below the panels, outside them, so that none covers a curve.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.style import (
    STEPS_LABEL,
    cut_round_off,
    distinct_colors,
    figure_title,
    legend_below,
    log_axes,
    log_time,
    twin_below,
)
from lazyrich_theory.plotting.trajectory import plot_trajectory

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from lazyrich_theory.results.trajectory import Trajectory
    from lazyrich_theory.spec.problem import Problem

__all__ = ["plot_network_check", "plot_trained_readouts", "plot_sweep_curves", "plot_variants",
           "plot_eigenvector_labels", "plot_interpolation"]

_STEPS = STEPS_LABEL
_WIDE = dict(figsize=(12.5, 5.4), layout="constrained")


def _colors(cmap: str, n: int, span: float = 1.0) -> list:
    """n colours spread over ``span`` of the colormap."""
    c = mpl.get_cmap(cmap)
    return [c(span * i / max(1, n - 1)) for i in range(n)]


#: The part of viridis the sweep curves use: its lightest end is hard to see on white.
_SWEEP_SPAN = 0.85


def _darker(color: Any, factor: float = 0.65) -> tuple:
    """``color`` (an RGB(A) tuple) with its RGB scaled by ``factor``: thin lines in a light
    colour stay visible on white."""
    r, g, b = color[:3]
    return (r * factor, g * factor, b * factor)


# ----------------------------------------------------------------------------- network overlays
def plot_network_check(reduced: "Trajectory", network: "Trajectory", *, every: int = 3,
                       train: bool = True, network_steps: int | None = None) -> "Figure":
    """Figures 1 and 4: the reduced run's two panels with the numpy network's losses overlaid
    (circles, every ``every``-th save time).

    Parameters
    ----------
    reduced : Trajectory
        The exact reduced dynamics (with its theory curves, if any).
    network : Trajectory
        The numpy network on the same data and initialisation.
    every : int
        Plot every ``every``-th network point.
    train : bool
        Overlay the network's train loss too (blue and orange circles); else its test loss
        only (black circles).
    network_steps : int, optional
        The network's horizon, named in the legend when ``train``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    def overlay(ax) -> None:
        x = log_time(network.t)[::every]
        style = dict(ms=2.5, mfc="none")
        if train:
            ax.plot(x, network.train_loss[::every], "o", color="tab:blue", **style,
                    label=f"numpy network train (first {network_steps} steps)")
        ax.plot(x, network.test_loss[::every], "o", color="tab:orange" if train else "k",
                **style, label="numpy network test")

    return plot_trajectory(reduced, overlay=overlay)


def plot_trained_readouts(network: "Trajectory", fixed: "Trajectory") -> "Figure":
    """Figure 12: the numpy network with trained readouts, and (grey) the test loss of the exact
    reduced dynamics with fixed readouts on the same data.

    Parameters
    ----------
    network : Trajectory
    fixed : Trajectory

    Returns
    -------
    matplotlib.figure.Figure
    """
    def overlay(ax) -> None:
        ax.plot(log_time(fixed.t), fixed.test_loss, "-", color="0.5", lw=1.0,
                label="fixed readouts (reduced) test")

    return plot_trajectory(network, overlay=overlay)


# ----------------------------------------------------------------------------- sweeps
def _sweep_label(sym: str, value: float, log2: bool) -> str:
    """'α = $2^{-5}$' (a mathtext power of two) or 'P = 50'."""
    return (f"{sym} = $2^{{{int(round(math.log2(value)))}}}$" if log2
            else f"{sym} = {value:g}")


def _time_lines(ax, runs: Sequence[Mapping[str, Any]], colors: Sequence, sym: str,
                steps: int) -> str:
    """The online ODE's transition times (dotted): one grey line with a legend entry when
    every run has the same time, else one line per run in its curve's colour (darkened so
    that the light colours stay visible).  Returns the panel's title note (none for the
    single labelled line)."""
    times = [(float(r["rich_time"]), c) for r, c in zip(runs, colors)
             if math.isfinite(r["rich_time"]) and r["rich_time"] < steps]
    if not times:
        return ""
    values = np.array([t for t, _ in times])
    if len(times) > 1 and np.allclose(values, values[0], rtol=1e-9, atol=0.0):
        ax.axvline(values[0], color="0.2", lw=1.4, ls=":",
                   label=f"online-ODE transition time, the same for every {sym} "
                         f"(t = {values[0]:.3g})")
        return ""
    for t, color in times:
        ax.axvline(t, color=_darker(color), lw=1.2, ls=":")
    return " (dotted: online-ODE transition time, in the curve's colour)"


def _limit_marks(ax, runs: Sequence[Mapping[str, Any]], colors: Sequence) -> None:
    """Each run's predicted tau -> inf test loss (``limit``, when given and not None): an open
    diamond at its last time, in the curve's colour (darkened); one legend entry."""
    label = "τ → ∞ theory (interpolant, N = ∞)"
    for r, color in zip(runs, colors):
        if r.get("limit") is None:
            continue
        ax.plot(log_time(r["t"])[-1:], [r["limit"]], "D", ms=7, mfc="none", mew=1.6,
                mec=_darker(color), clip_on=False, zorder=5, label=label)
        label = None


def plot_sweep_curves(runs: Sequence[Mapping[str, Any]], *, param: str, problem: "Problem",
                      method: str, title: str, steps: int, normalise: bool = True,
                      log2_labels: bool = True) -> "Figure":
    """Figures 3(a), 3(b), Goldilocks: train (dashed, left) and test (solid, right) loss for a
    sweep of one problem parameter, with the online ODE's transition time (dotted) and, where
    a run has one, its predicted tau -> inf test loss (open diamond at the horizon).

    Parameters
    ----------
    runs : sequence of mappings
        One per swept value: ``value``, ``t``, ``train``, ``test`` (already normalised when
        ``normalise``), ``rich_time`` (the population ODE's transition time; drawn when finite
        and before ``steps``).
    param : str
        The swept Problem field (not shown as fixed in the title).
    problem : Problem
        The base problem.
    method : str
    title : str
    steps : int
    normalise : bool
        The losses are divided by their initial values (axis labels say so).
    log2_labels : bool
        Label the values as powers of two.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a1, a2) = mpl.subplots(1, 2, **_WIDE)
    sym = {"alpha": "α", "eps": "ε"}.get(param, param)
    colors = _colors("viridis", len(runs), _SWEEP_SPAN)
    for r, color in zip(runs, colors):
        x = log_time(r["t"])
        a1.plot(x, r["train"], "--", color=color, lw=1.2)
        a2.plot(x, r["test"], "-", color=color, lw=1.5,
                label=_sweep_label(sym, r["value"], log2_labels))
    _limit_marks(a2, runs, colors)
    note = _time_lines(a2, runs, colors, sym, steps)
    norm = " / initial" if normalise else ""
    log_axes(a1, _STEPS, f"train loss{norm}", "train")
    log_axes(a2, _STEPS, f"test loss{norm}", "test" + note)
    if cut_round_off(a1, [r["train"] for r in runs]):
        a1.set_title("train (axis cut at 1e-8: below is round-off)")
    legend_below(fig, a2, "center", ncol=min(len(a2.get_legend_handles_labels()[0]), 5))
    figure_title(fig, title, problem, method, skip=(param,))
    return fig


def plot_variants(runs: Sequence[Mapping[str, Any]], *, problem: "Problem", title: str,
                  samples_axis: bool = False) -> "Figure":
    """The ``sgd`` and ``options`` figures: train (dashed) and test (solid) loss of variants of
    one problem, the paper's grokking delay in the legend; optionally a third panel of the
    test loss against the number of examples processed (steps × examples per step).

    Parameters
    ----------
    runs : sequence of mappings
        One per variant: ``label``, ``t``, ``train``, ``test``, ``delay`` (the paper's
        grokking time), ``reached`` (the test loss got under 0.1), ``online`` (the train loss
        is the current batch's), ``batch`` (examples per step).
    problem : Problem
        The base problem.
    title : str
    samples_axis : bool
        Add the examples-processed panel (for variants that differ in batch size).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = 3 if samples_axis else 2
    fig, axes = mpl.subplots(1, n, figsize=(5.8 * n, 5.4), layout="constrained")
    a1, a2 = axes[0], axes[1]
    for r, color in zip(runs, _colors("plasma", len(runs), 0.85)):
        x = log_time(r["t"])
        tag = f"delay {r['delay']:.0f}" if r["reached"] else "test never < 0.1"
        a1.plot(x, r["train"], "--", color=color, lw=1.3)
        a2.plot(x, r["test"], "-", color=color, lw=1.6, label=f"{r['label']}: {tag}")
        if samples_axis:
            axes[2].plot(x * r["batch"], r["test"], "-", color=color, lw=1.6)
    online = any(r["online"] for r in runs)
    panels = [(a1, _STEPS, "train loss" + (" (online runs: current batch)" if online else ""),
               "train", "train"),
              (a2, _STEPS, "test loss", "test", "test")]
    if samples_axis:
        panels.append((axes[2], "examples processed (steps × examples per step)", "test loss",
                       "test vs examples processed", "test"))
    for ax, xlabel, ylabel, name, which in panels:
        log_axes(ax, xlabel, ylabel, name)
        ax.axhline(0.1, color="0.5", lw=0.7, ls=":")
        if cut_round_off(ax, [r[which] for r in runs]):
            ax.set_title(f"{name} (axis cut at 1e-8)")
    leg = legend_below(fig, a2, "center", ncol=min(len(runs), 3), fontsize=8)
    if leg is not None:
        leg.set_title("the paper's grokking delay (GD steps; dotted line: threshold 0.1)",
                      prop={"size": 8})
    figure_title(fig, title, problem, "exact GD map")
    return fig


# ----------------------------------------------------------------------------- fig5, interpolation
def _network_points(ax, net, color) -> None:
    if net is not None:
        ax.plot(log_time(net.t)[::6], np.asarray(net.test_loss)[::6], "o", ms=2.2, mfc="none",
                color=color)


def _loss_legend_entries(ax, network: bool, lin_style: str, lin_kw: dict) -> None:
    """Legend entries of the line styles of a loss-curve panel, and its log axes."""
    ax.plot([], [], "--", color="0.3", lw=1.1, label="train")
    ax.plot([], [], "-", color="0.3", lw=1.6, label="test")
    ax.plot([], [], lin_style, label="linearised model (test)", **lin_kw)
    if network:
        ax.plot([], [], "o", ms=2.2, mfc="none", color="0.4", label="numpy network (test)")
    log_axes(ax, _STEPS, "mean squared error")


def plot_eigenvector_labels(runs: Sequence[Mapping[str, Any]], scan: Mapping[str, Any],
                            eigenvalues: Any, *, problem: "Problem", method: str, steps: int,
                            network: bool) -> "Figure":
    """Figure 5: loss curves for labels = k-th eigenvector of the initial NTK (left); final
    test loss over a scan of k, network and lazy theory, with the eigenvalues (right).

    Parameters
    ----------
    runs : sequence of mappings
        One per k: ``k``, ``t``, ``train``, ``test``, ``lin_test`` (the linearised model),
        ``network`` (a trajectory of the numpy network, or None).
    scan : mapping of arrays
        ``k``, ``final_test_loss``, ``linearized_final_test_loss``,
        ``kernel_regression_test_loss``, ``initial_test_loss``.
    eigenvalues : array
        Of the centered initial kernel, descending.
    problem : Problem
    method : str
    steps : int
    network : bool
        The numpy network was run (its legend entry is shown).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a1, a2) = mpl.subplots(1, 2, **_WIDE)
    for r, color in zip(runs, _colors("viridis", len(runs))):
        x = log_time(r["t"])
        a1.plot(x, r["train"], "--", color=color, lw=1.1)
        a1.plot(x, r["test"], "-", color=color, lw=1.6, label=f"k = {r['k']}")
        a1.plot(x, r["lin_test"], ":", color="k", lw=0.8)
        _network_points(a1, r["network"], color)
    _loss_legend_entries(a1, network, "k:", dict(lw=0.8))
    a1.set_title("labels = k-th eigenvector of the initial NTK")
    kk = np.asarray(scan["k"], dtype=float)
    a2.plot(kk, scan["final_test_loss"], "o", color="tab:orange", ms=4,
            label=f"network test at t={steps}")
    a2.plot(kk, scan["linearized_final_test_loss"], "k.", ms=3,
            label=f"linearised model test at t={steps}")
    a2.plot(kk, scan["kernel_regression_test_loss"], "-", color="tab:red", lw=1,
            label="K0 kernel regression (t → ∞)")
    a2.plot(kk, scan["initial_test_loss"], "-", color="0.6", lw=0.8, label="test loss at t = 0")
    a2.set_yscale("log")
    a2.set_xlabel("eigen-index k (descending eigenvalue)")
    a2.set_ylabel("test MSE")
    a2.grid(True, alpha=0.3)
    a3 = twin_below(a2, "eigenvalue of centered K̃0 (purple)", "tab:purple")
    lam = np.asarray(eigenvalues, dtype=float)
    a3.plot(np.arange(1, lam.size + 1), lam, "-", color="tab:purple", lw=0.8)
    a2.plot([], [], "-", color="tab:purple", lw=0.8, label="eigenvalue (right axis)")
    a2.set_title("final test loss vs k, network and lazy theory")
    legend_below(fig, a1, "left", ncol=4)
    legend_below(fig, a2, "right", ncol=2)
    figure_title(fig, "Fig. 5: eigenvector labels", problem, method,
              P=f"{problem.P} (+{problem.test_size} test)")
    return fig


def plot_interpolation(runs: Sequence[Mapping[str, Any]], *, problem: "Problem", method: str,
                       network: bool) -> "Figure":
    """Interpolated initialisations W0(s): loss curves with the linearised model and the numpy
    network (left), the paper's NTK alignment on the test and training sets (right).

    Parameters
    ----------
    runs : sequence of mappings
        One per s: ``s``, ``t``, ``train``, ``test``, ``lin_test``, ``alignment_test``,
        ``alignment_train``, ``network`` (a trajectory of the numpy network, or None).
    problem : Problem
    method : str
    network : bool
        The numpy network was run (its legend entry is shown).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a1, a2) = mpl.subplots(1, 2, **_WIDE)
    for r, color in zip(runs, distinct_colors(len(runs))):    # neighbouring s differ in hue
        x = log_time(r["t"])
        a1.plot(x, r["train"], "--", color=color, lw=1.1)
        a1.plot(x, r["test"], "-", color=color, lw=1.6, label=f"s = {r['s']:g}")
        a1.plot(x, r["lin_test"], ":", color=color, lw=0.9)
        _network_points(a1, r["network"], color)
        a2.plot(x, r["alignment_test"], "-", color=color, lw=1.5)
        a2.plot(x, r["alignment_train"], "--", color=color, lw=1.0)
    _loss_legend_entries(a1, network, ":", dict(color="0.3", lw=0.9))
    a1.set_title("W0(s) = (1 − s) W_rand + s W_solution")
    if cut_round_off(a1, [r[k] for r in runs for k in ("train", "test")], floor=1e-12):
        a1.set_title("W0(s) = (1 − s) W_rand + s W_solution (axis cut at 1e-12)")
    a2.set_xscale("log")
    a2.set_xlabel(_STEPS)
    a2.set_ylabel("paper's NTK alignment (solid test, dashed train)")
    a2.set_title("NTK alignment")
    a2.grid(True, alpha=0.3)
    legend_below(fig, a1, "center", ncol=6)
    figure_title(fig, "Interpolation", problem, method)
    return fig
