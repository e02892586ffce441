"""LPRM AMSR-E/AMSR2 L3 reader: tiny fixtures written here, and the real GES DISC file."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from data_catalog import schema
from data_catalog.errors import (
    EmptySelectionError,
    FormatError,
    MissingFileError,
    MissingVariableError,
    OutOfRangeError,
    UnitsError,
)
from data_catalog.readers import read_lprm, read_lprm_files

REAL = "lprm/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"


def write_lprm(path: Path, *, units: str = "percent", drop: str | None = None,
               all_fill: bool = False, c_name: str = "soil_moisture_c1") -> Path:
    """A 6 x 4 LPRM-like file: (Longitude, Latitude), latitude north to south."""
    lon = np.array([-1.375, -1.125, -0.875, -0.625, -0.375, -0.125], np.float32)
    lat = np.array([0.875, 0.625, 0.375, 0.125], np.float32)  # north -> south
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("Longitude", lon.size)
        ds.createDimension("Latitude", lat.size)
        ds.createVariable("Longitude", "f4", ("Longitude",))[:] = lon
        ds.createVariable("Latitude", "f4", ("Latitude",))[:] = lat
        sm = np.full((lon.size, lat.size), -32767, np.int16)
        sm[0, 0] = 25   # lon -1.375, lat 0.875 (north-west corner)
        sm[5, 3] = 40   # lon -0.125, lat 0.125 (south-east corner)
        if all_fill:
            sm[:] = -32767
        mask = np.zeros_like(sm)
        mask[1, 1] = 256  # frozen, overpass, no retrieval
        mask[2, 1] = 32   # dense vegetation, overpass, no retrieval
        scan = np.full(sm.shape, 0.0)
        scan[:4, :] = 702030000.0  # overpass over the western 4 columns only
        scan[5, 3] = 702030000.0
        for name in (c_name, "soil_moisture_x"):
            if name == drop:
                continue
            v = ds.createVariable(name, "i2", ("Longitude", "Latitude"), fill_value=-32767)
            v.units = units
            v[:] = sm
        ds.createVariable("mask", "i2", ("Longitude", "Latitude"))[:] = mask
        st = ds.createVariable("scantime", "f8", ("Longitude", "Latitude"), fill_value=0.0)
        st.units = "seconds since 1993-01-01 00:00:00"
        st[:] = scan
    return path


@pytest.fixture
def lprm_file(tmp_path):
    return write_lprm(tmp_path / "LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4")


def test_fixture_canonical_values_and_gaps(lprm_file):
    ds = read_lprm(lprm_file)
    schema.check_canonical(ds)
    assert ds.amsr_sm.dtype == np.float32
    assert list(ds.lat.values) == [0.125, 0.375, 0.625, 0.875]  # flipped to ascending
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2015-04-01")
    assert int(ds.sensor[0]) == schema.SENSOR_AMSR2
    sm = ds.amsr_sm.isel(time=0)
    assert float(sm.sel(lat=0.875, lon=-1.375)) == pytest.approx(0.25)
    assert float(sm.sel(lat=0.125, lon=-0.125)) == pytest.approx(0.40)
    assert int(np.isfinite(sm).sum()) == 2
    gap = ds.gap_mask.isel(time=0)
    assert int(gap.sel(lat=0.875, lon=-1.375)) == schema.OBSERVED
    assert int(gap.sel(lat=0.625, lon=-1.125)) == schema.FROZEN
    assert int(gap.sel(lat=0.625, lon=-0.875)) == schema.DENSE_VEGETATION
    assert int(gap.sel(lat=0.125, lon=-1.375)) == schema.INVALID  # overpass, no retrieval
    assert int(gap.sel(lat=0.875, lon=-0.375)) == schema.NO_OVERPASS  # no scantime
    assert ds.gap_mask.attrs["flag_meanings"].split()[0] == "observed"


def test_fixture_region_band_and_amsre_name(tmp_path):
    path = write_lprm(tmp_path / "LPRM-AMSR_E_L3_D_SOILM3_V002_20100101.nc4",
                      c_name="soil_moisture_c")
    assert read_lprm(path).amsr_sm.attrs["source_variable"] == "soil_moisture_c"
    ds = read_lprm(path, band="x", region=(-1.5, 0.0, -1.0, 1.0))
    assert ds.sizes["lon"] == 2 and ds.sizes["lat"] == 4
    assert int(ds.sensor[0]) == schema.SENSOR_AMSRE
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2010-01-01")
    assert ds.attrs["band"] == "x"


def test_many_files_one_series(tmp_path):
    write_lprm(tmp_path / "LPRM-AMSR2_L3_D_SOILM3_V001_20120703013507.nc4")
    write_lprm(tmp_path / "LPRM-AMSR_E_L3_D_SOILM3_V002_20110930.nc4")
    ds = read_lprm_files(tmp_path)
    schema.check_canonical(ds)
    assert [f"{t:%Y-%m-%d}" for t in pd.DatetimeIndex(ds.time.values)] == [
        "2011-09-30", "2012-07-03"]
    assert list(ds.sensor.values) == [schema.SENSOR_AMSRE, schema.SENSOR_AMSR2]
    one = read_lprm_files(str(tmp_path / "LPRM-*.nc4"), start="2012-01-01")
    assert one.sizes["time"] == 1
    with pytest.raises(OutOfRangeError, match="2011-09-30..2012-07-03"):
        read_lprm_files(tmp_path, start="2015-01-01", end="2015-01-02")
    write_lprm(tmp_path / "LPRM-AMSR2_L3_A_SOILM3_V001_20120703013507.nc4")
    with pytest.raises(FormatError, match="2012-07-03"):
        read_lprm_files(tmp_path)


def test_bad_inputs(tmp_path, lprm_file):
    with pytest.raises(MissingFileError, match="nope.nc4"):
        read_lprm(tmp_path / "nope.nc4")
    junk = tmp_path / "junk.nc4"
    junk.write_text("this is not netCDF")
    with pytest.raises(FormatError, match="junk.nc4"):
        read_lprm(junk)
    cut = tmp_path / "cut.nc4"
    cut.write_bytes(lprm_file.read_bytes()[:600])
    with pytest.raises(FormatError, match="cut.nc4"):
        read_lprm(cut)
    nox = write_lprm(tmp_path / "LPRM-AMSR2_nox_20150401.nc4", drop="soil_moisture_x")
    with pytest.raises(MissingVariableError, match="soil_moisture_x"):
        read_lprm(nox, band="x")
    with pytest.raises(OutOfRangeError, match="band"):
        read_lprm(lprm_file, band="ku")
    odd = write_lprm(tmp_path / "LPRM-AMSR2_odd_20150401.nc4", units="furlongs")
    with pytest.raises(UnitsError, match="furlongs"):
        read_lprm(odd)
    with pytest.raises(OutOfRangeError, match="outside the data"):
        read_lprm(lprm_file, region=(10, 10, 20, 20))
    empty = write_lprm(tmp_path / "LPRM-AMSR2_empty_20150401.nc4", all_fill=True)
    with pytest.raises(EmptySelectionError, match="no valid value"):
        read_lprm(empty)


@pytest.mark.realdata
def test_real_file_matches_raw_netcdf(shared_data):
    path = shared_data / REAL
    land_grid = shared_data / "hawaii/cci_passive_v09.2/grid.nc"
    ds = read_lprm(path, land_grid=land_grid)
    schema.check_canonical(ds)
    assert ds.sizes == {"time": 1, "lat": 720, "lon": 1440}
    assert int(ds.sensor[0]) == schema.SENSOR_AMSR2
    with netCDF4.Dataset(path) as raw:
        lat = raw["Latitude"][:]
        lon = raw["Longitude"][:]
        i, j = int(np.argmin(abs(lat - 42.125))), int(np.argmin(abs(lon - (-93.125))))
        expected = float(raw["soil_moisture_c1"][j, i]) / 100.0  # stored (lon, lat), %
        n_valid = int(raw["soil_moisture_c1"][:].count())
    got = float(ds.amsr_sm.sel(lat=42.125, lon=-93.125).item())
    assert got == pytest.approx(expected)
    gap = ds.gap_mask.values
    assert int((gap == schema.OBSERVED).sum()) == n_valid
    # the land mask turns the open ocean into not_land; a mid-Pacific cell is water
    assert int(ds.gap_mask.sel(lat=0.125, lon=-150.125).item()) == schema.NOT_LAND
    assert bool(ds.land.sel(lat=42.125, lon=-93.125))
