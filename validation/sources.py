"""The demo world as a validation source: its stations and the series at their cells.

:class:`DemoSource` compares ``raw`` AMSR, the gap-filled series (``filled``, and
``filled_gaps`` on the gap days), ``ascat`` and the ``truth`` with the demo world's
ISMN-like stations.  The filled series is given, read from a seamless series store when
one is given or the default one is complete, or asked from the model package
(:mod:`validation.filled`); else its rows say ``NO_MODEL``.  Real-data kits are
:mod:`validation.kits`.  Satisfies :class:`validation.protocol.Source`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import demo, locations, schema
from data_catalog.worlds import open_world
from validation import collocation as co
from validation import filled as fl
from validation import metrics as mx
from validation.protocol import (
    ASCAT,
    FILLED,
    FILLED_GAPS,
    RAW,
    TRUTH,
    SatSeries,
    Settings,
)

log = logging.getLogger(__name__)


class DemoSource:
    """The demo world and its stations.

    Parameters
    ----------
    path : path, optional
        Demo world store (default :func:`data_catalog.locations.demo_world`).
    series_store : path, optional
        Seamless series store with ``filled_sm`` (see :mod:`model.series`); when None the
        default store (:func:`data_catalog.locations.series_store`) is used if it is
        complete.
    checkpoint : path, optional
        Model checkpoint to stream when there is no series store (default: the models of
        :func:`data_catalog.locations.checkpoint_dir`, by radiometer).
    compute_filled : bool
        Whether the model may be run when there is no series store.
    device : str
        Torch device for the model (``cpu``, ``cuda``, ``auto``).
    fill : callable, optional
        ``fill(world, table, days) -> {station id: Series}`` (:data:`validation.filled.Fill`)
        used instead of the model package when there is no series store (a stand-in).
    world, stations : optional
        Already opened world dataset and ``(table, series)`` (tests, the app).
    filled : mapping, optional
        Precomputed filled series ``station id -> daily Series`` (e.g. from the app's
        inference); used instead of a series store or the model.
    progress : bool
        tqdm bar while the model streams.
    """

    name = "demo"
    change_pair = (RAW, FILLED)

    def __init__(self, path: str | Path | None = None, *, series_store: str | Path | None = None,
                 checkpoint: str | Path | None = None, compute_filled: bool = True,
                 device: str = "cpu", world=None,
                 stations: tuple[pd.DataFrame, dict] | None = None,
                 filled: Mapping[str, pd.Series] | None = None, progress: bool = False,
                 fill: fl.Fill | None = None):
        self.path = Path(path) if path is not None else locations.demo_world()
        self.world = world if world is not None else open_world(self.path)
        if stations is None:
            stations = demo.open_demo_stations(self.path)
        self._table, self._series = stations
        self.series_store = series_store
        self.checkpoint = checkpoint
        self.compute_filled = compute_filled
        self.device = device
        self._cells: dict[str, co.CellMatch] = {}
        self._extract: dict[tuple, dict[str, np.ndarray]] = {}
        self._filled: dict[tuple, dict[str, pd.Series] | str] = {}
        self._given_filled = dict(filled) if filled is not None else None
        self.progress = progress
        self.fill = fill
        self.filled_origin = ""

    # -- Source protocol
    def stations(self) -> pd.DataFrame:
        return self._table

    def insitu(self, station_id: str) -> pd.DataFrame:
        return self._series[str(station_id)]

    def cell(self, station: pd.Series) -> co.CellMatch:
        sid = str(station["id"])
        if sid not in self._cells:
            self._cells[sid] = co.nearest_cell(float(station["lat"]), float(station["lon"]),
                                               self.world[schema.LAT].values,
                                               self.world[schema.LON].values)
        return self._cells[sid]

    def satellite(self, station: pd.Series, settings: Settings) -> list[SatSeries]:
        days = self._days(settings)
        ext = self._extracted(days)
        sid = str(station["id"])
        cell = self.cell(station)
        k = ext["ids"].index(sid)
        loc = {"cell_lat": cell.lat, "cell_lon": cell.lon, "distance_km": cell.distance_km}

        def series(var):
            return pd.Series(ext[var][:, k], index=days, name=var)

        amsr = series(schema.AMSR_SM)
        mask = series(schema.GAP_MASK)
        observed = amsr.notna() & (mask == schema.OBSERVED)
        note = ""
        if not observed.any() and len(mask):
            codes = mask.dropna().astype(int)
            top = int(codes.mode().iloc[0]) if len(codes) else schema.INVALID
            label = {f.value: f.label for f in schema.GAP_FLAGS}.get(top, str(top))
            note = f"AMSR never observed this cell in the period (mostly: {label})"
        out = [SatSeries(RAW, amsr.where(observed), note=note, **loc)]
        found = self._filled_series(days)
        filled = found.get(sid) if isinstance(found, dict) else None
        if filled is None:
            note = found if isinstance(found, str) else "the filled series misses this station"
            for name in (FILLED, FILLED_GAPS):
                out.append(SatSeries(name, pd.Series(dtype=np.float64), status=mx.NO_MODEL,
                                     note=note, **loc))
        else:
            sd = filled.attrs.get("sd")
            filled = filled.reindex(days)
            gap = ~observed & (mask != schema.NOT_LAND)
            out.append(SatSeries(FILLED, filled, note=self.filled_origin, **loc,
                                 sd=sd.reindex(days) if sd is not None else None))
            out.append(SatSeries(FILLED_GAPS, filled.where(gap), note=self.filled_origin,
                                 parent=FILLED, **loc))
        if schema.ASCAT_SM in ext:
            out.append(SatSeries(ASCAT, series(schema.ASCAT_SM), saturation=True, **loc))
        if schema.TRUTH_SM in ext:
            out.append(SatSeries(TRUTH, series(schema.TRUTH_SM), **loc))
        return out

    # -- helpers
    def _days(self, settings: Settings) -> pd.DatetimeIndex:
        t = pd.DatetimeIndex(self.world[schema.TIME].values)
        if settings.start is not None:
            t = t[t >= pd.Timestamp(settings.start)]
        if settings.end is not None:
            t = t[t <= pd.Timestamp(settings.end)]
        return t.rename("time")

    def _extracted(self, days: pd.DatetimeIndex) -> dict:
        """All stations' cell values of every variable for ``days`` in one read per variable."""
        key = (days[0], days[-1], len(days)) if len(days) else ("empty",)
        if key not in self._extract:
            ids = self._table["id"].astype(str).tolist()
            ii = [self.cell(r).i for _, r in self._table.iterrows()]
            jj = [self.cell(r).j for _, r in self._table.iterrows()]
            sel = {schema.LAT: xr.DataArray(ii, dims="station"),
                   schema.LON: xr.DataArray(jj, dims="station")}
            sub = self.world.sel({schema.TIME: days}) if len(days) else self.world.isel(
                {schema.TIME: slice(0, 0)})
            out: dict = {"ids": ids}
            for var in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.TRUTH_SM):
                if var in sub:
                    out[var] = np.asarray(sub[var].isel(sel).transpose(schema.TIME, "station")
                                          .values, dtype=np.float64)
            self._extract[key] = out
        return self._extract[key]

    def _filled_series(self, days: pd.DatetimeIndex) -> dict[str, pd.Series] | str:
        key = (days[0], days[-1], len(days)) if len(days) else ("empty",)
        if key in self._filled:
            return self._filled[key]
        result: dict[str, pd.Series] | str
        store = fl.series_store(self.series_store)
        if not len(days):
            result = "no days in the period"
        elif self._given_filled is not None:
            result = {k: pd.Series(v.to_numpy(np.float64),
                                   index=co.to_naive_utc(v.index).normalize()).reindex(days)
                      for k, v in self._given_filled.items()}
            self.filled_origin = "given filled series"
        elif store is not None:
            result = fl.filled_from_store(store, self._table, days)
            self.filled_origin = f"series store {store}"
        elif not self.compute_filled:
            result = "no series store, and the model is not to be run (--no-model)"
        elif self.fill is not None:
            result = self.fill(self.world, self._table, days)
            self.filled_origin = "given fill function"
        elif (fill := fl.model_fill(self.checkpoint, device=self.device,
                                    progress=self.progress)) is not None:
            result = fill(self.world, self._table, days)
            self.filled_origin = f"model {self.checkpoint or 'shipped checkpoints'}"
        else:
            result = ("no series store and no model checkpoint: train one (`gapfill train`) "
                      "or pass --series-store")
        self._filled[key] = result
        return result
