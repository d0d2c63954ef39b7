"""Matplotlib through its object API only: figures that never touch pyplot's global state.

Library code must not switch the user's backend (``matplotlib.use``) or register figures with
pyplot (they would pile up in a notebook and in long sweeps).  A :class:`~matplotlib.figure.Figure`
made here saves to a file with ``fig.savefig(path)`` on any backend, and shows in Jupyter.
"""

from __future__ import annotations

from typing import Any

from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = ["subplots", "close", "get_cmap", "Line2D", "Patch", "ListedColormap", "Figure"]

_FIGURE_KEYS = ("figsize", "dpi", "constrained_layout", "layout", "facecolor", "edgecolor")


def subplots(nrows: int = 1, ncols: int = 1, **kw: Any):
    """Like ``pyplot.subplots`` (same figure and grid keywords) but returns a detached Figure."""
    fig = Figure(**{k: kw.pop(k) for k in _FIGURE_KEYS if k in kw})
    return fig, fig.subplots(nrows, ncols, **kw)


def close(fig: Figure) -> None:
    """Kept for symmetry with pyplot: a detached Figure is freed when its last reference goes,
    so there is nothing to unregister (the figure stays drawable for the caller)."""
    del fig


def get_cmap(name: str):
    """The registered colormap ``name``."""
    return colormaps[name]
