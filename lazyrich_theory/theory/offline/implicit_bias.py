"""The long-time state of the offline flow as a mirror-descent interpolant (docs/offline_theory.md
§15; an approximation, with its measured error there).

At N = inf from M0 = I the flow on the DMFT clock is dU/dtau = -(1/kappa) A(tau) U,
A = sum_mu r_mu x_mu x_mu^T, and (dropping eps s next to 1, A5' of §8.5)
du/dtau = -(1/(eps kappa)) X^T r.  If the matrices A(tau) at different times commuted, U would
be exp(-(1/kappa) int A) and the flow would end at (M = U U^T, its uu^T part dropped with eps s)

    M = exp(K),  K = -(2/kappa) sum_mu c_mu x_mu x_mu^T,   u = -(1/(eps kappa)) X^T c,

with c_mu = int_0^inf r_mu dtau fixed by interpolation of the P training labels.  That point
is the unique maximiser of the concave dual

    Psi(c) = -(alpha eps kappa / 4) tr e^K - (alpha / (2 eps kappa)) c^T X X^T c - c . b,
    b_mu = (alpha eps / 2) |x_mu|^2 + y_mu,

whose gradient is the interpolation residual (the minimiser of the von Neumann relative
entropy tr(M ln M - M + I) plus 2 |u|^2 under the constraints).  The A(tau) do not commute;
how far the exact flow's limit is from this point is measured, not assumed (§15).
This is a finite-D computation (P dual variables, D x D eigendecompositions), not a theory
with D-independent unknowns: it characterises the state; its D -> inf analysis is open.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, cg

from lazyrich_theory.core.statistics import population_loss
from lazyrich_theory.core.threads import blas_threads, map_on_free_cores
from lazyrich_theory.errors import IntegrationError, ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline.inputs import check_problem, input_fields
from lazyrich_theory.theory.offline.summary import CriticalKappa, check_kappa_range

__all__ = ["LongTimeState", "entropic_interpolant", "interpolant_floors",
           "interpolant_critical_kappa", "interpolant_reason", "interpolant_gate",
           "interpolant_size_cap", "critical_reason", "interpolant_limit",
           "INTERPOLANT_CRITICAL_SEEDS", "INTERPOLANT_CRITICAL_D_DEFAULT",
           "INTERPOLANT_D_DEFAULT", "INTERPOLANT_ACCURACY", "exp_divided_differences"]

#: Its measured error against the exact flow's tau -> inf loss (docs §15.3), for the outputs
#: that report it.
INTERPOLANT_ACCURACY = ("measured against the exact flow: within 0.02 on seed means at "
                        "kappa >= 2 (D = 50-400, per seed up to 0.08), 0.05-0.13 low at "
                        "kappa = 1.5 (seed means, D = 50-800; 0.05-0.06 at D = 400-800)")
#: Training sets (seeds) averaged by :func:`interpolant_critical_kappa` by default.
INTERPOLANT_CRITICAL_SEEDS = 4
#: Up to this D the command line and the figures compute the interpolant by default (3-12 s at
#: D = 400 for kappa <= 5.5; a Newton-CG product costs P D^2).
INTERPOLANT_D_DEFAULT = 400
#: Up to this D ``lazyrich asymptotic`` computes the interpolant's critical kappa by default
#: (4-6 kappas x 4 training sets, solved side by side on the free cores: ~1 s at D = 100, ~5 s
#: at D = 200, ~25 s at D = 400 on a quiet 2-core machine, about twice that on a busy one;
#: benchmarks/critical_speed.md; the cost grows like D^3).
INTERPOLANT_CRITICAL_D_DEFAULT = 400


@dataclass(frozen=True)
class LongTimeState:
    """The mirror-descent interpolant of one problem (relative quantities divide by the initial
    population loss (3/4) b2^2; with an init scale sigma, alpha and eps below are sigma alpha,
    sigma eps and M is that of the equivalent run from M0 = I).

    Attributes
    ----------
    population_loss : float
        Relative population loss of the interpolant (the predicted tau -> inf test loss).
    linear_power : float
        Its linear part alpha^2 |u|^2 / D, relative.
    spike_fraction : float
        betahat^T (M - I) betahat / (b2 D / (alpha eps)): 1 when the spike fits the teacher.
    bulk_trace : float
        tr(M - I) / D minus the spike's share, the bulk's mean shift (memorisation).
    max_residual : float
        max_mu |f(x_mu) - y_mu| at the solution (the interpolation check).
    iterations : int
        Newton iterations (damped, preconditioned CG).
    initial_loss : float
        The initial population loss (3/4) b2^2 the relative quantities divide by.
    """

    population_loss: float
    linear_power: float
    spike_fraction: float
    bulk_trace: float
    max_residual: float
    iterations: int
    initial_loss: float

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


def exp_divided_differences(lam: np.ndarray) -> np.ndarray:
    """Gamma_ij = (e^l_i - e^l_j) / (l_i - l_j) (e^l_i on the diagonal), the logarithmic mean of
    e^l_i and e^l_j: the Frechet derivative of exp in the eigenbasis.  Computed as
    e^max (-expm1(-|l_i - l_j|)) / |l_i - l_j|: no cancellation for close eigenvalues, no
    0 * inf for far ones."""
    ad = np.abs(lam[:, None] - lam[None, :])
    small = ad < 1e-12
    ratio = np.where(small, 1.0, -np.expm1(-ad) / np.where(small, 1.0, ad))
    return np.exp(np.maximum(lam[:, None], lam[None, :])) * ratio


class _Dual:
    """Psi's value, gradient and Hessian-vector product at c (one eigendecomposition per c)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, alpha: float, eps: float):
        self.X, self.alpha, self.eps = X, alpha, eps
        self.kappa = X.shape[0] / X.shape[1]
        self.G = X @ X.T
        self.b = 0.5 * alpha * eps * np.einsum("ij,ij->i", X, X) + y
        self._key, self._eig = None, None

    def eig(self, c: np.ndarray):
        """(eigenvalues, eigenvectors, X V, divided differences of exp) of K(c)."""
        key = c.tobytes()
        if key != self._key:
            K = (-2.0 / self.kappa) * (self.X.T * c) @ self.X
            lam, V = np.linalg.eigh(K)
            self._key, self._eig = key, (lam, V, self.X @ V, exp_divided_differences(lam))
        return self._eig

    def residual(self, c: np.ndarray) -> np.ndarray:
        """f(x_mu) - y_mu of the point c maps to (= grad Psi)."""
        lam, _, Y, _ = self.eig(c)
        xMx = (Y * Y) @ np.exp(lam)
        return (-(self.alpha / (self.eps * self.kappa)) * (self.G @ c)
                + 0.5 * self.alpha * self.eps * xMx - self.b)

    def terms(self, c: np.ndarray) -> tuple[float, float, float]:
        """The three terms of -Psi: entropy (alpha eps kappa / 4) tr e^K, linear column
        (alpha / (2 eps kappa)) c^T X X^T c, labels c . b."""
        lam = self.eig(c)[0]
        a, e, k = self.alpha, self.eps, self.kappa
        return (a * e * k / 4 * float(np.exp(lam).sum()), a / (2 * e * k) * float(c @ (self.G @ c)),
                float(c @ self.b))

    def value_and_grad(self, c: np.ndarray):
        """(-Psi, -grad Psi): the convex function the optimiser minimises."""
        return sum(self.terms(c)), -self.residual(c)

    def hessp(self, c: np.ndarray, v: np.ndarray) -> np.ndarray:
        """-Hess Psi . v through the Frechet derivative of exp in K's eigenbasis."""
        _, _, Y, gam = self.eig(c)
        L = ((Y.T * v) @ Y) * gam
        q = ((Y @ L) * Y).sum(1)
        a, e, k = self.alpha, self.eps, self.kappa
        return (a * e / k) * q + a / (e * k) * (self.G @ v)

    def preconditioner(self, c: np.ndarray) -> LinearOperator:
        """(diag(q) + (alpha / (eps kappa)) X X^T)^-1, q the diagonal of the quadratic part of
        -Hess Psi, applied by Woodbury through a D x D Cholesky factor: the exact inverse of
        the stiff rank-D linear-column part plus a Jacobi guess for the rest (CG then needs
        ~20-40 products where it needed ~200-900 unpreconditioned; docs §15.1)."""
        _, _, Y, gam = self.eig(c)
        Y2 = Y * Y
        a, e, k = self.alpha, self.eps, self.kappa
        q = (a * e / k) * ((Y2 @ gam) * Y2).sum(1)
        Xq = self.X / q[:, None]
        chol = cho_factor(np.eye(self.X.shape[1]) * (e * k / a) + self.X.T @ Xq)

        def apply(v: np.ndarray) -> np.ndarray:
            return v / q - Xq @ cho_solve(chol, self.X.T @ (v / q))

        n = self.X.shape[0]
        return LinearOperator((n, n), matvec=apply, dtype=float)


