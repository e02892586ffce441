"""Stratified evaluation: stratum assignment, hold-outs, metrics, and a small stratified
evaluation on a tiny demo world whose figures are recomputed here by plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model import strata as st

TINY_WORLD = dict(west=-96.0, south=30.0, east=-90.0, north=36.0, start="2013-01-01",
                  end="2014-12-31", n_stations=2, seed=3)


def brute_days(obs: np.ndarray, t: int, i: int, j: int) -> int:
    """Days from ``t`` to the nearest observed day of pixel ``(i, j)``, by scanning."""
    best = st.NEVER
    for u in range(obs.shape[0]):
        if obs[u, i, j]:
            best = min(best, abs(u - t))
    return best


def bin_of(days: int) -> str:
    if days == 1:
        return "1"
    if days <= 3:
        return "2-3"
    if days <= 10:
        return "4-10"
    if days <= 30:
        return "11-30"
    return ">30 or never"


def test_days_to_nearest_on_a_hand_made_mask():
    col = np.array([0, 1, 0, 0, 0, 1, 0, 0], bool)
    assert st.days_to_nearest(col).tolist() == [1, 0, 1, 2, 1, 0, 1, 2]
    rng = np.random.default_rng(0)
    obs = rng.random((45, 3, 4)) < 0.15
    obs[:, 0, 0] = False                  # never observed
    obs[:, 0, 1] = False
    obs[3, 0, 1] = True                   # once, early
    obs[:, 2, 3] = True                   # always
    d = st.days_to_nearest(obs)
    assert d.dtype == np.int32
    for t in range(45):
        for i in range(3):
            for j in range(4):
                assert d[t, i, j] == brute_days(obs, t, i, j), (t, i, j)
    assert (d[:, 0, 0] == st.NEVER).all() and d[44, 0, 1] == 41


def test_gap_day_bins():
    assert [st.gap_day_label(k) for k in (1, 2, 3, 4, 10, 11, 30, 31, 400, st.NEVER)] == [
        "1", "2-3", "2-3", "4-10", "4-10", "11-30", "11-30", ">30 or never",
        ">30 or never", ">30 or never"]
    with pytest.raises(ValueError):
        st.gap_day_label(0)


def test_spatial_blocks_are_observed_land_squares_apart():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    valid = rng.random((100, 40, 50)) < 0.6
    valid[:, 10:20, 10:20] = False        # permanently unobserved (RFI, forest)
    land = np.ones((40, 50), bool)
    land[:, 40:] = False                  # sea
    blocks = st.spatial_blocks(valid, land, np.random.default_rng(2), size=6, n=8)
    lab, k = ndimage.label(blocks)
    assert k == 8
    for c in range(1, k + 1):
        ii, jj = np.nonzero(lab == c)
        assert ii.max() - ii.min() + 1 == 6 and jj.max() - jj.min() + 1 == 6
        assert ii.size == 36  # a full square: blocks never touch (else they would merge)
    assert land[blocks].all()
    assert (valid.mean(0)[blocks] >= st.MIN_BLOCK_OBS_FRACTION).all()
    # no room: no blocks
    assert not st.spatial_blocks(valid[:, :5, :5], land[:5, :5], rng).any()


def test_temporal_blocks_are_long_windows_of_test_days():
    test = np.zeros(730, bool)
    test[365:] = True
    tb = st.temporal_blocks(test, np.random.default_rng(3), length=20, n=4)
    assert not tb[:365].any()
    edges = np.flatnonzero(np.diff(np.r_[0, tb.astype(int), 0]))
    runs = edges.reshape(-1, 2)
    assert len(runs) == 4 and ((runs[:, 1] - runs[:, 0]) == 20).all()
    quarters = np.array_split(np.arange(365, 730), 4)
    for (a, b), q in zip(runs, quarters, strict=True):
        assert q[0] <= a and b - 1 <= q[-1]


def test_pixel_r_is_the_median_of_per_pixel_correlations():
    rng = np.random.default_rng(4)
    pix = rng.integers(0, 7, 400)
    ref = rng.normal(0.3, 0.05, 400)
    pred = ref + rng.normal(0, 0.03, 400) * (1 + pix)
    pred[pix == 6] = 0.2                  # a constant series has no correlation
    r, n = st.pixel_r(pred, ref, pix)
    want = []
    for p in range(7):
        m = pix == p
        if m.sum() >= st.MIN_PIXEL_DAYS and pred[m].std() > 1e-6:
            want.append(np.corrcoef(pred[m], ref[m])[0, 1])
    assert n == len(want) == 6
    assert r == pytest.approx(float(np.median(want)), abs=1e-12)


def test_score_names_the_best_baseline_on_paired_samples():
    rng = np.random.default_rng(5)
    ref = rng.normal(0.3, 0.05, 1000)
    pix = rng.integers(0, 20, 1000)
    first = np.arange(1000) < 600
    preds = {"convlstm": ref + 0.01, "linear": ref + 0.02,
             # better than the ConvLSTM where it has values, on 60 % of the samples
             "climatology": np.where(first, ref + 0.008, np.nan),
             # better still, but on 20 % only: not named
             "ascat_cdf": np.where(np.arange(1000) < 200, ref + 0.001, np.nan)}
    s = st.score(preds, ref, pix)
    m = s["methods"]
    assert m["linear"]["convlstm_ratio"] == pytest.approx(0.5)
    assert m["climatology"]["convlstm_ratio"] == pytest.approx(1.25)
    assert m["ascat_cdf"]["convlstm_ratio"] == pytest.approx(10.0)
    assert s["best_baseline"] == "climatology" and s["convlstm_over_best"] == pytest.approx(1.25)
    assert m["climatology"]["coverage"] == pytest.approx(0.6)
    assert m["climatology"]["rmse"] == pytest.approx(0.008)
    assert m["linear"]["bias"] == pytest.approx(0.02)
    small = st.score({k: v[:50] for k, v in preds.items()}, ref[:50], pix[:50])
    assert small["best_baseline"] is None and math.isnan(small["convlstm_over_best"])


def test_fit_calibration_recovers_gain_and_offset_and_borrows_for_unobserved():
    rng = np.random.default_rng(6)
    truth = rng.uniform(0.05, 0.45, (300, 5, 6))
    gain = np.linspace(0.9, 1.1, 30).reshape(5, 6)
    offset = np.linspace(-0.02, 0.03, 30).reshape(5, 6)
    obs = offset + gain * truth + rng.normal(0, 0.005, truth.shape)
    obs[:, 4, 5] = np.nan                 # never observed: borrows its neighbour's
    land = np.ones((5, 6), bool)
    land[0, 0] = False
    g, o, info = st.fit_calibration(truth, obs, land)
    fitted = land.copy()
    fitted[4, 5] = False
    np.testing.assert_allclose(g[fitted], gain[fitted], atol=0.01)
    np.testing.assert_allclose(o[fitted], offset[fitted], atol=0.004)
    assert np.isnan(g[0, 0]) and g[4, 5] in (g[3, 5], g[4, 4])
    assert info["fitted_pixels"] == 28 and info["borrowed_pixels"] == 1


# ------------------------------------------------ a small stratified evaluation, recomputed
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny demo world (2013-2014, 24 x 24 cells), a stand-in model, and the strata of
    its 2014 test year with the runs they were computed from."""
    import torch

    from data_catalog.demo import build_demo_world, open_demo_world
    from model.config import ModelConfig
    from model.evaluate import hidden_days_run, stratified
    from model.tensors import NormStats
    from model.testset import prepare_test_set
    from model.wrapper import GapFiller

    path = build_demo_world(tmp_path_factory.mktemp("tiny") / "world.zarr", progress=False,
                            **TINY_WORLD)
    ds = open_demo_world(path)
    torch.manual_seed(0)
    model = GapFiller(ModelConfig(filters=[4], head_filters=4),
                      NormStats(0.25, 0.05, 50.0, 20.0),
                      {"sensor": "amsr2", "lookback": 4,
                       "config": {"train_years": [2013, 2013], "test_years": [2014, 2014]}})
    ts = prepare_test_set(ds, "amsr2", 2014, [2013, 2013])
    # a fixed DCT-PLS smoothing: a third of the time of the GCV search (tested on its own)
    hidden = hidden_days_run(model, ts, seed=0, dct_smooth=1.0)
    out, runs = stratified(model, ts, hidden, seed=0, dct_smooth=1.0)
    return ds, ts, out, {name: (run, mask) for run in runs for name, mask in run.scored.items()}


