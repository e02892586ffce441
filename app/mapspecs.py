"""The maps of the explorer, each defined once: :data:`MAPS` is read by build, update, export.

A map is a :class:`MapSpec`: its image layers (the first one carries the colour map, the
colour bar, the clicks and the PNG export; the others are overlays such as the gap mask),
its title for a day, its colour map and limits, and the units of its colour bar.  A map
whose ``clim`` is ``None`` follows the session's soil-moisture colour limits (from the
catalog metadata of the source when it has them) and the source's colour map.

Adding a map is one entry in :data:`MAPS` (see docs/ARCHITECTURE.md).  One entry may be a
:class:`MapChoice`: a place on the page that shows one of several maps, picked by the
user (the fourth map: the error of the fill against the truth or the observations, its
uncertainty, or the fill against ASCAT); :func:`resolve` turns the table into the maps a
session shows, and only those are computed on a date step.
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
    #: the hover's detail of a day (:func:`app.plots.detail_data`: SD and reasons per
    #: cell, read by the hover at the mouse position); None: the value only
    detail: Callable[[DayFields], dict] | None = None

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
    #: as one of a :class:`MapChoice`'s maps: its label in the selector, and whether it
    #: needs a source with a truth (True), one without (False) or either (None)
    choice: str = ""
    needs_truth: bool | None = None

    @property
    def base(self) -> Layer:
        return self.layers[0]


@dataclass(frozen=True)
class MapChoice:
    """One place on the page showing one of several maps (the user picks which).

    The first of ``maps`` that the source can show is the default: the maps are listed in
    the order of preference.  Adding a choice is one :class:`MapSpec` in ``maps``.
    """

    name: str
    maps: tuple[MapSpec, ...]

    def options(self, has_truth: bool) -> dict[str, str]:
        """The maps a source with (or without) a truth can show: name -> label."""
        return {m.name: m.choice for m in self.maps
                if m.needs_truth is None or m.needs_truth == has_truth}

    def pick(self, has_truth: bool, name: str = "") -> MapSpec:
        """The map named ``name`` if the source can show it, else the default."""
        opts = self.options(has_truth)
        want = name if name in opts else next(iter(opts))
        return next(m for m in self.maps if m.name == want)


def resolve(maps, fields: DayFields | None, choice: str = "") -> list[MapSpec]:
    """The maps shown for ``fields``: each :class:`MapChoice` replaced by its map named
    ``choice`` (or its default for the source: against the truth on the demo world, the
    uncertainty elsewhere)."""
    has_truth = fields is not None and fields.truth is not None
    return [m.pick(has_truth, choice) if isinstance(m, MapChoice) else m for m in maps]


def _nan(f: DayFields) -> np.ndarray:
    return np.full(f.amsr.shape, np.nan, np.float32)


def frozen_hidden(f: DayFields) -> np.ndarray | None:
    """Cells whose filled value is hidden: fills under frozen ground (the model has little
    skill there, R about 0.5 against the truth) unless the session shows them; None when
    nothing is hidden."""
    if f.filled is None or f.show_frozen:
        return None
    hide = (np.asarray(f.gap) == schema.FROZEN) & np.asarray(f.land, bool)
    return hide if hide.any() else None


def _shown(f: DayFields, values) -> np.ndarray:
    """A per-cell field of the fill as float32, NaN where the fill is hidden."""
    out = np.asarray(values, np.float32)
    hide = frozen_hidden(f)
    return out if hide is None else np.where(hide, np.float32(np.nan), out)


def _filled(f: DayFields) -> np.ndarray:
    return _shown(f, f.filled) if f.filled is not None else _nan(f)


def _filled_mark(f: DayFields) -> np.ndarray:
    """1 where the model filled a gap, 2 where that fill is hidden (frozen ground)."""
    if f.filled is None:
        return _nan(f)
    mark = plots.filled_mark_values(f.gap, f.land)
    hide = frozen_hidden(f)
    return mark if hide is None else np.where(hide, np.float32(2.0), mark)


def _fill_detail(f: DayFields) -> dict:
    """SD and reasons of the fill for the filled map's hover (nothing without a fill)."""
    if f.filled is None:
        return plots.detail_data(f.lat, f.lon, None, None)
    return plots.detail_data(f.lat, f.lon, f.uncertainty, f.reasons)


