"""The linked maps of one session and how they are updated.

Rendering (Bokeh, **canvas** backend: HoloViews' default WebGL is software-emulated in
headless browsers and costs ~0.1 s per map per repaint):

* The maps are the entries of :data:`app.mapspecs.MAPS` (layers, title, colours, colour
  bar): build, update and the PNG export (:mod:`app.export`) all read that one table.
* Each map is an overlay of Datashader-rasterized images (``rasterize`` re-aggregates on
  zoom and pan through its own range streams), the coastlines of the region (clipped once,
  a static element), and the stations.
* Each image is one ``hv.DynamicMap`` whose callback returns the current field; it is
  driven by one ``Frame`` stream.  Colour limits and the mask toggle are applied *after*
  rasterizing with ``.apply.opts`` and parameter references, so a style change never
  re-aggregates.
* A date change takes a fast path once the plots exist: the new day is regridded to
  exactly the grid of the image on screen (the plot's own data source holds its extent and
  shape) and written into the existing Bokeh data sources; the ``Frame`` stream is updated
  silently so that the next zoom re-rasterizes the new day.  Nothing is rebuilt and
  HoloViews' per-update overhead (~0.2 s for four maps) is skipped.  The zoomed-out view
  (the whole region on fewer pixels) is regridded with Datashader's own mean weights in
  numpy, other views with Datashader on one thread (:mod:`app.regrid`).  All images and
  titles go out in **one** document patch, so the browser colour-maps and repaints each
  map once per date change.
* The maps grow with the window (responsive, two a row, each keeping the region's lon/lat
  aspect), but their images do not: each is rasterized to a fixed pixel budget
  (:meth:`MapSet.image_shape`, never finer than the grid's cells) and the canvas scales it,
  so a wider window never makes the date step slower.
* A region, source or checkpoint change rebuilds the maps (rare, and it re-frames the axes).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

import holoviews as hv
import numpy as np
import panel as pn
import param
from bokeh.models import BoxSelectTool, ColumnDataSource, CustomJSHover
from holoviews.operation.datashader import rasterize

from app import plots
from app.days import DayFields
from app.mapspecs import MAPS, MapSpec, layer_arrays, layers, map_titles, resolve
from app.regrid import image_shape, plot_aspect, regrid_like, single_threaded_numba
from data_catalog import grid

log = logging.getLogger(__name__)

Frame = hv.streams.Stream.define("Frame", key=0)


def use_bokeh_backend() -> None:
    """HoloViews' Bokeh backend, loaded once per process, drawing on canvas (not WebGL).

    Once, not per session (``app/main.py`` runs again for every page): each
    ``hv.extension()`` call rebuilds the option builders of every element type, ~17,000
    small objects that outlive the session, and costs every page opening its time.
    """
    if hv.Store.current_backend != "bokeh":
        hv.extension("bokeh", logo=False)
    hv.renderer("bokeh").webgl = False


def canvas_renderer():
    """The Bokeh renderer the app uses: canvas, not WebGL (see the module docstring)."""
    return hv.renderer("bokeh").instance(webgl=False, mode="server")


@functools.lru_cache(maxsize=32)
def coast_paths(bbox: tuple[float, float, float, float]) -> tuple[np.ndarray, ...]:
    """Natural Earth 50m coastlines clipped to the region (with a margin), once per region."""
    from data_catalog.geo import coastline_paths

    w, s, e, n = bbox
    pad = 0.5
    try:
        paths = coastline_paths(w - pad, s - pad, e + pad, n + pad, "50m")
    except Exception as exc:  # noqa: BLE001 - coastlines are decoration; say so in the log
        log.warning("coastlines unavailable: %s", exc)
        return ()
    # simplify to about a screen pixel of a map: every repaint draws them four times
    import shapely

    tol = max(e - w, n - s) / 1500.0
    out = []
    for p in paths:
        q = np.asarray(shapely.simplify(shapely.LineString(p), tol).coords)
        if len(q) >= 2:
            out.append(q)
    return tuple(out)


class MapSet(param.Parameterized):
    """The maps of one session: built per region, updated in place per date.

    Parameters
    ----------
    state
        The session's :class:`~app.state.ExplorerState` (clim and show_mask are read as
        parameter references).
    on_tap
        Called with ``(lon, lat)`` when a map is clicked.
    on_box
        Called with ``(W, S, E, N)`` when a box is drawn with the box-select tool.
    maps
        The map specifications (default :data:`app.mapspecs.MAPS`).
    sm_cmap
        Colour map of the soil-moisture maps (the source's, from the catalog metadata).
    """

    width = param.Integer(default=430, bounds=(200, 1200), doc="""
        Nominal width of one map, px: with ``height``, its image's pixel budget
        (:meth:`image_shape`); on the page a map grows with the window.""")
    height = param.Integer(default=330, bounds=(150, 1000), doc="Nominal height of one map, px.")
    min_width = param.Integer(default=340, bounds=(200, 1200), doc="Narrowest map, px.")
    fast_updates = param.Integer(default=0, doc="Date changes served by the fast path.")
    slow_updates = param.Integer(default=0, doc="Date changes that went through HoloViews.")

    def __init__(self, state, on_tap: Callable | None = None, on_box: Callable | None = None,
                 dispatch: Callable[[Callable[[], None]], None] | None = None,
                 maps: list[MapSpec] | None = None, sm_cmap: str = plots.SM_CMAP, **params):
        super().__init__(**params)
        self.state = state
        #: the map table (:data:`app.mapspecs.MAPS` unless given); the maps shown (its
        #: choices resolved by the source and ``state.fourth`` at each build) and layers
        self.specs = list(MAPS if maps is None else maps)
        self.maps = resolve(self.specs, None, getattr(state, "fourth", ""))
        self.layers = layers(self.maps)
        #: the hovers' detail sources (SD and reasons per cell) of the layers with one
        self._details: dict[str, ColumnDataSource] = {}
        #: colour map of the maps that follow the session's soil-moisture limits
        self.sm_cmap = sm_cmap
        # how to run a change of Bokeh models: on a server it must hold the document lock
        self.dispatch = dispatch or (lambda fn: fn())
        self.on_tap = on_tap
        self.on_box = on_box
        self.fields: DayFields | None = None
        self.arrays: dict[str, np.ndarray] = {}
        self._elements: dict[str, tuple[int, hv.Image]] = {}
        self.titles: dict[str, str] = {}
        self.frame = Frame()
        self._plots: dict[str, object] = {}
        self._figs: dict[str, object] = {}
        self._stations = None
        self._streams: list = []
        self.station_stream = hv.streams.Stream.define("Selected", selected="")()
        #: the selected station or pixel (lon, lat) marked on every map, and the marker's
        #: data source of each map (written in place: no stream, no HoloViews update)
        self._mark: tuple[float, float] | None = None
        self._mark_srcs: dict[str, object] = {}
        self._bbox = None

    # ------------------------------------------------------------------ building
    def _hook(self, name: str):
        def hook(plot, element):
            self._plots[name] = plot
        return hook

    def _title_hook(self, mapname: str):
        def hook(plot, element):
            self._figs[mapname] = plot.state
            title = self.titles.get(mapname)
            if title is not None and plot.state.title is not None:
                plot.state.title.text = title
            for tool in plot.state.tools:  # a drawn box stays visible while the maps reload
                if isinstance(tool, BoxSelectTool):
                    tool.persistent = True
        return hook

    def image_shape(self, bbox) -> tuple[int, int]:
        """(width, height) of a map's image for a region (:func:`app.regrid.image_shape`)."""
        return image_shape(bbox, self.width, self.height)

    def _raster(self, name: str, shape: tuple[int, int], sampling: tuple[float, float]
                ) -> hv.DynamicMap:
        agg = self.layers[name].agg
        dmap = hv.DynamicMap(lambda key, _n=name: self.element(_n, key), streams=[self.frame])
        # precompute=True keeps the regridding input prepared between zooms
        layer = self.layers[name]
        # hover names a gap category, and a gap on a value layer, instead of "NaN"; a
        # layer with a detail adds the cell's SD and reasons (read at the mouse position)
        if layer.detail is not None:
            src = self._details[name] = ColumnDataSource(layer.detail(self.fields))
            hover = CustomJSHover(code=plots.hover_js(layer.dim, detail=True),
                                  args={"src": src})
        else:
            hover = CustomJSHover(code=plots.hover_js(layer.dim, layer.names))
        label = layer.dim.label if layer.names is None else "Gap / fill"
        # a fixed image (no PlotSize stream): its pixels do not follow the map's size, and
        # are never finer than the grid's cells (the canvas draws them as blocks)
        return rasterize(dmap, aggregator=agg, interpolation="nearest", precompute=True,
                         streams=[hv.streams.RangeXY], width=shape[0], height=shape[1],
                         x_sampling=sampling[0], y_sampling=sampling[1]).opts(
            hooks=[self._hook(name)],
            hover_tooltips=[(label, "@image{custom}")],
            hover_formatters={"@image": hover})

    def _styled(self, spec: MapSpec, common: dict, shape, sampling) -> hv.DynamicMap:
        """The base layer of a map with its colours and colour bar.

        Limits that follow the session are applied after rasterizing with a parameter
        reference, so a style change never re-aggregates."""
        base = self._raster(spec.base.name, shape, sampling)
        bar = dict(colorbar=bool(spec.colorbar))
        if spec.colorbar:
            bar["colorbar_opts"] = {"title": spec.colorbar}
        if spec.clim is None:
            return base.apply.opts(cmap=spec.cmap or self.sm_cmap,
                                   clim=self.state.param.clim).opts(**bar, **common)
        return base.opts(cmap=spec.cmap, clim=spec.clim, **bar, **common)

    def _overlay(self, layer, shape, sampling) -> hv.DynamicMap:
        """An overlay layer: its own colours, transparent below its limits; a mask layer
        shows only while the mask toggle is on."""
        clear = {"min": "transparent", "NaN": "transparent"}
        out = self._raster(layer.name, shape, sampling).opts(
            cmap=layer.cmap, clim=layer.clim, clipping_colors=clear, colorbar=False)
        if layer.mask_alpha is not None:
            alpha = param.bind(lambda show, a=layer.mask_alpha: a if show else 0.0,
                               self.state.param.show_mask)
            out = out.apply.opts(alpha=alpha)
        return out

    def build(self, fields: DayFields, stations=None) -> hv.Layout:
        """All maps for the fields' region (call again when the region changes)."""
        self.maps = resolve(self.specs, fields, getattr(self.state, "fourth", ""))
        self.layers = layers(self.maps)
        self._details = {}
        self._set_fields(fields)
        self._plots.clear()
        self._figs.clear()
        bbox = grid.bounds(fields.lat, fields.lon)
        coast = plots.coastlines(coast_paths(bbox))
        shape = self.image_shape(bbox)
        # a hair under a cell, so that a view of n cells gives n pixels, not n - 1
        sampling = (grid.resolution(fields.lon) * (1 - 1e-6),
                    grid.resolution(fields.lat) * (1 - 1e-6))
        # responsive: the maps share the main area's width, two a row, with the plot's
        # aspect set so that the frame keeps the region's lon/lat aspect
        common = dict(responsive=True, aspect=plot_aspect(bbox), min_width=self.min_width,
                      tools=["hover", "tap"],
                      active_tools=["wheel_zoom"], xlim=(bbox[0], bbox[2]),
                      ylim=(bbox[1], bbox[3]), data_aspect=None)
        bases, overlays = {}, {}
        for spec in self.maps:
            # the box-select tool belongs to the base plot (its figure gets the tools of
            # its element plots) and is the map's active drag: a drag draws a region
            opts = dict(common, tools=["hover", "tap", "box_select"],
                        active_tools=["wheel_zoom", "box_select"]) if spec.box_select \
                else common
            bases[spec.name] = ov = self._styled(spec, opts, shape, sampling)
            for layer in spec.layers[1:]:
                ov = ov * self._overlay(layer, shape, sampling)
            overlays[spec.name] = ov
        if stations is not None and len(stations):
            self._stations = stations
            pts = hv.DynamicMap(lambda selected: plots.station_points(stations, selected),
                                streams=[self.station_stream])
            pts = pts.opts(fill_color=hv.dim("selected").categorize(
                {0: "#ff00ff", 1: "#ffff00"}, default="#ff00ff"), size=10, line_color="black",
                marker="triangle", tools=["hover"])
            overlays = {k: v * pts for k, v in overlays.items()}
        if self._bbox != bbox:  # a new region: the mark goes (the selection may be outside)
            self._mark, self._bbox = None, bbox
        self._mark_srcs.clear()
        overlays = {k: v * self._marker(k) for k, v in overlays.items()}
        out = []
        for spec in self.maps:
            tools = ["hover", "tap", "box_select"] if spec.box_select else ["hover", "tap"]
            out.append((overlays[spec.name] * coast).opts(
                hooks=[self._title_hook(spec.name)], title=self.titles[spec.name],
                tools=tools))
        # clicks on any map select a station or pixel; boxes are drawn on the box-select
        # map.  The streams hang on each map's base raster (the plot that owns the events)
        self.cleanup_streams()
        for spec in self.maps:
            tap = hv.streams.Tap(source=bases[spec.name])
            tap.add_subscriber(self._tapped)
            self._streams.append(tap)
            if spec.box_select:
                box = hv.streams.BoundsXY(source=bases[spec.name])
                box.add_subscriber(self._boxed)
                self._streams.append(box)
        return hv.Layout(out).cols(2).opts(shared_axes=True)

    def _set_fields(self, fields: DayFields) -> None:
        self.fields = fields
        self.arrays = layer_arrays(fields, self.maps)
        self._elements.clear()
        self.titles = map_titles(fields, self.maps)

    def element(self, name: str, key: int = 0) -> hv.Image:
        """The HoloViews image of a layer, built when HoloViews asks for it (zoom, rebuild)."""
        hit = self._elements.get(name)
        if hit is None:
            f = self.fields
            hit = (key, self.layers[name].element(f, self.arrays[name]))
            self._elements[name] = hit
        return hit[1]

    def cleanup_streams(self) -> None:
        """Detach this map set's event streams (HoloViews keeps a global registry)."""
        for st in self._streams:
            st.clear()
            st.source = None
        self._streams.clear()

    def cleanup(self) -> None:
        """Drop every reference to the session's plots (called when the session ends)."""
        self.cleanup_streams()
        self._plots.clear()
        self._figs.clear()
        self._mark_srcs.clear()
        self._elements.clear()

    # ------------------------------------------------------------------ events
    def _tapped(self, x=None, y=None, **_):
        if x is None or y is None or self.on_tap is None:
            return
        self.on_tap(float(x), float(y))

    def _boxed(self, bounds=None, **_):
        if bounds is None or self.on_box is None:
            return
        self.on_box(tuple(float(b) for b in bounds))

    def nearest_station(self, lon: float, lat: float) -> str:
        """Id of the station within a few screen pixels of a click ('' if none)."""
        if self._stations is None or not len(self._stations):
            return ""
        xr_ = self._view_extent()
        tol = 0.025 * (xr_[2] - xr_[0]) if xr_ else 0.3
        d = np.hypot(self._stations["lon"].to_numpy(float) - lon,
                     self._stations["lat"].to_numpy(float) - lat)
        k = int(np.argmin(d))
        return str(self._stations["id"].iloc[k]) if d[k] <= tol else ""

    def _view_extent(self):
        fig = self._figs.get("raw")
        if fig is None:
            return None
        try:
            return (fig.x_range.start, fig.y_range.start, fig.x_range.end, fig.y_range.end)
        except AttributeError:
            return None

    def _marker(self, mapname: str) -> hv.Points:
        """A static, empty point layer whose data source :meth:`mark` writes."""
        def hook(plot, element):
            src = image_source(plot)  # the plot's Bokeh data source (see image_source)
            if src is None:
                return
            self._mark_srcs[mapname] = src
            want = self._mark_data()
            if list(src.data.get(plots.LON_DIM.name, [])) != want[plots.LON_DIM.name]:
                # a re-render reset it
                src.data.update(want)
        return hv.Points(([], []), kdims=plots.KDIMS).opts(
            marker="square", size=13, fill_alpha=0.0, line_color="#ff00ff", line_width=2.5,
            hooks=[hook])

    def _mark_data(self) -> dict:
        x, y = ([self._mark[0]], [self._mark[1]]) if self._mark else ([], [])
        return {plots.LON_DIM.name: x, plots.LAT_DIM.name: y}

    def mark(self, lat: float, lon: float) -> None:
        """Mark the selected station or pixel on every map (NaN: none), in place: the
        marker's data sources are written under the document lock, nothing is rebuilt."""
        self._mark = (float(lon), float(lat)) if math.isfinite(lat) and \
            math.isfinite(lon) else None
        data, srcs = self._mark_data(), list(self._mark_srcs.values())

        def write():
            with pn.io.hold():
                for src in srcs:
                    src.data.update(data)

        if srcs:
            self.dispatch(write)

    def select_station(self, sid: str) -> None:
        self.station_stream.event(selected=sid)

    # ------------------------------------------------------------------ date changes
    def update(self, fields: DayFields) -> str:
        """Show another day of the same region; returns 'fast' or 'stream'."""
        self._set_fields(fields)
        key = self.frame.key + 1
        details = self._new_details()
        if self._fast_write(fields, details):
            self.frame.update(key=key)  # silent: the next zoom re-rasterizes this day
            self.fast_updates += 1
            return "fast"
        if details:
            self.dispatch(lambda: [src.data.update(d) for src, d in details])
        self.frame.event(key=key)
        self.slow_updates += 1
        return "stream"

    def _new_details(self) -> list[tuple[ColumnDataSource, dict]]:
        """The hovers' detail data that changed with the day (numpy only, small)."""
        out = []
        for name, src in self._details.items():
            new = self.layers[name].detail(self.fields)
            old = src.data.get("code", [None])[0]
            if isinstance(old, np.ndarray) and np.array_equal(old, new["code"][0]) and \
                    np.array_equal(src.data["grid"][0], new["grid"][0]):
                continue
            out.append((src, new))
        return out

    def _fast_write(self, fields: DayFields, details=()) -> bool:
        if set(self._plots) != set(self.layers) or \
                set(self._figs) != {m.name for m in self.maps}:
            return False
        new = {}
        # one thread: numba's parallel kernels stall when the cores are busy (the browser,
        # other sessions), and the regrids here are small
        with single_threaded_numba():
            for name, layer in self.layers.items():
                src = image_source(self._plots[name])
                arr = self._regridded(name, layer.agg, src)
                if arr is None:
                    return False
                old = src.data["image"][0]
                if isinstance(old, np.ndarray) and old.shape == arr.shape and np.array_equal(
                        old, arr, equal_nan=True):
                    continue  # unchanged (e.g. no model output on either day): send nothing
                new[name] = (src, arr)
        titles = dict(self.titles)
        figs = dict(self._figs)

        def write():
            # one document patch for the images and the titles: the browser then decodes,
            # colour-maps and repaints each map once
            with pn.io.hold():
                for src, arr in new.values():
                    src.data.update(image=[arr])
                for src, data in details:
                    src.data.update(data)
                for mapname, fig in figs.items():
                    if fig.title is not None and fig.title.text != titles[mapname]:
                        fig.title.text = titles[mapname]
            log.debug("wrote %d layers and the titles", len(new))

        self.dispatch(write)
        return True

    def _regridded(self, name: str, agg: str, src) -> np.ndarray | None:
        """The layer's field regridded to the image its data source holds (None: no image)."""
        if src is None:
            return None
        data = src.data
        try:
            img = data["image"][0]
            x0, y0, dw, dh = (float(data[k][0]) for k in ("x", "y", "dw", "dh"))
        except (KeyError, IndexError, TypeError):
            return None
        h, w = np.shape(img)
        if not (h and w and all(math.isfinite(v) for v in (x0, y0, dw, dh))):
            return None
        arr = regrid_like(self.arrays[name], self.fields.lat, self.fields.lon, x0, y0, dw, dh,
                          w, h, agg)
        if agg == "mode":  # categories: a quarter of the bytes; 0 is below clim (clear)
            arr = np.nan_to_num(arr, nan=0.0).astype(np.uint8)
        return arr


def image_source(plot):
    """The Bokeh data source of a HoloViews image plot (``None`` before it is drawn).

    Private: ``plot.handles`` is HoloViews' internal registry of a plot's Bokeh models;
    the public way to change an image is a stream event (``Frame.event``), which re-runs
    HoloViews' whole update (~0.2 s for four maps).  ``tests/test_app_memory.py::
    test_private_internals_are_still_there`` fails loudly if the handle disappears.
    """
    return plot.handles.get("source")


def legend_items() -> list[tuple[str, str]]:
    """(label, colour) of the gap categories drawn on the raw map."""
    return [(plots.GAP_NAMES[f.value], plots.GAP_COLOURS[f.value])
            for f in plots.GAP_CATEGORIES] + [
        ("Filled by the model (pale)", "#dddddd"),
        (f"{plots.FROZEN_HIDDEN} (toggle beside the maps)", plots.FROZEN_HIDDEN_COLOR)]


__all__ = ["MapSet", "canvas_renderer", "coast_paths", "image_source", "legend_items",
           "regrid_like", "use_bokeh_backend"]
