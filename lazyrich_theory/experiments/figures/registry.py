"""The figure registry: name -> configuration, computation and drawing; :func:`make_figure`.

A :class:`Figure` pairs a compute function of one family module (``paper``, ``sweeps``,
``variants``, ``fig5``, ``interpolation``; it returns a
:class:`~lazyrich_theory.experiments.figures.common.FigureData`) with a drawing function of
:mod:`lazyrich_theory.plotting.figures`.  :meth:`Figure.run` computes, writes the data files,
draws ``NAME.png``; :func:`make_figure` adds ``figure.json``.  Adding a figure: a compute
function in a family module, a drawing function, one entry in :data:`FIGURES`.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.figures import (
    fig5,
    init_structure,
    interpolation,
    offline,
    paper,
    sweeps,
    variants,
)
from lazyrich_theory.experiments.figures.common import FigureData
from lazyrich_theory.plotting import figures as draw
from lazyrich_theory.plotting import init_structure as draw_init
from lazyrich_theory.plotting import offline as draw_offline
from lazyrich_theory.plotting.phase import plot_phase
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.storage import (
    atomic_write_csv,
    atomic_write_json,
    atomic_write_npz,
)

__all__ = ["Figure", "FIGURES", "make_figure", "write_figure_data", "DPI"]

#: Resolution of every figure's PNG.
DPI = 130
#: How the figures that set problem fields themselves (:attr:`Figure.sets`) set them
SETS = "P = kappa D at each kappa, N = inf"
#: What ``figure.json`` records for such a field (its problem's own value is not used)
SET_BY_FIGURE = f"set by the figure ({SETS})"
#: How floor-map uses the problem's alpha and eps (``figure.json``'s ``problem_notes``)
FLOOR_MAP_SCALES = ("only alpha / eps is used; alpha eps is set by each m of the grid "
                    "(alpha eps = m b2 / sigma^2; floor_map.csv gives each cell's alpha, eps)")


@dataclass(frozen=True)
class Figure:
    """One figure of the registry.

    Attributes
    ----------
    name : str
        Also the PNG's name (``NAME.png``).
    description : str
    problem : dict
        The paper's configuration (Problem fields); ``--set`` overrides it.
    steps : int
        The default horizon.
    compute : callable
        ``compute(problem, steps, **options) -> FigureData``; its keyword parameters are the
        figure's options (:attr:`options`).
    draw : callable
        ``draw(**FigureData.plot) -> matplotlib.figure.Figure``.
    paper : bool
        False for a figure beyond the paper (not part of ``all``).
    workdir : str, optional
        A subfolder the computation writes itself (a resumable sweep), passed as ``out=``.
    check : callable, optional
        ``check(problem, steps, **options)``: the figure's own refusals (ProblemError), run
        by :meth:`precheck` before anything is computed; ``compute`` makes them again.
    solves : bool
        False for a theory-only figure (no reduced solve: ``lazyrich figure`` gives no
        estimate of one).
    sets : tuple of str
        Problem fields the figure sets itself from its options (kappa: P = kappa D, N = inf);
        refused as overrides (:meth:`check_overrides`), since they would be ignored.
    notes : tuple of (str, str)
        Problem fields the figure uses only in part, with how: ``figure.json``'s
        ``problem_notes`` (floor-map: alpha and eps, of which only the ratio is used).
    """

    name: str
    description: str
    problem: dict[str, Any]
    steps: int
    compute: Callable[..., FigureData]
    draw: Callable[..., Any]
    paper: bool = True
    workdir: str | None = None
    check: Callable[..., Any] | None = None
    solves: bool = True
    sets: tuple[str, ...] = ()
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def options(self) -> tuple[str, ...]:
        """The figure's options: the compute function's keyword parameters (``--set`` keys
        that are not Problem fields)."""
        params = list(inspect.signature(self.compute).parameters)[2:]
        return tuple(p for p in params if p != "out")

    @property
    def defaults(self) -> dict[str, Any]:
        """The figure's options that have a default value, with it."""
        return {name: p.default for name, p in inspect.signature(self.compute).parameters.items()
                if name in self.options and p.default is not inspect.Parameter.empty}

    def check_overrides(self, overrides: dict[str, Any]) -> None:
        """Refuse (one line, ProblemError) an override of a field the figure sets itself."""
        fixed = sorted(k for k in overrides if k in self.sets)
        if fixed:
            raise ProblemError(f"--set {', '.join(fixed)}: figure {self.name} sets "
                               f"{', '.join(self.sets)} itself ({SETS}); choose "
                               f"its options instead ({', '.join(self.options)})")

    def recorded_problem(self, problem: Problem) -> dict[str, Any]:
        """``problem.to_dict()`` as ``figure.json`` records it: each field the figure sets
        itself (:attr:`sets`) is named as such, not given the unused value it holds."""
        rec = problem.to_dict()
        rec.update({k: SET_BY_FIGURE for k in self.sets})
        return rec

    def precheck(self, problem: Problem, steps: int, **options: Any) -> None:
        """The figure's own refusals for ``problem``, ``steps`` and its ``options`` (other
        keywords are ignored), before anything is computed (nothing if it has no check)."""
        if self.check is not None:
            self.check(problem, steps, **{k: v for k, v in options.items()
                                          if k in self.options})

    def run(self, problem: Problem, steps: int, out: str, **options: Any) -> dict:
        """Compute the figure for ``problem``, write its data files and ``NAME.png`` into
        ``out``.

        Parameters
        ----------
        problem : Problem
        steps : int
        out : str
            An existing folder.
        **options
            Figure options (:attr:`options`); other keywords are ignored.

        Returns
        -------
        dict
            The figure's numbers (``figure.json``'s ``result``).
        """
        kw = {k: v for k, v in options.items() if k in self.options}
        if self.workdir is not None:
            kw["out"] = os.path.join(out, self.workdir)
        data = self.compute(problem, steps, **kw)
        write_figure_data(data, out)
        self.draw(**data.plot).savefig(os.path.join(out, f"{self.name}.png"), dpi=DPI)
        return data.result


