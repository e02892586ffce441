"""LPRM AMSR-E/AMSR2 L3 reader: tiny fixtures written here, and the real GES DISC file."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from data_catalog import errors, schema
from data_catalog.readers import read_lprm, read_lprm_files

REAL = "lprm/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"


def write_lprm(path: Path, *, units: str = "percent", drop: str | None = None,
               all_fill: bool = False, c_name: str = "soil_moisture_c1",
               records: bool = False) -> Path:
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
        if records:  # what the real files record beside the retrievals
            full = np.full(sm.shape, 30, np.int16)
            full[1, 1] = full[2, 1] = -32767
            ds[c_name][:] = full  # a C1 value at every overpass pixel but two
            freq = np.full(sm.shape, 69, np.int16)
            freq[0, 0], freq[0, 1], freq[0, 2] = 73, 107, -1   # C2 and X fall-backs, none
            ts = np.full(sm.shape, 2900, np.int16)
            ts[1, 0] = 2700                                  # 270 K: frozen
            ts[1, 2] = -32767                                # a retrieval without ts
            vod = np.full(sm.shape, 40, np.int16)
            vod[2, 0] = 95                                   # optical depth 0.95
            for name, data, scale, fill in (("frequency_map", freq, 0.1, -1),
                                            ("ts", ts, 0.1, -32767),
                                            ("opt_depth_c1", vod, 0.01, -32767)):
                v = ds.createVariable(name, "i2", ("Longitude", "Latitude"), fill_value=fill)
                v.scale_factor = scale
                v.add_offset = 0.0
                v.set_auto_maskandscale(False)
                v[:] = data
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


def test_fixture_gap_records_rfi_frozen_vegetation(tmp_path):
    path = write_lprm(tmp_path / "LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4",
                      records=True)
    ds = read_lprm(path)
    gap, sm = ds.gap_mask.isel(time=0), ds.amsr_sm.isel(time=0)
    at = {  # (lon index, lat index north-first) -> expected category
        (0, 0): schema.RFI, (0, 1): schema.RFI,            # fell back to C2, to X
        (0, 2): schema.OBSERVED,                            # no frequency recorded
        (1, 0): schema.FROZEN,                              # ts 270 K, with a C1 value
        (1, 1): schema.FROZEN,                              # mask bit 256, no retrieval
        (2, 0): schema.DENSE_VEGETATION,                    # optical depth 0.95
        (2, 1): schema.DENSE_VEGETATION,                    # mask bit 32, no retrieval
        (1, 2): schema.INVALID,                             # a retrieval without ts
        (3, 3): schema.OBSERVED, (4, 0): schema.NO_OVERPASS,
    }
    lons = [-1.375, -1.125, -0.875, -0.625, -0.375, -0.125]
    lats = [0.875, 0.625, 0.375, 0.125]
    for (i, j), cat in at.items():
        got = int(gap.sel(lon=lons[i], lat=lats[j]))
        assert got == cat, ((i, j), got, cat)
        value = float(sm.sel(lon=lons[i], lat=lats[j]))
        assert np.isnan(value) == (cat != schema.OBSERVED), ((i, j), value)
    # the C2 product keeps its own 7.3 GHz pixels: only the X fall-back is RFI there
    with netCDF4.Dataset(path, "a") as raw:
        raw.renameVariable("soil_moisture_c1", "soil_moisture_c2")
    c2 = read_lprm(path, band="c2").gap_mask.isel(time=0)
    assert int(c2.sel(lon=lons[0], lat=lats[0])) == schema.OBSERVED
    assert int(c2.sel(lon=lons[0], lat=lats[1])) == schema.RFI


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
    with pytest.raises(errors.OutOfRangeError, match="2011-09-30..2012-07-03"):
        read_lprm_files(tmp_path, start="2015-01-01", end="2015-01-02")
    write_lprm(tmp_path / "LPRM-AMSR2_L3_A_SOILM3_V001_20120703013507.nc4")
    with pytest.raises(errors.FormatError, match="2012-07-03"):
        read_lprm_files(tmp_path)


def test_bad_inputs(tmp_path, lprm_file):
    with pytest.raises(errors.MissingFileError, match="nope.nc4"):
        read_lprm(tmp_path / "nope.nc4")
    junk = tmp_path / "junk.nc4"
    junk.write_text("this is not netCDF")
    with pytest.raises(errors.FormatError, match="junk.nc4"):
        read_lprm(junk)
    cut = tmp_path / "cut.nc4"
    cut.write_bytes(lprm_file.read_bytes()[:600])
    with pytest.raises(errors.FormatError, match="cut.nc4"):
        read_lprm(cut)
    # cut anywhere (a download that stopped): still a errors.FormatError naming the file
    big = write_lprm(tmp_path / "LPRM-AMSR2_big_20150401.nc4", records=True)
    data = big.read_bytes()
    for keep in (len(data) - 200, len(data) // 2, 4000):
        part = tmp_path / f"LPRM-AMSR2_part{keep}_20150401.nc4"
        part.write_bytes(data[:keep])
        with pytest.raises(errors.FormatError, match=part.name):
            read_lprm(part)
    nox = write_lprm(tmp_path / "LPRM-AMSR2_nox_20150401.nc4", drop="soil_moisture_x")
    with pytest.raises(errors.MissingVariableError, match="soil_moisture_x"):
        read_lprm(nox, band="x")
    with pytest.raises(errors.OutOfRangeError, match="band"):
        read_lprm(lprm_file, band="ku")
    odd = write_lprm(tmp_path / "LPRM-AMSR2_odd_20150401.nc4", units="furlongs")
    with pytest.raises(errors.UnitsError, match="furlongs"):
        read_lprm(odd)
    with pytest.raises(errors.OutOfRangeError, match="outside the data"):
        read_lprm(lprm_file, region=(10, 10, 20, 20))
    empty = write_lprm(tmp_path / "LPRM-AMSR2_empty_20150401.nc4", all_fill=True)
    with pytest.raises(errors.EmptySelectionError, match="no valid value"):
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
    gap = ds.gap_mask.values[0]
    # observed: exactly the C1 retrievals that no record of the file casts doubt on,
    # computed here straight from the raw arrays (transposed to (lat, lon), north first)
    with netCDF4.Dataset(path) as raw:
        c1 = raw["soil_moisture_c1"][:].T
        freq = raw["frequency_map"][:].T
        ts = raw["ts"][:].T
        vod = raw["opt_depth_c1"][:].T
        bits = raw["mask"][:].T.filled(0)
    land = ds.land.values[::-1]  # back to north-first like the raw arrays
    trusted = (~c1.mask & ~ts.mask & (ts.filled(0) >= 273.15) & (vod.filled(9) <= 0.8)
               & ~(freq.filled(0) > 6.95) & ((bits & 256) == 0) & land)
    assert int((gap == schema.OBSERVED).sum()) == int(trusted.sum())
    assert 60_000 < int(trusted.sum()) < n_valid
    # RFI fall-backs: C1 still has a value at most of those pixels, never shown as observed
    fell_back = (freq.filled(0) > 6.95)[::-1]
    assert (~c1.mask[::-1] & fell_back).sum() > 3000
    assert not (gap[fell_back] == schema.OBSERVED).any()
    assert np.isnan(ds.amsr_sm.values[0][fell_back]).all()
    on_land = fell_back & ds.land.values & ((bits[::-1] & 256) == 0) \
        & ~(ts.filled(300)[::-1] < 273.15)
    assert (gap[on_land] == schema.RFI).all() and on_land.sum() > 2000
    assert np.isnan(ds.amsr_sm.values[0][gap != schema.OBSERVED]).all()
    # the land mask turns the open ocean into not_land; a mid-Pacific cell is water
    assert int(ds.gap_mask.sel(lat=0.125, lon=-150.125).item()) == schema.NOT_LAND
    assert bool(ds.land.sel(lat=42.125, lon=-93.125))


def test_fixture_band_error_is_read_in_the_soil_moistures_units(tmp_path):
    """``soil_moisture_c1_error`` packed as the real files pack it (int16, scale_factor
    0.01, units "percent", packed integers in volumetric percent) becomes
    ``amsr_sm_error`` in m3 m-3 on observed pixels only; a file without it gives none."""
    path = write_lprm(tmp_path / "LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4")
    assert schema.AMSR_SM_ERROR not in read_lprm(path)
    with netCDF4.Dataset(path, "a") as ds:
        v = ds.createVariable("soil_moisture_c1_error", "i2", ("Longitude", "Latitude"),
                              fill_value=-32767)
        v.units, v.scale_factor, v.add_offset = "percent", 0.01, 0.0
        v.set_auto_maskandscale(False)
        packed = np.full((6, 4), 7, np.int16)   # 7 % volumetric = 0.07 m3 m-3
        packed[5, 3] = 12                        # the south-east observation: 0.12
        packed[0, 0] = -32767                    # the north-west observation: no error
        v[:] = packed
    ds = read_lprm(path)
    schema.check_canonical(ds)
    err = ds[schema.AMSR_SM_ERROR].isel(time=0)
    assert err.dtype == np.float32 and err.attrs["units"] == "m3 m-3"
    assert err.attrs["source_variable"] == "soil_moisture_c1_error"
    assert err.attrs["standard_name"].endswith("standard_error")
    assert float(err.sel(lat=0.125, lon=-0.125)) == pytest.approx(0.12)
    assert np.isnan(float(err.sel(lat=0.875, lon=-1.375)))  # fill value
    # never where amsr_sm is not observed, although the file packs 0.07 everywhere
    assert int(np.isfinite(err).sum()) == 1
    assert np.isnan(err.values[~np.isfinite(ds.amsr_sm.values[0])]).all()


@pytest.mark.realdata
def test_real_file_band_error_is_plausible_and_equals_the_packed_percent(shared_data):
    path = shared_data / REAL
    ds = read_lprm(path, region=(-125, 25, -65, 50))
    err, sm = ds[schema.AMSR_SM_ERROR].values[0], ds.amsr_sm.values[0]
    assert np.isnan(err[~np.isfinite(sm)]).all()
    have = np.isfinite(err)
    # most observations carry their error (LPRM leaves it out where it retrieved 0)
    assert have.sum() > 0.6 * np.isfinite(sm).sum() > 1000
    # plausible retrieval errors in m3 m-3 (Parinussa et al. 2011): a few hundredths
    assert 0.0 <= err[have].min() and err[have].max() <= 0.5
    assert 0.02 <= float(np.median(err[have])) <= 0.15
    with netCDF4.Dataset(path) as raw:
        v = raw["soil_moisture_c1_error"]
        assert v.units == "percent" and float(v.scale_factor) == pytest.approx(0.01)
        v.set_auto_maskandscale(False)
        lat, lon = raw["Latitude"][:], raw["Longitude"][:]
        packed = v[:]
    for la, lo in [(float(ds.lat[i]), float(ds.lon[j])) for i, j in np.argwhere(have)[::97]]:
        i, j = int(np.argmin(abs(lat - la))), int(np.argmin(abs(lon - lo)))
        got = float(ds[schema.AMSR_SM_ERROR].sel(lat=la, lon=lo).item())
        assert got == pytest.approx(float(packed[j, i]) / 100.0)  # packed %, like the sm
