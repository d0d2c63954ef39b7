"""The lazy plateau of offline training: the per-sample law of the plateau residual and the
deterministic equivalent of the plateau gradient matrix (docs/offline_theory.md §3–4).

Notation (convention A, N = inf, centered): z = sqrt(D) x, xi = betahat.z, y = (b2/2) xi^2 with
b2 = |beta|^2 / D (convention B: b2 = 2 |beta|^2 / D), P = kappa D.  After the lazy (linear)
fit the training residual of a sample is, in the leave-one-out form,

    r0 = -(1 - 1/kappa) (y - g0),    g0 ~ N(0, E[y^2] / (kappa - 1)) independent of xi,

and the plateau matrix Ghat0 = (1/P) sum_mu r0_mu z_mu z_mu^T has the Stieltjes transform m(l)
of its bulk given by

    l = -1/m + E[r0 / (1 + r0 m / kappa)],                                    (bulk)
    w(r0, l) = Im[m / (1 + r0 m / kappa)] / Im m,      (mean of (v_l . z)^2 for that sample)

and a signal outlier below the bulk where E[r0 (xi^2 - 1) / (1 + r0 m1 / kappa)] = -1/m1
(BBP), with eigenvalue l1 = E[r0 xi^2 / (1 + r0 m1/kappa)] and overlap omega0 with betahat.

Finite-P cut (approximation A2): y and g0 are unbounded, so the bulk has no left edge as
D -> inf; only P values of r0 exist, so the lower tail of the law of r0 of mass 1/P is dropped.
This is where D enters the spectrum (weakly: the BBP threshold is ~2.0 for D = 50..400).

Everything here is compiled with Numba (``cache=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numba import njit

__all__ = ["SampleLaw", "PlateauSpectrum", "PlateauLosses", "sample_law", "plateau_spectrum",
           "plateau_losses", "plateau_reason", "bulk_cells", "mp_rule", "PLATEAU_EFOLDS"]

#: The plateau is predicted when the linear fit's slowest mode has relaxed through at least
#: this many e-folds by the rich time (``plateau_reason``, docs §7.1).
PLATEAU_EFOLDS = 10.0

#: Quadrature sizes of the per-sample law: |xi| (Gauss–Legendre with the half-normal
#: density), g0 and the spike-noise eta (Gauss–Hermite).
N_XI, N_G, N_ETA = 48, 12, 6
#: Points of the spectral grid on which the bulk Stieltjes transform is solved.
N_GRID = 500
#: Geometric scan of real m in (0, m_edge) for the outlier: its size and lower end.
N_SCAN, M_SCAN_LOW = 4000, 1e-5


@dataclass(frozen=True)
class PlateauLosses:
    """The lazy plateau's losses relative to the initial population loss E[y^2] (docs §7.1).

    Attributes
    ----------
    train : float
        Train loss: 1 - D / P (the residual of the least-squares fit of the labels on X).
    test : float
        Test (population) loss: 1 + D / (P - D - 1) (the initial loss plus the linear power of
        that fit).
    gap : float
        test - train.
    """

    train: float
    test: float
    gap: float


def plateau_losses(kappa: float, D: int) -> PlateauLosses:
    """The train and test loss on the lazy plateau, relative to the initial loss E[y^2],
    expected over training sets (docs §7.1).

    During the lazy phase the linear column fits the labels by least squares on X (§7) while
    the quadratic part has not moved (centered model).  Treating the labels as independent of
    the Gaussian design (they depend on it only through the teacher's column, uncorrelated
    with y; the error is O(1/D) in the train loss: -0.046 at D = 20, P = 40, -0.012 at
    D = 100, P = 300), the residual keeps (P - D) / P of E[y^2] and the linear power is
    E[y^2] tr E[(X^T X)^-1] / D = E[y^2] D / (P - D - 1) (inverse Wishart); D -> inf:
    1 - 1/kappa and kappa / (kappa - 1).  Whether the run has such a plateau (the lazy fit
    completes before the rich transition) is :func:`plateau_reason`'s question.

    Parameters
    ----------
    kappa : float
        P / D (P = round(kappa D)), with P > D + 1.
    D : int
        Input dimension, >= 1.

    Returns
    -------
    PlateauLosses
        ``train`` (1 - D/P), ``test`` (1 + D/(P - D - 1)) and ``gap`` (their difference).
    """
    if isinstance(D, bool) or not isinstance(D, (int, np.integer)) or D < 1:
        raise ValueError(f"plateau_losses needs an integer D >= 1, got {D!r}")
    P = int(round(kappa * D))
    if P <= D + 1:
        raise ValueError(f"plateau_losses needs P > D + 1, got P = {P}, D = {D}")
    train, test = 1.0 - D / P, 1.0 + D / (P - D - 1.0)
    return PlateauLosses(train=train, test=test, gap=test - train)


def plateau_reason(kappa: float, D: int, alpha: float, eps: float, b2: float) -> str | None:
    """Why the run has no lazy plateau (one line), None when it has one (docs §7.1).

    The linear column relaxes at rate alpha lam / (eps kappa) on the DMFT clock tau, lam over
    the eigenvalues of X^T X, the slowest at the Marchenko-Pastur edge (sqrt(kappa) - 1)^2;
    the rich transition comes at tau* = 2 ln(b2 D / (alpha eps)) / (3 b2) (§1.2, the online
    estimate: the offline one is later).  The plateau is predicted when the slowest mode has
    relaxed through ``PLATEAU_EFOLDS`` e-folds by tau*:
    n = alpha (sqrt(kappa) - 1)^2 tau* / (eps kappa) >= PLATEAU_EFOLDS (eta0 cancels).
    """
    ratio = b2 * D / (alpha * eps)
    if not ratio > 1.0:
        return (f"b2 D / (alpha eps) = {ratio:.3g} <= 1: no rich transition separates a "
                "plateau")
    n = alpha * (math.sqrt(kappa) - 1.0) ** 2 / (eps * kappa) * 2.0 * math.log(ratio) / (3.0 * b2)
    if n < PLATEAU_EFOLDS:
        return (f"the lazy linear fit does not complete before the rich transition "
                f"({n:.2g} < {PLATEAU_EFOLDS:g} e-folds of its slowest mode, which needs a "
                "larger alpha / eps or kappa): no plateau (docs §7.1)")
    return None


@dataclass(frozen=True)
class SampleLaw:
    """Quadrature of the per-sample law (xi, g0, eta) after the finite-P cut.

    Attributes
    ----------
    xi, g, eta, weight : np.ndarray
        Flattened nodes (|xi| >= 0; xi -> -xi leaves everything invariant) and their weights
        (sum 1; zero below the cut).
    y, r0 : np.ndarray
        The label (b2/2) xi^2 and the plateau residual -(1 - 1/kappa)(y - g0) at each node.
    ey2, sg2 : float
        E[y^2] and the variance of g0, E[y^2] / (kappa - 1).
    r0_cut : float
        The smallest r0 kept (the finite-P cut at mass 1/P).
    tail_mass, tail_r02 : float
        The mass of the law cut off and the mean of r0^2 over it (the train loss counts those
        samples: they stay at their plateau residual in the closure).
    """

    xi: np.ndarray
    g: np.ndarray
    eta: np.ndarray
    weight: np.ndarray
    y: np.ndarray
    r0: np.ndarray
    ey2: float
    sg2: float
    r0_cut: float
    tail_mass: float = 0.0
    tail_r02: float = 0.0


def _xi_rule(kappa: float, b2: float, D: float, n_xi: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes of |xi| on [0, x_max] with the half-normal density, x_max far
    beyond the extreme of P samples (P(|xi| > x_max) = 1/(2000 P))."""
    xmax = NormalDist().inv_cdf(1.0 - 0.5 / (1000.0 * kappa * D))
    gl, gw = np.polynomial.legendre.leggauss(n_xi)
    xi = 0.5 * xmax * (gl + 1.0)
    w = 0.5 * xmax * gw * np.exp(-0.5 * xi**2) * math.sqrt(2.0 / math.pi)
    return xi, w / w.sum()


