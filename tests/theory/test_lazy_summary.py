"""The lazy-theory wiring of `lazyrich solve` (``solve_with_theory``'s summary): the paper's
Figure 1 setup, and the cases where a prediction or a measurement does not apply -- each is
None with a reason, never a negative or placeholder number (issue 15 §6)."""
import math

import pytest

from lazyrich_theory import Problem, preset
from lazyrich_theory.experiments.with_theory import solve_with_theory
from lazyrich_theory.theory.lazy import lazy_summary
from lazyrich_theory.theory.timescales import MEASURED_STATUS

TIMES = ("linearized_peak_time", "predicted_lazy_fit_time", "predicted_lazy_peak_time",
         "predicted_rich_time_estimate", "predicted_rich_time_population",
         "predicted_grokking_delay", "measured_train_time", "measured_test_time",
         "measured_test_half_time")


def check_honest(s):
    """Every None has a one-line reason, every reason belongs to a None; no negative time."""
    nulls = {k for k, v in s.items() if v is None}
    assert set(s["reasons"]) == nulls, (set(s["reasons"]) ^ nulls)
    for k, why in s["reasons"].items():
        assert isinstance(why, str) and why and "\n" not in why, k
    for k in TIMES:
        assert s[k] is None or (math.isfinite(s[k]) and s[k] >= 0), (k, s[k])
    assert s["measured_status"] in MEASURED_STATUS


def test_fig1_linearised_peak_and_k0_baseline():
    """The paper's Fig. 1 setup: the linearised model's test loss peaks near the network's
    lazy plateau; the K0 baseline sits below the initial test loss."""
    s = lazy_summary(preset("fig1"))
    assert 0.5 < s["kernel_regression_test_loss"] < 0.7
    assert s["kernel_regression_train_loss"] < 1e-10
    assert 200 < s["linearized_peak_time"] < 2000
    assert s["linearized_peak_test_loss"] > 0.8


def test_n_below_d_has_no_lazy_peak_and_no_negative_delay():
    """Issue 15's case D=50, P=200, N=5: the linearised test loss rises monotonically to the
    K0-regression loss, so its argmax was a meaningless 5e7..1e9 and the delay -5e7..-1e9.
    Now: no lazy peak (None + reason), the delay is measured from the lazy fit time and
    says so; the train loss reaches 0.1 (t ~ 4500) but the test loss does not within 10^4
    steps: 'never generalised', not 0."""
    p = Problem(D=50, P=200, N=5)
    s = solve_with_theory(p, 10_000, method="flow").info["summary"]
    check_honest(s)
    for k in ("linearized_peak_time", "linearized_peak_test_loss", "predicted_lazy_peak_time"):
        assert s[k] is None and "monotonically" in s["reasons"][k]
    assert s["predicted_grokking_delay"] == pytest.approx(
        s["predicted_rich_time_population"] - s["predicted_lazy_fit_time"])
    assert s["predicted_grokking_delay_from"] == "predicted_lazy_fit_time"
    assert s["measured_test_time"] is None and s["measured_paper_grokking_time"] is None
    assert s["measured_status"] == "never generalised"
    assert s["reasons"]["measured_paper_grokking_time"].startswith("never generalised")
    assert "N = 5 < D = 50" in s["theory_note"]


def test_small_fig1_like_run_grokks_and_reports_numbers():
    """A small Figure-1-like run (P = 5.5 D, N = 5 D) that generalises: a real lazy peak, a
    positive delay measured from it, status 'generalised', no None anywhere, and measured
    grokking time = test time - train time."""
    p = Problem(D=20, P=110, N=100, eps=0.1, test_size=300)
    s = solve_with_theory(p, 5000, method="flow").info["summary"]
    check_honest(s)
    assert s["measured_status"] == "generalised"
    assert s["measured_paper_grokking_time"] == pytest.approx(
        s["measured_test_time"] - s["measured_train_time"])
    assert s["linearized_peak_time"] is not None
    assert s["linearized_peak_test_loss"] > s["kernel_regression_test_loss"]
    assert s["predicted_grokking_delay"] > 0
    assert s["predicted_grokking_delay_from"] == "predicted_lazy_peak_time"
    assert s["reasons"] == {}


def test_rich_transition_before_the_lazy_phase_gives_no_delay():
    """Small alpha, large eps: the rich transition is predicted before the lazy fit time;
    the delay is None with a reason (it used to be negative)."""
    s = solve_with_theory(Problem(D=20, P=60, N=20, alpha=0.2, eps=0.5), 200).info["summary"]
    check_honest(s)
    assert s["predicted_grokking_delay"] is None
    assert "do not separate" in s["reasons"]["predicted_grokking_delay"]
    assert s["reasons"]["predicted_lazy_peak_time"].startswith(
        "the linearised test loss never rises")


def test_non_paper_target_has_no_rich_time_predictions():
    p = Problem(D=12, P=30, N=20, eps=0.3, target="hermite:coef=0.5/0/0.5/0.2")
    s = solve_with_theory(p, 100).info["summary"]
    check_honest(s)
    for k in ("predicted_rich_time_estimate", "predicted_rich_time_population",
              "predicted_grokking_delay"):
        assert s[k] is None and "paper's teacher" in s["reasons"][k]
    assert s["predicted_lazy_fit_time"] == 3.0
