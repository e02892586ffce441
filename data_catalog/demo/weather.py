"""The weather that drives the demo world's truth: daily rain and a temperature proxy.

Rain comes from two latent Gaussian fields, a synoptic one (2 deg, day-to-day correlation
0.7) and a convective one (0.5 deg, 0.3), both drifting 0.3 deg north and 1.6 deg east a
day (:class:`~data_catalog.demo.random_fields.LatentField`).  Their weighted sum is
thresholded to the local wet-day probability and its excess raised to the power 1.5 and
scaled so the local mean daily rain is right (capped at 250 mm a day).  The convective
field is also handed to :mod:`.gaps` (heavy-rain storm cores spoil a retrieval).  The
temperature proxy (deg C) is a seasonal climatology plus three day-to-day AR(1) anomaly
fields and a year-to-year winter anomaly; it turns rain to snow and freezes the ground
(:mod:`.water_balance`).

What each number imitates:

* **annual rain** 500 mm at -100 E, +55 mm per degree east and +14 mm per degree south
  (+-60 mm at 2 deg scale, within 250..2000 mm): the west-to-east gradient of the US
  annual precipitation normals (NOAA NCEI 1991-2020 normals: roughly 500 mm on the western
  High Plains to 1300-1600 mm on the Gulf coast).  Shape imitated, not fitted.
* **wet-day probability** 0.13 in the west to 0.38 in the south-east (+-0.02 at 2 deg
  scale, within 0.06..0.5), +-25 % over the year with the maximum at day 140 (late May,
  the Great Plains' late-spring rain peak); **seasonal amplitude** of the amounts 0.45 in
  the west to 0.15 in the east.  No published figure (a v4 calibration could use
  GHCN-Daily wet-day frequencies).
* **storm scales** (2 deg / 0.5 deg, correlations 0.7 / 0.3, weights 0.78 / 0.626, drift),
  the **power 1.5** and the 250 mm cap: model choices, no published figure.
* **temperature**: 20.5 deg C at 30 N, -0.85 deg C per degree north, -6.5 deg C per km of
  elevation (the lapse rate of the ICAO standard atmosphere, 6.5 K km-1), seasonal
  amplitude 8 deg C + 0.5 deg C per degree north of 30 N, coldest on day 15 (mid
  January); anomalies AR(1) with correlation 0.8 and sd 4 (uniform), 2 (north-south
  gradient) and 1.5 deg C (east-west gradient), and a winter anomaly of sd 2 deg C per
  year.  Only the lapse rate is a published figure; the rest imitates the shape of US
  climatology.

Random draws: two smooth fields (2 deg) from the shared ``"static"`` stream after those of
:mod:`.land`; the ``"temperature"``, ``"rain-syn"`` and ``"rain-conv"`` streams.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.special import ndtri

from data_catalog.demo.land import LandSurface
from data_catalog.demo.random_fields import LatentField, ar1, smooth_field, stream

# (name, correlation length in degrees, day-to-day correlation, weight, pad in days of drift)
STORMS = (("syn", 2.0, 0.7, 0.78, 2), ("conv", 0.5, 0.3, 0.626, 1))
STORM_DRIFT_DEG = (0.3, 1.6)  # degrees a day (north, east)
EXCESS_POWER = 1.5            # rain amount ~ (latent excess over the threshold) ** power
MAX_RAIN_MM = 250.0           # cap on one day's rain


@functools.lru_cache(maxsize=4)
def _excess_table(power: float) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(-6, 9, 3001)
    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    grid = np.linspace(-3.5, 4.0, 751)
    table = np.array([np.trapezoid(np.clip(z - t, 0, None) ** power * pdf, z) for t in grid])
    return grid, table


def expected_excess(thr: np.ndarray, power: float) -> np.ndarray:
    """E[max(Z - thr, 0) ** power] for standard normal Z (numerical quadrature)."""
    grid, table = _excess_table(power)
    return np.interp(thr, grid, table)


class Weather:
    """Rain and temperature of one world, generated in time blocks (in order).

    Parameters
    ----------
    seed : int
        The world's seed.
    time : pandas.DatetimeIndex
        The world's days.
    yy, xx : numpy.ndarray
        Cell-centre latitude and longitude meshes.
    res : float
        Grid spacing (degrees).
    surface : LandSurface
        Elevation and the interior gradients.
    static : numpy.random.Generator
        The shared ``"static"`` stream; two smooth fields are drawn from it, in order.
    """

    def __init__(self, seed: int, time: pd.DatetimeIndex, yy: np.ndarray, xx: np.ndarray,
                 res: float, surface: LandSurface, static: np.random.Generator):
        self.time = time
        self.yy, self.xx = yy, xx
        ny, nx = yy.shape
        cells = lambda deg: max(deg / res, 1.0)  # noqa: E731
        s4 = smooth_field(static, ny, nx, cells(2.0))
        s5 = smooth_field(static, ny, nx, cells(2.0))
        east, south = surface.east_frac, surface.south_frac
        # annual rain (mm), wet-day probability; wetter to the east and south-east
        self.p_ann = np.clip(500 + 55 * (xx + 100) + 14 * (46 - yy) + 60 * s4, 250, 2000)
        self.p_wet0 = np.clip(0.13 + 0.17 * east + 0.08 * east * south + 0.02 * s5,
                              0.06, 0.5)
        self.season_amp = 0.45 - 0.3 * east
        self._temperature_setup(seed, surface.elev)
        self.storms = [LatentField(seed, f"rain-{name}", ny, nx, res, length_deg, rho,
                                   STORM_DRIFT_DEG, pad_days)
                       for name, length_deg, rho, _, pad_days in STORMS]
        self.storm_weights = [weight for *_, weight, _ in STORMS]

    # ---------------------------------------------------------- temperature
    def _temperature_setup(self, seed: int, elev: np.ndarray) -> None:
        rng = stream(seed, "temperature")
        n = len(self.time)
        self.t_a = ar1(rng, n, 0.8, 4.0)
        self.t_b = ar1(rng, n, 0.8, 2.0)
        self.t_c = ar1(rng, n, 0.8, 1.5)
        years = self.time.year.to_numpy()
        uy = np.unique(years)
        winter = dict(zip(uy, rng.normal(0, 2.0, len(uy)), strict=True))
        doy = self.time.day_of_year.to_numpy()
        wweight = np.cos(2 * np.pi * (doy - 15) / 365.25).clip(0, None)
        self.t_year = np.array([winter[y] for y in years]) * wweight
        self.t_mean = 20.5 - 0.85 * (self.yy - 30.0) - 6.5 * elev
        self.t_amp = 8.0 + 0.5 * np.clip(self.yy - 30.0, 0, None)

    def temperature(self, a: int, b: int) -> np.ndarray:
        """Daily temperature proxy (deg C) for days ``a:b``, shape ``(b - a, ny, nx)``."""
        doy = self.time.day_of_year.to_numpy()[a:b, None, None]
        ynorm = ((self.yy - self.yy.mean()) / max(np.ptp(self.yy), 1.0))[None]
        xnorm = ((self.xx - self.xx.mean()) / max(np.ptp(self.xx), 1.0))[None]
        clim = self.t_mean[None] - self.t_amp[None] * np.cos(2 * np.pi * (doy - 15) / 365.25)
        anom = (self.t_a[a:b, None, None] + self.t_b[a:b, None, None] * ynorm
                + self.t_c[a:b, None, None] * xnorm + self.t_year[a:b, None, None])
        return clim + anom

    # ---------------------------------------------------------- rain
    def rain(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Daily rain (mm) and the latent convective field for days ``a:b``.

        Blocks must be asked for in order: the storm fields carry on from the last call.
        """
        n = b - a
        syn, conv = (f.next(n) for f in self.storms)
        g = self.storm_weights[0] * syn + self.storm_weights[1] * conv
        doy = self.time.day_of_year.to_numpy()[a:b, None, None]
        season = np.cos(2 * np.pi * (doy - 140) / 365.25)
        p_wet = np.clip(self.p_wet0[None] * (1 + 0.25 * season), 0.03, 0.6)
        mean = self.p_ann[None] / 365.25 * (1 + self.season_amp[None] * season)
        thr = ndtri(1 - p_wet)
        k = mean / expected_excess(thr, EXCESS_POWER)
        rain = k * np.clip(g - thr, 0, None) ** EXCESS_POWER
        return np.minimum(rain, MAX_RAIN_MM), conv
