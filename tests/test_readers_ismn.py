"""ISMN reader (through the ismn package): fixtures written here, and the real downloads."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_catalog import schema
from data_catalog.errors import EmptySelectionError, FormatError, MissingFileError
from data_catalog.readers import daily_mean, read_ismn


def write_station(root: Path, network: str, station: str, lat: float, lon: float,
                  depth: tuple[float, float], values: list[tuple[str, float, str]],
                  probe: str = "ThetaProbe-ML2X") -> Path:
    """One ISMN header_values file in a NETWORK/STATION tree."""
    folder = root / network / station
    folder.mkdir(parents=True, exist_ok=True)
    t0 = values[0][0].replace("/", "").split()[0]
    t1 = values[-1][0].replace("/", "").split()[0]
    name = (f"{network}_{network}_{station}_sm_{depth[0]:.6f}_{depth[1]:.6f}_{probe}_"
            f"{t0}_{t1}.stm")
    lines = [f"{network:<10} {network:<15} {station:<17} {lat:10.5f} {lon:11.5f}  100.00"
             f" {depth[0]:7.2f} {depth[1]:7.2f} {probe}"]
    lines += [f"{when}   {v:.4f} {flag} M" for when, v, flag in values]
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder / name


def hours(day: str, vals: list[float], flags: list[str]) -> list[tuple[str, float, str]]:
    t = pd.Timestamp(day)
    return [((t + pd.Timedelta(hours=h)).strftime("%Y/%m/%d %H:%M"), v, f)
            for h, (v, f) in enumerate(zip(vals, flags, strict=True))]


@pytest.fixture
def download(tmp_path):
    root = tmp_path / "ismn_download"
    good = hours("2017-01-01", [0.20, 0.22, 0.24, 0.50], ["G", "G", "G", "D04"]) + \
        hours("2017-01-02", [0.30, 0.32], ["G", "G"])
    write_station(root, "NETA", "Alpha", 45.0, 10.0, (0.05, 0.05), good)
    write_station(root, "NETA", "Alpha", 45.0, 10.0, (0.20, 0.20),
                  hours("2017-01-01", [0.40, 0.40], ["G", "G"]))
    write_station(root, "NETB", "Beta", -33.5, 150.25, (0.0, 0.05),
                  hours("2017-01-01", [0.10, 0.12], ["G", "C01"]))
    write_station(root, "NETB", "Deep", -33.0, 150.0, (0.30, 0.30),
                  hours("2017-01-01", [0.10], ["G"]))
    return root


def test_fixture_stations_form(download, tmp_path):
    meta = tmp_path / "meta"
    table, series = read_ismn(download, meta_path=meta)
    assert list(table.columns) == list(schema.STATION_COLUMNS)
    assert list(table["id"]) == ["NETA.Alpha", "NETB.Beta"]  # Deep: no sensor top <= 0.10
    alpha = table.set_index("id").loc["NETA.Alpha"]
    assert alpha["lat"] == pytest.approx(45.0) and alpha["depth_from"] == pytest.approx(0.05)
    s = series["NETA.Alpha"]
    assert str(s.index.tz) == "UTC" and s.index.name == "time"
    assert list(s.columns) == ["sm", "flag"]
    assert (s["flag"] == "G").all() and len(s) == 5  # the D04 hour is dropped
    np.testing.assert_allclose(s["sm"].to_numpy(), [0.20, 0.22, 0.24, 0.30, 0.32])
    assert any(meta.iterdir())  # the ismn metadata cache went to meta_path ...
    assert not (download / "python_metadata").exists()  # ... never into the data


def test_fixture_flags_depth_zip_and_window(download, tmp_path):
    _, series = read_ismn(download, flags=None, meta_path=tmp_path / "m1")
    assert len(series["NETA.Alpha"]) == 6
    table, _ = read_ismn(download, depth=(0.15, 0.35), meta_path=tmp_path / "m2")
    assert sorted(table["id"]) == ["NETA.Alpha", "NETB.Deep"]
    assert float(table.set_index("id").loc["NETA.Alpha", "depth_from"]) == pytest.approx(0.2)
    zpath = tmp_path / "download.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in download.rglob("*.stm"):
            zf.write(f, f.relative_to(download))
    table, series = read_ismn(zpath, meta_path=tmp_path / "m3")
    assert list(table["id"]) == ["NETA.Alpha", "NETB.Beta"]
    _, series = read_ismn(download, start="2017-01-02", end="2017-01-02",
                          meta_path=tmp_path / "m4")
    assert len(series["NETA.Alpha"]) == 2


def test_daily_mean_known_values(download, tmp_path):
    _, series = read_ismn(download, meta_path=tmp_path / "meta")
    daily = daily_mean(series["NETA.Alpha"])
    assert list(daily.index.strftime("%Y-%m-%d")) == ["2017-01-01", "2017-01-02"]
    np.testing.assert_allclose(daily["sm"].to_numpy(), [0.22, 0.31])
    assert list(daily["count"]) == [3, 2]
    strict = daily_mean(series["NETA.Alpha"], min_count=3)
    assert np.isnan(strict["sm"].iloc[1])


def test_bad_inputs(tmp_path, download, caplog):
    with pytest.raises(MissingFileError):
        read_ismn(tmp_path / "absent", meta_path=tmp_path / "m")
    junk = tmp_path / "junk" / "NET" / "STA"
    junk.mkdir(parents=True)
    (junk / "not_ismn.stm").write_text("no good data here")
    with pytest.raises(FormatError, match="junk"):
        read_ismn(tmp_path / "junk", meta_path=tmp_path / "m0")
    with pytest.raises(EmptySelectionError, match="soil_moisture"):
        read_ismn(download, depth=(1.0, 2.0), meta_path=tmp_path / "m5")
    with pytest.raises(FormatError, match="inside the data folder"):
        read_ismn(download, meta_path=download / "python_metadata")


@pytest.mark.realdata
def test_real_hawaii_and_cosmos(shared_data, tmp_path):
    table, series = read_ismn(shared_data / "hawaii/ismn", meta_path=tmp_path / "hi")
    assert len(table) == 9 and set(table["network"]) == {"SCAN", "COSMOS"}
    assert table["lat"].between(18.9, 22.3).all()
    island = series["SCAN.IslandDairy"]
    # first line of the raw file: "2017/01/01 00:00 ... 0.4980 G M"
    assert island["sm"].iloc[0] == pytest.approx(0.498)
    assert island.index[0] == pd.Timestamp("2017-01-01 00:00", tz="UTC")
    assert (island["flag"] == "G").all()
    cosmos, _ = read_ismn(shared_data / "ismn/ceop_sep_cosmos", meta_path=tmp_path / "c")
    assert list(cosmos["name"]) == ["ARM-1", "Barrow-ARM"]  # 0-0.19 m: top within 0-0.10


@pytest.mark.realdata
def test_real_flat_skips_malformed(shared_data, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="data_catalog.readers.ismn"):
        table, _ = read_ismn(shared_data / "ismn/flat", meta_path=tmp_path / "flat")
    assert len(table) == 2  # header_values and ceop_sep read; old CEOP file skipped
    assert any("NBN" in r.getMessage() for r in caplog.records)
    with pytest.raises(FormatError, match="malformed"):
        read_ismn(shared_data / "ismn/flat/malformed", meta_path=tmp_path / "bad")
    z_table, _ = read_ismn(shared_data / "ismn/zip/Data_SMOSMANIA.zip",
                           meta_path=tmp_path / "zip")
    assert list(z_table["name"]) == ["Narbonne"]


def test_default_cache_outside_data_and_refreshed(download, tmp_path, monkeypatch):
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    table, _ = read_ismn(download)
    assert len(table) == 2
    caches = list((tmp_path / "cache" / "ismn_meta").iterdir())
    assert len(caches) == 1 and not (download / "python_metadata").exists()
    write_station(download, "NETC", "Gamma", 10.0, 10.0, (0.0, 0.05),
                  hours("2017-01-01", [0.3], ["G"]))
    table, _ = read_ismn(download)  # a new file: a new cache, the new station is seen
    assert list(table["id"]) == ["NETA.Alpha", "NETB.Beta", "NETC.Gamma"]
