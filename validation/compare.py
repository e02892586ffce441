"""Comparisons of satellite, gap-filled and model series with in-situ stations.

Pure functions for the app and the CLI, all working on a *source* (see
:mod:`validation.sources`) that knows the stations and the satellite series at their cells:

* :func:`station_timeseries`: the aligned daily series of one station (in-situ value of
  each day with its hourly count, and every compared series);
* :func:`station_stats`: one row of metrics per compared series of one station;
* :func:`network_table`: all stations' rows;
* :func:`summarize`: medians per series and the relative change of the median R from the
  raw to the filled series (the paper's "+26 %").

Series names: ``raw`` (AMSR on observed days), ``filled`` (the gap-filled series on all
days), ``filled_gaps`` (the filled series on gap days only), ``ascat`` (scaled to the
station), ``truth`` (demo world) and product names for real kits (``cci_passive``,
``ascat_h119``, ``cci_gapfilled``, ``cci_gapfilled_gaps``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from validation import collocation as co
from validation import metrics as mx

log = logging.getLogger(__name__)

RAW, FILLED, FILLED_GAPS, ASCAT, TRUTH = "raw", "filled", "filled_gaps", "ascat", "truth"
INSITU = "insitu"

#: Columns of a station-stats row, in order (JSON rows use :data:`JSON_KEYS`).
ROW_KEYS = ("station", "network", "lat", "lon", "series", "n", "r", "rmse", "ubrmse", "bias",
            "status", "p_r", "r_ci_lower", "r_ci_upper", "rho", "p_rho", "r_anom",
            "scaling", "cell_lat", "cell_lon", "distance_km", "insitu_hours", "note")
JSON_KEYS = ("station", "network", "lat", "lon", "series", "n", "r", "rmse", "ubrmse", "bias",
             "status")


# ---------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Everything that changes a validation result.

    Attributes
    ----------
    window : TemporalWindow
        How hourly station values are averaged per satellite day.
    depth : tuple of float
        Accepted range of the sensor top, m (surface: 0-0.10 m).
    min_n : int
        Fewest pairs for metrics (fewer: ``INSUFFICIENT_DATA``).
    scaling : {"none", "mean_std", "cdf_match"}
        Scaling of volumetric series to the station before RMSE/ubRMSE/bias.
    ascat_scaling : {"mean_std", "cdf_match"}
        Scaling of series in percent of saturation (ASCAT), which must be scaled.
    anomaly_window : float or None
        Moving-window length (days) for the anomaly correlation; None skips it.
    n_boot : int
        Bootstrap resamples for CIs (0: analytical CIs only).
    start, end : str or None
        Period (inclusive days, UTC).
    ascat_half_window_h : float
        Half window (h) around each ASCAT observation time (exact-time series; with
        ``window.mode == "daily"`` these are daily means on both sides instead).
    """

    window: co.TemporalWindow = field(default_factory=co.TemporalWindow)
    depth: tuple[float, float] = co.SURFACE_DEPTH_M
    min_n: int = mx.DEFAULT_MIN_N
    scaling: str = "none"
    ascat_scaling: str = "mean_std"
    anomaly_window: float | None = mx.ANOMALY_WINDOW_DAYS
    n_boot: int = 0
    start: str | None = None
    end: str | None = None
    ascat_half_window_h: float = 1.0

    def __post_init__(self):
        if self.scaling not in mx.SCALINGS:
            raise ValueError(f"scaling {self.scaling!r}: expected one of {mx.SCALINGS}")
        if self.ascat_scaling not in mx.SCALINGS[1:]:
            raise ValueError(f"ascat_scaling {self.ascat_scaling!r}: expected one of "
                             f"{mx.SCALINGS[1:]}")
        if self.min_n < 1:
            raise ValueError(f"min_n {self.min_n} must be >= 1")
        if self.start is not None and self.end is not None and \
                pd.Timestamp(self.start) > pd.Timestamp(self.end):
            from data_catalog.errors import OutOfRangeError

            raise OutOfRangeError(f"period start {self.start} is after its end {self.end}",
                                  variable="time")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["window"] = asdict(self.window)
        return d