def _refusals(problem: Problem) -> None:
    check_problem(problem)
    if problem.convention != "A":
        raise ProblemError(f"convention={problem.convention!r}: the mirror-descent interpolant "
                           "is written in convention A (--convention A)")
    if problem.P > problem.D * (problem.D + 3) // 2:
        raise ProblemError(f"P = {problem.P} > D (D + 3) / 2 = {problem.D * (problem.D + 3) // 2}"
                           " (the parameters of M and u): the flow cannot interpolate, so there "
                           "is no interpolant")


def interpolant_reason(problem: Problem) -> str | None:
    """Why :func:`entropic_interpolant` refuses ``problem`` (one line), None when it does not:
    the offline theory's domain (:func:`~lazyrich_theory.theory.offline.check_problem`: N = inf
    is assumed, so ``problem.N`` is not read) and convention A."""
    if problem.init != "iid":
        return (f"init={problem.init!r}: the interpolant starts from M0 = I (the iid init); "
                "no tau -> inf loss is computed for other inits")
    try:
        _refusals(problem.replace(N=math.inf))
    except ProblemError as exc:
        return str(exc)
    return None


def interpolant_gate(problem: Problem, max_D: int | None = INTERPOLANT_D_DEFAULT) -> str | None:
    """Why the tau -> inf loss of ``problem`` is not computed (one line), None when it is:
    :func:`interpolant_reason`, and, for a computation nobody asked for explicitly, the size
    cap ``max_D`` (None: no cap; a D = 800 interpolant takes minutes)."""
    return interpolant_reason(problem) or interpolant_size_cap(problem.D, max_D)


