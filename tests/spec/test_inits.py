"""Init families (issue 17): grammar, one-line errors, norms, ranks, overlaps, measures."""
import math

import numpy as np
import pytest

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.inits import (
    InitSpec,
    check_init,
    check_init_scale,
    init_measures,
    is_default_init,
    make_init,
    parse_init,
)
from lazyrich_theory.spec.problem import Problem

D = 20
SPECS = ("iid", "lowrank:1", "lowrank:4", "powerlaw:0", "powerlaw:1", "aligned:1:1",
         "aligned:3:0.5", "aligned:3:0")


@pytest.fixture(scope="module")
def beta():
    return np.random.default_rng(99).standard_normal(D)


def _rng(seed=5):
    return np.random.default_rng(seed)


def _M0(init, N):
    return init.T @ init / init.shape[0] if math.isfinite(N) else init


@pytest.mark.parametrize("text,expected", [
    ("iid", InitSpec("iid")), (" LowRank:3 ", InitSpec("lowrank", rank=3)),
    ("powerlaw:1.5", InitSpec("powerlaw", exponent=1.5)), ("powerlaw:0", InitSpec("powerlaw", exponent=0.0)),
    ("aligned:2:0.25", InitSpec("aligned", rank=2, overlap=0.25)), ("aligned:2:1", InitSpec("aligned", rank=2, overlap=1.0)),
])
def test_grammar(text, expected):
    s = parse_init(text)
    assert s == expected
    assert parse_init(str(s)) == s          # the canonical string round-trips


@pytest.mark.parametrize("text", ["", "gaussian", "lowrank", "lowrank:0", "lowrank:2.5", "lowrank:x",
                                  "powerlaw:-1", "powerlaw:nan", "aligned:2", "aligned:2:1.5",
                                  "aligned:0:0.5", "iid:3", "lowrank:3:1"])
def test_bad_specs_raise_one_line(text):
    with pytest.raises(ProblemError) as exc:
        parse_init(text)
    msg = str(exc.value)
    assert "\n" not in msg and "iid | lowrank:R | powerlaw:P | aligned:R:C" in msg


def test_shape_checks_and_scale():
    check_init("lowrank:20", 20, math.inf)
    check_init("lowrank:5", 20, 5)
    for spec, N, what in (("lowrank:21", math.inf, "D = 20"), ("lowrank:6", 5, "min(N, D) = 5"),
                          ("aligned:6:0.5", 5, "min(N, D)"), ("aligned:20:0.5", math.inf, "D - 1")):
        with pytest.raises(ProblemError, match=what.replace("(", r"\(").replace(")", r"\)")):
            check_init(spec, 20, N)
    check_init("aligned:20:1", 20, math.inf)               # C = 1: the range may be all of R^D
    assert check_init_scale(2) == 2.0
    for bad in (0, -1, math.inf, "2", True):
        with pytest.raises(ProblemError, match="init_scale"):
            check_init_scale(bad)
    assert is_default_init("iid") and not is_default_init("iid", 2.0)
    assert not is_default_init("lowrank:2")


@pytest.mark.parametrize("N", [7, 60, math.inf])
@pytest.mark.parametrize("spec", SPECS)
def test_norm_rank_overlap_and_reproducibility(spec, N, beta):
    a, b = make_init(_rng(), D, N, beta, spec), make_init(_rng(), D, N, beta, spec)
    assert np.array_equal(a, b)
    s = parse_init(spec)
    M0 = _M0(a, N)
    if s.kind != "iid":
        assert abs(np.trace(M0) - D) < 1e-12 * D                     # tr M0 = D exactly
    m = init_measures(a, beta, finite=math.isfinite(N))
    if s.rank is not None:
        assert m["rank"] == s.rank
    if s.kind == "aligned":
        bhat = beta / np.linalg.norm(beta)
        lam, V = np.linalg.eigh(M0)
        assert abs(np.linalg.norm(V[:, -s.rank:].T @ bhat) - s.overlap) < 1e-12   # |P_V bhat| = C
        if math.isfinite(N):
            assert abs(m["top_overlap"] - s.overlap) < 1e-10                     # top direction
        else:
            assert abs(m["task_overlap_rel"] - D / s.rank * s.overlap ** 2) < 1e-10
    assert 1.0 - 1e-12 <= m["participation_ratio"] <= m["rank"] + 1e-9
    assert 0 < m["liu_rank"] <= 1.0 + 1e-12


def test_iid_is_the_package_W0_bit_for_bit():
    p = Problem(D=D, P=30, N=17, seed=4, test_size=10)
    rng = np.random.default_rng(np.random.SeedSequence(4).spawn(4)[3])
    assert np.array_equal(make_init(rng, D, 17, None, "iid"), p.data().W0)


def test_infinite_width_limits_and_identities(beta):
    assert np.allclose(make_init(_rng(1), D, math.inf, beta, "powerlaw:0"), np.eye(D), atol=1e-13)
    assert np.allclose(make_init(_rng(1), D, math.inf, beta, f"lowrank:{D}"), np.eye(D), atol=1e-13)
    assert np.array_equal(make_init(_rng(1), D, math.inf, beta, "iid", scale=3.0), 9.0 * np.eye(D))
    # finite lowrank:min(N, D) is the rescaled Gaussian draw
    G = _rng(2).standard_normal((60, D))
    L = make_init(_rng(2), D, 60, beta, f"lowrank:{D}")
    np.testing.assert_allclose(L, G * math.sqrt(60 * D) / np.linalg.norm(G), rtol=1e-9, atol=1e-12)
    # the finite-N low-rank spectrum flattens towards the N = inf flat projector as N grows
    spread = []
    for N in (200, 20000):
        lam = np.sort(np.linalg.eigvalsh(_M0(make_init(_rng(3), D, N, beta, "lowrank:4"), N)))[-4:]
        spread.append(np.max(np.abs(lam / (D / 4) - 1)))
    assert spread[1] < spread[0] / 4 and spread[1] < 0.03


def test_scale_multiplies_W0(beta):
    for N in (9, math.inf):
        a = make_init(_rng(), D, N, beta, "aligned:3:0.5")
        b = make_init(_rng(), D, N, beta, "aligned:3:0.5", scale=0.5)
        np.testing.assert_allclose(b, (0.5 if math.isfinite(N) else 0.25) * a, rtol=1e-15)


def test_measures_of_known_spectra(beta):
    m = init_measures(make_init(_rng(), D, math.inf, beta, "lowrank:4"), beta, finite=False)
    assert m["participation_ratio"] == pytest.approx(4.0, rel=1e-12)
    assert m["liu_rank"] == pytest.approx(4.0 / D, rel=1e-12)
    m = init_measures(make_init(_rng(), D, math.inf, beta, "iid"), beta, finite=False)
    assert m["liu_rank"] == 1.0 and m["task_overlap_rel"] == pytest.approx(1.0)
    # the same W0 measured as weights or as its second moment with n = min(N, D)
    W0 = make_init(_rng(), D, 7, beta, "powerlaw:1")
    a = init_measures(W0, beta, finite=True)
    b = init_measures(W0.T @ W0 / 7, beta, finite=False, n=7)
    assert all(abs(a[k] - b[k]) < 1e-10 * max(1.0, abs(a[k])) for k in a)
    with pytest.raises(ProblemError, match="beta"):
        make_init(_rng(), D, 7, None, "aligned:2:0.5")
