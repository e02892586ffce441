"""The demo world: a deterministic, physically plausible synthetic soil-moisture world.

Real multi-year AMSR grids cannot be downloaded here, so the project ships a generator
for a world that behaves like one (Sivaprasad et al. 2025 fill AMSR-E/AMSR2 gaps over the
USA; the default region is the US Southern Great Plains to the Gulf coast):

* a land/sea mask from Natural Earth 50 m land (offline, :mod:`data_catalog.geo`);
* static soil porosity, residual water content and a vegetation density field (dense
  forests in the south-east);
* spatially correlated daily rain from two latent Gaussian fields (synoptic and
  convective scales) advected eastwards day to day in Fourier space, thresholded to a
  wet-day probability and transformed to amounts, wetter to the east and south-east and
  seasonal; a temperature proxy (latitude, elevation, season, synoptic and year-to-year
  anomalies) turns rain to snow and freezes the ground;
* the true surface soil moisture from a two-layer bucket model per cell (infiltration
  with runoff, drainage, exchange with a deeper layer, evaporation limited by water,
  snow melt, frozen soil), in m3 m-3 within [residual, porosity];
* AMSR-E (2002-06-01 .. 2011-10-03) and AMSR2 (from 2012-07-02) retrievals, each the
  truth through its own bias, gain, spatial bias pattern, a persistent (weeks, footprint
  scale) retrieval error and white noise, with gaps in the
  schema categories: persistent RFI hot spots near cities, dense vegetation, frozen
  ground, swath gaps of one descending overpass a day, invalid retrievals (heavy rain,
  speckle) and not-land;
* ASCAT from 2007-01-01 in percent of saturation with its own noise and gaps;
* ISMN-like stations: point truth with representativeness error, sensor noise, a mild
  diurnal cycle, outages and ISMN quality flags, hourly in UTC.

Everything is generated in time blocks (so large grids fit in memory) and written to a
zarr v3 store atomically: the store is built in a hidden sibling directory and renamed
into place only when complete.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import uuid
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.fft as sfft
import xarray as xr
from scipy.special import ndtri

from data_catalog import schema
from data_catalog.errors import DataError, FormatError, MissingFileError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
GENERATOR = "data_catalog.demo"
VERSION = "3"
CITATION = ("Sivaprasad, S. et al. (2025): Gap-filling of AMSR-E/AMSR2 soil moisture with a "
            "ConvLSTM network. IEEE Journal of Selected Topics in Applied Earth Observations "
            "and Remote Sensing, doi:10.1109/JSTARS.2025.3557956")
STATIONS_GROUP = "stations"
NETWORK = "DEMONET"
# ISMN quality flag strings of the demo stations, stored as int8 codes.
STATION_FLAGS = ("G", "D01", "D02", "D01,D02", "C03")
FLAG_G, FLAG_D01, FLAG_D02, FLAG_D01_D02, FLAG_C03 = range(5)

# Real sensor characteristics that the demo imitates (all tunable here, in one place).
# Retrieval error = a smooth static bias map + a persistent part (``persist``: spatially
# correlated over about a footprint, ~0.5 deg, and in time over ``PERSIST_DAYS``, like
# errors of the vegetation optical depth and effective temperature a retrieval carries
# for weeks) + independent day-to-day noise (``noise``), both larger under vegetation.
# Total random error ~0.025 (AMSR2) and ~0.03 m3 m-3 (AMSR-E), of which about a quarter of
# the variance is white.
AMSRE = {"bias": 0.03, "gain": 1.10, "noise": 0.015, "persist": 0.026, "phase": 0.0}
AMSR2 = {"bias": -0.01, "gain": 0.95, "noise": 0.012, "persist": 0.022, "phase": 0.37}
PERSIST_DAYS = 20.0         # e-folding time of the persistent retrieval error (days)
PERSIST_DEG = 0.5           # its spatial correlation length (deg): the footprint scale
SM_REF = 0.25               # gain acts about this reference soil moisture (m3 m-3)
ORBIT_SPACING_DEG = 24.7    # longitude between successive orbits (98.8 min at 0.25 deg/min)
ORBITS_PER_DAY_FRAC = 0.5625  # 14.5625 orbits a day: the 16-day, 233-orbit repeat
SWATH_KM = 1800.0           # effective daily swath of one descending overpass
TRACK_TILT = 0.2            # deg lon per deg lat of a descending ground track
ASCAT_NOISE = 5.0           # percent of saturation
ASCAT_COVERAGE = 0.62       # fraction of a day's longitude band seen by ASCAT

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
STATION_PLACES = (
    "Prairie", "Cedar Creek", "Red River", "Mesa", "Willow Flats", "Pecan Grove", "Bluestem",
    "Sandhill", "Oak Ridge", "Cottonwood", "Buffalo Gap", "Elk City", "Pine Hollow", "Salt Fork",
    "Walnut Bend", "Twin Lakes", "Hickory", "Coyote Draw", "Marsh Hawk", "Sycamore", "Lone Tree",
    "Clearwater", "Turkey Run", "Big Bend", "Quail Hill", "Stony Point", "Shiloh", "Fox Valley",
)


# ---------------------------------------------------------------- parameters
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


def default_demo_path() -> Path:
    """``$GAPFILL_DEMO`` or ``<repo>/data/demo/world.zarr``."""
    env = os.environ.get("GAPFILL_DEMO")
    return Path(env) if env else REPO / "data" / "demo" / "world.zarr"


# ---------------------------------------------------------------- helpers
def _rng(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per component, stable under code reordering."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _gauss_filter(shape: tuple[int, int], length: float, rfft: bool = True) -> np.ndarray:
    """Spectral Gaussian filter (sd ``length`` cells), normalised to unit output variance."""
    ky = sfft.fftfreq(shape[0])[:, None]
    kx_full = sfft.fftfreq(shape[1])[None, :]
    full = np.exp(-2.0 * np.pi**2 * length**2 * (ky**2 + kx_full**2))
    norm = np.sqrt(np.mean(full**2))
    if not rfft:
        return full / norm
    kx = sfft.rfftfreq(shape[1])[None, :]
    return np.exp(-2.0 * np.pi**2 * length**2 * (ky**2 + kx**2)) / norm


def _smooth_field(rng: np.random.Generator, ny: int, nx: int, length: float) -> np.ndarray:
    """A stationary Gaussian random field with unit variance and correlation ``length`` cells."""
    pad = int(np.ceil(3 * length))
    shape = (sfft.next_fast_len(ny + 2 * pad), sfft.next_fast_len(nx + 2 * pad))
    white = rng.standard_normal(shape)
    field = sfft.irfft2(sfft.rfft2(white) * _gauss_filter(shape, length), s=shape)
    return field[pad:pad + ny, pad:pad + nx]


def _bitround(a: np.ndarray, keepbits: int) -> np.ndarray:
    """Truncate float32 mantissas to ``keepbits`` bits (magnitude never grows).

    Drops noise bits far below the physical precision so the store compresses well;
    truncation (not rounding) keeps values inside their physical bounds.
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    drop = 23 - keepbits
    mask = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    return (a.view(np.uint32) & mask).view(np.float32)


