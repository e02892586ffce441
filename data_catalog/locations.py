"""Where things live: the one place that resolves every store, folder and file.

Every package asks here; nobody keeps a private copy of a default path or reads one of
these environment variables itself.  Each location is an environment variable with a
documented default (the table below, also in ``docs/ARCHITECTURE.md``):

=======================  ========================================  =====================
variable                 default                                   what
=======================  ========================================  =====================
``GAPFILL_CATALOG``      ``data_catalog/catalog.yml``              the catalog file
``GAPFILL_DATA_ROOT``    ``<repo>/../shared/data``                 real sample kits
``GAPFILL_DEMO``         ``<repo>/data/demo/world.zarr``           the demo world
``GAPFILL_WORLDS``       ``<repo>/data/worlds``                    assembled worlds
``GAPFILL_SERIES``       ``<repo>/data/series/series.zarr``        the series store
``GAPFILL_CHECKPOINTS``  ``<repo>/model/checkpoints``              model checkpoints
``GAPFILL_CACHE``        platformdirs user cache ``amsr-gapfill``  caches
=======================  ========================================  =====================

The catalog names the demo world and the series store as sources too (``${GAPFILL_DEMO}``
and ``${GAPFILL_SERIES}`` in ``catalog.yml`` expand through :func:`path_variables`), so a
user's own catalog can point them anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: variable -> what it names (the defaults are computed by the functions below)
VARIABLES: dict[str, str] = {
    "GAPFILL_CATALOG": "the catalog file",
    "GAPFILL_DATA_ROOT": "real sample kits (../shared/data)",
    "GAPFILL_DEMO": "the demo world store",
    "GAPFILL_WORLDS": "folder of assembled worlds",
    "GAPFILL_SERIES": "the seamless series store",
    "GAPFILL_CHECKPOINTS": "folder of model checkpoints",
    "GAPFILL_CACHE": "inference cache and ISMN metadata cache",
}


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def catalog_file() -> Path:
    """``$GAPFILL_CATALOG`` or the built-in ``data_catalog/catalog.yml``."""
    return _env_path("GAPFILL_CATALOG", REPO / "data_catalog" / "catalog.yml")


def data_root() -> Path:
    """``$GAPFILL_DATA_ROOT`` or ``<repo>/../shared/data`` (the real sample kits)."""
    return _env_path("GAPFILL_DATA_ROOT", REPO.parent / "shared" / "data")


def demo_world() -> Path:
    """``$GAPFILL_DEMO`` or ``<repo>/data/demo/world.zarr``."""
    return _env_path("GAPFILL_DEMO", REPO / "data" / "demo" / "world.zarr")


def worlds_dir() -> Path:
    """``$GAPFILL_WORLDS`` or ``<repo>/data/worlds``: where assembled worlds go by default."""
    return _env_path("GAPFILL_WORLDS", REPO / "data" / "worlds")


def series_store() -> Path:
    """``$GAPFILL_SERIES`` or ``<repo>/data/series/series.zarr`` (``build-series``)."""
    return _env_path("GAPFILL_SERIES", REPO / "data" / "series" / "series.zarr")


def checkpoint_dir() -> Path:
    """``$GAPFILL_CHECKPOINTS`` or ``<repo>/model/checkpoints`` (the shipped models)."""
    return _env_path("GAPFILL_CHECKPOINTS", REPO / "model" / "checkpoints")


def cache_dir() -> Path:
    """``$GAPFILL_CACHE`` or the platformdirs user cache folder ``amsr-gapfill``."""
    value = os.environ.get("GAPFILL_CACHE")
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("amsr-gapfill"))


def path_variables() -> dict[str, str]:
    """The ``${VAR}`` values that catalog paths may use, as strings."""
    return {
        "GAPFILL_DATA_ROOT": str(data_root()),
        "GAPFILL_DEMO": str(demo_world()),
        "GAPFILL_WORLDS": str(worlds_dir()),
        "GAPFILL_SERIES": str(series_store()),
        "GAPFILL_CHECKPOINTS": str(checkpoint_dir()),
    }


def resolve(variable: str) -> Path:
    """Where the location named by ``variable`` (a key of :data:`VARIABLES`) points now."""
    return {
        "GAPFILL_CATALOG": catalog_file, "GAPFILL_DATA_ROOT": data_root,
        "GAPFILL_DEMO": demo_world, "GAPFILL_WORLDS": worlds_dir,
        "GAPFILL_SERIES": series_store, "GAPFILL_CHECKPOINTS": checkpoint_dir,
        "GAPFILL_CACHE": cache_dir,
    }[variable]()


def help_default(variable: str) -> str:
    """A command-line help's ``default:`` text: the variable and where it points now
    (``%`` escaped for argparse)."""
    return f"${variable}, now {resolve(variable)}".replace("%", "%%")
