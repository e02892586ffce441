"""``gapfill export-netcdf``: a region and period of a series store as CF-1.10 netCDF-4."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import grid, schema
from data_catalog.errors import EmptySelectionError
from data_catalog.series_store import open_series

NC_FILL = np.float32(-9999.0)


def export_netcdf(store: str | Path, out: str | Path, *, region: Sequence[float] | None = None,
                  start: str | None = None, end: str | None = None) -> Path:
    """Write a CF-compliant netCDF-4 file of a region and period of a series store."""
    from model.cache import snap_region

    ds = open_series(store)
    if start or end:
        ds = ds.sel({schema.TIME: slice(start, end)})
    if region is not None:
        r = snap_region(ds, region)
        ds = ds.isel({schema.LAT: slice(*r["lat"]), schema.LON: slice(*r["lon"])})
    if ds.sizes[schema.TIME] == 0:
        raise EmptySelectionError(f"no day in {start}..{end}", store)
    keep = {"Conventions", "title", "summary", "references", "source", "input_world",
            "input_fingerprint", "model_provenance"}
    attrs = {k: v for k, v in ds.attrs.items() if k in keep}
    t = ds.indexes[schema.TIME]
    west, south, east, north = grid.bounds(ds[schema.LAT].values, ds[schema.LON].values)
    attrs.update({
        "time_coverage_start": f"{t[0]:%Y-%m-%d}", "time_coverage_end": f"{t[-1]:%Y-%m-%d}",
        "geospatial_lat_min": south, "geospatial_lat_max": north,
        "geospatial_lon_min": west, "geospatial_lon_max": east,
        "geospatial_lat_units": "degrees_north", "geospatial_lon_units": "degrees_east",
        "date_created": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "history": f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%dT%H:%M:%SZ} gapfill export-netcdf "
                   f"from {Path(store).name}",
    })
    out_ds = ds.assign_attrs(attrs)
    out_ds.attrs = attrs
    land = out_ds[schema.LAND].astype(np.int8)
    land.attrs = {"long_name": schema.LONG_NAMES[schema.LAND],
                  "flag_values": np.array([0, 1], np.int8), "flag_meanings": "not_land land"}
    out_ds[schema.LAND] = land
    enc: dict[str, dict] = {}
    for name, var in out_ds.variables.items():
        enc[name] = {}
        if var.dims and name not in out_ds.dims:
            enc[name] = {"zlib": True, "complevel": 4}
        if var.dtype.kind == "f" and name not in out_ds.dims:
            enc[name]["_FillValue"] = NC_FILL  # CF tools prefer a number to NaN
        elif name in out_ds.dims and name != schema.TIME:
            enc[name]["_FillValue"] = None
    enc[schema.TIME] = {"units": "days since 1970-01-01 00:00:00", "calendar": "standard",
                        "dtype": "int32", "_FillValue": None}
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        out_ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return out
