"""The compiled core of the offline DMFT (docs/offline_theory.md §8): one causal time step of
the order parameters and of every Monte Carlo sample, on a non-uniform grid in
tau = 2 eta0 eps t / (alpha D).

Storage.  Two-time order parameters live in one array ``K[name, n, m]`` (index constants
in ``dmft_layout``); per-sample histories in ``S[name, i, n]``; per-sample two-time objects
(the bulk Gram Q and the Volterra resolvents L_b, L_m) are lower-triangular, stored packed
(``tri(n, m) = n (n + 1) / 2 + m``, m <= n) in ``Q``, ``LB``, ``LM`` of shape (Ns, T (T + 1) / 2).
Scalar series in ``V1[name, n]``.

Numerics (as derived): trapezoid Onsager sums with the current point implicit (a scalar
division per sample), three fixed-point passes for the current residual, Adams–Bashforth-2
for the responses and the spike amplitude, left-Riemann sums for the covariances, product
integration for the (stiff) linear column, and Gaussian fields sampled by population dynamics
(eta_i = (Ns - 1)^(-1/2) sum_{j != i} omega_ij phi_j, omega fixed Gaussian matrices), their
value at the current point taken one step behind -- or, for the spread closure's field
(par[13] = 1), solved with every sample's current point (``dmft_current``).  The storage
layout (index constants, ``tri``) is ``dmft_layout``'s.

Within a time step the samples are independent given the order parameters of the earlier
steps, so their steps run in parallel (``prange``; the caller sets the threads), and their
contributions to the shared means are then added in sample order, as one thread would: the
result does not depend on the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from lazyrich_theory.theory.offline.dmft_current import (finish_samples, joint_current_point,
                                                         resolvent_rows, solve_current)
from lazyrich_theory.theory.offline.dmft_layout import (  # the layout, re-exported in part
    C_FLOOR, CB, CBS_, CG, CRR, CU, EG2_, EHH, EQ, EQX, ER_, ERCOL_, ETG_, ETU_, ECOL_, EU2_,
    EXCOL_, EXRH_, FB, FM, FX, GB, GBAR, GM, GX, H_, JOINT_, K_NAMES, KBAR, LL, MU_, MUDET_,
    NU_, PASSES_, R_, RB, RC_, RM, RT_, RX, S_NAMES, SB, SEED_FREEZE, SG, SU, SX, TRAIN_,
    V1_NAMES, tri)
from lazyrich_theory.theory.offline.dmft_spread import (ell_row, member_rows,
                                                       relaxation_terms, resolved_bulk,
                                                       resolved_spike, spike_resolvent_rows)

__all__ = ["run_dmft", "K_NAMES", "S_NAMES", "V1_NAMES"]

@njit(cache=True)
def _responses(K, n, dt):
    """R(n, s), s < n, by AB2 (Euler for the first step) on d_t R(t, s) = -F(t, s)."""
    d = dt[n - 1]
    for s in range(n):
        for (r, f) in ((RB, FB), (RM, FM), (RX, FX)):
            if n >= 2 and s <= n - 2:
                c1, c2 = 1.0 + 0.5 * d / dt[n - 2], 0.5 * d / dt[n - 2]
                K[r, n, s] = K[r, n - 1, s] - d * (c1 * K[f, n - 1, s] - c2 * K[f, n - 2, s])
            else:
                K[r, n, s] = K[r, n - 1, s] - d * K[f, n - 1, s]
    K[RB, n, n] = K[RM, n, n] = K[RX, n, n] = 1.0


@njit(cache=True)
def _spike(V1, n, dt):
    """mu(n) = mu(n-1) - int E[xi r h] (AB2); the seed-free amplitude shares its growth."""
    d = dt[n - 1]
    if n >= 2:
        c1, c2 = 1.0 + 0.5 * d / dt[n - 2], 0.5 * d / dt[n - 2]
        inc = -d * (c1 * V1[EXRH_, n - 1] - c2 * V1[EXRH_, n - 2])
    else:
        inc = -d * V1[EXRH_, n - 1]
    V1[MU_, n] = V1[MU_, n - 1] + inc
    V1[MUDET_, n] = V1[MUDET_, n - 1] * V1[MU_, n] / V1[MU_, n - 1]


@njit(cache=True)
def _covariances(K, n, dt, Vlin, kappa, eps):
    """C_b, C_g, C_u at (n, m <= n); returns the seed variance (1/kappa) int int R_x R_x S_x."""
    vb, vg, vx, vu = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for b in range(n):
        for a in range(n):
            vb[b] += K[RB, n, a] * dt[a] * K[SB, a, b]
            vg[b] += K[RM, n, a] * dt[a] * K[SG, a, b]
            vx[b] += K[RX, n, a] * dt[a] * K[SX, a, b]
            vu[b] += Vlin[n, a] * K[SU, a, b]
    for m in range(n + 1):
        sb = sg = su = 0.0
        for b in range(m):
            sb += vb[b] * K[RB, m, b] * dt[b]
            sg += vg[b] * K[RM, m, b] * dt[b]
            su += vu[b] * Vlin[m, b]
        K[CB, n, m] = K[CB, m, n] = K[RB, n, 0] * K[RB, m, 0] + sb / kappa
        K[CG, n, m] = K[CG, m, n] = sg / kappa
        K[CU, n, m] = K[CU, m, n] = su / (eps * eps * kappa)
    ss = 0.0
    for b in range(n):
        ss += vx[b] * K[RX, n, b] * dt[b]
    return ss / kappa


@njit(cache=True)
def _seed(K, V1, n, ss, frozen, ae, b2):
    """The finite-D seed of the spike: mu_eff^2 = mu_det^2 (1 + nu), nu frozen once the spike
    matters (alpha eps mu^2 / b2 > SEED_FREEZE).  Returns the new ``frozen``."""
    if frozen:
        V1[NU_, n] = V1[NU_, n - 1]
        return True
    V1[NU_, n] = ss / K[RX, n, 0] ** 2
    V1[MU_, n] = V1[MUDET_, n] * math.sqrt(1.0 + V1[NU_, n])
    return V1[MU_, n] ** 2 * ae / b2 > SEED_FREEZE


@njit(cache=True)
def _kbar(K, n, W, Wc, ae, kappa, D, anc, split):
    """Row n of the sample-averaged memorisation kernel (the null-space split of the linear
    column, approximation A6; ``anc``: the coefficient of the anomalous term, 1 or 0;
    ``split``: 1, or 0 to switch the split off)."""
    c = -split * ae / kappa
    for s in range(n):
        K[KBAR, n, s] = c * W[s] * (K[RB, n, s] * K[EQ, n - 1, s]
                                    + anc * K[RX, n, s] * K[EQX, n - 1, s] / D
                                    + K[RM, n, s] * K[EHH, n - 1, s])
    K[KBAR, n, n] = c * Wc * (K[EQ, n - 1, n - 1] + anc * K[EQX, n - 1, n - 1] / D
                              + K[EHH, n - 1, n - 1])


@njit(cache=True)
def _noise(S, i, n, zg, zu, Rm, dt, Vlin, kappa, eps, src):
    """The sample's Gaussian fields at n: spike tilt g and linear-column input theta_u, from
    the population-dynamics draws of the other samples at n - 1 (the column's from
    ``S[src]``: its output, or the residual in the spread closure)."""
    Ns = zg.shape[0]
    e1 = e2 = 0.0
    for j in range(Ns):
        if j != i:
            e1 += zg[i, j] * S[R_, j, n - 1] * S[H_, j, n - 1]
            e2 += zu[i, j] * S[src, j, n - 1]
    S[ETG_, i, n - 1] = e1 / math.sqrt(Ns - 1.0)
    S[ETU_, i, n - 1] = e2 / math.sqrt(Ns - 1.0)
    gi = ui = 0.0
    for a in range(n):
        gi += Rm[n, a] * dt[a] * S[ETG_, i, a]
        ui += Vlin[n, a] * S[ETU_, i, a]
    return gi / math.sqrt(kappa), ui / (eps * math.sqrt(kappa))


@njit(cache=True)
def _bulk_gram(K, S, Q, i, n, W, an, kappa, kb, pcol, qt):
    """The sample's bulk Gram against the new cavity field: fills pcol (z(m).theta(n)),
    qt (the explicit part of Q(n, m)) and returns the explicit part of Q(n, n); kb holds the
    bulk Onsager weights of row n."""
    for m in range(n):              # kb holds W r pcol / kappa of the earlier rows meanwhile
        v = K[CB, m, n]
        for s in range(m):
            v -= (K[RB, m, s] + an * K[RX, m, s]) * kb[s]
        pcol[m] = v / (1.0 + S[CBS_, i, m])
        kb[m] = W[m] * S[R_, i, m] / kappa * pcol[m]
    for s in range(n):
        kb[s] = W[s] * (K[RB, n, s] + an * K[RX, n, s]) * S[R_, i, s] / kappa
    qq = K[CB, n, n]
    for s in range(n):
        qq -= kb[s] * pcol[s]
    for m in range(n):
        qt[m] = pcol[m]
    # qt[m] -= sum_s kb[s] Q(s, m), Q symmetric: read each packed row s (Q(s, j), j <= s) once,
    # contiguously -- its entry j feeds qt[j] (through kb[s]) and qt[s] (through kb[j]).
    for s in range(n):
        base, ks, acc = tri(s, 0), kb[s], 0.0
        for j in range(s):
            q = Q[i, base + j]
            qt[j] -= ks * q
            acc += kb[j] * q
        qt[s] -= ks * Q[i, base + s] + acc
    for s in range(n):
        qq -= kb[s] * qt[s]
    return qq


@njit(cache=True)
def _spike_explicit(K, S, i, n, W, xi_i, mu_n, gi, kappa):
    """The explicit part of the spike field h(n)."""
    hs = xi_i * mu_n + gi
    for s in range(n):
        hs -= W[s] * K[RM, n, s] * S[R_, i, s] * S[H_, i, s] / kappa
    return hs


@njit(cache=True)
def _linear_explicit(S, i, n, ps, Wpsi):
    """The explicit part of the linear column's product integral A[rt](n)."""
    lin = ps[n] * S[RT_, i, 0]
    for j in range(n - 1):
        lin += Wpsi[n, j] * (S[RT_, i, j + 1] - S[RT_, i, j])
    return lin


