"""The explorer's state: one ``param.Parameterized`` whose values are always valid.

Panel does not range-check widget values that arrive over the websocket, and URL query
parameters are whatever a user typed, so nothing from the browser is assigned to the state
directly.  Views call the ``request_*`` methods, which validate on the server (regions are
clamped to the grid, snapped to its cell edges and capped in area; dates outside the record
are refused) and return the messages a view shows as notifications.  The parameters
themselves are typed and bounded, so a bug that bypasses validation fails loudly in the
server log instead of drawing nonsense.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import param
import yaml

from data_catalog import inputs
from data_catalog.inputs import Bbox, GridInfo, parse_date, parse_region

__all__ = ["ExplorerState", "GridInfo", "Preset", "UrlParams", "load_presets", "parse_date",
           "parse_region", "read_query", "validate_region"]

log = logging.getLogger(__name__)

REGIONS_FILE = Path(__file__).with_name("regions.yml")

#: Largest region the app draws, in grid cells (a 0.25 degree continent is ~ 250 x 350).
MAX_CELLS = 250_000
#: longest period "Fill this period" fills at once (the hub keeps the days in memory)
MAX_FILL_DAYS = 92
#: Smallest region side, in grid cells (the model needs some spatial context).
MIN_SIDE_CELLS = 4

#: URL parameters the app reads and writes, with what each holds (the rest of a query
#: string is ignored)
URL_PARAMS = {
    "source": "Catalog source name.",
    "region": "W,S,E,N in degrees.",
    "date": "YYYY-MM-DD.",
    "station": "Station id.",
    "preset": "Region preset name ('' for custom).",
    "mask": "'0' when the gap mask is hidden.",
    "checkpoint": "Checkpoint key ('' for the default).",
    "clim": "Colour limits lo,hi in m3 m-3.",
    "pixel": "Selected pixel lat,lon.",
    "window": "Validation window: days either side, or 'all'.",
    "map": "The fourth map's name ('' for the default).",
    "frozen": "'1' when fills under frozen ground are shown.",
}
QUERY_KEYS = tuple(URL_PARAMS)
#: the state parameters written to the URL (at once, on every change)
URL_STATE = ("source", "region", "date", "station", "preset", "show_mask", "checkpoint",
             "clim", "pixel", "window", "fourth", "show_frozen")
#: validation windows: days either side of the shown day (0: the whole record) -> label
WINDOWS = {30: "±30 days", 60: "±60 days", 180: "±180 days", 365: "±1 year",
           0: "whole record"}
#: More parameters than this in one URL: none is read.
MAX_QUERY_FIELDS = 50


@dataclass(frozen=True)
class Preset:
    """A named region from ``regions.yml``."""

    name: str
    label: str
    bbox: Bbox


def load_presets(path: str | Path = REGIONS_FILE) -> dict[str, Preset]:
    """Read the named region presets.

    Parameters
    ----------
    path
        YAML file with ``presets: {name: {label: str, bbox: [W, S, E, N]}}``.

    Returns
    -------
    dict
        Preset name to :class:`Preset`, in file order.
    """
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    out: dict[str, Preset] = {}
    for name, spec in (doc.get("presets") or {}).items():
        bbox = tuple(float(v) for v in spec["bbox"])
        if len(bbox) != 4:
            raise ValueError(f"{path}: preset {name!r}: bbox needs 4 numbers W,S,E,N, got {bbox}")
        out[str(name)] = Preset(str(name), str(spec.get("label", name)), bbox)  # type: ignore[arg-type]
    return out


def validate_region(values, grid: GridInfo, max_cells: int = MAX_CELLS,
                    min_side: int = MIN_SIDE_CELLS) -> tuple[Bbox | None, list[str]]:
    """The app's region rule: :func:`data_catalog.inputs.validate_region` with the app's
    area cap and minimum side (clamped to the grid, snapped to its cell edges; never
    raises)."""
    return inputs.validate_region(values, grid, max_cells, min_side)


def read_query(search: str) -> tuple[dict[str, str], list[str]]:
    """The shareable parameters of a URL's query string, as plain strings, and messages.

    The raw string is read here rather than through Panel's ``Location.query_params``,
    which turns digits into numbers (a station ``007`` became ``7``; 5,000 digits raised
    inside Panel).  Values longer than :data:`~data_catalog.inputs.MAX_TEXT` are refused
    before anything parses them; parameters the app does not use are ignored.
    """
    text = search[1:] if search.startswith("?") else search
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return {}, [f"The URL has more than {MAX_QUERY_FIELDS} parameters; all were "
                    "ignored."]
    out: dict[str, str] = {}
    msgs: list[str] = []
    for key, value in pairs:
        if key not in QUERY_KEYS:
            continue
        try:
            out[key] = inputs.check_text(value, f"URL parameter {key}")
        except inputs.InputError as exc:
            msgs.append(f"{exc}; ignored.")
    return out, msgs


class ExplorerState(param.Parameterized):
    """What the user is looking at. Every value here has been validated on the server."""

    source = param.Selector(default="demo", objects=["demo"],
                            doc="Catalog source of the gridded data (demo world or a product).")
    preset = param.Selector(default="custom", objects=["custom"],
                            doc="Named region preset from regions.yml, or 'custom'.")
    region = param.NumericTuple(default=(-100.0, 30.0, -84.0, 46.0), length=4,
                                doc="Region W, S, E, N in degrees: cell edges of the grid, "
                                    "clamped to the data and capped in area.")
    date = param.Date(default=dt.datetime(2015, 6, 1), bounds=None,
                      doc="Selected day (00:00 UTC); inside the source's record.")
    checkpoint = param.String(default="", doc="Model checkpoint path on the server; empty "
                                              "for the default (never sent to the browser).")
    clim = param.Range(default=(0.0, 0.5), bounds=(0.0, 1.0),
                       doc="Colour limits of soil moisture maps, m3 m-3.")
    show_mask = param.Boolean(default=True,
                              doc="Overlay gap categories on the raw map and mark filled pixels.")
    station = param.String(default="", doc="Selected station id ('' for none).")
    pixel = param.NumericTuple(default=(float("nan"), float("nan")), length=2,
                               doc="Selected pixel (lat, lon); NaN for none.")
    window = param.Selector(default=60, objects=list(WINDOWS),
                            doc="Validation window of the series, station statistics and "
                                "network table: days either side of the shown day; 0: the "
                                "whole record.")
    fourth = param.String(default="", doc="The map shown in the fourth place (a name of "
                                          "map_choices; '' for the source's default).")
    show_frozen = param.Boolean(default=False,
                                doc="Draw fills under frozen ground (hidden by default: the "
                                    "model has little skill there, R about 0.5).")

    def __init__(self, grid: GridInfo, presets: dict[str, Preset] | None = None,
                 stations: Sequence[str] = (), sources: Sequence[str] = ("demo",),
                 checkpoints: dict[str, str] | None = None,
                 map_choices: dict[str, str] | None = None, **params):
        self.grid = grid
        #: the maps the fourth place can show for this source: name -> label, default first
        self.map_choices = dict(map_choices or {})
        #: checkpoint key (what the browser may send) -> path on the server ('' = default)
        self.checkpoints = dict(checkpoints) if checkpoints is not None else {"": ""}
        self.presets = presets if presets is not None else load_presets()
        self.station_ids = set(stations)
        source = params.pop("source", None)
        super().__init__(**params)
        self.param.source.objects = list(sources)
        self.source = source if source in sources else sources[0]
        self.param.preset.objects = ["custom", *self.presets]
        self.param.date.bounds = (grid.start.to_pydatetime(), grid.end.to_pydatetime())
        if not grid.has_day(pd.Timestamp(self.date)):
            self.date = self.default_date().to_pydatetime()
        box, _ = validate_region(self.region, grid)
        self.region = box if box is not None else grid.bounds

    # ------------------------------------------------------------------ defaults
    def default_date(self) -> pd.Timestamp:
        """A summer AMSR2 day inside the record (or its last day)."""
        for cand in ("2015-06-01", "2008-06-01"):
            t = pd.Timestamp(cand)
            if self.grid.has_day(t):
                return t
        return self.grid.end

    @property
    def day(self) -> pd.Timestamp:
        return pd.Timestamp(self.date).normalize()

    # ------------------------------------------------------------------ requests
    def request_date(self, value) -> list[str]:
        """Set the date if it is a day inside the record; otherwise refuse, saying why."""
        try:
            t = inputs.check_date(value)
        except inputs.InputError as exc:
            return [f"{exc}; kept {self.day:%Y-%m-%d}."]
        if not (self.grid.start <= t <= self.grid.end):
            return [f"{t:%Y-%m-%d} is outside the record ({self.grid.start:%Y-%m-%d} to "
                    f"{self.grid.end:%Y-%m-%d}); kept {self.day:%Y-%m-%d}."]
        if not self.grid.has_day(t):
            days = ", ".join(f"{d:%Y-%m-%d}" for d in self.grid.times[:6])
            return [f"No data on {t:%Y-%m-%d}; this source has {len(self.grid.times)} days "
                    f"({days}{', ...' if len(self.grid.times) > 6 else ''}); kept "
                    f"{self.day:%Y-%m-%d}."]
        if t != self.day:
            self.date = t.to_pydatetime()
        return []

    def step_date(self, days: int) -> list[str]:
        """Move the date by ``days`` (previous/next buttons), stopping at the record's ends."""
        if self.grid.times is not None:  # a sparse product: the next day it has
            times = self.grid.times
            side = times[times > self.day] if days > 0 else times[times < self.day][::-1]
            return self.request_date(side[0]) if len(side) else []
        t = self.day + pd.Timedelta(days=int(days))
        t = min(max(t, self.grid.start), self.grid.end)
        return self.request_date(t)

    def request_region(self, values, preset: str = "custom") -> list[str]:
        """Validate a W, S, E, N region (typed, drawn or from a preset) and apply it."""
        box, msgs = validate_region(values, self.grid)
        if box is None:
            return msgs
        with param.parameterized.batch_call_watchers(self):
            self.preset = preset if preset in self.presets else "custom"
            self.region = box
        return msgs

    def request_preset(self, name) -> list[str]:
        """Apply a named region preset (or 'custom', which keeps the region)."""
        try:
            name = inputs.check_choice(name, ["custom", *self.presets], "Region preset")
        except inputs.InputError as exc:
            return [f"{exc}; kept the current region."]
        if name == "custom":
            self.preset = "custom"
            return []
        return self.request_region(self.presets[name].bbox, preset=name)

    def request_checkpoint(self, key) -> list[str]:
        """Choose a checkpoint by its key in :attr:`checkpoints` (the browser never sees a
        path: keys and labels go out, the path is looked up here)."""
        try:
            key = inputs.check_choice(key, list(self.checkpoints), "Checkpoint")
        except inputs.InputError as exc:
            return [f"{exc}; kept the current checkpoint."]
        self.checkpoint = self.checkpoints[key]
        return []

    @property
    def checkpoint_key(self) -> str:
        """The key of the current checkpoint in :attr:`checkpoints`."""
        for key, path in self.checkpoints.items():
            if path == self.checkpoint:
                return key
        return ""

    def request_clim(self, low, high) -> list[str]:
        """Colour limits in 0..1 m3 m-3 with low < high (cut to 0..1 when they stick out)."""
        try:
            lo = inputs.check_number(low, "Colour limit low")
            hi = inputs.check_number(high, "Colour limit high")
        except inputs.InputError as exc:
            return [f"{exc}; kept {self.clim}."]
        if lo >= hi:
            return [f"Colour limits need low < high; kept {self.clim}."]
        lo, hi = max(0.0, lo), min(1.0, hi)
        if lo >= hi:
            return [f"Colour limits must lie in 0..1 m3 m-3; kept {self.clim}."]
        self.clim = (lo, hi)
        return []

    def request_station(self, sid) -> list[str]:
        """Select a station by id ('' or None: none)."""
        try:
            sid = "" if sid is None else inputs.check_text(
                sid if isinstance(sid, str | bytes) else str(sid), "Station id")
        except inputs.InputError as exc:
            return [f"{exc}; no station selected."]
        if sid and sid not in self.station_ids:
            return [f"Unknown station {inputs.shown(sid)}; no station selected."]
        if sid != self.station:
            with param.parameterized.batch_call_watchers(self):
                self.station = sid
                if sid:
                    self.pixel = (float("nan"), float("nan"))
        return []

    def request_pixel(self, lat, lon) -> list[str]:
        """Select the grid cell containing (lat, lon); refused outside the grid."""
        try:
            la, lo = inputs.check_lat(lat), inputs.check_lon(lon)
        except inputs.InputError as exc:
            return [f"Clicked point: {exc}; ignored."]
        w, s, e, n = self.grid.bounds
        if not (s <= la <= n and w <= lo <= e):
            return [f"Point ({la:g}, {lo:g}) is outside the data; ignored."]
        i = int(np.abs(self.grid.lat - la).argmin())
        j = int(np.abs(self.grid.lon - lo).argmin())
        with param.parameterized.batch_call_watchers(self):
            self.station = ""
            self.pixel = (float(self.grid.lat[i]), float(self.grid.lon[j]))
        return []

    def request_window(self, value) -> list[str]:
        """The validation window: days either side of the shown day (one of
        :data:`WINDOWS`), or ``"all"`` / 0 for the whole record."""
        try:
            text = inputs.check_text(str(value), "Validation window").strip().lower()
            days = 0 if text in ("all", "whole record") else int(
                inputs.check_number(text, "Validation window"))
        except (inputs.InputError, ValueError, OverflowError) as exc:
            return [f"{exc}; kept {WINDOWS[self.window]}."]
        if days not in WINDOWS:
            return [f"Validation window {inputs.shown(value)} is not one of "
                    f"{', '.join(str(d) for d in WINDOWS if d)} days or 'all'; kept "
                    f"{WINDOWS[self.window]}."]
        self.window = days
        return []

    def request_map(self, name) -> list[str]:
        """Show another map in the fourth place (a name of :attr:`map_choices`)."""
        try:
            name = inputs.check_choice(name, list(self.map_choices), "Map")
        except inputs.InputError as exc:
            return [f"{exc}; kept the map shown."]
        self.fourth = name
        return []

    def month_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The shown day's month, clipped to the record (the default period to fill)."""
        first = self.day.replace(day=1)
        last = first + pd.offsets.MonthEnd(0)
        return max(first, self.grid.start), min(last, self.grid.end)

    def check_fill_period(self, start, end, max_days: int = MAX_FILL_DAYS
                          ) -> tuple[tuple[pd.Timestamp, pd.Timestamp] | None, list[str]]:
        """A period to fill: two days of the record, in order, at most ``max_days`` long;
        ``(None, [why])`` otherwise."""
        try:
            a = inputs.check_day_in(start, self.grid.start, self.grid.end, "fill start")
            b = inputs.check_day_in(end, self.grid.start, self.grid.end, "fill end")
        except inputs.InputError as exc:
            return None, [f"{exc}; nothing filled."]
        if b < a:
            return None, [f"The fill period ends ({b:%Y-%m-%d}) before it starts "
                          f"({a:%Y-%m-%d}); nothing filled."]
        if (b - a).days + 1 > max_days:
            return None, [f"The fill period has {(b - a).days + 1} days; at most {max_days} "
                          "are filled at once (the app keeps them in memory)."]
        return (a, b), []

    @property
    def has_pixel(self) -> bool:
        return all(math.isfinite(v) for v in self.pixel)

    # ------------------------------------------------------------------ URL
    def to_query(self) -> dict[str, str]:
        """The shareable part of the state as URL query strings."""
        return {
            "source": self.source,
            "region": ",".join(f"{v:g}" for v in self.region),
            "date": f"{self.day:%Y-%m-%d}",
            "station": self.station,
            "preset": "" if self.preset == "custom" else self.preset,
            "mask": "" if self.show_mask else "0",
            "checkpoint": self.checkpoint_key,
            "clim": ",".join(f"{v:g}" for v in self.clim),
            "pixel": ",".join(f"{v:g}" for v in self.pixel) if self.has_pixel else "",
            "window": "" if self.window == 60 else "all" if not self.window else
            str(self.window),
            "map": self.fourth,
            "frozen": "1" if self.show_frozen else "",
        }

    def apply_query(self, query: dict) -> list[str]:
        """Apply URL query parameters; anything invalid keeps its default and says so.

        ``query`` holds strings (see :func:`read_query`); each value is bounded in length
        again here, so a caller that skipped :func:`read_query` cannot pass a huge one.
        """
        msgs: list[str] = []
        clean: dict[str, str] = {}
        for key in QUERY_KEYS:
            value = query.get(key)
            if value in (None, ""):
                continue
            try:
                clean[key] = inputs.check_text(value, f"URL parameter {key}")
            except inputs.InputError as exc:
                msgs.append(f"{exc}; ignored.")
        src = clean.get("source")
        if src:
            if src in self.param.source.objects:
                self.source = src
            else:
                msgs.append(f"URL parameter source={inputs.shown(src)} is not a known "
                            f"source; using {self.source!r}.")
        pre = clean.get("preset")
        if pre:
            msgs += [f"URL parameter preset={inputs.shown(pre)}: {x}"
                     for x in self.request_preset(pre)]
        reg = clean.get("region")
        if reg and not (pre and self.preset == pre and validate_region(reg, self.grid)[0]
                        == tuple(self.region)):
            box, m = validate_region(reg, self.grid)
            if box is None:
                msgs += [f"URL parameter region={inputs.shown(reg)}: {x} Using the default "
                         "region." for x in m]
            else:
                msgs += self.request_region(box)
        d = clean.get("date")
        if d:
            t = parse_date(d)
            if t is None or not self.grid.has_day(t):
                msgs.append(f"URL parameter date={inputs.shown(d)} is not a day in the record "
                            f"({self.grid.start:%Y-%m-%d} to {self.grid.end:%Y-%m-%d}); using "
                            f"{self.day:%Y-%m-%d}.")
            else:
                self.date = t.to_pydatetime()
        msgs += self._apply_display_query(clean)
        st = clean.get("station")
        if st:
            msgs += [f"URL parameter station={inputs.shown(st)}: {x}"
                     for x in self.request_station(st)]
        return msgs

    def _apply_display_query(self, clean: dict) -> list[str]:
        """The gap toggle, checkpoint, colour limits and pixel of a URL."""
        msgs: list[str] = []
        mask = clean.get("mask")
        if mask is not None:
            if mask in ("0", "1"):
                self.show_mask = mask == "1"
            else:
                msgs.append(f"URL parameter mask={inputs.shown(mask)} is not 0 or 1; ignored.")
        if clean.get("window"):
            msgs += [f"URL parameter window: {x}" for x in self.request_window(clean["window"])]
        frozen = clean.get("frozen")
        if frozen is not None:
            if frozen in ("0", "1"):
                self.show_frozen = frozen == "1"
            else:
                msgs.append(f"URL parameter frozen={inputs.shown(frozen)} is not 0 or 1; "
                            "ignored.")
        if clean.get("map"):
            msgs += [f"URL parameter map: {x}" for x in self.request_map(clean["map"])]
        ck = clean.get("checkpoint")
        if ck:
            msgs += [f"URL parameter checkpoint: {x}" for x in self.request_checkpoint(ck)]
        for key, apply in (("clim", self.request_clim), ("pixel", self.request_pixel)):
            text = clean.get(key)
            if not text:
                continue
            parts = text.split(",")
            if len(parts) != 2:
                msgs.append(f"URL parameter {key}={inputs.shown(text)} is not two numbers "
                            "a,b; ignored.")
                continue
            msgs += [f"URL parameter {key}: {x}" for x in apply(*parts)]
        return msgs


#: String mirror of the shareable state for ``pn.state.location.sync``, one parameter per
#: key of :data:`URL_PARAMS`.  The URL is synced to plain strings, never to the typed
#: state, so a malformed query cannot raise inside Panel; :meth:`ExplorerState.apply_query`
#: validates them.
UrlParams = param.parameterized_class(
    "UrlParams", {k: param.String(default="", doc=doc) for k, doc in URL_PARAMS.items()})
