"""Building blocks of the D -> inf theory: input checks, the Marchenko–Pastur Stieltjes
transform, the three eigen-groups of the feature second moment of Ktilde0, and the spectral
filters of GD and gradient flow.

Names: ``b2`` = |beta|^2 / D (the teacher's scale; |beta|^2 itself is ``beta2`` elsewhere),
``kappa`` = P / D, ``eps`` the network's quadratic coefficient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich_theory.errors import ProblemError

__all__ = ["mp_stieltjes", "feature_groups"]


def _check(kappa: float, eps: float, b2: float, ridge: float = 0.0) -> None:
    if not (kappa > 0 and math.isfinite(kappa)):
        raise ProblemError(f"kappa must be positive, got {kappa!r}")
    if not (eps > 0 and math.isfinite(eps)):
        raise ProblemError(f"eps must be positive (eps = 0 makes the kernel singular), got {eps!r}")
    if not (b2 > 0 and math.isfinite(b2)):
        raise ProblemError(f"b2 must be positive, got {b2!r}")
    if not (ridge >= 0 and math.isfinite(ridge)):
        raise ProblemError(f"ridge must be >= 0, got {ridge!r}")


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


def _filters(lam: np.ndarray, c: float, t: np.ndarray, method: str):
    """F = (1 - c lam)^t or exp(-c lam t), A = (1 - F)/lam; shapes (len(t), len(lam))."""
    t = t[:, None]
    if method == "gd":
        F = np.power(1 - c * lam[None, :], t)
    else:
        F = np.exp(-c * lam[None, :] * t)
    A = (1 - F) / lam[None, :]
    return F, A
