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

__all__ = ["SolverStats"]


@dataclass(frozen=True)
class SolverStats:
    """Statistics of one solve, in the key order of ``run.json``.

    Attributes
    ----------
    steps : int
        GD steps asked for (the last save time unless stopped early).
    rank : int
        Columns r of the factor F (D x r).
    sgd, batch_size : str and int, optional
        SGD mode ("minibatch" / "online") and samples per step (SGD runs only).
    n_rhs, n_accepted, n_rejected, n_rho, max_stages : int, optional
        The flow integrator's work: right-hand sides, accepted / rejected steps, spectral-radius
        estimates and the largest stage count (method "flow" only).
    integrator : str, optional
        "rkc" or "dopri5" (method "flow" only).
    rtol, atol : float, optional
        The integrator's tolerances (method "flow" only).
    stop_tol : float, optional
        The early-stop tolerance (``solve(stop=...)`` only).
    stopped_at : int, optional
        The save time at which the run stopped early (None: it ran to ``steps``).
    wall_time : float, optional
        Seconds spent in ``solve``.
    """

    steps: int | None = None
    rank: int | None = None
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
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

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
        return cls(**{f.name: info[f.name] for f in dataclasses.fields(cls) if f.name in info})
