"""What a run will cost, checked before it starts: peak memory and work, and a writable output.

:func:`estimate` predicts the peak memory (bytes) and the work (floating-point operations and
seconds on a typical core) of a run from the problem's sizes (D, P, N, test size), the number
of steps and the method, by counting the arrays each solver holds and the products it forms
(the counts are listed in :func:`estimate`).  :func:`check_resources` compares the estimate
with the memory this machine has available (``/proc/meminfo``, else ``os.sysconf``) and with a
day of work, and refuses a run beyond either with one line that states the estimate
(:class:`ResourceError`), unless ``allow_large``.  :func:`check_writable` creates and removes
a probe file where a run will write, so that an unwritable output is found before any
computation, not after it.
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from dataclasses import dataclass
from typing import Sequence

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.problem import Problem
from lazyrich_theory.spec.streams import sgd_batch_size, sgd_mode

__all__ = ["Estimate", "ResourceError", "ESTIMATE_METHODS", "FLOP_RATE", "MAX_SECONDS",
           "LONG_RUN_SECONDS", "MEMORY_FRACTION", "ALLOW_LARGE_HINT", "STRIDE_RHS",
           "STRIDE_REFRESHES", "estimate",
           "available_memory",
           "check_resources", "check_writable", "format_bytes", "format_seconds"]

#: What :func:`estimate` knows: the reduced dynamics ("gd" also covers heavy ball and SGD,
#: "gd-fast" the strides of docs/stride.md, "flow" the adaptive integrators), the numpy network
#: ("simulate") and the population ODE ("scalar": the 2-scalar N = inf system, "full": the
#: D-dimensional flow).
ESTIMATE_METHODS = ("gd", "gd-fast", "flow", "simulate", "scalar", "full")
#: The stride method's work in right-hand sides ("gd-fast"; measured 1-3 10^3 on Figure 1
#: whatever the horizon).
STRIDE_RHS = 3000
#: The stride method's reference operators: each one kernel and, at worst, one
#: eigendecomposition (measured 15-70 per run).
STRIDE_REFRESHES = 60
#: Sustained floating-point operations per second assumed for the work estimate (BLAS-bound
#: solves on this project's 2-core machine run at 0.7-1e10).
FLOP_RATE = 1e10
#: Fixed cost of one step (gd, simulate) or right-hand-side evaluation (flows), in seconds.
STEP_OVERHEAD = 5e-5
#: A run estimated to take longer than this (one day) is refused unless ``allow_large``.
MAX_SECONDS = 86_400.0
#: Runs estimated to take longer than this print their estimate (command line).
LONG_RUN_SECONDS = 10.0
#: A run may use at most this fraction of the available memory.
MEMORY_FRACTION = 0.8
#: Bytes per float64.
_WORD = 8


class ResourceError(ProblemError):
    """A run refused before it starts: its estimate exceeds the machine (``estimate``)."""

    def __init__(self, message: str, estimate: "Estimate"):
        super().__init__(message)
        self.estimate = estimate


@dataclass(frozen=True)
class Estimate:
    """Predicted cost of one run.

    Attributes
    ----------
    memory : int
        Peak memory in bytes (the arrays the solver holds at once; the interpreter and the
        libraries add some 200 MB).
    flops : float
        Floating-point operations.
    seconds : float
        Wall time at :data:`FLOP_RATE` plus a fixed cost per step (an order of magnitude).
    what : str
        The run, e.g. ``"gd, D=100, P=550, N=500, test_size=1000, 100000 steps"``, and for a
        flow whose stiffness sets its cost, the evaluations it needs.
    """

    memory: int
    flops: float
    seconds: float
    what: str

    def describe(self) -> str:
        """``"~1.2 GB peak memory, ~3.4e+12 flops (~6 min)"``."""
        return (f"~{format_bytes(self.memory)} peak memory, ~{self.flops:.2g} flops "
                f"(~{format_seconds(self.seconds)})")


def format_bytes(n: float) -> str:
    """``1.5e9 -> "1.5 GB"`` (decimal units up to EB, then powers of ten)."""
    for unit, size in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6),
                       ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1e4 else f"{n:.2g} B"
    return f"{int(n)} B"


def format_seconds(s: float) -> str:
    """``150 -> "2.5 min"``: seconds, minutes, hours, days or years (from two of the unit
    on; a year from one), two significant digits."""
    for unit, size in (("years", 3.156e7), ("days", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if s >= (size if unit == "years" else 2 * size):
            return f"{s / size:.2g} {unit}"
    return f"{s:.2g} s"


def _n_saves(steps: int) -> float:
    """Number of save times of the default grid (40 per decade, ``save_times``)."""
    return 2.0 if steps < 1 else min(steps + 1.0, 40.0 * math.log10(steps) + 2.0)


def _flow_evaluations(steps: int, integrator: str, rho: float) -> float:
    """Right-hand-side evaluations of an adaptive flow over ``steps``: the typical count
    (measured on the paper's setups: RKC ~1.3e3 and DOPRI5 ~9e3 for 1e5 steps, growing
    ~ log(steps)), or the count stability imposes at Jacobian spectral radius ``rho`` when
    larger (DOPRI5: 6 steps rho / 3.3; RKC: ~ steps rho / 261 with 400 stages)."""
    decades = 1.0 + math.log10(1.0 + steps)
    x = rho * steps
    if integrator == "rkc":
        return max(300.0 * decades, x / 261.0 if x > 1e5 else math.sqrt(x / 0.65))
    return max(1600.0 * decades, 6.0 * x / 3.3)


def _stiff_note(p: Problem, n_rhs: float, steps: int, integrator: str) -> str:
    """Why a flow costs ``n_rhs`` evaluations, when stiffness (not accuracy) sets it."""
    typical = _flow_evaluations(steps, integrator, 0.0)
    if n_rhs <= 2.0 * typical:
        return ""
    return (f"; a stiff flow: ~{n_rhs:.2g} right-hand-side evaluations, growing with "
            f"eta0={p.eta0:g}" + (f" and weight_decay={p.weight_decay:g}" if p.weight_decay else ""))


def _data_words(p: Problem) -> float:
    """The sampled arrays (X, X_test, y, y_test, beta, W0) plus the largest draw's temporary."""
    D, P, T = p.D, p.P, p.test_size
    N = p.N if p.finite_width else 0
    return (P + T + N) * D + P + T + D + max(P, T, N) * D


