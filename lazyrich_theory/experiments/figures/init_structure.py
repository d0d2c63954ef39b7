"""Beyond the paper: the initial connectivity structure (Liu et al., ICLR 2024) and the weight
norm (the paper's appendix) in this model (docs/init_structure.md).

* ``init_rank``: richness (weight change, tangent-kernel alignment), test loss and grokking
  delay against the effective rank of W0 at matched norm (tr M0 = D), averaged over tasks
  (data, beta and init redrawn per seed), with the task-aligned low-rank exception and the
  structured population ODE (online theory) at the same time overlaid;
* ``weight_norm``: the paper's sigma sweep (readouts and W0 times sigma) and its joint
  (sigma, alpha = 1/sigma^2) sweep, mapped exactly onto this model's (alpha, eps, eta0).

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:mod:`lazyrich_theory.plotting.init_structure`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from lazyrich_theory.core.population_structured import centered_plateau, population_structured
from lazyrich_theory.core.solve import solve
from lazyrich_theory.experiments.figures.common import FigureData, as_list, curves_table
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.inits import check_init, init_measures, make_init, parse_init
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.timescales import grokking_metrics

__all__ = ["INIT_RANK_SPECS", "WEIGHT_NORM_SIGMAS", "JOINT_SIGMAS", "init_data", "init_rank",
           "weight_norm"]

#: Default init families of ``init_rank``: low rank, power law, iid, and task-aligned.
INIT_RANK_SPECS = ("lowrank:1", "lowrank:2", "lowrank:4", "lowrank:8", "lowrank:16",
                   "powerlaw:2", "powerlaw:1", "powerlaw:0.5", "iid", "aligned:1:1",
                   "aligned:4:1", "aligned:4:0.5")
#: sigma values of the paper's sweep 1 (a and W0 times sigma, alpha = 1, step 0.5 N / sigma^2).
WEIGHT_NORM_SIGMAS = (0.125, 0.25, 0.5, 1.0, 2.0)
#: sigma values of the paper's joint sweep (alpha = 1 / sigma^2, step 0.5 N / sigma^2).
JOINT_SIGMAS = (0.25, 0.5, 1.0, 2.0)


@dataclasses.dataclass(frozen=True, eq=False)
class _DataWithM0(ProblemData):
    """ProblemData carrying an N = inf init covariance (until ProblemData has the field)."""

    M0: np.ndarray | None = None


def init_data(problem: Problem, spec: str, scale: float = 1.0) -> ProblemData:
    """The problem's data with the init ``spec`` (times ``scale``) drawn from its W0 stream.

    Parameters
    ----------
    problem : Problem
    spec : str
        An init spec (``spec.inits``).
    scale : float
        sigma: multiplies W0 (M0 by sigma^2).

    Returns
    -------
    ProblemData
        W0 at finite N; at N = inf the covariance as ``M0`` (read by ``ReducedSystem.build``
        and ``population``).
    """
    d = problem.data()
    rng = np.random.default_rng(np.random.SeedSequence(problem.seed).spawn(4)[3])
    init = make_init(rng, problem.D, problem.N, d.beta, spec, scale)
    if problem.finite_width:
        return dataclasses.replace(d, W0=init)
    if "M0" in {f.name for f in dataclasses.fields(d)}:
        return dataclasses.replace(d, M0=init)
    return _DataWithM0(d.X, d.y, d.X_test, d.y_test, d.beta, None, source=d.source,
                       target=d.target, M0=init)


def _valid(specs: Sequence[str], problem: Problem) -> list[str]:
    """The specs that fit the problem's shape (rank <= min(N, D))."""
    out = []
    for s in specs:
        try:
            out.append(str(check_init(s, problem.D, problem.N)))
        except ValueError:
            continue
    return out


def _family(spec: str) -> str:
    s = parse_init(spec)
    if s.kind == "aligned":
        return "aligned" if s.overlap == 1.0 else "partly aligned"
    return s.kind


