"""Drawing of the offline-theory figure ``kappa`` (docs/gallery.md; computed by
:mod:`lazyrich_theory.experiments.figures.offline`).

Takes the ``plot`` part of the computation and returns a new :class:`matplotlib.figure.Figure`;
nothing is computed, saved or shown here.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.style import legend_below, log_axes, log_time, problem_line

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from lazyrich_theory.spec.problem import Problem

__all__ = ["plot_kappa"]

_METHOD = {"spectral": "spectral closure", "dmft": "DMFT"}


def _fmt(h: float | None) -> str:
    return "never" if h is None else f"{h:.3g}"


def plot_kappa(runs: Sequence[Mapping[str, Any]], *, problem: "Problem") -> "Figure":
    """Relative test loss vs GD steps for each kappa: exact flow (solid), offline theory
    (dashed), and the spectral closure where the DMFT was used (dotted); a second panel
    with the train loss.

    Parameters
    ----------
    runs : sequence of mappings
        One per kappa: ``kappa``, ``t``, ``exact_test``, ``exact_train``, ``theory_test``,
        ``theory_train``, ``spectral_test`` (or None), ``method``, ``exact_half_time``,
        ``theory_half_time``.
    problem : Problem
        The base problem (D, alpha, eps, eta0, seed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a1, a2) = mpl.subplots(1, 2, figsize=(12.5, 5.6), layout="constrained")
    cmap = mpl.get_cmap("viridis")
    for i, r in enumerate(runs):
        c = cmap(0.9 * i / max(1, len(runs) - 1))
        x = log_time(r["t"])
        e0, t0 = r["exact_test"][0], r["theory_test"][0]
        a1.plot(x, r["exact_test"] / e0, "-", color=c, lw=1.8,
                label=f"κ = {r['kappa']:g}: exact t½ {_fmt(r['exact_half_time'])}, "
                      f"{_METHOD[r['method']]} {_fmt(r['theory_half_time'])}")
        a1.plot(x, r["theory_test"] / t0, "--", color=c, lw=1.6)
        if r.get("spectral_test") is not None:
            a1.plot(x, np.asarray(r["spectral_test"]) / r["spectral_test"][0], ":", color=c,
                    lw=1.3)
        a2.plot(x, r["exact_train"] / r["exact_train"][0], "-", color=c, lw=1.6)
        a2.plot(x, r["theory_train"] / r["theory_train"][0], "--", color=c, lw=1.4)
    log_axes(a1, "GD steps t", "test (population) loss / initial",
             "test loss: exact (solid), theory (dashed), spectral closure (dotted)",
             logy=False)
    log_axes(a2, "GD steps t", "train loss / initial", "train loss: exact (solid), theory "
             "(dashed)")
    a1.axhline(0.5, color="0.5", lw=0.7, ls=":")
    a1.set_ylim(bottom=0.0)
    legend_below(fig, a1, "center", ncol=2, fontsize=8)
    text = (f"Offline theory vs exact gradient flow over κ = P/D (no fitted constant); "
            f"{problem_line(problem, skip=('P', 'N'))}, N = ∞, seed {problem.seed}")
    fig.suptitle(textwrap.fill(text, int(fig.get_figwidth() * 9)))
    return fig
