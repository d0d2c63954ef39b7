"""Is the fast column's link to the inputs x resolved at small kappa? (issue 13;
docs/offline_theory.md §12.4.)  The projected flows X (the network's own column: the exact
flow) and Y (an independent Gaussian design of the same shape, the law the DMFT's closures
describe) of benchmarks/offline_tail_projection.py on twelve training seeds instead of two:
Y - X per seed (Y also draws its own design per seed), its mean and standard error.

    python benchmarks/offline_column_link.py run 2 100 200    # kappa, then D; resumable
    python benchmarks/offline_column_link.py table            # -> offline_column_link.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from common import markdown_head, run_resumable, write_table
from offline_tail_projection import _one

HERE = Path(__file__).resolve().parent
OUT = HERE / "offline_column_link.json"
SEEDS = tuple(range(12))
#: tau at which the loss is compared (offline_tail_channels.TAUS[2])
TAU_INDEX, TAU = 2, 40


def run(kappa: float, dims: list[int]) -> None:
    run_resumable(OUT, ((f"{kappa:g}|{D}|{s}|{d}",
                         lambda D=D, s=s, d=d: _one(D, s, d, kappa))
                        for D in dims for s in SEEDS for d in ("X", "Y")), indent=None)


def table() -> None:
    done = json.loads(OUT.read_text())
    lines = markdown_head(
        "The column's link to x over twelve seeds",
        f"Relative population loss at tau = {TAU} of the projected flows X (the network's "
        "column, the exact flow) and Y (an independent design), seed means and sd over the "
        "training seeds; Y - X: mean ± standard error of the per-seed differences "
        "(docs/offline_theory.md §12.4; alpha / eps = 50).",
        ["kappa", "D", "seeds", "X", "Y", "Y - X"])
    cells = sorted({tuple(k.split("|")[:2]) for k in done}, key=lambda c: tuple(map(float, c)))
    for kappa, D in cells:
        seeds = [s for s in SEEDS if all(f"{kappa}|{D}|{s}|{d}" in done for d in "XY")]
        x, y = (np.array([done[f"{kappa}|{D}|{s}|{d}"]["pop"][TAU_INDEX] for s in seeds])
                for d in "XY")
        diff = y - x
        lines.append(f"| {kappa} | {D} | {len(seeds)} | {x.mean():.3f} ± {x.std():.3f} | "
                     f"{y.mean():.3f} ± {y.std():.3f} | {diff.mean():+.3f} ± "
                     f"{diff.std() / np.sqrt(len(seeds)):.3f} |")
    write_table(HERE / "offline_column_link.md", lines)


if __name__ == "__main__":
    args = sys.argv[1:] or ["table"]
    if args[0] == "run" and len(args) >= 3:
        run(float(args[1]), [int(d) for d in args[2:]])
    elif args[0] == "table":
        table()
    else:
        sys.exit("usage: offline_column_link.py run KAPPA D [D ...] | table")
