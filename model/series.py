"""The seamless AMSR-E/AMSR2 series: built tile by tile on Dask, resumable, CF-described.

This module runs a build (:func:`build_series`: the spec checked against the world, the
tiles scheduled on Dask, each tile streamed by :func:`run_tile`).  Around it:
:mod:`model.series_layout` (the spec, the store's layout, attributes and ledger),
:mod:`model.streaming` (the block engine: model switches, warm-up, chunks),
:mod:`model.series_models` (model factories, the persistence stand-in) and
:mod:`model.series_export` (``gapfill export-netcdf``).

``build_series`` writes a zarr v3 store with, per pixel-day,

``filled_sm``    gap-filled soil moisture (m3 m-3): the AMSR observation where there is
                 one, the model's estimate everywhere else on land, NaN off land
``amsr_sm``      the raw AMSR-E/AMSR2 observation (m3 m-3, NaN in gaps)
``source_flag``  where ``filled_sm`` comes from (CF flags :data:`SOURCE_FLAGS`:
                 observed_amsr_e, observed_amsr2, filled, not_land, filled_frozen_ground:
                 a fill under frozen ground, where no radiometer measures and the model
                 has little skill)

plus ``land`` (lat, lon) and the ``sensor`` (time) coordinate of the input world.

How it is built
---------------
* The region is cut into spatial tiles (``tile`` x ``tile`` cells, aligned with the
  store's chunks).  A tile is the unit of parallel work: it is read with a halo of
  ``halo`` cells on every side (so the ConvLSTM's convolutions see real neighbours at
  the tile's edges), run through the model, and cropped back to its core.
* Inside a tile the model streams through time in blocks of ``time_chunk`` days (one
  store chunk along time) with its recurrent state carried from block to block, so the
  memory of a worker does not grow with the period.
* The model follows the radiometer of the day: AMSR-E days use the transferred AMSR-E
  model (sensor 1), AMSR2 days the base model (sensor 2), and the 2011-10-04..2012-07-01
  gap (sensor 0) is filled by the ``gap_model`` (default: the base model).  When the
  model changes, the new model's state is first warmed up on the ``warmup_days``
  preceding days (outputs discarded), so every model starts from a state it made itself.
* Tiles run on Dask distributed: a ``LocalCluster`` of ``workers`` processes with one
  thread (and one torch thread) each, or an existing cluster at ``scheduler``.  Workers
  write their tile's region of the pre-created store directly (``to_zarr(region=...)``),
  so the store must be on a file system every worker sees.
* Resumable: the store is created atomically (temporary folder, then rename) before any
  tile runs; a tile is marked done in the ledger ``<store>.ledger/`` only after its chunk
  files are fsynced.  Killed at any point (even ``kill -9``) and run again with the same
  arguments, the build redoes only the tiles without a mark; tiles are deterministic
  (one torch thread, fixed tiling), so the result is byte-identical to an uninterrupted
  build.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import locations, schema
from data_catalog.errors import DataError, EmptySelectionError, OutOfRangeError
from data_catalog.series_store import ledger_path
from data_catalog.worlds import open_world
from model import errors
from model.series_export import export_netcdf
from model.series_layout import (
    FILLED,
    FILLED_FROZEN,
    OBSERVED_AMSR2,
    OBSERVED_AMSR_E,
    SOURCE_FLAG,
    SOURCE_FLAGS,
    SeriesSpec,
    atomic_write,
    done_tiles,
    fsync_tile,
    mark_done,
    prepare_store,
    progress_days,
    source_flags,
    tile_name,
    write_progress,
)
from model.series_models import (
    PERSISTENCE_MODELS,
    SHIPPED_MODELS,
    PersistenceModel,
    load_factory_models,
    model_provenance,
    persistence_models,
)
from model.streaming import ModelSet, Window, block_extras, load, stream_windows

logger = logging.getLogger(__name__)

#: What other modules, factory specs (``model.series:persistence_models``, recorded in
#: stores) and tests reach through this module.
__all__ = ["FILLED", "FILLED_FROZEN", "OBSERVED_AMSR2", "OBSERVED_AMSR_E", "PERSISTENCE_MODELS",
           "SHIPPED_MODELS", "SOURCE_FLAG", "SOURCE_FLAGS", "PersistenceModel", "SeriesSpec",
           "build_series", "done_tiles", "export_netcdf", "input_world", "make_spec",
           "model_provenance", "persistence_models", "resolve_world", "run_tile",
           "warm_worker"]


# ---------------------------------------------------------------- input world
def resolve_world(source: str, world: str | Path | None = None) -> Path:
    """Path of the input store of ``source`` (``"demo"``: :func:`locations.demo_world`
    unless ``world`` is given; else a path)."""
    if source == "demo":
        return Path(world if world is not None else locations.demo_world()).resolve()
    return Path(world or source).resolve()


@functools.lru_cache(maxsize=4)
def input_world(path: str) -> xr.Dataset:
    """The canonical input world (:func:`data_catalog.worlds.open_world`), opened once
    per process (each Dask worker opens it once)."""
    return open_world(path)

def _set_torch_threads() -> None:
    import torch  # here, not at import: export-netcdf reads a store without torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def warm_worker(spec_json: str) -> bool:
    """Prepare a worker process: one torch thread, the world opened, the models loaded."""
    _set_torch_threads()
    spec = SeriesSpec(**json.loads(spec_json))
    input_world(spec.world)
    load_factory_models(spec.models, spec.checkpoint_dir)
    return True


def run_tile(spec_json: str, store: str, tile: tuple[int, int]) -> dict:
    """Compute one tile over the whole period and write it into ``store``.

    Runs in a Dask worker (or in-process).  The tile is read with its halo and streamed
    by :func:`model.streaming.stream_windows` one store chunk of days at a time; each block
    is written as it comes.  Marks the tile done in the ledger only after its chunk files
    are durable.  Returns timing facts.
    """
    t_start = time.perf_counter()
    _set_torch_threads()
    spec = SeriesSpec(**json.loads(spec_json))
    world = input_world(spec.world)
    models = ModelSet(load_factory_models(spec.models, spec.checkpoint_dir), spec.gap_model)
    nt, ny, nx = spec.shape
    r = spec.region
    # tile core in store indices, and with halo in world indices (clipped to the world)
    y0, x0 = tile[0] * spec.tile, tile[1] * spec.tile
    y1, x1 = min(y0 + spec.tile, ny), min(x0 + spec.tile, nx)
    wy0, wx0 = r["lat"][0] + y0, r["lon"][0] + x0
    hy0, hx0 = max(wy0 - spec.halo, 0), max(wx0 - spec.halo, 0)
    hy1 = min(wy0 + (y1 - y0) + spec.halo, world.sizes[schema.LAT])
    hx1 = min(wx0 + (x1 - x0) + spec.halo, world.sizes[schema.LON])
    core = (slice(wy0 - hy0, wy0 - hy0 + y1 - y0), slice(wx0 - hx0, wx0 - hx0 + x1 - x0))
    window = Window(slice(hy0, hy1), slice(hx0, hx1), core)
    land = world[schema.LAND].isel({schema.LAT: window.lat, schema.LON: window.lon})
    land_core = np.asarray(load(land).values, bool)[core]
    t0_world = int(world.indexes[schema.TIME].get_loc(pd.Timestamp(spec.start)))
    core_world = window.kept()
    sds = _tracker(spec, world.isel(core_world))
    for block in stream_windows(world, [window], t0_world, t0_world + nt, models,
                                warmup_days=spec.warmup_days, stream_days=spec.stream_days,
                                block_days=spec.time_chunk):
        flags = source_flags(block.valid[0], land_core, block.sensors, block.gap_mask[0])
        filled = np.where(land_core[None], block.filled[0], np.nan).astype(np.float32)
        holes = np.isnan(filled[:, land_core])
        if holes.any():  # never write a land pixel-day without a value
            day = pd.Timestamp(block.times[int(np.argwhere(holes)[0, 0])])
            raise DataError(f"tile {tile}: the model left {int(holes.sum())} land pixel-days "
                            f"without a value (first {day:%Y-%m-%d})", spec.world,
                            schema.FILLED_SM)
        dims = schema.GRID_DIMS
        sd, reasons = block_extras(sds, world, core_world, t0_world, block, models, land_core)
        out = xr.Dataset({schema.FILLED_SM: (dims, filled), schema.AMSR_SM: (dims, block.raw[0]),
                          SOURCE_FLAG: (dims, flags), errors.UNCERTAINTY: (dims, sd),
                          schema.REASON_FLAG: (dims, reasons)})
        out.to_zarr(store, region={schema.TIME: slice(block.start, block.stop),
                                   schema.LAT: slice(y0, y1), schema.LON: slice(x0, x1)},
                    zarr_format=3, consolidated=False)
        write_progress(store, tile, block.stop)
    fsync_tile(Path(store), spec, tile)
    mark_done(store, tile)
    return {"tile": list(tile), "seconds": time.perf_counter() - t_start,
            "pixel_days": nt * (y1 - y0) * (x1 - x0)}


def _tracker(spec: SeriesSpec, core: xr.Dataset) -> errors.SeriesTracker | None:
    """The tile's SD tracker: the error model beside the shipped-model checkpoints (None
    without one, or for other model factories: ``filled_sm_uncertainty`` stays NaN, and
    the store's provenance says so)."""
    if spec.models != SHIPPED_MODELS:  # fitted for the checkpoints only
        return None
    return errors.series_tracker(spec.checkpoint_dir, core[schema.LAT].values,
                                 core[schema.LON].values)


