"""The spectral closure's Numba integration (theory/offline/spectral_kernels.py) against an
independent reference: scipy's LSODA at tight tolerance on the per-sample right-hand side
``spectral._closure_rhs`` (the closure as docs/offline_theory.md writes it).

* the reduced flow, its Jacobian and its population loss equal the per-sample formulas;
* rich_clock_curves: every LOSS_KEYS column within 1e-5 (relative, floor 1e-3 of the column's
  largest value) of the reference, and of the former LSODA integration where that was sound;
* rich_clock_crossings: the first crossings within 1e-6 of the reference's events;
* the rank-one spike: no blow-up where the 3-number form of N went to NaN;
* failures are DivergenceError naming alpha eps; the modules do not import scipy.integrate.

No test here measures time.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.theory.offline import spectral, spectral_kernels
from lazyrich_theory.theory.offline.curves import spectral_closure
from lazyrich_theory.theory.offline.spectral import (
    LOSS_KEYS,
    _closure_losses,
    _closure_rhs,
    _residual,
    rich_clock_crossings,
    rich_clock_curves,
)
from lazyrich_theory.theory.offline.spectral_kernels import (
    _jacobian,
    _rhs,
    make_work,
    population_loss,
)

B2 = 1.033
CASES = [(5.5, 100, 0.02), (11, 50, 0.35), (22, 100, 1.5), (3, 50, 0.08)]


def _arrays(cl):
    return (cl.wb, cl.pb, cl.ws, cl.xi, cl.g, cl.y, cl.r0, cl.z2, cl.v1z)


def _n_state(z, nb):
    """(log m, v) -> (log m, N00, N01, N11) with N = v v^T."""
    v0, v1 = z[nb], z[nb + 1]
    return np.concatenate([z[:nb], [v0 * v0, v0 * v1, v1 * v1]])


def _reference_rhs(cl, ae):
    """d(log m, v)/ds from the per-sample formulas (G recomputed from the residual)."""
    nb, arrays = cl.pb.size, _arrays(cl)

    def f(_s, z):
        st = _n_state(z, nb)
        d = _closure_rhs(0.0, st, *arrays, cl.kappa, ae, cl.D)
        r = _residual(st, *arrays, cl.kappa, ae, cl.D)[0]
        wr = (2.0 / cl.D) * cl.ws * r
        g00, g01, g11 = (np.sum(wr * cl.xi * cl.xi), np.sum(wr * cl.xi * cl.z2),
                         np.sum(wr * cl.z2 * cl.z2))
        v0, v1 = z[nb], z[nb + 1]
        return np.concatenate([d[:nb], [-(g00 * v0 + g01 * v1), -(g01 * v0 + g11 * v1)]])
    return f


def _reference_losses(cl, ae, Z):
    nb = cl.pb.size
    return np.array([_closure_losses(_n_state(z, nb), *_arrays(cl), cl.kappa, ae, cl.D, cl.b2,
                                     cl.ey2, cl.q1, cl.tail) for z in Z])


def _z0(cl):
    return np.concatenate([np.zeros(cl.pb.size), cl.q1])


def _random_state(cl, rng):
    return np.concatenate([rng.normal(0.0, 0.7, cl.pb.size), rng.normal(0.0, 3.0, 2)])


def _max_rel(a, b, floor=1e-3):
    """max |a - b| / max(|b|, floor * max|b|) over the rows (per column, then the worst)."""
    scale = np.maximum(np.abs(b), floor * np.max(np.abs(b), axis=0))
    return float(np.max(np.abs(a - b) / scale))


@pytest.mark.parametrize("kappa, D", [(5.5, 50), (22, 100)])
def test_reduced_flow_is_the_per_sample_flow(kappa, D):
    cl = spectral_closure(kappa, B2, D)
    w, rng = make_work(cl.pb.size), np.random.default_rng(1)
    for ae in (0.02, 1.5):
        f_ref = _reference_rhs(cl, ae)
        for _ in range(3):
            z = _random_state(cl, rng)
            out = np.empty(z.size)
            _rhs(z, cl.ops, ae, w.u, w.h, out)
            ref = f_ref(0.0, z)
            assert np.max(np.abs(out - ref)) <= 1e-11 * np.max(np.abs(ref))
            # and its N-part is the per-sample dN/ds for N = v v^T
            dn = _closure_rhs(0.0, _n_state(z, cl.pb.size), *_arrays(cl), cl.kappa, ae, cl.D)
            v, dv = z[-2:], out[-2:]
            dvv = np.outer(dv, v) + np.outer(v, dv)
            assert np.allclose([dvv[0, 0], dvv[0, 1], dvv[1, 1]], dn[-3:], rtol=1e-10,
                               atol=1e-12 * np.max(np.abs(dn)))


def test_jacobian_matches_finite_differences():
    cl = spectral_closure(11, B2, 50)
    nb, ae = cl.pb.size, 0.35
    w = make_work(nb)
    z = _random_state(cl, np.random.default_rng(2))
    f0 = np.empty(nb + 2)
    _rhs(z, cl.ops, ae, w.u, w.h, f0)
    J = np.empty((nb + 2, nb + 2))
    _jacobian(z, cl.ops, ae, w.u, w.h, J, w.dh)
    fd, fp, fm = np.empty_like(J), np.empty(nb + 2), np.empty(nb + 2)
    for j in range(nb + 2):
        e = np.zeros(nb + 2)
        e[j] = 1e-6 * max(1.0, abs(z[j]))
        _rhs(z + e, cl.ops, ae, w.u, w.h, fp)
        _rhs(z - e, cl.ops, ae, w.u, w.h, fm)
        fd[:, j] = (fp - fm) / (2.0 * e[j])
    assert np.max(np.abs(J - fd)) <= 1e-6 * np.max(np.abs(J))


def test_reduced_population_loss_is_the_wick_formula():
    rng = np.random.default_rng(3)
    for kappa, D in [(5.5, 100), (3, 50)]:
        cl = spectral_closure(kappa, B2, D)
        w = make_work(cl.pb.size)
        for ae in (0.008, 1.5):
            for _ in range(3):
                z = _random_state(cl, rng)
                ref = _reference_losses(cl, ae, [z])[0, 0]
                assert population_loss(z, cl.ops, ae, w.u, w.state) == pytest.approx(ref,
                                                                                      rel=1e-11)


@pytest.mark.parametrize("kappa, D, ae", CASES)
def test_curves_match_tight_reference(kappa, D, ae):
    cl = spectral_closure(kappa, B2, D)
    s = np.concatenate([[0.0], np.geomspace(0.5, 2e4, 60)])
    ref = solve_ivp(_reference_rhs(cl, ae), (0.0, s[-1]), _z0(cl), method="LSODA", t_eval=s,
                    rtol=1e-10, atol=1e-13)
    assert ref.success
    want = _reference_losses(cl, ae, ref.y.T)
    got = rich_clock_curves(cl, ae, s)
    np.testing.assert_array_equal(got["s"], s)
    for j, key in enumerate(LOSS_KEYS):
        assert _max_rel(got[key][:, None], want[:, j:j + 1]) <= 1e-5, key


def test_curves_match_the_former_lsoda_integration():
    """The former code: LSODA (rtol 1e-6) on the 3-number N, sound in this case."""
    cl = spectral_closure(5.5, B2, 100)
    ae, s = 0.02, np.concatenate([[0.0], np.geomspace(0.1, 1e5, 80)])
    nb = cl.pb.size
    y0 = np.concatenate([np.zeros(nb), [cl.q1[0] ** 2, cl.q1[0] * cl.q1[1], cl.q1[1] ** 2]])
    old = solve_ivp(_closure_rhs, (0.0, s[-1]), y0, method="LSODA", t_eval=s, rtol=1e-6,
                    atol=1e-9, args=(*_arrays(cl), cl.kappa, ae, cl.D))
    want = np.array([_closure_losses(y, *_arrays(cl), cl.kappa, ae, cl.D, cl.b2, cl.ey2,
                                     cl.q1, cl.tail) for y in old.y.T])
    got = rich_clock_curves(cl, ae, s)
    assert _max_rel(np.column_stack([got[k] for k in LOSS_KEYS]), want) <= 1e-5


@pytest.mark.parametrize("kappa, D, ae", CASES)
def test_crossings_match_reference_events(kappa, D, ae):
    cl = spectral_closure(kappa, B2, D)
    levels = (0.1, 0.5 * 0.75 * B2**2)
    nb = cl.pb.size

    def event(level):
        def g(_s, z):
            return _reference_losses(cl, ae, [z])[0, 0] - level
        g.direction = -1.0
        return g

    ref = solve_ivp(_reference_rhs(cl, ae), (0.0, 2e4), _z0(cl), method="LSODA", rtol=1e-10,
                    atol=1e-13, events=[event(v) for v in levels])
    want = [te[0] if te.size else math.inf for te in ref.t_events]
    got = rich_clock_crossings(cl, ae, 2e4, levels)
    assert len(got) == 2 and nb > 0
    for g, w in zip(got, want):
        assert (math.isinf(g) and math.isinf(w)) or g == pytest.approx(w, rel=1e-6)


def test_crossings_semantics():
    """Levels keep their order; one never reached is inf; the lowest stops the integration."""
    cl = spectral_closure(11, B2, 50)
    a, b = rich_clock_crossings(cl, 0.08, 1e5, (0.1, 0.4))
    c, never, d = rich_clock_crossings(cl, 0.08, 1e5, (0.4, 1e-30, 0.1))
    assert 0 < b < a < math.inf and c == pytest.approx(b, rel=1e-9)
    assert d == pytest.approx(a, rel=1e-9) and never == math.inf
    assert rich_clock_crossings(cl, 0.08, 0.5 * b, (0.1, 0.4)) == [math.inf, math.inf]


def test_curves_start_at_s0_and_keep_repeated_times():
    cl = spectral_closure(5.5, B2, 50)
    s = np.array([0.0, 10.0, 10.0, 300.0])
    base = rich_clock_curves(cl, 0.02, s)
    shifted = rich_clock_curves(cl, 0.02, s + 50.0)    # the plateau state placed at s[0]
    np.testing.assert_allclose(shifted["population_loss"], base["population_loss"], rtol=1e-7)
    assert base["population_loss"][1] == base["population_loss"][2]


def test_rank_one_spike_does_not_blow_up():
    """The 3-number N (det N ~ exp(-2 int tr G)) went to NaN at s ~ 2e5 here."""
    cl = spectral_closure(11, B2, 100)
    c = rich_clock_curves(cl, 0.35, np.array([0.0, 1e3, 1e5, 1e6]))
    assert all(np.all(np.isfinite(c[k])) for k in LOSS_KEYS)
    assert 0 < c["population_loss"][-1] < c["population_loss"][1]


def test_failure_is_a_divergence_error_naming_alpha_eps():
    cl = spectral_closure(5.5, B2, 50)
    with pytest.raises(DivergenceError, match="alpha eps = nan"):
        rich_clock_curves(cl, math.nan, np.array([0.0, 1.0]))
    with pytest.raises(DivergenceError, match="alpha eps = -5"):
        rich_clock_crossings(cl, -5.0, 1e3, (0.1,))


def test_no_scipy_integrate():
    for mod in (spectral, spectral_kernels):
        tree = ast.parse(Path(mod.__file__).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(n.startswith("scipy") for n in names), mod.__name__


def test_decreasing_times_are_refused():
    cl = spectral_closure(5.5, B2, 50)
    with pytest.raises(ProblemError, match="increasing"):
        rich_clock_curves(cl, 0.02, np.array([0.0, 2.0, 1.0]))
