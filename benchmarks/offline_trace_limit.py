"""The m -> 0 limit of the interpolant: minimum-trace PSD interpolation with a free linear
column (docs/offline_theory.md §15.7).  Theory (``lazyrich_theory.theory.offline.trace_limit``)
against direct convex solves.

    python benchmarks/offline_trace_limit.py ao    # the D = inf program: loss against kappa
    python benchmarks/offline_trace_limit.py dim   # finite-D thresholds: the descent cone's
                                                   # statistical dimension, D = 20-2000 (~3 min)
    python benchmarks/offline_trace_limit.py sdp   # the convex program itself at D = 20, 40, 60
                                                   # (needs cvxpy: pip install cvxpy; resumable)
    python benchmarks/offline_trace_limit.py gauss # the same with Gaussian-equivalent measurements
                                                   # (I + sqrt(2) G, 2 w), D = 20, 40 (cvxpy)
    python benchmarks/offline_trace_limit.py finite # the Gaussian auxiliary problem at finite D
                                                   # (semicircle quantiles; needs cvxpy, ~2 min)
    python benchmarks/offline_trace_limit.py entropic # the same for the interpolant's own
                                                   # objective at finite m (~5 min)
    python benchmarks/offline_trace_limit.py table # everything measured, as markdown
    python benchmarks/offline_trace_limit.py plot  # -> docs/gallery/trace_limit.png and
                                                   # trace_limit_fixed_m.png

The SDP: min tr N s.t. N psd, z^T N z + 2 b . z = (betahat . z)^2 for kappa D Gaussian z, in
the z units of the theory (teacher N = betahat betahat^T, b = 0); success = relative error
below 1e-3; loss = (4/3)(|b|^2 + (tr Dl)^2 + 2 tr Dl^2), Dl = (N - teacher) / 2, the relative
population loss of the network whose interpolant this is (docs §15.6).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from common import half_crossing, run_resumable
from lazyrich_theory.theory.offline.trace_limit import (descent_dimension, trace_limit,
                                                        trace_limit_critical_kappa)

HERE = Path(__file__).resolve().parent
DIM_OUT, SDP_OUT = HERE / "offline_trace_limit_dim.json", HERE / "offline_trace_limit_sdp.json"
FINITE_OUT = HERE / "offline_trace_limit_finite.json"
GAUSS_OUT = HERE / "offline_trace_limit_gauss.json"
ENTROPIC_OUT = HERE / "offline_trace_limit_entropic.json"
#: (kappa, m) of the interpolant's measured series (offline_floor_map.py smallm / above)
ENTROPIC_CELLS = ((3.0, 1e-4), (3.5, 1e-4), (4.0, 1e-4), (5.0, 0.0548), (5.0, 0.313),
                  (9.0, 0.313))
ENTROPIC_DS = (50, 100, 200, 400, 800)
#: the interpolant's measured cells (offline_floor_map.py above) and its training sets per cell
ABOVE_OUT, ABOVE_SEEDS = HERE / "offline_floor_map_above.json", 4
GAUSS_DS = {20: 40, 40: 20}
FINITE_DS, FINITE_KAPPAS = (20, 40, 80, 160, 320, 640, 1280), (2.5, 3.0)
DIM_DS = {20: 4000, 40: 2000, 60: 1000, 100: 600, 200: 300, 400: 120, 1000: 40, 2000: 16}
SDP_DS = {20: 40, 40: 20, 60: 12}                      # D: training sets per kappa
SDP_KAPPAS = (2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.25, 4.5)
AO_KAPPAS = (1.5, 2.0, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 3.9, 4.0)


def _sdp(D: int, kappa: float, seed: int, gaussian: bool = False) -> dict:
    """One minimum-trace interpolant (Clarabel, SCS if it fails).  ``gaussian``: the
    measurements (z z^T, 2 z) replaced by their Gaussian equivalent (I + sqrt(2) G, 2 w) --
    same mean and covariance, G symmetric Gaussian (diagonal variance 1, off-diagonal 1/2) and
    w ~ N(0, I) independent of it."""
    import cvxpy as cp

    P = int(round(kappa * D))
    rng = np.random.default_rng([D, P, seed] + ([1] if gaussian else []))
    N, b = cp.Variable((D, D), PSD=True), cp.Variable(D)
    if gaussian:
        a = rng.standard_normal((P, D, D))
        A = np.eye(D) + (a + a.transpose(0, 2, 1)) / np.sqrt(2)
        lhs = A.reshape(P, D * D) @ cp.vec(N, order="F") + 2 * rng.standard_normal((P, D)) @ b
        labels = A[:, 0, 0]                             # the teacher's measurements
    else:
        z = rng.standard_normal((P, D))
        lhs = cp.sum(cp.multiply(z @ N, z), axis=1) + 2 * z @ b      # z^T N z + 2 b . z
        labels = z[:, 0] ** 2                           # betahat = e_1
    prob = cp.Problem(cp.Minimize(cp.trace(N)), [lhs == labels])
    t0 = time.perf_counter()
    for solver, opts in (("CLARABEL", {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9,
                                       "tol_feas": 1e-9}),
                         ("SCS", {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iters": 200000})):
        try:
            prob.solve(solver=solver, **opts)
        except cp.error.SolverError:
            continue
        if N.value is not None:
            break
    H = (N.value + N.value.T) / 2
    H[0, 0] -= 1.0
    g = b.value
    err = float(np.sqrt(np.sum(H * H) + g @ g))
    loss = 4.0 / 3.0 * (g @ g + (np.trace(H) / 2) ** 2 + 2 * np.sum((H / 2) ** 2))
    return {"loss": float(loss), "error": err, "success": err < 1e-3, "solver": solver,
            "seconds": time.perf_counter() - t0}


def _semicircle_quantiles(n: int) -> np.ndarray:
    """The n eigenvalues of the (diagonal variance 1, off-diagonal 1/2) Gaussian symmetric
    matrix at the semicircle's quantiles (i + 1/2) / n: radius sqrt(2 n)."""
    from scipy.optimize import brentq

    def cdf(x: float, u: float) -> float:
        return 0.5 + (x * np.sqrt(1 - x * x) + np.arcsin(x)) / np.pi - u

    return np.sqrt(2 * n) * np.array([brentq(cdf, -1, 1, args=((i + 0.5) / n,))
                                      for i in range(n)])


