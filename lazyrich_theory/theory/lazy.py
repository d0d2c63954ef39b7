"""The lazy (linearised) model in closed form, and kernel regression with the NTK.

Everything is in width-free units: eta K = eta0 Ktilde (``kernels.ntk_tilde``), inputs in
convention-A units (as stored by :class:`~lazyrich_theory.reduced.ReducedSystem`).

Linearised model
----------------
Linearise the network at a state W_s (default the initialisation W0; any factor state F of the
reduced solver can be used):  f_lin(x; W) = f(x; W_s) + grad_W f(x; W_s) . (W - W_s).  It is
trained on the same loss as the network, L = (1/P) sum_mu (ftilde_lin(x_mu) - y_mu)^2, with
ftilde_lin = f_lin - f(.; W0) (centered) or f_lin (uncentered), by GD with step
eta = eta0 N / alpha^2 (or by gradient flow, time in GD steps).  The training residuals
r = ftilde_lin(X) - y obey, with c = 2 eta0 / P and K = Ktilde(X, X) at W_s,

    GD:   r(t) = (I - c K)^t r(0),        flow:  r(t) = exp(-c K t) r(0),

because W <- W - eta (2/P) J^T r moves ftilde_lin by -(2 eta / P) J J^T r = -(2 eta0 / P) Ktilde r.
At any x, with K = V diag(lambda) V^T,

    ftilde_lin(x, t) = g0(x) + Ktilde(x, X) V diag(phi_t(lambda)) V^T (y - g0(X)),
    phi_t(lambda) = (1 - (1 - c lambda)^t) / lambda  (GD),  (1 - exp(-c lambda t)) / lambda  (flow),

where g0 = ftilde at W_s (0 for the centered model linearised at W0; f0 for the uncentered one).
phi_t(lambda) -> c t as lambda -> 0; it is evaluated with log1p/expm1, accurate for tiny
c lambda.  Modes with lambda <= rcond * lambda_max (default rcond = P * machine epsilon) are
treated as exact null modes of K: they are never learned (their residual stays constant) and
add nothing to predictions (K(x, X) v = 0 exactly for a null vector v of a Gram matrix).
All times are "after t updates" (t = 0 is the initialisation); GD times must be integers.
t -> inf gives ridgeless kernel regression, ``kernel_regression(0)``.

The exact population loss of the linearised model
--------------------------------------------------
The kernel functions are polynomials of degree 2 in x, so the error of g0 + sum_mu a_mu
Ktilde(., x_mu) is e(x) = v . x + x^T Delta x and its population loss is a quadratic form in a,
evaluated exactly for every t at O(P^2) per time (``theory.kernel_loss.KernelExpansionLoss``,
the Wick formula of ``core.statistics``).  This equals the network's population loss
(statistics.population_loss) at the linearised statistics wbar + delta wbar,
M + (W_s^T dW + dW^T W_s)/N.

Accuracy and cost.  The linear part of the population error and the test error are evaluated as
norms of explicit vectors (the test error through a QR factor of Ktilde(X_test, X) V), never as
quadratic forms in the Gram matrix of the kernel functions, which would lose digits like the
normal equations (error ~ machine-eps * cond(K)^2; cond ~ 1e5 in Figure 1).  Measured at
Figure 1 against a direct evaluation: ~5e-13 relative.  One P x P eigendecomposition per
model; then O(P^2) per time for the test and population losses, O(P) for the train loss.

Kernel regression (the K0 baseline)
-----------------------------------
    ftilde_KR(x) = g0(x) + Ktilde(x, X) (Ktilde(X, X) + ridge I)^+ (y - g0(X)).

Centered model: g0 = 0, i.e. plain ridge(less) regression of y with the initial NTK, the paper's
horizontal "K0 regression" line (its code solves K c = y with no ridge).  Uncentered model:
kernel regression of the residual target y - f0 around the initial function f0, predicting
f0 + K(x, X) K^+ (y - f0) -- the t -> inf limit of the uncentered linearised model.
``ridge`` is in units of Ktilde (the true-NTK ridge is ridge * alpha^2 / N).  Ridgeless solves
use the eigendecomposition with the null-mode cutoff above (a pseudo-inverse); ridge > 0 uses
all modes (eigenvalues clipped at 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lazyrich_theory.core.kernels import ntk_tilde, ntk_tilde_infinite
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.statistics import predict, reference
from lazyrich_theory.core.threads import blas_threads
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.kernel_loss import KernelExpansionLoss

__all__ = ["lazy_summary", "lazy_summary_of",
           "LinearizedModel", "LinearizedCurves", "KernelRegressionResult", "kernel_regression",
           "k0_baseline", "linearized_curves"]

METHODS = ("gd", "flow")
#: times are processed in chunks of this many to bound memory (chunk x P arrays)
_CHUNK = 2048


@dataclass(frozen=True, eq=False)
class KernelRegressionResult:
    """Kernel (ridge) regression: MSEs and predictions of ftilde (train, test).

    population_mse is the exact Gaussian test loss (None when not available).  rank is the
    number of eigenmodes used (all P with a ridge).
    """

    train_mse: float
    test_mse: float | None
    population_mse: float | None
    ridge: float
    rank: int
    train_pred: np.ndarray
    test_pred: np.ndarray | None


@dataclass(frozen=True, eq=False)
class LinearizedCurves:
    """Loss curves of the linearised model at times t (after t updates)."""

    t: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    population_loss: np.ndarray | None
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    def columns(self, prefix: str = "lin_") -> dict[str, np.ndarray]:
        """{prefix + 'train_loss': ..., prefix + 'test_loss': ..., prefix + 'population_loss': ...}
        (absent entries omitted), e.g. for ``Trajectory.with_columns`` on matching times."""
        out = {prefix + "train_loss": self.train_loss}
        if self.test_loss is not None:
            out[prefix + "test_loss"] = self.test_loss
        if self.population_loss is not None:
            out[prefix + "population_loss"] = self.population_loss
        return out


class LinearizedModel:
    """The linearised network around a state, in closed form from ONE eigendecomposition.

    Construct with :meth:`from_system` (or :meth:`from_problem`); then
    ``curves(t, method)`` gives train / test / population losses at any times,
    ``predict(t, X)`` the predictions, ``kernel_regression(ridge)`` the t -> inf limit
    (ridge = 0) or kernel ridge regression.  See the module docstring for the formulas.

    Low-level constructor: K = Ktilde(X, X) (P x P), y, g0 = ftilde at the linearisation point on
    X, eta0; optionally K_test = Ktilde(X_test, X), y_test, g0_test; ``population`` the
    exact population loss of the kernel expansion (a KernelExpansionLoss, built by from_system).
    """

    def __init__(self, K: np.ndarray, y: np.ndarray, eta0: float, g0: np.ndarray | None = None,
                 K_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
                 g0_test: np.ndarray | None = None, rcond: float | None = None,
                 population: KernelExpansionLoss | None = None, system: Any = None,
                 F: np.ndarray | None = None):
        K = np.asarray(K, dtype=np.float64)
        P = K.shape[0]
        if K.shape != (P, P):
            raise ProblemError(f"K must be square, got {K.shape}")
        self.P = P
        self.eta0 = float(eta0)
        self.c = 2.0 * self.eta0 / P
        self.y = np.asarray(y, dtype=np.float64)
        self.g0 = np.zeros(P) if g0 is None else np.asarray(g0, dtype=np.float64)
        with blas_threads(9.0 * P**3):          # core.threads: by size and free cores
            lam, V = np.linalg.eigh(0.5 * (K + K.T))
        lam, V = lam[::-1], V[:, ::-1]                     # descending
        self.rcond = P * np.finfo(float).eps if rcond is None else float(rcond)
        lmax = max(float(lam[0]), 0.0) if P else 0.0
        self.keep = lam > self.rcond * lmax
        self.lam, self.V = lam, V
        self._lam_kept = np.where(self.keep, lam, 0.0)
        self._inv_lam = np.where(self.keep, 1.0 / np.where(self.keep, lam, 1.0), 0.0)
        self.rank = int(self.keep.sum())
        # coordinates of the initial target residual y - g0 in the eigenbasis
        self.a = V.T @ (self.y - self.g0)
        self.K_test = None if K_test is None else np.asarray(K_test, dtype=np.float64)
        if self.K_test is not None:
            self.y_test = np.asarray(y_test, dtype=np.float64)
            self.g0_test = (np.zeros(self.K_test.shape[0]) if g0_test is None
                            else np.asarray(g0_test, dtype=np.float64))
        self._population = population
        self._system = system
        self._F = F
        self._test_factor = None
        self._pop_factor = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_system(cls, system: Any, F: np.ndarray | None = None, eta0: float | None = None,
                    rcond: float | None = None, population: bool = True) -> "LinearizedModel":
        """The linearised model of a :class:`ReducedSystem`, around factor state F (default F0,
        i.e. the paper's linearised model), trained on the system's (centered or not) loss.
        ``population=False`` skips the exact population loss."""
        p = system.problem
        F0 = system.F0
        F = F0 if F is None else np.asarray(F, dtype=np.float64)
        z, eps, alpha = system.z, p.eps, p.alpha
        X, Xt = system.X, system.X_test
        with blas_threads(2.0 * Xt.shape[0] * X.shape[0] * (X.shape[1] + F.shape[1])):
            K = ntk_tilde(X, F, z, eps)
            K_test = ntk_tilde(Xt, F, z, eps, X)
        # g0 = ftilde at F:  f(F) - f(F0) if centered (system.f0 holds f(F0) then, else 0)
        g0 = predict(X @ F, z, alpha, eps) - system.f0
        g0_test = predict(Xt @ F, z, alpha, eps) - system.f0_test
        pop = None
        if population:
            wbar, M = F @ z, F @ F.T
            wref, Mref = reference(p.centered, system.wbar0, system.M0)
            v0 = alpha * (wbar - wref)
            tgt = getattr(system, "target", None)
            if tgt is None:
                Delta0 = (0.5 * alpha * eps) * (M - Mref) - p.tau * np.outer(system.beta, system.beta)
                pop = KernelExpansionLoss(X, wbar, M, eps, v0, Delta0)
            else:
                # y_{<=2} = (c0 - tr C2) + (sqrt(D) c1) . x + x^T (D C2) x  (x in A units)
                D = X.shape[1]
                v0 = v0 - math.sqrt(D) * tgt.c1
                Delta0 = (0.5 * alpha * eps) * (M - Mref) - D * tgt.C2
                pop = KernelExpansionLoss(X, wbar, M, eps, v0, Delta0,
                                          const=tgt.c0 - float(np.trace(tgt.C2)),
                                          irreducible=tgt.loss_constant)
        return cls(K, system.y, p.eta0 if eta0 is None else eta0, g0=g0, K_test=K_test,
                   y_test=system.y_test, g0_test=g0_test, rcond=rcond, population=pop,
                   system=system, F=F)

    @classmethod
    def from_problem(cls, problem: Problem, data: ProblemData | None = None,
                     **kw: Any) -> "LinearizedModel":
        """``from_system(ReducedSystem.build(problem, data), **kw)``."""
        return cls.from_system(ReducedSystem.build(problem, data), **kw)

    @classmethod
    def initial_infinite_width(cls, X: np.ndarray, beta: np.ndarray, eps: float, eta0: float,
                               tau: float = 0.5, rcond: float | None = None
                               ) -> "LinearizedModel":
        """The centered N = inf model linearised at initialisation, from arrays.

        Parameters
        ----------
        X : ndarray, shape (P, D)
            Training inputs in convention-A units.
        beta : ndarray, shape (D,)
            The teacher; labels y = tau (beta . x)^2 (no noise).
        eps, eta0 : float
            Network quadratic coefficient and width-free step.
        tau : float
            Teacher scale (0.5: y = (beta . x)^2 / 2).
        rcond : float, optional
            Null-mode cutoff (default P * machine epsilon).

        Returns
        -------
        LinearizedModel
            K = Ktilde0(X, X) (``kernels.ntk_tilde_infinite``), g0 = 0, the exact population
            loss; no test set.
        """
        X = np.asarray(X, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        y = tau * (X @ beta) ** 2
        pop = KernelExpansionLoss.initial_infinite_width(X, beta, eps, tau)
        return cls(ntk_tilde_infinite(X, eps), y, eta0, rcond=rcond, population=pop)

    # ------------------------------------------------------------------ properties
    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of Ktilde(X, X), descending."""
        return self.lam

    @property
    def max_step_factor(self) -> float:
        """c lambda_max; GD on the linearised model is stable iff < 2."""
        return self.c * max(float(self.lam[0]), 0.0)

    @property
    def stable(self) -> bool:
        """True when the linearised GD map is stable: eta0 lambda_max-step factor < 2."""
        return self.max_step_factor < 2.0

    # ------------------------------------------------------------------ time dependence
    def _times(self, t, method: str, whole_steps: bool = True) -> np.ndarray:
        if method not in METHODS:
            raise ProblemError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if t.ndim != 1:
            raise ProblemError("times must be a scalar or a 1-D array")
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ProblemError("times must be finite and >= 0")
        if method == "gd" and whole_steps and np.any(t != np.round(t)):
            raise ProblemError("GD times must be integers (numbers of steps)")
        return t

    def _modes(self, t: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
        """(d, phi), each (n_t, P): residual decay factors and phi_t(lambda) (0 on null modes,
        whose lambda is set to 0 so that d = 1 there)."""
        lam = self._lam_kept
        x = self.c * lam
        with np.errstate(over="ignore", invalid="ignore"):
            if method == "flow" or np.all(x < 1.0):
                e = np.multiply.outer(t, -x if method == "flow" else np.log1p(-x))
                d = np.exp(e)
                om = np.expm1(e, out=e)
                np.negative(om, out=om)
            else:                                   # some c lambda >= 1: signed powers
                pos = x < 1.0
                e = np.multiply.outer(t, np.log1p(-np.where(pos, x, 0.0)))
                d, om = np.exp(e), -np.expm1(e)
                dn = np.power((1.0 - x[~pos])[None, :], t[:, None])
                d[:, ~pos] = dn
                om[:, ~pos] = 1.0 - dn
        om *= self._inv_lam[None, :]
        return d, om

    def _test_parts(self):
        """Factorised test error: e(u) = e0 + B u, B = K_test V; |e|^2 = e_perp + |q0 + R u|^2."""
        if self._test_factor is None:
            n_test, rank = self.K_test.shape[0], int(self.keep.sum())
            with blas_threads(4.0 * n_test * self.P * rank):
                B = self.K_test @ self.V[:, self.keep]
                e0 = self.g0_test - self.y_test
                if B.shape[0] > B.shape[1]:
                    Qb, Rb = np.linalg.qr(B)
                    q0 = Qb.T @ e0
                    perp = float(np.sum((e0 - Qb @ q0) ** 2))
                    self._test_factor = (Rb, q0, perp)
                else:
                    self._test_factor = (B, e0, 0.0)
        return self._test_factor

    def _pop_parts(self):
        if self._pop_factor is None:
            self._pop_factor = self._population.project(self.V[:, self.keep])
        return self._pop_factor

    def _losses_from_u(self, u: np.ndarray, train_res2: np.ndarray, test: bool, population: bool):
        """u (n, rank): kernel-coefficient coordinates on kept modes (a = V_keep u)."""
        train = train_res2 / self.P
        te = pop = None
        if test and self.K_test is not None:
            R, q0, perp = self._test_parts()
            E = q0[None, :] + u @ R.T
            te = (perp + np.einsum("ij,ij->i", E, E)) / self.K_test.shape[0]
        if population and self._population is not None:
            pop = self._population.value(self._pop_parts(), u)
        return train, te, pop

    def curves(self, t, method: str = "gd", test: bool = True, population: bool = True, *,
               whole_steps: bool = True) -> LinearizedCurves:
        """Train, test and (exact) population losses of the linearised model at times ``t``
        (GD steps; integers for method="gd"), vectorised, no time stepping.

        ``whole_steps=False`` accepts non-integer GD times, read as the real power
        (1 - c lambda)^t (real while every c lambda < 1; the D -> inf references of
        ``theory.asymptotics`` read curves on log grids)."""
        t = self._times(t, method, whole_steps)
        n = t.size
        tr = np.empty(n)
        te = np.empty(n) if (test and self.K_test is not None) else None
        po = np.empty(n) if (population and self._population is not None) else None
        a_sq = self.a**2
        ak = self.a[self.keep]
        with blas_threads(2.0 * min(n, _CHUNK) * self.P * self.P):
            for s in range(0, n, _CHUNK):
                sl = slice(s, min(n, s + _CHUNK))
                d, phi = self._modes(t[sl], method)
                res2 = (d * d) @ a_sq
                u = phi[:, self.keep] * ak[None, :]
                a_, b_, c_ = self._losses_from_u(u, res2, te is not None, po is not None)
                tr[sl] = a_
                if te is not None:
                    te[sl] = b_
                if po is not None:
                    po[sl] = c_
        info = {"c": self.c, "rank": self.rank, "max_step_factor": self.max_step_factor,
                "stable": self.stable, "rcond": self.rcond}
        return LinearizedCurves(t=t, train_loss=tr, test_loss=te, population_loss=po,
                                method=method, info=info)

    def train_residuals(self, t, method: str = "gd") -> np.ndarray:
        """r(t) = ftilde_lin(X, t) - y, shape (n_t, P)."""
        t = self._times(t, method)
        d, _ = self._modes(t, method)
        return -(d * self.a[None, :]) @ self.V.T

    def coefficients(self, t, method: str = "gd") -> np.ndarray:
        """Kernel coefficients a(t) with ftilde_lin(x, t) = g0(x) + Ktilde(x, X) a(t), (n_t, P)."""
        t = self._times(t, method)
        _, phi = self._modes(t, method)
        return (phi * self.a[None, :]) @ self.V.T

    def predict(self, t, X: np.ndarray | None = None, method: str = "gd") -> np.ndarray:
        """ftilde_lin(x, t) on the test set (X=None) or on new inputs X (convention-A units;
        needs a model built by from_system), shape (n_t, n)."""
        A = self.coefficients(t, method)
        if X is None:
            if self.K_test is None:
                raise ProblemError("no test kernel; pass X")
            return self.g0_test[None, :] + A @ self.K_test.T
        Kx, g0x = self._kernel_at(X)
        return g0x[None, :] + A @ Kx.T

    def _kernel_at(self, X: np.ndarray):
        s = self._system
        if s is None:
            raise ProblemError("predict(X=...) needs a model built by from_system")
        p = s.problem
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        Kx = ntk_tilde(X, self._F, s.z, p.eps, s.X)
        g0x = predict(X @ self._F, s.z, p.alpha, p.eps)
        if p.centered:
            g0x = g0x - predict(X @ s.F0, s.z, p.alpha, p.eps)
        return Kx, g0x

    # ------------------------------------------------------------------ t -> inf, ridge
    def kernel_regression(self, ridge: float = 0.0) -> KernelRegressionResult:
        """Kernel (ridge) regression with this model's kernel around g0:
        ftilde = g0 + Ktilde(., X)(Ktilde + ridge I)^+ (y - g0).  ridge = 0 is the t -> inf limit
        of the linearised model (pseudo-inverse with the module's null-mode cutoff); ridge in
        units of Ktilde."""
        ridge = float(ridge)
        if not (ridge >= 0 and math.isfinite(ridge)):
            raise ProblemError(f"ridge must be finite and >= 0, got {ridge!r}")
        if ridge == 0:
            keep = self.keep
            lam = self.lam[keep]
            inv = 1.0 / lam
        else:
            keep = np.ones(self.P, dtype=bool)
            lam = np.clip(self.lam, 0.0, None)
            inv = 1.0 / (lam + ridge)
        Vk = self.V[:, keep]
        coef = Vk @ (inv * self.a[keep])
        # train residual in the eigenbasis: learned modes shrink by ridge/(lam+ridge)
        res_coef = -self.a.copy()
        res_coef[keep] = -self.a[keep] * (ridge * inv)
        train_mse = float(res_coef @ res_coef) / self.P
        train_pred = self.y + self.V @ res_coef
        test_pred = test_mse = pop = None
        if self.K_test is not None:
            test_pred = self.g0_test + self.K_test @ coef
            test_mse = float(np.mean((test_pred - self.y_test) ** 2))
        if self._population is not None:
            if ridge == 0:
                u = (inv * self.a[keep])[None, :]
                pop = float(self._losses_from_u(u, np.zeros(1), False, True)[2][0])
            else:
                pr = self._population.project(Vk)
                pop = float(self._population.value(pr, (inv * self.a[keep])[None, :])[0])
        return KernelRegressionResult(train_mse=train_mse, test_mse=test_mse,
                                      population_mse=pop, ridge=ridge,
                                      rank=int(keep.sum()), train_pred=train_pred,
                                      test_pred=test_pred)

    def limit(self) -> KernelRegressionResult:
        """t -> inf: ridgeless kernel regression (same for GD, if stable, and flow)."""
        return self.kernel_regression(0.0)


# ---------------------------------------------------------------------------- functions
def kernel_regression(K: np.ndarray, y: np.ndarray, K_test: np.ndarray | None = None,
                      y_test: np.ndarray | None = None, ridge: float = 0.0,
                      g0: np.ndarray | None = None, g0_test: np.ndarray | None = None,
                      rcond: float | None = None) -> KernelRegressionResult:
    """Kernel (ridge) regression from kernel matrices: predictions
    g0 + K(., X)(K + ridge I)^+ (y - g0) on train and (if K_test = K(X_test, X)) test points.
    Ridgeless: eigendecomposition pseudo-inverse, modes with lambda <= rcond lambda_max dropped
    (default rcond = P * machine epsilon).  population_mse is None here."""
    model = LinearizedModel(K, y, 1.0, g0=g0, K_test=K_test, y_test=y_test, g0_test=g0_test,
                            rcond=rcond)
    return model.kernel_regression(ridge)


def _as_system(obj: Any, data: ProblemData | None = None):
    if isinstance(obj, Problem):
        return ReducedSystem.build(obj, data)
    return obj


def k0_baseline(problem_or_system: Any, ridge: float = 0.0, data: ProblemData | None = None,
                rcond: float | None = None) -> KernelRegressionResult:
    """The paper's horizontal "K0 regression" baseline: kernel regression with the initial NTK
    Ktilde0 (exact N = inf kernel (x.x')[1 + eps^2 x.x'] when N = inf, the empirical one from W0
    otherwise).  Centered problem: regression of y (g0 = 0).
    Uncentered: f0 + K0(x, X) K0^+ (y - f0).
    Returns train/test MSE, the exact population MSE and the predictions."""
    system = _as_system(problem_or_system, data)
    return LinearizedModel.from_system(system, rcond=rcond).kernel_regression(ridge)


def linearized_curves(problem_or_system: Any, t, method: str = "gd",
                      data: ProblemData | None = None, population: bool = True) -> LinearizedCurves:
    """Train / test / population loss curves of the linearised model at times t (closed form)."""
    system = _as_system(problem_or_system, data)
    model = LinearizedModel.from_system(system, population=population)
    return model.curves(t, method, population=population)


# ------------------------------------------------------------------- wiring for `lazyrich solve`
def lazy_summary(problem: Problem, data: ProblemData | None = None,
                 system: Any | None = None) -> dict[str, float]:
    """K0-regression train/test MSE, ridgeless, and the linearised model's lazy peak
    (:func:`lazy_summary_of`) for ``problem`` (or an already built ``system``)."""
    system = ReducedSystem.build(problem, data) if system is None else system
    return lazy_summary_of(LinearizedModel.from_system(system, population=False))


def lazy_summary_of(model: LinearizedModel) -> dict[str, float]:
    """K0-regression train/test MSE, ridgeless, and the lazy peak of an already built
    linearised model: the argmax of its test loss on a log grid of 541 times in [1, 1e9]
    (GD when stable, else flow); no peak (argmax at t = 0) gives NaN."""
    k0 = model.kernel_regression(0.0)
    t = np.unique(np.concatenate([[0.0], np.round(np.logspace(0, 9, 541))]))
    method = "gd" if model.stable else "flow"
    test = model.curves(t, method, test=True, population=False).test_loss
    k = int(np.argmax(test))
    return {"kernel_regression_train_loss": float(k0.train_mse),
            "kernel_regression_test_loss": float(k0.test_mse),
            "linearized_peak_time": float(t[k]) if k > 0 else math.nan,
            "linearized_peak_test_loss": float(test[k])}


