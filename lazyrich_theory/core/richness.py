"""How rich is the training?  Weight change, tangent-kernel alignment and representation
alignment from the reduced state (docs/init_structure.md §2).

The reduced factor determines the network itself: with [W0 1] / sqrt(N) = Q Z^T (Q an N x r
matrix with orthonormal columns, Z^T = [F0; c]^T the initial factor and its constant row),

    W(t) = sqrt(N) Q F(t)^T          for every t (any N; no inversion of Z),

so ||W(t) - W0||_F^2 / N = ||F(t) - F0||_F^2 and ``weight_change`` = ||F - F0||_F / ||F0||_F
(at N = inf: the root-mean-square neuron displacement over the rms initial neuron norm).

The tangent kernel with respect to W is K_t = (alpha^2 / N) Ktilde_t with
Ktilde_t = (X X^T) o C_t, C_t = 1 + eps (l 1^T + 1 l^T) + eps^2 (XF)(XF)^T, l = X F z
(``core.kernels``), and Liu et al.'s alignment is <K_t, K_0> / (||K_t||_F ||K_0||_F) on the
training set: scale-free, so Ktilde gives the same value.

The representation alignment <R_t, R_0> / (||R_t|| ||R_0||) of the uncentered activity Grams
R(x, x') = (1/N) sum_i phi(w_i . x) phi(w_i . x') needs the neuron cloud's moments up to order
four: at N = inf (Gaussian neurons) it is a closed function of (wbar, M); at finite N it needs
the fixed frame Q (not part of the reduced state), which :func:`network_frame` recovers from W0.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from lazyrich_theory.errors import ProblemError

__all__ = ["RICHNESS_COLUMNS", "weight_change", "tangent_kernel_alignment",
           "TangentKernelAlignment", "network_frame", "representation_gram_gaussian",
           "representation_gram_finite", "representation_alignment",
           "RepresentationAlignment", "richness_observers"]

#: The richness columns every reduced run records (after the core columns).
RICHNESS_COLUMNS = ("weight_change", "tangent_kernel_alignment")

#: Up to this many training points the P x P Gram products are kept between save times;
#: above it the alignment is summed over blocks of rows (memory O(block P)).
_CACHE_P = 2048
_BLOCK = 512
#: The column ``tangent_kernel_alignment`` is computed on the first (at most) this many training
#: points: exact up to there; above, the kernels restricted to those rows (the rows are iid, so
#: this is an unbiased subsample).  Its cost is O(rows^2 r) per save time, which at P = 16000
#: would dominate the solve by orders of magnitude.
TKA_MAX_ROWS = 4096


def weight_change(F: np.ndarray, F0: np.ndarray) -> float:
    """||W(t) - W0||_F / ||W0||_F = ||F - F0||_F / ||F0||_F.

    Parameters
    ----------
    F, F0 : array (D, r)
        The factor now and at t = 0.

    Returns
    -------
    float
    """
    return float(np.linalg.norm(F - F0) / np.linalg.norm(F0))


def _bracket(XF: np.ndarray, z: np.ndarray, eps: float, XF2: np.ndarray | None = None
             ) -> np.ndarray:
    """C = 1 + eps (l_a + l_b) + eps^2 (XF)(XF2)^T with l = XF z: Ktilde = (X X^T) o C."""
    XF2 = XF if XF2 is None else XF2
    la, lb = eps * (XF @ z), eps * (XF2 @ z)
    C = XF @ XF2.T
    C *= eps * eps
    C += la[:, None]
    C += lb[None, :]
    C += 1.0
    return C


def tangent_kernel_alignment(X: np.ndarray, F: np.ndarray, F0: np.ndarray, z: np.ndarray,
                             eps: float) -> float:
    """<K_t, K_0>_F / (||K_t||_F ||K_0||_F) on the rows of ``X`` (convention-A units).

    Parameters
    ----------
    X : array (P, D)
    F, F0 : array (D, r)
        The factor now and at t = 0.
    z : array (r,)
        wbar = F z.
    eps : float

    Returns
    -------
    float
    """
    G = X @ X.T
    H = G * G
    Ct, C0 = _bracket(X @ F, z, eps), _bracket(X @ F0, z, eps)
    HC0 = H * C0
    return float(np.sum(HC0 * Ct) / math.sqrt(float(np.sum(H * Ct * Ct))
                                               * float(np.sum(HC0 * C0))))


class TangentKernelAlignment:
    """Observer ``fn(system, F)`` of the column ``tangent_kernel_alignment``.

    The per-system constants (H = (X X^T)^2 elementwise, H o C_0 and ||Ktilde_0||^2) are
    computed at the first call, so building a system costs nothing; per save time the cost is
    one P x P x r product.  Above 2048 training points the sums run over blocks of rows; above
    :data:`TKA_MAX_ROWS` only the first TKA_MAX_ROWS training points enter.
    """

    def __init__(self) -> None:
        self._system: Any = None
        self._cache: dict[str, Any] = {}

    def _setup(self, system: Any) -> dict[str, Any]:
        if self._system is not system:
            self._system = system
            X = system.X[:TKA_MAX_ROWS]
            c: dict[str, Any] = {"X": X, "XF0": X @ system.F0}
            if X.shape[0] <= _CACHE_P:
                G = X @ X.T
                H = G * G
                HC0 = H * _bracket(c["XF0"], system.z, system.problem.eps)
                c.update(H=H, HC0=HC0, n0=float(np.sum(HC0 * _bracket(
                    c["XF0"], system.z, system.problem.eps))))
            self._cache = c
        return self._cache

    def __call__(self, system: Any, F: np.ndarray) -> float:
        c = self._setup(system)
        eps, z, X = system.problem.eps, system.z, c["X"]
        XF = X @ F
        if "H" in c:
            Ct = _bracket(XF, z, eps)
            num = float(np.vdot(c["HC0"], Ct))
            nt = float(np.vdot(c["H"] * Ct, Ct))
            return num / math.sqrt(nt * c["n0"])
        num = nt = n0 = 0.0
        for s in range(0, X.shape[0], _BLOCK):
            rows = slice(s, s + _BLOCK)
            G = X[rows] @ X.T
            H = G * G
            Ct = _bracket(XF[rows], z, eps, XF)
            C0 = _bracket(c["XF0"][rows], z, eps, c["XF0"])
            HC0 = H * C0
            num += float(np.sum(HC0 * Ct))
            nt += float(np.sum(H * Ct * Ct))
            n0 += float(np.sum(HC0 * C0))
        return num / math.sqrt(nt * n0)


# ------------------------------------------------------------------------ representations
def network_frame(W0: np.ndarray, F0: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The fixed N x r frame Q with [W0 1] / sqrt(N) = Q [F0; c^T]^T, so W(t) = sqrt(N) Q F(t)^T.

    Parameters
    ----------
    W0 : array (N, D)
    F0 : array (D, r)
    c : array (r,)
        The initial factor (``reduced.initial_factor``) of this W0.

    Returns
    -------
    numpy.ndarray
        Q (N x r), orthonormal columns (to round-off).
    """
    N = W0.shape[0]
    Y = np.empty((N, W0.shape[1] + 1))
    Y[:, :-1] = W0
    Y[:, -1] = 1.0
    Y /= math.sqrt(N)
    Z = np.vstack([F0, c[None, :]])                     # (D + 1) x r, full column rank
    return np.linalg.lstsq(Z, Y.T, rcond=None)[0].T


