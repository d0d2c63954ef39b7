"""Building blocks of the stride method (:mod:`lazyrich_theory.core.stride`, docs/stride.md):
the exponential Adams weights, the reference Gauss–Newton operator and the error norms.

One GD step of the reduced dynamics is F <- F + Delta(F) (docs/theory.md §3).  Its Jacobian is
a Gauss–Newton part plus the curvature part (with c = z it is symmetric):

    Delta'(F) V = -(2 eta0 / P) Phi^T Phi V - (eta0 eps / alpha) G V - eta0 lambda V,
    (Phi V)_mu = (X V)_mu . B_mu,   Phi^T w = X^T (w * B),   B = eps X F + 1 z^T,

and Phi Phi^T = Ktilde = (X X^T) o (B B^T) is the width-free NTK on the training set.  With a
basis U (P x m) in which U^T Ktilde U = diag(theta) exactly, the reference operator

    A = -c Phi^T U U^T Phi - omega I,        c = 2 eta0 / P,   omega = eta0 lambda,

has the eigenvalues -c theta_i - omega on q_i = Phi^T u_i / sqrt(theta_i) and -omega on the
rest, so every scalar function of L = I + A acts through P-vectors only:

    s(L) v = s(mu0) v + Phi^T U diag((s(mu_i) - s(mu0)) / theta_i) U^T Phi v,
    mu_i = 1 - c theta_i - omega,   mu0 = 1 - omega.
"""

from __future__ import annotations

from math import comb

import numpy as np

from lazyrich_theory.core.statistics import population_loss, reference

__all__ = ["power_moments", "lagrange_coefficients", "adams_weights", "GaussNewtonBasis",
           "gauss_newton_kernel", "exact_basis", "ritz_basis", "first_basis", "next_basis",
           "StrideNode", "function_norm2", "population_scale"]


