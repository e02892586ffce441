"""Baselines the ConvLSTM is scored against (``gapfill evaluate``).

All work on ``(T, H, W)`` float arrays with NaN where not observed and return filled
``(T, H, W)`` arrays (NaN where a method has nothing to offer):

* :func:`linear_time`       per-pixel linear interpolation in time (nearest at the ends)
* :class:`Climatology`      per-pixel day-of-year mean of the training years (31-day window)
* :func:`dctpls`            DCT-PLS space-time smoother (Garcia 2010) via ``pytesmo``
* :class:`CDFMatch`         ASCAT rescaled to AMSR by per-pixel CDF (quantile) matching
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

log = logging.getLogger(__name__)


def linear_time(amsr: np.ndarray) -> np.ndarray:
    """Per-pixel linear interpolation in time between observed days.

    Days before the first (after the last) observation take that observation; pixels
    never observed stay NaN.
    """
    t, h, w = amsr.shape
    out = np.full(amsr.shape, np.nan, np.float32)
    days = np.arange(t)
    flat = amsr.reshape(t, -1)
    res = out.reshape(t, -1)
    for k in range(flat.shape[1]):
        ok = np.isfinite(flat[:, k])
        if ok.any():
            res[:, k] = np.interp(days, days[ok], flat[ok, k])
    return out


class Climatology:
    """Per-pixel day-of-year mean with a circular ``window``-day moving average.

    Parameters
    ----------
    window : int
        Days of the moving window (odd).
    """

    def __init__(self, window: int = 31):
        self.window = window
        self.clim: np.ndarray | None = None

    def fit(self, amsr: np.ndarray, doy: np.ndarray) -> Climatology:
        """``amsr`` (T, H, W) with NaN gaps and the day of year (1..366) of each step."""
        _, h, w = amsr.shape
        ok = np.isfinite(amsr)
        # sums per day of year: sort the steps by day of year and add runs of equal days
        # (np.add.at on (T, H, W) takes seconds; this takes a few hundred ms)
        doy = np.asarray(doy)
        order = np.argsort(doy, kind="stable")
        days, first = np.unique(doy[order], return_index=True)
        s = np.zeros((366, h, w))
        n = np.zeros((366, h, w))
        s[days - 1] = np.add.reduceat(np.where(ok, amsr, 0.0)[order], first, axis=0)
        n[days - 1] = np.add.reduceat(ok[order].astype(np.float64), first, axis=0)
        half = self.window // 2
        idx = (np.arange(-half, half + 1)[:, None] + np.arange(366)[None]) % 366
        ss, nn = s[idx].sum(0), n[idx].sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            clim = ss / nn
            overall = s.sum(0) / n.sum(0)
        self.clim = np.where(nn > 0, clim, overall[None]).astype(np.float32)
        return self

    def predict(self, doy: np.ndarray) -> np.ndarray:
        if self.clim is None:
            raise RuntimeError("Climatology.fit first")
        return self.clim[np.asarray(doy) - 1]


def dctpls(amsr: np.ndarray, smooth: float | None = 1.0, max_iter: int = 100) -> np.ndarray:
    """DCT-PLS (penalised least squares with the discrete cosine transform, Garcia 2010)
    smoothing and filling in space and time, using ``pytesmo.interpolate.dctpls.smoothn``.

    Parameters
    ----------
    amsr : ndarray (T, H, W)
        NaN where not observed.
    smooth : float or None
        Fixed smoothing parameter (None: chosen by generalised cross-validation).
    """
    from pytesmo.interpolate.dctpls import smoothn

    data = np.asarray(amsr, np.float64)
    if not np.isfinite(data).any():
        return np.full(data.shape, np.nan, np.float32)
    with warnings.catch_warnings():  # bound-reached notices of the GCV search
        warnings.simplefilter("ignore")
        z, s, flag, _ = smoothn(data, smooth=smooth, isrobust=False, MaxIter=max_iter)
    log.debug("DCT-PLS smooth=%s exit flag %s", s, flag)
    return np.asarray(z, np.float32)


class CDFMatch:
    """Per-pixel CDF matching of a source (ASCAT) to a reference (AMSR) by quantiles.

    Fitted on days when both are present; values outside the fitted range are
    extrapolated linearly from the outermost quantiles.

    Parameters
    ----------
    n_quantiles : int
        Quantiles (including 0 and 100 %) of the piecewise-linear transfer function.
    min_obs : int
        Pixels with fewer common observations fall back to mean/std matching of the domain.
    """

    def __init__(self, n_quantiles: int = 21, min_obs: int = 30):
        self.n_quantiles = n_quantiles
        self.min_obs = min_obs
        self.qs: np.ndarray | None = None
        self.qr: np.ndarray | None = None

    def fit(self, src: np.ndarray, ref: np.ndarray) -> CDFMatch:
        """Quantiles of ``src`` and ``ref`` (T, H, W) on the days both are present."""
        p = np.linspace(0, 100, self.n_quantiles)
        both = np.isfinite(src) & np.isfinite(ref)
        n = both.sum(0)
        self.qs = _percentiles(np.where(both, src, np.nan), n, p, self.min_obs)
        self.qr = _percentiles(np.where(both, ref, np.nan), n, p, self.min_obs)
        return self

    def predict(self, src: np.ndarray) -> np.ndarray:
        if self.qs is None:
            raise RuntimeError("CDFMatch.fit first")
        t, h, w = src.shape
        out = np.full(src.shape, np.nan, np.float32)
        for i in range(h):
            for j in range(w):
                xs, ys = self.qs[:, i, j], self.qr[:, i, j]
                if not np.isfinite(xs).all():
                    continue
                xs, keep = np.unique(xs, return_index=True)
                ys = ys[keep]
                v = src[:, i, j]
                ok = np.isfinite(v)
                if len(xs) < 2 or not ok.any():
                    continue
                y = np.interp(v[ok], xs, ys)
                lo, hi = v[ok] < xs[0], v[ok] > xs[-1]
                slope_lo = (ys[1] - ys[0]) / (xs[1] - xs[0])
                slope_hi = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
                y[lo] = ys[0] + slope_lo * (v[ok][lo] - xs[0])
                y[hi] = ys[-1] + slope_hi * (v[ok][hi] - xs[-1])
                col = out[:, i, j]
                col[ok] = y
                out[:, i, j] = col
        return out


def _percentiles(a: np.ndarray, n: np.ndarray, p: np.ndarray, min_obs: int) -> np.ndarray:
    """``np.percentile(a[:, i, j] finite, p)`` (linear interpolation) of every pixel at once;
    NaN for pixels with fewer than ``min_obs`` values.  ``n`` (H, W): finite values a pixel."""
    srt = np.sort(np.asarray(a, np.float64), axis=0)  # NaN sort last
    pos = (p[:, None, None] / 100.0) * np.maximum(n - 1, 0)[None]
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0)[None])
    frac = pos - lo
    vlo = np.take_along_axis(srt, lo, axis=0)
    vhi = np.take_along_axis(srt, hi, axis=0)
    q = vlo + (vhi - vlo) * frac
    return np.where((n >= min_obs)[None], q, np.nan)
