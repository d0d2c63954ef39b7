"""``lazyrich solve``, ``lazyrich simulate`` and ``lazyrich population``: one run into a folder.

    lazyrich solve      [model options] [--method gd|flow] [--steps T] [--save-times ...] --out DIR
    lazyrich simulate   [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich population [model options] [--steps T] [--save-times ...] --out DIR

Each writes trajectory.csv, run.json, problem.json, data.npz (and the PNG unless --no-plot) into
DIR, refusing a folder that holds a different run's results unless --overwrite.
"""

from __future__ import annotations

import argparse
from typing import Any

from lazyrich_theory.cli.parser import (
    add_model_options, add_run_options, check_out_dir, problem_from_args,
)
from lazyrich_theory.core.population import population
from lazyrich_theory.core.solve import solve
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.with_theory import solve_with_theory
from lazyrich_theory.results.trajectory import Trajectory
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.schedule import parse_times, save_times

__all__ = ["COMMANDS", "add_solve_parsers", "run_solve"]

#: The subcommands this module runs.
COMMANDS = ("solve", "simulate", "population")


def add_solve_parsers(subparsers) -> None:
    """Register ``solve``, ``simulate`` and ``population`` on the ``lazyrich`` subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``add_subparsers`` returned on the ``lazyrich`` parser.
    """
    s = subparsers.add_parser("solve", help="exact reduced dynamics (GD map or gradient flow)")
    add_model_options(s)
    s.add_argument("--method", choices=["gd", "flow"], default="gd",
                   help="gd: exact discrete GD map (default); flow: adaptive gradient flow")
    s.add_argument("--no-theory", dest="theory", action="store_false",
                   help="skip the lazy-regime theory (K0 line, linearised curves, kernel "
                        "alignment, summary.json)")
    s.add_argument("--integrator", choices=["rkc", "dopri5"], default="rkc",
                   help="integrator for --method flow: rkc (Runge-Kutta-Chebyshev, default, "
                        "rtol 1e-4) or dopri5 (Dormand-Prince 5(4), rtol 1e-7)")
    add_run_options(s, flow_tol=True)
    s = subparsers.add_parser("simulate",
                              help="train the actual N x D network in numpy (validation)")
    add_model_options(s)
    s.add_argument("--train-readouts", action="store_true", help="also train the readouts")
    add_run_options(s)
    s = subparsers.add_parser("population", help="online (P -> inf) population ODE")
    add_model_options(s)
    s.add_argument("--method", choices=["auto", "scalar", "full"], default="auto",
                   help="scalar: 2-scalar ODE (N = inf); full: D-dimensional flow; auto (default)")
    add_run_options(s, flow_tol=True)


def _config(args: argparse.Namespace, problem: Problem, steps: int,
            extra: list[int] | None) -> dict[str, Any]:
    """What identifies the run (stored in run.json; a folder holding another one is refused)."""
    return {"command": args.command, "problem": problem.to_dict(), "steps": steps,
            "save_times": extra, "method": getattr(args, "method", None),
            "integrator": getattr(args, "integrator", None),
            "theory": getattr(args, "theory", None),
            "rtol": getattr(args, "rtol", None), "atol": getattr(args, "atol", None),
            "train_readouts": getattr(args, "train_readouts", False)}


def _compute(args: argparse.Namespace, problem: Problem, steps: int, extra: list[int] | None,
             data: ProblemData) -> Trajectory:
    """Run the command's dynamics (nothing written)."""
    progress = not args.quiet
    tols = {k: getattr(args, k) for k in ("rtol", "atol") if getattr(args, k, None) is not None}
    if args.command == "solve":
        run = solve_with_theory if args.theory else solve
        return run(problem, steps, method=args.method, save_times=extra, data=data,
                   integrator=args.integrator, progress=progress, **tols)
    if args.command == "simulate":
        # the independent network is loaded only when asked for (it is the test oracle)
        from lazyrich_validation import simulate

        if not problem.finite_width:
            raise ProblemError("simulate needs a finite width --N")
        return simulate(problem, steps, save_times=extra, data=data,
                        train_readouts=args.train_readouts, progress=progress)
    return population(problem, steps, save_times=extra, data=data, method=args.method, **tols)


def run_solve(args: argparse.Namespace) -> int:
    """Run ``solve``, ``simulate`` or ``population`` from parsed arguments into ``args.out``.

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
    problem, steps = problem_from_args(args)
    extra = parse_times(args.save_times) if args.save_times else None
    times = save_times(steps, extra=extra)  # validates before anything runs
    data = problem.data()
    config = _config(args, problem, steps, extra)
    check_out_dir(args.out, config, args.overwrite)
    traj = _compute(args, problem, steps, extra, data)
    assert len(traj.t) == len(times)
    traj = traj.with_info(config=config)
    traj.save(args.out, data=data, plot=args.plot, overwrite=True)  # check_out_dir ran
    if not args.quiet:
        last = traj.at(traj.t[-1])
        print(f"{args.command}: {traj.method}, {steps} steps in {traj.info.get('wall_time', 0):.2f} s; "
              f"final train {last['train_loss']:.4g}, test {last['test_loss']:.4g}, "
              f"population {last['population_loss']:.4g} -> {args.out}")
    return 0
