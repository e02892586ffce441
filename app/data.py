"""Data access for the app: one process-wide hub shared by all sessions.

The hub opens the gridded source (the demo world through
:func:`data_catalog.worlds.open_world`, or a catalog source, lazily), reads one day of one
region into numpy arrays (memoised, with read-ahead of the neighbouring days so stepping
through dates is served from memory), finds cached model outputs (:mod:`model.cache`,
torch-free), and runs inference in a worker thread.  Torch is imported only inside
:meth:`DataHub.run_inference`.  Every location (the demo world, checkpoints, the cache)
comes from :mod:`data_catalog.locations`.

Nothing here imports Panel, Bokeh or HoloViews.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from app import outputs
from app.days import DayFields, extras, read_cell, read_day, read_days
from app.memo import LRU, outside_session
from app.outputs import DEMO_SOURCE, describe_device, output_key, resolve_checkpoint
from data_catalog import demo, locations, schema
from data_catalog.errors import GapfillError
from data_catalog.worlds import open_world
from model.cache import InferenceCache

log = logging.getLogger(__name__)

MOCK_SOURCE = "mock"


class DataHub:
    """Process-wide access to data, cached outputs and the inference worker.

    Parameters
    ----------
    max_days
        Region-days kept in memory (each a few arrays of the region's size).
    readahead
        Days after a requested day read in the background (and two before).
    """

    def __init__(self, max_days: int = 192, readahead: int = 8):
        self._worlds: dict[str, xr.Dataset] = {}
        self._world_lock = threading.Lock()
        self._days = LRU(max_days)
        self._filled = LRU(max_days)
        self._stations: dict[str, tuple[pd.DataFrame, dict]] = {}
        self.readahead = readahead
        # one reader for read-ahead, one inference worker: the event loop never waits
        self._reader = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gapfill-read")
        self._worker = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gapfill-infer")
        self._inflight: dict = {}
        self._cache = None
        self._catalog = None
        self._pending_lock = threading.Lock()
        #: stand-in models of period fills (tests, benchmarks); None: the checkpoints
        self.fill_models = None

    def _optional(self, attr: str, make: Callable, what: str, errors) -> object | None:
        """``self.<attr>``, made by ``make()`` on first use; ``None`` (said once in the
        log) when making it raised one of ``errors``."""
        value = getattr(self, attr)
        if value is None:
            try:
                value = make()
            except errors as exc:
                log.warning("%s unavailable: %s", what, exc)
                value = False
            setattr(self, attr, value)
        return value or None

    # ------------------------------------------------------------------ sources
    def catalog(self):
        """The data catalog (``$GAPFILL_CATALOG`` or the built-in one), or ``None``."""
        from data_catalog.catalog import load_catalog

        # any failure: the demo world works without a catalog
        return self._optional("_catalog", load_catalog, "data catalog", Exception)

    def sources(self) -> list[str]:
        """Gridded sources the app can show: the demo world, then every available catalog
        source of AMSR soil moisture on a grid (real products: raw maps, no stations)."""
        out = [MOCK_SOURCE, DEMO_SOURCE] if os.environ.get("GAPFILL_APP_MOCK") \
            else [DEMO_SOURCE]
        cat = self.catalog()
        if cat is not None:
            for src in cat:
                try:
                    if (src.name not in out and src.kind == "grid"
                            and not _is_demo_store(src)
                            and src.metadata.get("variable") == schema.AMSR_SM
                            and src.available()):
                        out.append(src.name)
                except Exception:  # noqa: BLE001 - a broken entry must not hide the others
                    log.debug("catalog source %s skipped", src.name, exc_info=True)
        return out

    def source_metadata(self, source: str) -> dict:
        """Display metadata of a source from the catalog (label, units, cmap, clim...)."""
        cat = self.catalog()
        if cat is not None and source in cat:
            return dict(cat[source].metadata)
        return {}

    @outside_session
    def world(self, source: str = DEMO_SOURCE) -> xr.Dataset:
        """The source's canonical dataset (lazy).

        Raises
        ------
        MissingFileError
            The demo world has not been built yet.
        GapfillError
            Unknown source.
        """
        with self._world_lock:
            if source in self._worlds:
                return self._worlds[source]
            if source == MOCK_SOURCE:
                ds = schema.mock_grid_dataset(ntime=120, nlat=48, nlon=64, gap_fraction=0.5)
            elif source == DEMO_SOURCE:
                ds = open_world(locations.demo_world())
            elif self.catalog() is not None and source in self.catalog():
                ds = self.catalog()[source].open()
                if schema.AMSR_SM not in ds:
                    raise GapfillError(f"catalog source {source!r} has no {schema.AMSR_SM}")
            else:
                raise GapfillError(f"unknown source {source!r}; known: {self.sources()}")
            self._worlds[source] = ds
            return ds

    # ------------------------------------------------------------------ days
    @outside_session
    def day(self, source: str, region, date, checkpoint: str = "",
            prefetch: bool = True) -> DayFields:
        """One day of a region, from memory when it was read before.

        The filled field is attached when a cached model output exists (``filled_info``
        says where it came from); read-ahead of the neighbouring days starts in the
        background.
        """
        date = pd.Timestamp(date).normalize()
        region = tuple(float(v) for v in region)
        key = (source, region, date)
        fields = self._days.get(key)
        if fields is None:
            with self._pending_lock:
                pending = self._inflight.get(key)
            if pending is not None:  # being read ahead right now: wait instead of re-reading
                pending.result(timeout=30)
                fields = self._days.get(key)
        if fields is None:
            fields = read_day(self.world(source), region, date)
            self._days.put(key, fields)
        if source not in (DEMO_SOURCE, MOCK_SOURCE):  # a product: its catalog name
            fields.label = str(self.source_metadata(source).get("label", source))
        filled, info = self.cached_filled(source, region, date, checkpoint)
        fields.filled, fields.filled_info = filled, info
        fields.uncertainty, fields.reasons = info.get("uncertainty"), info.get("reasons")
        if prefetch and self.readahead:
            self._prefetch(source, region, date, checkpoint)
        return fields

    def _prefetch(self, source, region, date, checkpoint) -> None:
        """Read the next days (and a couple before) in one block, in the background:
        stepping forward through dates is then served from memory."""
        def lacking(days, filled=True):
            return [d for d in days if (source, region, d) not in self._inflight and (
                self._days.get((source, region, d)) is None or filled and self._filled.get(
                    self._filled_key(source, region, d, checkpoint)) is None)]

        near = [date + pd.Timedelta(days=d) for d in (*range(1, self.readahead + 1), -1, -2)]
        with self._pending_lock:
            missing = lacking(near)
            if not missing:
                return
            # and the days after them not read yet: one chunk decode then serves the next
            # ``readahead`` steps, not one
            missing += lacking([near[-3] + pd.Timedelta(days=d)
                                for d in range(1, self.readahead + 1)], filled=False)
            fut: cf.Future = cf.Future()
            for d in missing:
                self._inflight[(source, region, d)] = fut
        self._reader.submit(self._prefetch_block, fut, source, region, missing, checkpoint)

    def _prefetch_block(self, fut, source, region, days, checkpoint) -> None:
        try:
            ds = self.world(source)
            t = pd.DatetimeIndex(ds[schema.TIME].values)
            days = sorted(d for d in days if t[0] <= d <= t[-1])
            if days:
                todo = [d for d in days if self._days.get((source, region, d)) is None]
                if todo:
                    # the whole span in one go (one chunk decode)
                    for f in read_days(ds, region, pd.DatetimeIndex([todo[0], todo[-1]])):
                        if self._days.get((source, region, f.date)) is None:
                            self._days.put((source, region, f.date), f)
                for d in days:  # forward days first: the likely next steps
                    self.cached_filled(source, region, d, checkpoint)
        except Exception:  # noqa: BLE001 - read-ahead is best effort; the foreground reports
            log.debug("read-ahead of %s failed", days, exc_info=True)
        finally:
            with self._pending_lock:
                for d in days:
                    if self._inflight.get((source, region, d)) is fut:
                        del self._inflight[(source, region, d)]
            fut.set_result(None)

    # ------------------------------------------------------------------ model outputs
    def _filled_key(self, source, region, date, checkpoint):
        return (source, tuple(region), pd.Timestamp(date).normalize(), checkpoint or "")

    @property
    def cache(self):
        """The inference cache (``model.cache``, torch-free), or ``None`` when its folder
        (:func:`data_catalog.locations.cache_dir`) cannot be created."""
        # a read-only home: the app works without a cache
        return self._optional("_cache", InferenceCache, "inference cache", OSError)

    def cache_key(self, source: str, region, date, checkpoint: str = ""):
        """The cache key of one day's output (see :func:`output_key`)."""
        return output_key(self.world(source), source, region, date, checkpoint)

    @outside_session
    def cached_filled(self, source, region, date, checkpoint: str = ""
                      ) -> tuple[np.ndarray | None, dict]:
        """The filled field from memory, the series store or the on-disk inference cache,
        else ``None``."""
        key = self._filled_key(source, region, date, checkpoint)
        hit = self._filled.get(key) or outputs.series_filled(source, region, date, checkpoint)
        if hit is not None:
            self._filled.put(key, hit)
            return hit
        cache = self.cache
        if cache is None:
            return None, {}
        try:
            ck = self.cache_key(source, region, date, checkpoint)
            ds = cache.lookup(ck) if ck is not None else None
        except GapfillError as exc:
            log.info("cache lookup failed: %s", exc)
            ds = None
        if ds is None:
            return None, {}
        out = (np.asarray(ds[schema.FILLED_SM].values, np.float32),
               {"cached": True, "device": str(ds.attrs.get("device", "")),
                "checkpoint": str(ds.attrs.get("checkpoint", "")), **extras(ds)})
        self._filled.put(key, out)
        return out

    def remember_filled(self, source, region, date, checkpoint, filled: np.ndarray,
                        info: dict) -> None:
        self._filled.put(self._filled_key(source, region, date, checkpoint), (filled, info))

    def run_inference(self, source: str, region, date, checkpoint: str = "",
                      progress: Callable[[float, str], None] | None = None) -> cf.Future:
        """Run the model for one region and day in the worker thread, through the cache.

        The future resolves to ``(filled, info)``, ``info`` holding the device, the time
        taken and whether the result came from the cache.  Torch is imported here, in the
        worker, never at start-up.
        """
        world = self.world(source)
        date = pd.Timestamp(date).normalize()
        region = tuple(float(v) for v in region)

        def job():
            t0 = time.perf_counter()
            if progress:
                progress(0.01, "loading the model")
            from model import inference  # imports torch: in the worker thread only

            device = inference.select_device("auto")
            label = describe_device(device)
            if progress:
                progress(0.05, f"running on {label}")
            ckpt = resolve_checkpoint(checkpoint)
            computed = []

            def compute():
                computed.append(True)
                return inference.predict(
                    world, region, date, ckpt, device=device,
                    progress=lambda f: progress(0.05 + 0.9 * float(f), f"running on {label}")
                    if progress else None)

            cache = self.cache
            key = self.cache_key(source, region, date, checkpoint) if cache else None
            ds = cache.get_or_compute(key, compute) if key is not None else compute()
            filled = np.asarray(ds[schema.FILLED_SM].values, np.float32)
            info = {"cached": not computed, "device": label,
                    "seconds": round(time.perf_counter() - t0, 2), **extras(ds)}
            # published to the cache: for every later request it is a cached output
            self.remember_filled(source, region, date, checkpoint, filled,
                                 {**info, "cached": key is not None})
            return filled, info

        return self._worker.submit(job)

    def fill_period(self, source: str, region, start, end, checkpoint: str = "",
                    progress: Callable[[float, str], None] | None = None,
                    cancel: threading.Event | None = None, origin: str = "period"
                    ) -> cf.Future:
        """Fill a region over ``start..end`` in the worker (:func:`app.fill.fill_period`,
        the engine of ``build-series``); each day is kept in the hub's memory of model
        outputs as soon as its block is done (``origin``: ``period`` or ``auto``), so every
        session shows it.  The future resolves to ``{"days", "seconds", "device"}``.

        The fills are kept in memory (the newest ``max_days`` region-days), not in the
        on-disk inference cache: a streamed day (state carried from the days before) is
        not the output of a one-day ``predict`` the cache keys describe.
        """
        from app import fill

        world = self.world(source)
        region = tuple(float(v) for v in region)

        def job():
            t0 = time.perf_counter()
            ckpt = resolve_checkpoint(checkpoint) if self.fill_models is None else None
            device = label = "cpu"
            if self.fill_models is None:
                from model import inference  # imports torch: in the worker thread only

                device = inference.select_device("auto")
                label = describe_device(device)

            def keep(got: dict, extra: dict) -> None:
                for day, field in got.items():
                    self.remember_filled(source, region, day, checkpoint, field,
                                         {"origin": origin, "cached": False,
                                          "device": label, **extra[day]})

            out = fill.fill_period(world, region, start, end, ckpt, str(device),
                                   models=self.fill_models, progress=progress,
                                   cancel=cancel, on_days=keep)
            return {"days": len(out), "seconds": round(time.perf_counter() - t0, 2),
                    "device": label}

        return self._worker.submit(job)

    def fill_problem(self, source: str) -> str:
        """Why the model cannot fill this source, as one plain sentence ('' when it can).

        The model reads a canonical world (AMSR, its gap mask, ASCAT, the radiometer of
        each day); a product opened on its own grid (LPRM, C3S images) has no ASCAT
        matched to it, so the app says so instead of running a model that does not fit.
        """
        if source in (DEMO_SOURCE, MOCK_SOURCE):
            return ""
        cat = self.catalog()
        driver = cat[source].driver if cat is not None and source in cat else ""
        world = self.world(source)
        if driver != "world" or schema.ASCAT_SM not in world:
            return ("The model fills a world of AMSR matched with ASCAT; this product has "
                    "no ASCAT on its grid. Assemble it into a world (gapfill assemble) to "
                    "fill it.")
        return fit_problem(world)

    def has_filled(self, source, region, date, checkpoint: str = "") -> bool:
        """Whether the hub's memory holds a model output of the day (no disk read)."""
        hit = self._filled.get(self._filled_key(source, region, date, checkpoint))
        return hit is not None and hit[0] is not None

    def submit(self, fn: Callable, *args):
        """Run ``fn`` in the model worker thread (anything that loads torch goes here)."""
        return self._worker.submit(fn, *args)

    # ------------------------------------------------------------------ stations
    @outside_session
    def stations(self, source: str = DEMO_SOURCE) -> tuple[pd.DataFrame, dict] | None:
        """The source's stations ``(table, series)`` or ``None`` if it has none."""
        if source in self._stations:
            return self._stations[source]
        out = None
        if source == MOCK_SOURCE:
            out = schema.mock_stations(self.world(source), n=6)
        elif source == DEMO_SOURCE:
            try:
                out = demo.open_demo_stations(locations.demo_world())
            except GapfillError as exc:
                log.warning("demo stations unavailable: %s", exc)
                return None
        if out is not None:
            self._stations[source] = out
        return out

    @outside_session
    def point_frame(self, source: str, lat: float, lon: float, start, end, region=None,
                    checkpoint: str = "") -> pd.DataFrame:
        """Daily series at the cell containing (lat, lon) (:func:`app.days.read_cell`)
        and, for the days whose model output is in memory, the filled value."""
        frame, (lat_c, lon_c) = read_cell(self.world(source), lat, lon, start, end)
        if region is not None:
            for d in frame.index:
                hit = self._filled.get(self._filled_key(source, region, d, checkpoint))
                if hit is not None and hit[0] is not None:
                    fields = self._days.get((source, tuple(region), d))
                    if fields is not None:
                        i = int(np.abs(fields.lat - lat_c).argmin())
                        j = int(np.abs(fields.lon - lon_c).argmin())
                        frame.loc[d, "filled"] = float(hit[0][i, j])
                        sd = hit[1].get("uncertainty")
                        if sd is not None:
                            frame.loc[d, "filled_sd"] = float(sd[i, j])
        return frame

    def close(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)
        self._worker.shutdown(wait=False, cancel_futures=True)


def fit_problem(world: xr.Dataset, checkpoint: str = "") -> str:
    """Whether the checkpoint fits the world, in plain sentences ('' when it does), from
    :func:`model.fit.check_fits` on the checkpoint's metadata (both read without torch)."""
    from model.checkpoint_file import read_metadata
    from model.fit import check_fits

    try:
        path = resolve_checkpoint(checkpoint) or str(locations.checkpoint_dir() / "amsr2.pt")
        return " ".join(check_fits(read_metadata(path), world))
    except GapfillError as exc:
        return str(exc)


def _is_demo_store(src) -> bool:
    """Whether a catalog source opens the demo world (listed once, as ``demo``)."""
    path = src.args.get("path")
    return src.driver == "world" and path is not None and \
        Path(path).resolve() == locations.demo_world().resolve()


_HUB: DataHub | None = None
_HUB_LOCK = threading.Lock()


def get_hub() -> DataHub:
    """The process-wide hub (all sessions share its memory and worker)."""
    global _HUB
    with _HUB_LOCK:
        if _HUB is None:
            _HUB = DataHub()
        return _HUB
