"""The gap-filled series at points (stations, a clicked cell), streamed by the model.

:func:`filled_at_points` is what validation and the app ask when there is no series
store: every point gets a small square window of cells around its cell, the windows of
all points are streamed together as one batch by the block engine of the series store
(:func:`model.streaming.stream_windows`: the same model switches, warm-up and chunks), and
the point's cell is kept.  :func:`filled_sd_at_points` adds the
``filled_sm_uncertainty`` of each day (:func:`model.streaming.block_extras`, as the series
store holds it).  torch and the checkpoints are loaded inside the function only,
so this module imports without torch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import grid, schema
from data_catalog.errors import OutOfRangeError
from model.streaming import (
    ModelSet,
    Window,
    block_extras,
    error_model_for,
    one_torch_thread,
    stream_windows,
    window_tracker,
)

log = logging.getLogger(__name__)

#: Cells of context on each side of a point's cell.
WINDOW_RADIUS = 6


def point_cell(lat: float, lon: float, grid_lat: np.ndarray, grid_lon: np.ndarray
               ) -> tuple[int, int]:
    """Indices of the cell whose centre is nearest the point along each axis (the cell that
    holds it on a regular grid; longitudes wrapped into [-180, 180))."""
    lon = (float(lon) + 180.0) % 360.0 - 180.0
    i = int(grid.nearest_index(grid_lat, lat, inside=False)[0])
    j = int(grid.nearest_index(grid_lon, lon, inside=False)[0])
    return i, j


def point_window(i: int, j: int, size_i: int, size_j: int, n_lat: int, n_lon: int) -> Window:
    """A ``size_i`` x ``size_j`` window around cell ``(i, j)``, shifted inside the grid at its
    edges (every window has the same shape, so all stream as one batch)."""
    radius_i, radius_j = size_i // 2, size_j // 2
    i0 = int(np.clip(i - radius_i, 0, n_lat - size_i))
    j0 = int(np.clip(j - radius_j, 0, n_lon - size_j))
    return Window(slice(i0, i0 + size_i), slice(j0, j0 + size_j),
                  (slice(i - i0, i - i0 + 1), slice(j - j0, j - j0 + 1)))


def _models(checkpoint, device: str, models: Mapping | None, gap_model: int) -> ModelSet:
    if models is not None:
        return ModelSet(dict(models), gap_model)
    from model import inference as inf  # torch: only when the model runs

    dev = inf.select_device(device)
    if checkpoint is not None:
        return ModelSet.one(inf.load_model(checkpoint, dev))
    return ModelSet(inf.load_models(None, dev), gap_model)


def filled_at_points(world: xr.Dataset, table: pd.DataFrame, days, checkpoint=None,
                     device: str = "cpu", progress: bool = False, **kw
                     ) -> dict[str, pd.Series]:
    """The daily gap-filled series at each point's cell (:func:`filled_sd_at_points`
    without the SD)."""
    return _stream(world, table, days, checkpoint, device, progress, with_sd=False, **kw)[0]


def filled_sd_at_points(world: xr.Dataset, table: pd.DataFrame, days, checkpoint=None,
                        device: str = "cpu", progress: bool = False, **kw
                        ) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """The daily gap-filled series at each point's cell and its ``filled_sm_uncertainty``
    (m3 m-3; NaN off land, for stand-in models or without an error model beside the
    checkpoints), as two dicts point id -> daily Series (:func:`_stream`)."""
    return _stream(world, table, days, checkpoint, device, progress, with_sd=True, **kw)


def _stream(world: xr.Dataset, table: pd.DataFrame, days, checkpoint=None,
            device: str = "cpu", progress: bool = False, *, with_sd: bool = False,
            models: Mapping | None = None, radius: int = WINDOW_RADIUS,
            gap_model: int = schema.SENSOR_AMSR2, warmup_days: int = 30,
            stream_days: int = 64, block_days: int = 365
            ) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """The daily gap-filled series at each point's cell.

    The series is the observation where AMSR observed (in the model's reference
    climatology, as :func:`model.inference.predict` gives it) and the model elsewhere, as
    in the series store; the model sees ``(2 radius + 1)`` cells of context.  The days
    from the first to the last requested are streamed (the first model warmed up on the
    ``warmup_days`` before), and the requested ones kept.

    Parameters
    ----------
    world : xarray.Dataset
        Canonical world (``amsr_sm``, ``gap_mask``, ``ascat_sm``, ``land``, ``sensor``).
    table : pandas.DataFrame
        Points: ``id``, ``lat``, ``lon`` (a station table).
    days : sequence of datetime-like
        Days of the world to fill.
    checkpoint : path, optional
        One checkpoint for every day; default the models of
        :func:`data_catalog.locations.checkpoint_dir` by radiometer.
    device : str
        Torch device (``cpu``, ``cuda``, ``auto``).
    progress : bool
        tqdm bar over the blocks of days.
    models : mapping, optional
        Sensor code or name -> object with ``prepare``/``stream`` (a stand-in such as
        :class:`model.series_models.PersistenceModel`), instead of checkpoints.
    radius : int
        Cells of context on each side of a point's cell.
    gap_model, warmup_days, stream_days, block_days : int
        As for the series store (:class:`model.series_layout.SeriesSpec`).
    with_sd : bool
        Also compute ``filled_sm_uncertainty`` (else NaN).

    Returns
    -------
    (dict, dict)
        Point id -> daily Series on ``days`` (m3 m-3): the filled values, their SDs.

    Raises
    ------
    OutOfRangeError
        A day is not in the world.
    CheckpointFitError
        The checkpoint does not fit the world at the points (:mod:`model.fit`).
    """
    days = pd.DatetimeIndex(days)
    world_t = pd.DatetimeIndex(world[schema.TIME].values)
    pos = world_t.get_indexer(days)
    if (pos < 0).any():
        raise OutOfRangeError(f"{int((pos < 0).sum())} day(s) are not in the world",
                              variable=schema.TIME)
    ids = table["id"].astype(str).tolist()
    if not len(days) or not ids:
        empty = {sid: pd.Series(np.nan, index=days) for sid in ids}
        return empty, dict(empty)
    model_set = _models(checkpoint, device, models, gap_model)
    if models is None:  # a checkpoint never runs on data it does not fit
        _require_fit(world.isel({schema.TIME: pos}), table, model_set)
    lat, lon = world[schema.LAT].values, world[schema.LON].values
    size_i, size_j = min(2 * radius + 1, lat.size), min(2 * radius + 1, lon.size)
    windows = [point_window(*point_cell(float(r.lat), float(r.lon), lat, lon), size_i, size_j,
                            lat.size, lon.size) for r in table.itertuples(index=False)]
    start, stop = int(pos.min()), int(pos.max()) + 1
    out = np.full((len(ids), stop - start), np.nan, np.float32)
    sd = np.full_like(out, np.nan)
    # the SD of each point's cell, from its own tracker (None: no SD asked or no error
    # model); errors.json is read once for all the points
    em = (error_model_for(model_set, checkpoint, stand_ins=models is not None)
          if with_sd else None)
    sds = [window_tracker(em, world, w) for w in windows]
    land = [np.asarray(world[schema.LAND].isel(w.kept()).values, bool) for w in windows]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=stop - start, desc="model at points", unit="day")
    try:
        with one_torch_thread():
            for block in stream_windows(world, windows, start, stop, model_set,
                                        warmup_days=warmup_days, stream_days=stream_days,
                                        block_days=block_days,
                                        on_block=bar.update if bar is not None else None):
                out[:, block.start:block.stop] = block.filled[:, :, 0, 0]
                for k, w in enumerate(windows):
                    if sds[k] is not None:
                        got = block_extras(sds[k], world, w.kept(), start, block, model_set,
                                           land[k], k)[0]
                        sd[k, block.start:block.stop] = got[:, 0, 0]
    finally:
        if bar is not None:
            bar.close()
    keep = pos - start
    return ({sid: pd.Series(out[k, keep].astype(np.float64), index=days)
             for k, sid in enumerate(ids)},
            {sid: pd.Series(sd[k, keep].astype(np.float64), index=days)
             for k, sid in enumerate(ids)})


def _require_fit(days: xr.Dataset, table: pd.DataFrame, model_set: ModelSet) -> None:
    """:mod:`model.fit` on the points' cells and days: one checkpoint for every day, or each
    model on the days it fills (:class:`data_catalog.errors.CheckpointFitError`)."""
    from model.fit import require_fit, require_models_fit

    box = (float(table["lon"].min()), float(table["lat"].min()),
           float(table["lon"].max()), float(table["lat"].max()))
    if model_set.single:
        require_fit(model_set[schema.SENSOR_AMSR2].metadata, days, box)
    else:
        require_models_fit(model_set.models, days, box, gap_model=model_set.gap_model)


def has_model(checkpoint: str | Path | None = None) -> bool:
    """Whether :func:`filled_at_points` can run: the checkpoint, or the base model of
    :func:`data_catalog.locations.checkpoint_dir`, exists (read without torch)."""
    from data_catalog import locations

    if checkpoint is not None:
        return Path(checkpoint).exists()
    return (locations.checkpoint_dir() / "amsr2.pt").exists()
