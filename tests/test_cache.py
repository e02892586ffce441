"""The inference cache: keys, round trips, corruption, concurrency, eviction."""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_catalog import schema
from model.cache import (
    FORMAT_VERSION,
    CacheIntegrityError,
    InferenceCache,
    make_key,
    snap_region,
)

REGION = (-100.0, 30.0, -98.0, 32.0)


def mock(**kw) -> xr.Dataset:
    # schema.mock_grid_dataset uses DatetimeIndex.dayofyear, deprecated in pandas 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(pd.errors, "Pandas4Warning", FutureWarning))
        return schema.mock_grid_dataset(**kw)


def stand_in_output(ds: xr.Dataset) -> xr.Dataset:
    """What a model would return: the inputs plus a filled field with holes only off land."""
    out = ds[[schema.AMSR_SM, schema.GAP_MASK, schema.LAND]].copy()
    filled = out[schema.AMSR_SM].fillna(0.25).where(out[schema.GAP_MASK] != schema.NOT_LAND)
    out[schema.FILLED_SM] = filled.astype(np.float32).assign_attrs(
        units=schema.UNITS[schema.FILLED_SM], long_name=schema.LONG_NAMES[schema.FILLED_SM])
    out.attrs.update(model="stand-in", checkpoint_sha256="0" * 64)
    return out


@pytest.fixture
def world() -> xr.Dataset:
    return mock(ntime=6, nlat=8, nlon=8)


@pytest.fixture
def cache(tmp_path) -> InferenceCache:
    return InferenceCache(tmp_path / "cache", max_bytes=10**9)


def key_of(world: xr.Dataset, checkpoint=None, **kw):
    args = dict(checkpoint=checkpoint, inputs=world, region=REGION, dates=world.time.values,
                config={"lookback": 3})
    args.update(kw)
    return make_key(**args)


class Counter:
    def __init__(self, ds: xr.Dataset, delay: float = 0.0):
        self.ds, self.delay, self.n = ds, delay, 0
        self._lock = threading.Lock()

    def __call__(self) -> xr.Dataset:
        with self._lock:
            self.n += 1
        time.sleep(self.delay)
        return stand_in_output(self.ds)


def chunk_file(cache: InferenceCache, key, var: str = schema.FILLED_SM) -> Path:
    files = sorted((cache.path(key) / var / "c").rglob("*"))
    files = [f for f in files if f.is_file()]
    assert files, f"no chunk files of {var}"
    return files[0]


# ---------------------------------------------------------------- keys
def test_key_is_stable_and_changes_with_each_input(world, tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights-1")
    base = key_of(world, ckpt)
    assert base == key_of(world, ckpt)  # deterministic
    assert base.inputs["format_version"] == FORMAT_VERSION
    assert len(base.digest) == 64

    ckpt.write_bytes(b"weights-2")  # same name, different bytes
    assert key_of(world, ckpt) != base
    ckpt.write_bytes(b"weights-1")
    assert key_of(world, ckpt) == base

    changed = world.copy(deep=True)
    changed[schema.ASCAT_SM][0, 0, 0] = 55.0  # one input value in the look-back window
    assert key_of(changed, ckpt) != base
    assert key_of(world, ckpt, config={"lookback": 4}) != base
    assert key_of(world, ckpt, dtype="float64") != base
    assert key_of(world, ckpt, dates=world.time.values[:3]) != base
    assert key_of(world, ckpt, region=(-100, 30, -99, 31)) != base


def test_key_changes_with_an_input_file(world, tmp_path):
    f = tmp_path / "input.nc"
    f.write_bytes(b"abc")
    k1 = make_key(checkpoint=None, inputs=[f], region=REGION, grid=world, dates="2015-06-01")
    f.write_bytes(b"abd")
    k2 = make_key(checkpoint=None, inputs=[f], region=REGION, grid=world, dates="2015-06-01")
    assert k1 != k2
    assert k1.inputs["inputs"]["files"][0]["sha256"] != k2.inputs["inputs"]["files"][0]["sha256"]


def test_region_is_snapped_to_grid_indices(world):
    # both boxes contain exactly the same cell centres (0.25 deg grid from -100, 30)
    a = snap_region(world, (-100.0, 30.0, -98.0, 32.0))
    b = snap_region(world, (-99.99, 30.05, -98.01, 31.99))
    assert a == b == {"lat": [0, 8], "lon": [0, 8], "lat0": 30.125, "lon0": -99.875,
                      "dlat": 0.25, "dlon": 0.25}
    assert key_of(world, region=(-99.99, 30.05, -98.01, 31.99)) == key_of(world)
    assert snap_region(world, (-99.5, 30.5, -99.0, 31.0))["lat"] == [2, 4]


def test_root_from_environment(monkeypatch, tmp_path):
    from data_catalog import locations

    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "elsewhere"))
    assert InferenceCache().root == tmp_path / "elsewhere"
    monkeypatch.delenv("GAPFILL_CACHE")
    assert locations.cache_dir().name == "amsr-gapfill"


