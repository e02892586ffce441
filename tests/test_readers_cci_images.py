"""ESA CCI SM / C3S daily image reader: fixtures written here, and the real C3S days."""

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
)
from data_catalog.readers import read_cci_image, read_cci_images
from data_catalog.readers._netcdf import flag_bits

FLAG_VALUES = np.array([0, 1, 2, 3, 4, 8, 127], np.int8)
FLAG_MEANINGS = ("no_data_inconsistency_detected snow_coverage_or_temperature_below_zero "
                 "dense_vegetation combination_of_flag_values_1_and_2 "
                 "others_no_convergence_in_the_model_thus_no_valid_sm_estimates "
                 "soil_moisture_value_exceeds_physical_boundary NaN")
LAT = np.array([0.875, 0.625, 0.375, 0.125], np.float32)  # north -> south as in the files
LON = np.array([10.125, 10.375, 10.625, 10.875, 11.125, 11.375], np.float32)


def write_image(path: Path, day: str = "2017-07-01", *, product: str = "PASSIVE",
                units: str = "m3 m-3", drop: str | None = None,
                flag_fill_attr: bool = True) -> Path:
    """A 4 x 6 CCI-like image with one pixel of every kind (row 0 is the north)."""
    sm = np.full((1, 4, 6), -9999.0, np.float32)
    flag = np.full((1, 4, 6), 127, np.int8)
    sensor = np.zeros((1, 4, 6), np.int16)
    sm[0, 0, 0], flag[0, 0, 0], sensor[0, 0, 0] = 0.30, 0, 32      # AMSR2 observation
    sm[0, 0, 1], flag[0, 0, 1], sensor[0, 0, 1] = 0.20, 0, 16      # WindSat only
    sm[0, 1, 0], flag[0, 1, 0], sensor[0, 1, 0] = 0.25, 0, 8 | 256  # AMSR-E + ASCAT-A
    flag[0, 1, 1] = 1        # frozen
    flag[0, 1, 2] = 2        # dense vegetation
    flag[0, 1, 3] = 3        # frozen + dense vegetation -> frozen wins
    flag[0, 2, 0] = 4        # others -> invalid
    flag[0, 2, 1] = 12       # 4 + 8: an unlisted combination -> invalid
    flag[0, 2, 2] = 0        # no gap bit but no value -> no overpass
    sm[0, 2, 3], flag[0, 2, 3], sensor[0, 2, 3] = 0.35, 1, 32  # a value flagged frozen
    if product == "ACTIVE":
        sm[sm > -9999] *= 100
    with netCDF4.Dataset(path, "w") as ds:
        ds.title = f"C3S Surface Soil Moisture merged {product} Product"
        ds.createDimension("time", 1)
        ds.createDimension("lat", 4)
        ds.createDimension("lon", 6)
        ds.createVariable("lat", "f4", ("lat",))[:] = LAT
        ds.createVariable("lon", "f4", ("lon",))[:] = LON
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 1970-01-01 00:00:00 UTC"
        t[:] = (pd.Timestamp(day) - pd.Timestamp("1970-01-01")).days
        if drop != "sm":
            v = ds.createVariable("sm", "f4", ("time", "lat", "lon"), fill_value=-9999.0)
            v.units = units
            v[:] = sm
        f = ds.createVariable("flag", "i1", ("time", "lat", "lon"),
                              fill_value=127 if flag_fill_attr else False)
        f.flag_values = FLAG_VALUES
        f.flag_meanings = FLAG_MEANINGS
        f[:] = flag
        s = ds.createVariable("sensor", "i2", ("time", "lat", "lon"), fill_value=0)
        s.flag_values = np.array([0, 8, 16, 32, 256], np.int16)
        s.flag_meanings = "NaN AMSRE WindSat AMSR2 ASCATA"
        s[:] = sensor
    return path


def name(day: str, product: str = "PASSIVE") -> str:
    kind = "SSMS" if product == "ACTIVE" else "SSMV"
    return f"C3S-SOILMOISTURE-L3S-{kind}-{product}-DAILY-{day.replace('-', '')}000000-ICDR.nc"


def write_land_grid(path: Path) -> Path:
    """A CCI-style grid.nc: every point of the fixture, the easternmost column water."""
    lat, lon = np.meshgrid(np.sort(LAT).astype(np.float64), LON.astype(np.float64),
                           indexing="ij")
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("gp", lat.size)
        ds.createVariable("gpi", "i4", ("gp",))[:] = np.arange(lat.size)
        ds.createVariable("lat", "f8", ("gp",))[:] = lat.ravel()
        ds.createVariable("lon", "f8", ("gp",))[:] = lon.ravel()
        ds.createVariable("cell", "i4", ("gp",))[:] = np.full(lat.size, 7)
        land = (lon < 11.3).astype(np.int8)
        ds.createVariable("subset_flag", "i1", ("gp",))[:] = land.ravel()
    return path


