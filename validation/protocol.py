"""The terms between sources and comparisons: settings, a compared series, a source.

* :class:`Settings`: everything that changes a validation result;
* :class:`SatSeries`: one compared series at one station's cell;
* :class:`Source`: what the comparisons need from a source of stations and series
  (:class:`validation.sources.DemoSource`, :class:`validation.kits.KitSource`).

Series names: ``raw`` (AMSR on observed days), ``filled`` (the gap-filled series on all
days), ``filled_gaps`` (the filled series on gap days only), ``ascat`` (scaled to the
station), ``truth`` (demo world) and product names for real kits (``cci_passive``,
``ascat_h119``, ``cci_gapfilled``, ``cci_gapfilled_gaps``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from validation import collocation as co
from validation import metrics as mx
from validation.scaling import SCALINGS

RAW, FILLED, FILLED_GAPS, ASCAT, TRUTH = "raw", "filled", "filled_gaps", "ascat", "truth"
INSITU = "insitu"


# ---------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Everything that changes a validation result.

    Attributes
    ----------
    window : TemporalWindow
        How hourly station values are averaged per satellite day.
    depth : tuple of float
        Accepted range of the sensor top, m (surface: 0-0.10 m).
    min_n : int
        Fewest pairs for metrics (fewer: ``INSUFFICIENT_DATA``).
    scaling : {"none", "mean_std", "cdf_match"}
        Scaling of volumetric series to the station before RMSE/ubRMSE/bias.
    ascat_scaling : {"mean_std", "cdf_match"}
        Scaling of series in percent of saturation (ASCAT), which must be scaled.
    anomaly_window : float or None
        Moving-window length (days) for the anomaly correlation; None skips it.
    n_boot : int
        Bootstrap resamples for CIs (0: analytical CIs only).
    start, end : str or None
        Period (inclusive days, UTC).
    ascat_half_window_h : float
        Half window (h) around each ASCAT observation time (exact-time series; with
        ``window.mode == "daily"`` these are daily means on both sides instead).
    """

    window: co.TemporalWindow = field(default_factory=co.TemporalWindow)
    depth: tuple[float, float] = co.SURFACE_DEPTH_M
    min_n: int = mx.DEFAULT_MIN_N
    scaling: str = "none"
    ascat_scaling: str = "mean_std"
    anomaly_window: float | None = mx.ANOMALY_WINDOW_DAYS
    n_boot: int = 0
    start: str | None = None
    end: str | None = None
    ascat_half_window_h: float = 1.0

    def __post_init__(self):
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling {self.scaling!r}: expected one of {SCALINGS}")
        if self.ascat_scaling not in SCALINGS[1:]:
            raise ValueError(f"ascat_scaling {self.ascat_scaling!r}: expected one of "
                             f"{SCALINGS[1:]}")
        if self.min_n < 1:
            raise ValueError(f"min_n {self.min_n} must be >= 1")
        if self.start is not None and self.end is not None and \
                pd.Timestamp(self.start) > pd.Timestamp(self.end):
            from data_catalog.errors import OutOfRangeError

            raise OutOfRangeError(f"period start {self.start} is after its end {self.end}",
                                  variable="time")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["window"] = asdict(self.window)
        return d


# ---------------------------------------------------------------- series and sources
@dataclass
class SatSeries:
    """One compared series at one station's cell.

    Attributes
    ----------
    name : str
        Series name (``raw``, ``filled``, ``ascat``, a product name, ...).
    values : pandas.Series
        Daily values on naive UTC days (00:00), or values at exact observation times
        (``exact_times``); NaN where missing.
    exact_times : bool
        True for sub-daily observations (ASCAT swaths): each is matched with the station
        around its own time, then pooled per UTC day.
    saturation : bool
        True when the values are in percent of saturation (always scaled to the station).
    status : str or None
        ``NO_DATA`` / ``NO_MODEL`` when the series could not be made (``values`` empty).
    cell_lat, cell_lon, distance_km : float
        The matched grid cell and its distance from the station.
    note : str
        Free text for the report (why a status, which file).
    parent : str or None
        For a subset series (``filled_gaps``), the full series it is cut from: anomalies
        for ``r_anom`` are taken from the full series.
    """

    name: str
    values: pd.Series
    exact_times: bool = False
    saturation: bool = False
    status: str | None = None
    cell_lat: float = np.nan
    cell_lon: float = np.nan
    distance_km: float = np.nan
    note: str = ""
    parent: str | None = None
    sd: pd.Series | None = None  # SD of the error of ``values`` (a store's filled_sm_uncertainty)


class Source(Protocol):
    """What the comparisons need from a data source (see :mod:`validation.sources`)."""

    name: str
    #: the (from, to) series of the relative change in median R
    change_pair: tuple[str, str]

    def stations(self) -> pd.DataFrame:
        """Station table (:data:`data_catalog.schema.STATION_COLUMNS`)."""

    def insitu(self, station_id: str) -> pd.DataFrame:
        """Hourly station frame (``sm``, ``flag``) on a UTC index."""

    def satellite(self, station: pd.Series, settings: Settings) -> list[SatSeries]:
        """The compared series at the station's cell."""
