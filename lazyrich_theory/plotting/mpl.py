"""Matplotlib through its object API only: figures that never touch pyplot's global state.

Library code must not switch the user's backend (``matplotlib.use``) or register figures with
pyplot (they would pile up in a notebook and in long sweeps).  A :class:`~matplotlib.figure.Figure`
made here saves to a file with ``fig.savefig(path)`` on any backend, and shows in Jupyter.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = ["subplots", "close", "get_cmap", "save", "Line2D", "Patch", "ListedColormap",
           "Figure", "HandlerTuple"]

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


def save(fig: Figure, path: str | os.PathLike, dpi: float) -> None:
    """``fig.savefig(path, dpi=dpi)``, the same pixels, with one draw instead of two.

    With a layout engine, ``savefig`` draws the whole figure once (rendering disabled) to run
    the layout, then again to render.  Here the engine runs alone at the saving resolution (as
    it would inside that first draw) and the figure is then rendered without an engine, which
    is what ``savefig`` does for its second draw; the engine and resolution are restored
    afterwards (tests/plotting compare the files pixel for pixel).
    """
    engine = fig.get_layout_engine()
    if engine is None or not fig.axes:
        fig.savefig(os.fspath(path), dpi=dpi)
        return
    old_dpi = fig.dpi
    try:
        fig.dpi = dpi
        engine.execute(fig)
        with matplotlib.rc_context({"figure.autolayout": False,
                                    "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)          # no engine: savefig draws once
        fig.savefig(os.fspath(path), dpi=dpi)
    finally:
        fig.set_layout_engine(engine)
        fig.dpi = old_dpi
