"""Plots of trajectories (matplotlib object API; never touches the backend or pyplot).

:func:`plot_trajectory` draws the two standard panels into a new Figure, or into axes the
caller owns (``ax=``); ``overlay=`` adds the caller's curves (another run, the numpy network)
before the legends are made.  The panels are also available one by one (:func:`draw_losses`,
:func:`draw_decomposition`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.mpl import HandlerTuple
from lazyrich_theory.plotting.style import (
    STEPS_LABEL,
    closure_suffix,
    legend_below,
    log_time,
    method_name,
    options_suffix,
    problem_line,
    twin_below,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from lazyrich_theory.results.trajectory import Trajectory

__all__ = ["plot_trajectory", "draw_losses", "draw_decomposition", "ALIGNMENT_LABEL",
           "OFFLINE_LABEL", "OFFLINE_COLUMN"]

#: Legend entry of the NTK-alignment curve (drawn on its own right-hand axis).
ALIGNMENT_LABEL = "NTK alignment (paper's, test set; right axis)"
_ALIGNMENT_COLOR = "tab:purple"
#: The offline theory's population loss (``solve_with_theory``'s column).
OFFLINE_COLUMN = "offline_population_loss"
#: Legend entry of the offline theory's curve (dotted, on the loss panel) when the spectral
#: closure drew it (the default; ``_offline_label`` names the others).
OFFLINE_LABEL = "offline theory (N = ∞, spectral)"
#: The offline theories' names in the legend, by summary key ``offline_method``.
_OFFLINE_NAMES = {"spectral": "spectral", "dmft": "DMFT", "rindex": "r-index DMFT"}
_OFFLINE_COLOR = "tab:green"
#: The interpolant's tau -> inf level (another theory than the offline curve's: its own colour)
_LIMIT_COLOR = "tab:brown"
#: The population loss is drawn alike on both panels (dotted over the test-set loss).
_POPULATION_STYLE = dict(ls=":", color="0.15", lw=2.0)
#: gid of the loss panel's theory artists (offline theory, linearised model, K0 line,
#: interpolant): the legend lists them in a column of their own, headed THEORY_HEADING, beside
#: the run's curves (headed RUN_HEADING).
_THEORY = "theory"
RUN_HEADING, THEORY_HEADING = "this run", "theory"
#: The linearised model's two curves share one legend entry (dashed train, solid test).
_LINEARISED = ("linearised train loss", "linearised test loss")
LINEARISED_LABEL = "linearised model (train, test)"
_HANDLERS = {tuple: HandlerTuple(ndivide=None, pad=0.6)}


def _title(traj: "Trajectory") -> str:
    p = traj.problem
    readouts = " with trained readouts" if traj.info.get("train_readouts") else ""
    closure = closure_suffix(traj.info.get("column_closure"))     # the DMFT's column closure
    kappa = f"{p.P} (κ={p.P / p.D:.3g})"      # the offline theory's control parameter
    return (f"{method_name(traj.method, p)}{closure}{readouts} — {problem_line(p, P=kappa)}, "
            f"seed {p.seed}" + options_suffix(p))


def _offline_label(summary: Mapping[str, Any]) -> str:
    """The offline theory curve's legend entry: the theory that drew it (summary key
    ``offline_method``; the spectral closure when it is not recorded) and the DMFT's
    column closure (``offline_column_closure``, :func:`closure_suffix`)."""
    name = _OFFLINE_NAMES.get(summary.get("offline_method") or "spectral", "spectral")
    name += closure_suffix(summary.get("offline_column_closure"))
    return f"offline theory (N = ∞, {name})"


def _positive_line(ax, x, y, ls, color, lw, label, gid: str | None = None) -> bool:
    """Plot the positive finite part of y (log axes); False when there is none."""
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0)
    if not ok.any():
        return False
    ax.plot(x, np.where(ok, y, np.nan), ls, color=color, lw=lw, label=label, gid=gid)
    return True


def _population_label(traj: "Trajectory") -> str:
    """What the population-loss curve is: the online ODE's, the exact reduced run's, the
    numpy network's (closed form in its weights, readouts included) or a Monte Carlo value."""
    if traj.problem.target != "paper" and "population_loss_stderr" in traj.extra:
        return "population loss (Monte Carlo)"
    if traj.method == "population":
        return "population loss (online)"
    if traj.method == "network":
        return "population loss (closed form in the network's weights)"
    if _is_theory(traj):
        return "population loss (= test loss; theory)"
    return "population loss (exact)"


