"""The DMFT's diagnostic ablations (``dmft_tau_curves(..., linear_column=, anomalous_term=,
null_space_split=)``, docs/offline_theory.md §12.4).

* Defaults are the DMFT as derived: passing them explicitly changes nothing.
* The anomalous Onsager term (xi^2 / D) R_x is a finite-D term: switching it off moves the
  curves by O(1/D) (measured: 1.7e-2 at D = 100, 1.2e-5 at 1e4, 5e-7 at 1e6 in the loss).
* Without the linear column the DMFT is the theory of f = (alpha eps / 2) x^T (M - I) x: no
  linear power, and early on it follows the exact flow of a problem whose linear column is too
  slow to act (alpha / eps = 0.01).
* The null-space split A6' acts only through the linear column: without the column the curves
  do not depend on it (to rounding); with a fast column it moves them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lazyrich_theory as lr
from lazyrich_theory.theory.offline import (OfflineInputs, dmft_tau_curves, offline_inputs,
                                            training_xi)


def _gap(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in ("population_loss", "train_loss"))


def test_defaults_are_the_derived_dmft():
    inp = OfflineInputs(kappa=5.5, alpha=1.0, eps=0.1, eta0=1.0, b2=1.0, D=100)
    a = dmft_tau_curves(inp, 2.0, Ns=60)
    b = dmft_tau_curves(inp, 2.0, Ns=60, linear_column=True, anomalous_term=True,
                        null_space_split=True)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_anomalous_term_is_order_one_over_d():
    gaps = []
    for D in (100, 10_000, 1_000_000):
        inp = OfflineInputs(kappa=5.5, alpha=0.5, eps=0.64, eta0=1.0, b2=1.0, D=D)
        gaps.append(_gap(dmft_tau_curves(inp, 4.0, Ns=100),
                         dmft_tau_curves(inp, 4.0, Ns=100, anomalous_term=False)))
    assert gaps[0] > 5e-3                       # it matters at D = 100 ...
    assert gaps[1] < 0.03 * gaps[0]             # ... and fades like 1/D
    assert gaps[2] < 0.03 * gaps[1]


def test_without_the_linear_column_it_follows_the_quadratic_model():
    D, ratio = 80, 0.01
    p = lr.Problem(D=D, P=int(5.5 * D), N=math.inf, alpha=math.sqrt(0.32 * ratio),
                   eps=math.sqrt(0.32 / ratio), eta0=ratio * D / 200, centered=True,
                   convention="A", seed=0, test_size=10)          # tau = t / 100
    c = dmft_tau_curves(offline_inputs(p), 0.6, Ns=400, xi_train=training_xi(p),
                        linear_column=False)
    assert np.all(c["linear_power"] == 0.0)
    ex = lr.solve(p, 50, method="flow", save_times=[25, 50]).to_pandas().reset_index().set_index("t")
    L0 = float(ex["population_loss"].iloc[0])
    for step in (25, 50):
        train = np.interp(step / 100, c["tau"], c["train_loss"])
        pop = np.interp(step / 100, c["tau"], c["population_loss"]) / c["population_loss"][0]
        # measured: train +0.3 % / +1.2 %, population +0.02 % / +0.07 % (the DMFT's finite-D error)
        assert train == pytest.approx(ex.loc[step, "train_loss"], rel=0.03)
        assert pop == pytest.approx(ex.loc[step, "population_loss"] / L0, rel=0.02)


def test_the_null_space_split_acts_through_the_column_only():
    inp = OfflineInputs(kappa=5.5, alpha=1.0, eps=0.02, eta0=1.0, b2=1.0, D=100)
    on, off = (dmft_tau_curves(inp, 4.0, Ns=60, linear_column=False, null_space_split=s)
               for s in (True, False))
    assert _gap(on, off) < 1e-12                 # A = identity: r = rho - Kbar r + Kbar r
    with_col = dmft_tau_curves(inp, 4.0, Ns=60)
    assert _gap(with_col, dmft_tau_curves(inp, 4.0, Ns=60, null_space_split=False)) > 1e-3
