"""Is ``filled_sm_uncertainty`` calibrated?  Figures of ``gapfill evaluate`` (``calibration``
of each test set, :func:`calibration_of`), scored against the calibrated truth.

In every stratum of days to the nearest observation (:data:`model.strata.GAP_DAY_BINS`, as
the strata count them: both directions, in the run's input) and on observed pixels, of
natural gaps and of all hidden pixels (hidden days, spatial and temporal blocks pooled):

``within_1sd``  share of |error| <= SD (target :data:`TARGETS`: 63-73 %)
``within_2sd``  share of |error| <= 2 SD (92-97 %)
``rms_ratio``   RMS error / RMS SD (0.85-1.15)
``spearman``    Spearman correlation between SD and |error| (at least 0.3)

plus ``reliability``: pixel-days of natural gaps and observed pixels in ten bins of SD
(deciles), each bin's RMS SD and RMS error (the reliability diagram).  Plain numpy and
scipy; the SDs come from :mod:`model.errors` in the sensor's own units, as the errors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from model import errors as er
from model import strata as st

TARGETS = {"within_1sd": (0.63, 0.73), "within_2sd": (0.92, 0.97),
           "rms_ratio": (0.85, 1.15), "spearman": (0.3, 1.0)}
OBSERVED = "observed"
RELIABILITY_BINS = 10


def figures(err: np.ndarray, sd: np.ndarray) -> dict[str, Any]:
    """The calibration figures of paired errors and SDs (finite pairs), and ``meets``."""
    from scipy.stats import spearmanr

    ok = np.isfinite(err) & np.isfinite(sd)
    e, s = np.abs(np.asarray(err, np.float64)[ok]), np.asarray(sd, np.float64)[ok]
    n = int(e.size)
    if n < 10:
        return {"n": n, "within_1sd": math.nan, "within_2sd": math.nan,
                "rms_ratio": math.nan, "spearman": math.nan, "meets": {}}
    rho = float(spearmanr(s, e).statistic) if np.ptp(s) > 0 else math.nan
    out = {"n": n, "within_1sd": float(np.mean(e <= s)), "within_2sd": float(np.mean(e <= 2 * s)),
           "rms_ratio": float(np.sqrt(np.mean(e * e)) / np.sqrt(np.mean(s * s))),
           "spearman": rho}
    out["meets"] = {k: bool(math.isfinite(out[k]) and lo <= out[k] <= hi)
                    for k, (lo, hi) in TARGETS.items()}
    return out


def reliability(err: np.ndarray, sd: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Pixel-days in ``bins`` quantile bins of SD: each bin's RMS SD, RMS error and n."""
    ok = np.isfinite(err) & np.isfinite(sd)
    e, s = np.asarray(err, np.float64)[ok], np.asarray(sd, np.float64)[ok]
    if e.size == 0:
        return []
    order = np.argsort(s, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if part.size:
            out.append({"sd_rms": float(np.sqrt(np.mean(s[part] ** 2))),
                        "error_rms": float(np.sqrt(np.mean(e[part] ** 2))),
                        "n": int(part.size)})
    return out


def _run_samples(ts, run, em: er.ErrorModel, sensor: str, lead: int, mask: np.ndarray,
                 observed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors, SDs and strata gap days of the pixel-days of ``mask`` in ``run``."""
    per = ts.per
    est = per.amsr if observed else run.preds["convlstm"]
    err = (est - ts.calibrated)[mask]
    gd_vis = er.visible_gap_days(run.vin, lead)
    asc = np.isfinite(per.ascat)
    regime = int(asc[ts.test_days].any())
    cat = run.category if run.category is not None else np.zeros(per.valid.shape, np.int8)
    cat = np.where(run.vin, 0, cat)
    months = per.time.month.values[:, None, None]
    feats = er.features(gd_vis, regime, asc, cat, months)
    sd = em.sd(sensor, feats, per.lat, per.lon, est, per.doy)[mask]
    gd = st.days_to_nearest(run.vin)[mask]
    return err, sd, gd


def _strata(err: np.ndarray, sd: np.ndarray, gd: np.ndarray) -> dict[str, Any]:
    out = {"all": figures(err, sd)}
    for label, lo, hi in st.GAP_DAY_BINS:
        sel = (gd >= lo) & (gd <= hi)
        out[label] = figures(err[sel], sd[sel])
    return out


def calibration_of(ts, runs: list, em: er.ErrorModel, model) -> dict[str, Any]:
    """The ``calibration`` entry of one test set from the runs :func:`model.evaluate.
    stratified` made (natural gaps, hidden days, blocks); needs the calibrated truth."""
    if ts.calibrated is None or model.sensor not in em.tables:
        return {}
    lead = int(model.lead_days)
    per = ts.per
    test_land = ts.test_days[:, None, None] & per.land[None]
    by = {r.name: r for r in runs}
    out: dict[str, Any] = {"targets": {k: list(v) for k, v in TARGETS.items()},
                           "error_model": em.meta.get("models", {}).get(model.sensor, {}),
                           "stale": em.stale(model.sensor,
                                             str(model.metadata.get("checkpoint_sha256")))}
    nat = by.get("natural_gaps")
    if nat is not None:
        e, s, g = _run_samples(ts, nat, em, model.sensor, lead,
                               nat.scored["natural_gaps"] & np.isfinite(ts.calibrated))
        out["natural_gaps"] = _strata(e, s, g)
        obs = per.valid & test_land & np.isfinite(ts.calibrated)
        eo, so, _ = _run_samples(ts, nat, em, model.sensor, lead, obs, observed=True)
        out[OBSERVED] = figures(eo, so)
        out["reliability"] = reliability(np.concatenate([e, eo]), np.concatenate([s, so]))
    parts = []
    for r in runs:
        for scheme in ("hidden_days", "spatial_blocks", "temporal_blocks"):
            if scheme in r.scored:
                parts.append(_run_samples(ts, r, em, model.sensor, lead,
                                          r.scored[scheme] & np.isfinite(ts.calibrated)))
    if parts:
        out["all_hidden"] = _strata(*(np.concatenate([p[k] for p in parts]) for k in range(3)))
    return out


KEY = "uncertainty_calibration"
"""The key of :func:`calibration_of` in each test set of ``gapfill evaluate``'s strata."""


def _cell(f: dict) -> str:
    def v(k, spec):
        x = f.get(k, math.nan)
        mark = "" if f.get("meets", {}).get(k, True) else "*"
        return "–" if x is None or not math.isfinite(x) else format(x, spec) + mark
    return (f"{f.get('n', 0)} | {v('within_1sd', '.0%')} | {v('within_2sd', '.0%')} | "
            f"{v('rms_ratio', '.2f')} | {v('spearman', '.2f')}")


def markdown_lines(strata: dict) -> list[str]:
    """The calibration tables of every test set (``*``: outside its target)."""
    sets = {name: s[KEY] for name, s in strata.items() if s.get(KEY)}
    if not sets:
        return []
    t = TARGETS
    lines = ["## Calibration of filled_sm_uncertainty (against the calibrated truth)", "",
             f"Targets: within 1 SD {t['within_1sd'][0]:.0%}-{t['within_1sd'][1]:.0%}, within "
             f"2 SD {t['within_2sd'][0]:.0%}-{t['within_2sd'][1]:.0%}, RMS error / RMS SD "
             f"{t['rms_ratio'][0]}-{t['rms_ratio'][1]}, Spearman(SD, |error|) >= "
             f"{t['spearman'][0]}; `*` marks a figure outside its target.  Days (d): to the "
             "nearest day the pixel was in the input.", "",
             "| test set | scheme | stratum | n | within 1 SD | within 2 SD | RMS err / RMS SD "
             "| Spearman |", "|---|---|---|---|---|---|---|---|"]
    for name, c in sets.items():
        if OBSERVED in c:
            lines.append(f"| {name} | observed | – | {_cell(c[OBSERVED])} |")
        for scheme in ("natural_gaps", "all_hidden"):
            for label, f in c.get(scheme, {}).items():
                lab = label if label == "all" else f"{label} d"
                lines.append(f"| {name} | {scheme.replace('_', ' ')} | {lab} | {_cell(f)} |")
    return lines + [""]


def reliability_figure(strata: dict, path) -> Any:
    """The reliability diagram: RMS error against RMS SD in deciles of SD, a line per test
    set (natural gaps and observed pixels), with the 1:1 line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=90)
    top = 0.0
    for name, s in strata.items():
        rel = (s.get(KEY) or {}).get("reliability") or []
        if rel:
            x = [b["sd_rms"] for b in rel]
            y = [b["error_rms"] for b in rel]
            top = max(top, *x, *y)
            ax.plot(x, y, marker="o", label=name)
    top = top * 1.1 or 0.1
    ax.plot([0, top], [0, top], color="k", lw=0.8, ls="--", label="1:1")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("RMS of filled_sm_uncertainty (m3/m3), decile of SD")
    ax.set_ylabel("RMS error vs calibrated truth (m3/m3)")
    ax.set_title("Reliability: natural gaps and observed pixels", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