def representation_gram_gaussian(X: np.ndarray, wbar: np.ndarray, M: np.ndarray,
                                 eps: float) -> np.ndarray:
    """E_w[phi(w.x) phi(w.x')] for Gaussian neurons with mean wbar and second moment M
    (exact at N = inf; docs/init_structure.md (2.4)).

    With m_a = wbar . x, M_ab = x^T M x':
    M_ab + (eps/2)[m_b M_aa + m_a M_bb + 2 M_ab (m_a + m_b) - 2 m_a m_b (m_a + m_b)]
    + (eps^2/4)[M_aa M_bb + 2 M_ab^2 - 2 m_a^2 m_b^2].
    """
    Mx = X @ M @ X.T
    d = np.diag(Mx)
    m = X @ wbar
    ma, mb = m[:, None], m[None, :]
    Maa, Mbb = d[:, None], d[None, :]
    third = mb * Maa + ma * Mbb + 2.0 * Mx * (ma + mb) - 2.0 * ma * mb * (ma + mb)
    fourth = Maa * Mbb + 2.0 * Mx * Mx - 2.0 * (ma * mb) ** 2
    return Mx + 0.5 * eps * third + 0.25 * eps * eps * fourth


def representation_gram_finite(X: np.ndarray, F: np.ndarray, Q: np.ndarray,
                               eps: float) -> np.ndarray:
    """(1/N) sum_i phi(w_i . x) phi(w_i . x') with W(t) = sqrt(N) Q F^T (cost O(N P r + N P^2))."""
    N = Q.shape[0]
    H = math.sqrt(N) * ((X @ F) @ Q.T)
    A = H + 0.5 * eps * H * H
    return A @ A.T / N


