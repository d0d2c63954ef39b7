"""Where approximation (C) of the interpolant (docs/offline_theory.md §15.1: the matrices A(tau)
commute) loses the time ordering of the exact flow (issue 13; docs §15.3).

    python benchmarks/offline_ordering.py restart   # kappa = 1.5: restart (C) from the exact
                                                    # state at tau1 (~8 min; resumable)
    python benchmarks/offline_ordering.py cflow     # (C) as a dynamics, dc/dtau = grad Psi(c),
                                                    # against the exact flow (~2 min; resumable)
    python benchmarks/offline_ordering.py clock     # the same with the exact flow's clock
                                                    # (~5 min; resumable; after cflow)
    python benchmarks/offline_ordering.py kernel    # exact vs (C) tangent kernel at the exact
                                                    # states (~1 min; resumable)
    python benchmarks/offline_ordering.py table     # -> offline_ordering.md

restart: the exact flow (``lr.solve(..., method="flow")``, N = inf, (alpha, eps) = (1, .02),
convention A) is run to tau1 on the DMFT clock tau = 2 eps t / (alpha D); from its state
(M1, u1) the rest of the flow is taken as commuting: U = e^(K2/2) U1, so M = e^(K2/2) M1 e^(K2/2),
u = u1 - X^T c2 / (eps kappa), with the P numbers c2 fixed by interpolation (Powell's hybrid
method).  tau1 = 0 is the interpolant itself; as tau1 grows the restart must reach the exact
tau -> inf state (tau = 640 here); how fast it does says when the ordering matters.

cflow: under (C) the state at time tau is the point (15.1) of c(tau) = int_0^tau r, and
r = F(c) = grad Psi(c), so (C) as a dynamics is the gradient ascent dc/dtau = grad Psi(c) of the
concave dual (BDF with the Hessian as Jacobian); its limit is the interpolant.  Compared with
the exact flow's losses at tau = 2 ... 160.

clock: (C) as a dynamics run at the exact flow's speed: at (C)'s state M = e^K(c) and residual
r = grad Psi(c), rho = r^T Theta_exact r / r^T Theta_C r (the two tangent kernels below, linear
column included) is how much faster the exact flow would shrink this residual; the clocked flow
is dc/dtau = rho(c) grad Psi(c): the same path as (C), travelled at the exact kernel's rate.

kernel: at a state M = V e^Lambda V^T the exact flow's quadratic tangent kernel is
(alpha eps / kappa) sum_ij Y_mi Y_mj Y_ni Y_nj (e^l_i + e^l_j) / 2 (Y = X V; arithmetic mean), the
commuting flow's the same with the logarithmic mean (e^l_i - e^l_j) / (l_i - l_j); their
difference is positive semidefinite.  Measured at the exact states: trace ratio and the
smallest eigenvalue of the difference.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import root

import lazyrich_theory as lr
from common import run_resumable
from lazyrich_theory.core.statistics import population_loss
from lazyrich_theory.theory.offline.implicit_bias import (_Dual, entropic_interpolant,
                                                          exp_divided_differences)

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_ordering.json"
TAU_END = 640.0
TAU1 = (0.25, 1.0, 3.0, 6.0, 10.0, 20.0)
RESTART = {50: range(4), 100: range(4)}
CFLOW_TAUS = (2.0, 5.0, 10.0, 20.0, 40.0, 160.0)
CFLOW = {50: (3.0, 4.0, 5.5), 100: (3.0, 5.5)}
CFLOW_SEEDS = range(2)
KERNEL_KAPPAS = (1.5, 3.0, 5.5)
KERNEL_TAUS = (1.0, 5.0, 20.0)


def _problem(D: int, kappa: float, seed: int) -> lr.Problem:
    return lr.preset("fig1").replace(N=math.inf, D=D, P=int(round(kappa * D)), alpha=1.0,
                                     eps=0.02, seed=seed)


def _steps(p: lr.Problem, tau: float) -> int:
    return int(tau * p.alpha * p.D / (2.0 * p.eps))


class _Case:
    """One problem's data and its relative population loss / linear power of a state."""

    def __init__(self, p: lr.Problem):
        self.p, self.data = p, p.data()
        self.X = np.asarray(self.data.X, float)
        self.y = np.asarray(self.data.y, float)
        self.beta = np.asarray(self.data.beta, float)
        self.L0 = 0.75 * (2.0 * p.tau * float(self.beta @ self.beta) / p.D) ** 2

    def loss(self, M: np.ndarray, u: np.ndarray) -> float:
        D = self.p.D
        return population_loss(u, M, np.zeros(D), np.eye(D), self.beta, self.p.alpha,
                               self.p.eps, self.p.tau) / self.L0

    def linear(self, u: np.ndarray) -> float:
        return self.p.alpha ** 2 * float(u @ u) / self.p.D / self.L0

    def exact(self, tau: float) -> lr.Trajectory:
        return lr.solve(self.p, _steps(self.p, tau), method="flow", data=self.data)


