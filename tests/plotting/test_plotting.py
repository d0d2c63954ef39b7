"""The plotting layer on small fake data: every plot function returns a Figure with the expected
panels and legend entries, draws into the caller's axes when asked, never covers a curve with
a legend (legends outside the panels), and never touches matplotlib's global state."""

from __future__ import annotations

import io
import sys

import matplotlib
import numpy as np
from matplotlib import colors as mpl_colors
import pytest
from matplotlib.figure import Figure

from lazyrich_theory.experiments.sweep import PhaseResult
from lazyrich_theory.plotting import figures as pf
from lazyrich_theory.plotting.init_structure import plot_init_rank
from lazyrich_theory.plotting import offline as offline_plots
from lazyrich_theory.plotting.offline import plot_kappa
from lazyrich_theory.plotting.mpl import subplots
from lazyrich_theory.plotting.phase import plot_phase
from lazyrich_theory.plotting.style import method_name, problem_line
from lazyrich_theory.plotting.trajectory import (
    ALIGNMENT_LABEL,
    LINEARISED_LABEL,
    OFFLINE_COLUMN,
    OFFLINE_LABEL,
    RUN_HEADING,
    THEORY_HEADING,
    _legend_groups,
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


def _listed(fig: Figure) -> set[str]:
    """The legends' entries: their texts without the loss panel's column headings and blanks."""
    return set(_legend_texts(fig)) - {RUN_HEADING, THEORY_HEADING, ""}


def _listed_lines(ax) -> set[str]:
    """What the legend should list for ``ax``'s labelled lines: the linearised model's two
    curves as one entry."""
    lines = _labelled_lines(ax)
    lin = {"linearised train loss", "linearised test loss"}
    return lines - lin | ({LINEARISED_LABEL} if lin <= lines else set())


# ----------------------------------------------------------------------------- trajectory
def test_plot_trajectory_panels_legends_and_alignment_entry():
    fig = plot_trajectory(FakeTrajectory())
    assert isinstance(fig, Figure)
    losses, decomposition, twin = fig.axes          # the alignment's right-hand axis last
    assert twin.get_zorder() < losses.get_zorder()  # drawn below: strikes through no legend
    texts = _legend_texts(fig)
    assert ALIGNMENT_LABEL in texts and "K0 regression (0.400)" in texts
    # every labelled curve of a panel is in the legend, and the legend lists nothing else
    assert _listed(fig) == _listed_lines(losses) | _listed_lines(decomposition)
    # one name for the population loss in both panels
    assert texts.count("population loss (exact)") == 2
    _legends_clear_of_axes(fig)
    title = fig.get_suptitle()
    assert title.startswith("exact GD — ") and "gd:" not in title
    p = FakeTrajectory().problem
    assert f"P={p.P} (κ={p.P / p.D:.3g})" in title        # the offline theory's kappa


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line


def test_both_panels_draw_the_population_loss_alike_and_mark_t0():
    fig = plot_trajectory(FakeTrajectory(alignment=False))
    losses, decomposition = fig.axes
    left, right = (_line(ax, "population loss (exact)") for ax in (losses, decomposition))
    for attr in ("get_linestyle", "get_color", "get_linewidth"):
        assert getattr(left, attr)() == getattr(right, attr)()
    # the thick orange line means the test-set loss, and only on the loss panel
    assert _line(losses, "test loss (test set)").get_color() == "tab:orange"
    assert "tab:orange" not in {ln.get_color() for ln in decomposition.get_lines()}
    initial = _line(losses, "initial test loss")
    assert initial.get_linewidth() >= 1.0 and (initial.get_alpha() or 1.0) >= 0.8
    assert initial.get_zorder() > _line(losses, "test loss (test set)").get_zorder()
    for ax in (losses, decomposition):
        assert "t = 0 drawn at 1/2" in ax.get_xlabel()


def test_the_networks_population_loss_is_not_called_exact():
    fig = plot_trajectory(FakeTrajectory(method="network", alignment=False))
    texts = _legend_texts(fig)
    assert "population loss (exact)" not in texts
    assert texts.count("population loss (closed form in the network's weights)") == 2
    traj = FakeTrajectory(method="network", alignment=False)
    traj.info["train_readouts"] = True
    assert plot_trajectory(traj).get_suptitle().startswith("numpy network with trained "
                                                           "readouts — ")


def test_offline_theory_curve_joins_the_loss_panel_and_its_legend():
    traj = FakeTrajectory()
    traj.extra[OFFLINE_COLUMN] = 0.65 * np.exp(-T / 200.0) + 1e-3
    fig = plot_trajectory(traj)
    losses = fig.axes[0]
    assert OFFLINE_LABEL in _labelled_lines(losses)
    assert OFFLINE_LABEL not in _labelled_lines(fig.axes[1])
    texts = _legend_texts(fig)
    assert texts.count(OFFLINE_LABEL) == 1
    assert _listed(fig) == _listed_lines(losses) | _listed_lines(fig.axes[1])
    _legends_clear_of_axes(fig)
    assert OFFLINE_LABEL not in _legend_texts(plot_trajectory(FakeTrajectory()))


def test_limit_loss_is_a_level_line_at_its_absolute_value():
    """summary predicted_limit_test_loss (relative; lazyrich asymptotic): a horizontal line at
    that fraction of the initial population loss, in the legend; none without it."""
    traj = FakeTrajectory()
    traj.info["summary"]["predicted_limit_test_loss"] = 0.25
    fig = plot_trajectory(traj)
    label = "τ → ∞: interpolant (0.25 × initial population loss)"
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == label]
    assert len(lines) == 1
    np.testing.assert_allclose(lines[0].get_ydata(), 0.25 * traj.population_loss[0])
    # another theory than the offline curve's: not its colour
    offline = FakeTrajectory()
    offline.extra[OFFLINE_COLUMN] = 0.5 * offline.population_loss
    offline.info["summary"]["predicted_limit_test_loss"] = 0.25
    ax = plot_trajectory(offline).axes[0]
    assert (_line(ax, label).get_color()
            != _line(ax, "offline theory (N = ∞, spectral)").get_color())
    assert _legend_texts(fig).count(label) == 1
    assert not any("interpolant" in t for t in _legend_texts(plot_trajectory(FakeTrajectory())))


