"""Real-data kits for validation: stations and products read through the catalog.

:func:`open_kit` asks :mod:`data_catalog.catalog` for a kit (``hawaii``): its ISMN
stations and its product members (cell-file folders read with
``data_catalog.readers.cells.read_cell_series``).  :func:`products_from_folders` builds the
same from plain folders (tests, kits not in the catalog).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from validation.sources import Product

log = logging.getLogger(__name__)

#: How each known product is compared: only AMSR days, and/or also on its gap days.
PRODUCT_RULES = {
    "cci_passive": {"amsr_only": True},
    "c3s_passive": {"amsr_only": True},
    "cci_gapfilled": {"gaps": True},
}
#: Products compared by default when the kit holds more (the issue's three).
DEFAULT_PRODUCTS = ("cci_passive", "ascat_h119", "cci_gapfilled")
#: ESA CCI v09.2 cell files have no units on ``sm``; the products document them.
DEFAULT_UNITS = {"cci_passive": "m3 m-3", "cci_gapfilled": "m3 m-3", "c3s_passive": "m3 m-3",
                 "c3s_combined": "m3 m-3", "c3s_active": "percent of saturation"}


def _cell_reader(folder: str | Path, units: str | None = None, **kwargs):
    from data_catalog.readers.cells import read_cell_series

    def read(lat: float, lon: float, *, start=None, end=None) -> pd.DataFrame:
        return read_cell_series(folder, lat, lon, start=start, end=end, units=units, **kwargs)

    return read


def make_product(name: str, read) -> Product:
    """A :class:`Product` with the comparison rules of ``name`` (:data:`PRODUCT_RULES`)."""
    return Product(name, read, **PRODUCT_RULES.get(name, {}))


def products_from_folders(folders: Mapping[str, str | Path]) -> list[Product]:
    """Products from ``name -> cell-file folder`` (units from :data:`DEFAULT_UNITS`)."""
    return [make_product(n, _cell_reader(f, DEFAULT_UNITS.get(n))) for n, f in folders.items()]


def open_kit(kit: str, *, catalog: str | Path | None = None,
             products: tuple[str, ...] | None = None
             ) -> tuple[tuple[pd.DataFrame, dict], list[Product]]:
    """Stations and products of a catalog kit.

    Parameters
    ----------
    kit : str
        Catalog source name (``hawaii``).
    catalog : path, optional
        Catalog file (default: ``$GAPFILL_CATALOG`` or the built-in one).
    products : tuple of str, optional
        Product members to compare (default: :data:`DEFAULT_PRODUCTS` that the kit has,
        else all its point products).

    Raises
    ------
    data_catalog.errors.CatalogError
        Unknown kit, or a kit without stations or products.
    """
    from data_catalog.catalog import load_catalog
    from data_catalog.errors import CatalogError

    cat = load_catalog(catalog)
    if kit not in cat.names():
        raise CatalogError(f"no source {kit!r} in the catalog; it has {', '.join(cat.names())}")
    members = _members(cat, kit)
    stations = None
    prods: dict[str, Product] = {}
    for name, src in members.items():
        role = _role(name, src)
        if role == "stations":
            if stations is None:
                stations = src.open()
        elif role == "points":
            prods[name] = make_product(name, _source_reader(src))
    if stations is None:
        raise CatalogError(f"catalog kit {kit!r} has no station member")
    wanted = products or tuple(n for n in DEFAULT_PRODUCTS if n in prods) or tuple(prods)
    missing = [n for n in wanted if n not in prods]
    if missing:
        raise CatalogError(f"catalog kit {kit!r} has no product {', '.join(missing)}; it has "
                           f"{', '.join(prods)}")
    if not wanted:
        raise CatalogError(f"catalog kit {kit!r} has no point products to compare")
    table, series = _as_stations(stations)
    return (table, series), [prods[n] for n in wanted]


def _members(cat, kit: str) -> dict:
    """``member name -> Source`` of a kit (a kit's ``members`` or ``<kit>_<member>`` names)."""
    src = cat[kit]
    members = getattr(src, "members", None)
    if callable(members):
        members = members()
    if isinstance(members, Mapping):
        return dict(members)
    if members:
        return {m: cat[m] if isinstance(m, str) else m for m in members}
    prefix = f"{kit}_"
    found = {n[len(prefix):]: cat[n] for n in cat.names() if n.startswith(prefix)}
    if found:
        return found
    from data_catalog.errors import CatalogError

    raise CatalogError(f"catalog source {kit!r} is not a kit with members")


def _role(name: str, src) -> str:
    driver = str(getattr(src, "driver", "")).lower()
    if "ismn" in driver or "station" in driver or name in ("ismn", "stations"):
        return "stations"
    if "cell" in driver or "point" in driver:
        return "points"
    return "other"


def _source_reader(src):
    """``read(lat, lon, start=, end=)`` for a catalog point source (cell-file folder)."""
    for attr in ("read_point", "point", "read_cell_series"):
        fn = getattr(src, attr, None)
        if callable(fn):
            return functools.partial(_call_point, fn)
    args = dict(getattr(src, "args", {}) or {})
    folder = args.pop("folder", None) or args.pop("path", None) or args.pop("urlpath", None)
    if folder is None:
        paths = src.paths() if hasattr(src, "paths") else []
        if not paths:
            from data_catalog.errors import CatalogError

            raise CatalogError(f"catalog source {getattr(src, 'name', '?')!r}: no folder")
        folder = Path(paths[0]).parent if Path(paths[0]).is_file() else paths[0]
    keep = {k: v for k, v in args.items() if k in ("grid", "max_dist_km", "units", "sm_kind")}
    return _cell_reader(folder, keep.pop("units", None), **keep)


def _call_point(fn, lat, lon, *, start=None, end=None):
    return fn(lat, lon, start=start, end=end)


def _as_stations(obj) -> tuple[pd.DataFrame, dict]:
    """``(table, series)`` from what a station source opens to."""
    if isinstance(obj, tuple) and len(obj) == 2:
        return obj
    table = getattr(obj, "table", None)
    series = getattr(obj, "series", None)
    if table is not None and series is not None:
        return table, series
    from data_catalog.errors import CatalogError

    raise CatalogError(f"station source opened to {type(obj).__name__}, expected (table, "
                       "series)")
