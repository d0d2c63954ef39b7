"""``lazyrich solve``, ``lazyrich simulate`` and ``lazyrich population``: one run into a folder.

    lazyrich solve      [model options] [--method auto|gd|gd-fast|flow] [--steps T] [--save-times ...] --out DIR
    lazyrich simulate   [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich population [model options] [--steps T] [--save-times ...] --out DIR

Each writes trajectory.csv, run.json, problem.json, data.npz (and the PNG unless --no-plot) into
DIR, refusing a folder that holds a different run's results unless --overwrite.  Bad input, an
unwritable DIR and a problem beyond this machine (estimated memory or a day of work, unless
--i-know) are refused before anything is computed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, Iterable, Sequence

from lazyrich_theory.cli.parser import (
    add_model_options,
    add_run_options,
    add_unless_default,
    check_out_dir,
    int_at_least,
    problem_from_args,
    say_preset_note,
)
from lazyrich_theory.cli.progress import (
    DMFT_DRAWS_ADVICE,
    dmft_cost,
    relative_loss_text,
    say_progress,
)
from lazyrich_theory.core.population import check_options as population_options
from lazyrich_theory.core.population import population
from lazyrich_theory.core.solve import check_options as solve_options
from lazyrich_theory.core.solve import check_tolerances, estimate_method, solve
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.with_theory import (
    LIMIT_CHOICES,
    OFFLINE_OVERLAYS,
    offline_reason,
    solve_with_theory,
)
from lazyrich_theory.plotting.style import closure_suffix
from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.resources import LONG_RUN_SECONDS, check_resources
from lazyrich_theory.spec.schedule import parse_times, save_times
from lazyrich_theory.theory.offline.curves import check_closure_applies
from lazyrich_theory.theory.offline.dmft import COLUMN_CLOSURES, DMFT_NS
from lazyrich_theory.theory.offline.rindex import RINDEX_NS
from lazyrich_theory.theory.offline.implicit_bias import interpolant_reason

__all__ = ["COMMANDS", "NOT_SUPPORTED", "add_solve_parsers", "explain_unrecognized",
           "run_solve"]

#: The subcommands this module runs.
COMMANDS = ("solve", "simulate", "population")

#: Model options a subcommand does not take, and why: they are left out of its parser (and
#: so of its --help; given anyway, they are unrecognized arguments, exit 2) and listed in
#: its help's epilog.
NOT_SUPPORTED: dict[str, dict[str, str]] = {
    "population": {
        "--momentum": "heavy ball has no population flow; use solve or simulate",
        "--target": "the population ODE is for the paper's teacher only",
        "--batch-size": "the population flow has no batches: every sample is fresh, it is "
                        "the online P -> inf limit",
        "--online": "the population flow is already the online limit, P -> inf",
    },
}


def _drop_options(parser: argparse.ArgumentParser, flags: Iterable[str]) -> None:
    """Remove the options ``flags`` (those present) from ``parser`` and its groups."""
    flags = set(flags)
    for action in [a for a in parser._actions if flags & set(a.option_strings)]:
        for group in (*parser._action_groups, *parser._mutually_exclusive_groups):
            if action in group._group_actions:
                group._group_actions.remove(action)
        parser._remove_action(action)
        for opt in action.option_strings:
            parser._option_string_actions.pop(opt, None)


def explain_unrecognized(argv: Sequence[str], message: str) -> str:
    """The parser's error ``message`` for ``lazyrich ARGV``, naming why a model option the
    subcommand does not take (:data:`NOT_SUPPORTED`) is refused; other messages unchanged.

    Parameters
    ----------
    argv : sequence of str
        The command line after ``lazyrich`` (the subcommand first).
    message : str
        What the parser said (``unrecognized arguments: --momentum 0.5``).

    Returns
    -------
    str
        E.g. ``population does not take --momentum (heavy ball has no population flow; use
        solve or simulate)``, else ``message``.
    """
    dropped = NOT_SUPPORTED.get(argv[0] if argv else "", {})
    if not message.startswith("unrecognized arguments"):
        return message
    given = [a.split("=", 1)[0] for a in argv[1:]]
    named = [flag for flag in dropped if flag in given]
    if not named:
        return message
    return f"{argv[0]} does not take " + "; ".join(f"{flag} ({dropped[flag]})" for flag in named)


def _epilog(command: str) -> str | None:
    """The help's note on the model options ``command`` does not take."""
    dropped = NOT_SUPPORTED.get(command)
    if not dropped:
        return None
    return (f"Not taken by {command}: " + "; ".join(f"{flag} ({why})"
                                                   for flag, why in dropped.items()) + ".")


