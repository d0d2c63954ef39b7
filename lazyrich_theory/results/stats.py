"""Typed solver statistics: what a run reports about itself besides its columns.

:class:`SolverStats` is the typed form of the solver keys of ``Trajectory.info`` (written to
``run.json``): ``Trajectory.info`` stays the dict of the file format, ``Trajectory.stats`` reads
it back as a :class:`SolverStats`.  A field that does not apply to a run is None and is left
out of ``info``.  Other ``info`` keys describe the run rather than the solver (``target``,
``summary``, the CLI's ``config``) and stay plain entries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["SolverStats", "StrideStats"]


@dataclass(frozen=True)
class StrideStats:
    """Work of the stride method (``solve(method="gd-fast")``; docs/stride.md).

    Attributes
    ----------
    tol : float
        Its local tolerance.
    n_rhs : float
        Right-hand-side equivalents (products with the data matrix / 2), exact GD steps
        included.
    n_strides, n_rejected : int
        Accepted and rejected strides.
    n_refresh : int
        Reference operators computed (kernel and its fast basis).
    gd_fallback_steps : int
        Steps taken by exact GD inside the run (start, edge of stability, curvature-dominated
        phases, save times of the other parity in two-step mode).
    basis_size : int
        Modes in the last basis.
    two_step_from : int, optional
        The step from which the two-step map ran (near the stability bound), if it did.
    refresh_time : float
        Seconds spent on the reference operators.
    """

    tol: float
    n_rhs: float
    n_strides: int
    n_rejected: int
    n_refresh: int
    gd_fallback_steps: int
    basis_size: int
    two_step_from: int | None = None
    refresh_time: float = 0.0

    def to_info(self) -> dict[str, Any]:
        """The ``info["stride"]`` entry: every field, in field order."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SolverStats:
    """Statistics of one solve, in the key order of ``run.json``.

    Attributes
    ----------
    steps : int
        GD steps asked for (the last save time unless stopped early).
    rank : int
        Columns r of the factor F (D x r).
    representation : str, optional
        The state of an exact GD run: "factor" (F, 4 P D r flops per step) or "sample"
        (F = s F_0 + X^T A in sample space, 2 P^2 r; :mod:`lazyrich_theory.core.sample_space`).
    sgd, batch_size : str and int, optional
        SGD mode ("minibatch" / "online") and samples per step (SGD runs only).
    n_rhs, n_accepted, n_rejected, n_rho, max_stages : int, optional
        The flow integrator's work: right-hand sides, accepted / rejected steps, spectral-radius
        estimates and the largest stage count (method "flow" only).
    integrator : str, optional
        "rkc" or "dopri5" (method "flow" only).
    rtol, atol : float, optional
        The integrator's tolerances (method "flow" only).
    method_requested : str, optional
        The method asked for when a rule chose the one that ran (``"auto"``, or
        ``"gd-fast"`` falling back to exact GD); ``Trajectory.method`` is the one that ran.
    method_reason : str, optional
        Why that method ran (one line).
    stride : StrideStats, optional
        The stride method's work (``"gd-fast"`` runs only).
    stop_tol : float, optional
        The early-stop tolerance (``solve(stop=...)`` only).
    stopped_at : int, optional
        The save time at which the run stopped early (None: it ran to ``steps``).
    wall_time : float, optional
        Seconds spent in ``solve``.
    """

    steps: int | None = None
    rank: int | None = None
    representation: str | None = None
    sgd: str | None = None
    batch_size: int | None = None
    n_rhs: int | None = None
    n_accepted: int | None = None
    n_rejected: int | None = None
    n_rho: int | None = None
    max_stages: int | None = None
    integrator: str | None = None
    rtol: float | None = None
    atol: float | None = None
    method_requested: str | None = None
    method_reason: str | None = None
    stride: StrideStats | None = None
    stop_tol: float | None = None
    stopped_at: int | None = None
    wall_time: float | None = None

    def to_info(self) -> dict[str, Any]:
        """The ``info`` / ``run.json`` keys: every field that is not None, in field order.

        Returns
        -------
        dict
            Field name -> value.
        """
        info = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}
        if self.stride is not None:
            info["stride"] = self.stride.to_info()
        return info

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> "SolverStats":
        """The statistics in ``info`` (other keys, e.g. ``summary``, are ignored).

        Parameters
        ----------
        info : mapping
            A ``Trajectory.info`` or the contents of a ``run.json``.

        Returns
        -------
        SolverStats
            Fields absent from ``info`` are None.
        """
        kw = {f.name: info[f.name] for f in dataclasses.fields(cls) if f.name in info}
        if isinstance(kw.get("stride"), Mapping):
            names = {f.name for f in dataclasses.fields(StrideStats)}
            kw["stride"] = StrideStats(**{k: v for k, v in kw["stride"].items() if k in names})
        return cls(**kw)
