"""The value part of the error model (model/errors_value.py): harmonic maps, the log-variance
fit and its factor, and the round trip through errors.json."""

from __future__ import annotations

import numpy as np
import pytest

from model import errors as er
from model import errors_value as ev


def test_harmonic_fit_recovers_a_seasonal_cycle_and_borrows_for_empty_pixels():
    rng = np.random.default_rng(0)
    t, h, w = 730, 3, 4
    doy = (np.arange(t) % 365) + 1
    ang = 2 * np.pi * doy / 365.25
    mean = rng.uniform(0.1, 0.3, (h, w))
    amp = rng.uniform(0.0, 0.05, (h, w))
    x = mean[None] + amp[None] * np.cos(ang)[:, None, None] + rng.normal(0, 0.01, (t, h, w))
    x[:, 0, 0] = np.nan  # never observed: borrows its neighbour's
    land = np.ones((h, w), bool)
    land[2, 3] = False
    coef = ev.fit_harmonic(x, doy, land, 2)
    assert coef.shape == (5, h, w)
    fitted = land.copy()
    fitted[0, 0] = False
    np.testing.assert_allclose(coef[0][fitted], mean[fitted], atol=0.002)
    np.testing.assert_allclose(coef[1][fitted], amp[fitted], atol=0.003)
    assert np.isnan(coef[:, 2, 3]).all()
    assert np.isfinite(coef[:, 0, 0]).all() and coef[0, 0, 0] in (coef[0, 0, 1], coef[0, 1, 0])
    # evaluated on one day (scalar) and on a series
    day = ev.eval_harmonic(coef, 100)
    series = ev.eval_harmonic(coef, np.array([100, 200]))
    assert day.shape == (h, w) and series.shape == (2, h, w)
    np.testing.assert_allclose(series[0], day)


def _synthetic(rng, n=60_000):
    """Pixel-days whose error SD grows with their anomaly in gap bin 1, not in bin 0."""
    h, w = 2, 3
    climate = {"lat": np.array([0.0, 0.25]), "lon": np.array([0.0, 0.25, 0.5]),
               "clim": np.zeros((5, h, w)), "error_ms": np.full((3, h, w), 0.0),
               "level_ref": 0.05}
    climate["clim"][0] = 0.2
    climate["error_ms"][0] = 0.05 ** 2
    est = 0.2 + rng.normal(0, 0.08, (n, h, w))
    gap = np.where(rng.random((n, h, w)) < 0.5, 0, 1)
    anomaly = np.abs(est - 0.2)
    sd_true = np.where(gap == 1, 0.01 + 0.5 * anomaly, 0.04)
    resid = rng.normal(0, sd_true)
    return climate, est, gap, resid, sd_true


def test_the_factor_ranks_errors_where_they_grow_with_the_anomaly_and_keeps_coverage():
    rng = np.random.default_rng(1)
    climate, est, gap, resid, sd_true = _synthetic(rng)
    x = ev.features(climate, est, np.arange(est.shape[0]) % 365 + 1, climate["lat"],
                    climate["lon"])
    base = np.full(resid.shape, 0.04)  # what a table would give: one SD a bin
    coefs = ev.fit_coefficients(gap.ravel(), x.reshape(-1, 2),
                                np.log(resid.ravel() ** 2 / base.ravel() ** 2), 2)
    sd = base * ev.factor(coefs, gap, x)
    for g in (0, 1):
        sel = gap == g
        # calibrated in each bin: mean(resid^2 / sd^2) about 1
        assert np.mean(resid[sel] ** 2 / sd[sel] ** 2) == pytest.approx(1.0, abs=0.05)
    # in bin 1 the SD follows the true SD (rank correlation, computed with plain numpy)
    sel = gap == 1
    ranks = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731
    assert np.corrcoef(ranks(sd[sel]), ranks(sd_true[sel]))[0, 1] > 0.95
    # in bin 0 nothing to rank: the anomaly's coefficient stays small
    assert abs(coefs[0, 1]) < 0.1 and coefs[1, 1] > 0.5
    # missing features (outside the grid, no estimate) leave the factor at 1
    assert (ev.factor(coefs, np.array([1]), np.full((1, 2), np.nan)) == 1.0).all()


def test_the_value_part_goes_through_errors_json_and_into_the_sd(tmp_path):
    rng = np.random.default_rng(2)
    climate, est, gap, resid, _ = _synthetic(rng, 4000)
    doy = np.arange(est.shape[0]) % 365 + 1
    feats = er.features(gap, 1, np.ones(gap.shape, bool), np.zeros(gap.shape),
                        np.full(gap.shape, 6))
    table = er.Table.fit([f.ravel() for f in feats], resid.ravel())
    x = ev.features(climate, est, doy, climate["lat"], climate["lon"])
    coefs = ev.fit_coefficients(feats[0].ravel(), x.reshape(-1, 2),
                                np.log(resid.ravel() ** 2 / table.sd(
                                    [f.ravel() for f in feats]) ** 2), len(er.GAP_EDGES))
    em = er.ErrorModel({"amsr2": table}, {}, {}, {"amsr2": (climate, coefs)})
    lat, lon = climate["lat"], climate["lon"]
    sd = em.sd("amsr2", feats, lat, lon, est, doy)
    np.testing.assert_allclose(sd, table.sd(feats) * ev.factor(coefs, feats[0], x))
    assert np.ptp(sd[gap == 1]) > 0.01  # it varies inside a gap bin
    # without an estimate, or far from the fit grid, the table's SD
    np.testing.assert_allclose(em.sd("amsr2", feats, lat, lon), table.sd(feats))
    np.testing.assert_allclose(em.sd("amsr2", feats, lat + 10, lon, est, doy), table.sd(feats))
    back = er.ErrorModel.load(em.save(tmp_path / "errors.json"))
    np.testing.assert_allclose(back.sd("amsr2", feats, lat, lon, est, doy), sd, rtol=1e-3)
