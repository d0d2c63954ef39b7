"""The package's error hierarchy (the bottom layer: imports nothing of the package).

Every error the package raises on purpose is a :class:`LazyrichError`.  Errors caused by the
user's input (a bad field, an unreadable file, an unsupported option) are
:class:`ProblemError`; the command line prints their one-line message and exits with code 2.
Each class also derives from the builtin exception it used to be (``ValueError`` or
``RuntimeError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["LazyrichError", "ProblemError", "DivergenceError", "IntegrationError", "SweepError"]


class LazyrichError(Exception):
    """Base class of every error raised on purpose by lazyrich_theory."""


class ProblemError(LazyrichError, ValueError):
    """Invalid problem specification or data.  The message is one line, meant for users."""


class DivergenceError(LazyrichError, RuntimeError):
    """The dynamics diverged (NaN, overflow or loss blow-up).  The message names the step."""

    def __init__(self, message: str, step: float, eta0_bound: float | None = None):
        super().__init__(message)
        self.step = step
        self.eta0_bound = eta0_bound


class IntegrationError(LazyrichError, RuntimeError):
    """The integrator could not advance (non-finite state or step size underflow)."""


class SweepError(LazyrichError, RuntimeError):
    """A sweep could not finish (the cells done so far are saved; re-run to resume)."""
