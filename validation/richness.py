"""Richness measures of the actual network, in its own terms (no numerics shared with the solver).

* ``weight_change(W, W0)`` = ||W - W0||_F / ||W0||_F, from the weight matrices;
* ``tangent_kernel(problem, W, X)``: the NTK with respect to W as a sum over neurons,
  K(x, x') = sum_i df(x)/dw_i . df(x')/dw_i = (alpha/N)^2 c^2 (x . x') sum_i a_i^2 phi'(h_i(x)) phi'(h_i(x'))
  (c = 1 in convention A, 1/sqrt(D) in B; the explicit Jacobian of ``network.network_ntk`` gives
  the same matrix at O(P^2 N D) cost instead of O(P^2 N));
* ``kernel_alignment(K, K0)`` = <K, K0>_F / (||K||_F ||K0||_F) (Liu et al.);
* ``representation_alignment(problem, W, W0, X)``: the same for the activity Grams
  (1/N) sum_i phi(h_i(x)) phi(h_i(x'));
* ``network_ntk``: the same NTK from the explicit Jacobian J[m, (i, d)] (a reference for small
  problems), and ``stable_eta0``, the largest stable eta0 of GD on the linearised network;
* ``plus_minus_weights(Sigma)``: a finite network whose neurons have exactly mean 0 and second
  moment Sigma (rows +-sqrt(rho) l_k, Sigma = L L^T with rho = rank Sigma columns, N = 2 rho):
  its GD is the N = inf dynamics of the Gaussian init N(0, Sigma) in every statistic the loss sees.
"""

from __future__ import annotations

import math

import numpy as np

from lazyrich_theory.spec.problem import Problem

__all__ = ["weight_change", "tangent_kernel", "kernel_alignment", "activity_gram",
           "representation_alignment", "plus_minus_weights", "network_ntk", "stable_eta0"]


def weight_change(W: np.ndarray, W0: np.ndarray) -> float:
    """||W - W0||_F / ||W0||_F."""
    return float(np.linalg.norm(W - W0) / np.linalg.norm(W0))


def _preactivations(problem: Problem, W: np.ndarray, X: np.ndarray) -> np.ndarray:
    H = X @ W.T
    if problem.convention == "B":
        H /= math.sqrt(problem.D)
    return H


def tangent_kernel(problem: Problem, W: np.ndarray, X: np.ndarray,
                   a: np.ndarray | None = None) -> np.ndarray:
    """The empirical NTK with respect to W on the rows of ``X`` (stored units), P x P."""
    N = W.shape[0]
    a = np.ones(N) if a is None else np.asarray(a, dtype=np.float64)
    c2 = 1.0 if problem.convention == "A" else 1.0 / problem.D
    slope = 1.0 + problem.eps * _preactivations(problem, W, X)   # phi'(h), (P, N)
    S = (slope * (a * a)[None, :]) @ slope.T
    return (problem.alpha / N) ** 2 * c2 * (X @ X.T) * S


def kernel_alignment(K: np.ndarray, K0: np.ndarray) -> float:
    """<K, K0>_F / (||K||_F ||K0||_F)."""
    return float(np.sum(K * K0) / (np.linalg.norm(K) * np.linalg.norm(K0)))


def activity_gram(problem: Problem, W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(1/N) sum_i phi(h_i(x)) phi(h_i(x')) on the rows of ``X``."""
    H = _preactivations(problem, W, X)
    A = H + 0.5 * problem.eps * H * H
    return A @ A.T / W.shape[0]


def representation_alignment(problem: Problem, W: np.ndarray, W0: np.ndarray,
                             X: np.ndarray) -> float:
    """Alignment of the activity Grams of W and W0 on the rows of ``X``."""
    return kernel_alignment(activity_gram(problem, W, X), activity_gram(problem, W0, X))


def plus_minus_weights(Sigma: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Rows +-sqrt(rho) l_k (k <= rho = rank Sigma, Sigma = L L^T from its eigenvectors):
    N = 2 rho neurons with mean exactly 0 and W^T W / N = Sigma (to round-off)."""
    lam, V = np.linalg.eigh(0.5 * (Sigma + Sigma.T))
    keep = lam > rtol * lam[-1]
    L = V[:, keep] * np.sqrt(lam[keep])
    rows = math.sqrt(L.shape[1]) * L.T
    return np.concatenate([rows, -rows], axis=0)


# ---------------------------------------------------------------------------- kernel
def stable_eta0(problem: Problem, W: np.ndarray, X: np.ndarray, a: np.ndarray | None = None) -> float:
    """Largest stable eta0 of GD on the network linearised at W: the loss (1/P)|f - y|^2
    under W <- W - eta grad has residual map I - (2 eta / P) K, stable while
    (2 eta / P) lambda_max(K) < 2, i.e. eta0 < P alpha^2 / (N lambda_max(K)) with eta = eta0 N / alpha^2."""
    K = network_ntk(problem, W, X, a=a)
    lam = float(np.linalg.eigvalsh(0.5 * (K + K.T))[-1])
    N = W.shape[0]
    return X.shape[0] * problem.alpha**2 / (N * lam) if lam > 0 else float("inf")


def network_ntk(problem: Problem, W: np.ndarray, X: np.ndarray, X2: np.ndarray | None = None,
                a: np.ndarray | None = None) -> np.ndarray:
    """Empirical NTK w.r.t. W only: K(x, x') = sum_i df(x)/dw_i . df(x')/dw_i.

    Built from the explicit Jacobian J[m, (i, d)] = (alpha/N) a_i phi'(h_i(x_m)) c x_{m d}
    (c = 1 in A, 1/sqrt(D) in B; inputs in the convention's own units), shape (n, N*D),
    assembled in blocks of neurons to bound memory.  Meant for small problems.
    Returns K(X, X2) of shape (n, n2) (X2 defaults to X).
    """
    W = np.asarray(W, dtype=np.float64)
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    same = X2 is None
    X2 = X if same else np.atleast_2d(np.asarray(X2, dtype=np.float64))
    N, D = W.shape
    a = np.ones(N) if a is None else np.asarray(a, dtype=np.float64)
    c = 1.0 if problem.convention == "A" else 1.0 / math.sqrt(problem.D)

    def jac_block(Xb: np.ndarray, sl: slice) -> np.ndarray:
        Hb = _preactivations(problem, W[sl], Xb)  # (n, nb)
        g = (problem.alpha / N) * a[sl][None, :] * (1.0 + problem.eps * Hb)
        J = g[:, :, None] * (c * Xb)[:, None, :]  # (n, nb, D)
        return J.reshape(Xb.shape[0], -1)

    n, n2 = X.shape[0], X2.shape[0]
    block = max(1, int(2e7 // (max(n, n2) * D)))
    K = np.zeros((n, n2))
    for start in range(0, N, block):
        sl = slice(start, min(N, start + block))
        J1 = jac_block(X, sl)
        J2 = J1 if same else jac_block(X2, sl)
        K += J1 @ J2.T
    return K
