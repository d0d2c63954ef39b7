"""Exact width-free reduced dynamics (docs/theory.md §2–3).

Every neuron moves by one shared affine map, w_i(t) = U(t) w_i(0) + u(t).  We propagate the
rank-preserving factor F = [U u] Z in R^{D x r} of the statistics,

    M = F F^T,    wbar = F z,

with constant c (last row of Z) and z.  One GD step and the gradient flow (time in GD steps) are

    F <- F - (eta0/alpha) (eps G F + g c^T),      dF/dt = -(eta0/alpha) (eps G F + g c^T),

with residuals r_mu = ftilde(x_mu) - y_mu, g = (2/P) X^T r and G F = (2/P) X^T (r * X F).
This is the (wbar, M) GD map of THEORY.md §2, exactly, for any N (N = inf included), and it
keeps rank(M) <= N to round-off by construction.

Training options (docs/theory.md §9): label noise only changes y; weight decay lambda adds
-eta0 lambda F to the increment (GD and flow); heavy-ball momentum mu (GD only) propagates
the stacked factor [F; F_v] of the joint second moments of (w_i, v_i):

    F_v <- mu F_v + Delta(F),   F <- F + F_v,   Delta(F) = -(eta0/alpha)(eps G F + g c^T) - eta0 lambda F.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
from numba import njit

from .integrators import IntegrationError, dopri5, rkc2
from .kernels import ntk_tilde, stable_eta0_bound
from .problem import Problem, ProblemData, ProblemError
from .schedule import save_times as make_save_times
from .statistics import decomposition, diagnostics, predict
from .trajectory import CORE_COLUMNS, Trajectory

__all__ = ["DivergenceError", "ReducedSystem", "initial_factor", "solve", "METHODS",
           "batch_indices", "iter_batch_indices", "online_samples", "iter_online_samples",
           "sgd_mode", "sgd_batch_size"]

METHODS = ("gd", "flow")
#: Integrators for method="flow": "rkc" (Runge–Kutta–Chebyshev, default: built for the stiff
#: lazy phase) and "dopri5" (Dormand–Prince 5(4), the high-accuracy reference).
INTEGRATORS = ("rkc", "dopri5")
#: Default tolerances per integrator (rtol, atol).
DEFAULT_TOLERANCES = {"rkc": (1e-4, 1e-8), "dopri5": (1e-7, 1e-10)}
#: A loss above this multiple of its initial value counts as a blow-up.
BLOWUP_FACTOR = 1e8


class DivergenceError(RuntimeError):
    """The dynamics diverged (NaN, overflow or loss blow-up).  The message names the step."""

    def __init__(self, message: str, step: float, eta0_bound: float | None = None):
        super().__init__(message)
        self.step = step
        self.eta0_bound = eta0_bound


def initial_factor(W0: np.ndarray | None, D: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F0, c, z) with F0 F0^T = M0, F0 z = wbar0, and the update F <- A F + b c^T.

    N <= D + 1: F0 = W0^T / sqrt(N), c = z = 1 / sqrt(N) (the network itself).
    N > D + 1:  thin QR of Y^T, Y = [W0^T; 1^T] / sqrt(N): Y = R^T Q^T, Z = R^T, F0 = Z[:D],
                c = Z[D], z = Q^T 1 / sqrt(N)  (r = D + 1 columns).
    N = inf:    F0 = [I_D | 0], c = z = e_{D+1}  (so F = [U u]).
    """
    if W0 is None:
        F0 = np.zeros((D, D + 1))
        F0[:, :D] = np.eye(D)
        e = np.zeros(D + 1)
        e[D] = 1.0
        return F0, e, e.copy()
    N = W0.shape[0]
    s = 1.0 / math.sqrt(N)
    if N <= D + 1:
        return np.ascontiguousarray(W0.T * s), np.full(N, s), np.full(N, s)
    Yt = np.empty((N, D + 1))
    Yt[:, :D] = W0 * s
    Yt[:, D] = s
    Q, R = np.linalg.qr(Yt, mode="reduced")
    Z = R.T
    z = Q.T @ np.full(N, s)
    return np.ascontiguousarray(Z[:D]), Z[D].copy(), z


