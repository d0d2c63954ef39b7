"""Shared helpers of the benchmarks: timing, machine load, child processes, a baseline tree.

Every benchmark reports medians of repetitions and ratios measured in the same run, and notes
the machine's load next to its numbers (the machine is shared: absolute times move with it).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_note() -> str:
    """'load 3.1/2.9/2.7, 4 runnable, 2 CPUs' from /proc/loadavg (or os.getloadavg)."""
    try:
        with open("/proc/loadavg") as fh:
            f = fh.read().split()
        run = f[3].split("/")[0]
        return f"load {f[0]}/{f[1]}/{f[2]}, {run} runnable, {os.cpu_count()} CPUs"
    except OSError:                                     # pragma: no cover
        a = os.getloadavg()
        return f"load {a[0]:.2f}/{a[1]:.2f}/{a[2]:.2f}, {os.cpu_count()} CPUs"


def load1() -> float:
    """The 1-minute load average."""
    return float(os.getloadavg()[0])


def median_time(fn: Callable[[], Any], repeats: int, best: bool = False) -> tuple[float, Any]:
    """(median -- or, ``best``, the fastest -- wall seconds over ``repeats`` calls, the last
    result)."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return (min(times) if best else statistics.median(times)), out


def gemm_rate(m: int, k: int, n: int, repeats: int = 30, threads: int | None = None,
              trans_a: bool = False, best: bool = False) -> float:
    """GFLOP/s of an (m x k) @ (k x n) float64 product (A stored transposed when ``trans_a``,
    as X^T R is): median (or the fastest, ``best``) of ``repeats``, with ``threads`` BLAS
    threads (None: BLAS's default)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    A = rng.standard_normal((k, m)).T if trans_a else rng.standard_normal((m, k))
    B = rng.standard_normal((k, n))
    ctx = threadpool_limits(threads, user_api="blas") if threads else _null()
    with ctx:
        A @ B
        t, _ = median_time(lambda: A @ B, repeats, best)
    return 2.0 * m * k * n / t / 1e9


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def python_env(tree: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child Python running the package from ``tree`` (default: this
    checkout), with the caller's NUMBA_CACHE_DIR."""
    env = dict(os.environ)
    tree = tree or ROOT
    env["PYTHONPATH"] = os.pathsep.join([tree] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                  else []))
    env.update(extra)
    return env


def run_timed(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
              check: bool = True) -> dict[str, Any]:
    """Run ``argv``; its wall seconds, CPU seconds (user + sys of the child), peak RSS (MB)
    and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "maxrss_mb": after.ru_maxrss / 1024.0,
            "stdout": proc.stdout, "stderr": proc.stderr, "rc": proc.returncode}


def python_job(code: str, tree: str | None = None, **env: str) -> dict[str, Any]:
    """Run ``code`` in a fresh Python (package from ``tree``); its last stdout line is JSON,
    returned merged with the process's wall, CPU and peak memory."""
    out = run_timed([sys.executable, "-c", code], env=python_env(tree, **env), cwd=tempfile.gettempdir())
    lines = [ln for ln in out["stdout"].splitlines() if ln.strip()]
    res = json.loads(lines[-1]) if lines else {}
    res.update(process_wall=out["wall"], process_cpu=out["cpu"], maxrss_mb=out["maxrss_mb"])
    return res


