"""Static exports: the maps of the shown day as one PNG (matplotlib, Agg, offline).

Every map of :data:`app.mapspecs.MAPS` is drawn from its layers, as the app draws it: the
base layer with its title, colour map, limits and colour bar (with units), the overlays
with their own colours (the gap categories on the raw map, the filled cells on the filled
map) while the mask toggle is on, the coastlines and the stations; axes in longitude and
latitude (degrees), two maps a row, and one legend of the gap categories above them.  Pure
(arrays in, bytes out): tested without a browser.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from app import plots
from app.days import DayFields
from app.maps import coast_paths, legend_items
from app.mapspecs import MAPS, MapSpec, resolve
from data_catalog import grid

#: PNG pixels per inch
DPI = 100


def _overlay(ax, layer, fields: DayFields, ext) -> None:
    """An overlay layer in its own colours, transparent where it has no value."""
    values = layer.values(fields)
    if not np.isfinite(values).any():
        return
    cmap = ListedColormap(layer.cmap) if isinstance(layer.cmap, list) else layer.cmap
    lo, hi = layer.clim
    ax.imshow(np.ma.masked_invalid(values), origin="lower", extent=ext, cmap=cmap, vmin=lo,
              vmax=hi, interpolation="nearest", alpha=layer.mask_alpha)


def maps_png(fields: DayFields, clim=(0.0, 0.5), dpi: int = DPI,
             maps: list[MapSpec] | None = None, sm_cmap: str = plots.SM_CMAP,
             stations: pd.DataFrame | None = None, show_mask: bool = True,
             title: str = "") -> bytes:
    """Render the maps of ``fields`` to PNG bytes.

    Parameters
    ----------
    fields
        The day shown in the app.
    clim
        Colour limits of the maps that follow the session's soil-moisture limits (m3 m-3).
    maps
        The map specifications (default :data:`app.mapspecs.MAPS`).
    sm_cmap
        Colour map of those maps (the source's).
    stations
        Table with ``lon``, ``lat`` (and ``id``) of the stations to mark, or ``None``.
    show_mask
        Draw the overlays (gap categories, filled cells), as the app's mask toggle.
    title
        The figure's title (source, region, date), heading the legend.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if fields is None:
        raise ValueError("no day is shown; nothing to export")
    maps = resolve(MAPS if maps is None else maps, fields)  # the shown map of a choice
    west, south, east, north = grid.bounds(fields.lat, fields.lon)
    ext = (west, east, south, north)
    coast = coast_paths((west, south, east, north))
    rows = math.ceil(len(maps) / 2)
    fig = Figure(figsize=(12, 4.5 * rows + 0.8), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False).flat
    inside = None
    if stations is not None and len(stations):
        lon, lat = stations["lon"].to_numpy(float), stations["lat"].to_numpy(float)
        keep = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
        inside = (lon[keep], lat[keep])
    for spec, ax in zip(maps, axes, strict=False):  # maps first: no axis skipped
        lim = spec.clim if spec.clim is not None else clim
        im = ax.imshow(spec.base.values(fields), origin="lower", extent=ext,
                       cmap=spec.cmap or sm_cmap, vmin=lim[0], vmax=lim[1],
                       interpolation="nearest")
        if show_mask:
            for layer in spec.layers[1:]:
                _overlay(ax, layer, fields, ext)
        for p in coast:
            ax.plot(p[:, 0], p[:, 1], color="#333333", lw=0.6)
        if inside is not None:
            ax.scatter(*inside, marker="^", s=36, c="#ff00ff", edgecolors="black",
                       linewidths=0.6, zorder=5)
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        ax.set_xlabel(f"{plots.LON_DIM.label} ({plots.LON_DIM.unit})")
        ax.set_ylabel(f"{plots.LAT_DIM.label} ({plots.LAT_DIM.unit})")
        ax.set_title(spec.title(fields), fontsize=9)
        fig.colorbar(im, ax=ax, label=spec.colorbar or spec.units, shrink=0.8)
    for ax in list(axes):  # an odd number of maps: the last cell stays empty
        ax.set_visible(False)
    handles = [Patch(facecolor=c, edgecolor="#888888", label=lbl)
               for lbl, c in legend_items()]
    if inside is not None:
        handles.append(Line2D([], [], marker="^", ls="", markersize=8, color="#ff00ff",
                              markeredgecolor="black", label="In situ station"))
    handles[0].set_label(f"Gap: {handles[0].get_label()}")  # the categories' legend
    # the title heads the legend (a suptitle would overlap a legend outside the axes)
    fig.legend(handles=handles, loc="outside upper center", ncols=4, fontsize=8,
               frameon=False, title=title or None, title_fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
