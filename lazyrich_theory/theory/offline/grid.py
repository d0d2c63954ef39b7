"""The spectral closure on an (alpha, eps) grid: the unfitted offline-theory boundary of a
phase diagram (Fig. 3(e)) at a cost of a few closure solves.

On the rich clock s = eta0 eps t / alpha the closure depends on alpha and eps only through
alpha eps (``spectral``), so a whole grid needs one curve per distinct alpha eps -- or, when
there are many, one per node of a log grid in alpha eps, the crossing times interpolated in
log(alpha eps) (they vary like ln(D b2 / (alpha eps)), smoothly).  The lazy transient is left
out: it is over long before the loss can fall below a threshold under the plateau.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.offline.curves import spectral_closure
from lazyrich_theory.theory.offline.spectral import rich_clock_crossings

__all__ = ["phase_boundary_times", "N_NODES"]

#: Nodes in alpha eps (log-spaced) when the grid has more distinct values than this.
N_NODES = 24


def _crossings(kappa: float, b2: float, D: int, ae: float, s_max: float, threshold: float,
               relative: float) -> tuple[float, float]:
    """(s at which the population loss falls to ``threshold``, s at which it falls to
    ``relative`` x its initial value) for one alpha eps; inf when not within s_max."""
    cl = spectral_closure(kappa, b2, D)
    pop0 = 0.75 * b2**2          # the loss at t = 0 (before the lazy fit)
    a, b = rich_clock_crossings(cl, ae, s_max, (threshold, relative * pop0))
    return a, b


def phase_boundary_times(kappa: float, b2: float, D: int, eta0: float,
                         alpha: Iterable[float], eps: Iterable[float], steps: float,
                         threshold: float = 0.1, relative: float = 0.5,
                         n_nodes: int = N_NODES) -> dict[str, np.ndarray]:
    """Predicted times (GD steps) at which the population loss reaches ``threshold`` (absolute)
    and ``relative`` x its initial value, on the grid alpha x eps (spectral closure).

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
    n_nodes : int
        Nodes in alpha eps when the grid has more distinct products.

    Returns
    -------
    dict
        ``threshold_time`` and ``relative_time`` of shape (len(alpha), len(eps)) (inf: not
        within ``steps``), and ``nodes`` (the alpha eps values solved).
    """
    al = np.asarray(list(alpha), dtype=float)
    ep = np.asarray(list(eps), dtype=float)
    if al.size == 0 or ep.size == 0 or np.any(al <= 0) or np.any(ep <= 0):
        raise ProblemError("alpha and eps must be non-empty and positive")
    A, E = np.meshgrid(al, ep, indexing="ij")
    ae = A * E
    s_cell = eta0 * E * steps / A                     # each cell's horizon on the rich clock
    distinct = np.unique(np.round(ae, 12))
    nodes = distinct if distinct.size <= n_nodes else np.geomspace(ae.min(), ae.max(), n_nodes)
    thr, rel = np.empty(nodes.size), np.empty(nodes.size)
    for k, a in enumerate(nodes):
        # the horizon of the cells near this alpha eps (on the rich clock)
        near = np.abs(np.log(ae / a)) <= np.abs(np.log(ae / a)).min() + 0.5
        s_max = float(s_cell[near].max())
        thr[k], rel[k] = _crossings(kappa, b2, D, float(a), s_max, threshold, relative)
    out = {}
    for name, vals in (("threshold_time", thr), ("relative_time", rel)):
        s = _interp_log(ae, nodes, vals)
        t = A * s / (eta0 * E)
        out[name] = np.where(np.isfinite(t) & (t <= steps), t, math.inf)
    out["nodes"] = nodes
    return out


def _interp_log(x: np.ndarray, nodes: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """vals(x) interpolated linearly in (log x, log vals); inf where a neighbour is inf."""
    if nodes.size == 1:
        return np.full(x.shape, vals[0])
    lv = np.where(np.isfinite(vals), np.log(np.where(np.isfinite(vals), vals, 1.0)), np.inf)
    out = np.interp(np.log(x), np.log(nodes), np.where(np.isfinite(lv), lv, 1e300))
    return np.where(out > 690.0, math.inf, np.exp(np.minimum(out, 690.0)))
