"""The sample-space representation of exact full-batch GD (issue 14, goal 4).

Every full-batch GD increment lies in the row space of X (plus a multiple of F itself under
weight decay):

    Delta(F) = X^T (c_R R) - eta0 lambda F,   R = r * (eps X F + c^T),  c_R = -2 eta0 / (alpha P)

(docs/theory.md §3, §9).  So, for any N (N = inf included) and any initial factor F_0,

    F_t = s_t F_0 + X^T A_t,    A_t in R^{P x r},   s_t = (1 - eta0 lambda)^t,

and the training image X F_t = s_t X F_0 + K A_t with the P x P Gram K = X X^T (at N = inf
with M_0 = I this is the issue's U - I = X^T B X written for the factor).  The state can
therefore live in sample space: keep (s, A, XF), with K computed once, and step

    R = c_R weight(XF, r(XF)),   A <- (1 - d) A + R,   XF <- (1 - d) XF + K R,   s <- (1 - d) s

(d = eta0 lambda): 2 P^2 r flops per step (K R) instead of the factor step's 4 P D r (X F and
X^T R).  Heavy-ball momentum is linear in the same triples ([F; F_v] both of this form), so it
runs too.  Minibatch and online SGD stay in the factor representation (online batches leave
the row space of X; minibatches would need the scattered rows of K: not worth it here).

The factor F itself (2 P D r flops: F = s F_0 + X^T A) is formed only where something needs
it: the recorded columns, observers and trackers at the save times, the final state, and a
divergence message (:class:`RowSpaceFactor` materialises itself on ``numpy.asarray``, so a
tracker that keeps the per-step state, e.g. the last healthy one, pays nothing until it
reads it).  The kept XF is X F_t up to round-off (it is the sum of the increments' images,
not a recomputation).

:func:`choose_representation` picks the cheaper one: "sample" when its step's flops, times
:data:`SAMPLE_MARGIN`, are at most the factor step's, i.e. P <= D (measured on this 2-core
machine with ``benchmarks/sample_space.py``: per step the two break even near P = 2 D, as
the flop count says; at P = D the sample step is ~1.7-1.8x faster).
"""

from __future__ import annotations

import os

import numpy as np

from lazyrich_theory.core.reduced import ReducedSystem, _weight
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.problem import options_in_use
from lazyrich_theory.spec.streams import sgd_mode

__all__ = ["REPRESENTATIONS", "REPRESENTATION_ENV", "SAMPLE_MARGIN", "SAMPLE_OPTIONS", "step_flops",
           "choose_representation", "FactorSteps", "SampleSteps", "RowSpaceFactor",
           "representation_steps"]

#: The state representations of exact GD: the factor F (D x r) or sample space (P x r).
REPRESENTATIONS = ("factor", "sample")

#: Environment variable forcing the representation of exact GD runs ("factor", "sample" or
#: "auto"); for benchmarks and checks (the two agree to round-off), unset in normal use.
REPRESENTATION_ENV = "LAZYRICH_GD_REPRESENTATION"

#: "sample" is chosen when its step's flops times this margin are at most the factor step's
#: (2 P^2 r x 2 <= 4 P D r, i.e. P <= D): the measured break-even is near P = 2 D, and the
#: margin covers the save-time reconstruction and the smaller steps' worse BLAS rate.
SAMPLE_MARGIN = 2.0

#: The training options :class:`SampleSteps` implements (label noise only changes the labels;
#: weight decay is the scalar s; heavy ball has the same row-space form).  Any other option in
#: use runs the factor representation, whose increment is ``ReducedSystem.increment``: a new
#: option is never silently ignored here (docs/architecture.md §3.1).
SAMPLE_OPTIONS = frozenset({"noise", "weight_decay", "weight_decay_torch", "momentum"})


def step_flops(P: int, D: int, r: int, representation: str) -> float:
    """Flops of one exact GD step's products in ``representation``.

    Parameters
    ----------
    P, D, r : int
        Training points, input dimension, factor columns.
    representation : {"factor", "sample"}
        X F and X^T R (4 P D r) or K R (2 P^2 r).

    Returns
    -------
    float
    """
    return 4.0 * P * D * r if representation == "factor" else 2.0 * P * P * r


def choose_representation(system: ReducedSystem, requested: str | None = None) -> str:
    """The representation an exact GD run of ``system`` uses.

    Parameters
    ----------
    system : ReducedSystem
        The system (its problem's SGD mode and the shapes of X and F_0 decide).
    requested : {"auto", "factor", "sample"}, optional
        "factor" or "sample" force one; "auto" (or None) takes ``$LAZYRICH_GD_REPRESENTATION``
        if it is set, else the flop rule (:data:`SAMPLE_MARGIN`).

    Returns
    -------
    str
        "factor" or "sample"; always "factor" for minibatch / online SGD.  ProblemError (one
        line) for an unknown name, or "sample" forced for an SGD run.
    """
    req = requested or "auto"
    if req == "auto":
        req = os.environ.get(REPRESENTATION_ENV, "").strip().lower() or "auto"
    if req not in ("auto", *REPRESENTATIONS):
        raise ProblemError(f"GD representation must be one of auto, {', '.join(REPRESENTATIONS)}"
                           f" (argument or ${REPRESENTATION_ENV}), got {req!r}")
    mode = sgd_mode(system.problem)
    if mode is not None:
        if req == "sample":
            raise ProblemError(f"the sample-space representation is for full-batch GD only, "
                               f"not {mode} SGD")
        return "factor"
    other = sorted(set(options_in_use(system.problem)) - SAMPLE_OPTIONS)
    if other:
        if req == "sample":
            raise ProblemError(f"the sample-space representation does not implement "
                               f"{', '.join(other)}")
        return "factor"
    if req != "auto":
        return req
    P, D = system.X.shape
    r = system.F0.shape[1]
    sample = SAMPLE_MARGIN * step_flops(P, D, r, "sample") <= step_flops(P, D, r, "factor")
    return "sample" if sample else "factor"


