"""The rest of the pipeline on an assembled world: ``predict``, ``build-series``,
``validate``, ``train``, ``transfer`` and ``evaluate`` with ``--world`` (a store or a
catalog ``world`` source), periods as days, and the checkpoint fit checks
(:mod:`model.fit`) that refuse a model on data it does not fit (one line, exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from data_catalog import locations, schema
from data_catalog.assemble import assemble
from data_catalog.errors import CheckpointFitError
from data_catalog.worlds import open_world
from gapfill.cli import main
from tests.assemble_data import REGION, WINTER, demo_part, native_set, winter  # noqa: F401
from tests.dask_cluster import dask_scheduler  # noqa: F401

#: the predicted region, well inside the round-trip world (spatial context on every side)
INNER = "--region=-92,32,-88,36"
DAY = "2013-01-10"
#: a small world across the seam: AMSR-E days, the gap year (no files), AMSR2 days
SEAM_REGION = (-92.0, 33.0, -88.0, 37.0)
SEAM = ("2011-09-04", "2012-08-02")


def _shipped() -> Path:
    d = locations.checkpoint_dir()
    if not (d / "amsr2.pt").exists() or not (d / "amsre.pt").exists():
        pytest.skip(f"shipped checkpoints not in {d}")
    return d


def one_line_error(rc: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def rt(winter, tmp_path_factory):  # noqa: F811
    """The round-trip world assembled, and a catalog listing it (``rt_world``) with the
    demo world's ISMN-like stations (``rt_stations``)."""
    folder = tmp_path_factory.mktemp("rtworld")
    out = folder / "winter.zarr"
    assemble(["rt_lprm"], "rt_active", REGION, *WINTER, out, catalog=winter["catalog"],
             progress=False)
    cat = yaml.safe_load(Path(winter["catalog"]).read_text())
    cat["sources"]["rt_world"] = {"driver": "world", "description": "assembled round trip",
                                  "args": {"path": str(out)}}
    cat["sources"]["rt_stations"] = {"driver": "demo_stations", "description": "stations",
                                     "args": {"path": str(locations.demo_world())}}
    (folder / "catalog.yml").write_text(yaml.safe_dump(cat))
    return {"world": out, "catalog": folder / "catalog.yml", "folder": folder}


def _variant(src: Path, out: Path, **change) -> Path:
    """A copy of a world store with changed coordinates (``lat``, ``lon``, ``sensor``)."""
    ds = xr.open_zarr(src, consolidated=False).load()
    for var in ds.variables.values():
        var.encoding = {}
    ds = ds.assign_coords({k: (ds[k].dims, v, ds[k].attrs) for k, v in change.items()})
    ds.to_zarr(out, mode="w", consolidated=False)
    return out


# ---------------------------------------------------------------- predict
def test_predict_on_the_assembled_world_equals_the_demo_world(rt, tmp_path, capsys):
    _shipped()
    got, want = tmp_path / "assembled.nc", tmp_path / "demo.nc"
    rc = main(["predict", "--catalog", str(rt["catalog"]), INNER, "--date", DAY,
               "--world", "rt_world", "--device", "cpu", "--out", str(got)])
    assert rc == 0, capsys.readouterr().err
    assert main(["predict", INNER, "--date", DAY, "--device", "cpu", "--out",
                 str(want)]) == 0
    with xr.open_dataset(got) as a, xr.open_dataset(want) as b:
        assert a.sizes == b.sizes and a.attrs["model_sensor"] == b.attrs["model_sensor"]
        fa, fb = a[schema.FILLED_SM].values, b[schema.FILLED_SM].values
        np.testing.assert_array_equal(np.isnan(fa), np.isnan(fb))
        rms = float(np.sqrt(np.nanmean((fa - fb) ** 2)))
        assert rms < 0.01, rms
        # gaps were filled, not copied: the assembled day has gaps that now hold values
        gaps = (a[schema.GAP_MASK].values != schema.OBSERVED) & np.isfinite(fa)
        assert gaps.sum() > 10


