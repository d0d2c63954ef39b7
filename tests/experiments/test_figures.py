"""Every implemented paper figure runs end to end at reduced size and writes its files."""
import csv
import json
import math

import numpy as np
import pytest

from lazyrich_theory.experiments.figures import FIGURES, interpolated_init, make_figure
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.errors import ProblemError

SMALL = dict(D=12, P=40, N=20, test_size=60)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_runs_at_reduced_size(name, tmp_path):
    extra = dict(n_alpha=2, n_eps=2, workers=1) if name == "fig3e" else {}
    if name == "fig3a":
        extra = dict(alphas=(0.5, 1.0, 2.0))
    if name == "fig3b":
        extra = dict(epss=(0.25, 1.0))
    if name == "goldilocks":
        extra = dict(Ps=(20, 60))
    if name == "fig5":
        extra = dict(ks=(1, 90), k_scan_step=30)
    if name == "interpolation":
        extra = dict(svals=(0.0, 0.5))
    if name == "floor-map":
        extra = dict(kappas=(1.5, 3.0), ms=(0.02, 0.5), seeds=2)
    small = {k: v for k, v in SMALL.items() if k not in FIGURES[name].sets}
    info = make_figure(name, str(tmp_path), steps=300, **small, **extra)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "figure.json").read_text())
    assert saved["problem"]["D"] == 12 and saved["steps"] == 300
    if name in ("fig1", "fig4"):
        # the reduced solver overlays the actual numpy network exactly
        assert info["result"]["max_rel_dev_network_vs_reduced"] < 1e-8


def _figure_cli():
    """The ``lazyrich figure`` entry point (lazyrich_theory.cli.figure, once it exists)."""
    return pytest.importorskip("lazyrich_theory.cli.figure").main