@njit(cache=True)
def _spread_explicit(K, S, i, n, kappa):
    """The explicit part -theta(n) - sum_{s < n} ell[n, s] r(s) of (12.1): theta = ell eta with
    eta the population-dynamics field of the residuals (covariance kappa E[r r']), its
    current value taken one step behind, like the other fields (a first guess, with the
    joint current point: ``dmft_current.joint_current_point`` replaces it)."""
    th = K[LL, n, n] * S[ETU_, i, n - 1]
    past = 0.0
    for s in range(n):
        th += K[LL, n, s] * S[ETU_, i, s]
        past += K[LL, n, s] * S[R_, i, s]
    return -math.sqrt(kappa) * th - past


@njit(cache=True)
def _accumulate(K, S, V1, Q, LB, LM, i, n, xi_i, gi, ui, col, ae, fz):
    """Add sample i's contributions at n to the memory kernels, noise sources and means
    (``col``: the column's output r - rho; ``fz``: the linear column's screening of the
    spike's Gauss-Newton term)."""
    inv = 1.0 / S.shape[1]
    x2, rn, hn, rcn = xi_i * xi_i, S[R_, i, n], S[H_, i, n], S[RC_, i, n]
    fm = rn + fz * ae * hn * hn
    for sg in range(n + 1):
        lb = LB[i, tri(n, sg)]
        K[GB, n, sg] += rn * lb * inv
        K[GX, n, sg] += x2 * rn * lb * inv
        K[GM, n, sg] += fm * LM[i, tri(n, sg)] * inv
    for m in range(n + 1):
        q = Q[i, tri(n, m)]
        v = rn * S[R_, i, m]
        K[SB, n, m] += v * q * inv
        K[SX, n, m] += x2 * v * q * inv
        K[SG, n, m] += v * hn * S[H_, i, m] * inv
        K[SU, n, m] += rcn * S[RC_, i, m] * inv
        K[EQ, n, m] += q * inv
        K[EQX, n, m] += x2 * q * inv
        K[EHH, n, m] += hn * S[H_, i, m] * inv
        K[CRR, n, m] += v * inv
    V1[EXRH_, n] += xi_i * rn * hn * inv
    V1[TRAIN_, n] += rn * rn * inv
    V1[ER_, n] += rn * inv
    V1[EG2_, n] += gi * gi * inv
    V1[EU2_, n] += ui * ui * inv
    V1[ECOL_, n] += col * col * inv
    V1[EXCOL_, n] += xi_i * col * hn * inv
    V1[ERCOL_, n] += rn * col * inv


