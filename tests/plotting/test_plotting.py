"""The plotting layer on small fake data: every plot function returns a Figure with the expected
panels and legend entries, draws into the caller's axes when asked, never covers a curve with
a legend (legends outside the panels), and never touches matplotlib's global state."""

from __future__ import annotations

import io
import sys

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from lazyrich_theory.experiments.sweep import PhaseResult
from lazyrich_theory.plotting import figures as pf
from lazyrich_theory.plotting.mpl import subplots
from lazyrich_theory.plotting.phase import plot_phase
from lazyrich_theory.plotting.style import method_name, problem_line
from lazyrich_theory.plotting.trajectory import (
    ALIGNMENT_LABEL,
    OFFLINE_COLUMN,
    OFFLINE_LABEL,
    plot_trajectory,
)
from lazyrich_theory.spec.problem import Problem

T = np.array([0.0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
PROBLEM = Problem(D=8, P=20, N=4, alpha=1.0, eps=0.25, eta0=0.5, convention="A", centered=False)


class FakeTrajectory:
    """What the plots read of a Trajectory (duck typing: the plotting layer imports none)."""

    def __init__(self, method="gd", alignment=True, k0=0.4, problem=PROBLEM, scale=1.0):
        decay = np.exp(-T / 300.0)
        self.problem, self.method, self.t = problem, method, T
        self.train_loss = scale * 0.5 * decay**3
        self.test_loss = scale * (0.6 * decay + 1e-3)
        self.population_loss = scale * (0.7 * decay + 1e-3)
        self.variance = 0.2 * decay**2
        self.misalignment = 0.4 * decay
        self.linear_power = 0.1 * decay
        self.extra = {"linearized_train_loss": 0.5 * decay, "linearized_test_loss": 0.6 + 0 * T}
        if alignment:
            self.extra["kernel_alignment"] = 0.01 + 0.005 * (1 - decay)
        self.info = {"summary": {"kernel_regression_test_loss": k0}}

    def __getitem__(self, name):
        return self.extra[name] if name in self.extra else getattr(self, name)


@pytest.fixture(autouse=True)
def backend_and_pyplot_untouched():
    """No plot changes the backend or registers a figure with pyplot."""
    backend = matplotlib.get_backend()
    pyplot = sys.modules.get("matplotlib.pyplot")
    nums = pyplot.get_fignums() if pyplot else []
    yield
    assert matplotlib.get_backend() == backend
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert (pyplot.get_fignums() if pyplot else []) == nums


def _render(fig: Figure) -> None:
    fig.savefig(io.BytesIO(), format="png", dpi=50)


def _legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def _legends_clear_of_axes(fig: Figure) -> None:
    """Every legend lies outside every (visible) panel: it covers no curve."""
    _render(fig)
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_visible():
                assert not box.overlaps(ax.get_window_extent(renderer)), leg


def _labelled_lines(ax) -> set[str]:
    return {ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")}


# ----------------------------------------------------------------------------- trajectory
def test_plot_trajectory_panels_legends_and_alignment_entry():
    fig = plot_trajectory(FakeTrajectory())
    assert isinstance(fig, Figure)
    losses, decomposition, twin = fig.axes          # the alignment's right-hand axis last
    assert twin.get_zorder() < losses.get_zorder()  # drawn below: strikes through no legend
    texts = _legend_texts(fig)
    assert ALIGNMENT_LABEL in texts and "K0 regression (0.400)" in texts
    # every labelled curve of a panel is in the legend, and the legend lists nothing else
    assert set(texts) == _labelled_lines(losses) | _labelled_lines(decomposition)
    # one name for the population loss in both panels
    assert texts.count("population loss (exact)") == 2
    _legends_clear_of_axes(fig)
    title = fig.get_suptitle()
    assert title.startswith("exact GD — ") and "gd:" not in title


def test_offline_theory_curve_joins_the_loss_panel_and_its_legend():
    traj = FakeTrajectory()
    traj.extra[OFFLINE_COLUMN] = 0.65 * np.exp(-T / 200.0) + 1e-3
    fig = plot_trajectory(traj)
    losses = fig.axes[0]
    assert OFFLINE_LABEL in _labelled_lines(losses)
    assert OFFLINE_LABEL not in _labelled_lines(fig.axes[1])
    texts = _legend_texts(fig)
    assert texts.count(OFFLINE_LABEL) == 1
    assert set(texts) == _labelled_lines(losses) | _labelled_lines(fig.axes[1])
    _legends_clear_of_axes(fig)
    assert OFFLINE_LABEL not in _legend_texts(plot_trajectory(FakeTrajectory()))


@pytest.mark.parametrize("method, name", [("flow", "gradient flow"), ("gd", "exact GD"),
                                          ("network", "numpy network")])
def test_titles_name_the_method(method, name):
    assert plot_trajectory(FakeTrajectory(method=method)).get_suptitle().startswith(name)


def test_plot_trajectory_into_the_callers_axes(tmp_path):
    user_fig, ax = subplots(1, 1)
    user_fig.suptitle("mine")
    out = plot_trajectory(FakeTrajectory(), ax=ax)
    assert out is user_fig and user_fig.get_suptitle() == "mine"
    assert len(user_fig.axes) == 2                    # ax and the alignment's twin
    assert ALIGNMENT_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    # a pair of axes receives both panels; the figure still saves on any backend
    user_fig2, pair = subplots(1, 2)
    assert plot_trajectory(FakeTrajectory(alignment=False), tmp_path / "p.png", ax=pair) \
        is user_fig2
    assert pair[1].get_legend() is not None and (tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="one Axes or a pair"):
        plot_trajectory(FakeTrajectory(), ax=[ax, ax, ax])


def test_plot_trajectory_overlay_joins_the_legend():
    fig = plot_trajectory(FakeTrajectory(alignment=False),
                          overlay=lambda ax: ax.plot(T + 0.5, T + 1, "o", label="other run"))
    assert "other run" in _legend_texts(fig) and ALIGNMENT_LABEL not in _legend_texts(fig)


# ----------------------------------------------------------------------------- figures
def _curves(n: int, key: str, values) -> list[dict]:
    return [{key: v, "t": T, "train": 0.5 * np.exp(-T / (50 * (i + 1))),
             "test": 0.6 * np.exp(-T / (100 * (i + 1))) + 1e-3} for i, v in enumerate(values)][:n]


def test_network_check_and_trained_readouts():
    fig = pf.plot_network_check(FakeTrajectory(), FakeTrajectory(), network_steps=1000)
    texts = _legend_texts(fig)
    assert "numpy network train (first 1000 steps)" in texts and "numpy network test" in texts
    _legends_clear_of_axes(fig)
    fig4 = pf.plot_network_check(FakeTrajectory(), FakeTrajectory(), every=4, train=False)
    assert not any(t.startswith("numpy network train") for t in _legend_texts(fig4))
    fig12 = pf.plot_trained_readouts(FakeTrajectory(method="network"), FakeTrajectory())
    assert "fixed readouts (reduced) test" in _legend_texts(fig12)


def test_sweep_curves_title_omits_the_swept_value_and_cuts_round_off():
    runs = _curves(3, "value", (0.5, 1.0, 2.0))
    for r in runs:
        r["rich_time"] = 30.0
    runs[0]["train"] = np.maximum(runs[0]["train"] * 1e-40, 1e-32)   # round-off floor
    fig = pf.plot_sweep_curves(runs, param="alpha", problem=PROBLEM, method="flow",
                               title="α sweep", steps=1000)
    a1, a2 = fig.axes
    assert _legend_texts(fig) == ["α = 2^-1", "α = 2^0", "α = 2^1"]
    title = fig.get_suptitle()
    assert "α=" not in title and "ε=0.25" in title and "gradient flow" in title
    assert a1.get_ylim()[0] == pytest.approx(1e-8) and "cut" in a1.get_title()
    assert len([ln for ln in a2.get_lines() if ln.get_linestyle() == ":"]) == 3
    _legends_clear_of_axes(fig)


def test_variants_with_and_without_the_examples_panel():
    runs = _curves(2, "label", ("full batch", "online"))
    for r, online, batch in zip(runs, (False, True), (20, 20)):
        r.update(delay=100.0, reached=not online, online=online, batch=batch)
    fig = pf.plot_variants(runs, problem=PROBLEM, title="SGD", samples_axis=True)
    assert len(fig.axes) == 3
    assert _legend_texts(fig) == ["full batch: delay 100", "online: test never < 0.1"]
    assert "current batch" in fig.axes[0].get_ylabel()
    # the examples axis is steps x examples per step
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_xdata()[1:], T[1:] * 20)
    _legends_clear_of_axes(fig)
    for r in runs:
        r["online"] = False
    fig2 = pf.plot_variants(runs, problem=PROBLEM, title="options")
    assert len(fig2.axes) == 2 and fig2.axes[0].get_ylabel() == "train loss"


def test_eigenvector_labels_figure():
    runs = _curves(2, "k", (1, 7))
    for r in runs:
        r.update(lin_test=r["test"] * 1.01, network=FakeTrajectory())
    scan = {"k": np.array([1, 4, 7]), "final_test_loss": np.array([1e-3, 2e-3, 5e-3]),
            "linearized_final_test_loss": np.array([1e-3, 2e-3, 5e-3]),
            "kernel_regression_test_loss": np.array([1e-3, 2e-3, 5e-3]),
            "initial_test_loss": np.full(3, 1e-2)}
    problem = PROBLEM.replace(test_size=10)
    fig = pf.plot_eigenvector_labels(runs, scan, np.linspace(3, -0.1, 30), problem=problem,
                                     method="gd", steps=1000, network=True)
    a1, a2, twin = fig.axes
    assert twin.get_zorder() < a2.get_zorder()
    texts = _legend_texts(fig)
    for label in ("k = 1", "k = 7", "linearised model (test)", "numpy network (test)",
                  "eigenvalue (right axis)", "network test at t=1000"):
        assert label in texts
    assert "P=20 (+10 test)" in fig.get_suptitle()
    _legends_clear_of_axes(fig)


def test_interpolation_figure():
    runs = _curves(2, "s", (0.0, 0.5))
    for r in runs:
        r.update(lin_test=r["test"], alignment_test=0.1 + 0 * T, alignment_train=0.2 + 0 * T,
                 network=None)
    fig = pf.plot_interpolation(runs, problem=PROBLEM, method="gd", network=False)
    texts = _legend_texts(fig)
    assert "s = 0" in texts and "s = 0.5" in texts and "numpy network (test)" not in texts
    assert len(fig.axes) == 2
    _legends_clear_of_axes(fig)


# ----------------------------------------------------------------------------- phase
def _phase(reached: np.ndarray, ratio: np.ndarray) -> PhaseResult:
    shape = reached.shape + (1,)
    grok = np.where(reached, 50.0, 0.0).reshape(shape)
    data = {"paper_grokking_time": grok,
            "test_time": np.where(reached, 10.0, np.inf).reshape(shape),
            "predicted_time_ratio": ratio.reshape(shape)}
    coords = {"alpha": np.array([0.5, 1.0, 2.0]), "eps": np.array([0.1, 0.2, 0.3]),
              "seed": np.array([0])}
    config = {"base_problem": PROBLEM.to_dict(), "method": "flow", "steps": 100,
              "threshold": 0.1, "axes": []}
    return PhaseResult(("alpha", "eps", "seed"), coords, data, config)


def test_phase_heat_map_marks_never_reached_cells_and_draws_every_legend_line():
    reached = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
    fig = plot_phase(_phase(reached, np.full((3, 3), 0.5)))     # ratio < 1 everywhere
    texts = _legend_texts(fig)
    assert any(t.startswith("test loss never under 0.1") for t in texts)
    assert any(t.startswith("measured boundary") for t in texts)
    # no crossing of the predicted boundary on this grid: said in words, with no line handle
    leg = fig.axes[0].get_legend()
    entry = [h for h, t in zip(leg.legend_handles, leg.get_texts())
             if t.get_text().startswith("no predicted boundary")]
    assert len(entry) == 1 and entry[0].get_linestyle() in ("None", "none", "")
    _legends_clear_of_axes(fig)


@pytest.mark.parametrize("offline, drawn", [
    (np.array([[1, 1, 1], [1, 1, 1], [1, 1, 0]], dtype=bool), True),
    (np.ones((3, 3), dtype=bool), False),
])
def test_phase_heat_map_draws_the_offline_theory_boundary(offline, drawn):
    reached = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
    res = _phase(reached, np.full((3, 3), 0.5))
    res.data["offline_test_time"] = np.where(offline, 5.0, np.inf).reshape(3, 3, 1)
    fig = plot_phase(res)
    leg = fig.axes[0].get_legend()
    entry = [(h, t.get_text()) for h, t in zip(leg.legend_handles, leg.get_texts())
             if t.get_text().startswith("offline theory (unfitted)")]
    assert len(entry) == 1
    handle, text = entry[0]
    assert ("everywhere on this grid" in text) is not drawn
    assert (handle.get_linestyle() not in ("None", "none", "")) is drawn
    _legends_clear_of_axes(fig)
    assert not any(t.startswith("offline theory") for t in
                   _legend_texts(plot_phase(_phase(reached, np.full((3, 3), 0.5)))))


# ----------------------------------------------------------------------------- labels
def test_problem_line_and_method_names():
    line = problem_line(PROBLEM, skip=("alpha",))
    assert "α=" not in line and line.startswith("D=8, P=20, N=4, ε=0.25")
    assert method_name("gd", PROBLEM.replace(batch_size=5)) == "exact SGD"
    assert method_name("flow") == "gradient flow"
