"""The late tail in log time: a quasi-stationary certificate (docs/offline_theory.md §11.7).

On the DMFT clock tau (= GD step / (25 D) here: eta0 = 1, alpha / eps = 50) the quadratic part
of the exact flow is dM/dtau = -D (G M + M G), G = (1/P) sum_mu r_mu x_mu x_mu^T with the train
residuals r_mu (the linear column adds its own terms). So an eigenvalue lambda_k of the bulk
block of M (the block orthogonal to betahat; eigenvector v_k) moves exactly as

    d ln lambda_k / d ln tau = -2 q_k,   q_k = v_k^T Q v_k,   Q = tau D G,

up to the column's terms and those of M's spike-bulk block (the table measures how small
they are: slope_pred against the measured slope). The measurement: after the transition the
train residual falls like 1 / tau along a nearly fixed direction, so the "certificate" Q is
nearly constant over a decade of tau, and the bulk decays as powers of tau with exponents
-2 q_k. Recorded per run, at each tau of TAUS (seeds 0-1, seed 0 only at D = 400;
(alpha, eps) = (1, 0.02), P = kappa D, the exact flow):

* train, pop: the relative train and population losses;
* s = tau |r| / sqrt P: the residual's size times tau (constant if r ~ 1 / tau);
* cos_r, cos_Q: the cosine of r, and of Q (Frobenius), with their values at the previous tau;
  Q_ratio = |Q| / |Q_previous|;
* t: the bulk's trace excess (as in offline_tail_spike.py); q_trace = sum lambda_k q_k /
  sum lambda_k, and slope_pred = -2 sum lambda_k q_k / sum (lambda_k - 1), the instantaneous
  d ln t / d ln tau that the certificate gives (the table sets it beside the measured one);
* q_top3 (mean over the three largest bulk eigenvalues), q_median (over the bulk) and q_bb
  (betahat^T Q betahat, the spike's);
* extrap: t predicted from the state at tau1 = 20 and 40 with Q frozen, M(tau) =
  E M(tau1) E, E = exp(-Q ln(tau / tau1)) (exact if tau r were constant and the column
  absent), over the exact t, at the later taus;
* octiles (at tau = 20, 80 and 320): the bulk's eigenvalues sorted into eight equal groups,
  each group's mean ln lambda, mean q and share of the trace excess: q as a function of the
  direction's size.

``samples`` (kappa = 5.5, seeds 0-1) asks whom the bulk's largest directions serve: per
sample, its weight in the largest eighth of the bulk's eigenvectors against its xi^2 and its
residual (offline_tail_certificate_samples.json).

The online (kappa = infinity) reference, at D = 50 and 100, is the package's population ODE
(as in ``offline_tail_spike.py online``, b2 = 1): there G = E[e x x^T] with
e = (b2 / 2)(t - delta xi^2), so q = tau (b2 / 2)(t - delta) in every bulk direction,
q_bb = tau (b2 / 2)(t - 3 delta) and s = tau (b2 / 2) sqrt(t^2 - 2 t delta + 3 delta^2); on
(11.2)'s power law (t = 3 delta, delta = 1 / (2 b2 tau)) q = 1/2 and s = sqrt(6) / 4 at any b2.

    python benchmarks/offline_tail_certificate.py run 50 100 200   # resumable, one JSON per D
    python benchmarks/offline_tail_certificate.py samples 50 100 200  # who the largest serve
    python benchmarks/offline_tail_certificate.py dmft 400 ... 3200  # the DMFT exponent, large D
    python benchmarks/offline_tail_certificate.py exact 400 800  # the exact exponent, kappa = 11
    python benchmarks/offline_tail_certificate.py table            # -> offline_tail_certificate.md
    python benchmarks/offline_tail_certificate.py figure   # -> docs/img/tail_certificate.png

Cost (one core): D = 50 7-40 s per run, D = 100 45 s-3 min, D = 200 5-10 min, D = 400
(kappa = 5.5, seed 0 only) ~45 min; samples as run; dmft ~1 min per run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.linalg import expm

import lazyrich_theory as lr
from common import markdown_head, run_resumable, write_table
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.theory.offline import offline_inputs
from offline_tail_spike import _online_one

HERE = Path(__file__).resolve().parent
TAUS = (10, 20, 40, 80, 160, 320)
KAPPAS = {50: (5.5, 11.0, 22.0, 44.0), 100: (5.5, 11.0, 22.0), 200: (5.5, 11.0), 400: (5.5,)}
SEEDS = {50: (0, 1), 100: (0, 1), 200: (0, 1), 400: (0,)}
FROM = (20, 40)
OCTILE_TAUS = (20, 80, 320)


def _problem(D: int, kappa: float, seed: int) -> lr.Problem:
    return lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=1.0, eps=0.02, seed=seed)


def _states(p: lr.Problem) -> tuple[ReducedSystem, list[np.ndarray], np.ndarray]:
    """The system and the exact flow's factor F (M = F F^T) at tau = TAUS, with the losses."""
    grabbed: list[np.ndarray] = []

    def grab(system, F):
        grabbed.append(F.copy())
        return 0.0
    st = [25 * p.D * tau for tau in TAUS]
    tr = lr.solve(p, st[-1], method="flow", integrator="dopri5", save_times=st,
                  observers={"grab": grab})
    rows = np.searchsorted(tr.t, st)
    losses = np.array([tr.train_loss[rows] / tr.train_loss[0],
                       tr.population_loss[rows] / tr.population_loss[0]])
    return ReducedSystem.build(p), [grabbed[k] for k in rows], losses


