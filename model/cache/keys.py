"""Cache keys: fingerprints of everything that changes an inference output, and the digest.

A key is a SHA-256 over the canonical JSON of its inputs (:func:`make_key`): the
checkpoint bytes, the inference configuration, fingerprints of the input data for the
whole look-back window, the region snapped to grid indices (with the grid's origin and
step), the dates, the output dtype and :data:`FORMAT_VERSION`.  The inputs travel with
the digest (:class:`CacheKey`), so an entry can explain itself.

Changing anything here changes the key of every existing entry (they would all miss):
``tests/test_cache_keys_pinned.py`` pins digests of fixed inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import schema
from data_catalog.errors import MissingFileError
from data_catalog.grid import index_slices

#: Bumped whenever the stored layout or the meaning of a key input changes.
FORMAT_VERSION = 1
_HASH_BLOCK = 1 << 20


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


def normal_time_unit(a: np.ndarray) -> np.ndarray:
    """Datetimes and timedeltas in nanoseconds, other arrays unchanged."""
    # pandas 3 makes datetime64[us], zarr reads back datetime64[ns]: same instants
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]")
    if a.dtype.kind == "m":
        return a.astype("timedelta64[ns]")
    return a


def array_sha256(values: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-ordered bytes."""
    a = np.ascontiguousarray(normal_time_unit(np.asarray(values)))
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