def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


def _cut_weights(r0: np.ndarray, w: np.ndarray, mass: float) -> tuple[np.ndarray, float]:
    """Zero the weights of the most negative r0 whose cumulative weight is below ``mass``;
    returns the renormalised weights and the smallest r0 kept."""
    order = np.argsort(r0, kind="stable")
    cum = np.cumsum(w[order])
    w = w.copy()
    w[order[cum < mass]] = 0.0
    w /= w.sum()
    return w, float(r0[w > 0].min())


def sample_law(kappa: float, b2: float, D: float, n_xi: int = N_XI, n_g: int = N_G,
               n_eta: int = N_ETA, spike_noise: bool = True) -> SampleLaw:
    """The quadrature of the per-sample law at the plateau, with the finite-P cut.

    Parameters
    ----------
    kappa, b2, D : float
        P / D (> 1), |beta|^2 / D in convention-A units, the input dimension (the cut is at
        mass 1 / (kappa D)).
    n_xi, n_g, n_eta : int
        Quadrature sizes.
    spike_noise : bool
        Include the eta axis (the closure needs it; the spectrum does not).

    Returns
    -------
    SampleLaw
    """
    xi1, wx = _xi_rule(kappa, b2, D, n_xi)
    ey2 = 0.75 * b2**2                  # E[y^2] = 3 b2^2 / 4 exactly
    sg2 = ey2 / (kappa - 1.0)
    g1, wg = _hermite(n_g)
    # the cut is defined on the (xi, g0) law (eta is independent of r0)
    r2 = -(1.0 - 1.0 / kappa) * (0.5 * b2 * xi1[:, None] ** 2 - math.sqrt(sg2) * g1[None, :])
    _, cut = _cut_weights(r2.ravel(), np.outer(wx, wg).ravel(), 1.0 / (kappa * D))
    e1, we = _hermite(n_eta) if spike_noise else (np.zeros(1), np.ones(1))
    XI, G, E = np.meshgrid(xi1, g1 * math.sqrt(sg2), e1, indexing="ij")
    W = (wx[:, None, None] * wg[None, :, None] * we[None, None, :]).ravel()
    xi, g, eta = XI.ravel(), G.ravel(), E.ravel()
    y = 0.5 * b2 * xi**2
    r0 = -(1.0 - 1.0 / kappa) * (y - g)
    kept = r0 >= cut - 1e-12 * max(1.0, abs(cut))
    tail_mass = float(W[~kept].sum())
    tail_r02 = float(np.sum(W[~kept] * r0[~kept] ** 2) / tail_mass) if tail_mass > 0 else 0.0
    W = np.where(kept, W, 0.0)
    W /= W.sum()
    return SampleLaw(xi, g, eta, W, y, r0, ey2, sg2, cut, tail_mass, tail_r02)