def _restart_point(case: _Case, M1: np.ndarray, u1: np.ndarray):
    """(M, u) of the commuting rest of the flow from (M1, u1) that interpolates."""
    X, y, a, e = case.X, case.y, case.p.alpha, case.p.eps
    kappa = X.shape[0] / X.shape[1]
    x2 = (X * X).sum(1)

    def state(c):
        lam, V = np.linalg.eigh((-1.0 / kappa) * (X.T * c) @ X)     # K2 / 2
        E = (V * np.exp(lam)) @ V.T
        return E @ M1 @ E, u1 - X.T @ c / (e * kappa)

    def F(c):
        M, u = state(c)
        return a * X @ u + 0.5 * a * e * (np.einsum("ij,jk,ik->i", X, M, X) - x2) - y

    sol = root(F, np.zeros(X.shape[0]), method="hybr", options={"xtol": 1e-13})
    worst = float(np.abs(F(sol.x)).max())
    if not worst < 1e-8 * float(np.abs(y).max()):
        raise RuntimeError(f"restart did not interpolate: residual {worst:.1e}")
    return state(sol.x)


def _restart_job(D: int, seed: int) -> dict:
    case = _Case(_problem(D, 1.5, seed))
    ex = case.exact(TAU_END)
    st = entropic_interpolant(case.p, case.data)
    out = {"exact": float(ex.population_loss[-1] / ex.population_loss[0]),
           "exact_linear": float(ex.linear_power[-1] / ex.population_loss[0]),
           "interpolant": st.population_loss, "interpolant_linear": st.linear_power,
           "tau1": list(TAU1), "restart": [], "restart_linear": [], "train_at_tau1": []}
    for t1 in TAU1:
        tr = case.exact(t1)
        M, u = _restart_point(case, tr.final_state["M"], tr.final_state["wbar"])
        out["restart"].append(case.loss(M, u))
        out["restart_linear"].append(case.linear(u))
        out["train_at_tau1"].append(float(tr.train_loss[-1] / tr.population_loss[0]))
    return out