# ---------------------------------------------------------------- build
def make_spec(source: str = "demo", *, world: str | Path | None = None,
              start: str = "2003-01-01", end: str = "2023-12-31",
              region: Sequence[float] | None = None, tile: int = 32, halo: int = 8,
              time_chunk: int = 365, models: str = SHIPPED_MODELS,
              checkpoint_dir: str | Path | None = None, gap_model: int = schema.SENSOR_AMSR2,
              warmup_days: int = 30, stream_days: int = 64) -> tuple[SeriesSpec, xr.Dataset]:
    """Validate the arguments of a build against the world; return the spec and world."""
    from model.cache import path_fingerprint, snap_region

    path = resolve_world(source, world)
    ds = input_world(str(path))
    t = ds.indexes[schema.TIME]
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    if t1 < t0:
        raise OutOfRangeError(f"--end {end} is before --start {start}", path)
    if t0 < t[0] or t1 > t[-1]:
        raise OutOfRangeError(f"period {start}..{end} is outside the world's "
                              f"{t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d}", path)
    expected = pd.date_range(t0, t1, freq="D")
    if not expected.isin(t).all():
        raise DataError("the world's time axis is not daily over the period", path)
    if region is None:
        region = (-180.0, -90.0, 180.0, 90.0)
    snapped = snap_region(ds, region)
    if tile < 1 or halo < 0 or time_chunk < 1 or stream_days < 1:
        raise ValueError("tile, time_chunk and stream_days must be positive, halo non-negative")
    ckdir = None if checkpoint_dir is None else str(Path(checkpoint_dir).resolve())
    spec = SeriesSpec(source=source, world=str(path), start=f"{t0:%Y-%m-%d}",
                      end=f"{t1:%Y-%m-%d}", region=snapped, tile=tile, halo=halo,
                      time_chunk=time_chunk, models=models, checkpoint_dir=ckdir,
                      gap_model=int(gap_model), warmup_days=warmup_days,
                      stream_days=stream_days)
    spec.provenance = {"world": path_fingerprint(path),
                       "models": model_provenance(models, ckdir)}
    if spec.shape[1] == 0 or spec.shape[2] == 0:
        raise EmptySelectionError("region holds no cell", path)
    _check_inputs(spec, ds, region)
    return spec, ds


