"""What a catalog source holds at one point on one day (``gapfill catalog show``).

:func:`describe_point` answers in canonical units with the gap category, the sensor and
the grid cell (or the nearest station's daily mean) for grids, point products, station
sources and kits; :meth:`data_catalog.catalog.Source.describe_point` calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from data_catalog import grid, schema
from data_catalog.errors import GapfillError, OutOfRangeError

if TYPE_CHECKING:
    from data_catalog.catalog import Source

SM_VARIABLES = (schema.AMSR_SM, schema.FILLED_SM, schema.COMBINED_SM, schema.ASCAT_SM,
                schema.TRUTH_SM)
GAP_NAMES = {f.value: f.meaning for f in schema.GAP_FLAGS}
SENSOR_NAMES = {f.value: f.label for f in schema.SENSOR_FLAGS}


def _as_date(date) -> pd.Timestamp:
    try:
        t = pd.Timestamp(date)
    except (ValueError, TypeError) as exc:
        raise OutOfRangeError(f"date {date!r} is not YYYY-MM-DD") from exc
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.normalize()


def _check_point(lat: float, lon: float) -> tuple[float, float]:
    if not (np.isfinite(lat) and np.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 360):
        raise OutOfRangeError(f"point ({lat}, {lon}) is not a valid latitude, longitude")
    return float(lat), float(((lon + 180.0) % 360.0) - 180.0)


def _grid_point(src: Source, date: pd.Timestamp, lat: float, lon: float) -> dict:
    kw: dict[str, Any] = {}
    if src.driver == "cci_images" or (src.driver == "lprm" and "paths" in src.args):
        kw["date"] = date
    if src.driver in ("cci_images", "lprm"):
        # read a 2 x 2 degree window only, not the whole globe; an all-gap window is an
        # answer here (the gap categories say why), not an error
        kw["require_data"] = False
        kw["region"] = tuple(round(v, 4) for v in (max(lon - 1, -180), max(lat - 1, -90),
                                                   min(lon + 1, 180), min(lat + 1, 90)))
    ds = src.open(**kw)
    times = pd.DatetimeIndex(ds[schema.TIME].values)
    if date not in times:
        raise OutOfRangeError(f"{src.name}: no data on {date:%Y-%m-%d} (holds "
                              f"{times.min():%Y-%m-%d}..{times.max():%Y-%m-%d})")
    lats, lons = ds[schema.LAT].values, ds[schema.LON].values
    w, s, e, n = grid.bounds(lats, lons)
    if not (s <= lat <= n and w <= lon <= e):
        raise OutOfRangeError(f"{src.name}: point ({lat}, {lon}) is outside the grid "
                              f"(lat {lats.min():.3f}..{lats.max():.3f}, "
                              f"lon {lons.min():.3f}..{lons.max():.3f})")
    px = ds.sel({schema.TIME: date}).sel({schema.LAT: lat, schema.LON: lon},
                                         method="nearest")
    clat, clon = float(px[schema.LAT]), float(px[schema.LON])
    from data_catalog.readers._netcdf import haversine_km

    row: dict[str, Any] = {
        "source": src.name, "date": f"{date:%Y-%m-%d}", "lat": lat, "lon": lon,
        "cell_lat": clat, "cell_lon": clon,
        "distance_km": round(float(haversine_km(lat, lon, clat, clon)), 3),
    }
    primary = src.metadata.get("variable") or next(
        (v for v in SM_VARIABLES if v in ds), None)
    values = {}
    for v in SM_VARIABLES:
        if v in ds:
            x = float(px[v].values)
            values[v] = {"value": None if np.isnan(x) else round(x, 5),
                         "units": ds[v].attrs.get("units")}
    row["variable"] = primary
    row["value"] = values.get(primary, {}).get("value")
    row["units"] = values.get(primary, {}).get("units")
    row["values"] = values
    if schema.GAP_MASK in ds:
        g = int(px[schema.GAP_MASK].values)
        row["gap_category"] = GAP_NAMES.get(g, str(g))
    if schema.SENSOR in px.coords:
        row["sensor"] = SENSOR_NAMES.get(int(px[schema.SENSOR].values), "?")
    if "sensor_bits" in ds:
        from data_catalog.readers._netcdf import sensor_names

        row["sensor_bits"] = sensor_names(int(px["sensor_bits"].values))
    return row


def _cell_point(src: Source, date: pd.Timestamp, lat: float, lon: float) -> dict:
    from data_catalog.readers._netcdf import CCI_SENSOR_BITS, decode_flags, schema_sensor
    from data_catalog.readers._netcdf import sensor_names as names_of

    df = src.open(lat=lat, lon=lon, start=date, end=date)
    day = df.loc[df.index.normalize() == date.tz_localize("UTC")]
    sm = day["sm"].dropna()
    row: dict[str, Any] = {
        "source": src.name, "date": f"{date:%Y-%m-%d}", "lat": lat, "lon": lon,
        "cell_lat": round(df.attrs["lat"], 5), "cell_lon": round(df.attrs["lon"], 5),
        "gpi": df.attrs["gpi"], "distance_km": round(df.attrs["distance_km"], 3),
        "variable": "sm", "units": df.attrs["units"],
        "value": round(float(sm.mean()), 5) if len(sm) else None,
        "n_obs": int(len(sm)),
    }
    if len(sm) > 1:
        row["obs_times"] = [t.strftime("%H:%M") for t in sm.index]
    if "flag" in day and len(day):
        flag = int(pd.to_numeric(day["flag"], errors="coerce").fillna(0).iloc[0])
        cci_bits = {1: "frozen", 2: "dense_vegetation", 4: "others", 8: "exceeds_boundary",
                    16: "weight_below_threshold", 32: "all_unreliable", 64: "barren"}
        cat = 0 if len(sm) else int(decode_flags(np.array([flag]), cci_bits)[0]) or \
            schema.NO_OVERPASS
        row["gap_category"] = GAP_NAMES[cat]
        row["flag"] = flag
    elif not len(sm):
        row["gap_category"] = GAP_NAMES[schema.NO_OVERPASS if day.empty else schema.INVALID]
    else:
        row["gap_category"] = GAP_NAMES[schema.OBSERVED]
    if "sensor" in day and len(day):
        bits = int(pd.to_numeric(day["sensor"], errors="coerce").fillna(0).iloc[0])
        row["sensor"] = SENSOR_NAMES[schema_sensor(bits)]
        row["sensor_bits"] = names_of(bits, CCI_SENSOR_BITS)
    return row


def _station_point(src: Source, date: pd.Timestamp, lat: float, lon: float) -> dict:
    from data_catalog.readers._netcdf import haversine_km
    from data_catalog.readers.ismn import daily_mean

    table, series = src.open()
    d = haversine_km(lat, lon, table["lat"].to_numpy(float), table["lon"].to_numpy(float))
    key = date.tz_localize("UTC")

    def station_row(k: int) -> dict:
        st = table.iloc[k]
        daily = daily_mean(series[st["id"]])
        val, n = ((float(daily.loc[key, "sm"]), int(daily.loc[key, "count"]))
                  if key in daily.index else (np.nan, 0))
        idx = series[st["id"]].index
        return {"station": st["id"], "station_name": st["name"], "network": st["network"],
                "station_lat": float(st["lat"]), "station_lon": float(st["lon"]),
                "distance_km": round(float(d[k]), 3),
                "depth_m": [float(st["depth_from"]), float(st["depth_to"])],
                "station_period": ([f"{idx.min():%Y-%m-%d}", f"{idx.max():%Y-%m-%d}"]
                                   if len(idx) else None),
                "value": None if np.isnan(val) else round(val, 5), "n_obs": n}

    order = np.argsort(d)
    row = {"source": src.name, "date": f"{date:%Y-%m-%d}", "lat": lat, "lon": lon,
           **station_row(int(order[0])), "variable": "sm", "units": "m3 m-3",
           "aggregation": "daily mean (UTC) of good-flag values"}
    if row["value"] is None:  # say where the nearest value that day is
        for k in order[1:]:
            other = station_row(int(k))
            if other["value"] is not None:
                row["nearest_with_data"] = other
                break
    return row


def describe_point(src: Source, date, lat: float, lon: float) -> list[dict]:
    """What ``src`` holds on ``date`` at ``(lat, lon)``: value with units, gap category,
    sensor, grid cell centre and distance (grids, cells), or the nearest station's daily
    mean (stations). A kit gives one row per member (members that fail give an ``error``).
    """
    t = _as_date(date)
    lat, lon = _check_point(float(lat), float(lon))
    if src.driver == "kit":
        rows = []
        for role, member in src.members().items():
            try:
                rows += [{**r, "role": role} for r in describe_point(member, t, lat, lon)]
            except GapfillError as exc:  # one member's gap must not hide the others
                rows.append({"source": member.name, "role": role, "date": f"{t:%Y-%m-%d}",
                             "lat": lat, "lon": lon, "error": str(exc)})
        return rows
    kind = src.kind
    if kind == "grid":
        return [_grid_point(src, t, lat, lon)]
    if kind == "point":
        return [_cell_point(src, t, lat, lon)]
    return [_station_point(src, t, lat, lon)]
