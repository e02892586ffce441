"""The block engine: windows of a world streamed through time, each day by its model.

One set of rules for everything that runs the ConvLSTM over a period (the series store's
tiles in :mod:`model.series`, the stations of :mod:`model.points`, the app's period
fills):

* The model of a day follows its radiometer (:func:`model_for_day`): AMSR-E days the
  transferred model, AMSR2 days the base model, days without a radiometer (the
  2011-10-04..2012-07-01 gap) the ``gap_model``.  AMSR is hidden on those gap days
  whatever the file holds.
* When the model changes, the new model's state is first warmed up on the
  ``warmup_days`` before (outputs discarded), so every model starts from a state it made
  itself; the first model of the period warms up the same way.
* Days are read one block (``block_days``) at a time, so memory does not grow with the
  period, and given to the model ``stream_days`` at a time with the state carried.  A
  look-ahead model (``lead_days``) reads the days after each chunk, AMSR hidden on days
  that belong to another model.
* The filled value is the observation where AMSR observed (in the model's reference
  climatology, as :func:`model.inference.predict` gives it) and the model elsewhere.

Several windows of equal shape (the stations' squares) are streamed as one batch with one
state.  torch is imported only to join such a batch.

:func:`block_extras` gives a block's ``filled_sm_uncertainty`` and ``reason_flag`` (one
code for the series store, the app's period fills and the points' series), the SD from a
window's :func:`sd_tracker` (NaN without an error model beside the checkpoints; several
windows share one :func:`error_model_for`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import schema

log = logging.getLogger(__name__)

#: World variables a model reads (those the world has).
INPUTS = (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.LAND)


# ---------------------------------------------------------------- which model
def model_for_day(sensor: int, gap_model: int) -> int:
    """Which model (by sensor) fills a day of radiometer ``sensor``."""
    return gap_model if sensor == schema.SENSOR_NONE else int(sensor)


def pick_model(models: Mapping, sensor: int):
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


@dataclass(frozen=True)
class ModelSet:
    """The models of a run and which of them streams each day.

    Attributes
    ----------
    models : mapping
        A factory's dict (sensor code or name -> object with ``prepare``/``stream``).
    gap_model : int
        Sensor whose model fills days without a radiometer.
    single : bool
        One model for every day (a given checkpoint): never switched, never re-warmed.
    """

    models: Mapping
    gap_model: int = schema.SENSOR_AMSR2
    single: bool = False

    @classmethod
    def one(cls, model) -> ModelSet:
        """Every day streamed by ``model``."""
        return cls({schema.SENSOR_AMSR2: model}, single=True)

    def ids(self, sensors: np.ndarray) -> np.ndarray:
        """The model id of each day (a sensor code)."""
        if self.single:
            return np.full(len(sensors), schema.SENSOR_AMSR2)
        return np.array([model_for_day(s, self.gap_model) for s in sensors], dtype=int)

    def __getitem__(self, model_id: int):
        return pick_model(self.models, model_id)

    def lead_days(self) -> int:
        """The longest look-ahead among the models."""
        return max((int(getattr(m, "lead_days", 0)) for m in self.models.values()), default=0)


# ---------------------------------------------------------------- helpers
def load(obj: xr.Dataset) -> xr.Dataset:
    """``obj.load()`` without going back to a Dask cluster (inside a worker)."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        return obj.load()


def blank_days(ds: xr.Dataset, days: np.ndarray) -> xr.Dataset:
    """``ds`` with AMSR hidden on the ``days`` (boolean over time)."""
    if not days.any():
        return ds
    ds = ds.copy()
    ds[schema.AMSR_SM] = ds[schema.AMSR_SM].where(~xr.DataArray(days, dims=schema.TIME))
    return ds


def blank_gap_days(ds: xr.Dataset) -> xr.Dataset:
    """No radiometer, no observation: whatever the file holds on gap days is hidden."""
    return blank_days(ds, ds[schema.SENSOR].values.astype(int) == schema.SENSOR_NONE)


