"""Look-ahead (``lead_days``): the channels of the following days, and where they are used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_catalog import schema
from model.config import ModelConfig, TrainConfig
from model.datasets import PeriodData, Sampler
from model.inference import predict, stream_arrays
from model.tensors import N_CHANNELS, NormStats, channel_names, channels_from_arrays, n_channels
from model.testing import mock_world
from model.wrapper import GapFiller

STATS = NormStats(0.25, 0.05, 50.0, 20.0)


def _arrays(t=6, h=5, w=4, seed=0):
    rng = np.random.default_rng(seed)
    amsr = rng.uniform(0.05, 0.45, (t, h, w)).astype(np.float32)
    valid = rng.random((t, h, w)) < 0.6
    ascat = np.where(rng.random((t, h, w)) < 0.7, rng.uniform(0, 100, (t, h, w)),
                     np.nan).astype(np.float32)
    doy = np.arange(100, 100 + t)
    return amsr, valid, ascat, doy


def _model(lead: int, seed: int = 0) -> GapFiller:
    torch.manual_seed(seed)
    return GapFiller(ModelConfig(filters=[4], head_filters=4, lead_days=lead), STATS,
                     {"sensor": "amsr2", "lookback": 4})


def test_lead_channels_are_the_following_days():
    amsr, valid, ascat, doy = _arrays()
    base = channels_from_arrays(amsr, valid, ascat, doy, STATS)
    x = channels_from_arrays(amsr, valid, ascat, doy, STATS, lead=2, n_days=4)
    assert x.shape == (4, n_channels(2), 5, 4) == (4, N_CHANNELS + 8, 5, 4)
    assert len(channel_names(2)) == x.shape[1] and channel_names(2)[6] == "amsr_next1"
    np.testing.assert_array_equal(x[:, :N_CHANNELS], base[:4])
    for j in (1, 2):
        c = N_CHANNELS + 4 * (j - 1)
        np.testing.assert_array_equal(x[:, c:c + 4], base[j:4 + j, :4])


def test_lead_channels_past_the_end_are_missing():
    amsr, valid, ascat, doy = _arrays(t=3)
    x = channels_from_arrays(amsr, valid, ascat, doy, STATS, lead=2)
    assert x.shape[0] == 3
    # day 2 has no following day in the arrays: both look-ahead days say "missing"
    assert not x[2, N_CHANNELS:].any()
    assert x[1, N_CHANNELS + 1].any() and not x[1, N_CHANNELS + 4:].any()
    with pytest.raises(ValueError, match="n_days"):
        channels_from_arrays(amsr, valid, ascat, doy, STATS, lead=1, n_days=4)


def test_a_lead_model_sees_the_next_day_and_a_causal_one_does_not():
    amsr, valid, ascat, doy = _arrays(t=8, h=6, w=6)
    for lead, expect_change in ((0, False), (1, True)):
        m = _model(lead)
        out, _ = stream_arrays(m, amsr, valid, ascat, doy, chunk_days=3)
        v2 = valid.copy()
        v2[5] = ~v2[5]  # change what is observed on day 5 only
        out2, _ = stream_arrays(m, amsr, v2, ascat, doy, chunk_days=3)
        np.testing.assert_array_equal(out[:4], out2[:4])  # days before 4: unaffected
        assert bool(np.abs(out[4] - out2[4]).max() > 0) is expect_change
        assert np.abs(out[5] - out2[5]).max() > 0


def test_stream_chunks_equal_one_pass_with_lead():
    """Chunked streaming hands each chunk its look-ahead days: same as one pass."""
    amsr, valid, ascat, doy = _arrays(t=10, h=6, w=6)
    m = _model(2)
    one, _ = stream_arrays(m, amsr, valid, ascat, doy, chunk_days=64)
    chunked, _ = stream_arrays(m, amsr, valid, ascat, doy, chunk_days=3)
    np.testing.assert_allclose(chunked, one, atol=1e-5)


def test_predict_with_lead_uses_the_following_day_and_works_at_the_end():
    world = mock_world(ntime=12, nlat=12, nlon=12, start="2015-06-01", seed=3)
    region = (-100.0, 30.0, -97.0, 33.0)
    m = _model(1)
    out = predict(world, region, "2015-06-08", m, device="cpu")
    assert str(out.time.values)[:10] == "2015-06-08" and out.attrs["lead_days"] == 1
    day = world.sel(time="2015-06-08")
    lat, lon = out.lat.values, out.lon.values
    np.testing.assert_array_equal(out.amsr_sm.values,
                                  day.amsr_sm.sel(lat=lat, lon=lon).values)
    # the next day's observations change the fill of this day
    changed = world.copy(deep=True)
    changed["amsr_sm"].loc[{"time": "2015-06-09"}] = 0.4
    out2 = predict(changed, region, "2015-06-08", m, device="cpu")
    gaps = ~np.isfinite(out.amsr_sm.values) & out.land.values
    assert np.abs(out.filled_sm.values[gaps] - out2.filled_sm.values[gaps]).max() > 0
    last = predict(world, region, "2015-06-12", m, device="cpu")
    assert last.attrs["lead_days"] == 0 and np.isfinite(last.filled_sm.values[
        last.land.values]).all()


def test_sampler_reads_lead_days_and_scores_only_the_sequence():
    t, h, w = 40, 16, 16
    amsr, valid, ascat, doy = _arrays(t=t, h=h, w=w, seed=2)
    import pandas as pd

    d = PeriodData(pd.date_range("2015-01-01", periods=t), np.arange(h) * 0.25,
                   np.arange(w) * 0.25, np.where(valid, amsr, np.nan), valid, ascat,
                   ~valid, np.ones((h, w), bool), sensor=np.full(t, schema.SENSOR_AMSR2))
    cfg = TrainConfig(seq_len=5, burn_in_max=2, patch=8, batch_size=3)
    b = Sampler(d, STATS, cfg, lead=2).sample(np.random.default_rng(0), burn_in=2)
    assert b["x"].shape == (3, 7, n_channels(2), 8, 8)
    assert b["target"].shape == b["weight"].shape == (3, 5, 8, 8)
