"""Issue 14 goal 4: exact GD in sample space vs the factor, end to end, and the crossover.

    python benchmarks/sample_space.py [--D 100,400] [--ratios 0.25,0.5,1,2,5.5] [--N inf]
                                      [--flops 3e11] [--repeats 1]

Full-batch GD moves F only within the row space of X: F_t = s_t F_0 + X^T A_t with A in
R^{P x r} (lazyrich_theory.core.sample_space).  The sample representation keeps XF and A,
with K = X X^T computed once: 2 P^2 r flops per step instead of the factor's 4 P D r, so the
flop count breaks even at P = 2 D; ``solve`` picks sample space when P <= D (a 2x flop margin).

Per (D, P = ratio D) this times ``solve(p, T, method="gd")`` end to end (build, every save-time
record, final state) with the representation forced each way through
``$LAZYRICH_GD_REPRESENTATION``, T steps chosen so that the factor run does about --flops
step flops (200..3000 steps); and the bare step of each (the library's own step objects, median
of 30 steps).  It checks that both runs agree (largest |difference| per column over the
column's largest |value|), and prints the crossover and what the automatic rule picks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import load_note, median_time  # noqa: E402
from lazyrich_theory import preset, solve  # noqa: E402
from lazyrich_theory.core.reduced import ReducedSystem, _residual  # noqa: E402
from lazyrich_theory.core.sample_space import (  # noqa: E402
    REPRESENTATION_ENV,
    choose_representation,
    representation_steps,
    step_flops,
)
from lazyrich_theory.core.threads import blas_threads  # noqa: E402
from lazyrich_theory.spec.fields import parse_N  # noqa: E402

REPS = ("factor", "sample")


def bare_step_ms(system: ReducedSystem, rep: str, n: int = 30) -> float:
    """Median ms of one GD step (residual, increment, update) of representation ``rep``."""
    p, X = system.problem, system.X
    steps = representation_steps(system, rep)
    F = steps.start()
    ts = []
    with blas_threads(step_flops(*X.shape, system.F0.shape[1], rep)):
        for _ in range(n + 2):
            t0 = time.perf_counter()
            XF = steps.image(F, X)
            r = _residual(XF, system.z, p.alpha, p.eps, system.f0, system.y)
            F = F + steps.increment(F, XF, r, X)
            ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts[2:])


def _forced(rep: str, fn):
    old = os.environ.get(REPRESENTATION_ENV)
    os.environ[REPRESENTATION_ENV] = rep
    try:
        return fn()
    finally:
        if old is None:
            del os.environ[REPRESENTATION_ENV]
        else:
            os.environ[REPRESENTATION_ENV] = old


def compare(D: int, P: int, N: float, flops: float, repeats: int) -> dict:
    """Both representations on one problem: end-to-end solve, bare step, agreement."""
    p = preset("fig1").replace(D=D, P=P, N=N, test_size=200)
    data = p.data()
    system = ReducedSystem.build(p, data)
    r = system.F0.shape[1]
    T = int(min(3000, max(200, flops / step_flops(P, D, r, "factor"))))
    row = dict(D=D, P=P, N=N if math.isfinite(N) else "inf", r=r, steps=T,
               auto=_forced("auto", lambda: choose_representation(system)))
    runs = {}
    for rep in REPS:
        _forced(rep, lambda: solve(p, 2, method="gd", data=data))      # warm the kernels
        wall, runs[rep] = median_time(
            lambda: _forced(rep, lambda: solve(p, T, method="gd", data=data)), repeats)
        row[f"{rep}_s"] = wall
        row[f"{rep}_step_ms"] = bare_step_ms(system, rep)
    row["speedup"] = row["factor_s"] / row["sample_s"]
    row["step_speedup"] = row["factor_step_ms"] / row["sample_step_ms"]
    row["flops_ratio"] = step_flops(P, D, r, "factor") / step_flops(P, D, r, "sample")
    a, b = runs["factor"], runs["sample"]
    dev = 0.0
    for col in ("train_loss", "test_loss", "population_loss", "alignment", "frob_dM"):
        x, y = getattr(a, col), getattr(b, col)
        dev = max(dev, float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-300)))
    row["max_dev"] = dev
    return row


def _crossing(rs: list[dict], key: str) -> str:
    """P/D where ``key`` (a speedup, rows sorted by P) first falls through 1, interpolated in
    log P/D and log speedup."""
    for a, b in zip(rs, rs[1:]):
        if a[key] > 1.0 >= b[key]:
            qa, qb = math.log(a["P"] / a["D"]), math.log(b["P"] / b["D"])
            u = math.log(a[key]) / (math.log(a[key]) - math.log(b[key]))
            return f"~{math.exp(qa + u * (qb - qa)):.2g}"
    return "not in range"


def _crossover(rows: list[dict]) -> None:
    for D in sorted({r["D"] for r in rows}):
        rs = sorted((r for r in rows if r["D"] == D), key=lambda r: r["P"])
        wins = ", ".join(f"{r['P'] / D:g}" for r in rs if r["speedup"] > 1.0) or "none"
        auto = ", ".join(f"{r['P'] / D:g} -> {r['auto']}" for r in rs)
        print(f"D = {D}: the sample step breaks even at P/D {_crossing(rs, 'step_speedup')} "
              f"(flops: 2); end to end sample space is faster at P/D = {wins}; "
              f"auto (sample iff P <= D): {auto}")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--D", default="100,400")
    ap.add_argument("--ratios", default="0.25,0.5,1,2,5.5")
    ap.add_argument("--N", default="inf")
    ap.add_argument("--flops", type=float, default=3e11,
                    help="factor-step flops per solve (sets the steps, 200..3000)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args(argv)
    N = parse_N(args.N)
    print(f"solve(method='gd') end to end, factor (4 P D r flops/step) vs sample space "
          f"(2 P^2 r), N = {args.N}, fig1 preset otherwise; {load_note()}")
    print(f"{'D':>5s} {'P':>6s} {'P/D':>5s} {'steps':>6s} {'factor s':>9s} {'sample s':>9s} "
          f"{'speedup':>8s} {'step ms f/s':>15s} {'step x':>7s} {'flop x':>7s} {'auto':>7s} "
          f"{'max dev':>8s}")
    rows = []
    for D in (int(v) for v in args.D.split(",")):
        for q in (float(v) for v in args.ratios.split(",")):
            P = max(4, int(round(q * D)))
            row = compare(D, P, N, args.flops, args.repeats)
            rows.append(row)
            steps_ms = f"{row['factor_step_ms']:.3f}/{row['sample_step_ms']:.3f}"
            print(f"{D:5d} {P:6d} {P / D:5.2f} {row['steps']:6d} {row['factor_s']:9.2f} "
                  f"{row['sample_s']:9.2f} {row['speedup']:7.2f}x {steps_ms:>15s} "
                  f"{row['step_speedup']:6.2f}x {row['flops_ratio']:6.2f}x {row['auto']:>7s} "
                  f"{row['max_dev']:8.1e}", flush=True)
    _crossover(rows)
    print(json.dumps({"sample_space": rows}))
    return rows


if __name__ == "__main__":
    main()
