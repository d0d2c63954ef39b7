"""The small-m limit of the mirror-descent interpolant as D -> inf: a D-free theory of where
the flow ends (docs/offline_theory.md §15.7).

As m = alpha eps / b2 -> 0 (in the free-column limit alpha / eps -> inf) the interpolant of
:mod:`~lazyrich_theory.theory.offline.implicit_bias` tends to the minimum-trace positive
semidefinite interpolant with D free linear unknowns (docs §15.6).  In z units
(N~ = N / D, g = b / sqrt(D), teacher N~* = betahat betahat^T) write N~ = N~* + H with
H = [[h, c^T], [c, B]] in the (betahat, perp) basis.  Gordon's comparison (the Gaussian
equivalent of the rank-one measurements z z^T: same mean I and covariance) reduces the
program, for D -> inf at fixed kappa = P / D, to three scalars: the spike change h >= -1,
the cross norm c = |c| >= 0 and the bulk trace t = tr B_bulk >= 0 (placed on the edge of the
measurement noise's semicircle, at no Frobenius cost), with q = c^2 / (1 + h) the part of B
that positivity forces (Schur complement):

    minimise   T = h + t + q (the trace change)
    subject to kappa_eff (T^2 + 2 h^2 + 4 c^2 + 2 q^2) <= 4 (c + t)^2,

kappa_eff = kappa - 1 with the free column (its optimal norm g^2 = A / (4 (kappa - 1)),
A the bracket) and kappa without.  The relative population loss is
(T^2 + 2 (h^2 + 2 c^2 + q^2) + 4 g^2) / 3.  Exact recovery (all zero) holds iff kappa >= 4
(3 without the column: PhaseLift's 3D) -- exact for Gaussian-equivalent measurements; with
the network's rank-one ones, direct convex solves lie ~0.3 higher at D <= 80 (docs §15.7).

The approach to D = inf is slow: the finite-D threshold is set by the statistical
dimension of the descent cone, 3D - O(D^(2/3)) (docs §15.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar

from lazyrich_theory.errors import IntegrationError, ProblemError

__all__ = ["TraceLimit", "trace_limit", "recovery_threshold", "finite_d_threshold",
           "descent_dimension", "trace_limit_critical_kappa"]

#: Starting points (1 + h, c) of the minimisation over the spike and the cross block.
_STARTS = [(a, c) for a in (0.05, 0.5, 0.95) for c in (0.02, 0.2)]


@dataclass(frozen=True)
class TraceLimit:
    """The D -> inf state of :func:`trace_limit` (z units: N~ = N / D, g = b / sqrt(D)).

    Attributes
    ----------
    kappa : float
    column : bool
        Whether the linear column was free.
    loss : float
        Relative population loss (0: the teacher is recovered exactly).
    trace_change : float
        T = tr N~ - 1.
    spike_change : float
        h = betahat^T N~ betahat - 1 (-1: the teacher direction is forgotten).
    cross, bulk_trace, column_norm : float
        |c| (the betahat-perp block), the bulk's trace t, |g| (0 without the column).
    """

    kappa: float
    column: bool
    loss: float
    trace_change: float
    spike_change: float
    cross: float
    bulk_trace: float
    column_norm: float


def recovery_threshold(column: bool = True) -> float:
    """The kappa above which :func:`trace_limit` is the teacher (exact recovery) as D -> inf:
    the statistical dimension 3D of the descent cone of the trace on the positive
    semidefinite cone at a rank-one point, per D, plus 1 for the D free unknowns of the
    column -- 4, and 3 without the column (PhaseLift)."""
    return 4.0 if column else 3.0


def descent_dimension(D: int, samples: int = 400, seed: int = 0) -> float:
    """Monte-Carlo statistical dimension of the descent cone of tr N + [N psd] at a rank-one
    point of the D x D symmetric matrices (Amelunxen et al. 2014, Thm 4.3):
    min over t >= 0 of E dist^2(G, t * subdifferential) = 1 + t^2 + (D - 1)
    + E sum_i (lambda_i - t)_+^2, lambda the eigenvalues of a (D - 1) x (D - 1) Gaussian
    symmetric G (diagonal variance 1, off-diagonal 1/2).  ~3D - 2.9 D^(2/3)."""
    D, samples = int(D), int(samples)
    if D < 2 or samples < 2:
        raise ProblemError(f"descent_dimension needs D >= 2 and samples >= 2, got {D}, {samples}")
    rng = np.random.default_rng(seed)
    n = D - 1
    lam = np.empty((samples, n))
    for s in range(samples):
        a = rng.standard_normal((n, n))
        lam[s] = np.linalg.eigvalsh((a + a.T) / 2.0)   # diagonal var 1, off-diagonal 1/2

    def mean_dist2(t: float) -> float:
        return 1.0 + t * t + n + float(np.mean(np.sum(np.maximum(lam - t, 0.0) ** 2, axis=1)))

    edge = math.sqrt(2.0 * n)
    r = minimize_scalar(mean_dist2, bounds=(0.0, 2.0 * edge), method="bounded",
                        options={"xatol": 1e-8})
    return float(r.fun)


def finite_d_threshold(D: int, column: bool = True, samples: int = 400, seed: int = 0) -> float:
    """The kappa of the recovery transition of minimum-trace interpolation at finite D (the
    kinematic formula: P = statistical dimension of the descent cone, transition width
    O(sqrt(D)) in P): :func:`descent_dimension` / D, + 1 with the column.  Tends to
    :func:`recovery_threshold` like D^(-1/3)."""
    return descent_dimension(D, samples, seed) / int(D) + (1.0 if column else 0.0)


def trace_limit(kappa: float, column: bool = True) -> TraceLimit:
    """The D -> inf minimum-trace positive semidefinite interpolant of kappa D phase-retrieval
    data (module docstring): the m -> 0 limit of the interpolant, D-free.

    Parameters
    ----------
    kappa : float
        P / D, > 1 with the column (> 0 without).  With the column the loss diverges as
        kappa -> 1 (the column's norm^2 is A / (4 (kappa - 1))).
    column : bool
        The D free linear unknowns of the network's column (True: the interpolant's m -> 0
        limit).

    Returns
    -------
    TraceLimit
    """
    k_eff = float(kappa) - (1.0 if column else 0.0)
    if not (math.isfinite(k_eff) and k_eff > 0):
        raise ProblemError(f"kappa must be > {1 if column else 0} "
                           f"({'with' if column else 'without'} the column), got {kappa!r}")
    if kappa >= recovery_threshold(column):
        return TraceLimit(float(kappa), bool(column), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    h, c, q, t = _minimise(k_eff)
    T = h + t + q
    A = T * T + 2.0 * (h * h + 2.0 * c * c + q * q)
    g2 = A / (4.0 * k_eff) if column else 0.0
    return TraceLimit(float(kappa), bool(column), float((A + 4.0 * g2) / 3.0), float(T),
                      h, c, t, math.sqrt(g2))


def trace_limit_critical_kappa(column: bool = True) -> float:
    """The kappa at which :func:`trace_limit`'s loss crosses 1/2 (below it the interpolant
    memorises more than it generalises)."""
    lo = (1.0 if column else 0.0) + 1e-3
    hi = recovery_threshold(column)
    return float(brentq(lambda k: trace_limit(k, column).loss - 0.5, lo, hi,
                        xtol=1e-6))


def _bulk(k_eff: float, h: float, c: float) -> tuple[float, float]:
    """(q, t): the forced part q = c^2 / (1 + h) and the smallest bulk trace t >= 0 that
    satisfies the constraint at (h, c) (the objective grows with t); (inf, inf) where q is
    infinite (c > 0 at h = -1).  The
    constraint is 4 (c + t)^2 - k_eff ((s + t)^2 + R) >= 0 with s = h + q,
    R = 2 (h^2 + 2 c^2 + q^2): a quadratic in t whose leading coefficient 4 - k_eff is
    positive (k_eff < 3 below the threshold), so the feasible t lie above its upper root."""
    if c > 0 and not 1.0 + h > 0:
        return math.inf, math.inf
    q = c * c / (1.0 + h) if c > 0 else 0.0
    if not math.isfinite(q):
        return math.inf, math.inf
    s, R = h + q, 2.0 * (h * h + 2.0 * c * c + q * q)
    a2, a1, a0 = 4.0 - k_eff, 8.0 * c - 2.0 * k_eff * s, 4.0 * c * c - k_eff * (s * s + R)
    if a0 >= 0:
        return q, 0.0
    # a0 < 0 < a2: one root of each sign, and t must lie above the positive one
    return q, (-a1 + math.sqrt(a1 * a1 - 4.0 * a2 * a0)) / (2.0 * a2)


def _minimise(k_eff: float) -> tuple[float, float, float, float]:
    """(h, c, q, t): Nelder-Mead over (sqrt(1 + h), sqrt(c)) from :data:`_STARTS`, q and t
    from :func:`_bulk`; the best end (the teacher, T = 0, is always feasible; k_eff < 4)."""
    def unpack(y):
        return min(y[0] * y[0], 1e6) - 1.0, min(y[1] * y[1], 1e6)

    def objective(y):
        h, c = unpack(y)
        q, t = _bulk(k_eff, h, c)
        return min(h + q + t, 1e6)                  # infeasible: a finite wall

    best, best_y = 0.0, None
    for a, c in _STARTS:
        r = minimize(objective, np.sqrt([a, c]), method="Nelder-Mead",
                     options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
        if r.fun < best:
            best, best_y = float(r.fun), r.x
    if best_y is None:
        if k_eff < 3.0 - 1e-3:  # below the threshold the teacher is never the minimiser
            raise IntegrationError(f"no start of the minimisation left the teacher at "
                                   f"kappa_eff = {k_eff:g} < 3: the minimiser was not found")
        return 0.0, 0.0, 0.0, 0.0
    h, c = unpack(best_y)
    return (h, c, *_bulk(k_eff, h, c))
