"""Static exports: the maps of the shown day as one PNG (matplotlib, Agg, offline).

Every map of :data:`app.mapspecs.MAPS` is drawn from its base layer's values, with its
title, colour map, limits and units: what the app shows, two maps a row.
"""

from __future__ import annotations

import io
import math

from app import plots
from app.days import DayFields
from app.maps import coast_paths
from app.mapspecs import MAPS, MapSpec, resolve
from data_catalog import grid


def maps_png(fields: DayFields, clim=(0.0, 0.5), dpi: int = 100,
             maps: list[MapSpec] | None = None, sm_cmap: str = plots.SM_CMAP) -> bytes:
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
    """
    from matplotlib.figure import Figure

    if fields is None:
        raise ValueError("no day is shown; nothing to export")
    maps = resolve(MAPS if maps is None else maps, fields)  # the shown map of a choice
    west, south, east, north = grid.bounds(fields.lat, fields.lon)
    ext = (west, east, south, north)
    coast = coast_paths((west, south, east, north))
    rows = math.ceil(len(maps) / 2)
    fig = Figure(figsize=(12, 4.5 * rows), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False).flat
    for spec, ax in zip(maps, axes, strict=False):  # maps first: no axis skipped
        lim = spec.clim if spec.clim is not None else clim
        im = ax.imshow(spec.base.values(fields), origin="lower", extent=ext,
                       cmap=spec.cmap or sm_cmap, vmin=lim[0], vmax=lim[1],
                       interpolation="nearest")
        for p in coast:
            ax.plot(p[:, 0], p[:, 1], color="#333333", lw=0.6)
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        ax.set_title(spec.title(fields), fontsize=9)
        fig.colorbar(im, ax=ax, label=spec.units, shrink=0.8)
    for ax in list(axes):  # an odd number of maps: the last cell stays empty
        ax.set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
