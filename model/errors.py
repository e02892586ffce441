"""The error model: ``filled_sm_uncertainty``, the standard deviation of the error of
``filled_sm`` for every land pixel-day.

Method (post-hoc, binned, re-fittable without retraining; :func:`fit` /
``gapfill calibrate-errors``): the shipped models are run on a held-out year (the model's
validation year: 2021 for AMSR2, 2009 for AMSR-E, and 2009 again with ASCAT withheld from
the input, the "no ASCAT in the record" regime of the years before 2007) with extra pixels
hidden (every day's observed pixels under another day's natural gap pattern, blocks of
cells hidden for the whole year and windows of days without any AMSR, as
:mod:`model.evaluate` hides them, with another seed).  Each land pixel-day of the year
gives a residual against the truth through the pixel's AMSR calibration
(:func:`model.strata.fit_calibration` on the model's training years): the observation's
where it was in the input, the model's elsewhere.  The residuals are binned by

``gap``       days to the nearest observation the model saw (:func:`visible_gap_days`:
              backward without limit, forward only as far as its look-ahead), bins
              :data:`GAP_EDGES` (0 = observed: the sensor's own error)
``regime``    ASCAT anywhere in the input (1) or not at all (0)
``ascat``     ASCAT present at the pixel that day
``category``  the gap's category (:data:`data_catalog.schema.GAP_FLAGS` 1..5; 0 observed or
              hidden without one)
``season``    DJF, MAM, JJA, SON

and the variance of each bin is their mean square.  A pixel-day takes the SD of the most
specific bin (features in that order) holding at least :data:`MIN_N` residuals, times its
pixel's scale (:func:`pixel_scales`: the persistent part of a pixel's error, observed and
filled apart; 1 outside the fit grid), times the value factor of :mod:`model.errors_value`
(the day's departure from its pixel's climatology and the pixel's seasonal error level,
which rank the errors inside a gap bin; fitted per gap bin).  The table
is fitted in the sensor's own units; :func:`uncertainty` scales it to the reference
climatology ``filled_sm`` is given in (the AMSR-E model's mean/std matching gain).

The artifact, ``errors.json`` beside the checkpoints, records each model's checkpoint
sha256: :func:`check_matches` (and ``tests/test_model_shipped.py``) say when it is stale.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_catalog import schema
from model import errors_value as ev
from model import strata as st

log = logging.getLogger(__name__)

FILE_NAME = "errors.json"
FORMAT_VERSION = 1
GAP_EDGES = (0, 1, 2, 3, 4, 7, 11, 21, 31)
"""Lower edges of the gap bins (days); the last bin is 31 days or more, or never."""
FEATURES = ("gap", "regime", "ascat", "category", "season")
SIZES = (len(GAP_EDGES), 2, 2, 6, 4)
MIN_N = 200
FIT_SEED = 7  # not gapfill evaluate's default seed (0): other hidden pixels
WARMUP_DAYS = 60
UNCERTAINTY = schema.UNCERTAINTY


def visible_gap_days(obs: np.ndarray, lead: int) -> np.ndarray:
    """Days from each ``(t, ...)`` to the nearest observation the model saw.

    Backward without limit; forward only up to ``lead`` days (the model's look-ahead).
    0 on observed days, :data:`model.strata.NEVER` where none was seen.
    """
    obs = np.asarray(obs, bool)
    t = obs.shape[0]
    big = 1 << 24
    idx = np.arange(t, dtype=np.int64).reshape((t,) + (1,) * (obs.ndim - 1))
    prev = np.maximum.accumulate(np.where(obs, idx, -big), axis=0)
    nxt = np.minimum.accumulate(np.where(obs, idx, big)[::-1], axis=0)[::-1]
    back = idx - prev
    fwd = np.where(nxt - idx <= lead, nxt - idx, big)
    d = np.minimum(back, fwd)
    return np.where(d >= big // 2, st.NEVER, d).astype(np.int32)


def gap_bin(days: np.ndarray) -> np.ndarray:
    return (np.searchsorted(GAP_EDGES, np.asarray(days), side="right") - 1).astype(np.int64)


def season_of(months: np.ndarray) -> np.ndarray:
    """0 DJF, 1 MAM, 2 JJA, 3 SON."""
    return ((np.asarray(months, np.int64) % 12) // 3).astype(np.int64)


def features(gap_days, regime, ascat, category, months) -> list[np.ndarray]:
    """The :data:`FEATURES` of pixel-days as integer arrays broadcast to one shape."""
    cat = np.asarray(category, np.int64)
    cat = np.where((cat >= 1) & (cat <= 5), cat, 0)
    arrays = np.broadcast_arrays(gap_bin(gap_days), np.asarray(regime, np.int64),
                                 np.asarray(ascat, np.int64), cat, season_of(months))
    return [np.asarray(a) for a in arrays]


@dataclass
class Table:
    """One model's binned mean squares: ``ms[k]``, ``n[k]`` over the first ``k + 1``
    features (flattened with :func:`numpy.ravel_multi_index`)."""

    ms: list[np.ndarray]
    n: list[np.ndarray]

    @classmethod
    def fit(cls, feats: list[np.ndarray], resid: np.ndarray) -> Table:
        r2 = np.asarray(resid, np.float64) ** 2
        ms, ns = [], []
        for k in range(len(FEATURES)):
            size = int(np.prod(SIZES[:k + 1]))
            code = np.ravel_multi_index(feats[:k + 1], SIZES[:k + 1])
            n = np.bincount(code, minlength=size)
            s = np.bincount(code, r2, minlength=size)
            with np.errstate(invalid="ignore", divide="ignore"):
                ms.append(np.where(n > 0, s / n, np.nan))
            ns.append(n)
        return cls(ms, ns)

    def sd(self, feats: list[np.ndarray]) -> np.ndarray:
        """SD of each pixel-day: the most specific bin with :data:`MIN_N` residuals (the gap
        bin alone with any; the overall RMS without)."""
        shape = feats[0].shape
        out = np.full(shape, np.nan)
        for k in range(len(FEATURES) - 1, -1, -1):
            code = np.ravel_multi_index(feats[:k + 1], SIZES[:k + 1])
            need = self.n[k][code] >= (MIN_N if k else 1)
            take = np.isnan(out) & need
            out[take] = np.sqrt(self.ms[k][code][take])
        if np.isnan(out).any():
            n0, m0 = self.n[0], np.nan_to_num(self.ms[0])
            out[np.isnan(out)] = math.sqrt((n0 * m0).sum() / max(n0.sum(), 1))
        return out

    def to_json(self) -> dict:
        return {"ms": [[None if not np.isfinite(v) else round(float(v), 10) for v in m]
                       for m in self.ms],
                "n": [n.astype(int).tolist() for n in self.n]}

    @classmethod
    def from_json(cls, d: dict) -> Table:
        return cls([np.array([np.nan if v is None else v for v in m], np.float64)
                    for m in d["ms"]],
                   [np.asarray(n, np.int64) for n in d["n"]])


@dataclass
class ErrorModel:
    """Per model sensor (``amsr2``, ``amsre``) a :class:`Table`, facts of its fit, the
    pixel scale maps (``scales[sensor]``: ``lat``, ``lon``, ``observed`` and ``filled``
    maps, :func:`pixel_scales`) and the value part (``value[sensor]``: the climate maps and
    the coefficients of :mod:`model.errors_value`)."""

    tables: dict[str, Table]
    meta: dict[str, Any]
    scales: dict[str, dict] = field(default_factory=dict)
    value: dict[str, tuple[dict, np.ndarray]] = field(default_factory=dict)

    def sd(self, sensor: str, feats: list[np.ndarray], lat: np.ndarray | None = None,
           lon: np.ndarray | None = None, estimate: np.ndarray | None = None,
           doy=None) -> np.ndarray:
        """SDs of pixel-days; with ``lat``/``lon`` (the trailing two dimensions of the
        features) times the pixel's scale (observed or filled), and with ``estimate`` (the
        values, in the sensor's units) and ``doy`` (scalar, or 1-D for ``(T, H, W)``) times
        the value factor (:mod:`model.errors_value`)."""
        out = self.tables[sensor].sd(feats)
        if lat is None or lon is None:
            return out
        val = self.value.get(sensor)
        if val is not None and estimate is not None and doy is not None:
            x = ev.features(val[0], estimate, doy, lat, lon)
            out = out * ev.factor(val[1], feats[0], x)
        sc = self.scales.get(sensor)
        if sc is None:
            return out
        from data_catalog import grid

        ii = grid.nearest_index(np.asarray(sc["lat"]), np.asarray(lat))
        jj = grid.nearest_index(np.asarray(sc["lon"]), np.asarray(lon))
        inside = (ii >= 0)[:, None] & (jj >= 0)[None, :]
        maps = []
        for kind in ("observed", "filled"):
            m = np.asarray(sc[kind], np.float64)[np.ix_(np.maximum(ii, 0), np.maximum(jj, 0))]
            maps.append(np.where(inside, m, 1.0))
        return out * np.where(feats[0] == 0, maps[0], maps[1])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        doc = {"format_version": FORMAT_VERSION, "features": list(FEATURES),
               "gap_edges": list(GAP_EDGES), "min_n": MIN_N, **self.meta,
               "tables": {s: t.to_json() for s, t in self.tables.items()},
               "scales": {s: {k: np.round(np.asarray(v, np.float64), 4).tolist()
                              for k, v in m.items()} for s, m in self.scales.items()},
               "value": {s: ev.to_json(*v) for s, v in self.value.items()}}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ErrorModel:
        from data_catalog.errors import DataError

        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            if doc.get("format_version") != FORMAT_VERSION or list(doc["gap_edges"]) != list(
                    GAP_EDGES):
                raise ValueError("another format version or other gap bins")
            tables = {s: Table.from_json(t) for s, t in doc.pop("tables").items()}
            scales = doc.pop("scales", {})
            value = {s: ev.from_json(v) for s, v in doc.pop("value", {}).items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"unreadable error model: {exc}; refit it with `gapfill "
                            "calibrate-errors`", path) from exc
        return cls(tables, doc, scales, value)

    def stale(self, sensor: str, checkpoint_sha256: str) -> bool:
        """True when the table of ``sensor`` was fitted on another checkpoint."""
        fitted = self.meta.get("models", {}).get(sensor, {}).get("checkpoint_sha256")
        return fitted != checkpoint_sha256


MIN_PIXEL_N = 30
SCALE_LIMITS = (0.33, 3.0)


def pixel_scales(table: Table, feats: list[np.ndarray], resid: np.ndarray, pixel: np.ndarray,
                 shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per pixel, observed and filled apart: ``sqrt(sum resid^2 / sum sd^2)`` of its
    pixel-days (the binned SDs ``sd``), 1 with fewer than :data:`MIN_PIXEL_N`, clipped to
    :data:`SCALE_LIMITS`.  The errors of a pixel persist (AMSR's error grows under a
    canopy): the map ranks pixels, the bins rank gaps."""
    sd = table.sd(feats)
    size = int(np.prod(shape))
    out = {}
    for kind, sel in (("observed", feats[0] == 0), ("filled", feats[0] > 0)):
        n = np.bincount(pixel[sel], minlength=size)
        num = np.bincount(pixel[sel], np.asarray(resid, np.float64)[sel] ** 2, minlength=size)
        den = np.bincount(pixel[sel], sd[sel] ** 2, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where((n >= MIN_PIXEL_N) & (den > 0), np.sqrt(num / den), 1.0)
        out[kind] = np.clip(r, *SCALE_LIMITS).reshape(shape)
    return out


def path_for(checkpoint_dir: str | Path | None = None) -> Path:
    from data_catalog import locations

    d = Path(checkpoint_dir) if checkpoint_dir is not None else locations.checkpoint_dir()
    return d / FILE_NAME


def series_tracker(checkpoint_dir: str | Path | None, lat: np.ndarray, lon: np.ndarray
                   ) -> SeriesTracker | None:
    """A :class:`SeriesTracker` of the cells ``lat`` x ``lon`` from the error model in
    ``checkpoint_dir`` (default :func:`data_catalog.locations.checkpoint_dir`); None
    without one (``filled_sm_uncertainty`` stays NaN)."""
    path = path_for(checkpoint_dir)
    if not path.exists():
        return None
    return SeriesTracker(ErrorModel.load(path), np.asarray(lat), np.asarray(lon))


def load_for(model, checkpoint_dir: str | Path | None = None) -> ErrorModel | None:
    """The error model beside ``model``'s checkpoint (or in ``checkpoint_dir``); None (and a
    warning) when there is none or it lacks the model's sensor; a warning when stale."""
    if checkpoint_dir is None:
        ck = model.metadata.get("checkpoint_path")
        if not ck:  # a model made in memory: no error model of its own
            return None
        checkpoint_dir = Path(ck).parent
    path = path_for(checkpoint_dir)
    if not path.exists():
        log.warning("no error model at %s: no %s (run `gapfill calibrate-errors`)", path,
                    UNCERTAINTY)
        return None
    em = ErrorModel.load(path)
    if model.sensor not in em.tables:
        log.warning("error model %s has no %s table: no %s", path, model.sensor, UNCERTAINTY)
        return None
    if em.stale(model.sensor, str(model.metadata.get("checkpoint_sha256", ""))):
        log.warning("error model %s was fitted on another %s checkpoint: refit it with "
                    "`gapfill calibrate-errors`", path, model.sensor)
    return em


def reference_gain(model, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """``d to_reference / d amsr`` per cell (1 without matching): SDs in the reference."""
    h, w = len(lat), len(lon)
    one = model.to_reference(np.ones((h, w), np.float32), lat, lon)
    zero = model.to_reference(np.zeros((h, w), np.float32), lat, lon)
    return np.abs(np.asarray(one, np.float64) - zero)


#: ``source`` attribute of ``filled_sm_uncertainty``: where each SD comes from
SOURCE_ERROR_MODEL = ("observed and filled: the error model errors.json beside the "
                      "checkpoints (fitted on the demo world's held-out years)")
SOURCE_PRODUCT_ERROR = (f"observed: the product's own error variable {schema.AMSR_SM_ERROR} "
                        "(times the AMSR-E matching gain; the error model where it is "
                        "missing); filled: the error model errors.json beside the "
                        "checkpoints (fitted on the demo world's held-out years)")


def uncertainty_attrs(product_error: bool = False) -> dict:
    """CF attributes of ``filled_sm_uncertainty`` (an ancillary variable of filled_sm);
    ``product_error``: the world carries ``amsr_sm_error`` (:func:`with_product_error`),
    said in ``source``."""
    return {"units": schema.UNITS[schema.FILLED_SM],
            "long_name": "standard deviation of the error of filled_sm",
            "standard_name": f"{schema.SM_STANDARD_NAME} standard_error",
            "comment": "observed: the sensor's error, filled: the model's, from a binned "
                       "error model (gap length, ASCAT, gap category, season) times a "
                       "factor of the value's departure from its pixel's climatology, "
                       "fitted on held-out residuals against the calibrated truth "
                       "(model/errors.py, model/errors_value.py, gapfill calibrate-errors)"
                       + ("; where the product gives its own error of an observation "
                          f"({schema.AMSR_SM_ERROR}), that error instead"
                          if product_error else ""),
            "source": SOURCE_PRODUCT_ERROR if product_error else SOURCE_ERROR_MODEL}


def with_product_error(sd: np.ndarray, observed: np.ndarray, product_error, gain
                       ) -> np.ndarray:
    """The one rule for the SD of an observed pixel-day where the world carries the
    product's own error (``amsr_sm_error``, the sensor's units): that error times ``gain``
    (:func:`reference_gain`: ``filled_sm`` is the observation in the reference climatology)
    instead of the error model's observed bin.  Filled pixel-days, and observed ones whose
    product error is missing or not positive (LPRM packs errors below 0.005 m3 m-3 as 0:
    no usable SD), keep the error model's ``sd``.  ``product_error`` None: ``sd``."""
    if product_error is None:
        return sd
    pe = np.asarray(product_error, np.float64) * gain
    use = np.asarray(observed, bool) & np.isfinite(pe) & (pe > 0)
    return np.where(use, pe, sd).astype(np.float32)


def own_units(model, values, lat, lon):
    """``values`` of the reference climatology (``filled_sm``) in ``model``'s own units."""
    if values is None or not hasattr(model, "from_reference"):
        return values
    return model.from_reference(np.asarray(values, np.float32), lat, lon, outside="missing")


def uncertainty(em: ErrorModel, model, *, gap_days, regime, ascat, category, months,
                lat, lon, filled=None, doy=None, product_error=None) -> np.ndarray:
    """SD (m3 m-3, reference climatology) of pixel-days ``(..., H, W)``; ``filled`` (the
    values, reference climatology) and ``doy`` add the value factor; ``product_error``
    (``amsr_sm_error``, sensor units) is the SD of observed ones (:func:`with_product_error`)."""
    feats = features(gap_days, regime, ascat, category, months)
    est = own_units(model, filled, lat, lon)
    gain = reference_gain(model, lat, lon)
    sd = (em.sd(model.sensor, feats, lat, lon, est, doy) * gain).astype(np.float32)
    return with_product_error(sd, np.asarray(gap_days) == 0, product_error, gain)


def day_uncertainty(em: ErrorModel, model, sub, day_index: int, ri: slice, rj: slice,
                    filled: np.ndarray | None = None) -> np.ndarray:
    """SD ``(h, w)`` of day ``day_index`` of a predict window ``sub`` (canonical slice of the
    look-back and look-ahead days the model read), cropped to ``(ri, rj)``; ``filled``
    ``(h, w)``: the day's ``filled_sm`` (for the value factor)."""
    import pandas as pd

    from model.tensors import amsr_valid_mask

    crop = sub.isel({schema.LAT: ri, schema.LON: rj})
    amsr = np.asarray(crop[schema.AMSR_SM].values, np.float32)
    gm = crop[schema.GAP_MASK].values if schema.GAP_MASK in crop else None
    valid = amsr_valid_mask(amsr, gm)
    gd = visible_gap_days(valid, model.lead_days)[day_index]
    if schema.ASCAT_SM in sub:
        asc = np.asarray(sub[schema.ASCAT_SM].values)
        regime = int(np.isfinite(asc).any())
        today = np.isfinite(np.asarray(crop[schema.ASCAT_SM].values[day_index]))
    else:
        regime, today = 0, np.zeros(gd.shape, bool)
    cat = gm[day_index] if gm is not None else np.where(valid[day_index], 0, 5)
    day = pd.Timestamp(crop[schema.TIME].values[day_index])
    perr = (np.asarray(crop[schema.AMSR_SM_ERROR].values[day_index])
            if schema.AMSR_SM_ERROR in crop else None)
    return uncertainty(em, model, gap_days=gd, regime=regime, ascat=today, category=cat,
                       months=day.month, lat=crop[schema.LAT].values,
                       lon=crop[schema.LON].values, filled=filled, doy=day.day_of_year,
                       product_error=perr)


class SeriesTracker:
    """SDs of a series tile block by block, carrying each pixel's last observed day."""

    def __init__(self, em: ErrorModel, lat: np.ndarray, lon: np.ndarray):
        self.em, self.lat, self.lon = em, lat, lon
        self.last: np.ndarray | None = None  # absolute day of the last observation

    def block(self, start: int, valid: np.ndarray, ahead: np.ndarray, *, lead: int,
              ascat: np.ndarray, category: np.ndarray, months: np.ndarray,
              models: list, filled: np.ndarray | None = None,
              doy: np.ndarray | None = None,
              product_error: np.ndarray | None = None) -> np.ndarray:
        """``(T, h, w)`` SDs of the block starting at absolute day ``start``.

        ``valid`` (T, h, w) observed; ``ahead`` (L, h, w) observed on the days after the
        block (look-ahead); ``ascat`` (T, h, w) ASCAT present; ``models`` the model of each
        day (``sensor``: which table; ``to_reference``: the reference gain); ``filled``
        (T, h, w, reference climatology) and ``doy`` (T,): the value factor;
        ``product_error`` (T, h, w): the world's ``amsr_sm_error``, the SD of observed
        pixel-days (:func:`with_product_error`).
        """
        n = valid.shape[0]
        big = 1 << 24
        ext = np.concatenate([valid, ahead[:lead]]) if lead else valid
        idx = np.arange(start, start + ext.shape[0], dtype=np.int64)[:, None, None]
        prev = np.maximum.accumulate(np.where(ext, idx, -big), axis=0)
        if self.last is not None:
            prev = np.maximum(prev, self.last[None])
        nxt = np.minimum.accumulate(np.where(ext, idx, big)[::-1], axis=0)[::-1]
        fwd = np.where(nxt - idx <= lead, nxt - idx, big)
        d = np.minimum(idx - prev, fwd)[:n]
        gd = np.where(d >= big // 2, st.NEVER, d)
        self.last = prev[n - 1]
        regime = int(ascat.any())
        out = np.empty(valid.shape, np.float32)
        k = 0
        while k < n:  # runs of days with one model
            m = models[k]
            e = k
            while e < n and models[e] is m:
                e += 1
            sensor = getattr(m, "sensor", None)
            table = sensor if sensor in self.em.tables else next(iter(self.em.tables))
            feats = features(gd[k:e], regime, ascat[k:e], category[k:e],
                             months[k:e, None, None])
            gain = (reference_gain(m, self.lat, self.lon) if hasattr(m, "to_reference")
                    else 1.0)
            est = None if filled is None else own_units(m, filled[k:e], self.lat, self.lon)
            sd = self.em.sd(table, feats, self.lat, self.lon, est,
                            None if doy is None else np.asarray(doy)[k:e]) * gain
            out[k:e] = with_product_error(
                sd, valid[k:e], None if product_error is None else product_error[k:e], gain)
            k = e
        return out
