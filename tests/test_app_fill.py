"""Period fills of the app (app/fill.py) and the hub's memory of them, without a browser."""

from __future__ import annotations

import io
import threading

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bench.serving import SMALL_DATE, build_small_world
from data_catalog import schema
from model.series_models import PersistenceModel

REGION = (-98.0, 31.0, -94.0, 35.0)


@pytest.fixture(scope="module")
def world_path(tmp_path_factory):
    return build_small_world(tmp_path_factory.mktemp("app-fill") / "world.zarr")


@pytest.fixture(scope="module")
def world(world_path):
    from data_catalog.worlds import open_world

    return open_world(world_path)


def test_period_fill_is_the_streaming_engine_at_the_region(world):
    """The fill of a region equals the engine's stream of the same window: observations
    where AMSR observed, the model elsewhere, no holes on land."""
    from app.fill import fill_period, region_window
    from model.streaming import ModelSet, stream_windows

    model = PersistenceModel()
    start = pd.Timestamp(SMALL_DATE)
    end = start + pd.Timedelta(days=9)
    out = fill_period(world, REGION, start, end, models={2: model, 1: model})
    assert sorted(out) == list(pd.date_range(start, end))
    f = out[start]
    assert f.shape == (16, 16) and f.dtype == np.float32
    win = region_window(world, REGION)
    t = pd.DatetimeIndex(world[schema.TIME].values)
    i0 = int(t.get_indexer([start])[0])
    blocks = list(stream_windows(world, [win], i0, i0 + 10, ModelSet({2: model, 1: model}),
                                 block_days=365))
    np.testing.assert_allclose(out[end], blocks[0].filled[0, 9], rtol=0, atol=1e-6)
    day = world.sel(time=start, lat=slice(31, 35), lon=slice(-98, -94))
    obs = (day[schema.GAP_MASK].values == schema.OBSERVED) & np.isfinite(
        day[schema.AMSR_SM].values)
    np.testing.assert_allclose(f[obs], day[schema.AMSR_SM].values[obs], atol=1e-6)
    land = day[schema.LAND].values.astype(bool)
    assert np.isfinite(f[land]).all()


def test_cancel_stops_between_blocks_and_keeps_the_days_done(world):
    from app.fill import FillCancelled, fill_period

    model = PersistenceModel()
    cancel = threading.Event()
    seen: dict = {}

    def on_days(got, extra):
        assert set(extra) == set(got)
        seen.update(got)
        cancel.set()  # the user pressed Cancel during the first block

    start = pd.Timestamp(SMALL_DATE)
    with pytest.raises(FillCancelled, match="cancelled after 8 of 30 days"):
        fill_period(world, REGION, start, start + pd.Timedelta(days=29),
                    models={2: model}, cancel=cancel, on_days=on_days, block_days=8)
    assert len(seen) == 8


def test_a_period_outside_the_record_is_one_plain_error(world):
    from app.fill import fill_period
    from data_catalog.errors import OutOfRangeError

    with pytest.raises(OutOfRangeError, match="no day of the record between 1990-01-01"):
        fill_period(world, REGION, "1990-01-01", "1990-01-31", models={2: PersistenceModel()})


def test_hub_period_fill_stays_while_browsing(world_path, tmp_path, monkeypatch):
    """After a period fill every day of it is shown filled, marked as a period fill; a day
    outside it is not."""
    from app.data import DataHub
    from app.fill import origin_label

    monkeypatch.setenv("GAPFILL_DEMO", str(world_path))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    hub = DataHub(readahead=0)
    hub.fill_models = {2: PersistenceModel(), 1: PersistenceModel()}
    start = pd.Timestamp(SMALL_DATE)
    fracs: list[float] = []
    info = hub.fill_period("demo", REGION, start, start + pd.Timedelta(days=13),
                           progress=lambda f, m: fracs.append(f)).result(timeout=300)
    assert info["days"] == 14 and fracs[-1] == 1.0 and fracs == sorted(fracs)
    for k in (0, 7, 13):
        d = hub.day("demo", REGION, start + pd.Timedelta(days=k))
        assert d.filled is not None and d.filled.shape == d.amsr.shape
        assert origin_label(d.filled_info) == "from a period fill"
    # stand-in models have no error model: the SD is NaN, the maps and the hover say so
    from app import plots
    from app.mapspecs import layer_arrays, map_titles

    assert np.isnan(d.uncertainty).all() and d.reasons.shape == d.amsr.shape
    assert np.isnan(layer_arrays(d, choice="uncertainty")["uncertainty"]).all()
    assert "none with this fill" in map_titles(d, choice="uncertainty")["uncertainty"]
    codes = plots.detail_codes(d.uncertainty, d.reasons, d.amsr.shape)
    assert ((codes & 0xFF) == plots.NO_SD).all()
    assert hub.day("demo", REGION, start + pd.Timedelta(days=14)).filled is None
    hub.close()