def test_fit_checks_refuse_another_grid(rt, tmp_path, capsys):
    import torch

    from model.fit import check_fits

    _shipped()
    meta = torch.load(locations.checkpoint_dir() / "amsr2.pt", weights_only=True)["metadata"]
    world = open_world(rt["world"])
    assert check_fits(meta, world) == []
    lon = world[schema.LON].values
    shifted = _variant(rt["world"], tmp_path / "shifted.zarr", lon=lon + 0.1)
    problems = check_fits(meta, open_world(shifted))
    assert len(problems) == 1 and "shifted by 0 degrees in latitude and 0.1" in problems[0]
    coarse = xr.open_zarr(rt["world"], consolidated=False).load().coarsen(
        lat=2, lon=2).mean()
    coarse[schema.GAP_MASK] = coarse[schema.GAP_MASK].round().astype(np.int8)
    coarse[schema.LAND] = coarse[schema.LAND] > 0.5
    for var in coarse.variables.values():
        var.encoding = {}
    coarse.to_zarr(tmp_path / "coarse.zarr", consolidated=False)
    problems = check_fits(meta, open_world(tmp_path / "coarse.zarr"))
    assert problems == ["the AMSR2 model was trained on a 0.25 x 0.25 degree grid; this "
                        "world's cells are 0.5 x 0.5 degrees"]
    for store, needle in ((shifted, "shifted by"), (tmp_path / "coarse.zarr", "0.5 x 0.5")):
        rc = main(["predict", INNER, "--date", DAY, "--world", str(store), "--device", "cpu"])
        one_line_error(rc, capsys.readouterr().err, "does not fit this data", needle,
                       "amsr2.pt")


def test_a_transferred_model_is_refused_outside_its_matching_region(rt, tmp_path, capsys):
    import torch

    from model.fit import check_fits
    from model.wrapper import GapFiller

    d = _shipped()
    world = open_world(rt["world"])
    # 20 degrees west (80 cells, so the cells stay aligned), its days made AMSR-E days
    west = _variant(rt["world"], tmp_path / "west.zarr", lon=world[schema.LON].values - 20,
                    sensor=np.full(world.sizes[schema.TIME], schema.SENSOR_AMSRE, np.int8))
    ds = open_world(west)
    amsre = torch.load(d / "amsre.pt", weights_only=True)["metadata"]
    amsr2 = torch.load(d / "amsr2.pt", weights_only=True)["metadata"]
    problems = check_fits(amsre, ds)
    assert len(problems) == 1 and "reaches outside it" in problems[0], problems
    assert "-100,30,-84,46" in problems[0]
    assert check_fits(amsre, world, sensor=False) == []  # inside the matching region
    assert check_fits(amsr2, ds, sensor=False) == []  # a base model runs on any region
    assert "fills AMSR2 days; the days here are AMSR-E" in check_fits(amsr2, ds)[0]
    rc = main(["predict", "--region=-112,32,-108,36", "--date", DAY, "--world", str(west),
               "--device", "cpu"])
    one_line_error(rc, capsys.readouterr().err, "amsre.pt does not fit", "reaches outside")
    rc = main(["build-series", "--source", str(west), "--start", "2013-01-01", "--end",
               "2013-01-05", "--out", str(tmp_path / "s.zarr"), "--scheduler",
               "synchronous", "--no-progress"])
    one_line_error(rc, capsys.readouterr().err, "amsre.pt does not fit")
    assert not (tmp_path / "s.zarr").exists()
    # never the domain mean outside the maps, unless asked for
    m = GapFiller.load(d / "amsre.pt")
    lat, lon = ds[schema.LAT].values[:4], ds[schema.LON].values[:4]
    with pytest.raises(CheckpointFitError, match="matching maps cover"):
        m.to_reference(np.full((1, 4, 4), 0.2, np.float32), lat, lon)
    assert np.isnan(m.to_reference(np.full((1, 4, 4), 0.2, np.float32), lat, lon,
                                   outside="missing")).all()


