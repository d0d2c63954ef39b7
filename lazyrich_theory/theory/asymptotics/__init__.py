"""Proportional asymptotics (D -> inf, P = kappa D) of the initial-NTK (lazy) model.

Setting (docs/theory.md §1, §4; derivation in docs/asymptotics.md).  Convention A, N = inf,
centered: x ~ N(0, I/D), y = 1/2 (beta.x)^2 = x^T B x with B = 1/2 beta beta^T,
b2 = |beta|^2 / D (|beta|^2 itself is ``beta2`` in the population ODE), and the width-free
initial kernel (eta K0 = eta0 Ktilde0)

    Ktilde0(x, x') = (x.x') [1 + eps^2 (x.x')]  =  psi(x) . psi(x'),   psi(x) = (x, eps x x^T),

i.e. regression on the D linear features and the D(D+1)/2 quadratic features x_i x_j.  The target is
exactly realisable: y = psi(x).theta* with theta* = (0, B / eps).

Notation used throughout: c0 = b2/2 = E[y] (the constant part of y), s2 = b2^2/2 = Var[y] (its
quadratic fluctuation), mean square E[y^2] = c0^2 + s2 = 3 b2^2 / 4.  A ridge lambda means
a = (Ktilde0(X, X) + lambda I)^{-1} y.

Two levels of theory
--------------------
**Leading order** (``D=None`` / ``order="leading"``).  For mu != nu, x_mu.x_nu = O(D^-1/2), so
(El Karoui 2010)

    Ktilde0(X, X) ~ X X^T + eps^2 I + (eps^2 / D) 1 1^T,

a linear kernel, an effective ridge eps^2 (the diagonal eps^2 |x|^4 ~ eps^2 together with the
nearly-isotropic Gram matrix of the quadratic features), and a constant mode.  The even target has no
linear part; its constant c0 sits on the constant mode, its fluctuation (variance s2) acts as noise.
With lam_eff = eps^2 + lambda and r the root > 0 of

    kappa r - r / (1 + r) = lam_eff        (kappa r^2 + (kappa - 1 - lam_eff) r - lam_eff = 0)

the ridge(less) regression errors are

    test  = [ c0^2 (r / (r + eps^2))^2 + s2 ] / [ 1 - 1 / (kappa (1 + r)^2) ]
    train = (lambda / (kappa r))^2 * test.

Ridgeless, eps -> 0, kappa > 1:  test -> b2^2 (2 kappa^2 + 1) / (4 kappa (kappa - 1)).

**Finite-D deterministic equivalent** (``D=int`` / ``order="de"``): the standard deterministic
equivalent of ridge regression (Bach 2023; Atanasov, Zavatone-Veth & Pehlevan 2024) applied to the
exact second-moment spectrum of psi, which has three groups

    linear        sigma = 1/D                     multiplicity D          target weight 0
    identity dir. sigma = eps^2 (D + 2) / D^2     multiplicity 1          |theta|^2 = c0^2 D / eps^2
    traceless     sigma = 2 eps^2 / D^2           multiplicity D(D+1)/2-1 |theta|^2 = b2^2 D^2 (1 - 1/D) / (4 eps^2)

It keeps the partial learning of the quadratic features (order P / D^2) that the leading order drops;
test = E0 + E1 / D + O(D^-2) with E1 < 0 (eps -> 0, ridgeless:
E1 = -b2^2 (4 kappa^4 + 2 kappa^3 + 2 kappa^2 - 2 kappa - 3) / (4 kappa^3)).  It treats the
features as if Gaussian; see docs/asymptotics.md for its measured accuracy.

Learning curves of the linearised model: train residual (I - cK)^t (-y), c = 2 eta0 / P, K = Ktilde0
(``method="gd"``), or exp(-c K t) (``method="flow"``, same time axis).  Curves depend on t through
c t = 2 eta0 t / (kappa D), so the dimension D is needed to read t in GD steps.

Modules: ``spectra`` (checks, Marchenko–Pastur, feature groups, filters), ``leading`` (leading
order), ``deterministic`` (finite-D deterministic equivalent), ``exact`` (exact finite-D
references through ``theory.lazy.LinearizedModel``); every public name is importable from
this package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.theory.asymptotics.deterministic import _de_ridge
# the Silverstein solver and the contour curves, called directly by the tests
from lazyrich_theory.theory.asymptotics.deterministic import _de_curves as _de_curves
from lazyrich_theory.theory.asymptotics.deterministic import _solve_a as _solve_a
from lazyrich_theory.theory.asymptotics.exact import (
    k0_regression_exact,
    linearized_curves_exact,
    sample_data,
)
from lazyrich_theory.theory.asymptotics.leading import _k0_leading, _leading_curves
from lazyrich_theory.theory.asymptotics.spectra import _check, feature_groups, mp_stieltjes

__all__ = [
    "k0_regression_asymptotic",
    "k0_regression_expansion",
    "linearized_curves_asymptotic",
    "sample_data",
    "k0_regression_exact",
    "linearized_curves_exact",
    "feature_groups",
    "mp_stieltjes",
]

def k0_regression_asymptotic(kappa: float, eps: float, b2: float = 1.0, ridge: float = 0.0,
                             D: float | None = None) -> dict[str, float]:
    """Population test MSE and train MSE of (ridge) kernel regression with Ktilde0.

    ``D=None``: leading order in the proportional limit (module docstring):

        kappa r - r/(1+r) = eps^2 + ridge,
        test  = [c0^2 (r/(r+eps^2))^2 + s2] / [1 - 1/(kappa (1+r)^2)],
        train = (ridge / (kappa r))^2 test,

    with c0 = b2/2, s2 = b2^2/2.  The returned dict also splits the leading-order test loss into
    ``constant`` (unlearned mean), ``noise`` (the quadratic fluctuation, never learned at this
    order) and ``linear`` (variance of the linear part fitted to that noise); these add up to
    test_loss.

    ``D=<number>``: finite-D deterministic equivalent on the exact three-group feature spectrum
    (keeps the quadratic features' partial learning, O(P/D^2)); returns test_loss, train_loss, the
    renormalised ridge ``rho`` (kernel units) and the learned fractions of a quadratic and of a
    linear feature direction.
    """
    _check(kappa, eps, b2, ridge)
    if D is not None:
        return _de_ridge(float(D), kappa, eps, b2, ridge)
    return _k0_leading(kappa, eps, b2, ridge)


def k0_regression_expansion(kappa: float, eps: float, b2: float = 1.0,
                            ridge: float = 0.0) -> dict[str, float]:
    """test_loss = E0 + E1 / D + O(D^-2): E0 the leading order, E1 from the deterministic equivalent.

    E1 is extracted numerically (Richardson on the finite-D deterministic equivalent at
    D = 1e6, 2e6, 4e6).  In the ridgeless eps -> 0 limit (kappa > 1) it tends to
    -b2^2 (4 kappa^4 + 2 kappa^3 + 2 kappa^2 - 2 kappa - 3) / (4 kappa^3) ~ -kappa b2^2, i.e. a
    reduction of the test loss by about b2^2 P / D^2: the quadratic features are partly learned.
    """
    _check(kappa, eps, b2, ridge)
    E0 = k0_regression_asymptotic(kappa, eps, b2, ridge)["test_loss"]
    Ds = np.array([1e6, 2e6, 4e6])
    vals = np.array([_de_ridge(D, kappa, eps, b2, ridge)["test_loss"] for D in Ds])
    s = (vals - E0) * Ds            # = E1 + E2 / D + ...
    E1 = 2 * s[2] - s[1]            # Richardson: removes the E2/D term
    return dict(E0=float(E0), E1=float(E1))


def linearized_curves_asymptotic(kappa: float, eps: float, eta0: float, t: Any, *, D: float,
                                 b2: float = 1.0, method: str = "gd",
                                 order: str = "leading") -> dict[str, np.ndarray]:
    """Train and population test loss of the linearised (lazy, N = inf, centered) model vs t.

    GD with c = 2 eta0 / P on K = Ktilde0(X, X): r(t) = (I - cK)^t (-y), f_t(x) = k(x)^T A_t(K) y
    with A_t(l) = [1 - (1 - c l)^t] / l; ``method="flow"`` replaces (1 - c l)^t by exp(-c l t).
    ``t`` is in GD steps (array or scalar); D converts it (c = 2 eta0 / (kappa D)).

    ``order="leading"`` (D -> inf at fixed c t): in sample space K = G + eps^2 I + s u u^T
    (G = X X^T, s = eps^2 kappa, u = 1/sqrt(P)), y = c0 sqrt(P) u + xi, xi isotropic with variance
    s2; mu = spectrum of G + eps^2 I, nu_u = spectral measure of K at u (see _leading_spectra):

        train = c0^2 int F^2 dnu_u + s2 int F^2 dmu
        test  = s2 + c0^2 (1 - s int A dnu_u)^2
                + kappa [ s2 int A^2 (l - eps^2) dmu
                          + c0^2 ( int A^2 l dnu_u - eps^2 int A^2 dnu_u - s (int A dnu_u)^2 ) ].

    The three test terms are returned as ``noise``, ``constant`` and ``linear``.  t -> inf gives
    the ridgeless k0_regression_asymptotic.

    ``order="de"``: feature-space deterministic equivalent at this finite D (first correction):
    with Sigma-hat the feature sample covariance, F = F(Sigma-hat), H = 1 - F,

        test  = theta^T Sigma theta - 2 theta^T H Sigma theta + theta^T H Sigma H theta,
        train = theta^T Sigma-hat F^2 theta,

    the one- and two-resolvent deterministic equivalents
        R(z) ~ (a(z) Sigma - z)^-1,   R1 Sigma R2 ~ T1 Sigma T2 / (1 - (a1 a2 / P) tr Sigma T1 Sigma T2)
    and contour integrals around each spectral cluster.
    """
    _check(kappa, eps, b2)
    if method not in ("gd", "flow"):
        raise ProblemError("method must be 'gd' or 'flow'")
    if not (eta0 > 0):
        raise ProblemError("eta0 must be positive")
    if D is None or not (D > 0):
        raise ProblemError("D (the input dimension) is needed to read t in GD steps")
    scalar = np.ndim(t) == 0
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if np.any(t < 0):
        raise ProblemError("t must be >= 0")
    if order == "leading":
        out = _leading_curves(kappa, eps, eta0, t, float(D), b2, method)
    elif order == "de":
        out = _de_curves(kappa, eps, eta0, t, float(D), b2, method)
    else:
        raise ProblemError("order must be 'leading' or 'de'")
    if scalar:
        out = {k: v[0] for k, v in out.items()}
    return out
