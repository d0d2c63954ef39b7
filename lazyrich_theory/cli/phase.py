"""``lazyrich phase``: phase diagrams from the command line.

    lazyrich phase --vary alpha=0.4:5.6:14 --vary eps=0.02:0.28:14 [model options]
                   [--steps T] [--seeds K] [--method flow|gd] [--workers K]
                   [--scheduler ADDRESS] --out DIR

``--vary NAME=SPEC`` (repeatable; the grid is the product):
    NAME=START:STOP:COUNT        linear spacing, ends included
    NAME=log:START:STOP:COUNT    log spacing
    NAME=V1,V2,...               explicit values (N also takes inf; convention A,B;
                                 centered true,false)
NAME is any of alpha, eps, D, P, N, eta0, seed, test_size, convention, centered.

Running the same command again on the same DIR resumes (only missing cells are computed); a
different sweep in an existing DIR is refused (exit 2).  Also runnable on its own as
``python -m lazyrich_theory.phase_cli ...`` (same options, without the word ``phase``).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, Sequence

from lazyrich_theory.errors import ProblemError

__all__ = ["add_phase_parser", "run_phase", "main"]


def _int_at_least(name: str, low: int):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {v}")
        return v
    return conv


def _positive_float(name: str, allow_zero: bool = False):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number "
                                             f"{'>= 0' if allow_zero else '> 0'}, got {s!r}")
        return v
    return conv


def _add_phase_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep")
    g.add_argument("--vary", action="append", default=[], metavar="NAME=SPEC",
                   help="a swept parameter: NAME=START:STOP:COUNT (linear), "
                        "NAME=log:START:STOP:COUNT, or NAME=V1,V2,... (repeat for a grid)")
    g.add_argument("--seeds", type=_int_at_least("--seeds", 1), default=None,
                   help="K seeds per cell (seed, seed+1, ..., seed+K-1); mean and spread "
                        "are taken over them")
    g.add_argument("--steps", type=_int_at_least("--steps", 1),
                   help="horizon T in GD steps (default: the preset's, else 10000)")
    g.add_argument("--method", choices=["flow", "gd"], default="flow",
                   help="flow: gradient flow, RKC (default, fast); gd: exact GD map "
                        "(stops early at convergence)")
    g.add_argument("--integrator", choices=["rkc", "dopri5"], default="rkc",
                   help="integrator for --method flow")
    g.add_argument("--rtol", type=_positive_float("--rtol"), default=None,
                   help="flow relative tolerance")
    g.add_argument("--atol", type=_positive_float("--atol", allow_zero=True), default=None,
                   help="flow absolute tolerance")
    g.add_argument("--threshold", type=_positive_float("--threshold"), default=0.1,
                   help="absolute loss threshold of the paper's grokking metric (0.1)")
    g.add_argument("--relative", type=_positive_float("--relative"), default=0.1,
                   help="relative threshold (x initial loss) of the relative metric (0.1)")
    g.add_argument("--tol", type=_positive_float("--tol", allow_zero=True), default=1e-6,
                   help="a cell stops once train and test loss are both under TOL "
                        "(default 1e-6; 0: always run to T)")
    g.add_argument("--no-predict", dest="predict", action="store_false",
                   help="skip the theory's predictions")
    e = p.add_argument_group("execution (not part of the sweep's identity)")
    x = e.add_mutually_exclusive_group()
    x.add_argument("--workers", type=_int_at_least("--workers", 1), default=None,
                   help="local worker processes (default: number of CPUs; 1 = in-process)")
    x.add_argument("--scheduler", type=str, default=None, metavar="ADDRESS",
                   help="Dask distributed scheduler address, e.g. tcp://host:8786")
    e.add_argument("--retries", type=_int_at_least("--retries", 0), default=2,
                   help="tries again a cell whose worker died or that raised (default 2)")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip phase.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def add_phase_parser(subparsers, add_model_options: Callable[[argparse.ArgumentParser], None]):
    """Register ``phase`` on the ``lazyrich`` sub-command parsers (see module doc)."""
    p = subparsers.add_parser("phase", help="phase diagram: sweep parameters, grokking metrics",
                              description="Sweep any problem parameters on a grid and measure "
                                          "grokking in every cell (resumable; see "
                                          "docs/phase_diagrams.md).")
    add_model_options(p)
    _add_phase_options(p)
    return p


def run_phase(args: argparse.Namespace) -> int:
    """Run the sweep described by parsed ``phase`` arguments; returns the exit code.
    Raises ProblemError (exit 2 in the caller) for bad input."""
    import time

    from lazyrich_theory.cli.app import problem_from_args
    from lazyrich_theory.experiments.sweep import parse_vary, sweep

    if not args.vary:
        raise ProblemError("phase needs at least one --vary NAME=SPEC (e.g. --vary alpha=0.4:5.6:14)")
    axes = parse_vary(args.vary)
    base, steps = problem_from_args(args)
    quiet = bool(getattr(args, "quiet", False))
    say = None if quiet else (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    res = sweep(base, axes, steps, seeds=args.seeds, method=args.method,
                integrator=args.integrator, rtol=args.rtol, atol=args.atol,
                threshold=args.threshold, relative=args.relative, tol=args.tol or None,
                predict=args.predict, out=args.out, workers=args.workers,
                scheduler=args.scheduler, retries=args.retries, progress=not quiet,
                plot=args.plot, log=say)
    st = res.stats
    counts = res.counts
    if not quiet:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        print(f"phase: {st['n_cells']} cells ({summary}); computed {st['n_computed']}, "
              f"{st['n_resumed']} already done; {time.perf_counter() - t0:.1f} s -> {args.out}")
    if st["n_failed"]:
        cid, msg = next(iter(st["failures"].items()))
        print(f"lazyrich: error: {st['n_failed']} cell(s) failed (e.g. {cid}: {msg}); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    from lazyrich_theory.cli.app import _add_model_options, _Parser

    p = _Parser(prog="lazyrich phase", description="Phase diagrams of the lazy-to-rich model "
                "(see docs/phase_diagrams.md).")
    _add_model_options(p)
    _add_phase_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m lazyrich_theory.phase_cli [options]``."""
    from lazyrich_theory.cli.app import UsageError

    try:
        args = build_parser().parse_args(argv)
        return run_phase(args)
    except (UsageError, ProblemError, FileNotFoundError) as exc:
        print(f"lazyrich: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lazyrich: interrupted (finished cells are saved; run again to resume)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
