"""The demo world's store: build it, check it, open it.

A world is written to a zarr v3 store atomically: it is built in a hidden sibling
directory (``.NAME.building-PID-RANDOM``) and renamed into place only when complete, with
``complete: true`` in its attributes; leftovers of killed builds are cleaned away.  The
store records the generator (:data:`GENERATOR`), its :data:`VERSION` and the parameters;
a store built with the same parameters by the same version is reused, one built with
them by another version of this generator is rebuilt, anything else is refused unless
forced.

Bump :data:`VERSION` whenever the generated numbers change (every user's store is then
rebuilt); ``tests/test_demo_fingerprint.py`` pins a tiny world per version.

Floats are bit-rounded before writing (12 mantissa bits for soil moisture, 10 for ASCAT's
percent: far below the physical precision) and compressed with lz4 + bitshuffle; chunks
serve both a day's map and a pixel's series (:func:`data_catalog.worlds.world_chunks`).
The stations go into a
``stations`` group (hourly ``sm`` and ``flag`` codes, the table as JSON in its attributes).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import data_catalog.demo.sensors as sensors
import data_catalog.demo.stations as stations
from data_catalog import locations, schema
from data_catalog.demo.world import DemoParams, World, simulate
from data_catalog.errors import DataError, FormatError, MissingFileError
from data_catalog.worlds import world_chunks

log = logging.getLogger(__name__)

GENERATOR = "data_catalog.demo"
VERSION = "4"
CITATION = ("Sivaprasad, S. et al. (2025): Gap-filling of AMSR-E/AMSR2 soil moisture with a "
            "ConvLSTM network. IEEE Journal of Selected Topics in Applied Earth Observations "
            "and Remote Sensing, doi:10.1109/JSTARS.2025.3557956")
STATIONS_GROUP = "stations"


def default_demo_path() -> Path:
    """The demo world store: :func:`data_catalog.locations.demo_world`
    (``$GAPFILL_DEMO`` or ``<repo>/data/demo/world.zarr``)."""
    return locations.demo_world()


def bitround(a: np.ndarray, keepbits: int) -> np.ndarray:
    """Truncate float32 mantissas to ``keepbits`` bits (magnitude never grows).

    Drops noise bits far below the physical precision so the store compresses well;
    truncation (not rounding) keeps values inside their physical bounds.
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    drop = 23 - keepbits
    mask = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    return (a.view(np.uint32) & mask).view(np.float32)


