"""One session's behaviour: validated state changes -> data -> maps, series and tables.

The controller owns no layout (that is :mod:`app.views`) and no drawing (that is
:mod:`app.plots` and :mod:`app.maps`).  It turns state changes into data reads and plot
updates, runs inference in the hub's worker without blocking the event loop, and reports
every problem as a notification: no traceback ever reaches the page.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import panel as pn
import param

from app import analysis, fill, jobs, plots
from app.checkpoints import checkpoint_choices
from app.data import MOCK_SOURCE, DataHub
from app.days import DayFields
from app.filling import PeriodFills
from app.maps import MapSet
from app.mapspecs import choice_options
from app.memory import drop_session_registries, schedule_release, track_session
from app.outputs import DEMO_SOURCE
from app.state import ExplorerState, GridInfo, UrlParams
from app.text import as_html
from data_catalog import schema
from data_catalog.errors import GapfillError
from data_catalog.inputs import shown

log = logging.getLogger(__name__)

def query_clim(query: dict | None) -> bool:
    """Whether the URL sets the colour limits (they then win over the source's)."""
    return bool(query and query.get("clim"))


class Explorer(PeriodFills, param.Parameterized):
    """A session: state, the map set and the derived panes' contents."""

    status = param.String(default="", doc="One-line status of the maps.")
    inference_status = param.String(default="", doc="Cached badge / device / progress text.")
    progress = param.Integer(default=0, bounds=(0, 100), doc="Inference progress, %.")
    running = param.Boolean(default=False, doc="Inference in progress.")
    has_filled = param.Boolean(default=False, doc="The shown day has a model output.")
    cached = param.Boolean(default=False, doc="The shown output came from the cache.")
    series_title = param.String(default="", doc="What the time series shows.")
    last_update_s = param.Number(default=0.0, doc="Seconds of the last date update (server).")
    series_status = param.String(default="", doc="State of the filled series at the cell.")
    busy = param.Boolean(default=False, doc="The maps are being rebuilt.")
    fill_running = param.Boolean(default=False, doc="A period fill is running.")
    fill_progress = param.Integer(default=0, bounds=(0, 100), doc="Period fill progress, %.")
    fill_status = param.String(default="", doc="State of the period fill / auto-fill.")
    auto_fill = param.Boolean(default=False, doc="Fill each newly shown day in the background.")

    def __init__(self, hub: DataHub, query: dict | None = None, **params):
        super().__init__(**params)
        self._loaded = False
        self.hub = hub
        self.fatal = ""
        self.fields: DayFields | None = None
        self.stations = None
        self.series_plot = plots.series_plot(pd.DataFrame({"gap": []}), pd.Timestamp.now())
        self.scatter = plots.scatter_plot(pd.DataFrame())
        self.stats = pd.DataFrame()
        self.network = pd.DataFrame()
        self._pending_msgs: list[tuple[str, str]] = []
        self._series_filled: dict = {}
        self._series_jobs: set = set()
        self._fill_cancel = threading.Event()
        self._auto_jobs: set = set()
        self.series_frame = pd.DataFrame()
        sources = hub.sources()
        source = (query or {}).get("source") or sources[0]
        if source not in sources:
            self._pending_msgs.append(("warning", f"URL parameter source={shown(source)} is not "
                                       f"an available source; using {sources[0]!r}."))
            source = sources[0]
        try:
            world = hub.world(source)
            grid = GridInfo.from_dataset(world)
        except GapfillError as exc:
            self.fatal = str(exc)
            grid = GridInfo(np.arange(30.125, 46, 0.25), np.arange(-99.875, -84, 0.25), 0.25,
                            pd.Timestamp("2003-01-01"), pd.Timestamp("2023-12-31"))
        st = None if self.fatal else hub.stations(source)
        self.stations = st[0] if st is not None else None
        ids = [] if self.stations is None else list(self.stations["id"].astype(str))
        choices = checkpoint_choices()
        #: label -> key of the checkpoint selector (what the browser sees)
        self.checkpoint_labels = {label: key for key, (label, _) in choices.items()}
        has_truth = not self.fatal and schema.TRUTH_SM in hub.world(source)
        self.state = ExplorerState(grid, stations=ids, sources=sources, source=source,
                                   checkpoints={k: path for k, (_, path) in choices.items()},
                                   map_choices=choice_options(has_truth))
        meta = hub.source_metadata(source)  # the catalog's colours of the source
        if meta.get("clim"):
            self.state.request_clim(*meta["clim"])
        #: why the model cannot fill this source ('' when it can), one plain sentence
        self.fill_problem = ""
        if not self.fatal:
            try:
                self.fill_problem = hub.fill_problem(source)
            except GapfillError as exc:
                self.fill_problem = str(exc)
        self._doc = pn.state.curdoc
        track_session(self)
        self.maps = MapSet(self.state, on_tap=self.on_tap, on_box=self.on_box,
                           dispatch=self.dispatch, sm_cmap=meta.get("cmap") or plots.SM_CMAP)
        self.url = UrlParams()
        self.layout_version = 0
        self.maps_object = None
        if query and not self.fatal:
            self.notify(self.state.apply_query({k: v for k, v in query.items()
                                                if k != "source"}))
        if not self.fatal:
            self.load(rebuild=True)
            if self.fields is not None and source not in (DEMO_SOURCE, MOCK_SOURCE) \
                    and not query_clim(query):
                lim = analysis.colour_limits(self.fields.amsr, meta.get("clim"))
                if lim:  # a product's range: its metadata widened to its values
                    self.state.request_clim(*lim)
            if self.state.station:
                self.maps.select_station(self.state.station)
            self._mark_selection()
            self.refresh_selection()
        self.state.param.watch(self._date_changed, ["date"])
        self.state.param.watch(self._rebuild, ["region", "checkpoint", "fourth"])
        self.state.param.watch(self._selection_changed, ["station", "pixel", "window"])
        self.state.param.watch(self._frozen_toggled, ["show_frozen"])

    def cleanup(self) -> None:
        """Release this session once its page has closed (``on_session_destroyed``).

        HoloViews' option store and Panel's registry of views would otherwise keep every
        closed session alive (see :func:`app.memory.drop_session_registries`).
        """
        self.maps.cleanup()
        doc, self._doc = self._doc, None
        trees, views = drop_session_registries(self.maps_object, doc)
        self.maps_object = None
        log.info("session closed: dropped %d HoloViews option trees and %d Panel views",
                 trees, views)
        # the rest of the session is cyclic garbage: collect it soon, not at the next
        # full collection Python happens to run (see app/memory.py)
        schedule_release()

    def dispatch(self, fn) -> None:
        """Run ``fn`` (which changes Bokeh models) holding the session's document lock."""
        doc = self._doc
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(fn)
        else:
            fn()

    # ------------------------------------------------------------------ messages
    def notify(self, msgs, level: str = "warning") -> None:
        """Show messages as notifications (queued until the page is there)."""
        for m in [msgs] if isinstance(msgs, str) else msgs:
            log.info("notify %s: %s", level, m)
            notes = pn.state.notifications if pn.state.curdoc is not None else None
            if notes is None or not self._loaded:
                self._pending_msgs.append((level, m))
                continue
            # notifications render HTML: a message may quote what a user sent
            getattr(notes, level)(as_html(m), duration=8000)

    def flush_messages(self) -> None:
        """Show the queued messages (called once the page has loaded)."""
        self._loaded = True
        pending, self._pending_msgs = self._pending_msgs, []
        for level, m in pending:
            self.notify(m, level)

    def switch_source(self, name: str) -> list[str]:
        """Open another source: a new page for it (its grid, record and stations differ)."""
        if name not in self.state.param.source.objects:
            return [f"Unknown source {name!r}."]
        loc = pn.state.location
        if loc is not None and name != self.state.source:
            loc.reload = True
            loc.search = "?" + urlencode({"source": name})
        return []

    # ------------------------------------------------------------------ loading
    def _read(self) -> DayFields | None:
        s = self.state
        try:
            return self.hub.day(s.source, s.region, s.day, s.checkpoint)
        except GapfillError as exc:
            self.notify(f"Could not read {s.day:%Y-%m-%d}: {exc}", "error")
        except Exception as exc:  # noqa: BLE001 - never show a traceback on the page
            log.exception("reading %s failed", s.day)
            self.notify(f"Could not read {s.day:%Y-%m-%d}: {type(exc).__name__}", "error")
        return None

    def load(self, rebuild: bool = False) -> None:
        t0 = time.perf_counter()
        f = self._read()
        if f is None:
            return
        # the session's copy: how it shows the day (the hub's memo is shared)
        self.fields = f = dataclasses.replace(f, show_frozen=self.state.show_frozen)
        if rebuild or self.maps_object is None:
            self.maps_object = self.maps.build(f, self.stations)
            self.layout_version += 1
            how = "rebuilt"
        else:
            how = self.maps.update(f)
        self._describe(f)
        self.last_update_s = time.perf_counter() - t0
        log.info("%s: %s in %.3f s", f"{f.date:%Y-%m-%d}", how, self.last_update_s)

    def _describe(self, f: DayFields) -> None:
        frac = plots.gap_fraction(f.gap, f.land)
        self.status = (f"{f.date:%Y-%m-%d} · {f.sensor_label} · {f.lat.size} x {f.lon.size} "
                       f"cells · gap fraction {100 * frac:.1f}% of land")
        self.has_filled = f.filled is not None
        self.cached = bool(f.filled_info.get("cached")) if self.has_filled else False
        if not self.running:
            if self.has_filled and f.filled_info.get("origin"):
                self.inference_status = f"filled {fill.origin_label(f.filled_info)}"
            elif self.cached:
                self.inference_status = "cached output"
            elif self.has_filled:
                self.inference_status = f"computed on {f.filled_info.get('device', '?')}"
            elif f.sensor == schema.SENSOR_NONE:
                self.inference_status = "no radiometer on this day (gap year)"
            elif self.fill_problem:
                self.inference_status = self.fill_problem
            else:
                self.inference_status = "no model output for this day: Run inference"

    def _date_changed(self, *_):
        self.load()
        self.maybe_auto_fill()
        if self.state.station or self.state.has_pixel:
            self.refresh_selection(only_marker=True)

    def _frozen_toggled(self, *_):
        """Fills under frozen ground shown or hidden: the maps in place, the series."""
        self.load()
        self.refresh_selection(only_marker=True)

    def _rebuild(self, *_):
        """A new region or checkpoint: the maps show a loading indicator first (sent to
        the browser before the rebuild starts, on the next tick), then are replaced."""
        self.busy = True

        def rebuild():
            try:
                self.load(rebuild=True)
                self.refresh_selection()
            finally:
                self.busy = False

        self.dispatch(rebuild)

    # ------------------------------------------------------------------ clicks
    def on_tap(self, lon: float, lat: float) -> None:
        sid = self.maps.nearest_station(lon, lat)
        msgs = self.state.request_station(sid) if sid else self.state.request_pixel(lat, lon)
        self.notify(msgs)

    def on_box(self, bbox) -> None:
        self.notify(self.state.request_region(bbox))

    def _selection_changed(self, *_):
        self.maps.select_station(self.state.station)
        self._mark_selection()
        self.refresh_selection()

    def _mark_selection(self) -> None:
        """The selected station or pixel marked on every map (in place; a new region
        clears the mark, :meth:`MapSet.build`)."""
        s = self.state
        lat, lon = s.pixel
        if s.station and self.stations is not None:
            row = self.stations[self.stations["id"].astype(str) == s.station]
            if len(row):
                lat, lon = float(row["lat"].iloc[0]), float(row["lon"].iloc[0])
        self.maps.mark(lat, lon)

    def _validation_source(self):
        from validation.sources import DemoSource

        key = self.state.source
        if getattr(self, "_vsource_key", None) != key:
            st = self.hub.stations(key)
            self._vsource = DemoSource(world=self.hub.world(key), stations=st,
                                       compute_filled=False) if st is not None else None
            self._vsource_key = key
        return self._vsource

    def refresh_selection(self, only_marker: bool = False) -> None:
        """Series, statistics and scatter of the selected station or pixel.

        Everything but the filled series is read at once; the filled series at the cell
        comes from the series store when there is one, else from the model run in the
        worker over the window (torch is loaded there), and then the view updates again.
        """
        s = self.state
        if not (s.station or s.has_pixel):
            return
        start, end = analysis.series_window(s.day, s.grid.start, s.grid.end, s.window)
        try:
            if s.station:
                row = self.stations.set_index("id").loc[s.station]
                lat, lon = float(row["lat"]), float(row["lon"])
                title = f"Station {s.station} ({row['network']}, {row['name']})"
            else:
                lat, lon = s.pixel
                title = f"Pixel {lat:.3f}°N {lon:.3f}°E"
            frame = self.hub.point_frame(s.source, lat, lon, start, end, region=s.region,
                                         checkpoint=s.checkpoint)
            vframe = None
            if s.station:
                vframe = analysis.station_frame(self._validation_source(), s.station,
                                                start, end)
                frame = analysis.add_station_series(frame, vframe)
            key = (s.source, s.station, lat, lon, start, end, s.checkpoint)
            filled = self._series_filled.get(key)  # columns filled, filled_sd
            if filled is not None:
                for col in filled:
                    frame[col] = filled[col].reindex(frame.index)
            elif not frame["filled"].notna().all() and not only_marker:
                self._start_series_job(key, lat, lon, start, end)
            frame, note = analysis.scale_ascat(frame)
        except Exception as exc:  # noqa: BLE001
            log.exception("series failed")
            self.notify(f"Could not load the time series: {type(exc).__name__}: {exc}",
                        "error")
            return
        self.series_frame = frame
        self.series_plot = plots.series_plot(frame, s.day, note, title=title,
                                             show_frozen=s.show_frozen)
        if s.station and vframe is not None:
            try:
                self.stats = analysis.station_stats(self._validation_source(), s.station,
                                                    vframe, start, end, frame["filled"])
                if key in self._series_jobs:  # not NaN/INSUFFICIENT_DATA: not yet there
                    self.stats = analysis.pending_filled(self.stats)
            except Exception as exc:  # noqa: BLE001
                log.exception("stats failed")
                self.notify(f"Statistics failed: {exc}", "error")
                self.stats = pd.DataFrame()
            self.scatter = plots.scatter_plot(frame, "insitu", ("raw", "filled"),
                                              title="Satellite vs in situ")
        else:
            self.stats = pd.DataFrame()
            self.scatter = plots.scatter_plot(frame, "truth", ("raw", "filled"),
                                              title="Satellite vs the demo's truth") \
                if "truth" in frame else plots.scatter_plot(pd.DataFrame())
        self.series_title = title
        self.param.trigger("series_title")

    def _start_series_job(self, key, lat, lon, start, end) -> None:
        if key in self._series_jobs:
            return
        self._series_jobs.add(key)
        self.series_status = "computing the filled series at this cell (model, worker)…"
        world = self.hub.world(self.state.source)
        ckpt = self.state.checkpoint

        def job():
            return analysis.filled_at_cell(world, lat, lon, start, end, ckpt, device="cpu")

        fut = self.hub.submit(job)

        def done(f):
            try:
                series = f.result()
            except Exception as exc:  # noqa: BLE001
                log.info("filled series failed: %s", exc)
                msg = f"Filled series unavailable: {exc}"
                series = None
            else:
                msg = ""

            def apply():
                self.series_status = msg
                if series is not None:
                    self._series_filled[key] = series
                    self.refresh_selection(only_marker=True)
                # done only once applied: until then the job still counts as running
                self._series_jobs.discard(key)

            self.dispatch(apply)

        fut.add_done_callback(done)

    # ------------------------------------------------------------------ inference
    async def run_inference(self) -> None:
        """Run the model for the shown region and day in the worker; progress on the loop."""
        if not self._can_fill(self.running):
            return
        s = self.state
        if self.fields.sensor == schema.SENSOR_NONE:
            self.notify("No radiometer observed this day (2011-10-04 to 2012-07-01); "
                        "nothing to fill.", "info")
            return
        self.running, self.progress = True, 0
        self.inference_status = "starting"
        progress = jobs.Progress()

        def tick(frac: float, msg: str) -> None:
            self.progress = int(min(99, 100 * frac))
            self.inference_status = f"running: {msg}"

        day, region, ckpt, source = s.day, s.region, s.checkpoint, s.source
        out = await jobs.run(
            "Inference", lambda: self.hub.run_inference(source, region, day, ckpt, progress),
            progress, tick, notify=self.notify,
            status=lambda line: setattr(self, "inference_status", line),
            done=lambda: setattr(self, "running", False))
        if out is None:
            return
        filled, info = out
        self.progress = 100
        self.notify(f"Inference done on {info.get('device')} in {info.get('seconds')} s.", "info")
        if (s.day, s.region, s.checkpoint, s.source) == (day, region, ckpt, source):
            self.load()
            self.cached = bool(info.get("cached"))
            self.inference_status = (
                "cached output" if self.cached else
                f"computed on {info.get('device')} in {info.get('seconds')} s")
            self.refresh_selection()

    def export_header(self, what: str) -> dict[str, str]:
        """The header lines of a CSV export: what, source, window, checkpoint, units."""
        s = self.state
        start, end = analysis.series_window(s.day, s.grid.start, s.grid.end, s.window)
        return {"what": what, "source": s.source,
                "region": ",".join(f"{v:g}" for v in s.region),
                "window": f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (selected {s.day:%Y-%m-%d})",
                "checkpoint": next((lbl for lbl, k in self.checkpoint_labels.items()
                                    if k == s.checkpoint_key), s.checkpoint_key),
                "units": "m3 m-3 (ascat: percent of saturation)"}

    # ------------------------------------------------------------------ network table
    def network_job(self):
        """Start the network table in the model worker; a future of ``(table, summary)``
        (:func:`app.analysis.network_tables` over the series window)."""
        s = self.state
        start, end = analysis.series_window(s.day, s.grid.start, s.grid.end, s.window)
        st = self.hub.stations(s.source)
        if st is None:
            raise GapfillError("this source has no stations")
        world = self.hub.world(s.source)
        ckpt = s.checkpoint
        return self.hub.submit(analysis.network_tables, world, st, start, end, ckpt)
