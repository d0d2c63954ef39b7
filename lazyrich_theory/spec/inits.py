"""Structured initialisations of the first layer: the spec grammar, the constructors and the
reported measures (docs/init_structure.md §1).

Spec strings (``Problem.init``; ``--init`` on the command line)::

    iid             W0 = G, today's default (G = standard_normal((N, D)), the W0 stream's first draw)
    lowrank:R       truncated SVD of G to rank R (Liu et al.'s construction)
    powerlaw:P      G's singular vectors with singular values k^(-P), k = 1..min(N, D)
    aligned:R:C     rank R; its top right-singular direction has overlap C with betahat

Every family but ``iid`` is rescaled to ||W0||_F^2 / N = tr M0 = D exactly (``iid`` keeps
tr M0 = D + O(sqrt(D/N))).  At N = inf the init is the covariance Sigma = M0 of a Gaussian
neuron law (mean 0): ``iid`` I, ``lowrank:R`` (D/R) V V^T with V a Haar D x R frame (the
N -> inf limit of the truncated SVD, whose top spectrum flattens), ``powerlaw:P``
V diag(lambda) V^T with lambda_k ∝ k^(-2P), ``aligned:R:C`` (D/R) V V^T with the aligned frame.
The global scale sigma (``init_scale``) multiplies W0 (Sigma by sigma^2).

All draws come from the generator passed in (the problem's W0 stream); the first draw at finite
N is always G, so ``iid`` with scale 1 is the package's W0 bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lazyrich_theory.errors import ProblemError

__all__ = ["INIT_FAMILIES", "FINITE_RANK_FAMILIES", "InitSpec", "parse_init", "check_init", "check_init_scale",
           "is_default_init", "haar_frame", "aligned_frame", "make_init", "init_measures"]

#: The init families of the grammar.
INIT_FAMILIES = ("iid", "lowrank", "powerlaw", "aligned")
#: The families of finite rank R (the r-index DMFT's inits, docs/offline_theory.md §13).
FINITE_RANK_FAMILIES = ("lowrank", "aligned")

_GRAMMAR = "iid | lowrank:R | powerlaw:P | aligned:R:C"


@dataclass(frozen=True)
class InitSpec:
    """A parsed init spec.

    Attributes
    ----------
    kind : str
        One of :data:`INIT_FAMILIES`.
    rank : int or None
        R of ``lowrank`` and ``aligned``.
    exponent : float or None
        P of ``powerlaw`` (singular values ∝ k^(-P)).
    overlap : float or None
        C of ``aligned`` (overlap of the top direction with betahat, in [0, 1]).
    """

    kind: str
    rank: int | None = None
    exponent: float | None = None
    overlap: float | None = None

    def __str__(self) -> str:
        if self.kind == "lowrank":
            return f"lowrank:{self.rank}"
        if self.kind == "powerlaw":
            return f"powerlaw:{self.exponent:g}"
        if self.kind == "aligned":
            return f"aligned:{self.rank}:{self.overlap:g}"
        return "iid"


def _bad(spec: object, why: str) -> ProblemError:
    return ProblemError(f"init {spec!r}: {why} (expected {_GRAMMAR})")


def _int(text: str, spec: object, name: str) -> int:
    try:
        v = float(text)
    except ValueError:
        raise _bad(spec, f"{name} must be an integer, got {text!r}") from None
    if not v.is_integer() or v < 1:
        raise _bad(spec, f"{name} must be an integer >= 1, got {text!r}")
    return int(v)


def _float(text: str, spec: object, name: str, low: float, high: float) -> float:
    try:
        v = float(text)
    except ValueError:
        raise _bad(spec, f"{name} must be a number, got {text!r}") from None
    if not (math.isfinite(v) and low <= v <= high):
        raise _bad(spec, f"{name} must be in [{low:g}, {high:g}], got {text!r}")
    return v


def parse_init(spec: str | InitSpec) -> InitSpec:
    """Parse an init spec string (case and surrounding blanks ignored).

    Parameters
    ----------
    spec : str or InitSpec

    Returns
    -------
    InitSpec

    Raises
    ------
    ProblemError
        One line naming what is wrong.
    """
    if isinstance(spec, InitSpec):
        return spec
    if not isinstance(spec, str):
        raise _bad(spec, "not a string")
    parts = [p.strip() for p in spec.strip().lower().split(":")]
    kind, args = parts[0], parts[1:]
    arity = {"iid": 0, "lowrank": 1, "powerlaw": 1, "aligned": 2}
    if kind not in arity:
        raise _bad(spec, f"unknown family {kind!r}")
    if len(args) != arity[kind]:
        raise _bad(spec, f"{kind} takes {arity[kind]} parameter(s), got {len(args)}")
    if kind == "lowrank":
        return InitSpec(kind, rank=_int(args[0], spec, "R"))
    if kind == "powerlaw":
        return InitSpec(kind, exponent=_float(args[0], spec, "P", 0.0, math.inf))
    if kind == "aligned":
        return InitSpec(kind, rank=_int(args[0], spec, "R"),
                        overlap=_float(args[1], spec, "C", 0.0, 1.0))
    return InitSpec("iid")


def check_init(spec: str | InitSpec, D: int, N: int | float) -> InitSpec:
    """Parse ``spec`` and check it against the shape: R <= min(N, D) (R <= D at N = inf), and
    ``aligned`` with C < 1 needs R <= D - 1 (room for a direction orthogonal to betahat).

    Parameters
    ----------
    spec : str or InitSpec
    D : int
    N : int or float
        The width (``math.inf`` allowed).

    Returns
    -------
    InitSpec

    Raises
    ------
    ProblemError
        One line.
    """
    s = parse_init(spec)
    if s.rank is not None:
        n = D if math.isinf(N) else min(int(N), D)
        if s.rank > n:
            where = f"D = {D}" if math.isinf(N) else f"min(N, D) = {n}"
            raise ProblemError(f"init {s}: rank R = {s.rank} exceeds {where}")
        if s.kind == "aligned" and s.overlap < 1.0 and s.rank > D - 1:
            raise ProblemError(f"init {s}: overlap C < 1 needs R <= D - 1 = {D - 1}")
    return s


def check_init_scale(scale: object) -> float:
    """The init scale sigma as a float; ProblemError unless finite and > 0."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise ProblemError(f"init_scale must be a number, got {scale!r}")
    v = float(scale)
    if not (math.isfinite(v) and v > 0):
        raise ProblemError(f"init_scale must be finite and > 0, got {scale!r}")
    return v


