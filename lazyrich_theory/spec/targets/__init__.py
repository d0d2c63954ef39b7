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

from lazyrich_theory.spec.targets.build import is_paper, make_target
from lazyrich_theory.spec.targets.families import HermiteTarget, PaperTarget, QuadraticTarget, Target
from lazyrich_theory.spec.targets.function import FunctionTarget
from lazyrich_theory.spec.targets.grammar import (
    FAMILIES,
    MC_FOLDS,
    MC_SAMPLES,
    MC_SE_SUBSAMPLE,
    TARGET_STREAM_CHILD,
    TargetSpec,
    parse_spec,
    register,
    registered,
    restore_registered,
    target_stream,
)
from lazyrich_theory.spec.targets.moments import (
    hermite_gram,
    hermite_gram_symbolic,
    hermite_projection_coefficients,
    quadratic_error_split,
    quadratic_error_split_symbolic,
)

__all__ = ["Target", "PaperTarget", "QuadraticTarget", "HermiteTarget", "FunctionTarget",
           "TargetSpec", "parse_spec", "make_target", "is_paper", "register", "registered",
           "restore_registered", "target_stream", "TARGET_STREAM_CHILD", "hermite_gram",
           "quadratic_error_split", "quadratic_error_split_symbolic", "hermite_gram_symbolic",
           "hermite_projection_coefficients", "FAMILIES", "MC_SAMPLES", "MC_SE_SUBSAMPLE",
           "MC_FOLDS"]
