"""The ``lazyrich`` command-line tool: the top-level parser and the dispatch to one module per
subcommand (options shared by several live in :mod:`lazyrich_theory.cli.parser`).

    lazyrich solve      [model options] [--method gd|flow] [--steps T] [--save-times ...] --out DIR
    lazyrich simulate   [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich population [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich compare DIR_A DIR_B
    lazyrich phase --vary NAME=SPEC ... [model options] --out DIR
    lazyrich figure NAME [--out DIR] [--set KEY=VALUE ...]
    lazyrich asymptotic [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich --version

Each command's summary line gives its total wall time (from the start of :func:`main` to its
files written).  Bad input: exit code 2 and one line on stderr, nothing written.  A diverging
run: exit 1 and one line naming the step and a stable learning-rate bound.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from typing import Callable, Sequence

from lazyrich_theory.cli.asymptotic import add_asymptotic_parser, run_asymptotic
from lazyrich_theory.cli.compare import add_compare_parser, run_compare
from lazyrich_theory.cli.figure import add_figure_parser
from lazyrich_theory.cli.figure import main as figure_main
from lazyrich_theory.cli.parser import Parser, UsageError, run_guarded
from lazyrich_theory.cli.phase import add_phase_parser, run_phase
from lazyrich_theory.cli.solve import COMMANDS as SOLVE_COMMANDS
from lazyrich_theory.cli.solve import add_solve_parsers, explain_unrecognized, run_solve

__all__ = ["build_parser", "main", "version"]

#: How each subcommand runs from its parsed arguments (returns the exit code).
RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {
    **dict.fromkeys(SOLVE_COMMANDS, run_solve),
    "compare": run_compare,
    "phase": run_phase,
    "asymptotic": run_asymptotic,
    "figure": lambda args: figure_main(args.figure_args, started=args.started),
}


def version() -> str:
    """The installed distribution's version (``importlib.metadata``), else the package's
    ``__version__`` (running from a source tree that is not installed)."""
    try:
        return importlib.metadata.version("lazyrich_theory")
    except importlib.metadata.PackageNotFoundError:
        # the package itself is always imported before this submodule (read, not imported:
        # the top-level package is a higher layer than the command line)
        return str(getattr(sys.modules.get("lazyrich_theory"), "__version__", "unknown"))


def build_parser() -> argparse.ArgumentParser:
    """The ``lazyrich`` parser with every subcommand registered.

    Returns
    -------
    argparse.ArgumentParser
        A :class:`~lazyrich_theory.cli.parser.Parser`: errors raise ``UsageError``.
    """
    parser = Parser(prog="lazyrich", description="Exact reduced dynamics of the lazy-to-rich "
                    "(grokking) polynomial model of Kumar et al. (arXiv 2310.06110).")
    parser.add_argument("--version", action="version", version=f"lazyrich {version()}",
                        help="print the version (lazyrich X.Y.Z) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_solve_parsers(sub)
    add_compare_parser(sub)
    add_phase_parser(sub)
    add_figure_parser(sub)
    add_asymptotic_parser(sub)
    return parser


def _parse_and_run(argv: list[str], started: float) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:      # an option the subcommand does not take: say why
        raise UsageError(explain_unrecognized(argv, str(exc))) from None
    args.started = started        # the summary lines report the wall time from here
    if args.command is None:
        print("lazyrich: error: a command is required (solve, simulate, population, "
              "compare, phase, figure); see lazyrich --help", file=sys.stderr)
        return 2
    return RUNNERS[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``lazyrich`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0; 2 bad input, 1 a diverging run (one line on stderr each); 130
        interrupted.  ``--help`` and ``--version`` raise ``SystemExit(0)``.
    """
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "figure":       # its own parser (cli/figure.py), options included
        return figure_main(argv[1:], started=started)
    return run_guarded(lambda: _parse_and_run(argv, started))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