@njit(cache=True)
def _sample_step(K, S, V1, Q, LB, LM, i, n, xi, zg, zu, dt, W, Vlin, ps, Wpsi, par, ufac,
                 work):
    """Advance sample i to grid point n (noise, bulk Gram, spike, linear column, implicit
    current point, resolvent rows); it writes only sample i's own storage, and returns its
    Gaussian fields (g, theta_u) and the column's output r - rho for :func:`_accumulate`.
    With the joint current point (par[13] = 1) the current point is a first guess (the
    field one step behind): its explicit parts go to ``work[5]`` and the resolvent rows wait
    for ``dmft_current.joint_current_point``."""
    kappa, D, eps = par[0], par[3], par[5]
    x2 = xi[i] * xi[i]
    gi, ui = _noise(S, i, n, zg, zu, K[RM], dt, Vlin, kappa, eps,
                    R_ if par[10] > 0.0 else RC_)
    ui *= ufac
    kb, pcol, qt = work[0], work[1], work[2]
    qq = _bulk_gram(K, S, Q, i, n, W, par[7] * x2 / D, kappa, kb, pcol, qt)
    hs = _spike_explicit(K, S, i, n, W, xi[i], V1[MU_, n], gi, kappa)
    if par[10] > 0.0:
        lin = _spread_explicit(K, S, i, n, kappa)
    else:
        lin = _linear_explicit(S, i, n, ps, Wpsi)
    ons0 = 0.0
    for s in range(n):
        ons0 += K[KBAR, n, s] * S[R_, i, s]
    Wc = 0.5 * dt[n - 1]
    rn, hn, qnn, rton, rcn, c, rho = solve_current(K, S, i, n, x2, hs, qq, lin, ons0, ui,
                                                    Wc, Wpsi, par)
    S[CBS_, i, n], S[R_, i, n], S[H_, i, n] = c, rn, hn
    S[RT_, i, n], S[RC_, i, n] = rton, rcn
    if par[13] > 0.0:               # the current point is solved with the other samples
        st = work[5]                # (dmft_current.joint_current_point reads this layout):
        e = lin + math.sqrt(kappa) * K[LL, n, n] * S[ETU_, i, n - 1]    # lin without eta(n)
        st[0], st[1], st[2], st[3], st[4], st[5], st[6] = hs, qq, e, ons0, ui, qnn, rho
        return gi, ui, rn - rho
    resolvent_rows(K, S, Q, LB, LM, i, n, W, Wc, kb, qt, qnn, c, rn, hn, par, work)
    return gi, ui, rn - rho


