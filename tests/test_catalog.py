"""The catalog loader: the built-in catalog, path expansion, errors, opening sources."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from data_catalog import schema
from data_catalog.catalog import BUILTIN_CATALOG, DRIVERS, load_catalog
from data_catalog.errors import CatalogError, MissingFileError, OutOfRangeError
from tests.test_readers_cells import write_ortho_folder
from tests.test_readers_ismn import hours, write_station
from tests.test_readers_lprm import write_lprm

REQUIRED = {"demo", "demo_stations", "hawaii", "hawaii_ismn", "hawaii_cci_passive",
            "hawaii_ascat_h119", "hawaii_cci_gapfilled", "hawaii_c3s_passive",
            "hawaii_c3s_active", "hawaii_c3s_combined", "lprm_amsr2", "c3s_passive_images",
            "c3s_active_images", "c3s_combined_images", "hsaf_h110", "ismn_multinetwork"}


def write_catalog(folder: Path, body: str) -> Path:
    path = folder / "catalog.yml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def fixture_catalog(tmp_path):
    """A catalog over files the test writes: an LPRM day, a cell folder, an ISMN tree."""
    data = tmp_path / "data"
    data.mkdir()
    write_lprm(data / "LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4")
    write_ortho_folder(data / "cells", units="m3 m-3")
    write_station(data / "ismn", "NETA", "Alpha", 45.1, 10.4, (0.05, 0.05),
                  hours("2017-01-02", [0.2, 0.3], ["G", "G"]))
    write_station(data / "ismn", "NETA", "Gamma", 46.0, 11.0, (0.0, 0.05),
                  hours("2017-01-03", [0.4], ["G"]))
    return write_catalog(tmp_path, f"""
        sources:
          day:
            description: one LPRM day (relative path)
            driver: lprm
            args: {{path: data/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4, band: c1}}
            metadata: {{label: LPRM, units: m3 m-3, cmap: viridis, clim: [0, 0.5],
                        start: 2015-04-01, end: 2015-04-01, citation: Owe et al. 2008}}
          cells:
            description: a cell folder
            driver: cell_series
            args: {{folder: data/cells}}
            metadata: {{start: 2017-01-01, end: 2017-01-05}}
          stations:
            description: an ISMN tree
            driver: ismn
            args: {{path: data/ismn, meta_path: {tmp_path / "meta"}}}
          missing:
            description: points at nothing
            driver: lprm
            args: {{path: data/absent.nc4}}
          both:
            description: a kit
            driver: kit
            args: {{members: {{grid: day, point: cells}}}}
        """)


def test_builtin_catalog_complete():
    cat = load_catalog(BUILTIN_CATALOG)
    assert REQUIRED <= set(cat.names())
    for src in cat:
        assert src.driver in DRIVERS
        assert src.description
        if src.driver != "kit":
            for key in ("label", "units", "start", "end", "citation", "download"):
                assert src.metadata.get(key), (src.name, key)
    cites = " ".join(s.metadata["citation"] for s in cat)
    for needle in ("HESS 25, 5749-5804", "Gruber", "Preimesberger",
                   "Generated using Copernicus Climate Change Service information",
                   "These data were obtained from the H SAF operated by EUMETSAT", "Owe"):
        assert needle in cites
    assert cat["demo"].metadata["clim"] == [0.0, 0.5]
    assert set(cat["hawaii"].members()) >= {"ismn", "cci_passive", "ascat_h119",
                                           "cci_gapfilled", "c3s_active"}


def test_env_expansion(monkeypatch, tmp_path):
    monkeypatch.setenv("GAPFILL_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("GAPFILL_DEMO", str(tmp_path / "w.zarr"))
    cat = load_catalog()
    assert cat["lprm_amsr2"].args["path"].startswith(str(tmp_path / "root") + "/lprm/")
    assert cat["demo"].args["path"] == str(tmp_path / "w.zarr")
    assert not cat["demo"].available() and not cat["hawaii"].available()
    monkeypatch.setenv("GAPFILL_CATALOG", str(write_catalog(tmp_path, """
        sources:
          x: {description: d, driver: lprm, args: {path: "${GAPFILL_DATA_ROOT}/a.nc4"}}
        """)))
    assert load_catalog()["x"].args["path"] == str(tmp_path / "root" / "a.nc4")


def test_catalog_errors(tmp_path, fixture_catalog):
    cat = load_catalog(fixture_catalog)
    with pytest.raises(CatalogError, match="valid names: day, cells, stations"):
        cat["nope"]
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "absent.yml")
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(CatalogError,
                       match="unknown driver 'hdf4'.*valid drivers: world, series.*demo_world"):
        load_catalog(write_catalog(bad, "sources: {x: {driver: hdf4, args: {}}}"))
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(write_catalog(bad, "sources: [unclosed"))
    with pytest.raises(CatalogError, match="member a: unknown source 'zz'"):
        load_catalog(write_catalog(bad, "sources: {k: {driver: kit, args: {members: {a: zz}}}}"))
    with pytest.raises(CatalogError, match=r"\$\{NOT_SET_ANYWHERE\} is not set"):
        load_catalog(write_catalog(bad, "sources: {x: {driver: lprm, args: "
                                        "{path: '${NOT_SET_ANYWHERE}/f.nc'}}}"))
    with pytest.raises(CatalogError, match="clim"):
        load_catalog(write_catalog(bad, "sources: {x: {driver: lprm, args: {path: a}, "
                                        "metadata: {clim: 3}}}"))


def test_fixture_sources_open_and_paths(fixture_catalog, tmp_path):
    cat = load_catalog(fixture_catalog)
    day = cat["day"]
    assert day.available() and not cat["missing"].available()
    assert day.start == day.end == "2015-04-01"
    assert [p.name for p in day.paths()] == ["LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"]
    ds = day.open()
    schema.check_canonical(ds)
    assert float(ds.amsr_sm.sel(lat=0.875, lon=-1.375).item()) == pytest.approx(0.25)
    assert day.open(band="x").attrs["band"] == "x"  # kwargs override args
    with pytest.raises(MissingFileError):
        cat["missing"].open()
    with pytest.raises(CatalogError, match="lat=..., lon="):
        cat["cells"].open()
    df = cat["cells"].open(lat=45.13, lon=10.37)
    assert df.attrs["gpi"] == 101
    table, series = cat["stations"].open()
    assert list(table["id"]) == ["NETA.Alpha", "NETA.Gamma"]
    assert len(series["NETA.Alpha"]) == 2
    assert set(cat["both"].open()) == {"grid", "point"}
    assert {p.name for p in cat["both"].paths()} >= {"0042.nc", "grid.nc"}
    assert cat["both"].available()


def test_describe_point(fixture_catalog):
    cat = load_catalog(fixture_catalog)
    (row,) = cat["day"].describe_point("2015-04-01", 0.9, -1.4)
    assert row["value"] == pytest.approx(0.25) and row["units"] == "m3 m-3"
    assert row["gap_category"] == "observed" and row["sensor"] == "AMSR2"
    assert (row["cell_lat"], row["cell_lon"]) == (0.875, -1.375)
    (gap,) = cat["day"].describe_point("2015-04-01", 0.625, -1.125)
    assert gap["value"] is None and gap["gap_category"] == "frozen_ground"
    with pytest.raises(OutOfRangeError, match="no data on 2015-04-02"):
        cat["day"].describe_point("2015-04-02", 0.9, -1.4)
    with pytest.raises(OutOfRangeError, match="outside"):
        cat["day"].describe_point("2015-04-01", 50.0, 60.0)
    (cell,) = cat["cells"].describe_point("2017-01-03", 45.13, 10.37)
    assert cell["value"] is None and cell["gap_category"] == "invalid_retrieval"  # flag 4
    (cell,) = cat["cells"].describe_point("2017-01-02", 45.13, 10.37)
    assert cell["value"] == pytest.approx(0.12) and cell["sensor"] == "AMSR2"
    (st,) = cat["stations"].describe_point("2017-01-02", 45.0, 10.0)
    assert st["station"] == "NETA.Alpha" and st["value"] == pytest.approx(0.25)
    assert st["n_obs"] == 2 and st["distance_km"] == pytest.approx(33.35, abs=0.05)
    assert st["station_period"] == ["2017-01-02", "2017-01-02"]
    assert "nearest_with_data" not in st
    (st,) = cat["stations"].describe_point("2017-01-03", 45.0, 10.0)
    assert st["station"] == "NETA.Alpha" and st["value"] is None
    assert st["nearest_with_data"]["station"] == "NETA.Gamma"
    assert st["nearest_with_data"]["value"] == pytest.approx(0.4)
    rows = cat["both"].describe_point("2015-04-01", 0.9, -1.4)
    assert [r["role"] for r in rows] == ["grid", "point"]
    assert "error" in rows[1]  # the cell folder is far away: reported, not raised


@pytest.mark.realdata
def test_real_sources(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("GAPFILL_DATA_ROOT", str(shared_data))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    cat = load_catalog()
    for name in REQUIRED - {"demo", "demo_stations"}:
        assert cat[name].available(), name
    (row,) = cat["c3s_active_images"].describe_point("2014-01-01", 48.2, 16.4)
    assert row["units"] == "percent of saturation"
    assert row["gap_category"] in {"observed", "frozen_ground", "no_overpass"}
    ds = cat["c3s_passive_images"].open(date="2017-07-01", region=(-100, 30, -84, 46))
    assert ds.sizes["time"] == 1 and int(ds.sensor[0]) == schema.SENSOR_AMSR2
    assert np.isfinite(ds.amsr_sm).any()
    rows = cat["hawaii"].describe_point("2017-07-01", 19.8, -155.4)
    assert {r["role"] for r in rows} >= {"ismn", "cci_passive", "ascat_h119"}
    assert all("error" not in r for r in rows)


def test_describe_point_all_gap_window_is_an_answer(tmp_path):
    """show reports the gap category of an empty place instead of failing on it."""
    write_lprm(tmp_path / "LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4", all_fill=True)
    cat = load_catalog(write_catalog(tmp_path, """
        sources:
          empty: {description: d, driver: lprm,
                  args: {path: LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4}}
        """))
    (row,) = cat["empty"].describe_point("2015-04-01", 0.1, -1.4)
    assert row["value"] is None and row["gap_category"] == "invalid_retrieval"
    from data_catalog.errors import EmptySelectionError

    with pytest.raises(EmptySelectionError):  # opening it for its data still refuses
        cat["empty"].open()
