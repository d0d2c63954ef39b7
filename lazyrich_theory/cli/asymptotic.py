"""``lazyrich asymptotic``: the offline (finite data, P = kappa D) theory of grokking into a folder.

    lazyrich asymptotic [model options] [--method auto|spectral|dmft|rindex] [--critical-kappa
                        bbp|dmft|rindex|interpolant|none]
                        [--column-closure auto|spread|dmft|least_squares]
                        [--steps T] [--save-times ...] --out DIR

Writes trajectory.csv (t, train_loss, test_loss, population_loss and the other core columns;
test_loss is the population loss, columns the theory lacks are NaN), summary.json
(predicted_half_time, predicted_final_test_loss, critical_kappa, predicted_grokking_delay,
null with a reason when not applicable), problem.json, run.json and the PNG.  The width
defaults to N = inf here (the theory's); a finite --N, --uncentered, a training option, a
non-paper target or P <= D is refused in one line (exit 2).  A finite-rank --init
(lowrank:R, aligned:R:C) runs the r-index DMFT (exact as D -> inf); its critical kappa
(``--critical-kappa rindex``, minutes) is taken at the run's own horizon.
docs/offline_theory.md.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

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
    ONE_DRAW_SCATTER,
    dmft_cost,
    relative_loss_text,
    say_progress,
)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.schedule import parse_times, save_times
from lazyrich_theory.theory.offline import (
    COLUMN_CLOSURES,
    CRITICAL_METHODS,
    OFFLINE_METHODS,
    CriticalKappa,
    XI_LAWS,
    check_closure_applies,
    check_dmft_steps,
    critical_kappa,
    offline_inputs,
    offline_method,
    offline_summary,
    offline_theory,
)
from lazyrich_theory.plotting.style import CLOSURE_NAMES
from lazyrich_theory.theory.offline.dmft import DMFT_NS
from lazyrich_theory.theory.offline.implicit_bias import (INTERPOLANT_ACCURACY,
                                                          INTERPOLANT_CRITICAL_D_DEFAULT,
                                                          INTERPOLANT_CRITICAL_SEEDS,
                                                          INTERPOLANT_D_DEFAULT,
                                                          critical_reason,
                                                          interpolant_critical_kappa,
                                                          interpolant_limit,
                                                          interpolant_reason,
                                                          interpolant_size_cap)
from lazyrich_theory.theory.offline.regime import HORIZON_BIAS
from lazyrich_theory.theory.offline.rindex import RIndexInputs, is_finite_rank, rindex_inputs

__all__ = ["add_asymptotic_parser", "run_asymptotic", "CRITICAL_RUNS"]

#: Monte Carlo runs averaged by ``--critical-kappa rindex``.
CRITICAL_RUNS = 4
#: Its definition in summary.json.
LIMIT_DEFINITION = ("tau -> inf population loss / initial of the mirror-descent interpolant "
                    "of this training set (where the flow would end if its gradient matrices "
                    "commuted; an approximation, docs/offline_theory.md §15; "
                    f"{INTERPOLANT_ACCURACY})")


def add_asymptotic_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``asymptotic`` on the ``lazyrich`` subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``add_subparsers`` returned on the ``lazyrich`` parser.

    Returns
    -------
    argparse.ArgumentParser
    """
    p = subparsers.add_parser(
        "asymptotic", help="offline (P = kappa D) theory of grokking: predicted curves, "
        "half-loss time, long-time loss, critical kappa (an approximation: "
        "docs/offline_theory.md)")
    add_model_options(p)
    p.set_defaults(N="inf")
    p.add_argument("--method", choices=OFFLINE_METHODS, default="auto",
                   help="spectral: two-timescale closure (~1 s, validated for kappa >= 5); "
                        "dmft: DMFT with the memorisation channel (~10-45 s per draw; see "
                        "--column-closure); rindex: the exact "
                        "DMFT of a finite-rank --init (lowrank:R, aligned:R:C); auto "
                        "(default): rindex for a finite-rank init, else spectral for "
                        "kappa >= 5, else dmft")
    p.add_argument("--critical-kappa", dest="critical",
                   choices=(*CRITICAL_METHODS, "interpolant", "none"),
                   default=None,
                   help="bbp (~0.5 s): the plateau's BBP threshold, the lower end of the "
                        "crossover (default for the iid init above D = "
                        f"{INTERPOLANT_CRITICAL_D_DEFAULT}, with --data, and outside the "
                        "interpolant's domain); dmft: where the DMFT's loss at tau = 40 "
                        "crosses 1/2 (~6 DMFT runs, ~100 s at D = 100 with the spread "
                        "closure, ~45 s as derived, times --dmft-draws); rindex (finite-rank "
                        "init only): where the r-index DMFT's loss at this run's horizon, "
                        f"averaged over {CRITICAL_RUNS} Monte Carlo runs at --ns / 2, crosses "
                        f"1/2 (~6 x {CRITICAL_RUNS} runs, minutes); interpolant (iid init): "
                        "where the tau -> inf loss of the mirror-descent interpolant, "
                        f"averaged over {INTERPOLANT_CRITICAL_SEEDS} training sets (this seed "
                        "and the next ones), crosses 1/2 (default for the iid init up to D = "
                        f"{INTERPOLANT_CRITICAL_D_DEFAULT}: ~1-2 s at D = 100, ~4-8 s at D = 200, "
                        "~25-50 s at D = 400, grows like D^3; "
                        "within 0.04 of the exact flow's at D = 50-400); none: null "
                        "(default for a finite-rank init)")
    p.add_argument("--limit-loss", dest="limit", choices=("interpolant", "none"), default=None,
                   help="summary key predicted_limit_test_loss, the tau -> inf test loss: "
                        "interpolant (the mirror-descent interpolant of this training set, "
                        f"docs §15; default for the iid init up to D = {INTERPOLANT_D_DEFAULT}, "
                        "0.1-1 s at D = 100, 3-12 s at D = 400) or none")
    p.add_argument("--xi-law", dest="xi_law", choices=XI_LAWS, default="gaussian",
                   help="law of the teacher projection xi over the training samples: "
                        "gaussian (default, the D -> inf law) or training (the empirical law "
                        "of this problem's own training set: a DMFT prediction conditioned "
                        "on it; --method auto then runs the DMFT)")
    p.add_argument("--column-closure", dest="column_closure", choices=COLUMN_CLOSURES,
                   default="auto",
                   help="the DMFT's linear column (docs/offline_theory.md §12.4): auto "
                        "(default) spread where the column is fast, else dmft; spread "
                        "(derived: the column's leave-one-out with the spread of "
                        "memorisation over samples, the column relaxing at its finite speed; "
                        "at D = 400, on the mean of many draws, the loss at tau = 40 within "
                        "0.02 of the exact flow's at kappa = 1.5-11; refused where the "
                        "column's slowest relaxation time eps kappa / (alpha (sqrt(kappa) - "
                        "1)^2) exceeds 2.5 in tau); dmft (as derived: +0.14..+0.36 too high "
                        "at kappa <= 3, "
                        "D = 50-400; ~2.3x faster and 0.5 GB less than spread); least_squares "
                        "(closure A7: its population power capped at the least-squares value; "
                        "+0.02..+0.07 at kappa = 1.5-5.5, D = 400); also used by --critical-kappa "
                        "dmft. A closure other than auto needs the DMFT: --method dmft, auto "
                        "below kappa = 5, --xi-law training or --critical-kappa dmft")
    p.add_argument("--ns", type=int_at_least("--ns", 20, even=True),
                   default=DMFT_NS,
                   help=f"DMFT Monte Carlo samples (even, default {DMFT_NS})")
    p.add_argument("--dmft-seed", dest="dmft_seed", type=int_at_least("--dmft-seed"),
                   default=0, help="seed of the DMFT's Monte Carlo draws (default 0)")
    p.add_argument("--dmft-draws", dest="dmft_draws", type=int_at_least("--dmft-draws", 1),
                   default=1,
                   help="average the DMFT over this many Monte Carlo draws (seeds --dmft-seed, "
                        "--dmft-seed + 1, ...; this many times the time) and write the "
                        "standard error of the loss at the horizon "
                        "(predicted_final_test_loss_mc_se); --critical-kappa dmft then "
                        f"averages as many draws at each kappa; {DMFT_DRAWS_ADVICE} (default 1)")
    add_run_options(p)
    return p


