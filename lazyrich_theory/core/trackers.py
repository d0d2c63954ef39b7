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

Progress (:func:`progress_bar`, used by :class:`Progress` and by the sweeps) is a tqdm bar on a
terminal or in a notebook with ipywidgets, and otherwise (nohup, CI, a pipe, a notebook
without widgets) one line on stderr every :func:`progress_interval` seconds
(:class:`LineProgress`): done/total, elapsed time and ETA.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

import numpy as np

from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.spec.problem import first_step_scales
from lazyrich_theory.spec.resources import format_seconds
from lazyrich_theory.spec.streams import sgd_batch_size, sgd_mode

if TYPE_CHECKING:
    from lazyrich_theory.core.reduced import ReducedSystem

__all__ = ["BLOWUP_FACTOR", "Tracker", "Recorder", "Divergence", "EarlyStop", "Progress",
           "divergence_error", "stable_eta0", "check_tolerance", "LineProgress", "progress_bar",
           "progress_interval", "PROGRESS_INTERVAL", "PROGRESS_INTERVAL_ENV"]


#: A loss above this multiple of its initial value counts as a blow-up.
BLOWUP_FACTOR = 1e8
#: A first-step output change beyond this (targets are O(1)) means the quadratic term, not the
#: kernel's bound, limits eta0.
_NONLINEAR_STEP = 1e3


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


def stable_eta0(gn_bound: float, weight_decay: float = 0.0, momentum: float = 0.0) -> float:
    """The largest stable eta0 of GD (heavy ball ``momentum`` mu) with weight decay lambda.

    Parameters
    ----------
    gn_bound : float
        The Gauss-Newton bound P / lambda_max(Ktilde) of plain GD (curvature 2 / gn_bound
        per unit eta0).
    weight_decay, momentum : float
        lambda adds curvature lambda; heavy ball is stable up to 2 (1 + mu) instead of 2.

    Returns
    -------
    float
        2 (1 + mu) / (2 / gn_bound + lambda) (inf when both curvatures are 0).
    """
    curvature = (2.0 / gn_bound if gn_bound > 0 else math.inf) + weight_decay
    return 2.0 * (1.0 + momentum) / curvature if curvature > 0 else math.inf


def _bound_how(p) -> str:
    how = "Gauss-Newton bound P/lambda_max(Ktilde)"
    if p.weight_decay > 0 or p.momentum > 0:
        how += " with eta0 (2/bound + weight_decay) < 2 (1 + momentum)"
    return how


def _other_cause(p, what: str, F: np.ndarray | None, flow: bool) -> str:
    """Why the dynamics blew up when eta0 is within the stable range (the bound is not
    quoted: it holds)."""
    where = f"alpha={p.alpha:g}, eps={p.eps:g}" + (
        f", weight_decay={p.weight_decay:g}" if p.weight_decay > 0 else "")
    with np.errstate(invalid="ignore", over="ignore"):
        big = None if F is None else float(np.max(np.abs(F), initial=0.0))
    reached = "" if big is None else f"; the weights reached |F| ~ {big:.2g}"
    if flow:
        return (f"float64 overflow at {where}{reached} (a gradient flow has no step-size "
                f"bound, so eta0 is not the cause); rescale alpha or eps")
    mode = sgd_mode(p)
    if mode is not None:
        return (f"eta0={p.eta0:g} is within full-batch GD's stable range, but {mode} SGD with "
                f"batch size {sgd_batch_size(p)} is not: batch noise needs a smaller eta0")
    if "non-finite" in what:
        return (f"float64 overflow at {where}{reached}, not a learning-rate problem (eta0="
                f"{p.eta0:g} is within GD's stable range); rescale alpha or eps")
    what1, change, hint = first_step_scales(p)[2]
    if change > _NONLINEAR_STEP:
        return (f"eta0={p.eta0:g} is within the initial kernel's stable range, but at {where} "
                f"{what1} is ~{change:.2g}: the quadratic term makes the first steps overshoot "
                f"(far in the rich regime for this eta0); {hint}")
    return (f"eta0={p.eta0:g} is within GD's stable range at initialisation, but training "
            "left the region where that bound holds (the kernel sharpened); try a smaller eta0")