def test_theory_trajectory_is_labelled_as_theory():
    """An offline theory's trajectory (lazyrich asymptotic) has no test set: its test loss is
    the population loss, drawn once and named as the theory's; the title names the theory."""
    fig = plot_trajectory(FakeTrajectory(method="offline-dmft"))
    texts = _legend_texts(fig)
    assert "test loss (test set)" not in texts and "population loss (exact)" not in texts
    assert "population loss (= test loss; theory)" in texts and "train loss (theory)" in texts
    assert fig.get_suptitle().startswith("offline theory (DMFT, N = ∞)")


def test_monte_carlo_draws_are_a_band_and_legends_do_not_collide():
    """A DMFT averaged over several Monte Carlo draws draws its population loss with a band of
    +-2 standard errors on both panels; the two legends below the panels do not overlap each
    other, even with the interpolant's long label."""
    tr = FakeTrajectory(method="offline-dmft", alignment=False, k0=None)   # as asymptotic's
    tr.extra = {"population_loss_mc_se": 0.05 * tr.population_loss}
    tr.info = {"dmft_draws": 3, "summary": {"predicted_limit_test_loss": 0.5}}
    fig = plot_trajectory(tr)
    band = "± 2 standard errors (3 Monte Carlo draws)"
    assert _legend_texts(fig).count(band) == 2
    for ax in fig.axes[:2]:
        fills = [c for c in ax.collections if c.get_label() == band]
        assert len(fills) == 1
    _legends_clear_of_axes(fig)
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    a, b = (leg.get_window_extent(renderer) for leg in fig.legends)
    assert not a.overlaps(b)
    assert "Monte Carlo" not in " ".join(_legend_texts(plot_trajectory(
        FakeTrajectory(method="offline-dmft"))))


