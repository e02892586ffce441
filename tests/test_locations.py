"""One way in: every package finds every store, folder and file through
``data_catalog.locations``, and grid facts through ``data_catalog.grid``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from data_catalog import locations

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def everything_elsewhere(tmp_path, monkeypatch):
    """Every location variable set to a folder of the test, with a tiny demo world, a
    stand-in checkpoint, a series store and a copy of the built-in catalog there."""
    from bench.serving import write_standin_checkpoint
    from data_catalog.catalog import BUILTIN_CATALOG
    from data_catalog.demo import build_demo_world
    from tests.test_worlds import write_series

    env = {name: tmp_path / name.lower() for name in locations.VARIABLES}
    env["GAPFILL_CATALOG"] = tmp_path / "catalog.yml"
    env["GAPFILL_DEMO"] = tmp_path / "demo.zarr"
    env["GAPFILL_SERIES"] = tmp_path / "series.zarr"
    for name, path in env.items():
        monkeypatch.setenv(name, str(path))
    shutil.copy(BUILTIN_CATALOG, env["GAPFILL_CATALOG"])
    build_demo_world(env["GAPFILL_DEMO"], west=-97, south=35, east=-96, north=36,
                     start="2015-06-01", end="2015-06-10", n_stations=2, progress=False)
    write_standin_checkpoint(env["GAPFILL_CHECKPOINTS"])
    write_series(env["GAPFILL_SERIES"])
    return env


def test_every_package_resolves_the_same_locations(everything_elsewhere, tmp_path):
    from app.checkpoints import checkpoint_choices
    from app.data import DataHub
    from app.outputs import resolve_checkpoint
    from bench.series import _shipped_available
    from data_catalog.catalog import load_catalog
    from data_catalog.readers.ismn import default_meta_root
    from gapfill.cli import main
    from model import datasets, inference, points, series
    from model.cache import InferenceCache, file_sha256
    from tests.conftest import shared_data_root
    from validation import filled
    from validation.sources import DemoSource

    env = everything_elsewhere
    demo, ckpts, store = env["GAPFILL_DEMO"], env["GAPFILL_CHECKPOINTS"], env["GAPFILL_SERIES"]
    # the catalog file, and the paths it expands
    cat = load_catalog()
    assert cat.path == env["GAPFILL_CATALOG"]
    assert cat["demo"].args["path"] == str(demo)
    assert cat["series"].args["path"] == str(store)
    assert cat["hawaii_ismn"].args["path"].startswith(str(env["GAPFILL_DATA_ROOT"]) + "/")
    assert shared_data_root() == env["GAPFILL_DATA_ROOT"].resolve()
    # the demo world, opened by each package
    hub = DataHub(readahead=0)
    assert hub.catalog().path == env["GAPFILL_CATALOG"]
    opened = {
        "catalog": cat["demo"].open(),
        "model.datasets": datasets.open_world(),
        "model.series": series.input_world(str(series.resolve_world("demo"))),
        "app": hub.world("demo"),
        "validation": DemoSource(compute_filled=False).world,
    }
    assert {k: ds.attrs["source_path"] for k, ds in opened.items()} == \
        dict.fromkeys(opened, str(demo))
    assert len(hub.stations("demo")[0]) == 2
    # checkpoints
    assert inference.default_checkpoint() == ckpts / "amsr2.pt"
    assert set(inference.load_models(device="cpu")) == {"amsr2"}  # the stand-in
    assert checkpoint_choices()["amsr2"][1] == str(ckpts / "amsr2.pt")
    assert resolve_checkpoint("") is None  # the folder's models, by radiometer
    assert points.has_model()
    assert _shipped_available()
    prov = series.model_provenance(series.SHIPPED_MODELS, None)
    assert prov["checkpoints"] == {"amsr2.pt": file_sha256(ckpts / "amsr2.pt")}
    # the cache
    assert InferenceCache().root == env["GAPFILL_CACHE"]
    assert hub.cache.root == env["GAPFILL_CACHE"]
    assert default_meta_root() == env["GAPFILL_CACHE"] / "ismn_meta"
    # the series store
    assert filled.series_store(None) == store
    assert main(["export-netcdf", "--out", str(tmp_path / "out.nc")]) == 0
    import xarray as xr

    with xr.open_dataset(tmp_path / "out.nc") as nc:
        assert nc.attrs["history"].endswith(f"from {store.name}")
    hub.close()


# ---------------------------------------------------------------- no private copies
#: Environment switches that are not locations (each read in one place).
SWITCHES = {"GAPFILL_CPU_PRECISION": "model/inference.py", "GAPFILL_APP_MOCK": "app/data.py"}
#: Files allowed to break the rule, with the reason (none today).
PENDING: dict[str, str] = {}
ENV_READ = re.compile(r"os\.(?:environ\.get\(|environ\[|getenv\()\s*[\"'](GAPFILL_\w+)")
MEDIAN_DIFF = re.compile(r"median\(\s*(?:np\.)?diff\(")


def _sources():
    skip = {".venv", ".git", "build", "node_modules"}
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO)
        if not skip & set(rel.parts) and rel != Path(__file__).relative_to(REPO):
            yield rel.as_posix(), path.read_text()


def test_no_file_reads_a_location_variable_but_locations():
    found = []
    for rel, text in _sources():
        for name in ENV_READ.findall(text):
            if rel in ("data_catalog/locations.py", *PENDING) or SWITCHES.get(name) == rel:
                continue
            found.append(f"{rel}: {name}")
    assert not found, "read through data_catalog.locations instead: " + ", ".join(found)
    assert not set(SWITCHES) & set(locations.VARIABLES)


def test_no_file_computes_a_resolution_but_grid():
    found = [rel for rel, text in _sources() if MEDIAN_DIFF.search(text)
             and rel not in ("data_catalog/grid.py", *PENDING)]
    assert not found, "use data_catalog.grid (resolution, bounds, edges): " + ", ".join(found)


def test_the_scans_can_fail(tmp_path):
    assert ENV_READ.findall('x = os.environ.get("GAPFILL_DEMO", "a")') == ["GAPFILL_DEMO"]
    assert ENV_READ.findall("os.environ['GAPFILL_SERIES']") == ["GAPFILL_SERIES"]
    assert MEDIAN_DIFF.search("res = float(np.median(np.diff(lon)))")
    assert len(list(_sources())) > 50  # it does see the source tree
