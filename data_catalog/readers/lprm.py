"""NASA LPRM AMSR-E / AMSR2 Level 3 daily soil moisture (GES DISC netCDF4).

The native files (``LPRM-AMSR2_L3_D_SOILM3_V001_YYYYMMDDhhmmss.nc4``,
``LPRM-AMSR_E_L3_D_SOILM3_V002_...``) store ``soil_moisture_c1/c2/x`` in volumetric
percent as ``(Longitude, Latitude)`` with latitude running north to south. This reader
returns the canonical gridded form: ``amsr_sm`` in m3 m-3 as ``(time, lat, lon)``,
latitude ascending, a ``gap_mask`` and the ``sensor`` coordinate, and the product's own
error of the band (``soil_moisture_c1_error`` ...) as ``amsr_sm_error`` where the file has
it (:func:`band_error`: mind its packing).

Gap categories are derived from what the file itself records, so that a value the
product itself marks as doubtful is never returned as observed (``amsr_sm`` is NaN
wherever ``gap_mask`` is not ``observed``), lowest priority first:

* ``invalid_retrieval`` for an overpass without a retrieval in the band, and for a
  retrieval without its skin temperature (``ts`` missing where the file has ``ts``);
* ``dense_vegetation`` where the band's vegetation optical depth (``opt_depth_c1`` ...)
  exceeds :data:`VOD_MAX` = 0.8, and (overpass without retrieval) ``mask`` bits 16/32/64;
* ``radio_frequency_interference`` where ``frequency_map`` names a higher band than the
  one read: LPRM fell back from C1 (6.9 GHz) to C2 (7.3) or X (10.7) because of RFI, yet
  still stores a C1 value there (in the 2015-04-01 AMSR2 file at 90 % of the 7.3 GHz and
  84 % of the 10.7 GHz pixels): for C1 both fall-backs are RFI, for C2 the X fall-back;
* ``frozen_ground`` where ``ts`` is below 273.15 K or ``mask`` bit 256 is set;
* ``no_overpass`` where ``scantime`` is missing (no overpass of this orbit direction that
  day: the swath gaps; without a land mask also the oceans);
* ``not_land`` where a land mask (``land_grid``: a CCI/C3S ``grid.nc`` on the same 0.25
  degree grid) says water.

The file carries no ``flag_meanings`` for ``mask``: the bit meanings were read off the
2015-04-01 AMSR2 file (bit 256 covers Antarctica, Greenland and Siberia in spring; bits
16-64 sit where the optical depth is about 1), so treat them as best effort. Bits 2, 4, 8,
128 and 512 are not used (512 covers the oceans: the land mask decides what is land).
Each rule applies only where the file has its variable (older files may lack
``frequency_map`` or ``ts``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from data_catalog import schema
from data_catalog.errors import FormatError, OutOfRangeError
from data_catalog.readers import _netcdf as nc

log = logging.getLogger(__name__)

# Band -> variable names to try. AMSR-E has one C band (6.9 GHz): its LPRM files name it
# ``soil_moisture_c``, which "c1" and "c" both accept.
BANDS = {"c1": ("soil_moisture_c1", "soil_moisture_c"),
         "c": ("soil_moisture_c", "soil_moisture_c1"),
         "c2": ("soil_moisture_c2",), "x": ("soil_moisture_x",)}
#: frequency (GHz) of each band: a ``frequency_map`` above it means an RFI fall-back
BAND_GHZ = {"c1": 6.9, "c": 6.9, "c2": 7.3, "x": 10.7}
#: vegetation optical depth variable of each band (AMSR-E names its C band ``..._c``)
OPT_DEPTH = {"c1": ("opt_depth_c1", "opt_depth_c"), "c": ("opt_depth_c", "opt_depth_c1"),
             "c2": ("opt_depth_c2",), "x": ("opt_depth_x",)}
#: Above this optical depth a retrieval is taken as dense vegetation: the microwave
#: emission of the soil is then mostly absorbed by the canopy and LPRM retrievals lose
#: their sensitivity to soil moisture (de Jeu et al. 2008, Surv. Geophys. 29, 399-420;
#: Owe et al. 2008, JGR 113, F01002).
VOD_MAX = 0.8
#: skin temperature (K) below which the ground is taken as frozen
FREEZING_K = 273.15
FROZEN_BIT = 256
VEGETATION_BITS = 16 | 32 | 64
SCANTIME_EPOCH = pd.Timestamp("1993-01-01")


def band_error(packed: np.ndarray, var, path: Path, name: str) -> np.ndarray:
    """The product's own error of a band (``soil_moisture_c1_error`` ...) in m3 m-3.

    The GES DISC files pack it as int16 with ``scale_factor`` 0.01 and ``units``
    "percent", but the packed integers are volumetric percent, the units of the band's
    soil moisture (itself packed with ``scale_factor`` 1): the unpacked numbers are already
    m3 m-3 and the "percent" label describes the packed ones.  Read off the 2015-04-01
    AMSR2 file: unpacked C1 errors 0.00 to 0.49, median 0.02 where the optical depth is
    below 0.2, 0.07 at 0.4-0.6, 0.16 at 0.6-0.8 and 0.35 above 0.8 (where the soil moisture
    itself reads 0.99): LPRM's error propagation (Parinussa et al. 2011, IEEE GRSL 8,
    779-783) in m3 m-3; as percent they would be a hundred times below any published
    retrieval error.  So the packed numbers (``packed``: as stored, no scale factor
    applied) are converted by ``units`` (percent: times 0.01), as the soil moisture is;
    fill values and negatives are NaN.
    """
    factor = nc.canonical_units(getattr(var, "units", None), schema.UNITS[schema.AMSR_SM_ERROR],
                                path, name)
    err = np.asarray(packed, np.float64)  # add_offset is 0 in every LPRM file
    err[np.isin(packed, sorted(nc.fill_values(var)))] = np.nan
    err *= factor
    err[~(err >= 0)] = np.nan
    return err


def sensor_from_name(path: Path, attrs: dict | None = None) -> int:
    """Schema radiometer from the LPRM file name (``AMSR2`` / ``AMSR_E``) or attributes."""
    text = path.name.upper() + " " + " ".join(str(v) for v in (attrs or {}).values()).upper()
    if "AMSR2" in text:
        return schema.SENSOR_AMSR2
    if re.search(r"AMSR[-_]?E", text):
        return schema.SENSOR_AMSRE
    return schema.SENSOR_NONE


def date_from_name(path: Path) -> pd.Timestamp | None:
    """Day of an LPRM file from the ``_YYYYMMDD[hhmmss]`` stamp in its name."""
    m = re.search(r"_(\d{8})(\d{6})?\.nc4?$", path.name) or re.search(r"(\d{8})", path.name)
    if not m:
        return None
    try:
        return pd.Timestamp(m.group(1))
    except ValueError:
        return None


def gap_categories(sm: np.ndarray, *, scan: np.ndarray, mask: np.ndarray, band: str,
                   ts: np.ndarray | None = None, vod: np.ndarray | None = None,
                   freq: np.ndarray | None = None, land: np.ndarray | None = None
                   ) -> np.ndarray:
    """Gap category of every pixel of one LPRM band (rules in the module docstring).

    Parameters
    ----------
    sm
        The band's soil moisture (NaN where the file has no retrieval).
    scan
        ``scantime`` (NaN or 0 where there was no overpass).
    mask
        The ``mask`` bits (0 where the file has no ``mask``).
    band
        A key of :data:`BANDS`.
    ts, vod, freq
        Skin temperature (K), the band's optical depth and ``frequency_map`` (GHz), each
        NaN where missing; ``None`` where the file lacks the variable (its rule is skipped).
    land
        Boolean land mask, or ``None`` (no ``not_land``).

    Returns
    -------
    numpy.ndarray
        int8 schema gap categories; ``observed`` only where a retrieval is trustworthy.
    """
    retrieved = np.isfinite(sm)
    passed = np.isfinite(scan) & (scan > 0)
    gap = np.full(sm.shape, schema.INVALID, np.int8)
    ok = retrieved if ts is None else retrieved & np.isfinite(ts)
    gap[ok] = schema.OBSERVED
    veg = ~retrieved & ((mask & VEGETATION_BITS) != 0)
    if vod is not None:
        veg |= np.nan_to_num(vod, nan=-np.inf) > VOD_MAX
    gap[veg] = schema.DENSE_VEGETATION
    if freq is not None:
        # a fall-back to a higher band than this one's own frequency (0.05 GHz: the file's
        # 0.1 GHz quantisation)
        gap[np.nan_to_num(freq, nan=-np.inf) > BAND_GHZ[band] + 0.05] = schema.RFI
    frozen = (mask & FROZEN_BIT) != 0
    if ts is not None:
        frozen |= np.nan_to_num(ts, nan=np.inf) < FREEZING_K
    gap[frozen] = schema.FROZEN
    gap[~passed] = schema.NO_OVERPASS
    if land is not None:
        gap[~land] = schema.NOT_LAND
    return gap


def read_lprm(path: str | Path, *, band: str = "c1",
              region: Iterable[float] | None = None,
              land_grid: str | Path | None = None, require_data: bool = True
              ) -> xr.Dataset:
    """Read one LPRM AMSR-E/AMSR2 L3 daily file into the canonical gridded form.

    Parameters
    ----------
    path
        The ``.nc4`` file.
    band
        ``"c1"`` (6.9 GHz; AMSR-E's ``soil_moisture_c``), ``"c2"`` (7.3 GHz, AMSR2 only)
        or ``"x"`` (10.7 GHz).
    region
        Optional ``(west, south, east, north)`` box in degrees.
    land_grid
        Optional CCI/C3S ``grid.nc`` whose ``subset_flag`` gives the land mask; water
        cells then become ``not_land`` and a ``land`` variable is added.

    Returns
    -------
    xarray.Dataset
        ``amsr_sm`` (m3 m-3, float32), ``gap_mask`` (int8 CF flags), ``amsr_sm_error``
        (m3 m-3, float32, where the file has the band's error), optional ``land``;
        coordinates ``time`` (one day), ``lat`` ascending, ``lon`` in [-180, 180),
        ``sensor(time)``.

    Raises
    ------
    MissingFileError, FormatError, MissingVariableError, UnitsError,
    EmptySelectionError, OutOfRangeError
    """
    path = Path(path)
    key = str(band).lower()
    if key not in BANDS:
        raise OutOfRangeError(f"unknown band {band!r}; choose one of {', '.join(BANDS)}", path)
    box = nc.check_region(region)
    with nc.open_netcdf(path) as ds:
        var = next((v for v in BANDS[key] if v in ds.variables), BANDS[key][0])
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        lat = np.asarray(nc.require_variable(ds, "Latitude", path)[:], np.float64)
        lon = nc.wrap_lon(np.asarray(nc.require_variable(ds, "Longitude", path)[:]))
        v = nc.require_variable(ds, var, path)
        dims = v.dimensions
        if set(dims) != {"Longitude", "Latitude"}:
            raise FormatError(f"dimensions {dims}, expected (Longitude, Latitude)", path, var)
        factor = nc.canonical_units(getattr(v, "units", None), schema.UNITS[schema.AMSR_SM],
                                    path, var)

        # read only the file rows/columns that hold the region (the chunks are still
        # decompressed whole, but nothing outside the window is converted or kept)
        r, c = _window(lat, lon, box)
        lat, lon = lat[r], lon[c]

        def grid(name: str, raw: bool = False) -> np.ndarray:
            x = nc.require_variable(ds, name, path)
            lon_first = x.dimensions[0] == "Longitude"
            index = (c, r) if lon_first else (r, c)
            a = nc.read_raw(x, index) if raw else nc.read_float(x, index)
            return a.T if lon_first else a

        sm = grid(var) * factor
        sm[(sm < 0) | (sm > 1)] = np.nan  # outside the physical range is not a retrieval
        mask = grid("mask", raw=True).astype(np.int64) if "mask" in ds.variables \
            else np.zeros(sm.shape, np.int64)
        scan = grid("scantime") if "scantime" in ds.variables else np.ones(sm.shape)
        ename = f"{var}_error"
        err = (band_error(grid(ename, raw=True), ds.variables[ename], path, ename)
               if ename in ds.variables else None)
        vname = next((n for n in OPT_DEPTH[key] if n in ds.variables), None)
        extra = {"ts": grid("ts") if "ts" in ds.variables else None,
                 "vod": grid(vname) if vname else None,
                 "freq": grid("frequency_map") if "frequency_map" in ds.variables else None}

    # canonical orientation: lat ascending, lon ascending in [-180, 180)
    ilat = np.argsort(lat)
    ilon = np.argsort(lon)
    lat, lon = lat[ilat], lon[ilon]
    ii, jj = nc.region_index(lat, lon, box, path)
    rows, cols = np.ix_(ilat[ii], ilon[jj])
    lat, lon = lat[ii], lon[jj]
    sm, mask, scan = (a[rows, cols] for a in (sm, mask, scan))
    err = None if err is None else err[rows, cols]
    extra = {k: None if a is None else a[rows, cols] for k, a in extra.items()}

    land = None
    if land_grid is not None:
        land = nc.land_mask(land_grid, lat, lon)
    gap = gap_categories(sm, scan=scan, mask=mask, band=key, land=land, **extra)
    sm[gap != schema.OBSERVED] = np.nan
    observed = np.isfinite(sm)
    passed = np.isfinite(scan) & (scan > 0)
    if require_data:
        nc.not_empty(sm, f"band {key} in the selected region" if box else f"band {key}", path,
                     var)

    date = date_from_name(path)
    if date is None:
        if not passed.any():
            raise FormatError("no date in the file name and no scantime to take it from",
                              path, "scantime")
        date = (SCANTIME_EPOCH + pd.to_timedelta(np.nanmedian(scan[passed]), "s")).normalize()
    sensor = sensor_from_name(path, attrs)
    if sensor == schema.SENSOR_NONE:
        sensor = schema.sensor_for_date(date)

    out = xr.Dataset(
        {
            schema.AMSR_SM: (schema.GRID_DIMS, sm[None].astype(np.float32),
                             {"units": schema.UNITS[schema.AMSR_SM],
                              "long_name": schema.LONG_NAMES[schema.AMSR_SM],
                              "source_variable": var}),
            schema.GAP_MASK: (schema.GRID_DIMS, gap[None], schema.gap_mask_attrs()),
        },
        coords={schema.TIME: [date], schema.LAT: lat, schema.LON: lon,
                schema.SENSOR: (schema.TIME, np.array([sensor], np.int8),
                                schema.sensor_attrs())},
        attrs={"source": str(path), "product": "LPRM L3 daily", "band": key},
    )
    if err is not None:  # the error of an observation only, like amsr_sm
        err[~observed] = np.nan
        out[schema.AMSR_SM_ERROR] = (schema.GRID_DIMS, err[None].astype(np.float32),
                                     schema.amsr_error_attrs(ename))
    if land is not None:
        out[schema.LAND] = ((schema.LAT, schema.LON), land,
                            {"long_name": schema.LONG_NAMES[schema.LAND]})
    log.debug("read LPRM %s band %s: %d observed cells", path.name, key, int(observed.sum()))
    return out


def _window(lat: np.ndarray, lon: np.ndarray, box) -> tuple[slice, slice]:
    """File index ranges (latitude, longitude) that hold every cell of ``box`` (all when
    there is none or nothing matches: the region check then says why)."""
    if box is None:
        return slice(None), slice(None)
    w, s, e, n = box
    i = np.flatnonzero((lat >= s) & (lat <= n))
    j = np.flatnonzero((lon >= w) & (lon <= e))
    if i.size == 0 or j.size == 0:
        return slice(None), slice(None)
    return slice(int(i.min()), int(i.max()) + 1), slice(int(j.min()), int(j.max()) + 1)


def read_lprm_files(paths: str | Path | Iterable[str | Path], *, band: str = "c1",
                    region: Iterable[float] | None = None,
                    land_grid: str | Path | None = None, start=None, end=None,
                    progress: bool = False, require_data: bool = True) -> xr.Dataset:
    """Read many LPRM daily files (a list, a glob or a folder of ``*.nc4``) into one series.

    ``start``/``end`` select days by the date in the file names; a window outside the
    files raises :class:`OutOfRangeError`. Days are sorted; a day present twice (for
    example an ascending and a descending file) raises :class:`FormatError`.
    """
    files = nc.select_by_date(nc.resolve_paths(paths, "*.nc*"), start, end, date_from_name)
    parts = [read_lprm(f, band=band, region=region, land_grid=land_grid,
                       require_data=require_data)
             for f in tqdm(files, desc="LPRM files", disable=not progress or len(files) < 2)]
    out = xr.concat(parts, dim=schema.TIME, data_vars="minimal", coords="minimal",
                    compat="override", join="override").sortby(schema.TIME)
    times = pd.DatetimeIndex(out[schema.TIME].values)
    if times.has_duplicates:
        raise FormatError(f"several files for the same day(s) "
                          f"{sorted({f'{t:%Y-%m-%d}' for t in times[times.duplicated()]})}; "
                          "read one orbit direction at a time", files[0].parent)
    out.attrs = {**parts[0].attrs, "source": ", ".join(str(f) for f in files)}
    return out
