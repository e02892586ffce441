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
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from data_catalog import schema
from model import baselines
from model.datasets import load_period, open_world
from model.inference import load_models, select_device, stream_arrays
from model.wrapper import GapFiller

log = logging.getLogger(__name__)

METHODS = ("convlstm", "linear", "climatology", "dctpls", "ascat_cdf")
SENSOR_CODE = {"amsr2": schema.SENSOR_AMSR2, "amsre": schema.SENSOR_AMSRE}
TARGET_RATIO = 0.8


def metrics(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """RMSE, ubRMSE, bias, Pearson R and n of paired values (NaN pairs dropped).

    ``bias = mean(p - r)``, ``rmse = sqrt(mean((p - r)^2))``,
    ``ubrmse = sqrt(rmse^2 - bias^2)``, ``r = cov(p, r) / (sd_p sd_r)``.
    """
    p = np.asarray(pred, np.float64).ravel()
    r = np.asarray(ref, np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    n = int(p.size)
    if n < 3:
        return {"rmse": math.nan, "ubrmse": math.nan, "bias": math.nan, "r": math.nan, "n": n}
    d = p - r
    bias = float(d.mean())
    rmse = float(np.sqrt(np.mean(d * d)))
    ub = float(np.sqrt(max(rmse * rmse - bias * bias, 0.0)))
    rr = float(np.corrcoef(p, r)[0, 1]) if p.std() > 0 and r.std() > 0 else math.nan
    return {"rmse": rmse, "ubrmse": ub, "bias": bias, "r": rr, "n": n}


def hide_like_other_days(valid: np.ndarray, natural_gap: np.ndarray, days: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
    """Hide observed pixels of ``days`` under the natural gap pattern of another random day."""
    hidden = np.zeros(valid.shape, bool)
    n = valid.shape[0]
    for t in np.flatnonzero(days):
        u = int(rng.integers(0, n - 1))
        u = u + 1 if u >= t else u
        hidden[t] = valid[t] & natural_gap[u]
    return hidden


def calibrated_truth(truth_train: np.ndarray, obs_train: np.ndarray, truth: np.ndarray
                     ) -> np.ndarray:
    """The demo-world reference: the truth through a per-pixel linear calibration
    ``obs = a + b truth`` fitted on the training years.

    Its error on hidden observations is the sensor's whole random retrieval error: what a
    perfect estimate of the true soil moisture scores against noisy observations.  Since
    demo world v3 part of that error persists for weeks (as real retrieval errors do), so a
    gap filler that learns it from the neighbouring days can score below this reference;
    the independent day-to-day part is the floor no method can beat.
    """
    ok = np.isfinite(obs_train) & np.isfinite(truth_train)
    n = ok.sum(0)
    x = np.where(ok, truth_train, 0.0)
    y = np.where(ok, obs_train, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = x.sum(0) / n, y.sum(0) / n
        cov = (np.where(ok, (x - mx) * (y - my), 0.0)).sum(0) / n
        var = (np.where(ok, (x - mx) ** 2, 0.0)).sum(0) / n
        b = cov / var
    a = my - b * mx
    return (a + b * truth).astype(np.float32)


def evaluate_sensor(ds: xr.Dataset, model: GapFiller, sensor: str, test_year: int,
                    train_years: list[int], *, seed: int = 0, region=None,
                    dct_smooth: float | None = None, progress: bool = False
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores of all methods for one sensor's test year; returns (scores, details)."""
    code = SENSOR_CODE[sensor]
    per = load_period(ds, [test_year - 1, test_year], region=region, sensor=code)
    train = load_period(ds, train_years, region=region, sensor=code)
    test_days = (per.time.year == test_year) & (per.sensor == code)
    rng = np.random.default_rng(seed)
    hidden = hide_like_other_days(per.valid, per.natural_gap, test_days, rng)
    vin = per.valid & ~hidden
    amsr_in = np.where(vin, per.amsr, np.nan).astype(np.float32)
    land = per.land[None] & np.ones(per.valid.shape, bool)

    preds: dict[str, np.ndarray] = {}
    ref_in = model.to_reference(amsr_in, per.lat, per.lon)
    out, _ = stream_arrays(model, ref_in, vin, per.ascat, per.doy, progress=progress)
    preds["convlstm"] = model.from_reference(out, per.lat, per.lon)
    preds["linear"] = baselines.linear_time(amsr_in)
    tv = np.where(train.valid, train.amsr, np.nan)
    preds["climatology"] = baselines.Climatology().fit(tv, train.doy).predict(per.doy)
    # DCT-PLS over the test year with 60 days of context before it
    first = max(0, int(np.flatnonzero(test_days)[0]) - 60)
    dct = np.full(amsr_in.shape, np.nan, np.float32)
    dct[first:] = baselines.dctpls(amsr_in[first:], smooth=dct_smooth)
    preds["dctpls"] = dct
    cdf = baselines.CDFMatch().fit(train.ascat, tv)
    preds["ascat_cdf"] = cdf.predict(per.ascat)

    oracle = None
    if per.truth is not None and train.truth is not None:
        oracle = calibrated_truth(train.truth, tv, per.truth)

    sel_hidden = hidden & test_days[:, None, None] & land
    sel_nat = per.natural_gap & test_days[:, None, None] & land
    scores = {}
    for m in METHODS:
        p = preds[m]
        scores[m] = {"hidden": metrics(p[sel_hidden], per.amsr[sel_hidden]),
                     "natural_gaps": (metrics(p[sel_nat], per.truth[sel_nat])
                                      if per.truth is not None else metrics([], []))}
    details = {"test_year": test_year, "train_years": list(train_years),
               "calibrated_truth_hidden": (metrics(oracle[sel_hidden], per.amsr[sel_hidden])
                                      if oracle is not None else None),
               "convlstm_hidden_where_ascat": metrics(
                   np.where(np.isfinite(preds["ascat_cdf"]), preds["convlstm"],
                            np.nan)[sel_hidden], per.amsr[sel_hidden]),
               "convlstm_natural_gaps_where_ascat": (metrics(
                   np.where(np.isfinite(preds["ascat_cdf"]), preds["convlstm"],
                            np.nan)[sel_nat], per.truth[sel_nat])
                   if per.truth is not None else None),
               "n_hidden": int(sel_hidden.sum()), "n_natural_gaps": int(sel_nat.sum()),
               "hidden_fraction_of_observed": float(sel_hidden.sum()
                                                    / max((per.valid & test_days[:, None, None]
                                                           & land).sum(), 1))}
    return scores, details


def evaluate(world: xr.Dataset | str | Path | None = None,
             checkpoint_dir: str | Path | None = None, *, device: str = "auto",
             seed: int = 0, progress: bool = False, out: str | Path | None = None
             ) -> dict[str, Any]:
    """The full report: ``{"sensors": {...}, "seam": {...}}`` (and files under ``out``)."""
    torch.set_num_threads(1)  # two threads on a busy 2-core machine run several times slower
    ds = open_world(world)
    models = load_models(checkpoint_dir, select_device(device))
    result: dict[str, Any] = {"sensors": {}, "seam": {}}
    details: dict[str, Any] = {}
    for sensor in ("amsr2", "amsre"):
        if sensor not in models:
            log.warning("no %s model: skipped", sensor)
            continue
        m = models[sensor]
        cfg = m.metadata.get("config", {})
        test_year = int(cfg.get("test_years", [2022 if sensor == "amsr2" else 2010])[0])
        train_years = list(cfg.get("train_years", [2013, 2020] if sensor == "amsr2"
                                   else [2003, 2008]))
        log.info("evaluating %s on %d", sensor, test_year)
        scores, det = evaluate_sensor(ds, m, sensor, test_year, train_years, seed=seed,
                                      region=cfg.get("region"), progress=progress)
        result["sensors"][sensor] = scores
        best = min((scores[k]["hidden"]["rmse"] for k in METHODS[1:]
                    if math.isfinite(scores[k]["hidden"]["rmse"])), default=math.nan)
        det["best_baseline_hidden_rmse"] = best
        det["convlstm_over_best_baseline"] = scores["convlstm"]["hidden"]["rmse"] / best
        det["target_met"] = bool(det["convlstm_over_best_baseline"] <= TARGET_RATIO)
        det["checkpoint_sha256"] = m.metadata.get("checkpoint_sha256")
        details[sensor] = det
    seam = models["amsre"].metadata.get("seam", {}) if "amsre" in models else {}
    result["seam"] = {"before_transfer": seam.get("before_transfer", math.nan),
                      "after_transfer": seam.get("after_transfer", math.nan)}
    details["seam"] = seam
    if out is not None:
        write_report(result, details, out)
    return result


def write_report(result: dict, details: dict, out: str | Path) -> list[Path]:
    """``evaluation.json`` (the report), ``evaluation_details.json``, ``evaluation.md``,
    ``evaluation.png`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "evaluation.json", out / "evaluation_details.json", out / "evaluation.md",
             out / "evaluation.png"]
    paths[0].write_text(json.dumps(result, indent=2))
    paths[1].write_text(json.dumps(details, indent=2))
    paths[2].write_text(markdown(result, details))
    figure(result, paths[3])
    return paths


def markdown(result: dict, details: dict) -> str:
    """The report as markdown tables."""
    lines = ["# Gap-filling accuracy (demo world, held-out years)", ""]
    for sensor, scores in result["sensors"].items():
        det = details.get(sensor, {})
        lines += [f"## {sensor.upper()} (test year {det.get('test_year')}, baselines fitted "
                  f"on {det.get('train_years')})", "",
                  "| method | hidden RMSE | ubRMSE | bias | R | n | natural gaps RMSE | ubRMSE "
                  "| bias | R | n |", "|" + "---|" * 11]
        for m, s in scores.items():
            h, g = s["hidden"], s["natural_gaps"]
            lines.append(f"| {m} | {h['rmse']:.4f} | {h['ubrmse']:.4f} | {h['bias']:+.4f} | "
                         f"{h['r']:.3f} | {h['n']} | {g['rmse']:.4f} | {g['ubrmse']:.4f} | "
                         f"{g['bias']:+.4f} | {g['r']:.3f} | {g['n']} |")
        nf = det.get("calibrated_truth_hidden")
        if nf:
            lines += ["", f"The demo truth through a per-pixel linear calibration fitted on "
                          f"the training years (a perfect estimate of the true soil moisture, "
                          f"blind to the retrieval's persistent error) scores RMSE "
                          f"{nf['rmse']:.4f}, R {nf['r']:.3f} on the hidden pixels; / best "
                          f"baseline = {nf['rmse'] / det['best_baseline_hidden_rmse']:.3f}."]
        sub = det.get("convlstm_hidden_where_ascat")
        if sub:
            lines += ["", f"ConvLSTM on the hidden pixels where ASCAT exists (the ascat_cdf "
                          f"subset): RMSE {sub['rmse']:.4f}, R {sub['r']:.3f}, n {sub['n']}."]
        sub = det.get("convlstm_natural_gaps_where_ascat")
        if sub:
            lines += ["", f"ConvLSTM against the truth under natural gaps where ASCAT exists "
                          f"(the ascat_cdf subset): RMSE {sub['rmse']:.4f}, R {sub['r']:.3f}, "
                          f"n {sub['n']}.  The filled field is AMSR's: it carries AMSR's own "
                          f"bias and persistent retrieval error, which ASCAT does not share."]
        if "convlstm_over_best_baseline" in det:
            lines += ["", f"ConvLSTM / best baseline hidden RMSE: "
                          f"{det['convlstm_over_best_baseline']:.3f} (target <= {TARGET_RATIO}: "
                          f"{'met' if det['target_met'] else 'NOT met'})"]
        lines.append("")
    seam = result.get("seam", {})
    lines += ["## Seam AMSR-E / AMSR2", "",
              "RMS over land pixels of (enhanced AMSR-E climatology - enhanced AMSR2 "
              "climatology), m3 m-3:", "",
              f"* before transfer: {seam.get('before_transfer', math.nan):.4f}",
              f"* after transfer: {seam.get('after_transfer', math.nan):.4f}"]
    tdiff = details.get("seam", {}).get("truth_difference")
    if tdiff is not None:
        lines.append(f"* true soil moisture, same periods (natural variability): {tdiff:.4f}")
    lines += ["", "Units m3 m-3. `hidden`: observed pixels hidden under other days' gap "
              "patterns, scored against the hidden observation (whose independent "
              "day-to-day noise is a floor no method can beat); `natural_gaps`: scored "
              "against the true soil moisture.", ""]
    return "\n".join(lines)


def figure(result: dict, path: str | Path) -> Path:
    """Bar charts of hidden-pixel and natural-gap RMSE per method and sensor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sensors = list(result["sensors"])
    fig, axes = plt.subplots(1, max(1, len(sensors)), figsize=(5 * max(1, len(sensors)), 3.5),
                             dpi=90, squeeze=False)
    for ax, sensor in zip(axes[0], sensors, strict=False):
        scores = result["sensors"][sensor]
        x = np.arange(len(scores))
        ax.bar(x - 0.2, [s["hidden"]["rmse"] for s in scores.values()], 0.4, label="hidden")
        ax.bar(x + 0.2, [s["natural_gaps"]["rmse"] for s in scores.values()], 0.4,
               label="natural gaps (truth)")
        ax.set_xticks(x, list(scores), rotation=20)
        ax.set_ylabel("RMSE (m3/m3)")
        ax.set_title(sensor.upper())
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