def write_figure_data(data: FigureData, out: str) -> None:
    """Write the trajectory folders, CSV and NPZ files of ``data`` into ``out``.

    Parameters
    ----------
    data : FigureData
    out : str
    """
    for folder, (traj, problem_data) in data.runs.items():
        traj.save(os.path.join(out, folder), data=problem_data, plot=False, overwrite=True)
    for name, (header, columns) in data.tables.items():
        atomic_write_csv(os.path.join(out, name), header, columns)
    for name, arrays in data.arrays.items():
        atomic_write_npz(os.path.join(out, name), arrays)


_FIG4_SETUP = dict(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5, convention="A",
                   centered=False)

#: Every figure by name (what ``lazyrich figure NAME`` runs), in the order of ``all``.
FIGURES: dict[str, Figure] = {
    "fig1": Figure("fig1", "grokking on polynomial regression: network, linearised model, K0, "
                   "alignment", dict(D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=1.0,
                                     convention="A", centered=True), 100_000, paper.fig1,
                   partial(draw.plot_network_check, every=3, train=True)),
    "fig3a": Figure("fig3a", "sweep over alpha (normalised losses)",
                    dict(D=100, P=450, N=500, alpha=1.0, eps=0.25, eta0=0.5, convention="B",
                         centered=True), 60_000, sweeps.fig3a,
                    partial(draw.plot_sweep_curves, title="Fig. 3(a): α sweep")),
    "fig3b": Figure("fig3b", "sweep over eps (normalised losses; values not authoritative)",
                    dict(D=100, P=450, N=500, alpha=1.0, eps=0.25, eta0=0.5, convention="B",
                         centered=False), 60_000, sweeps.fig3b,
                    partial(draw.plot_sweep_curves, title="Fig. 3(b): ε sweep")),
    "fig3e": Figure("fig3e", "phase diagram of the amount of grokking over (alpha, eps)",
                    dict(D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=20.0, convention="A",
                         centered=True), 110_000, sweeps.fig3e,
                    partial(plot_phase, title="Fig. 3(e): amount of grokking"), workdir="phase"),
    "fig4": Figure("fig4", "N = 2 network: loss decomposition through the rich transition",
                   dict(_FIG4_SETUP), 50_000, paper.fig4,
                   partial(draw.plot_network_check, every=4, train=False)),
    "fig12": Figure("fig12", "trained readouts: the numpy network (no exact reduction exists)",
                    {**_FIG4_SETUP, "eta0": 0.1}, 100_000, paper.fig12,
                    draw.plot_trained_readouts),
    "fig5": Figure("fig5", "labels = eigenvectors of the initial NTK on Gaussian data",
                   dict(D=100, P=100, N=2, alpha=1.0, eps=0.25, eta0=0.5, convention="B",
                        centered=True, test_size=100), 25_000, fig5.fig5,
                   draw.plot_eigenvector_labels),
    "interpolation": Figure("interpolation", "initialisations interpolating from random "
                            "weights to the zero-loss solution", dict(_FIG4_SETUP), 20_000,
                            interpolation.interpolation, draw.plot_interpolation),
    "goldilocks": Figure("goldilocks", "sweep over the number of training points P",
                         dict(D=40, P=120, N=100, alpha=1.0, eps=0.5, eta0=0.5,
                              convention="A", centered=True), 50_000, sweeps.goldilocks,
                         partial(draw.plot_sweep_curves, title="Goldilocks: P sweep",
                                 log2_labels=False)),
    "sgd": Figure("sgd", "beyond the paper: full-batch GD vs minibatch and online SGD (Fig. 4 "
                  "setup)", dict(_FIG4_SETUP), 50_000, variants.sgd,
                  partial(draw.plot_variants, title="Full batch vs minibatch vs online SGD",
                          samples_axis=True), paper=False),
    "options": Figure("options", "beyond the paper: weight decay, momentum, label noise "
                      "(Fig. 4 setup)", dict(_FIG4_SETUP), 50_000, variants.options,
                      partial(draw.plot_variants,
                              title="Weight decay, momentum, label noise"), paper=False),
    "init-rank": Figure("init-rank", "beyond the paper: richness and generalisation vs the "
                        "effective rank and task alignment of W0 at matched norm (Liu et al.)",
                        dict(D=30, P=120, N=math.inf, alpha=1.0, eps=0.25, eta0=0.5,
                             convention="A", centered=True, test_size=500), 20_000,
                        init_structure.init_rank, draw_init.plot_init_rank, paper=False),
    "weight-norm": Figure("weight-norm", "beyond the paper: the appendix's weight-norm sweeps "
                          "(sigma, and sigma with alpha = 1/sigma^2) run exactly",
                          dict(D=50, P=225, N=250, alpha=1.0, eps=0.25, eta0=0.5,
                               convention="B", centered=True, test_size=500), 50_000,
                          init_structure.weight_norm, draw_init.plot_weight_norm, paper=False),
    "kappa": Figure("kappa", "beyond the paper: the offline theory (issue 13) against the exact "
                    "flow, test loss vs time over kappa = P/D (docs/offline_theory.md)",
                    dict(D=100, P=550, N=math.inf, alpha=1.0, eps=0.02, eta0=1.0,
                         convention="A", centered=True, test_size=100), 100_000,
                    offline.kappa, draw_offline.plot_kappa, paper=False,
                    check=offline.check_kappa, sets=("P", "N")),
    "floor-map": Figure("floor-map", "beyond the paper: where the flow ends -- the tau -> inf "
                        "test loss (mirror-descent interpolant) over kappa = P/D and m = alpha "
                        "eps / b2, and the critical kappa (docs/offline_theory.md §15.5)",
                        dict(D=100, P=550, N=math.inf, alpha=1.0, eps=0.02, eta0=1.0,
                             convention="A", centered=True, test_size=100), 0,
                        offline.floor_map, draw_offline.plot_floor_map, paper=False,
                        check=offline.check_floor_map, solves=False, sets=("P", "N"),
                        notes=tuple((k, FLOOR_MAP_SCALES) for k in ("alpha", "eps"))),
}


