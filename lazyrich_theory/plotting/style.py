"""What every plot shares: run descriptions, method names, log-time axes, right-hand axes
that never cover a legend, legends outside the axes.

Everything here reads a problem by duck typing (``p.D``, ``p.alpha``, ...), so the plotting
layer needs no import from the layers above it.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable

import numpy as np

from lazyrich_theory.spec.problem import options_in_use

__all__ = ["METHOD_NAMES", "method_name", "options_suffix", "problem_line", "log_time",
           "log_axes", "twin_below", "legend_below", "cut_round_off", "distinct_colors",
           "STEPS_LABEL", "figure_title", "CLOSURE_NAMES"]

#: Losses below this are round-off of runs that fit exactly; loss axes are cut there.
ROUND_OFF_FLOOR = 1e-8

#: How a trajectory's ``method`` is written in titles.
METHOD_NAMES = {"gd": "exact GD", "gd-fast": "GD in strides (≤ 1e-7 of exact GD)",
                "flow": "gradient flow", "population": "online ODE (population)",
                "network": "numpy network",
                "offline-spectral": "offline theory (spectral closure, N = ∞)",
                "offline-dmft": "offline theory (DMFT, N = ∞)",
                "offline-rindex": "offline theory (r-index DMFT, N = ∞)"}


#: The x label of a log-time axis drawn with :func:`log_time`.
STEPS_LABEL = "GD steps t  (t = 0 drawn at 1/2)"
#: The offline DMFT's linear-column closures by their names in labels (the closure that ran;
#: docs/offline_theory.md §12.4).
CLOSURE_NAMES = {"dmft": "as derived", "least_squares": "A7", "spread": "spread"}


def closure_suffix(closure: str | None) -> str:
    """" + <name>" for the DMFT's column closure that ran, named as in :data:`CLOSURE_NAMES`
    ("" where none is recorded: no DMFT ran)."""
    name = CLOSURE_NAMES.get(closure or "", "")
    return f" + {name}" if name else ""

#: A qualitative palette (matplotlib's tab10) in its own order: neighbours differ in hue.
_DISTINCT = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
             "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def distinct_colors(n: int) -> list[str]:
    """``n`` colours of which any two neighbours are clearly different (tab10, repeating after
    ten): for a few curves of an ordered parameter whose legend gives the values.

    Parameters
    ----------
    n : int

    Returns
    -------
    list of str
    """
    return [_DISTINCT[i % len(_DISTINCT)] for i in range(n)]


def method_name(method: str, problem: Any = None) -> str:
    """The readable name of ``method`` ("gd" -> "exact GD"; minibatch or online -> "exact SGD").

    Parameters
    ----------
    method : str
        A trajectory's method ("gd", "flow", "population", "network").
    problem : Problem, optional
        When given, the exact GD map with minibatches or fresh samples is called SGD.

    Returns
    -------
    str
    """
    if method == "gd" and problem is not None and (
            getattr(problem, "batch_size", None) is not None or getattr(problem, "online", False)):
        return "exact SGD"
    return METHOD_NAMES.get(method, method)


def options_suffix(p: Any) -> str:
    """'' for the paper's plain GD, else a new line naming the training options and target.

    Parameters
    ----------
    p : Problem

    Returns
    -------
    str
    """
    extra = [f"{k}={v:g}" for k, v in options_in_use(p).items()]   # as the user set them
    if p.batch_size is not None:
        extra.append(f"batch_size={p.batch_size}")
    if p.online:
        extra.append("online")
    if p.target != "paper":
        extra.append(f"target {p.target}")
    return "\n" + ", ".join(extra) if extra else ""


def problem_line(p: Any, skip: Iterable[str] = (), P: str | None = None) -> str:
    """'D=100, P=550, N=500, α=1, ε=0.02, η0=1, conv. A, centered' without the fields in ``skip``
    (a non-iid init is named: 'init aligned:1:0.6').

    Parameters
    ----------
    p : Problem
    skip : iterable of str
        Fields not to show (the swept one of a sweep figure: it is not fixed).
    P : str, optional
        Replaces the text of the P field (e.g. "100 (+100 test)").

    Returns
    -------
    str
    """
    N = "∞" if not getattr(p, "finite_width", True) else str(p.N)
    fields = {"D": str(p.D), "P": str(p.P) if P is None else P, "N": N,
              "alpha": f"{p.alpha:g}", "eps": f"{p.eps:g}", "eta0": f"{p.eta0:g}"}
    sym = {"alpha": "α", "eps": "ε", "eta0": "η0"}
    parts = [f"{sym.get(k, k)}={v}" for k, v in fields.items() if k not in set(skip)]
    init = getattr(p, "init", "iid")
    if init != "iid" and "init" not in set(skip):      # the paper's init goes unsaid
        parts.append(f"init {init}")
    parts.append(f"conv. {p.convention}")
    parts.append("centered" if p.centered else "uncentered")
    return ", ".join(parts)


def figure_title(fig: Any, title: str, problem: Any, method: str, skip: Iterable[str] = (),
                 P: str | None = None) -> None:
    """Set 'TITLE; D=.., P=.., ..., seed S; exact GD' as ``fig``'s title (``method`` a method or
    a phrase); when that does not fit the figure's width, 'TITLE; exact GD' on the first line
    and the problem below (wrapped), so that no line is left with a word or two.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    title : str
    problem : Problem
    method : str
        A trajectory's method (named by :func:`method_name`) or a phrase.
    skip : iterable of str
        Problem fields not shown (:func:`problem_line`).
    P : str, optional
        Replaces the text of the P field.
    """
    run = f"{problem_line(problem, skip, P)}, seed {problem.seed}"
    name = method_name(method, problem)
    text = f"{title}; {run}; {name}"
    width = int(fig.get_figwidth() * 9)
    if len(text) > width:
        text = f"{title}; {name}\n" + textwrap.fill(run, width)
    fig.suptitle(text + options_suffix(problem))


def log_time(t: Any) -> np.ndarray:
    """Times for a log axis: t = 0 is drawn at t = 1/2 (so the initial value is visible).

    Parameters
    ----------
    t : array_like

    Returns
    -------
    numpy.ndarray
    """
    t = np.asarray(t, dtype=float)
    return np.where(t > 0, t, 0.5)


def log_axes(ax: Any, xlabel: str, ylabel: str, title: str | None = None,
             logy: bool = True) -> None:
    """Log-log axes (log x only when ``logy`` is False) with labels, a light grid and a title.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    xlabel, ylabel : str
    title : str, optional
    logy : bool
    """
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if title is not None:
        ax.set_title(title)


def twin_below(ax: Any, ylabel: str, color: str) -> Any:
    """A right-hand y axis sharing ``ax``'s x axis, drawn *below* ``ax``.

    A plain ``twinx`` is drawn on top of ``ax`` and its curves strike through ``ax``'s legend;
    drawn below (``ax``'s background made transparent so they stay visible) they never do.
    Give the twin's curves a legend entry on ``ax`` (e.g. ``ax.plot([], [], label=...)``).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    ylabel : str
    color : str
        Colour of the twin's label and ticks (and, by convention, of its curves).

    Returns
    -------
    matplotlib.axes.Axes
    """
    twin = ax.twinx()
    twin.set_zorder(ax.get_zorder() - 1)
    ax.patch.set_visible(False)
    twin.set_ylabel(ylabel, color=color)
    twin.tick_params(axis="y", colors=color)
    return twin


def legend_below(fig: Any, ax: Any, where: str = "center", ncol: int = 2,
                 fontsize: float = 8, handles: Any = None, labels: Any = None,
                 **kw: Any) -> Any:
    """``ax``'s legend below the figure's axes, outside them: it overlaps no curve.

    Needs a Figure with constrained layout (as made by :func:`lazyrich_theory.plotting.mpl.subplots`
    with ``layout="constrained"``), which makes room for it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes
        Whose labelled artists the legend lists.
    where : {"left", "center", "right"}
        Below which part of the figure (the left panel, the middle, the right panel).
    ncol : int
    fontsize : float
    handles : list of artists, optional
        Instead of ``ax``'s labelled artists.
    labels : list of str, optional
        With ``handles``: their entries (default: each handle's label).
    **kw
        Passed to ``Figure.legend`` (e.g. ``handler_map``).

    Returns
    -------
    matplotlib.legend.Legend or None
        None when there is nothing to list.
    """
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if not handles:
        return None
    return fig.legend(handles, labels, loc=f"outside lower {where}", ncol=ncol,
                      fontsize=fontsize, **kw)


def cut_round_off(ax: Any, values: Iterable[Any], floor: float = ROUND_OFF_FLOOR) -> bool:
    """Cut a log loss axis at ``floor`` when some of ``values`` go below it (round-off floors
    of runs that fit exactly would otherwise stretch the axis to 1e-32).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    values : iterable of array_like
        The curves drawn on ``ax``.
    floor : float

    Returns
    -------
    bool
        True when the axis was cut (say so in the panel's title).
    """
    positive = [a[np.isfinite(a) & (a > 0)] for a in (np.asarray(v, float) for v in values)]
    positive = [a for a in positive if a.size]
    if not positive or min(a.min() for a in positive) >= floor:
        return False
    top = max(a.max() for a in positive)
    margin = 10.0 ** (0.05 * np.log10(max(top / floor, 10.0)))   # matplotlib's 5 % (in decades)
    ax.set_ylim(floor, top * margin)
    return True
