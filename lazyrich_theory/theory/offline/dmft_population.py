"""The population-dynamics field of the spread closure at the current point, solved with the
residuals instead of one step behind (docs/offline_theory.md §12.4, "The noise at the current
point").

In the spread closure every Monte Carlo sample's residual obeys (12.1) / (12.2),

    r_i(n) (1 + l) = rho_i(n) + e_i(n) - sqrt(kappa) l eta_i(n),    l = ell[n, n],

with e_i(n) the explicit past terms and eta_i(n) = sum_{j != i} W_ij r_j(n) the population
field (W = omega / sqrt(Ns - 1), omega a fixed standard Gaussian matrix, zero diagonal).  With
rho frozen this is the linear system (1 + c W) r = b, c = sqrt(kappa) l / (1 + l), over the
samples.  Its matrix changes from step to step only through the scalar c, so W's complex
Schur form W = Z T Z^H, computed once, turns every solve into two products with Z and one
triangular back substitution: O(Ns^2) per step.  The solve also gives the field at its
solution without another product: W r = (b - r) / c.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from numba import njit, prange

__all__ = ["population_matrix", "population_schur", "population_field", "population_solve"]


def population_matrix(zu: np.ndarray) -> np.ndarray:
    """W = omega / sqrt(Ns - 1) with a zero diagonal (a sample's field leaves itself out)."""
    W = np.asarray(zu, dtype=float) / math.sqrt(zu.shape[0] - 1.0)
    np.fill_diagonal(W, 0.0)
    return W


def population_schur(zu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The complex Schur form of :func:`population_matrix`, W = Z T Z^H (Z unitary, T upper
    triangular), as (ZZ, T) with ZZ[0] = Z and ZZ[1] = Z^H (both row-major, so that both
    products of :func:`population_solve` read rows)."""
    T, Z = scipy.linalg.schur(population_matrix(zu), output="complex")
    return np.ascontiguousarray(np.stack([Z, Z.conj().T])), np.ascontiguousarray(T)


@njit(cache=True, parallel=True)
def population_field(zu, r, out):
    """out_i = sum_{j != i} zu[i, j] r_j / sqrt(Ns - 1): the samples' population field."""
    Ns = r.size
    s = 1.0 / math.sqrt(Ns - 1.0)
    for i in prange(Ns):
        acc = 0.0
        for j in range(Ns):
            if j != i:
                acc += zu[i, j] * r[j]
        out[i] = acc * s


@njit(cache=True, parallel=True)
def population_solve(ZZ, T, c, b, out):
    """out = (1 + c W)^(-1) b through W's Schur form (``ZZ`` = (Z, Z^H), T):
    Re[Z (1 + c T)^(-1) Z^H b].  The two products run in parallel over their rows, each row
    summed in order (the numbers do not depend on the threads)."""
    Ns = b.size
    Z, ZH = ZZ[0], ZZ[1]
    y = np.zeros(Ns, dtype=np.complex128)
    for k in prange(Ns):            # y = Z^H b
        acc = 0.0 + 0.0j
        for j in range(Ns):
            acc += ZH[k, j] * b[j]
        y[k] = acc
    for k in range(Ns - 1, -1, -1):     # (1 + c T) x = y, T upper triangular
        acc = 0.0 + 0.0j
        for j in range(k + 1, Ns):
            acc += T[k, j] * y[j]
        y[k] = (y[k] - c * acc) / (1.0 + c * T[k, k])
    yr, yi = y.real.copy(), y.imag.copy()
    for i in prange(Ns):            # out = Re(Z y): the real part alone
        acc = 0.0
        for k in range(Ns):
            acc += Z[i, k].real * yr[k] - Z[i, k].imag * yi[k]
        out[i] = acc
