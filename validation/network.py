"""Independent finite-network check: train the actual N x D network by GD (or SGD).

This module deliberately shares **no numerics** with :mod:`lazyrich_theory`.  It imports only
the input/output containers (``Problem``, ``ProblemData``, the errors, ``Trajectory``,
``CORE_COLUMNS``), the save-time schedule, the teacher's labels for online samples and the
init measures reported in ``info``, and re-implements everything else in the
network's own terms: a forward pass through the weight matrix ``W`` (N x D), an explicit
(autograd-free) gradient of the loss with respect to ``W`` (and the readouts ``a`` if they
are trained), and plain GD updates.  It is therefore a check of the reduced (width-free)
dynamics, not a re-use of it.

Model (arXiv 2310.06110; docs/theory.md §1, §2)
-----------------------------------------------
The stored inputs ``X`` are used in each convention's *own* units:

* convention A: ``x ~ N(0, I/D)`` as stored, pre-activation ``h_i = w_i . x``;
* convention B: ``x ~ N(0, I)`` as stored, pre-activation ``h_i = w_i . x / sqrt(D)``.

``phi(z) = z + eps z^2 / 2`` and ``f(x) = (alpha/N) sum_i a_i phi(h_i(x))``.  The readouts
``a`` are fixed to ones unless ``train_readouts=True``; then they *also start at ones* (not
at the paper's ``a ~ N(0, 1)``, so that ``train_readouts=False`` and ``True`` share the same
initial function and differ only by the trained ``a``) and are trained by GD with the same
step as ``W``.

Centered runs train ``ftilde = f(W, a) - f(W0, a0)`` (f0 precomputed on train and test);
uncentered runs train ``ftilde = f``.  Loss ``L = mean_mu (ftilde(x_mu) - y_mu)^2``;
GD ``W <- W - eta dL/dW`` with ``eta = eta0 * N / alpha^2`` and, per neuron,

    dL/dw_i = (2/P) sum_mu r_mu (alpha/N) a_i phi'(h_{i mu}) dh_{i mu}/dw_i,
    dh_{i mu}/dw_i = x_mu (A)  or  x_mu / sqrt(D) (B),        r_mu = ftilde(x_mu) - y_mu,
    dL/da_i = (2/P) sum_mu r_mu (alpha/N) phi(h_{i mu}).

Training options (``Problem.noise``, ``weight_decay``, ``momentum``, ``weight_decay_torch``;
docs/theory.md §9): label noise is already in ``data.y`` (``Problem.data()`` adds it to the
training labels); weight decay lambda and heavy-ball momentum mu act on ``W`` as

    D_W = -eta dL/dW - eta0 lambda W,     V <- mu V + D_W,  W <- W + V   (V starts at 0),

which is plain GD ``W <- W + D_W`` when mu = 0.  ``weight_decay_torch`` lambda_t is the
PyTorch/optax reading, applied literally as the gradient of L + (lambda_t / 2) |W|^2 with the
raw step (``Problem.weight_decay``, which the solver converts it into, is not read then):

    D_W = -eta (dL/dW + lambda_t W).

None is supported with trained readouts; an option not in :data:`IMPLEMENTED_OPTIONS` is
refused (a new option must be implemented here before the network can check it).

Minibatch and online SGD (``Problem.batch_size``, ``Problem.online``; docs/sgd.md): each step
uses the mean-squared-error gradient on a batch of B points only (dL_b/dW: the formula above
with P -> B and the sum over the batch), with decay and momentum as above.  The batch
sequence is re-implemented here from the documented rule (no code shared with the solver):

* minibatch (1 <= B < P): a ``Generator(PCG64(SeedSequence(seed, spawn_key=(5,))))``; each
  epoch draws ``permutation(P)`` and steps through its P // B consecutive slices of B indices
  (the P mod B leftovers are skipped); the recorded train loss is the full training loss;
* online: ``Generator(PCG64(SeedSequence(seed, spawn_key=(6,))))``; step t draws
  ``standard_normal((B, D))`` (times 1/sqrt(D) in convention A), labels from
  ``lazyrich_theory.spec.data.labels`` (the teacher), then ``noise * standard_normal(B)`` if
  noise > 0; B = batch_size or P.  The recorded train loss is the loss on step t's batch.

Either sequence can also be passed explicitly (``batches=`` / ``samples=``).

Time ``t`` counts GD steps; the values recorded at ``t`` are those of the weights after
``t`` updates (t = 0 is the initialisation).

Population loss (docs/theory.md §4)
-----------------------------------
With the paper's statistics ``wbar = W^T a / N`` and ``M = W^T diag(a) W / N``,

    f(x) = alpha wbar . u + (alpha eps / 2) u^T M u,     u = x (A)  or  x / sqrt(D) (B),

because ``h_i = w_i . u`` in both conventions.  ``u ~ N(0, I/D)`` in both conventions, i.e.
``u`` is the input in convention-A units, and the weights themselves need *no* conversion:
in B the rows of the stored ``W`` already act on ``u``.  So ``(wbar, M)`` computed from the
unnormalised rows are already the convention-A statistics, and only the target differs:
``y = tau (beta . u)^2`` with ``tau = 1/2`` (A) or ``tau = 1`` (B, whose target has no 1/2).
The error is ``e(u) = alpha wbar_s . u + (1/2) u^T A u`` with (paper's form)

    A = alpha eps M_s - 2 tau beta beta^T,   (wbar_s, M_s) = (wbar, M) - (wbar_ref, M_ref),

(reference = initial statistics if centered, else 0), and with the Wick identities for
``u ~ N(0, I/D)`` the exact population loss is ``t1 + t2 + t3`` with

    t1 = (tr A / (2D))^2          ("variance"),
    t2 = (1/2) ||A||_F^2 / D^2    ("misalignment"),
    t3 = alpha^2 |wbar_s|^2 / D   ("linear_power").

The diagnostics ``alignment``, ``trace_dM``, ``frob_dM``, ``norm_dwbar`` are always relative
to the initial statistics, whatever the centering.

Richness (issue 17; :mod:`.richness`): the extra columns ``weight_change`` = ||W - W0||_F /
||W0||_F and ``tangent_kernel_alignment`` = <K_t, K_0> / (||K_t|| ||K_0||) with the NTK as a sum
over neurons, on the training set; ``info["init"]`` the init spec and its measures
(``spec.inits.init_measures``: effective ranks and task overlap of W0).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from tqdm import tqdm

from lazyrich_theory.spec.problem import OPTION_FIELDS, Problem
from lazyrich_theory.spec.data import ProblemData, labels
from lazyrich_theory.spec.inits import init_measures
from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.spec.schedule import save_times as _default_save_times
from lazyrich_theory.results.trajectory import CORE_COLUMNS, Trajectory

from .richness import kernel_alignment, network_ntk, stable_eta0, tangent_kernel, weight_change

__all__ = ["simulate", "network_ntk", "stable_eta0", "forward", "loss_and_grad", "NetworkDivergence",
           "IMPLEMENTED_OPTIONS"]

#: The training options (``Problem`` fields) this network implements, each in its own terms
#: (module doc); :func:`simulate` refuses any other that is set.
IMPLEMENTED_OPTIONS = ("noise", "weight_decay", "momentum", "weight_decay_torch")

#: Richness columns (issue 17), computed from W(t) and W0 in :mod:`.richness`: the relative
#: weight change and the tangent-kernel alignment with the initial NTK on the training set.
RICHNESS_COLUMNS = ("weight_change", "tangent_kernel_alignment")

#: Divergence threshold: the train loss may not exceed this multiple of its initial value.
DIVERGENCE_FACTOR = 1e8


class NetworkDivergence(DivergenceError, ValueError):
    """GD on the network diverged (non-finite loss, or loss > 1e8 x its initial value).

    A :class:`~lazyrich_theory.errors.DivergenceError` (the command line reports it in one line,
    exit 1) that is still a ``ValueError`` as before; the message names the step (``step`` is
    NaN: not recorded separately).
    """

    def __init__(self, message: str, step: float = math.nan, eta0_bound: float | None = None):
        super().__init__(message, step, eta0_bound)


# ---------------------------------------------------------------------------- primitives
def target_coefficient(problem: Problem) -> float:
    """tau with y = tau (beta . u)^2 in convention-A units u: 1/2 (A), 1 (B)."""
    return 0.5 if problem.convention == "A" else 1.0


def _preact(problem: Problem, W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pre-activations H[mu, i] = h_i(x_mu), shape (n, N)."""
    H = X @ W.T
    if problem.convention == "B":
        H *= 1.0 / math.sqrt(problem.D)
    return H


