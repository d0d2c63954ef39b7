"""The stride solver of method "gd-fast" (:mod:`lazyrich_theory.core.stride`; docs/stride.md).

A stride of k GD steps from (n, F_n) is the exact discrete variation of constants

    F_{n+k} = L^k F_n + sum_{j<k} L^(k-1-j) N(F_{n+j}),    L = I + A,   N(F) = Delta(F) - A F,

with A the Gauss–Newton reference operator (:mod:`lazyrich_theory.core.stride_ops`) and N
replaced by its Lagrange interpolant through the stride nodes: predictor (P) exponential
Adams–Bashforth of order q over the q latest nodes, one evaluation (E) of the GD increment at
the predicted state, corrector (C) exponential Adams–Moulton of order q + 1 with that node.
The corrector - predictor difference, as a function error (train residual, population norm),
is the local error estimate that sets the next stride (order q + 1: k <- k err^(-1/(q+1))).
Strides land on the save times; near the stability bound (a multiplier mu_i < -1/2) the same
formulas run on the two-step map GD^2; the reference is recomputed when the kernel drifts;
exact GD blocks fill in where strides cannot pay (module doc of
:mod:`lazyrich_theory.core.stride`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from lazyrich_theory.core.reduced import ReducedSystem, _residual
from lazyrich_theory.core.stride_ops import (
    GaussNewtonBasis,
    StrideNode,
    adams_weights,
    exact_basis,
    first_basis,
    function_norm2,
    gauss_newton_kernel,
    next_basis,
    population_scale,
    power_moments,
)
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.streams import sgd_mode

__all__ = ["DEFAULT_TOL", "ROUNDOFF", "StrideOptions", "StrideSolver"]

#: Default local error tolerance of a stride (relative function error): measured global
#: errors of the train, test and population losses vs exact GD stay below ~1e-7.
DEFAULT_TOL = 1e-7

#: Round-off level of a stride's error estimate, relative to the scale of the network function
#: on the training set: at a minimum, GD's increments are round-off of the residual, which the
#: predictor's extrapolation amplifies ~10^2 times (measured ~3e-13 relative).  Train residuals
#: and population losses below ROUNDOFF / tol times that scale (loss ~4e-10 of it at
#: tol = 1e-7) are therefore resolved to this absolute level, not relatively.
ROUNDOFF = 2e-12


@dataclass(frozen=True)
class StrideOptions:
    """Settings of :class:`StrideSolver` (the defaults are the measured ones, docs/stride.md).

    Attributes
    ----------
    order : int
        q: nodes of the Adams–Bashforth predictor (the corrector has q + 1).
    k_min, k0 : int
        Shortest stride (below it: exact GD) and the initial stride.
    warmup : int
        Exact GD steps at the start (the save grid is dense there).
    drift_tol : float
        Refresh the reference operator once a row of B = eps X F + 1 z^T moved by this much
        relative to its reference.
    drift_rate : float
        ... or once the rate of the kernel's drift, 2 drift c theta_max per step, times the
        stride exceeds this (the explicitly treated drift then limits the stride).
    basis : {"fast", "full"}
        "full": eigendecomposition of Ktilde at every refresh (O(P^3)); "fast": Rayleigh–Ritz
        basis of its fast modes (O(P^2 m)), grown while the fastest rate left out times the
        stride exceeds ``leak_tol``.
    leak_tol : float
        See ``basis``.
    full_eigh_max : int
        Largest P for which the first basis is an exact eigendecomposition.
    mu_switch : float
        Two-step mode once a Gauss–Newton multiplier is below this.
    bound_margin : float
        Exact GD blocks while a multiplier is at or below -1 + bound_margin.
    min_efficiency : float
        Cost guard: exact GD blocks when the strides advance fewer GD steps per right-hand
        side than this over at least 100 right-hand sides.
    """

    order: int = 5
    k_min: int = 4
    k0: int = 8
    warmup: int = 64
    drift_tol: float = 0.02
    drift_rate: float = 1.0
    basis: str = "fast"
    leak_tol: float = 0.05
    full_eigh_max: int = 2000
    mu_switch: float = -0.5
    bound_margin: float = 1e-3
    min_efficiency: float = 1.5


class _Stop(Exception):
    """A tracker asked to stop after a save."""


#: ``save(k, t, F, train_loss) -> stop``, ``check(t, F, train_loss)``, ``advance(steps)``
SaveHook = Callable[[int, int, np.ndarray, float], bool]


class StrideSolver:
    """Exact-GD-accurate solver of the reduced dynamics in strides of many GD steps.

    Parameters
    ----------
    system : ReducedSystem
        Full-batch GD (no momentum), c = z.
    tol : float
        Local error tolerance per stride (:data:`DEFAULT_TOL`).
    options : StrideOptions, optional
        The method's settings.

    Attributes
    ----------
    counts : dict
        Work counters (``products`` with X, ``strides``, ``rejected``, ``refreshes``,
        ``gd_steps``, ``basis_size``, ``two_step_from``, ``refresh_time``).
    """

    def __init__(self, system: ReducedSystem, tol: float = DEFAULT_TOL,
                 options: StrideOptions | None = None):
        p = system.problem
        if p.momentum > 0 or sgd_mode(p) is not None:
            raise ProblemError("the stride method needs full-batch GD without momentum")
        if not (math.isfinite(tol) and tol > 0):
            raise ProblemError(f"stride tolerance must be > 0, got {tol!r}")
        self.system, self.tol = system, float(tol)
        self.opt = StrideOptions() if options is None else options
        self.q = int(self.opt.order)
        self.X = system.X
        self.XXt = self.X @ self.X.T
        self.z, self.alpha, self.eps = system.z, p.alpha, p.eps
        self.omega = p.eta0 * p.weight_decay
        self.c = 2.0 * p.eta0 / self.X.shape[0]
        self.m, self.parity, self.k, self.k_cur = 1, 0, float(self.opt.k0), float(self.opt.k0)
        self.basis: GaussNewtonBasis | None = None
        self.tol_eff = self.tol
        self.counts = dict(products=0, strides=0, rejected=0, refreshes=0, gd_steps=0,
                           basis_size=0, two_step_from=None, refresh_time=0.0)

    # ------------------------------------------------------------------------- primitives
    def _residual(self, Y: np.ndarray) -> np.ndarray:
        s, p = self.system, self.system.problem
        return _residual(Y, self.z, p.alpha, p.eps, s.f0, s.y)

    def _xmul(self, v: np.ndarray) -> np.ndarray:
        self.counts["products"] += 1
        return self.X @ v

    def _delta(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Delta(x), X x, r(x)): one right-hand side."""
        Y, r = self.system.residuals(x)
        self.counts["products"] += 2
        return self.system.increment(x, Y, r), Y, r

    def _increment(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(g, X x, X g) with g = GD^m(x) - x."""
        f, Y, _ = self._delta(x)
        if self.m == 1:
            return f, Y, self._xmul(f)
        f2, Y1, _ = self._delta(x + f)
        return f + f2, Y, (Y1 - Y) + self._xmul(f2)

    def _loss(self, r: np.ndarray) -> float:
        return float(r @ r) / r.size

    def _save(self, t: int, x: np.ndarray, r: np.ndarray) -> None:
        """Record x at every save time equal to t; a tracker's stop ends the run."""
        while self._k < len(self._times) and self._times[self._k] == t:
            stop = self._save_hook(self._k, t, x, self._loss(r))
            self._k += 1
            if stop:
                raise _Stop
        if t > self._reached:
            self._advance(t - self._reached)
            self._reached = t

    # ------------------------------------------------------------------------- kernel
    def _refresh(self) -> float:
        """A new reference operator at the current state; returns min mu (and tightens the
        tolerance near the stability bound, where the period-2 mode decays slowly)."""
        t0 = time.perf_counter()
        K, B = gauss_newton_kernel(self.XXt, self.Y, self.z, self.eps)
        opt, args = self.opt, (self.Y, B, K, self.c, self.omega)
        if opt.basis == "full":
            basis = exact_basis(*args)
        elif self.basis is None:
            basis = first_basis(*args, rate_floor=opt.leak_tol / opt.k0,
                                eigh_max=opt.full_eigh_max, block=2 * self.X.shape[1] + 16)
        else:
            basis = next_basis(*args, self.basis, opt.leak_tol / max(self.k_cur, 1.0))
        self.basis = basis
        self.counts["refreshes"] += 1
        self.counts["basis_size"] = basis.size
        self.counts["refresh_time"] += time.perf_counter() - t0
        mu_min = float(np.min(basis.mu)) if basis.size else 1.0
        self._rate_max = self.c * float(np.max(basis.theta, initial=0.0))
        P, D = self.X.shape
        r, m = self.z.size, basis.size
        work = 7.0 * P ** 3 if basis.full else 4.0 * P * P * m + 4.0 * P * m * m + 7.0 * m ** 3
        self._refresh_cost = (work + 2.0 * P * P * r) / (4.0 * P * D * r)
        self._refreshed_at = self.counts["products"]
        decay = 1.0 - mu_min * mu_min if mu_min < 0 else 1.0
        self.tol_eff = self.tol * min(1.0, max(0.1, decay / 0.1))
        return mu_min

    # ------------------------------------------------------------------------- stride
    def _combine(self, nodes: Sequence[StrideNode], ref: StrideNode, kk: int, an: np.ndarray,
                 T: np.ndarray, pk: np.ndarray) -> np.ndarray:
        """The change from x_ref of L^k x_n + sum_i S_i(L^m) N_i, N_i = g_i - (L^m - I) x_i,
        over ``nodes`` (k = kk / m map applications; ``ref`` one of them): as sum_i S_i = T_0,

            x_ref + L^k (x_n - x_ref) + T_0(L^m) g_ref + sum_i S_i(L^m) (N_i - N_ref),

        so that the large, nearly constant part of N (-A x) never meets the large alternating
        Adams weights (their round-off would otherwise stop the strides near a minimum).
        Every function of L acts through the basis (stride_ops module doc)."""
        b, m = self.basis, self.m
        tau = np.array([(nd.t - self.n) / kk for nd in nodes])
        S = adams_weights(tau, T, kk // m)
        Si, Si0 = S[:, :-1], S[:, -1]
        mum, mu0m = b.mu ** m, b.mu0 ** m
        a_ref, g_ref = ref.coords(b)
        out = pk[-1] * (self.x - ref.x) + T[0, -1] * ref.g
        wU = ((pk[:-1] - pk[-1]) * b.inv) * (an - a_ref)
        wU += ((T[0, :-1] - T[0, -1]) * b.inv) * g_ref
        for i, nd in enumerate(nodes):
            if nd is ref:
                continue
            a, g = nd.coords(b)
            out += Si0[i] * (nd.g - ref.g)
            if mu0m != 1.0:
                out -= (Si0[i] * (mu0m - 1.0)) * (nd.x - ref.x)
            wU += ((Si[i] - Si0[i]) * b.inv) * (g - g_ref)
            wU -= ((Si[i] * (mum - 1.0) - Si0[i] * (mu0m - 1.0)) * b.inv) * (a - a_ref)
        w = b.U @ wU
        out += self.X.T @ (w[:, None] * b.B)
        self.counts["products"] += 1
        return out

    def _error(self, e: np.ndarray, Yp: np.ndarray, xc: np.ndarray, Yc: np.ndarray,
               rc: np.ndarray) -> float:
        """Corrector - predictor as a function error: on the training set relative to |r|,
        in population norm relative to the population loss (floored, :data:`ROUNDOFF`)."""
        dfr = self.alpha * np.einsum("ij,ij->i", Yc - Yp, self.z[None, :] + self.eps * Yc)
        P = rc.size
        rr = max(float(rc @ rc), P * self._floor)
        scale = population_scale(self.system, xc)
        if self.system.target is not None and not self.system.target.exact:
            scale = max(scale, rr / P)          # a Monte-Carlo population loss is noisy
        e_pop = function_norm2(e, xc, self.z, self.alpha, self.eps)
        return math.sqrt(max(float(dfr @ dfr) / rr, e_pop / max(scale, self._floor)))

    def _stride(self, kk: int) -> None:
        """One predictor-corrector stride of kk steps from (n, x): accepted or rejected, and
        the next stride length."""
        b, m, q = self.basis, self.m, self.q
        T, pk = power_moments(np.append(b.mu ** m, b.mu0 ** m), kk // m, q + 1)
        an = b.coords(self.Y)
        ref = self.nodes[0]
        sp = self._combine(self.nodes, ref, kk, an, T, pk)
        xp = ref.x + sp
        gp, Yp, Ygp = self._increment(xp)
        node = StrideNode(self.n + kk, xp, gp, Yp, Ygp)
        sc = self._combine([node] + self.nodes, ref, kk, an, T, pk)
        xc = ref.x + sc
        Yc = self._xmul(xc)
        rc = self._residual(Yc)
        err = self._error(sc - sp, Yp, xc, Yc, rc) / self.tol_eff
        self.k_cur = float(kk)
        if not err <= 1.0:                          # also NaN: shorter strides, then exact GD
            self.counts["rejected"] += 1
            fac = max(0.2, 0.9 * err ** (-1.0 / (q + 1))) if math.isfinite(err) else 0.2
            self.k = min(kk * fac, kk - m - 0.5)
            return
        self.counts["strides"] += 1
        self.n += kk
        self.nodes = [node] + self.nodes[:q - 1]
        self.x, self.Y = xc, Yc
        self._check(self.n, xc, self._loss(rc))
        self._save(self.n, xc, rc)
        fac = 2.0 if err == 0 else min(2.0, max(0.5, 0.9 * err ** (-1.0 / (q + 1))))
        if not (kk < self.k - m and fac >= 1.0):    # a stride cut by a save keeps k
            self.k = kk * fac

    # ------------------------------------------------------------------------- exact GD
    def _gd_run(self, L: int, h: int) -> None:
        """Exact GD for L steps from (n, x), recording on the way.  The run continues from
        n + L (n + L - 1 to keep the two-step parity) with nodes at n' - m, n' - m - h, ...
        taken from the iterates (g = x_{t+m} - x_t: no extra products)."""
        m, q, n = self.m, self.q, self.n
        e = min(n + max(1, int(L)), self._times[-1])
        n_new = e if m == 1 or (e - self.parity) % 2 == 0 else e - 1
        h = max(m, (int(h) // m) * m)
        node_times = list(range(n_new - m, n - 1, -h))[:q]
        want = set(node_times) | {t + m for t in node_times} | {n_new}
        kept = {}
        x, Y = self.x, self.Y
        r = self._residual(Y)
        t = n
        while True:
            if t in want:
                kept[t] = (x, Y)
            if t >= e:
                break
            x = x + self.system.increment(x, Y, r)
            Y, r = self.system.residuals(x)
            self.counts["products"] += 2
            self.counts["gd_steps"] += 1
            t += 1
            self._check(t, x, self._loss(r))
            self._save(t, x, r)
        new = [StrideNode(s, kept[s][0], kept[s + m][0] - kept[s][0], kept[s][1],
                     kept[s + m][1] - kept[s][1]) for s in node_times]
        oldest = node_times[-1] if node_times else n_new
        self.nodes = (new + [nd for nd in self.nodes if nd.t < oldest])[:q]
        self.n = n_new
        self.x, self.Y = kept[n_new]

    def _odd_save(self, t: int) -> None:
        """Two-step mode, a save time of the other parity: one exact GD step, recorded (the
        run continues from n unless t is the end)."""
        f, _, _ = self._delta(self.x)
        x1 = self.x + f
        _, r1 = self.system.residuals(x1)
        self.counts["products"] += 1
        self.counts["gd_steps"] += 1
        self._check(t, x1, self._loss(r1))
        self._save(t, x1, r1)

    def _block(self, length: int) -> None:
        """A block of exact GD steps (edge of stability, cost guard), then a fresh kernel."""
        L = min(length, self._times[-1] - self.n)
        h = max(self.opt.k0, L // (2 * self.q))
        self._gd_run(L, h)
        self.k = float(h)
        self._force = True
        self._window = (self.counts["products"], self.n)

    def _two_step(self) -> None:
        """Switch to the two-step map GD^2 from the current step (its parity)."""
        self.m, self.parity = 2, self.n % 2
        self.counts["two_step_from"] = int(self.n)
        self.nodes = []
        self.k = max(float(self.opt.k0), 2.0 * (int(self.k) // 2))

    # ------------------------------------------------------------------------- driver
    def _guard(self) -> bool:
        """Cost guard: after >= 100 right-hand sides advancing fewer than ``min_efficiency``
        GD steps per right-hand side, run a block of exact GD (doubling) instead."""
        spent = (self.counts["products"] - self._window[0]) / 2.0
        if spent < 100.0:
            return False
        if (self.n - self._window[1]) / spent >= self.opt.min_efficiency:
            self._guard_len = 256
            self._window = (self.counts["products"], self.n)
            return False
        self.counts["guard_blocks"] = self.counts.get("guard_blocks", 0) + 1
        self._block(self._guard_len)
        self._guard_len *= 2
        return True

    def _refresh_due(self) -> bool:
        """Forced, or the kernel drifted by ``drift_tol``, or its drift limits the stride
        (2 drift c theta_max k > ``drift_rate``) and the strides since the last refresh cost
        as much as one (right-hand sides by a flop count, so the run is deterministic)."""
        if self._force:
            return True
        drift = self.basis.drift(self.Y, self.eps)
        if drift > self.opt.drift_tol:
            return True
        spent = (self.counts["products"] - self._refreshed_at) / 2.0
        return (2.0 * drift * self._rate_max * self.k > self.opt.drift_rate
                and spent >= self._refresh_cost)

    def _iterate(self) -> None:
        """One action of the driver: a refresh, an exact GD block or a stride."""
        opt, q = self.opt, self.q
        if self._guard():
            return
        if self._refresh_due():
            self._force = False
            mu_min = self._refresh()
            if self.m == 1 and mu_min < opt.mu_switch:
                self._two_step()
            if mu_min <= -1.0 + opt.bound_margin:   # at/beyond the bound in this snapshot
                self.counts["bound_blocks"] = self.counts.get("bound_blocks", 0) + 1
                self._block(self._bound_len)
                self._bound_len *= 2
                return
        if len(self.nodes) < q:
            h = max(self.m, int(self.k))
            self._gd_run(q * h + self.m, h)
            return
        target = self._times[self._k]
        if self.m == 2 and target - self.n == 1:
            self._odd_save(target)
            return
        kk = min(self.m * max(1, int(round(self.k / self.m))), target - self.n)
        kk -= kk % self.m
        if kk >= opt.k_min:
            self._stride(kk)
        elif self.k >= opt.k_min:                   # cut short by a save time: exact GD to it
            self._gd_run(target - self.n, 1)
        else:                                       # strides too short: a block of exact GD
            h = opt.k_min + (-opt.k_min) % self.m
            self._gd_run(q * h + self.m, h)
            self.k = float(h)

    def run(self, times: Sequence[int], save: SaveHook,
            check: Callable[[int, np.ndarray, float], None] | None = None,
            advance: Callable[[int], object] | None = None) -> dict:
        """Advance from F0 through the integer save ``times`` (sorted, first 0).

        Parameters
        ----------
        times : sequence of int
            Save times; the last is the number of steps.
        save : callable
            ``save(k, t, F, train_loss)`` at the k-th save time; True stops the run there.
        check : callable, optional
            ``check(t, F, train_loss)`` at every state computed (every exact GD step, every
            stride end), before it is saved: the divergence check.
        advance : callable, optional
            ``advance(steps)`` as the run moves on (a progress bar).

        Returns
        -------
        dict
            :attr:`counts` plus ``wall_time``.
        """
        t_start = time.perf_counter()
        self._times = [int(t) for t in times]
        self._save_hook, self._k, self._reached = save, 0, 0
        self._check = check or (lambda t, F, loss: None)
        self._advance = advance or (lambda steps: None)
        try:
            self._start()
            while self._k < len(self._times):
                self._iterate()
        except _Stop:
            pass
        return {**self.counts, "wall_time": time.perf_counter() - t_start}

    def _start(self) -> None:
        """Save t = 0, the first kernel, then ``warmup`` exact GD steps (nodes on the way)."""
        opt = self.opt
        self.n, self.nodes = 0, []
        self.x = np.array(self.system.F0, dtype=np.float64, copy=True)
        self.Y, r = self.system.residuals(self.x)
        self.counts["products"] += 1
        loss0 = self._loss(r)
        scale = max(loss0, float(np.mean(self.system.y ** 2)), float(np.mean(self.system.f0 ** 2)))
        self._floor = (ROUNDOFF / self.tol) ** 2 * max(scale, 1e-300)
        self._check(0, self.x, loss0)
        self._save(0, self.x, r)
        mu_min = self._refresh()
        self._force = mu_min <= -1.0 + opt.bound_margin
        self._bound_len = self._guard_len = 256
        if mu_min < opt.mu_switch:
            self._two_step()
        if self._k < len(self._times):
            self._gd_run(max(opt.warmup, self.q * opt.k0 + self.m), opt.k0)
        self.k = float(opt.k0)
        self._window = (self.counts["products"], self.n)