def _loop_strata(ts, run, mask, ref):
    """Per gap-day bin and method: (rmse, median per-pixel R, n) by plain loops."""
    t_idx, i_idx, j_idx = np.nonzero(mask)
    obs_days = {}
    groups: dict[str, list[tuple[int, int, int]]] = {}
    for t, i, j in zip(t_idx.tolist(), i_idx.tolist(), j_idx.tolist(), strict=True):
        if (i, j) not in obs_days:
            obs_days[(i, j)] = np.flatnonzero(run.vin[:, i, j])
        od = obs_days[(i, j)]
        days = int(np.abs(od - t).min()) if od.size else st.NEVER
        groups.setdefault(bin_of(days), []).append((t, i, j))
    res = {}
    for label, cells in groups.items():
        res[label] = {}
        for m, pred in run.preds.items():
            sq, by_pixel = [], {}
            for t, i, j in cells:
                p, y = float(pred[t, i, j]), float(ref[t, i, j])
                if math.isfinite(p) and math.isfinite(y):
                    sq.append((p - y) ** 2)
                    by_pixel.setdefault((i, j), []).append((p, y))
            rs = []
            for pairs in by_pixel.values():
                a = np.array(pairs)
                if len(a) >= st.MIN_PIXEL_DAYS and a[:, 0].std() > 1e-6 and a[:, 1].std() > 1e-6:
                    rs.append(np.corrcoef(a[:, 0], a[:, 1])[0, 1])
            res[label][m] = (math.sqrt(sum(sq) / len(sq)) if sq else math.nan,
                             float(np.median(rs)) if rs else math.nan, len(sq))
    return res


