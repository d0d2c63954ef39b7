"""Gaussian moments behind the exact population loss, derived with sympy and turned into
numeric code with ``sympy.lambdify`` (Hermite Gram table; the Hermite split of a quadratic error)."""

# sympy is imported inside the derivations: it costs about a second of start-up and only
# non-paper targets need it (the results are cached per process by lru_cache).
from __future__ import annotations

import functools
from typing import Callable

import numpy as np



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
    """Symbolic table ``T[j][k](rho) = E[He_j(s) He_k(t)]``, (s, t) standard normals with
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
