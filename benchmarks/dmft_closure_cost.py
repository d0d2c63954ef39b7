"""What the DMFT's column closures cost, against the DMFT as derived, measured in one run
(docs/offline_theory.md §12.4; the CLI's ``--column-closure`` help quotes the ratios).

Per case (the fig1 problem's (alpha, eps) = (1, 0.02), D = 100, Ns = 800, horizon tau):
``dmft_tau_curves`` with each closure, the closures alternating run by run so that they see
the same machine load (shared, noisy: medians of ``--repeats`` runs, and the ratio of each
median to the DMFT's), with the package's own thread choice.

    python benchmarks/dmft_closure_cost.py [--repeats 3]   # -> dmft_closure_cost.md (~15 min)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from common import load_note, markdown_head, write_table
from lazyrich_theory.theory.offline import OfflineInputs, dmft_tau_curves

HERE = Path(__file__).resolve().parent
#: (kappa, tau horizon)
CASES = ((1.5, 40.0), (3.0, 40.0), (5.5, 40.0), (5.5, 80.0))
#: closure label -> dmft_tau_curves options
CLOSURES = {"dmft": {"column_closure": "dmft"}, "A7": {"column_closure": "least_squares"},
            "spread": {"column_closure": "spread"},
            "spread, first order": {"column_closure": "spread",
                                    "spread_response": "first_order"},
            "spread, full": {"column_closure": "spread", "spread_response": "full"}}


def _time(inp: OfflineInputs, tau: float, opts: dict) -> float:
    t0 = time.perf_counter()
    dmft_tau_curves(inp, tau, Ns=800, **opts)
    return time.perf_counter() - t0


def main(repeats: int) -> None:
    dmft_tau_curves(OfflineInputs(3.0, 1.0, 0.02, 1.0, 1.0, 100), 0.5, Ns=20,
                    column_closure="spread", spread_response="full")   # compile / load
    lines = markdown_head(
        "Cost of the DMFT's column closures (docs/offline_theory.md §12.4)",
        f"Seconds per dmft_tau_curves run, median of {repeats} (closures alternating run by "
        "run), and its ratio to the DMFT as derived; (alpha, eps) = (1, 0.02), D = 100, "
        f"Ns = 800, b2 = 1. Machine: {load_note()}.",
        ["kappa", "tau", *CLOSURES])
    for kappa, tau in CASES:
        inp = OfflineInputs(kappa, 1.0, 0.02, 1.0, 1.0, 100)
        secs: dict[str, list[float]] = {c: [] for c in CLOSURES}
        for _ in range(repeats):
            for c, opts in CLOSURES.items():
                secs[c].append(_time(inp, tau, opts))
        med = {c: statistics.median(v) for c, v in secs.items()}
        print(kappa, tau, med, flush=True)
        lines.append(f"| {kappa:g} | {tau:g} | " + " | ".join(
            f"{m:.1f} s" + ("" if c == "dmft" else f" ({m / med['dmft']:.1f}x)")
            for c, m in med.items()) + " |")
    write_table(HERE / "dmft_closure_cost.md", lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    main(ap.parse_args().repeats)