def _is_theory(traj: "Trajectory") -> bool:
    """An offline theory's trajectory (lazyrich asymptotic): no test set, test = population."""
    return str(traj.method).startswith("offline-")


def _population_line(ax, x, traj: "Trajectory") -> bool:
    """The population loss in its one style (both panels), with the band of +-2 standard
    errors where a theory averaged several Monte Carlo draws; False when there is none."""
    st = _POPULATION_STYLE
    drawn = _positive_line(ax, x, traj.population_loss, st["ls"], st["color"], st["lw"],
                           _population_label(traj))
    se = traj.extra.get("population_loss_mc_se")
    if drawn and se is not None:
        _mc_band(ax, x, traj.population_loss, se, st["color"],
                 traj.info.get("dmft_draws", "several"), "")
    return drawn


def _mc_band(ax, x, mean, se, color: str, draws: Any, whose: str,
             gid: str | None = None) -> None:
    """The band of +-2 standard errors around a mean over ``draws`` Monte Carlo draws
    (``whose``: what the label names first, e.g. "offline theory ")."""
    mean = np.asarray(mean, dtype=float)
    ax.fill_between(x, np.maximum(mean - 2 * se, 0.0), mean + 2 * se, color=color, alpha=0.2,
                    lw=0, label=f"{whose}± 2 standard errors ({draws} Monte Carlo draws)",
                    gid=gid)


def draw_losses(ax: "Axes", traj: "Trajectory") -> "Axes | None":
    """The loss panel: train/test/population loss, the offline theory's population loss
    (dotted green, column ``offline_population_loss``), the linearised model and the K0 line
    when present, against log time (t = 0 drawn at t = 1/2).

    The paper's NTK alignment, when the trajectory has it, goes on a right-hand axis that is
    drawn *below* ``ax`` (so no legend of ``ax`` is struck through) and gets an entry in
    ``ax``'s legend.  No legend is drawn here.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    traj : Trajectory

    Returns
    -------
    matplotlib.axes.Axes or None
        The alignment's right-hand axis, None without an alignment curve.
    """
    x = log_time(traj.t)
    online = traj.method == "population"
    if not online:
        ax.plot(x, traj.train_loss, "--", color="tab:blue", lw=1.8,
                label="train loss (theory)" if _is_theory(traj) else "train loss")
    if not online and not _is_theory(traj):
        ax.plot(x, traj.test_loss, "-", color="tab:orange", lw=2.0, label="test loss (test set)")
    _population_line(ax, x, traj)
    if OFFLINE_COLUMN in traj.extra:
        summary = traj.info.get("summary") or {}
        if (_positive_line(ax, x, traj.extra[OFFLINE_COLUMN], ":", _OFFLINE_COLOR, 2.0,
                           _offline_label(summary), gid=_THEORY)
                and OFFLINE_COLUMN + "_mc_se" in traj.extra):
            _mc_band(ax, x, traj.extra[OFFLINE_COLUMN], traj.extra[OFFLINE_COLUMN + "_mc_se"],
                     _OFFLINE_COLOR, summary.get("offline_dmft_draws", "several"),
                     "offline theory ", gid=_THEORY)
    for name, ls, label in zip(("linearized_train_loss", "linearized_test_loss"), ("--", "-"),
                               _LINEARISED):
        if name in traj.extra:
            ax.plot(x, traj.extra[name], ls, color="k", lw=1.0, label=label, gid=_THEORY)
    if not online:      # thin dashed orange, on top: visible where other curves run along it
        ax.axhline(traj.test_loss[0], color="tab:orange", lw=1.0, ls=(0, (5, 3)), zorder=2.5,
                   label="initial test loss")
    summary = traj.info.get("summary") or {}
    k0 = summary.get("kernel_regression_test_loss")
    if k0:
        ax.axhline(k0, color="tab:red", lw=1.2, ls="-.", label=f"K0 regression ({k0:.3f})",
                   gid=_THEORY)
    # relative; lazyrich asymptotic's key, or lazyrich solve --limit-loss interpolant's
    limit = summary.get("predicted_limit_test_loss") or summary.get(
        "offline_predicted_limit_test_loss")
    if limit and traj.population_loss is not None:
        ax.axhline(limit * float(traj.population_loss[0]), color=_LIMIT_COLOR, lw=1.2,
                   ls=(0, (6, 2, 1, 2)), gid=_THEORY,
                   label=f"τ → ∞: interpolant ({limit:.3g} × initial population loss)")
    twin = None
    if "kernel_alignment" in traj.extra:
        twin = twin_below(ax, "NTK alignment (paper's, test set)", _ALIGNMENT_COLOR)
        twin.plot(x, traj.extra["kernel_alignment"], "-", color=_ALIGNMENT_COLOR, lw=1.2,
                  alpha=0.8)
        _honest_span(twin, traj.extra["kernel_alignment"])
        ax.plot([], [], "-", color=_ALIGNMENT_COLOR, lw=1.2, alpha=0.8, label=ALIGNMENT_LABEL)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(STEPS_LABEL)
    ax.set_ylabel("mean squared error")
    ax.set_title("losses")
    ax.grid(True, which="major", alpha=0.3)
    return twin


