"""The held-out test set of a sensor, and how pixels are hidden from it.

:func:`prepare_test_set` reads a test year or period (with the year before as warm-up)
into a :class:`TestSet`; :func:`hide_like_other_days` hides observed pixels under the
natural gap patterns of other days (the scheme of ``gapfill evaluate`` and of the error
model's fit, :mod:`model.errors_fit`); :func:`metrics` scores paired values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import schema
from data_catalog.errors import EmptySelectionError
from model import baselines
from model import strata as st
from model.config import period_days, period_label, period_value
from model.datasets import PeriodData, load_period, subset_region

SENSOR_CODE = {"amsr2": schema.SENSOR_AMSR2, "amsre": schema.SENSOR_AMSRE}


def metrics(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """RMSE, ubRMSE, bias, Pearson R and n of paired values (NaN pairs dropped).

    ``bias = mean(p - r)``, ``rmse = sqrt(mean((p - r)^2))``,
    ``ubrmse = sqrt(rmse^2 - bias^2)``, ``r = cov(p, r) / (sd_p sd_r)``.
    """
    p = np.asarray(pred, np.float64).ravel()
    r = np.asarray(ref, np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    n = int(p.size)
    if n < 3:
        return {"rmse": math.nan, "ubrmse": math.nan, "bias": math.nan, "r": math.nan, "n": n}
    d = p - r
    bias = float(d.mean())
    rmse = float(np.sqrt(np.mean(d * d)))
    ub = float(np.sqrt(max(rmse * rmse - bias * bias, 0.0)))
    rr = float(np.corrcoef(p, r)[0, 1]) if p.std() > 0 and r.std() > 0 else math.nan
    return {"rmse": rmse, "ubrmse": ub, "bias": bias, "r": rr, "n": n}


def other_days(n: int, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each of the ``days`` (bool, length ``n``) a random other day, else -1."""
    other = np.full(n, -1, np.int64)
    for t in np.flatnonzero(days):
        u = int(rng.integers(0, n - 1))
        other[t] = u + 1 if u >= t else u
    return other


