"""Thin views: they lay widgets and panes out and forward user input to the controller.

Every widget value goes through the state's ``request_*`` validation before it changes
anything; refused values are reported as notifications and the widget is reset.  The
widgets are the guarded ones of :mod:`app.guard`: a raw value no real widget sends (forged
through the Bokeh document) is refused, with a message, before Panel converts it.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import pandas as pd
import panel as pn
import param

from app import guard, plots
from app import maps as mapsmod
from app.analysis import ESSENTIAL_COLUMNS, STATS_COLUMNS
from app.controller import Explorer
from app.state import WINDOWS
from app.text import as_html, as_markdown
from data_catalog.inputs import LAT_RANGE, LON_RANGE

log = logging.getLogger(__name__)


class Sidebar(pn.viewable.Viewer):
    """Source, region, date, checkpoint and display options."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.app.state
        start, end = s.grid.start.date(), s.grid.end.date()
        self.source = guard.Select(name="Source", options=list(s.param.source.objects),
                                   value=s.source)
        self.preset = guard.Select(name="Region preset",
                                   options={"custom": "custom", **{
                                       p.label: k for k, p in s.presets.items()}},
                                   value=s.preset)
        ranges = (LON_RANGE, LAT_RANGE, LON_RANGE, LAT_RANGE)
        self.bbox = [guard.FloatInput(name=n, value=v, step=0.25, width=70, start=lo, end=hi)
                     for n, v, (lo, hi) in zip("WSEN", s.region, ranges, strict=True)]
        self.apply_region = pn.widgets.Button(name="Apply region", button_type="default")
        self.date_picker = guard.DatePicker(name="Date", value=s.day.to_pydatetime(),
                                            start=start, end=end)
        self.typed_date = guard.TextInput(name="Go to date", placeholder="YYYY-MM-DD, Enter",
                                          css_classes=["typed-date"])
        # a slider needs two ends: a one-day source gets a hidden one of two days
        self.date_slider = guard.DateSlider(name="Record", start=start,
                                            end=max(end, start + dt.timedelta(days=1)),
                                            value=s.day.date(), step=1, format="%Y-%m-%d")
        self.prev = pn.widgets.Button(name="◀ previous day", width=120)
        self.next = pn.widgets.Button(name="next day ▶", width=120)
        # navigation follows the record: one day has nothing to step through
        one_day = start == end
        self.date_slider.visible = self.prev.visible = self.next.visible = not one_day
        self.record_note = pn.pane.Markdown(
            f"This source holds one day ({start:%Y-%m-%d})." if one_day else
            "" if s.grid.times is None else
            f"This source holds {len(s.grid.times)} days; the buttons step through them.",
            css_classes=["record-note"], styles={"font-size": "small"})
        # labels and keys go to the browser; the state maps a key to its server path
        self.checkpoint = guard.Select(name="Checkpoint", options=self.app.checkpoint_labels,
                                       value=s.checkpoint_key)
        self.clim = guard.RangeSlider(name="Colour limits (m3 m-3)", start=0.0, end=1.0,
                                      step=0.01, value=tuple(s.clim))
        self.mask = guard.Checkbox(name="Show gap mask / filled pixels", value=s.show_mask)
        for w in (self.source, self.preset, *self.bbox, self.date_picker, self.date_slider,
                  self.typed_date, self.checkpoint, self.clim, self.mask):
            w.refused = self.app.notify
        # the sidebar's width, not Panel's fixed 300 px (with its margins, past the column)
        for w in (self.source, self.preset, self.apply_region, self.date_picker,
                  self.typed_date, self.date_slider, self.checkpoint, self.clim, self.mask):
            w.param.update(width=None, sizing_mode="stretch_width")
        self.source.param.watch(self._source, "value")
        self.preset.param.watch(self._preset, "value")
        self.apply_region.on_click(self._region)
        self.date_picker.param.watch(self._date, "value")
        self.typed_date.param.watch(self._typed, "value")
        self.date_slider.param.watch(self._date, "value_throttled")
        self.prev.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(1))
        self.checkpoint.param.watch(self._checkpoint, "value")
        self.clim.param.watch(self._clim, "value_throttled")
        self.mask.param.watch(lambda e: setattr(s, "show_mask", bool(e.new)), "value")
        # after the maps' own update (the same tick, queued behind it): the date widgets
        # then never delay the map patch
        s.param.watch(lambda *_: self.app.dispatch(self._sync_from_state),
                      ["date", "region", "preset", "clim"])

    # browser -> state (validated)
    def _source(self, e):
        self.app.busy = True  # the page reloads on the new source
        msgs = self.app.switch_source(e.new)
        if msgs:
            self.app.busy = False
            self.app.notify(msgs)
            self.source.value = self.app.state.source

    def _preset(self, e):
        msgs = self.app.state.request_preset(e.new)
        self.app.notify(msgs)
        if self.preset.value != self.app.state.preset:
            self.preset.value = self.app.state.preset

    def _region(self, _=None):
        self.app.notify(self.app.state.request_region([w.value for w in self.bbox]))
        self._sync_from_state()

    def _date(self, e):
        msgs = self.app.state.request_date(e.new)
        if msgs:
            self.app.notify(msgs)
            self._sync_from_state()

    def _typed(self, e):
        """A typed day: shown when it is one of the record (the box is then cleared); else
        one message, and the day shown and the typed text are kept."""
        if not e.new:
            return
        msgs = self.app.state.request_date(e.new)
        if msgs:
            self.app.notify([f"Typed {m[0].lower()}{m[1:]}" for m in msgs])
        else:
            self.typed_date.value = ""

    def _step(self, days: int):
        self.app.notify(self.app.state.step_date(days))

    def _checkpoint(self, e):
        msgs = self.app.state.request_checkpoint(e.new)
        if msgs:
            self.app.notify(msgs)
            self.checkpoint.value = self.app.state.checkpoint_key

    def _clim(self, e):
        try:
            lo, hi = e.new
        except (TypeError, ValueError):
            lo, hi = None, None
        msgs = self.app.state.request_clim(lo, hi)
        if msgs:
            self.app.notify(msgs)
            self.clim.value = tuple(self.app.state.clim)

    # state -> widgets
    def _sync_from_state(self, *_):
        s = self.app.state
        d = s.day.date()
        if self.date_picker.value != s.day.to_pydatetime():
            self.date_picker.value = s.day.to_pydatetime()
        if self.date_slider.value != d:
            self.date_slider.value = d
        for w, v in zip(self.bbox, s.region, strict=True):
            if w.value != v:
                w.value = v
        if self.preset.value != s.preset:
            self.preset.value = s.preset
        if tuple(self.clim.value) != tuple(s.clim):
            self.clim.value = tuple(s.clim)

    def __panel__(self):
        return pn.Column(
            "## AMSR Gap-Fill Explorer",
            self.source,
            "### Region",
            self.preset,
            pn.Row(*self.bbox[:2]), pn.Row(*self.bbox[2:]),
            self.apply_region,
            pn.pane.Markdown("Or draw a box with the box-select tool on the raw map.",
                             styles={"font-size": "small"}),
            "### Date",
            self.date_picker, self.typed_date, self.date_slider, pn.Row(self.prev, self.next),
            self.record_note,
            "### Model",
            self.checkpoint,
            "### Display",
            self.clim, self.mask,
            width=300,
        )


