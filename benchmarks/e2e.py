"""Goal 1 of issue 14: ``lazyrich solve --preset fig1 --method flow --out DIR`` end to end.

    python benchmarks/e2e.py [--repeats 5] [--baseline COMMIT] [--command "ARGS"]

``--command`` times another command instead (the words after ``lazyrich``, without ``--out``;
the stage breakdown is that of the default command, so pair it with ``--no-stages``).

The command as a user runs it (a fresh process, warm Numba cache, all outputs: theory
columns, summary.json, the PNG): median wall and CPU seconds over --repeats runs, alternating
with the same command from ``--baseline`` (a commit, checked out by ``git archive`` into a
temporary folder; default: none) so that both see the same machine load.  Then where the time
goes, stage by stage, in one process: importing the CLI, Numba's first call (its
initialisation and cache load), the bare flow, the flow with the always-on richness columns,
the lazy theory (solve_with_theory minus its solve), writing the files, importing matplotlib
and drawing the PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (  # noqa: E402
    baseline_tree,
    fmt_s,
    load_note,
    python_env,
    python_job,
    run_timed,
)

COMMAND = ["solve", "--preset", "fig1", "--method", "flow", "--quiet"]

STAGES = r'''
import json, time
t0 = time.perf_counter(); c0 = time.process_time()
out = {}
def mark(name):
    global t0, c0
    t, c = time.perf_counter(), time.process_time()
    out[name] = [t - t0, c - c0]
    t0, c0 = time.perf_counter(), time.process_time()
import lazyrich_theory.cli.app                                   # what the command imports
from lazyrich_theory import preset, solve, solve_with_theory
mark("import the CLI")
import numpy as np
from lazyrich_theory.core.reduced import _residual
_residual(np.zeros((2, 2)), np.zeros(2), 1.0, 0.1, np.zeros(2), np.zeros(2))
mark("Numba: first call (initialisation, cache load)")
p = preset("fig1"); data = p.data()
solve(p.replace(D=10, P=20, N=20, test_size=10), 10, method="flow")   # the other kernels' cache
mark("data, small warm-up solve")
solve(p, 100000, method="flow", data=data,
      observers={"weight_change": None, "tangent_kernel_alignment": None})
mark("flow, no observers")
solve(p, 100000, method="flow", data=data)
mark("flow + richness columns (solve's default)")
tr = solve_with_theory(p, 100000, method="flow", data=data)
mark("solve_with_theory (flow + kernel alignment + lazy theory)")
import tempfile, os
d = tempfile.mkdtemp()
tr.save(d, data=data, plot=False, overwrite=True)
mark("write csv/json/npz")
import matplotlib.figure, matplotlib.backends.backend_agg
mark("import matplotlib")
tr.plot(os.path.join(d, "trajectory.png"))
mark("draw and write the PNG")
print(json.dumps(out))
'''


def cli_runs(trees: dict[str, str | None], repeats: int,
             command: list[str] = COMMAND) -> dict[str, dict[str, list[float]]]:
    """Alternate ``command`` between ``trees`` (label -> tree, None = this checkout)."""
    res: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": [], "load": []}
                                              for k in trees}
    for label, tree in trees.items():          # warm each tree's Numba cache once
        out = tempfile.mkdtemp()
        run_timed([sys.executable, "-m", "lazyrich_theory", *command, "--out", out],
                  env=python_env(tree), cwd=tempfile.gettempdir())
        shutil.rmtree(out, ignore_errors=True)
    for _ in range(repeats):
        for label, tree in trees.items():
            out = tempfile.mkdtemp()
            with open("/proc/loadavg") as fh:
                ld = float(fh.read().split()[0])
            r = run_timed([sys.executable, "-m", "lazyrich_theory", *command, "--out", out],
                          env=python_env(tree), cwd=tempfile.gettempdir())
            shutil.rmtree(out, ignore_errors=True)
            res[label]["wall"].append(r["wall"])
            res[label]["cpu"].append(r["cpu"])
            res[label]["load"].append(ld)
    return res


def stages(tree: str | None = None) -> dict[str, list[float]]:
    """[wall, cpu] seconds per stage, in one process."""
    res = python_job(STAGES, tree)
    return {k: v for k, v in res.items() if isinstance(v, list)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", default=None, help="a commit to compare with (git archive)")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--command", default=None,
                    help="another command, the words after lazyrich, without --out")
    args = ap.parse_args(argv)
    command = COMMAND if args.command is None else args.command.split()
    trees: dict[str, str | None] = {"now": None}
    if args.baseline:
        trees = {"before": baseline_tree(args.baseline), "now": None}
    print(f"lazyrich {' '.join(command)} --out DIR: {args.repeats} runs each, warm Numba "
          f"cache; {load_note()}", flush=True)
    res = cli_runs(trees, args.repeats, command)
    summary = {}
    for label, r in res.items():
        summary[label] = {"wall": statistics.median(r["wall"]), "cpu": statistics.median(r["cpu"]),
                          "load": statistics.median(r["load"])}
        print(f"  {label:7s} wall {fmt_s(summary[label]['wall'])} s (runs "
              f"{', '.join(fmt_s(w) for w in r['wall'])}), CPU {fmt_s(summary[label]['cpu'])} s, "
              f"1-min load {summary[label]['load']:.1f}", flush=True)
    if "before" in summary:
        b, n = summary["before"], summary["now"]
        print(f"  before / now: wall {b['wall'] / n['wall']:.1f}x, CPU {b['cpu'] / n['cpu']:.1f}x")
    out = {"cli": summary, "load": load_note()}
    if not args.no_stages:
        print(f"where the time goes (one process, [wall, CPU] s; {load_note()}):", flush=True)
        for label, tree in trees.items():
            st = stages(tree)
            out[f"stages_{label}"] = st
            print(f"  {label}:")
            for k, (w, c) in st.items():
                print(f"    {k:58s} {w:7.2f} {c:7.2f}")
    print(json.dumps({"e2e": out}))
    return out


if __name__ == "__main__":
    main()
