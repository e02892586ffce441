"""The cache store: published entries, per-key locks, quarantine and LRU eviction.

Layout under the cache root (:func:`data_catalog.locations.cache_dir`: ``$GAPFILL_CACHE``,
else the platformdirs user cache folder ``amsr-gapfill``)::

    entries/<digest>.zarr      published entries (zarr v3, crc32c on every chunk)
    entries/<digest>.json      sidecar: last access time and size, for LRU eviction
    locks/<digest>.lock        per-key lock files (fcntl.flock)
    quarantine/<digest>-<t>    corrupt or partial entries moved aside

An entry that fails any check (:func:`model.cache.entry.verify_entry`) is quarantined
(moved aside, with a warning in the log) and recomputed; it is never returned as data.  A
per-key ``fcntl.flock`` lock, taken on a separate file descriptor per request, serialises
requests for the same key across threads and processes, so concurrent requests compute
once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from data_catalog import locations
from model.cache.entry import CacheIntegrityError, dir_bytes, verify_entry, write_entry
from model.cache.keys import CacheKey, make_key

logger = logging.getLogger(__name__)

#: Default size limit of the cache (bytes on disk of all entries).
DEFAULT_MAX_BYTES = 2 * 1024**3


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
            return dir_bytes(self.path(key)) if self.path(key).exists() else 0

    def _touch(self, key: CacheKey | str) -> None:
        side = self._sidecar(key)
        try:
            nbytes = int(json.loads(side.read_text())["bytes"])
        except (OSError, ValueError, KeyError):
            nbytes = dir_bytes(self.path(key))
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
        write_entry(tmp, target, key, result)  # target absent: we hold the key's lock
        logger.info("cache published %s (%d bytes)", key.digest[:12], dir_bytes(target))

    def _read_verified(self, key: CacheKey | str) -> xr.Dataset | None:
        path = self.path(key)
        if not path.exists():
            return None
        k = key if isinstance(key, CacheKey) else CacheKey(str(key), {})
        try:
            return verify_entry(path, k)
        except Exception as exc:  # any failure to read or verify: never shown as data
            self.quarantine(k.digest, f"{type(exc).__name__}: {exc}")
            return None
