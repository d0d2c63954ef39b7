"""Shared builders of the theory tests."""

from __future__ import annotations

import numpy as np
import pytest


def _memorisation_members(rng: np.random.Generator, Ns: int, T: int,
                          scale: float = 0.1) -> np.ndarray:
    """Ns random lower-triangular memorisation operators K_nu (T x T) whose instantaneous
    part (the diagonal) is <= 0, as the DMFT's are (the spread closure's row recursion)."""
    KV = np.tril(rng.normal(size=(Ns, T, T))) * scale
    for K in KV:
        np.fill_diagonal(K, -np.abs(np.diag(K)))
    return KV


@pytest.fixture
def members():
    """:func:`_memorisation_members`: ``members(rng, Ns, T, scale=0.1)``."""
    return _memorisation_members
