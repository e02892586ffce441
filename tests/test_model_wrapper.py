"""tensors + wrapper: channels, input checks, checkpoint round trip, matching, loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_catalog.errors import DataError, FormatError, MissingFileError, MissingVariableError
from model.config import ModelConfig, TrainConfig
from model.tensors import CHANNELS, NormStats, to_array
from model.testing import mock_world
from model.train import masked_loss
from model.wrapper import GapFiller

STATS = NormStats(0.25, 0.05, 50.0, 20.0)


@pytest.fixture
def mock_ds():
    return mock_world()


def _model(seed=0):
    torch.manual_seed(seed)
    return GapFiller(ModelConfig(filters=[4, 4], head_filters=4), STATS,
                     {"sensor": "amsr2", "config": TrainConfig().to_dict(),
                      "training": {"period": ["2013-01-01", "2020-12-31"]},
                      "data_fingerprint": "abc", "parent": None})


def test_channels_of_a_dataset(mock_ds):
    x = to_array(mock_ds, STATS)
    assert x.shape == (20, len(CHANNELS), 16, 16) and x.dtype == np.float32
    obs = (mock_ds.gap_mask.values == 0) & np.isfinite(mock_ds.amsr_sm.values)
    np.testing.assert_array_equal(x[:, 1], obs)
    np.testing.assert_allclose(x[:, 0][obs], (mock_ds.amsr_sm.values[obs] - 0.25) / 0.05,
                               rtol=1e-5)
    assert (x[:, 0][~obs] == 0).all()  # the fill value
    asc = np.isfinite(mock_ds.ascat_sm.values)
    np.testing.assert_array_equal(x[:, 3], asc)
    assert (x[:, 2][~asc] == 0).all()
    doy = mock_ds.time.dt.dayofyear.values
    np.testing.assert_allclose(x[:, 4, 0, 0], np.sin(2 * np.pi * doy / 365.25), rtol=1e-5)
    np.testing.assert_allclose(x[:, 5, 3, 7], np.cos(2 * np.pi * doy / 365.25), rtol=1e-5)


def test_no_ascat_is_said_by_the_mask(mock_ds):
    x = to_array(mock_ds.drop_vars("ascat_sm"), STATS)
    assert (x[:, 3] == 0).all() and (x[:, 2] == 0).all()


def test_input_checks(mock_ds):
    m = _model()
    with pytest.raises(MissingVariableError, match="amsr_sm"):
        m.prepare(mock_ds.drop_vars("amsr_sm"))
    with pytest.raises(DataError, match="consecutive"):
        m.prepare(mock_ds.isel(time=[0, 1, 3]))
    with pytest.raises(DataError, match="dims"):
        m.prepare(mock_ds.transpose("lat", "time", "lon"))
    with pytest.raises(DataError, match="channels"):
        m.stream(torch.zeros(1, 3, 5, 8, 8))
    with pytest.raises(DataError, match="floating"):
        m.stream(torch.zeros(1, 3, 6, 8, 8, dtype=torch.int64))


def test_stream_units_and_state(mock_ds):
    m = _model()
    x = m.prepare(mock_ds)
    assert x.shape == (1, 20, 6, 16, 16)
    sm, state = m.stream(x)
    assert sm.shape == (1, 20, 16, 16) and sm.dtype == torch.float32
    assert float(sm.min()) >= 0 and float(sm.max()) <= 1
    a, s = m.stream(x[:, :7])
    b, _ = m.stream(x[:, 7:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), sm, atol=1e-5, rtol=1e-5)
    assert not sm.requires_grad


def test_checkpoint_round_trip(tmp_path, mock_ds):
    m = _model(3)
    m.set_matching(np.full((16, 16), 0.2), np.full((16, 16), 0.04), np.full((16, 16), 0.25),
                   np.full((16, 16), 0.05), mock_ds.lat.values, mock_ds.lon.values)
    sha = m.save(tmp_path / "m.pt")
    back = GapFiller.load(tmp_path / "m.pt")
    assert back.metadata["checkpoint_sha256"] == sha and len(sha) == 64
    for key in ("config", "norm", "training", "data_fingerprint", "code_version", "parent",
                "sensor", "model", "channels"):
        assert key in back.metadata, key
    assert back.metadata["norm"]["amsr_std"] == pytest.approx(0.05)
    assert back.stats == m.stats
    assert back.has_matching
    x = m.prepare(mock_ds)
    torch.testing.assert_close(back.stream(x)[0], m.stream(x)[0])
    torch.testing.assert_close(back.prepare(mock_ds), x)


def test_load_errors(tmp_path):
    with pytest.raises(MissingFileError):
        GapFiller.load(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FormatError):
        GapFiller.load(tmp_path / "bad.pt")


def test_matching_is_inverted_exactly(mock_ds):
    m = _model()
    rng = np.random.default_rng(0)
    maps = [rng.uniform(0.1, 0.3, (16, 16)), rng.uniform(0.02, 0.06, (16, 16)),
            rng.uniform(0.1, 0.3, (16, 16)), rng.uniform(0.02, 0.06, (16, 16))]
    m.set_matching(*maps, mock_ds.lat.values, mock_ds.lon.values)
    a = mock_ds.amsr_sm.values[:3]
    ref = m.to_reference(a, mock_ds.lat.values, mock_ds.lon.values)
    z = (a[1] - maps[0]) / maps[1]
    np.testing.assert_allclose(ref[1], z * maps[3] + maps[2], rtol=1e-5)
    back = m.from_reference(ref, mock_ds.lat.values, mock_ds.lon.values)
    np.testing.assert_allclose(back, a, rtol=1e-4, atol=1e-6)


def test_masked_loss_ignores_gap_pixels():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 3, 5, 5, generator=g, requires_grad=True)
    target = torch.randn(2, 3, 5, 5, generator=g)
    weight = torch.ones(2, 3, 5, 5)
    weight[0, 1, 2, 2] = 0.0  # a gap: no valid target
    base = masked_loss(pred, target, weight)
    t2 = target.clone()
    t2[0, 1, 2, 2] = float("nan")
    p2 = pred.detach().clone()
    p2[0, 1, 2, 2] = 1e6
    assert masked_loss(pred, t2, weight) == base
    assert masked_loss(p2, target, weight) == base
    base.backward()
    assert pred.grad[0, 1, 2, 2] == 0 and pred.grad[0, 1, 2, 3] != 0
    # and a valid pixel does change it; weights are honoured (known value)
    p3 = pred.detach().clone()
    p3[0, 1, 2, 3] += 1.0
    assert masked_loss(p3, target, weight) != base
    w = torch.tensor([[[[2.0, 0.0]]]])
    assert masked_loss(torch.tensor([[[[1.0, 5.0]]]]), torch.tensor([[[[0.0, 0.0]]]]),
                       w) == pytest.approx(1.0)


def test_channels_on_demo_like_schema():
    ds = mock_world(ntime=5, nlat=8, nlon=8, start="2005-06-01")
    ds["ascat_sm"] = ds.ascat_sm.where(False)  # before 2007: no ASCAT at all
    x = to_array(ds, STATS)
    assert (x[:, 3] == 0).all()
    assert np.isfinite(x).all()
