"""Neural tangent kernel from the sufficient statistics, and kernel-alignment diagnostics
(docs/theory.md §6).

The NTK with respect to W at any time (readouts fixed to 1) is, in convention-A units
(x ~ N(0, I/D); stored convention-B inputs are first multiplied by ``problem.input_scale``,
which is what :class:`~lazyrich_theory.reduced.ReducedSystem` stores):

    K(x, x') = (alpha^2 / N) (x . x') [1 + eps wbar.(x + x') + eps^2 x^T M x']

so that eta K = eta0 Ktilde with the width-free kernel

    Ktilde(x, x') = (x . x') [1 + eps wbar.(x + x') + eps^2 x^T M x'].

The same formula holds for convention B in the stored (unnormalised) inputs, because there
h = w.x/sqrt(D) = w.u with u = x/sqrt(D) the convention-A input: the NTK of the network in its
own units is K(u, u').  A state is the factor F of the reduced solver (M = F F^T, wbar = F z,
see ``reduced.initial_factor``); ``ntk_tilde_stats`` takes (wbar, M) directly.  At N = inf and
initialisation (wbar0 = 0, M0 = I): Ktilde0(x, x') = (x . x') [1 + eps^2 x . x'].

Alignment diagnostics (all take a kernel matrix and labels; see each docstring):

* ``paper_kernel_alignment`` -- the quantity of the authors' code ("CKA"), which centers K on
  ONE side only; this is what the ``kernel_alignment`` trajectory column holds;
* ``centered_kernel_alignment`` / ``target_alignment`` -- standard CKA (Cortes et al. 2012);
* ``kernel_drift`` -- ||K_t - K_0||_F / ||K_0||_F;
* ``target_power_fraction`` -- fraction of |y|^2 in the top-k eigenvectors of K.

State-level helpers (``state_ntk``, ``kernel_alignment``, ``kernel_diagnostics``,
``kernel_observers``) take a ReducedSystem-like object (attributes ``X, y, X_test, y_test,
F0, z, problem``) and a factor F, so they plug into ``solve(..., observers=...)``.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Sequence

import numpy as np
from numba import njit

from lazyrich_theory.errors import ProblemError

__all__ = [
    "ntk_tilde", "ntk_tilde_stats", "ntk_tilde_infinite", "ntk_scale", "ntk",
    "stable_eta0_bound",
    "paper_kernel_alignment", "centered_kernel_alignment", "target_alignment",
    "kernel_drift", "target_power_fraction",
    "state_ntk", "kernel_alignment", "kernel_diagnostics", "kernel_observers",
]


# ---------------------------------------------------------------------------- kernels
def ntk_tilde(X: np.ndarray, F: np.ndarray, z: np.ndarray, eps: float,
              X2: np.ndarray | None = None) -> np.ndarray:
    """Ktilde(X, X2) in convention-A units, with wbar = F z and M = F F^T.

    ``(X @ X2.T) * _bracket(X @ F, X2 @ F, z, eps)`` with the elementwise work fused into one
    pass (same operations and order); for X2 = None the product (XF)(XF)^T is a BLAS syrk
    (exactly symmetric) and the Gram X X^T of the last X seen (compared by value, :func:`gram`)
    is reused, so repeated kernels of one training set (the flow's spectral radius) cost one
    P x P x r product each."""
    if X2 is None:
        XF = X @ F
        S = XF @ XF.T                       # BLAS syrk
        lin = XF @ z
        _ntk_fill(S, gram(X), lin, lin, float(eps), float(eps) ** 2)
        return S
    XF, X2F = X @ F, X2 @ F
    S = XF @ X2F.T
    _ntk_fill(S, X @ X2.T, XF @ z, X2F @ z, float(eps), float(eps) ** 2)
    return S


#: Gram matrices X X^T of up to this many rows are kept (one, the last X seen; compared by
#: value, O(P D) per call) for the repeated kernels of one training set.
GRAM_CACHE_ROWS = 2048
_gram_cache: dict[str, Any] = {}
_gram_lock = threading.Lock()


def gram(X: np.ndarray) -> np.ndarray:
    """X X^T, reusing the last result when X has the same shape and values (read-only: never
    modify the returned array)."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] > GRAM_CACHE_ROWS:
        return X @ X.T
    with _gram_lock:
        hit = _gram_cache.get("X")
        if hit is not None and hit.shape == X.shape and np.array_equal(hit, X):
            return _gram_cache["G"]
    G = X @ X.T
    G.flags.writeable = False
    with _gram_lock:
        _gram_cache["X"] = np.array(X, copy=True)
        _gram_cache["G"] = G
    return G


@njit(cache=True)
def _ntk_fill(S, G, l1, l2, eps, eps2):
    """S <- G * ((1 + eps (l1_i + l2_j)) + eps2 S) elementwise (numpy's order of operations,
    no contraction: the unfused expression's values)."""
    n, m = S.shape
    for i in range(n):
        a = l1[i]
        for j in range(m):
            S[i, j] = G[i, j] * ((1.0 + eps * (a + l2[j])) + eps2 * S[i, j])


def _bracket(XF: np.ndarray, X2F: np.ndarray, z: np.ndarray, eps: float) -> np.ndarray:
    """1 + eps wbar.(x + x') + eps^2 x^T M x' from XF = X F, X2F = X2 F (wbar = F z,
    M = F F^T): Ktilde is (x . x') times this."""
    lin1, lin2 = XF @ z, X2F @ z
    return 1.0 + eps * (lin1[:, None] + lin2[None, :]) + eps**2 * (XF @ X2F.T)


def ntk_tilde_stats(X: np.ndarray, wbar: np.ndarray, M: np.ndarray, eps: float,
                    X2: np.ndarray | None = None) -> np.ndarray:
    """Ktilde(X, X2) = (x.x') [1 + eps wbar.(x + x') + eps^2 x^T M x'] from (wbar, M) directly
    (convention-A units; M need not be symmetric positive semi-definite)."""
    X2 = X if X2 is None else X2
    lin1, lin2 = X @ wbar, X2 @ wbar
    inner = 1.0 + eps * (lin1[:, None] + lin2[None, :]) + eps**2 * (X @ M @ X2.T)
    return (X @ X2.T) * inner


def ntk_tilde_infinite(X: np.ndarray, eps: float, X2: np.ndarray | None = None) -> np.ndarray:
    """The exact N = inf initial kernel Ktilde0(x, x') = (x . x') [1 + eps^2 x . x']
    (wbar0 = 0, M0 = I), convention-A units."""
    X2 = X if X2 is None else X2
    G = X @ X2.T
    return G * (1.0 + eps**2 * G)


def ntk_scale(alpha: float, N: float) -> float:
    """alpha^2 / N: the true NTK is K = ntk_scale * Ktilde (0 at N = inf)."""
    return float(alpha) ** 2 / float(N)


def ntk(X: np.ndarray, F: np.ndarray, z: np.ndarray, eps: float, alpha: float, N: float,
        X2: np.ndarray | None = None) -> np.ndarray:
    """The true empirical NTK K(X, X2) = (alpha^2 / N) Ktilde(X, X2) of a width-N network
    (w.r.t. W, readouts fixed).  Raises ProblemError (a ValueError) for N = inf, where K = 0
    and only the width-free Ktilde (``ntk_tilde``) is meaningful."""
    if not math.isfinite(float(N)):
        raise ProblemError("the true NTK vanishes at N = inf; use ntk_tilde (eta K = eta0 Ktilde)")
    return ntk_scale(alpha, N) * ntk_tilde(X, F, z, eps, X2)


def stable_eta0_bound(X: np.ndarray, F: np.ndarray, z: np.ndarray, eps: float) -> float:
    """Gauss–Newton stability bound of GD at state F: eta0 < P / lambda_max(Ktilde(X, X)).

    GD on the linearised model diverges once (2 eta / P) lambda_max(K) > 2, i.e. once
    eta0 lambda_max(Ktilde) > P.  Far from the lazy regime this is an estimate, not a theorem.
    """
    K = ntk_tilde(X, F, z, eps)
    lam = float(np.linalg.eigvalsh(0.5 * (K + K.T))[-1])
    return X.shape[0] / lam if lam > 0 else float("inf")


# ------------------------------------------------------- the paper's alignment, from the factor
#: Row block of the fused alignment pass: a block of the P x P products at a time, kept in
#: cache while its sums are taken.
ALIGN_BLOCK = 128


def paper_alignment_from_factor(X: np.ndarray, XF: np.ndarray, z: np.ndarray, eps: float,
                                y: np.ndarray, G: np.ndarray | None = None,
                                block: int = ALIGN_BLOCK) -> float:
    """``paper_kernel_alignment(ntk_tilde(X, F, z, eps), y)`` without forming the kernel.

    Ktilde = G o C with G = X X^T and C = 1 + eps (l_i + l_j) + eps^2 (XF)(XF)^T, l = XF z; the
    sums the alignment needs (column means m, ||K||_F^2, y_c^T K y_c) are taken over the upper
    triangle in row blocks, one (XF)_block (XF)^T product at a time, and centred afterwards:
    ||K_c||_F^2 = ||K||_F^2 - n |m|^2 and y_c^T K_c y_c = y_c^T K y_c - (1.y_c)(m.y_c) (a
    second, centred pass when the first identity would cancel more than half of ||K||^2).
    Cost: n^2 r / 2 multiply-adds (half the kernel's product) and one pass over n^2 / 2
    entries; memory O(block n).

    Parameters
    ----------
    X : array (n, D)
    XF : array (n, r)
        X F at the state.
    z : array (r,)
    eps : float
    y : array (n,)
    G : array (n, n), optional
        X X^T if already known (else computed block by block).
    block : int
        Rows per block.

    Returns
    -------
    float
    """
    n = X.shape[0]
    y = np.asarray(y, dtype=np.float64)
    yc = y - y.mean()
    l = XF @ z
    eps = float(eps)
    eps2 = eps**2
    colsum = np.zeros(n)
    sq = np.empty(n)
    num = np.empty(n)
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        S = XF[i0:i1] @ XF[i0:].T
        if G is None:
            _paper_pass(X[i0:i1] @ X[i0:].T, 0, S, i0, l, yc, eps, eps2, colsum, sq, num)
        else:
            _paper_pass(G, i0, S, i0, l, yc, eps, eps2, colsum, sq, num)
    m = colsum / n
    raw = float(np.sum(sq))
    sqc = raw - n * float(m @ m)
    if not sqc > 0.5 * raw:            # cancellation: the centred sum directly
        for i0 in range(0, n, block):
            i1 = min(n, i0 + block)
            S = XF[i0:i1] @ XF[i0:].T
            if G is None:
                _paper_centred(X[i0:i1] @ X[i0:].T, 0, S, i0, l, m, eps, eps2, sq)
            else:
                _paper_centred(G, i0, S, i0, l, m, eps, eps2, sq)
        sqc = float(np.sum(sq))
    numc = float(np.sum(num)) - float(np.sum(yc)) * float(m @ yc)
    den = math.sqrt(max(sqc, 0.0)) * float(yc @ yc)
    return numc / den if den > 0 else float("nan")


@njit(cache=True)
def _paper_pass(G, g, S, i0, l, yc, eps, eps2, colsum, sq, num):
    """Rows i0 .. i0 + len(S) of the upper triangle of K = G o C: column sums (into
    ``colsum``), per-row sums of K^2 (``sq``) and of yc_i yc_j K_ij (``num``) over the full
    matrix (off-diagonal entries twice).  ``S`` holds (XF)(XF)^T for these rows and columns
    i0..n; G[g + a, g + b] is X X^T at (i0 + a, i0 + b)."""
    nb, m = S.shape
    for a in range(nb):
        i = i0 + a
        li = l[i]
        kd = G[g + a, g + a] * ((1.0 + eps * (li + li)) + eps2 * S[a, a])
        rs = 0.0
        s2 = 0.0
        sy = 0.0
        for b in range(a + 1, m):
            j = i0 + b
            k = G[g + a, g + b] * ((1.0 + eps * (li + l[j])) + eps2 * S[a, b])
            colsum[j] += k
            rs += k
            s2 += k * k
            sy += yc[j] * k
        colsum[i] += kd + rs
        sq[i] = kd * kd + 2.0 * s2
        num[i] = yc[i] * (yc[i] * kd + 2.0 * sy)


@njit(cache=True)
def _paper_centred(G, g, S, i0, l, mean, eps, eps2, sq):
    """Per-row sums of (K_ij - mean_j)^2 over the full matrix, from the upper triangle
    (arguments as in :func:`_paper_pass`)."""
    nb, m = S.shape
    for a in range(nb):
        i = i0 + a
        li = l[i]
        mi = mean[i]
        kd = G[g + a, g + a] * ((1.0 + eps * (li + li)) + eps2 * S[a, a]) - mi
        s2 = 0.0
        for b in range(a + 1, m):
            j = i0 + b
            k = G[g + a, g + b] * ((1.0 + eps * (li + l[j])) + eps2 * S[a, b])
            s2 += (k - mean[j]) ** 2 + (k - mi) ** 2
        sq[i] = kd * kd + s2


# ---------------------------------------------------------------------------- alignments
def _sym(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ProblemError(f"need a square kernel matrix, got shape {K.shape}")
    return K


def _double_center(K: np.ndarray) -> np.ndarray:
    """H K H with H = I - 11^T/n, in O(n^2)."""
    r = K.mean(axis=1, keepdims=True)
    c = K.mean(axis=0, keepdims=True)
    return K - r - c + K.mean()


def paper_kernel_alignment(K: np.ndarray, y: np.ndarray) -> float:
    """The authors' "CKA" (paper_notes §3.4), which centers the kernel on ONE side only:

        A_paper(K, y) = y_c^T K_c y_c / (||K_c||_F |y_c|^2),
        y_c = y - mean(y),   K_c = K - 1 m^T,  m_j = mean_i K_ij  (= H K, column means removed).

    Because H y_c = y_c the numerator equals y_c^T K y_c; only the normalisation differs from
    the standard CKA (which uses ||H K H||_F, see ``target_alignment``), so
    A_paper <= target_alignment for PSD K.  In [-1, 1]; 1 iff K_c is proportional to y_c y_c^T.
    """
    K = _sym(K)
    y = np.asarray(y, dtype=np.float64)
    yc = y - y.mean()
    Kc = K - K.mean(axis=0)
    den = float(np.linalg.norm(Kc)) * float(yc @ yc)
    return float(yc @ Kc @ yc) / den if den > 0 else float("nan")


def centered_kernel_alignment(K1: np.ndarray, K2: np.ndarray) -> float:
    """Standard centered kernel alignment (Cortes, Mohri & Rostamizadeh 2012):

        A(K1, K2) = <K1c, K2c>_F / (||K1c||_F ||K2c||_F),   Kc = H K H,  H = I - 11^T/n.

    Invariant under K -> a K (a > 0) and under adding constants to K; in [0, 1] for PSD K1, K2.
    """
    A = _double_center(_sym(K1))
    B = _double_center(_sym(K2))
    den = float(np.linalg.norm(A)) * float(np.linalg.norm(B))
    return float(np.sum(A * B)) / den if den > 0 else float("nan")


def target_alignment(K: np.ndarray, y: np.ndarray) -> float:
    """Standard CKA of K with the target kernel y y^T:

        A(K, y y^T) = y_c^T K y_c / (||H K H||_F |y_c|^2),   y_c = H y.

    Equal to ``centered_kernel_alignment(K, np.outer(y, y))`` in O(n^2).
    """
    K = _sym(K)
    y = np.asarray(y, dtype=np.float64)
    yc = y - y.mean()
    den = float(np.linalg.norm(_double_center(K))) * float(yc @ yc)
    return float(yc @ K @ yc) / den if den > 0 else float("nan")


def kernel_drift(K: np.ndarray, K0: np.ndarray) -> float:
    """Relative kernel change ||K - K0||_F / ||K0||_F."""
    K, K0 = np.asarray(K, dtype=np.float64), np.asarray(K0, dtype=np.float64)
    n0 = float(np.linalg.norm(K0))
    return float(np.linalg.norm(K - K0)) / n0 if n0 > 0 else float("nan")


def target_power_fraction(K: np.ndarray | None, y: np.ndarray, k: int | Sequence[int] | None = None,
                          eig: tuple[np.ndarray, np.ndarray] | None = None):
    """Fraction of the target's power in the top-k eigenvectors of K:

        p(k) = sum_{i <= k} (v_i^T y)^2 / |y|^2,   K v_i = lambda_i v_i,  lambda_1 >= lambda_2 ...

    (y is NOT centered).  ``k`` an int -> float; a sequence -> array; None -> the whole
    cumulative curve p(1..n).  ``eig=(lam, V)`` reuses an eigendecomposition (any order;
    columns of V are eigenvectors) instead of diagonalising K.  p(n) = 1.
    """
    y = np.asarray(y, dtype=np.float64)
    if eig is None:
        lam, V = np.linalg.eigh(0.5 * (_sym(K) + _sym(K).T))
    else:
        lam, V = eig
    order = np.argsort(lam)[::-1]
    proj = (V[:, order].T @ y) ** 2
    yy = float(y @ y)
    cum = np.cumsum(proj) / yy if yy > 0 else np.full(proj.shape, np.nan)
    if k is None:
        return cum
    ks = np.asarray(k)
    if np.any(ks < 1) or np.any(ks > cum.size):
        raise ProblemError(f"k must be in 1..{cum.size}, got {k!r}")
    out = cum[ks - 1]
    return float(out) if ks.ndim == 0 else out


# ---------------------------------------------------------------------------- state level
def state_ntk(system: Any, F: np.ndarray | None = None, which: str = "train",
              true: bool = False) -> np.ndarray:
    """Ktilde at factor state F (default: the initial F0) of a ReducedSystem-like ``system``.

    which: "train" -> Ktilde(X, X) (P x P); "test" -> Ktilde(X_test, X_test) (T x T);
    "test_train" -> Ktilde(X_test, X) (T x P).  ``true=True`` returns the true NTK
    K = (alpha^2/N) Ktilde of the width-N network instead (ProblemError at N = inf).  Inputs are
    the system's convention-A-unit arrays; the result equals the NTK of the network in its
    own (stored) units, for both conventions.
    """
    F = system.F0 if F is None else F
    p = system.problem
    if which == "train":
        X, X2 = system.X, None
    elif which == "test":
        X, X2 = system.X_test, None
    elif which == "test_train":
        X, X2 = system.X_test, system.X
    else:
        raise ProblemError(f"which must be 'train', 'test' or 'test_train', got {which!r}")
    if true:
        return ntk(X, F, system.z, p.eps, p.alpha, p.N, X2)
    return ntk_tilde(X, F, system.z, p.eps, X2)


def kernel_alignment(system: Any, F: np.ndarray | None = None, split: str = "test") -> float:
    """The value of the trajectory column ``kernel_alignment``: the paper's one-sided alignment
    (``paper_kernel_alignment``) of the CURRENT width-free NTK Ktilde_t with the target labels,
    on the test set by default (as the paper's Figure 1 does; split="train" for the training set).

    The paper's definition is kept for this column so that the plot matches its Figure 1;
    ``target_alignment`` is the standard (two-sided) CKA.  Scale-free, so Ktilde and K give the
    same value.  Signature (system, F) so it can be passed to ``solve(observers=...)``.
    """
    if split not in ("test", "train"):
        raise ProblemError(f"split must be 'test' or 'train', got {split!r}")
    K = state_ntk(system, F, split)
    y = system.y_test if split == "test" else system.y
    return paper_kernel_alignment(K, y)


def kernel_diagnostics(system: Any, F: np.ndarray | None = None,
                       K0_train: np.ndarray | None = None, k: int | None = 10,
                       test: bool = True) -> dict[str, float]:
    """All kernel diagnostics at state F (default F0), keyed by column-ready names:

    kernel_alignment        paper one-sided alignment, test set (the trajectory column)
    kernel_alignment_train  same on the training set
    cka_target              standard CKA A(Ktilde, y y^T), training set
    cka_target_test         same on the test set (only if ``test``)
    kernel_drift            ||K_t - K_0||_F / ||K_0||_F on the training set
    target_power_top{k}     fraction of |y|^2 in the top-k eigenvectors of Ktilde(X, X)
                            (omitted if k is None; costs one P x P eigh)

    ``K0_train``: the initial Ktilde(X, X), to avoid recomputing it at every call.
    ``test=False`` skips the T x T test kernel (the two test-set entries are then absent).
    """
    F = system.F0 if F is None else F
    K = state_ntk(system, F, "train")
    K0 = state_ntk(system, None, "train") if K0_train is None else K0_train
    out = {}
    if test:
        Kt = state_ntk(system, F, "test")
        out["kernel_alignment"] = paper_kernel_alignment(Kt, system.y_test)
    out["kernel_alignment_train"] = paper_kernel_alignment(K, system.y)
    out["cka_target"] = target_alignment(K, system.y)
    if test:
        out["cka_target_test"] = target_alignment(Kt, system.y_test)
    out["kernel_drift"] = kernel_drift(K, K0)
    if k is not None:
        out[f"target_power_top{int(k)}"] = target_power_fraction(K, system.y, int(k))
    return out


def kernel_observers(names: Sequence[str] = ("kernel_alignment",), k: int = 10
                     ) -> dict[str, Callable[[Any, np.ndarray], float]]:
    """Observers for ``reduced.solve(observers=...)``: name -> fn(system, F).

    Known names: "kernel_alignment" (paper, test set), "kernel_alignment_train",
    "cka_target", "cka_target_test", "kernel_drift" and "target_power_top{k}" (with the
    given k).  The Gram matrices x.x' and the initial train kernel (kernel_drift) are computed
    once per system, and the kernel at a state is shared by the observers evaluated on it.
    The two paper alignments never form the kernel (:func:`paper_alignment_from_factor`: half
    a P x P x r product and one fused pass per save time).
    """
    cache: dict[str, Any] = {}

    def _cached(system):
        # per-system constants: the Gram matrices x.x' and the initial train kernel; plus the
        # kernels of the last state F, shared by the observers called at one save time
        if cache.get("system") is not system:
            cache.clear()
            cache["system"] = system
        return cache

    def _gram(system, which):
        c = _cached(system)
        if "G_" + which not in c:
            X = system.X if which == "train" else system.X_test
            c["G_" + which] = X @ X.T
        return c["G_" + which]

    def K(system, F, which):
        c = _cached(system)
        key = "K_" + which
        F = system.F0 if F is None else F
        hit = c.get(key)
        # compare contents, not identity: an integrator may reuse F's buffer between saves
        if hit is None or hit[0].shape != F.shape or not np.array_equal(hit[0], F):
            XF = (system.X if which == "train" else system.X_test) @ F
            inner = _bracket(XF, XF, system.z, system.problem.eps)
            c[key] = hit = (np.array(F, copy=True), _gram(system, which) * inner)
        return hit[1]

    def K0(system):
        c = _cached(system)
        if "K0" not in c:
            c["K0"] = state_ntk(system, None, "train")
        return c["K0"]

    def paper(system, F, which):
        # the paper's alignment without forming the kernel (paper_alignment_from_factor);
        # the Gram is kept up to GRAM_CACHE_ROWS rows (or when a full kernel is formed anyway)
        c = _cached(system)
        F = system.F0 if F is None else F
        X, y = (system.X, system.y) if which == "train" else (system.X_test, system.y_test)
        keep = X.shape[0] <= GRAM_CACHE_ROWS or "G_" + which in c
        G = _gram(system, which) if keep else None
        return paper_alignment_from_factor(X, X @ F, system.z, system.problem.eps, y, G)

    table: dict[str, Callable[[Any, np.ndarray], float]] = {
        "kernel_alignment": lambda s, F: paper(s, F, "test"),
        "kernel_alignment_train": lambda s, F: paper(s, F, "train"),
        "cka_target": lambda s, F: target_alignment(K(s, F, "train"), s.y),
        "cka_target_test": lambda s, F: target_alignment(K(s, F, "test"), s.y_test),
        "kernel_drift": lambda s, F: kernel_drift(K(s, F, "train"), K0(s)),
        f"target_power_top{int(k)}": lambda s, F: target_power_fraction(
            K(s, F, "train"), s.y, int(k)),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ProblemError(f"unknown kernel observer(s) {unknown}; choose from {sorted(table)}")
    return {n: table[n] for n in names}
