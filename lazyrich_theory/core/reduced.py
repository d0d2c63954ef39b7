"""Exact width-free reduced dynamics (docs/theory.md §2–3).

Every neuron moves by one shared affine map, w_i(t) = U(t) w_i(0) + u(t).  We propagate the
rank-preserving factor F = [U u] Z in R^{D x r} of the statistics,

    M = F F^T,    wbar = F z,

with constant c (last row of Z) and z.  One GD step and the gradient flow (time in GD steps) are

    F <- F - (eta0/alpha) (eps G F + g c^T),      dF/dt = -(eta0/alpha) (eps G F + g c^T),

with residuals r_mu = ftilde(x_mu) - y_mu, g = (2/P) X^T r and G F = (2/P) X^T (r * X F).
This is the (wbar, M) GD map of docs/theory.md §2, exactly, for any N (N = inf included), and it
keeps rank(M) <= N to round-off by construction.

Training options (docs/theory.md §9): label noise only changes y; weight decay lambda adds
-eta0 lambda F to the increment (GD and flow); heavy-ball momentum mu (GD only) propagates
the stacked factor [F; F_v] of the joint second moments of (w_i, v_i):

    F_v <- mu F_v + Delta(F),   F <- F + F_v,   Delta(F) = -(eta0/alpha)(eps G F + g c^T) - eta0 lambda F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from numba import njit

from lazyrich_theory.core.kernels import ntk_tilde, stable_eta0_bound
from lazyrich_theory.core.richness import RICHNESS_COLUMNS, richness_observers
from lazyrich_theory.core.statistics import decomposition, diagnostics, predict
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.results.trajectory import CORE_COLUMNS
from lazyrich_theory.spec.data import ProblemData, data_target
from lazyrich_theory.spec.inits import init_measures, parse_init
from lazyrich_theory.spec.problem import Problem

__all__ = ["ReducedSystem", "initial_factor"]


def initial_factor(W0: np.ndarray | None, D: int, *, M0: np.ndarray | None = None,
                   rank_revealing: bool = False, rank_rtol: float = 1e-12
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F0, c, z) with F0 F0^T = M0, F0 z = wbar0, and the update F <- A F + b c^T.

    N <= D + 1: F0 = W0^T / sqrt(N), c = z = 1 / sqrt(N) (the network itself).
    N > D + 1:  thin QR of Y^T, Y = [W0^T; 1^T] / sqrt(N): Y = R^T Q^T, Z = R^T, F0 = Z[:D],
                c = Z[D], z = Q^T 1 / sqrt(N)  (r = D + 1 columns).
    N = inf:    F0 = [I_D | 0], c = z = e_{D+1}  (so F = [U u]).

    Structured initialisations (docs/init_structure.md §2.1):

    * ``M0`` (N = inf, ``W0`` None): a Gaussian neuron law with mean 0 and second moment M0
      (rank rho): F0 = [L | 0] with L L^T = M0, L = V sqrt(Lambda) over the eigenvalues above
      ``rank_rtol`` times the largest (exactly zero columns are dropped), c = z = e_{rho+1};
    * ``rank_revealing`` (finite N): the thin SVD Y = Q S V^T truncated at its numerical rank r
      (singular values above ``rank_rtol`` times the largest), Z = V S, z = Q^T 1 / sqrt(N): r =
      rank [W0 1] columns, so a rank-R init keeps rank(M) <= R + 1 exactly in floating point.

    Without these arguments the result is the package's factor, bit for bit.
    """
    if W0 is None:
        if M0 is not None:
            return _gaussian_factor(np.asarray(M0, dtype=np.float64), D, rank_rtol)
        F0 = np.zeros((D, D + 1))
        F0[:, :D] = np.eye(D)
        e = np.zeros(D + 1)
        e[D] = 1.0
        return F0, e, e.copy()
    N = W0.shape[0]
    s = 1.0 / math.sqrt(N)
    if N <= D + 1 and not rank_revealing:
        return np.ascontiguousarray(W0.T * s), np.full(N, s), np.full(N, s)
    Yt = np.empty((N, D + 1))
    Yt[:, :D] = W0 * s
    Yt[:, D] = s
    if rank_revealing:
        U, sv, Vt = np.linalg.svd(Yt, full_matrices=False)
        r = int(np.sum(sv > rank_rtol * sv[0]))
        Z = Vt[:r].T * sv[:r]
        return np.ascontiguousarray(Z[:D]), Z[D].copy(), U[:, :r].T @ np.full(N, s)
    Q, R = np.linalg.qr(Yt, mode="reduced")
    Z = R.T
    z = Q.T @ np.full(N, s)
    return np.ascontiguousarray(Z[:D]), Z[D].copy(), z


