"""The compiled core of the r-index DMFT (docs/offline_theory.md §13): the exact D -> inf
dynamical mean-field theory of full-batch GD from an init of finite rank R, causal in the
step index, no fixed-point iteration.

k = R + 1 indices: the R quadratic probe neurons a_1..a_R (columns of U times the init
frame) and the linear column u.  Index R is the column.  Per GD step n (step size d_n in
tau = 2 eta0 eps t / (alpha D)):

    sample side   h(n) = xi m(n) + theta(n) - (1/kappa) sum_{s<n} d_s R(n, s) F(s)
    weight side   R(n+1, s) = R(n, s) - d_n sum_{s<sig<=n} Gamma(n, sig) R(sig, s),  R(s+1, s) = I
                  Rt(n+1)   = Rt(n)   - d_n sum_{sig<=n}   Gamma(n, sig) Rt(sig),    Rt(0) = I
                  C(n, n')  = Rt(n) C0 Rt(n')^T
                              + sum_{s<n, s'<n'} d_s d_s' R(n, s) S(s, s') R(n', s')^T
                  m(n+1)    = m(n) - d_n E[xi F(n)]
    closures      Gamma(n, s) = E[dF(n)/dtheta(s)],  S(n, s) = (1/kappa) E[F(n) F(s)^T]

theta is Gaussian with covariance C: theta_j(n) = Rt(n) theta_j(0) - sum_{s<n} d_s R(n, s) nu_j(s)
with theta_j(0) ~ N(0, C0) and the weight-side noise nu drawn by population dynamics,
nu_j(n) = (kappa (Ns - 1))^(-1/2) sum_{i != j} omega_ji F_i(n) (omega fixed standard normals;
covariance S without self-coupling).  No Cholesky factor of the two-time covariance is needed
(a smooth process makes it ill-conditioned).  Storage: two-time k x k blocks ``A[n, s, a, b]``;
per-sample responses
Y = dF(n)/dtheta(s) packed lower-triangular, ``Y[i, tri(n, s), a, b]``.  Cost O(Ns T^3 k^3)
time and O(Ns T^2 k^2) memory.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["run_rindex", "V_NAMES"]

#: Scalar series out[k, n]: train loss E[r^2].
V_NAMES = ("train",)


@njit(cache=True, inline="always")
def tri(n, s):
    """Packed index of (n, s), s <= n."""
    return n * (n + 1) // 2 + s


@njit(cache=True, inline="always")
def _mac(out, c, A, B, k):
    """out += c A B (k x k), no allocation."""
    for a in range(k):
        for e in range(k):
            x = c * A[a, e]
            if x != 0.0:
                for b in range(k):
                    out[a, b] += x * B[e, b]


@njit(cache=True)
def _responses(n, d, G, Rr, Rt, k):
    """R(n, s) for s < n and Rt(n) from Gamma(n - 1, .) (one explicit GD step)."""
    dn = d[n - 1]
    for s in range(n - 1):
        Rr[n, s] = Rr[n - 1, s]
        for sig in range(s + 1, n):
            _mac(Rr[n, s], -dn, G[n - 1, sig], Rr[sig, s], k)
    Rr[n, n - 1] = np.eye(k)
    Rt[n] = Rt[n - 1]
    for sig in range(n):
        _mac(Rt[n], -dn, G[n - 1, sig], Rt[sig], k)


@njit(cache=True)
def _covariance(n, d, Rr, Rt, S, C, C0, k):
    """C(n, n) and C(n, 0), what the losses need (C(n, 0) = Rt(n) C0: the init is independent
    of the noise)."""
    C[n, 0] = 0.0
    _mac(C[n, 0], 1.0, Rt[n], C0, k)
    C[n, 1] = 0.0
    _mac(C[n, 1], 1.0, C[n, 0], Rt[n].T.copy(), k)
    RT = np.empty((n, k, k))
    for sp in range(n):
        RT[sp] = Rr[n, sp].T
    v, w = np.zeros((k, k)), np.zeros((k, k))
    for s in range(n):
        v[:] = 0.0
        for sp in range(n):
            w[:] = S[s, sp] if s >= sp else S[sp, s].T
            _mac(v, d[sp], w, RT[sp], k)
        _mac(C[n, 1], d[s], Rr[n, s], v, k)


@njit(cache=True, inline="always")
def _force(h, h0, xi, par, k, F, J, J0):
    """Residual r, F = dloss-direction per index, J = dF/dh(n), J0 = dF/dh(0)."""
    alpha, eps, b2, cen = par[1], par[2], par[3], par[4]
    R = k - 1
    s = h[R]
    q = s * s
    for a in range(R):
        q += h[a] * h[a] - cen * h0[a] * h0[a]
    ae = alpha * eps
    r = alpha * s + 0.5 * ae * q - 0.5 * b2 * xi * xi
    g = 1.0 / eps + s                            # the column's factor (1 + eps s) / eps
    dr_s = alpha * (1.0 + eps * s)
    for a in range(R):
        F[a] = r * h[a]
    F[R] = r * g
    for a in range(k):
        for b in range(k):
            J0[a, b] = 0.0
    for a in range(R):
        for b in range(R):
            J[a, b] = ae * h[a] * h[b]
            J0[a, b] = -cen * ae * h[a] * h0[b]
        J[a, a] += r
        J[a, R] = h[a] * dr_s
        J[R, a] = g * ae * h[a]
        J0[R, a] = -cen * g * ae * h0[a]
    J[R, R] = r + g * dr_s
    return r


@njit(cache=True, parallel=True)
def _samples(n, d, xi, th0, nu, m, Rr, Rt, Fs, H0, Y, rs, par, k):
    """Every sample's field, force and response row Y(n, s), s <= n, at step n."""
    Ns = xi.size
    kappa = par[0]
    for i in prange(Ns):
        h = xi[i] * m[n] + Rt[n] @ th0[i]
        for s in range(n):
            for a in range(k):
                x = 0.0
                for b in range(k):
                    x += Rr[n, s, a, b] * (nu[i, s, b] + Fs[i, s, b] / kappa)
                h[a] -= d[s] * x
        if n == 0:
            H0[i] = h
        F, J, J0 = np.zeros(k), np.zeros((k, k)), np.zeros((k, k))
        rs[i, n] = _force(h, H0[i], xi[i], par, k, F, J, J0)
        Fs[i, n] = F
        chi = np.zeros((n + 1, k, k))          # chi(n, s) = -(1/kappa) sum d R(n, sig) Y(sig, s)
        for sig in range(n):
            base = tri(sig, 0)
            for s in range(sig + 1):
                _mac(chi[s], -d[sig] / kappa, Rr[n, sig], Y[i, base + s], k)
        base = tri(n, 0)
        for s in range(n):
            Y[i, base + s] = 0.0
            _mac(Y[i, base + s], 1.0, J, chi[s], k)
        Y[i, base + n] = J
        Y[i, base] += J0


