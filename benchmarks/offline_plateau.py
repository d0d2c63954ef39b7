"""The lazy plateau's train and test loss (issue 13: "the train-test gap during the plateau")
against the closed form ``plateau_losses`` (docs/offline_theory.md §7.1).

Exact: ``lr.solve(problem, T, method="flow")`` (N = inf, centered, convention A, eta0 = 1, the
problem's own teacher and training set) to tau = 3 on the DMFT clock; the plateau is read at
the lazy peak (the largest population loss of the run, before the rich transition), the train
loss at the same time; both relative to the initial population loss.  Also recorded: the same
quantities for the exact least-squares fit of the labels on X (what the lazy linear fit tends
to) and the training labels' second moment m2 / L0.

    python benchmarks/offline_plateau.py run     # resumable (~15 min on 2 busy cores)
    python benchmarks/offline_plateau.py table   # -> offline_plateau.md
    python benchmarks/offline_plateau.py plot    # -> docs/gallery/plateau.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import lazyrich_theory as lr
from common import geometric_times, markdown_head, run_resumable
from lazyrich_theory.theory.offline import plateau_losses

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_plateau.json"
KAPPAS = (1.5, 2.0, 3.0, 5.5, 11.0)
SEEDS = {50: range(12), 100: range(12), 200: range(8), 400: range(4)}
AE = ((1.0, 0.02), (2.0, 0.04))
TAU_END = 3.0


def _one(D: int, kappa: float, alpha: float, eps: float, seed: int) -> dict:
    p = lr.Problem(D=D, P=int(round(kappa * D)), N="inf", alpha=alpha, eps=eps, seed=seed)
    data = p.data()
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    T = int(TAU_END * alpha * D / (2 * eps))
    st = geometric_times(T)
    tr = lr.solve(p, T, method="flow", save_times=st, data=data)
    L0 = float(tr.population_loss[0])
    k = int(np.argmax(tr.population_loss))
    u = np.linalg.lstsq(X, y, rcond=None)[0]
    res = y - X @ u
    return {"test": float(tr.population_loss[k]) / L0, "train": float(tr.train_loss[k]) / L0,
            "t_peak": float(tr.t[k]), "ls_test": 1.0 + float(u @ u) / D / L0,
            "ls_train": float(res @ res) / len(y) / L0, "m2": float(y @ y) / len(y) / L0}


def _jobs():
    for D, seeds in SEEDS.items():
        for a, e in (AE if D <= 100 else AE[:1]):
            for kappa in KAPPAS:
                for s in seeds:
                    yield (f"{D}|{kappa}|{a}|{e}|{s}",
                           lambda D=D, k=kappa, a=a, e=e, s=s: _one(D, k, a, e, s))


def run():
    run_resumable(OUT, _jobs())


def table():
    done = json.loads(OUT.read_text())
    lines = markdown_head(
        "The lazy plateau: exact flow vs the closed form (docs/offline_theory.md §7.1)",
        "Seed means (± standard error) of the relative test (population) and train loss at "
        "the lazy peak; closed form = `plateau_losses(kappa, D)`; cond. = the closed form "
        "with the training set's own label second moment m2 (train m2 (1 - D/P), test "
        "1 + m2 D/(P - D - 1)); LS = the exact least-squares fit of each training set's "
        "labels on X.",
        ["D", "kappa", "alpha, eps", "seeds", "test: exact", "LS", "cond.", "closed form",
         "train: exact", "LS", "cond.", "closed form", "gap: exact", "cond.", "closed form"])
    for D, seeds in SEEDS.items():
        for a, e in (AE if D <= 100 else AE[:1]):
            for kappa in KAPPAS:
                rows = [done[k] for s in seeds if (k := f"{D}|{kappa}|{a}|{e}|{s}") in done]
                if not rows:
                    continue
                cf = plateau_losses(kappa, D)
                v = {n: np.array([r[n] for r in rows]) for n in rows[0]}
                gap = v["test"] - v["train"]
                P = round(kappa * D)
                c_test = 1.0 + v["m2"] * D / (P - D - 1.0)
                c_train = v["m2"] * (1.0 - D / P)
                lines.append(
                    f"| {D} | {kappa:g} | {a:g}, {e:g} | {len(rows)} | {_ms(v['test'])} | "
                    f"{v['ls_test'].mean():.3f} | {c_test.mean():.3f} | {_cf(cf.test)} | "
                    f"{_ms(v['train'])} | {v['ls_train'].mean():.3f} | {c_train.mean():.3f} | "
                    f"{_cf(cf.train)} | {_ms(gap)} | {(c_test - c_train).mean():.3f} | "
                    f"{_cf(cf.gap)} |")
    (HERE / "offline_plateau.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot():
    """docs/gallery/plateau.png: the exact lazy peak (test) and the train loss there, seed
    means ± standard error against kappa for each D, with the closed form (7.1)."""
    from matplotlib.figure import Figure

    done = json.loads(OUT.read_text())
    fig = Figure(figsize=(11, 4.2), constrained_layout=True)
    axes = fig.subplots(1, 2)
    colors = {50: "tab:blue", 100: "tab:orange", 200: "tab:green", 400: "tab:red"}
    k = np.linspace(1.4, 12, 300)
    for ax, name, form, label in ((axes[0], "test", k / (k - 1), "κ/(κ−1)"),
                                  (axes[1], "train", 1 - 1 / k, "1 − 1/κ")):
        ax.plot(k, form, "k-", lw=1.2, label=f"closed form, D → ∞: {label}")
        for D, seeds in SEEDS.items():
            pts = []
            for kappa in KAPPAS:
                v = [done[key][name] for s in seeds
                     if (key := f"{D}|{kappa}|1.0|0.02|{s}") in done]
                if len(v) > 1:
                    pts.append((kappa, np.mean(v), np.std(v, ddof=1) / np.sqrt(len(v))))
            if pts:
                x, m, se = np.array(pts).T
                ax.errorbar(x * (1 + 0.012 * (list(SEEDS).index(D) - 1.5)), m, yerr=se,
                            fmt="o", ms=4, capsize=2, color=colors[D],
                            label=f"exact lazy peak, D = {D} ({len(seeds)} seeds)")
                cf = [getattr(plateau_losses(kk, D), name) for kk in x]
                ax.plot(x, cf, "_", ms=12, color=colors[D])
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(KAPPAS, [f"{kk:g}" for kk in KAPPAS])
        ax.set_xlabel("κ = P / D")
        ax.set_ylabel(f"{name} loss / initial population loss")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("plateau test (population) loss")
    axes[1].set_title("plateau train loss")
    fig.suptitle("The lazy plateau: exact flow (α = 1, ε = 0.02) vs the closed form "
                 "(bars: finite-D form 1 + D/(P−D−1), 1 − D/P)")
    out = HERE.parent / "docs" / "gallery" / "plateau.png"
    fig.savefig(out, dpi=130)
    print(f"wrote {out}")


def _ms(v: np.ndarray) -> str:
    se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return f"{v.mean():.3f} ± {se:.3f}"


def _cf(x) -> str:
    return "—" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    {"run": run, "table": table, "plot": plot}[sys.argv[1] if len(sys.argv) > 1 else "run"]()
