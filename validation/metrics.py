"""Pairwise validation metrics: small pure functions ``metric(x, y) -> float``.

The habit is pytesmo's ``metrics/pairwise.py``: each function takes two equally long
vectors of already collocated pairs and states its formula.  By convention ``x`` is the
satellite (or model) series and ``y`` the reference (the in-situ station), so a positive
bias means the satellite is wetter than the station.  The formulas agree with
:mod:`pytesmo.metrics` to machine precision (``tests/test_validation_metrics.py`` checks
that on real pairs); they are written out here so that short or degenerate input gives a
``NaN`` instead of a warning or an exception.

:func:`compute_metrics` bundles everything for one pair of series and returns a status
(:data:`OK`, :data:`INSUFFICIENT_DATA`, :data:`NO_OVERLAP`) instead of raising when there
are too few pairs, the habit of pytesmo's ``validation_framework/error_handling.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- statuses
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
NO_OVERLAP = "NO_OVERLAP"
NO_DATA = "NO_DATA"  # the series does not exist for this station (e.g. no product cell)
NO_MODEL = "NO_MODEL"  # the filled series needs a model checkpoint or series store
STATUSES = (OK, INSUFFICIENT_DATA, NO_OVERLAP, NO_DATA, NO_MODEL)

DEFAULT_MIN_N = 10
ANOMALY_WINDOW_DAYS = 35

Scaling = Literal["none", "mean_std", "cdf_match"]
SCALINGS: tuple[str, ...] = ("none", "mean_std", "cdf_match")


# ---------------------------------------------------------------- helpers
def valid_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    """The pairs where both ``x`` and ``y`` are finite, as float64 arrays.

    Parameters
    ----------
    x, y : array-like
        Equally long vectors.

    Returns
    -------
    tuple of numpy.ndarray
        ``x`` and ``y`` without the positions where either is NaN or infinite.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y differ in length: {xa.size} != {ya.size}")
    ok = np.isfinite(xa) & np.isfinite(ya)
    return xa[ok], ya[ok]


# ---------------------------------------------------------------- metrics
def n_pairs(x, y) -> int:
    """Number of pairs where both values are finite: ``N = #{i: x_i, y_i finite}``."""
    return int(valid_pairs(x, y)[0].size)


def bias(x, y) -> float:
    """Mean difference ``bias = mean(x) - mean(y) = (1/N) sum(x_i - y_i)``.

    Same as :func:`pytesmo.metrics.bias`.  NaN for an empty input.
    """
    xa, ya = valid_pairs(x, y)
    return float(np.mean(xa - ya)) if xa.size else np.nan


def rmse(x, y) -> float:
    """Root-mean-square error ``RMSE = sqrt((1/N) sum (x_i - y_i)^2)``.

    Same as :func:`pytesmo.metrics.rmsd` (``ddof=0``); ``rmse(arange(10), arange(10) + 2)``
    is 2.  NaN for an empty input.
    """
    xa, ya = valid_pairs(x, y)
    return float(np.sqrt(np.mean((xa - ya) ** 2))) if xa.size else np.nan


def ubrmse(x, y) -> float:
    """Unbiased RMSE ``ubRMSE = sqrt((1/N) sum ((x_i - mean(x)) - (y_i - mean(y)))^2)``.

    Equivalently ``sqrt(RMSE^2 - bias^2)``.  Same as :func:`pytesmo.metrics.ubrmsd`.
    """
    xa, ya = valid_pairs(x, y)
    if not xa.size:
        return np.nan
    d = (xa - xa.mean()) - (ya - ya.mean())
    return float(np.sqrt(np.mean(d**2)))


def pearson_r(x, y) -> float:
    """Pearson's correlation coefficient.

    ``R = sum (x_i - mx)(y_i - my) / sqrt(sum (x_i - mx)^2 * sum (y_i - my)^2)``.

    Same as :func:`pytesmo.metrics.pearson_r` (``scipy.stats.pearsonr``).  NaN when fewer
    than two pairs or either series is constant.
    """
    xa, ya = valid_pairs(x, y)
    if xa.size < 2:
        return np.nan
    dx, dy = xa - xa.mean(), ya - ya.mean()
    den = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    if not den > 0:
        return np.nan
    return float(np.clip(np.sum(dx * dy) / den, -1.0, 1.0))