@dataclass
class ReducedSystem:
    """Everything the reduced dynamics needs, in convention-A units."""

    problem: Problem
    X: np.ndarray        # (P, D) training inputs
    y: np.ndarray        # (P,)
    X_test: np.ndarray   # (T, D)
    y_test: np.ndarray   # (T,)
    beta: np.ndarray     # (D,)
    F0: np.ndarray       # (D, r)
    c: np.ndarray        # (r,)
    z: np.ndarray        # (r,)
    f0: np.ndarray       # (P,) f(x; W0) subtracted from f (zeros if uncentered)
    f0_test: np.ndarray  # (T,)
    wbar0: np.ndarray
    M0: np.ndarray
    #: the teacher (targets.Target) for non-paper targets; None = the paper target (the
    #: statistics.decomposition path, unchanged)
    target: Any = None

    @classmethod
    def build(cls, problem: Problem, data: ProblemData | None = None) -> "ReducedSystem":
        """The system for ``problem`` (its own data by default): inputs in convention-A
        units, initial factor F0 = [U u] Z with (c, z), and f0 = f(W0) on train and test."""
        data = problem.data() if data is None else data
        data.check(problem)
        s = problem.input_scale
        X, X_test = data.X * s, data.X_test * s
        F0, c, z = initial_factor(data.W0, problem.D)
        wbar0, M0 = F0 @ z, F0 @ F0.T
        if problem.centered:
            f0 = predict(X @ F0, z, problem.alpha, problem.eps)
            f0_test = predict(X_test @ F0, z, problem.alpha, problem.eps)
        else:
            f0, f0_test = np.zeros(problem.P), np.zeros(problem.test_size)
        tgt = None
        if problem.target != "paper":
            from .problem import data_target

            tgt = data_target(problem, data)
        system = cls(problem, np.ascontiguousarray(X), data.y.astype(np.float64),
                     np.ascontiguousarray(X_test), data.y_test.astype(np.float64),
                     data.beta.astype(np.float64), F0, c, z, f0, f0_test, wbar0, M0, tgt)
        if tgt is not None and not tgt.exact:
            # Monte-Carlo population loss: its standard error as an extra (last) column
            system.observers["population_loss_stderr"] = _population_stderr
        return system

    # --------------------------------------------------------------------------- dynamics
    def residuals(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(XF, r): XF = X F and r_mu = ftilde(x_mu) - y_mu on the training set."""
        p = self.problem
        XF = self.X @ F
        return XF, _residual(XF, self.z, p.alpha, p.eps, self.f0, self.y)

    def velocity(self, XF: np.ndarray, r: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """-(eta0/alpha)(eps G F + g c^T): the GD increment, and dF/dt of the flow; g and G
        from the rows of ``X`` (default: the training set; SGD passes its batch)."""
        p = self.problem
        X = self.X if X is None else X
        P = X.shape[0]
        R = _weight(XF, r, self.c, p.eps)     # r_mu (eps XF + c^T): X^T R = (P/2)(eps G F + g c^T)
        V = X.T @ R
        V *= -2.0 * p.eta0 / (p.alpha * P)
        return V

    def increment(self, F: np.ndarray, XF: np.ndarray, r: np.ndarray,
                  X: np.ndarray | None = None) -> np.ndarray:
        """The full GD increment Delta(F) = velocity - eta0 lambda F (weight decay lambda);
        exactly :meth:`velocity` when lambda = 0.  ``X``: as in :meth:`velocity`."""
        V = self.velocity(XF, r, X)
        decay = self.problem.eta0 * self.problem.weight_decay
        if decay != 0.0:
            V -= decay * F
        return V

    def rhs(self, t: float, F: np.ndarray) -> np.ndarray:
        """The flow dF/dt = Delta(F) (time in GD steps), for the integrators."""
        XF, r = self.residuals(F)
        return self.increment(F, XF, r)

    # --------------------------------------------------------------------------- records
    def record(self, F: np.ndarray, train_loss: float | None = None) -> list[float]:
        """Values of CORE_COLUMNS at state F."""
        p = self.problem
        if train_loss is None:
            _, r = self.residuals(F)
            train_loss = float(r @ r) / r.size
        rt = predict(self.X_test @ F, self.z, p.alpha, p.eps) - self.f0_test - self.y_test
        test_loss = float(rt @ rt) / rt.size
        wbar, M = F @ self.z, F @ F.T
        if p.centered:
            wref, Mref = self.wbar0, self.M0
        else:
            wref, Mref = np.zeros_like(wbar), np.zeros_like(M)
        if self.target is None:
            var, mis, lin = decomposition(wbar, M, wref, Mref, self.beta, p.alpha, p.eps, p.tau)
            diag = diagnostics(wbar, M, self.wbar0, self.M0, self.beta)
            pop = var + mis + lin
        else:
            # docs/targets.md: Hermite-degree split of the error, plus the irreducible power
            var, mis, lin = self.target.decomposition(wbar, M, wref, Mref, p.alpha, p.eps)
            pop = var + mis + lin + self.target.loss_constant
            direction = self.beta if self.target.direction is None else self.target.direction
            diag = diagnostics(wbar, M, self.wbar0, self.M0, direction)
        row = [train_loss, test_loss, pop, var, mis, lin, *diag]
        for fn in self.observers.values():
            row.append(float(fn(self, F)))
        return row

    @property
    def observers(self) -> dict:
        """Extra columns: name -> fn(system, F) evaluated at every save time."""
        return self.__dict__.setdefault("_observers", {})

    def width(self) -> int:
        """Number of recorded columns (core columns plus observers)."""
        return len(CORE_COLUMNS) + len(self.observers)

    def spectral_radius(self, F: np.ndarray) -> float:
        """Upper estimate of the spectral radius of the flow's Jacobian at F (per GD step).

        The Jacobian is a Gauss–Newton part, whose nonzero eigenvalues are those of
        (2 eta0 / P) Ktilde(X, X) (the function-space kernel), plus the curvature part
        -(eta0 eps / alpha) G acting on every column of F; so
        rho <= (2 eta0 / P) lambda_max(Ktilde) + (eta0 |eps| / alpha) ||G||_2.
        """
        p = self.problem
        P = self.X.shape[0]
        XF, r = self.residuals(F)
        if P <= 2000:
            K = ntk_tilde(self.X, F, self.z, p.eps)
            lam_k = _top_eigenvalue(K, self._rho_vectors)
        else:
            # Ktilde = Phi Phi^T with Phi(x) = x (z + eps F^T x)^T (|z| = 1): matrix-free Lanczos
            from scipy.sparse.linalg import LinearOperator

            B = self.z[None, :] + p.eps * XF                      # (P, r)

            def mv(v):
                v = np.ravel(v)
                W = self.X.T @ (v[:, None] * B)                   # Phi^T v, (D, r)
                return np.einsum("ij,ij->i", self.X @ W, B)      # Phi Phi^T v

            op = LinearOperator((P, P), matvec=mv, dtype=np.float64)
            lam_k = _top_eigenvalue(op, self._rho_vectors)
        G = (2.0 / P) * (self.X.T @ (r[:, None] * self.X))
        lam_g = float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (G + G.T)))))
        return 1.05 * (2.0 * p.eta0 / P * lam_k + p.eta0 * abs(p.eps) / p.alpha * lam_g
                       + p.eta0 * p.weight_decay)

    @property
    def _rho_vectors(self) -> dict:
        cache = self.__dict__.setdefault("_rho_cache", {})
        return cache

    def eta0_bound(self, F: np.ndarray) -> float:
        """The largest stable eta0 at state F (Gauss-Newton bound P / lambda_max(Ktilde))."""
        return stable_eta0_bound(self.X, F, self.z, self.problem.eps)


def _population_stderr(system: "ReducedSystem", F: np.ndarray) -> float:
    """Standard error of the Monte-Carlo population loss (user-function targets)."""
    p = system.problem
    wbar, M = F @ system.z, F @ F.T
    wref, Mref = ((system.wbar0, system.M0) if p.centered
                  else (np.zeros_like(wbar), np.zeros_like(M)))
    return system.target.population_loss_stderr(wbar, M, wref, Mref, p.alpha, p.eps)


@njit(cache=True)
def _residual(XF, z, alpha, eps, f0, y):
    """r_mu = alpha (XF z)_mu + (alpha eps / 2) |XF_mu|^2 - f0_mu - y_mu, fused over rows."""
    P, r = XF.shape
    out = np.empty(P)
    for i in range(P):
        lin = 0.0
        quad = 0.0
        for j in range(r):
            v = XF[i, j]
            lin += v * z[j]
            quad += v * v
        out[i] = alpha * lin + 0.5 * alpha * eps * quad - f0[i] - y[i]
    return out


@njit(cache=True)
def _weight(XF, res, c, eps):
    """R_{mu j} = r_mu (eps XF_{mu j} + c_j), fused."""
    P, r = XF.shape
    R = np.empty((P, r))
    for i in range(P):
        ri = res[i]
        for j in range(r):
            R[i, j] = ri * (eps * XF[i, j] + c[j])
    return R


#: Below this many flops per right-hand side the flow runs BLAS single-threaded: the products
#: are too small to amortise waking the BLAS threads between the interleaved Numba kernels
#: (measured on the Figure 1 setup, 2 cores: 1.9 s single-threaded vs 3.6 s threaded).
SINGLE_THREAD_FLOPS = 1e8


def _blas_threads_for(system: "ReducedSystem"):
    """Context limiting BLAS to one thread for small right-hand sides (see above)."""
    import contextlib

    P, D = system.X.shape
    r = system.F0.shape[1]
    if 4.0 * P * D * r >= SINGLE_THREAD_FLOPS:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; stay correct without it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _top_eigenvalue(K: np.ndarray, cache: dict) -> float:
    """Largest eigenvalue of the symmetric matrix K by Lanczos (scipy ``eigsh``), warm-started
    from the previous eigenvector in ``cache``; dense ``eigvalsh`` for small matrices."""
    n = K.shape[0]
    if n <= 64 and isinstance(K, np.ndarray):
        return float(np.linalg.eigvalsh(K)[-1])
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    try:
        vals, vecs = eigsh(K, k=1, which="LA", v0=cache.get("v"), tol=1e-4, maxiter=200)
    except ArpackNoConvergence as exc:
        if not isinstance(K, np.ndarray):
            return float(np.max(exc.eigenvalues)) if len(exc.eigenvalues) else float(K.shape[0])
        return float(np.linalg.eigvalsh(K)[-1])
    cache["v"] = vecs[:, 0]
    return float(vals[0])


def _divergence(system: ReducedSystem, step: float, what: str, F_healthy: np.ndarray) -> DivergenceError:
    """The error for a blow-up at ``step``; the bound is the smaller of the Gauss-Newton bounds
    at initialisation and at the last healthy state (loss at most twice its initial value)."""
    p = system.problem
    bound = system.eta0_bound(system.F0)
    if F_healthy is not system.F0 and np.all(np.isfinite(F_healthy)):
        try:
            bound = min(bound, system.eta0_bound(F_healthy))
        except np.linalg.LinAlgError:
            pass
    mode = sgd_mode(p)
    if mode is None:
        msg = (f"dynamics diverged at step {step:g} ({what}); eta0={p.eta0:g} but GD is stable "
               f"only for eta0 < {bound:.4g} (Gauss-Newton bound P/lambda_max(Ktilde))")
    else:
        msg = (f"dynamics diverged at step {step:g} ({what}); eta0={p.eta0:g}: {mode} SGD with "
               f"batch size {sgd_batch_size(p)} needs eta0 below the full-batch GD bound "
               f"{bound:.4g} (P/lambda_max(Ktilde)) and, for small batches, well below it")
    return DivergenceError(msg, step, bound)


def _progress_bar(total: float, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="step", unit_scale=True, leave=False,
                disable=None, mininterval=0.5)


# --------------------------------------------------------------------------- SGD (docs/sgd.md)
#: Children of ``SeedSequence(seed).spawn(7)`` used by SGD; 0-4 are X, X_test, beta, W0 and
#: the label noise (``spawn(7)[:5]`` are the children of ``spawn(5)``, so nothing else moves).
MINIBATCH_STREAM = 5
ONLINE_STREAM = 6


def sgd_mode(problem: Problem) -> str | None:
    """The SGD mode: 'online' (``problem.online``), 'minibatch' (``batch_size`` < P) or None
    (full-batch GD, also when ``batch_size`` >= P)."""
    if problem.online:
        return "online"
    if problem.batch_size is not None and problem.batch_size < problem.P:
        return "minibatch"
    return None


def is_plain_gd(problem: Problem) -> bool:
    """True for full-batch GD without weight decay or momentum (label noise and the target
    only change the labels): the dynamics the linearised theory describes."""
    return problem.weight_decay == 0.0 and problem.momentum == 0.0 and sgd_mode(problem) is None


def sgd_batch_size(problem: Problem) -> int:
    """Samples per step: ``batch_size``, or P when it is None (online) / full batch."""
    B = problem.P if problem.batch_size is None else problem.batch_size
    return B if problem.online else min(B, problem.P)


def _sgd_rng(problem: Problem, child: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(problem.seed).spawn(7)[child])


def iter_batch_indices(problem: Problem) -> Iterable[np.ndarray]:
    """Endless minibatch index sequence (docs/sgd.md): for each epoch e = 0, 1, ... draw
    perm_e = rng.permutation(P) from ``SeedSequence(seed).spawn(7)[5]`` and yield its
    P // B consecutive slices perm_e[j B:(j + 1) B] (the last P mod B indices of each epoch
    are skipped, so every batch has exactly B points).  Step t uses the t-th batch."""
    P, B = problem.P, sgd_batch_size(problem)
    rng = _sgd_rng(problem, MINIBATCH_STREAM)
    nb = P // B
    while True:
        perm = rng.permutation(P)
        for j in range(nb):
            yield perm[j * B:(j + 1) * B]


def batch_indices(problem: Problem, steps: int) -> np.ndarray:
    """The first ``steps`` minibatches of :func:`iter_batch_indices`, shape (steps, B)."""
    if sgd_mode(problem) != "minibatch":
        raise ProblemError("batch_indices needs 1 <= batch_size < P and online=False")
    it = iter_batch_indices(problem)
    return np.array([next(it) for _ in range(int(steps))], dtype=np.int64).reshape(int(steps), -1)


def iter_online_samples(problem: Problem, data: ProblemData) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Endless fresh-sample sequence of online SGD (docs/sgd.md): from one generator on
    ``SeedSequence(seed).spawn(7)[6]``, step t draws X_t = standard_normal((B, D)) * s
    (s = 1/sqrt(D) in convention A, 1 in B: the stored units of ``ProblemData.sample``), then,
    if noise > 0, xi_t = standard_normal(B); it yields (X_t, labels(X_t) + noise * xi_t)."""
    from .problem import labels

    B, D = sgd_batch_size(problem), problem.D
    xs = 1.0 / math.sqrt(D) if problem.convention == "A" else 1.0
    rng = _sgd_rng(problem, ONLINE_STREAM)
    while True:
        Xt = rng.standard_normal((B, D)) * xs
        yt = np.asarray(labels(problem, data, Xt), dtype=np.float64)
        if problem.noise > 0.0:
            yt = yt + problem.noise * rng.standard_normal(B)
        yield Xt, yt


