"""The catalog's drivers: which reader opens a source, and what it returns.

:data:`DRIVERS` is the one table of readers.  To add a product reader, write its module in
``data_catalog/readers/`` (returning the canonical schema), add an open function here and
one :class:`Driver` entry to the table; catalog entries then name it as ``driver:``.
Each open function gets the source's ``args`` (paths already expanded) and the keyword
arguments of :meth:`data_catalog.catalog.Source.open`, which override or add to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from data_catalog.errors import CatalogError

#: Path arguments of the drivers (expanded and made absolute when the catalog loads).
PATH_ARGS = ("path", "paths", "folder", "grid", "land_grid", "meta_path")


@dataclass(frozen=True)
class Driver:
    """How a driver opens its args, and what kind of thing it returns."""

    name: str
    kind: str  # "grid", "stations", "point", "kit"
    open: Callable[..., Any]


def _open_world(args: dict, **kw):
    from data_catalog.worlds import open_world

    return open_world(args["path"])


def _open_series(args: dict, **kw):
    from data_catalog.series_store import open_series

    return open_series(args["path"])


def _open_demo_stations(args: dict, **kw):
    from data_catalog import demo

    return demo.open_demo_stations(args.get("path"))


def _open_lprm(args: dict, **kw):
    from data_catalog.readers import read_lprm, read_lprm_files

    merged = {**args, **kw}
    date = merged.pop("date", None)
    if "paths" in merged:  # many daily files: a glob, a folder or a list
        if date is not None:
            merged["start"] = merged["end"] = date
        opts = {k: v for k, v in merged.items()
                if k in ("band", "region", "land_grid", "start", "end", "progress",
                         "require_data")}
        return read_lprm_files(merged["paths"], **opts)
    opts = {k: v for k, v in merged.items()
            if k in ("band", "region", "land_grid", "require_data")}
    return read_lprm(merged["path"], **opts)


def _open_cci_images(args: dict, **kw):
    from data_catalog.readers import read_cci_images

    merged = {**args, **kw}
    if "date" in merged:
        merged["start"] = merged["end"] = merged.pop("date")
    opts = {k: v for k, v in merged.items()
            if k in ("region", "sensors", "land_grid", "start", "end", "progress",
                     "require_data")}
    return read_cci_images(args["paths"], **opts)


def _open_cells(args: dict, **kw):
    from data_catalog.readers import read_cell_series

    merged = {**args, **kw}
    if "lat" not in merged or "lon" not in merged:
        raise CatalogError("a cell_series source is opened at a point: open(lat=..., lon=...)")
    opts = {k: v for k, v in merged.items()
            if k in ("grid", "max_dist_km", "units", "sm_kind", "start", "end")}
    return read_cell_series(merged["folder"], float(merged["lat"]), float(merged["lon"]),
                            **opts)


def _open_ismn(args: dict, **kw):
    from data_catalog.readers import read_ismn

    merged = {**args, **kw}
    opts = {k: v for k, v in merged.items()
            if k in ("variable", "depth", "flags", "networks", "meta_path", "start", "end")}
    if "depth" in opts:
        opts["depth"] = tuple(opts["depth"])
    return read_ismn(merged["path"], **opts)


DRIVERS: dict[str, Driver] = {
    d.name: d for d in (
        Driver("world", "grid", _open_world),          # canonical world stores (demo, assembled)
        Driver("series", "grid", _open_series),        # the seamless series store
        Driver("demo_stations", "stations", _open_demo_stations),
        Driver("lprm", "grid", _open_lprm),
        Driver("cci_images", "grid", _open_cci_images),
        Driver("cell_series", "point", _open_cells),
        Driver("ismn", "stations", _open_ismn),
        Driver("kit", "kit", lambda args, **kw: None),  # opened by Source.open
    )
}

#: Old driver names that existing catalogs may use -> the driver they mean.
ALIASES: dict[str, str] = {"demo_world": "world"}


def driver_name(name: object) -> str | None:
    """The table name of a catalog's ``driver:`` value (aliases resolved), or None."""
    name = ALIASES.get(name, name) if isinstance(name, str) else None
    return name if name in DRIVERS else None