def test_loss_legend_heads_the_run_and_the_theory_in_two_columns():
    """With theory curves beside the run's, the loss panel's legend has two columns, headed in
    bold: the run's curves on the left, the theories' (offline, linearised, K0, interpolant)
    on the right; the linearised model's train and test curves share one entry that shows
    both line styles.  Without theory curves there are no headings."""
    traj = FakeTrajectory()
    traj.extra[OFFLINE_COLUMN] = 0.65 * np.exp(-T / 200.0) + 1e-3
    traj.info["summary"]["predicted_limit_test_loss"] = 0.25
    fig = plot_trajectory(traj)
    leg = fig.legends[0]
    texts = [t.get_text() for t in leg.get_texts()]
    rows = len(texts) // 2
    run, theory = texts[:rows], texts[rows:]
    assert run[0] == RUN_HEADING and theory[0] == THEORY_HEADING
    assert all(leg.get_texts()[i].get_fontweight() == "bold" for i in (0, rows))
    assert {"train loss", "test loss (test set)", ALIGNMENT_LABEL} <= set(run)
    assert {OFFLINE_LABEL, LINEARISED_LABEL, "K0 regression (0.400)"} <= set(theory)
    assert texts.count(LINEARISED_LABEL) == 1
    _, groups = _legend_groups(fig.axes[0])
    (pair,) = [h for h, t in groups if t == LINEARISED_LABEL]
    assert [ln.get_linestyle() for ln in pair] == ["--", "-"]
    _legends_clear_of_axes(fig)
    bare = FakeTrajectory(k0=None)
    bare.extra = {}
    assert not {RUN_HEADING, THEORY_HEADING} & set(_legend_texts(plot_trajectory(bare)))
    # a theory's own trajectory (lazyrich asymptotic) is no run: no headings beside its limit
    asym = FakeTrajectory(method="offline-dmft")
    asym.info["summary"]["predicted_limit_test_loss"] = 0.25
    asym_texts = _legend_texts(plot_trajectory(asym))
    assert "τ → ∞: interpolant (0.25 × initial population loss)" in asym_texts
    assert not {RUN_HEADING, THEORY_HEADING} & set(asym_texts)
    # in the caller's axes: one legend inside, no headings, the merged linearised entry
    _, ax = subplots(1, 1)
    plot_trajectory(FakeTrajectory(), ax=ax)
    inside = [t.get_text() for t in ax.get_legend().get_texts()]
    assert LINEARISED_LABEL in inside and RUN_HEADING not in inside


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
    for r, t in zip(runs, (30.0, 60.0, 120.0)):
        r["rich_time"] = t
    runs[0]["train"] = np.maximum(runs[0]["train"] * 1e-40, 1e-32)   # round-off floor
    fig = pf.plot_sweep_curves(runs, param="alpha", problem=PROBLEM, method="flow",
                               title="α sweep", steps=1000)
    a1, a2 = fig.axes
    # powers of two as mathtext superscripts
    assert _legend_texts(fig) == ["α = $2^{-1}$", "α = $2^{0}$", "α = $2^{1}$"]
    title = fig.get_suptitle()
    assert "α=" not in title and "ε=0.25" in title and "gradient flow" in title
    assert a1.get_ylim()[0] == pytest.approx(1e-8) and "cut" in a1.get_title()
    dotted = [ln for ln in a2.get_lines() if ln.get_linestyle() == ":"]
    assert len(dotted) == 3 and "curve's colour" in a2.get_title()
    # the time lines are darker than their curves (the light end of viridis is avoided too)
    curves = [ln for ln in a2.get_lines() if ln.get_linestyle() == "-"]
    for c, d in zip(curves, dotted):
        assert sum(mpl_colors.to_rgb(d.get_color())) < sum(mpl_colors.to_rgb(c.get_color()))
        assert d.get_linewidth() >= 1.0
    assert mpl_colors.to_rgb(curves[-1].get_color()) != mpl_colors.to_rgb("#fde725")
    _legends_clear_of_axes(fig)


def test_sweep_curves_draw_a_shared_transition_time_once():
    runs = _curves(3, "value", (50, 120, 500))
    for r in runs:
        r["rich_time"] = 76.82160915690827
    fig = pf.plot_sweep_curves(runs, param="P", problem=PROBLEM, method="gd",
                               title="P sweep", steps=1000, log2_labels=False)
    a2 = fig.axes[1]
    dotted = [ln for ln in a2.get_lines() if ln.get_linestyle() == ":"]
    assert len(dotted) == 1
    texts = _legend_texts(fig)
    assert texts[:3] == ["P = 50", "P = 120", "P = 500"]
    assert texts[3] == "online-ODE transition time, the same for every P (t = 76.8)"
    # different times: one line each, no legend entry
    runs[1]["rich_time"] = 90.0
    fig2 = pf.plot_sweep_curves(runs, param="P", problem=PROBLEM, method="gd",
                                title="P sweep", steps=1000, log2_labels=False)
    assert len([ln for ln in fig2.axes[1].get_lines() if ln.get_linestyle() == ":"]) == 3
    assert len(_legend_texts(fig2)) == 3


