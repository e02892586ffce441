"""The accuracy report (``gapfill evaluate``): ConvLSTM against baselines on held-out years.

For each sensor (AMSR2: its model's test year, 2022 by default; AMSR-E: the transferred
model's test year, 2010 by default, a year with ASCAT) every method gets the same input:
the AMSR observations of the test year (and the year before, as warm-up / context) with
extra pixels *hidden* under the real gap patterns of other days.  Two scores:

``hidden``        prediction vs the hidden AMSR observation (its own units)
``natural_gaps``  prediction vs the demo world's true soil moisture under natural gaps
                  (RFI, dense vegetation, frozen ground, swath gaps, invalid retrievals)

Methods: ``convlstm`` (streamed through the two years, carrying its state; a model with
``lead_days`` also sees that many following days, as the linear baseline does),
``linear`` (interpolation in time, uses past *and* future days), ``climatology``
(day-of-year mean of the training years), ``dctpls`` (pytesmo's DCT-PLS, GCV smoothing,
space and time), ``ascat_cdf`` (ASCAT CDF-matched per pixel to AMSR on the training years;
scored where ASCAT exists).

``strata`` (:mod:`model.strata`) scores the same methods by gap length, gap category and
ASCAT, on natural gaps, hidden days and spatial / temporal block hold-outs, for the two
test years above and for an AMSR-E year without ASCAT (``no_ascat_test_year`` of the
transfer config, 2005 by default); baselines and the calibration are fitted without the
test year.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from data_catalog import schema
from data_catalog.errors import DataError, EmptySelectionError
from model import baselines, errors
from model import strata as st
from model.config import period_days, period_label
from model.datasets import open_world
from model.inference import load_models, select_device, stream_arrays
from model.report import TARGET_RATIO, write_report
from model.testset import (
    SENSOR_CODE,
    Run,
    TestSet,
    hide_by,
    metrics,
    other_days,
    prepare_test_set,
)
from model.wrapper import GapFiller

log = logging.getLogger(__name__)

METHODS = ("convlstm", "linear", "climatology", "dctpls", "ascat_cdf")


def fill_methods(model: GapFiller, ts: TestSet, vin: np.ndarray, *,
                 dct_smooth: float | None = None, progress: bool = False
                 ) -> dict[str, np.ndarray]:
    """Every method's ``(T, H, W)`` field from the observations ``vin`` of ``ts.per``."""
    per = ts.per
    amsr_in = np.where(vin, per.amsr, np.nan).astype(np.float32)
    preds: dict[str, np.ndarray] = {}
    # DCT-PLS over the test year with 60 days of context before it, in a second thread
    # while the ConvLSTM streams (both release the GIL in their array work; neither has
    # threads that wait on each other, unlike torch's intra-op threads)
    first = max(0, int(np.flatnonzero(ts.test_days)[0]) - 60)
    with ThreadPoolExecutor(1) as pool:
        dct_job = pool.submit(baselines.dctpls, amsr_in[first:], smooth=dct_smooth)
        ref_in = model.to_reference(amsr_in, per.lat, per.lon)
        out, _ = stream_arrays(model, ref_in, vin, per.ascat, per.doy, progress=progress)
        preds["convlstm"] = model.from_reference(out, per.lat, per.lon)
        preds["linear"] = baselines.linear_time(amsr_in)
        preds["climatology"] = ts.climatology
        dct = np.full(amsr_in.shape, np.nan, np.float32)
        dct[first:] = dct_job.result()
    preds["dctpls"] = dct
    preds["ascat_cdf"] = ts.ascat_cdf
    return preds


def hidden_days_run(model: GapFiller, ts: TestSet, *, seed: int = 0,
                    dct_smooth: float | None = None, progress: bool = False) -> Run:
    """Observed pixels of the test days hidden under other days' gap patterns."""
    per = ts.per
    other = other_days(per.valid.shape[0], ts.test_days, np.random.default_rng(seed))
    hidden = hide_by(per.valid, per.natural_gap, other)
    vin = per.valid & ~hidden
    cat = np.zeros(per.valid.shape, np.int8)
    t = np.flatnonzero(other >= 0)
    cat[t] = np.where(hidden[t], ts.gap[other[t]], 0)
    scored = hidden & ts.test_days[:, None, None] & per.land[None]
    return Run("hidden_days", vin, fill_methods(model, ts, vin, dct_smooth=dct_smooth,
                                                progress=progress),
               {"hidden_days": scored}, cat)


