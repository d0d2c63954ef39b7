"""Speed of the mirror-descent interpolant (docs/offline_theory.md §15.1, Numerics): the
package's damped Newton with the Woodbury-preconditioned CG (``entropic_interpolant``, end to
end as a user calls it: the problem's data drawn, the state's losses computed) against the
baseline it replaced, scipy's unpreconditioned trust-region Newton-CG on the same dual
(``minimize(..., method="trust-ncg")``, then plain Newton-CG steps to the same tolerance),
measured in one run.

    python benchmarks/interpolant_speed.py        # -> interpolant_speed.md (~10 min)
    python benchmarks/interpolant_speed.py cg     # CG iterations per Newton system, with and
                                                  # without the preconditioner (~1 min)

Median wall time of ``REPEATS`` runs each; the ratio baseline / package; both at the same
tolerance (largest interpolation residual 1e-9 of the largest label) and the same loss.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, cg

import lazyrich_theory as lr
from common import markdown_head, median_time
from lazyrich_theory.theory.offline.implicit_bias import _Dual, entropic_interpolant

HERE = Path(__file__).resolve().parent
CASES = ((100, 3.0), (100, 5.5), (100, 11.0), (200, 3.0), (200, 5.5), (400, 3.0), (400, 5.5))
REPEATS = 3
TOL = 1e-9


def _baseline(p: lr.Problem) -> tuple[float, int]:
    """scipy trust-ncg on -Psi, then unpreconditioned Newton-CG steps (the solver before this
    benchmark); returns (largest residual / largest label, Hessian-vector products)."""
    data = p.data()
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    dual = _Dual(X, y, p.alpha, p.eps)
    tol = TOL * float(np.abs(y).max())
    count = [0]

    def hessp(c, v):
        count[0] += 1
        return dual.hessp(c, v)

    n = X.shape[0]
    c = minimize(dual.value_and_grad, np.zeros(n), jac=True, hessp=hessp, method="trust-ncg",
                 options={"gtol": tol, "maxiter": 300}).x
    for _ in range(6):
        g = -dual.residual(c)
        if np.abs(g).max() <= tol:
            break
        H = LinearOperator((n, n), matvec=lambda v, c=c: hessp(c, v), dtype=float)
        c = c + cg(H, -g, rtol=1e-12, maxiter=10 * n)[0]
    return float(np.abs(dual.residual(c)).max()) / float(np.abs(y).max()), count[0]


def main() -> None:
    lines = markdown_head("Mirror-descent interpolant: preconditioned Newton vs scipy trust-ncg",
                          f"Median of {REPEATS} runs each, (alpha, eps) = (1, 0.02), seed 0, "
                          "N = inf; ratio = baseline / package.",
                          ["D", "kappa", "P", "package (s)", "Newton steps", "baseline (s)",
                           "its residual", "its Hessian products", "ratio"])
    for D, kappa in CASES:
        p = lr.preset("fig1").replace(N=math.inf, D=D, P=int(round(kappa * D)), alpha=1.0,
                                      eps=0.02, seed=0)
        t_new, st = median_time(lambda p=p: entropic_interpolant(p), REPEATS)
        t_old, (res, nprod) = median_time(lambda p=p: _baseline(p), REPEATS)
        lines.append(f"| {D} | {kappa:g} | {p.P} | {t_new:.2f} | {st.iterations} | {t_old:.2f} "
                     f"| {res:.0e} | {nprod} | {t_old / t_new:.1f} |")
        print(lines[-1], flush=True)
    (HERE / "interpolant_speed.md").write_text("\n".join(lines) + "\n")


def cg_counts(D: int = 200, kappa: float = 3.0) -> None:
    """CG iterations to solve -Hess Psi d = -grad (rtol 1e-8) at c = 0, c*/2, c* (seed 0),
    plain and with the package's preconditioner."""
    p = lr.preset("fig1").replace(N=math.inf, D=D, P=int(round(kappa * D)), alpha=1.0,
                                  eps=0.02, seed=0)
    data = p.data()
    dual = _Dual(np.asarray(data.X, float), np.asarray(data.y, float), p.alpha, p.eps)
    n = p.P
    from lazyrich_theory.theory.offline.implicit_bias import _newton
    star, _ = _newton(dual, np.zeros(n), TOL * float(np.abs(data.y).max()), 300)
    for frac in (0.0, 0.5, 1.0):
        c = frac * star
        H = LinearOperator((n, n), matvec=lambda v, c=c: dual.hessp(c, v), dtype=float)
        counts = []
        for pre in (None, dual.preconditioner(c)):
            it = [0]
            cg(H, -dual.residual(c), rtol=1e-8, maxiter=10 * n, M=pre,
               callback=lambda _x, it=it: it.__setitem__(0, it[0] + 1))
            counts.append(it[0])
        print(f"D = {D}, kappa = {kappa:g}, c = {frac:g} c*: CG iterations plain {counts[0]}, "
              f"preconditioned {counts[1]}")


if __name__ == "__main__":
    import sys
    cg_counts() if sys.argv[1:] == ["cg"] else main()
