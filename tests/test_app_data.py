"""The app's data hub and session controller on a small demo world (no browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.serving import SMALL_DATE
from data_catalog import schema
from data_catalog.errors import MissingFileError

REGION = (-98.0, 31.0, -94.0, 35.0)


def test_day_matches_the_world(env):
    from app.data import DataHub
    from data_catalog.demo import open_demo_world

    hub = DataHub(readahead=0)
    f = hub.day("demo", REGION, SMALL_DATE)
    ds = open_demo_world(env).sel(lat=slice(31, 35), lon=slice(-98, -94), time=SMALL_DATE)
    assert f.amsr.shape == (16, 16) and f.amsr.dtype == np.float32
    np.testing.assert_array_equal(f.amsr, ds[schema.AMSR_SM].values)
    np.testing.assert_array_equal(f.gap, ds[schema.GAP_MASK].values)
    assert f.sensor == schema.SENSOR_AMSR2 and f.sensor_label == "AMSR2"
    assert f.truth is not None and f.filled is None  # no model output without a checkpoint
    assert hub.day("demo", REGION, SMALL_DATE) is f  # served from memory
    hub.close()


def test_read_ahead_fills_memory(env):
    from app.data import DataHub

    hub = DataHub(readahead=3)
    hub.day("demo", REGION, SMALL_DATE)
    for fut in list(hub._inflight.values()):
        fut.result(timeout=60)
    nxt = pd.Timestamp(SMALL_DATE) + pd.Timedelta(days=3)
    assert hub._days.get(("demo", REGION, nxt)) is not None
    # and as many days after them, in the same read (one chunk decode for the next steps)
    far = nxt + pd.Timedelta(days=3)
    assert hub._days.get(("demo", REGION, far)) is not None
    hub.close()


def test_missing_checkpoint_is_a_clear_error(env):
    from app.data import DataHub
    from app.outputs import resolve_checkpoint

    with pytest.raises(MissingFileError, match="no model checkpoint"):
        resolve_checkpoint("")
    with pytest.raises(MissingFileError, match="checkpoint not found"):
        resolve_checkpoint("/nowhere/model.pt")
    hub = DataHub(readahead=0)
    assert hub.cache_key("demo", REGION, SMALL_DATE) is None  # nothing to look up
    fut = hub.run_inference("demo", REGION, SMALL_DATE)
    with pytest.raises(MissingFileError):
        fut.result(timeout=120)
    hub.close()


def test_missing_world_gives_a_message_not_a_traceback(tmp_path, monkeypatch):
    from app.controller import Explorer
    from app.data import DataHub

    monkeypatch.setenv("GAPFILL_DEMO", str(tmp_path / "absent.zarr"))
    app = Explorer(DataHub(readahead=0))
    assert "demo world not found" in app.fatal and "gapfill demo-data" in app.fatal


def test_explorer_applies_query_and_reports_bad_values(env):
    from app.controller import Explorer
    from app.data import DataHub

    app = Explorer(DataHub(readahead=0), query={"date": "2015-06-10", "region": "x,y",
                                                 "station": "NOPE"})
    msgs = [m for _, m in app._pending_msgs]
    assert any("region" in m for m in msgs) and any("NOPE" in m for m in msgs)
    assert app.state.day == pd.Timestamp("2015-06-10")
    assert "2015-06-10" in app.status and app.fields is not None
    assert "Run inference" in app.inference_status
    app.state.step_date(1)
    assert app.fields.date == pd.Timestamp("2015-06-11")


def test_station_selection_gives_series_and_validation_stats(env):
    from app.controller import Explorer
    from app.data import DataHub

    app = Explorer(DataHub(readahead=0), query={"date": SMALL_DATE})
    sid = sorted(app.state.station_ids)[0]
    assert app.state.request_station(sid) == []
    assert app.series_title.startswith(f"Station {sid}")
    frame = app.series_frame
    assert {"raw", "gap", "ascat", "insitu", "ascat_scaled"} <= set(frame.columns)
    assert frame.index.min() <= pd.Timestamp(SMALL_DATE) <= frame.index.max()
    stats = app.stats.set_index("series")
    assert {"raw", "filled", "ascat", "truth"} <= set(stats.index)
    assert stats.loc["truth", "status"] == "OK" and stats.loc["truth", "n"] > 20
    assert stats.loc["filled", "status"] == "NO_MODEL"  # no checkpoint in this test


def _colour_count(img: np.ndarray, hex_colour: str, tol: int = 6) -> int:
    rgb = np.array([int(hex_colour[k:k + 2], 16) for k in (1, 3, 5)])
    return int((np.abs(img.astype(int) - rgb).max(axis=-1) <= tol).sum())


def test_maps_png_export_has_gap_colours_legend_stations_and_axes(env):
    import io

    from PIL import Image

    from app import plots
    from app.data import DataHub
    from app.export import DPI, maps_png

    hub = DataHub(readahead=0)
    f = hub.day("demo", REGION, SMALL_DATE)
    stations = hub.stations("demo")[0]
    png = maps_png(f, stations=stations, title="demo test")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[1] == 12 * DPI and img.shape[0] == int((4.5 * 2 + 0.8) * DPI)
    gaps = {int(v) for v in np.unique(f.gap)} & set(plots.GAP_COLOURS)
    assert gaps, "the test day has gaps"
    top = img[:int(0.1 * img.shape[0])]  # the legend, above the maps
    for code, colour in plots.GAP_COLOURS.items():
        assert _colour_count(top, colour) > 40, f"no legend patch for gap {code}"
    # on the raw map each gap category shown in its own colour (at the overlay's alpha
    # over white, where soil moisture has no value)
    raw = img[int(0.1 * img.shape[0]):img.shape[0] // 2 + 40, :img.shape[1] // 2]
    shown = {}
    for code in gaps:
        rgb = np.array([int(plots.GAP_COLOURS[code][k:k + 2], 16) for k in (1, 3, 5)])
        shown[code] = "#" + "".join(f"{v:02x}" for v in np.rint(0.85 * rgb + 0.15 * 255)
                                    .astype(int))
        assert _colour_count(raw, shown[code]) > 20, f"gap {code} not on the raw map"
    # the stations: magenta triangles on the maps
    assert _colour_count(img[int(0.1 * img.shape[0]):], "#ff00ff") > 30
    # without the mask, the gap colours leave the maps (the legend stays)
    bare = np.asarray(Image.open(io.BytesIO(maps_png(f, show_mask=False))).convert("RGB"))
    for colour in shown.values():
        assert _colour_count(bare[int(0.1 * bare.shape[0]):], colour) == 0
    with pytest.raises(ValueError):
        maps_png(None)
    hub.close()


def test_pixel_selection_streams_the_filled_series_in_the_worker(env, tmp_path, monkeypatch):
    """With a (stand-in) checkpoint, the filled series at a clicked cell is computed by the
    model in the worker thread and then shown; torch is loaded there, not before."""
    import time

    from app.controller import Explorer
    from app.data import DataHub
    from bench.serving import write_standin_checkpoint

    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(write_standin_checkpoint(tmp_path / "ck")
                                                  .parent))
    app = Explorer(DataHub(readahead=0), query={"date": SMALL_DATE})
    assert app.state.request_pixel(33.1, -95.9) == []
    assert app.series_title.startswith("Pixel 33.125")
    t0 = time.time()
    # the job's result reaches the frame after the job is done and the status cleared
    while (app._series_jobs or app.series_status or not app.series_frame["filled"].notna().any()
           ) and time.time() - t0 < 120:
        time.sleep(0.2)
    assert not app._series_jobs and app.series_status == ""
    filled = app.series_frame["filled"]
    assert filled.notna().sum() == len(filled)  # every day of the window
    assert 0.0 < filled.mean() < 0.6
    # no error model beside the stand-in checkpoint: the SD is NaN, the plot has no band
    assert app.series_frame["filled_sd"].isna().all()
    assert "Filled ± 1 SD" not in [el.label for el in app.series_plot]


def test_a_model_output_gives_the_day_its_uncertainty_and_reasons(env, monkeypatch):
    """The app's data layer hands the uncertainty and reason flags with the filled field."""
    from pathlib import Path

    from app.data import DataHub
    from model import errors

    shipped = Path(errors.__file__).parent / "checkpoints"
    if not errors.path_for(shipped).exists():
        pytest.skip("no shipped error model")
    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(shipped))
    hub = DataHub(readahead=0)
    filled, info = hub.run_inference("demo", REGION, SMALL_DATE).result(timeout=300)
    f = hub.day("demo", REGION, SMALL_DATE)
    land = f.land
    assert f.filled is not None and f.uncertainty is not None and f.reasons is not None
    assert f.uncertainty.shape == f.filled.shape == f.reasons.shape
    assert np.isfinite(f.uncertainty[land]).all() and (f.uncertainty[land] > 0).all()
    assert np.isnan(f.uncertainty[~land]).all()
    # a gap pixel carries its category's reason bit
    for code, bit in schema.GAP_REASON.items():
        sel = land & (f.gap == code)
        assert (f.reasons[sel] & bit).all()
    hub.close()


