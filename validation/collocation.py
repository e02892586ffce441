"""Collocation of stations with satellite grids: space, depth, then time.

Each step is its own function so that the app and the tests can use them one at a time:

* space: :func:`nearest_cell` finds the grid cell whose centre is nearest the station (on
  a regular grid that is the cell containing it) and reports the great-circle distance;
  :func:`nearest_point` does the same for the irregular point lists of cell files;
  :func:`stations_by_cell` groups stations that share a cell (for an optional cell mean).
* depth: :func:`select_depth` keeps surface sensors (top of the sensor within 0-0.10 m).
* time: :func:`insitu_for_days` gives, for each satellite day, the mean of the good
  (ISMN flag ``G``) hourly station values within a window around the overpass times
  (default +-1 h around 01:30 and 13:30 local solar time, local solar time = UTC +
  lon / 15 h), or the daily mean, and keeps the number of hourly values used;
  :func:`insitu_at_times` does it around arbitrary observation times (ASCAT).

Everything is UTC: tz-aware indexes are converted to UTC, naive ones are taken as UTC.
Daily satellite time stamps are naive ``datetime64`` at 00:00 (the canonical schema), and
satellite day ``D`` is read as the local solar date of its overpasses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
GOOD_FLAGS: tuple[str, ...] = ("G",)
# AMSR-E / AMSR2 equator crossings (descending, ascending), local solar time in hours
AMSR_OVERPASS_HOURS: tuple[float, ...] = (1.5, 13.5)
# Metop ASCAT equator crossings (descending, ascending)
ASCAT_OVERPASS_HOURS: tuple[float, ...] = (9.5, 21.5)
SURFACE_DEPTH_M: tuple[float, float] = (0.0, 0.10)


# ---------------------------------------------------------------- space
@dataclass(frozen=True)
class CellMatch:
    """The grid cell matched to a station.

    Attributes
    ----------
    i, j : int
        Indices along the latitude and longitude axes of the grid.
    lat, lon : float
        Centre of the cell (degrees).
    distance_km : float
        Great-circle distance from the station to the cell centre.
    """

    i: int
    j: int
    lat: float
    lon: float
    distance_km: float


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (haversine).

    ``d = 2 R asin(sqrt(sin^2(dphi / 2) + cos(phi1) cos(phi2) sin^2(dlambda / 2)))``.
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _wrap_lon(lon):
    return ((np.asarray(lon, dtype=np.float64) + 180.0) % 360.0) - 180.0


def nearest_cell(lat: float, lon: float, grid_lat: Sequence[float],
                 grid_lon: Sequence[float]) -> CellMatch:
    """The cell of a regular ``(lat, lon)`` grid whose centre is nearest the station.

    On a regular grid the nearest centre along each axis is the cell that contains the
    point.  Longitudes are compared on the circle (wrapped into [-180, 180)).

    Parameters
    ----------
    lat, lon : float
        Station position (degrees).
    grid_lat, grid_lon : sequence of float
        Cell-centre coordinates of the grid's two axes.
    """
    glat = np.asarray(grid_lat, dtype=np.float64)
    glon = np.asarray(grid_lon, dtype=np.float64)
    if glat.size == 0 or glon.size == 0:
        raise ValueError("empty grid")
    i = int(np.argmin(np.abs(glat - lat)))
    dlon = np.abs(_wrap_lon(glon - lon))
    j = int(np.argmin(dlon))
    return CellMatch(i, j, float(glat[i]), float(glon[j]),
                     float(haversine_km(lat, lon, glat[i], glon[j])))


def nearest_point(lat: float, lon: float, lats: Sequence[float],
                  lons: Sequence[float]) -> tuple[int, float]:
    """Index and great-circle distance (km) of the nearest of a list of points."""
    d = haversine_km(lat, lon, np.asarray(lats, np.float64), np.asarray(lons, np.float64))
    if np.size(d) == 0:
        raise ValueError("no points to choose from")
    k = int(np.nanargmin(d))
    return k, float(np.asarray(d).ravel()[k])


def stations_by_cell(table: pd.DataFrame, grid_lat: Sequence[float],
                     grid_lon: Sequence[float]) -> dict[tuple[int, int], list[str]]:
    """Group station ids by the grid cell that contains them (for a cell mean)."""
    out: dict[tuple[int, int], list[str]] = {}
    for row in table.itertuples(index=False):
        m = nearest_cell(row.lat, row.lon, grid_lat, grid_lon)
        out.setdefault((m.i, m.j), []).append(str(row.id))
    return out


# ---------------------------------------------------------------- depth
def select_depth(table: pd.DataFrame,
                 top: tuple[float, float] = SURFACE_DEPTH_M) -> pd.DataFrame:
    """Stations whose sensor top (``depth_from``, m) lies within ``top`` (inclusive).

    The default keeps surface sensors, 0-0.10 m, which is what a C/X-band radiometer
    senses.  Depths are positive downwards in metres (the ISMN convention).
    """
    lo, hi = top
    d = pd.to_numeric(table["depth_from"], errors="coerce")
    keep = (d >= lo - 1e-9) & (d <= hi + 1e-9)
    return table.loc[keep.fillna(False).to_numpy()].reset_index(drop=True)


# ---------------------------------------------------------------- time
@dataclass(frozen=True)
class TemporalWindow:
    """How station values are averaged for one satellite day.

    Attributes
    ----------
    mode : {"overpass", "daily"}
        ``overpass``: the mean of hourly values within ``half_window_h`` of each overpass
        (both overpasses pooled); ``daily``: the mean of the UTC calendar day.
    overpass_hours : tuple of float
        Overpass times in local solar time (hours after local midnight).
    half_window_h : float
        Half width of the window around each overpass, hours (inclusive bounds).
    flags : tuple of str
        ISMN quality flags accepted (``G``: good).  A flag string like ``"D04,D05"`` is
        accepted only if every code in it is accepted.
    min_count : int
        Fewest hourly values for a day to get an in-situ value.
    """

    mode: Literal["overpass", "daily"] = "overpass"
    overpass_hours: tuple[float, ...] = AMSR_OVERPASS_HOURS
    half_window_h: float = 1.0
    flags: tuple[str, ...] = field(default=GOOD_FLAGS)
    min_count: int = 1

    def __post_init__(self):
        if self.mode not in ("overpass", "daily"):
            raise ValueError(f"window mode {self.mode!r}: expected 'overpass' or 'daily'")
        if self.half_window_h < 0:
            raise ValueError(f"half_window_h {self.half_window_h} must be >= 0")


def to_utc_index(index) -> pd.DatetimeIndex:
    """A tz-aware UTC DatetimeIndex: naive times are taken as UTC, others converted."""
    idx = pd.DatetimeIndex(index)
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Integer nanoseconds since the epoch (pandas 3 indexes may hold s, ms or us units)."""
    return index.as_unit("ns").asi8