@pytest.mark.slow
@pytest.mark.parametrize("scheme, ref_name", [
    ("natural_gaps", "calibrated_truth"), ("hidden_days", "observation"),
    ("spatial_blocks", "calibrated_truth"), ("temporal_blocks", "observation")])
def test_tiny_stratified_evaluation_matches_a_loop_recomputation(tiny, scheme, ref_name):
    _, ts, out, runs = tiny
    run, mask = runs[scheme]
    ref = ts.calibrated if ref_name == "calibrated_truth" else ts.observation
    want = _loop_strata(ts, run, mask, ref)
    got = out[scheme]["gap_days"]
    assert sum(c["n"] for c in got.values()) == int(mask.sum()) == out[scheme]["n"]
    for label, _, _ in st.GAP_DAY_BINS:
        cell = got[label][ref_name]
        if label not in want:
            assert got[label]["n"] == 0
            continue
        for m, (rmse, r, n) in want[label].items():
            g = cell["methods"][m]
            assert g["n"] == n, (label, m)
            if n:
                assert g["rmse"] == pytest.approx(rmse, rel=1e-6), (label, m)
            if math.isfinite(r):
                assert g["r"] == pytest.approx(r, abs=1e-9), (label, m)
            else:
                assert math.isnan(g["r"]), (label, m)


