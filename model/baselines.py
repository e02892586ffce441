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
        s = np.zeros((366, h, w))
        n = np.zeros((366, h, w))
        ok = np.isfinite(amsr)
        np.add.at(s, doy - 1, np.where(ok, amsr, 0.0))
        np.add.at(n, doy - 1, ok)
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
        _, h, w = src.shape
        p = np.linspace(0, 100, self.n_quantiles)
        qs = np.full((self.n_quantiles, h, w), np.nan)
        qr = np.full((self.n_quantiles, h, w), np.nan)
        both = np.isfinite(src) & np.isfinite(ref)
        for i in range(h):
            for j in range(w):
                m = both[:, i, j]
                if m.sum() >= self.min_obs:
                    qs[:, i, j] = np.percentile(src[m, i, j], p)
                    qr[:, i, j] = np.percentile(ref[m, i, j], p)
        self.qs, self.qr = qs, qr
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
