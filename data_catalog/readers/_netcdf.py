"""Small helpers shared by the netCDF readers: opening with typed errors, units, flags.

Every reader goes through :func:`open_netcdf` so a missing, truncated or non-netCDF file
always raises :class:`~data_catalog.errors.MissingFileError` or
:class:`~data_catalog.errors.FormatError` naming the file, never a bare ``OSError``.
"""

from __future__ import annotations

import ast
import glob as _glob
import re
from collections.abc import Iterable
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from data_catalog import schema
from data_catalog.errors import (
    EmptySelectionError,
    FormatError,
    MissingFileError,
    MissingVariableError,
    OutOfRangeError,
    UnitsError,
)
from data_catalog.grid import nearest_index

#: Fill values written without a ``_FillValue`` attribute by some producers.
BARE_FILL_VALUES = (-9999.0,)

Region = tuple[float, float, float, float]


def open_netcdf(path: str | Path) -> netCDF4.Dataset:
    """Open a netCDF/HDF5 file read-only with typed errors.

    Raises
    ------
    MissingFileError
        The path does not exist.
    FormatError
        The file is truncated, empty or not netCDF/HDF5.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError("file not found", p)
    if p.is_dir():
        raise FormatError("expected a netCDF file, found a folder", p)
    try:
        return netCDF4.Dataset(p, "r")
    except OSError as exc:  # netCDF4 reports HDF errors and unknown formats as OSError
        raise FormatError(f"not a readable netCDF file (truncated or another format: {exc})",
                          p) from exc


def require_variable(ds: netCDF4.Dataset, name: str, path: str | Path) -> netCDF4.Variable:
    """Return ``ds[name]`` or raise :class:`MissingVariableError` listing what the file has."""
    if name not in ds.variables:
        have = ", ".join(sorted(ds.variables)) or "none"
        raise MissingVariableError(f"variable not in file (it has: {have})", path, name)
    return ds.variables[name]


def _read(var: netCDF4.Variable, index):
    """``var[index]`` with a truncated or damaged file as :class:`FormatError`."""
    try:
        return var[index]
    except (OSError, RuntimeError) as exc:  # netCDF4 reports HDF errors as these
        raise FormatError(f"cannot read the data (truncated or damaged file: {exc})",
                          var.group().filepath(), var.name) from exc


def read_float(var: netCDF4.Variable, index=slice(None)) -> np.ndarray:
    """Read a variable as float64 with every fill value (CF or bare -9999) as NaN."""
    data = _read(var, index)
    arr = np.ma.filled(np.ma.asarray(data).astype(np.float64), np.nan)
    for fill in BARE_FILL_VALUES:
        arr[arr == fill] = np.nan
    return arr


def read_raw(var: netCDF4.Variable, index=slice(None)) -> np.ndarray:
    """Read a flag-like variable without masking or scaling (the bits as stored)."""
    var.set_auto_maskandscale(False)
    try:
        return np.asarray(_read(var, index))
    finally:
        var.set_auto_maskandscale(True)


def canonical_units(units: str | None, expected: str, path: str | Path,
                    variable: str) -> float:
    """Factor that converts values in ``units`` to the canonical ``expected`` unit.

    ``percent`` converts to ``m3 m-3`` by 0.01 (volumetric percent, LPRM) and is taken as
    ``percent of saturation`` where that is what the product measures (ASCAT, CCI ACTIVE).

    Raises
    ------
    UnitsError
        Units are missing or not a known spelling, or cannot become ``expected``.
    """
    if units is None or not str(units).strip():
        raise UnitsError(f"no units attribute (expected {expected!r}); pass units=... "
                         "if the product documents them", path, variable)
    key = str(units).strip()
    known = schema.UNIT_ALIASES.get(key) or schema.UNIT_ALIASES.get(key.lower())
    if known is None:
        raise UnitsError(f"unknown units {units!r} (known: "
                         f"{', '.join(sorted(schema.UNIT_ALIASES))})",
                         path, variable)
    canon, factor = known
    if canon == expected:
        return factor
    if canon == "percent" and expected == "m3 m-3":
        return factor * 0.01
    if canon == "percent" and expected == "percent of saturation":
        return factor
    raise UnitsError(f"units {units!r} cannot be converted to {expected!r}", path, variable)


def parse_list_attr(value) -> list:
    """An attribute that may be an array, a space separated string or a Python list repr."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return list(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                text = text.strip("[]")
        return [t for t in re.split(r"[\s,]+", text) if t]
    return list(np.atleast_1d(value).tolist())