def critical_reason(problem: Problem) -> str | None:
    """Why :func:`interpolant_critical_kappa` refuses ``problem`` (one line), None when it does
    not: a data file (the search draws training sets of other sizes and seeds), or
    :func:`interpolant_reason` of the problem at P = D + 1 (the search sets P itself, so the
    problem's own P is not checked)."""
    if problem.data_file is not None:
        return (f"data file {problem.data_file!r}: the critical kappa averages training sets "
                "of other sizes and seeds, which a data file does not have")
    return interpolant_reason(problem.replace(P=problem.D + 1))


def interpolant_size_cap(D: int, max_D: int | None = INTERPOLANT_D_DEFAULT) -> str | None:
    """Why an interpolant nobody asked for explicitly is not computed at dimension ``D``
    (one line), None when ``D`` is within the cap ``max_D`` (None: no cap)."""
    if max_D is not None and D > max_D:
        return f"not computed by default at D = {D} > {max_D} (its cost grows like D^3)"
    return None


def interpolant_limit(problem: Problem, data: ProblemData | None = None,
                      max_D: int | None = INTERPOLANT_D_DEFAULT) -> tuple[float | None, str | None]:
    """(the interpolant's tau -> inf population loss relative to the initial one, None), or
    (None, why not): :func:`interpolant_gate`, or a Newton iteration that did not converge.
    The one place the figures and the CLI decide whether to print that number."""
    why = interpolant_gate(problem, max_D)
    if why is not None:
        return None, why
    try:
        return float(entropic_interpolant(problem, data).population_loss), None
    except IntegrationError as exc:
        return None, str(exc)                  # names the interpolant and its residual


