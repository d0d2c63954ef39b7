"""The teacher classes with an exact population loss: paper, quadratic, Hermite (single and
multi-index)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermeval

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.targets.moments import (
    hermite_gram, hermite_projection_coefficients, quadratic_error_split,
)



def paper_labels(X_A: np.ndarray, beta: np.ndarray, tau: float) -> np.ndarray:
    """The paper's teacher y = tau (beta . x)^2 for inputs ``X_A`` in convention-A units (rows)."""
    h = X_A @ beta
    return tau * h * h

# ============================================================================ targets
class Target:
    """A teacher y(z), z = sqrt(D) x_A ~ N(0, I), with its degree <= 2 Hermite projection
    y_{<=2} = c0 + c1 . z + (z^T C2 z - tr C2) and its irreducible (degree >= 3) power."""

    spec: str = "paper"
    exact: bool = True
    D: int
    c0: float
    c1: np.ndarray
    C2: np.ndarray
    irreducible_loss: float = 0.0
    irreducible_stderr: float = 0.0
    #: direction used for the ``alignment`` diagnostic (None: the problem's beta)
    direction: np.ndarray | None = None

    def labels_z(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def labels(self, problem: Any, X: np.ndarray) -> np.ndarray:
        """Clean labels y(x) for inputs X (rows) stored in the problem's convention units."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.D:
            raise ProblemError(f"inputs must have shape (n, {self.D}), got {X.shape}")
        return self.labels_z(X * (problem.input_scale * math.sqrt(self.D)))

    def model_coefficients(self, wbar, M, wref, Mref, alpha, eps) -> tuple[np.ndarray, np.ndarray]:
        """(l, Q): ftilde = l . z + z^T Q z with l = alpha (wbar - wref)/sqrt(D),
        Q = (alpha eps / 2)(M - Mref)/D."""
        D = self.D
        lvec = (alpha / math.sqrt(D)) * (wbar - wref)
        Q = (0.5 * alpha * eps / D) * (M - Mref)
        return lvec, Q

    def decomposition(self, wbar, M, wref, Mref, alpha, eps) -> tuple[float, float, float]:
        """(variance, misalignment, linear_power) of the degree <= 2 error ftilde - y_{<=2}:
        a0 = tr C2 - c0, a = l - c1, A = Q - C2 in :func:`quadratic_error_split`."""
        lvec, Q = self.model_coefficients(wbar, M, wref, Mref, alpha, eps)
        a = lvec - self.c1
        A = Q - self.C2
        var, lin, mis = quadratic_error_split(float(np.trace(self.C2)) - self.c0,
                                              float(np.trace(A)), float(a @ a),
                                              float(np.sum(A * A)))
        return var, mis, lin

    @property
    def loss_constant(self) -> float:
        """The constant added to variance + misalignment + linear_power to give the population
        loss: the irreducible loss for exact targets; for Monte-Carlo targets the plug-in
        S - |c_hat|^2, which makes the total |m|^2 - 2 m.c_hat + S unbiased."""
        return self.irreducible_loss

    def population_loss(self, wbar, M, wref, Mref, alpha, eps) -> float:
        """E_z[(ftilde - y)^2] = variance + misalignment + linear_power + loss_constant."""
        return float(sum(self.decomposition(wbar, M, wref, Mref, alpha, eps))
                     + self.loss_constant)

    def population_loss_stderr(self, wbar, M, wref, Mref, alpha, eps) -> float:
        """Standard error of population_loss (0 for exact targets)."""
        return 0.0

    def second_moment(self) -> float:
        """E[y^2]."""
        var, lin, mis = quadratic_error_split(self.c0 - float(np.trace(self.C2)),
                                              float(np.trace(self.C2)),
                                              float(self.c1 @ self.c1), float(np.sum(self.C2**2)))
        return var + lin + mis + self.loss_constant

    def info(self) -> dict[str, Any]:
        """JSON-able summary: spec, exactness, E[y^2] and the irreducible loss (+- stderr)."""
        return {"target": self.spec, "exact": self.exact,
                "target_second_moment": self.second_moment(),
                "irreducible_loss": float(self.irreducible_loss),
                "irreducible_loss_stderr": float(self.irreducible_stderr)}


class PaperTarget(Target):
    """y = tau (beta . x_A)^2 = z^T (tau beta beta^T / D) z: c0 = tau |beta|^2 / D, c1 = 0,
    C2 = tau beta beta^T / D."""

    def __init__(self, beta: np.ndarray, tau: float, spec: str = "paper"):
        self.beta = np.asarray(beta, dtype=np.float64)
        self.tau = float(tau)
        self.D = self.beta.shape[0]
        self.spec = spec
        self.c0 = self.tau * float(self.beta @ self.beta) / self.D
        self.c1 = np.zeros(self.D)
        self.C2 = (self.tau / self.D) * np.outer(self.beta, self.beta)
        self.direction = self.beta

    def labels_z(self, Z):
        h = (Z / math.sqrt(self.D)) @ self.beta
        return self.tau * h * h

    def labels(self, problem, X):
        return paper_labels(np.asarray(X, dtype=np.float64) * problem.input_scale, self.beta,
                            self.tau)


class QuadraticTarget(Target):
    """y = x_A^T B x_A + b . x_A + c = z^T (B/D) z + (b/sqrt D) . z + c:
    c0 = c + tr B / D, c1 = b / sqrt(D), C2 = B / D, no irreducible part."""

    def __init__(self, B: np.ndarray, b: np.ndarray, c: float, spec: str = "quadratic"):
        B = np.asarray(B, dtype=np.float64)
        D = B.shape[0]
        if B.shape != (D, D) or not np.allclose(B, B.T, rtol=0, atol=1e-12 * max(1.0, np.abs(B).max())):
            raise ProblemError(f"quadratic target: B must be a symmetric square matrix, got shape {B.shape}")
        self.B = 0.5 * (B + B.T)
        self.b = np.asarray(b, dtype=np.float64).reshape(-1)
        if self.b.shape != (D,):
            raise ProblemError(f"quadratic target: b must have shape ({D},), got {self.b.shape}")
        self.c = float(c)
        if not (np.all(np.isfinite(self.B)) and np.all(np.isfinite(self.b)) and math.isfinite(self.c)):
            raise ProblemError("quadratic target: B, b, c must be finite")
        self.D, self.spec = D, spec
        self.c0 = self.c + float(np.trace(self.B)) / D
        self.c1 = self.b / math.sqrt(D)
        self.C2 = self.B / D
        w, V = np.linalg.eigh(self.B)
        self.direction = V[:, int(np.argmax(np.abs(w)))] if D else None

    def labels_z(self, Z):
        X = Z / math.sqrt(self.D)
        return np.einsum("ij,ij->i", X @ self.B, X) + X @ self.b + self.c


class HermiteTarget(Target):
    """y = sum_j sum_k coef[j, k] He_k(u_j . z), unit u_j (rows of U).  Projection (derived
    table a[k, m] = E[He_k He_m] / rho^m): c0 = sum coef[j,k] a[k,0],
    c1 = sum coef[j,k] a[k,1] u_j, C2 = sum coef[j,k] a[k,2]/2 u_j u_j^T;
    irreducible = sum_{j,l} sum_{k,m>=3} coef[j,k] coef[l,m] T_km(u_j . u_l)."""

    def __init__(self, U: np.ndarray, coef: np.ndarray, spec: str = "hermite"):
        U = np.atleast_2d(np.asarray(U, dtype=np.float64))
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        R, D = U.shape
        if coef.shape[0] != R:
            raise ProblemError(f"hermite target: {coef.shape[0]} coefficient rows for {R} directions")
        n = np.linalg.norm(U, axis=1)
        if not np.all(np.isfinite(U)) or np.any(n == 0):
            raise ProblemError("hermite target: directions must be finite and nonzero")
        if not np.all(np.isfinite(coef)):
            raise ProblemError("hermite target: coefficients must be finite")
        self.U = U / n[:, None]
        self.coef = coef
        self.D, self.spec = D, spec
        K = coef.shape[1] - 1
        self.K = K
        a = hermite_projection_coefficients(K)
        cm = coef @ a                                   # (R, 3): sum_k coef[j,k] a[k,m]
        self.c0 = float(np.sum(cm[:, 0]))
        self.c1 = self.U.T @ cm[:, 1]
        self.C2 = (self.U.T * (0.5 * cm[:, 2])) @ self.U
        if K >= 3:
            rho = np.clip(self.U @ self.U.T, -1.0, 1.0)
            T = hermite_gram(K)(rho)                    # (R, R, K+1, K+1)
            hi = coef[:, 3:]
            self.irreducible_loss = float(np.einsum("jk,lm,jlkm->", hi, hi, T[:, :, 3:, 3:]))
        else:
            self.irreducible_loss = 0.0
        self.direction = self.U[0]

    def labels_z(self, Z):
        H = Z @ self.U.T
        y = np.zeros(Z.shape[0])
        for j in range(self.U.shape[0]):
            y += hermeval(H[:, j], self.coef[j])
        return y