@functools.lru_cache(maxsize=4)
def _excess_table(power: float) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(-6, 9, 3001)
    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    grid = np.linspace(-3.5, 4.0, 751)
    table = np.array([np.trapezoid(np.clip(z - t, 0, None) ** power * pdf, z) for t in grid])
    return grid, table


def _expected_excess(thr: np.ndarray, power: float) -> np.ndarray:
    """E[max(Z - thr, 0) ** power] for standard normal Z (numerical quadrature)."""
    grid, table = _excess_table(power)
    return np.interp(thr, grid, table)


def _sensor_codes(time: pd.DatetimeIndex) -> np.ndarray:
    s = np.zeros(len(time), dtype=np.int8)
    s[(time >= schema.AMSRE_START) & (time <= schema.AMSRE_END)] = schema.SENSOR_AMSRE
    s[time >= schema.AMSR2_START] = schema.SENSOR_AMSR2
    return s


def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    eps = rng.standard_normal(n) * sd * np.sqrt(1 - rho**2)
    out = np.empty(n)
    x = rng.standard_normal() * sd
    for i in range(n):
        x = rho * x + eps[i]
        out[i] = x
    return out


# ---------------------------------------------------------------- the world
class _World:
    """Static fields and the block-wise generators of one demo world."""

    def __init__(self, p: DemoParams):
        from data_catalog import geo

        self.p = p
        self.lat = schema.grid_centres(p.south, p.north, p.res)
        self.lon = schema.grid_centres(p.west, p.east, p.res)
        if len(self.lat) < 2 or len(self.lon) < 2:
            raise DataError(f"region smaller than 2 x 2 cells at res {p.res}")
        self.time = pd.date_range(p.start, p.end, freq="D")
        self.ny, self.nx, self.nt = len(self.lat), len(self.lon), len(self.time)
        self.land = geo.land_mask(self.lat, self.lon)
        if not self.land.any():
            raise DataError("the region holds no land cell: nothing to simulate")
        yy, xx = np.meshgrid(self.lat, self.lon, indexing="ij")
        self.yy, self.xx = yy, xx
        self.sensor = _sensor_codes(self.time)
        # absolute day number, so a date gets the same swath in any world
        self.dayno = ((self.time - pd.Timestamp("2000-01-01")).days).to_numpy()
        self._static()
        self._temperature()
        self._rain_setup()
        self._rfi_setup()

    # ---------------------------------------------------------- static fields
    def _static(self) -> None:
        rng = _rng(self.p.seed, "static")
        cells = lambda deg: max(deg / self.p.res, 1.0)  # noqa: E731
        s1 = _smooth_field(rng, self.ny, self.nx, cells(1.5))
        s2 = _smooth_field(rng, self.ny, self.nx, cells(1.0))
        s3 = _smooth_field(rng, self.ny, self.nx, cells(0.75))
        s4 = _smooth_field(rng, self.ny, self.nx, cells(2.0))
        s5 = _smooth_field(rng, self.ny, self.nx, cells(2.0))
        yy, xx = self.yy, self.xx
        # "east-ness" and "south-ness" of the US interior, in 0..1
        self.east_frac = np.clip((xx + 100.0) / 16.0, 0, 1)
        south_frac = np.clip((46.0 - yy) / 16.0, 0, 1)
        # clay-rich soils of the Gulf coastal plain hold more water
        self.porosity = np.clip(0.41 + 0.04 * south_frac + 0.02 * s1, 0.32, 0.52).astype(np.float32)
        self.residual = np.clip(0.035 + 0.012 * s2, 0.01, 0.07).astype(np.float32)
        por, res = self.porosity.astype(np.float64), self.residual.astype(np.float64)
        self.fc = res + 0.62 * (por - res)
        self.wp = res + 0.18 * (por - res)
        sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
        forest = sig((xx + 94.5) / 1.2) * sig((36.5 - yy) / 1.2)
        north_woods = 0.75 * sig((xx + 93.0) / 1.5) * sig((yy - 44.5) / 0.6)
        self.vegetation = np.clip(0.18 + 0.62 * forest + 0.45 * north_woods
                                  + 0.10 * self.east_frac + 0.08 * s3, 0, 1).astype(np.float32)
        # elevation proxy (km): the High Plains rise to the west
        self.elev = np.clip(0.15 + 1.1 * np.clip((-xx - 90.0) / 10.0, 0, None) ** 1.5 * 0.5, 0, 1.8)
        # annual rain (mm), wet-day probability; wetter to the east and south-east
        self.p_ann = np.clip(500 + 55 * (xx + 100) + 14 * (46 - yy) + 60 * s4, 250, 2000)
        self.p_wet0 = np.clip(0.13 + 0.17 * self.east_frac + 0.08 * self.east_frac * south_frac
                              + 0.02 * s5, 0.06, 0.5)
        self.season_amp = 0.45 - 0.3 * self.east_frac
        # per-sensor smooth bias patterns (calibration differences, m3 m-3)
        self.bias_e = 0.012 * _smooth_field(rng, self.ny, self.nx, cells(2.0))
        self.bias_2 = 0.010 * _smooth_field(rng, self.ny, self.nx, cells(2.0))
        self.land_veg_noise = 0.5 * self.vegetation

    # ---------------------------------------------------------- temperature
    def _temperature(self) -> None:
        rng = _rng(self.p.seed, "temperature")
        n = self.nt
        self.t_a = _ar1(rng, n, 0.8, 4.0)
        self.t_b = _ar1(rng, n, 0.8, 2.0)
        self.t_c = _ar1(rng, n, 0.8, 1.5)
        years = self.time.year.to_numpy()
        uy = np.unique(years)
        winter = dict(zip(uy, rng.normal(0, 2.0, len(uy)), strict=True))
        doy = self.time.day_of_year.to_numpy()
        wweight = np.cos(2 * np.pi * (doy - 15) / 365.25).clip(0, None)
        self.t_year = np.array([winter[y] for y in years]) * wweight
        self.t_mean = 20.5 - 0.85 * (self.yy - 30.0) - 6.5 * self.elev
        self.t_amp = 8.0 + 0.5 * np.clip(self.yy - 30.0, 0, None)

    def temperature(self, a: int, b: int) -> np.ndarray:
        doy = self.time.day_of_year.to_numpy()[a:b, None, None]
        ynorm = ((self.yy - self.yy.mean()) / max(np.ptp(self.yy), 1.0))[None]
        xnorm = ((self.xx - self.xx.mean()) / max(np.ptp(self.xx), 1.0))[None]
        clim = self.t_mean[None] - self.t_amp[None] * np.cos(2 * np.pi * (doy - 15) / 365.25)
        anom = (self.t_a[a:b, None, None] + self.t_b[a:b, None, None] * ynorm
                + self.t_c[a:b, None, None] * xnorm + self.t_year[a:b, None, None])
        return clim + anom

    # ---------------------------------------------------------- rain
    def _latent_spec(self, name: str, length_deg: float, rho: float, drift_deg: tuple,
                     pad_days: int) -> dict:
        """A latent unit-variance Gaussian field, AR(1) in time (``rho`` a day), Gaussian in
        space (``length_deg``), drifting ``drift_deg`` (north, east) a day."""
        res = self.p.res
        length = max(length_deg / res, 1.0)
        drift = (drift_deg[0] / res, drift_deg[1] / res)  # cells a day north, east
        # the padding lets a feature leaving the east edge decorrelate before the periodic
        # Fourier domain brings it back in the west
        pad_y = int(np.ceil(3 * length + abs(drift[0]) * pad_days))
        pad_x = int(np.ceil(3 * length + abs(drift[1]) * pad_days))
        shape = (sfft.next_fast_len(self.ny + 2 * pad_y, real=True),
                 sfft.next_fast_len(self.nx + 2 * pad_x, real=True))
        ky = sfft.fftfreq(shape[0])[:, None]
        kx = sfft.rfftfreq(shape[1])[None, :]
        phase = np.exp(-2j * np.pi * (ky * drift[0] + kx * drift[1]))
        # white noise drawn directly in Fourier space: the rfft of unit real white
        # noise has E|W|^2 = N, i.e. sqrt(N / 2) times a unit complex normal
        scale = _gauss_filter(shape, length) * np.sqrt(shape[0] * shape[1] / 2.0)
        # irfft keeps only the real part of the kx = 0 (and Nyquist) column, which
        # would halve their variance: compensate
        scale[:, 0] *= np.sqrt(2.0)
        if shape[1] % 2 == 0:
            scale[:, -1] *= np.sqrt(2.0)
        return {"rng": _rng(self.p.seed, name), "shape": shape, "pad": (pad_y, pad_x),
                "scale": scale.astype(np.float32), "step": (rho * phase).astype(np.complex64),
                "innov": np.float32(np.sqrt(1 - rho**2)), "state": None}

    def _rain_setup(self) -> None:
        # (name, correlation length in degrees, day-to-day correlation, weight, pad in days
        # of drift)
        self.rain_fields = []
        for name, length_deg, rho, weight, pad_days in (("syn", 2.0, 0.7, 0.78, 2),
                                                         ("conv", 0.5, 0.3, 0.626, 1)):
            f = self._latent_spec(f"rain-{name}", length_deg, rho, (0.3, 1.6), pad_days)
            f["weight"] = weight
            self.rain_fields.append(f)
        self.persist_field = self._latent_spec("retrieval-persist", PERSIST_DEG,
                                               float(np.exp(-1.0 / PERSIST_DAYS)), (0.0, 0.0), 0)
        self._excess_power = 1.5

    def _latent(self, f: dict, n: int) -> np.ndarray:
        """``n`` more days of one latent field (unit variance, float32)."""
        half = (f["shape"][0], f["shape"][1] // 2 + 1)
        z = f["rng"].standard_normal((n, *half, 2), dtype=np.float32)
        spec = np.empty((n, *half), dtype=np.complex64)
        spec.real = z[..., 0]
        spec.imag = z[..., 1]
        spec *= f["scale"]
        state = f["state"]
        step, innov = f["step"], f["innov"]
        for i in range(n):
            if state is None:
                state = spec[i].copy()
            else:
                state *= step
                state += innov * spec[i]
            spec[i] = state
        f["state"] = state
        field = sfft.irfft2(spec, s=f["shape"], workers=-1, overwrite_x=True)
        py, px = f["pad"]
        return field[:, py:py + self.ny, px:px + self.nx]

    def persistent_error(self, a: int, b: int) -> np.ndarray:
        """Unit-variance persistent retrieval error field for days ``a:b`` (in order)."""
        return self._latent(self.persist_field, b - a)

    def rain(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Daily rain (mm) and the latent convective field for days ``a:b``."""
        n = b - a
        syn, conv = (self._latent(f, n) for f in self.rain_fields)
        g = self.rain_fields[0]["weight"] * syn + self.rain_fields[1]["weight"] * conv
        doy = self.time.day_of_year.to_numpy()[a:b, None, None]
        season = np.cos(2 * np.pi * (doy - 140) / 365.25)
        p_wet = np.clip(self.p_wet0[None] * (1 + 0.25 * season), 0.03, 0.6)
        mean = self.p_ann[None] / 365.25 * (1 + self.season_amp[None] * season)
        thr = ndtri(1 - p_wet)
        k = mean / _expected_excess(thr, self._excess_power)
        rain = k * np.clip(g - thr, 0, None) ** self._excess_power
        return np.minimum(rain, 250.0), conv

    # ---------------------------------------------------------- RFI
    def _rfi_setup(self) -> None:
        rng = _rng(self.p.seed, "rfi")
        p = self.p
        area = (p.east - p.west) * (p.north - p.south)
        n = int(np.clip(round(area / 50.0), 2, 12))
        inside = [c for c in CITIES if p.south + 0.5 <= c[1] <= p.north - 0.5
                  and p.west + 0.5 <= c[2] <= p.east - 0.5]
        order = rng.permutation(len(inside))
        spots = [inside[i] for i in order[:n]]
        land_idx = np.argwhere(self.land)
        while len(spots) < n:  # regions without big cities: random land points
            i, j = land_idx[rng.integers(len(land_idx))]
            spots.append((f"site {len(spots)}", float(self.lat[i]), float(self.lon[j])))
        self.rfi_spots = []
        for k, (name, la, lo) in enumerate(spots):
            radius = rng.uniform(0.4, 0.9)
            d2 = ((self.yy - la) ** 2 + ((self.xx - lo) * np.cos(np.radians(la))) ** 2)
            shape_noise = 1 + 0.25 * _smooth_field(rng, self.ny, self.nx, max(0.3 / p.res, 1.0))
            intensity = np.exp(-d2 / (2 * radius**2)) * shape_noise
            # one hot spot is AMSR-E only, one appears with AMSR2 (new transmitters)
            sensors = ((schema.SENSOR_AMSRE,) if k == 1 else (schema.SENSOR_AMSR2,) if k == 2
                       else (schema.SENSOR_AMSRE, schema.SENSOR_AMSR2))
            self.rfi_spots.append({"name": name, "lat": la, "lon": lo, "intensity": intensity,
                                   "p_active": rng.uniform(0.75, 0.95), "sensors": sensors})
        self.rfi_rng = _rng(p.seed, "rfi-days")

    def rfi(self, a: int, b: int) -> np.ndarray:
        n = b - a
        out = np.zeros((n, self.ny, self.nx), dtype=bool)
        sensor = self.sensor[a:b]
        for spot in self.rfi_spots:
            active = self.rfi_rng.random(n) < spot["p_active"]
            thr = self.rfi_rng.uniform(0.25, 0.6, n)
            active &= np.isin(sensor, spot["sensors"])
            out |= active[:, None, None] & (spot["intensity"][None] > thr[:, None, None])
        return out

    # ---------------------------------------------------------- swaths
    def swath_gap(self, a: int, b: int, sensor: dict, spacing: float, swath_km: float,
                  tilt: float) -> np.ndarray:
        dayno = self.dayno[a:b, None, None]
        phase = ((dayno * ORBITS_PER_DAY_FRAC + sensor["phase"]) % 1.0) * spacing
        u = self.xx[None] - tilt * (self.yy[None] - 38.0)
        width = swath_km / (111.32 * np.cos(np.radians(self.yy)))[None]
        gap = np.clip(spacing - width, 0, None)
        return np.mod(u - phase, spacing) < gap


def _bucket_step(st: dict, w: _World, rain: np.ndarray, temp: np.ndarray) -> None:
    """Advance the two-layer bucket of every cell by one day (in place)."""
    por, res, fc, wp = st["por"], st["res"], w.fc, w.wp
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
    theta += infil / 70.0
    excess = np.clip(theta - por, 0, None)
    theta -= excess
    drain = np.where(theta > fc, 0.6 * (theta - fc), 0.0)
    theta -= drain
    deep += drain * (70.0 / 400.0)
    ex = 0.06 * (theta - deep)
    theta -= ex
    deep += ex * (70.0 / 400.0)
    pet = np.clip(0.2 * (temp + 3.0), 0, None) * (1.9 - 1.1 * w.east_frac)
    pet = np.where(frozen, 0.0, pet)
    theta -= 0.55 * pet * np.clip((theta - wp) / (fc - wp), 0, 1) / 70.0
    deep -= 0.55 * pet * np.clip((deep - wp) / (fc - wp), 0, 1) / 400.0
    deep -= np.where(deep > fc, 0.05 * (deep - fc), 0.0)
    np.clip(theta, res + 0.002, por, out=theta)
    np.clip(deep, res + 0.002, por, out=deep)
    st["frozen"] = frozen


def _new_state(w: _World) -> dict:
    por = w.porosity.astype(np.float64)
    res = w.residual.astype(np.float64)
    return {"por": por, "res": res, "theta": w.fc - 0.05, "deep": w.fc - 0.05,
            "snow": np.zeros_like(por), "tsoil": w.t_mean.copy(),
            "frozen": np.zeros(por.shape, bool)}


def _run_bucket(st: dict, w: _World, rain: np.ndarray, temp: np.ndarray):
    n = rain.shape[0]
    truth = np.empty(rain.shape, dtype=np.float32)
    frozen = np.empty(rain.shape, dtype=bool)
    for i in range(n):
        _bucket_step(st, w, rain[i], temp[i])
        truth[i] = st["theta"]
        frozen[i] = st["frozen"]
    return truth, frozen


# ---------------------------------------------------------------- observations
def _observe(w: _World, a: int, b: int, truth: np.ndarray, frozen: np.ndarray,
             rain: np.ndarray, conv: np.ndarray, rng_obs: np.random.Generator,
             rng_ascat: np.random.Generator):
    n = b - a
    sensor = w.sensor[a:b]
    land = w.land[None]
    veg = w.vegetation[None].astype(np.float64)
    # --- gap categories, lowest priority first
    mask = np.zeros((n, w.ny, w.nx), dtype=np.int8)
    heavy = (rain > 25.0) & (rng_obs.random(rain.shape) < 0.7)
    speckle = rng_obs.random(rain.shape) < 0.015
    storm_core = conv > 2.3
    mask[heavy | speckle | storm_core] = schema.INVALID
    doy = w.time.day_of_year.to_numpy()[a:b, None, None]
    veg_t = veg * (1 + 0.12 * np.cos(2 * np.pi * (doy - 200) / 365.25))
    mask[np.broadcast_to(veg_t > 0.74, mask.shape)] = schema.DENSE_VEGETATION
    mask[w.rfi(a, b)] = schema.RFI
    mask[frozen] = schema.FROZEN
    swath = np.zeros(mask.shape, dtype=bool)
    for code, sen in ((schema.SENSOR_AMSRE, AMSRE), (schema.SENSOR_AMSR2, AMSR2)):
        days = sensor == code
        if days.any():
            idx = np.flatnonzero(days)
            swath[idx] = w.swath_gap(a + idx[0], a + idx[-1] + 1, sen, ORBIT_SPACING_DEG,
                                     SWATH_KM, TRACK_TILT)[idx - idx[0]]
    swath[sensor == schema.SENSOR_NONE] = True
    mask[swath] = schema.NO_OVERPASS
    mask[np.broadcast_to(~land, mask.shape)] = schema.NOT_LAND
    # --- AMSR values: truth through each sensor's calibration
    t64 = truth.astype(np.float64)
    amsr = np.full(truth.shape, np.nan)
    eps = rng_obs.standard_normal(truth.shape)
    persist = w.persistent_error(a, b)
    for code, sen, bias_map in ((schema.SENSOR_AMSRE, AMSRE, w.bias_e),
                                (schema.SENSOR_AMSR2, AMSR2, w.bias_2)):
        d = sensor == code
        if d.any():
            amsr[d] = (SM_REF + sen["bias"] + sen["gain"] * (t64[d] - SM_REF) + bias_map[None]
                       + (1 + w.land_veg_noise[None])
                       * (sen["persist"] * persist[d] + sen["noise"] * eps[d]))
    amsr = np.clip(amsr, 0.0, 0.65)
    amsr[mask != schema.OBSERVED] = np.nan
    # --- ASCAT: degree of saturation, own noise and gaps
    por = w.porosity[None].astype(np.float64)
    res = w.residual[None].astype(np.float64)
    ascat = 100.0 * (t64 - res) / (por - res) + ASCAT_NOISE * rng_ascat.standard_normal(truth.shape)
    ascat = np.clip(ascat, 0.0, 100.0)
    u = w.xx[None] + 0.3 * (w.yy[None] - 38.0)
    dayno = w.dayno[a:b, None, None]
    phase = ((dayno * 0.41 + 0.13) % 1.0) * 20.0
    seen = np.mod(u - phase, 20.0) < 20.0 * ASCAT_COVERAGE
    missing = (~seen) | frozen | (rng_ascat.random(truth.shape) < 0.02) | ~land
    before = np.asarray(w.time[a:b] < schema.ASCAT_START)
    missing[before] = True
    ascat[missing] = np.nan
    return amsr.astype(np.float32), mask, ascat.astype(np.float32)


# ---------------------------------------------------------------- stations
def _pick_station_cells(w: _World, n: int) -> list[tuple[int, int]]:
    rng = _rng(w.p.seed, "stations-place")
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


def _station_data(w: _World, cells: list[tuple[int, int]], truth: np.ndarray,
                  frozen: np.ndarray, tair: np.ndarray
                  ) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Hourly station series from the daily cell truth at the station cells.

    ``truth``, ``frozen``, ``tair`` have shape ``(time, station)``.
    """
    rng = _rng(w.p.seed, "stations")
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
        por = float(w.porosity[i, j]) + rng.normal(0, 0.02)
        res = float(w.residual[i, j])
        cell = truth[:, k].astype(np.float64)
        mean = cell.mean()
        gain = rng.uniform(0.85, 1.15)
        offset = rng.normal(0, 0.025)
        dev = _ar1(rng, nt, 0.98, 0.015)
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


# ---------------------------------------------------------------- storage
def _chunks(ny: int, nx: int) -> tuple[int, int, int]:
    """Time x lat x lon chunks so that one day's map and one pixel's series both read fast.

    A day's map decompresses every chunk of its time slab (``tt x ny x nx`` values) and a
    pixel's series one tile per time chunk (``nt x ty x tx`` values).  Up to 128 x 128 cells
    a year of 32 x 32 tiles keeps both to a few MB per variable (measured on the default
    64 x 64 world: ~15 ms a map, ~70 ms a 21-year series, against ~400 ms with whole
    64 x 64 tiles); bigger grids get 64 x 64 tiles and shorter time chunks so that a day's
    slab stays under ~12 MB (and a generation block, one time chunk, under ~1 GB).
    """
    tile = 32 if ny * nx <= 128 * 128 else 64
    ty, tx = min(ny, tile), min(nx, tile)
    tt = int(np.clip(3_000_000 // (ny * nx), 30, 365))
    return tt, ty, tx


def _compressors(float_bits: bool):
    from zarr.codecs import BloscCodec

    # lz4 + bitshuffle: ~2.5x faster to write than zstd for ~10 % more bytes (bit-rounded
    # floats leave long runs of zero bits that the bit shuffle exposes)
    return (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle" if float_bits else "shuffle"),)


def _is_complete(path: Path) -> bool:
    meta = path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return attrs.get("generator") == GENERATOR and bool(attrs.get("complete"))


def _stored_params(path: Path) -> str | None:
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None
    return attrs.get("parameters")


def _stored_version(path: Path) -> str | None:
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None
    return attrs.get("version")


def store_matches(path: str | Path, params: DemoParams | None = None) -> bool:
    """Whether ``path`` is a complete demo world built by this generator version with
    ``params`` (default parameters when None); a leftover partial build never matches."""
    path = Path(path)
    params = (params or DemoParams()).normalised()
    return (_is_complete(path) and _stored_params(path) == params.to_json()
            and _stored_version(path) == VERSION)


def _clean_stale_temps(out: Path) -> None:
    for tmp in out.parent.glob(f".{out.name}.building-*"):
        try:
            pid = int(tmp.name.split("-")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("removing leftover partial build %s", tmp)
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def build_demo_world(out: str | Path | None = None, *, west: float = -100.0, south: float = 30.0,
                     east: float = -84.0, north: float = 46.0, res: float = 0.25,
                     start: str = "2003-01-01", end: str = "2023-12-31", seed: int = 42,
                     n_stations: int = 24, progress: bool = True, force: bool = False) -> Path:
    """Generate the demo world and write it to a zarr v3 store.

    Parameters
    ----------
    out : path, optional
        Store to write (a directory); default :func:`default_demo_path`.
    west, south, east, north : float
        Region edges in degrees.
    res : float
        Grid spacing in degrees.
    start, end : str
        First and last day (inclusive).
    seed : int
        Seed of every random stream: the same parameters give identical stores.
    n_stations : int
        Number of ISMN-like stations placed on land cells.
    progress : bool
        Show a tqdm progress bar.
    force : bool
        Rebuild even when a complete store with the same parameters exists, and replace
        a store built with other parameters (otherwise an error).

    Returns
    -------
    pathlib.Path
        The store.

    Raises
    ------
    DataError
        Bad parameters, or ``out`` holds something else and ``force`` is false.
    """
    from tqdm import tqdm

    params = DemoParams(west, south, east, north, res, start, end, seed, n_stations).normalised()
    out = Path(out) if out is not None else default_demo_path()
    out = out.absolute()
    if out.exists() and not force:
        if store_matches(out, params):
            log.info("demo world %s already built with these parameters", out)
            return out
        if _is_complete(out) and _stored_params(out) == params.to_json():
            # our own output from an older generator: safe to replace
            log.warning("demo world %s was built by generator version %s; rebuilding with "
                        "version %s", out, _stored_version(out), VERSION)
            force = True
    if out.exists() and not force:
        raise DataError("exists and was not built with these parameters (stored: "
                        f"{_stored_params(out)}); pass force=True (--force) to replace it", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(out)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_world(tmp, params, progress, tqdm)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.debug("demo world written to %s", out)
    return out


def _write_world(tmp: Path, p: DemoParams, progress: bool, tqdm) -> None:
    import dask.array as da
    import zarr

    w = _World(p)
    tt, ty, tx = _chunks(w.ny, w.nx)
    shape = (w.nt, w.ny, w.nx)
    dims = schema.GRID_DIMS

    def attrs(name: str) -> dict:
        return {"units": schema.UNITS[name], "long_name": schema.LONG_NAMES[name]}

    lazy_f = da.zeros(shape, chunks=(tt, ty, tx), dtype=np.float32)
    lazy_i = da.zeros(shape, chunks=(tt, ty, tx), dtype=np.int8)
    template = xr.Dataset(
        {
            schema.AMSR_SM: (dims, lazy_f, attrs(schema.AMSR_SM)),
            schema.GAP_MASK: (dims, lazy_i, schema.gap_mask_attrs()),
            schema.ASCAT_SM: (dims, lazy_f, attrs(schema.ASCAT_SM)),
            schema.TRUTH_SM: (dims, lazy_f, attrs(schema.TRUTH_SM)),
            schema.LAND: ((schema.LAT, schema.LON), w.land,
                          {"long_name": schema.LONG_NAMES[schema.LAND]}),
            "porosity": ((schema.LAT, schema.LON), w.porosity,
                         {"units": "m3 m-3",
                          "long_name": "soil porosity (saturated water content)"}),
            "residual": ((schema.LAT, schema.LON), w.residual,
                         {"units": "m3 m-3", "long_name": "residual soil water content"}),
            "vegetation": ((schema.LAT, schema.LON), w.vegetation,
                           {"units": "1", "long_name": "vegetation density index (0..1)"}),
        },
        coords={
            schema.TIME: (schema.TIME, w.time.to_numpy(), {"long_name": "day (UTC)"}),
            schema.LAT: (schema.LAT, w.lat,
                         {"units": "degrees_north", "standard_name": "latitude"}),
            schema.LON: (schema.LON, w.lon,
                         {"units": "degrees_east", "standard_name": "longitude"}),
            schema.SENSOR: (schema.TIME, w.sensor, schema.sensor_attrs()),
        },
        attrs={
            "title": "AMSR Gap-Fill Explorer demo world (synthetic)",
            "generator": GENERATOR,
            "version": VERSION,
            "seed": p.seed,
            "parameters": p.to_json(),
            "citation": CITATION,
            "references": "https://doi.org/10.1109/JSTARS.2025.3557956",
            "amsre": json.dumps(AMSRE),
            "amsr2": json.dumps(AMSR2),
            "rfi_hot_spots": json.dumps([{"name": s["name"], "lat": s["lat"], "lon": s["lon"]}
                                          for s in w.rfi_spots]),
            "Conventions": "CF-1.10",
            "complete": False,
        },
    )
    fcomp, icomp = _compressors(True), _compressors(False)
    enc = {v: {"chunks": (tt, ty, tx), "compressors": fcomp}
           for v in (schema.AMSR_SM, schema.ASCAT_SM, schema.TRUTH_SM)}
    enc[schema.GAP_MASK] = {"chunks": (tt, ty, tx), "compressors": icomp}
    enc[schema.TIME] = {"units": "days since 1970-01-01", "dtype": "int32"}
    template.to_zarr(tmp, mode="w", compute=False, zarr_format=3, consolidated=False,
                     encoding=enc)
    group = zarr.open_group(tmp, mode="r+", zarr_format=3)
    arrays = {v: group[v] for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM,
                                    schema.TRUTH_SM)}

    cells = _pick_station_cells(w, p.n_stations)
    ci = np.array([c[0] for c in cells], dtype=int)
    cj = np.array([c[1] for c in cells], dtype=int)
    st_truth = np.empty((w.nt, len(cells)), dtype=np.float32)
    st_frozen = np.empty((w.nt, len(cells)), dtype=bool)
    st_tair = np.empty((w.nt, len(cells)), dtype=np.float32)

    rng_obs = _rng(p.seed, "amsr")
    rng_ascat = _rng(p.seed, "ascat")
    state = _new_state(w)
    blocks = [(a, min(a + tt, w.nt)) for a in range(0, w.nt, tt)]
    bar = tqdm(total=w.nt, unit="day", desc="demo world", disable=not progress)
    try:
        for a, b in blocks:
            temp = w.temperature(a, b)
            rain, conv = w.rain(a, b)
            if a == 0:  # spin up the soil on the first block's weather
                _run_bucket(state, w, rain, temp)
            truth, frozen = _run_bucket(state, w, rain, temp)
            amsr, mask, ascat = _observe(w, a, b, truth, frozen, rain, conv, rng_obs, rng_ascat)
            arrays[schema.TRUTH_SM][a:b] = _bitround(truth, 12)
            arrays[schema.AMSR_SM][a:b] = _bitround(amsr, 12)
            arrays[schema.ASCAT_SM][a:b] = _bitround(ascat, 10)
            arrays[schema.GAP_MASK][a:b] = mask
            st_truth[a:b] = truth[:, ci, cj]
            st_frozen[a:b] = frozen[:, ci, cj]
            st_tair[a:b] = temp[:, ci, cj]
            bar.update(b - a)
        bar.set_description("demo stations")
        rows, sm, flag = _station_data(w, cells, st_truth, st_frozen, st_tair)
        _write_stations(tmp, w, rows, sm, flag)
    finally:
        bar.close()
    group.attrs["complete"] = True


def _write_stations(tmp: Path, w: _World, rows: list[dict], sm: np.ndarray,
                    flag: np.ndarray) -> None:
    hours = pd.date_range(w.time[0], periods=w.nt * 24, freq="h")
    nst = len(rows)
    ds = xr.Dataset(
        {
            "sm": (("station", "time"), sm, {"units": "m3 m-3",
                                            "long_name": "in situ soil moisture (hourly, UTC)"}),
            "flag": (("station", "time"), flag, {
                "long_name": "ISMN quality flag (code; see flag_strings)",
                "flag_values": np.arange(len(STATION_FLAGS), dtype=np.int8),
                "flag_strings": json.dumps(STATION_FLAGS)}),
        },
        coords={"station": np.arange(nst), "time": hours},
        attrs={"table": json.dumps(rows), "network": NETWORK,
               "description": "ISMN-like demo stations: point truth + representativeness "
                              "error, sensor noise, outages; flags G, D01 (soil frozen), "
                              "D02 (air frozen), C03 (above saturation)"},
    )
    chunk = (1, max(1, w.nt * 24))
    enc = {"sm": {"chunks": chunk, "compressors": _compressors(True)},
           "flag": {"chunks": chunk, "compressors": _compressors(False)},
           "time": {"units": "hours since 1970-01-01", "dtype": "int64"}}
    ds.to_zarr(tmp, group=STATIONS_GROUP, mode="w", zarr_format=3, consolidated=False,
               encoding=enc)


# ---------------------------------------------------------------- reading
def _check_store(path: Path) -> Path:
    if not path.exists():
        raise MissingFileError("demo world not found; build it with `gapfill demo-data`", path)
    if not _is_complete(path):
        raise FormatError("not a complete demo world store (interrupted build or another "
                          "zarr store); rebuild with `gapfill demo-data --force`", path)
    return path


def open_demo_world(path: str | Path | None = None) -> xr.Dataset:
    """Open the demo world lazily (dask) in canonical form, ``truth_sm`` included.

    Parameters
    ----------
    path : path, optional
        The store; default :func:`default_demo_path`.

    Raises
    ------
    MissingFileError, FormatError
        When the store is absent or incomplete.
    """
    path = _check_store(Path(path) if path is not None else default_demo_path())
    ds = xr.open_zarr(path, consolidated=False, zarr_format=3)
    # the small (time,) and (lat, lon) arrays are read now: selecting days by sensor or
    # masking the sea should not build dask graphs
    small = [n for n, v in ds.variables.items() if schema.TIME not in v.dims or v.ndim == 1]
    ds = ds.assign({n: ds[n].load() for n in small if n in ds.data_vars})
    ds = ds.assign_coords({n: ds[n].load() for n in small if n in ds.coords})
    ds.attrs["source_path"] = str(path)
    return ds


def open_demo_stations(path: str | Path | None = None
                       ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The demo stations in the schema form ``(table, series)``.

    ``table`` has :data:`schema.STATION_COLUMNS` (plus ``cell_lat``/``cell_lon``, the
    demo grid cell the station lies in); ``series`` maps station id to an hourly frame
    indexed by tz-aware UTC time with ``sm`` (m3 m-3) and ``flag`` (ISMN flag string).
    Outage hours are absent, as in ISMN downloads.
    """
    path = _check_store(Path(path) if path is not None else default_demo_path())
    ds = xr.open_zarr(path, group=STATIONS_GROUP, consolidated=False, zarr_format=3)
    rows = json.loads(ds.attrs["table"])
    table = pd.DataFrame(rows)
    cols = list(schema.STATION_COLUMNS) + [c for c in table.columns
                                           if c not in schema.STATION_COLUMNS]
    table = table.reindex(columns=cols)
    strings = np.array(json.loads(ds["flag"].attrs["flag_strings"]), dtype=object)
    index = pd.DatetimeIndex(ds["time"].values).tz_localize("UTC").rename("time")
    sm = ds["sm"].values
    flag = ds["flag"].values
    series = {}
    for k, row in enumerate(rows):
        ok = np.isfinite(sm[k])
        series[row["id"]] = pd.DataFrame({"sm": sm[k][ok].astype(np.float64),
                                          "flag": strings[flag[k][ok]]}, index=index[ok])
    return table, series
