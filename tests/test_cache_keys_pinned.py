"""Cache keys pinned to digests computed before ``model/cache.py`` was split: entries
written by earlier versions of the code keep hitting.  If one of these fails, the key of
every existing cache entry changed: bump ``FORMAT_VERSION`` on purpose, or undo the change.

The inputs are built from ``arange`` and fixed bytes (no random numbers, no mock factory),
so only the key code can move the digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import schema
from model.cache import make_key

REPO = Path(__file__).resolve().parents[1]
REGION = (-100.0, 30.0, -98.0, 32.0)


def fixed_world() -> xr.Dataset:
    """6 days on an 8 x 8 grid of 0.25 degree cells from (30, -100), values from arange."""
    nt, ny, nx = 6, 8, 8
    v = np.arange(nt * ny * nx, dtype=np.float32).reshape(nt, ny, nx)
    land = np.ones((ny, nx), bool)
    land[0, :2] = False
    gap = (np.arange(v.size).reshape(v.shape) % 7 == 0).astype(np.int8)
    gap[:, ~land] = schema.NOT_LAND
    amsr = np.where(gap == schema.OBSERVED, 0.1 + v / 1000, np.nan).astype(np.float32)
    dims = schema.GRID_DIMS
    return xr.Dataset(
        {schema.AMSR_SM: (dims, amsr), schema.GAP_MASK: (dims, gap),
         schema.ASCAT_SM: (dims, (20 + v / 10).astype(np.float32)),
         schema.LAND: ((schema.LAT, schema.LON), land)},
        coords={schema.TIME: pd.date_range("2015-06-01", periods=nt, freq="D"),
                schema.LAT: 30.125 + 0.25 * np.arange(ny),
                schema.LON: -99.875 + 0.25 * np.arange(nx),
                schema.SENSOR: (schema.TIME, np.full(nt, schema.SENSOR_AMSR2, np.int8))})


def test_key_of_a_dataset_request_is_pinned(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights-1")
    world = fixed_world()
    key = make_key(checkpoint=ckpt, inputs=world, region=REGION, dates=world.time.values,
                   config={"lookback": 3})
    assert key.inputs["inputs"]["dataset_sha256"] == (
        "c775334aa76849b3f755fccd1316ad27c627886077947af7f83273e457fce1d6")
    assert key.digest == "df57b61efcfe485fae426a1344fbadb783c4ac3415e13651f8d14e6a195163f3"


def test_key_of_a_file_request_is_pinned(tmp_path):
    a, b = tmp_path / "amsr2.pt", tmp_path / "amsre.pt"
    a.write_bytes(b"base")
    b.write_bytes(b"transferred")
    f = tmp_path / "input.nc"
    f.write_bytes(b"abc")
    store = tmp_path / "store.zarr"
    (store / "x" / "c").mkdir(parents=True)
    for name, data in (("zarr.json", b"{}"), ("x/zarr.json", b"{ }"), ("x/c/0", b"\0" * 5)):
        (store / name).write_bytes(data)
        os.utime(store / name, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    key = make_key(checkpoint={"amsre": b, "amsr2": a}, inputs=[f, store], region=REGION,
                   grid=fixed_world(), dates="2015-06-01", config={"tile": 16},
                   dtype="float64")
    assert key.inputs["inputs"]["files"][1]["listing_sha256"] == (
        "62641902e0606f04d083d7d55fc64fc56192331305941f00a772b6e543c9f044")
    assert key.digest == "eab5b0a321f67b6bb047de16a6ce98812758b410c623fe412ff981dd44cff2ac"


def test_key_of_predict_is_pinned():
    torch = pytest.importorskip("torch")
    from model.cache import inference_code_sha256, predict_key
    from model.config import ModelConfig
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    torch.manual_seed(0)
    model = GapFiller(ModelConfig(filters=[4], head_filters=0),
                      NormStats(0.25, 0.08, 50.0, 20.0),
                      {"sensor": "amsr2", "lookback": 3, "checkpoint_sha256": "ab" * 32})
    key = predict_key(fixed_world(), (-99.5, 30.5, -98.5, 31.5), "2015-06-05", model,
                      device="cpu")
    # the code's own hash: the modules that compute a prediction, read from model/
    h = hashlib.sha256()
    for name in ("inference.py", "wrapper.py", "tensors.py", "network.py", "errors.py"):
        h.update(name.encode())
        h.update((REPO / "model" / name).read_bytes())
    assert key.inputs["config"].pop("code_sha256") == inference_code_sha256() == h.hexdigest()
    assert key.inputs == {
        "checkpoint": None,
        "config": {"context": 3, "device": "cpu", "function": "model.inference.predict",
                   "lookback": 3, "model": {"sha256": "ab" * 32}, "sensor": 2,
                   "tile": "auto"},
        "dates": ["2015-06-05"], "dtype": "float32", "format_version": 1,
        "inputs": {"dataset_sha256":
                   "79ce4dfcfbadea6c7c8090087232a94ba65fdc8fdc9c8364cace457025fc534e"},
        "region": {"dlat": 0.25, "dlon": 0.25, "lat": [2, 6], "lat0": 30.125, "lon": [2, 6],
                   "lon0": -99.875},
    }
