"""What the late tail is: the spike's deficit along beta-hat, slaved to the bulk's trace
(docs/offline_theory.md §11.6).

Four measurements, all with the package's own solvers:

* ``online``: the N = inf population ODE (the package's two-scalar right-hand side,
  ``population.scalar_rhs``: M = (1 + a) I + b betahat betahat^T) after the transition, against
  the closed form of §11.6 (``online_tail``): the spike deficit delta = 1 - alpha eps (a + b) /
  (b2 D) and the bulk's trace excess t = alpha eps a (D - 1) / (b2 D) (the definition of the
  exact runs, tr_perp(M - I) = (D - 1) a) lock to t = 3 delta, and
  ln(1 + A / delta), A = alpha eps / (3 b2), grows at the rate 2 alpha eps / 3 exactly.
* ``exact D [D ...]``: the exact flow (``lr.solve(method="flow")`` with observers), seeds 0-1,
  out to tau = 320 (tau = GD step / (25 D), the DMFT clock): the population loss split into the
  beta-hat block of Delta (the spike deficit), the off-diagonal block and the bulk block, the
  deficit delta itself and the ratio t / delta of the bulk's trace excess to it.
* ``theories D [D ...]``: delta and t of the spectral closure and of the DMFT (as derived and
  with A7) against the exact flow, out to tau = 80.
* ``mean``: the exact flow for a teacher with a larger mean, y = xi^2 / 2 + (c0 - 1/2): the bulk
  must then keep part of its trace, so its kernel stops shrinking.

    python benchmarks/offline_tail_spike.py online        # -> offline_tail_spike_online.json
    python benchmarks/offline_tail_spike.py exact 50 100 200  # resumable, offline_tail_spike.json
    python benchmarks/offline_tail_spike.py theories 50 100 200   # the theories' delta and t
    python benchmarks/offline_tail_spike.py mean          # a larger label mean (D = 50)
    python benchmarks/offline_tail_spike.py table         # -> offline_tail_spike.md

Cost (one core): online < 10 s; exact D = 50 10-45 s per run, D = 100 1-5 min, D = 200 5-9 min;
theories D = 200 a few minutes per run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp

import lazyrich_theory as lr
from common import markdown_head, run_resumable, write_table
from lazyrich_theory.core.population import scalar_loss, scalar_rhs
from lazyrich_theory.theory.offline import offline_inputs, offline_theory
from lazyrich_theory.theory.timescales import online_tail

HERE = Path(__file__).resolve().parent
TAUS = (10, 20, 40, 80, 160, 320)
ONLINE = [(D, a, e) for D in (100, 400, 1600) for a, e in ((1.0, 0.02), (2.0, 0.04))]
KAPPAS = {50: (5.5, 11.0, 22.0, 44.0), 100: (5.5, 11.0, 22.0), 200: (5.5, 11.0)}
SEEDS = (0, 1)
BLOCKS = ("pop", "bb", "bp", "pp", "variance", "linear_power", "delta", "tbar", "top3", "train")


def _problem(D: int, kappa: float, seed: int, **options) -> lr.Problem:
    """The runs' problem: N = inf, (alpha, eps) = (1, 0.02), P = kappa D."""
    return lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=1.0, eps=0.02, seed=seed,
                      **options)


def _rate_ratio(tbar, b2: float, taus=TAUS, alpha_eps: float = 0.02) -> list[float]:
    """How fast the bulk gives its trace back: d ln t / d tau (centred difference over the
    neighbouring save times) over the online flow's (11.2) at the same t, -(2/3)(alpha eps +
    b2 t); NaN at the ends."""
    tb = np.asarray(tbar, float)
    out = [float("nan")] * len(taus)
    for k in range(1, len(taus) - 1):
        measured = np.log(tb[k + 1] / tb[k - 1]) / (taus[k + 1] - taus[k - 1])
        out[k] = float(measured / (-2.0 / 3.0 * (alpha_eps + b2 * tb[k])))
    return out


