"""The offline theory on an (alpha, eps) grid: the unfitted boundary of a phase diagram
(Fig. 3(e)) at the cost of a few solves.

On the rich clock s = eta0 eps t / alpha the closure depends on alpha and eps only through
alpha eps (``spectral``), so a whole grid needs one curve per distinct alpha eps -- or, when
there are many, one per node of a log grid in alpha eps, the crossing times interpolated in
log(alpha eps) (they vary like ln(D b2 / (alpha eps)), smoothly).  The lazy transient is left
out: it is over long before the loss can fall below a threshold under the plateau.

``method="dmft"`` does the same with the DMFT (docs/offline_theory.md §12.3), which has the
memorisation floor that decides whether a cell reaches an absolute threshold at all.  The DMFT
depends on alpha and eps separately through the linear column's rate alpha / (eps kappa), so
the collapse on alpha eps is an approximation there (approximation A-grid: each node is solved
at the geometric-mean alpha / eps of the cells it serves; measured on the 8 x 8 Fig. 3(e) grid,
the DMFT's loss at tau = 70 varies by <= 0.002 between cells of equal alpha eps whose alpha /
eps differ 24-fold, the exact flow's long-time loss by <= 0.006; measured with the column as
derived).  The DMFT's column closure is its default ("auto") unless ``dmft_options`` names
one, chosen at each node's alpha / eps: spread where that column is fast (on the Fig. 3(e)
grid every node, also for cells whose own column is slow), else as derived.  Each node is one
DMFT run up to the cells' horizon on the DMFT clock, capped where its grid reaches
``DMFT_MAX_POINTS`` (tau ~ 80): a crossing later than the cap counts as not reached.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import numpy as np

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.theory.offline.curves import spectral_closure
from lazyrich_theory.theory.offline.dmft import (default_channels, dmft_tau_cap,
                                                dmft_tau_curves, resolve_column_closure)
from lazyrich_theory.theory.offline.inputs import OfflineInputs
from lazyrich_theory.theory.offline.spectral import rich_clock_crossings
from lazyrich_theory.theory.timescales import first_time_below

__all__ = ["phase_boundary_times", "N_NODES", "N_NODES_DMFT", "GRID_METHODS", "dmft_tau_cap"]

#: Nodes in alpha eps (log-spaced) when the grid has more distinct values than this.
N_NODES = 24
#: The same for the DMFT (one to two minutes per node).
N_NODES_DMFT = 6
#: What :func:`phase_boundary_times` can solve with.
GRID_METHODS = ("spectral", "dmft")


def _crossings(kappa: float, b2: float, D: int, ae: float, s_max: float, threshold: float,
               relative: float) -> tuple[float, float]:
    """(s at which the population loss falls to ``threshold``, s at which it falls to
    ``relative`` x its initial value) for one alpha eps; inf when not within s_max."""
    cl = spectral_closure(kappa, b2, D)
    pop0 = 0.75 * b2**2          # the loss at t = 0 (before the lazy fit)
    a, b = rich_clock_crossings(cl, ae, s_max, (threshold, relative * pop0))
    return a, b


def _dmft_crossings(kappa: float, b2: float, D: int, ae: float, ratio: float, s_max: float,
                    threshold: float, relative: float,
                    dmft_options: dict) -> tuple[float, float]:
    """The DMFT's (s at ``threshold``, s at ``relative`` x initial), alpha / eps = ``ratio``;
    inf when not within min(s_max, the DMFT's cap)."""
    alpha, eps = math.sqrt(ae * ratio), math.sqrt(ae / ratio)
    inp = OfflineInputs(kappa=kappa, alpha=alpha, eps=eps, eta0=1.0, b2=b2, D=D)
    tau_max = min(2.0 * s_max / D, dmft_tau_cap())
    c = dmft_tau_curves(inp, tau_max, **dmft_options)
    tau, pop = c["tau"], c["population_loss"]
    # s = D tau / 2 on the rich clock
    a, b = (0.5 * D * first_time_below(tau, pop, level)
            for level in (threshold, relative * 0.75 * b2**2))
    return a, b


def phase_boundary_times(kappa: float, b2: float, D: int, eta0: float,
                         alpha: Iterable[float], eps: Iterable[float], steps: float,
                         threshold: float = 0.1, relative: float = 0.5,
                         n_nodes: int | None = None, method: str = "spectral",
                         dmft_options: dict | None = None, refine: int = 2,
                         log: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Predicted times (GD steps) at which the population loss reaches ``threshold`` (absolute)
    and ``relative`` x its initial value, on the grid alpha x eps.

    Parameters
    ----------
    kappa, b2, D, eta0 : float
        P / D, |beta|^2 / D (convention-A units), the dimension and the learning rate.
    alpha, eps : iterable of float
        The grid axes (alpha > 0, eps > 0).
    steps : float
        Horizon: crossings later than this are inf.
    threshold, relative : float
        The absolute level (the phase sweep's ``threshold``) and the relative level.
    n_nodes : int, optional
        Nodes in alpha eps when the grid has more distinct products (default ``N_NODES``,
        ``N_NODES_DMFT`` for the DMFT).
    method : {"spectral", "dmft"}
        The spectral closure (seconds; no memorisation floor) or the DMFT (one to two minutes
        per node; has the floor; the alpha-eps collapse is an approximation, module docstring).
    dmft_options : dict, optional
        Passed to ``dmft_tau_curves`` (``Ns``, ``seed``, ``dmax``, ``column_closure``).
    refine : int
        DMFT only: bisections of each node gap where the threshold crossing switches
        between reached and not reached (the floor's edge; one extra solve per gap and round).
    log : callable, optional
        DMFT only: receives one line per solved node (alpha eps, seconds, the crossing).

    Returns
    -------
    dict
        ``threshold_time`` and ``relative_time`` of shape (len(alpha), len(eps)) (inf: not
        within ``steps``), ``nodes`` (the alpha eps values solved), ``method``, and for the
        DMFT ``ratios`` (the alpha / eps of each node), ``column_closures`` (the column
        closure that ran at each node) and ``tau_cap``.
    """
    al = np.asarray(list(alpha), dtype=float)
    ep = np.asarray(list(eps), dtype=float)
    if al.size == 0 or ep.size == 0 or np.any(al <= 0) or np.any(ep <= 0):
        raise ProblemError("alpha and eps must be non-empty and positive")
    if method not in GRID_METHODS:
        raise ProblemError(f"method must be one of {', '.join(GRID_METHODS)}, got {method!r}")
    if n_nodes is None:
        n_nodes = N_NODES if method == "spectral" else N_NODES_DMFT
    A, E = np.meshgrid(al, ep, indexing="ij")
    ae = A * E
    s_cell = eta0 * E * steps / A                     # each cell's horizon on the rich clock
    distinct = np.unique(np.round(ae, 12))
    nodes = distinct if distinct.size <= n_nodes else np.geomspace(ae.min(), ae.max(), n_nodes)

    def solve(a: float) -> tuple[float, float, float, str | None]:
        # the cells near this alpha eps: their horizon (rich clock) and alpha / eps
        near = np.abs(np.log(ae / a)) <= np.abs(np.log(ae / a)).min() + 0.5
        s_max = float(s_cell[near].max())
        ratio = float(np.exp(np.mean(np.log(A[near] / E[near]))))
        if method == "spectral":
            return (*_crossings(kappa, b2, D, a, s_max, threshold, relative), ratio, None)
        t0 = time.perf_counter()
        opts = dict(dmft_options or {})
        try:
            row = _dmft_crossings(kappa, b2, D, a, ratio, s_max, threshold, relative, opts)
        except DivergenceError as exc:          # name the node that failed
            raise DivergenceError(f"the DMFT node alpha eps = {a:.4g} (alpha/eps = "
                                  f"{ratio:.3g}): {exc}", exc.step) from None
        closure = resolve_column_closure(opts.get("column_closure", "auto"), kappa,
                                         math.sqrt(a * ratio), math.sqrt(a / ratio),
                                         default_channels(opts), opts.get("column_speed"))
        if log is not None:
            reached = "not reached" if math.isinf(row[0]) else f"reached at s = {row[0]:.4g}"
            log(f"offline DMFT node alpha eps = {a:.4g} (alpha/eps = {ratio:.3g}, column "
                f"closure {closure}): threshold {reached}; {time.perf_counter() - t0:.0f} s")
        return (*row, ratio, closure)

    rows = {float(a): solve(float(a)) for a in nodes}
    if method == "dmft" and distinct.size > n_nodes:
        _refine(rows, solve, refine)
    nodes = np.array(sorted(rows))
    thr, rel, ratios = (np.array([rows[a][k] for a in nodes]) for k in range(3))
    out: dict = {"method": method}
    for name, vals in (("threshold_time", thr), ("relative_time", rel)):
        s = _interp_log(ae, nodes, vals)
        t = A * s / (eta0 * E)
        out[name] = np.where(np.isfinite(t) & (t <= steps), t, math.inf)
    out["nodes"] = nodes
    if method == "dmft":
        out.update(ratios=ratios, tau_cap=dmft_tau_cap(),
                   column_closures=[rows[a][3] for a in nodes])
    return out


def _refine(rows: dict, solve, times: int) -> None:
    """Bisect (in log alpha eps) every gap between neighbouring nodes where the threshold
    crossing changes between finite and inf, ``times`` times: the floor's edge located to a
    factor (node ratio)^(1/2^times) instead of the node spacing."""
    for _ in range(times):
        a = sorted(rows)
        gaps = [(x, y) for x, y in zip(a[:-1], a[1:])
                if math.isfinite(rows[x][0]) != math.isfinite(rows[y][0])]
        for x, y in gaps:
            mid = math.sqrt(x * y)
            rows[mid] = solve(mid)


def _interp_log(x: np.ndarray, nodes: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """vals(x) interpolated linearly in (log x, log vals); inf where a neighbour is inf."""
    if nodes.size == 1:
        return np.full(x.shape, vals[0])
    lv = np.where(np.isfinite(vals), np.log(np.where(np.isfinite(vals), vals, 1.0)), np.inf)
    out = np.interp(np.log(x), np.log(nodes), np.where(np.isfinite(lv), lv, 1e300))
    return np.where(out > 690.0, math.inf, np.exp(np.minimum(out, 690.0)))