class InferencePanel(pn.viewable.Viewer):
    """Cached badge, or the Run inference button with device and progress."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        a = self.app
        self.button = pn.widgets.Button(name="Run inference", button_type="primary",
                                        css_classes=["run-inference"])
        self.button.on_click(self._run)
        self.bar = pn.indicators.Progress(name="Inference progress", value=0, max=100,
                                          width=220, css_classes=["inference-progress"],
                                          visible=False)
        self.badge = pn.pane.HTML(self._badge(), css_classes=["inference-badge"])
        a.param.watch(self._refresh, ["inference_status", "progress", "running", "cached",
                                      "has_filled"])
        self._refresh()

    async def _run(self, _):
        await self.app.run_inference()

    def _badge(self) -> str:
        a = self.app
        if a.cached and a.has_filled and not a.running:
            return ('<span class="badge-cached" style="background:#2ca02c;color:white;'
                    'padding:2px 8px;border-radius:8px">cached</span>')
        return f'<span class="inference-status">{as_html(a.inference_status)}</span>'

    def _refresh(self, *_):
        a = self.app
        self.badge.object = self._badge() + (
            f' <span class="inference-status">{as_html(a.inference_status)}</span>'
            if a.cached and not a.running else "")
        self.bar.visible = a.running
        self.bar.value = a.progress
        self.button.disabled = a.running or bool(a.fill_problem)
        self.button.visible = not a.has_filled or a.running

    def __panel__(self):
        return pn.Row(self.button, self.bar, self.badge, sizing_mode="stretch_width")


class MapsView(pn.viewable.Viewer):
    """The four linked maps, the legend and the status line."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        a = self.app
        self.pane = pn.pane.HoloViews(a.maps_object, renderer=mapsmod.canvas_renderer(),
                                      css_classes=["maps"], linked_axes=False,
                                      sizing_mode="stretch_width")
        self.status = pn.pane.Markdown(as_markdown(a.status), css_classes=["map-status"])
        a.param.watch(lambda e: a.dispatch(self._show_status), "status")
        a.param.watch(self._new_layout, "last_update_s")
        a.param.watch(lambda e: setattr(self.pane, "loading", bool(e.new)), "busy")
        self._version = a.layout_version
        self.export = guard.FileDownload(callback=self._png, filename="maps.png",
                                         label="Export maps (PNG)", button_type="default",
                                         width=180, disabled=a.fields is None)
        self.export.disabled_reason = "No day is shown; there is nothing to export"
        self.export.refused = a.notify
        self.export_nc = guard.FileDownload(callback=self._nc, filename="filled.nc",
                                            label="Export filled (netCDF)", width=180,
                                            disabled=True, css_classes=["export-nc"])
        self.export_nc.disabled_reason = "No filled field is shown; fill the day or a " \
                                         "period first"
        self.export_nc.refused = a.notify
        self._name_files()

    def _show_status(self):
        self.status.object = as_markdown(self.app.status)

    def _name_files(self) -> None:
        """Downloads named by source, region and date (or the filled period): set when a
        download is asked for, not on every date change (each rename is a message to the
        browser, and a re-render there, on the date step's hot path)."""
        from app.exports import file_stem

        a, s = self.app, self.app.state
        self.export.filename = file_stem(s.source, s.region, s.day) + ".png"
        first, last = a.export_period()
        self.export_nc.filename = file_stem(s.source, s.region, first, last) + "_filled.nc"

    def _nc(self):
        from app.exports import as_file, filled_netcdf

        a = self.app
        self._name_files()  # read by Panel after this callback, sent with the data
        return as_file(filled_netcdf(a.export_days(), a.state.source,
                                     a.state.checkpoint_key))

    def _new_layout(self, *_):
        a = self.app
        self.export.disabled = a.fields is None
        self.export_nc.disabled = a.fields is None or a.fields.filled is None
        if self.app.layout_version != self._version:
            self._version = self.app.layout_version
            self.pane.object = self.app.maps_object

    def _png(self):
        from app.export import maps_png

        self._name_files()
        a, s = self.app, self.app.state
        title = (f"AMSR Gap-Fill Explorer · {s.source} · region "
                 f"{', '.join(f'{v:g}' for v in s.region)} (W, S, E, N) · {s.day:%Y-%m-%d}")
        return io.BytesIO(maps_png(a.fields, s.clim, maps=a.maps.maps, sm_cmap=a.maps.sm_cmap,
                                   stations=a.stations, show_mask=s.show_mask, title=title))

    def legend(self) -> pn.pane.HTML:
        items = "".join(
            f'<span style="display:inline-block;margin-right:10px">'
            f'<span style="display:inline-block;width:12px;height:12px;background:{c};'
            f'border:1px solid #888;vertical-align:middle"></span> {lbl}</span>'
            for lbl, c in mapsmod.legend_items())
        return pn.pane.HTML(f'<div class="gap-legend">Gap categories: {items}</div>')

    def __panel__(self):
        return pn.Column(pn.Row(self.status, self.export, self.export_nc), self.legend(),
                         self.pane, sizing_mode="stretch_width")


