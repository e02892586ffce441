"""One cache entry on disk: written atomically, verified completely before it is data.

An entry is a zarr v3 store.  Integrity, in layers:

1. Publishing is atomic (:func:`write_entry`): the entry is written to a temporary
   folder beside its target, read back and verified (expected sizes, per-array SHA-256
   of the decoded values equal to what was computed, NaN fraction within what the inputs
   allow), fsynced, and only then renamed into place.
2. Every chunk of every array carries a crc32c checksum (``zarr.codecs.Crc32cCodec``),
   so a flipped byte fails decoding instead of returning wrong numbers.
3. A manifest in the root attributes lists every file of the entry with its size and
   the SHA-256 of every decoded array, so a deleted chunk (which zarr would silently
   read back as the fill value, NaN) is detected (:func:`verify_entry`).

The key inputs (:class:`~model.cache.keys.CacheKey`) are stored in the attributes too,
so an entry explains itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from data_catalog import schema
from data_catalog.errors import GapfillError
from model.cache.keys import CacheKey, array_sha256, normal_time_unit

KEY_ATTR = "gapfill_cache_key"
DIGEST_ATTR = "gapfill_cache_digest"
MANIFEST_ATTR = "gapfill_cache_manifest"
CACHE_ATTRS = (KEY_ATTR, DIGEST_ATTR, MANIFEST_ATTR)


class CacheIntegrityError(GapfillError):
    """A cache entry (or a freshly computed result) failed verification."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


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


def check_result(key: CacheKey, ds: xr.Dataset) -> None:
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


def array_manifest(ds: xr.Dataset) -> dict:
    """Dims, shape, dtype and SHA-256 of the decoded values of every variable."""
    return {str(n): {"dims": list(v.dims), "shape": list(v.shape),
                     "dtype": normal_time_unit(np.empty(0, v.dtype)).dtype.str,
                     "sha256": array_sha256(v.values)}
            for n, v in sorted(ds.variables.items(), key=lambda kv: str(kv[0]))}


def file_manifest(store: Path) -> dict[str, int]:
    """Relative path -> size of every file of ``store`` but the root ``zarr.json`` (which
    holds the manifest itself)."""
    return {f.relative_to(store).as_posix(): f.stat().st_size
            for f in sorted(store.rglob("*")) if f.is_file() and f.relative_to(store) !=
            Path("zarr.json")}


def dir_bytes(path: Path) -> int:
    """Bytes of all files under ``path``."""
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


def write_entry(tmp: Path, target: Path, key: CacheKey, result: xr.Dataset) -> None:
    """Write ``result`` to ``tmp``, verify it, rename it to ``target`` (absent: the caller
    holds the key's lock).  ``tmp`` is removed if anything fails."""
    try:
        check_result(key, result)
        expected = array_manifest(result)
        attrs = {k: v for k, v in result.attrs.items() if k not in CACHE_ATTRS}
        out = _strip_encoding(result).assign_attrs(attrs)
        out.attrs[KEY_ATTR] = key.inputs
        out.attrs[DIGEST_ATTR] = key.digest
        out.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
        manifest = {"files": file_manifest(tmp), "arrays": expected}
        import zarr

        zarr.open_group(tmp, mode="r+", zarr_format=3).attrs[MANIFEST_ATTR] = manifest
        verify_entry(tmp, key, manifest)  # what is on disk is what was computed
        _fsync_tree(tmp)
        os.rename(tmp, target)  # atomic on one file system
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def verify_entry(store: Path, key: CacheKey, manifest: dict | None = None) -> xr.Dataset:
    """Open ``store`` and check it completely; return it loaded, cache attrs removed.

    The key inputs and digest are in ``ds.encoding["gapfill_cache"]`` and
    ``ds.encoding["gapfill_cache_digest"]``.

    Raises
    ------
    CacheIntegrityError
        Wrong digest, no manifest, a file missing, extra or of another size, or decoded
        values that differ from the manifest.  A chunk whose crc32c fails raises zarr's
        own error on decoding.
    """
    import zarr

    group = zarr.open_group(store, mode="r", zarr_format=3)
    attrs = dict(group.attrs)
    if attrs.get(DIGEST_ATTR) != key.digest:
        raise CacheIntegrityError(f"digest attribute {attrs.get(DIGEST_ATTR)!r} does not "
                                  f"match the key {key.digest}", store)
    manifest = manifest or attrs.get(MANIFEST_ATTR)
    if not isinstance(manifest, dict) or "files" not in manifest:
        raise CacheIntegrityError("no manifest in the root attributes", store)
    have = file_manifest(store)
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
    got = array_manifest(ds)
    if set(got) != set(manifest["arrays"]):
        raise CacheIntegrityError(f"variables {sorted(got)} differ from the manifest's "
                                  f"{sorted(manifest['arrays'])}", store)
    for name, want in manifest["arrays"].items():
        if got[name] != want:
            raise CacheIntegrityError(f"variable {name!r}: decoded values or shape differ "
                                      "from the manifest checksum", store)
    info = {k: ds.attrs.pop(k) for k in CACHE_ATTRS if k in ds.attrs}
    ds.encoding["gapfill_cache"] = info.get(KEY_ATTR)
    ds.encoding["gapfill_cache_digest"] = info.get(DIGEST_ATTR)
    return ds


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