def _check_inputs(spec: SeriesSpec, ds: xr.Dataset, region: Sequence[float]) -> None:
    """Each model fits the days it fills (:func:`model.fit.require_models_fit`); days
    without ASCAT are a logged warning."""
    from model.fit import require_models_fit, warn_missing_ascat

    period = ds.sel({schema.TIME: slice(spec.start, spec.end)})
    require_models_fit(load_factory_models(spec.models, spec.checkpoint_dir), period, region,
                       gap_model=spec.gap_model)
    warn_missing_ascat(period, region)


def build_series(out: str | Path, source: str = "demo", *, scheduler: str | None = None,
                 workers: int = 2, overwrite: bool = False, progress: bool = True,
                 stats: dict | None = None, **spec_kwargs: Any) -> Path:
    """Build (or resume) the seamless series store at ``out``.

    Parameters
    ----------
    out
        Zarr store to write; its ledger is ``<out>.ledger``.
    source
        ``"demo"`` (with optional ``world=PATH``) or the path of a canonical zarr store.
    scheduler
        Address of an existing ``dask.distributed`` scheduler; ``None``: a local
        cluster of ``workers`` processes (one thread each); ``"synchronous"``: no Dask,
        tiles run one after another in this process.
    workers
        Worker processes of the local cluster.
    overwrite
        Delete an existing store built with other settings instead of refusing.
    progress
        Show a tqdm bar (tile-days).
    stats
        Filled with timings when given: ``pixel_days`` computed by this run,
        ``startup_s`` (cluster start and worker preparation: imports, world, models),
        ``tiles_s`` (first submit to last tile done),
        ``wall_s``.
    **spec_kwargs
        ``world, start, end, region, tile, halo, time_chunk, models, checkpoint_dir,
        gap_model, warmup_days`` (:func:`make_spec`).

    Returns
    -------
    pathlib.Path
        The store.
    """
    t_wall = time.perf_counter()
    stats = {} if stats is None else stats
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    spec, world = make_spec(source, **spec_kwargs)
    prepare_store(out, spec, world, overwrite)
    todo = [t for t in spec.tiles() if t not in done_tiles(out)]
    nt = spec.shape[0]
    logger.info("series %s: %d tiles (%d to do), %d days, %d x %d cells", out,
                len(spec.tiles()), len(todo), nt, spec.shape[1], spec.shape[2])
    for t in todo:  # a tile not marked done restarts from its first day
        with contextlib.suppress(FileNotFoundError):
            (ledger_path(out) / f"{tile_name(t)}.progress").unlink()
    _, ny, nx = spec.shape
    stats["pixel_days"] = sum(nt * (min(spec.tile, ny - iy * spec.tile))
                              * (min(spec.tile, nx - ix * spec.tile)) for iy, ix in todo)
    stats.setdefault("startup_s", 0.0)
    stats.setdefault("tiles_s", 0.0)
    if todo:
        _run_tiles(out, spec, todo, scheduler, workers, progress, stats)
    missing = [t for t in spec.tiles() if t not in done_tiles(out)]
    if missing:
        raise DataError(f"{len(missing)} tiles not done after the build", out)
    atomic_write(ledger_path(out) / "complete", "complete\n")
    stats["wall_s"] = time.perf_counter() - t_wall
    return out


