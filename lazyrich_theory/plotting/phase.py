"""Pictures of phase sweeps (matplotlib object API; PNG files).

* two or more swept parameters: a heat map of the seed-mean paper grokking time over the first
  two (first = y axis, second = x axis, as in the paper's Fig. 3(e): alpha up, eps across),
  with the measured grokking boundary (solid black: the test loss reaches the threshold within
  T in half the seeds) and the theory's boundary overlaid: dashed blue where the predicted
  N = inf rich-transition time equals the linearised model's train-fit time
  (``predicted_time_ratio`` = 1, no free constant), dotted blue the same ratio at the level
  that best separates the measured cells (a fit to the measured boundary with one free
  constant, printed in the legend next to the measured boundary, not a prediction), and, on
  an alpha x eps sweep that has ``offline_test_time``, the offline theory's unfitted boundary
  (dash-dotted green: the spectral closure at N = inf predicts the population loss under the
  threshold within T in half the seeds; drawn beside the measured one as it is,
  docs/offline_theory.md §12.3); one panel per value of a third parameter (further ones at
  their first value);
* one swept parameter: curves of the measured and predicted grokking times against it, the
  seed spread as a band (mean +- std) and the single seeds as dots.
"""

from __future__ import annotations

import math
import os
import textwrap
from typing import TYPE_CHECKING

import numpy as np

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.style import method_name
from lazyrich_theory.spec.problem import OPTION_FIELDS

if TYPE_CHECKING:  # pragma: no cover
    from lazyrich_theory.experiments.sweep import PhaseResult

__all__ = ["plot_phase"]

_LABELS = {"alpha": "α (laziness)", "eps": "ε (initial kernel alignment)", "D": "D", "P": "P",
           "N": "N", "eta0": "η0", "test_size": "test size", "convention": "convention",
           "centered": "centered"}
MAX_PANELS = 12
#: The offline theory's variable of an alpha x eps sweep (``experiments.sweep.offline``).
OFFLINE_VARIABLE = "offline_test_time"
_OFFLINE_COLOR = "tab:green"


