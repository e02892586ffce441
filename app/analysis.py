"""The data work behind the series, statistics and network panes (pure: no Panel).

Each function takes frames and sources in and returns frames out; the controller
(:mod:`app.controller`) only decides when to call them and where the results go.  The
metrics come from :mod:`validation`; the filled series at one cell comes from the model
package through :func:`filled_at_cell` (the app's only way to stream the model).

Nothing here imports Panel, Bokeh or HoloViews; torch is loaded only by
:func:`filled_at_cell`, which the controller runs in the hub's worker thread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_catalog.errors import GapfillError
from validation.metrics import names

#: days either side of the shown day in the series, statistics and network table
SERIES_HALF_WINDOW = pd.Timedelta(days=60)

#: the columns of the statistics table, in order
STATS_COLUMNS = ["series", *names(headline=True), "status"]  # the registry of validation.metrics


def series_window(day, start, end, half_days: int | None = None
                  ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The series window around ``day``: ``half_days`` either side (default
    :data:`SERIES_HALF_WINDOW`; 0: the whole record), clipped to the record ``start`` ..
    ``end``."""
    day = pd.Timestamp(day)
    if half_days == 0:
        return pd.Timestamp(start), pd.Timestamp(end)
    half = SERIES_HALF_WINDOW if half_days is None else pd.Timedelta(days=int(half_days))
    return max(day - half, pd.Timestamp(start)), min(day + half, pd.Timestamp(end))


def _settings(start, end):
    from validation import compare as vc

    return vc.Settings(start=f"{pd.Timestamp(start):%Y-%m-%d}",
                       end=f"{pd.Timestamp(end):%Y-%m-%d}", anomaly_window=None)


def station_frame(vsource, sid: str, start, end) -> pd.DataFrame:
    """The validation frame of a station over the window
    (:func:`validation.compare.station_timeseries`)."""
    from validation import compare as vc

    return vc.station_timeseries(vsource, sid, _settings(start, end))


def add_station_series(frame: pd.DataFrame, vframe: pd.DataFrame) -> pd.DataFrame:
    """The cell's frame with the station's in situ series and, where the validation
    source has it, its filled series (both on the frame's days)."""
    from validation import protocol as vp

    frame = frame.copy()
    frame["insitu"] = vframe[vp.INSITU].reindex(frame.index)
    if vp.FILLED in vframe and vframe[vp.FILLED].notna().any():
        frame["filled"] = vframe[vp.FILLED].reindex(frame.index)
    return frame


def station_stats(vsource, sid: str, frame: pd.DataFrame, start, end,
                  filled: pd.Series | None = None) -> pd.DataFrame:
    """Metrics from :mod:`validation` of raw, filled, filled-on-gaps, ASCAT and truth.

    Parameters
    ----------
    vsource
        A :class:`validation.sources.DemoSource` (world and stations of the app).
    sid
        Station id.
    frame
        The frame of :func:`validation.compare.station_timeseries` for the window.
    filled
        The filled series at the station's cell when the source had none (from the model
        outputs of this app); replaces the ``NO_MODEL`` rows.
    """
    from validation import compare as vc
    from validation import protocol as vp

    frame = frame.copy()
    frame.attrs = {k: (dict(v) if isinstance(v, dict) else v) for k, v in frame.attrs.items()}
    meta = {k: dict(v) for k, v in frame.attrs["series"].items()}
    if filled is not None and filled.notna().any() and vp.FILLED in meta and \
            meta[vp.FILLED]["status"] is not None:
        f = filled.reindex(frame.index).astype(float)
        observed = frame[vp.RAW].notna() if vp.RAW in frame else pd.Series(False, frame.index)
        frame[vp.FILLED] = f
        frame[vp.FILLED_GAPS] = f.where(~observed)
        for name in (vp.FILLED, vp.FILLED_GAPS):
            meta[name]["status"] = None
            meta[name]["note"] = "model outputs of the app"
    frame.attrs["series"] = meta
    st = vc.station_stats(vsource, sid, _settings(start, end), frame=frame)
    return st[STATS_COLUMNS]


