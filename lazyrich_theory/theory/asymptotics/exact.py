"""Exact finite-D references for the D -> inf theory: sampled data, K0 kernel regression and
the linearised model's learning curves, with the exact (Wick) population loss.

Convention A, N = inf, centered, y = (beta . x)^2 / 2 (tau = 1/2).  The kernel is
``core.kernels.ntk_tilde_infinite``, the population loss of a kernel expansion
``theory.kernel_loss.KernelExpansionLoss`` and the curves those of
``theory.lazy.LinearizedModel`` (one implementation of each).  ``b2`` = |beta|^2 / D.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich_theory.core.kernels import ntk_tilde_infinite
from lazyrich_theory.theory.kernel_loss import KernelExpansionLoss
from lazyrich_theory.theory.lazy import LinearizedModel

__all__ = ["sample_data", "k0_regression_exact", "linearized_curves_exact"]

#: The teacher scale of the asymptotic theory: y = tau (beta . x)^2 with tau = 1/2.
TAU = 0.5


def sample_data(D: int, kappa: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X (P x D, rows ~ N(0, I/D), P = round(kappa D)) and beta ~ N(0, I_D) from one seed."""
    rng = np.random.default_rng(seed)
    P = int(round(kappa * D))
    X = rng.standard_normal((P, D)) / math.sqrt(D)
    beta = rng.standard_normal(D)
    return X, beta


def k0_regression_exact(X: np.ndarray, beta: np.ndarray, eps: float, ridge: float = 0.0,
                        y: np.ndarray | None = None) -> dict[str, float]:
    """Exact finite-D kernel regression with Ktilde0: a = (K + ridge I)^-1 y.

    Parameters
    ----------
    X : ndarray, shape (P, D)
        Inputs in convention-A units.
    beta : ndarray, shape (D,)
        The teacher, y(x) = (beta . x)^2 / 2.
    eps : float
        The quadratic coefficient of the kernel.
    ridge : float
        Ridge in Ktilde units.
    y : ndarray, optional
        Training labels (default the clean ones).

    Returns
    -------
    dict
        test_loss (the exact population MSE against y(x)), train_loss = mean (K a - y)^2,
        b2 = |beta|^2 / D and the b2^2-normalised losses (the losses scale exactly as
        |beta|^4 given beta's direction).
    """
    P, D = X.shape
    if y is None:
        y = TAU * (X @ beta) ** 2
    K = ntk_tilde_infinite(X, eps)
    a = np.linalg.solve(K + ridge * np.eye(P), y)
    test = float(KernelExpansionLoss.initial_infinite_width(X, beta, eps, TAU)(a))
    train = float(np.mean((K @ a - y) ** 2))
    b2 = float(beta @ beta) / D
    return dict(test_loss=test, train_loss=train, b2=b2,
                test_loss_normalised=test / b2**2, train_loss_normalised=train / b2**2)


def linearized_curves_exact(X: np.ndarray, beta: np.ndarray, eps: float, eta0: float, t: Any,
                            method: str = "gd") -> dict[str, np.ndarray]:
    """Exact finite-D learning curves of the linearised model (one eigendecomposition).

    train(t) = |(I - cK)^t y|^2 / P and the exact population test loss of
    f_t = K(., X) A_t(K) y, A_t(l) = [1 - (1 - c l)^t]/l, c = 2 eta0 / P (or exp for "flow"):
    ``LinearizedModel.initial_infinite_width(X, beta, eps, eta0).curves`` with non-integer GD
    times allowed (log grids).

    Returns
    -------
    dict
        train_loss, test_loss (arrays over t) and b2 = |beta|^2 / D.
    """
    model = LinearizedModel.initial_infinite_width(X, beta, eps, eta0, TAU)
    cur = model.curves(t, method, test=False, whole_steps=False)
    b2 = float(beta @ beta) / X.shape[1]
    return dict(train_loss=cur.train_loss, test_loss=cur.population_loss, b2=b2)
