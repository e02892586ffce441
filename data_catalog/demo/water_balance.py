"""The truth of the demo world: a two-layer bucket model of soil water, one per cell.

Each day, per cell: the soil temperature relaxes towards the air temperature; below
0 deg C rain falls as snow, above it snow melts by degree-days; rain and melt infiltrate
the surface layer (less as it fills, little into frozen soil; the rest runs off), water
above field capacity drains to a deeper layer, the two layers exchange water, and
evaporation, limited by the water between wilting point and field capacity, dries both.
The surface layer's water content is the true surface soil moisture (``truth_sm``,
m3 m-3, within residual + 0.002 .. porosity); a cell is *frozen* (for :mod:`.gaps` and
the station flags) when its soil is below -1 deg C or it holds more than 10 mm of snow.

What each number imitates:

* **degree-day melt factor** 2.5 mm per deg C a day: within the range of published
  degree-day factors for snow (cf. the review of Hock 2003, J. Hydrol. 282, 104-115).
* **layer depths** 70 mm (surface) and 400 mm (deep) of soil; **drainage** 0.6 of the
  excess over field capacity a day, **exchange** 0.06 a day, **deep drainage** 0.05 a day;
  **infiltration** ``1 - s**4`` of saturation ``s`` (0.15 into frozen soil); **soil
  temperature** relaxing 0.35 a day; **frozen** at -1 deg C or 10 mm of snow: model
  choices, no published figure.
* **potential evaporation** 0.2 mm a day per deg C above -3 deg C, times 1.9 in the west
  to 0.8 in the east (drier air on the High Plains), 0.55 of it from each layer: the shape
  of the US evaporative demand, not fitted.
"""

from __future__ import annotations

import numpy as np

from data_catalog.demo.land import LandSurface

SURFACE_MM = 70.0  # depth of the surface layer (mm of soil)
DEEP_MM = 400.0    # depth of the deeper layer (mm of soil)


def new_state(surface: LandSurface, t_mean: np.ndarray) -> dict:
    """The bucket state before spin-up: both layers 0.05 below field capacity, no snow,
    soil at the mean air temperature ``t_mean``."""
    por = surface.porosity.astype(np.float64)
    res = surface.residual.astype(np.float64)
    return {"por": por, "res": res, "theta": surface.fc - 0.05, "deep": surface.fc - 0.05,
            "snow": np.zeros_like(por), "tsoil": t_mean.copy(),
            "frozen": np.zeros(por.shape, bool)}


def step(st: dict, surface: LandSurface, rain: np.ndarray, temp: np.ndarray) -> None:
    """Advance the two-layer bucket of every cell by one day (in place)."""
    por, res, fc, wp = st["por"], st["res"], surface.fc, surface.wp
    theta, deep, snow, tsoil = st["theta"], st["deep"], st["snow"], st["tsoil"]
    tsoil += 0.35 * (temp - tsoil)
    frozen = (tsoil < -1.0) | (snow > 10.0)
    warm = temp > 0.0
    snow += np.where(warm, 0.0, rain)
    melt = np.minimum(snow, np.where(warm, 2.5 * temp, 0.0))
    snow -= melt
    water = np.where(warm, rain, 0.0) + melt
    s = np.clip((theta - res) / (por - res), 0, 1)
    infil = water * (1 - s**4) * np.where(tsoil < -0.5, 0.15, 1.0)
    theta += infil / SURFACE_MM
    excess = np.clip(theta - por, 0, None)
    theta -= excess
    drain = np.where(theta > fc, 0.6 * (theta - fc), 0.0)
    theta -= drain
    deep += drain * (SURFACE_MM / DEEP_MM)
    ex = 0.06 * (theta - deep)
    theta -= ex
    deep += ex * (SURFACE_MM / DEEP_MM)
    pet = np.clip(0.2 * (temp + 3.0), 0, None) * (1.9 - 1.1 * surface.east_frac)
    pet = np.where(frozen, 0.0, pet)
    theta -= 0.55 * pet * np.clip((theta - wp) / (fc - wp), 0, 1) / SURFACE_MM
    deep -= 0.55 * pet * np.clip((deep - wp) / (fc - wp), 0, 1) / DEEP_MM
    deep -= np.where(deep > fc, 0.05 * (deep - fc), 0.0)
    np.clip(theta, res + 0.002, por, out=theta)
    np.clip(deep, res + 0.002, por, out=deep)
    st["frozen"] = frozen


def run(st: dict, surface: LandSurface, rain: np.ndarray, temp: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
    """Run the bucket over the days of ``rain`` and ``temp`` (``(time, lat, lon)``).

    Returns the daily surface soil moisture (float32, m3 m-3) and the frozen flag.
    """
    n = rain.shape[0]
    truth = np.empty(rain.shape, dtype=np.float32)
    frozen = np.empty(rain.shape, dtype=bool)
    for i in range(n):
        step(st, surface, rain[i], temp[i])
        truth[i] = st["theta"]
        frozen[i] = st["frozen"]
    return truth, frozen
