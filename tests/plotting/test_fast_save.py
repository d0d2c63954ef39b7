"""``plotting.mpl.save`` (one draw instead of savefig's two with a layout engine) writes the
same pixels as ``Figure.savefig`` and leaves the figure as it was."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread
from test_plotting import FakeTrajectory  # tests/plotting is on sys.path (rootdir mode)

from lazyrich_theory.plotting import mpl
from lazyrich_theory.plotting.trajectory import plot_trajectory


def _same_png(a, b) -> bool:
    A, B = imread(a), imread(b)
    return A.shape == B.shape and np.array_equal(A, B)


def test_trajectory_png_is_the_savefig_png(tmp_path):
    for kw in ({}, {"alignment": False}, {"method": "population"}):
        tr = FakeTrajectory(**kw)
        fast = tmp_path / "fast.png"
        fig = plot_trajectory(tr, fast, dpi=90)
        ref = tmp_path / "ref.png"
        plot_trajectory(tr).savefig(ref, dpi=90)
        assert _same_png(fast, ref), kw
        # the figure keeps its engine and resolution (e.g. to be shown in a notebook)
        assert fig.get_layout_engine() is not None and fig.dpi == 100


def test_save_without_layout_engine_is_savefig(tmp_path):
    fig, ax = mpl.subplots(1, 1, figsize=(3, 2))
    ax.plot([1, 2, 3], [3, 1, 2], label="a")
    ax.legend()
    mpl.save(fig, tmp_path / "a.png", 80)
    fig.savefig(tmp_path / "b.png", dpi=80)
    assert _same_png(tmp_path / "a.png", tmp_path / "b.png")