@njit(cache=True, parallel=True)
def _all_samples(K, S, V1, Q, LB, LM, n, xi, zg, zu, dt, W, Vlin, ps, Wpsi, par, ufac, work,
                 gu, Zs, Ts):
    """Every sample's step at n, in parallel (each writes only its own rows of S, Q, LB, LM
    and ``work[i]``), then their contributions to the shared means in sample order (the same
    sums, in the same order, as one thread)."""
    for i in prange(xi.size):
        gu[0, i], gu[1, i], gu[2, i] = _sample_step(K, S, V1, Q, LB, LM, i, n, xi, zg, zu, dt,
                                                    W, Vlin, ps, Wpsi, par, ufac, work[i])
    if par[13] > 0.0:
        V1[JOINT_, n], V1[PASSES_, n] = joint_current_point(K, S, n, xi, zu, Zs, Ts, dt,
                                                            Wpsi, par, work)
        finish_samples(K, S, Q, LB, LM, n, W, dt, par, work, gu)
    for i in range(xi.size):
        _accumulate(K, S, V1, Q, LB, LM, i, n, xi[i], gu[0, i], gu[1, i], gu[2, i], par[1],
                    par[6])


@njit(cache=True)
def _least_squares_factor(K, V1, n, kappa, alpha):
    """Closure A7 (``column_closure="least_squares"``): the factor <= 1 on the linear column's
    cavity field theta_u at n that brings its variance alpha^2 C_u down to the least-squares
    value kappa / (kappa - 1) E[(r - rho)^2] of the column's training-set output, both at n - 1
    (docs/offline_theory.md §12.4); 1 before the column has a population norm."""
    cu = alpha * alpha * K[CU, n - 1, n - 1]
    if n < 2 or cu <= 0.0:
        return 1.0
    return min(1.0, math.sqrt(kappa / (kappa - 1.0) * V1[ECOL_, n - 1] / cu))


