"""The lazy-theory wiring of `lazyrich solve` on the paper's Figure 1 setup."""
from lazyrich_theory import preset
from lazyrich_theory.theory.lazy import lazy_summary


def test_fig1_linearised_peak_and_k0_baseline():
    """The paper's Fig. 1 setup: the linearised model's test loss peaks near the network's
    lazy plateau; the K0 baseline sits below the initial test loss."""
    s = lazy_summary(preset("fig1"))
    assert 0.5 < s["kernel_regression_test_loss"] < 0.7
    assert s["kernel_regression_train_loss"] < 1e-10
    assert 200 < s["linearized_peak_time"] < 2000
    assert s["linearized_peak_test_loss"] > 0.8