def divergence_error(system: "ReducedSystem", step: float, what: str,
                     F_healthy: np.ndarray, F: np.ndarray | None = None,
                     flow: bool = False) -> DivergenceError:
    """The error for a blow-up at ``step``, naming its cause.

    Parameters
    ----------
    system : ReducedSystem
        The diverging system.
    step : float
        The step (or flow time) of the blow-up.
    what : str
        What blew up, e.g. ``"train loss 1.3e+12"`` or ``"non-finite loss"``.
    F_healthy : numpy.ndarray
        The last healthy state (loss at most twice its initial value).
    F : numpy.ndarray, optional
        The state at the blow-up (its size is reported for an overflow).
    flow : bool
        A gradient flow (no step-size bound).

    Returns
    -------
    DivergenceError
        "eta0 too large", quoting the stable bound (the smaller of the Gauss-Newton bounds at
        initialisation and at ``F_healthy``, lowered by weight decay and raised by momentum,
        :func:`stable_eta0`), only when eta0 exceeds it; otherwise the message names the other
        cause (float64 overflow at the given alpha / eps / weight decay, SGD noise, a
        sharpened kernel) and quotes no bound.  ``eta0_bound`` is the stable bound.
    """
    p = system.problem
    bound = system.eta0_bound(system.F0)
    if F_healthy is not system.F0 and np.all(np.isfinite(F_healthy)):
        try:
            bound = min(bound, system.eta0_bound(F_healthy))
        except np.linalg.LinAlgError:
            pass
    limit = stable_eta0(bound, p.weight_decay, p.momentum)
    head = (f"gradient flow diverged at t={step:g}" if flow
            else f"dynamics diverged at step {step:g}") + f" ({what})"
    mode = sgd_mode(p)
    if flow or p.eta0 < limit:
        msg = f"{head}; {_other_cause(p, what, F, flow)}"
    elif mode is None:
        msg = (f"{head}; eta0={p.eta0:g} is too large: GD is stable only for "
               f"eta0 < {limit:.4g} ({_bound_how(p)})")
    else:
        msg = (f"{head}; eta0={p.eta0:g} is too large: {mode} SGD with batch size "
               f"{sgd_batch_size(p)} needs eta0 below the full-batch GD bound eta0 < "
               f"{limit:.4g} ({_bound_how(p)}) and, for small batches, well below it")
    return DivergenceError(msg, step, limit)


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
            raise divergence_error(self.system, t, what, self.healthy, F)
        if loss <= 2.0 * self._loss0:
            self.healthy = F

    def save(self, k: int, t: float, F: np.ndarray, row: Sequence[float]) -> bool:
        loss = row[0]
        if self._saved0 is None:
            self._saved0 = loss
        if self.flow:
            finite = all(math.isfinite(v) for v in row)
            if not finite:
                self._check_observers(t, F, row)
            if not finite or _blown_up(loss, self._saved0):
                raise divergence_error(self.system, t, "non-finite or exploding loss",
                                       self.healthy, F, flow=True)
            if loss <= 2.0 * self._saved0:
                self.healthy = F
        elif _blown_up(loss, self._saved0):
            what = "non-finite loss" if not math.isfinite(loss) else f"train loss {loss:.3g}"
            raise divergence_error(self.system, t, what, self.healthy, F)
        return False

    def _check_observers(self, t: float, F: np.ndarray, row: Sequence[float]) -> None:
        """A non-finite value only in an extra column (an observer) while the state and the
        core columns are finite is the observer's fault, not a divergence: say which."""
        names = list(self.system.observers)
        core = len(row) - len(names)
        bad = [(n, v) for n, v in zip(names, row[core:]) if not math.isfinite(v)]
        if bad and all(math.isfinite(v) for v in row[:core]) and np.isfinite(F).all():
            raise ProblemError(f"observer {bad[0][0]!r} returned {bad[0][1]} at t={t:g} on a "
                               f"finite state: an observer must return a finite number")


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


#: Seconds between two progress lines when stderr is not a terminal.
PROGRESS_INTERVAL = 10.0
#: Environment variable overriding :data:`PROGRESS_INTERVAL` (seconds, a number > 0).
PROGRESS_INTERVAL_ENV = "LAZYRICH_PROGRESS_INTERVAL"


