"""Leading order in the proportional limit D -> inf, P = kappa D (El Karoui's linearisation
of Ktilde0: a linear kernel, an effective ridge eps^2 and a constant mode; see the package
docstring and docs/asymptotics.md §2–3).

Names: ``b2`` = |beta|^2 / D, ``kappa`` = P / D, c0 = b2/2 = E[y], s2 = b2^2/2 = Var[y].
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.asymptotics.spectra import _filters, _mp_stieltjes_deriv, mp_stieltjes

__all__: list[str] = []


def _lead_r(kappa: float, lam_eff: float) -> float:
    """Positive root of kappa r^2 + (kappa - 1 - lam_eff) r - lam_eff = 0 (stable form)."""
    bq = kappa - 1 - lam_eff
    disc = math.sqrt(bq * bq + 4 * kappa * lam_eff)
    return (2 * lam_eff / (bq + disc)) if bq > 0 else ((disc - bq) / (2 * kappa))


def _k0_leading(kappa: float, eps: float, b2: float, ridge: float) -> dict[str, float]:
    """Leading-order K0 (ridge) regression: test/train loss, the root r and the split of the
    test loss into constant + noise + linear (``k0_regression_asymptotic`` with D=None)."""
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


def _leading_curves(kappa, eps, eta0, t, D, b2, method):
    (ml, mw), (nl, nw), s = _leading_spectra(kappa, eps)
    c = 2 * eta0 / (kappa * D)
    lam_max = max(ml.max(), nl.max())
    if method == "gd" and c * lam_max >= 2:
        raise ProblemError(f"GD unstable: c lambda_max = {c * lam_max:.3g} >= 2")
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