# ---------------------------------------------------------------- series and sources
@dataclass
class SatSeries:
    """One compared series at one station's cell.

    Attributes
    ----------
    name : str
        Series name (``raw``, ``filled``, ``ascat``, a product name, ...).
    values : pandas.Series
        Daily values on naive UTC days (00:00), or values at exact observation times
        (``exact_times``); NaN where missing.
    exact_times : bool
        True for sub-daily observations (ASCAT swaths): each is matched with the station
        around its own time, then pooled per UTC day.
    saturation : bool
        True when the values are in percent of saturation (always scaled to the station).
    status : str or None
        ``NO_DATA`` / ``NO_MODEL`` when the series could not be made (``values`` empty).
    cell_lat, cell_lon, distance_km : float
        The matched grid cell and its distance from the station.
    note : str
        Free text for the report (why a status, which file).
    parent : str or None
        For a subset series (``filled_gaps``), the full series it is cut from: anomalies
        for ``r_anom`` are taken from the full series.
    """

    name: str
    values: pd.Series
    exact_times: bool = False
    saturation: bool = False
    status: str | None = None
    cell_lat: float = np.nan
    cell_lon: float = np.nan
    distance_km: float = np.nan
    note: str = ""
    parent: str | None = None


class Source(Protocol):
    """What the comparisons need from a data source (see :mod:`validation.sources`)."""

    name: str
    #: the (from, to) series of the relative change in median R
    change_pair: tuple[str, str]

    def stations(self) -> pd.DataFrame:
        """Station table (:data:`data_catalog.schema.STATION_COLUMNS`)."""

    def insitu(self, station_id: str) -> pd.DataFrame:
        """Hourly station frame (``sm``, ``flag``) on a UTC index."""

    def satellite(self, station: pd.Series, settings: Settings) -> list[SatSeries]:
        """The compared series at the station's cell."""