def hide_like_other_days(valid: np.ndarray, natural_gap: np.ndarray, days: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """Hide observed pixels of ``days`` under the natural gap pattern of another random day."""
    return hide_by(valid, natural_gap, other_days(valid.shape[0], days, rng))


def hide_by(valid: np.ndarray, natural_gap: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Observed pixels of each day ``t`` with ``other[t] >= 0`` that are gaps on day
    ``other[t]`` (the pixels that day's natural gap pattern hides)."""
    hidden = np.zeros(valid.shape, bool)
    t = np.flatnonzero(other >= 0)
    hidden[t] = valid[t] & natural_gap[other[t]]
    return hidden


@dataclass
class TestSet:
    """One sensor's test period in memory with the fitted baselines and the references.

    ``test_year`` labels the test period (the year for a whole year, else
    ``first..last`` days); ``per`` holds it and the year before (warm-up, context);
    ``fit_years`` the years (or, for periods given as days, the period and what was left
    out of it) whose observations fit the climatology, the CDF matching and the
    calibration (never the test period).  ``calibrated``: the truth through each pixel's
    AMSR calibration (:func:`model.strata.fit_calibration`), None without truth.
    """

    name: str
    sensor: str
    test_year: int | str
    fit_years: list
    per: PeriodData
    gap: np.ndarray
    test_days: np.ndarray
    climatology: np.ndarray
    ascat_cdf: np.ndarray
    calibrated: np.ndarray | None
    calibration: dict = field(default_factory=dict)

    @property
    def observation(self) -> np.ndarray:
        return np.where(self.per.valid, self.per.amsr, np.nan).astype(np.float32)


@dataclass
class Run:
    """All methods run on one input: ``vin`` (the observations they see), ``preds``
    (method -> (T, H, W)), ``scored`` (scheme -> (T, H, W) mask) and the gap code of
    each scored pixel-day (``category``; None: no category)."""

    name: str
    vin: np.ndarray
    preds: dict[str, np.ndarray]
    scored: dict[str, np.ndarray]
    category: np.ndarray | None = None


def _in_periods(time: pd.DatetimeIndex, periods) -> np.ndarray:
    """Which days of ``time`` fall in any of ``periods`` (years or ``[first, last]``)."""
    out = np.zeros(len(time), bool)
    for p in periods:
        a, b = period_days(p)
        out |= (time >= a) & (time <= b)
    return out


def _whole_years(periods) -> bool:
    return all(isinstance(p, int | np.integer) or (
        isinstance(p, list | tuple) and all(isinstance(v, int | np.integer) for v in p))
        for p in periods)


def prepare_test_set(ds: xr.Dataset, sensor: str, test_year, fit_years, *,
                     region=None, exclude: tuple = (), name: str | None = None) -> TestSet:
    """Load the test period and the year before it, and fit the baselines on
    ``fit_years`` (``[first, last]``) without the test period and the periods in
    ``exclude``.

    ``test_year`` is a year (``2022``) or a period ``[first, last]`` of years or days
    (:func:`model.config.period_days`); so are ``fit_years`` and each of ``exclude``.
    """
    code = SENSOR_CODE[sensor]
    t0, t1 = period_days(test_year, "test period")
    label = period_label(test_year)
    label = int(label) if label.isdigit() else label
    span = [f"{t0 - pd.DateOffset(years=1):%Y-%m-%d}", f"{t1:%Y-%m-%d}"]
    per = load_period(ds, span, region=region, sensor=code)
    fit = load_period(ds, fit_years, region=region, sensor=code)
    drop = _in_periods(fit.time, [*exclude, test_year])
    if not (fit.valid & ~drop[:, None, None]).any():
        raise EmptySelectionError(
            f"no {sensor} observation to fit the baselines on in {period_label(fit_years)} "
            f"outside the test period {label} (give another fit period: --fit-period)",
            variable=schema.AMSR_SM)
    fit.valid &= ~drop[:, None, None]
    fit.ascat = np.where(drop[:, None, None], np.nan, fit.ascat)
    sub = subset_region(ds, region)[schema.GAP_MASK]
    gap = np.asarray(sub.sel({schema.TIME: per.time}).values, np.int8)
    test_days = (per.time >= t0) & (per.time <= t1) & (per.sensor == code)
    if not test_days.any():
        raise EmptySelectionError(f"no {sensor} days in the test period {label}",
                                  variable=schema.SENSOR)
    tv = np.where(fit.valid, fit.amsr, np.nan)
    clim = baselines.Climatology().fit(tv, fit.doy).predict(per.doy)
    cdf = baselines.CDFMatch().fit(fit.ascat, tv).predict(per.ascat)
    if _whole_years([fit_years, test_year, *exclude]):
        fy = [int(v) for v in period_value(fit_years)]
        left = {int(y) for p in [*exclude, test_year] for y in period_value(p)}
        years: list = sorted(set(range(fy[0], fy[-1] + 1)) - left)
    else:
        years = [period_label(fit_years), "without " + ", ".join(
            period_label(p) for p in [test_year, *exclude])]
    calibrated, cal = None, {}
    if per.truth is not None and fit.truth is not None:
        gain, offset, cal = st.fit_calibration(fit.truth, tv, per.land)
        calibrated = (offset + gain * per.truth).astype(np.float32)
        stored = _stored_gain(ds, sensor)
        cal = {"method": "per-pixel least squares of the AMSR observations on the truth, "
                         "observed days of the fit years; pixels with fewer than "
                         f"{st.MIN_CALIBRATION_DAYS} borrow the nearest fitted pixel's",
               "years": years} | cal | ({"stored_gain": stored} if stored else {})
    return TestSet(name or f"{sensor}_{label}", sensor, label, years, per, gap,
                   test_days, clim, cdf, calibrated, cal)


def _stored_gain(ds: xr.Dataset, sensor: str) -> float | None:
    """The sensor's global gain where the world stores it (a check of the fit)."""
    try:
        return float(json.loads(ds.attrs.get(sensor, "{}")).get("gain"))
    except (TypeError, ValueError, AttributeError):
        return None
