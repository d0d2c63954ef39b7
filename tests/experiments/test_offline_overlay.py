"""The offline (P = kappa D) theory wired into ``lazyrich solve`` and ``lazyrich phase``
(issue 13, "Wire it in"): the solve's ``offline_population_loss`` column is the spectral
closure's population loss at N = inf, at exactly the save times; the phase result's
``offline_test_time`` is ``phase_boundary_times`` on the alpha x eps grid; outside the
theory's domain neither is computed, and the reason says why."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lazyrich_theory.experiments.sweep import (
    RESULT_METRICS,
    PhaseResult,
    load_phase,
    sweep,
)
from lazyrich_theory.experiments.sweep.axes import Axis
from lazyrich_theory.experiments.sweep.offline import OFFLINE_VARIABLE
from lazyrich_theory.experiments.with_theory import (
    OFFLINE_COLUMN,
    OFFLINE_KEYS,
    offline_overlay,
    offline_reason,
    solve_with_theory,
)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline import (
    KAPPA_SPECTRAL,
    offline_inputs,
    offline_summary,
    offline_theory,
    phase_boundary_times,
)

#: kappa = 6 >= KAPPA_SPECTRAL, finite N (the theory is drawn at N = inf)
BASE = Problem(D=20, P=120, N=10, alpha=1.0, eps=0.2, eta0=1.0, seed=0, test_size=100)
STEPS = 3000


# ------------------------------------------------------------------------------ solve
@pytest.fixture(scope="module")
def solved():
    data = BASE.data()
    return solve_with_theory(BASE, STEPS, method="gd", data=data), data


def test_column_is_the_spectral_closure_at_n_inf_at_the_save_times(solved):
    traj, data = solved
    off = offline_theory(BASE.replace(N=math.inf), STEPS, method="spectral",
                         save_times=traj.t, data=data)
    assert np.array_equal(off.t, traj.t)
    assert np.array_equal(traj[OFFLINE_COLUMN], off.population_loss)
    s, ref = traj.info["summary"], offline_summary(off)
    for key, src in OFFLINE_KEYS.items():
        if key != "offline_regime":
            assert s[key] == ref[src], key
    # the regime note is asymptotic's, with the keys solve writes (offline_ prefixed), and
    # where it points to the interpolant's key this run did not ask for, how to get it
    hint = "offline_predicted_limit_test_loss (the interpolant, which --limit-loss interpolant adds"
    assert s["offline_regime"] == ref["regime"].replace("predicted_", "offline_predicted_").replace(
        "offline_predicted_limit_test_loss (the interpolant", hint)
    assert hint in s["offline_regime"]
    assert s["offline_predicted_final_test_loss"] > 0
    assert set(s["reasons"]) == {k for k, v in s.items() if v is None}


def test_the_problem_itself_is_refused_at_finite_n_but_drawn_at_n_inf():
    assert offline_reason(BASE) is None       # N = 10: the N = inf theory is drawn
    assert offline_reason(BASE.replace(N=math.inf)) is None
    assert offline_reason(BASE.replace(convention="B")) is None


@pytest.mark.parametrize("change, words", [
    ({"target": "hermite:coef=0.5/0/0.5/0.2"}, "paper's teacher"),
    ({"centered": False}, "uncentered"),
    ({"momentum": 0.5}, "momentum"),
    ({"P": 80}, f"< {KAPPA_SPECTRAL:g}"),
])
def test_absent_with_a_reason_outside_the_domain(change, words):
    problem = BASE.replace(**change)
    why = offline_reason(problem)
    assert why is not None and words in why and "\n" not in why
    column, summary, reasons = offline_overlay(problem, np.array([0.0, 10.0]))
    assert column is None and summary == dict.fromkeys(OFFLINE_KEYS)
    assert reasons == dict.fromkeys(OFFLINE_KEYS, why)


def test_solve_without_the_theory_has_no_column_and_says_why():
    traj = solve_with_theory(BASE.replace(centered=False), 200, method="gd")
    assert OFFLINE_COLUMN not in traj.columns
    s = traj.info["summary"]
    for key in OFFLINE_KEYS:
        assert s[key] is None and "uncentered" in s["reasons"][key]


def test_the_kappa_reason_names_the_dmft_and_its_cost():
    why = offline_reason(BASE.replace(P=60))
    assert "DMFT" in why and "too slow" in why and "--method dmft" in why
    for asked in ("spectral", "dmft"):            # asked for explicitly: drawn at any kappa
        assert offline_reason(BASE.replace(P=60), asked) is None


RANK1 = Problem(D=40, P=120, N=math.inf, alpha=1.0, eps=0.25, eta0=4.0, init="aligned:1:0.6",
                seed=0, test_size=50)


def test_finite_rank_init_draws_the_rindex_dmft_on_request():
    """offline='rindex': the column is offline_theory's r-index curve at the save times, the
    summary says which theory; by default a finite-rank init gets no curve and the reason
    names the option."""
    why = offline_reason(RANK1)
    assert "--offline-theory rindex" in why and "\n" not in why
    traj = solve_with_theory(RANK1, 200, method="gd", offline="rindex")
    off = offline_theory(RANK1, 200, save_times=traj.t)
    assert np.array_equal(traj[OFFLINE_COLUMN], off.population_loss)
    s = traj.info["summary"]
    assert s["offline_method"] == "rindex"
    assert s["offline_predicted_final_test_loss"] == offline_summary(off)[
        "predicted_final_test_loss"]
    none = solve_with_theory(RANK1, 20, method="gd", offline="none")
    assert OFFLINE_COLUMN not in none.columns
    assert "not requested" in none.info["summary"]["reasons"]["offline_method"]


def _loss_labels(traj) -> list[str]:
    """The legend labels of the loss panel drawn for ``traj``."""
    import matplotlib.pyplot as plt

    from lazyrich_theory.plotting.trajectory import draw_losses

    fig, ax = plt.subplots()
    draw_losses(ax, traj)
    labels = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    return labels


def test_solve_draws_the_dmft_under_the_column_closure():
    """offline='dmft', column_closure='least_squares': the column is offline_theory's DMFT
    under closure A7 at the save times (summary key offline_column_closure, the legend says
    "+ A7"); with any other offline theory, or an unknown closure, it is refused before the
    solve."""
    p = Problem(D=20, P=60, N=math.inf, alpha=1.0, eps=0.02, eta0=1.0, seed=0, test_size=50)
    traj = solve_with_theory(p, 3000, method="gd", offline="dmft",
                             column_closure="least_squares")
    off = offline_theory(p, 3000, method="dmft", save_times=traj.t,
                         column_closure="least_squares")
    plain = offline_theory(p, 3000, method="dmft", save_times=traj.t)
    assert np.array_equal(traj[OFFLINE_COLUMN], off.population_loss)
    assert not np.allclose(off.population_loss, plain.population_loss, rtol=1e-3)
    s = traj.info["summary"]
    assert (s["offline_method"], s["offline_column_closure"]) == ("dmft", "least_squares")
    labels = _loss_labels(traj)
    assert "offline theory (N = ∞, DMFT + A7)" in labels
    for offline in ("auto", "spectral", "none"):
        with pytest.raises(ProblemError, match="needs offline='dmft'"):
            solve_with_theory(p, 10, offline=offline, column_closure="least_squares")
    with pytest.raises(ProblemError, match="column_closure must be one of"):
        solve_with_theory(p, 10, offline="dmft", column_closure="lsq")
    with pytest.raises(ProblemError, match="r-index DMFT, which is exact"):
        offline_theory(RANK1, 10, column_closure="least_squares")


def test_solve_draws_the_mean_of_dmft_draws_with_its_band():
    """dmft_draws=2: the column is offline_theory's mean of two draws at the save times, its
    standard error a column of its own and a summary key, drawn as a band; refused without
    the DMFT or with a bad count, before the solve."""
    p = Problem(D=20, P=60, N=math.inf, alpha=1.0, eps=0.02, eta0=1.0, seed=0, test_size=50)
    traj = solve_with_theory(p, 3000, method="gd", offline="dmft", dmft_draws=2)
    off = offline_theory(p, 3000, method="dmft", save_times=traj.t, draws=2)
    assert np.array_equal(traj[OFFLINE_COLUMN], off.population_loss)
    assert np.array_equal(traj[OFFLINE_COLUMN + "_mc_se"], off.extra["population_loss_mc_se"])
    assert traj[OFFLINE_COLUMN + "_mc_se"][-1] > 0
    s, t = traj.info["summary"], offline_summary(off)
    assert s["offline_dmft_draws"] == 2
    assert s["offline_predicted_final_test_loss_mc_se"] == t["predicted_final_test_loss_mc_se"]
    column, summary, _ = offline_overlay(p, traj.t, method="dmft", draws=2)
    assert np.array_equal(column, off.population_loss) and summary["offline_dmft_draws"] == 2
    one = solve_with_theory(p, 3000, method="gd", offline="dmft")
    assert OFFLINE_COLUMN + "_mc_se" not in one.extra
    assert "offline_dmft_draws" not in one.info["summary"]
    labels = _loss_labels(traj)
    assert "offline theory ± 2 standard errors (2 Monte Carlo draws)" in labels
    for offline in ("auto", "spectral", "none"):
        with pytest.raises(ProblemError, match="needs offline='dmft'"):
            solve_with_theory(p, 10, offline=offline, dmft_draws=3)
    for bad in (0, 1.5, True):
        with pytest.raises(ProblemError, match=r"dmft_draws \(Monte Carlo draws"):
            solve_with_theory(p, 10, offline="dmft", dmft_draws=bad)


def test_kappa_figure_with_a_finite_rank_init():
    """``lazyrich figure kappa --set init=aligned:1:0.6``: the r-index DMFT against the exact
    discrete GD (the DMFT is that of the GD itself), no spectral curve; the legend says so."""
    from lazyrich_theory.experiments.figures.offline import kappa
    from lazyrich_theory.plotting.offline import plot_kappa

    fig = kappa(RANK1, 100, kappas="2,4", Ns=40)
    runs = fig.plot["runs"]
    assert [r["method"] for r in runs] == ["rindex", "rindex"]
    assert all(r["exact_method"] == "gd" and r["spectral_test"] is None for r in runs)
    assert all(r["limit"] is None for r in runs)          # the interpolant is for M0 = I
    assert all("init='aligned:1:0.6'" in r["limit_reason"] for r in fig.result["runs"])
    p4 = RANK1.replace(P=160)
    ref = offline_theory(p4, 100, Ns=40)
    np.testing.assert_array_equal(runs[1]["theory_test"], ref.population_loss)
    texts = [t.get_text() for leg in plot_kappa(runs, problem=RANK1).legends
             for t in leg.get_texts()]
    assert "exact GD (N = ∞)" in texts and any("r-index DMFT" in t for t in texts)


@pytest.mark.parametrize("problem, offline, words", [
    (BASE, "rindex", "lowrank:R or aligned:R:C"),
    (RANK1, "dmft", "init"),
    (RANK1.replace(eta0=400.0), "rindex", "too coarse"),
])
def test_an_explicit_theory_that_does_not_apply_is_refused_before_solving(problem, offline,
                                                                           words):
    with pytest.raises(ProblemError, match=words):
        solve_with_theory(problem, 20_000, method="gd", offline=offline)
    with pytest.raises(ProblemError, match="offline must be one of"):
        solve_with_theory(problem, 10, offline="closure")


# ------------------------------------------------------------------------------ phase
PHASE = Problem(D=20, P=120, N=10, alpha=1.0, eps=0.2, eta0=1.0, seed=0, test_size=100)
PHASE_STEPS = 400


@pytest.fixture(scope="module")
def phase(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph") / "ph"
    res = sweep(PHASE, {"eps": "0.1,0.4", "alpha": "0.5,2"}, PHASE_STEPS, seeds=2, workers=1,
                out=out, progress=False, plot=True, threshold=0.3)
    return res, out


def test_phase_offline_column_is_phase_boundary_times(phase):
    res, _ = phase
    assert res.dims == ("eps", "alpha", "seed")
    got = np.asarray(res[OFFLINE_VARIABLE], float)
    assert got.shape == res.shape
    alpha = [float(a) for a in res.coords["alpha"]]
    eps = [float(e) for e in res.coords["eps"]]
    for j, seed in enumerate(res.coords["seed"]):
        inp = offline_inputs(PHASE.replace(N=math.inf, seed=int(seed)))
        ref = phase_boundary_times(inp.kappa, inp.b2, inp.D, inp.eta0, alpha, eps,
                                   PHASE_STEPS, threshold=0.3)["threshold_time"]
        assert np.array_equal(got[..., j], ref.T), seed    # (alpha, eps) -> (eps, alpha)
    assert np.isfinite(got).any()
    assert res.offline["reason"] is None and res.offline["method"] == "spectral"


def test_phase_offline_column_in_every_file(phase):
    res, out = phase
    header = (out / "phase.csv").read_text().splitlines()[0].split(",")
    # the existing columns unchanged, one added at the end
    assert header == ["eps", "alpha", "seed", "cell_id", "status", *RESULT_METRICS,
                      OFFLINE_VARIABLE]
    mean_header = (out / "phase_mean.csv").read_text().splitlines()[0].split(",")
    assert mean_header[-2:] == [f"{OFFLINE_VARIABLE}_mean", f"{OFFLINE_VARIABLE}_std"]
    side = json.loads((out / "phase.json").read_text())
    assert OFFLINE_VARIABLE in side["variables"]
    assert side["offline_theory"]["reason"] is None
    back = load_phase(out)
    assert np.array_equal(back[OFFLINE_VARIABLE], res[OFFLINE_VARIABLE])
    assert back.offline == res.offline
    assert back.data_vars[-2:] == ("status", "cell_id")
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(out / "phase.nc", engine="scipy") as ds:
        again = PhaseResult.from_xarray(ds.load())
    assert np.array_equal(again[OFFLINE_VARIABLE], res[OFFLINE_VARIABLE])
    assert again.offline == res.offline


def test_phase_plot_draws_the_offline_boundary(phase):
    res, _ = phase
    fig = res.plot()
    texts = [t.get_text() for ax in fig.axes if ax.get_legend()
             for t in ax.get_legend().get_texts()]
    assert any(t.startswith("offline theory (unfitted)") for t in texts), texts


@pytest.mark.parametrize("vary, base, words", [
    ({"alpha": "0.5,2"}, PHASE, "alpha x eps"),
    ({"alpha": "0.5,2", "eps": "0.1,0.4", "D": "20,30"}, PHASE, "alpha x eps"),
    ({"alpha": "0.5,2", "eps": "0.1,0.4"}, PHASE.replace(P=60), f"< {KAPPA_SPECTRAL:g}"),
    ({"alpha": "0.5,2", "eps": "0.1,0.4"}, PHASE.replace(centered=False), "uncentered"),
])
def test_phase_offline_not_computed_with_a_reason(vary, base, words):
    res = sweep(base, vary, 50, workers=1, progress=False, plot=False)
    assert OFFLINE_VARIABLE not in res
    assert res.offline["method"] is None
    assert words in res.offline["reason"] and "\n" not in res.offline["reason"]


def test_phase_offline_none_and_bad_choice():
    res = sweep(PHASE, {"eps": "0.1,0.4", "alpha": "0.5,2"}, 50, workers=1, progress=False,
                plot=False, offline="none")
    assert OFFLINE_VARIABLE not in res and res.offline["method"] is None
    assert "offline='none'" in res.offline["reason"]
    with pytest.raises(ProblemError,
                       match="offline must be one of spectral, dmft, interpolant, none"):
        sweep(PHASE, {"eps": "0.1,0.4", "alpha": "0.5,2"}, 50, workers=1, progress=False,
              plot=False, offline="exact")


def test_phase_offline_dmft_boundary(monkeypatch):
    """offline='dmft': the column is phase_boundary_times(method='dmft') (here with a small
    Monte Carlo, injected), the method is recorded and named in the plot's legend."""
    import lazyrich_theory.experiments.sweep.offline as off

    calls = []

    def small(*args, **kw):
        calls.append(kw["method"])
        return phase_boundary_times(*args, **kw, dmft_options={"Ns": 40})

    monkeypatch.setattr(off, "phase_boundary_times", small)
    lines = []
    res = sweep(PHASE, {"eps": "0.1,0.4", "alpha": "0.5,2"}, PHASE_STEPS, workers=1,
                progress=False, plot=False, threshold=0.3, offline="dmft", log=lines.append)
    assert calls == ["dmft"] and res.offline["method"] == "dmft"
    assert "DMFT" in res.offline["theory"] and any("DMFT" in s for s in lines)
    # one line per distinct alpha eps: 0.05, 0.2 (twice on the grid), 0.8
    nodes = [s for s in lines if s.startswith("offline DMFT node alpha eps = ")]
    assert len(nodes) == 3
    assert all(", column closure " in s for s in nodes), nodes     # the one each node ran
    # and phase.json's record of it (one seed): the same nodes, each with its closure
    (recorded,) = res.offline["dmft_nodes"]
    assert [f"{n['alpha_eps']:.4g}" for n in recorded] == [
        s.split("alpha eps = ")[1].split(" ")[0] for s in nodes]
    assert [n["column_closure"] for n in recorded] == [
        s.split("column closure ")[1].split(")")[0] for s in nodes]
    assert {n["column_closure"] for n in recorded} <= {"spread", "dmft"}
    inp = offline_inputs(PHASE.replace(N=math.inf))
    ref = phase_boundary_times(inp.kappa, inp.b2, inp.D, inp.eta0, [0.5, 2.0], [0.1, 0.4],
                               PHASE_STEPS, threshold=0.3, method="dmft",
                               dmft_options={"Ns": 40})["threshold_time"]
    assert np.array_equal(np.asarray(res[OFFLINE_VARIABLE], float)[..., 0], ref.T)
    fig = res.plot()
    texts = [t.get_text() for ax in fig.axes if ax.get_legend()
             for t in ax.get_legend().get_texts()]
    assert any(t.startswith("offline theory (unfitted)") and "DMFT" in t for t in texts), texts