def _rayleigh(dual: _Dual, c: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """r^T Theta r for the exact flow's tangent kernel and for (C)'s, both at M = e^K(c):
    the quadratic parts with the arithmetic / logarithmic means of e^lambda, the linear column
    (alpha / (eps kappa)) X X^T the same in both."""
    lam, _, Y, gam = dual.eig(c)
    S = (Y.T * r) @ Y
    e = np.exp(lam)
    a, eps, k = dual.alpha, dual.eps, dual.kappa
    lin = a / (eps * k) * float(r @ (dual.G @ r))
    return (a * eps / k * float(np.sum(S * S * 0.5 * (e[:, None] + e[None, :]))) + lin,
            a * eps / k * float(np.sum(S * S * gam)) + lin)


def _clock(dual: _Dual, c: np.ndarray) -> float:
    """The exact flow's rate along (C)'s residual over (C)'s own, at (C)'s state."""
    exact, commuting = _rayleigh(dual, c, dual.residual(c))
    return exact / commuting


def _cflow_job(D: int, kappa: float, seed: int, clocked: bool = False) -> dict:
    """(C) as a dynamics; ``clocked``: its clock run at the exact flow's rate along the
    residual, dc/dtau = rho(c) grad Psi(c) (the exact flow is then not rerun)."""
    case = _Case(_problem(D, kappa, seed))
    X, P = case.X, case.X.shape[0]
    a, e, k = case.p.alpha, case.p.eps, P / D
    dual = _Dual(X, case.y, a, e)

    def rho(c):
        return _clock(dual, c) if clocked else 1.0

    def jac(_t, c):     # rho's own derivative left out: BDF needs only an approximate Jacobian
        return -rho(c) * np.column_stack([dual.hessp(c, v) for v in np.eye(P)])

    sol = solve_ivp(lambda _t, c: rho(c) * dual.residual(c), (0.0, CFLOW_TAUS[-1]),
                    np.zeros(P), method="BDF", jac=jac, t_eval=CFLOW_TAUS, rtol=1e-6, atol=1e-9)
    pop, train = [], []
    for c in sol.y.T:
        lam, V, _, _ = dual.eig(c)
        pop.append(case.loss((V * np.exp(lam)) @ V.T, -X.T @ c / (e * k)))
        train.append(float(np.mean(dual.residual(c) ** 2)) / case.L0)
    out = {"taus": list(CFLOW_TAUS), "cflow": pop, "cflow_train": train}
    if clocked:
        return out | {"rho": [_clock(dual, c) for c in sol.y.T]}
    at = [_steps(case.p, t) for t in CFLOW_TAUS]
    ex = lr.solve(case.p, at[-1], method="flow", data=case.data, save_times=at)
    L0 = ex.population_loss[0]
    return out | {"exact": [float(v) for v in np.interp(at, ex.t, ex.population_loss) / L0],
                  "exact_train": [float(v) for v in np.interp(at, ex.t, ex.train_loss) / L0],
                  "interpolant": entropic_interpolant(case.p, case.data).population_loss}


def _kernel_job(kappa: float, tau: float) -> dict:
    case = _Case(_problem(100, kappa, 0))
    M = case.exact(tau).final_state["M"]
    lam, V = np.linalg.eigh(0.5 * (M + M.T))
    Y = case.X @ V
    log_mean = exp_divided_differences(np.log(lam))
    arith = 0.5 * (lam[:, None] + lam[None, :])

    def kernel(W):
        return np.einsum("mi,mj,ij,ni,nj->mn", Y, Y, W, Y, Y, optimize=True)

    exact, comm = kernel(arith), kernel(log_mean)
    return {"log_eig_min": float(np.log(lam).min()), "log_eig_max": float(np.log(lam).max()),
            "trace_ratio": float(np.trace(exact) / np.trace(comm)),
            "min_eig_difference": float(np.linalg.eigvalsh(exact - comm).min())}


def _jobs(which: str):
    if which == "kernel":
        for kappa in KERNEL_KAPPAS:
            for tau in KERNEL_TAUS:
                yield f"kernel|{kappa}|{tau}", (lambda k=kappa, t=tau: _kernel_job(k, t))
        return
    if which == "restart":
        for D, seeds in RESTART.items():
            for s in seeds:
                yield f"restart|{D}|{s}", (lambda D=D, s=s: _restart_job(D, s))
    else:
        clocked = which == "clock"
        for D, kappas in CFLOW.items():
            for kappa in kappas:
                for s in CFLOW_SEEDS:
                    yield (f"{which}|{D}|{kappa}|{s}",
                           lambda D=D, k=kappa, s=s: _cflow_job(D, k, s, clocked))


def _tau_section(title: str, caption: str, last: str, rows) -> list[str]:
    """A markdown section with a column per CFLOW_TAUS; rows of (D, kappa, seed, cells, last)."""
    out = ["", f"## {title}", "", caption, "",
           "| D | kappa | seed | " + " | ".join(f"tau = {t:g}" for t in CFLOW_TAUS)
           + f" | {last} |", "|" + "---|" * (4 + len(CFLOW_TAUS))]
    for D, kappa, seed, cells, end in rows:
        out.append(f"| {D} | {float(kappa):g} | {seed} | " + " | ".join(cells) + f" | {end} |")
    return out


def table() -> None:
    done = json.loads(OUT.read_text())
    lines = ["# Approximation (C) and the time ordering (docs/offline_theory.md §15.3)", "",
             "## kappa = 1.5: (C) restarted from the exact state at tau1", "",
             "Relative population loss at tau -> inf (exact: tau = 640); tau1 = 0 is the "
             "interpolant.  In parentheses: the linear power.", "",
             "| D | seed | exact | tau1 = 0 | " + " | ".join(f"{t:g}" for t in TAU1) + " |",
             "|" + "---|" * (4 + len(TAU1))]
    for key, r in done.items():
        if key.startswith("restart|"):
            _, D, s = key.split("|")
            cells = [f"{v:.3f} ({w:.3f})" for v, w in zip(r["restart"], r["restart_linear"])]
            lines.append(f"| {D} | {s} | {r['exact']:.3f} ({r['exact_linear']:.3f}) | "
                         f"{r['interpolant']:.3f} ({r['interpolant_linear']:.3f}) | "
                         + " | ".join(cells) + " |")
    cflow = [(*key.split("|")[1:], [f"{x:.3f} / {c:.3f}" for x, c in zip(r["exact"], r["cflow"])],
              f"{r['interpolant']:.3f}") for key, r in done.items() if key.startswith("cflow|")]
    lines += _tau_section(
        "(C) as a dynamics: dc/dtau = grad Psi(c) against the exact flow",
        "Relative population loss exact / commuting flow at each tau; last column the "
        "interpolant (the commuting flow's limit).", "interpolant", cflow)
    clock = [(*key.split("|")[1:], [f"{x:.3f} / {u:.3f} / {v:.3f}" for x, u, v
                                     in zip(c["exact"], c["cflow"], r["cflow"])],
              f"{r['rho'][CFLOW_TAUS.index(40.0)]:.2f}") for key, r in done.items()
             if key.startswith("clock|") and (c := done.get("cflow|" + key[6:]))]
    lines += _tau_section(
        "(C) on the exact flow's clock",
        "Relative population loss exact / (C) / (C) clocked (dc/dtau = rho grad Psi); "
        "rho at tau = 40 in the last column.", "rho(40)", clock)
    lines += ["", "## Tangent kernels at the exact states (D = 100, seed 0)", "",
              "Quadratic tangent kernel of the exact flow (arithmetic means) against the commuting "
              "flow's (logarithmic means) at the same state M(tau).", "",
              "| kappa | tau | log-eigenvalues of M | trace ratio exact / (C) | "
              "smallest eigenvalue of the difference |", "|---|---|---|---|---|"]
    for key, r in done.items():
        if key.startswith("kernel|"):
            _, kappa, tau = key.split("|")
            lines.append(f"| {float(kappa):g} | {float(tau):g} | {r['log_eig_min']:.1f} … "
                         f"{r['log_eig_max']:.1f} | {r['trace_ratio']:.2f} | "
                         f"{r['min_eig_difference']:.1e} |")
    (HERE / "offline_ordering.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "table"
    if cmd in ("restart", "cflow", "clock", "kernel"):
        run_resumable(OUT, _jobs(cmd))
        table()
    elif cmd == "table":
        table()
    else:
        sys.exit(f"unknown command {cmd!r}: restart, cflow, clock, kernel or table")