# ------------------------------------------------------------------------------ weights
def power_moments(mu: np.ndarray, k: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """The power moments T_m = sum_{j=0}^{k-1} mu^(k-1-j) j^m (m < q) and mu^k, elementwise.

    Binary doubling in the number of terms a,

        T_m(2a) = mu^a T_m(a) + sum_{l <= m} C(m, l) a^(m-l) T_l(a),   T_m(a+1) = mu T_m(a) + a^m,

    costs O(q^2 len(mu) log k); every term is positive for mu >= 0 (no cancellation).

    Parameters
    ----------
    mu : numpy.ndarray
        Multipliers (1-d).
    k : int
        Number of terms (>= 1).
    q : int
        Number of moments.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        T with shape (q, len(mu)), and mu^k.
    """
    mu = np.asarray(mu, dtype=np.float64)
    T = np.zeros((q, mu.size))
    power = np.ones(mu.size)
    binom = np.array([[comb(m, l) if l <= m else 0 for l in range(q)] for m in range(q)],
                     dtype=np.float64)
    expo = np.maximum(np.subtract.outer(np.arange(q), np.arange(q)), 0).astype(np.float64)
    a = 0
    for bit in bin(int(k))[2:]:
        if a > 0:                                   # a -> 2a
            T = power * T + (binom * float(a) ** expo) @ T
            power = power * power
            a *= 2
        if bit == "1":                              # a -> a + 1
            T = mu * T
            T += (float(a) ** np.arange(q))[:, None]
            power = power * mu
            a += 1
    return T, power


def lagrange_coefficients(tau: np.ndarray) -> np.ndarray:
    """Monomial coefficients of the Lagrange basis over the nodes ``tau``: row i holds a_i with
    ell_i(s) = sum_m a_im s^m and ell_i(tau_j) = delta_ij."""
    V = np.vander(np.asarray(tau, dtype=np.float64), len(tau), increasing=True)
    return np.linalg.inv(V).T


def adams_weights(tau: np.ndarray, T: np.ndarray, k: int) -> np.ndarray:
    """The weights S_i(mu) = sum_{j<k} mu^(k-1-j) ell_i(j / k) of the nodes ``tau``.

    Parameters
    ----------
    tau : numpy.ndarray
        The nodes in stride units (node time - stride start) / stride length.
    T : numpy.ndarray
        :func:`power_moments` of the multipliers for ``k`` terms, at least len(tau) moments.
    k : int
        Number of map applications in the stride.

    Returns
    -------
    numpy.ndarray
        Shape (len(tau), T.shape[1]).
    """
    q = len(tau)
    scaled = T[:q] / (float(k) ** np.arange(q))[:, None]
    return lagrange_coefficients(tau) @ scaled


# ------------------------------------------------------------------------------ operator
class GaussNewtonBasis:
    """The reference operator A = -c Phi^T U U^T Phi - omega I of one state (module doc).

    Attributes
    ----------
    Yref, B : numpy.ndarray
        X F and B = eps X F + 1 z^T at the reference state (P x r).
    K : numpy.ndarray
        Ktilde = (X X^T) o (B B^T) (P x P).
    U, theta : numpy.ndarray
        The basis (P x m) and U^T Ktilde U = diag(theta).
    mu, mu0 : numpy.ndarray and float
        The multipliers 1 - c theta - omega of the modes in U and 1 - omega of the rest.
    full : bool
        U is the full eigendecomposition (no Gauss–Newton mode left out).
    """

    def __init__(self, Yref: np.ndarray, B: np.ndarray, K: np.ndarray, U: np.ndarray,
                 theta: np.ndarray, c: float, omega: float, full: bool):
        self.Yref, self.B, self.K, self.full = Yref, B, K, full
        self.U = np.ascontiguousarray(U)
        self.theta = np.maximum(theta, 0.0)
        self.c, self.omega = c, omega
        self.mu = 1.0 - c * self.theta - omega
        self.mu0 = 1.0 - omega
        pos = self.theta > 0
        self.inv = np.where(pos, 1.0 / np.where(pos, self.theta, 1.0), 0.0)
        self.row_norm = np.sqrt(np.einsum("ij,ij->i", B, B))

    @property
    def size(self) -> int:
        """Number of modes m in the basis."""
        return int(self.U.shape[1])

    def phi(self, Yv: np.ndarray) -> np.ndarray:
        """Phi v from Y_v = X v (no product with X)."""
        return np.einsum("ij,ij->i", Yv, self.B)

    def coords(self, Yv: np.ndarray) -> np.ndarray:
        """U^T Phi v from Y_v = X v."""
        return self.U.T @ self.phi(Yv)

    def drift(self, Y: np.ndarray, eps: float) -> float:
        """max_mu |B_mu(Y) - B_mu(Yref)| / |B_mu(Yref)|: how far the kernel has moved."""
        dB = eps * (Y - self.Yref)
        return float(np.max(np.sqrt(np.einsum("ij,ij->i", dB, dB)) / self.row_norm))

    def leak_rate(self, iters: int = 8, seed: int = 0) -> float:
        """c lambda_max((I - U U^T) Ktilde (I - U U^T)) by power iteration: the fastest
        Gauss–Newton rate per step left outside the basis (0 for the full basis)."""
        if self.full:
            return 0.0
        v = np.random.default_rng(seed).standard_normal(self.K.shape[0])
        lam = 0.0
        for _ in range(iters):
            v -= self.U @ (self.U.T @ v)
            v /= np.linalg.norm(v)
            w = self.K @ v
            w -= self.U @ (self.U.T @ w)
            lam = float(v @ w)
            v = w
        return self.c * max(lam, 0.0)


def gauss_newton_kernel(XXt: np.ndarray, Y: np.ndarray, z: np.ndarray,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(Ktilde, B) at the state with X F = Y: B = eps Y + 1 z^T, Ktilde = (X X^T) o (B B^T)."""
    B = eps * Y + z[None, :]
    return XXt * (B @ B.T), B


def exact_basis(Y: np.ndarray, B: np.ndarray, K: np.ndarray, c: float, omega: float,
                keep: int | None = None) -> GaussNewtonBasis:
    """The reference operator from the eigendecomposition of Ktilde (O(P^3)); with ``keep``,
    only its ``keep`` fastest modes (still an exact basis: U^T Ktilde U is diagonal)."""
    theta, U = np.linalg.eigh(K)
    full = keep is None or keep >= K.shape[0]
    if not full:
        theta, U = theta[-keep:], U[:, -keep:]
    return GaussNewtonBasis(Y, B, K, U, theta, c, omega, full)


def ritz_basis(Y: np.ndarray, B: np.ndarray, K: np.ndarray, start: np.ndarray, c: float,
               omega: float, power: int = 1) -> GaussNewtonBasis:
    """The reference operator on a Rayleigh–Ritz basis: ``power`` block power steps from the
    block ``start`` (P x m), then the eigenvectors of the projected Ktilde (O(P^2 m))."""
    W = start
    for _ in range(max(1, power)):
        W, _ = np.linalg.qr(K @ W)
    H = W.T @ (K @ W)
    theta, V = np.linalg.eigh(0.5 * (H + H.T))
    return GaussNewtonBasis(Y, B, K, W @ V, theta, c, omega, False)


def first_basis(Y: np.ndarray, B: np.ndarray, K: np.ndarray, c: float, omega: float,
                rate_floor: float, eigh_max: int = 2000, block: int = 216) -> GaussNewtonBasis:
    """The first reference operator: the modes faster than ``rate_floor`` per step (plus 16)
    of the eigendecomposition of Ktilde, or, beyond ``eigh_max`` rows, a Rayleigh–Ritz basis
    of ``block`` modes from a random block (three power steps; :func:`next_basis` grows it)."""
    P = K.shape[0]
    if P > eigh_max:
        start = np.random.default_rng(0).standard_normal((P, min(P, block)))
        return ritz_basis(Y, B, K, start, c, omega, power=3)
    theta, U = np.linalg.eigh(K)
    keep = int(np.sum(c * theta > rate_floor)) + 16
    if keep >= P:
        return GaussNewtonBasis(Y, B, K, U, theta, c, omega, True)
    return GaussNewtonBasis(Y, B, K, U[:, -keep:], theta[-keep:], c, omega, False)


def next_basis(Y: np.ndarray, B: np.ndarray, K: np.ndarray, c: float, omega: float,
               prev: GaussNewtonBasis, leak_rate: float) -> GaussNewtonBasis:
    """The next reference operator: Rayleigh–Ritz from the previous basis (one power step),
    grown by half (two power steps on the enlarged block) while the fastest Gauss–Newton rate
    left out exceeds ``leak_rate`` per step; the full eigendecomposition once the basis would
    exceed 0.6 P (or once it was full)."""
    P = K.shape[0]
    if prev.full:
        return exact_basis(Y, B, K, c, omega)
    basis = ritz_basis(Y, B, K, prev.U, c, omega, power=1)
    while basis.leak_rate() > leak_rate:
        m_new = int(1.5 * basis.size) + 8
        if m_new >= 0.6 * P:
            return exact_basis(Y, B, K, c, omega)
        extra = np.random.default_rng(m_new).standard_normal((P, m_new - basis.size))
        basis = ritz_basis(Y, B, K, np.hstack([basis.U, extra]), c, omega, power=2)
    return basis


class StrideNode:
    """A stride node: time t, state x, its increment g = GD^m(x) - x over the map's m steps,
    the images Yx = X x and Yg = X g, and their basis coordinates (cached per basis)."""

    __slots__ = ("t", "x", "g", "Yx", "Yg", "_basis", "_ab")

    def __init__(self, t: int, x: np.ndarray, g: np.ndarray, Yx: np.ndarray, Yg: np.ndarray):
        self.t, self.x, self.g, self.Yx, self.Yg = t, x, g, Yx, Yg
        self._basis: GaussNewtonBasis | None = None
        self._ab: tuple[np.ndarray, np.ndarray] | None = None

    def coords(self, basis: GaussNewtonBasis) -> tuple[np.ndarray, np.ndarray]:
        """(U^T Phi x, U^T Phi g) in ``basis``."""
        if self._basis is not basis:
            self._ab = (basis.coords(self.Yx), basis.coords(self.Yg))
            self._basis = basis
        return self._ab


# ------------------------------------------------------------------------------ norms
def function_norm2(e: np.ndarray, F: np.ndarray, z: np.ndarray, alpha: float,
                   eps: float) -> float:
    """E_x[df(x)^2], x ~ N(0, I/D): the population norm of the first-order change of the
    network function when the factor F moves by e (dwbar = e z, dM = e F^T + F e^T; Wick,
    docs/theory.md §4)."""
    D = F.shape[0]
    dw = e @ z
    dM = e @ F.T
    dM += dM.T
    tr = float(np.trace(dM))
    return (alpha * alpha * float(dw @ dw) / D
            + (0.5 * alpha * eps) ** 2 * (2.0 * float(np.sum(dM * dM)) + tr * tr) / (D * D))


def population_scale(system, F: np.ndarray) -> float:
    """The population loss at F: the scale of the population error norm (paper target by the
    Wick formula, other targets by their own ``population_loss``)."""
    p = system.problem
    wbar, M = F @ system.z, F @ F.T
    wref, Mref = reference(p.centered, system.wbar0, system.M0)
    if system.target is None:
        return population_loss(wbar, M, wref, Mref, system.beta, p.alpha, p.eps, p.tau)
    return float(system.target.population_loss(wbar, M, wref, Mref, p.alpha, p.eps))
