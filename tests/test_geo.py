"""Offline Natural Earth geography: land mask, coastlines, cartopy configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_catalog import geo, schema
from data_catalog.errors import MissingFileError


def test_known_points_are_classified():
    # Gulf of Mexico, Oklahoma, Lake Michigan (a Natural Earth lake), Wisconsin
    lat = [27.0, 36.0, 43.5, 44.5]
    lon = [-90.0, -97.0, -87.0, -89.5]
    got = geo.land_mask(lat, lon, grid=False)
    assert got.tolist() == [False, True, False, True]


def test_lakes_can_count_as_land():
    assert bool(geo.land_mask(43.5, -87.0, grid=False, lakes=False))


def test_grid_mask_shape_and_orientation():
    lat = schema.grid_centres(26.0, 36.0, 0.5)  # Gulf coast in the south
    lon = schema.grid_centres(-98.0, -88.0, 0.5)
    mask = geo.land_mask(lat, lon)
    assert mask.shape == (len(lat), len(lon))
    assert mask.dtype == bool
    # southern rows are mostly sea, northern rows all land
    assert mask[0].mean() < 0.2
    assert mask[-1].all()


def test_coastlines_lie_in_the_box():
    box = (-100.0, 25.0, -84.0, 46.0)
    paths = geo.coastline_paths(*box)
    assert len(paths) > 3
    for p in paths:
        assert p.ndim == 2 and p.shape[1] == 2 and len(p) >= 2
        assert (p[:, 0] >= box[0] - 1e-9).all() and (p[:, 0] <= box[2] + 1e-9).all()
        assert (p[:, 1] >= box[1] - 1e-9).all() and (p[:, 1] <= box[3] + 1e-9).all()
    # the Gulf coast near 29.3N -94.8W (Galveston) is among the vertices
    pts = np.concatenate(paths)
    assert np.hypot(pts[:, 0] + 94.8, pts[:, 1] - 29.3).min() < 0.3


def test_coastlines_of_an_ocean_box_are_empty():
    assert geo.coastline_paths(-40.0, 20.0, -35.0, 25.0, lakes=False) == []


def test_unknown_scale_is_a_typed_error():
    with pytest.raises(MissingFileError, match="scale"):
        geo.coastline_paths(-100, 30, -90, 40, scale="5m")


def test_cartopy_is_configured_offline(tmp_path, monkeypatch):
    import cartopy
    import cartopy.io.shapereader as shpreader

    monkeypatch.setenv("CARTOPY_DATA_DIR", str(tmp_path / "cartopy"))
    old = dict(cartopy.config)
    try:
        dirs = geo.configure_cartopy_offline()
        assert Path(dirs["data_dir"]) == tmp_path / "cartopy"
        assert cartopy.config["data_dir"] == str(tmp_path / "cartopy")
        assert Path(cartopy.config["pre_existing_data_dir"]) == geo.natural_earth_dir()
        # resolves to the shipped file, so no downloader is ever started
        path = Path(shpreader.natural_earth(resolution="110m", category="physical",
                                            name="coastline"))
        assert path.is_relative_to(geo.natural_earth_dir())
        assert not any((tmp_path / "cartopy").rglob("*.shp"))
    finally:
        cartopy.config.clear()
        cartopy.config.update(old)
