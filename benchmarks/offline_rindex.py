"""The r-index DMFT against the exact flow at growing D (issue 13; docs/offline_theory.md §13).

Finite-rank inits at N = inf (``aligned:R:C``, ``lowrank:R``), centered (one case
uncentered), convention A,
alpha = 1, eps = 0.25.  eta0 = d alpha D / (2 eps) so that one GD step is d = 0.05 in
tau = 2 eta0 eps t / (alpha D): the DMFT is then the D -> inf limit of the very same GD (no time
discretisation between them).  Every seed's teacher is rescaled to |beta|^2 = D (b2 = 1,
direction kept), so the D -> inf theory is one curve per case for ``aligned`` (its only other
input, the overlap C, is exact); ``lowrank`` has overlap |P_V betahat| = O(D^-1/2) and is run
per seed (conditioned on the seed's init frame).  The DMFT curve for ``aligned`` is the mean of
``MC`` Monte Carlo seeds at Ns = 800 (their spread is reported).

    python benchmarks/offline_rindex.py run      # -> offline_rindex.json (resumable)
    python benchmarks/offline_rindex.py table    # -> offline_rindex.md
    python benchmarks/offline_rindex.py plot     # -> docs/gallery/rindex.png
    python benchmarks/offline_rindex.py kappa    # -> offline_rindex_kappa.json, a table (~15 min)
    python benchmarks/offline_rindex.py cross    # cross-response diagnostic (docs §12.4, ~15 min)

Cost (2 shared cores): ~15 s per DMFT run (R = 1), ~40 s (R = 2); exact flows seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import run_resumable
from lazyrich_theory.theory.offline.rindex import rindex_inputs, rindex_tau_curves

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_rindex.json"
ALPHA, EPS, DTAU, TAU_MAX, NS, MC = 1.0, 0.25, 0.05, 10.0, 800, 8
STEPS = int(round(TAU_MAX / DTAU))
TAUS = (1.0, 2.0, 4.0, 6.0, 10.0)
EVERY = 5                                    # the series are stored every EVERY GD steps
DS = (50, 100, 200, 400)
SEEDS = tuple(range(8))
#: name -> (init, kappa, centered)
CASES = {"aligned:1:0.6, kappa = 4": ("aligned:1:0.6", 4.0, True),
         "aligned:2:0.6, kappa = 4": ("aligned:2:0.6", 4.0, True),
         "aligned:1:0.6, kappa = 1.5": ("aligned:1:0.6", 1.5, True),
         "aligned:1:0.6, kappa = 4, uncentered": ("aligned:1:0.6", 4.0, False),
         "lowrank:1, kappa = 4": ("lowrank:1", 4.0, True)}


def _problem(init, kappa, centered, D, seed):
    return lr.Problem(D=D, P=int(round(kappa * D)), N=math.inf, alpha=ALPHA, eps=EPS,
                      eta0=DTAU * ALPHA * D / (2 * EPS), init=init, centered=centered,
                      convention="A", seed=seed, test_size=100)


def _unit_teacher(p):
    """The problem's data with beta rescaled to |beta|^2 = D (b2 = 1), labels recomputed."""
    d = p.data()
    beta = np.asarray(d.beta) * math.sqrt(p.D) / np.linalg.norm(d.beta)
    return dataclasses.replace(d, beta=beta, y=p.tau * (d.X @ beta) ** 2,
                               y_test=p.tau * (d.X_test @ beta) ** 2)


def _series(cols, L0):
    return {k: [float(f"{v / L0:.6g}") for v in cols[k][::EVERY]] for k in cols}


def _exact(p):
    data = _unit_teacher(p)
    tr = lr.solve(p, STEPS, save_times=np.arange(STEPS + 1), data=data)
    assert np.array_equal(tr.t, np.arange(STEPS + 1))
    cols = {"train": tr.train_loss, "pop": tr.population_loss, "lin": tr.linear_power}
    return _series(cols, tr.population_loss[0])