def test_auto_fill_only_for_small_regions():
    from app.fill import AUTO_FILL_MAX_CELLS, auto_fill_allowed

    assert auto_fill_allowed((64, 64)) and AUTO_FILL_MAX_CELLS == 64 * 64
    assert not auto_fill_allowed((250, 350))


def test_origin_labels():
    from app.fill import origin_label

    assert origin_label({"origin": "series"}) == "from the series store"
    assert origin_label({"cached": True}) == "from the cache"
    assert origin_label({"cached": False, "device": "CPU"}) == "just computed"


def test_fill_period_checks():
    from app.state import MAX_FILL_DAYS, ExplorerState
    from data_catalog.inputs import GridInfo

    grid = GridInfo(np.arange(30.125, 38, 0.25), np.arange(-99.875, -90, 0.25), 0.25,
                    pd.Timestamp("2015-03-01"), pd.Timestamp("2015-08-31"))
    s = ExplorerState(grid, presets={}, date=pd.Timestamp("2015-06-15").to_pydatetime())
    assert s.month_period() == (pd.Timestamp("2015-06-01"), pd.Timestamp("2015-06-30"))
    assert s.check_fill_period("2015-06-01", "2015-06-30")[0] is not None
    period, msgs = s.check_fill_period("2015-06-30", "2015-06-01")
    assert period is None and "ends (2015-06-01) before it starts" in msgs[0]
    period, msgs = s.check_fill_period("2015-02-01", "2015-06-01")
    assert period is None and "outside the record" in msgs[0]
    period, msgs = s.check_fill_period("2015-03-01", "2015-08-31")
    assert period is None and f"at most {MAX_FILL_DAYS}" in msgs[0]


def test_colour_limits_follow_the_values_of_a_product():
    from app.analysis import colour_limits

    wet = np.linspace(0.05, 0.8, 1000)
    assert colour_limits(wet, (0.0, 0.5)) == (0.0, 0.79)  # LPRM above 0.5: widened
    assert colour_limits(np.linspace(0.1, 0.3, 100), (0.0, 0.5)) == (0.0, 0.5)
    assert colour_limits(np.full(4, np.nan), None) is None


def test_titles_name_the_product_the_gap_year_and_a_missing_ascat(world):
    from app.days import read_day
    from app.mapspecs import map_titles

    f = read_day(world, REGION, pd.Timestamp(SMALL_DATE))
    f.label = "LPRM AMSR2 C1 (descending)"
    f.ascat = np.full_like(f.ascat, np.nan)
    t = map_titles(f)
    assert t["raw"].startswith("Raw LPRM AMSR2 C1 (descending) 2015-06-01")
    assert t["ascat"] == "ASCAT 2015-06-01: none in this source or day"
    f.sensor = schema.SENSOR_NONE
    assert map_titles(f)["raw"] == "Raw: no AMSR in orbit 2015-06-01"
    f.filled, f.filled_info = f.amsr, {"origin": "period"}
    assert map_titles(f)["filled"] == ("ConvLSTM filled 2015-06-01 · from a period fill · "
                                       "filled without ASCAT (none in this source or day)")


