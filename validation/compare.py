"""Comparisons of satellite, gap-filled and model series with in-situ stations.

Pure functions for the app and the CLI, all working on a *source* (see
:mod:`validation.sources`) that knows the stations and the satellite series at their cells:

* :func:`station_timeseries`: the aligned daily series of one station (in-situ value of
  each day with its hourly count, and every compared series);
* :func:`station_stats`: one row of metrics per compared series of one station;
* :func:`network_table` / :func:`network_frames`: all stations' rows (and frames).

The settings, series and source they work on are :mod:`validation.protocol` (their names
are reachable from here too), the network summary (medians, the relative change of the
median R from the raw to the filled series, the paper's "+26 %") :mod:`validation.summary`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from validation import collocation as co
from validation import metrics as mx
from validation import tcol
from validation.protocol import FILLED, INSITU, SatSeries, Settings, Source

log = logging.getLogger(__name__)

#: Columns of a row before the headline metrics, and after the other metrics.
ROW_ID_KEYS = ("station", "network", "lat", "lon", "series")
ROW_TAIL_KEYS = ("scaling", "cell_lat", "cell_lon", "distance_km", "insitu_hours", "note")


def row_keys() -> tuple[str, ...]:
    """Columns of a station-stats row: the headline metrics first (as in JSON rows), the
    status, the other metrics (:data:`validation.metrics.METRICS`), where the values are
    from."""
    return (*ROW_ID_KEYS, *mx.names(headline=True), "status", "tc_status",
            *mx.names(headline=False), *ROW_TAIL_KEYS)


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
            if s.sd is not None:  # the series' own error SD (filled_sm_uncertainty)
                frame[f"{s.name}_sd"] = s.sd.reindex(days).to_numpy(np.float64)
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
        Columns :func:`row_keys` (plus bootstrap bounds with ``settings.n_boot``); the
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
    tc = tcol.station_tcol(frame, INSITU, FILLED)
    for r in rows:  # triple collocation: the error SD of each member of the triplet
        member = r["series"] in tc["members"]
        r["tc_sd"] = tc["members"].get(r["series"], np.nan)
        r["tc_sd_insitu"] = tc.get("insitu", np.nan) if member else np.nan
        r["tc_n"] = tc["n"] if member else np.nan
        r["tc_status"] = tc["status"] if member or not tc["members"] else ""
        r["sd_mean"] = tcol.mean_sd(frame, r["series"], tc)
    keys = row_keys()
    cols = list(keys) + [c for r in rows for c in r if c not in keys]
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
        return pd.DataFrame(columns=list(row_keys())), frames
    return pd.concat(parts, ignore_index=True), frames


def network_table(source: Source, settings: Settings | None = None,
                  station_ids: Iterable[str] | None = None, *, cell_mean: bool = False,
                  progress: bool = False) -> pd.DataFrame:
    """Per-station rows of every compared series (see :func:`network_frames`)."""
    return network_frames(source, settings, station_ids, cell_mean=cell_mean,
                          progress=progress)[0]
