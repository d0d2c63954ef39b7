"""Drawing of the offline-theory figures ``kappa`` and ``floor-map`` (docs/gallery.md;
computed by :mod:`lazyrich_theory.experiments.figures.offline`).

Takes the ``plot`` part of the computation and returns a new :class:`matplotlib.figure.Figure`;
nothing is computed, saved or shown here.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.style import (
    STEPS_LABEL,
    closure_suffix,
    distinct_colors,
    legend_below,
    log_axes,
    log_time,
    problem_line,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from lazyrich_theory.spec.problem import Problem

__all__ = ["plot_kappa", "plot_floor_map"]

_METHOD = {"spectral": "spectral closure", "dmft": "DMFT", "rindex": "r-index DMFT"}
_EXACT = {"flow": "exact gradient flow (N = ∞)", "gd": "exact GD (N = ∞)"}


def _method(run: dict) -> str:
    """The theory's name in a legend (the DMFT's column closure named)."""
    return _METHOD[run["method"]] + closure_suffix(run.get("column_closure"))


def _fmt(h: float | None) -> str:
    """A half time to 3 significant digits, one format for all: '9.90×10³', '850', 'never'."""
    if h is None:
        return "never"
    if abs(h) < 1000:
        return f"{h:#.3g}".rstrip(".")
    mantissa, exponent = f"{h:.2e}".split("e")
    return f"{mantissa}×10$^{{{int(exponent)}}}$"


#: The interpolant's tau -> inf loss in the along-kappa panel (grey: the colours are the
#: kappas of the time panels)
_LIMIT_STYLE, _LIMIT_COLOR = "D:", "0.55"


def _style_handles(spectral: bool, exact: str, limit: bool = False,
                   draws: Any = None) -> list:
    """Legend entries of the line styles (the colours are the κ of the other entries)."""
    handles = [mpl.Line2D([], [], color="0.3", ls="-", lw=1.8,
                          label=_EXACT.get(exact, exact)),
               mpl.Line2D([], [], color="0.3", ls="--", lw=1.6,
                          label="offline theory (the method named for each κ)")]
    if spectral:
        handles.append(mpl.Line2D([], [], color="0.3", ls=":", lw=1.3,
                                  label="spectral closure where the DMFT is the theory"))
    if draws is not None:
        handles.append(mpl.Patch(color="0.3", alpha=0.15, lw=0,
                                 label=f"offline theory ± 2 standard errors ({draws} Monte Carlo "
                                       "draws)"))
    if limit:
        handles.append(mpl.Line2D([], [], color=_LIMIT_COLOR, ls=":", marker="D", lw=1.2,
                                  ms=5, label="right panel: τ → ∞ loss of the mirror-descent "
                                              "interpolant\n(docs/offline_theory.md §15)"))
    return handles


def _along_kappa(ax, runs: Sequence[Mapping[str, Any]]) -> None:
    """Loss at the horizon / initial against kappa: exact (solid, filled) and theory (dashed,
    open)."""
    k = np.array([r["kappa"] for r in runs], dtype=float)
    ax.plot(k, [r["exact_final"] for r in runs], "o-", color="0.15", lw=1.2, ms=6,
            label="exact")
    ax.plot(k, [r["theory_final"] for r in runs], "o--", color="0.15", mfc="white", lw=1.2,
            ms=6, label="offline theory")
    lim = [(r["kappa"], r["limit"]) for r in runs if r.get("limit") is not None]
    if lim:
        kk, ll = zip(*lim)
        ax.plot(kk, ll, _LIMIT_STYLE, color=_LIMIT_COLOR, lw=1.2, ms=5,
                label="τ → ∞: interpolant")
    ax.axhline(0.5, color="0.5", lw=0.7, ls=":")
    log_axes(ax, "κ = P/D", "test loss at the horizon / initial", "along κ: generalises?")
    ax.set_xticks(k, [f"{v:g}" for v in k])
    ax.set_xticks([], minor=True)          # line styles as in the other panels' legend


def plot_kappa(runs: Sequence[Mapping[str, Any]], *, problem: "Problem") -> "Figure":
    """Relative test loss vs GD steps for each kappa: exact flow or GD (solid), offline theory
    (dashed), and the spectral closure where the DMFT was used (dotted); a second panel
    with the train loss; a third with the loss at the horizon against kappa (whether the
    network generalises along kappa: below the dotted 1/2 line it has, above it has not) and,
    where given, the interpolant's tau -> inf loss (grey diamonds); a band of +-2 standard
    errors around a theory that averaged several Monte Carlo draws.
    Log axes; the line styles are in the right-hand legend.

    Parameters
    ----------
    runs : sequence of mappings
        One per kappa: ``kappa``, ``t``, ``exact_test``, ``exact_train``, ``theory_test``,
        ``theory_train``, ``spectral_test`` (or None), ``method``, ``exact_method`` ("flow"
        or "gd"; flow when absent), ``exact_half_time``,
        ``theory_half_time``, ``exact_final``, ``theory_final`` (test loss at the horizon /
        initial), optionally ``limit`` (tau -> inf loss / initial, or None),
        ``theory_test_se`` (the standard error of a mean over Monte Carlo draws, or None) and
        ``dmft_draws``.
    problem : Problem
        The base problem (D, alpha, eps, eta0, seed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a1, a2, a3) = mpl.subplots(1, 3, figsize=(16.5, 5.6), layout="constrained",
                                     gridspec_kw={"width_ratios": (1.0, 1.0, 0.62)})
    for r, c in zip(runs, distinct_colors(len(runs))):      # neighbouring κ differ in hue
        x = log_time(r["t"])
        e0, t0 = r["exact_test"][0], r["theory_test"][0]
        a1.plot(x, r["exact_test"] / e0, "-", color=c, lw=1.8,
                label=f"κ = {r['kappa']:g}: exact t½ {_fmt(r['exact_half_time'])}, "
                      f"{_method(r)} {_fmt(r['theory_half_time'])}")
        a1.plot(x, r["theory_test"] / t0, "--", color=c, lw=1.6)
        if r.get("theory_test_se") is not None:     # a mean over Monte Carlo draws
            th, band = np.asarray(r["theory_test"]), 2.0 * np.asarray(r["theory_test_se"])
            a1.fill_between(x, np.maximum(th - band, 0.05 * th) / t0, (th + band) / t0,
                            color=c, alpha=0.15, lw=0)
        if r.get("spectral_test") is not None:
            a1.plot(x, np.asarray(r["spectral_test"]) / r["spectral_test"][0], ":", color=c,
                    lw=1.3)
        a2.plot(x, r["exact_train"] / r["exact_train"][0], "-", color=c, lw=1.6)
        a2.plot(x, r["theory_train"] / r["theory_train"][0], "--", color=c, lw=1.4)
    log_axes(a1, STEPS_LABEL, "test (population) loss / initial",
             "test loss (dotted grey: half the initial loss)")
    log_axes(a2, STEPS_LABEL, "train loss / initial", "train loss")
    a1.axhline(0.5, color="0.5", lw=0.7, ls=":")
    _along_kappa(a3, runs)
    legend_below(fig, a1, "left", ncol=1, fontsize=8)
    spectral = any(r.get("spectral_test") is not None for r in runs)
    exact = runs[0].get("exact_method", "flow")
    limit = any(r.get("limit") is not None for r in runs)
    draws = next((r.get("dmft_draws") for r in runs if r.get("theory_test_se") is not None),
                 None)
    legend_below(fig, a2, "right", ncol=1, fontsize=8,
                 handles=_style_handles(spectral, exact, limit, draws))
    text = (f"Offline theory vs {_EXACT.get(exact, exact).split(' (')[0]} over κ = P/D (no "
            "fitted constant); "
            f"{problem_line(problem, skip=('P', 'N'))}, N = ∞, seed {problem.seed}")
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 9)))
    return fig


