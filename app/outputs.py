"""Model outputs of the app: which checkpoint, which device label, which cache key, and
the series store.

:func:`resolve_checkpoint` turns the checkpoint selector's value into what
``model.inference.predict`` takes; :func:`output_key` is the inference-cache key of one
day's output (:mod:`model.cache`, torch-free); :func:`series_filled` reads a day of the
series store (``gapfill build-series``) when it covers the region and day: the first place
a filled field comes from (then the inference cache, then a fill).  Every location comes from
:mod:`data_catalog.locations`.  Nothing here imports Panel, Bokeh, HoloViews or torch
(:func:`describe_device` imports torch only for a CUDA device, which only the worker has).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import grid, locations, schema
from data_catalog.errors import GapfillError, MissingFileError
from data_catalog.series_store import is_complete, open_series
from model.cache import make_key, path_fingerprint

log = logging.getLogger(__name__)

#: the demo world's source name (its cache keys use the store's fingerprint)
DEMO_SOURCE = "demo"


def describe_device(device) -> str:
    """'CUDA: <name>' or 'CPU' for a torch device (string or object)."""
    name = str(device)
    if name.startswith("cuda"):
        try:
            import torch

            return f"CUDA: {torch.cuda.get_device_name(torch.device(name))}"
        except Exception:  # noqa: BLE001 - a label only
            return "CUDA"
    return "CPU"


def resolve_checkpoint(checkpoint: str = "") -> str | None:
    """The checkpoint to pass to ``predict``: an explicit path, or ``None`` (the models of
    :func:`data_catalog.locations.checkpoint_dir`, chosen by radiometer).

    Raises
    ------
    MissingFileError
        The named checkpoint, or any shipped model, is missing.
    """
    if checkpoint:
        if not Path(checkpoint).exists():
            raise MissingFileError("checkpoint not found", checkpoint)
        return checkpoint
    d = locations.checkpoint_dir()
    if not (d / "amsr2.pt").exists():
        raise MissingFileError("no model checkpoint (amsr2.pt) found; train one with "
                               "`gapfill train` or point $GAPFILL_CHECKPOINTS at a folder", d)
    return None


@functools.lru_cache(maxsize=8)
def _store_fingerprint(path: str, mtime_ns: int) -> dict:
    return path_fingerprint(path)


def output_key(world: xr.Dataset, source: str, region, date, checkpoint: str = ""):
    """Cache key of the app's one-day output, or ``None`` when no checkpoint exists.

    The key covers the checkpoint bytes (both shipped models when none is named, since the
    date picks one), the input store's fingerprint (its file listing with sizes and
    modification times; for an in-memory source, the look-back window's arrays), the
    region snapped to grid indices, the date and the output dtype.
    """
    try:
        ck = resolve_checkpoint(checkpoint)
    except MissingFileError:
        return None
    if ck is None:
        d = locations.checkpoint_dir()
        ckpt = {n: d / f"{n}.pt" for n in ("amsr2", "amsre") if (d / f"{n}.pt").exists()}
    else:
        ckpt = [ck]
    date = pd.Timestamp(date).normalize()
    store = locations.demo_world() if source == DEMO_SOURCE else None
    if store is not None and store.exists():
        fp = _store_fingerprint(str(store), store.stat().st_mtime_ns)
        inputs = None
        config = {"app": "day", "source": source, "store": fp}
    else:
        w, s, e, n = region
        inputs = world.sel({schema.TIME: slice(date - pd.Timedelta(days=64), date),
                            schema.LAT: slice(s, n), schema.LON: slice(w, e)})
        config = {"app": "day", "source": source}
    return make_key(checkpoint=ckpt, inputs=inputs, region=tuple(region), dates=[date],
                    config=config, grid=world)


@functools.lru_cache(maxsize=4)
def _series(path: str, mtime_ns: int) -> tuple[xr.Dataset, Path] | None:
    """The series store at ``path`` and the input world it was built from (``None``: not
    a readable store); reopened when the store folder changes."""
    try:
        ds = open_series(path)
        world = json.loads(ds.attrs.get("series_build_spec", "{}")).get("world")
    except (GapfillError, ValueError) as exc:
        log.info("series store %s not used: %s", path, exc)
        return None
    return (ds, Path(world).resolve()) if world else None


def series_filled(source: str, region, date, checkpoint: str = "",
                  store: Path | None = None) -> tuple[np.ndarray, dict] | None:
    """The day's filled field of the region from the series store, with its info
    (``origin: "series"``), or ``None`` when the store does not cover it.

    The store (default :func:`data_catalog.locations.series_store`) is used for the demo
    source with the default checkpoint (the store is built with the models by radiometer)
    when its build is complete, it was built from this world, and it holds the day and
    every cell of the region.
    """
    store = Path(store) if store is not None else locations.series_store()
    if source != DEMO_SOURCE or checkpoint or not store.exists() or not is_complete(store):
        return None
    got = _series(str(store), store.stat().st_mtime_ns)
    if got is None or got[1] != locations.demo_world().resolve():
        return None
    ds, _ = got
    w, s, e, n = region
    sub = ds.sel({schema.LAT: slice(s, n), schema.LON: slice(w, e)})
    date = pd.Timestamp(date).normalize()
    lat, lon = sub[schema.LAT].values, sub[schema.LON].values
    if not (lat.size and lon.size and date in ds.indexes[schema.TIME]):
        return None
    # every cell of the region: the store's first and last cells reach its edges
    tol = 0.75 * grid.resolution(ds[schema.LAT].values)
    if lat[0] - tol > s or lat[-1] + tol < n or lon[0] - tol > w or lon[-1] + tol < e:
        return None
    day = sub.sel({schema.TIME: date})
    names = [v for v in (schema.FILLED_SM, schema.UNCERTAINTY, schema.REASON_FLAG)
             if v in day]
    day = day[names].load()
    info = {"origin": "series", "cached": True, "device": "", "store": str(store),
            "uncertainty": np.asarray(day[schema.UNCERTAINTY].values, np.float32)
            if schema.UNCERTAINTY in day else None,
            "reasons": np.asarray(day[schema.REASON_FLAG].values, np.uint8)
            if schema.REASON_FLAG in day else None}
    return np.asarray(day[schema.FILLED_SM].values, np.float32), info