def add_solve_parsers(subparsers) -> None:
    """Register ``solve``, ``simulate`` and ``population`` on the ``lazyrich`` subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``add_subparsers`` returned on the ``lazyrich`` parser.
    """
    s = subparsers.add_parser("solve", help="exact reduced dynamics (GD map or gradient flow)")
    add_model_options(s)
    s.add_argument("--method", choices=["auto", "gd", "gd-fast", "flow"], default="auto",
                   help="auto (default): gd-fast where it is valid and gains, else gd; "
                        "gd: exact discrete GD map, step by step; gd-fast: discrete GD in "
                        "error-controlled strides (losses within ~1e-7 of gd, docs/stride.md); "
                        "flow: adaptive gradient flow (O(eta0) away from GD)")
    s.add_argument("--no-theory", dest="theory", action="store_false",
                   help="skip the lazy-regime theory (K0 line, linearised curves, kernel "
                        "alignment, summary.json)")
    s.add_argument("--offline-theory", dest="offline", choices=OFFLINE_OVERLAYS,
                   default="auto",
                   help="the offline (P = kappa D) theory's curve beside the exact one: auto "
                        "(default) the spectral closure where it is validated (kappa >= 5, "
                        "iid init; ~1 s), none elsewhere; dmft (~10-45 s, any kappa; see "
                        "--column-closure); rindex "
                        "(a finite-rank --init, ~10-40 s); none")
    s.add_argument("--column-closure", dest="column_closure", choices=COLUMN_CLOSURES,
                   default="auto",
                   help="with --offline-theory dmft: the DMFT's linear column: auto (default) "
                        "the spread closure where the column is fast enough, else as derived; "
                        "spread (a column's slowest relaxation time <= 2.5 in tau only); dmft "
                        "(as derived: biased high by +0.14..+0.36 "
                        "at kappa <= 3, ~2.3x faster); least_squares (closure A7); "
                        "docs/offline_theory.md §12.4")
    s.add_argument("--dmft-draws", dest="dmft_draws", type=int_at_least("--dmft-draws", 1),
                   default=1,
                   help="with --offline-theory dmft: average the DMFT over this many Monte "
                        "Carlo draws (this many times its time), drawn with a band of +-2 "
                        "standard errors (summary key offline_predicted_final_test_loss_mc_se); "
                        f"{DMFT_DRAWS_ADVICE} (default 1)")
    s.add_argument("--ns", type=int_at_least("--ns", 20, even=True), default=None,
                   help="with --offline-theory dmft or rindex: Monte Carlo samples (even; "
                        f"default the theory's own: {DMFT_NS} for the DMFT, {RINDEX_NS} for "
                        "the r-index DMFT)")
    s.add_argument("--dmft-seed", dest="dmft_seed", type=int_at_least("--dmft-seed"),
                   default=0, help="with --offline-theory dmft or rindex: seed of the Monte "
                                   "Carlo draws (default 0, as lazyrich asymptotic's)")
    s.add_argument("--limit-loss", dest="limit", choices=LIMIT_CHOICES, default="none",
                   help="interpolant: summary key offline_predicted_limit_test_loss, where the "
                        "flow ends (tau -> inf test loss / initial of this training set, N = "
                        "inf; 0.1-1 s at D = 100), drawn as a level line; none (default)")
    s.add_argument("--integrator", choices=["rkc", "dopri5"], default=None,
                   help="integrator for --method flow: rkc (Runge-Kutta-Chebyshev, default, "
                        "rtol 1e-4) or dopri5 (Dormand-Prince 5(4), rtol 1e-7)")
    add_run_options(s, flow_tol=True)
    s = subparsers.add_parser("simulate",
                              help="train the actual N x D network in numpy (validation)")
    add_model_options(s)
    s.add_argument("--train-readouts", action="store_true", help="also train the readouts")
    add_run_options(s)
    s = subparsers.add_parser("population", help="online (P -> inf) population ODE",
                              epilog=_epilog("population"))
    add_model_options(s)
    _drop_options(s, NOT_SUPPORTED["population"])
    s.add_argument("--method", choices=["auto", "scalar", "full"], default="auto",
                   help="scalar: 2-scalar ODE (N = inf); full: D-dimensional flow; auto (default)")
    add_run_options(s, flow_tol=True)


