"""The shipped demo checkpoints: size, metadata, CPU inference on the demo world."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import locations, schema
from model.inference import load_models, predict
from model.wrapper import GapFiller, file_sha256

CKPT = locations.checkpoint_dir()
REGION = (-98.0, 34.0, -94.0, 38.0)  # Oklahoma / Kansas, inside the demo world


def test_shipped_checkpoints_are_small_and_complete():
    files = sorted(CKPT.glob("*.pt"))
    assert {p.name for p in files} >= {"amsr2.pt", "amsre.pt"}
    assert sum(p.stat().st_size for p in CKPT.iterdir() if p.is_file()) <= 5 * 1024**2
    base = GapFiller.load(CKPT / "amsr2.pt")
    child = GapFiller.load(CKPT / "amsre.pt")
    assert base.sensor == "amsr2" and base.metadata["parent"] is None
    assert child.sensor == "amsre" and child.has_matching
    assert child.metadata["parent"]["sha256"] == file_sha256(CKPT / "amsr2.pt")
    for meta in (base.metadata, child.metadata):
        assert len(meta["data_fingerprint"]) == 64
        assert meta["training"]["period"][0] < meta["training"]["period"][1]
        assert meta["code_version"]
    seam = child.metadata["seam"]
    # a real reduction of the seam (a matching that does nothing leaves it where it was) and
    # a floor on how much of the true climate difference survives (measured 0.36 for the
    # shipped meanstd matching; issue 13's goal of 0.8 is missed: model/README.md)
    assert seam["after_transfer"] < 0.5 * seam["before_transfer"]
    assert seam["climate_r_after_transfer"] > 0.25
    assert seam["climate_rmse_after_transfer"] < 1.5 * seam["truth_difference"]


@pytest.mark.parametrize("date, sensor", [("2022-07-15", 2), ("2010-07-15", 1),
                                          ("2005-03-10", 1), ("2012-02-01", 0)])
def test_shipped_model_fills_the_demo_region_on_cpu(demo_world, date, sensor):
    out = predict(demo_world, REGION, date, device="cpu")
    assert out.attrs["device"] == "cpu" and out.attrs["sensor"] == sensor
    models = load_models(device="cpu")
    expect = models["amsre" if sensor == 1 else "amsr2"].metadata["checkpoint_sha256"]
    assert out.attrs["checkpoint_sha256"] == expect
    f = out.filled_sm.values
    land = out.land.values
    assert np.isfinite(f[land]).all()
    assert 0.0 <= np.nanmin(f) and np.nanmax(f) <= 0.7
    gaps = land & (out.gap_mask.values != 0)
    assert gaps.any()
    # source_flag: fills under frozen ground apart from the other fills
    flag, gm = out.source_flag.values, out.gap_mask.values
    assert (flag[land & (gm == schema.FROZEN)] == schema.SOURCE_FILLED_FROZEN).all()
    assert (flag[gaps & (gm != schema.FROZEN)] == schema.SOURCE_FILLED).all()
    assert (flag[~land] == schema.SOURCE_NOT_LAND).all()
    err = f[gaps] - out.truth_sm.values[gaps]
    # a filled field, not noise: within 0.1 m3/m3 RMS of the truth under the gaps
    assert np.sqrt(np.mean(err**2)) < 0.1


@pytest.mark.parametrize("name, config, sensor", [
    ("amsr2.pt", "amsr2.yml", "amsr2"), ("amsre.pt", "amsre.yml", "amsre")])
def test_shipped_checkpoints_match_the_shipped_configs_and_world(demo_world, name, config,
                                                                  sensor):
    """A changed config or demo-world generator without retraining is caught here."""
    from model.config import CONFIG_DIR, TrainConfig, TransferConfig
    from model.datasets import load_period

    ckpt = GapFiller.load(CKPT / name)
    cfg = (TrainConfig if sensor == "amsr2" else TransferConfig).from_yaml(CONFIG_DIR / config)
    model = ckpt.metadata["model"]
    if sensor == "amsr2":  # the transfer config has no model section: it is the parent's
        assert model == cfg.to_dict()["model"], f"{name} was trained with another model config"
    else:
        assert model == GapFiller.load(CKPT / "amsr2.pt").metadata["model"]
    assert ckpt.metadata["config"]["train_years"] == list(cfg.train_years)
    code = schema.SENSOR_AMSR2 if sensor == "amsr2" else schema.SENSOR_AMSRE
    period = load_period(demo_world, cfg.train_years, region=cfg.region, sensor=code,
                         exclude=cfg.exclude_years)
    assert ckpt.metadata["config"].get("exclude_years", []) == list(cfg.exclude_years)
    assert ckpt.metadata["data_fingerprint"] == period.fingerprint(), (
        f"{name} was trained on another demo world: retrain (model/README.md)")


def test_shipped_error_model_matches_the_shipped_checkpoints():
    """A retrain without `gapfill calibrate-errors` is caught here (model/errors.py)."""
    from model import errors

    path = errors.path_for(CKPT)
    assert path.exists(), f"no error model at {path}: run `gapfill calibrate-errors`"
    em = errors.ErrorModel.load(path)
    for name in ("amsr2", "amsre"):
        sha = file_sha256(CKPT / f"{name}.pt")
        assert not em.stale(name, sha), (
            f"{path.name} was fitted on another {name}.pt: run `gapfill calibrate-errors`")
        # every gap bin was fitted, each from enough residuals
        assert (em.tables[name].n[0] >= errors.MIN_N).all()
