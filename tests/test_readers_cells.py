"""Time-series cell files: orthogonal CCI/C3S and ragged H SAF, fixtures and real files."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from data_catalog.errors import (
    EmptySelectionError,
    FormatError,
    MissingFileError,
    OutOfRangeError,
    UnitsError,
)
from data_catalog.readers import grid_points_in_bbox, read_cell_series

MJD0 = pd.Timestamp("1858-11-17")


def write_grid(path: Path) -> Path:
    """Eight 0.25 degree points: cell 42 (lon 10.x) and cell 43 (lon 15.x)."""
    lat = np.array([45.125, 45.125, 45.375, 45.375, 45.125, 45.125, 45.375, 45.375])
    lon = np.array([10.125, 10.375, 10.125, 10.375, 15.125, 15.375, 15.125, 15.375])
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("gp", lat.size)
        ds.createVariable("gpi", "i4", ("gp",))[:] = np.arange(100, 108)
        ds.createVariable("lat", "f8", ("gp",))[:] = lat
        ds.createVariable("lon", "f8", ("gp",))[:] = lon
        ds.createVariable("cell", "i4", ("gp",))[:] = [42] * 4 + [43] * 4
        ds.createVariable("subset_flag", "i1", ("gp",))[:] = [1, 1, 1, 0, 1, 1, 1, 1]
    return path


def write_ortho_cell(path: Path, *, units: str | None = None) -> Path:
    """Cell 42: 4 locations x 5 days, sm with -9999 and no _FillValue (as CCI v09.2)."""
    days = pd.date_range("2017-01-01", periods=5)
    sm = np.full((4, 5), -9999.0, np.float32)
    sm[1] = [0.11, 0.12, -9999.0, 0.14, 0.15]  # gpi 101 at (45.125, 10.375)
    sm[0] = [0.21, 0.22, 0.23, 0.24, 0.25]
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("locations", 4)
        ds.createDimension("time", None)
        ds.createVariable("lat", "f4", ("locations",))[:] = [45.125, 45.125, 45.375, 45.375]
        ds.createVariable("lon", "f4", ("locations",))[:] = [10.125, 10.375, 10.125, 10.375]
        ds.createVariable("location_id", "i8", ("locations",))[:] = [100, 101, 102, 103]
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "days since 1858-11-17 00:00:00"
        t[:] = [(d - MJD0).days for d in days]
        v = ds.createVariable("sm", "f4", ("locations", "time"))
        if units:
            v.units = units
        v[:] = sm
        f = ds.createVariable("flag", "i2", ("locations", "time"))
        f[:] = np.where(sm == -9999.0, 4, 0).astype(np.int16)
        s = ds.createVariable("sensor", "i4", ("locations", "time"))
        s[:] = np.where(sm == -9999.0, 0, 32).astype(np.int32)
    return path


def write_ortho_folder(folder: Path, *, units: str | None = None) -> Path:
    """A CCI-style cell folder: ``grid.nc`` and cell ``0042.nc``."""
    folder.mkdir(parents=True)
    write_grid(folder / "grid.nc")
    write_ortho_cell(folder / "0042.nc", units=units)
    return folder


@pytest.fixture
def ortho(tmp_path):
    return write_ortho_folder(tmp_path / "cci")


def write_ragged(folder: Path) -> Path:
    """H SAF style: data/0042.nc (ragged, 2 locations) + grid/TUW_WARP5_grid_info.nc."""
    (folder / "data").mkdir(parents=True)
    (folder / "grid").mkdir()
    with netCDF4.Dataset(folder / "grid" / "TUW_WARP5_grid_info_2_3.nc", "w") as ds:
        ds.createDimension("locations", 3)
        ds.createVariable("lat", "f4", ("locations",))[:] = [45.1, 45.2, 48.0]
        ds.createVariable("lon", "f4", ("locations",))[:] = [10.1, 10.3, 12.0]
        ds.createVariable("gpi", "i4", ("locations",))[:] = [7, 8, 9]
        ds.createVariable("cell", "i2", ("locations",))[:] = [42, 42, 99]
        ds.createVariable("land_flag", "i1", ("locations",))[:] = [1, 1, 1]
    t = pd.to_datetime(["2016-01-02 07:00", "2016-01-01 20:00", "2016-01-03 09:30",
                        "2016-01-01 08:00", "2016-01-02 19:00"])
    with netCDF4.Dataset(folder / "data" / "H110_0042.nc", "w") as ds:
        ds.title = "H110 Metop ASCAT SSM time series"
        ds.createDimension("locations", 2)
        ds.createDimension("obs", 5)
        ds.createVariable("row_size", "i8", ("locations",))[:] = [2, 3]
        ds.createVariable("lat", "f4", ("locations",))[:] = [45.1, 45.2]
        ds.createVariable("lon", "f4", ("locations",))[:] = [10.1, 10.3]
        ds.createVariable("location_id", "i8", ("locations",))[:] = [7, 8]
        tv = ds.createVariable("time", "f8", ("obs",))
        tv.units = "days since 1900-01-01 00:00:00"
        tv[:] = (t - pd.Timestamp("1900-01-01")) / pd.Timedelta("1D")
        sm = ds.createVariable("sm", "i1", ("obs",))
        sm.units = "%"
        sm.missing_value = np.int8(127)
        sm[:] = np.array([50, 60, 70, 127, 90], np.int8)
        sat = ds.createVariable("sat_id", "i1", ("obs",))
        sat.missing_value = np.int8(127)
        sat[:] = np.array([3, 4, 127, 3, 4], np.int8)
        ds.createVariable("ssf", "i1", ("obs",))[:] = np.array([1, 1, 2, 1, 1], np.int8)
    return folder / "data"


def test_orthogonal_nearest_point_and_fill(ortho):
    df = read_cell_series(ortho, 45.15, 10.40, units="m3 m-3")
    assert df.attrs["gpi"] == 101
    assert df.attrs["lat"] == pytest.approx(45.125) and df.attrs["lon"] == pytest.approx(10.375)
    assert df.attrs["distance_km"] == pytest.approx(3.4, abs=0.3)
    assert df.attrs["units"] == "m3 m-3"
    assert str(df.index.tz) == "UTC" and df.index.name == "time"
    assert list(df.columns) == ["sm", "flag", "sensor"]
    assert df["sm"].dtype == np.float32
    np.testing.assert_allclose(df["sm"].to_numpy(), [0.11, 0.12, np.nan, 0.14, 0.15],
                               rtol=1e-6)
    assert df.loc["2017-01-03", "flag"].item() == 4
    win = read_cell_series(ortho, 45.15, 10.40, units="m3 m-3", start="2017-01-04")
    assert len(win) == 2


def test_orthogonal_errors(ortho, tmp_path):
    with pytest.raises(UnitsError, match="no units"):
        read_cell_series(ortho, 45.15, 10.40)
    with pytest.raises(OutOfRangeError, match="max_dist_km"):
        read_cell_series(ortho, 45.15, 10.40, units="m3 m-3", max_dist_km=1.0)
    with pytest.raises(OutOfRangeError, match="cell 0043"):
        read_cell_series(ortho, 45.15, 15.15, units="m3 m-3")
    with pytest.raises(OutOfRangeError, match="outside the data"):
        read_cell_series(ortho, 45.15, 10.40, units="m3 m-3", start="2020-01-01")
    with pytest.raises(EmptySelectionError):  # gpi 102 is all fill
        read_cell_series(ortho, 45.375, 10.125, units="m3 m-3")
    with pytest.raises(MissingFileError):
        read_cell_series(tmp_path / "absent", 45.0, 10.0)
    with pytest.raises(UnitsError, match="furlongs"):
        write_ortho_cell(ortho / "0042.nc", units="furlongs")
        read_cell_series(ortho, 45.15, 10.40)
    write_ortho_cell(ortho / "0042.nc", units="m3 m-3")
    with netCDF4.Dataset(ortho / "0042.nc", "a") as ds:
        ds["time"].units = "fortnights since 1858-11-17"
    with pytest.raises(FormatError, match="0042.nc: variable 'time'"):
        read_cell_series(ortho, 45.15, 10.40)
    (ortho / "0042.nc").write_text("garbage")
    with pytest.raises(FormatError, match="0042.nc"):
        read_cell_series(ortho, 45.15, 10.40, units="m3 m-3")


def test_grid_points_in_bbox(ortho):
    pts = grid_points_in_bbox(ortho, (10.0, 45.0, 11.0, 46.0))
    assert list(pts["gpi"]) == [100, 101, 102]  # 103 is water
    assert len(grid_points_in_bbox(ortho, (10.0, 45.0, 11.0, 46.0), land_only=False)) == 4
    with pytest.raises(EmptySelectionError):
        grid_points_in_bbox(ortho, (-50, -10, -40, 0))


def test_ragged_hsaf_fixture(tmp_path):
    data = write_ragged(tmp_path / "hsaf")
    df = read_cell_series(data, 45.21, 10.31)
    assert df.attrs["gpi"] == 8 and df.attrs["units"] == "percent of saturation"
    # the 3 observations of location 8, sorted by time, 127 -> NaN
    assert list(df.index.strftime("%Y-%m-%d %H:%M")) == [
        "2016-01-01 08:00", "2016-01-02 19:00", "2016-01-03 09:30"]
    np.testing.assert_allclose(df["sm"].to_numpy(), [np.nan, 90.0, 70.0])
    assert df["sat_id"].isna().tolist() == [False, False, True]
    assert set(df.columns) == {"sm", "sat_id", "ssf"}


@pytest.mark.realdata
def test_real_cci_passive_matches_raw(shared_data):
    folder = shared_data / "hawaii/cci_passive_v09.2"
    df = read_cell_series(folder, 19.8, -155.4, units="m3 m-3")
    gpi = df.attrs["gpi"]
    with netCDF4.Dataset(folder / "0165.nc") as raw:
        raw.set_auto_mask(False)
        k = int(np.flatnonzero(raw["location_id"][:] == gpi)[0])
        sm = raw["sm"][k]
        t = raw["time"][:]
    ok = np.isfinite(sm) & (sm != -9999)  # this version fills with NaN, others -9999
    i = int(np.flatnonzero(ok)[100])
    when = (MJD0 + pd.Timedelta(days=float(t[i]))).tz_localize("UTC")
    assert float(df.loc[when, "sm"]) == pytest.approx(float(sm[i]))
    assert int(df["sm"].notna().sum()) == int(ok.sum())
    assert {"flag", "sensor"} <= set(df.columns)
    assert df["sm"].first_valid_index() >= pd.Timestamp("2002-06-01", tz="UTC")


@pytest.mark.realdata
def test_real_gapfilled_and_active(shared_data):
    gf = read_cell_series(shared_data / "hawaii/cci_gapfilled_v09.2", 19.8, -155.4)
    assert {"gapmask", "frozenmask", "sm_original"} <= set(gf.columns)
    assert gf["sm"].notna().all()  # a gap-filled product has no gaps
    act = read_cell_series(shared_data / "hawaii/c3s_active_v202505", 19.8, -155.4)
    assert act.attrs["units"] == "percent of saturation"
    assert 0 <= float(act["sm"].max()) <= 100


@pytest.mark.realdata
def test_real_hsaf_ragged_matches_raw(shared_data):
    df = read_cell_series(shared_data / "hawaii/ascat_h119/data", 19.77, -155.42)
    assert df.attrs["units"] == "percent of saturation"
    with netCDF4.Dataset(shared_data / "hawaii/ascat_h119/data/0165.nc") as raw:
        ids = raw["location_id"][:]
        k = int(np.flatnonzero(ids == df.attrs["gpi"])[0])
        rs = raw["row_size"][:]
        start = int(rs[:k].sum())
        sm = raw["sm"][start:start + int(rs[k])]  # scale_factor 0.01 applied by netCDF4
    assert len(df) == int(rs[k])
    assert float(np.nanmean(df["sm"])) == pytest.approx(float(sm.mean()), rel=1e-5)
    h25 = read_cell_series(shared_data / "hsaf/h25", 70.05, 19.04)
    assert h25.attrs["gpi"] == 3066159 and len(h25) == 7737
    pts = grid_points_in_bbox(shared_data / "hsaf/h110", (0, 50, 5, 54))
    assert len(pts) > 400 and set(pts["cell"]) >= {1324}


@pytest.mark.parametrize(
    ("units", "expected", "factor"),
    [
        ("percentage (%)", "percent of saturation", 1.0),  # C3S v202505 ACTIVE cells
        ("percentage (%)", "m3 m-3", 0.01),  # a percentage of volume: divide by 100
        ("degree of saturation (%)", "percent of saturation", 1.0),  # H SAF H111
        ("m3m-3", "m3 m-3", 1.0),
    ],
)
def test_unit_spellings_of_real_files(units, expected, factor):
    from data_catalog.readers._netcdf import canonical_units

    assert canonical_units(units, expected, "f.nc", "sm") == factor


def test_saturation_is_never_taken_for_volume():
    from data_catalog.readers._netcdf import canonical_units

    with pytest.raises(UnitsError, match="cannot be converted"):
        canonical_units("degree of saturation (%)", "m3 m-3", "f.nc", "sm")
