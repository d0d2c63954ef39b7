"""Target spec strings: the grammar, the registry of user functions and the target's random stream."""

from __future__ import annotations

import importlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lazyrich_theory.errors import ProblemError


#: ``SeedSequence(seed).spawn(8)[TARGET_STREAM_CHILD]`` is the target stream.
TARGET_STREAM_CHILD = 7

#: The target families of the spec grammar (``Problem.target``, docs/targets.md).
FAMILIES = ("paper", "quadratic", "hermite", "func")


_KEYS = {"paper": set(), "quadratic": {"B", "b", "c", "rank", "file", "seed"},
         "hermite": {"k", "r", "coef", "dirs", "file", "seed"}, "func": {"samples", "seed"}}


#: Monte-Carlo samples of the func family (default) and the subsample used for error bars.
MC_SAMPLES = 200_000

#: Monte-Carlo subsample size used for the standard error of the func family.
MC_SE_SUBSAMPLE = 20_000


#: independent folds of the Monte-Carlo sample for the unbiased irreducible-loss estimate
MC_FOLDS = 8


_MC_CHUNK = 10_000


_REGISTRY: dict[str, Callable[[np.ndarray], np.ndarray]] = {}


def register(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """Register ``fn(Z) -> y`` under ``name``; returns the spec ``"func:NAME"``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", str(name)):
        raise ProblemError(f"target function name must be an identifier, got {name!r}")
    if not callable(fn):
        raise ProblemError(f"target function {name!r} is not callable")
    _REGISTRY[name] = fn
    return f"func:{name}"


def registered() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """A copy of the registry of target functions (name -> fn), e.g. to ship to workers."""
    return dict(_REGISTRY)


def restore_registered(functions: dict[str, Callable[[np.ndarray], np.ndarray]]) -> None:
    """Register every ``name -> fn`` of ``functions`` (a worker process starts empty)."""
    for name, fn in functions.items():
        register(name, fn)


# ============================================================================ spec grammar
@dataclass(frozen=True)
class TargetSpec:
    """A parsed spec: family, key -> value strings, and (func) the function reference."""

    family: str
    args: dict[str, str] = field(default_factory=dict)
    ref: str | None = None


def _err(spec: str, why: str) -> ProblemError:
    return ProblemError(f"bad target spec {spec!r}: {why}")


def _float(spec: str, key: str, v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise _err(spec, f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise _err(spec, f"{key} must be finite, got {v!r}")
    return x


def _int(spec: str, key: str, v: str, lo: int) -> int:
    try:
        x = int(v)
    except ValueError:
        raise _err(spec, f"{key} must be an integer, got {v!r}") from None
    if x < lo:
        raise _err(spec, f"{key} must be >= {lo}, got {x}")
    return x


def _coef_table(spec: str, text: str) -> np.ndarray:
    rows = []
    for part in text.split(";"):
        if not part.strip():
            raise _err(spec, "empty direction in coef (use c0/c1/... per direction, ';' between)")
        rows.append([_float(spec, "coef", s.strip()) for s in part.split("/")])
    K = max(len(r) for r in rows)
    out = np.zeros((len(rows), K))
    for j, r in enumerate(rows):
        out[j, :len(r)] = r
    return out


def parse_spec(spec: str) -> TargetSpec:
    """Parse and validate a target spec string (no files are read); ProblemError if bad."""
    if not isinstance(spec, str) or not spec.strip():
        raise ProblemError(f"target must be a non-empty spec string, got {spec!r}")
    s = spec.strip()
    if "\n" in s:
        raise _err(s.splitlines()[0], "spec must be one line")
    family, _, rest = s.partition(":")
    family = family.strip()
    if family not in FAMILIES:
        raise _err(s, f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    ref = None
    if family == "func":
        first, _, rest = rest.partition(",")
        ref = first.strip()
        if not ref:
            raise _err(s, "func needs module:function or a registered name, e.g. func:mymod:teacher")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?", ref):
            raise _err(s, f"function reference {ref!r} is not module:function or a name")
    elif family == "paper" and rest.strip():
        raise _err(s, "the paper target takes no arguments")
    args: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, val = item.partition("=")
            key, val = key.strip(), val.strip()
            if not eq or not key or not val:
                raise _err(s, f"expected key=value, got {item.strip()!r}")
            if key not in _KEYS[family]:
                allowed = ", ".join(sorted(_KEYS[family])) or "none"
                raise _err(s, f"unknown key {key!r} for {family} (allowed: {allowed})")
            if key in args:
                raise _err(s, f"key {key!r} given twice")
            args[key] = val
    # value checks that need no files
    if family == "quadratic":
        for k in ("B", "b", "c"):
            if k in args:
                _float(s, k, args[k])
        if "rank" in args:
            _int(s, "rank", args["rank"], 0)
    if family == "hermite":
        if "k" in args and "coef" in args:
            raise _err(s, "give either k= or coef=, not both")
        if "k" in args:
            _int(s, "k", args["k"], 0)
        if "r" in args:
            _int(s, "r", args["r"], 1)
            if "coef" in args:
                raise _err(s, "r= goes with k=; with coef= the number of directions is the number of ';'-groups")
        if "coef" in args:
            _coef_table(s, args["coef"])
        if "k" not in args and "coef" not in args and "file" not in args:
            raise _err(s, "hermite needs k=K, coef=c0/c1/... or file=PATH.npz")
        if "dirs" in args and args["dirs"] not in ("orth", "iid"):
            raise _err(s, f"dirs must be orth or iid, got {args['dirs']!r}")
    if "seed" in args:
        _int(s, "seed", args["seed"], 0)
    if "samples" in args:
        _int(s, "samples", args["samples"], 100)
    return TargetSpec(family, args, ref)


def target_stream(problem: Any, spec: TargetSpec) -> tuple[np.random.Generator, np.random.Generator]:
    """(parameter rng, Monte-Carlo rng): ``SeedSequence(S).spawn(8)[7].spawn(2)``."""
    S = int(spec.args["seed"]) if "seed" in spec.args else problem.seed
    ss = np.random.SeedSequence(S).spawn(TARGET_STREAM_CHILD + 1)[TARGET_STREAM_CHILD]
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


# ============================================================================ construction
def _load_npz(spec: str, path: str, needed: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise _err(spec, f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
    except Exception as exc:  # noqa: BLE001
        raise _err(spec, f"cannot read {path}: {type(exc).__name__}") from None
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise _err(spec, f"{path} lacks array(s) {', '.join(missing)}")
    return arrays


def _resolve_function(spec: str, ref: str) -> Callable:
    if ":" not in ref:
        if ref not in _REGISTRY:
            raise _err(spec, f"no registered target function {ref!r} (use targets.register or module:function)")
        return _REGISTRY[ref]
    mod, fname = ref.split(":")
    try:
        module = importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001
        raise _err(spec, f"cannot import module {mod!r}: {type(exc).__name__}") from None
    fn = getattr(module, fname, None)
    if not callable(fn):
        raise _err(spec, f"module {mod!r} has no function {fname!r}")
    return fn
