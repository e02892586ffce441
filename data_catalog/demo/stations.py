"""The demo world's ISMN-like in situ stations: placement and hourly series with flags.

Stations sit on interior land cells, spread apart (a network, not a cluster).  A
station's series is its cell's daily truth through a representativeness error, sampled at
local noon and interpolated to hours, with a mild diurnal cycle, sensor noise, frozen
soil, spikes, a late installation and multi-week outages; each hour carries an ISMN
quality flag.

What each number imitates:

* **quality flags** ``G`` (good), ``D01`` (soil temperature below 0 deg C), ``D02`` (air
  temperature below 0 deg C) and ``C03`` (above the saturation point), as ISMN's
  automated quality control names them (Dorigo et al. 2013, Vadose Zone J. 12(3)).
* **depth** 0 .. 0.05 m: ISMN's usual top sensor; **sensor** a Hydra Probe, as at the
  USDA SCAN stations of the region.
* **representativeness error**: gain 0.85..1.15 about the cell mean, offset sd 0.025
  m3 m-3 and a slow deviation (AR(1), correlation 0.98 a day, sd 0.015 m3 m-3): the order
  of the point-to-footprint sampling errors studied by Miralles, Crow and Cosh (2010,
  J. Hydrometeorol. 11); not fitted.
* **hourly noise** sd 0.004 m3 m-3, **diurnal cycle** 0.006 x relative saturation (wettest
  at 06 local time), a **frozen probe** reading 55 % (liquid water only), **spikes** above
  porosity 2 in 10 000 hours, **late installation** at 40 % of stations (up to three years
  or 30 % of the period) and 1 + Poisson(1.5 per ten years) **outages** of 10..60 days:
  model choices, no published figure.

Random draws: the ``"stations-place"`` stream (placement) and the ``"stations"`` stream
(names, then each station in turn).
"""

from __future__ import annotations

import numpy as np

from data_catalog.demo.random_fields import ar1, stream

NETWORK = "DEMONET"
# ISMN quality flag strings of the demo stations, stored as int8 codes.
STATION_FLAGS = ("G", "D01", "D02", "D01,D02", "C03")
FLAG_G, FLAG_D01, FLAG_D02, FLAG_D01_D02, FLAG_C03 = range(5)
STATION_PLACES = (
    "Prairie", "Cedar Creek", "Red River", "Mesa", "Willow Flats", "Pecan Grove", "Bluestem",
    "Sandhill", "Oak Ridge", "Cottonwood", "Buffalo Gap", "Elk City", "Pine Hollow", "Salt Fork",
    "Walnut Bend", "Twin Lakes", "Hickory", "Coyote Draw", "Marsh Hawk", "Sycamore", "Lone Tree",
    "Clearwater", "Turkey Run", "Big Bend", "Quail Hill", "Stony Point", "Shiloh", "Fox Valley",
)


def pick_station_cells(w, n: int) -> list[tuple[int, int]]:
    """``(lat index, lon index)`` of ``n`` station cells of world ``w``
    (a :class:`~data_catalog.demo.world.World`), spread apart."""
    rng = stream(w.p.seed, "stations-place")
    # interior land cells (4 neighbours on land) are preferred: real networks are inland
    land = w.land
    interior = land.copy()
    interior[1:-1, 1:-1] &= (land[:-2, 1:-1] & land[2:, 1:-1] & land[1:-1, :-2] & land[1:-1, 2:])
    interior[[0, -1], :] = False
    interior[:, [0, -1]] = False
    cand = np.argwhere(interior if interior.sum() >= n else land)
    order = rng.permutation(len(cand))
    span = min(w.p.east - w.p.west, w.p.north - w.p.south)
    min_dist = max(span / (np.sqrt(max(n, 1)) * 1.6), w.p.res)
    picked: list[tuple[int, int]] = []
    while len(picked) < min(n, len(cand)):
        for k in order:
            i, j = cand[k]
            if (i, j) in picked:
                continue
            if all(np.hypot(w.lat[i] - w.lat[a], w.lon[j] - w.lon[b]) >= min_dist
                   for a, b in picked):
                picked.append((int(i), int(j)))
                if len(picked) == n:
                    break
        min_dist *= 0.7
    return picked


