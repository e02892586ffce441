"""Native product files written from canonical fields, as the producers write them.

* :func:`write_lprm` — NASA LPRM AMSR2/AMSR-E L3 daily netCDF-4 (GES DISC), encoded like
  ``LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4`` in ``../shared/data/lprm``: arrays
  ``(Longitude, Latitude)``, latitude north to south, int16 with the same scale factors,
  fill values, units and long names, zlib level 2 without shuffle, one chunk per array;
* :func:`write_cci_image` — a CCI/C3S daily image (ACTIVE or PASSIVE) like the C3S
  v201706 files in ``../shared/data/images``: ``(time=1, lat, lon)``, north to south,
  ``flag``/``sensor`` with their ``flag_values``/``flag_meanings``, zlib 9 + shuffle;
* :func:`write_hsaf_cell` and :func:`write_warp5_grid` — an H SAF ASCAT SSM CDR ragged
  cell file like H119 ``0165.nc`` (``row_size``, ``obs``, padding locations, ``sm`` float32
  with scale factor 0.01, ``ssf``/``proc_flag``/``corr_flag``/``conf_flag`` with their
  meanings) and a TU Wien WARP5-like grid file.

:func:`world_to_native` writes a part of a canonical world (the demo world) in all three,
encoding each gap category the way the real products record it.  The assemble tests and
``bench.assemble`` use these; nothing here is imported by the product code.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from data_catalog import grid, schema

LPRM_EPOCH = pd.Timestamp("1993-01-01")
HSAF_EPOCH = pd.Timestamp("1900-01-01")
I2_FILL = -32767

# name -> (long name, units, scale factor, fill value); the real file's encoding
_LPRM = {
    "ts": ("Skin Temperature (2mm)", "Kelvin", 0.1, I2_FILL),
    "soil_moisture_c1": ("Volumetric Soil Moisture from 6.9 GHZ", "percent", 1.0, I2_FILL),
    "opt_depth_c1": ("Optical Depth from 6.9 GHz", None, 0.01, I2_FILL),
    "soil_moisture_c2": ("Volumetric Soil Moisture from 7.3 GHz", "percent", 1.0, I2_FILL),
    "opt_depth_c2": ("Optical Depth from 7.3 GHz", None, 0.01, I2_FILL),
    "soil_moisture_x": ("Volumetric Soil Moisture from 10.7 GHz", "percent", 1.0, I2_FILL),
    "opt_depth_x": ("Optical Depth from 10.7 GHz", None, 0.01, I2_FILL),
    "mask": ("Bit Mask", None, None, None),
    "soil_moisture_c1_error": ("Uncertainty of Soil Moisture in 6.9 GHz", "percent", 0.01,
                               I2_FILL),
    "soil_moisture_c2_error": ("Uncertainty of Soil Moisture in 7.3 GHz", "percent", 0.01,
                               I2_FILL),
    "soil_moisture_x_error": ("Uncertainty of Soil Moisture in 10.7 GHz", "percent", 0.01,
                              I2_FILL),
    "frequency_map": ("Frequency map", "GHz", 0.1, -1),
}


def lprm_name(day, sensor: int = schema.SENSOR_AMSR2) -> str:
    t = pd.Timestamp(day)
    if sensor == schema.SENSOR_AMSRE:
        return f"LPRM-AMSR_E_L3_D_SOILM3_V002_{t:%Y%m%d}.nc4"
    return f"LPRM-AMSR2_L3_D_SOILM3_V001_{t:%Y%m%d}013507.nc4"


def write_lprm(path: str | Path, lat: np.ndarray, lon: np.ndarray, fields: dict,
               *, amsr_e: bool = False) -> Path:
    """One LPRM day. ``lat`` ascending, ``lon``; ``fields`` maps variable names of
    :data:`_LPRM` (and ``scantime``, seconds since 1993-01-01) to ``(lat, lon)`` arrays in
    physical units with NaN for missing (``mask``: ints); absent variables are all fill.
    ``amsr_e`` names the C band ``..._c`` and leaves out C2, as AMSR-E files do."""
    path = Path(path)
    ny, nx = len(lat), len(lon)

    def layout(a: np.ndarray) -> np.ndarray:  # (lat asc, lon) -> (lon, lat north first)
        return np.ascontiguousarray(a[::-1].T)

    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        ds.Conventions = "CF-1.0"
        ds.createDimension("Longitude", nx)
        ds.createDimension("Latitude", ny)
        for name, values, axis in (("Latitude", lat[::-1], "Lat"), ("Longitude", lon, "Lon")):
            v = ds.createVariable(name, "f4", (name,), zlib=True, complevel=2)
            v.units = "degrees_north" if axis == "Lat" else "degrees_east"
            v.scale_factor, v.add_offset = 1.0, 0.0
            v.long_name = name
            v._CoordinateAxisType = axis
            v.set_auto_maskandscale(False)
            v[:] = values.astype(np.float32)
        for name, (long_name, units, scale, fill) in _LPRM.items():
            out = name
            if amsr_e:
                if "_c2" in name:
                    continue
                out = name.replace("_c1", "_c")
            v = ds.createVariable(out, "i2", ("Longitude", "Latitude"), zlib=True,
                                  complevel=2, shuffle=False, chunksizes=(nx, ny),
                                  fill_value=fill if fill is not None else None)
            v.long_name = long_name
            if units:
                v.units = units
            v.coordinates = "Longitude Latitude"
            if scale is not None:
                v.scale_factor, v.add_offset = scale, 0.0
            v.set_auto_maskandscale(False)
            data = fields.get(name)
            if data is None:
                raw = np.full((ny, nx), fill if fill is not None else 0, np.int16)
            elif scale is None:
                raw = np.asarray(data, np.int16)
            else:
                raw = np.where(np.isfinite(data), np.round(np.nan_to_num(data) / scale),
                               fill).astype(np.int16)
            v[:] = layout(raw)
        v = ds.createVariable("scantime", "f8", ("Longitude", "Latitude"), zlib=True,
                              complevel=2, shuffle=False,
                              chunksizes=(max(nx // 2, 1), max(ny // 2, 1)), fill_value=0.0)
        v.long_name = "Scan time"
        v.units = "seconds since 1993-01-01 00:00:00"
        v.coordinates = "Longitude Latitude"
        scan = fields.get("scantime")
        v[:] = layout(np.nan_to_num(scan, nan=0.0) if scan is not None else np.zeros((ny, nx)))
    return path


_CCI_FLAGS = {
    "ACTIVE": ([0, 1, 4, 5, 8, 127],
               "no_data_inconsistency_detected snow_coverage_or_temperature_below_zero "
               "others_no_convergence_in_the_model_thus_no_valid_sm_estimates "
               "combination_of_flag_values_1_and_4 soil_moisture_value_exceeds_physical_"
               "boundary NaN"),
    "PASSIVE": ([0, 1, 2, 3, 4, 5, 6, 8, 16, 127],
                "no_data_inconsistency_detected snow_coverage_or_temperature_below_zero "
                "dense_vegetation combination_of_flag_values_1_and_2 "
                "others_no_convergence_in_the_model_thus_no_valid_sm_estimates "
                "combination_of_flag_values_1_and_4 combination_of_flag_values_2_and_4 "
                "soil_moisture_value_exceeds_physical_boundary weight_of_measurement_below_"
                "threshold NaN"),
}
_CCI_SENSORS = {"ACTIVE": ([0, 256, 512, 768], "NaN ASCATA ASCATB ASCATA+ASCATB"),
                "PASSIVE": ([0, 8, 32], "NaN AMSRE AMSR2")}


def cci_name(day, product: str = "ACTIVE") -> str:
    kind = "SSMS" if product == "ACTIVE" else "SSMV"
    return (f"C3S-SOILMOISTURE-L3S-{kind}-{product}-DAILY-{pd.Timestamp(day):%Y%m%d}000000-"
            "TCDR-v201801.0.0.nc")


def write_cci_image(path: str | Path, lat: np.ndarray, lon: np.ndarray, day, sm: np.ndarray,
                    flag: np.ndarray, sensor: np.ndarray, product: str = "ACTIVE",
                    uncertainty: np.ndarray | None = None) -> Path:
    """One CCI/C3S day: ``sm`` (% saturation for ACTIVE, m3 m-3 for PASSIVE, NaN missing),
    ``flag`` (int8 codes, 127 no data) and ``sensor`` (bits, 0 none) as ``(lat, lon)``;
    ``uncertainty``: ``sm_uncertainty`` in the units of ``sm``, as the real files have it
    (left out when None)."""
    path = Path(path)
    ny, nx = len(lat), len(lon)
    t = (pd.Timestamp(day) - pd.Timestamp("1970-01-01")).days

    def var(ds, name, dtype, fill, data, **attrs):
        v = ds.createVariable(name, dtype, ("time", "lat", "lon"), zlib=True, complevel=9,
                              shuffle=True, chunksizes=(1, ny, nx), fill_value=fill)
        for k, val in attrs.items():
            setattr(v, k, val)
        v.set_auto_maskandscale(False)
        v[:] = data[None, ::-1]

    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        ds.title = f"C3S Surface Soil Moisture merged {product} Product"
        ds.product_version = "v201801.0"
        ds.Conventions = "CF-1.6"
        ds.time_coverage_resolution = "P1D"
        ds.createDimension("time", 1)
        ds.createDimension("lat", ny)
        ds.createDimension("lon", nx)
        for name, values, units in (("lat", lat[::-1], "degrees_north"),
                                    ("lon", lon, "degrees_east")):
            v = ds.createVariable(name, "f4", (name,), zlib=True, complevel=9, shuffle=True)
            v.units = units
            v.standard_name = "latitude" if name == "lat" else "longitude"
            v[:] = values.astype(np.float32)
        v = ds.createVariable("time", "f8", ("time",), zlib=True, complevel=9, shuffle=True)
        v.units = "days since 1970-01-01 00:00:00 UTC"
        v.standard_name = "time"
        v.calendar = "standard"
        v[:] = [t]
        units = "percent" if product == "ACTIVE" else "m3 m-3"
        var(ds, "sm", "f4", np.float32(-9999.0),
            np.where(np.isfinite(sm), sm, -9999.0).astype(np.float32),
            long_name="Volumetric Soil Moisture" if product != "ACTIVE"
            else "Percent of Saturation Soil Moisture", units=units)
        if uncertainty is not None:
            var(ds, "sm_uncertainty", "f4", np.float32(-9999.0),
                np.where(np.isfinite(uncertainty), uncertainty, -9999.0).astype(np.float32),
                long_name="Volumetric Soil Moisture Uncertainty", units=units)
        values, meanings = _CCI_FLAGS[product]
        var(ds, "flag", "i1", np.int8(127), flag.astype(np.int8), long_name="Flag",
            flag_values=np.array(values, np.int8), flag_meanings=meanings)
        values, meanings = _CCI_SENSORS[product]
        var(ds, "sensor", "i2", np.int16(0), sensor.astype(np.int16), long_name="Sensor",
            flag_values=np.array(values, np.int16), flag_meanings=meanings)
    return path


def warp5_cell(lat, lon) -> np.ndarray:
    """TU Wien 5 degree cell number of points (H119 cell 0165 holds Hawaii)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    return (np.floor((lon + 180) / 5) * 36 + np.floor((lat + 90) / 5)).astype(np.int64)