def flag_bits(values, meanings) -> dict[int, str]:
    """Map each single flag *bit* to its meaning from CF ``flag_values``/``flag_meanings``.

    Two conventions occur in ESA CCI / C3S files:

    * images and older cell files list real values (``0 1 2 4 8 ... 127``), with explicit
      ``combination_of_flag_values_...`` entries; powers of two are the bits;
    * v202505 cell files list bit *positions* ``1..n`` (``flag_values: [1 2 3 ...]``) whose
      meaning applies to bit ``2**(k-1)``.
    """
    vals = [int(v) for v in parse_list_attr(values)]
    names = [str(m) for m in parse_list_attr(meanings)]
    if not vals or len(vals) != len(names):
        return {}
    positional = vals == list(range(1, len(vals) + 1)) and len(vals) > 3
    out: dict[int, str] = {}
    for v, m in zip(vals, names, strict=True):
        bit = 1 << (v - 1) if positional else v
        if bit > 0 and bit & (bit - 1) == 0 and not m.startswith("combination"):
            out[bit] = m
    return out


def fill_values(var) -> set[int]:
    """Integer codes that mean "no data" in a flag variable: ``_FillValue``,
    ``missing_value`` and any ``flag_values`` entry whose meaning is ``NaN``."""
    out = set()
    for attr in ("_FillValue", "missing_value"):
        if hasattr(var, attr):
            out |= {int(v) for v in np.atleast_1d(getattr(var, attr))}
    vals = parse_list_attr(getattr(var, "flag_values", None))
    names = parse_list_attr(getattr(var, "flag_meanings", None))
    if len(vals) == len(names):
        out |= {int(v) for v, m in zip(vals, names, strict=True)
                if str(m).lower() == "nan" and int(v) != 0}
    return out


def meaning_category(meaning: str) -> int | None:
    """Schema gap category of one flag meaning, or None for a meaning that is not a gap."""
    m = meaning.lower()
    words = set(re.split(r"[^a-z0-9]+", m))
    if m in ("nan", "no_data_inconsistency_detected", "not_used", "default"):
        return None
    if "barren" in m:  # an advisory: the value is still there
        return None
    if words & {"frozen", "snow", "ice"} or "below_zero" in m:
        return schema.FROZEN
    if "vegetation" in m:
        return schema.DENSE_VEGETATION
    if words & {"rfi", "radio", "interference"}:
        return schema.RFI
    if "no_observation" in m or "coverage" in m or "no_data" in m:
        return schema.NO_OVERPASS
    if "water" in m or "ocean" in m or "not_land" in m:
        return schema.NOT_LAND
    return schema.INVALID


# Order in which categories win when one pixel carries several flag bits.
CATEGORY_PRIORITY = (schema.NOT_LAND, schema.FROZEN, schema.RFI, schema.DENSE_VEGETATION,
                     schema.NO_OVERPASS, schema.INVALID)


def decode_flags(raw: np.ndarray, bits: dict[int, str]) -> np.ndarray:
    """Gap category (int8) per element from flag bits; 0 where no gap bit is set."""
    out = np.zeros(raw.shape, np.int8)
    raw = np.asarray(raw).astype(np.int64)
    per_cat: dict[int, np.ndarray] = {}
    known = 0
    for bit, meaning in bits.items():
        known |= bit
        cat = meaning_category(meaning)
        if cat is None:
            continue
        hit = (raw & bit) != 0
        per_cat[cat] = per_cat.get(cat, np.zeros(raw.shape, bool)) | hit
    unknown = (raw & ~known) != 0  # bits the file does not explain are not trusted as valid
    per_cat[schema.INVALID] = per_cat.get(schema.INVALID, np.zeros(raw.shape, bool)) | unknown
    for cat in reversed(CATEGORY_PRIORITY):
        if cat in per_cat:
            out[per_cat[cat]] = cat
    return out


