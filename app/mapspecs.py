"""The maps of the explorer, each defined once: :data:`MAPS` is read by build, update, export.

A map is a :class:`MapSpec`: its image layers (the first one carries the colour map, the
colour bar, the clicks and the PNG export; the others are overlays such as the gap mask),
its title for a day, its colour map and limits, and the units of its colour bar.  A map
whose ``clim`` is ``None`` follows the session's soil-moisture colour limits (from the
catalog metadata of the source when it has them) and the source's colour map.

Adding a map is one entry in :data:`MAPS` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import holoviews as hv
import numpy as np

from app import plots
from app.days import DayFields
from app.fill import origin_label
from data_catalog import schema


@dataclass(frozen=True)
class Layer:
    """One image layer of a map.

    ``values`` gives the (lat, lon) float32 array of a day; ``agg`` is how it is
    aggregated on fewer pixels (``mean`` for values, ``mode`` for categories).  An
    overlay (``mask_alpha`` set) is drawn with its own colours, transparent below its
    limits, at ``mask_alpha`` when the mask toggle is on and invisible when it is off.
    """

    name: str
    values: Callable[[DayFields], np.ndarray]
    dim: hv.Dimension
    label: str = ""
    agg: str = "mean"
    cmap: str | list | None = None
    clim: tuple[float, float] | None = None
    mask_alpha: float | None = None
    names: dict[int, str] | None = None  # a category layer: what its values are called

    def element(self, f: DayFields, values: np.ndarray) -> hv.Image:
        """The layer's values of a day as a HoloViews image."""
        return plots.image(f.lon, f.lat, values, self.dim, self.label)


@dataclass(frozen=True)
class MapSpec:
    """One map: layers (the first the base), title, colours, colour bar and units."""

    name: str
    layers: tuple[Layer, ...]
    title: Callable[[DayFields], str]
    cmap: str | None = None  # None: the source's soil-moisture colour map
    clim: tuple[float, float] | None = None  # None: the session's soil-moisture limits
    colorbar: str = ""  # colour bar title ("": no colour bar)
    units: str = ""
    box_select: bool = False  # regions are drawn on this map

    @property
    def base(self) -> Layer:
        return self.layers[0]


def _nan(f: DayFields) -> np.ndarray:
    return np.full(f.amsr.shape, np.nan, np.float32)


def _filled(f: DayFields) -> np.ndarray:
    return np.asarray(f.filled, np.float32) if f.filled is not None else _nan(f)


def _difference(f: DayFields) -> np.ndarray:
    """Filled minus the truth (demo worlds) or minus the observations (observed cells)."""
    if f.truth is not None:
        return plots.difference_values(_filled(f), f.truth, observed_only=False)
    return plots.difference_values(_filled(f), f.amsr, observed_only=True, gap_mask=f.gap)


def _raw_title(f: DayFields) -> str:
    if f.sensor == schema.SENSOR_NONE:
        return f"Raw: no AMSR in orbit {f.date:%Y-%m-%d}"
    frac = plots.gap_fraction(f.gap, f.land)
    what = f"Raw {f.label or f.sensor_label}"
    return f"{what} {f.date:%Y-%m-%d} · gaps {100 * frac:.0f}% of land"


def _ascat_title(f: DayFields) -> str:
    if not np.isfinite(f.ascat).any():
        return f"ASCAT {f.date:%Y-%m-%d}: none in this source or day"
    return f"ASCAT {f.date:%Y-%m-%d} (% saturation)"


def _filled_title(f: DayFields) -> str:
    if f.filled is None:
        return f"ConvLSTM filled (no output yet) {f.date:%Y-%m-%d}"
    return f"ConvLSTM filled {f.date:%Y-%m-%d} · {origin_label(f.filled_info)}"


def _diff_title(f: DayFields) -> str:
    what = "Filled − truth (demo)" if f.truth is not None else "Filled − observed"
    return f"{what} {f.date:%Y-%m-%d} (m3 m-3)"


_MASK = dict(cmap=plots.GAP_CMAP, clim=plots.GAP_CLIM, agg="mode", mask_alpha=0.85)

#: the maps, in their order on the page (two per row) and in the PNG export
MAPS: list[MapSpec] = [
    MapSpec("raw", (
        Layer("raw_sm", lambda f: np.asarray(f.amsr, np.float32), plots.SM_DIM),
        Layer("raw_gap", lambda f: plots.gap_values(f.gap), plots.GAP_DIM,
              names=plots.GAP_NAMES, **_MASK),
    ), _raw_title, units="m3 m-3", box_select=True),
    MapSpec("filled", (
        Layer("filled_sm", _filled, plots.SM_DIM),
        Layer("filled_mark", lambda f: plots.filled_mark_values(f.gap, f.land)
              if f.filled is not None else _nan(f), plots.FILLED_DIM, agg="mode",
              cmap=[plots.FILLED_MARK_COLOR], clim=(0.5, 1.5), mask_alpha=0.45,
              names={1: "filled by the model"}),
    ), _filled_title, colorbar="Soil moisture (m3 m-3)", units="m3 m-3"),
    MapSpec("ascat", (
        Layer("ascat", lambda f: np.asarray(f.ascat, np.float32), plots.ASCAT_DIM,
              label="ASCAT"),
    ), _ascat_title, cmap=plots.ASCAT_CMAP,
        clim=plots.ASCAT_CLIM, colorbar="ASCAT (% saturation)", units="% saturation"),
    MapSpec("diff", (
        Layer("diff", _difference, plots.DIFF_DIM),
    ), _diff_title, cmap=plots.DIFF_CMAP, clim=plots.DIFF_CLIM,
        colorbar="Difference (m3 m-3)", units="m3 m-3"),
]


def layers(maps: list[MapSpec] | None = None) -> dict[str, Layer]:
    """Every image layer of the maps by name."""
    return {ly.name: ly for m in (MAPS if maps is None else maps) for ly in m.layers}


def layer_arrays(f: DayFields, maps: list[MapSpec] | None = None) -> dict[str, np.ndarray]:
    """Every image layer of a day as (lat, lon) float32 arrays (numpy only: the fast
    path regrids these without building HoloViews objects)."""
    return {name: ly.values(f) for name, ly in layers(maps).items()}


def layer_elements(f: DayFields, maps: list[MapSpec] | None = None) -> dict[str, hv.Image]:
    """Every image layer of a day as a HoloViews image (pure: arrays in, images out)."""
    return {name: layers(maps)[name].element(f, v) for name, v in layer_arrays(f, maps).items()}


def map_titles(f: DayFields, maps: list[MapSpec] | None = None) -> dict[str, str]:
    """Titles of the maps for a day."""
    return {m.name: m.title(f) for m in (MAPS if maps is None else maps)}
