"""Sweep axes: the swept parameters, their values, and the spec strings that give them.

    "0.4:5.6:14"        14 values, linearly spaced from 0.4 to 5.6 (ends included)
    "log:0.1:10:9"      9 values, log-spaced from 0.1 to 10
    "100,200,400"       an explicit list (N also takes "inf"; convention A,B; centered true,false;
                        init takes a list of init specs, e.g. "lowrank:1,lowrank:4,iid")
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.inits import parse_init
from lazyrich_theory.spec.problem import OPTION_FIELDS, TRAINING_OPTIONS, Problem
from lazyrich_theory.storage import jsonable

__all__ = ["Axis", "SWEEPABLE", "INT_FIELDS", "parse_axis", "parse_vary", "axes_from",
           "sweep_axes"]

#: Problem fields a sweep may vary: every training option of ``spec.problem.TRAINING_OPTIONS``
#: (real numbers) among them.
SWEEPABLE = ("alpha", "eps", "D", "P", "N", "eta0", "seed", "test_size", "convention", "centered",
             *OPTION_FIELDS, "batch_size", "init", "init_scale")
#: Sweepable fields that take integers (N too, except for inf).
INT_FIELDS = ("D", "P", "seed", "test_size", "batch_size")
#: Other names of the axes: the CLI flag and the aliases of every training option, and these.
_ALIASES = {"d": "D", "p": "P", "n": "N", "test-size": "test_size", "epsilon": "eps",
            "eta": "eta0", "batch-size": "batch_size", "b": "batch_size",
            "init-scale": "init_scale",
            **{alias: name for name, opt in TRAINING_OPTIONS.items()
               for alias in (opt.flag.lstrip("-"), *opt.aliases)}}
_SPEC_HELP = ("expected NAME=START:STOP:COUNT (linear), NAME=log:START:STOP:COUNT (log) "
              "or NAME=V1,V2,... (list)")

# Axis values are JSON-encoded by the package's one rule, storage.jsonable.  Values are finite
# numbers, +inf (N only), strings or booleans (never NaN or -inf: _convert refuses them), on
# which jsonable gives exactly what the former axis encoder gave (+inf -> "inf"), so sweep.json
# and the cell ids of folders written before stay the same and those sweeps still resume.


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its name, its values (in order) and how they were specified."""

    name: str
    values: tuple
    spacing: str = "list"      # "linear", "log" or "list"
    spec: str = ""

    def __len__(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        """The axis as a JSON-able dict (name, values, spacing)."""
        return {"name": self.name, "values": [jsonable(v) for v in self.values],
                "spacing": self.spacing}


def _canonical_name(name: str) -> str:
    n = name.strip()
    n = _ALIASES.get(n.lower(), n) if n not in SWEEPABLE else n
    if n not in SWEEPABLE:
        raise ProblemError(f"--vary: unknown parameter {name.strip()!r} "
                           f"(choose from {', '.join(SWEEPABLE)})")
    return n


def _convert(name: str, raw: Any, where: str) -> Any:
    """One value of parameter ``name``, converted to the Problem field's type."""
    if name == "init":
        try:
            return str(parse_init(str(raw)))
        except ProblemError as exc:
            raise ProblemError(f"{where}: {exc}") from None
    if name == "convention":
        v = str(raw).strip().upper()
        if v not in ("A", "B"):
            raise ProblemError(f"{where}: convention must be A or B, got {raw!r}")
        return v
    if name == "centered":
        if isinstance(raw, (bool, np.bool_)):
            return bool(raw)
        v = str(raw).strip().lower()
        if v in ("true", "1", "yes", "centered"):
            return True
        if v in ("false", "0", "no", "uncentered"):
            return False
        raise ProblemError(f"{where}: centered must be true or false, got {raw!r}")
    if name == "N" and str(raw).strip().lower() in ("inf", "infinity", "+inf", "∞"):
        return math.inf
    try:
        x = float(raw)
    except (TypeError, ValueError):
        raise ProblemError(f"{where}: {raw!r} is not a number") from None
    if not math.isfinite(x):
        raise ProblemError(f"{where}: {raw!r} is not finite")
    if name in INT_FIELDS or name == "N":
        if abs(x - round(x)) > 1e-9 * max(1.0, abs(x)):
            raise ProblemError(f"{where}: {name} takes integers, got {raw!r}")
        return int(round(x))
    return x


def _parse_range(name: str, parts: list[str], where: str) -> tuple[list[Any], str]:
    """Values and spacing of 'START:STOP:COUNT' or 'log:START:STOP:COUNT' (split at ':')."""
    log = parts[0].strip().lower() == "log"
    if log:
        parts = parts[1:]
    if len(parts) != 3:
        raise ProblemError(f"{where}: {_SPEC_HELP}")
    if name in ("convention", "centered"):
        raise ProblemError(f"{where}: {name} takes a list, e.g. {name}="
                           f"{'A,B' if name == 'convention' else 'true,false'}")
    try:
        a, b = float(parts[0]), float(parts[1])
    except ValueError:
        raise ProblemError(f"{where}: START and STOP must be numbers") from None
    try:
        n = int(parts[2])
    except ValueError:
        raise ProblemError(f"{where}: COUNT must be a positive integer, "
                           f"got {parts[2]!r}") from None
    if n < 1:
        raise ProblemError(f"{where}: COUNT must be a positive integer, got {n}")
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ProblemError(f"{where}: START and STOP must be finite")
    if n == 1 and a != b:
        raise ProblemError(f"{where}: COUNT 1 needs START == STOP")
    if log:
        if a <= 0 or b <= 0:
            raise ProblemError(f"{where}: log spacing needs START > 0 and STOP > 0")
        raw = np.geomspace(a, b, n)
        if name in INT_FIELDS or name == "N":
            raw = np.round(raw)
        spacing = "log"
    else:
        raw = np.linspace(a, b, n)
        spacing = "linear"
    return [_convert(name, float(v), where) for v in raw], spacing


def _parse_text(name: str, text: str, where: str) -> tuple[list[Any], str]:
    """Values and spacing of a spec string (a range or a comma-separated list)."""
    if not text:
        raise ProblemError(f"{where}: {_SPEC_HELP}")
    parts = text.split(":")
    if len(parts) > 1 and name != "init":     # init specs contain ':' and are always a list
        return _parse_range(name, parts, where)
    items = [s.strip() for s in text.split(",")]
    if any(not s for s in items):
        raise ProblemError(f"{where}: empty value in list; {_SPEC_HELP}")
    return [_convert(name, s, where) for s in items], "list"


def parse_axis(name: str, spec: Any) -> Axis:
    """An :class:`Axis` from a spec string (see the module doc) or a sequence of values."""
    name = _canonical_name(name)
    if isinstance(spec, str):
        text = spec.strip()
        where = f"--vary {name}={text}"
        values, spacing = _parse_text(name, text, where)
    else:
        where = f"--vary {name}"
        vals = np.asarray(spec, dtype=object).ravel().tolist()
        if not vals:
            raise ProblemError(f"{where}: no values")
        values = [_convert(name, v, where) for v in vals]
        spacing, text = "list", ",".join(str(jsonable(v)) for v in values)
    if len({json.dumps(jsonable(v)) for v in values}) != len(values):
        raise ProblemError(f"{where}: repeated values {values}")
    return Axis(name, tuple(values), spacing, text)


def parse_vary(items: Iterable[str]) -> list[Axis]:
    """Axes from CLI items 'NAME=SPEC' (in order); each parameter at most once."""
    axes: list[Axis] = []
    for item in items:
        if "=" not in item:
            raise ProblemError(f"--vary {item}: {_SPEC_HELP}")
        name, spec = item.split("=", 1)
        ax = parse_axis(name, spec)
        if any(a.name == ax.name for a in axes):
            raise ProblemError(f"--vary {ax.name} is given twice")
        axes.append(ax)
    return axes


def axes_from(vary: Mapping[str, Any] | Sequence[Axis] | None) -> list[Axis]:
    """Axes from ``{name: spec or values or Axis}`` or a sequence of :class:`Axis` (in order);
    each parameter at most once."""
    if vary is None:
        return []
    if isinstance(vary, Mapping):
        axes = []
        for name, spec in vary.items():
            ax = spec if isinstance(spec, Axis) else parse_axis(name, spec)
            if any(a.name == ax.name for a in axes):
                raise ProblemError(f"--vary {ax.name} is given twice")
            axes.append(ax)
        return axes
    axes = list(vary)
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ProblemError("an axis is given twice")
    return axes


def sweep_axes(base: Problem, vary: Mapping[str, Any] | Sequence[Axis] | None,
               seeds: int | Sequence[int] | None) -> list[Axis]:
    """All axes of a sweep, ``seed`` last: the ``vary`` axes, then the seeds (``seeds``: a count
    from ``base.seed`` on, or a list; else a ``seed`` axis of ``vary``; else ``base.seed``)."""
    axes = axes_from(vary)
    if seeds is not None:
        if any(a.name == "seed" for a in axes):
            raise ProblemError("give the seeds either with --seeds or with --vary seed=..., not both")
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            if seeds < 1:
                raise ProblemError(f"--seeds must be a positive integer, got {seeds}")
            seed_axis = Axis("seed", tuple(base.seed + i for i in range(int(seeds))), "list",
                             f"{int(seeds)} seeds")
        else:
            seed_axis = parse_axis("seed", list(seeds))
        axes.append(seed_axis)
    elif not any(a.name == "seed" for a in axes):
        axes.append(Axis("seed", (base.seed,), "list", "base seed"))
    axes = [a for a in axes if a.name != "seed"] + [a for a in axes if a.name == "seed"]
    if base.data_file is not None:
        clash = [a.name for a in axes if a.name in ("D", "P", "N", "test_size", "seed")
                 and len(a) > 1]
        if clash:
            raise ProblemError(f"with a data file, {', '.join(clash)} cannot be varied "
                               "(they are fixed by the file)")
    return axes