def is_default_init(spec: str | InitSpec, scale: float = 1.0) -> bool:
    """True for the package's default initialisation (``iid`` at scale 1)."""
    return parse_init(spec).kind == "iid" and float(scale) == 1.0


# ------------------------------------------------------------------------------ frames
def _signed_qr(A: np.ndarray) -> np.ndarray:
    """Q of the thin QR of A with columns signed so that diag(R) > 0 (unique; Haar for Gaussian A)."""
    Q, R = np.linalg.qr(A)
    s = np.sign(np.diag(R))
    s[s == 0] = 1.0
    return Q * s


def haar_frame(rng: np.random.Generator, D: int, k: int) -> np.ndarray:
    """A D x k matrix with Haar-distributed orthonormal columns (draws D x k normals)."""
    return _signed_qr(rng.standard_normal((D, k)))


def aligned_frame(rng: np.random.Generator, bhat: np.ndarray, R: int, C: float) -> np.ndarray:
    """Orthonormal D x R frame [v1 .. vR] with v1 = C bhat + sqrt(1 - C^2) e, e a random unit
    vector orthogonal to bhat, and v2..vR random, orthogonal to bhat and e.

    Hence v1 . bhat = C and |V^T bhat| = C: the range meets bhat only through v1.
    Draws D normals (for e), then D x (R - 1) normals (for v2..vR).
    """
    D = bhat.size
    a = rng.standard_normal(D)
    a -= (a @ bhat) * bhat
    e = a / np.linalg.norm(a)
    v1 = C * bhat + math.sqrt(max(0.0, 1.0 - C * C)) * e
    if R == 1:
        return v1[:, None]
    B = rng.standard_normal((D, R - 1))
    basis = np.stack([bhat, e], axis=1)
    for _ in range(2):                       # project twice: orthogonal to round-off
        B -= basis @ (basis.T @ B)
    return np.concatenate([v1[:, None], _signed_qr(B)], axis=1)


# ------------------------------------------------------------------------------ constructors
def _unit(beta: np.ndarray | None, need: bool) -> np.ndarray | None:
    if beta is None:
        if need:
            raise ProblemError("an aligned init needs the teacher direction beta")
        return None
    beta = np.asarray(beta, dtype=np.float64)
    n = float(np.linalg.norm(beta))
    if need and not n > 0:
        raise ProblemError("an aligned init needs a nonzero beta")
    return beta / n if n > 0 else beta


def _rescale(W: np.ndarray, D: int) -> np.ndarray:
    """W sqrt(N D) / ||W||_F: ||W||_F^2 / N = D (tr M0 = D)."""
    return W * (math.sqrt(W.shape[0] * D) / np.linalg.norm(W))


def _covariance(rng: np.random.Generator, D: int, s: InitSpec, bhat) -> np.ndarray:
    """Sigma = M0 of the N = inf family ``s`` (tr Sigma = D)."""
    if s.kind == "iid":
        return np.eye(D)
    if s.kind == "powerlaw":
        V = haar_frame(rng, D, D)
        lam = np.arange(1, D + 1, dtype=np.float64) ** (-2.0 * s.exponent)
        lam *= D / lam.sum()
        S = (V * lam) @ V.T
    else:
        V = haar_frame(rng, D, s.rank) if s.kind == "lowrank" else aligned_frame(
            rng, bhat, s.rank, s.overlap)
        S = (D / s.rank) * (V @ V.T)
    return 0.5 * (S + S.T)


