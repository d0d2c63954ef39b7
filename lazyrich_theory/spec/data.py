"""The arrays of one problem: training and test inputs, labels, teacher and initial weights.

:class:`ProblemData` holds X, y, X_test, y_test, beta and W0 in the convention's own units,
drawn from four independent streams spawned from the problem's seed (the paper's code re-used
one PRNG key for X and W0) or read from a user's ``.npz`` file.  Label noise comes from a
fifth stream and goes on the training labels only (docs/theory.md §9).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.inits import is_default_init, make_init
from lazyrich_theory.storage import atomic_write_npz
from lazyrich_theory.spec.targets import make_target
from lazyrich_theory.spec.targets.families import paper_labels

if TYPE_CHECKING:
    from lazyrich_theory.spec.problem import Problem

__all__ = ["ProblemData", "target", "labels", "data_target", "label_noise", "add_label_noise"]


def target(problem: Problem, X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Teacher labels y = tau (beta . x_A)**2 for stored inputs X (rows are samples)."""
    return paper_labels(X * problem.input_scale, beta, problem.tau)


def labels(problem: Problem, data: "ProblemData", X: np.ndarray) -> np.ndarray:
    """Clean teacher labels y(x) for inputs ``X`` (rows, stored in the convention's units) of
    the problem's target; used for fresh samples (online SGD) and Monte-Carlo checks."""
    if problem.target == "paper":
        return target(problem, X, data.beta)
    return data_target(problem, data).labels(problem, X)


def data_target(problem: Problem, data: "ProblemData"):
    """The :class:`~lazyrich_theory.targets.Target` of ``problem`` for ``data`` (the one the
    data carry when they were sampled or loaded for this spec, else built from the spec)."""
    t = getattr(data, "target", None)
    if t is not None and t.spec == problem.target and t.D == problem.D:
        return t

    return make_target(problem, data.beta)


def label_noise(problem: Problem) -> np.ndarray:
    """The P label-noise values sigma xi_mu, xi ~ N(0, 1) from ``SeedSequence(seed).spawn(5)[4]``
    (zeros when noise = 0)."""
    if problem.noise == 0.0:
        return np.zeros(problem.P)
    rng = np.random.default_rng(np.random.SeedSequence(problem.seed).spawn(5)[4])
    return problem.noise * rng.standard_normal(problem.P)


def add_label_noise(problem: Problem, y: np.ndarray) -> np.ndarray:
    """Training labels with the problem's label noise added (``y`` itself when noise = 0)."""
    if problem.noise == 0.0:
        return y
    return y + label_noise(problem)


#: The first bytes of a .npz archive (a zip file) and of a single .npy array.
_ZIP_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def _not_npz_reason(path: str) -> str | None:
    """Why ``path`` cannot be a .npz data file (None if it may be one), from its type and
    first bytes."""
    if not os.path.exists(path):
        return "not found"
    if os.path.isdir(path):
        return "is a folder, not a .npz file (give the data.npz inside a result folder)"
    if not os.path.isfile(path):
        return "is not a regular file"
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty"
    if head.startswith(_NPY_MAGIC):
        return ("holds a single .npy array, not a .npz archive of named arrays X, y, X_test, "
                "y_test, beta[, W0] (write it with numpy.savez)")
    if not head.startswith(_ZIP_MAGIC):
        kind = "text" if all(32 <= c < 127 or c in (9, 10, 13) for c in head) else "binary data"
        return (f"is not a .npz archive (it starts with {kind}, not a zip header; write the "
                "arrays with numpy.savez)")
    return None


