"""Metrics: known values, agreement with pytesmo, statuses instead of exceptions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytesmo.metrics as pm
import pytest
from pytesmo.metrics.pairwise import pearson_r_ci
from pytesmo.time_series.anomaly import calc_anomaly
from scipy import stats

from validation import metrics as m


def _pair_with_r(r: float, n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Two series whose sample correlation is exactly ``r`` (orthogonalised noise)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    e = rng.standard_normal(n)
    x = (x - x.mean()) / x.std()
    e = e - e.mean()
    e = e - (e @ x) / (x @ x) * x
    e = e / e.std()
    return x, r * x + np.sqrt(1 - r * r) * e


def test_rmse_known_value():
    assert m.rmse(np.arange(10), np.arange(10) + 2) == 2.0
    # a constant offset is all bias, no unbiased error
    assert m.bias(np.arange(10) + 2, np.arange(10)) == pytest.approx(2.0)
    assert m.ubrmse(np.arange(10), np.arange(10) + 2) == pytest.approx(0.0, abs=1e-12)


def test_constructed_correlation_of_0_8():
    x, y = _pair_with_r(0.8)
    assert m.pearson_r(x, y) == pytest.approx(0.8, abs=1e-12)
    lo, hi = m.pearson_ci(x, y)
    assert lo < 0.8 < hi
    # Fisher z by hand
    q = stats.norm.ppf(0.975) / np.sqrt(len(x) - 3)
    assert lo == pytest.approx(np.tanh(np.arctanh(0.8) - q))
    assert hi == pytest.approx(np.tanh(np.arctanh(0.8) + q))


def test_nan_pairs_are_dropped():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    y = np.array([1.0, np.nan, 3.0, 4.0, 7.0])
    assert m.n_pairs(x, y) == 3
    assert m.rmse(x, y) == pytest.approx(np.sqrt(4 / 3))


def test_degenerate_input_gives_nan_not_warning():
    assert np.isnan(m.pearson_r([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert np.isnan(m.pearson_r([], []))
    assert np.isnan(m.rmse([], []))
    assert np.isnan(m.pearson_p([1.0, 2.0], [2.0, 1.0]))
    with pytest.raises(ValueError, match="differ in length"):
        m.rmse([1.0, 2.0], [1.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytesmo_and_scipy(seed):
    rng = np.random.default_rng(seed)
    y = 0.25 + 0.05 * rng.standard_normal(300)
    x = 0.8 * y + 0.05 + 0.03 * rng.standard_normal(300)
    assert m.pearson_r(x, y) == pytest.approx(pm.pearson_r(x, y), abs=1e-12)
    assert m.spearman_rho(x, y) == pytest.approx(pm.spearman_r(x, y), abs=1e-12)
    assert m.rmse(x, y) == pytest.approx(pm.rmsd(x, y), abs=1e-12)
    assert m.ubrmse(x, y) == pytest.approx(pm.ubrmsd(x, y), abs=1e-12)
    assert m.bias(x, y) == pytest.approx(pm.bias(x, y), abs=1e-12)
    assert m.pearson_p(x, y) == pytest.approx(stats.pearsonr(x, y).pvalue, rel=1e-6)
    assert m.spearman_p(x, y) == pytest.approx(stats.spearmanr(x, y).pvalue, rel=1e-6)
    assert m.pearson_ci(x, y) == pytest.approx(pearson_r_ci(x, y, pm.pearson_r(x, y)),
                                               abs=1e-12)


def test_anomaly_r_matches_pytesmo_calc_anomaly():
    idx = pd.date_range("2017-01-01", periods=500, freq="D")
    t = np.arange(500)
    rng = np.random.default_rng(5)
    season = np.sin(2 * np.pi * t / 365.25)
    x = pd.Series(0.2 + 0.1 * season + 0.02 * rng.standard_normal(500), idx)
    y = pd.Series(0.25 + 0.08 * season + 0.02 * rng.standard_normal(500), idx)
    x[rng.random(500) < 0.3] = np.nan
    # each series' anomalies from its own record, then paired (pytesmo/QA4SM order)
    ok = x.notna() & y.notna()
    ax, ay = calc_anomaly(x.dropna(), window_size=35), calc_anomaly(y.dropna(), window_size=35)
    expected = pm.pearson_r(ax[ok[ok].index].to_numpy(), ay[ok[ok].index].to_numpy())
    assert m.anomaly_r(x, y) == pytest.approx(expected, abs=1e-12)
    # a sparse subset takes its anomalies from the full series when given one
    sub = x.where(np.arange(500) % 7 == 0)
    full = pm.pearson_r(ax.reindex(sub.dropna().index).to_numpy(),
                        ay.reindex(sub.dropna().index).to_numpy())
    assert m.anomaly_r(sub, y, x_base=x) == pytest.approx(full, abs=1e-12)
    assert m.anomaly_r(sub, y) != pytest.approx(full, abs=1e-3)
    # removing the shared season lowers the correlation
    assert m.anomaly_r(x, y) < m.pearson_r(x, y)
    # tz-aware indexes give the same anomalies as naive UTC ones
    xz = x.tz_localize("UTC")
    yz = y.tz_localize("UTC")
    assert m.anomaly_r(xz, yz) == pytest.approx(m.anomaly_r(x, y), abs=1e-12)


def test_scaling_mean_std_and_cdf():
    rng = np.random.default_rng(0)
    ref = 0.3 + 0.05 * rng.standard_normal(400)
    src = 60 + 15 * (ref - 0.3) / 0.05 + 3 * rng.standard_normal(400)  # "percent" units
    src[:7] = np.nan
    s = m.scale(src, ref, "mean_std")
    ok = np.isfinite(s)
    assert s[ok].mean() == pytest.approx(ref[ok].mean())
    assert s[ok].std() == pytest.approx(ref[ok].std())
    assert np.isnan(s[:7]).all()
    c = m.scale(src, ref, "cdf_match")
    assert np.nanmedian(c) == pytest.approx(np.median(ref[ok]), abs=0.01)
    assert m.rmse(c, ref) < m.rmse(src, ref) / 100
    # scaling is monotonic: correlations of the ranks are untouched
    assert m.spearman_rho(c, ref) == pytest.approx(m.spearman_rho(src, ref), abs=1e-9)
    with pytest.raises(ValueError, match="unknown scaling"):
        m.scale(src, ref, "zscore")
    series = pd.Series(src, index=pd.date_range("2017-01-01", periods=400))
    assert m.scale(series, ref, "mean_std").index.equals(series.index)


def test_bootstrap_ci_contains_r_and_is_reproducible():
    x, y = _pair_with_r(0.6, n=200)
    lo, hi = m.bootstrap_ci(m.pearson_r, x, y, n_boot=300, seed=1)
    assert lo < 0.6 < hi
    assert (lo, hi) == m.bootstrap_ci(m.pearson_r, x, y, n_boot=300, seed=1)
    blo, bhi = m.bootstrap_ci(m.pearson_r, x, y, n_boot=300, block_length=10, seed=1)
    assert blo < 0.6 < bhi


def test_compute_metrics_statuses():
    idx = pd.date_range("2018-01-01", periods=30, freq="D")
    x, y = _pair_with_r(0.8, n=30)
    full = m.compute_metrics(pd.Series(x, idx), pd.Series(y, idx), min_n=10)
    assert full["status"] == m.OK and full["n"] == 30
    assert full["r"] == pytest.approx(0.8, abs=1e-12)
    assert full["r_ci_lower"] < full["r"] < full["r_ci_upper"]
    short = pd.Series(np.where(np.arange(30) < 5, x, np.nan), idx)
    res = m.compute_metrics(short, pd.Series(y, idx), min_n=10)
    assert res["status"] == m.INSUFFICIENT_DATA and res["n"] == 5 and np.isnan(res["r"])
    # min_n is a setting
    assert m.compute_metrics(short, pd.Series(y, idx), min_n=5)["status"] == m.OK
    other = pd.Series(y, pd.date_range("2019-01-01", periods=30, freq="D"))
    res = m.compute_metrics(pd.Series(x, idx), other)
    assert res["status"] == m.NO_OVERLAP and res["n"] == 0
    empty = m.compute_metrics(pd.Series([], dtype=float), pd.Series([], dtype=float))
    assert empty["status"] == m.NO_OVERLAP


def test_compute_metrics_scaling_changes_rmse_not_r():
    idx = pd.date_range("2018-01-01", periods=200, freq="D")
    x, y = _pair_with_r(0.7, n=200)
    xs = pd.Series(50 + 10 * x, idx)
    raw = m.compute_metrics(xs, pd.Series(y, idx))
    sc = m.compute_metrics(xs, pd.Series(y, idx), scaling="mean_std")
    assert raw["r"] == pytest.approx(sc["r"])
    assert sc["rmse"] < raw["rmse"] / 10
    assert sc["bias"] == pytest.approx(0.0, abs=1e-12)
    boot = m.compute_metrics(xs, pd.Series(y, idx), n_boot=100)
    assert boot["r_boot_lower"] < boot["r"] < boot["r_boot_upper"]
