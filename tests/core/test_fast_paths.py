"""The fast paths of issue 14 against the plain formulas they replace: the paper's alignment
without forming the kernel, the cached Gram of ntk_tilde, the blocked tangent-kernel alignment,
solve_with_theory's shared linearised model, and the BLAS thread rule."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from lazyrich_theory import Problem, preset
from lazyrich_theory.core import kernels, richness, threads
from lazyrich_theory.core.kernels import (
    _bracket,
    kernel_observers,
    ntk_tilde,
    paper_alignment_from_factor,
    paper_kernel_alignment,
)
from lazyrich_theory.core.reduced import ReducedSystem


def _state(N, seed=0, D=12, P=40, T=30, eps=0.4, shift=0.0):
    p = Problem(D=D, P=P, N=N, alpha=1.0, eps=eps, eta0=1.0, seed=seed, test_size=T)
    s = ReducedSystem.build(p)
    rng = np.random.default_rng(seed + 1)
    F = s.F0 + 0.3 * rng.standard_normal(s.F0.shape) + shift
    return p, s, F


@pytest.mark.parametrize("N", [3, 30, math.inf])
@pytest.mark.parametrize("block", [1, 7, 128])
def test_paper_alignment_from_factor_equals_the_kernel_formula(N, block):
    p, s, F = _state(N)
    for X, y in ((s.X, s.y), (s.X_test, s.y_test)):
        ref = paper_kernel_alignment((X @ X.T) * _bracket(X @ F, X @ F, s.z, p.eps), y)
        for G in (None, X @ X.T):
            got = paper_alignment_from_factor(X, X @ F, s.z, p.eps, y, G, block=block)
            assert got == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_paper_alignment_centred_pass_for_a_kernel_with_a_large_mean():
    # inputs with a large common offset: the kernel's column means dominate ||K||, so the
    # one-pass centring would cancel; the second, centred pass keeps full accuracy
    p, s, F = _state(20)
    X = s.X + 3.0
    ref = paper_kernel_alignment((X @ X.T) * _bracket(X @ F, X @ F, s.z, p.eps), s.y)
    got = paper_alignment_from_factor(X, X @ F, s.z, p.eps, s.y, None, block=5)
    assert got == pytest.approx(ref, rel=1e-10)


def test_kernel_observers_paper_columns_equal_the_dense_kernel():
    p, s, F = _state(30)
    obs = kernel_observers(("kernel_alignment", "kernel_alignment_train", "cka_target"))
    for _ in range(2):                      # the cached Gram on the second call
        assert obs["kernel_alignment"](s, F) == pytest.approx(
            paper_kernel_alignment(ntk_tilde(s.X_test, F, s.z, p.eps), s.y_test), rel=1e-12)
        assert obs["kernel_alignment_train"](s, F) == pytest.approx(
            paper_kernel_alignment(ntk_tilde(s.X, F, s.z, p.eps), s.y), rel=1e-12)


def test_ntk_tilde_equals_the_unfused_expression_and_its_gram_cache_compares_values():
    p, s, F = _state(7)
    X = s.X.copy()
    ref = (X @ X.T) * _bracket(X @ F, X @ F, s.z, p.eps)
    np.testing.assert_allclose(ntk_tilde(X, F, s.z, p.eps), ref, rtol=1e-13, atol=1e-15)
    K = ntk_tilde(X, F, s.z, p.eps)
    assert np.array_equal(K, K.T)           # syrk: exactly symmetric
    X *= 1.5                                # same object, new values: the cache must miss
    ref2 = (X @ X.T) * _bracket(X @ F, X @ F, s.z, p.eps)
    np.testing.assert_allclose(ntk_tilde(X, F, s.z, p.eps), ref2, rtol=1e-13, atol=1e-15)
    Xt = s.X_test
    np.testing.assert_allclose(ntk_tilde(Xt, F, s.z, p.eps, X),
                               (Xt @ X.T) * _bracket(Xt @ F, X @ F, s.z, p.eps), rtol=1e-13,
                               atol=1e-15)
    assert not kernels.gram(X).flags.writeable


@pytest.mark.parametrize("N", [5, math.inf])
def test_blocked_tangent_kernel_alignment_equals_the_plain_formula(N, monkeypatch):
    p, s, F = _state(N, P=60)
    plain = richness.tangent_kernel_alignment(s.X, F, s.F0, s.z, p.eps)
    cached = richness.TangentKernelAlignment()(s, F)
    monkeypatch.setattr(richness, "_CACHE_P", 10)
    monkeypatch.setattr(richness, "_BLOCK", 11)
    blocked = richness.TangentKernelAlignment()(s, F)
    assert abs(cached - plain) < 1e-14 and abs(blocked - plain) < 1e-14
    assert richness.TangentKernelAlignment()(s, s.F0) == pytest.approx(1.0, abs=1e-14)


def test_thread_rule():
    assert threads.threads_for(1e6) == 1
    assert 1 <= threads.threads_for(1e12) <= threads.usable_cores()
    assert 1 <= threads.free_cores() <= threads.usable_cores()

    def blas_threads_now():
        return min(lib["num_threads"] for lib in threadpool_info()
                   if lib["user_api"] == "blas")

    with threads.blas_threads(1e6):
        assert blas_threads_now() == 1
    with threadpool_limits(1, user_api="blas"):     # an enclosing limit is never raised
        with threads.blas_threads(1e12):
            assert blas_threads_now() == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")
def test_own_busy_threads_are_not_counted_as_load():
    """A thread of this process busy in BLAS (state R, as OpenBLAS's spinning workers are after
    a threaded call) is counted by _own_runnable, so free_cores does not take it for another
    task's load (it did: a process that had just run threaded BLAS saw one free core)."""
    import threading

    a = np.random.default_rng(0).standard_normal((300, 300))
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            a @ a                                   # releases the GIL: runnable in BLAS

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        seen = max(threads._own_runnable() for _ in range(2000))
    finally:
        stop.set()
        worker.join()
    assert seen >= 2
    assert threads._own_runnable() >= 1


def test_numba_threads_restores_the_callers_setting():
    import numba

    before = numba.get_num_threads()
    with threads.numba_threads(1):
        assert numba.get_num_threads() == 1
    with threads.numba_threads(10 ** 6):            # never above NUMBA_NUM_THREADS
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert numba.get_num_threads() == before


def test_numba_threads_is_held_by_one_python_thread_at_a_time():
    import threading

    entered = threading.Event()

    def other():
        with threads.numba_threads(1):
            entered.set()

    with threads.numba_threads(1):
        t = threading.Thread(target=other)
        t.start()
        assert not entered.wait(0.3)                # queued behind this thread
        with threads.numba_threads(1):              # re-entrant in the same thread
            pass
    assert entered.wait(10)
    t.join()
