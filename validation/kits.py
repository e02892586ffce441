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
    src = cat[kit]
    members = src.members() if src.kind == "kit" else {}
    if not members:
        raise CatalogError(f"catalog source {kit!r} is not a kit with members "
                           f"(driver {src.driver!r})")
    # the products and the station member are checked before any station is read
    prods = {role: make_product(role, functools.partial(_open_point, member))
             for role, member in members.items() if member.kind == "point"}
    wanted = products or tuple(n for n in DEFAULT_PRODUCTS if n in prods) or tuple(prods)
    missing = [n for n in wanted if n not in prods]
    if missing:
        raise CatalogError(f"catalog kit {kit!r} has no product {', '.join(missing)}; it has "
                           f"{', '.join(prods)}")
    if not wanted:
        raise CatalogError(f"catalog kit {kit!r} has no point products to compare")
    station_members = [m for m in members.values() if m.kind == "stations"]
    if not station_members:
        raise CatalogError(f"catalog kit {kit!r} has no station member")
    table, series = station_members[0].open()
    return (table, series), [prods[n] for n in wanted]


def kit_products(kit: str, *, catalog: str | Path | None = None) -> list[str]:
    """Names of the point products of a catalog kit (for ``--product`` choices)."""
    from data_catalog.catalog import load_catalog

    src = load_catalog(catalog)[kit]
    return [role for role, m in src.members().items() if m.kind == "point"]


def _open_point(member, lat: float, lon: float, *, start=None, end=None) -> pd.DataFrame:
    """A catalog point source opened at a station: ``read_cell_series`` via the catalog."""
    kwargs = {"lat": lat, "lon": lon}
    if start is not None:
        kwargs["start"] = start
    if end is not None:
        kwargs["end"] = end
    if member.name.endswith(tuple(DEFAULT_UNITS)) and "units" not in member.args:
        role = next(r for r in DEFAULT_UNITS if member.name.endswith(r))
        kwargs["units"] = DEFAULT_UNITS[role]
    return member.open(**kwargs)
