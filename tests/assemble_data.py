"""Shared data of the ``gapfill assemble`` tests: parts of the demo world written as native
product files (LPRM days, C3S ACTIVE images, H SAF cells + grid) and a catalog naming them.

Session fixtures, imported by the test modules that use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from data_catalog import locations, schema

#: 32 x 32 cells (-94..-86 E, 30..38 N) with every gap category in the winter period
REGION = (-94.0, 30.0, -86.0, 38.0)
WINTER = ("2012-12-01", "2013-01-14")
VARIABLES = [schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.LAND]


def demo_part(start: str, end: str, region=REGION):
    """The demo world's canonical variables over a region and period, loaded."""
    from data_catalog.demo import open_demo_world

    path = locations.demo_world()
    if not path.exists():
        pytest.skip(f"demo world not built at {path} (make demo)")
    w, s, e, n = region
    ds = open_demo_world(path)
    return ds.sel({schema.TIME: slice(start, end), schema.LAT: slice(s, n),
                   schema.LON: slice(w, e)})[VARIABLES].load()


def native_set(folder: Path, world, **kw) -> dict:
    """Write ``world`` as native files under ``folder``; the catalog names the sources
    ``rt_lprm``, ``rt_active`` and ``rt_hsaf``."""
    from bench.native_files import world_to_native

    paths = world_to_native(world, folder, **kw)
    cat = {"sources": {
        "rt_lprm": {"driver": "lprm", "description": "round-trip LPRM AMSR2 days",
                    "args": {"paths": str(paths["lprm"]), "band": "c1"}},
        "rt_active": {"driver": "cci_images", "description": "round-trip C3S ACTIVE",
                      "args": {"paths": str(paths["active"] / "*.nc")}},
        "rt_hsaf": {"driver": "cell_series", "description": "round-trip H SAF H119 cells",
                    "args": {"folder": str(paths["hsaf"]), "grid": str(paths["grid"])}},
    }}
    (folder / "catalog.yml").write_text(yaml.safe_dump(cat))
    return {**paths, "catalog": folder / "catalog.yml", "world": world}


@pytest.fixture(scope="session")
def winter(tmp_path_factory):
    """45 winter days of the round-trip region, every day a file."""
    return native_set(tmp_path_factory.mktemp("winter"), demo_part(*WINTER))


@pytest.fixture(scope="session")
def long_sparse(tmp_path_factory):
    """400 days (two blocks of a 365-day time chunk) of 8 x 8 cells, a file every 8th day:
    for resumption and Dask runs, which compare runs with each other."""
    world = demo_part("2012-07-02", "2013-08-05", region=(-92.0, 33.0, -90.0, 35.0))
    return native_set(tmp_path_factory.mktemp("long"), world, every=8)