def entropic_interpolant(problem: Problem, data: ProblemData | None = None,
                         tol: float = 1e-9, max_iter: int = 300) -> LongTimeState:
    """The commuting-flow (mirror-descent) interpolant of ``problem``'s training set, and its
    population loss: an approximation of the exact flow's tau -> inf state (docs §15; the
    uu^T part of M is dropped with eps s, A5').

    Parameters
    ----------
    problem : Problem
        N = inf, centered, iid init, convention A, full batch, no training options, P > D
        (the refusals of the offline theory).  An ``init_scale`` sigma is the same run as
        (sigma alpha, sigma eps) from M0 = I (Problem docs): the interpolant is that run's.
    data : ProblemData, optional
        The training set and teacher (default: the problem's own).
    tol : float
        Stop when the largest interpolation residual, relative to the largest label, is below.
    max_iter : int
        Newton iterations before giving up (IntegrationError naming the residual).

    Returns
    -------
    LongTimeState
    """
    _refusals(problem)
    data = problem.data() if data is None else data
    X, y = np.asarray(data.X, dtype=float), np.asarray(data.y, dtype=float)
    dual = _Dual(X, y, *problem.scaled_alpha_eps)
    scale = max(float(np.abs(y).max()), 1e-300)
    P, D = X.shape
    with blas_threads(2.0 * P * D * D):     # core.threads: by the size of X V L and free cores
        try:
            c, nit = _newton(dual, np.zeros(P), tol * scale, max_iter)
        except np.linalg.LinAlgError as exc:
            raise IntegrationError(f"the interpolant's Newton iteration broke down ({exc}): "
                                   "the dual is too ill-conditioned at this alpha, eps, P") from exc
    worst = float(np.abs(dual.residual(c)).max())
    if not (worst <= tol * scale):
        raise IntegrationError(f"the interpolant did not converge in {nit} Newton steps: "
                               f"largest residual {worst:.2e} (labels up to {scale:.2e})")
    return _state(problem, data, dual, c, worst, nit)


