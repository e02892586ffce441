"""H SAF ASCAT surface soil moisture CDR cells (H25, H108-H111, H119, H120) -> daily grids.

Each 0.25 degree land cell of the world takes the ASCAT grid point nearest its centre,
among the points the cell files hold, if that point lies within :data:`RADIUS_KM`
(12.5 km, the WARP5 grid's sampling distance: inland, every cell centre has a point
within about 9 km; at coasts a cell whose nearest point is further away stays missing
rather than borrow a point across the water).  The lookup is pygeogrids'
``BasicGrid.find_nearest_gpi`` (a kd-tree on the sphere).

The value of a day is the mean of that point's observations in the UTC day that pass the
product's own flags (:data:`FLAG_RULES`), in percent of saturation.  The daily mean, not the
overpass nearest AMSR's: ASCAT passes at about 09:30 and 21:30 local solar time and AMSR at
01:30 and 13:30, so neither overpass is nearer, and averaging the passes lowers the noise.

Each cell file is read once, in slices of at most :data:`SLICE` observations of the
wanted points only (memory does not grow with the file's record length; the sums and
counts per day and point take 16 bytes each: 50 MB for 20 years of the ~400 points a
land cell serves), and its daily grid is kept in the work folder as a ``.npy`` file that
the blocks of days read from (and a resumed run reuses).

TU Wien's ``ascat`` package reads these files one grid point at a time and would add
eccodes (the GRIB libraries) to the install for formats this project does not read; the
ragged layout is simple enough to read directly.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_catalog.errors import FormatError, MissingFileError, OutOfRangeError
from data_catalog.readers import _netcdf as nc

log = logging.getLogger(__name__)

RADIUS_KM = 12.5
SLICE = 2_000_000
FLAG_RULES = ("dropped: ssf frozen, melting water or permanent ice; any proc_flag bit; "
              "conf_flag bad surface state, noise above 50 %, sensitivity below 1 dB; "
              "corr_flag set-to-NaN; sm outside 0..100. Kept: topographic complexity and "
              "wetland advisories")
#: conf_flag / corr_flag meanings (words) that make an observation unusable
CONF_DROP = ("surface_state", "noise", "sensitivity")
CORR_DROP = ("set_to_nan",)
#: surface state flag meanings (whole words) that mean frozen or snow/ice covered ground
SSF_DROP = {"frozen", "melting", "ice", "snow"}


@dataclass(frozen=True)
class CellJob:
    """One 5 degree cell: its files (a CDR and its extension, H119 + H120, may both hold
    it) and, per file, the location index of each world cell it serves (-1: not there)."""

    cell: int
    paths: tuple[str, ...]
    locs: tuple[np.ndarray, ...]   # per file: location index in that file, per target
    target: np.ndarray             # flat (lat, lon) index of the world cell
    fingerprint: str


# ---------------------------------------------------------------- planning
def _locations(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """lat, lon, location id and row size of every location of a ragged cell file
    (padding locations, masked in the file, get row size 0)."""
    with nc.open_netcdf(path) as ds:
        if "row_size" not in ds.variables:
            raise FormatError("not a ragged H SAF cell file (no row_size): an orthogonal "
                              "CCI/C3S time-series cell? use the ACTIVE daily images for "
                              "ASCAT instead", path)
        lat = np.ma.filled(np.ma.asarray(ds["lat"][:], np.float64), np.nan)
        lon = np.ma.filled(np.ma.asarray(ds["lon"][:], np.float64), np.nan)
        ids = (np.ma.filled(np.ma.asarray(ds["location_id"][:]).astype(np.int64), -1)
               if "location_id" in ds.variables else np.arange(lat.size))
        rows = np.ma.filled(np.ma.asarray(ds["row_size"][:]).astype(np.int64), 0)
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90)
    rows = np.where(ok, rows, 0)
    return lat, nc.wrap_lon(np.nan_to_num(lon)), ids, rows


def _cell_files(folder: Path) -> dict[int, list[Path]]:
    """Cell number -> files (``NNNN.nc``, ``H119_NNNN.nc``, ``H120_NNNN.nc``...): unlike
    the point reader's ``cell_files``, a cell may have several (a CDR and its extension)."""
    out: dict[int, list[Path]] = {}
    for f in sorted(folder.glob("*.nc")):
        m = re.fullmatch(r"(?:.*_)?(\d{4})\.nc", f.name)
        if m:
            out.setdefault(int(m.group(1)), []).append(f)
    return out