def _finite_ao(D: int, kappa: float, m: float | None = None) -> dict:
    """Gordon's auxiliary problem of the minimum-trace interpolant at finite D, every Gaussian
    norm at its typical value and the bulk on the D - 1 eigenvalues of G' (semicircle
    quantiles), its Frobenius cost kept: the D -> inf program (15.8) is its limit.  With ``m``
    the objective is the interpolant's own, m tr phi(N / m) per D (15.5), and the bulk may go
    down to -m / D (M psd): the same auxiliary problem for the entropic interpolant at finite
    m and D (no training set)."""
    import cvxpy as cp

    n, sP = D - 1, np.sqrt(kappa * D)
    lam = _semicircle_quantiles(n)
    h, c, q = cp.Variable(), cp.Variable(nonneg=True), cp.Variable(nonneg=True)
    b, g = cp.Variable(n, nonneg=m is None), cp.Variable(nonneg=True)
    T = h + cp.sum(b) + q
    norm = cp.norm(cp.hstack([sP * T, sP * np.sqrt(2) * h, sP * 2 * c, sP * np.sqrt(2) * q,
                              sP * 2 * g, sP * np.sqrt(2) * b]))
    gauss = -2 * np.sqrt(n) * c + np.sqrt(2) * lam @ b - 2 * np.sqrt(D) * g
    constraints = [h >= -1, cp.quad_over_lin(c, 1 + h) <= q, gauss + norm <= 0]
    if m is None:
        objective = T
    else:               # per eigenvalue n = D x of N: ((n + m) ln((n + m) / m) - n) / D
        def phi(x):
            return (-cp.entr(D * x + m) + (D * x + m) * np.log(1 / m) - D * x) / D
        objective = phi(1 + h) + phi(q) + cp.sum(phi(b))
        constraints.append(b >= -m / D)
    prob = cp.Problem(cp.Minimize(objective), constraints)
    try:
        prob.solve(solver="CLARABEL")
    except cp.error.SolverError:
        prob.solve(solver="SCS", eps_abs=1e-9, eps_rel=1e-9, max_iters=200000)
    hv, cv, qv, bv, gv = (float(h.value), float(c.value), float(q.value), b.value,
                          float(g.value))
    Tv = hv + bv.sum() + qv
    A = Tv ** 2 + 2 * (hv ** 2 + 2 * cv ** 2 + (bv ** 2).sum() + qv ** 2)
    return {"loss": float((A + 4 * gv ** 2) / 3), "spike_change": hv,
            "bulk_trace": float(bv.sum()), "status": prob.status}


