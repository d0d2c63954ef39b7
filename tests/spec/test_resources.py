"""The checks before a run: the resource estimate, the writability probe, the ranges of the
problem's fields, and the evaluation budget of the adaptive integrators."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazyrich_theory.core.dopri5 import dopri5
from lazyrich_theory.core.integrators import BudgetExceeded, min_evaluations, rkc2
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec import resources
from lazyrich_theory.spec.problem import FLOAT_LIMIT, Problem, first_step_scales, preset
from lazyrich_theory.spec.resources import (
    ESTIMATE_METHODS,
    check_writable,
    estimate,
    format_bytes,
    format_seconds,
)
from lazyrich_theory.spec.schedule import MAX_STEPS, parse_times, save_times


def test_estimate_counts_the_arrays_that_dominate():
    """D x D statistics at N = inf, the N x D weights of the network, the P x P kernels."""
    D = 2000
    inf = estimate(Problem(D=D, P=10, N="inf", test_size=10), 10)
    assert inf.memory > 8 * 3 * D * D                  # F, M0, M: D^2 each
    net = estimate(Problem(D=10, P=10, N=10**6, test_size=10), 10, "simulate")
    assert net.memory > 8 * 4 * 10**6 * 10             # W, W0, gradient, ... N x D
    theory = estimate(Problem(D=10, P=3000, N=5, test_size=10), 10, theory=True)
    assert theory.memory > 8 * 4 * 3000**2
    for method in ESTIMATE_METHODS:
        e = estimate(preset("fig1", N="inf") if method == "scalar" else preset("fig1"),
                     1000, method)
        assert e.memory > 0 and e.flops > 0 and e.seconds > 0 and method in e.what


def test_estimate_of_the_paper_setup_is_the_right_order():
    """Figure 1's 100 000 exact GD steps take minutes (measured 1-4 min on 2 cores)."""
    e = estimate(preset("fig1"), 100_000)
    assert 30 < e.seconds < 1800 and e.memory < 1e9


def test_stiff_flows_cost_more_and_say_so():
    cheap = estimate(preset("fig1"), 100_000, "flow", integrator="dopri5")
    stiff = estimate(preset("fig1", eta0=1e4), 100_000, "flow", integrator="dopri5")
    assert stiff.flops > 100 * cheap.flops and "stiff" in stiff.what and "stiff" not in cheap.what
    assert min_evaluations(1.0, 3.3, "dopri5") == pytest.approx(6.0)
    assert min_evaluations(1e6, 1.0, "rkc") < min_evaluations(1e6, 1.0, "dopri5") / 10


def test_formats():
    assert format_bytes(1.5e9) == "1.5 GB" and format_bytes(999) == "999 B"
    assert format_bytes(4e19) == "40 EB"
    assert format_seconds(30) == "30 s" and format_seconds(150) == "2.5 min"
    assert format_seconds(86_400) == "24 h" and format_seconds(3.156e7 * 2) == "2 years"


def test_available_memory_is_known_here():
    avail = resources.available_memory()
    assert avail is None or avail > 1e6


def test_check_writable_refuses_a_file_in_the_path_and_a_mount_point(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ProblemError, match="is a file"):
        check_writable(f / "sub" / "deeper", "--out")
    with pytest.raises(ProblemError, match="mount point"):
        check_writable("/", "--out")
    check_writable(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_field_ranges_follow_float64():
    assert FLOAT_LIMIT == 1e100
    Problem(alpha=1e60)                    # far lazy, representable
    Problem(alpha=1e-80)                   # far rich: accepted, the dynamics says the rest
    with pytest.raises(ProblemError, match="overflow at alpha"):
        Problem(alpha=1e101)
    with pytest.raises(ProblemError, match="underflow at eta0"):
        Problem(eta0=1e-101)
    with pytest.raises(ProblemError, match="first weight increment"):
        Problem(alpha=1e-60, eta0=1e50)
    names = [what for what, _, _ in first_step_scales(Problem())]
    assert len(names) == 3 and all(v < 10 for _, v, _ in first_step_scales(Problem()))
    assert Problem(N="1e3").N == 1000
    with pytest.raises(ProblemError):
        Problem(N="nan")


def test_save_times_limits():
    assert save_times(MAX_STEPS)[-1] == MAX_STEPS
    with pytest.raises(ProblemError, match="2\\*\\*53"):
        save_times(MAX_STEPS + 1)
    assert parse_times("10, 1e2") == [10, 100]
    for bad in ("", " ", "1,,2", "3,", "1e400"):
        with pytest.raises(ProblemError):
            parse_times(bad)


def test_integrators_stop_early_at_their_budget():
    """A stiff linear flow: DOPRI5 is held at h ~ 3.3 / rho and would need ~6e6 evaluations;
    with a budget of 1e5 it stops long before, naming the projection."""
    lam = np.array([1e6, 1.0])
    with pytest.raises(BudgetExceeded, match="would need") as exc:
        dopri5(lambda t, y: -lam * y, np.ones(2), np.array([0.0, 3.3]), lambda k, t, y: None,
               rtol=1e-6, atol=1e-9, max_rhs=100_000)
    assert "stiff" in str(exc.value)
    with pytest.raises(BudgetExceeded, match="budget"):
        rkc2(lambda t, y: -lam * y, np.ones(2), np.array([0.0, 1e3]), lambda k, t, y: None,
             rtol=1e-6, atol=1e-9, max_rhs=200, spectral_radius=lambda t, y: 1e6)
    # within the budget nothing changes
    st = dopri5(lambda t, y: -y, np.ones(2), np.array([0.0, 1.0]), lambda k, t, y: None)
    assert st.n_rhs < 1000 and math.isfinite(st.n_rhs)