@njit(cache=True)
def _z_of_m(m, T, W, kappa):
    """l(m) = -1/m + E[T / (1 + T m / kappa)] (real or complex m)."""
    s = 0.0 * m
    for i in range(T.size):
        s += W[i] * T[i] / (1.0 + T[i] * m / kappa)
    return -1.0 / m + s


@njit(cache=True)
def _solve_m(z, T, W, kappa, m0):
    """Newton on l(m) = z on the Herglotz branch (Im m > 0 for Im z > 0), from m0."""
    m = m0
    for _ in range(200):
        F = -1.0 / m - z
        dF = 1.0 / (m * m)
        for i in range(T.size):
            den = 1.0 + T[i] * m / kappa
            F += W[i] * T[i] / den
            dF -= W[i] * T[i] * T[i] / kappa / (den * den)
        m_new = m - F / dF
        if m_new.imag < 0:
            m_new = complex(m_new.real, abs(m_new.imag) * 0.5 + 1e-300)
        if abs(m_new - m) < 1e-13 * (1.0 + abs(m)):
            return m_new
        m = m_new
    return m


@njit(cache=True)
def _residual_m(m, z, T, W, kappa):
    """|l(m) - z| relative to |z| + 1 (acceptance test of a root)."""
    return abs(_z_of_m(m, T, W, kappa) - z) / (abs(z) + 1.0)


@njit(cache=True)
def _fixed_point_m(z, T, W, kappa, m, n_iter):
    """Damped iteration m <- 1 / (E[T / (1 + T m/kappa)] - z) (a contraction for Im z > 0)."""
    for _ in range(n_iter):
        s = 0.0 * m
        for i in range(T.size):
            s += W[i] * T[i] / (1.0 + T[i] * m / kappa)
        m_new = 0.5 * m + 0.5 / (s - z)
        if abs(m_new - m) < 1e-14 * (1.0 + abs(m)):
            return m_new
        m = m_new
    return m


@njit(cache=True)
def _good_root(m, z, T, W, kappa):
    return (np.isfinite(m.real) and np.isfinite(m.imag) and m.imag >= 0
            and _residual_m(m, z, T, W, kappa) < 1e-9)


