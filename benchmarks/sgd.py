"""Benchmark: minibatch and online SGD in the reduced dynamics against the numpy network.

    python benchmarks/sgd.py [--steps 2000] [--repeats 3]

Figure 1 setup (D=100, P=550, N=500, centered), seed 0.  For each mode (minibatch B = 50,
online B = 550) both implementations run the same seeded sample sequence for --steps steps;
the table gives median wall times over --repeats runs, the per-step cost, the ratio
network / reduced, and the max relative deviation of their train/test/population losses.
Both pay for the same data (batch indices, or fresh Gaussian samples and labels); the
reduced step is O(B D r) with r = min(N, D + 1) against the network's O(B N D).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.run import median_time  # noqa: E402
from lazyrich_theory import preset, solve  # noqa: E402
from lazyrich_validation import simulate  # noqa: E402
from lazyrich_validation.compare import max_relative_deviation  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    base = preset("fig1")
    print(f"Figure 1 setup: D={base.D}, P={base.P}, N={base.N}; {args.steps} steps, "
          f"median of {args.repeats}")
    print(f"{'mode':22s} {'reduced [s]':>12s} {'network [s]':>12s} {'ms/step red.':>13s} "
          f"{'ms/step net.':>13s} {'x network':>10s} {'max rel dev':>12s}")
    for label, changes in (("minibatch B = 50", dict(batch_size=50)),
                           ("online B = 550", dict(online=True))):
        p = base.replace(**changes)
        data = p.data()
        solve(p.replace(D=10, P=20, N=5, test_size=10), 5)   # compile outside the timing
        t_red, tr = median_time(lambda: solve(p, args.steps, data=data), args.repeats)
        t_net, net = median_time(lambda: simulate(p, args.steps, data=data), args.repeats)
        dev = max_relative_deviation(tr, net)["max"]
        print(f"{label:22s} {t_red:12.2f} {t_net:12.2f} {t_red / args.steps * 1e3:13.3f} "
              f"{t_net / args.steps * 1e3:13.3f} {t_net / t_red:10.1f} {dev:12.2e}", flush=True)


if __name__ == "__main__":
    main()
