"""Where the demo world's satellites see nothing: the gap mask and ASCAT's gaps.

The AMSR gap mask (schema codes, :data:`data_catalog.schema.GAP_FLAGS`) is built lowest
priority first, each category overwriting the ones before:

1. **invalid retrieval**: heavy rain (over 25 mm, 70 % of such cells), convective storm
   cores (the latent convective field of :mod:`.weather` above 2.3 sd) and speckle
   (1.5 % of cells).  No published figure.
2. **dense vegetation**: the C-band vegetation optical depth of :mod:`.land` (its seasonal
   cycle included) above 0.8, LPRM's limit (de Jeu et al. 2008; Owe et al. 2008), as in
   the dense-vegetation masks of passive products (LPRM, CCI's ``flag``).
3. **RFI**: hot spots near big cities (:data:`CITIES`), as C-band radio-frequency
   interference over the USA clusters around urban areas (Njoku et al. 2005, IEEE TGRS
   43, 938-947).  One hot spot per 50 square degrees (2..12), radius 0.4..0.9 deg,
   active on 75..95 % of days with a daily varying extent; one is AMSR-E only, one
   appears with AMSR2 (new transmitters).  Not fitted.
4. **frozen ground**: the frozen flag of :mod:`.water_balance` (soil below -1 deg C or
   over 10 mm of snow).  Imitates the frozen-ground flags of LPRM/CCI; the criterion is
   the demo's own.
5. **no overpass**: one descending overpass a day leaves stripes between swaths that move
   from day to day (orbit geometry in :mod:`.sensors`: spacing, repeat, swath width,
   track tilt); and the **gap year**: every day without an AMSR sensor, 2011-10-04 ..
   2012-07-01 (:func:`.sensors.sensor_codes`).
6. **not land**: sea and lakes (:mod:`.land`).

ASCAT misses: stripes between its swaths (a 20 deg pattern advancing 0.41 of it a day,
``ASCAT_COVERAGE`` of each band seen), frozen ground, 2 % of cells at random, the sea,
and every day before 2007-01-01.  Not fitted.

Random draws: per block, the heavy-rain and speckle draws from the ``"amsr"`` stream
before :mod:`.sensors` draws its noise, and the 2 % draw from the ``"ascat"`` stream
after it; the ``"rfi"`` stream (hot-spot placement) and the ``"rfi-days"`` stream (daily
activity).
"""

from __future__ import annotations

import numpy as np

import data_catalog.demo.land as land
from data_catalog import schema
from data_catalog.demo.random_fields import smooth_field, stream
from data_catalog.demo.sensors import (
    AMSR_SENSORS,
    ASCAT_COVERAGE,
    ORBIT_SPACING_DEG,
    ORBITS_PER_DAY_FRAC,
    SWATH_KM,
    TRACK_TILT,
)

# Big US cities: candidate RFI hot spots (name, lat, lon).
CITIES = (
    ("Dallas", 32.78, -96.80), ("Oklahoma City", 35.47, -97.52), ("Kansas City", 39.10, -94.58),
    ("St. Louis", 38.63, -90.20), ("Memphis", 35.15, -90.05), ("Nashville", 36.16, -86.78),
    ("Atlanta", 33.75, -84.39), ("Chicago", 41.88, -87.63), ("Minneapolis", 44.98, -93.27),
    ("Omaha", 41.26, -95.93), ("Austin", 30.27, -97.74), ("Tulsa", 36.15, -95.99),
    ("Little Rock", 34.75, -92.29), ("Indianapolis", 39.77, -86.16), ("Milwaukee", 43.04, -87.91),
    ("Des Moines", 41.59, -93.62), ("Wichita", 37.69, -97.34), ("Birmingham", 33.52, -86.80),
    ("Jackson", 32.30, -90.18), ("Louisville", 38.25, -85.76), ("Denver", 39.74, -104.99),
    ("Houston", 29.76, -95.37), ("New Orleans", 29.95, -90.07), ("Phoenix", 33.45, -112.07),
)


