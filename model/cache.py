"""Content-addressed cache of model outputs, stored as checksummed zarr v3.

An entry holds the output of one inference request (a region and a date window).  Its
key is a SHA-256 over everything that changes that output:

* the checkpoint bytes (SHA-256 of each checkpoint file),
* the inference configuration (look-back, device kind, anything the caller passes),
* fingerprints of the input data for the whole look-back window (a hash of the actual
  input arrays, or of the input files),
* the region snapped to grid indices (plus the grid's origin and step, so indices are
  not ambiguous between grids),
* the dates, the output dtype and :data:`FORMAT_VERSION`.

Those key inputs are written into the entry's attributes too, so an entry explains
itself.

Layout under the cache root (:func:`data_catalog.locations.cache_dir`: ``$GAPFILL_CACHE``,
else the platformdirs user cache folder ``amsr-gapfill``)::

    entries/<digest>.zarr      published entries (zarr v3, crc32c on every chunk)
    entries/<digest>.json      sidecar: last access time and size, for LRU eviction
    locks/<digest>.lock        per-key lock files (fcntl.flock)
    quarantine/<digest>-<t>    corrupt or partial entries moved aside

Integrity, in layers:

1. Publishing is atomic: the entry is written to a temporary folder beside its target,
   read back and verified (expected sizes, per-array SHA-256 of the decoded values equal
   to what was computed, NaN fraction within what the inputs allow), and only then
   renamed into place.
2. Every chunk of every array carries a crc32c checksum (``zarr.codecs.Crc32cCodec``),
   so a flipped byte fails decoding instead of returning wrong numbers.
3. A manifest in the root attributes lists every file of the entry with its size and
   the SHA-256 of every decoded array, so a deleted chunk (which zarr would silently
   read back as the fill value, NaN) is detected.

An entry that fails any check is quarantined (moved aside, with a warning in the log)
and recomputed; it is never returned as data.  A per-key ``fcntl.flock`` lock, taken on
a separate file descriptor per request, serialises requests for the same key across
threads and processes, so concurrent requests compute once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import locations, schema
from data_catalog.errors import GapfillError
from data_catalog.grid import index_slices

logger = logging.getLogger(__name__)

#: Bumped whenever the stored layout or the meaning of a key input changes.
FORMAT_VERSION = 1
#: Default size limit of the cache (bytes on disk of all entries).
DEFAULT_MAX_BYTES = 2 * 1024**3

_KEY_ATTR = "gapfill_cache_key"
_DIGEST_ATTR = "gapfill_cache_digest"
_MANIFEST_ATTR = "gapfill_cache_manifest"
_CACHE_ATTRS = (_KEY_ATTR, _DIGEST_ATTR, _MANIFEST_ATTR)
_HASH_BLOCK = 1 << 20


class CacheIntegrityError(GapfillError):
    """A cache entry (or a freshly computed result) failed verification."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


# ---------------------------------------------------------------- fingerprints
def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def path_fingerprint(path: str | Path) -> dict:
    """Fingerprint of an input file or folder.

    A file is fingerprinted by the SHA-256 of its bytes.  A folder (a zarr store) is
    fingerprinted by the relative path, size and modification time of every file in
    it: hashing a multi-gigabyte store on every request would cost more than the
    inference it guards.  Prefer :func:`dataset_fingerprint` of the actual input
    window where it is at hand.
    """
    p = Path(path)
    if not p.exists():
        from data_catalog.errors import MissingFileError

        raise MissingFileError("input file to fingerprint does not exist", p)
    if p.is_file():
        return {"path": p.name, "size": p.stat().st_size, "sha256": file_sha256(p)}
    h = hashlib.sha256()
    n = 0
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(p).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        n += 1
    return {"path": p.name, "files": n, "listing_sha256": h.hexdigest()}


def _normal_time_unit(a: np.ndarray) -> np.ndarray:
    # pandas 3 makes datetime64[us], zarr reads back datetime64[ns]: same instants
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]")
    if a.dtype.kind == "m":
        return a.astype("timedelta64[ns]")
    return a