def select_stations(source: Source, settings: Settings,
                    station_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The station table after the depth filter and an optional id selection.

    Raises
    ------
    data_catalog.errors.EmptySelectionError
        When requested ids are unknown.
    """
    table = source.stations()
    if station_ids is not None:
        ids = [str(s) for s in station_ids]
        unknown = sorted(set(ids) - set(table["id"].astype(str)))
        if unknown:
            from data_catalog.errors import EmptySelectionError

            raise EmptySelectionError(
                f"unknown station id(s) {', '.join(unknown)}; known: "
                f"{', '.join(table['id'].astype(str))}", variable="station")
        table = table[table["id"].astype(str).isin(ids)]
    kept = co.select_depth(table, settings.depth)
    dropped = len(table) - len(kept)
    if dropped:
        log.info("%d station sensor(s) outside the depth range %s m left out", dropped,
                 settings.depth)
    return kept


def _station_row(source: Source, station_id: str) -> pd.Series:
    table = source.stations()
    hit = table[table["id"].astype(str) == str(station_id)]
    if hit.empty:
        from data_catalog.errors import EmptySelectionError

        raise EmptySelectionError(f"unknown station id {station_id!r}", variable="station")
    return hit.iloc[0]


def _period(settings: Settings, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if settings.start is not None:
        index = index[index >= pd.Timestamp(settings.start)]
    if settings.end is not None:
        index = index[index <= pd.Timestamp(settings.end)]
    return index


def _daily_index(series: Sequence[SatSeries], settings: Settings) -> pd.DatetimeIndex:
    days = pd.DatetimeIndex([], name="time")
    for s in series:
        if len(s.values):
            idx = co.to_naive_utc(s.values.index).normalize()
            days = days.union(pd.DatetimeIndex(idx.unique()))
    if settings.start is not None and settings.end is not None:
        days = days.union(pd.date_range(settings.start, settings.end, freq="D"))
    return _period(settings, days.rename("time"))


# ---------------------------------------------------------------- per station
def station_timeseries(source: Source, station_id: str,
                       settings: Settings | None = None) -> pd.DataFrame:
    """The aligned daily series of one station.

    Parameters
    ----------
    source : Source
        Where the station and the satellite series come from.
    station_id : str
        Station id (``table["id"]``).
    settings : Settings, optional

    Returns
    -------
    pandas.DataFrame
        Indexed by naive UTC day ``time``; ``insitu`` (station value per the temporal
        window) and ``insitu_count`` (hourly values behind it), one column per compared
        series and, for exact-time series (ASCAT), their own ``insitu_<name>`` and
        ``insitu_<name>_count``.  ``attrs``: ``station`` (the table row as a dict),
        ``series`` (name -> dict of cell, distance, status, note, flags).
    """
    settings = settings or Settings()
    row = _station_row(source, station_id)
    hourly = source.insitu(str(row["id"]))
    sats = source.satellite(row, settings)
    days = _daily_index(sats, settings)
    ins = co.insitu_for_days(hourly, days, float(row["lon"]), settings.window)
    frame = pd.DataFrame({INSITU: ins["sm"], f"{INSITU}_count": ins["count"]}, index=days)
    meta = {}
    good = None
    for s in sats:
        if s.exact_times and settings.window.mode == "daily":
            # daily means on both sides: pool the observations per UTC day
            v = s.values.dropna()
            v = v.groupby(co.to_naive_utc(v.index).normalize()).mean()
            s = SatSeries(**{**s.__dict__, "values": v, "exact_times": False})
        meta[s.name] = {"status": s.status, "exact_times": s.exact_times,
                        "saturation": s.saturation, "cell_lat": s.cell_lat,
                        "cell_lon": s.cell_lon, "distance_km": s.distance_km, "note": s.note,
                        "parent": s.parent}
        if s.exact_times:
            if good is None:
                good = co.good_values(hourly, settings.window.flags)
            daily = co.daily_from_observations(s.values, good, settings.ascat_half_window_h)
            daily = daily.reindex(days)
            frame[s.name] = daily["sat"]
            frame[f"{INSITU}_{s.name}"] = daily["insitu"]
            frame[f"{INSITU}_{s.name}_count"] = daily["count"].fillna(0).astype(np.int64)
        else:
            v = s.values
            if len(v):
                v = pd.Series(v.to_numpy(np.float64), index=co.to_naive_utc(v.index).normalize())
                v = v[~v.index.duplicated()]
            frame[s.name] = v.reindex(days).astype(np.float64) if len(v) else np.nan
    frame.index.name = "time"
    frame.attrs = {"station": {k: _plain(v) for k, v in row.items()}, "series": meta,
                   "source": source.name}
    return frame


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def station_stats(source: Source, station_id: str, settings: Settings | None = None,
                  frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Metrics of every compared series of one station (one row per series).

    Parameters
    ----------
    source, station_id, settings
        As for :func:`station_timeseries`.
    frame : pandas.DataFrame, optional
        A frame from :func:`station_timeseries` (computed when absent).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ROW_KEYS` (plus bootstrap bounds with ``settings.n_boot``); the
        status says ``OK``, ``INSUFFICIENT_DATA``, ``NO_OVERLAP``, ``NO_DATA`` or
        ``NO_MODEL``.
    """
    settings = settings or Settings()
    if frame is None:
        frame = station_timeseries(source, station_id, settings)
    st = frame.attrs["station"]
    rows = []
    for name, meta in frame.attrs["series"].items():
        ref_col = f"{INSITU}_{name}" if meta["exact_times"] else INSITU
        cnt_col = f"{ref_col}_count"
        base = {"station": str(st["id"]), "network": st.get("network"),
                "lat": float(st["lat"]), "lon": float(st["lon"]), "series": name,
                "cell_lat": meta["cell_lat"], "cell_lon": meta["cell_lon"],
                "distance_km": meta["distance_km"]}
        scaling = settings.ascat_scaling if meta["saturation"] else settings.scaling
        if meta["status"] is not None:
            res = mx.empty_result(meta["status"])
            hours = 0
        else:
            x, y = frame[name], frame[ref_col]
            parent = meta.get("parent")
            anom_base = (frame[parent] if parent in frame else None, None)
            res = mx.compute_metrics(x, y, min_n=settings.min_n, scaling=scaling,
                                     anomaly_window=settings.anomaly_window,
                                     anomaly_base=anom_base, n_boot=settings.n_boot)
            both = x.notna() & y.notna()
            hours = int(frame.loc[both, cnt_col].sum()) if cnt_col in frame else 0
        rows.append({**base, **res, "scaling": scaling, "insitu_hours": hours,
                     "note": meta.get("note") or ""})
    cols = list(ROW_KEYS) + [c for r in rows for c in r if c not in ROW_KEYS]
    return pd.DataFrame(rows).reindex(columns=list(dict.fromkeys(cols)))


def cell_groups(source: Source, settings: Settings,
                station_ids: Sequence[str]) -> list[list[str]]:
    """Station ids grouped by the satellite cell they fall in (first-seen order).

    The cell is that of the first daily (not exact-time) series with a position; stations
    without one stay alone.
    """
    groups: dict[tuple, list[str]] = {}
    for sid in station_ids:
        row = _station_row(source, sid)
        key: tuple = ("alone", sid)
        for s in source.satellite(row, settings):
            if not s.exact_times and np.isfinite(s.cell_lat) and np.isfinite(s.cell_lon):
                key = (round(float(s.cell_lat), 6), round(float(s.cell_lon), 6))
                break
        groups.setdefault(key, []).append(str(sid))
    return list(groups.values())


def cell_timeseries(source: Source, station_ids: Sequence[str],
                    settings: Settings | None = None) -> pd.DataFrame:
    """Like :func:`station_timeseries` for several stations in one cell: their mean.

    Each station is matched in time on its own; a day's in-situ value is the mean of the
    stations with a value that day (:func:`validation.collocation.cell_mean`), the counts
    add up.  The station entry of ``attrs`` gets the joined ids (``A+B``) and the mean
    position.
    """
    settings = settings or Settings()
    frames = [station_timeseries(source, sid, settings) for sid in station_ids]
    if len(frames) == 1:
        return frames[0]
    days = frames[0].index
    for f in frames[1:]:
        days = days.union(f.index)
    frames = [f.reindex(days) for f in frames]
    out = frames[0].copy()
    for f in frames[1:]:  # satellite columns are the same cell: fill what the first lacks
        out = out.combine_first(f)
    refs = [c for c in out.columns if c == INSITU or (c.startswith(f"{INSITU}_")
                                                       and not c.endswith("_count"))]
    for col in refs:
        parts = [pd.DataFrame({"sm": f[col], "count": f[f"{col}_count"].fillna(0)})
                 for f in frames]
        mean = co.cell_mean(parts)
        out[col] = mean["sm"]
        out[f"{col}_count"] = mean["count"]
    out = out[frames[0].columns]
    rows = [f.attrs["station"] for f in frames]
    station = dict(rows[0])
    station.update({"id": "+".join(str(r["id"]) for r in rows),
                    "network": "+".join(dict.fromkeys(str(r.get("network")) for r in rows)),
                    "name": "+".join(str(r.get("name", r["id"])) for r in rows),
                    "lat": float(np.mean([r["lat"] for r in rows])),
                    "lon": float(np.mean([r["lon"] for r in rows])),
                    "members": [str(r["id"]) for r in rows]})
    out.index.name = "time"
    out.attrs = {"station": station, "series": frames[0].attrs["series"],
                 "source": frames[0].attrs.get("source")}
    return out


def network_frames(source: Source, settings: Settings | None = None,
                   station_ids: Iterable[str] | None = None, *, cell_mean: bool = False,
                   progress: bool = False) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The network table and the aligned daily frame of each station (or cell).

    Parameters
    ----------
    source : Source
    settings : Settings, optional
    station_ids : iterable of str, optional
        Subset of station ids (default: all stations passing the depth filter).
    cell_mean : bool
        Average the stations that share a satellite cell (one row per cell).
    progress : bool
        Show a tqdm bar over stations.

    Returns
    -------
    (pandas.DataFrame, dict)
        Rows as :func:`station_stats` in table order, and ``station id -> frame``.
    """
    settings = settings or Settings()
    table = select_stations(source, settings, station_ids)
    ids = table["id"].astype(str).tolist()
    groups = cell_groups(source, settings, ids) if cell_mean else [[i] for i in ids]
    if progress:
        from tqdm.auto import tqdm

        groups = tqdm(groups, desc="stations", unit="station")
    parts, frames = [], {}
    for group in groups:
        frame = cell_timeseries(source, group, settings)
        sid = str(frame.attrs["station"]["id"])
        frames[sid] = frame
        parts.append(station_stats(source, sid, settings, frame))
    if not parts:
        return pd.DataFrame(columns=list(ROW_KEYS)), frames
    return pd.concat(parts, ignore_index=True), frames


def network_table(source: Source, settings: Settings | None = None,
                  station_ids: Iterable[str] | None = None, *, cell_mean: bool = False,
                  progress: bool = False) -> pd.DataFrame:
    """Per-station rows of every compared series (see :func:`network_frames`)."""
    return network_frames(source, settings, station_ids, cell_mean=cell_mean,
                          progress=progress)[0]


# ---------------------------------------------------------------- summary
def medians(table: pd.DataFrame) -> pd.DataFrame:
    """Median metrics per series over the stations with status ``OK``.

    Returns a frame indexed by series with ``n_stations`` (OK rows), ``n_total`` and the
    medians of ``n``, ``r``, ``rho``, ``r_anom``, ``rmse``, ``ubrmse``, ``bias``.
    """
    cols = ["n", "r", "rho", "r_anom", "rmse", "ubrmse", "bias"]
    out = []
    for name, g in table.groupby("series", sort=False):
        ok = g[g["status"] == mx.OK]
        rec = {"series": name, "n_stations": len(ok), "n_total": len(g)}
        for c in cols:
            vals = pd.to_numeric(ok[c], errors="coerce").dropna()
            rec[c] = float(vals.median()) if len(vals) else np.nan
        out.append(rec)
    return pd.DataFrame(out, columns=["series", "n_stations", "n_total", *cols]
                        ).set_index("series")


def relative_change(table: pd.DataFrame, before: str, after: str,
                    metric: str = "r") -> float:
    """Relative change of the network median: ``(median_after - median_before) / |median_before|``.

    The medians are over the stations where both series have status ``OK`` (paired), so
    that a series with more stations does not shift the comparison.  NaN when no station
    has both.
    """
    ok = table[table["status"] == mx.OK]
    a = ok[ok["series"] == before].set_index("station")[metric]
    b = ok[ok["series"] == after].set_index("station")[metric]
    both = a.index.intersection(b.index)
    if not len(both):
        return np.nan
    ma, mb = float(a[both].median()), float(b[both].median())
    return (mb - ma) / abs(ma) if ma != 0 else np.nan


def summarize(table: pd.DataFrame, source: Source | None = None,
              settings: Settings | None = None,
              change_pair: tuple[str, str] | None = None) -> dict:
    """Network summary: medians per series and the relative change in median R.

    Returns
    -------
    dict
        ``source``, ``n_stations``, ``series`` (name -> medians), ``relative_change_median_r``
        (``from``, ``to``, ``value``, ``n_stations`` paired; None when the source has no
        such pair), ``statuses`` (counts) and ``settings``.
    """
    pair = change_pair if change_pair is not None else getattr(source, "change_pair",
                                                                (RAW, FILLED))
    med = medians(table) if len(table) else pd.DataFrame()
    series = {name: {k: _json_num(v) for k, v in rec.items()}
              for name, rec in med.to_dict(orient="index").items()}
    change = None
    if pair is not None:
        ok = table[table["status"] == mx.OK] if len(table) else table
        paired = 0
        if len(ok):
            paired = len(set(ok.loc[ok["series"] == pair[0], "station"])
                         & set(ok.loc[ok["series"] == pair[1], "station"]))
        value = relative_change(table, *pair) if len(table) else np.nan
        change = {"from": pair[0], "to": pair[1], "value": _json_num(value),
                  "n_stations": paired}
    return {
        "source": getattr(source, "name", None),
        "n_stations": int(table["station"].nunique()) if len(table) else 0,
        "series": series,
        "relative_change_median_r": change,
        "statuses": {k: int(v) for k, v in table["status"].value_counts().items()}
        if len(table) else {},
        "settings": settings.as_dict() if settings is not None else None,
    }


def _json_num(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    return v


def json_rows(table: pd.DataFrame) -> list[dict]:
    """The table as JSON-ready rows with exactly :data:`JSON_KEYS` (NaN -> None)."""
    out = []
    for rec in table.reindex(columns=list(JSON_KEYS)).to_dict(orient="records"):
        row = {k: _json_num(rec[k]) for k in JSON_KEYS}
        row["n"] = int(row["n"]) if row["n"] is not None else 0
        out.append(row)
    return out
