"""Teacher targets and their EXACT population test loss (docs/targets.md).

Coordinates.  Every target is a function of the standard-normal vector
``z = sqrt(D) x_A ~ N(0, I_D)``, where ``x_A`` is the input in convention-A units
(``x_A = input_scale * x_stored``; so ``z = sqrt(D) x`` in convention A and ``z = x`` in B).
A Hermite direction u is a unit vector and ``u . z ~ N(0, 1)``.

Families (``Problem.target`` spec strings)::

    SPEC     := "paper"
              | "quadratic" [":" ARGS]
              | "hermite"   [":" ARGS]
              | "func:" FUNCREF ["," ARGS]
    ARGS     := KEY "=" VALUE {"," KEY "=" VALUE}
    FUNCREF  := MODULE ":" FUNCTION | REGISTERED_NAME

* ``paper`` (default): y = tau (beta . x_A)^2, the data of the problem bit for bit.
* ``quadratic``: y = x_A^T B x_A + b . x_A + c (convention-A units, the same in A and B).
  Keys: ``B=s`` (scale of the random symmetric B, default 1), ``rank=R`` (0 = full, default),
  ``b=s`` (scale of the random b, default 0), ``c=value`` (the constant, default 0),
  ``file=PATH.npz`` (arrays ``B`` and optionally ``b``, ``c``; replaces the random draws),
  ``seed=S``.  Random: full rank B = s (G + G^T)/2, G_ij ~ N(0, 1) (Var[x^T B x] ~ s^2);
  rank R: B = s sum_{k<R} g_k g_k^T / sqrt(2R), g_k ~ N(0, I); b = s_b g, g ~ N(0, I).
* ``hermite``: y = sum_j sum_k c_jk He_k(u_j . z) (probabilists' Hermite He_k, any degree).
  Keys: ``k=K`` (c_jK = 1, all other c_jk = 0), ``r=R`` (number of directions for ``k=``,
  default 1), ``coef=c0/c1/.../cK`` (coefficients of one direction; several directions
  separated by ``;``, e.g. ``coef=0/0/1;0/1/0/0.5`` -- quote it in a shell),
  ``dirs=orth|iid`` (random directions: orthonormal columns of the QR of a Gaussian D x R
  matrix (default, needs R <= D), or independent normalised Gaussian vectors),
  ``file=PATH.npz`` (array ``U`` (R, D) of directions, normalised to unit length on load,
  and optionally ``coef`` (R, K+1)), ``seed=S``.
* ``func:module:function`` or ``func:NAME`` (a callable given to :func:`register`):
  y = fn(Z) for Z (n, D) rows of z, returning (n,) labels.  The population loss is then a
  Monte-Carlo estimate (``samples=N``, default 200000; ``seed=S``) with a standard error.

Random streams.  Random target parameters come from ``SeedSequence(S).spawn(8)[7]`` with
S = ``seed=`` of the spec or else the problem's seed (children 0-4 are X, X_test, beta, W0,
label noise; 5-6 are the SGD batch streams), split by ``.spawn(2)``: child 0 draws the
parameters, child 1 the Monte-Carlo samples.  The paper target draws nothing from it.

Exact population loss.  The network's ftilde is a quadratic in z; with the degree <= 2
Hermite projection of the target, y_{<=2} = c0 + c1 . z + (z^T C2 z - tr C2), the error
splits by Hermite degree (orthogonal components):

    E[(ftilde - y)^2] = variance + linear_power + misalignment + irreducible,
    variance     = (degree-0 component of the error)^2,
    linear_power = |degree-1 component|^2,
    misalignment = 2 tr(E2^2), E2 the degree-2 component,
    irreducible  = E[y^2] - E[y_{<=2}^2] = power of the degree >= 3 part of y.

For the paper target these are exactly the three terms of statistics.decomposition.  The
Gaussian moments behind these formulas are derived with sympy (Isserlis / Wick for the
quadratic error, E[He_j(s) He_k(t)] for correlated standard normals) the first time a
non-paper target needs them, and turned into numeric code with ``sympy.lambdify``.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lazyrich_theory.errors import ProblemError

__all__ = ["Target", "PaperTarget", "QuadraticTarget", "HermiteTarget", "FunctionTarget",
           "TargetSpec", "parse_spec", "make_target", "register", "target_stream",
           "TARGET_STREAM_CHILD", "hermite_gram", "quadratic_error_split"]

#: ``SeedSequence(seed).spawn(8)[TARGET_STREAM_CHILD]`` is the target stream.
TARGET_STREAM_CHILD = 7
FAMILIES = ("paper", "quadratic", "hermite", "func")
_KEYS = {"paper": set(), "quadratic": {"B", "b", "c", "rank", "file", "seed"},
         "hermite": {"k", "r", "coef", "dirs", "file", "seed"}, "func": {"samples", "seed"}}
#: Monte-Carlo samples of the func family (default) and the subsample used for error bars.
MC_SAMPLES = 200_000
MC_SE_SUBSAMPLE = 20_000
#: independent folds of the Monte-Carlo sample for the unbiased irreducible-loss estimate
MC_FOLDS = 8
_MC_CHUNK = 10_000

_REGISTRY: dict[str, Callable[[np.ndarray], np.ndarray]] = {}


def register(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """Register ``fn(Z) -> y`` under ``name``; returns the spec ``"func:NAME"``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", str(name)):
        raise ProblemError(f"target function name must be an identifier, got {name!r}")
    if not callable(fn):
        raise ProblemError(f"target function {name!r} is not callable")
    _REGISTRY[name] = fn
    return f"func:{name}"