def plan_cells(product, plan) -> list[CellJob]:
    """The cell files of the region and the nearest-point lookup of its land cells."""
    from pygeogrids.grids import BasicGrid

    from data_catalog.assemble.files import _digest, check_signature
    from data_catalog.readers.cells import load_grid

    folder = Path(product.folder)
    files = _cell_files(folder)
    if not files:
        raise MissingFileError(f"source {product.source!r}: folder holds no cell files "
                               "(NNNN.nc)", folder)
    w, s, e, n = plan.region
    margin = 0.25  # points just outside the region can be nearest to its edge cells
    box = (w - margin, s - margin, e + margin, n + margin)
    g = None
    if product.grid_file:
        g = load_grid(product.grid_file)
        sel = (g.lat >= box[1]) & (g.lat <= box[3]) & (g.lon >= box[0]) & (g.lon <= box[2])
        cells = sorted({int(c) for c in g.cell[sel]})
        land_cells = sorted({int(c) for c in g.cell[sel & g.land]})
        missing = [c for c in land_cells if c not in files]
        if missing:
            log.warning("ASCAT source %r: no file for cell(s) %s: ascat_sm is missing there",
                        product.source, ", ".join(f"{c:04d}" for c in missing))
        wanted = [c for c in cells if c in files]
    else:
        wanted = sorted(files)
    if not wanted:
        raise OutOfRangeError(f"ASCAT source {product.source!r}: no cell file covers the "
                              f"region {plan.region} (files here: "
                              f"{', '.join(f'{c:04d}' for c in sorted(files))})", folder)
    # grid points by id: the same point in a CDR and its extension is one point
    where: dict[int, list[tuple[int, int, int]]] = {}   # id -> (cell, file, location)
    pos: dict[int, tuple[float, float]] = {}
    for c in wanted:
        for fi, f in enumerate(files[c]):
            check_signature(f)
            lat, lon, ids, rows = _locations(f)
            if g is not None:
                _check_against_grid(f, g, lat, lon, ids, rows)
            inside = (rows > 0) & (lat >= box[1]) & (lat <= box[3]) & (lon >= box[0]) \
                & (lon <= box[2])
            for k in np.flatnonzero(inside):
                key = int(ids[k])
                if key in pos and max(abs(pos[key][0] - lat[k]), abs(pos[key][1] - lon[k])) \
                        > 1e-3:
                    raise FormatError(f"grid point {key} is not where another cell file puts "
                                      "it (files of different grid versions?)", f)
                pos[key] = (float(lat[k]), float(lon[k]))
                where.setdefault(key, []).append((c, fi, int(k)))
    if not pos:
        raise OutOfRangeError(f"ASCAT source {product.source!r}: its cell files hold no grid "
                              f"point in the region {plan.region}", folder)
    keys = np.array(sorted(pos))
    points = BasicGrid(np.array([pos[k][1] for k in keys]), np.array([pos[k][0] for k in keys]))
    yy, xx = np.meshgrid(plan.lat, plan.lon, indexing="ij")
    targets = np.flatnonzero(plan.land.ravel())
    if targets.size == 0:
        return []
    with warnings.catch_warnings():
        # cells with no point within the radius are expected (coasts, missing cells):
        # pygeogrids warns about each call that has one; they simply stay missing
        warnings.filterwarnings("ignore", message="Less than k=1 points found")
        nearest, _ = points.find_nearest_gpi(xx.ravel()[targets], yy.ravel()[targets],
                                             max_dist=RADIUS_KM * 1000.0)
    found = np.flatnonzero(nearest < keys.size)
    if found.size == 0:
        raise OutOfRangeError(f"ASCAT source {product.source!r}: no grid point within "
                              f"{RADIUS_KM} km of the region's land cells", folder)
    per_cell: dict[int, list[tuple[int, int, int]]] = {}  # cell -> (target, file, location)
    for t in found:
        for c, fi, k in where[int(keys[nearest[t]])]:
            per_cell.setdefault(c, []).append((int(targets[t]), fi, k))
    jobs = []
    for c, rows_ in sorted(per_cell.items()):
        tgt = np.array(sorted({r[0] for r in rows_}))
        locs = [np.full(tgt.size, -1, np.int64) for _ in files[c]]
        for t, fi, k in rows_:
            locs[fi][np.searchsorted(tgt, t)] = k
        stats = [(str(f), os.stat(f).st_size, os.stat(f).st_mtime) for f in files[c]]
        fp = _digest({"files": stats, "request": plan.fingerprint(), "radius_km": RADIUS_KM,
                      "rules": FLAG_RULES})
        jobs.append(CellJob(c, tuple(str(f) for f in files[c]), tuple(locs), tgt, fp))
    log.info("ASCAT %r: %d cell(s), %d of %d land cells within %g km of a grid point",
             product.source, len(jobs), found.size, targets.size, RADIUS_KM)
    return jobs


