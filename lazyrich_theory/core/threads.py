"""BLAS thread control: threads chosen per operation size and by the cores free now.

Multi-threaded BLAS (OpenBLAS here) pays off only for large products on idle cores.  For
small products, waking the BLAS threads between the interleaved Numba kernels costs more than
the second core gains (Figure 1 flow, 2 cores: 1.9 s single-threaded vs 3.6 s threaded), and on
a busy machine the spinning threads steal the cores other processes need: with load ~7 on 2
cores, 1,000 exact GD steps of Figure 1 took 25-27 s with the default threads and 2-4 s with
one.  So every solver wraps its work in :func:`blas_threads` with the flop count of its typical
product:

* below :data:`SINGLE_THREAD_FLOPS` flops per call (Figure 1: GD step and flow right-hand side
  2.2e7, the lazy theory's eigendecomposition ~1.5e9 / many small calls): one thread;
* above: as many threads as there are cores free *now* (the CPUs this process may use minus
  the other runnable tasks, :func:`free_cores`), at least one and never more than the BLAS
  already allows (``OPENBLAS_NUM_THREADS``, an enclosing ``threadpool_limits``).

Numba's own loops here are serial, except the population grid (``prange``), which keeps
Numba's threading, and the per-sample loops of the offline DMFTs (``prange``), which run in
:func:`numba_threads` (:func:`free_cores`): one thread on a busy machine.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, TypeVar

if TYPE_CHECKING:
    from lazyrich_theory.core.reduced import ReducedSystem

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["blas_threads_for", "blas_threads", "one_blas_thread", "map_on_free_cores",
           "threads_for", "free_cores", "usable_cores", "rhs_flops", "numba_threads",
           "SINGLE_THREAD_FLOPS"]


#: Below this many flops per BLAS call everything runs single-threaded (see the module
#: docstring).  Measured on this 2-core machine: the Figure 1 flow (2.2e7 per right-hand side)
#: is ~2x faster single-threaded; products of ~1e9 flops and more gain from a free second core.
SINGLE_THREAD_FLOPS = 1e8


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):          # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _own_runnable() -> int:
    """This process's runnable threads now, at least 1 (the reader); Linux: the state field of
    /proc/self/task/*/stat.  They must not count as other tasks: OpenBLAS's worker threads
    keep spinning (state R) for a while after a threaded call, and a process that had just
    run one would otherwise see its own idle BLAS threads as load and take a single core."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                text = fh.read()
        except OSError:                        # the thread has exited meanwhile
            continue
        count += text[text.rfind(")") + 2:text.rfind(")") + 3] == "R"
    return max(1, count)


def _runnable_others(samples: int = 3) -> int:
    """Runnable tasks on the machine now, other than this process's own threads (Linux: the
    4th field of /proc/loadavg counts the running and runnable tasks including the reader,
    minus :func:`_own_runnable`; elsewhere the 1-minute load average minus one).  The count
    is a snapshot that a kernel worker or a thread just exiting can raise for a moment, so a
    nonzero reading is taken again, up to ``samples`` readings 0.5 ms apart, and the least is
    kept: a steady load shows in every one (cost: ~0.1 ms on a quiet machine, ~1 ms on a busy
    one)."""
    try:
        least = None
        for k in range(samples):
            if k:
                time.sleep(5e-4)
            with open("/proc/loadavg") as fh:
                running = int(fh.read().split()[3].split("/")[0])
            others = max(0, running - _own_runnable())
            least = others if least is None else min(least, others)
            if least == 0:
                break
        return least
    except (OSError, ValueError, IndexError):
        try:
            return max(0, int(round(os.getloadavg()[0])) - 1)
        except (AttributeError, OSError):      # pragma: no cover
            return 0


def free_cores() -> int:
    """Cores free for this process now: usable CPUs minus the other runnable tasks, >= 1."""
    return max(1, usable_cores() - _runnable_others())


def threads_for(flops: float) -> int:
    """BLAS threads for calls of about ``flops`` floating-point operations each.

    Parameters
    ----------
    flops : float
        Work per BLAS call.

    Returns
    -------
    int
        1 below :data:`SINGLE_THREAD_FLOPS`, else the cores free now (:func:`free_cores`).
    """
    if not flops >= SINGLE_THREAD_FLOPS:
        return 1
    return free_cores()


def _blas_max_threads(controller) -> int:
    info = controller.select(user_api="blas").info()
    return min((int(lib.get("num_threads") or 1) for lib in info), default=1)


def blas_threads(flops: float) -> ContextManager:
    """A context in which BLAS uses :func:`threads_for` (``flops``) threads, never more than it
    already would (an enclosing limit or ``OPENBLAS_NUM_THREADS`` is kept).

    Parameters
    ----------
    flops : float
        Work per BLAS call of the enclosed computation.

    Returns
    -------
    context manager
        A ``threadpoolctl`` limit, or a no-op when nothing changes.
    """
    from threadpoolctl import ThreadpoolController

    n = threads_for(flops)
    controller = ThreadpoolController()     # fresh: scipy may have loaded its own BLAS since
    if n >= _blas_max_threads(controller):
        return contextlib.nullcontext()
    return controller.limit(limits=n, user_api="blas")


def one_blas_thread() -> ContextManager:
    """A context in which BLAS runs single-threaded: for independent solves run side by side in
    a thread pool, one per free core (:func:`free_cores`), where threaded BLAS inside each would
    only oversubscribe the cores.  The limit is process-wide (threadpoolctl), so it is entered
    once around the pool, never inside its workers."""
    return blas_threads(0.0)


def map_on_free_cores(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, the calls side by side in a thread pool of one worker per
    core free now (:func:`free_cores`), BLAS single-threaded in them (:func:`one_blas_thread`);
    one after the other, BLAS as its callee chooses, when one core is free.  For independent
    solves whose time is spent in NumPy/SciPy (they release the GIL): the interpolant's convex
    solves run 1.7-2.1x faster on 2 free cores than one after the other with threaded BLAS
    (benchmarks/critical_speed.md).  Results in the order of ``items``; the first exception
    raised by a call propagates.  ``fn`` must not change global state (a BLAS limit, Numba's
    thread count): the workers share it."""
    items = list(items)
    workers = min(len(items), free_cores())
    if workers <= 1:
        return [fn(x) for x in items]
    with one_blas_thread(), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def rhs_flops(system: "ReducedSystem") -> float:
    """Flops of one right-hand side / exact GD step: X F and X^T R, 4 P D r."""
    P, D = system.X.shape
    return 4.0 * P * D * system.F0.shape[1]


def blas_threads_for(system: "ReducedSystem") -> ContextManager:
    """:func:`blas_threads` for the system's right-hand side (or GD step), 4 P D r flops.

    The right-hand side is two products of about 2 P D r flops each; the rule uses their
    total, so Figure 1 (2.2e7) runs single-threaded."""
    return blas_threads(rhs_flops(system))


#: Held while a parallel Numba kernel runs: Numba's fallback threading layer (``workqueue``,
#: used when neither OpenMP nor TBB is installed) aborts the process when two Python threads
#: launch parallel kernels at once, so such launches from threads (a thread-pool sweep) queue.
_PARALLEL_LOCK = threading.RLock()


@contextlib.contextmanager
def numba_threads(n: int):
    """A context in which Numba's parallel loops use ``n`` threads (at least one, at most
    ``NUMBA_NUM_THREADS``), restoring the caller's setting afterwards (library code leaves
    global state alone).  Callers pass :func:`free_cores`, so a busy machine gets one.  One
    Python thread at a time holds it (see ``_PARALLEL_LOCK``)."""
    import numba

    with _PARALLEL_LOCK:
        old = numba.get_num_threads()
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(old)
