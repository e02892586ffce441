"""``gapfill validate`` end to end, and the import boundary of ``validation``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gapfill.cli import main
from validation import summary as sm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_default_series_store(tmp_path, monkeypatch):
    """A series store someone built in data/series must not leak into these tests."""
    monkeypatch.setenv("GAPFILL_SERIES", str(tmp_path / "no-series.zarr"))


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    from data_catalog.demo import build_demo_world

    out = tmp_path_factory.mktemp("demo") / "world.zarr"
    return build_demo_world(out, west=-98, south=34, east=-94, north=38, start="2017-01-01",
                            end="2017-12-31", n_stations=4, progress=False)


def _run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _check_doc(doc: dict) -> None:
    assert set(doc) == {"stations", "summary"}
    for row in doc["stations"]:
        assert tuple(row) == sm.json_keys()
        assert row["status"] in ("OK", "INSUFFICIENT_DATA", "NO_OVERLAP", "NO_DATA",
                                 "NO_MODEL")
        assert isinstance(row["n"], int)


def test_validate_demo_json_and_outputs(tiny_world, tmp_path, capsys):
    out = tmp_path / "report"
    doc = _run_json(capsys, ["validate", "--source", "demo", "--world", str(tiny_world),
                             "--no-model", "--json", "--out", str(out),
                             "--stations", "DEMO001,DEMO002"])
    _check_doc(doc)
    rows = doc["stations"]
    assert {r["station"] for r in rows} == {"DEMO001", "DEMO002"}
    assert {r["series"] for r in rows} == {"raw", "filled", "filled_gaps", "ascat", "truth"}
    assert all(r["status"] == "NO_MODEL" for r in rows if r["series"].startswith("filled"))
    truth = [r for r in rows if r["series"] == "truth"]
    assert all(r["status"] == "OK" and r["r"] > 0.5 for r in truth)
    summary = doc["summary"]
    assert summary["source"] == "demo" and summary["n_stations"] == 2
    assert summary["relative_change_median_r"]["value"] is None  # no filled series
    for name in ("validation.csv", "validation.md", "validation.json",
                 "validation_r_by_series.png", "scatter_DEMO001.png", "timeseries_DEMO002.png"):
        assert (out / name).stat().st_size > 0, name
    md = (out / "validation.md").read_text()
    assert "| DEMO001 | DEMONET | raw |" in md and "Network medians" in md
    import pandas as pd

    csv = pd.read_csv(out / "validation.csv")
    assert len(csv) == len(rows) and {"r_ci_lower", "r_anom", "distance_km"} <= set(csv.columns)


def test_validate_demo_with_series_store(tiny_world, tmp_path, capsys):
    series = pytest.importorskip("model.series")
    store = series.build_series(tmp_path / "series.zarr", "demo", world=str(tiny_world),
                                start="2017-01-01", end="2017-12-31",
                                models="model.series:persistence_models",
                                scheduler="synchronous", progress=False)
    doc = _run_json(capsys, ["validate", "--source", "demo", "--world", str(tiny_world),
                             "--series-store", str(store), "--json", "--min-n", "5"])
    _check_doc(doc)
    filled = [r for r in doc["stations"] if r["series"] == "filled"]
    assert len(filled) == 4 and all(r["status"] == "OK" for r in filled)
    change = doc["summary"]["relative_change_median_r"]
    assert change["from"] == "raw" and change["to"] == "filled"
    assert change["value"] is not None and change["n_stations"] == 4


def test_validate_bad_arguments(tiny_world, capsys):
    assert main(["validate", "--source", "demo", "--world", str(tiny_world), "--no-model",
                 "--stations", "NOPE"]) == 1
    assert "NOPE" in capsys.readouterr().err
    for bad in (["--scaling", "zscore"], ["--half-window", "-1"], ["--overpass", "25"],
                ["--bootstrap", "-5"], ["--min-n", "0"], ["--depth", "0.1"]):
        with pytest.raises(SystemExit):
            main(["validate", *bad])
    capsys.readouterr()
    assert main(["validate", "--source", "demo", "--world", str(tiny_world),
                 "--product", "cci_passive"]) == 1
    assert main(["validate", "--source", "demo", "--world", str(tiny_world), "--no-model",
                 "--start", "2017-05-01", "--end", "2017-04-01"]) == 1
    assert "after its end" in capsys.readouterr().err


def test_validate_the_default_demo_world(tmp_path, capsys):
    from data_catalog.demo import default_demo_path

    if not default_demo_path().exists():
        pytest.skip(f"no demo world at {default_demo_path()} (make demo)")
    doc = _run_json(capsys, ["validate", "--source", "demo", "--no-model", "--json",
                             "--start", "2016-01-01", "--end", "2016-12-31"])
    _check_doc(doc)
    truth = [r for r in doc["stations"] if r["series"] == "truth" and r["status"] == "OK"]
    assert truth and doc["summary"]["series"]["truth"]["r"] > 0.5


@pytest.mark.realdata
def test_validate_hawaii_through_the_catalog(shared_data, tmp_path, capsys):
    doc = _run_json(capsys, ["validate", "--source", "hawaii", "--json", "--no-figures",
                             "--out", str(tmp_path)])
    _check_doc(doc)
    assert {r["series"] for r in doc["stations"]} == {"cci_passive", "ascat_h119",
                                                       "cci_gapfilled", "cci_gapfilled_gaps"}
    assert len({r["station"] for r in doc["stations"]}) == 9
    change = doc["summary"]["relative_change_median_r"]
    assert (change["from"], change["to"]) == ("cci_passive", "cci_gapfilled")
    assert change["value"] is not None
    one = _run_json(capsys, ["validate", "--source", "hawaii", "--product", "ascat_h119",
                             "--stations", "SCAN.SilverSword", "--json"])
    assert [r["series"] for r in one["stations"]] == ["ascat_h119"]
    assert one["stations"][0]["status"] == "OK"
    assert main(["validate", "--source", "hawaii", "--product", "nope", "--json"]) == 1


def test_validation_imports_without_panel_or_torch():
    # Panel & co. are blocked with sys.modules[name] = None.  torch is blocked by a finder
    # instead: scipy.stats probes sys.modules["torch"] at import and fails on a None entry,
    # which would test scipy rather than us.
    script = textwrap.dedent("""
        import importlib, pkgutil, sys
        for name in ("panel", "bokeh", "holoviews", "geoviews", "hvplot"):
            sys.modules[name] = None  # any import of these now raises ImportError

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError(f"blocked import of {name}")

        sys.meta_path.insert(0, NoTorch())
        import validation
        for info in pkgutil.walk_packages(validation.__path__, "validation."):
            importlib.import_module(info.name)
        from validation import metrics
        assert metrics.rmse([0.0, 1.0], [2.0, 3.0]) == 2.0
        assert metrics.pearson_r([1.0, 2.0, 3.5], [2.0, 4.0, 7.0]) == 1.0
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in
                        ("torch", "panel", "bokeh", "holoviews") and sys.modules[m] is not None)
        assert not leaked, leaked
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
