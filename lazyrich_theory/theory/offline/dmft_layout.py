"""The storage layout of the offline DMFT's compiled core (``dmft_kernels``): the index
constants of its two-time arrays K, per-sample histories S and scalar series V1, the packed
lower-triangular index ``tri``, and the guards shared by its steps."""

from __future__ import annotations

from numba import njit

__all__ = ["K_NAMES", "S_NAMES", "V1_NAMES", "tri", "C_FLOOR", "SEED_FREEZE"]

#: Two-time arrays K[k]: responses R (bulk, spike, betahat row), covariances C (bulk, spike
#: tilt, linear), memory kernels Gamma, noise sources S, their products F = Gamma * R, the
#: mean memorisation kernel Kbar, the sample means E[Q], E[xi^2 Q], E[h h'], E[r r'], and the
#: spread closure's operators ell and Gbar (``dmft_spread``; zero in the other closures).
K_NAMES = ("Rb", "Rm", "Rx", "Cb", "Cg", "Cu", "Gb", "Gm", "Gx", "Sb", "Sg", "Sx", "Su",
           "Fb", "Fm", "Fx", "Kbar", "EQ", "EQx", "Ehh", "Crr", "L", "Gbar")
(RB, RM, RX, CB, CG, CU, GB, GM, GX, SB, SG, SX, SU, FB, FM, FX, KBAR, EQ, EQX,
 EHH, CRR, LL, GBAR) = range(len(K_NAMES))
#: Per-sample histories S[k, i, n]: residual r, spike field h, the linear column's input
#: and output (rt, rc), the implicit bulk factor c_b, and the two noise draws.
S_NAMES = ("r", "h", "rt", "rc", "cb", "etg", "etu")
R_, H_, RT_, RC_, CBS_, ETG_, ETU_ = range(len(S_NAMES))
#: Scalar series V1[k, n]: spike amplitude (with and without the seed), seed factor nu,
#: E[xi r h], train loss, E[r], E[g^2], E[theta_u^2], and three diagnostics of the linear
#: column's output r - rho on the training samples (r = rho + alpha s): E[(r - rho)^2], its
#: part of the spike's drive, E[xi (r - rho) h], and its work E[r (r - rho)]; and the joint
#: current point's last relative change of the residuals and its number of passes (0 where it
#: does not run).
V1_NAMES = ("mu", "mudet", "nu", "exrh", "train", "er", "eg2", "eu2", "ecol", "excol",
            "ercol", "joint", "passes")
(MU_, MUDET_, NU_, EXRH_, TRAIN_, ER_, EG2_, EU2_, ECOL_, EXCOL_,
 ERCOL_, JOINT_, PASSES_) = range(len(V1_NAMES))
#: Guard on the implicit factors 1 + c (stiff outlier samples), and the spike size at which
#: the seed factor nu is frozen (alpha eps mu^2 / b2).
C_FLOOR, SEED_FREEZE = -0.5, 0.05


@njit(cache=True, inline="always")
def tri(n, m):
    """Packed index of (n, m), m <= n."""
    return n * (n + 1) // 2 + m

