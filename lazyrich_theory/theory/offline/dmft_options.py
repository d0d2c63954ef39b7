"""The options of the offline DMFT's linear column, checked in one place
(docs/offline_theory.md §12.4): its closure, and the spread closure's response, column speed
and population field at the current point; each refusal is one line (ProblemError)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from lazyrich_theory.errors import ProblemError

__all__ = ["COLUMN_CLOSURES", "SPREAD_RESPONSES", "SPREAD_MAX_LAG", "SPREAD_MAX_LAG_FINITE",
           "COLUMN_SPEEDS", "NOISE_CURRENTS", "check_column_closure", "default_channels",
           "spread_blocker", "resolve_column_closure", "column_lag", "check_spread_response",
           "check_column_speed", "check_noise_current", "joint_current",
           "check_spread_applies"]

#: The linear column's closures: "auto" (the default: "spread" wherever it applies, else
#: "dmft"; :func:`resolve_column_closure`), as derived (§8.5), the opt-in A7 (§12.4) and the
#: fast column's leave-one-out with the spread of memorisation, (12.1) of §12.4.
COLUMN_CLOSURES = ("auto", "dmft", "least_squares", "spread")


#: The spread closure's memorisation operators K_nu: the bulk's part resolved through each
#: sample's own resolvent (the default), first order in the Onsager terms (a diagnostic: it
#: fails at kappa <= 2), or the spike's part resolved too (a diagnostic), docs §12.4.  The
#: first is the default.
SPREAD_RESPONSES = ("resolved", "first_order", "full")
#: The spread closure takes the linear column at its least-squares fit at every instant: it is
#: refused where the column's slowest relaxation time (in tau) exceeds this (a chosen bound).
SPREAD_MAX_LAG = 1.0
#: ... and, with the column at its finite speed (``column_speed="finite"``), where it exceeds
#: this (a chosen bound: measured up to 2.38, docs §12.4).
SPREAD_MAX_LAG_FINITE = 2.5
#: The spread closure's linear column: at its least-squares fit at every instant, (12.1) (the
#: first is the default), or relaxing at its finite rate alpha / (eps kappa), (12.2) of docs
#: §12.4 (opt-in).
COLUMN_SPEEDS = ("instantaneous", "finite")
#: The spread closure's population-dynamics field at the current grid point: solved jointly
#: with the samples' residuals, or one step behind (``noise_current``; the default: joint at
#: the column's finite speed, lagged for the instantaneous column).
NOISE_CURRENTS = ("joint", "lagged")


def check_column_closure(column_closure: str) -> None:
    """Refuse (one line) a column closure that is not one of :data:`COLUMN_CLOSURES`."""
    if column_closure not in COLUMN_CLOSURES:
        raise ProblemError(f"column_closure must be one of {', '.join(COLUMN_CLOSURES)}, got "
                           f"{column_closure!r}")


def default_channels(options: Mapping[str, Any]) -> bool:
    """Whether the DMFT options ``options`` leave the linear column and the null-space split
    on (their defaults), as the spread closure needs."""
    return bool(options.get("linear_column", True) and options.get("null_space_split", True))


def spread_blocker(kappa: float, alpha: float, eps: float, channels: bool = True) -> str | None:
    """Why the spread closure cannot run here -- a slow linear column (:func:`column_lag` >
    SPREAD_MAX_LAG), or ``channels`` off (:func:`default_channels`) -- or None where it can."""
    lag = column_lag(kappa, alpha, eps)
    if lag > SPREAD_MAX_LAG:
        return (f"the linear column is slow here (its slowest relaxation time {lag:.3g} > "
                f"{SPREAD_MAX_LAG:g} in tau), which the spread closure does not take")
    if not channels:
        return "the spread closure needs the default channels (linear_column, null_space_split)"
    return None


def resolve_column_closure(column_closure: str, kappa: float, alpha: float, eps: float,
                           channels: bool = True) -> str:
    """The closure that runs for ``column_closure``: "auto" is the spread closure where it
    applies (:func:`spread_blocker` gives no reason) and the DMFT as derived elsewhere; any
    other closure is itself (checked: ProblemError for an unknown one)."""
    check_column_closure(column_closure)
    if column_closure != "auto":
        return column_closure
    return "dmft" if spread_blocker(kappa, alpha, eps, channels) else "spread"


def column_lag(kappa: float, alpha: float, eps: float) -> float:
    """The linear column's slowest relaxation time in tau, 1 / (a lambda_min) with
    a = alpha / (eps kappa) and lambda_min = (sqrt(kappa) - 1)^2 the lower edge of the law of
    X^T X (kappa > 1)."""
    return eps * kappa / (alpha * (math.sqrt(kappa) - 1.0) ** 2)


def check_spread_response(spread_response: str, column_closure: str) -> None:
    """Refuse (one line) an unknown spread response, or one other than the default
    (``SPREAD_RESPONSES[0]``) with a closure other than spread."""
    if spread_response not in SPREAD_RESPONSES:
        raise ProblemError(f"spread_response must be one of {', '.join(SPREAD_RESPONSES)}, "
                           f"got {spread_response!r}")
    if spread_response != SPREAD_RESPONSES[0] and column_closure != "spread":
        raise ProblemError(f"spread_response={spread_response!r} is a response of the spread "
                           f"closure; it needs column_closure='spread', got "
                           f"{column_closure!r}")


def _check_spread_option(name: str, value: str | None, allowed: tuple[str, ...],
                         column_closure: str) -> None:
    """Refuse (one line) a spread-closure option ``name`` whose ``value`` is not in
    ``allowed``, or that is given (not None) where the closure that runs is not spread."""
    if value is None:
        return
    if value not in allowed:
        raise ProblemError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    if column_closure != "spread":
        raise ProblemError(f"{name}={value!r} is an option of the spread closure; it needs "
                           f"column_closure='spread', and the closure that runs here is "
                           f"{column_closure!r}")


def check_column_speed(column_speed: str | None, column_closure: str) -> None:
    """Refuse (one line) an unknown column speed, or one given (None stands for the spread
    closure's default, instantaneous) where the closure that runs is not spread."""
    _check_spread_option("column_speed", column_speed, COLUMN_SPEEDS, column_closure)


def check_noise_current(noise_current: str | None, column_closure: str) -> None:
    """Refuse (one line) an unknown ``noise_current`` (:data:`NOISE_CURRENTS`), or one given
    where the closure that runs is not spread."""
    _check_spread_option("noise_current", noise_current, NOISE_CURRENTS, column_closure)


def joint_current(column_speed: str | None, noise_current: str | None) -> bool:
    """Whether the spread closure solves its population field at the current point jointly
    with the residuals: ``noise_current`` if given, else at the column's finite speed."""
    if noise_current is not None:
        return noise_current == "joint"
    return column_speed == "finite"


def check_spread_applies(kappa: float, alpha: float, eps: float, where: str = "here",
                         column_speed: str | None = None) -> None:
    """Refuse (one line) the spread closure where its linear column is slower than
    SPREAD_MAX_LAG (instantaneous, the default ``column_speed`` None) or
    SPREAD_MAX_LAG_FINITE (``"finite"``); ``where``: which run needs that kappa, for the
    message."""
    lag = column_lag(kappa, alpha, eps)
    finite = (column_speed or COLUMN_SPEEDS[0]) == "finite"
    bound = SPREAD_MAX_LAG_FINITE if finite else SPREAD_MAX_LAG
    if lag > bound:
        takes = "at its finite speed, not as slow as this" if finite else "as instantaneous"
        raise ProblemError(f"the column closure spread takes the linear column {takes}, "
                           f"but its slowest relaxation time {where} is {lag:.3g} in tau > "
                           f"{bound:g} (kappa = {kappa:.3g}, alpha / eps = "
                           f"{alpha / eps:.3g}): use the closure dmft or least_squares")