# ---------------------------------------------------------------- build-series, validate
def test_build_series_from_a_catalog_world_on_a_dask_cluster_equals_the_local_run(
        rt, tmp_path, dask_scheduler):  # noqa: F811
    _shipped()
    stores = {}
    for name, sched in (("local", "synchronous"), ("dask", dask_scheduler)):
        stores[name] = tmp_path / f"{name}.zarr"
        rc = main(["build-series", "--catalog", str(rt["catalog"]), "--source", "rt_world",
                   "--start", "2012-12-20", "--end", "2013-01-14", "--region=-92,32,-88,36",
                   "--tile", "8", "--time-chunk", "26", "--out", str(stores[name]),
                   "--scheduler", sched, "--no-progress"])
        assert rc == 0
    a = xr.open_zarr(stores["local"], consolidated=False)
    b = xr.open_zarr(stores["dask"], consolidated=False)
    assert a.sizes == b.sizes == {"time": 26, "lat": 16, "lon": 16}
    np.testing.assert_allclose(a[schema.FILLED_SM].values, b[schema.FILLED_SM].values,
                               atol=1e-6)
    np.testing.assert_array_equal(a["source_flag"].values, b["source_flag"].values)
    land = a[schema.LAND].values.astype(bool)
    assert np.isfinite(a[schema.FILLED_SM].values[:, land]).all()


def test_validate_an_assembled_world_with_catalog_stations(rt, capsys):
    _shipped()
    rc = main(["validate", "--catalog", str(rt["catalog"]), "--source", "rt_world", "--ismn",
               "rt_stations", "--json", "--no-figures", "--min-n", "5"])
    out = capsys.readouterr().out
    assert rc == 0
    doc = json.loads(out)
    rows = doc["stations"]
    ids = {r["station"] for r in rows}
    assert ids == {"DEMO001", "DEMO006", "DEMO015", "DEMO017", "DEMO018", "DEMO021",
                   "DEMO024"}
    series = {r.get("series") for r in rows}
    assert {"raw", "filled", "ascat"} <= series and "truth" not in series
    rc = main(["validate", "--catalog", str(rt["catalog"]), "--source", "rt_world"])
    one_line_error(rc, capsys.readouterr().err, "--ismn")


# ---------------------------------------------------------------- train, transfer, evaluate
@pytest.fixture(scope="module")
def seam(tmp_path_factory):
    """The seam world assembled from native files written on its radiometers' days only."""
    part = demo_part(*SEAM, region=SEAM_REGION)
    part = part.isel(time=np.flatnonzero(part[schema.SENSOR].values != schema.SENSOR_NONE))
    folder = tmp_path_factory.mktemp("seam")
    data = native_set(folder / "files", part)
    out = folder / "seam.zarr"
    assemble(["rt_lprm"], "rt_active", SEAM_REGION, *SEAM, out, catalog=data["catalog"],
             progress=False)
    return out


