"""The AMSR-E -> AMSR2 matching keeps a true climate difference (``model/transfer.py``).

Known answer: two periods whose true soil moisture differs by a map ``D``; AMSR-E and AMSR2
are different linear functions of the truth (gain, offset, a bias map each), ASCAT is one
linear function of the truth in both periods.  Matched through ASCAT, AMSR-E's climatology
minus AMSR2's is AMSR2's gain times ``D``; matched over each sensor's own period (``meanstd``)
the difference is erased; a matching that does nothing keeps the sensor offsets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_catalog import schema
from model.datasets import PeriodData
from model.transfer import MIN_PAIRS, ascat_bridge, climate_difference

N, H, W = 730, 6, 8


def _period(start: str, sensor: int, truth: np.ndarray, gain: float, offset: float,
            bias: np.ndarray, rng) -> PeriodData:
    time = pd.date_range(start, periods=truth.shape[0], freq="D")
    amsr = (offset + gain * truth + bias).astype(np.float32)
    valid = rng.random(truth.shape) < 0.6
    ascat = (10.0 + 150.0 * truth + rng.normal(0, 1.0, truth.shape)).astype(np.float32)
    ascat[rng.random(truth.shape) < 0.2] = np.nan
    return PeriodData(time, np.arange(H, dtype=float), np.arange(W, dtype=float),
                      np.where(valid, amsr, np.nan).astype(np.float32), valid, ascat,
                      ~valid, np.ones((H, W), bool), truth.astype(np.float32),
                      np.full(truth.shape[0], sensor, np.int8))


def _case(seed: int = 0):
    rng = np.random.default_rng(seed)
    doy = np.arange(N)[:, None, None]
    base = 0.25 + 0.08 * np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 0.03, (N, H, W))
    diff = rng.normal(0, 0.02, (H, W))  # the true climate difference, period 1 - period 2
    t1, t2 = base + diff, base
    src = _period("2007-01-01", schema.SENSOR_AMSRE, t1, 1.10, 0.03,
                  rng.normal(0, 0.012, (H, W)), rng)
    ref = _period("2013-01-01", schema.SENSOR_AMSR2, t2, 0.95, -0.01,
                  rng.normal(0, 0.010, (H, W)), rng)
    return src, ref, diff


def _own_stats(d: PeriodData) -> tuple[np.ndarray, np.ndarray]:
    a = np.where(d.valid, d.amsr, np.nan)
    return np.nanmean(a, 0), np.nanstd(a, 0)


def _product_difference(src, ref, maps) -> np.ndarray:
    mu_e, sd_e, mu_2, sd_2 = maps
    matched = (src.amsr - mu_e) / sd_e * sd_2 + mu_2
    return np.nanmean(matched, 0) - np.nanmean(ref.amsr, 0)


def test_ascat_bridge_keeps_the_true_climate_difference():
    src, ref, diff = _case()
    meanstd = (*_own_stats(src), *_own_stats(ref))
    maps, share = ascat_bridge(src, ref, meanstd, schema.SENSOR_AMSRE, schema.SENSOR_AMSR2)
    assert share == 1.0
    land = src.land
    bridged = climate_difference(_product_difference(src, ref, maps), 0.95 * diff, land)
    assert bridged["r"] > 0.95 and bridged["rmse"] < 0.2 * bridged["truth_rms"]
    # own-period matching erases the difference: no correlation left to speak of
    erased = climate_difference(_product_difference(src, ref, meanstd), 0.95 * diff, land)
    assert erased["rmse"] > 0.8 * erased["truth_rms"]
    # a matching that does nothing keeps the sensors' offsets and bias maps
    ident = tuple(np.full((H, W), v) for v in (0.0, 1.0, 0.0, 1.0))
    kept = climate_difference(_product_difference(src, ref, ident), 0.95 * diff, land)
    assert kept["rmse"] > 2 * kept["truth_rms"]


def test_ascat_bridge_falls_back_where_the_sensors_do_not_overlap_ascat():
    src, ref, _ = _case(1)
    src.ascat[:, 0, :] = np.nan                      # a row never seen by ASCAT
    ref.ascat[MIN_PAIRS // 2:, :, 0] = np.nan         # a column with too few pairs
    fallback = tuple(np.full((H, W), v, np.float32) for v in (0.1, 0.2, 0.3, 0.4))
    maps, share = ascat_bridge(src, ref, fallback, schema.SENSOR_AMSRE, schema.SENSOR_AMSR2)
    lost = np.zeros((H, W), bool)
    lost[0, :] = lost[:, 0] = True
    assert share == (~lost).mean()
    for m, f in zip(maps, fallback, strict=True):
        np.testing.assert_array_equal(m[lost], f[lost])
        assert (m[~lost] != f[~lost]).all()


def test_climate_difference_formulas():
    land = np.array([[True, True, True, False]])
    truth = np.array([[0.01, -0.01, 0.02, 5.0]])
    got = climate_difference(2 * truth, truth, land)
    assert np.isclose(got["r"], 1.0)
    assert np.isclose(got["truth_rms"], np.sqrt((0.01**2 + 0.01**2 + 0.02**2) / 3))
    assert np.isclose(got["rmse"], got["truth_rms"])  # 2x - x = x
