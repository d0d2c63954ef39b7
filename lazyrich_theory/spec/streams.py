"""Seeded sample streams of minibatch and online SGD (docs/sgd.md).

The batch sequence is part of the problem's specification: the same seed gives the same
batches in the reduced solver, in the validation network and in every worker of a sweep.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.data import ProblemData, labels
from lazyrich_theory.spec.problem import OPTION_FIELDS

if TYPE_CHECKING:
    from lazyrich_theory.spec.problem import Problem

__all__ = ["sgd_mode", "is_plain_gd", "sgd_batch_size", "iter_batch_indices", "batch_indices",
           "iter_online_samples", "online_samples", "MINIBATCH_STREAM", "ONLINE_STREAM",
           "LABEL_ONLY_OPTIONS"]


# --------------------------------------------------------------------------- SGD (docs/sgd.md)
#: Children of ``SeedSequence(seed).spawn(7)`` used by SGD; 0-4 are X, X_test, beta, W0 and
#: the label noise (``spawn(7)[:5]`` are the children of ``spawn(5)``, so nothing else moves).
MINIBATCH_STREAM = 5

#: The child of ``SeedSequence(seed).spawn(7)`` that draws online SGD's fresh samples and
#: label noise (:data:`MINIBATCH_STREAM` shuffles the minibatches).
ONLINE_STREAM = 6


def sgd_mode(problem: Problem) -> str | None:
    """The SGD mode: 'online' (``problem.online``), 'minibatch' (``batch_size`` < P) or None
    (full-batch GD, also when ``batch_size`` >= P)."""
    if problem.online:
        return "online"
    if problem.batch_size is not None and problem.batch_size < problem.P:
        return "minibatch"
    return None


#: Training options that only change the labels (the update rule stays plain GD).
LABEL_ONLY_OPTIONS = ("noise",)


def is_plain_gd(problem: Problem) -> bool:
    """True for full-batch GD with every training option that changes the update rule (all of
    ``OPTION_FIELDS`` but :data:`LABEL_ONLY_OPTIONS`: weight decay, momentum, and any option
    added later) at 0 -- label noise and the target only change the labels: the dynamics the
    linearised theory describes."""
    return (all(getattr(problem, name) == 0.0 for name in OPTION_FIELDS
                if name not in LABEL_ONLY_OPTIONS) and sgd_mode(problem) is None)


def sgd_batch_size(problem: Problem) -> int:
    """Samples per step: ``batch_size``, or P when it is None (online) / full batch."""
    B = problem.P if problem.batch_size is None else problem.batch_size
    return B if problem.online else min(B, problem.P)


def _sgd_rng(problem: Problem, child: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(problem.seed).spawn(7)[child])


def iter_batch_indices(problem: Problem) -> Iterable[np.ndarray]:
    """Endless minibatch index sequence (docs/sgd.md): for each epoch e = 0, 1, ... draw
    perm_e = rng.permutation(P) from ``SeedSequence(seed).spawn(7)[5]`` and yield its
    P // B consecutive slices perm_e[j B:(j + 1) B] (the last P mod B indices of each epoch
    are skipped, so every batch has exactly B points).  Step t uses the t-th batch."""
    P, B = problem.P, sgd_batch_size(problem)
    rng = _sgd_rng(problem, MINIBATCH_STREAM)
    nb = P // B
    while True:
        perm = rng.permutation(P)
        for j in range(nb):
            yield perm[j * B:(j + 1) * B]


def batch_indices(problem: Problem, steps: int) -> np.ndarray:
    """The first ``steps`` minibatches of :func:`iter_batch_indices`, shape (steps, B)."""
    if sgd_mode(problem) != "minibatch":
        raise ProblemError("batch_indices needs 1 <= batch_size < P and online=False")
    it = iter_batch_indices(problem)
    return np.array([next(it) for _ in range(int(steps))], dtype=np.int64).reshape(int(steps), -1)


def iter_online_samples(problem: Problem, data: ProblemData) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Endless fresh-sample sequence of online SGD (docs/sgd.md): from one generator on
    ``SeedSequence(seed).spawn(7)[6]``, step t draws X_t = standard_normal((B, D)) * s
    (s = 1/sqrt(D) in convention A, 1 in B: the stored units of ``ProblemData.sample``), then,
    if noise > 0, xi_t = standard_normal(B); it yields (X_t, labels(X_t) + noise * xi_t)."""

    B, D = sgd_batch_size(problem), problem.D
    xs = 1.0 / math.sqrt(D) if problem.convention == "A" else 1.0
    rng = _sgd_rng(problem, ONLINE_STREAM)
    while True:
        Xt = rng.standard_normal((B, D)) * xs
        yt = np.asarray(labels(problem, data, Xt), dtype=np.float64)
        if problem.noise > 0.0:
            yt = yt + problem.noise * rng.standard_normal(B)
        yield Xt, yt


def online_samples(problem: Problem, steps: int, data: ProblemData | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``steps`` online batches: inputs (steps, B, D) in stored units, labels (steps, B)."""
    data = problem.data() if data is None else data
    it = iter_online_samples(problem, data)
    pairs = [next(it) for _ in range(int(steps))]
    B, D = sgd_batch_size(problem), problem.D
    X = np.array([x for x, _ in pairs]).reshape(int(steps), B, D)
    y = np.array([v for _, v in pairs]).reshape(int(steps), B)
    return X, y
