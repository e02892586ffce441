"""``gapfill catalog list|show`` through ``gapfill.cli.main``."""

from __future__ import annotations

import json

import pytest

from gapfill.cli import main
from tests.test_catalog import fixture_catalog  # noqa: F401  (pytest fixture)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_json_and_table(capsys, fixture_catalog):  # noqa: F811
    rc, out, _ = run(capsys, "catalog", "list", "--json", "--catalog", str(fixture_catalog))
    assert rc == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["day", "cells", "stations", "missing", "both"]
    assert all(set(r) == {"name", "description", "start", "end", "available"} for r in rows)
    by = {r["name"]: r for r in rows}
    assert by["day"]["available"] is True and by["missing"]["available"] is False
    assert by["day"]["start"] == "2015-04-01" and by["stations"]["start"] is None
    rc, out, _ = run(capsys, "catalog", "list", "--catalog", str(fixture_catalog))
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("missing "))
    assert " no " in line
    assert "5 sources in" in out


def test_builtin_list_has_demo_and_real_sources(capsys):
    rc, out, _ = run(capsys, "catalog", "list", "--json")
    names = {r["name"] for r in json.loads(out)}
    assert rc == 0 and {"demo", "hawaii", "lprm_amsr2", "c3s_passive_images"} <= names


def test_show_grid_point(capsys, fixture_catalog):  # noqa: F811
    rc, out, _ = run(capsys, "catalog", "show", "day", "--date", "2015-04-01",
                     "--point", "0.9,-1.4", "--json", "--catalog", str(fixture_catalog))
    assert rc == 0
    row = json.loads(out)
    assert row["value"] == pytest.approx(0.25) and row["units"] == "m3 m-3"
    assert row["gap_category"] == "observed" and row["sensor"] == "AMSR2"
    rc, out, _ = run(capsys, "catalog", "show", "day", "--date", "2015-04-01",
                     "--point", "0.625,-1.125", "--catalog", str(fixture_catalog))
    assert rc == 0
    assert "no value (gap)" in out and "frozen_ground" in out
    assert "grid cell    0.625, -1.125" in out


def test_show_stations_and_kit(capsys, fixture_catalog):  # noqa: F811
    rc, out, _ = run(capsys, "catalog", "show", "stations", "--date", "2017-01-02",
                     "--point", "45,10", "--catalog", str(fixture_catalog))
    assert rc == 0 and "NETA.Alpha" in out and "0.25 m3 m-3" in out
    rc, out, _ = run(capsys, "catalog", "show", "both", "--date", "2017-01-02",
                     "--point", "45.13,10.37", "--json", "--catalog", str(fixture_catalog))
    rows = json.loads(out)
    assert rc == 0 and [r["role"] for r in rows] == ["grid", "point"]
    assert rows[1]["value"] == pytest.approx(0.12)
    assert "outside the data" in rows[0]["error"]


@pytest.mark.parametrize("argv, message", [
    (["show", "nope", "--date", "2015-04-01", "--point", "1,2"], "unknown source 'nope'"),
    (["show", "day", "--date", "2015-04-01", "--point", "1"], "--point must be LAT,LON"),
    (["show", "day", "--date", "April", "--point", "1,2"], "--date must be YYYY-MM-DD"),
    (["show", "day", "--date", "2015-04-01", "--point", "95,2"], "latitude must be"),
    (["show", "day", "--date", "2016-01-01", "--point", "0.9,-1.4"], "no data on 2016-01-01"),
    (["show", "missing", "--date", "2015-04-01", "--point", "0.9,-1.4"], "absent.nc4"),
])
def test_bad_input_one_line_exit_1(capsys, fixture_catalog, argv, message):  # noqa: F811
    rc, out, err = run(capsys, "catalog", *argv, "--catalog", str(fixture_catalog))
    assert rc == 1
    assert message in err and len(err.strip().splitlines()) == 1
    assert err.startswith("gapfill catalog: error:")


def test_missing_catalog_file(capsys, tmp_path):
    rc, _, err = run(capsys, "catalog", "list", "--catalog", str(tmp_path / "none.yml"))
    assert rc == 1 and "catalog file not found" in err


@pytest.mark.realdata
def test_show_real_lprm(capsys, shared_data, monkeypatch):
    monkeypatch.setenv("GAPFILL_DATA_ROOT", str(shared_data))
    rc, out, _ = run(capsys, "catalog", "show", "lprm_amsr2", "--date", "2015-04-01",
                     "--point", "42.1,-93.1", "--json")
    row = json.loads(out)
    assert rc == 0 and row["cell_lat"] == 42.125 and row["cell_lon"] == -93.125
    assert row["value"] == pytest.approx(0.43) and row["gap_category"] == "observed"