# Sensor names used in CCI / C3S sensor bit masks, mapped to the schema radiometer.
SENSOR_NAME_TO_SCHEMA = {"AMSRE": schema.SENSOR_AMSRE, "AMSR-E": schema.SENSOR_AMSRE,
                         "AMSR2": schema.SENSOR_AMSR2}
#: The bit values of ESA CCI SM / C3S ``sensor`` (fixed across versions).
CCI_SENSOR_BITS = {1: "SMMR", 2: "SSMI", 4: "TMI", 8: "AMSRE", 16: "WindSat", 32: "AMSR2",
                   64: "SMOS", 128: "AMIWS", 256: "ASCATA", 512: "ASCATB", 1024: "SMAP",
                   2048: "MODEL", 4096: "GPM", 8192: "FY3B", 16384: "FY3D", 32768: "ASCATC",
                   65536: "FY3C"}
AMSRE_BIT, AMSR2_BIT = 8, 32


def sensor_bits_from_attrs(values, meanings) -> dict[int, str]:
    """Bit -> sensor name from a ``sensor`` variable's attributes (fallback: CCI table)."""
    bits = flag_bits(values, meanings)
    return {**CCI_SENSOR_BITS, **{b: m for b, m in bits.items() if m.upper() != "NAN"}}


def sensor_names(mask: int, bits: dict[int, str] | None = None) -> list[str]:
    """Names of the sensors set in one CCI/C3S sensor bit mask."""
    bits = bits or CCI_SENSOR_BITS
    return [name for bit, name in sorted(bits.items()) if int(mask) & bit]


def schema_sensor(mask: int) -> int:
    """Schema radiometer of a CCI sensor bit mask (AMSR2 wins over AMSR-E; else none)."""
    if int(mask) & AMSR2_BIT:
        return schema.SENSOR_AMSR2
    if int(mask) & AMSRE_BIT:
        return schema.SENSOR_AMSRE
    return schema.SENSOR_NONE


def check_region(region: Iterable[float] | None) -> Region | None:
    """Validate a (west, south, east, north) box in degrees."""
    if region is None:
        return None
    try:
        w, s, e, n = (float(v) for v in region)
    except (TypeError, ValueError) as exc:
        raise OutOfRangeError(f"region must be (west, south, east, north), got {region!r}") \
            from exc
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise OutOfRangeError(f"region {region!r} is not a valid (W, S, E, N) box within "
                              "-180..180, -90..90 with W < E and S < N")
    return w, s, e, n


