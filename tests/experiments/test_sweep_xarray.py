"""Phase results as an xarray.Dataset (issue 15 §3/§5): PhaseResult.to_xarray, phase.nc
(NetCDF through xarray's scipy engine) with coordinates and attrs, and the Dataset-like access
the notebooks use (res[name], res.coords[dim], res["status"])."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lazyrich_theory import Problem
from lazyrich_theory.experiments.sweep import (
    METRICS,
    RESULT_METRICS,
    PhaseResult,
    load_phase,
    sweep,
)

xr = pytest.importorskip("xarray")

BASE = Problem(D=10, P=30, N=20, alpha=1.0, eps=0.3, eta0=1.0, seed=0, test_size=100)
#: every coordinate type: float, int/inf (N), bool, str, and the int seed
VARY = {"alpha": "0.5,2", "N": "20,inf", "centered": "true,false", "convention": "A,B"}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("xr") / "ph"
    res = sweep(BASE, VARY, 200, seeds=2, workers=1, out=out, progress=False, plot=False)
    return res, out


def test_to_xarray_dims_coords_variables_attrs(swept):
    res, out = swept
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert tuple(ds.dims) == ("alpha", "N", "centered", "convention", "seed")
    assert ds.sizes["seed"] == 2 and ds.sizes["alpha"] == 2
    assert ds["alpha"].values.tolist() == [0.5, 2.0]
    assert ds["N"].values[0] == 20 and math.isinf(ds["N"].values[1])
    assert ds["centered"].dtype == bool and ds["centered"].values.tolist() == [True, False]
    assert ds["convention"].values.tolist() == ["A", "B"]
    assert ds["seed"].dtype.kind == "i" and ds["seed"].values.tolist() == [0, 1]
    assert set(ds.data_vars) == set(RESULT_METRICS) | {"status", "cell_id"}
    for m in RESULT_METRICS:
        assert ds[m].dims == tuple(ds.dims)
        assert ds[m].attrs["description"] == METRICS[m]
        assert np.array_equal(ds[m].values, res[m], equal_nan=True)
    assert (ds["status"].values == res["status"]).all()
    assert json.loads(ds.attrs["sweep_config"]) == json.loads((out / "sweep.json").read_text())
    # labelled use, as researchers do it
    sel = ds["final_test_loss"].sel(alpha=2.0, centered=True, convention="A").mean("seed")
    assert sel.dims == ("N",)
    assert ds.to_dataframe().shape[0] == int(np.prod(res.shape))


def test_netcdf_round_trip_with_coords_and_attrs(swept, tmp_path):
    res, out = swept
    assert (out / "phase.nc").is_file()
    with xr.open_dataset(out / "phase.nc", engine="scipy") as disk:
        ds = disk.load()
    mem = res.to_xarray()
    for d in mem.dims:
        assert ds[d].values.tolist() == mem[d].values.tolist(), d
    assert ds["centered"].dtype == bool
    for m in RESULT_METRICS:
        assert np.array_equal(ds[m].values, mem[m].values, equal_nan=True), m
        assert ds[m].attrs["description"] == METRICS[m]
    assert ds["status"].values.astype(str).tolist() == mem["status"].values.tolist()
    assert ds["cell_id"].values.astype(str).tolist() == mem["cell_id"].values.tolist()
    assert ds.attrs["sweep_config"] == mem.attrs["sweep_config"]
    # back to a PhaseResult, and through a user's own to_netcdf
    back = PhaseResult.from_xarray(ds)
    assert back.dims == res.dims and back.config == res.config
    for d in res.dims:
        assert list(back.coords[d]) == list(res.coords[d]), d
    for name in RESULT_METRICS:
        assert np.array_equal(back[name], res[name], equal_nan=True)
    assert (back["status"] == res["status"]).all() and (back["cell_id"] == res["cell_id"]).all()
    mem.to_netcdf(tmp_path / "mine.nc", engine="scipy")
    with xr.open_dataset(tmp_path / "mine.nc", engine="scipy") as again:
        assert again.attrs["sweep_config"] == mem.attrs["sweep_config"]


def test_files_kept_and_nc_alone_is_readable(swept, tmp_path):
    res, out = swept
    for f in ("phase.csv", "phase_mean.csv", "phase.npz", "phase.json", "phase.nc"):
        assert (out / f).is_file(), f
    npz = load_phase(out)                    # folders keep reading from phase.npz + json
    only_nc = tmp_path / "nc"
    only_nc.mkdir()
    (only_nc / "phase.nc").write_bytes((out / "phase.nc").read_bytes())
    nc = load_phase(only_nc)
    for name in RESULT_METRICS:
        assert np.array_equal(npz[name], nc[name], equal_nan=True)
    assert [list(npz.coords[d]) for d in npz.dims] == [list(nc.coords[d]) for d in nc.dims]


def test_dataset_like_access_of_the_notebooks(swept):
    res, _ = swept
    assert "paper_grokking_time" in res and "nope" not in res
    assert res.data_vars[-2:] == ("status", "cell_id")
    assert np.asarray(res["train_time"], dtype=float).shape == res.shape
    assert np.asarray(res.coords["alpha"], dtype=float).tolist() == [0.5, 2.0]
    status, count = np.unique(np.asarray(res["status"]).astype(str), return_counts=True)
    assert int(count.sum()) == int(np.prod(res.shape)) and set(status) <= {"ok", "diverged"}
