"""Issue 14 goal 4: does a sample-space state pay?  The crossover, measured.

    python benchmarks/sample_space.py [--D 100,400] [--ratios 0.25,0.5,1,2,3,5.5] [--steps 60]

Full-batch GD moves F only within the row space of X: F_t = F_0 + X^T A_t with A in R^{P x r}
(any N; at N = inf with M_0 = I this is the issue's U - I = X^T B X written for the factor).
So the state can live in sample space: keep XF (P x r) and A, with the P x P Gram K = X X^T
computed once, and step

    R = weight(XF, r(XF)) (the same fused kernels),  A <- A + c R,  XF <- XF + c K R,

2 P^2 r flops per step instead of the factor step's 4 P D r (X F and X^T R): cheaper exactly
when P < 2 D.  Test-set columns need X_test F = X_test F_0 + (X_test X^T) A at the save times
only.  This prototype times both steps (same kernels, same BLAS threads, median over --steps)
at N = inf across P / D, checks that both give the same residuals, and prints the crossover.
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

from benchmarks.common import load_note  # noqa: E402
from lazyrich_theory import preset  # noqa: E402
from lazyrich_theory.core.reduced import ReducedSystem, _residual, _weight  # noqa: E402
from lazyrich_theory.core.threads import blas_threads  # noqa: E402


def _time_steps(step, state, n):
    ts = []
    for _ in range(n + 2):
        t = time.perf_counter()
        state = step(state)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts[2:]), state


def compare(D: int, P: int, steps: int, N=math.inf) -> dict:
    p = preset("fig1").replace(D=D, P=P, N=N, test_size=200)
    s = ReducedSystem.build(p, p.data())
    X, z, c, y, f0 = s.X, s.z, s.c, s.y, s.f0
    alpha, eps = p.alpha, p.eps
    scale = -2.0 * p.eta0 / (alpha * P)
    r = s.F0.shape[1]

    def factor_step(F):
        XF = X @ F
        res = _residual(XF, z, alpha, eps, f0, y)
        V = X.T @ _weight(XF, res, c, eps)
        V *= scale
        return F + V

    K = X @ X.T

    def sample_step(state):
        XF, A = state
        res = _residual(XF, z, alpha, eps, f0, y)
        R = _weight(XF, res, c, eps)
        R *= scale
        return XF + K @ R, A + R

    with blas_threads(4.0 * P * D * r):
        t_f, F = _time_steps(factor_step, s.F0.copy(), steps)
        t_s, (XF, A) = _time_steps(sample_step, (X @ s.F0, np.zeros((P, r))), steps)
    # same state after the same number of steps: residuals and the factor itself
    res_f = _residual(X @ F, z, alpha, eps, f0, y)
    res_s = _residual(XF, z, alpha, eps, f0, y)
    dev_res = float(np.max(np.abs(res_s - res_f)) / np.max(np.abs(res_f)))
    dev_F = float(np.max(np.abs(s.F0 + X.T @ A - F)) / np.max(np.abs(F)))
    return dict(D=D, P=P, r=r, factor_ms=t_f * 1e3, sample_ms=t_s * 1e3,
                speedup=t_f / t_s, flops_ratio=(4.0 * P * D * r) / (2.0 * P * P * r),
                dev_residual=dev_res, dev_F=dev_F)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--D", default="100,400")
    ap.add_argument("--ratios", default="0.25,0.5,1,2,3,5.5")
    ap.add_argument("--steps", type=int, default=60)
    args = ap.parse_args(argv)
    print(f"factor step (4 P D r flops) vs sample-space step (2 P^2 r), N = inf; median of "
          f"{args.steps} steps; {load_note()}")
    print(f"{'D':>5s} {'P':>6s} {'P/D':>5s} {'factor ms':>10s} {'sample ms':>10s} "
          f"{'sample speedup':>15s} {'flop ratio':>11s} {'max rel dev':>12s}")
    rows = []
    for D in (int(v) for v in args.D.split(",")):
        for q in (float(v) for v in args.ratios.split(",")):
            P = max(4, int(round(q * D)))
            row = compare(D, P, args.steps)
            rows.append(row)
            print(f"{D:5d} {P:6d} {P / D:5.2f} {row['factor_ms']:10.3f} {row['sample_ms']:10.3f} "
                  f"{row['speedup']:14.2f}x {row['flops_ratio']:10.2f}x "
                  f"{max(row['dev_residual'], row['dev_F']):12.1e}", flush=True)
    for D in sorted({r["D"] for r in rows}):
        rs = [r for r in rows if r["D"] == D]
        wins = [r["P"] / D for r in rs if r["speedup"] > 1.0]
        print(f"D = {D}: the sample-space step is faster for P/D <= "
              f"{max(wins):.2f}" if wins else f"D = {D}: the sample-space step never wins")
    print(json.dumps({"sample_space": rows}))
    return rows


if __name__ == "__main__":
    main()