def test_a_long_title_breaks_between_its_parts():
    problem = PROBLEM.replace(test_size=10)
    fig = pf.plot_eigenvector_labels(*_fig5_data(), problem=problem, method="gd",
                                     steps=1000, network=True)
    first, *rest = fig.get_suptitle().split("\n")
    assert first == "Fig. 5: eigenvector labels; exact GD"
    assert rest and all(len(line.split()) > 3 for line in rest)


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


def _fig5_data():
    runs = _curves(2, "k", (1, 7))
    for r in runs:
        r.update(lin_test=r["test"] * 1.01, network=FakeTrajectory())
    scan = {"k": np.array([1, 4, 7]), "final_test_loss": np.array([1e-3, 2e-3, 5e-3]),
            "linearized_final_test_loss": np.array([1e-3, 2e-3, 5e-3]),
            "kernel_regression_test_loss": np.array([1e-3, 2e-3, 5e-3]),
            "initial_test_loss": np.full(3, 1e-2)}
    return runs, scan, np.linspace(3, -0.1, 30)


def test_eigenvector_labels_figure():
    problem = PROBLEM.replace(test_size=10)
    fig = pf.plot_eigenvector_labels(*_fig5_data(), problem=problem, method="gd", steps=1000,
                                     network=True)
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


def test_interpolation_neighbours_differ_in_colour():
    runs = _curves(6, "s", (0.0, 0.05, 0.2, 0.5, 0.75, 0.95))
    for r in runs:
        r.update(lin_test=r["test"], alignment_test=0.1 + 0 * T, alignment_train=0.2 + 0 * T,
                 network=None)
    fig = pf.plot_interpolation(runs, problem=PROBLEM, method="gd", network=False)
    rgb = [np.array(mpl_colors.to_rgb(ln.get_color())) for ln in fig.axes[0].get_lines()
           if ln.get_label().startswith("s = ")]
    assert len(rgb) == 6
    assert min(np.abs(a - b).sum() for a, b in zip(rgb, rgb[1:])) > 0.5


def _kappa_runs(spectral_below: float = 5.0) -> list[dict]:
    runs = []
    for i, kappa in enumerate((1.5, 3.0, 5.5, 11.0, 22.0)):
        decay = np.exp(-T / (200.0 / (i + 1)))
        dmft = kappa < spectral_below
        runs.append(dict(kappa=kappa, t=T, exact_test=0.8 * (0.06 + decay),
                         exact_train=0.7 * decay + 1e-8, theory_test=0.8 * (0.003 + decay),
                         theory_train=0.7 * decay + 1e-7,
                         spectral_test=0.8 * (0.001 + decay) if dmft else None,
                         method="dmft" if dmft else "spectral",
                         exact_half_time=None if i == 0 else 9895.3 / i,
                         theory_half_time=None if i < 2 else 9372.0 / i))
        for side in ("exact", "theory"):     # as experiments.figures.offline computes them
            test = runs[-1][f"{side}_test"]
            runs[-1][f"{side}_final"] = float(test[-1] / test[0])
    return runs


