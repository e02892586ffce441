"""World and series stores are catalog sources like any other (``world`` and ``series``
drivers), opened through ``data_catalog.worlds.open_world`` and
``data_catalog.series_store.open_series``."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from data_catalog import schema, series_store, worlds
from data_catalog.catalog import load_catalog
from data_catalog.errors import FormatError, MissingFileError, MissingVariableError
from tests.test_catalog import write_catalog


def write_world(path, *, truth: bool = False, **attrs):
    """A small canonical world store (an assembled world has no truth_sm)."""
    ds = schema.mock_grid_dataset(ntime=6, nlat=4, nlon=5, with_truth=truth)
    ds.attrs.update(attrs)
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return ds


def write_series(path, ledger_complete: bool | None = None):
    ds = schema.mock_grid_dataset(ntime=6, nlat=4, nlon=5, with_truth=False)
    out = xr.Dataset({schema.FILLED_SM: ds[schema.AMSR_SM].fillna(0.2),
                      schema.AMSR_SM: ds[schema.AMSR_SM], schema.LAND: ds[schema.LAND]})
    out.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    if ledger_complete is not None:
        led = series_store.ledger_path(path)
        led.mkdir()
        if ledger_complete:
            (led / series_store.COMPLETE_MARK).write_text("complete\n")
    return out


@pytest.fixture
def stores_catalog(tmp_path):
    expected = write_world(tmp_path / "assembled.zarr", complete=True, generator="test")
    write_series(tmp_path / "series.zarr")
    path = write_catalog(tmp_path, """
        sources:
          assembled: {description: a real world, driver: world, args: {path: assembled.zarr},
                      metadata: {variable: amsr_sm}}
          old_name: {description: the demo alias, driver: demo_world,
                     args: {path: assembled.zarr}}
          filled: {description: a series store, driver: series, args: {path: series.zarr},
                   metadata: {variable: filled_sm}}
          absent: {description: nothing there, driver: world, args: {path: absent.zarr}}
        """)
    return path, expected


def test_world_and_series_sources_open_their_stores(stores_catalog, tmp_path):
    path, expected = stores_catalog
    cat = load_catalog(path)
    src = cat["assembled"]
    assert src.kind == "grid" and src.driver == "world" and src.available()
    ds = src.open()
    assert isinstance(ds[schema.AMSR_SM].data, da.Array)  # lazy
    assert not isinstance(ds[schema.LAND].data, da.Array)  # the small arrays are read
    assert ds.attrs["source_path"] == str(tmp_path / "assembled.zarr")
    assert schema.TRUTH_SM not in ds
    xr.testing.assert_equal(ds[schema.AMSR_SM].load(), expected[schema.AMSR_SM])
    assert cat["old_name"].driver == "world"  # the old driver name still opens it
    xr.testing.assert_equal(cat["old_name"].open()[schema.GAP_MASK].load(),
                            expected[schema.GAP_MASK])
    series = cat["filled"]
    assert series.kind == "grid" and series.driver == "series" and series.available()
    assert float(series.open()[schema.FILLED_SM].min()) >= 0.0
    with pytest.raises(MissingFileError, match="absent.zarr"):
        cat["absent"].open()
    (row,) = series.describe_point("2015-06-02", 30.3, -99.6)
    assert row["variable"] == schema.FILLED_SM and row["value"] is not None


def test_builtin_catalog_names_the_stores_through_locations(monkeypatch, tmp_path):
    monkeypatch.setenv("GAPFILL_DEMO", str(tmp_path / "w.zarr"))
    monkeypatch.setenv("GAPFILL_SERIES", str(tmp_path / "s.zarr"))
    cat = load_catalog()
    assert cat["demo"].driver == "world" and cat["series"].driver == "series"
    assert cat["series"].args["path"] == str(tmp_path / "s.zarr")
    assert not cat["series"].available()
    write_world(tmp_path / "w.zarr", truth=True)
    write_series(tmp_path / "s.zarr")
    assert schema.TRUTH_SM in cat["demo"].open()
    assert schema.FILLED_SM in cat["series"].open()


def test_open_world_refuses_what_is_not_a_world(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPFILL_DEMO", str(tmp_path / "demo.zarr"))
    with pytest.raises(MissingFileError, match="demo world not found.*gapfill demo-data"):
        worlds.open_world(tmp_path / "demo.zarr")
    with pytest.raises(MissingFileError, match="world store not found"):
        worlds.open_world(tmp_path / "other.zarr")
    write_world(tmp_path / "half.zarr", complete=False)
    with pytest.raises(FormatError, match="half.zarr.*not a complete world store"):
        worlds.open_world(tmp_path / "half.zarr")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("not json")
    with pytest.raises(FormatError, match="not a readable zarr store"):
        worlds.open_world(tmp_path / "junk.zarr")
    ds = schema.mock_grid_dataset(ntime=3, nlat=2, nlon=2).drop_vars(schema.ASCAT_SM)
    ds.to_zarr(tmp_path / "partial.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(MissingVariableError, match="'ascat_sm'"):
        worlds.open_world(tmp_path / "partial.zarr")
    ds = schema.mock_grid_dataset(ntime=3, nlat=2, nlon=2).drop_vars(schema.SENSOR)
    ds.to_zarr(tmp_path / "nosensor.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(MissingVariableError, match="'sensor'"):
        worlds.open_world(tmp_path / "nosensor.zarr")


def test_series_store_state_and_errors(tmp_path):
    with pytest.raises(MissingFileError, match="gapfill build-series"):
        series_store.open_series(tmp_path / "none.zarr")
    write_series(tmp_path / "running.zarr", ledger_complete=False)
    assert not series_store.is_complete(tmp_path / "running.zarr")
    write_series(tmp_path / "done.zarr", ledger_complete=True)
    assert series_store.is_complete(tmp_path / "done.zarr")
    write_series(tmp_path / "foreign.zarr")  # no ledger: made some other way
    assert series_store.is_complete(tmp_path / "foreign.zarr")
    write_world(tmp_path / "world.zarr")
    with pytest.raises(MissingVariableError, match="filled_sm"):
        series_store.open_series(tmp_path / "world.zarr")
    np.testing.assert_array_equal(
        series_store.open_series(tmp_path / "done.zarr")[schema.LAND].values,
        schema.mock_grid_dataset(ntime=6, nlat=4, nlon=5)[schema.LAND].values)