def _reduced(p: Problem, steps: int, method: str, integrator: str,
             theory: bool) -> tuple[float, float, float, str]:
    """(words, flops, overhead seconds, note) of the reduced dynamics (``core.solve``)."""
    D, P, T = p.D, p.P, p.test_size
    r = D + 1 if not p.finite_width or p.N > D + 1 else p.N
    B = P if sgd_mode(p) is None else sgd_batch_size(p)
    init = 2.0 * p.N * (D + 1) if p.finite_width and p.N > D + 1 else 0.0  # thin QR of W0
    # system: inputs in convention-A units, F0, M0; a step: F, V, new F (+ velocity), XF and
    # R on the batch; a save: F, X_test F, M = F F^T and the decomposition's D x D temporaries
    # ... and the tangent-kernel alignment on the training set (P x P, in blocks of 512 rows
    # beyond P = 2048)
    kernel = 5 * P * min(P, 2048) if P <= 2048 else 5 * 512 * P
    loop = max(4 * D * r + 2 * B * r, D * r + T * r + 5 * D * D + kernel)
    words = (P + T) * D + D * r + D * D + max(init, loop)
    step = 4.0 * B * D * r + 6.0 * B * r + (3.0 * B * D * r if sgd_mode(p) == "online" else 0.0)
    save = 2.0 * (T + P) * D * r + 2.0 * D * D * r + 10.0 * D * D + 2.0 * P * P * (r + 4)
    n_save = _n_saves(steps)
    note = ""
    if method == "gd":
        flops, overhead = steps * step + n_save * save, steps * STEP_OVERHEAD
    elif method == "gd-fast":   # strides (3 rhs each), exact GD where they cannot pay, kernels
        n_rhs = min(steps, STRIDE_RHS)
        words += 3 * P * P + 20 * D * r
        flops = (n_rhs * step + STRIDE_REFRESHES * (2.0 * P * P * r + 7.0 * P ** 3)
                 + n_save * save)
        overhead = 4 * n_rhs * STEP_OVERHEAD
    else:   # the Gauss-Newton part of the Jacobian, 2 eta0 lambda_max(X X^T) / P, and decay
        rho = 2.0 * p.eta0 * (1.0 + math.sqrt(P / D)) ** 2 / P + p.eta0 * p.weight_decay
        n_rhs = _flow_evaluations(steps, integrator, rho)
        words += 10 * D * r + (P * P if P <= 2000 else 3 * P * r) + 3 * D * D
        rho = 2.0 * P * P * r + 40.0 * P * P + 2.0 * P * D * D + 2.0 * D ** 3
        flops = n_rhs * 4.0 * P * D * r + n_rhs / 50.0 * rho + n_save * save
        overhead = n_rhs * STEP_OVERHEAD
        note = _stiff_note(p, n_rhs, steps, integrator)
    if theory:   # linearised model (P x P eigh), K0 regression, test kernels per save
        words += 4 * P * P + T * P + 5 * T * T
        flops += 10.0 * P ** 3 + 2.0 * (T + P) * T * D + n_save * (2.0 * T * T * r + 5.0 * T * T)
    return words, flops, overhead, note


