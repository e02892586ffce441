"""Pure plot functions: data in, HoloViews objects out.

Nothing here knows about Panel, sessions or the app state; every function takes arrays or
frames and returns a HoloViews element or overlay, so tests assert on type, dimensions and
ranges.  Styling that the user can change (colour limits, mask visibility) is applied by the
app on top of the rasterized output, never here, so a style change does not re-aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401 - the Bokeh backend: style options below
import numpy as np
import pandas as pd

from data_catalog import schema

#: Soil-moisture palette shared by the raw, filled and truth maps (one colour bar).
SM_CMAP = "YlGnBu"
#: ASCAT keeps its own units (percent of saturation) and palette.
ASCAT_CMAP = "viridis"
ASCAT_CLIM = (0.0, 100.0)
DIFF_CMAP = "RdBu_r"
DIFF_CLIM = (-0.1, 0.1)

#: Gap categories drawn over the raw map (observed and not-land are left transparent).
GAP_CATEGORIES = tuple(f for f in schema.GAP_FLAGS
                       if f.value not in (schema.OBSERVED, schema.NOT_LAND))
#: Gap colours of the maps: Okabe-Ito hues kept clear of the soil-moisture palette
#: (YlGnBu: no yellow, green or blue) and apart under colour-blindness
#: (tests/test_app_fill.py::test_gap_palette_is_clear_of_soil_moisture_colours)
GAP_COLOURS = {
    schema.RFI: "#D55E00",  # vermillion
    schema.DENSE_VEGETATION: "#8B4513",  # brown
    schema.FROZEN: "#000000",  # black
    schema.NO_OVERPASS: "#666666",  # grey
    schema.INVALID: "#E69F00",  # orange
}
GAP_CMAP = [GAP_COLOURS[f.value] for f in GAP_CATEGORIES]
#: what a gap category is called in a map's hover (the gap year has its own name)
GAP_NAMES = {f.value: f.label for f in GAP_CATEGORIES}
NO_AMSR_IN_ORBIT = "No AMSR in orbit (2011-10-04 to 2012-07-01)"
GAP_CLIM = (GAP_CATEGORIES[0].value - 0.5, GAP_CATEGORIES[-1].value + 0.5)
FILLED_MARK_COLOR = "#ffffff"
#: the one name of ASCAT rescaled to the filled series (m3 m-3), in every plot
ASCAT_RESCALED = "ASCAT rescaled to filled"
#: axis names of the references a satellite series is compared with
REFERENCE_LABELS = {"insitu": "In situ", "truth": "Truth (demo world)"}

SM_DIM = hv.Dimension("sm", label="Soil moisture", unit="m3 m-3")
ASCAT_DIM = hv.Dimension("ascat", label="ASCAT", unit="% saturation")
DIFF_DIM = hv.Dimension("diff", label="Difference", unit="m3 m-3")
GAP_DIM = hv.Dimension("gap", label="Gap category")
FILLED_DIM = hv.Dimension("filled_mark", label="Filled pixel")
LON_DIM = hv.Dimension("lon", label="Longitude", unit="°E")
LAT_DIM = hv.Dimension("lat", label="Latitude", unit="°N")
KDIMS = [LON_DIM, LAT_DIM]


def image(lon: np.ndarray, lat: np.ndarray, values: np.ndarray, vdim: hv.Dimension,
           label: str = "") -> hv.Image:
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (lat.size, lon.size):
        raise ValueError(f"{vdim.name}: array shape {values.shape} does not match "
                         f"(lat, lon) = ({lat.size}, {lon.size})")
    return hv.Image((lon, lat, values), kdims=KDIMS, vdims=[vdim], label=label)


def difference_values(filled, reference, observed_only: bool, gap_mask=None) -> np.ndarray:
    """``filled - reference`` as float32; non-observed cells NaN if ``observed_only``."""
    diff = np.asarray(filled, np.float32) - np.asarray(reference, np.float32)
    if observed_only and gap_mask is not None:
        diff = np.where(np.asarray(gap_mask) == schema.OBSERVED, diff, np.nan)
    return diff.astype(np.float32, copy=False)


def gap_values(gap_mask) -> np.ndarray:
    """Gap categories as float32; observed and not-land cells NaN (transparent)."""
    m = np.asarray(gap_mask).astype(np.float32)
    m[(m == schema.OBSERVED) | (m == schema.NOT_LAND)] = np.nan
    return m


def filled_mark_values(gap_mask, land=None) -> np.ndarray:
    """1 where the model filled a gap (land cell not observed), NaN elsewhere (float32)."""
    m = np.asarray(gap_mask)
    filled = (m != schema.OBSERVED) & (m != schema.NOT_LAND)
    if land is not None:
        filled &= np.asarray(land, bool)
    return np.where(filled, 1.0, np.nan).astype(np.float32)


def gap_fraction(gap_mask, land=None) -> float:
    """Fraction of land cells that are not observed (NaN when there is no land)."""
    m = np.asarray(gap_mask)
    land = (m != schema.NOT_LAND) if land is None else np.asarray(land, bool) & (
        m != schema.NOT_LAND)
    n = int(land.sum())
    return float(((m != schema.OBSERVED) & land).sum() / n) if n else float("nan")


def coastlines(paths: Sequence[np.ndarray]) -> hv.Path:
    """Coastline polylines (each an (n, 2) lon/lat array) as one ``hv.Path``.

    The polylines are joined into a single path with a NaN row between them (Bokeh breaks
    a line at NaN): HoloViews builds a dataset per sub-path when it draws a multi-path,
    which made the coastlines a good part of the cost of opening a session's four maps.
    """
    parts = [np.asarray(p, dtype=float)[:, :2] for p in paths if len(p) > 1]
    gap = np.full((1, 2), np.nan)
    joined = [x for p in parts for x in (gap, p)][1:]
    data = [np.concatenate(joined)] if joined else []
    return hv.Path(data, kdims=KDIMS).opts(color="#333333", line_width=0.8)


def station_points(table: pd.DataFrame, selected: str = "") -> hv.Points:
    """Stations as points with id, name and network for hover; ``selected`` as a flag."""
    df = pd.DataFrame({
        "lon": table["lon"].astype(float).to_numpy(),
        "lat": table["lat"].astype(float).to_numpy(),
        "id": table["id"].astype(str).to_numpy(),
        "name": table["name"].astype(str).to_numpy(),
        "network": table["network"].astype(str).to_numpy(),
    })
    df["selected"] = (df["id"] == selected).astype(int)
    return hv.Points(df, kdims=KDIMS, vdims=["id", "name", "network", "selected"])


def series_plot(frame: pd.DataFrame, date, ascat_note: str = "",
                title: str = "") -> hv.Overlay:
    """Daily series at a station or pixel, gap days shaded, the selected date marked.

    Parameters
    ----------
    frame
        Daily frame indexed by naive UTC dates with any of the columns ``insitu``, ``raw``,
        ``filled``, ``ascat_scaled``, ``truth`` (m3 m-3) and a boolean ``gap``.
    date
        The selected day, drawn as a vertical line.
    ascat_note
        How ASCAT was scaled, appended to its legend label.
    """
    idx = pd.DatetimeIndex(frame.index)
    layers: list = []
    styles = {
        "truth": ("Truth (demo)", "#999999", "curve"),
        "insitu": ("In situ", "#000000", "curve"),
        "filled": ("Filled (ConvLSTM)", "#1f77b4", "curve"),
        "ascat_scaled": (ASCAT_RESCALED, "#2ca02c", "curve"),
        "raw": ("Raw AMSR", "#d62728", "scatter"),
    }
    tdim = hv.Dimension("time", label="Date")
    ydim = hv.Dimension("value", label="Soil moisture", unit="m3 m-3")
    gap = frame["gap"].to_numpy(bool) if "gap" in frame else np.zeros(len(frame), bool)
    if gap.any():
        # merge runs of gap days into spans [first day - 12 h, last day + 12 h]
        g = np.r_[False, gap, False].astype(int)
        starts = np.flatnonzero(np.diff(g) == 1)
        ends = np.flatnonzero(np.diff(g) == -1) - 1
        half = pd.Timedelta(hours=12)
        spans = hv.VSpans(([idx[a] - half for a in starts], [idx[b] + half for b in ends]),
                          kdims=[tdim, "x1"], label="AMSR gap days")
        layers.append(spans.opts(color="#f2c18d", alpha=0.35))
    for col, (label, color, kind) in styles.items():
        if col not in frame or not np.isfinite(frame[col].to_numpy(float)).any():
            continue
        data = (idx, frame[col].to_numpy(float))
        if kind == "curve":
            layers.append(hv.Curve(data, tdim, ydim, label=label).opts(color=color,
                                                                       line_width=1.5))
        else:
            layers.append(hv.Scatter(data, tdim, ydim, label=label).opts(color=color, size=4))
    layers.append(hv.VLine(pd.Timestamp(date)).opts(color="#444444", line_dash="dashed"))
    return hv.Overlay(layers).opts(title=title, legend_position="right")


def scatter_plot(frame: pd.DataFrame, x: str = "insitu",
                 ys: Sequence[str] = ("raw", "filled"), title: str = "") -> hv.Overlay:
    """Satellite (``ys``) against the reference ``x`` (in situ at a station, the demo's
    truth at a pixel, named on the axis) with a 1:1 line, on common days; the legend
    sits above the data."""
    xdim = hv.Dimension(x, label=REFERENCE_LABELS.get(x, x), unit="m3 m-3")
    ydim = hv.Dimension("satellite", label="Satellite", unit="m3 m-3")
    colors = {"raw": "#d62728", "filled": "#1f77b4", "ascat_scaled": "#2ca02c"}
    labels = {"raw": "Raw AMSR", "filled": "Filled", "ascat_scaled": ASCAT_RESCALED}
    layers = []
    lo, hi = 0.0, 0.5
    vals = []
    for y in ys:
        if y not in frame or x not in frame:
            continue
        sub = frame[[x, y]].astype(float).dropna()
        if sub.empty:
            continue
        vals.append(sub.to_numpy())
        layers.append(hv.Scatter((sub[x].to_numpy(), sub[y].to_numpy()), xdim, ydim,
                                 label=labels.get(y, y)).opts(color=colors.get(y, "#555"),
                                                              size=4, alpha=0.6))
    if vals:
        allv = np.concatenate(vals)
        lo, hi = float(np.nanmin(allv)), float(np.nanmax(allv))
        pad = 0.02 * max(hi - lo, 1e-3)
        lo, hi = lo - pad, hi + pad
    one = hv.Curve(([lo, hi], [lo, hi]), xdim, ydim, label="1:1").opts(
        color="#444444", line_dash="dotted")
    return hv.Overlay([*layers, one]).opts(title=title, legend_position="top",
                                           legend_cols=4)


def hover_js(dim: hv.Dimension, names: dict[int, str] | None = None) -> str:
    """JavaScript of a Bokeh ``CustomJSHover`` for one layer of a map: categories by
    name, values with their units, and a gap named as a gap instead of "NaN"."""
    import json

    if names is not None:
        return (f"const n = {json.dumps({str(k): v for k, v in names.items()})};"
                "const k = Math.round(value); return (k in n) ? n[k] : 'observed';")
    unit = f" {dim.unit}" if dim.unit else ""
    return ("return (value === null || isNaN(value)) ? 'no value here (see the gap "
            f"category)' : value.toFixed(3) + {json.dumps(unit)};")