class DetailView(pn.viewable.Viewer):
    """Time series, statistics and scatter of the selected station or pixel."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        a = self.app
        r = mapsmod.canvas_renderer()
        # hidden until a station or pixel is selected
        self.series = pn.pane.HoloViews(a.series_plot.opts(width=760, height=260),
                                        renderer=r, css_classes=["series"], linked_axes=False,
                                        visible=False)
        self.scatter = pn.pane.HoloViews(a.scatter.opts(width=300, height=260), renderer=r,
                                         css_classes=["scatter"], linked_axes=False,
                                         visible=False)
        self.stats = guard.Tabulator(pd.DataFrame(columns=STATS_COLUMNS), disabled=True,
                                     show_index=False, css_classes=["station-stats"],
                                     height=200, width=560, visible=False)
        self.stats.refused = a.notify
        self.title = pn.pane.Markdown("Click a station (triangle) or any pixel on a map.",
                                      css_classes=["series-title"])
        self.series_status = pn.pane.Markdown("", css_classes=["series-status"])
        self.download = guard.FileDownload(callback=self._csv, filename="series.csv",
                                           label="Export series (CSV)", width=180,
                                           disabled=True, css_classes=["export-series"])
        self.download.disabled_reason = "Select a station or pixel first"
        self.download.refused = a.notify
        a.param.watch(self._refresh, "series_title")
        a.param.watch(lambda e: setattr(self.series_status, "object", as_markdown(e.new)),
                      "series_status")
        if a.series_title:  # selected from the URL before this view existed
            self._refresh()

    def _refresh(self, *_):
        a = self.app
        self.series.visible = self.scatter.visible = True
        self.download.disabled = not len(a.series_frame)
        s = a.state
        what = f"station-{s.station}" if s.station else "pixel-{:g}_{:g}".format(*s.pixel)
        self.download.filename = f"gapfill_{what}_{s.day:%Y-%m-%d}_series.csv".replace(
            "/", "-")
        self.stats.visible = bool(len(a.stats))
        self.title.object = (f"**{as_markdown(a.series_title)}** · "
                             f"{plots.ASCAT_RESCALED}: mean/std-scaled to the filled series "
                             "(to raw AMSR until it is computed), m3 m-3; shaded: AMSR gap "
                             "days; dashed: selected date")
        self.series.object = a.series_plot.opts(width=760, height=260)
        self.scatter.object = a.scatter.opts(width=300, height=260)
        if len(a.stats):  # a pixel has none: the hidden table keeps what it had (an
            # empty frame sent to a hidden table came back from the browser as an edit)
            self.stats.value = a.stats.round(4)

    def __panel__(self):
        return pn.Column(self.title, self.series_status, pn.Row(self.series, self.scatter),
                         pn.Row(self.stats, self.download))

    def _csv(self):
        from app.exports import as_file, table_csv

        a = self.app
        frame = a.series_frame.copy()
        frame.index.name = "date"
        return as_file(table_csv(frame, a.export_header(a.series_title)))


class NetworkView(pn.viewable.Viewer):
    """All stations with raw-to-filled change; a row click selects the station."""

    app = param.ClassSelector(class_=Explorer)

    def __init__(self, **params):
        super().__init__(**params)
        self.table = guard.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                     css_classes=["network-table"], height=260,
                                     sizing_mode="stretch_width", name="Station table")
        self.table.refused = self.app.notify
        self.table.on_click(self._clicked)
        self.full_table = pd.DataFrame()
        self.all_columns = guard.Checkbox(name="Show every column", value=False,
                                          css_classes=["all-columns"])
        self.all_columns.refused = self.app.notify
        self.all_columns.param.watch(lambda e: self._show_columns(), "value")
        self.refresh_button = pn.widgets.Button(name="Compute network table")
        self.refresh_button.on_click(self._refresh_clicked)
        self.status = pn.pane.Markdown("", css_classes=["network-status"])
        # disabled until the table exists: an empty file is never offered
        self.download = guard.FileDownload(callback=self._csv, filename="stations.csv",
                                           label="Export table (CSV)", width=180,
                                           disabled=True, css_classes=["export-csv"])
        self.download.disabled_reason = "Compute the network table first; there is " \
                                        "nothing to export yet"
        self.download.refused = self.app.notify
        s = self.app.state
        # labels go to the browser; the state checks the value (app.state.WINDOWS)
        self.window = guard.Select(name="Validation window", width=140,
                                   options={lbl: str(d) for d, lbl in WINDOWS.items()},
                                   value=str(s.window), css_classes=["validation-window"])
        self.window.refused = self.app.notify
        self.window.param.watch(self._window, "value")
        self.note = pn.pane.Markdown(
            "Metrics against in situ over the validation window around the selected date "
            "(validation module; it also sets the station statistics and series); "
            "delta_r = R filled − R raw. Hover a column title for its meaning; click a row "
            "to select the station.",
            styles={"font-size": "small"})

    def _window(self, e):
        msgs = self.app.state.request_window(e.new)
        if msgs:
            self.app.notify(msgs)
            self.window.value = str(self.app.state.window)
        elif len(self.full_table):
            self.status.object = "The window changed: compute the network table again."

    async def refresh(self):
        import asyncio

        self.refresh_button.disabled = True
        self.status.object = "Computing the network table in the worker (the model streams " \
                             "over each station's cell)…"
        try:
            table, summary = await asyncio.wrap_future(self.app.network_job())
        except Exception as exc:  # noqa: BLE001
            log.exception("network table")
            self.app.notify(f"Network table failed: {exc}", "error")
            self.status.object = f"Network table failed: {as_markdown(exc)}"
            return
        finally:
            self.refresh_button.disabled = False
        self.full_table = table.round(4)
        self._show_columns()
        self.download.disabled = not len(table)
        ch = summary.get("relative_change_median_r", {})
        v = ch.get("value")
        self.status.object = (
            f"{summary.get('n_stations', 0)} stations · relative change of the median R from "
            f"raw to filled: **{100 * v:+.1f}%** over {ch.get('n_stations', 0)} paired stations"
            if isinstance(v, float) and v == v else
            f"{summary.get('n_stations', 0)} stations · no raw/filled pair to compare")

    def _show_columns(self) -> None:
        t = self.full_table
        keep = list(t.columns) if self.all_columns.value else [
            c for c in ESSENTIAL_COLUMNS if c in t]
        self.table.value = t[keep] if len(t.columns) else t
        self.table.header_tooltips = {c: ESSENTIAL_COLUMNS[c] for c in keep
                                      if c in ESSENTIAL_COLUMNS}

    def _clicked(self, event):
        try:
            sid = str(self.table.value.iloc[int(event.row)]["id"])
        except (IndexError, KeyError, ValueError, TypeError):
            return
        self.app.notify(self.app.state.request_station(sid))

    async def _refresh_clicked(self, _):
        await self.refresh()

    def _csv(self):
        # only reached with a table: the button is disabled (and a forged click on it
        # refused by app.guard) until there is one
        from app.exports import as_file, table_csv

        return as_file(table_csv(self.full_table, self.app.export_header(
            "station network: raw and filled against in situ")))

    def __panel__(self):
        return pn.Column("### Station network", pn.Row(self.refresh_button, self.download,
                                                      self.all_columns, self.window),
                         self.note, self.status, self.table)
