"""Phase diagrams: sweeps over any problem parameters, resumable, local or distributed.

    from lazyrich_theory import Problem
    from lazyrich_theory.experiments.sweep import sweep

    base = Problem(D=100, P=550, N=500, eta0=20.0)
    res = sweep(base, {"alpha": "0.4:5.6:14", "eps": "0.02:0.28:14"}, steps=110_000,
                out="out/fig3e")
    res.mean("paper_grokking_time")          # (14, 14) array, mean over seeds

A sweep is the Cartesian product of its axes (one per varied parameter, in the order given,
then ``seed`` last).  Each point of the product is a *cell*: one run of the reduced dynamics
(:func:`lazyrich_theory.core.solve.solve`) from which :data:`METRICS` are measured.

Axis specifications (strings, or any sequence of values):

    "0.4:5.6:14"        14 values, linearly spaced from 0.4 to 5.6 (ends included)
    "log:0.1:10:9"      9 values, log-spaced from 0.1 to 10
    "100,200,400"       an explicit list (N also takes "inf"; convention A,B; centered true,false)

Storage (``out=DIR``), nothing is ever lost:

    DIR/sweep.json       the sweep's configuration (with the SHA-256 of the data file's
                         contents); a different one in the same DIR is refused
    DIR/sweep.lock       held while a sweep runs: a second sweep on DIR is refused
    DIR/cells/<id>.json  one file per finished cell, written atomically by whoever computed it;
                         <id> hashes everything that determines the cell's result; the file
                         carries its id, its problem and the checksum of its payload
    DIR/computed.log     one line "<id> <pid>" appended each time a cell is computed
    DIR/phase.csv        one tidy row per cell: swept parameters, seed, cell id, status, metrics
    DIR/phase_mean.csv   one row per grid point: mean and standard deviation over seeds
    DIR/phase.nc         the labeled N-D dataset as NetCDF (:meth:`PhaseResult.to_xarray`)
    DIR/phase.npz        the same arrays for numpy alone (see :meth:`PhaseResult.save`), with the
    DIR/phase.json       JSON sidecar naming its dims, coords and variables
    DIR/phase.png        heat map (2-D sweeps) or curves (1-D sweeps)

Running the same sweep again on the same DIR computes only the missing cells; every stored cell
is verified first, and one that is not what its name says is computed again (a
:class:`SweepWarning`).  A corrupt ``sweep.json`` is refused with the way to keep the finished
cells (``recover=True``).  ``res.to_xarray()`` is the result as an ``xarray.Dataset``.

Execution: a local process pool (default, ``workers`` processes; a worker that dies mid-cell
is detected and its cells are resubmitted), any ``concurrent.futures.Executor``
(``executor=``), or a Dask distributed scheduler (``scheduler="tcp://host:8786"`` or a
``distributed.Client``; tasks are submitted with ``retries=``).  Every cell runs BLAS
single-threaded, so results are bit-for-bit the same whichever executor computed them.
Target functions registered with :func:`lazyrich_theory.spec.targets.register` are sent to
the workers with the cells that name them (they must be picklable: module-level functions).

Before anything is built or written, a grid too large for this machine (its cells' estimated
work over a day on its workers, or its memory over what is available) is refused with the
number of cells and the estimate unless ``allow_large=True``, and so are an unwritable ``out``
and a malformed or unreachable scheduler address.

Modules: ``axes`` (swept parameters and their specs), ``cells`` (one cell: id, computation,
metrics, verified file), ``folder`` (the output folder: lock, identity, resume), ``guard`` (the
grid's size against this machine), ``executors`` (where cells run), ``offline`` (the offline
theory's unfitted boundary of an alpha x eps sweep, once per sweep), ``result``
(:class:`PhaseResult` and its files), ``run`` (:func:`sweep` itself).
"""

from lazyrich_theory.errors import SweepError
from lazyrich_theory.experiments.sweep.axes import SWEEPABLE, Axis, parse_axis, parse_vary

# FORMAT and STATUSES are not in __all__ but were attributes of the former single module
from lazyrich_theory.experiments.sweep.cells import (
    FORMAT,  # noqa: F401
    METRICS,
    RESULT_METRICS,
    STATUSES,  # noqa: F401
    SweepWarning,
    cell_id,
    cell_metrics,
    predicted_grokking,
    run_cell,
)
from lazyrich_theory.experiments.sweep.result import PhaseResult, load_phase
from lazyrich_theory.experiments.sweep.run import sweep, sweep_config

__all__ = [
    "Axis", "PhaseResult", "SweepError", "METRICS", "SWEEPABLE", "parse_axis", "parse_vary",
    "sweep", "run_cell", "cell_metrics", "load_phase", "cell_id", "RESULT_METRICS",
    "predicted_grokking", "sweep_config", "SweepWarning",
]