def test_region_snapping_never_widens_a_request(world):
    from data_catalog.errors import EmptySelectionError, OutOfRangeError

    with pytest.raises(EmptySelectionError, match="no grid cell centre"):
        snap_region(world, (-99.9, 30.2, -99.8, 30.3))  # between centres: not the nearest
    with pytest.raises(OutOfRangeError, match="outside the grid"):
        snap_region(world, (10.0, 10.0, 11.0, 11.0))


# ---------------------------------------------------------------- round trip
def test_round_trip_identical_and_computed_once(cache, world):
    key = key_of(world)
    compute = Counter(world)
    first = cache.get_or_compute(key, compute)
    second = cache.get_or_compute(key, compute)
    assert compute.n == 1
    xr.testing.assert_identical(first, stand_in_output(world))
    xr.testing.assert_identical(first, second)
    assert cache.lookup(key) is not None
    assert cache.lookup(key_of(world, config={"lookback": 9})) is None
    # the key inputs are stored in the entry's attributes
    import zarr

    attrs = zarr.open_group(cache.path(key), mode="r").attrs
    assert attrs["gapfill_cache_key"] == key.inputs
    assert attrs["gapfill_cache_digest"] == key.digest
    assert second.encoding["gapfill_cache"] == key.inputs


def test_every_chunk_has_a_crc32c_codec(cache, world):
    import zarr

    key = key_of(world)
    cache.get_or_compute(key, Counter(world))
    group = zarr.open_group(cache.path(key), mode="r")
    for name, arr in group.arrays():
        names = [type(c).__name__ for c in arr.compressors]
        assert names[-1] == "Crc32cCodec", (name, names)


def test_result_with_holes_on_land_is_refused(cache, world):
    def bad() -> xr.Dataset:
        out = stand_in_output(world)
        out[schema.FILLED_SM][:, 4:, 4:] = np.nan  # land cells left empty
        return out

    key = key_of(world)
    with pytest.raises(CacheIntegrityError, match="NaN"):
        cache.get_or_compute(key, bad)
    assert not cache.path(key).exists()
    assert not list(cache.entries.glob(".tmp-*"))  # the temporary folder is cleaned


def test_wrong_shape_is_refused(cache, world):
    key = key_of(world, region=(-100, 30, -99, 31))  # 4 x 4 cells, result has 8 x 8
    with pytest.raises(CacheIntegrityError, match="cells"):
        cache.get_or_compute(key, Counter(world))


# ---------------------------------------------------------------- corruption
def test_flipped_byte_is_detected_and_recomputed(cache, world, caplog):
    key = key_of(world)
    compute = Counter(world)
    cache.get_or_compute(key, compute)
    f = chunk_file(cache, key)
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    f.write_bytes(bytes(raw))
    # the chunk's crc32c fails on decode (zarr itself refuses the bytes)
    with pytest.raises(ValueError, match="checksum"):
        xr.open_zarr(cache.path(key), consolidated=False, chunks=None).load()
    with caplog.at_level(logging.WARNING, logger="model.cache"):
        assert cache.lookup(key) is None  # never shown as data
    assert "quarantined" in caplog.text and "checksum" in caplog.text
    assert len(list(cache.quarantine_dir.iterdir())) == 1
    again = cache.get_or_compute(key, compute)
    assert compute.n == 2
    xr.testing.assert_identical(again, stand_in_output(world))


def test_deleted_chunk_is_detected(cache, world, caplog):
    key = key_of(world)
    compute = Counter(world)
    cache.get_or_compute(key, compute)
    chunk_file(cache, key).unlink()
    # plain zarr would read the missing chunk back as fill value (NaN) without complaint
    silent = xr.open_zarr(cache.path(key), consolidated=False, chunks=None).load()
    assert bool(silent[schema.FILLED_SM].isnull().all())
    with caplog.at_level(logging.WARNING, logger="model.cache"):
        again = cache.get_or_compute(key, compute)
    assert "missing" in caplog.text
    assert compute.n == 2
    assert cache.stats["quarantined"] == 1
    xr.testing.assert_identical(again, stand_in_output(world))


