"""Benchmark: the GD-accurate stride method ("gd-fast", docs/stride.md) against exact GD and the
gradient flow, on the same problems, in one run.

    python benchmarks/stride.py [--quick] [--out benchmarks/stride.json]

For each case: the largest relative deviation of train and test loss from exact GD over the
save times t >= 10 (the default log grid), right-hand sides (products with the data matrix / 2;
exact GD: one per step) and wall seconds, for "gd", "gd-fast" and "flow" (RKC, rtol 1e-4).
Wall times are single runs on a possibly shared machine (the load is printed); the
right-hand-side counts are deterministic.  --quick drops the two Figure 1 cases (exact GD there
takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from common import load_note

import lazyrich_theory as lr
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.core.trackers import stable_eta0

HERE = os.path.dirname(os.path.abspath(__file__))


def _small(frac: float, **kw) -> tuple[str, lr.Problem, int]:
    """A D = 20 problem at ``frac`` x GD's stable bound at initialisation."""
    p = lr.Problem(D=20, P=110, N=50, alpha=1.0, eps=0.02, eta0=1.0, test_size=200, **kw)
    system = ReducedSystem.build(p)
    bound = stable_eta0(system.eta0_bound(system.F0))
    return f"D=20 N=50, eta0 = {frac:g} x bound", p.replace(eta0=frac * bound), 20_000


def cases(quick: bool) -> list[tuple[str, lr.Problem, int]]:
    out = [_small(0.1), _small(0.5), _small(0.9), _small(0.98),
           ("D=20 N=50, weight decay 1e-3", _small(0.1)[1].replace(weight_decay=1e-3), 20_000),
           ("fig4 preset (N=2, uncentered)", lr.preset("fig4"), 50_000)]
    if not quick:
        out += [("Figure 1 (eta0 = 1)", lr.preset("fig1"), 100_000),
                ("Figure 1 at eta0 = 20 (Fig. 3e)", lr.preset("fig1", eta0=20.0), 100_000)]
    return out


def deviation(tr, ref) -> float:
    """Largest relative deviation of train and test loss from ``ref`` at t >= 10."""
    m = ref.t >= 10
    return float(max(np.max(np.abs(getattr(tr, c)[m] / getattr(ref, c)[m] - 1.0))
                     for c in ("train_loss", "test_loss")))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def measure(name: str, p: lr.Problem, steps: int) -> dict:
    wall_gd, gd = _timed(lambda: lr.solve(p, steps, method="gd"))
    wall_fast, fast = _timed(lambda: lr.solve(p, steps, method="gd-fast"))
    wall_flow, flow = _timed(lambda: lr.solve(p, steps, method="flow"))
    st = fast.info.get("stride") or {}
    row = dict(case=name, steps=steps, err_gd_fast=deviation(fast, gd),
               err_flow=deviation(flow, gd), rhs_gd=steps,
               rhs_gd_fast=float(st.get("n_rhs", steps)), rhs_flow=int(flow.info["n_rhs"]),
               wall_gd=wall_gd, wall_gd_fast=wall_fast, wall_flow=wall_flow,
               ran=fast.method, two_step_from=st.get("two_step_from"),
               gd_fallback_steps=st.get("gd_fallback_steps"), load=load_note())
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| case | steps | gd-fast err | flow err | RHS gd-fast / flow / gd | "
             "wall gd-fast / flow / gd (s) | gd / gd-fast |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['steps']:,} | {r['err_gd_fast']:.1e} | {r['err_flow']:.1e} | "
            f"{r['rhs_gd_fast']:,.0f} / {r['rhs_flow']:,} / {r['rhs_gd']:,} | "
            f"{r['wall_gd_fast']:.2f} / {r['wall_flow']:.2f} / {r['wall_gd']:.1f} | "
            f"{r['wall_gd'] / r['wall_gd_fast']:.0f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the Figure 1 cases")
    ap.add_argument("--out", default=os.path.join(HERE, "stride.json"))
    args = ap.parse_args()
    rows = [measure(*c) for c in cases(args.quick)]
    with open(args.out + ".tmp", "w") as fh:
        json.dump(rows, fh, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(markdown(rows))


if __name__ == "__main__":
    main()