# ============================================================================ spec grammar
@dataclass(frozen=True)
class TargetSpec:
    """A parsed spec: family, key -> value strings, and (func) the function reference."""

    family: str
    args: dict[str, str] = field(default_factory=dict)
    ref: str | None = None


def _err(spec: str, why: str) -> ProblemError:
    return ProblemError(f"bad target spec {spec!r}: {why}")


def _float(spec: str, key: str, v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise _err(spec, f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise _err(spec, f"{key} must be finite, got {v!r}")
    return x


def _int(spec: str, key: str, v: str, lo: int) -> int:
    try:
        x = int(v)
    except ValueError:
        raise _err(spec, f"{key} must be an integer, got {v!r}") from None
    if x < lo:
        raise _err(spec, f"{key} must be >= {lo}, got {x}")
    return x


def _coef_table(spec: str, text: str) -> np.ndarray:
    rows = []
    for part in text.split(";"):
        if not part.strip():
            raise _err(spec, "empty direction in coef (use c0/c1/... per direction, ';' between)")
        rows.append([_float(spec, "coef", s.strip()) for s in part.split("/")])
    K = max(len(r) for r in rows)
    out = np.zeros((len(rows), K))
    for j, r in enumerate(rows):
        out[j, :len(r)] = r
    return out


def parse_spec(spec: str) -> TargetSpec:
    """Parse and validate a target spec string (no files are read); ProblemError if bad."""
    if not isinstance(spec, str) or not spec.strip():
        raise ProblemError(f"target must be a non-empty spec string, got {spec!r}")
    s = spec.strip()
    if "\n" in s:
        raise _err(s.splitlines()[0], "spec must be one line")
    family, _, rest = s.partition(":")
    family = family.strip()
    if family not in FAMILIES:
        raise _err(s, f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    ref = None
    if family == "func":
        first, _, rest = rest.partition(",")
        ref = first.strip()
        if not ref:
            raise _err(s, "func needs module:function or a registered name, e.g. func:mymod:teacher")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?", ref):
            raise _err(s, f"function reference {ref!r} is not module:function or a name")
    elif family == "paper" and rest.strip():
        raise _err(s, "the paper target takes no arguments")
    args: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, val = item.partition("=")
            key, val = key.strip(), val.strip()
            if not eq or not key or not val:
                raise _err(s, f"expected key=value, got {item.strip()!r}")
            if key not in _KEYS[family]:
                allowed = ", ".join(sorted(_KEYS[family])) or "none"
                raise _err(s, f"unknown key {key!r} for {family} (allowed: {allowed})")
            if key in args:
                raise _err(s, f"key {key!r} given twice")
            args[key] = val
    # value checks that need no files
    if family == "quadratic":
        for k in ("B", "b", "c"):
            if k in args:
                _float(s, k, args[k])
        if "rank" in args:
            _int(s, "rank", args["rank"], 0)
    if family == "hermite":
        if "k" in args and "coef" in args:
            raise _err(s, "give either k= or coef=, not both")
        if "k" in args:
            _int(s, "k", args["k"], 0)
        if "r" in args:
            _int(s, "r", args["r"], 1)
            if "coef" in args:
                raise _err(s, "r= goes with k=; with coef= the number of directions is the number of ';'-groups")
        if "coef" in args:
            _coef_table(s, args["coef"])
        if "k" not in args and "coef" not in args and "file" not in args:
            raise _err(s, "hermite needs k=K, coef=c0/c1/... or file=PATH.npz")
        if "dirs" in args and args["dirs"] not in ("orth", "iid"):
            raise _err(s, f"dirs must be orth or iid, got {args['dirs']!r}")
    if "seed" in args:
        _int(s, "seed", args["seed"], 0)
    if "samples" in args:
        _int(s, "samples", args["samples"], 100)
    return TargetSpec(family, args, ref)


def target_stream(problem: Any, spec: TargetSpec) -> tuple[np.random.Generator, np.random.Generator]:
    """(parameter rng, Monte-Carlo rng): ``SeedSequence(S).spawn(8)[7].spawn(2)``."""
    S = int(spec.args["seed"]) if "seed" in spec.args else problem.seed
    ss = np.random.SeedSequence(S).spawn(TARGET_STREAM_CHILD + 1)[TARGET_STREAM_CHILD]
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


# ============================================================================ symbolic part
def _gauss_expect(expr, zs):
    """E[expr] for a polynomial in independent standard normals zs (Isserlis: E z^n = (n-1)!!)."""
    import sympy

    poly = sympy.Poly(sympy.expand(expr), *zs)
    total = sympy.Integer(0)
    for monom, coeff in poly.terms():
        m = sympy.Integer(1)
        for e in monom:
            m *= 0 if e % 2 else sympy.factorial2(e - 1)
        total += coeff * m
    return sympy.expand(total)


@functools.lru_cache(maxsize=None)
def hermite_gram_symbolic(K: int):
    """Symbolic table T[j][k](rho) = E[He_j(s) He_k(t)], (s, t) standard normals with
    correlation rho (s = z1, t = rho z1 + sqrt(1 - rho^2) z2), j, k <= K."""
    import sympy

    rho, z1, z2, sig = sympy.symbols("rho z1 z2 sigma")
    s, t = z1, rho * z1 + sig * z2
    He = [sympy.hermite_prob(k, sympy.Symbol("h")) for k in range(K + 1)]
    h = sympy.Symbol("h")
    T = [[None] * (K + 1) for _ in range(K + 1)]
    for j in range(K + 1):
        for k in range(j, K + 1):
            e = _gauss_expect(He[j].subs(h, s) * He[k].subs(h, t), (z1, z2))
            e = sympy.expand(e.subs(sig, sympy.sqrt(1 - rho**2)))
            T[j][k] = T[k][j] = e
    return rho, T


@functools.lru_cache(maxsize=None)
def hermite_gram(K: int) -> Callable[[np.ndarray], np.ndarray]:
    """Numeric rho -> (..., K+1, K+1) array of E[He_j(s) He_k(t)], generated (lambdify) from
    :func:`hermite_gram_symbolic`; the derivation gives delta_jk k! rho^k."""
    import sympy

    rho, T = hermite_gram_symbolic(K)
    fns = [[sympy.lambdify(rho, T[j][k], "numpy") for k in range(K + 1)] for j in range(K + 1)]

    def gram(r):
        r = np.asarray(r, dtype=np.float64)
        out = np.empty(r.shape + (K + 1, K + 1))
        for j in range(K + 1):
            for k in range(K + 1):
                out[..., j, k] = np.broadcast_to(fns[j][k](r), r.shape)
        return out

    return gram


@functools.lru_cache(maxsize=None)
def hermite_projection_coefficients(K: int) -> np.ndarray:
    """a[k, m] (m = 0, 1, 2) with E[He_k(u.z) He_m(w.z)] = a[k, m] (u.w)^m (unit u, w), read off
    the symbolic table (which must be a pure monomial rho^m; checked)."""
    import sympy

    rho, T = hermite_gram_symbolic(max(K, 2))
    a = np.zeros((K + 1, 3))
    for k in range(K + 1):
        for m in range(3):
            q = sympy.Poly(T[k][m], rho)
            if any(mon != (m,) for mon, c in q.terms() if c != 0):
                raise AssertionError(f"E[He_{k} He_{m}] is not a multiple of rho^{m}")
            a[k, m] = float(q.coeff_monomial(rho**m))
    return a


@functools.lru_cache(maxsize=None)
def quadratic_error_split_symbolic():
    """Derive, for e(z) = a0 + a.z + z^T A z (z ~ N(0, I), A symmetric), the Hermite split
    E[e]^2, |E[e z]|^2, E[e^2] - both, as expressions in the invariants
    (a0, tr A, |a|^2, tr A^2); fitted on d = 3 with symbolic entries and checked exactly.
    Returns (symbols, (variance, linear_power, misalignment), total)."""
    import sympy

    d = 3
    zs = sympy.symbols(f"z0:{d}")
    a0 = sympy.Symbol("a0")
    av = [sympy.Symbol(f"lin{i}") for i in range(d)]
    A = sympy.Matrix(d, d, lambda i, j: sympy.Symbol(f"A{min(i, j)}{max(i, j)}"))
    zv = sympy.Matrix(zs)
    e = a0 + sum(av[i] * zs[i] for i in range(d)) + (zv.T * A * zv)[0, 0]
    Ee = _gauss_expect(e, zs)
    Eez = [_gauss_expect(e * zs[i], zs) for i in range(d)]
    Ee2 = _gauss_expect(e * e, zs)
    var_e = sympy.expand(Ee**2)
    lin_e = sympy.expand(sum(x**2 for x in Eez))
    mis_e = sympy.expand(Ee2 - var_e - lin_e)
    s_a0, s_tr, s_lin, s_tr2 = sympy.symbols("a0 trA asq trA2")
    inv = {"a0": a0, "tr": A.trace(), "lin": sum(x**2 for x in av), "tr2": (A * A).trace()}
    basis = [s_a0**2, s_a0 * s_tr, s_tr**2, s_lin, s_tr2]
    concrete = [inv["a0"]**2, inv["a0"] * inv["tr"], inv["tr"]**2, inv["lin"], inv["tr2"]]
    kap = sympy.symbols("k0:5")
    out = []
    for target in (var_e, lin_e, mis_e):
        eqs = sympy.Poly(sympy.expand(target - sum(k * c for k, c in zip(kap, concrete))),
                         a0, *av, *A.free_symbols).coeffs()
        sol = sympy.solve(eqs, kap, dict=True)
        if len(sol) != 1 or len(sol[0]) != len(kap):
            raise AssertionError("the Gaussian moment does not reduce to the invariants")
        out.append(sympy.expand(sum(sol[0][k] * b for k, b in zip(kap, basis))))
    syms = (s_a0, s_tr, s_lin, s_tr2)
    return syms, tuple(out), sympy.expand(sum(out))


@functools.lru_cache(maxsize=None)
def _quadratic_error_split_numeric():
    import sympy

    syms, parts, _ = quadratic_error_split_symbolic()
    return sympy.lambdify(syms, list(parts), "math")


def quadratic_error_split(a0: float, trA: float, asq: float, trA2: float) -> tuple[float, float, float]:
    """(variance, linear_power, misalignment) of e = a0 + a.z + z^T A z from the derived
    formula (= ((a0 + tr A)^2, |a|^2, 2 tr A^2)); generated code."""
    v, l, m = _quadratic_error_split_numeric()(a0, trA, asq, trA2)
    return float(v), float(l), float(m)


# ============================================================================ targets
class Target:
    """A teacher y(z), z = sqrt(D) x_A ~ N(0, I), with its degree <= 2 Hermite projection
    y_{<=2} = c0 + c1 . z + (z^T C2 z - tr C2) and its irreducible (degree >= 3) power."""

    spec: str = "paper"
    exact: bool = True
    D: int
    c0: float
    c1: np.ndarray
    C2: np.ndarray
    irreducible_loss: float = 0.0
    irreducible_stderr: float = 0.0
    #: direction used for the ``alignment`` diagnostic (None: the problem's beta)
    direction: np.ndarray | None = None

    def labels_z(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def labels(self, problem: Any, X: np.ndarray) -> np.ndarray:
        """Clean labels y(x) for inputs X (rows) stored in the problem's convention units."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.D:
            raise ProblemError(f"inputs must have shape (n, {self.D}), got {X.shape}")
        return self.labels_z(X * (problem.input_scale * math.sqrt(self.D)))

    def model_coefficients(self, wbar, M, wref, Mref, alpha, eps) -> tuple[np.ndarray, np.ndarray]:
        """(l, Q): ftilde = l . z + z^T Q z with l = alpha (wbar - wref)/sqrt(D),
        Q = (alpha eps / 2)(M - Mref)/D."""
        D = self.D
        lvec = (alpha / math.sqrt(D)) * (wbar - wref)
        Q = (0.5 * alpha * eps / D) * (M - Mref)
        return lvec, Q

    def decomposition(self, wbar, M, wref, Mref, alpha, eps) -> tuple[float, float, float]:
        """(variance, misalignment, linear_power) of the degree <= 2 error ftilde - y_{<=2}:
        a0 = tr C2 - c0, a = l - c1, A = Q - C2 in :func:`quadratic_error_split`."""
        lvec, Q = self.model_coefficients(wbar, M, wref, Mref, alpha, eps)
        a = lvec - self.c1
        A = Q - self.C2
        var, lin, mis = quadratic_error_split(float(np.trace(self.C2)) - self.c0,
                                              float(np.trace(A)), float(a @ a),
                                              float(np.sum(A * A)))
        return var, mis, lin

    @property
    def loss_constant(self) -> float:
        """The constant added to variance + misalignment + linear_power to give the population
        loss: the irreducible loss for exact targets; for Monte-Carlo targets the plug-in
        S - |c_hat|^2, which makes the total |m|^2 - 2 m.c_hat + S unbiased."""
        return self.irreducible_loss

    def population_loss(self, wbar, M, wref, Mref, alpha, eps) -> float:
        """E_z[(ftilde - y)^2] = variance + misalignment + linear_power + loss_constant."""
        return float(sum(self.decomposition(wbar, M, wref, Mref, alpha, eps))
                     + self.loss_constant)

    def population_loss_stderr(self, wbar, M, wref, Mref, alpha, eps) -> float:
        """Standard error of population_loss (0 for exact targets)."""
        return 0.0

    def second_moment(self) -> float:
        """E[y^2]."""
        var, lin, mis = quadratic_error_split(self.c0 - float(np.trace(self.C2)),
                                              float(np.trace(self.C2)),
                                              float(self.c1 @ self.c1), float(np.sum(self.C2**2)))
        return var + lin + mis + self.loss_constant

    def info(self) -> dict[str, Any]:
        """JSON-able summary: spec, exactness, E[y^2] and the irreducible loss (+- stderr)."""
        return {"target": self.spec, "exact": self.exact,
                "target_second_moment": self.second_moment(),
                "irreducible_loss": float(self.irreducible_loss),
                "irreducible_loss_stderr": float(self.irreducible_stderr)}


class PaperTarget(Target):
    """y = tau (beta . x_A)^2 = z^T (tau beta beta^T / D) z: c0 = tau |beta|^2 / D, c1 = 0,
    C2 = tau beta beta^T / D."""

    def __init__(self, beta: np.ndarray, tau: float, spec: str = "paper"):
        self.beta = np.asarray(beta, dtype=np.float64)
        self.tau = float(tau)
        self.D = self.beta.shape[0]
        self.spec = spec
        self.c0 = self.tau * float(self.beta @ self.beta) / self.D
        self.c1 = np.zeros(self.D)
        self.C2 = (self.tau / self.D) * np.outer(self.beta, self.beta)
        self.direction = self.beta

    def labels_z(self, Z):
        h = (Z / math.sqrt(self.D)) @ self.beta
        return self.tau * h * h

    def labels(self, problem, X):
        from lazyrich_theory.spec.data import target

        return target(problem, np.asarray(X, dtype=np.float64), self.beta)


class QuadraticTarget(Target):
    """y = x_A^T B x_A + b . x_A + c = z^T (B/D) z + (b/sqrt D) . z + c:
    c0 = c + tr B / D, c1 = b / sqrt(D), C2 = B / D, no irreducible part."""

    def __init__(self, B: np.ndarray, b: np.ndarray, c: float, spec: str = "quadratic"):
        B = np.asarray(B, dtype=np.float64)
        D = B.shape[0]
        if B.shape != (D, D) or not np.allclose(B, B.T, rtol=0, atol=1e-12 * max(1.0, np.abs(B).max())):
            raise ProblemError(f"quadratic target: B must be a symmetric square matrix, got shape {B.shape}")
        self.B = 0.5 * (B + B.T)
        self.b = np.asarray(b, dtype=np.float64).reshape(-1)
        if self.b.shape != (D,):
            raise ProblemError(f"quadratic target: b must have shape ({D},), got {self.b.shape}")
        self.c = float(c)
        if not (np.all(np.isfinite(self.B)) and np.all(np.isfinite(self.b)) and math.isfinite(self.c)):
            raise ProblemError("quadratic target: B, b, c must be finite")
        self.D, self.spec = D, spec
        self.c0 = self.c + float(np.trace(self.B)) / D
        self.c1 = self.b / math.sqrt(D)
        self.C2 = self.B / D
        w, V = np.linalg.eigh(self.B)
        self.direction = V[:, int(np.argmax(np.abs(w)))] if D else None

    def labels_z(self, Z):
        X = Z / math.sqrt(self.D)
        return np.einsum("ij,ij->i", X @ self.B, X) + X @ self.b + self.c


class HermiteTarget(Target):
    """y = sum_j sum_k coef[j, k] He_k(u_j . z), unit u_j (rows of U).  Projection (derived
    table a[k, m] = E[He_k He_m] / rho^m): c0 = sum coef[j,k] a[k,0],
    c1 = sum coef[j,k] a[k,1] u_j, C2 = sum coef[j,k] a[k,2]/2 u_j u_j^T;
    irreducible = sum_{j,l} sum_{k,m>=3} coef[j,k] coef[l,m] T_km(u_j . u_l)."""

    def __init__(self, U: np.ndarray, coef: np.ndarray, spec: str = "hermite"):
        U = np.atleast_2d(np.asarray(U, dtype=np.float64))
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        R, D = U.shape
        if coef.shape[0] != R:
            raise ProblemError(f"hermite target: {coef.shape[0]} coefficient rows for {R} directions")
        n = np.linalg.norm(U, axis=1)
        if not np.all(np.isfinite(U)) or np.any(n == 0):
            raise ProblemError("hermite target: directions must be finite and nonzero")
        if not np.all(np.isfinite(coef)):
            raise ProblemError("hermite target: coefficients must be finite")
        self.U = U / n[:, None]
        self.coef = coef
        self.D, self.spec = D, spec
        K = coef.shape[1] - 1
        self.K = K
        a = hermite_projection_coefficients(K)
        cm = coef @ a                                   # (R, 3): sum_k coef[j,k] a[k,m]
        self.c0 = float(np.sum(cm[:, 0]))
        self.c1 = self.U.T @ cm[:, 1]
        self.C2 = (self.U.T * (0.5 * cm[:, 2])) @ self.U
        if K >= 3:
            rho = np.clip(self.U @ self.U.T, -1.0, 1.0)
            T = hermite_gram(K)(rho)                    # (R, R, K+1, K+1)
            hi = coef[:, 3:]
            self.irreducible_loss = float(np.einsum("jk,lm,jlkm->", hi, hi, T[:, :, 3:, 3:]))
        else:
            self.irreducible_loss = 0.0
        self.direction = self.U[0]

    def labels_z(self, Z):
        from numpy.polynomial.hermite_e import hermeval

        H = Z @ self.U.T
        y = np.zeros(Z.shape[0])
        for j in range(self.U.shape[0]):
            y += hermeval(H[:, j], self.coef[j])
        return y


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


# ============================================================================ construction
def _load_npz(spec: str, path: str, needed: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise _err(spec, f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
    except Exception as exc:  # noqa: BLE001
        raise _err(spec, f"cannot read {path}: {type(exc).__name__}") from None
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise _err(spec, f"{path} lacks array(s) {', '.join(missing)}")
    return arrays


def _resolve_function(spec: str, ref: str) -> Callable:
    if ":" not in ref:
        if ref not in _REGISTRY:
            raise _err(spec, f"no registered target function {ref!r} (use targets.register or module:function)")
        return _REGISTRY[ref]
    mod, fname = ref.split(":")
    try:
        module = importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001
        raise _err(spec, f"cannot import module {mod!r}: {type(exc).__name__}") from None
    fn = getattr(module, fname, None)
    if not callable(fn):
        raise _err(spec, f"module {mod!r} has no function {fname!r}")
    return fn


def make_target(problem: Any, beta: np.ndarray | None = None) -> Target:
    """The Target object of ``problem.target`` (``beta``: the problem's teacher vector, used
    only by the paper target)."""
    spec_str = problem.target
    sp = parse_spec(spec_str)
    D = problem.D
    if sp.family == "paper":
        if beta is None:
            raise ProblemError("the paper target needs beta")
        return PaperTarget(beta, problem.tau, spec_str)
    rng, rng_mc = target_stream(problem, sp)
    a = sp.args
    if sp.family == "quadratic":
        if "file" in a:
            arr = _load_npz(spec_str, a["file"], ("B",))
            B = arr["B"]
            if B.shape != (D, D):
                raise _err(spec_str, f"B has shape {B.shape}, expected ({D}, {D})")
            b = arr.get("b", np.zeros(D))
            c = float(np.ravel(arr["c"])[0]) if "c" in arr else float(a.get("c", 0.0))
            return QuadraticTarget(B, b, c, spec_str)
        sB, sb, c = float(a.get("B", 1.0)), float(a.get("b", 0.0)), float(a.get("c", 0.0))
        R = int(a.get("rank", 0))
        if R == 0:
            G = rng.standard_normal((D, D))
            B = sB * 0.5 * (G + G.T)
        else:
            G = rng.standard_normal((R, D))
            B = (sB / math.sqrt(2.0 * R)) * (G.T @ G)
        b = sb * rng.standard_normal(D)
        return QuadraticTarget(B, b, c, spec_str)
    if sp.family == "hermite":
        if "file" in a:
            arr = _load_npz(spec_str, a["file"], ("U",))
            U = np.atleast_2d(arr["U"])
            if U.ndim != 2 or U.shape[1] != D:
                raise _err(spec_str, f"U has shape {arr['U'].shape}, expected (R, {D})")
            R = U.shape[0]
        else:
            U = None
            R = int(a.get("r", 1)) if "k" in a else _coef_table(spec_str, a["coef"]).shape[0]
        if "coef" in a:
            coef = _coef_table(spec_str, a["coef"])
        elif "k" in a:
            k = int(a["k"])
            coef = np.zeros((R, k + 1))
            coef[:, k] = 1.0
        elif U is not None and "coef" in arr:
            coef = np.atleast_2d(arr["coef"])
        else:
            raise _err(spec_str, "no coefficients: give k=, coef= or a 'coef' array in the file")
        if coef.shape[0] != R:
            raise _err(spec_str, f"{coef.shape[0]} coefficient groups for {R} directions")
        if U is None:
            if a.get("dirs", "orth") == "orth":
                if R > D:
                    raise _err(spec_str, f"{R} orthonormal directions do not fit in D={D} (use dirs=iid)")
                Q, Rm = np.linalg.qr(rng.standard_normal((D, R)))
                U = (Q * np.sign(np.diag(Rm))).T
            else:
                G = rng.standard_normal((R, D))
                U = G / np.linalg.norm(G, axis=1, keepdims=True)
        return HermiteTarget(U, coef, spec_str)
    # func
    fn = _resolve_function(spec_str, sp.ref)
    return FunctionTarget(fn, D, rng_mc, int(a.get("samples", MC_SAMPLES)), spec_str)


def is_paper(problem: Any) -> bool:
    """True for the default paper target."""
    return parse_spec(problem.target).family == "paper"