def _f_from_preact(problem: Problem, H: np.ndarray, a: np.ndarray) -> np.ndarray:
    """f = (alpha/N) sum_i a_i phi(h_i) with phi(z) = z + eps z^2 / 2."""
    N = H.shape[1]
    phi = H * H
    phi *= 0.5 * problem.eps
    phi += H
    return (problem.alpha / N) * (phi @ a)


def forward(problem: Problem, W: np.ndarray, X: np.ndarray,
            a: np.ndarray | None = None) -> np.ndarray:
    """The network output f(x; W, a) on the rows of ``X`` (stored, convention's own units)."""
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    a = np.ones(W.shape[0]) if a is None else np.asarray(a, dtype=np.float64)
    return _f_from_preact(problem, _preact(problem, W, X), a)


def _loss_from_preact(problem, H, a, f0, y):
    f = _f_from_preact(problem, H, a)
    r = f - y if f0 is None else (f - f0) - y
    return float(np.mean(r * r)), r


def _grads_from_preact(problem, X, H, a, r, train_readouts):
    """Explicit gradients (dL/dW, dL/da or None) given H = preactivations and residuals r."""
    P, N = H.shape
    k = (2.0 / P) * (problem.alpha / N)
    # coef[mu, i] = (2/P)(alpha/N) r_mu a_i phi'(h_{i mu})
    coef = problem.eps * H
    coef += 1.0
    coef *= r[:, None]
    coef *= (k * a)[None, :]
    gW = coef.T @ X  # sum_mu coef[mu, i] x_mu
    if problem.convention == "B":
        gW *= 1.0 / math.sqrt(problem.D)  # dh/dw_i = x / sqrt(D)
    ga = None
    if train_readouts:
        phi = H + (0.5 * problem.eps) * (H * H)
        ga = k * (phi.T @ r)
    return gW, ga


