"""``gapfill assemble`` on the real kits in ../shared/data (skipped when absent): the values
of the assembled worlds at chosen points equal those read straight from the files."""

from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest

from data_catalog import schema
from data_catalog.assemble import assemble, open_assembled
from data_catalog.assemble.hsaf import RADIUS_KM
from data_catalog.readers import read_cell_series
from data_catalog.readers._netcdf import haversine_km

pytestmark = pytest.mark.realdata

LPRM = "lprm/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"
C3S = "images/c3s_20170701/C3S-SOILMOISTURE-L3S-{}-DAILY-20170701000000-ICDR-v201706.0.0.nc"


@pytest.fixture
def kits(shared_data, monkeypatch):
    monkeypatch.setenv("GAPFILL_DATA_ROOT", str(shared_data))
    return shared_data


def raw_grid(path, name: str, lat_name: str, lon_name: str):
    """A variable as (lat, lon) with its coordinates, straight from the file (masked)."""
    with netCDF4.Dataset(path) as ds:
        v = ds[name][:]
        lat, lon = ds[lat_name][:].data, ds[lon_name][:].data
        if ds[name].dimensions[0] == "Longitude":
            v = v.T
        elif v.ndim == 3:
            v = v[0]
    return v, lat, lon


def sampled_cells(world, lat: np.ndarray, lon: np.ndarray, step: int):
    """Every ``step``-th cell of the world as ``(lat, lon, i, j)``, with the indices of the
    file's nearest grid point (``lat``, ``lon``: the file's coordinates)."""
    for la in world.lat.values[::step]:
        for lo in world.lon.values[::step]:
            yield la, lo, int(np.abs(lat - la).argmin()), int(np.abs(lon - lo).argmin())


def test_lprm_day_values_equal_the_file_and_fallbacks_are_rfi(kits, tmp_path):
    out = tmp_path / "lprm.zarr"
    assemble(["lprm_amsr2"], "c3s_active_images", (-125, 30, -110, 45), "2015-04-01",
             "2015-04-01", out, progress=False)
    got = open_assembled(out).isel(time=0).load()
    c1, lat, lon = raw_grid(kits / LPRM, "soil_moisture_c1", "Latitude", "Longitude")
    freq, _, _ = raw_grid(kits / LPRM, "frequency_map", "Latitude", "Longitude")
    checked = {"observed": 0, "rfi": 0}
    for la, lo, i, j in sampled_cells(got, lat, lon, 3):
        gap = int(got.gap_mask.sel(lat=la, lon=lo))
        value = float(got.amsr_sm.sel(lat=la, lon=lo))
        if gap == schema.OBSERVED:
            assert value == np.float32(float(c1[i, j]) / 100.0)  # exactly the file's
            checked["observed"] += 1
        else:
            assert np.isnan(value)
        if not np.ma.is_masked(freq[i, j]) and freq[i, j] > 6.95 \
                and bool(got.land.sel(lat=la, lon=lo)):
            assert gap in (schema.RFI, schema.FROZEN), (la, lo, gap)
            assert not np.ma.is_masked(c1[i, j]) or gap == schema.RFI
            checked["rfi"] += gap == schema.RFI
    assert checked["observed"] > 50 and checked["rfi"] > 5, checked
    assert int(got.sensor) == schema.SENSOR_AMSR2


def test_c3s_images_values_equal_the_files(kits, tmp_path):
    out = tmp_path / "c3s.zarr"
    assemble(["c3s_passive_images"], "c3s_active_images", (-10, 35, 30, 60), "2017-06-30",
             "2017-07-01", out, progress=False)
    world = open_assembled(out).load()
    assert set(np.unique(world.gap_mask.isel(time=0)).tolist()) <= {schema.NO_OVERPASS,
                                                                     schema.NOT_LAND}
    got = world.sel(time="2017-07-01")
    passive, lat, lon = raw_grid(kits / C3S.format("SSMV-PASSIVE"), "sm", "lat", "lon")
    active, _, _ = raw_grid(kits / C3S.format("SSMS-ACTIVE"), "sm", "lat", "lon")
    n = {"amsr": 0, "ascat": 0}
    for la, lo, i, j in sampled_cells(got, lat, lon, 4):
        land = bool(got.land.sel(lat=la, lon=lo))
        a = float(got.amsr_sm.sel(lat=la, lon=lo))
        s = float(got.ascat_sm.sel(lat=la, lon=lo))
        if land and not np.ma.is_masked(passive[i, j]):
            assert a == np.float32(passive[i, j])  # PASSIVE 2017-07-01: AMSR2 only
            n["amsr"] += 1
        else:
            assert np.isnan(a)
        if land and not np.ma.is_masked(active[i, j]):
            assert s == np.float32(active[i, j])
            n["ascat"] += 1
        else:
            assert np.isnan(s)
    assert n["amsr"] > 100 and n["ascat"] > 100, n
    assert list(world.sensor.values) == [schema.SENSOR_AMSR2] * 2


