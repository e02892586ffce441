"""The assembled world's zarr store: layout, block writes, completion, opening.

The layout is the demo world's (``data_catalog.demo``): zarr v3, dims ``(time, lat,
lon)``, ``amsr_sm``/``ascat_sm`` float32 and ``gap_mask`` int8 chunked by
:func:`data_catalog.worlds.world_chunks`, lz4 + bitshuffle (floats) or shuffle (the
mask), ``amsr_sm_error`` float32 like ``amsr_sm`` where an AMSR product carries its own
error (:attr:`~data_catalog.assemble.plan.Plan.amsr_error`), ``land`` bool,
the ``sensor(time)`` coordinate with CF flag attributes, time as int32 days since
1970-01-01, CF attributes, ``complete`` false until the last block is written.  Values are
not bit-rounded: a world holds what the files hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from data_catalog import schema
from data_catalog.errors import FormatError, MissingFileError
from data_catalog.worlds import open_world


def _compressors(float_bits: bool):
    from zarr.codecs import BloscCodec

    return (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle" if float_bits else "shuffle"),)


def create(path: str | Path, plan, attrs: dict) -> None:
    """Write the store's metadata, coordinates and ``land``; no data chunk yet."""
    import dask.array as da

    nt, ny, nx = plan.shape
    tt, ty, tx = plan.chunks
    dims = schema.GRID_DIMS

    def var_attrs(name: str) -> dict:
        return {"units": schema.UNITS[name], "long_name": schema.LONG_NAMES[name]}

    lazy_f = da.zeros((nt, ny, nx), chunks=(tt, ty, tx), dtype=np.float32)
    lazy_i = da.zeros((nt, ny, nx), chunks=(tt, ty, tx), dtype=np.int8)
    template = xr.Dataset(
        {
            schema.AMSR_SM: (dims, lazy_f, var_attrs(schema.AMSR_SM)),
            schema.GAP_MASK: (dims, lazy_i, schema.gap_mask_attrs()),
            schema.ASCAT_SM: (dims, lazy_f, var_attrs(schema.ASCAT_SM)),
            schema.LAND: ((schema.LAT, schema.LON), plan.land.astype(bool),
                          {"long_name": schema.LONG_NAMES[schema.LAND]}),
        },
        coords={
            schema.TIME: (schema.TIME, plan.days.astype("datetime64[ns]"),
                          {"long_name": "day (UTC)"}),
            schema.LAT: (schema.LAT, plan.lat,
                         {"units": "degrees_north", "standard_name": "latitude"}),
            schema.LON: (schema.LON, plan.lon,
                         {"units": "degrees_east", "standard_name": "longitude"}),
            schema.SENSOR: (schema.TIME, plan.default_sensor(), schema.sensor_attrs()),
        },
        attrs=attrs,
    )
    floats = [schema.AMSR_SM, schema.ASCAT_SM]
    if plan.amsr_error:
        template[schema.AMSR_SM_ERROR] = (dims, lazy_f, schema.amsr_error_attrs())
        floats.append(schema.AMSR_SM_ERROR)
    enc = {v: {"chunks": (tt, ty, tx), "compressors": _compressors(True)} for v in floats}
    enc[schema.GAP_MASK] = {"chunks": (tt, ty, tx), "compressors": _compressors(False)}
    enc[schema.TIME] = {"units": "days since 1970-01-01", "dtype": "int32"}
    template.to_zarr(path, mode="w", compute=False, zarr_format=3, consolidated=False,
                     encoding=enc)


def write_block(path: str | Path, a: int, b: int, amsr: np.ndarray, gap: np.ndarray,
                ascat: np.ndarray, error: np.ndarray | None = None) -> None:
    """Days ``a:b`` of the gridded variables (``a:b`` is one time chunk); ``error``:
    ``amsr_sm_error`` where the store has it."""
    import zarr

    group = zarr.open_group(str(path), mode="r+", zarr_format=3)
    group[schema.AMSR_SM][a:b] = amsr
    group[schema.GAP_MASK][a:b] = gap
    group[schema.ASCAT_SM][a:b] = ascat
    if error is not None:
        group[schema.AMSR_SM_ERROR][a:b] = error


def finish(path: str | Path, sensor: np.ndarray, attrs: dict) -> None:
    """The radiometer of every day and the final attributes, ``complete: true`` last."""
    import zarr

    group = zarr.open_group(str(path), mode="r+", zarr_format=3)
    group[schema.SENSOR][:] = sensor.astype(np.int8)
    group.attrs.update({**attrs, "complete": False})
    group.attrs["complete"] = True


def stored_attrs(path: str | Path) -> dict:
    """The root attributes of a store (empty when it is not a readable zarr v3 group)."""
    try:
        return json.loads((Path(path) / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return {}


def is_complete(path: str | Path, fingerprint: str | None = None) -> bool:
    """A complete assembled world (with this request fingerprint when given)."""
    attrs = stored_attrs(path)
    return (attrs.get("generator") == "data_catalog.assemble" and bool(attrs.get("complete"))
            and (fingerprint is None or attrs.get("fingerprint") == fingerprint))


def open_assembled(path: str | Path) -> xr.Dataset:
    """Open an assembled world lazily (dask), like the demo world is opened.

    The small ``(time,)`` and ``(lat, lon)`` arrays are read at once; ``attrs
    ["source_path"]`` names the store.

    Raises
    ------
    MissingFileError, FormatError
        The store is absent, or not a complete assembled world.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError("assembled world not found (make it with `gapfill assemble`)",
                               p)
    if not is_complete(p):
        raise FormatError("not a complete assembled world (an interrupted run keeps its "
                          "finished blocks in a hidden folder beside it: run the same "
                          "`gapfill assemble` again to resume)", p)
    return open_world(p)