def _bulk(M: np.ndarray, bh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of M's block orthogonal to betahat (its null direction
    betahat dropped)."""
    Pp = np.eye(len(bh)) - np.outer(bh, bh)
    w, V = np.linalg.eigh(Pp @ M @ Pp)
    keep = np.argsort(np.abs(V.T @ bh))[:-1]          # drop the eigenvector along betahat
    keep = keep[np.argsort(w[keep])]
    return w[keep], V[:, keep]


def _octiles(w: np.ndarray, q: np.ndarray) -> list[list[float]]:
    """[mean ln lambda, mean q, share of sum (lambda - 1)] over eight groups of the bulk's
    eigenvalues (ascending)."""
    excess = np.sum(w - 1)
    return [[float(np.mean(np.log(w[g]))), float(np.mean(q[g])), float(np.sum(w[g] - 1) / excess)]
            for g in np.array_split(np.arange(len(w)), 8)]


def _one(D: int, kappa: float, seed: int) -> dict:
    p = _problem(D, kappa, seed)
    system, Fs, losses = _states(p)
    b2, ae, P = offline_inputs(p).b2, p.alpha * p.eps, p.P
    bh = system.beta / np.linalg.norm(system.beta)
    out: dict = {"b2": b2, "train": list(losses[0]), "pop": list(losses[1])}
    cols: dict[str, list] = {k: [] for k in ("s", "cos_r", "cos_Q", "Q_ratio", "t", "q_trace",
                                             "slope_pred", "q_top3", "q_median", "q_bb")}
    Ms, Qs, prev = [], [], None
    for tau, F in zip(TAUS, Fs):
        _, r = system.residuals(F)
        Q = tau * D * (system.X.T @ (r[:, None] * system.X)) / P
        M = F @ F.T
        w, V = _bulk(M, bh)
        q = np.einsum("ik,ij,jk->k", V, Q, V)
        cols["s"].append(float(tau * np.linalg.norm(r) / np.sqrt(P)))
        if prev is None:
            for key in ("cos_r", "cos_Q", "Q_ratio"):
                cols[key].append(None)
        else:
            r0, Q0 = prev
            cols["cos_r"].append(float(r @ r0 / np.linalg.norm(r) / np.linalg.norm(r0)))
            cols["cos_Q"].append(float(np.sum(Q * Q0) / np.linalg.norm(Q) / np.linalg.norm(Q0)))
            cols["Q_ratio"].append(float(np.linalg.norm(Q) / np.linalg.norm(Q0)))
        cols["t"].append(float(ae * np.sum(w - 1) / (b2 * D)))
        cols["q_trace"].append(float(np.sum(w * q) / np.sum(w)))
        cols["slope_pred"].append(float(-2 * np.sum(w * q) / np.sum(w - 1)))
        cols["q_top3"].append(float(np.mean(q[-3:])))
        cols["q_median"].append(float(np.median(q)))
        cols["q_bb"].append(float(bh @ Q @ bh))
        if tau in OCTILE_TAUS:
            out.setdefault("octiles", {})[str(tau)] = _octiles(w, q)
        Ms.append(M), Qs.append(Q)
        prev = (r, Q)
    out.update(cols)
    out["extrap"] = {}
    for tau1 in FROM:
        i = TAUS.index(tau1)
        ratios = []
        for j in range(i + 1, len(TAUS)):
            E = expm(-Qs[i] * np.log(TAUS[j] / tau1))
            w2, _ = _bulk(E @ Ms[i] @ E, bh)
            ratios.append(float(ae * np.sum(w2 - 1) / (b2 * D) / cols["t"][j]))
        out["extrap"][str(tau1)] = ratios
    return out


def _path(D: int) -> Path:
    return HERE / f"offline_tail_certificate_D{D}.json"


def _load() -> dict:
    """Every stored exact run of ``run``, keyed "D|kappa|seed"."""
    return {k: v for D in KAPPAS if _path(D).exists()
            for k, v in json.loads(_path(D).read_text()).items()}


def _runs(done: dict, D: int, kappa: float) -> list[dict]:
    """The stored runs of one (D, kappa), over the seeds of D (none if D was not run)."""
    return [done[k] for s in SEEDS.get(D, ()) if (k := f"{D}|{kappa}|{s}") in done]


def _sample_one(D: int, kappa: float, seed: int) -> dict:
    """Who the largest bulk directions serve: per sample, xi^2 = D (x . betahat)^2, its weight
    in the bulk's largest eighth of eigenvectors relative to a fair share (D / n) |P_top x|^2,
    and nu = tau r. At OCTILE_TAUS: corr(weight, xi^2), the mean weight over the samples with
    xi^2 > 4 and with xi^2 < 1, corr(nu, xi^2), and the partial correlation of nu with the
    weight once xi^2 (and a constant) is regressed out of both."""
    p = _problem(D, kappa, seed)
    system, Fs, _ = _states(p)
    bh = system.beta / np.linalg.norm(system.beta)
    xi2 = D * (system.X @ bh) ** 2
    A = np.column_stack([np.ones_like(xi2), xi2])

    def resid(u):
        return u - A @ np.linalg.lstsq(A, u, rcond=None)[0]
    out: dict = {}
    for tau, F in zip(TAUS, Fs):
        if tau not in OCTILE_TAUS:
            continue
        _, r = system.residuals(F)
        w, V = _bulk(F @ F.T, bh)
        n = len(w) // 8
        weight = (D / n) * np.sum((system.X @ V[:, -n:]) ** 2, axis=1)
        nu = tau * r
        out[str(tau)] = {"corr_weight_xi2": float(np.corrcoef(weight, xi2)[0, 1]),
                         "weight_xi2_above_4": float(np.mean(weight[xi2 > 4])),
                         "weight_xi2_below_1": float(np.mean(weight[xi2 < 1])),
                         "corr_nu_xi2": float(np.corrcoef(nu, xi2)[0, 1]),
                         "partial_nu_weight": float(np.corrcoef(resid(nu), resid(weight))[0, 1])}
    return out


def samples(dims: list[int]) -> None:
    for D in dims:
        run_resumable(HERE / "offline_tail_certificate_samples.json",
                      ((f"{D}|5.5|{s}", lambda s=s, D=D: _sample_one(D, 5.5, s)) for s in (0, 1)))


def run(dims: list[int]) -> None:
    for D in dims:
        run_resumable(_path(D), ((f"{D}|{k}|{s}", lambda k=k, s=s, D=D: _one(D, k, s))
                            for k in KAPPAS[D] for s in SEEDS[D]))


def _measured_slope(t: list[float]) -> list[float | None]:
    """d ln t / d ln tau by centred differences on TAUS (None at the ends or where t <= 0)."""
    out: list[float | None] = [None] * len(TAUS)
    for k in range(1, len(TAUS) - 1):
        if t[k - 1] > 0 and t[k + 1] > 0:
            out[k] = float(np.log(t[k + 1] / t[k - 1]) / np.log(TAUS[k + 1] / TAUS[k - 1]))
    return out


def _mean(runs: list[dict], key: str) -> list[str]:
    """Seed mean of a per-tau column, formatted ('—' where a run has no value)."""
    vals = [[r[key][k] for r in runs] for k in range(len(TAUS))]
    return ["—" if any(v is None for v in col) else f"{np.mean(col):.3g}" for col in vals]


def _online_rows() -> list[str]:
    """The online flow's certificate (b2 = 1, (alpha, eps) = (1, 0.02)) at D = 50 and 100,
    from the package's population ODE (offline_tail_spike.py's run)."""
    rows = []
    tau = np.array(TAUS, float)
    for D in (50, 100):
        r = _online_one(D, 1.0, 0.02)
        d, t = np.array(r["delta"]), np.array(r["t"])
        s = tau * np.sqrt(t ** 2 - 2 * t * d + 3 * d ** 2) / 2
        for name, y in (("s", s), ("q (every bulk direction)", tau * (t - d) / 2),
                        ("q_bb", tau * (t - 3 * d) / 2)):
            rows.append(f"| online, D = {D} | {name} | "
                        + " | ".join(f"{v:.3g}" for v in y) + " |")
    return rows


def _octile_lines(done: dict) -> list[str]:
    lines = [""] + markdown_head(
        "The certificate against the direction's size",
        "The bulk's eigenvalues of M in eight equal groups, ascending; per group the seed means "
        "of mean ln lambda / mean q / share of the trace excess sum (lambda - 1).",
        ["run", "tau"] + [f"group {i + 1}" for i in range(8)], level=2)
    for D, kappas in KAPPAS.items():
        for kappa in kappas:
            runs = _runs(done, D, kappa)
            for tau in OCTILE_TAUS if runs else ():
                m = np.mean([r["octiles"][str(tau)] for r in runs], axis=0)
                lines.append(f"| D = {D}, kappa = {kappa:g} | {tau} | "
                             + " | ".join(f"{a:.2f} / {b:.3f} / {c:.3f}" for a, b, c in m)
                             + " |")
    return lines


def _sample_lines() -> list[str]:
    path = HERE / "offline_tail_certificate_samples.json"
    if not path.exists():
        return []
    done = json.loads(path.read_text())
    keys = ("corr_weight_xi2", "weight_xi2_above_4", "weight_xi2_below_1", "corr_nu_xi2",
            "partial_nu_weight")
    lines = [""] + markdown_head(
        "Who the largest bulk directions serve (kappa = 5.5)",
        "Per sample: xi^2 = D (x . betahat)^2, its weight in the bulk's largest eighth of "
        "eigenvectors over a fair share, and nu = tau r. Seed means (seeds 0, 1) of "
        "corr(weight, xi^2), the mean weight of the samples with xi^2 > 4 and with xi^2 < 1, "
        "corr(nu, xi^2), and the partial correlation of nu and the weight given xi^2.",
        ["D", "tau"] + list(keys), level=2)
    for D in (50, 100, 200):
        runs = [done[k] for s in (0, 1) if (k := f"{D}|5.5|{s}") in done]
        for tau in OCTILE_TAUS if runs else ():
            lines.append(f"| {D} | {tau} | " + " | ".join(
                f"{np.mean([r[str(tau)][k] for r in runs]):.3f}" for k in keys) + " |")
    return lines


#: the DMFT alone (as derived and with A7) at larger D, for the exponent table
DMFT_DIMS = {D: (5.5, 11.0) for D in (400, 800, 1600, 3200)}
DMFT_PATH = HERE / "offline_tail_certificate_dmft.json"
#: the exact flow alone (its trace exponent) where the certificate run is too costly
EXACT_DIMS = {400: (11.0,), 800: (11.0,)}
EXACT_PATH = HERE / "offline_tail_certificate_exact.json"
#: command -> (result file, D -> kappas, seeds, offline_tail_spike methods) of the runs of
#: one kind of method alone
ALONE = {"dmft": (DMFT_PATH, DMFT_DIMS, (0, 1), ("dmft", "dmft_a7")),
         "exact": (EXACT_PATH, EXACT_DIMS, (0,), ("exact",))}


def alone(which: str, dims: list[int]) -> None:
    """offline_tail_spike's delta, t and loss of the ALONE[which] methods only."""
    from offline_tail_spike import _theories_one
    path, kappas, seeds, methods = ALONE[which]
    for D in dims:
        run_resumable(path, ((f"{D}|{k}|{s}", lambda k=k, s=s, D=D: _theories_one(
            D, k, s, methods=methods)) for k in kappas[D] for s in seeds))


