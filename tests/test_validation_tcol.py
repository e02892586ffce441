"""Triple collocation at stations (validation/tcol.py), checked against pytesmo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from validation import metrics as mx
from validation import tcol


def _triplet(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = 0.25 + 0.06 * np.sin(np.arange(n) / 20) + rng.normal(0, 0.03, n)
    x = t + rng.normal(0, 0.02, n)              # in situ, error SD 0.02
    y = 200 * t - 10 + rng.normal(0, 6.0, n)    # ASCAT-like, %: error 6 / 200 = 0.03 scaled
    z = 0.9 * t + 0.02 + rng.normal(0, 0.036, n)  # filled: 0.036 / 0.9 = 0.04 scaled
    return x, y, z, (0.02, 0.03, 0.04)


def test_known_error_variances_are_recovered_and_agree_with_pytesmo():
    import pytesmo.metrics as pm

    x, y, z, truth = _triplet(5000)
    res = tcol.tcol(x, y, z)
    np.testing.assert_allclose(res["err_sd"], truth, rtol=0.10)
    snr, err, beta = pm.tcol_metrics(x, y, z)
    np.testing.assert_allclose(res["err_sd"], err, atol=1e-6)
    np.testing.assert_allclose(res["snr_db"], snr, atol=1e-6)
    np.testing.assert_allclose(res["beta"], beta, atol=1e-6)


def _frame(n_common: int) -> pd.DataFrame:
    x, y, z, _ = _triplet(400, seed=1)
    idx = pd.date_range("2015-01-01", periods=400, freq="D")
    f = pd.DataFrame({"insitu": x, "ascat": y, "filled": z, "raw": z}, index=idx)
    f.loc[f.index[n_common:], "ascat"] = np.nan
    f.attrs["series"] = {"raw": {"status": None, "saturation": False, "parent": None},
                         "filled": {"status": None, "saturation": False, "parent": None},
                         "ascat": {"status": None, "saturation": True, "parent": None}}
    return f


def test_station_triplet_prefers_the_filled_series_and_says_when_data_are_short():
    ok = tcol.station_tcol(_frame(300), "insitu", "filled")
    assert ok["status"] == mx.OK and ok["n"] == 300
    assert set(ok["members"]) == {"ascat", "filled"} and ok["insitu"] > 0
    short = tcol.station_tcol(_frame(60), "insitu", "filled")
    assert short["status"] == mx.INSUFFICIENT_DATA and short["n"] == 60
    assert np.isnan(short["members"]["filled"])
    anti = _frame(300)
    anti["filled"] = -anti["filled"]  # negative covariances: no solution, a status
    assert tcol.station_tcol(anti, "insitu", "filled")["status"] == tcol.NO_SOLUTION
    f = _frame(300)
    f.attrs["series"]["ascat"]["status"] = mx.NO_DATA
    assert tcol.station_tcol(f, "insitu", "filled")["status"] == tcol.NO_TRIPLET


def test_the_metrics_are_registered():
    assert {"tc_sd", "tc_sd_insitu", "tc_n"} <= set(mx.METRICS)
    assert "tc_sd" in mx.names(summary=True)


@pytest.mark.realdata
def test_hawaii_triplet_agrees_with_pytesmo(shared_data, tmp_path):
    import pytesmo.metrics as pm

    from data_catalog.readers.ismn import read_ismn
    from validation import compare as cmp
    from validation import kits

    root = shared_data / "hawaii"
    stations = read_ismn(root / "ismn", meta_path=tmp_path / "meta")
    products = [kits.folder_product("ascat_h119", root / "ascat_h119" / "data", role="active"),
                kits.folder_product("cci_gapfilled", root / "cci_gapfilled_v09.2",
                                    role="gap_filled", units="m3 m-3")]
    src = kits.KitSource("hawaii", stations, products)
    settings = cmp.Settings()
    checked = 0
    for sid in cmp.select_stations(src, settings)["id"]:
        frame = cmp.station_timeseries(src, sid, settings)
        rows = cmp.station_stats(src, sid, settings, frame).set_index("series")
        tc = tcol.station_tcol(frame, "insitu", "filled")
        if tc["status"] != mx.OK:
            assert rows.loc["ascat_h119", "tc_status"] in (mx.INSUFFICIENT_DATA, mx.NO_OVERLAP,
                                                           tcol.NO_SOLUTION)
            continue
        v = frame[["insitu", "ascat_h119", "cci_gapfilled"]].dropna().to_numpy(float)
        _, err, _ = pm.tcol_metrics(*v.T)
        assert rows.loc["ascat_h119", "tc_sd"] == pytest.approx(err[1], abs=1e-6)
        assert rows.loc["cci_gapfilled", "tc_sd"] == pytest.approx(err[2], abs=1e-6)
        assert rows.loc["cci_gapfilled", "tc_sd_insitu"] == pytest.approx(err[0], abs=1e-6)
        checked += 1
    assert checked >= 1
