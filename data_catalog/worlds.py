"""Canonical world stores: the one way to open one.

A world is a zarr store in the canonical gridded form (:mod:`data_catalog.schema`):
``amsr_sm``, ``gap_mask``, ``ascat_sm``, ``land`` and the ``sensor(time)`` coordinate,
plus ``truth_sm`` in the demo world only.  The demo world (``gapfill demo-data``) is one;
a world assembled from real archives writes the same schema.  The catalog's ``world``
driver, the model, validation and the app all open worlds through :func:`open_world`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from data_catalog import locations, schema
from data_catalog.errors import FormatError, MissingFileError, MissingVariableError

#: Variables every canonical world holds (``truth_sm`` only the demo world).
REQUIRED_VARIABLES = (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.LAND)
#: Coordinates every canonical world holds besides ``time, lat, lon``.
REQUIRED_COORDS = (schema.SENSOR,)


def world_chunks(ny: int, nx: int) -> tuple[int, int, int]:
    """Time x lat x lon chunks of every world store (demo and assembled), so that one
    day's map and one pixel's series both read fast.

    A day's map decompresses every chunk of its time slab (``tt x ny x nx`` values) and a
    pixel's series one tile per time chunk (``nt x ty x tx`` values).  Up to 128 x 128 cells
    a year of 32 x 32 tiles keeps both to a few MB per variable (measured on the default
    64 x 64 world: ~15 ms a map, ~70 ms a 21-year series, against ~400 ms with whole
    64 x 64 tiles); bigger grids get 64 x 64 tiles and shorter time chunks so that a day's
    slab stays under ~12 MB (and a generation block, one time chunk, under ~1 GB).
    """
    tile = 32 if ny * nx <= 128 * 128 else 64
    ty, tx = min(ny, tile), min(nx, tile)
    tt = int(np.clip(3_000_000 // (ny * nx), 30, 365))
    return tt, ty, tx


def _missing_message(path: Path) -> str:
    if path.resolve() == locations.demo_world().resolve():
        return "demo world not found; build it with `gapfill demo-data` (or `make demo`)"
    return "world store not found (the demo world is built with `gapfill demo-data`)"


def open_world(path: str | Path) -> xr.Dataset:
    """Open a canonical world store lazily (dask).

    The small ``(time,)`` and ``(lat, lon)`` arrays are read at once (selecting days by
    sensor or masking the sea should not build dask graphs); ``attrs["source_path"]``
    names the store.

    Parameters
    ----------
    path
        The store (e.g. :func:`data_catalog.locations.demo_world`).

    Raises
    ------
    MissingFileError
        The store does not exist.
    FormatError
        It is not a readable zarr store, or its build did not finish (a store that
        records its build state in the ``complete`` attribute must say true).
    MissingVariableError
        A canonical variable or the ``sensor`` coordinate is absent.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(_missing_message(p), p)
    try:
        ds = xr.open_zarr(p, consolidated=False)
    except Exception as exc:  # zarr raises several types for "not a store"
        raise FormatError(f"not a readable zarr store ({exc})", p) from exc
    if "complete" in ds.attrs and not bool(ds.attrs["complete"]):
        raise FormatError("not a complete world store (interrupted build); rebuild it "
                          "(`gapfill demo-data --force` for the demo world)", p)
    for var in REQUIRED_VARIABLES:
        if var not in ds:
            raise MissingVariableError("canonical world store lacks it", p, var)
    for coord in REQUIRED_COORDS:
        if coord not in ds.coords:
            raise MissingVariableError("canonical world store lacks the coordinate", p, coord)
    small = [n for n, v in ds.variables.items() if schema.TIME not in v.dims or v.ndim == 1]
    ds = ds.assign({n: ds[n].load() for n in small if n in ds.data_vars})
    ds = ds.assign_coords({n: ds[n].load() for n in small if n in ds.coords})
    ds.attrs["source_path"] = str(p)
    return ds