def test_phase_offline_dmft_failure_keeps_the_cells(monkeypatch, tmp_path):
    """A DMFT node whose scheme blows up (DivergenceError) leaves the boundary out with its
    reason, naming the node; the cells and the phase files are still written."""
    import lazyrich_theory.experiments.sweep.offline as off
    from lazyrich_theory.errors import DivergenceError

    def unstable(*args, **kw):
        raise DivergenceError("the DMFT node alpha eps = 0.2 (alpha/eps = 1.25): the DMFT's "
                              "causal scheme became unstable at tau = 32.5", float("nan"))

    monkeypatch.setattr(off, "phase_boundary_times", unstable)
    out = tmp_path / "ph"
    res = sweep(PHASE, {"eps": "0.1,0.4", "alpha": "0.5,2"}, PHASE_STEPS, workers=1,
                progress=False, plot=False, threshold=0.3, offline="dmft", out=str(out))
    assert OFFLINE_VARIABLE not in res and res.offline["method"] is None
    assert res.offline["reason"].startswith("the dmft boundary could not be drawn: the DMFT "
                                            "node alpha eps = 0.2 (alpha/eps = 1.25)")
    assert (out / "phase.json").is_file() and (out / "phase.csv").is_file()
    assert json.loads((out / "phase.json").read_text())["offline_theory"]["reason"] == (
        res.offline["reason"])