def usable_daily_means(frame: pd.DataFrame) -> pd.Series:
    """H119 daily means (UTC) of the observations its flags allow, computed here from the
    point reader's columns: ssf 0/1, no proc_flag, no conf_flag bits 1/8/16, sm 0..100."""
    ok = (frame["ssf"].isin([0, 1]) & (frame["proc_flag"] == 0)
          & ((frame["conf_flag"].astype(int) & (1 | 8 | 16)) == 0)
          & frame["sm"].between(0, 100))
    sm = frame.loc[ok, "sm"].astype(float)
    return sm.groupby(sm.index.tz_convert("UTC").tz_localize(None).normalize()).mean()


def test_hawaii_h119_cell_assembles_around_the_stations(kits, tmp_path):
    out = tmp_path / "hawaii.zarr"
    start, end = "2017-06-20", "2017-07-05"
    summary = assemble(["c3s_passive_images"], "hawaii_ascat_h119",
                       (-156.1, 18.9, -154.8, 20.3), start, end, out, progress=False)
    assert summary["ascat_cells"] == 1
    world = open_assembled(out).load()
    stations = pd.read_csv(kits / "hawaii/ismn/ismn_station_list.csv")
    folder = kits / "hawaii/ascat_h119/data"
    grid = kits / "hawaii/ascat_h119/grid/TUW_WARP5_grid_info_2_3.nc"
    compared = 0
    for _, st in stations.drop_duplicates("Station name").iterrows():
        cell = world.sel(lat=st["Latitude [deg]"], lon=st["Longitude [deg]"], method="nearest")
        clat, clon = float(cell.lat), float(cell.lon)
        if not bool(cell.land):
            continue
        try:
            frame = read_cell_series(folder, clat, clon, grid=grid, max_dist_km=RADIUS_KM)
        except Exception:  # no grid point within the radius: the world leaves it missing
            assert np.isnan(cell.ascat_sm.values).all()
            continue
        assert haversine_km(clat, clon, frame.attrs["lat"], frame.attrs["lon"]) <= RADIUS_KM
        want = usable_daily_means(frame).reindex(pd.date_range(start, end))
        got = cell.ascat_sm.to_series()
        np.testing.assert_array_equal(np.isfinite(got.values), np.isfinite(want.values))
        np.testing.assert_allclose(got.values, want.values.astype(np.float32), rtol=0,
                                   atol=1e-4)
        compared += int(np.isfinite(want.values).sum())
    assert compared > 20, compared


def test_lprm_world_carries_the_files_own_error(kits, tmp_path):
    """``amsr_sm_error`` of the assembled LPRM day is the file's ``soil_moisture_c1_error``
    (packed volumetric percent / 100) on observed cells, NaN elsewhere."""
    out = tmp_path / "lprm.zarr"
    summary = assemble(["lprm_amsr2"], "c3s_active_images", (-104, 30, -88, 46),
                       "2015-04-01", "2015-04-01", out, progress=False)
    assert summary["amsr_sm_error"] and 0.5 < summary["error_fraction"] <= 1.0
    got = open_assembled(out).isel(time=0).load()
    with netCDF4.Dataset(kits / LPRM) as ds:
        v = ds["soil_moisture_c1_error"]
        v.set_auto_maskandscale(False)
        packed = np.ma.masked_equal(v[:].T, v._FillValue)
        lat, lon = ds["Latitude"][:].data, ds["Longitude"][:].data
    n = 0
    for la, lo, i, j in sampled_cells(got, lat, lon, 2):
        err = float(got.amsr_sm_error.sel(lat=la, lon=lo))
        if np.isnan(float(got.amsr_sm.sel(lat=la, lon=lo))):
            assert np.isnan(err)
        elif not np.ma.is_masked(packed[i, j]):
            assert err == np.float32(float(packed[i, j]) / 100.0)
            n += 1
    assert n > 50, n
