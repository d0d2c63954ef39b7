"""The lazy regime in closed form (docs/theory.md §6–7): the NTK from the statistics, kernel
regression with the initial kernel (the paper's K0 baseline), the linearised model's curves at
any time from one eigendecomposition, and kernel-alignment diagnostics.

All kernels are the width-free Ktilde (eta K = eta0 Ktilde) in convention-A units, built from a
reduced state F (M = F F^T, wbar = F z).  With c = 2 eta0 / P, GD on the model linearised at
F0 moves the training residual as r_t = (I - c K)^t r_0, and gradient flow as exp(-c K t) r_0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .kernels import ntk_tilde
from .problem import Problem, ProblemData, ProblemError
from .reduced import ReducedSystem
from .statistics import predict

__all__ = ["ntk", "LinearizedModel", "kernel_regression", "paper_kernel_alignment",
           "centered_kernel_alignment", "kernel_drift", "target_power_topk", "lazy_summary",
           "kernel_alignment_observer", "solve_with_theory"]


def _eigh(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """eigh of a symmetrised K with BLAS single-threaded: multithreaded OpenBLAS eigh of a
    550 x 550 matrix measured 4.3 s on a busy 2-core machine against 0.1 s single-threaded."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return np.linalg.eigh(0.5 * (K + K.T))


def ntk(system: ReducedSystem, F: np.ndarray, X1: np.ndarray, X2: np.ndarray | None = None,
        width_free: bool = True) -> np.ndarray:
    """NTK between rows of X1 and X2 (convention-A units) at state F.

    width_free=True:  Ktilde(x, x') = (x.x') [1 + eps wbar.(x + x') + eps^2 x^T M x'];
    width_free=False: the network's K = (alpha^2 / N) Ktilde (finite N only)."""
    K = ntk_tilde(X1, F, system.z, system.problem.eps, X2)
    if width_free:
        return K
    p = system.problem
    if not p.finite_width:
        raise ProblemError("the unnormalised NTK needs a finite width; use width_free=True")
    return (p.alpha**2 / p.N) * K


def _initial_outputs(system: ReducedSystem) -> tuple[np.ndarray, np.ndarray]:
    """ftilde at initialisation on train and test: 0 (centered) or f(x; W0) (uncentered)."""
    p = system.problem
    if p.centered:
        return np.zeros(system.X.shape[0]), np.zeros(system.X_test.shape[0])
    return (predict(system.X @ system.F0, system.z, p.alpha, p.eps),
            predict(system.X_test @ system.F0, system.z, p.alpha, p.eps))


def kernel_regression(K: np.ndarray, K_test: np.ndarray, y: np.ndarray, y_test: np.ndarray,
                      ridge: float = 0.0, base: np.ndarray | None = None,
                      base_test: np.ndarray | None = None) -> tuple[float, float]:
    """(train MSE, test MSE) of kernel regression f(x) = base(x) + K(x, X) (K + ridge I)^+ (y - base).

    ridge = 0 is ridgeless: the pseudo-inverse keeps eigenvalues above P * eps_machine * lambda_max.
    With base = 0 (centered model) this is the paper's "K0 regression" line."""
    if ridge < 0 or not math.isfinite(ridge):
        raise ProblemError(f"ridge must be finite and >= 0, got {ridge}")
    base = np.zeros_like(y) if base is None else base
    base_test = np.zeros_like(y_test) if base_test is None else base_test
    lam, V = _eigh(K)
    cut = K.shape[0] * np.finfo(float).eps * max(lam[-1], 0.0)
    inv = np.where(lam + ridge > cut, 1.0 / np.maximum(lam + ridge, cut), 0.0)
    a = V @ (inv * (V.T @ (y - base)))
    r_train = base + K @ a - y
    r_test = base_test + K_test @ a - y_test
    return float(r_train @ r_train) / y.size, float(r_test @ r_test) / y_test.size


