"""``gapfill assemble`` round trip: a part of the demo world written in the products' own
formats (LPRM days, C3S ACTIVE images, H SAF cells + WARP5-like grid) assembles back into
the demo world: the same observed pixels, values within the files' quantisation, the same
gap categories (RFI included), ASCAT within 0.01 %, the same layout and attributes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_catalog import locations, schema
from data_catalog.assemble import assemble, open_assembled
from data_catalog.assemble.provenance import read_group
from data_catalog.worlds import world_chunks
from gapfill.cli import main
from tests.assemble_data import REGION, WINTER, demo_part, native_set, winter  # noqa: F401


@pytest.fixture(scope="module")
def from_active(winter, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("w") / "active.zarr"
    summary = assemble(["rt_lprm"], "rt_active", REGION, *WINTER, out,
                       catalog=winter["catalog"], progress=False)
    return summary, open_assembled(out).load()


@pytest.fixture(scope="module")
def from_cells(winter, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("w") / "cells.zarr"
    assemble(["rt_lprm"], "rt_hsaf", REGION, *WINTER, out, catalog=winter["catalog"],
             progress=False)
    return open_assembled(out).load()


def test_gap_categories_and_amsr_values_come_back(from_active, winter):  # noqa: F811
    _, got = from_active
    want = winter["world"]
    schema.check_canonical(got)
    gap, ref = got[schema.GAP_MASK].values, want[schema.GAP_MASK].values
    # every category occurs, RFI included, and each pixel-day has the demo's category
    assert set(np.unique(ref).tolist()) == set(range(7))
    np.testing.assert_array_equal(gap, ref)
    a, b = got[schema.AMSR_SM].values, want[schema.AMSR_SM].values
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
    assert np.isfinite(a).sum() > 20_000
    # LPRM stores whole volumetric percent: within half a percent, 0.005 m3 m-3
    assert np.nanmax(np.abs(a - b)) <= 0.005 + 1e-6
    assert np.nanmax(np.abs(a - b)) > 0.004  # the quantisation is really there
    np.testing.assert_array_equal(got[schema.LAND].values, want[schema.LAND].values)
    np.testing.assert_array_equal(got[schema.SENSOR].values, want[schema.SENSOR].values)


def test_the_lprm_error_comes_back_on_observed_pixels(from_active):
    """``soil_moisture_c1_error`` (bench.native_files: 0.02 m3 m-3 plus 0.2 per unit of
    optical depth above 0.3, packed in whole volumetric percent) as ``amsr_sm_error``."""
    summary, got = from_active
    err, amsr = got[schema.AMSR_SM_ERROR].values, got[schema.AMSR_SM].values
    np.testing.assert_array_equal(np.isfinite(err), np.isfinite(amsr))
    assert err.dtype == np.float32
    assert got[schema.AMSR_SM_ERROR].attrs == schema.amsr_error_attrs()
    have = err[np.isfinite(err)]
    assert have.min() >= 0.02 - 1e-6 and have.max() <= 0.10 + 1e-6
    np.testing.assert_allclose(have * 100, np.round(have * 100), atol=1e-4)  # whole %
    assert len(np.unique(np.round(have, 2))) > 3
    assert summary["days"] == 45


def test_active_images_give_ascat_exactly(from_active, winter):  # noqa: F811
    _, got = from_active
    a, b = got[schema.ASCAT_SM].values, winter["world"][schema.ASCAT_SM].values
    np.testing.assert_array_equal(a, b)  # float32 in the file: bit for bit, NaN included


def test_hsaf_cells_give_ascat_within_a_hundredth(from_cells, winter):  # noqa: F811
    a, b = from_cells[schema.ASCAT_SM].values, winter["world"][schema.ASCAT_SM].values
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
    assert np.nanmax(np.abs(a - b)) <= 0.01
    np.testing.assert_array_equal(from_cells[schema.GAP_MASK].values,
                                  winter["world"][schema.GAP_MASK].values)


def test_layout_and_attributes_are_the_demo_worlds(from_active):
    _, got = from_active
    from data_catalog.demo import open_demo_world

    demo = open_demo_world(locations.demo_world())
    # the demo world's variables, and the LPRM files' own error of the soil moisture
    assert set(got.data_vars) == {schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM,
                                  schema.LAND, schema.AMSR_SM_ERROR}
    assert set(got.coords) == {schema.TIME, schema.LAT, schema.LON, schema.SENSOR}
    for name in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.LAND,
                 schema.SENSOR, schema.TIME, schema.LAT, schema.LON):
        assert got[name].dtype == demo[name].dtype, name
        assert got[name].attrs == demo[name].attrs, name
    for key in ("Conventions", "complete"):
        assert got.attrs[key] == demo.attrs[key]
    assert got.attrs["generator"] == "data_catalog.assemble"
    # the demo world's chunk rule: its own 64 x 64 store and this 32 x 32 world
    assert world_chunks(64, 64) == demo[schema.AMSR_SM].encoding["chunks"]
    enc = open_assembled(got.attrs["source_path"])[schema.AMSR_SM].encoding
    assert enc["chunks"] == world_chunks(32, 32) == (365, 32, 32)
    assert [c.to_dict() for c in enc["compressors"]] == \
        [c.to_dict() for c in demo[schema.AMSR_SM].encoding["compressors"]]


def test_provenance_names_every_file_and_the_command(from_active, winter):  # noqa: F811
    summary, got = from_active
    rows = read_group(got.attrs["source_path"])
    assert len(rows) == summary["files"] == 90  # 45 LPRM days + 45 ACTIVE images
    lprm = [r for r in rows if r["role"] == "amsr"]
    assert {r["day"] for r in lprm} == {f"{t:%Y-%m-%d}" for t in
                                        winter["world"].indexes[schema.TIME]}
    for r in rows[:3]:
        from pathlib import Path

        st = Path(r["path"]).stat()
        assert r["size"] == st.st_size and r["mtime"].endswith("Z")
    entries = json.loads(got.attrs["catalog_entries"])
    assert [e["name"] for e in entries] == ["rt_lprm", "rt_active"]
    assert got.attrs["command"].startswith("gapfill assemble --amsr rt_lprm --ascat "
                                           "rt_active --region=-94,30,-86,38 --start "
                                           "2012-12-01 --end 2013-01-14 --out ")


def test_days_without_a_file_are_swath_gaps_the_gap_year_included(tmp_path):
    # 2012-06-28..07-05: four days of the AMSR gap year (no file), then AMSR2 files
    world = demo_part("2012-06-28", "2012-07-05")
    data = native_set(tmp_path / "files", world)
    assert len(list(data["lprm"].glob("*.nc4"))) == 4
    out = tmp_path / "gap.zarr"
    assemble(["rt_lprm"], "rt_active", REGION, "2012-06-28", "2012-07-05", out,
             catalog=data["catalog"], progress=False)
    got = open_assembled(out).load()
    np.testing.assert_array_equal(got[schema.GAP_MASK].values, world[schema.GAP_MASK].values)
    np.testing.assert_array_equal(got[schema.SENSOR].values, [0, 0, 0, 0, 2, 2, 2, 2])
    gap_year = got[schema.GAP_MASK].values[:4]
    assert set(np.unique(gap_year).tolist()) == {schema.NO_OVERPASS, schema.NOT_LAND}


def test_command_line_json_and_a_second_run_reuses_the_world(winter, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "cli.zarr"
    args = ["assemble", "--catalog", str(winter["catalog"]), "--amsr", "rt_lprm", "--ascat",
            "rt_active", "--region=-94,30,-86,38", "--start", "2012-12-01", "--end",
            "2012-12-05", "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["days"] == 5 and summary["blocks"] == 1 and not summary["reused"]
    assert 0.3 < summary["observed_fraction"] < 0.9
    assert not (tmp_path / ".cli.zarr.assembling").exists()  # the work folder is gone
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["reused"] is True


@pytest.mark.parametrize("with_error", [True, False])
def test_passive_images_carry_their_uncertainty_only_where_they_have_one(
        winter, tmp_path, with_error):  # noqa: F811
    """CCI/C3S PASSIVE images with ``sm_uncertainty`` give ``amsr_sm_error``; images
    without it give a world without the variable (the demo world's variables)."""
    import yaml

    from bench.native_files import cci_name, write_cci_image

    world = demo_part("2012-12-01", "2012-12-03")
    lat, lon = world[schema.LAT].values, world[schema.LON].values
    folder = tmp_path / "passive"
    folder.mkdir()
    for k, day in enumerate(world.indexes[schema.TIME]):
        sm = world[schema.AMSR_SM].values[k]
        ok = np.isfinite(sm)
        err = np.where(ok, np.float32(0.03) + np.float32(0.01) * (lat[:, None] > 34), np.nan)
        write_cci_image(folder / cci_name(day, "PASSIVE"), lat, lon, day, sm,
                        np.where(ok, 0, 127).astype(np.int8),
                        np.where(ok, 32, 0).astype(np.int16), product="PASSIVE",
                        uncertainty=err if with_error else None)
    cat = yaml.safe_load(winter["catalog"].read_text())
    cat["sources"]["rt_passive"] = {"driver": "cci_images", "description": "PASSIVE",
                                    "args": {"paths": str(folder / "*.nc")}}
    (tmp_path / "catalog.yml").write_text(yaml.safe_dump(cat))
    out = tmp_path / "passive.zarr"
    summary = assemble(["rt_passive"], "rt_active", REGION, "2012-12-01", "2012-12-03", out,
                       catalog=tmp_path / "catalog.yml", progress=False)
    got = open_assembled(out).load()
    assert summary["amsr_sm_error"] is with_error
    np.testing.assert_array_equal(np.isfinite(got[schema.AMSR_SM].values),
                                  np.isfinite(world[schema.AMSR_SM].values))
    if not with_error:
        assert schema.AMSR_SM_ERROR not in got and summary["error_fraction"] == 0
        return
    err = got[schema.AMSR_SM_ERROR].values
    observed = np.isfinite(got[schema.AMSR_SM].values)
    np.testing.assert_array_equal(np.isfinite(err), observed)
    want = np.broadcast_to(np.where(lat[:, None] > 34, 0.04, 0.03), err.shape)
    np.testing.assert_allclose(err[observed], want[observed], rtol=1e-6)
    assert summary["error_fraction"] == 1.0
