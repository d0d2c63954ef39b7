"""Speed of the offline DMFT (``method="dmft"``, docs/offline_theory.md §8) against a baseline
commit, measured in one run: the kernel alone (``dmft_tau_curves`` in a fresh process per tree,
so both trees use their own compiled code) and ``lazyrich asymptotic --method dmft`` end to
end as a user runs it (a fresh process, warm Numba cache).

    python benchmarks/dmft_speed.py [--baseline 367515f] [--repeats 3]   # -> dmft_speed.md

The two trees alternate run by run, so both see the same machine load.  The curves of the two
are compared too (largest relative difference of the population and train losses): a speed-up
that changed the numbers would show there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import baseline_tree, load_note, markdown_head, python_env, python_job, run_timed

HERE = Path(__file__).resolve().parent
#: (label, D, P, Ns) -- the fig1 problem (alpha, eps) = (1, 0.02), horizon 1000 D (tau = 40).
CASES = (("kappa = 3", 100, 300, 800), ("kappa = 1.5", 100, 150, 800),
         ("kappa = 3, Ns = 400", 100, 300, 400))

KERNEL = r'''
import inspect, json, math, time
import lazyrich_theory as lr
from lazyrich_theory.theory.offline.inputs import offline_inputs
from lazyrich_theory.theory.offline.dmft import dmft_tau_curves
p = lr.preset("fig1").replace(N=math.inf, D={D}, P={P})
inp = offline_inputs(p)
# the DMFT as derived (the default before column closures existed, "auto" since)
opts = ({{"column_closure": "dmft"}}
        if "column_closure" in inspect.signature(dmft_tau_curves).parameters else {{}})
dmft_tau_curves(inp, 0.5, Ns=20, **opts)              # compile / load the cache
import lazyrich_theory.theory.offline.dmft as dm
seen = []
if hasattr(dm, "free_cores"):             # record the threads the package's run uses
    _free = dm.free_cores
    dm.free_cores = lambda: seen.append(_free()) or seen[-1]
t0 = time.perf_counter()
out = dmft_tau_curves(inp, 40.0, Ns={Ns}, **opts)
wall = time.perf_counter() - t0
print(json.dumps({{"wall": wall, "threads": seen[-1] if seen else 1,
                  "population_loss": out["population_loss"].tolist(),
                  "train_loss": out["train_loss"].tolist()}}))
'''


def _cli(tree: str | None, D: int, P: int, Ns: int) -> float:
    out = tempfile.mkdtemp()
    try:
        r = run_timed([sys.executable, "-m", "lazyrich_theory", "asymptotic", "--preset", "fig1",
                       "--D", str(D), "--P", str(P), "--ns", str(Ns), "--method", "dmft",
                       "--critical-kappa", "none", "--limit-loss", "none", "--steps",
                       str(1000 * D), "--quiet", "--no-plot", "--out", out]
                      # the DMFT as derived: the baseline predates the column closures
                      + ([] if tree else ["--column-closure", "dmft"]),
                      env=python_env(tree), cwd=tempfile.gettempdir())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return r["wall"]


def _rel_diff(a: list[float], b: list[float]) -> float:
    scale = max(abs(x) for x in a) or 1.0
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def measure(baseline: str, repeats: int) -> list[dict]:
    trees = {"baseline": baseline_tree(baseline), "package": None}
    rows = []
    for label, D, P, Ns in CASES:
        kern = {k: [] for k in trees}
        cli = {k: [] for k in trees}
        curves = {}
        for k, tree in trees.items():                  # warm each tree's Numba cache
            _cli(tree, D, P, 20)
        for _ in range(repeats):
            for k, tree in trees.items():
                res = python_job(KERNEL.format(D=D, P=P, Ns=Ns), tree)
                kern[k].append(res["wall"])
                curves[k] = res
                cli[k].append(_cli(tree, D, P, Ns))
        diff = max(_rel_diff(curves["baseline"][c], curves["package"][c])
                   for c in ("population_loss", "train_loss"))
        row = {"case": label, "D": D, "P": P, "Ns": Ns, "difference": diff,
               "threads": curves["package"]["threads"]}
        for k in trees:
            row[f"kernel_{k}"] = statistics.median(kern[k])
            row[f"cli_{k}"] = statistics.median(cli[k])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict], baseline: str, repeats: int) -> str:
    lines = markdown_head(
        "Offline DMFT: package against a baseline commit",
        f"Baseline: commit {baseline}. The fig1 problem (alpha, eps) = (1, 0.02) at D = 100, "
        f"horizon 1000 D steps (tau = 40); median of {repeats} runs each, the two trees "
        "alternating. Kernel: `dmft_tau_curves` alone, in a fresh process per run (cache warm). "
        "CLI: `lazyrich asymptotic --method dmft --critical-kappa none --limit-loss none "
        "--no-plot` end to end. Difference: the largest relative difference of the population "
        "and train loss curves between the trees. Threads: the Numba threads of the package's "
        "samples loop in the last kernel run (the cores free then; the baseline is serial). "
        "Machine: " + load_note() + ".",
        ["case", "Ns", "threads", "kernel, baseline (s)", "kernel, package (s)", "ratio",
         "CLI, baseline (s)", "CLI, package (s)", "ratio", "difference"])
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['Ns']} | {r['threads']} | {r['kernel_baseline']:.2f} "
            f"| {r['kernel_package']:.2f} "
            f"| {r['kernel_baseline'] / r['kernel_package']:.2f} | {r['cli_baseline']:.2f} "
            f"| {r['cli_package']:.2f} | {r['cli_baseline'] / r['cli_package']:.2f} "
            f"| {r['difference']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default="367515f", help="the commit to compare with")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rows = measure(args.baseline, args.repeats)
    (HERE / "dmft_speed.md").write_text(table(rows, args.baseline, args.repeats))
    print((HERE / "dmft_speed.md").read_text())


if __name__ == "__main__":
    main()
