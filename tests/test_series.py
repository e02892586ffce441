"""The seamless series: model sequence, seam, state carry, kill/resume, CF export."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import schema
from data_catalog.errors import FormatError
from model import series

REPO = Path(__file__).resolve().parents[1]
DATA_VARS = (series.schema.FILLED_SM, series.schema.AMSR_SM, series.SOURCE_FLAG)
# 2011-09-20 .. 2012-07-20: AMSR-E days, the whole gap year, AMSR2 days
START, END = "2011-09-20", "2012-07-20"


def mock_world(path: Path, nlat: int = 12, nlon: int = 12, start: str = START,
               ntime: int = 310, with_error: bool = False) -> Path:
    """A canonical world store across the AMSR-E/AMSR2 seam, AMSR blank in the gap year;
    ``with_error``: with the mock's known ``amsr_sm_error`` (a product's own error)."""
    with warnings.catch_warnings():  # schema's mock uses DatetimeIndex.dayofyear (pandas 3)
        warnings.simplefilter("ignore", getattr(pd.errors, "Pandas4Warning", FutureWarning))
        ds = schema.mock_grid_dataset(ntime=ntime, nlat=nlat, nlon=nlon, start=start,
                                      with_error=with_error)
    gap = xr.DataArray(ds[schema.SENSOR].values == schema.SENSOR_NONE, dims=schema.TIME)
    ds[schema.AMSR_SM] = ds[schema.AMSR_SM].where(~gap)
    if with_error:
        ds[schema.AMSR_SM_ERROR] = ds[schema.AMSR_SM_ERROR].where(~gap)
    ds[schema.GAP_MASK] = ds[schema.GAP_MASK].where(
        ~gap | (ds[schema.GAP_MASK] == schema.NOT_LAND), schema.NO_OVERPASS)
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return path


class ConstantModel:
    """Says which model filled a day: returns its own constant wherever asked."""

    def __init__(self, value: float):
        self.value, self.metadata = value, {"name": f"constant-{value}"}

    def prepare(self, ds: xr.Dataset, n_days: int | None = None):
        import torch

        n = ds.sizes[schema.TIME] if n_days is None else n_days
        return torch.zeros((1, n, 1, ds.sizes[schema.LAT],
                            ds.sizes[schema.LON]))

    def stream(self, x, state=None):
        import torch

        return torch.full((1, *x.shape[1:2], *x.shape[3:]), self.value), state


def nan_models(**_) -> dict:
    return {schema.SENSOR_AMSRE: ConstantModel(np.nan), schema.SENSOR_AMSR2: ConstantModel(0.3)}


def constant_models(**_) -> dict:
    return {schema.SENSOR_AMSRE: ConstantModel(0.1), schema.SENSOR_AMSR2: ConstantModel(0.3)}


#: the kill -9 test's hook: a build of the store named here kills itself (SIGKILL to its
#: process group: the CLI and its Dask workers) when a tile starts after this many are done
KILL_STORE_ENV, KILL_AFTER_ENV = "SERIES_TEST_KILL_STORE", "SERIES_TEST_KILL_AFTER"


class KillingPersistence(series.PersistenceModel):
    """The baseline, killing its build at a known point (see :data:`KILL_STORE_ENV`): one
    worker thread runs the tiles one after the other and marks each done before the next
    starts, so the build dies with exactly ``KILL_AFTER`` tiles done, whatever the load."""

    def stream(self, x, state=None):
        store = os.environ.get(KILL_STORE_ENV)
        if store and len(series.done_tiles(store)) >= int(os.environ[KILL_AFTER_ENV]):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        return super().stream(x, state)


def killing_models(**_) -> dict:
    m = KillingPersistence()
    return {schema.SENSOR_AMSRE: m, schema.SENSOR_AMSR2: m}


def build(world: Path, out: Path, **kw) -> xr.Dataset:
    args = dict(start=START, end=END, models=series.PERSISTENCE_MODELS, tile=6, halo=2,
                time_chunk=100, scheduler="synchronous", progress=False)
    args.update(kw)
    series.build_series(out, str(world), **args)
    return xr.open_zarr(out, consolidated=False).load()


def array_digests(store: Path) -> dict[str, str]:
    """SHA-256 of every chunk file of the data variables, and of the decoded arrays."""
    out = {}
    ds = xr.open_zarr(store, consolidated=False)
    for var in DATA_VARS:
        h = hashlib.sha256()
        for f in sorted((store / var / "c").rglob("*")):
            if f.is_file():
                h.update(f.relative_to(store).as_posix().encode())
                h.update(f.read_bytes())
        out[f"{var}/chunks"] = h.hexdigest()
        out[f"{var}/values"] = hashlib.sha256(ds[var].values.tobytes()).hexdigest()
    return out


@pytest.fixture
def world(tmp_path) -> Path:
    return mock_world(tmp_path / "world.zarr")


# ---------------------------------------------------------------- content
def test_seam_has_no_gap_day_and_flags_follow_the_sensor(world, tmp_path):
    ds = build(world, tmp_path / "series.zarr")
    land = ds[schema.LAND].values
    filled = ds[schema.FILLED_SM].values
    assert not np.isnan(filled[:, land]).any(), "a land pixel-day without a value"
    assert np.isnan(filled[:, ~land]).all()
    sensor = ds[schema.SENSOR].values
    assert {0, 1, 2} <= set(sensor.tolist())  # the period spans the seam
    flag = ds[series.SOURCE_FLAG].values
    gap_days = sensor == schema.SENSOR_NONE
    filled_flags = (series.FILLED, series.FILLED_FROZEN)
    assert np.isin(flag[gap_days][:, land], filled_flags).all()
    amse, ams2 = sensor == schema.SENSOR_AMSRE, sensor == schema.SENSOR_AMSR2
    assert (flag[amse] != series.OBSERVED_AMSR2).all()
    assert (flag[ams2] != series.OBSERVED_AMSR_E).all()
    observed = np.isfinite(ds[schema.AMSR_SM].values)
    assert ((flag == series.OBSERVED_AMSR_E) | (flag == series.OBSERVED_AMSR2))[observed].all()
    # observations are kept as they are
    np.testing.assert_array_equal(filled[observed], ds[schema.AMSR_SM].values[observed])
    # the raw observation is the world's
    w = xr.open_zarr(world, consolidated=False).sel(time=slice(START, END))
    np.testing.assert_array_equal(ds[schema.AMSR_SM].values, w[schema.AMSR_SM].values)
    # fills under frozen ground carry their own flag, other fills the plain one
    frozen = (w[schema.GAP_MASK].values == schema.FROZEN) & ~observed & land
    assert frozen.any(), "the test period should have frozen-ground gaps"
    assert (flag[frozen] == series.FILLED_FROZEN).all()
    assert (flag[~frozen & ~observed & land] == series.FILLED).all()


def test_each_day_is_filled_by_its_sensors_model(world, tmp_path):
    ds = build(world, tmp_path / "s.zarr", models="tests.test_series:constant_models")
    sensor, flag = ds[schema.SENSOR].values, ds[series.SOURCE_FLAG].values
    filled = ds[schema.FILLED_SM].values
    gaps = flag == series.FILLED
    want = {schema.SENSOR_AMSRE: 0.1, schema.SENSOR_NONE: 0.3, schema.SENSOR_AMSR2: 0.3}
    for s, value in want.items():
        sel = gaps & (sensor == s)[:, None, None]
        assert sel.any()
        np.testing.assert_allclose(filled[sel], value, rtol=1e-6)
    # the gap year can be given to the transferred AMSR-E model instead
    ds2 = build(world, tmp_path / "s2.zarr", models="tests.test_series:constant_models",
                gap_model=schema.SENSOR_AMSRE)
    sel = (ds2[series.SOURCE_FLAG].values == series.FILLED) & (sensor == 0)[:, None, None]
    np.testing.assert_allclose(ds2[schema.FILLED_SM].values[sel], 0.1, rtol=1e-6)


def test_a_model_leaving_holes_fails_the_tile(world, tmp_path):
    from data_catalog.errors import DataError

    out = tmp_path / "s.zarr"
    with pytest.raises(DataError, match="without a value"):
        build(world, out, models="tests.test_series:nan_models")
    assert series.done_tiles(out) == set()


def test_state_is_carried_across_time_blocks(world, tmp_path):
    # the persistence stand-in depends on yesterday: resetting the state at a block
    # boundary would change the values after it
    one_block = build(world, tmp_path / "a.zarr", time_chunk=400, warmup_days=0)
    many_blocks = build(world, tmp_path / "b.zarr", time_chunk=37, warmup_days=0)
    xr.testing.assert_equal(one_block[list(DATA_VARS)], many_blocks[list(DATA_VARS)])
    # and the state matters: a build starting later differs on its first gap days
    later = build(world, tmp_path / "c.zarr", start="2011-10-10", warmup_days=0)
    a = one_block[schema.FILLED_SM].sel(time="2011-10-10")
    b = later[schema.FILLED_SM].sel(time="2011-10-10")
    assert not np.allclose(a.values, b.values, equal_nan=True)


def test_store_chunks_and_cf_attributes(world, tmp_path):
    out = tmp_path / "s.zarr"
    ds = build(world, out)
    import zarr

    g = zarr.open_group(out, mode="r")
    assert g[schema.FILLED_SM].chunks == (100, 6, 6)
    assert type(g[schema.FILLED_SM].compressors[-1]).__name__ == "Crc32cCodec"
    assert ds[schema.FILLED_SM].attrs["units"] == "m3 m-3"
    assert ds[series.SOURCE_FLAG].attrs["flag_meanings"].split() == [
        "observed_amsr_e", "observed_amsr2", "filled", "not_land", "filled_frozen_ground"]
    assert list(ds[series.SOURCE_FLAG].attrs["flag_values"]) == [0, 1, 2, 3, 4]
    assert "persistence" in ds.attrs["model_provenance"]
    assert ds.attrs["Conventions"].startswith("CF-")


def test_rerun_with_other_settings_is_refused(world, tmp_path):
    out = tmp_path / "s.zarr"
    build(world, out)
    with pytest.raises(FormatError, match="other settings"):
        build(world, out, halo=3)
    build(world, out, halo=3, overwrite=True)


# ---------------------------------------------------------------- kill and resume
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gapfill.cli", "build-series", *args]


@pytest.mark.slow
def test_killed_build_resumes_to_an_identical_store(tmp_path):
    world = mock_world(tmp_path / "world.zarr", nlat=12, nlon=12, ntime=120)
    end = "2012-01-17"
    common = ["--source", str(world), "--start", START, "--end", end, "--tile", "4",
              "--halo", "1", "--time-chunk", "50", "--model",
              "tests.test_series:killing_models", "--no-progress"]
    out = tmp_path / "killed.zarr"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli(*common, "--out", str(out), "--workers", "1"), cwd=REPO,
                            env={**env, KILL_STORE_ENV: str(out), KILL_AFTER_ENV: "2"},
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.wait(timeout=120) == -signal.SIGKILL  # kill -9, from inside, mid-build
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing of the build may outlive it
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = series.done_tiles(out)
    assert len(done) == 2, done
    stamps = {t: (out / schema.FILLED_SM / "c" / "0" / str(t[0]) / str(t[1])).stat().st_mtime_ns
              for t in done}
    # resumed without Dask: the ledger, not the scheduler, decides what is left to do
    rerun = subprocess.run(_cli(*common, "--out", str(out), "--scheduler", "synchronous"),
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(done)} of 9 tiles already done" in rerun.stderr
    assert len(series.done_tiles(out)) == 9
    for t, stamp in stamps.items():  # tiles done before the kill were not redone
        f = out / schema.FILLED_SM / "c" / "0" / str(t[0]) / str(t[1])
        assert f.stat().st_mtime_ns == stamp
    # reference: an uninterrupted build (in-process, without Dask)
    ref = tmp_path / "reference.zarr"
    series.build_series(ref, str(world), start=START, end=end, tile=4, halo=1, time_chunk=50,
                        models="tests.test_series:killing_models", scheduler="synchronous",
                        progress=False)
    assert array_digests(out) == array_digests(ref)


# ---------------------------------------------------------------- export
def test_export_netcdf_is_cf(world, tmp_path):
    import netCDF4

    store = tmp_path / "s.zarr"
    full = build(world, store)
    nc = tmp_path / "out.nc"
    from gapfill.cli import main

    assert main(["export-netcdf", "--store", str(store), "--region=-99.5,30.5,-98.5,31.5",
                 "--start", "2011-12-01", "--end", "2011-12-31", "--out", str(nc)]) == 0
    with netCDF4.Dataset(nc) as f:
        assert f.Conventions.startswith("CF-1.")
        assert f.dimensions["time"].size == 31
        assert f.dimensions["lat"].size == 4 and f.dimensions["lon"].size == 4
        assert f["lat"].units == "degrees_north" and f["lat"].standard_name == "latitude"
        assert f["lon"].units == "degrees_east" and f["lon"].standard_name == "longitude"
        assert f["time"].units.startswith("days since") and f["time"].calendar == "standard"
        sm = f["filled_sm"]
        assert sm.units == "m3 m-3" and sm.long_name
        assert sm.standard_name == "volume_fraction_of_condensed_water_in_soil"
        assert sm.dimensions == ("time", "lat", "lon")
        assert sm._FillValue == -9999.0
        assert sm.ancillary_variables == "source_flag filled_sm_uncertainty reason_flag"
        reasons = f["reason_flag"]
        assert list(reasons.flag_masks) == [1, 2, 4, 8, 16, 32, 64, 128]
        assert reasons.flag_meanings.split()[5] == "ascat_used"
        sd = f["filled_sm_uncertainty"]
        assert sd.units == "m3 m-3" and sd.dimensions == ("time", "lat", "lon")
        assert sd.standard_name == ("volume_fraction_of_condensed_water_in_soil "
                                    "standard_error")
        assert f.geospatial_lat_min == 30.5 and f.geospatial_lon_max == -98.5
        flag = f["source_flag"]
        assert flag.dtype == np.int8
        assert len(flag.flag_values) == len(flag.flag_meanings.split()) == 5
        assert "_FillValue" not in f["lat"].ncattrs()
    back = xr.open_dataset(nc, engine="netcdf4")
    want = full.sel(time=slice("2011-12-01", "2011-12-31")).isel(lat=slice(2, 6),
                                                                   lon=slice(2, 6))
    np.testing.assert_array_equal(back[schema.FILLED_SM].values, want[schema.FILLED_SM].values)
    np.testing.assert_array_equal(back[series.SOURCE_FLAG].values,
                                  want[series.SOURCE_FLAG].values)
    back.close()


# ---------------------------------------------------------------- the shipped model
def test_shipped_model_fills_the_seam(world, tmp_path):
    from data_catalog import locations

    ckpts = sorted(locations.checkpoint_dir().glob("*.pt"))
    if not ckpts:
        pytest.skip(f"no shipped checkpoint in {locations.checkpoint_dir()}")
    ds = build(world, tmp_path / "s.zarr", models=series.SHIPPED_MODELS,
               start="2011-09-25", end="2011-10-20", halo=4)
    land = ds[schema.LAND].values
    assert not np.isnan(ds[schema.FILLED_SM].values[:, land]).any()
    assert "checkpoints" in ds.attrs["model_provenance"]
    # the error model beside the checkpoints gives every land pixel-day an SD
    from model import errors

    if not errors.path_for().exists():
        pytest.skip(f"no error model at {errors.path_for()}")
    sd = ds[errors.UNCERTAINTY].values
    assert np.isfinite(sd[:, land]).all() and (sd[:, land] > 0).all()
    assert np.isnan(sd[:, ~land]).all()
    assert ds[errors.UNCERTAINTY].attrs["standard_name"].endswith(" standard_error")
    assert errors.UNCERTAINTY in ds[schema.FILLED_SM].attrs["ancillary_variables"].split()
    # filled days carry larger SDs after longer gaps: not one constant
    assert np.unique(sd[:, land]).size > 3


def test_real_wrapper_checkpoints_drive_the_build(world, tmp_path):
    """Untrained GapFiller checkpoints (the real wrapper, loaded by load_models)."""
    torch = pytest.importorskip("torch")
    from model.config import ModelConfig
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    ckdir = tmp_path / "checkpoints"
    torch.manual_seed(0)
    for name in ("amsr2", "amsre"):
        GapFiller(ModelConfig(filters=[4], head_filters=0), NormStats(0.25, 0.08, 50.0, 20.0),
                  {"sensor": name}).save(ckdir / f"{name}.pt")
    ds = build(world, tmp_path / "s.zarr", models=series.SHIPPED_MODELS, checkpoint_dir=ckdir,
               start="2011-09-25", end="2011-10-20", time_chunk=10)
    land = ds[schema.LAND].values
    assert not np.isnan(ds[schema.FILLED_SM].values[:, land]).any()
    prov = ds.attrs["model_provenance"]
    assert "amsr2.pt" in prov and "amsre.pt" in prov
    gap = ds[series.SOURCE_FLAG].values == series.FILLED
    assert ((ds[schema.FILLED_SM].values[gap] >= 0) & (ds[schema.FILLED_SM].values[gap] <= 1)).all()


def test_look_ahead_models_get_their_following_days_across_blocks(world, tmp_path):
    """A model with ``lead_days`` reads days past each time block: the block size must not
    change a single value."""
    torch = pytest.importorskip("torch")
    from model.config import ModelConfig
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    ckdir = tmp_path / "checkpoints"
    torch.manual_seed(0)
    for name in ("amsr2", "amsre"):
        GapFiller(ModelConfig(filters=[4], head_filters=0, lead_days=2),
                  NormStats(0.25, 0.08, 50.0, 20.0), {"sensor": name}).save(ckdir / f"{name}.pt")
    kw = dict(models=series.SHIPPED_MODELS, checkpoint_dir=ckdir, start="2011-09-20",
              end="2011-10-02", warmup_days=0)
    one = build(world, tmp_path / "a.zarr", time_chunk=400, **kw)
    many = build(world, tmp_path / "b.zarr", time_chunk=7, **kw)
    np.testing.assert_allclose(many[schema.FILLED_SM].values, one[schema.FILLED_SM].values,
                               atol=1e-5)
    gap = one[series.SOURCE_FLAG].values == series.FILLED
    assert gap.any()
