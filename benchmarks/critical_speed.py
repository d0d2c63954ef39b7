"""Speed of the interpolant's critical kappa (``interpolant_critical_kappa``, the default
critical kappa of ``lazyrich asymptotic`` for the iid init up to D = 400; docs/offline_theory.md
§9), measured in one run against two baselines, and ``lazyrich asymptotic --preset fig1`` end
to end as a user runs it (a fresh process):

* the bracket stepped out from kappa = 3 (the package) against the search it replaced, which
  evaluated both ends of the range (1.5, 8) first (``start=None``);
* the training sets of one kappa solved side by side, one per free core with one BLAS thread
  each (the package), against one after the other with threaded BLAS (the package with
  ``free_cores`` fixed at 1: the code path before the change);
* the same for the interpolation floors of the 8 x 8 Fig. 3(e) grid (``interpolant_floors``).

    python benchmarks/critical_speed.py          # -> critical_speed.md (~10 min)

Median wall time of ``REPEATS`` runs each; the ratio baseline / package; the critical kappas
(tolerance 0.02 in kappa) and the number of distinct P evaluated (4 convex solves each).
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import lazyrich_theory as lr
from common import load_note, markdown_head, median_time
from lazyrich_theory.core import threads
from lazyrich_theory.theory.offline.implicit_bias import (INTERPOLANT_CRITICAL_D_DEFAULT,
                                                          interpolant_critical_kappa)

HERE = Path(__file__).resolve().parent
DS = (50, 100, 200)
DS_SEEDS = (100, 200, 400)
REPEATS = 3


def _search(p: lr.Problem, start: float | None) -> tuple[float, int]:
    lines: list[str] = []
    crit = interpolant_critical_kappa(p, log=lines.append, start=start)
    return crit.value, len(lines)


def _cli(D: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "lazyrich_theory.cli", "asymptotic", "--preset",
                        "fig1", "--D", str(D), "--P", str(round(5.5 * D)), "--out", out,
                        "--overwrite", "--quiet", "--no-plot"], check=True)


def _serial(p: lr.Problem) -> tuple[float, int]:
    """The search with one worker: the training sets one after the other, threaded BLAS."""
    cores = threads.free_cores
    threads.free_cores = lambda: 1
    try:
        return _search(p, 3.0)
    finally:
        threads.free_cores = cores


def _row(D: int, new: tuple, old: tuple, cli: bool) -> str:
    (t_new, (k_new, n_new)), (t_old, (k_old, n_old)) = new, old
    t_cli = median_time(lambda: _cli(D), REPEATS)[0] if cli else math.nan
    cell = "—" if math.isnan(t_cli) else f"{t_cli:.1f}"
    return (f"| {D} | {t_new:.2f} | {n_new} | {k_new:.3f} | {t_old:.2f} | {n_old} | "
            f"{k_old:.3f} | {t_old / t_new:.1f} | {cell} |")


def main() -> None:
    cols = ["D", "package (s)", "P evaluated", "kappa_c", "baseline (s)", "P evaluated",
            "kappa_c", "ratio", "lazyrich asymptotic (s)"]
    lines = markdown_head(
        "Interpolant critical kappa: bracket from kappa = 3 vs both ends first",
        f"Median of {REPEATS} runs each, the fig1 problem (alpha, eps) = (1, 0.02) at D, seed 0, "
        "4 training sets per kappa; ratio = baseline / package. Machine: " + load_note() + ".",
        cols)
    for D in DS:
        p = lr.preset("fig1").replace(N=math.inf, D=D, P=round(5.5 * D))
        lines.append(_row(D, median_time(lambda: _search(p, 3.0), REPEATS),
                          median_time(lambda: _search(p, None), REPEATS), False))
        print(lines[-1], flush=True)
    lines += [""] + markdown_head(
        "Training sets side by side vs one after the other",
        "The same search (bracket from kappa = 3); package: the training sets of a kappa "
        "solved side by side on the free cores, one BLAS thread each; baseline: one after "
        "the other with threaded BLAS (free_cores fixed at 1). Last column: `lazyrich "
        "asymptotic --preset fig1 --D D --P 5.5D` end to end in a fresh process (the "
        f"interpolant's critical kappa is its default up to D = {INTERPOLANT_CRITICAL_D_DEFAULT}). "
        "Machine: " + load_note() + ".",
        cols, level=2)
    for D in DS_SEEDS:
        p = lr.preset("fig1").replace(N=math.inf, D=D, P=round(5.5 * D))
        lines.append(_row(D, median_time(lambda: _search(p, 3.0), REPEATS),
                          median_time(lambda: _serial(p), REPEATS),
                          D <= INTERPOLANT_CRITICAL_D_DEFAULT))
        print(lines[-1], flush=True)
    lines += [""] + _floors_table()
    (HERE / "critical_speed.md").write_text("\n".join(lines) + "\n")


def _floors_table() -> list[str]:
    """interpolant_floors on the 8 x 8 Fig. 3(e) grid (``lazyrich phase --offline-theory
    interpolant``'s floors), a row's cells side by side against one after the other."""
    import numpy as np

    from lazyrich_theory.theory.offline import interpolant_floors

    p = lr.preset("fig1").replace(N=math.inf)
    al, ep = np.linspace(0.4, 5.6, 8), np.linspace(0.02, 0.28, 8)
    t_new, f_new = median_time(lambda: interpolant_floors(p, al, ep), REPEATS)
    cores = threads.free_cores
    threads.free_cores = lambda: 1
    try:
        t_old, f_old = median_time(lambda: interpolant_floors(p, al, ep), REPEATS)
    finally:
        threads.free_cores = cores
    lines = markdown_head(
        "Interpolation floors of the Fig. 3(e) grid side by side",
        "interpolant_floors, fig1 at N = inf (D = 100, P = 550), the 8 x 8 alpha x eps grid of "
        "docs/offline_theory.md §12.3; package: a row's cells side by side on the free cores; "
        f"baseline: one after the other. Median of {REPEATS}. Machine: " + load_note() + ".",
        ["package (s)", "baseline (s)", "ratio", "largest difference of the floors"], level=2)
    lines.append(f"| {t_new:.2f} | {t_old:.2f} | {t_old / t_new:.1f} | "
                 f"{float(np.abs(f_new - f_old).max()):.1e} |")
    print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()
