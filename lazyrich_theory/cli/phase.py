"""``lazyrich phase``: phase diagrams from the command line.

    lazyrich phase --vary alpha=0.4:5.6:14 --vary eps=0.02:0.28:14 [model options]
                   [--steps T] [--seeds K] [--method flow|gd|gd-fast] [--workers K]
                   [--scheduler ADDRESS] --out DIR

``--vary NAME=SPEC`` (repeatable; the grid is the product):
    NAME=START:STOP:COUNT        linear spacing, ends included
    NAME=log:START:STOP:COUNT    log spacing
    NAME=V1,V2,...               explicit values (N also takes inf; convention A,B;
                                 centered true,false; init lowrank:1,powerlaw:1,iid,...)
NAME is any of alpha, eps, D, P, N, eta0, seed, test_size, convention, centered, noise,
weight_decay, momentum, batch_size, init, init_scale.

A grid too large for this machine (its cells' estimated work over a day on its workers, or
its memory over what is available) is refused at once with the number of cells and the
estimate, unless ``--i-know``; an unwritable DIR and a malformed or unreachable
``--scheduler`` are refused before DIR is touched.

Running the same command again on the same DIR resumes (only missing cells are computed; each
stored cell is verified first, and one that does not match is recomputed with a one-line
warning); a different sweep in an existing DIR, a DIR another sweep is running on, or a
corrupt DIR/sweep.json is refused (exit 2, one line; ``--recover`` keeps the finished cells of
a folder whose sweep.json is corrupt or lost).  Also runnable on its own as
``python -m lazyrich_theory.cli.phase ...`` (same options, without the word ``phase``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from typing import Callable, Sequence

from lazyrich_theory.cli.parser import (
    Parser,
    add_model_options,
    finite_float,
    int_at_least,
    problem_from_args,
    run_guarded,
    say_preset_note,
)
from lazyrich_theory.cli.progress import (
    say_progress,
)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.sweep import SweepWarning, parse_vary, sweep
from lazyrich_theory.experiments.sweep.executors import executor_workers
from lazyrich_theory.experiments.sweep.offline import OFFLINE_CHOICES
from lazyrich_theory.experiments.sweep.guard import check_grid_size

__all__ = ["add_phase_parser", "run_phase", "build_parser", "main"]


def _add_phase_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep")
    g.add_argument("--vary", action="append", default=[], metavar="NAME=SPEC",
                   help="a swept parameter: NAME=START:STOP:COUNT (linear), "
                        "NAME=log:START:STOP:COUNT, or NAME=V1,V2,... (repeat for a grid)")
    g.add_argument("--seeds", type=int_at_least("--seeds", 1), default=None,
                   help="K seeds per cell (seed, seed+1, ..., seed+K-1); mean and spread "
                        "are taken over them")
    g.add_argument("--steps", type=int_at_least("--steps", 1),
                   help="horizon T in GD steps (default: the preset's, else 10000)")
    g.add_argument("--method", choices=["flow", "gd", "gd-fast"], default="flow",
                   help="flow: gradient flow, RKC (default, fast); gd: exact GD map "
                        "(stops early at convergence); gd-fast: discrete GD in "
                        "error-controlled strides (GD to ~1e-7, docs/stride.md; stops early)")
    g.add_argument("--integrator", choices=["rkc", "dopri5"], default="rkc",
                   help="integrator for --method flow")
    g.add_argument("--rtol", type=finite_float("--rtol", "> 0"), default=None,
                   help="flow relative tolerance")
    g.add_argument("--atol", type=finite_float("--atol", ">= 0"), default=None,
                   help="flow absolute tolerance")
    g.add_argument("--threshold", type=finite_float("--threshold", "> 0"), default=0.1,
                   help="absolute loss threshold of the paper's grokking metric (0.1)")
    g.add_argument("--relative", type=finite_float("--relative", "> 0"), default=0.1,
                   help="relative threshold of the relative metric: a fraction in (0, 1) of "
                        "each loss's initial value (default 0.1)")
    g.add_argument("--tol", type=finite_float("--tol", ">= 0"), default=1e-6,
                   help="a cell stops once train and test loss are both under TOL "
                        "(default 1e-6; 0: always run to T)")
    g.add_argument("--no-predict", dest="predict", action="store_false",
                   help="skip the theory's predictions")
    g.add_argument("--offline-theory", dest="offline", choices=list(OFFLINE_CHOICES),
                   default="spectral",
                   help="theory of the unfitted offline boundary of an alpha x eps sweep: "
                        "spectral closure (default, seconds), dmft (has the memorisation "
                        "floor; its spread closure where the linear column is fast, else as "
                        "derived; ~10 one-to-two-minute solves per seed), interpolant (the "
                        "mirror-descent interpolant's floor decides which cells reach the "
                        "threshold, the spectral closure when; <= 1 s per cell at D = 100) or "
                        "none (docs/offline_theory.md §12.3, §15)")
    e = p.add_argument_group("execution (not part of the sweep's identity)")
    x = e.add_mutually_exclusive_group()
    x.add_argument("--workers", type=int_at_least("--workers", 1), default=None,
                   help="local worker processes (default: number of CPUs; 1 = in-process)")
    x.add_argument("--scheduler", type=str, default=None, metavar="ADDRESS",
                   help="Dask distributed scheduler address, e.g. tcp://host:8786")
    e.add_argument("--retries", type=int_at_least("--retries", 0), default=2,
                   help="tries again a cell whose worker died or that raised (default 2)")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--recover", action="store_true",
                   help="the folder's sweep.json is corrupt or lost: rewrite it from this "
                        "command and keep the stored cells that verify as its own")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip phase.png")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar, progress lines or summary")
    p.add_argument("--i-know", dest="i_know", action="store_true",
                   help="run even if the grid's estimated work exceeds a day on its workers "
                        "or its estimated memory exceeds what this machine has available")


def add_phase_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``phase`` on the ``lazyrich`` subparsers (see the module doc).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``add_subparsers`` returned on the ``lazyrich`` parser.

    Returns
    -------
    argparse.ArgumentParser
        The ``phase`` parser.
    """
    p = subparsers.add_parser("phase", help="phase diagram: sweep parameters, grokking metrics",
                              description="Sweep any problem parameters on a grid and measure "
                                          "grokking in every cell (resumable; see "
                                          "docs/phase_diagrams.md).")
    add_model_options(p)
    _add_phase_options(p)
    return p


