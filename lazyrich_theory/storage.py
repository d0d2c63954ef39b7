"""Atomic file writes: a result file is either absent, or complete.

Every writer goes to a temporary file in the destination folder, flushes it to disk and
renames it over the target (``os.replace`` is atomic on POSIX), so an interrupted run never
leaves a half-written file behind and never damages what was there before.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lazyrich_theory.errors import ProblemError

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_write_npz",
           "atomic_write_csv", "read_csv", "jsonable", "decode_float", "folder_transaction",
           "verify_folder", "recover_folder", "MANIFEST", "file_sha256", "process_alive"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call ``write(fileobj)`` on a temporary file, then rename it to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp creates 0600; results are for sharing
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, then rename)."""
    atomic_write(path, lambda f: f.write(text), mode="w")


def jsonable(obj: Any) -> Any:
    """A JSON-safe copy of ``obj``, by the package's one rule for every JSON file it writes.

    Mappings (keys as strings), sequences and numpy arrays become objects and lists; numpy
    scalars become Python numbers; non-finite floats become the strings ``"nan"``, ``"inf"``
    and ``"-inf"`` (strict JSON has no such numbers; :func:`decode_float` reads them back).
    ``None`` stays ``null``: it means "not applicable", which is not the same as NaN.
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return obj


def decode_float(v: Any) -> float:
    """Inverse of :func:`jsonable` for a number: ``"nan"``/``"inf"``/``"-inf"`` strings and
    numbers to float; ``None`` to NaN."""
    if v is None:
        return math.nan
    return float(v)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write :func:`jsonable` ``(obj)`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, sort_keys=True,
                                       allow_nan=False) + "\n")


def atomic_write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays to an ``.npz`` at ``path`` atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write_csv(path: str | os.PathLike, header: Sequence[str],
                     columns: Sequence[np.ndarray]) -> None:
    """Write equal-length columns as CSV with a header row (full float64 precision)."""
    n = len(columns[0]) if columns else 0
    if any(len(c) != n for c in columns):
        raise ValueError("CSV columns must have equal lengths")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i in range(n):
        w.writerow([_fmt(c[i]) for c in columns])
    atomic_write_text(path, buf.getvalue())


def _fmt(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def read_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a numeric CSV with a header row into a dict of float64 columns."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    data = np.array([[float(x) for x in r] for r in body], dtype=np.float64).reshape(
        len(body), len(header))
    return {h: data[:, j].copy() for j, h in enumerate(header)}


# ----------------------------------------------------------------- folders as transactions
#: Written last into every transactional folder: the name and SHA-256 of each file.
MANIFEST = "manifest.json"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's contents, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` is running on this host.  A zombie (dead, not yet reaped by its
    parent; state Z in /proc on Linux) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:  # pragma: no cover - e.g. Windows without such a process
        return False
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    return True


def _siblings(folder: str, kind: str) -> list[str]:
    parent, name = os.path.split(os.path.abspath(folder))
    prefix = f".{name}.{kind}-"
    try:
        entries = os.listdir(parent)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(parent, e) for e in entries if e.startswith(prefix))


def _owner_dead(path: str) -> bool:
    """A sibling named ``.NAME.KIND-PID-RANDOM`` whose writer process is gone."""
    try:
        pid = int(os.path.basename(path).split("-")[1])
    except (IndexError, ValueError):
        return True
    return not process_alive(pid)


def recover_folder(folder: str | os.PathLike) -> None:
    """Finish or undo a folder swap that a killed process left half done, and remove the stale
    temporaries of dead writers (see :func:`folder_transaction`).

    If ``folder`` is missing but a complete new version (one with a manifest) waits beside it,
    that version is moved into place; else a saved old version is moved back.
    """
    folder = os.path.abspath(os.fspath(folder))
    if not os.path.exists(folder):
        done = [p for p in _siblings(folder, "tmp") if _owner_dead(p)
                and os.path.isfile(os.path.join(p, MANIFEST))]
        old = [p for p in _siblings(folder, "old") if _owner_dead(p)]
        if done:
            os.rename(done[-1], folder)
        elif old:
            os.rename(old[-1], folder)
    for kind in ("tmp", "old"):
        for p in _siblings(folder, kind):
            if _owner_dead(p):
                shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def folder_transaction(folder: str | os.PathLike, keep: Sequence[str] = ()):
    """Write a whole result folder or nothing.

    Yields a new, empty sibling folder ``.NAME.tmp-PID-XXXX`` to write the files into.  On
    success the files named in ``keep`` that exist in the old ``folder`` and were not written
    are carried over (hard links, else copies), a :data:`MANIFEST` with every file's SHA-256
    is written last, and the new folder replaces the old one by two renames
    (``folder -> .NAME.old-...``, ``tmp -> folder``), after which the old one is deleted.  A
    kill at any instant leaves either the old complete folder or the new complete one
    (:func:`recover_folder`, which :func:`verify_folder` and the next transaction call, puts
    the right one in place); on an exception the temporary folder is removed and ``folder``
    is untouched.
    """
    folder = os.path.abspath(os.fspath(folder))
    parent, name = os.path.split(folder)
    os.makedirs(parent, exist_ok=True)
    recover_folder(folder)
    tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=parent)
    try:
        yield tmp
        for fname in keep:
            src, dst = os.path.join(folder, fname), os.path.join(tmp, fname)
            if os.path.isfile(src) and not os.path.exists(dst):
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
        files = sorted(f for f in os.listdir(tmp) if f != MANIFEST)
        atomic_write_text(os.path.join(tmp, MANIFEST), json.dumps(
            {"files": {f: file_sha256(os.path.join(tmp, f)) for f in files}}, indent=2) + "\n")
        os.chmod(tmp, 0o777 & ~_UMASK)          # mkdtemp makes 0700; results are for sharing
        if os.path.exists(folder):
            old = tempfile.mkdtemp(prefix=f".{name}.old-{os.getpid()}-", dir=parent)
            os.rmdir(old)
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def verify_folder(folder: str | os.PathLike) -> None:
    """Raise ``ProblemError`` unless every file listed in the folder's manifest is present with
    its recorded SHA-256 (folders written before manifests existed pass unchecked)."""
    recover_folder(folder)
    folder = os.fspath(folder)
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return
    try:
        with open(path) as f:
            listed = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ProblemError(f"{folder}: unreadable {MANIFEST}; the folder may be damaged") from None
    for fname, digest in listed.items():
        fpath = os.path.join(folder, fname)
        if not os.path.isfile(fpath) or file_sha256(fpath) != digest:
            raise ProblemError(f"{folder}: {fname} does not match the manifest (files of "
                               "different runs are mixed, or one was edited); re-run to rewrite it")
