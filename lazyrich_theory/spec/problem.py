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
* ``weight_decay_torch`` lambda_t: the same decay in the PyTorch/optax reading,
  W <- W - eta (dL/dW + lambda_t W) with the raw step eta, converted once, in
  :func:`weight_decay_from_torch`, into ``weight_decay`` = lambda_t N / alpha^2 (finite N only);
* ``momentum`` mu: heavy ball, v <- mu v - eta (dL/dW + decay term), W <- W + v (GD only).

Every training option is declared once, in :data:`TRAINING_OPTIONS` (its range, CLI flag and
help, the methods that implement it, whether the linearised theory covers it); the CLI flags,
the sweep axes, the method checks of ``solve`` and ``population`` and the plot titles read it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.fields import (
    FLOAT_LIMIT,
    check_representable,
    check_target_dims,
    first_step_scales,
    is_int,
    parse_N,
    positive_real,
    real,
)
from lazyrich_theory.spec.inits import check_init, check_init_scale
from lazyrich_theory.spec.targets import parse_spec

__all__ = ["Problem", "PRESETS", "PRESET_STEPS", "preset", "OPTION_FIELDS", "FLOAT_LIMIT",
           "first_step_scales", "OptionSpec", "TRAINING_OPTIONS", "OPTION_METHODS",
           "weight_decay_from_torch", "options_in_use", "options_supporting", "option_why_not"]


#: What a training option can run with: exact GD ("gd"), the gradient flow ("flow"),
#: minibatch / online SGD ("sgd") and the population ODE ("population").
OPTION_METHODS = ("gd", "flow", "sgd", "population")


@dataclass(frozen=True)
class OptionSpec:
    """One training option, declared once (an entry of :data:`TRAINING_OPTIONS`).

    Parameters
    ----------
    name : str
        The ``Problem`` field (a float; off at ``default``).
    flag, help : str
        The CLI flag and its help text (``cli.parser.add_model_options``).
    methods : frozenset of str
        The :data:`OPTION_METHODS` that implement it; any other refuses it in one line, so
        a new option runs with plain GD only until its entry says otherwise.
    low, high, default : float
        Valid values are ``[low, high)``; the option is off at ``default`` (0), the value of
        the ``Problem`` field's default, left out of ``to_dict`` (problem.json).
    linear_theory : bool
        The linearised (lazy) theory covers it (it changes only the labels).
    aliases : tuple of str
        Further names of its sweep axis (``--vary``), besides ``name`` and ``flag``.
    why_not : mapping
        method -> why the option is missing from it (the end of the error message).
    reading_of, convert : str, callable
        Another reading (convention) of the field ``reading_of``: a nonzero value is converted
        by ``convert(value, problem)`` into that field (giving both is refused).
    """

    name: str
    flag: str
    help: str
    methods: frozenset[str] = frozenset({"gd"})
    low: float = 0.0
    high: float = math.inf
    default: float = 0.0
    linear_theory: bool = False
    aliases: tuple[str, ...] = ()
    why_not: Mapping[str, str] = field(default_factory=dict)
    reading_of: str | None = None
    convert: Callable[[float, "Problem"], float] | None = None

    def check(self, value: Any) -> float:
        """``value`` as a float in the option's range, else ProblemError (one line)."""
        v = real(self.name, value)
        if not self.low <= v < self.high:
            rng = (f">= {self.low:g}" if math.isinf(self.high)
                   else f"in [{self.low:g}, {self.high:g})")
            raise ProblemError(f"{self.name} must be {rng}, got {v!r}")
        return v


def weight_decay_from_torch(lam_torch: float, N: int | float, alpha: float) -> float:
    """The package's weight decay lambda from the PyTorch/optax one (the one conversion).

    PyTorch/optax ``weight_decay=lambda_t`` with step eta: W <- W - eta (dL/dW + lambda_t W),
    a shrink (1 - eta lambda_t); ours is (1 - eta0 lambda) with eta = eta0 N / alpha^2, so
    lambda = lambda_t eta / eta0 = lambda_t N / alpha^2.

    Parameters
    ----------
    lam_torch : float
        lambda_t >= 0.
    N, alpha : int or float, float
        Width (finite) and output scale.

    Returns
    -------
    float
        lambda; ProblemError (one line) at N = inf, where the raw step is infinite.
    """
    if math.isinf(N):
        raise ProblemError("weight_decay_torch needs a finite width N: its raw step eta = "
                           "eta0 N / alpha^2 is infinite at N = inf; use weight_decay (the "
                           "width-free reading, = weight_decay_torch N / alpha^2)")
    return lam_torch * N / alpha**2


_EVERY = frozenset(OPTION_METHODS)