class FactorSteps:
    """The factor representation: the state is F itself (``ReducedSystem.increment``)."""

    name = "factor"

    def __init__(self, system: ReducedSystem):
        self.system = system

    def start(self) -> np.ndarray:
        """F_0 (a copy)."""
        return self.system.F0.copy()

    def zero(self) -> np.ndarray:
        """The zero state (the heavy ball's initial velocity)."""
        return np.zeros_like(self.system.F0)

    def image(self, F: np.ndarray, Xb: np.ndarray) -> np.ndarray:
        """X_b F."""
        return Xb @ F

    def increment(self, F: np.ndarray, XF: np.ndarray, r: np.ndarray,
                  Xb: np.ndarray) -> np.ndarray:
        """Delta(F) on the batch ``Xb``."""
        return self.system.increment(F, XF, r, Xb)

    def factor(self, F: np.ndarray) -> np.ndarray:
        """F."""
        return F


class SampleSteps:
    """The sample-space representation of full-batch GD: states are :class:`RowSpaceFactor`.

    Parameters
    ----------
    system : ReducedSystem
        The system; K = X X^T and X F_0 are computed here, once.
    """

    name = "sample"

    def __init__(self, system: ReducedSystem):
        p = system.problem
        self.system = system
        self.X, self.F0 = system.X, system.F0
        self.K = system.X @ system.X.T
        self.XF0 = system.X @ system.F0
        self.c, self.eps = system.c, p.eps
        self.scale = -2.0 * p.eta0 / (p.alpha * system.X.shape[0])
        self.decay = float(p.eta0 * p.weight_decay)

    def start(self) -> "RowSpaceFactor":
        """F_0: s = 1, A = 0, XF = X F_0."""
        return RowSpaceFactor(1.0, np.zeros_like(self.XF0), self.XF0.copy(), self)

    def zero(self) -> "RowSpaceFactor":
        """The zero state (the heavy ball's initial velocity)."""
        return RowSpaceFactor(0.0, np.zeros_like(self.XF0), np.zeros_like(self.XF0), self)

    def image(self, F: "RowSpaceFactor", Xb: np.ndarray) -> np.ndarray:
        """X F, kept (``Xb`` is the training set)."""
        return F.XF

    def increment(self, F: "RowSpaceFactor", XF: np.ndarray, r: np.ndarray,
                  Xb: np.ndarray) -> "RowSpaceFactor":
        """Delta(F) = X^T R - d F with R = c_R r * (eps XF + c^T): (-d s, R - d A, K R - d XF)."""
        R = _weight(XF, r, self.c, self.eps)
        R *= self.scale
        KR = self.K @ R
        if self.decay == 0.0:
            return RowSpaceFactor(0.0, R, KR, self)
        d = self.decay
        R -= d * F.A
        KR -= d * F.XF
        return RowSpaceFactor(-d * F.s, R, KR, self)

    def factor(self, F: "RowSpaceFactor") -> np.ndarray:
        """F = s F_0 + X^T A (cached on the state)."""
        return F.factor()


class RowSpaceFactor:
    """A factor in the row space of the training inputs: F = s F_0 + X^T A, with its
    training image XF = X F kept alongside.

    Linear combinations (``+``, ``-``, multiplication by a Python float) act on (s, A, XF);
    the factor itself is formed by :meth:`factor` or ``numpy.asarray`` (2 P D r flops, once
    per state).

    Parameters
    ----------
    s : float
        The multiple of F_0.
    A, XF : array (P, r)
        The sample-space coefficients and X F.
    basis : SampleSteps
        Holds F_0, X and K.
    """

    __slots__ = ("s", "A", "XF", "basis", "_F")

    def __init__(self, s: float, A: np.ndarray, XF: np.ndarray, basis: SampleSteps):
        self.s, self.A, self.XF, self.basis = s, A, XF, basis
        self._F: np.ndarray | None = None

    def __add__(self, other: "RowSpaceFactor") -> "RowSpaceFactor":
        return RowSpaceFactor(self.s + other.s, self.A + other.A, self.XF + other.XF,
                              self.basis)

    def __sub__(self, other: "RowSpaceFactor") -> "RowSpaceFactor":
        return RowSpaceFactor(self.s - other.s, self.A - other.A, self.XF - other.XF,
                              self.basis)

    def __mul__(self, a: float) -> "RowSpaceFactor":
        return RowSpaceFactor(a * self.s, a * self.A, a * self.XF, self.basis)

    __rmul__ = __mul__

    def factor(self) -> np.ndarray:
        """F = s F_0 + X^T A, shape (D, r)."""
        if self._F is None:
            b = self.basis
            F = b.X.T @ self.A
            F += b.F0 if self.s == 1.0 else self.s * b.F0
            self._F = F
        return self._F

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        F = self.factor()
        if dtype is not None and np.dtype(dtype) != F.dtype:
            return F.astype(dtype)
        return F.copy() if copy else F


def representation_steps(system: ReducedSystem, name: str) -> FactorSteps | SampleSteps:
    """The stepping object of representation ``name`` ("factor" or "sample")."""
    return SampleSteps(system) if name == "sample" else FactorSteps(system)
