"""Inference: one filled day for a region (``gapfill predict``), on CPU or CUDA.

* The model matching the date's radiometer is used: the AMSR2 base model for AMSR2 days
  and for the 2011/2012 gap year (no AMSR at all: ASCAT + state fill it), the transferred
  AMSR-E model for AMSR-E days.
* The model streams ``lookback`` days up to the date.  The region is read with a margin of
  spatial context, and large regions are cut into tiles whose halo is the receptive field
  of the whole window (``lookback x sum of ConvLSTM radii + head radius``), so tiles stitch
  without seams: a tiled result equals the untiled one.
* CUDA: autocast to bfloat16 (float16 where bf16 is unsupported), channels_last, a tile size
  from the free memory, and a CUDA out-of-memory error halves the tile and retries.
* CPU: bf16 convolutions on NHWC tensors where the CPU has native bf16 (else float32);
  ``GAPFILL_CPU_PRECISION=float32`` forces float32.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from data_catalog import grid, locations, schema
from data_catalog.errors import EmptySelectionError, MissingFileError, OutOfRangeError
from model import errors
from model.tensors import amsr_valid_mask
from model.wrapper import GapFiller, code_version

log = logging.getLogger(__name__)

MIN_TILE = 8
CPU_MEMORY_BUDGET = 2 * 1024**3
"""Bytes of activations a CPU tile may take (the tile size follows from it)."""


def default_checkpoint() -> Path:
    """The AMSR2 base model of the checkpoint folder (:func:`locations.checkpoint_dir`)."""
    return locations.checkpoint_dir() / "amsr2.pt"


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU falls back with a warning."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        log.warning("CUDA requested but not available; using the CPU")
        return torch.device("cpu")
    return dev


def configure_for_device(model: GapFiller, device: torch.device) -> GapFiller:
    """Move ``model`` to ``device`` with its fast settings (mixed precision on CUDA)."""
    model.to(device)
    model.eval()
    if device.type == "cuda":
        model.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        model.channels_last = True
    elif cpu_bf16() and os.environ.get("GAPFILL_CPU_PRECISION", "auto") != "float32":
        # native bf16 (avx512_bf16 / amx): convolutions in bf16 on NHWC tensors, gates and
        # cell state in float32 (bench.inference: ~1.4-1.5x the naive float32 ConvLSTM;
        # output differs from float32 by < 1e-3 m3/m3)
        model.amp_dtype = torch.bfloat16
        model.channels_last = True
    else:
        model.amp_dtype = None
        model.channels_last = False
    return model


@lru_cache(maxsize=1)
def cpu_bf16() -> bool:
    """Whether the CPU has native bfloat16 arithmetic (``avx512_bf16`` or ``amx_bf16``)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return (" avx512_bf16" in flags or " amx_bf16" in flags) and \
        torch.backends.mkldnn.is_available()


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float, device: str) -> GapFiller:
    return configure_for_device(GapFiller.load(path, "cpu"), torch.device(device))


def load_model(path: str | Path, device: str | torch.device = "auto") -> GapFiller:
    """Load (and cache) one checkpoint configured for ``device``."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError("checkpoint not found", p)
    return _load_cached(str(p.resolve()), p.stat().st_mtime, str(select_device(device)))


def load_models(checkpoint_dir: str | Path | None = None, device: str | torch.device = "auto"
                ) -> dict[str, GapFiller]:
    """Sensor name -> model: ``amsr2`` (base) and ``amsre`` (transferred) from a directory
    (default :func:`data_catalog.locations.checkpoint_dir`)."""
    d = Path(checkpoint_dir) if checkpoint_dir is not None else locations.checkpoint_dir()
    models = {}
    for name in ("amsr2", "amsre"):
        p = d / f"{name}.pt"
        if p.exists():
            models[name] = load_model(p, device)
    if "amsr2" not in models:
        raise MissingFileError("no amsr2.pt base model in the checkpoint directory "
                               "(train one with `gapfill train`)", d)
    return models


def sensor_of_date(world: xr.Dataset, date: pd.Timestamp) -> int:
    """The radiometer of a day: the world's ``sensor`` coordinate, else the mission dates."""
    if schema.SENSOR in world.coords:
        try:
            return int(world[schema.SENSOR].sel({schema.TIME: date}).values)
        except KeyError:
            pass
    return schema.sensor_for_date(date)


def model_for_sensor(models: dict[str, GapFiller], sensor: int) -> GapFiller:
    """AMSR-E days -> the transferred model (if shipped); AMSR2 days and the gap year -> base."""
    if sensor == schema.SENSOR_AMSRE and "amsre" in models:
        return models["amsre"]
    return models["amsr2"]


