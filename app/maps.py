"""The four linked maps of one session and how they are updated.

Rendering (Bokeh, **canvas** backend: HoloViews' default WebGL is software-emulated in
headless browsers and costs ~0.1 s per map per repaint):

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
  numpy, other views with Datashader on one thread (its parallel kernels stall when the
  cores are busy).  All images and titles go out in **one** document patch, so the
  browser colour-maps and repaints each map once per date change.
* A region, source or checkpoint change rebuilds the maps (rare, and it re-frames the axes).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable

import datashader as dsh
import holoviews as hv
import numba
import numpy as np
import panel as pn
import param
import xarray as xr
from holoviews.operation.datashader import rasterize

from app import plots
from app.days import DayFields
from data_catalog import grid, schema

log = logging.getLogger(__name__)

MAP_NAMES = ("raw", "filled", "ascat", "diff")
#: image layers: name -> (map, aggregator when zoomed out)
LAYERS = {
    "raw_sm": ("raw", "mean"),
    "raw_gap": ("raw", "mode"),
    "filled_sm": ("filled", "mean"),
    "filled_mark": ("filled", "mode"),
    "ascat": ("ascat", "mean"),
    "diff": ("diff", "mean"),
}

Frame = hv.streams.Stream.define("Frame", key=0)


@contextlib.contextmanager
def single_threaded_numba():
    """Run numba's parallel kernels (Datashader's regridding) on the calling thread only.

    The setting is per thread and restored afterwards.
    """
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


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


#: how each layer's array becomes a HoloViews image
IMAGE_FUNCS = {
    "raw_sm": plots.sm_image, "raw_gap": lambda lo, la, v: plots._image(lo, la, v,
                                                                        plots.GAP_DIM),
    "filled_sm": plots.sm_image,
    "filled_mark": lambda lo, la, v: plots._image(lo, la, v, plots.FILLED_DIM),
    "ascat": plots.ascat_image,
    "diff": lambda lo, la, v: plots._image(lo, la, v, plots.DIFF_DIM),
}


def layer_arrays(f: DayFields) -> dict[str, np.ndarray]:
    """The six image layers of a day as (lat, lon) float32 arrays (numpy only: the fast
    path regrids these without building HoloViews objects)."""
    nan = np.full(f.amsr.shape, np.nan, np.float32)
    filled = f.filled if f.filled is not None else nan
    if f.truth is not None:
        diff = plots.difference_values(filled, f.truth, observed_only=False)
    else:
        diff = plots.difference_values(filled, f.amsr, observed_only=True, gap_mask=f.gap)
    return {
        "raw_sm": np.asarray(f.amsr, np.float32),
        "raw_gap": plots.gap_values(f.gap),
        "filled_sm": np.asarray(filled, np.float32),
        "filled_mark": plots.filled_mark_values(f.gap, f.land) if f.filled is not None
        else nan,
        "ascat": np.asarray(f.ascat, np.float32),
        "diff": diff,
    }


def layer_elements(f: DayFields) -> dict[str, hv.Image]:
    """The six image layers of a day as HoloViews images (pure: arrays in, images out)."""
    return {k: IMAGE_FUNCS[k](f.lon, f.lat, v) for k, v in layer_arrays(f).items()}


def map_titles(f: DayFields) -> dict[str, str]:
    """Titles of the four maps for a day."""
    frac = plots.gap_fraction(f.gap, f.land)
    day = f"{f.date:%Y-%m-%d}"
    filled = "ConvLSTM filled" + ("" if f.filled is not None else " (no output yet)")
    diff = ("Filled − truth (demo)" if f.truth is not None else "Filled − observed")
    return {
        "raw": f"Raw {f.sensor_label} {day} · gaps {100 * frac:.0f}% of land",
        "filled": f"{filled} {day}",
        "ascat": f"ASCAT {day} (% saturation)",
        "diff": f"{diff} {day} (m3 m-3)",
    }


_EPS = 1e-10  # datashader.resampling._EPS


@functools.lru_cache(maxsize=64)
def _axis_weights(src_n: int, out_n: int):
    """Datashader's area weights for downsampling one axis from ``src_n`` to ``out_n``
    cells (``datashader.resampling._downsample_2d_mean`` without offsets), as a sparse
    ``(out_n, src_n)`` matrix."""
    import scipy.sparse

    scale = src_n / out_n
    rows, cols, vals = [], [], []
    for o in range(out_n):
        f0 = scale * o
        f1 = f0 + scale
        i0, i1 = int(f0), int(f1)
        w0, w1 = 1.0 - (f0 - i0), f1 - i1
        if w1 < _EPS:
            w1 = 1.0
            if i1 > i0:
                i1 -= 1
        for i in range(i0, i1 + 1):
            rows.append(o)
            cols.append(i)
            vals.append(w0 if i == i0 else w1 if i == i1 else 1.0)
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(out_n, src_n))


def _downsample_mean(values: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Datashader's NaN-skipping area-weighted mean of a (north-up) grid onto
    ``(out_h, out_w)`` cells: the same weights applied separably with sparse matrices
    (equal to Datashader's result up to float rounding, and no numba threads)."""
    h, w = values.shape
    valid = np.isfinite(values)
    # value sums over weight sums, side by side and transposed: (w, 2h), C order
    x = np.empty((w, 2 * h), np.float64)
    x[:, :h] = np.where(valid, values, 0).T
    x[:, h:] = valid.T
    if out_w != w:
        x = _axis_weights(w, out_w) @ x  # (out_w, 2h)
    num, den = x[:, :h].T, x[:, h:].T  # (h, out_w)
    if out_h != h:
        ay = _axis_weights(h, out_h)
        num, den = ay @ np.ascontiguousarray(num), ay @ np.ascontiguousarray(den)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den < _EPS, np.nan, num / den)
    return out.astype(np.float32)