def _dmft(p, mc_seed):
    inp = dataclasses.replace(rindex_inputs(p, _unit_teacher(p)), b2=1.0)
    c = rindex_tau_curves(inp, STEPS, Ns=NS, seed=mc_seed, max_points=STEPS + 1)
    cols = {"train": c["train_loss"], "pop": c["population_loss"], "lin": c["linear_power"]}
    return {**_series(cols, c["population_loss"][0]), "overlap": inp.overlap}


def _jobs():
    for name, case in CASES.items():
        for D in DS:
            for seed in SEEDS:
                yield f"{name}|{D}|{seed}|exact", (lambda c=case, D=D, s=seed:
                                                   _exact(_problem(*c, D, s)))
                if case[0].startswith("lowrank"):
                    yield f"{name}|{D}|{seed}|dmft", (lambda c=case, D=D, s=seed:
                                                      _dmft(_problem(*c, D, s), s))
        if case[0].startswith("aligned"):       # the theory does not depend on D or the seed
            for mc in range(MC):
                yield f"{name}|inf|{mc}|dmft", (lambda c=case, mc=mc:
                                                 _dmft(_problem(*c, 100, 0), mc))


def run():
    run_resumable(OUT, _jobs(), indent=None)


def _stack(done, name, D, kind, seeds, full=False):
    idx = slice(None) if full else [int(round(x / DTAU)) // EVERY for x in TAUS]
    return {q: np.array([done[f"{name}|{D}|{s}|{kind}"][q] for s in seeds])[:, idx]
            for q in ("train", "pop", "lin")}


def _case_rows(done, name):
    aligned = CASES[name][0].startswith("aligned")
    th_all = _stack(done, name, "inf", "dmft", range(MC)) if aligned else None
    rows = []
    for D in DS:
        ex = _stack(done, name, D, "exact", SEEDS)
        th = th_all if aligned else _stack(done, name, D, "dmft", SEEDS)
        for q in ("train", "pop"):
            e, t = ex[q].mean(0), th[q].mean(0)
            se_e = ex[q].std(0, ddof=1) / math.sqrt(len(SEEDS))
            se_t = th[q].std(0, ddof=1) / math.sqrt(th[q].shape[0])
            se = np.sqrt(se_e**2 + se_t**2) if aligned else \
                (ex[q] - th[q]).std(0, ddof=1) / math.sqrt(len(SEEDS))
            cells = " | ".join(f"{e[i]:.4f} / {t[i]:.4f} ({t[i] - e[i]:+.4f} ± {se[i]:.4f})"
                               for i in range(len(TAUS)))
            rows.append(f"| {D} | {q} | {cells} |")
    return rows


def table():
    done = json.loads(OUT.read_text())
    lines = ["# The r-index DMFT against the exact flow (docs/offline_theory.md §13)", "",
             f"alpha = {ALPHA}, eps = {EPS}, N = inf, b2 = 1 (every seed's teacher "
             f"rescaled), one GD step = {DTAU} in tau; exact: mean of {len(SEEDS)} seeds; DMFT: "
             f"Ns = {NS}, mean of {MC} Monte Carlo seeds (aligned: one curve for all D) or one "
             "run per seed conditioned on its init overlap (lowrank). Cells: exact / DMFT "
             "(DMFT - exact ± standard error of that difference), losses / initial population "
             "loss.", ""]
    head = " | ".join(f"tau = {x:g}" for x in TAUS)
    for name in CASES:
        lines += [f"## {name}", "", f"| D | loss | {head} |", "|" + "---|" * (2 + len(TAUS))]
        try:
            lines += _case_rows(done, name) + [""]
        except KeyError as missing:
            lines += [f"(incomplete: {missing} not run yet)", ""]
    (HERE / "offline_rindex.md").write_text("\n".join(lines))
    print("\n".join(lines))


KAPPAS = (1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
KAPPA_OUT = HERE / "offline_rindex_kappa.json"
KAPPA_STEPS, KAPPA_NS, KAPPA_MC, KAPPA_D = 300, 600, 3, 200


def _kappa_jobs():
    """aligned:1:0.6 along kappa: the population and train loss at tau = 15 (300 GD steps of
    d = 0.05), exact at D = 200 (8 seeds, b2 = 1) and the r-index DMFT (3 Monte Carlo seeds)."""
    def exact(p):
        tr = lr.solve(p, KAPPA_STEPS, data=_unit_teacher(p))
        return {"pop": float(tr.population_loss[-1] / tr.population_loss[0]),
                "train": float(tr.train_loss[-1] / tr.population_loss[0])}

    def dmft(p, mc):
        inp = dataclasses.replace(rindex_inputs(p, _unit_teacher(p)), b2=1.0)
        c = rindex_tau_curves(inp, KAPPA_STEPS, Ns=KAPPA_NS, seed=mc,
                              max_points=KAPPA_STEPS + 1)
        L0 = c["population_loss"][0]
        return {"pop": float(c["population_loss"][-1] / L0),
                "train": float(c["train_loss"][-1] / L0)}

    for kappa in KAPPAS:
        for seed in SEEDS:
            yield f"{kappa}|{seed}|exact", (lambda k=kappa, s=seed: exact(
                _problem("aligned:1:0.6", k, True, KAPPA_D, s)))
        for mc in range(KAPPA_MC):
            yield f"{kappa}|{mc}|dmft", (lambda k=kappa, mc=mc: dmft(
                _problem("aligned:1:0.6", k, True, KAPPA_D, 0), mc))


def kappa():
    """Run (resumable) and print the along-kappa table."""
    done = run_resumable(KAPPA_OUT, _kappa_jobs())
    print(f"| kappa | population at tau = {KAPPA_STEPS * DTAU:g}: exact D = {KAPPA_D} "
          "(mean ± se) | r-index DMFT | train: exact | DMFT |\n|---|---|---|---|---|")
    for k in KAPPAS:
        ex = {q: np.array([done[f"{k}|{s}|exact"][q] for s in SEEDS]) for q in ("pop", "train")}
        th = {q: np.array([done[f"{k}|{m}|dmft"][q] for m in range(KAPPA_MC)])
              for q in ("pop", "train")}
        se = ex["pop"].std(ddof=1) / math.sqrt(len(SEEDS))
        print(f"| {k:g} | {ex['pop'].mean():.3f} ± {se:.3f} "
              f"| {th['pop'].mean():.3f} ± {th['pop'].std(ddof=1) / math.sqrt(KAPPA_MC):.3f} | "
              f"{ex['train'].mean():.4f} | {th['train'].mean():.4f} |")


def plot():
    """docs/gallery/rindex.png: train and population loss against tau, the exact flow (seed
    mean and +-1 sd band, D = 100 and 400) and the r-index DMFT, one panel per case."""
    from lazyrich_theory.plotting.mpl import save, subplots

    done = json.loads(OUT.read_text())
    tau = np.arange(0, STEPS + 1, EVERY) * DTAU
    fig, grid = subplots(2, 3, figsize=(12.0, 7.2), layout="constrained", sharey=True)
    axes = grid.ravel()
    for ax, name in zip(axes, CASES):
        aligned = CASES[name][0].startswith("aligned")
        for D, shade in ((100, 0.35), (400, 0.8)):
            ex = _stack(done, name, D, "exact", SEEDS, full=True)
            for q, color, what in (("pop", "tab:blue", "population"), ("train", "tab:orange",
                                                                        "train")):
                mean, sd = ex[q].mean(0), ex[q].std(0, ddof=1)
                ax.plot(tau, mean, color=color, alpha=shade, lw=1.4,
                        label=f"exact {what}, D = {D}")
                ax.fill_between(tau, mean - sd, mean + sd, color=color, alpha=0.12 * shade)
        th = (_stack(done, name, "inf", "dmft", range(MC), full=True) if aligned else
              _stack(done, name, 400, "dmft", SEEDS, full=True))
        for q in ("pop", "train"):
            ax.plot(tau, th[q].mean(0), "k--", lw=1.4,
                    label="r-index DMFT" if q == "pop" else None)
        ax.set_yscale("log")
        ax.set_xlabel(r"$\tau = 2\eta_0\varepsilon t/(\alpha D)$")
        ax.set_title(name + ("" if aligned else " (DMFT at the D = 400 seeds' overlaps)"),
                     fontsize=9)
        ax.grid(alpha=0.3)
    for ax in grid[:, 0]:
        ax.set_ylabel("loss / initial population loss")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    axes[-1].legend(handles, labels, loc="center", frameon=False, fontsize=9)
    fig.suptitle(f"Finite-rank inits at finite data (alpha = {ALPHA:g}, eps = {EPS:g}, N = inf, "
                 f"b2 = 1): exact flow, mean ± sd over {len(SEEDS)} seeds, and the r-index DMFT",
                 fontsize=10)
    path = HERE.parent / "docs" / "gallery" / "rindex.png"
    save(fig, path, dpi=130)
    print(path)


CROSS_OUT = HERE / "offline_rindex_cross.json"
CROSS_TAUS = (5.0, 10.0, 20.0)


def cross():
    """Diagnostic for docs §12.4: the r-index DMFT with and without the probe <-> column blocks
    of Gamma (same Monte Carlo draws), aligned:1:0.6 and aligned:2:0.6 at kappa = 2.5 and 5.5,
    tau <= 20, 2 Monte Carlo seeds at Ns = 800: how much of the column-spike coupling goes
    through cross-responses (resumable, ~15 min)."""
    steps = int(round(max(CROSS_TAUS) / DTAU))
    at = np.array(CROSS_TAUS) / DTAU

    def one(init, kappa, mc, on):
        p = _problem(init, kappa, True, 100, 0)
        inp = dataclasses.replace(rindex_inputs(p, _unit_teacher(p)), b2=1.0)
        c = rindex_tau_curves(inp, steps, Ns=NS, seed=mc, cross_response=on)
        L0 = c["population_loss"][0]
        return {q: [float(x) for x in np.interp(at, c["t"], c[col]) / L0] for q, col in
                (("pop", "population_loss"), ("lin", "linear_power"),
                 ("train", "train_loss"))} | {"spike": [float(x) for x in np.interp(
                     at, c["t"], c["spike_amplitude2"])]}

    cases = [(init, k) for init in ("aligned:1:0.6", "aligned:2:0.6") for k in (2.5, 5.5)]
    jobs = ((f"{init}|{k}|{mc}|{on}", (lambda i=init, k=k, mc=mc, on=on: one(i, k, mc, on)))
            for init, k in cases for mc in range(2) for on in (True, False))
    done = run_resumable(CROSS_OUT, jobs)
    print("| init, kappa | quantity | " + " | ".join(f"tau = {x:g}: with / without" for x in
                                                      CROSS_TAUS) + " |")
    print("|" + "---|" * (2 + len(CROSS_TAUS)))
    for init, k in cases:
        for q in ("pop", "lin", "train", "spike"):
            w = np.mean([done[f"{init}|{k}|{mc}|True"][q] for mc in range(2)], axis=0)
            wo = np.mean([done[f"{init}|{k}|{mc}|False"][q] for mc in range(2)], axis=0)
            print(f"| {init}, {k:g} | {q} | " + " | ".join(
                f"{a:.5f} / {b:.5f}" for a, b in zip(w, wo)) + " |")


if __name__ == "__main__":
    commands = {"run": run, "table": table, "plot": plot, "kappa": kappa, "cross": cross}
    commands[sys.argv[1] if len(sys.argv) > 1 else "table"]()
