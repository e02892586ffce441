"""Training, transfer, evaluation and the CLI on tiny configs and mock data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data_catalog import schema
from model.config import CONFIG_DIR, ModelConfig, TrainConfig, TransferConfig
from model.datasets import Sampler, load_period
from model.tensors import NormStats
from model.testing import mock_world
from model.train import train
from model.wrapper import GapFiller

TINY = dict(model=ModelConfig(filters=[4], head_filters=4), seq_len=4, burn_in_max=2, patch=8,
            batch_size=2, epochs=2, steps_per_epoch=2, val_batches=1, lookback=4,
            num_threads=1)


@pytest.fixture(scope="module")
def world():
    """Two AMSR2 years and a bit of AMSR-E on a 12 x 12 grid."""
    import xarray as xr

    a = mock_world(ntime=3 * 365, nlat=12, nlon=12, start="2013-01-01", seed=1)
    e = mock_world(ntime=2 * 365, nlat=12, nlon=12, start="2009-01-01", seed=2)
    e["amsr_sm"] = (e.amsr_sm * 1.1 + 0.03).astype(np.float32)  # AMSR-E calibration
    e.amsr_sm.attrs["units"] = "m3 m-3"
    return xr.concat([e, a], dim="time", data_vars="minimal", coords="minimal",
                     compat="override", join="outer")


def _cfg(**kw):
    d = dict(TINY)
    d.update(train_years=[2013, 2014], val_years=[2015, 2015], test_years=[2015, 2015])
    d.update(kw)
    return TrainConfig(**d)


def test_configs_load():
    for name in ("amsr2.yml", "tiny.yml"):
        cfg = TrainConfig.from_yaml(CONFIG_DIR / name)
        assert isinstance(cfg.model, ModelConfig)
    t = TransferConfig.from_yaml(CONFIG_DIR / "amsre.yml")
    assert t.freeze_convlstm and t.sensor == "amsre" and t.test_years == [2010, 2010]
    assert TrainConfig.from_dict(_cfg().to_dict()) == _cfg()


def test_unknown_config_key(tmp_path):
    from data_catalog.errors import FormatError

    p = tmp_path / "c.yml"
    p.write_text("sequence_length: 3\n")
    with pytest.raises(FormatError, match="sequence_length"):
        TrainConfig.from_yaml(p)


def test_sampler_hides_observed_pixels_and_scores_them(world):
    d = load_period(world, [2013, 2014], sensor=schema.SENSOR_AMSR2)
    cfg = _cfg(hide_prob=1.0, hide_day_prob=0.0, hide_window_prob=0.0, batch_size=4,
               drop_ascat_prob=0.0, observed_weight=0.5, hidden_weight=2.0)
    b = Sampler(d, NormStats(0.25, 0.05, 50, 20), cfg).sample(np.random.default_rng(0),
                                                               burn_in=2)
    k = int(b["burn_in"])
    vis = b["x"][:, k:, 1] > 0
    w = b["weight"]
    hidden = w == 2.0
    assert hidden.any() and (w == 0.5).any() and (w == 0).any()
    assert not (hidden & vis).any()          # a hidden pixel is not in the input
    assert ((w == 0.5) == vis).all()          # every visible pixel is an observed target
    # whole sequences without AMSR and without ASCAT
    cfg2 = _cfg(hide_window_prob=1.0, drop_ascat_prob=1.0)
    b2 = Sampler(d, NormStats(0.25, 0.05, 50, 20), cfg2).sample(np.random.default_rng(1))
    assert (b2["x"][:, :, 1] == 0).all() and (b2["x"][:, :, 3] == 0).all()
    assert (b2["weight"] > 0).any()


def test_sampler_hides_long_gaps_and_pixel_blocks(world):
    """A multi-week gap removes all AMSR of the patch from the burn-in into the scored days;
    a pixel block loses its AMSR on every day, burn-in included; both are scored."""
    d = load_period(world, [2013, 2014], sensor=schema.SENSOR_AMSR2)
    stats = NormStats(0.25, 0.05, 50, 20)
    base = dict(hide_prob=0.0, hide_day_prob=0.0, hide_window_prob=0.0, drop_ascat_prob=0.0,
                seq_len=8, burn_in_max=14, patch=12, batch_size=6, hidden_weight=2.0)
    b = Sampler(d, stats, _cfg(**base, hide_weeks_prob=1.0)).sample(
        np.random.default_rng(0), burn_in=14)
    vis = (b["x"][:, :, 1] > 0).numpy()
    empty = ~vis.any(axis=(2, 3))                       # (B, days): days without AMSR
    for e in empty:
        run = np.flatnonzero(e)
        assert len(run) >= 7 and (np.diff(run) == 1).all() and run[-1] >= 14
    assert (b["weight"].numpy() == 2.0).any()
    b = Sampler(d, stats, _cfg(**base, hide_block_prob=1.0, hide_block_size=[4, 4])).sample(
        np.random.default_rng(1), burn_in=6)
    vis = (b["x"][:, :, 1] > 0).numpy()
    never = ~vis.any(axis=1)                            # (B, P, P): pixels never visible
    hidden = (b["weight"].numpy() == 2.0).any(axis=1)
    for nv, hd in zip(never, hidden, strict=True):
        rows, cols = np.flatnonzero(nv.any(1)), np.flatnonzero(nv.any(0))
        assert hd.any() and not (hd & ~nv).any()        # scored pixels are never visible
        assert len(rows) >= 4 and len(cols) >= 4        # at least the 4 x 4 block


def test_excluded_year_is_never_read_and_never_straddled(world):
    """``exclude_years`` takes a year out of the middle of the training span; sequences do
    not run across the hole."""
    d = load_period(world, [2013, 2015], sensor=schema.SENSOR_AMSR2, exclude=[2014])
    assert set(d.time.year) == {2013, 2015}
    sampler = Sampler(d, NormStats(0.25, 0.05, 50, 20), _cfg(seq_len=6, burn_in_max=4))
    rng = np.random.default_rng(0)
    n2013 = int((d.time.year == 2013).sum())
    for _ in range(300):
        t0 = sampler._start(rng, 4, 6, len(d.time))
        assert t0 + 6 <= n2013 or t0 - 4 >= n2013


def test_train_writes_checkpoint_with_metadata_and_is_reproducible(world, tmp_path):
    m1, info = train(_cfg(), world=world, progress=False, out=tmp_path / "a.pt")
    m2, _ = train(_cfg(), world=world, progress=False, out=tmp_path / "b.pt")
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(v1, v2), k  # seeded: bit-identical
    back = GapFiller.load(tmp_path / "a.pt")
    meta = back.metadata
    assert meta["training"]["period"] == ["2013-01-01", "2014-12-31"]
    assert meta["training"]["validation"] == ["2015-01-01", "2015-12-31"]
    assert len(meta["data_fingerprint"]) == 64 and meta["parent"] is None
    assert meta["config"]["seq_len"] == 4 and meta["sensor"] == "amsr2"
    assert len(meta["training"]["history"]["val_rmse"]) >= 1
    assert (tmp_path / "a_loss.png").stat().st_size > 1000
    assert info["sha256"] == meta["checkpoint_sha256"]


def test_transfer_records_parent_freezes_and_matches(world, tmp_path):
    from model.transfer import transfer

    train(_cfg(), world=world, progress=False, out=tmp_path / "p.pt")
    tcfg = TransferConfig(**{**TINY, "train_years": [2009, 2009], "val_years": [2010, 2010],
                             "test_years": [2010, 2010], "reference_years": [2013, 2014]})
    child, info = transfer(tcfg, tmp_path / "p.pt", world=world, progress=False,
                           out=tmp_path / "c.pt")
    parent = GapFiller.load(tmp_path / "p.pt")
    back = GapFiller.load(tmp_path / "c.pt")
    assert back.metadata["parent"]["sha256"] == parent.metadata["checkpoint_sha256"]
    assert back.sensor == "amsre" and back.has_matching
    for (k, v) in parent.state_dict().items():
        if k.startswith("net.convlstm"):
            assert torch.equal(v, back.state_dict()[k]), k  # frozen
    assert any(not torch.equal(v, back.state_dict()[k]) for k, v in parent.state_dict().items()
               if k.startswith("net.head"))
    seam = back.metadata["seam"]
    # the +0.03 offset and 1.1 gain are matched away: a real reduction, not a rounding
    # (a matching that does nothing left the seam within 1e-4 of its value)
    assert seam["after_transfer"] < 0.5 * seam["before_transfer"]
    assert (tmp_path / "c_seam.png").exists()


def test_evaluate_json_shape_and_cli(world, tmp_path):
    from gapfill.cli import main
    from model.transfer import transfer

    store = tmp_path / "world.zarr"
    world.to_zarr(store, consolidated=False)
    ck = tmp_path / "ck"
    train(_cfg(), world=world, progress=False, out=ck / "amsr2.pt")
    tcfg = TransferConfig(**{**TINY, "train_years": [2009, 2009], "val_years": [2010, 2010],
                             "test_years": [2010, 2010], "reference_years": [2013, 2014]})
    transfer(tcfg, ck / "amsr2.pt", world=world, progress=False, out=ck / "amsre.pt")
    rc = main(["evaluate", "--json", "--world", str(store), "--checkpoint-dir", str(ck),
               "--out", str(tmp_path / "rep"), "--device", "cpu"])
    assert rc == 0
    rep = json.loads((tmp_path / "rep" / "evaluation.json").read_text())
    assert set(rep) == {"sensors", "seam", "strata"}
    from model.evaluate import SEAM_KEYS

    assert set(rep["seam"]) == set(SEAM_KEYS)  # the seam and the climate-difference figures
    assert -1 <= rep["seam"]["climate_r_after_transfer"] <= 1
    assert set(rep["sensors"]) == {"amsr2", "amsre"}
    # the strata of both test years (the world has no no-ASCAT year 2005: skipped)
    assert set(rep["strata"]) == {"amsr2_2015", "amsre_2010"}
    s = rep["strata"]["amsr2_2015"]
    assert s["test_year_role"] == "validation"  # _cfg() validates on 2015 too
    assert {"natural_gaps", "hidden_days", "spatial_blocks", "temporal_blocks",
            "all_hidden"} <= set(s)
    nat = s["natural_gaps"]
    assert [k for k in nat["gap_days"]] == ["1", "2-3", "4-10", "11-30", ">30 or never"]
    assert set(nat["gap_category"]) == {"rfi", "dense_vegetation", "frozen_ground", "swath",
                                        "invalid"}
    assert sum(c["n"] for c in nat["gap_days"].values()) == nat["n"] > 0
    cell = nat["all"]["calibrated_truth"]
    assert set(cell["methods"]) == {"convlstm", "linear", "climatology", "dctpls", "ascat_cdf"}
    assert set(cell["methods"]["convlstm"]) == {"rmse", "bias", "r", "r_pixels", "n",
                                                "coverage"}
    assert "observation" in s["hidden_days"]["all"] and "observation" not in nat["all"]
    md = (tmp_path / "rep" / "evaluation.md").read_text()
    assert "## Strata: amsr2_2015" in md and "| natural gaps | >30 or never d |" in md
    assert "not a held-out score" in md
    assert (tmp_path / "rep" / "evaluation_strata.png").stat().st_size > 10_000
    for scores in rep["sensors"].values():
        assert set(scores) == {"convlstm", "linear", "climatology", "dctpls", "ascat_cdf"}
        for s in scores.values():
            assert set(s) == {"hidden", "natural_gaps"}
            assert set(s["hidden"]) == {"rmse", "ubrmse", "bias", "r", "n"}
            assert s["hidden"]["n"] > 0
    md = (tmp_path / "rep" / "evaluation.md").read_text()
    assert "| convlstm |" in md and "climatology map against the true one: R" in md
    # predict through the CLI, written as netCDF
    nc = tmp_path / "day.nc"
    rc = main(["predict", "--region", "-99.5,30.5,-98,32", "--date", "2015-03-01",
               "--world", str(store), "--checkpoint", str(ck / "amsr2.pt"), "--device",
               "cpu", "--out", str(nc)])
    assert rc == 0
    import xarray as xr

    with xr.open_dataset(nc) as day:
        assert "filled_sm" in day and day.attrs["lookback_days"] == 4