def region_index(lat: np.ndarray, lon: np.ndarray, region: Region | None, path: Path
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``lat``/``lon`` cell centres inside the region (all when None)."""
    if region is None:
        return np.arange(lat.size), np.arange(lon.size)
    w, s, e, n = region
    ii = np.flatnonzero((lat >= s) & (lat <= n))
    jj = np.flatnonzero((lon >= w) & (lon <= e))
    if ii.size == 0 or jj.size == 0:
        raise OutOfRangeError(
            f"region {region} lies outside the data (lat {lat.min():.3f}..{lat.max():.3f}, "
            f"lon {lon.min():.3f}..{lon.max():.3f})", path)
    return ii, jj


def wrap_lon(lon: np.ndarray) -> np.ndarray:
    """Longitudes into [-180, 180)."""
    return ((np.asarray(lon, np.float64) + 180.0) % 360.0) - 180.0


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km (mean Earth radius 6371.0088 km)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def nc_times(var: netCDF4.Variable, values: np.ndarray | None = None,
             path: str | Path | None = None) -> pd.DatetimeIndex:
    """Decode a CF time variable into a naive (UTC) DatetimeIndex, fast for day units."""
    units = getattr(var, "units", None)
    vals = np.asarray(var[:] if values is None else values, np.float64)
    if not units or " since " not in units:
        raise FormatError(f"time units {units!r} are not CF 'UNIT since DATE'", path,
                          var.name)
    unit, _, origin = units.partition(" since ")
    origin = origin.strip().replace(" UTC", "").replace("UTC", "").strip()
    scale = {"days": "D", "day": "D", "hours": "h", "hour": "h", "seconds": "s",
             "second": "s", "minutes": "min"}.get(unit.strip().lower())
    if scale is None:
        raise FormatError(f"time unit {unit!r} not supported", path, var.name)
    try:
        t0 = pd.Timestamp(origin)
    except ValueError as exc:
        raise FormatError(f"time origin {origin!r} is not a date", path, var.name) from exc
    if t0.tzinfo is not None:
        t0 = t0.tz_convert("UTC").tz_localize(None)
    ok = np.isfinite(vals)
    out = np.full(vals.shape, np.datetime64("NaT"), "datetime64[ns]")
    # float day counts carry ~1e-6 s of rounding noise: round to the millisecond
    out[ok] = (t0 + pd.to_timedelta(vals[ok], unit=scale)).round("ms").to_numpy()
    return pd.DatetimeIndex(out)


def not_empty(values: np.ndarray, what: str, path: Path, variable: str) -> None:
    """Raise :class:`EmptySelectionError` when ``values`` has no finite element."""
    if values.size == 0 or not np.isfinite(values).any():
        raise EmptySelectionError(f"{what} holds no valid value", path, variable)


def land_mask(grid: str | Path, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Boolean (lat, lon) land mask on the given centres from a CCI/C3S ``grid.nc``.

    The ESA CCI SM / C3S time-series ``grid.nc`` holds every 0.25 degree point with
    ``subset_flag`` (0 water, 1 land); a WARP5 grid's ``land_flag`` works the same way
    when the target grid matches it. Points without a grid point within half a cell are
    taken as not land.
    """
    path = Path(grid)
    with open_netcdf(path) as ds:
        name = "subset_flag" if "subset_flag" in ds.variables else "land_flag"
        flag = read_raw(require_variable(ds, name, path))
        glat = np.asarray(require_variable(ds, "lat", path)[:], np.float64)
        glon = wrap_lon(np.asarray(require_variable(ds, "lon", path)[:], np.float64))
    ulat, ilat = np.unique(np.round(glat, 4), return_inverse=True)
    ulon, ilon = np.unique(np.round(glon, 4), return_inverse=True)
    full = np.zeros((ulat.size, ulon.size), bool)
    full[ilat, ilon] = flag == 1
    out = np.zeros((lat.size, lon.size), bool)
    ii, jj = nearest_index(ulat, lat), nearest_index(ulon, lon)
    ok_i, ok_j = ii >= 0, jj >= 0
    out[np.ix_(ok_i, ok_j)] = full[np.ix_(ii[ok_i], jj[ok_j])]
    return out


def resolve_paths(paths: str | Path | Iterable[str | Path], pattern: str = "*.nc"
                  ) -> list[Path]:
    """A file, a glob pattern, a folder (all ``*.nc`` in it) or a list of those."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        text = str(item)
        if any(ch in text for ch in "*?["):
            hits = sorted(Path(p) for p in _glob.glob(text))
            if not hits:
                raise MissingFileError("no file matches this pattern", text)
            out.extend(hits)
        elif Path(text).is_dir():
            hits = sorted(Path(text).glob(pattern))
            if not hits:
                raise MissingFileError(f"folder holds no {pattern} file", text)
            out.extend(hits)
        else:
            out.append(Path(text))
    if not out:
        raise MissingFileError("no input files given")
    return out


def select_by_date(files: list[Path], start, end, date_of) -> list[Path]:
    """Files whose date (``date_of(path)``, None = keep) lies in ``start..end``."""
    if start is None and end is None:
        return files
    t0 = pd.Timestamp(start) if start is not None else pd.Timestamp.min
    t1 = pd.Timestamp(end) if end is not None else pd.Timestamp.max
    dated = [(f, date_of(f)) for f in files]
    keep = [f for f, d in dated if d is None or t0 <= d <= t1]
    if not keep:
        days = sorted(d for _, d in dated if d is not None)
        span = f"{days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d}" if days else "no dated files"
        raise OutOfRangeError(f"no file between {t0:%Y-%m-%d} and {t1:%Y-%m-%d} "
                              f"(files cover {span})", files[0].parent)
    return keep
