"""Where a sweep's cells run: in-process, a local process pool, any
``concurrent.futures.Executor``, or a Dask distributed client.

Every cell is computed by :func:`cell_task`, which also stores it when the executor's workers
can write to the sweep's folder.  Functions registered with
:func:`lazyrich_theory.spec.targets.register` live in the registry of the process that
registered them; worker processes start with an empty one, so the registered functions the
cells name travel with each task (pickled by reference: module-level functions of importable
modules), and a function that cannot be pickled is refused before any cell runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import functools
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import uuid
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Mapping, Sequence

from lazyrich_theory.core.trackers import progress_bar
from lazyrich_theory.errors import ProblemError, SweepError
from lazyrich_theory.experiments.sweep.cells import (
    cell_path,
    file_sha256,
    load_cell,
    log_computed,
    logged_ids,
    store_cell,
)
from lazyrich_theory.experiments.sweep.folder import process_alive
from lazyrich_theory.spec import targets

__all__ = ["Runner", "execute", "cell_task", "default_workers", "pack_targets",
           "connect_scheduler", "executor_workers", "is_dask_client"]

CellFn = Callable[[Mapping[str, Any]], dict]


# ---------------------------------------------------------------------------------- tasks
def pack_targets(specs: Sequence[Mapping[str, Any]]) -> bytes | None:
    """The registered target functions (``func:NAME``) that these cells name, pickled for the
    workers; None when they name none.  ProblemError (one line) if one cannot be pickled."""
    registry = targets.registered()
    names = set()
    for spec in specs:
        sp = targets.parse_spec(spec["problem"].get("target", "paper"))
        if sp.family == "func" and ":" not in sp.ref and sp.ref in registry:
            names.add(sp.ref)
    if not names:
        return None
    snapshot = {name: registry[name] for name in sorted(names)}
    for name, fn in snapshot.items():
        try:
            pickle.dumps(fn)
        except Exception as exc:  # noqa: BLE001 - PicklingError, AttributeError, TypeError...
            why = str(exc).splitlines()[0] if str(exc) else ""
            raise ProblemError(
                f"target function {name!r} (targets.register) cannot be sent to worker "
                f"processes ({type(exc).__name__}: {why}); define it at module level in an "
                "importable module, or run the sweep with workers=1") from None
    return pickle.dumps(snapshot)


def _install_targets(packed: bytes | None) -> None:
    """Register (in this worker) the target functions packed by :func:`pack_targets`."""
    if packed is None:
        return
    try:
        snapshot = pickle.loads(packed)
    except Exception as exc:  # noqa: BLE001 - e.g. the function's module is not importable here
        why = str(exc).splitlines()[0] if str(exc) else ""
        raise ProblemError(f"the registered target functions cannot be loaded in worker "
                           f"process {os.getpid()} ({type(exc).__name__}: {why}); define them "
                           "in an importable module, or run the sweep with workers=1") from None
    targets.restore_registered(snapshot)


def cell_task(cell_fn: CellFn, spec: Mapping[str, Any], out: str | None,
              packed_targets: bytes | None = None) -> dict[str, Any]:
    """What a worker runs: register the shipped target functions, compute the cell and (if
    ``out``) store it before returning.  The record names the cell's id and problem and, with
    a data file, the SHA-256 of the contents it was computed from."""
    _install_targets(packed_targets)
    record = dict(cell_fn(spec))
    record["id"] = spec["id"]
    record.setdefault("problem", spec["problem"])
    record.setdefault("pid", os.getpid())
    data_file = spec["problem"].get("data_file")
    if data_file is not None:
        record["data_sha256"] = file_sha256(data_file)
    if out is not None:
        store_cell(out, record)
    return record


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Runner:
    """Collects finished cells, writes them, drives the progress bar."""

    def __init__(self, out: str | None, total: int, done: int, progress: bool,
                 retries: int, data_sha256: str | None = None,
                 warn: Callable[[str], None] | None = None):
        self.out = out
        self.records: dict[str, dict] = {}
        self.failed: dict[str, str] = {}
        self.computed = 0
        self.retries = retries
        self.data_sha256 = data_sha256
        self.warn = warn or (lambda message: None)
        self.bar = _progress_bar(total, done) if progress else None

    def finish(self, record: dict, stored: bool) -> None:
        """Record a finished cell (and store it, unless the worker did)."""
        cid = record["id"]
        if self.out is not None and not stored and not os.path.isfile(cell_path(self.out, cid)):
            store_cell(self.out, record)
        self.records[cid] = record
        self.computed += 1
        if self.bar is not None:
            self.bar.update(1)

    def fail(self, cid: str, message: str) -> None:
        """Give up on a cell."""
        self.failed[cid] = message
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        """Close the progress bar."""
        if self.bar is not None:
            self.bar.close()


def _progress_bar(total: int, done: int):
    """The cells' progress: a tqdm bar on a terminal or in a notebook, else one line on stderr
    every few seconds (:func:`~lazyrich_theory.core.trackers.progress_bar`)."""
    return progress_bar(total, "phase", "cell", initial=done, dynamic_ncols=True, smoothing=0.1)


# ---------------------------------------------------------------------------------- dispatch
def execute(specs: Sequence[Mapping[str, Any]], cell_fn: CellFn, runner: Runner, *,
            executor: Any = None, scheduler: Any = None, workers: int | None = None,
            shared_fs: bool | None = None, custom_cell_fn: bool = False) -> None:
    """Compute the cells ``specs`` on the executor the options name (see ``sweep``); a single
    cell of the default cell function runs in-process."""
    if not specs:
        return
    if scheduler is not None or is_dask_client(executor):
        packed = pack_targets(specs)
        client, own = _dask_client(executor if executor is not None else scheduler)
        try:
            _run_dask(specs, cell_fn, runner, client, bool(shared_fs), packed)
        finally:
            if own:
                client.close()
    elif executor is not None:
        # threads share this process's registry: nothing to ship (nor to pickle)
        packed = None if isinstance(executor, cf.ThreadPoolExecutor) else pack_targets(specs)
        _run_executor(specs, cell_fn, runner, executor, shared_fs is not False, packed)
    else:
        n = default_workers() if workers is None else workers
        if n == 1 or len(specs) == 1 and not custom_cell_fn:
            _run_serial(specs, cell_fn, runner)
        else:
            _run_pool(specs, cell_fn, runner, min(n, len(specs)), pack_targets(specs))


def default_workers() -> int:
    """The number of CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def executor_workers(executor: Any = None, scheduler: Any = None,
                     workers: int | None = None) -> int | None:
    """How many cells run at once: ``workers`` (default :func:`default_workers`) for the local
    pool, a ``concurrent.futures`` pool's size, a Dask client's worker count; None when
    unknown (a scheduler address not yet connected, another executor)."""
    target = executor if executor is not None else scheduler
    if target is None:
        return default_workers() if workers is None else workers
    if is_dask_client(target):
        try:
            return max(1, len(target.scheduler_info().get("workers", {})))
        except Exception:  # noqa: BLE001 - a client that cannot answer: unknown
            return None
    size = getattr(target, "_max_workers", None)
    return size if isinstance(size, int) and size > 0 else None