def regrid_like(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, x0: float, y0: float,
                dw: float, dh: float, width: int, height: int, agg: str = "mean"
                ) -> np.ndarray:
    """Regrid a (lat, lon) field with Datashader onto an image grid given by its extent.

    Returns a ``(height, width)`` float32 array whose first row is the bottom (southern)
    edge, the layout of a Bokeh ``image`` glyph.
    """
    values = np.asarray(values, np.float32)
    width, height = int(width), int(height)
    whole = False  # does the image show exactly the data's extent?
    if lat.size > 1 and lon.size > 1:
        rx, ry = (lon[-1] - lon[0]) / (lon.size - 1), (lat[-1] - lat[0]) / (lat.size - 1)
        whole = (rx > 0 and ry > 0 and abs(x0 - (lon[0] - rx / 2)) < 1e-6 * rx
                 and abs(y0 - (lat[0] - ry / 2)) < 1e-6 * ry
                 and abs(dw - rx * lon.size) < 1e-6 * rx and abs(dh - ry * lat.size) < 1e-6 * ry)
    if whole and (width, height) == (lon.size, lat.size):
        return np.ascontiguousarray(values)  # the view is the data grid: nothing to do
    if whole and agg == "mean" and width <= lon.size and height <= lat.size:
        # the whole region on fewer pixels (the usual zoomed-out view): Datashader's own
        # weights, cached per shape, without its parallel kernel; it resamples north-up
        return np.ascontiguousarray(_downsample_mean(values[::-1], height, width)[::-1])
    da = xr.DataArray(values, coords={"y": lat, "x": lon}, dims=("y", "x"))
    cvs = dsh.Canvas(plot_width=int(width), plot_height=int(height),
                     x_range=(float(x0), float(x0 + dw)), y_range=(float(y0), float(y0 + dh)))
    out = cvs.raster(da, interpolate="nearest", agg=agg, nan_value=np.nan)
    arr = np.asarray(out.values, np.float32)
    ys = out["y"].values
    if ys.size > 1 and ys[0] > ys[-1]:
        arr = arr[::-1]
    return np.ascontiguousarray(arr)


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
    """

    width = param.Integer(default=430, bounds=(200, 1200), doc="Width of one map, px.")
    height = param.Integer(default=330, bounds=(150, 1000), doc="Height of one map, px.")
    fast_updates = param.Integer(default=0, doc="Date changes served by the fast path.")
    slow_updates = param.Integer(default=0, doc="Date changes that went through HoloViews.")

    def __init__(self, state, on_tap: Callable | None = None, on_box: Callable | None = None,
                 dispatch: Callable[[Callable[[], None]], None] | None = None, **params):
        super().__init__(**params)
        self.state = state
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
        return hook

    def _raster(self, name: str) -> hv.DynamicMap:
        agg = LAYERS[name][1]
        dmap = hv.DynamicMap(lambda key, _n=name: self.element(_n, key), streams=[self.frame])
        # precompute=True keeps the regridding input prepared between zooms
        return rasterize(dmap, aggregator=agg, interpolation="nearest",
                         precompute=True).opts(hooks=[self._hook(name)])

    def build(self, fields: DayFields, stations=None) -> hv.Layout:
        """All four maps for the fields' region (call again when the region changes)."""
        self._set_fields(fields)
        self._plots.clear()
        self._figs.clear()
        bbox = grid.bounds(fields.lat, fields.lon)
        coast = plots.coastlines(coast_paths(bbox))
        st = self.state
        common = dict(width=self.width, height=self.height, tools=["hover", "tap"],
                      active_tools=["wheel_zoom"], xlim=(bbox[0], bbox[2]),
                      ylim=(bbox[1], bbox[3]), data_aspect=None)
        sm_style = dict(cmap=plots.SM_CMAP, clim=st.param.clim, colorbar=False)
        raw = self._raster("raw_sm").apply.opts(**sm_style).opts(**common)
        mask_alpha = param.bind(lambda show: 0.85 if show else 0.0, st.param.show_mask)
        clear = {"min": "transparent", "NaN": "transparent"}
        gap = self._raster("raw_gap").opts(cmap=plots.GAP_CMAP, clim=plots.GAP_CLIM,
                                           clipping_colors=clear, colorbar=False
                                           ).apply.opts(alpha=mask_alpha)
        filled = self._raster("filled_sm").apply.opts(
            cmap=plots.SM_CMAP, clim=st.param.clim).opts(
            colorbar=True, colorbar_opts={"title": "Soil moisture (m3 m-3)"}, **common)
        mark_alpha = param.bind(lambda show: 0.45 if show else 0.0, st.param.show_mask)
        mark = self._raster("filled_mark").opts(cmap=[plots.FILLED_MARK_COLOR],
                                                clim=(0.5, 1.5), clipping_colors=clear
                                                ).apply.opts(alpha=mark_alpha)
        ascat = self._raster("ascat").opts(
            cmap=plots.ASCAT_CMAP, clim=plots.ASCAT_CLIM, colorbar=True,
            colorbar_opts={"title": "ASCAT (% saturation)"}, **common)
        diff = self._raster("diff").opts(
            cmap=plots.DIFF_CMAP, clim=plots.DIFF_CLIM, colorbar=True,
            colorbar_opts={"title": "Difference (m3 m-3)"}, **common)
        layers = {"raw": raw * gap, "filled": filled * mark, "ascat": ascat, "diff": diff}
        if stations is not None and len(stations):
            self._stations = stations
            pts = hv.DynamicMap(lambda selected: plots.station_points(stations, selected),
                                streams=[self.station_stream])
            pts = pts.opts(fill_color=hv.dim("selected").categorize(
                {0: "#ff00ff", 1: "#ffff00"}, default="#ff00ff"), size=10, line_color="black",
                marker="triangle", tools=["hover"])
            layers = {k: v * pts for k, v in layers.items()}
        out = []
        for mapname, ov in layers.items():
            tools = ["hover", "tap", "box_select"] if mapname == "raw" else ["hover", "tap"]
            out.append((ov * coast).opts(hooks=[self._title_hook(mapname)],
                                         title=self.titles[mapname], tools=tools))
        # clicks on any map select a station or pixel; boxes are drawn on the raw map.  The
        # streams hang on each map's soil-moisture raster (the plot that owns the events)
        self.cleanup_streams()
        for base in (raw, filled, ascat, diff):
            tap = hv.streams.Tap(source=base)
            tap.add_subscriber(self._tapped)
            self._streams.append(tap)
        box = hv.streams.BoundsXY(source=raw)
        box.add_subscriber(self._boxed)
        self._streams.append(box)
        return hv.Layout(out).cols(2).opts(shared_axes=True)

    def _set_fields(self, fields: DayFields) -> None:
        self.fields = fields
        self.arrays = layer_arrays(fields)
        self._elements.clear()
        self.titles = map_titles(fields)

    def element(self, name: str, key: int = 0) -> hv.Image:
        """The HoloViews image of a layer, built when HoloViews asks for it (zoom, rebuild)."""
        hit = self._elements.get(name)
        if hit is None:
            f = self.fields
            hit = (key, IMAGE_FUNCS[name](f.lon, f.lat, self.arrays[name]))
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

    def select_station(self, sid: str) -> None:
        self.station_stream.event(selected=sid)

    # ------------------------------------------------------------------ date changes
    def update(self, fields: DayFields) -> str:
        """Show another day of the same region; returns 'fast' or 'stream'."""
        self._set_fields(fields)
        key = self.frame.key + 1
        if self._fast_write(fields):
            self.frame.update(key=key)  # silent: the next zoom re-rasterizes this day
            self.fast_updates += 1
            return "fast"
        self.frame.event(key=key)
        self.slow_updates += 1
        return "stream"

    def _fast_write(self, fields: DayFields) -> bool:
        if set(self._plots) != set(LAYERS) or set(self._figs) != set(MAP_NAMES):
            return False
        new = {}
        # one thread: numba's parallel kernels stall when the cores are busy (the browser,
        # other sessions), and the regrids here are small
        with single_threaded_numba():
            for name, (_, agg) in LAYERS.items():
                src = self._plots[name].handles.get("source")
                arr = self._regridded(name, agg, src)
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


def legend_items() -> list[tuple[str, str]]:
    """(label, colour) of the gap categories drawn on the raw map."""
    return [(f.label, f.color) for f in plots.GAP_CATEGORIES] + [
        ("Filled by the model (pale)", "#dddddd")]


__all__ = ["MapSet", "canvas_renderer", "coast_paths", "layer_elements", "map_titles",
           "regrid_like", "legend_items", "schema", "use_bokeh_backend"]
