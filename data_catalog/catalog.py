"""The data catalog: named sources from ``catalog.yml`` (intake v1 layout), a typed loader.

Each source names a driver (which reader opens it: :data:`data_catalog.drivers.DRIVERS`),
the reader's ``args`` (paths relative to the catalog file or built from the location
variables of :func:`data_catalog.locations.path_variables`, e.g. ``${GAPFILL_DATA_ROOT}``,
``${GAPFILL_DEMO}``, ``${GAPFILL_SERIES}``) and display ``metadata`` (label, units, cmap,
clim, valid period, citation, download). Users point a source at their own downloads by
editing a copy of the YAML and passing it with ``--catalog`` or ``GAPFILL_CATALOG``; no
code changes. What a source holds at one point is :mod:`data_catalog.points`.

>>> cat = load_catalog()                                    # doctest: +SKIP
>>> cat.names()[:2]                                         # doctest: +SKIP
['demo', 'demo_stations']
>>> ds = cat["lprm_amsr2"].open(region=(-100, 30, -84, 46))  # doctest: +SKIP
"""

from __future__ import annotations

import glob as _glob
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from data_catalog import locations
from data_catalog.drivers import ALIASES, DRIVERS, PATH_ARGS, driver_name
from data_catalog.errors import CatalogError, MissingFileError
from data_catalog.inputs import yaml_problem

log = logging.getLogger(__name__)

BUILTIN_CATALOG = Path(__file__).resolve().parent / "catalog.yml"

#: What a kit member is (metadata ``role``), which says how validation compares it:
#: ``passive`` only on AMSR days, ``gap_filled`` also on its gap-filled days, ``active``
#: a scatterometer (ASCAT), ``combined`` a merged product, ``insitu`` the stations.
ROLES = ("passive", "gap_filled", "active", "combined", "insitu")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand(value: str, base: Path, where: str) -> str:
    """Expand ``${VAR}``/``~`` in a path string and make it absolute relative to ``base``."""
    defaults = locations.path_variables()

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name in defaults:
            return defaults[name]
        if name in os.environ:
            return os.environ[name]
        raise CatalogError(f"{where}: environment variable ${{{name}}} is not set")

    text = os.path.expanduser(_VAR.sub(sub, str(value)))
    p = Path(text)
    return str(p if p.is_absolute() else (base / p))


# ---------------------------------------------------------------- sources
@dataclass
class Source:
    """One named catalog entry.

    Attributes
    ----------
    name, description, driver
        From the YAML.
    args
        Reader arguments, path values already expanded to absolute paths.
    metadata
        Display metadata: ``label``, ``units``, ``cmap``, ``clim``, ``start``, ``end``,
        ``citation``, ``download`` (and anything else the YAML gives).
    """

    name: str
    description: str
    driver: str
    args: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    catalog: Catalog | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        """``grid``, ``stations``, ``point`` or ``kit``."""
        return DRIVERS[self.driver].kind

    @property
    def start(self) -> str | None:
        return _date_text(self.metadata.get("start"))

    @property
    def end(self) -> str | None:
        return _date_text(self.metadata.get("end"))

    def members(self) -> dict[str, Source]:
        """The member sources of a kit (role -> source); empty for other drivers."""
        if self.driver != "kit":
            return {}
        assert self.catalog is not None
        return {role: self.catalog[name] for role, name in self.args["members"].items()}

    def _declared_paths(self) -> list[str]:
        out = []
        for key in PATH_ARGS:
            if key == "meta_path" or key not in self.args:
                continue
            vals = self.args[key]
            out += [str(v) for v in (vals if isinstance(vals, list) else [vals])]
        return out

    def available(self) -> bool:
        """Whether every file or folder the source reads is present."""
        if self.driver == "kit":
            return all(m.available() for m in self.members().values())
        paths = self._declared_paths()
        if not paths:
            return False
        for p in paths:
            if any(ch in p for ch in "*?["):
                if not _glob.glob(p):
                    return False
            elif not Path(p).exists():
                return False
        return True

    def paths(self) -> list[Path]:
        """Every file the source reads (folders listed recursively), e.g. for fingerprints."""
        if self.driver == "kit":
            return sorted({p for m in self.members().values() for p in m.paths()})
        out: list[Path] = []
        for p in self._declared_paths():
            if any(ch in p for ch in "*?["):
                out += [Path(x) for x in _glob.glob(p)]
                continue
            path = Path(p)
            if path.is_dir() and path.suffix != ".zarr":
                out += [f for f in path.rglob("*") if f.is_file()
                        and "python_metadata" not in f.parts]
            elif path.exists():
                out.append(path)
        return sorted(set(out))

    def open(self, **kwargs):
        """Open the source with its reader; ``kwargs`` override or add reader arguments.

        Returns
        -------
        xarray.Dataset (grid), tuple (table, series) (stations), pandas.DataFrame (point:
        needs ``lat=``, ``lon=``), or for a kit a dict ``role -> Source`` of its members.
        """
        if self.driver == "kit":
            return self.members()
        log.debug("opening %s (%s)", self.name, self.driver)
        return DRIVERS[self.driver].open(self.args, **kwargs)

    def describe_point(self, date, lat: float, lon: float) -> list[dict]:
        """What the source holds at one day and point, in canonical units (one row per
        member for a kit). See :func:`data_catalog.points.describe_point`."""
        from data_catalog.points import describe_point

        return describe_point(self, date, lat, lon)


