"""The evaluation baselines on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from model import baselines


def test_linear_time_fills_a_ramp_exactly_and_holds_the_ends():
    rng = np.random.default_rng(0)
    t = np.arange(60, dtype=np.float64)
    ramp = (0.1 + 0.004 * t)[:, None, None] * np.array([[1.0, 0.5], [2.0, 1.5]])[None]
    holes = rng.random(ramp.shape) < 0.5
    holes[:5] = True                    # before the first observation
    holes[-4:] = True                   # after the last
    holes[:, 1, 1] = True               # never observed
    holes[5:-4, 0, 0] = False
    holes[6, 0, 1] = holes[7, 0, 1] = False  # at least two observations elsewhere
    holes[50, 0, 1] = holes[30, 1, 0] = holes[40, 1, 0] = False
    a = np.where(holes, np.nan, ramp).astype(np.float32)
    out = baselines.linear_time(a)
    for i, j in ((0, 0), (0, 1), (1, 0)):
        obs = np.flatnonzero(~holes[:, i, j])
        inside = slice(obs[0], obs[-1] + 1)
        np.testing.assert_allclose(out[inside, i, j], ramp[inside, i, j], atol=1e-6)
        assert np.all(out[:obs[0], i, j] == a[obs[0], i, j])       # nearest at the start
        assert np.all(out[obs[-1] + 1:, i, j] == a[obs[-1], i, j])  # and at the end
    assert np.isnan(out[:, 1, 1]).all()


def test_climatology_of_a_pure_seasonal_cycle():
    """Three 366-day years of ``c(doy)``: window 1 returns ``c`` itself; window 31 returns
    the 31-day circular mean, for a cosine ``c`` exactly the cosine times
    ``sum_k cos(2 pi k / 366) / 31``."""
    doy = np.tile(np.arange(1, 367), 3)
    c = 0.25 + 0.08 * np.cos(2 * np.pi * (doy - 200) / 366)
    amp = np.array([[1.0, 0.5], [0.0, 2.0]])
    a = (0.25 + (c - 0.25)[:, None, None] * amp[None]).astype(np.float64)
    a[99, 0, 0] = np.nan  # day 100 of the first year: filled from the other years
    one = baselines.Climatology(window=1).fit(a, doy).predict(np.arange(1, 367))
    days = np.arange(1, 367)
    want = 0.25 + 0.08 * np.cos(2 * np.pi * (days - 200) / 366)[:, None, None] * amp[None]
    np.testing.assert_allclose(one, want, atol=1e-6)
    k = np.arange(-15, 16)
    factor = np.cos(2 * np.pi * k / 366).mean()
    month = baselines.Climatology(window=31).fit(np.where(np.isnan(a), want[doy - 1], a),
                                                 doy).predict(days)
    want31 = (0.25 + factor * 0.08 * np.cos(2 * np.pi * (days - 200) / 366)[:, None, None]
              * amp[None])
    np.testing.assert_allclose(month, want31, atol=1e-6)
    # a pixel never observed on some days of year takes its all-year mean there
    b = a.copy()
    b[(doy >= 10) & (doy <= 60), 1, 1] = np.nan
    one_b = baselines.Climatology(window=1).fit(b, doy).predict(days)
    assert np.allclose(one_b[30, 1, 1], np.nanmean(b[:, 1, 1]), atol=1e-6)


def test_cdf_matching_inverts_an_exact_linear_relation():
    """ASCAT = 20 + 150 AMSR exactly: CDF matching gives AMSR back, also for values outside
    the fitted range (linear extrapolation)."""
    rng = np.random.default_rng(1)
    amsr = rng.uniform(0.05, 0.45, (400, 3, 3))
    ascat = 20 + 150 * amsr
    amsr_fit = amsr.copy()
    amsr_fit[rng.random(amsr.shape) < 0.3] = np.nan
    ascat[rng.random(amsr.shape) < 0.3] = np.nan
    m = baselines.CDFMatch().fit(ascat, amsr_fit)
    test = np.array([0.02, 0.1, 0.3, 0.5])[:, None, None] * np.ones((1, 3, 3))
    out = m.predict(20 + 150 * test)
    np.testing.assert_allclose(out, test, atol=1e-5)
    assert np.isnan(m.predict(np.full((2, 3, 3), np.nan))).all()


def test_cdf_matching_percentiles_equal_numpy_per_pixel():
    rng = np.random.default_rng(2)
    src = rng.gamma(2.0, 10.0, (80, 4, 5))
    ref = rng.normal(0.3, 0.05, (80, 4, 5))
    src[rng.random(src.shape) < 0.4] = np.nan
    ref[rng.random(ref.shape) < 0.3] = np.nan
    ref[:, 0, 0] = np.nan  # too few common observations
    src[:60, 1, 1] = np.nan
    m = baselines.CDFMatch(n_quantiles=11, min_obs=25).fit(src, ref)
    p = np.linspace(0, 100, 11)
    for i in range(4):
        for j in range(5):
            both = np.isfinite(src[:, i, j]) & np.isfinite(ref[:, i, j])
            if both.sum() < 25:
                assert np.isnan(m.qs[:, i, j]).all() and np.isnan(m.qr[:, i, j]).all()
                continue
            np.testing.assert_allclose(m.qs[:, i, j], np.percentile(src[both, i, j], p))
            np.testing.assert_allclose(m.qr[:, i, j], np.percentile(ref[both, i, j], p))


def test_dctpls_fills_a_smooth_field():
    """A smooth space-time field with 40 % of its values removed: DCT-PLS restores them to
    within a few percent of the field's range, far better than the field's mean."""
    pytest.importorskip("pytesmo")
    t, y, x = np.meshgrid(np.arange(40), np.arange(16), np.arange(16), indexing="ij")
    field = (0.25 + 0.06 * np.sin(2 * np.pi * t / 40) * np.cos(np.pi * y / 16)
             + 0.03 * np.cos(np.pi * x / 16))
    rng = np.random.default_rng(3)
    holes = rng.random(field.shape) < 0.4
    holes[10:14, 4:9, 4:9] = True  # a block gap
    a = np.where(holes, np.nan, field)
    out = baselines.dctpls(a, smooth=None)
    err = out[holes] - field[holes]
    rmse = np.sqrt(np.mean(err ** 2))
    spread = np.sqrt(np.mean((field[holes] - np.nanmean(a)) ** 2))
    assert rmse < 0.003 and rmse < 0.1 * spread
    assert np.isnan(baselines.dctpls(np.full((3, 2, 2), np.nan))).all()
