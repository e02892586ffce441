"""Pairwise validation metrics: small pure functions ``metric(x, y) -> float``.

The habit is pytesmo's ``metrics/pairwise.py``: each function takes two equally long
vectors of already collocated pairs and states its formula.  By convention ``x`` is the
satellite (or model) series and ``y`` the reference (the in-situ station), so a positive
bias means the satellite is wetter than the station.  The formulas agree with
:mod:`pytesmo.metrics` to machine precision (``tests/test_validation_metrics.py`` checks
that on real pairs); they are written out here so that short or degenerate input gives a
``NaN`` instead of a warning or an exception.

:data:`METRICS` is the one list of metrics, as pytesmo's metric calculators keep theirs:
name -> function, label, units, which direction is better and where it is shown (JSON
rows, network medians, the markdown report, the app's table all read it).  A new metric
is one entry.  :func:`compute_metrics` computes them all for one pair of series and
returns a status (:data:`OK`, :data:`INSUFFICIENT_DATA`, :data:`NO_OVERLAP`) instead of
raising when there are too few pairs, the habit of pytesmo's
``validation_framework/error_handling.py``.  Scaling is :mod:`validation.scaling`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from validation.scaling import scale

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
    from scipy import stats  # here: the app reads the registry at start-up without scipy

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


def pearson_ci_lower(x, y, alpha: float = 0.05) -> float:
    """Lower bound of :func:`pearson_ci`: ``tanh(artanh(R) - q / sqrt(N - 3))``."""
    return pearson_ci(x, y, alpha)[0]


def pearson_ci_upper(x, y, alpha: float = 0.05) -> float:
    """Upper bound of :func:`pearson_ci`: ``tanh(artanh(R) + q / sqrt(N - 3))``."""
    return pearson_ci(x, y, alpha)[1]


def _fisher_ci(r: float, n: int, alpha: float) -> tuple[float, float]:
    if not np.isfinite(r) or n < 4:
        return (np.nan, np.nan)
    from scipy import stats

    z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    q = stats.norm.ppf(1 - alpha / 2) / np.sqrt(n - 3)
    return (float(np.tanh(z - q)), float(np.tanh(z + q)))


def spearman_rho(x, y) -> float:
    """Spearman's rank correlation: Pearson's R of the ranks (ties get their mean rank).

    Same as :func:`pytesmo.metrics.spearman_r` (``scipy.stats.spearmanr``).
    """
    from scipy import stats

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


# ---------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Metric:
    """One metric of the comparisons: how it is computed and how it is shown.

    A new metric is one :func:`register` call (or one entry below): the rows, the JSON,
    the network medians, the markdown report and the app's table read this registry.

    Attributes
    ----------
    name : str
        Column name in rows, CSV and JSON.
    func : callable
        ``func(x, y) -> float`` on the collocated pairs (its docstring states the formula).
    label : str
        Short label for tables and axes.
    units : str
        Units of the value: ``""`` (dimensionless) or ``"m3 m-3"`` (after scaling, every
        series is in the station's volumetric units).
    better : str
        ``"higher"``, ``"lower"``, ``"zero"`` (closer to 0 is better) or ``""`` (a count or
        a p-value, not a skill).
    scaled : bool
        Computed on the satellite series scaled to the station (``compute_metrics``'s
        ``scaling``); else on the unscaled values.
    anomalies : bool
        Takes the pandas Series and ``window_days``/``x_base``/``y_base`` (anomaly metrics,
        skipped when ``compute_metrics`` has no ``anomaly_window``).
    alpha : bool
        Takes ``alpha`` (confidence bounds).
    headline : bool
        One of the few metrics of JSON rows and the app's statistics table.
    summary : bool
        Its network median is reported.
    report : bool
        A column of the markdown table.
    bootstrap : bool
        With ``n_boot``, bootstrap bounds ``<name>_boot_lower``/``<name>_boot_upper``.
    digits : int
        Decimals of its network median in the markdown report.
    """

    name: str
    func: Callable
    label: str
    units: str = ""
    better: str = ""
    scaled: bool = False
    anomalies: bool = False
    alpha: bool = False
    headline: bool = False
    summary: bool = False
    report: bool = True
    bootstrap: bool = False
    digits: int = 3

    @property
    def formula(self) -> str:
        """The first paragraph of the function's docstring."""
        doc = (self.func.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())


#: name -> :class:`Metric`, in the order of rows and reports.
METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to :data:`METRICS` (a name can be registered once)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


for _m in (
    Metric("n", n_pairs, "N", headline=True, summary=True, digits=0),
    Metric("r", pearson_r, "R", better="higher", headline=True, summary=True,
           bootstrap=True),
    Metric("p_r", pearson_p, "p(R)", report=False),
    Metric("r_ci_lower", pearson_ci_lower, "R CI lower", alpha=True),
    Metric("r_ci_upper", pearson_ci_upper, "R CI upper", alpha=True),
    Metric("rho", spearman_rho, "rho", better="higher", summary=True),
    Metric("p_rho", spearman_p, "p(rho)", report=False),
    Metric("r_anom", anomaly_r, "R anomaly", better="higher", anomalies=True, summary=True),
    Metric("rmse", rmse, "RMSE", "m3 m-3", "lower", scaled=True, headline=True, summary=True,
           bootstrap=True),
    Metric("ubrmse", ubrmse, "ubRMSE", "m3 m-3", "lower", scaled=True, headline=True,
           summary=True),
    Metric("bias", bias, "bias", "m3 m-3", "zero", scaled=True, headline=True, summary=True),
):
    register(_m)


def names(*, headline: bool | None = None, summary: bool | None = None,
          report: bool | None = None) -> list[str]:
    """Metric names in registry order, optionally only those with the given flags."""
    want = {"headline": headline, "summary": summary, "report": report}
    return [m.name for m in METRICS.values()
            if all(v is None or getattr(m, k) == v for k, v in want.items())]


# ---------------------------------------------------------------- all at once
def empty_result(status: str, n: int = 0) -> dict:
    """A result row with NaN metrics and the given status."""
    out = {k: np.nan for k in METRICS}
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
    """Every metric of :data:`METRICS` of satellite ``x`` against station ``y``, and a status.

    Parameters
    ----------
    x, y : pandas.Series
        Collocated series on the same (daily) DatetimeIndex; NaN where missing.
    min_n : int
        Fewest valid pairs for a result; fewer give ``INSUFFICIENT_DATA`` (none at all:
        ``NO_OVERLAP``) and NaN metrics.
    scaling : {"none", "mean_std", "cdf_match"}
        Scaling of ``x`` to ``y`` before the ``scaled`` metrics (RMSE, ubRMSE, bias;
        correlations are unaffected by ``mean_std`` and nearly so by ``cdf_match``: they
        are computed on the unscaled values).
    alpha : float
        One minus the confidence level of the intervals.
    anomaly_window : float or None
        Window (days) of the moving-average climatology of the anomaly metrics; None
        skips them.
    anomaly_base : (Series or None, Series or None), optional
        Longer series whose anomalies are used (see :func:`anomaly_r`).
    n_boot : int
        Bootstrap resamples for the ``bootstrap`` metrics' ``<name>_boot_lower`` /
        ``<name>_boot_upper``; 0 skips them.
    block_length, seed : int
        Passed to :func:`bootstrap_ci`.

    Returns
    -------
    dict
        The metric names, ``status`` and, with ``n_boot``, the bootstrap bounds.
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
    xb, yb = anomaly_base or (None, None)
    series_ok = anomaly_window is not None and isinstance(x.index, pd.DatetimeIndex)
    out: dict = {}
    for m in METRICS.values():
        if m.anomalies:
            out[m.name] = (m.func(x, y, anomaly_window, x_base=xb, y_base=yb) if series_ok
                           else np.nan)
        elif m.alpha:
            out[m.name] = m.func(xs if m.scaled else xv, yv, alpha)
        else:
            out[m.name] = m.func(xs if m.scaled else xv, yv)
    out["status"] = OK
    if n_boot:
        for m in METRICS.values():
            if m.bootstrap:
                out[f"{m.name}_boot_lower"], out[f"{m.name}_boot_upper"] = bootstrap_ci(
                    m.func, xs if m.scaled else xv, yv, n_boot=n_boot, alpha=alpha,
                    block_length=block_length, seed=seed)
    return out
