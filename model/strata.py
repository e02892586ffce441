"""Stratified accuracy: scores by gap length, gap category, ASCAT and hold-out scheme.

A single score over hidden pixels mostly measures one-to-two-day interpolation: real gaps
are longer (in the demo world, AMSR2 2022, the median natural gap pixel-day is six days
from the nearest observation of its pixel, and 35 % are more than 30 days from one or
never observed).  This module cuts the scored pixel-days into strata and scores every
method in each:

``gap_days``      days from the scored pixel-day to the nearest day on which the same
                  pixel was in the input (observed and not hidden), looking backward and
                  forward within the evaluated period: :data:`GAP_DAY_BINS`
``gap_category``  the gap's category (:data:`CATEGORIES`; for hidden pixels the
                  category of the other day's gap pattern laid over them)
``ascat``         whether ASCAT is present at the pixel on that day

The scored pixel-days come from hold-out schemes (:mod:`model.evaluate` runs them):

``natural_gaps``     the real gaps (no observation to score against: only the truth)
``hidden_days``      observed pixels hidden under another day's gap pattern (short gaps)
``spatial_blocks``   blocks of :data:`SPATIAL_BLOCK` x :data:`SPATIAL_BLOCK` observed land
                     cells hidden for the whole test year (:func:`spatial_blocks`)
``temporal_blocks``  :data:`N_TEMPORAL_BLOCKS` windows of :data:`TEMPORAL_BLOCK_DAYS` days
                     with no AMSR at all (:func:`temporal_blocks`)
``all_hidden``       the three hidden schemes pooled

Each stratum is scored against references (``calibrated_truth``: the truth through the
pixel's AMSR calibration, see :func:`fit_calibration`; ``observation``: the hidden
observation) with, per method, RMSE, bias, the median per-pixel temporal correlation
``r`` (:func:`pixel_r`), ``n``, ``coverage`` and the ConvLSTM / method RMSE ratio on the
samples both fill; the best baseline and that ratio (:func:`score`).  Everything here is
plain numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from data_catalog import schema

NEVER = np.iinfo(np.int32).max
""":func:`days_to_nearest` of a pixel never in the input during the period."""
GAP_DAY_BINS: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1), ("2-3", 2, 3), ("4-10", 4, 10), ("11-30", 11, 30),
    (">30 or never", 31, NEVER))
"""``(label, first, last)`` days to the nearest observation, inclusive."""
CATEGORIES: dict[int, str] = {schema.RFI: "rfi", schema.DENSE_VEGETATION: "dense_vegetation",
                              schema.FROZEN: "frozen_ground", schema.NO_OVERPASS: "swath",
                              schema.INVALID: "invalid"}
ASCAT_STRATA = ("with_ascat", "without_ascat")
REFERENCES = ("calibrated_truth", "observation")
SPATIAL_BLOCK = 6          # cells a side (the issue asks for at least 5)
N_SPATIAL_BLOCKS = 8       # ~290 of the demo world's ~4000 land cells
MIN_BLOCK_OBS_FRACTION = 0.25  # a block cell is observed on at least this share of days
TEMPORAL_BLOCK_DAYS = 20   # days (the issue asks for at least 15)
N_TEMPORAL_BLOCKS = 4      # one in each quarter of the test year
MIN_PIXEL_DAYS = 10        # pairs a pixel needs for its temporal R
MIN_STRATUM_N = 100        # paired samples a ConvLSTM / baseline ratio needs
MIN_COVERAGE = 0.25        # share of a stratum a baseline must fill to be named best
MIN_CALIBRATION_DAYS = 30  # observed days a pixel needs for its own calibration fit


def days_to_nearest(obs: np.ndarray) -> np.ndarray:
    """Days from each ``(t, ...)`` to the nearest ``t'`` with ``obs[t', ...]`` True.

    0 on observed days; :data:`NEVER` where the pixel is never observed.  ``obs`` is
    ``(T, ...)`` bool; the result is int32 of the same shape.
    """
    obs = np.asarray(obs, bool)
    t = obs.shape[0]
    big = 1 << 24  # more days than any record; (t - -big) fits int32
    idx = np.arange(t, dtype=np.int32).reshape((t,) + (1,) * (obs.ndim - 1))
    prev = np.maximum.accumulate(np.where(obs, idx, -big), axis=0)
    nxt = np.minimum.accumulate(np.where(obs, idx, big)[::-1], axis=0)[::-1]
    d = np.minimum(idx - prev, nxt - idx)
    return np.where(d >= big // 2, NEVER, d).astype(np.int32)


def gap_day_label(days: int) -> str:
    """The :data:`GAP_DAY_BINS` label of a number of days (>= 1)."""
    for label, lo, hi in GAP_DAY_BINS:
        if lo <= days <= hi:
            return label
    raise ValueError(f"{days} days: gap strata start at one day")


def spatial_blocks(valid: np.ndarray, land: np.ndarray, rng: np.random.Generator, *,
                   size: int = SPATIAL_BLOCK, n: int = N_SPATIAL_BLOCKS,
                   min_obs_fraction: float = MIN_BLOCK_OBS_FRACTION) -> np.ndarray:
    """Up to ``n`` non-touching ``size x size`` blocks of observed land cells, ``(H, W)`` bool.

    ``valid`` (T, H, W): the observations of the test year.  A block's cells are all land
    and each observed on at least ``min_obs_fraction`` of the days (so a block is not an
    RFI hot spot or the dense forest).  Blocks are placed at random, one cell apart.
    """
    good = np.asarray(land, bool) & (np.asarray(valid, bool).mean(0) >= min_obs_fraction)
    h, w = good.shape
    out = np.zeros((h, w), bool)
    if h < size or w < size:
        return out
    # cells of a block all good: a window sum over the integral image
    c = np.zeros((h + 1, w + 1), np.int64)
    c[1:, 1:] = good.cumsum(0).cumsum(1)
    full = (c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]
            ) == size * size
    taken = np.zeros((h, w), bool)
    placed = 0
    for k in rng.permutation(np.flatnonzero(full)):
        if placed == n:
            break
        i, j = divmod(int(k), full.shape[1])
        if taken[i:i + size, j:j + size].any():
            continue
        out[i:i + size, j:j + size] = True
        taken[max(0, i - 1):i + size + 1, max(0, j - 1):j + size + 1] = True
        placed += 1
    return out


def temporal_blocks(test_days: np.ndarray, rng: np.random.Generator, *,
                    length: int = TEMPORAL_BLOCK_DAYS, n: int = N_TEMPORAL_BLOCKS
                    ) -> np.ndarray:
    """``(T,)`` bool: ``n`` windows of ``length`` consecutive test days, one in each of
    ``n`` equal parts of the test days, at a random place inside its part."""
    days = np.flatnonzero(test_days)
    out = np.zeros(len(test_days), bool)
    for part in np.array_split(days, n):
        if part.size == 0:
            continue
        start = int(rng.integers(0, max(part.size - length, 0) + 1))
        out[part[start:start + length]] = True
    return out


def fit_calibration(truth: np.ndarray, obs: np.ndarray, land: np.ndarray,
                    min_days: int = MIN_CALIBRATION_DAYS) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per-pixel ``obs = offset + gain * truth`` by least squares on the observed days.

    Land pixels with fewer than ``min_days`` observed days (permanent RFI, the densest
    forest) borrow the gain and offset of the nearest fitted pixel (the demo world's
    calibration differences are smooth over degrees).  Returns ``(gain, offset, info)``,
    maps ``(H, W)`` (NaN off land) and ``{"fitted_pixels", "borrowed_pixels",
    "median_gain", "median_offset"}``.
    """
    from scipy.ndimage import distance_transform_edt

    ok = np.isfinite(obs) & np.isfinite(truth)
    n = ok.sum(0)
    x = np.where(ok, truth, 0.0).astype(np.float64)
    y = np.where(ok, obs, 0.0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = x.sum(0) / n, y.sum(0) / n
        cov = np.where(ok, (x - mx) * (y - my), 0.0).sum(0) / n
        var = np.where(ok, (x - mx) ** 2, 0.0).sum(0) / n
        gain = cov / var
    offset = my - gain * mx
    fitted = np.asarray(land, bool) & (n >= min_days) & np.isfinite(gain)
    info = {"fitted_pixels": int(fitted.sum()),
            "borrowed_pixels": int((np.asarray(land, bool) & ~fitted).sum())}
    if not fitted.any():
        nan = np.full(gain.shape, np.nan)
        return nan, nan, info | {"median_gain": math.nan, "median_offset": math.nan}
    _, (ii, jj) = distance_transform_edt(~fitted, return_indices=True)
    gain, offset = gain[ii, jj], offset[ii, jj]
    gain[~np.asarray(land, bool)] = np.nan
    offset[~np.asarray(land, bool)] = np.nan
    info |= {"median_gain": float(np.median(gain[fitted])),
             "median_offset": float(np.median(offset[fitted]))}
    return gain, offset, info


def pixel_r(pred: np.ndarray, ref: np.ndarray, pixel: np.ndarray,
            min_days: int = MIN_PIXEL_DAYS) -> tuple[float, int]:
    """Median over pixels of the temporal Pearson R of paired values, and how many pixels.

    Values are 1-D with ``pixel`` the pixel each belongs to; all must be finite.  A pixel
    counts when it has at least ``min_days`` pairs and both series vary (standard
    deviation above 1e-6):
    ``r = sum(dp dy) / sqrt(sum(dp^2) sum(dy^2))`` with ``d`` the deviation from the
    pixel's mean.
    """
    if pred.size == 0:
        return math.nan, 0
    inv = np.asarray(pixel, np.int64)  # pixel indices are small: bincount needs no np.unique
    n = np.bincount(inv).astype(np.float64)
    p = np.asarray(pred, np.float64)
    y = np.asarray(ref, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # pixels without samples: 0 / 0
        dp = p - (np.bincount(inv, p) / n)[inv]
        dy = y - (np.bincount(inv, y) / n)[inv]
    sxy, sxx, syy = (np.bincount(inv, a) for a in (dp * dy, dp * dp, dy * dy))
    # "varies": a standard deviation above 1e-6 (a constant series gives rounding noise)
    ok = (n >= min_days) & (sxx > 1e-12 * n) & (syy > 1e-12 * n)
    if not ok.any():
        return math.nan, 0
    return float(np.median(sxy[ok] / np.sqrt(sxx[ok] * syy[ok]))), int(ok.sum())


def method_scores(pred: np.ndarray, ref: np.ndarray, pixel: np.ndarray) -> dict:
    """``rmse``, ``bias`` (mean pred - ref), ``r`` (median per-pixel temporal R),
    ``r_pixels``, ``n`` and ``coverage`` (share of the finite references the method
    fills) of one method in one stratum."""
    has_ref = np.isfinite(ref)
    ok = has_ref & np.isfinite(pred)
    n = int(ok.sum())
    d = pred[ok].astype(np.float64) - ref[ok]
    r, rp = pixel_r(pred[ok], ref[ok], pixel[ok])
    return {"rmse": float(np.sqrt(np.mean(d * d))) if n else math.nan,
            "bias": float(d.mean()) if n else math.nan, "r": r, "r_pixels": rp, "n": n,
            "coverage": n / max(int(has_ref.sum()), 1)}


def score(preds: dict[str, np.ndarray], ref: np.ndarray, pixel: np.ndarray) -> dict:
    """Every method's :func:`method_scores`, its ``convlstm_ratio`` and the best baseline.

    ``convlstm_ratio`` of a baseline: the ConvLSTM's RMSE over the baseline's, both on the
    samples both fill (at least :data:`MIN_STRATUM_N` of them, else NaN); above 1 the
    baseline is better there.  Baselines fill different parts of a stratum (climatology
    nothing in pixels never observed, ASCAT matching nothing on days without ASCAT), so
    RMSEs over their own samples cannot be ranked; the best baseline is the one with the
    highest ratio among those filling at least :data:`MIN_COVERAGE` of the stratum, and
    ``convlstm_over_best`` its ratio.
    """
    ref = np.asarray(ref, np.float64)
    methods = {m: method_scores(p, ref, pixel) for m, p in preds.items()}
    out = {"n": int(np.isfinite(ref).sum()), "methods": methods, "best_baseline": None,
           "convlstm_over_best": math.nan}
    if "convlstm" not in preds:
        return out
    conv = preds["convlstm"]
    for m, p in preds.items():
        if m == "convlstm":
            continue
        both = np.isfinite(ref) & np.isfinite(p) & np.isfinite(conv)
        ratio = math.nan
        if both.sum() >= MIN_STRATUM_N:
            rb = np.sqrt(np.mean((p[both] - ref[both]) ** 2))
            rc = np.sqrt(np.mean((conv[both] - ref[both]) ** 2))
            ratio = float(rc / rb) if rb > 0 else math.nan
        methods[m]["convlstm_ratio"] = ratio
    cands = [m for m, s in methods.items() if m != "convlstm"
             and s["coverage"] >= MIN_COVERAGE and math.isfinite(s["convlstm_ratio"])]
    if cands:
        best = max(cands, key=lambda m: methods[m]["convlstm_ratio"])
        out["best_baseline"] = best
        out["convlstm_over_best"] = methods[best]["convlstm_ratio"]
    return out


@dataclass
class Samples:
    """Scored pixel-days of one scheme, as 1-D arrays of equal length.

    ``pixel``: flat pixel index ``i * W + j``; ``gap_days``: :func:`days_to_nearest` of the
    run's input; ``category``: gap code (0 where not a gap category); ``ascat``: ASCAT
    present; ``preds`` method -> values; ``refs`` reference -> values (NaN: none).
    """

    pixel: np.ndarray
    gap_days: np.ndarray
    category: np.ndarray
    ascat: np.ndarray
    preds: dict[str, np.ndarray] = field(default_factory=dict)
    refs: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def take(cls, mask: np.ndarray, *, gap_days: np.ndarray, ascat: np.ndarray,
             preds: dict[str, np.ndarray], refs: dict[str, np.ndarray],
             category: np.ndarray | None = None) -> Samples:
        """The pixel-days where ``mask`` (T, H, W) is True of full ``(T, H, W)`` arrays."""
        _, h, w = mask.shape
        _, ii, jj = np.nonzero(mask)
        cat = (category[mask].astype(np.int8) if category is not None
               else np.zeros(ii.size, np.int8))
        return cls((ii * w + jj).astype(np.int32), gap_days[mask], cat,
                   np.isfinite(ascat[mask]),
                   {m: p[mask] for m, p in preds.items()},
                   {r: v[mask] for r, v in refs.items()})

    def __len__(self) -> int:
        return int(self.pixel.size)

    def subset(self, keep: np.ndarray) -> Samples:
        return Samples(self.pixel[keep], self.gap_days[keep], self.category[keep],
                       self.ascat[keep], {m: p[keep] for m, p in self.preds.items()},
                       {r: v[keep] for r, v in self.refs.items()})

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        """Pooled samples (methods and references common to all parts)."""
        methods = [m for m in parts[0].preds if all(m in p.preds for p in parts)]
        refs = [r for r in parts[0].refs if all(r in p.refs for p in parts)]
        return Samples(np.concatenate([p.pixel for p in parts]),
                       np.concatenate([p.gap_days for p in parts]),
                       np.concatenate([p.category for p in parts]),
                       np.concatenate([p.ascat for p in parts]),
                       {m: np.concatenate([p.preds[m] for p in parts]) for m in methods},
                       {r: np.concatenate([p.refs[r] for p in parts]) for r in refs})


def cell(s: Samples, total: int) -> dict:
    """One stratum: ``n``, ``share`` of the scheme and a :func:`score` per reference."""
    out: dict = {"n": len(s), "share": len(s) / total if total else math.nan}
    for r, v in s.refs.items():
        out[r] = score(s.preds, v, s.pixel)
    return out


def stratify(s: Samples, by: tuple[str, ...] = ("gap_days", "gap_category", "ascat")
             ) -> dict:
    """A scheme's report: ``all`` and each stratum of ``by`` as :func:`cell` records,
    plus ``n`` and ``median_gap_days`` (None when most samples were never observed)."""
    total = len(s)
    med = float(np.median(s.gap_days)) if total else math.nan
    out: dict = {"n": total, "median_gap_days": None if med >= NEVER else med,
                 "all": cell(s, total)}
    if "gap_days" in by:
        out["gap_days"] = {label: cell(s.subset((s.gap_days >= lo) & (s.gap_days <= hi)), total)
                           for label, lo, hi in GAP_DAY_BINS}
    if "gap_category" in by:
        out["gap_category"] = {name: cell(s.subset(s.category == code), total)
                               for code, name in CATEGORIES.items()}
    if "ascat" in by:
        out["ascat"] = {ASCAT_STRATA[0]: cell(s.subset(s.ascat), total),
                        ASCAT_STRATA[1]: cell(s.subset(~s.ascat), total)}
    return out
