"""How hard a world is: each sensor's skill against the truth, as a validation study
would report it.

The demo world imitates published error figures (:mod:`.sensors`); these are the numbers
that say whether it does.  For each sensor (AMSR-E, AMSR2, ASCAT) over land, on the days
it observed:

* ``r``: the median over pixels of the temporal Pearson R between the raw daily values
  and the truth (``r = sum(dx dy) / sqrt(sum(dx^2) sum(dy^2))``, ``d`` the deviation from
  the pixel's mean over its observed days);
* ``r_anomaly``: the same R between anomalies, each series minus its own climatology
  (the mean by day of year over the sensor's observed days, smoothed with a
  :data:`CLIM_WINDOW`-day circular window), as triple-collocation studies report them;
* ``r_sparse``, ``r_mid``, ``r_dense``: ``r`` in the sparsest, middle and densest third
  of the land cells by the world's ``vegetation`` index (terciles over all land cells);
* ``error_sd``: the median per-pixel error standard deviation in truth units
  (m3 m-3) after the sensor is scaled to the truth by regression,
  ``sd(truth) * sqrt(1 / r^2 - 1)``: what triple collocation estimates when the truth is
  the reference;
* ``pixels``: how many pixels have at least ``min_days`` observed days.

:func:`station_skill` gives the same R for the world's in situ stations: the daily mean
of the good (``G``) hourly values against the raw AMSR (both sensors) and ASCAT of the
station's cell, and the median unbiased RMS difference ``sd(x - in situ)`` (m3 m-3;
ASCAT converted with the cell's porosity and residual water content), as in situ
validations report them.

Everything is computed in passes over blocks of days, so a 21-year world needs a few
hundred MB.  ``python -m data_catalog.demo.stats [STORE] [--json]`` prints the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import xarray as xr

from data_catalog import grid, schema

CLIM_WINDOW = 31      # days of the circular smoothing window of the climatologies
MIN_DAYS = 60         # observed days a pixel needs for its R to count
BLOCK_DAYS = 730      # days loaded at a time
#: the sensors scored, with the schema sensor code whose days they cover (None: all days)
SENSORS = (("amsre", schema.AMSR_SM, schema.SENSOR_AMSRE),
           ("amsr2", schema.AMSR_SM, schema.SENSOR_AMSR2),
           ("ascat", schema.ASCAT_SM, None))


def _blocks(n: int, size: int = BLOCK_DAYS) -> Iterator[slice]:
    for a in range(0, n, size):
        yield slice(a, min(a + size, n))


class _Moments:
    """Per-pixel running sums of paired values (``n``, sums, squares, cross products)."""

    def __init__(self, shape: tuple[int, int]):
        self.s = {k: np.zeros(shape) for k in ("n", "x", "y", "xx", "yy", "xy")}

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        ok = np.isfinite(x) & np.isfinite(y)
        x = np.where(ok, x, 0.0)
        y = np.where(ok, y, 0.0)
        s = self.s
        s["n"] += ok.sum(0)
        s["x"] += x.sum(0)
        s["y"] += y.sum(0)
        s["xx"] += (x * x).sum(0)
        s["yy"] += (y * y).sum(0)
        s["xy"] += (x * y).sum(0)

    def r(self, min_days: int) -> np.ndarray:
        """Per-pixel R (NaN with fewer than ``min_days`` pairs or a constant series)."""
        s = self.s
        n = s["n"]
        with np.errstate(invalid="ignore", divide="ignore"):
            sxx = s["xx"] - s["x"] ** 2 / n
            syy = s["yy"] - s["y"] ** 2 / n
            sxy = s["xy"] - s["x"] * s["y"] / n
            r = sxy / np.sqrt(sxx * syy)
        ok = (n >= min_days) & (sxx > 1e-12 * n) & (syy > 1e-12 * n)
        return np.where(ok, r, np.nan)

    def sd_y(self) -> np.ndarray:
        s = self.s
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.clip(s["yy"] / s["n"] - (s["y"] / s["n"]) ** 2, 0, None))


def climatology(sums: np.ndarray, counts: np.ndarray, window: int = CLIM_WINDOW
                ) -> np.ndarray:
    """Mean by day of year (``sums`` and ``counts`` of shape ``(366, ...)``), smoothed with
    a circular moving window of ``window`` days (NaN where the window holds no value)."""
    half = window // 2
    s = sum(np.roll(sums, k, axis=0) for k in range(-half, half + 1))
    c = sum(np.roll(counts, k, axis=0) for k in range(-half, half + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / c, np.nan)


def _day_index(time: pd.DatetimeIndex) -> np.ndarray:
    return time.day_of_year.to_numpy() - 1  # 0..365


def pixel_skill(ds: xr.Dataset, var: str, days: np.ndarray, *, min_days: int = MIN_DAYS
                ) -> dict[str, np.ndarray]:
    """Per-pixel R (raw and anomalies) and scaled error SD of ``ds[var]`` against the
    truth on ``days`` (a boolean mask over time) over land.

    Returns arrays ``(lat, lon)``: ``r``, ``r_anomaly``, ``error_sd``, ``n``.
    """
    land = np.asarray(ds[schema.LAND].values, bool)
    idx = np.flatnonzero(days)
    shape = land.shape
    doy_all = _day_index(pd.DatetimeIndex(ds[schema.TIME].values))
    raw = _Moments(shape)
    sums = {k: np.zeros((366, *shape)) for k in ("x", "y")}
    counts = np.zeros((366, *shape))

    def load(sl: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = idx[sl]
        x = np.asarray(ds[var].isel(time=t).values, np.float64)
        y = np.asarray(ds[schema.TRUTH_SM].isel(time=t).values, np.float64)
        ok = np.isfinite(x) & np.isfinite(y) & land[None]
        return np.where(ok, x, np.nan), np.where(ok, y, np.nan), doy_all[t]

    for sl in _blocks(idx.size):  # pass 1: raw moments and day-of-year sums
        x, y, doy = load(sl)
        raw.add(x, y)
        ok = np.isfinite(x)
        np.add.at(counts, doy, ok)
        np.add.at(sums["x"], doy, np.where(ok, x, 0.0))
        np.add.at(sums["y"], doy, np.where(ok, y, 0.0))
    clim = {k: climatology(sums[k], counts) for k in sums}
    anom = _Moments(shape)
    for sl in _blocks(idx.size):  # pass 2: anomaly moments
        x, y, doy = load(sl)
        anom.add(x - clim["x"][doy], y - clim["y"][doy])
    r = raw.r(min_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        # |r| can exceed 1 by rounding for a sensor that is exactly linear in the truth
        err = raw.sd_y() * np.sqrt(np.clip(1.0 / r**2 - 1.0, 0.0, None))
    return {"r": r, "r_anomaly": anom.r(min_days), "error_sd": err, "n": raw.s["n"]}


def _median(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def vegetation_terciles(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Masks of the sparsest, middle and densest third of the land cells by the world's
    ``vegetation`` index."""
    land = np.asarray(ds[schema.LAND].values, bool)
    veg = np.asarray(ds["vegetation"].values, np.float64)
    lo, hi = np.quantile(veg[land], [1 / 3, 2 / 3])
    return {"sparse": land & (veg <= lo), "mid": land & (veg > lo) & (veg <= hi),
            "dense": land & (veg > hi)}