def run_phase(args: argparse.Namespace) -> int:
    """Run the sweep described by parsed ``phase`` arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the ``phase`` parser (:func:`add_phase_parser` or :func:`build_parser`).

    Returns
    -------
    int
        The exit code: 0, or 1 if cells failed (one line on stderr; running again retries
        them).  Bad input raises :class:`~lazyrich_theory.errors.ProblemError` (exit 2 in the
        caller).
    """
    t0 = getattr(args, "started", None) or time.perf_counter()
    if not args.vary:
        raise ProblemError("phase needs at least one --vary NAME=SPEC (e.g. --vary alpha=0.4:5.6:14)")
    base, steps = problem_from_args(args)
    allow_large = bool(getattr(args, "i_know", False))
    # the grid is counted from the specs before parse_vary builds a single value of it
    check_grid_size(base, args.vary, args.seeds, steps, args.method, args.integrator,
                    args.predict, executor_workers(None, args.scheduler, args.workers),
                    allow_large)
    axes = parse_vary(args.vary)
    quiet = bool(getattr(args, "quiet", False))
    say = None if quiet else say_progress
    before = _boundary_theory(args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("always", SweepWarning)
        warnings.showwarning = _one_line_sweep_warnings(warnings.showwarning)
        res = sweep(base, axes, steps, seeds=args.seeds, method=args.method,
                    integrator=args.integrator, rtol=args.rtol, atol=args.atol,
                    threshold=args.threshold, relative=args.relative, tol=args.tol or None,
                    predict=args.predict, out=args.out, workers=args.workers,
                    scheduler=args.scheduler, retries=args.retries, progress=not quiet,
                    plot=args.plot, log=say, recover=bool(getattr(args, "recover", False)),
                    allow_large=allow_large, offline=getattr(args, "offline", "spectral"))
    st = res.stats
    counts = res.counts
    if not quiet:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        print(f"phase: {st['n_cells']} cells ({summary}); computed {st['n_computed']}, "
              f"{st['n_resumed']} already done; {time.perf_counter() - t0:.1f} s -> {args.out}")
        print(_offline_line(res.offline))
        if before and before != res.offline.get("method"):
            say_progress(f"phase: the boundary that {args.out}/phase.json had, drawn by "
                         f"--offline-theory {before}, was replaced by this run's "
                         f"({res.offline.get('method') or 'none'}); the cells were kept")
        # a swept clock field makes the preset's horizon cover several taus: no one note
        if not {a.name for a in axes} & {"D", "P", "alpha", "eps", "eta0"}:
            say_preset_note(args, base)
    if st["n_failed"]:
        cid, msg = next(iter(st["failures"].items()))
        print(f"lazyrich: error: {st['n_failed']} cell(s) failed (e.g. {cid}: {msg}); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def _boundary_theory(out: str) -> str | None:
    """The offline theory that drew the boundary already in ``out``/phase.json (None: no
    file, no boundary, or a file that does not parse -- the sweep reports those itself)."""
    try:
        with open(os.path.join(out, "phase.json"), encoding="utf-8") as f:
            return json.load(f).get("offline_theory", {}).get("method")
    except (OSError, ValueError, AttributeError):
        return None


def _offline_line(info: dict) -> str:
    """One line on the offline theory's boundary: which theory drew it, or why there is none."""
    if info.get("method"):
        return f"phase: offline-theory boundary: {info['theory']}"
    return f"phase: no offline-theory boundary: {info.get('reason')}"


def _one_line_sweep_warnings(show: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints a :class:`SweepWarning` as one line on stderr
    (``lazyrich: warning: ...``) and passes other warnings to ``show``."""
    def printer(message, category, *args, **kwargs) -> None:
        if issubclass(category, SweepWarning):
            print(f"lazyrich: warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, *args, **kwargs)
    return printer


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of :func:`main` (``prog`` is ``lazyrich phase``).

    Returns
    -------
    argparse.ArgumentParser
        A :class:`~lazyrich_theory.cli.parser.Parser` with the model and sweep options.
    """
    p = Parser(prog="lazyrich phase", description="Phase diagrams of the lazy-to-rich model "
               "(see docs/phase_diagrams.md).")
    add_model_options(p)
    _add_phase_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m lazyrich_theory.cli.phase [options]``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``), without the word ``phase``.

    Returns
    -------
    int
        The exit code (see :func:`run_phase`; 2 for bad input, 130 interrupted).
    """
    started = time.perf_counter()

    def command() -> int:
        args = build_parser().parse_args(argv)
        args.started = started
        return run_phase(args)

    return run_guarded(command,
                       interrupted="lazyrich: interrupted (finished cells are saved; "
                                   "run again to resume)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
