"""Where the gap-filled series at the stations comes from: a series store or the model.

Validation never runs the model itself.  A filled series is read from a seamless series
store (:func:`filled_from_store`, the store of ``gapfill build-series``), or asked from the
model package: :func:`model_fill` hands back :func:`model.points.filled_sd_at_points`
bound to a checkpoint (the series with their ``filled_sm_uncertainty``), which streams the
ConvLSTM at the stations with the series store's block engine (torch is loaded there, when
it runs).  A caller may give its own function of the
same form instead (:data:`Fill`: a stand-in model, precomputed series).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import locations, schema
from data_catalog.errors import MissingFileError
from data_catalog.series_store import is_complete, open_series
from validation import collocation as co

log = logging.getLogger(__name__)

UNCERTAINTY = schema.UNCERTAINTY

#: ``fill(world, table, days) -> {station id: daily Series}``: the filled series at the
#: stations' cells (:func:`model.points.filled_at_points` is one).
Fill = Callable[[xr.Dataset, pd.DataFrame, pd.DatetimeIndex], dict[str, pd.Series]]

#: A station farther than this from the store's nearest cell is not covered by the store.
STORE_MAX_KM = 40.0


def series_store(path: str | Path | None) -> Path | None:
    """The series store to read: ``path`` (which must exist; an unfinished one is used with
    a warning), else the default store (:func:`data_catalog.locations.series_store`) when
    it is complete, else None."""
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise MissingFileError("series store not found", p)
        if not is_complete(p):
            log.warning("series store %s is not complete (build-series unfinished): "
                        "tiles not built yet read as NaN", p)
        return p
    default = locations.series_store()
    if not default.exists():
        return None
    if not is_complete(default):
        log.info("default series store %s is incomplete; not used", default)
        return None
    return default


def filled_from_store(store: str | Path, table: pd.DataFrame,
                      days: pd.DatetimeIndex) -> dict[str, pd.Series] | str:
    """The ``filled_sm`` series of each station's cell from a seamless series store.

    Returns a dict ``station id -> daily Series`` or a string saying why there is none.
    """
    ds = open_series(store)
    var = ds[schema.FILLED_SM]
    out: dict[str, pd.Series] = {}
    t = pd.DatetimeIndex(ds[schema.TIME].values)
    for _, row in table.iterrows():
        m = co.nearest_cell(float(row["lat"]), float(row["lon"]), ds[schema.LAT].values,
                            ds[schema.LON].values)
        if m.distance_km > STORE_MAX_KM:
            continue
        cell = {schema.LAT: m.i, schema.LON: m.j}
        s = pd.Series(np.asarray(var.isel(cell).values, np.float64), index=t).reindex(days)
        if UNCERTAINTY in ds:  # the store's filled_sm_uncertainty rides along in attrs
            s.attrs["sd"] = pd.Series(np.asarray(ds[UNCERTAINTY].isel(cell).values,
                                                 np.float64), index=t).reindex(days)
        out[str(row["id"])] = s
    return out if out else "the series store does not cover the stations"


def model_fill(checkpoint: str | Path | None = None, *, device: str = "cpu",
               progress: bool = False) -> Fill | None:
    """The model package's filled series at points, bound to ``checkpoint`` (default: the
    shipped models by radiometer); None when there is no such checkpoint.

    Each series carries its ``filled_sm_uncertainty`` in ``attrs["sd"]``, as a series
    store's does (:func:`model.points.filled_sd_at_points`: NaN without an error model),
    so ``sd_mean`` is reported whether the store is read or the model streamed.

    The one place validation reaches into :mod:`model`: :mod:`model.points` imports
    without torch, and loads it only when the returned function runs.
    """
    from model import points

    if not points.has_model(checkpoint):
        return None

    def fill(world: xr.Dataset, table: pd.DataFrame, days: pd.DatetimeIndex
             ) -> dict[str, pd.Series]:
        filled, sd = points.filled_sd_at_points(world, table, days, checkpoint=checkpoint,
                                                device=device, progress=progress)
        for sid, s in filled.items():
            s.attrs["sd"] = sd[sid]
        return filled

    return fill