def world_skill(ds: xr.Dataset, *, min_days: int = MIN_DAYS) -> dict[str, dict]:
    """Each sensor's skill against the truth (module docstring), keyed ``amsre``,
    ``amsr2``, ``ascat``; a sensor without a day in the world is left out."""
    sensor = np.asarray(ds[schema.SENSOR].values)
    time = pd.DatetimeIndex(ds[schema.TIME].values)
    thirds = vegetation_terciles(ds)
    out = {}
    for name, var, code in SENSORS:
        days = (sensor == code) if code is not None else np.asarray(time >= schema.ASCAT_START)
        if not days.any():
            continue
        px = pixel_skill(ds, var, days, min_days=min_days)
        ok = np.isfinite(px["r"])
        out[name] = {"r": _median(px["r"]), "r_anomaly": _median(px["r_anomaly"]),
                     **{f"r_{k}": _median(px["r"][m]) for k, m in thirds.items()},
                     "error_sd": _median(px["error_sd"]), "pixels": int(ok.sum()),
                     **{f"pixels_{k}": int((ok & m).sum()) for k, m in thirds.items()}}
    return out


def station_skill(ds: xr.Dataset, table: pd.DataFrame, series: dict[str, pd.DataFrame],
                  *, min_days: int = 30) -> dict[str, dict]:
    """Median over stations of the R and the unbiased RMS difference (``ubrmsd``, m3 m-3)
    between the daily mean of good (``G``) in situ values and the raw ``amsr`` (both
    sensors), ``ascat`` and ``truth`` of the station's cell, with the number of stations
    that have ``min_days`` common days."""
    time = pd.DatetimeIndex(ds[schema.TIME].values)
    lat = np.asarray(ds[schema.LAT].values)
    lon = np.asarray(ds[schema.LON].values)
    rs: dict[str, list[float]] = {"amsr": [], "ascat": [], "truth": []}
    ub: dict[str, list[float]] = {k: [] for k in rs}
    for row in table.itertuples():
        i = int(grid.nearest_index(lat, row.cell_lat)[0])
        j = int(grid.nearest_index(lon, row.cell_lon)[0])
        s = series[row.id]
        good = s["sm"][s["flag"] == "G"]
        daily = good.groupby(good.index.tz_convert(None).normalize()).mean()
        insitu = daily.reindex(time).to_numpy()
        for key, var in (("amsr", schema.AMSR_SM), ("ascat", schema.ASCAT_SM),
                         ("truth", schema.TRUTH_SM)):
            x = np.asarray(ds[var].isel(lat=i, lon=j).values, np.float64)
            if var == schema.ASCAT_SM:  # percent of saturation -> m3 m-3
                por, res = (float(ds[v].values[i, j]) for v in ("porosity", "residual"))
                x = res + x / 100.0 * (por - res)
            ok = np.isfinite(x) & np.isfinite(insitu)
            if ok.sum() >= min_days and x[ok].std() > 0 and insitu[ok].std() > 0:
                rs[key].append(float(np.corrcoef(x[ok], insitu[ok])[0, 1]))
                ub[key].append(float(np.std(x[ok] - insitu[ok])))
    return {k: {"r": float(np.median(v)) if v else math.nan,
                "ubrmsd": float(np.median(ub[k])) if v else math.nan, "stations": len(v)}
            for k, v in rs.items()}


def main(argv: list[str] | None = None) -> int:
    from data_catalog import locations
    from data_catalog.demo.store import open_demo_stations
    from data_catalog.worlds import open_world

    ap = argparse.ArgumentParser(prog="python -m data_catalog.demo.stats",
                                 description="each sensor's skill against the truth")
    ap.add_argument("store", nargs="?", default=str(locations.demo_world()))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    ds = open_world(args.store)
    out = {"version": ds.attrs.get("version"), "sensors": world_skill(ds),
           "stations": station_skill(ds, *open_demo_stations(args.store))}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for name, s in out["sensors"].items():
            print(f"{name:6s} " + " ".join(f"{k}={v:.3f}" if isinstance(v, float)
                                           else f"{k}={v}" for k, v in s.items()))
        for name, s in out["stations"].items():
            print(f"stations {name:6s} r={s['r']:.3f} ubrmsd={s['ubrmsd']:.4f} "
                  f"n={s['stations']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
