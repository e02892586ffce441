"""Triple collocation at stations: the error SD of in situ, ASCAT and a third series.

For three collocated series ``x`` (in situ, the reference whose units the errors are
given in), ``y`` and ``z`` with independent errors, the covariances give each one's error
variance (Stoffelen 1998; Gruber et al. 2016; :func:`pytesmo.metrics.tcol_metrics`):

``var(e_x) = s_xx - s_xy s_xz / s_yz``, ``var(e_y) = s_yy - s_xy s_yz / s_xz``,
``var(e_z) = s_zz - s_xz s_yz / s_xy``, scaled to ``x`` by ``beta_y = s_xz / s_yz``,
``beta_z = s_xy / s_yz`` (``err_y = beta_y sqrt(var(e_y))``), and the signal-to-noise
ratio ``snr_i = 10 log10(signal_i / var(e_i))`` dB with ``signal_x = s_xy s_xz / s_yz``.

:func:`station_tcol` picks the triplet of a station's frame (in situ; the ASCAT series, the
first in degree of saturation; the gap-filled series, else the first other series) and
returns statuses, not exceptions, when there is too little data (``INSUFFICIENT_DATA``,
``NO_OVERLAP``, ``NO_TRIPLET``) or no solution (:data:`NO_SOLUTION`).  The metrics are
registered in :data:`validation.metrics.METRICS` (``tc_sd``, ``tc_sd_insitu``, ``tc_n``, and
``sd_mean``, the series' own mean error SD over the triplet's days, e.g. the store's
``filled_sm_uncertainty``):
pairwise they are NaN, :func:`validation.compare.station_stats` fills them per triplet.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from validation import metrics as mx

MIN_TC_DAYS = 100
"""Days all three series must share for a triple-collocation result."""
NO_TRIPLET = "NO_TRIPLET"
NO_SOLUTION = "NO_TC_SOLUTION"
"""Enough days, but a covariance or an error variance came out negative (errors not
independent, or too little common signal): no error SDs."""
TC_KEYS = ("tc_sd", "tc_sd_insitu", "tc_n")


def tcol(x, y, z) -> dict:
    """Error SDs (scaled to ``x``), SNR (dB) and ``beta`` of a triplet of equal-length
    arrays (finite triples only).  NaN where a covariance is not positive."""
    a = np.vstack([np.asarray(v, np.float64) for v in (x, y, z)])
    a = a[:, np.isfinite(a).all(0)]
    nan = {"err_sd": [math.nan] * 3, "snr_db": [math.nan] * 3, "beta": [math.nan] * 3,
           "n": int(a.shape[1])}
    if a.shape[1] < 3:
        return nan
    c = np.cov(a)
    sxy, sxz, syz = c[0, 1], c[0, 2], c[1, 2]
    if min(sxy, sxz, syz) <= 0:
        return nan
    ev = np.array([c[0, 0] - sxy * sxz / syz, c[1, 1] - sxy * syz / sxz,
                   c[2, 2] - sxz * syz / sxy])
    sig = np.array([sxy * sxz / syz, sxy * syz / sxz, sxz * syz / sxy])
    beta = np.array([1.0, sxz / syz, sxy / syz])
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(ev > 0, np.sqrt(np.abs(ev)), np.nan) * beta
        snr = 10 * np.log10(sig / ev)
    return {"err_sd": err.tolist(), "snr_db": np.where(ev > 0, snr, np.nan).tolist(),
            "beta": beta.tolist(), "n": int(a.shape[1])}


def triplet(frame: pd.DataFrame, series: dict, insitu: str, filled: str
            ) -> tuple[str, str] | None:
    """The (ASCAT, third) series names of a station frame: the first series in degree of
    saturation, and ``filled`` (else a series named "...filled...", else the first other);
    None when there is no such pair."""
    usable = [n for n, m in series.items() if m.get("status") is None and n in frame
              and not m.get("parent")]
    active = next((n for n in usable if series[n].get("saturation")), None)
    if active is None:
        return None
    others = [n for n in usable if n not in (active, "truth")]
    # the gap-filled series first (by name: the kits' gap-filled products say "filled")
    third = filled if filled in usable else next(
        (n for n in others if "filled" in n), others[0] if others else None)
    return (active, third) if third else None


def station_tcol(frame: pd.DataFrame, insitu: str, filled: str,
                 min_n: int = MIN_TC_DAYS) -> dict:
    """``{"status", "n", "members": {name: error SD}, "insitu": SD, "snr_db"}`` of a station."""
    pick = triplet(frame, frame.attrs.get("series", {}), insitu, filled)
    if pick is None:
        return {"status": NO_TRIPLET, "n": 0, "members": {}}
    act, third = pick
    v = frame[[insitu, act, third]].to_numpy(np.float64)
    ok = np.isfinite(v).all(1)
    n = int(ok.sum())
    days = pd.Series(ok, index=frame.index)
    if n < min_n:
        return {"status": mx.INSUFFICIENT_DATA if n else mx.NO_OVERLAP, "n": n,
                "members": {act: math.nan, third: math.nan}, "days": days}
    res = tcol(*v[ok].T)
    status = mx.OK if np.isfinite(res["err_sd"]).all() else NO_SOLUTION
    return {"status": status, "n": n, "insitu": res["err_sd"][0], "days": days,
            "members": {act: res["err_sd"][1], third: res["err_sd"][2]},
            "snr_db": dict(zip((insitu, act, third), res["snr_db"], strict=True))}


def mean_sd(frame: pd.DataFrame, name: str, tc: dict) -> float:
    """Mean of a series' own error SD (``<name>_sd``, e.g. filled_sm_uncertainty) over the
    triplet's days (all three finite) when it is a member, else over its own days."""
    col = f"{name}_sd"
    if col not in frame:
        return math.nan
    days = frame[name].notna() & frame[col].notna()
    if tc.get("days") is not None and name in tc["members"]:
        days &= tc["days"]
    return float(frame.loc[days, col].mean()) if days.any() else math.nan


def _pairwise_nan(x, y) -> float:
    """Triple-collocation metrics have no pairwise value (filled per station triplet)."""
    return math.nan


for _m in (mx.Metric("tc_sd", _pairwise_nan, "TC error SD", "m3 m-3", "lower",
                     headline=True, summary=True),
           mx.Metric("tc_sd_insitu", _pairwise_nan, "TC in situ error SD", "m3 m-3", "lower",
                     headline=True),
           mx.Metric("tc_n", _pairwise_nan, "TC N", headline=True, digits=0),
           mx.Metric("sd_mean", _pairwise_nan, "mean filled_sm_uncertainty", "m3 m-3",
                     headline=True, summary=True)):
    if _m.name not in mx.METRICS:
        mx.register(_m)
