"""The fast linear column as a projection: does the DMFT's error at alpha / eps = 50 come from
the column's features being the inputs x themselves? (issue 13; docs/offline_theory.md §12.4).

At alpha / eps = 50 (the issue's (1, 0.02)) the linear column is fast: it sits at the least-
squares fit of the quadratic part's residual on X (A5'; its lag ~ 1 / (a lambda_-) ~ 0.06 tau
at kappa = 5.5). Then the exact flow is, up to the (alpha eps / 2) s^2 and eps s terms that A5'
drops, the quadratic model trained on the projected residual:

    dU/dtau = -(1 / kappa) X^T diag(r) X U,      r = (I - Pi_Z) rho,   Pi_Z = Z (Z^T Z)^-1 Z^T,
    rho_mu = (alpha eps / 2)(|U^T x_mu|^2 - |x_mu|^2) - y_mu,

with Z = X. This flow is not stiff (the column's fast rate is gone), so an explicit Runge-Kutta
integrator covers tau = 80 in ~1500 evaluations: 1 s at D = 100, 1 min at 400. Three designs:

* ``X``: the network's own column (checked against the exact flow of the package);
* ``Y``: an independent Gaussian design of the same shape (rows N(0, I / D)): a column whose
  cavity field is independent of the quadratic part's fields, which is what the DMFT assumes
  for its column (its single-sample process cannot tell X from Y);
* ``none``: no column at all, r = rho: the quadratic-only model exactly, the counterpart of the
  DMFT with ``linear_column=False`` (offline_tail_channels.py compared it with the flow at
  alpha / eps = 0.01, whose column is slow but not absent).

Population loss E[(rho(x) + c(x))^2] over x ~ N(0, I / D) = (tr A / D)^2 + 2 tr(A^2) / D^2 +
|w|^2 / D with A = (alpha eps / 2)(U U^T - I) - beta beta^T / 2 and w = (Z^T Z)^-1 Z^T rho the
column's weights (the cross term is zero by parity). At tau = 0 the column is still zero. Same
problems, clock and observables as offline_tail_channels.py (kappa = 5.5, alpha eps = 0.02,
alpha / eps = 50, one unit of tau = 100 GD steps, horizon tau = 80).

``static`` and ``dynamic`` check the leave-one-out algebra behind a closure of this coupling
(docs §12.4, (12.1)) on toy models that are solved exactly: the residual r = (I - Pi_Y)(b + K r)
of a projection with per-sample memorisation K = diag(k_mu) (static), and rho_nu(tau) = b_nu -
k_nu int_0^tau (1 + s) r_nu(s) ds with r = (I - Pi_Y) rho (dynamic, Volterra operators on a
grid), each against the weighted leave-one-out, the null-space split and no split.

    python benchmarks/offline_tail_projection.py run 100 200 400   # resumable, one JSON
    python benchmarks/offline_tail_projection.py run 800 --designs X none
    python benchmarks/offline_tail_projection.py run 800 --designs Y       # ~10 min per seed
    python benchmarks/offline_tail_projection.py k3 100 200 400     # kappa = 3 -> ..._k3.json
    python benchmarks/offline_tail_projection.py k15 100 200        # kappa = 1.5 -> ..._k15.json
    python benchmarks/offline_tail_projection.py k2 100 200         # kappa = 2 -> ..._k2.json
    python benchmarks/offline_tail_projection.py static            # -> ..._static.json, 2 s
    python benchmarks/offline_tail_projection.py dynamic           # -> ..._dynamic.json, ~15 min
    python benchmarks/offline_tail_projection.py table             # -> offline_tail_projection.md

Cost (one core): 1 s (D = 100), 5 s (200), 1 min (400), ~10 min (800) per run; the package's
exact flow at alpha / eps = 50 takes 2 s, 13 s and 2.3 min at D = 100, 200, 400.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from common import load_results, markdown_head, nearest, run_resumable, seed_runs, write_table
from offline_delay import KEYS
from offline_tail_certificate import _exponent
from offline_tail_spike import _section
from offline_tail_channels import AE, KAPPA, SEEDS, SWEEP_OUT, SWEEP_SEEDS, TAUS, _problem
from offline_tail_channels import FAST_METHODS
from offline_tail_channels import K3_OUT as K3_CHANNELS
from offline_tail_channels import K2_OUT as K2_CHANNELS
from offline_tail_channels import K15_OUT as K15_CHANNELS
from offline_tail_channels import OUT as CHANNELS_OUT
from lazyrich_theory.theory.timescales import grokking_summary

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_tail_projection.json"
RATIO = 50.0
DESIGNS = ("X", "Y", "none")
#: the seed of the independent design Y of training set ``seed``
Y_SEED = 10_000


def _design(X: np.ndarray, design: str, seed: int) -> np.ndarray | None:
    P, D = X.shape
    if design == "X":
        return X
    if design == "Y":
        return np.random.default_rng(Y_SEED + seed).standard_normal((P, D)) / np.sqrt(D)
    if design == "none":
        return None
    raise ValueError(f"unknown design {design!r}: X | Y | none")


def _one(D: int, seed: int, design: str, kappa: float = KAPPA) -> dict:
    """pop, lin, delta, tbar at TAUS and the grokking summary (times in GD steps) of the
    projected flow with ``design``."""
    p = _problem(D, seed, RATIO, kappa)
    data = p.data()
    X, y, beta = data.X, data.y, data.beta
    P = X.shape[0]
    x2 = np.sum(X * X, axis=1)
    Z = _design(X, design, seed)
    Qz, Rz = np.linalg.qr(Z) if Z is not None else (None, None)

    def rho_of(U):
        XU = X @ U
        return 0.5 * AE * (np.sum(XU * XU, axis=1) - x2) - y, XU

    def project(rho):
        return rho if Qz is None else rho - Qz @ (Qz.T @ rho)

    def rhs(_, flat):
        rho, XU = rho_of(flat.reshape(D, D))
        return (-(D / P) * (X.T @ (project(rho)[:, None] * XU))).ravel()

    def observe(U):
        rho, _ = rho_of(U)
        r = project(rho)
        A = 0.5 * AE * (U @ U.T - np.eye(D)) - 0.5 * np.outer(beta, beta)
        lin = 0.0 if Qz is None else float(np.sum(np.linalg.solve(Rz, Qz.T @ rho) ** 2)) / D
        M = U @ U.T
        bh = beta / np.linalg.norm(beta)
        along = float(bh @ M @ bh) - 1.0
        pop = (np.trace(A) / D) ** 2 + 2.0 * np.sum(A * A) / D ** 2 + lin
        return float(r @ r) / P, pop, lin, along, (np.trace(M) - D) / D

    taus = np.unique(np.concatenate([[0.0], np.geomspace(0.01, TAUS[-1], 300), TAUS]))
    sol = solve_ivp(rhs, (0.0, TAUS[-1]), np.eye(D).ravel(), t_eval=taus, rtol=1e-7,
                    atol=1e-10, method="RK45")
    if not sol.success:
        raise RuntimeError(f"projected flow D={D} seed={seed} {design}: {sol.message}")
    train, pop, lin, along, trace = np.array(
        [observe(sol.y[:, k].reshape(D, D)) for k in range(sol.t.size)]).T
    # at tau = 0 the network's column is zero; it reaches its fit within ~0.06 tau
    pop[0], lin[0], train[0] = pop[0] - lin[0], 0.0, float(y @ y) / P
    b2 = float(beta @ beta) / D
    k = np.searchsorted(sol.t, TAUS)
    g = grokking_summary(100.0 * sol.t, train, pop)["values"]
    return {"b2": b2, "nfev": int(sol.nfev), "pop": list(pop[k] / pop[0]),
            "lin": list(lin[k] / pop[0]), "delta": list(1 - AE * along[k] / (b2 * D)),
            "tbar": list(AE * (D * trace[k] - along[k]) / (b2 * D)),
            "summary": {key: g[key] for key in KEYS}}


#: kappa -> (X and Y at that kappa, offline_tail_channels.py's runs there, its command)
SMALL_KAPPA = {3.0: (HERE / "offline_tail_projection_k3.json", K3_CHANNELS, "k3"),
               2.0: (HERE / "offline_tail_projection_k2.json", K2_CHANNELS, "k2"),
               1.5: (HERE / "offline_tail_projection_k15.json", K15_CHANNELS, "k15")}


def run_k3(dims: list[int], kappa: float = 3.0) -> None:
    """X and Y at kappa = 3, 2 or 1.5 (seeds 0-1), against offline_tail_channels.py k3 / k2 /
    k15."""
    run_resumable(SMALL_KAPPA[kappa][0], ((f"{D}|{s}|{d}", lambda D=D, s=s, d=d:
                                           _one(D, s, d, kappa))
                                          for D in dims for s in SWEEP_SEEDS
                                          for d in ("X", "Y")))


def _k3_lines(kappa: float = 3.0) -> list[str]:
    out, chan_out, cmd = SMALL_KAPPA[kappa]
    done, lines = _section(
        out.stem, f"kappa = {kappa:g}: the projected flows against the exact flow and the DMFT",
        "Seed means (seeds 0-1) of the relative population loss at tau = 10 / 20 / 40 / 80: "
        f"the projected flows X and Y (`offline_tail_projection.py {cmd}`), the exact flow and "
        f"the DMFT's column variants ({chan_out.name}).",
        ["D", "X", "Y", "exact", "dmft_column", "dmft_a7", "dmft_nosplit", "dmft_spread",
         "dmft_resolved"])
    chan = load_results(chan_out)
    for D in sorted({int(k.split("|")[0]) for k in done or ()}):
        runs = {d: seed_runs(done, SWEEP_SEEDS, lambda s: f"{D}|{s}|{d}") for d in ("X", "Y")}
        runs.update({m: seed_runs(chan, SWEEP_SEEDS, lambda s: f"{D}|{s}|{m}")
                     for m in ("exact", "dmft_column", "dmft_a7", "dmft_nosplit",
                               "dmft_spread", "dmft_resolved")})
        lines.append(f"| {D} | " + " | ".join(
            " / ".join(f"{v:.3f}" for v in np.mean([r["pop"] for r in rs], axis=0))
            if all(rs) else "—" for rs in runs.values()) + " |")
    return lines


def run(dims: list[int], designs=DESIGNS) -> None:
    run_resumable(OUT, ((f"{D}|{s}|{d}", lambda D=D, s=s, d=d: _one(D, s, d))
                        for D in dims for s in SEEDS for d in designs))


def _stats(runs: list[dict]) -> tuple[float, float, float]:
    """Seed means of the delay (tau), the exponent qbar_eff over tau = 40-80 of the seed-mean
    trace excess, and the relative population loss at tau = 80."""
    delays = [r["summary"]["relative_grokking_time"] for r in runs]
    # NaN unless every run reached the 0.1 level by tau = 80 (a mean over some would mislead)
    delay = np.mean(delays) / 100.0 if None not in delays else float("nan")
    q = _exponent(np.mean([r["tbar"] for r in runs], axis=0), TAUS, 40, 80)
    return float(delay), q, float(np.mean([r["pop"][-1] for r in runs]))


def _plain(x: tuple) -> str:
    return f"{x[0]:.1f} / {x[1]:.3f} / {x[2]:.4f}"


def _fmt(ref: tuple, x: tuple) -> str:
    if not np.isfinite(x[0]):
        return f"not reached / {x[1]:.3f} / {x[2]:.4f}"
    return f"{x[0]:.1f} ({100 * (x[0] / ref[0] - 1):+.0f} %) / {x[1]:.3f} / {x[2]:.4f}"


def _design_lines(done: dict, chan: dict) -> list[str]:
    lines = [""] + markdown_head(
        "The three designs and the quadratic-only DMFT",
        "Seed means over the seeds where X and none were run: delay (relative_grokking_time, "
        "in tau) / exponent qbar_eff (tau = 40-80) / relative population loss at tau = 80. In "
        "brackets the delay's error against X (for Y and none) or against none (for the "
        "quadratic-only DMFT, offline_tail_channels.json); — : not run on those seeds.",
        ["D", "seeds", "X (the exact fast column)", "Y (independent column)", "none (no column)",
         "DMFT, linear_column=False"], level=2)
    for D in sorted({int(k.split("|")[0]) for k in done}):
        seeds = [s for s in SEEDS if all(f"{D}|{s}|{d}" in done for d in ("X", "none"))]
        if not seeds:
            continue
        st = {}
        for d in DESIGNS:
            runs = seed_runs(done, seeds, lambda s: f"{D}|{s}|{d}")
            st[d] = _stats(runs) if all(runs) else None
        dm = seed_runs(chan, seeds, lambda s: f"{D}|{s}|dmft")
        x = st["X"]
        cells = [_plain(x),
                 _fmt(x, st["Y"]) if st["Y"] else "—", _fmt(x, st["none"]),
                 _fmt(st["none"], _stats(dm)) if all(dm) else "—"]
        lines.append(f"| {D} | {len(seeds)} | " + " | ".join(cells) + " |")
    return lines


def _column_lines(done: dict, sweep: dict) -> list[str]:
    methods = ("exact", "dmft_column", "dmft_a7", "dmft_nosplit", "dmft_spread")
    lines = [""] + markdown_head(
        "The exact flow and the DMFT's column variants against the projected flows "
        "(seeds 0-1)",
        "Delay / exponent / loss at tau = 80 as above; exact and the DMFT variants from "
        "offline_tail_channels_ratio.json at alpha / eps = 50; in brackets the delay's error "
        "against Y (for exact: against X).",
        ["D", "X", "Y", "exact"] + list(methods[1:]), level=2)
    for D in sorted({int(k.split("|")[0]) for k in done}):
        runs = {d: seed_runs(done, SWEEP_SEEDS, lambda s: f"{D}|{s}|{d}", present=True)
                for d in ("X", "Y")}
        runs.update({m: seed_runs(sweep, SWEEP_SEEDS, lambda s: f"{RATIO}|{D}|{s}|{m}",
                                  present=True) for m in methods})
        if any(len(v) != len(SWEEP_SEEDS) for v in runs.values()):
            continue
        st = {m: _stats(v) for m, v in runs.items()}
        cells = [_plain(st["X"]), _plain(st["Y"]), _fmt(st["X"], st["exact"])]
        cells += [_fmt(st["Y"], st[m]) for m in methods[1:]]
        lines.append(f"| {D} | " + " | ".join(cells) + " |")
    return lines


def _spread_lines(done: dict, sweep: dict) -> list[str]:
    lines = [""] + markdown_head(
        "The spread closure (12.1) against the projected flows (seeds 0-3)",
        "Delay / exponent / loss at tau = 80 as above, seed means over the seeds where every "
        "column ran; the DMFT variants from offline_tail_channels_ratio.json at alpha / eps = "
        "50 (`offline_tail_channels.py spread`; dmft_spread: its memorisation at first order, "
        "dmft_resolved: resolved, the closure's default); in brackets the delay's error "
        "against Y, and (X: ...) against X.",
        ["D", "seeds", "X", "Y"] + list(FAST_METHODS), level=2)
    for D in sorted({int(k.split("|")[0]) for k in done}):
        runs = {d: seed_runs(done, SEEDS, lambda s: f"{D}|{s}|{d}") for d in ("X", "Y")}
        runs.update({m: seed_runs(sweep, SEEDS, lambda s: f"{RATIO}|{D}|{s}|{m}")
                     for m in FAST_METHODS})
        every = [i for i in range(len(SEEDS)) if all(v[i] for v in runs.values())]
        seeds = [SEEDS[i] for i in every]
        if not seeds:
            continue
        st = {m: _stats([v[i] for i in every]) for m, v in runs.items()}
        y, x = st["Y"], st["X"]
        cells = [_plain(x), _plain(y)]
        cells += [_fmt(y, st[m]) + (f" (X: {100 * (st[m][0] / x[0] - 1):+.0f} %)"
                                    if np.isfinite(st[m][0]) else "") for m in FAST_METHODS]
        lines.append(f"| {D} | {len(seeds)} | " + " | ".join(cells) + " |")
    return lines


def _strengths(kbar: float, law: str, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """n strengths k = kbar xi^2 (chi2) or kbar (uniform): drawn with ``rng``, or (None) the
    law's n equal-mass quantile midpoints, for the closure's expectations."""
    if law != "chi2":
        return np.full(n, kbar)
    if rng is None:
        from scipy.stats import chi2
        return kbar * chi2.ppf((np.arange(n) + 0.5) / n, 1)
    return kbar * rng.standard_normal(n) ** 2


STATIC_OUT = HERE / "offline_tail_projection_static.json"
#: the static check: mean memorisation strengths kbar and laws of the per-sample strength
STATIC_KBARS = (0.0, -1.0, -5.0, -20.0)
STATIC_LAWS = ("uniform", "chi2")
STATIC_D, STATIC_REPS = 400, 4


def _static_exact(kbar: float, law: str, rng: np.random.Generator) -> float:
    """E[r^2] of r = (I - Pi_Y)(b + K r) (b ~ N(0, I), Y ~ N(0, I / D), K = diag(k_mu),
    k = kbar xi^2 or kbar), solved exactly: r = W (b - Y a), W = (I - K)^-1, Y^T r = 0."""
    P, D = int(KAPPA * STATIC_D), STATIC_D
    Y = rng.standard_normal((P, D)) / np.sqrt(D)
    b = rng.standard_normal(P)
    k = _strengths(kbar, law, P, rng)
    w = 1.0 / (1.0 - k)
    a = np.linalg.solve(Y.T @ (w[:, None] * Y), Y.T @ (w * b))
    r = w * (b - Y @ a)
    return float(np.mean(r * r))


def _static_theory(k: np.ndarray, ell: float) -> float:
    """E[r^2] of r = (b - theta) / (1 + ell - k), theta independent with variance
    kappa ell^2 E[r^2] (the closure's self-consistency); NaN where it has no solution."""
    m2 = float(np.mean((1.0 - k + ell) ** -2.0))
    den = 1.0 - KAPPA * ell ** 2 * m2
    return m2 / den if den > 0 else float("nan")


def _static_one(kbar: float, law: str) -> dict:
    rng = np.random.default_rng(0)
    exact = [_static_exact(kbar, law, rng) for _ in range(STATIC_REPS)]
    k = _strengths(kbar, law, 400_000, rng)
    ell = {"weighted": brentq(lambda v: KAPPA * v * np.mean(1.0 / (1.0 + v - k)) - 1.0,
                              1e-12, 1e6),
           "split": (1.0 - kbar) / (KAPPA - 1.0), "no split": 1.0 / (KAPPA - 1.0)}
    return {"exact": exact, "ell": ell, "theory": {m: _static_theory(k, v) for m, v in ell.items()}}


def run_static() -> None:
    run_resumable(STATIC_OUT, ((f"{law}|{kbar}", lambda kbar=kbar, law=law: _static_one(kbar, law))
                               for law in STATIC_LAWS for kbar in STATIC_KBARS))


def _static_lines() -> list[str]:
    done, lines = _section(
        STATIC_OUT.stem,
        "Static check: the leave-one-out of a projection with per-sample memorisation",
        f"r = (I - Pi_Y)(b + K r), K = diag(k_mu), k_mu = kbar (uniform) or kbar xi_mu^2 (chi2), "
        f"P = {KAPPA:g} D, D = {STATIC_D}; exact E[r^2] (mean and sd of {STATIC_REPS} draws) "
        "against r = (b - theta) / (1 + ell - k) with ell the weighted leave-one-out "
        "(ell^-1 = kappa E[(1 + ell - k)^-1]), the split's (1 - kbar) / (kappa - 1) or no "
        "split's 1 / (kappa - 1); nan: no self-consistent solution.",
        ["law", "kbar", "exact", "weighted (ell)", "split (ell)", "no split (ell)"])
    for key, v in (done or {}).items():
        law, kbar = key.split("|")
        cells = [f"{v['theory'][m]:.4f} ({v['ell'][m]:.3f})"
                 for m in ("weighted", "split", "no split")]
        lines.append(f"| {law} | {float(kbar):g} | {np.mean(v['exact']):.4f} ± "
                     f"{np.std(v['exact']):.4f} | " + " | ".join(cells) + " |")
    return lines


DYN_OUT = HERE / "offline_tail_projection_dynamic.json"
#: the dynamic check: rho_nu(tau) = b_nu - k_nu int_0^tau (1 + s) r_nu(s) ds on a grid
DYN_CASES = (("uniform", 1.0), ("chi2", 1.0), ("chi2", 3.0))
DYN_DIMS, DYN_T, DYN_DT, DYN_REPS, DYN_NS = (200, 400), 60, 0.1, 8, 4000
DYN_SHOW = (0.5, 1.0, 2.0, 4.0, 6.0)


def _dyn_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid tau_n, the memorisation rate c(tau) = 1 + tau and the trapezoid weights
    W[n, j] of int_0^tau_n."""
    tau = DYN_DT * np.arange(DYN_T + 1)
    W = np.zeros((DYN_T + 1, DYN_T + 1))
    for n in range(1, DYN_T + 1):
        W[n, :n + 1] = DYN_DT
        W[n, 0] = W[n, n] = DYN_DT / 2
    return tau, 1.0 + tau, W


def _dyn_exact(D: int, kbar: float, law: str, rng: np.random.Generator) -> np.ndarray:
    """E[r(tau_n)^2] of r = (I - Pi_Y) rho, rho = b - k int c r (the same quadrature), one
    draw of Y, b ~ N(0, I) and k; the current point implicit (a weighted least squares)."""
    _, c, W = _dyn_grid()
    P = int(KAPPA * D)
    Y = rng.standard_normal((P, D)) / np.sqrt(D)
    b = rng.standard_normal(P)
    k = _strengths(kbar, law, P, rng)
    R = np.zeros((DYN_T + 1, P))
    for n in range(DYN_T + 1):
        e = b - k * (R[:n].T @ (c[:n] * W[n, :n]))
        w = 1.0 / (1.0 + k * c[n] * W[n, n])
        a = np.linalg.solve(Y.T @ (w[:, None] * Y), Y.T @ (w * e))
        R[n] = w * (e - Y @ a)
    return np.mean(R * R, axis=1)


def _dyn_closure(kbar: float, law: str, rule: str) -> np.ndarray:
    """E[r(tau_n)^2] of the closure r = G_nu (b - theta), G_nu = (1 + ell - K_nu)^-1 (Volterra
    matrices on the grid), theta Gaussian with C_theta = kappa ell C_r ell^T, and ell the
    weighted leave-one-out (ell^-1 = kappa E G_nu), the split's (1 - Kbar) / (kappa - 1) or no
    split's 1 / (kappa - 1); NaN where the covariance iteration does not converge."""
    _, c, W = _dyn_grid()
    k = _strengths(kbar, law, DYN_NS, None)
    eye = np.eye(DYN_T + 1)
    Kb = -(c * W)
    ell = {"split": (eye - k.mean() * Kb), "no split": eye}.get(rule, eye) / (KAPPA - 1)
    for _ in range(80 if rule == "weighted" else 0):
        G = np.linalg.inv(eye + ell - k[:, None, None] * Kb)
        new = np.linalg.inv(KAPPA * G.mean(axis=0))
        if np.abs(new - ell).max() < 1e-10:
            break
        ell = 0.5 * (ell + new)
    G = np.linalg.inv(eye + ell - k[:, None, None] * Kb)
    GT, ones, Ct = np.transpose(G, (0, 2, 1)), np.ones_like(eye), np.zeros_like(eye)
    for _ in range(300):
        Cr = (G @ (ones + Ct) @ GT).mean(axis=0)
        new = KAPPA * ell @ Cr @ ell.T
        if not np.all(np.isfinite(new)) or np.abs(new).max() > 1e12:
            return np.full(DYN_T + 1, np.nan)
        if np.abs(new - Ct).max() < 1e-10:
            break
        Ct = new
    return np.diag(Cr).copy()


def _dyn_one(D: int, kbar: float, law: str) -> dict:
    rng = np.random.default_rng(1)
    exact = np.mean([_dyn_exact(D, kbar, law, rng) for _ in range(DYN_REPS)], axis=0)
    out = {"exact": list(exact)}
    for rule in ("weighted", "split", "no split"):
        out[rule] = [None if not np.isfinite(v) else float(v)
                     for v in _dyn_closure(kbar, law, rule)]
    return out


def run_dynamic() -> None:
    run_resumable(DYN_OUT, ((f"{D}|{law}|{kbar}", lambda D=D, k=kbar, law=law: _dyn_one(D, k, law))
                            for D in DYN_DIMS for law, kbar in DYN_CASES))


def _dynamic_lines() -> list[str]:
    k = nearest(_dyn_grid()[0], DYN_SHOW)
    done, lines = _section(
        DYN_OUT.stem, "Dynamic check: the same with per-sample memorisation in time",
        f"rho_nu(tau) = b_nu - k_nu int_0^tau (1 + s) r_nu(s) ds, r = (I - Pi_Y) rho, "
        f"P = {KAPPA:g} D, trapezoid grid dtau = {DYN_DT}; exact E[r^2] (mean of "
        f"{DYN_REPS} draws) against the Volterra closure with {DYN_NS} quantiles of k's law "
        "and each rule for ell; — : the closure's covariance iteration diverges.",
        ["D", "law", "kbar", "quantity"] + [f"tau = {t:g}" for t in DYN_SHOW])
    for key, v in (done or {}).items():
        D, law, kbar = key.split("|")
        for name in ("exact", "weighted", "split", "no split"):
            cells = ["—" if v[name][j] is None else f"{v[name][j]:.4f}" for j in k]
            lines.append(f"| {D} | {law} | {float(kbar):g} | {name} | " + " | ".join(cells)
                         + " |")
    return lines


def table() -> None:
    done = load_results(OUT)
    lines = markdown_head(
        "The fast column as a projection (kappa = 5.5, alpha eps = 0.02, alpha / eps = 50)",
        "`python benchmarks/offline_tail_projection.py`: the quadratic model trained on "
        "(I - Pi_Z) rho with Z = X (the A5' fast-column limit of the exact flow), Z = Y (an "
        "independent Gaussian design) or no column; see the module docstring.", [])[:3]
    sweep = load_results(SWEEP_OUT)
    lines += _design_lines(done, load_results(CHANNELS_OUT)) + _column_lines(done, sweep)
    lines += _spread_lines(done, sweep) + _k3_lines() + _k3_lines(2.0) + _k3_lines(1.5)
    lines += _static_lines() + _dynamic_lines()
    write_table(HERE / "offline_tail_projection.md", lines)


if __name__ == "__main__":
    args = sys.argv[1:] or ["run"]
    if args[0] == "run":
        designs = DESIGNS
        if "--designs" in args:
            i = args.index("--designs")
            designs, args = tuple(args[i + 1:]), args[:i]
            if not designs or set(designs) - set(DESIGNS):
                sys.exit(f"--designs takes some of {' '.join(DESIGNS)}, got {designs}")
        dims = [int(d) for d in args[1:]] or [100, 200, 400]
        run(dims, designs)
    elif args[0] == "k3":
        run_k3([int(d) for d in args[1:]] or [100, 200, 400])
    elif args[0] == "k15":
        run_k3([int(d) for d in args[1:]] or [100, 200], 1.5)
    elif args[0] == "k2":
        run_k3([int(d) for d in args[1:]] or [100, 200], 2.0)
    elif args[0] == "static":
        run_static()
    elif args[0] == "dynamic":
        run_dynamic()
    elif args[0] == "table":
        table()
    else:
        sys.exit(f"unknown command {args[0]!r}: run [D ...] [--designs X Y none] | "
                 "k3 | k2 | k15 [D ...] | static | dynamic | table")
