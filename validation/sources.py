"""Validation sources: the stations and the compared series at their cells.

* :class:`DemoSource`: the demo world (``raw`` AMSR, ``filled``, ``filled_gaps``, ``ascat``,
  ``truth``) and its ISMN-like stations.  The filled series comes from a seamless series
  store when one is given or present, else from streaming the shipped model over a small
  window around each station (torch is imported only then), else its rows say
  ``NO_MODEL``.
* :class:`KitSource`: a real-data kit of the catalog (``hawaii``): ISMN stations and
  product cell files read through :mod:`data_catalog.catalog` and its readers.

Both satisfy :class:`validation.compare.Source`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog import demo, locations, schema
from data_catalog.errors import MissingFileError
from data_catalog.series_store import is_complete as series_complete
from data_catalog.series_store import open_series
from data_catalog.worlds import open_world
from validation import collocation as co
from validation import metrics as mx
from validation.compare import (
    ASCAT,
    FILLED,
    FILLED_GAPS,
    RAW,
    TRUTH,
    SatSeries,
    Settings,
)

log = logging.getLogger(__name__)

#: Cells of context on each side of a station when the model streams its window.
MODEL_WINDOW_RADIUS = 6


# ---------------------------------------------------------------- demo world
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
                 filled: Mapping[str, pd.Series] | None = None, progress: bool = False):
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
            filled = filled.reindex(days)
            gap = ~observed & (mask != schema.NOT_LAND)
            out.append(SatSeries(FILLED, filled, note=self.filled_origin, **loc))
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
            import xarray as xr

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
        store = self._store_path()
        if not len(days):
            result = "no days in the period"
        elif self._given_filled is not None:
            result = {k: pd.Series(v.to_numpy(np.float64),
                                   index=co.to_naive_utc(v.index).normalize()).reindex(days)
                      for k, v in self._given_filled.items()}
            self.filled_origin = "given filled series"
        elif store is not None:
            result = filled_from_store(store, self._table, days)
            self.filled_origin = f"series store {store}"
        elif self.compute_filled and self._has_model():
            result = filled_from_model(self.world, self._table, days, self.checkpoint,
                                       device=self.device, progress=self.progress)
            self.filled_origin = f"model {self.checkpoint or 'shipped checkpoints'}"
        elif not self.compute_filled:
            result = "no series store, and the model is not to be run (--no-model)"
        else:
            result = ("no series store and no model checkpoint: train one (`gapfill train`) "
                      "or pass --series-store")
        self._filled[key] = result
        return result

    def _store_path(self) -> Path | None:
        if self.series_store is not None:
            p = Path(self.series_store)
            if not p.exists():
                raise MissingFileError("series store not found", p)
            if not series_complete(p):
                log.warning("series store %s is not complete (build-series unfinished): "
                            "tiles not built yet read as NaN", p)
            return p
        default = locations.series_store()
        if not default.exists():
            return None
        if not series_complete(default):
            log.info("default series store %s is incomplete; not used", default)
            return None
        return default

    def _has_model(self) -> bool:
        if self.checkpoint is not None:
            return Path(self.checkpoint).exists()
        # model.inference.load_models needs the base model
        return (locations.checkpoint_dir() / "amsr2.pt").exists()


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
        if m.distance_km > 40:
            continue
        s = pd.Series(np.asarray(var.isel({schema.LAT: m.i, schema.LON: m.j}).values,
                                 np.float64), index=t)
        out[str(row["id"])] = s.reindex(days)
    return out if out else "the series store does not cover the stations"


def filled_from_model(world, table: pd.DataFrame, days: pd.DatetimeIndex,
                      checkpoint: str | Path | None = None, *, device: str = "cpu",
                      radius: int = MODEL_WINDOW_RADIUS, chunk_days: int = 64,
                      block_days: int = 365, warmup_days: int = 30,
                      models: Mapping[int, object] | None = None, batched: bool = True,
                      progress: bool = False) -> dict[str, pd.Series]:
    """Stream the model over a small window around each station and return its filled series.

    Every station gets a ``(2 radius + 1)``-cell square window (shifted inside the grid at
    its edges); the windows of all stations are streamed together as one batch, so the
    cost hardly grows with the number of stations.  The seamless series is the observation
    where AMSR observed (in the model's reference climatology, as
    ``model.inference.predict`` does) and the model output elsewhere.  Each run of days
    with the same radiometer is streamed by the model of that radiometer, its state
    carried across chunks and first warmed up on the ``warmup_days`` before the run
    (outputs discarded), as the series store does.  torch is imported here only.

    Parameters
    ----------
    world : xarray.Dataset
        Canonical world (``amsr_sm``, ``gap_mask``, ``ascat_sm``).
    table : pandas.DataFrame
        Stations (``id``, ``lat``, ``lon``).
    days : pandas.DatetimeIndex
        Days of the world to fill.
    checkpoint : path, optional
        One checkpoint for all days; default the shipped models by radiometer.
    device : str
        Torch device.
    radius : int
        Cells of context on each side of the station.
    chunk_days, block_days : int
        Days per model call, and days prepared at a time.
    warmup_days : int
        Days before a radiometer run on which a newly used model warms its state up.
    models : mapping, optional
        Sensor code -> object with ``prepare``/``stream`` (a stand-in model), replacing the
        checkpoints.
    batched : bool
        Stream all stations as one batch (False: one at a time, for stand-ins that only
        take a batch of one).
    progress : bool
        tqdm bar over the blocks.

    Returns
    -------
    dict
        Station id -> daily Series on ``days`` (m3 m-3).
    """
    import torch

    from model import inference as inf
    from model.tensors import amsr_valid_mask

    dev = inf.select_device(device)
    if models is not None:
        given = dict(models)
        pick = lambda sensor: given.get(sensor) or given[schema.SENSOR_AMSR2]  # noqa: E731
    elif checkpoint is not None:
        one = inf.load_model(checkpoint, dev)
        pick = lambda sensor: one  # noqa: E731
    else:
        shipped = inf.load_models(None, dev)
        pick = lambda sensor: inf.model_for_sensor(shipped, sensor)  # noqa: E731
    days = pd.DatetimeIndex(days)
    world_t = pd.DatetimeIndex(world[schema.TIME].values)
    pos = world_t.get_indexer(days)
    if (pos < 0).any():
        from data_catalog.errors import OutOfRangeError

        raise OutOfRangeError(f"{int((pos < 0).sum())} day(s) are not in the world",
                              variable=schema.TIME)
    if models is None:  # a checkpoint never runs on data it does not fit
        from validation.world_source import check_model_fit

        check_model_fit(world, table, days, one if checkpoint is not None else None,
                        None if checkpoint is not None else shipped)
    sensors_all = (np.asarray(world[schema.SENSOR].values) if schema.SENSOR in world.coords
                   else np.array([schema.sensor_for_date(d) for d in world_t]))
    names = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.LAND)
             if v in world]
    lat, lon = world[schema.LAT].values, world[schema.LON].values
    size_i, size_j = min(2 * radius + 1, lat.size), min(2 * radius + 1, lon.size)
    ids = table["id"].astype(str).tolist()
    windows, centres = [], []
    t_lo = max(0, int(pos.min()) - warmup_days)
    t_hi = int(pos.max()) + 1
    for _, row in table.iterrows():
        m = co.nearest_cell(float(row["lat"]), float(row["lon"]), lat, lon)
        i0 = int(np.clip(m.i - radius, 0, lat.size - size_i))
        j0 = int(np.clip(m.j - radius, 0, lon.size - size_j))
        windows.append(world[names].isel({schema.TIME: slice(t_lo, t_hi),
                                          schema.LAT: slice(i0, i0 + size_i),
                                          schema.LON: slice(j0, j0 + size_j)}).load())
        centres.append((m.i - i0, m.j - j0))
    # stream the contiguous world period t_lo..t_hi, keep the requested days
    sensors = sensors_all[t_lo:t_hi]
    n = t_hi - t_lo
    out = np.full((len(ids), n), np.nan, np.float32)
    first = int(pos.min()) - t_lo  # days before this are warm-up only
    runs = _runs(sensors)
    blocks = [(a, b, sensor, b0, min(b, b0 + block_days)) for a, b, sensor in runs
              for b0 in range(a, b, block_days)]
    if progress:
        from tqdm.auto import tqdm

        blocks = tqdm(blocks, desc="model at stations", unit="block")
    # small batched convolutions run faster on one thread than on contended several
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _stream_blocks(blocks, windows, centres, pick, out, first, chunk_days, warmup_days,
                       batched, amsr_valid_mask, torch)
    finally:
        torch.set_num_threads(threads)
    keep = pos - t_lo
    return {sid: pd.Series(out[k, keep].astype(np.float64), index=days)
            for k, sid in enumerate(ids)}


def _stream_blocks(blocks, windows, centres, pick, out, first, chunk_days, warmup_days,
                   batched, amsr_valid_mask, torch):
    """Stream the stations' windows block by block; write merged centre values to ``out``.

    ``batched``: all stations in one batch with one state; else one call (and state) per
    station, for stand-in models that only take a batch of one.
    """
    n_st = len(windows)
    groups = [list(range(n_st))] if batched else [[k] for k in range(n_st)]
    states: list = [None] * len(groups)
    current = None

    def parts_of(t0, t1, sensor):
        parts = []
        for win in windows:
            part = win.isel({schema.TIME: slice(t0, t1)})
            if sensor == schema.SENSOR_NONE:  # the gap year: no radiometer
                part = part.assign({schema.AMSR_SM: part[schema.AMSR_SM].where(False)})
            parts.append(part)
        return parts

    def run(model, parts, g, state):
        x = torch.cat([model.prepare(parts[k]) for k in groups[g]], dim=0)
        fields = []
        for c0 in range(0, x.shape[1], chunk_days):
            sm, state = model.stream(x[:, c0:c0 + chunk_days], state)
            if sm.shape[0] != x.shape[0]:
                raise ValueError(f"model returned a batch of {sm.shape[0]} for "
                                 f"{x.shape[0]}; pass batched=False")
            fields.append(sm.float().cpu().numpy())
        return np.concatenate(fields, axis=1), state  # (stations, days, h, w)

    for a, _b, sensor, b0, b1 in blocks:
        model = pick(int(sensor))
        if b0 == a and model is not current:
            states = [None] * len(groups)
            if a > 0 and warmup_days > 0:  # a newly used model first warms its state up
                w0 = max(0, a - warmup_days)
                warm = parts_of(w0, a, int(sensor))
                for g in range(len(groups)):
                    _, states[g] = run(model, warm, g, None)
            current = model
        parts = parts_of(b0, b1, sensor)
        fields = {}
        for g, members in enumerate(groups):
            field, states[g] = run(model, parts, g, states[g])
            for pos_in, k in enumerate(members):
                fields[k] = field[pos_in]
        if b1 <= first:
            continue
        to_ref = getattr(model, "to_reference", None)
        for k, (part, (ci, cj)) in enumerate(zip(parts, centres, strict=True)):
            amsr = np.asarray(part[schema.AMSR_SM].values, np.float32)
            gm = part[schema.GAP_MASK].values if schema.GAP_MASK in part else None
            valid = amsr_valid_mask(amsr, gm)[:, ci, cj]
            obs = amsr[:, ci, cj]
            if to_ref is not None:  # the station's cell only (its window may reach further)
                obs = to_ref(amsr[:, ci:ci + 1, cj:cj + 1], part[schema.LAT].values[ci:ci + 1],
                             part[schema.LON].values[cj:cj + 1])[:, 0, 0]
            out[k, b0:b1] = np.where(valid, obs, fields[k][:, ci, cj])


def _runs(codes: Sequence[int]) -> list[tuple[int, int, int]]:
    """Runs ``(start, stop, value)`` of equal consecutive values."""
    codes = np.asarray(codes)
    if not codes.size:
        return []
    edges = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [codes.size]])
    return [(int(a), int(b), int(codes[a])) for a, b in zip(starts, stops, strict=True)]


# ---------------------------------------------------------------- real-data kits
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
    amsr_only : bool
        Keep only days whose ``sensor`` bits include AMSR-E or AMSR2.
    gaps : bool
        Also compare the product on its gap-filled days only (``<name>_gaps``, where
        ``gapmask == 0``: "no observation available / gap filled").
    """

    name: str
    read: Callable[..., pd.DataFrame]
    amsr_only: bool = False
    gaps: bool = False


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
        Series whose median R change is reported; ``"auto"``: the passive product ->
        the gap-filled product (or ``filled`` from a series store) when both are
        compared; None: no change reported.
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
        names = [p.name for p in self.products]
        if change_pair == "auto":
            raw = next((n for n in names if "passive" in n), None)
            to = next((n for n in names if "gapfilled" in n), FILLED if series_store else None)
            change_pair = (raw, to) if raw and to else None
        self.change_pair = change_pair
        self.series_store = series_store
        self.filled_origin = f"series store {series_store}" if series_store else ""
        self._cache: dict[tuple, pd.DataFrame | str] = {}

    # -- construction from the catalog
    @classmethod
    def from_catalog(cls, kit: str, *, catalog: str | Path | None = None,
                     product: str | None = None, series_store: str | Path | None = None
                     ) -> KitSource:
        """The kit ``kit`` of the catalog, with its stations and products.

        Parameters
        ----------
        kit : str
            Catalog source name of the kit (``hawaii``).
        catalog : path, optional
            Catalog file (default: ``$GAPFILL_CATALOG`` or the built-in one).
        product : str, optional
            Compare only this product (a member name such as ``cci_passive``).

        Raises
        ------
        data_catalog.errors.CatalogError
            Unknown kit or product, or a kit without stations.
        """
        from validation import kits

        stations, products = kits.open_kit(
            kit, catalog=catalog, products=(product,) if product is not None else None)
        pair: tuple[str, str] | None | str = "auto"
        if product is not None:
            pair = (product, FILLED) if series_store else None
        return cls(kit, stations, products, change_pair=pair, series_store=series_store)

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
        found = filled_from_store(self.series_store, self._table[
            self._table["id"].astype(str) == str(station["id"])], days)
        if isinstance(found, str) or str(station["id"]) not in found:
            note = found if isinstance(found, str) else "not covered"
            return [SatSeries(n, pd.Series(dtype=np.float64), status=mx.NO_DATA, note=note)
                    for n in (FILLED, FILLED_GAPS)]
        s = found[str(station["id"])]
        return [SatSeries(FILLED, s, note=self.filled_origin)]
