"""The structured population ODE (issue 17): equal to the package's full population flow on a
network with the same statistics, to the 2-scalar ODE for iid, the limit of the reduced solver
as P grows, and its centered low-rank plateau is the closed form (3.3)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lazyrich_theory import Problem, solve
from lazyrich_theory.core.population import population
from lazyrich_theory.core.reduced import initial_factor
from lazyrich_theory.core.population_structured import (
    StructuredPopulation,
    centered_plateau,
    population_structured,
)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.inits import haar_frame, make_init
from lazyrich_validation.richness import plus_minus_weights

D = 20


@dataclasses.dataclass(frozen=True, eq=False)
class DataM0(ProblemData):
    M0: np.ndarray | None = None


@pytest.fixture(scope="module")
def base():
    p = Problem(D=D, P=40, N=math.inf, alpha=1.0, eps=0.5, eta0=1.0, test_size=50, seed=21)
    return p, p.data()


def _spiked(beta):
    """isotropic + rank 2 + spike along betahat, tr M0 = D."""
    bhat = beta / np.linalg.norm(beta)
    V = haar_frame(np.random.default_rng(9), D, 2)
    M0 = 0.5 * np.eye(D) + (V * [3.0, 1.5]) @ V.T + 2.0 * np.outer(bhat, bhat)
    return M0 * (D / np.trace(M0))


def _init(d, name):
    if name == "spiked":
        return _spiked(d.beta)
    return make_init(np.random.default_rng(8), D, math.inf, d.beta, name)


@pytest.mark.parametrize("name,size", [("lowrank:3", 7), ("aligned:2:0.7", 7), ("spiked", 13),
                                       ("powerlaw:1", 420)])
@pytest.mark.parametrize("centered", [True, False])
def test_equals_the_full_population_flow(base, name, size, centered):
    p, d = base
    p = p.replace(centered=centered)
    M0 = _init(d, name)
    tr = population_structured(p, 600, data=d, M0=M0, rtol=1e-11, atol=1e-13)
    assert tr.info["state_size"] == size
    Wpm = plus_minus_weights(M0)
    dn = ProblemData(d.X, d.y, d.X_test, d.y_test, d.beta, Wpm)
    full = population(p.replace(N=Wpm.shape[0]), 600, method="full", data=dn, rtol=1e-11,
                      atol=1e-13)
    L0 = full.population_loss[0]
    assert np.max(np.abs(tr.population_loss - full.population_loss)) < 1e-8 * L0
    for col in ("alignment", "trace_dM", "frob_dM", "norm_dwbar"):
        scale = max(1.0, float(np.max(np.abs(full[col]))))
        assert np.max(np.abs(tr[col] - full[col])) < 1e-7 * scale, col
    # weight change from the factor state = from the full flow's factor (same S, eq. 2.2)
    F, F0 = full.final_state["F"], initial_factor(Wpm, D)[0]
    wc_full = np.linalg.norm(F - F0) / np.linalg.norm(F0)
    assert abs(tr.extra["weight_change"][-1] - wc_full) < 1e-7 * wc_full


def test_iid_is_the_two_scalar_ode(base):
    p, d = base
    a = population_structured(p, 2000, data=d)
    b = population(p, 2000, data=d)
    assert a.info["state_size"] == 3
    assert np.max(np.abs(a.population_loss - b.population_loss)) < 1e-8 * b.population_loss[0]


def test_finite_width_init_equals_the_full_flow(base):
    p, d = base
    p = p.replace(N=5)
    W0 = make_init(np.random.default_rng(3), D, 5, d.beta, "aligned:2:0.7")
    dn = ProblemData(d.X, d.y, d.X_test, d.y_test, d.beta, W0)
    a = population_structured(p, 600, data=dn, rtol=1e-11, atol=1e-13)
    b = population(p, 600, method="full", data=dn, rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(a.population_loss - b.population_loss)) < 1e-8 * b.population_loss[0]
    with pytest.raises(ProblemError, match="finite N"):
        population_structured(p, 10, data=dn, M0=np.eye(D))


@pytest.mark.parametrize("name", ["lowrank:1", "lowrank:3", "aligned:3:0.7"])
def test_centered_low_rank_plateau_is_the_closed_form(base, name):
    """Centered, rank R, betahat outside the range: the flow stops at
    L = 2 (R+3)/(R+2) mu_{R+1}^2 / D^2 (the saddle of docs/init_structure.md §3.5) and stays
    there, because the factor form keeps the rank exact; uncentered it reaches zero loss."""
    p, d = base
    M0 = _init(d, name)
    plateau = centered_plateau(M0, d.beta, p.alpha, p.eps, p.tau, p.eta0)
    tr = population_structured(p, 30000, data=d, M0=M0, save_times=[3000], rtol=1e-12, atol=1e-14)
    i = int(np.flatnonzero(tr.t == 3000)[0])
    for L in (tr.population_loss[i], tr.population_loss[-1]):
        assert abs(L - plateau["loss"]) < 1e-9 * plateau["loss"]
    un = population_structured(p.replace(centered=False), 30000, data=d, M0=M0)
    assert un.population_loss[-1] < 1e-5 * un.population_loss[0]


def test_plateau_escape_rate_of_a_seeded_perturbation(base):
    """A rank-breaking seed of relative size delta leaves the plateau after
    ~ ln(1/delta) / lambda_esc: two seeds 100x apart escape lambda_esc^-1 ln 100 apart."""
    p, d = base
    M0 = _init(d, "lowrank:3")
    plateau = centered_plateau(M0, d.beta, p.alpha, p.eps, p.tau, p.eta0)
    g = np.random.default_rng(0).standard_normal(D)
    g -= np.linalg.pinv(M0) @ M0 @ g                  # outside range(M0)
    escape = []
    for delta in (1e-3, 1e-5):
        Mseed = M0 + delta ** 2 * np.outer(g, g) / (g @ g) * np.trace(M0)
        flow = StructuredPopulation(Mseed, d.beta, p.alpha, p.eps, p.eta0, p.tau, True)
        tr = population_structured(p, 6000, data=d, M0=Mseed, save_times=np.arange(0, 6001, 10))
        below = np.flatnonzero((tr.population_loss < plateau["loss"] / 10) & (tr.t > 300))
        escape.append(tr.t[below[0]])
        assert flow.k >= 2
    predicted = math.log(100.0) / plateau["escape_rate"]
    assert abs((escape[1] - escape[0]) - predicted) < 0.1 * predicted


def test_reduced_solver_converges_to_the_ode_as_P_grows(base):
    """Finite-P exact dynamics at N = inf (gradient flow) from the same Sigma: the gap to the
    online ODE shrinks as P grows (mean over 3 data seeds).  The O(P^2) kernel-alignment
    column is switched off (observer None): only the losses are compared."""
    p, d = base
    M0 = _init(d, "aligned:2:0.7")
    ode = population_structured(p, 300, data=d, M0=M0)
    gaps = []
    for kappa in (4, 32, 256):
        gap = []
        for seed in range(3):
            q = p.replace(P=kappa * D, seed=100 + seed)
            dq = q.data()
            dq = DataM0(dq.X, dq.y, dq.X_test, dq.y_test, d.beta, None, M0=M0)
            dq = dataclasses.replace(dq, y=0.5 * (dq.X @ d.beta) ** 2,
                                     y_test=0.5 * (dq.X_test @ d.beta) ** 2)
            tr = solve(q, 300, method="flow", integrator="dopri5", data=dq,
                       observers={"tangent_kernel_alignment": None})
            assert "tangent_kernel_alignment" not in tr.columns
            gap.append(np.max(np.abs(tr.population_loss - ode.population_loss))
                       / ode.population_loss[0])
        gaps.append(float(np.mean(gap)))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05


def test_population_dispatches_structured_inits(base):
    """``population`` runs the structured flow when the data carry an N = inf M0."""
    p, d = base
    M0 = _init(d, "lowrank:3")
    dm = DataM0(d.X, d.y, d.X_test, d.y_test, d.beta, None, M0=M0)
    a = population(p, 300, data=dm)
    b = population_structured(p, 300, data=d, M0=M0, rtol=1e-9, atol=1e-12)
    assert a.info["population_method"] == "structured"
    np.testing.assert_array_equal(a.population_loss, b.population_loss)
    assert population(p, 300, data=d).info["population_method"] == "scalar"