def loss_and_grad(problem: Problem, W: np.ndarray, X: np.ndarray, y: np.ndarray,
                  a: np.ndarray | None = None, f0: np.ndarray | None = None,
                  train_readouts: bool = False):
    """Train loss L = mean((f(W, a) - f0 - y)^2) and its explicit gradients.

    ``f0`` is the initial output on ``X`` for a centered loss (None = uncentered).
    Returns ``(L, dL/dW, dL/da)``; ``dL/da`` is None unless ``train_readouts``.
    """
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    a = np.ones(W.shape[0]) if a is None else np.asarray(a, dtype=np.float64)
    H = _preact(problem, W, X)
    L, r = _loss_from_preact(problem, H, a, f0, np.asarray(y, dtype=np.float64))
    gW, ga = _grads_from_preact(problem, X, H, a, r, train_readouts)
    return L, gW, ga


def statistics(W: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's §2.3 statistics wbar = W^T a / N and M = W^T diag(a) W / N (symmetrised)."""
    N = W.shape[0]
    wbar = W.T @ a / N
    M = W.T @ (a[:, None] * W) / N
    return wbar, 0.5 * (M + M.T)


def population_terms(problem: Problem, beta: np.ndarray, wbar: np.ndarray, M: np.ndarray,
                     wbar_ref, M_ref) -> tuple[float, float, float]:
    """(t1 variance, t2 misalignment, t3 linear_power) in the paper's A-matrix form."""
    D = problem.D
    tau = target_coefficient(problem)
    w_s = wbar - wbar_ref
    M_s = M - M_ref
    A = (problem.alpha * problem.eps) * M_s - (2.0 * tau) * np.outer(beta, beta)
    t1 = (np.trace(A) / (2.0 * D)) ** 2
    t2 = 0.5 * float(np.sum(A * A)) / D**2
    t3 = problem.alpha**2 * float(w_s @ w_s) / D
    return float(t1), float(t2), float(t3)


# ---------------------------------------------------------------------------- SGD batches
def _minibatch_stream(problem: Problem, B: int):
    """Index batches of the documented minibatch rule (see module doc), own implementation."""
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(problem.seed, spawn_key=(5,))))
    usable = (problem.P // B) * B
    while True:
        order = gen.permutation(problem.P)
        for start in range(0, usable, B):
            yield order[start:start + B]


def _online_stream(problem: Problem, data: ProblemData, B: int):
    """(inputs, labels) of the documented online rule (see module doc), own implementation."""
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(problem.seed, spawn_key=(6,))))
    scale = 1.0 / math.sqrt(problem.D) if problem.convention == "A" else 1.0
    while True:
        Xs = scale * gen.standard_normal((B, problem.D))
        ys = np.asarray(labels(problem, data, Xs), dtype=np.float64)
        if problem.noise > 0.0:
            ys = ys + problem.noise * gen.standard_normal(B)
        yield Xs, ys


