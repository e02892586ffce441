"""Regridding a day onto the image a map shows (the fast path of a date change).

:func:`regrid_like` puts a (lat, lon) field onto the grid of the image on screen, given by
its extent and shape (what the plot's Bokeh data source holds).  The zoomed-out view (the
whole region on fewer pixels) is regridded with Datashader's own mean weights in numpy,
other views with Datashader on one thread (:func:`single_threaded_numba`: its parallel
kernels stall when the cores are busy).  :func:`image_shape` is the fixed pixel budget of
a map's image (the maps grow with the window; their images do not).  Numpy, numba and
Datashader only: no HoloViews, no Panel, no torch.
"""

from __future__ import annotations

import functools
import math

import datashader as dsh
import numba
import numpy as np
import xarray as xr

from model.streaming import threads


def single_threaded_numba():
    """Run numba's parallel kernels (Datashader's regridding) on the calling thread only.

    The setting is per thread and restored afterwards.
    """
    return threads(numba.get_num_threads, numba.set_num_threads)


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


#: the room a map's axes, title and colour bar take beside its frame (width, height), px
CHROME = (120, 60)
#: a typical map on the page (px wide), at which the frame's aspect is exact
TYPICAL_WIDTH = 560


def map_aspect(bbox) -> float:
    """Width over height of a region in degrees (plate carrée), kept within 1:2 .. 3:1."""
    w, s, e, n = bbox
    return min(max((e - w) / max(n - s, 1e-9), 0.5), 3.0)


def image_shape(bbox, width: int, height: int) -> tuple[int, int]:
    """(width, height) in pixels of a map's image for a region: the frame of a nominal map
    (``width`` x ``height`` less its axes and colour bar, :data:`CHROME`) with the region's
    lon/lat aspect (:func:`map_aspect`), whatever the size of the map on the page."""
    budget = max(width - CHROME[0], 50) * max(height - CHROME[1], 50)
    w = max(int(round(math.sqrt(budget * map_aspect(bbox)))), 16)
    return w, max(int(round(budget / w)), 16)


def plot_aspect(bbox) -> float:
    """The aspect of a whole map (axes and colour bar included) whose frame has the
    region's aspect at :data:`TYPICAL_WIDTH`; within a few per cent at other widths."""
    frame_w = TYPICAL_WIDTH - CHROME[0]
    return TYPICAL_WIDTH / (frame_w / map_aspect(bbox) + CHROME[1])