def _one_task(problem: Problem, steps: int, spec: str, method: str) -> dict[str, Any]:
    """One task (seed): the exact run and the online ODE at the same horizon."""
    data = init_data(problem, spec)
    tr = solve(problem, steps, method=method, data=data)
    init = data.W0 if problem.finite_width else data.M0
    m = init_measures(init, data.beta, finite=problem.finite_width)
    tr_n, te_n = tr.train_loss / tr.train_loss[0], tr.test_loss / tr.test_loss[0]
    g = grokking_metrics(tr.t, tr_n, te_n, threshold=0.1)
    pop = population_structured(problem, steps, data=data, rtol=1e-7, atol=1e-10)
    plateau = math.nan
    if problem.centered and not problem.finite_width:
        plateau = centered_plateau(init, data.beta, problem.alpha, problem.eps,
                                   problem.tau)["loss"] / pop.population_loss[0]
    return {"participation_ratio": m["participation_ratio"], "liu_rank": m["liu_rank"],
            "task_overlap_rel": m["task_overlap_rel"],
            "weight_change": float(tr["weight_change"][-1]),
            "tangent_kernel_alignment": float(tr["tangent_kernel_alignment"][-1]),
            "test_loss": float(te_n[-1]), "train_loss": float(tr_n[-1]),
            "grokking_delay": g["paper_grokking_time"], "test_time": g["test_time"],
            "online_weight_change": float(pop.extra["weight_change"][-1]),
            "online_loss": float(pop.population_loss[-1] / pop.population_loss[0]),
            "online_plateau": plateau, "t": tr.t, "test_curve": te_n}


def init_rank(problem: Problem, steps: int, specs=INIT_RANK_SPECS, n_tasks: int = 4,
              method: str = "flow") -> FigureData:
    """Richness and generalisation against the effective rank of the init at matched norm.

    Parameters
    ----------
    problem : Problem
        The base problem; task k uses ``seed + k`` (new X, beta and init draw).
    steps : int
    specs : sequence of str (or a comma-separated string)
        Init specs; those that do not fit (rank > min(N, D)) are skipped.
    n_tasks : int
        Tasks (seeds) averaged over.
    method : str
        "flow" (default) or "gd".

    Returns
    -------
    FigureData
        ``result["inits"]``: per spec the task means (and standard deviations) of the
        measures, the exact run's final values and the online ODE's, and per task the grokking
        delay and the time the test loss first falls under 0.1 x its initial value (inf:
        never); ``init_rank.csv`` (row i
        = ``result["inits"][i]``) and the mean test-loss curves.
    """
    specs = _valid([str(s) for s in as_list(specs)], problem)
    rows, curves = [], {}
    for spec in specs:
        tasks = [_one_task(problem.replace(seed=problem.seed + k), steps, spec, method)
                 for k in range(int(n_tasks))]
        row: dict[str, Any] = {"init": spec, "family": _family(spec),
                               "grokking_delay_tasks": [t["grokking_delay"] for t in tasks],
                               "test_time_tasks": [t["test_time"] for t in tasks]}
        for key in tasks[0]:
            if key in ("t", "test_curve", "grokking_delay", "test_time"):
                continue
            vals = np.array([t[key] for t in tasks], dtype=float)
            finite = bool(np.all(np.isfinite(vals)))
            row[key] = float(np.mean(vals)) if finite else float(np.max(vals))
            row[key + "_std"] = float(np.std(vals)) if finite else math.nan
        rows.append(row)
        curves[spec] = (tasks[0]["t"], np.mean([t["test_curve"] for t in tasks], axis=0))
    keys = [k for k in rows[0] if k not in ("init", "family", "grokking_delay_tasks",
                                            "test_time_tasks")]
    # numeric CSV: row i is result["inits"][i] (its spec and family are in figure.json)
    table = (("init_index", *keys), [list(range(len(rows))), *[[r[k] for r in rows] for k in keys]])
    t = next(iter(curves.values()))[0]
    return FigureData(
        result={"inits": rows, "n_tasks": int(n_tasks), "method": method},
        plot={"rows": rows, "curves": curves, "problem": problem, "steps": steps,
              "method": method, "n_tasks": int(n_tasks)},
        tables={"init_rank.csv": table,
                "init_rank_test_curves.csv": curves_table(t, {s: c[1] for s, c in curves.items()})})


