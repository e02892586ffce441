"""Calibration figures of filled_sm_uncertainty, recomputed independently."""

from __future__ import annotations

import numpy as np
import pytest

from model import calibration as cal


def _independent(err, sd):
    a = np.abs(err)
    ranks = lambda x: np.argsort(np.argsort(x)).astype(float)  # noqa: E731 (no ties here)
    rs, ra = ranks(sd), ranks(a)
    rho = np.corrcoef(rs, ra)[0, 1]
    return (np.count_nonzero(a <= sd) / a.size, np.count_nonzero(a <= 2 * sd) / a.size,
            np.sqrt(np.sum(a**2) / np.sum(sd**2)), rho)


def test_gaussian_errors_with_their_true_sd_meet_every_target():
    rng = np.random.default_rng(3)
    sd = rng.uniform(0.02, 0.08, 50_000)
    err = rng.normal(0, sd)
    f = cal.figures(err, sd)
    w1, w2, ratio, rho = _independent(err, sd)
    assert f["within_1sd"] == pytest.approx(w1, abs=1e-12)
    assert f["within_2sd"] == pytest.approx(w2, abs=1e-12)
    assert f["rms_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert f["spearman"] == pytest.approx(rho, abs=1e-9)
    assert abs(f["within_1sd"] - 0.683) < 0.01 and abs(f["within_2sd"] - 0.954) < 0.01
    assert all(f["meets"].values()), f


def test_a_halved_sd_fails_the_coverage_targets():
    rng = np.random.default_rng(4)
    sd = rng.uniform(0.02, 0.08, 20_000)
    err = rng.normal(0, sd)
    f = cal.figures(err, sd / 2)
    assert not f["meets"]["within_1sd"] and not f["meets"]["rms_ratio"]
    assert f["rms_ratio"] == pytest.approx(2.0, rel=0.03)


def test_reliability_bins_follow_the_sd_deciles():
    rng = np.random.default_rng(5)
    sd = rng.uniform(0.01, 0.1, 10_000)
    err = rng.normal(0, sd)
    rel = cal.reliability(err, sd)
    assert len(rel) == cal.RELIABILITY_BINS and sum(b["n"] for b in rel) == sd.size
    x = np.array([b["sd_rms"] for b in rel])
    y = np.array([b["error_rms"] for b in rel])
    assert (np.diff(x) > 0).all()
    np.testing.assert_allclose(y, x, rtol=0.1)  # calibrated: on the 1:1 line
    first = np.sort(sd)[:1000]
    assert rel[0]["sd_rms"] == pytest.approx(np.sqrt(np.mean(first**2)))


def test_markdown_and_figure_from_a_report(tmp_path):
    rng = np.random.default_rng(6)
    sd = rng.uniform(0.02, 0.08, 5000)
    err = rng.normal(0, sd)
    f = cal.figures(err, sd)
    strata = {"amsr2_2022": {cal.KEY: {cal.OBSERVED: f, "natural_gaps": {"all": f, "1": f},
                                       "reliability": cal.reliability(err, sd)}}}
    md = "\n".join(cal.markdown_lines(strata))
    assert "| amsr2_2022 | observed | – | 5000 |" in md and "natural gaps | 1 d" in md
    png = cal.reliability_figure(strata, tmp_path / "r.png")
    assert png.stat().st_size > 1000