def test_phase_offline_interpolant_boundary():
    """offline='interpolant': the spectral closure's threshold time where the mirror-descent
    interpolant's floor (interpolant_floors, recorded per seed) is under the threshold, inf
    elsewhere; the legend names the floor."""
    from lazyrich_theory.theory.offline.implicit_bias import interpolant_floors

    alpha, eps, thr = [0.25, 0.5], [0.8, 3.2], 0.05
    lines = []
    res = sweep(PHASE, {"eps": "0.8,3.2", "alpha": "0.25,0.5"}, PHASE_STEPS, workers=1,
                progress=False, plot=False, threshold=thr, offline="interpolant",
                log=lines.append)
    assert res.offline["method"] == "interpolant" and res.offline["reason"] is None
    p = PHASE.replace(N=math.inf)
    floors = interpolant_floors(p, alpha, eps)
    assert np.array_equal(np.asarray(res.offline["floors"][0]), floors)
    assert "[seed][alpha][eps]" in res.offline["floors_definition"]
    inp = offline_inputs(p)
    spec = phase_boundary_times(inp.kappa, inp.b2, inp.D, inp.eta0, alpha, eps, PHASE_STEPS,
                                threshold=thr)["threshold_time"]
    want = np.where(floors < thr, spec, math.inf)
    assert np.array_equal(np.asarray(res[OFFLINE_VARIABLE], float)[..., 0], want.T)
    assert sum(s.startswith("offline interpolant floors alpha = ") for s in lines) == 2
    fig = res.plot()
    texts = [t.get_text() for ax in fig.axes if ax.get_legend()
             for t in ax.get_legend().get_texts()]
    assert any("interpolant floor" in t for t in texts), texts