def test_figure_cli_errors(tmp_path, capsys):
    main = _figure_cli()
    assert main(["nope", "--out", str(tmp_path)]) == 2
    assert main(["fig4", "--out", str(tmp_path), "--set", "D"]) == 2
    assert main(["fig4", "--out", str(tmp_path), "--set", "D=-1", "--steps", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("lazyrich figure: error:") for line in err)


def test_a_field_the_figure_sets_itself_is_refused(tmp_path, capsys):
    """figure kappa and floor-map set P (= kappa D) and N (= inf) themselves: --set P or N
    would be ignored, so it is refused in one line naming the options to use."""
    main = _figure_cli()
    for name in ("kappa", "floor-map"):
        assert FIGURES[name].sets == ("P", "N")
        assert main([name, "--out", str(tmp_path), "--set", "P=100"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("lazyrich figure: error: --set P: figure") and "kappas" in err
        with pytest.raises(ProblemError, match="sets P, N itself"):
            make_figure(name, str(tmp_path / "api"), N=50)
    assert not (tmp_path / name).exists() and not (tmp_path / "api").exists()


def test_figure_json_names_the_fields_the_figure_sets(tmp_path, capsys):
    """figure.json records P and N of floor-map (and kappa) as set by the figure, not the
    unused values its problem holds; a folder written before (P = 550 recorded) is still the
    same configuration on a rerun, and another one is still refused."""
    main = _figure_cli()
    args = ["floor-map", "--out", str(tmp_path), "--set", "D=12", "--set", "kappas=1.5,3",
            "--set", "ms=0.02,0.5", "--set", "seeds=2"]
    assert main(args) == 0
    saved = tmp_path / "floor-map" / "figure.json"
    info = json.loads(saved.read_text())
    assert info["problem"]["P"] == info["problem"]["N"] == (
        "set by the figure (P = kappa D at each kappa, N = inf)")
    assert info["problem"]["D"] == 12
    for k in ("alpha", "eps"):           # kept as numbers, with how the figure uses them
        assert isinstance(info["problem"][k], float)
        assert info["problem_notes"][k].startswith("only alpha / eps is used")
    info["problem"].update(P=550, N="inf")            # as written before this record
    saved.write_text(json.dumps(info))
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--set", "alpha=2"]) == 2
    assert "alpha 1.0 -> 2" in capsys.readouterr().err


def test_figure_cli_refuses_to_replace_a_figure_of_another_configuration(tmp_path, capsys):
    """A rerun with the same configuration refreshes the figure; another problem, horizon or
    option is refused in one line naming what differs, before anything runs, and leaves the
    saved figure as it was; --overwrite replaces it."""
    main = _figure_cli()
    small = ["--out", str(tmp_path), "--steps", "50", "--set", "D=12", "--set", "P=40",
             "--set", "N=20", "--set", "test_size=60"]
    saved = tmp_path / "fig1" / "figure.json"
    assert main(["fig1", *small]) == 0
    first = saved.read_text()
    assert main(["fig1", *small]) == 0                              # the same run again
    assert main(["fig1", *small, "--set", "method=gd"]) == 0       # an option at its default
    assert main(["fig1", *small, "--set", "alpha=1"]) == 0         # one value, another form
    capsys.readouterr()
    for extra, named in ((["--seed", "1"], "seed 0 -> 1"), (["--steps", "60"], "steps 50 -> 60"),
                         (["--set", "network_steps=20"], "network_steps")):
        assert main(["fig1", *small, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("lazyrich figure: error:") and "\n" not in err, err
        assert "another configuration" in err and named in err and "--overwrite" in err, err
    assert json.loads(saved.read_text())["steps"] == json.loads(first)["steps"] == 50
    assert main(["fig1", *small, "--steps", "60", "--overwrite"]) == 0
    assert json.loads(saved.read_text())["steps"] == 60
    saved.write_text("{not json")
    assert main(["fig1", *small]) == 2
    assert "figure.json is missing or unreadable" in capsys.readouterr().err
    saved.unlink()                  # the figure's PNG with no record of its configuration
    assert main(["fig1", *small]) == 2
    err = capsys.readouterr().err
    assert "holds fig1.png but no figure.json" in err and "--overwrite" in err
    assert main(["fig1", *small, "--overwrite"]) == 0 and saved.is_file()


# ----------------------------------------------------------------------------- fig5
FIG5_SMALL = dict(D=12, P=30, test_size=30, N=2)


def test_fig5_labels_are_ranked_eigenvectors_of_the_direct_ntk(tmp_path):
    """The saved labels are eigenvectors of the initial NTK built here directly from its
    definition (sum over neurons of phi'(h) phi'(h') x.x', convention B units), minus its
    scalar mean, ranked by eigenvalue; and the run is lazy-consistent."""
    info = make_figure("fig5", str(tmp_path), steps=3000, ks=(1, 55), k_scan_step=20,
                       **FIG5_SMALL)
    for f in ("fig5.png", "fig5_curves.csv", "fig5_scan.csv", "fig5_labels.npz", "figure.json"):
        assert (tmp_path / f).stat().st_size > 0
    z = np.load(tmp_path / "fig5_labels.npz")
    p = Problem(**{**FIGURES["fig5"].problem, **FIG5_SMALL})
    U = np.vstack([z["X"], z["X_test"]]) / math.sqrt(p.D)     # convention B -> A units
    H = U @ z["W0"].T
    dphi = 1.0 + p.eps * H
    K = (p.alpha**2 / p.N**2) * (dphi @ dphi.T) * (U @ U.T)
    Kc = K - K.mean()
    lam = np.linalg.eigvalsh(Kc)[::-1]
    for j, k in enumerate(z["ks"]):
        v = z["labels"][:, j]
        assert abs(np.linalg.norm(v) - 1.0) < 1e-12
        rq = v @ Kc @ v
        assert np.linalg.norm(Kc @ v - rq * v) < 1e-10 * abs(lam[0])
        assert abs(rq - lam[k - 1]) < 1e-10 * abs(lam[0])            # ranked descending
    res = info["result"]
    assert res["label_eigen_residual"] < 1e-12
    top, low = res["cells"]
    # the numpy network follows the reduced dynamics on these user labels
    assert top["max_rel_dev_network_vs_reduced"] < 1e-8
    # the top eigenvector is learned and generalises; a bottom one does not (kernel theory)
    assert top["final_train_loss"] < 1e-2 * top["train_label_power"] / FIG5_SMALL["P"]
    assert top["final_test_loss"] < 0.5 * top["initial_test_loss"]
    assert low["final_test_loss"] > 3 * top["final_test_loss"]
    # the top label is learned almost lazily: the closed-form linearised model predicts its
    # final test loss to a small fraction of the initial one
    assert abs(top["final_test_loss"] - top["linearized_final_test_loss"]) \
        < 0.05 * top["initial_test_loss"]
    rows = list(csv.DictReader(open(tmp_path / "fig5_scan.csv")))
    assert [int(float(r["k"])) for r in rows] == [1, 21, 41, 55]


def test_fig5_bad_ks(tmp_path, capsys):
    with pytest.raises(ProblemError, match="ks must be integers in 1..60"):
        make_figure("fig5", str(tmp_path), steps=10, ks=(1, 61), **FIG5_SMALL)
    with pytest.raises(ProblemError, match="ks must be integers in 1..60"):
        make_figure("fig5", str(tmp_path), steps=10, ks="0,3", **FIG5_SMALL)
    main = _figure_cli()
    assert main(["fig5", "--out", str(tmp_path), "--steps", "10", "--set", "D=12",
                 "--set", "P=30", "--set", "test_size=30", "--set", "ks=0,3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ks must be integers" in err[0]


# ----------------------------------------------------------------------------- interpolation
INTERP_SMALL = dict(D=12, P=40, test_size=60)


def test_interpolated_init_reaches_the_exact_solution():
    p = Problem(**{**FIGURES["interpolation"].problem, **INTERP_SMALL, "N": 4, "alpha": 2.0})
    d = p.data()
    W = interpolated_init(p, d, 1.0)
    wbar, M = W.mean(axis=0), W.T @ W / p.N
    assert np.abs(wbar).max() < 1e-12
    np.testing.assert_allclose(0.5 * p.alpha * p.eps * M, p.tau * np.outer(d.beta, d.beta),
                               atol=1e-12)
    np.testing.assert_array_equal(interpolated_init(p, d, 0.0), d.W0)


def test_interpolation_runs_and_the_solution_is_stationary(tmp_path):
    info = make_figure("interpolation", str(tmp_path), steps=400, svals=(0.0, 0.5, 0.9, 1.0),
                       **INTERP_SMALL)
    assert (tmp_path / "interpolation.png").stat().st_size > 10_000
    assert (tmp_path / "interpolation_curves.csv").stat().st_size > 0
    cells = info["result"]["cells"]
    init = [c["initial_test_loss"] for c in cells]
    # closer to the solution, lower initial loss; at s = 1 the loss is zero and stays zero
    assert init[0] > init[1] > init[2] > 1e3 * init[3]
    assert cells[3]["initial_train_loss"] < 1e-25 and cells[3]["final_test_loss"] < 1e-25
    # the paper's NTK alignment at initialisation grows towards the solution
    al = [c["initial_alignment_test"] for c in cells]
    assert al[0] < al[1] < al[2]
    for c in cells:
        assert c["max_rel_dev_network_vs_reduced"] < 1e-8
    assert cells[2]["final_test_loss"] < cells[2]["initial_test_loss"]


@pytest.mark.parametrize("kw, msg", [
    (dict(N=3), "even finite width"),
    (dict(centered=True), "uncentered"),
    (dict(svals=(0.5, 1.5)), "svals must be"),
    (dict(eps=0.0), "eps > 0"),
])
def test_interpolation_bad_input(tmp_path, kw, msg):
    with pytest.raises(ProblemError, match=msg):
        make_figure("interpolation", str(tmp_path), steps=10, **INTERP_SMALL, **kw)


def test_beyond_the_paper_figures_are_not_in_all_and_match_direct_solves(tmp_path):
    """'sgd' and 'options' are extra figures: not run by `all`; each curve is the solver's run
    of that variant (checked against a direct solve)."""
    import lazyrich_theory as lr
    from lazyrich_theory.experiments.figures import OPTION_VARIANTS, SGD_VARIANTS
    from lazyrich_theory.theory.timescales import grokking_metrics

    assert not FIGURES["sgd"].paper and not FIGURES["options"].paper
    for name, variants in (("sgd", SGD_VARIANTS), ("options", OPTION_VARIANTS)):
        out = tmp_path / name
        info = make_figure(name, str(out), steps=400, **SMALL)
        rows = info["result"]["variants"]
        assert [r["variant"] for r in rows] == [v[0] for v in variants]
        base = Problem(**{**FIGURES[name].problem, **SMALL})
        label, changes = variants[-1]
        tr = lr.solve(base.replace(**changes), 400, method="gd")
        m = grokking_metrics(tr.t, tr.train_loss, tr.test_loss)
        assert rows[-1]["final_test_loss"] == pytest.approx(m["final_test_loss"], rel=1e-12)
        finals = {r["final_test_loss"] for r in rows}
        assert len(finals) == len(rows)            # every variant changes the run
        with open(out / f"{name}_curves.csv") as f:
            header = next(csv.reader(f))
        assert header[0] == "t" and len(header) == 1 + 2 * len(rows)


def test_goldilocks_predicts_each_training_sets_limit(tmp_path):
    """Each P gets its training set's interpolant (tau -> inf, N = inf; docs §15), the same
    number entropic_interpolant gives; P <= D gets None and the refusal's reason."""
    from lazyrich_theory.theory.offline import entropic_interpolant
    info = make_figure("goldilocks", str(tmp_path), steps=200, Ps=(10, 40), **SMALL)
    low, high = info["result"]["cells"]
    assert low["predicted_limit_test_loss"] is None
    assert "P" in low["predicted_limit_test_loss_reason"]
    p = Problem(**{**FIGURES["goldilocks"].problem, **SMALL}).replace(P=40)
    want = entropic_interpolant(p.replace(N=math.inf), p.data()).population_loss
    assert high["predicted_limit_test_loss"] == pytest.approx(want, rel=1e-12)
    assert "predicted_limit_test_loss_reason" not in high
    saved = json.loads((tmp_path / "figure.json").read_text())
    assert saved["result"]["cells"][1]["predicted_limit_test_loss"] == pytest.approx(want)


def test_floor_map_cells_are_interpolants_at_alpha_eps_m_b2(tmp_path):
    """Each cell is the interpolant of its training set at alpha eps = m b2 (that set's b2)
    with the problem's alpha / eps; the critical kappa is the seed mean's 1/2 crossing,
    None with a reason when the grid does not bracket it."""
    from lazyrich_theory.theory.offline import entropic_interpolant
    info = make_figure("floor-map", str(tmp_path), D=12, kappas="1.5,3,6", ms="0.01,3",
                       seeds=2)
    res = info["result"]
    assert res["kappas"] == [1.5, 3.0, 6.0] and res["ms"] == [0.01, 3.0]
    assert res["alpha_over_eps"] == pytest.approx(50.0)
    p = Problem(**{**FIGURES["floor-map"].problem, "D": 12}).replace(P=36, seed=1)
    beta = p.data().beta
    ae = 3.0 * float(beta @ beta) / 12
    want = entropic_interpolant(p.replace(alpha=math.sqrt(50 * ae), eps=math.sqrt(ae / 50)))
    rows = list(csv.DictReader(open(tmp_path / "floor_map.csv")))
    cell = [r for r in rows if float(r["kappa"]) == 3 and float(r["m"]) == 3 and r["seed"] == "1"]
    assert float(cell[0]["loss"]) == pytest.approx(want.population_loss, rel=1e-10)
    mean = np.array(res["mean_loss"])
    for j, crit in enumerate(res["critical_kappa"]):
        col = mean[:, j]
        if crit is None:
            assert f"{res['ms'][j]:g}" in res["critical_kappa_reasons"]
            assert (col > 0.5).all() or col[0] <= 0.5
        else:
            i = int(np.flatnonzero(col <= 0.5)[0])
            assert res["kappas"][i - 1] < crit <= res["kappas"][i]
    assert res["critical_kappa"][0] is not None        # the check above has power


@pytest.mark.parametrize("bad, message", [
    (dict(kappas="1,3"), "kappas must be finite numbers > 1"),
    (dict(ms="0,1"), "ms must be finite numbers > 0"),
    (dict(seeds=0), "seeds must be an integer >= 1"),
    (dict(D=500), "D = 500 > 400"),
    (dict(convention="B"), "convention"),
])
def test_floor_map_refuses_bad_input_in_one_line(tmp_path, bad, message):
    with pytest.raises(ProblemError, match=message):
        make_figure("floor-map", str(tmp_path), **{"D": 12, "kappas": "2,3", "ms": "0.1",
                                                   **bad})


def test_kappa_figure_checks_every_kappa_before_running(tmp_path, monkeypatch):
    """The spread closure needs a fast linear column at every kappa where the DMFT runs: a
    slow one at a smaller kappa of ``kappas`` is refused in one line before any flow runs
    (not mid-figure, after the earlier kappas)."""
    import lazyrich_theory.experiments.figures.offline as offline_figures

    def no_run(*args, **kwargs):
        raise AssertionError("a flow ran before the refusal")

    monkeypatch.setattr(offline_figures, "solve", no_run)
    with pytest.raises(ProblemError, match=r"kappa = 1\.5.*use the closure dmft"):
        make_figure("kappa", str(tmp_path / "new" / "kappa"), steps=300, D=12, alpha=1.0,
                    eps=0.1, kappas="3,1.5", method="dmft", column_closure="spread")
    assert not (tmp_path / "new").exists()          # the refusal leaves no empty folders
    with pytest.raises(ProblemError, match="method='spectral' has none"):
        make_figure("kappa", str(tmp_path), steps=300, D=12, kappas="3", method="spectral",
                    column_closure="least_squares")
    with pytest.raises(AssertionError, match="a flow ran"):     # kappa = 3 alone is accepted
        make_figure("kappa", str(tmp_path), steps=300, D=12, alpha=1.0, eps=0.1,
                    kappas="3", method="dmft", column_closure="spread")
