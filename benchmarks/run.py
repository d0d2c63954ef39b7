"""Benchmark: the reduced solvers against training the network, and what a user waits for.

    python benchmarks/run.py [--repeats 3] [--network-steps 300] [--sections ...]
                             [--baseline COMMIT] [--markdown] [--out benchmarks/results.json]

Everything is measured in one run on this machine and reported as medians and ratios, with
the machine's load (the machine may be shared).  Sections (--sections, comma-separated;
default all):

main     Figure 1 setup, 10^5 steps:
         network     numpy full-batch GD of the N x D network (validation/), timed over
                     --network-steps steps and scaled per step to the horizon (said so), with
                     default BLAS threads and with one thread; the faster is the baseline;
         gd          the exact reduced GD map, full horizon, once; its per-step rate next to the
                     same-shape matrix products (same threads) and the machine's best;
         gd-fast     the GD-accurate fast method, when this checkout has it;
         flow/rkc    gradient flow, Runge-Kutta-Chebyshev (default rtol 1e-4, and rtol 1e-3);
         flow/dopri5 gradient flow, Dormand-Prince 5(4), rtol 1e-7;
         scipy RK45  gradient flow with scipy's solve_ivp (the off-the-shelf baseline), rtol 1e-4;
         population  the 2-scalar online ODE on a 100 x 100 (alpha, eps) grid: 10,000 solves;
         cold start  a fresh Python process (Numba cache populated) importing the package and
                     solving a small flow and a population ODE.
         Errors are the max relative test-loss deviation from exact GD at the save times
         between 10 and 100,000 steps.
e2e      ``lazyrich solve --preset fig1 --method flow --out DIR`` end to end (benchmarks/e2e.py;
         before/after with --baseline).
load     4 concurrent Figure 1 solves vs one alone, for gd, flow and the lazy theory
         (benchmarks/load.py; before/after with --baseline).
scale    D = 100, 200, 400, 800 (P = 5.5 D; N = inf and 500): GD per step vs the
         matrix-multiply rate, peak memory, wall to the rich transition, the numpy (and JAX)
         network (benchmarks/scale.py; --scale-flow-max-D bounds the long flows).
sample   the sample-space state vs the factor state across P / D (benchmarks/sample_space.py).

--markdown prints the README's speed table (from the main section).
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

from benchmarks.common import gemm_rate, load_note, median_time  # noqa: E402
from lazyrich_theory import preset, solve  # noqa: E402
from lazyrich_theory.core.population import population_grid  # noqa: E402
from lazyrich_theory.core.reduced import ReducedSystem  # noqa: E402
from lazyrich_theory.core.threads import threads_for  # noqa: E402
from lazyrich_theory.spec.schedule import save_times  # noqa: E402

STEPS = 100_000
SECTIONS = ("main", "e2e", "load", "scale", "sample")


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


def has_gd_fast() -> bool:
    from lazyrich_theory.core.solve import METHODS

    return "gd-fast" in METHODS


def main_section(repeats: int, network_steps: int) -> dict:
    from lazyrich_validation import simulate
    from threadpoolctl import threadpool_limits

    p = preset("fig1")
    D, P, N = p.D, p.P, p.N
    rows = []
    print(f"Figure 1 setup: D={D}, P={P}, N={N}, horizon {STEPS} steps; "
          f"{os.cpu_count()} cores; repeats={repeats}; {load_note()}", flush=True)

    # warm-up: compile Numba kernels, load BLAS
    solve(p.replace(D=10, P=20, N=20), 100, method="flow")
    population_grid(p.replace(N="inf"), 100, [1.0], [0.1])

    # --- network GD, per step, scaled
    ns = network_steps
    simulate(p, 5)
    t_net, _ = median_time(lambda: simulate(p, ns), repeats)
    with threadpool_limits(limits=1, user_api="blas"):
        t_net1, _ = median_time(lambda: simulate(p, ns), repeats)
    print(f"network per step: {t_net / ns * 1e3:.2f} ms (BLAS threads), "
          f"{t_net1 / ns * 1e3:.2f} ms (1 thread); using the faster", flush=True)
    t_net = min(t_net, t_net1)
    net_step = t_net / ns
    net_total = net_step * STEPS
    print(f"network: {net_step * 1e3:.2f} ms/step (median over {ns} steps) -> "
          f"{net_total:.0f} s for {STEPS} steps (scaled)", flush=True)

    # --- exact reduced GD over the full horizon (the accuracy reference)
    load_gd = load_note()
    t_gd, gd = median_time(lambda: solve(p, STEPS, method="gd"), 1)
    gd_step = t_gd / STEPS
    r = ReducedSystem.build(p).F0.shape[1]
    flops = 2 * 2 * P * D * r          # X F and X^T R; the elementwise work is O(P r)
    threads = threads_for(flops)
    # the step's two products, X F and X^T R, at the same shapes and thread count
    t_xf = 2 * P * D * r / (gemm_rate(P, D, r, repeats=50, threads=threads) * 1e9)
    t_xtr = 2 * P * D * r / (gemm_rate(D, P, r, repeats=50, threads=threads, trans_a=True) * 1e9)
    rate_same = flops / (t_xf + t_xtr) / 1e9
    rate_best = max(gemm_rate(2000, 2000, 2000, repeats=5, threads=th, best=True)
                    for th in (1, None))
    print(f"exact GD: {t_gd:.1f} s ({gd_step * 1e3:.3f} ms/step = {flops / gd_step / 1e9:.1f} "
          f"GFLOP/s with {threads} BLAS thread(s), including the 169 save times; same-shape "
          f"products {rate_same:.1f} GFLOP/s (same threads); machine's best {rate_best:.1f} "
          f"GFLOP/s) [{load_gd}]", flush=True)
    rows.append(dict(method="network GD (numpy)", wall=net_total, n_rhs=STEPS, err=0.0,
                     note=f"scaled from {ns} steps"))
    rows.append(dict(method="reduced exact GD", wall=t_gd, n_rhs=STEPS, err=0.0, note=""))

    # --- the GD-accurate fast method, if this checkout has it
    if has_gd_fast():
        t, tr = median_time(lambda: solve(p, STEPS, method="gd-fast"), repeats)
        rows.append(dict(method="gd-fast", wall=t, n_rhs=int((tr.info.get("stride") or {}).get("n_rhs") or 0),
                         err=rel_err(tr, gd), note=f"median of {repeats}"))
        print(rows[-1], flush=True)
    else:
        print("(no method 'gd-fast' in this checkout)", flush=True)

    # --- flows
    for integ, rtol, atol in (("rkc", 1e-4, 1e-8), ("rkc", 1e-3, 1e-8), ("dopri5", 1e-7, 1e-10)):
        reps = repeats if integ == "rkc" else 1
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
    grid = lambda: population_grid(pi, STEPS, np.linspace(0.4, 5.6, 100),  # noqa: E731
                                   np.linspace(0.02, 0.28, 100))
    t_pop, g = median_time(grid, repeats)
    cold = [cold_start() for _ in range(repeats)]
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
          f"({flops / gd_step / 1e9 / rate_same:.0%} of the same-shape products, "
          f"{rate_same:.1f} GFLOP/s; machine's best {rate_best:.1f}); network: "
          f"{net_step * 1e3:.2f} ms/step; per-step ratio {net_step / gd_step:.1f}x")
    print(f"population ODE: {g.alpha.size * g.eps.size} solves to t={STEPS} in {t_pop:.3f} s "
          f"(median of {repeats}, {g.n_rhs} RHS evaluations)")
    print(f"cold start (fresh process, Numba cache populated): import {cold_import:.2f} s, "
          f"import + small flow + population {cold_total:.2f} s (median of {len(cold)})")
    print(f"[{load_note()}]")
    return dict(rows=rows, network_ms_per_step=net_step * 1e3, gd_ms_per_step=gd_step * 1e3,
                gd_gflops=flops / gd_step / 1e9, gd_threads=threads,
                gemm_gflops_same_shape=rate_same, gemm_gflops_best=rate_best,
                population_grid_seconds=t_pop, cold_import_seconds=cold_import,
                cold_total_seconds=cold_total, cpu_count=os.cpu_count(), load=load_note(),
                date=time.strftime("%Y-%m-%d"))


def markdown_table(main: dict) -> str:
    """The README's speed table from the main section's result."""
    net = next(r for r in main["rows"] if r["method"].startswith("network"))["wall"]
    names = {"network GD (numpy)": "network GD (numpy, N = 500)",
             "reduced exact GD": "reduced exact GD",
             "gd-fast": "gd-fast (GD-accurate fast method)",
             "flow rkc rtol=0.0001": "flow, RKC rtol 1e-4 (default)",
             "flow rkc rtol=0.001": "flow, RKC rtol 1e-3",
             "flow dopri5 rtol=1e-07": "flow, Dormand–Prince rtol 1e-7",
             "flow scipy RK45 rtol=1e-4": "flow, scipy RK45 rtol 1e-4"}
    out = ["| method | wall [s] | RHS evals | × network | max rel. test-loss error vs exact GD "
           "(t = 10…10⁵) |", "|---|---:|---:|---:|---:|"]
    for r in main["rows"]:
        name = names.get(r["method"], r["method"])
        wall = f"{r['wall']:.0f} (scaled)" if "scaled" in r["note"] else (
            f"{r['wall']:.1f}" if r["wall"] >= 10 else f"{r['wall']:.2f}")
        err = "—" if name.startswith("network") else (
            "0 (exact)" if r["method"] == "reduced exact GD" else f"{r['err']:.1e}")
        out.append(f"| {name} | {wall} | {r['n_rhs']:,}".replace(",", " ")
                   + f" | {net / r['wall']:.0f} | {err} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--network-steps", type=int, default=300)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--baseline", default=None,
                    help="a commit for the before/after rows of e2e and load")
    ap.add_argument("--scale-D", default="100,200,400,800")
    ap.add_argument("--scale-flow-max-D", type=int, default=400)
    ap.add_argument("--markdown", action="store_true", help="print the README's speed table")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results.json"))
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    base = ["--baseline", args.baseline] if args.baseline else []
    result: dict = {}
    if "main" in sections:
        result["main"] = main_section(args.repeats, args.network_steps)
        if args.markdown:
            print()
            print(markdown_table(result["main"]))
    if "e2e" in sections:
        from benchmarks import e2e
        print()
        result["e2e"] = e2e.main(["--repeats", str(max(3, args.repeats))] + base)
    if "load" in sections:
        from benchmarks import load
        print()
        result["load"] = load.main(["--repeats", str(max(1, args.repeats - 1))] + base)
    if "scale" in sections:
        from benchmarks import scale
        print()
        result["scale"] = scale.main(["--D", args.scale_D,
                                      "--flow-max-D", str(args.scale_flow_max_D)])
    if "sample" in sections:
        from benchmarks import sample_space
        print()
        result["sample"] = sample_space.main([])
    if args.out:
        old = {}
        if os.path.exists(args.out):
            with open(args.out) as fh:
                try:
                    old = json.load(fh)
                except ValueError:
                    old = {}
        if "rows" in old:                 # the previous single-section format
            old = {"main": old}
        old.update(result)
        with open(args.out, "w") as fh:
            json.dump(old, fh, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