def representation_alignment(Rt: np.ndarray, R0: np.ndarray) -> float:
    """<R_t, R_0>_F / (||R_t||_F ||R_0||_F) (Liu et al.: uncentered activity Grams)."""
    return float(np.sum(Rt * R0) / (np.linalg.norm(Rt) * np.linalg.norm(R0)))


class RepresentationAlignment:
    """Observer ``fn(system, F)`` of ``representation_alignment`` on the training set.

    Parameters
    ----------
    W0 : array (N, D), optional
        The initial weights; required at finite N (the frame Q is not part of the reduced
        state), ignored at N = inf, where the Gaussian closed form is exact.
    """

    def __init__(self, W0: np.ndarray | None = None) -> None:
        self.W0 = None if W0 is None else np.asarray(W0, dtype=np.float64)
        self._system: Any = None
        self._Q: np.ndarray | None = None
        self._R0: np.ndarray | None = None

    def _gram(self, system: Any, F: np.ndarray) -> np.ndarray:
        eps = system.problem.eps
        if self._Q is None:
            return representation_gram_gaussian(system.X, F @ system.z, F @ F.T, eps)
        return representation_gram_finite(system.X, F, self._Q, eps)

    def __call__(self, system: Any, F: np.ndarray) -> float:
        if self._system is not system:
            self._system = system
            if system.problem.finite_width:
                if self.W0 is None:
                    raise ProblemError("representation_alignment at finite N needs W0 "
                                       "(it is not a function of the reduced state)")
                self._Q = network_frame(self.W0, system.F0, system.c)
            else:
                self._Q = None
            self._R0 = self._gram(system, system.F0)
        return representation_alignment(self._gram(system, F), self._R0)


def richness_observers(names: Sequence[str] = RICHNESS_COLUMNS, W0: np.ndarray | None = None
                       ) -> dict[str, Callable[[Any, np.ndarray], float]]:
    """Observers for ``solve(observers=...)``: name -> fn(system, F).

    Parameters
    ----------
    names : sequence of str
        "weight_change", "tangent_kernel_alignment", "representation_alignment".
    W0 : array, optional
        The initial weights, for "representation_alignment" at finite N.

    Returns
    -------
    dict
    """
    table: dict[str, Callable[[], Callable[[Any, np.ndarray], float]]] = {
        "weight_change": lambda: (lambda s, F: weight_change(F, s.F0)),
        "tangent_kernel_alignment": TangentKernelAlignment,
        "representation_alignment": lambda: RepresentationAlignment(W0),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ProblemError(f"unknown richness observer(s) {unknown}; choose from {sorted(table)}")
    return {n: table[n]() for n in names}