def test_flag_bits_both_conventions():
    assert flag_bits(FLAG_VALUES, FLAG_MEANINGS) == {
        1: "snow_coverage_or_temperature_below_zero", 2: "dense_vegetation",
        4: "others_no_convergence_in_the_model_thus_no_valid_sm_estimates",
        8: "soil_moisture_value_exceeds_physical_boundary"}
    positional = flag_bits([1, 2, 3, 4], "['snow', 'dense_vegetation', 'others', 'rfi']")
    assert positional == {1: "snow", 2: "dense_vegetation", 4: "others", 8: "rfi"}


def test_fixture_passive_values_flags_sensors(tmp_path):
    path = write_image(tmp_path / name("2017-07-01"))
    ds = read_cci_image(path, land_grid=write_land_grid(tmp_path / "grid.nc"))
    schema.check_canonical(ds)
    assert list(ds.data_vars)[:2] == ["amsr_sm", "gap_mask"]
    assert ds.amsr_sm.attrs["units"] == "m3 m-3"
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2017-07-01")
    assert int(ds.sensor[0]) == schema.SENSOR_AMSR2
    sm, gap = ds.amsr_sm[0], ds.gap_mask[0]
    assert float(sm.sel(lat=0.875, lon=10.125)) == pytest.approx(0.30)
    assert float(sm.sel(lat=0.625, lon=10.125)) == pytest.approx(0.25)
    expected = {(0.875, 10.125): schema.OBSERVED, (0.625, 10.375): schema.FROZEN,
                (0.625, 10.625): schema.DENSE_VEGETATION, (0.625, 10.875): schema.FROZEN,
                (0.375, 10.125): schema.INVALID, (0.375, 10.375): schema.INVALID,
                (0.375, 10.625): schema.NO_OVERPASS, (0.125, 10.125): schema.NO_OVERPASS,
                (0.125, 11.375): schema.NOT_LAND, (0.375, 10.875): schema.FROZEN}
    for (la, lo), cat in expected.items():
        assert int(gap.sel(lat=la, lon=lo)) == cat, (la, lo)
        assert np.isnan(float(sm.sel(lat=la, lon=lo))) == (cat != schema.OBSERVED), (la, lo)
    assert int(ds.sensor_bits[0].sel(lat=0.625, lon=10.125)) == 8 | 256


def test_fill_code_named_nan_without_fillvalue(tmp_path):
    """127 listed as "NaN" in flag_meanings is no data, not seven gap bits at once."""
    path = write_image(tmp_path / name("2017-07-01"), flag_fill_attr=False)
    gap = read_cci_image(path).gap_mask[0]
    assert int(gap.sel(lat=0.125, lon=10.125)) == schema.NO_OVERPASS
    assert int(gap.sel(lat=0.625, lon=10.375)) == schema.FROZEN


def test_fixture_amsr_only_and_active(tmp_path):
    path = write_image(tmp_path / name("2017-07-01"))
    ds = read_cci_image(path, sensors=("AMSR-E", "AMSR2"))
    sm, gap = ds.amsr_sm[0], ds.gap_mask[0]
    assert np.isnan(float(sm.sel(lat=0.875, lon=10.375)))  # WindSat-only pixel dropped
    assert int(gap.sel(lat=0.875, lon=10.375)) == schema.NO_OVERPASS
    assert int(np.isfinite(sm).sum()) == 2
    act = read_cci_image(write_image(tmp_path / name("2017-07-01", "ACTIVE"),
                                     product="ACTIVE", units="percent"))
    assert "ascat_sm" in act and act.ascat_sm.attrs["units"] == "percent of saturation"
    assert float(act.ascat_sm[0].sel(lat=0.875, lon=10.125)) == pytest.approx(30.0)


def test_fixture_many_days(tmp_path):
    for day in ("2017-07-03", "2017-07-01", "2017-07-02"):
        write_image(tmp_path / name(day), day)
    ds = read_cci_images(str(tmp_path / "C3S-*PASSIVE*.nc"))
    assert list(pd.DatetimeIndex(ds.time.values).day) == [1, 2, 3]
    schema.check_canonical(ds)
    assert ds.amsr_sm.shape == (3, 4, 6)
    sub = read_cci_images(tmp_path, start="2017-07-02", end="2017-07-02")
    assert sub.sizes["time"] == 1
    with pytest.raises(OutOfRangeError, match="2017-07-01..2017-07-03"):
        read_cci_images(tmp_path, start="2018-01-01", end="2018-01-31")