def runs(ids: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, value)`` of the runs of equal values in ``ids``."""
    ids = np.asarray(ids)
    if not ids.size:
        return
    cuts = np.flatnonzero(np.diff(ids)) + 1
    bounds = np.concatenate([[0], cuts, [len(ids)]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield int(a), int(b), int(ids[a])


@contextlib.contextmanager
def threads(get: Callable[[], int], put: Callable[[int], None], n: int = 1):
    """Run with ``n`` threads of a library whose setting is read by ``get`` and written by
    ``put`` (torch's, numba's), then restore the caller's setting."""
    before = get()
    put(n)
    try:
        yield
    finally:
        put(before)


def one_torch_thread():
    """Run with one torch thread, then restore the caller's setting.

    Small batched convolutions run faster on one thread than on contended several, and
    one thread makes the results independent of the machine's thread count.
    """
    import torch

    return threads(torch.get_num_threads, torch.set_num_threads)


# ---------------------------------------------------------------- the engine
@dataclass(frozen=True)
class Window:
    """A part of the world streamed as one: the cells read and, inside them, those kept.

    Attributes
    ----------
    lat, lon : slice
        World index ranges read (the kept cells and their spatial context).
    core : (slice, slice)
        The kept cells, as index ranges of the window.
    """

    lat: slice
    lon: slice
    core: tuple[slice, slice]

    def kept(self) -> dict[str, slice]:
        """World index slices (``isel``) of the kept cells."""
        return {schema.LAT: slice(self.lat.start + self.core[0].start,
                                  self.lat.start + self.core[0].stop),
                schema.LON: slice(self.lon.start + self.core[1].start,
                                  self.lon.start + self.core[1].stop)}


@dataclass
class Block:
    """The kept cells of every window over one block of days.

    Attributes
    ----------
    start, stop : int
        Days of the block, counted from the first streamed day.
    filled : numpy.ndarray
        ``(windows, days, h, w)`` float32: the observation where AMSR observed (reference
        climatology), the model elsewhere.
    raw : numpy.ndarray
        ``(windows, days, h, w)`` AMSR as the world holds it.
    valid : numpy.ndarray
        ``(windows, days, h, w)`` AMSR observed (finite, flagged observed, a radiometer).
    sensors : numpy.ndarray
        ``(days,)`` radiometer of each day.
    times : numpy.ndarray
        ``(days,)`` the days.
    gap_mask : numpy.ndarray or None
        ``(windows, days, h, w)`` the world's gap categories (``source_flag``'s frozen fills).
    """

    start: int
    stop: int
    filled: np.ndarray
    raw: np.ndarray
    valid: np.ndarray
    sensors: np.ndarray
    times: np.ndarray
    gap_mask: np.ndarray | None = None


def _batch(model, parts: Sequence[xr.Dataset], n_days: int | None = None):
    """One input tensor for the windows: ``model.prepare`` of each, joined on the batch."""
    xs = [model.prepare(p) if n_days is None else model.prepare(p, n_days=n_days)
          for p in parts]
    if len(xs) == 1:
        return xs[0]
    import torch

    return torch.cat(xs, dim=0)


def _numpy(y) -> np.ndarray:
    return y.detach().float().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)


