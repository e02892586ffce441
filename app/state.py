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

import numpy as np
import pandas as pd
import param
import xarray as xr
import yaml

from data_catalog import schema

log = logging.getLogger(__name__)

REGIONS_FILE = Path(__file__).with_name("regions.yml")

#: Largest region the app draws, in grid cells (a 0.25 degree continent is ~ 250 x 350).
MAX_CELLS = 250_000
#: Smallest region side, in grid cells (the model needs some spatial context).
MIN_SIDE_CELLS = 4

Bbox = tuple[float, float, float, float]


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


@dataclass(frozen=True)
class GridInfo:
    """Geometry and record of the open source: what every browser value is checked against.

    Attributes
    ----------
    lat, lon
        Cell centres (ascending), degrees.
    res
        Cell size in degrees (regular grid).
    start, end
        First and last day of the record.
    """

    lat: np.ndarray
    lon: np.ndarray
    res: float
    start: pd.Timestamp
    end: pd.Timestamp
    times: pd.DatetimeIndex | None = None

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> GridInfo:
        lat = np.asarray(ds[schema.LAT].values, dtype=float)
        lon = np.asarray(ds[schema.LON].values, dtype=float)
        res = float(np.median(np.diff(lon))) if lon.size > 1 else 0.25
        t = pd.DatetimeIndex(ds[schema.TIME].values).normalize()
        daily = len(t) == (t[-1] - t[0]).days + 1
        return cls(lat, lon, res, t[0], t[-1], None if daily else t)

    def has_day(self, t: pd.Timestamp) -> bool:
        """Whether the record holds this day (every day between start and end, or one of
        the listed days of a sparse product)."""
        if not (self.start <= t <= self.end):
            return False
        return self.times is None or t in self.times

    @property
    def bounds(self) -> Bbox:
        """Outer cell edges W, S, E, N."""
        h = self.res / 2
        return (float(self.lon[0] - h), float(self.lat[0] - h),
                float(self.lon[-1] + h), float(self.lat[-1] + h))


def _finite4(values) -> Bbox | None:
    try:
        vals = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        return None
    return vals  # type: ignore[return-value]


