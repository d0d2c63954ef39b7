"""phase_boundary_times with the DMFT (docs/offline_theory.md §12.3): each node is one DMFT run
read on the rich clock, the alpha-eps collapse maps it to the cells, and the floor's edge is
located by bisection between a reached and a not-reached node."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.offline import OfflineInputs, dmft_tau_curves, phase_boundary_times
from lazyrich_theory.theory.offline.grid import dmft_tau_cap
from lazyrich_theory.theory.timescales import first_time_below

OPT = {"Ns": 60, "seed": 3}          # a small Monte Carlo: these tests check the bookkeeping


def test_dmft_grid_cell_is_its_own_dmft_run():
    """One cell: the grid's times are the DMFT curve's crossings converted tau -> GD steps
    (t = tau alpha D / (2 eta0 eps)); the DMFT sees alpha and eps themselves."""
    kappa, b2, D, eta0, alpha, eps, steps = 5.5, 1.0, 40, 2.0, 0.8, 0.3, 800
    out = phase_boundary_times(kappa, b2, D, eta0, [alpha], [eps], steps, threshold=0.2,
                               method="dmft", dmft_options=OPT)
    assert out["method"] == "dmft" and out["ratios"][0] == pytest.approx(alpha / eps)
    tau_h = 2 * eta0 * eps * steps / (alpha * D)
    c = dmft_tau_curves(OfflineInputs(kappa, alpha, eps, eta0, b2, D), tau_h, **OPT)
    for key, level in (("threshold_time", 0.2), ("relative_time", 0.5 * 0.75 * b2**2)):
        tau = first_time_below(c["tau"], c["population_loss"], level)
        assert math.isfinite(tau), key
        assert out[key][0, 0] == pytest.approx(tau * alpha * D / (2 * eta0 * eps), rel=1e-9)


def test_dmft_grid_refines_the_floor_edge():
    """With a threshold between the DMFT's long-time losses at small and large alpha eps,
    the nodes are bisected where the crossing switches from reached to not reached, and
    every cell above the edge is inf, every cell well below it finite."""
    alpha = np.geomspace(0.3, 3.0, 5)
    eps = np.geomspace(0.03, 0.3, 5)
    out = phase_boundary_times(5.5, 1.0, 40, 20.0, alpha, eps, 20000, threshold=0.2,
                               method="dmft", n_nodes=3, refine=1, dmft_options=OPT)
    t = out["threshold_time"]
    assert np.isfinite(t[0, 0]) and not np.isfinite(t[-1, -1])
    assert out["nodes"].size == 4                 # 3 nodes + one bisection of the switch
    ae = np.outer(alpha, eps)
    # the edge: the largest node that reaches the threshold; cells above it do not
    reached = np.isfinite(t)
    assert reached.any() and not reached.all()
    assert ae[reached].max() < ae[~reached].min()
    assert out["tau_cap"] == pytest.approx(dmft_tau_cap())


def test_dmft_tau_cap_is_the_grid_limit():
    from lazyrich_theory.theory.offline.dmft import DMFT_MAX_POINTS, make_grid

    cap = dmft_tau_cap()
    assert make_grid(cap).size <= DMFT_MAX_POINTS < make_grid(cap * 1.01).size


def test_grid_method_is_checked():
    with pytest.raises(ProblemError, match="method must be one of spectral, dmft"):
        phase_boundary_times(5.5, 1.0, 40, 1.0, [1.0], [0.1], 100, method="flow")


# ------------------------------------------------------------------ the training set's xi law
def test_xi_training_strata_is_the_empirical_law():
    """P <= Ns/2: each |xi_mu| once, with both signs; P > Ns/2: equal-mass strata whose
    mean is the empirical mean of |xi| and whose values are ordered inside the data's range."""
    from lazyrich_theory.theory.offline.dmft import xi_training_strata

    x = np.random.default_rng(1).standard_normal(300)
    s = xi_training_strata(x, 800)
    assert s.size == 600 and np.allclose(np.sort(s[:300]), np.sort(np.abs(x)))
    assert np.allclose(s[300:], -s[:300])
    s = xi_training_strata(x, 100)
    half = s[:50]
    assert half.mean() == pytest.approx(np.abs(x).mean(), rel=1e-12)
    assert np.all(np.diff(half) > 0) and half[0] >= np.abs(x).min()
    assert half[-1] <= np.abs(x).max()
    with pytest.raises(ProblemError, match=">= 10 finite"):
        xi_training_strata(x[:5], 100)


def test_training_xi_of_a_problem():
    """xi_mu = betahat . z_mu from the problem's own data, in both conventions."""
    import lazyrich_theory as lr
    from lazyrich_theory.theory.offline.inputs import training_xi

    for conv in ("A", "B"):
        p = lr.Problem(D=30, P=90, N="inf", seed=2, convention=conv)
        d = p.data()
        z = np.asarray(d.X) * (math.sqrt(30) if conv == "A" else 1.0)
        b = np.asarray(d.beta) / np.linalg.norm(d.beta)
        assert np.allclose(training_xi(p), z @ b, rtol=1e-12)


def test_offline_theory_xi_law_checks_and_records():
    import lazyrich_theory as lr
    from lazyrich_theory.theory.offline import offline_theory
    from lazyrich_theory.theory.offline.inputs import training_xi

    p = lr.Problem(D=30, P=165, N="inf", alpha=8.0, eps=0.02, seed=3)
    with pytest.raises(ProblemError, match="needs method='dmft'"):
        offline_theory(p, 100, method="spectral", xi_law="training")
    with pytest.raises(ProblemError, match="xi_law must be one of gaussian, training"):
        offline_theory(p, 100, method="dmft", xi_law="empirical")
    tr = offline_theory(p, 600, method="dmft", xi_law="training", Ns=60)
    assert tr.info["xi_law"] == "training"
    from lazyrich_theory.theory.offline import offline_inputs

    inp = offline_inputs(p)
    tau_end = float(inp.dmft_clock(np.array([600.0]))[0])
    ref = dmft_tau_curves(inp, tau_end, Ns=60, xi_train=training_xi(p))
    assert tr.population_loss[-1] == pytest.approx(
        np.interp(tau_end, ref["tau"], ref["population_loss"]), rel=1e-9)
    gauss = dmft_tau_curves(inp, tau_end, Ns=60)
    assert not np.allclose(gauss["population_loss"], ref["population_loss"])
