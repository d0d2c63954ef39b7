"""Independent finite-network check of lazyrich_theory.

Trains the actual N x D network by full-batch gradient descent in plain numpy (no numerics
shared with ``lazyrich_theory``) and compares trajectories.
"""

from .compare import compare, max_relative_deviation
from .network import NetworkDivergence, network_ntk, simulate

__all__ = ["simulate", "compare", "network_ntk", "max_relative_deviation", "NetworkDivergence"]