def finite() -> dict:
    jobs = ((f"{D}|{k}", (lambda D=D, k=k: _finite_ao(D, k)))
            for D in FINITE_DS for k in FINITE_KAPPAS)
    return run_resumable(FINITE_OUT, jobs)


def entropic() -> dict:
    jobs = ((f"{k}|{m}|{D}", (lambda D=D, k=k, m=m: _finite_ao(D, k, m)))
            for k, m in ENTROPIC_CELLS for D in ENTROPIC_DS)
    return run_resumable(ENTROPIC_OUT, jobs)


def gauss() -> dict:
    jobs = ((f"{D}|{k}|{s}", (lambda D=D, k=k, s=s: _sdp(D, k, s, gaussian=True)))
            for D, n in GAUSS_DS.items() for k in SDP_KAPPAS for s in range(n))
    return run_resumable(GAUSS_OUT, jobs)


def sdp() -> dict:
    jobs = ((f"{D}|{k}|{s}", (lambda D=D, k=k, s=s: _sdp(D, k, s)))
            for D, n in SDP_DS.items() for k in SDP_KAPPAS for s in range(n))
    return run_resumable(SDP_OUT, jobs)


def dim() -> dict:
    jobs = ((str(D), (lambda D=D, n=n: {"delta_over_D": descent_dimension(D, n, seed=D) / D,
                                        "samples": n}))
            for D, n in DIM_DS.items())
    return run_resumable(DIM_OUT, jobs)


def ao_table() -> None:
    print("| kappa | " + " | ".join(f"{k:g}" for k in AO_KAPPAS) + " |")
    print("|---|" + "---|" * len(AO_KAPPAS))
    print("| loss (D = inf) | " + " | ".join(f"{trace_limit(k).loss:.4f}" for k in AO_KAPPAS)
          + " |")
    print(f"critical kappa (loss 1/2): {trace_limit_critical_kappa():.3f}; "
          f"without the column {trace_limit_critical_kappa(column=False):.3f}")


def table() -> None:
    ao_table()
    if DIM_OUT.exists():
        d = json.loads(DIM_OUT.read_text())
        Ds = np.array([int(k) for k in d])
        per = np.array([d[k]["delta_over_D"] for k in d])
        a, b = np.polyfit(Ds ** (-1 / 3), per, 1)[::-1]
        print("\n| D | " + " | ".join(str(D) for D in Ds) + " |\n|---|" + "---|" * len(Ds))
        print("| delta / D | " + " | ".join(f"{v:.3f}" for v in per) + " |")
        print("| threshold kappa_u(D) | " + " | ".join(f"{v + 1:.3f}" for v in per) + " |")
        print(f"fit delta / D = {a:.3f} {b:+.2f} D^(-1/3)")
    if FINITE_OUT.exists():
        f = json.loads(FINITE_OUT.read_text())
        for k in FINITE_KAPPAS:
            print(f"\nfinite-D Gaussian auxiliary problem, kappa = {k:g}: " + ", ".join(
                f"D = {D}: {f[key]['loss']:.3f}" for D in FINITE_DS if (key := f"{D}|{k}") in f)
                + f"; D = inf: {trace_limit(k).loss:.3f}")
    if ENTROPIC_OUT.exists():
        e = json.loads(ENTROPIC_OUT.read_text())
        meas = json.loads(ABOVE_OUT.read_text()) if ABOVE_OUT.exists() else {}
        print("\n| kappa | m | " + " | ".join(f"D = {D}" for D in ENTROPIC_DS)
              + " |  (auxiliary problem / interpolant, seed mean)")
        for k, m in ENTROPIC_CELLS:
            cells = []
            for D in ENTROPIC_DS:
                a = e.get(f"{k}|{m}|{D}")
                got = _interpolant_losses(meas, k, m, D)
                cells.append(("—" if a is None else f"{a['loss']:.3f}")
                             + ("" if got is None else f" / {got.mean():.3f}"))
            print(f"| {k:g} | {m:g} | " + " | ".join(cells) + " |")
    for name, path, ds in (("rank-one (z z^T, 2 z)", SDP_OUT, SDP_DS),
                           ("Gaussian-equivalent", GAUSS_OUT, GAUSS_DS)):
        _sdp_table(name, path, ds)