def stream_windows(world: xr.Dataset, windows: Sequence[Window], start: int, stop: int,
                   models: ModelSet, *, warmup_days: int = 30, stream_days: int = 64,
                   block_days: int = 365,
                   on_block: Callable[[int], Any] | None = None) -> Iterator[Block]:
    """Stream world days ``start..stop`` (indices, stop excluded) of the windows.

    Parameters
    ----------
    world : xarray.Dataset
        Canonical world (``amsr_sm``, ``gap_mask``, ``ascat_sm``, ``land``, ``sensor``).
    windows : sequence of Window
        Windows of one shape, streamed as one batch with one state.
    start, stop : int
        World time indices of the first and after the last day.
    models : ModelSet
        The models and which streams each day.
    warmup_days, stream_days, block_days : int
        Days a newly used model warms up on, days per model call, days read at a time.
    on_block : callable, optional
        Called with the number of days of each block when it is done (progress bars).

    Yields
    ------
    Block
        One per block of days, in order.
    """
    names = [v for v in INPUTS if v in world]
    subs = [world[names].isel({schema.LAT: w.lat, schema.LON: w.lon}) for w in windows]
    lat_core = [s[schema.LAT].values[w.core[0]] for s, w in zip(subs, windows, strict=True)]
    lon_core = [s[schema.LON].values[w.core[1]] for s, w in zip(subs, windows, strict=True)]
    n_world = world.sizes[schema.TIME]
    # look-ahead models read days after each block (as many as the world holds)
    lead_max = models.lead_days()
    current, state = None, None
    for b0 in range(start, stop, block_days):
        b1 = min(b0 + block_days, stop)
        n = b1 - b0
        blockx = [load(s.isel({schema.TIME: slice(b0, min(b1 + lead_max, n_world))}))
                  for s in subs]
        sensorsx = blockx[0][schema.SENSOR].values.astype(int)
        raw = np.stack([bx[schema.AMSR_SM].values[(slice(n), *w.core)]
                        for bx, w in zip(blockx, windows, strict=True)]).astype(np.float32)
        gm = np.stack([bx[schema.GAP_MASK].values[(slice(n), *w.core)]
                       for bx, w in zip(blockx, windows, strict=True)])
        blockx = [blank_gap_days(bx) for bx in blockx]
        idsx = models.ids(sensorsx)
        sensors, ids = sensorsx[:n], idsx[:n]
        pred = np.empty(raw.shape, np.float32)
        obs = np.empty_like(pred)
        for a, b, mid in runs(ids):
            model = models[mid]
            if mid != current:  # a model switched in: warm its state up on the days before
                w0 = max(b0 + a - warmup_days, 0)
                state = None
                if w0 < b0 + a and warmup_days > 0:
                    warm = [blank_gap_days(load(s.isel({schema.TIME: slice(w0, b0 + a)})))
                            for s in subs]
                    _, state = model.stream(_batch(model, warm), None)
                current = mid
            lead = int(getattr(model, "lead_days", 0))
            for c0 in range(a, b, stream_days):
                c1 = min(c0 + stream_days, b)
                ce = min(c1 + lead, len(idsx))  # look-ahead days of this model's radiometer
                other = idsx[c0:ce] != mid
                parts = [blank_days(bx.isel({schema.TIME: slice(c0, ce)}), other)
                         for bx in blockx]
                y, state = model.stream(_batch(model, parts, n_days=c1 - c0), state)
                y = _numpy(y)
                if y.shape[0] != len(windows):
                    raise ValueError(f"model returned a batch of {y.shape[0]} for "
                                     f"{len(windows)} windows")
                for k, w in enumerate(windows):
                    pred[k, c0:c1] = y[(k, slice(None), *w.core)]
            # observations kept, in the model's reference climatology (as predict() does)
            to_ref = getattr(model, "to_reference", None)
            for k in range(len(windows)):
                obs[k, a:b] = (raw[k, a:b] if to_ref is None
                               else to_ref(raw[k, a:b], lat_core[k], lon_core[k]))
        valid = (np.isfinite(raw) & (gm == schema.OBSERVED)
                 & (sensors != schema.SENSOR_NONE)[None, :, None, None])
        times = blockx[0][schema.TIME].values[:n]
        yield Block(b0 - start, b1 - start, np.where(valid, obs, pred), raw, valid, sensors,
                    times, gm)
        if on_block is not None:
            on_block(n)


# ---------------------------------------------------------------- SD and reasons
def error_model_for(models: ModelSet, checkpoint=None, stand_ins: bool = False):
    """The :class:`model.errors.ErrorModel` beside ``checkpoint`` (default: the shipped
    models' folder) for ``models``, loaded once for any number of windows.

    None (the SD is NaN, and a logged warning where something is wrong) for stand-in
    models, without an error model there, with an unreadable one, or with one fitted on
    other checkpoints than ``models``' (a model of one's own, not the shipped ones).
    """
    if stand_ins:
        return None
    from pathlib import Path

    from data_catalog.errors import GapfillError
    from model import errors

    path = errors.path_for(Path(checkpoint).parent if checkpoint else None)
    if not path.exists():
        return None
    try:
        em = errors.ErrorModel.load(path)
    except GapfillError as exc:
        log.warning("no %s: %s", errors.UNCERTAINTY, exc)
        return None
    for m in {id(m): m for m in models.models.values()}.values():
        sensor = getattr(m, "sensor", None)
        sha = str(getattr(m, "metadata", {}).get("checkpoint_sha256", ""))
        if sensor not in em.tables or em.stale(sensor, sha):
            log.warning("error model %s was not fitted on the %s model in use: no %s", path,
                        sensor, errors.UNCERTAINTY)
            return None
    return em


