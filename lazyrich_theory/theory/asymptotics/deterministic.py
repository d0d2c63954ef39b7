"""The finite-D deterministic equivalent: ridge regression and learning curves on the exact
three-group feature spectrum of Ktilde0 (first correction to the leading order; the
one- and two-resolvent deterministic equivalents, contour integrals around each spectral
cluster; docs/asymptotics.md §4–5).

Names: ``b2`` = |beta|^2 / D, ``kappa`` = P / D; kernel units (sigma multiplied by P).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import brentq

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.asymptotics.leading import _leading_outliers
from lazyrich_theory.theory.asymptotics.spectra import feature_groups

__all__: list[str] = []


def _de_ridge(D: float, kappa: float, eps: float, b2: float, ridge: float) -> dict[str, float]:
    """Finite-D deterministic equivalent of ridge(less) regression in feature space.

    Kernel units (s_g = P sigma_g, th_g = |theta_g|^2 / P, m_g multiplicities): rho > 0 solves

        lambda = rho [1 - (1/P) sum_g m_g s_g / (s_g + rho)]               (ridgeless: bracket = 0)
        test  = rho^2 sum_g th_g s_g / (s_g + rho)^2 / (1 - (1/P) sum_g m_g s_g^2 / (s_g + rho)^2)
        train = (lambda / rho)^2 test.
    """
    grp = feature_groups(D, kappa, eps, b2)
    s, m, th, P = grp["sigma"], grp["mult"], grp["theta2"], float(grp["P"])
    if P >= m.sum():
        raise ProblemError("P must be smaller than the number of features D + D(D+1)/2")

    def f(rho: float) -> float:
        return rho * (P - np.sum(m * s / (s + rho))) / P - ridge

    hi = 1.0
    while f(hi) < 0:
        hi *= 4.0
    lo = hi
    while f(lo) > 0:
        lo /= 4.0
        if lo < 1e-300:
            raise RuntimeError("deterministic-equivalent ridge equation has no root")
    rho = brentq(f, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)
    bias = rho**2 * np.sum(th * s / (s + rho) ** 2)
    df2 = np.sum(m * s**2 / (s + rho) ** 2) / P
    test = bias / (1 - df2)
    train = (ridge / rho) ** 2 * test
    lin_learn = s[0] / (s[0] + rho)
    return dict(test_loss=float(test), train_loss=float(train), rho=float(rho),
                quadratic_learned_fraction=float(s[2] / (s[2] + rho)),
                linear_learned_fraction=float(lin_learn))


def _solve_a(z: np.ndarray, sig: np.ndarray, mult: np.ndarray, P: float,
             newton: int = 6) -> np.ndarray:
    """a(z) = 1/(1 + delta(z)) of the Silverstein equation (kernel units)

        1/a - 1 = (1/P) sum_g m_g s_g / (a s_g - z),

    Here -a(z)/z is the deterministic equivalent of (1/P) tr (K - z)^-1, the Stieltjes transform
    of the spectrum of the P x P kernel matrix K = Ktilde0(X, X); it is the unique solution with
    Im(-a/z) Im z > 0 (Silverstein & Choi 1995).  Solved as a polynomial (degree = #groups + 1)
    per z, the root chosen by that sign condition, then Newton-polished.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    n, G = z.size, sig.size
    ones = np.ones(n, dtype=complex)

    def pmul(p, q):                         # batched polynomial product, coefficients low -> high
        out = np.zeros((n, p.shape[1] + q.shape[1] - 1), dtype=complex)
        for i in range(p.shape[1]):
            out[:, i:i + q.shape[1]] += p[:, i:i + 1] * q
        return out

    lins = [np.stack([-z, s * ones], axis=1) for s in sig]      # (a s - z)
    prod = np.ones((n, 1), dtype=complex)
    for q in lins:
        prod = pmul(prod, q)
    poly = pmul(np.stack([ones, -ones], axis=1), prod)          # (1 - a) prod
    for g in range(G):
        pr = np.ones((n, 1), dtype=complex)
        for h in range(G):
            if h != g:
                pr = pmul(pr, lins[h])
        term = pmul(np.stack([0 * ones, (mult[g] * sig[g] / P) * ones], axis=1), pr)
        poly[:, :term.shape[1]] -= term
    deg = poly.shape[1] - 1
    C = np.zeros((n, deg, deg), dtype=complex)
    C[:, 0, :] = -poly[:, deg - 1::-1] / poly[:, deg:deg + 1]
    C[:, np.arange(1, deg), np.arange(deg - 1)] = 1
    roots = np.linalg.eigvals(C)
    sgn = np.where(z.imag >= 0, 1.0, -1.0)
    crit = (roots / z[:, None]).imag * sgn[:, None]
    a = roots[np.arange(n), np.argmin(crit, axis=1)]
    for _ in range(newton):
        d = a[:, None] * sig[None, :] - z[:, None]
        f = 1 / a - 1 - (mult * sig / d).sum(1) / P
        fp = -1 / a**2 + (mult * sig**2 / d**2).sum(1) / P
        a = a - f / fp
    return a


def _support(sig, mult, P, lo, hi, n=8000):
    """Intervals where the deterministic-equivalent spectral density of K is positive."""
    lam = np.geomspace(lo, hi, n)
    z = lam * (1 + 1e-11j)
    a = _solve_a(z, sig, mult, P)
    dens = (-a / z).imag / np.pi
    supp = dens * lam > 1e-9 * np.max(dens * lam)
    idx = np.flatnonzero(np.diff(np.r_[0, supp.astype(int), 0]))
    ints = [(lam[max(s - 1, 0)], lam[min(e, n - 1)]) for s, e in zip(idx[::2], idx[1::2])]
    return ints, (bool(supp[0]), bool(supp[-1]))


def _contours(ints_zeta, tol=1e-15, n_max=4000, scale=1.0):
    """Bernstein-ellipse contours (one per cluster, clusters merged if nearly touching) in the
    zeta variable where F = exp(-c t zeta); each stays in Re zeta > 0 so that |F| <= 1."""
    merged = [list(iv) for iv in ints_zeta]
    while True:                        # merge neighbours whose ellipses would nearly touch
        gaps = [(merged[k + 1][0] - merged[k][1])
                / (0.5 * max(merged[k][1] - merged[k][0], merged[k + 1][1] - merged[k + 1][0]))
                for k in range(len(merged) - 1)]
        if not gaps or min(gaps) > 1e-3:
            break
        k = int(np.argmin(gaps))
        merged[k] = [merged[k][0], merged[k + 1][1]]
        del merged[k + 1]
    zs, ws, labs, xmins = [], [], [], []
    capped = False
    for k, (a, b) in enumerate(merged):
        left = 0.0 if k == 0 else 0.5 * (merged[k - 1][1] + a)
        right = math.inf if k == len(merged) - 1 else 0.5 * (b + merged[k + 1][0])
        h = 0.5 * (b - a)
        m = 0.5 * (a + b)
        cl = min((m - left) / h, (right - m) / h)
        Rmax = cl + math.sqrt(cl * cl - 1)
        R = math.sqrt(Rmax)
        xmin = m - h * (R + 1 / R) / 2
        n_conv = math.ceil(-math.log(tol) / math.log(R)) + 8
        # F = exp(-ct zeta(phi)) matters while ct xmin < ~36; its Fourier coefficients in phi are
        # ~ I_n(x) exp(-ct m), x = ct h R / 2, i.e. ~ exp(-ct xmin - n^2 / (2x)) for n < x
        x_b = (36.0 / xmin) * h * R / 2
        n_band = math.ceil(1.5 * math.sqrt(2 * 36.0 * x_b)) + 32
        N = int(max(n_conv, n_band, 64) * scale)
        if N > n_max:
            N, capped = n_max, True
        N += N % 2                     # even N: no node on the real axis (phi = 0, pi excluded)
        phi = 2 * np.pi * (np.arange(N) + 0.5) / N
        e = np.exp(1j * phi)
        zs.append(m + h * (R * e + e.conj() / R) / 2)
        ws.append(h * 1j * (R * e - e.conj() / R) / 2 * (2 * np.pi / N) / (2j * np.pi))
        labs.append(np.full(N, k))
        xmins.append(xmin)
    return np.concatenate(zs), np.concatenate(ws), np.concatenate(labs), np.array(xmins), capped


def _spectral_intervals(kappa: float, eps: float, sig: np.ndarray, mult: np.ndarray, P: float,
                        D: float) -> list[tuple[float, float]]:
    """The clusters of the deterministic-equivalent spectrum of K, plus a generous interval
    around the constant-mode outlier, merged where they overlap (increasing)."""
    lo = 1e-5 * min(sig[1] * D / (D + 2), 1.0)
    hi = 4 * ((math.sqrt(kappa) + 1) ** 2 + eps**2 * (kappa + 4))
    for _ in range(3):
        ints, (at_lo, at_hi) = _support(sig, mult, P, lo, hi)
        if not (at_lo or at_hi):
            break
        lo, hi = lo * 1e-3, hi * 10
    # the constant-mode outlier (one eigenvalue) can be too narrow a band for the grid: enclose a
    # generous interval around its leading-order position, then merge overlapping intervals
    for zs in _leading_outliers(kappa, eps):
        ints.append((0.8 * zs, 1.25 * zs))
    ints.sort()
    merged = [list(ints[0])]
    for a, b in ints[1:]:
        if a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [tuple(iv) for iv in merged]


def _time_variable(c: float, method: str):
    """(z_of, dz_of, zeta_of): the map between the spectral variable z and zeta with
    F = exp(-c t zeta) (GD: (1 - c z)^t, zeta = -log(1 - c z)/c; flow: zeta = z)."""
    if method == "gd":
        return (lambda zeta: -np.expm1(-c * zeta) / c, lambda zeta: np.exp(-c * zeta),
                lambda z: -np.log1p(-c * z) / c)
    return (lambda zeta: zeta, lambda zeta: np.ones_like(zeta), lambda z: z)


def _de_curves(kappa, eps, eta0, t, D, b2, method, nodes_scale=1.0):
    """Train and test curves of the linearised model, finite-D deterministic equivalent
    (``linearized_curves_asymptotic(order="de")``); ``nodes_scale`` multiplies the number of
    contour nodes (a convergence check)."""
    grp = feature_groups(float(D), kappa, eps, b2)
    sig, mult, th, P = grp["sigma"], grp["mult"], grp["theta2"], float(grp["P"])
    c = 2 * eta0 / P
    ints = _spectral_intervals(kappa, eps, sig, mult, P, D)
    if method == "gd" and c * ints[-1][1] >= 1:
        raise ProblemError("order='de' with method='gd' needs c lambda_max < 1 "
                           f"(got {c * ints[-1][1]:.3g}); use a smaller eta0 or method='flow'")
    z_of, dz_of, zeta_of = _time_variable(c, method)
    ints_zeta = [(zeta_of(a), zeta_of(b)) for a, b in ints]
    zeta, dzeta, lab, xmins, capped = _contours(ints_zeta, scale=nodes_scale)
    if capped:
        warnings.warn("deterministic-equivalent contour capped: late-time accuracy reduced "
                      "(kappa close to 1 or clusters merged)", RuntimeWarning, stacklevel=3)
    z = z_of(zeta)
    w = dz_of(zeta) * dzeta                         # dz / (2 pi i)
    a = _solve_a(z, sig, mult, P)
    count = float((-np.sum(w * P * (-a / z))).real)
    if abs(count - P) > max(1e-3, 1e-9 * P):
        raise RuntimeError(f"contour does not enclose the spectrum (count {count:.6g} != P {P:g})")
    T = 1.0 / (a[:, None] * sig[None, :] - z[:, None])
    A1 = (th * sig * T).sum(1)                      # theta^T R Sigma theta
    B1 = (th * T).sum(1)                            # theta^T R theta
    num = np.einsum("g,ig,jg->ij", th * sig, T, T, optimize=True)
    Xm = (a[:, None] * a[None, :] / P) * np.einsum("g,ig,jg->ij", mult * sig**2, T, T,
                                                    optimize=True)
    S = num / (1 - Xm)                              # theta^T R1 Sigma R2 theta
    Ey2 = float(np.sum(th * sig))
    train = np.empty(t.size)
    test = np.empty(t.size)
    for i, ti in enumerate(t):
        ct = c * ti
        F = np.exp(-ct * zeta)
        for k in range(len(xmins)):
            if ct * xmins[k] > 700:
                F[lab == k] = 0.0
        hw = (1 - F) * w
        one = -np.sum(hw * A1)
        two = hw @ (S @ hw)
        test[i] = (Ey2 - 2 * one + two).real
        train[i] = (-np.sum(w * z * F**2 * B1)).real
    return dict(train_loss=train, test_loss=test)
