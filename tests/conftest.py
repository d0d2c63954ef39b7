import math

import pytest

from lazyrich_theory import Problem


@pytest.fixture
def small_problem():
    """A small fig1-like problem (N > D): fast, and still lazy-then-rich."""
    return Problem(D=12, P=40, N=30, alpha=1.0, eps=0.2, eta0=1.0, seed=3, test_size=200)


@pytest.fixture
def narrow_problem():
    """The fig4 regime: N = 2 < D, uncentered."""
    return Problem(D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5, seed=1, test_size=300,
                   centered=False)


@pytest.fixture
def inf_problem():
    return Problem(D=10, P=30, N=math.inf, alpha=1.0, eps=0.3, eta0=1.0, seed=2, test_size=100)