def test_phase_offline_interpolant_masks_cells_over_the_floor(monkeypatch):
    """A cell whose floor is at or over the threshold is not reached, whatever the spectral
    time (injected floors: one under, one at, one over the threshold)."""
    import lazyrich_theory.experiments.sweep.offline as off

    monkeypatch.setattr(off, "interpolant_floors",
                        lambda problem, a, e, log=None: np.array([[0.01, 0.3], [0.3, 0.5]]))
    axes = [Axis("alpha", (0.5, 1.0)), Axis("eps", (0.4, 1.6)), Axis("seed", (0,))]
    spec, _, _, _, _ = off._times(PHASE, axes, PHASE_STEPS, 0.3, "spectral", None)
    got, _, _, floors, _ = off._times(PHASE, axes, PHASE_STEPS, 0.3, "interpolant", None)
    assert floors == [[[0.01, 0.3], [0.3, 0.5]]]
    assert got[0, 0, 0] == spec[0, 0, 0] and np.isfinite(spec).sum() > 1
    assert np.isinf(got[0, 1, 0]) and np.isinf(got[1, 0, 0]) and np.isinf(got[1, 1, 0])


def test_phase_offline_interpolant_init_scale_and_small_kappa():
    """The interpolant's boundary below kappa = 5 (where the default spectral one is not
    drawn) and with an init scale sigma: the floors are those of the run (sigma alpha,
    sigma eps) from init_scale 1; convention B is refused with its reason."""
    import lazyrich_theory.experiments.sweep.offline as off
    from lazyrich_theory.theory.offline.implicit_bias import interpolant_floors

    base = PHASE.replace(P=60, init_scale=2.0)                       # kappa = 3
    res = sweep(base, {"eps": "0.8,3.2", "alpha": "0.25,0.5"}, PHASE_STEPS, workers=1,
                progress=False, plot=False, threshold=0.05, offline="interpolant")
    assert res.offline["method"] == "interpolant" and res.offline["reason"] is None
    ref = interpolant_floors(base.replace(N=math.inf, init_scale=1.0), [0.5, 1.0], [1.6, 6.4])
    assert np.allclose(res.offline["floors"][0], ref, rtol=1e-9, atol=0)
    axes = [Axis("alpha", (0.5, 1.0)), Axis("eps", (0.4, 1.6)), Axis("seed", (0,))]
    assert "kappa" in off._reason(base, axes, True, "spectral")
    assert off._reason(base, axes, True, "interpolant") is None
    assert "convention" in off._reason(base.replace(convention="B"), axes, True, "interpolant")


