"""A sweep's output folder: its lock, its identity (``sweep.json``) and the cells it already
holds, each verified before it is resumed.

* **Lock.** ``DIR/sweep.lock`` (pid, host and start time of the sweep that holds it) is locked
  with ``flock`` for the whole run, so a second sweep on the same folder is refused with one
  line.  The kernel releases the lock when its process dies (``kill -9`` included), so a
  leftover file is never mistaken for a running sweep; where the file system has no
  ``flock``, a lock whose pid is no longer running on this host is taken over.
* **Identity.** ``sweep.json`` holds the configuration (with the SHA-256 of the ``--data``
  file's contents); a different one is refused.  A corrupt or missing ``sweep.json`` next to
  stored cells is reported with the way to keep them (``recover=True`` / ``--recover``).
* **Cells.** A stored cell is resumed only if it carries its id, its problem and the checksum
  of its payload (:func:`~lazyrich_theory.experiments.sweep.cells.cell_problem`); any other
  file is set aside (``.rejected``) and the cell computed again, with a one-line warning.

Folders written before checksums existed (their ``sweep.json`` has no ``integrity`` field)
still resume: their cells are checked by id and problem only, and the data file's hash is
added to their ``sweep.json`` the first time they are resumed.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from typing import Any, Callable, Mapping, Sequence

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.sweep.cells import load_cell, remove_stale_temporaries
from lazyrich_theory.storage import atomic_write_json, process_alive

try:  # POSIX; elsewhere the lock is judged by its pid only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderLock", "LOCK_FILE", "INTEGRITY", "open_folder", "process_alive",
           "check_out"]

#: The lock file of a sweep's output folder.
LOCK_FILE = "sweep.lock"
#: Version of the integrity scheme (cell checksums, data hash); recorded in sweep.json.
INTEGRITY = 1

Warn = Callable[[str], None]


# ---------------------------------------------------------------------------------- processes
# ---------------------------------------------------------------------------------- lock
class FolderLock:
    """The lock of one output folder, held from :meth:`acquire` to :meth:`release` (or as a
    context manager).  A folder that another running sweep holds raises ProblemError."""

    def __init__(self, out: str):
        self.out = out
        self.path = os.path.join(out, LOCK_FILE)
        self.fd: int | None = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> "FolderLock":
        """Take the lock (ProblemError, one line, if another sweep holds it)."""
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                         0o666)
            try:
                busy = self._lock(fd)
                if busy is None and not _same_file(fd, self.path):
                    os.close(fd)  # the previous holder removed the file meanwhile: again
                    continue
            except BaseException:
                os.close(fd)
                raise
            if busy is not None:
                os.close(fd)
                raise ProblemError(busy)
            holder = {"pid": os.getpid(), "host": socket.gethostname(),
                      "since": datetime.datetime.now().isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(holder) + "\n").encode())
            self.fd = fd
            return self
        raise ProblemError(f"cannot lock {self.path}: it keeps being replaced")  # pragma: no cover

    def _lock(self, fd: int) -> str | None:
        """Lock ``fd``; the one-line refusal if another sweep holds it, else None."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return None
            except BlockingIOError:
                return self._busy(_read_holder(fd), certain=True)
            except OSError:
                pass  # no flock on this file system: judge by the recorded pid
        holder = _read_holder(fd)
        if holder is None or holder.get("pid") == os.getpid():
            return None
        if holder.get("host") == socket.gethostname() and not process_alive(int(holder["pid"])):
            return None  # a stale lock: its sweep is gone
        return self._busy(holder, certain=False)

    def _busy(self, holder: Mapping[str, Any] | None, certain: bool) -> str:
        who = ("another process" if holder is None else
               f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}")
        tail = ("" if certain else
                f"; if no sweep is running there, delete {self.path}")
        return (f"{self.out} is in use by another sweep ({who}): one sweep per folder at a "
                f"time; wait for it to finish or use another --out{tail}")

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def check_out(out: str) -> None:
    """Create the folder ``out`` (ProblemError, one line, if it cannot be a sweep's folder)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ProblemError(f"--out {out} exists and is not a folder")
    try:
        os.makedirs(os.path.join(out, "cells"), exist_ok=True)
    except OSError as exc:
        raise ProblemError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK) or not os.access(os.path.join(out, "cells"), os.W_OK):
        raise ProblemError(f"cannot write to --out {out}: permission denied")


# ---------------------------------------------------------------------------------- identity
def _read_config(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """(sweep.json's content, None); (None, None) if absent; (None, why) if unreadable."""
    if not os.path.exists(path):
        return None, None
    try:
        with open(path) as f:
            old = json.load(f)
    except ValueError as exc:
        return None, str(exc).splitlines()[0]
    except OSError as exc:
        return None, exc.strerror or str(exc)
    if not isinstance(old, dict):
        return None, "not a JSON object"
    return old, None


def _compare(out: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Refuse a folder whose sweep.json is another sweep (one line)."""
    skip = {"integrity"} | ({"data_sha256"} if "data_sha256" not in old else set())
    a = {k: v for k, v in old.items() if k not in skip}
    b = {k: v for k, v in json.loads(json.dumps(dict(new))).items() if k not in skip}
    if a == b:
        return
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff == ["data_sha256"]:
        data = (new.get("base_problem") or {}).get("data_file")
        raise ProblemError(f"{out} holds a sweep of other contents of the data file {data} "
                           "(its SHA-256 differs); use another --out for the new data")
    raise ProblemError(f"{out} holds a different sweep (differs in: {', '.join(diff)}); "
                       "use another --out to keep both")


def _stored_cells(out: str) -> int:
    folder = os.path.join(out, "cells")
    if not os.path.isdir(folder):
        return 0
    return sum(1 for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("."))


def _recover_message(out: str, why: str | None, n: int) -> str:
    what = (f"{os.path.join(out, 'sweep.json')} is corrupt ({why})" if why is not None
            else f"{out} holds {n} stored cell(s) but no sweep.json")
    return (f"{what}; to keep the {n} finished cell(s), run the same command again with "
            "--recover (Python: sweep(..., recover=True)): it rewrites sweep.json from that "
            "command and reuses only the cells that verify as its own; or use another --out")


def open_folder(out: str, config: Mapping[str, Any], cells: Sequence[Mapping[str, Any]],
                recover: bool = False, warn: Warn | None = None) -> dict[str, dict]:
    """Check the folder's sweep.json (writing it for a new sweep, or rewriting it with
    ``recover``) and read the verified cells already stored there: {cell id: record}.

    Call it under the folder's :class:`FolderLock`, after :func:`check_out`.
    """
    say = warn or (lambda msg: None)
    path = os.path.join(out, "sweep.json")
    old, why = _read_config(path)
    n_stored = _stored_cells(out)
    recovering = False
    if old is None and (why is not None or n_stored):
        if not recover:
            raise ProblemError(_recover_message(out, why, n_stored))
        recovering = True
        say(f"recovering {out}: sweep.json rewritten from this sweep; stored cells are "
            "reused only if their id, problem and checksum match it")
    elif old is not None:
        _compare(out, old, config)
    legacy = recovering or (old is not None and "integrity" not in old)
    if old is not None and "data_sha256" in config and "data_sha256" not in old:
        say(f"{path} predates data-file hashing: the cells stored so far cannot be checked "
            "against the data file's contents; its hash is recorded from now on")
        atomic_write_json(path, {**old, "data_sha256": config["data_sha256"]})
    remove_stale_temporaries(os.path.join(out, "cells"))
    done = _verified_cells(out, cells, config.get("data_sha256"), legacy, say)
    if old is None:
        written = dict(config)
        if any("checksum" not in rec for rec in done.values()):
            written.pop("integrity", None)  # recovered legacy cells: the folder stays legacy
        atomic_write_json(path, written)
    return done


def _verified_cells(out: str, cells: Sequence[Mapping[str, Any]], data_sha256: str | None,
                    legacy: bool, say: Warn) -> dict[str, dict]:
    """{id: record} of the stored cells that verify as ``cells``; the others are set aside
    with one warning line each."""
    done: dict[str, dict] = {}
    for spec in cells:
        if spec["id"] in done:
            continue
        rec, msg = load_cell(out, spec, data_sha256, legacy)
        if msg is not None:
            say(msg)
        if rec is not None:
            done[spec["id"]] = rec
    return done