def _config(args: argparse.Namespace, problem, steps: int,
            extra: list[int] | None) -> dict[str, Any]:
    config = {"command": "asymptotic", "problem": problem.to_dict(), "steps": steps,
              "save_times": extra, "method": args.method, "critical_kappa": args.critical,
              "ns": args.ns, "dmft_seed": args.dmft_seed,
              "xi_law": args.xi_law, "limit_loss": args.limit}
    return add_unless_default(config, column_closure=args.column_closure,
                              dmft_draws=args.dmft_draws)


def _check_closure(args: argparse.Namespace, problem, inp, finite_rank: bool) -> bool:
    """Whether the curve runs the DMFT; refuses (one line) the DMFT's options where no DMFT
    runs: a --column-closure other than auto or --dmft-draws above 1 with a finite-rank init
    (its r-index DMFT is exact and has no draws), or with the spectral closure's curve unless
    --critical-kappa dmft uses them; and the spread closure at a slow column
    (``check_closure_applies``)."""
    check_closure_applies(problem, args.column_closure)
    curve_dmft = not finite_rank and offline_method(inp, args.method, args.xi_law) == "dmft"
    asks = [f"--column-closure {args.column_closure}"] if args.column_closure != "auto" else []
    asks += [f"--dmft-draws {args.dmft_draws}"] if args.dmft_draws != 1 else []
    if not asks or curve_dmft:
        return curve_dmft
    if finite_rank:
        if args.dmft_draws != 1:
            raise ProblemError(f"--dmft-draws is an option of the iid init's DMFT; "
                               f"init={problem.init!r} runs the r-index DMFT")
        return False
    if args.critical != "dmft":
        why = (f"--method auto runs it at kappa >= 5, here {inp.kappa:.3g}: add --method dmft"
               if args.method == "auto" else "use --method dmft")
        lacks = "linear column" if asks[0].startswith("--column") else "Monte Carlo draws"
        raise ProblemError(f"{asks[0]} is an option of the DMFT; the spectral closure has no "
                           f"{lacks} ({why}; or --critical-kappa dmft, which uses it)")
    return False


