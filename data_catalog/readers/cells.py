"""Time-series cell files: ESA CCI / C3S / QA4SM orthogonal and H SAF ASCAT ragged.

Both store the globe in 5 x 5 degree cells, one netCDF file per cell, named by the cell
number (``0165.nc``, ``H110_1324.nc``):

* **orthogonal** (CCI, C3S, QA4SM): ``sm[locations, time]`` with ``lat``, ``lon``,
  ``location_id`` (the grid point index) per location and a shared ``time`` axis; the
  folder's ``grid.nc`` lists every grid point with its cell;
* **ragged** (H SAF ASCAT H25, H108-H111, H119): CF contiguous ragged arrays, all
  observations in ``obs`` and ``row_size[locations]`` saying how many belong to each
  location; the grid is the TU Wien WARP5 grid file (``TUW_WARP5_grid_info_2_*.nc``).

:func:`read_cell_series` returns the canonical point form: a DataFrame indexed by a
tz-aware UTC ``time`` with column ``sm`` (m3 m-3 for CCI PASSIVE/COMBINED, percent of
saturation for ACTIVE and ASCAT) plus every other per-observation variable of the product
(``flag``, ``sensor``, ``gapmask``, ``frozenmask``, ``sm_original``, ``ssf``, ...); its
``attrs`` carry ``lat``, ``lon``, ``gpi``, ``distance_km``, ``units`` and ``source``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.errors import (
    EmptySelectionError,
    FormatError,
    MissingFileError,
    OutOfRangeError,
)
from data_catalog.readers import _netcdf as nc

log = logging.getLogger(__name__)

#: Variables describing the locations, not the observations.
LOCATION_VARIABLES = {"lat", "lon", "alt", "location_id", "location_description", "row_size",
                      "time", "doy", "crs"}


@dataclass(frozen=True)
class CellGrid:
    """Grid points of a cell-file product: index, position, cell and land flag."""

    path: Path
    gpi: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    cell: np.ndarray
    land: np.ndarray

    def nearest(self, lat: float, lon: float, *, land_only: bool = True
                ) -> tuple[int, float]:
        """Position (array index) and distance in km of the grid point nearest a point."""
        sel = np.flatnonzero((np.abs(self.lat - lat) <= 1.0)
                             & (np.abs(((self.lon - lon + 180) % 360) - 180) <= 1.0
                                / max(np.cos(np.radians(min(abs(lat), 89.0))), 0.02)))
        if land_only:
            sel = sel[self.land[sel]]
        if sel.size == 0:
            raise OutOfRangeError(f"no {'land ' if land_only else ''}grid point within about "
                                  f"100 km of ({lat}, {lon})", self.path)
        d = nc.haversine_km(lat, lon, self.lat[sel], self.lon[sel])
        k = int(np.argmin(d))
        return int(sel[k]), float(d[k])


@functools.lru_cache(maxsize=8)
def load_grid(path: str | Path) -> CellGrid:
    """Read a CCI/C3S ``grid.nc`` or a WARP5 grid file (cached per path)."""
    p = Path(path)
    with nc.open_netcdf(p) as ds:
        lat = np.asarray(nc.require_variable(ds, "lat", p)[:], np.float64)
        lon = nc.wrap_lon(nc.require_variable(ds, "lon", p)[:])
        gpi = nc.read_raw(nc.require_variable(ds, "gpi", p)).astype(np.int64)
        cell = nc.read_raw(nc.require_variable(ds, "cell", p)).astype(np.int64)
        land_name = next((n for n in ("subset_flag", "land_flag") if n in ds.variables), None)
        land = (nc.read_raw(ds.variables[land_name]) == 1) if land_name \
            else np.ones(lat.shape, bool)
    return CellGrid(p, gpi, lat, lon, cell, land)


def find_grid(folder: Path, grid: str | Path | None = None) -> Path | None:
    """The grid file: ``grid`` if given, else ``grid.nc`` or a WARP5 file near the folder."""
    if grid is not None:
        g = Path(grid)
        if not g.exists():
            raise MissingFileError("grid file not found", g)
        return g
    for cand in (folder / "grid.nc", *sorted(folder.glob("*grid*.nc")),
                 *sorted(folder.parent.glob("grid/*.nc")), *sorted(folder.glob("grid/*.nc"))):
        if cand.exists():
            return cand
    return None


def cell_files(folder: Path) -> dict[int, Path]:
    """Cell number -> file for every ``NNNN.nc`` / ``PREFIX_NNNN.nc`` in the folder."""
    out: dict[int, Path] = {}
    for f in sorted(folder.glob("*.nc")):
        m = re.fullmatch(r"(?:.*_)?(\d{4})\.nc", f.name)
        if m:
            out[int(m.group(1))] = f
    return out


def grid_points_in_bbox(source: str | Path, bbox: Iterable[float], *,
                        land_only: bool = True) -> pd.DataFrame:
    """Grid points inside a ``(west, south, east, north)`` box.

    Parameters
    ----------
    source
        A grid file, or a cell folder (its ``grid.nc`` or nearby WARP5 grid is used).
    bbox
        ``(west, south, east, north)`` in degrees.
    land_only
        Only points the grid flags as land.

    Returns
    -------
    pandas.DataFrame
        Columns ``gpi, lat, lon, cell``, sorted by gpi.
    """
    box = nc.check_region(bbox)
    src = Path(source)
    if not src.exists():
        raise MissingFileError("grid file or cell folder not found", src)
    gpath = src if src.is_file() else find_grid(src)
    if gpath is None:
        raise MissingFileError("no grid file (grid.nc or a WARP5 grid) in or beside folder",
                               src)
    g = load_grid(gpath)
    w, s, e, n = box
    sel = (g.lat >= s) & (g.lat <= n) & (g.lon >= w) & (g.lon <= e)
    if land_only:
        sel &= g.land
    if not sel.any():
        raise EmptySelectionError(f"no {'land ' if land_only else ''}grid point in {box}",
                                  gpath)
    return pd.DataFrame({"gpi": g.gpi[sel], "lat": g.lat[sel], "lon": g.lon[sel],
                         "cell": g.cell[sel]}).sort_values("gpi", ignore_index=True)


def _locations(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with nc.open_netcdf(path) as ds:
        lat = np.asarray(nc.require_variable(ds, "lat", path)[:], np.float64)
        lon = nc.wrap_lon(nc.require_variable(ds, "lon", path)[:])
        ids = (nc.read_raw(ds.variables["location_id"]).astype(np.int64)
               if "location_id" in ds.variables else np.arange(lat.size))
    return lat, lon, ids


def read_cell_series(folder: str | Path, lat: float, lon: float, *,
                     grid: str | Path | None = None, max_dist_km: float = 30.0,
                     units: str | None = None, sm_kind: str | None = None,
                     start=None, end=None) -> pd.DataFrame:
    """Time series of the grid point nearest ``(lat, lon)`` from a folder of cell files.

    Parameters
    ----------
    folder
        Folder of cell files (orthogonal CCI/C3S or ragged H SAF; detected per file).
    lat, lon
        The point in degrees.
    grid
        Grid file; default ``grid.nc`` in the folder or a WARP5 grid beside it. Without a
        grid every cell file's locations are searched.
    max_dist_km
        The nearest grid point must be closer than this.
    units
        Units of ``sm`` where the file has none (ESA CCI v09.2 cell files).
    sm_kind
        ``"volumetric"`` (m3 m-3) or ``"saturation"`` (percent of saturation); default:
        saturation for ASCAT / ACTIVE products (percent units), else volumetric.
    start, end
        Optional time window (inclusive days); a window outside the data raises
        :class:`OutOfRangeError`.

    Returns
    -------
    pandas.DataFrame
        Canonical point series (see module docstring).
    """
    folder = Path(folder)
    if not folder.exists():
        raise MissingFileError("cell folder not found", folder)
    if not (-90 <= lat <= 90 and -180 <= lon <= 360):
        raise OutOfRangeError(f"point ({lat}, {lon}) is not a valid latitude/longitude")
    lon = float(nc.wrap_lon(lon))
    files = cell_files(folder)
    if not files:
        raise MissingFileError("folder holds no cell files (NNNN.nc)", folder)
    gpath = find_grid(folder, grid)
    candidates: list[Path]
    if gpath is not None:
        g = load_grid(gpath)
        k, _ = g.nearest(lat, lon, land_only=False)
        # the point's own cell first, then neighbouring cells that have files
        near = np.flatnonzero((np.abs(g.lat - lat) <= 0.5) & (np.abs(g.lon - lon) <= 0.5))
        cells = [int(g.cell[k])] + sorted({int(c) for c in g.cell[near]} - {int(g.cell[k])})
        candidates = [files[c] for c in cells if c in files]
        if not candidates:
            raise OutOfRangeError(f"point ({lat}, {lon}) lies in cell {int(g.cell[k]):04d}, "
                                  f"which has no file here (cells present: "
                                  f"{', '.join(f'{c:04d}' for c in sorted(files))})", folder)
    else:
        candidates = list(files.values())
    best: tuple[float, Path, int, float, float, int] | None = None
    for f in candidates:
        flat, flon, ids = _locations(f)
        d = nc.haversine_km(lat, lon, flat, flon)
        i = int(np.argmin(d))
        if best is None or d[i] < best[0]:
            best = (float(d[i]), f, i, float(flat[i]), float(flon[i]), int(ids[i]))
    assert best is not None
    dist, path, loc, plat, plon, gpi = best
    if dist > max_dist_km:
        raise OutOfRangeError(f"nearest grid point ({plat:.3f}, {plon:.3f}) is {dist:.1f} km "
                              f"from ({lat}, {lon}), more than max_dist_km={max_dist_km}",
                              path)
    frame, sm_units, product = _read_location(path, loc, units, sm_kind)
    if not frame["sm"].notna().any():
        raise EmptySelectionError(f"grid point {gpi} has no valid sm at all", path, "sm")
    # a window that holds only gaps is returned as such: gaps are data here
    if start is not None or end is not None:
        t0 = pd.Timestamp(start, tz="UTC") if start is not None else frame.index.min()
        t1 = (pd.Timestamp(end, tz="UTC") + pd.Timedelta("1D") - pd.Timedelta("1ns")
              if end is not None else frame.index.max())
        sub = frame.loc[(frame.index >= t0) & (frame.index <= t1)]
        if sub.empty:
            raise OutOfRangeError(f"window {t0:%Y-%m-%d}..{t1:%Y-%m-%d} is outside the data "
                                  f"({frame.index.min():%Y-%m-%d}.."
                                  f"{frame.index.max():%Y-%m-%d})", path)
        frame = sub
    frame.attrs.update({"lat": plat, "lon": plon, "gpi": gpi, "distance_km": dist,
                        "units": sm_units, "source": str(path), "product": product})
    return frame


def _sm_target(product: str, units: str | None, sm_kind: str | None) -> str:
    if sm_kind is not None:
        if sm_kind not in ("volumetric", "saturation"):
            raise OutOfRangeError(f"sm_kind must be 'volumetric' or 'saturation', "
                                  f"got {sm_kind!r}")
        return "m3 m-3" if sm_kind == "volumetric" else "percent of saturation"
    text = product.upper()
    if "ACTIVE" in text or "ASCAT" in text or "H SAF" in text or "H-SAF" in text:
        return "percent of saturation"
    if units is not None and str(units).strip().lower() in ("%", "percent", "percentage",
                                                             "percentage (%)"):
        return "percent of saturation"  # percent in a cell file: degree of saturation
    return "m3 m-3"


def _read_location(path: Path, loc: int, units: str | None, sm_kind: str | None
                   ) -> tuple[pd.DataFrame, str, str]:
    with nc.open_netcdf(path) as ds:
        attrs = {k: str(ds.getncattr(k)) for k in ds.ncattrs()}
        product = " ".join(attrs[k] for k in ("product_full_name", "product_name", "title",
                                              "product", "project", "id")
                           if attrs.get(k))
        smv = nc.require_variable(ds, "sm", path)
        tvar = nc.require_variable(ds, "time", path)
        ragged = "row_size" in ds.variables
        if ragged:
            rs = nc.read_raw(ds.variables["row_size"]).astype(np.int64)
            stop = np.cumsum(rs)
            index: slice | tuple = slice(int(stop[loc] - rs[loc]), int(stop[loc]))
            times = nc.nc_times(tvar, np.asarray(tvar[index], np.float64), path)
            obs_dim = tvar.dimensions[0]
            names = [n for n, v in ds.variables.items()
                     if v.dimensions == (obs_dim,) and n not in LOCATION_VARIABLES]
        else:
            if smv.dimensions != ("locations", "time") and smv.dimensions[0] != "locations":
                raise FormatError(f"sm dimensions {smv.dimensions}, expected "
                                  "(locations, time) or a ragged obs dimension", path, "sm")
            index = (loc, slice(None))
            times = nc.nc_times(tvar, path=path)
            names = [n for n, v in ds.variables.items()
                     if v.dimensions == smv.dimensions and n not in LOCATION_VARIABLES]
        sm_units = getattr(smv, "units", None) or units
        target = _sm_target(product, sm_units, sm_kind)
        factor = nc.canonical_units(sm_units, target, path, "sm")
        cols: dict[str, np.ndarray] = {}
        for n in names:
            v = ds.variables[n]
            if n == "sm" or v.dtype.kind == "f" or hasattr(v, "scale_factor"):
                col = nc.read_float(v, index)
            elif v.dtype.kind in "SU" or v.dtype is str:
                col = np.asarray(v[index]).astype(str)
            else:
                raw = nc.read_raw(v, index)
                fill = getattr(v, "_FillValue", getattr(v, "missing_value", None))
                bad = raw == -9999
                if fill is not None:
                    bad |= raw == np.asarray(fill).astype(raw.dtype)
                col = (pd.Series(np.where(bad, np.nan, raw.astype(np.float64)))
                       .astype("Int64").array if bad.any() else raw)
            cols[n] = col
    cols["sm"] = (np.asarray(cols["sm"], np.float64) * factor).astype(np.float32)
    idx = pd.DatetimeIndex(times).tz_localize("UTC").rename("time")
    frame = pd.DataFrame(cols, index=idx)
    frame = frame[["sm", *[c for c in frame.columns if c != "sm"]]]
    frame = frame.loc[frame.index.notna()].sort_index(kind="stable")
    name = next((attrs[k] for k in ("product_full_name", "product_name", "title", "product")
                 if attrs.get(k)), path.name)
    return frame, target, name