def test_corrupt_metadata_is_quarantined(cache, world):
    key = key_of(world)
    compute = Counter(world)
    cache.get_or_compute(key, compute)
    (cache.path(key) / schema.FILLED_SM / "zarr.json").write_text("{not json")
    assert cache.lookup(key) is None
    cache.get_or_compute(key, compute)
    assert compute.n == 2


def test_partial_write_left_by_a_crash_is_removed(cache, world):
    key = key_of(world)
    stale = cache.entries / f".tmp-{key.digest}-999-deadbeef.zarr"
    (stale / "filled_sm").mkdir(parents=True)
    assert cache.lookup(key) is None  # a temporary folder is never an entry
    cache.get_or_compute(key, Counter(world))
    assert not stale.exists()


# ---------------------------------------------------------------- concurrency
def test_concurrent_threads_compute_once(cache, world):
    key = key_of(world)
    compute = Counter(world, delay=0.3)
    results: list[xr.Dataset] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute(key, compute)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert compute.n == 1
    assert len(results) == 4
    for r in results:
        xr.testing.assert_identical(r, results[0])


def _process_request(root: str, log: str) -> None:
    """Run in a fresh (spawned) process: ask the shared cache for the same key."""
    ds = mock(ntime=6, nlat=8, nlon=8)

    def compute() -> xr.Dataset:
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)
        return stand_in_output(ds)

    InferenceCache(root).get_or_compute(key_of(ds), compute)


def test_concurrent_processes_compute_once(tmp_path, world):
    root, log = tmp_path / "cache", tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_request, args=(str(root), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().count("computed") == 1
    cached = InferenceCache(root).lookup(key_of(world))
    xr.testing.assert_identical(cached, stand_in_output(world))


# ---------------------------------------------------------------- eviction
def test_lru_eviction(tmp_path, world):
    probe = InferenceCache(tmp_path / "probe")
    k0 = key_of(world)
    probe.get_or_compute(k0, Counter(world))
    size = probe.total_bytes()
    cache = InferenceCache(tmp_path / "cache", max_bytes=int(2.5 * size))
    keys = [key_of(world, config={"lookback": n}) for n in range(3)]
    cache.get_or_compute(keys[0], Counter(world))
    time.sleep(0.01)
    cache.get_or_compute(keys[1], Counter(world))
    time.sleep(0.01)
    assert cache.lookup(keys[0]) is not None  # keys[0] is now more recent than keys[1]
    time.sleep(0.01)
    cache.get_or_compute(keys[2], Counter(world))  # over the limit: evict the LRU entry
    assert set(cache.entry_keys()) == {keys[0].digest, keys[2].digest}
    assert cache.stats["evicted"] == 1
    assert cache.total_bytes() <= cache.max_bytes


# ---------------------------------------------------------------- predict() through the cache
@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    torch = pytest.importorskip("torch")
    from model.config import ModelConfig
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    GapFiller(ModelConfig(filters=[4], head_filters=0), NormStats(0.25, 0.08, 50.0, 20.0),
              {"sensor": "amsr2", "lookback": 5}).save(path)
    return path


def test_cached_predict_computes_once_and_keys_on_the_lookback_window(tmp_path, monkeypatch,
                                                                      tiny_checkpoint):
    from model import inference
    from model.cache import cached_predict, predict_key

    world = mock(ntime=20, nlat=8, nlon=8)
    calls = []
    real_predict = inference.predict

    def counting(*a, **k):
        calls.append(a[2])
        return real_predict(*a, **k)

    monkeypatch.setattr(inference, "predict", counting)
    cache = InferenceCache(tmp_path / "cache")
    args = (world, (-99.5, 30.5, -98.5, 31.5), "2015-06-10", tiny_checkpoint)
    first = cached_predict(*args, cache=cache, device="cpu")
    second = cached_predict(*args, cache=cache, device="cpu")
    assert len(calls) == 1
    xr.testing.assert_identical(first, second)
    direct = real_predict(*args, device="cpu")
    xr.testing.assert_allclose(first.drop_attrs(), direct.drop_attrs())
    base = predict_key(*args, device="cpu")
    assert base.inputs["config"]["lookback"] == 5
    # a change inside the look-back window (5 days up to 2015-06-10) makes a new key ...
    inside = world.copy(deep=True)
    inside[schema.ASCAT_SM].loc[{"time": "2015-06-07"}] = 33.0
    assert predict_key(inside, *args[1:], device="cpu") != base
    # ... one after the date or before the window does not
    outside = world.copy(deep=True)
    outside[schema.ASCAT_SM].loc[{"time": "2015-06-15"}] = 33.0
    outside[schema.ASCAT_SM].loc[{"time": "2015-06-02"}] = 33.0
    assert predict_key(outside, *args[1:], device="cpu") == base