def _gaussian_factor(M0: np.ndarray, D: int, rank_rtol: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0 = [L | 0], c = z = e_last, L L^T = M0 with rank(M0) columns (N = inf, wbar0 = 0)."""
    if M0.shape != (D, D) or not np.all(np.isfinite(M0)):
        raise ProblemError(f"M0 must be a finite {D} x {D} matrix, got shape {M0.shape}")
    lam, V = np.linalg.eigh(0.5 * (M0 + M0.T))
    top = float(lam[-1]) if lam.size else 0.0
    if not top > 0 or lam[0] < -1e-10 * top:
        raise ProblemError("M0 must be positive semi-definite and nonzero")
    keep = lam > rank_rtol * top
    rho = int(keep.sum())
    F0 = np.zeros((D, rho + 1))
    F0[:, :rho] = V[:, keep] * np.sqrt(lam[keep])
    e = np.zeros(rho + 1)
    e[rho] = 1.0
    return F0, e, e.copy()


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
    #: extra recorded columns: name -> fn(system, F), evaluated at every save time after the
    #: core columns, in this order (kept by ``dataclasses.replace``)
    observers: dict[str, Callable[["ReducedSystem", np.ndarray], float]] = field(
        default_factory=dict)
    #: warm start of the spectral-radius Lanczos iteration (a cache, not copied by replace)
    _rho_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, problem: Problem, data: ProblemData | None = None,
              observers: Mapping[str, Callable[["ReducedSystem", np.ndarray], float]] | None = None,
              *, M0: np.ndarray | None = None, rank_revealing: bool | None = None
              ) -> "ReducedSystem":
        """The system for ``problem``.

        Parameters
        ----------
        problem : Problem
            What to train.
        data : ProblemData, optional
            Its data (default: ``problem.data()``).
        observers : mapping, optional
            Extra columns name -> fn(system, F), after the Monte-Carlo standard error of a
            user-function target (``population_loss_stderr``) if there is one, and after the
            richness columns ``weight_change`` and ``tangent_kernel_alignment`` (recorded for
            every run; an observer of the same name replaces one, and None drops it: the
            kernel alignment costs O(P^2 r) per save time).
        M0 : array (D, D), optional
            N = inf only: the second moment of a structured Gaussian init (mean 0); default
            the data's ``M0`` if it has one, else the identity (iid).
        rank_revealing : bool, optional
            Finite N: start from the rank-revealing SVD factor (``initial_factor``); default
            True for the low-rank init families (``lowrank``, ``aligned``) and for any W0 with
            rank [W0 1] < min(N, D + 1) numerically, else the package's factor (bit for bit).

        Returns
        -------
        ReducedSystem
            Inputs in convention-A units, initial factor F0 = [U u] Z with (c, z), and
            f0 = f(W0) on train and test.
        """
        data = problem.data() if data is None else data
        data.check(problem)
        s = problem.input_scale
        X, X_test = data.X * s, data.X_test * s
        F0, c, z = _factor_for(problem, data, M0, rank_revealing)
        wbar0, M0 = F0 @ z, F0 @ F0.T
        if problem.centered:
            f0 = predict(X @ F0, z, problem.alpha, problem.eps)
            f0_test = predict(X_test @ F0, z, problem.alpha, problem.eps)
        else:
            f0, f0_test = np.zeros(problem.P), np.zeros(problem.test_size)
        tgt = None if problem.target == "paper" else data_target(problem, data)
        cols: dict[str, Callable[["ReducedSystem", np.ndarray], float]] = {}
        if tgt is not None and not tgt.exact:
            # Monte-Carlo population loss: its standard error as the first extra column
            cols["population_loss_stderr"] = _population_stderr
        cols.update(richness_observers(RICHNESS_COLUMNS))
        for name, fn in (observers or {}).items():
            if name in CORE_COLUMNS or name == "t":
                raise ProblemError(f"observer name {name!r} clashes with a core column")
            if fn is None:
                cols.pop(name, None)
            else:
                cols[name] = fn
        return cls(problem, np.ascontiguousarray(X), data.y.astype(np.float64),
                   np.ascontiguousarray(X_test), data.y_test.astype(np.float64),
                   data.beta.astype(np.float64), F0, c, z, f0, f0_test, wbar0, M0, tgt, cols)

    def init_info(self) -> dict[str, Any]:
        """The init spec, its scale and measures (effective ranks, task overlap) of M0, for
        run.json (docs/init_structure.md §1.4)."""
        p = self.problem
        n = min(int(p.N), p.D) if p.finite_width else p.D
        info: dict[str, Any] = {"init": str(parse_init(getattr(p, "init", "iid"))),
                                "init_scale": float(getattr(p, "init_scale", 1.0)),
                                "factor_rank": int(self.F0.shape[1])}
        info.update(init_measures(self.M0, self.beta, finite=False, n=n))
        return info

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
            lam_k = _top_eigenvalue(K, self._rho_cache)
        else:
            # Ktilde = Phi Phi^T with Phi(x) = x (z + eps F^T x)^T (|z| = 1): matrix-free Lanczos
            # (scipy.sparse.linalg is imported here: it adds ~0.8 s to importing the package)
            from scipy.sparse.linalg import LinearOperator

            B = self.z[None, :] + p.eps * XF                      # (P, r)

            def mv(v):
                v = np.ravel(v)
                W = self.X.T @ (v[:, None] * B)                   # Phi^T v, (D, r)
                return np.einsum("ij,ij->i", self.X @ W, B)      # Phi Phi^T v

            op = LinearOperator((P, P), matvec=mv, dtype=np.float64)
            lam_k = _top_eigenvalue(op, self._rho_cache)
        G = (2.0 / P) * (self.X.T @ (r[:, None] * self.X))
        lam_g = float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (G + G.T)))))
        return 1.05 * (2.0 * p.eta0 / P * lam_k + p.eta0 * abs(p.eps) / p.alpha * lam_g
                       + p.eta0 * p.weight_decay)

    def eta0_bound(self, F: np.ndarray) -> float:
        """The largest stable eta0 at state F (Gauss-Newton bound P / lambda_max(Ktilde))."""
        return stable_eta0_bound(self.X, F, self.z, self.problem.eps)


def _factor_for(problem: Problem, data: ProblemData, M0: np.ndarray | None,
                rank_revealing: bool | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The initial factor of ``problem``: structured N = inf M0 (argument, else the data's),
    rank-revealing for low-rank finite-N inits, else the package's factor."""
    M0 = getattr(data, "M0", None) if M0 is None else M0
    if problem.finite_width:
        if M0 is not None:
            raise ProblemError("M0 gives an N = inf init; at finite N the init is W0")
        if rank_revealing is None:
            kind = parse_init(getattr(problem, "init", "iid")).kind
            rank_revealing = kind in ("lowrank", "aligned") or _rank_deficient(data.W0)
        return initial_factor(data.W0, problem.D, rank_revealing=rank_revealing)
    return initial_factor(None, problem.D, M0=M0)


def _rank_deficient(W0: np.ndarray, rtol: float = 1e-12) -> bool:
    """True when [W0 1] has fewer than min(N, D + 1) singular values above ``rtol`` times the
    largest (a low-rank W0, e.g. from a data file): its default factor would carry round-off
    columns that the rich phase can amplify (docs/init_structure.md §3.5)."""
    Y = np.empty((W0.shape[0], W0.shape[1] + 1))
    Y[:, :-1] = W0
    Y[:, -1] = 1.0
    sv = np.linalg.svd(Y, compute_uv=False)
    return bool(sv[-1] <= rtol * sv[0])


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


def _top_eigenvalue(K: np.ndarray, cache: dict) -> float:
    """Largest eigenvalue of the symmetric matrix K by Lanczos (scipy ``eigsh``), warm-started
    from the previous eigenvector in ``cache``; dense ``eigvalsh`` for small matrices."""
    n = K.shape[0]
    if n <= 64 and isinstance(K, np.ndarray):
        return float(np.linalg.eigvalsh(K)[-1])
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh   # lazily: see spectral_radius

    try:
        vals, vecs = eigsh(K, k=1, which="LA", v0=cache.get("v"), tol=1e-4, maxiter=200)
    except ArpackNoConvergence as exc:
        if not isinstance(K, np.ndarray):
            return float(np.max(exc.eigenvalues)) if len(exc.eigenvalues) else float(K.shape[0])
        return float(np.linalg.eigvalsh(K)[-1])
    cache["v"] = vecs[:, 0]
    return float(vals[0])
