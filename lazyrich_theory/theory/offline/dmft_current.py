"""The current grid point of the offline DMFT's causal step (``dmft_kernels``): each Monte
Carlo sample's implicit solve for its residual, spike field and bulk Gram at the new point, its
resolvent rows, and, in the spread closure, the joint solve of every sample's current point
with the population field at that point (``dmft_population``; docs/offline_theory.md §12.4,
"The noise at the current point")."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lazyrich_theory.theory.offline.dmft_layout import (C_FLOOR, CBS_, H_, KBAR, LL, R_,
                                                        RC_, RM, RT_, tri)
from lazyrich_theory.theory.offline.dmft_population import population_field, population_solve

__all__ = ["solve_current", "resolvent_rows", "joint_current_point", "finish_samples",
           "JOINT_PASSES"]

#: Most passes of the spread closure's joint current point (:func:`joint_current_point`).
JOINT_PASSES = 30


@njit(cache=True)
def solve_current(K, S, i, n, x2, hs, qq, lin, ons0, ui, Wc, Wpsi, par):
    """Three fixed-point passes for the sample's current (r, h, Q(n, n), rt, rc) with the
    current-point Onsager terms implicit; returns them and the final bulk factor c.  In the
    spread closure (par[10] = 1) ``lin`` is -theta - sum_{s < n} ell[n, s] r(s) and
    r = (rho + lin) / (1 + ell[n, n]) (equation (12.1))."""
    kappa, ae, b2, D, alpha = par[0], par[1], par[2], par[3], par[4]
    spread, gl = par[10] > 0.0, 1.0 / (1.0 + K[LL, n, n])
    an = par[7] * x2 / D
    rn = S[R_, i, n - 1]
    hn = qnn = rton = rcn = 0.0
    for _ in range(3):
        c = max(Wc * rn * (1.0 + an) / kappa, C_FLOOR)
        hn = hs / (1.0 + max(Wc * rn / kappa, C_FLOOR))
        qnn = qq / (1.0 + c) ** 2
        rho = 0.5 * ae * (hn * hn + qnn - 1.0 - x2 / D) - 0.5 * b2 * x2
        if spread:
            rton = rho + lin
            rn = gl * rton
            rcn = rn - rho
            continue
        ons = ons0 + K[KBAR, n, n] * rn
        rton = rho - ons + alpha * ui
        rcn = lin + Wpsi[n, n - 1] * (rton - S[RT_, i, n - 1])
        rn = rcn + ons
    return rn, hn, qnn, rton, rcn, max(Wc * rn * (1.0 + an) / kappa, C_FLOOR), rho


@njit(cache=True)
def resolvent_rows(K, S, Q, LB, LM, i, n, W, Wc, kb, qt, qnn, c, rn, hn, par, work):
    """Store Q(n, .) and the rows n of the sample's bulk and spike Volterra resolvents
    (``work[3]``, ``work[4]``: scratch rows, so that nothing is allocated per sample)."""
    kappa, ae, fz = par[0], par[1], par[6]
    for m in range(n):
        Q[i, tri(n, m)] = qt[m] / (1.0 + c)
    Q[i, tri(n, n)] = qnn
    cm = max(Wc * (rn + fz * ae * hn * hn) / kappa, C_FLOOR)
    acb, acm = work[3], work[4]
    for sg in range(n):
        acb[sg] = acm[sg] = 0.0
    acb[n] = acm[n] = 1.0
    for s in range(n):
        k1 = kb[s]
        k2 = W[s] * K[RM, n, s] * (S[R_, i, s] + fz * ae * S[H_, i, s] ** 2) / kappa
        bs = tri(s, 0)
        for sg in range(s + 1):
            acb[sg] -= k1 * LB[i, bs + sg]
            acm[sg] -= k2 * LM[i, bs + sg]
    bn = tri(n, 0)
    for sg in range(n + 1):
        LB[i, bn + sg] = acb[sg] / (1.0 + c)
        LM[i, bn + sg] = acm[sg] / (1.0 + cm)


@njit(cache=True, parallel=True)
def _current_pass(K, S, n, xi, eta, dt, Wpsi, par, work, res):
    """Each sample's current point with the population field ``eta`` at n (``work[i, 5, 2]``:
    the sample's explicit terms e, the field's part excluded); ``res[i]`` gets the sample's
    r(n) and ``work[i, 5, 6]`` its rho."""
    l, sq, Wc = K[LL, n, n], math.sqrt(par[0]), 0.5 * dt[n - 1]
    for i in prange(xi.size):
        st = work[i, 5]
        lin = st[2] - sq * l * eta[i]
        rn, hn, qnn, rton, rcn, c, rho = solve_current(K, S, i, n, xi[i] * xi[i], st[0],
                                                        st[1], lin, st[3], st[4], Wc, Wpsi,
                                                        par)
        S[CBS_, i, n], S[R_, i, n], S[H_, i, n] = c, rn, hn
        S[RT_, i, n], S[RC_, i, n] = rton, rcn
        st[5], st[6] = qnn, rho
        res[i] = rn


@njit(cache=True)
def joint_current_point(K, S, n, xi, zu, Zs, Ts, dt, Wpsi, par, work):
    """The spread closure's current point solved jointly over the samples (module
    ``dmft_population``): passes of the linear solve (1 + c W) r = (rho + e) / (1 + l) with
    each sample's rho frozen, then each sample's own (nonlinear) current point with the new
    field, until r moves by less than 1e-12 of its size (at most ``JOINT_PASSES``).  Returns
    the last pass's relative change max |r_new - r| / max |r_new| and the number of passes
    (diagnostics)."""
    Ns = xi.size
    l, sq = K[LL, n, n], math.sqrt(par[0])
    c = sq * l / (1.0 + l)
    b, r, eta, res = np.empty(Ns), np.empty(Ns), np.empty(Ns), np.empty(Ns)
    passes = 0
    while passes < JOINT_PASSES:
        passes += 1
        for i in range(Ns):
            st = work[i, 5]
            b[i] = (st[6] + st[2]) / (1.0 + l)
        population_solve(Zs, Ts, c, b, r)
        if c != 0.0:                # W r from the solve: (1 + c W) r = b
            for i in range(Ns):
                eta[i] = (b[i] - r[i]) / c
        else:
            population_field(zu, r, eta)
        _current_pass(K, S, n, xi, eta, dt, Wpsi, par, work, res)
        dif = big = 0.0
        for i in range(Ns):
            dif = max(dif, abs(res[i] - r[i]))
            big = max(big, abs(res[i]))
        if dif <= 1e-12 * big:
            break
    return (dif / big if big > 0.0 else 0.0), passes


@njit(cache=True, parallel=True)
def finish_samples(K, S, Q, LB, LM, n, W, dt, par, work, gu):
    """The resolvent rows of every sample once its current point is final (joint solve)."""
    Wc = 0.5 * dt[n - 1]
    for i in prange(S.shape[1]):
        st = work[i, 5]
        resolvent_rows(K, S, Q, LB, LM, i, n, W, Wc, work[i, 0], work[i, 2], st[5],
                        S[CBS_, i, n], S[R_, i, n], S[H_, i, n], par, work[i])
        gu[2, i] = S[R_, i, n] - st[6]