def _run_tiles(out: Path, spec: SeriesSpec, todo: list[tuple[int, int]],
               scheduler: str | None, workers: int, progress: bool, stats: dict) -> None:
    from tqdm.auto import tqdm

    spec_json = json.dumps(asdict(spec), sort_keys=True)
    nt = spec.shape[0]
    done_before = progress_days(out)
    bar = tqdm(total=len(spec.tiles()) * nt, initial=min(done_before, len(spec.tiles()) * nt),
               unit="tile-day", disable=not progress, desc="build-series")
    try:
        t0 = time.perf_counter()
        if scheduler == "synchronous":
            for t in todo:
                run_tile(spec_json, str(out), t)
                bar.update(max(progress_days(out) - bar.n, 0))
            stats["tiles_s"] = time.perf_counter() - t0
            return
        from distributed import Client, LocalCluster

        with contextlib.ExitStack() as stack:
            if scheduler:
                client = stack.enter_context(Client(scheduler))
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.WARNING))
                client = stack.enter_context(Client(cluster))
            # every worker imports torch, opens the world and loads the models once, now
            client.run(warm_worker, spec_json)
            t1 = time.perf_counter()
            stats["startup_s"] = t1 - t0
            futures = [client.submit(run_tile, spec_json, str(out), t, pure=False,
                                     key=f"series-{tile_name(t)}-{uuid.uuid4().hex[:6]}")
                       for t in todo]
            pending = set(futures)
            while pending:
                for fut in [f for f in pending if f.done()]:
                    info = fut.result()  # raises the worker's exception here
                    pending.discard(fut)
                    logger.debug("tile %s done in %.1f s", info["tile"], info["seconds"])
                bar.update(max(progress_days(out) - bar.n, 0))
                if pending:
                    time.sleep(0.25)
            stats["tiles_s"] = time.perf_counter() - t1
    finally:
        bar.update(max(progress_days(out) - bar.n, 0))
        bar.close()