def _honest_span(ax: "Axes", values: np.ndarray, least: float = 0.2) -> None:
    """Widen a linear axis to include 0 when its data vary by less than ``least`` of their
    size: autoscaling would blow a 10 % change up to the full height."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    size = max(abs(lo), abs(hi))
    if size > 0 and hi - lo < least * size:
        ax.set_ylim(min(0.0, lo) * 1.05, max(0.0, hi) * 1.05)


def draw_decomposition(ax: "Axes", traj: "Trajectory") -> bool:
    """The population-loss decomposition panel (no legend drawn here).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    traj : Trajectory

    Returns
    -------
    bool
        False when the run has no decomposition (a note is written in the panel instead).
    """
    x = log_time(traj.t)
    paper = traj.problem.target == "paper"
    labels = (("variance (tr Δ)²/D²", "misalignment 2 tr Δ²/D²", "linear power |v|²/D") if paper
              else ("degree-0 error power", "degree-2 error power", "degree-1 error power"))
    drawn = _population_line(ax, x, traj)
    for name, color, label in zip(("variance", "misalignment", "linear_power"),
                                  ("tab:red", "tab:green", "tab:brown"), labels):
        drawn |= _positive_line(ax, x, traj[name], "--", color, 1.4, label)
    irr = (traj.info.get("target") or {}).get("irreducible_loss")
    if irr:
        ax.axhline(irr, color="0.4", lw=1.0, ls=":", label=f"irreducible (degree ≥ 3) {irr:.3g}")
        drawn = True
    ax.set_xscale("log")
    if drawn:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "not available for this run\n(e.g. the network with a non-paper target)",
                ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xlabel(STEPS_LABEL)
    ax.set_title("population-loss decomposition")
    ax.grid(True, which="major", alpha=0.3)
    return drawn


def _finish(fig, axes, traj: "Trajectory", own: bool) -> None:
    """Legends and title of :func:`plot_trajectory`'s panels.

    In a Figure of its own, each panel's legend goes below it, outside the axes, where it
    overlaps no curve, and the run is described in the figure's title.  In the caller's axes,
    legends go inside (``loc="best"``) and the caller's figure title is left alone.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    axes : sequence of Axes
        The loss panel, then (optionally) the decomposition panel.
    traj : Trajectory
    own : bool
        True when ``fig`` was made by :func:`plot_trajectory`.
    """
    for k, ax in enumerate(axes):
        run, theory = _legend_groups(ax)
        if own and k == 0 and run and theory and not _is_theory(traj):
            _headed_legend(fig, ax, run, theory)    # two headed columns: the run, the theory
        elif own:                # three columns on the left unless a long label would overrun
            wide = k == 0 and max((len(lb) for _, lb in run + theory), default=0) <= 36
            legend_below(fig, ax, "left" if k == 0 else "right", ncol=3 if wide else 2,
                         handles=[h for h, _ in run + theory],
                         labels=[lb for _, lb in run + theory], handler_map=_HANDLERS)
        elif run or theory:
            ax.legend(*zip(*(run + theory)), fontsize=8, loc="best", handler_map=_HANDLERS)
    if own:
        fig.suptitle(_title(traj), fontsize=10)


def _legend_groups(ax: "Axes") -> tuple[list, list]:
    """``ax``'s legend entries as (handle, label) pairs, split into the run's and the
    theory's (artists with gid ``"theory"``); the linearised model's two curves become one
    entry (a dashed and a solid line side by side)."""
    run, theory, lin = [], [], {}
    for h, label in zip(*ax.get_legend_handles_labels()):
        if label in _LINEARISED and h.get_gid() == _THEORY:
            lin[label] = h
            if len(lin) == 1:
                theory.append(None)            # the merged entry's place
            continue
        (theory if h.get_gid() == _THEORY else run).append((h, label))
    if lin:
        merged = ((tuple(lin[lb] for lb in _LINEARISED if lb in lin), LINEARISED_LABEL)
                  if len(lin) == 2 else next((h, lb) for lb, h in lin.items()))
        theory = [merged if e is None else e for e in theory]
    return run, theory


def _headed_legend(fig, ax: "Axes", run: list, theory: list) -> None:
    """One legend below the loss panel: the run's entries in the left column under
    RUN_HEADING, the theory's in the right under THEORY_HEADING (headings in bold)."""
    rows = max(len(run), len(theory))
    blank = (mpl.Line2D([], [], linestyle="none"), "")
    cols = [[(mpl.Line2D([], [], linestyle="none"), head)] + group + [blank] * (rows - len(group))
            for head, group in ((RUN_HEADING, run), (THEORY_HEADING, theory))]
    handles, labels = zip(*(cols[0] + cols[1]))
    leg = legend_below(fig, ax, "left", ncol=2, handles=list(handles), labels=list(labels),
                       handler_map=_HANDLERS)
    for text in (leg.get_texts()[0], leg.get_texts()[rows + 1]):
        text.set_fontweight("bold")