@njit(cache=True)
def _closures(n, xi, Fs, Y, rs, G, S, exf, out, par, k):
    """Gamma(n, s), S(n, s), E[xi F(n)] and the train loss from the samples."""
    Ns = xi.size
    kappa = par[0]
    base = tri(n, 0)
    G[n, : n + 1] = 0.0
    S[n, : n + 1] = 0.0
    e, tr = np.zeros(k), 0.0
    for i in range(Ns):
        for s in range(n + 1):
            G[n, s] += Y[i, base + s]
            for a in range(k):
                for b in range(k):
                    S[n, s, a, b] += Fs[i, n, a] * Fs[i, s, b]
        e += xi[i] * Fs[i, n]
        tr += rs[i, n] * rs[i, n]
    G[n, : n + 1] /= Ns
    S[n, : n + 1] /= Ns * kappa
    if par[5] == 0.0:                 # diagnostic: no probe <-> column cross-response
        for s in range(n + 1):
            for a in range(k - 1):
                G[n, s, a, k - 1] = 0.0
                G[n, s, k - 1, a] = 0.0
    exf[n] = e / Ns
    out[0, n] = tr / Ns


@njit(cache=True, parallel=True)
def _noise(n, Fs, omega, nu, kappa):
    """nu_j(n) = (kappa (Ns - 1))^(-1/2) sum_{i != j} omega_ji F_i(n): Gaussian with the
    covariance S of the weight-side noise, without self-coupling (population dynamics)."""
    Ns, k = Fs.shape[0], Fs.shape[2]
    c = 1.0 / math.sqrt(kappa * (Ns - 1))
    for j in prange(Ns):
        for a in range(k):
            x = 0.0
            for i in range(Ns):
                if i != j:
                    x += omega[j, i] * Fs[i, n, a]
            nu[j, n, a] = c * x


@njit(cache=True)
def run_rindex(tau, xi, th0, omega, m0, C0, par):
    """Run the r-index DMFT on the grid ``tau`` (T points; GD steps d = diff(tau)).

    Parameters: xi (Ns,) teacher projections; th0 (Ns, k) draws of N(0, C0); omega (Ns, Ns)
    standard normals (the population-dynamics couplings); m0 (k,) the
    initial overlaps W^T betahat / sqrt(D); C0 (k, k) the initial perpendicular covariance;
    par = (kappa, alpha, eps, b2, centered, cross): cross = 0 drops the probe <-> column blocks
    of Gamma (a diagnostic, docs §12.4).  Returns (m (T, k), C (T, 2, k, k): C(n, 0)
    and C(n, n), out (1, T): the train loss, n_done): n_done < T when a non-finite value
    appeared at step n_done.
    """
    T, Ns, k = tau.size, xi.size, m0.size
    d = np.diff(tau)
    Rr, G = np.zeros((T, T, k, k)), np.zeros((T, T, k, k))
    S, C = np.zeros((T, T, k, k)), np.zeros((T, 2, k, k))
    Rt, m, exf = np.zeros((T, k, k)), np.zeros((T, k)), np.zeros((T, k))
    Fs, nu = np.zeros((Ns, T, k)), np.zeros((Ns, T, k))
    H0, rs = np.zeros((Ns, k)), np.zeros((Ns, T))
    Y = np.zeros((Ns, T * (T + 1) // 2, k, k))
    out = np.zeros((len(V_NAMES), T))
    Rt[0] = np.eye(k)
    m[0] = m0
    for n in range(T):
        if n >= 1:
            _responses(n, d, G, Rr, Rt, k)
            m[n] = m[n - 1] - d[n - 1] * exf[n - 1]
        _covariance(n, d, Rr, Rt, S, C, C0, k)
        _samples(n, d, xi, th0, nu, m, Rr, Rt, Fs, H0, Y, rs, par, k)
        _closures(n, xi, Fs, Y, rs, G, S, exf, out, par, k)
        _noise(n, Fs, omega, nu, par[0])
        if not (np.all(np.isfinite(G[n, :n + 1])) and np.isfinite(out[0, n])
                and np.all(np.isfinite(m[n]))):
            return m, C, out, n
    return m, C, out, T
