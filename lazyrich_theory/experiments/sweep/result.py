"""A sweep's results as a labeled N-D dataset (:class:`PhaseResult`, an ``xarray.Dataset``
with :meth:`PhaseResult.to_xarray`), and its files:

    DIR/phase.csv        one tidy row per cell: swept parameters, seed, cell id, status, metrics
    DIR/phase_mean.csv   one row per grid point: mean and standard deviation over seeds
    DIR/phase.nc         the labeled N-D dataset as NetCDF (``xarray.open_dataset``)
    DIR/phase.npz        the same arrays for numpy alone, with the
    DIR/phase.json       JSON sidecar naming its dims, coords and variables
    DIR/phase.png        heat map (2-D sweeps) or curves (1-D sweeps)

An alpha x eps sweep in the offline theory's domain has one more float variable after the
metrics, ``offline_test_time`` (``sweep.offline``: computed when the result is assembled, not stored in the cells), in
every file; ``PhaseResult.offline`` says how it was computed or why not (phase.json's
``offline_theory``, phase.nc's ``offline_theory`` attribute).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from lazyrich_theory.errors import ProblemError
from lazyrich_theory.experiments.sweep.axes import INT_FIELDS
from lazyrich_theory.experiments.sweep.cells import (
    FORMAT,
    METRICS,
    RESULT_METRICS,
    STATUSES,
)
from lazyrich_theory.experiments.sweep.offline import (
    OFFLINE_DESCRIPTION,
    OFFLINE_VARIABLE,
)
from lazyrich_theory.storage import (
    atomic_write,
    atomic_write_json,
    atomic_write_npz,
    atomic_write_text,
    jsonable,
)

__all__ = ["PhaseResult", "load_phase"]


@dataclass
class PhaseResult:
    """Results of a sweep as a labeled N-D dataset.

    ``dims``: the swept parameters in order, then ``seed``; ``coords[dim]``: its values;
    ``data[name]``: an array of shape ``shape`` for every name in :data:`RESULT_METRICS`
    (float, NaN where a cell has none), then ``offline_test_time`` where the offline theory
    applies (float, inf where not within T), then ``status`` and ``cell_id`` (strings);
    ``offline``: how ``offline_test_time`` was computed, or why not (``reason``).

    Used like an ``xarray.Dataset``: ``res[name]`` is a variable's array (dims in order),
    ``res.coords[dim]`` a dimension's values, ``name in res`` and ``res.data_vars`` list the
    variables; :meth:`to_xarray` gives the real ``xarray.Dataset`` (labelled selection,
    ``.sel(alpha=...)``, ``.mean("seed")``, ``.to_dataframe()``, NetCDF).
    """

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    data: dict[str, np.ndarray]
    config: dict[str, Any]
    out: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    offline: dict[str, Any] = field(default_factory=dict)

    def _floats(self) -> dict[str, str]:
        """The float variables present, in order, with their descriptions."""
        out = {m: METRICS[m] for m in RESULT_METRICS}
        if OFFLINE_VARIABLE in self.data:
            out[OFFLINE_VARIABLE] = OFFLINE_DESCRIPTION
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape, one entry per dimension (seed included)."""
        return tuple(len(self.coords[d]) for d in self.dims)

    def __getitem__(self, name: str) -> np.ndarray:
        """The array of variable ``name`` (a metric, ``status`` or ``cell_id``)."""
        return self.data[name]

    def __contains__(self, name: object) -> bool:
        return name in self.data

    @property
    def data_vars(self) -> tuple[str, ...]:
        """The variables' names: the metrics, then ``status`` and ``cell_id``."""
        return tuple(self.data)

    def to_xarray(self):
        """The results as an ``xarray.Dataset``.

        Returns
        -------
        xarray.Dataset
            Dims: the swept parameters, then ``seed``, each with its values as coordinate
            (integers, floats, booleans or strings as swept).  Data variables: every metric of
            :data:`RESULT_METRICS` (float64, its definition in ``attrs["description"]``),
            ``offline_test_time`` where present, ``status`` and ``cell_id`` (strings).
            ``attrs``: ``sweep_config`` (the sweep's configuration, sweep.json, as a JSON
            string), ``offline_theory`` (:attr:`offline` as a JSON string, when set),
            ``format`` and ``description``.
            NetCDF-safe: ``ds.to_netcdf(path, engine="scipy")``; :meth:`from_xarray` reads it
            back.
        """
        import xarray as xr  # imported on use (start-up time)

        dims = self.dims
        data_vars = {m: (dims, np.asarray(self.data[m], dtype=float), {"description": d})
                     for m, d in self._floats().items() if m in self.data}
        for name, desc in _STRING_VARS.items():
            if name in self.data:
                data_vars[name] = (dims, np.asarray(self.data[name]).astype(str),
                                   {"description": desc})
        coords = {d: (d, _typed_coord(self.coords[d], d)) for d in dims}
        attrs = {"description": "labeled N-D dataset of a lazyrich phase sweep",
                 "format": FORMAT,
                 "sweep_config": json.dumps(jsonable(self.config), sort_keys=True)}
        if self.offline:
            attrs["offline_theory"] = json.dumps(jsonable(self.offline), sort_keys=True)
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    @classmethod
    def from_xarray(cls, ds, out: str | None = None) -> "PhaseResult":
        """The :class:`PhaseResult` of a Dataset made by :meth:`to_xarray` (e.g. read back
        from phase.nc with ``xarray.open_dataset``)."""
        try:
            config = json.loads(ds.attrs["sweep_config"])
            offline = json.loads(ds.attrs.get("offline_theory", "{}"))
            dims = tuple(ds["status"].dims)
        except (KeyError, ValueError) as exc:
            raise ProblemError(f"not a lazyrich phase dataset: {exc}") from None
        coords = {d: _from_coord(np.asarray(ds[d].values), d) for d in dims}
        data: dict[str, np.ndarray] = {}
        for name in ds.data_vars:
            arr = np.asarray(ds[name].transpose(*dims).values)
            if name in _STRING_VARS:
                data[name] = arr.astype(str).astype(_STRING_DTYPES[name])
            else:
                data[name] = arr.astype(float)
        return cls(dims, coords, data, config, out, offline=offline)

    def _seed_axis(self) -> int:
        return self.dims.index("seed")

    def mean(self, name: str) -> np.ndarray:
        """Mean over seeds (over the cells with a value), shape = shape without seed."""
        a = np.asarray(self.data[name], dtype=float)
        with np.errstate(invalid="ignore"):
            valid = ~np.isnan(a)
            n = valid.sum(axis=self._seed_axis())
            s = np.where(valid, a, 0.0).sum(axis=self._seed_axis())
            return np.where(n > 0, s / np.maximum(n, 1), np.nan)

    def std(self, name: str) -> np.ndarray:
        """Standard deviation over seeds (ddof = 0; 0 for a single seed)."""
        a = np.asarray(self.data[name], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanstd(a, axis=self._seed_axis())

    @property
    def grid_dims(self) -> tuple[str, ...]:
        """The swept dimensions other than seed."""
        return tuple(d for d in self.dims if d != "seed")

    @property
    def counts(self) -> dict[str, int]:
        """Number of cells per status (only statuses that occur)."""
        st = self.data["status"].ravel().tolist()
        return {s: st.count(s) for s in STATUSES if st.count(s)}

    # ------------------------------------------------------------------ storage
    def _rows(self):
        for idx in itertools.product(*(range(len(self.coords[d])) for d in self.dims)):
            yield idx

    def save(self, out: str | os.PathLike, plot: bool = True) -> None:
        """Write phase.csv, phase_mean.csv, phase.nc, phase.npz + phase.json and (if
        ``plot``) phase.png.

        phase.nc is :meth:`to_xarray` as NetCDF (xarray's scipy engine).  phase.npz holds one
        array per variable (shape = the dims' lengths, in order) and one ``coord_<dim>`` array
        per dim; phase.json describes dims, coords and variables.
        """
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        self._save_cells_csv(os.path.join(out, "phase.csv"))
        self._save_mean_csv(os.path.join(out, "phase_mean.csv"))
        self._save_dataset(out)
        netcdf = bytes(self.to_xarray().to_netcdf(engine="scipy"))
        atomic_write(os.path.join(out, "phase.nc"), lambda f: f.write(netcdf))
        if plot:
            self.plot(os.path.join(out, "phase.png"))

    def _save_cells_csv(self, path: str) -> None:
        """The tidy CSV: one row per cell."""
        floats = list(self._floats())
        header = list(self.dims) + ["cell_id", "status"] + floats
        cols: list[list] = [[] for _ in header]
        for idx in self._rows():
            for j, d in enumerate(self.dims):
                cols[j].append(_csv_value(self.coords[d][idx[j]]))
            cols[len(self.dims)].append(str(self.data["cell_id"][idx]))
            cols[len(self.dims) + 1].append(str(self.data["status"][idx]))
            for j, m in enumerate(floats):
                cols[len(self.dims) + 2 + j].append(_csv_value(self.data[m][idx]))
        _write_csv(path, header, cols)

    def _save_mean_csv(self, path: str) -> None:
        """Mean and standard deviation over seeds: one row per grid point."""
        gd = self.grid_dims
        gshape = tuple(len(self.coords[d]) for d in gd)
        n_ok = (self.data["status"] == "ok").sum(axis=self._seed_axis())
        floats = list(self._floats())
        means = {m: self.mean(m) for m in floats}
        stds = {m: self.std(m) for m in floats}
        header = list(gd) + ["n_seeds", "n_ok"]
        for m in floats:
            header += [f"{m}_mean", f"{m}_std"]
        cols: list[list] = [[] for _ in header]
        for idx in itertools.product(*(range(n) for n in gshape)):
            row = [_csv_value(self.coords[d][idx[j]]) for j, d in enumerate(gd)]
            row += [str(len(self.coords["seed"])), str(int(n_ok[idx]))]
            for m in floats:
                row += [_csv_value(means[m][idx]), _csv_value(stds[m][idx])]
            for j, v in enumerate(row):
                cols[j].append(v)
        _write_csv(path, header, cols)

    def _save_dataset(self, out: str) -> None:
        """The N-D dataset: phase.npz and its sidecar phase.json."""
        arrays = {f"coord_{d}": _coord_array(self.coords[d]) for d in self.dims}
        floats = self._floats()
        for m in floats:
            arrays[m] = np.asarray(self.data[m], dtype=float)
        arrays["status"] = np.asarray(self.data["status"], dtype="<U8")
        arrays["cell_id"] = np.asarray(self.data["cell_id"], dtype="<U16")
        atomic_write_npz(os.path.join(out, "phase.npz"), arrays)
        sidecar = {
            "format": FORMAT,
            "description": "labeled N-D dataset of a lazyrich phase sweep; arrays in phase.npz",
            "dims": list(self.dims),
            "shape": list(self.shape),
            "coords": {d: {"array": f"coord_{d}",
                           "values": [jsonable(v) for v in self.coords[d]]}
                       for d in self.dims},
            "variables": {**{m: {"dims": list(self.dims), "dtype": "float64",
                                 "description": d} for m, d in floats.items()},
                          **{name: {"dims": list(self.dims), "dtype": "str",
                                    "description": desc} for name, desc in _STRING_VARS.items()}},
            "attrs": jsonable(self.config),
        }
        if self.offline:
            sidecar["offline_theory"] = jsonable(self.offline)
        atomic_write_json(os.path.join(out, "phase.json"), sidecar)

    def plot(self, path: str | os.PathLike | None = None, **kw):
        """Heat map of the phase diagram (plotting_phase.plot_phase); PNG if ``path``."""
        # imported here: matplotlib (about 1 s) is only needed for pictures, and importing it
        # with this module would put it on every `import lazyrich_theory`
        from lazyrich_theory.plotting.phase import plot_phase

        return plot_phase(self, path, **kw)


#: The string variables of a PhaseResult, their descriptions and numpy dtypes.
_STRING_VARS = {"status": "ok | diverged | failed | missing",
                "cell_id": "cells/<cell_id>.json holds the cell"}
_STRING_DTYPES = {"status": "<U8", "cell_id": "<U16"}


def _typed_coord(values: Sequence[Any], dim: str) -> np.ndarray:
    """A coordinate's values as a typed array: bool, str, int64 (integer fields with only
    integers, e.g. seed or D) or float64 (N = inf included)."""
    vals = list(values)
    if all(isinstance(v, (bool, np.bool_)) for v in vals):
        return np.asarray(vals, dtype=bool)
    if all(isinstance(v, (str, np.str_)) for v in vals):
        return np.asarray(vals, dtype=str)
    if all(isinstance(v, (int, np.integer)) for v in vals):
        return np.asarray(vals, dtype=np.int64)
    return np.asarray(vals, dtype=float)


def _csv_value(v: Any) -> str:
    """One CSV field: true/false, strings as they are, integers exactly, floats with full
    precision (repr), non-finite floats as inf, -inf, nan."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)


def _write_csv(path: str, header: Sequence[str], columns: Sequence[Sequence[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in zip(*columns):
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())


def _coord_array(values: np.ndarray) -> np.ndarray:
    vals = list(values)
    if all(isinstance(v, (bool, np.bool_)) for v in vals):
        return np.asarray(vals, dtype=bool)
    if all(isinstance(v, str) for v in vals):
        return np.asarray(vals, dtype="<U8")
    return np.asarray(vals, dtype=float)


def load_phase(out: str | os.PathLike) -> PhaseResult:
    """Read the dataset written by :meth:`PhaseResult.save`: phase.npz + phase.json (every
    folder has them), else phase.nc."""
    out = os.fspath(out)
    jpath, npath = os.path.join(out, "phase.json"), os.path.join(out, "phase.npz")
    if not (os.path.isfile(jpath) and os.path.isfile(npath)):
        if os.path.isfile(os.path.join(out, "phase.nc")):
            import xarray as xr  # imported on use (start-up time)

            with xr.open_dataset(os.path.join(out, "phase.nc"), engine="scipy") as ds:
                return PhaseResult.from_xarray(ds.load(), out)
        raise FileNotFoundError(f"no phase.json / phase.npz in {out}")
    with open(jpath) as f:
        side = json.load(f)
    dims = tuple(side["dims"])
    with np.load(npath, allow_pickle=False) as z:
        coords = {d: _from_coord(z[f"coord_{d}"], d) for d in dims}
        data = {k: z[k] for k in z.files if not k.startswith("coord_")}
    return PhaseResult(dims, coords, data, side.get("attrs", {}), out,
                       offline=side.get("offline_theory", {}))


def _from_coord(a: np.ndarray, dim: str) -> np.ndarray:
    """A stored coordinate back as the sweep's values (integer fields and finite N as int)."""
    if a.dtype.kind in "iu" or (dim in INT_FIELDS and a.dtype.kind == "f"):
        return np.asarray([int(v) for v in a], dtype=object)
    if dim == "N" and a.dtype.kind == "f":
        return np.asarray([int(v) if math.isfinite(v) else float(v) for v in a], dtype=object)
    return np.asarray(a.tolist(), dtype=object)
