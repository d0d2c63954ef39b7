"""``lazyrich figure NAME [--out DIR] [--steps T] [--seed S] [--set KEY=VALUE ...]``: one of the
paper's figures (or ``all`` of them) into ``DIR/NAME`` (``DIR`` defaults to ``./figures``;
docs/gallery.md).

The figure is made by :func:`lazyrich_theory.experiments.figures.make_figure`; this module
parses the command line and checks it first.  Unlike the other subcommands, ``figure`` has its
own parser (one line ``lazyrich figure: error: ...`` on bad input, exit 2), because its help
lists the figure registry, which needs matplotlib: ``lazyrich --help`` shows a placeholder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

from lazyrich_theory.cli.parser import (Parser, config_difference, count_at_least, int_at_least,
                                       run_guarded)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.resources import LONG_RUN_SECONDS, check_resources, check_writable
from lazyrich_theory.storage import jsonable

__all__ = ["DEFAULT_OUT", "add_figure_parser", "build_parser", "parse_value", "parse_overrides",
           "main"]

#: The output folder when ``--out`` is not given (relative to the current folder; ignored by
#: the repository's .gitignore).
DEFAULT_OUT = "figures"


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
    f.add_argument("figure_args", nargs=argparse.REMAINDER,
                   help="NAME and options (see lazyrich figure --help)")


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
        A :class:`~lazyrich_theory.cli.parser.Parser`: a bad option raises ``UsageError``
        (one line, exit 2); ``--help`` prints the help and exits 0.
    """
    ap = Parser(prog="lazyrich figure",
                description="make one of the paper's figures (or all of them)")
    ap.add_argument("name", help=f"a paper figure ({', '.join(paper)}), all (the paper's), or "
                                 f"beyond the paper: {', '.join(beyond)}")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help=f"output folder, a subfolder per figure (default: ./{DEFAULT_OUT}, "
                         "relative to the current folder)")
    ap.add_argument("--steps", type=count_at_least("--steps", 1), default=None,
                    help="override the horizon (>= 1; default: the figure's own)")
    ap.add_argument("--seed", type=int_at_least("--seed", 0), default=0,
                    help="seed of the data and initialisation streams (>= 0, default 0)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a problem field or figure option (repeatable)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a figure of another configuration (problem, steps, options) "
                         "already in the output folder (default: refuse)")
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


def _normal(value: Any) -> Any:
    """A configuration value as compared for a rerun: numbers as floats, and a list of numbers
    given as text ("3,6" or "3.0, 6") as that list, so that one value has one form."""
    if isinstance(value, str):
        try:
            return [float(v) for v in value.split(",")]
        except ValueError:
            return value
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _check_rerun(fig: Any, out: str, record: dict[str, Any], overwrite: bool) -> None:
    """Refuse (one line) to replace, in ``out``, figure ``fig`` of another configuration
    (its ``figure.json``'s problem, steps and options; an option left out and one given at
    its default are the same), or one whose ``figure.json`` is gone (its configuration cannot
    be compared), unless ``overwrite``."""
    path = os.path.join(out, "figure.json")
    if overwrite:
        return
    if not os.path.isfile(path):
        if os.path.isfile(os.path.join(out, f"{fig.name}.png")):
            raise ProblemError(f"{out} holds {fig.name}.png but no figure.json to say its "
                               "configuration; use another --out or pass --overwrite")
        return

    def full(rec: dict[str, Any]) -> dict[str, Any]:
        rec = json.loads(json.dumps(jsonable(rec)))
        for k in fig.sets:      # the figure sets them itself: no part of the configuration
            rec["problem"].pop(k, None)
        rec["options"] = {k: _normal(v) for k, v in
                          {**jsonable(fig.defaults), **rec["options"]}.items()}
        return rec

    try:
        with open(path) as f:
            saved = json.load(f)
        old = full({k: saved[k] for k in record})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        old = None
    new = full(record)
    if old != new:
        raise ProblemError(f"{out} already holds figure {fig.name} of another configuration "
                           f"({config_difference(old, new, record='figure.json')}); use "
                           "another --out or pass --overwrite")