def _config(args: argparse.Namespace, problem: Problem, steps: int,
            extra: list[int] | None) -> dict[str, Any]:
    """What identifies the run (stored in run.json; a folder holding another one is refused)."""
    config = {"command": args.command, "problem": problem.to_dict(), "steps": steps,
              "save_times": extra, "method": getattr(args, "method", None),
              "integrator": getattr(args, "integrator", None),
              "theory": getattr(args, "theory", None),
              "offline_theory": getattr(args, "offline", None),
              "rtol": getattr(args, "rtol", None), "atol": getattr(args, "atol", None),
              "train_readouts": getattr(args, "train_readouts", False)}
    return add_unless_default(config, limit_loss=getattr(args, "limit", "none"),
                              column_closure=getattr(args, "column_closure", "auto"),
                              dmft_draws=getattr(args, "dmft_draws", 1),
                              ns=getattr(args, "ns", None),
                              dmft_seed=getattr(args, "dmft_seed", 0))


def _check_offline(args: argparse.Namespace, problem: Problem, steps: int) -> None:
    """An explicit --offline-theory must apply to the problem (one line, nothing computed)."""
    if args.limit == "interpolant":
        if not args.theory:
            raise ProblemError("--limit-loss interpolant is part of the theory: it cannot go "
                               "with --no-theory")
        why = interpolant_reason(problem)
        if why is not None:
            raise ProblemError(f"--limit-loss interpolant: {why}")
    if args.column_closure != "auto" and args.offline != "dmft":
        raise ProblemError(f"--column-closure {args.column_closure} is a closure of the DMFT's "
                           f"linear column: it needs --offline-theory dmft, got {args.offline}")
    asked = [f for f, v in (("--ns", args.ns), ("--dmft-seed", args.dmft_seed or None))
             if v is not None]
    if asked and args.offline not in ("dmft", "rindex"):
        raise ProblemError(f"{' and '.join(asked)}: the DMFT's Monte Carlo options, which "
                           f"need --offline-theory dmft or rindex, got {args.offline}")
    if args.dmft_draws != 1 and args.offline != "dmft":
        raise ProblemError(f"--dmft-draws averages the DMFT's Monte Carlo draws: it needs "
                           f"--offline-theory dmft, got {args.offline}")
    if args.offline in ("auto", "none"):
        return
    if not args.theory:
        raise ProblemError(f"--offline-theory {args.offline} draws a theory curve: it cannot "
                           "go with --no-theory")
    why = offline_reason(problem, args.offline, steps)
    if why is not None:
        raise ProblemError(f"--offline-theory {args.offline} does not apply: {why}")
    if args.offline == "dmft":
        check_closure_applies(problem.replace(N=math.inf), args.column_closure)   # e.g. spread


def _check_method(args: argparse.Namespace, problem: Problem, steps: int) -> str:
    """Check the command's method and solver options against the problem (nothing computed);
    returns the method of the resource estimate."""
    given = [f"--{k}" for k in ("integrator", "rtol", "atol") if getattr(args, k, None) is not None]
    if args.command == "solve" and args.method != "flow":
        # gd is the exact GD map; gd-fast / auto take --rtol (the strides' tolerance) only
        allowed = () if args.method == "gd" else ("--rtol",)
        bad = [g for g in given if g not in allowed]
        if bad:
            raise ProblemError(f"{', '.join(bad)} applies to --method flow only"
                               + (" (gd is the exact GD map: no integrator, no tolerance)"
                                  if args.method == "gd" else
                                  f" ({args.method} takes --rtol, the strides' tolerance)"))
    if args.command == "solve":
        _check_offline(args, problem, steps)
        args.integrator = args.integrator or "rkc"
        solve_options(problem, args.method, args.integrator, args.rtol, args.atol)
        return estimate_method(problem, steps, args.method)
    if args.command == "simulate":
        if not problem.finite_width:
            raise ProblemError("simulate needs a finite width --N (the network has N neurons)")
        solve_options(problem, "gd")        # the network is GD: the same decay bound
        return "simulate"
    if args.rtol is not None or args.atol is not None:
        check_tolerances(1e-9 if args.rtol is None else args.rtol,
                         0.0 if args.atol is None else args.atol)
    return population_options(problem, args.method)


