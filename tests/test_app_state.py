"""The explorer state validates every value from the browser (no browser needed)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.state import (
    MAX_CELLS,
    ExplorerState,
    GridInfo,
    load_presets,
    parse_date,
    parse_region,
    validate_region,
)
from data_catalog import schema


@pytest.fixture(scope="module")
def ds():
    with warnings.catch_warnings():  # the mock uses dayofyear, deprecated in pandas 3
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return schema.mock_grid_dataset(ntime=30, nlat=40, nlon=64, start="2015-06-01")


@pytest.fixture
def grid(ds):
    return GridInfo.from_dataset(ds)


@pytest.fixture
def state(grid):
    return ExplorerState(grid, stations=["A", "B"])


def test_grid_info(grid):
    assert grid.res == pytest.approx(0.25)
    assert grid.bounds == (-100.0, 30.0, -84.0, 40.0)
    assert grid.start == pd.Timestamp("2015-06-01") and grid.end == pd.Timestamp("2015-06-30")


def test_region_is_snapped_to_cell_edges(grid):
    box, msgs = validate_region((-99.9, 30.1, -95.05, 33.3), grid)
    assert box == (-100.0, 30.0, -95.0, 33.5)
    assert msgs == []


def test_region_is_clamped_and_reordered(grid):
    box, msgs = validate_region((-80.0, 45.0, -120.0, 20.0), grid)  # swapped and too large
    assert box == grid.bounds
    assert any("clamped" in m for m in msgs)


def test_region_outside_or_garbage_is_refused(grid):
    assert validate_region((10, 10, 20, 20), grid)[0] is None
    for bad in ("abc", (1, 2, 3), (np.nan, 30, -90, 35), (-99, 30, np.inf, 35), None):
        box, msgs = validate_region(bad, grid)
        assert box is None and msgs


def test_region_has_a_minimum_size(grid):
    box, _ = validate_region((-95.0, 35.0, -95.0, 35.0), grid)  # a point
    w, s, e, n = box
    assert round((e - w) / 0.25) == 4 and round((n - s) / 0.25) == 4


def test_region_area_is_capped(grid):
    box, msgs = validate_region(grid.bounds, grid, max_cells=100)
    w, s, e, n = box
    cells = round((e - w) / 0.25) * round((n - s) / 0.25)
    assert cells <= 100 and msgs
    assert MAX_CELLS >= 250 * 350  # a 0.25 degree continent fits


def test_dates_outside_the_record_are_refused(state):
    before = state.day
    msgs = state.request_date("2031-01-01")
    assert msgs and "outside the record" in msgs[0]
    assert state.day == before
    assert state.request_date("not a date") and state.day == before
    assert state.request_date("2015-06-20") == [] and state.day == pd.Timestamp("2015-06-20")


def test_step_date_stops_at_the_ends(state):
    state.request_date("2015-06-30")
    assert state.step_date(1) == []
    assert state.day == pd.Timestamp("2015-06-30")
    state.step_date(-3)
    assert state.day == pd.Timestamp("2015-06-27")


def test_date_param_is_bounded(state):
    with pytest.raises(ValueError):
        state.date = pd.Timestamp("1990-01-01").to_pydatetime()


def test_presets_load_and_apply(state):
    presets = load_presets()
    assert "demo" in presets and len(presets["demo"].bbox) == 4
    msgs = state.request_preset("southern_plains")
    assert state.preset == "southern_plains"
    assert state.region == (-100.0, 30.0, -94.0, 38.0), msgs
    assert state.request_preset("atlantis") and state.preset == "southern_plains"


def test_clim_validation(state):
    assert state.request_clim(0.3, 0.1)
    assert state.request_clim("x", 1)
    assert state.request_clim(-1, 0.4) == [] and state.clim == (0.0, 0.4)


def test_station_and_pixel_selection(state):
    assert state.request_station("ZZZ") and state.station == ""
    assert state.request_station("A") == [] and state.station == "A"
    assert state.request_pixel(35.1, -90.1) == []
    assert state.station == "" and state.pixel == (35.125, -90.125)
    assert state.request_pixel(80, 0) and state.has_pixel


def test_url_round_trip_and_bad_parameters(grid):
    a = ExplorerState(grid, stations=["A"])
    a.request_region((-98, 31, -92, 36))
    a.request_date("2015-06-12")
    a.request_station("A")
    q = a.to_query()
    b = ExplorerState(grid, stations=["A"])
    assert b.apply_query(q) == []
    assert (b.region, b.day, b.station) == (a.region, a.day, a.station)
    c = ExplorerState(grid, stations=["A"])
    default = (c.region, c.day)
    msgs = c.apply_query({"date": "2099-13-45", "region": "1,2,x", "source": "nope",
                          "station": "nobody"})
    assert len(msgs) == 4
    assert (c.region, c.day, c.station) == (*default, "")


def test_url_keeps_every_display_choice(grid):
    """Preset, gap toggle, checkpoint, colour limits and pixel survive a URL round trip;
    bad values of each are named and ignored."""
    ckpts = {"": "", "amsr2": "/x/amsr2.pt"}
    a = ExplorerState(grid, checkpoints=ckpts)
    a.request_preset("southern_plains")
    a.show_mask = False
    a.request_checkpoint("amsr2")
    a.request_clim(0.05, 0.45)
    a.request_pixel(35.1, -95.1)
    q = a.to_query()
    assert q["preset"] == "southern_plains" and q["mask"] == "0" and q["pixel"]
    b = ExplorerState(grid, checkpoints=ckpts)
    assert b.apply_query(q) == []
    assert (b.preset, b.region, b.show_mask, b.checkpoint, b.clim, b.pixel) == (
        a.preset, a.region, False, "/x/amsr2.pt", (0.05, 0.45), a.pixel)
    c = ExplorerState(grid, checkpoints=ckpts)
    msgs = c.apply_query({"preset": "atlantis", "mask": "maybe", "checkpoint": "/etc/x",
                          "clim": "0.1", "pixel": "a,b"})
    assert len(msgs) == 5, msgs
    assert (c.preset, c.show_mask, c.checkpoint, c.has_pixel) == ("custom", True, "", False)


def test_validation_window_choice_and_url(grid):
    a = ExplorerState(grid)
    assert a.window == 60 and a.to_query()["window"] == ""  # the default: not in the URL
    assert a.request_window("all") == [] and a.window == 0
    assert a.to_query()["window"] == "all"
    assert a.request_window("180") == [] and a.to_query()["window"] == "180"
    b = ExplorerState(grid)
    assert b.apply_query({"window": "all"}) == [] and b.window == 0
    for bad in ("17", "x" * 500, "nan", "-30"):
        msgs = b.request_window(bad)
        assert len(msgs) == 1 and "kept whole record" in msgs[0], (bad, msgs)
    assert b.window == 0
    assert len(b.apply_query({"window": "tomorrow"})) == 1


def test_parsers():
    assert parse_date("2015-06-01T12:30") == pd.Timestamp("2015-06-01")
    assert parse_date("") is None and parse_date("yesterday-ish") is None
    assert parse_region("-100,30,-90,40") == (-100.0, 30.0, -90.0, 40.0)
    assert parse_region("1,2,3") is None and parse_region("1,2,3,nan") is None
    assert not math.isnan(parse_region("0,0,1,1")[0])


# ---------------------------------------------------------------- arbitrary browser values

BROWSER = st.one_of(
    st.none(), st.booleans(), st.text(max_size=80), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
    st.lists(st.text(max_size=10), max_size=5),
)


# the grid fixture is immutable (a frozen GridInfo); each example builds its own state
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=BROWSER, b=BROWSER)
def test_every_request_returns_messages_and_keeps_the_state_valid(grid, a, b):
    """Whatever a browser sends, a request returns messages (strings, one line each) and
    the state stays inside the grid and the record; nothing raises."""
    s = ExplorerState(grid, stations=["A", "B"], checkpoints={"": "", "amsr2": "/x/amsr2.pt"})
    for msgs in (s.request_date(a), s.request_region(a), s.request_region([a, b, a, b]),
                 s.request_preset(a), s.request_clim(a, b), s.request_station(a),
                 s.request_pixel(a, b), s.request_checkpoint(a),
                 s.apply_query({"date": a, "region": b, "station": a, "source": b})):
        assert isinstance(msgs, list) and all(isinstance(m, str) and "\n" not in m
                                              for m in msgs)
    assert grid.has_day(s.day)
    gw, gs, ge, gn = grid.bounds
    w, so, e, n = s.region
    assert gw <= w < e <= ge and gs <= so < n <= gn
    assert 0 <= s.clim[0] < s.clim[1] <= 1
    assert s.checkpoint in ("", "/x/amsr2.pt") and s.station in ("", "A", "B")