def write_warp5_grid(path: str | Path, lat, lon, gpi, land) -> Path:
    """A WARP5-like grid file: ``lon, lat, gpi, cell, land_flag`` per location."""
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        ds.creator = "TU Wien"
        ds.createDimension("locations", len(lat))
        for name, dtype, data in (("lon", "f4", lon), ("lat", "f4", lat), ("gpi", "i4", gpi),
                                  ("cell", "i2", warp5_cell(lat, lon)),
                                  ("land_flag", "i1", np.asarray(land, np.int8))):
            v = ds.createVariable(name, dtype, ("locations",), zlib=True)
            if name == "land_flag":
                v.flag_values, v.flag_meanings = "0,1", "no_land land"
            v[:] = np.asarray(data).astype(dtype)
    return path


_HSAF_FLAGS = {
    "ssf": ("flag_values", [0, 1, 2, 3, 4],
            "unknown unfrozen frozen_temporary melting_water_on_the_surface permanent_ice"),
    "proc_flag": ("flag_masks", [1, 2, 4, 8, 16, 32, 64],
                  "soil_moisture_set_to_nan_it_was_below_-25 soil_moisture_set_to_nan_it_was_"
                  "above_125 soil_moisture_set_to_nan_backscatter_not_usable soil_moisture_set_"
                  "to_nan_model_parameter_not_usable reserved_for_future_use "
                  "reserved_for_future_use reserved_for_future_use"),
    "corr_flag": ("flag_masks", [1, 2, 4, 8, 16, 32, 64],
                  "soil_moisture_set_to_0_it_was_between_0_and_-25 soil_moisture_set_to_100_it_"
                  "was_between_100_and_125 wet_correction_applied subsurface_scattering_"
                  "correction_applied reserved_for_future_use reserved_for_future_use "
                  "reserved_for_future_use"),
    "conf_flag": ("flag_masks", [1, 2, 4, 8, 16, 32, 64],
                  "bad_surface_state_flag topographic_complexity_above_50perc "
                  "wetland_above_50perc soil_moisture_noise_above_50perc sensitivity_to_soil_"
                  "moisture_below_1dB reserved_for_future_use reserved_for_future_use"),
}


