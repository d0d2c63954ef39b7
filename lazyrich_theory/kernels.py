"""Neural tangent kernel from the sufficient statistics (docs/theory.md §6).

    K(x, x') = (alpha^2 / N) (x . x') [1 + eps wbar.(x + x') + eps^2 x^T M x']

so that eta K = eta0 Ktilde with the width-free kernel

    Ktilde(x, x') = (x . x') [1 + eps wbar.(x + x') + eps^2 x^T M x'].
"""

from __future__ import annotations

import numpy as np

__all__ = ["ntk_tilde", "stable_eta0_bound"]


def ntk_tilde(X: np.ndarray, F: np.ndarray, z: np.ndarray, eps: float,
              X2: np.ndarray | None = None) -> np.ndarray:
    """Ktilde(X, X2) in convention-A units, with wbar = F z and M = F F^T."""
    X2 = X if X2 is None else X2
    XF, X2F = X @ F, X2 @ F
    lin1, lin2 = XF @ z, X2F @ z
    inner = 1.0 + eps * (lin1[:, None] + lin2[None, :]) + eps**2 * (XF @ X2F.T)
    return (X @ X2.T) * inner


def stable_eta0_bound(X: np.ndarray, F: np.ndarray, z: np.ndarray, eps: float) -> float:
    """Gauss–Newton stability bound of GD at state F: eta0 < P / lambda_max(Ktilde(X, X)).

    GD on the linearised model diverges once (2 eta / P) lambda_max(K) > 2, i.e. once
    eta0 lambda_max(Ktilde) > P.  Far from the lazy regime this is an estimate, not a theorem.
    """
    K = ntk_tilde(X, F, z, eps)
    lam = float(np.linalg.eigvalsh(0.5 * (K + K.T))[-1])
    return X.shape[0] / lam if lam > 0 else float("inf")