def test_solve_limit_loss_is_the_interpolant_at_n_inf():
    """solve_with_theory(limit="interpolant"): summary key offline_predicted_limit_test_loss is
    the interpolant's tau -> inf loss of the same training set at N = inf (whatever N); by
    default absent; refused before the solve where it does not apply."""
    from lazyrich_theory.experiments.with_theory import LIMIT_KEY, MEASURED_RELATIVE_KEY
    from lazyrich_theory.theory.offline import entropic_interpolant

    p = PHASE.replace(P=60)                                         # N = 10, kappa = 3
    tr = solve_with_theory(p, 50, limit="interpolant")
    s = tr.info["summary"]
    ref = entropic_interpolant(p.replace(N=math.inf)).population_loss
    assert s[LIMIT_KEY] == ref and 0.05 < ref < 2
    # next to it, in the same relative units: the run's own final population loss / initial
    assert s[MEASURED_RELATIVE_KEY] == pytest.approx(
        tr.population_loss[-1] / tr.population_loss[0], rel=1e-12)
    none = solve_with_theory(p, 50).info["summary"]
    assert LIMIT_KEY not in none and LIMIT_KEY not in none["reasons"]
    assert MEASURED_RELATIVE_KEY not in none
    with pytest.raises(ProblemError, match="convention"):
        solve_with_theory(p.replace(convention="B"), 50, limit="interpolant")
    with pytest.raises(ProblemError, match="limit must be one of"):
        solve_with_theory(p, 50, limit="dmft")