def _read_npz(path: str, convert) -> dict[str, Any]:
    """``{name: convert(array)}`` for the arrays of the .npz file ``path``; ProblemError
    naming the actual problem (missing file, folder, .npy, text, damaged archive, object
    arrays) otherwise."""
    why = _not_npz_reason(path)
    if why == "not found":
        raise ProblemError(f"data file not found: {path}")
    if why is not None:
        raise ProblemError(f"data file {path} {why}")
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {}
            for k in f.files:
                try:
                    out[k] = convert(f[k])
                except ValueError as exc:
                    if "pickle" in str(exc):
                        raise ProblemError(f"data file {path}: array {k} holds Python objects "
                                           "(pickled); store numeric arrays") from None
                    raise ProblemError(f"data file {path}: array {k} is not numeric "
                                       f"({exc})") from None
            return out
    except ProblemError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged archive is a user error
        raise ProblemError(f"data file {path} is a damaged .npz archive "
                           f"({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True, eq=False)
class ProblemData:
    """Arrays of one problem, stored in the convention's own units (rows are samples).

    X (P, D), y (P,), X_test (test_size, D), y_test (test_size,), beta (D,),
    W0 (N, D) or None when N is infinite.  ``target``: the teacher object
    (:mod:`lazyrich_theory.targets`) for non-paper targets, None for the paper target.
    ``M0`` (D, D): at N = inf the second moment of a structured init (mean 0; ``Problem.init``
    other than iid, or ``init_scale`` != 1), None for the default (M0 = I).
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    beta: np.ndarray
    W0: np.ndarray | None
    source: str = field(default="sampled")
    target: Any = field(default=None)
    M0: np.ndarray | None = field(default=None)

    @classmethod
    def sample(cls, problem: Problem) -> "ProblemData":
        """Draw X, X_test, beta, W0 from four independent streams spawned from the seed."""
        D, P = problem.D, problem.P
        streams = np.random.SeedSequence(problem.seed).spawn(4)
        rx, rt, rb, rw = (np.random.default_rng(s) for s in streams)
        # convention A stores x ~ N(0, I/D); convention B stores x ~ N(0, I)
        xs = 1.0 / math.sqrt(D) if problem.convention == "A" else 1.0
        X = rx.standard_normal((P, D)) * xs
        X_test = rt.standard_normal((problem.test_size, D)) * xs
        beta = rb.standard_normal(D)
        # the init (spec.inits): W0 at finite N (iid: the stream's first draw, as before);
        # at N = inf the neuron covariance, kept only when it is not the default M0 = I
        W0 = M0 = None
        if problem.finite_width:
            W0 = make_init(rw, D, problem.N, beta, problem.init, problem.init_scale)
        elif not is_default_init(problem.init, problem.init_scale):
            M0 = make_init(rw, D, problem.N, beta, problem.init, problem.init_scale)
        if problem.target != "paper":
            # other teachers: parameters from the target stream (targets.py), same X, X_test, W0
            tgt = make_target(problem, beta)
            y = add_label_noise(problem, tgt.labels(problem, X))
            return cls(X, y, X_test, tgt.labels(problem, X_test), beta, W0, target=tgt, M0=M0)
        y = add_label_noise(problem, target(problem, X, beta))
        return cls(X, y, X_test, target(problem, X_test, beta), beta, W0, M0=M0)

    @classmethod
    def load(cls, path: str | os.PathLike, problem: Problem) -> "ProblemData":
        """Read X, y, X_test, y_test, beta (and W0, M0 when present) from ``path`` and check
        them against ``problem`` (M0: an N = inf init covariance, read only when N is
        infinite)."""
        path = os.fspath(path)
        arrays = _read_npz(path, lambda a: np.asarray(a, dtype=np.float64))
        missing = [k for k in ("X", "y", "X_test", "y_test", "beta") if k not in arrays]
        if missing:
            raise ProblemError(f"data file {path} lacks array(s): {', '.join(missing)}")
        W0 = arrays.get("W0")
        if problem.finite_width and W0 is None:
            raise ProblemError(f"data file {path} has no W0 but N={problem.N} is finite")
        M0 = None
        if not problem.finite_width:
            W0, M0 = None, arrays.get("M0")
        data = cls(arrays["X"], arrays["y"], arrays["X_test"], arrays["y_test"],
                   arrays["beta"], W0, source=path, M0=M0)
        data.check(problem, teacher=False)
        if problem.target != "paper":   # the file's labels are taken to be this teacher's
            data = dataclasses.replace(data, target=make_target(problem, data.beta))
        return data

    def check(self, problem: Problem, teacher: bool = True) -> None:
        """Raise ProblemError unless every array has the shape and values ``problem`` expects
        (and, if ``teacher``, unless the data were made for the problem's target)."""
        D, P, T = problem.D, problem.P, problem.test_size
        expected = {"X": (P, D), "y": (P,), "X_test": (T, D), "y_test": (T,), "beta": (D,)}
        if problem.finite_width:
            expected["W0"] = (problem.N, D)
            if self.M0 is not None:
                raise ProblemError("M0 is an N = inf init; at finite N the init is W0")
        elif self.M0 is not None:
            expected["M0"] = (D, D)
        for name, shape in expected.items():
            a = getattr(self, name)
            if a is None or a.shape != shape:
                got = None if a is None else a.shape
                raise ProblemError(f"array {name} has shape {got}, expected {shape}")
            if not np.all(np.isfinite(a)):
                raise ProblemError(f"array {name} contains NaN or infinity")
        made_for = getattr(getattr(self, "target", None), "spec", "paper")
        if teacher and made_for != problem.target:
            raise ProblemError(f"these data carry the labels of target {made_for!r} but the "
                               f"problem's target is {problem.target!r}; use problem.data()")

    def save(self, path: str | os.PathLike) -> None:
        """Write the arrays to ``path`` (.npz), atomically; W0 is omitted when N is infinite,
        M0 unless the N = inf init is structured."""

        arrays = {"X": self.X, "y": self.y, "X_test": self.X_test, "y_test": self.y_test,
                  "beta": self.beta}
        if self.W0 is not None:
            arrays["W0"] = self.W0
        if self.M0 is not None:
            arrays["M0"] = self.M0
        atomic_write_npz(path, arrays)

    @staticmethod
    def infer_shape(path: str | os.PathLike) -> dict[str, int]:
        """D, P, test_size and (if W0 is present) N read from a data file's array shapes."""
        path = os.fspath(path)
        shapes = _read_npz(path, np.shape)
        if "X" not in shapes or len(shapes["X"]) != 2:
            raise ProblemError(f"data file {path} needs a 2-D array X (P, D)")
        out = {"P": shapes["X"][0], "D": shapes["X"][1]}
        if "X_test" in shapes and len(shapes["X_test"]) == 2:
            out["test_size"] = shapes["X_test"][0]
        if "W0" in shapes and len(shapes["W0"]) == 2:
            out["N"] = shapes["W0"][0]
        return out
