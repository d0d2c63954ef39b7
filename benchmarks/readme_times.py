"""The README's claimed times, measured (issue 15 §2, issue 14 goal 7).

    python benchmarks/readme_times.py [--tests] [--fig3e] [--keep DIR]

In a scratch clone of this repository's HEAD (``git clone``), as a new user would:

* **main job**: ``python3 -m venv .venv && . .venv/bin/activate && pip install .`` (timed
  apart) and then ``lazyrich solve --preset fig1 --out out/fig1`` with an empty Numba cache (a
  fresh ``LAZYRICH_CACHE_DIR``: the first run compiles every kernel) and once more warm;
* ``lazyrich solve --preset fig1 --method flow --out ...`` (the quick tour's flow), cold cache
  is the first row above; here warm, median of 3;
* with --tests: ``pip install -e ".[test]" && python -m pytest`` (the README's second command);
* with --fig3e: the quick tour's Fig. 3(e) phase diagram (``lazyrich phase --D 100 --P 550
  --N 500 --eta0 20 --vary alpha=0.4:5.6:14 --vary eps=0.02:0.28:14 --steps 110000``).

Prints each wall time with the machine's load (the numbers go into the README with the date)
and a Markdown table.  pip resolves from the configured index (and its cache).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import ROOT, fmt_s, load_note  # noqa: E402


def _sh(cmd: str, cwd: str, env: dict[str, str]) -> tuple[float, str]:
    """Run ``cmd`` in bash; (wall seconds, load at the end).  Raises on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return wall, load_note()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", action="store_true", help="also time the README's tests command")
    ap.add_argument("--fig3e", action="store_true", help="also time the Fig. 3(e) phase diagram")
    ap.add_argument("--keep", default=None, help="work in DIR and keep it (default: a temp dir)")
    args = ap.parse_args(argv)
    work = args.keep or tempfile.mkdtemp(prefix="lazyrich_readme_")
    clone = os.path.join(work, "clone")
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                          text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if "venv" not in p)
    env["LAZYRICH_CACHE_DIR"] = os.path.join(work, "cache")      # an empty user cache
    shutil.rmtree(env["LAZYRICH_CACHE_DIR"], ignore_errors=True)
    act = ". .venv/bin/activate && "
    rows: list[tuple[str, float, str]] = []

    def record(what: str, cmd: str) -> float:
        wall, ld = _sh(cmd, clone, env)
        rows.append((what, wall, ld))
        print(f"{what:62s} {fmt_s(wall):>8s} s   [{ld}]", flush=True)
        return wall

    print(f"README commands in a scratch clone of {head} ({datetime.date.today()}); "
          f"{load_note()}", flush=True)
    record("main job: python3 -m venv .venv && pip install .",
           "python3 -m venv .venv && " + act + "pip install -q .")
    record("main job: lazyrich solve --preset fig1 (first run, Numba compiles)",
           act + "lazyrich solve --preset fig1 --out out/fig1 --quiet")
    record("lazyrich solve --preset fig1 (exact GD 1e5 steps, warm cache)",
           act + "lazyrich solve --preset fig1 --out out/fig1b --quiet")
    flows = []
    for k in range(3):
        wall, ld = _sh(act + f"lazyrich solve --preset fig1 --method flow --out out/flow{k} "
                       "--quiet", clone, env)
        flows.append(wall)
    rows.append(("lazyrich solve --preset fig1 --method flow (warm, median of 3)",
                 statistics.median(flows), ld))
    print(f"{rows[-1][0]:62s} {fmt_s(rows[-1][1]):>8s} s   [{ld}]", flush=True)
    if args.fig3e:
        record("lazyrich phase ... Fig. 3(e), 14 x 14, eta0 = 20, 110000 steps",
               act + "lazyrich phase --D 100 --P 550 --N 500 --eta0 20 --vary "
               "alpha=0.4:5.6:14 --vary eps=0.02:0.28:14 --steps 110000 --out out/fig3e --quiet")
    if args.tests:
        shutil.rmtree(os.path.join(clone, ".venv"), ignore_errors=True)
        record("tests: python3 -m venv .venv && pip install -e \".[test]\"",
               "python3 -m venv .venv && " + act + "pip install -q -e \".[test]\"")
        record("tests: python -m pytest", act + "python -m pytest -q -x -p no:cacheprovider")
    print()
    print(f"| command (measured {datetime.date.today()}, commit {head}) | wall | machine load |")
    print("|---|---:|---|")
    for what, wall, ld in rows:
        print(f"| {what} | {fmt_s(wall)} s | {ld} |")
    out = {"commit": head, "date": str(datetime.date.today()),
           "rows": [dict(what=w, wall=t, load=ld) for w, t, ld in rows]}
    print(json.dumps({"readme_times": out}))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