def _compute(args: argparse.Namespace, problem: Problem, steps: int, extra: list[int] | None,
             data: ProblemData) -> Trajectory:
    """Run the command's dynamics (nothing written)."""
    progress = not args.quiet
    tols = {k: getattr(args, k) for k in ("rtol", "atol") if getattr(args, k, None) is not None}
    if args.command == "solve":
        run = solve_with_theory if args.theory else solve
        mc = {"Ns": args.ns} if args.ns is not None else {}
        mc.update({"seed": args.dmft_seed} if args.dmft_seed else {})
        theory = ({"offline": args.offline, "limit": args.limit,
                   "column_closure": args.column_closure, "dmft_draws": args.dmft_draws,
                   "dmft_options": mc} if args.theory else {})
        if args.theory and progress:
            theory["dmft_log"] = lambda line: say_progress(f"solve: {line}")
        return run(problem, steps, method=args.method, save_times=extra, data=data,
                   integrator=args.integrator, progress=progress, allow_large=True, **tols,
                   **theory)
    if args.command == "simulate":
        # the independent network is loaded only when asked for (it is the test oracle)
        from lazyrich_validation import simulate

        return simulate(problem, steps, save_times=extra, data=data,
                        train_readouts=args.train_readouts, progress=progress)
    return population(problem, steps, save_times=extra, data=data, method=args.method, **tols)


def _offline_clause(summary: dict[str, Any]) -> str:
    """The offline theory's loss at the horizon for the summary line ("" where none ran)."""
    final = summary.get("offline_predicted_final_test_loss")
    if final is None:
        return ""
    loss = relative_loss_text(final, summary.get("offline_predicted_final_test_loss_mc_se"),
                              summary.get("offline_dmft_draws"))
    name = summary["offline_method"] + closure_suffix(summary.get("offline_column_closure"))
    return f"; offline theory ({name}) population loss {loss}"


def run_solve(args: argparse.Namespace) -> int:
    """Run ``solve``, ``simulate`` or ``population`` from parsed arguments into ``args.out``.

    Everything is checked before anything is computed: the problem's fields, the save times,
    the method's options, the estimated memory and work against this machine (unless
    ``--i-know``; a run estimated at more than ``LONG_RUN_SECONDS`` prints its estimate on
    stderr unless ``--quiet``) and that ``--out`` is writable.  The summary line gives the
    command's total wall time (from ``args.started``, set by ``lazyrich``'s ``main``, to the
    files written) and the solver's own.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by the parser :func:`add_solve_parsers` registered (``args.command`` names it).

    Returns
    -------
    int
        The exit code (0).  Bad input raises :class:`~lazyrich_theory.errors.ProblemError`
        before anything is written; a diverging run raises
        :class:`~lazyrich_theory.errors.DivergenceError`.
    """
    started = getattr(args, "started", None) or time.perf_counter()
    problem, steps = problem_from_args(args)
    extra = parse_times(args.save_times) if args.save_times is not None else None
    times = save_times(steps, extra=extra)  # validates before anything runs
    method = _check_method(args, problem, steps)
    est = check_resources(problem, steps, method, allow_large=args.i_know,
                          integrator=getattr(args, "integrator", None) or "rkc",
                          theory=bool(getattr(args, "theory", False)))
    config = _config(args, problem, steps, extra)
    check_out_dir(args.out, config, args.overwrite)
    if not args.quiet and est.seconds > LONG_RUN_SECONDS:
        print(f"lazyrich: estimate: {est.describe()} for {est.what}", file=sys.stderr)
    data = problem.data()
    if not args.quiet and getattr(args, "offline", None) == "dmft" and args.theory:
        say_progress(f"{args.command}: the exact solve, then the theory's curve: "
                     + (f"{args.dmft_draws} Monte Carlo draws of " if args.dmft_draws > 1
                        else "") + dmft_cost(problem, args.column_closure, args.ns))
    traj = _compute(args, problem, steps, extra, data)
    assert len(traj.t) == len(times)
    traj = traj.with_info(config=config)
    traj.save(args.out, data=data, plot=args.plot, overwrite=True)  # check_out_dir ran
    if not args.quiet:
        last = traj.at(traj.t[-1])
        total = time.perf_counter() - started
        offline = _offline_clause(traj.info.get("summary") or {})
        # beside the theory's relative loss, the exact one in the same units
        pop0 = float(traj.population_loss[0])
        rel = (f" ({last['population_loss'] / pop0:.3g} x initial)"
               if offline and pop0 > 0 else "")
        print(f"{args.command}: {traj.method}, {steps} steps in {total:.2f} s (solver "
              f"{traj.info.get('wall_time', 0):.2f} s); final train {last['train_loss']:.4g}, "
              f"test {last['test_loss']:.4g}, population {last['population_loss']:.4g}{rel}"
              f"{offline} -> {args.out}")
        outside = (traj.info.get("summary") or {}).get("offline_outside_measured_regime")
        if outside:
            print(f"{args.command}: offline theory outside the measured regime: {outside}")
        say_preset_note(args, problem)
    return 0
