"""Losses and statistics computed from the sufficient statistics (wbar, M).

All formulas are in convention-A units (x ~ N(0, I/D)), target B = tau * beta beta^T.
With (wbar_ref, M_ref) = (wbar0, M0) for the centered model and (0, 0) for the uncentered one,

    v = alpha (wbar - wbar_ref),     Delta = (alpha eps / 2)(M - M_ref) - B,

and the exact population test loss (docs/theory.md §4) is

    E_x[e^2] = |v|^2 / D  +  (tr Delta)^2 / D^2  +  2 tr(Delta^2) / D^2
               linear_power     variance             misalignment

This Wick formula for an error e(x) = v.x + x^T Delta x is written once, in ``wick_terms``;
every other population loss of the package (the population ODE, the linearised model, the
D -> inf references) evaluates it from its own (|v|^2, tr Delta, tr Delta^2).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["decomposition", "diagnostics", "population_loss", "predict", "reference",
           "wick_terms"]


def predict(XF: np.ndarray, z: np.ndarray, alpha: float, eps: float) -> np.ndarray:
    """f(x) = alpha wbar.x + (alpha eps/2) x^T M x for rows x of X, given XF = X F,
    wbar = F z and M = F F^T (the factor form)."""
    return alpha * (XF @ z) + (0.5 * alpha * eps) * np.einsum("ij,ij->i", XF, XF)


def reference(centered: bool, wbar0: np.ndarray, M0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wbar_ref, M_ref): the initial statistics for the centered model, zeros otherwise."""
    if centered:
        return wbar0, M0
    return np.zeros_like(wbar0), np.zeros_like(M0)


@njit(cache=True)
def wick_terms(v2, trD, trD2, D):
    """The three terms of E_x[e^2] for e(x) = v.x + x^T Delta x, x ~ N(0, I/D) (Wick).

    Parameters
    ----------
    v2 : float or ndarray
        |v|^2.
    trD : float or ndarray
        tr Delta.
    trD2 : float or ndarray
        tr(Delta^2) (= ||Delta||_F^2 for a symmetric Delta).
    D : float
        The input dimension.

    Returns
    -------
    (variance, misalignment, linear_power) : tuple
        ((tr Delta)^2 / D^2, 2 tr(Delta^2) / D^2, |v|^2 / D), elementwise for arrays.
        Compiled with Numba, so the population ODE's compiled code evaluates it too.
    """
    return trD * trD / (D * D), 2.0 * trD2 / (D * D), v2 / D


def decomposition(wbar: np.ndarray, M: np.ndarray, wbar_ref: np.ndarray, M_ref: np.ndarray,
                  beta: np.ndarray, alpha: float, eps: float, tau: float) -> tuple[float, float, float]:
    """(variance, misalignment, linear_power) of the population test loss; see module doc."""
    D = wbar.shape[0]
    v = alpha * (wbar - wbar_ref)
    Delta = (0.5 * alpha * eps) * (M - M_ref)
    Delta -= tau * np.outer(beta, beta)
    # Delta is symmetric: tr(Delta^2) = ||Delta||_F^2
    variance, misalignment, linear_power = wick_terms(float(v @ v), np.trace(Delta),
                                                      float(np.sum(Delta * Delta)), D)
    return float(variance), float(misalignment), float(linear_power)


def population_loss(wbar, M, wbar_ref, M_ref, beta, alpha, eps, tau) -> float:
    """E_x[(ftilde(x) - y(x))^2] for x ~ N(0, I/D): the sum of the three terms."""
    return float(sum(decomposition(wbar, M, wbar_ref, M_ref, beta, alpha, eps, tau)))


def diagnostics(wbar: np.ndarray, M: np.ndarray, wbar0: np.ndarray, M0: np.ndarray,
                beta: np.ndarray) -> tuple[float, float, float, float]:
    """(alignment, trace_dM, frob_dM, norm_dwbar), always relative to initialisation:
    betahat^T (M - M0) betahat,  tr(M - M0)/D,  ||M - M0||_F,  ||wbar - wbar0||."""
    D = wbar.shape[0]
    dM = M - M0
    bn = float(np.linalg.norm(beta))
    bhat = beta / bn if bn > 0 else beta
    return (float(bhat @ dM @ bhat), float(np.trace(dM)) / D,
            float(np.linalg.norm(dM)), float(np.linalg.norm(wbar - wbar0)))