def _network(p: Problem, steps: int) -> tuple[float, float, float, str]:
    """(words, flops, overhead seconds, note) of the numpy network (``lazyrich_validation``)."""
    D, P, T, N = p.D, p.P, p.test_size, p.N
    # W, W0, gradient (+ velocity); pre-activations, phi, coefficients; test forward;
    # statistics M, M0, M - M0 at a save; one recorded time per step
    words = 4 * N * D + 3 * P * N + 2 * T * N + 3 * D * D + steps
    flops = steps * (4.0 * P * N * D + 10.0 * P * N) + _n_saves(steps) * (
        2.0 * T * N * D + 2.0 * N * D * D)
    return words, flops, steps * STEP_OVERHEAD, ""


def _population(p: Problem, steps: int, method: str) -> tuple[float, float, float, str]:
    """(words, flops, overhead seconds, note) of the population ODE (``core.population``)."""
    D = p.D
    decay = 2.0 * p.eta0 * p.weight_decay
    if method == "scalar":   # the 2-scalar rates ~ 6 eta0 |eps| / (alpha D) (docs/theory.md §5)
        n_rhs = _flow_evaluations(steps, "dopri5", 6.0 * p.eta0 * abs(p.eps) / (p.alpha * D)
                                  + decay)
        return 64.0 * _n_saves(steps), 1e3 * n_rhs, 0.0, _stiff_note(p, n_rhs, steps, "dopri5")
    r = D + 1 if not p.finite_width or p.N > D + 1 else p.N
    # the linear part of the population gradient, 2 eta0 / D (tolerance 1e-9: ~4x the steps)
    n_rhs = 4.0 * _flow_evaluations(steps, "dopri5", 2.4 * p.eta0 / D + decay)
    words = 12 * D * r + 6 * D * D + r * r
    flops = n_rhs * (4.0 * D * r * r + 2.0 * D * D * r) + _n_saves(steps) * (
        2.0 * D * D * r + 10.0 * D * D)
    return words, flops, n_rhs * STEP_OVERHEAD, _stiff_note(p, n_rhs / 4.0, steps, "dopri5")


def estimate(problem: Problem, steps: int, method: str = "gd", *, integrator: str = "rkc",
             theory: bool = False) -> Estimate:
    """Peak memory and work of one run, before it starts.

    Parameters
    ----------
    problem : Problem
        Its sizes D, P, N, test_size and SGD batch size enter.
    steps : int
        The horizon in GD steps.
    method : str
        One of :data:`ESTIMATE_METHODS`: "gd" (exact GD, heavy ball, SGD), "gd-fast" (the
        strides, at most :data:`STRIDE_RHS` right-hand sides and :data:`STRIDE_REFRESHES`
        kernels), "flow" (adaptive gradient flow), "simulate" (the numpy network), "scalar" / "full" (the
        population ODE).
    integrator : {"rkc", "dopri5"}
        The flow's integrator (its typical number of evaluations).
    theory : bool
        Add the lazy-regime theory of ``solve_with_theory`` (P x P eigendecomposition, test
        kernels at every save).

    Returns
    -------
    Estimate
        Memory counts every array the solver holds at once (the data: (P + T + N) D, the
        reduced factor F (D x r, r = min(N, D + 1)), the D x D statistic M at a save, the
        network's N x D weights and P x N activations, kernels); work counts the matrix
        products per step (4 P D r for the reduced step, 4 P N D for the network's) and per
        save.  An order of magnitude: it is meant to refuse runs that cannot fit, not to
        predict wall time.
    """
    if method not in ESTIMATE_METHODS:
        raise ProblemError(f"estimate method must be one of {', '.join(ESTIMATE_METHODS)}, "
                           f"got {method!r}")
    steps = int(steps)
    if method in ("gd", "gd-fast", "flow"):
        words, flops, overhead, note = _reduced(problem, steps, method, integrator, theory)
    elif method == "simulate":
        words, flops, overhead, note = _network(problem, steps)
    else:
        words, flops, overhead, note = _population(problem, steps, method)
    words += _data_words(problem)
    p = problem
    what = (f"{method}, D={p.D}, P={p.P}, N={p.N:g}, test_size={p.test_size}, "
            f"{steps} steps{note}")
    return Estimate(int(min(words * _WORD, 1e30)), float(flops),
                    float(flops / FLOP_RATE + overhead), what)


