"""A user function as teacher: Monte-Carlo population loss with unbiased estimates and error bars."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.targets.grammar import (
    MC_FOLDS, MC_SAMPLES, MC_SE_SUBSAMPLE, _MC_CHUNK,
)
from lazyrich_theory.spec.targets.families import Target


class FunctionTarget(Target):
    """y = fn(Z) (any function); the projections and E[y^2] are Monte-Carlo means over n fresh
    z: c0 = <y>, c1 = <y z>, C2 = <y (z z^T - I)>/2, S = <y^2>.
    population_loss = E[ftilde^2] - 2 <ftilde y> + <y^2> (unbiased), standard error
    sd(y^2 - 2 ftilde y)/sqrt(n) with the sd taken on the first MC_SE_SUBSAMPLE samples.
    irreducible = S - |y_{<=2}|^2 with |y_{<=2}|^2 = c0^2 + |c1|^2 + 2 tr C2^2 estimated
    without bias by the U-statistic over MC_FOLDS independent folds (mean of the cross products
    <c_a, c_b>, a != b; the plug-in |c|^2 is biased up by about (1 + D + D(D+1)/2) S / n);
    its standard error is the delete-one-fold jackknife."""

    exact = False

    def __init__(self, fn: Callable, D: int, rng: np.random.Generator, samples: int = MC_SAMPLES,
                 spec: str = "func"):
        self.fn, self.D, self.spec, self.samples = fn, int(D), spec, int(samples)
        K = MC_FOLDS
        if self.samples < 2 * K:
            raise ProblemError(f"target {spec!r}: samples must be >= {2 * K}, got {self.samples}")
        S0 = np.zeros(K)
        S1 = np.zeros((K, D))
        S2 = np.zeros((K, D, D))
        Syy = np.zeros(K)
        cnt = np.zeros(K)
        subZ, suby = [], []
        done = 0
        while done < self.samples:
            n = min(_MC_CHUNK, self.samples - done)
            Z = rng.standard_normal((n, D))
            y = self.labels_z(Z)
            for k in range(K):           # sample i (global index) belongs to fold i mod K
                sl = slice((k - done) % K, None, K)
                Zk, yk = Z[sl], y[sl]
                S0[k] += float(yk.sum())
                S1[k] += Zk.T @ yk
                S2[k] += (Zk * yk[:, None]).T @ Zk
                Syy[k] += float(yk @ yk)
                cnt[k] += yk.size
            if done < MC_SE_SUBSAMPLE:
                subZ.append(Z[:MC_SE_SUBSAMPLE - done])
                suby.append(y[:MC_SE_SUBSAMPLE - done])
            done += n
        n = self.samples
        I = np.eye(D)
        self.c0 = float(S0.sum()) / n
        self.c1 = S1.sum(axis=0) / n
        C2 = 0.5 * (S2.sum(axis=0) / n - self.c0 * I)
        self.C2 = 0.5 * (C2 + C2.T)
        self.y2 = float(Syy.sum()) / n
        self._Z, self._y = np.concatenate(subZ), np.concatenate(suby)
        # per-fold projections and their Gram matrix of the bilinear form
        # <c, c'> = c0 c0' + c1.c1' + 2 tr(C2 C2') = E[y_{<=2} y'_{<=2}]
        c0k = S0 / cnt
        c1k = S1 / cnt[:, None]
        C2k = 0.5 * (S2 / cnt[:, None, None] - c0k[:, None, None] * I)
        C2k = 0.5 * (C2k + np.transpose(C2k, (0, 2, 1)))
        G = (np.outer(c0k, c0k) + c1k @ c1k.T
             + 2.0 * np.einsum("aij,bij->ab", C2k, C2k))
        y2k = Syy / cnt

        def irreducible(folds: np.ndarray) -> float:
            m = folds.size
            sub = G[np.ix_(folds, folds)]
            cross = (sub.sum() - np.trace(sub)) / (m * (m - 1))
            return float(np.average(y2k[folds], weights=cnt[folds]) - cross)

        allf = np.arange(K)
        self.irreducible_loss = irreducible(allf)
        proj_plugin = (self.c0 ** 2 + float(self.c1 @ self.c1)
                       + 2.0 * float(np.sum(self.C2 * self.C2)))
        self._loss_constant = self.y2 - proj_plugin
        jack = np.array([irreducible(np.delete(allf, k)) for k in range(K)])
        self.irreducible_stderr = float(math.sqrt((K - 1) / K * np.sum((jack - jack.mean())**2)))

    @property
    def loss_constant(self) -> float:
        """S - |c_hat|^2 (plug-in): with it the population loss |m|^2 - 2 m.c_hat + S is
        unbiased for every state (the U-statistic irreducible_loss is reported separately)."""
        return self._loss_constant

    def labels_z(self, Z):
        try:
            y = np.asarray(self.fn(Z), dtype=np.float64)
        except ProblemError:
            raise
        except Exception as exc:  # noqa: BLE001 - a user function failing is a user error
            raise ProblemError(f"target function {self.spec!r} failed: {type(exc).__name__}: {exc}") from None
        if y.shape != (Z.shape[0],):
            raise ProblemError(f"target function {self.spec!r} returned shape {y.shape}, expected ({Z.shape[0]},)")
        if not np.all(np.isfinite(y)):
            raise ProblemError(f"target function {self.spec!r} returned NaN or infinity")
        return y

    def _se(self, f: np.ndarray) -> float:
        y = self._y
        return float(np.std(y * y - 2.0 * f * y, ddof=1) / math.sqrt(self.samples))

    def population_loss_stderr(self, wbar, M, wref, Mref, alpha, eps) -> float:
        lvec, Q = self.model_coefficients(wbar, M, wref, Mref, alpha, eps)
        f = self._Z @ lvec + np.einsum("ij,ij->i", self._Z @ Q, self._Z)
        return self._se(f)

    def info(self) -> dict[str, Any]:
        d = super().info()
        d["mc_samples"] = self.samples
        return d