def scale_ascat(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """ASCAT (% saturation) mean/std-scaled to the filled (else raw) series, m3 m-3."""
    from validation.metrics import scale

    ref_col = "filled" if "filled" in frame and frame["filled"].notna().sum() >= 3 else "raw"
    if "ascat" not in frame:
        return frame, ""
    frame = frame.copy()
    frame["ascat_scaled"] = scale(frame["ascat"].astype(float), frame[ref_col].astype(float),
                                  "mean_std")
    return frame, f" (mean/std-scaled to {ref_col})"


def network_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per station: n, R, RMSE, ubRMSE and bias per series and ``delta_r``, the
    raw-to-filled change of R as a difference (a ratio to a small raw R explodes)."""
    if not len(long):
        return pd.DataFrame()
    base = long.drop_duplicates("station").set_index("station")[["network", "lat", "lon"]]
    values = [m for m in ("r", "rmse", "ubrmse", "bias", "n") if m in long]
    piv = long.pivot_table(index="station", columns="series", values=values,
                           aggfunc="first")
    piv.columns = [f"{m}_{ser}" for m, ser in piv.columns]
    out = base.join(piv)
    if "r_raw" in out and "r_filled" in out:
        out["delta_r"] = out["r_filled"] - out["r_raw"]
    out = out.reset_index().rename(columns={"station": "id"})
    order = ["id", "network", "lat", "lon", "n_raw", "r_raw", "n_filled", "r_filled",
             "delta_r", "r_filled_gaps", "r_ascat", "r_truth", "rmse_raw", "rmse_filled"]
    return out[[c for c in order if c in out] + [c for c in out if c not in order]]


def cell_table(lat: float, lon: float, name: str = "cell") -> pd.DataFrame:
    """A one-row station table standing for one grid cell (what the model streams at)."""
    return pd.DataFrame([{"id": name, "network": "", "name": "", "lat": float(lat),
                          "lon": float(lon)}])


def _stream_model(world, table: pd.DataFrame, days: pd.DatetimeIndex, checkpoint=None,
                  device: str = "cpu") -> tuple[dict, dict]:
    """The model streamed at the table's points: ``({id: filled}, {id: SD})`` daily series
    (loads torch).

    The app's one use of the model's point streaming (:func:`model.points.filled_sd_at_points`,
    the engine of ``build-series``, with its ``filled_sm_uncertainty``).
    """
    from model.points import filled_sd_at_points

    return filled_sd_at_points(world, table, days, checkpoint, device=device)


def filled_at_cell(world, lat: float, lon: float, start, end, checkpoint: str = "",
                   device: str = "cpu") -> pd.DataFrame:
    """The model's filled daily series at the cell nearest (lat, lon), ``start`` .. ``end``:
    columns ``filled`` and ``filled_sd`` (its 1 SD, NaN without an error model beside the
    checkpoints), as the series pane's frame names them.

    Raises
    ------
    MissingFileError
        No checkpoint (see :func:`app.outputs.resolve_checkpoint`).
    """
    from app.outputs import resolve_checkpoint

    days = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    filled, sd = _stream_model(world, cell_table(lat, lon), days,
                               resolve_checkpoint(checkpoint), device=device)
    return pd.DataFrame({"filled": filled["cell"], "filled_sd": sd["cell"]})


def network_tables(world, stations, start, end, checkpoint: str = ""
                   ) -> tuple[pd.DataFrame, dict]:
    """Every station's metrics over the window, one row per station
    (:func:`network_wide`), and the network summary (median R change).

    The filled series come from the model streamed at the stations when a checkpoint
    exists, else the filled rows say there is no model.  Loads torch: run it in a worker.
    """
    from app.outputs import resolve_checkpoint
    from validation import compare as vc
    from validation.sources import DemoSource
    from validation.summary import summarize

    if stations is None:
        raise GapfillError("this source has no stations")
    try:
        ck = resolve_checkpoint(checkpoint)
        has_model = True
    except GapfillError:
        ck, has_model = None, False
    vs = DemoSource(world=world, stations=stations, compute_filled=has_model, checkpoint=ck)
    settings = _settings(start, end)
    long = vc.network_table(vs, settings)
    return network_wide(long), summarize(long, vs, settings)


def colour_limits(values: np.ndarray, clim: tuple[float, float] | None = None
                  ) -> tuple[float, float] | None:
    """Colour limits of a product's soil moisture: its catalog limits, widened to the
    2nd-98th percentiles of the shown values when those fall outside them (LPRM reaches
    0.6 and more); ``None`` when neither is known."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return tuple(clim) if clim else None
    lo, hi = (float(x) for x in np.percentile(v, [2, 98]))
    if clim:
        lo, hi = min(lo, float(clim[0])), max(hi, float(clim[1]))
    lo, hi = max(0.0, np.floor(lo * 100) / 100), min(1.0, np.ceil(hi * 100) / 100)
    return (lo, hi) if hi > lo else None


#: the network table's columns shown by default (the rest behind a toggle), with tooltips
ESSENTIAL_COLUMNS = {
    "id": "Station id",
    "n_filled": "Days with both in situ and the filled series",
    "r_raw": "Pearson R of raw AMSR against in situ (observed days only)",
    "r_filled": "Pearson R of the filled series against in situ (every day)",
    "delta_r": "R filled minus R raw (a difference, not a ratio)",
    "rmse_filled": "RMSE of the filled series, m3 m-3",
    "ubrmse_filled": "Unbiased RMSE of the filled series, m3 m-3",
    "bias_filled": "Mean of filled minus in situ, m3 m-3",
}


PENDING = "computing the filled series..."


def pending_filled(stats: pd.DataFrame) -> pd.DataFrame:
    """Station statistics while the filled series is being computed: the filled rows say
    so instead of showing NaN / INSUFFICIENT_DATA."""
    if not len(stats) or "series" not in stats:
        return stats
    out = stats.copy()
    rows = out["series"].astype(str).str.startswith("filled")
    num = [c for c in out.columns if c not in ("series", "status")]
    out[num] = out[num].astype(float)
    out.loc[rows, num] = np.nan
    if "status" in out:
        out["status"] = out["status"].astype(object)
        out.loc[rows, "status"] = PENDING
    return out