def snap_region(world: xr.Dataset, region) -> tuple[slice, slice]:
    """Index slices ``(lat, lon)`` of the cells whose centres lie in ``(W, S, E, N)``.

    A region smaller than a cell snaps to the nearest cell; one outside the grid raises
    :class:`OutOfRangeError` (:func:`data_catalog.grid.index_slices` on the world's grid;
    ``region`` may also be an object with ``bounds``).
    """
    if hasattr(region, "bounds"):
        region = region.bounds
    return grid.index_slices(world[schema.LAT].values, world[schema.LON].values, region)


def tiles(h: int, w: int, tile: int | None) -> list[tuple[int, int, int, int]]:
    """Core tiles ``(i0, i1, j0, j1)`` covering an ``h x w`` grid."""
    if tile is None or tile >= max(h, w):
        return [(0, h, 0, w)]
    return [(i, min(i + tile, h), j, min(j + tile, w))
            for i in range(0, h, tile) for j in range(0, w, tile)]


def auto_tile_size(model: GapFiller, steps: int, device: torch.device, halo: int) -> int:
    """Largest square core tile whose activations fit in the free memory (CUDA) or budget."""
    f = sum(model.model_config.filters)
    per_pixel = steps * (model.n_channels + 6 * f) * 4 * 2  # gates + states + outputs, margin 2
    if model.amp_dtype in (torch.float16, torch.bfloat16):
        per_pixel //= 2
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = 0.6 * free
    else:
        budget = CPU_MEMORY_BUDGET
    side = int(math.sqrt(budget / per_pixel)) - 2 * halo
    return max(MIN_TILE, side)


def run_tiled(model: GapFiller, x: torch.Tensor, *, tile: int | None, halo: int,
              progress: Callable[[float], Any] | None = None) -> tuple[np.ndarray, int | None]:
    """Last-day prediction ``(H, W)`` of ``x`` (1, T, C, H, W), tiled with halos.

    A CUDA out-of-memory error halves the tile size and starts again.  Returns the field
    and the tile size that succeeded (None: one piece).
    """
    _, _, _, h, w = x.shape
    while True:
        try:
            out = np.empty((h, w), np.float32)
            plan = tiles(h, w, tile)
            for k, (i0, i1, j0, j1) in enumerate(plan):
                a0, a1 = max(0, i0 - halo), min(h, i1 + halo)
                b0, b1 = max(0, j0 - halo), min(w, j1 + halo)
                xt = x[:, :, :, a0:a1, b0:b1].to(model.device)
                sm, _ = model.stream(xt)
                out[i0:i1, j0:j1] = sm[0, -1, i0 - a0:i1 - a0, j0 - b0:j1 - b0].float().cpu()
                if progress is not None:
                    progress((k + 1) / len(plan))
            return out, (None if len(plan) == 1 else tile)
        except torch.cuda.OutOfMemoryError:
            current = tile if tile is not None else max(h, w)
            new = current // 2
            if new < MIN_TILE:
                raise
            log.warning("CUDA out of memory with tile %d; retrying with tile %d", current, new)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            tile = new