def _exponent(t, taus, lo: int, hi: int) -> float | None:
    """-1/2 d ln t / d ln tau between tau = lo and hi (None where t <= 0)."""
    i, j = list(taus).index(lo), list(taus).index(hi)
    if t[i] <= 0 or t[j] <= 0:
        return None
    return float(-0.5 * np.log(t[j] / t[i]) / np.log(taus[j] / taus[i]))


def _delay_tails(D: int, kappa: float) -> list[dict]:
    """The exact tails ((alpha, eps) = (1, 0.02)) stored by offline_delay.py's long runs."""
    path = HERE / f"offline_delay_long_D{D}.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    return [r["exact_tail"] for key, r in runs.items()
            if key.startswith(f"{kappa}|1.0|0.02|") and "exact_tail" in r]


def _exponent_rows(done: dict) -> dict[tuple[int, float], dict[str, tuple]]:
    """(D, kappa) -> method -> (exponent over tau = 20-40, over 40-80) of the seed-mean t, from
    offline_tail_spike.py's ``theories`` runs and this benchmark's ``dmft`` runs; where a cell
    has no exact run there, the exact entry comes from this benchmark's own ``run``."""
    from offline_tail_spike import METHODS, THEORY_TAUS
    cells: dict = {}
    for path in (HERE / "offline_tail_spike_theories.json", DMFT_PATH, EXACT_PATH):
        for key, run in (json.loads(path.read_text()).items() if path.exists() else ()):
            D, kappa, _ = key.split("|")
            cells.setdefault((int(D), float(kappa)), []).append(run)
    out: dict = {}
    for (D, kappa), runs in sorted(cells.items()):
        row = {}
        for name in METHODS:
            if have := [r[name]["tbar"] for r in runs if name in r]:
                t, taus = np.mean(have, axis=0), THEORY_TAUS
            elif name == "exact" and (own := _runs(done, D, kappa)):
                t, taus = np.mean([r["t"] for r in own], axis=0), TAUS
            elif name == "exact" and (tails := _delay_tails(D, kappa)):
                t, taus = np.mean([r["tbar"] for r in tails], axis=0), tails[0]["taus"]
            else:
                continue
            row[name] = (_exponent(t, taus, 20, 40), _exponent(t, taus, 40, 80))
        out[(D, kappa)] = row
    return out


