"""The seamless AMSR-E/AMSR2 series: built tile by tile on Dask, resumable, CF-described.

``build_series`` writes a zarr v3 store with, per pixel-day,

``filled_sm``    gap-filled soil moisture (m3 m-3): the AMSR observation where there is
                 one, the model's estimate everywhere else on land, NaN off land
``amsr_sm``      the raw AMSR-E/AMSR2 observation (m3 m-3, NaN in gaps)
``source_flag``  where ``filled_sm`` comes from (CF flags :data:`SOURCE_FLAGS`:
                 observed_amsr_e, observed_amsr2, filled, not_land)

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
import hashlib
import importlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import grid, locations, schema
from data_catalog.errors import (
    DataError,
    EmptySelectionError,
    FormatError,
    OutOfRangeError,
)
from data_catalog.series_store import ledger_path, open_series
from data_catalog.worlds import open_world

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SOURCE_FLAG = "source_flag"
OBSERVED_AMSR_E, OBSERVED_AMSR2, FILLED, NOT_LAND_FLAG = 0, 1, 2, 3
SOURCE_FLAGS: tuple[schema.Flag, ...] = (
    schema.Flag(OBSERVED_AMSR_E, "observed_amsr_e", "Observed (AMSR-E)", "#9467bd"),
    schema.Flag(OBSERVED_AMSR2, "observed_amsr2", "Observed (AMSR2)", "#8c564b"),
    schema.Flag(FILLED, "filled", "Gap-filled (ConvLSTM)", "#17becf"),
    schema.Flag(NOT_LAND_FLAG, "not_land", "Not land", "#ffffff"),
)
#: Fill value of ``source_flag`` chunks never written (an unfinished build): no flag.
SOURCE_FLAG_FILL = -1
#: Model factories: ``"module:function"`` returning ``{sensor: model}``.
SHIPPED_MODELS = "model.inference:load_models"
PERSISTENCE_MODELS = "model.series:persistence_models"
DOI = "https://doi.org/10.1109/JSTARS.2025.3557956"


# ---------------------------------------------------------------- stand-in model
class PersistenceModel:
    """A transparent baseline with the model wrapper's streaming contract.

    Observed days keep the observation; a gap day relaxes yesterday's value towards
    the ASCAT estimate (``ascat_sm / 100 * porosity``) where ASCAT has one, else keeps
    it.  The state is yesterday's value per cell.  It stands in for the ConvLSTM in
    tests and benchmarks when no checkpoint is available, and is deterministic.

    Parameters
    ----------
    relax
        Weight of the ASCAT estimate on a gap day (0: pure persistence).
    porosity
        Converts ASCAT degree of saturation (%) to m3 m-3.
    initial
        Value of a cell that has never been observed nor seen by ASCAT.
    """

    metadata: dict

    def __init__(self, relax: float = 0.2, porosity: float = 0.45, initial: float = 0.25):
        self.relax, self.porosity, self.initial = relax, porosity, initial
        self.metadata = {"name": "persistence", "relax": relax, "porosity": porosity,
                         "initial": initial, "description": PersistenceModel.__doc__.split(
                             "\n")[0]}

    lead_days = 0

    def prepare(self, ds: xr.Dataset, n_days: int | None = None):
        """Canonical slice (its first ``n_days`` days) -> ``(1, T, 3, H, W)``: AMSR (m3 m-3,
        0 in gaps), observed mask, ASCAT as m3 m-3 (NaN where missing)."""
        import torch

        if n_days is not None:
            ds = ds.isel({schema.TIME: slice(0, n_days)})

        amsr = ds[schema.AMSR_SM].values.astype(np.float32)
        observed = np.isfinite(amsr)
        ascat = ds[schema.ASCAT_SM].values.astype(np.float32) / 100.0 * self.porosity
        x = np.stack([np.where(observed, amsr, 0), observed, ascat], axis=1)[None]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def stream(self, x, state=None):
        """Run through the ``T`` days of ``x``; returns ``((1, T, H, W), state)``."""
        import torch

        _, n, _, h, w = x.shape
        prev = (torch.full((h, w), self.initial) if state is None else state.clone())
        out = torch.empty((1, n, h, w), dtype=torch.float32)
        for t in range(n):
            amsr, observed, ascat = x[0, t, 0], x[0, t, 1] > 0, x[0, t, 2]
            relaxed = torch.where(torch.isfinite(ascat),
                                  (1 - self.relax) * prev + self.relax * ascat, prev)
            prev = torch.where(observed, amsr, relaxed)
            out[0, t] = prev
        return out, prev


def persistence_models(**_: Any) -> dict[int, PersistenceModel]:
    """Model factory of the stand-in: the same baseline for both sensors."""
    m = PersistenceModel()
    return {schema.SENSOR_AMSRE: m, schema.SENSOR_AMSR2: m}


# ---------------------------------------------------------------- specification
@dataclass
class SeriesSpec:
    """Everything that determines the output of a build (stored in the store's attrs).

    Attributes
    ----------
    source : str
        ``"demo"`` or the path of a canonical zarr store.
    world : str
        Resolved path of the input store.
    start, end : str
        First and last day (inclusive, ISO).
    region : dict
        Snapped region (:func:`model.cache.snap_region`) of the world.
    tile, halo, time_chunk : int
        Tile edge (cells; also the store's lat/lon chunk), halo (cells), days per
        time block (also the store's time chunk).
    models : str
        Model factory ``"module:function"``; called as ``factory(checkpoint_dir=...,
        device="cpu")``.
    checkpoint_dir : str or None
        Passed to the factory.
    gap_model : int
        Sensor whose model fills days without a radiometer (2: base AMSR2 model).
    warmup_days : int
        Days the state of a newly switched-in model is warmed up on.
    stream_days : int
        Days given to the model per call (bounds the activations held at once).
    provenance : dict
        Model and data fingerprints (checkpoint SHA-256, world listing fingerprint).
    """

    source: str
    world: str
    start: str
    end: str
    region: dict
    tile: int = 32
    halo: int = 8
    time_chunk: int = 365
    models: str = SHIPPED_MODELS
    checkpoint_dir: str | None = None
    gap_model: int = schema.SENSOR_AMSR2
    warmup_days: int = 30
    stream_days: int = 64
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @property
    def shape(self) -> tuple[int, int, int]:
        nt = len(pd.date_range(self.start, self.end, freq="D"))
        r = self.region
        return nt, r["lat"][1] - r["lat"][0], r["lon"][1] - r["lon"][0]

    def tiles(self) -> list[tuple[int, int]]:
        """Tile indices ``(iy, ix)`` in row-major order."""
        _, ny, nx = self.shape
        return [(iy, ix) for iy in range(-(-ny // self.tile)) for ix in range(-(-nx // self.tile))]

    def blocks(self) -> list[tuple[int, int]]:
        """Half-open time index ranges of the blocks (one store chunk each)."""
        nt = self.shape[0]
        return [(t, min(t + self.time_chunk, nt)) for t in range(0, nt, self.time_chunk)]


def _tile_name(tile: tuple[int, int]) -> str:
    return f"tile-{tile[0]:04d}-{tile[1]:04d}"


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


def _load(obj: xr.Dataset) -> xr.Dataset:
    import dask

    # inside a Dask worker a nested compute must not go back to the cluster
    with dask.config.set(scheduler="synchronous"):
        return obj.load()


# ---------------------------------------------------------------- models
def _resolve(spec: str) -> Callable[..., dict]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.lru_cache(maxsize=4)
def load_factory_models(spec: str, checkpoint_dir: str | None) -> dict:
    """Models of a factory spec, loaded once per process on the CPU."""
    kwargs: dict[str, Any] = {"device": "cpu"}
    if checkpoint_dir is not None:
        kwargs["checkpoint_dir"] = checkpoint_dir
    models = _resolve(spec)(**kwargs)
    for m in models.values():
        if hasattr(m, "eval"):
            m.eval()
    return models


_VOLATILE_METADATA = ("created", "date_created", "loaded", "checkpoint_path", "device")


def model_provenance(spec: str, checkpoint_dir: str | None) -> dict:
    """What identifies the models: factory, checkpoint files and their SHA-256, metadata."""
    from model.cache import file_sha256

    prov: dict[str, Any] = {"factory": spec}
    if spec == SHIPPED_MODELS:
        d = Path(checkpoint_dir) if checkpoint_dir else locations.checkpoint_dir()
        prov["checkpoints"] = {p.name: file_sha256(p) for p in sorted(d.glob("*.pt"))}
    models = load_factory_models(spec, checkpoint_dir)
    meta = {}
    for sensor, m in sorted(models.items(), key=lambda kv: str(kv[0])):
        md = getattr(m, "metadata", {}) or {}
        # scalars that identify the model; not where or when it was loaded
        meta[str(sensor)] = {k: md[k] for k in sorted(md) if isinstance(
            md[k], (str, int, float, bool)) and k not in _VOLATILE_METADATA}
    prov["metadata"] = meta
    return prov


def model_for_day(sensor: int, gap_model: int) -> int:
    """Which model (by sensor) fills a day of radiometer ``sensor``."""
    return gap_model if sensor == schema.SENSOR_NONE else int(sensor)


def pick_model(models: dict, sensor: int):
    """The model of a sensor from a factory's dict (keys ``1``/``2`` or ``"amsre"``/``"amsr2"``).

    AMSR-E without a transferred model falls back to the base model, as
    :func:`model.inference.model_for_sensor` does.
    """
    if sensor in models:
        return models[sensor]
    name = {schema.SENSOR_AMSRE: "amsre", schema.SENSOR_AMSR2: "amsr2"}.get(sensor)
    if name in models:
        return models[name]
    for fallback in (schema.SENSOR_AMSR2, "amsr2"):
        if fallback in models:
            return models[fallback]
    raise KeyError(f"no model for sensor {sensor} among {sorted(map(str, models))}")


def _blank_days(ds: xr.Dataset, days: np.ndarray) -> xr.Dataset:
    """``ds`` with AMSR hidden on the ``days`` (boolean over time)."""
    if not days.any():
        return ds
    ds = ds.copy()
    ds[schema.AMSR_SM] = ds[schema.AMSR_SM].where(~xr.DataArray(days, dims=schema.TIME))
    return ds


def _blank_gap_days(ds: xr.Dataset, sensors: np.ndarray) -> xr.Dataset:
    """No radiometer, no observation: whatever the file holds on gap days is hidden."""
    return _blank_days(ds, sensors == schema.SENSOR_NONE)


def _runs(ids: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, value)`` of the runs of equal values in ``ids``."""
    cuts = np.flatnonzero(np.diff(ids)) + 1
    bounds = np.concatenate([[0], cuts, [len(ids)]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield int(a), int(b), int(ids[a])


# ---------------------------------------------------------------- tile work
def _set_torch_threads() -> None:
    import torch  # here, not at import: export-netcdf reads a store without torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def source_flags(observed: np.ndarray, land: np.ndarray, sensor: np.ndarray) -> np.ndarray:
    """Per pixel-day :data:`SOURCE_FLAGS` from the valid-observation mask ``(T, H, W)``,
    the land mask ``(H, W)`` and the sensor of each day ``(T,)``."""
    flag = np.full(observed.shape, FILLED, np.int8)
    s = np.asarray(sensor)[:, None, None]
    flag[observed & (s == schema.SENSOR_AMSRE)] = OBSERVED_AMSR_E
    flag[observed & (s == schema.SENSOR_AMSR2)] = OBSERVED_AMSR2
    flag[:, ~land] = NOT_LAND_FLAG
    return flag


def warm_worker(spec_json: str) -> bool:
    """Prepare a worker process: one torch thread, the world opened, the models loaded."""
    _set_torch_threads()
    spec = SeriesSpec(**json.loads(spec_json))
    input_world(spec.world)
    load_factory_models(spec.models, spec.checkpoint_dir)
    return True


def run_tile(spec_json: str, store: str, tile: tuple[int, int]) -> dict:
    """Compute one tile over the whole period and write it into ``store``.

    Runs in a Dask worker (or in-process).  Marks the tile done in the ledger only
    after its chunk files are durable.  Returns timing facts.
    """
    t_start = time.perf_counter()
    _set_torch_threads()
    spec = SeriesSpec(**json.loads(spec_json))
    world = input_world(spec.world)
    models = load_factory_models(spec.models, spec.checkpoint_dir)
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
    inputs = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.LAND)
              if v in world]
    sub = world[inputs].isel({schema.LAT: slice(hy0, hy1), schema.LON: slice(hx0, hx1)})
    t0_world = int(world.indexes[schema.TIME].get_loc(pd.Timestamp(spec.start)))
    land_core = np.asarray(_load(sub[schema.LAND]).values, bool)[core]

    lat_core = sub[schema.LAT].values[core[0]]
    lon_core = sub[schema.LON].values[core[1]]
    current, state = None, None
    # look-ahead models read days after each block (as many as the world holds)
    lead_max = max((int(getattr(m, "lead_days", 0)) for m in models.values()), default=0)
    for b0, b1 in spec.blocks():
        e1 = min(t0_world + b1 + lead_max, world.sizes[schema.TIME])
        blockx = _load(sub.isel({schema.TIME: slice(t0_world + b0, e1)}))
        sensorsx = blockx[schema.SENSOR].values.astype(int)
        raw = blockx[schema.AMSR_SM].values[(slice(b1 - b0), *core)].astype(np.float32)
        blockx = _blank_gap_days(blockx, sensorsx)
        idsx = np.array([model_for_day(s, spec.gap_model) for s in sensorsx])
        block, sensors, ids = blockx.isel({schema.TIME: slice(0, b1 - b0)}), \
            sensorsx[:b1 - b0], idsx[:b1 - b0]
        pred = np.empty((b1 - b0, y1 - y0, x1 - x0), np.float32)
        obs = np.empty_like(pred)
        for a, b, mid in _runs(ids):
            model = pick_model(models, mid)
            if mid != current:  # a model switched in: warm its state up on the days before
                w0 = max(t0_world + b0 + a - spec.warmup_days, 0)
                state = None
                if w0 < t0_world + b0 + a and spec.warmup_days > 0:
                    warm = _load(sub.isel({schema.TIME: slice(w0, t0_world + b0 + a)}))
                    warm = _blank_gap_days(warm, warm[schema.SENSOR].values.astype(int))
                    _, state = model.stream(model.prepare(warm), None)
                current = mid
            lead = int(getattr(model, "lead_days", 0))
            for c0 in range(a, b, spec.stream_days):
                c1 = min(c0 + spec.stream_days, b)
                ce = min(c1 + lead, len(idsx))  # look-ahead days of this model's radiometer
                xin = _blank_days(blockx.isel({schema.TIME: slice(c0, ce)}), idsx[c0:ce] != mid)
                x = model.prepare(xin, n_days=c1 - c0)
                y, state = model.stream(x, state)
                y = y.detach().float().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
                pred[c0:c1] = y[(0, slice(None), *core)]
            # observations kept, in the model's reference climatology (as predict() does)
            to_ref = getattr(model, "to_reference", None)
            obs[a:b] = raw[a:b] if to_ref is None else to_ref(raw[a:b], lat_core, lon_core)
        gm = block[schema.GAP_MASK].values[(slice(None), *core)]
        valid = np.isfinite(raw) & (gm == schema.OBSERVED) & (sensors != schema.SENSOR_NONE
                                                              )[:, None, None]
        flags = source_flags(valid, land_core, sensors)
        filled = np.where(valid, obs, pred)
        filled = np.where(land_core[None], filled, np.nan).astype(np.float32)
        holes = np.isnan(filled[:, land_core])
        if holes.any():  # never write a land pixel-day without a value
            day = pd.Timestamp(block[schema.TIME].values[int(np.argwhere(holes)[0, 0])])
            raise DataError(f"tile {tile}: the model left {int(holes.sum())} land pixel-days "
                            f"without a value (first {day:%Y-%m-%d})", spec.world,
                            schema.FILLED_SM)
        amsr = raw
        dims = schema.GRID_DIMS
        out = xr.Dataset({schema.FILLED_SM: (dims, filled), schema.AMSR_SM: (dims, amsr),
                          SOURCE_FLAG: (dims, flags)})
        out.to_zarr(store, region={schema.TIME: slice(b0, b1), schema.LAT: slice(y0, y1),
                                   schema.LON: slice(x0, x1)},
                    zarr_format=3, consolidated=False)
        _write_progress(store, tile, b1)
    _fsync_tile(Path(store), spec, tile)
    _mark_done(store, tile)
    return {"tile": list(tile), "seconds": time.perf_counter() - t_start,
            "pixel_days": nt * (y1 - y0) * (x1 - x0)}


def _fsync_tile(store: Path, spec: SeriesSpec, tile: tuple[int, int]) -> None:
    """fsync the chunk files of a tile (chunks are aligned with tiles)."""
    for var in (schema.FILLED_SM, schema.AMSR_SM, SOURCE_FLAG):
        for tb in range(len(spec.blocks())):
            f = store / var / "c" / str(tb) / str(tile[0]) / str(tile[1])
            if f.exists():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mark_done(store: str | Path, tile: tuple[int, int]) -> None:
    _atomic_write(ledger_path(store) / f"{_tile_name(tile)}.done", "done\n")


def _write_progress(store: str | Path, tile: tuple[int, int], days: int) -> None:
    with contextlib.suppress(OSError):
        _atomic_write(ledger_path(store) / f"{_tile_name(tile)}.progress", f"{days}\n")


def done_tiles(store: str | Path) -> set[tuple[int, int]]:
    """Tiles marked done in the ledger of ``store``."""
    led = ledger_path(store)
    out = set()
    for f in led.glob("tile-*.done"):
        _, iy, ix = f.stem.split("-")
        out.add((int(iy), int(ix)))
    return out


def _progress_days(store: str | Path) -> int:
    total = 0
    for f in ledger_path(store).glob("tile-*.progress"):
        with contextlib.suppress(OSError, ValueError):
            total += int(f.read_text())
    return total


# ---------------------------------------------------------------- the store
def series_attrs(spec: SeriesSpec) -> dict:
    """Global CF/ACDD attributes of the store (deterministic: no build time)."""
    prov = spec.provenance
    return {
        "Conventions": "CF-1.10",
        "title": "Seamless gap-filled AMSR-E/AMSR2 surface soil moisture",
        "summary": "AMSR-E (2003-2011) and AMSR2 (2012-) surface soil moisture with gaps "
                   "filled by a ConvLSTM (AMSR-E days: the transferred AMSR-E model; AMSR2 "
                   "days and the 2011-10-04..2012-07-01 gap: the base AMSR2 model).",
        "references": f"Sivaprasad et al. (2025), IEEE JSTARS, {DOI}",
        "source": f"gapfill build-series --source {spec.source}",
        "input_world": Path(spec.world).name,
        "input_fingerprint": json.dumps(prov.get("world", {}), sort_keys=True),
        "model_provenance": json.dumps(prov.get("models", {}), sort_keys=True),
        "time_coverage_start": spec.start,
        "time_coverage_end": spec.end,
        "series_build_spec": json.dumps(asdict(spec), sort_keys=True),
        "series_build_digest": spec.digest(),
        "series_format_version": FORMAT_VERSION,
    }


def variable_attrs() -> dict[str, dict]:
    return {
        schema.FILLED_SM: {"units": schema.UNITS[schema.FILLED_SM],
                           "long_name": "gap-filled surface soil moisture (AMSR-E/AMSR2 "
                                        "observation where available, ConvLSTM elsewhere)",
                           "standard_name": "volume_fraction_of_condensed_water_in_soil",
                           "ancillary_variables": SOURCE_FLAG},
        schema.AMSR_SM: {"units": schema.UNITS[schema.AMSR_SM],
                         "long_name": schema.LONG_NAMES[schema.AMSR_SM] + " (as observed)",
                         "standard_name": "volume_fraction_of_condensed_water_in_soil"},
        SOURCE_FLAG: {**schema.flag_attrs(SOURCE_FLAGS, "source of filled_sm"),
                      "valid_range": np.array([0, len(SOURCE_FLAGS) - 1], np.int8)},
    }


def coord_attrs() -> dict[str, dict]:
    return {
        schema.LAT: {"units": "degrees_north", "standard_name": "latitude",
                     "long_name": "latitude of the cell centre", "axis": "Y"},
        schema.LON: {"units": "degrees_east", "standard_name": "longitude",
                     "long_name": "longitude of the cell centre", "axis": "X"},
        schema.TIME: {"standard_name": "time", "long_name": "day (UTC)", "axis": "T"},
    }


def _compressors() -> tuple:
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(level=3), Crc32cCodec())


def create_store(out: Path, spec: SeriesSpec, world: xr.Dataset) -> None:
    """Pre-create the store (metadata, coordinates, land) atomically: temp, then rename."""
    import dask.array as da

    nt, ny, nx = spec.shape
    r = spec.region
    sel = {schema.LAT: slice(*r["lat"]), schema.LON: slice(*r["lon"])}
    times = pd.date_range(spec.start, spec.end, freq="D")
    w = world.isel(sel).sel({schema.TIME: times})
    # chunks are the tiles (never larger than the grid): a chunk has exactly one writer
    chunks = (min(spec.time_chunk, nt), min(spec.tile, ny), min(spec.tile, nx))
    dims = schema.GRID_DIMS
    attrs = variable_attrs()

    def empty(dtype, fill):
        return da.full((nt, ny, nx), fill, dtype=dtype, chunks=chunks)

    ca = coord_attrs()
    template = xr.Dataset(
        {schema.FILLED_SM: (dims, empty(np.float32, np.nan), attrs[schema.FILLED_SM]),
         schema.AMSR_SM: (dims, empty(np.float32, np.nan), attrs[schema.AMSR_SM]),
         SOURCE_FLAG: (dims, empty(np.int8, SOURCE_FLAG_FILL), attrs[SOURCE_FLAG]),
         schema.LAND: ((schema.LAT, schema.LON), np.asarray(_load(w[schema.LAND]).values, bool),
                       {"long_name": schema.LONG_NAMES[schema.LAND]})},
        coords={schema.TIME: (schema.TIME, times.values.astype("datetime64[ns]"),
                              ca[schema.TIME]),
                schema.LAT: (schema.LAT, w[schema.LAT].values.astype(np.float64), ca[schema.LAT]),
                schema.LON: (schema.LON, w[schema.LON].values.astype(np.float64), ca[schema.LON]),
                schema.SENSOR: (schema.TIME, w[schema.SENSOR].values.astype(np.int8),
                                schema.sensor_attrs())},
        attrs=series_attrs(spec),
    )
    enc: dict[str, dict] = {v: {"chunks": chunks, "compressors": _compressors()}
                            for v in (schema.FILLED_SM, schema.AMSR_SM, SOURCE_FLAG)}
    enc[SOURCE_FLAG]["fill_value"] = SOURCE_FLAG_FILL
    enc[schema.LAND] = {"compressors": _compressors()}
    enc[schema.TIME] = {"units": "days since 1970-01-01", "calendar": "standard",
                        "dtype": "int32", "compressors": _compressors()}
    for c in (schema.LAT, schema.LON, schema.SENSOR):
        enc[c] = {"compressors": _compressors()}
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        template.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False, compute=False,
                         encoding=enc)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _prepare(out: Path, spec: SeriesSpec, world: xr.Dataset, overwrite: bool) -> None:
    """Create (or check and reuse) the store and its ledger."""
    led = ledger_path(out)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if out.exists() and overwrite:
        shutil.rmtree(out)
        shutil.rmtree(led, ignore_errors=True)
    if out.exists():
        try:
            import zarr

            have = zarr.open_group(out, mode="r").attrs.get("series_build_digest")
        except Exception as exc:
            raise FormatError(f"exists but is not a series store ({exc}); choose another "
                              "--out or pass --overwrite", out) from exc
        if have != spec.digest():
            raise FormatError("exists and was built with other settings, inputs or models; "
                              "choose another --out or pass --overwrite", out)
        if not (led / "spec.json").exists():  # store without ledger: nothing is known done
            shutil.rmtree(led, ignore_errors=True)
            led.mkdir(parents=True)
            _atomic_write(led / "spec.json", json.dumps(asdict(spec), sort_keys=True))
        logger.info("resuming %s: %d of %d tiles already done", out, len(done_tiles(out)),
                    len(spec.tiles()))
        return
    shutil.rmtree(led, ignore_errors=True)  # a ledger without its store is meaningless
    led.mkdir(parents=True)
    _atomic_write(led / "spec.json", json.dumps(asdict(spec), sort_keys=True))
    create_store(out, spec, world)


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
    _prepare(out, spec, world, overwrite)
    todo = [t for t in spec.tiles() if t not in done_tiles(out)]
    nt = spec.shape[0]
    logger.info("series %s: %d tiles (%d to do), %d days, %d x %d cells", out,
                len(spec.tiles()), len(todo), nt, spec.shape[1], spec.shape[2])
    for t in todo:  # a tile not marked done restarts from its first day
        with contextlib.suppress(FileNotFoundError):
            (ledger_path(out) / f"{_tile_name(t)}.progress").unlink()
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
    _atomic_write(ledger_path(out) / "complete", "complete\n")
    stats["wall_s"] = time.perf_counter() - t_wall
    return out


def _run_tiles(out: Path, spec: SeriesSpec, todo: list[tuple[int, int]],
               scheduler: str | None, workers: int, progress: bool, stats: dict) -> None:
    from tqdm.auto import tqdm

    spec_json = json.dumps(asdict(spec), sort_keys=True)
    nt = spec.shape[0]
    done_before = _progress_days(out)
    bar = tqdm(total=len(spec.tiles()) * nt, initial=min(done_before, len(spec.tiles()) * nt),
               unit="tile-day", disable=not progress, desc="build-series")
    try:
        t0 = time.perf_counter()
        if scheduler == "synchronous":
            for t in todo:
                run_tile(spec_json, str(out), t)
                bar.update(max(_progress_days(out) - bar.n, 0))
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
                                     key=f"series-{_tile_name(t)}-{uuid.uuid4().hex[:6]}")
                       for t in todo]
            pending = set(futures)
            while pending:
                for fut in [f for f in pending if f.done()]:
                    info = fut.result()  # raises the worker's exception here
                    pending.discard(fut)
                    logger.debug("tile %s done in %.1f s", info["tile"], info["seconds"])
                bar.update(max(_progress_days(out) - bar.n, 0))
                if pending:
                    time.sleep(0.25)
            stats["tiles_s"] = time.perf_counter() - t1
    finally:
        bar.update(max(_progress_days(out) - bar.n, 0))
        bar.close()


# ---------------------------------------------------------------- reading and export
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
