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
#: fills under frozen ground, hidden unless the session shows them: a gap category of
#: the filled map, in the frozen-ground gap colour
FROZEN_HIDDEN = "Frozen ground, filled value hidden"
FROZEN_HIDDEN_COLOR = GAP_COLOURS[schema.FROZEN]
#: the one name of ASCAT rescaled to the filled series (m3 m-3), in every plot
ASCAT_RESCALED = "ASCAT rescaled to filled"
#: axis names of the references a satellite series is compared with
REFERENCE_LABELS = {"insitu": "In situ", "truth": "Truth (demo world)"}

SM_DIM = hv.Dimension("sm", label="Soil moisture", unit="m3 m-3")
ASCAT_DIM = hv.Dimension("ascat", label="ASCAT", unit="% saturation")
DIFF_DIM = hv.Dimension("diff", label="Difference", unit="m3 m-3")
#: the uncertainty map: 1 SD of the error of the filled field, its own sequential scale
SD_DIM = hv.Dimension("sd", label="Uncertainty (1 SD)", unit="m3 m-3")
SD_CMAP = "OrRd"
SD_CLIM = (0.0, 0.08)
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


def sd_band(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The filled series' 1-SD band (lower, upper), NaN where either is missing; None when
    the frame has no SD (an output without one, such as an older cache entry)."""
    if "filled_sd" not in frame or "filled" not in frame:
        return None
    y = frame["filled"].to_numpy(float)
    sd = frame["filled_sd"].to_numpy(float)
    ok = np.isfinite(y) & np.isfinite(sd)
    if not ok.any():
        return None
    lo, hi = np.where(ok, y - sd, np.nan), np.where(ok, y + sd, np.nan)
    return lo, hi


def frozen_fills(frame: pd.DataFrame) -> np.ndarray:
    """Days whose filled value is a fill under frozen ground (bool per row)."""
    if "frozen" not in frame or "filled" not in frame:
        return np.zeros(len(frame), bool)
    return frame["frozen"].to_numpy(bool) & np.isfinite(frame["filled"].to_numpy(float))


def series_plot(frame: pd.DataFrame, date, ascat_note: str = "",
                title: str = "", show_frozen: bool = False) -> hv.Overlay:
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
    show_frozen
        Fills under frozen ground (column ``frozen``) drawn as hollow markers; dropped from
        the filled curve when False.  A ``filled_sd`` column adds the 1-SD band.
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
    frozen = frozen_fills(frame)
    band = sd_band(frame)
    if band is not None:
        lo, hi = band
        if not show_frozen:
            lo, hi = np.where(frozen, np.nan, lo), np.where(frozen, np.nan, hi)
        layers.append(hv.Area((idx, lo, hi), tdim, [ydim, "upper"],
                              label="Filled ± 1 SD").opts(color="#1f77b4", alpha=0.2,
                                                          line_alpha=0))
    if "ascat" in frame and not np.isfinite(frame["ascat"].to_numpy(float)).any():
        title = f"{title} · no ASCAT in this window" if title else "No ASCAT in this window"
    for col, (label, color, kind) in styles.items():
        if col not in frame or not np.isfinite(frame[col].to_numpy(float)).any():
            continue
        values = frame[col].to_numpy(float)
        if col == "filled" and frozen.any():
            if show_frozen:
                layers.append(hv.Scatter((idx[frozen], values[frozen]), tdim, ydim,
                                         label="Filled under frozen ground").opts(
                    color="#1f77b4", fill_alpha=0.0, size=6, line_width=1.5))
            else:
                values = np.where(frozen, np.nan, values)
        data = (idx, values)
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


# ---------------------------------------------------------------- value ± SD and reasons
#: short names of the ``reason_flag`` bits in a hover, by their schema meaning (the gap
#: reasons are named from their schema labels, "AMSR missing: RFI" -> "RFI")
REASON_SHORT = {"ascat_used": "ASCAT used", "later_days_used": "look-ahead",
                "amsre_rescaled": "AMSR-E rescaled"}
#: the bits that say AMSR was missing (the value was filled)
_GAP_BITS = sum(schema.GAP_REASON.values())
#: no SD for a cell in a detail code (:func:`detail_codes`)
NO_SD = 255


def reason_text(bits: int) -> str:
    """What ``reason_flag`` bits say, in a hover: "filled: RFI, ASCAT used, look-ahead",
    "observed", "observed, AMSR-E rescaled"."""
    bits = int(bits)
    names = [REASON_SHORT.get(f.meaning, f.label.split(": ")[-1])
             for f in schema.REASON_FLAGS if bits & f.value]  # the gap reasons first
    if bits & _GAP_BITS:
        return "filled: " + ", ".join(names)
    return ", ".join(["observed", *names])


def hover_text(value: float, sd: float | None = None, bits: int | None = None,
               unit: str = "m3 m-3") -> str:
    """The hover of a value of the filled map: "0.231 ± 0.042 m3 m-3 · filled: RFI, ASCAT
    used, look-ahead" (what :func:`hover_js` writes in the browser, from the same parts)."""
    if value is None or not np.isfinite(value):
        return "no value here (see the gap category)"
    out = f"{value:.3f}"
    if sd is not None and np.isfinite(sd):
        out += f" ± {sd:.3f}"
    out += f" {unit}" if unit else ""
    return out + (f" · {reason_text(bits)}" if bits is not None else "")


def detail_codes(sd: np.ndarray | None, reasons: np.ndarray | None, shape) -> np.ndarray:
    """Per-cell SD and reasons of a fill packed in one uint16 for the hover: the low byte
    the SD in 0.001 m3 m-3 (:data:`NO_SD`: none; capped at 0.254), the high byte the
    ``reason_flag`` bits."""
    code = np.full(shape, NO_SD, np.uint16)
    if sd is not None:
        q = np.rint(np.clip(np.nan_to_num(np.asarray(sd, float), nan=-1.0), -1.0,
                            0.254) * 1000.0)
        code = np.where(q >= 0, q, NO_SD).astype(np.uint16)
    if reasons is not None:
        code |= np.asarray(reasons, np.uint16) << 8
    return code


def detail_data(lat: np.ndarray, lon: np.ndarray, sd: np.ndarray | None,
                reasons: np.ndarray | None) -> dict:
    """The data of the hover's detail source: the packed codes (:func:`detail_codes`,
    flattened, south row first) and the grid ``[west edge, south edge, dlon, dlat, nlat,
    nlon, has reasons]`` (a 1-cell grid when there is nothing to show)."""
    from data_catalog import grid

    if sd is None and reasons is None:
        return {"code": [np.zeros(0, np.uint16)], "grid": [np.zeros(7)]}
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    code = detail_codes(sd, reasons, (lat.size, lon.size))
    if lat.size > 1 and lat[0] > lat[-1]:  # north first: south row first like the images
        code, lat = code[::-1], lat[::-1]
    dy, dx = abs(grid.resolution(lat)), abs(grid.resolution(lon))
    g = np.array([lon[0] - dx / 2, lat[0] - dy / 2, dx, dy, lat.size, lon.size,
                  float(reasons is not None)])
    return {"code": [np.ascontiguousarray(code).ravel()], "grid": [g]}


def hover_js(dim: hv.Dimension, names: dict[int, str] | None = None,
             detail: bool = False) -> str:
    """JavaScript of a Bokeh ``CustomJSHover`` for one layer of a map: categories by
    name, values with their units, and a gap named as a gap instead of "NaN".

    With ``detail`` the hover also reads the cell's SD and reasons from the data source
    ``src`` (:func:`detail_data`) at the mouse position: "0.231 ± 0.042 m3 m-3 · filled:
    RFI, ASCAT used" (as :func:`hover_text`)."""
    import json

    if names is not None:
        return (f"const n = {json.dumps({str(k): v for k, v in names.items()})};"
                "const k = Math.round(value); return (k in n) ? n[k] : 'observed';")
    unit = f" {dim.unit}" if dim.unit else ""
    gap = ("if (value === null || isNaN(value)) return 'no value here (see the gap "
           "category)';")
    if not detail:
        return gap + f"return value.toFixed(3) + {json.dumps(unit)};"
    texts = json.dumps([reason_text(b) for b in range(256)])
    return (gap + f"const texts = {texts}; let out = value.toFixed(3); let tail = '';"
            "const d = src.data; const get = (k) => d.get ? d.get(k) : d[k];"
            "const g = get('grid')[0]; const c = get('code')[0];"
            "const j = Math.floor((special_vars.x - g[0]) / g[2]);"
            "const i = Math.floor((special_vars.y - g[1]) / g[3]);"
            "if (c.length && i >= 0 && j >= 0 && i < g[4] && j < g[5]) {"
            f"  const k = c[i * g[5] + j]; const sd = k & 255;"
            f"  if (sd !== {NO_SD}) out += ' ± ' + (sd / 1000).toFixed(3);"
            "  if (g[6]) tail = ' · ' + texts[k >> 8]; }"
            f"return out + {json.dumps(unit)} + tail;")