def _online_one(D: int, alpha: float, eps: float) -> dict:
    """The scalar ODE at b2 = 1 (y = (1/2) xi^2), states at TAUS (tau = 2 eps t / (alpha D))."""
    b2, tau_c = 1.0, 0.5
    ts = np.array(TAUS, float) * alpha * D / (2 * eps)
    sol = solve_ivp(lambda t, u: scalar_rhs(u[0], u[1], alpha, eps, 1.0, tau_c, b2 * D, D, 0.0,
                                            0.0), (0.0, ts[-1]), [0.0, 0.0], t_eval=ts,
                    method="Radau", rtol=1e-11, atol=1e-13)
    L0 = sum(scalar_loss(0.0, 0.0, alpha, eps, tau_c, b2 * D, D, 0.0))
    a, b = sol.y
    loss = [sum(scalar_loss(ai, bi, alpha, eps, tau_c, b2 * D, D, 0.0)) / L0
            for ai, bi in zip(a, b)]
    return {"delta": list(1 - alpha * eps * (a + b) / (b2 * D)),
            "t": list(alpha * eps * a * (D - 1) / (b2 * D)), "loss": loss}


def online() -> None:
    out = {f"{D}|{a}|{e}": _online_one(D, a, e) for D, a, e in ONLINE}
    (HERE / "offline_tail_spike_online.json").write_text(json.dumps(out, indent=1))


def _observers(p: lr.Problem) -> dict:
    """name -> fn(system, F): the blocks of Delta = (alpha eps / 2)(M - M0) - tau beta beta^T
    in the basis (betahat, its complement), each as its part of the population loss (before
    normalising), the deficit delta = -Delta_bb / (tau |beta|^2), the bulk's trace excess
    tbar = alpha eps (tr_perp M - (D - 1)) / (b2 D) and the share of that excess in the bulk's
    three largest eigenvalues (top3).  All six come from one pass per state (the last state's
    values are kept while the observers read them in turn)."""
    b2 = offline_inputs(p).b2
    last: dict = {}

    def parts(system, F):
        if "F" in last and np.array_equal(last["F"], F):
            return last["values"]
        beta = system.beta
        bh = beta / np.linalg.norm(beta)
        M = F @ F.T
        Dl = 0.5 * p.alpha * p.eps * (M - system.M0) - p.tau * np.outer(beta, beta)
        col = Dl @ bh
        dbb = float(bh @ col)
        off = col - dbb * bh
        D = len(beta)
        fro = float(np.sum(Dl * Dl))
        Mb = M - np.outer(M @ bh, bh) - np.outer(bh, bh @ M) + float(bh @ M @ bh) * np.outer(bh, bh)
        top = np.linalg.eigvalsh(Mb)[-3:]
        excess = np.trace(Mb) - (D - 1)
        last["F"] = F.copy()
        last["values"] = {"bb": 2 * dbb ** 2 / D ** 2, "bp": 4 * float(off @ off) / D ** 2,
                          "pp": 2 * (fro - dbb ** 2 - 2 * float(off @ off)) / D ** 2,
                          "delta": -dbb / (p.tau * float(beta @ beta)),
                          "tbar": p.alpha * p.eps * excess / (b2 * D),
                          "top3": float(np.sum(top - 1) / excess) if excess else 0.0}
        return last["values"]
    return {k: (lambda system, F, k=k: parts(system, F)[k])
            for k in ("bb", "bp", "pp", "delta", "tbar", "top3")}


