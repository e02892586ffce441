"""The data catalog: named sources from ``catalog.yml`` (intake v1 layout), a typed loader.

Each source names a driver (which reader opens it), the reader's ``args`` (paths relative
to the catalog file or built from ``${GAPFILL_DATA_ROOT}`` / ``${GAPFILL_DEMO}``) and
display ``metadata`` (label, units, cmap, clim, valid period, citation, download). Users
point a source at their own downloads by editing a copy of the YAML and passing it with
``--catalog`` or ``GAPFILL_CATALOG``; no code changes.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from data_catalog import schema
from data_catalog.errors import CatalogError, GapfillError, OutOfRangeError
from data_catalog.inputs import yaml_problem

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parent
BUILTIN_CATALOG = PACKAGE_DIR / "catalog.yml"

#: Path arguments of each driver (expanded and made absolute on load).
PATH_ARGS = ("path", "paths", "folder", "grid", "land_grid", "meta_path")


def env_defaults() -> dict[str, str]:
    """The ``${VAR}`` values of catalog paths: the environment, else the documented defaults."""
    return {
        "GAPFILL_DATA_ROOT": os.environ.get("GAPFILL_DATA_ROOT",
                                            str(REPO.parent / "shared" / "data")),
        "GAPFILL_DEMO": os.environ.get("GAPFILL_DEMO",
                                       str(REPO / "data" / "demo" / "world.zarr")),
    }


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand(value: str, base: Path, where: str) -> str:
    """Expand ``${VAR}``/``~`` in a path string and make it absolute relative to ``base``."""
    defaults = env_defaults()

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


# ---------------------------------------------------------------- drivers
@dataclass(frozen=True)
class Driver:
    """How a driver opens its args, and what kind of thing it returns."""

    name: str
    kind: str  # "grid", "stations", "point", "kit"
    open: Callable[..., Any]


def _open_demo_world(args: dict, **kw):
    from data_catalog import demo

    return demo.open_demo_world(args.get("path"))


def _open_demo_stations(args: dict, **kw):
    from data_catalog import demo

    return demo.open_demo_stations(args.get("path"))


def _open_lprm(args: dict, **kw):
    from data_catalog.readers import read_lprm, read_lprm_files

    merged = {**args, **kw}
    date = merged.pop("date", None)
    if "paths" in merged:  # many daily files: a glob, a folder or a list
        if date is not None:
            merged["start"] = merged["end"] = date
        opts = {k: v for k, v in merged.items()
                if k in ("band", "region", "land_grid", "start", "end", "progress",
                         "require_data")}
        return read_lprm_files(merged["paths"], **opts)
    opts = {k: v for k, v in merged.items()
            if k in ("band", "region", "land_grid", "require_data")}
    return read_lprm(merged["path"], **opts)


def _open_cci_images(args: dict, **kw):
    from data_catalog.readers import read_cci_images

    merged = {**args, **kw}
    if "date" in merged:
        merged["start"] = merged["end"] = merged.pop("date")
    opts = {k: v for k, v in merged.items()
            if k in ("region", "sensors", "land_grid", "start", "end", "progress",
                     "require_data")}
    return read_cci_images(args["paths"], **opts)


def _open_cells(args: dict, **kw):
    from data_catalog.readers import read_cell_series

    merged = {**args, **kw}
    if "lat" not in merged or "lon" not in merged:
        raise CatalogError("a cell_series source is opened at a point: open(lat=..., lon=...)")
    opts = {k: v for k, v in merged.items()
            if k in ("grid", "max_dist_km", "units", "sm_kind", "start", "end")}
    return read_cell_series(merged["folder"], float(merged["lat"]), float(merged["lon"]),
                            **opts)


def _open_ismn(args: dict, **kw):
    from data_catalog.readers import read_ismn

    merged = {**args, **kw}
    opts = {k: v for k, v in merged.items()
            if k in ("variable", "depth", "flags", "networks", "meta_path", "start", "end")}
    if "depth" in opts:
        opts["depth"] = tuple(opts["depth"])
    return read_ismn(merged["path"], **opts)


DRIVERS: dict[str, Driver] = {
    d.name: d for d in (
        Driver("demo_world", "grid", _open_demo_world),
        Driver("demo_stations", "stations", _open_demo_stations),
        Driver("lprm", "grid", _open_lprm),
        Driver("cci_images", "grid", _open_cci_images),
        Driver("cell_series", "point", _open_cells),
        Driver("ismn", "stations", _open_ismn),
        Driver("kit", "kit", lambda args, **kw: None),  # opened by Source.open
    )
}


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
        member for a kit). See :func:`describe_point`."""
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