#: The training options, each declared once (:class:`OptionSpec`), in field order.
TRAINING_OPTIONS: dict[str, OptionSpec] = {o.name: o for o in (
    OptionSpec("noise", "--noise", "label-noise std sigma >= 0 on the training labels "
               "(default 0)", methods=_EVERY, linear_theory=True, aliases=("sigma",)),
    OptionSpec("weight_decay", "--weight-decay", "weight decay lambda >= 0: W <- (1 - eta0 "
               "lambda) W - eta grad (default 0)", methods=_EVERY, aliases=("lambda",)),
    OptionSpec("momentum", "--momentum", "heavy-ball momentum mu in [0, 1), GD only (default 0)",
               methods=frozenset({"gd", "sgd"}), high=1.0, aliases=("mu",),
               why_not={"flow": "heavy ball has no gradient-flow limit here",
                        "population": "heavy ball has no population flow; use solve or "
                                      "simulate"}),
    OptionSpec("weight_decay_torch", "--weight-decay-torch", "weight decay lambda >= 0 in the "
               "PyTorch/optax convention: W <- W - eta (grad + lambda W) with the raw step "
               "eta = eta0 N / alpha^2; finite N only; the same run as --weight-decay "
               "lambda N / alpha^2 (default 0)", methods=_EVERY, aliases=("lambda-torch",),
               reading_of="weight_decay",
               convert=lambda v, p: weight_decay_from_torch(v, p.N, p.alpha)),
)}

#: The training-option fields (default 0, omitted from to_dict while 0).
OPTION_FIELDS = tuple(TRAINING_OPTIONS)


def options_in_use(p: "Problem") -> dict[str, float]:
    """name -> value of the options of ``p`` the user set (away from their default); a field
    set from another reading (``weight_decay`` from ``weight_decay_torch``) is not listed."""
    derived = {o.reading_of for o in TRAINING_OPTIONS.values()
               if o.reading_of and getattr(p, o.name) != o.default}
    return {n: getattr(p, n) for n, o in TRAINING_OPTIONS.items()
            if n not in derived and getattr(p, n) != o.default}


def options_supporting(method: str) -> tuple[str, ...]:
    """The training options that ``method`` (one of :data:`OPTION_METHODS`) implements."""
    return tuple(n for n, o in TRAINING_OPTIONS.items() if method in o.methods)


def option_why_not(name: str, method: str) -> str:
    """Why option ``name`` is refused by ``method`` (its entry's reason, else a default)."""
    what = {"gd": "exact GD", "flow": "the gradient flow", "sgd": "minibatch / online SGD",
            "population": "the population ODE"}.get(method, method)
    return TRAINING_OPTIONS[name].why_not.get(method, f"{what} does not implement it")


def _check_options(p: "Problem") -> None:
    """Validate the option fields of ``p`` (in place) and convert each reading into its field."""
    for name, opt in TRAINING_OPTIONS.items():
        object.__setattr__(p, name, opt.check(getattr(p, name)))
    for name, opt in TRAINING_OPTIONS.items():
        if opt.reading_of is None or getattr(p, name) == opt.default:
            continue
        if getattr(p, opt.reading_of) != TRAINING_OPTIONS[opt.reading_of].default:
            raise ProblemError(f"give {opt.reading_of} or {name}, not both: they are two "
                               f"conventions of the same option")
        value = opt.convert(getattr(p, name), p)
        object.__setattr__(p, opt.reading_of,
                           TRAINING_OPTIONS[opt.reading_of].check(value))


