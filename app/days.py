"""Reading days and cells of a gridded source into numpy (no Panel, no HoloViews, no cache).

:func:`read_days` slices consecutive days of one region out of a canonical dataset in one
read (the demo world is chunked by a year in time: separate one-day reads would decode the
same chunk again); :func:`read_cell` reads the daily series of the cell nearest a point.
The hub (:mod:`app.data`) memoises what these return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import schema
from data_catalog.errors import OutOfRangeError

#: the variables of a day or a cell, in the order they are read
FIELDS = (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.TRUTH_SM)


@dataclass
class DayFields:
    """One day of one region, as numpy arrays on the (lat, lon) grid."""

    date: pd.Timestamp
    lat: np.ndarray
    lon: np.ndarray
    amsr: np.ndarray
    gap: np.ndarray
    ascat: np.ndarray
    land: np.ndarray
    sensor: int
    truth: np.ndarray | None = None
    filled: np.ndarray | None = None
    filled_info: dict = field(default_factory=dict)
    #: SD of the error of ``filled`` (m3 m-3) and its ``reason_flag`` bits
    #: (:data:`data_catalog.schema.REASON_FLAGS`), from the same model output
    uncertainty: np.ndarray | None = None
    reasons: np.ndarray | None = None
    #: the source's name for its raw field (catalog metadata); '' for the demo world
    label: str = ""
    #: how the session shows it: fills under frozen ground drawn (True) or hidden
    #: (the session's copy, :func:`dataclasses.replace`; the hub's memo keeps False)
    show_frozen: bool = False

    @property
    def sensor_label(self) -> str:
        return schema.SENSOR_FLAGS[self.sensor].label


def _compute(arrays: list) -> list[np.ndarray]:
    """Dask arrays to numpy, in the calling thread (the hub's reads run in its own)."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        return [np.asarray(v) for v in dask.compute(*arrays)]


def read_days(ds: xr.Dataset, region, dates: pd.DatetimeIndex) -> list[DayFields]:
    """The days of a region between the first and the last of ``dates``, in one read.

    ``region`` is W, S, E, N in degrees; a product without a gap mask gets one from its
    missing values (invalid where NaN).
    """
    w, s, e, n = region
    sub = ds.sel({schema.LAT: slice(s, n), schema.LON: slice(w, e)})
    block = sub.sel({schema.TIME: slice(dates[0], dates[-1])})
    names = [v for v in FIELDS if v in block]
    vals = _compute([block[v].data for v in names]
                    + ([sub[schema.LAND].data] if schema.LAND in sub else []))
    got = dict(zip(names, vals, strict=False))
    shape = (sub.sizes[schema.LAT], sub.sizes[schema.LON])
    land = np.asarray(vals[len(names)], bool) if schema.LAND in sub else np.ones(shape, bool)
    if schema.GAP_MASK not in got and schema.AMSR_SM in got:  # a product without a mask
        got[schema.GAP_MASK] = np.where(np.isnan(got[schema.AMSR_SM]), schema.INVALID,
                                        schema.OBSERVED).astype(np.int8)
    lat = np.asarray(sub[schema.LAT].values, float)
    lon = np.asarray(sub[schema.LON].values, float)
    times = pd.DatetimeIndex(block[schema.TIME].values)
    sensors = (np.asarray(block[schema.SENSOR].values) if schema.SENSOR in block.coords
               else np.array([schema.sensor_for_date(t) for t in times]))
    nan = np.full(shape, np.nan, np.float32)
    out = []
    for k, t in enumerate(times):
        def pick(v, default, dtype, k=k):
            return got[v][k].astype(dtype, copy=False) if v in got else default
        out.append(DayFields(
            date=t, lat=lat, lon=lon,
            amsr=pick(schema.AMSR_SM, nan, np.float32),
            gap=pick(schema.GAP_MASK, np.zeros(shape, np.int8), np.int8),
            ascat=pick(schema.ASCAT_SM, nan, np.float32),
            land=land, sensor=int(sensors[k]),
            truth=pick(schema.TRUTH_SM, None, np.float32),
        ))
    return out


def read_day(ds: xr.Dataset, region, date: pd.Timestamp) -> DayFields:
    """One day of a region (see :func:`read_days`).

    Raises
    ------
    OutOfRangeError
        The day is not in the record.
    """
    days = read_days(ds, region, pd.DatetimeIndex([date]))
    if not days:
        raise OutOfRangeError(f"date {date:%Y-%m-%d} is not in the record", variable="time")
    return days[0]


def read_cell(ds: xr.Dataset, lat: float, lon: float, start, end
              ) -> tuple[pd.DataFrame, tuple[float, float]]:
    """Daily series at the cell nearest (lat, lon) and the cell's centre (lat, lon).

    Columns ``raw``, ``gap`` (a gap on land), ``frozen`` (a frozen-ground gap), ``ascat``,
    ``truth`` (where the source has it) and ``filled`` (all NaN: the hub adds the model
    outputs it holds, and ``filled_sd`` with them where they carry an SD).
    """
    cell = ds.sel({schema.LAT: lat, schema.LON: lon}, method="nearest")
    cell = cell.sel({schema.TIME: slice(pd.Timestamp(start), pd.Timestamp(end))})
    names = [v for v in FIELDS if v in cell]
    got = dict(zip(names, _compute([cell[v].data for v in names]), strict=True))
    frame = pd.DataFrame(index=pd.DatetimeIndex(cell[schema.TIME].values))
    frame["raw"] = got.get(schema.AMSR_SM, np.nan)
    gap = got.get(schema.GAP_MASK)
    frame["gap"] = (gap != schema.OBSERVED) & (gap != schema.NOT_LAND) if gap is not None \
        else False
    frame["frozen"] = gap == schema.FROZEN if gap is not None else False
    frame["ascat"] = got.get(schema.ASCAT_SM, np.nan)
    if schema.TRUTH_SM in got:
        frame["truth"] = got[schema.TRUTH_SM]
    frame["filled"] = np.nan
    return frame, (float(cell[schema.LAT]), float(cell[schema.LON]))


def extras(ds: xr.Dataset) -> dict:
    """``uncertainty`` and ``reasons`` of a model output (None where it has none): what the
    hub attaches to :class:`DayFields` beside ``filled``."""
    from model.errors import UNCERTAINTY

    def get(name, dtype):
        return np.asarray(ds[name].values, dtype) if name in ds else None

    return {"uncertainty": get(UNCERTAINTY, np.float32),
            "reasons": get(schema.REASON_FLAG, np.uint8)}