def predict(world: xr.Dataset, region, date, checkpoint: str | Path | GapFiller | None = None,
            *, device: str | torch.device = "auto", lookback: int | None = None,
            progress: Callable[[float], Any] | None = None, tile: int | None | str = "auto",
            context: int | None = None) -> xr.Dataset:
    """Gap-filled soil moisture of one day over a region.

    Parameters
    ----------
    world : xr.Dataset
        Canonical dataset (``amsr_sm``, ``gap_mask``, ``ascat_sm``; ``truth_sm`` optional).
    region : (W, S, E, N) or object with ``.bounds``
        Degrees; snapped to the cells whose centres fall inside.
    date : str or datetime-like
        The day to fill.
    checkpoint : path, GapFiller or None
        None: the shipped models, chosen by the date's radiometer.
    device : {"auto", "cpu", "cuda"} or torch.device
    lookback : int, optional
        Days streamed up to the date (default: the checkpoint's ``lookback``).
    progress : callable, optional
        Called with the fraction of tiles done.
    tile : int, None or "auto"
        Core tile size in cells; None: one piece; "auto": from the memory available.
    context : int, optional
        Cells of spatial context read around the region (default: the receptive field, so a
        region's values equal the same cells of a larger request).

    Returns
    -------
    xr.Dataset
        ``filled_sm`` (observations kept where observed, in the model's reference
        climatology), ``source_flag`` (:data:`data_catalog.schema.SOURCE_FLAGS`: observed,
        filled, filled under frozen ground, not land), ``amsr_sm``, ``gap_mask``, ``ascat_sm``
        (+ ``truth_sm``, ``land``) on ``(lat, lon)`` with a scalar ``time``, and provenance
        attributes.
    """
    dev = select_device(device)
    day = pd.Timestamp(date).normalize()
    times = pd.DatetimeIndex(world[schema.TIME].values)
    if len(times) == 0 or day < times[0] or day > times[-1]:
        raise OutOfRangeError(f"date {day.date()} outside the dataset "
                              f"({times[0].date()}..{times[-1].date()})", variable=schema.TIME)
    ti = int(times.get_indexer([day])[0])
    if ti < 0:
        raise EmptySelectionError(f"date {day.date()} is not a day of the dataset",
                                  variable=schema.TIME)
    sensor = sensor_of_date(world, day)
    if isinstance(checkpoint, GapFiller):
        model = checkpoint
        if model.device != dev:
            model = configure_for_device(model, dev)
    elif checkpoint is not None:
        model = load_model(checkpoint, dev)
    else:
        model = model_for_sensor(load_models(None, dev), sensor)
    steps = int(lookback or model.metadata.get("lookback", 32))
    t0 = max(0, ti - steps + 1)
    steps = ti - t0 + 1
    halo = model.receptive_radius(steps)
    ctx = halo if context is None else int(context)
    lat_sl, lon_sl = snap_region(world, region)
    nlat, nlon = world.sizes[schema.LAT], world.sizes[schema.LON]
    c_lat = slice(max(0, lat_sl.start - ctx), min(nlat, lat_sl.stop + ctx))
    c_lon = slice(max(0, lon_sl.start - ctx), min(nlon, lon_sl.stop + ctx))
    # look-ahead models also read the days after the date (as many as the record holds)
    t_end = min(ti + 1 + model.lead_days, len(times))
    sub = world.isel({schema.TIME: slice(t0, t_end), schema.LAT: c_lat, schema.LON: c_lon})
    names = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.TRUTH_SM,
                         schema.LAND, schema.AMSR_SM_ERROR) if v in sub]
    sub = sub[names].load()
    if sensor == schema.SENSOR_NONE:  # the gap year: no radiometer, whatever the file holds
        sub[schema.AMSR_SM] = sub[schema.AMSR_SM].where(False)
    elif schema.SENSOR in sub.coords:  # look-ahead days of another radiometer are not seen
        other = sub[schema.SENSOR] != sensor
        sub[schema.AMSR_SM] = sub[schema.AMSR_SM].where(~other)
    x = model.prepare(sub, device="cpu", n_days=steps)  # tiles go to the device one at a time
    if tile == "auto":
        tile_n: int | None = auto_tile_size(model, steps, dev, halo)
    else:
        tile_n = None if tile is None else int(tile)
    field, used_tile = run_tiled(model, x, tile=tile_n, halo=halo, progress=progress)
    # crop the region out of the context
    ri = slice(lat_sl.start - c_lat.start, lat_sl.stop - c_lat.start)
    rj = slice(lon_sl.start - c_lon.start, lon_sl.stop - c_lon.start)
    field = field[ri, rj]
    today = sub.isel({schema.TIME: steps - 1, schema.LAT: ri, schema.LON: rj})
    amsr = np.asarray(today[schema.AMSR_SM].values, np.float32)
    gm = today[schema.GAP_MASK].values if schema.GAP_MASK in today else None
    valid = amsr_valid_mask(amsr, gm)
    lat = today[schema.LAT].values
    lon = today[schema.LON].values
    obs_ref = model.to_reference(amsr, lat, lon)
    filled = np.where(valid, obs_ref, field).astype(np.float32)
    if schema.LAND in today:
        land = np.asarray(today[schema.LAND].values, bool)
    elif gm is not None:
        land = gm != schema.NOT_LAND
    else:
        land = np.ones(filled.shape, bool)
    filled[~land] = np.nan
    out = today.drop_vars([v for v in today.data_vars if v not in names])
    out[schema.FILLED_SM] = ((schema.LAT, schema.LON), filled,
                             {"units": schema.UNITS[schema.FILLED_SM],
                              "long_name": schema.LONG_NAMES[schema.FILLED_SM],
                              "comment": "observations where observed, ConvLSTM elsewhere; "
                                         "in the enhanced-AMSR2 reference climatology"})
    out[schema.SOURCE_FLAG] = ((schema.LAT, schema.LON),
                               schema.source_flags(valid[None], land, np.array([sensor]),
                                                   None if gm is None else gm[None])[0],
                               schema.source_flag_attrs())
    asc_today = (np.isfinite(np.asarray(today[schema.ASCAT_SM].values))
                 if schema.ASCAT_SM in today else np.zeros(filled.shape, bool))
    out[schema.REASON_FLAG] = ((schema.LAT, schema.LON), schema.reason_flags(
        gm if gm is not None else np.where(valid, 0, schema.INVALID), land & ~valid, asc_today,
        later_days=t_end - ti - 1 > 0, amsre_rescaled=bool(model.has_matching) & valid,
        land=land), schema.reason_attrs())
    em = errors.load_for(model)
    if em is not None:
        sd = errors.day_uncertainty(em, model, sub, steps - 1, ri, rj, filled)
        sd[~land] = np.nan
        out[errors.UNCERTAINTY] = ((schema.LAT, schema.LON), sd,
                                   errors.uncertainty_attrs(schema.AMSR_SM_ERROR in sub))
    out[schema.FILLED_SM].attrs["ancillary_variables"] = " ".join(
        v for v in (errors.UNCERTAINTY, schema.REASON_FLAG) if v in out)
    ck = model.metadata.get("checkpoint_path", "")
    out.attrs = {
        "title": "gap-filled AMSR soil moisture (ConvLSTM)",
        "date": str(day.date()),
        "region": ",".join(f"{float(v):g}" for v in (region.bounds if hasattr(region, "bounds")
                                                      else region)),
        "sensor": int(sensor),
        "sensor_name": dict((f.value, f.meaning) for f in schema.SENSOR_FLAGS)[int(sensor)],
        "model_sensor": model.sensor,
        "checkpoint": str(ck),
        "checkpoint_sha256": str(model.metadata.get("checkpoint_sha256", "")),
        "parent_checkpoint_sha256": str((model.metadata.get("parent") or {}).get("sha256", "")),
        "device": str(dev),
        "precision": str(model.amp_dtype).replace("torch.", "") if model.amp_dtype
        else "float32",
        "lookback_days": int(steps),
        "lead_days": int(t_end - ti - 1),
        "halo_cells": int(halo),
        "context_cells": int(ctx),
        "tile_cells": int(used_tile) if used_tile else 0,
        "code_version": code_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return out


def stream_arrays(model: GapFiller, amsr: np.ndarray, valid: np.ndarray, ascat: np.ndarray,
                  doy: np.ndarray, *, chunk_days: int = 64, state=None, progress: bool = False
                  ) -> tuple[np.ndarray, list]:
    """Stream physical arrays ``(T, H, W)`` through the model in chunks of days.

    ``amsr`` must already be in the model's reference climatology (see
    :meth:`GapFiller.to_reference`).  Returns the output ``(T, H, W)`` and the final state.
    """
    from tqdm.auto import tqdm

    from model.tensors import channels_from_arrays

    n = amsr.shape[0]
    lead = model.lead_days
    out = np.empty(amsr.shape, np.float32)
    for t0 in tqdm(range(0, n, chunk_days), disable=not progress, desc="stream", unit="chunk"):
        sl = slice(t0, t0 + chunk_days)
        ext = slice(t0, t0 + chunk_days + lead)  # look-ahead days after the chunk
        x = channels_from_arrays(amsr[ext], valid[ext], ascat[ext], doy[ext], model.stats,
                                 lead=lead, n_days=len(range(n)[sl]))
        sm, state = model.stream(torch.from_numpy(x)[None].to(model.device), state)
        out[sl] = sm[0].float().cpu().numpy()
    return out, state


def fill_series(model: GapFiller, ds: xr.Dataset, *, chunk_days: int = 64, state=None,
                progress: bool = False) -> tuple[np.ndarray, list]:
    """Stream a whole canonical slice through the model, carrying the state between chunks.

    Returns the model output ``(T, H, W)`` in m3 m-3 (reference climatology for a matched
    model; observations are *not* merged in) and the final state.
    """
    from tqdm.auto import tqdm

    n = ds.sizes[schema.TIME]
    out = np.empty((n, ds.sizes[schema.LAT], ds.sizes[schema.LON]), np.float32)
    for t0 in tqdm(range(0, n, chunk_days), disable=not progress, desc="stream", unit="chunk"):
        m = len(range(n)[t0:t0 + chunk_days])
        sub = ds.isel({schema.TIME: slice(t0, t0 + m + model.lead_days)})
        sm, state = model.stream(model.prepare(sub, n_days=m), state)
        out[t0:t0 + m] = sm[0].float().cpu().numpy()
    return out, state
