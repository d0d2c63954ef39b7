"""Validation of single ``Problem`` fields: integers, the width, reals within float64's
reach, and the size of the first GD step (the checks ``spec.problem.Problem`` runs)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.targets import TargetSpec

if TYPE_CHECKING:
    from lazyrich_theory.spec.problem import Problem

__all__ = ["FLOAT_LIMIT", "is_int", "parse_N", "real", "positive_real", "check_target_dims",
           "first_step_scales", "check_representable"]


#: Largest magnitude of a real field and of the first GD step's scales derived from them
#: (:func:`check_representable`): numbers up to 1e100 square to 1e200, which leaves float64
#: (max ~1.8e308) 1e108 of headroom for sums over P, D and N terms and for growth in training.
FLOAT_LIMIT = 1e100

#: Why a positive field below 1 / FLOAT_LIMIT cannot be represented.
_TINY_WHY = {"alpha": "the weight increments ~ eta0/alpha and the network's step "
                      "eta0 N / alpha^2 overflow float64",
             "eta0": "the weight increments ~ eta0 underflow float64 (nothing would move)"}


def is_int(x: Any) -> bool:
    """True for an integer (Python or NumPy), not a bool."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def parse_N(N: Any) -> int | float:
    """The width: a positive int, or ``math.inf`` (also from "inf", "infinity", "∞"); an
    integer in float notation ("1e6") is accepted; ProblemError (one line) otherwise."""
    if isinstance(N, str):
        s = N.strip().lower()
        if s in ("inf", "infinity", "+inf", "∞"):
            return math.inf
        try:
            N = int(s)
        except ValueError:
            try:
                v = float(s)        # 1e6: an integer in float notation
            except ValueError:
                v = math.nan
            if not (math.isfinite(v) and v.is_integer()):
                raise ProblemError(f"N must be a positive integer or 'inf', got {N!r}") from None
            N = v
    if isinstance(N, float) and math.isinf(N) and N > 0:
        return math.inf
    if isinstance(N, float) and N.is_integer():
        N = int(N)
    if not is_int(N) or N < 1:
        raise ProblemError(f"N must be a positive integer or 'inf', got {N!r}")
    return int(N)


def real(name: str, v: Any) -> float:
    """``v`` as a float: a finite number of magnitude at most :data:`FLOAT_LIMIT`."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise ProblemError(f"{name} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ProblemError(f"{name} must be finite, got {v!r}")
    if abs(v) > FLOAT_LIMIT:
        raise ProblemError(f"overflow at {name}={v:g}: beyond {FLOAT_LIMIT:g} in magnitude, "
                           f"float64 dynamics cannot represent the loss (squares of such "
                           f"numbers) at that scale")
    return v


def positive_real(name: str, v: Any) -> float:
    """``v`` as a float in [1 / :data:`FLOAT_LIMIT`, :data:`FLOAT_LIMIT`] (``alpha``, ``eta0``);
    ProblemError (one line) otherwise."""
    v = real(name, v)
    if v <= 0:
        raise ProblemError(f"{name} must be > 0, got {v!r}")
    if v < 1.0 / FLOAT_LIMIT:
        raise ProblemError(f"underflow at {name}={v:g}: below {1.0 / FLOAT_LIMIT:g}, "
                           f"{_TINY_WHY[name]}")
    return v


def check_target_dims(spec: TargetSpec, text: str, D: int) -> None:
    """Refuse a quadratic teacher whose requested rank exceeds D (too many orthonormal
    Hermite directions are refused when the teacher is built, by ``make_target``)."""
    if spec.family == "quadratic" and int(spec.args.get("rank", 0)) > D:
        raise ProblemError(f"bad target spec {text!r}: rank={spec.args['rank']} exceeds D={D} "
                           f"(a D x D matrix has rank at most D)")


def first_step_scales(p: "Problem") -> list[tuple[str, float, str]]:
    """Sizes of the first GD step of ``p``, from its fields alone.

    With |x . w| ~ 1 at initialisation (x ~ N(0, I/D), w ~ N(0, I)) the network output is
    about alpha (1 + |eps|/2), the first residual r0 about 1 + noise (plus the output when
    uncentered), the first increment of the weights s = 2 eta0 (1 + |eps|) r0 / alpha and the
    output change it makes alpha s (1 + |eps| s).

    Returns
    -------
    list of (str, float, str)
        (what, size, how to shrink it) for the output, the increment and the output change.
    """
    # an init scale sigma acts as (alpha, eps) -> (sigma alpha, sigma eps) (docs/init_structure.md)
    alpha, eps = p.scaled_alpha_eps
    out0 = alpha * (1.0 + 0.5 * abs(eps))
    r0 = 1.0 + p.noise + (0.0 if p.centered else out0)
    step = 2.0 * p.eta0 * (1.0 + abs(eps)) * r0 / alpha
    out1 = alpha * step * (1.0 + abs(eps) * step)
    return [("the network output alpha (1 + |eps|/2)", out0, "lower alpha or |eps|"),
            ("the first weight increment 2 eta0 (1 + |eps|) r0 / alpha", step,
             "raise alpha or lower eta0"),
            ("the output change of the first step alpha s (1 + |eps| s)", out1,
             "lower eta0 or |eps|, or raise alpha")]


def check_representable(p: "Problem") -> None:
    """Refuse fields whose first GD step (:func:`first_step_scales`) exceeds
    :data:`FLOAT_LIMIT`: float64 cannot represent the loss, which squares it."""
    at = f"alpha={p.alpha:g}, eps={p.eps:g}, eta0={p.eta0:g}"
    for what, value, hint in first_step_scales(p):
        if not value <= FLOAT_LIMIT:
            raise ProblemError(f"overflow at {at}: {what} ~ {value:.3g} exceeds "
                               f"{FLOAT_LIMIT:g}, beyond what float64 dynamics can represent "
                               f"(the loss squares it); {hint}")