def _reason_detail(f: DayFields) -> dict:
    """The reasons of the fill for the uncertainty map's hover."""
    return plots.detail_data(f.lat, f.lon, None,
                             f.reasons if f.filled is not None else None)


def _difference(f: DayFields) -> np.ndarray:
    """Filled minus the truth (demo worlds) or minus the observations (observed cells)."""
    if f.truth is not None:
        return plots.difference_values(_filled(f), f.truth, observed_only=False)
    return plots.difference_values(_filled(f), f.amsr, observed_only=True, gap_mask=f.gap)


def _uncertainty(f: DayFields) -> np.ndarray:
    """SD of the error of the filled field (m3 m-3); NaN without one."""
    return _shown(f, f.uncertainty) if f.filled is not None and f.uncertainty is not None \
        else _nan(f)


#: fewest cells with both ASCAT and AMSR (else both ASCAT and the fill) to match ASCAT
MIN_MATCH_CELLS = 30


def ascat_matched(f: DayFields) -> tuple[np.ndarray, str]:
    """ASCAT of the day (% saturation) rescaled to m3 m-3 by mean/SD matching over the
    region's cells that day (:func:`validation.scaling.scale`, ``mean_std``: the matching of
    the series' "ASCAT rescaled to filled"), to the observed AMSR cells, or to the filled
    field when fewer than :data:`MIN_MATCH_CELLS` cells were observed; and what it was
    matched to ('' when there was nothing to match)."""
    from validation.scaling import scale

    ascat = np.asarray(f.ascat, np.float64)
    has_ascat = np.isfinite(ascat)
    for name, ref in (("AMSR", f.amsr), ("filled", f.filled)):
        if ref is None:
            continue
        ref = np.asarray(ref, np.float64)
        if (has_ascat & np.isfinite(ref)).sum() >= MIN_MATCH_CELLS:
            return np.asarray(scale(ascat, ref, "mean_std"), np.float32), name
    return _nan(f), ""


def _minus_ascat(f: DayFields) -> np.ndarray:
    """Filled minus ASCAT matched to AMSR (:func:`ascat_matched`), m3 m-3."""
    if f.filled is None:
        return _nan(f)
    matched, _ = ascat_matched(f)
    return (_filled(f) - matched).astype(np.float32, copy=False)


def no_ascat_note(f: DayFields) -> str:
    """Why the day has no ASCAT ('' when it has some)."""
    if np.isfinite(f.ascat).any():
        return ""
    if f.date < schema.ASCAT_START:
        return f"AMSR-E years before {schema.ASCAT_START:%Y}"
    return "none in this source or day"


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
    note = no_ascat_note(f)
    return f"ConvLSTM filled {f.date:%Y-%m-%d} · {origin_label(f.filled_info)}" + (
        f" · filled without ASCAT ({note})" if note else "")


def _diff_title(f: DayFields) -> str:
    what = "Filled − truth (demo)" if f.truth is not None else "Filled − observed"
    return f"{what} {f.date:%Y-%m-%d} (m3 m-3)"


def _uncertainty_title(f: DayFields) -> str:
    what = f"Uncertainty (1 SD) {f.date:%Y-%m-%d}"
    if f.filled is None:
        return f"{what}: no model output yet"
    if f.uncertainty is None or not np.isfinite(f.uncertainty).any():
        return f"{what}: none with this fill (period fills and older cache entries)"
    return f"{what} (m3 m-3)"


def _minus_ascat_title(f: DayFields) -> str:
    what = f"Filled − ASCAT {f.date:%Y-%m-%d}"
    if f.filled is None:
        return f"{what}: no model output yet"
    note = no_ascat_note(f)
    if note:
        return f"{what}: no ASCAT ({note})"
    _, ref = ascat_matched(f)
    return f"{what} (ASCAT mean/SD-matched to {ref} over the region that day, m3 m-3)" \
        if ref else f"{what}: too few cells to match ASCAT"


_MASK = dict(cmap=plots.GAP_CMAP, clim=plots.GAP_CLIM, agg="mode", mask_alpha=0.85)

