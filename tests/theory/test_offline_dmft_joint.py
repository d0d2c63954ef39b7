"""The spread closure's population field at the current point, solved jointly with the
samples' residuals (``noise_current="joint"``; ``dmft_population``, ``dmft_current``;
docs/offline_theory.md §12.4, "The noise at the current point").

* The linear solve through W's Schur form is (1 + c W)^(-1), checked against a dense solve.
* In a run, every step's joint current point is converged (its last pass moves r by
  <= 1e-12 of its size).
* Where the field one step behind is stable, the two agree to the lag's size; at
  kappa = 1.5, alpha / eps = 200 the lagged noise loop blew up (the failure of (12.2) that
  kept it opt-in) and the joint one does not.
* The option is checked in one place and recorded.
"""

from __future__ import annotations

import numpy as np
import pytest

import lazyrich_theory as lr

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.theory.offline import OfflineInputs, dmft_tau_curves, offline_theory
from lazyrich_theory.theory.offline.dmft import check_joint_converged
from lazyrich_theory.theory.offline.dmft_current import JOINT_PASSES
from lazyrich_theory.theory.offline.dmft_population import (population_field,
                                                            population_matrix,
                                                            population_schur, population_solve)


def test_the_schur_solve_is_the_population_systems_inverse():
    rng = np.random.default_rng(3)
    Ns = 120
    zu, b = rng.standard_normal((Ns, Ns)), rng.standard_normal(Ns)
    W = population_matrix(zu)
    assert np.all(np.diag(W) == 0.0)
    Z, T = population_schur(zu)
    for c in (0.0, 0.5, 0.8):
        out = np.empty(Ns)
        population_solve(Z, T, c, b, out)
        np.testing.assert_allclose(out, np.linalg.solve(np.eye(Ns) + c * W, b), atol=1e-12)
    field = np.empty(Ns)
    population_field(zu, b, field)
    np.testing.assert_allclose(field, W @ b, atol=1e-13)


def _k15(ratio, D=100):
    ae = 0.02
    return OfflineInputs(kappa=1.5, alpha=np.sqrt(ae * ratio), eps=np.sqrt(ae / ratio),
                         eta0=1.0, b2=1.0, D=D)


def _final(ratio, noise_current, seed=1):
    c = dmft_tau_curves(_k15(ratio), 40.0, Ns=100, seed=seed, column_closure="spread",
                        column_speed="finite", noise_current=noise_current)
    return (c["population_loss"][-1] / c["population_loss"][0], c["joint_change"],
            c["joint_passes"])


def test_the_joint_current_point_holds_where_the_lagged_noise_loop_blew_up():
    """kappa = 1.5, D = 100, Ns = 100, draw 1: lagged, the loss at tau = 40 ends at 10.7
    (the exact flow's is 1.2-2.1 on every seed measured); joint, it ends at 2.05, next to the
    slower column's 1.99 (alpha / eps = 50), as the exact flow's +0.03 between the two."""
    lagged, _, _ = _final(200.0, "lagged")
    joint, change, passes = _final(200.0, "joint")
    slow, _, _ = _final(50.0, "joint")
    assert lagged > 3.0                               # the failure this option mends
    assert np.max(change) <= 1e-12 and np.max(change[1:]) > 0.0
    # every step after the first ran the joint solve, and stopped before its limit
    assert np.all(passes[1:] >= 1) and np.max(passes) < JOINT_PASSES
    assert abs(joint - slow) < 0.1 and joint < 3.0


def test_joint_and_lagged_agree_where_the_lagged_is_stable():
    """alpha / eps = 50, draw 3: the two differ by 4e-4 at tau = 40 (the lag's error)."""
    joint, _, _ = _final(50.0, "joint", seed=3)
    lagged, change, passes = _final(50.0, "lagged", seed=3)
    assert np.all(change == 0.0) and np.all(passes == 0)   # lagged: no joint solve ran
    assert abs(joint - lagged) < 0.005


@pytest.mark.parametrize("options, match", [
    ({"noise_current": "now", "column_closure": "spread"}, "noise_current must be one of"),
    ({"noise_current": "joint", "column_closure": "dmft"}, "needs column_closure='spread'"),
])
def test_bad_noise_current_is_refused_in_one_line(options, match):
    with pytest.raises(ProblemError, match=match) as err:
        dmft_tau_curves(_k15(50.0, D=40), 1.0, Ns=40, **options)
    assert "\n" not in str(err.value)


def test_the_default_field_is_joint_at_finite_speed_and_recorded():
    p = lr.Problem(D=40, P=60, N="inf", alpha=1.0, eps=0.02, seed=0)
    tr = offline_theory(p, 2000, method="dmft", Ns=40, column_closure="spread")
    assert tr.info["column_speed"] == "finite" and tr.info["noise_current"] == "joint"
    tr = offline_theory(p, 2000, method="dmft", Ns=40, column_closure="spread",
                        column_speed="instantaneous")
    assert tr.info["noise_current"] == "lagged"
    tr = offline_theory(p, 2000, method="dmft", Ns=40, column_closure="spread",
                        column_speed="instantaneous", noise_current="joint")
    assert tr.info["noise_current"] == "joint" and tr.info["column_speed"] == "instantaneous"
    inst = dmft_tau_curves(_k15(50.0, D=40), 2.0, Ns=40, column_closure="spread",
                           column_speed="instantaneous")
    assert np.all(inst["joint_change"] == 0.0)
    default = dmft_tau_curves(_k15(50.0, D=40), 2.0, Ns=40)       # auto: spread, (12.2)
    assert np.max(default["joint_change"]) > 0.0


def test_an_unconverged_joint_current_point_is_a_divergence_naming_its_tau():
    tau = np.linspace(0.0, 2.0, 21)
    change = np.zeros(21)
    check_joint_converged(tau, change)                  # converged (or lagged: zeros)
    change[7] = 3e-5
    change[12] = np.nan                                 # a blow-up: the losses' own check
    with pytest.raises(DivergenceError, match=r"did not converge at tau = 0\.7 .*3\.0e-05") as e:
        check_joint_converged(tau, change)
    assert "\n" not in str(e.value)
    change[7] = 0.0
    check_joint_converged(tau, change)
