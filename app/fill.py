"""Filling a period of a region for the app, on the engine of ``build-series``.

"Fill this period" and auto-fill stream the region's window through
:func:`model.streaming.stream_windows` (the engine of the series store and of the
stations' series: the model of each day by its radiometer, warmed up on the days before),
a few days per block so a long period reports progress and can be cancelled between
blocks.  The days come back as ``(lat, lon)`` float32 fields of the region, each with its
``filled_sm_uncertainty`` and ``reason_flag`` (:func:`model.streaming.block_extras`, as
``build-series`` writes them; the SD is NaN without an error model beside the
checkpoints); the hub keeps them in its memory of model outputs (see
:meth:`app.data.DataHub.fill_period`), marked with their origin.

No Panel, Bokeh or HoloViews here; torch is imported by the engine only when a model runs
(in the hub's worker thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import grid, schema
from data_catalog.errors import GapfillError, OutOfRangeError
from model import streaming

#: cells of spatial context read around the region (the model's receptive field is small)
CONTEXT = 8
#: days per block: progress and cancel are checked between blocks
BLOCK_DAYS = 8
#: auto-fill runs only for regions up to this many cells (about a second a day on CPU)
AUTO_FILL_MAX_CELLS = 64 * 64


class FillCancelled(GapfillError):
    """The user cancelled a period fill."""


def region_window(world: xr.Dataset, region, context: int = CONTEXT) -> streaming.Window:
    """The window streamed for a region: its cells and ``context`` cells around them.

    Raises
    ------
    OutOfRangeError
        The region is outside the world's grid.
    """
    lat_sl, lon_sl = grid.index_slices(world[schema.LAT].values, world[schema.LON].values,
                                       tuple(float(v) for v in region))
    nlat, nlon = world.sizes[schema.LAT], world.sizes[schema.LON]
    c_lat = slice(max(0, lat_sl.start - context), min(nlat, lat_sl.stop + context))
    c_lon = slice(max(0, lon_sl.start - context), min(nlon, lon_sl.stop + context))
    core = (slice(lat_sl.start - c_lat.start, lat_sl.stop - c_lat.start),
            slice(lon_sl.start - c_lon.start, lon_sl.stop - c_lon.start))
    return streaming.Window(c_lat, c_lon, core)


def period_days(world: xr.Dataset, start, end) -> pd.DatetimeIndex:
    """The world's days from ``start`` to ``end`` (both included).

    Raises
    ------
    OutOfRangeError
        No day of the world lies in the period.
    """
    t = pd.DatetimeIndex(world[schema.TIME].values)
    days = t[(t >= pd.Timestamp(start).normalize()) & (t <= pd.Timestamp(end).normalize())]
    if not len(days):
        raise OutOfRangeError(f"no day of the record between {pd.Timestamp(start):%Y-%m-%d} "
                              f"and {pd.Timestamp(end):%Y-%m-%d}", variable=schema.TIME)
    return days


def model_set(checkpoint: str | None, device: str = "cpu",
              models: Mapping | None = None) -> streaming.ModelSet:
    """The models of a fill: a stand-in mapping, one checkpoint for every day, or the
    models of :func:`data_catalog.locations.checkpoint_dir` by radiometer."""
    if models is not None:
        return streaming.ModelSet(dict(models))
    from model import inference as inf  # torch: in the worker only

    dev = inf.select_device(device)
    if checkpoint:
        return streaming.ModelSet.one(inf.load_model(checkpoint, dev))
    return streaming.ModelSet(inf.load_models(None, dev))


def fill_period(world: xr.Dataset, region, start, end, checkpoint: str | None = None,
                device: str = "cpu", *, models: Mapping | None = None,
                progress: Callable[[float, str], None] | None = None,
                cancel: threading.Event | None = None,
                on_days: Callable[[dict, dict], None] | None = None,
                block_days: int = BLOCK_DAYS) -> dict[pd.Timestamp, np.ndarray]:
    """The filled fields of a region over ``start..end`` (both included).

    Parameters
    ----------
    world : xarray.Dataset
        Canonical world (with the ``sensor`` coordinate).
    region : (W, S, E, N)
        Degrees.
    checkpoint : str, optional
        One checkpoint for every day; default the models by radiometer.
    models : mapping, optional
        Sensor code or name -> stand-in model (tests, benchmarks).
    progress : callable, optional
        Called with (fraction done, message) after each block.
    cancel : threading.Event, optional
        Set to stop between blocks (raises :class:`FillCancelled`; the days done so far
        have been given to ``on_days``).
    on_days : callable, optional
        Called with ``{day: field}`` and ``{day: {"uncertainty": sd, "reasons": flags}}``
        (``(lat, lon)`` float32 and uint8) of each block as soon as it is done, so the days
        can be shown before the whole period is.

    Returns
    -------
    dict
        Day -> ``(lat, lon)`` float32 filled field of the region.
    """
    days = period_days(world, start, end)
    win = region_window(world, region)
    t = pd.DatetimeIndex(world[schema.TIME].values)
    i0, i1 = int(t.get_indexer([days[0]])[0]), int(t.get_indexer([days[-1]])[0]) + 1
    if progress:
        progress(0.0, "loading the model")
    ms = model_set(checkpoint, device, models)
    sds = streaming.sd_tracker(world, win, ms, checkpoint, stand_ins=models is not None)
    land = np.asarray(world[schema.LAND].isel(win.kept()).values, bool)
    out: dict[pd.Timestamp, np.ndarray] = {}
    n = i1 - i0
    with streaming.one_torch_thread():
        for block in streaming.stream_windows(world, [win], i0, i1, ms, block_days=block_days,
                                    stream_days=block_days):
            days = [pd.Timestamp(d).normalize() for d in block.times]
            got = {d: np.ascontiguousarray(block.filled[0, k]) for k, d in enumerate(days)}
            out.update(got)
            if on_days is not None:
                sd, reasons = streaming.block_extras(sds, world, win.kept(), i0, block, ms, land)
                on_days(got, {d: {"uncertainty": sd[k], "reasons": reasons[k]}
                              for k, d in enumerate(days)})
            if progress:
                progress(block.stop / n, f"{block.stop} of {n} days")
            if cancel is not None and cancel.is_set() and block.stop < n:
                raise FillCancelled(f"fill cancelled after {block.stop} of {n} days")
    return out


def auto_fill_allowed(shape: tuple[int, int]) -> bool:
    """Whether a region is small enough to fill each shown day in the background."""
    return int(shape[0]) * int(shape[1]) <= AUTO_FILL_MAX_CELLS


def origin_label(info: dict) -> str:
    """Where a shown filled field came from, in words (map title, status)."""
    origin = info.get("origin")
    if origin == "series":
        return "from the series store"
    if origin == "period":
        return "from a period fill"
    if origin == "auto":
        return "auto-filled"
    if info.get("cached"):
        return "from the cache"
    return "just computed"