def _compressors(float_bits: bool):
    from zarr.codecs import BloscCodec

    # lz4 + bitshuffle: ~2.5x faster to write than zstd for ~10 % more bytes (bit-rounded
    # floats leave long runs of zero bits that the bit shuffle exposes)
    return (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle" if float_bits else "shuffle"),)


def _is_complete(path: Path) -> bool:
    meta = path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return attrs.get("generator") == GENERATOR and bool(attrs.get("complete"))


def _stored_params(path: Path) -> str | None:
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None
    return attrs.get("parameters")


def _stored_version(path: Path) -> str | None:
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None
    return attrs.get("version")


def store_matches(path: str | Path, params: DemoParams | None = None) -> bool:
    """Whether ``path`` is a complete demo world built by this generator version with
    ``params`` (default parameters when None); a leftover partial build never matches."""
    path = Path(path)
    params = (params or DemoParams()).normalised()
    return (_is_complete(path) and _stored_params(path) == params.to_json()
            and _stored_version(path) == VERSION)


def _clean_stale_temps(out: Path) -> None:
    for tmp in out.parent.glob(f".{out.name}.building-*"):
        try:
            pid = int(tmp.name.split("-")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("removing leftover partial build %s", tmp)
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def build_demo_world(out: str | Path | None = None, *, west: float = -100.0, south: float = 30.0,
                     east: float = -84.0, north: float = 46.0, res: float = 0.25,
                     start: str = "2003-01-01", end: str = "2023-12-31", seed: int = 42,
                     n_stations: int = 24, progress: bool = True, force: bool = False) -> Path:
    """Generate the demo world and write it to a zarr v3 store.

    Parameters
    ----------
    out : path, optional
        Store to write (a directory); default :func:`default_demo_path`.
    west, south, east, north : float
        Region edges in degrees.
    res : float
        Grid spacing in degrees.
    start, end : str
        First and last day (inclusive).
    seed : int
        Seed of every random stream: the same parameters give identical stores.
    n_stations : int
        Number of ISMN-like stations placed on land cells.
    progress : bool
        Show a tqdm progress bar.
    force : bool
        Rebuild even when a complete store with the same parameters exists, and replace
        a store built with other parameters (otherwise an error).

    Returns
    -------
    pathlib.Path
        The store.

    Raises
    ------
    DataError
        Bad parameters, or ``out`` holds something else and ``force`` is false.
    """
    from tqdm import tqdm

    params = DemoParams(west, south, east, north, res, start, end, seed, n_stations).normalised()
    out = Path(out) if out is not None else default_demo_path()
    out = out.absolute()
    if out.exists() and not force:
        if store_matches(out, params):
            log.info("demo world %s already built with these parameters", out)
            return out
        if _is_complete(out) and _stored_params(out) == params.to_json():
            # our own output from an older generator: safe to replace
            log.warning("demo world %s was built by generator version %s; rebuilding with "
                        "version %s", out, _stored_version(out), VERSION)
            force = True
    if out.exists() and not force:
        raise DataError("exists and was not built with these parameters (stored: "
                        f"{_stored_params(out)}); pass force=True (--force) to replace it", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(out)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_world(tmp, params, progress, tqdm)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.debug("demo world written to %s", out)
    return out


def _write_world(tmp: Path, p: DemoParams, progress: bool, tqdm) -> None:
    import dask.array as da
    import zarr

    w = World(p)
    tt, ty, tx = world_chunks(w.ny, w.nx)
    shape = (w.nt, w.ny, w.nx)
    dims = schema.GRID_DIMS

    def attrs(name: str) -> dict:
        return {"units": schema.UNITS[name], "long_name": schema.LONG_NAMES[name]}

    lazy_f = da.zeros(shape, chunks=(tt, ty, tx), dtype=np.float32)
    lazy_i = da.zeros(shape, chunks=(tt, ty, tx), dtype=np.int8)
    template = xr.Dataset(
        {
            schema.AMSR_SM: (dims, lazy_f, attrs(schema.AMSR_SM)),
            schema.GAP_MASK: (dims, lazy_i, schema.gap_mask_attrs()),
            schema.ASCAT_SM: (dims, lazy_f, attrs(schema.ASCAT_SM)),
            schema.TRUTH_SM: (dims, lazy_f, attrs(schema.TRUTH_SM)),
            schema.LAND: ((schema.LAT, schema.LON), w.land,
                          {"long_name": schema.LONG_NAMES[schema.LAND]}),
            "porosity": ((schema.LAT, schema.LON), w.surface.porosity,
                         {"units": "m3 m-3",
                          "long_name": "soil porosity (saturated water content)"}),
            "residual": ((schema.LAT, schema.LON), w.surface.residual,
                         {"units": "m3 m-3", "long_name": "residual soil water content"}),
            "vegetation": ((schema.LAT, schema.LON), w.surface.vegetation,
                           {"units": "1", "long_name": "vegetation density index (0..1)"}),
        },
        coords={
            schema.TIME: (schema.TIME, w.time.to_numpy(), {"long_name": "day (UTC)"}),
            schema.LAT: (schema.LAT, w.lat,
                         {"units": "degrees_north", "standard_name": "latitude"}),
            schema.LON: (schema.LON, w.lon,
                         {"units": "degrees_east", "standard_name": "longitude"}),
            schema.SENSOR: (schema.TIME, w.sensor, schema.sensor_attrs()),
        },
        attrs={
            "title": "AMSR Gap-Fill Explorer demo world (synthetic)",
            "generator": GENERATOR,
            "version": VERSION,
            "seed": p.seed,
            "parameters": p.to_json(),
            "citation": CITATION,
            "references": "https://doi.org/10.1109/JSTARS.2025.3557956",
            "amsre": json.dumps(sensors.AMSRE),
            "amsr2": json.dumps(sensors.AMSR2),
            "ascat": json.dumps(sensors.ASCAT_PARAMETERS),
            "rfi_hot_spots": json.dumps([{"name": s["name"], "lat": s["lat"], "lon": s["lon"]}
                                          for s in w.rfi.spots]),
            "Conventions": "CF-1.10",
            "complete": False,
        },
    )
    fcomp, icomp = _compressors(True), _compressors(False)
    enc = {v: {"chunks": (tt, ty, tx), "compressors": fcomp}
           for v in (schema.AMSR_SM, schema.ASCAT_SM, schema.TRUTH_SM)}
    enc[schema.GAP_MASK] = {"chunks": (tt, ty, tx), "compressors": icomp}
    enc[schema.TIME] = {"units": "days since 1970-01-01", "dtype": "int32"}
    template.to_zarr(tmp, mode="w", compute=False, zarr_format=3, consolidated=False,
                     encoding=enc)
    group = zarr.open_group(tmp, mode="r+", zarr_format=3)
    arrays = {v: group[v] for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM,
                                    schema.TRUTH_SM)}

    cells = stations.pick_station_cells(w, p.n_stations)
    ci = np.array([c[0] for c in cells], dtype=int)
    cj = np.array([c[1] for c in cells], dtype=int)
    st_truth = np.empty((w.nt, len(cells)), dtype=np.float32)
    st_frozen = np.empty((w.nt, len(cells)), dtype=bool)
    st_tair = np.empty((w.nt, len(cells)), dtype=np.float32)

    bar = tqdm(total=w.nt, unit="day", desc="demo world", disable=not progress)
    try:
        for blk in simulate(w, tt):
            a, b = blk.a, blk.b
            arrays[schema.TRUTH_SM][a:b] = bitround(blk.truth, 12)
            arrays[schema.AMSR_SM][a:b] = bitround(blk.amsr, 12)
            arrays[schema.ASCAT_SM][a:b] = bitround(blk.ascat, 10)
            arrays[schema.GAP_MASK][a:b] = blk.gap_mask
            st_truth[a:b] = blk.truth[:, ci, cj]
            st_frozen[a:b] = blk.frozen[:, ci, cj]
            st_tair[a:b] = blk.temperature[:, ci, cj]
            bar.update(b - a)
        bar.set_description("demo stations")
        rows, sm, flag = stations.station_data(w, cells, st_truth, st_frozen, st_tair)
        _write_stations(tmp, w, rows, sm, flag)
    finally:
        bar.close()
    group.attrs["complete"] = True


def _write_stations(tmp: Path, w: World, rows: list[dict], sm: np.ndarray,
                    flag: np.ndarray) -> None:
    hours = pd.date_range(w.time[0], periods=w.nt * 24, freq="h")
    nst = len(rows)
    ds = xr.Dataset(
        {
            "sm": (("station", "time"), sm, {"units": "m3 m-3",
                                            "long_name": "in situ soil moisture (hourly, UTC)"}),
            "flag": (("station", "time"), flag, {
                "long_name": "ISMN quality flag (code; see flag_strings)",
                "flag_values": np.arange(len(stations.STATION_FLAGS), dtype=np.int8),
                "flag_strings": json.dumps(stations.STATION_FLAGS)}),
        },
        coords={"station": np.arange(nst), "time": hours},
        attrs={"table": json.dumps(rows), "network": stations.NETWORK,
               "description": "ISMN-like demo stations: point truth + representativeness "
                              "error, sensor noise, outages; flags G, D01 (soil frozen), "
                              "D02 (air frozen), C03 (above saturation)"},
    )
    chunk = (1, max(1, w.nt * 24))
    enc = {"sm": {"chunks": chunk, "compressors": _compressors(True)},
           "flag": {"chunks": chunk, "compressors": _compressors(False)},
           "time": {"units": "hours since 1970-01-01", "dtype": "int64"}}
    ds.to_zarr(tmp, group=STATIONS_GROUP, mode="w", zarr_format=3, consolidated=False,
               encoding=enc)


# ---------------------------------------------------------------- reading
def _check_store(path: Path) -> Path:
    if not path.exists():
        raise MissingFileError("demo world not found; build it with `gapfill demo-data`", path)
    if not _is_complete(path):
        raise FormatError("not a complete demo world store (interrupted build or another "
                          "zarr store); rebuild with `gapfill demo-data --force`", path)
    return path


def open_demo_world(path: str | Path | None = None) -> xr.Dataset:
    """Open the demo world lazily (dask) in canonical form, ``truth_sm`` included.

    Parameters
    ----------
    path : path, optional
        The store; default :func:`default_demo_path`.

    Raises
    ------
    MissingFileError, FormatError
        When the store is absent or incomplete.
    """
    path = _check_store(Path(path) if path is not None else default_demo_path())
    ds = xr.open_zarr(path, consolidated=False, zarr_format=3)
    # the small (time,) and (lat, lon) arrays are read now: selecting days by sensor or
    # masking the sea should not build dask graphs
    small = [n for n, v in ds.variables.items() if schema.TIME not in v.dims or v.ndim == 1]
    ds = ds.assign({n: ds[n].load() for n in small if n in ds.data_vars})
    ds = ds.assign_coords({n: ds[n].load() for n in small if n in ds.coords})
    ds.attrs["source_path"] = str(path)
    return ds


def open_demo_stations(path: str | Path | None = None
                       ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The demo stations in the schema form ``(table, series)``.

    ``table`` has :data:`schema.STATION_COLUMNS` (plus ``cell_lat``/``cell_lon``, the
    demo grid cell the station lies in); ``series`` maps station id to an hourly frame
    indexed by tz-aware UTC time with ``sm`` (m3 m-3) and ``flag`` (ISMN flag string).
    Outage hours are absent, as in ISMN downloads.
    """
    path = _check_store(Path(path) if path is not None else default_demo_path())
    ds = xr.open_zarr(path, group=STATIONS_GROUP, consolidated=False, zarr_format=3)
    rows = json.loads(ds.attrs["table"])
    table = pd.DataFrame(rows)
    cols = list(schema.STATION_COLUMNS) + [c for c in table.columns
                                           if c not in schema.STATION_COLUMNS]
    table = table.reindex(columns=cols)
    strings = np.array(json.loads(ds["flag"].attrs["flag_strings"]), dtype=object)
    index = pd.DatetimeIndex(ds["time"].values).tz_localize("UTC").rename("time")
    sm = ds["sm"].values
    flag = ds["flag"].values
    series = {}
    for k, row in enumerate(rows):
        ok = np.isfinite(sm[k])
        series[row["id"]] = pd.DataFrame({"sm": sm[k][ok].astype(np.float64),
                                          "flag": strings[flag[k][ok]]}, index=index[ok])
    return table, series