@njit(cache=True)
def _close_step(K, n):
    """Symmetrise the noise sources and form F(n, s) = sum_{s <= sigma <= n}
    Gamma(n, sigma) R(sigma, s)."""
    for m in range(n):
        for k in (SB, SG, SX, SU, CRR):
            K[k, m, n] = K[k, n, m]
    for s in range(n + 1):
        for (f, g, r) in ((FB, GB, RB), (FM, GM, RM), (FX, GX, RX)):
            acc = 0.0
            for sg in range(s, n + 1):
                acc += K[g, n, sg] * K[r, sg, s]
            K[f, n, s] = acc


@njit(cache=True)
def _initial(K, S, V1, Q, LB, LM, xi, par):
    """t = 0: M = I, u = 0 (r = -y), the spike amplitude 1/sqrt(D)."""
    ae, b2, D = par[1], par[2], par[3]
    V1[MU_, 0] = V1[MUDET_, 0] = 1.0 / math.sqrt(D)
    K[RB, 0, 0] = K[RM, 0, 0] = K[RX, 0, 0] = K[CB, 0, 0] = 1.0
    for i in range(xi.size):
        x2 = xi[i] * xi[i]
        h = xi[i] * V1[MU_, 0]
        rho = 0.5 * ae * (h * h - x2 / D) - 0.5 * b2 * x2
        S[H_, i, 0], S[R_, i, 0], S[RT_, i, 0], S[RC_, i, 0] = h, rho, rho, rho
        Q[i, 0] = LB[i, 0] = LM[i, 0] = 1.0
        _accumulate(K, S, V1, Q, LB, LM, i, 0, xi[i], 0.0, 0.0, 0.0, ae, par[6])
    _close_step(K, 0)