def station_data(w, cells: list[tuple[int, int]], truth: np.ndarray,
                 frozen: np.ndarray, tair: np.ndarray
                 ) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Hourly station series from the daily cell truth at the station cells.

    ``truth``, ``frozen``, ``tair`` have shape ``(time, station)``.  Returns the table
    rows, the hourly soil moisture ``(station, hour)`` (NaN in outages) and the flag
    codes (indices into :data:`STATION_FLAGS`).
    """
    rng = stream(w.p.seed, "stations")
    n_st = len(cells)
    nt = w.nt
    hours = np.arange(nt * 24)
    rows = []
    sm = np.empty((n_st, nt * 24), dtype=np.float32)
    flag = np.zeros((n_st, nt * 24), dtype=np.int8)
    names = list(STATION_PLACES)
    rng.shuffle(names)
    for k, (i, j) in enumerate(cells):
        lat = float(w.lat[i] + rng.uniform(-0.45, 0.45) * w.p.res)
        lon = float(w.lon[j] + rng.uniform(-0.45, 0.45) * w.p.res)
        por = float(w.surface.porosity[i, j]) + rng.normal(0, 0.02)
        res = float(w.surface.residual[i, j])
        cell = truth[:, k].astype(np.float64)
        mean = cell.mean()
        gain = rng.uniform(0.85, 1.15)
        offset = rng.normal(0, 0.025)
        dev = ar1(rng, nt, 0.98, 0.015)
        point = np.clip(mean + gain * (cell - mean) + offset + dev, res + 0.005, por)
        # daily value at local noon, linear in between, mild diurnal cycle (wet at dawn)
        local = lon / 15.0
        noon = np.arange(nt) * 24 + 12 - local
        hourly = np.interp(hours, noon, point)
        rel = (hourly - res) / (por - res)
        hourly += 0.006 * rel * np.cos(2 * np.pi * (hours + local - 6) / 24)
        hourly += rng.normal(0, 0.004, hourly.shape)
        day = hours // 24
        frz = frozen[day, k]
        hourly[frz] *= 0.55  # a frozen probe sees only the liquid water
        code = np.full(hours.shape, FLAG_G, dtype=np.int8)
        cold_air = (tair[day, k] < 0) & ~frz
        code[frz & (tair[day, k] < 0)] = FLAG_D01_D02
        code[frz & ~(tair[day, k] < 0)] = FLAG_D01
        code[cold_air] = FLAG_D02
        spikes = rng.random(hours.shape) < 2e-4
        hourly[spikes] = por + rng.uniform(0.02, 0.1, spikes.sum())
        code[spikes] = FLAG_C03
        hourly = np.round(np.clip(hourly, 0.0, None), 4)
        # installation later than the period start, and multi-week outages
        if rng.random() < 0.4:
            hourly[: int(rng.uniform(0, min(3 * 365, 0.3 * nt)) * 24)] = np.nan
        for _ in range(1 + rng.poisson(1.5 * nt / 3650.0)):
            length = int(rng.uniform(10, 60) * 24)
            s0 = int(rng.integers(0, max(1, nt * 24 - length)))
            hourly[s0:s0 + length] = np.nan
        sm[k] = hourly
        flag[k] = code
        rows.append({"id": f"DEMO{k + 1:03d}", "network": NETWORK,
                     "name": f"{names[k % len(names)]}{'' if k < len(names) else f' {k}'}",
                     "lat": round(lat, 4), "lon": round(lon, 4), "depth_from": 0.0,
                     "depth_to": 0.05, "sensor": "Hydraprobe-II (demo)",
                     "cell_lat": float(w.lat[i]), "cell_lon": float(w.lon[j])})
    return rows, sm, flag