def test_tiny_train_transfer_and_evaluate_on_an_assembled_world(seam, tmp_path, capsys,
                                                                caplog):
    from model.config import CONFIG_DIR

    tiny = str(CONFIG_DIR / "tiny.yml")
    ck = tmp_path / "ck"
    rc = main(["train", "--config", tiny, "--world", str(seam), "--out", str(ck / "amsr2.pt"),
               "--no-progress", "--train-period", "2012-07-02,2012-07-19", "--val-period",
               "2012-07-20,2012-07-27", "--test-period", "2012-07-28,2012-08-02"])
    assert rc == 0, capsys.readouterr().err
    rc = main(["transfer", "--config", tiny, "--from", str(ck / "amsr2.pt"), "--world",
               str(seam), "--out", str(ck / "amsre.pt"), "--no-progress", "--train-period",
               "2011-09-04,2011-09-22", "--val-period", "2011-09-23,2011-10-03",
               "--reference-period", "2012-07-02,2012-08-02"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    import torch

    meta = torch.load(ck / "amsr2.pt", weights_only=True)["metadata"]
    assert meta["config"]["train_years"] == ["2012-07-02", "2012-07-19"]
    assert meta["training"]["period"] == ["2012-07-02", "2012-07-19"]
    rc = main(["evaluate", "--world", str(seam), "--checkpoint-dir", str(ck), "--device", "cpu",
               "--test-period", "2012-07-20,2012-08-02", "--fit-period",
               "2012-07-02,2012-08-02", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    res = json.loads(captured.out)
    assert set(res["sensors"]) == {"amsr2"}
    hidden = res["sensors"]["amsr2"]["convlstm"]["hidden"]
    assert hidden["n"] > 50 and 0 < hidden["rmse"] < 0.2
    assert res["sensors"]["amsr2"]["convlstm"]["natural_gaps"]["n"] == 0
    notes = " ".join(res["notes"])
    assert "no truth_sm" in notes and "need a truth" in notes
    assert "no amsre days in the test period 2012-07-20..2012-08-02" in notes
    strata = res["strata"]["amsr2_2012-07-20..2012-08-02"]
    assert strata["test_year_role"] == "validation"  # the model validated on 07-20..07-27
    assert "hidden_days" in strata and "natural_gaps" not in strata
    assert strata["baseline_fit_years"] == ["2012-07-02..2012-08-02",
                                            "without 2012-07-20..2012-08-02"]
    # the no-ASCAT days of the gap year are a logged warning of predict
    rc = main(["predict", "--region=-91,34,-89,36", "--date", "2012-07-03", "--world",
               str(seam), "--checkpoint", str(ck / "amsr2.pt"), "--device", "cpu",
               "--lookback", "6"])
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert rc == 0 and any("no ASCAT on" in w and "2012-06-28..2012-07-01" in w
                           for w in warned), warned


def test_periods_as_days_or_years():
    from data_catalog.errors import FormatError
    from model.config import TrainConfig, TransferConfig, period_days, period_label
    from model.evaluate import year_role

    d = yaml.safe_load("train_period: [2015-04-01, 2016-03-31]\nval_years: [2016, 2016]\n")
    c = TrainConfig.from_dict(d)
    assert c.train_years == ["2015-04-01", "2016-03-31"] and c.val_years == [2016, 2016]
    assert [str(t.date()) for t in period_days(c.train_years)] == ["2015-04-01", "2016-03-31"]
    assert [str(t.date()) for t in period_days([2013, 2020])] == ["2013-01-01", "2020-12-31"]
    assert period_label([2022, 2022]) == "2022"
    assert period_days(period_label(c.train_years)) == period_days(c.train_years)
    assert TransferConfig.from_dict({"reference_period": "2013,2014"}).reference_years == [
        2013, 2014]
    for bad, msg in (({"train_period": ["2015-13-01", 2016]}, "not a valid day"),
                     ({"train_period": [2016, 2015]}, "before it starts"),
                     ({"train_period": [1, 2, 3]}, "expected [first, last]"),
                     ({"train_period": [2015], "train_years": [2015]}, "both")):
        with pytest.raises(FormatError, match=msg.replace("[", r"\[")):
            TrainConfig.from_dict(bad)
    cfg = {"train_years": ["2015-04-01", "2016-03-31"], "val_years": [2016, 2016]}
    assert year_role(["2016-01-01", "2016-01-31"], cfg) == "training"
    assert year_role(["2016-04-01", "2016-04-30"], cfg) == "validation"
    assert year_role(2017, cfg) == "held out"


def test_world_arguments_name_stores_or_catalog_worlds(rt):
    from data_catalog.catalog import world_location
    from data_catalog.errors import CatalogError, MissingFileError

    cat = rt["catalog"]
    assert world_location("rt_world", cat) == rt["world"]
    assert world_location(str(rt["world"]), cat) == rt["world"]
    with pytest.raises(CatalogError, match="'rt_lprm' is a lprm source, not a world"):
        world_location("rt_lprm", cat)
    with pytest.raises(MissingFileError, match="neither a world store nor a source"):
        world_location("nowhere", cat)


@pytest.mark.realdata
def test_validate_a_world_assembled_from_the_hawaii_kit_with_its_ismn_stations(
        shared_data, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GAPFILL_DATA_ROOT", str(shared_data))
    out = tmp_path / "hawaii.zarr"
    assemble(["c3s_passive_images"], "hawaii_ascat_h119", (-156.1, 18.9, -154.8, 20.3),
             "2017-06-20", "2017-07-05", out, progress=False)
    rc = main(["validate", "--source", str(out), "--ismn", "hawaii_ismn", "--no-model",
               "--json", "--no-figures", "--min-n", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = json.loads(captured.out)["stations"]
    assert len({r["station"] for r in rows}) >= 3
    ascat = [r for r in rows if r["series"] == "ascat" and r["status"] == "OK"]
    assert ascat and all(r["n"] >= 3 for r in ascat)
    assert {r["status"] for r in rows if r["series"] == "filled"} == {"NO_MODEL"}
