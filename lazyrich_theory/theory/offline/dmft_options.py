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
           "check_spread_applies", "resolve_column_speed", "spread_max_lag"]

#: The linear column's closures: "auto" (the default: "spread" wherever it applies, else
#: "dmft"; :func:`resolve_column_closure`), as derived (§8.5), the opt-in A7 (§12.4) and the
#: fast column's leave-one-out with the spread of memorisation, (12.1) of §12.4.
COLUMN_CLOSURES = ("auto", "dmft", "least_squares", "spread")


#: The spread closure's memorisation operators K_nu: the bulk's part resolved through each
#: sample's own resolvent (the default), first order in the Onsager terms (a diagnostic: it
#: fails at kappa <= 2), or the spike's part resolved too (a diagnostic), docs §12.4.  The
#: first is the default.
SPREAD_RESPONSES = ("resolved", "first_order", "full")
#: The spread closure with the column at its least-squares fit at every instant
#: (``column_speed="instantaneous"``) is refused where the column's slowest relaxation time (in
#: tau) exceeds this (a chosen bound).
SPREAD_MAX_LAG = 1.0
#: ... and with the column at its finite speed (the default) where it exceeds this (a chosen
#: bound: measured up to 2.38, docs §12.4); "auto" runs spread up to the bound of the speed.
SPREAD_MAX_LAG_FINITE = 2.5
#: The spread closure's linear column: relaxing at its finite rate alpha / (eps kappa), (12.2)
#: of docs §12.4 (the first is the default), or at its least-squares fit at every instant,
#: (12.1), its a -> infinity limit.
COLUMN_SPEEDS = ("finite", "instantaneous")
#: The spread closure's population-dynamics field at the current grid point: solved jointly
#: with the samples' residuals, or one step behind (``noise_current``; the default: joint at
#: the column's finite speed, lagged for the instantaneous column, whose tables were made so).
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


def resolve_column_speed(column_speed: str | None) -> str:
    """The column speed that runs: ``column_speed``, or the default (:data:`COLUMN_SPEEDS`'s
    first) for None."""
    return column_speed or COLUMN_SPEEDS[0]


def spread_max_lag(column_speed: str | None = None) -> float:
    """The slowest column the spread closure takes at ``column_speed`` (None: the default)."""
    finite = resolve_column_speed(column_speed) == "finite"
    return SPREAD_MAX_LAG_FINITE if finite else SPREAD_MAX_LAG


def spread_blocker(kappa: float, alpha: float, eps: float, channels: bool = True,
                   column_speed: str | None = None) -> str | None:
    """Why the spread closure cannot run here -- a linear column slower than it takes at
    ``column_speed`` (:func:`column_lag` > :func:`spread_max_lag`), or ``channels`` off
    (:func:`default_channels`) -- or None where it can."""
    lag, bound = column_lag(kappa, alpha, eps), spread_max_lag(column_speed)
    if lag > bound:
        return (f"the linear column is slow here (its slowest relaxation time {lag:.3g} > "
                f"{bound:g} in tau), which the spread closure does not take")
    if not channels:
        return "the spread closure needs the default channels (linear_column, null_space_split)"
    return None


def resolve_column_closure(column_closure: str, kappa: float, alpha: float, eps: float,
                           channels: bool = True, column_speed: str | None = None) -> str:
    """The closure that runs for ``column_closure``: "auto" is the spread closure where it
    applies at ``column_speed`` (:func:`spread_blocker` gives no reason) and the DMFT as
    derived elsewhere; any other closure is itself (checked: ProblemError for an unknown
    one)."""
    check_column_closure(column_closure)
    if column_closure != "auto":
        return column_closure
    return "dmft" if spread_blocker(kappa, alpha, eps, channels, column_speed) else "spread"


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
    closure's default, finite) where the closure that runs is not spread."""
    _check_spread_option("column_speed", column_speed, COLUMN_SPEEDS, column_closure)


def check_noise_current(noise_current: str | None, column_closure: str) -> None:
    """Refuse (one line) an unknown ``noise_current`` (:data:`NOISE_CURRENTS`), or one given
    where the closure that runs is not spread."""
    _check_spread_option("noise_current", noise_current, NOISE_CURRENTS, column_closure)


def joint_current(column_speed: str | None, noise_current: str | None) -> bool:
    """Whether the spread closure solves its population field at the current point jointly
    with the residuals: ``noise_current`` if given, else at the column's finite speed (the
    default, None)."""
    if noise_current is not None:
        return noise_current == "joint"
    return resolve_column_speed(column_speed) == "finite"


def check_spread_applies(kappa: float, alpha: float, eps: float, where: str = "here",
                         column_speed: str | None = None) -> None:
    """Refuse (one line) the spread closure where its linear column is slower than
    SPREAD_MAX_LAG_FINITE (at its finite speed, the default ``column_speed`` None) or
    SPREAD_MAX_LAG (``"instantaneous"``); ``where``: which run needs that kappa, for the
    message."""
    lag = column_lag(kappa, alpha, eps)
    finite = resolve_column_speed(column_speed) == "finite"
    bound = spread_max_lag(column_speed)
    if lag > bound:
        takes = "at its finite speed, not as slow as this" if finite else "as instantaneous"
        raise ProblemError(f"the column closure spread takes the linear column {takes}, "
                           f"but its slowest relaxation time {where} is {lag:.3g} in tau > "
                           f"{bound:g} (kappa = {kappa:.3g}, alpha / eps = "
                           f"{alpha / eps:.3g}): use the closure dmft or least_squares")