def _numeric(values) -> np.ndarray | None:
    try:
        a = np.asarray([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        return None
    return a if np.all(np.isfinite(a)) else None


def _edges(c: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around centres c (midpoints; geometric for log axes)."""
    if c.size == 1:
        return np.array([c[0] * 0.9, c[0] * 1.1]) if log else np.array([c[0] - 0.5, c[0] + 0.5])
    x = np.log(c) if log else c
    mid = 0.5 * (x[1:] + x[:-1])
    e = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _is_log(res: "PhaseResult", dim: str, c: np.ndarray | None) -> bool:
    for ax in res.config.get("axes", []):
        if ax.get("name") == dim:
            if ax.get("spacing") == "log":
                return True
    return False


_SYMBOLS = {"alpha": "α", "eps": "ε", "eta0": "η0"}


def _value(v) -> str:
    """A problem field's value as the other figures write it (20.0 -> '20', inf -> '∞')."""
    if isinstance(v, float):
        return "∞" if math.isinf(v) else f"{v:g}"
    return str(v)


def _seeds(res: "PhaseResult") -> int:
    return len(res.coords["seed"])


def _title(res: "PhaseResult", width: int = 95, name: str | None = None) -> str:
    """'[NAME; ]D=100, P=550, N=500, η0=20, conv. A, centered; gradient flow, T=..,
    threshold ..; 1 seed' without the swept fields; when longer than ``width``, broken
    between its parts: the name and the run's settings, then the problem (or without a name:
    the problem, then the run's settings), each wrapped to ``width``."""
    cfg = res.config
    b = cfg.get("base_problem", {})
    swept = set(res.dims)
    parts = [f"{_SYMBOLS.get(k, k)}={_value(b[k])}" for k in ("D", "P", "N", "alpha", "eps",
                                                              "eta0")
             if k in b and k not in swept]
    if "convention" in b and "convention" not in swept:
        parts.append(f"conv. {b['convention']}")
    n_seed = _seeds(res)
    extra = (f"{method_name(str(cfg.get('method', '')))}, T={cfg.get('steps')}, "
             f"threshold {cfg.get('threshold')}")
    cen = "centered" if b.get("centered", True) else "uncentered"
    opts = [f"{k}={_value(b[k])}" for k in (*OPTION_FIELDS, "batch_size", "online", "target")
            if k in b and k not in swept]
    problem = f"{', '.join(parts + opts)}, {cen}"
    run = f"{extra}; {n_seed} seed{'s' if n_seed > 1 else ''}"
    text = f"{name}; {problem}; {run}" if name else f"{problem}; {run}"
    if len(text) <= width:
        return text
    lines = ([f"{name}; {run}"], [problem]) if name else ([f"{problem};"], [run])
    return "\n".join(line for part in lines for line in textwrap.wrap(part[0], width))


def _uneven(c: np.ndarray | None, log: bool) -> bool:
    """True for an explicit list whose spacing is far from uniform (in log or linear units):
    such an axis is drawn with one equal-width cell per value."""
    if c is None or c.size < 3 or log:
        return False
    gaps = np.diff(c)
    if np.any(gaps <= 0):
        return True
    return float(gaps.max() / gaps.min()) > 3.0


def plot_phase(res: "PhaseResult", path: str | os.PathLike | None = None, dpi: int = 130,
               metric: str = "paper_grokking_time", title: str | None = None):
    """Draw ``res`` (heat map or curves, see the module doc).

    Parameters
    ----------
    res : PhaseResult
    path : path-like, optional
        Save the figure there (PNG) when given.
    dpi : int
    metric : str
        The variable of the heat map (its seed mean).
    title : str, optional
        A name put before the run's description in the figure title (e.g. "Fig. 3(e)").

    Returns
    -------
    matplotlib.figure.Figure
        Closed after saving when ``path`` is given.
    """
    plt = mpl
    gd = [d for d in res.grid_dims if len(res.coords[d]) > 1] or list(res.grid_dims)
    if len(gd) >= 2:
        fig = _heatmaps(plt, res, gd, metric, title)
    elif len(gd) == 1:
        fig = _curves(plt, res, gd[0], metric, title)
    else:
        fig = _curves(plt, res, "seed", metric, title)
    if path is not None:
        mpl.save(fig, path, dpi)
        mpl.close(fig)
    return fig


def _slice(res: "PhaseResult", arr: np.ndarray, keep: list[str], fixed: dict[str, int]):
    """arr over grid dims (no seed) reduced to the dims in ``keep`` at the indices ``fixed``."""
    grid = list(res.grid_dims)
    idx = tuple(slice(None) if d in keep else fixed.get(d, 0) for d in grid)
    out = arr[idx]
    kept = [d for d in grid if d in keep]
    if kept != keep:
        out = out.T
    return out


def _grid_axis(res: "PhaseResult", dim: str):
    """(cell centres, log spacing, labels or None): an axis of numeric values is drawn at
    its values, an uneven list or non-numbers as equal-width cells labelled by their values."""
    c = _numeric(res.coords[dim])
    log = _is_log(res, dim, c)
    if _uneven(c, log):
        c = None
    if c is None:
        return np.arange(len(res.coords[dim]), dtype=float), log, [str(v) for v in res.coords[dim]]
    return c, log, None


def _seed_phrase(res: "PhaseResult", what: str) -> str:
    """'' for one seed, else ' (in WHAT of the n seeds)'."""
    n = _seeds(res)
    return "" if n == 1 else f" (in {what} of the {n} seeds)"


def _measured(ax, res: "PhaseResult", xv, yv, R, Q, c_fit) -> list:
    """The measured boundary (R: fraction of seeds reaching the threshold) and the theory's
    time ratio Q at the level fitted to it (``c_fit``: a fit, not a prediction); returns
    their legend handles."""
    handles = []
    if R is not None and np.nanmin(R) < 0.5 < np.nanmax(R):
        ax.contour(xv, yv, R, levels=[0.5], colors="k", linewidths=2.0)
        handles.append(mpl.Line2D([], [], color="k", lw=2.0,
                                  label="measured boundary: test loss reaches "
                                        f"{res.config.get('threshold')} within T"
                                        + _seed_phrase(res, "half")))
    logQ = _log_ratio(Q)
    if (logQ is not None and c_fit is not None
            and logQ.min() < math.log(c_fit) < logQ.max()):
        ax.contour(xv, yv, logQ, levels=[math.log(c_fit)], colors="tab:blue",
                   linewidths=1.4, linestyles=":")
        handles.append(mpl.Line2D([], [], color="tab:blue", lw=1.4, ls=":",
                                  label="fitted to the measured boundary (one free constant, "
                                        f"not a prediction):\nt_rich = {c_fit:.3g} t_lazy fit"))
    return handles


def _log_ratio(Q) -> np.ndarray | None:
    """log of the time ratio, None when it is missing or not finite and positive everywhere."""
    if Q is None:
        return None
    logQ = np.log(np.where(Q > 0, Q, np.nan))
    return logQ if np.all(np.isfinite(logQ)) else None


def _predicted(ax, xv, yv, Q) -> list:
    """The theory's unfitted boundary (Q: the predicted time ratio, boundary at 1) as a
    labelled line, or a text-only entry when it does not cross the grid (no line that is not
    drawn)."""
    logQ = _log_ratio(Q)
    if logQ is None:
        return []
    if logQ.min() < 0.0 < logQ.max():
        ax.contour(xv, yv, logQ, levels=[0.0], colors="tab:blue", linewidths=2.0,
                   linestyles="--")
        return [mpl.Line2D([], [], color="tab:blue", lw=2.0, ls="--",
                           label="predicted boundary (unfitted): t_rich = t_lazy fit")]
    where = "everywhere" if logQ.max() < 0 else "nowhere"
    return [mpl.Line2D([], [], ls="none",
                       label="no predicted boundary on this grid (unfitted, t_rich vs t_lazy "
                             f"fit):\ngrokking predicted {where}")]


#: How the legend names each offline method's boundary.
_HOW = {"dmft": "DMFT", "interpolant": "interpolant floor"}


def _offline_boundary(ax, res: "PhaseResult", xv, yv, F) -> list:
    """The offline theory's boundary (F: fraction of seeds whose predicted threshold time is
    within T) as a labelled line, or a text-only entry when it does not cross the grid."""
    if F is None:
        return []
    what = f"offline theory (unfitted): population loss reaches {res.config.get('threshold')}"
    how = _HOW.get((res.offline or {}).get("method"), "spectral closure")
    if np.nanmin(F) < 0.5 < np.nanmax(F):
        ax.contour(xv, yv, F, levels=[0.5], colors=_OFFLINE_COLOR, linewidths=2.0,
                   linestyles="-.")
        return [mpl.Line2D([], [], color=_OFFLINE_COLOR, lw=2.0, ls="-.",
                           label=f"{what}\nwithin T{_seed_phrase(res, 'half')} "
                                 f"({how}, N = ∞)")]
    where = "everywhere" if np.nanmin(F) >= 0.5 else "nowhere"
    return [mpl.Line2D([], [], ls="none",
                       label=f"{what}\nwithin T {where} on this grid ({how}, N = ∞)")]


#: Colour of the cells whose test loss does not reach the threshold in most seeds.
_NEVER = "0.72"


def _never_cells(ax, res: "PhaseResult", xe, ye, R) -> list:
    """Grey over the cells where fewer than half the seeds reach the threshold (their metric is
    0 by definition, which the colour scale would show like "no delay")."""
    if R is None or not np.any(R < 0.5):
        return []
    ax.pcolormesh(xe, ye, np.ma.masked_where(~(R < 0.5), np.ones_like(R)),
                  cmap=mpl.ListedColormap([_NEVER]), shading="flat")
    return [mpl.Patch(color=_NEVER, label=f"test loss never under {res.config.get('threshold')}"
                                          " within T" + _seed_phrase(res, "more than half"))]


def _heatmaps(plt, res: "PhaseResult", gd: list[str], metric: str, name: str | None):
    ydim, xdim = gd[0], gd[1]
    rest = gd[2:]
    panels: list[dict[str, int]] = [{}]
    note = ""
    if rest:
        third = rest[0]
        panels = [{third: i} for i in range(len(res.coords[third]))][:MAX_PANELS]
        if len(rest) > 1 or len(res.coords[third]) > MAX_PANELS:
            note = " (further parameters at their first value)"
    n = len(panels)
    ncol = min(n, 3)
    nrow = math.ceil(n / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(6.4 * ncol, 6.0 * nrow), squeeze=False,
                            constrained_layout=True)
    mean = res.mean(metric)
    reached_frac = None
    if "test_time" in res.data:
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(np.asarray(res.data["test_time"], float))
            reached_frac = ok.mean(axis=res.dims.index("seed"))
    ratio = res.mean("predicted_time_ratio") if "predicted_time_ratio" in res.data else None
    offline = None
    if OFFLINE_VARIABLE in res.data:
        offline = np.isfinite(np.asarray(res.data[OFFLINE_VARIABLE], float)).mean(
            axis=res.dims.index("seed"))
    c_fit = best_ratio_level(res) if ratio is not None else None
    vmax = np.nanmax(mean) if np.any(np.isfinite(mean)) else 1.0
    (xv, xlog, xticks), (yv, ylog, yticks) = _grid_axis(res, xdim), _grid_axis(res, ydim)
    xe, ye = _edges(xv, xlog), _edges(yv, ylog)
    grid = xv.size > 1 and yv.size > 1
    mesh = None
    for k, fixed in enumerate(panels):
        ax = axs[k // ncol][k % ncol]
        Z = _slice(res, mean, [ydim, xdim], fixed)
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(Z), cmap="OrRd", vmin=0.0,
                             vmax=vmax if vmax > 0 else 1.0, shading="flat")
        R = None if reached_frac is None else _slice(res, reached_frac, [ydim, xdim], fixed)
        handles = _never_cells(ax, res, xe, ye, R)
        if grid:      # measured (and the fit to it) first, then the unfitted predictions
            Q = None if ratio is None else _slice(res, ratio, [ydim, xdim], fixed)
            handles += _measured(ax, res, xv, yv, R, Q, c_fit)
            handles += _predicted(ax, xv, yv, Q)
            F = None if offline is None else _slice(res, offline, [ydim, xdim], fixed)
            handles += _offline_boundary(ax, res, xv, yv, F)
        if xlog:
            ax.set_xscale("log")
        if ylog:
            ax.set_yscale("log")
        if xticks is not None:
            ax.set_xticks(xv, xticks)
        if yticks is not None:
            ax.set_yticks(yv, yticks)
        ax.set_xlabel(_LABELS.get(xdim, xdim))
        ax.set_ylabel(_LABELS.get(ydim, ydim))
        if fixed:
            (d, i), = fixed.items()
            ax.set_title(f"{d} = {res.coords[d][i]}")
        if handles:
            ax.legend(handles=handles, fontsize=7.5, loc="upper center", handlelength=3.6,
                      bbox_to_anchor=(0.5, -0.13), framealpha=0.9)   # long: dash-dots show
    for k in range(n, nrow * ncol):
        axs[k // ncol][k % ncol].set_visible(False)
    if mesh is not None:
        n_seed = _seeds(res)
        seeds = "1 seed" if n_seed == 1 else f"mean of {n_seed} seeds"
        fig.colorbar(mesh, ax=axs, shrink=0.9,
                     label=f"amount of grokking (paper metric, GD steps; {seeds})")
    fig.suptitle(_title(res, 83 * ncol, name) + note, fontsize=9.5)
    return fig


def best_ratio_level(res: "PhaseResult") -> float | None:
    """The level c of predicted_time_ratio that best separates the cells whose test loss
    reaches the threshold (ratio < c) from the others: the geometric midpoint of the gap
    when the two sets are separable, else the level with the fewest misclassified cells.
    None when every cell (or none) reaches the threshold.  A fitted constant, reported as such."""
    if "predicted_time_ratio" not in res.data or "test_time" not in res.data:
        return None
    q = np.asarray(res.data["predicted_time_ratio"], float).ravel()
    ok = np.isfinite(np.asarray(res.data["test_time"], float).ravel())
    good = np.isfinite(q) & (q > 0)
    q, ok = q[good], ok[good]
    if q.size == 0 or ok.all() or not ok.any():
        return None
    levels = np.unique(q)
    cands = np.sqrt(levels[1:] * levels[:-1]) if levels.size > 1 else levels
    errs = [np.sum((q < c) != ok) for c in cands]
    return float(cands[int(np.argmin(errs))])


def _curves(plt, res: "PhaseResult", dim: str, metric: str, name: str | None):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.6), constrained_layout=True)
    c = _numeric(res.coords[dim])
    x = c if c is not None else np.arange(len(res.coords[dim]), dtype=float)
    log = _is_log(res, dim, c)
    seed_ax = res.dims.index("seed")

    def band(ax, name, color, label, style="-"):
        if name not in res.data:
            return
        a = np.asarray(res.data[name], float)
        if dim == "seed":
            y = a.reshape(-1)
            ax.plot(x, y, "o" + style, color=color, label=label)
            return
        m = _flat(res, res.mean(name), dim)
        s = _flat(res, res.std(name), dim)
        many = _seeds(res) > 1
        ax.plot(x, m, style, color=color, lw=2.0,
                label=label + (f" (mean of {_seeds(res)} seeds)" if many else ""))
        if many:
            ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, lw=0)
            per = np.moveaxis(a, seed_ax, -1)
            per = _flat(res, per, dim, extra=1)
            for j in range(per.shape[-1]):
                ax.plot(x, per[:, j], ".", color=color, ms=4, alpha=0.6)

    band(ax1, metric, "tab:red", "grokking time (paper metric)")
    band(ax1, "relative_grokking_time", "tab:orange", "grokking time (relative threshold)")
    band(ax1, "predicted_grokking_delay", "tab:blue", "predicted delay", "--")
    band(ax2, "train_time", "tab:blue", f"train loss < {res.config.get('threshold')}")
    band(ax2, "test_time", "tab:orange", f"test loss < {res.config.get('threshold')}")
    band(ax2, "predicted_rich_time_population", "k", "predicted rich transition", "--")
    band(ax2, "predicted_lazy_train_time", "0.5", "predicted lazy train fit", ":")
    for ax, yl in ((ax1, "GD steps"), (ax2, "first time under threshold (GD steps)")):
        if log:
            ax.set_xscale("log")
        if c is None:
            ax.set_xticks(x, [str(v) for v in res.coords[dim]])
        ax.set_xlabel(_LABELS.get(dim, dim))
        ax.set_ylabel(yl)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    ax2.set_yscale("log")
    fig.suptitle(_title(res, name=name), fontsize=9.5)
    return fig


def _flat(res: "PhaseResult", arr: np.ndarray, dim: str, extra: int = 0) -> np.ndarray:
    """Reduce a grid array (grid dims [+ extra trailing axes]) to a 1-D curve along ``dim``,
    other grid dims at their first index."""
    grid = list(res.grid_dims)
    idx = tuple(slice(None) if d == dim else 0 for d in grid) + (slice(None),) * extra
    return np.asarray(arr[idx], dtype=float)
