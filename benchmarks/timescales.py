"""Predicted vs measured time scales across alpha and eps (Figure 1 setup otherwise).

    python benchmarks/timescales.py [--alphas 0.5,1,2] [--eps 0.01,0.02,0.04]

For each cell: the lazy peak (argmax of the linearised test loss, closed form) vs the measured
argmax of the test loss before the transition; the rich transition (population ODE half-loss
time, and the closed form t*) vs the measured time at which the finite-P test loss halves.
The reduced gradient flow (RKC) runs to 5x the predicted transition (at least 1e5 steps).
Prints a Markdown table.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lazyrich_theory import preset, solve  # noqa: E402
from lazyrich_theory.theory.lazy import lazy_summary
from lazyrich_theory.theory.timescales import first_time_below, predict_timescales


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--alphas", default="0.5,1,2")
    ap.add_argument("--eps", default="0.01,0.02,0.04")
    args = ap.parse_args(argv)
    base = preset("fig1")
    data = base.data()
    print("| α | ε | lazy peak: linearised | measured | rich: population ODE | closed form t* "
          "| measured test half-time | measured / ODE |")
    print("|---|---|---|---|---|---|---|---|")
    for a in [float(v) for v in args.alphas.split(",")]:
        for e in [float(v) for v in args.eps.split(",")]:
            p = base.replace(alpha=a, eps=e)
            lz = lazy_summary(p, data)
            ts = predict_timescales(p, data, lz["linearized_peak_time"])
            T = int(max(1e5, 5 * ts.rich_time_population))
            tr = solve(p, T, method="flow", data=data)
            before = tr.t < 0.5 * ts.rich_time_population
            peak = float(tr.t[before][np.argmax(tr.test_loss[before])])
            half = first_time_below(tr.t, tr.test_loss, 0.5 * tr.test_loss[0])
            print(f"| {a:g} | {e:g} | {ts.lazy_peak_time:.0f} | {peak:.0f} | "
                  f"{ts.rich_time_population:.3g} | {ts.rich_time_estimate:.3g} | {half:.3g} | "
                  f"{half / ts.rich_time_population:.2f} |", flush=True)


if __name__ == "__main__":
    main()
