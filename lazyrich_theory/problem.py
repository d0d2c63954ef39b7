"""Problem specification: the model, its data and its initialisation.

A :class:`Problem` is an immutable, validated, JSON-serialisable description of one
training run of the two-layer polynomial network of Kumar et al. (arXiv 2310.06110):

    f(x; W) = (alpha / N) * sum_i phi(w_i . x),   phi(z) = z + (eps / 2) z**2,

trained by full-batch gradient descent on L = (1/P) sum_mu (ftilde(x_mu) - y_mu)**2 with step
eta = eta0 * N / alpha**2.  The teacher is y = tau * (beta . x)**2 in convention-A units
(x ~ N(0, I/D)); tau = 1/2 in convention A and tau = 1 in convention B.

Data and initialisation (X, X_test, beta, W0) are drawn from four *independent* random
streams spawned from ``seed`` (the paper's code re-used one PRNG key for X and W0), or loaded
from a user's ``.npz`` file.

Training options (docs/theory.md §9), all exact in the reduced dynamics:

* ``noise`` sigma: Gaussian label noise N(0, sigma^2) added to the *training* labels only,
  drawn from a fifth independent stream ``SeedSequence(seed).spawn(5)[4]`` (the first four
  children are those of ``spawn(4)``, so noise=0 data are bit-identical to before);
* ``weight_decay`` lambda: every GD step shrinks the weights by (1 - eta0 lambda),
  W <- (1 - eta0 lambda) W - eta dL/dW, i.e. GD on L + (alpha^2 lambda / 2) tr M with
  M = W^T W / N (width-free); the flow gets -eta0 lambda W;
* ``momentum`` mu: heavy ball, v <- mu v - eta (dL/dW + decay term), W <- W + v (GD only).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Problem",
    "ProblemData",
    "ProblemError",
    "PRESETS",
    "PRESET_STEPS",
    "preset",
]


class ProblemError(ValueError):
    """Invalid problem specification or data.  The message is one line, meant for users."""


#: The training-option fields (default 0, omitted from to_dict while 0).
OPTION_FIELDS = ("noise", "weight_decay", "momentum")
#: Further fields left out of to_dict while at their default.
_DEFAULTED_FIELDS = {"target": "paper", "batch_size": None, "online": False}


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _parse_N(N: Any) -> int | float:
    if isinstance(N, str):
        s = N.strip().lower()
        if s in ("inf", "infinity", "+inf", "∞"):
            return math.inf
        try:
            N = int(s)
        except ValueError:
            raise ProblemError(f"N must be a positive integer or 'inf', got {N!r}") from None
    if isinstance(N, float) and math.isinf(N) and N > 0:
        return math.inf
    if isinstance(N, float) and N.is_integer():
        N = int(N)
    if not _is_int(N) or N < 1:
        raise ProblemError(f"N must be a positive integer or 'inf', got {N!r}")
    return int(N)


@dataclass(frozen=True)
class Problem:
    """One run of the model (convention A/B, centered or not), fully specified.

    Parameters
    ----------
    D : input dimension.
    P : number of training points.
    N : width (positive int) or ``math.inf``; the reduced dynamics is exact for both.
    alpha : output scale (large alpha = lazy).
    eps : weight of the quadratic part of phi (small eps = misaligned initial kernel).
    eta0 : learning-rate constant; the GD step is eta = eta0 * N / alpha**2.
    seed : seed of the four independent streams (X, X_test, beta, W0).
    test_size : number of test points (the paper uses 1000).
    convention : "A" (x ~ N(0, I/D), target beta.x squared over 2) or
        "B" (x ~ N(0, I), pre-activation w.x / sqrt(D), target (beta.x / sqrt(D))**2).
    centered : train ftilde = f(W) - f(W0) (True) or f(W) itself (False).
    data_file : optional ``.npz`` with arrays X, y, X_test, y_test, beta[, W0]; when given,
        these arrays replace the sampled ones (``seed`` is then unused).
    noise : label-noise standard deviation sigma >= 0 (default 0): y_mu += sigma xi_mu,
        xi ~ N(0, 1) from the fifth stream ``SeedSequence(seed).spawn(5)[4]``, training labels
        only; test labels stay clean.  A data file's y is used as is (its noise, if any, is
        already in it: a saved run's data.npz reproduces the run without adding noise twice).
    weight_decay : lambda >= 0 (default 0), the per-step decay rate in units of eta0:
        W <- (1 - eta0 lambda) W - eta dL/dW (gradient flow: dW/dt = -eta dL/dW - eta0 lambda W).
        Equivalently GD with step eta on L + (alpha^2 lambda / 2) tr M, M = W^T W / N, which
        is width-free.  It pulls W towards 0 (not W0), also when centered (f0 stays f(W0)).
    momentum : heavy-ball coefficient mu in [0, 1) (default 0), method "gd" only:
        v <- mu v - eta dL/dW - eta0 lambda W, W <- W + v, v starting at 0.

    target : the teacher, a spec string (default "paper": y = tau (beta . x)**2); see
        ``targets.py`` (docs/targets.md) for the grammar and the other families (quadratic,
        Hermite single/multi-index, user function).  Their parameters come from the target
        stream ``SeedSequence(seed).spawn(8)[7]``; X, X_test, beta, W0 are unchanged.
    batch_size : minibatch size B (default None: full batch; B >= P is also full batch).
        Minibatch SGD reshuffles the training set every epoch with the stream
        ``SeedSequence(seed).spawn(7)[5]`` and takes consecutive slices of B (the last P mod B
        points of an epoch are skipped); exact for that sequence (docs/sgd.md).
    online : one-pass (online) SGD (default False): every step draws B fresh samples (B =
        batch_size, default P) and fresh label noise from ``SeedSequence(seed).spawn(7)[6]``.

    The options are omitted from :meth:`to_dict` (and problem.json) while at their defaults,
    so files written before they existed load and compare unchanged.
    """

    D: int = 100
    P: int = 550
    N: int | float = 500
    alpha: float = 1.0
    eps: float = 0.02
    eta0: float = 1.0
    seed: int = 0
    test_size: int = 1000
    convention: str = "A"
    centered: bool = True
    data_file: str | None = None
    noise: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.0
    target: str = "paper"
    batch_size: int | None = None
    online: bool = False

    def __post_init__(self) -> None:
        for name in ("D", "P", "test_size"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ProblemError(f"{name} must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        object.__setattr__(self, "N", _parse_N(self.N))
        for name, positive in (("alpha", True), ("eps", False), ("eta0", True)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise ProblemError(f"{name} must be a number, got {v!r}")
            v = float(v)
            if not math.isfinite(v):
                raise ProblemError(f"{name} must be finite, got {v!r}")
            if positive and v <= 0:
                raise ProblemError(f"{name} must be > 0, got {v!r}")
            object.__setattr__(self, name, v)
        if not _is_int(self.seed) or self.seed < 0:
            raise ProblemError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        conv = str(self.convention).upper()
        if conv not in ("A", "B"):
            raise ProblemError(f"convention must be 'A' or 'B', got {self.convention!r}")
        object.__setattr__(self, "convention", conv)
        if not isinstance(self.centered, (bool, np.bool_)):
            raise ProblemError(f"centered must be True or False, got {self.centered!r}")
        object.__setattr__(self, "centered", bool(self.centered))
        if self.data_file is not None:
            object.__setattr__(self, "data_file", str(self.data_file))
        for name in OPTION_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise ProblemError(f"{name} must be a number, got {v!r}")
            v = float(v)
            if not math.isfinite(v) or v < 0:
                raise ProblemError(f"{name} must be finite and >= 0, got {v!r}")
            if name == "momentum" and v >= 1:
                raise ProblemError(f"momentum must be in [0, 1), got {v!r}")
            object.__setattr__(self, name, v)
        if not isinstance(self.target, str) or not self.target.strip():
            raise ProblemError(f"target must be a non-empty spec string, got {self.target!r}")
        object.__setattr__(self, "target", self.target.strip())
        if self.target != "paper":
            from .targets import parse_spec

            parse_spec(self.target)  # ProblemError with one line if the spec is bad
        if self.batch_size is not None:
            if not _is_int(self.batch_size) or self.batch_size < 1:
                raise ProblemError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
            object.__setattr__(self, "batch_size", int(self.batch_size))
        if not isinstance(self.online, (bool, np.bool_)):
            raise ProblemError(f"online must be True or False, got {self.online!r}")
        object.__setattr__(self, "online", bool(self.online))

    # ------------------------------------------------------------------ derived quantities
    @property
    def finite_width(self) -> bool:
        """True unless N is infinite."""
        return not math.isinf(self.N)

    @property
    def eta(self) -> float:
        """The GD step on the raw loss, eta = eta0 * N / alpha**2 (inf when N is inf)."""
        return self.eta0 * self.N / self.alpha**2

    @property
    def tau(self) -> float:
        """Target coefficient in convention-A units: y = tau (beta . x)**2."""
        return 0.5 if self.convention == "A" else 1.0

    @property
    def input_scale(self) -> float:
        """Factor that maps stored inputs to convention-A units (1 for A, 1/sqrt(D) for B)."""
        return 1.0 if self.convention == "A" else 1.0 / math.sqrt(self.D)

    def replace(self, **changes: Any) -> "Problem":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ serialisation
    @property
    def has_options(self) -> bool:
        """True when any training option (noise, weight_decay, momentum) is nonzero."""
        return any(getattr(self, name) != 0.0 for name in OPTION_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields; the training options are left out while they are 0."""
        d = dataclasses.asdict(self)
        if math.isinf(self.N):
            d["N"] = "inf"
        for name in OPTION_FIELDS:
            if d[name] == 0.0:
                del d[name]
        for name, default in _DEFAULTED_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    def to_json(self) -> str:
        """The fields as indented, key-sorted JSON (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Problem":
        """A Problem from a dict of fields (unknown fields: ProblemError)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ProblemError(f"unknown problem field(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "Problem":
        """A Problem from JSON text, e.g. a saved problem.json."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProblemError(f"problem JSON is not valid: {exc}") from None
        if not isinstance(d, dict):
            raise ProblemError("problem JSON must be an object")
        return cls.from_dict(d)

    # ------------------------------------------------------------------ data
    def data(self) -> "ProblemData":
        """The training/test data and initial weights of this problem (sampled or loaded)."""
        if self.data_file is not None:
            return ProblemData.load(self.data_file, self)
        return ProblemData.sample(self)


def target(problem: Problem, X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Teacher labels y = tau (beta . x_A)**2 for stored inputs X (rows are samples)."""
    h = (X * problem.input_scale) @ beta
    return problem.tau * h * h


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
    from .targets import make_target

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


@dataclass(frozen=True, eq=False)
class ProblemData:
    """Arrays of one problem, stored in the convention's own units (rows are samples).

    X (P, D), y (P,), X_test (test_size, D), y_test (test_size,), beta (D,),
    W0 (N, D) or None when N is infinite.  ``target``: the teacher object
    (:mod:`lazyrich_theory.targets`) for non-paper targets, None for the paper target.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    beta: np.ndarray
    W0: np.ndarray | None
    source: str = field(default="sampled")
    target: Any = field(default=None)

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
        W0 = rw.standard_normal((problem.N, D)) if problem.finite_width else None
        if problem.target != "paper":
            # other teachers: parameters from the target stream (targets.py), same X, X_test, W0
            from .targets import make_target

            tgt = make_target(problem, beta)
            y = add_label_noise(problem, tgt.labels(problem, X))
            return cls(X, y, X_test, tgt.labels(problem, X_test), beta, W0, target=tgt)
        y = add_label_noise(problem, target(problem, X, beta))
        return cls(X, y, X_test, target(problem, X_test, beta), beta, W0)

    @classmethod
    def load(cls, path: str | os.PathLike, problem: Problem) -> "ProblemData":
        """Read X, y, X_test, y_test, beta[, W0] from ``path`` and check them against ``problem``."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ProblemError(f"data file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
            raise ProblemError(f"cannot read data file {path}: {exc}") from None
        missing = [k for k in ("X", "y", "X_test", "y_test", "beta") if k not in arrays]
        if missing:
            raise ProblemError(f"data file {path} lacks array(s): {', '.join(missing)}")
        W0 = arrays.get("W0")
        if problem.finite_width and W0 is None:
            raise ProblemError(f"data file {path} has no W0 but N={problem.N} is finite")
        if not problem.finite_width:
            W0 = None
        data = cls(arrays["X"], arrays["y"], arrays["X_test"], arrays["y_test"],
                   arrays["beta"], W0, source=path)
        data.check(problem, teacher=False)
        if problem.target != "paper":   # the file's labels are taken to be this teacher's
            from .targets import make_target

            data = dataclasses.replace(data, target=make_target(problem, data.beta))
        return data

    def check(self, problem: Problem, teacher: bool = True) -> None:
        """Raise ProblemError unless every array has the shape and values ``problem`` expects
        (and, if ``teacher``, unless the data were made for the problem's target)."""
        D, P, T = problem.D, problem.P, problem.test_size
        expected = {"X": (P, D), "y": (P,), "X_test": (T, D), "y_test": (T,), "beta": (D,)}
        if problem.finite_width:
            expected["W0"] = (problem.N, D)
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
        """Write the arrays to ``path`` (.npz), atomically; W0 is omitted when N is infinite."""
        from .storage import atomic_write_npz

        arrays = {"X": self.X, "y": self.y, "X_test": self.X_test, "y_test": self.y_test,
                  "beta": self.beta}
        if self.W0 is not None:
            arrays["W0"] = self.W0
        atomic_write_npz(path, arrays)

    @staticmethod
    def infer_shape(path: str | os.PathLike) -> dict[str, int]:
        """D, P, test_size and (if W0 is present) N read from a data file's array shapes."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ProblemError(f"data file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                shapes = {k: f[k].shape for k in f.files}
        except Exception as exc:  # noqa: BLE001
            raise ProblemError(f"cannot read data file {path}: {exc}") from None
        if "X" not in shapes or len(shapes["X"]) != 2:
            raise ProblemError(f"data file {path} needs a 2-D array X (P, D)")
        out = {"P": shapes["X"][0], "D": shapes["X"][1]}
        if "X_test" in shapes and len(shapes["X_test"]) == 2:
            out["test_size"] = shapes["X_test"][0]
        if "W0" in shapes and len(shapes["W0"]) == 2:
            out["N"] = shapes["W0"][0]
        return out


# Paper configurations (../shared/reference/paper_notes.md §1.5, issue #2).
PRESETS: dict[str, dict[str, Any]] = {
    "fig1": dict(convention="A", D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=1.0,
                 centered=True),
    "fig4": dict(convention="A", D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5,
                 centered=False),
}
PRESET_STEPS: dict[str, int] = {"fig1": 100_000, "fig4": 50_000}


def preset(name: str, **overrides: Any) -> Problem:
    """The Problem of a named paper configuration, with optional field overrides."""
    if name not in PRESETS:
        raise ProblemError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return Problem(**{**PRESETS[name], **overrides})