def _missing_dirs(path: str) -> list[str]:
    """The folders ``os.makedirs(path)`` would create, deepest first."""
    out, path = [], os.path.abspath(path)
    while not os.path.exists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def make_figure(name: str, out: str, steps: int | None = None, seed: int = 0,
                **overrides: Any) -> dict:
    """Run figure ``name`` into folder ``out``; problem fields in ``overrides`` replace the
    paper's configuration, other keywords go to the figure (e.g. n_alpha, network_steps).
    Writes ``figure.json`` (configuration, wall time, numbers) next to the PNG.

    Parameters
    ----------
    name : str
        A key of :data:`FIGURES`.
    out : str
        The output folder (created).
    steps : int, optional
        The horizon (default: the figure's).
    seed : int
    **overrides
        Problem fields and figure options (:attr:`Figure.options`).

    Returns
    -------
    dict
        What ``figure.json`` holds: figure, description, problem, steps, options, wall_time,
        result.
    """
    if name not in FIGURES:
        raise ProblemError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)} or all")
    fig = FIGURES[name]
    fig.check_overrides(overrides)
    fields = set(Problem.__dataclass_fields__)
    prob_kw = {**fig.problem, "seed": seed, **{k: v for k, v in overrides.items() if k in fields}}
    extra = {k: v for k, v in overrides.items() if k not in fields}
    problem = Problem(**prob_kw)
    steps = fig.steps if steps is None else int(steps)
    new = _missing_dirs(out)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    try:
        result = fig.run(problem, steps, out, **extra)
    except BaseException:              # a refusal leaves no empty folders behind
        for d in new:                  # deepest first
            if os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
        raise
    info = {"figure": name, "description": fig.description,
            "problem": fig.recorded_problem(problem),
            "steps": steps, "options": extra, "wall_time": time.perf_counter() - t0,
            "result": result}
    if fig.notes:                      # how the figure uses some recorded fields
        info["problem_notes"] = dict(fig.notes)
    atomic_write_json(os.path.join(out, "figure.json"), info)
    return info