#: the maps, in their order on the page (two per row) and in the PNG export
MAPS: list[MapSpec | MapChoice] = [
    MapSpec("raw", (
        Layer("raw_sm", lambda f: np.asarray(f.amsr, np.float32), plots.SM_DIM),
        Layer("raw_gap", lambda f: plots.gap_values(f.gap), plots.GAP_DIM,
              names=plots.GAP_NAMES, **_MASK),
    ), _raw_title, units="m3 m-3", box_select=True),
    MapSpec("filled", (
        Layer("filled_sm", _filled, plots.SM_DIM, detail=_fill_detail),
        Layer("filled_mark", _filled_mark, plots.FILLED_DIM, agg="mode",
              cmap=[plots.FILLED_MARK_COLOR, plots.FROZEN_HIDDEN_COLOR], clim=(0.5, 2.5),
              mask_alpha=0.45, names={1: "filled by the model",
                                      2: plots.FROZEN_HIDDEN}),
    ), _filled_title, colorbar="Soil moisture (m3 m-3)", units="m3 m-3"),
    MapSpec("ascat", (
        Layer("ascat", lambda f: np.asarray(f.ascat, np.float32), plots.ASCAT_DIM,
              label="ASCAT"),
    ), _ascat_title, cmap=plots.ASCAT_CMAP,
        clim=plots.ASCAT_CLIM, colorbar="ASCAT (% saturation)", units="% saturation"),
    MapChoice("fourth", (
        MapSpec("diff", (Layer("diff", _difference, plots.DIFF_DIM),), _diff_title,
                cmap=plots.DIFF_CMAP, clim=plots.DIFF_CLIM, colorbar="Difference (m3 m-3)",
                units="m3 m-3", choice="Filled − truth (demo)", needs_truth=True),
        MapSpec("uncertainty", (Layer("uncertainty", _uncertainty, plots.SD_DIM,
                                              detail=_reason_detail),),
                _uncertainty_title, cmap=plots.SD_CMAP, clim=plots.SD_CLIM,
                colorbar="1 SD of the error (m3 m-3)", units="m3 m-3",
                choice="Uncertainty (1 SD of the error)"),
        MapSpec("minus_ascat", (Layer("minus_ascat", _minus_ascat, plots.DIFF_DIM),),
                _minus_ascat_title, cmap=plots.DIFF_CMAP, clim=plots.DIFF_CLIM,
                colorbar="Filled − ASCAT (m3 m-3)", units="m3 m-3",
                choice="Filled − ASCAT (matched to AMSR)"),
        MapSpec("diff_observed", (Layer("diff_observed", _difference, plots.DIFF_DIM),),
                _diff_title, cmap=plots.DIFF_CMAP, clim=plots.DIFF_CLIM,
                colorbar="Difference (m3 m-3)", units="m3 m-3",
                choice="Filled − observed", needs_truth=False),
    )),
]


def choice_options(has_truth: bool, maps=None) -> dict[str, str]:
    """The choices of the page's map selector (the first :class:`MapChoice` of the maps)
    for a source with or without a truth: name -> label, the default first."""
    for m in MAPS if maps is None else maps:
        if isinstance(m, MapChoice):
            return m.options(has_truth)
    return {}


def layers(maps: list[MapSpec] | None = None) -> dict[str, Layer]:
    """Every image layer of the (resolved) maps by name."""
    return {ly.name: ly for m in (MAPS if maps is None else maps) for ly in m.layers}


def layer_arrays(f: DayFields, maps: list[MapSpec] | None = None,
                 choice: str = "") -> dict[str, np.ndarray]:
    """Every image layer of a day as (lat, lon) float32 arrays (numpy only: the fast
    path regrids these without building HoloViews objects); only the maps shown."""
    return {name: ly.values(f) for name, ly in layers(
        resolve(MAPS if maps is None else maps, f, choice)).items()}


def layer_elements(f: DayFields, maps: list[MapSpec] | None = None,
                   choice: str = "") -> dict[str, hv.Image]:
    """Every image layer of a day as a HoloViews image (pure: arrays in, images out)."""
    shown = layers(resolve(MAPS if maps is None else maps, f, choice))
    return {name: shown[name].element(f, v)
            for name, v in layer_arrays(f, maps, choice).items()}


def map_titles(f: DayFields, maps: list[MapSpec] | None = None,
               choice: str = "") -> dict[str, str]:
    """Titles of the maps shown for a day."""
    return {m.name: m.title(f) for m in resolve(MAPS if maps is None else maps, f, choice)}
