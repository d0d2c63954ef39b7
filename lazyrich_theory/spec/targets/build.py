"""``make_target``: the Target object of a problem's spec string."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.spec.targets.grammar import (
    MC_SAMPLES, _err, _load_npz,
    _resolve_function, parse_spec, target_stream, _coef_table,
)
from lazyrich_theory.spec.targets.families import HermiteTarget, PaperTarget, QuadraticTarget, Target
from lazyrich_theory.spec.targets.function import FunctionTarget


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
