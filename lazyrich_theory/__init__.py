"""lazyrich_theory: exact reduced dynamics of the lazy-to-rich (grokking) polynomial model."""

from .problem import PRESET_STEPS, PRESETS, Problem, ProblemData, ProblemError, preset
from .population import population, rich_transition_time
from .reduced import DivergenceError, batch_indices, online_samples, solve
from .schedule import save_times
from .trajectory import CORE_COLUMNS, Trajectory, load

__version__ = "0.1.0"

__all__ = [
    "Problem", "ProblemData", "ProblemError", "PRESETS", "PRESET_STEPS", "preset",
    "Trajectory", "CORE_COLUMNS", "load", "save_times",
    "solve", "population", "rich_transition_time", "DivergenceError",
    "batch_indices", "online_samples",
]
