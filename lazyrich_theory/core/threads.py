"""BLAS thread control for the solvers' matrix products."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    from lazyrich_theory.core.reduced import ReducedSystem

__all__ = ["blas_threads_for", "SINGLE_THREAD_FLOPS"]


#: Below this many flops per right-hand side the flow runs BLAS single-threaded: the products
#: are too small to amortise waking the BLAS threads between the interleaved Numba kernels
#: (measured on the Figure 1 setup, 2 cores: 1.9 s single-threaded vs 3.6 s threaded).
SINGLE_THREAD_FLOPS = 1e8


def blas_threads_for(system: "ReducedSystem"):
    """Context limiting BLAS to one thread for small right-hand sides (see above)."""
    P, D = system.X.shape
    r = system.F0.shape[1]
    if 4.0 * P * D * r >= SINGLE_THREAD_FLOPS:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