def write_hsaf_cell(path: str | Path, lat, lon, gpi, obs: pd.DataFrame, padding: int = 2
                    ) -> Path:
    """An H119-like ragged cell file. ``obs`` has columns ``loc`` (index into lat/lon/gpi),
    ``time`` (Timestamp, UTC), ``sm`` (% saturation, NaN missing), ``ssf``, ``proc_flag``,
    ``corr_flag``, ``conf_flag``; ``padding`` masked locations follow the real ones."""
    obs = obs.sort_values(["loc", "time"], kind="stable")
    n = len(lat)
    rows = np.bincount(obs["loc"].to_numpy(), minlength=n)
    with netCDF4.Dataset(path, "w") as ds:
        ds.id = Path(path).name
        ds.featureType = "timeSeries"
        ds.product_name = ("Metop ASCAT Surface Soil Moisture Climate Data Record v7 12.5 km "
                           "sampling (H119)")
        ds.project = "H SAF"
        ds.createDimension("locations", n + padding)
        ds.createDimension("obs", None)
        kw = {"zlib": True, "complevel": 4, "shuffle": True}
        v = ds.createVariable("row_size", "i8", ("locations",), **kw)
        v.sample_dimension = "obs"
        v[:] = np.ma.masked_array(np.r_[rows, np.zeros(padding, int)],
                                  mask=np.r_[np.zeros(n, bool), np.ones(padding, bool)])
        for name, data in (("lon", lon), ("lat", lat), ("alt", np.zeros(n))):
            v = ds.createVariable(name, "f4", ("locations",), **kw)
            v[:] = np.ma.masked_array(np.r_[data, np.zeros(padding)],
                                      mask=np.r_[np.zeros(n, bool), np.ones(padding, bool)])
        v = ds.createVariable("location_id", "i8", ("locations",), **kw)
        v[:] = np.ma.masked_array(np.r_[gpi, np.zeros(padding, int)],
                                  mask=np.r_[np.zeros(n, bool), np.ones(padding, bool)])
        v = ds.createVariable("time", "f8", ("obs",), **kw)
        v.units = "days since 1900-01-01 00:00:00"
        v.standard_name = "time"
        t = pd.DatetimeIndex(obs["time"])
        v[:] = ((t - HSAF_EPOCH) / pd.Timedelta("1D")).to_numpy()
        v = ds.createVariable("sm", "f4", ("obs",), **kw)
        v.long_name = "surface soil moisture"
        v.units = "percentage"
        v.scale_factor = 0.01
        v.valid_range = np.array([0, 10000])
        v.missing_value = 65535
        v.set_auto_maskandscale(False)
        sm = obs["sm"].to_numpy(float)
        v[:] = np.where(np.isfinite(sm), np.round(np.nan_to_num(sm) * 100), 65535)
        for name, (kind, values, meanings) in _HSAF_FLAGS.items():
            v = ds.createVariable(name, "i1", ("obs",), **kw)
            setattr(v, kind, np.array(values, np.int8))
            v.flag_meanings = meanings
            if name == "ssf":
                v.missing_value = np.int8(127)
            v.set_auto_maskandscale(False)
            v[:] = obs[name].to_numpy(np.int8)
    return path