def _date_text(value) -> str | None:
    if value is None or value == "":
        return None
    return pd.Timestamp(value).strftime("%Y-%m-%d")


@dataclass
class Catalog:
    """The sources of one catalog file."""

    path: Path
    sources: dict[str, Source]
    metadata: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Source names in file order."""
        return list(self.sources)

    def __getitem__(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise CatalogError(f"unknown source {name!r} in {self.path}; valid names: "
                               f"{', '.join(self.sources)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.sources

    def __iter__(self) -> Iterator[Source]:
        return iter(self.sources.values())

    def __len__(self) -> int:
        return len(self.sources)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and check a catalog file.

    Parameters
    ----------
    path
        The YAML file; default :func:`data_catalog.locations.catalog_file`
        (``$GAPFILL_CATALOG`` or the built-in one).

    Raises
    ------
    CatalogError
        The file is missing or malformed, a source lacks a field, names an unknown driver,
        or a kit names an unknown member.
    """
    p = Path(path) if path is not None else locations.catalog_file()
    if not p.is_file():
        raise CatalogError(f"catalog file not found: {p}")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(f"{p}: not valid YAML at {yaml_problem(exc)}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), dict) \
            or not doc["sources"]:
        raise CatalogError(f"{p}: expected a mapping with a non-empty 'sources' mapping")
    base = p.resolve().parent
    cat = Catalog(p, {}, dict(doc.get("metadata") or {}))
    for name, spec in doc["sources"].items():
        where = f"{p}: source {name!r}"
        if not isinstance(spec, dict):
            raise CatalogError(f"{where}: expected a mapping")
        driver = driver_name(spec.get("driver"))
        if driver is None:
            raise CatalogError(f"{where}: unknown driver {spec.get('driver')!r}; valid "
                               f"drivers: {', '.join([*DRIVERS, *ALIASES])}")
        args = dict(spec.get("args") or {})
        for key in PATH_ARGS:
            if key in args and args[key] is not None:
                vals = args[key]
                args[key] = ([expand(v, base, where) for v in vals] if isinstance(vals, list)
                             else expand(vals, base, where))
        meta = dict(spec.get("metadata") or {})
        for key in ("start", "end"):
            if meta.get(key) is not None:
                try:
                    pd.Timestamp(meta[key])
                except (ValueError, TypeError) as exc:
                    raise CatalogError(f"{where}: metadata {key} {meta[key]!r} is not a "
                                       "date") from exc
        if meta.get("clim") is not None and (not isinstance(meta["clim"], list)
                                             or len(meta["clim"]) != 2):
            raise CatalogError(f"{where}: metadata clim must be [low, high]")
        if meta.get("role") is not None and meta["role"] not in ROLES:
            raise CatalogError(f"{where}: metadata role {meta['role']!r}; valid roles: "
                               f"{', '.join(ROLES)}")
        cat.sources[name] = Source(name, str(spec.get("description", "")), driver, args,
                                   meta, cat)
    for src in cat:
        if src.driver == "kit":
            members = src.args.get("members")
            if not isinstance(members, dict) or not members:
                raise CatalogError(f"{p}: kit {src.name!r} needs args.members (role: source)")
            for role, member in members.items():
                if member not in cat.sources or member == src.name:
                    raise CatalogError(f"{p}: kit {src.name!r} member {role}: unknown source "
                                       f"{member!r}; valid names: {', '.join(cat.sources)}")
            compare = src.metadata.get("compare")
            if compare is not None and (not isinstance(compare, list)
                                        or any(c not in members for c in compare)):
                raise CatalogError(f"{p}: kit {src.name!r} metadata compare must list members "
                                   f"({', '.join(members)}), got {compare!r}")
    return cat


__all__ = ["BUILTIN_CATALOG", "Catalog", "DRIVERS", "ROLES", "Source", "load_catalog",
           "world_location"]


def world_location(name: str | Path, catalog: str | Path | None = None) -> Path:
    """The store a command-line ``--world``/``--source`` names: a path, or the name of a
    catalog source with the ``world`` driver (an assembled world listed in the catalog).

    Raises
    ------
    CatalogError
        The catalog's source of that name is not a world.
    MissingFileError
        Neither a store nor a catalog source of that name exists.
    """
    p = Path(name)
    if p.exists() or p.suffix == ".zarr" or len(p.parts) > 1:
        return p
    cat = load_catalog(catalog)
    if str(name) not in cat:
        raise MissingFileError("neither a world store nor a source of the catalog "
                               f"{cat.path}", p)
    src = cat[str(name)]
    if src.driver != "world":
        raise CatalogError(f"catalog source {src.name!r} is a {src.driver} source, not a "
                           "world (driver: world)")
    return Path(src.args["path"])