def validate_region(values, grid: GridInfo, max_cells: int = MAX_CELLS,
                    min_side: int = MIN_SIDE_CELLS) -> tuple[Bbox | None, list[str]]:
    """Clamp, snap and cap a region from the browser.

    Parameters
    ----------
    values
        Anything: ideally four numbers W, S, E, N in degrees.
    grid
        The source grid the region must lie on.
    max_cells
        Area cap in grid cells; a larger region is shrunk about its centre.
    min_side
        Each side is widened to at least this many cells (within the grid).

    Returns
    -------
    (bbox, messages)
        The valid region (cell edges of the grid) or ``None`` when the input is not four
        finite numbers or misses the grid entirely, and what was changed, for the user.
    """
    msgs: list[str] = []
    box = _finite4(values)
    if box is None:
        return None, [f"Region {values!r} is not four finite numbers W,S,E,N; ignored."]
    w, s, e, n = box
    if w > e:
        w, e = e, w
    if s > n:
        s, n = n, s
    gw, gs, ge, gn = grid.bounds
    if e <= gw or w >= ge or n <= gs or s >= gn:
        return None, [f"Region {box} lies outside the data ({gw:g}, {gs:g}, {ge:g}, {gn:g}); "
                      "ignored."]
    r = grid.res
    nlon, nlat = grid.lon.size, grid.lat.size
    # cell-edge indices, clamped to the grid: i0 inclusive, i1 exclusive
    j0 = int(np.clip(math.floor((w - gw) / r + 1e-9), 0, nlon - 1))
    j1 = int(np.clip(math.ceil((e - gw) / r - 1e-9), j0 + 1, nlon))
    i0 = int(np.clip(math.floor((s - gs) / r + 1e-9), 0, nlat - 1))
    i1 = int(np.clip(math.ceil((n - gs) / r - 1e-9), i0 + 1, nlat))
    if (w, s, e, n) != (max(w, gw), max(s, gs), min(e, ge), min(n, gn)):
        msgs.append("Region clamped to the data's extent.")

    def widen(a: int, b: int, size: int) -> tuple[int, int]:
        need = min(min_side, size) - (b - a)
        if need > 0:
            a = max(0, a - need // 2 - need % 2)
            b = min(size, a + min(min_side, size))
            a = max(0, b - min(min_side, size))
        return a, b

    j0, j1 = widen(j0, j1, nlon)
    i0, i1 = widen(i0, i1, nlat)
    cells = (j1 - j0) * (i1 - i0)
    if cells > max_cells:
        f = math.sqrt(max_cells / cells)
        wj, wi = max(min_side, int((j1 - j0) * f)), max(min_side, int((i1 - i0) * f))
        cj, ci = (j0 + j1) // 2, (i0 + i1) // 2
        j0 = int(np.clip(cj - wj // 2, 0, nlon - wj))
        i0 = int(np.clip(ci - wi // 2, 0, nlat - wi))
        j1, i1 = j0 + wj, i0 + wi
        msgs.append(f"Region larger than {max_cells:,} cells; shrunk about its centre to "
                    f"{wj} x {wi} cells.")
    out = (round(gw + j0 * r, 6), round(gs + i0 * r, 6), round(gw + j1 * r, 6),
           round(gs + i1 * r, 6))
    return out, msgs


def parse_date(value) -> pd.Timestamp | None:
    """A day from a date, datetime, numpy datetime or ISO string; ``None`` if unparseable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if t is pd.NaT or pd.isna(t):
        return None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.normalize()


def parse_region(text: str) -> Bbox | None:
    """Four comma-separated numbers W,S,E,N (as in the URL), or ``None``."""
    if not isinstance(text, str):
        return None
    return _finite4(text.split(","))


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
    checkpoint = param.String(default="", doc="Model checkpoint path; empty for the default.")
    clim = param.Range(default=(0.0, 0.5), bounds=(0.0, 1.0),
                       doc="Colour limits of soil moisture maps, m3 m-3.")
    show_mask = param.Boolean(default=True,
                              doc="Overlay gap categories on the raw map and mark filled pixels.")
    station = param.String(default="", doc="Selected station id ('' for none).")
    pixel = param.NumericTuple(default=(float("nan"), float("nan")), length=2,
                               doc="Selected pixel (lat, lon); NaN for none.")

    def __init__(self, grid: GridInfo, presets: dict[str, Preset] | None = None,
                 stations: Sequence[str] = (), sources: Sequence[str] = ("demo",), **params):
        self.grid = grid
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
        t = parse_date(value)
        if t is None:
            return [f"{value!r} is not a date; kept {self.day:%Y-%m-%d}."]
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
        if name == "custom":
            self.preset = "custom"
            return []
        if name not in self.presets:
            return [f"Unknown region preset {name!r}; kept the current region."]
        return self.request_region(self.presets[name].bbox, preset=name)

    def request_clim(self, low, high) -> list[str]:
        try:
            lo, hi = float(low), float(high)
        except (TypeError, ValueError):
            return [f"Colour limits {low!r}, {high!r} are not numbers; kept {self.clim}."]
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            return [f"Colour limits need low < high; kept {self.clim}."]
        lo, hi = max(0.0, lo), min(1.0, hi)
        if lo >= hi:
            return [f"Colour limits must lie in 0..1 m3 m-3; kept {self.clim}."]
        self.clim = (lo, hi)
        return []

    def request_station(self, sid) -> list[str]:
        sid = "" if sid is None else str(sid)
        if sid and sid not in self.station_ids:
            return [f"Unknown station {sid!r}; no station selected."]
        if sid != self.station:
            with param.parameterized.batch_call_watchers(self):
                self.station = sid
                if sid:
                    self.pixel = (float("nan"), float("nan"))
        return []

    def request_pixel(self, lat, lon) -> list[str]:
        """Select the grid cell containing (lat, lon); refused outside the grid."""
        try:
            la, lo = float(lat), float(lon)
        except (TypeError, ValueError):
            return ["Clicked point is not a coordinate; ignored."]
        w, s, e, n = self.grid.bounds
        if not (math.isfinite(la) and math.isfinite(lo) and s <= la <= n and w <= lo <= e):
            return [f"Point ({lat}, {lon}) is outside the data; ignored."]
        i = int(np.abs(self.grid.lat - la).argmin())
        j = int(np.abs(self.grid.lon - lo).argmin())
        with param.parameterized.batch_call_watchers(self):
            self.station = ""
            self.pixel = (float(self.grid.lat[i]), float(self.grid.lon[j]))
        return []

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
        }

    def apply_query(self, query: dict) -> list[str]:
        """Apply URL query parameters; anything invalid keeps its default and says so."""
        msgs: list[str] = []
        src = query.get("source")
        if src:
            if src in self.param.source.objects:
                self.source = src
            else:
                msgs.append(f"URL parameter source={src!r} is not a known source; using "
                            f"{self.source!r}.")
        reg = query.get("region")
        if reg:
            box = parse_region(reg)
            if box is None:
                msgs.append(f"URL parameter region={reg!r} is not W,S,E,N; using the default "
                            "region.")
            else:
                msgs += self.request_region(box)
        d = query.get("date")
        if d:
            t = parse_date(d)
            if t is None or not self.grid.has_day(t):
                msgs.append(f"URL parameter date={d!r} is not a day in the record "
                            f"({self.grid.start:%Y-%m-%d} to {self.grid.end:%Y-%m-%d}); using "
                            f"{self.day:%Y-%m-%d}.")
            else:
                self.date = t.to_pydatetime()
        st = query.get("station")
        if st:
            m = self.request_station(st)
            msgs += [f"URL parameter station={st!r}: {x}" for x in m]
        return msgs


class UrlParams(param.Parameterized):
    """String mirror of the shareable state for ``pn.state.location.sync``.

    The URL is synced to plain strings, never to the typed state, so a malformed query can
    not raise inside Panel; :meth:`ExplorerState.apply_query` validates them.
    """

    source = param.String(default="", doc="Catalog source name.")
    region = param.String(default="", doc="W,S,E,N in degrees.")
    date = param.String(default="", doc="YYYY-MM-DD.")
    station = param.String(default="", doc="Station id.")
