"""Comparisons: per-station series and rows, statuses, the network table and its summary."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_catalog import schema
from data_catalog.errors import EmptySelectionError
from validation import collocation as co
from validation import compare as cmp
from validation import metrics as mx
from validation import summary as sm
from validation.kits import KitSource, Product
from validation.sources import DemoSource


@pytest.fixture(autouse=True)
def _no_default_series_store(tmp_path, monkeypatch):
    """A series store someone built in data/series must not leak into these tests."""
    monkeypatch.setenv("GAPFILL_SERIES", str(tmp_path / "no-series.zarr"))


@pytest.fixture(scope="module")
def mock_world():
    # schema.mock_grid_dataset uses DatetimeIndex.dayofyear, deprecated in pandas 3.1
    # (reported to the owner of schema.py); not a warning of the code under test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.Pandas4Warning)
        ds = schema.mock_grid_dataset(ntime=90, seed=1)
    table, series = schema.mock_stations(ds, n=4, seed=2)
    return ds, table, series


def _source(mock_world, **kw) -> DemoSource:
    ds, table, series = mock_world
    return DemoSource(world=ds, stations=(table, series), compute_filled=False, **kw)


def _cell_truth(ds, table) -> dict[str, pd.Series]:
    out = {}
    for _, row in table.iterrows():
        m = co.nearest_cell(row["lat"], row["lon"], ds["lat"].values, ds["lon"].values)
        out[row["id"]] = ds[schema.TRUTH_SM][:, m.i, m.j].to_series().astype(float)
    return out


def test_rows_series_and_statuses_without_a_model(mock_world):
    ds, table, _ = mock_world
    src = _source(mock_world)
    tab = cmp.network_table(src)
    assert len(tab) == 4 * 5
    assert list(tab.columns[:len(sm.json_keys())]) == list(sm.json_keys())
    assert set(tab["series"]) == {"raw", "filled", "filled_gaps", "ascat", "truth"}
    assert (tab.loc[tab["series"].isin(["filled", "filled_gaps"]), "status"] == mx.NO_MODEL).all()
    truth = tab[tab["series"] == "truth"]
    assert (truth["status"] == mx.OK).all()
    # the mock stations are the cell truth plus 0.01 noise: R close to 1
    assert truth["r"].min() > 0.9
    assert truth["distance_km"].max() < 0.25 * 111 * 0.75
    # raw uses the observed days only: count them by hand for one station
    sid = table["id"].iloc[0]
    frame = cmp.station_timeseries(src, sid)
    m = co.nearest_cell(table["lat"].iloc[0], table["lon"].iloc[0], ds["lat"].values,
                        ds["lon"].values)
    observed = (ds[schema.GAP_MASK][:, m.i, m.j].values == schema.OBSERVED)
    expected = int((observed & frame["insitu"].notna().to_numpy()).sum())
    row = tab[(tab["station"] == sid) & (tab["series"] == "raw")].iloc[0]
    assert row["n"] == expected


def test_station_timeseries_is_daily_naive_utc(mock_world):
    src = _source(mock_world)
    sid = mock_world[1]["id"].iloc[1]
    frame = cmp.station_timeseries(src, sid)
    assert frame.index.tz is None and (frame.index == frame.index.normalize()).all()
    assert len(frame) == 90 and frame.index.name == "time"
    assert {"insitu", "insitu_count", "raw", "ascat", "truth"} <= set(frame.columns)
    assert frame.attrs["station"]["id"] == sid
    assert frame["insitu_count"].max() == 4  # two windows of two hourly values


def test_filled_series_given_and_gap_days(mock_world):
    ds, table, _ = mock_world
    filled = _cell_truth(ds, table)
    src = _source(mock_world, filled=filled)
    tab = cmp.network_table(src)
    # few gap days in 90 mock days: filled_gaps may lack pairs, everything else has them
    assert (tab.loc[tab["series"] != "filled_gaps", "status"] == mx.OK).all()
    assert set(tab["status"]) <= {mx.OK, mx.INSUFFICIENT_DATA}
    for _, g in tab.groupby("station"):
        n = g.set_index("series")["n"]
        # every day with a station value is either observed (raw) or a gap day
        assert n["raw"] + n["filled_gaps"] == n["filled"]
        r = g.set_index("series")["r"]
        assert r["filled"] == pytest.approx(r["truth"])
    summary = sm.summarize(tab, src)
    ok = tab[tab["status"] == mx.OK]
    med_raw = ok[ok["series"] == "raw"]["r"].median()
    med_filled = ok[ok["series"] == "filled"]["r"].median()
    change = summary["relative_change_median_r"]
    assert change["from"] == "raw" and change["to"] == "filled" and change["n_stations"] == 4
    assert change["value"] == pytest.approx((med_filled - med_raw) / med_raw)
    assert summary["series"]["filled"]["r"] == pytest.approx(med_filled)


def test_relative_change_known_value():
    rows = []
    for sid, r0, r1 in [("a", 0.5, 0.63), ("b", 0.4, 0.5), ("c", 0.6, 0.7)]:
        rows += [{"station": sid, "series": "raw", "r": r0, "status": mx.OK},
                 {"station": sid, "series": "filled", "r": r1, "status": mx.OK}]
    # an unpaired station does not enter the paired medians
    rows.append({"station": "d", "series": "filled", "r": 0.99, "status": mx.OK})
    rows.append({"station": "e", "series": "raw", "r": np.nan, "status": mx.INSUFFICIENT_DATA})
    tab = pd.DataFrame(rows)
    assert sm.relative_change(tab, "raw", "filled") == pytest.approx(0.26)
    assert np.isnan(sm.relative_change(tab, "raw", "truth"))


def test_short_and_empty_overlaps_give_statuses(mock_world):
    ds, table, series = mock_world
    sid = table["id"].iloc[0]
    short = cmp.Settings(start="2015-06-10", end="2015-06-14")
    rows = cmp.station_stats(_source(mock_world), sid, short).set_index("series")
    assert rows.loc["truth", "status"] == mx.INSUFFICIENT_DATA
    assert rows.loc["truth", "n"] == 5 and np.isnan(rows.loc["truth", "r"])
    rows = cmp.station_stats(_source(mock_world), sid,
                             cmp.Settings(start="2015-06-10", end="2015-06-14", min_n=4))
    assert rows.set_index("series").loc["truth", "status"] == mx.OK
    # a station whose every value is flagged: no pairs at all
    bad = dict(series)
    bad[sid] = series[sid].assign(flag="D03")
    rows = cmp.station_stats(DemoSource(world=ds, stations=(table, bad), compute_filled=False),
                             sid).set_index("series")
    assert (rows.loc[["raw", "ascat", "truth"], "status"] == mx.NO_OVERLAP).all()
    assert (rows.loc[["raw", "ascat", "truth"], "n"] == 0).all()


def test_unknown_station_and_depth_filter(mock_world):
    ds, table, series = mock_world
    src = _source(mock_world)
    with pytest.raises(EmptySelectionError, match="NOPE"):
        cmp.network_table(src, station_ids=["NOPE"])
    deep = table.copy()
    deep.loc[0, "depth_from"] = 0.2
    src = DemoSource(world=ds, stations=(deep, series), compute_filled=False)
    assert len(cmp.select_stations(src, cmp.Settings())) == 3
    assert len(cmp.select_stations(src, cmp.Settings(depth=(0.0, 0.3)))) == 4


def test_ascat_is_scaled_to_the_station(mock_world):
    tab = cmp.network_table(_source(mock_world))
    ascat = tab[tab["series"] == "ascat"]
    assert (ascat["scaling"] == "mean_std").all()
    assert ascat["bias"].abs().max() < 1e-12
    # percent of saturation unscaled would give an RMSE of tens
    assert ascat["rmse"].max() < 0.2
    cdf = cmp.network_table(_source(mock_world), cmp.Settings(ascat_scaling="cdf_match"))
    assert (cdf.loc[cdf["series"] == "ascat", "scaling"] == "cdf_match").all()


def test_json_rows_have_exactly_the_keys(mock_world):
    tab = cmp.network_table(_source(mock_world))
    rows = sm.json_rows(tab)
    assert all(tuple(r) == sm.json_keys() for r in rows)
    nomodel = [r for r in rows if r["status"] == mx.NO_MODEL]
    assert nomodel and all(r["r"] is None and r["n"] == 0 for r in nomodel)


def test_filled_at_points_matches_the_series_store(mock_world, tmp_path, monkeypatch):
    series_mod = pytest.importorskip("model.series")
    pytest.importorskip("torch")
    from model.points import filled_at_points

    ds, table, series = mock_world
    world = tmp_path / "world.zarr"
    ds.to_zarr(world, mode="w", consolidated=False)
    store = series_mod.build_series(tmp_path / "series.zarr", str(world),
                                    start="2015-06-01", end="2015-08-29",
                                    models="model.series:persistence_models",
                                    scheduler="synchronous", progress=False)
    days = pd.DatetimeIndex(ds["time"].values)
    m = series_mod.PersistenceModel()
    # the stations streamed as one batch, and each alone, by the series store's engine
    streamed = filled_at_points(ds, table.iloc[:2], days, models={1: m, 2: m})
    for k in range(2):
        alone = filled_at_points(ds, table.iloc[[k]], days, models={1: m, 2: m})
        sid = table["id"].iloc[k]
        np.testing.assert_array_equal(alone[sid].to_numpy(), streamed[sid].to_numpy())
    src = DemoSource(world=ds, stations=(table, series), series_store=store)
    tab = cmp.network_table(src, station_ids=table["id"].iloc[:2])
    assert (tab.loc[tab["series"] == "filled", "status"] == mx.OK).all()
    for sid, s in streamed.items():
        frame = cmp.station_timeseries(src, sid)
        np.testing.assert_allclose(frame["filled"].to_numpy(), s.to_numpy(), atol=1e-6)
        # where AMSR observed, the filled series is the observation
        obs = frame["raw"].notna()
        np.testing.assert_allclose(frame.loc[obs, "filled"], frame.loc[obs, "raw"], atol=1e-6)
        # the store's filled_sm_uncertainty comes along (NaN: a stand-in model has no
        # error model), and the triple-collocation columns are in every row
        assert "filled_sd" in frame and frame["filled_sd"].isna().all()
        rows = cmp.station_stats(src, sid, frame=frame).set_index("series")
        assert {"tc_sd", "tc_sd_insitu", "tc_n", "tc_status", "sd_mean"} <= set(rows.columns)
        assert rows.loc["filled", "tc_status"] in (mx.OK, mx.INSUFFICIENT_DATA, mx.NO_OVERLAP)
    # a fill function given to the source is used where there is no store
    given = DemoSource(world=ds, stations=(table, series),
                       fill=lambda w, t, d: filled_at_points(w, t, d, models={1: m, 2: m}))
    frame = cmp.station_timeseries(given, table["id"].iloc[0])
    np.testing.assert_allclose(frame["filled"].to_numpy(),
                               streamed[table["id"].iloc[0]].to_numpy(), atol=1e-6)
    assert given.filled_origin == "given fill function"
    # the default store ($GAPFILL_SERIES) is used when complete, ignored while unfinished
    monkeypatch.setenv("GAPFILL_SERIES", str(store))
    sid = table["id"].iloc[0]
    src = DemoSource(world=ds, stations=(table, series), compute_filled=False)
    assert cmp.station_stats(src, sid).set_index("series").loc["filled", "status"] == mx.OK
    assert "series store" in src.filled_origin
    (Path(str(store) + ".ledger") / "complete").unlink()
    src = DemoSource(world=ds, stations=(table, series), compute_filled=False)
    assert cmp.station_stats(src, sid).set_index("series").loc["filled", "status"] == \
        mx.NO_MODEL


def test_streamed_model_gives_sd_mean_as_a_store_does(mock_world, tmp_path, monkeypatch):
    """Without a series store, ``validate`` streams the model at the stations with its
    ``filled_sm_uncertainty`` (:func:`model.points.filled_sd_at_points`): ``sd_mean``."""
    from data_catalog import locations
    from model import errors

    if not (locations.checkpoint_dir() / "amsr2.pt").exists() or \
            not errors.path_for().exists():
        pytest.skip(f"no shipped checkpoints and error model in {locations.checkpoint_dir()}")
    from model.points import filled_sd_at_points

    ds, table, series = mock_world
    monkeypatch.setenv("GAPFILL_SERIES", str(tmp_path / "none.zarr"))  # no store
    sid = table["id"].iloc[0]
    src = DemoSource(world=ds, stations=(table, series))
    frame = cmp.station_timeseries(src, sid)
    assert "shipped checkpoints" in src.filled_origin
    days = pd.DatetimeIndex(ds["time"].values)
    _, sd = filled_sd_at_points(ds, table.iloc[[0]], days)
    assert sd[sid].notna().all() and (sd[sid] > 0).all()
    np.testing.assert_allclose(frame["filled_sd"].to_numpy(), sd[sid].to_numpy(), rtol=1e-6)
    rows = cmp.station_stats(src, sid, frame=frame).set_index("series")
    assert np.isfinite(rows.loc["filled", "sd_mean"]) and rows.loc["filled", "sd_mean"] > 0


# ---------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def hawaii_source(shared_data, tmp_path_factory):
    from data_catalog.readers.ismn import read_ismn
    from validation import kits

    root = shared_data / "hawaii"
    stations = read_ismn(root / "ismn", meta_path=tmp_path_factory.mktemp("ismn_meta"))
    products = [
        kits.folder_product("cci_passive", root / "cci_passive_v09.2", role="passive",
                            units="m3 m-3"),
        kits.folder_product("ascat_h119", root / "ascat_h119" / "data", role="active"),
        kits.folder_product("cci_gapfilled", root / "cci_gapfilled_v09.2", role="gap_filled",
                            units="m3 m-3"),
    ]
    return KitSource("hawaii", stations, products)


@pytest.mark.realdata
def test_hawaii_metrics_agree_with_pytesmo(hawaii_source):
    import pytesmo.metrics as pm
    from pytesmo.metrics.pairwise import pearson_r_ci
    from pytesmo.scaling import mean_std
    from pytesmo.time_series.anomaly import calc_anomaly
    from scipy import stats

    settings = cmp.Settings()
    table = select = cmp.select_stations(hawaii_source, settings)
    assert len(select) == 9
    checked = 0
    for sid in table["id"]:
        frame = cmp.station_timeseries(hawaii_source, sid, settings)
        rows = cmp.station_stats(hawaii_source, sid, settings, frame)
        for _, row in rows[rows["status"] == mx.OK].iterrows():
            meta = frame.attrs["series"][row["series"]]
            ref = frame[f"insitu_{row['series']}"] if meta["exact_times"] else frame["insitu"]
            ok = frame[row["series"]].notna() & ref.notna()
            x = frame.loc[ok, row["series"]].to_numpy(float)
            y = ref[ok].to_numpy(float)
            assert row["n"] == len(x)
            assert row["r"] == pytest.approx(pm.pearson_r(x, y), abs=1e-6)
            assert row["rho"] == pytest.approx(pm.spearman_r(x, y), abs=1e-6)
            xs = mean_std(x, y) if meta["saturation"] else x
            assert row["rmse"] == pytest.approx(pm.rmsd(xs, y), abs=1e-6)
            assert row["ubrmse"] == pytest.approx(pm.ubrmsd(xs, y), abs=1e-6)
            assert row["bias"] == pytest.approx(pm.bias(xs, y), abs=1e-6)
            lo, hi = pearson_r_ci(x, y, pm.pearson_r(x, y))
            assert (row["r_ci_lower"], row["r_ci_upper"]) == pytest.approx((lo, hi), abs=1e-6)
            assert row["p_r"] == pytest.approx(stats.pearsonr(x, y).pvalue, rel=1e-6, abs=1e-12)
            if not meta["parent"]:
                # each series' 35-day moving-average anomalies, then the same pairs
                ax = calc_anomaly(frame[row["series"]].dropna(), window_size=35)
                ay = calc_anomaly(ref.dropna(), window_size=35)
                pairs = frame.index[ok]
                assert row["r_anom"] == pytest.approx(
                    pm.pearson_r(ax[pairs].to_numpy(), ay[pairs].to_numpy()), abs=1e-6)
            checked += 1
    assert checked >= 20


@pytest.mark.realdata
def test_hawaii_network_table(hawaii_source):
    tab = cmp.network_table(hawaii_source)
    assert set(tab["series"]) == {"cci_passive", "ascat_h119", "cci_gapfilled",
                                  "cci_gapfilled_gaps"}
    ascat = tab[tab["series"] == "ascat_h119"]
    assert (ascat["status"] == mx.OK).all() and (ascat["scaling"] == "mean_std").all()
    # the README: daily correlations 0.1 to 0.7 depending on the station
    assert 0.1 < ascat["r"].median() < 0.7
    # CCI PASSIVE has no retrievals at some mountain grid points: a status, not an error
    passive = tab[tab["series"] == "cci_passive"]
    assert set(passive["status"]) <= {mx.OK, mx.NO_DATA}
    assert (passive["status"] == mx.OK).sum() >= 3
    summary = sm.summarize(tab, hawaii_source)
    assert summary["relative_change_median_r"]["from"] == "cci_passive"
    assert summary["relative_change_median_r"]["to"] == "cci_gapfilled"


def test_cell_mean_of_stations_in_one_cell(mock_world):
    ds, table, series = mock_world
    twin = table.iloc[[0]].copy()
    twin["id"] = "TWIN"
    twin["lat"] += 0.01
    both = pd.concat([table, twin], ignore_index=True)
    sers = dict(series)
    sers["TWIN"] = series[table["id"].iloc[0]].assign(sm=lambda d: d["sm"] + 0.02)
    src = DemoSource(world=ds, stations=(both, sers), compute_filled=False)
    groups = cmp.cell_groups(src, cmp.Settings(), both["id"].tolist())
    assert [table["id"].iloc[0], "TWIN"] in groups and len(groups) == 4
    tab, frames = cmp.network_frames(src, cell_mean=True)
    joined = f"{table['id'].iloc[0]}+TWIN"
    assert joined in frames and len(frames) == 4
    one = cmp.station_timeseries(src, table["id"].iloc[0])
    cell = frames[joined]
    # the twin reads 0.02 wetter: the cell mean is 0.01 above the first station
    np.testing.assert_allclose((cell["insitu"] - one["insitu"]).dropna(), 0.01, atol=1e-9)
    assert (cell["insitu_count"] == 2 * one["insitu_count"]).all()
    np.testing.assert_array_equal(cell["truth"], one["truth"])
    assert set(tab["station"]) == set(frames)


def test_streaming_a_real_network_in_one_batch_equals_one_by_one(mock_world, tmp_path):
    torch = pytest.importorskip("torch")
    from model.config import ModelConfig
    from model.points import filled_at_points
    from model.tensors import NormStats
    from model.wrapper import GapFiller

    ds, table, series = mock_world
    torch.manual_seed(0)
    net = GapFiller(ModelConfig(filters=[4, 4], head_filters=4),
                    NormStats(0.25, 0.05, 50.0, 20.0), {"sensor": "amsr2", "lookback": 4})
    ckpt = tmp_path / "net.pt"
    net.save(ckpt)
    days = pd.DatetimeIndex(ds["time"].values)[10:70]
    batch = filled_at_points(ds, table, days, ckpt, radius=3, stream_days=16)
    threads = torch.get_num_threads()
    for k, sid in enumerate(table["id"]):
        alone = filled_at_points(ds, table.iloc[[k]], days, ckpt, radius=3, stream_days=16)
        np.testing.assert_allclose(batch[sid].to_numpy(), alone[sid].to_numpy(), atol=1e-5)
        assert batch[sid].index.equals(days) and batch[sid].notna().all()
    assert torch.get_num_threads() == threads  # the one-thread setting is restored
    src = DemoSource(world=ds, stations=(table, series), filled=batch)
    frame = cmp.station_timeseries(src, table["id"].iloc[0], cmp.Settings(
        start=str(days[0].date()), end=str(days[-1].date())))
    obs = frame["raw"].notna()
    np.testing.assert_allclose(frame.loc[obs, "filled"], frame.loc[obs, "raw"], atol=1e-6)
    assert frame.loc[~obs, "filled"].notna().all()


def _kit_fixture():
    """One station and stand-in product readers in the canonical point form."""
    from data_catalog.errors import EmptySelectionError

    hours = pd.date_range("2018-01-01", periods=60 * 24, freq="h", tz="UTC", name="time")
    t = np.arange(len(hours)) / 24.0
    sm = 0.25 + 0.08 * np.sin(2 * np.pi * t / 20.0)
    table = pd.DataFrame([{"id": "NET.ST", "network": "NET", "name": "ST", "lat": 19.8,
                           "lon": -155.3, "depth_from": 0.05, "depth_to": 0.05,
                           "sensor": "probe"}])
    series = {"NET.ST": pd.DataFrame({"sm": sm, "flag": "G"}, index=hours)}
    days = pd.date_range("2018-01-01", periods=60, freq="D", tz="UTC", name="time")
    daily = pd.Series(sm, hours).resample("D").mean().to_numpy()
    rng = np.random.default_rng(0)
    attrs = {"lat": 19.875, "lon": -155.375, "distance_km": 9.4, "units": "m3 m-3"}

    def passive(lat, lon, *, start=None, end=None):
        sensor = np.where(np.arange(60) % 3 == 0, 256, 32 | 512)  # every third day: no AMSR
        df = pd.DataFrame({"sm": daily + 0.01 * rng.standard_normal(60), "sensor": sensor},
                          index=days)
        df.attrs = dict(attrs)
        return df

    def gapfilled(lat, lon, *, start=None, end=None):
        df = pd.DataFrame({"sm": daily + 0.02, "gapmask": np.where(np.arange(60) < 20, 0, 1)},
                          index=days)
        df.attrs = dict(attrs)
        return df

    def ascat(lat, lon, *, start=None, end=None):
        times = days + pd.Timedelta("19h40min")  # 09:20 local solar time at -155.3
        df = pd.DataFrame({"sm": 100 * np.interp(times.asi8, hours.asi8, sm) / 0.5},
                          index=times)
        df.attrs = {**attrs, "units": "percent of saturation", "distance_km": 3.0}
        return df

    def broken(lat, lon, *, start=None, end=None):
        raise EmptySelectionError("grid point 1 has no valid sm at all", "/x/0165.nc", "sm")

    products = [Product(n, f, role) for n, f, role in (("cci_passive", passive, "passive"),
                                                        ("ascat_h119", ascat, "active"),
                                                        ("cci_gapfilled", gapfilled,
                                                         "gap_filled"),
                                                        ("c3s_active", broken, "active"))]
    return (table, series), products


def test_kit_source_rules_without_real_data():
    stations, products = _kit_fixture()
    src = KitSource("kit", stations, products)
    assert src.change_pair == ("cci_passive", "cci_gapfilled")
    frame = cmp.station_timeseries(src, "NET.ST")
    rows = cmp.station_stats(src, "NET.ST", frame=frame).set_index("series")
    assert list(rows.index) == ["cci_passive", "ascat_h119", "cci_gapfilled",
                                "cci_gapfilled_gaps", "c3s_active"]
    # only the days whose sensor bits include AMSR2 (32) are compared
    assert rows.loc["cci_passive", "n"] == 40 and rows.loc["cci_passive", "r"] > 0.95
    # gap days of the peer product: gapmask == 0
    assert rows.loc["cci_gapfilled_gaps", "n"] == 20 and rows.loc["cci_gapfilled", "n"] == 60
    assert rows.loc["cci_gapfilled", "bias"] == pytest.approx(0.02, abs=1e-3)
    # ASCAT: matched around its own observation times, scaled from percent to the station
    assert frame.attrs["series"]["ascat_h119"]["exact_times"]
    assert rows.loc["ascat_h119", "scaling"] == "mean_std"
    assert rows.loc["ascat_h119", "r"] > 0.99 and rows.loc["ascat_h119", "rmse"] < 0.01
    assert (frame["insitu_ascat_h119_count"] == 2).all()
    assert rows.loc["ascat_h119", "distance_km"] == 3.0
    # a reader that finds nothing gives a status and a note, not an exception
    assert rows.loc["c3s_active", "status"] == mx.NO_DATA
    assert "no valid sm" in rows.loc["c3s_active", "note"]
    one = KitSource("kit", stations, products[1:2])
    assert one.change_pair is None
    assert sm.summarize(cmp.network_table(one), one)["relative_change_median_r"] is None