def progress_interval() -> float:
    """Seconds between two progress lines: ``$LAZYRICH_PROGRESS_INTERVAL`` if it is a number
    > 0, else :data:`PROGRESS_INTERVAL`."""
    try:
        value = float(os.environ.get(PROGRESS_INTERVAL_ENV, ""))
    except ValueError:
        return PROGRESS_INTERVAL
    return value if math.isfinite(value) and value > 0 else PROGRESS_INTERVAL


class LineProgress:
    """Progress as periodic one-line reports, for a stream that is not a terminal.

    ``update(n)`` advances the count; at most every ``interval`` seconds it prints, e.g.,
    ``lazyrich: gd: step 25600/100000 (26%), elapsed 10 s, ETA 29 s``.  Runs shorter than
    ``interval`` print nothing.

    Parameters
    ----------
    total : float
        The count at the end (steps, flow time, cells).
    desc : str
        What runs ("gd", "flow", "phase").
    unit : str
        What is counted ("step", "cell").
    initial : float
        The count already done (a resumed sweep).
    stream : file-like, optional
        Where the lines go (default ``sys.stderr`` at each line).
    interval : float, optional
        Seconds between lines (default :func:`progress_interval`).
    """

    def __init__(self, total: float, desc: str, unit: str = "step", initial: float = 0,
                 stream: TextIO | None = None, interval: float | None = None):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self._initial = initial
        self.stream = stream
        self.interval = progress_interval() if interval is None else interval
        self._start = self._last = time.monotonic()

    def update(self, n: float = 1) -> None:
        """Advance by ``n``; print a line if ``interval`` has passed since the last one."""
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            print(self.line(now - self._start), file=self.stream or sys.stderr, flush=True)

    def line(self, elapsed: float) -> str:
        """The report after ``elapsed`` seconds.  The ETA extrapolates the average rate so
        far, once a thousandth of the total is done ("unknown" before: a flow's first,
        shortest times say nothing of the rest)."""
        done, left = self.n - self._initial, self.total - self.n
        eta = (format_seconds(max(left, 0) * elapsed / done)
               if done > 0 and done >= 1e-3 * self.total else "unknown")
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total > 0 else ""
        return (f"lazyrich: {self.desc}: {self.unit} {self.n:.6g}/{self.total:.6g}{pct}, "
                f"elapsed {format_seconds(elapsed)}, ETA {eta}")

    def close(self) -> None:
        """Nothing to release (the interface of a tqdm bar)."""


def _in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (tqdm.autonotebook's test)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # noqa: BLE001 - any odd shell: not a notebook
        return False


def progress_bar(total: float, desc: str, unit: str = "step", initial: float = 0,
                 **tqdm_options: Any) -> Any:
    """A progress display with ``update(n)``, ``n`` and ``close()``.

    Parameters
    ----------
    total, desc, unit, initial
        As in :class:`LineProgress`.
    **tqdm_options
        Further options of the tqdm bar (``unit_scale``, ``leave``, ``mininterval``, ...).

    Returns
    -------
    tqdm or LineProgress
        A notebook widget in a Jupyter kernel with ipywidgets, a text bar when stderr is a
        terminal, else a :class:`LineProgress` (one line on stderr every
        :func:`progress_interval` seconds).  tqdm is imported only here, when a bar is shown
        (``tqdm.auto`` warns on import in a notebook without ipywidgets).
    """
    if _in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm  # imported when shown (see above)
    elif sys.stderr is not None and sys.stderr.isatty():
        from tqdm import tqdm  # imported when shown (see above)
    else:
        return LineProgress(total, desc, unit, initial)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, **tqdm_options)


class Progress(Tracker):
    """A progress display (:func:`progress_bar`: a tqdm bar on a terminal or in a notebook,
    else periodic lines on stderr), advanced every 256 steps by the loop or through
    :attr:`update` by an integrator.

    Parameters
    ----------
    total : float
        Steps (or flow time) of the run.
    enabled : bool
        False: no progress output at all.
    desc : str
        The bar's label ("gd", "minibatch", "online", "flow").
    """

    def __init__(self, total: float, enabled: bool, desc: str):
        self.total = total
        self.bar = (progress_bar(total, desc, "step", unit_scale=True, leave=False,
                                 mininterval=0.5) if enabled else None)
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
