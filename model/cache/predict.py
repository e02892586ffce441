"""``model.inference.predict`` through the cache: its key and the cached call.

:func:`predict_key` fingerprints exactly what :func:`~model.inference.predict` can read
(the look-back days up to the date, over the region widened by the model's receptive
radius) and what computes it (the checkpoint, the source of the inference modules, the
device kind); :func:`cached_predict` runs ``predict`` at most once per key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from data_catalog import locations, schema
from data_catalog.errors import EmptySelectionError
from model import errors
from model.cache.keys import CacheKey, make_key, snap_region
from model.cache.store import InferenceCache

#: Source files whose code computes a prediction: their bytes are part of the key.
INFERENCE_CODE = ("inference.py", "wrapper.py", "tensors.py", "network.py", "errors.py")


def inference_code_sha256() -> str:
    """SHA-256 over the source of the modules that compute a prediction."""
    here = Path(__file__).resolve().parents[1]  # model/
    h = hashlib.sha256()
    for name in INFERENCE_CODE:
        p = here / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()


def predict_key(world: xr.Dataset, region: Any, date: Any, checkpoint: Any = None, *,
                device: str = "auto", lookback: int | None = None, tile: Any = "auto",
                context: int | None = None) -> CacheKey:
    """The cache key of ``model.inference.predict(world, region, date, ...)``.

    The input fingerprint covers every cell :func:`~model.inference.predict` can read:
    the look-back days up to ``date`` over the region widened by the model's receptive
    radius (or by ``context``).
    """
    from model import inference
    from model.wrapper import GapFiller

    dev = inference.select_device(device)
    day = pd.Timestamp(date).normalize()
    sensor = inference.sensor_of_date(world, day)
    if isinstance(checkpoint, GapFiller):
        model = checkpoint
        ckpt_files: Any = None
        ckpt_id = {"sha256": str(model.metadata.get("checkpoint_sha256") or
                                 hashlib.sha256(b"".join(
                                     v.detach().cpu().numpy().tobytes()
                                     for v in model.state_dict().values())).hexdigest())}
    elif checkpoint is not None:
        model = inference.load_model(checkpoint, dev)
        ckpt_files, ckpt_id = checkpoint, None
        beside = Path(checkpoint).parent / errors.FILE_NAME
        if beside.exists():
            ckpt_files = [checkpoint, beside]
    else:
        d = locations.checkpoint_dir()
        model = inference.model_for_sensor(inference.load_models(None, dev), sensor)
        ckpt_files = {p.stem: p for p in sorted(d.glob("*.pt"))}
        if (d / errors.FILE_NAME).exists():  # the error model gives filled_sm_uncertainty
            ckpt_files["errors"] = d / errors.FILE_NAME
        ckpt_id = None
    steps = int(lookback or model.metadata.get("lookback", 32))
    ctx = model.receptive_radius(steps) if context is None else int(context)
    times = world.indexes[schema.TIME]
    ti = int(times.get_indexer([day])[0])
    if ti < 0:
        raise EmptySelectionError(f"date {day.date()} is not a day of the dataset",
                                  variable=schema.TIME)
    lat_sl, lon_sl = inference.snap_region(world, region)
    nlat, nlon = world.sizes[schema.LAT], world.sizes[schema.LON]
    window = world.isel({
        schema.TIME: slice(max(0, ti - steps + 1), ti + 1),
        schema.LAT: slice(max(0, lat_sl.start - ctx), min(nlat, lat_sl.stop + ctx)),
        schema.LON: slice(max(0, lon_sl.start - ctx), min(nlon, lon_sl.stop + ctx)),
    })
    names = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.TRUTH_SM,
                         schema.LAND, schema.AMSR_SM_ERROR) if v in window]
    window = window[names].load()
    snapped = {"lat": [lat_sl.start, lat_sl.stop], "lon": [lon_sl.start, lon_sl.stop],
               **{k: v for k, v in snap_region(world, (-180, -90, 180, 90)).items()
                  if k not in ("lat", "lon")}}
    config = {"function": "model.inference.predict", "lookback": steps, "context": ctx,
              "tile": tile, "device": dev.type, "sensor": int(sensor),
              "code_sha256": inference_code_sha256()}
    if ckpt_id is not None:
        config["model"] = ckpt_id
    return make_key(checkpoint=ckpt_files, inputs=window, region=snapped, dates=[day],
                    config=config, dtype="float32")


def cached_predict(world: xr.Dataset, region: Any, date: Any, checkpoint: Any = None, *,
                   cache: InferenceCache | None = None, device: str = "auto",
                   lookback: int | None = None, tile: Any = "auto",
                   context: int | None = None, progress: Callable | None = None,
                   ) -> xr.Dataset:
    """:func:`model.inference.predict` through the :class:`InferenceCache`.

    Same arguments as ``predict`` plus ``cache`` (default: an ``InferenceCache()`` at the
    default root).  Concurrent calls for the same request compute it once; a corrupt
    entry is recomputed.  ``ds.encoding["gapfill_cache_digest"]`` names the entry.
    """
    from model import inference

    cache = cache if cache is not None else InferenceCache()
    key = predict_key(world, region, date, checkpoint, device=device, lookback=lookback,
                      tile=tile, context=context)

    def compute() -> xr.Dataset:
        return inference.predict(world, region, date, checkpoint, device=device,
                                 lookback=lookback, progress=progress, tile=tile,
                                 context=context)

    return cache.get_or_compute(key, compute)