# ---------------------------------------------------------------- a world in native files
def world_to_native(world, folder: str | Path, *, margin: float = 1.0, seed: int = 0,
                    every: int = 1) -> dict[str, Path]:
    """Write a canonical world (loaded; e.g. a part of the demo world) as LPRM days, C3S
    ACTIVE images and H SAF cells with a WARP5-like grid, over the world's region plus
    ``margin`` degrees (daily files only every ``every``-th day).  Returns the folders
    ``lprm``, ``active``, ``hsaf`` and the grid.

    Each gap category is what the real products record there: RFI as a C1 value that
    LPRM replaced by a C2/X fall-back in ``frequency_map``, dense vegetation as optical
    depth above 0.8 (with a value), frozen ground as skin temperature below 273.15 K (half
    of them with a value, some with mask bit 256), a swath gap as no ``scantime``, an
    invalid retrieval as an overpass without a value; ASCAT frozen days as observations
    with ``ssf`` 2 or a flagged ACTIVE value, plus flagged and out-of-period observations
    and far grid points that must all be ignored.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    lat0, lon0 = world[schema.LAT].values, world[schema.LON].values
    w, s, e, n = grid.bounds(lat0, lon0)
    lat = grid.centres(s - margin, n + margin)
    lon = grid.centres(w - margin, e + margin)
    ii = grid.nearest_index(lat0, lat)      # file row -> world row (-1 outside)
    jj = grid.nearest_index(lon0, lon)
    inside = (ii >= 0)[:, None] & (jj >= 0)[None, :]

    def spread(a: np.ndarray, fill) -> np.ndarray:
        out = np.full((len(lat), len(lon)), fill, dtype=np.asarray(a).dtype)
        out[inside] = a[np.ix_(np.clip(ii, 0, None), np.clip(jj, 0, None))][inside]
        return out

    paths = {k: folder / k for k in ("lprm", "active", "hsaf")}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    times = pd.DatetimeIndex(world[schema.TIME].values)
    amsr_all = world[schema.AMSR_SM].values
    gap_all = world[schema.GAP_MASK].values
    ascat_all = world[schema.ASCAT_SM].values
    sensors = world[schema.SENSOR].values
    land = spread(world[schema.LAND].values, False)
    for k, day in enumerate(times):
        if k % every:
            continue
        gap = spread(gap_all[k], np.int8(schema.NO_OVERPASS))
        if sensors[k] != schema.SENSOR_NONE:
            fields = _lprm_fields(spread(amsr_all[k], np.float32(np.nan)), gap, lon, day, rng)
            write_lprm(paths["lprm"] / lprm_name(day, int(sensors[k])), lat, lon, fields,
                       amsr_e=sensors[k] == schema.SENSOR_AMSRE)
        asc = spread(ascat_all[k], np.float32(np.nan))
        flag = np.full(asc.shape, 127, np.int8)
        sens = np.zeros(asc.shape, np.int16)
        ok = np.isfinite(asc)
        flag[ok] = 0
        sens[ok] = rng.choice([256, 512, 768], size=int(ok.sum()))
        frozen = ~ok & (gap == schema.FROZEN)
        flag[frozen] = 1
        flagged = frozen & (rng.random(asc.shape) < 0.5)  # a value the flag rules out
        asc = asc.copy()
        asc[flagged] = 55.0
        sens[flagged] = 256
        write_cci_image(paths["active"] / cci_name(day), lat, lon, day, asc, flag, sens)
    grid_path = _hsaf_cells(paths["hsaf"], lat, lon, land, spread, times, ascat_all, gap_all,
                            rng)
    return {**paths, "grid": grid_path}


def _lprm_fields(amsr, gap, lon, day, rng) -> dict:
    ny, nx = gap.shape
    over = (gap != schema.NO_OVERPASS) & (gap != schema.NOT_LAND)
    hours = 1.5 - lon / 15.0  # 01:30 local solar time, descending
    scan = ((pd.Timestamp(day) - LPRM_EPOCH).total_seconds()
            + 3600.0 * np.broadcast_to(hours % 24, (ny, nx)))
    c1 = np.full((ny, nx), np.nan)
    obs = gap == schema.OBSERVED
    c1[obs] = 100.0 * amsr[obs]
    junk = over & ~obs & (gap != schema.INVALID)
    c1[junk] = rng.integers(5, 60, int(junk.sum()))
    frozen = gap == schema.FROZEN
    c1[frozen & (rng.random((ny, nx)) < 0.5)] = np.nan
    freq = np.where(over, 6.9, np.nan)
    rfi = gap == schema.RFI
    freq[rfi] = np.where(rng.random(int(rfi.sum())) < 0.6, 7.3, 10.7)
    ts = np.where(over & np.isfinite(c1), 285.0 + 10 * rng.random((ny, nx)), np.nan)
    ts[frozen] = np.where(rng.random(int(frozen.sum())) < 0.7, 262.0, np.nan)
    vod = np.where(np.isfinite(c1), 0.2 + 0.5 * rng.random((ny, nx)), np.nan)
    veg = gap == schema.DENSE_VEGETATION
    vod[veg] = 0.85 + 0.4 * rng.random(int(veg.sum()))
    mask = np.zeros((ny, nx), np.int16)
    mask[frozen & ~np.isfinite(ts)] = 256
    mask[gap == schema.NOT_LAND] = 512
    # the real files' packing (data_catalog.readers.lprm.band_error): unpacked values are
    # m3 m-3 (packed integers volumetric percent) whatever the "percent" label: 0.02 m3 m-3
    # in sparse vegetation, growing with the optical depth as in the 2015-04-01 file
    err = np.where(np.isfinite(c1), np.round(0.02 + 0.2 * np.clip(vod - 0.3, 0, None), 2),
                   np.nan)
    return {"soil_moisture_c1": c1, "soil_moisture_c2": c1, "soil_moisture_x": c1,
            "opt_depth_c1": vod, "opt_depth_c2": vod, "opt_depth_x": vod, "ts": ts,
            "mask": mask, "frequency_map": freq, "soil_moisture_c1_error": err,
            "soil_moisture_c2_error": err, "soil_moisture_x_error": err,
            "scantime": np.where(over, scan, np.nan)}


def _hsaf_cells(folder: Path, lat, lon, land, spread, times, ascat_all, gap_all, rng) -> Path:
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    # a point 3-4 km from every cell centre, and a far one (~18 km) that must never be used
    plat = np.r_[yy.ravel() + 0.02, yy.ravel() + 0.125]
    plon = np.r_[xx.ravel() - 0.03, xx.ravel() + 0.125]
    pland = np.r_[land.ravel(), land.ravel()]
    gpi = np.arange(plat.size) * 4 + 1_000_000
    grid_path = write_warp5_grid(folder / "TUW_WARP5_grid_info_2_3.nc", plat, plon, gpi,
                                 pland)
    ncell = yy.size
    asc = np.stack([spread(a, np.float32(np.nan)).ravel() for a in ascat_all])  # (t, cell)
    frz = np.stack([spread(g, np.int8(0)).ravel() == schema.FROZEN for g in gap_all])
    rows = []
    span = pd.Timedelta("1D")
    for k, day in enumerate(times):
        v = asc[k]
        ok = np.flatnonzero(np.isfinite(v))
        two = ok[rng.random(ok.size) < 0.5]
        one = np.setdiff1d(ok, two)
        rows.append(_obs(one, day + pd.Timedelta("15.6h"), v[one], conf=np.where(
            rng.random(one.size) < 0.3, 2, 0)))  # topographic advisory: kept
        d = np.minimum(0.7, np.minimum(v[two], 100 - v[two]))  # two passes, mean v
        rows.append(_obs(two, day + pd.Timedelta("3.6h"), v[two] - d))
        rows.append(_obs(two, day + pd.Timedelta("15.6h"), v[two] + d))
        bad = ok[rng.random(ok.size) < 0.2]
        rows.append(_obs(bad, day + pd.Timedelta("9.5h"), np.full(bad.size, 99.0),
                         conf=np.full(bad.size, 16)))  # sensitivity below 1 dB: dropped
        frozen = np.flatnonzero(~np.isfinite(v) & frz[k] & pland[:ncell])
        rows.append(_obs(frozen, day + pd.Timedelta("15.6h"), np.full(frozen.size, 80.0),
                         ssf=2))
        cut = np.flatnonzero(~np.isfinite(v) & ~frz[k] & pland[:ncell])[:50]
        rows.append(_obs(cut, day + pd.Timedelta("15.6h"), np.full(cut.size, np.nan),
                         proc=4))  # backscatter not usable: sm missing
        far = np.flatnonzero(pland[ncell:])
        rows.append(_obs(far + ncell, day + pd.Timedelta("12h"), np.full(far.size, 5.0)))
    for extra in (times[0] - span, times[-1] + span):  # outside the period
        on = np.flatnonzero(pland[:ncell])
        rows.append(_obs(on, extra + pd.Timedelta("12h"), np.full(on.size, 1.0)))
    obs = pd.concat(rows, ignore_index=True)
    cells = warp5_cell(plat, plon)
    for c in np.unique(cells[pland]):
        members = np.flatnonzero((cells == c) & pland)
        local = {int(g): i for i, g in enumerate(members)}
        sub = obs[obs["loc"].isin(local)].copy()
        sub["loc"] = sub["loc"].map(local)
        write_hsaf_cell(folder / f"H119_{c:04d}.nc", plat[members], plon[members],
                        gpi[members], sub)
    return grid_path


def _obs(loc, time, sm, *, ssf=1, proc=0, conf=0) -> pd.DataFrame:
    n = len(loc)
    return pd.DataFrame({"loc": np.asarray(loc, np.int64),
                         "time": np.full(n, np.datetime64(time, "ns")),
                         "sm": np.asarray(sm, float), "ssf": np.full(n, ssf),
                         "proc_flag": np.full(n, proc), "corr_flag": np.zeros(n, int),
                         "conf_flag": np.broadcast_to(conf, (n,)).copy()})