# ---------------------------------------------------------------------------- simulation
@dataclass
class _Run:
    """The constants of one :func:`simulate` call (module doc)."""
    X: np.ndarray            # training inputs and labels, test inputs and labels, teacher
    y: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    beta: np.ndarray
    W0: np.ndarray           # initial weights and readouts (ones)
    a0: np.ndarray
    eta: float               # eta0 N / alpha^2
    lam_torch: float         # PyTorch/optax: W <- W - eta (dL/dW + lam_torch W)
    shrink: float            # weight decay: W loses eta0 lambda W per step (0 with lam_torch)
    mu: float                # heavy-ball momentum
    f0: np.ndarray | None    # initial output on the training / test set if centered, else None
    f0t: np.ndarray | None
    wbar0: np.ndarray        # initial statistics
    M0: np.ndarray
    wbar_ref: np.ndarray     # the population loss's reference: initial (centered) or zero
    M_ref: np.ndarray
    bhat: np.ndarray         # beta / |beta|
    K0: np.ndarray           # initial NTK on the training set


def _check_inputs(problem, steps, save_times, data, train_readouts, batches, samples):
    """Refuse what the network does not implement; returns (times, steps, data, mode)."""
    if not isinstance(problem, Problem):
        raise ProblemError(f"problem must be a Problem, got {type(problem).__name__}")
    if not problem.finite_width:
        raise ProblemError("the network needs a finite width N")
    missing = [n for n in OPTION_FIELDS if n not in IMPLEMENTED_OPTIONS and getattr(problem, n)]
    if missing:
        raise ProblemError(f"the network does not implement {', '.join(missing)}")
    if train_readouts and (problem.weight_decay != 0.0 or problem.momentum != 0.0):
        raise ProblemError("train_readouts does not support weight_decay or momentum")
    times = _default_save_times(steps, extra=save_times)  # validates steps and extras
    if data is None:
        data = problem.data()
    data.check(problem)
    minibatch = problem.batch_size is not None and problem.batch_size < problem.P
    mode = "online" if problem.online else "minibatch" if minibatch else "full"
    if batches is not None and mode != "minibatch":
        raise ProblemError("batches= needs a minibatch problem (1 <= batch_size < P, not online)")
    if samples is not None and mode != "online":
        raise ProblemError("samples= needs an online problem")
    return times, int(steps), data, mode


def _setup(problem: Problem, data: ProblemData) -> _Run:
    """The run's constants from the problem and its data."""
    X = np.ascontiguousarray(data.X, dtype=np.float64)
    Xt = np.ascontiguousarray(data.X_test, dtype=np.float64)
    beta = np.asarray(data.beta, dtype=np.float64)
    W0 = np.array(data.W0, dtype=np.float64)
    N, D = W0.shape
    a0 = np.ones(N)
    lam_torch = problem.weight_decay_torch
    f0 = forward(problem, W0, X, a0) if problem.centered else None
    f0t = forward(problem, W0, Xt, a0) if problem.centered else None
    wbar0, M0 = statistics(W0, a0)
    wbar_ref, M_ref = (wbar0, M0) if problem.centered else (np.zeros(D), np.zeros((D, D)))
    bnorm = float(np.linalg.norm(beta))
    return _Run(X=X, y=np.asarray(data.y, dtype=np.float64), Xt=Xt,
                yt=np.asarray(data.y_test, dtype=np.float64), beta=beta, W0=W0, a0=a0,
                eta=problem.eta0 * N / problem.alpha**2, lam_torch=lam_torch,
                shrink=0.0 if lam_torch != 0.0 else problem.eta0 * problem.weight_decay,
                mu=problem.momentum, f0=f0, f0t=f0t, wbar0=wbar0, M0=M0, wbar_ref=wbar_ref,
                M_ref=M_ref, bhat=beta / bnorm if bnorm > 0 else beta,
                K0=tangent_kernel(problem, W0, X, a0))