def _check_against_grid(path: Path, g, lat, lon, ids, rows) -> None:
    """The file's locations must be points of the grid file (else: mixed grid versions)."""
    use = rows > 0
    order = np.argsort(g.gpi)
    pos = np.searchsorted(g.gpi[order], ids[use])
    pos = np.clip(pos, 0, g.gpi.size - 1)
    idx = order[pos]
    bad = (g.gpi[idx] != ids[use]) | (np.abs(g.lat[idx] - lat[use]) > 1e-3) \
        | (np.abs(((g.lon[idx] - lon[use] + 180) % 360) - 180) > 1e-3)
    if bad.any():
        raise FormatError(f"{int(bad.sum())} of its grid points are not where the grid file "
                          f"{g.path.name} puts them (cell and grid files of different grid "
                          "versions?)", path)


# ---------------------------------------------------------------- daily means
def _flag_meanings(var) -> dict[int, str]:
    vals = nc.parse_list_attr(getattr(var, "flag_masks", None)) or \
        nc.parse_list_attr(getattr(var, "flag_values", None))
    names = nc.parse_list_attr(getattr(var, "flag_meanings", None))
    if len(vals) != len(names):
        return {}
    return {int(v): str(m).lower().rstrip(",") for v, m in zip(vals, names, strict=True)}


def usable(ds, index: slice, sm: np.ndarray) -> np.ndarray:
    """Observations of ``index`` that pass the product's flags (:data:`FLAG_RULES`)."""
    ok = np.isfinite(sm) & (sm >= 0) & (sm <= 100)

    def raw(name):
        v = ds.variables[name]
        a = nc.read_raw(v, index).astype(np.int64)
        for attr in ("missing_value", "_FillValue"):
            if hasattr(v, attr):  # a missing flag says nothing: no reason to drop
                a[a == int(np.asarray(getattr(v, attr)).astype(v.dtype))] = 0
        return a

    if "ssf" in ds.variables:
        meanings = _flag_meanings(ds.variables["ssf"])
        bad = [v for v, m in meanings.items() if set(m.split("_")) & SSF_DROP]
        ok &= ~np.isin(raw("ssf"), bad)
    if "proc_flag" in ds.variables:
        ok &= raw("proc_flag") == 0
    for name, words in (("conf_flag", CONF_DROP), ("corr_flag", CORR_DROP)):
        if name in ds.variables:
            mask = sum(b for b, m in _flag_meanings(ds.variables[name]).items()
                       if any(w in m for w in words))
            if mask:
                ok &= (raw(name) & mask) == 0
    return ok


