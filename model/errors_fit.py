"""``gapfill calibrate-errors``: fit the error model (:mod:`model.errors`) of the shipped
checkpoints on their validation years, and write ``errors.json`` beside them.

Runs each model once per fit run (:data:`RUNS`: about ten seconds a year of the 64 x 64
demo world on one CPU thread), so a refit after retraining takes a minute or two.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any

import numpy as np

from data_catalog import schema
from model import errors as er
from model import errors_value as ev
from model import strata as st

log = logging.getLogger(__name__)

#: (model sensor, ASCAT withheld): the fit runs on each model's validation year.
RUNS = (("amsr2", False), ("amsre", False), ("amsre", True))
SENSOR_CODE = {"amsr2": schema.SENSOR_AMSR2, "amsre": schema.SENSOR_AMSRE}


def hide(per, gap: np.ndarray, test_days: np.ndarray, rng: np.random.Generator
         ) -> tuple[np.ndarray, np.ndarray]:
    """Input mask and gap category of the fit run: every test day's observed pixels under
    another day's gap pattern, spatial blocks hidden all year, windows without AMSR."""
    from model.testset import other_days

    other = other_days(per.valid.shape[0], test_days, rng)
    t = np.flatnonzero(other >= 0)
    hidden = np.zeros(per.valid.shape, bool)
    hidden[t] = per.valid[t] & per.natural_gap[other[t]]
    category = np.where(per.valid, 0, gap).astype(np.int8)
    category[t] = np.where(hidden[t], gap[other[t]], category[t])
    blocks = st.spatial_blocks(per.valid[test_days], per.land, rng)
    tdays = st.temporal_blocks(test_days, rng)
    off = (blocks[None] & test_days[:, None, None]) | tdays[:, None, None]
    vin = per.valid & ~hidden & ~off
    category = np.where(per.valid & off, 0, category)
    return vin, category


def residuals(ds, model, sensor: str, year: int, train_years: list[int], *,
              drop_ascat: bool, seed: int = er.FIT_SEED, region=None, exclude=()
              ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict]:
    """Features and residuals (estimate - calibrated truth) of one fit run, each pixel-day's
    pixel index; ``info`` also holds the ``grid``, the ``climate`` maps of the training
    years (without the years in ``exclude``: :func:`model.errors_value.fit_climate`) and
    the value features ``x`` of the residuals."""
    from model.datasets import load_period, subset_region
    from model.inference import stream_arrays

    code = SENSOR_CODE[sensor]
    per = load_period(ds, [year - 1, year], region=region, sensor=code)
    if per.truth is None:
        from data_catalog.errors import DataError

        raise DataError("the world has no truth_sm: the error model is fitted against the "
                        "truth (demo worlds)", variable=schema.TRUTH_SM)
    fit = load_period(ds, train_years, region=region, sensor=code)
    keep = ~np.isin(fit.time.year, [int(y) for y in exclude])[:, None, None]
    fit_obs = np.where(fit.valid & keep, fit.amsr, np.nan)
    gain, offset, _ = st.fit_calibration(fit.truth, fit_obs, per.land)
    climate = ev.fit_climate(fit_obs, fit_obs - (offset + gain * fit.truth), fit.doy,
                             per.land, per.lat, per.lon)
    del fit
    cal = offset + gain * per.truth
    gap = np.asarray(subset_region(ds, region)[schema.GAP_MASK].sel(
        {schema.TIME: slice(f"{year - 1}-01-01", f"{year}-12-31")}).values, np.int8)
    test_days = (per.time.year == year) & (per.sensor == code)
    first = max(0, int(np.flatnonzero(test_days)[0]) - WARMUP)
    rng = np.random.default_rng([seed, year, int(drop_ascat)])
    vin, category = hide(per, gap, test_days, rng)
    ascat = np.full(per.ascat.shape, np.nan, np.float32) if drop_ascat else per.ascat
    sl = slice(first, None)
    amsr_in = np.where(vin, per.amsr, np.nan).astype(np.float32)[sl]
    ref_in = model.to_reference(amsr_in, per.lat, per.lon)
    out, _ = stream_arrays(model, ref_in, vin[sl], ascat[sl], per.doy[sl])
    pred = model.from_reference(out, per.lat, per.lon)
    est = np.where(vin[sl], per.amsr[sl], pred)
    gd = er.visible_gap_days(vin[sl], model.lead_days)
    scored = (test_days[sl][:, None, None] & per.land[None] & np.isfinite(cal[sl])
              & np.isfinite(est))
    regime = int(np.isfinite(ascat[sl][test_days[sl]]).any())
    months = per.time.month.values[sl][:, None, None]
    feats = er.features(gd, regime, np.isfinite(ascat[sl]), category[sl], months)
    feats = [f[scored] for f in feats]
    x = ev.features(climate, est, per.doy[sl], per.lat, per.lon)[scored]
    resid = (est - cal[sl])[scored]
    h, w = per.land.shape
    pixel = np.broadcast_to(np.arange(h * w).reshape(1, h, w), scored.shape)[scored]
    info = {"sensor": sensor, "year": year, "ascat_withheld": drop_ascat,
            "n": int(resid.size), "observed_rms": _rms(resid[feats[0] == 0]),
            "filled_rms": _rms(resid[feats[0] > 0])}
    info["grid"] = {"lat": per.lat.tolist(), "lon": per.lon.tolist()}
    info["climate"], info["x"] = climate, x
    return feats, resid, pixel, info