@dataclass
class LinearizedModel:
    """The model linearised at initialisation, solved in the eigenbasis of K0 = V diag(lam) V^T.

    Train residual   r(t) = V q(t) V^T r0,            q = (1 - c lam)^t (GD) or exp(-c lam t) (flow)
    Test residual    r_test(t) = r0_test + K0(X_test, X) V diag((q - 1)/lam) V^T r0
    with r0 = ftilde0(X) - y and c = 2 eta0 / P; (q - 1)/lam -> -c t as lam -> 0."""

    system: ReducedSystem
    lam: np.ndarray
    V: np.ndarray
    B: np.ndarray          # K0(X_test, X) V
    a: np.ndarray          # V^T r0
    r0_test: np.ndarray
    c: float

    @classmethod
    def build(cls, problem: Problem, data: ProblemData | None = None,
              system: ReducedSystem | None = None) -> "LinearizedModel":
        system = ReducedSystem.build(problem, data) if system is None else system
        F0 = system.F0
        K = ntk(system, F0, system.X)
        lam, V = _eigh(K)
        lam = np.maximum(lam, 0.0)        # K0 is a Gram matrix; clip round-off negatives
        K_test = ntk(system, F0, system.X_test, system.X)
        f0, f0_test = _initial_outputs(system)
        r0 = f0 - system.y
        return cls(system, lam, V, K_test @ V, V.T @ r0, f0_test - system.y_test,
                   2.0 * problem.eta0 / system.X.shape[0])

    def _factors(self, t: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=np.float64)[:, None]
        cl = self.c * self.lam[None, :]
        if method == "gd":
            if np.any(cl >= 2.0):
                raise ProblemError(
                    f"the linearised GD map is unstable: eta0 must be < "
                    f"{self.system.X.shape[0] / self.lam[-1]:.4g} (P/lambda_max(K0))")
            with np.errstate(invalid="ignore", divide="ignore"):
                small = np.expm1(t * np.log1p(-np.minimum(cl, 0.5)))      # c lam <= 1/2
                large = np.power(1.0 - cl, t) - 1.0                       # 1/2 < c lam < 2
            qm1 = np.where(cl <= 0.5, small, large)
        elif method == "flow":
            qm1 = np.expm1(-cl * t)
        else:
            raise ProblemError(f"method must be 'gd' or 'flow', got {method!r}")
        tiny = self.lam <= self.lam[-1] * 1e-14
        lam_safe = np.where(tiny, 1.0, self.lam)
        ratio = np.where(tiny[None, :], -self.c * t, qm1 / lam_safe[None, :])
        return qm1 + 1.0, ratio

    def curves(self, t, method: str = "gd") -> tuple[np.ndarray, np.ndarray]:
        """(train_loss, test_loss) of the linearised model at times t (vectorised)."""
        q, ratio = self._factors(t, method)
        train = (q * q) @ (self.a * self.a) / self.a.size
        R = self.r0_test[None, :] + (ratio * self.a[None, :]) @ self.B.T
        test = np.mean(R * R, axis=1)
        return train, test

    def limit(self) -> tuple[float, float]:
        """t -> infinity: ridgeless kernel regression with K0 (train, test MSE)."""
        s = self.system
        f0, f0_test = _initial_outputs(s)
        K = (self.V * self.lam) @ self.V.T
        return kernel_regression(K, self.B @ self.V.T, s.y, s.y_test, 0.0, f0, f0_test)


# ---------------------------------------------------------------------------- alignment
def paper_kernel_alignment(K: np.ndarray, y: np.ndarray) -> float:
    """The paper's "NTK alignment" (one-sided centering, NOT standard CKA):

        A = y_c^T K_c y_c / (||K_c||_F |y_c|^2),  y_c = y - mean(y),  K_c = K - colmean(K)

    where only column means are subtracted (K.mean(axis=0)), as in the authors' code."""
    yc = y - y.mean()
    Kc = K - K.mean(axis=0, keepdims=True)
    den = np.linalg.norm(Kc) * float(yc @ yc)
    return float(yc @ Kc @ yc) / den if den > 0 else math.nan


def centered_kernel_alignment(K: np.ndarray, y: np.ndarray) -> float:
    """Standard centered kernel alignment with the target kernel y y^T (Cortes et al. 2012):

        A = <H K H, H y y^T H>_F / (||H K H||_F ||H y y^T H||_F) = y_c^T K y_c / (||HKH||_F |y_c|^2)."""
    yc = y - y.mean()
    Kc = K - K.mean(axis=0, keepdims=True)
    Kc = Kc - Kc.mean(axis=1, keepdims=True)
    den = np.linalg.norm(Kc) * float(yc @ yc)
    return float(yc @ K @ yc) / den if den > 0 else math.nan


