"""The value part of the error model (:mod:`model.errors`): what a pixel-day's own value and
its pixel's season say about the size of its error.

Within one stratum of gap length the binned table gives nearly one SD, so it cannot rank the
errors there.  Two features vary inside a stratum and exist on any world at fill time:

``anomaly``  ``log(|estimate - climatology| + ANOMALY_FLOOR)``: how far the day's value
             (the observation where observed, the fill elsewhere) lies from its pixel's
             seasonal climatology.  A retrieval far from its climatology carries a large
             error more often than one near it (the error is part of the departure), and a
             fill next to such an observation inherits it.
``level``    ``log`` of the pixel's RMS observation error on that day of year relative to
             its median over land: the seasonal, vegetation-driven error level of the
             radiometer at that pixel (fitted against the calibrated truth, as the table).

Both maps are per-pixel harmonics of the day of year (:data:`CLIM_HARMONICS`,
:data:`LEVEL_HARMONICS`) fitted by least squares on the model's training years (never a
year it is scored on), stored per cell of the fit grid in ``errors.json`` (``climate``).  A
pixel-day's SD is the table's times the pixel scale times ``exp((c0 + c1 anomaly + c2
level) / 2)``, with ``c`` per gap bin (:data:`model.errors.GAP_EDGES`) fitted by least
squares of ``log(residual^2 / sd^2)`` (a log-variance regression) and ``c0`` then reset so
that the bin's mean ``residual^2 / sd^2`` is 1 (the coverage of the table is kept).  The
factor is clipped to :data:`FACTOR_LIMITS`; it is 1 outside the fit grid, where the estimate
is missing, and in error models fitted before it existed.  Plain numpy (no torch).
"""

from __future__ import annotations

import numpy as np

ANOMALY_FLOOR = 0.01  # m3 m-3: the anomaly's log does not run away near the climatology
CLIM_HARMONICS = 2
LEVEL_HARMONICS = 1
MIN_DAYS = 60  # observed days a pixel needs for its own harmonics (else the nearest pixel's)
FACTOR_LIMITS = (1 / 3, 3.0)
N_FEATURES = 2


def design(doy, k: int) -> np.ndarray:
    """``(n, 1 + 2k)`` columns ``1, cos(j w), sin(j w)`` of days of year ``doy`` (``n``)."""
    ang = 2 * np.pi * np.atleast_1d(np.asarray(doy, np.float64)) / 365.25
    cols = [np.ones(ang.shape)]
    for j in range(1, k + 1):
        cols += [np.cos(j * ang), np.sin(j * ang)]
    return np.stack(cols, -1)


def fit_harmonic(x: np.ndarray, doy: np.ndarray, land: np.ndarray, k: int) -> np.ndarray:
    """Per-pixel least squares of ``x`` ``(T, H, W)`` (NaN: missing) on :func:`design`:
    ``(1 + 2k, H, W)``.  Land pixels with fewer than :data:`MIN_DAYS` values borrow the
    nearest fitted pixel's; NaN off land."""
    from scipy.ndimage import distance_transform_edt

    a = design(doy, k)  # (T, p)
    ok = np.isfinite(x)
    y = np.where(ok, x, 0.0).astype(np.float64)
    m = ok.astype(np.float64)
    gram = np.einsum("tp,tq,thw->hwpq", a, a, m)
    rhs = np.einsum("tp,thw->hwp", a, y)
    n = ok.sum(0)
    fitted = np.asarray(land, bool) & (n >= MIN_DAYS)
    p = a.shape[1]
    coef = np.full(gram.shape[:2] + (p,), np.nan)
    if fitted.any():
        coef[fitted] = np.linalg.solve(gram[fitted], rhs[fitted][..., None])[..., 0]
        _, (ii, jj) = distance_transform_edt(~fitted, return_indices=True)
        coef = coef[ii, jj]
    coef[~np.asarray(land, bool)] = np.nan
    return np.moveaxis(coef, -1, 0)


def eval_harmonic(coef: np.ndarray, doy) -> np.ndarray:
    """The harmonic ``coef`` ``(p, H, W)`` on days ``doy`` (scalar: ``(H, W)``; 1-D:
    ``(T, H, W)``)."""
    c = np.asarray(coef, np.float64)
    k = (c.shape[0] - 1) // 2
    a = design(doy, k)
    out = np.tensordot(a, c, axes=(1, 0))
    return out[0] if np.ndim(doy) == 0 else out


def fit_climate(amsr: np.ndarray, resid: np.ndarray, doy: np.ndarray, land: np.ndarray,
                lat: np.ndarray, lon: np.ndarray) -> dict:
    """The ``climate`` maps of one sensor from its training years: the observations
    ``amsr`` and their errors against the calibrated truth ``resid`` (``(T, H, W)``, NaN
    where not observed)."""
    clim = fit_harmonic(amsr, doy, land, CLIM_HARMONICS)
    ms = fit_harmonic(np.asarray(resid, np.float64) ** 2, doy, land, LEVEL_HARMONICS)
    level = np.sqrt(np.clip(eval_harmonic(ms, np.arange(1, 366)), 1e-6, None))
    ref = float(np.nanmedian(level[:, np.asarray(land, bool)]))
    return {"lat": np.asarray(lat, np.float64), "lon": np.asarray(lon, np.float64),
            "clim": clim, "error_ms": ms, "level_ref": ref}


