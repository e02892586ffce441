"""``gapfill train`` and ``gapfill transfer`` run once each through the installed command,
on the tiny config (``model/configs/tiny.yml``) and a small mock world: the checkpoints,
their plots and their metadata, the parent link of the transferred model included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from model.checkpoint_file import read_metadata
from model.config import CONFIG_DIR
from model.testing import mock_world

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world_store(tmp_path_factory) -> Path:
    """Two AMSR-E years (2009-2010) and three AMSR2 years (2013-2015) on 12 x 12 cells."""
    import xarray as xr

    a = mock_world(ntime=3 * 365, nlat=12, nlon=12, start="2013-01-01", seed=1)
    e = mock_world(ntime=2 * 365, nlat=12, nlon=12, start="2009-01-01", seed=2)
    e["amsr_sm"] = (e.amsr_sm * 1.1 + 0.03).astype(np.float32)  # AMSR-E calibration
    e.amsr_sm.attrs["units"] = "m3 m-3"
    ds = xr.concat([e, a], dim="time", data_vars="minimal", coords="minimal",
                   compat="override", join="outer")
    store = tmp_path_factory.mktemp("fit") / "world.zarr"
    ds.to_zarr(store, consolidated=False)
    return store


def tiny_config(path: Path, **years) -> Path:
    """tiny.yml with the years of the mock world (the CLI takes the rest as it is)."""
    cfg = yaml.safe_load((CONFIG_DIR / "tiny.yml").read_text())
    cfg.update(years)
    path.write_text(yaml.safe_dump(cfg))
    return path


def gapfill(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "gapfill"  # the console script of this environment
    return subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONWARNINGS": "error"})


@pytest.mark.slow
def test_train_then_transfer_through_the_command_line(world_store, tmp_path):
    from model.cache import file_sha256

    ck = tmp_path / "checkpoints"
    train_cfg = tiny_config(tmp_path / "train.yml", train_years=[2013, 2014],
                            val_years=[2015, 2015], test_years=[2015, 2015])
    res = gapfill("train", "--config", str(train_cfg), "--world", str(world_store),
                  "--out", str(ck / "amsr2.pt"), "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    parent = ck / "amsr2.pt"
    meta = read_metadata(parent)
    assert res.stdout.startswith(f"wrote {parent} (sha256 {file_sha256(parent)[:16]}), loss")
    assert (ck / "amsr2_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert meta["sensor"] == "amsr2" and meta["parent"] is None
    assert meta["config"]["seq_len"] == 4 and meta["config"]["model"]["filters"] == [4]
    assert meta["model"]["lead_days"] == 1  # tiny.yml's look-ahead
    assert meta["training"]["period"] == ["2013-01-01", "2014-12-31"]
    assert meta["training"]["validation"] == ["2015-01-01", "2015-12-31"]

    transfer_cfg = tiny_config(tmp_path / "transfer.yml", sensor="amsre",
                               train_years=[2009, 2009], val_years=[2010, 2010],
                               test_years=[2010, 2010], reference_years=[2013, 2014],
                               out=str(tmp_path / "not-used.pt"))
    res = gapfill("transfer", "--from", str(parent), "--config", str(transfer_cfg),
                  "--world", str(world_store), "--out", str(ck / "amsre.pt"), "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    child = read_metadata(ck / "amsre.pt")
    assert res.stdout.startswith(f"wrote {ck / 'amsre.pt'} (sha256 "
                                 f"{file_sha256(ck / 'amsre.pt')[:16]}); seam RMS before")
    assert not (tmp_path / "not-used.pt").exists()  # --out wins over the config's out
    assert child["sensor"] == "amsre"
    # the parent link: the file it was tuned from, by path and by the bytes of that file
    assert child["parent"]["path"] == str(parent)
    assert child["parent"]["sha256"] == file_sha256(parent)
    assert child["parent"]["sensor"] == "amsr2"
    assert child["parent"]["data_fingerprint"] == meta["data_fingerprint"]
    assert (ck / "amsre_seam.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # both load through the verifying loader
    from model.wrapper import GapFiller

    assert GapFiller.load(ck / "amsre.pt").metadata["parent"]["sha256"] == file_sha256(parent)
