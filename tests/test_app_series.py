"""Filled fields come from the series store first (issue 16): the app's fill lookup reads a
store built by ``build-series`` when it covers the region and day, without any model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bench.serving import SMALL_DATE, build_small_world
from data_catalog import schema

STORE_REGION = (-98.0, 31.0, -94.0, 35.0)
INSIDE = (-97.0, 32.0, -95.0, 34.0)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small world and a series store of ten days over part of it (the persistence
    stand-in: no checkpoint)."""
    from model import series

    work = tmp_path_factory.mktemp("app-series")
    world = build_small_world(work / "world.zarr")
    store = work / "series.zarr"
    start = pd.Timestamp(SMALL_DATE)
    series.build_series(store, str(world), start=f"{start:%Y-%m-%d}",
                        end=f"{start + pd.Timedelta(days=9):%Y-%m-%d}", region=STORE_REGION,
                        models=series.PERSISTENCE_MODELS, tile=8, halo=2, time_chunk=10,
                        scheduler="synchronous", progress=False)
    return world, store


@pytest.fixture
def hub(built, tmp_path, monkeypatch):
    """A hub on the small world with the store, no checkpoint and an empty cache: the store
    is the only place a filled field can come from."""
    from app.data import DataHub

    world, store = built
    monkeypatch.setenv("GAPFILL_DEMO", str(world))
    monkeypatch.setenv("GAPFILL_SERIES", str(store))
    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    h = DataHub(readahead=0)
    yield h
    h.close()


def test_the_fill_lookup_reads_the_series_store_first(built, hub):
    from app.mapspecs import map_titles

    _, store = built
    day = pd.Timestamp(SMALL_DATE) + pd.Timedelta(days=3)
    f = hub.day("demo", INSIDE, day)
    assert f.filled is not None and f.filled_info["origin"] == "series"
    ref = xr.open_zarr(store, consolidated=False)[schema.FILLED_SM].sel(
        time=day, lat=slice(32, 34), lon=slice(-97, -95)).values
    assert f.filled.shape == f.amsr.shape == ref.shape == (8, 8)
    np.testing.assert_array_equal(f.filled, ref)
    land = f.land.astype(bool)
    assert np.isfinite(f.filled[land]).all()
    assert "from the series store" in map_titles(f)["filled"]
    assert hub.has_filled("demo", INSIDE, day)


def test_the_store_is_not_used_where_it_does_not_cover(hub):
    day = pd.Timestamp(SMALL_DATE)
    # a region sticking out of the store, a day after it, another checkpoint
    assert hub.day("demo", (-99.0, 32.0, -95.0, 34.0), day).filled is None
    assert hub.day("demo", INSIDE, day + pd.Timedelta(days=20)).filled is None
    assert hub.cached_filled("demo", INSIDE, day, "other.pt")[0] is None


def test_an_unfinished_store_is_not_used(built, hub):
    from data_catalog.series_store import ledger_path

    _, store = built
    ledger = ledger_path(store)
    mark = ledger / "complete"
    assert mark.exists()  # build-series finished it
    mark.rename(ledger / "complete.away")
    try:
        assert hub.day("demo", INSIDE, pd.Timestamp(SMALL_DATE)).filled is None
    finally:
        (ledger / "complete.away").rename(mark)