def _batch_source(problem: Problem, data: ProblemData, run: _Run, mode: str, steps: int,
                  batches, samples):
    """next_batch(t) -> (X_b, y_b, f0_b), the points step t trains on (module doc)."""
    if mode == "full":
        return lambda t: (run.X, run.y, run.f0)
    if mode == "minibatch":
        if batches is None:
            source = _minibatch_stream(problem, problem.batch_size)
        else:
            batches = np.asarray(batches)
            if batches.ndim != 2 or batches.shape[0] < steps:
                raise ProblemError(f"batches must have shape (steps, B), got {batches.shape}")
            source = iter(batches)

        def next_batch(t):
            if batches is not None and t >= len(batches):
                return run.X, run.y, run.f0  # after the last step: only the saved full loss is used
            idx = next(source)
            return run.X[idx], run.y[idx], (None if run.f0 is None else run.f0[idx])
        return next_batch
    if samples is None:
        source = _online_stream(problem, data, problem.P if problem.batch_size is None
                                else problem.batch_size)
    else:
        Xs_all, ys_all = (np.asarray(v, dtype=np.float64) for v in samples)
        if Xs_all.ndim != 3 or Xs_all.shape[0] < steps + 1 or Xs_all.shape[2] != problem.D \
                or ys_all.shape != Xs_all.shape[:2]:
            raise ProblemError("samples must be (inputs (steps + 1, B, D), labels (steps + 1, B)): "
                               "batch t is used at step t, the last one for the final loss")
        source = zip(Xs_all, ys_all)

    def next_sample(t):
        Xb, yb = next(source)
        return Xb, yb, (forward(problem, run.W0, Xb, run.a0) if problem.centered else None)
    return next_sample


def _update(run: _Run, W, a, vel, gW, ga, train_readouts: bool) -> None:
    """One step in place: W <- W + D_W (or V <- mu V + D_W, W <- W + V), a <- a - eta dL/da."""
    eta, lam_torch, shrink = run.eta, run.lam_torch, run.shrink
    if vel is None and shrink == 0.0 and lam_torch == 0.0:
        W -= eta * gW
    else:
        if lam_torch != 0.0:
            step = -eta * (gW + lam_torch * W)
        else:
            step = -eta * gW
        if shrink != 0.0:
            step -= shrink * W
        if vel is not None:
            vel *= run.mu
            vel += step
            W += vel
        else:
            W += step
    if train_readouts:
        a -= eta * ga


def _record(problem: Problem, run: _Run, W, a, L: float, j: int, rec: dict, richness: dict) -> None:
    """Write save time j's columns (train loss ``L`` given) into ``rec`` and ``richness``."""
    Ht = _preact(problem, W, run.Xt)
    Lt, _ = _loss_from_preact(problem, Ht, a, run.f0t, run.yt)
    wbar, M = statistics(W, a)
    if problem.target == "paper":
        t1, t2, t3 = population_terms(problem, run.beta, wbar, M, run.wbar_ref, run.M_ref)
    else:   # this closed form is the paper teacher's only: no independent value here
        t1 = t2 = t3 = math.nan
    dM = M - run.M0
    rec["train_loss"][j] = L
    rec["test_loss"][j] = Lt
    rec["population_loss"][j] = t1 + t2 + t3
    rec["variance"][j] = t1
    rec["misalignment"][j] = t2
    rec["linear_power"][j] = t3
    rec["alignment"][j] = float(run.bhat @ dM @ run.bhat)
    rec["trace_dM"][j] = float(np.trace(dM)) / problem.D
    rec["frob_dM"][j] = float(np.linalg.norm(dM))
    rec["norm_dwbar"][j] = float(np.linalg.norm(wbar - run.wbar0))
    richness["weight_change"][j] = weight_change(W, run.W0)
    richness["tangent_kernel_alignment"][j] = kernel_alignment(
        tangent_kernel(problem, W, run.X, a), run.K0)


