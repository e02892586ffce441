"""ESA CCI SM and C3S daily image files (CF netCDF, one global 0.25 degree day each).

``C3S-SOILMOISTURE-L3S-SSMV-PASSIVE-DAILY-YYYYMMDD000000-...nc`` and the ESA CCI
``ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-YYYYMMDD000000-fv0X.Y.nc`` files hold ``sm``,
``flag`` and ``sensor`` as ``(time=1, lat, lon)`` with latitude north to south.

* PASSIVE becomes ``amsr_sm`` (m3 m-3), ACTIVE ``ascat_sm`` (percent of saturation),
  COMBINED ``combined_sm`` (m3 m-3);
* ``flag`` bits are decoded into the schema gap categories by reading ``flag_meanings``
  in the file (frozen/snow -> frozen_ground, dense vegetation, RFI, no observation ->
  no_overpass, anything else -> invalid_retrieval; water -> not_land with ``land_grid``);
  a value that carries a gap bit is that gap (and NaN), never an observation;
* a PASSIVE file's ``sm_uncertainty`` (m3 m-3, "the estimated standard deviation of the
  observation") becomes ``amsr_sm_error`` where ``amsr_sm`` is observed;
* ``sensor`` bits (8 AMSR-E, 32 AMSR2, 256 ASCAT-A, 512 ASCAT-B, ...) are kept per pixel
  as ``sensor_bits`` and give the ``sensor`` coordinate of each day; ``sensors=("AMSRE",
  "AMSR2")`` keeps only pixels that an AMSR instrument contributed to.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from data_catalog import schema
from data_catalog.errors import FormatError, OutOfRangeError
from data_catalog.readers import _netcdf as nc

log = logging.getLogger(__name__)

PRODUCT_VARIABLE = {"PASSIVE": schema.AMSR_SM, "ACTIVE": schema.ASCAT_SM,
                    "COMBINED": "combined_sm"}
PRODUCT_UNITS = {"PASSIVE": "m3 m-3", "ACTIVE": "percent of saturation",
                 "COMBINED": "m3 m-3"}
#: the product's own error of ``sm`` (PASSIVE: becomes ``amsr_sm_error``)
UNCERTAINTY_VARIABLE = "sm_uncertainty"
SENSOR_BITS = "sensor_bits"
AMSR_SENSORS = ("AMSRE", "AMSR2")


def product_of(path: Path, title: str = "") -> str:
    """PASSIVE / ACTIVE / COMBINED from the file name or the ``title`` attribute."""
    for text in (path.name.upper(), title.upper()):  # the file name is the surer guide
        for name in ("PASSIVE", "ACTIVE", "COMBINED"):
            if re.search(rf"(^|[^A-Z]){name}([^A-Z]|$)", text):
                return name
    raise FormatError("cannot tell whether this is a PASSIVE, ACTIVE or COMBINED product "
                      "(neither the file name nor the title says)", path)


def date_from_name(path: Path) -> pd.Timestamp | None:
    """The day of a CCI/C3S image from the ``YYYYMMDD000000`` stamp in its name."""
    m = re.search(r"(\d{8})\d{6}", path.name)
    return pd.Timestamp(m.group(1)) if m else None


def read_cci_image(path: str | Path, *, region: Iterable[float] | None = None,
                   sensors: Sequence[str] | None = None,
                   land_grid: str | Path | None = None, require_data: bool = True
                   ) -> xr.Dataset:
    """Read one ESA CCI SM / C3S daily image file into the canonical gridded form.

    Parameters
    ----------
    path
        The netCDF image file.
    region
        Optional ``(west, south, east, north)`` box in degrees.
    sensors
        Keep only pixels to which one of these sensors contributed (names as in the CCI
        sensor flags, e.g. ``("AMSRE", "AMSR2")``); the others become ``no_overpass``.
    land_grid
        Optional CCI/C3S ``grid.nc`` with ``subset_flag``: water becomes ``not_land``.
    require_data
        Raise :class:`EmptySelectionError` when the selection holds no value (default);
        ``False`` returns the all-gap field (to inspect why a place is empty).

    Returns
    -------
    xarray.Dataset
        One of ``amsr_sm`` / ``ascat_sm`` / ``combined_sm`` (float32), ``gap_mask``,
        ``amsr_sm_error`` (PASSIVE files with ``sm_uncertainty``),
        ``sensor_bits`` (int32, the raw CCI sensor mask); coordinates ``time`` (1 day),
        ``lat`` ascending, ``lon``, ``sensor(time)``.
    """
    path = Path(path)
    box = nc.check_region(region)
    with nc.open_netcdf(path) as ds:
        title = str(getattr(ds, "title", ""))
        product = product_of(path, title)
        name = PRODUCT_VARIABLE[product]
        lat = np.asarray(nc.require_variable(ds, "lat", path)[:], np.float64)
        lon = nc.wrap_lon(nc.require_variable(ds, "lon", path)[:])
        tvar = nc.require_variable(ds, "time", path)
        times = nc.nc_times(tvar, path=path).normalize()
        smv = nc.require_variable(ds, "sm", path)
        if smv.dimensions[-2:] != ("lat", "lon"):
            raise FormatError(f"dimensions {smv.dimensions}, expected (time, lat, lon)",
                              path, "sm")
        units = getattr(smv, "units", None)
        if product == "ACTIVE" and units in ("percent", "%"):
            units = "percent of saturation"  # ACTIVE is degree of saturation by definition
        factor = nc.canonical_units(units, PRODUCT_UNITS[product], path, "sm")
        ilat = np.argsort(lat)
        ilon = np.argsort(lon)
        lat, lon = lat[ilat], lon[ilon]
        ii, jj = nc.region_index(lat, lon, box, path)
        rows, cols = ilat[ii], ilon[jj]
        # read the bounding rows/cols once, then reorder (netCDF4 wants sorted indices)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        win = (slice(None), slice(r0, r1), slice(c0, c1))

        def take(a: np.ndarray) -> np.ndarray:
            return a[:, rows - r0][:, :, cols - c0]

        sm = take(nc.read_float(smv, win)) * factor
        err = None
        if product == "PASSIVE" and UNCERTAINTY_VARIABLE in ds.variables:
            ev = ds.variables[UNCERTAINTY_VARIABLE]
            err = take(nc.read_float(ev, win)) * nc.canonical_units(
                getattr(ev, "units", None), schema.UNITS[schema.AMSR_SM_ERROR], path,
                UNCERTAINTY_VARIABLE)
            err[~(err >= 0)] = np.nan
        fvar = nc.require_variable(ds, "flag", path)
        flag_raw = take(nc.read_raw(fvar, win)).astype(np.int64)
        flag_fill = nc.fill_values(fvar)
        bits = nc.flag_bits(getattr(fvar, "flag_values", None),
                            getattr(fvar, "flag_meanings", None))
        if not bits:
            raise FormatError("flag has no usable flag_values/flag_meanings", path, "flag")
        svar = nc.require_variable(ds, "sensor", path)
        # the radiometer of each day is a property of the whole file, not of the window:
        # read (decompress) the globe once and take the window from it
        whole = nc.read_raw(svar).astype(np.int64)
        sens = take(whole[win])
        sfill = nc.fill_values(svar)
        for fill in sfill:  # one comparison per fill code: faster than isin on a globe
            whole[whole == fill] = 0
        whole[whole < 0] = 0
        day_sensor = np.array([nc.schema_sensor(int(np.bitwise_or.reduce(
            whole[t].ravel(), initial=0))) for t in range(whole.shape[0])], np.int8)
        del whole
        sensor_bits = nc.sensor_bits_from_attrs(getattr(svar, "flag_values", None),
                                                getattr(svar, "flag_meanings", None))
    lat, lon = lat[ii], lon[jj]
    for fill in sfill:
        sens[sens == fill] = 0
    sens[sens < 0] = 0

    # a fill code (127, "NaN") means nothing was observed that day: no gap bits to decode
    flag_raw = np.where(np.isin(flag_raw, sorted(flag_fill)), 0, flag_raw)
    gap = nc.decode_flags(flag_raw, bits)
    unflagged = gap == schema.OBSERVED
    gap[(gap == schema.OBSERVED) & ~np.isfinite(sm)] = schema.NO_OVERPASS
    if sensors is not None:
        wanted = {s.upper().replace("-", "") for s in sensors}
        unknown = wanted - {n.upper() for n in sensor_bits.values()}
        if unknown:
            raise OutOfRangeError(f"unknown sensor(s) {sorted(unknown)}; the file knows "
                                  f"{sorted(set(sensor_bits.values()))}", path, "sensor")
        mask = sum(b for b, n in sensor_bits.items() if n.upper() in wanted)
        other = np.isfinite(sm) & ((sens & mask) == 0)
        sm[other] = np.nan
        gap[other] = schema.NO_OVERPASS
    if land_grid is not None:
        land = nc.land_mask(land_grid, lat, lon)
        gap[:, ~land] = schema.NOT_LAND
    # a value whose own flag bits mark a gap is that gap, never an observation
    gap[np.isfinite(sm) & unflagged] = schema.OBSERVED
    sm[gap != schema.OBSERVED] = np.nan
    what = f"sm in region {box}" if box else "sm"
    if sensors is not None:
        what += f" from sensors {list(sensors)}"
    if require_data:
        nc.not_empty(sm, what, path, "sm")

    sb_attrs = {"long_name": "CCI/C3S sensor bit mask",
                "flag_masks": np.array(sorted(sensor_bits), np.int32),
                "flag_meanings": " ".join(sensor_bits[b] for b in sorted(sensor_bits))}
    out = xr.Dataset(
        {
            name: (schema.GRID_DIMS, sm.astype(np.float32),
                   {"units": PRODUCT_UNITS[product],
                    "long_name": schema.LONG_NAMES.get(name, f"CCI {product} soil moisture")}),
            schema.GAP_MASK: (schema.GRID_DIMS, gap, schema.gap_mask_attrs()),
            SENSOR_BITS: (schema.GRID_DIMS, sens.astype(np.int32), sb_attrs),
        },
        coords={schema.TIME: times.values, schema.LAT: lat, schema.LON: lon,
                schema.SENSOR: (schema.TIME, day_sensor, schema.sensor_attrs())},
        attrs={"source": str(path), "product": product, "title": title},
    )
    if err is not None:  # the error of an observation only, like amsr_sm
        err[~np.isfinite(sm)] = np.nan
        out[schema.AMSR_SM_ERROR] = (schema.GRID_DIMS, err.astype(np.float32),
                                     schema.amsr_error_attrs(UNCERTAINTY_VARIABLE))
    if land_grid is not None:
        out[schema.LAND] = ((schema.LAT, schema.LON), land,
                            {"long_name": schema.LONG_NAMES[schema.LAND]})
    return out


def read_cci_images(paths: str | Path | Iterable[str | Path], *,
                    region: Iterable[float] | None = None,
                    sensors: Sequence[str] | None = None,
                    land_grid: str | Path | None = None,
                    start=None, end=None, progress: bool = False,
                    require_data: bool = True) -> xr.Dataset:
    """Read many daily CCI/C3S images (a list, a glob or a folder) into one time series.

    All files must be the same product on the same grid. ``start``/``end`` select days by
    the date in the file names; a range outside the files raises ``OutOfRangeError``.
    """
    files = nc.select_by_date(nc.resolve_paths(paths), start, end, date_from_name)
    parts = [read_cci_image(f, region=region, sensors=sensors, land_grid=land_grid,
                            require_data=require_data)
             for f in tqdm(files, desc="CCI images", disable=not progress or len(files) < 2)]
    products = {p.attrs["product"] for p in parts}
    if len(products) > 1:
        raise FormatError(f"files mix products {sorted(products)}; read one product at a time",
                          files[0].parent)
    if len(parts) == 1:
        return parts[0]
    ref = parts[0]
    for p, f in zip(parts[1:], files[1:], strict=True):
        if p.sizes[schema.LAT] != ref.sizes[schema.LAT] or \
                not np.allclose(p[schema.LON], ref[schema.LON]):
            raise FormatError("grid differs from the first file's", f)
    out = xr.concat(parts, dim=schema.TIME, data_vars="minimal", coords="minimal",
                    compat="override", join="override").sortby(schema.TIME)
    out.attrs = {**ref.attrs, "source": ", ".join(str(f) for f in files)}
    return out