@pytest.mark.slow
def test_tiny_stratified_evaluation_hold_outs_categories_and_baselines(tiny):
    from data_catalog import schema

    _, ts, out, runs = tiny
    per = ts.per
    # the natural-gap run sees every observation; its categories are the gap codes
    nat_run, nat = runs["natural_gaps"]
    assert (nat_run.vin == per.valid).all()
    for code, name in st.CATEGORIES.items():
        assert out["natural_gaps"]["gap_category"][name]["n"] == int((nat & (ts.gap == code)).sum())
    # spatial blocks: observed land cells hidden the whole test year, >= 5 x 5
    blk_run, sp = runs["spatial_blocks"]
    cells = sp.any(0)
    assert cells.sum() >= 25 and per.land[cells].all()
    assert not blk_run.vin[ts.test_days][:, cells].any()
    assert blk_run.vin[~ts.test_days][:, cells].any()  # the year before stays in the input
    # temporal blocks: no AMSR at all for >= 15 consecutive test days
    _, tb = runs["temporal_blocks"]
    off = ts.test_days & ~blk_run.vin.reshape(len(per.time), -1).any(1)
    runs_len = np.diff(np.flatnonzero(np.diff(np.r_[0, off.astype(int), 0])))[::2]
    assert len(runs_len) == st.N_TEMPORAL_BLOCKS and (runs_len >= 15).all()
    assert tb.any() and not (tb & sp).any()
    # the hold-outs make long gaps; the natural gaps have all lengths
    assert out["spatial_blocks"]["gap_days"][">30 or never"]["share"] > 0.5
    assert out["temporal_blocks"]["median_gap_days"] >= 4
    assert all(out["natural_gaps"]["gap_days"][lab]["n"] > 0 for lab, _, _ in st.GAP_DAY_BINS)
    # the calibrated truth is each pixel's own least-squares line of obs on truth (2013)
    fit = ts.per.time.year == 2013
    for i, j in ((3, 4), (12, 20), (20, 2)):
        ok = per.valid[fit, i, j]
        b, a = np.polyfit(per.truth[fit, i, j][ok], per.amsr[fit, i, j][ok], 1)
        np.testing.assert_allclose(ts.calibrated[:, i, j], a + b * per.truth[:, i, j],
                                   atol=1e-5)
    # linear in time, recomputed per pixel from the run's input
    for i, j in ((5, 5), (15, 9)):
        ok = nat_run.vin[:, i, j]
        np.testing.assert_allclose(nat_run.preds["linear"][:, i, j],
                                   np.interp(np.arange(ok.size), np.flatnonzero(ok),
                                             per.amsr[ok, i, j]), atol=1e-6)
    # baselines have skill on this world: a hidden one-day gap is closer to its neighbours
    # than to the climatology (the persistent retrieval error is shared), and DCT-PLS,
    # which smooths the retrieval noise, beats linear interpolation against the truth.
    # (Demo world v4's errors under this south-eastern world's vegetation are as large as
    # the soil moisture anomalies: against the calibrated truth, climatology and ASCAT
    # matched to AMSR may beat interpolation, as they can in real dense-vegetation cells.)
    one = out["hidden_days"]["gap_days"]["1"]["observation"]["methods"]
    assert one["linear"]["rmse"] < one["climatology"]["rmse"]
    assert one["dctpls"]["rmse"] < one["climatology"]["rmse"]
    for scheme in ("natural_gaps", "hidden_days"):
        one = out[scheme]["gap_days"]["1"]["calibrated_truth"]["methods"]
        assert one["dctpls"]["rmse"] < one["linear"]["rmse"]
        w = out[scheme]["ascat"]["with_ascat"]["calibrated_truth"]["methods"]
        assert w["ascat_cdf"]["coverage"] > 0.5  # pixels without a CDF fit stay empty
        assert out[scheme]["ascat"]["without_ascat"]["calibrated_truth"]["methods"][
            "ascat_cdf"]["n"] == 0
    assert out["test_year_role"] == "held out" and out["calibration"]["borrowed_pixels"] >= 0
    assert schema.SENSOR_AMSR2 == int(per.sensor[-1])


def test_year_role_and_the_no_ascat_year_config():
    from model.config import CONFIG_DIR, TransferConfig
    from model.evaluate import no_ascat_year_of, year_role

    cfg = {"train_years": [2003, 2008], "val_years": [2009, 2009]}
    assert year_role(2005, cfg) == "training"
    assert year_role(2009, cfg) == "validation"
    assert year_role(2010, cfg) == "held out"
    assert year_role(2005, cfg | {"exclude_years": [2005]}) == "held out"
    assert year_role(2004, cfg | {"exclude_years": [2005]}) == "training"
    shipped = TransferConfig.from_yaml(CONFIG_DIR / "amsre.yml")  # 2005 held out of training
    assert year_role(shipped.no_ascat_test_year, shipped.to_dict()) == "held out"
    assert no_ascat_year_of({}) == TransferConfig.no_ascat_test_year == 2005
    assert no_ascat_year_of({"no_ascat_test_year": 2004}) == 2004
    assert no_ascat_year_of({"no_ascat_test_year": None}) is None
    assert TransferConfig.from_yaml(CONFIG_DIR / "amsre.yml").no_ascat_test_year == 2005
