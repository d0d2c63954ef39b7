"""The DMFT averaged over Monte Carlo draws (``draws``), its standard error in the summary, and
the up-front check of the DMFT's horizon (docs/offline_theory.md §8.6, §10)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lazyrich_theory as lr
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.offline import (OfflineInputs, check_dmft_steps, offline_inputs,
                                            offline_summary, offline_theory)
from lazyrich_theory.theory.offline.dmft import (DMFT_MAX_POINTS, dmft_columns, dmft_tau_cap,
                                                make_grid)

INP = OfflineInputs(kappa=3.0, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=50)
T = np.array([0.0, 10.0, 100.0, 400.0, 1000.0, 2000.0])       # tau = 0 ... 1.6


def test_draws_average_the_single_draws():
    """draws = 3 is the mean of the three single draws at seeds seed, seed + 1, seed + 2, with
    the standard error of that mean; draws = 1 is the single draw, without those columns."""
    single = [dmft_columns(INP, T, Ns=40, seed=5 + k) for k in range(3)]
    avg = dmft_columns(INP, T, Ns=40, seed=5, draws=3)
    for name in ("population_loss", "train_loss", "linear_power", "spike_amplitude2"):
        each = np.array([c[name] for c in single])
        np.testing.assert_allclose(avg[name], each.mean(axis=0), rtol=1e-14, atol=1e-300)
    pops = np.array([c["population_loss"] for c in single])
    np.testing.assert_allclose(avg["population_loss_mc_se"],
                               pops.std(axis=0, ddof=1) / math.sqrt(3), rtol=1e-12)
    assert avg["population_loss_mc_se"][-1] > 0        # the draws differ
    assert "population_loss_mc_se" not in single[0]
    # trace_dM and alignment follow from the averaged order parameters
    assert avg["trace_dM"] == pytest.approx(avg["bulk"] + avg["spike_amplitude2"]
                                            + avg["tilt"] - 1.0)


@pytest.mark.parametrize("draws", [0, -1, 1.5, True, "2"])
def test_bad_draws_are_refused(draws):
    with pytest.raises(ProblemError, match="draws"):
        dmft_columns(INP, T, Ns=40, draws=draws)


def test_summary_has_the_monte_carlo_error():
    p = lr.Problem(D=30, P=60, N="inf", alpha=1.0, eps=0.02, seed=0)
    two = offline_theory(p, 2000, method="dmft", Ns=40, draws=2)
    s = offline_summary(two)
    se = two.extra["population_loss_mc_se"]
    assert s["dmft_draws"] == 2 and two.info["dmft_draws"] == 2
    assert s["predicted_final_test_loss_mc_se"] == pytest.approx(
        se[-1] / two.population_loss[0])
    one = offline_summary(offline_theory(p, 2000, method="dmft", Ns=40))
    assert one["predicted_final_test_loss_mc_se"] is None and one["dmft_draws"] == 1
    assert "--dmft-draws" in one["reasons"]["predicted_final_test_loss_mc_se"]
    spectral = offline_summary(offline_theory(p, 2000, method="spectral"))
    assert spectral["predicted_final_test_loss_mc_se"] is None
    assert "dmft_draws" not in spectral
    assert "no Monte Carlo" in spectral["reasons"]["predicted_final_test_loss_mc_se"]
    assert "averaged 2 Monte Carlo draws" in s["regime"] and "averaged" not in one["regime"]


def test_draws_need_the_dmft():
    p = lr.Problem(D=30, P=180, N="inf", alpha=1.0, eps=0.02, seed=0)
    with pytest.raises(ProblemError, match="spectral closure has none"):
        offline_theory(p, 2000, draws=2)             # auto: spectral at kappa = 6
    with pytest.raises(ProblemError, match="Ns, seed, max_points"):
        offline_theory(p.replace(init="lowrank:1"), 2000, draws=2)


def test_the_horizon_check_names_the_longest_run():
    """check_dmft_steps refuses exactly the horizons whose grid exceeds DMFT_MAX_POINTS and
    names the longest horizon in GD steps, which it accepts."""
    p = lr.Problem(D=30, P=60, N="inf", alpha=1.0, eps=0.02, seed=0)
    inp = offline_inputs(p)
    per_tau = 1.0 / float(inp.dmft_clock(np.array([1.0]))[0])
    most = math.floor(dmft_tau_cap() * per_tau)
    check_dmft_steps(inp, most)
    assert make_grid(most / per_tau).size <= DMFT_MAX_POINTS
    with pytest.raises(ProblemError, match=f"at most {most} steps"):
        check_dmft_steps(inp, int(1.05 * most))


def test_critical_kappa_averages_the_dmft_draws(monkeypatch):
    """critical_kappa(..., "dmft", runs=K) bisects on the mean over K Monte Carlo draws (the
    same draws at every kappa): with a stand-in DMFT whose two draws cross 1/2 at kappa = 2
    and 4, one draw gives 2 and the mean of both 3."""
    from lazyrich_theory.theory.offline import critical_kappa, summary

    def fake(inp, tau_h, Ns, seed, **_):
        final = 0.5 + 0.1 * ((2.0 if seed == 0 else 4.0) - inp.kappa)
        return {"population_loss": np.array([1.0, final])}

    monkeypatch.setattr(summary, "dmft_tau_curves", fake)
    inp = OfflineInputs(kappa=3.0, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=50)
    one = critical_kappa(inp, "dmft", tol=0.1)
    two = critical_kappa(inp, "dmft", tol=0.1, runs=2)
    assert one.value == pytest.approx(2.0, abs=0.1) and "mean of" not in one.definition
    assert two.value == pytest.approx(3.0, abs=0.1) and "mean of 2" in two.definition
    for runs in (0, 1.5, True):
        with pytest.raises(ProblemError, match="runs must be"):
            critical_kappa(inp, "dmft", runs=runs)


def test_a_blow_up_names_its_draw(monkeypatch):
    """When one of several draws diverges the error names the draw and its seed, and the
    advice names the command line's --ns; numpy's overflow warnings are not shown."""
    import warnings

    from lazyrich_theory.errors import DivergenceError
    from lazyrich_theory.theory.offline import dmft

    real = dmft.dmft_tau_curves

    def second_blows_up(inp, tau_max, Ns, seed, **kw):
        if seed == 8:
            kw["dmax"] = 50.0            # far past the causal scheme's stable step
        return real(inp, tau_max, Ns=Ns, seed=seed, **kw)

    monkeypatch.setattr(dmft, "dmft_tau_curves", second_blows_up)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match=r"draw 2 of 3 \(seed 8\).*--ns"):
            dmft_columns(INP, np.array([0.0, 1e5]), Ns=20, seed=7, draws=3,
                         column_closure="dmft")       # this step blows the column up