#: Further fields left out of to_dict while at their default.
_DEFAULTED_FIELDS = {"target": "paper", "batch_size": None, "online": False, "init": "iid",
                     "init_scale": 1.0}


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
    weight_decay_torch : lambda_t >= 0 (default 0), weight decay in the PyTorch/optax
        reading: W <- W - eta (dL/dW + lambda_t W) with the raw step eta = eta0 N / alpha^2
        (finite N only).  It sets ``weight_decay`` to lambda_t N / alpha^2
        (:func:`weight_decay_from_torch`) and is what ``to_dict`` keeps; giving both is
        refused, and :meth:`replace` converts again at the new N and alpha.

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
    init : the initialisation family (default "iid"): ``iid``, ``lowrank:R``, ``powerlaw:P`` or
        ``aligned:R:C`` (``spec.inits``, docs/init_structure.md), drawn from the W0 stream (its
        first draw is the iid W0, so "iid" is unchanged bit for bit); at N = inf the neuron
        covariance M0 of the family (``ProblemData.M0``).  Every family but iid has
        tr M0 = D exactly.
    init_scale : sigma > 0 (default 1), multiplies W0 (M0 by sigma^2); exactly the same run as
        (alpha, eps) -> (sigma alpha, sigma eps) at the same eta0.

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
    init: str = "iid"
    init_scale: float = 1.0
    weight_decay_torch: float = 0.0

    def __post_init__(self) -> None:
        for name in ("D", "P", "test_size"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                raise ProblemError(f"{name} must be a positive integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        object.__setattr__(self, "N", parse_N(self.N))
        object.__setattr__(self, "alpha", positive_real("alpha", self.alpha))
        object.__setattr__(self, "eps", real("eps", self.eps))
        object.__setattr__(self, "eta0", positive_real("eta0", self.eta0))
        if not is_int(self.seed) or self.seed < 0:
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
        _check_options(self)
        if not isinstance(self.target, str) or not self.target.strip():
            raise ProblemError(f"target must be a non-empty spec string, got {self.target!r}")
        object.__setattr__(self, "target", self.target.strip())
        if self.target != "paper":
            check_target_dims(parse_spec(self.target), self.target, self.D)
        if self.batch_size is not None:
            if not is_int(self.batch_size) or self.batch_size < 1:
                raise ProblemError("batch_size must be a positive integer or None, got "
                                   f"{self.batch_size!r}")
            object.__setattr__(self, "batch_size", int(self.batch_size))
        if not isinstance(self.online, (bool, np.bool_)):
            raise ProblemError(f"online must be True or False, got {self.online!r}")
        object.__setattr__(self, "online", bool(self.online))
        object.__setattr__(self, "init", str(check_init(self.init, self.D, self.N)))
        object.__setattr__(self, "init_scale", check_init_scale(self.init_scale))
        check_representable(self)

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
    def scaled_alpha_eps(self) -> tuple[float, float]:
        """(sigma alpha, sigma eps) with sigma = init_scale: the (alpha, eps) of the same run
        from the unscaled init (the one place this equivalence is applied)."""
        return self.alpha * self.init_scale, self.eps * self.init_scale

    @property
    def tau(self) -> float:
        """Target coefficient in convention-A units: y = tau (beta . x)**2."""
        return 0.5 if self.convention == "A" else 1.0

    @property
    def input_scale(self) -> float:
        """Factor that maps stored inputs to convention-A units (1 for A, 1/sqrt(D) for B)."""
        return 1.0 if self.convention == "A" else 1.0 / math.sqrt(self.D)

    def replace(self, **changes: Any) -> "Problem":
        """A copy with some fields changed (validated again; ProblemError for an unknown
        field).  A field set from another reading (``weight_decay`` from
        ``weight_decay_torch``) is converted again unless ``changes`` name it."""
        _check_fields(changes, "replace")
        for name, opt in TRAINING_OPTIONS.items():
            if opt.reading_of and getattr(self, name) != opt.default:
                changes.setdefault(opt.reading_of, TRAINING_OPTIONS[opt.reading_of].default)
        return dataclasses.replace(self, **changes)

    def canonical(self) -> "Problem":
        """The same run with every option in the package's own (width-free) reading: each
        field set from another reading keeps its value, the reading goes back to 0."""
        changes = {n: o.default for n, o in TRAINING_OPTIONS.items() if o.reading_of}
        changes.update({o.reading_of: getattr(self, o.reading_of)
                        for o in TRAINING_OPTIONS.values() if o.reading_of})
        return self.replace(**changes)

    # ------------------------------------------------------------------ serialisation
    @property
    def has_options(self) -> bool:
        """True when any training option (:data:`TRAINING_OPTIONS`) is nonzero."""
        return bool(options_in_use(self))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields; the training options are left out while they are 0, and
        so is a field set from another reading (the reading the user gave is kept)."""
        d = dataclasses.asdict(self)
        if math.isinf(self.N):
            d["N"] = "inf"
        used = options_in_use(self)
        for name in OPTION_FIELDS:
            if name not in used:
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
        _check_fields(d, "problem")
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



# Paper configurations (../shared/reference/paper_notes.md §1.5, issue #2).
PRESETS: dict[str, dict[str, Any]] = {
    "fig1": dict(convention="A", D=100, P=550, N=500, alpha=1.0, eps=0.02, eta0=1.0,
                 centered=True),
    "fig4": dict(convention="A", D=40, P=120, N=2, alpha=1.0, eps=0.25, eta0=0.5,
                 centered=False),
}
PRESET_STEPS: dict[str, int] = {"fig1": 100_000, "fig4": 50_000}


def _check_fields(fields: dict[str, Any], what: str) -> None:
    """ProblemError naming every key of ``fields`` that is not a Problem field."""
    known = [f.name for f in dataclasses.fields(Problem)]
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        raise ProblemError(f"unknown problem field(s) in {what}: {', '.join(unknown)} "
                           f"(fields: {', '.join(known)})")


def preset(name: str, **overrides: Any) -> Problem:
    """The Problem of a named paper configuration, with optional field overrides.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    **overrides
        Problem fields replacing the preset's.

    Returns
    -------
    Problem
        ProblemError (one line) for an unknown preset or field, or invalid values.
    """
    if name not in PRESETS:
        raise ProblemError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    _check_fields(overrides, f"preset({name!r})")
    return Problem(**{**PRESETS[name], **overrides})