def to_naive_utc(index) -> pd.DatetimeIndex:
    """A naive DatetimeIndex meaning UTC (the canonical form of daily grid time stamps)."""
    return to_utc_index(index).tz_localize(None)


def good_values(series: pd.DataFrame | pd.Series,
                flags: Iterable[str] = GOOD_FLAGS) -> pd.Series:
    """The station values whose ISMN flag is accepted, sorted, on a UTC index.

    Parameters
    ----------
    series : pandas.DataFrame or pandas.Series
        A station frame with columns ``sm`` and ``flag`` (a Series is taken as already
        quality-controlled values).
    flags : iterable of str
        Accepted flag codes.
    """
    if isinstance(series, pd.Series):
        sm = series.astype(np.float64)
    else:
        sm = series["sm"].astype(np.float64)
        if "flag" in series.columns:
            accepted = set(flags)
            codes = series["flag"].astype(str).str.strip()
            ok = codes.map(lambda c: bool(c) and set(c.split(",")) <= accepted)
            sm = sm[ok.to_numpy(dtype=bool)]
    sm = pd.Series(sm.to_numpy(), index=to_utc_index(sm.index), name="sm")
    sm = sm[np.isfinite(sm.to_numpy())]
    return sm.sort_index()


def _window_sums(t_ns: np.ndarray, v: np.ndarray, lo_ns: np.ndarray,
                 hi_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of ``v`` with ``lo <= t <= hi`` for each window (t sorted)."""
    csum = np.concatenate([[0.0], np.cumsum(v)])
    left = np.searchsorted(t_ns, lo_ns, side="left")
    right = np.searchsorted(t_ns, hi_ns, side="right")
    return csum[right] - csum[left], (right - left).astype(np.int64)


def insitu_at_times(values: pd.Series, times, half_window_h: float = 1.0) -> pd.DataFrame:
    """Mean of station values within ``+-half_window_h`` of each time (inclusive).

    Parameters
    ----------
    values : pandas.Series
        Quality-controlled station values (see :func:`good_values`), any time zone.
    times : array-like of datetime
        Observation times (naive means UTC).
    half_window_h : float
        Half width of the window, hours.

    Returns
    -------
    pandas.DataFrame
        Indexed by the UTC ``times``; ``sm`` (NaN where no value falls in the window) and
        ``count``.
    """
    tidx = to_utc_index(times)
    v = values.dropna()
    vt = to_utc_index(v.index)
    order = np.argsort(_ns(vt), kind="stable")
    t_ns = _ns(vt)[order]
    vv = v.to_numpy(np.float64)[order]
    half = int(round(half_window_h * 3600e9))
    s, c = _window_sums(t_ns, vv, _ns(tidx) - half, _ns(tidx) + half)
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return pd.DataFrame({"sm": sm, "count": c}, index=tidx.rename("time"))


def overpass_times_utc(days, lon: float,
                       hours: Sequence[float] = AMSR_OVERPASS_HOURS) -> pd.DatetimeIndex:
    """UTC times of the overpasses of each day: ``D + h - lon / 15`` hours.

    Local solar time is ``UTC + lon / 15 h``, so an overpass at ``h`` local solar time on
    local date ``D`` happens at ``D + h - lon/15`` h UTC.  The result has
    ``len(days) * len(hours)`` entries, day-major.
    """
    d = to_naive_utc(days).normalize()
    offs = np.array([(h - lon / 15.0) * 3600e9 for h in hours], dtype=np.float64)
    ns = _ns(d)[:, None] + np.round(offs[None, :]).astype(np.int64)
    return pd.DatetimeIndex(ns.ravel(), tz="UTC")


def insitu_for_days(series: pd.DataFrame | pd.Series, days, lon: float,
                    window: TemporalWindow | None = None) -> pd.DataFrame:
    """The station value for each satellite day and the number of hourly values behind it.

    Parameters
    ----------
    series : pandas.DataFrame or pandas.Series
        Station frame (``sm``, ``flag``) on any time zone (naive = UTC).
    days : array-like of datetime
        Satellite days (00:00 time stamps; naive = UTC).
    lon : float
        Station longitude, for local solar time.
    window : TemporalWindow, optional
        Averaging rule (default: +-1 h around 01:30 and 13:30 local solar time, flag G).

    Returns
    -------
    pandas.DataFrame
        Indexed by the naive UTC ``days`` (named ``time``); ``sm`` (NaN where fewer than
        ``window.min_count`` values) and ``count``.
    """
    window = window or TemporalWindow()
    dayidx = to_naive_utc(days).normalize().rename("time")
    vals = good_values(series, window.flags)
    t_ns = _ns(vals.index)
    v = vals.to_numpy(np.float64)
    if window.mode == "daily":
        start = _ns(to_utc_index(dayidx))
        # [D, D + 1 day): the right edge is excluded by stopping 1 ns before midnight
        s, c = _window_sums(t_ns, v, start, start + 86_400 * 10**9 - 1)
    else:
        times = overpass_times_utc(dayidx, lon, window.overpass_hours)
        half = int(round(window.half_window_h * 3600e9))
        s, c = _window_sums(t_ns, v, _ns(times) - half, _ns(times) + half)
        k = len(window.overpass_hours)
        s, c = s.reshape(-1, k).sum(axis=1), c.reshape(-1, k).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(c >= max(1, window.min_count), s / np.maximum(c, 1), np.nan)
    return pd.DataFrame({"sm": sm, "count": c}, index=dayidx)


def daily_from_observations(obs: pd.Series, insitu: pd.Series,
                            half_window_h: float = 1.0) -> pd.DataFrame:
    """Daily pairs from a satellite with exact observation times (ASCAT).

    Each observation is matched with the station mean within ``+-half_window_h`` of its
    own time; then observations and their station values are pooled per UTC day (the
    station value of a day is the mean over all hourly values matched on that day).

    Parameters
    ----------
    obs : pandas.Series
        Satellite values on their observation times (naive = UTC).
    insitu : pandas.Series
        Quality-controlled station values (:func:`good_values`).

    Returns
    -------
    pandas.DataFrame
        Indexed by naive UTC day (``time``); ``sat`` (daily mean of the observations that
        have a station partner and those that do not), ``insitu``, ``count``.
    """
    obs = obs.dropna()
    if obs.empty:
        idx = pd.DatetimeIndex([], name="time")
        return pd.DataFrame({"sat": pd.Series(dtype=float, index=idx),
                             "insitu": pd.Series(dtype=float, index=idx),
                             "count": pd.Series(dtype=np.int64, index=idx)})
    tidx = to_utc_index(obs.index)
    matched = insitu_at_times(insitu, tidx, half_window_h)
    day = tidx.tz_localize(None).normalize()
    frame = pd.DataFrame({"sat": obs.to_numpy(np.float64),
                          "sum": np.where(matched["count"] > 0,
                                          matched["sm"].to_numpy() * matched["count"], 0.0),
                          "count": matched["count"].to_numpy()}, index=day)
    g = frame.groupby(level=0)
    out = pd.DataFrame({"sat": g["sat"].mean(), "sum": g["sum"].sum(), "count": g["count"].sum()})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["insitu"] = np.where(out["count"] > 0, out["sum"] / out["count"].clip(lower=1),
                                 np.nan)
    out.index = pd.DatetimeIndex(out.index, name="time")
    return out[["sat", "insitu", "count"]]


def cell_mean(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The mean of several stations' daily in-situ frames in one cell (``sm``, ``count``).

    A day's value is the mean of the stations that have a value that day (each station
    weighted equally); ``count`` is the total number of hourly values behind it.
    """
    if not frames:
        raise ValueError("no station frames to average")
    sm = pd.concat([f["sm"] for f in frames], axis=1)
    cnt = pd.concat([f["count"] for f in frames], axis=1).fillna(0).sum(axis=1)
    return pd.DataFrame({"sm": sm.mean(axis=1, skipna=True), "count": cnt.astype(np.int64)})