def pearson_p(x, y) -> float:
    """Two-sided p-value of R against zero correlation.

    ``t = R sqrt((N - 2) / (1 - R^2))`` follows Student's t with ``N - 2`` degrees of
    freedom under the null hypothesis; ``p = 2 sf(|t|)`` (what ``scipy.stats.pearsonr``
    returns).  NaN when ``N < 3`` or R is undefined.
    """
    xa, ya = valid_pairs(x, y)
    r = pearson_r(xa, ya)
    return _r_pvalue(r, xa.size)


def _r_pvalue(r: float, n: int) -> float:
    if not np.isfinite(r) or n < 3:
        return np.nan
    if abs(r) >= 1.0:
        return 0.0
    t = r * np.sqrt((n - 2) / (1.0 - r * r))
    return float(2.0 * stats.t.sf(abs(t), n - 2))


def pearson_ci(x, y, alpha: float = 0.05) -> tuple[float, float]:
    """Analytical ``1 - alpha`` confidence interval of R (Fisher z transform).

    ``z = artanh(R)``, ``[tanh(z - q / sqrt(N - 3)), tanh(z + q / sqrt(N - 3))]`` with ``q``
    the ``1 - alpha/2`` quantile of the standard normal (Bonett & Wright 2000; the same as
    ``pytesmo.metrics.pairwise.pearson_r_ci``).  NaNs when ``N < 4``.
    """
    xa, ya = valid_pairs(x, y)
    return _fisher_ci(pearson_r(xa, ya), xa.size, alpha)


def _fisher_ci(r: float, n: int, alpha: float) -> tuple[float, float]:
    if not np.isfinite(r) or n < 4:
        return (np.nan, np.nan)
    z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    q = stats.norm.ppf(1 - alpha / 2) / np.sqrt(n - 3)
    return (float(np.tanh(z - q)), float(np.tanh(z + q)))


def spearman_rho(x, y) -> float:
    """Spearman's rank correlation: Pearson's R of the ranks (ties get their mean rank).

    Same as :func:`pytesmo.metrics.spearman_r` (``scipy.stats.spearmanr``).
    """
    xa, ya = valid_pairs(x, y)
    if xa.size < 2:
        return np.nan
    return pearson_r(stats.rankdata(xa), stats.rankdata(ya))


def spearman_p(x, y) -> float:
    """Two-sided p-value of rho, with the t approximation used by ``scipy.stats.spearmanr``."""
    xa, ya = valid_pairs(x, y)
    return _r_pvalue(spearman_rho(xa, ya), xa.size)


def anomalies(series: pd.Series, window_days: float = ANOMALY_WINDOW_DAYS) -> pd.Series:
    """Anomalies from a moving-window climatology: ``a(t) = x(t) - mean{x(s): |s - t| <= w/2}``.

    This is :func:`pytesmo.time_series.anomaly.calc_anomaly` without a climatology (a
    boxcar moving average of ``window_days``; NaNs are skipped in the mean).

    Parameters
    ----------
    series : pandas.Series
        Indexed by a DatetimeIndex (tz-aware indexes are converted to naive UTC).
    window_days : float
        Width of the moving window in days (35 as in pytesmo and QA4SM).
    """
    from pytesmo.time_series.anomaly import calc_anomaly

    s = _naive_utc(series.astype(np.float64))
    if s.empty:
        return s
    out = calc_anomaly(s, window_size=window_days)
    out.index = series.index
    return out


def anomaly_r(x: pd.Series, y: pd.Series, window_days: float = ANOMALY_WINDOW_DAYS, *,
              x_base: pd.Series | None = None, y_base: pd.Series | None = None) -> float:
    """Pearson R of the anomalies: ``R(x - MA_w(x), y - MA_w(y))`` on the pairs where both exist.

    ``MA_w`` is a ``window_days`` moving average (see :func:`anomalies`) of each series'
    own valid values (each dataset's anomalies are computed before matching, as in
    pytesmo/QA4SM), so a sparse subset such as the gap days does not distort them.

    Parameters
    ----------
    x, y : pandas.Series
        The collocated pairs on a common DatetimeIndex (NaN where missing).
    window_days : float
        Moving-window length in days.
    x_base, y_base : pandas.Series, optional
        Longer series whose anomalies are taken instead (e.g. the whole filled series when
        ``x`` is its gap days only); the correlation is still over the valid pairs of ``x``
        and ``y``.
    """
    if not (isinstance(x, pd.Series) and isinstance(y, pd.Series)):
        raise TypeError("anomaly_r needs pandas Series with a DatetimeIndex")
    x, y = x.align(y, join="inner")
    ok = np.isfinite(x.to_numpy(np.float64)) & np.isfinite(y.to_numpy(np.float64))
    if ok.sum() < 2:
        return np.nan
    ax = _own_anomalies(x if x_base is None else x_base, window_days)
    ay = _own_anomalies(y if y_base is None else y_base, window_days)
    pairs = x.index[ok]
    return pearson_r(ax.reindex(pairs), ay.reindex(pairs))


