"""Trackers: everything the stepping loop does besides stepping (py-pde trackers, diffrax
``SaveAt`` spirit).

A tracker has two hooks, both optional:

* ``step(t, F, loss)`` — every step t (before the update), with the loss of step t's batch
  (the training loss in full-batch GD); only trackers with ``per_step = True`` get it;
* ``save(k, t, F, row)`` — at the k-th save time t, with the recorded ``row`` (the values of
  ``ReducedSystem.record``: the core columns, then the observers); returning True stops the
  run after this save (every tracker still sees it).

``close()`` runs when the loop ends, also on an error.  The discrete loop
(:func:`lazyrich_theory.core.stepping.step_loop`) calls both hooks; the gradient flow calls
only ``save``, from its integrator.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.spec.streams import sgd_batch_size, sgd_mode

if TYPE_CHECKING:
    from lazyrich_theory.core.reduced import ReducedSystem

__all__ = ["BLOWUP_FACTOR", "Tracker", "Recorder", "Divergence", "EarlyStop", "Progress",
           "divergence_error", "check_tolerance"]


#: A loss above this multiple of its initial value counts as a blow-up.
BLOWUP_FACTOR = 1e8


class Tracker:
    """Base class of the trackers: no-op hooks (see the module docstring)."""

    #: whether the loop calls :meth:`step` (kept False when unused: it runs every step)
    per_step = False

    def step(self, t: int, F: np.ndarray, loss: float) -> None:
        """Called at every step ``t`` with the state ``F`` and its batch loss."""

    def save(self, k: int, t: float, F: np.ndarray, row: Sequence[float]) -> bool:
        """Called at the ``k``-th save time ``t`` with the recorded ``row``; True stops."""
        return False

    def close(self) -> None:
        """Called once when the loop ends (normally or by an error)."""


class Recorder(Tracker):
    """Stores the recorded rows at the save times and the last saved state.

    Parameters
    ----------
    n_times : int
        Number of save times (rows allocated).
    width : int
        Number of recorded columns (``ReducedSystem.width()``).
    """

    def __init__(self, n_times: int, width: int):
        self._rows = np.empty((n_times, width))
        self.count = 0
        self.F: np.ndarray | None = None

    def save(self, k: int, t: float, F: np.ndarray, row: Sequence[float]) -> bool:
        self._rows[k] = row
        self.count = k + 1
        self.F = F
        return False

    @property
    def rows(self) -> np.ndarray:
        """The rows recorded so far, shape (count, width)."""
        return self._rows[:self.count]


def divergence_error(system: "ReducedSystem", step: float, what: str,
                     F_healthy: np.ndarray) -> DivergenceError:
    """The error for a blow-up at ``step``, naming the stable-eta0 bound.

    Parameters
    ----------
    system : ReducedSystem
        The diverging system.
    step : float
        The step (or flow time) of the blow-up.
    what : str
        What blew up, e.g. ``"train loss 1.3e+12"``.
    F_healthy : numpy.ndarray
        The last healthy state (loss at most twice its initial value).

    Returns
    -------
    DivergenceError
        With the smaller of the Gauss-Newton bounds at initialisation and at ``F_healthy``.
    """
    p = system.problem
    bound = system.eta0_bound(system.F0)
    if F_healthy is not system.F0 and np.all(np.isfinite(F_healthy)):
        try:
            bound = min(bound, system.eta0_bound(F_healthy))
        except np.linalg.LinAlgError:
            pass
    mode = sgd_mode(p)
    if mode is None:
        msg = (f"dynamics diverged at step {step:g} ({what}); eta0={p.eta0:g} but GD is stable "
               f"only for eta0 < {bound:.4g} (Gauss-Newton bound P/lambda_max(Ktilde))")
    else:
        msg = (f"dynamics diverged at step {step:g} ({what}); eta0={p.eta0:g}: {mode} SGD with "
               f"batch size {sgd_batch_size(p)} needs eta0 below the full-batch GD bound "
               f"{bound:.4g} (P/lambda_max(Ktilde)) and, for small batches, well below it")
    return DivergenceError(msg, step, bound)


def _blown_up(loss: float, loss0: float) -> bool:
    return not math.isfinite(loss) or loss > BLOWUP_FACTOR * loss0 + 1e-300


class Divergence(Tracker):
    """Raises :class:`DivergenceError` on NaN, overflow or a loss above ``BLOWUP_FACTOR``
    times its initial value, naming the step and the stable-eta0 bound.

    Parameters
    ----------
    system : ReducedSystem
        The system (for the bound in the message).
    loss_name : str
        Name of the per-step loss in the message ("train loss", or "batch loss" for SGD).
    flow : bool
        Gradient flow: no per-step hook; every recorded column must be finite and the last
        healthy state is tracked at the save times.  Otherwise the batch loss is checked every
        step (healthy state: loss at most twice its initial value) and the recorded train
        loss at every save time.
    """

    def __init__(self, system: "ReducedSystem", loss_name: str = "train loss",
                 flow: bool = False):
        self.system = system
        self.loss_name = loss_name
        self.flow = flow
        self.per_step = not flow
        self.healthy = system.F0
        self._loss0: float | None = None    # first batch loss
        self._saved0: float | None = None   # first recorded train loss

    def step(self, t: int, F: np.ndarray, loss: float) -> None:
        if self._loss0 is None:
            self._loss0 = loss
        if _blown_up(loss, self._loss0):
            what = "non-finite loss" if not math.isfinite(loss) else f"{self.loss_name} {loss:.3g}"
            raise divergence_error(self.system, t, what, self.healthy)
        if loss <= 2.0 * self._loss0:
            self.healthy = F

    def save(self, k: int, t: float, F: np.ndarray, row: Sequence[float]) -> bool:
        loss = row[0]
        if self._saved0 is None:
            self._saved0 = loss
        if self.flow:
            if not all(math.isfinite(v) for v in row) or _blown_up(loss, self._saved0):
                raise divergence_error(self.system, t, "non-finite or exploding loss",
                                       self.healthy)
            if loss <= 2.0 * self._saved0:
                self.healthy = F
        elif _blown_up(loss, self._saved0):
            raise divergence_error(self.system, t, f"train loss {loss:.3g}", self.healthy)
        return False


class EarlyStop(Tracker):
    """Stops at the first save time at which the recorded train and test losses are both
    below ``tol`` (the phase sweeps' convergence rule); that save is still recorded.

    Parameters
    ----------
    tol : float
        Finite and >= 0 (0 never stops: losses are never negative).
    """

    def __init__(self, tol: float):
        self.tol = check_tolerance(tol)
        self.stopped_at: float | None = None

    def save(self, k: int, t: float, F: np.ndarray, row: Sequence[float]) -> bool:
        if row[0] < self.tol and row[1] < self.tol:
            self.stopped_at = t
            return True
        return False


def check_tolerance(tol: float) -> float:
    """The early-stop tolerance ``tol`` as a float.

    Parameters
    ----------
    tol : float
        The tolerance; must be a finite number >= 0 (not a bool).

    Returns
    -------
    float
        ``float(tol)``; ProblemError for anything else.
    """
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise ProblemError(f"stop tolerance must be a number, got {tol!r}") from None
    if isinstance(tol, bool) or not (math.isfinite(value) and value >= 0.0):
        raise ProblemError(f"stop tolerance must be finite and >= 0, got {tol!r}")
    return value


class Progress(Tracker):
    """A tqdm progress bar (only when ``enabled`` and on a terminal), advanced every 256 steps
    by the loop or through :attr:`update` by an integrator.

    Parameters
    ----------
    total : float
        Steps (or flow time) of the run.
    enabled : bool
        False: no bar at all.
    desc : str
        The bar's label ("gd", "minibatch", "online", "flow").
    """

    def __init__(self, total: float, enabled: bool, desc: str):
        self.total = total
        self.bar = (tqdm(total=total, desc=desc, unit="step", unit_scale=True, leave=False,
                         disable=None, mininterval=0.5) if enabled else None)
        self.per_step = self.bar is not None

    @property
    def update(self) -> Callable[[float], object] | None:
        """The bar's ``update(n)`` for integrators, or None without a bar."""
        return None if self.bar is None else self.bar.update

    def step(self, t: int, F: np.ndarray, loss: float) -> None:
        if (t & 255) == 0 and t < self.total:
            self.bar.update(min(256, self.total - self.bar.n))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
