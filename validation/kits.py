"""Real-data kits: ISMN stations and satellite products read through the catalog.

A kit (``hawaii``) is a catalog source of driver ``kit`` whose members are other sources:
one station source (driver ``ismn``) and point products (driver ``cell_series``).  What a
member is, and so how it is compared, is its catalog metadata, never its name:

``role: passive``     a radiometer product: only the days an AMSR instrument contributed
                      to are compared (CCI/C3S ``sensor`` bits)
``role: gap_filled``  a gap-filled peer product: also compared on its gap-filled days
                      only (``<name>_gaps``)
``role: active``      a scatterometer product (ASCAT)
``role: combined``    a merged product
``role: insitu``      the stations
``units:``            the units of ``sm`` where the files carry none

The kit's own ``metadata: compare: [...]`` names the products compared by default (else
all of them); the relative change of the median R goes from the first ``passive`` to the
first ``gap_filled`` product.  :func:`open_source` builds the :class:`KitSource`
(satisfying :class:`validation.protocol.Source`); :func:`folder_product` makes a product
of a plain folder of cell files (tests, kits not in a catalog).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import schema
from validation import collocation as co
from validation import filled as fl
from validation import metrics as mx
from validation.protocol import FILLED, FILLED_GAPS, SatSeries, Settings

log = logging.getLogger(__name__)

#: CCI/C3S ``sensor`` bits of the AMSR radiometers (8: AMSR-E, 32: AMSR2).
AMSR_SENSOR_BITS = 8 | 32


@dataclass
class Product:
    """One satellite product of a kit, as the comparisons read it.

    Attributes
    ----------
    name : str
        Series name (``cci_passive``, ``ascat_h119``, ``cci_gapfilled``, ...).
    read : callable
        ``read(lat, lon, start, end) -> DataFrame`` in the canonical point form (a
        ``data_catalog.readers.cells.read_cell_series`` call).
    role : str or None
        ``passive``, ``gap_filled``, ``active`` or ``combined`` (catalog metadata
        ``role``; :data:`data_catalog.catalog.ROLES`).
    """

    name: str
    read: Callable[..., pd.DataFrame]
    role: str | None = None

    @property
    def amsr_only(self) -> bool:
        """Keep only days whose ``sensor`` bits include AMSR-E or AMSR2 (passive products,
        which merge other radiometers too)."""
        return self.role == "passive"

    @property
    def gaps(self) -> bool:
        """Also compare on the gap-filled days only (``<name>_gaps``, where ``gapmask ==
        0``: "no observation available / gap filled")."""
        return self.role == "gap_filled"


class KitSource:
    """A real-data kit: ISMN stations and product cell files (e.g. ``hawaii``).

    Parameters
    ----------
    name : str
        Kit name (for the report).
    stations : (table, series)
        ISMN stations in the schema form (``data_catalog.readers.read_ismn``).
    products : list of Product
        The compared products.
    change_pair : (str, str), None or "auto"
        Series whose median R change is reported; ``"auto"``: the first product of role
        ``passive`` -> the first of role ``gap_filled`` (or ``filled`` from a series
        store) when both are compared; None: no change reported.
    series_store : path, optional
        A seamless series store covering the kit, compared as ``filled``/``filled_gaps``.
    """

    def __init__(self, name: str, stations: tuple[pd.DataFrame, dict],
                 products: Sequence[Product], *,
                 change_pair: tuple[str, str] | None | str = "auto",
                 series_store: str | Path | None = None):
        self.name = name
        self._table, self._series = stations
        self.products = list(products)
        if change_pair == "auto":
            raw = next((p.name for p in self.products if p.role == "passive"), None)
            to = next((p.name for p in self.products if p.role == "gap_filled"),
                      FILLED if series_store else None)
            change_pair = (raw, to) if raw and to else None
        self.change_pair = change_pair
        self.series_store = series_store
        self.filled_origin = f"series store {series_store}" if series_store else ""
        self._cache: dict[tuple, pd.DataFrame | str] = {}

    # -- Source protocol
    def stations(self) -> pd.DataFrame:
        return self._table

    def insitu(self, station_id: str) -> pd.DataFrame:
        return self._series[str(station_id)]

    def _period(self, station: pd.Series, settings: Settings) -> tuple[pd.Timestamp, ...]:
        hourly = self.insitu(str(station["id"]))
        idx = co.to_naive_utc(hourly.index) if len(hourly) else pd.DatetimeIndex([])
        start = (pd.Timestamp(settings.start) if settings.start is not None
                 else (idx.min().normalize() if len(idx) else None))
        end = (pd.Timestamp(settings.end) if settings.end is not None
               else (idx.max().normalize() if len(idx) else None))
        return start, end

    def satellite(self, station: pd.Series, settings: Settings) -> list[SatSeries]:
        start, end = self._period(station, settings)
        lat, lon = float(station["lat"]), float(station["lon"])
        out: list[SatSeries] = []
        for prod in self.products:
            key = (prod.name, lat, lon, start, end)
            if key not in self._cache:
                self._cache[key] = self._read(prod, lat, lon, start, end)
            df = self._cache[key]
            if isinstance(df, str):
                out.append(SatSeries(prod.name, pd.Series(dtype=np.float64), status=mx.NO_DATA,
                                     note=df))
                if prod.gaps:
                    out.append(SatSeries(f"{prod.name}_gaps", pd.Series(dtype=np.float64),
                                         status=mx.NO_DATA, note=df))
                continue
            loc = {"cell_lat": float(df.attrs.get("lat", np.nan)),
                   "cell_lon": float(df.attrs.get("lon", np.nan)),
                   "distance_km": float(df.attrs.get("distance_km", np.nan))}
            sat = df.attrs.get("units") == schema.UNITS[schema.ASCAT_SM]
            idx = co.to_naive_utc(df.index)
            exact = bool(len(idx)) and not bool((idx == idx.normalize()).all())
            sm = pd.Series(df["sm"].to_numpy(np.float64), index=idx)
            if prod.amsr_only and "sensor" in df:
                bits = pd.to_numeric(df["sensor"], errors="coerce").fillna(0).astype(np.int64)
                sm = sm.where((bits.to_numpy() & AMSR_SENSOR_BITS) > 0)
            note = str(df.attrs.get("source", ""))
            out.append(SatSeries(prod.name, sm, exact_times=exact, saturation=sat, note=note,
                                 **loc))
            if prod.gaps and "gapmask" in df:
                filled_day = pd.to_numeric(df["gapmask"], errors="coerce").to_numpy() == 0
                out.append(SatSeries(f"{prod.name}_gaps", sm.where(filled_day),
                                     exact_times=exact, saturation=sat, note=note,
                                     parent=prod.name, **loc))
        if self.series_store is not None:
            out.extend(self._filled_from_store(station, start, end))
        return out

    def _read(self, prod: Product, lat: float, lon: float, start, end) -> pd.DataFrame | str:
        from data_catalog.errors import DataError

        try:
            return prod.read(lat, lon, start=start, end=end)
        except DataError as exc:  # no grid point near the station, no data in the period
            log.info("%s at (%.3f, %.3f): %s", prod.name, lat, lon, exc)
            return str(exc)

    def _filled_from_store(self, station: pd.Series, start, end) -> list[SatSeries]:
        days = pd.date_range(start, end, freq="D", name="time")
        found = fl.filled_from_store(self.series_store, self._table[
            self._table["id"].astype(str) == str(station["id"])], days)
        if isinstance(found, str) or str(station["id"]) not in found:
            note = found if isinstance(found, str) else "not covered"
            return [SatSeries(n, pd.Series(dtype=np.float64), status=mx.NO_DATA, note=note)
                    for n in (FILLED, FILLED_GAPS)]
        s = found[str(station["id"])]
        return [SatSeries(FILLED, s, note=self.filled_origin, sd=s.attrs.get("sd"))]


# ---------------------------------------------------------------- from the catalog
def open_source(kit: str, *, catalog: str | Path | None = None, product: str | None = None,
                series_store: str | Path | None = None) -> KitSource:
    """The kit ``kit`` of the catalog as a validation source.

    Parameters
    ----------
    kit : str
        Catalog source name of the kit (``hawaii``).
    catalog : path, optional
        Catalog file (default: ``$GAPFILL_CATALOG`` or the built-in one).
    product : str, optional
        Compare only this product (a member name such as ``cci_passive``).
    series_store : path, optional
        A seamless series store covering the kit, compared as ``filled``.

    Raises
    ------
    data_catalog.errors.CatalogError
        Unknown kit or product, or a kit without stations or products.
    """
    stations, products = open_kit(kit, catalog=catalog,
                                  products=(product,) if product is not None else None)
    pair: tuple[str, str] | None | str = "auto"
    if product is not None:
        pair = (product, FILLED) if series_store else None
    return KitSource(kit, stations, products, change_pair=pair, series_store=series_store)


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
        Product members to compare (default: the kit's ``metadata.compare``, else all its
        point products).

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
    prods = {name: Product(name, functools.partial(_open_point, member),
                           member.metadata.get("role"))
             for name, member in members.items() if member.kind == "point"}
    wanted = products or tuple(src.metadata.get("compare") or prods)
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


def _open_point(member, lat: float, lon: float, *, start=None, end=None) -> pd.DataFrame:
    """A catalog point source opened at a station (``read_cell_series`` via the catalog);
    the member's metadata ``units`` stand in where its files carry none."""
    kwargs = {"lat": lat, "lon": lon}
    if start is not None:
        kwargs["start"] = start
    if end is not None:
        kwargs["end"] = end
    if "units" not in member.args and member.metadata.get("units"):
        kwargs["units"] = member.metadata["units"]
    return member.open(**kwargs)


def folder_product(name: str, folder: str | Path, *, role: str | None = None,
                   units: str | None = None, **reader_args) -> Product:
    """A product read from a plain folder of cell files (``read_cell_series``)."""
    from data_catalog.readers.cells import read_cell_series

    def read(lat: float, lon: float, *, start=None, end=None) -> pd.DataFrame:
        return read_cell_series(folder, lat, lon, start=start, end=end, units=units,
                                **reader_args)

    return Product(name, read, role)
