import json
import math

import numpy as np
import pytest

from lazyrich_theory import PRESETS, Problem, ProblemData, ProblemError, preset, save_times


def test_defaults_and_presets_match_issue_contract():
    p = preset("fig1")
    assert (p.convention, p.D, p.P, p.N, p.alpha, p.eps, p.eta0, p.centered) == (
        "A", 100, 550, 500, 1.0, 0.02, 1.0, True)
    q = preset("fig4")
    assert (q.convention, q.D, q.P, q.N, q.alpha, q.eps, q.eta0, q.centered) == (
        "A", 40, 120, 2, 1.0, 0.25, 0.5, False)
    assert set(PRESETS) >= {"fig1", "fig4"}


@pytest.mark.parametrize("bad", [
    dict(D=0), dict(P=-1), dict(N=0), dict(N="abc"), dict(N=2.5), dict(alpha=0.0),
    dict(alpha=float("nan")), dict(eta0=-1), dict(eps=float("inf")), dict(convention="C"),
    dict(seed=-3), dict(test_size=0), dict(centered="yes"), dict(D=True),
])
def test_bad_parameters_raise_one_line(bad):
    with pytest.raises(ProblemError) as exc:
        Problem(**bad)
    assert "\n" not in str(exc.value)


def test_N_infinity_spellings_and_json_roundtrip():
    for spelling in ("inf", "Infinity", math.inf):
        p = Problem(N=spelling)
        assert math.isinf(p.N) and not p.finite_width
    p = Problem(N="inf", D=7, eps=0.3, convention="b", centered=False)
    d = json.loads(p.to_json())
    assert d["N"] == "inf" and d["convention"] == "B"
    assert Problem.from_json(p.to_json()) == p
    with pytest.raises(ProblemError):
        Problem.from_dict({"D": 3, "bogus": 1})


def test_eta_and_tau():
    p = Problem(N=500, alpha=2.0, eta0=20.0)
    assert p.eta == pytest.approx(20 * 500 / 4)
    assert Problem(convention="A").tau == 0.5 and Problem(convention="B").tau == 1.0


def test_scaled_alpha_eps_is_the_init_scale_equivalence():
    assert Problem(alpha=2.0, eps=0.1, init_scale=3.0).scaled_alpha_eps == pytest.approx((6.0, 0.3))
    assert Problem(alpha=2.0, eps=0.1).scaled_alpha_eps == (2.0, 0.1)


def test_sampling_is_reproducible_and_streams_are_independent():
    p = Problem(D=8, P=20, N=5, test_size=10, seed=11)
    a, b = p.data(), p.data()
    for k in ("X", "y", "X_test", "y_test", "beta", "W0"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    # changing the width changes W0 only: X, X_test, beta come from their own streams
    c = p.replace(N=9).data()
    np.testing.assert_array_equal(a.X, c.X)
    np.testing.assert_array_equal(a.beta, c.beta)
    assert c.W0.shape == (9, 8)
    # the paper's PRNG trap: W0 must not be a copy of the data
    assert not np.allclose(a.W0.ravel()[:10], (a.X * math.sqrt(8)).ravel()[:10])
    # a different seed changes everything
    d = p.replace(seed=12).data()
    assert not np.allclose(a.X, d.X)


def test_conventions_scale_and_targets():
    pa = Problem(D=50, P=4000, N=3, test_size=5, convention="A")
    pb = pa.replace(convention="B")
    xa, xb = pa.data(), pb.data()
    assert np.mean(np.sum(xa.X**2, 1)) == pytest.approx(1.0, rel=0.02)
    assert np.mean(np.sum(xb.X**2, 1)) == pytest.approx(50.0, rel=0.02)
    np.testing.assert_allclose(xa.y, 0.5 * (xa.X @ xa.beta) ** 2)
    np.testing.assert_allclose(xb.y, (xb.X @ xb.beta / math.sqrt(50)) ** 2)


def test_npz_roundtrip_and_shape_checks(tmp_path):
    p = Problem(D=6, P=9, N=4, test_size=7)
    d = p.data()
    f = tmp_path / "d.npz"
    d.save(f)
    e = ProblemData.load(f, p)
    np.testing.assert_array_equal(d.W0, e.W0)
    assert ProblemData.infer_shape(f) == {"P": 9, "D": 6, "test_size": 7, "N": 4}
    with pytest.raises(ProblemError, match="shape"):
        ProblemData.load(f, p.replace(D=5))
    with pytest.raises(ProblemError, match="not found"):
        ProblemData.load(tmp_path / "nope.npz", p)
    # N = inf: W0 omitted
    q = p.replace(N="inf")
    q.data().save(tmp_path / "i.npz")
    with np.load(tmp_path / "i.npz") as z:
        assert "W0" not in z.files
    # a file problem uses the file's arrays
    r = p.replace(data_file=str(f), seed=99)
    np.testing.assert_array_equal(r.data().X, d.X)


def test_save_times_grid():
    t = save_times(1000, extra=[7, 333])
    assert t[0] == 0 and t[-1] == 1000 and 7 in t and 333 in t
    assert np.all(np.diff(t) > 0)
    with pytest.raises(ProblemError):
        save_times(100, extra=[101])
    with pytest.raises(ProblemError):
        save_times(100, extra=[2.5])


# ----------------------------------------------- training options: one table (issue 12)
def test_every_training_option_is_declared_once_in_the_table():
    """TRAINING_OPTIONS is the one declaration: each entry is a float Problem field with the
    entry's default, OPTION_FIELDS is its keys, the label-only options are the ones the
    linearised theory covers, and the CLI flags and sweep axes are generated from it."""
    import argparse
    import dataclasses

    from lazyrich_theory.cli.parser import add_model_options
    from lazyrich_theory.experiments.sweep.axes import SWEEPABLE, parse_axis
    from lazyrich_theory.spec.problem import OPTION_FIELDS, OPTION_METHODS, TRAINING_OPTIONS
    from lazyrich_theory.spec.streams import LABEL_ONLY_OPTIONS

    fields = {f.name: f for f in dataclasses.fields(Problem)}
    assert OPTION_FIELDS == tuple(TRAINING_OPTIONS)
    assert LABEL_ONLY_OPTIONS == tuple(n for n, o in TRAINING_OPTIONS.items() if o.linear_theory)
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    flags = {s: a.dest for a in parser._actions for s in a.option_strings}
    for name, opt in TRAINING_OPTIONS.items():
        assert opt.name == name and fields[name].default == opt.default == 0.0
        assert opt.methods <= set(OPTION_METHODS) and "gd" in opt.methods
        assert flags[opt.flag] == name
        assert name in SWEEPABLE
        for alias in (opt.flag.lstrip("-"), *opt.aliases):
            assert parse_axis(alias, "0,0.5").name == name
    only_population = argparse.ArgumentParser()
    add_model_options(only_population, method="population")
    assert "--momentum" not in {s for a in only_population._actions for s in a.option_strings}