def run_asymptotic(args: argparse.Namespace) -> int:
    """Run ``lazyrich asymptotic`` from parsed arguments into ``args.out``.

    Everything is checked before anything is computed: the problem (the theory's refusals,
    ``theory.offline.check_problem``), the save times and that ``--out`` is writable.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        0; bad input raises ProblemError (exit 2, one line, nothing written).
    """
    started = getattr(args, "started", None) or time.perf_counter()
    problem, steps = problem_from_args(args)
    extra = parse_times(args.save_times) if args.save_times is not None else None
    save_times(steps, extra=extra)         # validates before anything runs
    finite_rank = is_finite_rank(problem)  # lowrank:R / aligned:R:C: the r-index DMFT
    if finite_rank and args.method not in ("auto", "rindex"):      # before any output
        raise ProblemError(f"init={problem.init!r} is of finite rank: its offline theory is "
                           f"--method rindex (or auto), not {args.method}")
    inp = rindex_inputs(problem) if finite_rank else offline_inputs(problem)   # refusals
    explicit, crit_note = args.critical is not None, None
    if not explicit:
        args.critical, crit_note = _default_critical(problem, finite_rank)
    if (args.critical == "rindex") != finite_rank and args.critical != "none":
        raise ProblemError(f"--critical-kappa {args.critical} is for "
                           f"{'the iid init' if finite_rank else 'a finite-rank --init'}; "
                           f"init={problem.init!r} takes "
                           + ("rindex or none" if finite_rank else
                              "bbp, dmft, interpolant or none"))
    curve_dmft = _check_closure(args, problem, inp, finite_rank)
    if curve_dmft:
        check_dmft_steps(inp, steps)           # before the critical kappa's minutes
    limit_why = _limit_reason(args, problem, finite_rank)
    # a default of "interpolant" was chosen because it applies; only a request can be refused
    crit_why = critical_reason(problem) if explicit and args.critical == "interpolant" else None
    if crit_why is not None:
        raise ProblemError(f"--critical-kappa interpolant: {crit_why}")
    # the run records what was computed: the default limit loss is the interpolant's or none
    args.limit = "interpolant" if limit_why is None else "none"
    config = _config(args, problem, steps, extra)
    check_out_dir(args.out, config, args.overwrite)
    crit = _critical(args, problem, inp, steps)     # before the curve (it may refuse)
    closure = ({"column_closure": args.column_closure, "draws": args.dmft_draws}
               if curve_dmft else {})     # else only --critical-kappa dmft used them
    if curve_dmft and args.dmft_draws > 1 and not args.quiet:
        closure["log"] = lambda line: say_progress(f"asymptotic: {line}")
    if not args.quiet:
        cost = _curve_cost(args, problem, finite_rank, curve_dmft)
        say_progress(f"asymptotic: the theory's curve: {cost}")
    curve_started = time.perf_counter()
    traj = offline_theory(problem, steps, method=args.method, save_times=extra,
                          xi_law=args.xi_law, Ns=args.ns, seed=args.dmft_seed, **closure)
    curve_wall = time.perf_counter() - curve_started
    summary = offline_summary(traj, crit)
    if crit is None:
        why = ("not computed (--critical-kappa none)" if explicit else
               "not computed by default for a finite-rank init (minutes): "
               "--critical-kappa rindex")
        for key in ("critical_kappa", "critical_kappa_method", "critical_kappa_definition"):
            summary["reasons"][key] = why
    if crit_note is not None:
        summary["critical_kappa_note"] = crit_note
    _add_limit(summary, problem, limit_why)
    traj = traj.with_info(config=config, summary=summary)
    traj.save(args.out, plot=args.plot, overwrite=True)   # check_out_dir ran
    if not args.quiet:
        if crit_note is not None:
            print(f"asymptotic: {crit_note}")
        name = CLOSURE_NAMES.get(traj.info.get("column_closure", ""), "")
        closure = f" (column closure {name})" if name else ""
        print(f"asymptotic: {traj.method}{closure}, kappa={inp.kappa:.4g}, {steps} steps in "
              f"{time.perf_counter() - started:.2f} s (curve {curve_wall:.2f} s); "
              f"{_numbers(summary, args.critical)} -> {args.out}")
        if summary.get("outside_measured_regime"):
            print(f"asymptotic: outside the measured regime: "
                  f"{summary['outside_measured_regime']}")
        say_preset_note(args, problem)
    return 0