def window_tracker(em, world: xr.Dataset, window: Window):
    """The :class:`model.errors.SeriesTracker` of a window's kept cells from the error
    model ``em`` (:func:`error_model_for`; None: None, the SD is NaN)."""
    if em is None:
        return None
    from model import errors

    cells = world.isel(window.kept())
    return errors.SeriesTracker(em, cells[schema.LAT].values, cells[schema.LON].values)


def sd_tracker(world: xr.Dataset, window: Window, models: ModelSet, checkpoint=None,
               stand_ins: bool = False):
    """The :class:`model.errors.SeriesTracker` of one window's kept cells, from the error
    model beside ``checkpoint`` (:func:`error_model_for`; None: the SD is NaN)."""
    return window_tracker(error_model_for(models, checkpoint, stand_ins), world, window)


def block_extras(sds, world: xr.Dataset, core_world: dict, t0_world: int, block: Block,
                 models: ModelSet, land_core: np.ndarray, k: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``filled_sm_uncertainty`` and ``reason_flag`` ``(days, h, w)`` of window ``k`` of a
    block (the series store's tiles, the app's period fills, the points' series).
    Where the world carries ``amsr_sm_error``, observed pixel-days take it as their SD
    (:func:`model.errors.with_product_error`).

    ``sds`` is the window's :class:`model.errors.SeriesTracker` (None without an error
    model: the SD is NaN), fed the blocks in order; ``core_world`` the world index slices
    of the window's kept cells, ``t0_world`` the world index of the first streamed day;
    the SD is NaN off ``land_core``.
    """
    shape = block.valid[k].shape
    lead = models.lead_days()
    a, b = t0_world + block.start, t0_world + block.stop
    names = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM,
                         schema.AMSR_SM_ERROR) if v in world]
    w = load(world[names].isel(core_world).isel(
        {schema.TIME: slice(a, min(b + lead, world.sizes[schema.TIME]))}))
    n = b - a
    gm = (w[schema.GAP_MASK].values if schema.GAP_MASK in w
          else np.zeros(w[schema.AMSR_SM].shape, np.int8))
    sensors = w[schema.SENSOR].values
    ahead = (np.isfinite(w[schema.AMSR_SM].values[n:]) & (gm[n:] == schema.OBSERVED)
             & (sensors[n:] != schema.SENSOR_NONE)[:, None, None])
    ascat = (np.isfinite(w[schema.ASCAT_SM].values[:n]) if schema.ASCAT_SM in w
             else np.zeros(shape, bool))
    day_models = [models[i] for i in models.ids(block.sensors)]
    valid = block.valid[k]
    later = np.array([int(getattr(m, "lead_days", 0)) > 0 for m in day_models])
    rescaled = np.array([bool(getattr(m, "has_matching", False)) for m in day_models])
    reasons = schema.reason_flags(gm[:n], land_core[None] & ~valid, ascat,
                              later_days=later[:, None, None],
                              amsre_rescaled=rescaled[:, None, None] & valid, land=land_core)
    if sds is None:
        return np.full(shape, np.nan, np.float32), reasons
    times = pd.DatetimeIndex(block.times)
    perr = (w[schema.AMSR_SM_ERROR].values[:n] if schema.AMSR_SM_ERROR in w else None)
    sd = sds.block(a, valid, ahead, lead=lead, ascat=ascat,
                   category=np.where(valid, 0, gm[:n]), months=times.month.values,
                   models=day_models, filled=block.filled[k], doy=times.day_of_year.values,
                   product_error=perr)
    sd[:, ~land_core] = np.nan
    return sd, reasons