def _own_anomalies(s: pd.Series, window_days: float) -> pd.Series:
    s = s[np.isfinite(s.to_numpy(np.float64))]
    s = s[~s.index.duplicated()]
    return anomalies(s, window_days)


def _naive_utc(s: pd.Series) -> pd.Series:
    idx = pd.DatetimeIndex(s.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return pd.Series(s.to_numpy(), index=idx, name=s.name)


# ---------------------------------------------------------------- bootstrap
def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    x,
    y,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    block_length: int = 1,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``1 - alpha`` confidence interval of ``metric(x, y)``.

    Pairs are resampled with replacement (``block_length > 1``: a moving-block bootstrap,
    which keeps the autocorrelation of daily series within blocks); the interval is the
    ``alpha/2`` and ``1 - alpha/2`` percentiles of the ``n_boot`` resampled metric values.

    Parameters
    ----------
    metric : callable
        ``metric(x, y) -> float``.
    x, y : array-like
        Collocated pairs (non-finite pairs are dropped first).
    n_boot : int
        Number of resamples.
    alpha : float
        One minus the confidence level.
    block_length : int
        Length of the resampled blocks (1: the ordinary pair bootstrap).
    seed : int or None
        Seed of the random generator, for reproducible intervals.
    """
    xa, ya = valid_pairs(x, y)
    n = xa.size
    if n < 2 or n_boot < 1:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    block_length = int(max(1, min(block_length, n)))
    nblocks = int(np.ceil(n / block_length))
    values = np.empty(n_boot)
    for b in range(n_boot):
        starts = rng.integers(0, n - block_length + 1, size=nblocks)
        idx = (starts[:, None] + np.arange(block_length)[None, :]).ravel()[:n]
        values[b] = metric(xa[idx], ya[idx])
    values = values[np.isfinite(values)]
    if not values.size:
        return (np.nan, np.nan)
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(lo), float(hi))


# ---------------------------------------------------------------- scaling
def scale(src, ref, method: str = "none"):
    """Scale ``src`` (satellite) to the statistics of ``ref`` (station) before RMSE.

    ``none``: unchanged.  ``mean_std``: ``(src - mean(src)) / std(src) * std(ref) +
    mean(ref)`` (pytesmo ``scaling.mean_std``).  ``cdf_match``: piecewise-linear CDF
    matching with pytesmo's ``scaling.cdf_match`` (percentile bins, linear edge scaling).
    The statistics use only the jointly valid pairs, so the scaled series keeps the NaNs
    of ``src``.

    Parameters
    ----------
    src, ref : array-like or pandas.Series
        Collocated series of equal length.
    method : {"none", "mean_std", "cdf_match"}

    Returns
    -------
    Same type as ``src`` (a Series keeps its index).
    """
    if method not in SCALINGS:
        raise ValueError(f"unknown scaling {method!r}; expected one of {SCALINGS}")
    s = np.asarray(src, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if s.shape != r.shape:
        raise ValueError(f"src and ref differ in length: {s.size} != {r.size}")
    out = s.copy()
    ok = np.isfinite(s) & np.isfinite(r)
    if method != "none" and ok.sum() >= 2:
        if method == "mean_std":
            sd = s[ok].std()
            if sd > 0:
                out = (s - s[ok].mean()) / sd * r[ok].std() + r[ok].mean()
            else:
                out = s - s[ok].mean() + r[ok].mean()
        else:
            out = _cdf_match(s, r, ok)
    if isinstance(src, pd.Series):
        return pd.Series(out, index=src.index, name=src.name)
    return out


def _cdf_match(s: np.ndarray, r: np.ndarray, ok: np.ndarray) -> np.ndarray:
    from pytesmo.cdf_matching import CDFMatching

    n = int(ok.sum())
    # at least 20 pairs per percentile bin (pytesmo's `minobs`); choosing the bin count
    # here avoids pytesmo's "bins have been resized" warning for short series
    nbins = int(max(1, min(100, n // 20)))
    matcher = CDFMatching(nbins=nbins, minobs=None, linear_edge_scaling=True,
                          combine_invalid=True)
    matcher.fit(s[ok], r[ok])
    # every finite value of src is mapped, also those without a station partner
    return np.asarray(matcher.predict(s), dtype=np.float64)


# ---------------------------------------------------------------- all at once
METRIC_KEYS = ("n", "r", "p_r", "r_ci_lower", "r_ci_upper", "rho", "p_rho", "rmse", "ubrmse",
               "bias", "r_anom")


def empty_result(status: str, n: int = 0) -> dict:
    """A result row with NaN metrics and the given status."""
    out = {k: np.nan for k in METRIC_KEYS}
    out["n"] = int(n)
    out["status"] = status
    return out


def compute_metrics(
    x: pd.Series,
    y: pd.Series,
    *,
    min_n: int = DEFAULT_MIN_N,
    scaling: str = "none",
    alpha: float = 0.05,
    anomaly_window: float | None = ANOMALY_WINDOW_DAYS,
    anomaly_base: tuple[pd.Series | None, pd.Series | None] | None = None,
    n_boot: int = 0,
    block_length: int = 1,
    seed: int | None = 0,
) -> dict:
    """All metrics of satellite ``x`` against station ``y`` and a status.

    Parameters
    ----------
    x, y : pandas.Series
        Collocated series on the same (daily) DatetimeIndex; NaN where missing.
    min_n : int
        Fewest valid pairs for a result; fewer give ``INSUFFICIENT_DATA`` (none at all:
        ``NO_OVERLAP``) and NaN metrics.
    scaling : {"none", "mean_std", "cdf_match"}
        Scaling of ``x`` to ``y`` before RMSE, ubRMSE and bias (correlations are unaffected
        by ``mean_std`` and nearly so by ``cdf_match``; they are computed on the unscaled
        values).
    alpha : float
        One minus the confidence level of the intervals.
    anomaly_window : float or None
        Window (days) of the moving-average climatology for ``r_anom``; None skips it.
    anomaly_base : (Series or None, Series or None), optional
        Longer series whose anomalies are used for ``r_anom`` (see :func:`anomaly_r`).
    n_boot : int
        Bootstrap resamples for ``r_boot_lower``/``r_boot_upper`` and
        ``rmse_boot_lower``/``rmse_boot_upper``; 0 skips them.
    block_length, seed : int
        Passed to :func:`bootstrap_ci`.

    Returns
    -------
    dict
        Keys :data:`METRIC_KEYS`, ``status`` and, with ``n_boot``, the bootstrap bounds.
    """
    x, y = pd.Series(x), pd.Series(y)
    if len(x) != len(y) or not x.index.equals(y.index):
        x, y = x.align(y, join="inner")
    xv = x.to_numpy(np.float64)
    yv = y.to_numpy(np.float64)
    ok = np.isfinite(xv) & np.isfinite(yv)
    n = int(ok.sum())
    if n == 0:
        return empty_result(NO_OVERLAP)
    if n < max(min_n, 3):
        return empty_result(INSUFFICIENT_DATA, n)
    xs = scale(xv, yv, scaling)
    r = pearson_r(xv, yv)
    lo, hi = _fisher_ci(r, n, alpha)
    out = {
        "n": n,
        "r": r,
        "p_r": _r_pvalue(r, n),
        "r_ci_lower": lo,
        "r_ci_upper": hi,
        "rho": spearman_rho(xv, yv),
        "p_rho": spearman_p(xv, yv),
        "rmse": rmse(xs, yv),
        "ubrmse": ubrmse(xs, yv),
        "bias": bias(xs, yv),
        "r_anom": np.nan,
        "status": OK,
    }
    if anomaly_window is not None and isinstance(x.index, pd.DatetimeIndex):
        xb, yb = anomaly_base or (None, None)
        out["r_anom"] = anomaly_r(x, y, anomaly_window, x_base=xb, y_base=yb)
    if n_boot:
        out["r_boot_lower"], out["r_boot_upper"] = bootstrap_ci(
            pearson_r, xv, yv, n_boot=n_boot, alpha=alpha, block_length=block_length, seed=seed)
        out["rmse_boot_lower"], out["rmse_boot_upper"] = bootstrap_ci(
            rmse, xs, yv, n_boot=n_boot, alpha=alpha, block_length=block_length, seed=seed)
    return out
