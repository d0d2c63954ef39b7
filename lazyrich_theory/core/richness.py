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
from numba import njit

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
_BLOCK = 128
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


def _bracket(XF: np.ndarray, z: np.ndarray | None, eps: float, XF2: np.ndarray | None = None,
             l2: np.ndarray | None = None, offset: int = 0) -> np.ndarray:
    """C = 1 + eps (l_a + l_b) + eps^2 (XF)(XF2)^T with l = XF z: Ktilde = (X X^T) o C.

    ``l2`` (with ``z`` None): eps l of all rows, of which the rows of XF are ``offset``..
    and those of XF2 the rest (a block of the upper triangle)."""
    XF2 = XF if XF2 is None else XF2
    if l2 is None:
        la, lb = eps * (XF @ z), eps * (XF2 @ z)
    else:
        la, lb = l2[offset:offset + XF.shape[0]], l2[offset:]
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
    computed at the first call, so building a system costs nothing.  Per save time the sums
    <Ktilde_t, Ktilde_0> = sum H C_0 C_t and ||Ktilde_t||^2 = sum H C_t^2 run over the upper
    triangle in blocks of :data:`_BLOCK` rows, fused with one (XF)_block (XF)^T product each
    (half a P x P x r product in all, never a P x P temporary beyond the block).  Above
    :data:`_CACHE_P` training points H and H o C_0 are recomputed block by block instead of
    kept; above :data:`TKA_MAX_ROWS` only the first TKA_MAX_ROWS training points enter.
    """

    def __init__(self) -> None:
        self._system: Any = None
        self._cache: dict[str, Any] = {}

    def _setup(self, system: Any) -> dict[str, Any]:
        if self._system is not system:
            self._system = system
            X = system.X[:TKA_MAX_ROWS]
            eps = float(system.problem.eps)
            XF0 = X @ system.F0
            c: dict[str, Any] = {"X": X, "XF0": XF0, "la0": eps * (XF0 @ system.z)}
            if X.shape[0] <= _CACHE_P:
                G = X @ X.T
                H = G * G
                HC0 = H * _bracket(XF0, system.z, eps)
                c.update(H=H, HC0=HC0)
            c["n0"] = self._sums(c, XF0, c["la0"], eps)[1]
            self._cache = c
        return self._cache

    @staticmethod
    def _sums(c: dict[str, Any], XF: np.ndarray, la: np.ndarray, eps: float
              ) -> tuple[float, float]:
        """(sum H C_0 C, sum H C^2) over all pairs, C the bracket at XF."""
        X, n = c["X"], c["X"].shape[0]
        num, nt = np.empty(n), np.empty(n)
        for i0 in range(0, n, _BLOCK):
            i1 = min(n, i0 + _BLOCK)
            S = XF[i0:i1] @ XF[i0:].T
            if "H" in c:
                _tka_pass(c["H"], c["HC0"], i0, S, i0, la, eps * eps, num, nt)
            else:
                G = X[i0:i1] @ X[i0:].T
                H = G * G
                C0 = _bracket(c["XF0"][i0:i1], None, eps, c["XF0"][i0:], c["la0"], i0)
                _tka_pass(H, H * C0, 0, S, i0, la, eps * eps, num, nt)
        return float(np.sum(num)), float(np.sum(nt))

    def __call__(self, system: Any, F: np.ndarray) -> float:
        c = self._setup(system)
        eps = float(system.problem.eps)
        XF = c["X"] @ F
        num, nt = self._sums(c, XF, eps * (XF @ system.z), eps)
        return num / math.sqrt(nt * c["n0"])


@njit(cache=True)
def _tka_pass(H, HC0, g, S, i0, la, eps2, num, nt):
    """Rows i0 .. i0 + len(S) of the upper triangle: per-row sums of H C_0 C and H C^2 over
    the full matrix (off-diagonal entries twice), C = ((eps2 S + la_i) + la_j) + 1 (the
    operations of :func:`_bracket`); H[g + a, g + b] and HC0 likewise are the constants at
    (i0 + a, i0 + b)."""
    nb, m = S.shape
    for a in range(nb):
        i = i0 + a
        li = la[i]
        cd = ((eps2 * S[a, a] + li) + li) + 1.0
        s1 = 0.0
        s2 = 0.0
        for b in range(a + 1, m):
            cc = ((eps2 * S[a, b] + li) + la[i0 + b]) + 1.0
            s1 += HC0[g + a, g + b] * cc
            s2 += H[g + a, g + b] * cc * cc
        num[i] = HC0[g + a, g + a] * cd + 2.0 * s1
        nt[i] = H[g + a, g + a] * cd * cd + 2.0 * s2


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
