"""Goal 5 of issue 14: graceful under load.  Four concurrent Figure 1 solves against one alone.

    python benchmarks/load.py [--jobs 4] [--repeats 2] [--baseline COMMIT]

For each workload -- 1,000 exact GD steps, the 10^5-step gradient flow (RKC) and the lazy
theory (the linearised model's curves at the 169 save times plus the lazy summary, as
``lazyrich solve`` computes them) -- one process runs alone, then --jobs processes start
together; each reports the wall time of its computation (imports excluded).  The row gives
the median alone, the slowest of the concurrent ones and their ratio (ideal on 2 cores with 4
jobs: 2; the goal: within ~3).  With --baseline COMMIT the same is measured for that commit's
package (its BLAS threading), alternating, so both see the same outside load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import baseline_tree, load_note, python_env  # noqa: E402

JOBS = {
    "gd (1,000 steps)": "solve(p, 1000, method='gd', data=d)",
    "flow (10^5 steps)": "solve(p, 100000, method='flow', data=d)",
    "lazy theory": ("m = LinearizedModel.from_problem(p, d, population=False); "
                    "m.curves(save_times(100000), 'gd', population=False); lazy_summary(p, d)"),
}

TEMPLATE = r'''
import json, time
from lazyrich_theory import preset, solve
from lazyrich_theory.theory.lazy import LinearizedModel, lazy_summary
from lazyrich_theory.spec.schedule import save_times
p = preset("fig1"); d = p.data()
solve(p.replace(D=10, P=20, N=20, test_size=10), 10, method="flow")   # Numba cache loaded
import sys
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()                                                  # start together
t = time.perf_counter()
{job}
print(json.dumps({{"wall": time.perf_counter() - t}}))
'''


def _batch(code: str, n: int, tree: str | None) -> list[float]:
    """Start ``n`` processes, wait until all are ready, release them together; their walls."""
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=python_env(tree),
                              cwd=tempfile.gettempdir()) for _ in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    walls = []
    for p in procs:
        out, _ = p.communicate()
        walls.append(json.loads(out.strip().splitlines()[-1])["wall"])
    return walls


def measure(jobs: int, repeats: int, trees: dict[str, str | None]) -> list[dict]:
    rows = []
    for name, job in JOBS.items():
        code = TEMPLATE.format(job=job)
        for label, tree in trees.items():
            alone, conc = [], []
            for _ in range(repeats):
                alone += _batch(code, 1, tree)
                conc.append(max(_batch(code, jobs, tree)))
            a, c = statistics.median(alone), statistics.median(conc)
            rows.append(dict(workload=name, tree=label, alone=a, concurrent=c, ratio=c / a,
                             jobs=jobs, load=load_note()))
            print(f"  {name:20s} {label:7s} alone {a:7.2f} s   {jobs} at once {c:7.2f} s "
                  f"(slowest)   ratio {c / a:5.2f}   [{load_note()}]", flush=True)
    return rows


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--baseline", default=None)
    args = ap.parse_args(argv)
    trees: dict[str, str | None] = {"now": None}
    if args.baseline:
        trees = {"before": baseline_tree(args.baseline), "now": None}
    t0 = time.perf_counter()
    print(f"{args.jobs} concurrent Figure 1 solves vs one alone ({os.cpu_count()} CPUs; "
          f"{load_note()}):", flush=True)
    rows = measure(args.jobs, args.repeats, trees)
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(json.dumps({"load": rows}))
    return rows


if __name__ == "__main__":
    main()