def _run_serial(specs, cell_fn: CellFn, runner: Runner) -> None:
    for spec in specs:
        attempts = 0
        while True:
            try:
                rec = cell_task(cell_fn, spec, runner.out)
                runner.finish(rec, stored=runner.out is not None)
                break
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001
                attempts += 1
                if attempts > runner.retries:
                    runner.fail(spec["id"], _failure(exc))
                    break


# ---------------------------------------------------------------------------------- local pool
def _worker_init(main_pid: int, alive: Any = None) -> None:
    """Process-pool worker set-up: leave Ctrl-C to the parent, and die as soon as the sweep's
    main process does (kill -9 included, and while it is an unreaped zombie), so that no
    orphan goes on computing and writing cells.  The worker's parent is the forkserver, which
    may outlive the main process, so PR_SET_PDEATHSIG (Linux) is not enough: a watchdog
    thread watches the main process itself (:func:`_watchdog`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:  # noqa: BLE001 - best effort; the watchdog is the rule
            pass
    threading.Thread(target=_watchdog, args=(main_pid, alive), name="lazyrich-watchdog",
                     daemon=True).start()


def _watchdog(main_pid: int, alive: Any) -> None:
    """Exit this worker (``os._exit``) once the main process is gone: end of file on
    ``alive``, the read end of a pipe whose only writer is the main process (the kernel closes
    it when that process dies, zombie or not: portable), or ``main_pid`` no longer running
    (:func:`~lazyrich_theory.experiments.sweep.folder.process_alive`, which sees zombies on
    Linux)."""
    while True:
        if alive is None:
            time.sleep(0.2)
        else:
            try:
                if alive.poll(0.2):  # nothing is ever sent: readable means end of file
                    os._exit(1)
            except (OSError, EOFError):
                os._exit(1)
        if not process_alive(main_pid):
            os._exit(1)


def _kill_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: kill its worker processes (a private attribute, best effort)."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            p.kill()
        except Exception:  # noqa: BLE001
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _pool_context():
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload([__package__])   # workers start with the sweep imported
    return ctx


def _run_pool(specs, cell_fn: CellFn, runner: Runner, workers: int,
              packed: bytes | None) -> None:
    """A local process pool; a broken pool (a worker died) is replaced and the unfinished
    cells resubmitted.  After ``retries`` breaks, cells run one at a time so that a cell that
    kills its worker every time is identified and given up on after ``retries`` + 1 tries."""
    ctx = _pool_context()
    task = functools.partial(cell_task, cell_fn, out=runner.out, packed_targets=packed)
    pending = {s["id"]: s for s in specs}
    attempts = {cid: 0 for cid in pending}
    breaks = 0
    alive, alive_w = ctx.Pipe(duplex=False)  # workers see EOF on `alive` when this process dies
    try:
        while pending:
            isolate = breaks > runner.retries
            n = 1 if isolate else min(workers, len(pending))
            pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx,
                                          initializer=_worker_init,
                                          initargs=(os.getpid(), alive))
            breaks += _pool_round(pool, task, pending, attempts, runner, isolate)
    finally:
        alive_w.close()
        alive.close()


def _pool_round(pool: cf.ProcessPoolExecutor, task, pending: dict, attempts: dict,
                runner: Runner, isolate: bool) -> int:
    """Run the pending cells on ``pool`` until they are done (0) or the pool breaks (1)."""
    try:
        if isolate:
            _pool_one_at_a_time(pool, task, pending, attempts, runner)
        else:
            _pool_all_at_once(pool, task, pending, attempts, runner)
    except BrokenProcessPool:
        _kill_pool(pool)
        _collect_stored(pending, runner)
        return 1
    except BaseException:
        _kill_pool(pool)
        raise
    pool.shutdown(wait=True)
    return 0


def _attempt_failed(cid: str, message: str, pending: dict, attempts: dict,
                    runner: Runner) -> bool:
    """Count a failed try of cell ``cid``; True (and the cell given up on) after ``retries``."""
    attempts[cid] += 1
    if attempts[cid] > runner.retries:
        runner.fail(cid, message)
        del pending[cid]
        return True
    return False


def _pool_one_at_a_time(pool, task, pending: dict, attempts: dict, runner: Runner) -> None:
    for cid in list(pending):
        fut = pool.submit(task, pending[cid])
        try:
            rec = fut.result()
        except BrokenProcessPool:
            _attempt_failed(cid, "the worker process died computing this cell", pending,
                            attempts, runner)
            raise
        except Exception as exc:  # noqa: BLE001
            _attempt_failed(cid, _failure(exc), pending, attempts, runner)
            continue
        runner.finish(rec, stored=runner.out is not None)
        del pending[cid]


def _pool_all_at_once(pool, task, pending: dict, attempts: dict, runner: Runner) -> None:
    futs = {pool.submit(task, s): cid for cid, s in pending.items()}
    while futs:
        done, _ = cf.wait(list(futs), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            cid = futs.pop(fut)
            try:
                rec = fut.result()
            except BrokenProcessPool:
                raise
            except Exception as exc:  # noqa: BLE001
                if not _attempt_failed(cid, _failure(exc), pending, attempts, runner):
                    futs[pool.submit(task, pending[cid])] = cid
                continue
            runner.finish(rec, stored=runner.out is not None)
            del pending[cid]


def _collect_stored(pending: dict, runner: Runner) -> None:
    """Cells a worker finished and stored before the pool broke are not redone.  A worker
    killed between storing its cell and logging it left no line in computed.log: the line
    is written here, so that the log names every cell computed once."""
    if runner.out is None:
        return
    logged = logged_ids(runner.out)
    for cid in list(pending):
        rec, why = load_cell(runner.out, pending[cid], runner.data_sha256)
        if why is not None:
            runner.warn(why)
        if rec is not None:
            if cid not in logged:
                log_computed(runner.out, cid, rec.get("pid", os.getpid()))
            runner.finish(rec, stored=True)
            del pending[cid]


# ---------------------------------------------------------------------------------- others
def _run_executor(specs, cell_fn: CellFn, runner: Runner, executor: cf.Executor,
                  shared_fs: bool, packed: bytes | None) -> None:
    """Any concurrent.futures-style executor (submit + futures)."""
    out = runner.out if shared_fs else None
    attempts = {s["id"]: 0 for s in specs}
    by_id = {s["id"]: s for s in specs}
    futs = {executor.submit(cell_task, cell_fn, s, out, packed): s["id"] for s in specs}
    while futs:
        done, _ = cf.wait(list(futs), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            cid = futs.pop(fut)
            try:
                rec = fut.result()
            except cf.BrokenExecutor as exc:
                for f in futs:
                    f.cancel()
                raise SweepError(f"the executor broke ({exc}); the cells done so far are "
                                 "saved: run the sweep again to resume") from None
            except Exception as exc:  # noqa: BLE001
                attempts[cid] += 1
                if attempts[cid] > runner.retries:
                    runner.fail(cid, _failure(exc))
                else:
                    futs[executor.submit(cell_task, cell_fn, by_id[cid], out, packed)] = cid
                continue
            runner.finish(rec, stored=out is not None)


def is_dask_client(obj: Any) -> bool:
    """Whether ``obj`` is a ``distributed.Client`` (without importing Dask)."""
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _dask_client(client_or_address: Any) -> tuple[Any, bool]:
    """(client, whether this sweep opened it and must close it) for a ``distributed.Client``
    or a scheduler address (:func:`connect_scheduler`)."""
    if not isinstance(client_or_address, str):
        return client_or_address, False
    return connect_scheduler(client_or_address), True


def connect_scheduler(address: str) -> Any:
    """A ``distributed.Client`` connected to the Dask scheduler at ``address``.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``tcp://host:8786``.

    Returns
    -------
    distributed.Client
        The caller closes it.

    Raises
    ------
    ProblemError
        One line: Dask is not installed, the address is malformed (no port, unknown
        protocol) or the scheduler cannot be reached.
    """
    try:
        # imported here: Dask is an optional dependency (the [dask] extra)
        from distributed import Client
    except ImportError:
        raise ProblemError("--scheduler needs Dask: pip install "
                           "'lazyrich_theory[dask]'") from None
    try:
        return Client(address, timeout="20s")
    except (ValueError, TypeError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ProblemError(f"--scheduler {address!r} is not a Dask scheduler address ({why}); "
                           "expected e.g. tcp://host:8786") from None
    except OSError as exc:
        raise ProblemError(f"cannot reach Dask scheduler {address}: {exc}") from None


def _run_dask(specs, cell_fn: CellFn, runner: Runner, client, shared_fs: bool,
              packed: bytes | None) -> None:
    """A Dask distributed client: one task per cell, ``retries`` on exceptions; the scheduler
    itself reschedules the task of a worker that dies (up to its allowed-failures)."""
    # imported here: Dask is an optional dependency (the [dask] extra)
    from distributed import as_completed

    out = runner.out if shared_fs else None
    token = uuid.uuid4().hex[:8]  # fresh keys: never a result cached from an earlier sweep
    futs, key2id = [], {}
    for s in specs:
        f = client.submit(cell_task, cell_fn, s, out, packed,
                          key=f"lazyrich-cell-{s['id']}-{token}", retries=runner.retries,
                          pure=False)
        futs.append(f)
        key2id[f.key] = s["id"]
    try:
        for fut in as_completed(futs):
            cid = key2id[fut.key]
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - includes KilledWorker
                runner.fail(cid, _failure(exc))
                continue
            runner.finish(rec, stored=out is not None)
    except BaseException:
        client.cancel(futs)
        raise