def test_kappa_figure_iid_limit_is_the_interpolant():
    """The kappa figure's ``limit`` (iid init): the interpolant's tau -> inf loss of each
    kappa's own training set, in the plotted runs and in the result."""
    from lazyrich_theory.experiments.figures.offline import kappa
    from lazyrich_theory.theory.offline.implicit_bias import entropic_interpolant

    base = Problem(D=20, P=60, N=math.inf, alpha=1.0, eps=0.05, eta0=1.0, test_size=50)
    fig = kappa(base, 300, kappas="2,6", Ns=40)
    for r, row in zip(fig.plot["runs"], fig.result["runs"]):
        ref = entropic_interpolant(base.replace(P=r["P"])).population_loss
        assert r["limit"] == ref == row["limit"] and row["limit_reason"] is None


def test_kappa_figure_column_closure():
    """``--set column_closure=least_squares``: the DMFT's kappas run under closure A7 (recorded
    per run, named in the legend), the spectral closure's are left alone; a finite-rank init
    or an unknown closure is refused in one line."""
    from lazyrich_theory.experiments.figures.offline import kappa
    from lazyrich_theory.plotting.offline import _method

    base = Problem(D=20, P=60, N=math.inf, alpha=1.0, eps=0.02, eta0=1.0, test_size=50)
    plain = kappa(base, 3000, kappas="3,6", Ns=40, spectral_everywhere=False)
    a7 = kappa(base, 3000, kappas="3,6", Ns=40, spectral_everywhere=False,
               column_closure="least_squares")
    (p3, p6), (a3, a6) = plain.result["runs"], a7.result["runs"]
    assert (p3["method"], p6["method"]) == ("dmft", "spectral")
    assert (a3["column_closure"], a6["column_closure"]) == ("least_squares", None)
    assert a3["theory_final"] != p3["theory_final"] and a6["theory_final"] == p6["theory_final"]
    assert _method(a3) == "DMFT + A7" and _method(p3) == "DMFT + spread"   # the default here
    assert _method({"method": "dmft", "column_closure": "dmft"}) == "DMFT + as derived"
    assert _method(p6) == "spectral closure"
    with pytest.raises(ProblemError, match="column_closure must be one of"):
        kappa(base, 300, kappas="3", Ns=40, column_closure="lsq")
    with pytest.raises(ProblemError, match="r-index DMFT"):
        kappa(base.replace(init="lowrank:1"), 300, kappas="3", Ns=40,
              column_closure="least_squares")


