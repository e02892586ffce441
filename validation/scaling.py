"""Scaling of a satellite series to a station's statistics before RMSE, ubRMSE and bias.

pytesmo's ``scaling.mean_std`` and ``cdf_matching.CDFMatching``, on the jointly valid
pairs so that the scaled series keeps the gaps of the original.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Scaling = Literal["none", "mean_std", "cdf_match"]
SCALINGS: tuple[str, ...] = ("none", "mean_std", "cdf_match")


def scale(src, ref, method: str = "none"):
    """Scale ``src`` (satellite) to the statistics of ``ref`` (station) before RMSE.

    ``none``: unchanged.  ``mean_std``: ``(src - mean(src)) / std(src) * std(ref) +
    mean(ref)`` (pytesmo ``scaling.mean_std``).  ``cdf_match``: piecewise-linear CDF
    matching with pytesmo's ``scaling.cdf_match`` (percentile bins, linear edge scaling).
    The statistics use only the jointly valid pairs, so the scaled series keeps the NaNs
    of ``src``.

    Parameters
    ----------
    src, ref : array-like or pandas.Series
        Collocated series of equal length.
    method : {"none", "mean_std", "cdf_match"}

    Returns
    -------
    Same type as ``src`` (a Series keeps its index).
    """
    if method not in SCALINGS:
        raise ValueError(f"unknown scaling {method!r}; expected one of {SCALINGS}")
    s = np.asarray(src, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if s.shape != r.shape:
        raise ValueError(f"src and ref differ in length: {s.size} != {r.size}")
    out = s.copy()
    ok = np.isfinite(s) & np.isfinite(r)
    if method != "none" and ok.sum() >= 2:
        if method == "mean_std":
            sd = s[ok].std()
            if sd > 0:
                out = (s - s[ok].mean()) / sd * r[ok].std() + r[ok].mean()
            else:
                out = s - s[ok].mean() + r[ok].mean()
        else:
            out = _cdf_match(s, r, ok)
    if isinstance(src, pd.Series):
        return pd.Series(out, index=src.index, name=src.name)
    return out


def _cdf_match(s: np.ndarray, r: np.ndarray, ok: np.ndarray) -> np.ndarray:
    from pytesmo.cdf_matching import CDFMatching

    n = int(ok.sum())
    # at least 20 pairs per percentile bin (pytesmo's `minobs`); choosing the bin count
    # here avoids pytesmo's "bins have been resized" warning for short series
    nbins = int(max(1, min(100, n // 20)))
    matcher = CDFMatching(nbins=nbins, minobs=None, linear_edge_scaling=True,
                          combine_invalid=True)
    matcher.fit(s[ok], r[ok])
    # every finite value of src is mapped, also those without a station partner
    return np.asarray(matcher.predict(s), dtype=np.float64)
