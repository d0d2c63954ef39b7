"""Numba integration of the spectral closure (``spectral``): its flow in reduced form, the
exact Jacobian, and an L-stable Rosenbrock method (RODAS4) with output at given times and the
first crossings of population-loss levels.

Reduced form.  Everything the flow needs from the per-sample law is linear in

    u = ((m_1 - 1) p_1, ..., (m_nb - 1) p_nb, N00, N01, N11)

(q is linear in u, the L2 projection on (y, g0) is linear in q, r = r0 + T q), so the sums
over samples of ``spectral._closure_rhs`` are done once per closure (:func:`closure_operators`):

    h(u) = E[r omega] = h0 + ae (H u + hc),
    omega = (w(r0, l_1), ..., w(r0, l_nb), xi^2, xi e2.z, (e2.z)^2),
    d log m / ds = -(4/D) h[:nb],   G = (2/D) [[h_nb, h_nb+1], [h_nb+1, h_nb+2]],

and the population loss needs A, B (linear in u) and E[q''^2] (quadratic).  A right-hand side
costs O((nb + 3)^2) instead of O(n_samples nb).

Rank-one spike.  N(0) = q1 q1^T and dN/ds = -(G N + N G) keep N = v v^T with dv/ds = -G v, so
the state integrated is (log m, v): nb + 2 numbers.  The same flow; but the 3-number form has
an off-rank-one mode, det N ~ exp(-2 int tr G ds), that grows once tr G < 0 (late in the rich
phase) and turned rounding errors into NaN at s ~ 1e5 (kappa = 11, D = 100, alpha eps = 0.35).

Stiffness, measured: the Jacobian's spectral radius is ~0.06-0.08 (the most negative bulk
cells) while crossings and curves run to s ~ 1e5-1e6, so the flow is stiff late (the former
LSODA switched to BDF there).  At kappa = 5.5, D = 100, alpha eps = 1.5, s in [0, 1.5e6],
rtol 1e-6: Dormand-Prince (core.dopri5) 217 000 evaluations, RKC2 (core.integrators) 14 000
with errors ~1e-5 (second order), RODAS4 2 900 and 480 LU factorisations of a 46 x 46 matrix,
errors ~1e-7.  RODAS4 (Hairer & Wanner II, section IV.7: 6 stages, order 4(3), stiffly
accurate, L-stable) uses the exact Jacobian and the mixed RMS error norm of scipy's
integrators.  Output times are stepped onto; a crossing is located by re-taking the step that
contains it with a shorter length (a root-find on the method's own one-step map, accurate to
the step's local error, unlike an interpolant).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["ClosureOperators", "closure_operators", "rodas_integrate", "population_loss",
           "spike_moments", "STATUS_MESSAGES"]

# RODAS4 in the form (1/(gamma h) - J) K_i = f(z + sum_j A_ij K_j) + sum_j (C_ij / h) K_j,
# z_new = z + sum_j M_j K_j, error estimate K_6 (Hairer's rodas.f, METH = 1).
_GAMMA = 0.25
_A = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [1.544, 0.0, 0.0, 0.0, 0.0],
    [0.9466785280815826, 0.2557011698983284, 0.0, 0.0, 0.0],
    [3.314825187068521, 2.896124015972201, 0.9986419139977817, 0.0, 0.0],
    [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 0.0],
    [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0],
])
_C = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [-5.6688, 0.0, 0.0, 0.0, 0.0],
    [-2.430093356833875, -0.2063599157091915, 0.0, 0.0, 0.0],
    [-0.1073529058151375, -9.594562251023355, -20.47028614809616, 0.0, 0.0],
    [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160, 0.0],
    [8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
     -6.058818238834054],
])
#: Step control: safety factor, factor bounds, and the step limit of one integration.
_SAFETY, _FAC_MIN, _FAC_MAX, MAX_STEPS = 0.9, 0.2, 6.0, 200_000
#: Why :func:`rodas_integrate` stopped (status codes > 0).
STATUS_MESSAGES = {1: "the state became non-finite (blow-up)",
                   2: "the step size fell to zero (a blow-up in finite time?)",
                   3: f"more than {MAX_STEPS} steps"}


class ClosureOperators(NamedTuple):
    """The closure's flow in reduced form (module docstring): everything but alpha eps.

    Attributes
    ----------
    pb, q1 : np.ndarray
        Cell masses; the plateau outlier in (betahat, e2).
    h0, hc : np.ndarray
        (nb + 3,) E[r0 omega] and the constant part of E[(r - r0) omega] / ae.
    H : np.ndarray
        (nb + 3, nb + 3) the linear part of E[(r - r0) omega] / ae.
    a, b : np.ndarray
        A = ae (a.u + a0), B = ae (b.u + b0): the projection of q on (y, g0).
    Q, qv : np.ndarray
        E[q''^2] = ae^2 (u.Q u + 2 qv.u + qc).
    a0, b0, qc, kappa, D, b2, ey2 : float
    """

    pb: np.ndarray
    q1: np.ndarray
    h0: np.ndarray
    hc: np.ndarray
    H: np.ndarray
    a: np.ndarray
    b: np.ndarray
    Q: np.ndarray
    qv: np.ndarray
    a0: float
    b0: float
    qc: float
    kappa: float
    D: float
    b2: float
    ey2: float


def closure_operators(wb: np.ndarray, pb: np.ndarray, ws: np.ndarray, xi: np.ndarray,
                      g: np.ndarray, y: np.ndarray, r0: np.ndarray, z2: np.ndarray,
                      v1z: np.ndarray, q1: np.ndarray, kappa: float, D: float, b2: float,
                      ey2: float) -> ClosureOperators:
    """The reduced form of the closure whose per-sample arrays are given (``SpectralClosure``).

    Returns
    -------
    ClosureOperators
    """
    # q = ae (Phi u + phic): the 0.5 of q = (alpha eps / 2)[...] is folded in
    phi = 0.5 * np.column_stack([wb, xi * xi / D, 2.0 * xi * z2 / D, z2 * z2 / D])
    phic = -0.5 * v1z * v1z / D
    syy, sgg, syg = np.sum(ws * y * y), np.sum(ws * g * g), np.sum(ws * y * g)
    det = syy * sgg - syg * syg
    av, bv = ws * (y * sgg - g * syg) / det, ws * (g * syy - y * syg) / det
    a, a0, b, b0 = av @ phi, float(av @ phic), bv @ phi, float(bv @ phic)
    pphi = phi - np.outer(y, a) - np.outer(g, b)            # q'' = ae (pphi u + pc)
    pc = phic - a0 * y - b0 * g
    c1, c2 = 1.0 - 1.0 / kappa, 1.0 / (kappa - 1.0)
    psi = c1 * pphi + np.outer(r0, c2 * b - a)                # r - r0 = ae (psi u + psic)
    psic = c1 * pc + (c2 * b0 - a0) * r0
    w_omega = np.column_stack([wb, xi * xi, xi * z2, z2 * z2]) * ws[:, None]
    w_pphi = pphi * ws[:, None]
    return ClosureOperators(
        np.ascontiguousarray(pb, dtype=np.float64), np.asarray(q1, dtype=np.float64),
        w_omega.T @ r0, w_omega.T @ psic, np.ascontiguousarray(w_omega.T @ psi), a, b,
        np.ascontiguousarray(pphi.T @ w_pphi), w_pphi.T @ pc, a0, b0,
        float(np.sum(ws * pc * pc)), float(kappa), float(D), float(b2), float(ey2))


@njit(cache=True)
def _fill_u(z, pb, u):
    """u (module docstring) at z = (log m, v)."""
    nb = pb.size
    for j in range(nb):
        u[j] = (math.exp(z[j]) - 1.0) * pb[j]
    v0, v1 = z[nb], z[nb + 1]
    u[nb], u[nb + 1], u[nb + 2] = v0 * v0, v0 * v1, v1 * v1


@njit(cache=True)
def _drive(z, op, ae, u, h):
    """h = E[r omega] at z (u filled on the way)."""
    _fill_u(z, op.pb, u)
    n = u.size
    for i in range(n):
        acc = op.hc[i]
        for j in range(n):
            acc += op.H[i, j] * u[j]
        h[i] = op.h0[i] + ae * acc


@njit(cache=True)
def _rhs(z, op, ae, u, h, out):
    """dz/ds at z; leaves u and h of z behind."""
    _drive(z, op, ae, u, h)
    nb, c = op.pb.size, 2.0 / op.D
    for j in range(nb):
        out[j] = -2.0 * c * h[j]
    v0, v1 = z[nb], z[nb + 1]
    out[nb] = -c * (h[nb] * v0 + h[nb + 1] * v1)
    out[nb + 1] = -c * (h[nb + 1] * v0 + h[nb + 2] * v1)


@njit(cache=True)
def _jacobian(z, op, ae, u, h, J, dh):
    """d(dz/ds)/dz at z, given u and h at z (``dh``: scratch of size nb + 3)."""
    nb, c = op.pb.size, 2.0 / op.D
    v0, v1 = z[nb], z[nb + 1]
    for col in range(nb + 2):     # dh/dz_col = ae H du/dz_col
        if col < nb:
            du = ae * (u[col] + op.pb[col])             # d((e^z - 1) p)/dz = e^z p
            for i in range(nb + 3):
                dh[i] = du * op.H[i, col]
        elif col == nb:
            for i in range(nb + 3):
                dh[i] = ae * (2.0 * v0 * op.H[i, nb] + v1 * op.H[i, nb + 1])
        else:
            for i in range(nb + 3):
                dh[i] = ae * (v0 * op.H[i, nb + 1] + 2.0 * v1 * op.H[i, nb + 2])
        for i in range(nb):
            J[i, col] = -2.0 * c * dh[i]
        J[nb, col] = -c * (dh[nb] * v0 + dh[nb + 1] * v1)
        J[nb + 1, col] = -c * (dh[nb + 1] * v0 + dh[nb + 2] * v1)
    J[nb, nb] -= c * h[nb]
    J[nb, nb + 1] -= c * h[nb + 1]
    J[nb + 1, nb] -= c * h[nb + 1]
    J[nb + 1, nb + 1] -= c * h[nb + 2]


@njit(cache=True)
def spike_moments(state, pb, q1):
    """(tr(M - I), tr((M - I)^2), e00, e01, e11) at a closure state (log m, N00, N01, N11):
    the bulk sums times D are added by the caller, e = N - q1 q1^T (M - I on the block)."""
    nb = pb.size
    s1, s2 = 0.0, 0.0
    for j in range(nb):
        d = math.exp(state[j]) - 1.0
        s1 += pb[j] * d
        s2 += pb[j] * d * d
    e00 = state[nb] - q1[0] * q1[0]
    e01 = state[nb + 1] - q1[0] * q1[1]
    e11 = state[nb + 2] - q1[1] * q1[1]
    return s1, s2, e00, e01, e11


@njit(cache=True)
def wick_terms(s1, s2, e00, e01, e11, ae, b2, D):
    """(variance, misalignment, tr(M - I), tr((M - I)^2)) of the population loss's Wick
    formula from :func:`spike_moments`."""
    tr = D * s1 + e00 + e11
    tr2 = D * s2 + e00 * e00 + 2.0 * e01 * e01 + e11 * e11
    h, bD = 0.5 * ae, 0.5 * b2 * D
    trd = h * tr - bD
    trd2 = h * h * tr2 - 2.0 * h * bD * e00 + bD * bD
    return trd * trd / (D * D), 2.0 * trd2 / (D * D), tr, tr2


@njit(cache=True)
def population_loss(z, op, ae, u, state):
    """The closure's population loss at z = (log m, v) from the reduced form (``state`` is
    filled with (log m, N00, N01, N11))."""
    _fill_u(z, op.pb, u)
    nb, n = op.pb.size, u.size
    for i in range(n):
        state[i] = z[i] if i < nb else u[i]
    A, B, quad = op.a0, op.b0, op.qc
    for i in range(n):
        A += op.a[i] * u[i]
        B += op.b[i] * u[i]
        acc = op.qv[i]
        for j in range(n):
            acc += 0.5 * op.Q[i, j] * u[j]
        quad += 2.0 * acc * u[i]
    A, B = ae * A, ae * B
    lin = ((1.0 - A - B) ** 2 * op.ey2 + ae * ae * quad) / (op.kappa - 1.0)
    s1, s2, e00, e01, e11 = spike_moments(state, op.pb, op.q1)
    var, mis, _, _ = wick_terms(s1, s2, e00, e01, e11, ae, op.b2, op.D)
    return lin + var + mis


@njit(cache=True)
def _lu(M, piv):
    """In-place LU factorisation with partial pivoting (False: singular)."""
    n = M.shape[0]
    for k in range(n):
        p = k
        for i in range(k + 1, n):
            if abs(M[i, k]) > abs(M[p, k]):
                p = i
        piv[k] = p
        if M[p, k] == 0.0 or not math.isfinite(M[p, k]):
            return False
        if p != k:
            for j in range(n):
                M[k, j], M[p, j] = M[p, j], M[k, j]
        inv = 1.0 / M[k, k]
        for i in range(k + 1, n):
            f = M[i, k] * inv
            M[i, k] = f
            if f != 0.0:
                for j in range(k + 1, n):
                    M[i, j] -= f * M[k, j]
    return True


@njit(cache=True)
def _lu_solve(M, piv, x):
    """Solve in place with the factors of :func:`_lu`."""
    n = M.shape[0]
    for k in range(n):
        p = piv[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    for i in range(n):
        acc = x[i]
        for j in range(i):
            acc -= M[i, j] * x[j]
        x[i] = acc
    for i in range(n - 1, -1, -1):
        acc = x[i]
        for j in range(i + 1, n):
            acc -= M[i, j] * x[j]
        x[i] = acc / M[i, i]


class _Work(NamedTuple):
    """Scratch arrays of one integration (n = nb + 2 unknowns)."""

    f0: np.ndarray      # dz/ds at the step's start
    J: np.ndarray       # Jacobian there
    M: np.ndarray       # LU factors of 1/(gamma h) - J
    piv: np.ndarray
    K: np.ndarray       # (6, n) stages
    zs: np.ndarray      # stage state
    u: np.ndarray       # (nb + 3,) reduced coordinates
    h: np.ndarray       # (nb + 3,) drive
    state: np.ndarray   # (nb + 3,) (log m, N)
    dh: np.ndarray      # (nb + 3,) a column of dh/dz


def make_work(nb: int) -> _Work:
    """Scratch arrays for a closure of ``nb`` bulk cells."""
    n = nb + 2
    return _Work(np.empty(n), np.empty((n, n)), np.empty((n, n)), np.empty(n, np.int64),
                 np.empty((6, n)), np.empty(n), np.empty(nb + 3), np.empty(nb + 3),
                 np.empty(nb + 3), np.empty(nb + 3))


@njit(cache=True)
def _rodas_step(z, hs, op, ae, rtol, atol, w, z_new):
    """One RODAS4 step of length hs from z (w.f0 and w.J at z): z_new and the scaled error
    (inf when the stages are not finite or the matrix is singular)."""
    n = z.size
    for i in range(n):
        for j in range(n):
            w.M[i, j] = -w.J[i, j]
        w.M[i, i] += 1.0 / (_GAMMA * hs)
    if not _lu(w.M, w.piv):
        return math.inf
    for st in range(6):
        if st == 0:
            for i in range(n):
                w.K[0, i] = w.f0[i]
        else:
            for i in range(n):
                acc = z[i]
                for j in range(st):
                    acc += _A[st, j] * w.K[j, i]
                w.zs[i] = acc
            _rhs(w.zs, op, ae, w.u, w.h, w.K[st])
            for i in range(n):
                acc = w.K[st, i]
                for j in range(st):
                    acc += (_C[st, j] / hs) * w.K[j, i]
                w.K[st, i] = acc
        _lu_solve(w.M, w.piv, w.K[st])
    err = 0.0
    for i in range(n):
        z_new[i] = w.zs[i] + w.K[5, i]        # stiffly accurate: stage 6 + K6
        sc = atol + rtol * max(abs(z[i]), abs(z_new[i]))
        err += (w.K[5, i] / sc) ** 2
    err = math.sqrt(err / n)
    return err if math.isfinite(err) else math.inf


@njit(cache=True)
def _start(z, op, ae, rtol, atol, w):
    """f0 and J at z, and a first step (Hairer's heuristic for order 4)."""
    _rhs(z, op, ae, w.u, w.h, w.f0)
    _jacobian(z, op, ae, w.u, w.h, w.J, w.dh)
    d0, d1 = 0.0, 0.0
    for i in range(z.size):
        sc = atol + rtol * abs(z[i])
        d0 += (z[i] / sc) ** 2
        d1 += (w.f0[i] / sc) ** 2
    d0, d1 = math.sqrt(d0 / z.size), math.sqrt(d1 / z.size)
    return 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1


@njit(cache=True)
def _crossing(z, hs, level, op, ae, rtol, atol, w, z_try):
    """The fraction theta in (0, 1] of the step (z, hs) at which the population loss falls
    to ``level`` (it is above at 0, at or below at 1): Illinois iteration on the one-step map."""
    lo, hi = 0.0, 1.0
    g_lo = population_loss(z, op, ae, w.u, w.state) - level
    _rodas_step(z, hs, op, ae, rtol, atol, w, z_try)
    g_hi = population_loss(z_try, op, ae, w.u, w.state) - level
    side = 0
    for _ in range(60):
        if g_hi == 0.0 or hi - lo <= 1e-13:
            break
        th = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
        th = min(max(th, lo + 1e-3 * (hi - lo)), hi - 1e-3 * (hi - lo))
        _rodas_step(z, th * hs, op, ae, rtol, atol, w, z_try)
        g = population_loss(z_try, op, ae, w.u, w.state) - level
        if abs(g) <= 1e-13 * (abs(level) + 1.0):
            return th
        if g > 0.0:
            lo, g_lo = th, g
            if side == 1:
                g_hi *= 0.5
            side = 1
        else:
            hi, g_hi = th, g
            if side == -1:
                g_lo *= 0.5
            side = -1
    return hi


@njit(cache=True)
def _finite(x):
    """All entries finite (without a temporary array)."""
    for v in x:
        if not math.isfinite(v):
            return False
    return True


@njit(cache=True)
def _save(Z, k, s_out, t, z):
    """Store z as the state at every output time s_out[k:] <= t; the next k."""
    while k < s_out.size and s_out[k] <= t:
        for i in range(z.size):
            Z[k, i] = z[i]
        k += 1
    return k


@njit(cache=True)
def _check_levels(z, hs, t, z_new, levels, g_old, cross, op, ae, rtol, atol, w, z_try):
    """After an accepted step (z -> z_new over hs from t): the first downward crossing of each
    level not yet crossed (the loss at or above it before, at or below after)."""
    p_new = population_loss(z_new, op, ae, w.u, w.state)
    for i in range(levels.size):
        g_new = p_new - levels[i]
        if math.isinf(cross[i]) and g_old[i] >= 0.0 and g_new <= 0.0:
            cross[i] = t + _crossing(z, hs, levels[i], op, ae, rtol, atol, w, z_try) * hs
        g_old[i] = g_new


@njit(cache=True)
def rodas_integrate(z0, t0, t_end, s_out, levels, op, ae, rtol, atol, w):
    """Integrate the closure from (t0, z0) to t_end, stepping onto the times ``s_out``
    (increasing) and stopping at the first downward crossing of min(levels) if any.

    Returns
    -------
    (Z, cross, status, t, n_accepted, n_rejected)
        Z: the state (log m, v) at each s_out (NaN where not reached); cross: the first
        crossing of each level (inf if none); status 0 (done) or a key of STATUS_MESSAGES;
        t: where the integration stopped.
    """
    n = z0.size
    Z = np.full((s_out.size, n), np.nan)
    cross = np.full(levels.size, np.inf)
    z, z_new, z_try = z0.copy(), np.empty(n), np.empty(n)
    t, k, status, n_acc, n_rej, rejected, bad = t0, 0, 0, 0, 0, False, False
    k = _save(Z, 0, s_out, t, z)
    low, p0 = -1, population_loss(z, op, ae, w.u, w.state)
    g_old = np.empty(levels.size)
    for i in range(levels.size):
        g_old[i] = p0 - levels[i]
        if low < 0 or levels[i] < levels[low]:
            low = i
    h = _start(z, op, ae, rtol, atol, w)
    while t < t_end and status == 0:
        target = min(s_out[k], t_end) if k < s_out.size else t_end
        hs = min(h, target - t)
        hit = (target - t) - hs <= 1e-12 * max(1.0, abs(target))
        if hit:
            hs = target - t
        err = _rodas_step(z, hs, op, ae, rtol, atol, w, z_new)
        if err <= 1.0:
            if levels.size:
                _check_levels(z, hs, t, z_new, levels, g_old, cross, op, ae, rtol, atol, w,
                              z_try)
            t = target if hit else t + hs
            z, z_new = z_new, z
            n_acc += 1
            k = _save(Z, k, s_out, t, z)
            if low >= 0 and math.isfinite(cross[low]):
                break
            fac = _SAFETY * err ** -0.25 if err > 0.0 else _FAC_MAX
            h_new = hs * min(_FAC_MAX, max(_FAC_MIN, fac))
            h = min(h_new, hs) if rejected else (max(h_new, h) if hit else h_new)
            rejected = False
            _rhs(z, op, ae, w.u, w.h, w.f0)
            _jacobian(z, op, ae, w.u, w.h, w.J, w.dh)
        else:
            n_rej += 1
            rejected, bad = True, math.isinf(err)
            h = hs * (0.1 if bad else max(_FAC_MIN, _SAFETY * err ** -0.25))
        if not _finite(w.f0):
            status = 1
        elif h < 1e-13 * max(1.0, abs(t)):
            status = 1 if bad else 2
        elif n_acc + n_rej >= MAX_STEPS:
            status = 3
    return Z, cross, status, t, n_acc, n_rej
