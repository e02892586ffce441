"""Training data: periods of the canonical world in memory and the patch sampler.

The sampler implements "train to fill, not to copy": on the scored days it hides observed
AMSR pixels from the input with real gap patterns of other days (and sometimes whole
days or whole sequences, as in the 2011/2012 gap year), and drops ASCAT from some
sequences (as before 2007).  Targets are valid observations only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from data_catalog import grid, locations, schema
from data_catalog.errors import EmptySelectionError
from data_catalog.worlds import open_world as open_world_store
from model.config import TrainConfig, period_days, period_label
from model.tensors import NormStats, amsr_valid_mask, channels_from_arrays, doy_of

log = logging.getLogger(__name__)

NATURAL_GAPS = (schema.RFI, schema.DENSE_VEGETATION, schema.FROZEN, schema.NO_OVERPASS,
                schema.INVALID)


def open_world(world: str | Path | xr.Dataset | None = None) -> xr.Dataset:
    """The canonical world: a Dataset as is, else the store at ``world``
    (:func:`data_catalog.worlds.open_world`; default the demo world,
    :func:`data_catalog.locations.demo_world`)."""
    if isinstance(world, xr.Dataset):
        return world
    return open_world_store(world if world is not None else locations.demo_world())


def subset_region(ds: xr.Dataset, region: list[float] | tuple | None) -> xr.Dataset:
    """Cells whose centres lie in ``(W, S, E, N)`` (:func:`data_catalog.grid.index_slices`,
    never widened to the nearest cell); None keeps everything."""
    if region is None:
        return ds
    la, lo = grid.index_slices(ds[schema.LAT].values, ds[schema.LON].values, region,
                               snap=False)
    return ds.isel({schema.LAT: la, schema.LON: lo})


@dataclass
class PeriodData:
    """Arrays of one time period in memory (physical units).

    ``amsr`` may already be matched to a reference climatology (transfer learning).
    """

    time: pd.DatetimeIndex
    lat: np.ndarray
    lon: np.ndarray
    amsr: np.ndarray        # (T, H, W) float32, NaN where not observed
    valid: np.ndarray       # (T, H, W) bool
    ascat: np.ndarray       # (T, H, W) float32, NaN where missing
    natural_gap: np.ndarray  # (T, H, W) bool, gap categories 1..5
    land: np.ndarray        # (H, W) bool
    truth: np.ndarray | None = None
    sensor: np.ndarray | None = None  # (T,) int8 radiometer code of each day

    @property
    def doy(self) -> np.ndarray:
        return doy_of(self.time)

    def fingerprint(self) -> str:
        """sha256 of the period's grid, times and AMSR/ASCAT/gap values."""
        h = hashlib.sha256()
        days = self.time.values.astype("datetime64[s]").astype(np.int64)
        for a in (days, self.lat, self.lon, np.nan_to_num(self.amsr, nan=-1), self.valid,
                  np.nan_to_num(self.ascat, nan=-1), self.natural_gap):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def load_period(ds: xr.Dataset, years: list | tuple, *,
                region=None, sensor: int | None = None,
                exclude: list[int] | tuple[int, ...] = ()) -> PeriodData:
    """Load the period ``[first, last]`` (inclusive; years or days,
    :func:`model.config.period_days`) of ``ds`` into memory, without the years in
    ``exclude`` (the period then has a hole in time: see :meth:`Sampler`).

    Days of another radiometer than ``sensor`` (when given) count as unobserved.
    """
    first, last = period_days(years)
    sub = subset_region(ds, region)
    sub = sub.sel({schema.TIME: slice(first, last)})
    if exclude:
        keep = ~np.isin(pd.DatetimeIndex(sub[schema.TIME].values).year, list(exclude))
        sub = sub.isel({schema.TIME: np.flatnonzero(keep)})
    if sub.sizes[schema.TIME] == 0:
        t = ds.indexes[schema.TIME]
        raise EmptySelectionError(f"no days in the period {period_label(years)} (the world "
                                  f"holds {t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d})",
                                  variable=schema.TIME)
    names = [v for v in (schema.AMSR_SM, schema.GAP_MASK, schema.ASCAT_SM, schema.TRUTH_SM,
                         schema.LAND) if v in sub]
    sub = sub[names].load()
    amsr = np.asarray(sub[schema.AMSR_SM].values, np.float32)
    gm = sub[schema.GAP_MASK].values if schema.GAP_MASK in sub else None
    valid = amsr_valid_mask(amsr, gm)
    if sensor is not None and schema.SENSOR in sub.coords:
        valid &= (sub[schema.SENSOR].values == sensor)[:, None, None]
    natural = (np.isin(gm, NATURAL_GAPS) if gm is not None
               else ~np.isfinite(amsr))
    ascat = (np.asarray(sub[schema.ASCAT_SM].values, np.float32) if schema.ASCAT_SM in sub
             else np.full(amsr.shape, np.nan, np.float32))
    land = (np.asarray(sub[schema.LAND].values, bool) if schema.LAND in sub
            else np.ones(amsr.shape[1:], bool))
    truth = (np.asarray(sub[schema.TRUTH_SM].values, np.float32) if schema.TRUTH_SM in sub
             else None)
    sensors = (np.asarray(sub[schema.SENSOR].values, np.int8) if schema.SENSOR in sub.coords
               else np.array([schema.sensor_for_date(t) for t in sub[schema.TIME].values],
                             np.int8))
    return PeriodData(pd.DatetimeIndex(sub[schema.TIME].values), sub[schema.LAT].values,
                      sub[schema.LON].values, amsr, valid, ascat, natural, land, truth, sensors)