def _theory_exponent_lines(done: dict) -> list[str]:
    """The exponent of t for the exact flow and each theory (:func:`_exponent_rows`)."""
    from offline_tail_spike import METHODS
    lines = [""] + markdown_head(
        "The trace's exponent in each method",
        "qbar_eff = -(1/2) d ln t / d ln tau of the seed-mean t (seeds 0, 1) over tau = 20-40 / "
        "40-80, for the exact flow and the theories (offline_tail_spike.py theories; at D = 400 "
        "to 3200 the DMFT runs of this benchmark's 'dmft' command, and the exact column from "
        "its 'run' where there is one: seed 0 only at D = 400; kappa = 11 at D = 400 from its "
        "'exact' command, seed 0; at D = 800 from offline_delay.py's long runs).",
        ["D", "kappa"] + list(METHODS), level=2)
    for (D, kappa), row in _exponent_rows(done).items():
        cells = [" / ".join("—" if v is None else f"{v:.2f}" for v in row[name])
                 if name in row else "—" for name in METHODS]
        lines.append(f"| {D} | {kappa:g} | " + " | ".join(cells) + " |")
    return lines


def table() -> None:
    done = _load()
    lines = markdown_head(
        "The late tail in log time: the certificate Q = tau D G",
        "Exact flow, seed means of seeds 0, 1 (seed 0 at D = 400), (alpha, eps) = (1, 0.02); "
        "tau = step / (25 D). "
        "s = tau |r| / sqrt P; cos_r, cos_Q: cosines with the previous tau; Q_ratio = "
        "|Q| / |Q_previous|; t: the bulk's trace excess; q_trace: the lambda-weighted mean of q "
        "over the bulk; qbar = sum lambda q / sum (lambda - 1) (docs (11.4)); "
        "slope_pred = -2 qbar against the "
        "measured d ln t / d ln tau (centred differences); q_top3 / q_median: the certificate "
        "along the three largest bulk eigenvectors / its median over the bulk; q_bb: along "
        "betahat; extrap from tau1: t predicted with Q frozen at tau1, over the exact t. "
        "Online rows: the kappa = infinity flow (b2 = 1, the package's population ODE).",
        ["run", "quantity"] + [f"tau = {t}" for t in TAUS])
    keys = ("train", "pop", "s", "cos_r", "cos_Q", "Q_ratio", "t", "q_trace", "qbar", "slope_pred",
            "slope_measured", "q_top3", "q_median", "q_bb")
    for D, kappas in KAPPAS.items():
        for kappa in kappas:
            runs = _runs(done, D, kappa)
            if not runs:
                continue
            for r in runs:
                r["slope_measured"] = _measured_slope(r["t"])
                r["qbar"] = [-0.5 * v for v in r["slope_pred"]]
            for key in keys:
                lines.append(f"| D = {D}, kappa = {kappa:g} | {key} | "
                             + " | ".join(_mean(runs, key)) + " |")
            for tau1 in FROM:
                pad = ["—"] * (TAUS.index(tau1) + 1)
                ratios = np.mean([r["extrap"][str(tau1)] for r in runs], axis=0)
                lines.append(f"| D = {D}, kappa = {kappa:g} | extrap from {tau1} | "
                             + " | ".join(pad + [f"{v:.3f}" for v in ratios]) + " |")
    lines += (_online_rows() + _octile_lines(done) + _sample_lines()
              + _theory_exponent_lines(done))
    write_table(HERE / "offline_tail_certificate.md", lines)