def test_kappa_log_axes_number_format_colours_and_line_styles():
    problem = PROBLEM.replace(N=float("inf"))
    runs = _kappa_runs()
    fig = plot_kappa(runs, problem=problem)
    a1, a2, a3 = fig.axes
    assert a1.get_yscale() == "log" and a2.get_yscale() == "log"
    # along kappa: the loss at the horizon / initial, exact and theory, at the runs' kappa
    exact, theory = a3.get_lines()[:2]
    np.testing.assert_allclose(exact.get_xdata(), [1.5, 3.0, 5.5, 11.0, 22.0])
    np.testing.assert_allclose(exact.get_ydata(),
                               [r["exact_test"][-1] / r["exact_test"][0] for r in runs])
    np.testing.assert_allclose(theory.get_ydata(),
                               [r["theory_test"][-1] / r["theory_test"][0] for r in runs])
    assert [t.get_text() for t in a3.get_xticklabels()] == ["1.5", "3", "5.5", "11", "22"]
    texts = _legend_texts(fig)
    assert texts[0] == "κ = 1.5: exact t½ never, DMFT never"
    assert texts[2] == "κ = 5.5: exact t½ 4.95×10$^{3}$, spectral closure 4.69×10$^{3}$"
    assert texts[1] == "κ = 3: exact t½ 9.90×10$^{3}$, DMFT never"
    # three significant digits whatever the size
    assert [offline_plots._fmt(h) for h in (85.0, 850.4, 43462.0, None)] == \
        ["85.0", "850", "4.35×10$^{4}$", "never"]
    assert "exact gradient flow (N = ∞)" in texts
    assert any(t.startswith("offline theory") for t in texts)
    assert any(t.startswith("spectral closure where the DMFT") for t in texts)
    solid = [ln for ln in a1.get_lines() if ln.get_linestyle() == "-"]
    rgb = [np.array(mpl_colors.to_rgb(ln.get_color())) for ln in solid]
    assert min(np.abs(a - b).sum() for a, b in zip(rgb, rgb[1:])) > 0.5
    _legends_clear_of_axes(fig)
    no_dmft = _legend_texts(plot_kappa(_kappa_runs(spectral_below=0.0), problem=problem))
    assert not any(t.startswith("spectral closure where") for t in no_dmft)


def _init_rows() -> tuple[list[dict], dict]:
    rows, curves = [], {}
    for k, (spec, family, pr) in enumerate((("lowrank:1", "lowrank", 1.0),
                                            ("lowrank:4", "lowrank", 4.0),
                                            ("lowrank:16", "lowrank", 16.0),
                                            ("iid", "iid", 30.0),
                                            ("aligned:1:1", "aligned", 1.0))):
        row = {"init": spec, "family": family, "participation_ratio": pr,
               "task_overlap_rel": 1.0 + k, "grokking_delay_tasks": [100.0, 0.0],
               "test_time_tasks": [10.0, np.inf], "online_plateau": np.nan}
        for key, value in (("weight_change", 2.0), ("tangent_kernel_alignment", 0.96),
                           ("test_loss", 1.15), ("online_weight_change", 2.1),
                           ("online_loss", 0.05)):
            row[key], row[key + "_std"] = value, (1.56 if key == "test_loss" else 0.1)
        rows.append(row)
        curves[spec] = (T, np.exp(-T / (100.0 * (k + 1))))
    return rows, curves


def _bar_bottoms(ax) -> list[float]:
    """The lower ends of the error bars of ``ax``."""
    out = []
    for coll in ax.collections:
        for seg in coll.get_segments():
            out.append(float(min(seg[:, 1])))
    return out


@pytest.mark.parametrize("tasks", [False, True])
def test_init_rank_log_bars_stay_positive_and_curves_have_a_legend(tasks):
    rows, curves = _init_rows()
    if tasks:
        for r in rows:
            r["test_loss_tasks"] = [0.05, 0.1, 1.5, 2.95]
    problem = PROBLEM.replace(N=float("inf"))
    fig = plot_init_rank(rows, curves, problem=problem, steps=1000, method="flow", n_tasks=4)
    first, *rest = fig.get_suptitle().split("\n")
    assert first.endswith("; gradient flow") and all(len(x.split()) > 3 for x in rest)
    c, f = fig.axes[2], fig.axes[5]
    assert c.get_yscale() == "log"
    bottoms = _bar_bottoms(c)
    assert bottoms and min(bottoms) > 0          # a std larger than the mean: still above 0
    if tasks:
        assert min(bottoms) == pytest.approx(0.05) and "min–max over tasks" in c.get_title()
    else:
        assert "log-normal" in c.get_title()
    assert "± std" not in c.get_title()
    texts = _legend_texts(fig)
    assert all(spec in texts for spec in curves)
    shades = [ln.get_color() for ln in f.get_lines()][:3]        # the three lowrank inits
    assert len({tuple(np.round(mpl_colors.to_rgb(s), 3)) for s in shades}) == 3
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


def _entries(fig):
    leg = fig.axes[0].get_legend()
    return [(h, t.get_text()) for h, t in zip(leg.legend_handles, leg.get_texts())]