def array_sha256(values: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-ordered bytes."""
    a = np.ascontiguousarray(_normal_time_unit(np.asarray(values)))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype.kind in "Mm":  # datetimes: hash their integer representation
        a = a.view(np.int64)
    if a.dtype.hasobject:
        h.update(repr(a.tolist()).encode())
    elif a.size:
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def dataset_fingerprint(ds: xr.Dataset) -> str:
    """SHA-256 over every variable of ``ds`` (name, dims, dtype, shape, values).

    This is the fingerprint of the input data of a request: the exact arrays the
    model will see for the whole look-back window.  Lazy (dask) variables are loaded.
    """
    h = hashlib.sha256()
    for name in sorted(map(str, ds.variables)):
        var = ds.variables[name]
        h.update(f"{name}\0{var.dims}\0".encode())
        h.update(array_sha256(var.values).encode())
    return h.hexdigest()


def snap_region(coords: xr.Dataset | xr.DataArray, region: Sequence[float]) -> dict:
    """Snap a ``(west, south, east, north)`` box to index ranges of ``grid``.

    Returns ``{"lat": [i0, i1], "lon": [j0, j1], "lat0", "lon0", "dlat", "dlon"}``
    with half-open index ranges of the cells whose centres lie in the box
    (:func:`data_catalog.grid.index_slices`), and the grid's first centre and step (so
    the indices mean the same cells in any grid).

    Raises
    ------
    EmptySelectionError
        No cell centre lies in the box (it is never widened to the nearest cell).
    OutOfRangeError
        The box is not ``W < E, S < N`` or lies outside the grid.
    """
    lat = np.asarray(coords[schema.LAT].values, dtype=float)
    lon = np.asarray(coords[schema.LON].values, dtype=float)
    ii, jj = index_slices(lat, lon, region, snap=False)
    return {
        "lat": [ii.start, ii.stop],
        "lon": [jj.start, jj.stop],
        "lat0": round(float(lat[0]), 6),
        "lon0": round(float(lon[0]), 6),
        "dlat": round(float(lat[1] - lat[0]), 6) if lat.size > 1 else 0.0,
        "dlon": round(float(lon[1] - lon[0]), 6) if lon.size > 1 else 0.0,
    }


def _iso_dates(dates: Any) -> list[str]:
    if isinstance(dates, (str, pd.Timestamp, np.datetime64)):
        dates = [dates]
    return [pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates]


def _canonical_json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, (Path, pd.Timestamp)):
            return str(o)
        raise TypeError(f"cache key input of type {type(o).__name__} is not JSON-able")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


# ---------------------------------------------------------------- key
@dataclass(frozen=True)
class CacheKey:
    """A cache key: the hex digest and the JSON-able inputs it was computed from."""

    digest: str
    inputs: dict = field(compare=False, hash=False, repr=False)

    def __str__(self) -> str:
        return self.digest


def make_key(
    *,
    checkpoint: str | Path | Sequence[str | Path] | Mapping[Any, str | Path] | None,
    inputs: xr.Dataset | Sequence[str | Path] | str | None,
    region: Sequence[float] | Mapping | None = None,
    dates: Any = None,
    config: Mapping | None = None,
    dtype: str = "float32",
    grid: xr.Dataset | xr.DataArray | None = None,
) -> CacheKey:
    """Compute the cache key of a request.

    Parameters
    ----------
    checkpoint
        Checkpoint file(s) whose bytes are hashed: one path, a sequence, or a mapping
        (e.g. sensor -> path).  ``None`` for a model without a file (tests).
    inputs
        The input data for the whole look-back window: an :class:`xarray.Dataset`
        (its arrays are hashed, :func:`dataset_fingerprint`) or input file paths
        (:func:`path_fingerprint`).
    region
        ``(west, south, east, north)``, snapped to indices of ``grid`` (or of
        ``inputs`` when it is a dataset); or an already snapped mapping.
    dates
        The output dates (one date-like or a sequence).
    config
        Inference configuration that changes the output (look-back, device kind...).
    dtype
        Output dtype.
    grid
        Grid to snap ``region`` to, when ``inputs`` is not a dataset.
    """
    if checkpoint is None:
        ckpt: Any = None
    elif isinstance(checkpoint, Mapping):
        ckpt = {str(k): {"name": Path(v).name, "sha256": file_sha256(v)}
                for k, v in sorted(checkpoint.items(), key=lambda kv: str(kv[0]))}
    else:
        paths = [checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint)
        ckpt = [{"name": Path(p).name, "sha256": file_sha256(p)} for p in paths]
    if inputs is None:
        fp: Any = None
    elif isinstance(inputs, xr.Dataset):
        fp = {"dataset_sha256": dataset_fingerprint(inputs)}
    else:
        paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        fp = {"files": [path_fingerprint(p) for p in paths]}
    if region is None or isinstance(region, Mapping):
        snapped = None if region is None else dict(region)
    else:
        g = grid if grid is not None else inputs
        if not isinstance(g, (xr.Dataset, xr.DataArray)):
            raise ValueError("make_key: a (W, S, E, N) region needs a grid to snap to")
        snapped = snap_region(g, region)
    key_inputs = {
        "format_version": FORMAT_VERSION,
        "checkpoint": ckpt,
        "config": dict(config or {}),
        "inputs": fp,
        "region": snapped,
        "dates": None if dates is None else _iso_dates(dates),
        "dtype": str(np.dtype(dtype)),
    }
    text = _canonical_json(key_inputs)
    key_inputs = json.loads(text)  # exactly what was hashed, JSON types only
    return CacheKey(hashlib.sha256(text.encode()).hexdigest(), key_inputs)


# ---------------------------------------------------------------- verification helpers
def allowed_nan_fraction(ds: xr.Dataset, var: str = schema.FILLED_SM) -> float:
    """The NaN fraction of ``var`` that the inputs allow: the not-land share.

    A filled field may be NaN only where there is no land (``gap_mask == not_land``,
    or ``land`` false).  Without either, anything goes (1.0).
    """
    if schema.GAP_MASK in ds and ds[schema.GAP_MASK].shape == ds[var].shape:
        return float((ds[schema.GAP_MASK].values == schema.NOT_LAND).mean())
    if schema.LAND in ds:
        return float(1.0 - np.asarray(ds[schema.LAND].values, bool).mean())
    return 1.0


def _array_manifest(ds: xr.Dataset) -> dict:
    return {str(n): {"dims": list(v.dims), "shape": list(v.shape),
                     "dtype": _normal_time_unit(np.empty(0, v.dtype)).dtype.str,
                     "sha256": array_sha256(v.values)}
            for n, v in sorted(ds.variables.items(), key=lambda kv: str(kv[0]))}


def _file_manifest(store: Path) -> dict[str, int]:
    return {f.relative_to(store).as_posix(): f.stat().st_size
            for f in sorted(store.rglob("*")) if f.is_file() and f.relative_to(store) !=
            Path("zarr.json")}


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _strip_encoding(ds: xr.Dataset) -> xr.Dataset:
    from zarr.codecs import Crc32cCodec, ZstdCodec

    out = ds.copy(deep=False)
    for name in out.variables:
        enc = {"compressors": (ZstdCodec(level=3), Crc32cCodec())}
        old = out.variables[name].encoding
        # keep only time units so dates round-trip exactly as they were
        for k in ("units", "calendar"):
            if k in old and np.issubdtype(out.variables[name].dtype, np.datetime64):
                enc[k] = old[k]
        out.variables[name].encoding = enc
    return out


# ---------------------------------------------------------------- the cache
class InferenceCache:
    """Content-addressed, checksummed, size-limited cache of inference outputs.

    Parameters
    ----------
    root
        Cache folder; default :func:`data_catalog.locations.cache_dir`.
    max_bytes
        Size limit of all entries on disk; least recently used entries are evicted
        after each publish to stay below it.

    Examples
    --------
    >>> cache = InferenceCache(tmp_path)                       # doctest: +SKIP
    >>> key = cache.key(checkpoint=ckpt, inputs=window, region=(-98, 35, -96, 37),
    ...                 dates=["2015-06-01"], config={"lookback": 30})  # doctest: +SKIP
    >>> ds = cache.get_or_compute(key, lambda: predict(...))   # doctest: +SKIP
    """

    def __init__(self, root: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root = Path(root) if root is not None else locations.cache_dir()
        self.max_bytes = int(max_bytes)
        self.entries = self.root / "entries"
        self.locks = self.root / "locks"
        self.quarantine_dir = self.root / "quarantine"
        for d in (self.entries, self.locks, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)
        # counts of what this instance did, for tests and logs
        self.stats = {"hits": 0, "computed": 0, "quarantined": 0, "evicted": 0}
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------ keys and paths
    def key(self, **kwargs: Any) -> CacheKey:
        """Compute a key; the arguments are those of :func:`make_key`."""
        return make_key(**kwargs)

    def path(self, key: CacheKey | str) -> Path:
        """Folder of the entry of ``key``."""
        return self.entries / f"{key}.zarr"

    def _sidecar(self, key: CacheKey | str) -> Path:
        return self.entries / f"{key}.json"

    def _count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    @contextlib.contextmanager
    def _lock(self, key: CacheKey | str, blocking: bool = True) -> Iterator[bool]:
        """Exclusive per-key lock (flock on its own descriptor: works across threads
        and processes).  Yields whether the lock was acquired."""
        fd = os.open(self.locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ public API
    def lookup(self, key: CacheKey | str) -> xr.Dataset | None:
        """The verified entry of ``key``, or ``None`` when absent, being computed, or
        corrupt (a corrupt entry is quarantined).  Never computes anything."""
        if not self.path(key).exists():
            return None
        with self._lock(key, blocking=False) as got:
            if not got:
                return None
            ds = self._read_verified(key)
            if ds is not None:
                self._touch(key)
            return ds

    def __contains__(self, key: CacheKey | str) -> bool:
        return self.lookup(key) is not None

    def get_or_compute(self, key: CacheKey | Mapping, compute_fn: Callable[[], xr.Dataset],
                       ) -> xr.Dataset:
        """Return the cached entry of ``key``, computing and publishing it if needed.

        Parameters
        ----------
        key
            A :class:`CacheKey`, or a mapping of :func:`make_key` arguments.
        compute_fn
            Called without arguments (at most once per key across threads and
            processes sharing the cache root) to produce the dataset.

        Returns
        -------
        xarray.Dataset
            In memory, as read back from the verified entry; identical to what
            ``compute_fn`` returned.  The key inputs are in ``ds.encoding["gapfill_cache"]``.
        """
        if not isinstance(key, CacheKey):
            key = make_key(**key)
        with self._lock(key):
            ds = self._read_verified(key)
            if ds is not None:
                self._count("hits")
                self._touch(key)
                return ds
            self._remove_stale_tmp(key)
            logger.info("cache miss %s: computing", key.digest[:12])
            result = compute_fn()
            if not isinstance(result, xr.Dataset):
                raise TypeError(f"compute_fn returned {type(result).__name__}, expected "
                                "an xarray.Dataset")
            self._count("computed")
            self._publish(key, result.load())
            self._touch(key)
            ds = self._read_verified(key)
            if ds is None:  # published and verified a moment ago: the disk is lying
                raise CacheIntegrityError("entry failed verification right after publishing",
                                          self.path(key))
        self.evict(keep={key.digest})
        return ds

    def entry_keys(self) -> list[str]:
        """Digests of the published entries."""
        return sorted(p.name[:-5] for p in self.entries.glob("*.zarr")
                      if not p.name.startswith("."))

    def total_bytes(self) -> int:
        """Bytes on disk of all published entries."""
        return sum(self._entry_bytes(k) for k in self.entry_keys())

    def evict(self, keep: Iterable[str] = ()) -> list[str]:
        """Evict least-recently-used entries until the cache fits ``max_bytes``.

        Entries in ``keep`` and entries locked by another request are skipped.
        Returns the evicted digests.
        """
        keep = set(keep)
        with self._lock("_evict", blocking=False) as got:
            if not got:
                return []
            entries = [(self._atime(k), k, self._entry_bytes(k)) for k in self.entry_keys()]
            total = sum(b for _, _, b in entries)
            evicted = []
            for _, k, nbytes in sorted(entries):
                if total <= self.max_bytes:
                    break
                if k in keep:
                    continue
                with self._lock(k, blocking=False) as got_k:
                    if not got_k:
                        continue
                    self._remove(k)
                total -= nbytes
                evicted.append(k)
                self._count("evicted")
                logger.info("cache evicted %s (%d bytes, least recently used)", k[:12], nbytes)
            return evicted

    # ------------------------------------------------------------ internals
    def _atime(self, key: str) -> float:
        try:
            return float(json.loads(self._sidecar(key).read_text())["atime"])
        except (OSError, ValueError, KeyError):
            return 0.0  # no sidecar: oldest

    def _entry_bytes(self, key: str) -> int:
        try:
            return int(json.loads(self._sidecar(key).read_text())["bytes"])
        except (OSError, ValueError, KeyError):
            return _dir_bytes(self.path(key)) if self.path(key).exists() else 0

    def _touch(self, key: CacheKey | str) -> None:
        side = self._sidecar(key)
        try:
            nbytes = int(json.loads(side.read_text())["bytes"])
        except (OSError, ValueError, KeyError):
            nbytes = _dir_bytes(self.path(key))
        tmp = side.with_name(f".{side.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps({"atime": time.time(), "bytes": nbytes}))
        os.replace(tmp, side)

    def _remove(self, key: str) -> None:
        path = self.path(key)
        if path.exists():
            trash = self.entries / f".trash-{key}-{uuid.uuid4().hex}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self._sidecar(key).unlink()

    def _remove_stale_tmp(self, key: CacheKey) -> None:
        # we hold the key's lock: any temporary folder of this key is from a crashed writer
        for p in self.entries.glob(f".tmp-{key.digest}-*"):
            logger.warning("cache: removing partial entry %s left by an interrupted write", p)
            shutil.rmtree(p, ignore_errors=True)

    def quarantine(self, key: CacheKey | str, reason: str) -> Path | None:
        """Move a bad entry aside (never deleted silently) and log why."""
        path = self.path(key)
        if not path.exists():
            return None
        dest = self.quarantine_dir / f"{key}-{time.strftime('%Y%m%dT%H%M%S')}-" \
                                     f"{uuid.uuid4().hex[:6]}.zarr"
        os.rename(path, dest)
        with contextlib.suppress(FileNotFoundError):
            self._sidecar(key).unlink()
        self._count("quarantined")
        logger.warning("cache entry %s is corrupt (%s): quarantined to %s, recomputing",
                       str(key)[:12], reason, dest)
        return dest

    def _publish(self, key: CacheKey, result: xr.Dataset) -> None:
        """Write ``result`` beside the target, verify it, rename it into place."""
        target = self.path(key)
        tmp = self.entries / f".tmp-{key.digest}-{os.getpid()}-{uuid.uuid4().hex[:8]}.zarr"
        try:
            self._check_result(key, result)
            expected = _array_manifest(result)
            attrs = {k: v for k, v in result.attrs.items() if k not in _CACHE_ATTRS}
            out = _strip_encoding(result).assign_attrs(attrs)
            out.attrs[_KEY_ATTR] = key.inputs
            out.attrs[_DIGEST_ATTR] = key.digest
            out.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
            manifest = {"files": _file_manifest(tmp), "arrays": expected}
            import zarr

            zarr.open_group(tmp, mode="r+", zarr_format=3).attrs[_MANIFEST_ATTR] = manifest
            self._verify(tmp, key, manifest)  # what is on disk is what was computed
            _fsync_tree(tmp)
            os.rename(tmp, target)  # atomic on one file system; target absent (we hold the lock)
            _fsync_dir(self.entries)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("cache published %s (%d bytes)", key.digest[:12], _dir_bytes(target))

    def _check_result(self, key: CacheKey, ds: xr.Dataset) -> None:
        """Sizes and NaN fraction of a computed result against what the key implies."""
        region = key.inputs.get("region")
        if region:
            want = {schema.LAT: region["lat"][1] - region["lat"][0],
                    schema.LON: region["lon"][1] - region["lon"][0]}
            for dim, n in want.items():
                if dim in ds.sizes and ds.sizes[dim] != n:
                    raise CacheIntegrityError(
                        f"computed result has {ds.sizes[dim]} {dim} cells, the key's region "
                        f"has {n}")
        dates = key.inputs.get("dates")
        if dates and schema.TIME in ds.dims and ds.sizes[schema.TIME] != len(dates):
            raise CacheIntegrityError(f"computed result has {ds.sizes[schema.TIME]} days, "
                                      f"the key asks for {len(dates)}")
        if schema.FILLED_SM in ds:
            nan = float(np.isnan(ds[schema.FILLED_SM].values).mean())
            allowed = allowed_nan_fraction(ds)
            if nan > allowed + 1e-9:
                raise CacheIntegrityError(
                    f"{schema.FILLED_SM} is NaN in {nan:.1%} of cells but the inputs allow "
                    f"{allowed:.1%} (not land): refusing to cache a result with holes")

    def _verify(self, store: Path, key: CacheKey, manifest: dict | None = None) -> xr.Dataset:
        """Open ``store`` and check it completely; return it loaded, cache attrs removed."""
        import zarr

        group = zarr.open_group(store, mode="r", zarr_format=3)
        attrs = dict(group.attrs)
        if attrs.get(_DIGEST_ATTR) != key.digest:
            raise CacheIntegrityError(f"digest attribute {attrs.get(_DIGEST_ATTR)!r} does not "
                                      f"match the key {key.digest}", store)
        manifest = manifest or attrs.get(_MANIFEST_ATTR)
        if not isinstance(manifest, dict) or "files" not in manifest:
            raise CacheIntegrityError("no manifest in the root attributes", store)
        have = _file_manifest(store)
        missing = sorted(set(manifest["files"]) - set(have))
        if missing:
            raise CacheIntegrityError(f"{len(missing)} file(s) missing, e.g. {missing[0]} "
                                      "(a deleted chunk would read back as NaN)", store)
        extra = sorted(set(have) - set(manifest["files"]))
        if extra:
            raise CacheIntegrityError(f"unexpected file(s) {extra[:3]}", store)
        wrong = [f for f, n in manifest["files"].items() if have[f] != n]
        if wrong:
            raise CacheIntegrityError(f"file size changed: {wrong[:3]}", store)
        # decoding checks every chunk's crc32c (a flipped byte raises here)
        ds = xr.open_zarr(store, zarr_format=3, consolidated=False, chunks=None).load()
        got = _array_manifest(ds)
        if set(got) != set(manifest["arrays"]):
            raise CacheIntegrityError(f"variables {sorted(got)} differ from the manifest's "
                                      f"{sorted(manifest['arrays'])}", store)
        for name, want in manifest["arrays"].items():
            if got[name] != want:
                raise CacheIntegrityError(f"variable {name!r}: decoded values or shape differ "
                                          "from the manifest checksum", store)
        info = {k: ds.attrs.pop(k) for k in _CACHE_ATTRS if k in ds.attrs}
        ds.encoding["gapfill_cache"] = info.get(_KEY_ATTR)
        ds.encoding["gapfill_cache_digest"] = info.get(_DIGEST_ATTR)
        return ds

    def _read_verified(self, key: CacheKey | str) -> xr.Dataset | None:
        path = self.path(key)
        if not path.exists():
            return None
        k = key if isinstance(key, CacheKey) else CacheKey(str(key), {})
        try:
            return self._verify(path, k)
        except Exception as exc:  # any failure to read or verify: never shown as data
            self.quarantine(k.digest, f"{type(exc).__name__}: {exc}")
            return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (durability before the rename)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


# ---------------------------------------------------------------- predict() through the cache
#: Source files whose code computes a prediction: their bytes are part of the key.
INFERENCE_CODE = ("inference.py", "wrapper.py", "tensors.py", "network.py")


def inference_code_sha256() -> str:
    """SHA-256 over the source of the modules that compute a prediction."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in INFERENCE_CODE:
        p = here / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()