@njit(cache=True)
def _solve_m_robust(z, T, W, kappa, m0):
    """_solve_m from the continuation guess ``m0``; if that fails (a pole of 1/(1 + T m/kappa)
    crossed, a root off the Herglotz branch), continue in the imaginary part instead: the
    damped fixed point at z + i, then down to z through Im = 10^(-k/2), each level started
    from the one above (fixed point, then Newton when it gives an acceptable root)."""
    m = _solve_m(z, T, W, kappa, m0)
    if _good_root(m, z, T, W, kappa):
        return m
    m = 1j * 1.0
    height = 1.0
    while True:
        zh = z.real + 1j * max(height, z.imag)
        m = _fixed_point_m(zh, T, W, kappa, m, 2000)
        mn = _solve_m(zh, T, W, kappa, m)
        if _good_root(mn, zh, T, W, kappa):
            m = mn
        if height <= z.imag:
            return m
        height *= 0.316


@njit(cache=True)
def _stieltjes_grid(lam, T, W, kappa, eps_im):
    """m(l + i eps_im) on the grid ``lam`` by continuation from the left end."""
    out = np.empty(lam.size, dtype=np.complex128)
    mean_t = 0.0
    for i in range(T.size):
        mean_t += W[i] * T[i]
    m = -1.0 / (lam[0] + 1j * eps_im - mean_t)
    for k in range(lam.size):
        m = _solve_m_robust(lam[k] + 1j * eps_im, T, W, kappa, m)
        out[k] = m
    return out


@njit(cache=True)
def _outlier_f(m, T, W, XI2, kappa):
    """E[T (xi^2 - 1) / (1 + T m / kappa)] + 1/m: zero at the BBP outlier."""
    s = 1.0 / m
    for i in range(T.size):
        s += W[i] * T[i] * (XI2[i] - 1.0) / (1.0 + T[i] * m / kappa)
    return s


@njit(cache=True)
def _outlier_h(m, T, W, XI2, kappa):
    """h(m) = -E[T xi^2 (T m/kappa) / (1 + T m/kappa)] (Schur complement on betahat)."""
    s = 0.0
    for i in range(T.size):
        a = T[i] * m / kappa
        s -= W[i] * T[i] * XI2[i] * a / (1.0 + a)
    return s


@njit(cache=True)
def _find_outlier(T, W, XI2, kappa, m_hi):
    """(m_edge, l_edge, m1) with m1 = nan when there is no outlier: scan real m upwards to
    the bulk edge (first m where dl/dm <= 0), bisect the first sign change of _outlier_f."""
    mg = np.exp(np.linspace(math.log(M_SCAN_LOW), math.log(m_hi), N_SCAN))
    z_prev = _z_of_m(mg[0], T, W, kappa)
    ie = N_SCAN - 1
    for k in range(1, N_SCAN):
        z = _z_of_m(mg[k], T, W, kappa)
        if z - z_prev <= 0:
            ie = k - 1
            break
        z_prev = z
    f_prev = _outlier_f(mg[0], T, W, XI2, kappa)
    for k in range(1, ie + 1):
        f = _outlier_f(mg[k], T, W, XI2, kappa)
        if (f > 0) != (f_prev > 0):
            a, b = mg[k - 1], mg[k]
            fa = f_prev
            for _ in range(200):
                c = 0.5 * (a + b)
                fc = _outlier_f(c, T, W, XI2, kappa)
                if (fc > 0) == (fa > 0):
                    a, fa = c, fc
                else:
                    b = c
                if b - a < 1e-14 * b:
                    break
            return mg[ie], _z_of_m(mg[ie], T, W, kappa), 0.5 * (a + b)
        f_prev = f
    return mg[ie], _z_of_m(mg[ie], T, W, kappa), math.nan


@dataclass(frozen=True)
class PlateauSpectrum:
    """Deterministic equivalent of the plateau matrix Ghat0 (module docstring).

    Attributes
    ----------
    lam, rho : np.ndarray
        Spectral grid and bulk density.
    m : np.ndarray
        Complex Stieltjes transform on the grid (just above the real axis).
    lam1, m1, omega0 : float
        The signal outlier (eigenvalue, real Stieltjes root, squared overlap with betahat);
        NaN, NaN, 0 when there is none (below the BBP threshold).
    lam_edge : float
        The left edge of the (cut) bulk.
    law : SampleLaw
        The per-sample law (xi, g0) the spectrum was computed from.
    """

    lam: np.ndarray
    rho: np.ndarray
    m: np.ndarray
    lam1: float
    m1: float
    omega0: float
    lam_edge: float
    law: SampleLaw

    @property
    def has_outlier(self) -> bool:
        """True above the BBP threshold (a signal eigenvalue separates from the bulk)."""
        return self.omega0 > 0.0