def _exact_one(D: int, kappa: float, seed: int) -> dict:
    p = _problem(D, kappa, seed)
    st = [0] + [25 * D * tau for tau in TAUS]
    df = lr.solve(p, st[-1], method="flow", integrator="dopri5", save_times=st,
                  observers=_observers(p)).to_pandas()
    P0, L0 = df["population_loss"].iloc[0], df["train_loss"].iloc[0]
    out = {"pop": [float(df["population_loss"].loc[t] / P0) for t in st[1:]],
           "train": [float(df["train_loss"].loc[t] / L0) for t in st[1:]]}
    for k in ("bb", "bp", "pp", "variance", "linear_power"):
        out[k] = [float(df[k].loc[t] / P0) for t in st[1:]]
    for k in ("delta", "tbar", "top3"):
        out[k] = [float(df[k].loc[t]) for t in st[1:]]
    return out


def _run(name: str, one, kappas: dict, dims: list[int]) -> None:
    """``one(D, kappa, seed)`` for every cell of ``kappas`` at ``dims``, resumable in
    ``name``.json."""
    for D in dims:
        run_resumable(HERE / f"{name}.json", ((f"{D}|{k}|{s}", lambda k=k, s=s: one(D, k, s))
                                              for k in kappas[D] for s in SEEDS))


#: the label-mean test: teacher y = xi^2 / 2 + (c0 - 1/2) (c0 = 1/2 is the paper's, b2 = 1)
MEANS = (0.5, 0.75, 1.0)


def _mean_one(c0: float, seed: int, D: int = 50, kappa: float = 5.5) -> dict:
    p = _problem(D, kappa, seed, target=f"hermite:coef={c0}/0/0.5")
    st = [0] + [25 * D * tau for tau in TAUS]
    df = lr.solve(p, st[-1], method="flow", save_times=st).to_pandas()
    return {k: [float(df[k].loc[t] / df[k].iloc[0]) for t in st[1:]]
            for k in ("population_loss", "train_loss")}


def means() -> None:
    run_resumable(HERE / "offline_tail_spike_mean.json",
                  ((f"{c0}|{s}", lambda c0=c0, s=s: _mean_one(c0, s))
                   for c0 in MEANS for s in SEEDS))


def _section(name: str, title: str, intro: str, columns: list[str]):
    """(the results in ``name``.json, the section's first lines), or (None, []) if not run."""
    path = HERE / f"{name}.json"
    if not path.exists():
        return None, []
    return json.loads(path.read_text()), [""] + markdown_head(title, intro, columns, level=2)


def _mean_lines() -> list[str]:
    done, lines = _section(
        "offline_tail_spike_mean",
        "A larger label mean: teacher hermite:coef=c0/0/0.5 (D = 50, kappa = 5.5)",
        "Seed means (seeds 0, 1) of the population and train loss relative to their initial "
        "values; c0 = 0.5 is the paper's teacher with b2 = 1.",
        ["c0", "quantity"] + [f"tau = {t}" for t in TAUS])
    for c0 in MEANS if done else ():
        runs = [done[k] for s in SEEDS if (k := f"{c0}|{s}") in done]
        for q in ("population_loss", "train_loss") if runs else ():
            y = np.mean([r[q] for r in runs], axis=0)
            lines.append(f"| {c0:g} | {q} | " + " | ".join(f"{v:.3g}" for v in y) + " |")
    return lines


#: the theories against the exact flow: tau grid (the DMFT's grid ends near tau = 80)
THEORY_TAUS = (5, 10, 20, 40, 80)
THEORY_KAPPAS = {50: (5.5, 11.0, 22.0), 100: (5.5, 11.0, 22.0), 200: (5.5, 11.0)}
METHODS = {"exact": None, "spectral": {"method": "spectral"},
           "dmft": {"method": "dmft", "column_closure": "dmft"},
           "dmft_a7": {"method": "dmft", "column_closure": "least_squares"}}