def predict_key(world: xr.Dataset, region: Any, date: Any, checkpoint: Any = None, *,
                device: str = "auto", lookback: int | None = None, tile: Any = "auto",
                context: int | None = None) -> CacheKey:
    """The cache key of ``model.inference.predict(world, region, date, ...)``.

    The input fingerprint covers every cell :func:`~model.inference.predict` can read:
    the look-back days up to ``date`` over the region widened by the model's receptive
    radius (or by ``context``).
    """
    from model import inference
    from model.wrapper import GapFiller

    dev = inference.select_device(device)
    day = pd.Timestamp(date).normalize()
    sensor = inference.sensor_of_date(world, day)
    if isinstance(checkpoint, GapFiller):
        model = checkpoint
        ckpt_files: Any = None
        ckpt_id = {"sha256": str(model.metadata.get("checkpoint_sha256") or
                                 hashlib.sha256(b"".join(
                                     v.detach().cpu().numpy().tobytes()
                                     for v in model.state_dict().values())).hexdigest())}
    elif checkpoint is not None:
        model = inference.load_model(checkpoint, dev)
        ckpt_files, ckpt_id = checkpoint, None
    else:
        d = locations.checkpoint_dir()
        model = inference.model_for_sensor(inference.load_models(None, dev), sensor)
        ckpt_files = {p.stem: p for p in sorted(d.glob("*.pt"))}
        ckpt_id = None
    steps = int(lookback or model.metadata.get("lookback", 32))
    ctx = model.receptive_radius(steps) if context is None else int(context)
    times = world.indexes[schema.TIME]
    ti = int(times.get_indexer([day])[0])
    if ti < 0:
        from data_catalog.errors import EmptySelectionError

        raise EmptySelectionError(f"date {day.date()} is not a day of the dataset",
                                  variable=schema.TIME)
    lat_sl, lon_sl = inference.snap_region(world, region)
    nlat, nlon = world.sizes[schema.LAT], world.sizes[schema.LON]
    window = world.isel({
        schema.TIME: slice(max(0, ti - steps + 1), ti + 1),
        schema.LAT: slice(max(0, lat_sl.start - ctx), min(nlat, lat_sl.stop + ctx)),
        schema.LON: slice(max(0, lon_sl.start - ctx), min(nlon, lon_sl.stop + ctx)),
    })
    names = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.TRUTH_SM,
                         schema.LAND) if v in window]
    window = window[names].load()
    snapped = {"lat": [lat_sl.start, lat_sl.stop], "lon": [lon_sl.start, lon_sl.stop],
               **{k: v for k, v in snap_region(world, (-180, -90, 180, 90)).items()
                  if k not in ("lat", "lon")}}
    config = {"function": "model.inference.predict", "lookback": steps, "context": ctx,
              "tile": tile, "device": dev.type, "sensor": int(sensor),
              "code_sha256": inference_code_sha256()}
    if ckpt_id is not None:
        config["model"] = ckpt_id
    return make_key(checkpoint=ckpt_files, inputs=window, region=snapped, dates=[day],
                    config=config, dtype="float32")


def cached_predict(world: xr.Dataset, region: Any, date: Any, checkpoint: Any = None, *,
                   cache: InferenceCache | None = None, device: str = "auto",
                   lookback: int | None = None, tile: Any = "auto",
                   context: int | None = None, progress: Callable | None = None,
                   ) -> xr.Dataset:
    """:func:`model.inference.predict` through the :class:`InferenceCache`.

    Same arguments as ``predict`` plus ``cache`` (default: an ``InferenceCache()`` at the
    default root).  Concurrent calls for the same request compute it once; a corrupt
    entry is recomputed.  ``ds.encoding["gapfill_cache_digest"]`` names the entry.
    """
    from model import inference

    cache = cache if cache is not None else InferenceCache()
    key = predict_key(world, region, date, checkpoint, device=device, lookback=lookback,
                      tile=tile, context=context)

    def compute() -> xr.Dataset:
        return inference.predict(world, region, date, checkpoint, device=device,
                                 lookback=lookback, progress=progress, tile=tile,
                                 context=context)

    return cache.get_or_compute(key, compute)
