"""The exact population loss of a kernel expansion g0 + sum_mu a_mu Ktilde(., x_mu).

The width-free kernel functions are polynomials of degree 2 in x (``core.kernels``):
Ktilde(x, x_mu) = l_mu . x + x^T S_mu x with l_mu = (1 + eps wbar . x_mu) x_mu,
S_mu = sym(x_mu m_mu^T), m_mu = eps wbar + eps^2 M x_mu ((wbar, M) at the linearisation
point).  So the error of any predictor g0 + sum_mu a_mu Ktilde(., x_mu) is
e(x) = v . x + x^T Delta x with

    v = v0 + sum_mu a_mu l_mu,      Delta = Delta0 + sum_mu a_mu S_mu

(v0, Delta0 those of g0 - y), and its population loss is the Wick formula of
``core.statistics.wick_terms`` applied to

    |v|^2,   tr Delta = tr Delta0 + s . a,   tr Delta^2 = ||Delta0||^2 + 2 h . a + a^T G_S a,

s_mu = tr S_mu, h_mu = <S_mu, Delta0>_F, G_S[mu, nu] = <S_mu, S_nu>_F: a quadratic form in a,
evaluated exactly for many coefficient vectors at O(P^2) each.  For the linearised model this
equals the network's population loss (``statistics.population_loss``) at the linearised
statistics.  The linear part is evaluated as the norm of an explicit D-vector, so it does not
lose digits to cancellation (forming the full Gram matrix of the kernel functions would, like
the normal equations: error ~ machine-eps * cond(K)^2).

Used by the linearised model (``theory.lazy``) and the exact finite-D references of
``theory.asymptotics``.
"""

from __future__ import annotations

import numpy as np

from lazyrich_theory.core.statistics import wick_terms

__all__ = ["KernelExpansionLoss"]


class KernelExpansionLoss:
    """The exact population loss of g0 + sum_mu a_mu Ktilde(., x_mu) (see the module doc).

    Parameters
    ----------
    X : ndarray, shape (P, D)
        Training inputs (convention-A units).
    wbar, M : ndarray
        The statistics at the linearisation point (they define Ktilde).
    eps : float
        The quadratic coefficient of the network.
    v0 : ndarray, shape (D,)
        Linear part of the error of g0 (g0 - y).
    Delta0 : ndarray, shape (D, D)
        Quadratic part (symmetric) of the error of g0.
    const : float
        General targets (docs/targets.md): the error also has the constant -const, i.e. the
        variance term uses tr Delta / D - const.
    irreducible : float
        Added to every loss (a general target's degree >= 3 power).
    """

    def __init__(self, X: np.ndarray, wbar: np.ndarray, M: np.ndarray, eps: float,
                 v0: np.ndarray, Delta0: np.ndarray, const: float = 0.0,
                 irreducible: float = 0.0):
        self.D = X.shape[1]
        self.const = float(const)
        self.irreducible = float(irreducible)
        lin = 1.0 + eps * (X @ wbar)
        self.L = lin[:, None] * X                             # rows l_mu
        Mm = eps * wbar[None, :] + eps**2 * (X @ M.T)         # rows m_mu  (S_mu = sym(x m^T))
        self.s = np.einsum("ij,ij->i", X, Mm)                 # tr S_mu
        XM = X @ Mm.T                                         # XM[mu, nu] = x_mu . m_nu
        self.GS = 0.5 * ((X @ X.T) * (Mm @ Mm.T) + XM * XM.T)  # <S_mu, S_nu>_F
        self.h = np.einsum("ij,ij->i", X @ Delta0, Mm)        # <S_mu, Delta0>_F (Delta0 sym)
        self.v0 = np.asarray(v0, dtype=np.float64)
        self.trD0 = float(np.trace(Delta0))
        self.fro0 = float(np.sum(Delta0 * Delta0))

    @classmethod
    def initial_infinite_width(cls, X: np.ndarray, beta: np.ndarray, eps: float,
                               tau: float = 0.5) -> "KernelExpansionLoss":
        """The loss of sum_mu a_mu Ktilde0(., x_mu) against the paper's teacher
        y = tau (beta . x)^2, with the exact N = inf initial kernel (wbar0 = 0, M0 = I, g0 = 0:
        the centered model at initialisation)."""
        D = X.shape[1]
        return cls(X, np.zeros(D), np.eye(D), eps, np.zeros(D), -tau * np.outer(beta, beta))

    def project(self, V: np.ndarray | None = None) -> dict:
        """Precompute the quadratic form in coordinates a = V u (V = None: a itself)."""
        if V is None:
            return {"Lv": self.L.T, "sv": self.s, "hv": self.h, "Gv": self.GS}
        return {"Lv": self.L.T @ V, "sv": self.s @ V, "hv": self.h @ V,
                "Gv": V.T @ self.GS @ V}

    def value(self, pr: dict, u: np.ndarray) -> np.ndarray:
        """Population loss for each row of u (n, r), coordinates of ``project``."""
        v = self.v0[None, :] + u @ pr["Lv"].T
        tr = self.trD0 + u @ pr["sv"]
        if self.const != 0.0:
            tr = tr - self.D * self.const
        fro = self.fro0 + 2.0 * (u @ pr["hv"]) + np.einsum("ij,ij->i", u @ pr["Gv"], u)
        variance, misalignment, linear_power = wick_terms(np.einsum("ij,ij->i", v, v), tr,
                                                          fro, self.D)
        out = linear_power + variance + misalignment
        if self.irreducible != 0.0:
            out = out + self.irreducible
        return out

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """Population loss of the coefficient vectors a (P,) or rows of a (n, P)."""
        a = np.asarray(a, dtype=np.float64)
        out = self.value(self.project(), np.atleast_2d(a))
        return out[0] if a.ndim == 1 else out
