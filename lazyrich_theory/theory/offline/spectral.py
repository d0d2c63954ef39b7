"""The spectral (two-timescale) closure of offline grokking: frozen bulk basis + a
two-dimensional spike, driven by the per-sample law of the plateau (docs/offline_theory.md §5–7).

State (D-independent size): the bulk profile m(l, s) -- the eigenvalue of M along the plateau
eigenvector at l, the basis frozen (approximation A3) -- on ``n_bulk`` cells, and the 2 x 2 spike
block N(s) of M in span{betahat, e2} (A4).  Rich clock s = eta0 eps t / alpha (t in GD steps):

    d log m(l)/ds = -(4/D) E[r w(r0, l)],       dN/ds = -(G_Q N + N G_Q),   G_Q = (2/D) E[r S S^T],
    q = (alpha eps/2) [ sum_l (m(l) - 1) w(r0, l) p_l + (S^T N S - (v1.z)^2) / D ],
    q = A y + B g0 + q'' (L2 projection),  r = (1 - A + B/(kappa-1)) r0 + (1 - 1/kappa) q'',

S = (xi, e2.z) the spike features of a sample (per-sample mean field A5), the linear part
adiabatic (A1) with the exact in-span bookkeeping (I - Pi) y = -r0, (I - Pi) g0 = r0/(kappa-1)
and a generic leave-one-out treatment of q'' (A6).  The curves depend on alpha and eps only
through alpha eps once time is read on the rich clock s (exactly, in this closure): that is
what makes a phase diagram cheap (:func:`rich_clock_curves`).

The lazy transient (the linear column relaxing with the Marchenko–Pastur spectrum of X^T X) is
added as the inner solution of a matched (additive composite) expansion, :func:`lazy_transient`.

Integration (``spectral_kernels``): the flow in reduced form (O((n_bulk + 3)^2) per right-hand
side, the sums over samples done once per closure), N = v v^T integrated through its rank-one
factor (N(0) = q1 q1^T), an L-stable Rosenbrock method (RODAS4) in Numba; the per-sample
:func:`_closure_rhs` is the reference it is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.theory.offline.plateau import (
    bulk_cells,
    mp_rule,
    plateau_spectrum,
    sample_law,
)
from lazyrich_theory.theory.offline.spectral_kernels import (
    STATUS_MESSAGES,
    ClosureOperators,
    closure_operators,
    make_work,
    rodas_integrate,
    spike_moments,
    wick_terms,
)

__all__ = ["SpectralClosure", "build_closure", "rich_clock_curves", "rich_clock_crossings",
           "lazy_transient", "N_BULK", "LOSS_KEYS"]

#: Cells of equal spectral mass that discretise the frozen bulk basis.
N_BULK = 80
#: What :func:`rich_clock_curves` returns at every time (besides ``s``).
LOSS_KEYS = ("population_loss", "train_loss", "linear_power", "variance", "misalignment",
             "alignment", "trace_dM", "frob_dM", "spike_strength", "spike_overlap")


@dataclass(frozen=True)
class SpectralClosure:
    """Everything the closure's right-hand side needs (built once per (kappa, b2, D)).

    Attributes
    ----------
    kappa, b2, D : float
    wb : np.ndarray
        (n_samples, n_cells) per-sample bulk weights w(r0, l) (``plateau.bulk_cells``).
    pb : np.ndarray
        Cell masses.
    ws, xi, g, y, r0, z2, v1z : np.ndarray
        Per-sample weights, xi, g0, label, plateau residual and the spike features e2.z, v1.z.
    q1 : np.ndarray
        The plateau outlier's coordinates in (betahat, e2): N(0) = q1 q1^T.
    ey2, sg2 : float
        E[y^2] and Var g0.
    omega0, lam1 : float
        The outlier's squared overlap with betahat and eigenvalue (0, NaN below BBP).
    tail : np.ndarray
        (mass cut off by the finite-P cut, mean r0^2 over it): the train loss counts those
        samples at their plateau residual, rescaled like r0.
    ops : ClosureOperators
        The flow in reduced form (``spectral_kernels``), computed from the above.
    """

    kappa: float
    b2: float
    D: float
    wb: np.ndarray
    pb: np.ndarray
    ws: np.ndarray
    xi: np.ndarray
    g: np.ndarray
    y: np.ndarray
    r0: np.ndarray
    z2: np.ndarray
    v1z: np.ndarray
    q1: np.ndarray
    ey2: float
    sg2: float
    omega0: float
    lam1: float
    tail: np.ndarray
    ops: ClosureOperators = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", closure_operators(
            self.wb, self.pb, self.ws, self.xi, self.g, self.y, self.r0, self.z2, self.v1z,
            self.q1, self.kappa, self.D, self.b2, self.ey2))


def build_closure(kappa: float, b2: float, D: float, n_bulk: int = N_BULK) -> SpectralClosure:
    """The plateau spectrum, the bulk cells and the spike features of the per-sample law.

    Parameters
    ----------
    kappa, b2, D : float
        P / D (> 1), |beta|^2 / D in convention-A units, the input dimension.
    n_bulk : int
        Cells of the bulk profile.

    Returns
    -------
    SpectralClosure
    """
    spec = plateau_spectrum(kappa, b2, D)
    law = sample_law(kappa, b2, D)
    keep = law.weight > 0
    xi, g, eta, r0 = law.xi[keep], law.g[keep], law.eta[keep], law.r0[keep]
    ws = law.weight[keep] / law.weight[keep].sum()
    _, pb, wb = bulk_cells(spec, r0, kappa, n_bulk)
    om = spec.omega0
    if spec.has_outlier and om < 1.0:
        v1z = (math.sqrt(om) * xi + math.sqrt(1.0 - om) * eta) / (1.0 + r0 * spec.m1 / kappa)
        z2 = (v1z - math.sqrt(om) * xi) / math.sqrt(1.0 - om)
        q1 = np.array([math.sqrt(om), math.sqrt(1.0 - om)])
    else:   # no outlier: the block starts as (betahat, a bulk-like direction)
        v1z, z2, q1 = xi.copy(), eta.copy(), np.array([1.0, 0.0])
    return SpectralClosure(float(kappa), float(b2), float(D), wb, pb, ws, xi, g, law.y[keep],
                           r0, z2, v1z, q1, law.ey2, law.sg2, om, spec.lam1,
                           np.array([law.tail_mass, law.tail_r02]))


@njit(cache=True)
def _residual(state, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D):
    """(r, q'', A, B) of the closure at ``state`` = (log m[0..nb), N00, N01, N11)."""
    nb = pb.size
    dm = np.empty(nb)
    for j in range(nb):
        dm[j] = (math.exp(state[j]) - 1.0) * pb[j]
    n00, n01, n11 = state[nb], state[nb + 1], state[nb + 2]
    q = 0.5 * ae * (wb @ dm + (n00 * xi * xi + 2.0 * n01 * xi * z2 + n11 * z2 * z2
                               - v1z * v1z) / D)
    # L2 projection of q on (y, g0) under the sample weights (2 x 2 normal equations)
    syy, sgg, syg = np.sum(ws * y * y), np.sum(ws * g * g), np.sum(ws * y * g)
    qy, qg = np.sum(ws * q * y), np.sum(ws * q * g)
    det = syy * sgg - syg * syg
    A = (qy * sgg - qg * syg) / det
    B = (qg * syy - qy * syg) / det
    qp = q - A * y - B * g
    r = (1.0 - A + B / (kappa - 1.0)) * r0 + (1.0 - 1.0 / kappa) * qp
    return r, qp, A, B


@njit(cache=True)
def _closure_rhs(_s, state, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D):
    """d state / ds on the rich clock s = eta0 eps t / alpha, per sample as in the docs (the
    integration uses its reduced form, ``spectral_kernels``; the tests compare the two)."""
    nb = pb.size
    r, _, _, _ = _residual(state, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D)
    wr = ws * r
    out = np.empty(nb + 3)
    out[:nb] = -(4.0 / D) * (wr @ wb)
    g00 = (2.0 / D) * np.sum(wr * xi * xi)
    g01 = (2.0 / D) * np.sum(wr * xi * z2)
    g11 = (2.0 / D) * np.sum(wr * z2 * z2)
    n00, n01, n11 = state[nb], state[nb + 1], state[nb + 2]
    # dN = -(G N + N G) for symmetric 2 x 2 G, N
    out[nb] = -2.0 * (g00 * n00 + g01 * n01)
    out[nb + 1] = -(g00 * n01 + g01 * n11 + n00 * g01 + n01 * g11)
    out[nb + 2] = -2.0 * (g01 * n01 + g11 * n11)
    return out


@njit(cache=True)
def _closure_losses(state, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D, b2, ey2, q1,
                    tail):
    """The LOSS_KEYS values at ``state`` (population loss by the Wick formula)."""
    nb = pb.size
    r, qp, A, B = _residual(state, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D)
    # the block carries M - I as N - q1 q1^T (q1: the plateau outlier, eigenvalue 1 of M0)
    s1, s2, e00, e01, e11 = spike_moments(state, pb, q1)
    var, mis, tr, tr2 = wick_terms(s1, s2, e00, e01, e11, ae, b2, D)
    eq2 = np.sum(ws * qp * qp)
    lin = ((1.0 - A - B) ** 2 * ey2 + eq2) / (kappa - 1.0)
    train = np.sum(ws * r * r) + (1.0 - 1.0 / kappa) ** 2 * eq2 / (kappa - 1.0)
    train = (1.0 - tail[0]) * train + tail[0] * (1.0 - A + B / (kappa - 1.0)) ** 2 * tail[1]
    n00, n01, n11 = state[nb], state[nb + 1], state[nb + 2]
    half_tr, dif = 0.5 * (n00 + n11), 0.5 * (n00 - n11)
    rad = math.sqrt(dif * dif + n01 * n01)
    top = half_tr + rad
    # squared overlap of the block's top eigenvector with betahat
    ov = 0.5 * (1.0 + dif / rad) if rad > 0 else 1.0
    return np.array([lin + var + mis, train, lin, var, mis, e00, tr / D,
                     math.sqrt(max(tr2, 0.0)), ae * top / (b2 * D), ov])


@njit(cache=True)
def _loss_rows(Z, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D, b2, ey2, q1, tail):
    """The LOSS_KEYS rows at integrated states Z = (log m, v) (N = v v^T)."""
    nb = pb.size
    rows = np.empty((Z.shape[0], 10))
    state = np.empty(nb + 3)
    for k in range(Z.shape[0]):
        v0, v1 = Z[k, nb], Z[k, nb + 1]
        for j in range(nb):
            state[j] = Z[k, j]
        state[nb], state[nb + 1], state[nb + 2] = v0 * v0, v0 * v1, v1 * v1
        rows[k] = _closure_losses(state, wb, pb, ws, xi, g, y, r0, z2, v1z, kappa, ae, D,
                                  b2, ey2, q1, tail)
    return rows


def _integrate(cl: SpectralClosure, ae: float, t0: float, t_end: float, s_out: np.ndarray,
               levels: np.ndarray, rtol: float, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """The closure from its plateau state at t0 (Numba RODAS4, ``spectral_kernels``):
    (states at s_out, first crossings of levels); DivergenceError naming alpha eps on failure."""
    nb = cl.pb.size
    z0 = np.concatenate([np.zeros(nb), cl.q1])        # (log m, v): N = v v^T, v(0) = q1
    Z, cross, status, t, _, _ = rodas_integrate(
        z0, float(t0), float(t_end), np.asarray(s_out, dtype=np.float64),
        np.asarray(levels, dtype=np.float64), cl.ops, float(ae), float(rtol), float(atol),
        make_work(nb))
    if status:
        raise DivergenceError(f"the spectral closure failed at alpha eps = {ae:g} "
                              f"(kappa = {cl.kappa:g}, D = {cl.D:g}) at rich-clock "
                              f"s = {t:.6g}: {STATUS_MESSAGES[status]}", float("nan"))
    return Z, cross


def rich_clock_curves(cl: SpectralClosure, ae: float, s: np.ndarray, rtol: float = 1e-6,
                      atol: float = 1e-9) -> dict[str, np.ndarray]:
    """The closure's curves on the rich clock s = eta0 eps t / alpha (the lazy fit complete
    at s = 0+: no lazy transient here, see :func:`lazy_transient`).

    Parameters
    ----------
    cl : SpectralClosure
    ae : float
        alpha eps (the only way alpha and eps enter on this clock).
    s : np.ndarray
        Increasing times on the rich clock, s[0] >= 0.
    rtol, atol : float
        Tolerances of the integration (RODAS4 on the reduced flow, ``spectral_kernels``).

    Returns
    -------
    dict
        ``s`` and every LOSS_KEYS column; the value at s = 0 is that of the completed lazy
        fit (the plateau).

    Raises
    ------
    ProblemError
        ``s`` is empty or decreasing.
    DivergenceError
        The integration failed (blow-up or step-size underflow); the message names alpha eps.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or np.any(np.diff(s) < 0):
        raise ProblemError("rich-clock times must be a non-empty increasing 1-d array")
    Z, _ = _integrate(cl, ae, s[0], s[-1], s, np.empty(0), rtol, atol)
    rows = _loss_rows(Z, cl.wb, cl.pb, cl.ws, cl.xi, cl.g, cl.y, cl.r0, cl.z2, cl.v1z,
                      cl.kappa, float(ae), cl.D, cl.b2, cl.ey2, cl.q1, cl.tail)
    out = {k: rows[:, j] for j, k in enumerate(LOSS_KEYS)}
    out["s"] = s
    return out