def plot_trajectory(traj: "Trajectory", path: str | os.PathLike | None = None, dpi: int = 130,
                    ax: Any = None, overlay: Callable[["Axes"], Any] | None = None):
    """Left: train/test/population loss vs log time.  Right: the population-loss decomposition.

    Time t = 0 is drawn at t = 1/2 on the log axis (marked), so the initial loss is visible.
    The backend and pyplot's figure list are never touched.

    Parameters
    ----------
    traj : Trajectory
    path : path-like, optional
        Save the figure there (PNG) when given.
    dpi : int
        Resolution of the saved file.
    ax : matplotlib.axes.Axes or a pair of them, optional
        Draw into the caller's axes instead of a new Figure: one Axes receives the loss panel
        only, a pair (e.g. from ``subplots(1, 2)``) both panels.  Legends go inside the axes;
        the caller's figure title is not changed.
    overlay : callable, optional
        ``overlay(loss_axes)`` is called after the loss panel is drawn and before the legends:
        labelled curves it adds (another run, the numpy network) join the legend.

    Returns
    -------
    matplotlib.figure.Figure
        The new Figure, or the Figure holding ``ax``.
    """
    own = ax is None
    if own:
        fig, axes = mpl.subplots(1, 2, figsize=(12.5, 5.6), layout="constrained")
        axes = list(axes)
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if not 1 <= len(axes) <= 2:
            raise ValueError(f"ax must be one Axes or a pair of them, got {len(axes)}")
        fig = axes[0].figure
    draw_losses(axes[0], traj)
    if overlay is not None:
        overlay(axes[0])
    if len(axes) == 2:
        if not draw_decomposition(axes[1], traj):
            axes = axes[:1]          # nothing to list in an empty panel's legend
    _finish(fig, axes, traj, own)
    if path is not None:
        if own:
            mpl.save(fig, path, dpi)        # one draw: the layout runs once
        else:
            fig.savefig(os.fspath(path), dpi=dpi)
    return fig