class Sampler:
    """Random training sequences with hidden pixels.

    Parameters
    ----------
    data : PeriodData
    stats : NormStats
    cfg : TrainConfig
        ``seq_len``, ``burn_in_max``, ``patch``, ``batch_size`` and the hiding probabilities.
    lead : int
        The model's look-ahead days: each sequence is read ``lead`` days further (hidden
        pixels stay hidden there too, as in the evaluation, and those days are not scored);
        with ``cfg.drop_lead_prob`` the look-ahead is dropped, as at the end of a record.

    A period with a hole in time (``exclude_years``) is cut into runs of consecutive
    days; a sequence (burn-in, scored and look-ahead days) never straddles a hole.
    """

    def __init__(self, data: PeriodData, stats: NormStats, cfg: TrainConfig, lead: int = 0):
        self.d = data
        self.stats = stats
        self.cfg = cfg
        self.lead = int(lead)
        t, h, w = data.amsr.shape
        self.p = min(cfg.patch, h, w)
        if t < cfg.seq_len:
            raise EmptySelectionError(f"period of {t} days is shorter than seq_len "
                                      f"{cfg.seq_len}")
        self.doy = data.doy
        days = data.time.values.astype("datetime64[D]").astype(np.int64)
        # index of the run of consecutive days each day belongs to
        self.run = np.concatenate([[0], np.cumsum(np.diff(days) != 1)]).astype(np.int64)

    def _start(self, rng: np.random.Generator, k: int, s: int, t_all: int) -> int:
        """A first scored day whose burn-in and scored days lie in one run of days."""
        for _ in range(1000):
            t0 = int(rng.integers(k, t_all - s + 1))
            if self.run[t0 - k] == self.run[t0 + s - 1]:
                return t0
        raise EmptySelectionError(f"no run of {k + s} consecutive days in the period")

    def sample(self, rng: np.random.Generator, burn_in: int | None = None
               ) -> dict[str, torch.Tensor]:
        """One batch: ``x`` (B, K+S, C, P, P), ``target`` and ``weight`` (B, S, P, P).

        The first ``K = burn_in`` days are warm-up (not scored; hidden only by a multi-week
        gap or a pixel block, which start before the scored days).
        """
        cfg, d, p = self.cfg, self.d, self.p
        t_all, h, w = d.amsr.shape
        s = cfg.seq_len
        k = int(rng.integers(0, cfg.burn_in_max + 1)) if burn_in is None else burn_in
        k = max(0, min(k, t_all - s))
        xs, ts, ws = [], [], []
        for _ in range(cfg.batch_size):
            t0 = self._start(rng, k, s, t_all)
            i0 = int(rng.integers(0, h - p + 1))
            j0 = int(rng.integers(0, w - p + 1))
            te = min(t0 + s + self.lead, t_all)  # look-ahead days (not scored)
            while self.run[te - 1] != self.run[t0]:  # look-ahead stops at a hole
                te -= 1
            sl = (slice(t0 - k, te), slice(i0, i0 + p), slice(j0, j0 + p))
            a, v, asc = d.amsr[sl], d.valid[sl], d.ascat[sl].copy()
            vin = v.copy()
            hidden = np.zeros_like(v)
            for day in range(k, te - t0 + k):
                r = rng.random()
                if r < cfg.hide_day_prob:
                    hid = v[day]
                elif r < cfg.hide_day_prob + cfg.hide_prob:
                    od = int(rng.integers(0, t_all))
                    oi = int(rng.integers(0, h - p + 1))
                    oj = int(rng.integers(0, w - p + 1))
                    hid = v[day] & d.natural_gap[od, oi:oi + p, oj:oj + p]
                else:
                    continue
                vin[day] &= ~hid
                hidden[day] |= hid
            if rng.random() < cfg.hide_window_prob:  # no AMSR at all (the gap year)
                hidden[k:] |= vin[k:]
                vin[:] = False
            # a gap of one to three weeks over the patch, ending on a scored day
            if cfg.hide_weeks_prob and rng.random() < cfg.hide_weeks_prob:
                end = k + int(rng.integers(0, s))
                first = max(0, end + 1 - int(rng.integers(7, 22)))
                hidden[max(first, k):end + 1] |= vin[max(first, k):end + 1]
                vin[first:end + 1] = False
            # a block of pixels without their own AMSR on any day of the sequence
            if cfg.hide_block_prob and rng.random() < cfg.hide_block_prob:
                lo, hi = cfg.hide_block_size
                b = min(int(rng.integers(lo, hi + 1)), p)
                bi, bj = (int(rng.integers(0, p - b + 1)) for _ in range(2))
                blk = (slice(None), slice(bi, bi + b), slice(bj, bj + b))
                hidden[k:][blk] |= vin[k:][blk]
                vin[blk] = False
            if rng.random() < cfg.drop_ascat_prob:  # no ASCAT (AMSR-E before 2007)
                asc[:] = np.nan
            n_in = k + s
            if self.lead and rng.random() < cfg.drop_lead_prob:  # the end of the record
                cut = n_in + int(rng.integers(0, self.lead))
                vin[cut:] = False
                asc[cut:] = np.nan
            x = channels_from_arrays(a, vin, asc, self.doy[t0 - k:te], self.stats,
                                     lead=self.lead, n_days=n_in)
            tgt = np.where(v, (a - self.stats.amsr_mean) / self.stats.amsr_std, 0.0)
            wgt = hidden * cfg.hidden_weight + (vin & v) * cfg.observed_weight
            xs.append(x)
            ts.append(tgt[k:n_in])
            ws.append(wgt[k:n_in])
        return {"x": torch.from_numpy(np.stack(xs)),
                "target": torch.from_numpy(np.stack(ts).astype(np.float32)),
                "weight": torch.from_numpy(np.stack(ws).astype(np.float32)),
                "burn_in": torch.tensor(k)}


def norm_stats_of(data: PeriodData) -> NormStats:
    from model.tensors import compute_norm_stats

    return compute_norm_stats(data.amsr, data.valid, data.ascat)


def period_bounds(data: PeriodData) -> list[str]:
    return [str(data.time[0].date()), str(data.time[-1].date())]


def region_of(data: PeriodData) -> list[float]:
    """``[W, S, E, N]`` cell-edge bounds of the period's grid."""
    return list(grid.bounds(data.lat, data.lon))
