"""Shared fixtures: where the real sample data is, and small canonical datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_catalog import locations, schema

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``GAPFILL_DATA_ROOT`` or ``../shared/data`` beside the repository
    (:func:`data_catalog.locations.data_root`)."""
    return locations.data_root().resolve()


@pytest.hookimpl(trylast=True)  # after tests/browser/conftest.py has marked its tests
def pytest_collection_modifyitems(config, items):
    """Browser tests run last: playwright's sync API leaves an event loop running in the
    main thread, where later plain tests that start one of their own (asyncio.run) fail."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if not (root / "README.md").exists():
        pytest.skip(f"real sample data not found at {root} (set GAPFILL_DATA_ROOT)")
    return root


@pytest.fixture
def mock_ds():
    return schema.mock_grid_dataset()


@pytest.fixture
def mock_station_data(mock_ds):
    return schema.mock_stations(mock_ds)


@pytest.fixture(scope="session")
def world_path(tmp_path_factory) -> Path:
    """A small demo world (:func:`bench.serving.build_small_world`), built once a session
    and only read by the tests that use it."""
    from bench.serving import build_small_world

    return build_small_world(tmp_path_factory.mktemp("small-world") / "world.zarr")


@pytest.fixture
def env(world_path, tmp_path, monkeypatch) -> Path:
    """The app's environment on :func:`world_path`: that world as the demo, an empty
    cache of the test's own and no checkpoints."""
    monkeypatch.setenv("GAPFILL_DEMO", str(world_path))
    monkeypatch.setenv("GAPFILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GAPFILL_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    return world_path


@pytest.fixture(scope="session")
def demo_world_path() -> Path:
    """The built demo world (``locations.demo_world()``); skips when it is not built."""
    path = locations.demo_world()
    if not path.exists():
        pytest.skip(f"demo world not built at {path} (run `gapfill demo-data`)")
    return path


@pytest.fixture(scope="session")
def demo_world(demo_world_path):
    """The built demo world, opened lazily (:func:`data_catalog.worlds.open_world`)."""
    from data_catalog.worlds import open_world

    return open_world(demo_world_path)