def _check_figure(fig: Any, out: str, steps: int | None, seed: int,
                  overrides: dict[str, Any], overwrite: bool = False) -> None:
    """Everything checkable before figure ``fig`` is computed: the ``--set`` keys, its
    problem, the estimate of its reduced solve (a lower bound of the figure's work), that
    ``out`` is writable and holds no figure of another configuration."""
    fields = list(Problem.__dataclass_fields__)
    unknown = sorted(k for k in overrides if k not in fields and k not in fig.options)
    if unknown:
        raise ProblemError(f"--set {', '.join(unknown)}: not a problem field or an option of "
                           f"{fig.name} (options: {', '.join(fig.options) or 'none'}; fields: "
                           f"{', '.join(fields)})")
    fig.check_overrides(overrides)
    problem = Problem(**{**fig.problem, "seed": seed,
                         **{k: v for k, v in overrides.items() if k in fields}})
    steps = fig.steps if steps is None else steps
    fig.precheck(problem, steps, **overrides)
    est = check_resources(problem, steps if fig.solves else 0, "gd",
                          hint="a figure runs at its configured size: lower the --set "
                               "values or --steps")
    check_writable(out, "--out", siblings=False)
    _check_rerun(fig, out, {"problem": problem.to_dict(), "steps": steps,
                            "options": {k: v for k, v in overrides.items() if k not in fields}},
                 overwrite)
    if fig.solves and est.seconds > LONG_RUN_SECONDS:
        print(f"lazyrich figure: estimate for {fig.name}: at least {est.describe()} (its "
              "reduced solve alone)", file=sys.stderr)


def _run(argv: Sequence[str] | None, started: float) -> int:
    # the figure registry imports matplotlib: loaded only when a figure is asked for
    from lazyrich_theory.experiments.figures import FIGURES, make_figure

    paper = [k for k, f in FIGURES.items() if f.paper]
    beyond = [k for k, f in FIGURES.items() if not f.paper]
    args = build_parser(paper, beyond).parse_args(argv)
    overrides = parse_overrides(args.set)
    names = paper if args.name == "all" else [args.name]
    if args.name != "all" and args.name not in FIGURES:
        raise ProblemError(f"unknown figure {args.name!r}; choose from "
                           f"{', '.join(FIGURES)} or all")
    for name in names:
        _check_figure(FIGURES[name], os.path.join(args.out, name), args.steps, args.seed,
                      overrides, args.overwrite)
    for name in names:
        make_figure(name, os.path.join(args.out, name), args.steps, args.seed, **overrides)
        now = time.perf_counter()   # wall time since the previous line (the first: the start)
        print(f"{name}: {now - started:.1f} s -> {os.path.join(args.out, name)}")
        started = now
    return 0


def main(argv: Sequence[str] | None = None, started: float | None = None) -> int:
    """``lazyrich figure ARGS``: make the named figure(s), one line per figure on stdout with
    its wall time (the first line's counted from ``started``: the lines add up to the
    command's total).

    Everything is checked before the first figure is computed: the options, the name, the
    ``--set`` keys (problem fields or the figure's options) and values, the estimated memory
    and work of each figure's reduced solve (a figure runs at its configured size, so there
    is no ``--i-know``) and that the output is writable.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the word ``figure`` (default ``sys.argv[1:]``).
    started : float, optional
        ``time.perf_counter()`` at the start of the command (default: now).

    Returns
    -------
    int
        0, or 2 with one line on stderr (``lazyrich figure: error: ...``) for a bad option,
        name or value; ``--help`` raises ``SystemExit(0)``.
    """
    t0 = time.perf_counter() if started is None else started
    return run_guarded(lambda: _run(argv, t0), prog="lazyrich figure")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
