"""The data work of the app's panes (app/analysis.py): plain pytest, no server, no browser."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from app import analysis
from bench.serving import REPO
from data_catalog import schema
from validation import metrics as mx
from validation import protocol as vp
from validation.sources import DemoSource


@pytest.fixture(scope="module")
def mock_world():
    """A mock world, three stations on it and their validation source (no model)."""
    ds = schema.mock_grid_dataset(ntime=90, seed=1)
    stations = schema.mock_stations(ds, n=3, seed=2)
    with pytest.MonkeyPatch.context() as mp:  # no series store someone built in data/
        mp.setenv("GAPFILL_SERIES", "/nonexistent/series.zarr")
        yield ds, stations, DemoSource(world=ds, stations=stations, compute_filled=False)


def _station_frame(mock_world, k: int):
    """Station ``k``'s id, the record's ends and its validation frame over the record."""
    ds, (table, _), vs = mock_world
    sid = str(table["id"].iloc[k])
    start, end = pd.Timestamp(ds.time.values[0]), pd.Timestamp(ds.time.values[-1])
    return sid, start, end, analysis.station_frame(vs, sid, start, end)


def test_module_is_panel_free():
    code = ("import sys, app.analysis; bad = [m for m in ('panel', 'bokeh', 'holoviews', "
            "'torch') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_series_window_is_clipped_to_the_record():
    start, end = analysis.series_window("2020-01-10", "2020-01-01", "2020-12-31")
    assert start == pd.Timestamp("2020-01-01")
    assert end == pd.Timestamp("2020-01-10") + analysis.SERIES_HALF_WINDOW


def test_network_wide_table():
    long = pd.DataFrame({
        "station": ["A", "A", "B", "B"], "network": ["N"] * 4, "lat": [1, 1, 2, 2],
        "lon": [3, 3, 4, 4], "series": ["raw", "filled"] * 2, "n": [10, 20, 10, 20],
        "r": [0.5, 0.6, 0.4, 0.2], "rmse": [0.1] * 4, "status": ["OK"] * 4})
    wide = analysis.network_wide(long).set_index("id")
    assert wide.loc["A", "delta_r"] == pytest.approx(0.1)  # a difference, not a ratio
    assert wide.loc["B", "delta_r"] == pytest.approx(-0.2)
    assert list(wide.columns[:3]) == ["network", "lat", "lon"]
    assert wide.loc["B", "n_filled"] == 20
    assert analysis.network_wide(long.iloc[:0]).empty


def test_scale_ascat_matches_the_reference_moments():
    rng = np.random.default_rng(0)
    idx = pd.date_range("2020-01-01", periods=40)
    raw = pd.Series(0.2 + 0.05 * rng.standard_normal(40), idx)
    frame = pd.DataFrame({"raw": raw, "filled": np.nan, "ascat": 50 + 10 * raw * 20}, idx)
    out, note = analysis.scale_ascat(frame)
    assert note == " (mean/std-scaled to raw)" and "ascat_scaled" not in frame
    assert out["ascat_scaled"].mean() == pytest.approx(raw.mean())
    assert out["ascat_scaled"].std() == pytest.approx(raw.std())
    frame["filled"] = raw + 0.1  # enough filled values: scaled to the filled series
    out, note = analysis.scale_ascat(frame)
    assert note == " (mean/std-scaled to filled)"
    assert out["ascat_scaled"].mean() == pytest.approx(raw.mean() + 0.1)
    out, note = analysis.scale_ascat(frame.drop(columns="ascat"))
    assert note == "" and "ascat_scaled" not in out


def test_station_stats_use_the_apps_filled_series(mock_world):
    vs = mock_world[2]
    sid, start, end, vframe = _station_frame(mock_world, 0)
    rows = analysis.station_stats(vs, sid, vframe, start, end).set_index("series")
    assert list(rows.reset_index().columns) == analysis.STATS_COLUMNS
    assert rows.loc["filled", "status"] == mx.NO_MODEL
    # the truth at the station's cell as the "filled" series: the filled rows now have
    # metrics, and they equal those of the truth row
    truth = vframe[vp.TRUTH] if vp.TRUTH in vframe else None
    assert truth is not None and truth.notna().any()
    rows = analysis.station_stats(vs, sid, vframe, start, end, truth).set_index("series")
    assert rows.loc["filled", "status"] == mx.OK
    assert rows.loc["filled", "r"] == pytest.approx(rows.loc["truth", "r"])
    assert rows.loc["filled", "n"] == rows.loc["truth", "n"]
    # the caller's frame is left as it was
    assert vframe.attrs["series"][vp.FILLED]["status"] == mx.NO_MODEL


def test_add_station_series_and_cell_table(mock_world):
    _sid, start, end, vframe = _station_frame(mock_world, 1)
    idx = pd.date_range(start, end, freq="D")
    frame = pd.DataFrame({"raw": 0.1, "filled": np.nan}, idx)
    out = analysis.add_station_series(frame, vframe)
    assert "insitu" not in frame
    pd.testing.assert_series_equal(out["insitu"], vframe[vp.INSITU].reindex(idx),
                                   check_names=False)
    assert out["filled"].isna().all()  # no model in the validation source: nothing added
    cell = analysis.cell_table(31.5, -97.25)
    assert cell.loc[0, ["id", "lat", "lon"]].tolist() == ["cell", 31.5, -97.25]
    assert set(cell.columns) >= {"id", "network", "name", "lat", "lon"}


def test_network_tables_without_stations_is_a_clear_error(mock_world):
    from data_catalog.errors import GapfillError

    with pytest.raises(GapfillError, match="no stations"):
        analysis.network_tables(mock_world[0], None, "2020-01-01", "2020-02-01")
