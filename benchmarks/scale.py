"""Goals 3 and 4 of issue 14: exact GD against the machine's matrix-multiply rate, and scale.

    python benchmarks/scale.py [--D 100,200,400,800] [--N inf,500] [--flow-max-D 400]

For each D (P = 5.5 D, the Figure 1 setup otherwise: alpha = 1, eps = 0.02, eta0 = 1, 1,000
test points) and width N (inf and 500), each measured in a fresh process:

* **exact GD per step**: the reduced GD step exactly as the solver's loop runs it (X F, the
  fused residual, X^T R, the update; BLAS threads by ``core.threads``), median over steps, as
  GFLOP/s of its 4 P D r flops next to the same-shape matrix products measured in the same
  process with the same thread count, and the machine's best (a 2000^3 product, all cores);
* **peak memory** of a solve (tracemalloc peak of ``solve(p, 20, "gd")``, arrays included);
* **wall to the rich transition**: the gradient flow (RKC, default tolerances and observers)
  run to twice the predicted transition (the N = inf population ODE's half-loss time), its
  wall, RHS count and peak RSS, and the measured transition (first time the test loss halves);
  exact GD and the networks to that time are per-step cost x steps (extrapolated, said so);
* **the numpy network** (``lazyrich_validation.simulate``; N = 500 only) per step (the faster
  of BLAS's default threads and one thread), and a JAX
  network (jit-compiled full-batch GD step, float64) when ``jax`` is importable (it is not a
  dependency: ``pip install "jax[cpu]"`` in the benchmark's environment);
* ``gd-fast`` (if ``lazyrich_theory.core.solve.METHODS`` has it) to the transition.

--flow-max-D bounds the D of the (long) flow and gd-fast runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import fmt_s, load_note, python_job  # noqa: E402

SETUP = r'''
import json, math, statistics, time, tracemalloc
import numpy as np
from lazyrich_theory import preset, solve
D, N = {D}, {N!r}
p = preset("fig1").replace(D=D, P=int(5.5 * D), N=N)
'''

GD_STEP = SETUP + r'''
from threadpoolctl import threadpool_limits
from lazyrich_theory.core.reduced import ReducedSystem, _residual
from lazyrich_theory.core.threads import blas_threads_for, threads_for, rhs_flops
d = p.data()
s = ReducedSystem.build(p, d)
P_, D_ = s.X.shape
r = s.F0.shape[1]
flops = rhs_flops(s)
nthreads = threads_for(flops)
def rate(m, k, n, trans, reps):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((k, m)).T if trans else rng.standard_normal((m, k))
    B = rng.standard_normal((k, n))
    A @ B
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); A @ B; ts.append(time.perf_counter() - t)
    return statistics.median(ts)
steps = {steps}
F = s.F0.copy()
times = []
with blas_threads_for(s):
    for k in range(steps + 2):
        t = time.perf_counter()
        XF = s.X @ F
        res = _residual(XF, s.z, p.alpha, p.eps, s.f0, s.y)
        loss = float(res @ res) / res.size
        F = F + s.increment(F, XF, res)
        times.append(time.perf_counter() - t)
    step = statistics.median(times[2:])
    reps = max(5, min(50, int(0.5 / max(step, 1e-6))))
    gemm = rate(P_, D_, r, False, reps) + rate(D_, P_, r, True, reps)
with threadpool_limits(1, user_api="blas"):
    gemm1 = rate(P_, D_, r, False, reps) + rate(D_, P_, r, True, reps)
def fastest(m, k, n, reps):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    A @ B
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); A @ B; ts.append(time.perf_counter() - t)
    return min(ts)
best = {{}}
for th in (1, None):
    ctx = threadpool_limits(th, user_api="blas") if th else threadpool_limits(None)
    with ctx:
        t = fastest(2000, 2000, 2000, 5)
    best["1" if th else "all"] = 2 * 2000**3 / t / 1e9   # the fastest of 5: the machine's best
tracemalloc.start()
solve(p, 20, method="gd", data=d)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps(dict(step=step, flops=flops, threads=nthreads, rank=r,
                      gemm_same_threads=2 * P_ * D_ * r * 2 / gemm / 1e9,
                      gemm_one_thread=2 * P_ * D_ * r * 2 / gemm1 / 1e9,
                      gemm_best_1=best["1"], gemm_best_all=best["all"],
                      gd_gflops=flops / step / 1e9, peak_mb=peak / 2**20)))
'''

FLOW = SETUP + r'''
from lazyrich_theory.theory.timescales import first_time_below, population_half_time
d = p.data()
t_pred = population_half_time(p, d)
T = int(2 * t_pred)
t = time.perf_counter()
tr = solve(p, T, method="{method}", data=d)
wall = time.perf_counter() - t
half = first_time_below(tr.t, tr.test_loss, 0.5 * tr.test_loss[0])
print(json.dumps(dict(wall=wall, T=T, t_pred=t_pred, t_half=half,
                      n_rhs=int(tr.info.get("n_rhs") or 0))))
'''

NETWORK = SETUP + r'''
from lazyrich_validation import simulate
d = p.data()
from threadpoolctl import threadpool_limits
simulate(p, 2, data=d)
default = float(simulate(p, {steps}, data=d).info["time_per_step"])
with threadpool_limits(1, user_api="blas"):
    one = float(simulate(p, {steps}, data=d).info["time_per_step"])
print(json.dumps(dict(step=min(default, one), step_default_threads=default, step_one_thread=one)))
'''

JAX = SETUP + r'''
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
d = p.data()
s = p.input_scale
X, y = jnp.asarray(d.X * s), jnp.asarray(d.y)
W0 = jnp.asarray(d.W0)
alpha, eps, Nn = p.alpha, p.eps, float(p.N)
eta = p.eta0 * Nn / alpha**2
def f(W):
    h = X @ W.T
    return alpha / Nn * jnp.sum(h + 0.5 * eps * h * h, axis=1)
f0 = f(W0)
def loss(W):
    r = f(W) - f0 - y
    return jnp.mean(r * r)
@jax.jit
def step(W):
    return W - eta * jax.grad(loss)(W)
W = step(W0).block_until_ready()
ts = []
for _ in range({steps}):
    t = time.perf_counter(); W = step(W).block_until_ready(); ts.append(time.perf_counter() - t)
print(json.dumps(dict(step=statistics.median(ts))))
'''


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _has_gd_fast() -> bool:
    try:
        from lazyrich_theory.core.solve import METHODS
    except ImportError:                                  # pragma: no cover
        return False
    return "gd-fast" in METHODS


def run(Ds, Ns, flow_max_D: int, gd_steps: int, net_steps: int) -> list[dict]:
    rows = []
    jax_ok = _has("jax")
    fast_ok = _has_gd_fast()
    for D in Ds:
        for N in Ns:
            Nv = math.inf if N == "inf" else int(N)
            row: dict = dict(D=D, P=int(5.5 * D), N=N, load=load_note())
            g = python_job(GD_STEP.format(D=D, N=Nv if Nv != math.inf else "inf",
                                          steps=gd_steps))
            row.update(gd=g)
            print(f"D={D:4d} N={N:>3s}: GD step {g['step'] * 1e3:8.2f} ms = {g['gd_gflops']:5.1f} "
                  f"GFLOP/s ({g['threads']} thr) | same-shape gemm (median) {g['gemm_same_threads']:5.1f} "
                  f"-> {g['gd_gflops'] / g['gemm_same_threads']:4.0%} | machine best "
                  f"{g['gemm_best_1']:.0f} (1 thr) / {g['gemm_best_all']:.0f} (all) GFLOP/s | "
                  f"peak {g['peak_mb']:.0f} MB  [{load_note()}]", flush=True)
            if D <= flow_max_D:
                fl = python_job(FLOW.format(D=D, N=Nv if Nv != math.inf else "inf",
                                            method="flow"))
                row.update(flow=fl)
                print(f"    flow to t={fl['T']}: {fmt_s(fl['wall'])} s, {fl['n_rhs']} RHS, peak RSS "
                      f"{fl['maxrss_mb']:.0f} MB; transition predicted {fl['t_pred']:.0f}, "
                      f"measured {fl['t_half']:.0f}; exact GD to it ~"
                      f"{fmt_s(g['step'] * fl['t_half'])} s (extrapolated)", flush=True)
                if fast_ok:
                    ff = python_job(FLOW.format(D=D, N=Nv if Nv != math.inf else "inf",
                                                method="gd-fast"))
                    row.update(gd_fast=ff)
                    print(f"    gd-fast to t={ff['T']}: {fmt_s(ff['wall'])} s, peak RSS "
                          f"{ff['maxrss_mb']:.0f} MB", flush=True)
            if Nv != math.inf:
                nt = python_job(NETWORK.format(D=D, N=Nv, steps=net_steps))
                row.update(network=nt)
                print(f"    numpy network: {nt['step'] * 1e3:8.2f} ms/step "
                      f"({nt['step'] / g['step']:.1f}x the reduced GD step)", flush=True)
                if jax_ok:
                    jx = python_job(JAX.format(D=D, N=Nv, steps=net_steps))
                    row.update(jax=jx)
                    print(f"    JAX network:   {jx['step'] * 1e3:8.2f} ms/step", flush=True)
            rows.append(row)
    if not jax_ok:
        print("(jax not importable: no JAX rows)")
    if not fast_ok:
        print("(method 'gd-fast' not in this checkout: no gd-fast rows)")
    return rows


def markdown(rows: list[dict]) -> str:
    """The scale table as Markdown."""
    out = ["| D | P | N | exact GD ms/step | GFLOP/s (% of same-shape gemm) | peak MB | "
           "flow to 2x transition [s] | RHS | transition (measured) | exact GD to it [s] | "
           "numpy network ms/step |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        g, fl, nt = r["gd"], r.get("flow"), r.get("network")
        n = "∞" if r["N"] == "inf" else r["N"]
        share = g["gd_gflops"] / g["gemm_same_threads"]
        flow_cols = ["—"] * 4
        if fl:
            flow_cols = [fmt_s(fl["wall"]), str(fl["n_rhs"]), f"{fl['t_half']:.0f}",
                         fmt_s(g["step"] * fl["t_half"])]
        net = f"{nt['step'] * 1e3:.1f}" if nt else "—"
        out.append(f"| {r['D']} | {r['P']} | {n} | {g['step'] * 1e3:.2f} | "
                   f"{g['gd_gflops']:.1f} ({share:.0%}) | {g['peak_mb']:.0f} | "
                   + " | ".join(flow_cols) + f" | {net} |")
    return "\n".join(out)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--D", default="100,200,400,800")
    ap.add_argument("--N", default="inf,500")
    ap.add_argument("--flow-max-D", type=int, default=400)
    ap.add_argument("--gd-steps", type=int, default=30)
    ap.add_argument("--network-steps", type=int, default=10)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = run([int(v) for v in args.D.split(",")], args.N.split(","), args.flow_max_D,
               args.gd_steps, args.network_steps)
    print(markdown(rows))
    print(f"({time.perf_counter() - t0:.0f} s; {load_note()})")
    print(json.dumps({"scale": rows}))
    return rows


if __name__ == "__main__":
    main()
