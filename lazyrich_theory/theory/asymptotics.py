"""Proportional asymptotics (D -> inf, P = kappa D) of the initial-NTK (lazy) model.

Setting (THEORY.md §1, §4; derivation in docs/asymptotics.md).  Convention A, N = inf, centered:
x ~ N(0, I/D), y = 1/2 (beta.x)^2 = x^T B x with B = 1/2 beta beta^T, b2 = |beta|^2 / D, and the
width-free initial kernel (eta K0 = eta0 Ktilde0)

    Ktilde0(x, x') = (x.x') [1 + eps^2 (x.x')]  =  psi(x) . psi(x'),   psi(x) = (x, eps x x^T),

i.e. regression on the D linear features and the D(D+1)/2 quadratic features x_i x_j.  The target is
exactly realisable: y = psi(x).theta* with theta* = (0, B / eps).

Notation used throughout: c0 = b2/2 = E[y] (the constant part of y), s2 = b2^2/2 = Var[y] (its
quadratic fluctuation), mean square E[y^2] = c0^2 + s2 = 3 b2^2 / 4.  A ridge lambda means
a = (Ktilde0(X, X) + lambda I)^{-1} y.

Two levels of theory
--------------------
**Leading order** (``D=None`` / ``order="leading"``).  For mu != nu, x_mu.x_nu = O(D^-1/2), so
(El Karoui 2010)

    Ktilde0(X, X) ~ X X^T + eps^2 I + (eps^2 / D) 1 1^T,

a linear kernel, an effective ridge eps^2 (the diagonal eps^2 |x|^4 ~ eps^2 together with the
nearly-isotropic Gram matrix of the quadratic features), and a constant mode.  The even target has no
linear part; its constant c0 sits on the constant mode, its fluctuation (variance s2) acts as noise.
With lam_eff = eps^2 + lambda and r the root > 0 of

    kappa r - r / (1 + r) = lam_eff        (kappa r^2 + (kappa - 1 - lam_eff) r - lam_eff = 0)

the ridge(less) regression errors are

    test  = [ c0^2 (r / (r + eps^2))^2 + s2 ] / [ 1 - 1 / (kappa (1 + r)^2) ]
    train = (lambda / (kappa r))^2 * test.

Ridgeless, eps -> 0, kappa > 1:  test -> b2^2 (2 kappa^2 + 1) / (4 kappa (kappa - 1)).

**Finite-D deterministic equivalent** (``D=int`` / ``order="de"``): the standard deterministic
equivalent of ridge regression (Bach 2023; Atanasov, Zavatone-Veth & Pehlevan 2024) applied to the
exact second-moment spectrum of psi, which has three groups

    linear        sigma = 1/D                     multiplicity D          target weight 0
    identity dir. sigma = eps^2 (D + 2) / D^2     multiplicity 1          |theta|^2 = c0^2 D / eps^2
    traceless     sigma = 2 eps^2 / D^2           multiplicity D(D+1)/2-1 |theta|^2 = b2^2 D^2 (1 - 1/D) / (4 eps^2)

It keeps the partial learning of the quadratic features (order P / D^2) that the leading order drops;
test = E0 + E1 / D + O(D^-2) with E1 < 0 (eps -> 0, ridgeless:
E1 = -b2^2 (4 kappa^4 + 2 kappa^3 + 2 kappa^2 - 2 kappa - 3) / (4 kappa^3)).  It treats the
features as if Gaussian; see docs/asymptotics.md for its measured accuracy.

Learning curves of the linearised model: train residual (I - cK)^t (-y), c = 2 eta0 / P, K = Ktilde0
(``method="gd"``), or exp(-c K t) (``method="flow"``, same time axis).  Curves depend on t through
c t = 2 eta0 t / (kappa D), so the dimension D is needed to read t in GD steps.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "k0_regression_asymptotic",
    "k0_regression_expansion",
    "linearized_curves_asymptotic",
    "sample_data",
    "k0_regression_exact",
    "linearized_curves_exact",
    "feature_groups",
    "mp_stieltjes",
]


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------

def _check(kappa: float, eps: float, b2: float, ridge: float = 0.0) -> None:
    if not (kappa > 0 and math.isfinite(kappa)):
        raise ValueError(f"kappa must be positive, got {kappa!r}")
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be positive (eps = 0 makes the kernel singular), got {eps!r}")
    if not (b2 > 0 and math.isfinite(b2)):
        raise ValueError(f"b2 must be positive, got {b2!r}")
    if not (ridge >= 0 and math.isfinite(ridge)):
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")


def mp_stieltjes(z: Any, gamma: float) -> np.ndarray:
    """Stieltjes transform g(z) = int dmu(l) / (l - z) of the spectrum of X X^T (P x P).

    X has iid N(0, 1/D) entries and gamma = P / D.  mu is the Marchenko–Pastur law of ratio gamma
    (atom 1 - 1/gamma at 0 when gamma > 1), support [(1 - sqrt g)^2, (1 + sqrt g)^2]:

        g(z) = [1 - gamma - z + sqrt(z - l_-) sqrt(z - l_+)] / (2 gamma z),

    solving gamma z g^2 + (z + gamma - 1) g + 1 = 0.  Use z +- i0 for boundary values.
    """
    z = np.asarray(z, dtype=complex)
    lm, lp = (1 - math.sqrt(gamma)) ** 2, (1 + math.sqrt(gamma)) ** 2
    sq = np.sqrt(z - lm) * np.sqrt(z - lp)
    return (1 - gamma - z + sq) / (2 * gamma * z)


def _mp_stieltjes_deriv(z: Any, gamma: float) -> np.ndarray:
    g = mp_stieltjes(z, gamma)
    z = np.asarray(z, dtype=complex)
    return -(gamma * g * g + g) / (2 * gamma * z * g + z + gamma - 1)


# ----------------------------------------------------------------------------------------------
# (a) kernel regression with K0
# ----------------------------------------------------------------------------------------------

def _lead_r(kappa: float, lam_eff: float) -> float:
    """Positive root of kappa r^2 + (kappa - 1 - lam_eff) r - lam_eff = 0 (stable form)."""
    bq = kappa - 1 - lam_eff
    disc = math.sqrt(bq * bq + 4 * kappa * lam_eff)
    return (2 * lam_eff / (bq + disc)) if bq > 0 else ((disc - bq) / (2 * kappa))


def feature_groups(D: float, kappa: float, eps: float, b2: float = 1.0) -> dict[str, np.ndarray]:
    """The three eigen-groups of the feature second moment E[psi psi^T], psi = (x, eps x x^T).

    Returned in kernel units (sigma multiplied by P = kappa D, so that the spectra of Ktilde0(X,X)
    are O(1)); ``theta2`` is the squared target weight of each group divided by P, so that
    sum(theta2 * sigma) = E[y^2] = 3 b2^2 / 4.
    """
    P = kappa * D
    sigma = np.array([1.0 / D, eps**2 * (D + 2) / D**2, 2 * eps**2 / D**2]) * P
    mult = np.array([float(D), 1.0, D * (D + 1) / 2 - 1])
    c0 = b2 / 2
    theta2 = np.array([0.0, c0**2 * D / eps**2, (b2**2 * D**2 / 4) * (1 - 1 / D) / eps**2]) / P
    return dict(sigma=sigma, mult=mult, theta2=theta2, P=np.float64(P))


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
        raise ValueError("P must be smaller than the number of features D + D(D+1)/2")

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


def k0_regression_asymptotic(kappa: float, eps: float, b2: float = 1.0, ridge: float = 0.0,
                             D: float | None = None) -> dict[str, float]:
    """Population test MSE and train MSE of (ridge) kernel regression with Ktilde0.

    ``D=None``: leading order in the proportional limit (module docstring):

        kappa r - r/(1+r) = eps^2 + ridge,
        test  = [c0^2 (r/(r+eps^2))^2 + s2] / [1 - 1/(kappa (1+r)^2)],
        train = (ridge / (kappa r))^2 test,

    with c0 = b2/2, s2 = b2^2/2.  The returned dict also splits the leading-order test loss into
    ``constant`` (unlearned mean), ``noise`` (the quadratic fluctuation, never learned at this
    order) and ``linear`` (variance of the linear part fitted to that noise); these add up to
    test_loss.

    ``D=<number>``: finite-D deterministic equivalent on the exact three-group feature spectrum
    (keeps the quadratic features' partial learning, O(P/D^2)); returns test_loss, train_loss, the
    renormalised ridge ``rho`` (kernel units) and the learned fractions of a quadratic and of a
    linear feature direction.
    """
    _check(kappa, eps, b2, ridge)
    if D is not None:
        return _de_ridge(float(D), kappa, eps, b2, ridge)
    lam_eff = eps**2 + ridge
    r = _lead_r(kappa, lam_eff)
    c0, s2 = b2 / 2, b2**2 / 2
    amp = 1.0 / (1.0 - 1.0 / (kappa * (1 + r) ** 2))
    constant = c0**2 * (r / (r + eps**2)) ** 2
    test = (constant + s2) * amp
    train = (ridge / (kappa * r)) ** 2 * test
    return dict(test_loss=float(test), train_loss=float(train), r=float(r),
                constant=float(constant), noise=float(s2),
                linear=float(test - constant - s2))


def k0_regression_expansion(kappa: float, eps: float, b2: float = 1.0,
                            ridge: float = 0.0) -> dict[str, float]:
    """test_loss = E0 + E1 / D + O(D^-2): E0 the leading order, E1 from the deterministic equivalent.

    E1 is extracted numerically (Richardson on the finite-D deterministic equivalent at
    D = 1e6, 2e6, 4e6).  In the ridgeless eps -> 0 limit (kappa > 1) it tends to
    -b2^2 (4 kappa^4 + 2 kappa^3 + 2 kappa^2 - 2 kappa - 3) / (4 kappa^3) ~ -kappa b2^2, i.e. a
    reduction of the test loss by about b2^2 P / D^2: the quadratic features are partly learned.
    """
    _check(kappa, eps, b2, ridge)
    E0 = k0_regression_asymptotic(kappa, eps, b2, ridge)["test_loss"]
    Ds = np.array([1e6, 2e6, 4e6])
    vals = np.array([_de_ridge(D, kappa, eps, b2, ridge)["test_loss"] for D in Ds])
    s = (vals - E0) * Ds            # = E1 + E2 / D + ...
    E1 = 2 * s[2] - s[1]            # Richardson: removes the E2/D term
    return dict(E0=float(E0), E1=float(E1))


# ----------------------------------------------------------------------------------------------
# (b) learning curves of the linearised model, leading order (real-axis spectral quadrature)
# ----------------------------------------------------------------------------------------------

def _leading_spectra(kappa: float, eps: float, n: int = 4000):
    """Quadrature rules for the two spectral measures of the leading-order P-space model.

    K = G + eps^2 I + s u u^T, G = X X^T, u = 1/sqrt(P), s = eps^2 kappa; u is Haar-random w.r.t. G.
    mu   : spectrum of K1 = G + eps^2 I (MP of ratio kappa shifted by eps^2; atom at eps^2).
    nu_u : spectral measure of K at u, Stieltjes m_u = g1 / (1 + s g1) with g1(z) = g_MP(z - eps^2):
           density Im m_u(l + i0)/pi on the bulk plus atoms at the real roots z* of 1 + s g1 = 0
           (weight 1 / (s^2 g1'(z*))).  The atom of mu at eps^2 is not seen by u.
    Returns (nodes_mu, w_mu), (nodes_nu, w_nu), s.
    """
    g, e2 = kappa, eps**2
    s = e2 * kappa
    lm, lp = (1 - math.sqrt(g)) ** 2, (1 + math.sqrt(g)) ** 2
    # midpoint rule in theta, lam = lm + (lp - lm)(1 - cos theta)/2: the integrands are smooth
    # functions of cos(theta) times sin(theta)^2, so the rule converges spectrally
    th = np.pi * (np.arange(n) + 0.5) / n
    lam = lm + (lp - lm) * (1 - np.cos(th)) / 2
    dl = (lp - lm) * np.sin(th) / 2 * (np.pi / n)
    dens = np.sqrt(np.maximum((lp - lam) * (lam - lm), 0.0)) / (2 * np.pi * g * lam)
    mu_nodes, mu_w = [lam + e2], [dens * dl]
    if g > 1:
        mu_nodes.append(np.array([e2]))
        mu_w.append(np.array([1 - 1 / g]))
    sq = np.sqrt(lam - lm + 0j) * 1j * np.sqrt(np.maximum(lp - lam, 0.0))   # boundary value +i0
    g1 = (1 - g - lam + sq) / (2 * g * lam)
    nu_nodes, nu_w = [lam + e2], [(g1 / (1 + s * g1)).imag / np.pi * dl]

    def f(z: float) -> float:
        return float(1 + s * mp_stieltjes(z - e2 + 0j, g).real)

    for zs in _leading_outliers(kappa, eps):
        wgt = 1.0 / (s * s * _mp_stieltjes_deriv(zs - e2 + 0j, g).real)
        nu_nodes.append(np.array([zs]))
        nu_w.append(np.array([wgt]))
    return ((np.concatenate(mu_nodes), np.concatenate(mu_w)),
            (np.concatenate(nu_nodes), np.concatenate(nu_w)), s)


def _leading_outliers(kappa: float, eps: float) -> list[float]:
    """Outlier eigenvalues of K = G + eps^2 I + s u u^T (leading order): roots of 1 + s g1(z) = 0
    outside the bulk, g1(z) = g_MP(z - eps^2), s = eps^2 kappa (at most one per spectral gap)."""
    g, e2 = kappa, eps**2
    s = e2 * kappa
    lm, lp = (1 - math.sqrt(g)) ** 2, (1 + math.sqrt(g)) ** 2

    def f(z: float) -> float:
        return float(1 + s * mp_stieltjes(z - e2 + 0j, g).real)

    gaps = []
    if g > 1 and lm > 0:
        gaps.append((e2 + 1e-13 * max(lm, e2), e2 + lm * (1 - 1e-12)))
    gaps.append((e2 + lp * (1 + 1e-12), e2 + lp + 1e8))
    roots = []
    for a, b in gaps:
        if f(a) * f(b) < 0:
            roots.append(brentq(f, a, b, xtol=1e-300, rtol=1e-15, maxiter=500))
    return roots


def _filters(lam: np.ndarray, c: float, t: np.ndarray, method: str):
    """F = (1 - c lam)^t or exp(-c lam t), A = (1 - F)/lam; shapes (len(t), len(lam))."""
    t = t[:, None]
    if method == "gd":
        F = np.power(1 - c * lam[None, :], t)
    else:
        F = np.exp(-c * lam[None, :] * t)
    A = (1 - F) / lam[None, :]
    return F, A


def _leading_curves(kappa, eps, eta0, t, D, b2, method):
    (ml, mw), (nl, nw), s = _leading_spectra(kappa, eps)
    c = 2 * eta0 / (kappa * D)
    lam_max = max(ml.max(), nl.max())
    if method == "gd" and c * lam_max >= 2:
        raise ValueError(f"GD unstable: c lambda_max = {c * lam_max:.3g} >= 2")
    c0, s2, e2 = b2 / 2, b2**2 / 2, eps**2
    Fm, Am = _filters(ml, c, t, method)
    Fn, An = _filters(nl, c, t, method)
    train = c0**2 * (Fn**2 @ nw) + s2 * (Fm**2 @ mw)
    IA = An @ nw
    lin = kappa * (s2 * ((Am**2 * (ml - e2)) @ mw)
                   + c0**2 * ((An**2 * nl) @ nw - e2 * (An**2 @ nw) - s * IA**2))
    const = c0**2 * (1 - s * IA) ** 2
    test = s2 + const + lin
    return dict(train_loss=train, test_loss=test, linear=lin, constant=const,
                noise=np.full_like(test, s2))


# ----------------------------------------------------------------------------------------------
# (b) learning curves, finite-D deterministic equivalent (contour integrals)
# ----------------------------------------------------------------------------------------------

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


def _de_curves(kappa, eps, eta0, t, D, b2, method, nodes_scale=1.0):
    grp = feature_groups(float(D), kappa, eps, b2)
    sig, mult, th, P = grp["sigma"], grp["mult"], grp["theta2"], float(grp["P"])
    c = 2 * eta0 / P
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
    ints = [tuple(iv) for iv in merged]
    if method == "gd":
        if c * ints[-1][1] >= 1:
            raise ValueError("order='de' with method='gd' needs c lambda_max < 1 "
                             f"(got {c * ints[-1][1]:.3g}); use a smaller eta0 or method='flow'")

        def z_of(zeta):
            return -np.expm1(-c * zeta) / c

        def dz_of(zeta):
            return np.exp(-c * zeta)

        def zeta_of(z):
            return -np.log1p(-c * z) / c
    else:
        def z_of(zeta):
            return zeta

        def dz_of(zeta):
            return np.ones_like(zeta)

        def zeta_of(z):
            return z
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


def linearized_curves_asymptotic(kappa: float, eps: float, eta0: float, t: Any, *, D: float,
                                 b2: float = 1.0, method: str = "gd",
                                 order: str = "leading") -> dict[str, np.ndarray]:
    """Train and population test loss of the linearised (lazy, N = inf, centered) model vs t.

    GD with c = 2 eta0 / P on K = Ktilde0(X, X): r(t) = (I - cK)^t (-y), f_t(x) = k(x)^T A_t(K) y
    with A_t(l) = [1 - (1 - c l)^t] / l; ``method="flow"`` replaces (1 - c l)^t by exp(-c l t).
    ``t`` is in GD steps (array or scalar); D converts it (c = 2 eta0 / (kappa D)).

    ``order="leading"`` (D -> inf at fixed c t): in sample space K = G + eps^2 I + s u u^T
    (G = X X^T, s = eps^2 kappa, u = 1/sqrt(P)), y = c0 sqrt(P) u + xi, xi isotropic with variance
    s2; mu = spectrum of G + eps^2 I, nu_u = spectral measure of K at u (see _leading_spectra):

        train = c0^2 int F^2 dnu_u + s2 int F^2 dmu
        test  = s2 + c0^2 (1 - s int A dnu_u)^2
                + kappa [ s2 int A^2 (l - eps^2) dmu
                          + c0^2 ( int A^2 l dnu_u - eps^2 int A^2 dnu_u - s (int A dnu_u)^2 ) ].

    The three test terms are returned as ``noise``, ``constant`` and ``linear``.  t -> inf gives
    the ridgeless k0_regression_asymptotic.

    ``order="de"``: feature-space deterministic equivalent at this finite D (first correction):
    with Sigma-hat the feature sample covariance, F = F(Sigma-hat), H = 1 - F,

        test  = theta^T Sigma theta - 2 theta^T H Sigma theta + theta^T H Sigma H theta,
        train = theta^T Sigma-hat F^2 theta,

    the one- and two-resolvent deterministic equivalents
        R(z) ~ (a(z) Sigma - z)^-1,   R1 Sigma R2 ~ T1 Sigma T2 / (1 - (a1 a2 / P) tr Sigma T1 Sigma T2)
    and contour integrals around each spectral cluster.
    """
    _check(kappa, eps, b2)
    if method not in ("gd", "flow"):
        raise ValueError("method must be 'gd' or 'flow'")
    if not (eta0 > 0):
        raise ValueError("eta0 must be positive")
    if D is None or not (D > 0):
        raise ValueError("D (the input dimension) is needed to read t in GD steps")
    scalar = np.ndim(t) == 0
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    if order == "leading":
        out = _leading_curves(kappa, eps, eta0, t, float(D), b2, method)
    elif order == "de":
        out = _de_curves(kappa, eps, eta0, t, float(D), b2, method)
    else:
        raise ValueError("order must be 'leading' or 'de'")
    if scalar:
        out = {k: v[0] for k, v in out.items()}
    return out


# ----------------------------------------------------------------------------------------------
# exact finite-D numbers (plain numpy)
# ----------------------------------------------------------------------------------------------

def sample_data(D: int, kappa: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (P x D, rows ~ N(0, I/D), P = round(kappa D)) and beta ~ N(0, I_D) from one seed."""
    rng = np.random.default_rng(seed)
    P = int(round(kappa * D))
    X = rng.standard_normal((P, D)) / math.sqrt(D)
    beta = rng.standard_normal(D)
    return X, beta


def _population_loss(X, beta, eps, alpha, G, y):
    """Exact E_x[(f - y)^2] for f(x) = sum_mu alpha_mu Ktilde0(x_mu, x), alpha of shape (P, ...).

    f(x) = v.x + x^T M x with v = X^T alpha, M = eps^2 X^T diag(alpha) X; with Delta = M - B the
    Wick formulas of THEORY.md §3 give  |v|^2/D + [(tr Delta)^2 + 2 tr Delta^2] / D^2, where
    tr M = eps^2 sum alpha |x_mu|^2, tr M^2 = eps^4 alpha^T (G o G) alpha, tr MB = eps^2 alpha^T y.
    """
    D = X.shape[1]
    a2 = alpha.reshape(alpha.shape[0], -1)
    v = X.T @ a2
    n2 = np.einsum("ij,ij->i", X, X)
    trM = eps**2 * (n2 @ a2)
    trM2 = eps**4 * np.einsum("it,it->t", a2, (G * G) @ a2)
    ystar = 0.5 * (X @ beta) ** 2
    trMB = eps**2 * (ystar @ a2)
    trB = 0.5 * float(beta @ beta)
    trD = trM - trB
    trD2 = trM2 - 2 * trMB + trB**2
    out = np.sum(v * v, 0) / D + (trD**2 + 2 * trD2) / D**2
    return out.reshape(alpha.shape[1:])


def k0_regression_exact(X: np.ndarray, beta: np.ndarray, eps: float, ridge: float = 0.0,
                        y: np.ndarray | None = None) -> dict[str, float]:
    """Exact finite-D kernel regression with Ktilde0: a = (K + ridge I)^-1 y.

    test_loss is the exact population MSE against y(x) = (beta.x)^2 / 2 (Wick formulas);
    train_loss = mean (K a - y)^2.  ``y`` defaults to the clean labels.  Also returns b2 and the
    b2-normalised losses (the losses scale exactly as |beta|^4 given beta's direction).
    """
    P, D = X.shape
    G = X @ X.T
    if y is None:
        y = 0.5 * (X @ beta) ** 2
    K = G * (1 + eps**2 * G)
    a = np.linalg.solve(K + ridge * np.eye(P), y)
    test = float(_population_loss(X, beta, eps, a[:, None], G, y)[0])
    train = float(np.mean((K @ a - y) ** 2))
    b2 = float(beta @ beta) / D
    return dict(test_loss=test, train_loss=train, b2=b2,
                test_loss_normalised=test / b2**2, train_loss_normalised=train / b2**2)


def linearized_curves_exact(X: np.ndarray, beta: np.ndarray, eps: float, eta0: float, t: Any,
                            method: str = "gd") -> dict[str, np.ndarray]:
    """Exact finite-D learning curves of the linearised model (eigendecomposition of Ktilde0).

    train(t) = |(I - cK)^t y|^2 / P and the exact population test loss of
    f_t = K(., X) A_t(K) y, A_t(l) = [1 - (1 - c l)^t]/l, c = 2 eta0 / P (or exp for "flow").
    """
    P, D = X.shape
    G = X @ X.T
    y = 0.5 * (X @ beta) ** 2
    K = G * (1 + eps**2 * G)
    lam, U = np.linalg.eigh(K)
    c = 2 * eta0 / P
    t = np.atleast_1d(np.asarray(t, dtype=float))
    F, A = _filters(lam, c, t, method)          # (nt, P)
    yt = U.T @ y
    train = np.sum((F * yt[None, :]) ** 2, 1) / P
    alpha = U @ (A * yt[None, :]).T             # (P, nt)
    test = _population_loss(X, beta, eps, alpha, G, y)
    b2 = float(beta @ beta) / D
    return dict(train_loss=train, test_loss=np.asarray(test), b2=b2)