class RfiHotSpots:
    """The RFI hot spots of one world and their day-to-day activity.

    ``w`` is the :class:`~data_catalog.demo.world.World` under construction (its
    parameters, grid, land mask and sensor calendar are read).
    """

    def __init__(self, w):
        p = w.p
        rng = stream(p.seed, "rfi")
        area = (p.east - p.west) * (p.north - p.south)
        n = int(np.clip(round(area / 50.0), 2, 12))
        inside = [c for c in CITIES if p.south + 0.5 <= c[1] <= p.north - 0.5
                  and p.west + 0.5 <= c[2] <= p.east - 0.5]
        order = rng.permutation(len(inside))
        spots = [inside[i] for i in order[:n]]
        land_idx = np.argwhere(w.land)
        while len(spots) < n:  # regions without big cities: random land points
            i, j = land_idx[rng.integers(len(land_idx))]
            spots.append((f"site {len(spots)}", float(w.lat[i]), float(w.lon[j])))
        self.spots = []
        for k, (name, la, lo) in enumerate(spots):
            radius = rng.uniform(0.4, 0.9)
            d2 = ((w.yy - la) ** 2 + ((w.xx - lo) * np.cos(np.radians(la))) ** 2)
            shape_noise = 1 + 0.25 * smooth_field(rng, w.ny, w.nx, max(0.3 / p.res, 1.0))
            intensity = np.exp(-d2 / (2 * radius**2)) * shape_noise
            # one hot spot is AMSR-E only, one appears with AMSR2 (new transmitters)
            sensors = ((schema.SENSOR_AMSRE,) if k == 1 else (schema.SENSOR_AMSR2,) if k == 2
                       else (schema.SENSOR_AMSRE, schema.SENSOR_AMSR2))
            self.spots.append({"name": name, "lat": la, "lon": lo, "intensity": intensity,
                               "p_active": rng.uniform(0.75, 0.95), "sensors": sensors})
        self.sensor = w.sensor
        self.shape = (w.ny, w.nx)
        self.rng = stream(p.seed, "rfi-days")

    def days(self, a: int, b: int) -> np.ndarray:
        """Where RFI spoils a retrieval on days ``a:b`` (bool; blocks asked in order)."""
        n = b - a
        out = np.zeros((n, *self.shape), dtype=bool)
        sensor = self.sensor[a:b]
        for spot in self.spots:
            active = self.rng.random(n) < spot["p_active"]
            thr = self.rng.uniform(0.25, 0.6, n)
            active &= np.isin(sensor, spot["sensors"])
            out |= active[:, None, None] & (spot["intensity"][None] > thr[:, None, None])
        return out


def swath_gap(w, a: int, b: int, sensor: dict) -> np.ndarray:
    """Cells between the swaths of ``sensor``'s one descending overpass, days ``a:b``.

    Uses the absolute day number, so a date gets the same stripes in any world.
    """
    dayno = w.dayno[a:b, None, None]
    phase = ((dayno * ORBITS_PER_DAY_FRAC + sensor["phase"]) % 1.0) * ORBIT_SPACING_DEG
    u = w.xx[None] - TRACK_TILT * (w.yy[None] - 38.0)
    width = SWATH_KM / (111.32 * np.cos(np.radians(w.yy)))[None]
    gap = np.clip(ORBIT_SPACING_DEG - width, 0, None)
    return np.mod(u - phase, ORBIT_SPACING_DEG) < gap


def amsr_gap_mask(w, a: int, b: int, rain: np.ndarray, conv: np.ndarray,
                  frozen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The AMSR gap mask (int8 schema codes) of days ``a:b`` of world ``w``.

    ``rain``, ``conv`` and ``frozen`` are the block's weather and frozen flag; the
    heavy-rain and speckle draws come from ``rng`` (the ``"amsr"`` stream), in order.
    """
    n = b - a
    sensor = w.sensor[a:b]
    # --- gap categories, lowest priority first
    mask = np.zeros((n, w.ny, w.nx), dtype=np.int8)
    heavy = (rain > 25.0) & (rng.random(rain.shape) < 0.7)
    speckle = rng.random(rain.shape) < 0.015
    storm_core = conv > 2.3
    mask[heavy | speckle | storm_core] = schema.INVALID
    doy = w.time.day_of_year.to_numpy()[a:b, None, None]
    tau = land.optical_depth(w.surface.vegetation, doy)
    mask[np.broadcast_to(tau > land.DENSE_TAU, mask.shape)] = schema.DENSE_VEGETATION
    mask[w.rfi.days(a, b)] = schema.RFI
    mask[frozen] = schema.FROZEN
    swath = np.zeros(mask.shape, dtype=bool)
    for code, sen in AMSR_SENSORS:
        days = sensor == code
        if days.any():
            idx = np.flatnonzero(days)
            swath[idx] = swath_gap(w, a + idx[0], a + idx[-1] + 1, sen)[idx - idx[0]]
    swath[sensor == schema.SENSOR_NONE] = True  # the gap year (and before AMSR-E)
    mask[swath] = schema.NO_OVERPASS
    mask[np.broadcast_to(~w.land[None], mask.shape)] = schema.NOT_LAND
    return mask


def ascat_missing(w, a: int, b: int, frozen: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Where ASCAT has no value on days ``a:b`` (bool); the random 2 % comes from ``rng``
    (the ``"ascat"`` stream, after the noise of :func:`.sensors.ascat_retrieval`)."""
    u = w.xx[None] + 0.3 * (w.yy[None] - 38.0)
    dayno = w.dayno[a:b, None, None]
    phase = ((dayno * 0.41 + 0.13) % 1.0) * 20.0
    seen = np.mod(u - phase, 20.0) < 20.0 * ASCAT_COVERAGE
    missing = (~seen) | frozen | (rng.random(frozen.shape) < 0.02) | ~w.land[None]
    before = np.asarray(w.time[a:b] < schema.ASCAT_START)
    missing[before] = True
    return missing