def _on_grid(climate: dict, name: str, lat, lon) -> np.ndarray:
    """Map ``name`` ``(p, h, w)`` at the cells nearest ``lat``/``lon``; NaN outside the
    fit grid."""
    from data_catalog import grid

    ii = grid.nearest_index(np.asarray(climate["lat"]), np.asarray(lat))
    jj = grid.nearest_index(np.asarray(climate["lon"]), np.asarray(lon))
    m = np.asarray(climate[name], np.float64)[:, np.maximum(ii, 0)][:, :, np.maximum(jj, 0)]
    inside = (ii >= 0)[:, None] & (jj >= 0)[None, :]
    return np.where(inside[None], m, np.nan)


def features(climate: dict, estimate: np.ndarray, doy, lat, lon) -> np.ndarray:
    """``(..., N_FEATURES)`` features (``anomaly``, ``level``) of pixel-days ``estimate``
    (``(T, H, W)`` with 1-D ``doy``, or ``(H, W)`` with a scalar), in the sensor's units;
    NaN outside the fit grid or where the estimate is missing."""
    clim = eval_harmonic(_on_grid(climate, "clim", lat, lon), doy)
    ms = eval_harmonic(_on_grid(climate, "error_ms", lat, lon), doy)
    est = np.asarray(estimate, np.float64)
    with np.errstate(invalid="ignore"):
        anomaly = np.log(np.abs(est - clim) + ANOMALY_FLOOR)
        level = 0.5 * np.log(np.clip(ms, 1e-6, None)) - np.log(float(climate["level_ref"]))
    return np.stack(np.broadcast_arrays(anomaly, level), -1)


def fit_coefficients(gap_bin: np.ndarray, x: np.ndarray, log_ratio: np.ndarray,
                     n_bins: int) -> np.ndarray:
    """``(n_bins, 1 + N_FEATURES)`` coefficients: per gap bin, least squares of
    ``log_ratio`` (``log(residual^2 / sd^2)``, sd the table's times the pixel scale) on
    ``[1, x]``, then the intercept reset so that the bin's mean ``ratio / factor^2`` is 1.
    A bin with fewer than 100 finite samples keeps 0 (factor 1)."""
    coefs = np.zeros((n_bins, 1 + x.shape[-1]))
    ok = np.isfinite(x).all(-1) & np.isfinite(log_ratio)
    for g in range(n_bins):
        s = ok & (gap_bin == g)
        if s.sum() < 100:
            continue
        a = np.c_[np.ones(int(s.sum())), x[s]]
        c = np.linalg.lstsq(a, log_ratio[s], rcond=None)[0]
        for _ in range(4):  # the clipped factor: a few rounds settle the intercept
            f2 = np.exp(np.clip(a @ c, *(2 * np.log(FACTOR_LIMITS))))
            c[0] += np.log(np.mean(np.exp(log_ratio[s]) / f2))
        coefs[g] = c
    return coefs


def factor(coefs: np.ndarray, gap_bin: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The multiplicative SD factor of pixel-days (1 where a feature is missing)."""
    c = np.asarray(coefs, np.float64)[np.asarray(gap_bin)]
    z = c[..., 0] + (c[..., 1:] * x).sum(-1)
    f = np.exp(0.5 * np.clip(z, *(2 * np.log(FACTOR_LIMITS))))
    return np.where(np.isfinite(f), f, 1.0)


def to_json(climate: dict, coefs: np.ndarray) -> dict:
    def r(a):
        a = np.round(np.asarray(a, np.float64), 5)
        return np.where(np.isfinite(a), a, np.nan).tolist()
    return {"lat": r(climate["lat"]), "lon": r(climate["lon"]), "clim": _nulls(r(climate["clim"])),
            "error_ms": _nulls(np.asarray(climate["error_ms"], np.float64).round(7).tolist()),
            "level_ref": float(climate["level_ref"]),
            "coefficients": np.round(coefs, 5).tolist()}


def _nulls(x):
    if isinstance(x, list):
        return [_nulls(v) for v in x]
    return None if x is None or not np.isfinite(x) else x


def from_json(d: dict) -> tuple[dict, np.ndarray]:
    def a(v):
        return np.array(v, np.float64)  # None -> nan
    climate = {"lat": a(d["lat"]), "lon": a(d["lon"]), "clim": a(d["clim"]),
               "error_ms": a(d["error_ms"]), "level_ref": float(d["level_ref"])}
    return climate, a(d["coefficients"])
