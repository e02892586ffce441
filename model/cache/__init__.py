"""Content-addressed cache of model outputs, stored as checksummed zarr v3.

An entry holds the output of one inference request (a region and a date window).  Its
key is a SHA-256 over everything that changes that output: the checkpoint bytes, the
inference configuration, fingerprints of the input data for the whole look-back window,
the region snapped to grid indices, the dates, the output dtype and
:data:`FORMAT_VERSION`.  An entry is verified completely before it is returned; one that
fails is quarantined and recomputed, never shown as data.

Where to look:

=================  ====================================================================
module             what it holds
=================  ====================================================================
:mod:`.keys`       fingerprints of files, folders and arrays; :func:`make_key`, the
                   digest (changing it makes every existing entry miss)
:mod:`.entry`      one entry on disk: atomic write, crc32c chunks, manifest,
                   :func:`~model.cache.entry.verify_entry`
:mod:`.store`      :class:`InferenceCache`: the folder layout, per-key locks,
                   ``get_or_compute``, quarantine, LRU eviction
:mod:`.predict`    ``model.inference.predict`` through the cache: :func:`predict_key`,
                   :func:`cached_predict`
=================  ====================================================================

The names below are the package's public interface (``from model.cache import ...``).
"""

from __future__ import annotations

from model.cache.entry import CacheIntegrityError, allowed_nan_fraction
from model.cache.keys import (
    FORMAT_VERSION,
    CacheKey,
    array_sha256,
    dataset_fingerprint,
    file_sha256,
    make_key,
    path_fingerprint,
    snap_region,
)
from model.cache.predict import (
    INFERENCE_CODE,
    cached_predict,
    inference_code_sha256,
    predict_key,
)
from model.cache.store import DEFAULT_MAX_BYTES, InferenceCache

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT_VERSION",
    "INFERENCE_CODE",
    "CacheIntegrityError",
    "CacheKey",
    "InferenceCache",
    "allowed_nan_fraction",
    "array_sha256",
    "cached_predict",
    "dataset_fingerprint",
    "file_sha256",
    "inference_code_sha256",
    "make_key",
    "path_fingerprint",
    "predict_key",
    "snap_region",
]
