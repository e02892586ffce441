"""The land surface of the demo world: land/sea mask, soils, vegetation, elevation.

Everything here is static (one map per world).  What each field imitates:

==================  ======================================================================
field               imitates
==================  ======================================================================
``mask``            Natural Earth 50 m land polygons (offline, :mod:`data_catalog.geo`):
                    a real coastline, lakes included.
``porosity``        0.41 rising to 0.45 towards the clay-rich Gulf coastal plain, +-0.02
                    at 1.5 deg scale, within 0.32..0.52 m3 m-3: the range of texture-class
                    porosities (cf. Rawls, Brakensiek and Saxton 1982, Trans. ASAE 25,
                    1316-1320).  Not fitted to a soil map.
``residual``        0.035 +- 0.012 m3 m-3 within 0.01..0.07 (same source, loams); not
                    fitted.
``fc``, ``wp``      field capacity and wilting point at 62 % and 18 % of the range
                    residual..porosity: model choices, no published figure.
``vegetation``      a 0..1 density index: dense forest in the south-east (east of about
                    -94.5 E, south of 36.5 N) and the northern woods (north of 44.5 N):
                    the pattern of a land-cover map, no published value (the index is
                    unitless).
``elev``            a km proxy: the High Plains rising west of -90 E, 0.15..1.8 km.  Its
                    shape only (it cools the west, :mod:`.weather`); not a DEM.
``east_frac``,      where a cell lies in the US interior, 0..1 from -100 E eastwards and
``south_frac``      from 46 N southwards: the one gradient soils, rain and evaporation
                    follow.
==================  ======================================================================

The vegetation's seasonal cycle and optical depth (:func:`vegetation_cycle`,
:func:`optical_depth`, used by :mod:`.gaps` and :mod:`.sensors`): the index swings +-12 %
over the year, peaking on day 200 (mid July), and the C-band vegetation optical depth is
``TAU_PER_INDEX`` (0.8 / 0.74 = 1.08) times the seasonal index, so that an index of 0.74
is an optical depth of 0.8, the threshold above which LPRM retrieves no soil moisture
(de Jeu et al. 2008, Surv. Geophys. 29; Owe et al. 2008, JGR 113, F01002): the demo's
dense-vegetation gaps are where the optical depth exceeds 0.8.  The swing and its peak
are model choices (the Great Plains' crops and grass peak in summer); the optical depths
span 0..1.2, the range of C-band VOD over the contiguous USA in LPRM maps (not fitted).

Random draws: three smooth fields (1.5, 1.0, 0.75 deg) from the world's shared
``"static"`` stream, the first of that stream's draws (:mod:`.world` says the order).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_catalog.demo.random_fields import smooth_field
from data_catalog.errors import DataError

VEG_SEASON = 0.12       # relative seasonal swing of the vegetation index
VEG_PEAK_DOY = 200      # day of year of the vegetation peak (mid July)
DENSE_TAU = 0.8         # LPRM's dense-vegetation limit (C-band optical depth)
TAU_PER_INDEX = DENSE_TAU / 0.74  # optical depth per unit of the seasonal index


def vegetation_cycle(vegetation: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """The vegetation index on days of year ``doy`` (shape ``(n, 1, 1)`` or broadcastable):
    +-:data:`VEG_SEASON` around the static index, peaking on :data:`VEG_PEAK_DOY`."""
    veg = np.asarray(vegetation, dtype=np.float64)[None]
    return veg * (1 + VEG_SEASON * np.cos(2 * np.pi * (doy - VEG_PEAK_DOY) / 365.25))


def optical_depth(vegetation: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """C-band vegetation optical depth on days of year ``doy`` (module docstring)."""
    return TAU_PER_INDEX * vegetation_cycle(vegetation, doy)


@dataclasses.dataclass(frozen=True)
class LandSurface:
    """Static fields on the ``(lat, lon)`` grid (see the module docstring)."""

    mask: np.ndarray        # bool, True on land
    porosity: np.ndarray    # float32, m3 m-3
    residual: np.ndarray    # float32, m3 m-3
    fc: np.ndarray          # float64, field capacity, m3 m-3
    wp: np.ndarray          # float64, wilting point, m3 m-3
    vegetation: np.ndarray  # float32, 0..1
    elev: np.ndarray        # float64, km
    east_frac: np.ndarray   # float64, 0..1
    south_frac: np.ndarray  # float64, 0..1


def land_surface(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray,
                 yy: np.ndarray, xx: np.ndarray, res: float) -> LandSurface:
    """The land surface of a grid (``yy``, ``xx``: cell-centre latitude and longitude
    meshes; ``res``: grid spacing in degrees).

    Draws three smooth fields from ``rng`` (the shared ``"static"`` stream), in order.

    Raises
    ------
    DataError
        The region holds no land cell.
    """
    from data_catalog import geo

    mask = geo.land_mask(lat, lon)
    if not mask.any():
        raise DataError("the region holds no land cell: nothing to simulate")
    ny, nx = mask.shape
    cells = lambda deg: max(deg / res, 1.0)  # noqa: E731
    s1 = smooth_field(rng, ny, nx, cells(1.5))
    s2 = smooth_field(rng, ny, nx, cells(1.0))
    s3 = smooth_field(rng, ny, nx, cells(0.75))
    # "east-ness" and "south-ness" of the US interior, in 0..1
    east_frac = np.clip((xx + 100.0) / 16.0, 0, 1)
    south_frac = np.clip((46.0 - yy) / 16.0, 0, 1)
    # clay-rich soils of the Gulf coastal plain hold more water
    porosity = np.clip(0.41 + 0.04 * south_frac + 0.02 * s1, 0.32, 0.52).astype(np.float32)
    residual = np.clip(0.035 + 0.012 * s2, 0.01, 0.07).astype(np.float32)
    por, rsd = porosity.astype(np.float64), residual.astype(np.float64)
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    forest = sig((xx + 94.5) / 1.2) * sig((36.5 - yy) / 1.2)
    north_woods = 0.75 * sig((xx + 93.0) / 1.5) * sig((yy - 44.5) / 0.6)
    vegetation = np.clip(0.18 + 0.62 * forest + 0.45 * north_woods
                         + 0.10 * east_frac + 0.08 * s3, 0, 1).astype(np.float32)
    # elevation proxy (km): the High Plains rise to the west
    elev = np.clip(0.15 + 1.1 * np.clip((-xx - 90.0) / 10.0, 0, None) ** 1.5 * 0.5, 0, 1.8)
    return LandSurface(mask=mask, porosity=porosity, residual=residual,
                       fc=rsd + 0.62 * (por - rsd), wp=rsd + 0.18 * (por - rsd),
                       vegetation=vegetation, elev=elev, east_frac=east_frac,
                       south_frac=south_frac)