@njit(cache=True)
def run_dmft(tau, xi, zg, zu, ps, Wpsi, Vlin, par, Zs, Ts):
    """Integrate the DMFT on the grid ``tau``.

    Parameters
    ----------
    tau : np.ndarray
        The grid (tau[0] = 0).
    xi : np.ndarray
        The samples' teacher projections (Ns).
    zg, zu : np.ndarray
        (Ns, Ns) standard Gaussian matrices of the population-dynamics noise.
    ps, Wpsi, Vlin : np.ndarray
        The linear column's psi(tau_n), product-integration weights and R_u interval
        integrals (``dmft.linear_channel``).
    par : np.ndarray
        (kappa, alpha eps, b2, D, alpha, eps, fz, anc, a7, split, spread, resolved,
        inv_a, joint): fz the
        linear column's screening of the spike's Gauss-Newton term (1 - 1/kappa; 1 without
        the column), anc the coefficient of the anomalous Onsager term (1; 0 to switch it
        off), a7 1 for the least-squares closure of the column's cavity field
        (:func:`_least_squares_factor`), else 0; split 1 for the null-space split A6'
        (:func:`_kbar`), 0 to switch it off;
        spread 1 for the fast column's closure (12.1) (``dmft_spread``; then split = 0 and
        the column's psi, Wpsi, Vlin are not used), else 0; resolved (par[11], spread only)
        0 for first-order memorisation, 1 with the bulk's part resolved, 2 with the spike's
        too; inv_a (par[12], spread only) eps kappa / alpha for the column at its finite
        speed, (12.2) of §12.4, 0 for an instantaneous column; joint (par[13], spread
        only) 1 to solve the population field at the current point with the residuals, 0
        to take it one step behind.
    Zs, Ts : np.ndarray
        The complex Schur form of the population matrix, (Z, Z^H) stacked and T
        (``dmft_population.population_schur``; used only with par[13] = 1, else complex
        arrays of shapes (2, 1, 1) and (1, 1)).

    Returns
    -------
    (K, V1)
        The two-time order parameters and the scalar series (K_NAMES, V1_NAMES).
    """
    T, Ns = tau.size, xi.size
    kappa, ae, b2, D, eps = par[0], par[1], par[2], par[3], par[5]
    dt = np.empty(T)
    dt[:T - 1] = tau[1:] - tau[:T - 1]
    dt[T - 1] = dt[T - 2]
    W = np.empty(T)
    W[0] = 0.5 * dt[0]
    for s in range(1, T):
        W[s] = 0.5 * (dt[s - 1] + dt[s])
    K = np.zeros((len(K_NAMES), T, T))
    S = np.zeros((len(S_NAMES), Ns, T))
    V1 = np.zeros((len(V1_NAMES), T))
    npk = T * (T + 1) // 2
    Q, LB, LM = np.zeros((Ns, npk)), np.zeros((Ns, npk)), np.zeros((Ns, npk))
    work, gu = np.zeros((Ns, 6, T)), np.zeros((3, Ns))
    sp = par[10] > 0.0              # the spread closure's per-sample operators G_nu, K_nu
    ts = T if sp else 1             # and its scratch: allocated only when it runs
    GV = np.zeros((Ns, npk if sp else 1))
    KN, acc = np.zeros((Ns, ts)), np.zeros((Ns, ts))
    Am, Bm = np.zeros((ts, ts)), np.zeros((ts, ts))
    full = sp and par[11] > 1.5     # "full": the spike's memorisation resolved too
    LS = np.zeros((Ns, npk if full else 1))
    _initial(K, S, V1, Q, LB, LM, xi, par)
    if full:
        LS[:, 0] = 1.0
    lam = relaxation_terms(tau, par[12] if sp else 0.0)    # the spread column's (12.2)
    if sp:
        ell_row(0, KN, GV, K[LL], K[GBAR], kappa, Am, Bm, acc, lam)
    frozen, ufac = False, 1.0
    for n in range(1, T):
        _responses(K, n, dt)
        _spike(V1, n, dt)
        ss = _covariances(K, n, dt, Vlin, kappa, eps)
        frozen = _seed(K, V1, n, ss, frozen, ae, b2)
        _kbar(K, n, W, 0.5 * dt[n - 1], ae, kappa, D, par[7], par[9])
        if sp:
            member_rows(n, K[RB, n], K[RX, n], K[RM, n], Q, S[H_], xi, W, 0.5 * dt[n - 1],
                        -ae / kappa, par[7] / D, KN)
            if par[11] > 0.0:
                resolved_bulk(n, K[RB], K[RX], LB, Q, xi, W, -ae / kappa, par[7] / D, KN)
            if full:
                resolved_spike(n, K[RM], LS, S[H_], W, -ae / kappa, KN)
            ell_row(n, KN, GV, K[LL], K[GBAR], kappa, Am, Bm, acc, lam)
        if par[8] > 0.0:
            ufac = _least_squares_factor(K, V1, n, kappa, par[4])
        _all_samples(K, S, V1, Q, LB, LM, n, xi, zg, zu, dt, W, Vlin, ps, Wpsi, par, ufac, work,
                     gu, Zs, Ts)
        if full:
            spike_resolvent_rows(n, K[RM, n], S[R_], LS, W, 0.5 * dt[n - 1], kappa, C_FLOOR)
        _close_step(K, n)
    return K, V1