def baseline_tree(commit: str) -> str:
    """A copy of the package at ``commit`` (git archive into a temporary folder, cached by
    commit), for before/after rows."""
    commit = subprocess.run(["git", "rev-parse", commit], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    dest = os.path.join(tempfile.gettempdir(), f"lazyrich_base_{commit[:12]}")
    if not os.path.isdir(os.path.join(dest, "lazyrich_theory")):
        os.makedirs(dest, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


def geometric_times(T: int, n: int = 300):
    """Save times for a run to ``T`` steps: 0 and ``n`` geometrically spaced integers from 1 to
    ``T`` (repeats dropped), the grid the offline-theory benchmarks evaluate on."""
    import numpy as np

    return np.unique(np.concatenate([[0], np.geomspace(1, T, n).astype(int)]))


def load_results(path) -> dict[str, Any]:
    """The results JSON file ``path`` (a pathlib.Path) as a dict; {} if it does not exist
    (not run yet)."""
    return json.loads(path.read_text()) if path.exists() else {}


def run_resumable(path, jobs, indent: int | None = 1) -> dict[str, Any]:
    """Run ``jobs`` ((key, callable returning a dict) pairs) whose key is not yet in the JSON
    file ``path`` (a pathlib.Path), timing each and rewriting the file atomically after each
    (an interrupted run resumes where it stopped; ``indent=None``: one compact line, for long
    series).  Returns everything done."""
    done = load_results(path)
    for key, job in jobs:
        if key in done:
            continue
        t0 = time.perf_counter()
        done[key] = job()
        done[key]["wall_time"] = time.perf_counter() - t0
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=indent))
        os.replace(tmp, path)
        print(f"{key}: {done[key]['wall_time']:.1f} s", flush=True)
    return done


def seed_runs(done: dict, seeds, key: Callable[[int], str], present: bool = False) -> list:
    """One table cell's runs over ``seeds``: ``done[key(s)]`` per seed, None where not run
    (``present``: only the runs there are)."""
    runs = [done.get(key(s)) for s in seeds]
    return [r for r in runs if r is not None] if present else runs


def half_crossing(xs, loss) -> float:
    """First x (linear interpolation) at which ``loss`` falls to 1/2 along the increasing grid
    ``xs``; NaN if not bracketed (the package's ``half_crossing`` with NaN for None)."""
    import math

    from lazyrich_theory.theory.offline.summary import half_crossing as crossing

    value, _ = crossing(xs, loss)
    return math.nan if value is None else value


def nearest(grid, values) -> list[int]:
    """The index of the point of ``grid`` nearest to each of ``values`` (e.g. the DMFT's tau
    grid at the times a table reports)."""
    import numpy as np

    grid = np.asarray(grid)
    return [int(np.argmin(np.abs(grid - v))) for v in values]


def fmt_s(x: float | None) -> str:
    """Seconds for a table: 3 significant digits, '—' for None."""
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def markdown_head(title: str, intro: str, columns: list[str], level: int = 1) -> list[str]:
    """The first lines of a results table in markdown: a title (a heading of ``level``), a
    paragraph, the header row and its rule (append one ``| ... |`` line per row)."""
    return [f"{'#' * level} {title}", "", intro, "", "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns)]


def write_table(path, lines: list[str]) -> None:
    """Write a markdown table (``lines``) to ``path`` (a pathlib.Path) and print it."""
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def run_or_table(out, jobs, table: Callable[[], None]) -> None:
    """The command line of a resumable benchmark: ``run`` (default: :func:`run_resumable` of
    ``jobs()`` into ``out``) or ``table``."""
    arg = sys.argv[1] if len(sys.argv) > 1 else "run"
    if arg == "run":
        run_resumable(out, jobs())
    elif arg == "table":
        table()
    else:
        raise SystemExit(f"unknown command {arg!r}: run or table")


def run_named_or_table(outs: dict, jobs: Callable[[str], Any], table: Callable[[], None],
                       args: list[str] | None = None) -> None:
    """The command line of a benchmark with several resumable runs: ``NAME`` (a key of
    ``outs``: :func:`run_resumable` of ``jobs(NAME)`` into ``outs[NAME]``) or ``table``."""
    args = sys.argv[1:] if args is None else args
    if len(args) == 1 and args[0] in outs:
        run_resumable(outs[args[0]], jobs(args[0]))
    elif args == ["table"]:
        table()
    else:
        names = " | ".join([*outs, "table"])
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} {names}")
