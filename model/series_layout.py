"""The series store: what determines a build, its layout, metadata and ledger.

* :class:`SeriesSpec`: everything that determines a build's output (stored in the
  store's attributes; its digest tells a resumable build from a different one), the
  store's shape, its spatial tiles and its time blocks;
* the store itself: CF/ACDD attributes, ``source_flag`` flags, zarr v3 chunks aligned
  with the tiles (one writer per chunk), created atomically (temporary folder, rename);
* the ledger ``<store>.ledger/``: a tile is marked done only after its chunk files are
  fsynced, with per-tile progress for the bar.

The store is read through :func:`data_catalog.series_store.open_series`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import schema
from data_catalog.errors import FormatError
from data_catalog.series_store import ledger_path
from model.errors import UNCERTAINTY, uncertainty_attrs
from model.series_models import SHIPPED_MODELS
from model.streaming import load

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: filled_sm_uncertainty, reason_flag, the filled_frozen_ground flag
# the flags are the schema's (one definition for the series, its export and predict)
SOURCE_FLAG, SOURCE_FLAGS, source_flags = (schema.SOURCE_FLAG, schema.SOURCE_FLAGS,
                                           schema.source_flags)
OBSERVED_AMSR_E, OBSERVED_AMSR2, FILLED, NOT_LAND_FLAG, FILLED_FROZEN = (
    schema.SOURCE_OBSERVED_AMSRE, schema.SOURCE_OBSERVED_AMSR2, schema.SOURCE_FILLED,
    schema.SOURCE_NOT_LAND, schema.SOURCE_FILLED_FROZEN)
#: Fill value of ``source_flag`` chunks never written (an unfinished build): no flag.
SOURCE_FLAG_FILL = -1
DOI = "https://doi.org/10.1109/JSTARS.2025.3557956"

# ---------------------------------------------------------------- specification
@dataclass
class SeriesSpec:
    """Everything that determines the output of a build (stored in the store's attrs).

    Attributes
    ----------
    source : str
        ``"demo"`` or the path of a canonical zarr store.
    world : str
        Resolved path of the input store.
    start, end : str
        First and last day (inclusive, ISO).
    region : dict
        Snapped region (:func:`model.cache.snap_region`) of the world.
    tile, halo, time_chunk : int
        Tile edge (cells; also the store's lat/lon chunk), halo (cells), days per
        time block (also the store's time chunk).
    models : str
        Model factory ``"module:function"``; called as ``factory(checkpoint_dir=...,
        device="cpu")``.
    checkpoint_dir : str or None
        Passed to the factory.
    gap_model : int
        Sensor whose model fills days without a radiometer (2: base AMSR2 model).
    warmup_days : int
        Days the state of a newly switched-in model is warmed up on.
    stream_days : int
        Days given to the model per call (bounds the activations held at once).
    provenance : dict
        Model and data fingerprints (checkpoint SHA-256, world listing fingerprint).
    """

    source: str
    world: str
    start: str
    end: str
    region: dict
    tile: int = 32
    halo: int = 8
    time_chunk: int = 365
    models: str = SHIPPED_MODELS
    checkpoint_dir: str | None = None
    gap_model: int = schema.SENSOR_AMSR2
    warmup_days: int = 30
    stream_days: int = 64
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @property
    def shape(self) -> tuple[int, int, int]:
        nt = len(pd.date_range(self.start, self.end, freq="D"))
        r = self.region
        return nt, r["lat"][1] - r["lat"][0], r["lon"][1] - r["lon"][0]

    def tiles(self) -> list[tuple[int, int]]:
        """Tile indices ``(iy, ix)`` in row-major order."""
        _, ny, nx = self.shape
        return [(iy, ix) for iy in range(-(-ny // self.tile)) for ix in range(-(-nx // self.tile))]

    def blocks(self) -> list[tuple[int, int]]:
        """Half-open time index ranges of the blocks (one store chunk each)."""
        nt = self.shape[0]
        return [(t, min(t + self.time_chunk, nt)) for t in range(0, nt, self.time_chunk)]


def tile_name(tile: tuple[int, int]) -> str:
    return f"tile-{tile[0]:04d}-{tile[1]:04d}"


# ---------------------------------------------------------------- flags and ledger
def fsync_tile(store: Path, spec: SeriesSpec, tile: tuple[int, int]) -> None:
    """fsync the chunk files of a tile (chunks are aligned with tiles)."""
    for var in (schema.FILLED_SM, schema.AMSR_SM, SOURCE_FLAG, UNCERTAINTY,
                schema.REASON_FLAG):
        for tb in range(len(spec.blocks())):
            f = store / var / "c" / str(tb) / str(tile[0]) / str(tile[1])
            if f.exists():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_done(store: str | Path, tile: tuple[int, int]) -> None:
    atomic_write(ledger_path(store) / f"{tile_name(tile)}.done", "done\n")


def write_progress(store: str | Path, tile: tuple[int, int], days: int) -> None:
    with contextlib.suppress(OSError):
        atomic_write(ledger_path(store) / f"{tile_name(tile)}.progress", f"{days}\n")


def done_tiles(store: str | Path) -> set[tuple[int, int]]:
    """Tiles marked done in the ledger of ``store``."""
    led = ledger_path(store)
    out = set()
    for f in led.glob("tile-*.done"):
        _, iy, ix = f.stem.split("-")
        out.add((int(iy), int(ix)))
    return out


def progress_days(store: str | Path) -> int:
    total = 0
    for f in ledger_path(store).glob("tile-*.progress"):
        with contextlib.suppress(OSError, ValueError):
            total += int(f.read_text())
    return total


# ---------------------------------------------------------------- the store
def series_attrs(spec: SeriesSpec) -> dict:
    """Global CF/ACDD attributes of the store (deterministic: no build time)."""
    prov = spec.provenance
    return {
        "Conventions": "CF-1.10",
        "title": "Seamless gap-filled AMSR-E/AMSR2 surface soil moisture",
        "summary": "AMSR-E (2003-2011) and AMSR2 (2012-) surface soil moisture with gaps "
                   "filled by a ConvLSTM (AMSR-E days: the transferred AMSR-E model; AMSR2 "
                   "days and the 2011-10-04..2012-07-01 gap: the base AMSR2 model).",
        "references": f"Sivaprasad et al. (2025), IEEE JSTARS, {DOI}",
        "source": f"gapfill build-series --source {spec.source}",
        "input_world": Path(spec.world).name,
        "input_fingerprint": json.dumps(prov.get("world", {}), sort_keys=True),
        "model_provenance": json.dumps(prov.get("models", {}), sort_keys=True),
        "time_coverage_start": spec.start,
        "time_coverage_end": spec.end,
        "series_build_spec": json.dumps(asdict(spec), sort_keys=True),
        "series_build_digest": spec.digest(),
        "series_format_version": FORMAT_VERSION,
    }


def variable_attrs(product_error: bool = False) -> dict[str, dict]:
    """CF attributes of the store's variables; ``product_error``: the world carries
    ``amsr_sm_error`` (the SD of observations comes from it)."""
    return {
        schema.FILLED_SM: {"units": schema.UNITS[schema.FILLED_SM],
                           "long_name": "gap-filled surface soil moisture (AMSR-E/AMSR2 "
                                        "observation where available, ConvLSTM elsewhere)",
                           "standard_name": schema.SM_STANDARD_NAME,
                           "ancillary_variables": f"{SOURCE_FLAG} {UNCERTAINTY} "
                                                  f"{schema.REASON_FLAG}"},
        UNCERTAINTY: uncertainty_attrs(product_error),
        schema.REASON_FLAG: schema.reason_attrs(),
        schema.AMSR_SM: {"units": schema.UNITS[schema.AMSR_SM],
                         "long_name": schema.LONG_NAMES[schema.AMSR_SM] + " (as observed)",
                         "standard_name": schema.SM_STANDARD_NAME},
        SOURCE_FLAG: {**schema.source_flag_attrs(),
                      "valid_range": np.array([0, len(SOURCE_FLAGS) - 1], np.int8)},
    }


def coord_attrs() -> dict[str, dict]:
    return {
        schema.LAT: {"units": "degrees_north", "standard_name": "latitude",
                     "long_name": "latitude of the cell centre", "axis": "Y"},
        schema.LON: {"units": "degrees_east", "standard_name": "longitude",
                     "long_name": "longitude of the cell centre", "axis": "X"},
        schema.TIME: {"standard_name": "time", "long_name": "day (UTC)", "axis": "T"},
    }


def _compressors() -> tuple:
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(level=3), Crc32cCodec())


def create_store(out: Path, spec: SeriesSpec, world: xr.Dataset) -> None:
    """Pre-create the store (metadata, coordinates, land) atomically: temp, then rename."""
    import dask.array as da

    nt, ny, nx = spec.shape
    r = spec.region
    sel = {schema.LAT: slice(*r["lat"]), schema.LON: slice(*r["lon"])}
    times = pd.date_range(spec.start, spec.end, freq="D")
    w = world.isel(sel).sel({schema.TIME: times})
    # chunks are the tiles (never larger than the grid): a chunk has exactly one writer
    chunks = (min(spec.time_chunk, nt), min(spec.tile, ny), min(spec.tile, nx))
    dims = schema.GRID_DIMS
    attrs = variable_attrs(schema.AMSR_SM_ERROR in world)

    def empty(dtype, fill):
        return da.full((nt, ny, nx), fill, dtype=dtype, chunks=chunks)

    ca = coord_attrs()
    template = xr.Dataset(
        {schema.FILLED_SM: (dims, empty(np.float32, np.nan), attrs[schema.FILLED_SM]),
         schema.AMSR_SM: (dims, empty(np.float32, np.nan), attrs[schema.AMSR_SM]),
         SOURCE_FLAG: (dims, empty(np.int8, SOURCE_FLAG_FILL), attrs[SOURCE_FLAG]),
         UNCERTAINTY: (dims, empty(np.float32, np.nan), attrs[UNCERTAINTY]),
         schema.REASON_FLAG: (dims, empty(np.uint8, 0), attrs[schema.REASON_FLAG]),
         schema.LAND: ((schema.LAT, schema.LON), np.asarray(load(w[schema.LAND]).values, bool),
                       {"long_name": schema.LONG_NAMES[schema.LAND]})},
        coords={schema.TIME: (schema.TIME, times.values.astype("datetime64[ns]"),
                              ca[schema.TIME]),
                schema.LAT: (schema.LAT, w[schema.LAT].values.astype(np.float64), ca[schema.LAT]),
                schema.LON: (schema.LON, w[schema.LON].values.astype(np.float64), ca[schema.LON]),
                schema.SENSOR: (schema.TIME, w[schema.SENSOR].values.astype(np.int8),
                                schema.sensor_attrs())},
        attrs=series_attrs(spec),
    )
    enc: dict[str, dict] = {v: {"chunks": chunks, "compressors": _compressors()}
                            for v in (schema.FILLED_SM, schema.AMSR_SM, SOURCE_FLAG,
                                      UNCERTAINTY, schema.REASON_FLAG)}
    enc[SOURCE_FLAG]["fill_value"] = SOURCE_FLAG_FILL
    enc[schema.LAND] = {"compressors": _compressors()}
    enc[schema.TIME] = {"units": "days since 1970-01-01", "calendar": "standard",
                        "dtype": "int32", "compressors": _compressors()}
    for c in (schema.LAT, schema.LON, schema.SENSOR):
        enc[c] = {"compressors": _compressors()}
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        template.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False, compute=False,
                         encoding=enc)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare_store(out: Path, spec: SeriesSpec, world: xr.Dataset, overwrite: bool) -> None:
    """Create (or check and reuse) the store and its ledger."""
    led = ledger_path(out)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if out.exists() and overwrite:
        shutil.rmtree(out)
        shutil.rmtree(led, ignore_errors=True)
    if out.exists():
        try:
            import zarr

            have = zarr.open_group(out, mode="r").attrs.get("series_build_digest")
        except Exception as exc:
            raise FormatError(f"exists but is not a series store ({exc}); choose another "
                              "--out or pass --overwrite", out) from exc
        if have != spec.digest():
            raise FormatError("exists and was built with other settings, inputs or models; "
                              "choose another --out or pass --overwrite", out)
        if not (led / "spec.json").exists():  # store without ledger: nothing is known done
            shutil.rmtree(led, ignore_errors=True)
            led.mkdir(parents=True)
            atomic_write(led / "spec.json", json.dumps(asdict(spec), sort_keys=True))
        logger.info("resuming %s: %d of %d tiles already done", out, len(done_tiles(out)),
                    len(spec.tiles()))
        return
    shutil.rmtree(led, ignore_errors=True)  # a ledger without its store is meaningless
    led.mkdir(parents=True)
    atomic_write(led / "spec.json", json.dumps(asdict(spec), sort_keys=True))
    create_store(out, spec, world)