def available_memory() -> int | None:
    """Bytes of memory available to a new computation: ``MemAvailable`` of /proc/meminfo,
    else free physical pages (``os.sysconf``); None when neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


#: The way past a refusal, named in its message.
ALLOW_LARGE_HINT = "pass --i-know (Python: allow_large=True) to run anyway"


def check_resources(problem: Problem, steps: int, method: str = "gd", *,
                    allow_large: bool = False, integrator: str = "rkc",
                    theory: bool = False, hint: str = ALLOW_LARGE_HINT) -> Estimate:
    """The run's :func:`estimate`, refused if it exceeds the machine.

    Parameters
    ----------
    problem, steps, method, integrator, theory
        As in :func:`estimate`.
    allow_large : bool
        Skip the refusal (the command line's ``--i-know``).
    hint : str
        The way past a refusal, at the end of its message.

    Returns
    -------
    Estimate
        The estimate.

    Raises
    ------
    ResourceError
        The peak memory exceeds :data:`MEMORY_FRACTION` of :func:`available_memory`, or the
        work exceeds :data:`MAX_SECONDS`; one line stating the estimate.
    """
    est = estimate(problem, steps, method, integrator=integrator, theory=theory)
    if allow_large:
        return est
    avail = available_memory()
    if avail is not None and est.memory > MEMORY_FRACTION * avail:
        raise ResourceError(f"too large for this machine: {est.what} needs "
                            f"~{format_bytes(est.memory)} of memory (estimate), "
                            f"{format_bytes(avail)} available; {hint}", est)
    if est.seconds > MAX_SECONDS:
        raise ResourceError(f"too long: {est.what}: ~{est.flops:.2g} flops, about "
                            f"{format_seconds(est.seconds)} (estimate; limit "
                            f"{format_seconds(MAX_SECONDS)}); {hint}", est)
    return est


_WHY_NOT = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.ENOSPC: "no space left on device",
            errno.EDQUOT: "disk quota exceeded",
            errno.ENOENT: "this file system does not allow creating files"}


def _probe(folder: str) -> None:
    fd, path = tempfile.mkstemp(prefix=".lazyrich-probe-", dir=folder)
    os.close(fd)
    os.unlink(path)


def check_writable(folder: str | os.PathLike, what: str = "output folder",
                   siblings: bool = True) -> None:
    """Make sure ``folder`` can be created and written, by creating and removing a probe file
    (nothing else is created).

    Parameters
    ----------
    folder : path-like
        The output folder; it need not exist.
    what : str
        How to name it in the message (``"--out"``).
    siblings : bool
        The writer also creates temporary siblings of an existing ``folder`` (a folder
        transaction): probe its parent too.

    Raises
    ------
    ProblemError
        One line naming the folder and the cause: a path component that is a file, a
        read-only file system, a permission, no space.
    """
    folder = os.path.abspath(os.fspath(folder))
    base = folder
    while not os.path.exists(base) and os.path.dirname(base) != base:
        base = os.path.dirname(base)
    if not os.path.isdir(base):
        kind = "a file" if os.path.isfile(base) else "not a folder"
        raise ProblemError(f"{what} {folder}: {base} is {kind}, so no folder can be made there")
    places: Sequence[str] = [base]
    if base == folder and siblings:
        if os.path.ismount(folder):
            raise ProblemError(f"{what} {folder} is a mount point: results replace their folder "
                               "by a rename, which a mount point cannot take; use a subfolder")
        places = [folder, os.path.dirname(folder)]
    for place in places:
        try:
            _probe(place)
        except OSError as exc:
            why = _WHY_NOT.get(exc.errno, exc.strerror or str(exc))
            raise ProblemError(f"{what} {folder} is not writable: cannot create a file in "
                               f"{place} ({why})") from None
