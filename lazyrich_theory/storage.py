"""Atomic file writes: a result file is either absent, or complete.

Every writer goes to a temporary file in the destination folder, flushes it to disk and
renames it over the target (``os.replace`` is atomic on POSIX), so an interrupted run never
leaves a half-written file behind and never damages what was there before.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_write_npz",
           "atomic_write_csv", "read_csv", "jsonable", "decode_float"]


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
    if isinstance(obj, dict):
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
