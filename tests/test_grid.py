"""Grid facts (data_catalog/grid.py) and the one resolver of locations."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog import grid, locations
from data_catalog.errors import EmptySelectionError, OutOfRangeError

LAT = np.arange(30.125, 46, 0.25)
LON = np.arange(-99.875, -84, 0.25)


def test_resolution_bounds_and_edges():
    assert grid.resolution(LON) == 0.25 and grid.resolution([5.0]) == grid.DEFAULT_RES
    assert grid.bounds(LAT, LON) == (-100.0, 30.0, -84.0, 46.0)
    e = grid.edges(LON)
    assert e.size == LON.size + 1 and e[0] == -100.0 and e[-1] == -84.0


def test_centres_land_on_the_global_quarter_degree_grid():
    np.testing.assert_allclose(grid.centres(-100.0, -99.6), [-99.875, -99.625])
    np.testing.assert_allclose(grid.centres(0.1, 0.2), [0.125])


def test_index_slices_snap_and_refuse():
    la, lo = grid.index_slices(LAT, LON, (-98, 34, -94, 38))
    assert (la.start, la.stop, lo.start, lo.stop) == (16, 32, 8, 24)
    la, lo = grid.index_slices(LAT, LON, (-95.0, 35.0, -95.0, 35.0))  # a point: one cell
    assert la.stop - la.start == 1 and lo.stop - lo.start == 1
    for bad in [(0, 0, 10, 10), (-90, 40, -95, 45), (float("nan"), 30, -90, 40)]:
        with pytest.raises(OutOfRangeError):
            grid.index_slices(LAT, LON, bad)


def test_index_slices_without_snapping_refuse_an_empty_box():
    la, lo = grid.index_slices(LAT, LON, (-98, 34, -94, 38), snap=False)
    assert (la.start, la.stop, lo.start, lo.stop) == (16, 32, 8, 24)  # same cells
    with pytest.raises(EmptySelectionError, match="no grid cell centre"):
        grid.index_slices(LAT, LON, (-95.1, 35.05, -95.05, 35.1), snap=False)
    la, lo = grid.index_slices(LAT, LON, (-95.1, 35.05, -95.05, 35.1))  # snapped: one cell
    assert la.stop - la.start == 1 and lo.stop - lo.start == 1


def test_help_default_names_the_variable_and_where_it_points(monkeypatch, tmp_path):
    monkeypatch.setenv("GAPFILL_SERIES", str(tmp_path / "50%" / "s.zarr"))
    assert locations.resolve("GAPFILL_SERIES") == locations.series_store()
    text = locations.help_default("GAPFILL_SERIES")
    assert text.startswith("$GAPFILL_SERIES, now ") and "50%%" in text  # argparse-safe
    for name in locations.VARIABLES:  # every documented variable resolves
        assert locations.resolve(name) == getattr(locations, RESOLVERS[name])()


RESOLVERS = {"GAPFILL_CATALOG": "catalog_file", "GAPFILL_DATA_ROOT": "data_root",
             "GAPFILL_DEMO": "demo_world", "GAPFILL_WORLDS": "worlds_dir",
             "GAPFILL_SERIES": "series_store", "GAPFILL_CHECKPOINTS": "checkpoint_dir",
             "GAPFILL_CACHE": "cache_dir"}


def test_nearest_index_marks_points_outside():
    np.testing.assert_array_equal(grid.nearest_index(LON, [-100.2, -99.9, -84.1, -83.8]),
                                  [-1, 0, 63, -1])


def test_locations_follow_the_environment(monkeypatch, tmp_path):
    for name in locations.VARIABLES:
        monkeypatch.setenv(name, str(tmp_path / name))
    assert locations.demo_world() == tmp_path / "GAPFILL_DEMO"
    assert locations.checkpoint_dir() == tmp_path / "GAPFILL_CHECKPOINTS"
    assert locations.series_store() == tmp_path / "GAPFILL_SERIES"
    assert locations.cache_dir() == tmp_path / "GAPFILL_CACHE"
    assert locations.catalog_file() == tmp_path / "GAPFILL_CATALOG"
    assert locations.path_variables()["GAPFILL_WORLDS"] == str(tmp_path / "GAPFILL_WORLDS")
    monkeypatch.delenv("GAPFILL_DEMO")
    assert locations.demo_world() == locations.REPO / "data" / "demo" / "world.zarr"
