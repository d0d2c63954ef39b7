"""``lazyrich figure NAME [--out DIR] [--steps T] [--seed S] [--set KEY=VALUE ...]``: one of the
paper's figures (or ``all`` of them) into ``DIR/NAME`` (docs/gallery.md).

The figure is made by :func:`lazyrich_theory.experiments.figures.make_figure`; this module only
parses the command line.  Unlike the other subcommands, ``figure`` has its own plain argparse
parser (usage line and ``lazyrich figure: error:`` on bad options, exit 2), because its help
lists the figure registry, which needs matplotlib: ``lazyrich --help`` shows a placeholder.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from lazyrich_theory.errors import ProblemError

__all__ = ["add_figure_parser", "build_parser", "parse_value", "parse_overrides", "main"]


def add_figure_parser(subparsers) -> None:
    """Register the ``figure`` placeholder on the ``lazyrich`` subparsers (for ``lazyrich
    --help``); whatever follows the word ``figure`` goes to :func:`main`.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``add_subparsers`` returned on the ``lazyrich`` parser.
    """
    f = subparsers.add_parser("figure", help="reproduce one of the paper's figures (or all)",
                              add_help=False)
    f.add_argument("figure_args", nargs=argparse.REMAINDER)


def build_parser(paper: Sequence[str], beyond: Sequence[str]) -> argparse.ArgumentParser:
    """The ``lazyrich figure`` parser.

    Parameters
    ----------
    paper : sequence of str
        The paper's figures (what ``all`` runs), in order.
    beyond : sequence of str
        The figures beyond the paper.

    Returns
    -------
    argparse.ArgumentParser
        A plain parser (errors print the usage and exit 2).
    """
    ap = argparse.ArgumentParser(prog="lazyrich figure",
                                 description="make one of the paper's figures (or all of them)")
    ap.add_argument("name", help=f"a paper figure ({', '.join(paper)}), all (the paper's), or "
                                 f"beyond the paper: {', '.join(beyond)}")
    ap.add_argument("--out", default="figures", help="output folder (a subfolder per figure)")
    ap.add_argument("--steps", type=int, default=None, help="override the horizon")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a problem field or figure option (repeatable)")
    return ap


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, else float, else bool (``true``/``false``), else the text.

    Parameters
    ----------
    text : str
        What follows ``KEY=``.

    Returns
    -------
    int, float, bool or str
    """
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """The ``--set KEY=VALUE`` items as a dict (values through :func:`parse_value`).

    Parameters
    ----------
    items : sequence of str
        The ``--set`` arguments, in order (a later KEY wins).

    Returns
    -------
    dict

    Raises
    ------
    ProblemError
        An item has no ``=``.
    """
    overrides = {}
    for item in items:
        if "=" not in item:
            raise ProblemError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k.strip()] = parse_value(v.strip())
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """``lazyrich figure ARGS``: make the named figure(s), one line per figure on stdout.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the word ``figure`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0, or 2 with one line on stderr for a bad name or value.  Bad options print the usage
        and raise ``SystemExit(2)`` (argparse); ``--help`` raises ``SystemExit(0)``.
    """
    # the figure registry imports matplotlib: loaded only when a figure is asked for
    from lazyrich_theory.experiments.figures import FIGURES, make_figure

    paper = [k for k, f in FIGURES.items() if f.paper]
    beyond = [k for k, f in FIGURES.items() if not f.paper]
    args = build_parser(paper, beyond).parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        names = paper if args.name == "all" else [args.name]
        for name in names:
            info = make_figure(name, os.path.join(args.out, name), args.steps, args.seed,
                               **overrides)
            print(f"{name}: {info['wall_time']:.1f} s -> {os.path.join(args.out, name)}")
    except ProblemError as exc:
        print(f"lazyrich figure: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