def rich_clock_crossings(cl: SpectralClosure, ae: float, s_max: float,
                         levels: tuple[float, ...]) -> list[float]:
    """The first s (rich clock) at which the closure's population loss falls to each of
    ``levels`` (absolute), integrating only until the lowest is reached; inf for a level not
    reached by ``s_max``.

    Parameters
    ----------
    cl : SpectralClosure
    ae : float
        alpha eps.
    s_max : float
        Horizon on the rich clock.
    levels : tuple of float
        Absolute loss levels.

    Returns
    -------
    list of float

    Raises
    ------
    DivergenceError
        The integration failed (blow-up or step-size underflow); the message names alpha eps.
    """
    _, cross = _integrate(cl, ae, 0.0, float(s_max), np.empty(0), np.asarray(levels, float),
                          1e-6, 1e-9)
    return [float(c) for c in cross]


def lazy_transient(kappa: float, ey2: float, eta0: float, D: float,
                   t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lazy linear fit's departure from its end value (inner solution, gradient flow).

    The linear block of the initial kernel, c X X^T with c = 2 eta0 / P, fits the labels (whose
    projections on X are isotropic, of second moment E[y^2]) with the spectrum mu of X^T X:

        train(t) - train(inf)   = E[y^2] (1/kappa) int dmu(l) exp(-2 c l t),
        linear(t) - linear(inf) = E[y^2] int dmu(l) [(1 - exp(-c l t))^2 - 1] / l.

    Returns
    -------
    (d_train, d_linear) : np.ndarray
        Both vanish for t >> kappa D / (2 eta0 (sqrt(kappa) - 1)^2).
    """
    lam, w = mp_rule(kappa)
    c = 2.0 * eta0 / (kappa * D)
    e = np.exp(-c * np.outer(np.asarray(t, float), lam))
    d_train = ey2 / kappa * (e**2 @ w)
    d_lin = ey2 * (((1.0 - e) ** 2 - 1.0) / lam) @ w
    return d_train, d_lin