def _run(problem: Problem, steps: int, W0: np.ndarray, method: str, alpha: float, eps: float,
         eta0: float, sigma: float) -> dict[str, Any]:
    """One run of this model with W0 times sigma and (alpha, eps, eta0)."""
    p = problem.replace(alpha=alpha, eps=eps, eta0=eta0)
    d = p.data()
    tr = solve(p, steps, method=method, data=dataclasses.replace(d, W0=sigma * W0))
    return {"t": tr.t, "test": tr.test_loss / tr.test_loss[0], "train": tr.train_loss / tr.train_loss[0],
            "weight_change": float(tr["weight_change"][-1]),
            "tangent_kernel_alignment": float(tr["tangent_kernel_alignment"][-1]),
            "final_test": float(tr.test_loss[-1] / tr.test_loss[0]), "alpha": alpha, "eps": eps,
            "eta0": eta0, "sigma": sigma}


def weight_norm(problem: Problem, steps: int, sigmas=WEIGHT_NORM_SIGMAS,
                joint_sigmas=JOINT_SIGMAS, method: str = "flow") -> FigureData:
    """The paper's weight-norm sweeps, run exactly in this model.

    The paper scales the readouts and W0 by sigma with output scale alpha_p and divides the
    centered loss by alpha_p^2, with step eta_p.  Readouts fixed at sigma are an output scale,
    and (sigma, alpha, eps, eta0) == (1, sigma alpha, sigma eps, eta0) exactly
    (docs/init_structure.md §1.3), so a paper run is this model's run with alpha = sigma^2
    alpha_p, eps -> sigma eps and eta0 = eta_p sigma^2 / N (the /alpha_p^2 of the loss cancels
    alpha_p^2 in eta0 = eta N / alpha^2).  Sweep 1 (alpha_p = 1, eta_p = 0.5 N / sigma^2):
    (alpha, eps, eta0) = (sigma^2, sigma eps, 0.5); joint sweep (alpha_p = 1 / sigma^2):
    (1, sigma eps, 0.5) -- equal laziness, but eps differs, so sigma^2 alpha alone does not
    collapse the curves.  Here every run is made literally (W0 times sigma, alpha = sigma
    alpha_p) and compared with its equivalent unscaled run, and an alpha sweep at sigma = 1
    (alpha = sigma^2, eps fixed) shows what sigma^2 alpha alone would predict.

    Parameters
    ----------
    problem : Problem
        Finite N, alpha = 1 (the paper's sweeps); its eps and eta0 are the paper's (0.5 is the
        step constant).
    steps : int
    sigmas, joint_sigmas : sequences of float (or comma-separated strings)
    method : str

    Returns
    -------
    FigureData
        ``result``: per sweep the runs' final weight change, kernel alignment and normalised
        test loss, and the maximal deviation of each run from its equivalent.
    """
    W0 = problem.data().W0
    eps, eta0 = problem.eps, problem.eta0
    out: dict[str, list] = {"sweep": [], "joint": [], "alpha_only": []}
    worst = 0.0
    for name, values, alpha_p in (("sweep", sigmas, lambda s: 1.0),
                                  ("joint", joint_sigmas, lambda s: 1.0 / s ** 2)):
        for s in (float(v) for v in as_list(values)):
            lit = _run(problem, steps, W0, method, s * alpha_p(s), eps, eta0, s)
            eq = _run(problem, steps, W0, method, s * s * alpha_p(s), s * eps, eta0, 1.0)
            dev = float(np.max(np.abs(lit["test"] - eq["test"]) / np.abs(eq["test"])))
            worst = max(worst, dev)
            lit.update(sigma2_alpha=s * s * alpha_p(s), equivalent_test=eq["test"],
                       deviation_from_equivalent=dev)
            out[name].append(lit)
    for s in (float(v) for v in as_list(sigmas)):
        r = _run(problem, steps, W0, method, s * s, eps, eta0, 1.0)
        r.update(sigma2_alpha=s * s)
        out["alpha_only"].append(r)
    scalar = ("sigma", "alpha", "eps", "eta0", "sigma2_alpha", "weight_change",
              "tangent_kernel_alignment", "final_test", "deviation_from_equivalent")
    result = {k: [{c: r[c] for c in scalar if c in r} for r in v] for k, v in out.items()}
    result["max_deviation_from_equivalent"] = worst
    cols = {f"{k}_sigma{r['sigma']:g}_alpha{r['alpha']:g}": r["test"] for k, v in out.items()
            for r in v}
    return FigureData(result=result,
                      plot={**out, "problem": problem, "method": method, "steps": steps},
                      tables={"weight_norm_test_curves.csv": curves_table(out["sweep"][0]["t"], cols)})