def plateau_spectrum(kappa: float, b2: float, D: float, n_grid: int = N_GRID,
                     n_xi: int = N_XI, n_g: int = N_G) -> PlateauSpectrum:
    """Bulk density, per-sample Stieltjes transform and signal outlier of Ghat0.

    Parameters
    ----------
    kappa, b2, D : float
        P / D (> 1), |beta|^2 / D (convention-A units) and the input dimension (finite-P cut).
    n_grid, n_xi, n_g : int
        Spectral grid and quadrature sizes.

    Returns
    -------
    PlateauSpectrum
    """
    law = sample_law(kappa, b2, D, n_xi, n_g, spike_noise=False)
    keep = law.weight > 0
    T, W, XI2 = law.r0[keep], law.weight[keep], law.xi[keep] ** 2
    spread = (1.0 + 1.0 / math.sqrt(kappa)) ** 2 * 1.05
    lo, hi = min(T.min(), 0.0) * spread - 0.05, max(T.max(), 0.0) * spread + 0.05
    lam = np.linspace(lo, hi, n_grid)
    m = _stieltjes_grid(lam, T, W, float(kappa), 1e-6 * (hi - lo))
    rho = np.maximum(m.imag / math.pi, 0.0)
    m_pole = kappa / -T.min() if T.min() < 0 else math.inf
    m_hi = min(m_pole * (1.0 - 1e-9), 1e3)
    _, lam_edge, m1 = _find_outlier(T, W, XI2, float(kappa), m_hi)
    lam1, omega0 = math.nan, 0.0
    if math.isfinite(m1):
        lam1 = float(_z_of_m(m1, T, W, float(kappa)))
        dm = 1e-6 * m1
        dh = (_outlier_h(m1 + dm, T, W, XI2, kappa) - _outlier_h(m1 - dm, T, W, XI2, kappa))
        dl = (_z_of_m(m1 + dm, T, W, kappa) - _z_of_m(m1 - dm, T, W, kappa))
        omega0 = float(np.clip(1.0 / (1.0 - dh / dl), 0.0, 1.0))
    return PlateauSpectrum(lam, rho, m, lam1, float(m1), omega0, float(lam_edge), law)


def bulk_cells(spec: PlateauSpectrum, r0: np.ndarray, kappa: float,
               n_bulk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse-grain the bulk into ``n_bulk`` cells of equal spectral mass (the frozen basis
    directions of the closure) and the per-sample weights w(r0, l) averaged over each cell.

    Returns
    -------
    (lam_b, p_b, Wb)
        Cell centres, masses (sum 1) and the (n_samples, n_cells) matrix of w(r0_s, cell).
    """
    lam, rho, m = spec.lam, spec.rho, spec.m
    dl = lam[1] - lam[0]
    mass = rho * dl
    keep = mass > 1e-9 * mass.sum()
    cdf = np.cumsum(mass) / mass.sum()
    edges = np.searchsorted(cdf, np.linspace(0.0, 1.0, n_bulk + 1)[1:-1])
    lam_b, p_b, cols = [], [], []
    for c in np.split(np.arange(lam.size), edges):
        c = c[keep[c]]
        if c.size == 0:
            continue
        pw, mc = mass[c], m[c]
        num = (mc[None, :] / (1.0 + r0[:, None] * mc[None, :] / kappa)).imag
        cols.append(np.sum(num / mc.imag[None, :] * pw[None, :], axis=1) / pw.sum())
        lam_b.append(float(np.sum(pw * lam[c]) / pw.sum()))
        p_b.append(float(pw.sum()))
    p = np.asarray(p_b)
    return np.asarray(lam_b), p / p.sum(), np.ascontiguousarray(np.column_stack(cols))


def mp_rule(kappa: float, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the law of the eigenvalues of X^T X (D x D, x ~ N(0, I/D),
    P = kappa D): kappa times Marchenko–Pastur of ratio 1/kappa (kappa > 1)."""
    yr = 1.0 / kappa
    a, b = (1.0 - math.sqrt(yr)) ** 2, (1.0 + math.sqrt(yr)) ** 2
    th = (np.arange(n) + 0.5) * math.pi / n
    x = a + (b - a) * (1.0 - np.cos(th)) / 2.0
    dens = np.sqrt(np.maximum((b - x) * (x - a), 0.0)) / (2.0 * math.pi * yr * x)
    w = dens * (b - a) / 2.0 * np.sin(th) * (math.pi / n)
    return kappa * x, w / w.sum()