# Machado, Oliveira & Fernandes (2009) full-severity simulation matrices (linear RGB)
_CVD = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _seen(rgb: np.ndarray, vision: str) -> np.ndarray:
    """sRGB (0-1) as seen with a colour-vision deficiency, in CIE L*a*b*."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    lin = np.clip(lin @ _CVD[vision].T, 0, 1)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                          [0.0193, 0.1192, 0.9505]]).T / np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                     200 * (f[:, 1] - f[:, 2])], axis=1)


def test_gap_palette_is_clear_of_soil_moisture_colours():
    """Every gap colour differs from every other and from every colour of the
    soil-moisture map (CIE76 ΔE*ab > 15, several times a just-noticeable difference) for
    normal vision and the three dichromacies."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    from app import plots

    gaps = np.array([to_rgb(c) for c in plots.GAP_CMAP])
    sm = colormaps[plots.SM_CMAP](np.linspace(0, 1, 64))[:, :3]
    for vision in _CVD:
        g, m = _seen(gaps, vision), _seen(sm, vision)
        pair = np.linalg.norm(g[:, None] - g[None], axis=2)[np.triu_indices(len(g), 1)]
        to_sm = np.linalg.norm(g[:, None] - m[None], axis=2)
        assert pair.min() > 15, (vision, pair.min())
        assert to_sm.min() > 15, (vision, to_sm.min(axis=1))


def test_auto_fill_fills_the_shown_day_of_a_session(world_path, tmp_path, monkeypatch):
    """A session with auto-fill on: stepping to a new day fills it in the background and
    the shown day then carries the fill (no browser: dispatch runs at once)."""
    import time

    from app.controller import Explorer
    from app.data import DataHub

    monkeypatch.setenv("GAPFILL_DEMO", str(world_path))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    hub = DataHub(readahead=0)
    hub.fill_models = {2: PersistenceModel(), 1: PersistenceModel()}
    app = Explorer(hub, query={"date": "2015-08-10"})
    assert app.fields.filled is None and not app.fill_problem
    app.auto_fill = True
    app.notify(app.state.step_date(1))
    for _ in range(600):
        if app.fields.filled is not None:
            break
        time.sleep(0.1)
    assert app.fields.date == pd.Timestamp("2015-08-11")
    assert app.fields.filled is not None, app.fill_status
    assert "auto-filled" in app.maps.titles["filled"]
    hub.close()


def test_exports_name_and_describe_what_they_hold(world, tmp_path):
    """netCDF of filled days with the CF attributes of export-netcdf; CSV with its header;
    names by source, region and date."""
    import xarray as xr

    from app.days import read_days
    from app.exports import file_stem, filled_netcdf, table_csv

    days = read_days(world, REGION, pd.date_range(SMALL_DATE, periods=3))
    for k, d in enumerate(days):
        d.filled = np.where(np.isfinite(d.amsr), d.amsr, 0.2 + 0.01 * k).astype(np.float32)
        d.filled_info = {"origin": "period"}
    blob = filled_netcdf(days, "demo", "amsr2")
    assert blob[:4] == b"\x89HDF"
    (tmp_path / "x.nc").write_bytes(blob)
    ds = xr.open_dataset(tmp_path / "x.nc")
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["fill_origin"] == "period"
    assert ds.attrs["time_coverage_end"] == "2015-06-03"
    assert ds[schema.FILLED_SM].attrs["units"] == "m3 m-3"
    assert ds[schema.GAP_MASK].attrs["flag_meanings"].startswith("observed")
    np.testing.assert_allclose(ds[schema.FILLED_SM].values[2], days[2].filled)
    ds.close()
    assert file_stem("demo", REGION, SMALL_DATE, "2015-06-03") == \
        "gapfill_demo_-98_31_-94_35_2015-06-01_2015-06-03"
    text = table_csv(pd.DataFrame({"r_raw": [0.5]}), {"source": "demo", "window": "a to b"})
    assert text.startswith("# source: demo\n# window: a to b\n")
    assert pd.read_csv(io.StringIO(text), comment="#")["r_raw"][0] == 0.5


def test_station_statistics_say_the_filled_series_is_coming():
    from app.analysis import PENDING, pending_filled

    stats = pd.DataFrame({"series": ["raw", "filled", "filled_gaps"], "r": [0.5, np.nan, 0.1],
                          "status": ["OK", "INSUFFICIENT_DATA", "OK"]})
    out = pending_filled(stats)
    assert list(out["status"]) == ["OK", PENDING, PENDING]
    assert out["r"][0] == 0.5 and out["r"][1:].isna().all()