def _sdp_table(name: str, path: Path, ds: dict) -> None:
    for D, (loss, fail) in _sdp_means(path, ds).items():
        print(f"\n{name}, D = {D} ({ds[D]} sets): P(fail) " + ", ".join(f"{f:.2f}" for f in fail)
              + f"; 50 % crossing {half_crossing(SDP_KAPPAS, fail):.2f}")
        print("  mean loss " + ", ".join(f"{v:.4f}" for v in loss) + "; D = inf: "
              + ", ".join(f"{trace_limit(k).loss:.4f}" for k in SDP_KAPPAS))


def _interpolant_losses(meas: dict, kappa: float, m: float, D: int) -> np.ndarray | None:
    """The interpolant's per-training-set losses of one cell of ``offline_floor_map.py
    above`` (None unless every set is done)."""
    keys = [f"{kappa}|{m}|{D}|{i}" for i in range(ABOVE_SEEDS)]
    return np.array([meas[k]["loss"] for k in keys]) if all(k in meas for k in keys) else None


def _sdp_means(path: Path, ds: dict) -> dict[int, tuple[list, list]]:
    """Per D: (mean loss, failure fraction) on SDP_KAPPAS, where every set is done."""
    s = json.loads(path.read_text()) if path.exists() else {}
    out = {}
    for D, n in ds.items():
        rows = [[s[k] for i in range(n) if (k := f"{D}|{kap}|{i}") in s] for kap in SDP_KAPPAS]
        if all(len(r) == n for r in rows):
            out[D] = ([np.mean([r["loss"] for r in row]) for row in rows],
                      [1 - np.mean([r["success"] for r in row]) for row in rows])
    return out


