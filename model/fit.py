"""Does a checkpoint fit the data it is about to run on?

A checkpoint records the grid it was trained on (``training.region``, the cell-edge bounds,
and ``training.grid_shape``), its radiometer (``sensor``), its input channels
(``channels``) and, for a transferred AMSR-E model, per-pixel matching maps on that
training grid.  :func:`check_fits` compares these with a world (and a region of it) and
returns plain sentences, one per problem: ``gapfill predict``, ``build-series``,
``evaluate`` and ``validate`` refuse with them (one line, exit 1), and the app shows them.
No torch here: the metadata is a plain dict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import grid, schema
from data_catalog.errors import CheckpointFitError, OutOfRangeError

log = logging.getLogger(__name__)

SENSOR_CODES = {"amsr2": schema.SENSOR_AMSR2, "amsre": schema.SENSOR_AMSRE}
SENSOR_LABELS = {schema.SENSOR_NONE: "gap-year (no radiometer)",
                 schema.SENSOR_AMSRE: "AMSR-E", schema.SENSOR_AMSR2: "AMSR2"}
#: Grid facts agree within this fraction of a cell.
TOLERANCE = 1e-3
#: Variables the model's channels are built from (``amsr*``, ``ascat*``; validity from
#: ``gap_mask``).
INPUT_VARIABLES = (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM)


def describe(metadata: Mapping[str, Any]) -> str:
    """``the AMSR2 model amsr2.pt``: how the sentences name a checkpoint."""
    sensor = SENSOR_LABELS.get(SENSOR_CODES.get(str(metadata.get("sensor", "amsr2"))), "?")
    path = str(metadata.get("checkpoint_path") or "")
    return f"the {sensor} model{' ' + path.rsplit('/', 1)[-1] if path else ''}"


def training_grid(metadata: Mapping[str, Any]) -> tuple[tuple[float, ...], float, float] | None:
    """``((W, S, E, N), lat step, lon step)`` of the training grid; None when not recorded."""
    tr = metadata.get("training") or {}
    region, shape = tr.get("region"), tr.get("grid_shape")
    try:
        w, s, e, n = (float(v) for v in region)
        ny, nx = (int(v) for v in shape)
    except (TypeError, ValueError):
        return None
    if ny < 1 or nx < 1:
        return None
    return (w, s, e, n), (n - s) / ny, (e - w) / nx


def _has_matching(metadata: Mapping[str, Any]) -> bool:
    method = (metadata.get("matching") or {}).get("method")
    return method not in (None, "none")


def _fmt_box(b: Sequence[float]) -> str:
    return ",".join(f"{float(v):g}" for v in b)


def check_fits(metadata: dict, world: xr.Dataset, region=None, *,
               sensor: bool = True) -> list[str]:
    """Sentences saying why a checkpoint does not fit ``world`` (empty when it fits).

    Parameters
    ----------
    metadata : dict
        The checkpoint's metadata (``GapFiller.metadata``).
    world : xr.Dataset
        The canonical data it would run on: the days to fill (their ``sensor`` coordinate)
        over the grid.
    region : (W, S, E, N), optional
        The part of ``world`` to fill (default: all of it).
    sensor : bool
        Also check that the days are the checkpoint's radiometer's (the AMSR2 base model
        also fills the gap year).  Callers that fall back to the base model on purpose
        (AMSR-E days without a transferred model) check the grid only.

    Checks: the grid resolution and the alignment of the cell edges with the training
    grid; for a transferred model, that the region lies inside its matching maps (its
    training region); the sensor of the days; the input channels (those this code builds
    for the checkpoint's look-ahead, from variables the world holds).
    """
    out: list[str] = []
    name = describe(metadata)
    lat, lon = world[schema.LAT].values, world[schema.LON].values
    if region is not None:
        try:
            la, lo = grid.index_slices(lat, lon, region)
        except OutOfRangeError as exc:
            return [str(exc)]
        lat, lon = lat[la], lon[lo]
    tg = training_grid(metadata)
    if tg is not None and lat.size and lon.size:
        (w, s, e, n), rlat, rlon = tg
        wl, wn = grid.resolution(lat, rlat), grid.resolution(lon, rlon)
        if abs(wl - rlat) > TOLERANCE * rlat or abs(wn - rlon) > TOLERANCE * rlon:
            out.append(f"{name} was trained on a {rlat:g} x {rlon:g} degree grid; this "
                       f"world's cells are {wl:g} x {wn:g} degrees")
        else:
            off_lat = ((lat[0] - wl / 2) - s) / rlat
            off_lon = ((lon[0] - wn / 2) - w) / rlon
            shift = [abs(o - round(o)) for o in (off_lat, off_lon)]
            if max(shift) > TOLERANCE:
                out.append(f"this world's cells are shifted by {shift[0] * rlat:g} degrees "
                           f"in latitude and {shift[1] * rlon:g} in longitude from the cells "
                           f"{name} was trained on (edges at {w:g} + k x {rlon:g} E, "
                           f"{s:g} + k x {rlat:g} N)")
            elif _has_matching(metadata):
                have = grid.bounds(lat, lon)
                tol = TOLERANCE * max(rlat, rlon)
                if (have[0] < w - tol or have[1] < s - tol or have[2] > e + tol
                        or have[3] > n + tol):
                    out.append(f"{name} matches AMSR-E to AMSR2 with per-pixel maps of its "
                               f"training region W,S,E,N = {_fmt_box((w, s, e, n))}; the "
                               f"region {_fmt_box(have)} reaches outside it (transfer the "
                               "model on this region first)")
    if sensor and schema.SENSOR in world.coords and world.sizes.get(schema.TIME, 0):
        code = SENSOR_CODES.get(str(metadata.get("sensor", "amsr2")), schema.SENSOR_AMSR2)
        fills = {code} | ({schema.SENSOR_NONE} if code == schema.SENSOR_AMSR2 else set())
        days = np.asarray(world[schema.SENSOR].values).astype(int)
        if not np.isin(days, list(fills)).any():
            have = ", ".join(SENSOR_LABELS.get(int(c), str(c)) for c in np.unique(days))
            out.append(f"{name} fills {SENSOR_LABELS[code]} days; the days here are {have}")
    out.extend(_channel_problems(metadata, world, name))
    return out


def _channel_problems(metadata: Mapping[str, Any], world: xr.Dataset, name: str) -> list[str]:
    from model.tensors import channel_names  # noqa: PLC0415 (torch only when checking)

    out = []
    try:
        lead = int((metadata.get("model") or {}).get("lead_days", 0))
    except (TypeError, ValueError):
        lead = 0
    want = list(channel_names(lead))
    have = metadata.get("channels")
    if have is not None and list(have) != want:
        out.append(f"{name} expects the input channels {list(have)}; this code builds "
                   f"{want}")
    missing = [v for v in INPUT_VARIABLES if v not in world]
    if missing:
        out.append(f"{name} reads {', '.join(INPUT_VARIABLES)}; the world lacks "
                   f"{', '.join(missing)}")
    return out


def require_fit(metadata: dict, world: xr.Dataset, region=None, *, sensor: bool = True
                ) -> None:
    """Raise :class:`CheckpointFitError` (one line, every problem) unless it fits."""
    problems = check_fits(metadata, world, region, sensor=sensor)
    if problems:
        raise CheckpointFitError(f"{describe(metadata)} does not fit this data: "
                                 + "; ".join(problems))


def days_filled_by(models: Mapping, world: xr.Dataset,
                   gap_model: int = schema.SENSOR_AMSR2) -> dict[Any, np.ndarray]:
    """Which days of ``world`` each model of a ``{sensor: model}`` dict fills (keys as in the
    dict: ``"amsr2"``/``"amsre"`` or sensor codes): its radiometer's days, the gap year for
    ``gap_model``, AMSR-E days for the base model when there is no transferred one."""
    codes = {k: (SENSOR_CODES.get(k) if isinstance(k, str) else int(k)) for k in models}
    have = set(codes.values())
    days = np.asarray(world[schema.SENSOR].values).astype(int)
    target = np.where(days == schema.SENSOR_NONE, gap_model, days)
    target = np.where((target == schema.SENSOR_AMSRE) & (schema.SENSOR_AMSRE not in have),
                      schema.SENSOR_AMSR2, target)
    return {k: target == c for k, c in codes.items()}


def require_models_fit(models: Mapping, world: xr.Dataset, region=None, *,
                       gap_model: int = schema.SENSOR_AMSR2) -> None:
    """:func:`require_fit` for each model with checkpoint metadata on the days it fills
    (see :func:`days_filled_by`); models that fill no day are not checked."""
    for key, days in days_filled_by(models, world, gap_model).items():
        meta = getattr(models[key], "metadata", None)
        if not meta or not days.any():
            continue
        require_fit(meta, world.isel({schema.TIME: np.flatnonzero(days)}), region,
                    sensor=False)


def missing_ascat(world: xr.Dataset, region=None) -> str | None:
    """A sentence naming the days of ``world`` (within ``region``) without any ASCAT value,
    or None when every day has some.  Reads ``ascat_sm`` once (a chunked pass)."""
    ds = world
    if region is not None:
        la, lo = grid.index_slices(ds[schema.LAT].values, ds[schema.LON].values, region)
        ds = ds.isel({schema.LAT: la, schema.LON: lo})
    if ds.sizes[schema.TIME] == 0:
        return None
    if schema.ASCAT_SM not in ds:
        return "no ASCAT in the world: the model fills from AMSR alone"
    has = np.asarray(ds[schema.ASCAT_SM].notnull().any((schema.LAT, schema.LON)).values)
    if has.all():
        return None
    t = pd.DatetimeIndex(ds[schema.TIME].values)
    miss = ~has
    edges = np.flatnonzero(np.diff(np.r_[0, miss.astype(int), 0]))
    runs = [(t[a], t[b - 1]) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    runs.sort(key=lambda r: r[1] - r[0], reverse=True)
    shown = ", ".join(f"{a:%Y-%m-%d}" + ("" if a == b else f"..{b:%Y-%m-%d}")
                      for a, b in runs[:3])
    more = f" and {len(runs) - 3} more periods" if len(runs) > 3 else ""
    return (f"no ASCAT on {int(miss.sum())} of {miss.size} days ({shown}{more}): the model "
            "fills those days from AMSR alone")


def warn_missing_ascat(world: xr.Dataset, region=None) -> str | None:
    """Log :func:`missing_ascat` as a warning; returns it."""
    note = missing_ascat(world, region)
    if note:
        log.warning("%s", note)
    return note