def _weights(rng: np.random.Generator, D: int, N: int, s: InitSpec, bhat) -> np.ndarray:
    """W0 (N x D) of the finite-N family ``s``; the first draw is G."""
    G = rng.standard_normal((N, D))
    if s.kind == "iid":
        return G
    U, sv, Vt = np.linalg.svd(G, full_matrices=False)
    if s.kind == "lowrank":
        return _rescale((U[:, :s.rank] * sv[:s.rank]) @ Vt[:s.rank], D)
    if s.kind == "powerlaw":
        k = np.arange(1, sv.size + 1, dtype=np.float64)
        return _rescale((U * k ** (-s.exponent)) @ Vt, D)
    V = aligned_frame(rng, bhat, s.rank, s.overlap)
    return _rescale((U[:, :s.rank] * sv[:s.rank]) @ V.T, D)


def make_init(rng: np.random.Generator, D: int, N: int | float, beta: np.ndarray | None = None,
              spec: str | InitSpec = "iid", scale: float = 1.0) -> np.ndarray:
    """The initialisation of ``spec`` (docs/init_structure.md §1).

    Parameters
    ----------
    rng : numpy.random.Generator
        The W0 stream (``default_rng(SeedSequence(seed).spawn(4)[3])`` for a Problem).
    D : int
    N : int or float
        Width; ``math.inf`` returns the neuron covariance instead of weights.
    beta : array (D,), optional
        The teacher direction (needed by ``aligned``).
    spec : str or InitSpec
    scale : float
        sigma > 0, multiplies W0 (Sigma by sigma^2).

    Returns
    -------
    numpy.ndarray
        W0 (N x D) at finite N; Sigma = M0 (D x D, symmetric) at N = inf.
    """
    s = check_init(spec, D, N)
    scale = check_init_scale(scale)
    bhat = _unit(beta, s.kind == "aligned")
    if math.isinf(N):
        S = _covariance(rng, D, s, bhat)
        return S if scale == 1.0 else (scale * scale) * S
    W = _weights(rng, D, int(N), s, bhat)
    return W if scale == 1.0 else scale * W


# ------------------------------------------------------------------------------ measures
def init_measures(init: np.ndarray, beta: np.ndarray, *, finite: bool, n: int | None = None,
                  rank_rtol: float = 1e-10) -> dict[str, float]:
    """Effective ranks and task overlap of an initialisation (docs/init_structure.md §1.4).

    Parameters
    ----------
    init : array
        W0 (N x D) or, at N = inf, Sigma = M0 (D x D).
    beta : array (D,)
    finite : bool
        True if ``init`` is W0 (finite N), False if it is a second moment M0 (D x D).
    n : int, optional
        With ``finite=False``: the number of singular values of the weights, min(N, D) for an
        M0 = W0^T W0 / N of width N (default D, the N = inf convention).
    rank_rtol : float
        Eigenvalues of M0 up to ``rank_rtol * lambda_max`` are round-off: counted as zeros.

    Returns
    -------
    dict
        ``trace_M0``; ``rank`` (numerical rank of M0); ``participation_ratio``
        (sum lambda)^2 / sum lambda^2 over the eigenvalues of M0; ``liu_rank``
        sum_k s_k / (s_1 n), s_k the singular values of W0 (n = min(N, D); at N = inf
        s_k = sqrt(lambda_k), n = D) -- Liu et al.'s normalised effective rank; ``stable_rank``
        tr M0 / lambda_max; ``task_overlap`` betahat^T M0 betahat / tr M0 (isotropic: 1/D) and
        ``task_overlap_rel`` = D times it; ``top_overlap`` |v1 . betahat| for the top
        eigenvector v1 of M0.
    """
    init = np.asarray(init, dtype=np.float64)
    if finite:
        N, D = init.shape
        M0 = init.T @ init / N
        n = min(N, D)
    else:
        M0, D = init, init.shape[0]
        n = D if n is None else int(n)
    lam, vecs = np.linalg.eigh(0.5 * (M0 + M0.T))
    lam, vecs = lam[::-1].copy(), vecs[:, ::-1]
    lam[lam <= rank_rtol * lam[0]] = 0.0          # round-off eigenvalues are zeros
    tr = float(lam.sum())
    sv = np.sqrt(lam[:n])
    out = {"trace_M0": tr,
           "rank": int(np.sum(lam > 0)),
           "participation_ratio": tr ** 2 / float(np.sum(lam ** 2)),
           "liu_rank": float(sv.sum() / (sv[0] * n)),
           "stable_rank": tr / float(lam[0])}
    norm = float(np.linalg.norm(beta))
    if norm == 0.0:           # no teacher direction (e.g. a user's data with beta = 0)
        return {**out, "task_overlap": None, "task_overlap_rel": None, "top_overlap": None}
    bhat = np.asarray(beta, dtype=np.float64) / norm
    overlap = float(bhat @ M0 @ bhat) / tr
    return {**out, "task_overlap": overlap, "task_overlap_rel": D * overlap,
            "top_overlap": float(abs(vecs[:, 0] @ bhat))}