def kernel_drift(K_t: np.ndarray, K_0: np.ndarray) -> float:
    """Relative kernel drift ||K_t - K_0||_F / ||K_0||_F."""
    return float(np.linalg.norm(K_t - K_0) / np.linalg.norm(K_0))


def target_power_topk(K: np.ndarray, y: np.ndarray, k: int) -> float:
    """Fraction of target power in the top-k eigenvectors v_i of K: sum_{i<=k} (v_i.y)^2 / |y|^2."""
    if k < 1:
        raise ProblemError(f"k must be >= 1, got {k}")
    lam, V = _eigh(K)
    proj = V[:, ::-1][:, :k].T @ y
    return float(proj @ proj / (y @ y))


#: The ``kernel_alignment`` column uses at most this many test points (cost ~ n^2 r per save).
ALIGNMENT_POINTS = 500


def kernel_alignment_observer(system: ReducedSystem, F: np.ndarray) -> float:
    """The ``kernel_alignment`` column: the paper's alignment (one-sided centering) of the
    current NTK with the targets on the test set, as in the paper's Figure 1 — on the first
    ``ALIGNMENT_POINTS`` test points (all of them when the test set is smaller)."""
    n = min(ALIGNMENT_POINTS, system.X_test.shape[0])
    K = ntk(system, F, system.X_test[:n])
    return paper_kernel_alignment(K, system.y_test[:n])


def lazy_summary(problem: Problem, data: ProblemData | None = None,
                 system: ReducedSystem | None = None) -> dict[str, float]:
    """K0-regression train/test MSE (ridgeless), and the linearised model's lazy peak (argmax
    of its test loss over a fine log grid up to the horizon where it has converged)."""
    model = LinearizedModel.build(problem, data, system)
    tr, te = model.limit()
    # lazy peak: fine log grid up to well past the slowest linear mode's time
    t = np.unique(np.concatenate([[0.0], np.logspace(0, 9, 541)]))
    method = "gd" if np.all(model.c * model.lam < 2.0) else "flow"
    _, test = model.curves(t, method)
    k = int(np.argmax(test))
    return {"kernel_regression_train_loss": tr, "kernel_regression_test_loss": te,
            "linearized_peak_time": float(t[k]) if k > 0 else math.nan,
            "linearized_peak_test_loss": float(test[k])}


def solve_with_theory(problem: Problem, steps: int, method: str = "gd",
                      data: ProblemData | None = None, **solve_kw):
    """``solve`` plus the lazy-regime theory, as ``lazyrich solve`` writes it:

    * columns ``linearized_train_loss``/``linearized_test_loss`` (closed form, same method),
      and ``kernel_alignment`` (the paper's alignment of the current test-set NTK);
    * ``info["summary"]``: K0-regression train/test MSE, the linearised model's lazy peak,
      predicted times (lazyrich_theory.timescales) and measured grokking metrics.
    """
    from .reduced import solve
    from .timescales import grokking_metrics, predict_timescales

    data = problem.data() if data is None else data
    observers = dict(solve_kw.pop("observers", None) or {})
    observers.setdefault("kernel_alignment", kernel_alignment_observer)
    traj = solve(problem, steps, method=method, data=data, observers=observers, **solve_kw)
    system = ReducedSystem.build(problem, data)
    model = LinearizedModel.build(problem, data, system)
    lin_method = "gd" if method == "gd" and np.all(model.c * model.lam < 2.0) else "flow"
    lin_train, lin_test = model.curves(traj.t, lin_method)
    traj = traj.with_columns(linearized_train_loss=lin_train, linearized_test_loss=lin_test)
    summary: dict = dict(lazy_summary(problem, data, system))
    ts = predict_timescales(problem, data, summary["linearized_peak_time"])
    summary.update(ts.to_dict())
    summary.update({f"measured_{k}": v for k, v in
                    grokking_metrics(traj.t, traj.train_loss, traj.test_loss).items()})
    summary["initial_test_loss"] = float(traj.test_loss[0])
    summary["max_test_loss"] = float(np.max(traj.test_loss))
    traj.info["summary"] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in summary.items()}
    return traj
