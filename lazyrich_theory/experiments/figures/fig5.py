"""Figure 5: labels = eigenvectors of the initial NTK on Gaussian data.

Compute functions only (see :mod:`lazyrich_theory.experiments.figures.common`); drawn by
:func:`lazyrich_theory.plotting.figures.plot_eigenvector_labels`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lazyrich_validation import simulate

from lazyrich_theory.core.kernels import ntk_tilde, paper_kernel_alignment, target_power_fraction
from lazyrich_theory.core.reduced import initial_factor
from lazyrich_theory.core.solve import solve
from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.figures.common import (
    FigureData,
    as_list,
    curves_table,
    linearized,
    max_rel_dev,
    sequence_of,
)
from lazyrich_theory.spec.data import ProblemData
from lazyrich_theory.spec.problem import Problem

__all__ = ["FIG5_KS", "eigenvector_labels", "fig5"]

#: Default eigen-indices k whose curves Figure 5 draws (``lazyrich figure fig5 --set ks=...``).
FIG5_KS = (1, 5, 70, 75, 100, 150)


def eigenvector_labels(problem: Problem, data=None):
    """The labels of the paper's Figure 5 (docs/gallery.md, "Figure 5"): the eigenvectors of
    the initial NTK on all P + test_size points, after subtracting its scalar global mean.

    The kernel is the width-free Ktilde0 (kernels.ntk_tilde at W0; the true NTK is
    alpha^2/N times it, which changes neither the eigenvectors nor their order) on the stacked
    inputs [X; X_test] in convention-A units.  Returns (lam, V, Kc): eigenvalues in
    descending order, unit-norm eigenvectors as columns (label k = V[:, k - 1]; its first P
    entries are the training labels, the rest the test labels) and the centered kernel."""
    data = problem.data() if data is None else data
    s = problem.input_scale
    Xall = np.vstack([data.X, data.X_test]) * s
    F0, _, z = initial_factor(data.W0, problem.D)
    K = ntk_tilde(Xall, F0, z, problem.eps)
    Kc = K - K.mean()
    lam, V = np.linalg.eigh(0.5 * (Kc + Kc.T))
    return lam[::-1].copy(), np.ascontiguousarray(V[:, ::-1]), Kc


def _check_ks(ks, n: int, what: str) -> tuple[int, ...]:
    try:
        vals = [float(k) for k in as_list(ks)]
    except (TypeError, ValueError):
        raise ProblemError(f"{what} must be integers in 1..{n}, got {ks!r}") from None
    if not vals or any(not v.is_integer() or v < 1 or v > n for v in vals):
        raise ProblemError(f"{what} must be integers in 1..{n} (P + test_size), got {ks!r}")
    out = tuple(int(v) for v in vals)
    if len(set(out)) != len(out):
        raise ProblemError(f"{what} must not repeat a value, got {ks!r}")
    return out


def _label_run(problem: Problem, steps: int, method: str, base: ProblemData,
               lam: np.ndarray, V: np.ndarray, k: int, network: bool):
    """Train on label k: the reduced run, its linearised model, the network (when asked) and
    the row of numbers (``fig5``'s cells and scan)."""
    P = problem.P
    y = V[:, k - 1]
    d = ProblemData(base.X, y[:P].copy(), base.X_test, y[P:].copy(), np.zeros(problem.D),
                    base.W0, source=f"eigenvector {k}")     # no teacher: the labels are given
    tr = solve(problem, steps, method=method, data=d)
    model, lin = linearized(problem, d, tr.t, method)
    Ktr = model.V @ (model.lam[:, None] * model.V.T)
    row = {"k": k, "eigenvalue": float(lam[k - 1]),
           "train_label_power": float(y[:P] @ y[:P]),
           "paper_alignment_K0_train": paper_kernel_alignment(Ktr, y[:P]),
           "top10_power_K0_train": float(target_power_fraction(
               None, y[:P], min(10, P), eig=(model.lam, model.V))),
           "initial_test_loss": float(tr.test_loss[0]),
           "final_train_loss": float(tr.train_loss[-1]),
           "final_test_loss": float(tr.test_loss[-1]),
           "linearized_final_test_loss": float(lin.test_loss[-1]),
           "kernel_regression_test_loss": float(model.kernel_regression(0.0).test_mse),
           "max_rel_dev_test_network_vs_linearized": float(np.max(
               np.abs(tr.test_loss - lin.test_loss) / np.maximum(lin.test_loss, 1e-300)))}
    net = simulate(problem, steps, data=d) if network else None
    if net is not None:
        row["max_rel_dev_network_vs_reduced"] = max_rel_dev(tr, net)
    return tr, lin, net, row


def _scan_table(scan: list[dict[str, Any]]) -> tuple[tuple[str, ...], list]:
    keys = tuple(scan[0])
    return keys, [sequence_of(scan, c) for c in keys]


def fig5(problem: Problem, steps: int, ks=FIG5_KS, k_scan_step: int = 8, method: str = "gd",
         network: bool = True) -> FigureData:
    """Figure 5: labels = eigenvectors of the initial NTK (Gaussian inputs); train/test loss
    for several eigen-indices k.  Exact reduced GD (any labels keep it exact), the numpy
    network, and the lazy theory: the linearised model in closed form and its t -> inf limit
    (ridgeless kernel regression with K0), over a scan of k.

    Parameters
    ----------
    problem : Problem
    steps : int
    ks : sequence of int (or a comma-separated string)
        Eigen-indices in 1..P + test_size whose curves are drawn.
    k_scan_step : int
        Step of the scan of k (0: no scan beyond ``ks``).
    method : str
    network : bool
        Run the numpy network for each k in ``ks`` (finite width only).

    Returns
    -------
    FigureData
        ``fig5_curves.csv``, ``fig5_scan.csv``, ``fig5_labels.npz``.
    """
    if isinstance(k_scan_step, bool) or not isinstance(k_scan_step, (int, np.integer)) \
            or k_scan_step < 0:
        raise ProblemError(f"k_scan_step must be a non-negative integer, got {k_scan_step!r}")
    n = problem.P + problem.test_size
    ks = _check_ks(ks, n, "ks")
    network = bool(network and problem.finite_width)
    base = problem.data()
    lam, V, Kc = eigenvector_labels(problem, base)
    label_residual = max(float(np.max(np.abs(Kc @ V[:, k - 1] - lam[k - 1] * V[:, k - 1])))
                         for k in ks) / max(abs(float(lam[0])), 1e-300)
    runs, rows, cols, t_axis = [], [], {}, None
    for k in ks:
        tr, lin, net, row = _label_run(problem, steps, method, base, lam, V, k, network)
        rows.append(row)
        runs.append({"k": k, "t": tr.t, "train": tr.train_loss, "test": tr.test_loss,
                     "lin_test": lin.test_loss, "network": net})
        cols[f"train_k{k}"], cols[f"test_k{k}"] = tr.train_loss, tr.test_loss
        cols[f"lin_train_k{k}"], cols[f"lin_test_k{k}"] = lin.train_loss, lin.test_loss
        t_axis = tr.t
    scan_ks = sorted(set(range(1, n + 1, k_scan_step)) | set(ks)) if k_scan_step else list(ks)
    done = {r["k"]: r for r in rows}
    scan = [done[k] if k in done else _label_run(problem, steps, method, base, lam, V, k,
                                                 False)[3] for k in scan_ks]
    arrays = {"eigenvalues": lam, "labels": V[:, [k - 1 for k in ks]], "ks": np.array(ks),
              "X": base.X, "X_test": base.X_test}
    if base.W0 is not None:
        arrays["W0"] = base.W0
    scan_plot = {c: sequence_of(scan, c) for c in ("k", "final_test_loss",
                                                   "linearized_final_test_loss",
                                                   "kernel_regression_test_loss",
                                                   "initial_test_loss")}
    return FigureData(
        result={"ks": list(ks), "label_eigen_residual": label_residual, "cells": rows,
                "scan_ks": scan_ks},
        plot={"runs": runs, "scan": scan_plot, "eigenvalues": lam, "problem": problem,
              "method": method, "steps": steps, "network": network},
        tables={"fig5_curves.csv": curves_table(t_axis, cols), "fig5_scan.csv": _scan_table(scan)},
        arrays={"fig5_labels.npz": arrays})