def test_period_fills_and_the_cell_series_carry_the_sd(env, monkeypatch):
    """With the shipped models and error model, a period-filled day holds its SD (NaN off
    land) and the series at a clicked cell is drawn with its 1-SD band on every day."""
    import time
    from pathlib import Path

    from app.controller import Explorer
    from app.data import DataHub
    from model import errors

    shipped = Path(errors.__file__).parent / "checkpoints"
    if not errors.path_for(shipped).exists():
        pytest.skip("no shipped error model")
    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(shipped))
    hub = DataHub(readahead=0)
    day = pd.Timestamp(SMALL_DATE)
    hub.fill_period("demo", REGION, day - pd.Timedelta(days=2), day).result(timeout=300)
    f = hub.day("demo", REGION, day)
    assert f.filled_info["origin"] == "period" and f.uncertainty.shape == f.filled.shape
    assert np.isfinite(f.uncertainty[f.land]).all() and (f.uncertainty[f.land] > 0).all()
    assert np.isnan(f.uncertainty[~f.land]).all() and f.reasons is not None
    app = Explorer(hub, query={"date": SMALL_DATE})
    assert app.state.request_pixel(33.1, -95.9) == []
    t0 = time.time()
    while (app._series_jobs or app.series_status or not app.series_frame["filled"].notna().all()
           ) and time.time() - t0 < 300:
        time.sleep(0.2)
    assert app.series_status == ""
    sd = app.series_frame["filled_sd"]
    assert sd.notna().all() and (sd > 0).all()
    assert "Filled ± 1 SD" in [el.label for el in app.series_plot]
    hub.close()


def test_the_validation_window_sets_the_station_statistics(env):
    from app.controller import Explorer
    from app.data import DataHub

    app = Explorer(DataHub(readahead=0), query={"date": SMALL_DATE})
    sid = sorted(app.state.station_ids)[0]
    app.state.request_station(sid)
    wide = app.stats.set_index("series").loc["truth", "n"]
    assert app.state.request_window("30") == []
    narrow = app.stats.set_index("series")
    assert narrow.loc["truth", "n"] < wide and narrow.loc["truth", "n"] <= 61
    assert app.series_frame.index.min() >= pd.Timestamp(SMALL_DATE) - pd.Timedelta(days=30)
    assert app.state.request_window("all") == []  # the small world's whole record
    whole = app.stats.set_index("series").loc["truth", "n"]
    assert whole > wide
    header = app.export_header("test")
    assert header["window"].startswith("2015-03-01 to 2015-08-31")
