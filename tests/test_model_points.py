"""The filled series at points carries the SD of the series store (model/points.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import locations, schema
from model import errors, series
from model.points import filled_at_points, filled_sd_at_points
from model.series_models import PersistenceModel
from tests.test_series import mock_world

START, END = "2011-09-25", "2011-10-14"  # AMSR-E days, then the gap year's first days


def shipped() -> None:
    if not (locations.checkpoint_dir() / "amsr2.pt").exists() or not errors.path_for().exists():
        pytest.skip(f"no shipped checkpoints and error model in {locations.checkpoint_dir()}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from data_catalog.worlds import open_world

    path = mock_world(tmp_path_factory.mktemp("points") / "world.zarr")
    return path, open_world(path)


def cells(ds: xr.Dataset) -> pd.DataFrame:
    """A land cell and a cell off land, as a station table."""
    land = ds[schema.LAND].values.astype(bool)
    (i, j), (k, m) = np.argwhere(land)[len(np.argwhere(land)) // 2], np.argwhere(~land)[0]
    return pd.DataFrame({"id": ["land", "water"],
                         "lat": [float(ds.lat[i]), float(ds.lat[k])],
                         "lon": [float(ds.lon[j]), float(ds.lon[m])]})


def test_points_sd_equals_the_series_store(world, tmp_path):
    shipped()
    path, ds = world
    out = series.build_series(tmp_path / "s.zarr", str(path), start=START, end=END,
                              models=series.SHIPPED_MODELS, tile=12, halo=8,
                              scheduler="synchronous", progress=False)
    store = xr.open_zarr(out, consolidated=False).load()
    table = cells(ds)
    days = pd.DatetimeIndex(store[schema.TIME].values)
    filled, sd = filled_sd_at_points(ds, table, days)
    for row in table.itertuples():
        at = store.sel(lat=row.lat, lon=row.lon)
        np.testing.assert_allclose(sd[row.id].to_numpy(), at[errors.UNCERTAINTY].values,
                                   rtol=0, atol=1e-5)
        if row.id == "land":
            assert (sd[row.id] > 0).all()
            np.testing.assert_allclose(filled[row.id].to_numpy(),
                                       at[schema.FILLED_SM].values, rtol=0, atol=1e-5)
        else:
            assert sd[row.id].isna().all()
    # the filled values alone are the same series
    alone = filled_at_points(ds, table, days)
    np.testing.assert_array_equal(alone["land"].to_numpy(), filled["land"].to_numpy())


def test_no_error_model_gives_a_nan_sd(world, tmp_path):
    """A checkpoint without an error model beside it, or a stand-in model: NaN, no error."""
    shipped()
    _, ds = world
    ckpt = tmp_path / "amsre.pt"  # the days are AMSR-E days
    shutil.copy(locations.checkpoint_dir() / "amsre.pt", ckpt)
    table = cells(ds)
    days = pd.date_range("2011-09-28", "2011-10-02")
    filled, sd = filled_sd_at_points(ds, table, days, ckpt)
    assert filled["land"].notna().all() and sd["land"].isna().all()
    m = PersistenceModel()
    filled, sd = filled_sd_at_points(ds, table, days, models={1: m, 2: m})
    assert filled["land"].notna().all() and sd["land"].isna().all()