def _newton(dual: _Dual, c: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Damped inexact Newton on -Psi: each step a preconditioned CG solve (forcing term
    min(1/2, sqrt(|g| / |g0|))); where CG fails or its direction does not descend, the
    preconditioned gradient instead.  Returns (c, Newton steps); stops when the largest
    residual is under ``tol``; IntegrationError when no step can be found."""
    n, g0 = c.size, None
    with np.errstate(over="ignore", invalid="ignore"):
        for it in range(max_iter):
            g = -dual.residual(c)
            gmax = float(np.abs(g).max())
            if gmax <= tol:
                return c, it
            gnorm = float(np.linalg.norm(g))
            g0 = gnorm if g0 is None else g0
            H = LinearOperator((n, n), matvec=lambda v, c=c: dual.hessp(c, v), dtype=float)
            pre = dual.preconditioner(c)
            d, info = cg(H, -g, rtol=min(0.5, math.sqrt(gnorm / g0)), maxiter=10 * n, M=pre)
            if info != 0 or not np.all(np.isfinite(d)) or not float(g @ d) < 0:
                d = -pre.matvec(g)
            c = c + _step(dual, c, d, g, gmax) * d
    return c, max_iter


def _step(dual: _Dual, c: np.ndarray, d: np.ndarray, g: np.ndarray, gmax: float) -> float:
    """Backtracking from the full step: Armijo on -Psi while the predicted decrease is above
    Psi's round-off (1e-9 of its terms' size: large tr e^K); below that, where -Psi cannot
    resolve it, the first step that lowers the largest residual."""
    slope = float(g @ d)
    terms = dual.terms(c)
    noise, phi = 1e-9 * max(sum(abs(t) for t in terms), 1.0), sum(terms)
    step = 1.0
    while step > 1e-10:
        trial = c + step * d
        if -slope * step > noise:
            if sum(dual.terms(trial)) <= phi + 1e-4 * step * slope:
                return step
        elif float(np.abs(dual.residual(trial)).max()) < gmax:
            return step
        step *= 0.5
    raise IntegrationError(f"the interpolant's Newton step found no decrease (largest residual "
                           f"{gmax:.2e}): the dual is too ill-conditioned at this alpha, eps, P")


def _state(problem: Problem, data: ProblemData, dual: _Dual, c: np.ndarray, worst: float,
           nit: int) -> LongTimeState:
    (a, e), D = problem.scaled_alpha_eps, problem.D
    lam, V, _, _ = dual.eig(c)
    M = (V * np.exp(lam)) @ V.T
    u = (-1.0 / (e * dual.kappa)) * (dual.X.T @ c)
    beta = np.asarray(data.beta, dtype=float)
    b2 = input_fields(problem, data)["b2"]
    L0 = 0.75 * b2 * b2
    I = np.eye(D)
    bhat = beta / math.sqrt(float(beta @ beta))
    spike = float(bhat @ M @ bhat) - 1.0
    return LongTimeState(
        population_loss=population_loss(u, M, np.zeros(D), I, beta, a, e, problem.tau) / L0,
        linear_power=a * a * float(u @ u) / D / L0,
        spike_fraction=spike / (b2 * D / (a * e)),
        bulk_trace=(float(np.trace(M)) - D - spike) / D,
        max_residual=worst, iterations=nit, initial_loss=L0)


def interpolant_floors(problem: Problem, alphas, epss,
                       log: Callable[[str], None] | None = None) -> np.ndarray:
    """The interpolant's absolute tau -> inf population loss (the interpolation floor) on an
    alpha x eps grid, shape (len(alphas), len(epss)): ``problem`` with each (alpha, eps) (its
    fields: an init scale multiplies both), its own training set and teacher (the same for
    every cell: the data do not depend on alpha, eps).  ``log`` receives one line per alpha
    row."""
    data = problem.data()
    out = np.empty((len(alphas), len(epss)))
    for i, a in enumerate(alphas):
        def floor(e: float, a: float = float(a)) -> float:
            st = entropic_interpolant(problem.replace(alpha=a, eps=float(e)), data)
            return st.population_loss * st.initial_loss

        out[i] = map_on_free_cores(floor, epss)          # a row's cells side by side
        if log is not None:
            log(f"offline interpolant floors alpha = {float(a):g} (absolute; eps = "
                + ", ".join(f"{float(e):g}" for e in epss) + "): "
                + ", ".join(f"{v:.3g}" for v in out[i]))
    return out


def interpolant_critical_kappa(problem: Problem, seeds: int = INTERPOLANT_CRITICAL_SEEDS,
                               kappa_range: tuple[float, float] = (1.5, 8.0),
                               tol: float = 0.02,
                               log: Callable[[str], None] | None = None,
                               start: float | None = 3.0) -> CriticalKappa:
    """The kappa at which the interpolant's tau -> inf relative population loss, averaged over
    ``seeds`` training sets (the problem's seed, seed + 1, ...), is 1/2 (docs §9, §15).

    A bracket stepped out from ``start``, then Brent's method in kappa (P = round(kappa D); a
    larger P extends the same seed's training set, so the average is nearly monotone); each
    evaluation is ``seeds`` convex solves (0.1-1 s each at D = 100, 3-12 s at D = 400; the
    cost grows with P, so the search avoids large kappa when it can).  NaN with a reason when
    the average does not cross 1/2 in ``kappa_range`` (capped at the largest P with an
    interpolant, D (D + 3) / 2), or when an interpolant's Newton iteration does not converge
    (the reason names its P and seed).  ProblemError (:func:`critical_reason`) for a data file
    or a problem outside the interpolant's domain.

    Parameters
    ----------
    problem : Problem
        Its D, alpha, eps and seed are read; its P is replaced.
    seeds : int
    kappa_range : (float, float)
        Search interval, 1 < low < high.
    tol : float
        Tolerance in kappa.
    log : callable, optional
        One line per evaluation.
    start : float or None
        First kappa of the bracket search, which steps by factors of 1.25 towards the side the
        sign of the loss - 1/2 points to (the crossing is at 2.5-3.5 for D = 50-1600 and
        alpha eps <= 0.08, docs §15.3); None: the ends of ``kappa_range`` first.

    Returns
    -------
    CriticalKappa
    """
    lo, hi = check_kappa_range(kappa_range)
    if seeds < 1:
        raise ProblemError(f"seeds must be >= 1, got {seeds}")
    if start is not None and not math.isfinite(start):
        raise ProblemError(f"start must be a finite kappa or None, got {start!r}")
    why = critical_reason(problem)
    if why is not None:
        raise ProblemError(why)
    D = problem.D
    definition = ("kappa at which the mirror-descent interpolant's tau -> inf relative "
                  f"population loss, averaged over {seeds} training sets, is 1/2 (docs/offline_theory.md §15)")
    hi = min(hi, (D * (D + 3) // 2) / D)        # beyond: no interpolant exists (tiny D)
    if not hi > lo:
        return CriticalKappa(math.nan, "interpolant", definition,
                             f"no kappa in the range has an interpolant at D = {D} "
                             "(P <= D (D + 3) / 2)")

    @functools.lru_cache(maxsize=None)
    def mean_loss(P: int) -> float:
        L = _seed_losses(problem.replace(P=P), seeds)
        if log is not None:
            log(f"interpolant critical kappa: P = {P} (kappa = {P / D:.4g}): mean loss "
                f"{np.mean(L):.4g} over {seeds} training sets")
        return float(np.mean(L))

    def excess(kappa: float) -> float:
        return mean_loss(max(int(round(kappa * D)), D + 1)) - 0.5

    try:
        bracket = _bracket(excess, lo, hi, start)
        if isinstance(bracket, str):
            return CriticalKappa(math.nan, "interpolant", definition,
                                 f"the averaged loss is {bracket} 1/2 over all of kappa in "
                                 f"[{lo:g}, {hi:g}]")
        value = brentq(excess, *bracket, xtol=tol)
    except IntegrationError as exc:            # names the interpolant and its residual
        return CriticalKappa(math.nan, "interpolant", definition, str(exc))
    return CriticalKappa(float(value), "interpolant", definition)


def _seed_losses(problem: Problem, seeds: int) -> list[float]:
    """The interpolant's relative tau -> inf loss of ``problem`` on ``seeds`` training sets
    (its seed, seed + 1, ...), solved side by side on the cores free now
    (:func:`~lazyrich_theory.core.threads.map_on_free_cores`: 1.9-2.1x faster at D = 400 on 2
    free cores, benchmarks/critical_speed.md).  IntegrationError naming the P and seed of a solve
    that did not converge."""
    def one(k: int) -> float:
        try:
            return entropic_interpolant(problem.replace(seed=problem.seed + k)).population_loss
        except IntegrationError as exc:
            raise IntegrationError(f"at P = {problem.P} (kappa = {problem.P / problem.D:.4g}), "
                                   f"seed {problem.seed + k}: {exc}") from exc

    return map_on_free_cores(one, range(seeds))


def _bracket(f: Callable[[float], float], lo: float, hi: float, start: float | None,
             factor: float = 1.25) -> tuple[float, float] | str:
    """(a, b) with f(a) > 0 >= f(b) for a decreasing f on [lo, hi], or on which side of 0 f
    stays ("above" / "below").  From ``start`` it steps by ``factor`` only towards the sign
    change, ending exactly at lo or hi (None: those two ends first).  scipy's
    ``elementwise.bracket_root`` grows both ends at once and approaches the limits
    geometrically: for an f whose cost grows with kappa, dozens of solves near hi when the
    crossing is not in the range."""
    if start is None:
        f_lo, f_hi = f(lo), f(hi)
        return (lo, hi) if f_lo > 0 >= f_hi else ("below" if f_lo <= 0 else "above")
    a = min(max(start, lo), hi)
    if f(a) > 0:
        while a < hi:
            b = min(a * factor, hi)
            if f(b) <= 0:
                return a, b
            a = b
        return "above"
    b = a
    while b > lo:
        a = max(b / factor, lo)
        if f(a) > 0:
            return a, b
        b = a
    return "below"
