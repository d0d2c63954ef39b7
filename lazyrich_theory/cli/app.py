"""The ``lazyrich`` command-line tool.

    lazyrich solve      [model options] [--method gd|flow] [--steps T] [--save-times ...] --out DIR
    lazyrich simulate   [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich population [model options] [--steps T] [--save-times ...] --out DIR
    lazyrich compare DIR_A DIR_B

Bad input: exit code 2 and one line on stderr, nothing written.  A diverging run: exit 1 and
one line naming the step and a stable learning-rate bound.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Sequence

from lazyrich_theory.spec.problem import PRESET_STEPS, PRESETS, Problem
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.schedule import parse_times

DEFAULT_STEPS = 10_000


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _positive_int(name: str):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 0:
            raise argparse.ArgumentTypeError(f"{name} must be >= 0, got {v}")
        return v
    return conv


def _float(name: str):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {s!r}")
        return v
    return conv


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model options")
    g.add_argument("--preset", choices=sorted(PRESETS), help="a paper configuration (fig1, fig4)")
    g.add_argument("--D", type=_positive_int("--D"), help="input dimension")
    g.add_argument("--P", type=_positive_int("--P"), help="number of training points")
    g.add_argument("--N", type=str, help="width: positive integer or 'inf'")
    g.add_argument("--alpha", type=_float("--alpha"), help="output scale (large = lazy)")
    g.add_argument("--eps", type=_float("--eps"), help="quadratic weight of phi(z) = z + eps z^2/2")
    g.add_argument("--eta0", type=_float("--eta0"), help="learning rate constant, eta = eta0 N / alpha^2")
    g.add_argument("--seed", type=_positive_int("--seed"), help="seed of the data/init streams")
    g.add_argument("--test-size", type=_positive_int("--test-size"), dest="test_size",
                   help="number of test points (default 1000)")
    g.add_argument("--convention", type=str.upper, choices=["A", "B"], help="input convention")
    c = g.add_mutually_exclusive_group()
    c.add_argument("--centered", dest="centered", action="store_true", default=None,
                   help="train f(W) - f(W0) (default)")
    c.add_argument("--uncentered", dest="centered", action="store_false", help="train f(W)")
    g.add_argument("--data", type=str, help="FILE.npz with X, y, X_test, y_test, beta[, W0]")
    g.add_argument("--noise", type=_float("--noise"),
                   help="label-noise std sigma >= 0 on the training labels (default 0)")
    g.add_argument("--weight-decay", type=_float("--weight-decay"), dest="weight_decay",
                   help="weight decay lambda >= 0: W <- (1 - eta0 lambda) W - eta grad (default 0)")
    g.add_argument("--momentum", type=_float("--momentum"),
                   help="heavy-ball momentum mu in [0, 1), GD only (default 0)")
    g.add_argument("--target", type=str,
                   help="teacher: 'paper' (default, y = tau (beta.x)^2), "
                        "'quadratic[:B=s,rank=R,b=s,c=v,file=F.npz,seed=S]', "
                        "'hermite:k=K[,r=R]' or 'hermite:coef=c0/c1/..;..[,dirs=orth|iid,"
                        "file=F.npz,seed=S]', 'func:module:function[,samples=N,seed=S]'; "
                        "population_loss is exact (Monte Carlo +- SE for func) and includes "
                        "the irreducible degree>=3 part (docs/targets.md)")
    g.add_argument("--batch-size", type=_positive_int("--batch-size"), dest="batch_size",
                   help="minibatch SGD with B samples per step (B >= P: full batch); batches are "
                        "consecutive slices of a seeded per-epoch reshuffle; train_loss stays the "
                        "full training loss; gd only (docs/sgd.md)")
    g.add_argument("--online", action="store_true", default=None,
                   help="online (one-pass) SGD: B fresh samples per step (B = --batch-size, "
                        "default P), fresh label noise if --noise; train_loss is the current "
                        "batch's loss; gd only (docs/sgd.md)")


def _add_run_options(p: argparse.ArgumentParser, flow_tol: bool = False) -> None:
    p.add_argument("--steps", type=_positive_int("--steps"),
                   help=f"horizon in GD steps (default: the preset's, else {DEFAULT_STEPS})")
    p.add_argument("--save-times", dest="save_times", type=str,
                   help="comma-separated integer times added to the log-spaced grid")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of a different run already in --out")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip the PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    if flow_tol:
        p.add_argument("--rtol", type=_float("--rtol"), default=None, help="relative tolerance")
        p.add_argument("--atol", type=_float("--atol"), default=None, help="absolute tolerance")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lazyrich", description="Exact reduced dynamics of the lazy-to-rich "
                     "(grokking) polynomial model of Kumar et al. (arXiv 2310.06110).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    s = sub.add_parser("solve", help="exact reduced dynamics (GD map or gradient flow)")
    _add_model_options(s)
    s.add_argument("--method", choices=["gd", "flow"], default="gd",
                   help="gd: exact discrete GD map (default); flow: adaptive gradient flow")
    s.add_argument("--no-theory", dest="theory", action="store_false",
                   help="skip the lazy-regime theory (K0 line, linearised curves, kernel "
                        "alignment, summary.json)")
    s.add_argument("--integrator", choices=["rkc", "dopri5"], default="rkc",
                   help="integrator for --method flow: rkc (Runge-Kutta-Chebyshev, default, "
                        "rtol 1e-4) or dopri5 (Dormand-Prince 5(4), rtol 1e-7)")
    _add_run_options(s, flow_tol=True)
    s = sub.add_parser("simulate", help="train the actual N x D network in numpy (validation)")
    _add_model_options(s)
    s.add_argument("--train-readouts", action="store_true", help="also train the readouts")
    _add_run_options(s)
    s = sub.add_parser("population", help="online (P -> inf) population ODE")
    _add_model_options(s)
    s.add_argument("--method", choices=["auto", "scalar", "full"], default="auto",
                   help="scalar: 2-scalar ODE (N = inf); full: D-dimensional flow; auto (default)")
    _add_run_options(s, flow_tol=True)
    s = sub.add_parser("compare", help="max relative deviation between two result folders")
    s.add_argument("dir_a")
    s.add_argument("dir_b")
    s.add_argument("--columns", type=str, default="train_loss,test_loss,population_loss",
                   help="comma-separated columns to compare")
    from lazyrich_theory.cli.phase import add_phase_parser

    add_phase_parser(sub, _add_model_options)
    f = sub.add_parser("figure", help="reproduce one of the paper's figures (or all)",
                       add_help=False)
    f.add_argument("figure_args", nargs=argparse.REMAINDER)
    return parser


def problem_from_args(args: argparse.Namespace) -> tuple[Problem, int]:
    """The Problem and step count described by parsed model/run options."""
    fields: dict[str, Any] = {}
    steps = DEFAULT_STEPS
    if args.preset:
        fields.update(PRESETS[args.preset])
        steps = PRESET_STEPS[args.preset]
    if args.data:
        inferred = ProblemData.infer_shape(args.data)
        for k, v in inferred.items():
            given = getattr(args, k, None)
            if given is not None and str(given) != str(v):
                raise ProblemError(f"--{k.replace('_', '-')} {given} disagrees with {args.data} ({k}={v})")
            fields[k] = v
        if "N" not in inferred and args.N is None:
            fields["N"] = math.inf
        fields["data_file"] = os.path.abspath(args.data)
    for k in ("D", "P", "N", "alpha", "eps", "eta0", "seed", "test_size", "convention", "centered",
              "noise", "weight_decay", "momentum", "target", "batch_size", "online"):
        v = getattr(args, k, None)
        if v is not None:
            fields[k] = v
    if getattr(args, "steps", None) is not None:
        steps = args.steps
    return Problem(**fields), steps


def _check_out_dir(out: str, config: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix a different run's results into a folder that already holds one."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ProblemError(f"--out {out} exists and is not a folder")
    run_path = os.path.join(out, "run.json")
    if overwrite or not os.path.isfile(os.path.join(out, "trajectory.csv")):
        return
    try:
        with open(run_path) as f:
            old = json.load(f).get("config")
    except (OSError, ValueError):
        old = None
    if old != json.loads(json.dumps(config)):
        raise ProblemError(f"{out} already holds results of a different run; "
                           "use another --out or pass --overwrite")


def _run(args: argparse.Namespace) -> int:
    from lazyrich_theory.results.trajectory import Trajectory

    if args.command == "compare":
        return _compare(args)
    if args.command == "phase":
        from lazyrich_theory.cli.phase import run_phase

        return run_phase(args)
    if args.command == "figure":
        from lazyrich_theory.experiments.figures import main as figure_main

        return figure_main(args.figure_args)
    problem, steps = problem_from_args(args)
    extra = parse_times(args.save_times) if args.save_times else None
    from lazyrich_theory.spec.schedule import save_times as make_times

    times = make_times(steps, extra=extra)  # validates before anything runs
    data = problem.data()
    config = {"command": args.command, "problem": problem.to_dict(), "steps": steps,
              "save_times": extra, "method": getattr(args, "method", None),
              "integrator": getattr(args, "integrator", None),
              "theory": getattr(args, "theory", None),
              "rtol": getattr(args, "rtol", None), "atol": getattr(args, "atol", None),
              "train_readouts": getattr(args, "train_readouts", False)}
    _check_out_dir(args.out, config, args.overwrite)
    progress = not args.quiet
    traj: Trajectory
    if args.command == "solve":
        from lazyrich_theory.core.solve import solve

        kw = {k: getattr(args, k) for k in ("rtol", "atol") if getattr(args, k) is not None}
        if args.theory:
            from lazyrich_theory.experiments.with_theory import solve_with_theory

            traj = solve_with_theory(problem, steps, method=args.method, save_times=extra,
                                     data=data, integrator=args.integrator,
                                     progress=progress, **kw)
        else:
            traj = solve(problem, steps, method=args.method, save_times=extra, data=data,
                         integrator=args.integrator, progress=progress, **kw)
    elif args.command == "simulate":
        from lazyrich_validation import simulate

        if not problem.finite_width:
            raise ProblemError("simulate needs a finite width --N")
        traj = simulate(problem, steps, save_times=extra, data=data,
                        train_readouts=args.train_readouts, progress=progress)
    elif args.command == "population":
        from lazyrich_theory.core.population import population

        kw = {k: getattr(args, k) for k in ("rtol", "atol") if getattr(args, k) is not None}
        traj = population(problem, steps, save_times=extra, data=data, method=args.method, **kw)
    else:  # pragma: no cover
        raise UsageError(f"unknown command {args.command}")
    assert len(traj.t) == len(times)
    traj.info["config"] = config
    traj.save(args.out, data=data, plot=args.plot, overwrite=True)  # _check_out_dir ran
    if not args.quiet:
        last = traj.at(traj.t[-1])
        print(f"{args.command}: {traj.method}, {steps} steps in {traj.info.get('wall_time', 0):.2f} s; "
              f"final train {last['train_loss']:.4g}, test {last['test_loss']:.4g}, "
              f"population {last['population_loss']:.4g} -> {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import numpy as np
    from lazyrich_validation.compare import max_relative_deviation

    from lazyrich_theory.results.trajectory import load

    cols = tuple(c.strip() for c in args.columns.split(",") if c.strip())
    trajs = []
    for d in (args.dir_a, args.dir_b):
        if not os.path.isfile(os.path.join(d, "trajectory.csv")):
            raise ProblemError(f"{d} holds no trajectory.csv")
        trajs.append(load(d))
    for c in cols:
        for tr, d in zip(trajs, (args.dir_a, args.dir_b)):
            if c != "t" and c not in tr.columns:
                raise ProblemError(f"column {c!r} is not in {d}/trajectory.csv")
    if any(tr.problem.target != "paper" for tr in trajs) and "population_loss" in cols:
        nan_in = [np.isnan(np.asarray(tr["population_loss"], float)).all() for tr in trajs]
        if any(nan_in):     # the network's population loss is defined for the paper teacher only
            cols = tuple(c for c in cols if c != "population_loss")
            print("note: population_loss skipped (not computed by the network for target "
                  f"{trajs[nan_in.index(True)].problem.target!r})")
    res = max_relative_deviation(trajs[0], trajs[1], columns=cols)
    print(f"max relative deviation: {res['max']:.6e}")
    for c, v in res["per_column"].items():
        print(f"  {c}: {v:.6e}")
    print(f"  ({res['n_times']} common save times; worst at t={res['worst']['t']:g} "
          f"in {res['worst']['column']})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "figure":       # its own parser (figures.main), options included
        from lazyrich_theory.experiments.figures import main as figure_main

        return figure_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            print("lazyrich: error: a command is required (solve, simulate, population, "
                  "compare, phase, figure); see lazyrich --help", file=sys.stderr)
            return 2
        return _run(args)
    except (UsageError, ProblemError) as exc:
        print(f"lazyrich: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"lazyrich: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lazyrich: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # divergence and other run-time failures: one line, exit 1
        from lazyrich_theory.errors import DivergenceError

        if isinstance(exc, DivergenceError) or type(exc).__name__ == "NetworkDivergence":
            print(f"lazyrich: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
