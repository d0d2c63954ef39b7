"""What every ``lazyrich`` subcommand shares: the parser class, the value converters, the model
and run options, the Problem they describe, the output-folder check, and the one error path
(which exceptions become which exit code and one line on stderr).

Exit codes: 0 success; 2 bad input (:class:`UsageError`, :class:`ProblemError`, a missing
file, a problem too large for the machine), one line on stderr and nothing written; 1 a failed
run (:class:`DivergenceError` naming the step, an integration stopped at its budget, a failed
write), one line; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import Any, Callable

from lazyrich_theory.errors import LazyrichError, ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import (
    OPTION_FIELDS,
    PRESET_STEPS,
    PRESETS,
    TRAINING_OPTIONS,
    Problem,
)
from lazyrich_theory.spec.resources import check_writable

__all__ = ["DEFAULT_STEPS", "UsageError", "Parser", "int_at_least", "count_at_least", "finite_float",
           "add_model_options", "add_run_options", "problem_from_args", "preset_horizon_note",
           "say_preset_note", "check_out_dir", "config_difference", "add_unless_default",
           "exit_code", "run_guarded"]

#: Horizon in GD steps when neither ``--steps`` nor a preset gives one.
DEFAULT_STEPS = 10_000


class UsageError(LazyrichError):
    """Bad command-line input (exit 2)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError` (one line, no usage dump)
    instead of printing the usage and exiting."""

    def error(self, message: str) -> None:
        # argparse prefixes a converter's message with "argument --X: "; ours already name
        # the option ("--X must be ..."), so the prefix is dropped rather than said twice
        m = re.fullmatch(r"argument (\S+): (\1 .*)", message, flags=re.DOTALL)
        raise UsageError(m.group(2) if m else message)


# ---------------------------------------------------------------------------- converters
def int_at_least(name: str, low: int = 0, even: bool = False) -> Callable[[str], int]:
    """A converter for an integer option that must be ``>= low``.

    Parameters
    ----------
    name : str
        The option as the user types it (``--seeds``), named in the error message.
    low : int
        The smallest accepted value.
    even : bool
        Accept even values only.

    Returns
    -------
    callable
        ``str -> int``, raising ``argparse.ArgumentTypeError`` with a one-line message.
    """
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {v}")
        if even and v % 2:
            raise argparse.ArgumentTypeError(f"{name} must be even, got {v}")
        return v
    return conv


def count_at_least(name: str, low: int = 0) -> Callable[[str], int]:
    """Like :func:`int_at_least`, but the count may also be written in float notation
    (``1e5``, ``2.0e3``); a value that is not a finite integer is refused in one line."""
    strict = int_at_least(name, low)

    def conv(s: str) -> int:
        try:
            return strict(s)
        except argparse.ArgumentTypeError:
            try:
                v = float(s)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
            if not math.isfinite(v) or not v.is_integer():
                raise argparse.ArgumentTypeError(f"{name} must be a finite integer, got {s!r}") from None
            return strict(str(int(v)))
    return conv


def finite_float(name: str, bound: str | None = None) -> Callable[[str], float]:
    """A converter for a real option that must be finite (and, if ``bound``, non-negative).

    Parameters
    ----------
    name : str
        The option as the user types it, named in the error message.
    bound : {None, ">= 0", "> 0"}
        None: any sign; otherwise the value must satisfy it.

    Returns
    -------
    callable
        ``str -> float``, raising ``argparse.ArgumentTypeError`` with a one-line message.
    """
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if bound is None and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {s!r}")
        if bound is not None and (not math.isfinite(v) or v < 0 or (v == 0 and bound == "> 0")):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number {bound}, got {s!r}")
        return v
    return conv


# ------------------------------------------------------------------------------- options
def add_model_options(p: argparse.ArgumentParser, method: str | None = None) -> None:
    """Add the ``model options`` group (the Problem's fields, ``--preset``, ``--data``) to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser; :func:`problem_from_args` reads what it parses.
    method : str, optional
        One of ``spec.problem.OPTION_METHODS``: add only the training-option flags that this
        method implements (default: every flag of ``spec.problem.TRAINING_OPTIONS``).
    """
    g = p.add_argument_group("model options")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="a paper configuration (fig1, fig4), with its horizon (a run at "
                        "another D, alpha, eps or eta0 without --steps ends with a note on "
                        "the --steps that keep its tau)")
    g.add_argument("--D", type=int_at_least("--D"), help="input dimension")
    g.add_argument("--P", type=int_at_least("--P"), help="number of training points")
    g.add_argument("--N", type=str, help="width: positive integer or 'inf'")
    g.add_argument("--alpha", type=finite_float("--alpha"), help="output scale (large = lazy)")
    g.add_argument("--eps", type=finite_float("--eps"),
                   help="quadratic weight of phi(z) = z + eps z^2/2")
    g.add_argument("--eta0", type=finite_float("--eta0"),
                   help="learning rate constant, eta = eta0 N / alpha^2")
    g.add_argument("--seed", type=int_at_least("--seed"), help="seed of the data/init streams")
    g.add_argument("--test-size", type=int_at_least("--test-size"), dest="test_size",
                   help="number of test points (default 1000)")
    g.add_argument("--convention", type=str.upper, choices=["A", "B"], help="input convention")
    c = g.add_mutually_exclusive_group()
    c.add_argument("--centered", dest="centered", action="store_true", default=None,
                   help="train f(W) - f(W0) (default)")
    c.add_argument("--uncentered", dest="centered", action="store_false", help="train f(W)")
    g.add_argument("--data", type=str, help="FILE.npz with X, y, X_test, y_test, beta[, W0]")
    for name, opt in TRAINING_OPTIONS.items():      # one flag per declared training option
        if method is None or method in opt.methods:
            g.add_argument(opt.flag, type=finite_float(opt.flag), dest=name, help=opt.help)
    g.add_argument("--target", type=str,
                   help="teacher: 'paper' (default, y = tau (beta.x)^2), "
                        "'quadratic[:B=s,rank=R,b=s,c=v,file=F.npz,seed=S]', "
                        "'hermite:k=K[,r=R]' or 'hermite:coef=c0/c1/..;..[,dirs=orth|iid,"
                        "file=F.npz,seed=S]', 'func:module:function[,samples=N,seed=S]'; "
                        "population_loss is exact (Monte Carlo +- SE for func) and includes "
                        "the irreducible degree>=3 part (docs/targets.md)")
    g.add_argument("--batch-size", type=int_at_least("--batch-size"), dest="batch_size",
                   help="minibatch SGD with B samples per step (B >= P: full batch); batches are "
                        "consecutive slices of a seeded per-epoch reshuffle; train_loss stays the "
                        "full training loss; gd only (docs/sgd.md)")
    g.add_argument("--init", type=str,
                   help="initialisation: 'iid' (default), 'lowrank:R', 'powerlaw:P' or "
                        "'aligned:R:C' (rank R, overlap C of its top direction with beta); all "
                        "but iid at tr M0 = D; at N = inf the neuron covariance "
                        "(docs/init_structure.md)")
    g.add_argument("--init-scale", type=finite_float("--init-scale", "> 0"), dest="init_scale",
                   help="sigma > 0 multiplying W0 (default 1): the same run as alpha -> sigma "
                        "alpha, eps -> sigma eps")
    g.add_argument("--online", action="store_true", default=None,
                   help="online (one-pass) SGD: B fresh samples per step (B = --batch-size, "
                        "default P), fresh label noise if --noise; train_loss is the current "
                        "batch's loss; gd only (docs/sgd.md)")


def add_run_options(p: argparse.ArgumentParser, flow_tol: bool = False) -> None:
    """Add the options of one run (``--steps``, ``--save-times``, ``--out`` and output switches).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    flow_tol : bool
        Also add ``--rtol`` / ``--atol`` (commands that integrate a flow).
    """
    p.add_argument("--steps", type=count_at_least("--steps", 1),
                   help=f"horizon in GD steps, >= 1 (default: the preset's, else {DEFAULT_STEPS})")
    p.add_argument("--save-times", dest="save_times", type=str,
                   help="comma-separated integer times added to the log-spaced grid")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of a different run already in --out")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip the PNG")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar, estimate or summary")
    p.add_argument("--i-know", dest="i_know", action="store_true",
                   help="run even if the estimated memory exceeds what this machine has "
                        "available or the estimated work exceeds a day")
    if flow_tol:
        p.add_argument("--rtol", type=finite_float("--rtol", "> 0"), default=None,
                       help="relative tolerance of the flow, in [1e-14, 1)")
        p.add_argument("--atol", type=finite_float("--atol", ">= 0"), default=None,
                       help="absolute tolerance of the flow, in [0, 1)")


#: Problem fields taken from same-named options when given.
_PROBLEM_OPTIONS = ("D", "P", "N", "alpha", "eps", "eta0", "seed", "test_size", "convention",
                    "centered", *OPTION_FIELDS, "target", "batch_size", "online", "init",
                    "init_scale")


def problem_from_args(args: argparse.Namespace) -> tuple[Problem, int]:
    """The Problem and step count described by parsed model/run options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser with :func:`add_model_options` (``steps`` optional).  Precedence:
        explicit options over ``--data``'s shapes over ``--preset`` over the defaults.

    Returns
    -------
    (Problem, int)
        The problem and the horizon in GD steps.

    Raises
    ------
    ProblemError
        An option disagrees with the data file, or the fields make no valid Problem.
    """
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
    for k in _PROBLEM_OPTIONS:
        v = getattr(args, k, None)
        if v is not None:
            fields[k] = v
    if getattr(args, "steps", None) is not None:
        steps = args.steps
    return Problem(**fields), steps


def preset_horizon_note(args: argparse.Namespace, problem: Problem) -> str | None:
    """The line a run prints on stderr, once it has succeeded, when it took a preset's
    horizon (no ``--steps``) with other D, alpha, eps or eta0 than the preset's: those steps
    then cover another tau on the DMFT clock, the rich transition's time at fixed kappa.
    None otherwise."""
    name = getattr(args, "preset", None)
    if not name or getattr(args, "steps", None) is not None:
        return None
    from lazyrich_theory.theory.offline.inputs import OfflineInputs   # the clock's one home
    own, steps = PRESETS[name], PRESET_STEPS[name]

    def tau(p: dict[str, Any]) -> float:
        clock = OfflineInputs(kappa=p["P"] / p["D"], alpha=p["alpha"], eps=p["eps"],
                              eta0=p["eta0"], b2=math.nan, D=p["D"])
        return float(clock.dmft_clock(steps))

    here = {k: getattr(problem, k) for k in ("D", "P", "alpha", "eps", "eta0")}
    tau_own, tau_here = tau(own), tau(here)
    if math.isclose(tau_own, tau_here, rel_tol=1e-9):
        return None
    note = (f"lazyrich: note: --preset {name}'s horizon, {steps} steps, is tau = "
            f"{tau_own:.3g} on the DMFT clock tau = 2 eta0 eps t / (alpha D) at the preset's "
            f"D, alpha, eps, eta0; here it is tau = {tau_here:.3g}: pass --steps "
            f"{int(round(steps * tau_own / tau_here))} for tau = {tau_own:.3g}")
    kappa_own, kappa_here = own["P"] / own["D"], problem.P / problem.D
    if getattr(args, "P", None) is None and not math.isclose(kappa_own, kappa_here):
        note += (f" (P = {problem.P} is the preset's: kappa = P/D is {kappa_here:.3g}, not "
                 f"{kappa_own:.3g}; pass --P {int(round(kappa_own * problem.D))} to keep it)")
    return note


def say_preset_note(args: argparse.Namespace, problem: Problem) -> None:
    """Print :func:`preset_horizon_note` on stderr, if there is one (a run's last line)."""
    note = preset_horizon_note(args, problem)
    if note:
        print(note, file=sys.stderr)


def check_out_dir(out: str, config: dict[str, Any], overwrite: bool) -> None:
    """Refuse to mix a different run's results into a folder that already holds one.

    Parameters
    ----------
    out : str
        The output folder (need not exist).
    config : dict
        This run's configuration, compared with ``run.json``'s ``config`` in ``out``.
    overwrite : bool
        Skip the comparison (``--overwrite``).

    Raises
    ------
    ProblemError
        ``out`` is a file, is not writable (a probe file is created and removed in it and its
        parent), or holds the results of a different run.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ProblemError(f"--out {out} exists and is not a folder")
    check_writable(out, "--out")
    run_path = os.path.join(out, "run.json")
    if overwrite or not os.path.isfile(os.path.join(out, "trajectory.csv")):
        return
    try:
        with open(run_path) as f:
            old = json.load(f).get("config")
    except (OSError, ValueError):
        old = None
    new = json.loads(json.dumps(config))
    if old != new:
        raise ProblemError(f"{out} already holds results of a different run "
                           f"({config_difference(old, new)}); use another --out or pass "
                           "--overwrite")


_UNSET = object()

#: settings a run's config leaves out at their default, so that folders written before the
#: setting existed stay comparable; a refusal names the default's value ("default (auto)")
OMITTED_AT_DEFAULT = {"limit_loss": "none", "column_closure": "auto", "dmft_draws": 1,
                      "ns": None, "dmft_seed": 0}


def add_unless_default(config: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """Add each setting of ``settings`` to ``config`` unless it is at its
    :data:`OMITTED_AT_DEFAULT` value; returns ``config``."""
    config.update({k: v for k, v in settings.items() if v != OMITTED_AT_DEFAULT[k]})
    return config

def config_difference(old: Any, new: dict[str, Any], most: int = 4,
                      record: str = "run.json") -> str:
    """The settings in which two runs' configurations differ, for the refusal message:
    "seed 0 -> 1, dmft_draws default -> 8" (nested dicts such as ``problem`` are flattened and
    named first; a setting left out at its default is "default"; at most ``most`` named, long
    values shortened; ``old`` not a dict: the ``record`` file it came from is unreadable)."""
    if not isinstance(old, dict):
        return f"its {record} is missing or unreadable"

    def flat(d: dict[str, Any]) -> dict[str, Any]:
        top = {k: v for k, v in d.items() if not isinstance(v, dict)}
        inner = {(j if j not in top else f"{k}.{j}"): w for k, v in d.items()
                 if isinstance(v, dict) for j, w in v.items()}
        return {**inner, **top}

    def show(k: str, v: Any) -> str:
        if v is _UNSET:
            return (f"default ({OMITTED_AT_DEFAULT[k]})" if k in OMITTED_AT_DEFAULT
                    else "default")
        text = json.dumps(v)
        return text if len(text) <= 24 else text[:21] + "..."

    a, b = flat(old), flat(new)
    keys = [k for k in dict.fromkeys([*b, *a]) if a.get(k, _UNSET) != b.get(k, _UNSET)]
    parts = [f"{k} {show(k, a.get(k, _UNSET))} -> {show(k, b.get(k, _UNSET))}"
             for k in keys[:most]]
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return "differs in " + ", ".join(parts) + more if parts else "differs"


# -------------------------------------------------------------------------- error path
def exit_code(exc: BaseException) -> int | None:
    """The exit code of an error the command line reports in one line, else None.

    Parameters
    ----------
    exc : BaseException
        The error that ended the command.

    Returns
    -------
    int or None
        2 for bad input (:class:`UsageError`, :class:`ProblemError`, a missing or unreadable
        file, a problem too large for memory), 1 for a failed run (:class:`DivergenceError`
        and any other :class:`LazyrichError`, a failed write), None for anything else (a bug:
        re-raised with its traceback).
    """
    if isinstance(exc, (UsageError, ProblemError, MemoryError) + _INPUT_OS_ERRORS):
        return 2
    if isinstance(exc, (LazyrichError, OSError)):
        return 1
    return None


#: OS errors caused by the paths the user gave (exit 2); other OS errors exit 1.
_INPUT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _one_line(exc: BaseException) -> str:
    """The error's message on one line (MemoryError: what it means)."""
    if isinstance(exc, MemoryError):
        return ("out of memory: the problem is too large for this machine (its estimate "
                "missed; reduce D, P, N or test_size)")
    return " ".join(str(exc).split()) or type(exc).__name__


def run_guarded(command: Callable[[], int],
                interrupted: str = "lazyrich: interrupted", prog: str = "lazyrich") -> int:
    """Run ``command`` and turn the errors users cause into one line on stderr and an exit code.

    Parameters
    ----------
    command : callable
        Parses and runs the command; returns its exit code.
    interrupted : str
        The line printed on Ctrl-C (exit code 130).
    prog : str
        The program named at the start of the error line (``PROG: error: ...``).

    Returns
    -------
    int
        ``command``'s exit code, or :func:`exit_code` of the error it raised.  Other errors
        propagate with their traceback.
    """
    try:
        return command()
    except (LazyrichError, OSError, MemoryError) as exc:
        code = exit_code(exc)
        if code is None:
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
