"""One demo world: its parameters, its assembly, and its generation block by block.

:class:`DemoParams` is everything that determines a world (stored in the store's
attributes).  :class:`World` lays out the grid and calendar and builds the static parts
from their modules; :func:`simulate` then runs the weather, the water balance and the
satellites over the days in time blocks (so large grids fit in memory) and yields each
block for :mod:`.store` to write.

The order of the random draws is part of a world's identity (the generator ``VERSION``):
each component draws from its own named stream, except the shared ``"static"`` stream,
which :class:`World` hands in turn to :mod:`.land` (three fields), :mod:`.weather` (two)
and :mod:`.sensors` (two bias maps, then ASCAT's seasonal-error sign map); and within a
block the ``"amsr"`` stream serves :mod:`.gaps` before :mod:`.sensors`, the ``"ascat"``
stream :mod:`.sensors` before :mod:`.gaps`.  The first block is run twice through the water
balance: a spin-up.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd

import data_catalog.demo.gaps as gaps
import data_catalog.demo.land as land
import data_catalog.demo.sensors as sensors
import data_catalog.demo.water_balance as water_balance
from data_catalog import schema
from data_catalog.demo.random_fields import stream
from data_catalog.demo.weather import Weather
from data_catalog.errors import DataError


@dataclasses.dataclass(frozen=True)
class DemoParams:
    """Everything that determines a demo world (stored in the store's attributes)."""

    west: float = -100.0
    south: float = 30.0
    east: float = -84.0
    north: float = 46.0
    res: float = 0.25
    start: str = "2003-01-01"
    end: str = "2023-12-31"
    seed: int = 42
    n_stations: int = 24

    def __post_init__(self):
        if not (self.west < self.east and self.south < self.north):
            raise DataError(f"empty region west={self.west} south={self.south} "
                            f"east={self.east} north={self.north}")
        if not (-180 <= self.west and self.east <= 180 and -90 <= self.south
                and self.north <= 90):
            raise DataError("region outside -180..180 longitude / -90..90 latitude")
        if self.res <= 0:
            raise DataError(f"resolution must be positive, got {self.res}")
        if pd.Timestamp(self.end) < pd.Timestamp(self.start):
            raise DataError(f"end {self.end} before start {self.start}")
        if self.n_stations < 0:
            raise DataError(f"n_stations must be >= 0, got {self.n_stations}")

    def normalised(self) -> DemoParams:
        return DemoParams(float(self.west), float(self.south), float(self.east),
                          float(self.north), float(self.res),
                          pd.Timestamp(self.start).strftime("%Y-%m-%d"),
                          pd.Timestamp(self.end).strftime("%Y-%m-%d"),
                          int(self.seed), int(self.n_stations))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self.normalised()), sort_keys=True)


class World:
    """The grid, the calendar and the static parts of one demo world.

    Attributes: ``p`` (:class:`DemoParams`), ``lat``, ``lon``, ``yy``, ``xx`` (centres and
    their meshes), ``time``, ``dayno`` (days since 2000-01-01, so a date gets the same
    swath in any world), ``sensor`` (AMSR sensor code per day), ``ny``, ``nx``, ``nt``,
    ``land`` (mask), ``surface`` (:class:`.land.LandSurface`), ``weather``
    (:class:`.weather.Weather`), ``errors`` (:class:`.sensors.RetrievalErrors`) and
    ``rfi`` (:class:`.gaps.RfiHotSpots`).

    Raises
    ------
    DataError
        The region is smaller than 2 x 2 cells or holds no land.
    """

    def __init__(self, p: DemoParams):
        self.p = p
        self.lat = schema.grid_centres(p.south, p.north, p.res)
        self.lon = schema.grid_centres(p.west, p.east, p.res)
        if len(self.lat) < 2 or len(self.lon) < 2:
            raise DataError(f"region smaller than 2 x 2 cells at res {p.res}")
        self.time = pd.date_range(p.start, p.end, freq="D")
        self.ny, self.nx, self.nt = len(self.lat), len(self.lon), len(self.time)
        self.yy, self.xx = np.meshgrid(self.lat, self.lon, indexing="ij")
        self.sensor = sensors.sensor_codes(self.time)
        # absolute day number, so a date gets the same swath in any world
        self.dayno = ((self.time - pd.Timestamp("2000-01-01")).days).to_numpy()
        static = stream(p.seed, "static")  # shared: land, then weather, then sensors
        self.surface = land.land_surface(static, self.lat, self.lon, self.yy, self.xx, p.res)
        self.land = self.surface.mask
        self.weather = Weather(p.seed, self.time, self.yy, self.xx, p.res, self.surface,
                               static)
        self.errors = sensors.RetrievalErrors(p.seed, static, self.surface.vegetation,
                                              self.weather.p_ann, p.res)
        self.rfi = gaps.RfiHotSpots(self)


def observe(w: World, a: int, b: int, truth: np.ndarray, frozen: np.ndarray,
            rain: np.ndarray, conv: np.ndarray, rng_obs: np.random.Generator,
            rng_ascat: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the satellites report on days ``a:b``: AMSR (float32, m3 m-3, NaN in gaps),
    the gap mask (int8 schema codes) and ASCAT (float32, percent of saturation)."""
    doy = w.time.day_of_year.to_numpy()[a:b]
    mask = gaps.amsr_gap_mask(w, a, b, rain, conv, frozen, rng_obs)
    amsr = sensors.amsr_retrieval(w.errors, w.sensor[a:b], doy, truth, rng_obs)
    amsr[mask != schema.OBSERVED] = np.nan
    ascat = sensors.ascat_retrieval(w.errors, doy, truth, w.surface.porosity,
                                    w.surface.residual, rng_ascat)
    ascat[gaps.ascat_missing(w, a, b, frozen, rng_ascat)] = np.nan
    return amsr.astype(np.float32), mask, ascat.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Block:
    """Days ``a:b`` of a world: arrays of shape ``(b - a, lat, lon)``."""

    a: int
    b: int
    temperature: np.ndarray  # deg C (float64)
    truth: np.ndarray        # m3 m-3 (float32)
    frozen: np.ndarray       # bool
    amsr: np.ndarray         # m3 m-3 (float32, NaN in gaps)
    gap_mask: np.ndarray     # int8 schema codes
    ascat: np.ndarray        # percent of saturation (float32, NaN where missing)


def simulate(w: World, block_days: int) -> Iterator[Block]:
    """Generate the world's days in consecutive blocks of ``block_days``."""
    rng_obs = stream(w.p.seed, "amsr")
    rng_ascat = stream(w.p.seed, "ascat")
    state = water_balance.new_state(w.surface, w.weather.t_mean)
    for a in range(0, w.nt, block_days):
        b = min(a + block_days, w.nt)
        temp = w.weather.temperature(a, b)
        rain, conv = w.weather.rain(a, b)
        if a == 0:  # spin up the soil on the first block's weather
            water_balance.run(state, w.surface, rain, temp)
        truth, frozen = water_balance.run(state, w.surface, rain, temp)
        amsr, mask, ascat = observe(w, a, b, truth, frozen, rain, conv, rng_obs, rng_ascat)
        yield Block(a, b, temp, truth, frozen, amsr, mask, ascat)
