"""Drawing of the initial-structure figures ``init-rank`` and ``weight-norm``
(docs/gallery.md; computed by :mod:`lazyrich_theory.experiments.figures.init_structure`).

Each function takes the ``plot`` part of the computation and returns a new
:class:`matplotlib.figure.Figure`; nothing is computed, saved or shown here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from matplotlib.ticker import NullFormatter

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.style import (
    STEPS_LABEL,
    figure_title,
    legend_below,
    log_axes,
    log_time,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from lazyrich_theory.spec.problem import Problem

__all__ = ["plot_init_rank", "plot_weight_norm"]

#: Marker and colour of each init family.
FAMILY_STYLE = {"lowrank": ("o", "tab:blue"), "powerlaw": ("s", "tab:orange"),
                "iid": ("*", "black"), "aligned": ("^", "tab:red"),
                "partly aligned": ("v", "tab:purple")}


def _spread(r: Mapping[str, Any], ykey: str, log: bool) -> tuple[float, float, str]:
    """(lower, upper) bar lengths around the task mean of ``ykey`` and what they are.

    Linear axes: ± the standard deviation over tasks.  Log axes (where a std larger than the
    mean would run the bar to the axis floor): the minimum and maximum over tasks when the
    row has them (``ykey + "_tasks"``), else the multiplicative spread ×/÷ exp(s) of the
    log-normal with the tasks' mean m and standard deviation sd, s² = ln(1 + sd²/m²).
    """
    y = r[ykey]
    tasks = r.get(ykey + "_tasks")
    if log and tasks is not None:
        v = np.asarray(tasks, dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            return max(y - v.min(), 0.0), max(v.max() - y, 0.0), "min–max over tasks"
    sd = r.get(ykey + "_std", 0.0)
    sd = sd if math.isfinite(sd) else 0.0
    if not log:
        return sd, sd, "± std over tasks"
    factor = math.exp(math.sqrt(math.log1p((sd / y) ** 2)))
    return y - y / factor, y * factor - y, "×/÷ exp(√ln(1 + sd²/m²)), log-normal"


def _scatter(ax, rows, xkey: str, ykey: str, online: str | None = None,
             positive: bool = True, log: bool = False) -> str:
    """Task means (filled, with bars: :func:`_spread`) of ``ykey`` against ``xkey``; the
    online ODE's value (``online``) as open markers of the same family.  ``positive``: skip
    values <= 0 (log axes); ``log``: the y axis is logarithmic.  Returns what the bars are."""
    what = ""
    for r in rows:
        marker, color = FAMILY_STYLE[r["family"]]
        x, y = r[xkey], r[ykey]
        if not (math.isfinite(x) and math.isfinite(y)) or (positive and y <= 0):
            continue
        lo, hi, what = _spread(r, ykey, log)
        ax.errorbar(x, y, yerr=[[lo], [hi]], fmt=marker, color=color, ms=7, capsize=2, lw=0.8)
        if online is not None and math.isfinite(r[online]) and r[online] > 0:
            ax.plot(x, r[online], marker, mfc="none", color=color, ms=11, mew=1.2)
    return what


def _delays(ax, rows) -> None:
    """Each task's grokking delay (its test loss reached the threshold) and an x at 0 for a
    task whose test loss never did, slightly spread sideways."""
    for r in rows:
        marker, color = FAMILY_STYLE[r["family"]]
        n = len(r["grokking_delay_tasks"])
        for k, (delay, t_test) in enumerate(zip(r["grokking_delay_tasks"], r["test_time_tasks"])):
            x = r["participation_ratio"] * 1.04 ** (k - (n - 1) / 2)
            if math.isfinite(t_test):
                ax.plot(x, delay, marker, color=color, ms=6, alpha=0.7)
            else:
                ax.plot(x, 0.0, "x", color=color, ms=6)


def _family_legend(rows) -> list:
    seen = []
    for r in rows:
        if r["family"] not in seen:
            seen.append(r["family"])
    handles = [mpl.Line2D([], [], marker=FAMILY_STYLE[f][0], color=FAMILY_STYLE[f][1], ls="",
                          label=f) for f in seen]
    handles.append(mpl.Line2D([], [], marker="o", mfc="none", color="0.3", ls="", ms=10,
                              label="online ODE (structured population flow), same t"))
    handles.append(mpl.Line2D([], [], marker="_", color="0.3", ls="", ms=14, mew=2,
                              label="centered plateau (closed form)"))
    return handles


#: A sequential colormap per init family for the test-loss curves (shade = effective rank).
FAMILY_CMAP = {"lowrank": "Blues", "powerlaw": "Oranges", "aligned": "Reds",
               "partly aligned": "Purples"}


def _curve_colors(rows) -> list:
    """One colour per init: its family's colormap, darker for a larger participation ratio
    (the family's marker colour when it is the family's only init; iid black)."""
    colors = []
    for i, r in enumerate(rows):
        family = r["family"]
        kin = sorted((q["participation_ratio"], j) for j, q in enumerate(rows)
                     if q["family"] == family)
        if family not in FAMILY_CMAP or len(kin) == 1:
            colors.append(FAMILY_STYLE[family][1])
            continue
        rank = kin.index((r["participation_ratio"], i))
        colors.append(mpl.get_cmap(FAMILY_CMAP[family])(0.4 + 0.55 * rank / (len(kin) - 1)))
    return colors


def plot_init_rank(rows: Sequence[Mapping[str, Any]], curves: Mapping[str, Any], *,
                   problem: "Problem", steps: int, method: str, n_tasks: int) -> "Figure":
    """``init-rank``: weight change, kernel alignment, test loss and grokking delay against the
    participation ratio of M0 (task means; std bars, on the log test-loss axis the spread of
    :func:`_spread`), weight change against the task overlap, and the mean test-loss curves
    (one shade of the family's colour per init, by effective rank).

    Parameters
    ----------
    rows : sequence of mappings
        One per init spec (``init_rank``'s ``result["inits"]``).
    curves : mapping
        spec -> (t, mean normalised test loss).
    problem : Problem
    steps : int
    method : str
    n_tasks : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = mpl.subplots(2, 3, figsize=(15, 9.5), layout="constrained")
    (a, b, c), (d, e, f) = axes
    pr = "participation ratio of M0 (effective rank)"
    _scatter(a, rows, "participation_ratio", "weight_change", "online_weight_change")
    log_axes(a, pr, "‖W − W0‖_F / ‖W0‖_F", f"weight change at t = {steps}", logy=False)
    _scatter(b, rows, "participation_ratio", "tangent_kernel_alignment")
    log_axes(b, pr, "⟨K_t, K_0⟩ / (‖K_t‖ ‖K_0‖)", "tangent-kernel alignment (train set)",
             logy=False)
    bars = _scatter(c, rows, "participation_ratio", "test_loss", "online_loss", log=True)
    for r in rows:
        if math.isfinite(r.get("online_plateau", math.nan)) and r["online_plateau"] > 1e-12:
            c.plot(r["participation_ratio"], r["online_plateau"], "_", color="0.3", ms=14, mew=2)
    log_axes(c, pr, "test loss / initial (task mean m)", f"final test loss\nbars: {bars}")
    _delays(d, rows)
    log_axes(d, pr, "t_test − t_train (GD steps)",
             "grokking delay per task (threshold 0.1 × initial; × at 0: never)", logy=False)
    _scatter(e, rows, "task_overlap_rel", "weight_change", "online_weight_change")
    log_axes(e, "D · β̂ᵀM0β̂ / tr M0 (task overlap; iid = 1)", "‖W − W0‖_F / ‖W0‖_F",
             "weight change vs task alignment", logy=False)
    for (spec, (t, test)), color in zip(curves.items(), _curve_colors(rows)):
        f.plot(log_time(t), test, color=color, lw=1.2, label=spec)
    log_axes(f, STEPS_LABEL, "test loss / initial", f"mean test loss ({n_tasks} tasks)")
    for ax in (a, b, c, d, e):
        ax.xaxis.set_minor_formatter(NullFormatter())
    legend_below(fig, a, "left", ncol=3, handles=_family_legend(rows))
    leg = legend_below(fig, f, "right", ncol=4, fontsize=7)
    if leg is not None:
        leg.set_title("mean test loss: init (shade: effective rank)", prop={"size": 7})
    figure_title(fig, f"Initial structure at matched norm (tr M0 = D), mean of {n_tasks} tasks",
                 problem, method, skip=("init",))          # the init is what varies
    return fig


def plot_weight_norm(sweep: Sequence[Mapping[str, Any]], joint: Sequence[Mapping[str, Any]],
                     alpha_only: Sequence[Mapping[str, Any]], *, problem: "Problem",
                     method: str, steps: int) -> "Figure":
    """``weight-norm``: the paper's sigma sweep and joint (sigma, alpha = 1/sigma^2) sweep run
    literally (solid) with their exactly equivalent unscaled runs (dashed, on top), and the
    final weight change and test loss against sigma^2 alpha_p for both sweeps and an alpha
    sweep at sigma = 1.

    Parameters
    ----------
    sweep, joint, alpha_only : sequences of mappings
        Runs with ``t``, ``test``, ``equivalent_test`` (not for alpha_only), ``sigma``,
        ``sigma2_alpha``, ``eps``, ``weight_change``, ``final_test``.
    problem : Problem
    method : str
    steps : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = mpl.subplots(2, 2, figsize=(12.5, 9.5), layout="constrained")
    (a, b), (c, d) = axes
    for ax, runs, name in ((a, sweep, "sweep 1: a, W0 × σ, α_p = 1"),
                           (b, joint, "joint sweep: a, W0 × σ, α_p = 1/σ²")):
        colors = [mpl.get_cmap("viridis")(i / max(1, len(runs) - 1)) for i in range(len(runs))]
        for r, col in zip(runs, colors):
            x = log_time(r["t"])
            ax.plot(x, r["test"], "-", color=col, lw=2.2, alpha=0.6,
                    label=f"σ = {r['sigma']:g} ≡ α = {r['sigma2_alpha']:.3g}, "
                          f"ε = {r['sigma'] * r['eps']:.3g}")
            ax.plot(x, r["equivalent_test"], "--", color="black", lw=0.8)
        log_axes(ax, STEPS_LABEL, "test loss / initial", name)
        ax.legend(fontsize=7, title="solid: literal run (a, W0 × σ); dashed: the\nunscaled run "
                  "with (α, ε) = (σ²α_p, σε), same η0", title_fontsize=7)
    series = (("sweep 1", sweep, "o", "tab:blue"), ("joint sweep", joint, "s", "tab:red"),
              ("α sweep at σ = 1 (ε fixed)", alpha_only, "x", "black"))
    for ax, key, ylabel in ((c, "weight_change", "‖W − W0‖_F / ‖W0‖_F (final)"),
                            (d, "final_test", "test loss / initial (final)")):
        for label, runs, marker, color in series:
            xs = np.array([r["sigma2_alpha"] for r in runs])
            ys = np.array([r[key] for r in runs])
            order = np.argsort(xs)
            ax.plot(xs[order], ys[order], marker + "-", color=color, label=label, lw=1, ms=7)
        log_axes(ax, "σ² α_p (the paper's collapse variable)", ylabel)
    legend_below(fig, c, "center", ncol=3)
    figure_title(fig, f"Weight norm vs laziness (paper appendix), {steps} steps", problem, method,
           skip=("alpha",))
    return fig
