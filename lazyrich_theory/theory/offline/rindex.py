"""The r-index DMFT (docs/offline_theory.md §13): the exact D -> inf theory of full-batch GD
at P = kappa D from an initialisation of finite rank R (``lowrank:R``, ``aligned:R:C`` at
N = inf).

With M0 = (D/R) P_V (V a D x R frame) every neuron moves by one affine map, so the network is
R quadratic probe neurons a_b = sqrt(D/R) U v_b plus the linear column u: a (R + 1)-index
model, whose high-dimensional GD has an exact DMFT with a finite number of order parameters
(Celentano, Cheng & Montanari 2021; Gerbelot et al. 2022).  Unlike the M0 = I DMFT (§8) it
has no uncontrolled closure: its only approximations are D -> inf itself (with the initial
teacher overlap C_R = |P_V betahat| of the actual draw: O(R/D)^(1/2) for ``lowrank``, C for
``aligned``) and the Monte Carlo over samples.  It is the DMFT of *discrete* GD with step
d = 2 eta0 eps / (alpha D) in tau per GD step; when the horizon needs more than ``max_points``
steps (default ``RINDEX_MAX_POINTS``, or more where the stiff linear column needs a finer step:
:func:`rindex_plan`), ``stride`` GD steps are merged into one (a coarser GD with the same
horizon: an O(d) time discretisation error, measured in §13.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from lazyrich_theory.core.threads import free_cores, numba_threads
from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.fields import is_int
from lazyrich_theory.spec.inits import FINITE_RANK_FAMILIES, parse_init
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline.inputs import (OfflineInputs, input_fields,
                                                   training_refusals)
from lazyrich_theory.theory.offline.rindex_kernels import run_rindex

__all__ = ["RIndexInputs", "rindex_inputs", "rindex_plan", "rindex_tau_curves", "check_rindex_ns",
           "rindex_columns", "is_finite_rank", "RINDEX_NS", "RINDEX_MAX_POINTS",
           "RINDEX_MAX_RANK"]

#: Default number of Monte Carlo samples.
RINDEX_NS = 400
#: Default largest number of DMFT steps (cost ~ T^3).
RINDEX_MAX_POINTS = 300
#: Largest init rank accepted (cost ~ (R + 1)^3).
RINDEX_MAX_RANK = 4
#: Largest memory for the per-sample responses (Ns T (T + 1) / 2 (R + 1)^2 doubles).
RINDEX_MAX_BYTES = 2e9


@dataclass(frozen=True)
class RIndexInputs(OfflineInputs):
    """What the r-index DMFT depends on: the M0 = I theory's inputs (kappa, alpha, eps --
    times init_scale --, eta0, b2, D; D only in the clock and the losses' normalisation) and

    Attributes
    ----------
    R : int
        Init rank.
    overlap : float
        C_R = |P_V betahat| of the init frame.
    centered : bool
    scale : float
        init_scale (the diagnostics are reported in the solver's units).
    """

    R: int
    overlap: float
    centered: bool
    scale: float = 1.0

    @property
    def gd_step(self) -> float:
        """One GD step in tau = 2 eta0 eps t / (alpha D)."""
        return float(self.dmft_clock(1.0))

    @property
    def column_rate(self) -> float:
        """The linear column's fastest rate in tau, (alpha / eps)(1 + kappa^-1/2)^2."""
        return self.alpha / self.eps * (1.0 + 1.0 / math.sqrt(self.kappa)) ** 2


def rindex_inputs(problem: Problem, data: ProblemData | None = None,
                  b2: float | None = None) -> RIndexInputs:
    """The r-index DMFT's inputs for ``problem`` (``b2`` overrides the teacher's, as in
    ``offline_inputs``); ProblemError (one line naming every reason) unless it applies: N = inf,
    init ``lowrank:R`` or ``aligned:R:C`` with R <= 4, the paper's teacher, plain full-batch
    GD, eps > 0."""
    bad = []
    spec = parse_init(problem.init)
    if problem.finite_width:
        bad.append(f"N={problem.N} (the theory is for N = inf)")
    if spec.kind not in FINITE_RANK_FAMILIES:
        bad.append(f"init={problem.init!r} (the r-index DMFT needs lowrank:R or aligned:R:C)")
    elif spec.rank > RINDEX_MAX_RANK:
        bad.append(f"rank R={spec.rank} > {RINDEX_MAX_RANK} (cost grows like (R + 1)^3)")
    bad += training_refusals(problem)
    if bad:
        raise ProblemError("the r-index DMFT does not apply: " + "; ".join(bad))
    d = problem.data() if data is None else data
    beta = np.asarray(d.beta, dtype=float)
    nb = float(np.linalg.norm(beta))
    if not nb > 0 or d.M0 is None:
        raise ProblemError("the r-index DMFT needs a nonzero teacher and the init's M0")
    s, R = problem.init_scale, spec.rank
    bh = beta / nb
    c2 = float(bh @ np.asarray(d.M0, dtype=float) @ bh) * R / (problem.D * s * s)
    return RIndexInputs(**input_fields(problem, d, b2), R=R,
                        overlap=math.sqrt(min(max(c2, 0.0), 1.0)), centered=problem.centered,
                        scale=s)


def check_rindex_ns(Ns: Any) -> None:
    """Refuse (one line, ProblemError) a number of Monte Carlo samples the r-index DMFT
    cannot use: it needs an integer >= 20."""
    if not is_int(Ns) or Ns < 20:
        raise ProblemError(f"Ns must be an integer >= 20, got {Ns!r}")


def rindex_plan(inp: RIndexInputs, steps: int, Ns: int = RINDEX_NS,
                max_points: int | None = None) -> tuple[int, int]:
    """(stride, number of DMFT steps) of a run to ``steps`` GD steps, or ProblemError (one
    line) if it would not run: Ns < 20, a step too coarse for the stiff linear column, more
    than ``RINDEX_MAX_BYTES`` of responses.  Nothing is computed.

    ``max_points`` None: ``RINDEX_MAX_POINTS`` steps, or more where the linear column needs a
    finer step (the largest stride with d tau * rate <= 1.4, up to the memory limit)."""
    check_rindex_ns(Ns)
    if steps < 1 or (max_points is not None and max_points < 2):
        raise ProblemError(f"need steps >= 1 and max_points >= 2, got {steps}, {max_points}")
    stride = max(1, math.ceil(steps / ((max_points or RINDEX_MAX_POINTS) - 1)))
    if max_points is None:
        stride = max(1, min(stride, math.floor(1.4 / (inp.gd_step * inp.column_rate))))
    d = stride * inp.gd_step
    if d * inp.column_rate >= 1.5:
        raise ProblemError(
            f"a DMFT step of {stride} GD steps (d tau = {d:.3g}) is too coarse for the linear "
            f"column (rate {inp.column_rate:.3g}: need d tau < {1.5 / inp.column_rate:.3g}); "
            f"raise max_points above {math.ceil(steps * inp.gd_step * inp.column_rate / 1.5) + 1} "
            "or shorten the horizon")
    n = math.ceil(steps / stride)
    k = inp.R + 1
    need = 8.0 * Ns * (n + 1) * (n + 2) / 2 * k * k
    if need > RINDEX_MAX_BYTES:
        raise ProblemError(f"the r-index DMFT would need {need / 1e9:.1f} GB for Ns = {Ns}, "
                           f"{n + 1} steps and rank {inp.R} (limit "
                           f"{RINDEX_MAX_BYTES / 1e9:g} GB); lower Ns or max_points")
    return stride, n


def rindex_tau_curves(inp: RIndexInputs, steps: int, Ns: int = RINDEX_NS, seed: int = 0,
                      max_points: int | None = None,
                      xi_train: np.ndarray | None = None,
                      cross_response: bool = True) -> dict[str, np.ndarray]:
    """The r-index DMFT's curves at its own steps up to ``steps`` GD steps.

    Parameters
    ----------
    inp : RIndexInputs
    steps : int
        Horizon in GD steps (>= 1).
    Ns : int
        Monte Carlo samples (>= 20): (xi, theta(0)) from a scrambled Halton sequence
        (:func:`_initial_draws`).
    seed : int
        Seed of the Gaussian draws and of the sample order.
    max_points : int, optional
        Largest number of DMFT steps; ``stride = ceil(steps / (max_points - 1))`` GD steps
        are merged into one DMFT step.  None (default): ``RINDEX_MAX_POINTS``, or as many
        more as the stiff linear column needs (:func:`rindex_plan`).
    xi_train : np.ndarray, optional
        A training set's xi: the samples follow its empirical law.
    cross_response : bool
        False drops the probe <-> column blocks of Gamma = E[dF/dtheta] (a diagnostic, not a
        model option: it measures how much the column and the probe neurons are coupled
        through their responses rather than through the residual; docs §12.4).

    Returns
    -------
    dict
        t (GD steps), tau, stride, and the loss and overlap series of :func:`_observables`.
    """
    stride, n = rindex_plan(inp, steps, Ns, max_points)
    k = inp.R + 1
    t = np.arange(n + 1, dtype=float) * stride
    tau = t * inp.gd_step
    m0 = np.zeros(k)
    m0[0] = inp.overlap / math.sqrt(inp.R)
    C0 = np.diag(np.r_[np.full(inp.R, 1.0 / inp.R), 0.0]) - np.outer(m0, m0)
    rng = np.random.default_rng(seed)
    xi, th0 = _initial_draws(Ns, C0, xi_train, rng)
    omega = rng.standard_normal((Ns, Ns))
    par = np.array([inp.kappa, inp.alpha, inp.eps, inp.b2, 1.0 if inp.centered else 0.0,
                    1.0 if cross_response else 0.0])
    with numba_threads(free_cores()):
        m, C, out, done = run_rindex(tau, xi, th0, omega, m0, C0, par)
    if done < tau.size:
        raise DivergenceError(f"the r-index DMFT became non-finite at GD step {t[done]:.0f} "
                              f"(tau = {tau[done]:.3g}); a stable GD step needs "
                              f"d tau < 2 / {inp.column_rate:.3g} at least", float(t[done]))
    obs = _observables(inp, m, C)
    return {"t": t, "tau": tau, "stride": np.array(stride), "train_loss": out[0], **obs}


def _initial_draws(Ns: int, C0: np.ndarray, xi_train: np.ndarray | None,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The samples' (xi, theta(0)) from one scrambled Halton sequence in 1 + R dimensions
    (scipy.stats.qmc): xi by the Gaussian quantile (or the training set's empirical one),
    theta(0) ~ N(0, C0) (the column's component is 0).  A quasi-Monte Carlo design: the joint
    moments E[xi^a theta^b] that drive the early flow converge much faster than with
    independent pairings (measured: the kappa -> inf limit, docs §13)."""
    k = C0.shape[0]
    R = k - 1
    u = qmc.Halton(d=1 + R, scramble=True, seed=rng).random(Ns)
    u = np.clip(u, 1e-12, 1.0 - 1e-12)
    if xi_train is None:
        xi = ndtri(u[:, 0])
    else:
        xi = np.quantile(np.asarray(xi_train, dtype=float), u[:, 0], method="inverted_cdf")
    w, v = np.linalg.eigh(C0[:R, :R])
    th0 = np.zeros((Ns, k))
    th0[:, :R] = ndtri(u[:, 1:]) @ (v * np.sqrt(np.maximum(w, 0.0))).T
    return xi, th0


def _observables(inp: RIndexInputs, m: np.ndarray, C: np.ndarray) -> dict[str, np.ndarray]:
    """Population loss and M statistics from the overlaps Q = W^T W / D (Wick, exact given Q).

    With W = [a_1..a_R, u], M - M0 = W W^T - W0 W0^T, B = (b2 D / 2) betahat betahat^T:
    tr Delta / D = (alpha eps / 2)(tr Q - c tr Q0) - b2 / 2, and tr Delta^2 / D^2 from tr Q^2,
    tr Q(n, 0) Q(0, n), |m|^2 (c = 1 centered, 0 uncentered)."""
    T, k = m.shape
    R, c = inp.R, 1.0 if inp.centered else 0.0
    ae, b2 = inp.alpha * inp.eps, inp.b2
    Q = C[:, 1] + m[:, :, None] * m[:, None, :]
    Qt0 = C[:, 0] + m[:, :, None] * m[0][None, None, :]          # W(n)^T W(0) / D
    trQ = np.trace(Q, axis1=1, axis2=2)
    m2 = np.sum(m**2, axis=1)
    trQ2 = np.einsum("nab,nba->n", Q, Q)
    cross = np.einsum("nab,nab->n", Qt0, Qt0)
    rel2 = trQ2 - 2.0 * cross + trQ2[0]                   # tr (M - M0)^2 / D^2
    dM2 = trQ2 - c * 2.0 * cross + c * trQ2[0]            # tr (M - c M0)^2 / D^2
    tr_delta = 0.5 * ae * (trQ - c * trQ[0]) - 0.5 * b2
    delta2 = (0.5 * ae) ** 2 * dM2 - 0.5 * ae * b2 * (m2 - c * m2[0]) + 0.25 * b2**2
    lin = inp.alpha**2 * Q[:, R, R]
    var, mis = tr_delta**2, 2.0 * delta2
    s2 = inp.scale**2
    return {"population_loss": lin + var + mis, "linear_power": lin, "variance": var,
            "misalignment": mis, "alignment": s2 * inp.D * (m2 - m2[0]),
            "trace_dM": s2 * (trQ - trQ[0]),
            "frob_dM": s2 * inp.D * np.sqrt(np.maximum(rel2, 0.0)),
            "norm_dwbar": inp.scale * np.sqrt(np.maximum(inp.D * Q[:, R, R], 0.0)),
            "spike_amplitude2": m2}


def is_finite_rank(problem: Problem) -> bool:
    """True for the inits the r-index DMFT is for (``lowrank:R``, ``aligned:R:C``)."""
    return parse_init(problem.init).kind in FINITE_RANK_FAMILIES


def rindex_columns(inp: RIndexInputs, t: np.ndarray, xi_train: np.ndarray | None = None,
                   Ns: int = RINDEX_NS, seed: int = 0,
                   max_points: int | None = None) -> dict[str, np.ndarray]:
    """The r-index DMFT's columns at GD times ``t`` (t[0] = 0, increasing), linear in t
    between its steps (exact at multiples of the stride, which is reported as the scalar
    ``stride``); what ``offline_theory`` overlays for a finite-rank init.  Options as for
    :func:`rindex_tau_curves`."""
    c = rindex_tau_curves(inp, int(math.ceil(t[-1])), Ns=Ns, seed=seed, max_points=max_points,
                          xi_train=xi_train)
    out = {name: np.interp(t, c["t"], col) for name, col in c.items()
           if name not in ("t", "tau", "stride")}
    out["stride"] = c["stride"]
    return out
