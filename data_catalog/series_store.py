"""The seamless series store (``gapfill build-series``): opening it and its build state.

The store is written by :mod:`model.series`; everything that reads it (the catalog's
``series`` driver, ``export-netcdf``, validation) opens it here.  A build in progress or
interrupted keeps a ledger folder ``<store>.ledger`` beside the store; the build writes
``complete`` into the ledger when every tile is done.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from data_catalog import schema
from data_catalog.errors import FormatError, MissingFileError, MissingVariableError

#: Name of the ledger's mark that the build finished.
COMPLETE_MARK = "complete"


def ledger_path(store: str | Path) -> Path:
    """The ledger folder of a store: ``<store>.ledger`` beside it."""
    p = Path(store)
    return p.with_name(p.name + ".ledger")


def is_complete(store: str | Path) -> bool:
    """Whether a store's build finished (its ledger's ``complete`` mark).

    A store without a ledger (made some other way) counts as complete.
    """
    ledger = ledger_path(store)
    return not ledger.exists() or (ledger / COMPLETE_MARK).exists()


def open_series(path: str | Path) -> xr.Dataset:
    """Open a series store lazily (dask): ``filled_sm``, ``amsr_sm``, ``source_flag``,
    ``land``.

    Raises
    ------
    MissingFileError
        The store does not exist.
    FormatError
        It is not a readable zarr store.
    MissingVariableError
        It holds no ``filled_sm``.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError("series store not found (build it with gapfill build-series)", p)
    try:
        ds = xr.open_zarr(p, consolidated=False)
    except Exception as exc:  # zarr raises several types for "not a store"
        raise FormatError(f"cannot open the series store: {exc}", p) from exc
    if schema.FILLED_SM not in ds:
        raise MissingVariableError("series store without the filled series", p,
                                   schema.FILLED_SM)
    return ds