def _theories_one(D: int, kappa: float, seed: int, methods=tuple(METHODS)) -> dict:
    """delta, tbar and the relative population loss of the exact flow and of each theory (or of
    ``methods`` only), from the Trajectory columns alignment (betahat^T (M - M0) betahat) and
    trace_dM (tr(M - M0) / D)."""
    p = _problem(D, kappa, seed)
    b2, ae = offline_inputs(p).b2, p.alpha * p.eps
    st = [0] + [25 * D * tau for tau in THEORY_TAUS]
    out = {"b2": b2}
    for name in methods:
        opts = METHODS[name]
        tr = (lr.solve(p, st[-1], method="flow", save_times=st) if opts is None else
              offline_theory(p, st[-1], save_times=st, **opts))
        out[name] = tail_columns(tr, st[1:], b2, ae, D)
    return out


def tail_columns(tr, steps, b2: float, ae: float, D: int) -> dict[str, list[float]]:
    """The relative population loss, the spike deficit delta and the bulk's trace excess t of
    a trajectory at the saved ``steps`` (alpha eps = ``ae``, teacher strength ``b2``)."""
    k = np.searchsorted(tr.t, steps)
    along = tr.alignment[k]
    return {"pop": list(tr.population_loss[k] / tr.population_loss[0]),
            "delta": list(1 - ae * along / (b2 * D)),
            "tbar": list(ae * (D * tr.trace_dM[k] - along) / (b2 * D))}


def _theory_lines() -> list[str]:
    done, lines = _section(
        "offline_tail_spike_theories",
        "The deficit and the trace excess: theories against the exact flow",
        "Seed means (seeds 0, 1; (alpha, eps) = (1, 0.02)) of the spike deficit delta and the "
        "bulk's trace excess t, each method's own, at tau = step / (25 D), and the rate at which "
        "t falls over the online flow's at the same t (as in the table above).",
        ["D", "kappa", "method", "quantity"] + [f"tau = {t}" for t in THEORY_TAUS])
    for D, kappas in THEORY_KAPPAS.items() if done else ():
        for kappa in kappas:
            runs = [done[k] for s in SEEDS if (k := f"{D}|{kappa}|{s}") in done]
            for name in METHODS if runs else ():
                for q in ("delta", "tbar", "rate"):
                    y = np.mean([_rate_ratio(r[name]["tbar"], r["b2"], THEORY_TAUS)
                                 if q == "rate" else r[name][q] for r in runs], axis=0)
                    label = {"tbar": "t", "rate": "trace rate / online"}.get(q, q)
                    lines.append(f"| {D} | {kappa:g} | {name} | {label} | "
                                 + " | ".join(f"{v:.3f}" for v in y) + " |")
    return lines


def _slope(y, i: int, j: int) -> float:
    return float(np.log(y[j] / y[i]) / np.log(TAUS[j] / TAUS[i]))


def _online_lines() -> list[str]:
    done = json.loads((HERE / "offline_tail_spike_online.json").read_text())
    lines = markdown_head(
        "Online ODE after the transition against the closed form (b2 = 1)",
        "delta: spike deficit; t / delta: the bulk's trace excess over it (closed form: 3); "
        "rate: d ln(1 + A / delta) / d tau between tau = 40 and 160 over its closed-form value "
        "2 alpha eps / 3 (A = alpha eps / (3 b2)); loss / 2 delta^2: the relative population "
        "loss over its closed form; predicted delta: online_tail through the point at tau = 40.",
        ["D", "(alpha, eps)", "quantity"] + [f"tau = {t}" for t in TAUS]
        + ["rate / closed form"], level=2)
    i, j = TAUS.index(40), TAUS.index(160)
    for key, r in done.items():
        D, a, e = key.split("|")
        d, t = np.array(r["delta"]), np.array(r["t"])
        A = float(a) * float(e) / 3
        rate = (np.log1p(A / d[j]) - np.log1p(A / d[i])) / (TAUS[j] - TAUS[i])
        rate /= 2 * float(a) * float(e) / 3
        head = f"| {D} | ({a}, {e}) |"
        lines.append(head + " delta | " + " | ".join(f"{v:.3g}" for v in d) + f" | {rate:.4f} |")
        lines.append(head + " t / delta | " + " | ".join(f"{v:.3f}" for v in t / d) + " | |")
        pred = online_tail(np.array(TAUS, float), float(a), float(e), 1.0, TAUS[i], d[i])
        lines.append(head + " predicted delta / delta | "
                     + " | ".join(f"{v:.3f}" for v in pred[0] / d) + " | |")
        ratio = np.array(r["loss"]) / (2 * d ** 2)
        lines.append(head + " loss / 2 delta^2 | " + " | ".join(f"{v:.3f}" for v in ratio)
                     + " | |")
    return lines


