"""Files the app offers for download, built without Panel: names, CSV and netCDF.

* :func:`file_stem` names every download by source, region and date(s);
* :func:`table_csv` writes a table with a commented header (window, source, checkpoint);
* :func:`filled_netcdf` writes the filled field of the shown region (one day or the filled
  days of a period) as CF-1.10 netCDF-4, with the attributes of ``gapfill export-netcdf``
  (:mod:`model.series_export`): units, long names, the gap flags, coverage and history.
"""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pandas as pd
import xarray as xr

from app.days import DayFields
from data_catalog import grid, schema

NC_FILL = np.float32(-9999.0)


def file_stem(source: str, region, start, end=None) -> str:
    """``gapfill_<source>_<W>_<S>_<E>_<N>_<date>[_<end>]`` (safe in any file system)."""
    w, s, e, n = (f"{float(v):g}" for v in region)
    days = f"{pd.Timestamp(start):%Y-%m-%d}"
    if end is not None and pd.Timestamp(end) != pd.Timestamp(start):
        days += f"_{pd.Timestamp(end):%Y-%m-%d}"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in source)
    return f"gapfill_{safe}_{w}_{s}_{e}_{n}_{days}"


def table_csv(table: pd.DataFrame, header: dict[str, object]) -> str:
    """A table as CSV after ``# key: value`` lines (pandas: ``read_csv(comment="#")``)."""
    lines = [f"# {k}: {str(v).replace(chr(10), ' ')}" for k, v in header.items()]
    return "\n".join(lines) + "\n" + table.to_csv(index=True if table.index.name else False)


def filled_dataset(days: list[DayFields], source: str, checkpoint: str = "") -> xr.Dataset:
    """The filled field (and raw AMSR, its gap mask) of the given days as a CF dataset.

    Raises
    ------
    ValueError
        No day has a filled field.
    """
    days = [d for d in days if d.filled is not None]
    if not days:
        raise ValueError("no filled day to export")
    f0 = days[0]
    t = pd.DatetimeIndex([d.date for d in days])
    dims = (schema.TIME, schema.LAT, schema.LON)

    def stack(get):
        return np.stack([np.asarray(get(d), np.float32) for d in days])

    ds = xr.Dataset(
        {schema.FILLED_SM: (dims, stack(lambda d: d.filled),
                            {"units": schema.UNITS[schema.FILLED_SM],
                             "long_name": schema.LONG_NAMES[schema.FILLED_SM],
                             "standard_name": schema.SM_STANDARD_NAME}),
         schema.AMSR_SM: (dims, stack(lambda d: d.amsr),
                          {"units": schema.UNITS[schema.AMSR_SM],
                           "long_name": schema.LONG_NAMES[schema.AMSR_SM]}),
         schema.GAP_MASK: (dims, np.stack([d.gap for d in days]).astype(np.int8),
                           schema.gap_mask_attrs())},
        coords={schema.TIME: t,
                schema.LAT: (schema.LAT, f0.lat, {"units": "degrees_north",
                                                  "standard_name": "latitude"}),
                schema.LON: (schema.LON, f0.lon, {"units": "degrees_east",
                                                  "standard_name": "longitude"})})
    west, south, east, north = grid.bounds(f0.lat, f0.lon)
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    origins = sorted({str(d.filled_info.get("origin") or (
        "cache" if d.filled_info.get("cached") else "computed")) for d in days})
    ds.attrs = {
        "Conventions": "CF-1.10",
        "title": "Gap-filled AMSR-E/AMSR2 surface soil moisture (ConvLSTM)",
        "source": source, "model_checkpoint": checkpoint or "default (by radiometer)",
        "fill_origin": " ".join(origins),
        "references": "Sivaprasad et al. (2025), IEEE JSTARS, doi:10.1109/JSTARS.2025.3557956",
        "time_coverage_start": f"{t[0]:%Y-%m-%d}", "time_coverage_end": f"{t[-1]:%Y-%m-%d}",
        "geospatial_lat_min": south, "geospatial_lat_max": north,
        "geospatial_lon_min": west, "geospatial_lon_max": east,
        "geospatial_lat_units": "degrees_north", "geospatial_lon_units": "degrees_east",
        "date_created": now,
        "history": f"{now} AMSR Gap-Fill Explorer export of the shown region",
    }
    return ds


def filled_netcdf(days: list[DayFields], source: str, checkpoint: str = "") -> bytes:
    """:func:`filled_dataset` as netCDF-4 bytes (the encoding of ``export-netcdf``)."""
    ds = filled_dataset(days, source, checkpoint)
    enc: dict[str, dict] = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars}
    for v in (schema.FILLED_SM, schema.AMSR_SM):
        enc[v]["_FillValue"] = NC_FILL
    enc[schema.TIME] = {"units": "days since 1970-01-01 00:00:00", "calendar": "standard",
                        "dtype": "int32", "_FillValue": None}
    for c in (schema.LAT, schema.LON):
        enc[c] = {"_FillValue": None}
    fd, tmp = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)


def as_file(data: bytes | str) -> io.BytesIO:
    """Bytes or text as the file object a download callback returns."""
    return io.BytesIO(data.encode() if isinstance(data, str) else data)