def plot() -> None:
    """Left: the D = inf loss (15.8) against kappa with the direct solves and the finite-D
    auxiliary problem.  Right: the recovery threshold against D."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.5, 4.4), constrained_layout=True)
    ax, ax2 = fig.subplots(1, 2)
    ks = np.linspace(1.3, 4.3, 121)
    ax.plot(ks, [trace_limit(k).loss for k in ks], "k-", lw=2, label="D = ∞ theory (15.8)")
    shades = {20: "tab:blue", 40: "tab:orange", 60: "tab:green"}
    for D, (loss, _) in _sdp_means(SDP_OUT, SDP_DS).items():
        ax.plot(SDP_KAPPAS, loss, "o-", color=shades[D], ms=5, lw=1,
                label=f"convex solve, rank-one, D = {D}")
    for D, (loss, _) in _sdp_means(GAUSS_OUT, GAUSS_DS).items():
        ax.plot(SDP_KAPPAS, loss, "s--", color=shades[D], mfc="none", ms=5, lw=0.8,
                label=f"convex solve, Gaussian-equivalent, D = {D}")
    if FINITE_OUT.exists():
        f = json.loads(FINITE_OUT.read_text())
        for k, mk in zip(FINITE_KAPPAS, ("^", "v")):
            Ds = [D for D in FINITE_DS if f"{D}|{k}" in f]
            ax.plot([k] * len(Ds), [f[f"{D}|{k}"]["loss"] for D in Ds], mk, color="0.45",
                    ms=5, label=f"finite-D auxiliary problem at κ = {k:g}, D = 20…1280")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xlabel("κ = P / D")
    ax.set_ylabel("τ → ∞ test loss / initial (m → 0)")
    ax.set_ylim(0, 1.6)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Minimum-trace interpolant: loss against κ", fontsize=10)
    if DIM_OUT.exists():
        d = json.loads(DIM_OUT.read_text())
        Ds = np.array([int(k) for k in d])
        ax2.semilogx(Ds, [d[k]["delta_over_D"] + 1 for k in d], "k.-",
                     label="κ_u(D) = δ_D / D + 1 (statistical dimension)")
    for path, ds, mk, name in ((SDP_OUT, SDP_DS, "o", "rank-one"),
                               (GAUSS_OUT, GAUSS_DS, "s", "Gaussian-equivalent")):
        pts = {D: half_crossing(SDP_KAPPAS, fail) for D, (_, fail) in _sdp_means(path, ds).items()}
        ax2.plot(list(pts), list(pts.values()), mk, mfc="none" if mk == "s" else None,
                 color="tab:red", ms=7, label=f"50 % failure, convex solves ({name})")
    ax2.axhline(4.0, color="tab:red", ls="--", lw=1, label="D = ∞: κ_u = 4")
    ax2.set_xlabel("D")
    ax2.set_ylabel("recovery threshold κ")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7, loc="lower right")
    ax2.set_title("Exact recovery threshold against D", fontsize=10)
    out = HERE.parent / "docs" / "gallery" / "trace_limit.png"
    fig.savefig(out, dpi=130)
    print(f"-> {out}")
    _plot_fixed_m()


def _plot_fixed_m() -> None:
    """The tau -> inf loss above kappa = 4 against D at fixed m: the interpolant (4 training
    sets, mean +- s.e.; offline_floor_map.py above) and the entropic auxiliary problem."""
    from matplotlib.figure import Figure

    if not (ABOVE_OUT.exists() and ENTROPIC_OUT.exists()):
        return
    meas, e = json.loads(ABOVE_OUT.read_text()), json.loads(ENTROPIC_OUT.read_text())
    fig = Figure(figsize=(6.4, 4.4), constrained_layout=True)
    ax = fig.subplots()
    for (k, m), color in zip(((5.0, 0.0548), (5.0, 0.313), (9.0, 0.313)),
                             ("tab:blue", "tab:red", "tab:green")):
        Ds = [D for D in ENTROPIC_DS if _interpolant_losses(meas, k, m, D) is not None]
        got = np.array([_interpolant_losses(meas, k, m, D) for D in Ds])
        ax.errorbar(Ds, got.mean(axis=1), yerr=got.std(axis=1, ddof=1) / np.sqrt(ABOVE_SEEDS),
                    fmt="o-",
                    color=color, ms=5, capsize=2, label=f"κ = {k:g}, m = {m:g}: interpolant")
        ao = [e[f"{k}|{m}|{D}"]["loss"] for D in ENTROPIC_DS if f"{k}|{m}|{D}" in e]
        ax.plot(ENTROPIC_DS[:len(ao)], ao, "--", color=color, lw=1.2,
                label=f"κ = {k:g}, m = {m:g}: auxiliary problem (no training set)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ENTROPIC_DS, [str(D) for D in ENTROPIC_DS])
    ax.minorticks_off()
    ax.set_xlabel("D")
    ax.set_ylabel("τ → ∞ test loss / initial")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Above the trace threshold κ_u = 4 the loss still grows with D", fontsize=10)
    out = HERE.parent / "docs" / "gallery" / "trace_limit_fixed_m.png"
    fig.savefig(out, dpi=130)
    print(f"-> {out}")


if __name__ == "__main__":
    import sys
    arg = sys.argv[1] if len(sys.argv) > 1 else "table"
    commands = {"ao": ao_table, "dim": dim, "sdp": sdp, "gauss": gauss, "finite": finite,
                "entropic": entropic, "table": table, "plot": plot}
    if arg not in commands:
        raise SystemExit(f"unknown command {arg!r}: " + ", ".join(commands))
    commands[arg]()