def _exponent_series(done: dict, kappa: float) -> dict[str, tuple[list[int], list[float]]]:
    """method -> (D's, the exponent over tau = 40-80) at one kappa, for the figure."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for (D, k), row in _exponent_rows(done).items():
        for name, (_, late) in row.items():
            if k == kappa and late is not None:
                Ds, qs = out.setdefault(name, ([], []))
                Ds.append(D), qs.append(late)
    return out


def figure(path: Path) -> None:
    """Two panels: the certificate q against ln lambda over the octiles (kappa = 5.5), and the
    trace's exponent against D for the exact flow and the closures (kappa = 5.5 and 11)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator
    done = _load()
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    colours = {20: "tab:blue", 80: "tab:orange", 320: "tab:green"}
    markers = {50: "o", 100: "s", 200: "^", 400: "D"}
    for D in sorted(KAPPAS):
        runs = _runs(done, D, 5.5)
        for tau in OCTILE_TAUS if runs else ():
            m = np.mean([r["octiles"][str(tau)] for r in runs], axis=0)
            ax1.plot(m[:, 0], m[:, 1], marker=markers[D], color=colours[tau], lw=0.8, ms=4)
    ax1.axhline(0.5, color="0.5", ls=":", lw=0.8)
    handles = ([Line2D([], [], color=c, lw=1.5, label=rf"$\tau$ = {tau}")
                for tau, c in colours.items()]
               + [Line2D([], [], color="0.3", marker=mk, ls="none", label=f"D = {D}")
                  for D, mk in markers.items()])
    ax1.legend(handles=handles, fontsize=8, ncol=2)
    ax1.set_xlabel(r"mean $\ln\lambda$ of the group (M's bulk in eight groups)")
    ax1.set_ylabel(r"certificate $q=v^\top Qv$ (the group's mean)")
    ax1.set_title(r"$\kappa$ = 5.5: $\lambda\propto\tau^{-2q}$; the large directions decay slowly"
                  "\n(dotted: the online power law's 1/2)", fontsize=9)
    styles = {"exact": ("k", "o", "exact"), "spectral": ("tab:red", "x", "spectral"),
              "dmft": ("tab:blue", "s", "DMFT"), "dmft_a7": ("tab:purple", "^", "DMFT + A7")}
    for kappa, ls in ((5.5, "-"), (11.0, "--")):
        for name, (Ds, qs) in _exponent_series(done, kappa).items():
            if Ds:
                c, mk, label = styles[name]
                ax2.plot(Ds, qs, ls=ls, color=c, marker=mk, ms=5,
                         label=rf"{label}, $\kappa$ = {kappa:g}")
    ax2.set_xscale("log")
    ticks = [50, 100, 200, 400, 800, 1600, 3200]
    ax2.xaxis.set_major_locator(FixedLocator(ticks))
    ax2.xaxis.set_minor_locator(NullLocator())
    ax2.set_xticklabels([str(D) for D in ticks])
    ax2.set_xlabel("D")
    ax2.set_ylabel(r"$\bar q_{\rm eff}=-\frac{1}{2}\,d\ln t/d\ln\tau$, $\tau$ = 40-80")
    ax2.set_title("the trace excess's exponent, exact and closures\n"
                  "(exact at D >= 400: one or two seeds)", fontsize=9)
    ax2.legend(fontsize=7, ncol=2, loc="center", bbox_to_anchor=(0.5, 0.73))
    fig.savefig(path, dpi=150)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "run"
    if cmd == "run":
        run([int(d) for d in sys.argv[2:]] or sorted(KAPPAS))
    elif cmd in ALONE:
        alone(cmd, [int(d) for d in sys.argv[2:]] or sorted(ALONE[cmd][1]))
    elif cmd == "samples":
        samples([int(d) for d in sys.argv[2:]] or [50, 100, 200])
    elif cmd == "table":
        table()
    elif cmd == "figure":
        figure(HERE.parent / "docs" / "img" / "tail_certificate.png")
    else:
        raise SystemExit(f"unknown command {cmd!r}: run D [D ...] | samples [D ...] | "
                         "dmft [D ...] | exact [D ...] | table | figure")
