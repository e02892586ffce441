"""Model outputs of the app: which checkpoint, which device label, which cache key.

:func:`resolve_checkpoint` turns the checkpoint selector's value into what
``model.inference.predict`` takes; :func:`output_key` is the inference-cache key of one
day's output (:mod:`model.cache`, torch-free).  Every location comes from
:mod:`data_catalog.locations`.  Nothing here imports Panel, Bokeh, HoloViews or torch
(:func:`describe_device` imports torch only for a CUDA device, which only the worker has).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import xarray as xr

from data_catalog import locations, schema
from data_catalog.errors import MissingFileError
from model.cache import make_key, path_fingerprint

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