def online_samples(problem: Problem, steps: int, data: ProblemData | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``steps`` online batches: inputs (steps, B, D) in stored units, labels (steps, B)."""
    data = problem.data() if data is None else data
    it = iter_online_samples(problem, data)
    pairs = [next(it) for _ in range(int(steps))]
    B, D = sgd_batch_size(problem), problem.D
    X = np.array([x for x, _ in pairs]).reshape(int(steps), B, D)
    y = np.array([v for _, v in pairs]).reshape(int(steps), B)
    return X, y


def _step(F: np.ndarray, Fv: np.ndarray | None, V: np.ndarray, mu: float):
    """One update with increment V: F + V, or heavy ball F_v <- mu F_v + V, F <- F + F_v."""
    if Fv is None:
        return F + V, None
    Fv = mu * Fv + V
    return F + Fv, Fv


def _run_sgd(system: ReducedSystem, times: np.ndarray, progress: bool,
             data: ProblemData | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact minibatch / online SGD on the factor; returns (rows at save times, final F).

    Step t takes its batch (X_b, y_b, f0_b) of B points (minibatch: rows of the training set;
    online: fresh samples) and applies, with r = ftilde(X_b) - y_b,
        Delta(F) = -(2 eta0 / (alpha B)) X_b^T [r * (eps X_b F + c^T)] - eta0 lambda F,
        F <- F + Delta(F)   or, with momentum mu,   F_v <- mu F_v + Delta(F), F <- F + F_v.
    Saved train_loss: the full training loss (minibatch) or the loss of the state at t on
    step t's fresh batch (online).  Blow-up is checked every step on the batch loss.
    """
    p = system.problem
    mode = sgd_mode(p)
    B = sgd_batch_size(p)
    mu = p.momentum
    z = system.z
    if mode == "minibatch":
        it_idx = iter_batch_indices(p)

        def next_batch():
            idx = next(it_idx)
            return system.X[idx], system.y[idx], system.f0[idx]
    else:
        it_xy = iter_online_samples(p, p.data() if data is None else data)
        s = p.input_scale
        zeros = np.zeros(B)

        def next_batch():
            Xr, yb = next(it_xy)
            Xb = Xr * s if s != 1.0 else Xr
            f0b = predict(Xb @ system.F0, z, p.alpha, p.eps) if p.centered else zeros
            return Xb, yb, f0b
    F = system.F0.copy()
    Fv = np.zeros_like(F) if mu > 0.0 else None
    steps = int(times[-1])
    rows = np.empty((times.size, system.width()))
    k = 0
    bar = _progress_bar(steps, progress, mode)
    loss0 = full0 = None
    F_healthy = F
    for t in range(steps + 1):
        Xb, yb, f0b = next_batch()
        XF = Xb @ F
        r = _residual(XF, z, p.alpha, p.eps, f0b, yb)
        loss = float(r @ r) / B
        if loss0 is None:
            loss0 = loss
        if not math.isfinite(loss) or loss > BLOWUP_FACTOR * loss0 + 1e-300:
            what = "non-finite loss" if not math.isfinite(loss) else f"batch loss {loss:.3g}"
            raise _divergence(system, t, what, F_healthy)
        if loss <= 2.0 * loss0:
            F_healthy = F
        if t == times[k]:
            row = system.record(F, train_loss=loss if mode == "online" else None)
            if full0 is None:
                full0 = row[0]
            if not math.isfinite(row[0]) or row[0] > BLOWUP_FACTOR * full0 + 1e-300:
                raise _divergence(system, t, f"train loss {row[0]:.3g}", F_healthy)
            rows[k] = row
            k += 1
        if t == steps:
            break
        F, Fv = _step(F, Fv, system.increment(F, XF, r, Xb), mu)
        if bar is not None and (t & 255) == 0:
            bar.update(min(256, steps - bar.n))
    if bar is not None:
        bar.close()
    return rows, F


def _run_gd(system: ReducedSystem, times: np.ndarray, progress: bool,
            heavy_ball: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact discrete GD; returns (rows at save times, final F).

    ``heavy_ball`` (default: momentum > 0) also propagates the velocity factor F_v (starting
    at 0): F_v <- mu F_v + Delta(F), F <- F + F_v.  With mu = 0 this is plain GD bit for bit.
    """
    mu = system.problem.momentum
    if heavy_ball is None:
        heavy_ball = mu > 0.0
    F = system.F0.copy()
    Fv = np.zeros_like(F) if heavy_ball else None
    steps = int(times[-1])
    rows = np.empty((times.size, system.width()))
    k = 0
    bar = _progress_bar(steps, progress, "gd")
    loss0 = None
    F_healthy = F
    for t in range(steps + 1):
        XF, r = system.residuals(F)
        loss = float(r @ r) / r.size
        if loss0 is None:
            loss0 = loss
        if not math.isfinite(loss) or loss > BLOWUP_FACTOR * loss0 + 1e-300:
            what = "non-finite loss" if not math.isfinite(loss) else f"train loss {loss:.3g}"
            raise _divergence(system, t, what, F_healthy)
        if loss <= 2.0 * loss0:
            F_healthy = F
        if t == times[k]:
            rows[k] = system.record(F, train_loss=loss)
            k += 1
        if t == steps:
            break
        F, Fv = _step(F, Fv, system.increment(F, XF, r), mu)
        if bar is not None and (t & 255) == 0:
            bar.update(min(256, steps - bar.n))
    if bar is not None:
        bar.close()
    return rows, F


def _run_flow(system: ReducedSystem, times: np.ndarray, integrator: str, rtol: float,
              atol: float, progress: bool) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    rows = np.empty((times.size, system.width()))
    state: dict[str, Any] = {"F": system.F0, "loss0": None}  # F: last healthy saved state

    def on_save(k: int, t: float, F: np.ndarray) -> None:
        row = system.record(F)
        if state["loss0"] is None:
            state["loss0"] = row[0]
        if not all(math.isfinite(v) for v in row) or row[0] > BLOWUP_FACTOR * state["loss0"] + 1e-300:
            raise _divergence(system, t, "non-finite or exploding loss", state["F"])
        rows[k] = row
        state["final"] = F
        if row[0] <= 2.0 * state["loss0"]:
            state["F"] = F

    bar = _progress_bar(float(times[-1]), progress, "flow")
    try:
        update = None if bar is None else bar.update
        if integrator == "rkc":
            stats = rkc2(system.rhs, system.F0, times.astype(np.float64), on_save, rtol=rtol,
                         atol=atol, spectral_radius=lambda t, F: system.spectral_radius(F),
                         progress=update)
        else:
            stats = dopri5(system.rhs, system.F0, times.astype(np.float64), on_save, rtol=rtol,
                           atol=atol, progress=update)
    except IntegrationError as exc:
        raise DivergenceError(f"gradient flow failed: {exc}", float("nan")) from None
    finally:
        if bar is not None:
            bar.close()
    return rows, state["final"], {"n_rhs": stats.n_rhs, "n_accepted": stats.n_accepted,
                                  "n_rejected": stats.n_rejected, "n_rho": stats.n_rho,
                                  "max_stages": stats.max_stages}


def solve(problem: Problem, steps: int, method: str = "gd",
          save_times: Iterable[int] | np.ndarray | None = None, data: ProblemData | None = None,
          integrator: str = "rkc", rtol: float | None = None, atol: float | None = None,
          progress: bool = False,
          observers: dict[str, Callable[["ReducedSystem", np.ndarray], float]] | None = None
          ) -> Trajectory:
    """Solve the reduced dynamics of ``problem`` up to ``steps`` GD steps.

    method "gd":   the exact discrete GD map (equal to training the network, any N).
    method "flow": the gradient flow dF/dt = -(eta0/alpha)(eps G F + g c^T), time in GD
                   steps, by an adaptive ``integrator``: "rkc" (Runge–Kutta–Chebyshev,
                   default rtol 1e-4) or "dopri5" (Dormand–Prince 5(4), default rtol 1e-7).
    The problem's training options apply (docs/theory.md §9): ``noise`` via its labels,
    ``weight_decay`` lambda adds -eta0 lambda F to the GD increment and to dF/dt, and
    ``momentum`` mu (method "gd" only) runs the heavy-ball map on the stacked factor [F; F_v].
    ``batch_size`` B < P runs minibatch SGD and ``online`` online SGD (method "gd" only; exact
    for the seeded sample sequence, docs/sgd.md); their train_loss column is the full training
    loss (minibatch) or the loss on the current fresh batch (online).
    Save times are the default log-spaced grid up to ``steps`` plus exactly ``save_times``.
    ``observers`` adds columns: name -> fn(system, F), evaluated on the state at each save time.
    """
    if method not in METHODS:
        raise ProblemError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "flow" and problem.momentum > 0:
        raise ProblemError("momentum needs method 'gd' (heavy ball has no gradient-flow limit here)")
    mode = sgd_mode(problem)
    if method == "flow" and mode is not None:
        raise ProblemError(f"{mode} SGD needs method 'gd' (a sampled batch sequence has no "
                           "gradient-flow limit in this solver)")
    if integrator not in INTEGRATORS:
        raise ProblemError(f"integrator must be one of {', '.join(INTEGRATORS)}, got {integrator!r}")
    d_rtol, d_atol = DEFAULT_TOLERANCES[integrator]
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)
    if not (rtol > 0 and atol >= 0):
        raise ProblemError(f"need rtol > 0 and atol >= 0, got rtol={rtol:g}, atol={atol:g}")
    times = make_save_times(steps, extra=save_times)
    t0 = time.perf_counter()
    if mode == "online" and data is None:
        data = problem.data()      # online SGD also needs beta (the teacher) for fresh labels
    system = ReducedSystem.build(problem, data)
    for name, fn in (observers or {}).items():
        if name in CORE_COLUMNS or name == "t":
            raise ProblemError(f"observer name {name!r} clashes with a core column")
        system.observers[name] = fn
    info: dict[str, Any] = {"steps": int(steps), "rank": int(system.F0.shape[1])}
    if system.target is not None:
        info["target"] = system.target.info()
    if method == "gd" and mode is not None:
        rows, F = _run_sgd(system, times, progress, data)
        info.update(sgd=mode, batch_size=sgd_batch_size(problem))
    elif method == "gd":
        rows, F = _run_gd(system, times, progress)
    else:
        with _blas_threads_for(system):
            rows, F, stats = _run_flow(system, times, integrator, rtol, atol, progress)
        info.update(stats, integrator=integrator, rtol=rtol, atol=atol)
    info["wall_time"] = time.perf_counter() - t0
    cols = {name: rows[:, j].copy() for j, name in enumerate(CORE_COLUMNS)}
    extra = {name: rows[:, len(CORE_COLUMNS) + j].copy()
             for j, name in enumerate(system.observers)}
    return Trajectory(problem=problem, method=method, t=times.astype(np.float64), **cols, extra=extra,
                      info=info, final_state={"F": F, "c": system.c, "z": system.z,
                                              "wbar": F @ system.z, "M": F @ F.T})