def default_catalog_path() -> Path:
    """``$GAPFILL_CATALOG`` or the built-in ``data_catalog/catalog.yml``."""
    env = os.environ.get("GAPFILL_CATALOG")
    return Path(env) if env else BUILTIN_CATALOG


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and check a catalog file.

    Parameters
    ----------
    path
        The YAML file; default :func:`default_catalog_path`.

    Raises
    ------
    CatalogError
        The file is missing or malformed, a source lacks a field, names an unknown driver,
        or a kit names an unknown member.
    """
    p = Path(path) if path is not None else default_catalog_path()
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
        driver = spec.get("driver")
        if driver not in DRIVERS:
            raise CatalogError(f"{where}: unknown driver {driver!r}; valid drivers: "
                               f"{', '.join(DRIVERS)}")
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
    return cat


# ---------------------------------------------------------------- one point, one day
SM_VARIABLES = (schema.AMSR_SM, "combined_sm", schema.ASCAT_SM, schema.TRUTH_SM)
GAP_NAMES = {f.value: f.meaning for f in schema.GAP_FLAGS}
SENSOR_NAMES = {f.value: f.label for f in schema.SENSOR_FLAGS}


def _as_date(date) -> pd.Timestamp:
    try:
        t = pd.Timestamp(date)
    except (ValueError, TypeError) as exc:
        raise OutOfRangeError(f"date {date!r} is not YYYY-MM-DD") from exc
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.normalize()


def _check_point(lat: float, lon: float) -> tuple[float, float]:
    if not (np.isfinite(lat) and np.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 360):
        raise OutOfRangeError(f"point ({lat}, {lon}) is not a valid latitude, longitude")
    return float(lat), float(((lon + 180.0) % 360.0) - 180.0)


def _grid_point(src: Source, date: pd.Timestamp, lat: float, lon: float) -> dict:
    kw: dict[str, Any] = {}
    if src.driver == "cci_images" or (src.driver == "lprm" and "paths" in src.args):
        kw["date"] = date
    if src.driver in ("cci_images", "lprm"):
        # read a 2 x 2 degree window only, not the whole globe; an all-gap window is an
        # answer here (the gap categories say why), not an error
        kw["require_data"] = False
        kw["region"] = tuple(round(v, 4) for v in (max(lon - 1, -180), max(lat - 1, -90),
                                                   min(lon + 1, 180), min(lat + 1, 90)))
    ds = src.open(**kw)
    times = pd.DatetimeIndex(ds[schema.TIME].values)
    if date not in times:
        raise OutOfRangeError(f"{src.name}: no data on {date:%Y-%m-%d} (holds "
                              f"{times.min():%Y-%m-%d}..{times.max():%Y-%m-%d})")
    lats, lons = ds[schema.LAT].values, ds[schema.LON].values
    res_lat = float(np.median(np.diff(lats))) if lats.size > 1 else 0.25
    res_lon = float(np.median(np.diff(lons))) if lons.size > 1 else 0.25
    if not (lats.min() - res_lat / 2 <= lat <= lats.max() + res_lat / 2
            and lons.min() - res_lon / 2 <= lon <= lons.max() + res_lon / 2):
        raise OutOfRangeError(f"{src.name}: point ({lat}, {lon}) is outside the grid "
                              f"(lat {lats.min():.3f}..{lats.max():.3f}, "
                              f"lon {lons.min():.3f}..{lons.max():.3f})")
    px = ds.sel({schema.TIME: date}).sel({schema.LAT: lat, schema.LON: lon},
                                         method="nearest")
    clat, clon = float(px[schema.LAT]), float(px[schema.LON])
    from data_catalog.readers._netcdf import haversine_km

    row: dict[str, Any] = {
        "source": src.name, "date": f"{date:%Y-%m-%d}", "lat": lat, "lon": lon,
        "cell_lat": clat, "cell_lon": clon,
        "distance_km": round(float(haversine_km(lat, lon, clat, clon)), 3),
    }
    primary = src.metadata.get("variable") or next(
        (v for v in SM_VARIABLES if v in ds), None)
    values = {}
    for v in SM_VARIABLES:
        if v in ds:
            x = float(px[v].values)
            values[v] = {"value": None if np.isnan(x) else round(x, 5),
                         "units": ds[v].attrs.get("units")}
    row["variable"] = primary
    row["value"] = values.get(primary, {}).get("value")
    row["units"] = values.get(primary, {}).get("units")
    row["values"] = values
    if schema.GAP_MASK in ds:
        g = int(px[schema.GAP_MASK].values)
        row["gap_category"] = GAP_NAMES.get(g, str(g))
    if schema.SENSOR in px.coords:
        row["sensor"] = SENSOR_NAMES.get(int(px[schema.SENSOR].values), "?")
    if "sensor_bits" in ds:
        from data_catalog.readers._netcdf import sensor_names

        row["sensor_bits"] = sensor_names(int(px["sensor_bits"].values))
    return row


def _cell_point(src: Source, date: pd.Timestamp, lat: float, lon: float) -> dict:
    from data_catalog.readers._netcdf import CCI_SENSOR_BITS, decode_flags, schema_sensor
    from data_catalog.readers._netcdf import sensor_names as names_of

    df = src.open(lat=lat, lon=lon, start=date, end=date)
    day = df.loc[df.index.normalize() == date.tz_localize("UTC")]
    sm = day["sm"].dropna()
    row: dict[str, Any] = {
        "source": src.name, "date": f"{date:%Y-%m-%d}", "lat": lat, "lon": lon,
        "cell_lat": round(df.attrs["lat"], 5), "cell_lon": round(df.attrs["lon"], 5),
        "gpi": df.attrs["gpi"], "distance_km": round(df.attrs["distance_km"], 3),
        "variable": "sm", "units": df.attrs["units"],
        "value": round(float(sm.mean()), 5) if len(sm) else None,
        "n_obs": int(len(sm)),
    }
    if len(sm) > 1:
        row["obs_times"] = [t.strftime("%H:%M") for t in sm.index]
    if "flag" in day and len(day):
        flag = int(pd.to_numeric(day["flag"], errors="coerce").fillna(0).iloc[0])
        cci_bits = {1: "frozen", 2: "dense_vegetation", 4: "others", 8: "exceeds_boundary",
                    16: "weight_below_threshold", 32: "all_unreliable", 64: "barren"}
        cat = 0 if len(sm) else int(decode_flags(np.array([flag]), cci_bits)[0]) or \
            schema.NO_OVERPASS
        row["gap_category"] = GAP_NAMES[cat]
        row["flag"] = flag
    elif not len(sm):
        row["gap_category"] = GAP_NAMES[schema.NO_OVERPASS if day.empty else schema.INVALID]
    else:
        row["gap_category"] = GAP_NAMES[schema.OBSERVED]
    if "sensor" in day and len(day):
        bits = int(pd.to_numeric(day["sensor"], errors="coerce").fillna(0).iloc[0])
        row["sensor"] = SENSOR_NAMES[schema_sensor(bits)]
        row["sensor_bits"] = names_of(bits, CCI_SENSOR_BITS)
    return row


def _station_point(src: Source, date: pd.Timestamp, lat: float, lon: float) -> dict:
    from data_catalog.readers._netcdf import haversine_km
    from data_catalog.readers.ismn import daily_mean

    table, series = src.open()
    d = haversine_km(lat, lon, table["lat"].to_numpy(float), table["lon"].to_numpy(float))
    key = date.tz_localize("UTC")

    def station_row(k: int) -> dict:
        st = table.iloc[k]
        daily = daily_mean(series[st["id"]])
        val, n = ((float(daily.loc[key, "sm"]), int(daily.loc[key, "count"]))
                  if key in daily.index else (np.nan, 0))
        idx = series[st["id"]].index
        return {"station": st["id"], "station_name": st["name"], "network": st["network"],
                "station_lat": float(st["lat"]), "station_lon": float(st["lon"]),
                "distance_km": round(float(d[k]), 3),
                "depth_m": [float(st["depth_from"]), float(st["depth_to"])],
                "station_period": ([f"{idx.min():%Y-%m-%d}", f"{idx.max():%Y-%m-%d}"]
                                   if len(idx) else None),
                "value": None if np.isnan(val) else round(val, 5), "n_obs": n}

    order = np.argsort(d)
    row = {"source": src.name, "date": f"{date:%Y-%m-%d}", "lat": lat, "lon": lon,
           **station_row(int(order[0])), "variable": "sm", "units": "m3 m-3",
           "aggregation": "daily mean (UTC) of good-flag values"}
    if row["value"] is None:  # say where the nearest value that day is
        for k in order[1:]:
            other = station_row(int(k))
            if other["value"] is not None:
                row["nearest_with_data"] = other
                break
    return row


def describe_point(src: Source, date, lat: float, lon: float) -> list[dict]:
    """What ``src`` holds on ``date`` at ``(lat, lon)``: value with units, gap category,
    sensor, grid cell centre and distance (grids, cells), or the nearest station's daily
    mean (stations). A kit gives one row per member (members that fail give an ``error``).
    """
    t = _as_date(date)
    lat, lon = _check_point(float(lat), float(lon))
    if src.driver == "kit":
        rows = []
        for role, member in src.members().items():
            try:
                rows += [{**r, "role": role} for r in describe_point(member, t, lat, lon)]
            except GapfillError as exc:  # one member's gap must not hide the others
                rows.append({"source": member.name, "role": role, "date": f"{t:%Y-%m-%d}",
                             "lat": lat, "lon": lon, "error": str(exc)})
        return rows
    kind = src.kind
    if kind == "grid":
        return [_grid_point(src, t, lat, lon)]
    if kind == "point":
        return [_cell_point(src, t, lat, lon)]
    return [_station_point(src, t, lat, lon)]


__all__ = ["BUILTIN_CATALOG", "Catalog", "DRIVERS", "Source", "default_catalog_path",
           "describe_point", "load_catalog"]
