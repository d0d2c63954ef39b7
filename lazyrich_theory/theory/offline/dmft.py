"""The offline DMFT (docs/offline_theory.md §8): single-sample processes for the spike field,
the bulk vector and the linear column, closed by two-time order parameters; Monte Carlo over
``Ns`` samples on a causal grid in tau = 2 eta0 eps t / (alpha D).

One training sample = (xi ~ N(0, 1), Gaussian processes g(tau), theta_u(tau)):

    h(t)   = xi mu(t) + g(t) - (1/kappa) int R_m(t, s) r(s) h(s) ds          (spike field)
    z_b(t) = theta_b(t) - (1/kappa) int [R_b + (xi^2/D) R_x](t, s) r(s) z_b(s) ds     (bulk)
    rho    = (alpha eps/2)(h^2 + |z_b|^2 - 1 - xi^2/D) - (b2/2) xi^2,  r = A[rho + alpha theta_u]

with A the exact least-squares (Marchenko–Pastur) response of the linear column,
d mu / d tau = -E[xi r h], mu(0)^2 = 1/D (then the finite-D seed), and the covariances and
responses of the module ``dmft_kernels``.  D enters through mu(0), the seed, the anomalous
Onsager term (xi^2/D) R_x and O(1/D) loss terms: a finite-D prediction.

Cost O(Ns T^3) time and O(Ns T^2) memory (T grid points): Ns = 800, T ~ 240 (tau_h = 40)
takes ~5-10 s and ~0.6 GB with the column as derived, ~2.3x that and up to 0.5 GB more with
the spread closure (the default where the column is fast).  The Monte Carlo spread of one draw
(seed of the noise draws) is ~+-4 % in the half-loss time and, at D = 400 with the spread
closure, a sd of 0.14 / 0.035 / 0.015 / 0.011 in the loss at tau = 40 at kappa = 1.5 / 2 /
3 / 5.5 (~+-0.05 at kappa = 3 as derived; measured).
"""

from __future__ import annotations

import functools
import math
import time
from statistics import NormalDist
from typing import Any, Callable

import numpy as np

from lazyrich_theory.core.threads import free_cores, numba_threads
from lazyrich_theory.errors import DivergenceError, ProblemError
from lazyrich_theory.spec.fields import is_int
from lazyrich_theory.theory.offline.dmft_kernels import K_NAMES, V1_NAMES, run_dmft
from lazyrich_theory.theory.offline.dmft_options import (    # re-exported
    COLUMN_CLOSURES, COLUMN_SPEEDS, NOISE_CURRENTS, SPREAD_MAX_LAG, SPREAD_MAX_LAG_FINITE,
    SPREAD_RESPONSES, check_column_closure, check_column_speed, check_noise_current,
    check_spread_applies, check_spread_response, column_lag, default_channels, joint_current,
    resolve_column_closure, resolve_column_speed, spread_blocker, spread_max_lag)
from lazyrich_theory.theory.offline.dmft_population import population_schur
from lazyrich_theory.theory.offline.inputs import OfflineInputs
from lazyrich_theory.theory.offline.plateau import mp_rule

__all__ = ["dmft_columns", "dmft_tau_curves", "make_grid", "linear_channel", "xi_strata",
           "xi_training_strata", "DMFT_NS", "DMFT_DMAX", "DMFT_MAX_POINTS", "COLUMN_CLOSURES",
           "JOINT_TOL", "check_joint_converged",
           "check_column_closure", "check_dmft_horizon", "check_draws", "check_ns",
           "check_spread_applies", "dmft_tau_cap",
           "check_spread_response", "check_column_speed", "column_lag", "COLUMN_SPEEDS",
           "NOISE_CURRENTS", "check_noise_current",
           "SPREAD_MAX_LAG", "SPREAD_MAX_LAG_FINITE", "SPREAD_RESPONSES",
           "resolve_column_closure", "spread_blocker", "default_channels", "resolve_column_speed",
           "spread_max_lag"]