def test_phase_heat_map_words_and_order():
    reached = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)
    ratio = np.array([[0.2, 0.5, 0.9], [0.5, 0.9, 2.0], [0.9, 2.0, 4.0]])
    res = _phase(reached, ratio)
    res.config["base_problem"]["eta0"] = 20.0
    fig = plot_phase(res, title="Fig. 3(e): phase diagram")
    title = fig.get_suptitle()
    assert title.startswith("Fig. 3(e): phase diagram; ")
    assert "η0=20," in title and "20.0" not in title
    assert "gradient flow" in title and "1 seed" in title
    assert fig.axes[-1].get_ylabel().endswith("GD steps; 1 seed)")       # the colour bar
    texts = [t for _, t in _entries(fig)]
    assert not any("most seeds" in t or "seed mean" in t for t in texts)
    # measured, then the fit to it, then the unfitted prediction
    kinds = [t.split()[0] for t in texts]
    assert kinds == ["test", "measured", "fitted", "predicted"]
    assert "not a prediction" in texts[2]
    assert fig.axes[0].get_legend().handlelength >= 3
    # several seeds: counted in words
    two = PhaseResult(res.dims, {**res.coords, "seed": np.array([0, 1])},
                      {k: np.concatenate([v, v], axis=-1) for k, v in res.data.items()},
                      res.config)
    fig2 = plot_phase(two)
    texts2 = [t for _, t in _entries(fig2)]
    assert "(in more than half of the 2 seeds)" in texts2[0]
    assert "(in half of the 2 seeds)" in texts2[1]
    assert fig2.axes[-1].get_ylabel().endswith("mean of 2 seeds)")
    assert fig2.get_suptitle().startswith("D=8, P=20, N=4, η0=20, conv. A, uncentered;")


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
    assert "init" not in line                                   # the paper's iid init
    ranked = problem_line(PROBLEM.replace(init="aligned:1:0.6"))
    assert "init aligned:1:0.6, conv." in ranked
    assert "init" not in problem_line(PROBLEM.replace(init="lowrank:2"), skip=("init",))
    assert method_name("gd", PROBLEM.replace(batch_size=5)) == "exact SGD"
    assert method_name("flow") == "gradient flow"


def test_kappa_draws_the_interpolant_limit_where_given():
    """runs with ``limit`` (the interpolant's tau -> inf loss): a third series in the
    along-kappa panel at those kappas, named in the style legend; none without it."""
    problem = PROBLEM.replace(N=float("inf"))
    runs = _kappa_runs()
    for r, v in zip(runs, (1.4, 0.4, 0.003, None, None)):
        r["limit"] = v
    fig = plot_kappa(runs, problem=problem)
    lines = fig.axes[2].get_lines()
    limit = [ln for ln in lines if ln.get_label() == "τ → ∞: interpolant"]
    assert len(limit) == 1
    np.testing.assert_allclose(limit[0].get_xdata(), [1.5, 3.0, 5.5])
    np.testing.assert_allclose(limit[0].get_ydata(), [1.4, 0.4, 0.003])
    assert any("mirror-descent interpolant" in t for t in _legend_texts(fig))
    _legends_clear_of_axes(fig)
    bare = plot_kappa(_kappa_runs(), problem=problem)
    assert not any(ln.get_label() == "τ → ∞: interpolant" for ln in bare.axes[2].get_lines())
    assert not any("interpolant" in t for t in _legend_texts(bare))


def test_alignment_axis_is_not_blown_up():
    """A right-hand axis whose data vary by ~10 % starts at 0 (autoscaling would fill the
    panel's height with it); data that vary a lot keep the autoscaled limits."""
    from lazyrich_theory.plotting.trajectory import _honest_span

    ax = Figure().subplots()
    ax.plot([1, 2, 3], [0.0093, 0.0098, 0.0103])
    _honest_span(ax, np.array([0.0093, 0.0098, 0.0103]))
    lo, hi = ax.get_ylim()
    assert lo == 0.0 and hi >= 0.0103
    ax2 = Figure().subplots()
    ax2.plot([1, 2, 3], [0.1, 0.5, 0.9])
    before = ax2.get_ylim()
    _honest_span(ax2, np.array([0.1, 0.5, 0.9, np.nan]))
    assert ax2.get_ylim() == before
