"""Collocation: space, depth and time, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_catalog import schema
from validation import collocation as co


def _hourly(start: str = "2018-03-01", days: int = 2, tz: str | None = "UTC") -> pd.DataFrame:
    """Hourly values equal to the hour count since ``start`` (0, 1, 2, ...), all flag G."""
    idx = pd.date_range(start, periods=24 * days, freq="h", tz=tz, name="time")
    return pd.DataFrame({"sm": np.arange(24 * days, dtype=float), "flag": "G"}, index=idx)


def test_nearest_cell_and_distance():
    lat = schema.grid_centres(19.0, 21.0)
    lon = schema.grid_centres(-156.0, -155.0)
    m = co.nearest_cell(19.765, -155.4234, lat, lon)
    assert (m.lat, m.lon) == (19.875, -155.375)
    assert m.i == 3 and m.j == 2
    # hand-computed: 0.11 deg of latitude and 0.0484 deg of longitude at 19.8 N
    dy = 0.11 * np.pi / 180 * co.EARTH_RADIUS_KM
    dx = 0.0484 * np.pi / 180 * co.EARTH_RADIUS_KM * np.cos(np.radians(19.82))
    assert m.distance_km == pytest.approx(np.hypot(dx, dy), rel=1e-3)
    # the cell containing a point is the nearest centre, also across the dateline
    w = co.nearest_cell(0.1, 179.99, [0.125], [-179.875, 179.875])
    assert w.lon == 179.875
    k, d = co.nearest_point(19.8, -155.33, [19.0, 19.875, 20.0], [-155.0, -155.375, -156.0])
    assert k == 1 and d < 10


def test_stations_by_cell_groups_neighbours():
    table = pd.DataFrame({"id": ["a", "b", "c"], "lat": [19.765, 19.767, 20.1],
                          "lon": [-155.4234, -155.417, -155.517]})
    groups = co.stations_by_cell(table, schema.grid_centres(19, 21),
                                 schema.grid_centres(-156, -155))
    assert sorted(groups.values(), key=len) == [["c"], ["a", "b"]]


def test_select_depth_keeps_surface_sensors():
    t = pd.DataFrame({"id": list("abcd"), "depth_from": [0.0, 0.0508, 0.2, 0.1],
                      "depth_to": [0.17, 0.0508, 0.2, 0.1]})
    assert co.select_depth(t)["id"].tolist() == ["a", "b", "d"]
    assert co.select_depth(t, top=(0.15, 0.3))["id"].tolist() == ["c"]


def test_overpass_window_hand_computed_at_greenwich():
    # lon 0: local solar time = UTC; 01:30 +-1 h -> hours 1, 2; 13:30 +-1 h -> hours 13, 14
    out = co.insitu_for_days(_hourly(), ["2018-03-01", "2018-03-02"], lon=0.0)
    assert out.loc["2018-03-01", "sm"] == pytest.approx((1 + 2 + 13 + 14) / 4)
    assert out.loc["2018-03-01", "count"] == 4
    assert out.loc["2018-03-02", "sm"] == pytest.approx((25 + 26 + 37 + 38) / 4)
    one = co.insitu_for_days(_hourly(), ["2018-03-01"], lon=0.0,
                             window=co.TemporalWindow(overpass_hours=(1.5,)))
    assert one["sm"].iloc[0] == 1.5 and one["count"].iloc[0] == 2
    # the window bounds are inclusive: +-0.5 h around 01:30 takes hours 1 and 2
    narrow = co.insitu_for_days(_hourly(), ["2018-03-01"], lon=0.0,
                                window=co.TemporalWindow(overpass_hours=(1.5,), half_window_h=0.5))
    assert narrow["count"].iloc[0] == 2


def test_overpass_window_west_and_flags():
    # lon -150: LST = UTC - 10 h, so 01:30 LST = 11:30 UTC (hours 11, 12) and
    # 13:30 LST = 23:30 UTC (hour 23 and 00 UTC of the next day = hour 24)
    df = _hourly()
    out = co.insitu_for_days(df, ["2018-03-01"], lon=-150.0)
    assert out["sm"].iloc[0] == pytest.approx((11 + 12 + 23 + 24) / 4)
    bad = df.copy()
    bad.iloc[12, bad.columns.get_loc("flag")] = "D05"
    bad.iloc[11, bad.columns.get_loc("flag")] = "G,D04"
    out = co.insitu_for_days(bad, ["2018-03-01"], lon=-150.0)
    assert out["sm"].iloc[0] == pytest.approx((23 + 24) / 2) and out["count"].iloc[0] == 2
    # a day without any good value has no in-situ value, but keeps its row
    out = co.insitu_for_days(df, ["2018-03-05"], lon=-150.0)
    assert np.isnan(out["sm"].iloc[0]) and out["count"].iloc[0] == 0
    # min_count
    out = co.insitu_for_days(bad, ["2018-03-01"], lon=-150.0,
                             window=co.TemporalWindow(min_count=3))
    assert np.isnan(out["sm"].iloc[0])


def test_daily_mean_is_the_utc_day():
    out = co.insitu_for_days(_hourly(), ["2018-03-01", "2018-03-02"], lon=-150.0,
                             window=co.TemporalWindow(mode="daily"))
    assert out["sm"].tolist() == [11.5, 35.5]
    assert out["count"].tolist() == [24, 24]
    with pytest.raises(ValueError, match="window mode"):
        co.TemporalWindow(mode="weekly")


def test_time_zones_are_converted_to_utc():
    utc = _hourly()
    # the same instants, labelled in Hawaii time (UTC-10) ...
    hst = utc.tz_convert("Pacific/Honolulu")
    # ... and as naive UTC
    naive = utc.tz_localize(None)
    days = pd.DatetimeIndex(["2018-03-01"])
    ref = co.insitu_for_days(utc, days, lon=-155.0)
    pd.testing.assert_frame_equal(co.insitu_for_days(hst, days, lon=-155.0), ref)
    pd.testing.assert_frame_equal(co.insitu_for_days(naive, days, lon=-155.0), ref)
    # tz-aware days are fine too and the result is indexed by naive UTC days
    aware = co.insitu_for_days(utc, days.tz_localize("UTC"), lon=-155.0)
    pd.testing.assert_frame_equal(aware, ref)
    assert ref.index.tz is None
    # naive local times are NOT UTC: shifting the labels by 10 h shifts the answer
    wrong = hst.tz_localize(None)
    assert co.insitu_for_days(wrong, days, lon=-155.0)["sm"].iloc[0] != ref["sm"].iloc[0]


def test_insitu_at_times_and_daily_from_observations():
    vals = co.good_values(_hourly())
    times = pd.DatetimeIndex(["2018-03-01 09:40", "2018-03-01 20:10", "2018-03-02 09:00"])
    out = co.insitu_at_times(vals, times, half_window_h=1.0)
    # 09:40 +-1h -> 9, 10; 20:10 +-1h -> 20, 21; 09:00 next day +-1h -> 32, 33, 34
    assert out["sm"].tolist() == [9.5, 20.5, 33.0]
    assert out["count"].tolist() == [2, 2, 3]
    obs = pd.Series([0.1, 0.3, 0.2], index=times)
    daily = co.daily_from_observations(obs, vals)
    assert daily.loc["2018-03-01", "sat"] == pytest.approx(0.2)
    assert daily.loc["2018-03-01", "insitu"] == pytest.approx((9 + 10 + 20 + 21) / 4)
    assert daily.loc["2018-03-02", "count"] == 3
    assert co.daily_from_observations(obs.iloc[:0], vals).empty


def test_cell_mean_of_stations():
    idx = pd.date_range("2018-01-01", periods=3, name="time")
    a = pd.DataFrame({"sm": [0.1, np.nan, 0.3], "count": [2, 0, 2]}, index=idx)
    b = pd.DataFrame({"sm": [0.3, 0.2, np.nan], "count": [4, 4, 0]}, index=idx)
    out = co.cell_mean([a, b])
    assert out["sm"].tolist() == pytest.approx([0.2, 0.2, 0.3])
    assert out["count"].tolist() == [6, 4, 2]
