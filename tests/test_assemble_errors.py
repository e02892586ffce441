"""Bad input to ``gapfill assemble``: one clear line, exit code 1, nothing half-written left
as if complete.

A non-netCDF file (an HTML page, an empty file) is caught before any work; a truncated
or damaged file, or one on another grid, stops the run when its block reads it: the
finished blocks stay in the hidden work folder, no store appears at ``--out``, and the
run resumes once the file is replaced or deleted (a deleted day is a swath gap)."""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.native_files import lprm_name, write_lprm
from data_catalog import schema
from data_catalog.assemble import open_assembled
from data_catalog.errors import MissingFileError
from gapfill.cli import main
from tests.assemble_data import winter  # noqa: F401

DAYS = ("2012-12-01", "2012-12-06")


def run(capsys, catalog: Path, out: Path, *extra: str, amsr="rt_lprm", ascat="rt_active",
        region="-94,30,-86,38", days=DAYS) -> tuple[int, str]:
    code = main(["assemble", "--catalog", str(catalog), "--amsr", amsr, "--ascat", ascat,
                 f"--region={region}", "--start", days[0], "--end", days[1], "--out",
                 str(out), "-q", *extra])
    return code, capsys.readouterr().err.strip()


def one_line(err: str, *words: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gapfill assemble: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def copy(winter, tmp_path):  # noqa: F811
    """The first six winter days of LPRM files in a folder of their own, and a catalog."""
    folder = tmp_path / "lprm"
    folder.mkdir()
    for f in sorted(winter["lprm"].glob("*.nc4"))[:6]:
        shutil.copy(f, folder / f.name)
    cat = yaml.safe_load(winter["catalog"].read_text())
    cat["sources"]["rt_lprm"]["args"]["paths"] = str(folder)
    cat["sources"]["rt_lprm2"] = dict(cat["sources"]["rt_lprm"])
    (tmp_path / "catalog.yml").write_text(yaml.safe_dump(cat))
    return folder, tmp_path / "catalog.yml"


def test_no_file_for_the_period(copy, tmp_path, capsys):
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", days=("2015-01-01", "2015-01-31"))
    assert code == 1
    one_line(err, "no AMSR file between 2015-01-01 and 2015-01-31", "rt_lprm")
    assert not (tmp_path / "w.zarr").exists()
    assert not (tmp_path / ".w.zarr.assembling").exists()


@pytest.mark.parametrize("content, words", [
    (b"<!DOCTYPE html><html><body>Earthdata Login</body></html>", "an HTML page"),
    (b"", "empty file"),
])
def test_html_or_empty_file_among_good_ones(copy, tmp_path, capsys, content, words):
    bad = copy[0] / lprm_name("2012-12-03")
    bad.write_bytes(content)
    code, err = run(capsys, copy[1], tmp_path / "w.zarr")
    assert code == 1
    one_line(err, bad.name, words)
    assert not (tmp_path / "w.zarr").exists()


def test_truncated_file_stops_the_run_and_a_fixed_folder_resumes(copy, tmp_path, capsys):
    bad = copy[0] / lprm_name("2012-12-04")
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # starts like HDF5, ends too soon
    out = tmp_path / "w.zarr"
    code, err = run(capsys, copy[1], out)
    assert code == 1
    one_line(err, bad.name, "not a readable netCDF file")
    assert not out.exists()
    with pytest.raises(MissingFileError):
        open_assembled(out)
    work = tmp_path / ".w.zarr.assembling"
    assert (work / "world.zarr" / "zarr.json").exists()  # kept, and marked incomplete
    assert '"complete": false' in (work / "world.zarr" / "zarr.json").read_text()
    bad.unlink()  # the documented way out: delete (or re-download) the file
    code, err = run(capsys, copy[1], out)
    assert code == 0, err
    got = open_assembled(out)
    day = got[schema.GAP_MASK].sel(time="2012-12-04").values
    assert set(np.unique(day).tolist()) <= {schema.NO_OVERPASS, schema.NOT_LAND}
    assert (got[schema.GAP_MASK].sel(time="2012-12-03").values == schema.OBSERVED).any()


def test_region_outside_the_files(copy, tmp_path, capsys):
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", region="-60,0,-50,10")
    assert code == 1
    one_line(err, "lie outside the file")


def test_a_file_on_another_grid_among_good_ones(copy, tmp_path, capsys):
    lat = np.arange(29.05, 39.0, 0.1)  # a 0.1 degree file for one day
    lon = np.arange(-94.95, -85.0, 0.1)
    odd = copy[0] / lprm_name("2012-12-05")
    write_lprm(odd, lat, lon, {"soil_moisture_c1": np.full((lat.size, lon.size), 20.0),
                               "scantime": np.full((lat.size, lon.size), 6.3e8)})
    code, err = run(capsys, copy[1], tmp_path / "w.zarr")
    assert code == 1
    one_line(err, odd.name, "mixed grids")
    assert not (tmp_path / "w.zarr").exists()


def test_sources_of_the_wrong_kind_or_overlapping(copy, tmp_path, capsys):
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", amsr="rt_lprm,rt_lprm2")
    assert code == 1
    one_line(err, "'rt_lprm' and 'rt_lprm2' both have files for 6 day(s)")
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", amsr="rt_active")
    one_line(err, "holds ACTIVE images; --amsr needs PASSIVE images")
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", ascat="rt_lprm")
    one_line(err, "--ascat needs H SAF cells or CCI/C3S ACTIVE images")
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", amsr="nope")
    one_line(err, "unknown source 'nope'")
    # an orthogonal (CCI/C3S) time-series cell folder is not an H SAF ragged cell folder
    cells = tmp_path / "ortho"
    cells.mkdir()
    import netCDF4

    with netCDF4.Dataset(cells / "0165.nc", "w") as ds:
        ds.createDimension("locations", 1)
        ds.createVariable("lat", "f4", ("locations",))[:] = [33.1]
        ds.createVariable("lon", "f4", ("locations",))[:] = [-91.1]
    cat = yaml.safe_load(copy[1].read_text())
    cat["sources"]["ortho"] = {"driver": "cell_series", "args": {"folder": str(cells)}}
    copy[1].write_text(yaml.safe_dump(cat))
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", ascat="ortho")
    one_line(err, "0165.nc", "not a ragged H SAF cell file")


@pytest.mark.parametrize("extra, words", [
    ({"region": "west,30,-86,38"}, "--region must be W,S,E,N"),
    ({"region": "-86,30,-94,38"}, "not a valid (W, S, E, N) box"),
    ({"days": ("2012-12-06", "2012-12-01")}, "is before --start"),
    ({"days": ("2012-13-01", "2012-12-06")}, "must be YYYY-MM-DD"),
])
def test_bad_arguments(copy, tmp_path, capsys, extra, words):
    code, err = run(capsys, copy[1], tmp_path / "w.zarr", **extra)
    assert code == 1
    one_line(err, words)


def test_an_existing_store_is_kept_unless_forced_and_runs_do_not_share_a_folder(
        copy, tmp_path, capsys):
    out = tmp_path / "w.zarr"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    code, err = run(capsys, copy[1], out)
    assert code == 1
    one_line(err, "exists and is not this world", "--force")
    assert (out / "precious.txt").exists()
    work = tmp_path / ".w.zarr.assembling"
    work.mkdir()
    with open(work / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, err = run(capsys, copy[1], out, "--force")
        assert code == 1
        one_line(err, "another `gapfill assemble` is writing this world now")
    code, err = run(capsys, copy[1], out, "--force")
    assert code == 0, err
    assert not (out / "precious.txt").exists()
    assert open_assembled(out).sizes["time"] == 6