def sensor_scores(ts: TestSet, run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """Today's per-sensor scores (``hidden`` and ``natural_gaps`` per method) and details."""
    per, preds = ts.per, run.preds
    test3 = ts.test_days[:, None, None]
    land = per.land[None] & np.ones(per.valid.shape, bool)
    sel_hidden = run.scored["hidden_days"]
    sel_nat = per.natural_gap & test3 & land
    scores = {}
    for m in METHODS:
        p = preds[m]
        scores[m] = {"hidden": metrics(p[sel_hidden], per.amsr[sel_hidden]),
                     "natural_gaps": (metrics(p[sel_nat], per.truth[sel_nat])
                                      if per.truth is not None else metrics([], []))}
    where_ascat = np.where(np.isfinite(preds["ascat_cdf"]), preds["convlstm"], np.nan)
    details = {"test_year": ts.test_year,
               "train_years": [ts.fit_years[0], ts.fit_years[-1]] if ts.fit_years else [],
               "calibrated_truth_hidden": (metrics(ts.calibrated[sel_hidden],
                                                   per.amsr[sel_hidden])
                                           if ts.calibrated is not None else None),
               "convlstm_hidden_where_ascat": metrics(where_ascat[sel_hidden],
                                                      per.amsr[sel_hidden]),
               "convlstm_natural_gaps_where_ascat": (
                   metrics(where_ascat[sel_nat], per.truth[sel_nat])
                   if per.truth is not None else None),
               "n_hidden": int(sel_hidden.sum()), "n_natural_gaps": int(sel_nat.sum()),
               "hidden_fraction_of_observed": float(
                   sel_hidden.sum() / max((per.valid & test3 & land).sum(), 1))}
    return scores, details


def evaluate_sensor(ds: xr.Dataset, model: GapFiller, sensor: str, test_year,
                    train_years, *, seed: int = 0, region=None,
                    dct_smooth: float | None = None, progress: bool = False
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores of all methods for one sensor's test year; returns (scores, details)."""
    ts = prepare_test_set(ds, sensor, test_year, train_years, region=region)
    run = hidden_days_run(model, ts, seed=seed, dct_smooth=dct_smooth, progress=progress)
    return sensor_scores(ts, run)


def block_runs(model: GapFiller, ts: TestSet, *, seed: int = 0,
               dct_smooth: float | None = None, progress: bool = False
               ) -> tuple[list[Run], dict]:
    """The natural-gap run (every observation in) and the block hold-out run."""
    per = ts.per
    test3 = ts.test_days[:, None, None]
    land = per.land[None]
    natural = Run("natural_gaps", per.valid,
                  fill_methods(model, ts, per.valid, dct_smooth=dct_smooth,
                               progress=progress),
                  {"natural_gaps": per.natural_gap & test3 & land}, ts.gap)
    rng = np.random.default_rng([seed, 1])
    blocks = st.spatial_blocks(per.valid[ts.test_days], per.land, rng)
    tdays = st.temporal_blocks(ts.test_days, rng)
    vin = per.valid & ~((blocks[None] & test3) | tdays[:, None, None])
    scored = {"spatial_blocks": per.valid & blocks[None] & test3 & ~tdays[:, None, None],
              "temporal_blocks": per.valid & tdays[:, None, None] & ~blocks[None] & land}
    run = Run("blocks", vin, fill_methods(model, ts, vin, dct_smooth=dct_smooth,
                                          progress=progress), scored)
    idx = np.flatnonzero(tdays)
    starts = idx[np.r_[True, np.diff(idx) > 1]]
    ends = idx[np.r_[np.diff(idx) > 1, True]]
    design = {"spatial_blocks": {"size": st.SPATIAL_BLOCK,
                                 "blocks": int(blocks.sum() // st.SPATIAL_BLOCK ** 2),
                                 "cells": int(blocks.sum())},
              "temporal_blocks": {"days": st.TEMPORAL_BLOCK_DAYS,
                                  "windows": [[str(per.time[a].date()), str(per.time[b].date())]
                                              for a, b in zip(starts, ends, strict=True)]}}
    return [natural, run], design


def strata_of(ts: TestSet, runs: list[Run]) -> dict[str, Any]:
    """The stratified report of one test set from its runs (see :mod:`model.strata`)."""
    refs = {"observation": ts.observation}
    if ts.calibrated is not None:
        refs = {"calibrated_truth": ts.calibrated} | refs
    samples: dict[str, st.Samples] = {}
    for run in runs:
        gd = st.days_to_nearest(run.vin)
        for scheme, mask in run.scored.items():
            r = ({k: v for k, v in refs.items() if k == "calibrated_truth"}
                 if scheme == "natural_gaps" else refs)
            samples[scheme] = st.Samples.take(mask, gap_days=gd, ascat=ts.per.ascat,
                                              preds=run.preds, refs=r, category=run.category)
    out: dict[str, Any] = {}
    for scheme in ("natural_gaps", "hidden_days"):
        if scheme in samples and samples[scheme].refs:
            out[scheme] = st.stratify(samples[scheme])
    hidden = [samples[k] for k in ("hidden_days", "spatial_blocks", "temporal_blocks")
              if k in samples]
    for scheme in ("spatial_blocks", "temporal_blocks"):
        if scheme in samples:
            out[scheme] = st.stratify(samples[scheme], by=("gap_days", "ascat"))
    if hidden:
        out["all_hidden"] = st.stratify(st.Samples.concat(hidden), by=("gap_days", "ascat"))
    return out


def year_role(year, cfg: dict) -> str:
    """``training``, ``validation`` or ``held out``: the part in the model's training of a
    test year or period (one inside a year of the config's ``exclude_years`` is held out;
    one that overlaps the training or validation period takes its role)."""
    a, b = period_days(year)
    if a.year == b.year and a.year in {int(y) for y in cfg.get("exclude_years") or ()}:
        return "held out"
    for role, key in (("training", "train_years"), ("validation", "val_years")):
        span = cfg.get(key)
        if span:
            c, d = period_days(span)
            if a <= d and c <= b:
                return role
    return "held out"


def stratified(model: GapFiller, ts: TestSet, hidden: Run, *, seed: int = 0,
               dct_smooth: float | None = None, progress: bool = False
               ) -> tuple[dict[str, Any], list[Run]]:
    """One test set's ``strata`` entry (its description and the schemes' strata) and the
    runs it was computed from (the hidden-days run ``hidden``, natural gaps, blocks)."""
    cfg = model.metadata.get("config", {})
    runs, design = block_runs(model, ts, seed=seed, dct_smooth=dct_smooth, progress=progress)
    runs = [hidden, *runs]
    per = ts.per
    sel = np.broadcast_to(ts.test_days[:, None, None] & per.land[None], per.ascat.shape)
    out: dict[str, Any] = {
        "sensor": ts.sensor, "test_year": ts.test_year,
        "ascat_fraction": float(np.isfinite(per.ascat[sel]).mean()),
        "model_train_years": cfg.get("train_years"), "model_val_years": cfg.get("val_years"),
        "model_exclude_years": cfg.get("exclude_years", []),
        "test_year_role": year_role(ts.test_year, cfg),
        "baseline_fit_years": ts.fit_years, "calibration": ts.calibration,
        "design": design | {"hidden_days_seed": seed}}
    out |= strata_of(ts, runs)
    return out, runs


def evaluate(world: xr.Dataset | str | Path | None = None,
             checkpoint_dir: str | Path | None = None, *, device: str = "auto",
             seed: int = 0, progress: bool = False, out: str | Path | None = None,
             strata: bool = True, no_ascat_year: int | None = None,
             test_period=None, fit_period=None) -> dict[str, Any]:
    """The full report: ``{"sensors": {...}, "seam": {...}, "strata": {...}}`` (and files
    under ``out``; ``notes``: what could not be scored and why).

    ``no_ascat_year``: the AMSR-E year without ASCAT to stratify (default: the transferred
    model's :func:`no_ascat_year_of`; 0: none).  ``strata=False`` skips the
    strata (a quarter of the time).  ``test_period`` / ``fit_period``: ``[first, last]``
    years or days (:func:`model.config.period_days`) scored / fitting the baselines,
    instead of each model's first test year and its training years; with a
    ``test_period`` a sensor without days in it is skipped with a note.

    Each model must fit the world (:func:`model.fit.require_fit`).  A world without
    ``truth_sm`` (an assembled one) gets the hidden-observation scores; the natural-gap
    scores and the truth-based strata need a truth and are left out, with a note.
    """
    from model.fit import require_fit, warn_missing_ascat

    torch.set_num_threads(1)  # two threads on a busy 2-core machine run several times slower
    ds = open_world(world)
    models = load_models(checkpoint_dir, select_device(device))
    em_path = errors.path_for(checkpoint_dir)
    em = errors.ErrorModel.load(em_path) if em_path.exists() else None
    result: dict[str, Any] = {"sensors": {}, "seam": {}}
    notes: list[str] = []
    if schema.TRUTH_SM not in ds:
        notes.append(
            "this world has no truth_sm: scored against hidden AMSR observations only; the "
            "natural-gap scores and the truth-based strata (calibrated truth) need a truth, "
            "as in the demo world")
    details: dict[str, Any] = {}
    by_set: dict[str, Any] = {}
    for sensor in ("amsr2", "amsre"):
        if sensor not in models:
            log.warning("no %s model: skipped", sensor)
            continue
        m = models[sensor]
        cfg = m.metadata.get("config", {})
        test_year = (test_period if test_period is not None else
                     int(cfg.get("test_years", [2022 if sensor == "amsr2" else 2010])[0]))
        train_years = (fit_period if fit_period is not None else
                       list(cfg.get("train_years", [2013, 2020] if sensor == "amsr2"
                                    else [2003, 2008])))
        t0, t1 = period_days(test_year, "test period")
        days = ds.sel({schema.TIME: slice(t0, t1)})
        if test_period is not None and not (days[schema.SENSOR] == SENSOR_CODE[sensor]).any():
            notes.append(f"no {sensor} days in the test period "
                                   f"{period_label(test_year)}: {sensor} not scored")
            continue
        require_fit(m.metadata, days, cfg.get("region"), sensor=False)
        warn_missing_ascat(days, cfg.get("region"))
        log.info("evaluating %s on %s", sensor, period_label(test_year))
        ts = prepare_test_set(ds, sensor, test_year, train_years, region=cfg.get("region"))
        run = hidden_days_run(m, ts, seed=seed, progress=progress)
        scores, det = sensor_scores(ts, run)
        result["sensors"][sensor] = scores
        best = min((scores[k]["hidden"]["rmse"] for k in METHODS[1:]
                    if math.isfinite(scores[k]["hidden"]["rmse"])), default=math.nan)
        det["best_baseline_hidden_rmse"] = best
        det["convlstm_over_best_baseline"] = scores["convlstm"]["hidden"]["rmse"] / best
        det["target_met"] = bool(det["convlstm_over_best_baseline"] <= TARGET_RATIO)
        det["checkpoint_sha256"] = m.metadata.get("checkpoint_sha256")
        details[sensor] = det
        if strata:
            log.info("strata of %s", ts.name)
            by_set[ts.name], runs = stratified(m, ts, run, seed=seed, progress=progress)
            _calibration(by_set[ts.name], ts, runs, em, m)
        if strata and sensor == "amsre":
            year = no_ascat_year if no_ascat_year is not None else no_ascat_year_of(cfg)
            if year:
                _no_ascat(ds, m, year, train_years, cfg, by_set, seed, progress, em)
    seam = models["amsre"].metadata.get("seam", {}) if "amsre" in models else {}
    result["seam"] = {k: seam.get(k, math.nan) for k in SEAM_KEYS}
    details["seam"] = seam
    if not result["sensors"]:
        raise EmptySelectionError("nothing to score: " + "; ".join(notes))
    if strata:
        result["strata"] = by_set
    if notes:
        result["notes"] = notes
    if out is not None:
        write_report(result, details, out)
    return result


#: the transfer's seam report in the JSON: seam RMS before/after, the true difference's
#: RMS, and the product's AMSR-E-minus-AMSR2 climatology map against the true one (Pearson
#: R and RMS error; goals R >= 0.8, error <= truth_difference / 2)
SEAM_KEYS = ("before_transfer", "after_transfer", "truth_difference",
             "climate_r_before_transfer", "climate_r_after_transfer",
             "climate_rmse_before_transfer", "climate_rmse_after_transfer")


def no_ascat_year_of(cfg: dict) -> int | None:
    """The transferred model's ``no_ascat_test_year``; a checkpoint written before the field
    existed gets :class:`~model.config.TransferConfig`'s default."""
    from model.config import TransferConfig

    year = cfg.get("no_ascat_test_year", TransferConfig.no_ascat_test_year)
    return int(year) if year else None


def _calibration(entry: dict, ts: TestSet, runs: list[Run], em, model) -> None:
    """The test set's ``calibration`` of filled_sm_uncertainty (:mod:`model.calibration`)."""
    if em is None:
        log.warning("no error model: no calibration figures (run `gapfill calibrate-errors`)")
        return
    from model.calibration import KEY, calibration_of

    cal = calibration_of(ts, runs, em, model)
    if cal:
        entry[KEY] = cal


def _no_ascat(ds, model, year, train_years, cfg, strata, seed, progress, em=None) -> None:
    """Add the AMSR-E year without ASCAT to ``strata`` (baselines fitted without it)."""
    log.info("strata of amsre_%d (no ASCAT)", year)
    try:
        ts = prepare_test_set(ds, "amsre", year, train_years, region=cfg.get("region"),
                              exclude=(year,))
    except DataError as exc:  # the world has no AMSR-E days that year
        log.warning("no-ASCAT year %d skipped: %s", year, exc)
        return
    run = hidden_days_run(model, ts, seed=seed, progress=progress)
    strata[ts.name], runs = stratified(model, ts, run, seed=seed, progress=progress)
    _calibration(strata[ts.name], ts, runs, em, model)
