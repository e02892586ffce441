"""Validation on any canonical world (an assembled one) with the stations of a catalog
ISMN source: ``gapfill validate --source WORLD --ismn SOURCE``.

:class:`WorldSource` is a :class:`validation.sources.DemoSource` whose stations come from
the catalog (``ismn`` or ``demo_stations`` driver) instead of the demo world, kept to
those inside the world's grid.  The compared series are the world's cells at the stations
(``raw`` AMSR, ``ascat``, ``truth`` only where the world has one) and the filled series (a
series store, else the model streamed at the stations: :func:`model.points.filled_at_points`,
which refuses a checkpoint that does not fit the world, :mod:`model.fit`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import grid, schema
from data_catalog.errors import CatalogError, EmptySelectionError
from data_catalog.worlds import open_world
from validation.sources import DemoSource

log = logging.getLogger(__name__)


def catalog_stations(name: str, catalog: str | Path | None = None
                     ) -> tuple[pd.DataFrame, dict]:
    """``(table, series)`` of a catalog source of stations (``ismn``, ``demo_stations``)."""
    from data_catalog.catalog import load_catalog

    cat = load_catalog(catalog)
    if name not in cat:
        raise CatalogError(f"no source {name!r} in the catalog; it has "
                           f"{', '.join(cat.names())}")
    src = cat[name]
    if src.kind != "stations":
        raise CatalogError(f"catalog source {name!r} is a {src.driver} source, not stations "
                           "(driver ismn or demo_stations)")
    return src.open()


def stations_inside(table: pd.DataFrame, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Which stations lie in a cell of the grid ``lat``, ``lon``."""
    i = grid.nearest_index(lat, table["lat"].to_numpy(float))
    j = grid.nearest_index(lon, table["lon"].to_numpy(float))
    return (i >= 0) & (j >= 0)


class WorldSource(DemoSource):
    """A canonical world and the stations of a catalog source inside its grid.

    Parameters
    ----------
    path : path
        The world store.
    stations_source : str
        Catalog source of the stations (``ismn`` driver).
    catalog : path, optional
        Catalog file (default: ``$GAPFILL_CATALOG`` or the built-in one).
    **kwargs
        As :class:`DemoSource` (``series_store``, ``checkpoint``, ``compute_filled``,
        ``device``, ``progress``).
    """

    def __init__(self, path: str | Path, stations_source: str, *,
                 catalog: str | Path | None = None, **kwargs):
        world = open_world(path)
        table, series = catalog_stations(stations_source, catalog)
        keep = stations_inside(table, world[schema.LAT].values, world[schema.LON].values)
        if not keep.any():
            w, s, e, n = grid.bounds(world[schema.LAT].values, world[schema.LON].values)
            raise EmptySelectionError(f"none of the {len(table)} stations of "
                                      f"{stations_source!r} lies in the world's cells "
                                      f"(W,S,E,N = {w:g},{s:g},{e:g},{n:g})", path)
        table = table[keep].reset_index(drop=True)
        log.info("%d of the stations of %s lie in the world", len(table), stations_source)
        ids = set(table["id"].astype(str))
        super().__init__(path, world=world,
                         stations=(table, {k: v for k, v in series.items() if str(k) in ids}),
                         **kwargs)
        self.name = f"{Path(path).name} + {stations_source}"

