"""What the commands say while they run, on stderr (stdout keeps the results' lines): the
progress line, the DMFT's cost and closure in it, a relative loss in a summary line, and the
texts on how much one Monte Carlo draw of the DMFT scatters."""

from __future__ import annotations

import sys

from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.theory.offline.dmft import DMFT_NS, resolve_column_closure

__all__ = ["ONE_DRAW_SCATTER", "DMFT_DRAWS_ADVICE", "DMFT_COSTS", "say_progress",
           "relative_loss_text", "dmft_cost"]

#: how much one DMFT draw scatters (benchmarks/offline_mc400.md): --dmft-draws' help in both
#: commands and asymptotic's line for a one-draw run
ONE_DRAW_SCATTER = ("one draw's loss at tau = 40 scatters by a sd of 0.14 / 0.035 / 0.015 / "
                    "0.011 at kappa = 1.5 / 2 / 3 / 5.5 (D = 400)")
#: when --dmft-draws is worth it (both commands' help, which argparse %-formats: "%%" is "%")
DMFT_DRAWS_ADVICE = (f"worth it at kappa <~ 5.5, where {ONE_DRAW_SCATTER}, and its half time by "
                     "7 %% at 5.5")


def say_progress(line: str) -> None:
    """Print a progress line on stderr (every command: stdout keeps the results' lines)."""
    print(line, file=sys.stderr, flush=True)


def relative_loss_text(value: float, se: float | None = None, draws: int | None = None,
                       note: str = "") -> str:
    """A relative loss in a summary line: "0.434 x initial", or with the standard error of a
    mean over Monte Carlo draws "0.434 +- 0.0061 x initial (standard error over 8 Monte
    Carlo draws)", a ``note`` joining the parenthesis (both commands' lines)."""
    notes = ([] if se is None else [f"standard error over {draws} Monte Carlo draws"]
             ) + ([note] if note else [])
    pm = "" if se is None else f" +- {se:.2g}"
    return f"{value:.3g}{pm} x initial" + (f" ({'; '.join(notes)})" if notes else "")


#: what one DMFT curve costs per Monte Carlo draw, by the column closure that runs (as derived
#: and A7 ~2.3x faster than spread: docs/offline_theory.md's top table)
DMFT_COSTS = {"spread": "~10-45 s per draw", "dmft": "~4-20 s per draw",
              "least_squares": "~4-20 s per draw"}
#: the progress lines' name of each closure
_CLOSURE_PHRASE = {"spread": "the spread closure", "dmft": "its linear column as derived",
                   "least_squares": "closure A7"}


def dmft_cost(problem: Problem, column_closure: str, Ns: int | None = None) -> str:
    """The DMFT that will run and its cost, for both commands' progress lines: "the DMFT with
    the spread closure, ~10-45 s per draw (...)", naming the closure that ``column_closure``
    resolves to at this problem and, where "auto" cannot run spread, that it does not apply;
    the costs are at the default :data:`DMFT_NS` samples, which a smaller ``Ns`` says."""
    alpha, eps = problem.scaled_alpha_eps
    ran = resolve_column_closure(column_closure, problem.P / problem.D, alpha, eps)
    tail = (" (--column-closure dmft: as derived, ~2.3x faster)" if ran == "spread" else
            " (the spread closure does not apply here)" if column_closure == "auto" else "")
    at = (f" at Ns = {DMFT_NS} (here {Ns}: {'less' if Ns < DMFT_NS else 'more'})"
          if Ns is not None and Ns != DMFT_NS else "")
    return f"the DMFT with {_CLOSURE_PHRASE[ran]}, {DMFT_COSTS[ran]}{at}{tail}"
