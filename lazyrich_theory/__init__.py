"""lazyrich_theory: exact reduced dynamics of the lazy-to-rich (grokking) polynomial model.

The public API, one entry point per task:

* :class:`Problem`, :func:`preset`, :class:`ProblemData` — what to train (spec layer);
* :func:`solve` — exact GD / SGD / gradient flow of the reduced dynamics -> :class:`Trajectory`;
* :func:`population` — the online (P -> infinity) ODE -> :class:`Trajectory`;
* :func:`solve_with_theory` — :func:`solve` plus the lazy-regime theory (``lazyrich solve``);
* :func:`sweep` — phase diagrams over any fields, resumable;
* :func:`load` — read a saved run; :func:`save_times` — the default save grid;
* errors: :class:`LazyrichError` and its subclasses.

``simulate`` (the independent numpy network, package ``lazyrich_validation``) is available as
``lazyrich_theory.simulate`` on first use; the solver itself never imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# first: compiled kernels are cached in a user folder, never inside the installed package
from lazyrich_theory import _numba_cache  # noqa: F401
from lazyrich_theory.core.solve import solve
from lazyrich_theory.errors import (
    DivergenceError,
    IntegrationError,
    LazyrichError,
    ProblemError,
    SweepError,
)
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory, load
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import PRESET_STEPS, PRESETS, Problem, preset
from lazyrich_theory.spec.schedule import save_times

__version__ = "0.2.0"

__all__ = [
    "Problem", "ProblemData", "PRESETS", "PRESET_STEPS", "preset", "save_times",
    "solve", "population", "solve_with_theory", "sweep", "simulate", "rich_transition_time",
    "Trajectory", "CORE_COLUMNS", "load",
    "LazyrichError", "ProblemError", "DivergenceError", "IntegrationError", "SweepError",
]


#: Imported on first use (PEP 562): the population ODE (its parallel Numba grid), the sweep
#: machinery and the lazy theory are not needed to solve, and cost import time.
_LAZY = {
    "population": "lazyrich_theory.core.population",
    "rich_transition_time": "lazyrich_theory.core.population",
    "sweep": "lazyrich_theory.experiments.sweep",
    "solve_with_theory": "lazyrich_theory.experiments.with_theory",
}

if TYPE_CHECKING:  # pragma: no cover
    from lazyrich_theory.core.population import population, rich_transition_time
    from lazyrich_theory.experiments.sweep import sweep
    from lazyrich_theory.experiments.with_theory import solve_with_theory


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "simulate":   # the validation network, imported only when asked for
        from lazyrich_validation import simulate

        return simulate
    raise AttributeError(f"module 'lazyrich_theory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
