"""What the offline theory reads from a Problem, and what it refuses (one line each).

The theory is for the paper's model at N = inf (M0 = I), centered, the paper's teacher, plain
full-batch training (gradient flow; GD at eta0 <= ~1 is indistinguishable on these time
scales), i.i.d. initialisation, P > D.  Its inputs are

    kappa = P / D,  alpha, eps (times init_scale: the same run, Problem docs),  eta0,
    b2 = 2 tau |beta|^2 / D  (the teacher's scale in convention-A units; |beta|^2 from the
                              problem's own teacher, as the population ODE does),
    D itself: a finite-D prediction (the spike grows from O(1) to O(D / (alpha eps)), which
              puts ln D into the rich time, and the finite-P cut of the plateau spectrum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.inits import FINITE_RANK_FAMILIES, parse_init
from lazyrich_theory.spec.problem import Problem, options_in_use

__all__ = ["OfflineInputs", "offline_inputs", "input_fields", "check_problem",
           "training_refusals", "training_xi"]


@dataclass(frozen=True)
class OfflineInputs:
    """The numbers the offline theory depends on (module docstring).

    Attributes
    ----------
    kappa, alpha, eps, eta0, b2 : float
    D : int
    """

    kappa: float
    alpha: float
    eps: float
    eta0: float
    b2: float
    D: int

    @property
    def alpha_eps(self) -> float:
        """alpha eps: the only combination of alpha and eps on the rich clock."""
        return self.alpha * self.eps

    def rich_clock(self, t: np.ndarray) -> np.ndarray:
        """s = eta0 eps t / alpha for t in GD steps."""
        return self.eta0 * self.eps * np.asarray(t, dtype=float) / self.alpha

    def dmft_clock(self, t: np.ndarray) -> np.ndarray:
        """tau = 2 eta0 eps t / (alpha D) for t in GD steps (the DMFT's time)."""
        return 2.0 * self.rich_clock(t) / self.D


def training_refusals(problem: Problem) -> list[str]:
    """What every offline theory refuses, one reason each: a non-paper teacher, training
    options, minibatch / online SGD, eps <= 0."""
    bad = []
    if problem.target != "paper":
        bad.append(f"target={problem.target!r} (the theory is for the paper's teacher only)")
    for name, value in options_in_use(problem).items():
        bad.append(f"{name}={value:g} (not in the offline theory)")
    if problem.batch_size is not None or problem.online:
        bad.append("minibatch / online SGD (the theory is full-batch)")
    if problem.eps <= 0:
        bad.append(f"eps={problem.eps:g} (must be > 0)")
    return bad


def check_problem(problem: Problem) -> None:
    """ProblemError (one line naming every reason) unless the offline theory applies.

    Parameters
    ----------
    problem : Problem
    """
    bad = []
    if problem.finite_width:
        bad.append(f"N={problem.N} (the theory is for N = inf, M0 = I: --N inf, or "
                   "problem.replace(N='inf') in Python, gives the N = inf prediction)")
    if not problem.centered:
        bad.append("uncentered (the theory is for the centered model f(W) - f(W0))")
    bad += training_refusals(problem)
    if problem.init != "iid":
        hint = ("; for this finite-rank init offline_theory / lazyrich asymptotic run the "
                "r-index DMFT, ~10-40 s" if parse_init(problem.init).kind in
                FINITE_RANK_FAMILIES else "")
        bad.append(f"init={problem.init!r} (the theory starts from M0 = I{hint})")
    if problem.P <= problem.D:
        bad.append(f"P={problem.P} <= D={problem.D} (kappa = P/D must exceed 1: below, the "
                   "lazy linear fit interpolates)")
    if bad:
        raise ProblemError("the offline theory does not apply: " + "; ".join(bad))


def offline_inputs(problem: Problem, data: ProblemData | None = None,
                   b2: float | None = None) -> OfflineInputs:
    """The theory's inputs for ``problem`` (checked by :func:`check_problem`).

    Parameters
    ----------
    problem : Problem
    data : ProblemData, optional
        Where |beta|^2 comes from (default: the problem's own data; only beta is read).
    b2 : float, optional
        |beta|^2 / D in convention-A units, overriding the problem's teacher (e.g. 1, the
        D -> inf value).

    Returns
    -------
    OfflineInputs
    """
    check_problem(problem)
    return OfflineInputs(**input_fields(problem, data, b2))


def input_fields(problem: Problem, data: ProblemData | None = None,
                 b2: float | None = None) -> dict[str, float | int]:
    """The fields of :class:`OfflineInputs` for ``problem`` (no domain check): kappa, alpha
    and eps times init_scale, eta0, D, and b2 = 2 tau |beta|^2 / D from ``data``'s teacher
    unless given (checked positive and finite)."""
    if b2 is None:
        beta = np.asarray((problem.data() if data is None else data).beta, dtype=float)
        b2 = 2.0 * problem.tau * float(beta @ beta) / problem.D
    if not (b2 > 0 and math.isfinite(b2)):
        raise ProblemError(f"b2 = |beta|^2 / D must be positive and finite, got {b2!r}")
    alpha, eps = problem.scaled_alpha_eps
    return {"kappa": problem.P / problem.D, "alpha": alpha, "eps": eps,
            "eta0": problem.eta0, "b2": float(b2), "D": problem.D}


def training_xi(problem: Problem, data: ProblemData | None = None) -> np.ndarray:
    """The teacher projections xi_mu = betahat . z_mu of the problem's training set (z = sqrt(D) x
    in convention A, z = x in B) (what the DMFT conditioned on the training set reads).

    Parameters
    ----------
    problem : Problem
    data : ProblemData, optional
        Default: the problem's own data.

    Returns
    -------
    np.ndarray
        P values; xi ~ N(0, 1) for each sample of a fresh training set.
    """
    d = problem.data() if data is None else data
    beta = np.asarray(d.beta, dtype=float)
    norm = float(np.linalg.norm(beta))
    if not norm > 0:
        raise ProblemError("the teacher beta is zero: xi = betahat . z is undefined")
    z_scale = math.sqrt(problem.D) if problem.convention == "A" else 1.0   # z = sqrt(D) x in A
    return z_scale * (np.asarray(d.X, dtype=float) @ beta) / norm
