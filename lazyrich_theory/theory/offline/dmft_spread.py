"""The fast column's leave-one-out with the spread of memorisation over samples
(docs/offline_theory.md §12.4, equation (12.1); ``column_closure="spread"``).

Time operators are lower-triangular T x T matrices acting on a history f(tau_s) as
(A f)(n) = sum_{s <= n} A[n, s] f(s), quadrature weights included.  Each Monte Carlo sample
nu has a memorisation operator K_nu (its first-order response delta rho / delta r), and the
column's leave-one-out operator ell solves

    ell^(-1) = kappa E_nu[(1 + ell - K_nu)^(-1)].

Row by row (everything causal): with G_nu = (1 + ell - K_nu)^(-1) and Gbar = E G_nu, the
diagonal ell[n, n] = l solves the scalar equation l kappa E[1 / (1 + l - K_nu[n, n])] = 1
(one root: the left side increases from 0 to kappa > 1 when K_nu[n, n] <= 0), and the rest
of the row is linear in ell[n, :n]: the recursion

    G_nu[n, s] = (delta_ns + sum_{s <= m < n} (K_nu[n, m] - ell[n, m]) G_nu[m, s]) / d_nu,
    d_nu = 1 + l - K_nu[n, n],

averaged over nu and put into row n of ell kappa Gbar = 1, gives for s < n

    sum_{s <= m < n} ell[n, m] (Gbar[m, s] - l B[m, s]) = -l A[s],
    B[m, s] = E[G_nu[m, s] / d_nu],  A[s] = E[sum_m K_nu[n, m] G_nu[m, s] / d_nu],

a triangular system solved by back substitution.

A column of finite speed (docs §12.4, (12.2)) adds its relaxation: ell (kappa Gbar + Lam) = 1
with Lam = (1 / a) d/dtau, a = alpha / (eps kappa), discretised as a backward difference
(Lam[n, n] = -Lam[n, n - 1] = lam[n] = 1 / (a dtau_n)); u(0) = 0 makes row and column 0 of
ell zero (lam[0] = inf).  It adds lam[n] to the diagonal's equation, Lam / kappa to the
back substitution's matrix and -l Lam[n, n - 1] / kappa to its right side; lam = 0 is the
instantaneous column, to the bit.  Cost O(Ns n^2) per row, like the DMFT's
other per-sample histories; G_nu is stored packed (``tri``) per sample.  The sums over
samples run in parallel over rows m (one thread owns each row) and are added in sample
order: the result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ell_diagonal", "ell_row", "member_rows", "relaxation_terms", "resolved_bulk",
           "resolved_spike", "spike_resolvent_rows", "spread_operators"]


@njit(cache=True, inline="always")
def _tri(n, m):
    return n * (n + 1) // 2 + m


@njit(cache=True)
def ell_diagonal(kd, kappa, lam=0.0):
    """The root l > 0 of l (kappa mean(1 / (1 + l - kd)) + lam) = 1 (kd: the samples'
    K_nu[n, n]; kappa > 1; lam >= 0 the column's relaxation term, 0 for an instantaneous
    column, inf at tau = 0: l = 0), by safeguarded Newton in the bracket
    [0, (1 - min(0, min kd)) / (kappa - 1)].  The root is unique when every kd < 1 (the
    memorisation's instantaneous part is <= 0 in the DMFT); otherwise, or for non-finite kd,
    NaN (the caller reports the divergence)."""
    if not np.all(np.isfinite(kd)) or kd.max() >= 1.0:
        return np.nan
    if lam == np.inf:
        return 0.0
    lo, hi = 0.0, (1.0 - min(0.0, kd.min())) / (kappa - 1.0)
    x, f = 1.0 / (kappa - 1.0), 1.0
    for _ in range(100):
        f = fp = 0.0
        for k in kd:
            g = 1.0 / (1.0 + x - k)
            f += g
            fp += g * (1.0 - k) * g
        f, fp = x * (kappa * f / kd.size + lam) - 1.0, kappa * fp / kd.size + lam
        if f == 0.0:
            return x
        if f > 0.0:
            hi = x
        else:
            lo = x
        step = x - f / fp
        # converged when the Newton step is at the rounding level of f (the sums over the
        # samples carry ~sqrt(Ns) ulps of error, so a fixed 1e-15 can be out of reach)
        if abs(step - x) <= 1e-13 * (1.0 + x) and lo <= step <= hi:
            return step
        x = step if lo <= step <= hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15 * (1.0 + hi):
            return x
    return x if abs(f) < 1e-10 else np.nan


@njit(cache=True, parallel=True)
def _row_means(n, KN, GV, w, Am, B):
    """Am[m, s] = sum_nu w_nu KN[nu, m] G_nu[m, s] and B[m, s] = sum_nu w_nu G_nu[m, s] for
    s <= m < n (parallel over m; each row summed in sample order)."""
    Ns = KN.shape[0]
    for m in prange(n):
        for s in range(m + 1):
            Am[m, s] = B[m, s] = 0.0
        base = _tri(m, 0)
        for i in range(Ns):
            c, wi = w[i] * KN[i, m], w[i]
            for s in range(m + 1):
                g = GV[i, base + s]
                Am[m, s] += c * g
                B[m, s] += wi * g


@njit(cache=True, parallel=True)
def _member_g_rows(n, KN, GV, L, d, acc):
    """Row n of every G_nu (parallel over samples; ``acc`` (Ns, T) scratch)."""
    for i in prange(KN.shape[0]):
        a = acc[i]
        for s in range(n + 1):
            a[s] = 0.0
        for m in range(n):
            c = KN[i, m] - L[n, m]
            base = _tri(m, 0)
            for s in range(m + 1):
                a[s] += c * GV[i, base + s]
        a[n] = 1.0
        bn = _tri(n, 0)
        for s in range(n + 1):
            GV[i, bn + s] = a[s] / d[i]


@njit(cache=True)
def ell_row(n, KN, GV, L, Gbar, kappa, Am, B, acc, lam):
    """Row n of ell (into ``L``), of every G_nu (packed into ``GV``) and of Gbar, from the
    samples' memorisation rows ``KN[nu, :n + 1]`` = K_nu[n, :n + 1] and the earlier rows.
    ``lam`` (T): the column's relaxation terms (module docstring; zeros: instantaneous).
    ``Am``, ``B`` (T x T) and ``acc`` (Ns x T) are scratch."""
    Ns = KN.shape[0]
    l = ell_diagonal(KN[:, n].copy(), kappa, lam[n])
    d = 1.0 + l - KN[:, n]
    w = 1.0 / (Ns * d)
    _row_means(n, KN, GV, w, Am, B)
    s0 = 1 if lam[0] == np.inf else 0   # u(0) = 0: column 0 of ell is zero
    for s in range(s0):
        L[n, s] = 0.0
    for s in range(n - 1, s0 - 1, -1):  # back substitution, x M = -l A, M = Gbar - l B + Lam
        a = 0.0
        for m in range(s, n):
            a += Am[m, s]
        v = -l * a
        if s == n - 1:
            v += l * lam[n] / kappa
        for m in range(s + 1, n):
            v -= L[n, m] * (Gbar[m, s] - l * B[m, s])
        if s + 1 < n:
            v += L[n, s + 1] * lam[s + 1] / kappa
        L[n, s] = v / (Gbar[s, s] - l * B[s, s] + lam[s] / kappa)
    L[n, n] = l
    _member_g_rows(n, KN, GV, L, d, acc)
    bn = _tri(n, 0)
    for s in range(n + 1):
        g = 0.0
        for i in range(Ns):
            g += GV[i, bn + s]
        Gbar[n, s] = g / Ns


@njit(cache=True, parallel=True)
def member_rows(n, Rb, Rx, Rm, Q, H, xi, W, Wc, c, anc_d, KN):
    """The samples' memorisation rows K_nu[n, s], s <= n (into ``KN``), from their bulk Gram
    row Q_nu(n - 1, .) and spike field h_nu(n - 1), h_nu(s) -- the first-order response of
    §12.4, whose sample mean is the DMFT's Kbar (one step behind, like Kbar):

        K_nu[n, s] = c W_s [R_b(n, s) Q_nu + anc_d xi_nu^2 R_x(n, s) Q_nu + R_m(n, s) h_nu h_nu'],

    c = -alpha eps / kappa, ``anc_d`` = (coefficient of the anomalous term) / D, ``Rb``, ``Rx``,
    ``Rm`` the responses' rows n, W the trapezoid weights and Wc the current point's."""
    for i in prange(KN.shape[0]):
        x2 = xi[i] * xi[i]
        base = _tri(n - 1, 0)
        hp = H[i, n - 1]
        for s in range(n):
            q = Q[i, base + s]
            KN[i, s] = c * W[s] * ((Rb[s] + anc_d * x2 * Rx[s]) * q + Rm[s] * hp * H[i, s])
        KN[i, n] = c * Wc * ((1.0 + anc_d * x2) * Q[i, base + n - 1] + hp * hp)


@njit(cache=True)
def _behind(L, i, base, A, B, w, s, n):
    """The resolved responses' correction to a first-order memorisation row at (n, s):
    sum_{s <= sigma < n} L_i(n - 1, sigma) K(sigma, s) - K(n - 1, s) with K = A + w B, the
    sample's packed resolvent ``L`` one step behind (row n - 1 starts at ``base``)."""
    acc = -(A[n - 1, s] + w * B[n - 1, s])
    for sg in range(s, n):
        acc += L[i, base + sg] * (A[sg, s] + w * B[sg, s])
    return acc


@njit(cache=True, parallel=True)
def resolved_bulk(n, RB, RX, LB, Q, xi, W, c, anc_d, KN):
    """The spread closure's default response (``spread_response="resolved"``; the diagnostic
    "first_order" skips this): add to the bulk part of ``KN`` the sample's own resolvent, one
    step behind -- the response of z_b to its residual through
    the Onsager term's feedback, dropped at first order:
    c W_s Q_nu(n-1, s) [sum_{s <= sigma < n} L_b(n-1, sigma) R~(sigma, s) - R~(n-1, s)],
    R~ = R_b + anc_d xi^2 R_x, L_b the sample's packed bulk resolvent."""
    base = _tri(n - 1, 0)
    for i in prange(KN.shape[0]):
        w = anc_d * (xi[i] * xi[i])
        for s in range(n):
            KN[i, s] += c * W[s] * Q[i, base + s] * _behind(LB, i, base, RB, RX, w, s, n)


@njit(cache=True, parallel=True)
def spike_resolvent_rows(n, Rm, R, LS, W, Wc, kappa, floor):
    """Row n of every sample's spike resolvent without the Gauss-Newton term (into the packed
    ``LS``; ``spread_response="full"``): LS = (1 + A)^(-1) with
    A(n, s) = W_s R_m(n, s) r(s) / kappa (the current point with ``Wc`` and r(n), floored at
    ``floor`` like the DMFT's own spike resolvent) -- the loop of the sample's spike field
    through its own Onsager term, which a change of its residual history drives, without the
    loop back through rho (that one is ell's).  ``Rm``: R_m's row n; ``R``: the residuals."""
    for i in prange(LS.shape[0]):
        bn = _tri(n, 0)
        for sg in range(n):
            LS[i, bn + sg] = 0.0
        for s in range(n):
            k = W[s] * Rm[s] * R[i, s] / kappa
            bs = _tri(s, 0)
            for sg in range(s + 1):
                LS[i, bn + sg] -= k * LS[i, bs + sg]
        cm = 1.0 + max(Wc * R[i, n] / kappa, floor)
        LS[i, bn + n] = 1.0 / cm
        for sg in range(n):
            LS[i, bn + sg] /= cm


@njit(cache=True, parallel=True)
def resolved_spike(n, RM, LS, H, W, c, KN):
    """``spread_response="full"``: add to the spike part of ``KN`` the sample's own spike
    resolvent ``LS`` (:func:`spike_resolvent_rows`), one step behind as the bulk's:
    c W_s h_nu(n-1) h_nu(s) [sum_{s <= sigma < n} LS(n-1, sigma) R_m(sigma, s) - R_m(n-1, s)]."""
    base = _tri(n - 1, 0)
    for i in prange(KN.shape[0]):
        hp = H[i, n - 1]
        for s in range(n):
            KN[i, s] += c * W[s] * hp * H[i, s] * _behind(LS, i, base, RM, RM, 0.0, s, n)


@njit(cache=True)
def relaxation_terms(tau, inv_a):
    """The finite-speed column's ``lam`` on the grid ``tau``: 1 / (a dtau_n), inf at n = 0
    (u(0) = 0), with ``inv_a`` = 1 / a = eps kappa / alpha; zeros for ``inv_a`` = 0 (an
    instantaneous column).  Used by ``run_dmft`` and by :func:`spread_operators`' callers."""
    lam = np.zeros(tau.size)
    if inv_a > 0.0:
        lam[1:] = inv_a / np.diff(tau)
        lam[0] = np.inf
    return lam


def spread_operators(KV: np.ndarray, kappa: float, lam: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """ell and Gbar for given dense memorisation operators ``KV`` (Ns, T, T), lower
    triangular, by the row recursion of :func:`ell_row` (for tests and small studies);
    ``lam`` the column's relaxation terms (:func:`relaxation_terms`; default: instantaneous).

    Returns
    -------
    (ell, Gbar) : tuple of np.ndarray
        Both (T, T), lower triangular: ell (kappa Gbar + Lam) = 1 with
        Gbar = mean_nu (1 + ell - K_nu)^(-1) (Lam = 0 for an instantaneous column).
    """
    KV = np.asarray(KV, dtype=float)
    Ns, T = KV.shape[0], KV.shape[1]
    lam = np.zeros(T) if lam is None else np.asarray(lam, dtype=float)
    L, Gbar = np.zeros((T, T)), np.zeros((T, T))
    GV = np.zeros((Ns, T * (T + 1) // 2))
    Am, B, acc = np.zeros((T, T)), np.zeros((T, T)), np.zeros((Ns, T))
    for n in range(T):
        KN = np.ascontiguousarray(KV[:, n, :])
        ell_row(n, KN, GV, L, Gbar, float(kappa), Am, B, acc, lam)
    return L, Gbar