def plot_floor_map(kappas: Sequence[float], ms: Sequence[float], mean_loss: np.ndarray,
                   critical: Sequence[float | None], *, problem: "Problem",
                   seeds: int) -> "Figure":
    """The tau -> inf relative test loss over kappa (vertical) and m = alpha eps / b2 (log,
    horizontal), log colour, with its 1/2 contour (the critical kappa, marked per m) and the
    0.1 contour (the paper's Fig. 3(e) threshold).

    Parameters
    ----------
    kappas, ms : sequence of float
        Increasing grids.
    mean_loss : numpy.ndarray
        (len(kappas), len(ms)): the seed-mean loss / initial.
    critical : sequence of float or None
        Per m, the kappa at which the mean crosses 1/2 (None: not on the grid).
    problem : Problem
        The base problem (D, alpha / eps, seed).
    seeds : int
        Training sets per cell.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm

    fig, ax = mpl.subplots(1, 1, figsize=(8.4, 5.2), layout="constrained")
    Z = np.clip(np.asarray(mean_loss, dtype=float), 1e-4, None)
    mesh = ax.pcolormesh(ms, kappas, Z, shading="nearest", cmap="viridis",
                         norm=LogNorm(1e-4, max(2.0, float(Z.max()))))
    if len(ms) > 1 and len(kappas) > 1:
        cs = ax.contour(ms, kappas, Z, levels=[0.1, 0.5], colors=["w", "k"], linewidths=1.6)
        ax.clabel(cs, fmt={0.1: "0.1", 0.5: "½"}, fontsize=8)
    pts = [(m, k) for m, k in zip(ms, critical) if k is not None]
    if pts:
        ax.plot(*zip(*pts), "o", color="k", ms=4, label="critical κ (mean loss ½)")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("m = αε / b₂")
    ax.set_ylabel("κ = P / D")
    fig.colorbar(mesh, ax=ax,
                 label=f"τ → ∞ test loss / initial (interpolant, mean of {seeds})")
    text = (f"Where the flow ends: D = {problem.D}, α/ε = {problem.alpha / problem.eps:.3g}, "
            f"N = ∞, seeds {problem.seed}–{problem.seed + seeds - 1} (black ½: critical κ; "
            "white: 0.1)")
    ax.set_title(textwrap.fill(text, 90), fontsize=10)
    return fig
