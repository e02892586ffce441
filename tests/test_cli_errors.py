"""Every user mistake on the command line: exit code 1, one line on stderr, no traceback
(the traceback only with -v)."""

from __future__ import annotations

import shutil
import warnings

import pytest

from data_catalog import schema
from data_catalog.locations import checkpoint_dir as default_checkpoint_dir
from gapfill.cli import describe, main
from tests.test_model_checkpoint_file import flip_bytes

REGION = "--region=-99,31,-96,34"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small world across the end of the 2011/2012 gap, a damaged checkpoint, an HTML
    page and a broken YAML file."""
    root = tmp_path_factory.mktemp("cli")
    with warnings.catch_warnings():  # the mock uses dayofyear, deprecated in pandas 3
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        ds = schema.mock_grid_dataset(ntime=60, nlat=40, nlon=64, start="2012-06-15")
    ds.to_zarr(root / "world.zarr", consolidated=False)
    shutil.copy(default_checkpoint_dir() / "amsr2.pt", root / "flipped.pt")
    flip_bytes(root / "flipped.pt")
    (root / "page.pt").write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    (root / "bad.yml").write_text("sources:\n  a:\n    driver: lprm\n   args: [1,\n")
    return root


def run(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``gapfill argv`` (argument errors exit from argparse)."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


def one_line_error(rc: int, err: str, command: str, fragment: str) -> None:
    assert rc == 1, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert err.startswith(f"gapfill {command}: error:"), err
    assert fragment in err, err


CASES = [
    # dates
    (["predict", REGION, "--date", "2022-13-45"], "month must be in 1..12"),
    (["predict", REGION, "--date", "2012-02-30"], "day is out of range for month"),
    (["predict", REGION, "--date", "9" * 5000], "5,000 characters long"),
    (["predict", REGION, "--date", "2031-01-01"], "outside the record"),
    (["predict", REGION, "--date", "2012-06-20"], "no radiometer was in orbit"),
    (["build-series", "--start", "2010-02-30"], "day is out of range for month"),
    (["export-netcdf", "--out", "x.nc", "--end", "2022-13-45"], "month must be in 1..12"),
    (["validate", "--start", "2010-02-30"], "day is out of range for month"),
    # regions and numbers
    (["predict", "--region=-1e308,30,-90,40", "--date", "2012-07-20"], "outside -180..180"),
    (["predict", "--region=nan,30,-90,40", "--date", "2012-07-20"], "not a finite number"),
    (["predict", "--region=10,10,20,20", "--date", "2012-07-20"], "lies outside the data"),
    (["predict", "--region=-96,31,-99,34", "--date", "2012-07-20"], "expected W < E"),
    (["predict", "--region=1,2,3", "--date", "2012-07-20"], "is not four numbers"),
    (["predict", REGION, "--date", "2012-07-20", "--lookback", "-5"], "--lookback -5 is less"),
    (["predict", REGION, "--date", "2012-07-20", "--lookback", "x"], "not a whole number"),
    (["build-series", "--region=-1e308,30,-90,40"], "outside -180..180"),
    (["build-series", "--tile", "0"], "--tile"),
    # paths
    (["predict", REGION, "--date", "2012-07-20", "--out", "/nonexistent_dir/x.nc"],
     "folder /nonexistent_dir does not exist"),
    (["export-netcdf", "--out", "/nonexistent_dir/x.nc"], "does not exist"),
    (["predict", REGION, "--date", "2012-07-20", "--world", "{root}/none.zarr"],
     "world store not found"),
    # checkpoints
    (["predict", REGION, "--date", "2012-07-20", "--checkpoint", "{root}/flipped.pt"],
     "fails its CRC-32 check"),
    (["predict", REGION, "--date", "2012-07-20", "--checkpoint", "{root}/page.pt"],
     "not a checkpoint"),
    (["predict", REGION, "--date", "2012-07-20", "--checkpoint", "{root}/none.pt"],
     "checkpoint not found"),
    # catalog YAML with its line number
    (["catalog", "list", "--catalog", "{root}/bad.yml"], "not valid YAML at line 4"),
    (["train", "--config", "{root}/bad.yml"], "not valid YAML at line 4"),
    # selections
    (["validate", "--source", "demo", "--product", "cci_passive"], "--product applies to"),
]


@pytest.mark.parametrize("argv, fragment", CASES, ids=[
    "date-13-45", "date-02-30", "date-5000", "date-outside", "date-gap-year",
    "series-start", "export-end", "validate-start", "region-1e308", "region-nan",
    "region-outside", "region-swapped", "region-three", "lookback-neg", "lookback-text",
    "series-region", "series-tile", "out-folder", "export-out", "world-missing",
    "ckpt-flipped", "ckpt-html", "ckpt-missing", "catalog-yaml", "config-yaml",
    "product-demo"])
def test_user_mistakes_are_one_line_exit_1(capsys, files, argv, fragment):
    argv = [a.replace("{root}", str(files)) for a in argv]
    if argv[0] == "predict" and "--world" not in argv:
        argv += ["--world", str(files / "world.zarr")]
    rc, err = run(capsys, *argv)
    one_line_error(rc, err, argv[0], fragment)


def test_a_region_partly_outside_the_data_is_clamped_with_a_note(capsys, files):
    rc = main(["predict", "--region=-105,31,-96,34", "--date", "2012-07-20", "--world",
               str(files / "world.zarr"), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "clamped to the data's extent: (-100, 31, -96, 34)" in err
    assert "region -100,31,-96,34" in out


def test_verbose_adds_the_traceback(capsys, files):
    rc, err = run(capsys, "predict", REGION, "--date", "2012-07-20", "--checkpoint",
                  str(files / "page.pt"), "--world", str(files / "world.zarr"), "-v")
    assert rc == 1 and err.startswith("gapfill predict: error:") and "Traceback" in err


def test_os_errors_name_their_file():
    msg = describe(PermissionError(13, "Permission denied", "/root/x.nc"))
    assert msg == "/root/x.nc: Permission denied"
    assert "\n" not in describe(RuntimeError("a\nb"))


def test_validate_refuses_an_unknown_product_before_reading_stations(capsys, tmp_path,
                                                                    monkeypatch):
    from tests.test_catalog import write_catalog

    opened: list[str] = []

    def never(*args, **kwargs):
        opened.append("stations")
        raise AssertionError("stations were read")

    monkeypatch.setattr("data_catalog.catalog.Source.open", never)
    cat = write_catalog(tmp_path, """
        sources:
          st: {driver: ismn, args: {path: ismn}}
          pt: {driver: cell_series, args: {folder: cells}}
          kit: {driver: kit, args: {members: {stations: st, cci_passive: pt}}}
        """)
    rc, err = run(capsys, "validate", "--source", "kit", "--product", "nonexistent",
                  "--catalog", str(cat))
    one_line_error(rc, err, "validate", "has no product nonexistent")
    assert opened == []


def test_catalog_list_does_not_call_a_truncated_file_available(capsys, tmp_path):
    import json

    from tests.test_catalog import write_catalog
    from tests.test_readers_lprm import write_lprm

    data = tmp_path / "data"
    data.mkdir()
    good = data / "LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"
    write_lprm(good)
    cut = data / "LPRM-AMSR2_L3_D_SOILM3_V001_20150402013507.nc4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cat = write_catalog(tmp_path, f"""
        sources:
          whole: {{driver: lprm, args: {{path: {good}}}}}
          cut: {{driver: lprm, args: {{path: {cut}}}}}
        """)
    rc = main(["catalog", "list", "--json", "--catalog", str(cat)])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rc == 0
    assert rows["whole"]["available"] is True and "problem" not in rows["whole"]
    assert rows["cut"]["available"] is False and str(cut) in rows["cut"]["problem"]
    rc = main(["catalog", "list", "--catalog", str(cat)])
    out = capsys.readouterr().out
    assert " damaged " in next(ln for ln in out.splitlines() if ln.startswith("cut "))


def test_argument_errors_are_one_line_exit_1(capsys):
    rc, err = run(capsys, "predict", "--date", "2015-06-01")  # --region missing
    one_line_error(rc, err, "predict", "--region")
