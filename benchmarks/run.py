"""Benchmark: the reduced solvers against training the network, on the paper's Figure 1 setup.

    python benchmarks/run.py [--repeats 3] [--network-steps 300] [--out benchmarks/results.json]

Everything is measured in one run on this machine and reported as medians and ratios:

* network     numpy full-batch GD of the N x D network (validation/), timed over
              --network-steps steps and scaled per step to the 100,000-step horizon (said so),
              with default BLAS threads and with one thread; the faster is the baseline;
* gd          the exact reduced GD map (lazyrich_theory, any N), full horizon, once; its
              per-step cost is compared with the machine's matrix-multiply rate;
* flow/rkc    gradient flow, Runge–Kutta–Chebyshev (default rtol 1e-4, and rtol 1e-3);
* flow/dopri5 gradient flow, Dormand–Prince 5(4), rtol 1e-7;
* scipy RK45  gradient flow with scipy's solve_ivp (the off-the-shelf baseline), rtol 1e-4;
* population  the 2-scalar online ODE on a 100 x 100 (alpha, eps) grid: 10,000 solves;
* cold start  a fresh Python process (Numba cache populated) importing the package and
              solving a small flow and a population ODE.

Errors are the max relative test-loss deviation from exact GD at the log-spaced save times
between 10 and 100,000 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lazyrich_theory import preset, solve  # noqa: E402
from lazyrich_theory.core.population import population_grid
from lazyrich_theory.core.reduced import ReducedSystem
from lazyrich_theory.spec.schedule import save_times

STEPS = 100_000


def median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def gemm_rate(m, k, n, repeats=50):
    A, B = np.random.rand(m, k), np.random.rand(k, n)
    A @ B
    t, _ = median_time(lambda: A @ B, repeats)
    return 2.0 * m * k * n / t / 1e9


def rel_err(tr, ref):
    m = (ref.t >= 10) & (ref.t <= STEPS)
    return float(np.max(np.abs(tr.test_loss[m] / ref.test_loss[m] - 1.0)))


def scipy_flow(problem, rtol, atol):
    from scipy.integrate import solve_ivp

    system = ReducedSystem.build(problem)
    shape = system.F0.shape
    n = [0]

    def f(t, y):
        n[0] += 1
        return system.rhs(t, y.reshape(shape)).ravel()

    ts = save_times(STEPS).astype(float)
    sol = solve_ivp(f, (0, STEPS), system.F0.ravel(), method="RK45", t_eval=ts, rtol=rtol,
                    atol=atol)
    test = np.array([system.record(sol.y[:, k].reshape(shape))[1] for k in range(ts.size)])
    return test, n[0]


def cold_start():
    code = ("import time; t=time.perf_counter();"
            "import lazyrich_theory as lr; t1=time.perf_counter();"
            "p=lr.Problem(D=20,P=60,N=2,alpha=1,eps=0.25,eta0=0.5,seed=0,test_size=50);"
            "lr.solve(p,2000,method='flow'); lr.population(p.replace(N='inf'),2000);"
            "print(t1-t, time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    return float(out[0]), float(out[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--network-steps", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results.json"))
    args = ap.parse_args(argv)

    p = preset("fig1")
    D, P, N = p.D, p.P, p.N
    rows = []
    print(f"Figure 1 setup: D={D}, P={P}, N={N}, horizon {STEPS} steps; "
          f"{os.cpu_count()} cores; repeats={args.repeats}", flush=True)

    # warm-up: compile Numba kernels, load BLAS
    solve(p.replace(D=10, P=20, N=20), 100, method="flow")
    population_grid(p.replace(N="inf"), 100, [1.0], [0.1])

    # --- network GD, per step, scaled
    from lazyrich_validation import simulate

    from threadpoolctl import threadpool_limits

    ns = args.network_steps
    simulate(p, 5)
    t_net, _ = median_time(lambda: simulate(p, ns), args.repeats)
    with threadpool_limits(limits=1, user_api="blas"):
        t_net1, _ = median_time(lambda: simulate(p, ns), args.repeats)
    print(f"network per step: {t_net / ns * 1e3:.2f} ms (BLAS threads), "
          f"{t_net1 / ns * 1e3:.2f} ms (1 thread); using the faster", flush=True)
    t_net = min(t_net, t_net1)
    net_step = t_net / ns
    net_total = net_step * STEPS
    print(f"network: {net_step * 1e3:.2f} ms/step (median over {ns} steps) -> "
          f"{net_total:.0f} s for {STEPS} steps (scaled)", flush=True)

    # --- exact reduced GD over the full horizon (the accuracy reference)
    t_gd, gd = median_time(lambda: solve(p, STEPS, method="gd"), 1)
    gd_step = t_gd / STEPS
    r = ReducedSystem.build(p).F0.shape[1]
    flops = 2 * 2 * P * D * r + 8 * P * r   # X F and X^T R dominate; plus elementwise
    rate_small = gemm_rate(P, D, r)
    rate_big = gemm_rate(1000, 1000, 1000, repeats=5)
    print(f"exact GD: {t_gd:.1f} s ({gd_step * 1e3:.3f} ms/step, {flops / gd_step / 1e9:.1f} "
          f"GFLOP/s; gemm {P}x{D}x{r}: {rate_small:.1f} GFLOP/s, 1000^3: {rate_big:.1f} GFLOP/s)",
          flush=True)
    rows.append(dict(method="network GD (numpy)", wall=net_total, n_rhs=STEPS, err=0.0,
                     note=f"scaled from {ns} steps"))
    rows.append(dict(method="reduced exact GD", wall=t_gd, n_rhs=STEPS, err=0.0, note=""))

    # --- flows
    for integ, rtol, atol in (("rkc", 1e-4, 1e-8), ("rkc", 1e-3, 1e-8), ("dopri5", 1e-7, 1e-10)):
        reps = args.repeats if integ == "rkc" else 1
        t, tr = median_time(lambda: solve(p, STEPS, method="flow", integrator=integ,
                                          rtol=rtol, atol=atol), reps)
        rows.append(dict(method=f"flow {integ} rtol={rtol:g}", wall=t, n_rhs=tr.info["n_rhs"],
                         err=rel_err(tr, gd), note=f"median of {reps}"))
        print(rows[-1], flush=True)
    t0 = time.perf_counter()
    test, n = scipy_flow(p, 1e-4, 1e-8)
    t = time.perf_counter() - t0
    m = (gd.t >= 10)
    rows.append(dict(method="flow scipy RK45 rtol=1e-4", wall=t, n_rhs=n,
                     err=float(np.max(np.abs(test[m] / gd.test_loss[m] - 1))), note=""))
    print(rows[-1], flush=True)

    # --- population grid
    pi = p.replace(N="inf")
    grid = lambda: population_grid(pi, STEPS, np.linspace(0.4, 5.6, 100),
                                   np.linspace(0.02, 0.28, 100))
    t_pop, g = median_time(grid, args.repeats)
    cold = [cold_start() for _ in range(args.repeats)]
    cold_import = statistics.median(c[0] for c in cold)
    cold_total = statistics.median(c[1] for c in cold)

    print()
    print(f"{'method':34s} {'wall [s]':>10s} {'RHS evals':>10s} {'x network':>10s} "
          f"{'max rel err':>12s}  note")
    for row in rows:
        print(f"{row['method']:34s} {row['wall']:10.2f} {row['n_rhs']:10d} "
              f"{net_total / row['wall']:10.0f} {row['err']:12.2e}  {row['note']}")
    print()
    print(f"exact GD per step: {gd_step * 1e3:.3f} ms = {flops / gd_step / 1e9:.1f} GFLOP/s "
          f"(same-shape gemm {rate_small:.1f}, large gemm {rate_big:.1f} GFLOP/s); "
          f"network: {net_step * 1e3:.2f} ms/step; per-step ratio {net_step / gd_step:.1f}x")
    print(f"population ODE: {g.alpha.size * g.eps.size} solves to t={STEPS} in {t_pop:.3f} s "
          f"(median of {args.repeats}, {g.n_rhs} RHS evaluations)")
    print(f"cold start (fresh process, Numba cache populated): import {cold_import:.2f} s, "
          f"import + small flow + population {cold_total:.2f} s (median of {len(cold)})")
    result = dict(rows=rows, network_ms_per_step=net_step * 1e3, gd_ms_per_step=gd_step * 1e3,
                  gd_gflops=flops / gd_step / 1e9, gemm_gflops_same_shape=rate_small,
                  gemm_gflops_large=rate_big, population_grid_seconds=t_pop,
                  cold_import_seconds=cold_import, cold_total_seconds=cold_total,
                  cpu_count=os.cpu_count())
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
