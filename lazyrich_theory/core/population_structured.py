"""Population (online, P -> infinity) flow from a structured initialisation
(docs/init_structure.md §3).

From any neuron law with mean wbar0 and second moment M0 (a structured N = inf covariance, or
a finite-N W0's statistics) the population flow stays on

    M = sum_j m_j Pi_j + E A E^T,     wbar = E omega,

where E (D x k) spans the smallest M0-invariant subspace K containing betahat and wbar0 (made of
eigenvectors of M0) and Pi_j projects on the part of M0's j-th eigenspace orthogonal to K.  It
is integrated in factor form (rank exact: zero eigenvalues stay exactly zero)

    F = [f_j B_j, E L, E u],   df_j/dt = -(eta0 eps/alpha) gamma_j f_j,
    dL/dt = -(eta0 eps/alpha) G_K L,   du/dt = -(eta0/alpha)(eps G_K u + g_K),

with gamma_j = 2(tr Delta + 2 delta_j)/D^2, G_K = 2(tr Delta I + 2 Delta_K)/D^2,
g_K = 2 alpha (u - u_ref)/D, delta_j = (alpha eps/2)(f_j^2 - s lambda_j),
Delta_K = (alpha eps/2)(L L^T + u u^T - s Lambda_K) - tau |beta|^2 b b^T, b = E^T betahat,
s = 1 centered (0 uncentered); weight decay lambda adds -eta0 lambda to every rate.
``isotropic + low rank + spike`` inits need 1 + (R + 1)^2 numbers; ``lowrank:R`` and
``aligned:R:C`` at N = inf three; ``iid`` the package's 2-scalar ODE.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from lazyrich_theory.core.dopri5 import dopri5
from lazyrich_theory.errors import DivergenceError, IntegrationError, ProblemError
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.inits import init_measures
from lazyrich_theory.spec.problem import (
    Problem,
    option_why_not,
    options_in_use,
    options_supporting,
)
from lazyrich_theory.spec.schedule import save_times as make_save_times

__all__ = ["structured_basis", "StructuredPopulation", "population_structured",
           "centered_plateau", "is_structured"]

#: Eigenvalues of M0 within this fraction of the largest form one eigenspace.
CLUSTER_RTOL = 1e-9
#: Eigenvalues below this fraction of the largest are exact zeros (they stay zero in the flow).
ZERO_RTOL = 1e-12


def structured_basis(M0: np.ndarray, vectors: Iterable[np.ndarray], tol: float = CLUSTER_RTOL
                     ) -> tuple[np.ndarray, np.ndarray, list[tuple[float, int]]]:
    """The split of R^D for the structured flow.

    Parameters
    ----------
    M0 : array (D, D)
        Symmetric positive semi-definite.
    vectors : iterable of arrays (D,)
        betahat, and wbar0 if nonzero.
    tol : float
        Eigenvalues within ``tol`` times the largest |eigenvalue| form one eigenspace.

    Returns
    -------
    (E, lamK, complement)
        E (D x k): orthonormal eigenvectors of M0 spanning K = sum_j P_j span(vectors);
        lamK (k,): their eigenvalues; complement: [(lambda_j, d_j')] for the eigenspaces' parts
        orthogonal to K of dimension d_j' > 0.
    """
    D = M0.shape[0]
    lam, V = np.linalg.eigh(0.5 * (M0 + M0.T))
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    Vs = np.stack(list(vectors), axis=1)
    vtol = 1e-10 * max(1.0, float(np.max(np.abs(Vs))))
    E_cols, lamK, comp = [], [], []
    start = 0
    for i in range(1, D + 1):
        if i < D and lam[i] - lam[i - 1] <= tol * scale:
            continue
        lj, Vj = float(np.mean(lam[start:i])), V[:, start:i]
        u, sv, _ = np.linalg.svd(Vj.T @ Vs, full_matrices=False)
        kj = int(np.sum(sv > vtol))
        if kj:
            E_cols.append(Vj @ u[:, :kj])
            lamK += [lj] * kj
        if Vj.shape[1] > kj:
            comp.append((lj, Vj.shape[1] - kj))
        start = i
    return np.concatenate(E_cols, axis=1), np.array(lamK), comp


@dataclass
class StructuredPopulation:
    """The structured population flow of one init (time in GD steps).

    Parameters
    ----------
    M0 : array (D, D)
        Second moment of the initial neurons.
    beta : array (D,)
        Teacher direction (y = tau (beta . x)^2, convention-A units).
    alpha, eps, eta0, tau : float
    centered : bool
    wbar0 : array (D,), optional
        Mean of the initial neurons (default 0: N = inf).
    weight_decay : float
    """

    M0: np.ndarray
    beta: np.ndarray
    alpha: float = 1.0
    eps: float = 0.1
    eta0: float = 1.0
    tau: float = 0.5
    centered: bool = True
    wbar0: np.ndarray | None = None
    weight_decay: float = 0.0
    k: int = field(init=False)

    def __post_init__(self) -> None:
        self.M0 = 0.5 * (self.M0 + self.M0.T)
        D = self.D = self.M0.shape[0]
        w0 = np.zeros(D) if self.wbar0 is None else np.asarray(self.wbar0, dtype=np.float64)
        bhat = self.beta / np.linalg.norm(self.beta)
        big = max(float(np.max(np.abs(self.M0))), 1e-300)
        vecs = [bhat] + ([w0] if np.linalg.norm(w0) > 1e-14 * math.sqrt(big) else [])
        self.E, self.lamK, comp = structured_basis(self.M0, vecs)
        self.k = self.E.shape[1]
        lam_c = np.array([c[0] for c in comp])
        d_c = np.array([c[1] for c in comp], dtype=np.float64)
        # zero eigenvalues stay exactly zero (df/dt is proportional to f): drop them, so that
        # round-off never seeds a column outside range(M0) (docs/init_structure.md §3.5)
        keep = lam_c > ZERO_RTOL * max(1.0, float(np.max(np.abs(self.lamK))), big)
        self.comp_lam, self.comp_d = lam_c[keep], d_c[keep]
        self.b = self.E.T @ bhat
        self.beta2 = float(self.beta @ self.beta)
        self.A0 = np.diag(self.lamK)
        self.u0 = self.E.T @ w0
        lam, V = np.linalg.eigh(self.A0 - np.outer(self.u0, self.u0))
        lam[lam <= ZERO_RTOL * max(float(np.max(np.abs(lam))), 1e-300)] = 0.0
        self.L0 = V * np.sqrt(lam)
        self.f0 = np.sqrt(self.comp_lam)
        self.s = 1.0 if self.centered else 0.0
        self.uref = self.u0 if self.centered else np.zeros(self.k)
        self.trace_M0 = float(self.comp_d @ self.comp_lam + self.lamK.sum())

    # ------------------------------------------------------------------ state
    @property
    def n_state(self) -> int:
        """Number of integrated numbers (J' + k^2 + k)."""
        return self.f0.size + self.k * self.k + self.k

    def unpack(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(f, L, u) from the flat state."""
        J, k = self.f0.size, self.k
        return y[:J], y[J:J + k * k].reshape(k, k), y[J + k * k:]

    def y0(self) -> np.ndarray:
        """The initial flat state."""
        return np.concatenate([self.f0, self.L0.ravel(), self.u0])

    def _delta(self, f, L, u):
        ae2 = 0.5 * self.alpha * self.eps
        dj = ae2 * (f * f - self.s * self.comp_lam)
        AK = L @ L.T + np.outer(u, u)
        DK = ae2 * (AK - self.s * self.A0) - self.tau * self.beta2 * np.outer(self.b, self.b)
        return dj, DK, float(self.comp_d @ dj + np.trace(DK))

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """d(f, L, u)/dt, flat."""
        f, L, u = self.unpack(y)
        D2 = float(self.D) ** 2
        dj, DK, tr = self._delta(f, L, u)
        gam = (2.0 / D2) * (tr + 2.0 * dj)
        GK = (2.0 / D2) * (tr * np.eye(self.k) + 2.0 * DK)
        gK = (2.0 * self.alpha / self.D) * (u - self.uref)
        c, decay = self.eta0 / self.alpha, self.eta0 * self.weight_decay
        return np.concatenate([-c * self.eps * gam * f - decay * f,
                               (-c * self.eps * (GK @ L) - decay * L).ravel(),
                               -c * (self.eps * (GK @ u) + gK) - decay * u])

    # ------------------------------------------------------------------ observables
    def loss_terms(self, y: np.ndarray) -> tuple[float, float, float]:
        """(variance, misalignment, linear_power) of the population loss."""
        f, L, u = self.unpack(y)
        D2 = float(self.D) ** 2
        dj, DK, tr = self._delta(f, L, u)
        v = self.alpha * (u - self.uref)
        sq = float(self.comp_d @ (dj * dj) + np.sum(DK * DK))
        return tr * tr / D2, 2.0 * sq / D2, float(v @ v) / self.D

    def loss(self, y: np.ndarray) -> float:
        """The population loss."""
        return sum(self.loss_terms(y))

    def diagnostics(self, y: np.ndarray) -> tuple[float, float, float, float]:
        """(alignment, trace_dM, frob_dM, norm_dwbar) relative to the initial statistics."""
        f, L, u = self.unpack(y)
        dm = f * f - self.comp_lam
        dA = L @ L.T + np.outer(u, u) - self.A0
        return (float(self.b @ dA @ self.b),
                float(self.comp_d @ dm + np.trace(dA)) / self.D,
                math.sqrt(float(self.comp_d @ (dm * dm) + np.sum(dA * dA))),
                float(np.linalg.norm(u - self.u0)))

    def weight_change(self, y: np.ndarray) -> float:
        """||W(t) - W0||_F / ||W0||_F (rms neuron displacement over rms initial norm)."""
        f, L, u = self.unpack(y)
        num = float(self.comp_d @ (f - self.f0) ** 2 + np.sum((L - self.L0) ** 2)
                    + np.sum((u - self.u0) ** 2))
        return math.sqrt(num / self.trace_M0)

    def statistics(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(wbar, M) in R^D (for checks; O(D^3))."""
        f, L, u = self.unpack(y)
        M = self.E @ (L @ L.T + np.outer(u, u)) @ self.E.T
        if self.comp_lam.size:
            lam, V = np.linalg.eigh(self.M0)
            PK = self.E @ self.E.T
            big = max(float(np.max(np.abs(lam))), 1e-300)
            for lj, fj in zip(self.comp_lam, f):
                Vj = V[:, np.abs(lam - lj) <= CLUSTER_RTOL * big]
                Vj = Vj - PK @ Vj
                M += fj * fj * (Vj @ np.linalg.pinv(Vj))
        return self.E @ u, M


def is_structured(problem: Problem, data: ProblemData) -> bool:
    """Whether ``population`` should run the structured flow: an N = inf init with its own M0
    (the data's ``M0``), or a non-iid init family (``Problem.init``) at any width."""
    if not problem.finite_width and getattr(data, "M0", None) is not None:
        return True
    return str(getattr(problem, "init", "iid")).split(":")[0].strip().lower() != "iid"


def _statistics_of(problem: Problem, data: ProblemData, M0: np.ndarray | None):
    """(wbar0, M0) of the problem's init: finite N from W0, N = inf from ``M0`` (argument, else
    the data's, else the identity)."""
    D = problem.D
    if problem.finite_width:
        if M0 is not None:
            raise ProblemError("M0 gives an N = inf init; at finite N the init is W0")
        W0 = np.asarray(data.W0, dtype=np.float64)
        return W0.mean(axis=0), W0.T @ W0 / W0.shape[0]
    M0 = getattr(data, "M0", None) if M0 is None else M0
    M0 = np.eye(D) if M0 is None else np.asarray(M0, dtype=np.float64)
    if M0.shape != (D, D):
        raise ProblemError(f"M0 has shape {M0.shape}, expected ({D}, {D})")
    return np.zeros(D), M0


def population_structured(problem: Problem, steps: int, *,
                          save_times: Iterable[int] | np.ndarray | None = None,
                          data: ProblemData | None = None, M0: np.ndarray | None = None,
                          rtol: float = 1e-9, atol: float = 1e-12) -> Trajectory:
    """The online flow of ``problem`` from its (structured) init, in the reduced coordinates.

    Parameters
    ----------
    problem : Problem
        Paper target, no training option whose ``spec.problem.TRAINING_OPTIONS`` entry lacks
        "population" (momentum; label noise only shifts the train loss by sigma^2).
    steps : int
        Last time, in GD steps.
    save_times : iterable of int, optional
        Extra save times added to the default log-spaced grid.
    data : ProblemData, optional
        beta, and W0 at finite N; default the problem's own.
    M0 : array (D, D), optional
        N = inf: the neuron second moment (default the data's M0, else I).
    rtol, atol : float
        Dormand–Prince tolerances.

    Returns
    -------
    Trajectory
        method "population"; the core columns, ``weight_change`` as an extra column; info
        holds population_method "structured", the state size, the work counters and the init
        (spec, scale, effective ranks and task overlap of M0).
    """
    bad = [f"{n}={v:g} ({option_why_not(n, 'population')})"
           for n, v in options_in_use(problem).items() if n not in options_supporting("population")]
    if problem.target != "paper":
        bad.insert(0, f"target={problem.target!r} (the population ODE is for the paper target only)")
    if bad:
        raise ProblemError("the structured population flow does not support " + "; ".join(bad))
    if not (rtol > 0 and atol >= 0):
        raise ProblemError(f"need rtol > 0 and atol >= 0, got rtol={rtol:g}, atol={atol:g}")
    times = make_save_times(steps, extra=save_times).astype(np.float64)
    data = problem.data() if data is None else data
    wbar0, M0 = _statistics_of(problem, data, M0)
    p = problem
    n = min(int(p.N), p.D) if p.finite_width else p.D
    flow = StructuredPopulation(M0, np.asarray(data.beta, dtype=np.float64), p.alpha, p.eps,
                                p.eta0, p.tau, p.centered, wbar0, p.weight_decay)
    rows = np.empty((times.size, len(CORE_COLUMNS)))
    wc = np.empty(times.size)
    final: dict[str, np.ndarray] = {}

    def on_save(k: int, t: float, y: np.ndarray) -> None:
        var, mis, lin = flow.loss_terms(y)
        L = var + mis + lin
        if not math.isfinite(L):
            raise DivergenceError(f"population flow diverged at t={t:g}", t)
        rows[k] = [L + p.noise ** 2, L, L, var, mis, lin, *flow.diagnostics(y)]
        wc[k] = flow.weight_change(y)
        final["y"] = y.copy()

    t0 = time.perf_counter()
    try:
        stats = dopri5(flow.rhs, flow.y0(), times, on_save, rtol=rtol, atol=atol)
    except IntegrationError as exc:
        raise DivergenceError(f"population flow failed: {exc}", float("nan")) from None
    info: dict[str, Any] = {"steps": int(steps), "population_method": "structured",
                            "state_size": flow.n_state, "invariant_dim": flow.k,
                            "n_rhs": stats.n_rhs, "n_accepted": stats.n_accepted,
                            "n_rejected": stats.n_rejected,
                            "wall_time": time.perf_counter() - t0,
                            "init": {"init": str(getattr(p, "init", "iid")),
                                     "init_scale": float(getattr(p, "init_scale", 1.0)),
                                     **init_measures(M0, flow.beta, finite=False, n=n)}}
    f, L, u = flow.unpack(final["y"])
    cols = {name: rows[:, j].copy() for j, name in enumerate(CORE_COLUMNS)}
    return Trajectory(problem=problem, method="population", t=times, **cols,
                      extra={"weight_change": wc}, info=info,
                      final_state={"f": f, "L": L, "u": u, "E": flow.E})


def centered_plateau(M0: np.ndarray, beta: np.ndarray, alpha: float, eps: float,
                     tau: float = 0.5, eta0: float = 1.0, rank: int | None = None
                     ) -> dict[str, float]:
    """The centered online plateau of a rank-R init with wbar0 = 0 (docs/init_structure.md §3.5).

    The flow keeps rank M = R and converges to the best rank-R fit in the loss metric:
    L_inf = 2 (R + 3)/(R + 2) mu^2 / D^2, mu the (R+1)-th eigenvalue of
    S = (alpha eps / 2) M0 + tau |beta|^2 betahat betahat^T.  It is a saddle of the unconstrained
    problem: a seed outside range(M0) grows at the rate
    lambda_esc = (eta0 eps / alpha)(4 mu / D^2)(R + 3)/(R + 2) per GD step.

    Parameters
    ----------
    M0 : array (D, D)
    beta : array (D,)
    alpha, eps, tau, eta0 : float
    rank : int, optional
        R (default: the numerical rank of M0).

    Returns
    -------
    dict
        ``rank``, ``mu``, ``loss`` (L_inf; 0 if betahat is in range(M0)) and ``escape_rate``.
    """
    D = M0.shape[0]
    lam0 = np.linalg.eigvalsh(0.5 * (M0 + M0.T))
    R = int(np.sum(lam0 > ZERO_RTOL * lam0[-1])) if rank is None else int(rank)
    bhat = beta / np.linalg.norm(beta)
    S = 0.5 * alpha * eps * M0 + tau * float(beta @ beta) * np.outer(bhat, bhat)
    mu = float(np.sort(np.linalg.eigvalsh(0.5 * (S + S.T)))[::-1][R]) if R < D else 0.0
    mu = max(mu, 0.0)
    ratio = (R + 3) / (R + 2)
    return {"rank": R, "mu": mu, "loss": 2.0 * ratio * mu * mu / D ** 2,
            "escape_rate": (eta0 * eps / alpha) * (4.0 * mu / D ** 2) * ratio}