def test_period_fill_carries_the_sd_of_build_series(tmp_path):
    """A period fill with the shipped models gives each day the SD (and reason flags) the
    series store holds for the same days and cells: positive on land, NaN off land."""
    from app.fill import fill_period
    from data_catalog import locations
    from data_catalog.worlds import open_world
    from model import errors, series
    from tests.test_series import mock_world

    if not (locations.checkpoint_dir() / "amsr2.pt").exists() or not errors.path_for().exists():
        pytest.skip(f"no shipped checkpoints and error model in {locations.checkpoint_dir()}")
    path = mock_world(tmp_path / "world.zarr")
    start, end = "2011-09-25", "2011-10-14"  # AMSR-E days, then the gap year's first days
    series.build_series(tmp_path / "s.zarr", str(path), start=start, end=end,
                        models=series.SHIPPED_MODELS, tile=12, halo=8, time_chunk=8,
                        stream_days=8, scheduler="synchronous", progress=False)
    store = xr.open_zarr(tmp_path / "s.zarr", consolidated=False).load()
    world = open_world(path)
    region = (float(world.lon[0]), float(world.lat[0]), float(world.lon[-1]),
              float(world.lat[-1]))
    extra: dict = {}
    fields = fill_period(world, region, start, end, on_days=lambda got, e: extra.update(e))
    land = store[schema.LAND].values.astype(bool)
    assert (~land).any() and len(extra) == store.sizes[schema.TIME] == 20
    for k, day in enumerate(pd.DatetimeIndex(store[schema.TIME].values)):
        sd = extra[day]["uncertainty"]
        assert sd.shape == land.shape and sd.dtype == np.float32
        assert np.isfinite(sd[land]).all() and (sd[land] > 0).all()
        assert np.isnan(sd[~land]).all()
        np.testing.assert_allclose(fields[day][land], store[schema.FILLED_SM].values[k][land],
                                   rtol=0, atol=1e-6)
        np.testing.assert_allclose(sd, store[errors.UNCERTAINTY].values[k], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(extra[day]["reasons"],
                                      store[schema.REASON_FLAG].values[k])


def test_without_a_fitting_error_model_the_sd_is_nan(tmp_path, caplog):
    """Stand-in models, a checkpoint with no error model beside it, an unreadable one or
    one fitted on other checkpoints: the fill runs, its SD is NaN (reasons are still
    given); the shipped error model beside the same checkpoint gives an SD."""
    import json
    import shutil

    from app.fill import fill_period
    from data_catalog import locations
    from data_catalog.worlds import open_world
    from model import errors
    from tests.test_series import mock_world

    if not (locations.checkpoint_dir() / "amsre.pt").exists() or not errors.path_for().exists():
        pytest.skip(f"no shipped checkpoints and error model in {locations.checkpoint_dir()}")
    world = open_world(mock_world(tmp_path / "world.zarr"))
    region = (float(world.lon[0]), float(world.lat[0]), float(world.lon[-1]),
              float(world.lat[-1]))
    land = world[schema.LAND].values.astype(bool)
    ckdir = tmp_path / "ck"
    ckdir.mkdir()
    ckpt = shutil.copy(locations.checkpoint_dir() / "amsre.pt", ckdir)  # AMSR-E days

    def sds(checkpoint=None, models=None) -> np.ndarray:
        extra: dict = {}
        fill_period(world, region, "2011-09-26", "2011-09-28", checkpoint, models=models,
                    on_days=lambda got, e: extra.update(e))
        assert all(e["reasons"].shape == land.shape for e in extra.values())
        return np.stack([e["uncertainty"] for e in extra.values()])

    m = PersistenceModel()
    assert np.isnan(sds(models={1: m, 2: m})).all()
    assert np.isnan(sds(str(ckpt))).all()  # no error model beside it
    doc = json.loads(errors.path_for().read_text())
    doc["models"]["amsre"]["checkpoint_sha256"] = "0" * 64  # fitted on another checkpoint
    errors.path_for(ckdir).write_text(json.dumps(doc))
    with caplog.at_level("WARNING", logger="model.streaming"):
        assert np.isnan(sds(str(ckpt))).all()
    assert "not fitted on the amsre model" in caplog.text
    errors.path_for(ckdir).write_text("{not json")
    with caplog.at_level("WARNING", logger="model.streaming"):
        assert np.isnan(sds(str(ckpt))).all()
    assert "unreadable error model" in caplog.text
    shutil.copy(errors.path_for(), ckdir)  # the error model of this very checkpoint
    sd = sds(str(ckpt))
    assert (sd[:, land] > 0).all() and np.isnan(sd[:, ~land]).all()