def test_kappa_figure_dmft_draws():
    """``--set dmft_draws=2``: where the DMFT runs the theory is the mean of two draws (the
    same as offline_theory's), with its standard error in the CSV, the result and a band;
    the spectral closure's kappas are left alone; refused in one line for method='spectral'
    and a finite-rank init, and below 1."""
    from lazyrich_theory.experiments.figures.offline import kappa
    from lazyrich_theory.plotting.offline import plot_kappa

    base = Problem(D=20, P=60, N=math.inf, alpha=1.0, eps=0.02, eta0=1.0, test_size=50)
    fig = kappa(base, 3000, kappas="3,6", Ns=40, spectral_everywhere=False, dmft_draws=2)
    r3, r6 = fig.result["runs"]
    mean = offline_theory(base.replace(P=60), 3000, method="dmft", Ns=40, draws=2)
    pop = np.asarray(mean.population_loss)
    assert r3["dmft_draws"] == 2 and r3["theory_final"] == pytest.approx(pop[-1] / pop[0],
                                                                        rel=1e-12)
    assert r3["theory_final_mc_se"] == pytest.approx(
        mean.extra["population_loss_mc_se"][-1] / pop[0], rel=1e-12)
    assert r6["method"] == "spectral" and r6["theory_final_mc_se"] is None
    header = fig.tables["kappa_curves.csv"][0]
    assert "theory_test_se_k3" in header and "theory_test_se_k6" not in header
    drawn = plot_kappa(**fig.plot)
    assert len(drawn.axes[0].collections) == 1             # kappa = 3's band only
    texts = [t.get_text() for leg in drawn.legends for t in leg.get_texts()]
    assert "offline theory ± 2 standard errors (2 Monte Carlo draws)" in texts
    for bad, match in (({"method": "spectral"}, "runs none"), ({"dmft_draws": 0}, ">= 1")):
        with pytest.raises(ProblemError, match=match):
            kappa(base, 300, kappas="3", Ns=40, **{"dmft_draws": 2, **bad})
    with pytest.raises(ProblemError, match="runs none"):
        kappa(base.replace(init="lowrank:1"), 300, kappas="3", Ns=40, dmft_draws=2)
    with pytest.raises(ProblemError, match="at none of these kappas"):
        kappa(base, 300, kappas="6,11", Ns=40, dmft_draws=2)
