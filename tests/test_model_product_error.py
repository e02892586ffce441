"""``filled_sm_uncertainty`` of observed pixel-days from the product's own error
(``amsr_sm_error``) where the world carries it, the error model elsewhere: the one rule
(:func:`model.errors.with_product_error`) in every path that writes the SD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import locations, schema
from model import errors as er
from tests.test_series import mock_world


# ---------------------------------------------------------------- the rule (no checkpoints)
class _Linear:
    """A stand-in AMSR-E model whose reference matching is ``0.05 + 1.5 x``."""

    sensor = "amsre"
    lead_days = 0

    def to_reference(self, x, lat, lon):
        return 0.05 + 1.5 * np.asarray(x, np.float32)


def _error_model(seed: int = 0) -> er.ErrorModel:
    rng = np.random.default_rng(seed)
    feats = er.features(rng.integers(0, 40, 5000), 1, rng.random(5000) < 0.5,
                        rng.integers(0, 6, 5000), rng.integers(1, 13, 5000))
    return er.ErrorModel({"amsre": er.Table.fit(feats, rng.normal(0, 0.05, 5000))}, {})


def test_with_product_error_takes_the_product_error_on_observed_pixels_only():
    sd = np.full((2, 3), 0.04, np.float32)
    observed = np.array([[True, True, True], [False, False, True]])
    perr = np.array([[0.02, np.nan, 0.0], [0.03, 0.03, 0.01]])
    got = er.with_product_error(sd, observed, perr, 1.5)
    # observed with an error: 1.5 x it; missing or 0 (no usable SD): the error model's;
    # filled pixel-days keep the error model's even where a value is given
    np.testing.assert_allclose(got, [[0.03, 0.04, 0.04], [0.04, 0.04, 0.015]], rtol=1e-6)
    assert got.dtype == np.float32
    assert er.with_product_error(sd, observed, None, 1.5) is sd


def test_series_tracker_uses_the_product_error_scaled_by_the_matching_gain():
    rng = np.random.default_rng(3)
    t, h, w = 30, 3, 4
    valid = rng.random((t, h, w)) < 0.4
    perr = np.where(valid, rng.uniform(0.01, 0.08, (t, h, w)), np.nan).astype(np.float32)
    perr[0, 0, 0] = np.nan  # an observation without its error
    valid[0, 0, 0] = True
    kw = dict(lead=0, ascat=rng.random((t, h, w)) < 0.5, category=np.where(valid, 0, 2),
              months=np.full(t, 7), models=[_Linear()] * t)
    em = _error_model()
    plain = er.SeriesTracker(em, np.zeros(h), np.zeros(w)).block(
        0, valid, np.zeros((0, h, w), bool), **kw)
    got = er.SeriesTracker(em, np.zeros(h), np.zeros(w)).block(
        0, valid, np.zeros((0, h, w), bool), product_error=perr, **kw)
    have = valid & np.isfinite(perr)
    np.testing.assert_allclose(got[have], 1.5 * perr[have], rtol=1e-6)
    np.testing.assert_array_equal(got[~have], plain[~have])
    assert got[0, 0, 0] == plain[0, 0, 0]
    assert not np.allclose(got[have], plain[have])  # the rule did change something


def test_uncertainty_attrs_say_where_the_sd_comes_from():
    plain, product = er.uncertainty_attrs(), er.uncertainty_attrs(True)
    assert plain["source"] == er.SOURCE_ERROR_MODEL
    assert product["source"].startswith("observed: the product's own error variable "
                                        "amsr_sm_error")
    assert "filled: the error model" in product["source"]
    assert {k: v for k, v in plain.items() if k not in ("source", "comment")} == \
        {k: v for k, v in product.items() if k not in ("source", "comment")}


# ---------------------------------------------------------------- shipped checkpoints
def shipped() -> None:
    if not (locations.checkpoint_dir() / "amsr2.pt").exists() or not er.path_for().exists():
        pytest.skip(f"no shipped checkpoints and error model in {locations.checkpoint_dir()}")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """The same mock world without and with a known ``amsr_sm_error``."""
    from data_catalog.worlds import open_world

    d = tmp_path_factory.mktemp("perr")
    plain = mock_world(d / "plain.zarr")
    product = mock_world(d / "product.zarr", with_error=True)
    return {"plain": (plain, open_world(plain)), "product": (product, open_world(product))}


REGION = (-100.0, 30.0, -97.0, 33.0)  # the whole mock world


# AMSR-E and AMSR2 days with the mock's most gaps (15 and 19 of its 141 land cells)
@pytest.mark.parametrize("date", ["2011-09-24", "2012-07-03"])
def test_predict_observed_sd_is_the_product_error_filled_sd_the_error_model(worlds, date):
    shipped()
    from model.inference import load_models, model_for_sensor, predict

    plain = predict(worlds["plain"][1], REGION, date, device="cpu")
    got = predict(worlds["product"][1], REGION, date, device="cpu")
    np.testing.assert_array_equal(got.filled_sm.values, plain.filled_sm.values)
    observed = got.source_flag.values <= schema.SOURCE_OBSERVED_AMSR2
    filled = ~observed & got.land.values
    assert observed.sum() > 100 and filled.sum() >= 12
    model = model_for_sensor(load_models(None, "cpu"), schema.sensor_for_date(date))
    gain = er.reference_gain(model, got.lat.values, got.lon.values)
    want = got[schema.AMSR_SM_ERROR].values * gain
    sd = got[er.UNCERTAINTY].values
    np.testing.assert_allclose(sd[observed], want[observed], rtol=1e-6)
    np.testing.assert_array_equal(sd[filled], plain[er.UNCERTAINTY].values[filled])
    assert not np.allclose(sd[observed], plain[er.UNCERTAINTY].values[observed])
    assert got[er.UNCERTAINTY].attrs["source"] == er.SOURCE_PRODUCT_ERROR
    assert plain[er.UNCERTAINTY].attrs["source"] == er.SOURCE_ERROR_MODEL
    if date.startswith("2011"):  # the AMSR-E model's matching gain is really applied
        assert np.ptp(gain) > 0 and not np.allclose(gain, 1.0)


def test_a_cache_entry_keys_and_keeps_the_product_error(worlds, tmp_path):
    shipped()
    from model.cache import InferenceCache, cached_predict, predict_key

    ds = worlds["product"][1]
    key = predict_key(ds, REGION, "2012-07-03", device="cpu").digest
    other = ds.copy()
    other[schema.AMSR_SM_ERROR] = other[schema.AMSR_SM_ERROR] * 2
    assert predict_key(other, REGION, "2012-07-03", device="cpu").digest != key
    cache = InferenceCache(tmp_path / "cache")
    first = cached_predict(ds, REGION, "2012-07-03", device="cpu", cache=cache)
    again = cached_predict(ds, REGION, "2012-07-03", device="cpu", cache=cache)
    xr.testing.assert_identical(first[er.UNCERTAINTY], again[er.UNCERTAINTY])
    assert again[er.UNCERTAINTY].attrs["source"] == er.SOURCE_PRODUCT_ERROR


SERIES = ("2011-09-26", "2011-10-06")  # AMSR-E days, then the gap year's first days


@pytest.fixture(scope="module")
def stores(worlds, tmp_path_factory):
    shipped()
    from model import series

    d = tmp_path_factory.mktemp("stores")
    out = {}
    for name, (path, _) in worlds.items():
        p = series.build_series(d / f"{name}.zarr", str(path), start=SERIES[0], end=SERIES[1],
                                models=series.SHIPPED_MODELS, tile=12, halo=8,
                                scheduler="synchronous", progress=False)
        out[name] = xr.open_zarr(p, consolidated=False).load()
        out[name].attrs["store_path"] = str(p)
    return out


def test_series_store_observed_sd_is_the_product_error(worlds, stores):
    from model.inference import load_models

    plain, got = stores["plain"], stores["product"]
    world = worlds["product"][1].sel(time=slice(*SERIES)).load()
    flag = got[schema.SOURCE_FLAG].values
    observed = flag <= schema.SOURCE_OBSERVED_AMSR2
    filled = (flag == schema.SOURCE_FILLED) | (flag == schema.SOURCE_FILLED_FROZEN)
    assert observed.sum() > 200 and filled.sum() > 200
    model = load_models(None, "cpu")["amsre"]  # the days are AMSR-E days
    gain = er.reference_gain(model, got.lat.values, got.lon.values)
    want = world[schema.AMSR_SM_ERROR].values * gain[None]
    sd = got[er.UNCERTAINTY].values
    np.testing.assert_allclose(sd[observed], want[observed], rtol=1e-5)
    np.testing.assert_array_equal(sd[filled], plain[er.UNCERTAINTY].values[filled])
    np.testing.assert_array_equal(got[schema.FILLED_SM].values, plain[schema.FILLED_SM].values)
    assert got[er.UNCERTAINTY].attrs["source"] == er.SOURCE_PRODUCT_ERROR
    assert plain[er.UNCERTAINTY].attrs["source"] == er.SOURCE_ERROR_MODEL


def test_export_and_points_carry_the_same_sd(worlds, stores, tmp_path):
    from model.points import filled_sd_at_points
    from model.series_export import export_netcdf

    path, ds = worlds["product"]
    store = stores["product"]
    land = np.argwhere(store[schema.LAND].values)
    i, j = land[len(land) // 3]
    table = pd.DataFrame({"id": ["p"], "lat": [float(store.lat[i])],
                          "lon": [float(store.lon[j])]})
    days = pd.DatetimeIndex(store[schema.TIME].values)
    _, sd = filled_sd_at_points(ds, table, days)
    np.testing.assert_allclose(sd["p"].to_numpy(), store[er.UNCERTAINTY].values[:, i, j],
                               rtol=0, atol=1e-5)
    nc = export_netcdf(store.attrs["store_path"], tmp_path / "out.nc")
    with xr.open_dataset(nc) as out:
        assert out[er.UNCERTAINTY].attrs["source"] == er.SOURCE_PRODUCT_ERROR
        np.testing.assert_allclose(out[er.UNCERTAINTY].values, store[er.UNCERTAINTY].values,
                                   rtol=1e-6)


def test_points_read_the_error_model_once_per_call(worlds, monkeypatch):
    shipped()
    from model.points import filled_sd_at_points

    _, ds = worlds["product"]
    land = np.argwhere(ds[schema.LAND].values)[::7][:4]
    table = pd.DataFrame({"id": [f"p{k}" for k in range(len(land))],
                          "lat": [float(ds.lat[i]) for i, _ in land],
                          "lon": [float(ds.lon[j]) for _, j in land]})
    calls = []
    real = er.ErrorModel.load.__func__

    def counting(cls, path):
        calls.append(path)
        return real(cls, path)

    monkeypatch.setattr(er.ErrorModel, "load", classmethod(counting))
    _, sd = filled_sd_at_points(ds, table, pd.date_range("2011-09-28", "2011-10-01"))
    assert len(calls) == 1 and len(table) == 4
    assert all(s.notna().all() for s in sd.values())