def test_bad_inputs(tmp_path):
    with pytest.raises(MissingFileError):
        read_cci_image(tmp_path / name("2017-07-01"))
    with pytest.raises(MissingFileError, match="no file matches"):
        read_cci_images(str(tmp_path / "*.nc"))
    bad = tmp_path / name("2017-07-01")
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then nothing
    with pytest.raises(FormatError):
        read_cci_image(bad)
    nosm = write_image(tmp_path / name("2017-07-02"), "2017-07-02", drop="sm")
    with pytest.raises(MissingVariableError, match="'sm'"):
        read_cci_image(nosm)
    ok = write_image(tmp_path / name("2017-07-03"), "2017-07-03")
    with pytest.raises(OutOfRangeError, match="outside the data"):
        read_cci_image(ok, region=(-10, -10, -5, -5))
    with pytest.raises(EmptySelectionError):
        read_cci_image(ok, region=(11.0, 0.0, 11.5, 1.0))  # only gaps there
    with pytest.raises(OutOfRangeError, match="unknown sensor"):
        read_cci_image(ok, sensors=("SMAP-X",))


@pytest.mark.realdata
def test_real_c3s_days_match_raw(shared_data):
    folder = shared_data / "images/c3s_20170701"
    path = next(folder.glob("*PASSIVE*.nc"))
    ds = read_cci_image(path)
    schema.check_canonical(ds)
    assert ds.sizes == {"time": 1, "lat": 720, "lon": 1440}
    assert int(ds.sensor[0]) == schema.SENSOR_AMSR2
    with netCDF4.Dataset(path) as raw:
        raw.set_auto_mask(False)
        lat, lon = raw["lat"][:], raw["lon"][:]
        sm = raw["sm"][0]
        flag = raw["flag"][0]
        valid = sm != -9999
        i, j = np.argwhere(valid)[len(np.argwhere(valid)) // 2]
        expected = float(sm[i, j])
        n_dense = int((((flag & 2) != 0) & (flag != 127) & ((flag & 1) == 0)).sum())
    got = float(ds.amsr_sm[0].sel(lat=float(lat[i]), lon=float(lon[j])))
    assert got == pytest.approx(expected)
    assert int((ds.gap_mask == schema.OBSERVED).sum()) == int(valid.sum())
    assert int((ds.gap_mask == schema.DENSE_VEGETATION).sum()) == n_dense

    act = read_cci_images(shared_data / "images/c3s_2014*/*ACTIVE*.nc")
    assert act.ascat_sm.attrs["units"] == "percent of saturation"
    assert float(act.ascat_sm.max()) <= 100.0
    comb = read_cci_images(str(shared_data / "images/*/*COMBINED*.nc"),
                           sensors=("AMSRE", "AMSR2"), region=(-100, 30, -84, 46))
    assert list(pd.DatetimeIndex(comb.time.values).year) == [2014, 2017]
    assert (np.bitwise_and(comb.sensor_bits.values[np.isfinite(comb.combined_sm.values)],
                           8 | 32) != 0).all()


def test_fixture_passive_uncertainty_becomes_amsr_sm_error(tmp_path):
    path = write_image(tmp_path / name("2017-07-01"))
    assert schema.AMSR_SM_ERROR not in read_cci_image(path)
    with netCDF4.Dataset(path, "a") as ds:
        u = ds.createVariable("sm_uncertainty", "f4", ("time", "lat", "lon"),
                              fill_value=-9999.0)
        u.units = "m3 m-3"
        u[:] = np.full((1, 4, 6), 0.04, np.float32)
    ds = read_cci_image(path, sensors=("AMSRE", "AMSR2"))
    schema.check_canonical(ds)
    err = ds[schema.AMSR_SM_ERROR].values[0]
    observed = np.isfinite(ds.amsr_sm.values[0])
    assert observed.sum() == 2  # the AMSR2 and the AMSR-E pixels
    np.testing.assert_allclose(err[observed], 0.04)
    assert np.isnan(err[~observed]).all()  # flagged, WindSat-only and empty pixels: none
    assert ds[schema.AMSR_SM_ERROR].attrs["source_variable"] == "sm_uncertainty"


@pytest.mark.realdata
def test_real_c3s_passive_uncertainty_is_the_files(shared_data):
    path = next((shared_data / "images/c3s_20170701").glob("*PASSIVE*.nc"))
    ds = read_cci_image(path, region=(-125, 25, -65, 50), sensors=("AMSRE", "AMSR2"))
    err, sm = ds[schema.AMSR_SM_ERROR].values[0], ds.amsr_sm.values[0]
    have = np.isfinite(err)
    assert np.isnan(err[~np.isfinite(sm)]).all() and have.sum() > 0.99 * np.isfinite(sm).sum()
    assert 0.0 < err[have].min() and err[have].max() <= 1.0  # the file's valid_range
    assert 0.02 <= float(np.median(err[have])) <= 0.1
    with netCDF4.Dataset(path) as raw:
        raw.set_auto_mask(False)
        lat, lon, u = raw["lat"][:], raw["lon"][:], raw["sm_uncertainty"][0]
    for i, j in np.argwhere(have)[::101]:
        la, lo = float(ds.lat[i]), float(ds.lon[j])
        r, c = int(np.argmin(abs(lat - la))), int(np.argmin(abs(lon - lo)))
        assert float(err[i, j]) == u[r, c]
