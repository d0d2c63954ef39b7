"""The stepping loop of the reduced dynamics — one loop for exact GD, heavy-ball momentum and
minibatch / online SGD — and the adaptive gradient flow, sharing the trackers of
:mod:`lazyrich_theory.core.trackers` (recording, divergence, early stop, progress).

Step t takes its batch (X_b, y_b, f0_b) (:class:`Batches`: the training set, a minibatch of
its rows, or fresh online samples) and applies, with r = ftilde(X_b) - y_b and B rows,

    Delta(F) = -(2 eta0 / (alpha B)) X_b^T [r * (eps X_b F + c^T)] - eta0 lambda F,
    F <- F + Delta(F)   or, with momentum mu,   F_v <- mu F_v + Delta(F), F <- F + F_v.

The recorded train_loss is the full training loss (full batch, minibatch) or the loss of the
state at t on step t's fresh batch (online).

Full-batch GD runs in one of two representations of the same state
(:mod:`lazyrich_theory.core.sample_space`): the factor F (4 P D r flops per step) or sample
space, F = s F_0 + X^T A (2 P^2 r per step, F formed only at the save times), chosen by
:func:`~lazyrich_theory.core.sample_space.choose_representation` (sample space when P <= D).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from lazyrich_theory.core.dopri5 import dopri5
from lazyrich_theory.core.integrators import (
    MAX_RHS,
    BudgetExceeded,
    IntegratorStats,
    min_evaluations,
    rkc2,
)
from lazyrich_theory.core.reduced import ReducedSystem, _residual
from lazyrich_theory.core.sample_space import (
    choose_representation,
    representation_steps,
    step_flops,
)
from lazyrich_theory.core.statistics import predict
from lazyrich_theory.core.threads import blas_threads, blas_threads_for
from lazyrich_theory.core.trackers import (
    BLOWUP_FACTOR,
    Divergence,
    EarlyStop,
    Progress,
    Recorder,
    Tracker,
)
from lazyrich_theory.errors import DivergenceError, IntegrationError, ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.streams import (
    iter_batch_indices,
    iter_online_samples,
    sgd_batch_size,
    sgd_mode,
)

__all__ = ["BLOWUP_FACTOR", "Batches", "LoopResult", "step_loop", "run_steps", "run_flow",
           "check_stiffness"]


class Batches:
    """The per-step batches (X_b, y_b, f0_b) of a run, in convention-A units: the whole
    training set (full-batch GD), minibatches of its rows (``iter_batch_indices``) or fresh
    online samples (``iter_online_samples``, which needs ``data`` for the teacher).

    Attributes
    ----------
    mode : str or None
        ``sgd_mode(problem)``: None (full batch), "minibatch" or "online".
    size : int
        Rows per batch.
    loss_is_train : bool
        Whether the batch loss is the recorded train_loss (full batch and online); for
        minibatches the full training loss is recorded instead.
    """

    def __init__(self, system: ReducedSystem, data: ProblemData | None = None):
        p = system.problem
        self.mode = sgd_mode(p)
        self.size = system.X.shape[0] if self.mode is None else sgd_batch_size(p)
        self.loss_is_train = self.mode != "minibatch"
        if self.mode is None:
            self._it = _full_batches(system)
        elif self.mode == "minibatch":
            self._it = _minibatches(system)
        else:
            self._it = _online_batches(system, p.data() if data is None else data)

    def __iter__(self) -> "Batches":
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return next(self._it)


def _full_batches(system: ReducedSystem) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    batch = (system.X, system.y, system.f0)
    while True:
        yield batch


def _minibatches(system: ReducedSystem) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for idx in iter_batch_indices(system.problem):
        yield system.X[idx], system.y[idx], system.f0[idx]


def _online_batches(system: ReducedSystem, data: ProblemData
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    p = system.problem
    s = p.input_scale
    zeros = np.zeros(sgd_batch_size(p))
    for Xr, yb in iter_online_samples(p, data):
        Xb = Xr * s if s != 1.0 else Xr
        f0b = predict(Xb @ system.F0, system.z, p.alpha, p.eps) if p.centered else zeros
        yield Xb, yb, f0b


class LoopResult(NamedTuple):
    """What a run returns: the recorded rows (one per save time reached), the final factor,
    the time of an early stop (None: ran to the end) and, for the flow, the integrator's
    work counters."""

    rows: np.ndarray
    F: np.ndarray
    stopped_at: float | None = None
    work: IntegratorStats | None = None


def _step(F: np.ndarray, Fv: np.ndarray | None, V: np.ndarray, mu: float):
    """One update with increment V: F + V, or heavy ball F_v <- mu F_v + V, F <- F + F_v."""
    if Fv is None:
        return F + V, None
    Fv = mu * Fv + V
    return F + Fv, Fv


def step_loop(system: ReducedSystem, times: np.ndarray, batches: Batches,
              trackers: Sequence[Tracker], heavy_ball: bool | None = None,
              representation: str = "auto") -> np.ndarray:
    """Run the discrete dynamics from F0 over steps 0..times[-1] (or until a tracker stops).

    Parameters
    ----------
    system : ReducedSystem
        The reduced system.
    times : numpy.ndarray
        Sorted integer save times, the first 0; the last is the number of steps.
    batches : Batches
        Step t's batch (X_b, y_b, f0_b), drawn once per step including the last.
    trackers : sequence of Tracker
        Called in order: ``step`` every step (before the update), ``save`` at the save times
        with the row of ``system.record``; ``close`` at the end.  ``save`` gets the factor F;
        in the sample representation ``step`` gets a
        :class:`~lazyrich_theory.core.sample_space.RowSpaceFactor`, which becomes F under
        ``numpy.asarray`` (formed only if read).
    heavy_ball : bool, optional
        Propagate the velocity factor F_v (from 0); default: ``problem.momentum > 0``.  With
        momentum 0 it is plain GD bit for bit.
    representation : {"auto", "factor", "sample"}
        The state's representation (:func:`~lazyrich_theory.core.sample_space.
        choose_representation`; "sample" for full-batch GD only).  The factor representation
        is the package's GD map bit for bit; sample space agrees with it to round-off.

    Returns
    -------
    numpy.ndarray
        The final factor F (at the last step run).
    """
    p = system.problem
    mu = p.momentum
    heavy_ball = mu > 0.0 if heavy_ball is None else heavy_ball
    rep = representation_steps(system, choose_representation(system, representation))
    z, alpha, eps = system.z, p.alpha, p.eps
    F = rep.start()
    Fv = rep.zero() if heavy_ball else None
    steps = int(times[-1])
    per_step = [tr.step for tr in trackers if tr.per_step]
    k = 0
    try:
        for t in range(steps + 1):
            Xb, yb, f0b = next(batches)
            XF = rep.image(F, Xb)
            r = _residual(XF, z, alpha, eps, f0b, yb)
            loss = float(r @ r) / r.size
            for hook in per_step:
                hook(t, F, loss)
            if t == times[k]:
                Fk = rep.factor(F)
                row = system.record(Fk, train_loss=loss if batches.loss_is_train else None)
                stop = [tr.save(k, t, Fk, row) for tr in trackers]
                k += 1
                if any(stop):
                    break
            if t == steps:
                break
            F, Fv = _step(F, Fv, rep.increment(F, XF, r, Xb), mu)
    finally:
        for tr in trackers:
            tr.close()
    return rep.factor(F)


def run_steps(system: ReducedSystem, times: np.ndarray, data: ProblemData | None = None,
              progress: bool = False, stop: float | None = None,
              heavy_ball: bool | None = None, representation: str = "auto") -> LoopResult:
    """Exact GD / heavy ball / minibatch or online SGD with the standard trackers.

    Parameters
    ----------
    system : ReducedSystem
        The reduced system.
    times : numpy.ndarray
        Integer save times (first 0, last = steps).
    data : ProblemData, optional
        The problem's data (online SGD draws labels from its teacher; default: built).
    progress : bool
        Show a progress bar (on a terminal).
    stop : float, optional
        Early-stop tolerance (:class:`~lazyrich_theory.core.trackers.EarlyStop`).
    heavy_ball : bool, optional
        As in :func:`step_loop`.
    representation : {"auto", "factor", "sample"}
        As in :func:`step_loop`: "auto" is the cheaper one (sample space for full-batch GD
        with P <= D), unless ``$LAZYRICH_GD_REPRESENTATION`` forces one.

    Returns
    -------
    LoopResult
        Rows at the save times reached, the final F and the early-stop time.
    """
    batches = Batches(system, data)
    recorder = Recorder(times.size, system.width())
    early = None if stop is None else EarlyStop(stop)
    trackers: list[Tracker] = [
        Divergence(system, "train loss" if batches.mode is None else "batch loss"), recorder,
        Progress(int(times[-1]), progress, batches.mode or "gd")]
    if early is not None:
        trackers.append(early)
    rep = choose_representation(system, representation)
    # BLAS threads by the size of one step's products (core.threads: one thread for small
    # steps and on a busy machine)
    with blas_threads(step_flops(batches.size, system.X.shape[1], system.F0.shape[1], rep)):
        F = step_loop(system, times, batches, trackers, heavy_ball, rep)
    return LoopResult(recorder.rows, F, None if early is None else early.stopped_at)


def run_flow(system: ReducedSystem, times: np.ndarray, integrator: str, rtol: float,
             atol: float, progress: bool) -> LoopResult:
    """Adaptive gradient flow (``integrator`` "rkc" or "dopri5") with the recording and
    divergence trackers.

    Parameters
    ----------
    system : ReducedSystem
        The reduced system.
    times : numpy.ndarray
        Save times (first 0).
    integrator : str
        "rkc" (Runge–Kutta–Chebyshev) or "dopri5" (Dormand–Prince 5(4)).
    rtol, atol : float
        The integrator's tolerances.
    progress : bool
        Show a progress bar (on a terminal).

    Returns
    -------
    LoopResult
        Rows at the save times, the final F and the integrator's work counters.
    """
    recorder = Recorder(times.size, system.width())
    bar = Progress(float(times[-1]), progress, "flow")
    trackers = (Divergence(system, flow=True), recorder)

    def on_save(k: int, t: float, F: np.ndarray) -> None:
        row = system.record(F)
        for tr in trackers:
            tr.save(k, t, F, row)

    t_save = times.astype(np.float64)
    try:
        with blas_threads_for(system):
            check_stiffness(system, float(t_save[-1] - t_save[0]), integrator)
            if integrator == "rkc":
                work = rkc2(system.rhs, system.F0, t_save, on_save, rtol=rtol, atol=atol,
                            spectral_radius=lambda t, F: system.spectral_radius(F),
                            progress=bar.update)
            else:
                work = dopri5(system.rhs, system.F0, t_save, on_save, rtol=rtol, atol=atol,
                              progress=bar.update)
    except BudgetExceeded as exc:
        raise DivergenceError(f"gradient flow stopped: {exc}; {_stiff_advice(system, integrator)}",
                              float("nan")) from None
    except IntegrationError as exc:
        raise DivergenceError(f"gradient flow failed: {exc}", float("nan")) from None
    finally:
        bar.close()
    return LoopResult(recorder.rows, recorder.F, None, work)


def _stiff_advice(system: ReducedSystem, integrator: str, eta0_max: float | None = None) -> str:
    """What to change for a flow too stiff for ``integrator``."""
    p = system.problem
    lower = "a smaller eta0" + ("" if eta0_max is None else f" (below ~{eta0_max:.2g})")
    if p.weight_decay > 0:
        lower += " or weight_decay"
    return ("use integrator 'rkc' (built for stiff flows) or " if integrator == "dopri5"
            else "use ") + lower


def check_stiffness(system: ReducedSystem, span: float, integrator: str,
                    max_rhs: int = MAX_RHS) -> float:
    """Refuse, before integrating, a flow that ``integrator`` cannot cover within its budget.

    Parameters
    ----------
    system : ReducedSystem
        The system (its spectral radius at F0 is estimated).
    span : float
        The flow time to cover, in GD steps.
    integrator : {"rkc", "dopri5"}
        The explicit integrator.
    max_rhs : int
        Its evaluation budget.

    Returns
    -------
    float
        The fewest evaluations the stability of the integrator allows
        (:func:`~lazyrich_theory.core.integrators.min_evaluations`).

    Raises
    ------
    ProblemError
        That number exceeds ``max_rhs``; the message gives the spectral radius and the eta0
        that would fit (the radius is proportional to eta0).
    """
    # on a copy: its eigenvector cache (a warm start) stays the integrator's own
    rho = dataclasses.replace(system).spectral_radius(system.F0)
    need = min_evaluations(rho, span, integrator)
    if need > max_rhs:
        p = system.problem
        raise ProblemError(
            f"gradient flow with {integrator} would need at least ~{need:.2g} right-hand-side "
            f"evaluations to reach t={span:g}: the flow is stiff (Jacobian spectral radius "
            f"~{rho:.3g} per GD step at initialisation, eta0={p.eta0:g}), beyond the budget of "
            f"{max_rhs:.3g}; {_stiff_advice(system, integrator, p.eta0 * max_rhs / need)}")
    return need
