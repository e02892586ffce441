"""The one canonical data schema of the project.

Every reader returns data in this form and nothing downstream re-checks conventions
(the weatherbench2 ``schema.py`` habit).  Gridded fields are ``(time, lat, lon)``
with latitude ascending, longitude in [-180, 180), daily time stamps at 00:00 UTC
(naive ``datetime64`` meaning UTC) and float32 values.

Variables of a canonical gridded dataset (all optional except what a reader produces):

``amsr_sm``     AMSR-E/AMSR2 surface soil moisture, m3 m-3, NaN where not observed
``amsr_sm_error`` the product's own error (SD) of ``amsr_sm``, m3 m-3, where the product
                has one (LPRM ``soil_moisture_*_error``, CCI/C3S ``sm_uncertainty``); NaN
                where ``amsr_sm`` is; absent from the demo world
``gap_mask``    int8 gap category of ``amsr_sm`` (CF flags, :data:`GAP_FLAGS`)
``ascat_sm``    ASCAT surface soil moisture, percent of saturation, NaN where missing
``truth_sm``    demo world only: the true soil moisture, m3 m-3
``land``        bool (lat, lon) land mask
``sensor``      int8 coordinate along ``time``: which radiometer the day belongs to
                (:data:`SENSOR_FLAGS`)

Stations are a :class:`pandas.DataFrame` with :data:`STATION_COLUMNS` and, per station,
a time series frame indexed by UTC time with columns ``sm`` (m3 m-3) and ``flag``
(ISMN quality flag string; ``"G"`` is good).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

# ---------------------------------------------------------------- dimensions
TIME, LAT, LON = "time", "lat", "lon"
GRID_DIMS = (TIME, LAT, LON)

# ---------------------------------------------------------------- variables
AMSR_SM = "amsr_sm"
#: the product's own error (standard deviation) of ``amsr_sm`` (:func:`amsr_error_attrs`)
AMSR_SM_ERROR = "amsr_sm_error"
#: CF standard name of soil moisture (m3 m-3); its SD is this plus " standard_error"
SM_STANDARD_NAME = "volume_fraction_of_condensed_water_in_soil"
GAP_MASK = "gap_mask"
ASCAT_SM = "ascat_sm"
TRUTH_SM = "truth_sm"
LAND = "land"
SENSOR = "sensor"
FILLED_SM = "filled_sm"
#: the standard deviation of the error of ``filled_sm`` (its CF ancillary variable)
UNCERTAINTY = "filled_sm_uncertainty"
COMBINED_SM = "combined_sm"

UNITS = {
    AMSR_SM: "m3 m-3",
    AMSR_SM_ERROR: "m3 m-3",
    ASCAT_SM: "percent of saturation",
    TRUTH_SM: "m3 m-3",
    FILLED_SM: "m3 m-3",
    COMBINED_SM: "m3 m-3",
}
LONG_NAMES = {
    AMSR_SM: "AMSR-E/AMSR2 surface soil moisture",
    AMSR_SM_ERROR: "the product's own error (standard deviation) of amsr_sm",
    ASCAT_SM: "ASCAT surface soil moisture (degree of saturation)",
    TRUTH_SM: "true surface soil moisture (demo world)",
    FILLED_SM: "gap-filled surface soil moisture (ConvLSTM)",
    COMBINED_SM: "merged active+passive surface soil moisture (ESA CCI / C3S COMBINED)",
    GAP_MASK: "gap category of the AMSR observation",
    SENSOR: "radiometer of the day",
    LAND: "land mask",
}

# Unit spellings readers meet in the wild, mapped to (canonical unit, factor).
UNIT_ALIASES: dict[str, tuple[str, float]] = {
    "m3 m-3": ("m3 m-3", 1.0),
    "m3/m3": ("m3 m-3", 1.0),
    "m^3 m^-3": ("m3 m-3", 1.0),
    "m3.m-3": ("m3 m-3", 1.0),
    "m³/m³": ("m3 m-3", 1.0),
    "percent": ("percent", 1.0),
    "%": ("percent", 1.0),
    "percent of saturation": ("percent of saturation", 1.0),
    "percent saturation": ("percent of saturation", 1.0),
    "% saturation": ("percent of saturation", 1.0),
    # spellings met in real files: C3S v202505 cells write "percentage (%)" (a percentage of
    # what the variable is: converted by what the reader expects), H SAF "degree of
    # saturation (%)" (H111)
    "percentage (%)": ("percent", 1.0),
    "percentage": ("percent", 1.0),
    "m3m-3": ("m3 m-3", 1.0),
    "degree of saturation (%)": ("percent of saturation", 1.0),
    "degree of saturation": ("percent of saturation", 1.0),
}


# ---------------------------------------------------------------- gap categories
@dataclass(frozen=True)
class Flag:
    value: int
    meaning: str
    label: str
    color: str


GAP_FLAGS: tuple[Flag, ...] = (
    Flag(0, "observed", "Observed", "#00000000"),
    Flag(1, "radio_frequency_interference", "RFI", "#d62728"),
    Flag(2, "dense_vegetation", "Dense vegetation", "#2ca02c"),
    Flag(3, "frozen_ground", "Frozen ground", "#1f77b4"),
    Flag(4, "no_overpass", "Swath gap", "#7f7f7f"),
    Flag(5, "invalid_retrieval", "Other / invalid", "#ff7f0e"),
    Flag(6, "not_land", "Not land", "#ffffff"),
)
OBSERVED, RFI, DENSE_VEGETATION, FROZEN, NO_OVERPASS, INVALID, NOT_LAND = range(7)
GAP_CATEGORY = {f.meaning: f.value for f in GAP_FLAGS}

SENSOR_FLAGS: tuple[Flag, ...] = (
    Flag(0, "none", "No radiometer", "#999999"),
    Flag(1, "amsr_e", "AMSR-E", "#9467bd"),
    Flag(2, "amsr2", "AMSR2", "#8c564b"),
)
SENSOR_NONE, SENSOR_AMSRE, SENSOR_AMSR2 = 0, 1, 2

# Where a filled field's value comes from (``source_flag`` of the series store, its NetCDF
# export and ``gapfill predict``).  Values are appended, never renumbered: stores written
# before ``filled_frozen_ground`` existed stay readable.  Fills under frozen ground are
# flagged apart because the model has little skill there (R about 0.5 against the truth)
# and no radiometer measures frozen soil moisture: viewers hide them by default.
SOURCE_FLAG = "source_flag"
SOURCE_FLAGS: tuple[Flag, ...] = (
    Flag(0, "observed_amsr_e", "Observed (AMSR-E)", "#9467bd"),
    Flag(1, "observed_amsr2", "Observed (AMSR2)", "#8c564b"),
    Flag(2, "filled", "Gap-filled (ConvLSTM)", "#17becf"),
    Flag(3, "not_land", "Not land", "#ffffff"),
    Flag(4, "filled_frozen_ground", "Gap-filled under frozen ground", "#aec7e8"),
)
(SOURCE_OBSERVED_AMSRE, SOURCE_OBSERVED_AMSR2, SOURCE_FILLED, SOURCE_NOT_LAND,
 SOURCE_FILLED_FROZEN) = range(5)


def source_flags(observed: np.ndarray, land: np.ndarray, sensor: np.ndarray,
                 gap_mask: np.ndarray | None = None) -> np.ndarray:
    """Per pixel-day :data:`SOURCE_FLAGS` (int8) from the valid-observation mask
    ``(..., T, H, W)``, the land mask ``(H, W)``, the radiometer of each day ``(T,)`` and the
    gap categories ``gap_mask`` (same shape as ``observed``; None: no frozen flag)."""
    observed = np.asarray(observed, bool)
    flag = np.full(observed.shape, SOURCE_FILLED, np.int8)
    if gap_mask is not None:
        flag[~observed & (np.asarray(gap_mask) == FROZEN)] = SOURCE_FILLED_FROZEN
    s = np.asarray(sensor)[:, None, None]
    flag[observed & (s == SENSOR_AMSRE)] = SOURCE_OBSERVED_AMSRE
    flag[observed & (s == SENSOR_AMSR2)] = SOURCE_OBSERVED_AMSR2
    flag[..., ~np.asarray(land, bool)] = SOURCE_NOT_LAND
    return flag


def source_flag_attrs() -> dict:
    return flag_attrs(SOURCE_FLAGS, "source of filled_sm")


# Real mission periods of the products (the demo world follows them too).
AMSRE_START, AMSRE_END = pd.Timestamp("2002-06-01"), pd.Timestamp("2011-10-03")
AMSR2_START = pd.Timestamp("2012-07-02")
ASCAT_START = pd.Timestamp("2007-01-01")


# ---------------------------------------------------------------- reason flags
REASON_FLAG = "reason_flag"
REASON_FLAGS: tuple[Flag, ...] = (
    Flag(1, "amsr_missing_rfi", "AMSR missing: RFI", "#d62728"),
    Flag(2, "amsr_missing_dense_vegetation", "AMSR missing: dense vegetation", "#2ca02c"),
    Flag(4, "amsr_missing_frozen_ground", "AMSR missing: frozen ground", "#1f77b4"),
    Flag(8, "amsr_missing_swath", "AMSR missing: swath gap", "#7f7f7f"),
    Flag(16, "amsr_missing_invalid", "AMSR missing: invalid retrieval", "#ff7f0e"),
    Flag(32, "ascat_used", "ASCAT entered the fill that day", "#17becf"),
    Flag(64, "later_days_used", "days after the date entered the fill (look-ahead)",
         "#bcbd22"),
    Flag(128, "amsre_rescaled", "AMSR-E value rescaled to the AMSR2 climatology", "#9467bd"),
)
"""Bits of ``reason_flag`` (CF ``flag_masks``), beside ``source_flag``, per pixel-day: why
AMSR was missing (one of the first five, from the gap category :data:`GAP_FLAGS` 1..5),
whether ASCAT was present at the pixel that day when it was filled, whether the model that
filled it read days after the date, and whether an observed AMSR-E value was rescaled to
the AMSR2 climatology.  0: an AMSR2 observation kept as it is (or not land)."""
REASON_BIT = {f.meaning: f.value for f in REASON_FLAGS}
#: gap category (GAP_FLAGS value) -> its reason bit
GAP_REASON = {RFI: 1, DENSE_VEGETATION: 2, FROZEN: 4, NO_OVERPASS: 8, INVALID: 16}


def reason_attrs() -> dict:
    """CF attributes of ``reason_flag`` (a bit field)."""
    return {"long_name": "why filled_sm is what it is (bit field)",
            "flag_masks": np.array([f.value for f in REASON_FLAGS], np.uint8),
            "flag_meanings": " ".join(f.meaning for f in REASON_FLAGS),
            "valid_range": np.array([0, 255], np.uint8)}


def reason_flags(gap_mask: np.ndarray, filled: np.ndarray, ascat_present: np.ndarray, *,
                 later_days: bool | np.ndarray, amsre_rescaled: bool | np.ndarray,
                 land: np.ndarray) -> np.ndarray:
    """``reason_flag`` (uint8) of pixel-days: ``gap_mask`` the day's gap category, ``filled``
    the pixel-days filled by the model, ``ascat_present`` ASCAT finite at the pixel-day,
    ``later_days`` the model read days after the date, ``amsre_rescaled`` an observed
    AMSR-E day given in the AMSR2 climatology (both broadcast against the arrays)."""
    gm = np.asarray(gap_mask)
    out = np.zeros(gm.shape, np.uint8)
    for code, bit in GAP_REASON.items():
        out[gm == code] |= np.uint8(bit)
    filled = np.asarray(filled, bool)
    out[filled & np.asarray(ascat_present, bool)] |= np.uint8(REASON_BIT["ascat_used"])
    out[filled & np.asarray(later_days, bool)] |= np.uint8(REASON_BIT["later_days_used"])
    out[~filled & np.asarray(amsre_rescaled, bool)] |= np.uint8(REASON_BIT["amsre_rescaled"])
    out[..., ~np.asarray(land, bool)] = 0
    return out


def flag_attrs(flags: tuple[Flag, ...], long_name: str) -> dict:
    """CF attributes of a flag variable."""
    return {
        "long_name": long_name,
        "flag_values": np.array([f.value for f in flags], dtype=np.int8),
        "flag_meanings": " ".join(f.meaning for f in flags),
    }


def amsr_error_attrs(source_variable: str | None = None) -> dict:
    """CF attributes of ``amsr_sm_error``: ``source_variable`` names the product's own
    variable it was read from (``soil_moisture_c1_error``, ``sm_uncertainty``)."""
    attrs = {"units": UNITS[AMSR_SM_ERROR], "long_name": LONG_NAMES[AMSR_SM_ERROR],
             "standard_name": f"{SM_STANDARD_NAME} standard_error"}
    if source_variable:
        attrs["source_variable"] = source_variable
    return attrs


def gap_mask_attrs() -> dict:
    return flag_attrs(GAP_FLAGS, LONG_NAMES[GAP_MASK])


def sensor_attrs() -> dict:
    return flag_attrs(SENSOR_FLAGS, LONG_NAMES[SENSOR])


def sensor_for_date(date) -> int:
    """The radiometer that observed a date in reality: AMSR-E, AMSR2 or none (the gap year)."""
    t = pd.Timestamp(date)
    if AMSRE_START <= t <= AMSRE_END:
        return SENSOR_AMSRE
    if t >= AMSR2_START:
        return SENSOR_AMSR2
    return SENSOR_NONE


# ---------------------------------------------------------------- stations
STATION_COLUMNS = ("id", "network", "name", "lat", "lon", "depth_from", "depth_to", "sensor")
STATION_TS_COLUMNS = ("sm", "flag")


def empty_station_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("lat", "lon", "depth_from",
                                                              "depth_to") else object)
                         for c in STATION_COLUMNS})


# ---------------------------------------------------------------- grids
def grid_centres(start: float, stop: float, step: float = 0.25) -> np.ndarray:
    """Cell centres of a regular grid from edge ``start`` to edge ``stop``."""
    n = int(round((stop - start) / step))
    return (start + step * (np.arange(n) + 0.5)).astype(np.float64)


def canonical_coords(ds: xr.Dataset) -> xr.Dataset:
    """Sort latitude ascending, wrap longitude into [-180, 180) and sort it."""
    if LON in ds.coords:
        lon = ((ds[LON] + 180.0) % 360.0) - 180.0
        ds = ds.assign_coords({LON: lon}).sortby(LON)
    if LAT in ds.coords and ds.sizes.get(LAT, 0) > 1 and ds[LAT][0] > ds[LAT][-1]:
        ds = ds.isel({LAT: slice(None, None, -1)})
    return ds


def check_canonical(ds: xr.Dataset) -> None:
    """Raise ``ValueError`` naming the first broken convention (used by tests and readers)."""
    for name, var in ds.data_vars.items():
        if TIME in var.dims or LAT in var.dims:
            dims = tuple(d for d in GRID_DIMS if d in var.dims)
            if var.dims != dims:
                raise ValueError(f"{name}: dims {var.dims}, expected order {dims}")
        if name in UNITS and var.attrs.get("units") != UNITS[name]:
            raise ValueError(f"{name}: units {var.attrs.get('units')!r}, expected {UNITS[name]!r}")
        if name in (AMSR_SM, AMSR_SM_ERROR, ASCAT_SM, TRUTH_SM, FILLED_SM) \
                and var.dtype != np.float32:
            raise ValueError(f"{name}: dtype {var.dtype}, expected float32")
    if LAT in ds.coords and ds.sizes[LAT] > 1 and not bool((ds[LAT].diff(LAT) > 0).all()):
        raise ValueError("latitude is not ascending")
    if LON in ds.coords and not bool(((ds[LON] >= -180) & (ds[LON] < 180)).all()):
        raise ValueError("longitude outside [-180, 180)")
    if TIME in ds.coords:
        t = pd.DatetimeIndex(ds[TIME].values)
        if t.tz is not None or not (t == t.normalize()).all():
            raise ValueError("time stamps are not daily at 00:00 (naive UTC)")


# ---------------------------------------------------------------- mock factories
def mock_grid_dataset(
    ntime: int = 20,
    nlat: int = 16,
    nlon: int = 16,
    start: str = "2015-06-01",
    lat0: float = 30.0,
    lon0: float = -100.0,
    seed: int = 0,
    gap_fraction: float = 0.3,
    with_truth: bool = True,
    with_error: bool = False,
) -> xr.Dataset:
    """A small canonical dataset with plausible structure, for tests.

    The truth is a smooth seasonal field plus noise; AMSR is the truth plus noise with
    block-shaped gaps of every category; ASCAT is a noisy % saturation version of it.
    ``with_error`` adds a known ``amsr_sm_error`` (0.01 + 0.03 x the latitude fraction + 0.01
    x the longitude fraction, m3 m-3, where AMSR observed), as a product that carries its
    own error would.
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=ntime, freq="D")
    lat = grid_centres(lat0, lat0 + 0.25 * nlat)
    lon = grid_centres(lon0, lon0 + 0.25 * nlon)
    yy, xx = np.meshgrid(np.linspace(0, 1, nlat), np.linspace(0, 1, nlon), indexing="ij")
    doy = time.day_of_year.values[:, None, None]
    truth = (0.22 + 0.08 * np.sin(2 * np.pi * doy / 365.25) * yy[None]
             + 0.05 * xx[None] + 0.01 * rng.standard_normal((ntime, nlat, nlon)))
    truth = np.clip(truth, 0.02, 0.5).astype(np.float32)
    land = np.ones((nlat, nlon), bool)
    land[: max(1, nlat // 8), : max(1, nlon // 4)] = False
    mask = np.zeros((ntime, nlat, nlon), np.int8)
    for t in range(ntime):
        for cat in (RFI, DENSE_VEGETATION, FROZEN, NO_OVERPASS, INVALID):
            if rng.random() < gap_fraction:
                h, w = rng.integers(1, max(2, nlat // 3)), rng.integers(1, max(2, nlon // 3))
                i, j = rng.integers(0, nlat - h + 1), rng.integers(0, nlon - w + 1)
                mask[t, i:i + h, j:j + w] = cat
    mask[:, ~land] = NOT_LAND
    amsr = (truth + 0.02 * rng.standard_normal(truth.shape)).astype(np.float32)
    amsr[mask != OBSERVED] = np.nan
    porosity = 0.45
    ascat = (100 * truth / porosity + 5 * rng.standard_normal(truth.shape)).astype(np.float32)
    ascat[:, ~land] = np.nan
    ascat[rng.random(truth.shape) < 0.4] = np.nan
    sensors = np.array([sensor_for_date(t) for t in time], np.int8)
    ds = xr.Dataset(
        {
            AMSR_SM: (GRID_DIMS, amsr, {"units": UNITS[AMSR_SM], "long_name": LONG_NAMES[AMSR_SM]}),
            GAP_MASK: (GRID_DIMS, mask, gap_mask_attrs()),
            ASCAT_SM: (GRID_DIMS, ascat, {"units": UNITS[ASCAT_SM],
                                           "long_name": LONG_NAMES[ASCAT_SM]}),
            LAND: ((LAT, LON), land, {"long_name": LONG_NAMES[LAND]}),
        },
        coords={TIME: time, LAT: lat, LON: lon, SENSOR: (TIME, sensors, sensor_attrs())},
    )
    if with_error:
        err = np.broadcast_to(0.01 + 0.03 * yy + 0.01 * xx, amsr.shape).astype(np.float32)
        ds[AMSR_SM_ERROR] = (GRID_DIMS, np.where(np.isfinite(amsr), err, np.float32(np.nan)),
                             amsr_error_attrs())
    if with_truth:
        ds[TRUTH_SM] = (GRID_DIMS, truth, {"units": UNITS[TRUTH_SM],
                                           "long_name": LONG_NAMES[TRUTH_SM]})
    return ds


def mock_stations(ds: xr.Dataset, n: int = 5, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Stations placed on land cells of ``ds`` with hourly series (UTC) and ISMN flags."""
    rng = np.random.default_rng(seed)
    land = np.argwhere(ds[LAND].values)
    pick = land[rng.choice(len(land), size=min(n, len(land)), replace=False)]
    rows, series = [], {}
    hours = pd.date_range(pd.Timestamp(ds[TIME].values[0]),
                          pd.Timestamp(ds[TIME].values[-1]) + pd.Timedelta("23h"), freq="h")
    src = ds[TRUTH_SM] if TRUTH_SM in ds else ds[AMSR_SM]
    for k, (i, j) in enumerate(pick):
        sid = f"MOCK{k:03d}"
        rows.append({"id": sid, "network": "MOCKNET", "name": f"Station {k}",
                     "lat": float(ds[LAT][i]) + rng.uniform(-0.1, 0.1),
                     "lon": float(ds[LON][j]) + rng.uniform(-0.1, 0.1),
                     "depth_from": 0.0, "depth_to": 0.05, "sensor": "mock-probe"})
        daily = src[:, i, j].to_series().reindex(hours, method="ffill").to_numpy()
        sm = (daily + 0.01 * rng.standard_normal(len(hours))).astype(np.float64)
        flag = np.where(rng.random(len(hours)) < 0.05, "D03", "G")
        series[sid] = pd.DataFrame({"sm": sm, "flag": flag},
                                   index=pd.DatetimeIndex(hours, tz="UTC", name="time"))
    return pd.DataFrame(rows, columns=list(STATION_COLUMNS)), series
