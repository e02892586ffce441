"""Static exports: the four maps of the shown day as one PNG (matplotlib, Agg, offline)."""

from __future__ import annotations

import io

import numpy as np

from app import plots
from app.days import DayFields
from app.maps import coast_paths, map_titles
from data_catalog import grid


def maps_png(fields: DayFields, clim=(0.0, 0.5), dpi: int = 100) -> bytes:
    """Render raw, filled, ASCAT and difference of ``fields`` to PNG bytes.

    Parameters
    ----------
    fields
        The day shown in the app.
    clim
        Colour limits of the soil-moisture panels (m3 m-3).
    """
    from matplotlib.figure import Figure

    if fields is None:
        raise ValueError("no day is shown; nothing to export")
    nan = np.full(fields.amsr.shape, np.nan, np.float32)
    filled = fields.filled if fields.filled is not None else nan
    ref = fields.truth if fields.truth is not None else np.where(fields.gap == 0, fields.amsr,
                                                                 np.nan)
    panels = [
        ("raw", fields.amsr, plots.SM_CMAP, clim, "m3 m-3"),
        ("filled", filled, plots.SM_CMAP, clim, "m3 m-3"),
        ("ascat", fields.ascat, plots.ASCAT_CMAP, plots.ASCAT_CLIM, "% saturation"),
        ("diff", filled - ref, plots.DIFF_CMAP, plots.DIFF_CLIM, "m3 m-3"),
    ]
    titles = map_titles(fields)
    west, south, east, north = grid.bounds(fields.lat, fields.lon)
    ext = (west, east, south, north)
    coast = coast_paths((west, south, east, north))
    fig = Figure(figsize=(12, 9), dpi=dpi, layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (name, arr, cmap, lim, units) in zip(axes.flat, panels, strict=True):
        im = ax.imshow(arr, origin="lower", extent=ext, cmap=cmap, vmin=lim[0], vmax=lim[1],
                       interpolation="nearest")
        for p in coast:
            ax.plot(p[:, 0], p[:, 1], color="#333333", lw=0.6)
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        ax.set_title(titles[name], fontsize=9)
        fig.colorbar(im, ax=ax, label=units, shrink=0.8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