def table() -> None:
    lines = _online_lines()
    done = json.loads((HERE / "offline_tail_spike.json").read_text())
    lines += [""] + markdown_head(
        "Exact flow: the blocks of the population loss, the deficit and the trace ratio",
        "Seed means (seeds 0, 1; (alpha, eps) = (1, 0.02)); pop, bb (the betahat block: the "
        "spike deficit), bp (the off-diagonal block), pp (the bulk block) and train relative to "
        "their initial loss; delta the spike deficit, t / delta the bulk's trace excess over "
        "it; top3 the share of that excess in the bulk's three largest eigenvalues; R: how fast "
        "the bulk gives its trace back (d ln t / d tau, centred) over the online flow's "
        "-(2/3)(alpha eps + b2 t) at the same t (11.2), split into (3/2)(1 - delta / t), what "
        "the online law (11.1) gives at the measured t / delta instead of 3, and the rest. "
        "'slope': d ln / d ln tau between tau = 40 and 160.",
        ["D", "kappa", "quantity"] + [f"tau = {t}" for t in TAUS] + ["slope"], level=2)
    i, j = TAUS.index(40), TAUS.index(160)
    for D, kappas in KAPPAS.items():
        for kappa in kappas:
            runs = [done[k] for s in SEEDS if (k := f"{D}|{kappa}|{s}") in done]
            if not runs:
                continue
            rates = [_rate_ratio(done[f"{D}|{kappa}|{s}"]["tbar"],
                                 offline_inputs(_problem(D, kappa, s)).b2)
                     for s in SEEDS if f"{D}|{kappa}|{s}" in done]
            slaving = [1.5 * (1 - np.array(r["delta"]) / np.array(r["tbar"])) for r in runs]
            derived = {"ratio": np.mean([np.array(r["tbar"]) / np.array(r["delta"])
                                         for r in runs], axis=0),
                       "rate": np.mean(rates, axis=0), "slaving": np.mean(slaving, axis=0),
                       "rest": np.mean(np.array(rates) / np.array(slaving), axis=0)}
            for q in BLOCKS + tuple(derived):
                y = derived[q] if q in derived else np.mean([r[q] for r in runs], axis=0)
                slope = "" if q in derived or q == "top3" else f"{_slope(y, i, j):+.2f}"
                name = {"ratio": "t / delta", "rate": "R = trace rate / online",
                        "slaving": "(3/2)(1 - delta / t)", "rest": "R / (3/2)(1 - delta / t)"
                        }.get(q, q)
                lines.append(f"| {D} | {kappa:g} | {name} | "
                             + " | ".join(f"{v:.3g}" for v in y) + f" | {slope} |")
    write_table(HERE / "offline_tail_spike.md", lines + _theory_lines() + _mean_lines())


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "table"
    if cmd == "online":
        online()
    elif cmd == "exact":
        _run("offline_tail_spike", _exact_one, KAPPAS, [int(d) for d in sys.argv[2:]]
             or sorted(KAPPAS))
    elif cmd == "theories":
        _run("offline_tail_spike_theories", _theories_one, THEORY_KAPPAS,
             [int(d) for d in sys.argv[2:]] or sorted(THEORY_KAPPAS))
    elif cmd == "mean":
        means()
    elif cmd == "table":
        table()
    else:
        raise SystemExit(f"unknown command {cmd!r}: online, exact, theories, mean or table")