def _curve_cost(args: argparse.Namespace, problem, finite_rank: bool, curve_dmft: bool) -> str:
    """The method that will draw the curve and its cost (the progress line)."""
    if finite_rank:
        return "the r-index DMFT, ~10-40 s"
    if not curve_dmft:
        return "the spectral closure, ~1 s"
    draws = f"{args.dmft_draws} Monte Carlo draws of " if args.dmft_draws > 1 else ""
    return draws + dmft_cost(problem, args.column_closure, args.ns)


#: below this kappa the summary line says what the DMFT's loss at the horizon is worth: one
#: draw's own error (ONE_DRAW_SCATTER; <= 0.001 at kappa = 11), or the closure's bias
ONE_DRAW_KAPPA = 8.0
#: how the summary line names a biased closure (its bias: HORIZON_BIAS)
CLOSURE_NAME = {"dmft": "the DMFT as derived", "least_squares": "closure A7"}


def _horizon_note(summary: dict) -> str:
    """What the loss at the horizon is worth below ONE_DRAW_KAPPA ("" elsewhere): the
    spectral closure's or the DMFT closure's bias (as derived, A7), or for the spread
    closure one draw's own scatter."""
    if summary["kappa"] >= ONE_DRAW_KAPPA:
        return ""
    if summary.get("method") == "spectral":
        return (f"no memorisation in the spectral closure: {HORIZON_BIAS['spectral']}; the "
                "tau -> inf test loss says where the flow ends")
    if summary.get("dmft_draws") is None:
        return ""
    closure = summary.get("column_closure", "dmft")
    if closure in CLOSURE_NAME:
        cure = (" (the spread closure, which removes most of it, does not apply here)"
                if summary.get("column_closure_reason") else ": --column-closure spread")
        return (f"{CLOSURE_NAME[closure]} is {HORIZON_BIAS[closure]}, a bias that more draws "
                f"do not remove{cure}")
    if summary["dmft_draws"] == 1:
        return (f"one Monte Carlo draw, its own error not measured: {ONE_DRAW_SCATTER}; "
                "--dmft-draws 8 or more")
    return ""


def _steps(t: float | None) -> str:
    """A predicted time in GD steps for the summary line: whole steps from 100 on (the
    theory is good to a few %, not to six digits), "never" for None."""
    if t is None:
        return "never"
    return f"{t:.0f}" if t >= 100 else f"{t:.3g}"


def _numbers(summary: dict, critical: str) -> str:
    """The summary's predictions in one line (relative losses)."""
    h, crit_k = summary["predicted_half_time"], summary["critical_kappa"]
    train, test = summary["predicted_plateau_train_loss"], summary["predicted_plateau_test_loss"]
    plateau = ("no plateau" if train is None else
               f"plateau train / test {train:.3g} / {test:.3g} x initial")
    loss = relative_loss_text(summary["predicted_final_test_loss"],
                              summary.get("predicted_final_test_loss_mc_se"),
                              summary.get("dmft_draws"), _horizon_note(summary))
    return (f"{plateau}, predicted half time {_steps(h)}, test "
            f"loss at the horizon {loss}, critical kappa "
            f"{_fmt_critical(crit_k, critical)} ({critical}), "
            f"tau -> inf test loss {_fmt(summary)}")