def _train(problem: Problem, run: _Run, W, a, steps: int, mode: str, next_batch, times,
           train_readouts: bool, bar):
    """Train (W, a) in place for ``steps`` steps, recording at ``times``.

    Returns the core columns, the richness columns and the wall time of each step (without
    the recordings).  Raises :class:`NetworkDivergence`.
    """
    rec = {c: np.empty(len(times)) for c in CORE_COLUMNS}
    richness = {c: np.empty(len(times)) for c in RICHNESS_COLUMNS}
    save_set = {int(s): j for j, s in enumerate(times)}
    vel = np.zeros_like(run.W0) if run.mu > 0.0 else None  # heavy-ball velocity of W
    step_times = np.empty(steps)
    L_init = None
    with np.errstate(over="ignore", invalid="ignore"):
        t = 0
        while True:
            t0 = time.perf_counter()
            Xb, yb, f0b = next_batch(t)
            H = _preact(problem, W, Xb)
            L, r = _loss_from_preact(problem, H, a, f0b, yb)
            if L_init is None:
                L_init = L
                limit = DIVERGENCE_FACTOR * (L_init + 1e-300)
            if not math.isfinite(L) or L > limit:
                bound = stable_eta0(problem, run.W0, run.X, run.a0)
                raise NetworkDivergence(
                    f"network GD diverged at step {t}: train loss {L:.3e} "
                    f"(initial {L_init:.3e}); eta0={problem.eta0:g} but GD on the "
                    f"linearised network is stable only for eta0 < {bound:.4g}")
            j = save_set.get(t)
            if j is not None:
                t_rec = time.perf_counter()
                L_saved = L
                if mode == "minibatch":     # the saved train loss is the full one
                    L_saved, _ = _loss_from_preact(problem, _preact(problem, W, run.X), a,
                                                   run.f0, run.y)
                    if not math.isfinite(L_saved):
                        raise NetworkDivergence(f"network SGD diverged at step {t}: "
                                                f"train loss {L_saved:.3e}")
                _record(problem, run, W, a, L_saved, j, rec, richness)
                t0 += time.perf_counter() - t_rec  # exclude recording from step time
            if t == steps:
                break
            gW, ga = _grads_from_preact(problem, Xb, H, a, r, train_readouts)
            _update(run, W, a, vel, gW, ga, train_readouts)
            step_times[t] = time.perf_counter() - t0
            t += 1
            if bar is not None:
                bar.update(1)
    return rec, richness, step_times


def simulate(problem: Problem, steps: int, save_times: Iterable[float] | None = None,
             data: ProblemData | None = None, train_readouts: bool = False,
             progress: bool = False, batches: np.ndarray | None = None,
             samples: tuple[np.ndarray, np.ndarray] | None = None) -> Trajectory:
    """Train the N x D network by GD, or minibatch / online SGD (module doc), for ``steps`` steps.

    Parameters
    ----------
    problem : Problem
        Finite width, only :data:`IMPLEMENTED_OPTIONS`; SGD if ``online`` or ``batch_size`` < P.
    steps : int
        Number of steps.
    save_times : iterable of float, optional
        Extra save times added to the default log schedule.
    data : ProblemData, optional
        Defaults to ``problem.data()``.
    train_readouts, progress : bool
        Also train the readouts ``a`` (which start at ones); show a progress bar.
    batches, samples : ndarray, optional
        Explicit minibatch indices (steps, B), or online samples (inputs (steps + 1, B, D) in
        stored units, labels (steps + 1, B)), instead of the documented rules; online batch t
        drives step t and batch ``steps`` gives the final train loss.

    Returns
    -------
    Trajectory
        Method "network"; ``final_state`` holds ``W``, ``a``, ``wbar``, ``M``;
        ``info["time_per_step"]`` is the median wall time of one step without the recordings.

    Raises
    ------
    NetworkDivergence
        If the train loss becomes non-finite or exceeds 1e8 times its initial value.
    """
    t_start = time.perf_counter()
    times, steps, data, mode = _check_inputs(problem, steps, save_times, data, train_readouts,
                                             batches, samples)
    run = _setup(problem, data)
    next_batch = _batch_source(problem, data, run, mode, steps, batches, samples)
    W, a = run.W0.copy(), run.a0.copy()
    bar = tqdm(total=steps, desc="network GD", unit="step", mininterval=0.5, leave=False,
               disable=None) if progress else None
    try:
        rec, richness, step_times = _train(problem, run, W, a, steps, mode, next_batch, times,
                                           train_readouts, bar)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t_start
    wbar, M = statistics(W, a)
    info = {"steps": steps, "wall_time": wall, "train_readouts": bool(train_readouts), "sgd": mode,
            "time_per_step": float(np.median(step_times)) if steps > 0 else 0.0,
            "init": {"init": str(getattr(problem, "init", "iid")),
                     "init_scale": float(getattr(problem, "init_scale", 1.0)),
                     **init_measures(run.W0, run.beta, finite=True)}}
    return Trajectory(problem=problem, method="network", t=np.asarray(times, dtype=np.float64),
                      **rec, extra=richness, info=info,
                      final_state={"W": W, "a": a, "wbar": wbar, "M": M})
