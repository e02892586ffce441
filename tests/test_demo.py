"""The synthetic demo world: determinism, schema, sensors, gaps, physics, stations, storage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import demo, schema
from data_catalog.demo import store as demo_store
from data_catalog.demo import water_balance
from data_catalog.demo.world import World, observe
from data_catalog.errors import DataError, FormatError, MissingFileError
from data_catalog.worlds import world_chunks

# 16 x 16 cells around Lake Michigan (water, cold winters, north woods, RFI site),
# spanning the AMSR-E/AMSR2 seam.
SEAM = dict(west=-90.0, south=42.0, east=-86.0, north=46.0, start="2010-11-01",
            end="2012-09-30", n_stations=4, progress=False)
# 16 x 16 cells in Texas across the ASCAT start (2007-01-01).
ASCAT = dict(west=-98.0, south=31.0, east=-94.0, north=35.0, start="2006-10-01",
             end="2007-03-31", n_stations=2, progress=False)


@pytest.fixture(scope="module")
def seam_store(tmp_path_factory) -> Path:
    return demo.build_demo_world(tmp_path_factory.mktemp("seam") / "world.zarr", **SEAM)


@pytest.fixture(scope="module")
def seam(seam_store) -> xr.Dataset:
    return demo.open_demo_world(seam_store).load()


@pytest.fixture(scope="module")
def stations(seam_store):
    return demo.open_demo_stations(seam_store)


def _load(path: Path) -> xr.Dataset:
    ds = demo.open_demo_world(path).load()
    ds.attrs.pop("source_path")
    return ds


# ---------------------------------------------------------------- determinism
def test_same_seed_same_world_other_seed_other_world(tmp_path):
    kw = dict(west=-97.0, south=35.0, east=-95.0, north=37.0, start="2012-07-01",
              end="2012-09-30", n_stations=2, progress=False)
    a = _load(demo.build_demo_world(tmp_path / "a.zarr", seed=7, **kw))
    b = _load(demo.build_demo_world(tmp_path / "b.zarr", seed=7, **kw))
    c = _load(demo.build_demo_world(tmp_path / "c.zarr", seed=8, **kw))
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.truth_sm.values, c.truth_sm.values)
    assert not np.array_equal(a.gap_mask.values, c.gap_mask.values)
    ta, sa = demo.open_demo_stations(tmp_path / "a.zarr")
    tb, sb = demo.open_demo_stations(tmp_path / "b.zarr")
    pd.testing.assert_frame_equal(ta, tb)
    for sid in sa:
        pd.testing.assert_frame_equal(sa[sid], sb[sid])


# ---------------------------------------------------------------- schema and metadata
def test_world_is_canonical_and_lazy(seam_store):
    ds = demo.open_demo_world(seam_store)
    schema.check_canonical(ds)
    assert ds.truth_sm.chunks is not None  # dask-backed
    assert ds.sensor.chunks is None and ds.land.chunks is None  # small ones in memory
    assert ds.sizes == {"time": 700, "lat": 16, "lon": 16}
    for v in (schema.AMSR_SM, schema.ASCAT_SM, schema.TRUTH_SM):
        assert ds[v].dtype == np.float32
    assert ds.gap_mask.dtype == np.int8
    assert list(ds.gap_mask.attrs["flag_values"]) == [f.value for f in schema.GAP_FLAGS]
    assert ds.gap_mask.attrs["flag_meanings"] == schema.gap_mask_attrs()["flag_meanings"]
    assert ds.sensor.attrs["flag_meanings"] == schema.sensor_attrs()["flag_meanings"]
    assert ds.attrs["seed"] == 42 and ds.attrs["generator"] == demo.GENERATOR
    assert "10.1109/JSTARS.2025.3557956" in ds.attrs["citation"]
    assert '"start": "2010-11-01"' in ds.attrs["parameters"]


def test_land_mask_has_lake_michigan(seam):
    land = seam.land.sel(lat=43.5, lon=-87.0, method="nearest")
    assert not bool(land)
    assert bool(seam.land.sel(lat=44.5, lon=-89.5, method="nearest"))


# ---------------------------------------------------------------- sensors
def test_sensor_periods(seam):
    t = pd.DatetimeIndex(seam.time.values)
    sensor = seam.sensor.values
    assert (sensor[t <= "2011-10-03"] == schema.SENSOR_AMSRE).all()
    gap_year = (t >= "2011-10-04") & (t <= "2012-07-01")
    assert (sensor[gap_year] == schema.SENSOR_NONE).all()
    assert (sensor[t >= "2012-07-02"] == schema.SENSOR_AMSR2).all()
    amsr = seam.amsr_sm.values
    assert np.isnan(amsr[gap_year]).all()
    assert np.isfinite(amsr[t <= "2011-10-03"]).any()
    assert np.isfinite(amsr[t >= "2012-07-02"]).any()
    land = seam.land.values
    mask = seam.gap_mask.values[gap_year]
    assert (mask[:, land] == schema.NO_OVERPASS).all()
    assert (mask[:, ~land] == schema.NOT_LAND).all()


def test_ascat_starts_in_2007(tmp_path):
    ds = demo.open_demo_world(demo.build_demo_world(tmp_path / "w.zarr", **ASCAT)).load()
    t = pd.DatetimeIndex(ds.time.values)
    ascat = ds.ascat_sm.values
    assert np.isnan(ascat[t < "2007-01-01"]).all()
    after = ascat[t >= "2007-01-01"][:, ds.land.values]
    assert 0.3 < np.isfinite(after).mean() < 0.9  # a 1-2 day revisit, not every day
    assert np.nanmin(after) >= 0 and np.nanmax(after) <= 100


def test_amsre_wetter_than_amsr2(seam):
    sensor = seam.sensor.values
    diff = seam.amsr_sm - seam.truth_sm
    bias_e = float(diff[sensor == schema.SENSOR_AMSRE].mean())
    bias_2 = float(diff[sensor == schema.SENSOR_AMSR2].mean())
    assert 0.015 < bias_e < 0.05
    assert bias_e - bias_2 > 0.02


def test_amsr_follows_truth(seam):
    ok = np.isfinite(seam.amsr_sm.values)
    r = np.corrcoef(seam.amsr_sm.values[ok], seam.truth_sm.values[ok])[0, 1]
    assert r > 0.6


# ---------------------------------------------------------------- gaps
def test_amsr_nan_exactly_where_gapped(seam):
    gapped = seam.gap_mask.values != schema.OBSERVED
    assert np.array_equal(np.isnan(seam.amsr_sm.values), gapped)


def test_every_gap_category_present(seam):
    present = set(np.unique(seam.gap_mask.values).tolist())
    assert present == {f.value for f in schema.GAP_FLAGS}


def test_not_land_is_static_and_matches_land(seam):
    m = seam.gap_mask.values
    assert ((m == schema.NOT_LAND) == ~seam.land.values[None]).all()


def test_frozen_only_in_cold_season(seam):
    frozen = (seam.gap_mask == schema.FROZEN).any(["lat", "lon"]).values
    months = set(pd.DatetimeIndex(seam.time.values[frozen]).month)
    assert months, "no frozen day in a Michigan winter"
    assert months <= {10, 11, 12, 1, 2, 3, 4, 5}
    assert {1, 2} <= months


def test_rfi_hot_spots_are_persistent(seam):
    rfi = (seam.gap_mask == schema.RFI).values
    observed_days = seam.sensor.values != schema.SENSOR_NONE
    freq = rfi[observed_days].mean(0)
    # a few fixed clusters: some cells flagged on many days, most never
    assert freq.max() > 0.3
    assert (freq == 0).mean() > 0.5


def test_swath_gaps_are_stripes_that_move(seam):
    swath = seam.gap_mask.values == schema.NO_OVERPASS
    days = np.flatnonzero((seam.sensor.values != schema.SENSOR_NONE) & swath.any((1, 2)))
    assert len(days) > 20
    # stripes cross the region north to south (narrowing poleward) ...
    day = swath[days[0]]
    assert day.any(0).sum() < day.shape[1]  # not the whole map
    assert day.any(1).mean() > 0.6
    # ... and move from day to day
    assert not all(np.array_equal(swath[days[0]], swath[d]) for d in days[1:6])


def test_overall_gap_fraction_is_substantial():
    # the default region for a summer month
    w = World(demo.DemoParams(start="2015-06-01", end="2015-06-30", n_stations=0))
    st = water_balance.new_state(w.surface, w.weather.t_mean)
    temp = w.weather.temperature(0, w.nt)
    rain, conv = w.weather.rain(0, w.nt)
    truth, frozen = water_balance.run(st, w.surface, rain, temp)
    _, mask, _ = observe(w, 0, w.nt, truth, frozen, rain, conv,
                         np.random.default_rng(0), np.random.default_rng(1))
    gap = (mask[:, w.land] != schema.OBSERVED).mean()
    assert 0.25 < gap < 0.6
    dense = (mask == schema.DENSE_VEGETATION).mean(0)
    # dense vegetation is in the south-east forests, not in the western plains
    assert dense[np.ix_(w.lat < 34, w.lon > -88)].mean() > 0.3
    assert dense[:, w.lon < -97].mean() == 0


# ---------------------------------------------------------------- physics
def test_truth_within_physical_bounds(seam):
    t = seam.truth_sm
    land = seam.land
    assert bool((t >= seam.residual).where(land, True).all())
    assert bool((t <= seam.porosity).where(land, True).all())
    assert float(t.where(land).min()) > 0.01 and float(t.where(land).max()) < 0.55
    amsr = seam.amsr_sm.values
    assert np.nanmin(amsr) >= 0 and np.nanmax(amsr) <= 0.65


def test_truth_has_space_time_structure(seam):
    land = seam.land.values
    t = seam.truth_sm.values
    anom = t - t.mean(axis=0)
    lag1 = np.corrcoef(anom[1:][:, land].ravel(), anom[:-1][:, land].ravel())[0, 1]
    assert 0.5 < lag1 < 0.98  # persistent, but not frozen in time
    pair = land[:, 1:] & land[:, :-1]
    neighbour = np.corrcoef(anom[:, :, 1:][:, pair].ravel(),
                            anom[:, :, :-1][:, pair].ravel())[0, 1]
    assert neighbour > 0.6  # rain comes in spatially coherent systems


def test_rain_wetter_in_the_east():
    w = World(demo.DemoParams(start="2010-01-01", end="2010-12-31", n_stations=0))
    rain, _ = w.weather.rain(0, w.nt)
    west, east = rain[:, :, :16].sum(0).mean(), rain[:, :, -16:].sum(0).mean()
    assert 400 < west < 900 and 1100 < east < 1900  # mm a year
    wet = rain > 0.1
    assert 0.1 < wet.mean() < 0.4


# ---------------------------------------------------------------- stations
def test_station_table(stations, seam):
    table, series = stations
    assert list(table.columns[:len(schema.STATION_COLUMNS)]) == list(schema.STATION_COLUMNS)
    assert len(table) == 4 and table.id.is_unique
    assert set(table.network) == {demo.NETWORK}
    assert (table.depth_from == 0.0).all() and (table.depth_to == 0.05).all()
    assert set(series) == set(table.id)
    for row in table.itertuples():
        assert bool(seam.land.sel(lat=row.cell_lat, lon=row.cell_lon))
        assert abs(row.lat - row.cell_lat) <= 0.125 and abs(row.lon - row.cell_lon) <= 0.125


def test_station_series(stations, seam):
    table, series = stations
    for row in table.itertuples():
        s = series[row.id]
        assert list(s.columns) == ["sm", "flag"]
        assert str(s.index.tz) == "UTC" and s.index.name == "time"
        assert s.index.is_monotonic_increasing
        assert (s.index.minute == 0).all()
        assert s.index.min() >= pd.Timestamp("2010-11-01", tz="UTC")
        assert s.index.max() <= pd.Timestamp("2012-09-30 23:00", tz="UTC")
        assert set(s.flag) <= set(demo.STATION_FLAGS)
        assert (s.flag == "G").mean() > 0.5
        assert (s.sm >= 0).all() and (s.sm < 0.7).all()
        assert s.sm.notna().all()
        hours = pd.date_range("2010-11-01", "2012-09-30 23:00", freq="h", tz="UTC")
        assert len(s) < len(hours)  # outages
        # daily means of good values follow the cell truth (representativeness error aside)
        daily = s.sm[s.flag == "G"].resample("D").mean().tz_localize(None)
        cell = seam.truth_sm.sel(lat=row.cell_lat, lon=row.cell_lon).to_series()
        both = pd.concat([daily, cell], axis=1, join="inner").dropna()
        assert both.corr().iloc[0, 1] > 0.6


def test_station_frozen_flags(stations):
    _, series = stations
    flags = pd.concat(series.values())
    frozen = flags[flags.flag.str.contains("D01")]
    assert len(frozen) > 0
    assert set(frozen.index.month) <= {10, 11, 12, 1, 2, 3, 4, 5}
    assert (flags.flag == "C03").any()


# ---------------------------------------------------------------- storage
def test_chunks_serve_maps_and_series():
    assert world_chunks(64, 64) == (365, 32, 32)
    assert world_chunks(16, 20) == (365, 16, 20)
    tt, ty, tx = world_chunks(250, 350)
    assert (ty, tx) == (64, 64) and 30 <= tt < 365
    assert tt * 250 * 350 * 4 <= 12 * 2**20  # one day's slab


def test_store_chunking(seam_store):
    import zarr

    arr = zarr.open_group(seam_store, mode="r")["truth_sm"]
    assert arr.chunks == (365, 16, 16)


def test_second_build_is_skipped_and_other_params_refused(seam_store):
    stamp = (seam_store / "zarr.json").stat().st_mtime_ns
    assert demo.build_demo_world(seam_store, **SEAM) == seam_store
    assert (seam_store / "zarr.json").stat().st_mtime_ns == stamp
    assert demo.store_matches(seam_store, demo.DemoParams(**{k: v for k, v in SEAM.items()
                                                             if k != "progress"}))
    with pytest.raises(DataError, match="force"):
        demo.build_demo_world(seam_store, **{**SEAM, "seed": 1})


def test_store_of_an_older_generator_is_rebuilt(tmp_path):
    import json

    kw = dict(west=-97.0, south=35.0, east=-96.0, north=36.0, start="2013-01-01",
              end="2013-01-05", n_stations=1, progress=False)
    out = demo.build_demo_world(tmp_path / "w.zarr", **kw)
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["version"] = "0"
    (out / "zarr.json").write_text(json.dumps(meta))
    assert not demo.store_matches(out, demo.DemoParams(**{k: v for k, v in kw.items()
                                                          if k != "progress"}))
    demo.build_demo_world(out, **kw)
    assert demo.open_demo_world(out).attrs["version"] == demo.VERSION


def test_force_replaces(tmp_path):
    kw = dict(west=-97.0, south=35.0, east=-96.0, north=36.0, start="2013-01-01",
              end="2013-01-31", n_stations=1, progress=False)
    out = demo.build_demo_world(tmp_path / "w.zarr", seed=1, **kw)
    demo.build_demo_world(out, seed=2, force=True, **kw)
    assert demo.open_demo_world(out).attrs["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.zarr"]


def test_leftover_temp_dir_is_not_a_store(tmp_path):
    out = tmp_path / "world.zarr"
    # what a killed build leaves behind: a hidden sibling, with a dead process id
    leftover = tmp_path / ".world.zarr.building-999999999-deadbeef"
    leftover.mkdir()
    (leftover / "zarr.json").write_text('{"attributes": {"generator": "data_catalog.demo"}}')
    with pytest.raises(MissingFileError, match="demo-data"):
        demo.open_demo_world(out)
    assert not demo.store_matches(out)
    # a store that was never marked complete is refused too
    out.mkdir()
    (out / "zarr.json").write_text('{"attributes": {"generator": "data_catalog.demo", '
                                   '"complete": false}}')
    with pytest.raises(FormatError, match="complete"):
        demo.open_demo_world(out)
    # a new build cleans the dead leftover away
    demo.build_demo_world(out, west=-97.0, south=35.0, east=-96.0, north=36.0,
                          start="2013-01-01", end="2013-01-10", n_stations=1,
                          progress=False, force=True)
    assert not leftover.exists()
    assert demo.open_demo_world(out).sizes["time"] == 10


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_store, "_write_stations", boom)
    with pytest.raises(KeyboardInterrupt):
        demo.build_demo_world(tmp_path / "w.zarr", west=-97.0, south=35.0, east=-96.0,
                              north=36.0, start="2013-01-01", end="2013-01-10",
                              n_stations=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters_are_typed_errors(tmp_path):
    with pytest.raises(DataError, match="empty region"):
        demo.build_demo_world(tmp_path / "w.zarr", west=-90, east=-95, progress=False)
    with pytest.raises(DataError, match="before start"):
        demo.build_demo_world(tmp_path / "w.zarr", start="2010-01-02", end="2010-01-01",
                              progress=False)
    with pytest.raises(DataError, match="no land"):
        demo.build_demo_world(tmp_path / "w.zarr", west=-40, south=20, east=-38, north=22,
                              end="2003-01-05", progress=False)


def test_default_path_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAPFILL_DEMO", str(tmp_path / "x.zarr"))
    assert demo.default_demo_path() == tmp_path / "x.zarr"
    monkeypatch.delenv("GAPFILL_DEMO")
    assert demo.default_demo_path() == demo.REPO / "data" / "demo" / "world.zarr"


# ---------------------------------------------------------------- CLI
def test_cli_builds_a_store(tmp_path, capsys):
    from gapfill.cli import main

    out = tmp_path / "cli.zarr"
    argv = ["demo-data", "--out", str(out), "--west", "-97", "--south", "35", "--east", "-96",
            "--north", "36", "--start", "2013-01-01", "--end", "2013-02-28", "--stations",
            "2", "--seed", "3", "-q"]
    assert main(argv) == 0
    assert "written to" in capsys.readouterr().out
    ds = demo.open_demo_world(out)
    assert ds.sizes == {"time": 59, "lat": 4, "lon": 4} and ds.attrs["seed"] == 3
    assert len(demo.open_demo_stations(out)[0]) == 2
    assert main(argv) == 0
    assert "already built" in capsys.readouterr().out
    assert main(argv[:-3] + ["--seed", "4", "-q"]) == 1  # refuses to clobber
    assert os.listdir(tmp_path) == ["cli.zarr"]


def test_progress_bar_is_shown(tmp_path, capsys):
    demo.build_demo_world(tmp_path / "w.zarr", west=-97.0, south=35.0, east=-96.0, north=36.0,
                          start="2013-01-01", end="2013-01-05", n_stations=1, progress=True)
    assert "demo world" in capsys.readouterr().err