#: Default number of Monte Carlo samples.
DMFT_NS = 800
#: Largest grid step in tau (stability of the causal scheme at late times needs <= ~0.25).
DMFT_DMAX = 0.25
#: Largest grid the DMFT accepts (cost ~ T^3: 400 points take ~5x the tau_h = 40 run).
DMFT_MAX_POINTS = 400
#: The joint current point (``noise_current="joint"``) counts as converged when its last pass
#: moved the residuals by at most this fraction of their size (it stops at 1e-12).
JOINT_TOL = 1e-8


def make_grid(tau_max: float, dmax: float = DMFT_DMAX) -> np.ndarray:
    """The non-uniform grid: steps 0.01 growing by 10 % to 0.08 until tau = 6 (the lazy fit
    and the transition), then by 4 % up to ``dmax``."""
    t, d = [0.0], 0.01
    while t[-1] < tau_max - 1e-12:
        t.append(t[-1] + d)
        if d < 0.08 and t[-1] < 6.0:
            d = min(d * 1.1, 0.08)
        elif t[-1] >= 6.0:
            d = min(d * 1.04, dmax)
    return np.array(t)


def linear_channel(kappa: float, alpha: float, eps: float,
                   tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact DMFT of the linear column (least squares on X with a moving target).

    psi(v) = (1 - 1/kappa) + (1/kappa) int dmu(l) exp(-a l v), a = alpha / (eps kappa), mu the
    law of X^T X.  Returns psi(tau_n), the product-integration weights Wpsi[n, j] (multiplying
    f_{j+1} - f_j) and V[n, j] = int_{tau_j}^{tau_{j+1}} R_u(tau_n - s) ds with
    R_u(v) = int dmu(l) exp(-a l v).
    """
    lam, w = mp_rule(kappa)
    a = alpha / (eps * kappa)
    fz = 1.0 - 1.0 / kappa
    T = tau.size
    al = a * lam
    ps = fz + (1.0 / kappa) * (np.exp(-np.outer(tau, al)) @ w)
    P1, R1 = np.zeros((T, T)), np.zeros((T, T))
    for n in range(T):
        v = tau[n] - tau[: n + 1]
        r1 = (-np.expm1(-np.outer(v, al)) / al) @ w     # int_0^v R_u
        R1[n, : n + 1] = r1
        P1[n, : n + 1] = fz * v + r1 / kappa            # int_0^v psi
    Wpsi, V = np.zeros((T, T)), np.zeros((T, T))
    d = np.diff(tau)
    for n in range(1, T):
        Wpsi[n, :n] = (P1[n, :n] - P1[n, 1: n + 1]) / d[:n]
        V[n, :n] = R1[n, :n] - R1[n, 1: n + 1]
    return ps, Wpsi, V


def xi_strata(Ns: int) -> np.ndarray:
    """Antithetic stratified quadrature of xi ~ N(0, 1): the conditional means of |xi| on
    Ns/2 equal-probability strata of the half line, with both signs (keeps the tails:
    E xi^4 = 2.986, E xi^8 = 95.8 at Ns = 800)."""
    half = Ns // 2
    quantile = NormalDist().inv_cdf
    edges = np.array([quantile(q) for q in np.linspace(0.5, 1.0, half + 1)[:-1]] + [np.inf])
    pdf = np.exp(-0.5 * edges**2) / math.sqrt(2.0 * math.pi)     # 0 at edges[-1] = inf
    xq = (pdf[:-1] - pdf[1:]) * (2 * half)
    return np.concatenate([xq, -xq])


def xi_training_strata(xi_train: np.ndarray, Ns: int) -> np.ndarray:
    """The empirical law of |xi| over a training set, as ``xi_strata`` does the Gaussian one:
    the conditional means of |xi| on n = min(Ns/2, P) equal-mass strata of its empirical
    quantile function (each sample once when P <= Ns/2), with both signs (2n values).

    Parameters
    ----------
    xi_train : np.ndarray
        The training set's teacher projections xi_mu = betahat . z_mu (P values, P >= 10).
    Ns : int
        Monte Carlo samples requested (even).

    Returns
    -------
    np.ndarray
        2 min(Ns/2, P) values.
    """
    a = np.sort(np.abs(np.asarray(xi_train, dtype=float)))
    if a.size < 10 or not np.all(np.isfinite(a)):
        raise ProblemError(f"the training set's xi must be >= 10 finite values, got {a.size}")
    n = min(Ns // 2, a.size)
    # integral of the empirical quantile function, piecewise linear with knots at j / P
    knots = np.linspace(0.0, 1.0, a.size + 1)
    cum = np.concatenate([[0.0], np.cumsum(a)]) / a.size
    xq = np.diff(np.interp(np.linspace(0.0, 1.0, n + 1), knots, cum)) * n
    return np.concatenate([xq, -xq])


def dmft_tau_curves(inp: OfflineInputs, tau_max: float, Ns: int = DMFT_NS, seed: int = 0,
                    dmax: float = DMFT_DMAX, xi_train: np.ndarray | None = None, *,
                    linear_column: bool = True, anomalous_term: bool = True,
                    column_closure: str = "auto", null_space_split: bool = True,
                    spread_response: str = "resolved", column_speed: str | None = None,
                    noise_current: str | None = None) -> dict[str, np.ndarray]:
    """The DMFT's curves on its own grid up to ``tau_max``.

    Parameters
    ----------
    inp : OfflineInputs
    tau_max : float
        Horizon in tau = 2 eta0 eps t / (alpha D).
    Ns : int
        Monte Carlo samples (even, >= 20).
    seed : int
        Seed of the sample order and of the population-dynamics noise matrices.
    dmax : float
        Largest grid step.
    xi_train : np.ndarray, optional
        The training set's xi_mu: the samples follow their empirical law
        (:func:`xi_training_strata`, 2 min(Ns/2, P) samples) instead of the Gaussian one -- a
        prediction conditioned on the training set (docs/offline_theory.md §8.7).
    linear_column, anomalous_term : bool
        Ablations for diagnosis (docs/offline_theory.md §12.4), not tuning knobs: without the
        linear column the model is f = (alpha eps / 2) x^T (M - I) x alone (no psi filter, no
        theta_u, no screening of the spike's Gauss-Newton term); without the anomalous term
        the (xi^2 / D) R_x Onsager term of §8.4 is dropped (here and in the mean memorisation
        kernel).  Both default to True (the full DMFT).
    null_space_split : bool
        A diagnostic too (docs/offline_theory.md §12.4): False drops the null-space split A6'
        of §8.5 (the sample-averaged memorisation kernel Kbar = 0), so that the linear
        column filters the whole residual, r = A[rho + alpha theta_u], and its cavity
        variance is fed by r itself.  Default True (the split; the spread closure replaces it and
        needs it at its default).
    spread_response : {"resolved", "first_order", "full"}
        The spread closure's memorisation operators K_nu (docs/offline_theory.md §12.4):
        the bulk's part resolved through the sample's own Volterra resolvent, one step
        behind (default; the spike's part stays first order), everything at first order
        in the Onsager terms (a diagnostic: 0.07-0.28 too low at kappa <= 2, D = 400), or the
        spike's part resolved too, through the sample's spike resolvent without the
        Gauss-Newton term (a diagnostic: it moves the loss by < 0.01).  Other than the
        default only with ``column_closure="spread"``.
    column_speed : {None, "finite", "instantaneous"}
        The spread closure's linear column: relaxing at its rate a = alpha / (eps kappa),
        (12.2) of §12.4, ell (kappa Gbar + (1 / a) d/dtau) = 1 ("finite"; the default, None,
        with its population field at the current point solved jointly, ``noise_current``),
        or at its least-squares fit at every instant, (12.1) ("instantaneous": it neglects
        the column's lag, its slowest relaxation time :func:`column_lag`, and is refused
        above a lag of 1).  Given (not None) only where the closure that runs is spread.
    noise_current : {None, "joint", "lagged"}
        The spread closure's population-dynamics field at the current grid point: solved
        jointly with the samples' residuals ("joint", module ``dmft_population``) or taken
        one step behind ("lagged", as the other fields: a first-order error in the step).
        None: joint at the column's finite speed (lagged, its noise loop blew up at
        kappa = 1.5, alpha / eps = 100-400), lagged for the instantaneous column (whose
        measured tables were made so).  Given (not None) only where the closure that runs
        is spread.
    column_closure : {"auto", "dmft", "least_squares", "spread"}
        "auto" (default): "spread" where it applies (a fast column and the default
        channels), else "dmft" (:func:`resolve_column_closure`).  "dmft": the linear column as
        derived (§8.5).  "least_squares": closure A7,
        an experimental correction measured in docs/offline_theory.md §12.4 -- the exact
        column is at every instant the least-squares fit of y - q, whose population power is
        kappa / (kappa - 1) times its mean square output on the training samples; the column's
        cavity field theta_u is scaled down (never up) to that variance, and so is the
        linear power of the loss.
        "spread": the fast column's leave-one-out with the spread of memorisation over
        samples, (12.1) of §12.4 -- the column instantaneous (its least-squares fit at
        every instant, valid when alpha / eps is large), each sample's residual
        r = (1 + ell)^(-1) [rho - theta] with ell solved from
        ell^(-1) = kappa E[(1 + ell - K_nu)^(-1)] over the samples' memorisation operators
        K_nu, and theta Gaussian with covariance kappa ell E[r r'] ell^T (also the column's
        population power); replaces the null-space split (needs ``linear_column`` and
        ``null_space_split`` at their defaults).  2.3x the time of the column as derived
        (first order 1.8x, full 2.8x; benchmarks/dmft_closure_cost.md) and one more
        per-sample packed history (Ns T^2 / 2 doubles: 0.5 GB at Ns = 800 and tau = 80;
        full: two).

    Returns
    -------
    dict
        tau, train_loss, population_loss, linear_power, variance, misalignment, finite_d,
        spike_amplitude2 (mu^2 = betahat M betahat / D), tilt (C_g), bulk (C_b), seed_nu,
        column_train_power (E[(r - rho)^2]: the mean square of the linear column's output on
        the training samples), spike_drive (d mu / d tau = -E[xi r h]), spike_drive_column
        (the column output's part of it, -E[xi (r - rho) h]) and column_work (E[r (r - rho)],
        which gradient flow ties to the column's power, "the column's energy balance"):
        diagnostics of docs/offline_theory.md §12.4; joint_change, joint_passes: the joint
        current point's last relative change of the residuals and its number of passes at each
        step (0 where it does not run).
    """
    check_ns(Ns)
    column_closure = resolve_column_closure(column_closure, inp.kappa, inp.alpha, inp.eps,
                                            linear_column and null_space_split, column_speed)
    check_dmft_horizon(tau_max, dmax)
    tau = make_grid(max(tau_max, 0.05), dmax)
    rng = np.random.default_rng(seed)
    xi = xi_strata(Ns) if xi_train is None else xi_training_strata(xi_train, Ns)
    rng.shuffle(xi)
    Ns = xi.size
    zg, zu = rng.standard_normal((Ns, Ns)), rng.standard_normal((Ns, Ns))
    check_column_speed(column_speed, column_closure)
    check_noise_current(noise_current, column_closure)
    spread = _check_spread(inp, column_closure, spread_response,
                           linear_column and null_space_split, column_speed)
    if spread:                      # (12.1): the column is instantaneous, no psi filter
        ps, Wpsi, V = np.ones(tau.size), np.zeros((tau.size, tau.size)), \
            np.zeros((tau.size, tau.size))
        fz = 1.0 - 1.0 / inp.kappa
    elif linear_column:
        ps, Wpsi, V = linear_channel(inp.kappa, inp.alpha, inp.eps, tau)
        fz = 1.0 - 1.0 / inp.kappa
    else:                           # A = identity: r = rho; no theta_u, no screening
        ps, Wpsi, V = np.ones(tau.size), np.tril(np.ones((tau.size, tau.size)), -1), \
            np.zeros((tau.size, tau.size))
        fz = 1.0
    a7 = column_closure == "least_squares" and linear_column
    par = np.array([inp.kappa, inp.alpha_eps, inp.b2, float(inp.D), inp.alpha, inp.eps, fz,
                    1.0 if anomalous_term else 0.0, 1.0 if a7 else 0.0,
                    1.0 if null_space_split and not spread else 0.0,
                    1.0 if spread else 0.0,
                    {"resolved": 1.0, "full": 2.0}.get(spread_response, 0.0) if spread
                    else 0.0,
                    inp.eps * inp.kappa / inp.alpha
                    if resolve_column_speed(column_speed) == "finite" else 0.0,
                    1.0 if spread and joint_current(column_speed, noise_current) else 0.0])
    Zs, Ts = (population_schur(zu) if par[13] > 0.0 else
              (np.zeros((2, 1, 1), complex), np.zeros((1, 1), complex)))
    with numba_threads(free_cores()):      # the samples' steps run in parallel
        K, V1 = run_dmft(tau, xi, zg, zu, ps, Wpsi, V, par, Zs, Ts)
    check_joint_converged(tau, V1[V1_NAMES.index("joint")])
    with np.errstate(over="ignore", invalid="ignore"):      # a blow-up: DivergenceError
        return _losses(inp, tau, K, V1, a7, spread)


def check_joint_converged(tau: np.ndarray, change: np.ndarray) -> None:
    """Raise DivergenceError (one line, naming tau) where the joint current point's last pass
    still moved the residuals by more than :data:`JOINT_TOL` of their size (``change``: the
    DMFT's "joint" series; NaN, a blow-up, is left to the losses' own check)."""
    bad = np.flatnonzero(change > JOINT_TOL)
    if bad.size:
        n = int(bad[0])
        raise DivergenceError(f"the DMFT's joint current point did not converge at tau = "
                              f"{tau[n]:.3g} (its last pass moved the residuals by "
                              f"{change[n]:.1e} of their size; limit {JOINT_TOL:g}): try more "
                              "Monte Carlo samples (Ns; --ns of lazyrich asymptotic and solve) "
                              "or noise_current='lagged'", float("nan"))


def check_dmft_horizon(tau_max: float, dmax: float = DMFT_DMAX,
                       steps_per_tau: float | None = None) -> None:
    """Refuse (one line, ProblemError) a horizon whose grid needs more than
    :data:`DMFT_MAX_POINTS` points (the cost grows like T^3); ``steps_per_tau``: GD steps per
    unit of tau, to name the longest horizon in steps."""
    n = make_grid(max(tau_max, 0.05), dmax).size
    if n > DMFT_MAX_POINTS:
        cap = dmft_tau_cap(dmax)
        most = (f"tau <= {cap:.3g}" if steps_per_tau is None else
                f"at most {math.floor(cap * steps_per_tau)} steps here, tau = {cap:.3g}")
        raise ProblemError(f"the DMFT horizon tau = {tau_max:.3g} needs {n} grid points "
                           f"(limit {DMFT_MAX_POINTS}: cost grows like T^3); shorten the "
                           f"horizon ({most}); the spectral closure, validated at kappa >= 5, "
                           "has no such limit")


@functools.cache
def dmft_tau_cap(dmax: float = DMFT_DMAX) -> float:
    """The longest DMFT horizon (tau) whose grid has at most ``DMFT_MAX_POINTS`` points
    (a constant of the grid rule: found once by bisection, then cached)."""
    lo, hi = 1.0, 400.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if make_grid(mid, dmax).size <= DMFT_MAX_POINTS else (lo, mid)
    return lo


def check_ns(Ns: Any) -> None:
    """Refuse (one line, ProblemError) a number of Monte Carlo samples the DMFT cannot use:
    it needs an even integer >= 20 (the samples come in antithetic pairs)."""
    ok = (not isinstance(Ns, bool) and isinstance(Ns, (int, np.integer, float))
          and float(Ns).is_integer() and Ns >= 20 and int(Ns) % 2 == 0)
    if not ok:
        raise ProblemError(f"Ns must be an even number >= 20, got {Ns!r}")


def _check_spread(inp: OfflineInputs, column_closure: str, spread_response: str,
                  defaults: bool, column_speed: str | None = None) -> bool:
    """Whether the spread closure runs; ProblemError (one line) for its bad options
    (``defaults``: linear_column and null_space_split both at their defaults)."""
    spread = column_closure == "spread"
    check_spread_response(spread_response, column_closure)
    if spread and not defaults:
        raise ProblemError("column_closure='spread' is a closure of the linear column that "
                           "replaces the null-space split: it needs linear_column=True and "
                           "null_space_split=True")
    if spread:
        check_spread_applies(inp.kappa, inp.alpha, inp.eps, column_speed=column_speed)
    return spread


def _losses(inp: OfflineInputs, tau: np.ndarray, K: np.ndarray, V1: np.ndarray,
            a7: bool = False, spread: bool = False) -> dict[str, np.ndarray]:
    """Population loss (Wick, order D^0 plus the O(1/D) bulk and cross terms), train loss."""
    k = {name: i for i, name in enumerate(K_NAMES)}
    v = {name: i for i, name in enumerate(V1_NAMES)}
    ae, b2, D = inp.alpha_eps, inp.b2, float(inp.D)
    cb, cg, cu = (np.diag(K[k[n]]).copy() for n in ("Cb", "Cg", "Cu"))
    m2 = V1[v["mu"]] ** 2
    r0 = K[k["Rb"]][:, 0]
    sn = cb - r0**2
    lin = inp.alpha**2 * cu
    if a7:                          # the least-squares column's power (closure A7)
        lin = np.minimum(lin, inp.kappa / (inp.kappa - 1.0) * V1[v["ecol"]])
    if spread:                      # C_theta = kappa ell E[r r'] ell^T; no column at tau = 0
        ell, crr = K[k["L"]], K[k["Crr"]]        # row by row: causal even after a blow-up
        lin = inp.kappa * np.array([ell[n, :n + 1] @ crr[:n + 1, :n + 1] @ ell[n, :n + 1]
                                    for n in range(tau.size)])
        lin[0] = 0.0
    var = (0.5 * ae * (cb + m2 + cg - 1.0) - 0.5 * b2) ** 2
    mis = 2.0 * ((0.5 * ae * (m2 + cg) - 0.5 * b2) ** 2 + 0.5 * ae * b2 * cg)
    fd = (ae**2 / (2 * D) * ((cb - 1) ** 2 + 2 * r0**2 * sn + sn**2)
          + ae**2 * (m2 + cg) * (cb - 1) / D)
    pop = lin + var + mis + fd
    if not np.all(np.isfinite(pop)) or np.any(np.abs(pop) > 1e6 * (1 + b2**2)):
        bad = int(np.argmax(~np.isfinite(pop) | (np.abs(pop) > 1e6 * (1 + b2**2))))
        raise DivergenceError(f"the DMFT's causal scheme became unstable at tau = "
                              f"{tau[bad]:.3g} (try more Monte Carlo samples: Ns; --ns "
                              "of lazyrich asymptotic and solve)",
                              float("nan"))
    return {"tau": tau, "train_loss": V1[v["train"]].copy(), "population_loss": pop,
            "linear_power": lin, "variance": var, "misalignment": mis, "finite_d": fd,
            "spike_amplitude2": m2, "tilt": cg, "bulk": cb, "seed_nu": V1[v["nu"]].copy(),
            "column_train_power": V1[v["ecol"]].copy(), "spike_drive": -V1[v["exrh"]],
            "spike_drive_column": -V1[v["excol"]], "column_work": V1[v["ercol"]].copy(),
            "joint_change": V1[v["joint"]].copy(), "joint_passes": V1[v["passes"]].copy()}


def dmft_columns(inp: OfflineInputs, t: np.ndarray, Ns: int = DMFT_NS, seed: int = 0,
                 dmax: float = DMFT_DMAX, xi_train: np.ndarray | None = None,
                 draws: int = 1, log: Callable[[str], None] | None = None,
                 **ablations: Any) -> dict[str, np.ndarray]:
    """The DMFT's columns at times ``t`` (GD steps): its grid curves interpolated linearly
    in tau (the grid resolves the lazy fit: first step tau = 0.01); ``xi_train`` and the
    ``ablations`` (``linear_column``, ``anomalous_term``, ``column_closure``,
    ``null_space_split``) as in :func:`dmft_tau_curves`.

    ``draws`` > 1 averages every column over that many Monte Carlo draws (seeds ``seed``,
    ``seed + 1``, ...; ``draws`` times the cost, the same memory) and adds the standard error
    of the mean population and train losses over the draws (``population_loss_mc_se``,
    ``train_loss_mc_se``): at small kappa one draw's long-time loss scatters by a sd of up to
    0.15 of the initial loss (kappa = 1.5, docs/offline_theory.md §12.4).  ``log``, if given,
    receives one line per draw done (for a progress display; nothing is printed here)."""
    check_draws(draws)
    tau_t = inp.dmft_clock(t)
    runs = []
    started = time.perf_counter()
    for k in range(int(draws)):
        if k and log is not None:
            log(f"Monte Carlo draw {k} of {draws} done, {time.perf_counter() - started:.0f} s "
                "elapsed")
        try:
            c = dmft_tau_curves(inp, float(tau_t[-1]), Ns=Ns, seed=seed + k, dmax=dmax,
                                xi_train=xi_train, **ablations)
        except DivergenceError as err:
            if draws == 1:
                raise
            raise DivergenceError(f"Monte Carlo draw {k + 1} of {draws} (seed {seed + k}): "
                                  f"{err}", err.step) from None
        runs.append({name: np.interp(tau_t, c["tau"], col) for name, col in c.items()
                     if name != "tau"})
    out = {name: np.mean([r[name] for r in runs], axis=0) for name in runs[0]}
    if draws > 1:
        for name in ("population_loss", "train_loss"):
            out[f"{name}_mc_se"] = (np.std([r[name] for r in runs], axis=0, ddof=1)
                                    / math.sqrt(draws))
    out["alignment"] = out["spike_amplitude2"] * inp.D - 1.0
    out["trace_dM"] = out["bulk"] + out["spike_amplitude2"] + out["tilt"] - 1.0
    out["norm_dwbar"] = np.sqrt(np.maximum(inp.D * out["linear_power"], 0.0)) / inp.alpha
    return out


def check_draws(draws: Any, name: str = "draws") -> None:
    """Refuse (one line, ProblemError) a number of Monte Carlo draws that is not an integer
    >= 1 (``name``: the caller's name for it)."""
    if not is_int(draws) or draws < 1:
        raise ProblemError(f"{name} (Monte Carlo draws of the DMFT to average) must be an "
                           f"integer >= 1, got {draws!r}")