def _critical(args: argparse.Namespace, problem, inp, steps: int) -> CriticalKappa | None:
    """The critical kappa ``args.critical`` asks for (None for none).  rindex: the mean of
    CRITICAL_RUNS runs at Ns / 2 (one run's kappa_c moves by ~+-0.14 at Ns = 400: docs
    §13.5)."""
    if args.critical == "none":
        return None
    if args.critical == "interpolant":
        say = None if args.quiet else say_progress
        if say is not None:
            say(f"asymptotic: critical kappa from the interpolant, {INTERPOLANT_CRITICAL_SEEDS} "
                "training sets per kappa (~1-2 s at D = 100, ~4-8 s at D = 200, ~25-50 s at "
                "D = 400)")
        return interpolant_critical_kappa(problem, log=say)
    options = ({"Ns": max(args.ns // 2, 20), "runs": CRITICAL_RUNS,
                "tau_h": float(inp.dmft_clock(steps))} if isinstance(inp, RIndexInputs) else
               {"Ns": args.ns})
    if args.critical == "dmft":
        options.update(column_closure=args.column_closure, runs=args.dmft_draws)
        if not args.quiet:
            say_progress(f"asymptotic: critical kappa from the DMFT, ~6 bisection steps x "
                         f"{args.dmft_draws} Monte Carlo draw(s) (the whole search ~100 s per "
                         "draw at D = 100 with the spread closure, ~45 s as derived)")
    return critical_kappa(inp, args.critical, seed=args.dmft_seed, **options)


def _fmt_critical(value: float | None, critical: str) -> str:
    if value is not None:
        return f"{value:.3g}"
    return "not computed" if critical == "none" else "null (reason in summary.json)"


def _default_critical(problem, finite_rank: bool) -> tuple[str, str | None]:
    """(the critical kappa computed when none is asked for, why it is not the interpolant's or
    None): none for a finite-rank init (the r-index one takes minutes), the interpolant's for
    the iid init up to :data:`INTERPOLANT_CRITICAL_D_DEFAULT` (seconds), else the BBP threshold
    (the crossover's lower end) with the reason, which the summary records as
    ``critical_kappa_note``."""
    if finite_rank:
        return "none", None
    domain = critical_reason(problem)
    cap = None if domain else interpolant_size_cap(problem.D, INTERPOLANT_CRITICAL_D_DEFAULT)
    if domain is None and cap is None:
        return "interpolant", None
    why = f"not available: {domain}" if domain else f"{cap}; --critical-kappa interpolant"
    return "bbp", ("critical kappa: the BBP threshold (the crossover's lower end); the "
                   f"interpolant's (tau -> inf, docs/offline_theory.md §15) is {why}")


def _limit_reason(args: argparse.Namespace, problem, finite_rank: bool) -> str | None:
    """Why predicted_limit_test_loss is not computed (None: it is); an explicit
    ``--limit-loss interpolant`` outside the interpolant's domain is refused before anything
    runs (ProblemError, one line).  A Newton iteration that does not converge is found only
    later: :func:`_add_limit` records it as the reason, explicit request or not, and the
    curve already computed is still written."""
    if args.limit == "none":
        return "not computed (--limit-loss none)"
    if finite_rank:
        if args.limit == "interpolant":
            raise ProblemError(f"--limit-loss interpolant is for the iid init (M0 = I); "
                               f"init={problem.init!r} takes none")
        return "the interpolant is for the iid init (M0 = I)"
    why = interpolant_reason(problem)
    if why is not None and args.limit == "interpolant":
        raise ProblemError(f"--limit-loss interpolant: {why}")
    if why is None and args.limit is None:          # the default: capped in D
        why = interpolant_size_cap(problem.D)
        return None if why is None else f"{why}: --limit-loss interpolant"
    return why


def _add_limit(summary: dict, problem, why: str | None) -> None:
    """predicted_limit_test_loss (the interpolant's) and its definition, or null + reason
    (also when its Newton iteration does not converge)."""
    value = None
    if why is None:
        value, why = interpolant_limit(problem, max_D=None)
    summary["predicted_limit_test_loss"] = value
    summary["predicted_limit_test_loss_definition"] = LIMIT_DEFINITION
    if why is not None:
        summary["reasons"]["predicted_limit_test_loss"] = why
        summary["reasons"] = dict(sorted(summary["reasons"].items()))


def _fmt(summary: dict) -> str:
    v = summary["predicted_limit_test_loss"]
    return "not computed" if v is None else f"{v:.3g} x initial (interpolant)"