WARMUP = er.WARMUP_DAYS


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if x.size else float("nan")


def calibrate_errors(world=None, checkpoint_dir: str | Path | None = None, *,
                     out: str | Path | None = None, device: str = "cpu",
                     seed: int = er.FIT_SEED) -> tuple[Path, dict[str, Any]]:
    """Fit and write the error model of the checkpoints in ``checkpoint_dir``."""
    import torch

    from model.datasets import open_world
    from model.inference import load_models, select_device

    torch.set_num_threads(1)
    ds = open_world(world)
    models = load_models(checkpoint_dir, select_device(device))
    tables: dict[str, er.Table] = {}
    meta: dict[str, Any] = {"models": {}, "runs": [], "seed": seed}
    by_sensor: dict[str, list] = {}
    grids: dict[str, dict] = {}
    scales: dict[str, dict] = {}
    climates: dict[str, dict] = {}
    value: dict[str, tuple] = {}
    for sensor, drop in RUNS:
        if sensor not in models:
            log.warning("no %s model: its error table is not fitted", sensor)
            continue
        m = models[sensor]
        cfg = m.metadata.get("config", {})
        year = int(cfg.get("val_years", [2021 if sensor == "amsr2" else 2009])[0])
        train = list(cfg.get("train_years", [2013, 2020] if sensor == "amsr2"
                             else [2003, 2008]))
        log.info("fitting the %s error table on %d%s", sensor, year,
                 " without ASCAT" if drop else "")
        feats, resid, pixel, info = residuals(ds, m, sensor, year, train, drop_ascat=drop,
                                              seed=seed, region=cfg.get("region"),
                                              exclude=cfg.get("exclude_years") or ())
        grids[sensor] = info.pop("grid")
        climates[sensor] = info.pop("climate")
        by_sensor.setdefault(sensor, []).append((feats, resid, pixel, info.pop("x")))
        meta["runs"].append(info)
        meta["models"][sensor] = {"checkpoint_sha256": m.metadata.get("checkpoint_sha256"),
                                  "fit_year": year, "calibration_years": train}
    for sensor, parts in by_sensor.items():
        feats = [np.concatenate([p[0][k] for p in parts]) for k in range(len(er.FEATURES))]
        resid = np.concatenate([p[1] for p in parts])
        pixel = np.concatenate([p[2] for p in parts])
        tables[sensor] = er.Table.fit(feats, resid)
        g = grids[sensor]
        scales[sensor] = {"lat": g["lat"], "lon": g["lon"], **er.pixel_scales(
            tables[sensor], feats, resid, pixel, (len(g["lat"]), len(g["lon"])))}
        # the value factor, fitted on what the table and the pixel scale leave
        base = tables[sensor].sd(feats) * np.where(
            feats[0] == 0, scales[sensor]["observed"].ravel()[pixel],
            scales[sensor]["filled"].ravel()[pixel])
        with np.errstate(divide="ignore"):
            log_ratio = np.log(resid.astype(np.float64) ** 2 / base ** 2)
        x = np.concatenate([p[3] for p in parts])
        value[sensor] = (climates[sensor], ev.fit_coefficients(
            feats[0], x, np.where(np.isfinite(log_ratio), log_ratio, np.nan),
            len(er.GAP_EDGES)))
    meta["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    meta["world"] = Path(str(ds.encoding.get("source", "") or world or "demo")).name
    em = er.ErrorModel(tables, meta, scales, value)
    path = Path(out) if out is not None else er.path_for(checkpoint_dir)
    em.save(path)
    return path, meta