def _spans(starts: np.ndarray, stops: np.ndarray) -> list[tuple[int, int]]:
    """Merged, then cut to at most :data:`SLICE` observations, ``[start, stop)`` spans."""
    merged: list[list[int]] = []
    for a, b in sorted(zip(starts.tolist(), stops.tolist(), strict=True)):
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(i, min(i + SLICE, b)) for a, b in merged for i in range(a, b, SLICE)]


def aggregate_cell(job: CellJob, days: np.ndarray) -> np.ndarray:
    """Daily means ``(day, target)`` (float32, NaN where no usable observation) over all
    of the cell's files."""
    nd = len(days)
    sums = np.zeros((nd, job.target.size))
    counts = np.zeros((nd, job.target.size))
    for path, loc in zip(job.paths, job.locs, strict=True):
        serve = loc >= 0
        if serve.any():
            s, c = _sums(Path(path), loc[serve], days)
            sums[:, serve] += s
            counts[:, serve] += c
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(np.float32)


def _sums(path: Path, loc: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts ``(day, i)`` of the usable observations of location ``loc[i]``."""
    nd = len(days)
    wanted, inverse = np.unique(loc, return_inverse=True)
    sums = np.zeros(nd * wanted.size)
    counts = np.zeros(nd * wanted.size)
    day0 = days[0]
    with nc.open_netcdf(path) as ds:
        rows = np.ma.filled(np.ma.asarray(ds["row_size"][:]).astype(np.int64), 0)
        stop = np.cumsum(rows)
        start = stop - rows
        tvar = nc.require_variable(ds, "time", path)
        smv = nc.require_variable(ds, "sm", path)
        factor = nc.canonical_units(getattr(smv, "units", None) or "%",
                                    "percent of saturation", path, "sm")
        for a, b in _spans(start[wanted], stop[wanted]):
            index = slice(a, b)
            obs_loc = np.searchsorted(stop, np.arange(a, b), side="right")
            k = np.clip(np.searchsorted(wanted, obs_loc), 0, wanted.size - 1)
            mine = wanted[k] == obs_loc
            t = nc.nc_times(tvar, nc.read_float(tvar, index), path)
            d = (t.values.astype("datetime64[D]") - day0).astype(np.int64)
            sm = nc.read_float(smv, index) * factor
            ok = mine & (d >= 0) & (d < nd) & usable(ds, index, sm)
            flat = d[ok] * wanted.size + k[ok]
            sums += np.bincount(flat, weights=sm[ok], minlength=sums.size)
            counts += np.bincount(flat, minlength=counts.size)
    return (sums.reshape(nd, wanted.size)[:, inverse],
            counts.reshape(nd, wanted.size)[:, inverse])


# ---------------------------------------------------------------- the work folder
def cell_path(work: Path, job: CellJob) -> Path:
    return work / "ascat" / f"cell-{job.cell:04d}.npy"


def is_done(work: Path, job: CellJob) -> bool:
    meta = cell_path(work, job).with_suffix(".json")
    try:
        return json.loads(meta.read_text())["fingerprint"] == job.fingerprint \
            and cell_path(work, job).is_file()
    except (OSError, ValueError, KeyError):
        return False


def run_cell(plan, job: CellJob, work: str) -> dict:
    """Aggregate one cell file into the work folder (atomic; a Dask task)."""
    out = cell_path(Path(work), job)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = aggregate_cell(job, plan.days)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.npy")
    np.save(tmp, grid)
    os.replace(tmp, out)
    n = int(np.isfinite(grid).sum())
    meta = out.with_suffix(".json")
    tmpm = meta.with_name(f".{meta.name}.{os.getpid()}")
    tmpm.write_text(json.dumps({"fingerprint": job.fingerprint, "values": n}))
    os.replace(tmpm, meta)
    return {"cell": job.cell, "values": n}


def fill_block(plan, work: str | Path, a: int, b: int, ascat: np.ndarray) -> None:
    """Put days ``a:b`` of every cell's daily grid into ``ascat`` (``(b - a, ny, nx)``)."""
    flat = ascat.reshape(b - a, -1)
    for job in plan.cells:
        grid = np.load(cell_path(Path(work), job), mmap_mode="r")
        flat[:, job.target] = grid[a:b]
